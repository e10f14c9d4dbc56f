/* Leader half of the protocol: batching, sealing into the window, shipping
 * fragments to each follower within its receive window, NAK repair from
 * memory or disk, tail-loss probes, heartbeats and the commit rule. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"

int sl_leader_init(struct sl_proto *p)
{
	int req = sl_quorum_required(&p->cfg.policy, p->cfg.n_nodes);

	if (req < 0)
		return req;
	p->required = req;
	p->raw = malloc(p->raw_cap);
	if (!p->raw)
		return sl_err_set(ENOMEM, "batch buffer");
	sl_batch_builder_init(&p->builder, p->raw, p->raw_cap);
	p->commit_pos = p->safe_pos = p->durable_pos;
	p->commit_lsn = p->next_lsn - 1;
	for (uint32_t i = 0; i < p->cfg.n_nodes; i++) {
		struct sl_peer *peer;

		if (p->cfg.node_ids[i] == p->cfg.node_id)
			continue;
		peer = &p->peers[p->n_peers++];
		peer->id = p->cfg.node_ids[i];
		peer->sent_end = p->log_end;
		peer->window_end = p->log_end + p->cfg.rcv_window_bytes;
		peer->scratch_pos = UINT64_MAX;
		peer->scratch = malloc(p->enc_cap);
		peer->scratch_fcrc = malloc(p->frag_max * sizeof(uint32_t));
		if (!peer->scratch || !peer->scratch_fcrc)
			return sl_err_set(ENOMEM, "catch-up buffer");
	}
	return 0;
}

/* ---- fragment CRCs ---- */

static uint32_t *fcrc_run(const struct sl_proto *p, uint64_t fidx)
{
	return p->fcrc.c + fidx % p->fcrc.cap;
}

static uint32_t frag_len(const struct sl_proto *p, uint32_t len, uint32_t off)
{
	return len - off < p->frag_unit ? len - off : p->frag_unit;
}

/* The CRC of every fragment of the batch at b, one pass over its bytes. */
static void frag_crcs(const struct sl_proto *p, const uint8_t *b, uint32_t len, uint32_t *fcrc)
{
	for (uint32_t off = 0; off < len; off += p->frag_unit)
		*fcrc++ = sl_crc32c(0, b + off, frag_len(p, len, off));
}

/* A node that becomes leader holds batches it received as a follower,
 * whose fragments nobody checksummed here: index and checksum the window
 * once, so it can serve them (a pass over at most the window). */
void sl_leader_index_window(struct sl_proto *p)
{
	p->fcrc.next = 0;
	for (uint32_t i = 0; i < p->bq.n; i++) {
		struct sl_bdesc *d = sl_bq_at(&p->bq, i);

		d->fidx = p->fcrc.next;
		frag_crcs(p, sl_bq_bytes(p, d), d->len, fcrc_run(p, d->fidx));
		p->fcrc.next += sl_proto_nfrag(p, d->len);
	}
}

/* ---- shipping ---- */

/* The batch at `pos`, from the window, or from storage (cached per peer)
 * when it has left the window. 0, or -ENOENT. */
static int batch_at(struct sl_proto *p, struct sl_peer *peer, uint64_t pos, struct sl_bref *r)
{
	const struct sl_bdesc *d = sl_bq_find(&p->bq, pos);
	int n;

	if (d) {
		if (d->pos != pos)
			return -ENOENT;
		*r = (struct sl_bref){
		    .b = sl_bq_bytes(p, d), .fcrc = fcrc_run(p, d->fidx), .len = d->len};
		return 0;
	}
	if (pos >= p->log_end)
		return -ENOENT;
	if (peer->scratch_pos != pos) {
		n = p->ops.read(p->ops.ctx, pos, peer->scratch, p->enc_cap);
		if (n < SL_BATCH_HDR_SIZE || (uint32_t)n > p->enc_cap) {
			peer->scratch_pos = UINT64_MAX;
			sl_entropy_unreadable(p, pos); /* fetch it back */
			return -ENOENT;
		}
		peer->scratch_pos = pos;
		peer->scratch_len = (uint32_t)n;
		peer->catchup_batches++;
		frag_crcs(p, peer->scratch, peer->scratch_len, peer->scratch_fcrc);
	}
	*r = (struct sl_bref){
	    .b = peer->scratch, .fcrc = peer->scratch_fcrc, .len = peer->scratch_len, .disk = 1};
	return 0;
}

/* ---- catch-up throttling ---- */

#define CATCHUP_IDLE_NS 100000000ull /* no batch sealed this long: no live path */

/* Take `len` bytes of catch-up from the bucket: 1, or 0 when it must wait
 * (cu_wait_until says until when). A batch larger than what the bucket can
 * hold goes once it is full. With no live batch sealed for a while there is
 * no latency to keep: catch-up goes at once. */
static int catchup_take(struct sl_proto *p, uint32_t len, uint64_t now)
{
	uint64_t burst = (uint64_t)p->enc_cap > len ? p->enc_cap : len;

	if (now - p->live_ns > CATCHUP_IDLE_NS && now - p->live_ns > 10 * p->cfg.catchup_budget_ns)
		return 1;

	if (now > p->cu_fill_ns) {
		uint64_t add = (now - p->cu_fill_ns) > 1000000000ull
				   ? p->cu_rate
				   : p->cu_rate * (now - p->cu_fill_ns) / 1000000000ull;

		p->cu_tokens = p->cu_tokens + add > burst ? burst : p->cu_tokens + add;
		p->cu_fill_ns = now;
	}
	if (p->cu_tokens >= len) {
		p->cu_tokens -= len;
		return 1;
	}
	p->cu_throttled++;
	p->cu_wait_until = now + (len - p->cu_tokens) * 1000000000ull / p->cu_rate + 1;
	return 0;
}

/* A commit took `lat` from seal to commit: within the budget the catch-up
 * rate grows by an eighth, past it the rate halves (once per budget, so a
 * burst of slow commits is one signal). */
static void catchup_adapt(struct sl_proto *p, uint64_t lat, uint64_t now)
{
	p->commit_lat = lat;
	if (lat > p->cfg.catchup_budget_ns) {
		if (now - p->cu_cut_ns < p->cfg.catchup_budget_ns)
			return;
		p->cu_cut_ns = now;
		p->cu_cuts++;
		p->cu_rate /= 2;
		if (p->cu_rate < SL_PROTO_CATCHUP_RATE_MIN)
			p->cu_rate = SL_PROTO_CATCHUP_RATE_MIN;
	} else if (p->cu_rate < SL_PROTO_CATCHUP_RATE_MAX) {
		p->cu_rate += p->cu_rate / 8;
		if (p->cu_rate > SL_PROTO_CATCHUP_RATE_MAX)
			p->cu_rate = SL_PROTO_CATCHUP_RATE_MAX;
	}
}

/* Send the fragments of one batch covering [from, to) (offsets within it),
 * at most *budget frames. Returns the offset reached. */
static uint32_t send_frags(struct sl_proto *p, struct sl_peer *peer, const struct sl_bref *r,
			   uint64_t pos, uint32_t from, uint32_t to, uint32_t *budget, uint64_t now)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_DATA};
	uint32_t off = from - from % p->frag_unit;

	f.data.batch_pos = pos;
	f.data.batch_len = r->len;
	f.data.commit_pos = p->safe_pos;
	f.data.leader_end = p->log_end;
	for (; off<to && * budget> 0; off += p->frag_unit, (*budget)--) {
		f.data.frag_off = off;
		f.data.frag = r->b + off;
		f.data.frag_len = frag_len(p, r->len, off);
		if (sl_proto_send_data(p, peer->id, &peer->seq, &f, r->fcrc[off / p->frag_unit]) <
		    0)
			break;
	}
	peer->last_send_ns = now;
	peer->safe_sent = p->safe_pos;
	return off < to ? off : to;
}

/* Live sending to one follower, within its window and the frame budget. */
static void pump(struct sl_proto *p, struct sl_peer *peer, uint64_t now)
{
	uint32_t budget = p->cfg.send_budget;

	while (budget > 0 && peer->sent_end < p->log_end) {
		struct sl_bref r;
		uint32_t reached;

		if (batch_at(p, peer, peer->sent_end, &r) ||
		    peer->sent_end + r.len > peer->window_end)
			return;
		/* From disk, a batch goes whole once the bucket allows it. */
		if (r.disk && peer->frag_next == 0 && !catchup_take(p, r.len, now))
			return;
		reached =
		    send_frags(p, peer, &r, peer->sent_end, peer->frag_next, r.len, &budget, now);
		if (reached < r.len) {
			peer->frag_next = reached;
			return;
		}
		peer->frag_next = 0;
		peer->sent_end += r.len;
	}
}

static void pump_all(struct sl_proto *p, uint64_t now)
{
	for (uint32_t i = 0; i < p->n_peers; i++)
		pump(p, &p->peers[i], now);
}

/* ---- batching ---- */

/* Fragment CRCs held for the window's batches. */
static uint64_t fcrc_used(const struct sl_proto *p)
{
	return p->bq.n ? p->fcrc.next - sl_bq_at(&p->bq, 0)->fidx : 0;
}

/* Free committed, durable batches until `need` bytes fit in the window. */
static int make_room(struct sl_proto *p, uint64_t need)
{
	uint64_t freeable = p->commit_pos < p->durable_pos ? p->commit_pos : p->durable_pos;

	if (p->el.on && p->delivered_pos < freeable) /* an inherited tail to deliver */
		freeable = p->delivered_pos;

	while (p->log_end + need - sl_proto_ring_base(p) > p->ring.cap || p->bq.n == p->bq.cap ||
	       fcrc_used(p) + p->frag_max > p->fcrc.cap) {
		const struct sl_bdesc *d;

		if (p->bq.n == 0)
			return sl_err_set(ENOSPC, "batch of %llu bytes exceeds the window",
					  (unsigned long long)need);
		d = sl_bq_at(&p->bq, 0);
		if (d->pos + d->len > freeable)
			return -EAGAIN;
		sl_bq_give_back(p, sl_bq_at(&p->bq, 0));
		sl_bq_pop(&p->bq);
	}
	return 0;
}

/* With elections: the epoch map learns of a new epoch, the engine has what
 * it appended (it is caught up: appends wait for that), and the first batch
 * of an epoch is the floor commits wait for. */
static void sealed_by_elected(struct sl_proto *p, const struct sl_bdesc *d, uint32_t prev_crc)
{
	sl_epoch_map_note(&p->el.map, p->cfg.epoch, d->pos, d->base_lsn, prev_crc);
	if (p->delivered_pos == d->pos) {
		p->delivered_pos = p->log_end;
		p->delivered_lsn = p->next_lsn - 1;
	}
	if (p->el.barrier_due) {
		p->el.barrier_due = 0;
		p->el.floor = p->log_end;
	}
}

/* The header fields the leader owns, for the batch it seals next. */
static void own_fields(const struct sl_proto *p, struct sl_batch_hdr *h, uint64_t now)
{
	memcpy(h->cluster_id, p->cfg.cluster_id, sizeof(h->cluster_id));
	h->stream_id = p->cfg.stream_id;
	h->epoch = p->cfg.epoch;
	h->base_lsn = p->next_lsn;
	h->position = p->log_end;
	h->prev_crc = p->last_crc;
	h->leader_ts_ns = now;
}

/* An encoded batch at the log's end in the ring, its fragment CRCs at
 * fcrc.next: into the window, to storage and to the followers. */
static int add_batch(struct sl_proto *p, const struct sl_batch_hdr *h, uint8_t *b, uint32_t len,
		     uint8_t *lent, uint64_t now)
{
	struct sl_bdesc d = {.lent = lent,
			     .pos = p->log_end,
			     .base_lsn = h->base_lsn,
			     .ts = now,
			     .fidx = p->fcrc.next,
			     .len = len,
			     .count = h->record_count};
	int rc = sl_bq_push(&p->bq, &d);

	assert(rc == 0);
	p->fcrc.next += sl_proto_nfrag(p, len);
	p->live_ns = now;
	p->log_end += len;
	p->next_lsn += h->record_count;
	p->last_crc = h->hdr_crc;
	p->last_epoch = h->epoch;
	if (p->el.on)
		sealed_by_elected(p, &d, h->prev_crc);
	rc = p->ops.write(p->ops.ctx, b, len, d.pos);
	if (rc < 0) {
		sl_proto_fail(p, rc);
		return rc;
	}
	pump_all(p, now);
	return 0;
}

static int seal(struct sl_proto *p, uint64_t now)
{
	struct sl_batch_hdr h = {0};
	uint64_t need = sl_batch_bound(p->builder.len);
	uint32_t *fcrc;
	uint8_t *out;
	int len, rc;

	if (p->builder.count == 0 && !p->el.barrier_due)
		return 0;
	if ((rc = make_room(p, need))) {
		/* Retried when commits free the window, not by the linger timer. */
		p->seal_blocked = rc == -EAGAIN;
		return rc;
	}
	p->seal_blocked = 0;
	own_fields(p, &h, now);
	out = sl_ring_at(&p->ring, p->log_end);
	len = sl_batch_encode_accel(&h, p->raw, p->builder.len, p->builder.count, out, need,
				    (int)p->cfg.lz4_accel);
	assert(len > 0);
	if (len < 0)
		return len;
	fcrc = fcrc_run(p, p->fcrc.next);
	frag_crcs(p, out, (uint32_t)len, fcrc);
	assert(sl_proto_payload_crc(p, out, (uint32_t)len, fcrc) == h.payload_crc);
	sl_batch_builder_reset(&p->builder);
	p->open_ts = 0;
	return add_batch(p, &h, out, (uint32_t)len, NULL, now);
}

/* 0 when this node takes appends now, or why not. */
static int leader_ready(struct sl_proto *p)
{
	if (p->role != SL_ROLE_LEADER)
		return sl_err_set(EPERM, "node %u is not the leader (node %u is, 0: unknown)",
				  p->cfg.node_id, p->cfg.leader_id);
	if (p->failed)
		return p->failed;
	/* A new leader first seals its epoch's first batch, then commits and
	 * delivers what it inherited. */
	if (p->el.on &&
	    (p->delivered_pos < p->log_end || p->el.floor == UINT64_MAX || p->el.transfer_to))
		return -EAGAIN;
	return 0;
}

int64_t sl_proto_append(struct sl_proto *p, const void *rec, uint32_t len, uint64_t now)
{
	int rc;

	if ((rc = leader_ready(p)))
		return rc;
	if (len > p->cfg.limits.max_record_bytes)
		return sl_err_set(EMSGSIZE, "record of %u bytes over the limit %u", len,
				  p->cfg.limits.max_record_bytes);
	if (p->builder.count > 0 && p->builder.len + SL_REC_PREFIX + len > p->cfg.batch_bytes &&
	    (rc = seal(p, now)))
		return rc;
	rc = sl_batch_builder_add(&p->builder, rec, len);
	assert(rc == 0);
	if (p->builder.count == 1)
		p->open_ts = now;
	if (p->builder.len >= p->cfg.batch_bytes)
		seal(p, now); /* -EAGAIN keeps the batch open; the next call retries */
	return (int64_t)(p->next_lsn + p->builder.count - 1);
}

/* A new leader's first batch, in its epoch: empty, or the open batch. */
int sl_leader_seal_barrier(struct sl_proto *p, uint64_t now)
{
	p->el.barrier_due = 1;
	return seal(p, now);
}

/* Ready for an encoded batch, any open batch sealed first: 0, or why not. */
static int encoded_ready(struct sl_proto *p, const struct sl_batch_hdr *h, uint64_t now)
{
	int rc;

	if ((rc = leader_ready(p)))
		return rc;
	if (h->record_count == 0 || h->raw_len > p->raw_cap)
		return sl_err_set(h->record_count ? EMSGSIZE : EINVAL,
				  "encoded batch of %u records, raw_len %u (at most %u)",
				  h->record_count, h->raw_len, p->raw_cap);
	return p->builder.count > 0 ? seal(p, now) : 0;
}

/* The payload CRC the caller gave, against the one its fragments make. */
static int check_payload(const struct sl_proto *p, const struct sl_batch_hdr *h, const uint8_t *b,
			 uint32_t len, const uint32_t *fcrc)
{
	if (sl_proto_payload_crc(p, b, len, fcrc) != h->payload_crc)
		return sl_err_set(EINVAL,
				  "encoded batch at lsn %llu: payload CRC 0x%08x does "
				  "not match its %u bytes",
				  (unsigned long long)h->base_lsn, h->payload_crc, h->stored_len);
	return 0;
}

/* Copy a payload behind its header at b, CRCing each fragment on the way. */
static void copy_frags(const struct sl_proto *p, uint8_t *b, const uint8_t *payload, uint32_t len,
		       uint32_t *fcrc)
{
	uint32_t u = p->frag_unit;

	*fcrc++ = sl_crc32c_copy(sl_crc32c(0, b, SL_BATCH_HDR_SIZE), b + SL_BATCH_HDR_SIZE, payload,
				 frag_len(p, len, 0) - SL_BATCH_HDR_SIZE);
	for (uint32_t off = u; off < len; off += u)
		*fcrc++ = sl_crc32c_copy(0, b + off, payload + off - SL_BATCH_HDR_SIZE,
					 frag_len(p, len, off));
}

int64_t sl_proto_append_encoded(struct sl_proto *p, const struct sl_batch_hdr *in,
				const uint8_t *payload, uint64_t now)
{
	struct sl_batch_hdr h = *in;
	uint32_t *fcrc, len;
	uint8_t *out;
	int rc;

	if ((rc = encoded_ready(p, &h, now)))
		return rc;
	/* stored_len is checked against raw_len by the header's encoding. */
	if ((rc = make_room(p, SL_BATCH_HDR_SIZE + (uint64_t)h.raw_len)))
		return rc;
	own_fields(p, &h, now);
	out = sl_ring_at(&p->ring, p->log_end);
	if ((rc = sl_batch_encode_hdr(&h, &p->cfg.limits, out)) < 0)
		return rc;
	len = (uint32_t)rc;
	fcrc = fcrc_run(p, p->fcrc.next);
	copy_frags(p, out, payload, len, fcrc);
	if ((rc = check_payload(p, &h, out, len, fcrc)))
		return rc;
	if ((rc = add_batch(p, &h, out, len, NULL, now)))
		return rc;
	return (int64_t)(h.base_lsn + h.record_count - 1);
}

int64_t sl_proto_append_ref(struct sl_proto *p, const struct sl_batch_hdr *in, uint8_t *batch,
			    uint64_t now)
{
	struct sl_batch_hdr h = *in;
	uint32_t *fcrc, len;
	int rc;

	if (!p->ops.release)
		return sl_err_set(EINVAL, "lent batches need the release op");
	if ((rc = encoded_ready(p, &h, now)))
		return rc;
	if ((rc = make_room(p, SL_BATCH_HDR_SIZE + (uint64_t)h.raw_len)))
		return rc;
	own_fields(p, &h, now);
	if ((rc = sl_batch_encode_hdr(&h, &p->cfg.limits, batch)) < 0)
		return rc;
	len = (uint32_t)rc;
	fcrc = fcrc_run(p, p->fcrc.next);
	frag_crcs(p, batch, len, fcrc);
	if ((rc = check_payload(p, &h, batch, len, fcrc)))
		return rc;
	if ((rc = add_batch(p, &h, batch, len, batch, now))) {
		/* The write failed, and with it the node: its window keeps a
		 * copy, the caller its buffer, as an error says. */
		struct sl_bdesc *d = sl_bq_at(&p->bq, p->bq.n - 1);

		memcpy(sl_ring_at(&p->ring, d->pos), batch, len);
		d->lent = NULL;
		return rc;
	}
	return (int64_t)(h.base_lsn + h.record_count - 1);
}

/* A node that stops leading keeps its window as a follower's log, in the
 * ring (where each lent batch's positions are reserved), and gives the lent
 * buffers back. */
void sl_leader_keep_window(struct sl_proto *p)
{
	for (uint32_t i = 0; i < p->bq.n; i++) {
		struct sl_bdesc *d = sl_bq_at(&p->bq, i);

		if (!d->lent)
			continue;
		memcpy(sl_ring_at(&p->ring, d->pos), d->lent, d->len);
		sl_bq_give_back(p, d);
	}
}

int sl_proto_flush(struct sl_proto *p, uint64_t now)
{
	if (p->role != SL_ROLE_LEADER)
		return -EPERM;
	if (p->failed)
		return p->failed;
	return seal(p, now);
}

/* ---- commit ---- */

static uint64_t level_pos(const struct sl_peer *peer, enum sl_ack_level l)
{
	return l == SL_ACK_RECEIVED  ? peer->received
	       : l == SL_ACK_DURABLE ? peer->durable
				     : peer->applied;
}

static uint64_t quorum_at(const struct sl_proto *p, enum sl_ack_level l, unsigned required)
{
	uint64_t pos[SL_NODES_MAX];

	for (uint32_t i = 0; i < p->n_peers; i++)
		pos[i] = level_pos(&p->peers[i], l);
	return sl_quorum_commit(&p->cfg.policy, p->log_end, p->durable_pos, pos, p->n_peers,
				required);
}

/* The last LSN of the batch ending at `pos` (a batch boundary in the window
 * at or after the current commit position). */
static uint64_t lsn_at_end(const struct sl_proto *p, uint64_t pos)
{
	const struct sl_bdesc *d;

	if (pos == 0)
		return 0;
	d = sl_bq_find(&p->bq, pos - 1);
	assert(d && d->pos + d->len == pos);
	return d ? d->base_lsn + d->count - 1 : p->commit_lsn;
}

static void tell_safe(struct sl_proto *p, uint64_t now)
{
	for (uint32_t i = 0; i < p->n_peers; i++) {
		struct sl_peer *peer = &p->peers[i];
		struct sl_frame f = {.hdr.type = SL_FRAME_HEARTBEAT};

		if (peer->safe_sent >= p->safe_pos)
			continue;
		f.hb = (struct sl_frame_hb){
		    .leader_end = p->log_end, .commit_pos = p->safe_pos, .leader_ts = now};
		sl_proto_send(p, peer->id, &peer->seq, &f);
		peer->safe_sent = p->safe_pos;
		peer->last_send_ns = now;
	}
}

static void recompute_commit(struct sl_proto *p, uint64_t now)
{
	enum sl_ack_level l = p->cfg.policy.level;
	uint64_t quorum = quorum_at(p, l, (unsigned)p->required);
	uint64_t c = p->degraded ? quorum_at(p, l, 0) : quorum;
	uint64_t safe;

	if (c < p->el.floor) /* a new leader commits nothing before its own first batch */
		c = p->commit_pos;

	if (p->degraded && quorum >= p->degrade_mark)
		p->degraded = 0; /* the acks came back for what we committed alone */
	if (c > p->commit_pos) {
		const struct sl_bdesc *last = sl_bq_find(&p->bq, c - 1);

		if (last && now > last->ts)
			catchup_adapt(p, now - last->ts, now);
		p->commit_lsn = lsn_at_end(p, c);
		p->commit_pos = c;
		p->blocked_since = 0;
		p->ops.commit(p->ops.ctx, p->commit_lsn, c);
	}
	/* Followers deliver what cannot be lost: with ack_level=applied that is
	 * the durable quorum, which applied acks then follow. */
	safe = l == SL_ACK_APPLIED
		   ? quorum_at(p, SL_ACK_DURABLE, p->degraded ? 0 : (unsigned)p->required)
		   : p->commit_pos;
	if (safe < p->el.floor)
		safe = p->safe_pos;
	if (safe < p->commit_pos)
		safe = p->commit_pos;
	if (safe > p->safe_pos) {
		p->safe_pos = safe;
		tell_safe(p, now);
	}
	if (p->delivered_pos < p->el.floor)
		sl_follower_deliver(p); /* the tail a new leader inherited */
}

/* A batch that could not be sealed for lack of window goes out as soon as
 * commits have freed room, if it is full or has lingered long enough. */
static void retry_seal(struct sl_proto *p, uint64_t now)
{
	if (p->seal_blocked &&
	    (p->builder.len >= p->cfg.batch_bytes || now - p->open_ts >= p->cfg.linger_ns))
		seal(p, now);
}

void sl_leader_on_durable(struct sl_proto *p, uint64_t now)
{
	recompute_commit(p, now);
	retry_seal(p, now);
}

/* ---- follower feedback ---- */

static struct sl_peer *peer_of(struct sl_proto *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->n_peers; i++)
		if (p->peers[i].id == id)
			return &p->peers[i];
	return NULL;
}

static uint64_t lag_since(uint64_t now, uint64_t ts)
{
	return ts && now > ts ? now - ts : 0;
}

void sl_leader_on_status(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	struct sl_peer *peer = peer_of(p, f->hdr.sender);
	const struct sl_frame_status *s = &f->status;

	if (!peer || s->received_pos > p->log_end || s->durable_pos > s->received_pos ||
	    s->applied_pos > s->durable_pos) {
		p->frames_bad++;
		return;
	}
	if (s->received_pos > peer->received || s->durable_pos > peer->durable ||
	    s->applied_pos > peer->applied)
		peer->last_progress_ns = now;
	if (s->received_pos != peer->received)
		peer->write_lag = lag_since(now, s->echo_received_ts);
	if (s->durable_pos != peer->durable)
		peer->flush_lag = lag_since(now, s->echo_durable_ts);
	if (s->applied_pos != peer->applied)
		peer->apply_lag = lag_since(now, s->echo_applied_ts);
	peer->received = s->received_pos;
	peer->durable = s->durable_pos;
	peer->applied = s->applied_pos;
	peer->applied_lsn = s->applied_lsn;
	peer->window_end = s->window_end;
	peer->last_status_ns = now;
	/* A follower that restarted behind what we sent resumes from its end. */
	if (peer->received < peer->sent_end &&
	    peer->received + p->cfg.rcv_window_bytes < peer->sent_end) {
		peer->sent_end = peer->received;
		peer->frag_next = 0;
	}
	recompute_commit(p, now);
	retry_seal(p, now);
	pump(p, peer, now);
}

/* The start of the batch that holds `pos`. Inside the window the index says;
 * beyond it, walk the log from the follower's contiguous end, which is a
 * batch boundary (a bounded number of storage reads). 0, or -ENOENT. */
static int batch_start(struct sl_proto *p, struct sl_peer *peer, uint64_t pos, uint64_t *start)
{
	const struct sl_bdesc *d = sl_bq_find(&p->bq, pos);
	uint64_t b = peer->received;

	if (d) {
		*start = d->pos;
		return 0;
	}
	if (b > pos || pos >= sl_proto_ring_base(p))
		return -ENOENT;
	for (int steps = 0; steps < 16; steps++) {
		struct sl_bref r;

		if (batch_at(p, peer, b, &r))
			return -ENOENT;
		if (pos < b + r.len) {
			*start = b;
			return 0;
		}
		b += r.len;
	}
	return -ENOENT;
}

/* A NAK that arrives within half a NAK interval of our resending the same
 * bytes crossed that resend on the wire: skip what was just resent, so
 * repair traffic does not multiply under loss or congestion. */
static uint64_t skip_recent(const struct sl_proto *p, const struct sl_peer *peer, uint64_t pos,
			    uint64_t now)
{
	for (int moved = 1, rounds = 0; moved && rounds < SL_PROTO_REXMIT_MEMO; rounds++) {
		moved = 0;
		for (int i = 0; i < SL_PROTO_REXMIT_MEMO; i++) {
			const struct sl_rexmit *m = &peer->memo[i];

			if (m->to > pos && m->from <= pos &&
			    now - m->at < p->cfg.nak_interval_ns / 2) {
				pos = m->to;
				moved = 1;
			}
		}
	}
	return pos;
}

/* Resend what a follower reports missing, [from, to), from the window or
 * from disk, within the frame budget and the follower's window. */
void sl_leader_on_nak(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	struct sl_peer *peer = peer_of(p, f->hdr.sender);
	uint64_t pos = f->nak.from_pos, to = f->nak.to_pos, start, from;
	uint32_t budget = p->cfg.send_budget;

	p->naks_received++;
	if (!peer)
		return;
	peer->naks++;
	if (to > peer->sent_end)
		to = peer->sent_end;
	if (to > peer->window_end)
		to = peer->window_end;
	pos = skip_recent(p, peer, pos, now);
	from = pos;
	while (pos < to && budget > 0 && batch_start(p, peer, pos, &start) == 0) {
		uint32_t end, reached, before = budget;
		struct sl_bref r;

		if (batch_at(p, peer, start, &r))
			return;
		end = to - start < r.len ? (uint32_t)(to - start) : r.len;
		reached =
		    send_frags(p, peer, &r, start, (uint32_t)(pos - start), end, &budget, now);
		peer->retransmits += before - budget;
		p->retransmits += before - budget;
		if (reached < end) {
			pos = start + reached;
			break; /* out of budget */
		}
		pos = start + r.len;
	}
	if (pos > from)
		peer->memo[peer->memo_next++ % SL_PROTO_REXMIT_MEMO] =
		    (struct sl_rexmit){.from = from, .to = pos, .at = now};
}

/* ---- timers ---- */

static void probe_tail(struct sl_proto *p, struct sl_peer *peer, uint64_t now)
{
	const struct sl_bdesc *d;
	struct sl_bref r;
	uint32_t budget = 1, last;

	/* Probe while anything sent is unacknowledged at the policy's level:
	 * the resent fragment makes the follower NAK a gap or repeat its STATUS. */
	if (level_pos(peer, p->cfg.policy.level) >= peer->sent_end || peer->sent_end == 0 ||
	    now - peer->last_progress_ns < p->cfg.tlp_ns || now - peer->last_tlp_ns < p->cfg.tlp_ns)
		return;
	peer->last_tlp_ns = now;
	/* Past the window (a catching-up follower) NAKs and heartbeats repair. */
	d = sl_bq_find(&p->bq, peer->sent_end - 1);
	if (!d)
		return;
	last = (d->len - 1) / p->frag_unit * p->frag_unit;
	r = (struct sl_bref){.b = sl_bq_bytes(p, d), .fcrc = fcrc_run(p, d->fidx), .len = d->len};
	send_frags(p, peer, &r, d->pos, last, d->len, &budget, now);
	p->tlps++;
}

static void check_ack_timeout(struct sl_proto *p, uint64_t now)
{
	const struct sl_bdesc *d;

	if (!p->cfg.policy.timeout_ns || p->commit_pos >= p->log_end || p->degraded)
		return;
	d = sl_bq_find(&p->bq, p->commit_pos);
	if (!d || now - d->ts < p->cfg.policy.timeout_ns)
		return;
	if (p->cfg.policy.on_timeout == SL_ON_TIMEOUT_DEGRADE) {
		p->degraded = 1;
		p->degrade_events++;
		p->degrade_mark = p->log_end;
		recompute_commit(p, now);
	} else if (!p->blocked_since) {
		p->blocked_since = d->ts + p->cfg.policy.timeout_ns;
	}
}

void sl_leader_tick(struct sl_proto *p, uint64_t now)
{
	if (p->cu_wait_until && now >= p->cu_wait_until)
		p->cu_wait_until = 0; /* pump below tries again */
	if (p->open_ts && !p->seal_blocked && now - p->open_ts >= p->cfg.linger_ns)
		seal(p, now);
	check_ack_timeout(p, now);
	for (uint32_t i = 0; i < p->n_peers; i++) {
		struct sl_peer *peer = &p->peers[i];

		pump(p, peer, now);
		probe_tail(p, peer, now);
		if (now - peer->last_send_ns >= p->cfg.heartbeat_ns) {
			struct sl_frame f = {.hdr.type = SL_FRAME_HEARTBEAT};

			f.hb = (struct sl_frame_hb){
			    .leader_end = p->log_end, .commit_pos = p->safe_pos, .leader_ts = now};
			sl_proto_send(p, peer->id, &peer->seq, &f);
			peer->safe_sent = p->safe_pos;
			peer->last_send_ns = now;
		}
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t sl_leader_next_timer(const struct sl_proto *p)
{
	uint64_t t = UINT64_MAX;

	if (p->open_ts && !p->seal_blocked)
		t = p->open_ts + p->cfg.linger_ns;
	if (p->cfg.policy.timeout_ns && p->commit_pos < p->log_end && !p->degraded &&
	    !p->blocked_since) {
		const struct sl_bdesc *d = sl_bq_find(&p->bq, p->commit_pos);

		if (d)
			t = min_u64(t, d->ts + p->cfg.policy.timeout_ns);
	}
	if (p->cu_wait_until)
		t = min_u64(t, p->cu_wait_until);
	for (uint32_t i = 0; i < p->n_peers; i++) {
		const struct sl_peer *peer = &p->peers[i];

		t = min_u64(t, peer->last_send_ns + p->cfg.heartbeat_ns);
		if (level_pos(peer, p->cfg.policy.level) < peer->sent_end)
			t = min_u64(t, (peer->last_progress_ns > peer->last_tlp_ns
					    ? peer->last_progress_ns
					    : peer->last_tlp_ns) +
					   p->cfg.tlp_ns);
	}
	return t;
}
