/* Frame authentication with a pre-shared key; see include/shiplog/auth.h. */
#include "shiplog/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "shiplog/err.h"
#include "shiplog/frame.h"

/* crypto_generichash accepts 16..64-byte keys and outputs; we pin ours. */
_Static_assert(SL_AUTH_KEY_LEN >= crypto_generichash_KEYBYTES_MIN &&
		   SL_AUTH_KEY_LEN <= crypto_generichash_KEYBYTES_MAX,
	       "key length outside BLAKE2b's range");
_Static_assert(SL_FRAME_MAC_LEN >= crypto_generichash_BYTES_MIN &&
		   SL_FRAME_MAC_LEN <= crypto_generichash_BYTES_MAX,
	       "MAC length outside BLAKE2b's range");

/* The largest file we read: 64 hex digits, "\r\n", and one byte more so a
 * longer file is seen to be longer rather than silently truncated. */
#define KEY_FILE_MAX (2 * SL_AUTH_KEY_LEN + 3)

static int hex_val(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Interpret what the file held. raw: exactly 32 bytes. hex: 64 digits, then
 * nothing, "\n" or "\r\n". */
static int parse_key(const char *path, const uint8_t *b, size_t n, uint8_t key[SL_AUTH_KEY_LEN])
{
	size_t hex_len = n;

	if (n == SL_AUTH_KEY_LEN) {
		memcpy(key, b, SL_AUTH_KEY_LEN);
		return 0;
	}
	if (hex_len > 0 && b[hex_len - 1] == '\n')
		hex_len--;
	if (hex_len > 0 && hex_len < n && b[hex_len - 1] == '\r')
		hex_len--;
	if (hex_len != 2 * SL_AUTH_KEY_LEN)
		return sl_err_set(EINVAL,
				  "auth key %s: %zu bytes; want %d raw bytes or %d hex digits "
				  "(optionally followed by a newline)",
				  path, n, SL_AUTH_KEY_LEN, 2 * SL_AUTH_KEY_LEN);
	for (size_t i = 0; i < SL_AUTH_KEY_LEN; i++) {
		int hi = hex_val(b[2 * i]), lo = hex_val(b[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return sl_err_set(EINVAL, "auth key %s: byte %zu is not a hex digit", path,
					  hi < 0 ? 2 * i : 2 * i + 1);
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int sl_auth_load_key(struct sl_auth *a, const char *path)
{
	uint8_t buf[KEY_FILE_MAX];
	uint8_t key[SL_AUTH_KEY_LEN];
	struct stat st;
	size_t n = 0;
	int fd, rc;

	if (sodium_init() < 0)
		return sl_err_set(EIO, "auth key %s: libsodium failed to initialise", path);
	/* O_NOFOLLOW: the permission check below must be about the file we
	 * read, not a symlink's target someone may swap. fstat on the open fd
	 * for the same reason (no stat-then-open race). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return sl_err_set(errno, "auth key %s: open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = sl_err_set(errno, "auth key %s: stat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = sl_err_set(EINVAL, "auth key %s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		rc = sl_err_set(EPERM,
				"auth key %s: permissions %04o are too open (group or others "
				"may access it); chmod 600 %s",
				path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size > (off_t)(KEY_FILE_MAX - 1)) {
		rc = sl_err_set(EINVAL,
				"auth key %s: %lld bytes; want %d raw bytes or %d hex digits "
				"(optionally followed by a newline)",
				path, (long long)st.st_size, SL_AUTH_KEY_LEN, 2 * SL_AUTH_KEY_LEN);
		goto out;
	}
	/* Bounded read: at most KEY_FILE_MAX bytes, retrying EINTR and short
	 * reads, stopping at end of file. */
	while (n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = sl_err_set(errno, "auth key %s: read: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	rc = parse_key(path, buf, n, key);
	if (rc == 0) {
		memcpy(a->key, key, sizeof(key));
		a->loaded = 1;
	}
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(key, sizeof(key));
	close(fd);
	return rc;
}

void sl_auth_set_key(struct sl_auth *a, const uint8_t key[SL_AUTH_KEY_LEN])
{
	/* sodium_init picks the BLAKE2b implementation for this CPU; it is
	 * idempotent and thread-safe. Its failure only means no faster path. */
	if (sodium_init() < 0)
		sl_err_set(EIO, "auth: libsodium failed to initialise");
	memcpy(a->key, key, SL_AUTH_KEY_LEN);
	a->loaded = 1;
}

void sl_auth_clear(struct sl_auth *a)
{
	sodium_memzero(a->key, sizeof(a->key));
	a->loaded = 0;
}

static void mac_bytes(const struct sl_auth *a, const uint8_t *p, size_t n,
		      uint8_t out[SL_FRAME_MAC_LEN])
{
	crypto_generichash(out, SL_FRAME_MAC_LEN, p, n, a->key, SL_AUTH_KEY_LEN);
}

int sl_auth_sign(const struct sl_auth *a, uint8_t *frame, size_t len)
{
	size_t covered;

	if (!a->loaded)
		return sl_err_set(EINVAL, "auth sign: no key loaded");
	sl_frame_mac_region(frame, len, &covered);
	if (covered == 0)
		return sl_err_set(
		    EINVAL, "auth sign: %zu bytes do not hold a whole frame with the MAC flag",
		    len);
	mac_bytes(a, frame, covered, frame + covered);
	return 0;
}

int sl_auth_verify(const struct sl_auth *a, const uint8_t *frame, size_t len)
{
	uint8_t want[SL_FRAME_MAC_LEN];
	size_t covered;
	int bad;

	if (!a->loaded)
		return sl_err_set(EINVAL, "auth verify: no key loaded");
	sl_frame_mac_region(frame, len, &covered);
	/* Exact length: bytes after the trailer would ride along unauthenticated. */
	if (covered == 0 || covered + SL_FRAME_MAC_LEN != len)
		return sl_err_set(EBADMSG,
				  "auth verify: %zu-byte frame has no MAC trailer where "
				  "its header says",
				  len);
	mac_bytes(a, frame, covered, want);
	/* sodium_memcmp: constant time, so timing tells a forger nothing about
	 * how many leading MAC bytes were right. */
	bad = sodium_memcmp(want, frame + covered, SL_FRAME_MAC_LEN);
	sodium_memzero(want, sizeof(want));
	if (bad != 0)
		return sl_err_set(EBADMSG, "auth verify: %zu-byte frame: MAC mismatch", len);
	return 0;
}

int sl_auth_mac_iov(const struct sl_auth *a, const struct iovec *iov, unsigned n, uint8_t out[16])
{
	crypto_generichash_state st;

	if (!a->loaded)
		return sl_err_set(EINVAL, "auth mac: no key loaded");
	crypto_generichash_init(&st, a->key, SL_AUTH_KEY_LEN, SL_FRAME_MAC_LEN);
	for (unsigned i = 0; i < n; i++)
		crypto_generichash_update(&st, iov[i].iov_base, iov[i].iov_len);
	crypto_generichash_final(&st, out, SL_FRAME_MAC_LEN);
	sodium_memzero(&st, sizeof(st));
	return 0;
}
