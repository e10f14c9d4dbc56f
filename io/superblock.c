/* The two-copy superblock; see superblock.h and docs/disk-format.md. */
#include "superblock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/le.h"

enum {
	SB_MAGIC = 0,
	SB_VERSION = 4,
	SB_SEQ = 8,
	SB_CLUSTER = 16,
	SB_STREAM = 32,
	SB_NODE = 40,
	SB_VOTED_FOR = 44,
	SB_EPOCH = 48,
	SB_VOTED_EPOCH = 56,
	SB_N_EPOCHS = 64,
	SB_EPOCHS = 72, /* SL_EPOCH_MAP_MAX x {epoch, start_position, start_lsn} */
	SB_ENTRY = 24,
	SB_CRC = SL_SB_COPY_SIZE - 4,
};

_Static_assert(SB_EPOCHS + SL_EPOCH_MAP_MAX * SB_ENTRY <= SB_CRC, "epoch map fits a copy");

void sl_sb_encode(const struct sl_sb *sb, uint8_t out[SL_SB_COPY_SIZE])
{
	const struct sl_store_meta *m = &sb->meta;

	assert(m->n_epochs <= SL_EPOCH_MAP_MAX);
	memset(out, 0, SL_SB_COPY_SIZE);
	sl_le32_put(out + SB_MAGIC, SL_SB_MAGIC);
	sl_le16_put(out + SB_VERSION, SL_SB_VERSION);
	sl_le64_put(out + SB_SEQ, sb->seq);
	memcpy(out + SB_CLUSTER, sb->cluster_id, 16);
	sl_le64_put(out + SB_STREAM, sb->stream_id);
	sl_le32_put(out + SB_NODE, sb->node_id);
	sl_le32_put(out + SB_VOTED_FOR, m->voted_for);
	sl_le64_put(out + SB_EPOCH, m->current_epoch);
	sl_le64_put(out + SB_VOTED_EPOCH, m->voted_epoch);
	sl_le32_put(out + SB_N_EPOCHS, m->n_epochs);
	for (uint32_t i = 0; i < m->n_epochs && i < SL_EPOCH_MAP_MAX; i++) {
		uint8_t *p = out + SB_EPOCHS + i * SB_ENTRY;

		sl_le64_put(p, m->epochs[i].epoch);
		sl_le64_put(p + 8, m->epochs[i].start_position);
		sl_le64_put(p + 16, m->epochs[i].start_lsn);
	}
	sl_le32_put(out + SB_CRC, sl_crc32c(0, out, SB_CRC));
}

int sl_sb_decode(const uint8_t *buf, struct sl_sb *sb)
{
	struct sl_store_meta *m = &sb->meta;
	uint16_t version;
	int zero = 1;

	for (size_t i = 0; i < SL_SB_COPY_SIZE && zero; i++)
		zero = buf[i] == 0;
	if (zero)
		return -ENODATA;
	if (sl_le32_get(buf + SB_MAGIC) != SL_SB_MAGIC)
		return sl_err_set(EBADMSG, "not a shiplog superblock (bad magic)");
	if (sl_le32_get(buf + SB_CRC) != sl_crc32c(0, buf, SB_CRC))
		return sl_err_set(EBADMSG, "superblock crc mismatch");
	version = sl_le16_get(buf + SB_VERSION);
	if (version != SL_SB_VERSION)
		return sl_err_set(EPROTONOSUPPORT, "superblock version %u not supported", version);
	memset(sb, 0, sizeof(*sb));
	sb->seq = sl_le64_get(buf + SB_SEQ);
	memcpy(sb->cluster_id, buf + SB_CLUSTER, 16);
	sb->stream_id = sl_le64_get(buf + SB_STREAM);
	sb->node_id = sl_le32_get(buf + SB_NODE);
	m->voted_for = sl_le32_get(buf + SB_VOTED_FOR);
	m->current_epoch = sl_le64_get(buf + SB_EPOCH);
	m->voted_epoch = sl_le64_get(buf + SB_VOTED_EPOCH);
	m->n_epochs = sl_le32_get(buf + SB_N_EPOCHS);
	if (m->n_epochs > SL_EPOCH_MAP_MAX)
		return sl_err_set(EBADMSG, "superblock epoch map has %" PRIu32 " entries (max %d)",
				  m->n_epochs, SL_EPOCH_MAP_MAX);
	for (uint32_t i = 0; i < m->n_epochs; i++) {
		const uint8_t *p = buf + SB_EPOCHS + i * SB_ENTRY;

		m->epochs[i].epoch = sl_le64_get(p);
		m->epochs[i].start_position = sl_le64_get(p + 8);
		m->epochs[i].start_lsn = sl_le64_get(p + 16);
	}
	return 0;
}

/* Write copy `copy` of `sb` and fdatasync. */
static int write_copy(int fd, const char *dir, const struct sl_sb *sb, int copy)
{
	uint8_t buf[SL_SB_COPY_SIZE];
	ssize_t n;

	sl_sb_encode(sb, buf);
	n = pwrite(fd, buf, sizeof(buf), (off_t)copy * SL_SB_COPY_SIZE);
	if (n != (ssize_t)sizeof(buf))
		return sl_err_set(n < 0 ? errno : EIO, "writing %s/%s copy %d: %s", dir, SL_SB_FILE,
				  copy, n < 0 ? strerror(errno) : "short write");
	if (fdatasync(fd) < 0)
		return sl_err_set(errno, "fdatasync of %s/%s: %s", dir, SL_SB_FILE,
				  strerror(errno));
	return 0;
}

int sl_sb_create(int dirfd, const char *dir, struct sl_sb *sb)
{
	int fd, rc;

	fd = openat(dirfd, SL_SB_FILE, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return sl_err_set(errno, "creating %s/%s: %s", dir, SL_SB_FILE, strerror(errno));
	/* Both copies exist from the start so the file never grows later. */
	if (ftruncate(fd, 2 * SL_SB_COPY_SIZE) < 0) {
		rc = sl_err_set(errno, "sizing %s/%s: %s", dir, SL_SB_FILE, strerror(errno));
		goto err_unlink;
	}
	sb->seq = 1;
	sb->copy = 1;
	if ((rc = write_copy(fd, dir, sb, sb->copy)) < 0)
		goto err_unlink;
	close(fd);
	if (fsync(dirfd) < 0)
		return sl_err_set(errno, "fsync of directory %s: %s", dir, strerror(errno));
	return 0;

err_unlink:
	close(fd);
	unlinkat(dirfd, SL_SB_FILE, 0);
	return rc;
}

int sl_sb_read(int dirfd, const char *dir, struct sl_sb *sb)
{
	uint8_t buf[2 * SL_SB_COPY_SIZE];
	struct sl_sb c[2];
	int rc[2], fd;
	ssize_t n;

	fd = openat(dirfd, SL_SB_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sl_err_set(errno, "opening %s/%s: %s", dir, SL_SB_FILE, strerror(errno));
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return sl_err_set(errno, "reading %s/%s: %s", dir, SL_SB_FILE, strerror(errno));
	memset(buf + n, 0, sizeof(buf) - (size_t)n); /* a short file reads as zeros */
	for (int i = 0; i < 2; i++) {
		rc[i] = sl_sb_decode(buf + i * SL_SB_COPY_SIZE, &c[i]);
		c[i].copy = i;
	}
	if (rc[0] < 0 && rc[1] < 0)
		return sl_err_set(EBADMSG, "%s/%s: no valid copy (copy 0: %s, copy 1: %s)", dir,
				  SL_SB_FILE, rc[0] == -ENODATA ? "empty" : strerror(-rc[0]),
				  rc[1] == -ENODATA ? "empty" : strerror(-rc[1]));
	if (rc[1] < 0 || (rc[0] == 0 && c[0].seq > c[1].seq))
		*sb = c[0];
	else
		*sb = c[1];
	return 0;
}

int sl_sb_write(int dirfd, const char *dir, struct sl_sb *sb)
{
	struct sl_sb next = *sb;
	int fd, rc;

	if (sb->meta.n_epochs > SL_EPOCH_MAP_MAX)
		return sl_err_set(EINVAL, "epoch map of %" PRIu32 " entries exceeds %d",
				  sb->meta.n_epochs, SL_EPOCH_MAP_MAX);
	fd = openat(dirfd, SL_SB_FILE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return sl_err_set(errno, "opening %s/%s: %s", dir, SL_SB_FILE, strerror(errno));
	next.seq = sb->seq + 1;
	next.copy = 1 - sb->copy;
	rc = write_copy(fd, dir, &next, next.copy);
	close(fd);
	if (rc == 0)
		*sb = next;
	return rc;
}
