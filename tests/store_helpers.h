/* Helpers shared by the store, recovery and superblock suites: temporary
 * log directories under $SHIPLOG_TEST_TMP, chained test batches, file
 * surgery (copy, zero, flip), a fault hook that counts and injects, and an
 * independent parser of the on-disk group layout (docs/disk-format.md). */
#ifndef SHIPLOG_TESTS_STORE_HELPERS_H
#define SHIPLOG_TESTS_STORE_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/store.h"

#define TH_BLOCK 4096

extern const uint8_t th_cluster[16];
extern const uint8_t th_other_cluster[16];

/* A fresh empty directory $SHIPLOG_TEST_TMP/<tag>-XXXXXX (malloc'd path). */
char *th_mkdtemp(const char *tag);
void th_rmrf(const char *path);
/* Copy every regular file of src into dst (which must exist). */
void th_copy_dir(const char *src, const char *dst);
/* 1 when both directories hold the same names with the same bytes. */
int th_dirs_equal(const char *a, const char *b);

struct sl_store_opts th_opts(const char *dir, int create);

/* A stream of chained batches and a copy of each one encoded. */
struct th_batch {
	uint64_t lsn;	/* base lsn */
	uint32_t count; /* records */
	size_t len;
	uint8_t *bytes;
};
struct th_log {
	uint8_t cluster[16];
	uint64_t stream, next_lsn, position, epoch;
	uint32_t prev_crc;
	struct th_batch *b;
	size_t n, cap;
};
/* Start where `info` says the store continues. */
void th_log_init(struct th_log *l, const struct sl_store_info *info);
void th_log_free(struct th_log *l);
/* Forget batches holding an lsn > lsn and rewind the chain to the last kept
 * one (mirrors sl_store_truncate_after). */
void th_log_truncate(struct th_log *l, uint64_t lsn);
/* Encode the next batch: `records` records of about `rec_bytes` each
 * (content derived from the lsn, compressible or not by `seed`). */
const struct th_batch *th_log_next(struct th_log *l, uint32_t records, uint32_t rec_bytes,
				   uint32_t seed);
/* th_log_next + sl_store_append, polling on -EAGAIN; returns append's rc. */
int th_append(struct sl_store *s, struct th_log *l, uint32_t records, uint32_t rec_bytes,
	      uint32_t seed);
/* Check every batch of l from index `from` reads back byte-identical. */
void th_check_reads(struct sl_store *s, const struct th_log *l, size_t from);

/* Counting fault hook: counts each op (and those after the store failed),
 * and replaces the result of the `fail_at`-th occurrence (1-based, counting
 * from arming) of `fail_op` with `fail_res` (then of every later one when
 * `sticky`). Arming resets fail_off to "any offset". */
struct th_faults {
	struct sl_store_faults hook;
	unsigned calls[8];
	unsigned fail_op;
	unsigned fail_at;
	int fail_res;
	int sticky;
	uint64_t fail_off; /* only ops at this file offset count (UINT64_MAX: any) */
	unsigned seen;	   /* occurrences of fail_op since arming */
	unsigned fired;	   /* results replaced */
	char last_segment[64];
};
void th_faults_init(struct th_faults *f);
void th_faults_arm(struct th_faults *f, enum sl_store_op op, unsigned at, int res, int sticky);

/* Poll the store until a spare is ready (one is prepared in the background
 * after open and after each roll-over); fails the test after 1000 polls. */
void th_wait_spare(struct sl_store *s);

/* Files. */
uint8_t *th_read_file(const char *path, size_t *len);
void th_write_file(const char *path, const uint8_t *buf, size_t len);
void th_zero_range(const char *path, uint64_t off, uint64_t len);
void th_flip_byte(const char *path, uint64_t off);
/* Sorted segment names of dir; returns how many (at most max). */
int th_list_segments(const char *dir, char names[][32], int max);
/* Sorted spare names ("%020llu.spare") of dir. */
int th_list_spares(const char *dir, char names[][32], int max);
char *th_path(const char *dir, const char *name); /* malloc'd dir/name */

/* Independent parse of a segment image: groups from TH_BLOCK on, up to the
 * first block that is not a group header of the segment's tag. */
struct th_group {
	uint64_t off, seq, durable_through;
	uint32_t batch_bytes;
	int nbatches;
	uint64_t batch_off[64];
	uint32_t batch_len[64];
};
int th_parse_groups(const uint8_t *img, size_t len, struct th_group *g, int max);

#endif
