/* Read-only log reader; see include/shiplog/logread.h. The walk is the one
 * recovery makes (docs/disk-format.md): segments in LSN order, groups from
 * the block after the segment header, batches inside each group, chained.
 * A live log may show a write in flight: whenever the walk stops (the end
 * for now, or an invalid point) the reader goes back to just after the last
 * batch it returned, so a later call reads the finished write afresh. */
#include "shiplog/logread.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recovery.h"
#include "segment.h"
#include "shiplog/err.h"
#include "shiplog/le.h"

#define WIN_MIN (1u << 20) /* bytes read at once */

/* Tools read what any configuration wrote: only the format's own ceiling. */
static const struct sl_batch_limits any_limits = {
    .max_raw_bytes = SL_BATCH_RAW_MAX,
    .max_record_bytes = SL_BATCH_RAW_MAX,
};

/* Where the walk is: the segment, the group, the chain. Copied whole to
 * remember the point after the last batch returned. */
struct pos {
	char seg[SL_SEG_NAME_MAX];
	int fd;
	uint64_t size;
	struct sl_seg_hdr sh;
	uint64_t off;  /* the next group header, or (gend != 0) the next batch */
	uint64_t gend; /* end of the group being read, 0 between groups */
	uint64_t seq;  /* the sequence number the next group must carry */
	uint64_t next_lsn, next_position, last_epoch;
	uint32_t last_crc;
};

struct sl_logread {
	char dir[PATH_MAX];
	int dirfd;
	uint64_t first_lsn;
	uint8_t cluster_id[16];
	uint64_t stream_id;
	uint32_t node_id;
	uint64_t skip_below; /* seek: batches wholly before this LSN are skipped */
	struct pos cur, saved;
	char where_seg[SL_SEG_NAME_MAX];
	uint64_t where_off;
	/* a read window over cur.fd; bytes past the end of the file read as zeros */
	uint8_t *buf;
	size_t cap, len;
	uint64_t win_off;
};

static const uint8_t *win_get(struct sl_logread *r, uint64_t off, size_t len)
{
	size_t want = len > WIN_MIN ? len : WIN_MIN, got = 0;

	if (r->len && off >= r->win_off && off + len <= r->win_off + r->len)
		return r->buf + (off - r->win_off);
	if (want > r->cap) {
		uint8_t *nb = realloc(r->buf, want);

		if (nb == NULL) {
			sl_err_set(ENOMEM, "reading %s/%s: out of memory", r->dir, r->cur.seg);
			return NULL;
		}
		r->buf = nb;
		r->cap = want;
	}
	while (got < want && off + got < r->cur.size) {
		ssize_t n = pread(r->cur.fd, r->buf + got, want - got, (off_t)(off + got));

		if (n < 0) {
			sl_err_set(errno, "reading %s/%s at offset %" PRIu64 ": %s", r->dir,
				   r->cur.seg, off + got, strerror(errno));
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	memset(r->buf + got, 0, want - got);
	r->win_off = off;
	r->len = want;
	return r->buf;
}

static void win_drop(struct sl_logread *r)
{
	r->len = 0;
}

/* -EBADMSG naming the point; the reader then goes back (see below). */
static int bad(struct sl_logread *r, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct sl_logread *r, uint64_t off, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(r->where_seg, sizeof(r->where_seg), "%s", r->cur.seg);
	r->where_off = off;
	return sl_err_set(EBADMSG, "segment %s/%s at offset %" PRIu64 ": %s", r->dir, r->cur.seg,
			  off, why);
}

static void pos_close(struct pos *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* The walk stopped: back to the point after the last batch returned. */
static void go_back(struct sl_logread *r)
{
	if (r->cur.fd != r->saved.fd)
		pos_close(&r->cur);
	r->cur = r->saved;
	win_drop(r);
}

/* A batch was returned: this is the point to come back to. */
static void remember(struct sl_logread *r)
{
	if (r->saved.fd != r->cur.fd)
		pos_close(&r->saved);
	r->saved = r->cur;
}

/* Open segment `name` into *p and read its header. 1: done; 0: no such file
 * or a header not written yet (a segment being created); <0: error. */
static int open_segment(struct sl_logread *r, const char *name, struct pos *p)
{
	uint8_t hdr[SL_SEG_HDR_SIZE] = {0};
	uint64_t lsn;
	struct stat st;
	ssize_t n;
	int rc;

	memset(p, 0, sizeof(*p));
	snprintf(p->seg, sizeof(p->seg), "%s", name);
	p->fd = openat(r->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0)
		return errno == ENOENT
			   ? 0
			   : sl_err_set(errno, "opening %s/%s: %s", r->dir, name, strerror(errno));
	if (fstat(p->fd, &st) < 0 || (n = pread(p->fd, hdr, sizeof(hdr), 0)) < 0) {
		rc = sl_err_set(errno, "reading %s/%s: %s", r->dir, name, strerror(errno));
		goto err_close;
	}
	p->size = (uint64_t)st.st_size;
	if ((rc = sl_seg_hdr_decode(hdr, &p->sh)) == -ENODATA) {
		pos_close(p);
		return 0;
	}
	if (rc < 0) {
		rc = sl_err_wrap(rc == -EPROTONOSUPPORT ? rc : -EBADMSG, "segment %s/%s", r->dir,
				 name);
		goto err_close;
	}
	if (!sl_seg_parse_name(name, &lsn) || lsn != p->sh.base_lsn ||
	    p->size < p->sh.block_bytes || p->sh.block_bytes < SL_SEG_HDR_SIZE) {
		rc = sl_err_set(EBADMSG,
				"segment %s/%s: header says base lsn %" PRIu64 " and block %" PRIu32
				" in a file of %" PRIu64 " bytes",
				r->dir, name, p->sh.base_lsn, p->sh.block_bytes, p->size);
		goto err_close;
	}
	p->off = p->sh.block_bytes;
	p->seq = p->sh.base_seq;
	p->next_lsn = p->sh.base_lsn;
	p->next_position = p->sh.base_position;
	p->last_epoch = p->sh.base_epoch;
	p->last_crc = p->sh.prev_crc;
	return 1;

err_close:
	pos_close(p);
	return rc;
}

static int same_log(const struct sl_logread *r, const struct sl_seg_hdr *h)
{
	return memcmp(h->cluster_id, r->cluster_id, 16) == 0 && h->stream_id == r->stream_id &&
	       h->node_id == r->node_id;
}

/* The current segment's groups ended: move into the segment that continues
 * the chain. 1: moved; 0: none (yet). */
static int next_segment(struct sl_logread *r)
{
	char name[SL_SEG_NAME_MAX];
	struct pos p;
	int rc;

	sl_seg_name(name, r->cur.next_lsn);
	if (strcmp(name, r->cur.seg) == 0)
		return 0; /* an empty segment cannot be followed by one of its own LSN */
	if ((rc = open_segment(r, name, &p)) <= 0)
		return rc;
	if (!same_log(r, &p.sh) || p.sh.base_position != r->cur.next_position ||
	    p.sh.prev_crc != r->cur.last_crc || p.sh.base_epoch != r->cur.last_epoch ||
	    p.sh.base_seq != r->cur.seq) {
		pos_close(&p);
		return 0; /* not (yet) the continuation: this one may still grow */
	}
	if (r->cur.fd != r->saved.fd)
		pos_close(&r->cur);
	r->cur = p;
	win_drop(r);
	return 1;
}

/* Read and check the batch at cur.off inside the group ending at cur.gend. */
static int read_batch(struct sl_logread *r, struct sl_logread_batch *b)
{
	struct pos *c = &r->cur;
	struct sl_batch_hdr h;
	const uint8_t *p;
	size_t total;
	int rc;

	if (c->gend - c->off < SL_BATCH_HDR_SIZE)
		return bad(r, c->off, "partial batch header");
	if ((p = win_get(r, c->off, SL_BATCH_HDR_SIZE)) == NULL)
		return -EIO;
	if ((rc = sl_batch_decode_hdr(p, SL_BATCH_HDR_SIZE, &any_limits, &h)) < 0)
		return bad(r, c->off, "bad batch header: %s", sl_err_msg());
	total = (size_t)SL_BATCH_HDR_SIZE + h.stored_len;
	if (total > c->gend - c->off)
		return bad(r, c->off, "batch of %" PRIu32 " payload bytes overruns its group",
			   h.stored_len);
	if ((p = win_get(r, c->off, total)) == NULL)
		return -EIO;
	if ((rc = sl_batch_verify(p, total, &any_limits, &h)) < 0)
		return bad(r, c->off, "bad batch: %s", sl_err_msg());
	if (memcmp(h.cluster_id, r->cluster_id, 16) != 0 || h.stream_id != r->stream_id)
		return bad(r, c->off, "batch of another cluster or stream (stream %" PRIu64 ")",
			   h.stream_id);
	if (h.base_lsn != c->next_lsn || h.position != c->next_position ||
	    h.prev_crc != c->last_crc || h.epoch < c->last_epoch)
		return bad(r, c->off,
			   "chain broken: lsn %" PRIu64 "/%" PRIu64 " position %" PRIu64 "/%" PRIu64
			   " prev_crc %08" PRIx32 "/%08" PRIx32 " epoch %" PRIu64 "/>=%" PRIu64
			   " (found/expected)",
			   h.base_lsn, c->next_lsn, h.position, c->next_position, h.prev_crc,
			   c->last_crc, h.epoch, c->last_epoch);
	*b = (struct sl_logread_batch){
	    .h = h, .bytes = p, .len = total, .segment = c->seg, .offset = c->off};
	c->next_lsn = h.base_lsn + h.record_count;
	c->next_position = h.position + total;
	c->last_crc = h.hdr_crc;
	c->last_epoch = h.epoch;
	c->off += total;
	return 1;
}

/* Enter the group whose header is at cur.off. 1: entered; 0: this segment's
 * groups end here; <0: invalid. */
static int enter_group(struct sl_logread *r)
{
	struct pos *c = &r->cur;
	const int recycled = (c->sh.flags & SL_SEG_F_RECYCLED) != 0;
	struct sl_group_hdr g;
	const uint8_t *p;
	int rc;

	if (c->off + SL_GROUP_HDR_SIZE > c->size)
		return 0;
	if ((p = win_get(r, c->off, SL_GROUP_HDR_SIZE)) == NULL)
		return -EIO;
	rc = sl_group_hdr_decode(p, &g);
	/* Zeros end a new file's groups; in a recycled file so does anything
	 * that is not a group of its tag (its earlier life). */
	if (rc == -ENODATA || (recycled && (rc == -EBADMSG || (rc == 0 && g.tag != c->sh.tag))))
		return 0;
	if (rc < 0)
		return bad(r, c->off, "bad group header");
	if (g.tag != c->sh.tag)
		return bad(r, c->off, "group of tag %08" PRIx32 " in a segment of tag %08" PRIx32,
			   g.tag, c->sh.tag);
	if (g.seq != c->seq)
		return bad(r, c->off, "group sequence %" PRIu64 " where %" PRIu64 " was expected",
			   g.seq, c->seq);
	if ((uint64_t)SL_GROUP_HDR_SIZE + g.batch_bytes > c->size - c->off)
		return bad(r, c->off, "group length overruns the segment");
	c->seq = g.seq + 1;
	c->gend = c->off + SL_GROUP_HDR_SIZE + g.batch_bytes;
	c->off += SL_GROUP_HDR_SIZE;
	return 1;
}

static int skipped(const struct sl_logread *r, const struct sl_batch_hdr *h)
{
	return h->base_lsn + h->record_count <= r->skip_below &&
	       !(h->record_count == 0 && h->base_lsn >= r->skip_below);
}

/* One step of the walk: 1 a batch, 2 moved on (call again), 0 end, <0 error. */
static int step(struct sl_logread *r, struct sl_logread_batch *b)
{
	struct pos *c = &r->cur;
	const uint8_t *p;
	int rc;

	if (c->gend) {
		if (c->off < c->gend) {
			if (c->gend - c->off < 4)
				return read_batch(r, b); /* invalid: a partial header */
			if ((p = win_get(r, c->off, 4)) == NULL)
				return -EIO;
			if (sl_le32_get(p) != 0) /* zero: a truncation ended the group */
				return read_batch(r, b);
		}
		c->off = sl_align_up(c->off, c->sh.block_bytes);
		c->gend = 0;
		return 2;
	}
	if ((rc = enter_group(r)) != 0)
		return rc < 0 ? rc : 2;
	rc = next_segment(r);
	return rc <= 0 ? rc : 2;
}

int sl_logread_next(struct sl_logread *r, struct sl_logread_batch *b)
{
	r->where_seg[0] = '\0';
	for (;;) {
		int rc = step(r, b);

		if (rc == 2)
			continue;
		if (rc <= 0) {
			go_back(r);
			return rc;
		}
		/* b points into the window, which stays as it is until the
		 * next call (remember() does not read). */
		remember(r);
		if (!skipped(r, &b->h))
			return 1;
	}
}

const char *sl_logread_where(const struct sl_logread *r, uint64_t *offset)
{
	if (r->where_seg[0]) {
		*offset = r->where_off;
		return r->where_seg;
	}
	*offset = r->cur.off;
	return r->cur.seg;
}

/* The segment to start from: the last whose base LSN is <= lsn (0: the
 * oldest). Its name into `name`; -ERANGE when lsn precedes them all. */
static int find_segment(struct sl_logread *r, uint64_t lsn, char name[SL_SEG_NAME_MAX],
			uint64_t *oldest)
{
	uint64_t best = 0, low = UINT64_MAX, base;
	int found = 0, fd, rc = 0;
	struct dirent *de;
	DIR *d;

	if ((fd = openat(r->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (d = fdopendir(fd)) == NULL) {
		rc = sl_err_set(errno, "listing %s: %s", r->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (!sl_seg_parse_name(de->d_name, &base))
			continue;
		low = base < low ? base : low;
		if ((lsn == 0 && base == low) || (base <= lsn && (!found || base > best))) {
			best = base;
			found = 1;
		}
	}
	closedir(d);
	*oldest = low;
	if (low == UINT64_MAX)
		return sl_err_set(ENOENT, "%s holds no log segment", r->dir);
	if (lsn == 0)
		best = low;
	else if (!found)
		return sl_err_set(
		    ERANGE, "lsn %" PRIu64 " is not held in %s: the log starts at lsn %" PRIu64,
		    lsn, r->dir, low);
	sl_seg_name(name, best);
	return 0;
}

/* Start at segment `name`: its header gives the chain state. */
static int start_at(struct sl_logread *r, const char *name)
{
	struct pos p;
	int rc = open_segment(r, name, &p);

	if (rc == 0)
		return sl_err_set(ENOENT, "%s/%s: no segment header (being created?)", r->dir,
				  name);
	if (rc < 0)
		return rc;
	if (!same_log(r, &p.sh)) {
		pos_close(&p);
		return sl_err_set(EBADMSG, "segment %s/%s belongs to another log", r->dir, name);
	}
	pos_close(&r->cur);
	pos_close(&r->saved);
	r->cur = r->saved = p;
	win_drop(r);
	r->where_seg[0] = '\0';
	return 0;
}

int sl_logread_seek(struct sl_logread *r, uint64_t lsn)
{
	char name[SL_SEG_NAME_MAX];
	uint64_t oldest;
	int rc;

	if ((rc = find_segment(r, lsn, name, &oldest)) < 0 || (rc = start_at(r, name)) < 0)
		return rc;
	r->skip_below = lsn;
	return 0;
}

int sl_logread_open(struct sl_logread **out, const char *dir)
{
	char name[SL_SEG_NAME_MAX];
	struct sl_logread *r;
	struct pos p;
	int rc;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return sl_err_set(ENOMEM, "out of memory");
	r->cur.fd = r->saved.fd = -1;
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	r->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0) {
		rc = sl_err_set(errno, "log directory %s: %s", dir, strerror(errno));
		goto err_free;
	}
	if ((rc = find_segment(r, 0, name, &r->first_lsn)) < 0)
		goto err_free;
	if ((rc = open_segment(r, name, &p)) <= 0) {
		if (rc == 0)
			rc = sl_err_set(ENOENT, "%s/%s: no segment header (being created?)", dir,
					name);
		goto err_free;
	}
	memcpy(r->cluster_id, p.sh.cluster_id, 16);
	r->stream_id = p.sh.stream_id;
	r->node_id = p.sh.node_id;
	r->cur = r->saved = p;
	*out = r;
	return 0;

err_free:
	sl_logread_close(r);
	return rc;
}

void sl_logread_close(struct sl_logread *r)
{
	if (!r)
		return;
	if (r->saved.fd != r->cur.fd)
		pos_close(&r->saved);
	pos_close(&r->cur);
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r->buf);
	free(r);
}

uint64_t sl_logread_first_lsn(const struct sl_logread *r)
{
	return r->first_lsn;
}

void sl_logread_identity(const struct sl_logread *r, uint8_t cluster_id[16], uint64_t *stream_id,
			 uint32_t *node_id)
{
	memcpy(cluster_id, r->cluster_id, 16);
	*stream_id = r->stream_id;
	*node_id = r->node_id;
}

int sl_logread_check(const char *dir, struct sl_logread_check *out)
{
	struct sl_recover_out ro;
	struct sl_index idx;
	struct sl_recover_in in = {.dir = dir, .lim = &any_limits, .readonly = 1};
	int rc;

	memset(out, 0, sizeof(*out));
	in.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (in.dirfd < 0)
		return sl_err_set(errno, "log directory %s: %s", dir, strerror(errno));
	if ((rc = sl_index_init(&idx, 64, 1u << 20)) < 0) {
		close(in.dirfd);
		return rc;
	}
	rc = sl_recover(&in, &idx, &ro);
	snprintf(out->stop_segment, sizeof(out->stop_segment), "%s", ro.stop_segment);
	out->stop_offset = ro.stop_offset;
	snprintf(out->stop_why, sizeof(out->stop_why), "%s", ro.stop_why);
	if (rc == 0 && ro.nsegs == 0)
		rc = sl_err_set(ENOENT, "%s holds no log segment", dir);
	if (rc == 0) {
		out->segments = ro.nsegs;
		out->first_lsn = ro.segs[0]->hdr.base_lsn;
		out->next_lsn = ro.next_lsn;
		out->next_position = ro.next_position;
		out->last_epoch = ro.last_epoch;
		out->torn_bytes = ro.torn_bytes;
		out->unborn = (int)ro.unborn;
		sl_recover_free(&ro);
	}
	sl_index_free(&idx);
	close(in.dirfd);
	return rc;
}
