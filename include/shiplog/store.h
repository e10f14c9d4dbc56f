/* The log store: a stream's batches in preallocated segment files, written by
 * group commit through io_uring, recovered and verified on open, plus a
 * superblock (two copies) that holds the node's durable election state. */
#ifndef SHIPLOG_STORE_H
#define SHIPLOG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/batch.h"
#include "shiplog/merkle.h"
#include "shiplog/epoch.h"

struct sl_store;

enum sl_sync_mode {
	SL_SYNC_DEFAULT = 0, /* adaptive, as measured by shipbench store (figures in
			      * sl_store_open, io/store.c): DSYNC for a group that
			      * goes out while nothing submitted before it awaits
			      * durability (the lowest latency at queue depth 1),
			      * FDATASYNC for one that joins others (its write slot
			      * frees when the data is written, so under load the
			      * writes stay max_inflight deep while the fdatasyncs
			      * trail) */
	SL_SYNC_FDATASYNC,   /* write, then a linked fdatasync per group */
	SL_SYNC_DSYNC,	     /* one RWF_DSYNC write per group */
};

enum sl_io_mode {
	SL_IO_AUTO = 0, /* O_DIRECT, falling back to buffered where refused (tmpfs) */
	SL_IO_DIRECT,
	SL_IO_BUFFERED,
};

enum sl_store_op {
	SL_STORE_OP_WRITE,
	SL_STORE_OP_FSYNC, /* fdatasync (in DSYNC mode durability is the WRITE) */
	SL_STORE_OP_READ,
	SL_STORE_OP_OPEN,	 /* opening or creating a segment file */
	SL_STORE_OP_OPEN_DIRECT, /* the O_DIRECT probe (SL_IO_AUTO, SL_IO_DIRECT) */
	SL_STORE_OP_FALLOCATE,	 /* preallocating a segment or a spare */
	SL_STORE_OP_RENAME,	 /* a spare into a segment, or a dropped segment into a spare */
	SL_STORE_OP_PREWRITE,	 /* zeros written ahead of the appends, or their fdatasync */
};

/* Test hook: sees every io_uring completion before the store does and may
 * replace its result (e.g. with -EIO or -ENOSPC). It also sees the result
 * (0 or -errno) of the synchronous steps of creating a segment (OPEN,
 * FALLOCATE, then WRITE and FSYNC of its header at offset 0), of opening one
 * for writing, of the O_DIRECT probe and of the fdatasync made at open.
 * Preparing a spare shows as OPEN then FALLOCATE (named after the spare); a
 * roll-over into a spare as WRITE (its header, offset 0), RENAME and FSYNC
 * (of the directory), named after the new segment; retention turning a
 * segment into a spare as RENAME, named after the segment. Zeros written
 * ahead of the appends (direct I/O: a spare's first blocks, then the tail
 * segment's) and their fdatasync show as PREWRITE, each with its offset.
 * `segment` is the file name within the log directory. */
struct sl_store_faults {
	int (*on_complete)(void *ctx, enum sl_store_op op, const char *segment, uint64_t offset,
			   int res);
	void *ctx;
};

struct sl_store_opts {
	const char *dir; /* log directory; must exist */
	uint8_t cluster_id[16];
	uint32_t node_id;
	uint64_t stream_id;
	/* default 64 MiB; rounded up to the block; must hold one block (the
	 * segment header) plus one group */
	uint64_t segment_bytes;
	/* largest single group write, default 1 MiB, at most 64 MiB, rounded up
	 * to the block. It bounds the batch size: a batch must fit a group with
	 * its 32-byte group header. max_inflight + 1 buffers of this size are
	 * allocated and registered with io_uring. */
	uint32_t group_bytes;
	uint32_t max_inflight; /* group writes in flight at once, default 2, at most 64 */
	enum sl_sync_mode sync_mode;
	enum sl_io_mode io_mode;
	/* Spare files kept for future segments, default 2, at most 16; negative:
	 * none. A spare is prepared in the background (created and fallocated
	 * through io_uring) whenever none is ready, and sl_store_drop_before
	 * turns dropped segments into spares (recycling: their blocks are
	 * already written, so appends into them convert no extents) rather than
	 * deleting them. With a spare ready, a roll-over never waits for I/O. */
	int32_t spare_segments;
	int create;		       /* 1: initialise an empty directory; 0: it must hold a log */
	struct sl_batch_limits limits; /* zero: sl_batch_default_limits */
	const struct sl_store_faults *faults;
	/* Leaves of the Merkle tree over the log's batches (anti-entropy), one
	 * per batch; 0: SL_STORE_TREE_DEFAULT. 24 bytes each are allocated
	 * (touched as batches come). Past it the tree covers a prefix. */
	uint64_t tree_leaves;
	/* 1: recovery keeps a batch of a sealed segment whose header verifies
	 * and chains but whose payload does not, when valid batches follow it,
	 * as a hole (sl_store_holes) for the caller to repair from a peer (at
	 * most SL_STORE_HOLES_MAX; more are refused as corruption). 0: such a
	 * log is refused (-EBADMSG), as any corruption. */
	int repair_holes;
	/* Bytes: a group at most this long (padded to the block) written when
	 * nothing else is in flight (no group, zeros or roll-over), in DSYNC
	 * mode, is written by the store's writer thread (pwritev2, RWF_DSYNC)
	 * rather than through io_uring, where the flush runs from a kernel
	 * worker. Its completion comes through the ring (sl_store_wait_fd,
	 * sl_store_poll) as any write's; the caller never blocks on it. 0: no
	 * writer thread. */
	uint32_t inline_write_max;
	/* Optional, the caller's: a record per group write and per chunk of
	 * zeros written ahead (sl_store_wtrace, below), for finding where a
	 * write's time goes (shipbench cluster --breakdown). */
	struct sl_store_wtrace *wtrace;
	/* Direct I/O: bytes of zeros per chunk written ahead of the appends
	 * (each chunk then its fdatasync, one at a time), 256 KiB..8 MiB,
	 * rounded up to the block; 0: 1 MiB. Smaller chunks delay a group
	 * written beside one less, but flush the shared disk more often. */
	uint32_t prewrite_chunk;
};

/* One write of the log and what was in flight beside it on the same log when
 * it was submitted. Times are CLOCK_MONOTONIC ns as the store's thread saw
 * them: queued, its write's completion reaped, and done (a group: reported
 * durable, in order; zeros: their fdatasync reaped). */
enum sl_store_wrec_kind { SL_WREC_GROUP, SL_WREC_ZEROS, SL_WREC_SPARE_ZEROS };
struct sl_store_wrec {
	uint64_t t_submit, t_written, t_done;
	uint32_t bytes;
	uint8_t kind;
	uint8_t linked_sync;  /* write + linked fdatasync, not RWF_DSYNC */
	uint8_t groups_ahead; /* groups submitted before it, not yet durable */
	uint8_t writes_ahead; /* ... of which still writing */
	uint8_t zeros_at;     /* a chunk of zeros (tail or spare) in flight at submit */
	uint8_t zeros_during; /* chunks of zeros started while it was in flight (max 255) */
};
struct sl_store_wtrace {
	struct sl_store_wrec *rec;
	uint32_t cap, n; /* records past cap are dropped */
};

#define SL_STORE_HOLES_MAX 16

#define SL_STORE_TREE_DEFAULT (1ull << 20)

struct sl_store_info {
	uint64_t first_lsn;	   /* oldest LSN held (after retention) */
	uint64_t next_lsn;	   /* base LSN the next appended batch must have */
	uint64_t next_position;	   /* position the next appended batch must have */
	uint32_t last_crc;	   /* hdr_crc of the last batch (chain) */
	uint64_t last_epoch;	   /* epoch of the last batch, 0 when empty */
	uint64_t durable_lsn;	   /* every LSN <= this is durable (0: none) */
	uint64_t durable_position; /* end position of the durable prefix */
	uint32_t segments;
	int failed;		     /* 0, or the negative errno that failed the store */
	int direct_io;		     /* 1 when writes use O_DIRECT */
	enum sl_sync_mode sync_mode; /* the mode in use (never DEFAULT: DSYNC for it) */
	int sync_adaptive;	     /* 1: DEFAULT, FDATASYNC for groups that join others */
	uint32_t block_bytes;	     /* write alignment in use: max(4096, STATX_DIOALIGN) */
	uint64_t torn_bytes;	     /* bytes of torn tail cut at open */
	uint32_t spares;	     /* spare files ready for the next roll-overs */
	uint64_t groups_written;
	uint64_t prewritten_bytes; /* zeros written ahead of the appends (direct I/O) */
};

/* Open (or with create=1 initialise) the log in o->dir: read the superblock,
 * recover every segment (verifying each batch), cut a torn tail, refuse
 * corruption (-EBADMSG, naming file and offset, changing nothing) and foreign
 * or other-cluster files (-EINVAL / -EBADMSG, naming the file). */
int sl_store_open(struct sl_store **out, const struct sl_store_opts *o);
/* Waits for writes in flight, then releases everything. Pending (unflushed)
 * appends are flushed first unless the store has failed. */
void sl_store_close(struct sl_store *s);

/* Append one encoded batch (bytes from sl_batch_encode). It must chain:
 * base_lsn == next_lsn, position == next_position, prev_crc == last_crc,
 * epoch >= last_epoch, and carry this store's cluster and stream ids; its
 * header and payload CRCs are verified (-EINVAL / -EBADMSG otherwise). The
 * bytes are copied. -EMSGSIZE: larger than group_bytes - 32.
 * -EAGAIN: every group buffer is busy; call sl_store_poll and retry.
 * Opening a new segment here may fail with the file's error (e.g. -ENOSPC
 * from fallocate): the batch is then not appended and the store stays usable;
 * a failed write or fsync of the segment header fails the store. */
int sl_store_append(struct sl_store *s, const void *batch, size_t len);

/* Submit the open group now (group commit normally submits when a write slot
 * is free). Returns 0 or -errno. */
int sl_store_flush(struct sl_store *s);

/* With `on`, group writes are queued rather than submitted until
 * sl_store_submit (or a call that must wait for a completion): a leader sends
 * a batch to its followers before its own write costs it the submission
 * (tens of microseconds). Turning it off submits what was held. */
void sl_store_hold(struct sl_store *s, int on);
/* 1 when no group is being filled, held, written or synced: a write now
 * would go to an idle log (every turn). */
int sl_store_idle(const struct sl_store *s);
/* sl_store_info's durable_position, without copying the rest (every turn). */
uint64_t sl_store_durable_position(const struct sl_store *s);
/* The end of the newest group handed to the kernel (0: none yet): for
 * tracing where a write waited (shipbench cluster --breakdown). */
uint64_t sl_store_submitted_position(const struct sl_store *s);
/* Submit what sl_store_hold held. Returns 0 or -errno (the store failed). */
int sl_store_submit(struct sl_store *s);

/* Reap completions, waiting for at least `min_complete` of them, and submit
 * the next group when a slot is free. Returns how many groups became durable,
 * or -errno once the store has failed. */
int sl_store_poll(struct sl_store *s, unsigned min_complete);

/* A file descriptor that turns readable when sl_store_poll has a
 * completion to reap (the write ring's), for callers that sleep in ppoll()
 * while idle. */
int sl_store_wait_fd(const struct sl_store *s);

/* Flush and wait until everything appended is durable (or the store fails). */
int sl_store_sync(struct sl_store *s);

void sl_store_get_info(const struct sl_store *s, struct sl_store_info *out);

/* Copy the whole batch that holds `lsn` into buf; returns its length or
 * -ENOENT (not held), -EAGAIN (appended but not durable yet: reads serve the
 * durable prefix only), -ENOSPC (buf too small), -EIO (bad bytes on disk).
 * Reads go through a second io_uring of the store's own, so they never reap
 * write completions. The batch is verified (header and payload CRC). */
int sl_store_read(struct sl_store *s, uint64_t lsn, void *buf, size_t cap, struct sl_batch_hdr *h);

/* The same, for the batch that starts at stream position `pos` (the
 * protocol's read op: catch-up and delivery after a restart speak in
 * positions). -ENOENT also when `pos` is not a batch boundary. */
int sl_store_read_pos(struct sl_store *s, uint64_t pos, void *buf, size_t cap,
		      struct sl_batch_hdr *h);

/* Remove every batch that holds an LSN > lsn (whole batches: a batch that
 * straddles lsn goes too; an empty batch counts as holding its base LSN).
 * Waits until everything appended is durable first, then zeroes the cut tail,
 * deletes later segments and fsyncs. Appends continue from the last kept
 * batch, at the next block boundary. Durable and not reversible. */
int sl_store_truncate_after(struct sl_store *s, uint64_t lsn);

/* The same by position (divergence repair: an empty batch holds no LSN to
 * name it by): remove the batch that starts at `pos` and every later one.
 * pos == the log end cuts nothing; -EINVAL when no batch starts at `pos`. */
int sl_store_truncate_at(struct sl_store *s, uint64_t pos);

/* The log's epoch map (shiplog/epoch.h): where each epoch's first batch
 * starts, rebuilt from the batch headers at open and kept with appends and
 * truncations (the protocol's elections start from it). */
void sl_store_epochs(const struct sl_store *s, struct sl_epoch_map *out);

/* Retention: delete whole segments whose batches all precede `lsn` and are
 * durable. The last segment is never deleted (its header anchors the chain).
 * Up to spare_segments of them are kept as spares (renamed) for reuse.
 * Returns the number of segments deleted. */
int sl_store_drop_before(struct sl_store *s, uint64_t lsn);

/* The Merkle tree over the log's batches (core/merkle.c), one leaf per
 * batch (sl_merkle_leaf of its position, length and header CRC) from the
 * first batch held: fed by appends, rebuilt by recovery at open, cut with
 * the log, a leaf replaced when a batch is rewritten. Anti-entropy compares
 * the leaves of sealed segments: every segment but the last, which is still
 * being written. Valid until the next call that changes the log. */
struct sl_store_tree {
	const struct sl_merkle *m;
	const uint64_t *leaf_pos; /* leaf j's batch starts at leaf_pos[j] */
	uint64_t base_pos;	  /* position of leaf 0 */
	uint64_t leaves;	  /* leaves covered (m->n, or one less when full) */
	uint64_t sealed;	  /* leaves [0, sealed) lie in sealed segments */
	uint64_t end_pos;	  /* where the batch of the last leaf ends */
	int full;		  /* tree_leaves reached: batches past end_pos are not covered */
};
void sl_store_tree(const struct sl_store *s, struct sl_store_tree *out);
/* The leaf that holds position `pos` (the last one starting at or before
 * it), or UINT64_MAX when none does. */
uint64_t sl_store_tree_leaf_at(const struct sl_store_tree *t, uint64_t pos);
/* The segment file holding position `pos` ("" when none). */
const char *sl_store_segment_of(const struct sl_store *s, uint64_t pos);

/* Scrub: re-read the batches of sealed segments from disk, durable ones
 * only, and check each against its CRCs and its leaf in the tree (position,
 * length and header CRC as appended): what a bit flip on disk or a batch
 * written at the wrong place breaks. A pass walks the log from its first
 * batch; each call reads about `max_bytes` (whole groups) and returns
 *   0 the pass is done (the next call starts another),
 *   1 it moved on, more to read,
 *   2 a bad batch: *bad says which (the pass goes on after it),
 *   -errno on an I/O error (the pass starts again next time).
 * Reads bypass the read cache, from their own descriptor. */
struct sl_store_bad {
	uint64_t pos;	    /* the batch's position (as the tree has it) */
	uint32_t len;	    /* its length, as appended */
	uint64_t leaf;	    /* its leaf index */
	uint64_t leaf_hash; /* its leaf as appended: a repair must match it */
	char segment[32];
	uint64_t offset; /* in the segment file */
	char why[128];
};
int sl_store_scrub(struct sl_store *s, uint64_t max_bytes, struct sl_store_bad *bad);

/* The holes recovery kept (repair_holes) and no rewrite or cut has removed
 * yet: up to `max` copied to out (leaf_hash: the leaf as appended, from the
 * intact header); returns how many there are. Reading one fails its CRC. */
uint32_t sl_store_holes(const struct sl_store *s, struct sl_store_bad *out, uint32_t max);

/* Repair: write `batch` over the batch at `pos` in place, then fdatasync.
 * Only a batch of this log that verifies, of that position and of the
 * length there: -EINVAL otherwise, -ENOENT when no leaf starts at `pos` or
 * the batch is not in a sealed, durable segment. Usually it is the one
 * appended there (the tree's leaf); one of another leaf replaces a valid
 * batch that is not the committed one, and the tree takes its leaf: the
 * caller vouches for it (anti-entropy checked it against the leader's
 * tree). A failed write or fdatasync fails the store. Repairs never cut the
 * log. */
int sl_store_rewrite(struct sl_store *s, uint64_t pos, const void *batch, size_t len);

/* Superblock: election state, written durably (two alternating copies with a
 * sequence number, so a torn write leaves the other copy). */
#define SL_EPOCH_MAP_MAX 128
struct sl_epoch_entry {
	uint64_t epoch;
	uint64_t start_position; /* first position written in this epoch */
	uint64_t start_lsn;
};
struct sl_store_meta {
	uint64_t current_epoch;
	uint32_t voted_for; /* node id, 0 = none */
	uint64_t voted_epoch;
	uint32_t n_epochs;
	struct sl_epoch_entry epochs[SL_EPOCH_MAP_MAX];
};
/* get: the state last read or written (no I/O). put: write it durably
 * (the older copy, then fdatasync); -EINVAL when n_epochs is too large. */
int sl_store_meta_get(struct sl_store *s, struct sl_store_meta *out);
int sl_store_meta_put(struct sl_store *s, const struct sl_store_meta *m);

#endif
