/* Segment files and their headers; see segment.h and docs/disk-format.md. */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/le.h"

/* Segment header offsets. */
enum {
	SH_MAGIC = 0,
	SH_VERSION = 4,
	SH_FLAGS = 6,
	SH_CLUSTER = 8,
	SH_STREAM = 24,
	SH_NODE = 32,
	SH_BLOCK = 36,
	SH_BASE_LSN = 40,
	SH_BASE_POS = 48,
	SH_BASE_EPOCH = 56,
	SH_BASE_SEQ = 64,
	SH_PREV_CRC = 72,
	SH_TAG = 76,
	SH_CRC = SL_SEG_HDR_SIZE - 4,
};

/* Group header offsets. */
enum {
	GH_MAGIC = 0,
	GH_BYTES = 4,
	GH_SEQ = 8,
	GH_DURABLE = 16,
	GH_TAG = 24,
	GH_CRC = 28,
};

void sl_seg_name(char out[SL_SEG_NAME_MAX], uint64_t base_lsn)
{
	snprintf(out, SL_SEG_NAME_MAX, "%020" PRIu64 ".seg", base_lsn);
}

int sl_seg_parse_name(const char *name, uint64_t *base_lsn)
{
	uint64_t v = 0;

	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + 20, ".seg") != 0)
		return 0;
	*base_lsn = v;
	return 1;
}

void sl_spare_name(char out[SL_SEG_NAME_MAX], uint64_t n)
{
	snprintf(out, SL_SEG_NAME_MAX, "%020" PRIu64 SL_SPARE_SUFFIX, n);
}

int sl_spare_parse_name(const char *name, uint64_t *n)
{
	uint64_t v = 0;

	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + 20, SL_SPARE_SUFFIX) != 0)
		return 0;
	*n = v;
	return 1;
}

uint32_t sl_seg_new_tag(uint32_t avoid)
{
	static uint64_t x;
	uint32_t t = 0;

	/* The tag needs to differ from the tags of the file's earlier lives, not
	 * to be secret: getrandom, else a clock-seeded xorshift. */
	while (t == 0 || t == avoid) {
		if (getrandom(&t, sizeof(t), GRND_NONBLOCK) != (ssize_t)sizeof(t)) {
			struct timespec ts;

			if (x == 0) {
				clock_gettime(CLOCK_REALTIME, &ts);
				x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
				    (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
				x |= 1;
			}
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			t = (uint32_t)(x >> 16);
		}
	}
	return t;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

void sl_seg_hdr_encode(const struct sl_seg_hdr *h, uint8_t out[SL_SEG_HDR_SIZE])
{
	memset(out, 0, SL_SEG_HDR_SIZE);
	sl_le32_put(out + SH_MAGIC, SL_SEG_MAGIC);
	sl_le16_put(out + SH_VERSION, SL_SEG_VERSION);
	sl_le16_put(out + SH_FLAGS, h->flags);
	memcpy(out + SH_CLUSTER, h->cluster_id, 16);
	sl_le64_put(out + SH_STREAM, h->stream_id);
	sl_le32_put(out + SH_NODE, h->node_id);
	sl_le32_put(out + SH_BLOCK, h->block_bytes);
	sl_le64_put(out + SH_BASE_LSN, h->base_lsn);
	sl_le64_put(out + SH_BASE_POS, h->base_position);
	sl_le64_put(out + SH_BASE_EPOCH, h->base_epoch);
	sl_le64_put(out + SH_BASE_SEQ, h->base_seq);
	sl_le32_put(out + SH_PREV_CRC, h->prev_crc);
	sl_le32_put(out + SH_TAG, h->tag);
	sl_le32_put(out + SH_CRC, sl_crc32c(0, out, SH_CRC));
}

int sl_seg_hdr_decode(const uint8_t *buf, struct sl_seg_hdr *h)
{
	uint16_t version, flags;
	uint32_t block;

	if (all_zero(buf, SL_SEG_HDR_SIZE))
		return sl_err_set(ENODATA, "segment header is all zero");
	if (sl_le32_get(buf + SH_MAGIC) != SL_SEG_MAGIC)
		return sl_err_set(EBADMSG, "not a shiplog segment (bad magic 0x%08" PRIx32 ")",
				  sl_le32_get(buf + SH_MAGIC));
	if (sl_le32_get(buf + SH_CRC) != sl_crc32c(0, buf, SH_CRC))
		return sl_err_set(EBADMSG, "segment header crc mismatch");
	version = sl_le16_get(buf + SH_VERSION);
	if (version != 1 && version != SL_SEG_VERSION)
		return sl_err_set(EPROTONOSUPPORT, "segment format version %u not supported",
				  version);
	/* Version 1 wrote zeros here: no tag, no flags. */
	flags = sl_le16_get(buf + SH_FLAGS);
	if (version == 1 ? flags != 0 || sl_le32_get(buf + SH_TAG) != 0
			 : (flags & ~SL_SEG_F_RECYCLED) != 0)
		return sl_err_set(EPROTONOSUPPORT,
				  "segment format version %u: unknown flags 0x%04x or tag", version,
				  flags);
	block = sl_le32_get(buf + SH_BLOCK);
	if (block < 512 || (block & (block - 1)) != 0)
		return sl_err_set(EBADMSG, "segment header block size %" PRIu32 " invalid", block);
	memcpy(h->cluster_id, buf + SH_CLUSTER, 16);
	h->stream_id = sl_le64_get(buf + SH_STREAM);
	h->node_id = sl_le32_get(buf + SH_NODE);
	h->block_bytes = block;
	h->base_lsn = sl_le64_get(buf + SH_BASE_LSN);
	h->base_position = sl_le64_get(buf + SH_BASE_POS);
	h->base_epoch = sl_le64_get(buf + SH_BASE_EPOCH);
	h->base_seq = sl_le64_get(buf + SH_BASE_SEQ);
	h->prev_crc = sl_le32_get(buf + SH_PREV_CRC);
	h->tag = sl_le32_get(buf + SH_TAG);
	h->flags = flags;
	h->version = version;
	return 0;
}

void sl_group_hdr_encode(const struct sl_group_hdr *g, uint8_t out[SL_GROUP_HDR_SIZE])
{
	sl_le32_put(out + GH_MAGIC, SL_GROUP_MAGIC);
	sl_le32_put(out + GH_BYTES, g->batch_bytes);
	sl_le64_put(out + GH_SEQ, g->seq);
	sl_le64_put(out + GH_DURABLE, g->durable_through);
	sl_le32_put(out + GH_TAG, g->tag);
	sl_le32_put(out + GH_CRC, sl_crc32c(0, out, GH_CRC));
}

int sl_group_hdr_decode(const uint8_t *buf, struct sl_group_hdr *g)
{
	if (all_zero(buf, SL_GROUP_HDR_SIZE))
		return -ENODATA;
	if (sl_le32_get(buf + GH_MAGIC) != SL_GROUP_MAGIC ||
	    sl_le32_get(buf + GH_CRC) != sl_crc32c(0, buf, GH_CRC))
		return -EBADMSG;
	g->batch_bytes = sl_le32_get(buf + GH_BYTES);
	g->seq = sl_le64_get(buf + GH_SEQ);
	g->durable_through = sl_le64_get(buf + GH_DURABLE);
	g->tag = sl_le32_get(buf + GH_TAG);
	return 0;
}

int sl_seg_fault(const struct sl_store_faults *f, enum sl_store_op op, const char *name,
		 uint64_t off, int res)
{
	if (f == NULL || f->on_complete == NULL)
		return res;
	return f->on_complete(f->ctx, op, name, off, res);
}

int sl_seg_create(int dirfd, const char *dir, const char *name, const struct sl_seg_hdr *h,
		  uint64_t size, int oflags, uint8_t *blockbuf, const struct sl_store_faults *f,
		  int *io_failed)
{
	int fd, rc;
	ssize_t n;

	*io_failed = 0;
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | oflags, 0644);
	rc = sl_seg_fault(f, SL_STORE_OP_OPEN, name, 0, fd < 0 ? -errno : 0);
	if (rc < 0) {
		if (fd >= 0) {
			close(fd);
			unlinkat(dirfd, name, 0);
		}
		return sl_err_set(-rc, "creating segment %s/%s: %s", dir, name, strerror(-rc));
	}
	rc = fallocate(fd, 0, 0, (off_t)size) < 0 ? -errno : 0;
	rc = sl_seg_fault(f, SL_STORE_OP_FALLOCATE, name, 0, rc);
	if (rc < 0) {
		sl_err_set(-rc, "preallocating %" PRIu64 " bytes for segment %s/%s: %s", size, dir,
			   name, strerror(-rc));
		goto err_unlink;
	}
	memset(blockbuf, 0, h->block_bytes);
	sl_seg_hdr_encode(h, blockbuf);
	n = pwrite(fd, blockbuf, h->block_bytes, 0);
	rc = n < 0 ? -errno : n != (ssize_t)h->block_bytes ? -EIO : 0;
	rc = sl_seg_fault(f, SL_STORE_OP_WRITE, name, 0, rc);
	if (rc < 0) {
		*io_failed = 1;
		sl_err_set(-rc, "writing header of segment %s/%s: %s", dir, name, strerror(-rc));
		goto err_unlink;
	}
	rc = fdatasync(fd) < 0 ? -errno : 0;
	rc = sl_seg_fault(f, SL_STORE_OP_FSYNC, name, 0, rc);
	if (rc < 0) {
		*io_failed = 1;
		sl_err_set(-rc, "fdatasync of new segment %s/%s: %s", dir, name, strerror(-rc));
		goto err_unlink;
	}
	rc = sl_dir_sync(dirfd, dir);
	if (rc < 0) {
		*io_failed = 1;
		sl_err_wrap(rc, "creating segment %s", name);
		goto err_unlink;
	}
	return fd;

err_unlink:
	close(fd);
	unlinkat(dirfd, name, 0);
	fsync(dirfd);
	return rc;
}

static int write_zeros(int fd, const char *name, uint64_t from, uint64_t to)
{
	static const uint8_t zeros[65536];

	while (from < to) {
		size_t len = to - from < sizeof(zeros) ? (size_t)(to - from) : sizeof(zeros);
		ssize_t n = pwrite(fd, zeros, len, (off_t)from);

		if (n <= 0)
			return sl_err_set(n < 0 ? errno : EIO,
					  "zeroing segment %s at offset %" PRIu64 ": %s", name,
					  from, strerror(n < 0 ? errno : EIO));
		from += (uint64_t)n;
	}
	return 0;
}

static int datasync(int fd, const char *name)
{
	if (fdatasync(fd) < 0)
		return sl_err_set(errno, "fdatasync of segment %s: %s", name, strerror(errno));
	return 0;
}

int sl_seg_zero(int fd, const char *name, uint64_t from, uint64_t to, uint32_t block)
{
	uint64_t mid = sl_align_up(from, block);
	int rc;

	if (mid > to)
		mid = to;
	if (mid < to) {
		uint64_t end = sl_align_up(to, block);

		/* ZERO_RANGE where supported; tmpfs and others only punch holes,
		 * which read as zeros too. */
		if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)mid,
			      (off_t)(end - mid)) < 0 &&
		    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)mid,
			      (off_t)(end - mid)) < 0 &&
		    (rc = write_zeros(fd, name, mid, to)) < 0)
			return rc;
		if ((rc = datasync(fd, name)) < 0)
			return rc;
	}
	if (from < mid) {
		if ((rc = write_zeros(fd, name, from, mid)) < 0)
			return rc;
		if ((rc = datasync(fd, name)) < 0)
			return rc;
	}
	return 0;
}

int sl_seg_unlink(int dirfd, const char *dir, const char *name)
{
	if (unlinkat(dirfd, name, 0) < 0)
		return sl_err_set(errno, "removing segment %s/%s: %s", dir, name, strerror(errno));
	return 0;
}

int sl_dir_sync(int dirfd, const char *dir)
{
	if (fsync(dirfd) < 0)
		return sl_err_set(errno, "fsync of directory %s: %s", dir, strerror(errno));
	return 0;
}
