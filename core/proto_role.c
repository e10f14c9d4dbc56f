/* Role changes and log truncation: the narrow interface through which
 * elections (elect.c) and divergence repair (diverge.c) reach the
 * replication state of leader and follower. A node that may be elected
 * holds the memory of both roles from the start, so a role change
 * allocates nothing. See docs/failover.md. */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "proto_int.h"
#include "shiplog/err.h"

static void tell_role(struct sl_proto *p)
{
	if (p->ops.role)
		p->ops.role(p->ops.ctx, p->role, p->cfg.epoch, p->cfg.leader_id);
}

static void free_slots(struct sl_proto *p)
{
	uint32_t words = (p->enc_cap / p->frag_unit + 1 + 63) / 64;

	for (uint32_t i = 0; i < p->n_used; i++) {
		memset(p->used[i]->bits, 0, words * sizeof(uint64_t));
		p->used[i]->used = 0;
	}
	p->n_used = 0;
}

/* The LSN that ends at `pos` (a batch boundary held in memory, the delivery
 * point or the log end); UINT64_MAX when unknown. */
uint64_t sl_role_lsn_at(const struct sl_proto *p, uint64_t pos)
{
	const struct sl_bdesc *d;

	if (pos == 0)
		return 0;
	if (pos == p->log_end)
		return p->next_lsn - 1;
	if (pos == p->delivered_pos)
		return p->delivered_lsn;
	d = sl_bq_find(&p->bq, pos);
	if (d && d->pos == pos)
		return d->base_lsn - 1;
	return UINT64_MAX;
}

/* A leader that stops leading drops the batch it had open: its records
 * never reached the log, so the engine forgets them. */
static void leave_leader(struct sl_proto *p)
{
	int rc;

	if (p->builder.count > 0 && (rc = p->ops.truncate(p->ops.ctx, p->log_end, p->next_lsn)))
		sl_proto_fail(p, rc);
	sl_batch_builder_reset(&p->builder);
	p->open_ts = 0;
	p->seal_blocked = 0;
	p->degraded = 0;
	p->blocked_since = 0;
	p->el.barrier_due = 0;
	p->el.step_downs++;
	sl_leader_keep_window(p);
}

/* The follower's view of the stream starts over from its own log. */
static void reset_follower_view(struct sl_proto *p)
{
	free_slots(p);
	p->leader_end = p->highest_seen = p->log_end;
	p->gap_since = p->last_nak = p->last_frag_ns = 0;
	p->nak_backoff = 1;
	p->nak_log_end = p->log_end;
	p->status_dirty = 0;
	p->el.synced = 0;
	p->el.asked = 0;
	p->el.ask_at = UINT64_MAX;
	p->el.floor = 0;
}

void sl_role_follower(struct sl_proto *p, uint32_t leader_id, uint64_t now)
{
	if (p->role == SL_ROLE_LEADER)
		leave_leader(p);
	p->role = SL_ROLE_FOLLOWER;
	p->cfg.leader_id = leader_id;
	reset_follower_view(p);
	p->el.votes = 0;
	p->el.forced = 0;
	p->el.prevoting = 0;
	p->el.last_leader_ns = now;
	p->el.deadline = now + p->el.timeout;
	tell_role(p);
	sl_entropy_rejoin(p);
	if (leader_id)
		sl_diverge_start(p, now);
}

void sl_role_candidate(struct sl_proto *p, uint64_t epoch)
{
	assert(epoch > p->cfg.epoch);
	if (p->role == SL_ROLE_LEADER)
		leave_leader(p);
	p->role = SL_ROLE_CANDIDATE;
	p->cfg.epoch = epoch;
	p->cfg.leader_id = 0;
	reset_follower_view(p);
	tell_role(p);
}

static void reset_peer(struct sl_peer *peer, const struct sl_proto *p, uint64_t now)
{
	uint64_t seq = peer->seq;
	uint32_t id = peer->id;
	uint8_t *scratch = peer->scratch;
	uint32_t *scratch_fcrc = peer->scratch_fcrc;

	memset(peer, 0, sizeof(*peer));
	peer->id = id;
	peer->seq = seq;
	peer->scratch = scratch;
	peer->scratch_fcrc = scratch_fcrc;
	peer->scratch_pos = UINT64_MAX;
	peer->sent_end = p->log_end;
	peer->window_end = p->log_end + p->cfg.rcv_window_bytes;
	peer->last_progress_ns = now;
}

/* An elected leader starts from its own log: it knows as committed what it
 * had learned as a follower, nothing of where its followers stand, and it
 * commits nothing more until the first batch of its epoch (sealed here, or
 * at a tick when the window is full) is held by a quorum. */
void sl_role_leader(struct sl_proto *p, uint64_t now)
{
	uint64_t c = p->safe_pos < p->log_end ? p->safe_pos : p->log_end;

	p->role = SL_ROLE_LEADER;
	p->cfg.leader_id = p->cfg.node_id;
	free_slots(p);
	p->el.synced = 1;
	p->el.deadline = UINT64_MAX;
	p->commit_lsn = sl_role_lsn_at(p, c);
	if (p->commit_lsn == UINT64_MAX) {
		/* Not a boundary we can name the LSN of (a log recovered at a
		 * restart, not held in memory): know less. The first batch of
		 * the epoch commits everything before it anyway. */
		c = p->delivered_pos <= c ? p->delivered_pos : 0;
		p->commit_lsn = c ? p->delivered_lsn : 0;
	}
	p->commit_pos = p->safe_pos = c;
	sl_batch_builder_reset(&p->builder);
	p->open_ts = 0;
	p->seal_blocked = p->degraded = 0;
	p->degrade_mark = p->blocked_since = 0;
	for (uint32_t i = 0; i < p->n_peers; i++)
		reset_peer(&p->peers[i], p, now);
	p->el.fresh = (1u << p->n_peers) - 1;
	sl_leader_index_window(p);
	for (uint32_t i = 0; i < SL_NODES_MAX; i++)
		p->el.heard[i] = now;
	p->el.lease_at = now + p->cfg.election_timeout_ns;
	p->el.floor = UINT64_MAX; /* until the first batch of the epoch is sealed */
	tell_role(p);
	sl_leader_seal_barrier(p, now);
}

/* Cut the log at `pos` (a batch boundary, chained to `crc`, LSN `lsn`
 * next): never below what this node knows is committed. */
int sl_role_truncate(struct sl_proto *p, uint64_t pos, uint64_t lsn, uint32_t crc)
{
	uint64_t cut = p->log_end - pos;
	int rc;

	assert(pos < p->log_end);
	if (pos < p->safe_pos) {
		rc = sl_err_set(EPROTO,
				"node %u: the leader's log leaves ours at %llu, below our commit "
				"position %llu",
				p->cfg.node_id, (unsigned long long)pos,
				(unsigned long long)p->safe_pos);
		sl_proto_fail(p, rc);
		return rc;
	}
	if ((rc = p->ops.truncate(p->ops.ctx, pos, lsn)) < 0) {
		sl_proto_fail(p, rc);
		return rc;
	}
	while (p->bq.n > 0 && sl_bq_at(&p->bq, p->bq.n - 1)->pos >= pos) {
		sl_bq_give_back(p, sl_bq_at(&p->bq, p->bq.n - 1));
		p->bq.n--;
	}
	assert(p->bq.n == 0 ||
	       sl_bq_at(&p->bq, p->bq.n - 1)->pos + sl_bq_at(&p->bq, p->bq.n - 1)->len == pos);
	p->log_end = pos;
	p->next_lsn = lsn;
	p->last_crc = crc;
	sl_entropy_cut(p, pos);
	sl_epoch_map_truncate(&p->el.map, pos);
	p->last_epoch = sl_epoch_map_last(&p->el.map);
	if (p->durable_pos > pos)
		p->durable_pos = pos;
	/* A deposed leader's engine held what it appended: it forgot that. */
	if (p->delivered_pos > pos)
		p->delivered_pos = pos;
	if (p->delivered_lsn >= lsn)
		p->delivered_lsn = lsn - 1;
	if (p->applied_pos > pos)
		p->applied_pos = pos;
	if (p->applied_lsn >= lsn)
		p->applied_lsn = lsn - 1;
	if (p->engine_start_lsn >= lsn)
		p->engine_start_lsn = lsn - 1;
	while (p->applyq_n > 0 &&
	       p->applyq[(p->applyq_head + p->applyq_n - 1) % p->applyq_cap].end > pos)
		p->applyq_n--;
	p->leader_end = p->highest_seen = pos;
	p->el.truncations++;
	p->el.truncated_bytes += cut;
	return 0;
}

/* A node that may be elected: both roles' memory, then the role its
 * persisted state gives it. A node of a new cluster (empty log, nothing
 * persisted) takes the configured leader as its leader, or leads if it is
 * that node; any other starts as a follower that knows no leader yet. */
int sl_role_init(struct sl_proto *p, const struct sl_log_state *log)
{
	uint32_t boot_leader = p->cfg.leader_id;
	int fresh = log->next_pos == 0 && log->current_epoch == 0 && log->voted_epoch == 0;
	int rc;

	if ((rc = sl_leader_init(p)) || (rc = sl_follower_init(p, log)) ||
	    (rc = sl_elect_init(p, log)))
		return rc;
	p->el.reserve = (uint32_t)sl_batch_bound(0);
	/* What the engine applied is no commit position here: a leader's engine
	 * held what it appended before that was committed. The leader says. */
	p->commit_pos = p->safe_pos = 0;
	p->commit_lsn = 0;
	/* An engine ahead of the log: a leader's appends that never became
	 * durable before it stopped. Never committed; the engine forgets them. */
	if (p->delivered_lsn >= p->next_lsn) {
		if ((rc = p->ops.truncate(p->ops.ctx, p->log_end, p->next_lsn)) < 0)
			return sl_err_wrap(rc, "rolling the engine back to the log");
		p->delivered_pos = p->applied_pos = p->log_end;
		p->delivered_lsn = p->applied_lsn = p->engine_start_lsn = p->next_lsn - 1;
	}
	p->role = SL_ROLE_FOLLOWER;
	reset_follower_view(p);
	if (fresh && boot_leader == p->cfg.node_id) {
		/* It leads the configured epoch once: that is persisted before its
		 * first batch, so after a crash it stands like any other node. */
		p->role = SL_ROLE_LEADER;
		p->cfg.leader_id = p->cfg.node_id;
		p->el.synced = 1;
		p->el.floor = UINT64_MAX;
		p->el.deadline = UINT64_MAX;
		if ((rc = sl_elect_boot(p)) < 0)
			return rc;
	} else if (fresh && boot_leader && p->cfg.epoch == p->el.boot_epoch) {
		p->cfg.leader_id = boot_leader;
		p->el.synced = 1; /* an empty log agrees with every log */
		p->status_dirty = 1;
	} else {
		p->cfg.leader_id = 0;
	}
	return 0;
}
