/* Tests for frame authentication (net/auth.c): sign/verify round trips on
 * every frame type, every single-bit flip of a signed frame refused, the
 * wrong key refused, the MAC over scattered segments equal to the MAC over
 * the frame, and key files: raw, hex (with and without newline), and the
 * refusals (size, hex digits, permissions, missing), each naming the file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cmocka.h>

#include "shiplog/auth.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"

static char dir[256];

static const uint8_t key1[SL_AUTH_KEY_LEN] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};

static void fill_frame(struct sl_frame *f, uint8_t type, const uint8_t *frag, uint32_t frag_len)
{
	memset(f, 0, sizeof(*f));
	f->hdr.type = type;
	f->hdr.flags = SL_FRAME_F_MAC;
	for (int i = 0; i < 16; i++)
		f->hdr.cluster_id[i] = (uint8_t)(0xa0 + i);
	f->hdr.stream_id = 7;
	f->hdr.epoch = 3;
	f->hdr.sender = 1;
	f->hdr.receiver = 2;
	f->hdr.seq = 12345;
	switch (type) {
	case SL_FRAME_DATA:
		f->data.batch_pos = 4096;
		f->data.batch_len = frag_len + 100;
		f->data.frag_off = 50;
		f->data.commit_pos = 1024;
		f->data.leader_end = 8192;
		f->data.frag = frag;
		f->data.frag_len = frag_len;
		break;
	case SL_FRAME_STATUS:
		f->status.received_pos = 1;
		f->status.durable_pos = 2;
		f->status.window_end = 99;
		break;
	case SL_FRAME_NAK:
		f->nak.from_pos = 10;
		f->nak.to_pos = 20;
		break;
	default:
		f->hb.leader_end = 5;
		f->hb.commit_pos = 4;
		f->hb.leader_ts = 3;
		break;
	}
}

/* A signed frame of the given type in buf; returns its length. */
static size_t signed_frame(const struct sl_auth *a, uint8_t type, uint8_t *buf, size_t cap,
			   uint32_t frag_len)
{
	static uint8_t frag[SL_FRAME_MAX];
	struct sl_frame f;
	int len;

	for (uint32_t i = 0; i < frag_len; i++)
		frag[i] = (uint8_t)(i * 7 + 1);
	fill_frame(&f, type, frag, frag_len);
	len = sl_frame_encode(&f, buf, cap);
	assert_true(len > 0);
	assert_int_equal(sl_auth_sign(a, buf, (size_t)len), 0);
	return (size_t)len;
}

static void test_round_trip(void **state)
{
	static const uint8_t types[] = {SL_FRAME_DATA, SL_FRAME_STATUS, SL_FRAME_NAK,
					SL_FRAME_HEARTBEAT};
	static uint8_t buf[SL_FRAME_MAX + 64];
	struct sl_auth a = {0};
	struct sl_frame f;

	(void)state;
	sl_auth_set_key(&a, key1);
	for (unsigned t = 0; t < sizeof(types); t++) {
		size_t len = signed_frame(&a, types[t], buf, sizeof(buf), 1000);

		assert_int_equal(sl_auth_verify(&a, buf, len), 0);
		/* The signed frame still decodes: the MAC is outside the CRC. */
		assert_int_equal(sl_frame_decode(buf, len, &f), 0);
		/* Not all-zero: a MAC was written. */
		{
			static const uint8_t zero[SL_FRAME_MAC_LEN];

			assert_memory_not_equal(buf + len - SL_FRAME_MAC_LEN, zero,
						SL_FRAME_MAC_LEN);
		}
		/* One byte more or less than the frame: refused. */
		assert_int_equal(sl_auth_verify(&a, buf, len - 1), -EBADMSG);
		assert_int_equal(sl_auth_verify(&a, buf, len + 1), -EBADMSG);
	}
	/* Largest DATA frame for MTU 9000 with a MAC. */
	{
		uint32_t fm = sl_frame_frag_max(9000, 1);
		size_t len = signed_frame(&a, SL_FRAME_DATA, buf, sizeof(buf), fm);

		assert_int_equal(len, 9000 - 28);
		assert_int_equal(sl_auth_verify(&a, buf, len), 0);
	}
	sl_auth_clear(&a);
	assert_int_equal(sl_auth_verify(&a, buf, 100), -EINVAL);
}

static void test_bit_flips(void **state)
{
	static const uint8_t types[] = {SL_FRAME_DATA, SL_FRAME_NAK};
	static uint8_t buf[2048];
	struct sl_auth a = {0};
	unsigned tested = 0;

	(void)state;
	sl_auth_set_key(&a, key1);
	for (unsigned t = 0; t < sizeof(types); t++) {
		size_t len = signed_frame(&a, types[t], buf, sizeof(buf), 200);

		for (size_t bit = 0; bit < len * 8; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (sl_auth_verify(&a, buf, len) != -EBADMSG)
				fail_msg("type %u: flipping bit %zu of %zu bytes still verifies",
					 types[t], bit, len);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			tested++;
		}
		assert_int_equal(sl_auth_verify(&a, buf, len), 0);
	}
	assert_true(tested > 2000);
}

static void test_wrong_key(void **state)
{
	static uint8_t buf[2048];
	struct sl_auth a = {0}, b = {0};
	uint8_t k2[SL_AUTH_KEY_LEN];
	size_t len;

	(void)state;
	sl_auth_set_key(&a, key1);
	memcpy(k2, key1, sizeof(k2));
	k2[31] ^= 1; /* one bit apart */
	sl_auth_set_key(&b, k2);
	len = signed_frame(&a, SL_FRAME_HEARTBEAT, buf, sizeof(buf), 0);
	assert_int_equal(sl_auth_verify(&b, buf, len), -EBADMSG);
	assert_non_null(strstr(sl_err_msg(), "MAC mismatch"));
	assert_int_equal(sl_auth_verify(&a, buf, len), 0);
	/* Unsigned frames (no MAC flag) never verify. */
	{
		struct sl_frame f;
		int n;

		fill_frame(&f, SL_FRAME_HEARTBEAT, NULL, 0);
		f.hdr.flags = 0;
		n = sl_frame_encode(&f, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(sl_auth_sign(&a, buf, (size_t)n), -EINVAL);
		assert_int_equal(sl_auth_verify(&a, buf, (size_t)n), -EBADMSG);
	}
}

/* The zero-copy path: MAC over prefix + fragment as two segments equals
 * the MAC sl_auth_sign writes over the contiguous frame. */
static void test_mac_iov(void **state)
{
	static uint8_t frag[1000], buf[2048], prefix[SL_FRAME_DATA_PREFIX];
	struct sl_auth a = {0};
	struct sl_frame f;
	struct iovec iov[2];
	uint8_t mac[SL_FRAME_MAC_LEN];
	int len;

	(void)state;
	sl_auth_set_key(&a, key1);
	for (unsigned i = 0; i < sizeof(frag); i++)
		frag[i] = (uint8_t)(i ^ 0x5a);
	fill_frame(&f, SL_FRAME_DATA, frag, sizeof(frag));
	len = sl_frame_encode(&f, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(sl_auth_sign(&a, buf, (size_t)len), 0);
	assert_int_equal(sl_frame_encode_prefix(&f, prefix, sizeof(prefix)), SL_FRAME_DATA_PREFIX);
	iov[0] = (struct iovec){prefix, sizeof(prefix)};
	iov[1] = (struct iovec){frag, sizeof(frag)};
	assert_int_equal(sl_auth_mac_iov(&a, iov, 2, mac), 0);
	assert_memory_equal(mac, buf + len - SL_FRAME_MAC_LEN, SL_FRAME_MAC_LEN);
}

/* ---- key files ---- */

static void put(const char *name, const void *data, size_t n, mode_t mode, char *path)
{
	int fd;

	snprintf(path, 512, "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void hex_of(const uint8_t *k, char *out)
{
	for (int i = 0; i < SL_AUTH_KEY_LEN; i++)
		sprintf(out + 2 * i, "%02x", k[i]);
}

static void expect_refused(const char *path, int err, const char *what)
{
	struct sl_auth a = {0};

	assert_int_equal(sl_auth_load_key(&a, path), -err);
	assert_false(a.loaded);
	if (strstr(sl_err_msg(), path) == NULL || strstr(sl_err_msg(), what) == NULL)
		fail_msg("message \"%s\" should name %s and say \"%s\"", sl_err_msg(), path, what);
}

static void test_key_files(void **state)
{
	char path[512], hex[2 * SL_AUTH_KEY_LEN + 4];
	static uint8_t buf[256];
	struct sl_auth a = {0}, ref = {0};
	size_t len;

	(void)state;
	sl_auth_set_key(&ref, key1);
	len = signed_frame(&ref, SL_FRAME_NAK, buf, sizeof(buf), 0);

	/* Raw 32 bytes. */
	put("raw.key", key1, sizeof(key1), 0600, path);
	assert_int_equal(sl_auth_load_key(&a, path), 0);
	assert_memory_equal(a.key, key1, sizeof(key1));
	assert_int_equal(sl_auth_verify(&a, buf, len), 0);
	/* Hex, lower case, no newline; upper case with "\n"; with "\r\n"; 0400. */
	hex_of(key1, hex);
	put("hex.key", hex, 64, 0600, path);
	memset(&a, 0, sizeof(a));
	assert_int_equal(sl_auth_load_key(&a, path), 0);
	assert_memory_equal(a.key, key1, sizeof(key1));
	for (int i = 0; i < 64; i++)
		if (hex[i] >= 'a')
			hex[i] = (char)(hex[i] - 'a' + 'A');
	strcpy(hex + 64, "\n");
	put("hexnl.key", hex, 65, 0400, path);
	memset(&a, 0, sizeof(a));
	assert_int_equal(sl_auth_load_key(&a, path), 0);
	assert_memory_equal(a.key, key1, sizeof(key1));
	strcpy(hex + 64, "\r\n");
	put("hexcrlf.key", hex, 66, 0600, path);
	memset(&a, 0, sizeof(a));
	assert_int_equal(sl_auth_load_key(&a, path), 0);
	assert_memory_equal(a.key, key1, sizeof(key1));

	/* Wrong sizes: 31, 33 raw bytes, 63 and 66 hex digits, empty, big. */
	put("short.key", key1, 31, 0600, path);
	expect_refused(path, EINVAL, "31 bytes");
	put("long.key", buf, 33, 0600, path);
	expect_refused(path, EINVAL, "33 bytes");
	hex_of(key1, hex);
	put("hex63.key", hex, 63, 0600, path);
	expect_refused(path, EINVAL, "63 bytes");
	strcpy(hex + 64, "ab");
	put("hex66.key", hex, 66, 0600, path);
	expect_refused(path, EINVAL, "hex digits");
	put("empty.key", "", 0, 0600, path);
	expect_refused(path, EINVAL, "0 bytes");
	put("big.key", buf, sizeof(buf), 0600, path);
	expect_refused(path, EINVAL, "want 32 raw bytes");
	/* Bad hex digit at 17. */
	hex_of(key1, hex);
	hex[17] = 'g';
	put("badhex.key", hex, 64, 0600, path);
	expect_refused(path, EINVAL, "byte 17 is not a hex digit");
	hex[17] = '0';
	hex[64] = ' '; /* trailing space is not a newline */
	put("space.key", hex, 65, 0600, path);
	expect_refused(path, EINVAL, "65 bytes");

	/* Readable by others, by the group, writable by the group. */
	put("world.key", key1, sizeof(key1), 0644, path);
	expect_refused(path, EPERM, "too open");
	put("group.key", key1, sizeof(key1), 0640, path);
	expect_refused(path, EPERM, "0640");
	put("gw.key", key1, sizeof(key1), 0620, path);
	expect_refused(path, EPERM, "too open");

	/* Missing, a directory, a symlink. */
	snprintf(path, sizeof(path), "%s/missing.key", dir);
	expect_refused(path, ENOENT, "open");
	expect_refused(dir, EINVAL, "not a regular file");
	{
		char target[512];

		put("target.key", key1, sizeof(key1), 0600, target);
		snprintf(path, sizeof(path), "%s/link.key", dir);
		unlink(path);
		assert_int_equal(symlink(target, path), 0);
		expect_refused(path, ELOOP, "open");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_bit_flips),
	    cmocka_unit_test(test_wrong_key),  cmocka_unit_test(test_mac_iov),
	    cmocka_unit_test(test_key_files),
	};
	const char *base = getenv("SHIPLOG_TEST_TMP");

	if (base == NULL)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/auth-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 1;
	}
	/* chmod 0700: the key files' own modes are what is under test. */
	chmod(dir, 0700);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
