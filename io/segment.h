/* Segment files: their names, the one-block segment header and the group
 * header that starts every group write, plus the file operations the store
 * and recovery share (create, zero a tail, remove, fsync the directory).
 * Layouts are in docs/disk-format.md. */
#ifndef SHIPLOG_IO_SEGMENT_H
#define SHIPLOG_IO_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/store.h"

#define SL_SEG_MAGIC	    0x47534c53u /* "SLSG" little-endian */
#define SL_SEG_VERSION	    2		/* written; 1 (no tag, no flags) is still read */
#define SL_SEG_F_RECYCLED   0x0001u	/* the file held other bytes before this header */
#define SL_SEG_HDR_SIZE	    128		/* encoded bytes; the rest of the block is zero */
#define SL_SEG_NAME_MAX	    32		/* "%020llu.seg" plus NUL */
#define SL_GROUP_MAGIC	    0x52474c53u /* "SLGR" little-endian */
#define SL_GROUP_HDR_SIZE   32
#define SL_SEG_DEFAULT_SIZE (64ull << 20)
#define SL_SPARE_SUFFIX	    ".spare" /* "%020llu.spare": a file kept for a future segment */

/* What a segment header records: who wrote it and the chain state before its
 * first batch, so that even an empty segment fixes where the log continues. */
struct sl_seg_hdr {
	uint8_t cluster_id[16];
	uint64_t stream_id;
	uint32_t node_id;
	uint32_t block_bytes;	/* group alignment used in this segment */
	uint64_t base_lsn;	/* next_lsn before the first batch */
	uint64_t base_position; /* next_position before the first batch */
	uint64_t base_epoch;	/* last_epoch before the first batch */
	uint64_t base_seq;	/* seq of the first group */
	uint32_t prev_crc;	/* last_crc before the first batch */
	/* Every group header of this segment carries the tag, so the groups a
	 * reused file held in an earlier life (another tag) are not this
	 * segment's. 0 in version-1 segments, random and non-zero since. */
	uint32_t tag;
	uint16_t flags; /* SL_SEG_F_* */
	uint16_t version;
};

struct sl_group_hdr {
	uint32_t batch_bytes;	  /* bytes of batches after the 32-byte header */
	uint64_t seq;		  /* group sequence number, +1 per group */
	uint64_t durable_through; /* highest seq durable when this one was submitted */
	uint32_t tag;		  /* the tag of the segment it was written to */
};

/* One segment as the store and recovery track it. */
struct sl_seg {
	char name[SL_SEG_NAME_MAX];
	struct sl_seg_hdr hdr;
	uint64_t size;	   /* file size (preallocated) */
	uint64_t end;	   /* block-aligned end of the groups written so far */
	uint64_t written;  /* blocks below this are written and synced (prewrite) */
	int fd;		   /* write descriptor, -1 when closed */
	int file_slot;	   /* registered-file index, -1 when not registered */
	unsigned inflight; /* groups submitted to it and not yet completed */
};

void sl_seg_name(char out[SL_SEG_NAME_MAX], uint64_t base_lsn);
/* 1 and *base_lsn when `name` is a segment name, else 0. */
int sl_seg_parse_name(const char *name, uint64_t *base_lsn);
/* Spare files are named "%020llu.spare" after a counter; recovery never reads
 * them (they are not part of the log), the store reuses them. */
void sl_spare_name(char out[SL_SEG_NAME_MAX], uint64_t n);
int sl_spare_parse_name(const char *name, uint64_t *n);
/* A random non-zero tag different from `avoid` (the file's previous tag). */
uint32_t sl_seg_new_tag(uint32_t avoid);

void sl_seg_hdr_encode(const struct sl_seg_hdr *h, uint8_t out[SL_SEG_HDR_SIZE]);
/* 0, -ENODATA (all zero), -EBADMSG (not a segment header / bad CRC) or
 * -EPROTONOSUPPORT (unknown version or flags); sets the error message (no
 * file name). Version 1 decodes with tag 0 and no flags. */
int sl_seg_hdr_decode(const uint8_t *buf, struct sl_seg_hdr *h);

void sl_group_hdr_encode(const struct sl_group_hdr *g, uint8_t out[SL_GROUP_HDR_SIZE]);
/* 0, -ENODATA (all zero) or -EBADMSG (bad magic/CRC). */
int sl_group_hdr_decode(const uint8_t *buf, struct sl_group_hdr *g);

static inline uint64_t sl_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static inline uint64_t sl_align_down(uint64_t v, uint64_t a)
{
	return v / a * a;
}

/* Pass a synchronous operation's result through the fault hook (may be NULL). */
int sl_seg_fault(const struct sl_store_faults *f, enum sl_store_op op, const char *name,
		 uint64_t off, int res);

/* Create `name` in dirfd: O_EXCL, fallocate `size` bytes, write the header
 * block from `blockbuf` (block_bytes long, aligned for O_DIRECT), fdatasync,
 * fsync the directory. Returns the open descriptor (O_RDWR | `oflags`, e.g.
 * O_DIRECT) or -errno; on failure the file is removed again. *io_failed is set
 * when the failure was a write or fsync (the store must then fail), not an
 * open or fallocate (the caller may retry later, e.g. after freeing space). */
int sl_seg_create(int dirfd, const char *dir, const char *name, const struct sl_seg_hdr *h,
		  uint64_t size, int oflags, uint8_t *blockbuf, const struct sl_store_faults *f,
		  int *io_failed);

/* Zero [from, to) of an open, buffered descriptor durably: first the whole
 * blocks after `from` (fallocate ZERO_RANGE, falling back to writes), fdatasync,
 * then the partial block at `from`, fdatasync, so a crash leaves a prefix of
 * the old bytes followed by zeros, never zeros followed by old bytes. */
int sl_seg_zero(int fd, const char *name, uint64_t from, uint64_t to, uint32_t block);

/* Unlink `name` (no directory fsync: callers batch that with sl_dir_sync). */
int sl_seg_unlink(int dirfd, const char *dir, const char *name);
int sl_dir_sync(int dirfd, const char *dir);

#endif
