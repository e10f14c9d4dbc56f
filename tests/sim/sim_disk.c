/* Simulated disk; see sim_disk.h. */
#include "sim_disk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

int sl_sim_disk_init(struct sl_sim_disk *d, uint64_t cap, uint32_t idx_cap, uint32_t pend_cap,
		     const struct sl_batch_limits *lim)
{
	memset(d, 0, sizeof(*d));
	d->buf = malloc(cap);
	d->idx = calloc(idx_cap, sizeof(*d->idx));
	d->pend = calloc(pend_cap, sizeof(*d->pend));
	if (!d->buf || !d->idx || !d->pend) {
		sl_sim_disk_destroy(d);
		return -ENOMEM;
	}
	d->cap = cap;
	d->idx_cap = idx_cap;
	d->pend_cap = pend_cap;
	d->next_lsn = 1;
	d->lim = lim ? *lim : sl_batch_default_limits;
	return 0;
}

void sl_sim_disk_destroy(struct sl_sim_disk *d)
{
	free(d->buf);
	free(d->idx);
	free(d->pend);
	memset(d, 0, sizeof(*d));
}

/* Does the verified batch `h` continue the log where it stands? */
static int chains(const struct sl_sim_disk *d, const struct sl_batch_hdr *h, uint64_t pos)
{
	return h->position == pos && h->base_lsn == d->next_lsn && h->prev_crc == d->last_crc;
}

static void index_add(struct sl_sim_disk *d, const struct sl_batch_hdr *h, uint32_t len)
{
	struct sl_sim_bref *r = &d->idx[d->n_idx++];

	r->pos = h->position;
	r->base_lsn = h->base_lsn;
	r->len = len;
	r->count = h->record_count;
	r->hdr_crc = h->hdr_crc;
	r->prev_crc = h->prev_crc;
	r->epoch = h->epoch;
	d->next_lsn = h->base_lsn + h->record_count;
	d->last_crc = h->hdr_crc;
}

int sl_sim_disk_write(struct sl_sim_disk *d, uint64_t pos, const uint8_t *batch, size_t len,
		      uint64_t durable_at)
{
	struct sl_batch_hdr h;
	struct sl_sim_pending *p;
	int rc;

	if (pos != d->end)
		return -EINVAL;
	rc = sl_batch_verify(batch, len, &d->lim, &h);
	if (rc < 0 || (size_t)rc != len)
		return -EBADMSG;
	if (!chains(d, &h, pos))
		return -EINVAL;
	if (len > d->cap - d->end || d->n_idx == d->idx_cap || d->pend_n == d->pend_cap)
		return -ENOSPC;
	memcpy(d->buf + d->end, batch, len);
	d->end += len;
	index_add(d, &h, (uint32_t)len);
	if (durable_at < d->last_durable_at)
		durable_at = d->last_durable_at; /* syncs complete in order */
	d->last_durable_at = durable_at;
	p = &d->pend[(d->pend_head + d->pend_n++) % d->pend_cap];
	p->end = d->end;
	p->durable_at = durable_at;
	return 0;
}

uint64_t sl_sim_disk_next_sync(const struct sl_sim_disk *d)
{
	return d->pend_n ? d->pend[d->pend_head].durable_at : UINT64_MAX;
}

int sl_sim_disk_sync(struct sl_sim_disk *d, uint64_t now)
{
	uint64_t before = d->durable;

	while (d->pend_n && d->pend[d->pend_head].durable_at <= now) {
		d->durable = d->pend[d->pend_head].end;
		d->pend_head = (d->pend_head + 1) % d->pend_cap;
		d->pend_n--;
	}
	return d->durable > before;
}

void sl_sim_disk_drop_pending(struct sl_sim_disk *d)
{
	d->pend_head = 0;
	d->pend_n = 0;
}

/* End of the last whole batch at or below `limit` (never below durable). */
static uint64_t batch_boundary_below(const struct sl_sim_disk *d, uint64_t limit)
{
	uint64_t best = d->durable;

	for (uint32_t i = 0; i < d->n_idx; i++) {
		uint64_t e = d->idx[i].pos + d->idx[i].len;

		if (e > limit)
			break;
		if (e > best)
			best = e;
	}
	return best;
}

/* Flip random bits in up to 64 bytes before `end`, never below `floor`. */
static void garble(uint8_t *buf, uint64_t floor, uint64_t end, uint64_t *rng)
{
	uint64_t n = end - floor < 64 ? end - floor : 64;

	for (uint64_t i = 0; i < n; i++)
		buf[end - 1 - i] ^= (uint8_t)(1u << sl_sim_below(rng, 8));
}

void sl_sim_disk_crash(struct sl_sim_disk *d, uint64_t *rng, struct sl_sim_crash_info *info)
{
	uint64_t vol = d->end - d->durable;
	uint64_t keep = sl_sim_range(rng, 0, vol);
	enum sl_sim_tear tear = (enum sl_sim_tear)sl_sim_below(rng, 4);

	if (vol == 0)
		tear = SL_SIM_TEAR_LOST;
	switch (tear) {
	case SL_SIM_TEAR_LOST:
		keep = 0;
		break;
	case SL_SIM_TEAR_WHOLE:
		keep = batch_boundary_below(d, d->durable + keep) - d->durable;
		break;
	case SL_SIM_TEAR_GARBLED:
		garble(d->buf, d->durable, d->durable + keep, rng);
		break;
	case SL_SIM_TEAR_PREFIX:
		break;
	}
	d->end = d->durable + keep;
	sl_sim_disk_drop_pending(d);
	d->last_durable_at = 0;
	info->tear = tear;
	info->volatile_bytes = vol;
	info->kept = keep;
}

void sl_sim_disk_recover(struct sl_sim_disk *d, struct sl_sim_recovered *out)
{
	uint64_t pos = 0;
	struct sl_batch_hdr h;

	d->n_idx = 0;
	d->n_rot = 0; /* the batches recovery keeps verify: rot only in what it cuts */
	d->next_lsn = 1;
	d->last_crc = 0;
	while (pos < d->end && d->n_idx < d->idx_cap) {
		int len = sl_batch_verify(d->buf + pos, d->end - pos, &d->lim, &h);

		if (len < 0 || !chains(d, &h, pos))
			break;
		index_add(d, &h, (uint32_t)len);
		pos += (uint64_t)len;
	}
	out->cut_bytes = d->end - pos;
	out->lost_durable = d->durable > pos ? d->durable - pos : 0;
	d->end = pos;
	d->durable = pos;
	sl_sim_disk_drop_pending(d);
	d->last_durable_at = 0;
	out->next_lsn = d->next_lsn;
	out->next_pos = pos;
	out->last_crc = d->last_crc;
}

int64_t sl_sim_disk_find(const struct sl_sim_disk *d, uint64_t pos)
{
	uint32_t lo = 0, hi = d->n_idx;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->idx[mid].pos < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->n_idx && d->idx[lo].pos == pos ? (int64_t)lo : -1;
}

int sl_sim_disk_read(const struct sl_sim_disk *d, uint64_t pos, uint8_t *buf, size_t cap)
{
	int64_t i = sl_sim_disk_find(d, pos);

	if (i < 0)
		return -ENOENT;
	if (d->idx[i].len > cap)
		return -ENOSPC;
	memcpy(buf, d->buf + pos, d->idx[i].len);
	return (int)d->idx[i].len;
}

uint64_t sl_sim_disk_lsn_below(const struct sl_sim_disk *d, uint64_t pos)
{
	uint32_t lo = 0, hi = d->n_idx;

	/* First batch that ends after pos; the one before it is the answer. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->idx[mid].pos + d->idx[mid].len <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	return d->idx[lo - 1].base_lsn + d->idx[lo - 1].count - 1;
}

uint64_t sl_sim_disk_lsn_end(const struct sl_sim_disk *d, uint64_t lsn)
{
	uint32_t lo = 0, hi = d->n_idx;

	if (lsn == 0)
		return 0;
	/* First batch whose records reach lsn (base_lsn + count grows). */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->idx[mid].base_lsn + d->idx[mid].count <= lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == d->n_idx)
		return UINT64_MAX;
	return d->idx[lo].pos + d->idx[lo].len;
}

int sl_sim_disk_truncate(struct sl_sim_disk *d, uint64_t pos)
{
	uint32_t n = d->n_idx;

	while (n > 0 && d->idx[n - 1].pos >= pos)
		n--;
	if (pos > d->end || (n > 0 && d->idx[n - 1].pos + d->idx[n - 1].len != pos) ||
	    (n == 0 && pos != 0))
		return -EINVAL;
	d->n_idx = n;
	for (uint32_t k = 0; k < d->n_rot;) /* rot of the batches cut goes with them */
		if (d->rot[k] >= n)
			d->rot[k] = d->rot[--d->n_rot];
		else
			k++;
	d->end = pos;
	if (d->durable > pos)
		d->durable = pos;
	d->next_lsn = n ? d->idx[n - 1].base_lsn + d->idx[n - 1].count : 1;
	d->last_crc = n ? d->idx[n - 1].hdr_crc : 0;
	while (d->pend_n > 0 && d->pend[(d->pend_head + d->pend_n - 1) % d->pend_cap].end > pos)
		d->pend_n--;
	return 0;
}

int64_t sl_sim_disk_crc_at_end(const struct sl_sim_disk *d, uint64_t pos)
{
	uint32_t lo = 0, hi = d->n_idx;

	if (pos == 0)
		return 0;
	while (lo < hi) { /* first batch ending at or after pos */
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->idx[mid].pos + d->idx[mid].len < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < d->n_idx && d->idx[lo].pos + d->idx[lo].len == pos)
		return d->idx[lo].hdr_crc;
	return -1;
}

void sl_sim_disk_epochs(const struct sl_sim_disk *d, struct sl_epoch_map *m)
{
	sl_epoch_map_reset(m);
	for (uint32_t i = 0; i < d->n_idx; i++)
		if (i == 0 || d->idx[i].epoch != d->idx[i - 1].epoch)
			sl_epoch_map_note(m, d->idx[i].epoch, d->idx[i].pos, d->idx[i].base_lsn,
					  d->idx[i].prev_crc);
}

/* ---- rot and repair ---- */

int sl_sim_disk_rotten(const struct sl_sim_disk *d, uint32_t i)
{
	for (uint32_t k = 0; k < d->n_rot; k++)
		if (d->rot[k] == i)
			return 1;
	return 0;
}

static int rot_note(struct sl_sim_disk *d, uint32_t i)
{
	if (i >= d->n_idx || d->idx[i].pos + d->idx[i].len > d->durable)
		return -EINVAL;
	if (sl_sim_disk_rotten(d, i))
		return 0;
	if (d->n_rot == SL_SIM_ROT_MAX)
		return -ENOSPC;
	d->rot[d->n_rot++] = i;
	return 0;
}

int sl_sim_disk_flip(struct sl_sim_disk *d, uint32_t i, uint64_t *rng)
{
	uint64_t bits = sl_sim_range(rng, 1, 8);
	int rc = rot_note(d, i);

	if (rc < 0)
		return rc;
	/* Two flips of one bit cancel: flip on until the batch is bad. */
	for (uint64_t b = 0; b < bits || (b < 64 && sl_sim_disk_intact(d, i)); b++)
		d->buf[d->idx[i].pos + sl_sim_below(rng, d->idx[i].len)] ^=
		    (uint8_t)(1u << sl_sim_below(rng, 8));
	return 0;
}

int sl_sim_disk_misplace(struct sl_sim_disk *d, uint32_t src, uint32_t dst)
{
	uint32_t n;
	int rc;

	if (src >= d->n_idx || src == dst || sl_sim_disk_rotten(d, src))
		return -EINVAL; /* a valid batch, copied */
	if ((rc = rot_note(d, dst)) < 0)
		return rc;
	n = d->idx[src].len < d->idx[dst].len ? d->idx[src].len : d->idx[dst].len;
	memmove(d->buf + d->idx[dst].pos, d->buf + d->idx[src].pos, n);
	return 0;
}

int sl_sim_disk_intact(const struct sl_sim_disk *d, uint32_t i)
{
	const struct sl_sim_bref *r = &d->idx[i];
	struct sl_batch_hdr h;
	int rc = sl_batch_verify(d->buf + r->pos, r->len, &d->lim, &h);

	return rc == (int)r->len && h.position == r->pos && h.hdr_crc == r->hdr_crc;
}

int sl_sim_disk_rewrite(struct sl_sim_disk *d, uint64_t pos, const uint8_t *batch, size_t len)
{
	int64_t i = sl_sim_disk_find(d, pos);
	struct sl_batch_hdr h;
	int rc;

	if (i < 0 || pos + d->idx[i].len > d->durable)
		return -ENOENT;
	rc = sl_batch_verify(batch, len, &d->lim, &h);
	if (rc < 0 || (size_t)rc != len || len != d->idx[i].len || h.position != pos ||
	    h.hdr_crc != d->idx[i].hdr_crc)
		return -EINVAL;
	memcpy(d->buf + pos, batch, len);
	for (uint32_t k = 0; k < d->n_rot; k++)
		if (d->rot[k] == (uint32_t)i) {
			d->rot[k] = d->rot[--d->n_rot];
			break;
		}
	return 0;
}
