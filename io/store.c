/* The log store: group commit through io_uring, in-order durability, reads,
 * truncation and retention, and the spare files that make segment roll-over
 * cost the appender nothing. See include/shiplog/store.h and
 * docs/disk-format.md; recovery lives in recovery.c, file formats in segment.c. */
#include "shiplog/store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "recovery.h"
#include "segment.h"
#include "superblock.h"
#include "writer.h"
#include "shiplog/err.h"
#include "shiplog/le.h"
#include "shiplog/log.h"

#define DEFAULT_GROUP_BYTES (1u << 20)
#define MAX_GROUP_BYTES	    (64u << 20)
#define DEFAULT_INFLIGHT    2
#define MAX_INFLIGHT	    64
#define INDEX_CAP	    16384	/* entries; 48 bytes each */
#define INDEX_GAP	    (64u << 10) /* stream bytes between entries, to start with */
#define READ_SLACK	    (64u << 10) /* read chunk = group size + this */
#define MIN_BLOCK	    4096u
#define DEFAULT_SPARES	    2
#define MAX_SPARES	    16
/* Direct I/O: zeros are written (and synced) ahead of the appends, a chunk
 * at a time, so that a group lands on blocks already written. A write into
 * a fallocated (unwritten) extent converts it, and its RWF_DSYNC or
 * fdatasync then waits for a journal commit: dd measured 425 against 195 us
 * per 4 KiB dsync write on the development machine (docs/performance.md). */
#define PREWRITE_AHEAD (8u << 20) /* kept written past the appends; a spare's first */
/* At most one chunk of zeros (the tail's or a spare's) and its fdatasync
 * are in flight per log. Smaller chunks shorten a group's wait behind one
 * but sync more often, and each sync is a flush of the shared disk:
 * under load 256 KiB was no better than 1 MiB; on the quiet machine it
 * cut the half-max lag's p99 but slowed the closed loop (docs/performance.md). */
#define PREWRITE_CHUNK	   (1u << 20) /* sl_store_opts.prewrite_chunk: the default */
#define PREWRITE_CHUNK_MIN (256u << 10)
#define PREWRITE_CHUNK_MAX (8u << 20)
/* Only while groups are small: that is where a journal commit per durable
 * write dominates. Large groups pay for it once per many records, and a
 * disk-bound appender would lose half its bandwidth to the zeros
 * (docs/disk-format.md, Spares). */
#define PREWRITE_GROUP_MAX (256u << 10)

/* io_uring user_data: a commit index and which of its operations completed,
 * or (PREP_BIT) a step of preparing a spare. */
enum {
	OP_WRITE,     /* a group's write */
	OP_FSYNC,     /* a group's linked fdatasync */
	OP_ROLL_HDR,  /* roll-over: the new segment's header, RWF_DSYNC */
	OP_ROLL_NAME, /* roll-over: the spare renamed to the segment's name */
	OP_ROLL_DIR,  /* roll-over: the directory fsynced */
	OP_BITS = 3,
};
#define PREP_BIT   (1ull << 63)
#define PREP_OPEN  0
#define PREP_ALLOC 1
#define PREP_ZERO  2 /* a spare's first blocks written ... */
#define PREP_SYNC  3 /* ... and synced */
#define ZERO_BIT   (1ull << 62)
#define ZERO_WRITE 0 /* the tail segment: zeros ahead of the appends ... */
#define ZERO_SYNC  1 /* ... and their fdatasync */

/* A group buffer and the group being built in it. A buffer is busy from
 * the group's first batch until its write completes. */
struct group {
	uint8_t *buf;
	struct sl_seg *seg;
	uint64_t off; /* file offset of the group header */
	uint32_t len; /* header + batches */
	uint64_t seq;
	uint64_t end_lsn, end_position; /* chain after its last batch */
};

/* A submitted group until it is durable (or failed). Kept apart from the
 * buffer so the buffer can take the next group while the fdatasync of this
 * one is still running: the writes stay max_inflight deep. A roll-over into
 * a spare is a commit too (kind ROLL): it sits in the submission order
 * before the new segment's first group, so no group of that segment is
 * reported durable before the segment's header and name are. */
enum commit_kind { COMMIT_GROUP, COMMIT_ROLL };
struct commit {
	enum commit_kind kind;
	struct sl_seg *seg;
	uint64_t off;
	uint32_t wlen; /* bytes written: the group padded to the block */
	uint32_t buf;  /* the group buffer, busy while `writing` */
	uint64_t seq;
	uint64_t end_lsn, end_position;
	unsigned pending; /* completions still to come */
	int writing;
	int err;
	int32_t wrec;		     /* its sl_store_wtrace record, -1 for none */
	uint32_t zchunks_at;	     /* s->zchunks when it was submitted */
	char spare[SL_SEG_NAME_MAX]; /* ROLL: the spare's name until renamed */
};

/* A file kept for a future segment: made ahead of time in the background,
 * left by retention, or found at open. */
struct spare {
	char name[SL_SEG_NAME_MAX];
	int fd;		  /* -1 until it is used */
	int recycled;	  /* it held other bytes (a segment of an earlier life) */
	uint32_t old_tag; /* the tag of that life, when known */
	uint64_t written; /* blocks below this are written and synced */
};

struct sl_store {
	char dir[PATH_MAX];
	int dirfd;
	uint8_t cluster_id[16];
	uint32_t node_id;
	uint64_t stream_id;
	struct sl_batch_limits lim;
	const struct sl_store_faults *faults;
	uint64_t seg_bytes;
	uint32_t group_cap, block, max_inflight;
	int direct;
	enum sl_sync_mode sync;
	int adaptive;		  /* SL_SYNC_DEFAULT: DSYNC alone, FDATASYNC behind other writes */
	uint32_t inline_max;	  /* sl_store_opts.inline_write_max */
	int inline_ci;		  /* commit of a group for the writer at the next submit, -1 */
	struct sl_writer *writer; /* inline writes (inline_max > 0), else NULL */

	struct io_uring ring; /* group writes and their durability ops */
	struct io_uring rd;   /* reads: kept apart so waiting for a read never
				 consumes (or misorders) write completions */
	int ring_ok, rd_ok;

	uint8_t *mem; /* all group buffers, registered with the ring */
	struct group *g;
	unsigned ng; /* max_inflight + 1 */
	unsigned *free_bufs;
	unsigned nfree_bufs;
	int fill;	   /* buffer of the group being filled, -1 for none */
	unsigned inflight; /* group writes in flight */
	struct commit *c;
	unsigned nc;	 /* 2 * max_inflight (fsyncs may trail the writes) + a roll */
	unsigned *order; /* submitted commits, oldest first (ring of nc) */
	unsigned order_head, order_len;
	unsigned *free_commits;
	unsigned nfree_commits;
	unsigned cqes; /* completions outstanding */

	struct sl_seg **segs;
	uint32_t nsegs, segs_cap;
	struct sl_seg **file_owner; /* registered-file slots */
	unsigned nfiles;
	uint8_t *blockbuf; /* one aligned block for segment headers */

	/* Spares. At most one roll-over is in flight (roll_ci, its header in
	 * rollbuf) and at most one spare is being prepared (prep). */
	struct spare spares[MAX_SPARES];
	unsigned nspares, max_spares;
	uint64_t spare_serial; /* number of the next spare's name */
	int roll_ci;	       /* commit of the roll-over in flight, -1 for none */
	uint8_t *rollbuf;
	enum { PREP_IDLE, PREP_OPENING, PREP_ALLOCATING, PREP_ZEROING } prep;
	struct spare prep_sp;
	int prep_blocked;      /* a preparation failed: not again before the next roll */
	unsigned prep_pending; /* PREP_ZEROING: a chunk and its fdatasync in flight */
	uint32_t prep_zlen;    /* that chunk's bytes, from prep_sp.written */
	int prep_err;

	/* Prewriting (direct I/O only: zbuf NULL otherwise): at most one chunk
	 * of zeros and its fdatasync in flight, [zoff, zend) of zseg. */
	uint8_t *zbuf;	 /* zchunk zero bytes */
	uint32_t zchunk; /* bytes per chunk of zeros */
	struct sl_seg *zseg;
	uint64_t zoff, zend;
	unsigned zpending;
	int zerr;
	int syncing;	   /* sl_store_sync: start no prewrite */
	int hold;	   /* sl_store_hold */
	unsigned held;	   /* entries queued and not submitted */
	uint64_t held_seq; /* the first group among them */
	uint64_t prewritten;
	uint32_t last_wlen;		    /* bytes of the last group submitted */
	struct sl_store_wtrace *wtrace;	    /* sl_store_opts.wtrace */
	uint32_t zchunks;		    /* chunks of zeros started */
	int32_t zrec, prep_zrec;	    /* their wtrace records in flight, -1 */
	uint64_t queued_end, submitted_end; /* after the newest group queued, submitted */

	/* chain after the last appended batch */
	uint64_t next_lsn, next_position, last_epoch, next_seq;
	uint32_t last_crc;
	struct sl_epoch_map epochs; /* where each epoch of the log starts */
	/* the durable prefix */
	uint64_t durable_next_lsn, durable_position, durable_seq;
	unsigned new_durable;

	int failed;
	uint64_t failed_seq; /* groups from this seq on are never durable */
	char fail_msg[SL_ERR_MSG_MAX];

	uint64_t torn_bytes, groups_written;
	/* Batches recovery kept as holes (repair_holes), until rewritten. */
	int repair_holes;
	struct sl_store_bad holes[SL_STORE_HOLES_MAX];
	uint32_t nholes;
	struct sl_index idx;

	uint8_t *rbuf; /* read chunk */
	size_t rcap;
	int rfd;
	const struct sl_seg *rseg;
	/* rbuf caches [roff, roff + rlen) of rseg: bytes that no write in
	 * flight can still change (see read_at). */
	uint64_t roff;
	size_t rlen;

	struct sl_sb sb;

	struct sl_merkle tree; /* a leaf per batch from the first held */
	uint64_t *leaf_pos;    /* each leaf's batch position */
	/* Scrub: the next group to check (segment by base LSN, file offset),
	 * the leaf of its first batch, and a buffer for one group. */
	uint64_t scrub_seg_lsn, scrub_off, scrub_leaf;
	int scrub_on;
	uint8_t *sbuf;
	size_t scap;
};

static struct sl_seg *tail_seg(const struct sl_store *s)
{
	return s->segs[s->nsegs - 1];
}

/* --- write records (sl_store_opts.wtrace) --------------------------------- */

static uint64_t wt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A chunk of zeros (the tail's or a spare's) is in flight. */
static int zeros_busy(const struct sl_store *s)
{
	return s->zseg != NULL || (s->prep == PREP_ZEROING && s->prep_pending > 0);
}

/* A new record for a write about to be queued: its index, or -1. */
static int32_t wt_start(struct sl_store *s, enum sl_store_wrec_kind kind, uint32_t bytes)
{
	struct sl_store_wtrace *t = s->wtrace;
	struct sl_store_wrec *r;
	unsigned ahead = s->order_len, writing = s->inflight;

	if (__builtin_expect(t == NULL, 1) || t->n >= t->cap)
		return -1;
	r = &t->rec[t->n];
	*r = (struct sl_store_wrec){.t_submit = wt_now(),
				    .bytes = bytes,
				    .kind = (uint8_t)kind,
				    .groups_ahead = (uint8_t)(ahead > 255 ? 255 : ahead),
				    .writes_ahead = (uint8_t)(writing > 255 ? 255 : writing),
				    .zeros_at = (uint8_t)zeros_busy(s)};
	return (int32_t)t->n++;
}

static void wt_written(struct sl_store *s, int32_t i)
{
	if (i >= 0)
		s->wtrace->rec[i].t_written = wt_now();
}

static void wt_done(struct sl_store *s, int32_t i)
{
	if (i >= 0)
		s->wtrace->rec[i].t_done = wt_now();
}

static int fault(const struct sl_store *s, enum sl_store_op op, const char *name, uint64_t off,
		 int res)
{
	return sl_seg_fault(s->faults, op, name, off, res);
}

/* The store's error, again, for every call after a failure. */
static int fail_err(const struct sl_store *s)
{
	return sl_err_set(-s->failed, "log %s failed: %s", s->dir, s->fail_msg);
}

/* Fail the store: nothing from group `seq` on will be reported durable, and
 * no write or fsync is issued again. The current error message says why. */
static void fail_store(struct sl_store *s, int err, uint64_t seq)
{
	assert(err < 0);
	if (seq < s->failed_seq)
		s->failed_seq = seq;
	if (s->failed)
		return;
	s->failed = err;
	snprintf(s->fail_msg, sizeof(s->fail_msg), "%s", sl_err_msg());
	sl_error("log %s failed: %s", s->dir, s->fail_msg);
}

/* --- segments and registered files --------------------------------------- */

/* Give `seg` a write descriptor and a registered-file slot. */
static int seg_attach(struct sl_store *s, struct sl_seg *seg)
{
	int rc, slot = -1;

	if (seg->fd < 0) {
		int fd =
		    openat(s->dirfd, seg->name, O_RDWR | O_CLOEXEC | (s->direct ? O_DIRECT : 0));

		rc = fault(s, SL_STORE_OP_OPEN, seg->name, 0, fd < 0 ? -errno : 0);
		if (rc < 0) {
			if (fd >= 0)
				close(fd);
			return sl_err_set(-rc, "opening segment %s/%s for writing: %s", s->dir,
					  seg->name, strerror(-rc));
		}
		seg->fd = fd;
	}
	if (seg->size < s->seg_bytes) { /* e.g. a file cut short by hand */
		rc = fallocate(seg->fd, 0, 0, (off_t)s->seg_bytes) < 0 ? -errno : 0;
		rc = fault(s, SL_STORE_OP_FALLOCATE, seg->name, 0, rc);
		if (rc < 0)
			return sl_err_set(-rc, "preallocating segment %s/%s: %s", s->dir, seg->name,
					  strerror(-rc));
		seg->size = s->seg_bytes;
	}
	if (seg->file_slot >= 0)
		return 0;
	for (unsigned i = 0; i < s->nfiles && slot < 0; i++)
		if (s->file_owner[i] == NULL)
			slot = (int)i;
	/* Only segments with groups in flight hold a slot, and there are more
	 * slots than groups in flight. */
	assert(slot >= 0);
	rc = io_uring_register_files_update(&s->ring, (unsigned)slot, &seg->fd, 1);
	if (rc < 0)
		return sl_err_set(-rc, "registering segment %s/%s with io_uring: %s", s->dir,
				  seg->name, strerror(-rc));
	s->file_owner[slot] = seg;
	seg->file_slot = slot;
	return 0;
}

/* Close a segment's write descriptor and free its slot (no group in flight). */
static void seg_detach(struct sl_store *s, struct sl_seg *seg)
{
	assert(seg->inflight == 0);
	if (seg->file_slot >= 0) {
		int none = -1;

		io_uring_register_files_update(&s->ring, (unsigned)seg->file_slot, &none, 1);
		s->file_owner[seg->file_slot] = NULL;
		seg->file_slot = -1;
	}
	if (seg->fd >= 0)
		close(seg->fd);
	seg->fd = -1;
	if (s->rseg == seg) {
		close(s->rfd);
		s->rfd = -1;
		s->rseg = NULL;
		s->rlen = 0;
	}
}

static int segs_push(struct sl_store *s, struct sl_seg *seg)
{
	if (s->nsegs == s->segs_cap) {
		uint32_t cap = s->segs_cap ? s->segs_cap * 2 : 16;
		struct sl_seg **ns = realloc(s->segs, cap * sizeof(*ns));

		if (ns == NULL)
			return sl_err_set(ENOMEM, "out of memory");
		s->segs = ns;
		s->segs_cap = cap;
	}
	s->segs[s->nsegs++] = seg;
	return 0;
}

static void prep_start(struct sl_store *s);
static void prep_ready(struct sl_store *s);
static int wait_reap(struct sl_store *s, unsigned n);
static int submit_all(struct sl_store *s, unsigned nsqe, const char *what, const char *name,
		      uint64_t seq);

/* The segment header for a new segment at the current end of the chain. */
static struct sl_seg_hdr new_hdr(const struct sl_store *s, uint32_t avoid_tag, int recycled)
{
	struct sl_seg_hdr h = {
	    .stream_id = s->stream_id,
	    .node_id = s->node_id,
	    .block_bytes = s->block,
	    .base_lsn = s->next_lsn,
	    .base_position = s->next_position,
	    .base_epoch = s->last_epoch,
	    .base_seq = s->next_seq,
	    .prev_crc = s->last_crc,
	    .tag = sl_seg_new_tag(avoid_tag),
	    .flags = recycled ? SL_SEG_F_RECYCLED : 0,
	    .version = SL_SEG_VERSION,
	};

	memcpy(h.cluster_id, s->cluster_id, 16);
	return h;
}

/* Start a new segment by creating its file, synchronously: the first
 * segment, and any roll-over when no spare is ready. */
static int roll_create(struct sl_store *s)
{
	struct sl_seg_hdr h = new_hdr(s, 0, 0);
	struct sl_seg *seg, *old = s->nsegs ? tail_seg(s) : NULL;
	int fd, rc, io_failed;

	if ((seg = calloc(1, sizeof(*seg))) == NULL)
		return sl_err_set(ENOMEM, "out of memory");
	sl_seg_name(seg->name, h.base_lsn);
	seg->hdr = h;
	seg->file_slot = -1;
	fd = sl_seg_create(s->dirfd, s->dir, seg->name, &h, s->seg_bytes, s->direct ? O_DIRECT : 0,
			   s->blockbuf, s->faults, &io_failed);
	if (fd < 0) {
		free(seg);
		if (io_failed)
			fail_store(s, fd, s->next_seq);
		return fd;
	}
	seg->fd = fd;
	seg->size = s->seg_bytes;
	seg->end = seg->written = s->block;
	if ((rc = segs_push(s, seg)) < 0 || (rc = seg_attach(s, seg)) < 0) {
		/* The file is durable and valid; only memory or registration
		 * failed, which leaves the store unable to go on. */
		if (s->nsegs && tail_seg(s) == seg)
			s->nsegs--;
		seg_detach(s, seg);
		free(seg);
		fail_store(s, rc, s->next_seq);
		return rc;
	}
	if (old != NULL && old->inflight == 0)
		seg_detach(s, old);
	sl_debug("log %s: new segment %s", s->dir, seg->name);
	return 0;
}

/* The index of the spare to use next: a recycled one first, as its blocks
 * are already written (appends then convert no extents). */
static unsigned pick_spare(const struct sl_store *s)
{
	for (unsigned i = s->nspares; i-- > 0;)
		if (s->spares[i].recycled)
			return i;
	return s->nspares - 1;
}

static void drop_spare(struct sl_store *s, unsigned i)
{
	s->spares[i] = s->spares[--s->nspares];
}

/* Start a new segment in a spare without waiting for anything: the header
 * (RWF_DSYNC), the rename to the segment's name and the directory fsync go
 * to the ring as one linked chain, recorded as a ROLL commit. Groups of the
 * new segment are written at once, alongside the chain; retire() reports none
 * of them durable before the chain is done, and until the rename is durable
 * the file is a spare, which recovery never reads. The rename comes after the
 * durable header, so a file with the segment's name always has its header.
 * 1: started; 0: no usable spare (the caller creates a file); <0: error. */
static int roll_spare(struct sl_store *s)
{
	struct sl_seg *seg, *old = tail_seg(s);
	struct io_uring_sqe *sqe;
	struct commit *c;
	struct spare sp;
	unsigned ci;
	int rc;

	/* Empty batches keep the base LSN: a segment of them cannot be followed
	 * by one of the same name; creation reports that (-EEXIST). */
	if (s->nspares == 0 || old->hdr.base_lsn == s->next_lsn)
		return 0;
	assert(s->roll_ci < 0 && s->nfree_commits > 0); /* roll() waited; one is kept */
	sp = s->spares[pick_spare(s)];
	drop_spare(s, pick_spare(s));
	if (sp.fd < 0) {
		sp.fd = openat(s->dirfd, sp.name, O_RDWR | O_CLOEXEC | (s->direct ? O_DIRECT : 0));
		if (sp.fd < 0) {
			sl_warn("log %s: spare %s unusable (%s); removing it", s->dir, sp.name,
				strerror(errno));
			unlinkat(s->dirfd, sp.name, 0);
			return 0;
		}
	}
	if ((seg = calloc(1, sizeof(*seg))) == NULL) {
		close(sp.fd);
		return sl_err_set(ENOMEM, "out of memory");
	}
	seg->hdr = new_hdr(s, sp.old_tag, sp.recycled);
	sl_seg_name(seg->name, seg->hdr.base_lsn);
	seg->fd = sp.fd;
	seg->file_slot = -1;
	seg->size = s->seg_bytes;
	seg->end = s->block;
	seg->written = sp.written;
	if ((rc = segs_push(s, seg)) < 0 || (rc = seg_attach(s, seg)) < 0) {
		if (s->nsegs && tail_seg(s) == seg)
			s->nsegs--;
		seg_detach(s, seg);
		free(seg);
		fail_store(s, rc, s->next_seq);
		return rc;
	}

	ci = s->free_commits[--s->nfree_commits];
	c = &s->c[ci];
	*c = (struct commit){.kind = COMMIT_ROLL, .seg = seg, .seq = s->next_seq, .pending = 3};
	memcpy(c->spare, sp.name, sizeof(c->spare));
	memset(s->rollbuf, 0, s->block);
	sl_seg_hdr_encode(&seg->hdr, s->rollbuf);
	sqe = io_uring_get_sqe(&s->ring);
	assert(sqe != NULL); /* the ring has room for a roll besides the groups */
	io_uring_prep_write(sqe, seg->fd, s->rollbuf, s->block, 0);
	sqe->rw_flags = RWF_DSYNC;
	sqe->flags |= IOSQE_IO_LINK;
	sqe->user_data = (uint64_t)ci << OP_BITS | OP_ROLL_HDR;
	sqe = io_uring_get_sqe(&s->ring);
	assert(sqe != NULL);
	/* NOREPLACE: never clobber a file of that name, whatever left it. */
	io_uring_prep_renameat(sqe, s->dirfd, c->spare, s->dirfd, seg->name, RENAME_NOREPLACE);
	sqe->flags |= IOSQE_IO_LINK;
	sqe->user_data = (uint64_t)ci << OP_BITS | OP_ROLL_NAME;
	sqe = io_uring_get_sqe(&s->ring);
	assert(sqe != NULL);
	io_uring_prep_fsync(sqe, s->dirfd, 0);
	sqe->user_data = (uint64_t)ci << OP_BITS | OP_ROLL_DIR;
	seg->inflight++;
	s->cqes += 3;
	s->order[(s->order_head + s->order_len) % s->nc] = ci;
	s->order_len++;
	s->roll_ci = (int)ci;
	if ((rc = submit_all(s, 3, "roll-over into", seg->name, c->seq)) < 0)
		return rc;
	if (old->inflight == 0)
		seg_detach(s, old);
	sl_debug("log %s: new segment %s in %s spare %s", s->dir, seg->name,
		 sp.recycled ? "recycled" : "prepared", sp.name);
	return 1;
}

/* Start a new segment at the current end of the chain: in a spare when one
 * is ready, else by creating the file. Then prepare the next spare. */
static int roll(struct sl_store *s)
{
	int rc = 0;

	/* One roll-over at a time: a roll-over's header buffer and commit are
	 * single, and a segment is never made before the one it follows is
	 * named. A chain takes about a millisecond, a segment far longer. */
	while (s->roll_ci >= 0 && !s->failed)
		if ((rc = wait_reap(s, 1)) < 0)
			return rc;
	/* A spare still taking its zeros goes with those it has (large groups
	 * start none: prewrite). */
	while (s->nspares == 0 && s->prep == PREP_ZEROING && s->prep_pending > 0 && !s->failed)
		if ((rc = wait_reap(s, 1)) < 0)
			return rc;
	if (s->failed)
		return fail_err(s);
	if (s->nspares == 0 && s->prep == PREP_ZEROING)
		prep_ready(s);
	if (s->nsegs > 0 && s->nspares > 0)
		rc = roll_spare(s);
	if (rc == 0)
		rc = roll_create(s);
	if (rc < 0)
		return rc;
	s->prep_blocked = 0;
	prep_start(s);
	return 0;
}

/* --- spares --------------------------------------------------------------- */

/* Prepare a spare in the background when none is ready: open (create) it,
 * then fallocate it to the segment size, each an io_uring operation whose
 * completion prep_complete() takes, so the appender never waits for it. The
 * spare needs no fsync: until a roll-over renames it (after its header is
 * durable, which syncs its size and extents too) it is not part of the log,
 * and one lost in a crash is merely not there, or found again at open. */
static void prep_start(struct sl_store *s)
{
	struct io_uring_sqe *sqe;

	if (s->max_spares == 0 || s->nspares > 0 || s->prep != PREP_IDLE || s->prep_blocked ||
	    s->failed || (sqe = io_uring_get_sqe(&s->ring)) == NULL)
		return;
	s->prep_sp = (struct spare){.fd = -1};
	sl_spare_name(s->prep_sp.name, s->spare_serial++);
	io_uring_prep_openat(sqe, s->dirfd, s->prep_sp.name,
			     O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | (s->direct ? O_DIRECT : 0),
			     0644);
	sqe->user_data = PREP_BIT | PREP_OPEN;
	s->prep = PREP_OPENING;
	s->cqes++;
	/* On a submission error the operation simply is not running yet: the
	 * next submission of a group takes it along. */
	io_uring_submit(&s->ring);
}

/* A preparation failed (e.g. ENOSPC): remove the file; a roll-over then
 * creates its segment synchronously and reports the error to the appender. */
static void prep_fail(struct sl_store *s, const char *step, int res)
{
	sl_debug("log %s: preparing spare %s: %s: %s", s->dir, s->prep_sp.name, step,
		 strerror(-res));
	if (s->prep_sp.fd >= 0) {
		close(s->prep_sp.fd);
		unlinkat(s->dirfd, s->prep_sp.name, 0);
	}
	s->prep = PREP_IDLE;
	s->prep_blocked = 1;
}

/* A spare's first PREWRITE_AHEAD bytes (or all of it) are written with
 * zeros and synced before it is ready, so that the first groups after a
 * roll-over land on written blocks; the tail segment's prewriting goes on
 * from there. prewrite() starts each chunk, one at a time beside the tail's,
 * so no burst of zeros lands in front of the groups. A failure only costs
 * the spare: it is another file than the log's, whose errors it cannot hide. */
static uint64_t spare_zero_len(const struct sl_store *s)
{
	return s->seg_bytes < PREWRITE_AHEAD ? s->seg_bytes : PREWRITE_AHEAD;
}

static int spare_wants_zeros(const struct sl_store *s)
{
	return s->prep == PREP_ZEROING && s->prep_pending == 0;
}

static void prep_zero(struct sl_store *s)
{
	uint64_t left = spare_zero_len(s) - s->prep_sp.written;
	struct io_uring_sqe *sqe;

	assert(spare_wants_zeros(s) && left > 0);
	s->prep_zlen = (uint32_t)(left < s->zchunk ? left : s->zchunk);
	s->prep_zrec = wt_start(s, SL_WREC_SPARE_ZEROS, s->prep_zlen);
	s->zchunks++;
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_write(sqe, s->prep_sp.fd, s->zbuf, s->prep_zlen, s->prep_sp.written);
	sqe->flags |= IOSQE_IO_LINK;
	sqe->user_data = PREP_BIT | PREP_ZERO;
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_fsync(sqe, s->prep_sp.fd, IORING_FSYNC_DATASYNC);
	sqe->user_data = PREP_BIT | PREP_SYNC;
	s->prep_pending = 2;
	s->cqes += 2;
	if (io_uring_submit(&s->ring) >= 0)
		s->submitted_end = s->queued_end; /* held groups went along */
}

static void prep_zero_complete(struct sl_store *s, unsigned op, int res)
{
	int got = fault(s, SL_STORE_OP_PREWRITE, s->prep_sp.name, s->prep_sp.written, res);

	if (op == PREP_ZERO && got != (int)s->prep_zlen && s->prep_err == 0)
		s->prep_err = got < 0 ? got : -EIO;
	else if (op == PREP_SYNC && got != 0 && s->prep_err == 0)
		s->prep_err = got;
	if (op == PREP_ZERO)
		wt_written(s, s->prep_zrec);
	if (--s->prep_pending > 0)
		return;
	wt_done(s, s->prep_zrec);
	s->prep_zrec = -1;
	if (s->prep_err < 0) {
		prep_fail(s, "prewrite", s->prep_err);
		return;
	}
	s->prep_sp.written += s->prep_zlen;
	if (s->prep_sp.written >= spare_zero_len(s))
		prep_ready(s);
}

static void prep_complete(struct sl_store *s, unsigned op, int res)
{
	struct io_uring_sqe *sqe;
	int got;

	if (op == PREP_OPEN) {
		got = fault(s, SL_STORE_OP_OPEN, s->prep_sp.name, 0, res);
		if (res >= 0)
			s->prep_sp.fd = res;
		if (got < 0) {
			prep_fail(s, "open", got);
			return;
		}
		if ((sqe = io_uring_get_sqe(&s->ring)) == NULL) {
			prep_fail(s, "fallocate", -EBUSY);
			return;
		}
		io_uring_prep_fallocate(sqe, s->prep_sp.fd, 0, 0, (off_t)s->seg_bytes);
		sqe->user_data = PREP_BIT | PREP_ALLOC;
		s->prep = PREP_ALLOCATING;
		s->cqes++;
		io_uring_submit(&s->ring);
		return;
	}
	if (op == PREP_ZERO || op == PREP_SYNC) {
		prep_zero_complete(s, op, res);
		return;
	}
	got = fault(s, SL_STORE_OP_FALLOCATE, s->prep_sp.name, 0, res);
	if (got < 0) {
		prep_fail(s, "fallocate", got);
		return;
	}
	if (s->zbuf) { /* its zeros: prewrite() */
		s->prep = PREP_ZEROING;
		s->prep_pending = 0;
		s->prep_err = 0;
		s->prep_sp.written = 0;
		return;
	}
	prep_ready(s);
}

/* The spare is ready for a roll-over. */
static void prep_ready(struct sl_store *s)
{
	s->prep = PREP_IDLE;
	if (s->nspares < s->max_spares) {
		s->spares[s->nspares++] = s->prep_sp;
	} else { /* retention filled the pool meanwhile */
		close(s->prep_sp.fd);
		unlinkat(s->dirfd, s->prep_sp.name, 0);
	}
}

/* --- group commit -------------------------------------------------------- */

/* Submit `nsqe` prepared entries; on failure the store fails from `seq` on. */
static int submit_all(struct sl_store *s, unsigned nsqe, const char *what, const char *name,
		      uint64_t seq)
{
	if (s->hold) {
		if (s->held == 0 || seq < s->held_seq)
			s->held_seq = seq;
		s->held += nsqe;
		return 0;
	}
	for (unsigned done = 0; done < nsqe;) {
		int rc = io_uring_submit(&s->ring);

		if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)
			continue;
		if (rc < 0) {
			sl_err_set(-rc, "submitting %s segment %s/%s to io_uring: %s", what, s->dir,
				   name, strerror(-rc));
			fail_store(s, rc, seq);
			return rc;
		}
		if (rc == 0) /* counted as submitted already (e.g. by prep_start) */
			break;
		done += (unsigned)rc;
	}
	s->submitted_end = s->queued_end;
	return 0;
}

static void complete(struct sl_store *s, uint64_t user_data, int res);
static void retire(struct sl_store *s);

/* A lone small group (inline_write_max): written and made durable by the
 * store's writer thread, pwritev2 with RWF_DSYNC, its result posted to the
 * ring as the CQE of an io_uring write would be. Through io_uring the flush
 * runs from a kernel worker that must get a core before the CQE; the
 * writer waits for the device itself. Only a lone group: the writer holds
 * one write at a time and the groups behind it go through io_uring. */
static int inline_fits(const struct sl_store *s, uint32_t wlen)
{
	return s->writer != NULL && wlen <= s->inline_max && s->order_len == 0 && !s->zseg &&
	       s->roll_ci < 0 && s->sync == SL_SYNC_DSYNC;
}

static void write_inline(struct sl_store *s)
{
	unsigned ci = (unsigned)s->inline_ci;
	struct commit *c = &s->c[ci];

	s->inline_ci = -1;
	sl_writer_post(s->writer, c->seg->fd, s->g[c->buf].buf, c->wlen, c->off,
		       (uint64_t)ci << OP_BITS | OP_WRITE);
	s->submitted_end = c->end_position;
}

/* Queue commit ci's group write (and its fdatasync): how many SQEs. */
static unsigned queue_group(struct sl_store *s, const struct group *g, unsigned ci)
{
	const struct commit *c = &s->c[ci];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	assert(sqe != NULL); /* the ring has two entries per commit record */
	io_uring_prep_write_fixed(sqe, c->seg->file_slot, g->buf, c->wlen, c->off, (int)c->buf);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = (uint64_t)ci << OP_BITS | OP_WRITE;
	/* Adaptive (the default): RWF_DSYNC holds the write slot until the
	 * flush is done, which costs nothing for a group alone (and saves a
	 * round trip) but keeps the device from the next write under load. A
	 * group is alone when nothing submitted before it awaits durability
	 * (at queue depth 1 every group is). */
	if (s->sync == SL_SYNC_DSYNC && !(s->adaptive && s->order_len > 0)) {
		sqe->rw_flags = RWF_DSYNC;
		return 1;
	}
	/* The fdatasync runs only if the write fully succeeded. */
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(&s->ring);
	assert(sqe != NULL);
	io_uring_prep_fsync(sqe, c->seg->file_slot, IORING_FSYNC_DATASYNC);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = (uint64_t)ci << OP_BITS | OP_FSYNC;
	return 2;
}

/* A write slot and a commit record are free. One commit record stays free
 * for a roll-over while none is running: the groups have the
 * 2 * max_inflight they need. */
static int slot_free(const struct sl_store *s)
{
	return s->inflight < s->max_inflight && s->nfree_commits > (s->roll_ci < 0 ? 1u : 0u);
}

/* Submit the open group if a write slot (and a commit record) is free.
 * 0 whether or not it went. */
static int submit_fill(struct sl_store *s)
{
	struct commit *c;
	struct group *g;
	unsigned ci, nsqe;
	int inl;

	if (s->fill < 0 || !slot_free(s) || s->failed)
		return 0;
	g = &s->g[s->fill];
	/* Never beside zeros still being written over the same blocks. */
	if (g->seg == s->zseg && g->off < s->zend &&
	    g->off + sl_align_up(g->len, s->block) > s->zoff)
		return 0;
	ci = s->free_commits[--s->nfree_commits];
	c = &s->c[ci];
	*c = (struct commit){.kind = COMMIT_GROUP,
			     .seg = g->seg,
			     .off = g->off,
			     .wlen = (uint32_t)sl_align_up(g->len, s->block),
			     .buf = (uint32_t)s->fill,
			     .seq = g->seq,
			     .end_lsn = g->end_lsn,
			     .end_position = g->end_position,
			     .writing = 1};
	c->wrec = wt_start(s, SL_WREC_GROUP, c->wlen);
	c->zchunks_at = s->zchunks;
	s->fill = -1;
	assert(g->len > SL_GROUP_HDR_SIZE);
	sl_group_hdr_encode(&(struct sl_group_hdr){.batch_bytes = g->len - SL_GROUP_HDR_SIZE,
						   .seq = g->seq,
						   .durable_through = s->durable_seq,
						   .tag = c->seg->hdr.tag},
			    g->buf);
	memset(g->buf + g->len, 0, c->wlen - g->len);
	assert(c->off + c->wlen <= c->seg->size && c->seg->file_slot >= 0);

	inl = inline_fits(s, c->wlen) && c->seg->fd >= 0;
	nsqe = inl ? 1 : queue_group(s, g, ci);
	if (c->wrec >= 0)
		s->wtrace->rec[c->wrec].linked_sync = nsqe == 2;
	c->pending = nsqe;
	s->last_wlen = c->wlen;
	s->queued_end = c->end_position;
	c->seg->end = c->off + c->wlen;
	c->seg->inflight++;
	s->inflight++;
	s->cqes += nsqe;
	s->order[(s->order_head + s->order_len) % s->nc] = ci;
	s->order_len++;
	s->groups_written++;
	if (!inl)
		return submit_all(s, nsqe, "a group to", c->seg->name, c->seq);
	s->inline_ci = (int)ci;
	if (!s->hold) /* held: at the next sl_store_submit, as an SQE would go */
		write_inline(s);
	return 0;
}

int sl_store_submit(struct sl_store *s)
{
	unsigned n = s->held;
	int hold = s->hold;

	if (s->inline_ci >= 0)
		write_inline(s);
	if (n == 0)
		return 0;
	s->held = 0;
	s->hold = 0;
	submit_all(s, n, "held writes to", s->nsegs ? tail_seg(s)->name : "", s->held_seq);
	s->hold = hold;
	return s->failed ? fail_err(s) : 0;
}

void sl_store_hold(struct sl_store *s, int on)
{
	s->hold = on;
	if (!on)
		sl_store_submit(s);
}

/* Report groups durable in submission order. */
static void retire(struct sl_store *s)
{
	while (s->order_len > 0) {
		unsigned ci = s->order[s->order_head];
		struct commit *c = &s->c[ci];

		if (c->pending > 0)
			break;
		if (c->kind == COMMIT_GROUP && c->wrec >= 0) {
			uint32_t z = s->zchunks - c->zchunks_at;

			wt_done(s, c->wrec);
			s->wtrace->rec[c->wrec].zeros_during = (uint8_t)(z > 255 ? 255 : z);
		}
		if (c->kind == COMMIT_GROUP && c->err == 0 && c->seq < s->failed_seq) {
			assert(c->seq == s->durable_seq + 1);
			s->durable_next_lsn = c->end_lsn;
			s->durable_position = c->end_position;
			s->durable_seq = c->seq;
			s->new_durable++;
		}
		s->free_commits[s->nfree_commits++] = ci;
		s->order_head = (s->order_head + 1) % s->nc;
		s->order_len--;
	}
}

/* A step of a roll-over into a spare completed. Any failure fails the store
 * from the new segment's first group on: what the chain did not finish may
 * leave the file a spare or a segment without groups, both of which open. */
static void roll_complete(struct sl_store *s, struct commit *c, unsigned op, int res)
{
	struct sl_seg *seg = c->seg;
	int err = 0;

	if (op == OP_ROLL_HDR) {
		res = fault(s, SL_STORE_OP_WRITE, seg->name, 0, res);
		if (res != (int)s->block) {
			err = res < 0 ? res : -EIO;
			sl_err_set(-err, "writing header of segment %s/%s (spare %s): %s", s->dir,
				   seg->name, c->spare, res < 0 ? strerror(-err) : "short write");
		}
	} else if (op == OP_ROLL_NAME) {
		res = fault(s, SL_STORE_OP_RENAME, seg->name, 0, res);
		if (res < 0 && !(res == -ECANCELED && c->err != 0)) {
			err = res;
			sl_err_set(-err, "renaming spare %s/%s to segment %s: %s", s->dir, c->spare,
				   seg->name, strerror(-err));
		}
	} else {
		res = fault(s, SL_STORE_OP_FSYNC, seg->name, 0, res);
		if (res < 0 && !(res == -ECANCELED && c->err != 0)) {
			err = res;
			sl_err_set(-err, "fsync of directory %s after creating segment %s: %s",
				   s->dir, seg->name, strerror(-err));
		}
	}
	if (err < 0) {
		if (c->err == 0)
			c->err = err;
		fail_store(s, err, c->seq);
	}
	s->cqes--;
	if (--c->pending > 0)
		return;
	s->roll_ci = -1;
	if (--seg->inflight == 0 && seg != tail_seg(s))
		seg_detach(s, seg);
}

/* A chunk of zeros ahead of the appends, or its fdatasync, completed. It
 * went to the log's own file: its fdatasync may consume an error that a
 * group's would otherwise see, so any failure fails the store for every
 * group not yet reported durable. */
static void zero_complete(struct sl_store *s, unsigned op, int res)
{
	struct sl_seg *seg = s->zseg;
	int err = 0;

	res = fault(s, SL_STORE_OP_PREWRITE, seg->name, s->zoff, res);
	if (op == ZERO_WRITE && res != (int)(s->zend - s->zoff)) {
		err = res < 0 ? res : -EIO;
		sl_err_set(-err, "segment %s/%s: writing zeros ahead at offset %" PRIu64 ": %s",
			   s->dir, seg->name, s->zoff, res < 0 ? strerror(-err) : "short write");
	} else if (op == ZERO_SYNC && res != 0 && !(res == -ECANCELED && s->zerr != 0)) {
		err = res < 0 ? res : -EIO;
		sl_err_set(-err, "segment %s/%s: fdatasync after zeros at offset %" PRIu64 ": %s",
			   s->dir, seg->name, s->zoff, strerror(-err));
	}
	if (err < 0) {
		if (s->zerr == 0)
			s->zerr = err;
		fail_store(s, err, s->durable_seq + 1);
	}
	s->cqes--;
	if (op == ZERO_WRITE)
		wt_written(s, s->zrec);
	if (--s->zpending > 0)
		return;
	wt_done(s, s->zrec);
	s->zrec = -1;
	if (s->zerr == 0 && s->zend > seg->written) {
		seg->written = s->zend;
		s->prewritten += s->zend - s->zoff;
	}
	s->zseg = NULL;
	if (--seg->inflight == 0 && seg != tail_seg(s))
		seg_detach(s, seg);
}

/* Where the tail segment's next chunk of zeros starts, or 0 if it needs
 * none now: it is kept written PREWRITE_AHEAD past its appends. */
static uint64_t tail_zero_from(const struct sl_store *s)
{
	const struct sl_seg *seg = tail_seg(s);
	uint64_t from = seg->written > seg->end ? seg->written : seg->end;

	if (s->last_wlen > PREWRITE_GROUP_MAX || seg->file_slot < 0 || from >= seg->size ||
	    from >= seg->end + PREWRITE_AHEAD)
		return 0;
	return from;
}

/* The spare's zeros go first once the tail has half its lead, or the tail
 * is near its end: the next roll-over needs the spare ready. */
static int spare_first(const struct sl_store *s, uint64_t tail_from)
{
	const struct sl_seg *seg = tail_seg(s);

	return tail_from == 0 || tail_from >= seg->end + PREWRITE_AHEAD / 2 ||
	       seg->size - seg->end <= 2 * PREWRITE_AHEAD;
}

/* A group waits for a write slot (or the appender for a buffer): zeros
 * started now would go before it on the device, and their completions
 * would count against an appender that waits for room (node.c's bound). */
static int group_waits(const struct sl_store *s)
{
	return (s->fill >= 0 && !slot_free(s)) || s->nfree_bufs == 0;
}

/* Write zeros ahead: one chunk and a linked fdatasync at a time per log,
 * for the tail segment (never below the end of its groups; a group that
 * would overlap a chunk in flight waits: submit_fill) or for the spare
 * being prepared. While a group waits for a slot, only a tail less than a
 * quarter of its lead ahead gets zeros. */
static void prewrite(struct sl_store *s)
{
	struct io_uring_sqe *sqe;
	struct sl_seg *seg;
	uint64_t from;
	int waits = group_waits(s);

	if (!s->zbuf || s->zseg || (s->prep == PREP_ZEROING && s->prep_pending > 0) || s->failed ||
	    s->syncing || s->nsegs == 0 || io_uring_sq_space_left(&s->ring) < 2)
		return;
	from = tail_zero_from(s);
	if (spare_wants_zeros(s) && !waits && s->last_wlen <= PREWRITE_GROUP_MAX &&
	    spare_first(s, from)) {
		prep_zero(s);
		return;
	}
	seg = tail_seg(s);
	if (from == 0 || (waits && from >= seg->end + PREWRITE_AHEAD / 4))
		return;
	s->zseg = seg;
	s->zoff = from;
	s->zend = from + s->zchunk < seg->size ? from + s->zchunk : seg->size;
	s->zpending = 2;
	s->zerr = 0;
	s->zrec = wt_start(s, SL_WREC_ZEROS, (uint32_t)(s->zend - s->zoff));
	s->zchunks++;
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_write(sqe, seg->file_slot, s->zbuf, (unsigned)(s->zend - s->zoff), s->zoff);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
	sqe->user_data = ZERO_BIT | ZERO_WRITE;
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_fsync(sqe, seg->file_slot, IORING_FSYNC_DATASYNC);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = ZERO_BIT | ZERO_SYNC;
	seg->inflight++;
	s->cqes += 2;
	/* On a submission error the chunk is not running yet: the next
	 * submission takes it along. */
	if (io_uring_submit(&s->ring) >= 0)
		s->submitted_end = s->queued_end; /* held groups went along */
}

static void complete(struct sl_store *s, uint64_t user_data, int res)
{
	unsigned ci = (unsigned)(user_data >> OP_BITS), op = (unsigned)(user_data & 7);
	int is_sync = op == OP_FSYNC;
	struct commit *c;
	int err = 0;

	if (user_data & PREP_BIT) {
		s->cqes--;
		prep_complete(s, (unsigned)(user_data & ~PREP_BIT), res);
		return;
	}
	if (user_data & ZERO_BIT) {
		zero_complete(s, (unsigned)(user_data & ~ZERO_BIT), res);
		return;
	}
	assert(ci < s->nc);
	c = &s->c[ci];
	if (c->kind == COMMIT_ROLL) {
		roll_complete(s, c, op, res);
		return;
	}
	assert(c->pending > 0 && (is_sync || c->writing));
	res = fault(s, is_sync ? SL_STORE_OP_FSYNC : SL_STORE_OP_WRITE, c->seg->name, c->off, res);
	if (!is_sync && res != (int)c->wlen) {
		err = res < 0 ? res : -EIO;
		if (res < 0)
			sl_err_set(-err,
				   "segment %s/%s: write of group %" PRIu64 " at offset %" PRIu64
				   ": %s",
				   s->dir, c->seg->name, c->seq, c->off, strerror(-err));
		else
			sl_err_set(EIO,
				   "segment %s/%s: short write of group %" PRIu64
				   " at offset %" PRIu64 ": %d of %" PRIu32 " bytes",
				   s->dir, c->seg->name, c->seq, c->off, res, c->wlen);
	} else if (is_sync && res != 0 && !(res == -ECANCELED && c->err != 0)) {
		err = res < 0 ? res : -EIO;
		sl_err_set(-err,
			   "segment %s/%s: fdatasync after group %" PRIu64 " at offset %" PRIu64
			   ": %s",
			   s->dir, c->seg->name, c->seq, c->off, strerror(-err));
	}
	if (err < 0) {
		if (c->err == 0)
			c->err = err;
		fail_store(s, err, c->seq);
	}
	if (!is_sync) { /* the data left the buffer: it can take the next group */
		wt_written(s, c->wrec);
		c->writing = 0;
		s->free_bufs[s->nfree_bufs++] = c->buf;
		s->inflight--;
	}
	s->cqes--;
	if (--c->pending > 0)
		return;
	if (--c->seg->inflight == 0 && c->seg != tail_seg(s))
		seg_detach(s, c->seg);
}

static void reap(struct sl_store *s)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&s->ring, head, cqe)
	{
		complete(s, cqe->user_data, cqe->res);
		n++;
	}
	io_uring_cq_advance(&s->ring, n);
	retire(s);
}

/* Wait for `n` completions (bounded by what is outstanding) and reap. */
static int wait_reap(struct sl_store *s, unsigned n)
{
	struct io_uring_cqe *cqe;
	int rc;

	if (s->writer && sl_writer_broken(s->writer)) { /* its completion never comes */
		if (!s->failed) {
			sl_err_set(EIO, "log %s: the writer thread lost a write's completion",
				   s->dir);
			fail_store(s, -EIO, s->durable_seq + 1);
		}
		return -EIO;
	}
	if (n > s->cqes)
		n = s->cqes;
	if (n > 0) {
		sl_store_submit(s); /* nothing held may be waited for */
		do
			rc = io_uring_wait_cqes(&s->ring, &cqe, n, NULL, NULL);
		while (rc == -EINTR);
		if (rc < 0 && rc != -ETIME) {
			sl_err_set(-rc, "waiting for io_uring completions on %s: %s", s->dir,
				   strerror(-rc));
			fail_store(s, rc, s->durable_seq + 1);
			return rc;
		}
	}
	reap(s);
	return 0;
}

/* --- append -------------------------------------------------------------- */

static int check_batch(const struct sl_store *s, const void *batch, size_t len,
		       struct sl_batch_hdr *h)
{
	int rc;

	if (len > s->group_cap - SL_GROUP_HDR_SIZE)
		return sl_err_set(EMSGSIZE,
				  "batch of %zu bytes does not fit a group of %" PRIu32
				  " bytes (group_bytes)",
				  len, s->group_cap);
	rc = sl_batch_verify(batch, len, &s->lim, h);
	if (rc < 0)
		return sl_err_wrap(rc, "appending to %s", s->dir);
	if ((size_t)rc != len)
		return sl_err_set(EINVAL, "appending to %s: batch is %d bytes but %zu were given",
				  s->dir, rc, len);
	if (memcmp(h->cluster_id, s->cluster_id, 16) != 0 || h->stream_id != s->stream_id)
		return sl_err_set(
		    EINVAL, "appending to %s: batch of another cluster or stream (%" PRIu64 ")",
		    s->dir, h->stream_id);
	if (h->base_lsn != s->next_lsn || h->position != s->next_position ||
	    h->prev_crc != s->last_crc || h->epoch < s->last_epoch)
		return sl_err_set(EINVAL,
				  "appending to %s: batch does not chain: lsn %" PRIu64 "/%" PRIu64
				  " position %" PRIu64 "/%" PRIu64 " prev_crc %08" PRIx32
				  "/%08" PRIx32 " epoch %" PRIu64 "/>=%" PRIu64 " (given/expected)",
				  s->dir, h->base_lsn, s->next_lsn, h->position, s->next_position,
				  h->prev_crc, s->last_crc, h->epoch, s->last_epoch);
	return 0;
}

static int group_fits(const struct sl_store *s, const struct group *g, size_t len)
{
	return g->len + len <= s->group_cap &&
	       g->off + sl_align_up(g->len + len, s->block) <= g->seg->size;
}

/* Open a group for a batch of `len` bytes, rolling the segment if needed. */
static int open_group(struct sl_store *s, size_t len)
{
	struct sl_seg *seg = tail_seg(s);
	struct sl_index_entry e;
	struct group *g;
	unsigned idx;
	int rc;

	assert(s->fill < 0 && s->nfree_bufs > 0);
	if (seg->end + sl_align_up(SL_GROUP_HDR_SIZE + len, s->block) > seg->size) {
		if ((rc = roll(s)) < 0)
			return sl_err_wrap(rc, "appending at lsn %" PRIu64, s->next_lsn);
		seg = tail_seg(s);
	}
	idx = s->free_bufs[--s->nfree_bufs];
	g = &s->g[idx];
	g->seg = seg;
	g->off = seg->end;
	g->len = SL_GROUP_HDR_SIZE;
	g->seq = s->next_seq++;
	s->fill = (int)idx;
	e = (struct sl_index_entry){.lsn = s->next_lsn,
				    .position = s->next_position,
				    .seg = seg,
				    .off = g->off,
				    .seq = g->seq,
				    .prev_epoch = s->last_epoch};
	sl_index_add(&s->idx, &e);
	return 0;
}

/* --- the Merkle tree ------------------------------------------------------ */

/* A full tree covers a prefix of the log from then on. */
static void tree_add(struct sl_store *s, uint64_t pos, uint32_t len, uint32_t hdr_crc)
{
	if (sl_merkle_add(&s->tree, sl_merkle_leaf(pos, len, hdr_crc)) == 0)
		s->leaf_pos[s->tree.n - 1] = pos;
}

/* Leaves whose batch starts before `pos`. */
static uint64_t leaves_before(const uint64_t *leaf_pos, uint64_t n, uint64_t pos)
{
	uint64_t lo = 0, hi = n;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (leaf_pos[mid] < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The log was cut at `pos`: so is the tree. */
static void tree_cut(struct sl_store *s, uint64_t pos)
{
	uint64_t n = leaves_before(s->leaf_pos, s->tree.n, pos);

	sl_merkle_truncate(&s->tree, n);
	for (uint32_t k = s->nholes; k-- > 0;) /* holes cut with the log */
		if (s->holes[k].pos >= pos)
			s->holes[k] = s->holes[--s->nholes];
}

void sl_store_tree(const struct sl_store *s, struct sl_store_tree *out)
{
	uint64_t n = s->tree.n, end = s->next_position;
	uint64_t tail_base = s->nsegs ? tail_seg(s)->hdr.base_position : 0;
	int full = n > 0 && n == s->tree.cap;

	if (full) { /* where the last leaf's batch ends is not kept: leave it out */
		end = s->leaf_pos[n - 1];
		n--;
	}
	*out = (struct sl_store_tree){.m = &s->tree,
				      .leaf_pos = s->leaf_pos,
				      .base_pos = n ? s->leaf_pos[0] : 0,
				      .leaves = n,
				      .sealed = leaves_before(s->leaf_pos, n, tail_base),
				      .end_pos = end,
				      .full = full};
}

uint64_t sl_store_tree_leaf_at(const struct sl_store_tree *t, uint64_t pos)
{
	uint64_t n = leaves_before(t->leaf_pos, t->leaves, pos + 1);

	return n == 0 || pos >= t->end_pos ? UINT64_MAX : n - 1;
}

const char *sl_store_segment_of(const struct sl_store *s, uint64_t pos)
{
	for (uint32_t i = s->nsegs; i-- > 0;)
		if (s->segs[i]->hdr.base_position <= pos)
			return s->segs[i]->name;
	return "";
}

int sl_store_append(struct sl_store *s, const void *batch, size_t len)
{
	struct sl_batch_hdr h;
	struct group *g;
	int rc;

	if (s->failed)
		return fail_err(s);
	if ((rc = check_batch(s, batch, len, &h)) < 0)
		return rc;
	if (s->fill >= 0 && !group_fits(s, &s->g[s->fill], len)) {
		if ((rc = submit_fill(s)) < 0)
			return rc;
		if (s->fill >= 0) /* full, and every write slot is busy */
			return -EAGAIN;
	}
	if (s->fill < 0) {
		if (s->nfree_bufs == 0)
			return -EAGAIN;
		if ((rc = open_group(s, len)) < 0)
			return rc;
	}
	g = &s->g[s->fill];
	tree_add(s, h.position, (uint32_t)len, h.hdr_crc);
	memcpy(g->buf + g->len, batch, len);
	g->len += (uint32_t)len;
	s->next_lsn = h.base_lsn + h.record_count;
	s->next_position = h.position + len;
	s->last_crc = h.hdr_crc;
	s->last_epoch = h.epoch;
	sl_epoch_map_note(&s->epochs, h.epoch, h.position, h.base_lsn, h.prev_crc);
	g->end_lsn = s->next_lsn;
	g->end_position = s->next_position;
	/* Group commit: the group goes as soon as a write slot is free; while
	 * every slot is busy, later batches join it. */
	rc = submit_fill(s);
	prewrite(s);
	return rc;
}

int sl_store_flush(struct sl_store *s)
{
	if (s->failed)
		return fail_err(s);
	return submit_fill(s);
}

int sl_store_poll(struct sl_store *s, unsigned min_complete)
{
	int n;

	submit_fill(s);
	wait_reap(s, min_complete);
	submit_fill(s);
	prewrite(s);
	if (s->failed)
		return fail_err(s);
	n = (int)s->new_durable;
	s->new_durable = 0;
	return n;
}

int sl_store_wait_fd(const struct sl_store *s)
{
	return s->ring.ring_fd;
}

int sl_store_sync(struct sl_store *s)
{
	int rc = 0;

	s->syncing = 1;
	while (s->fill >= 0 || s->order_len > 0 || s->zseg)
		if ((rc = sl_store_poll(s, 1)) < 0)
			break;
	s->syncing = 0;
	if (rc < 0)
		return rc;
	return s->failed ? fail_err(s) : 0;
}

int sl_store_idle(const struct sl_store *s)
{
	return s->order_len == 0 && s->fill < 0 && s->held == 0;
}

uint64_t sl_store_submitted_position(const struct sl_store *s)
{
	return s->submitted_end;
}

uint64_t sl_store_durable_position(const struct sl_store *s)
{
	return s->durable_position;
}

void sl_store_get_info(const struct sl_store *s, struct sl_store_info *out)
{
	memset(out, 0, sizeof(*out));
	out->first_lsn = s->nsegs ? s->segs[0]->hdr.base_lsn : s->next_lsn;
	out->next_lsn = s->next_lsn;
	out->next_position = s->next_position;
	out->last_crc = s->last_crc;
	out->last_epoch = s->last_epoch;
	out->durable_lsn = s->durable_next_lsn - 1;
	out->durable_position = s->durable_position;
	out->segments = s->nsegs;
	out->failed = s->failed;
	out->direct_io = s->direct;
	out->sync_mode = s->sync;
	out->sync_adaptive = s->adaptive;
	out->block_bytes = s->block;
	out->torn_bytes = s->torn_bytes;
	out->spares = s->nspares;
	out->groups_written = s->groups_written;
	out->prewritten_bytes = s->prewritten;
}

/* --- reads --------------------------------------------------------------- */

/* Where the bytes of `seg` stop being final: at the first group whose
 * write is still in flight (a read may see it half done), else its end. */
static uint64_t stable_end(const struct sl_store *s, const struct sl_seg *seg)
{
	uint64_t end = seg->end;

	for (unsigned i = 0; i < s->order_len; i++) {
		const struct commit *c = &s->c[s->order[(s->order_head + i) % s->nc]];

		if (c->kind == COMMIT_GROUP && c->seg == seg && c->writing && c->off < end)
			end = c->off;
	}
	return end;
}

/* Bytes of `seg` from `off` on, at least `need` of them: *out points at
 * them in s->rbuf, and the count available there is returned (or -errno).
 * The chunk read last is kept: catch-up and delivery after a restart read
 * batch after batch, most of them from one chunk (a chunk is a group or
 * more). A miss reads a whole chunk (or `need`, if larger) through the read
 * ring, and keeps only what was final when read; truncation and dropped
 * segments forget it. */
static int read_at(struct sl_store *s, const struct sl_seg *seg, uint64_t off, size_t need,
		   const uint8_t **out)
{
	uint64_t stable;
	size_t len, done = 0;

	if (s->rseg == seg && off >= s->roff && off + need <= s->roff + s->rlen) {
		*out = s->rbuf + (off - s->roff);
		return (int)(s->roff + s->rlen - off);
	}
	len = seg->end - off < (uint64_t)s->group_cap + READ_SLACK
		  ? (size_t)(seg->end - off)
		  : (size_t)s->group_cap + READ_SLACK;
	if (len < need)
		len = need;
	if (len > s->rcap) {
		uint8_t *nb = realloc(s->rbuf, len);

		if (nb == NULL)
			return sl_err_set(ENOMEM, "out of memory");
		s->rbuf = nb;
		s->rcap = len;
	}
	s->rlen = 0;
	if (s->rseg != seg) {
		/* Buffered: reads need no alignment, and the kernel keeps them
		 * coherent with O_DIRECT writes. */
		int fd = openat(s->dirfd, seg->name, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return sl_err_set(errno, "opening segment %s/%s: %s", s->dir, seg->name,
					  strerror(errno));
		if (s->rfd >= 0)
			close(s->rfd);
		s->rfd = fd;
		s->rseg = seg;
	}
	stable = stable_end(s, seg);
	while (done < len) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&s->rd);
		struct io_uring_cqe *cqe;
		int rc, res;

		assert(sqe != NULL);
		io_uring_prep_read(sqe, s->rfd, s->rbuf + done, (unsigned)(len - done), off + done);
		rc = io_uring_submit_and_wait(&s->rd, 1);
		if (rc >= 0)
			rc = io_uring_wait_cqe(&s->rd, &cqe);
		if (rc < 0)
			return sl_err_set(-rc, "reading segment %s/%s: io_uring: %s", s->dir,
					  seg->name, strerror(-rc));
		res = cqe->res;
		io_uring_cqe_seen(&s->rd, cqe);
		res = fault(s, SL_STORE_OP_READ, seg->name, off + done, res);
		if (res <= 0)
			return sl_err_set(res < 0 ? -res : EIO,
					  "reading segment %s/%s at offset %" PRIu64 ": %s", s->dir,
					  seg->name, off + done,
					  res < 0 ? strerror(-res) : "unexpected end of file");
		done += (size_t)res;
	}
	s->roff = off;
	s->rlen = stable <= off ? 0 : stable - off < len ? (size_t)(stable - off) : len;
	*out = s->rbuf;
	return (int)len;
}

/* Where a walk stopped: the batch it was looking for. */
struct walk {
	uint32_t si;	/* segment index */
	uint64_t goff;	/* its group's offset */
	uint64_t gseq;	/* its group's seq */
	uint64_t boff;	/* the batch's offset */
	int first;	/* first batch of its group */
	uint64_t epoch; /* last_epoch before the batch */
	struct sl_batch_hdr h;
	const uint8_t *bytes; /* in s->rbuf */
	uint32_t len;
};

/* What a walk looks for: its `trunc` argument. With WALK_POS the `lsn`
 * argument is a stream position instead. */
enum { WALK_LSN = 0, WALK_TRUNC = 1, WALK_POS = 2 };

/* Does this batch end the walk? Reads want the batch holding `lsn`;
 * truncation wants the first batch that holds an LSN > lsn (an empty batch
 * counts as holding its base LSN); position reads want the batch that starts
 * exactly there. */
static int walk_match(const struct sl_batch_hdr *h, uint64_t lsn, int trunc)
{
	uint64_t last = h->base_lsn + (h->record_count ? h->record_count - 1 : 0);

	if (trunc == WALK_POS)
		return h->position == lsn;
	if (trunc)
		return last > lsn;
	return h->record_count > 0 && h->base_lsn <= lsn && lsn <= last;
}

/* Walk the log's groups and batches from the index entry before `lsn`.
 * 1 and *w when found, 0 when not, -errno on error. */
static int walk(struct sl_store *s, uint64_t lsn, int trunc, struct walk *w)
{
	const struct sl_index_entry *e =
	    trunc == WALK_POS ? sl_index_find_pos(&s->idx, lsn) : sl_index_find(&s->idx, lsn);
	uint32_t si = 0;
	uint64_t off, epoch;
	int rc;

	if (s->nsegs == 0)
		return 0;
	if (e != NULL) {
		while (s->segs[si] != e->seg)
			si++;
		assert(si < s->nsegs);
		off = e->off;
		epoch = e->prev_epoch;
	} else {
		off = s->segs[0]->hdr.block_bytes;
		epoch = s->segs[0]->hdr.base_epoch;
	}
	for (; si < s->nsegs; si++, off = si < s->nsegs ? s->segs[si]->hdr.block_bytes : 0) {
		const struct sl_seg *seg = s->segs[si];
		const uint64_t block = seg->hdr.block_bytes;

		while (off < seg->end) {
			const uint8_t *buf;
			size_t n, p = 0;

			rc = read_at(s, seg, off,
				     seg->end - off < SL_GROUP_HDR_SIZE ? (size_t)(seg->end - off)
									: SL_GROUP_HDR_SIZE,
				     &buf);
			if (rc < 0)
				return rc;
			n = (size_t)rc;
			while (p + SL_GROUP_HDR_SIZE <= n) {
				struct sl_group_hdr g;
				size_t q, gend;
				int first = 1;

				if (sl_group_hdr_decode(buf + p, &g) < 0)
					return sl_err_set(
					    EIO,
					    "segment %s/%s: no group header at offset "
					    "%" PRIu64,
					    s->dir, seg->name, off + p);
				gend = p + SL_GROUP_HDR_SIZE + g.batch_bytes;
				if (gend > n) {
					if (p > 0)
						break;
					/* A group larger than what is at hand (a chunk
					 * cached in part, or a group written with a
					 * larger group_bytes): read it whole. */
					if ((rc = read_at(s, seg, off, gend, &buf)) < 0)
						return rc;
					n = (size_t)rc;
				}
				for (q = p + SL_GROUP_HDR_SIZE; q < gend; first = 0) {
					struct sl_batch_hdr h;

					if (gend - q >= 4 && sl_le32_get(buf + q) == 0)
						break;
					rc = sl_batch_decode_hdr(buf + q, gend - q, &s->lim, &h);
					if (rc < 0)
						return sl_err_wrap(rc,
								   "segment %s/%s offset %" PRIu64,
								   s->dir, seg->name, off + q);
					if (walk_match(&h, lsn, trunc)) {
						*w = (struct walk){.si = si,
								   .goff = off + p,
								   .gseq = g.seq,
								   .boff = off + q,
								   .first = first,
								   .epoch = epoch,
								   .h = h,
								   .bytes = buf + q,
								   .len = SL_BATCH_HDR_SIZE +
									  h.stored_len};
						return 1;
					}
					if ((trunc == WALK_POS ? h.position : h.base_lsn) > lsn)
						return 0;
					epoch = h.epoch;
					q += SL_BATCH_HDR_SIZE + h.stored_len;
				}
				p = (size_t)sl_align_up(q, block);
			}
			assert(p > 0);
			off += p;
		}
	}
	return 0;
}

/* Find the batch by `key` (an LSN, or a position with WALK_POS), verify it
 * and copy it out: the common part of the two reads. */
static int read_batch(struct sl_store *s, uint64_t key, int mode, void *buf, size_t cap,
		      struct sl_batch_hdr *h)
{
	const char *what = mode == WALK_POS ? "position" : "lsn";
	struct walk w;
	int rc;

	rc = walk(s, key, mode, &w);
	if (rc < 0)
		return sl_err_wrap(rc, "reading %s %" PRIu64 " from %s", what, key, s->dir);
	if (rc == 0)
		return sl_err_set(ENOENT, "log %s: no batch %s %s %" PRIu64, s->dir,
				  mode == WALK_POS ? "starts at" : "holds", what, key);
	rc = sl_batch_verify(w.bytes, w.len, &s->lim, &w.h);
	if (rc < 0)
		return sl_err_wrap(-EIO, "segment %s/%s offset %" PRIu64 ": batch for %s %" PRIu64,
				   s->dir, s->segs[w.si]->name, w.boff, what, key);
	if (w.len > cap)
		return sl_err_set(ENOSPC,
				  "batch for %s %" PRIu64 " is %" PRIu32 " bytes, buffer %zu", what,
				  key, w.len, cap);
	memcpy(buf, w.bytes, w.len);
	if (h != NULL)
		*h = w.h;
	return (int)w.len;
}

int sl_store_read(struct sl_store *s, uint64_t lsn, void *buf, size_t cap, struct sl_batch_hdr *h)
{
	if (lsn < (s->nsegs ? s->segs[0]->hdr.base_lsn : s->next_lsn) || lsn >= s->next_lsn)
		return sl_err_set(ENOENT, "log %s does not hold lsn %" PRIu64, s->dir, lsn);
	if (lsn >= s->durable_next_lsn)
		return sl_err_set(EAGAIN, "log %s: lsn %" PRIu64 " is not durable yet", s->dir,
				  lsn);
	return read_batch(s, lsn, WALK_LSN, buf, cap, h);
}

int sl_store_read_pos(struct sl_store *s, uint64_t pos, void *buf, size_t cap,
		      struct sl_batch_hdr *h)
{
	if (pos < (s->nsegs ? s->segs[0]->hdr.base_position : s->next_position) ||
	    pos >= s->next_position)
		return sl_err_set(ENOENT, "log %s does not hold position %" PRIu64, s->dir, pos);
	if (pos >= s->durable_position)
		return sl_err_set(EAGAIN, "log %s: position %" PRIu64 " is not durable yet", s->dir,
				  pos);
	return read_batch(s, pos, WALK_POS, buf, cap, h);
}

/* --- truncation and retention -------------------------------------------- */

static void seg_free(struct sl_store *s, struct sl_seg *seg)
{
	seg_detach(s, seg);
	sl_index_drop_seg(&s->idx, seg);
	free(seg);
}

/* Cut the log before the batch a walk found (everything from it on goes). */
static int cut_at(struct sl_store *s, const struct walk *wp, const char *what, uint64_t key)
{
	const struct walk w = *wp;
	struct sl_seg *seg;
	uint64_t cut;
	int rc, fd;

	seg = s->segs[w.si];
	cut = w.first ? w.goff : w.boff;
	s->rlen = 0; /* the cached chunk may hold the bytes cut */
	/* Later segments go first, last to first, then the tail of the cut
	 * segment: a crash midway leaves a prefix of the old log. */
	sl_index_cut(&s->idx, w.h.position);
	tree_cut(s, w.h.position);
	while (s->nsegs > w.si + 1) {
		struct sl_seg *t = tail_seg(s);

		if ((rc = sl_seg_unlink(s->dirfd, s->dir, t->name)) < 0)
			goto err_fail;
		s->nsegs--;
		seg_free(s, t);
	}
	if ((rc = sl_dir_sync(s->dirfd, s->dir)) < 0)
		goto err_fail;
	fd = openat(s->dirfd, seg->name, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = sl_err_set(errno, "opening segment %s/%s: %s", s->dir, seg->name,
				strerror(errno));
		goto err_fail;
	}
	rc = sl_seg_zero(fd, seg->name, cut, seg->end, seg->hdr.block_bytes);
	close(fd);
	if (rc < 0)
		goto err_fail;
	/* The next group starts on a fresh block, chained to the last kept batch. */
	seg->end = sl_align_up(cut, seg->hdr.block_bytes);
	if ((rc = seg_attach(s, seg)) < 0)
		goto err_fail;
	s->next_lsn = s->durable_next_lsn = w.h.base_lsn;
	s->next_position = s->durable_position = w.h.position;
	s->last_crc = w.h.prev_crc;
	s->last_epoch = w.epoch;
	sl_epoch_map_truncate(&s->epochs, w.h.position);
	s->next_seq = w.first ? w.gseq : w.gseq + 1;
	s->durable_seq = s->next_seq - 1;
	sl_info("log %s: truncated %s %" PRIu64 " (segment %s offset %" PRIu64 ")", s->dir, what,
		key, seg->name, cut);
	return 0;

err_fail:
	fail_store(s, rc, s->next_seq);
	return rc;
}

int sl_store_truncate_after(struct sl_store *s, uint64_t lsn)
{
	struct walk w;
	int rc;

	if ((rc = sl_store_sync(s)) >= 0 && (rc = walk(s, lsn, WALK_TRUNC, &w)) > 0)
		rc = cut_at(s, &w, "after lsn", lsn);
	return rc < 0 ? sl_err_wrap(rc, "truncating %s after lsn %" PRIu64, s->dir, lsn) : 0;
}

int sl_store_truncate_at(struct sl_store *s, uint64_t pos)
{
	struct walk w;
	int rc;

	if (pos > s->next_position)
		return sl_err_set(EINVAL,
				  "truncating %s at position %" PRIu64 ": the log ends at %" PRIu64,
				  s->dir, pos, s->next_position);
	if (pos == s->next_position)
		return s->failed ? fail_err(s) : 0;
	if ((rc = sl_store_sync(s)) >= 0 && (rc = walk(s, pos, WALK_POS, &w)) == 0)
		rc = sl_err_set(EINVAL, "no batch starts there");
	if (rc > 0)
		rc = cut_at(s, &w, "at position", pos);
	return rc < 0 ? sl_err_wrap(rc, "truncating %s at position %" PRIu64, s->dir, pos) : 0;
}

void sl_store_epochs(const struct sl_store *s, struct sl_epoch_map *out)
{
	*out = s->epochs;
}

/* Turn a dropped segment into a spare: a rename, so its blocks stay
 * allocated and written, and a later roll-over writes over them without
 * converting extents (PostgreSQL recycles WAL segments the same way). The
 * old groups stay in the file; the new segment's tag tells them apart. */
static int recycle(struct sl_store *s, struct sl_seg *seg)
{
	struct spare sp = {.fd = -1,
			   .recycled = 1,
			   .old_tag = seg->hdr.tag,
			   .written = seg->written > seg->end ? seg->written : seg->end};
	int rc;

	sl_spare_name(sp.name, s->spare_serial++);
	rc = renameat2(s->dirfd, seg->name, s->dirfd, sp.name, RENAME_NOREPLACE) < 0 ? -errno : 0;
	rc = fault(s, SL_STORE_OP_RENAME, seg->name, 0, rc);
	if (rc < 0)
		return sl_err_set(-rc, "renaming segment %s/%s to spare %s: %s", s->dir, seg->name,
				  sp.name, strerror(-rc));
	s->spares[s->nspares++] = sp;
	return 0;
}

int sl_store_drop_before(struct sl_store *s, uint64_t lsn)
{
	const struct sl_seg *rolling = s->roll_ci >= 0 ? s->c[s->roll_ci].seg : NULL;
	uint32_t n = 0;
	int rc = 0;

	if (s->failed)
		return fail_err(s);
	/* Never the last segment: its header anchors the chain. Nor the one
	 * before a segment whose roll-over is in flight: until its name is
	 * durable, a crash would leave that one a spare, and this one the
	 * anchor. */
	while (s->nsegs - n > 1) {
		struct sl_seg *seg = s->segs[n], *next = s->segs[n + 1];

		if (next->hdr.base_lsn > lsn || next->hdr.base_lsn > s->durable_next_lsn ||
		    seg->inflight > 0 || next == rolling)
			break;
		if (s->nspares < s->max_spares && seg->size == s->seg_bytes)
			rc = recycle(s, seg);
		else
			rc = sl_seg_unlink(s->dirfd, s->dir, seg->name);
		if (rc < 0)
			break;
		seg_free(s, seg);
		n++;
	}
	if (n > 0) {
		memmove(s->segs, s->segs + n, (s->nsegs - n) * sizeof(*s->segs));
		s->nsegs -= n;
		int src = sl_dir_sync(s->dirfd, s->dir);

		if (rc == 0)
			rc = src;
	}
	if (rc < 0)
		return sl_err_wrap(rc, "dropping segments of %s before lsn %" PRIu64, s->dir, lsn);
	return (int)n;
}

/* --- scrub and repair ------------------------------------------------------ */

/* The length of leaf j's batch as appended. */
static uint32_t leaf_len(const struct sl_store *s, uint64_t j)
{
	return (uint32_t)((j + 1 < s->tree.n ? s->leaf_pos[j + 1] : s->next_position) -
			  s->leaf_pos[j]);
}

/* A segment is sealed for the scrub once a later one exists, no write to
 * it is in flight and all of it is durable. */
static int seg_sealed(const struct sl_store *s, uint32_t i)
{
	return i + 1 < s->nsegs && s->segs[i]->inflight == 0 &&
	       s->segs[i + 1]->hdr.base_position <= s->durable_position;
}

static int sread(struct sl_store *s, int fd, const struct sl_seg *seg, uint64_t off, size_t len)
{
	size_t got = 0;

	if (len > s->scap) {
		uint8_t *nb = realloc(s->sbuf, len);

		if (nb == NULL)
			return sl_err_set(ENOMEM, "scrub: out of memory");
		s->sbuf = nb;
		s->scap = len;
	}
	while (got < len) {
		ssize_t n = pread(fd, s->sbuf + got, len - got, (off_t)(off + got));

		if (n <= 0)
			return sl_err_set(n < 0 ? errno : EIO,
					  "scrub: reading segment %s/%s at offset %" PRIu64 ": %s",
					  s->dir, seg->name, off + got,
					  n < 0 ? strerror(errno) : "end of file");
		got += (size_t)n;
	}
	return 0;
}

/* Check the batch of leaf j at buf (`avail` bytes of its group left). */
static int scrub_batch(const struct sl_store *s, const uint8_t *buf, size_t avail, uint64_t j,
		       char *why, size_t cap)
{
	uint32_t len = leaf_len(s, j);
	struct sl_batch_hdr h;
	int rc;

	if (len > avail) {
		snprintf(why, cap, "batch of %" PRIu32 " bytes overruns its group", len);
		return 0;
	}
	sl_err_clear();
	if ((rc = sl_batch_verify(buf, len, &s->lim, &h)) < 0) {
		snprintf(why, cap, "%s", sl_err_msg()[0] ? sl_err_msg() : strerror(-rc));
		return 0;
	}
	if ((uint32_t)rc != len || h.position != s->leaf_pos[j] ||
	    sl_merkle_leaf(h.position, len, h.hdr_crc) != s->tree.level[0][j]) {
		snprintf(why, cap,
			 "a valid batch of position %" PRIu64 ", %d bytes, that is not the one "
			 "appended here",
			 h.position, rc);
		return 0;
	}
	return 1;
}

static void note_bad(const struct sl_store *s, const struct sl_seg *seg, uint64_t off, uint64_t j,
		     const char *why, struct sl_store_bad *bad)
{
	*bad = (struct sl_store_bad){.pos = s->leaf_pos[j],
				     .len = leaf_len(s, j),
				     .leaf = j,
				     .leaf_hash = s->tree.level[0][j],
				     .offset = off};
	snprintf(bad->segment, sizeof(bad->segment), "%s", seg->name);
	snprintf(bad->why, sizeof(bad->why), "%s", why);
}

/* One group of a sealed segment at s->scrub_off, checked whole: 1 all
 * good, 2 a bad batch (*bad: the first), 3 a bad group header (*bad; the
 * rest of the segment waits for the next pass: without the header the
 * group's extent is unknown, and a batch fetch cannot repair it), 0 the
 * segment's groups ended, <0 error. */
static int scrub_group(struct sl_store *s, int fd, const struct sl_seg *seg, uint64_t *bytes,
		       struct sl_store_bad *bad)
{
	uint64_t off = s->scrub_off, j = s->scrub_leaf;
	struct sl_group_hdr g;
	char why[128];
	size_t q, gend;
	int rc, ret = 1;

	if (off + SL_GROUP_HDR_SIZE > seg->end || j >= s->tree.n ||
	    s->leaf_pos[j] >= s->durable_position)
		return 0;
	if ((rc = sread(s, fd, seg, off, SL_GROUP_HDR_SIZE)) < 0)
		return rc;
	if (sl_group_hdr_decode(s->sbuf, &g) < 0 || g.tag != seg->hdr.tag ||
	    off + SL_GROUP_HDR_SIZE + g.batch_bytes > seg->end) {
		note_bad(s, seg, off, j, "bad group header", bad);
		return 3;
	}
	gend = SL_GROUP_HDR_SIZE + g.batch_bytes;
	if ((rc = sread(s, fd, seg, off, gend)) < 0)
		return rc;
	*bytes += gend;
	for (q = SL_GROUP_HDR_SIZE; q < gend && j < s->tree.n; q += leaf_len(s, j++)) {
		if (gend - q >= 4 && sl_le32_get(s->sbuf + q) == 0)
			break; /* truncation left the rest */
		if (ret == 1 && !scrub_batch(s, s->sbuf + q, gend - q, j, why, sizeof(why))) {
			note_bad(s, seg, off + q, j, why, bad);
			ret = 2;
		}
	}
	s->scrub_leaf = j;
	s->scrub_off = sl_align_up(off + gend, seg->hdr.block_bytes);
	return ret;
}

/* Point the scrub at the start of segment i. */
static void scrub_at(struct sl_store *s, uint32_t i)
{
	s->scrub_seg_lsn = s->segs[i]->hdr.base_lsn;
	s->scrub_off = s->segs[i]->hdr.block_bytes;
	s->scrub_leaf = leaves_before(s->leaf_pos, s->tree.n, s->segs[i]->hdr.base_position);
}

int sl_store_scrub(struct sl_store *s, uint64_t max_bytes, struct sl_store_bad *bad)
{
	uint64_t bytes = 0;

	if (s->failed)
		return fail_err(s);
	if (!s->scrub_on && s->nsegs > 0) { /* a new pass, from the first segment */
		s->scrub_on = 1;
		scrub_at(s, 0);
	}
	while (bytes < max_bytes) {
		uint32_t i = 0;
		int rc, fd;

		while (i < s->nsegs && s->segs[i]->hdr.base_lsn < s->scrub_seg_lsn)
			i++;
		if (i >= s->nsegs || !seg_sealed(s, i)) {
			s->scrub_on = 0; /* the pass is done */
			return 0;
		}
		if (s->segs[i]->hdr.base_lsn != s->scrub_seg_lsn) /* dropped meanwhile */
			scrub_at(s, i);
		fd = openat(s->dirfd, s->segs[i]->name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			s->scrub_on = 0;
			return sl_err_set(errno, "scrub: opening segment %s/%s: %s", s->dir,
					  s->segs[i]->name, strerror(errno));
		}
		rc = scrub_group(s, fd, s->segs[i], &bytes, bad);
		close(fd);
		if (rc < 0) {
			s->scrub_on = 0;
			return rc;
		}
		if (rc == 0 || rc == 3) {
			if (i + 1 < s->nsegs)
				scrub_at(s, i + 1);
			else
				s->scrub_seg_lsn = UINT64_MAX;
		}
		if (rc >= 2)
			return 2;
	}
	return 1;
}

/* The file offset of the batch of leaf j in segment i: a walk of its
 * groups that steps over batches by their lengths as appended (so a
 * corrupt header on the way does not stop it). 0, or -ENOENT. */
static int locate(struct sl_store *s, uint32_t i, uint64_t j, uint64_t *where)
{
	const struct sl_seg *seg = s->segs[i];
	uint64_t off = seg->hdr.block_bytes;
	uint64_t k = leaves_before(s->leaf_pos, s->tree.n, seg->hdr.base_position);
	int fd = openat(s->dirfd, seg->name, O_RDONLY | O_CLOEXEC), rc = -ENOENT;

	if (fd < 0)
		return sl_err_set(errno, "opening segment %s/%s: %s", s->dir, seg->name,
				  strerror(errno));
	while (rc == -ENOENT && off + SL_GROUP_HDR_SIZE <= seg->end && k <= j) {
		struct sl_group_hdr g;
		uint64_t q;

		if (sread(s, fd, seg, off, SL_GROUP_HDR_SIZE) < 0 ||
		    sl_group_hdr_decode(s->sbuf, &g) < 0 || g.tag != seg->hdr.tag)
			break;
		for (q = SL_GROUP_HDR_SIZE; q < SL_GROUP_HDR_SIZE + g.batch_bytes && k < s->tree.n;
		     q += leaf_len(s, k++))
			if (k == j) {
				*where = off + q;
				rc = 0;
				break;
			}
		off = sl_align_up(off + SL_GROUP_HDR_SIZE + g.batch_bytes, seg->hdr.block_bytes);
	}
	close(fd);
	return rc;
}

int sl_store_rewrite(struct sl_store *s, uint64_t pos, const void *batch, size_t len)
{
	uint64_t j = leaves_before(s->leaf_pos, s->tree.n, pos), off = 0, leaf;
	struct sl_batch_hdr h;
	uint32_t i = s->nsegs;
	int rc, fd, replaced;

	if (s->failed)
		return fail_err(s);
	if (j >= s->tree.n || s->leaf_pos[j] != pos)
		return sl_err_set(ENOENT, "log %s: no batch starts at position %" PRIu64, s->dir,
				  pos);
	while (i > 0 && s->segs[i - 1]->hdr.base_position > pos)
		i--;
	if (i == 0 || !seg_sealed(s, i - 1))
		return sl_err_set(
		    ENOENT, "log %s: position %" PRIu64 " is not in a sealed, durable segment",
		    s->dir, pos);
	i--;
	rc = sl_batch_verify(batch, len, &s->lim, &h);
	if (rc < 0 || (size_t)rc != len || len != leaf_len(s, j) || h.position != pos ||
	    memcmp(h.cluster_id, s->cluster_id, 16) != 0 || h.stream_id != s->stream_id)
		return sl_err_set(EINVAL,
				  "log %s: the batch offered for position %" PRIu64
				  " is not a batch of this log of the length there",
				  s->dir, pos);
	leaf = sl_merkle_leaf(pos, (uint32_t)len, h.hdr_crc);
	if ((rc = locate(s, i, j, &off)) < 0)
		return sl_err_set(-rc, "log %s: batch at position %" PRIu64 " not found in %s",
				  s->dir, pos, s->segs[i]->name);
	fd = openat(s->dirfd, s->segs[i]->name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return sl_err_set(errno, "opening segment %s/%s: %s", s->dir, s->segs[i]->name,
				  strerror(errno));
	errno = 0;
	rc = pwrite(fd, batch, len, (off_t)off) == (ssize_t)len ? 0 : errno ? -errno : -EIO;
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0) { /* the bytes there are unknown now: never report them good */
		sl_err_set(-rc, "rewriting batch at position %" PRIu64 " in %s/%s: %s", pos, s->dir,
			   s->segs[i]->name, strerror(-rc));
		fail_store(s, rc, s->next_seq);
		return fail_err(s);
	}
	s->rlen = 0; /* the read cache may hold the bad bytes */
	for (uint32_t k = 0; k < s->nholes; k++)
		if (s->holes[k].pos == pos) {
			s->holes[k] = s->holes[--s->nholes];
			break;
		}
	replaced = leaf != s->tree.level[0][j];
	if (replaced) /* another valid batch was there: the tree takes this one */
		sl_merkle_set(&s->tree, j, leaf);
	sl_info("log %s: %s the batch at position %" PRIu64 " (segment %s offset %" PRIu64
		", %zu bytes)",
		s->dir, replaced ? "replaced" : "rewrote", pos, s->segs[i]->name, off, len);
	return 0;
}

/* --- superblock ---------------------------------------------------------- */

int sl_store_meta_get(struct sl_store *s, struct sl_store_meta *out)
{
	*out = s->sb.meta;
	return 0;
}

int sl_store_meta_put(struct sl_store *s, const struct sl_store_meta *m)
{
	struct sl_sb next = s->sb;
	int rc;

	if (m->n_epochs > SL_EPOCH_MAP_MAX)
		return sl_err_set(EINVAL, "epoch map of %" PRIu32 " entries exceeds %d",
				  m->n_epochs, SL_EPOCH_MAP_MAX);
	next.meta = *m;
	if ((rc = sl_sb_write(s->dirfd, s->dir, &next)) < 0)
		return rc;
	s->sb = next;
	return 0;
}

/* --- open and close ------------------------------------------------------ */

static int open_superblock(struct sl_store *s, const struct sl_store_opts *o)
{
	int rc;

	if (o->create) {
		memset(&s->sb, 0, sizeof(s->sb));
		memcpy(s->sb.cluster_id, o->cluster_id, 16);
		s->sb.stream_id = o->stream_id;
		s->sb.node_id = o->node_id;
		rc = sl_sb_create(s->dirfd, s->dir, &s->sb);
		if (rc == -EEXIST)
			return sl_err_set(EEXIST,
					  "%s already holds a log (create=1 needs an empty "
					  "directory)",
					  s->dir);
		return rc;
	}
	rc = sl_sb_read(s->dirfd, s->dir, &s->sb);
	if (rc == -ENOENT)
		return sl_err_set(ENOENT, "%s holds no log (no %s; create=1 initialises one)",
				  s->dir, SL_SB_FILE);
	if (rc < 0)
		return rc;
	if (memcmp(s->sb.cluster_id, o->cluster_id, 16) != 0)
		return sl_err_set(EINVAL, "%s/%s belongs to another cluster", s->dir, SL_SB_FILE);
	if (s->sb.stream_id != o->stream_id || s->sb.node_id != o->node_id)
		return sl_err_set(EINVAL,
				  "%s/%s is stream %" PRIu64 " node %" PRIu32
				  ", not stream %" PRIu64 " node %" PRIu32,
				  s->dir, SL_SB_FILE, s->sb.stream_id, s->sb.node_id, o->stream_id,
				  o->node_id);
	return 0;
}

/* Choose direct or buffered I/O and the block size. */
static int choose_io(struct sl_store *s, enum sl_io_mode mode, uint32_t *mem_align)
{
	struct statx stx;
	uint32_t off_align = 0;
	int fd, res;

	*mem_align = MIN_BLOCK;
	s->direct = 0;
	if (mode != SL_IO_BUFFERED) {
		fd = openat(s->dirfd, SL_SB_FILE, O_RDONLY | O_DIRECT | O_CLOEXEC);
		res = fault(s, SL_STORE_OP_OPEN_DIRECT, SL_SB_FILE, 0, fd < 0 ? -errno : 0);
		if (fd >= 0)
			close(fd);
		if (res < 0 && mode == SL_IO_DIRECT)
			return sl_err_set(-res, "%s: O_DIRECT refused: %s", s->dir, strerror(-res));
		if (res < 0)
			sl_info("log %s: O_DIRECT refused (%s); using buffered I/O", s->dir,
				strerror(-res));
		s->direct = res == 0;
	}
	if (s->direct && statx(s->dirfd, SL_SB_FILE, 0, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		off_align = stx.stx_dio_offset_align;
		if (stx.stx_dio_mem_align > *mem_align)
			*mem_align = stx.stx_dio_mem_align;
	}
	/* Groups are padded to at least 4 KiB even where 512-byte writes are
	 * allowed, so that no two groups share a page or a 4K physical sector. */
	s->block = off_align > MIN_BLOCK ? off_align : MIN_BLOCK;
	return 0;
}

static int setup_rings(struct sl_store *s, uint32_t mem_align)
{
	struct iovec *iov;
	unsigned entries = 4;
	int rc;

	s->nc = 2 * s->max_inflight + 1;
	/* Two entries per group commit, three for a roll-over, two for a spare
	 * being prepared and two for prewriting. */
	while (entries < 2 * s->nc + 7)
		entries *= 2;
	if ((rc = io_uring_queue_init(entries, &s->ring, 0)) < 0)
		return sl_err_set(-rc, "io_uring setup: %s", strerror(-rc));
	s->ring_ok = 1;
	if ((rc = io_uring_queue_init(4, &s->rd, 0)) < 0)
		return sl_err_set(-rc, "io_uring setup: %s", strerror(-rc));
	s->rd_ok = 1;

	s->ng = s->max_inflight + 1;
	s->g = calloc(s->ng, sizeof(*s->g));
	s->free_bufs = calloc(s->ng, sizeof(*s->free_bufs));
	s->c = calloc(s->nc, sizeof(*s->c));
	s->order = calloc(s->nc, sizeof(*s->order));
	s->free_commits = calloc(s->nc, sizeof(*s->free_commits));
	/* A slot per segment that a commit or the tail may hold, and one more. */
	s->nfiles = s->nc + 2;
	s->file_owner = calloc(s->nfiles, sizeof(*s->file_owner));
	iov = calloc(s->ng, sizeof(*iov));
	if (s->g == NULL || s->free_bufs == NULL || s->c == NULL || s->order == NULL ||
	    s->free_commits == NULL || s->file_owner == NULL || iov == NULL ||
	    posix_memalign((void **)&s->mem, mem_align, (size_t)s->ng * s->group_cap) ||
	    posix_memalign((void **)&s->blockbuf, mem_align, s->block) ||
	    posix_memalign((void **)&s->rollbuf, mem_align, s->block)) {
		free(iov);
		return sl_err_set(ENOMEM, "allocating %u group buffers of %" PRIu32 " bytes", s->ng,
				  s->group_cap);
	}
	memset(s->mem, 0, (size_t)s->ng * s->group_cap);
	if (s->direct) {
		s->zchunk = (uint32_t)sl_align_up(s->zchunk, s->block);
		if (posix_memalign((void **)&s->zbuf, mem_align, s->zchunk)) {
			free(iov);
			return sl_err_set(ENOMEM, "allocating the prewrite buffer");
		}
		memset(s->zbuf, 0, s->zchunk);
	}
	for (unsigned i = 0; i < s->ng; i++) {
		s->g[i].buf = s->mem + (size_t)i * s->group_cap;
		iov[i] = (struct iovec){.iov_base = s->g[i].buf, .iov_len = s->group_cap};
		s->free_bufs[s->nfree_bufs++] = s->ng - 1 - i;
	}
	for (unsigned i = 0; i < s->nc; i++)
		s->free_commits[s->nfree_commits++] = s->nc - 1 - i;
	rc = io_uring_register_buffers(&s->ring, iov, s->ng);
	free(iov);
	if (rc < 0)
		return sl_err_set(-rc, "registering %u group buffers with io_uring: %s", s->ng,
				  strerror(-rc));
	if ((rc = io_uring_register_files_sparse(&s->ring, s->nfiles)) < 0)
		return sl_err_set(-rc, "registering a file table with io_uring: %s", strerror(-rc));
	/* Spares are made and named through io_uring (kernel 5.11 and later):
	 * without those operations every roll-over creates its file, and
	 * retention deletes. */
	if (s->max_spares > 0) {
		struct io_uring_probe *p = io_uring_get_probe_ring(&s->ring);

		if (p == NULL || !io_uring_opcode_supported(p, IORING_OP_OPENAT) ||
		    !io_uring_opcode_supported(p, IORING_OP_FALLOCATE) ||
		    !io_uring_opcode_supported(p, IORING_OP_RENAMEAT)) {
			sl_info("log %s: io_uring cannot open, fallocate or rename here; no "
				"spare segments",
				s->dir);
			s->max_spares = 0;
		}
		io_uring_free_probe(p);
	}
	return 0;
}

_Static_assert(SL_STORE_HOLES_MAX == SL_RECOVER_HOLES_MAX, "a store keeps recovery's holes");

static void keep_hole(struct sl_store *s, const struct sl_recover_hole *x)
{
	uint64_t j = leaves_before(s->leaf_pos, s->tree.n, x->position);
	struct sl_store_bad *b = &s->holes[s->nholes++];

	*b = (struct sl_store_bad){.pos = x->position,
				   .len = x->len,
				   .leaf = j,
				   .leaf_hash = sl_merkle_leaf(x->position, x->len, x->hdr_crc),
				   .offset = x->offset};
	snprintf(b->segment, sizeof(b->segment), "%.*s", (int)sizeof(b->segment) - 1, x->segment);
	snprintf(b->why, sizeof(b->why), "%.*s", (int)sizeof(b->why) - 1, x->why);
	sl_warn("log %s: corrupt batch in segment %s at offset %" PRIu64 " (position %" PRIu64
		", LSNs %" PRIu64 "..%" PRIu64 "): %s; valid batches follow, so it is kept, to be "
		"repaired from a peer",
		s->dir, x->segment, x->offset, x->position, x->base_lsn,
		x->base_lsn + x->records - 1, x->why);
}

uint32_t sl_store_holes(const struct sl_store *s, struct sl_store_bad *out, uint32_t max)
{
	uint32_t n = s->nholes < max ? s->nholes : max;

	if (n > 0)
		memcpy(out, s->holes, n * sizeof(*out));
	return s->nholes;
}

static int recover(struct sl_store *s)
{
	struct sl_recover_in in = {.dirfd = s->dirfd,
				   .dir = s->dir,
				   .cluster_id = s->cluster_id,
				   .stream_id = s->stream_id,
				   .node_id = s->node_id,
				   .lim = &s->lim,
				   .tree = &s->tree,
				   .leaf_pos = s->leaf_pos,
				   .holes = s->repair_holes};
	struct sl_recover_out out;
	int rc;

	if ((rc = sl_recover(&in, &s->idx, &out)) < 0)
		return rc;
	for (uint32_t k = 0; k < out.nholes; k++)
		keep_hole(s, &out.holes[k]);
	s->segs = out.segs;
	s->nsegs = s->segs_cap = out.nsegs;
	s->next_lsn = out.next_lsn;
	s->next_position = out.next_position;
	s->last_crc = out.last_crc;
	s->last_epoch = out.last_epoch;
	s->epochs = out.epochs;
	s->next_seq = out.next_seq;
	s->torn_bytes = out.torn_bytes;
	return 0;
}

/* Take the spares a previous run left (prepared, recycled, or one a crash
 * interrupted mid roll-over): any bytes may be in them, so they count as
 * recycled. Those of another size, or beyond the pool, are removed. */
static int adopt_spares(struct sl_store *s)
{
	struct dirent *de;
	int dfd, removed = 0;
	DIR *d;

	dfd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		int rc = sl_err_set(errno, "listing %s: %s", s->dir, strerror(errno));

		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		struct spare sp = {.fd = -1, .recycled = 1};
		uint8_t hdr[SL_SEG_HDR_SIZE];
		struct sl_seg_hdr h;
		struct stat st;
		uint64_t n;
		int fd;

		if (!sl_spare_parse_name(de->d_name, &n))
			continue;
		if (n >= s->spare_serial)
			s->spare_serial = n + 1;
		memcpy(sp.name, de->d_name, sizeof(sp.name) - 1);
		fd = openat(s->dirfd, sp.name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size == s->seg_bytes &&
		    s->nspares < s->max_spares) {
			/* Its last life's tag, to be sure the next one differs. */
			if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
			    sl_seg_hdr_decode(hdr, &h) == 0)
				sp.old_tag = h.tag;
			s->spares[s->nspares++] = sp;
		} else {
			unlinkat(s->dirfd, sp.name, 0);
			removed++;
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	sl_err_clear();
	return removed ? sl_dir_sync(s->dirfd, s->dir) : 0;
}

/* Make what recovery found durable (a crash may have left it only in the
 * page cache or the device's cache), then count it as the durable prefix. */
static int settle_tail(struct sl_store *s)
{
	struct sl_seg *tail = tail_seg(s);
	int rc;

	if ((rc = seg_attach(s, tail)) < 0)
		return rc;
	rc = fdatasync(tail->fd) < 0 ? -errno : 0;
	rc = fault(s, SL_STORE_OP_FSYNC, tail->name, 0, rc);
	if (rc < 0)
		return sl_err_set(-rc, "fdatasync of segment %s/%s: %s", s->dir, tail->name,
				  strerror(-rc));
	s->durable_next_lsn = s->next_lsn;
	s->durable_position = s->next_position;
	s->durable_seq = s->next_seq - 1;
	return 0;
}

static int tree_init(struct sl_store *s, uint64_t cap)
{
	int rc = sl_merkle_init(&s->tree, cap);

	if (rc < 0)
		return sl_err_set(-rc, "a Merkle tree of %" PRIu64 " leaves (tree_leaves): %s", cap,
				  strerror(-rc));
	if ((s->leaf_pos = malloc(cap * sizeof(*s->leaf_pos))) == NULL)
		return sl_err_set(ENOMEM, "a Merkle tree of %" PRIu64 " leaves: out of memory",
				  cap);
	return 0;
}

static int check_opts(const struct sl_store_opts *o)
{
	if (o->dir == NULL || o->dir[0] == '\0')
		return sl_err_set(EINVAL, "opening log: no directory given");
	if (strlen(o->dir) >= PATH_MAX - SL_SEG_NAME_MAX)
		return sl_err_set(ENAMETOOLONG, "opening log: directory name too long");
	if (o->max_inflight > MAX_INFLIGHT)
		return sl_err_set(EINVAL, "opening log %s: max_inflight %" PRIu32 " over %d",
				  o->dir, o->max_inflight, MAX_INFLIGHT);
	if (o->group_bytes > MAX_GROUP_BYTES)
		return sl_err_set(EINVAL, "opening log %s: group_bytes %" PRIu32 " over %u", o->dir,
				  o->group_bytes, MAX_GROUP_BYTES);
	if (o->sync_mode > SL_SYNC_DSYNC || o->io_mode > SL_IO_BUFFERED)
		return sl_err_set(EINVAL, "opening log %s: unknown sync or io mode", o->dir);
	if (o->spare_segments > MAX_SPARES)
		return sl_err_set(EINVAL, "opening log %s: spare_segments %" PRId32 " over %d",
				  o->dir, o->spare_segments, MAX_SPARES);
	if (o->prewrite_chunk &&
	    (o->prewrite_chunk < PREWRITE_CHUNK_MIN || o->prewrite_chunk > PREWRITE_CHUNK_MAX))
		return sl_err_set(
		    EINVAL, "opening log %s: prewrite_chunk %" PRIu32 " not in %u..%u bytes",
		    o->dir, o->prewrite_chunk, PREWRITE_CHUNK_MIN, PREWRITE_CHUNK_MAX);
	return 0;
}

int sl_store_open(struct sl_store **out, const struct sl_store_opts *o)
{
	struct sl_store *s;
	uint32_t mem_align;
	int rc;

	*out = NULL;
	if ((rc = check_opts(o)) < 0)
		return rc;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return sl_err_set(ENOMEM, "opening log %s: out of memory", o->dir);
	s->dirfd = s->rfd = s->fill = s->roll_ci = s->inline_ci = -1;
	s->zrec = s->prep_zrec = -1;
	s->wtrace = o->wtrace;
	s->zchunk = o->prewrite_chunk ? o->prewrite_chunk : PREWRITE_CHUNK;
	s->inline_max = o->inline_write_max;
	s->failed_seq = UINT64_MAX;
	snprintf(s->dir, sizeof(s->dir), "%s", o->dir);
	memcpy(s->cluster_id, o->cluster_id, 16);
	s->node_id = o->node_id;
	s->stream_id = o->stream_id;
	s->faults = o->faults;
	s->lim = o->limits.max_raw_bytes ? o->limits : sl_batch_default_limits;
	s->repair_holes = o->repair_holes;
	s->max_inflight = o->max_inflight ? o->max_inflight : DEFAULT_INFLIGHT;
	s->max_spares = o->spare_segments < 0	 ? 0
			: o->spare_segments == 0 ? DEFAULT_SPARES
						 : (unsigned)o->spare_segments;
	/* SL_SYNC_DEFAULT is adaptive: RWF_DSYNC for a group alone, write +
	 * linked fdatasync for one that joins others (submit_fill). Measured with
	 * `shipbench store --seconds 4 --json` (1 MiB groups, 64 KiB batches, 2
	 * in flight; each throughput phase paired with its raw loop) on the
	 * development machine (ext4 without a journal on virtio, kernel 6.18,
	 * load 0.4-1.5), medians of five runs: durable p50 at queue depth 1 was
	 * 93 us adaptive, 99 us dsync, 117 us fdatasync; closed-loop appends to a
	 * new log ran at 0.937 / 0.846 / 0.932 of the raw write loop, and at
	 * steady state with retention at 0.909 / 0.785 / 0.925 of raw overwrites.
	 * DSYNC alone holds each write slot through its flush, which costs
	 * throughput; FDATASYNC alone costs a round trip at queue depth 1. */
	s->sync = o->sync_mode != SL_SYNC_DEFAULT ? o->sync_mode : SL_SYNC_DSYNC;
	s->adaptive = o->sync_mode == SL_SYNC_DEFAULT;

	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		rc = sl_err_set(errno, "opening log directory %s: %s", s->dir, strerror(errno));
		goto err_close;
	}
	if ((rc = open_superblock(s, o)) < 0 || (rc = choose_io(s, o->io_mode, &mem_align)) < 0)
		goto err_close;
	if ((rc = sl_index_init(&s->idx, INDEX_CAP, INDEX_GAP)) < 0) {
		rc = sl_err_set(-rc, "out of memory");
		goto err_close;
	}
	if ((rc = tree_init(s, o->tree_leaves ? o->tree_leaves : SL_STORE_TREE_DEFAULT)) < 0)
		goto err_close;
	if ((rc = recover(s)) < 0)
		goto err_close;
	if (s->nsegs > 0) { /* the log keeps the block it was written with */
		uint32_t b = tail_seg(s)->hdr.block_bytes;

		if (s->direct && b % s->block != 0) {
			rc = sl_err_set(EINVAL,
					"log %s was written with %" PRIu32
					"-byte blocks; this file system needs %" PRIu32,
					s->dir, b, s->block);
			goto err_close;
		}
		s->block = b;
	}
	s->group_cap =
	    (uint32_t)sl_align_up(o->group_bytes ? o->group_bytes : DEFAULT_GROUP_BYTES, s->block);
	s->seg_bytes =
	    sl_align_up(o->segment_bytes ? o->segment_bytes : SL_SEG_DEFAULT_SIZE, s->block);
	if (s->seg_bytes < s->block + s->group_cap) {
		rc = sl_err_set(EINVAL,
				"log %s: segment_bytes %" PRIu64
				" must hold the header block and one group (%" PRIu32 " bytes)",
				s->dir, s->seg_bytes, s->group_cap);
		goto err_close;
	}
	if ((rc = setup_rings(s, mem_align)) < 0 || (rc = adopt_spares(s)) < 0)
		goto err_close;
	if (s->inline_max > 0 && (rc = sl_writer_start(&s->writer, s->ring.ring_fd)) < 0)
		goto err_close;
	if (s->nsegs == 0) { /* a new log (or one whose first segment never got made) */
		s->next_lsn = 1;
		s->next_seq = 1;
		if ((rc = roll(s)) < 0)
			goto err_close;
	}
	if ((rc = settle_tail(s)) < 0)
		goto err_close;
	prep_start(s); /* the first roll-over finds its spare ready */
	sl_debug("log %s: open, next lsn %" PRIu64 ", %" PRIu32 " segments, %s I/O, %s", s->dir,
		 s->next_lsn, s->nsegs, s->direct ? "direct" : "buffered",
		 s->sync == SL_SYNC_DSYNC ? "dsync" : "fdatasync");
	*out = s;
	return 0;

err_close:
	sl_store_close(s);
	return sl_err_wrap(rc, "opening log %s", o->dir);
}

void sl_store_close(struct sl_store *s)
{
	if (s == NULL)
		return;
	if (s->ring_ok) {
		if (!s->failed && s->nsegs > 0 && sl_store_sync(s) < 0)
			sl_warn("closing log %s: %s", s->dir, sl_err_msg());
		while (s->cqes > 0 && wait_reap(s, 1) == 0)
			;
	}
	sl_writer_stop(s->writer); /* after its write's completion, before the ring goes */
	for (uint32_t i = 0; i < s->nsegs; i++) {
		s->segs[i]->inflight = 0;
		if (s->ring_ok)
			seg_detach(s, s->segs[i]);
		else if (s->segs[i]->fd >= 0)
			close(s->segs[i]->fd);
		free(s->segs[i]);
	}
	free(s->segs);
	for (unsigned i = 0; i < s->nspares; i++)
		if (s->spares[i].fd >= 0)
			close(s->spares[i].fd);
	if (s->prep == PREP_ZEROING) /* a spare the next open finds */
		close(s->prep_sp.fd);
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->ring_ok)
		io_uring_queue_exit(&s->ring);
	if (s->rd_ok)
		io_uring_queue_exit(&s->rd);
	free(s->mem);
	free(s->blockbuf);
	free(s->rollbuf);
	free(s->zbuf);
	free(s->g);
	free(s->free_bufs);
	free(s->c);
	free(s->order);
	free(s->free_commits);
	free(s->file_owner);
	free(s->rbuf);
	sl_index_free(&s->idx);
	sl_merkle_destroy(&s->tree);
	free(s->leaf_pos);
	free(s->sbuf);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s);
}
