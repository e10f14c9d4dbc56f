/* A simulated disk holding one node's log: the bytes written so far, of
 * which a prefix is durable. Writes land in a volatile region and become
 * durable in write order after a latency the caller chooses (a group
 * commit: everything written before a sync completes with it). A crash
 * loses the volatile region, except that the disk may already hold a random
 * prefix of it (possibly torn, possibly garbled at the tear); recovery keeps
 * the longest prefix of whole, verified, chained batches. Rot (bit flips, a
 * valid batch copied over another) hits durable batches in place; the disk
 * remembers which batches it hit, as the store's leaves remember what was
 * appended, until a rewrite or a cut removes them. */
#ifndef SHIPLOG_SIM_DISK_H
#define SHIPLOG_SIM_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/batch.h"
#include "shiplog/epoch.h"

/* One batch of the log, as the index knows it. */
struct sl_sim_bref {
	uint64_t pos;
	uint64_t base_lsn;
	uint32_t len;
	uint32_t count;
	uint32_t hdr_crc;
	uint32_t prev_crc;
	uint64_t epoch;
};

/* A write waiting for its sync to complete. */
struct sl_sim_pending {
	uint64_t end;	     /* the log end this write reached */
	uint64_t durable_at; /* virtual time its sync completes */
};

#define SL_SIM_ROT_MAX 16 /* batches of one disk hit by rot at once */

struct sl_sim_disk {
	uint8_t *buf;
	uint64_t cap;
	uint64_t end;	  /* bytes written, durable or not */
	uint64_t durable; /* the prefix that survives a crash */
	uint64_t next_lsn;
	uint32_t last_crc;
	struct sl_sim_bref *idx; /* every whole batch in [0, end), in order */
	uint32_t n_idx, idx_cap;
	struct sl_sim_pending *pend; /* FIFO of unsynced writes */
	uint32_t pend_head, pend_n, pend_cap;
	uint64_t last_durable_at; /* syncs complete in order */
	struct sl_batch_limits lim;
	uint32_t rot[SL_SIM_ROT_MAX]; /* index entries whose bytes rot hit */
	uint32_t n_rot;
};

/* How a crash treated the volatile region (for the trace and the tests). */
enum sl_sim_tear {
	SL_SIM_TEAR_LOST = 0, /* nothing of it reached the disk */
	SL_SIM_TEAR_PREFIX,   /* a random byte prefix reached it */
	SL_SIM_TEAR_WHOLE,    /* whole batches up to a random one reached it */
	SL_SIM_TEAR_GARBLED,  /* a random prefix, its last bytes garbled */
};

struct sl_sim_crash_info {
	enum sl_sim_tear tear;
	uint64_t volatile_bytes; /* end - durable at the crash */
	uint64_t kept;		 /* of them, still on the disk */
};

/* Where recovery left the log. */
struct sl_sim_recovered {
	uint64_t next_lsn, next_pos;
	uint32_t last_crc;
	uint64_t cut_bytes;    /* bytes after the last good batch, dropped */
	uint64_t lost_durable; /* durable bytes recovery could not keep: a bug */
};

/* 0 or -ENOMEM. `cap` bytes of log, `idx_cap` batches, `pend_cap` unsynced
 * writes; `lim` bounds what recovery accepts. */
int sl_sim_disk_init(struct sl_sim_disk *d, uint64_t cap, uint32_t idx_cap, uint32_t pend_cap,
		     const struct sl_batch_limits *lim);
void sl_sim_disk_destroy(struct sl_sim_disk *d);

/* Append one batch at `pos`, durable at `durable_at` or later (never before
 * the previous write's sync). The disk accepts only what a correct node
 * writes: a verified batch at the end of the log that chains to the last
 * one (position, base_lsn, prev_crc). Returns 0, or
 *   -EINVAL  pos is not the end of the log, or the batch does not chain
 *   -EBADMSG the bytes are not a verified batch of exactly `len` bytes
 *   -ENOSPC  out of capacity (log bytes, index or pending writes). */
int sl_sim_disk_write(struct sl_sim_disk *d, uint64_t pos, const uint8_t *batch, size_t len,
		      uint64_t durable_at);

/* Virtual time the oldest unsynced write becomes durable; UINT64_MAX none. */
uint64_t sl_sim_disk_next_sync(const struct sl_sim_disk *d);

/* Complete every sync due at `now`. Returns 1 when `durable` advanced. */
int sl_sim_disk_sync(struct sl_sim_disk *d, uint64_t now);

/* Forget the unsynced writes without making them durable (a failed sync:
 * the bytes stay in the volatile region, lost at the next crash). */
void sl_sim_disk_drop_pending(struct sl_sim_disk *d);

/* The process died: lose the volatile region, but keep a random prefix of
 * it on the disk (rng decides; garbled bytes never reach below `durable`). */
void sl_sim_disk_crash(struct sl_sim_disk *d, uint64_t *rng, struct sl_sim_crash_info *info);

/* Rebuild the index from the bytes: the longest prefix of whole batches that
 * verify and chain from position 0, LSN 1, prev_crc 0. Everything after it
 * is cut; the result is durable. Fills *out. */
void sl_sim_disk_recover(struct sl_sim_disk *d, struct sl_sim_recovered *out);

/* Copy the whole batch at `pos` into buf. Its length, or -ENOENT when no
 * batch starts at pos, -ENOSPC when cap is too small. */
int sl_sim_disk_read(const struct sl_sim_disk *d, uint64_t pos, uint8_t *buf, size_t cap);

/* Cut the log at `pos`, a batch boundary (or 0): everything after it is
 * gone, durably (the real store waits for what is in flight, then zeroes
 * and syncs); pending syncs of the cut bytes are forgotten. 0, or -EINVAL
 * when pos is not a boundary of the log. */
int sl_sim_disk_truncate(struct sl_sim_disk *d, uint64_t pos);

/* Header CRC of the batch that ends at `pos`: 0 for pos 0, -1 when no
 * batch of the log ends there. */
int64_t sl_sim_disk_crc_at_end(const struct sl_sim_disk *d, uint64_t pos);

/* The log's epoch map, as recovery rebuilds it from the batch headers. */
void sl_sim_disk_epochs(const struct sl_sim_disk *d, struct sl_epoch_map *m);

/* Index of the batch that starts at pos, or -1. */
int64_t sl_sim_disk_find(const struct sl_sim_disk *d, uint64_t pos);

/* The last LSN held entirely below `pos` (0 when none). pos need not be a
 * batch boundary: a batch that ends after pos does not count. */
uint64_t sl_sim_disk_lsn_below(const struct sl_sim_disk *d, uint64_t pos);

/* End position of the batch holding `lsn`; 0 for lsn 0, UINT64_MAX when the
 * log does not hold it yet. */
uint64_t sl_sim_disk_lsn_end(const struct sl_sim_disk *d, uint64_t lsn);

/* Rot, in durable batches only (else -EINVAL); -ENOSPC when the disk has
 * SL_SIM_ROT_MAX rotten batches already. Flip 1..8 random bits of batch i. */
int sl_sim_disk_flip(struct sl_sim_disk *d, uint32_t i, uint64_t *rng);
/* Copy the bytes of batch `src` (a valid batch: not rotten, else -EINVAL)
 * over the start of batch `dst`, at most dst's length: a batch written at
 * the wrong offset. */
int sl_sim_disk_misplace(struct sl_sim_disk *d, uint32_t src, uint32_t dst);

/* 1 when the bytes of batch i are the batch appended there (they verify,
 * at its position, length and header CRC), else 0. */
int sl_sim_disk_intact(const struct sl_sim_disk *d, uint32_t i);

/* 1 when batch i is one rot hit and no rewrite has restored yet. */
int sl_sim_disk_rotten(const struct sl_sim_disk *d, uint32_t i);

/* Write `batch` over the batch at `pos` in place (anti-entropy's repair):
 * only the batch appended there (verified; same length and header CRC). 0,
 * -ENOENT when no batch starts at pos or it is not durable, -EINVAL for
 * other bytes. It forgets the rot of that batch. */
int sl_sim_disk_rewrite(struct sl_sim_disk *d, uint64_t pos, const uint8_t *batch, size_t len);

#endif
