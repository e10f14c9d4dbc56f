/* Recovery: a torn tail cut at every byte of the last group, torn tails with
 * several groups in flight and across segments, corruption refused without
 * touching the directory, foreign and other-cluster segments, half-created
 * segments. The expected outcomes come from an independent parse of the
 * segment image (store_helpers.c), not from the store's own code. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/le.h"
#include "shiplog/log.h"
#include "shiplog/merkle.h"
#include "shiplog/store.h"
#include "store_helpers.h"

#define SEG1 "00000000000000000001.seg"

struct fixture {
	char *dir;
	char *copy; /* pristine copy of dir, to check nothing changed */
	struct sl_store_opts o;
	struct sl_store *s;
	struct th_log log;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = th_mkdtemp("recovery");
	f->copy = th_mkdtemp("recovery-copy");
	f->o = th_opts(f->dir, 1);
	f->o.segment_bytes = 64 << 10;
	f->o.group_bytes = 16 << 10;
	f->o.max_inflight = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sl_store_close(f->s);
	th_log_free(&f->log);
	th_rmrf(f->dir);
	th_rmrf(f->copy);
	free(f->dir);
	free(f->copy);
	free(f);
	return 0;
}

static void open_ok(struct fixture *f)
{
	struct sl_store_info info;
	int rc = sl_store_open(&f->s, &f->o);

	if (rc < 0)
		fail_msg("open: %d %s", rc, sl_err_msg());
	f->o.create = 0;
	if (f->log.n == 0 && f->log.b == NULL) {
		sl_store_get_info(f->s, &info);
		th_log_init(&f->log, &info);
	}
}

static void close_store(struct fixture *f)
{
	sl_store_close(f->s);
	f->s = NULL;
}

static void append_ok(struct fixture *f, uint32_t records, uint32_t rec_bytes, uint32_t seed)
{
	int rc = th_append(f->s, &f->log, records, rec_bytes, seed);

	if (rc < 0)
		fail_msg("append: %d %s", rc, sl_err_msg());
}

static void sync_ok(struct fixture *f)
{
	int rc = sl_store_sync(f->s);

	if (rc < 0)
		fail_msg("sync: %d %s", rc, sl_err_msg());
}

/* Groups of one batch each, every one durable before the next is written
 * (so each vouches for the one before it). */
static void durable_groups(struct fixture *f, int n, uint32_t rec_bytes)
{
	for (int i = 0; i < n; i++) {
		append_ok(f, 2, rec_bytes, (uint32_t)i % 2);
		sync_ok(f);
	}
}

/* Appends three batches that travel as one group: with max_inflight 1, they
 * fill while the group before them is in flight. */
static void three_batch_group(struct fixture *f, uint32_t rec_bytes)
{
	append_ok(f, 1, rec_bytes, 1);
	append_ok(f, 2, rec_bytes, 0);
	append_ok(f, 1, rec_bytes, 1);
	append_ok(f, 3, rec_bytes / 2, 1);
	sync_ok(f);
}

static int64_t last_nonzero(const uint8_t *p, uint64_t from, uint64_t to)
{
	for (uint64_t i = to; i > from; i--)
		if (p[i - 1] != 0)
			return (int64_t)(i - 1);
	return -1;
}

/* Number of log batches before the last group (they must all survive). */
static size_t batches_before(const struct fixture *f, const struct th_group *g, int ng)
{
	size_t n = 0;

	for (int i = 0; i < ng - 1; i++)
		n += (size_t)g[i].nbatches;
	(void)f;
	return n;
}

/* The torn tail rule at every byte of the last group: zero the segment from
 * offset k, reopen, and the store must keep exactly the batches wholly before
 * k, report the torn bytes, and lose nothing before the last group. */
static void test_torn_tail_every_offset(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct th_group g[64];
	const struct th_group *last;
	uint8_t *img;
	size_t len, before;
	int ng;
	enum sl_log_level lvl = sl_log_get_level();

	open_ok(f);
	durable_groups(f, 3, 120);
	three_batch_group(f, 90);
	close_store(f);
	img = th_read_file(seg, &len);
	ng = th_parse_groups(img, len, g, 64);
	assert_int_equal(ng, 5);
	last = &g[ng - 1];
	assert_int_equal(last->nbatches, 3);
	before = batches_before(f, g, ng);
	assert_int_equal(before + 3, f->log.n);
	sl_log_set_level(SL_LOG_ERROR); /* one torn-tail warning per offset otherwise */
	for (uint64_t k = last->off; k <= last->off + 32 + last->batch_bytes; k++) {
		struct sl_store_info info;
		struct th_log expect = f->log;
		uint64_t x = last->off, torn;
		int kept = 0, rc;
		int64_t nz;

		while (kept < 3 && last->batch_off[kept] + last->batch_len[kept] <= k)
			kept++;
		if (kept > 0)
			x = last->batch_off[kept - 1] + last->batch_len[kept - 1];
		nz = k > x ? last_nonzero(img, x, k) : -1;
		torn = nz >= 0 ? (uint64_t)nz + 1 - x : 0;

		th_write_file(seg, img, len);
		th_zero_range(seg, k, len - k);
		rc = sl_store_open(&f->s, &f->o);
		if (rc < 0)
			fail_msg("offset %" PRIu64 ": open: %d %s", k, rc, sl_err_msg());
		sl_store_get_info(f->s, &info);
		if (info.torn_bytes != torn)
			fail_msg("offset %" PRIu64 ": torn %" PRIu64 " expected %" PRIu64, k,
				 info.torn_bytes, torn);
		expect.n = before + (size_t)kept;
		expect.next_lsn = f->log.b[expect.n - 1].lsn + f->log.b[expect.n - 1].count;
		assert_int_equal(info.next_lsn, expect.next_lsn);
		assert_int_equal(info.durable_lsn, expect.next_lsn - 1);
		if (k % 61 == 0 || k == last->off || kept == 3)
			th_check_reads(f->s, &expect, 0);
		close_store(f);
	}
	sl_log_set_level(lvl);
	/* After a cut, the log goes on and reopens exactly. */
	th_write_file(seg, img, len);
	th_zero_range(seg, last->batch_off[1] + 10, len - last->batch_off[1] - 10);
	open_ok(f);
	/* keeps the first of the three */
	th_log_truncate(&f->log, f->log.b[before].lsn + f->log.b[before].count - 1);
	append_ok(f, 4, 200, 1);
	sync_ok(f);
	close_store(f);
	open_ok(f);
	th_check_reads(f->s, &f->log, 0);
	free(img);
	free(seg);
}

/* A file cut short (not just zeroed) is a torn tail too. */
static void test_torn_by_short_file(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct th_group g[64];
	struct sl_store_info info;
	uint8_t *img;
	size_t len;
	int ng;

	open_ok(f);
	durable_groups(f, 3, 300);
	close_store(f);
	img = th_read_file(seg, &len);
	ng = th_parse_groups(img, len, g, 64);
	assert_int_equal(ng, 3);
	assert_int_equal(truncate(seg, (off_t)(g[2].off + 100)), 0);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes,
			 last_nonzero(img, g[2].off, g[2].off + 100) + 1 - (int64_t)g[2].off);
	th_log_truncate(&f->log, f->log.b[1].lsn + 1);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	append_ok(f, 2, 300, 0);
	sync_ok(f);
	close_store(f);
	open_ok(f);
	th_check_reads(f->s, &f->log, 0);
	free(img);
	free(seg);
}

/* Two groups in flight: the second landed, the first did not. The second
 * does not vouch for the first (it was submitted before the first was
 * durable), so this is a torn tail and both go. */
static void test_torn_with_two_in_flight(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct th_group g[64];
	struct sl_store_info info;
	uint8_t *img;
	size_t len;
	int ng;

	f->o.max_inflight = 2;
	open_ok(f);
	durable_groups(f, 2, 200);
	append_ok(f, 2, 200, 1); /* group 3 */
	append_ok(f, 2, 200, 1); /* group 4, submitted while 3 is in flight */
	sync_ok(f);
	close_store(f);
	img = th_read_file(seg, &len);
	ng = th_parse_groups(img, len, g, 64);
	assert_int_equal(ng, 4);
	assert_true(g[3].durable_through < g[2].seq);
	th_zero_range(seg, g[2].batch_off[0] + 50, 20); /* tear group 3 */
	open_ok(f);
	sl_store_get_info(f->s, &info);
	th_log_truncate(&f->log, f->log.b[1].lsn + 1);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	assert_true(info.torn_bytes > 0);
	th_check_reads(f->s, &f->log, 0);
	close_store(f);
	free(img);
	img = th_read_file(seg, &len);
	assert_int_equal(th_parse_groups(img, len, g, 64), 2); /* group 4 is gone too */
	free(img);
	free(seg);
}

/* Corruption before the last group: refused, naming segment and offset, and
 * not a byte of the directory changes. */
static const char *names_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static void check_refused(struct fixture *f, const char *segname, uint64_t off)
{
	char where[64];
	int rc;

	th_copy_dir(f->dir, f->copy);
	rc = sl_store_open(&f->s, &f->o);
	assert_int_equal(rc, -EBADMSG);
	assert_null(f->s);
	assert_non_null(strstr(sl_err_msg(), segname));
	snprintf(where, sizeof(where), "offset %" PRIu64, off);
	if (strstr(sl_err_msg(), where) == NULL)
		fail_msg("message lacks '%s': %s", where, sl_err_msg());
	assert_true(th_dirs_equal(f->dir, f->copy));
}

static void test_corrupt_payload_refused(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct th_group g[64];
	uint8_t *img;
	size_t len;

	open_ok(f);
	durable_groups(f, 6, 300);
	close_store(f);
	img = th_read_file(seg, &len);
	assert_int_equal(th_parse_groups(img, len, g, 64), 6);
	th_flip_byte(seg, g[2].batch_off[0] + 200);
	check_refused(f, SEG1, g[2].batch_off[0]);
	assert_non_null(strstr(sl_err_msg(), "corruption"));
	free(img);
	free(seg);
}

static void test_corrupt_batch_header_refused(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct th_group g[64];
	uint8_t *img;
	size_t len;

	open_ok(f);
	durable_groups(f, 4, 300);
	close_store(f);
	img = th_read_file(seg, &len);
	assert_int_equal(th_parse_groups(img, len, g, 64), 4);
	th_flip_byte(seg, g[1].batch_off[0] + 40); /* base lsn */
	check_refused(f, SEG1, g[1].batch_off[0]);
	free(img);
	free(seg);
}

static void test_zeroed_group_refused(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct th_group g[64];
	uint8_t *img;
	size_t len;

	open_ok(f);
	durable_groups(f, 4, 300);
	close_store(f);
	img = th_read_file(seg, &len);
	assert_int_equal(th_parse_groups(img, len, g, 64), 4);
	th_zero_range(seg, g[1].off, TH_BLOCK); /* a whole block of zeros, mid-log */
	check_refused(f, SEG1, g[1].off);
	free(img);
	free(seg);
}

/* The rule's one limit: a damaged LAST group has no later group to vouch for
 * it, so it looks torn and is cut. */
static void test_corrupt_last_group_looks_torn(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct th_group g[64];
	struct sl_store_info info;
	uint8_t *img;
	size_t len;

	open_ok(f);
	durable_groups(f, 3, 300);
	close_store(f);
	img = th_read_file(seg, &len);
	assert_int_equal(th_parse_groups(img, len, g, 64), 3);
	th_flip_byte(seg, g[2].batch_off[0] + 150);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes,
			 last_nonzero(img, g[2].off, g[2].off + 32 + g[2].batch_bytes) + 1 -
			     (int64_t)g[2].off);
	th_log_truncate(&f->log, f->log.b[1].lsn + 1);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	free(img);
	free(seg);
}

/* Across segments: the last group of one segment torn, the next segment's
 * groups submitted before it was durable: cut, and the later segment goes. */
static void test_torn_across_segments(void **state)
{
	struct fixture *f = *state;
	char names[32][32];
	struct th_group g[64], h[64];
	struct sl_store_info info;
	char *a, *b;
	uint8_t *ia, *ib;
	size_t la, lb, keep = 0;
	int n, ga, gb;

	f->o.max_inflight = 2;
	f->o.group_bytes = 8 << 10;
	open_ok(f);
	/* 64 KiB segments: a header block and 15 one-block groups. Fill 14. */
	for (int i = 0; i < 14; i++) {
		append_ok(f, 1, 2000, 1);
		sync_ok(f);
	}
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.segments, 1);
	/* With the spare ready the roll-over waits for no I/O (a spare still
	 * taking its zeros would be waited for, and that wait can reap the
	 * first group's completion before the second is submitted). */
	th_wait_spare(f->s);
	/* Two groups at once: the last of segment 1 and the first of 2. */
	append_ok(f, 1, 2000, 1);
	append_ok(f, 1, 2000, 1);
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.segments, 2);
	close_store(f);
	n = th_list_segments(f->dir, names, 32);
	assert_int_equal(n, 2);
	a = th_path(f->dir, names[0]);
	b = th_path(f->dir, names[1]);
	ia = th_read_file(a, &la);
	ib = th_read_file(b, &lb);
	ga = th_parse_groups(ia, la, g, 64);
	gb = th_parse_groups(ib, lb, h, 64);
	assert_int_equal(ga, 15);
	assert_int_equal(gb, 1);
	assert_true(h[0].durable_through < g[ga - 1].seq);
	th_flip_byte(a, g[ga - 1].batch_off[0] + 500);
	f->o.repair_holes = 1; /* not vouched for: torn, not a hole */
	open_ok(f);
	assert_int_equal(sl_store_holes(f->s, NULL, 0), 0);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.segments, 1);
	assert_true(info.torn_bytes > g[ga - 1].batch_len[0]);
	assert_int_equal(access(b, F_OK), -1);
	for (int i = 0; i < ga - 1; i++)
		keep += (size_t)g[i].nbatches;
	th_log_truncate(&f->log, f->log.b[keep].lsn - 1);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
	free(ia);
	free(ib);
	free(a);
	free(b);
}

/* Two segments of durable one-batch groups (each vouches for the one
 * before it); returns segment 1's path, its image and groups. */
static char *two_segments(struct fixture *f, struct th_group *g, int *ng, uint8_t **img)
{
	char names[32][32];
	struct sl_store_info info;
	size_t len;
	char *a;

	open_ok(f);
	for (int i = 0; i < 18; i++) {
		append_ok(f, 1, 2000, 1);
		sync_ok(f);
	}
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.segments, 2);
	close_store(f);
	assert_int_equal(th_list_segments(f->dir, names, 32), 2);
	a = th_path(f->dir, names[0]);
	*img = th_read_file(a, &len);
	*ng = th_parse_groups(*img, len, g, 64);
	assert_true(*ng >= 10);
	return a;
}

/* repair_holes: a payload flipped in a sealed segment, valid batches after
 * it, its group vouched for: the log opens whole, the batch kept as a hole
 * (its position, length and leaf from the intact header), reads of it fail,
 * everything else reads back; a rewrite with the good copy fills it. The
 * same log is refused without repair_holes; a flipped header, or a flip in
 * the last segment, is still refused. */
static void test_corrupt_payload_kept_as_hole(void **state)
{
	struct fixture *f = *state;
	struct th_group g[64];
	struct sl_store_bad hole;
	struct sl_store_info info;
	struct sl_store_bad bad;
	uint8_t *img, *good;
	uint64_t pos;
	int ng;
	char *a = two_segments(f, g, &ng, &img);

	pos = sl_le64_get(img + g[3].batch_off[0] + 56);
	good = malloc(g[3].batch_len[0]);
	memcpy(good, img + g[3].batch_off[0], g[3].batch_len[0]);
	th_flip_byte(a, g[3].batch_off[0] + 500);
	check_refused(f, names_of(a), g[3].batch_off[0]);
	f->o.repair_holes = 1;
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(sl_store_holes(f->s, &hole, 1), 1);
	assert_int_equal(hole.pos, pos);
	assert_int_equal(hole.len, g[3].batch_len[0]);
	assert_int_equal(hole.offset, g[3].batch_off[0]);
	assert_int_equal(hole.leaf_hash, sl_merkle_leaf(pos, hole.len, sl_le32_get(good + 92)));
	assert_int_equal(sl_store_scrub(f->s, 1 << 20, &bad), 2); /* the scrub finds it too */
	assert_int_equal(bad.pos, pos);
	assert_int_equal(sl_store_rewrite(f->s, pos, good, hole.len), 0);
	assert_int_equal(sl_store_holes(f->s, &hole, 1), 0);
	th_check_reads(f->s, &f->log, 0);
	close_store(f);
	/* A batch header flipped: its length and leaf are not known. */
	th_flip_byte(a, g[5].batch_off[0] + 40);
	check_refused(f, names_of(a), g[5].batch_off[0]);
	free(good);
	free(img);
	free(a);
}

static void test_foreign_segment_refused(void **state)
{
	struct fixture *f = *state;
	char *junk = th_path(f->dir, "00000000000000000999.seg");
	uint8_t buf[8192];

	open_ok(f);
	durable_groups(f, 2, 100);
	close_store(f);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	th_write_file(junk, buf, sizeof(buf));
	th_copy_dir(f->dir, f->copy);
	assert_int_equal(sl_store_open(&f->s, &f->o), -EBADMSG);
	assert_non_null(strstr(sl_err_msg(), "00000000000000000999.seg"));
	assert_non_null(strstr(sl_err_msg(), "not a shiplog segment"));
	assert_true(th_dirs_equal(f->dir, f->copy));
	free(junk);
}

/* A segment of another cluster (same stream and node) is refused by name. */
static void test_other_cluster_segment_refused(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts other = f->o;
	struct sl_store *s2;
	struct th_log l2;
	struct sl_store_info info;
	char *src, *dst;
	uint8_t *img;
	size_t len;

	/* A log of another cluster in f->copy. */
	other.dir = f->copy;
	other.create = 1;
	memcpy(other.cluster_id, th_other_cluster, 16);
	assert_int_equal(sl_store_open(&s2, &other), 0);
	sl_store_get_info(s2, &info);
	th_log_init(&l2, &info);
	memcpy(l2.cluster, th_other_cluster, 16);
	assert_int_equal(th_append(s2, &l2, 1, 100, 0), 0);
	assert_int_equal(sl_store_sync(s2), 0);
	sl_store_close(s2);
	th_log_free(&l2);
	/* Our own log, then their segment dropped in under a later name. */
	open_ok(f);
	durable_groups(f, 2, 100);
	close_store(f);
	src = th_path(f->copy, SEG1);
	dst = th_path(f->dir, "00000000000000000100.seg");
	img = th_read_file(src, &len);
	th_write_file(dst, img, len);
	assert_int_equal(sl_store_open(&f->s, &f->o), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "00000000000000000100.seg"));
	assert_non_null(strstr(sl_err_msg(), "another cluster"));
	/* And a whole directory of another cluster: the superblock says so. */
	other.create = 0;
	memcpy(other.cluster_id, th_cluster, 16);
	assert_int_equal(sl_store_open(&s2, &other), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "superblock"));
	assert_non_null(strstr(sl_err_msg(), "another cluster"));
	free(img);
	free(src);
	free(dst);
}

/* A crash while creating a segment leaves an all-zero file: removed. */
static void test_unborn_segment_removed(void **state)
{
	struct fixture *f = *state;
	char *unborn = th_path(f->dir, "00000000000000000050.seg");
	uint8_t *zeros = calloc(1, 64 << 10);

	open_ok(f);
	durable_groups(f, 3, 100);
	close_store(f);
	th_write_file(unborn, zeros, 64 << 10);
	open_ok(f);
	assert_int_equal(access(unborn, F_OK), -1);
	th_check_reads(f->s, &f->log, 0);
	free(zeros);
	free(unborn);
}

/* Truncation leaves a group that ends early; recovery reads past it. */
static void test_truncated_group_recovers(void **state)
{
	struct fixture *f = *state;
	struct sl_store_info info;

	open_ok(f);
	durable_groups(f, 2, 100);
	three_batch_group(f, 150);
	/* Keep the first of the three-batch group's batches (2 records). */
	assert_int_equal(sl_store_truncate_after(f->s, f->log.b[f->log.n - 3].lsn + 1), 0);
	th_log_truncate(&f->log, f->log.b[f->log.n - 3].lsn + 1);
	close_store(f);
	open_ok(f); /* the early-ended group is the last thing in the log */
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	append_ok(f, 2, 100, 0);
	sync_ok(f);
	close_store(f);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
}

/* --- spares and recycled segments ---------------------------------------- */

static void rename_file(const char *dir, const char *from, const char *to)
{
	char *a = th_path(dir, from), *b = th_path(dir, to);

	assert_int_equal(rename(a, b), 0);
	free(a);
	free(b);
}

/* A crash in a roll-over after the spare got its header and groups but
 * before its new name was durable leaves a spare holding groups that were
 * never reported durable. Appending the very same batches again makes those
 * groups valid in every respect (CRCs, sequence, chain) but their tag: the
 * log must end where the new appends end, not where the old ones did. */
static void test_crash_mid_roll_leaves_spare(void **state)
{
	struct fixture *f = *state;
	struct sl_store_info info;
	char names[16][32], *spare;
	uint64_t seg2;
	int n;

	f->o.max_inflight = 1;
	open_ok(f);
	for (int i = 0;; i++) {
		append_ok(f, 1, 2500, 1);
		sync_ok(f);
		sl_store_get_info(f->s, &info);
		if (info.segments >= 2 || i == 1000)
			break;
	}
	for (int i = 0; i < 8; i++) { /* groups of the new segment */
		append_ok(f, 1, 2500, 1);
		sync_ok(f);
	}
	close_store(f);
	n = th_list_segments(f->dir, names, 16);
	assert_int_equal(n, 2);
	seg2 = strtoull(names[1], NULL, 10);
	/* The rename never reached the disk. */
	rename_file(f->dir, names[1], "00000000000000000777.spare");
	th_log_truncate(&f->log, seg2 - 1);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_lsn, seg2);
	assert_int_equal(info.segments, 1);
	assert_true(info.spares >= 1);
	/* The same batches again, fewer of them: the roll-over takes the
	 * recycled spare (preferred), under a new tag. */
	for (int i = 0; i < 4; i++) {
		append_ok(f, 1, 2500, 1);
		sync_ok(f);
	}
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.segments, 2);
	close_store(f);
	spare = th_path(f->dir, "00000000000000000777.spare");
	assert_int_equal(access(spare, F_OK), -1); /* it became the segment */
	free(spare);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
	append_ok(f, 2, 300, 0);
	sync_ok(f);
	close_store(f);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
}

/* Spares in any state a crash can leave while one is prepared (empty,
 * short, full size) or junk with a similar name: the log opens, usable
 * spares are taken, the others removed, and appends roll over into them. */
static void test_leftover_spares(void **state)
{
	struct fixture *f = *state;
	struct sl_store_info info;
	char names[16][32];
	uint8_t *zeros = calloc(1, 64 << 10);
	char *p;

	open_ok(f);
	durable_groups(f, 3, 200);
	close_store(f);
	p = th_path(f->dir, "00000000000000000010.spare");
	th_write_file(p, zeros, 0); /* created, not yet fallocated */
	free(p);
	p = th_path(f->dir, "00000000000000000011.spare");
	th_write_file(p, zeros, 20000); /* fallocate cut short */
	free(p);
	p = th_path(f->dir, "00000000000000000012.spare");
	th_write_file(p, zeros, 64 << 10); /* complete */
	free(p);
	p = th_path(f->dir, "junk.spare");
	th_write_file(p, zeros, 64 << 10);
	free(p);
	open_ok(f);
	/* The complete one is kept (with the one this log prepared before),
	 * the two half-made ones are removed. */
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.spares, 2);
	assert_int_equal(th_list_spares(f->dir, names, 16), 2);
	assert_string_equal(names[1], "00000000000000000012.spare");
	p = th_path(f->dir, "junk.spare"); /* not ours: left alone */
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	th_check_reads(f->s, &f->log, 0);
	for (int i = 0; i < 40; i++)
		append_ok(f, 2, 1000, (uint32_t)i % 2);
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_true(info.segments >= 2);
	close_store(f);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
	free(zeros);
}

/* First index of f->log holding an lsn >= lsn. */
static size_t first_batch_from(const struct fixture *f, uint64_t lsn)
{
	size_t i = 0;

	while (i < f->log.n && f->log.b[i].lsn < lsn)
		i++;
	return i;
}

/* Fill segments, drop them into spares, and roll into a recycled one: the
 * tail is then a recycled segment holding `groups` durable groups, and the
 * old groups of the file past them. Returns the tail's name in name. */
static void recycled_tail(struct fixture *f, int groups, char name[32])
{
	struct sl_store_info info;
	char names[16][32];

	open_ok(f);
	for (int i = 0; i < 30; i++) {
		append_ok(f, 1, 2500, 1);
		sync_ok(f);
	}
	assert_true(sl_store_drop_before(f->s, f->log.next_lsn) >= 1);
	for (int i = 0;; i++) {
		append_ok(f, 1, 2500, 1);
		sync_ok(f);
		sl_store_get_info(f->s, &info);
		if (info.segments >= 2 || i == 1000)
			break;
	}
	for (int i = 1; i < groups; i++)
		durable_groups(f, 1, 300 + 50 * (uint32_t)i);
	close_store(f);
	assert_int_equal(th_list_segments(f->dir, names, 16), 2);
	memcpy(name, names[1], 32);
}

/* A torn last group in a recycled segment is cut like any other, and only
 * the segment's own bytes count as torn (not its earlier life past them). */
static void test_recycled_torn_tail(void **state)
{
	struct fixture *f = *state;
	struct sl_store_info info;
	struct th_group g[64];
	char name[32], *seg;
	uint8_t *img;
	size_t len, keep;
	int ng;

	recycled_tail(f, 4, name);
	seg = th_path(f->dir, name);
	img = th_read_file(seg, &len);
	assert_int_equal(img[6], 1); /* recycled */
	ng = th_parse_groups(img, len, g, 64);
	assert_int_equal(ng, 4);
	assert_true(last_nonzero(img, g[3].off + TH_BLOCK, len) > (int64_t)(g[3].off + TH_BLOCK));
	th_flip_byte(seg, g[3].batch_off[0] + 60);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_true(info.torn_bytes > 0);
	assert_true(info.torn_bytes <= g[3].batch_len[0] + 32);
	keep = f->log.n - 1;
	th_log_truncate(&f->log, f->log.b[keep].lsn - 1);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, first_batch_from(f, info.first_lsn));
	/* The cut zeroed that group's header block; the old life stays. */
	free(img);
	img = th_read_file(seg, &len);
	assert_int_equal(th_parse_groups(img, len, g, 64), 3);
	for (int i = 0; i < 3; i++)
		durable_groups(f, 1, 700);
	close_store(f);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, first_batch_from(f, info.first_lsn));
	free(img);
	free(seg);
}

/* In a recycled segment, a damaged header of a durable group looks like the
 * file's old bytes, but a later group vouches for it: corruption, refused. */
static void test_recycled_corruption_refused(void **state)
{
	struct fixture *f = *state;
	struct th_group g[64];
	char name[32], *seg;
	uint8_t *img;
	size_t len;

	recycled_tail(f, 5, name);
	seg = th_path(f->dir, name);
	img = th_read_file(seg, &len);
	assert_int_equal(th_parse_groups(img, len, g, 64), 5);
	th_flip_byte(seg, g[2].off + 10); /* its header */
	check_refused(f, name, g[2].off);
	free(img);
	free(seg);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A log written before tags (segment format version 1: no tag, no flags,
 * zero where group headers now carry the tag) opens and goes on. */
static void test_version1_segment_opens(void **state)
{
	struct fixture *f = *state;
	char *seg = th_path(f->dir, SEG1);
	struct sl_store_info info;
	struct th_group g[64];
	uint8_t *img;
	size_t len;
	int ng;

	open_ok(f);
	durable_groups(f, 4, 250);
	close_store(f);
	img = th_read_file(seg, &len);
	ng = th_parse_groups(img, len, g, 64);
	assert_int_equal(ng, 4);
	img[4] = 1; /* version */
	img[5] = 0;
	put_u32(img + 76, 0);
	put_u32(img + 124, sl_crc32c(0, img, 124));
	for (int i = 0; i < ng; i++) {
		put_u32(img + g[i].off + 24, 0);
		put_u32(img + g[i].off + 28, sl_crc32c(0, img + g[i].off, 28));
	}
	th_write_file(seg, img, len);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
	durable_groups(f, 2, 250); /* more groups in the version-1 segment */
	close_store(f);
	open_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
	free(img);
	free(seg);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_torn_tail_every_offset),
	    T(test_torn_by_short_file),
	    T(test_torn_with_two_in_flight),
	    T(test_corrupt_payload_refused),
	    T(test_corrupt_batch_header_refused),
	    T(test_zeroed_group_refused),
	    T(test_corrupt_last_group_looks_torn),
	    T(test_torn_across_segments),
	    T(test_corrupt_payload_kept_as_hole),
	    T(test_foreign_segment_refused),
	    T(test_other_cluster_segment_refused),
	    T(test_unborn_segment_removed),
	    T(test_truncated_group_recovers),
	    T(test_crash_mid_roll_leaves_spare),
	    T(test_leftover_spares),
	    T(test_recycled_torn_tail),
	    T(test_recycled_corruption_refused),
	    T(test_version1_segment_opens),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
