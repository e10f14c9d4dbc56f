/* The replication protocol: configuration, memory, frame validation and
 * dispatch, status. Leader and follower logic live in proto_leader.c and
 * proto_follower.c. See include/shiplog/proto.h. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"

void sl_proto_config_defaults(struct sl_proto_config *c)
{
	if (!c->mtu)
		c->mtu = 1500;
	if (!c->batch_bytes)
		c->batch_bytes = 64 << 10;
	if (!c->linger_ns)
		c->linger_ns = 100000;
	if (!c->lz4_accel)
		c->lz4_accel = 1;
	if (!c->window_bytes)
		c->window_bytes = 16 << 20;
	if (!c->rcv_window_bytes)
		c->rcv_window_bytes = 8 << 20;
	if (!c->heartbeat_ns)
		c->heartbeat_ns = SL_PROTO_HEARTBEAT_DEFAULT;
	if (!c->nak_delay_ns)
		c->nak_delay_ns = 200000;
	if (!c->nak_interval_ns)
		c->nak_interval_ns = 1000000;
	if (!c->tlp_ns)
		c->tlp_ns = 2000000;
	if (!c->send_budget)
		c->send_budget = 256;
	if (!c->limits.max_raw_bytes)
		c->limits = sl_batch_default_limits;
	if (!c->election_timeout_ns)
		c->election_timeout_ns = SL_PROTO_ELECTION_TIMEOUT_DEFAULT;
	if (!c->entropy_interval_ns)
		c->entropy_interval_ns = SL_PROTO_ENTROPY_INTERVAL_DEFAULT;
	if (!c->catchup_budget_ns)
		c->catchup_budget_ns = SL_PROTO_CATCHUP_BUDGET_DEFAULT;
}

/* ---- batch descriptor FIFO ---- */

struct sl_bdesc *sl_bq_at(const struct sl_bq *q, uint32_t i)
{
	assert(i < q->n);
	return &q->d[(q->head + i) % q->cap];
}

/* The descriptor of the batch that contains `pos`, or NULL. */
struct sl_bdesc *sl_bq_find(const struct sl_bq *q, uint64_t pos)
{
	uint32_t lo = 0, hi = q->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct sl_bdesc *d = sl_bq_at(q, mid);

		if (pos < d->pos)
			hi = mid;
		else if (pos >= d->pos + d->len)
			lo = mid + 1;
		else
			return d;
	}
	return NULL;
}

int sl_bq_push(struct sl_bq *q, const struct sl_bdesc *d)
{
	if (q->n == q->cap)
		return -EAGAIN;
	assert(q->n == 0 || sl_bq_at(q, q->n - 1)->pos + sl_bq_at(q, q->n - 1)->len == d->pos);
	q->d[(q->head + q->n) % q->cap] = *d;
	q->n++;
	return 0;
}

void sl_bq_pop(struct sl_bq *q)
{
	assert(q->n > 0);
	q->head = (q->head + 1) % q->cap;
	q->n--;
}

/* A batch leaves the window: a lent buffer goes back to its owner. */
void sl_bq_give_back(struct sl_proto *p, struct sl_bdesc *d)
{
	if (d->lent) {
		p->ops.release(p->ops.ctx, d->lent);
		d->lent = NULL;
	}
}

/* Oldest position still held in memory. */
uint64_t sl_proto_ring_base(const struct sl_proto *p)
{
	return p->bq.n ? sl_bq_at(&p->bq, 0)->pos : p->log_end;
}

/* ---- common ---- */

static int check_config(const struct sl_proto_config *c)
{
	int found = 0, leader = 0;

	if (c->n_nodes < 1 || c->n_nodes > SL_NODES_MAX)
		return sl_err_set(EINVAL, "n_nodes %u: must be 1..%d", c->n_nodes, SL_NODES_MAX);
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		if (c->node_ids[i] == 0)
			return sl_err_set(EINVAL, "node id 0 is reserved");
		for (uint32_t j = 0; j < i; j++)
			if (c->node_ids[i] == c->node_ids[j])
				return sl_err_set(EINVAL, "duplicate node id %u", c->node_ids[i]);
		found |= c->node_ids[i] == c->node_id;
		leader |= c->node_ids[i] == c->leader_id;
	}
	leader |= c->elect && c->leader_id == 0; /* joins a running cluster */
	if (!found || !leader)
		return sl_err_set(EINVAL, "node %u or leader %u is not in the cluster", c->node_id,
				  c->leader_id);
	if (c->epoch == 0)
		return sl_err_set(EINVAL, "epoch 0 is reserved");
	if (sl_frame_frag_max(c->mtu, 0) < 256)
		return sl_err_set(EINVAL, "mtu %u too small", c->mtu);
	if (c->limits.max_raw_bytes > SL_BATCH_RAW_MAX || c->batch_bytes > c->limits.max_raw_bytes)
		return sl_err_set(EINVAL, "batch_bytes %u over the raw limit %u", c->batch_bytes,
				  c->limits.max_raw_bytes);
	if (c->lz4_accel > SL_BATCH_ACCEL_MAX)
		return sl_err_set(EINVAL, "lz4 acceleration %u over %d", c->lz4_accel,
				  SL_BATCH_ACCEL_MAX);
	if (sl_quorum_required(&c->policy, c->n_nodes) < 0)
		return -EINVAL;
	return 0;
}

static int alloc_memory(struct sl_proto *p)
{
	uint64_t cap = p->role == SL_ROLE_LEADER ? p->cfg.window_bytes : p->cfg.rcv_window_bytes;
	uint32_t min_batch = SL_BATCH_HDR_SIZE;

	if (p->cfg.elect) /* either role, one ring; a follower offers its window */
		cap = p->cfg.window_bytes > p->cfg.rcv_window_bytes ? p->cfg.window_bytes
								    : p->cfg.rcv_window_bytes;
	if (cap < 4ull * p->enc_cap)
		cap = 4ull * p->enc_cap;
	p->el.rcv_cap = p->cfg.elect ? p->cfg.rcv_window_bytes : cap;
	if (p->el.rcv_cap < 4ull * p->enc_cap)
		p->el.rcv_cap = 4ull * p->enc_cap;
	p->ring.cap = cap;
	p->ring.slack = p->enc_cap;
	p->ring.buf = malloc(cap + p->enc_cap);
	/* Enough descriptors for a window of small batches, within reason. */
	p->bq.cap = (uint32_t)(cap / (min_batch * 4));
	if (p->bq.cap < SL_PROTO_DESC_MIN)
		p->bq.cap = SL_PROTO_DESC_MIN;
	if (p->bq.cap > (1u << 18))
		p->bq.cap = 1u << 18;
	p->bq.d = calloc(p->bq.cap, sizeof(*p->bq.d));
	p->scratch = malloc(p->enc_cap);
	if (p->role == SL_ROLE_LEADER || p->cfg.elect) {
		/* Batches in the window hold at most cap / unit + one partial
		 * fragment each: this never runs out before the window does. */
		p->fcrc.cap = cap / p->frag_unit + p->bq.cap + 1;
		p->fcrc.c = malloc((p->fcrc.cap + p->frag_max) * sizeof(uint32_t));
	}
	if (!p->ring.buf || !p->bq.d || !p->scratch ||
	    ((p->role == SL_ROLE_LEADER || p->cfg.elect) && !p->fcrc.c))
		return sl_err_set(ENOMEM, "protocol buffers (%llu bytes of window)",
				  (unsigned long long)cap);
	return 0;
}

/* The CRC of bytes SL_BATCH_HDR_SIZE..len of the batch at b (its payload),
 * combined from the CRCs of its fragments: no byte of the payload is read.
 * The first fragment's CRC loses the header's bytes, the others append. */
uint32_t sl_proto_payload_crc(const struct sl_proto *p, const uint8_t *b, uint32_t len,
			      const uint32_t *fcrc)
{
	uint32_t u = p->frag_unit, n = sl_proto_nfrag(p, len),
		 hdr = sl_crc32c(0, b, SL_BATCH_HDR_SIZE);
	uint32_t c;

	assert(len >= SL_BATCH_HDR_SIZE && n >= 1);
	if (n == 1)
		return sl_crc32c_combine(hdr, fcrc[0], len - SL_BATCH_HDR_SIZE);
	c = sl_crc32c_combine_op(p->op_first, hdr, fcrc[0]);
	for (uint32_t k = 1; k + 1 < n; k++)
		c = sl_crc32c_combine_op(p->op_unit, c, fcrc[k]);
	return sl_crc32c_combine(c, fcrc[n - 1], len - (n - 1) * u);
}

int sl_proto_create(struct sl_proto **out, const struct sl_proto_config *c,
		    const struct sl_log_state *log, const struct sl_proto_ops *ops)
{
	struct sl_proto *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p)
		return sl_err_set(ENOMEM, "protocol state");
	p->cfg = *c;
	sl_proto_config_defaults(&p->cfg);
	if ((rc = check_config(&p->cfg))) {
		free(p);
		return sl_err_wrap(rc, "protocol config");
	}
	p->ops = *ops;
	if (p->cfg.elect && (!ops->persist || !ops->truncate)) {
		free(p);
		return sl_err_set(EINVAL, "protocol config: elections need the persist and "
					  "truncate ops");
	}
	p->role = c->node_id == c->leader_id ? SL_ROLE_LEADER : SL_ROLE_FOLLOWER;
	p->el.synced = 1;
	p->frag_unit = sl_frame_frag_max(p->cfg.mtu, 0);
	p->op_unit = sl_crc32c_op(p->frag_unit);
	p->op_first = sl_crc32c_op(p->frag_unit - SL_BATCH_HDR_SIZE);
	p->raw_cap = p->cfg.batch_bytes > p->cfg.limits.max_record_bytes + SL_REC_PREFIX
			 ? p->cfg.batch_bytes
			 : p->cfg.limits.max_record_bytes + SL_REC_PREFIX;
	if (p->raw_cap > p->cfg.limits.max_raw_bytes)
		p->raw_cap = p->cfg.limits.max_raw_bytes;
	p->enc_cap = (uint32_t)sl_batch_bound(p->raw_cap);
	p->frag_max = sl_proto_nfrag(p, p->enc_cap);
	p->log_end = log->next_pos;
	p->next_lsn = log->next_lsn ? log->next_lsn : 1;
	p->last_crc = log->last_crc;
	p->durable_pos = log->durable_pos;
	p->cu_rate = SL_PROTO_CATCHUP_RATE_START; /* kept across terms as leader */
	if ((rc = alloc_memory(p)) || (rc = sl_entropy_init(p)))
		goto err_free;
	if (p->cfg.elect)
		rc = sl_role_init(p, log);
	else
		rc = p->role == SL_ROLE_LEADER ? sl_leader_init(p) : sl_follower_init(p, log);
	if (rc)
		goto err_free;
	*out = p;
	return 0;
err_free:
	sl_proto_destroy(p);
	return rc;
}

void sl_proto_destroy(struct sl_proto *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; p->bq.d && i < p->bq.n; i++)
		sl_bq_give_back(p, sl_bq_at(&p->bq, i));
	for (uint32_t i = 0; i < p->n_peers; i++) {
		free(p->peers[i].scratch);
		free(p->peers[i].scratch_fcrc);
	}
	for (int i = 0; i < SL_PROTO_SLOTS; i++) {
		free(p->slots[i].bits);
		free(p->slots[i].fcrc);
	}
	free(p->fcrc.c);
	free(p->applyq);
	free(p->raw);
	free(p->scratch);
	free(p->bq.d);
	free(p->ring.buf);
	sl_entropy_free(p);
	free(p);
}

static void fill_hdr(const struct sl_proto *p, uint32_t to, uint64_t *seq, struct sl_frame *f)
{
	memcpy(f->hdr.cluster_id, p->cfg.cluster_id, sizeof(f->hdr.cluster_id));
	f->hdr.stream_id = p->cfg.stream_id;
	f->hdr.epoch = p->cfg.epoch;
	f->hdr.sender = p->cfg.node_id;
	f->hdr.receiver = to;
	f->hdr.flags = 0;
	f->hdr.seq = ++*seq;
}

/* Encode and send one frame whole, filling the common header. */
int sl_proto_send(struct sl_proto *p, uint32_t to, uint64_t *seq, struct sl_frame *f)
{
	int len, rc;

	fill_hdr(p, to, seq, f);
	len = sl_frame_encode(f, p->frame, sizeof(p->frame));
	assert(len > 0);
	if (len < 0)
		return len;
	p->frames_out++;
	rc = p->ops.send(p->ops.ctx, to, p->frame, (size_t)len, NULL, 0);
	return rc < 0 ? rc : 0;
}

/* Send a DATA frame as its prefix and the fragment where it lies, with the
 * fragment's CRC already known: no fragment byte is copied or read. */
int sl_proto_send_data(struct sl_proto *p, uint32_t to, uint64_t *seq, struct sl_frame *f,
		       uint32_t frag_crc)
{
	int len, rc;

	fill_hdr(p, to, seq, f);
	len = sl_frame_encode_prefix_crc(f, frag_crc, p->frame, sizeof(p->frame));
	assert(len == SL_FRAME_DATA_PREFIX);
	if (len < 0)
		return len;
	p->frames_out++;
	rc = p->ops.send(p->ops.ctx, to, p->frame, (size_t)len, f->data.frag, f->data.frag_len);
	return rc < 0 ? rc : 0;
}

void sl_proto_fail(struct sl_proto *p, int err)
{
	if (!p->failed)
		p->failed = err < 0 ? err : -EIO;
}

static int known_node(const struct sl_proto *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->cfg.n_nodes; i++)
		if (p->cfg.node_ids[i] == id)
			return 1;
	return 0;
}

/* Cluster, stream, receiver and epoch checks: rule 5 of the design, no
 * frame from another cluster or an older epoch changes any state. With
 * elections a pre-vote carries no epoch promise and passes at any epoch, and
 * a deposed leader's frame is answered so that it learns (elect.c). */
static int admit(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	const struct sl_frame_hdr *h = &f->hdr;

	if (memcmp(h->cluster_id, p->cfg.cluster_id, sizeof(h->cluster_id)) != 0 ||
	    h->stream_id != p->cfg.stream_id || h->receiver != p->cfg.node_id ||
	    !known_node(p, h->sender) || h->sender == p->cfg.node_id) {
		p->frames_foreign++;
		return 0;
	}
	if (p->el.on && sl_elect_is_pre(f))
		return 1;
	if (h->epoch < p->cfg.epoch || (h->epoch > p->cfg.epoch && !p->el.on)) {
		p->frames_stale++;
		if (p->el.on)
			sl_elect_fence(p, f, now);
		return 0;
	}
	return 1;
}

void sl_proto_on_frame(struct sl_proto *p, const uint8_t *buf, size_t len, uint64_t now)
{
	sl_proto_on_frame_parts(p, buf, len, NULL, 0, now);
}

void sl_proto_on_frame_parts(struct sl_proto *p, const uint8_t *head, size_t head_len,
			     const uint8_t *tail, size_t tail_len, uint64_t now)
{
	const struct sl_frame_place place = {.dest = sl_follower_rx_dest, .ctx = p};
	struct sl_frame f;

	p->frames_in++;
	if (sl_frame_decode_place(head, head_len, tail, tail_len, &place, &f) < 0) {
		p->frames_bad++;
		return;
	}
	if (p->failed || !admit(p, &f, now))
		return;
	if (p->el.on && !sl_elect_admit(p, &f, now))
		return;
	if (f.hdr.type == SL_FRAME_VOTE_REQ && p->el.on)
		sl_elect_on_vote_req(p, &f, now);
	else if (f.hdr.type == SL_FRAME_VOTE && p->el.on)
		sl_elect_on_vote(p, &f, now);
	else if (p->role == SL_ROLE_LEADER && f.hdr.type == SL_FRAME_EPOCH_REQ && p->el.on)
		sl_diverge_on_req(p, &f, now);
	else if (sl_entropy_frame(f.hdr.type))
		sl_entropy_on_frame(p, &f, now);
	else if (p->role == SL_ROLE_CANDIDATE)
		; /* only votes matter while standing */
	else if (p->role == SL_ROLE_LEADER && f.hdr.type == SL_FRAME_STATUS)
		sl_leader_on_status(p, &f, now);
	else if (p->role == SL_ROLE_LEADER && f.hdr.type == SL_FRAME_NAK)
		sl_leader_on_nak(p, &f, now);
	else if (p->role == SL_ROLE_FOLLOWER && f.hdr.sender != p->cfg.leader_id)
		p->frames_foreign++;
	else if (p->role == SL_ROLE_FOLLOWER && f.hdr.type == SL_FRAME_DATA)
		sl_follower_on_data(p, &f, now);
	else if (p->role == SL_ROLE_FOLLOWER && f.hdr.type == SL_FRAME_HEARTBEAT)
		sl_follower_on_heartbeat(p, &f, now);
	else if (p->role == SL_ROLE_FOLLOWER && f.hdr.type == SL_FRAME_EPOCH_END && p->el.on)
		sl_diverge_on_end(p, &f, now);
	else if (p->role == SL_ROLE_FOLLOWER && f.hdr.type == SL_FRAME_ELECT_NOW && p->el.on)
		sl_elect_on_elect_now(p, &f, now);
	else
		p->frames_bad++;
}

void sl_proto_on_persisted(struct sl_proto *p, uint64_t epoch, uint32_t voted_for, uint64_t now)
{
	if (!p->failed && p->el.on)
		sl_elect_on_persisted(p, epoch, voted_for, now);
}

void sl_proto_on_durable(struct sl_proto *p, uint64_t durable_pos, uint64_t now)
{
	if (p->failed || durable_pos <= p->durable_pos)
		return;
	assert(durable_pos <= p->log_end);
	p->durable_pos = durable_pos;
	if (p->role == SL_ROLE_LEADER)
		sl_leader_on_durable(p, now);
	else if (p->role == SL_ROLE_FOLLOWER)
		sl_follower_on_durable(p, now);
}

void sl_proto_on_storage_error(struct sl_proto *p, int err)
{
	sl_proto_fail(p, err);
}

void sl_proto_on_applied(struct sl_proto *p, uint64_t lsn, uint64_t now)
{
	if (!p->failed && p->role == SL_ROLE_FOLLOWER)
		sl_follower_on_applied(p, lsn, now);
}

void sl_proto_tick(struct sl_proto *p, uint64_t now)
{
	if (p->failed)
		return;
	if (p->el.on)
		sl_elect_tick(p, now);
	if (p->failed)
		return;
	if (p->role == SL_ROLE_LEADER)
		sl_leader_tick(p, now);
	else if (p->role == SL_ROLE_FOLLOWER)
		sl_follower_tick(p, now);
	sl_entropy_tick(p, now);
}

uint64_t sl_proto_next_timer(const struct sl_proto *p)
{
	uint64_t t = UINT64_MAX, e;

	if (p->failed)
		return UINT64_MAX;
	if (p->role == SL_ROLE_LEADER)
		t = sl_leader_next_timer(p);
	else if (p->role == SL_ROLE_FOLLOWER)
		t = sl_follower_next_timer(p);
	if (p->el.on && (e = sl_elect_next_timer(p)) < t)
		t = e;
	if ((e = sl_entropy_next_timer(p)) < t)
		t = e;
	return t;
}

static void peer_status(const struct sl_proto *p, const struct sl_peer *peer,
			struct sl_peer_status *s)
{
	const struct sl_bdesc *d = sl_bq_find(&p->bq, peer->received);

	s->node_id = peer->id;
	s->sent_pos = peer->sent_end;
	s->received_pos = peer->received;
	s->durable_pos = peer->durable;
	s->applied_pos = peer->applied;
	s->applied_lsn = peer->applied_lsn;
	s->write_lag_ns = peer->write_lag;
	s->flush_lag_ns = peer->flush_lag;
	s->apply_lag_ns = peer->apply_lag;
	s->bytes_behind = p->log_end - (peer->received < p->log_end ? peer->received : p->log_end);
	/* The LSN a follower has received up to is known while its batch is
	 * still in memory; past the window, count from its applied LSN. */
	if (peer->received >= p->log_end)
		s->records_behind = 0;
	else if (d)
		s->records_behind = p->next_lsn - d->base_lsn;
	else
		s->records_behind = p->next_lsn - 1 - peer->applied_lsn;
	s->last_status_ns = peer->last_status_ns;
	s->naks = peer->naks;
	s->retransmits = peer->retransmits;
	s->catchup_batches = peer->catchup_batches;
	s->catching_up = peer->sent_end < sl_proto_ring_base(p);
}

int sl_proto_is_leader(const struct sl_proto *p)
{
	return p->role == SL_ROLE_LEADER && !p->failed;
}

int sl_proto_batch_open(const struct sl_proto *p)
{
	return sl_proto_is_leader(p) && p->open_ts != 0 && !p->seal_blocked;
}

int sl_proto_all_committed(const struct sl_proto *p)
{
	return p->commit_pos >= p->log_end;
}

size_t sl_proto_open_bytes(const struct sl_proto *p)
{
	return p->builder.len;
}

uint64_t sl_proto_next_lsn(const struct sl_proto *p)
{
	return p->next_lsn + p->builder.count;
}

void sl_proto_get_status(const struct sl_proto *p, struct sl_proto_status *s)
{
	memset(s, 0, sizeof(*s));
	s->role = p->role;
	s->node_id = p->cfg.node_id;
	s->leader_id = p->cfg.leader_id;
	s->epoch = p->cfg.epoch;
	s->last_epoch = p->last_epoch;
	s->next_lsn = p->next_lsn;
	s->heard_lsn = p->heard_lsn > p->next_lsn - 1 ? p->heard_lsn : p->next_lsn - 1;
	s->log_end = p->log_end;
	s->durable_pos = p->durable_pos;
	s->commit_pos = p->commit_pos;
	s->commit_lsn = p->commit_lsn;
	s->safe_pos = p->safe_pos;
	s->delivered_lsn = p->delivered_lsn;
	s->degraded = p->degraded;
	s->degrade_events = p->degrade_events;
	s->blocked_since_ns = p->blocked_since;
	s->failed = p->failed;
	s->frames_in = p->frames_in;
	s->frames_out = p->frames_out;
	s->frames_bad = p->frames_bad;
	s->frames_foreign = p->frames_foreign;
	s->frames_stale = p->frames_stale;
	s->dup_fragments = p->dup_fragments;
	s->naks_sent = p->naks_sent;
	s->naks_received = p->naks_received;
	s->retransmits = p->retransmits;
	s->tlps = p->tlps;
	s->elections = p->el.elections;
	s->elections_won = p->el.elections_won;
	s->step_downs = p->el.step_downs;
	s->votes_granted = p->el.votes_granted;
	s->truncations = p->el.truncations;
	s->truncated_bytes = p->el.truncated_bytes;
	s->synced = p->el.synced;
	sl_entropy_status(p, &s->entropy);
	s->commit_latency_ns = p->commit_lat;
	s->catchup_rate = p->cu_rate;
	s->catchup_throttled = p->cu_throttled;
	s->catchup_cuts = p->cu_cuts;
	s->n_peers = p->role == SL_ROLE_LEADER ? p->n_peers : 0;
	for (uint32_t i = 0; i < p->n_peers; i++)
		peer_status(p, &p->peers[i], &s->peers[i]);
}
