/* Log recovery on open; see recovery.h and docs/disk-format.md. */
#include "recovery.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shiplog/err.h"
#include "shiplog/le.h"
#include "shiplog/log.h"

#define WIN_MIN (1u << 20) /* bytes read at once while scanning */

/* A read window over one segment file; bytes past the end of the file read
 * as zeros, like the unwritten tail of a preallocated segment. */
struct win {
	int fd;
	const char *dir;
	const struct sl_seg *seg;
	uint8_t *buf;
	size_t cap;
	uint64_t off;
	size_t len;
};

static const uint8_t *win_get(struct win *w, uint64_t off, size_t len)
{
	size_t want = len > WIN_MIN ? len : WIN_MIN, got = 0;

	if (off >= w->off && off + len <= w->off + w->len)
		return w->buf + (off - w->off);
	if (want > w->cap) {
		uint8_t *nb = realloc(w->buf, want);

		if (nb == NULL) {
			sl_err_set(ENOMEM, "reading segment %s: out of memory", w->seg->name);
			return NULL;
		}
		w->buf = nb;
		w->cap = want;
	}
	while (got < want && off + got < w->seg->size) {
		ssize_t n = pread(w->fd, w->buf + got, want - got, (off_t)(off + got));

		if (n < 0) {
			sl_err_set(errno, "reading segment %s/%s at offset %" PRIu64 ": %s", w->dir,
				   w->seg->name, off + got, strerror(errno));
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	memset(w->buf + got, 0, want - got);
	w->off = off;
	w->len = want;
	return w->buf;
}

static int win_open(struct win *w, const char *dir, int dirfd, const struct sl_seg *seg)
{
	w->seg = seg;
	w->dir = dir;
	w->off = 0;
	w->len = 0;
	w->fd = openat(dirfd, seg->name, O_RDONLY | O_CLOEXEC);
	if (w->fd < 0)
		return sl_err_set(errno, "opening segment %s/%s: %s", dir, seg->name,
				  strerror(errno));
	return 0;
}

static void win_close(struct win *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* Where the valid log stops, and which group it stops in. */
struct stop {
	uint32_t seg;	   /* index of the segment holding X */
	uint64_t x;	   /* X: first byte not part of the valid log */
	uint64_t gend;	   /* end of the group written at or around X (>= x) */
	uint64_t bad;	   /* the invalid header or batch (>= x) that stopped the scan */
	uint64_t s;	   /* seq of the group containing X (or the next expected) */
	uint64_t next_seq; /* seq the next group written at X will carry */
	char why[160];
};

struct scan {
	const struct sl_recover_in *in;
	struct sl_index *idx;
	struct sl_seg **segs;
	uint32_t n;
	uint64_t next_lsn, next_position, last_epoch, expected_seq;
	uint32_t last_crc;
	struct sl_epoch_map *epochs;
	struct stop stop;
	/* Holes (in->holes): where they go, up to which position they are
	 * taken, and the end of the last valid batch (holes past it are a torn
	 * tail). */
	struct sl_recover_out *out;
	uint64_t hole_limit, valid_end;
	uint64_t group_seq;			 /* of the group being scanned */
	uint64_t vouched;			 /* highest durable_through of the groups scanned */
	uint64_t hole_seq[SL_RECOVER_HOLES_MAX]; /* each hole's group */
};

static void set_stop(struct scan *sc, uint32_t seg, uint64_t x, uint64_t s, uint64_t next_seq,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void set_stop(struct scan *sc, uint32_t seg, uint64_t x, uint64_t s, uint64_t next_seq,
		     const char *fmt, ...)
{
	char why[sizeof(sc->stop.why)];
	va_list ap;

	sc->stop.seg = seg;
	sc->stop.x = sc->stop.bad = sc->stop.gend = x;
	sc->stop.s = s;
	sc->stop.next_seq = next_seq;
	va_start(ap, fmt); /* fmt's arguments may point into stop.why */
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	memcpy(sc->stop.why, why, sizeof(why));
}

static int chains(const struct scan *sc, const struct sl_batch_hdr *h)
{
	return h->base_lsn == sc->next_lsn && h->position == sc->next_position &&
	       h->prev_crc == sc->last_crc && h->epoch >= sc->last_epoch &&
	       memcmp(h->cluster_id, sc->in->cluster_id, 16) == 0 &&
	       h->stream_id == sc->in->stream_id;
}

/* The batch (header h, total bytes) is the log's next one. */
static void chain_add(struct scan *sc, const struct sl_batch_hdr *h, uint32_t total)
{
	const struct sl_recover_in *in = sc->in;

	if (in->tree && !sl_merkle_add(in->tree, sl_merkle_leaf(h->position, total, h->hdr_crc)))
		in->leaf_pos[in->tree->n - 1] = h->position;
	if (sc->epochs)
		sl_epoch_map_note(sc->epochs, h->epoch, h->position, h->base_lsn, h->prev_crc);
	sc->next_lsn = h->base_lsn + h->record_count;
	sc->next_position = h->position + total;
	sc->last_crc = h->hdr_crc;
	sc->last_epoch = h->epoch;
}

/* A batch whose header verifies and chains but whose payload does not, in
 * a sealed segment (not the last): with in->holes, it is kept as a hole to
 * be repaired from a peer, and the chain goes on from its header (whose CRC
 * covers the payload CRC: its leaf is the one appended). Whether valid
 * batches follow it is settled after the scan (sl_recover). 1: kept, 0: not
 * a hole (the scan stops as for any invalid batch). */
static int hole(struct scan *sc, const struct win *w, uint64_t q, const struct sl_batch_hdr *h,
		uint32_t total)
{
	struct sl_recover_out *out = sc->out;
	struct sl_recover_hole *x;

	if (!sc->in->holes || w->seg == sc->segs[sc->n - 1] || !chains(sc, h) ||
	    h->position >= sc->hole_limit || out->nholes == SL_RECOVER_HOLES_MAX)
		return 0;
	x = &out->holes[out->nholes++];
	*x = (struct sl_recover_hole){.position = h->position,
				      .len = total,
				      .hdr_crc = h->hdr_crc,
				      .base_lsn = h->base_lsn,
				      .records = h->record_count,
				      .offset = q};
	sc->hole_seq[out->nholes - 1] = sc->group_seq;
	snprintf(x->segment, sizeof(x->segment), "%s", w->seg->name);
	snprintf(x->why, sizeof(x->why), "%s", sc->stop.why);
	chain_add(sc, h, total);
	return 1;
}

/* Check one batch at q (inside a group ending at gend) against the chain.
 * 1: valid (or a hole) and appended to the chain; 0: invalid (sc->stop.why
 * says why); <0: I/O error. */
static int scan_batch(struct scan *sc, struct win *w, uint64_t q, uint64_t gend, uint32_t *total)
{
	const struct sl_recover_in *in = sc->in;
	struct sl_batch_hdr h, hd;
	const uint8_t *p;
	int rc;

	if (gend - q < SL_BATCH_HDR_SIZE) {
		snprintf(sc->stop.why, sizeof(sc->stop.why), "partial batch header");
		return 0;
	}
	if ((p = win_get(w, q, SL_BATCH_HDR_SIZE)) == NULL)
		return -EIO;
	sl_err_clear();
	if ((rc = sl_batch_decode_hdr(p, SL_BATCH_HDR_SIZE, in->lim, &h)) < 0) {
		snprintf(sc->stop.why, sizeof(sc->stop.why), "bad batch header: %s",
			 sl_err_msg()[0] ? sl_err_msg() : strerror(-rc));
		return 0;
	}
	if ((uint64_t)SL_BATCH_HDR_SIZE + h.stored_len > gend - q) {
		snprintf(sc->stop.why, sizeof(sc->stop.why),
			 "batch of %" PRIu32 " payload bytes overruns its group", h.stored_len);
		return 0;
	}
	*total = SL_BATCH_HDR_SIZE + h.stored_len;
	if ((p = win_get(w, q, *total)) == NULL)
		return -EIO;
	hd = h;
	sl_err_clear();
	if ((rc = sl_batch_verify(p, *total, in->lim, &h)) < 0) {
		snprintf(sc->stop.why, sizeof(sc->stop.why), "bad batch: %s",
			 sl_err_msg()[0] ? sl_err_msg() : strerror(-rc));
		return hole(sc, w, q, &hd, *total);
	}
	if (memcmp(h.cluster_id, in->cluster_id, 16) != 0 || h.stream_id != in->stream_id) {
		snprintf(sc->stop.why, sizeof(sc->stop.why),
			 "batch of another cluster or stream (stream %" PRIu64 ")", h.stream_id);
		return 0;
	}
	if (!chains(sc, &h)) {
		snprintf(sc->stop.why, sizeof(sc->stop.why),
			 "chain broken: lsn %" PRIu64 "/%" PRIu64 " position %" PRIu64 "/%" PRIu64
			 " prev_crc %08" PRIx32 "/%08" PRIx32 " epoch %" PRIu64 "/>=%" PRIu64
			 " (found/expected)",
			 h.base_lsn, sc->next_lsn, h.position, sc->next_position, h.prev_crc,
			 sc->last_crc, h.epoch, sc->last_epoch);
		return 0;
	}
	chain_add(sc, &h, *total);
	sc->valid_end = sc->next_position;
	return 1;
}

/* Scan segment i from its data start. Returns 1 when the segment ended
 * cleanly (zeros at a group boundary; end_x, end_s and end_next say where the
 * log would stop if the next segment does not continue it), 0 when an invalid
 * point was found (sc->stop set), <0 on I/O error. */
static int scan_segment(struct scan *sc, uint32_t i, uint64_t *end_x, uint64_t *end_s,
			uint64_t *end_next)
{
	struct sl_seg *seg = sc->segs[i];
	const uint64_t block = seg->hdr.block_bytes;
	uint64_t off = block;
	struct win w = {.fd = -1};
	int rc, ret = 1;

	if ((rc = win_open(&w, sc->in->dir, sc->in->dirfd, seg)) < 0)
		return rc;
	*end_x = seg->end = off;
	*end_s = *end_next = sc->expected_seq;
	while (off + SL_GROUP_HDR_SIZE <= seg->size) {
		enum { COMPLETE, EARLY, INVALID } how = COMPLETE;
		struct sl_group_hdr g;
		const uint8_t *p;
		uint64_t q, gend;
		uint32_t kept = 0;

		if ((p = win_get(&w, off, SL_GROUP_HDR_SIZE)) == NULL) {
			ret = -EIO;
			break;
		}
		rc = sl_group_hdr_decode(p, &g);
		if (rc == -ENODATA) /* the end of this segment's groups */
			break;
		/* A recycled file holds its earlier life past the groups written
		 * since: a group of another tag, or bytes that are no group
		 * header at all (the middle of an old group), end this segment's
		 * groups just as zeros do in a new file. A torn header reads the
		 * same way and is cut the same way; corruption of a header that
		 * was durable is still caught, by the search after X (a later
		 * group of this tag vouches for it), as for any other stop. */
		if ((seg->hdr.flags & SL_SEG_F_RECYCLED) &&
		    (rc == -EBADMSG || (rc == 0 && g.tag != seg->hdr.tag)))
			break;
		if (rc < 0 || g.tag != seg->hdr.tag || g.seq != sc->expected_seq ||
		    (uint64_t)SL_GROUP_HDR_SIZE + g.batch_bytes > seg->size - off) {
			if (rc < 0)
				set_stop(sc, i, off, sc->expected_seq, sc->expected_seq,
					 "bad group header");
			else if (g.tag != seg->hdr.tag)
				set_stop(sc, i, off, sc->expected_seq, sc->expected_seq,
					 "group of tag %08" PRIx32
					 " in a segment of tag %08" PRIx32,
					 g.tag, seg->hdr.tag);
			else if (g.seq != sc->expected_seq)
				set_stop(sc, i, off, sc->expected_seq, sc->expected_seq,
					 "group sequence %" PRIu64 " where %" PRIu64
					 " was expected",
					 g.seq, sc->expected_seq);
			else
				set_stop(sc, i, off, sc->expected_seq, sc->expected_seq,
					 "group length overruns the segment");
			ret = 0;
			break;
		}
		gend = off + SL_GROUP_HDR_SIZE + g.batch_bytes;
		sc->group_seq = g.seq;
		if (g.durable_through > sc->vouched)
			sc->vouched = g.durable_through;
		for (q = off + SL_GROUP_HDR_SIZE; q < gend;) {
			struct sl_index_entry e = {.lsn = sc->next_lsn,
						   .position = sc->next_position,
						   .seg = seg,
						   .off = off,
						   .seq = g.seq,
						   .prev_epoch = sc->last_epoch};
			uint32_t total = 0;

			if (gend - q >= 4) {
				if ((p = win_get(&w, q, 4)) == NULL) {
					ret = -EIO;
					break;
				}
				if (sl_le32_get(p) == 0) { /* truncation left the rest */
					how = EARLY;
					break;
				}
			}
			rc = scan_batch(sc, &w, q, gend, &total);
			if (rc <= 0) {
				ret = rc < 0 ? rc : ret;
				how = INVALID;
				break;
			}
			if (kept++ == 0)
				sl_index_add(sc->idx, &e);
			q += total;
		}
		if (ret < 0)
			break;
		if (how == INVALID) { /* a group with no valid batch is cut whole */
			if (kept == 0)
				set_stop(sc, i, off, g.seq, g.seq, "%s", sc->stop.why);
			else
				set_stop(sc, i, q, g.seq, g.seq + 1, "%s", sc->stop.why);
			sc->stop.bad = q;
			sc->stop.gend = gend;
			ret = 0;
			break;
		}
		sc->expected_seq = g.seq + 1;
		/* Where the log stops if nothing valid follows this group. */
		if (how == EARLY && kept == 0)
			*end_x = off, *end_s = *end_next = g.seq;
		else if (how == EARLY)
			*end_x = q, *end_s = g.seq, *end_next = g.seq + 1;
		else
			*end_x = sl_align_up(q, block), *end_s = *end_next = sc->expected_seq;
		off = sl_align_up(q, block);
		seg->end = off;
	}
	win_close(&w);
	free(w.buf);
	return ret;
}

static int seg_continues(const struct scan *sc, const struct sl_seg_hdr *h)
{
	return h->base_lsn == sc->next_lsn && h->base_position == sc->next_position &&
	       h->prev_crc == sc->last_crc && h->base_epoch == sc->last_epoch &&
	       h->base_seq == sc->expected_seq;
}

/* The scan rule: walk every group and batch of every segment in order and
 * stop at the first point X that is zeros or invalid. Fills sc->stop. */
static int scan_log(struct scan *sc)
{
	uint64_t end_x = 0, end_s = 0, end_next = 0;
	uint32_t i;
	int rc;

	for (i = 0; i < sc->n; i++) {
		const struct sl_seg_hdr *h = &sc->segs[i]->hdr;

		if (i == 0) {
			sc->next_lsn = h->base_lsn;
			sc->next_position = h->base_position;
			sc->last_crc = h->prev_crc;
			sc->last_epoch = h->base_epoch;
			sc->expected_seq = h->base_seq;
		} else if (!seg_continues(sc, h)) {
			set_stop(sc, i - 1, end_x, end_s, end_next,
				 "next segment %s does not continue the log here",
				 sc->segs[i]->name);
			return 0;
		}
		rc = scan_segment(sc, i, &end_x, &end_s, &end_next);
		if (rc <= 0)
			return rc;
		/* The state at end_x is the chain state now: nothing valid follows it. */
	}
	set_stop(sc, sc->n - 1, end_x, end_s, end_next, "end of log");
	return 0;
}

/* Scan, keeping holes only where a valid batch follows them and a later
 * group vouches for theirs (it was durable: corruption, not a torn write).
 * Otherwise the scan runs again taking holes only before the first that is
 * not, and stops there as for any invalid batch (a torn tail is cut). */
static int scan_holes(struct scan *sc)
{
	struct sl_recover_out *out = sc->out;
	uint32_t k;
	int rc;

	for (int pass = 0; pass < 2; pass++) {
		if ((rc = scan_log(sc)) < 0)
			return rc;
		for (k = 0; k < out->nholes && out->holes[k].position < sc->valid_end &&
			    sc->hole_seq[k] <= sc->vouched;
		     k++)
			;
		if (k == out->nholes)
			return 0;
		sc->hole_limit = out->holes[k].position;
		out->nholes = 0;
		sc->valid_end = sc->vouched = 0;
		sl_index_cut(sc->idx, 0);
		if (sc->in->tree)
			sl_merkle_truncate(sc->in->tree, 0);
		memset(sc->epochs, 0, sizeof(*sc->epochs));
	}
	assert(0); /* the second pass takes no hole past the last valid batch */
	return sl_err_set(EINVAL, "recovery: holes past the last valid batch");
}

static int64_t last_nonzero(const uint8_t *p, size_t n)
{
	while (n > 0 && p[n - 1] == 0)
		n--;
	return (int64_t)n - 1;
}

static size_t count_nonzero(const uint8_t *p, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += p[i] != 0;
	return c;
}

/* What lies after X, and what the cut must do about it. */
struct after {
	uint64_t torn; /* bytes of the torn tail (see search_after) */
	int64_t nz_x;  /* last non-zero byte in X's segment, -1 for none */
	uint64_t *own; /* recycled X segment: blocks holding a group header of its tag */
	size_t nown, cown;
	uint32_t vi; /* the vouching group, when found */
	uint64_t voff, vseq;
};

static int add_own(struct after *a, uint64_t off)
{
	if (a->nown == a->cown) {
		size_t cap = a->cown ? 2 * a->cown : 16;
		uint64_t *n = realloc(a->own, cap * sizeof(*n));

		if (n == NULL)
			return sl_err_set(ENOMEM, "recovery: out of memory");
		a->own = n;
		a->cown = cap;
	}
	a->own[a->nown++] = off;
	return 0;
}

/* After X: look for a group that vouches for group s (a group header of its
 * segment's tag with durable_through >= s) at every block boundary, and
 * measure the torn tail: the non-zero bytes after X. In a recycled segment
 * only the bytes its own writes can have left count: the rest of the group
 * at X and the groups of its tag after it (headers listed in a->own for the
 * cut); the other bytes are its earlier life. Returns 1 when a group vouches. */
static int search_after(struct scan *sc, struct after *a)
{
	const struct stop *st = &sc->stop;
	int found = 0, rc = 0;

	a->torn = 0;
	a->nz_x = -1;
	for (uint32_t i = st->seg; i < sc->n && rc == 0; i++) {
		const struct sl_seg *seg = sc->segs[i];
		const uint64_t block = seg->hdr.block_bytes;
		const int recycled = (seg->hdr.flags & SL_SEG_F_RECYCLED) != 0;
		uint64_t from = i == st->seg ? st->x : 0;
		uint64_t o = i == st->seg ? sl_align_down(st->x, block) : 0;
		/* recycled: bytes before own_end are this segment's own */
		uint64_t own_end = i == st->seg ? sl_align_up(st->gend, block) : block;
		int64_t nz = -1; /* last non-zero byte offset at or after `from` */
		struct win w = {.fd = -1};

		if ((rc = win_open(&w, sc->in->dir, sc->in->dirfd, seg)) < 0)
			break;
		for (; o < seg->size; o += block) {
			size_t len = seg->size - o < block ? (size_t)(seg->size - o) : block;
			const uint8_t *p = win_get(&w, o, len);
			struct sl_group_hdr g;
			uint64_t skip = from > o ? from - o : 0;
			int64_t z;
			int own;

			if (p == NULL) {
				rc = -EIO;
				break;
			}
			own = o >= block && len >= SL_GROUP_HDR_SIZE &&
			      sl_group_hdr_decode(p, &g) == 0 && g.tag == seg->hdr.tag;
			if (!found && own && o > st->x && g.durable_through >= st->s) {
				found = 1;
				a->vi = i;
				a->voff = o;
				a->vseq = g.seq;
			}
			if (!recycled) {
				if (skip < len && (z = last_nonzero(p + skip, len - skip)) >= 0)
					nz = (int64_t)(o + skip) + z;
				continue;
			}
			if (own && o >= from) {
				uint64_t end = o + SL_GROUP_HDR_SIZE + g.batch_bytes;

				if (end > own_end)
					own_end = sl_align_up(end, block);
				if (i == st->seg && (rc = add_own(a, o)) < 0)
					break;
			}
			if (o < own_end && skip < len)
				a->torn += count_nonzero(p + skip, len - skip);
		}
		win_close(&w);
		free(w.buf);
		if (i == st->seg)
			a->nz_x = nz;
		if (nz >= 0)
			a->torn += (uint64_t)nz + 1 - from;
	}
	return rc < 0 ? rc : found;
}

/* Cut a recycled segment at X: what must go is every block after X that
 * holds a group header of the segment's tag (a torn tail's groups, which a
 * later append could otherwise meet again) and the rest of X's block (so a
 * group cut mid-way ends early there), each written with zeros, later ones
 * first. The file's earlier life after X stays: it reads as the end of the
 * segment's groups, and keeping it keeps its blocks written. */
static int cut_recycled(int fd, const char *dir, const struct sl_seg *seg, uint64_t x,
			const struct after *a)
{
	static const uint8_t zeros[65536];
	const uint32_t block = seg->hdr.block_bytes;
	uint64_t mid = sl_align_up(x, block);

	for (size_t k = a->nown; k-- > 0;) {
		uint64_t o = a->own[k];

		if (o < mid)
			continue; /* X's own block: below */
		for (uint64_t d = 0; d < block; d += sizeof(zeros)) {
			size_t len = block - d < sizeof(zeros) ? block - d : sizeof(zeros);

			if (pwrite(fd, zeros, len, (off_t)(o + d)) != (ssize_t)len)
				return sl_err_set(errno ? errno : EIO,
						  "zeroing segment %s/%s at offset %" PRIu64 ": %s",
						  dir, seg->name, o + d,
						  strerror(errno ? errno : EIO));
		}
	}
	if (a->nown > 0 && fdatasync(fd) < 0)
		return sl_err_set(errno, "fdatasync of segment %s/%s: %s", dir, seg->name,
				  strerror(errno));
	/* A block-aligned X that held a header of this tag went with the loop. */
	if (x % block != 0)
		return sl_seg_zero(fd, seg->name, x, mid, block);
	return 0;
}

/* Cut the log at X durably: later segments first (last to first), then the
 * tail of X's segment, so a crash midway leaves a prefix of the old log. */
static int cut_tail(struct scan *sc, const struct after *a)
{
	const struct sl_recover_in *in = sc->in;
	struct sl_seg *seg = sc->segs[sc->stop.seg];
	int64_t last_nz_in_x_seg = a->nz_x;
	int rc, fd;

	for (uint32_t i = sc->n; i-- > sc->stop.seg + 1;) {
		if ((rc = sl_seg_unlink(in->dirfd, in->dir, sc->segs[i]->name)) < 0)
			return rc;
		free(sc->segs[i]);
		sc->n = i;
	}
	if ((rc = sl_dir_sync(in->dirfd, in->dir)) < 0)
		return rc;
	if (!(seg->hdr.flags & SL_SEG_F_RECYCLED) && last_nz_in_x_seg < (int64_t)sc->stop.x)
		return 0;
	fd = openat(in->dirfd, seg->name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return sl_err_set(errno, "opening segment %s/%s: %s", in->dir, seg->name,
				  strerror(errno));
	if (seg->hdr.flags & SL_SEG_F_RECYCLED)
		rc = cut_recycled(fd, in->dir, seg, sc->stop.x, a);
	else
		rc = sl_seg_zero(fd, seg->name, sc->stop.x, (uint64_t)last_nz_in_x_seg + 1,
				 seg->hdr.block_bytes);
	close(fd);
	return rc;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct sl_seg *x = *(struct sl_seg *const *)a, *y = *(struct sl_seg *const *)b;

	return x->hdr.base_lsn < y->hdr.base_lsn ? -1 : x->hdr.base_lsn > y->hdr.base_lsn;
}

/* Read and decode one segment's header; fills seg->hdr and seg->size. */
static int load_header(const struct sl_recover_in *in, struct sl_seg *seg)
{
	uint8_t buf[SL_SEG_HDR_SIZE];
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = openat(in->dirfd, seg->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sl_err_set(errno, "opening segment %s/%s: %s", in->dir, seg->name,
				  strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = sl_err_set(errno, "stat of segment %s/%s: %s", in->dir, seg->name,
				strerror(errno));
		close(fd);
		return rc;
	}
	seg->size = (uint64_t)st.st_size;
	n = pread(fd, buf, sizeof(buf), 0);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return sl_err_set(-rc, "reading segment %s/%s: %s", in->dir, seg->name,
				  strerror(-rc));
	memset(buf + n, 0, sizeof(buf) - (size_t)n);
	if ((rc = sl_seg_hdr_decode(buf, &seg->hdr)) < 0)
		return sl_err_wrap(rc, "segment %s/%s", in->dir, seg->name);
	return 0;
}

/* Whose segment it is, and whether its header agrees with its name. */
static int check_header(const struct sl_recover_in *in, const struct sl_seg *seg, uint64_t name_lsn)
{
	if (memcmp(seg->hdr.cluster_id, in->cluster_id, 16) != 0)
		return sl_err_set(EINVAL, "segment %s/%s belongs to another cluster", in->dir,
				  seg->name);
	if (seg->hdr.stream_id != in->stream_id || seg->hdr.node_id != in->node_id)
		return sl_err_set(EINVAL,
				  "segment %s/%s belongs to stream %" PRIu64 " node %" PRIu32
				  ", not stream %" PRIu64 " node %" PRIu32,
				  in->dir, seg->name, seg->hdr.stream_id, seg->hdr.node_id,
				  in->stream_id, in->node_id);
	if (seg->hdr.base_lsn != name_lsn)
		return sl_err_set(EBADMSG, "segment %s/%s: header says base lsn %" PRIu64, in->dir,
				  seg->name, seg->hdr.base_lsn);
	if (seg->size < seg->hdr.block_bytes)
		return sl_err_set(EBADMSG, "segment %s/%s: shorter than its header block", in->dir,
				  seg->name);
	return 0;
}

/* A last segment whose header never became durable: its creation crashed.
 * Such a file is all zeros (or empty); it is removed. 1: removed, 0: not such
 * a file (the caller refuses it), <0: error. */
static int drop_unborn(const struct sl_recover_in *in, struct sl_seg *seg)
{
	struct win w = {.fd = -1};
	int rc, empty = 1;

	if ((rc = win_open(&w, in->dir, in->dirfd, seg)) < 0)
		return rc;
	for (uint64_t o = 0; o < seg->size && empty == 1; o += WIN_MIN) {
		size_t len = seg->size - o < WIN_MIN ? (size_t)(seg->size - o) : WIN_MIN;
		const uint8_t *p = win_get(&w, o, len);

		empty = p == NULL ? -EIO : last_nonzero(p, len) < 0;
	}
	win_close(&w);
	free(w.buf);
	if (empty <= 0 || in->readonly)
		return empty;
	if ((rc = sl_seg_unlink(in->dirfd, in->dir, seg->name)) < 0 ||
	    (rc = sl_dir_sync(in->dirfd, in->dir)) < 0)
		return rc;
	sl_warn("%s/%s: removed a segment whose creation did not complete", in->dir, seg->name);
	return 1;
}

/* A reader that was given no identity takes the first segment's. */
static void adopt_identity(struct sl_recover_in *in, struct sl_recover_out *out,
			   const struct sl_seg_hdr *h)
{
	memcpy(out->cluster_id, h->cluster_id, 16);
	out->stream_id = h->stream_id;
	out->node_id = h->node_id;
	in->cluster_id = out->cluster_id;
	in->stream_id = h->stream_id;
	in->node_id = h->node_id;
}

static int list_segments(struct sl_recover_in *in, struct sl_recover_out *out)
{
	uint32_t cap = 0;
	struct dirent *de;
	int dfd, rc = 0;
	DIR *d;

	dfd = openat(in->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		rc = sl_err_set(errno, "listing %s: %s", in->dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t lsn;
		struct sl_seg *seg;

		if (!sl_seg_parse_name(de->d_name, &lsn))
			continue;
		if (out->nsegs == cap) {
			struct sl_seg **ns;

			cap = cap ? cap * 2 : 16;
			if ((ns = realloc(out->segs, cap * sizeof(*ns))) == NULL) {
				rc = sl_err_set(ENOMEM, "listing %s: out of memory", in->dir);
				break;
			}
			out->segs = ns;
		}
		if ((seg = calloc(1, sizeof(*seg))) == NULL) {
			rc = sl_err_set(ENOMEM, "listing %s: out of memory", in->dir);
			break;
		}
		memcpy(seg->name, de->d_name, 25); /* 20 digits, ".seg", NUL */
		seg->hdr.base_lsn = lsn;	   /* for sorting; check_header checks it */
		seg->fd = seg->file_slot = -1;
		out->segs[out->nsegs++] = seg;
	}
	closedir(d);
	if (rc == 0 && out->nsegs > 0)
		qsort(out->segs, out->nsegs, sizeof(*out->segs), cmp_seg);
	for (uint32_t i = 0; rc == 0 && i < out->nsegs; i++) {
		uint64_t lsn = out->segs[i]->hdr.base_lsn;

		rc = load_header(in, out->segs[i]);
		if (rc == 0 && in->cluster_id == NULL)
			adopt_identity(in, out, &out->segs[i]->hdr);
		if (rc == 0)
			rc = check_header(in, out->segs[i], lsn);
		if (rc == -ENODATA && i + 1 == out->nsegs) {
			char msg[SL_ERR_MSG_MAX];
			int dropped;

			snprintf(msg, sizeof(msg), "%s", sl_err_msg());
			dropped = drop_unborn(in, out->segs[i]);
			if (dropped < 0)
				return dropped;
			if (dropped == 0) /* not an unborn segment: the header error stands */
				return sl_err_set(-rc, "%s", msg);
			free(out->segs[i]);
			out->nsegs--;
			out->unborn = in->readonly;
			rc = 0;
		}
	}
	return rc;
}

void sl_recover_free(struct sl_recover_out *out)
{
	for (uint32_t i = 0; i < out->nsegs; i++)
		free(out->segs[i]);
	free(out->segs);
	out->segs = NULL;
	out->nsegs = 0;
}

static void note_stop(const struct scan *sc, struct sl_recover_out *out)
{
	snprintf(out->stop_segment, sizeof(out->stop_segment), "%s", sc->segs[sc->stop.seg]->name);
	out->stop_offset = sc->stop.bad;
	snprintf(out->stop_why, sizeof(out->stop_why), "%s", sc->stop.why);
}

int sl_recover(const struct sl_recover_in *in_, struct sl_index *idx, struct sl_recover_out *out)
{
	struct sl_recover_in own = *in_, *in = &own;
	struct scan sc = {.in = in, .idx = idx, .out = out, .hole_limit = UINT64_MAX};
	struct after a = {0};
	uint64_t torn;
	struct sl_seg *tail;
	int rc, found;

	memset(out, 0, sizeof(*out));
	if (in->cluster_id) {
		memcpy(out->cluster_id, in->cluster_id, 16);
		out->stream_id = in->stream_id;
		out->node_id = in->node_id;
	}
	if ((rc = list_segments(in, out)) < 0)
		goto err_free;
	if (out->nsegs == 0)
		return 0;
	sc.segs = out->segs;
	sc.n = out->nsegs;
	sc.epochs = &out->epochs;
	if ((rc = scan_holes(&sc)) < 0)
		goto err_free;
	note_stop(&sc, out);
	found = search_after(&sc, &a);
	torn = a.torn;
	if (found < 0) {
		rc = found;
		goto err_free;
	}
	if (found) {
		rc = sl_err_set(EBADMSG,
				"corruption in segment %s/%s at offset %" PRIu64
				": %s; group %" PRIu64 " (segment %s offset %" PRIu64
				") was written after group %" PRIu64
				" was durable, so this is not a torn write; nothing was changed",
				in->dir, sc.segs[sc.stop.seg]->name, sc.stop.bad, sc.stop.why,
				a.vseq, sc.segs[a.vi]->name, a.voff, sc.stop.s);
		goto err_free;
	}
	if (!in->readonly && (torn > 0 || sc.stop.seg + 1 < sc.n)) {
		uint32_t removed = sc.n - sc.stop.seg - 1;

		if ((rc = cut_tail(&sc, &a)) < 0) {
			rc = sl_err_wrap(rc, "cutting torn tail of %s/%s at offset %" PRIu64,
					 in->dir, sc.segs[sc.stop.seg]->name, sc.stop.x);
			out->nsegs = sc.n;
			goto err_free;
		}
		out->nsegs = sc.n;
		sl_warn("%s/%s: torn tail at offset %" PRIu64 " (%s): cut %" PRIu64
			" bytes, removed %" PRIu32 " later segments",
			in->dir, sc.segs[sc.stop.seg]->name, sc.stop.x, sc.stop.why, torn, removed);
	}
	tail = out->segs[sc.stop.seg];
	tail->end = sl_align_up(sc.stop.x, tail->hdr.block_bytes);
	sl_index_cut(idx, sc.next_position);
	out->next_lsn = sc.next_lsn;
	out->next_position = sc.next_position;
	out->last_crc = sc.last_crc;
	out->last_epoch = sc.last_epoch;
	sl_epoch_map_truncate(&out->epochs, sc.next_position); /* only what is kept */
	out->next_seq = sc.stop.next_seq;
	out->torn_bytes = torn;
	free(a.own);
	return 0;

err_free:
	free(a.own);
	sl_recover_free(out);
	return rc;
}
