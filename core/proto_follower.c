/* Follower half of the protocol: reassembling batches from fragments in the
 * receive ring, verifying and chaining them, writing them to storage, NAKing
 * gaps, reporting positions in STATUS frames, and delivering safe records to
 * the engine exactly once, in order. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"
#include "shiplog/err.h"

#define DELIVER_BUDGET 256 /* batches delivered per event */

static uint32_t bits_words(const struct sl_proto *p)
{
	return (p->enc_cap / p->frag_unit + 1 + 63) / 64;
}

int sl_follower_init(struct sl_proto *p, const struct sl_log_state *log)
{
	for (int i = 0; i < SL_PROTO_SLOTS; i++) {
		p->slots[i].bits = calloc(bits_words(p), sizeof(uint64_t));
		p->slots[i].fcrc = calloc(p->frag_max, sizeof(uint32_t));
		if (!p->slots[i].bits || !p->slots[i].fcrc)
			return sl_err_set(ENOMEM, "reassembly slots");
	}
	p->applyq_cap = p->bq.cap;
	p->applyq = calloc(p->applyq_cap, sizeof(*p->applyq));
	if (!p->applyq)
		return sl_err_set(ENOMEM, "delivery buffers");
	p->delivered_pos = p->applied_pos = log->applied_pos;
	p->delivered_lsn = p->applied_lsn = p->engine_start_lsn = log->applied_lsn;
	p->leader_end = p->highest_seen = p->log_end;
	p->status_dirty = 1;
	return 0;
}

static uint64_t window_end(const struct sl_proto *p)
{
	return sl_proto_ring_base(p) + p->el.rcv_cap - p->el.reserve;
}

static void send_status(struct sl_proto *p, uint64_t now)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_STATUS};

	f.status = (struct sl_frame_status){
	    .received_pos = p->log_end,
	    .durable_pos = p->durable_pos,
	    .applied_pos = p->applied_pos,
	    .window_end = window_end(p),
	    .applied_lsn = p->applied_lsn,
	    .echo_received_ts = p->echo_recv_ts,
	    .echo_durable_ts = p->echo_durable_ts,
	    .echo_applied_ts = p->echo_applied_ts,
	    .status_ts = now,
	};
	sl_proto_send(p, p->cfg.leader_id, &p->seq_to_leader, &f);
	p->status_dirty = p->report_pending = 0;
	p->report_at = 0;
	p->last_status_sent = now;
}

/* ---- gaps ---- */

static int slot_cmp_pos(const void *a, const void *b)
{
	const struct sl_slot *x = *(const struct sl_slot *const *)a;
	const struct sl_slot *y = *(const struct sl_slot *const *)b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int nak(struct sl_proto *p, uint64_t from, uint64_t to, uint64_t limit, int *left)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_NAK};

	if (to > limit)
		to = limit;
	if (from >= to || *left <= 0)
		return *left > 0;
	f.nak = (struct sl_frame_nak){.from_pos = from, .to_pos = to};
	sl_proto_send(p, p->cfg.leader_id, &p->seq_to_leader, &f);
	p->naks_sent++;
	return --*left > 0;
}

/* NAK the missing fragments of a slot, run by run. */
static int nak_slot_holes(struct sl_proto *p, const struct sl_slot *s, uint64_t limit, int *left)
{
	uint32_t nfrag = (s->len + p->frag_unit - 1) / p->frag_unit;

	for (uint32_t i = 0; i < nfrag;) {
		uint32_t j = i;

		if (s->bits[i / 64] >> (i % 64) & 1) {
			i++;
			continue;
		}
		while (j < nfrag && !(s->bits[j / 64] >> (j % 64) & 1))
			j++;
		if (!nak(p, s->pos + (uint64_t)i * p->frag_unit,
			 s->pos + ((uint64_t)j * p->frag_unit < s->len ? (uint64_t)j * p->frag_unit
								       : s->len),
			 limit, left))
			return 0;
		i = j;
	}
	return 1;
}

/* Everything missing below the highest byte we know exists, in order. */
static void send_naks(struct sl_proto *p, uint64_t target)
{
	struct sl_slot *order[SL_PROTO_SLOTS];
	uint64_t limit = target < window_end(p) ? target : window_end(p), c = p->log_end;
	int n = (int)p->n_used, left = SL_PROTO_NAK_MAX;

	memcpy(order, p->used, (size_t)n * sizeof(order[0]));
	qsort(order, (size_t)n, sizeof(order[0]), slot_cmp_pos);
	for (int i = 0; i < n && left > 0; i++) {
		if (order[i]->pos < c)
			continue;
		if (!nak(p, c, order[i]->pos, limit, &left) ||
		    !nak_slot_holes(p, order[i], limit, &left))
			return;
		c = order[i]->pos + order[i]->len;
	}
	nak(p, c, target, limit, &left);
}

static uint64_t nak_interval(const struct sl_proto *p)
{
	return p->cfg.nak_interval_ns * (p->nak_backoff ? p->nak_backoff : 1);
}

/* How far to NAK. Holes below a received byte go after nak_delay. What
 * lies past the highest byte received, up to the leader's end that a
 * heartbeat told, is usually still on its way: a receiver that a busy
 * machine runs late learns the leader's end long before it reads the
 * frames. NAKing that tail made the leader send it twice (three shipd under
 * load: about a million retransmits for a million records), so the tail
 * waits until no new fragment has come for a tail-loss-probe interval.
 * Returns the NAK target, or log_end when nothing may be NAKed yet. */
static uint64_t nak_target(const struct sl_proto *p, uint64_t now)
{
	int quiet = p->last_frag_ns == 0 || now - p->last_frag_ns >= p->cfg.tlp_ns;

	if (quiet && p->leader_end > p->highest_seen)
		return p->leader_end;
	return p->highest_seen > p->log_end ? p->highest_seen : p->log_end;
}

static void check_gap(struct sl_proto *p, uint64_t now)
{
	uint64_t target = p->highest_seen > p->leader_end ? p->highest_seen : p->leader_end;

	if (p->log_end >= target) {
		p->gap_since = 0;
		return;
	}
	if (!p->gap_since) {
		p->gap_since = now;
		return;
	}
	if (now - p->gap_since < p->cfg.nak_delay_ns ||
	    (p->last_nak && now - p->last_nak < nak_interval(p)))
		return;
	if ((target = nak_target(p, now)) <= p->log_end)
		return;
	/* Back off while NAKs bring nothing (a congested path or a busy
	 * leader), so repair traffic cannot feed the congestion; come back
	 * while they fill holes one fragment at a time (a leader sending few
	 * frames per turn), though log_end waits for the last of a batch. */
	if (p->last_nak && p->log_end == p->nak_log_end && p->last_frag_ns <= p->last_nak)
		p->nak_backoff =
		    p->nak_backoff < SL_PROTO_NAK_BACKOFF_MAX ? p->nak_backoff * 2 : p->nak_backoff;
	else if (p->last_nak && p->log_end == p->nak_log_end)
		p->nak_backoff = p->nak_backoff > 1 ? p->nak_backoff / 2 : 1;
	else
		p->nak_backoff = 1;
	p->nak_log_end = p->log_end;
	send_naks(p, target);
	p->last_nak = now;
	/* The leader may hold a stale idea of where we are (we restarted and
	 * lost an unsynced tail, or our STATUS was lost): restate it. */
	p->status_dirty = 1;
}

/* ---- delivery ---- */

static void release(struct sl_proto *p)
{
	uint64_t keep = p->delivered_pos < p->durable_pos ? p->delivered_pos : p->durable_pos;

	if (keep > p->safe_pos) /* a deposed leader's own, uncommitted batches */
		keep = p->safe_pos;
	/* Deliveries may wait for a new leader's first batch, which may lie past
	 * our window: durable batches then leave the ring (delivery reads them
	 * back from storage) rather than stall it. */
	if (p->el.on && p->log_end - sl_proto_ring_base(p) > p->el.rcv_cap / 2)
		keep = p->durable_pos;
	while (p->bq.n > 0) {
		const struct sl_bdesc *d = sl_bq_at(&p->bq, 0);

		if (d->pos + d->len > keep)
			break;
		sl_bq_pop(&p->bq);
	}
}

static void applyq_push(struct sl_proto *p, uint64_t last_lsn, uint64_t end, uint64_t ts)
{
	if (p->applyq_n == p->applyq_cap) { /* engine far behind: forget the oldest */
		p->applyq_head = (p->applyq_head + 1) % p->applyq_cap;
		p->applyq_n--;
	}
	p->applyq[(p->applyq_head + p->applyq_n) % p->applyq_cap] =
	    (struct sl_applied_ent){.last_lsn = last_lsn, .end = end, .ts = ts};
	p->applyq_n++;
}

/* The batch at delivered_pos and its header: from the ring, where it was
 * verified as it arrived, or from storage after a restart, verified now. A
 * batch that rotted on disk (the store's read finds it corrupt: -EIO) waits
 * for the scrub to have it repaired from a peer; delivery retries after the
 * next event. */
static const uint8_t *delivery_batch(struct sl_proto *p, uint32_t *len, struct sl_batch_hdr *h)
{
	const struct sl_bdesc *d = sl_bq_find(&p->bq, p->delivered_pos);
	const uint8_t *b = p->scratch;
	int n;

	if (d) {
		assert(d->pos == p->delivered_pos);
		b = sl_bq_bytes(p, d);
		n = sl_batch_decode_hdr(b, d->len, &p->cfg.limits, h);
		n = n < 0 ? n : (int)d->len;
	} else {
		n = p->ops.read(p->ops.ctx, p->delivered_pos, p->scratch, p->enc_cap);
		if (n >= SL_BATCH_HDR_SIZE)
			n = sl_batch_verify(b, (size_t)n, &p->cfg.limits, h);
	}
	if (n == -EIO && !d) {
		p->rot_wait = p->delivered_pos + 1;
		return NULL;
	}
	if (n < SL_BATCH_HDR_SIZE) {
		sl_proto_fail(p, n < 0 ? n : -EIO); /* our own verified log: a bug or bad RAM */
		return NULL;
	}
	*len = (uint32_t)n;
	return b;
}

/* Callbacks may re-enter the protocol (an engine that acknowledges applied
 * from inside deliver), so state moves before each callback and a nested
 * call does not deliver. */
static void deliver(struct sl_proto *p)
{
	uint64_t limit = p->safe_pos < p->durable_pos ? p->safe_pos : p->durable_pos;

	if (p->delivering)
		return;
	if (p->ent.nholes && sl_entropy_first_hole(p) < limit) /* delivered once repaired */
		limit = sl_entropy_first_hole(p);
	p->delivering = 1;
	for (int budget = DELIVER_BUDGET; budget > 0 && p->delivered_pos < limit; budget--) {
		struct sl_batch_hdr h;
		uint32_t len;
		const uint8_t *b = delivery_batch(p, &len, &h);
		uint64_t last;
		int rc;

		if (!b || p->delivered_pos + len > limit)
			break;
		last = h.base_lsn + h.record_count - 1;
		p->delivered_pos += len;
		if (h.record_count > 0)
			p->delivered_lsn = last;
		if (p->delivered_lsn <= p->applied_lsn)
			p->applied_pos = p->delivered_pos; /* engine had these already */
		else
			applyq_push(p, p->delivered_lsn, p->delivered_pos, h.leader_ts_ns);
		if (h.record_count > 0 && last > p->engine_start_lsn &&
		    (rc = p->ops.deliver(p->ops.ctx, &h, b, len)) < 0) {
			sl_proto_fail(p, rc);
			break;
		}
	}
	p->delivering = 0;
}

void sl_follower_deliver(struct sl_proto *p)
{
	deliver(p);
}

/* ---- receiving ---- */

static int batch_fits_chain(const struct sl_proto *p, const struct sl_batch_hdr *h)
{
	return h->position == p->log_end && h->base_lsn == p->next_lsn &&
	       h->prev_crc == p->last_crc && h->stream_id == p->cfg.stream_id &&
	       memcmp(h->cluster_id, p->cfg.cluster_id, sizeof(h->cluster_id)) == 0 &&
	       h->epoch <= p->cfg.epoch && h->epoch >= p->last_epoch;
}

static struct sl_slot *slot_at(const struct sl_proto *p, uint64_t pos)
{
	for (uint32_t i = 0; i < p->n_used; i++)
		if (p->used[i]->pos == pos)
			return p->used[i];
	return NULL;
}

static void slot_free(struct sl_proto *p, struct sl_slot *s)
{
	memset(s->bits, 0, bits_words(p) * sizeof(uint64_t));
	s->used = 0;
	for (uint32_t i = 0; i < p->n_used; i++)
		if (p->used[i] == s) {
			p->used[i] = p->used[--p->n_used];
			break;
		}
}

/* Move complete batches at the head of the gap into the log, in order. The
 * payload CRC comes from the fragments' CRCs, which their frames' CRCs
 * checked: the batch's bytes are not read again. */
static void advance(struct sl_proto *p)
{
	struct sl_slot *s;

	while ((s = slot_at(p, p->log_end)) && s->got == s->len &&
	       p->bq.n + !!p->el.reserve < p->bq.cap) {
		uint8_t *b = sl_ring_at(&p->ring, s->pos);
		uint32_t len = s->len;
		struct sl_batch_hdr h;
		struct sl_bdesc d;
		int rc = sl_batch_verify_crc(b, len, &p->cfg.limits,
					     sl_proto_payload_crc(p, b, len, s->fcrc), &h);

		slot_free(p, s);
		if (rc != (int)len || !batch_fits_chain(p, &h)) {
			p->frames_bad++; /* refetched through a NAK */
			return;
		}
		d = (struct sl_bdesc){.pos = h.position,
				      .base_lsn = h.base_lsn,
				      .ts = h.leader_ts_ns,
				      .len = (uint32_t)rc,
				      .count = h.record_count};
		sl_bq_push(&p->bq, &d);
		p->log_end += d.len;
		p->next_lsn += h.record_count;
		if (h.epoch != p->last_epoch && p->el.on)
			sl_epoch_map_note(&p->el.map, h.epoch, h.position, h.base_lsn, h.prev_crc);
		p->last_crc = h.hdr_crc;
		p->last_epoch = h.epoch;
		p->echo_recv_ts = h.leader_ts_ns;
		if (p->cfg.policy.level == SL_ACK_RECEIVED)
			p->status_dirty = 1;
		else
			p->report_pending = 1;
		rc = p->ops.write(p->ops.ctx, b, d.len, d.pos);
		if (rc < 0) {
			sl_proto_fail(p, rc);
			return;
		}
	}
}

static int overlaps(const struct sl_slot *s, uint64_t pos, uint32_t len)
{
	return s->pos < pos + len && pos < s->pos + s->len;
}

/* The slot for a batch: its own, a free one, or the one furthest ahead when
 * this batch is nearer the head of the gap (the head must always fit, or a
 * full table of later batches would block the log forever). Slots never
 * overlap: bytes another batch claims would change fragments whose CRCs a
 * slot already holds, so such a slot goes (the payload CRC settles which
 * batch was real). */
static struct sl_slot *slot_for(struct sl_proto *p, uint64_t pos, uint32_t len)
{
	struct sl_slot *s = slot_at(p, pos), *far = NULL;

	if (s)
		return s->len == len ? s : NULL;
	for (uint32_t i = 0; i < p->n_used;) {
		s = p->used[i];
		if (s->pos < p->log_end || overlaps(s, pos, len)) {
			slot_free(p, s); /* overtaken, or in the way */
			continue;
		}
		if (!far || s->pos > far->pos)
			far = s;
		i++;
	}
	if (p->n_used == SL_PROTO_SLOTS) {
		if (far->pos < pos)
			return NULL;
		slot_free(p, far);
	}
	for (s = p->slots; s->used; s++)
		assert(s < p->slots + SL_PROTO_SLOTS - 1);
	*s = (struct sl_slot){.pos = pos, .len = len, .bits = s->bits, .fcrc = s->fcrc, .used = 1};
	p->used[p->n_used++] = s;
	return s;
}

static void learn(struct sl_proto *p, uint64_t safe, uint64_t leader_end)
{
	if (!p->el.synced)
		return; /* positions in a log ours may not agree with yet */
	if (safe > p->safe_pos)
		p->safe_pos = p->commit_pos = safe;
	if (leader_end > p->leader_end)
		p->leader_end = leader_end;
}

/* A receipt goes in the STATUS of the batch's durability when the leader
 * waits for that anyway (a STATUS for the receipt alone would wake it for
 * nothing), and a delivery in the next batch's, below ack_level=applied; on
 * their own after this long: well within the tail-loss probe, so a slow
 * disk does not make the leader resend what arrived. */
static uint64_t report_delay(const struct sl_proto *p)
{
	return p->cfg.tlp_ns / 4;
}

static void note_report(struct sl_proto *p, uint64_t now)
{
	if (p->report_pending && !p->report_at)
		p->report_at = now;
	p->report_pending = 0;
	if (p->report_at && now - p->report_at >= report_delay(p))
		p->status_dirty = 1;
}

static void after_event(struct sl_proto *p, uint64_t now)
{
	if (p->failed)
		return;
	deliver(p);
	release(p);
	note_report(p, now);
	if (!p->el.synced)
		return; /* divergence repair first (diverge.c) */
	check_gap(p, now);
	if (p->status_dirty && !p->failed)
		send_status(p, now);
}

/* A fragment shaped as this node cuts batches: a batch no larger than one
 * can be, the fragment at a fragment boundary and of the length there. */
static int fragment_fits(const struct sl_proto *p, const struct sl_frame_data *d)
{
	uint32_t want =
	    d->batch_len - d->frag_off < p->frag_unit ? d->batch_len - d->frag_off : p->frag_unit;

	return d->batch_len <= p->enc_cap && d->batch_len >= SL_BATCH_HDR_SIZE &&
	       d->frag_off % p->frag_unit == 0 && d->frag_len == want;
}

/* The frame decoder's placement (sl_frame_decode_place): a fragment that may
 * be new goes straight to its place in the ring, copied while its CRC is
 * checked, so no byte is read twice. The frame is not verified yet, so only
 * bytes no received fragment holds qualify: past the log, within the window,
 * in no slot but this batch's own, whose fragment is still missing.
 * Anything else decodes where it arrived (NULL), as before. */
uint8_t *sl_follower_rx_dest(void *ctx, const struct sl_frame *f)
{
	struct sl_proto *p = ctx;
	const struct sl_frame_data *d = &f->data;
	uint32_t bit = d->frag_off / p->frag_unit;

	if (f->hdr.type != SL_FRAME_DATA || p->role != SL_ROLE_FOLLOWER || p->failed ||
	    !p->el.synced || !fragment_fits(p, d) || d->batch_pos < p->log_end ||
	    d->batch_pos > window_end(p) || d->batch_len > window_end(p) - d->batch_pos)
		return NULL;
	for (uint32_t i = 0; i < p->n_used; i++) {
		const struct sl_slot *s = p->used[i];

		if (s->pos < d->batch_pos + d->batch_len && d->batch_pos < s->pos + s->len &&
		    (s->pos != d->batch_pos || s->len != d->batch_len ||
		     (s->bits[bit / 64] >> (bit % 64) & 1)))
			return NULL;
	}
	return sl_ring_at(&p->ring, d->batch_pos) + d->frag_off;
}

/* A batch's first fragment names its LSNs: what the leader appended, even
 * if the batch never completes here (promote --force reports what a lost
 * leader may have taken). Kept for the latest leader's epoch only. */
static void heard(struct sl_proto *p, const uint8_t *b, uint32_t len)
{
	struct sl_batch_hdr h;

	if (sl_batch_decode_hdr(b, len, &p->cfg.limits, &h) < 0 || h.record_count == 0)
		return;
	if (p->heard_epoch != p->cfg.epoch) {
		p->heard_epoch = p->cfg.epoch;
		p->heard_lsn = 0;
	}
	if (h.base_lsn + h.record_count - 1 > p->heard_lsn)
		p->heard_lsn = h.base_lsn + h.record_count - 1;
}

static void place_fragment(struct sl_proto *p, const struct sl_frame_data *d, uint64_t now)
{
	uint8_t *dst;
	uint64_t end = d->batch_pos + d->batch_len;
	struct sl_slot *s;
	uint32_t bit = d->frag_off / p->frag_unit;

	if (end <= p->log_end) {
		p->dup_fragments++;
		p->status_dirty = 1; /* the leader may have missed our STATUS */
		return;
	}
	if (d->batch_pos < p->log_end || end > window_end(p)) {
		p->frames_bad += d->batch_pos < p->log_end;
		return;
	}
	s = slot_for(p, d->batch_pos, d->batch_len);
	if (!s)
		return; /* no room: a NAK will bring it back */
	if (s->bits[bit / 64] >> (bit % 64) & 1) {
		p->dup_fragments++;
		return;
	}
	dst = sl_ring_at(&p->ring, d->batch_pos) + d->frag_off;
	if (dst != d->frag) /* not placed by the decoder */
		memcpy(dst, d->frag, d->frag_len);
	s->fcrc[bit] = d->frag_crc;
	s->bits[bit / 64] |= 1ull << (bit % 64);
	s->got += d->frag_len;
	p->last_frag_ns = now;
	if (d->frag_off == 0)
		heard(p, dst, d->frag_len);
	if (d->batch_pos + d->frag_off + d->frag_len > p->highest_seen)
		p->highest_seen = d->batch_pos + d->frag_off + d->frag_len;
	if (s->got == s->len)
		advance(p);
}

void sl_follower_on_data(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	const struct sl_frame_data *d = &f->data;

	if (!fragment_fits(p, d)) {
		p->frames_bad++;
		return;
	}
	if (!p->el.synced)
		return; /* NAKed again once the logs are known to agree */
	/* With elections a new leader may send past our window before it knows
	 * where we are: its log end (on DATA too) is what makes us NAK and
	 * restate our position, even if our first STATUS was lost. */
	learn(p, d->commit_pos, p->el.on ? d->leader_end : 0);
	place_fragment(p, d, now);
	/* DATA stands in for heartbeats: answer it as often, even while no
	 * batch completes (a slow catch-up), or the leader's lease runs out. */
	if (now - p->last_status_sent >= p->cfg.heartbeat_ns)
		p->status_dirty = 1;
	after_event(p, now);
}

void sl_follower_on_heartbeat(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	learn(p, f->hb.commit_pos, f->hb.leader_end);
	/* Answer heartbeats at half their rate, so a lost STATUS is repaired. */
	if (now - p->last_status_sent >= p->cfg.heartbeat_ns / 2)
		p->status_dirty = 1;
	after_event(p, now);
}

void sl_follower_on_durable(struct sl_proto *p, uint64_t now)
{
	const struct sl_bdesc *d = sl_bq_find(&p->bq, p->durable_pos - 1);

	if (d)
		p->echo_durable_ts = d->ts;
	p->status_dirty = 1;
	after_event(p, now);
}

void sl_follower_on_applied(struct sl_proto *p, uint64_t lsn, uint64_t now)
{
	if (lsn > p->delivered_lsn)
		lsn = p->delivered_lsn; /* cannot apply what was not delivered */
	if (lsn <= p->applied_lsn)
		return;
	p->applied_lsn = lsn;
	while (p->applyq_n > 0 && p->applyq[p->applyq_head].last_lsn <= lsn) {
		p->applied_pos = p->applyq[p->applyq_head].end;
		p->echo_applied_ts = p->applyq[p->applyq_head].ts;
		p->applyq_head = (p->applyq_head + 1) % p->applyq_cap;
		p->applyq_n--;
	}
	if (p->cfg.policy.level == SL_ACK_APPLIED)
		p->status_dirty = 1;
	else
		p->report_pending = 1;
	/* An engine that acknowledges from inside deliver: the delivering event
	 * sends one STATUS for all it delivered, not one per batch. */
	if (!p->delivering)
		after_event(p, now);
}

void sl_follower_tick(struct sl_proto *p, uint64_t now)
{
	after_event(p, now);
}

uint64_t sl_follower_next_timer(const struct sl_proto *p)
{
	uint64_t limit = p->safe_pos < p->durable_pos ? p->safe_pos : p->durable_pos;
	uint64_t t = UINT64_MAX, g;

	if (p->delivered_pos < limit && p->rot_wait != p->delivered_pos + 1)
		return 0; /* delivery ran out of budget: continue at once */
	/* Progress not yet reported (note_report; after_event sends nothing
	 * while failed or repairing a divergence). */
	if ((p->report_pending || p->report_at) && !p->failed && p->el.synced)
		t = (p->report_at ? p->report_at : p->last_frag_ns) + report_delay(p);
	if (p->gap_since) {
		g = p->gap_since + p->cfg.nak_delay_ns;
		/* A tail alone waits for quiet (nak_target). */
		if (p->highest_seen <= p->log_end && p->last_frag_ns &&
		    p->last_frag_ns + p->cfg.tlp_ns > g)
			g = p->last_frag_ns + p->cfg.tlp_ns;
		if (p->last_nak && p->last_nak + nak_interval(p) > g)
			g = p->last_nak + nak_interval(p);
		if (g < t)
			t = g;
	}
	return t;
}
