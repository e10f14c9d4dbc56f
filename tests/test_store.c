/* The log store: append and read back, reopen, group commit, both sync modes
 * and both I/O modes, segment roll-over, truncation, retention, injected
 * write/fsync/ENOSPC failures and bad directories. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shiplog/err.h"
#include "shiplog/store.h"
#include "store_helpers.h"

struct fixture {
	char *dir;
	struct sl_store *s;
	struct th_log log;
	struct th_faults faults;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = th_mkdtemp("store");
	th_faults_init(&f->faults);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sl_store_close(f->s);
	th_log_free(&f->log);
	th_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void open_store(struct fixture *f, const struct sl_store_opts *o)
{
	struct sl_store_info info;
	int rc = sl_store_open(&f->s, o);

	if (rc < 0)
		fail_msg("open: %d %s", rc, sl_err_msg());
	sl_store_get_info(f->s, &info);
	if (f->log.b == NULL && f->log.n == 0)
		th_log_init(&f->log, &info);
}

static void reopen(struct fixture *f, struct sl_store_opts o)
{
	sl_store_close(f->s);
	f->s = NULL;
	o.create = 0;
	open_store(f, &o);
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

static void check_info_matches_log(struct fixture *f)
{
	struct sl_store_info info;

	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_lsn, f->log.next_lsn);
	assert_int_equal(info.next_position, f->log.position);
	assert_int_equal(info.last_crc, f->log.prev_crc);
}

/* Append a mix of batches, read each back byte for byte, reopen, read again. */
static void run_roundtrip(void **state, enum sl_sync_mode sync, enum sl_io_mode io)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	uint8_t buf[256];

	o.sync_mode = sync;
	o.io_mode = io;
	o.group_bytes = 64 << 10;
	open_store(f, &o);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_lsn, 1);
	assert_int_equal(info.durable_lsn, 0);
	assert_int_equal(info.direct_io, io == SL_IO_BUFFERED ? 0 : 1);
	assert_int_equal(info.sync_mode, sync == SL_SYNC_DEFAULT ? info.sync_mode : sync);
	assert_true(info.sync_mode == SL_SYNC_FDATASYNC || info.sync_mode == SL_SYNC_DSYNC);
	for (int i = 0; i < 40; i++)
		append_ok(f, 1 + (uint32_t)i % 5, 100 + 37 * (uint32_t)i, (uint32_t)i % 2);
	/* Appended but not durable until a completion is reaped. */
	assert_int_equal(sl_store_read(f->s, f->log.next_lsn - 1, buf, sizeof(buf), NULL), -EAGAIN);
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
	assert_int_equal(info.durable_position, f->log.position);
	assert_int_equal(info.failed, 0);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
	assert_int_equal(sl_store_read(f->s, f->log.next_lsn, buf, sizeof(buf), NULL), -ENOENT);
	assert_int_equal(sl_store_read(f->s, 0, buf, sizeof(buf), NULL), -ENOENT);
	assert_int_equal(sl_store_read(f->s, 1, buf, 8, NULL), -ENOSPC);

	reopen(f, o);
	sl_store_get_info(f->s, &info);
	check_info_matches_log(f);
	assert_int_equal(info.last_epoch, f->log.epoch);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
	assert_int_equal(info.torn_bytes, 0);
	th_check_reads(f->s, &f->log, 0);
	/* And it goes on from where it was. */
	for (int i = 0; i < 10; i++)
		append_ok(f, 3, 500, 1);
	sync_ok(f);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

static void test_roundtrip_fdatasync_direct(void **state)
{
	run_roundtrip(state, SL_SYNC_FDATASYNC, SL_IO_DIRECT);
}

static void test_roundtrip_dsync_direct(void **state)
{
	run_roundtrip(state, SL_SYNC_DSYNC, SL_IO_DIRECT);
}

static void test_roundtrip_fdatasync_buffered(void **state)
{
	run_roundtrip(state, SL_SYNC_FDATASYNC, SL_IO_BUFFERED);
}

static void test_roundtrip_dsync_buffered(void **state)
{
	run_roundtrip(state, SL_SYNC_DSYNC, SL_IO_BUFFERED);
}

static void test_roundtrip_default(void **state)
{
	run_roundtrip(state, SL_SYNC_DEFAULT, SL_IO_AUTO);
}

/* AUTO falls back to buffered I/O when O_DIRECT is refused. */
static void test_auto_falls_back_to_buffered(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;

	o.faults = &f->faults.hook;
	th_faults_arm(&f->faults, SL_STORE_OP_OPEN_DIRECT, 1, -EINVAL, 1);
	open_store(f, &o);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.direct_io, 0);
	append_ok(f, 2, 300, 0);
	sync_ok(f);
	th_check_reads(f->s, &f->log, 0);
	sl_store_close(f->s);
	f->s = NULL;
	/* Forced DIRECT is refused with the same fault. */
	o.create = 0;
	o.io_mode = SL_IO_DIRECT;
	assert_int_equal(sl_store_open(&f->s, &o), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "O_DIRECT"));
}

/* Many batches share a group while the write slots are busy; the group
 * buffers bound how much is pending (-EAGAIN). */
static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	int eagain = 0, batches = 0, rc;
	uint64_t last_durable = 0;

	o.group_bytes = 32 << 10;
	o.max_inflight = 2;
	open_store(f, &o);
	for (int i = 0; i < 200; i++) {
		const struct th_batch *b = th_log_next(&f->log, 4, 250, 1);

		while ((rc = sl_store_append(f->s, b->bytes, b->len)) == -EAGAIN) {
			assert_true(++eagain < 100000);
			assert_true(sl_store_poll(f->s, 1) >= 0);
			sl_store_get_info(f->s, &info);
			assert_true(info.durable_lsn >= last_durable); /* in order */
			last_durable = info.durable_lsn;
		}
		assert_int_equal(rc, 0);
		batches++;
	}
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_true(eagain > 0);
	assert_true(info.groups_written < (uint64_t)batches / 3);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	th_check_reads(f->s, &f->log, 0);
}

static void test_append_validation(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct th_log other;
	struct sl_store_info info;
	const struct th_batch *b;
	uint8_t *copy;

	o.group_bytes = 16 << 10;
	open_store(f, &o);
	append_ok(f, 1, 100, 0);
	/* Wrong lsn: a second log that skips one. */
	sl_store_get_info(f->s, &info);
	th_log_init(&other, &info);
	other.next_lsn++;
	b = th_log_next(&other, 1, 100, 0);
	assert_int_equal(sl_store_append(f->s, b->bytes, b->len), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "chain"));
	th_log_free(&other);
	/* Another cluster. */
	th_log_init(&other, &info);
	memcpy(other.cluster, th_other_cluster, 16);
	b = th_log_next(&other, 1, 100, 0);
	assert_int_equal(sl_store_append(f->s, b->bytes, b->len), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "cluster"));
	th_log_free(&other);
	/* A damaged payload. */
	b = th_log_next(&f->log, 1, 100, 1);
	copy = malloc(b->len);
	memcpy(copy, b->bytes, b->len);
	copy[b->len - 1] ^= 1;
	assert_true(sl_store_append(f->s, copy, b->len) < 0);
	free(copy);
	assert_int_equal(sl_store_append(f->s, b->bytes, b->len), 0);
	/* Larger than a group. */
	th_log_init(&other, &info);
	other.next_lsn = f->log.next_lsn;
	other.position = f->log.position;
	other.prev_crc = f->log.prev_crc;
	b = th_log_next(&other, 1, 20000, 1);
	assert_int_equal(sl_store_append(f->s, b->bytes, b->len), -EMSGSIZE);
	th_log_free(&other);
	sync_ok(f);
	th_check_reads(f->s, &f->log, 0);
}

/* The default sync mode is adaptive: a group alone goes out as one RWF_DSYNC
 * write (no fdatasync), groups that join writes in flight as write + linked
 * fdatasync; either way every batch is durable and reads back. */
static void test_default_sync_adapts(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	unsigned fsyncs;

	o.group_bytes = 16 << 10;
	o.faults = &f->faults.hook;
	open_store(f, &o);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.sync_mode, SL_SYNC_DSYNC);
	assert_int_equal(info.sync_adaptive, 1);
	fsyncs = f->faults.calls[SL_STORE_OP_FSYNC];
	for (int i = 0; i < 20; i++) { /* queue depth 1 */
		append_ok(f, 1, 500, 1);
		sync_ok(f);
	}
	assert_int_equal(f->faults.calls[SL_STORE_OP_FSYNC], fsyncs);
	for (int i = 0; i < 200; i++) /* a burst: groups queue behind each other */
		append_ok(f, 3, 1500, (uint32_t)i % 2);
	sync_ok(f);
	assert_true(f->faults.calls[SL_STORE_OP_FSYNC] > fsyncs);
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

/* Small segments: many roll-overs, each named by its base lsn. */
static void test_segment_rollover(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	char names[64][32];
	int n;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int i = 0; i < 120; i++)
		append_ok(f, 2, 1000 + (uint32_t)i * 13, 1);
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_true(info.segments >= 4);
	n = th_list_segments(f->dir, names, 64);
	assert_int_equal(n, (int)info.segments);
	assert_string_equal(names[0], "00000000000000000001.seg");
	for (int i = 1; i < n; i++) {
		unsigned long long base = strtoull(names[i], NULL, 10);
		int found = 0;

		for (size_t k = 0; k < f->log.n; k++)
			found |= f->log.b[k].lsn == base;
		assert_true(found); /* a segment starts at a batch's base lsn */
	}
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

/* Every batch of the log reads back by its position, byte for byte. */
static void check_pos_reads(struct fixture *f)
{
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	for (size_t i = 0; i < f->log.n; i++) {
		const struct th_batch *b = &f->log.b[i];
		struct sl_batch_hdr want, got;
		int rc;

		assert_int_equal(sl_batch_decode_hdr(b->bytes, b->len, NULL, &want), 0);
		rc = sl_store_read_pos(f->s, want.position, buf, cap, &got);
		if (rc < 0)
			fail_msg("read position %llu: %d %s", (unsigned long long)want.position, rc,
				 sl_err_msg());
		assert_int_equal((size_t)rc, b->len);
		assert_memory_equal(buf, b->bytes, b->len);
		assert_int_equal(got.position, want.position);
		assert_int_equal(got.base_lsn, b->lsn);
		/* Inside a batch is not a boundary. */
		assert_int_equal(sl_store_read_pos(f->s, want.position + 1, buf, cap, NULL),
				 -ENOENT);
	}
	free(buf);
}

/* Reads by position (the protocol's read op): across segments and groups,
 * empty batches included, before and after a reopen; -EAGAIN before
 * durability, -ENOENT off a boundary or past the end, -ENOSPC when short. */
static void test_read_by_position(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	uint8_t buf[64];

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int i = 0; i < 150; i++) {
		/* An empty batch now and then: it shares its base LSN with the
		 * next one, which only the position tells apart. */
		append_ok(f, i % 17 == 5 ? 0 : 1 + (uint32_t)i % 4, 300 + (uint32_t)i * 11,
			  (uint32_t)i % 2);
		if (i % 10 == 9)
			sync_ok(f);
	}
	append_ok(f, 2, 100, 0);
	assert_int_equal(sl_store_read_pos(f->s, f->log.position - f->log.b[f->log.n - 1].len, buf,
					   sizeof(buf), NULL),
			 -EAGAIN);
	sync_ok(f);
	check_pos_reads(f);
	assert_int_equal(sl_store_read_pos(f->s, f->log.position, buf, sizeof(buf), NULL), -ENOENT);
	assert_int_equal(sl_store_read_pos(f->s, f->log.position + 4096, buf, sizeof(buf), NULL),
			 -ENOENT);
	assert_int_equal(sl_store_read_pos(f->s, 0, buf, 8, NULL), -ENOSPC);
	reopen(f, o);
	check_pos_reads(f);
	assert_int_equal(sl_store_read_pos(f->s, f->log.position, buf, sizeof(buf), NULL), -ENOENT);
}

/* Reads of consecutive batches (catch-up, delivery after a restart) come
 * from the chunk read last: far fewer reads than batches. Reads that
 * overlap writes in flight, and reads after a truncation, still return the
 * bytes written. */
static void test_read_chunk_cache(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	unsigned before;

	o.faults = &f->faults.hook;
	open_store(f, &o);
	for (int i = 0; i < 400; i++)
		append_ok(f, 4, 900 + (uint32_t)i % 7 * 50, (uint32_t)i % 2);
	sync_ok(f);
	before = f->faults.calls[SL_STORE_OP_READ];
	check_pos_reads(f);
	/* 400 batches (and 400 misses one byte in) of about 4 KiB: a few
	 * 1 MiB chunks. */
	assert_true(f->faults.calls[SL_STORE_OP_READ] - before < 40);

	/* Reads while later groups are being written. */
	for (int round = 0; round < 20; round++) {
		const struct th_batch *b;
		struct sl_batch_hdr h;
		uint8_t *buf = malloc(1 << 20);

		assert_non_null(buf);
		for (int i = 0; i < 30; i++)
			append_ok(f, 3, 700, (uint32_t)(round + i) % 2);
		assert_int_equal(sl_store_flush(f->s), 0);
		b = &f->log.b[f->log.n - 31];
		assert_int_equal(sl_batch_decode_hdr(b->bytes, b->len, NULL, &h), 0);
		assert_int_equal(sl_store_read_pos(f->s, h.position, buf, 1 << 20, NULL),
				 (int)b->len);
		assert_memory_equal(buf, b->bytes, b->len);
		free(buf);
		sync_ok(f);
	}
	check_pos_reads(f);

	/* Truncate inside what the last reads cached, write other bytes there. */
	assert_int_equal(sl_store_truncate_after(f->s, f->log.b[f->log.n - 40].lsn), 0);
	th_log_truncate(&f->log, f->log.b[f->log.n - 40].lsn);
	for (int i = 0; i < 40; i++)
		append_ok(f, 2, 1500, 1);
	sync_ok(f);
	check_pos_reads(f);
	th_check_reads(f->s, &f->log, 0);
}

/* Suffix truncation, then new appends, then a reopen sees exactly the kept
 * batches plus the new ones. */
static void run_truncate(void **state, int cut_index, int mid_group)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	uint64_t cut_lsn;
	size_t kept;
	uint8_t buf[4096];

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	o.max_inflight = 1;
	open_store(f, &o);
	for (int i = 0; i < 60; i++) {
		append_ok(f, 3, 400, (uint32_t)i % 2);
		if (i % 4 == 3) /* groups of about four batches */
			sync_ok(f);
	}
	sync_ok(f);
	/* Cut after a batch, or in the middle of one (it goes whole). */
	cut_lsn = f->log.b[cut_index].lsn + (mid_group ? 1 : 2);
	assert_int_equal(sl_store_truncate_after(f->s, cut_lsn), 0);
	th_log_truncate(&f->log, cut_lsn);
	kept = f->log.n;
	assert_int_equal(kept, (size_t)cut_index + (mid_group ? 0 : 1));
	sl_store_get_info(f->s, &info);
	check_info_matches_log(f);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
	assert_int_equal(sl_store_read(f->s, cut_lsn + 1, buf, sizeof(buf), NULL), -ENOENT);
	th_check_reads(f->s, &f->log, 0);
	for (int i = 0; i < 25; i++)
		append_ok(f, 2, 700, 1);
	sync_ok(f);
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
	/* Truncating past the end changes nothing. */
	assert_int_equal(sl_store_truncate_after(f->s, f->log.next_lsn + 10), 0);
	check_info_matches_log(f);
}

static void test_truncate_mid_batch(void **state)
{
	run_truncate(state, 29, 1);
}

static void test_truncate_after_batch(void **state)
{
	run_truncate(state, 29, 0);
}

static void test_truncate_early_segment(void **state)
{
	run_truncate(state, 3, 1); /* deletes every later segment */
}

static void test_truncate_everything(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int i = 0; i < 40; i++)
		append_ok(f, 3, 900, 1);
	sync_ok(f);
	assert_int_equal(sl_store_truncate_after(f->s, 0), 0);
	th_log_truncate(&f->log, 0);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_lsn, 1);
	assert_int_equal(info.next_position, 0);
	assert_int_equal(info.segments, 1);
	append_ok(f, 1, 10, 0);
	sync_ok(f);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

/* The epoch map follows appends, survives a reopen (rebuilt from the batch
 * headers) and a cut by position, which may cut at an empty batch (the
 * first batch of an epoch), which no LSN names. */
static void test_epochs_and_truncate_at(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_epoch_map m;
	struct sl_store_info info;
	uint64_t cut_pos, cut_lsn;
	size_t cut_idx;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int i = 0; i < 20; i++)
		append_ok(f, 3, 400, 1);
	f->log.epoch = 5;
	cut_idx = f->log.n;
	cut_pos = f->log.position;
	cut_lsn = f->log.next_lsn;
	append_ok(f, 0, 0, 0); /* the first batch of epoch 5: empty */
	for (int i = 0; i < 20; i++)
		append_ok(f, 3, 400, 1);
	f->log.epoch = 9;
	for (int i = 0; i < 5; i++)
		append_ok(f, 2, 300, 0);
	sync_ok(f);
	sl_store_epochs(f->s, &m);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.e[1].epoch, 5);
	assert_int_equal(m.e[1].pos, cut_pos);
	assert_int_equal(m.e[1].lsn, cut_lsn);
	assert_int_equal(m.e[2].epoch, 9);
	reopen(f, o);
	{
		struct sl_epoch_map r;

		sl_store_epochs(f->s, &r);
		assert_int_equal(r.n, m.n);
		assert_memory_equal(r.e, m.e, m.n * sizeof(m.e[0]));
	}
	/* Not a batch boundary, past the end, the end itself. */
	assert_true(sl_store_truncate_at(f->s, cut_pos + 1) == -EINVAL);
	assert_true(sl_store_truncate_at(f->s, f->log.position + 1) == -EINVAL);
	assert_int_equal(sl_store_truncate_at(f->s, f->log.position), 0);
	check_info_matches_log(f);
	/* At the empty batch: epochs 5 and 9 go. */
	assert_int_equal(sl_store_truncate_at(f->s, cut_pos), 0);
	for (size_t i = cut_idx; i < f->log.n; i++)
		free(f->log.b[i].bytes);
	f->log.n = cut_idx;
	f->log.next_lsn = cut_lsn;
	f->log.position = cut_pos;
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.next_position, cut_pos);
	assert_int_equal(info.next_lsn, cut_lsn);
	assert_int_equal(info.last_epoch, 1);
	sl_store_epochs(f->s, &m);
	assert_int_equal(m.n, 1);
	f->log.prev_crc = info.last_crc;
	f->log.epoch = 13;
	for (int i = 0; i < 5; i++)
		append_ok(f, 2, 300, 1);
	sync_ok(f);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
	sl_store_epochs(f->s, &m);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.e[1].epoch, 13);
	assert_int_equal(m.e[1].pos, cut_pos);
}

/* Retention deletes whole segments only, never the last one. */
static void test_drop_before(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info before, after;
	char names[64][32];
	uint8_t buf[4096];
	uint64_t mid;
	int rc, n;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int i = 0; i < 100; i++)
		append_ok(f, 2, 1200, 1);
	sync_ok(f);
	sl_store_get_info(f->s, &before);
	assert_true(before.segments >= 4);
	n = th_list_segments(f->dir, names, 64);
	mid = strtoull(names[2], NULL, 10); /* base of the third segment */
	rc = sl_store_drop_before(f->s, mid);
	assert_int_equal(rc, 2);
	sl_store_get_info(f->s, &after);
	assert_int_equal(after.segments, before.segments - 2);
	assert_int_equal(after.first_lsn, mid);
	assert_int_equal(th_list_segments(f->dir, names, 64), n - 2);
	assert_int_equal(sl_store_read(f->s, mid - 1, buf, sizeof(buf), NULL), -ENOENT);
	/* Still readable from the new first segment on. */
	for (size_t i = 0; i < f->log.n; i++)
		if (f->log.b[i].lsn >= mid) {
			th_check_reads(f->s, &f->log, i);
			break;
		}
	/* Dropping everything keeps the last segment. */
	rc = sl_store_drop_before(f->s, f->log.next_lsn + 100);
	assert_true(rc >= 1);
	sl_store_get_info(f->s, &after);
	assert_int_equal(after.segments, 1);
	append_ok(f, 2, 100, 0);
	sync_ok(f);
	reopen(f, o);
	check_info_matches_log(f);
	sl_store_get_info(f->s, &after);
	assert_int_equal(after.segments, 1);
	assert_int_equal(after.durable_lsn, f->log.next_lsn - 1);
}

/* --- failures ------------------------------------------------------------ */

static void open_with_faults(struct fixture *f, enum sl_sync_mode sync)
{
	struct sl_store_opts o = th_opts(f->dir, 1);

	o.sync_mode = sync;
	o.max_inflight = 2;
	o.group_bytes = 16 << 10;
	o.faults = &f->faults.hook;
	open_store(f, &o);
}

/* After a failure: later calls fail with the same error; nothing more is
 * durable; no fsync is issued again, not even by close. */
static void check_failed(struct fixture *f, int err, uint64_t durable_lsn, const char *what)
{
	struct sl_store_info info;
	unsigned fsyncs;
	int rc;

	sl_store_get_info(f->s, &info);
	assert_int_equal(info.failed, err);
	assert_int_equal(info.durable_lsn, durable_lsn);
	/* Let what was in flight land (it is not retried, only reaped). */
	for (int i = 0; i < 4; i++)
		assert_int_equal(sl_store_poll(f->s, 4), err);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.durable_lsn, durable_lsn);
	fsyncs = f->faults.calls[SL_STORE_OP_FSYNC];
	rc = th_append(f->s, &f->log, 1, 100, 0);
	assert_int_equal(rc, err);
	assert_non_null(strstr(sl_err_msg(), "00000000000000000001.seg"));
	assert_non_null(strstr(sl_err_msg(), what));
	assert_int_equal(sl_store_poll(f->s, 0), err);
	assert_int_equal(sl_store_sync(f->s), err);
	assert_int_equal(sl_store_flush(f->s), err);
	assert_int_equal(sl_store_truncate_after(f->s, 1) < 0, 1);
	sl_store_close(f->s);
	f->s = NULL;
	assert_int_equal(f->faults.calls[SL_STORE_OP_FSYNC], fsyncs);
}

/* Drive groups 2 and 3 into flight together, with the first failing. */
static uint64_t two_groups_in_flight(struct fixture *f, int *rc)
{
	uint64_t durable;

	append_ok(f, 2, 300, 0);
	sync_ok(f);
	durable = f->log.next_lsn - 1;
	append_ok(f, 2, 300, 0); /* group 2 */
	append_ok(f, 2, 300, 0); /* group 3, while 2 is in flight */
	append_ok(f, 2, 300, 0); /* fills group 4 */
	for (int i = 0; i < 1000 && (*rc = sl_store_poll(f->s, 1)) >= 0; i++)
		;
	return durable;
}

static void test_write_failure(void **state)
{
	struct fixture *f = *state;
	uint64_t durable;
	int rc;

	open_with_faults(f, SL_SYNC_FDATASYNC);
	/* Group 2's write. */
	th_faults_arm(&f->faults, SL_STORE_OP_WRITE, 1, -EIO, 0);
	f->faults.fail_off = 2 * TH_BLOCK;
	durable = two_groups_in_flight(f, &rc);
	assert_int_equal(rc, -EIO);
	assert_int_equal(f->faults.fired, 1);
	check_failed(f, -EIO, durable, "write");
}

static void test_short_write(void **state)
{
	struct fixture *f = *state;
	uint64_t durable;
	int rc;

	open_with_faults(f, SL_SYNC_DSYNC);
	th_faults_arm(&f->faults, SL_STORE_OP_WRITE, 1, 512, 0);
	f->faults.fail_off = 2 * TH_BLOCK;
	durable = two_groups_in_flight(f, &rc);
	assert_int_equal(rc, -EIO);
	check_failed(f, -EIO, durable, "short write");
}

/* Sleep on the store's wait fd (at most 5 s a time) and reap, until groups
 * become durable: the writer thread's completion must wake a caller asleep
 * in ppoll as io_uring's does. A spare's preparation and the zeros written
 * ahead (two completions per chunk, started by each poll) may come first,
 * and on a loaded machine ahead of the write: up to 200 wake-ups.
 * Returns how many groups became durable. */
static int wait_durable(struct fixture *f)
{
	struct pollfd p = {.fd = sl_store_wait_fd(f->s), .events = POLLIN};
	int n = 0;

	for (int i = 0; i < 200 && n == 0; i++) {
		assert_int_equal(poll(&p, 1, 5000), 1);
		n = sl_store_poll(f->s, 0);
		assert_true(n >= 0);
	}
	return n;
}

/* inline_write_max: a lone small group is written by the store's writer
 * thread, its completion reaped through the ring (waking the wait fd); a
 * larger one, or one behind another, goes through io_uring. The bytes read
 * back, also after a reopen (recovery checks every group header). */
static void test_inline_write(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	unsigned fsyncs, writes;

	o.sync_mode = SL_SYNC_DEFAULT;
	o.group_bytes = 64 << 10;
	o.inline_write_max = 4096;
	o.faults = &f->faults.hook;
	open_store(f, &o);
	fsyncs = f->faults.calls[SL_STORE_OP_FSYNC];
	writes = f->faults.calls[SL_STORE_OP_WRITE];
	for (int i = 0; i < 5; i++) {
		sync_ok(f); /* the zeros written ahead (direct I/O) landed too */
		append_ok(f, 2, 300 + 50 * (uint32_t)i, (uint32_t)i % 2);
		assert_int_equal(wait_durable(f), 1);
		sl_store_get_info(f->s, &info);
		assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
		assert_int_equal(info.durable_position, f->log.position);
	}
	/* No fdatasync: the writer's write was RWF_DSYNC. */
	assert_int_equal(f->faults.calls[SL_STORE_OP_FSYNC], fsyncs);
	assert_int_equal(f->faults.calls[SL_STORE_OP_WRITE], writes + 5);
	/* Held (as a node holds its writes): it goes at sl_store_submit. */
	sync_ok(f);
	writes = f->faults.calls[SL_STORE_OP_WRITE];
	sl_store_hold(f->s, 1);
	append_ok(f, 1, 700, 0);
	assert_int_equal(sl_store_poll(f->s, 0), 0);
	assert_int_equal(f->faults.calls[SL_STORE_OP_WRITE], writes);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 2);
	assert_int_equal(sl_store_submit(f->s), 0);
	assert_int_equal(wait_durable(f), 1);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
	assert_int_equal(f->faults.calls[SL_STORE_OP_WRITE], writes + 1);
	sl_store_hold(f->s, 0);
	/* Larger than inline_write_max: through io_uring, durable once reaped. */
	append_ok(f, 3, 2000, 1);
	sl_store_get_info(f->s, &info);
	assert_true(info.durable_lsn < f->log.next_lsn - 1);
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.durable_lsn, f->log.next_lsn - 1);
	assert_int_equal(info.torn_bytes, 0);
	th_check_reads(f->s, &f->log, 0);
}

/* A failed or short write by the writer thread fails the store as a
 * failed CQE does: nothing of it durable, no retry, no fsync after. */
static void run_inline_failure(void **state, int res, const char *what)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	uint64_t durable;
	int rc;

	o.group_bytes = 16 << 10;
	o.inline_write_max = 64 << 10;
	o.faults = &f->faults.hook;
	open_store(f, &o);
	append_ok(f, 2, 300, 0);
	durable = f->log.next_lsn - 1;
	sync_ok(f);
	th_faults_arm(&f->faults, SL_STORE_OP_WRITE, 1, res, 0);
	f->faults.fail_off = 2 * TH_BLOCK;
	append_ok(f, 2, 300, 0);
	for (int i = 0; i < 100 && (rc = sl_store_poll(f->s, 1)) >= 0; i++)
		;
	assert_int_equal(rc, -EIO);
	assert_int_equal(f->faults.fired, 1);
	check_failed(f, -EIO, durable, what);
}

static void test_inline_write_failure(void **state)
{
	run_inline_failure(state, -EIO, "write");
}

static void test_inline_short_write(void **state)
{
	run_inline_failure(state, 512, "short write");
}

static void test_fsync_failure(void **state)
{
	struct fixture *f = *state;
	uint64_t durable;
	int rc;

	open_with_faults(f, SL_SYNC_FDATASYNC);
	/* Group 2's fsync (group 2 is at offset 8192: header block, group 1). */
	th_faults_arm(&f->faults, SL_STORE_OP_FSYNC, 1, -EIO, 0);
	f->faults.fail_off = 2 * TH_BLOCK;
	durable = two_groups_in_flight(f, &rc);
	assert_int_equal(rc, -EIO);
	assert_int_equal(f->faults.fired, 1);
	check_failed(f, -EIO, durable, "fdatasync");
}

static void test_enospc_write(void **state)
{
	struct fixture *f = *state;
	uint64_t durable;
	int rc;

	open_with_faults(f, SL_SYNC_DSYNC);
	th_faults_arm(&f->faults, SL_STORE_OP_WRITE, 2, -ENOSPC, 1);
	durable = two_groups_in_flight(f, &rc);
	assert_int_equal(rc, -ENOSPC);
	check_failed(f, -ENOSPC, durable, "write");
}

/* ENOSPC while preallocating the next segment: the batch is refused, the
 * half-made file removed, and the store goes on once there is room. */
static void test_enospc_fallocate(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	char names[16][32];
	int rc = 0, n;

	o.segment_bytes = 32 << 10;
	o.group_bytes = 8 << 10;
	o.faults = &f->faults.hook;
	open_store(f, &o);
	th_faults_arm(&f->faults, SL_STORE_OP_FALLOCATE, 1, -ENOSPC, 1);
	for (int i = 0; i < 100 && rc == 0; i++)
		rc = th_append(f->s, &f->log, 1, 3000, 1);
	assert_int_equal(rc, -ENOSPC);
	assert_non_null(strstr(sl_err_msg(), ".seg"));
	assert_non_null(strstr(sl_err_msg(), "preallocating"));
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.failed, 0);
	n = th_list_segments(f->dir, names, 16);
	assert_int_equal(n, 1);
	sync_ok(f);
	th_faults_arm(&f->faults, SL_STORE_OP_FALLOCATE, 0, 0, 0);
	for (int i = 0; i < 5; i++)
		append_ok(f, 1, 3000, 1);
	sync_ok(f);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

/* --- spares: roll-over into prepared and recycled files ------------------ */

static uint16_t file_u16(const char *dir, const char *name, uint64_t off)
{
	char *p = th_path(dir, name);
	size_t len;
	uint8_t *img = th_read_file(p, &len);
	uint16_t v;

	assert_true(off + 2 <= len);
	v = (uint16_t)(img[off] | img[off + 1] << 8);
	free(img);
	free(p);
	return v;
}

/* A roll-over takes the spare prepared in the background: the spare's file
 * becomes the segment (version 2, not recycled), and the next one is
 * prepared. */
static void test_roll_into_prepared_spare(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	char names[16][32], spare[32];
	int n;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	th_wait_spare(f->s);
	assert_int_equal(th_list_spares(f->dir, names, 16), 1);
	memcpy(spare, names[0], sizeof(spare));
	for (int i = 0;; i++) {
		append_ok(f, 2, 3000, 1);
		sl_store_get_info(f->s, &info);
		if (info.segments >= 2 || i == 1000)
			break;
	}
	sync_ok(f);
	n = th_list_segments(f->dir, names, 16);
	assert_int_equal(n, 2);
	assert_int_equal(file_u16(f->dir, names[1], 4), 2); /* version */
	assert_int_equal(file_u16(f->dir, names[1], 6), 0); /* flags: a new file */
	th_wait_spare(f->s);
	n = th_list_spares(f->dir, names, 16);
	assert_int_equal(n, 1);
	assert_string_not_equal(names[0], spare); /* that one became the segment */
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	assert_int_equal(info.spares, 1);
	th_check_reads(f->s, &f->log, 0);
}

/* First index of f->log holding an lsn >= lsn. */
static size_t first_batch_from(const struct fixture *f, uint64_t lsn)
{
	size_t i = 0;

	while (i < f->log.n && f->log.b[i].lsn < lsn)
		i++;
	return i;
}

/* Retention turns dropped segments into spares, roll-overs write over them,
 * and the log reads back and reopens exactly, cycle after cycle: the old
 * groups left in the recycled files are never taken for the new ones. */
static void test_recycle_cycles(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	char names[64][32];
	int recycled = 0;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int cycle = 0; cycle < 8; cycle++) {
		uint64_t first;
		int n, rc;

		for (int i = 0; i < 70; i++)
			append_ok(f, 1 + (uint32_t)(i + cycle) % 3,
				  700 + (uint32_t)(i * 37 + cycle * 101) % 2500, (uint32_t)i % 2);
		sync_ok(f);
		if (cycle % 2 == 1) {
			/* Several segments, recycled ones among them, each ending
			 * with its old life after its last group: the scan must go
			 * on to the next segment there. */
			sl_store_get_info(f->s, &info);
			first = info.first_lsn;
			assert_true(info.segments >= 3);
			n = th_list_segments(f->dir, names, 64);
			for (int k = 0; k < n; k++)
				recycled += file_u16(f->dir, names[k], 6) == 1;
			reopen(f, o);
			check_info_matches_log(f);
			sl_store_get_info(f->s, &info);
			assert_int_equal(info.torn_bytes, 0);
			th_check_reads(f->s, &f->log, first_batch_from(f, first));
		}
		rc = sl_store_drop_before(f->s, f->log.next_lsn);
		assert_true(rc >= 1);
		sl_store_get_info(f->s, &info);
		assert_int_equal(info.segments, 1);
		n = th_list_spares(f->dir, names, 64);
		assert_true(n >= 1 && n <= 3); /* 2, and one being prepared */
		assert_int_equal(th_list_segments(f->dir, names, 64), 1);
		first = info.first_lsn;
		th_check_reads(f->s, &f->log, first_batch_from(f, first));
		if (cycle % 3 == 2) {
			reopen(f, o);
			check_info_matches_log(f);
			sl_store_get_info(f->s, &info);
			assert_int_equal(info.torn_bytes, 0);
			th_check_reads(f->s, &f->log, first_batch_from(f, first));
		}
	}
	/* Recycled segments were in the log at those reopens. */
	assert_true(recycled >= 3);
}

/* Same-sized groups put the old groups' headers exactly where the new
 * groups go: after a reopen the first old header past the new ones has a
 * valid CRC and a plausible sequence, and only its tag says it is not this
 * segment's. */
static void test_recycled_stale_headers_aligned(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	struct th_group g[64];
	char names[16][32];
	uint8_t *img;
	size_t len;
	char *path;
	int ng;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	o.max_inflight = 1;
	open_store(f, &o);
	/* One batch per group, all of the same size: 3 blocks each. */
	for (int i = 0; i < 50; i++) {
		append_ok(f, 1, 9000, 1);
		sync_ok(f);
	}
	assert_true(sl_store_drop_before(f->s, f->log.next_lsn) >= 2);
	for (int k = 0; k < 3; k++) {
		/* Roll into a recycled file, then a few groups: fewer than it held. */
		for (int i = 0;; i++) {
			append_ok(f, 1, 9000, 1);
			sync_ok(f);
			sl_store_get_info(f->s, &info);
			if (info.segments >= 2 || i == 1000)
				break;
		}
		assert_int_equal(info.segments, 2);
		for (int i = 0; i < 2; i++) {
			append_ok(f, 1, 9000, 1);
			sync_ok(f);
		}
		reopen(f, o);
		check_info_matches_log(f);
		sl_store_get_info(f->s, &info);
		assert_int_equal(info.torn_bytes, 0);
		assert_int_equal(th_list_segments(f->dir, names, 16), 2);
		path = th_path(f->dir, names[1]);
		img = th_read_file(path, &len);
		assert_int_equal(img[6], 1); /* recycled */
		ng = th_parse_groups(img, len, g, 64);
		assert_int_equal(ng, 3);
		/* Where the next group goes: an old group header of another tag.
		 * (After a reopen every spare counts as recycled, so a later
		 * round may get one that was never written: zeros there.) */
		assert_true(g[2].off + 3 * TH_BLOCK + 32 <= len);
		if (k == 0 || memcmp(img + g[2].off + 3 * TH_BLOCK, "SLGR", 4) == 0) {
			assert_int_equal(memcmp(img + g[2].off + 3 * TH_BLOCK, "SLGR", 4), 0);
			assert_memory_not_equal(img + g[2].off + 3 * TH_BLOCK + 24, img + 76, 4);
		} else {
			for (int i = 0; i < 32; i++)
				assert_int_equal(img[g[2].off + 3 * TH_BLOCK + (size_t)i], 0);
		}
		free(img);
		free(path);
		th_check_reads(f->s, &f->log, first_batch_from(f, info.first_lsn));
		assert_int_equal(sl_store_drop_before(f->s, f->log.next_lsn), 1);
	}
}

/* A spare that cannot be prepared (ENOSPC from fallocate) costs nothing but
 * the spare: roll-over creates its segment, and preparation resumes. */
static void test_spare_preparation_fails(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	char names[16][32];

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	o.faults = &f->faults.hook;
	open_store(f, &o);
	th_faults_arm(&f->faults, SL_STORE_OP_FALLOCATE, 1, -ENOSPC, 0);
	for (int i = 0; i < 1000 && f->faults.fired == 0; i++)
		assert_true(sl_store_poll(f->s, 1) >= 0);
	assert_int_equal(f->faults.fired, 1);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.spares, 0);
	assert_int_equal(th_list_spares(f->dir, names, 16), 0); /* removed */
	for (int i = 0; i < 60; i++)
		append_ok(f, 2, 1500, 1);
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_true(info.segments >= 3);
	assert_int_equal(info.failed, 0);
	th_wait_spare(f->s);
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

/* 4 MiB segments, 64 KiB groups: 20 small groups, then poll until the
 * tail is prewritten to its end and a spare is ready (or 1000 wake-ups). */
static void append_until_prewritten(struct fixture *f)
{
	struct sl_store_info info;

	for (int i = 0; i < 20; i++)
		append_ok(f, 3, 2000, 1);
	sync_ok(f);
	for (int i = 0; i < 1000; i++) {
		sl_store_get_info(f->s, &info);
		if (info.prewritten_bytes >= (4u << 20) - 2 * TH_BLOCK - (64u << 10) &&
		    info.spares > 0)
			break;
		assert_true(sl_store_poll(f->s, 1) >= 0);
	}
}

/* Direct I/O writes zeros ahead of the appends (and syncs them), so groups
 * land on written blocks: a spare's first blocks before it is ready, then the
 * tail segment a chunk at a time. What was appended reads back, and the
 * zeros past the log's end are what a fallocated file reads as anyway. */
static void test_prewrite_ahead(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;

	o.segment_bytes = 4 << 20;
	o.group_bytes = 64 << 10;
	o.io_mode = SL_IO_DIRECT;
	o.faults = &f->faults.hook;
	open_store(f, &o);
	append_until_prewritten(f);
	/* The tail segment written to its end, past the groups; a spare's
	 * first blocks (a spare of 4 MiB: all of it) written too. */
	sl_store_get_info(f->s, &info);
	assert_true(info.prewritten_bytes >= (4u << 20) - 2 * TH_BLOCK - (64u << 10));
	assert_int_equal(info.spares, 1);
	assert_true(f->faults.calls[SL_STORE_OP_PREWRITE] >= 4);
	th_check_reads(f->s, &f->log, 0);
	for (int i = 0; i < 700; i++) /* into the spare */
		append_ok(f, 2, 3000, 1);
	sync_ok(f);
	sl_store_get_info(f->s, &info);
	assert_true(info.segments >= 2);
	assert_int_equal(info.failed, 0);
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.torn_bytes, 0);
	th_check_reads(f->s, &f->log, 0);
}

/* sl_store_opts.wtrace: a record per group write, each reported durable in
 * order after its write completed, and one per chunk of zeros written
 * ahead; records past the buffer's end are dropped, not written. */
static void test_write_records(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_wrec rec[512];
	struct sl_store_wtrace wt = {.rec = rec, .cap = 512};
	struct sl_store_info info;
	uint64_t groups = 0, zeros = 0, last_done = 0;

	o.segment_bytes = 4 << 20;
	o.group_bytes = 64 << 10;
	o.io_mode = SL_IO_DIRECT;
	o.wtrace = &wt;
	open_store(f, &o);
	append_until_prewritten(f);
	sl_store_get_info(f->s, &info);
	assert_true(wt.n > 0 && wt.n < wt.cap);
	for (uint32_t i = 0; i < wt.n; i++) {
		const struct sl_store_wrec *r = &rec[i];

		assert_true(r->bytes > 0 && r->bytes % TH_BLOCK == 0);
		if (r->kind != SL_WREC_GROUP) {
			if (r->t_done == 0) /* still in flight */
				continue;
			assert_true(r->t_submit <= r->t_written && r->t_written <= r->t_done);
			zeros++;
			continue;
		}
		assert_true(r->t_submit <= r->t_written && r->t_written <= r->t_done);
		assert_true(r->t_done >= last_done); /* durable in order */
		last_done = r->t_done;
		assert_true(r->groups_ahead >= r->writes_ahead);
		groups++;
	}
	assert_int_equal(groups, info.groups_written);
	assert_true(zeros >= 2); /* the tail's and the spare's */
	sl_store_close(f->s);
	f->s = NULL;
	wt = (struct sl_store_wtrace){.rec = rec, .cap = 2};
	o.create = 0;
	open_store(f, &o);
	for (int i = 0; i < 5; i++)
		append_ok(f, 3, 2000, 1);
	sync_ok(f);
	assert_int_equal(wt.n, 2);
	th_check_reads(f->s, &f->log, 0);
}

/* prewrite_chunk sets the size of each chunk of zeros (the write records
 * show them); out of 256 KiB..8 MiB it is refused. */
static void test_prewrite_chunk(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_wrec rec[512];
	struct sl_store_wtrace wt = {.rec = rec, .cap = 512};
	unsigned full = 0;

	o.segment_bytes = 4 << 20;
	o.group_bytes = 64 << 10;
	o.io_mode = SL_IO_DIRECT;
	o.prewrite_chunk = 100 << 10;
	assert_int_equal(sl_store_open(&f->s, &o), -EINVAL);
	o.prewrite_chunk = 16 << 20;
	assert_int_equal(sl_store_open(&f->s, &o), -EINVAL);
	o.prewrite_chunk = 256 << 10;
	o.wtrace = &wt;
	open_store(f, &o);
	append_until_prewritten(f);
	for (uint32_t i = 0; i < wt.n; i++)
		if (rec[i].kind != SL_WREC_GROUP) {
			assert_true(rec[i].bytes <= (256u << 10));
			full += rec[i].bytes == (256u << 10);
		}
	assert_true(full >= 8); /* 4 MiB of tail and spare in 256 KiB chunks */
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

/* While groups are large no zeros go to a spare (nor to the tail): a
 * roll-over then takes the spare being prepared with the zeros it has
 * rather than creating its segment file in the appender's call. */
static void test_roll_takes_unzeroed_spare(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	char names[16][32], spare[32];

	o.segment_bytes = 4 << 20;
	o.group_bytes = 1 << 20;
	o.io_mode = SL_IO_DIRECT;
	open_store(f, &o);
	append_ok(f, 100, 3000, 1); /* random bytes: a group of about 300 KB */
	sync_ok(f);
	/* The sync waits for the group only: the spare's open and fallocate
	 * may still be running (a loaded disk), and a roll-over takes only a
	 * spare whose fallocate was reaped. Reap them: each poll waits for one
	 * completion while any is outstanding (no zeros start: groups are
	 * large), so the spare's file is made, its zeros not started. */
	for (int i = 0; i < 4; i++)
		assert_true(sl_store_poll(f->s, 1) >= 0);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.spares, 0);
	assert_int_equal(th_list_spares(f->dir, names, 16), 1);
	memcpy(spare, names[0], sizeof(spare));
	for (int i = 0;; i++) { /* about 14 */
		append_ok(f, 100, 3000, 1);
		sl_store_get_info(f->s, &info);
		if (info.segments >= 2 || i == 100)
			break;
	}
	sync_ok(f);
	assert_int_equal(info.failed, 0);
	for (int i = 0, n = th_list_spares(f->dir, names, 16); i < n; i++)
		assert_string_not_equal(names[i], spare); /* it became the segment */
	assert_int_equal(th_list_segments(f->dir, names, 16), 2);
	assert_int_equal(file_u16(f->dir, names[1], 6), 0); /* flags: a new file */
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	check_info_matches_log(f);
	th_check_reads(f->s, &f->log, 0);
}

/* Zeros go to the log's own file, and their fdatasync could consume an
 * error that a group's would otherwise report: a failed prewrite fails the
 * store, and nothing not yet durable is reported durable after it. */
static void test_prewrite_failure(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	uint64_t durable;
	int rc = 0;

	o.io_mode = SL_IO_DIRECT;
	o.faults = &f->faults.hook;
	/* Every prewrite: a spare's (which only costs the spare) and the tail
	 * segment's. */
	th_faults_arm(&f->faults, SL_STORE_OP_PREWRITE, 1, -EIO, 1);
	open_store(f, &o);
	sl_store_get_info(f->s, &info);
	durable = info.durable_lsn;
	for (int i = 0; rc >= 0 && i < 1000; i++) {
		rc = th_append(f->s, &f->log, 1, 100, 0);
		if (rc >= 0)
			rc = sl_store_poll(f->s, 1);
	}
	assert_int_equal(rc, -EIO);
	assert_true(f->faults.fired >= 1);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.failed, -EIO);
	assert_non_null(strstr(sl_err_msg(), "zeros"));
	assert_true(info.durable_lsn >= durable);
	durable = info.durable_lsn;
	for (int i = 0; i < 4; i++)
		assert_int_equal(sl_store_poll(f->s, 4), -EIO);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.durable_lsn, durable);
	assert_int_equal(th_append(f->s, &f->log, 1, 100, 0), -EIO);
	assert_int_equal(sl_store_sync(f->s), -EIO);
}

/* A failed step of a roll-over into a spare fails the store from the new
 * segment's first group on, even when that group's own write succeeded; the
 * log reopens with what was durable. */
static void run_roll_failure(void **state, enum sl_store_op op, int res, const char *what)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_info info;
	uint64_t seg2_lsn;
	int rc = 0;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	o.max_inflight = 2;
	o.faults = &f->faults.hook;
	open_store(f, &o);
	th_wait_spare(f->s);
	th_faults_arm(&f->faults, op, 1, res, 0);
	f->faults.fail_off = 0;
	do {
		seg2_lsn = f->log.next_lsn;
		rc = th_append(f->s, &f->log, 1, 3000, 1);
		sl_store_get_info(f->s, &info);
	} while (rc == 0 && info.segments < 2 && f->log.n < 1000);
	for (int i = 0; rc >= 0 && i < 1000; i++)
		rc = sl_store_poll(f->s, 1);
	assert_int_equal(f->faults.fired, 1);
	assert_int_equal(rc, res);
	sl_store_get_info(f->s, &info);
	assert_int_equal(info.failed, res);
	assert_true(info.durable_lsn < seg2_lsn); /* nothing of the new segment */
	assert_non_null(strstr(sl_err_msg(), what));
	assert_int_equal(th_append(f->s, &f->log, 1, 100, 0), res);
	sl_store_close(f->s);
	f->s = NULL;
	/* The new segment's name may or may not have been made: either opens,
	 * and the log holds (at least) what was reported durable. */
	th_log_truncate(&f->log, info.durable_lsn);
	o.faults = NULL;
	o.create = 0;
	assert_int_equal(sl_store_open(&f->s, &o), 0);
	sl_store_get_info(f->s, &info);
	assert_true(info.next_lsn >= f->log.next_lsn);
	th_check_reads(f->s, &f->log, 0);
}

static void test_roll_header_write_fails(void **state)
{
	run_roll_failure(state, SL_STORE_OP_WRITE, -EIO, "writing header of segment");
}

static void test_roll_rename_fails(void **state)
{
	run_roll_failure(state, SL_STORE_OP_RENAME, -ENOSPC, "renaming spare");
}

static void test_roll_dir_fsync_fails(void **state)
{
	run_roll_failure(state, SL_STORE_OP_FSYNC, -EIO, "fsync of directory");
}

static void test_bad_directories(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o;
	char *missing = th_path(f->dir, "missing"), *file = th_path(f->dir, "file");
	struct sl_store *s = NULL;

	o = th_opts(missing, 1);
	assert_int_equal(sl_store_open(&s, &o), -ENOENT);
	assert_non_null(strstr(sl_err_msg(), missing));
	th_write_file(file, (const uint8_t *)"x", 1);
	o = th_opts(file, 1);
	assert_int_equal(sl_store_open(&s, &o), -ENOTDIR);
	assert_non_null(strstr(sl_err_msg(), file));
	/* No log there yet. */
	o = th_opts(f->dir, 0);
	assert_int_equal(sl_store_open(&s, &o), -ENOENT);
	assert_non_null(strstr(sl_err_msg(), "no log"));
	/* A directory where segments cannot be created. */
	o = th_opts(f->dir, 1);
	o.faults = &f->faults.hook;
	th_faults_arm(&f->faults, SL_STORE_OP_OPEN, 1, -EACCES, 1);
	assert_int_equal(sl_store_open(&s, &o), -EACCES);
	assert_non_null(strstr(sl_err_msg(), "00000000000000000001.seg"));
	assert_null(s);
	/* create=1 on a directory that holds a log. */
	o = th_opts(f->dir, 0);
	assert_int_equal(sl_store_open(&s, &o), 0);
	sl_store_close(s);
	o.create = 1;
	assert_int_equal(sl_store_open(&s, &o), -EEXIST);
	/* Options out of range. */
	o = th_opts(f->dir, 0);
	o.segment_bytes = 8192;
	assert_int_equal(sl_store_open(&s, &o), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "segment_bytes"));
	free(missing);
	free(file);
}

/* The tree of the store holds a leaf per batch appended, as a tree built
 * from the batches themselves; so after reopening (recovery rebuilds it)
 * and after a cut (the tree is cut too). */
static void check_tree(struct fixture *f, size_t nbatches)
{
	struct sl_store_tree t;
	struct sl_merkle m;

	assert_int_equal(sl_merkle_init(&m, 4096), 0);
	for (size_t i = 0; i < nbatches; i++) {
		struct sl_batch_hdr h;

		assert_true(sl_batch_decode_hdr(f->log.b[i].bytes, f->log.b[i].len, NULL, &h) >= 0);
		assert_int_equal(
		    sl_merkle_add(&m,
				  sl_merkle_leaf(h.position, (uint32_t)f->log.b[i].len, h.hdr_crc)),
		    0);
	}
	sl_store_tree(f->s, &t);
	assert_int_equal(t.leaves, nbatches);
	assert_int_equal(sl_merkle_root_at(t.m, t.leaves), sl_merkle_root(&m));
	assert_true(t.sealed < t.leaves);
	assert_true(t.sealed > 0);
	sl_merkle_destroy(&m);
}

static void test_tree(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_tree t;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int i = 0; i < 100; i++)
		append_ok(f, 2, 700 + (uint32_t)i * 11, 1);
	sync_ok(f);
	check_tree(f, f->log.n);
	reopen(f, o);
	check_tree(f, f->log.n);
	sl_store_tree(f->s, &t);
	assert_int_equal(sl_store_tree_leaf_at(&t, t.leaf_pos[7] + 3), 7);
	assert_int_equal(sl_store_tree_leaf_at(&t, t.end_pos), UINT64_MAX);
	assert_int_equal(sl_store_truncate_after(f->s, f->log.b[59].lsn + f->log.b[59].count - 1),
			 0);
	th_log_truncate(&f->log, f->log.b[59].lsn + f->log.b[59].count - 1);
	check_tree(f, 60);
	for (int i = 0; i < 20; i++)
		append_ok(f, 2, 900, 0);
	sync_ok(f);
	check_tree(f, f->log.n);
}

/* A flipped bit in a sealed segment: the scrub finds the batch (position,
 * segment, offset), a rewrite with the batch appended there restores the
 * file byte for byte, and the log opens; other bytes are refused. */
static void test_scrub_and_rewrite(void **state)
{
	struct fixture *f = *state;
	struct sl_store_opts o = th_opts(f->dir, 1);
	struct sl_store_bad bad;
	char names[64][32], *path;
	const struct th_batch *b = NULL;
	uint8_t *img, *after;
	size_t len, len2;
	int rc, passes;

	o.segment_bytes = 64 << 10;
	o.group_bytes = 16 << 10;
	open_store(f, &o);
	for (int i = 0; i < 100; i++)
		append_ok(f, 2, 700 + (uint32_t)i * 11, 1);
	sync_ok(f);
	for (passes = 0; (rc = sl_store_scrub(f->s, 8 << 10, &bad)) == 1; passes++)
		;
	assert_int_equal(rc, 0); /* clean */
	assert_true(passes > 2);

	assert_true(th_list_segments(f->dir, names, 64) >= 3);
	path = th_path(f->dir, names[1]);
	img = th_read_file(path, &len);
	th_flip_byte(path, 3 * TH_BLOCK + 500); /* a payload inside the second segment */
	rc = 1;
	for (passes = 0; passes < 1000 && rc == 1; passes++)
		rc = sl_store_scrub(f->s, 8 << 10, &bad);
	assert_int_equal(rc, 2);
	assert_string_equal(bad.segment, names[1]);
	assert_true(bad.offset <= 3 * TH_BLOCK + 500 && 3 * TH_BLOCK + 500 < bad.offset + bad.len);
	for (size_t i = 0; i < f->log.n; i++) {
		struct sl_batch_hdr h;

		sl_batch_decode_hdr(f->log.b[i].bytes, f->log.b[i].len, NULL, &h);
		if (h.position == bad.pos)
			b = &f->log.b[i];
	}
	assert_non_null(b);
	assert_int_equal(b->len, bad.len);
	assert_int_equal(sl_store_scrub(f->s, 1 << 20, &bad), 0); /* nothing else */
	/* Refused: other bytes, another position. */
	assert_int_equal(sl_store_rewrite(f->s, bad.pos, f->log.b[0].bytes, f->log.b[0].len),
			 -EINVAL);
	assert_int_equal(sl_store_rewrite(f->s, bad.pos + 1, b->bytes, b->len), -ENOENT);
	assert_int_equal(sl_store_rewrite(f->s, bad.pos, b->bytes, b->len), 0);
	after = th_read_file(path, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(img, after, len);
	rc = 1;
	for (passes = 0; passes < 1000 && rc == 1; passes++)
		rc = sl_store_scrub(f->s, 1 << 20, &bad);
	assert_int_equal(rc, 0);
	th_check_reads(f->s, &f->log, 0);
	reopen(f, o);
	th_check_reads(f->s, &f->log, 0);
	free(img);
	free(after);
	free(path);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_roundtrip_fdatasync_direct),
	    T(test_roundtrip_dsync_direct),
	    T(test_roundtrip_fdatasync_buffered),
	    T(test_roundtrip_dsync_buffered),
	    T(test_roundtrip_default),
	    T(test_auto_falls_back_to_buffered),
	    T(test_default_sync_adapts),
	    T(test_roll_into_prepared_spare),
	    T(test_recycle_cycles),
	    T(test_recycled_stale_headers_aligned),
	    T(test_spare_preparation_fails),
	    T(test_prewrite_ahead),
	    T(test_prewrite_failure),
	    T(test_write_records),
	    T(test_prewrite_chunk),
	    T(test_roll_takes_unzeroed_spare),
	    T(test_roll_header_write_fails),
	    T(test_roll_rename_fails),
	    T(test_roll_dir_fsync_fails),
	    T(test_group_commit),
	    T(test_append_validation),
	    T(test_segment_rollover),
	    T(test_read_by_position),
	    T(test_read_chunk_cache),
	    T(test_truncate_mid_batch),
	    T(test_truncate_after_batch),
	    T(test_epochs_and_truncate_at),
	    T(test_truncate_early_segment),
	    T(test_truncate_everything),
	    T(test_drop_before),
	    T(test_write_failure),
	    T(test_short_write),
	    T(test_inline_write),
	    T(test_inline_write_failure),
	    T(test_inline_short_write),
	    T(test_fsync_failure),
	    T(test_enospc_write),
	    T(test_enospc_fallocate),
	    T(test_bad_directories),
	    T(test_tree),
	    T(test_scrub_and_rewrite),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
