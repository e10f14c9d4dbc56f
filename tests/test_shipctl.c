/* shipctl tail and verify on log directories, run as the real program
 * ($SHIPCTL, from meson): logs built through the store with known records
 * (some needing escapes) over several segments; tail's output compared with
 * what was appended (text and hex, --from, --count, --batches); verify on a
 * clean log, on bytes corrupted at known offsets (the segment and offset it
 * reports), on a torn tail and on a batch whose CRCs hold but whose LZ4
 * payload does not decode; every inspected log is unchanged afterwards;
 * errors for missing or empty directories and bad usage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/le.h"
#include "shiplog/store.h"
#include "store_helpers.h"

#define RECORDS	  2000
#define PER_BATCH 10
#define SEG_BYTES (256u << 10)
#define SEG1	  "00000000000000000001.seg"
#define LSN_MAX	  (2 * RECORDS + 64) /* records a test may append */

/* The log every test starts from: its directory, the appended records, and
 * where each batch landed. */
struct fx {
	char *dir;
	uint8_t *rec[LSN_MAX]; /* by LSN */
	uint32_t len[LSN_MAX];
	uint64_t next_lsn, position;
	uint32_t prev_crc;
	char *out, *err; /* the last run's output */
};

/* Deterministic records: a readable prefix, then bytes of every kind (so
 * the escapes are exercised), 40..240 bytes. */
static void make_record(uint64_t lsn, uint8_t *buf, uint32_t *len)
{
	uint64_t x = lsn * 0x9e3779b97f4a7c15ull;
	int n = snprintf((char *)buf, 32, "record %" PRIu64 " ", lsn);

	*len = 40 + (uint32_t)(lsn * 37 % 200);
	for (uint32_t i = (uint32_t)n; i < *len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = lsn % 3 ? (uint8_t)x : (uint8_t)("ab\\\n\t\r\"c"[x % 8]);
	}
}

/* Encode and append one batch of `count` records from fx->next_lsn. When
 * `mangle` is set its LZ4 payload is overwritten and both CRCs recomputed:
 * a batch every CRC vouches for that does not decode. */
static void append_batch(struct fx *f, struct sl_store *s, uint32_t count, int mangle)
{
	size_t cap = count * (SL_REC_PREFIX + 256) + 1;
	uint8_t *raw = malloc(cap), *out = malloc(sl_batch_bound(cap));
	struct sl_batch_builder b;
	struct sl_batch_hdr h = {.stream_id = 3, .epoch = 1, .leader_ts_ns = 42};
	int n, rc;

	assert_non_null(raw);
	assert_non_null(out);
	sl_batch_builder_init(&b, raw, cap);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t lsn = f->next_lsn + i;

		assert_true(lsn < LSN_MAX);

		f->rec[lsn] = malloc(256);
		make_record(lsn, f->rec[lsn], &f->len[lsn]);
		if (mangle) /* compressible, so the payload is LZ4 */
			memset(f->rec[lsn] + 20, 'z', f->len[lsn] - 20);
		assert_int_equal(sl_batch_builder_add(&b, f->rec[lsn], f->len[lsn]), 0);
	}
	memcpy(h.cluster_id, th_cluster, 16);
	h.base_lsn = f->next_lsn;
	h.position = f->position;
	h.prev_crc = f->prev_crc;
	n = sl_batch_encode(&h, raw, b.len, b.count, out, sl_batch_bound(cap));
	assert_true(n > 0);
	if (mangle) {
		assert_true(h.flags & SL_BATCH_F_LZ4);
		memset(out + SL_BATCH_HDR_SIZE, 0xff, h.stored_len);
		sl_le32_put(out + 68, sl_crc32c(0, out + SL_BATCH_HDR_SIZE, h.stored_len));
		sl_le32_put(out + 92, sl_crc32c(0, out, 92));
		h.hdr_crc = sl_le32_get(out + 92);
	}
	for (int i = 0; (rc = sl_store_append(s, out, (size_t)n)) == -EAGAIN; i++) {
		assert_true(i < 100000); /* a store full with nothing in flight */
		assert_true(sl_store_poll(s, 1) >= 0);
	}
	if (rc != 0)
		fail_msg("append: %s", sl_err_msg());
	f->next_lsn += count;
	f->position += (uint64_t)n;
	f->prev_crc = h.hdr_crc;
	free(raw);
	free(out);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sl_store_opts o;
	struct sl_store *s;

	assert_non_null(f);
	f->dir = th_mkdtemp("shipctl");
	o = th_opts(f->dir, 1);
	o.segment_bytes = SEG_BYTES;
	o.group_bytes = 64u << 10;
	assert_int_equal(sl_store_open(&s, &o), 0);
	f->next_lsn = 1;
	for (int i = 0; i < RECORDS / PER_BATCH; i++) {
		append_batch(f, s, PER_BATCH, 0);
		if (i % 7 == 6) /* several groups per segment */
			assert_int_equal(sl_store_sync(s), 0);
	}
	assert_int_equal(sl_store_sync(s), 0);
	sl_store_close(s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	th_rmrf(f->dir);
	free(f->dir);
	for (size_t i = 0; i < LSN_MAX; i++)
		free(f->rec[i]);
	free(f->out);
	free(f->err);
	free(f);
	return 0;
}

static char *slurp(const char *path)
{
	size_t len;
	uint8_t *b = th_read_file(path, &len);
	char *s = malloc(len + 1);

	assert_non_null(s);
	memcpy(s, b, len);
	s[len] = '\0';
	free(b);
	return s;
}

/* Run shipctl with the NULL-terminated arguments; its exit status, and its
 * output in f->out and f->err. */
static int run(struct fx *f, ...)
{
	const char *shipctl = getenv("SHIPCTL");
	char *argv[16], *outp = th_path(f->dir, "../shipctl.out"), *errp;
	va_list ap;
	int n = 0, status;
	pid_t pid;

	assert_non_null(shipctl);
	errp = th_path(f->dir, "../shipctl.err");
	argv[n++] = (char *)shipctl;
	va_start(ap, f);
	while ((argv[n] = va_arg(ap, char *)) != NULL)
		assert_true(++n < 16);
	va_end(ap);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execv(shipctl, argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	free(f->out);
	free(f->err);
	f->out = slurp(outp);
	f->err = slurp(errp);
	unlink(outp);
	unlink(errp);
	free(outp);
	free(errp);
	return WEXITSTATUS(status);
}

/* What tail must print for LSNs first..last: written here independently. */
static char *expected(const struct fx *f, uint64_t first, uint64_t last, int hex)
{
	size_t cap = 1 << 20, len = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	for (uint64_t lsn = first; lsn <= last; lsn++) {
		len += (size_t)sprintf(s + len, "%" PRIu64 " ", lsn);
		for (uint32_t i = 0; i < f->len[lsn]; i++) {
			uint8_t c = f->rec[lsn][i];

			if (hex)
				len += (size_t)sprintf(s + len, "%02x", c);
			else if (c == '\\' || c == '\n' || c == '\t' || c == '\r')
				len += (size_t)sprintf(s + len, "\\%c",
						       c == '\\'   ? '\\'
						       : c == '\n' ? 'n'
						       : c == '\t' ? 't'
								   : 'r');
			else if (c < 0x20 || c > 0x7e)
				len += (size_t)sprintf(s + len, "\\x%02x", c);
			else
				s[len++] = (char)c;
		}
		s[len++] = '\n';
		assert_true(len + 2048 < cap);
	}
	s[len] = '\0';
	return s;
}

static void assert_output(const struct fx *f, uint64_t first, uint64_t last, int hex)
{
	char *want = expected(f, first, last, hex);

	if (strcmp(f->out, want) != 0)
		fail_msg("tail printed %zu bytes, expected %zu for lsn %" PRIu64 "..%" PRIu64,
			 strlen(f->out), strlen(want), first, last);
	free(want);
}

/* Segment names of the log, and the batches of one of them. */
static int segments(const struct fx *f, char names[][32])
{
	return th_list_segments(f->dir, names, 16);
}

static int groups_of(const struct fx *f, const char *seg, struct th_group *g, int max)
{
	char *p = th_path(f->dir, seg);
	size_t len;
	uint8_t *img = th_read_file(p, &len);
	int n = th_parse_groups(img, len, g, max);

	free(img);
	free(p);
	return n;
}

/* Copy the log aside; after the command, check it was not changed. */
static char *snapshot(const struct fx *f)
{
	char *copy = th_mkdtemp("shipctl-copy");

	th_copy_dir(f->dir, copy);
	return copy;
}

static void assert_unchanged(const struct fx *f, char *copy)
{
	assert_true(th_dirs_equal(f->dir, copy));
	th_rmrf(copy);
	free(copy);
}

static void assert_contains(const char *s, const char *what)
{
	if (!strstr(s, what))
		fail_msg("expected \"%s\" in:\n%s", what, s);
}

/* ---- tail ---- */

static void test_tail_everything(void **state)
{
	struct fx *f = *state;
	char names[16][32];

	assert_true(segments(f, names) >= 2); /* the walk crosses segments */
	assert_int_equal(run(f, "tail", f->dir, NULL), 0);
	assert_output(f, 1, RECORDS, 0);
	assert_string_equal(f->err, "");
	assert_int_equal(run(f, "tail", "--hex", f->dir, NULL), 0);
	assert_output(f, 1, RECORDS, 1);
}

static void test_tail_from_count(void **state)
{
	struct fx *f = *state;

	/* mid-batch, across batches */
	assert_int_equal(run(f, "tail", f->dir, "--from", "777", "-n", "25", NULL), 0);
	assert_output(f, 777, 801, 0);
	/* the last record, then past it */
	assert_int_equal(run(f, "tail", f->dir, "--from", "2000", NULL), 0);
	assert_output(f, 2000, 2000, 0);
	assert_int_equal(run(f, "tail", f->dir, "--from", "2001", NULL), 0);
	assert_string_equal(f->out, "");
	assert_contains(f->err, "no record at lsn 2001");
	/* every record a later segment holds, from its first LSN on */
	assert_int_equal(run(f, "tail", f->dir, "--from", "1500", "--count", "500", NULL), 0);
	assert_output(f, 1500, 1999, 0);
}

static void test_tail_batches(void **state)
{
	struct fx *f = *state;
	char names[16][32], line[64];
	int nseg = segments(f, names), lines = 0;
	struct th_group g[64];
	int ng = groups_of(f, names[1], g, 64);

	assert_int_equal(run(f, "tail", "--batches", f->dir, NULL), 0);
	for (const char *p = f->out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, RECORDS / PER_BATCH);
	assert_contains(f->out,
			"lsn 1..10 records 10 epoch 1 position 0 segment " SEG1 " offset 4128 ");
	/* the second segment's first batch, where th_parse_groups finds it */
	assert_true(nseg >= 2 && ng > 0);
	snprintf(line, sizeof(line), "segment %s offset %" PRIu64 " ", names[1], g[0].batch_off[0]);
	assert_contains(f->out, line);
	/* -n counts batches here */
	assert_int_equal(run(f, "tail", "--batches", "-n", "2", f->dir, NULL), 0);
	assert_contains(f->out, "lsn 11..20 records 10");
	assert_null(strstr(f->out, "lsn 21..30"));
}

static void test_tail_errors(void **state)
{
	struct fx *f = *state;
	char *missing = th_path(f->dir, "nothing-here"), *empty = th_mkdtemp("shipctl-empty");

	assert_int_equal(run(f, "tail", missing, NULL), 1);
	assert_contains(f->err, missing);
	assert_contains(f->err, "No such file or directory");
	assert_string_equal(f->out, "");
	assert_int_equal(run(f, "tail", empty, NULL), 1);
	assert_contains(f->err, "holds no log segment");
	assert_int_equal(run(f, "verify", missing, NULL), 1);
	assert_contains(f->err, missing);
	assert_int_equal(run(f, "verify", empty, NULL), 1);
	assert_contains(f->err, "holds no log segment");
	/* usage */
	assert_int_equal(run(f, "verify", NULL), 2);
	assert_int_equal(run(f, "tail", f->dir, "--from", "x", NULL), 2);
	assert_int_equal(run(f, "tail", f->dir, "--from", "0", NULL), 2);
	assert_int_equal(run(f, "tail", f->dir, f->dir, NULL), 2);
	assert_int_equal(run(f, "tial", NULL), 2);
	assert_int_equal(run(f, "--help", NULL), 0);
	assert_contains(f->out, "verify   DIR");
	assert_contains(f->out, "promote  NODE");
	assert_contains(f->out, "--force");
	/* promote wants a node; --force is promote's alone */
	assert_int_equal(run(f, "promote", NULL), 2);
	assert_contains(f->err, "which node?");
	assert_int_equal(run(f, "promote", "x", "-s", missing, NULL), 2);
	assert_int_equal(run(f, "stepdown", "--force", NULL), 2);
	assert_contains(f->err, "--force is promote's");
	th_rmrf(empty);
	free(empty);
	free(missing);
}

/* --from below the oldest segment (retention dropped it). */
static void test_tail_before_oldest(void **state)
{
	struct fx *f = *state;
	char names[16][32], *p;
	int n = segments(f, names);
	uint64_t base;

	assert_true(n >= 2);
	p = th_path(f->dir, names[0]);
	assert_int_equal(unlink(p), 0);
	free(p);
	base = strtoull(names[1], NULL, 10);
	assert_int_equal(run(f, "tail", f->dir, "--from", "1", NULL), 1);
	assert_contains(f->err, "lsn 1 is not held");
	assert_int_equal(run(f, "tail", f->dir, "-n", "3", NULL), 0);
	assert_output(f, base, base + 2, 0);
}

/* ---- verify ---- */

static void test_verify_clean(void **state)
{
	struct fx *f = *state;
	char *copy = snapshot(f), want[128];

	assert_int_equal(run(f, "verify", f->dir, NULL), 0);
	snprintf(want, sizeof(want), "lsn 1..2000: 2000 records in 200 batches");
	assert_contains(f->out, want);
	assert_contains(f->out, ": ok\n");
	assert_unchanged(f, copy);
}

/* A byte of a batch early in segment `seg` (not its last group): corruption,
 * reported at that batch; tail stops there after the records before it. */
static void corrupt_and_check(struct fx *f, int seg, uint64_t delta)
{
	char names[16][32], want[160], *p, *copy;
	struct th_group g[64];
	int ng;
	uint64_t off;

	segments(f, names);
	ng = groups_of(f, names[seg], g, 64);
	assert_true(ng >= 3);
	off = g[1].batch_off[0];
	p = th_path(f->dir, names[seg]);
	th_flip_byte(p, off + delta);
	free(p);
	copy = snapshot(f);
	assert_int_equal(run(f, "verify", f->dir, NULL), 1);
	snprintf(want, sizeof(want), "corrupt: segment %s offset %" PRIu64 ": ", names[seg], off);
	assert_contains(f->err, want);
	assert_contains(f->err, "not a torn write; nothing was changed");
	assert_int_equal(run(f, "tail", f->dir, NULL), 1);
	snprintf(want, sizeof(want), "stopped at %s/%s offset %" PRIu64, f->dir, names[seg], off);
	assert_contains(f->err, want);
	assert_unchanged(f, copy);
}

static void test_verify_payload_byte(void **state)
{
	corrupt_and_check(*state, 0, SL_BATCH_HDR_SIZE + 5);
}

static void test_verify_header_byte_later_segment(void **state)
{
	corrupt_and_check(*state, 1, 44); /* base_lsn */
}

/* The last batch of the log damaged: a torn tail (no later group vouches
 * for it), which shipd would cut. verify says so (exit 3) and cuts nothing. */
static void test_verify_torn_tail(void **state)
{
	struct fx *f = *state;
	char names[16][32], want[160], *p, *copy;
	struct th_group g[64];
	int nseg = segments(f, names), ng = groups_of(f, names[nseg - 1], g, 64);
	uint64_t off = g[ng - 1].batch_off[g[ng - 1].nbatches - 1];

	p = th_path(f->dir, names[nseg - 1]);
	th_flip_byte(p, off + SL_BATCH_HDR_SIZE + 1);
	free(p);
	copy = snapshot(f);
	assert_int_equal(run(f, "verify", f->dir, NULL), 3);
	snprintf(want, sizeof(want), "torn tail: segment %s offset %" PRIu64 ": bad batch",
		 names[nseg - 1], off);
	assert_contains(f->out, want);
	assert_contains(f->out, "lsn 1..1990: 1990 records in 199 batches");
	assert_unchanged(f, copy);
}

/* CRCs that vouch for a payload LZ4 cannot decode: only decoding finds it. */
static void test_verify_decodes(void **state)
{
	struct fx *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 0);
	struct sl_store *s;
	struct sl_store_info info;
	char want[160], *copy;

	o.segment_bytes = SEG_BYTES;
	o.group_bytes = 64u << 10;
	assert_int_equal(sl_store_open(&s, &o), 0);
	append_batch(f, s, PER_BATCH, 1);
	append_batch(f, s, PER_BATCH, 0);
	assert_int_equal(sl_store_sync(s), 0);
	sl_store_get_info(s, &info);
	assert_int_equal(info.next_lsn, RECORDS + 2 * PER_BATCH + 1);
	sl_store_close(s);
	copy = snapshot(f);
	assert_int_equal(run(f, "verify", f->dir, NULL), 1);
	snprintf(want, sizeof(want), "batch at lsn %d", RECORDS + 1);
	assert_contains(f->err, want);
	assert_contains(f->err, "corrupt: segment ");
	assert_unchanged(f, copy);
	/* tail prints everything before it, then fails */
	assert_int_equal(run(f, "tail", f->dir, NULL), 1);
	assert_output(f, 1, RECORDS, 0);
}

/* Retention turns old segments into spares and later segments reuse them
 * (recycled files that still hold their earlier life past the new groups):
 * the reader must stop at each segment's own groups. */
static void test_recycled_segments(void **state)
{
	struct fx *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 0);
	struct sl_store *s;
	struct sl_store_info info;
	char names[16][32], *copy;
	int dropped, recycled = 0;

	o.segment_bytes = SEG_BYTES;
	o.group_bytes = 64u << 10;
	assert_int_equal(sl_store_open(&s, &o), 0);
	dropped = sl_store_drop_before(s, RECORDS);
	assert_true(dropped >= 1);
	for (int i = 0; i < RECORDS / PER_BATCH; i++)
		append_batch(f, s, PER_BATCH, 0);
	assert_int_equal(sl_store_sync(s), 0);
	sl_store_get_info(s, &info);
	sl_store_close(s);
	/* some segments are recycled files (SL_SEG_F_RECYCLED, flags at byte 6) */
	for (int i = 0, n = th_list_segments(f->dir, names, 16); i < n; i++) {
		char *p = th_path(f->dir, names[i]);
		size_t len;
		uint8_t *img = th_read_file(p, &len);

		recycled += (sl_le16_get(img + 6) & 1) != 0;
		free(img);
		free(p);
	}
	assert_true(recycled >= 1);
	assert_int_equal(run(f, "tail", f->dir, NULL), 0);
	assert_output(f, info.first_lsn, 2 * RECORDS, 0);
	assert_int_equal(run(f, "tail", f->dir, "--from", "1999", "-n", "20", NULL), 0);
	assert_output(f, 1999, 2018, 0);
	copy = snapshot(f);
	assert_int_equal(run(f, "verify", f->dir, NULL), 0);
	assert_contains(f->out, ": ok\n");
	assert_unchanged(f, copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_tail_everything, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tail_from_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tail_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tail_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tail_before_oldest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_clean, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_payload_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_header_byte_later_segment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_torn_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_decodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recycled_segments, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
