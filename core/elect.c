/* Failure detection, elections and fencing (docs/failover.md).
 *
 * - A follower that hears nothing from its leader for a random time in
 *   [t, 1.5t) first asks for pre-votes ("would you vote for me?"; no state
 *   changes anywhere). With enough of them it stands: it takes the next
 *   epoch it owns above every epoch it heard of (epoch % 16 is its rank
 *   among the sorted node ids, so no two candidates ever share an epoch),
 *   persists its vote for itself, then asks every node for a vote. Pre-votes
 *   keep a node that only lost its own link from raising epochs that would
 *   then shut it out of a working leader.
 * - A voter grants at most one vote per epoch, only to a log at least as up
 *   to date as its own (last epoch, then last position), and only once the
 *   vote is persisted. It ignores a request while it still hears its leader
 *   (a leader: while its followers still answer), so a node that only lost
 *   its own link cannot depose a working leader.
 * - A candidate with N - W + 1 votes (sl_quorum_votes) leads; its first
 *   batch opens its epoch and commits wait for it (proto_role.c).
 * - Any frame of a higher epoch fences the receiver: a leader or candidate
 *   becomes a follower of that epoch. A node that gets DATA or HEARTBEAT of a
 *   lower epoch answers (at most once per heartbeat interval) with a denied
 *   VOTE of its own epoch, so a deposed leader learns at once. A leader that
 *   has not heard from enough followers to commit within a timeout steps
 *   down.
 * Role changes go through proto_role.c. */
#include <errno.h>
#include <string.h>

#include "proto_int.h"
#include "shiplog/err.h"

static uint64_t rnd(struct sl_elect *e)
{
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return e->rng * 0x2545F4914F6CDD1Dull;
}

/* In [t, 1.5t): the failover budget is 2t, and the detection that ends it
 * is the earliest of the followers' draws (see on_prevote_req). */
static uint64_t draw_timeout(struct sl_proto *p)
{
	uint64_t t = p->cfg.election_timeout_ns;

	return t + rnd(&p->el) % (t / 2 ? t / 2 : 1);
}

static int node_index(const struct sl_proto *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->cfg.n_nodes; i++)
		if (p->cfg.node_ids[i] == id)
			return (int)i;
	return -1;
}

static uint32_t rank_of(const struct sl_proto *p, uint32_t id)
{
	uint32_t r = 0;

	for (uint32_t i = 0; i < p->cfg.n_nodes; i++)
		r += p->cfg.node_ids[i] < id;
	return r;
}

/* The only node that may lead `epoch`. */
uint32_t sl_elect_owner(const struct sl_proto *p, uint64_t epoch)
{
	uint32_t rank = (uint32_t)(epoch % SL_NODES_MAX);

	if (epoch == p->el.boot_epoch)
		return p->el.boot_leader;
	for (uint32_t i = 0; i < p->cfg.n_nodes; i++)
		if (rank_of(p, p->cfg.node_ids[i]) == rank)
			return p->cfg.node_ids[i];
	return 0;
}

/* The first epoch above the current one that this node owns. */
static uint64_t next_epoch(const struct sl_proto *p)
{
	uint64_t cur = p->cfg.epoch;
	uint64_t e = cur - cur % SL_NODES_MAX + p->el.rank;

	return e > cur ? e : e + SL_NODES_MAX;
}

static uint64_t *seq_to(struct sl_proto *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->n_peers; i++)
		if (p->peers[i].id == id)
			return &p->peers[i].seq;
	return &p->seq_to_leader;
}

int sl_elect_init(struct sl_proto *p, const struct sl_log_state *log)
{
	struct sl_elect *e = &p->el;
	struct sl_ack_policy clean = p->cfg.policy;
	uint64_t cur = p->cfg.epoch;
	int votes, lease;

	clean.debug_undercount = 0;
	votes = sl_quorum_votes(&p->cfg.policy, p->cfg.n_nodes);
	lease = sl_quorum_required(&clean, p->cfg.n_nodes);
	if (votes < 0 || lease < 0)
		return -EINVAL;
	if (log->next_pos > 0 && !log->epochs)
		return sl_err_set(EINVAL, "elections need the log's epoch map");
	e->on = 1;
	e->votes_needed = (uint32_t)votes;
	e->lease_need = (uint32_t)lease;
	e->rng = (p->cfg.rng_seed ^ ((uint64_t)p->cfg.node_id << 32) ^ 0x9E3779B97F4A7C15ull) | 1;
	e->boot_epoch = p->cfg.epoch;
	e->boot_leader = p->cfg.leader_id;
	e->rank = rank_of(p, p->cfg.node_id);
	if (log->epochs)
		e->map = *log->epochs;
	p->last_epoch = sl_epoch_map_last(&e->map);
	e->voted_epoch = log->voted_epoch;
	e->voted_for = log->voted_for;
	e->dur_epoch = e->want_epoch = log->current_epoch;
	e->dur_vote = e->want_vote = log->voted_epoch == log->current_epoch ? log->voted_for : 0;
	cur = cur > log->current_epoch ? cur : log->current_epoch;
	cur = cur > log->voted_epoch ? cur : log->voted_epoch;
	cur = cur > p->last_epoch ? cur : p->last_epoch;
	p->cfg.epoch = cur;
	e->timeout = draw_timeout(p);
	e->deadline = UINT64_MAX;
	e->arm = 1;
	return 0;
}

/* ---- persistence ---- */

static void persist(struct sl_proto *p, uint64_t epoch, uint32_t vote)
{
	struct sl_elect *e = &p->el;
	int rc;

	e->want_epoch = epoch;
	e->want_vote = vote;
	if (e->flying || (e->dur_epoch == epoch && e->dur_vote == vote))
		return;
	e->flying = 1;
	e->fly_epoch = epoch;
	e->fly_vote = vote;
	if ((rc = p->ops.persist(p->ops.ctx, epoch, vote)) < 0)
		sl_proto_fail(p, rc);
}

static int persisted(const struct sl_elect *e, uint64_t epoch, uint32_t vote)
{
	return e->dur_epoch == epoch && e->dur_vote == vote;
}

/* The configured leader of a new cluster: its leadership of the configured
 * epoch is persisted like a vote for itself; its first batch waits for it. */
int sl_elect_boot(struct sl_proto *p)
{
	p->el.voted_epoch = p->cfg.epoch;
	p->el.voted_for = p->cfg.node_id;
	persist(p, p->cfg.epoch, p->cfg.node_id);
	return p->failed;
}

/* ---- voting ---- */

static void send_vote(struct sl_proto *p, uint32_t to, int granted, uint32_t flags)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_VOTE};

	f.vote = (struct sl_frame_vote){.granted = (uint32_t)granted,
					.flags = flags,
					.last_epoch = p->last_epoch,
					.last_pos = p->log_end};
	sl_proto_send(p, to, seq_to(p, to), &f);
}

/* To every node that has not granted yet: real votes or pre-votes. */
static void send_vote_reqs(struct sl_proto *p, uint64_t now)
{
	uint32_t got = p->el.prevoting ? p->el.pre_votes : p->el.votes;

	for (uint32_t i = 0; i < p->cfg.n_nodes; i++) {
		uint32_t id = p->cfg.node_ids[i];
		struct sl_frame f = {.hdr.type = SL_FRAME_VOTE_REQ};

		if (id == p->cfg.node_id || (got >> i & 1))
			continue;
		f.vreq =
		    (struct sl_frame_vote_req){.last_epoch = p->last_epoch,
					       .last_pos = p->log_end,
					       .last_lsn = p->next_lsn - 1,
					       .flags = p->el.prevoting	    ? SL_VOTE_F_PRE
							: p->el.transferred ? SL_VOTE_F_TRANSFER
									    : 0};
		sl_proto_send(p, id, seq_to(p, id), &f);
	}
	p->el.vreq_at = now + p->cfg.heartbeat_ns;
}

static void count_vote(struct sl_proto *p, int idx, uint64_t now)
{
	struct sl_elect *e = &p->el;

	e->votes |= 1u << idx;
	if ((uint32_t)__builtin_popcount(e->votes) < e->votes_needed && !e->forced)
		return;
	e->forced = 0;
	e->elections_won++;
	sl_role_leader(p, now);
}

static void stand(struct sl_proto *p, uint64_t now)
{
	struct sl_elect *e = &p->el;
	uint64_t epoch;

	if (e->pre_epoch > p->cfg.epoch) /* answers told of a later epoch: go above it */
		p->cfg.epoch = e->pre_epoch;
	epoch = next_epoch(p);
	e->prevoting = 0;
	e->transferred = 0;
	e->elections++;
	sl_role_candidate(p, epoch);
	e->voted_epoch = epoch;
	e->voted_for = p->cfg.node_id;
	e->votes = 0;
	e->grant_to = 0;
	e->timeout = draw_timeout(p);
	e->deadline = now + e->timeout;
	e->vreq_at = UINT64_MAX; /* once our own vote is persisted */
	persist(p, epoch, p->cfg.node_id);
}

/* Log a at least as up to date as log b: last epoch, then last position. */
static int up_to_date(uint64_t a_epoch, uint64_t a_pos, uint64_t b_epoch, uint64_t b_pos)
{
	return a_epoch > b_epoch || (a_epoch == b_epoch && a_pos >= b_pos);
}

/* The election timeout passed without a leader: ask for pre-votes (our own
 * counts at once). */
static void prevote(struct sl_proto *p, uint64_t now)
{
	struct sl_elect *e = &p->el;
	int me = node_index(p, p->cfg.node_id);

	e->prevoting = 1;
	e->pre_votes = 1u << me;
	e->pre_epoch = p->cfg.epoch;
	e->timeout = draw_timeout(p);
	e->deadline = now + e->timeout;
	if ((uint32_t)__builtin_popcount(e->pre_votes) >= e->votes_needed) {
		stand(p, now);
		return;
	}
	send_vote_reqs(p, now);
}

static int sticky(const struct sl_proto *p, uint64_t now);

/* A pre-vote: would we vote for this log now? No state changes. */
/* A pre-vote request from a node whose log is behind ours, while we too have
 * not heard the leader for a timeout: it cannot win, we can, and the leader
 * is likely gone, so we ask for pre-votes at once instead of at our own
 * deadline (failover then takes the earliest follower's detection, not the
 * most up-to-date one's). */
static void on_prevote_req(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	int quiet = !sticky(p, now);
	int ahead = !up_to_date(f->vreq.last_epoch, f->vreq.last_pos, p->last_epoch, p->log_end);

	send_vote(p, f->hdr.sender, quiet && !ahead, SL_VOTE_F_PRE);
	if (quiet && ahead && p->role == SL_ROLE_FOLLOWER && !p->el.prevoting && !p->ent.nholes)
		prevote(p, now);
}

static void on_prevote(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	struct sl_elect *e = &p->el;
	int idx = node_index(p, f->hdr.sender);

	if (p->role != SL_ROLE_FOLLOWER || !e->prevoting || idx < 0)
		return;
	if (f->hdr.epoch > e->pre_epoch)
		e->pre_epoch = f->hdr.epoch;
	if (!f->vote.granted)
		return;
	e->pre_votes |= 1u << idx;
	if ((uint32_t)__builtin_popcount(e->pre_votes) >= e->votes_needed)
		stand(p, now);
}

void sl_elect_on_vote_req(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	struct sl_elect *e = &p->el;
	uint32_t cand = f->hdr.sender;
	uint64_t epoch = f->hdr.epoch;

	if (f->vreq.flags & SL_VOTE_F_PRE) {
		on_prevote_req(p, f, now);
		return;
	}
	if (p->role != SL_ROLE_FOLLOWER)
		return; /* we own this epoch: the request is an old one of ours */
	if (sl_elect_owner(p, epoch) != cand) {
		p->frames_bad++;
		return;
	}
	if (e->voted_epoch == epoch && e->voted_for && e->voted_for != cand) {
		send_vote(p, cand, 0, 0);
		return;
	}
	if (!up_to_date(f->vreq.last_epoch, f->vreq.last_pos, p->last_epoch, p->log_end)) {
		/* As for a pre-vote refused for the same reason: the candidate
		 * cannot win and we can (its pre-vote passed before our log grew
		 * past its own, from frames of the old leader we were still
		 * taking in): stand at once, not a whole draw later. */
		send_vote(p, cand, 0, 0);
		if (p->role == SL_ROLE_FOLLOWER && !p->cfg.leader_id && !e->prevoting &&
		    !p->ent.nholes)
			prevote(p, now);
		return;
	}
	if (e->voted_epoch != epoch || e->voted_for != cand) {
		e->voted_epoch = epoch;
		e->voted_for = cand;
		e->votes_granted++;
	}
	e->deadline = now + e->timeout;
	if (persisted(e, epoch, cand)) {
		send_vote(p, cand, 1, 0);
		return;
	}
	e->grant_to = cand;
	persist(p, epoch, cand);
}

void sl_elect_on_vote(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	int idx = node_index(p, f->hdr.sender);

	if (f->vote.flags & SL_VOTE_F_PRE) {
		on_prevote(p, f, now);
		return;
	}
	if (p->role != SL_ROLE_CANDIDATE || !f->vote.granted || idx < 0 ||
	    !persisted(&p->el, p->cfg.epoch, p->cfg.node_id))
		return;
	count_vote(p, idx, now);
}

void sl_elect_on_persisted(struct sl_proto *p, uint64_t epoch, uint32_t vote, uint64_t now)
{
	struct sl_elect *e = &p->el;

	if (!e->flying || epoch != e->fly_epoch || vote != e->fly_vote)
		return;
	e->flying = 0;
	e->dur_epoch = epoch;
	e->dur_vote = vote;
	if (e->want_epoch != epoch || e->want_vote != vote)
		persist(p, e->want_epoch, e->want_vote);
	if (p->role == SL_ROLE_CANDIDATE && persisted(e, p->cfg.epoch, p->cfg.node_id) &&
	    !(e->votes >> node_index(p, p->cfg.node_id) & 1)) {
		send_vote_reqs(p, now);
		count_vote(p, node_index(p, p->cfg.node_id), now);
	}
	if (p->role == SL_ROLE_LEADER && e->floor == UINT64_MAX && !e->barrier_due &&
	    persisted(e, p->cfg.epoch, p->cfg.node_id))
		sl_leader_seal_barrier(p, now); /* the configured leader's first batch */
	if (e->grant_to && persisted(e, p->cfg.epoch, e->grant_to)) {
		send_vote(p, e->grant_to, 1, 0);
		e->grant_to = 0;
	}
}

/* ---- handing over ---- */

int sl_proto_transfer(struct sl_proto *p, uint32_t target, uint64_t now)
{
	int idx = node_index(p, target);

	if (!p->el.on || p->role != SL_ROLE_LEADER || p->failed)
		return sl_err_set(EPERM, "node %u is not the leader", p->cfg.node_id);
	if (idx < 0 || target == p->cfg.node_id)
		return sl_err_set(EINVAL, "cannot hand over to node %u", target);
	p->el.transfer_to = target;
	p->el.transfer_until = now + p->cfg.election_timeout_ns;
	sl_proto_flush(p, now); /* the open batch must reach the target too */
	return 0;
}

int sl_proto_stepdown(struct sl_proto *p, uint64_t now)
{
	if (!p->el.on || p->role != SL_ROLE_LEADER || p->failed)
		return sl_err_set(EPERM, "node %u is not the leader", p->cfg.node_id);
	p->el.transfer_to = 0;
	sl_role_follower(p, 0, now);
	p->el.deadline = now + 2 * p->cfg.election_timeout_ns; /* the others first */
	return 0;
}

int sl_proto_force_lead(struct sl_proto *p, uint64_t now)
{
	if (!p->el.on || p->failed)
		return sl_err_set(EPERM, "node %u: %s", p->cfg.node_id,
				  p->failed ? "failed" : "elections are off");
	if (p->role == SL_ROLE_LEADER)
		return sl_err_set(EALREADY, "node %u already leads epoch %llu", p->cfg.node_id,
				  (unsigned long long)p->cfg.epoch);
	if (p->ent.nholes)
		return sl_err_set(EAGAIN,
				  "node %u: %u corrupt batches of its log (from position %llu) "
				  "are not repaired yet",
				  p->cfg.node_id, p->ent.nholes,
				  (unsigned long long)sl_entropy_first_hole(p));
	if (p->role == SL_ROLE_CANDIDATE)
		sl_role_follower(p, 0, now);
	stand(p, now);
	p->el.forced = 1; /* wins on its own vote once that is persisted */
	return 0;
}

/* The target holds the whole log (`received` from its STATUS): tell it to
 * stand, and step down. */
static void try_transfer(struct sl_proto *p, uint64_t received, uint64_t now)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_ELECT_NOW};
	uint32_t to = p->el.transfer_to;

	if (p->builder.count > 0 && sl_proto_flush(p, now) < 0)
		return;
	if (p->builder.count > 0 || received < p->log_end)
		return;
	f.enow = (struct sl_frame_elect_now){.log_end = p->log_end, .commit_pos = p->commit_pos};
	sl_proto_send(p, to, seq_to(p, to), &f);
	sl_proto_stepdown(p, now);
}

/* A follower told by its leader to stand: at once, no pre-vote, and with
 * TRANSFER so that voters still hearing that leader grant it. */
void sl_elect_on_elect_now(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	(void)f;
	if (p->role != SL_ROLE_FOLLOWER || p->ent.nholes)
		return;
	stand(p, now);
	p->el.transferred = 1;
}

/* ---- fencing ---- */

static uint32_t answering(const struct sl_proto *p, uint64_t now)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->cfg.n_nodes; i++)
		n += p->cfg.node_ids[i] != p->cfg.node_id &&
		     now - p->el.heard[i] < p->cfg.election_timeout_ns;
	return n;
}

/* Still hearing a leader (or, leading, enough followers to commit): a vote
 * request is then ignored, and does not even raise the epoch. */
static int sticky(const struct sl_proto *p, uint64_t now)
{
	if (p->role == SL_ROLE_FOLLOWER)
		return p->cfg.leader_id && now - p->el.last_leader_ns < p->cfg.election_timeout_ns;
	return p->role == SL_ROLE_LEADER && answering(p, now) >= p->el.lease_need;
}

static void adopt(struct sl_proto *p, uint64_t epoch, uint32_t leader, uint64_t now)
{
	p->cfg.epoch = epoch;
	p->el.grant_to = 0;
	p->el.timeout = draw_timeout(p);
	sl_role_follower(p, leader, now);
}

static int from_leader(uint8_t type)
{
	return type == SL_FRAME_DATA || type == SL_FRAME_HEARTBEAT || type == SL_FRAME_EPOCH_END ||
	       type == SL_FRAME_ELECT_NOW;
}

int sl_elect_is_pre(const struct sl_frame *f)
{
	return (f->hdr.type == SL_FRAME_VOTE_REQ && (f->vreq.flags & SL_VOTE_F_PRE)) ||
	       (f->hdr.type == SL_FRAME_VOTE && (f->vote.flags & SL_VOTE_F_PRE));
}

/* A frame of a lower epoch from a node that still thinks it leads: tell it
 * our epoch (a denied vote), once per heartbeat interval at most. */
void sl_elect_fence(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	int idx = node_index(p, f->hdr.sender);

	if (idx < 0 || (f->hdr.type != SL_FRAME_DATA && f->hdr.type != SL_FRAME_HEARTBEAT) ||
	    (p->el.fenced_at[idx] && now - p->el.fenced_at[idx] < p->cfg.heartbeat_ns))
		return;
	p->el.fenced_at[idx] = now;
	send_vote(p, f->hdr.sender, 0, 0);
}

/* A new leader sends from its log end, not knowing where its followers
 * are; the first STATUS of each tells it, and live sending starts over
 * from there (NAKs alone would repair a long gap a few fragments at a time). */
static void first_status(struct sl_proto *p, const struct sl_frame *f)
{
	for (uint32_t i = 0; i < p->n_peers; i++) {
		struct sl_peer *peer = &p->peers[i];

		if (peer->id != f->hdr.sender || !(p->el.fresh >> i & 1))
			continue;
		p->el.fresh &= ~(1u << i);
		if (f->status.received_pos < peer->sent_end) {
			peer->sent_end = f->status.received_pos;
			peer->frag_next = 0;
		}
	}
}

/* Epoch rules for an admitted frame (cluster, receiver and lower epochs
 * already checked). 1: dispatch it, 0: it is consumed or dropped. */
int sl_elect_admit(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	uint64_t epoch = f->hdr.epoch;
	uint32_t from = f->hdr.sender;
	int idx;

	if (sl_elect_is_pre(f))
		return 1; /* answered or counted whatever the epochs; nothing changes */
	if (epoch > p->cfg.epoch) {
		if (f->hdr.type == SL_FRAME_VOTE_REQ &&
		    (sticky(p, now) && !(f->vreq.flags & SL_VOTE_F_TRANSFER)))
			return 0;
		if ((f->hdr.type == SL_FRAME_VOTE_REQ || from_leader(f->hdr.type)) &&
		    sl_elect_owner(p, epoch) != from) {
			p->frames_bad++;
			return 0;
		}
		adopt(p, epoch, from_leader(f->hdr.type) ? from : 0, now);
		return f->hdr.type == SL_FRAME_VOTE_REQ || from_leader(f->hdr.type);
	}
	if (f->hdr.type == SL_FRAME_VOTE_REQ)
		return 1;
	if (from_leader(f->hdr.type)) {
		if (sl_elect_owner(p, epoch) != from || p->role != SL_ROLE_FOLLOWER) {
			p->frames_bad++;
			return 0;
		}
		p->el.last_leader_ns = now;
		p->el.deadline = now + p->el.timeout;
		p->el.prevoting = 0;
		if (!p->cfg.leader_id) {
			p->cfg.leader_id = from;
			if (p->ops.role)
				p->ops.role(p->ops.ctx, p->role, epoch, from);
			sl_diverge_start(p, now);
		}
		return 1;
	}
	if (sl_entropy_frame(f->hdr.type))
		return 1; /* anti-entropy asks and answers between any two nodes */
	if (sl_elect_owner(p, epoch) != p->cfg.node_id)
		return 0; /* meant for this epoch's leader, which we are not */
	if (p->role == SL_ROLE_LEADER && (idx = node_index(p, from)) >= 0) {
		p->el.heard[idx] = now;
		if (f->hdr.type == SL_FRAME_STATUS && p->el.fresh)
			first_status(p, f);
		if (f->hdr.type == SL_FRAME_STATUS && p->el.transfer_to == from) {
			try_transfer(p, f->status.received_pos, now);
			return p->role == SL_ROLE_LEADER;
		}
	}
	return 1;
}

/* ---- timers ---- */

static void arm(struct sl_proto *p, uint64_t now)
{
	p->el.arm = 0;
	p->el.deadline = p->role == SL_ROLE_LEADER ? UINT64_MAX : now + p->el.timeout;
	p->el.last_leader_ns = now;
	for (uint32_t i = 0; i < SL_NODES_MAX; i++)
		p->el.heard[i] = now;
	p->el.lease_at = now + p->cfg.election_timeout_ns;
}

static void leader_tick(struct sl_proto *p, uint64_t now)
{
	struct sl_elect *e = &p->el;

	if (e->barrier_due)
		sl_leader_seal_barrier(p, now); /* -EAGAIN: the window is full, retried */
	if (e->transfer_to && now >= e->transfer_until)
		e->transfer_to = 0; /* the target did not catch up: give up */
	for (uint32_t i = 0; e->transfer_to && i < p->n_peers; i++)
		if (p->peers[i].id == e->transfer_to) {
			try_transfer(p, p->peers[i].received, now);
			if (p->role != SL_ROLE_LEADER)
				return;
		}
	if (p->delivered_pos < e->floor)
		sl_follower_deliver(p);
	if (now >= e->lease_at) {
		e->lease_at = now + p->cfg.election_timeout_ns / 2;
		if (answering(p, now) < e->lease_need) {
			e->timeout = draw_timeout(p);
			sl_role_follower(p, 0, now); /* they may have elected another */
		}
	}
}

void sl_elect_tick(struct sl_proto *p, uint64_t now)
{
	struct sl_elect *e = &p->el;

	if (e->arm)
		arm(p, now);
	switch (p->role) {
	case SL_ROLE_LEADER:
		leader_tick(p, now);
		break;
	case SL_ROLE_FOLLOWER:
		if (now >= e->deadline && p->ent.nholes)
			e->deadline = now + e->timeout; /* a log with holes must not lead */
		else if (now >= e->deadline)
			prevote(p, now);
		else if (e->prevoting && now >= e->vreq_at)
			send_vote_reqs(p, now);
		else
			sl_diverge_tick(p, now);
		break;
	case SL_ROLE_CANDIDATE:
		if (now >= e->deadline) { /* lost: back to asking for pre-votes */
			sl_role_follower(p, 0, now);
			prevote(p, now);
		} else if (now >= e->vreq_at)
			send_vote_reqs(p, now);
		break;
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t sl_elect_next_timer(const struct sl_proto *p)
{
	const struct sl_elect *e = &p->el;
	uint64_t limit = p->safe_pos < p->durable_pos ? p->safe_pos : p->durable_pos;

	if (e->arm)
		return 0;
	switch (p->role) {
	case SL_ROLE_LEADER:
		if (p->delivered_pos < e->floor && p->delivered_pos < limit &&
		    p->rot_wait != p->delivered_pos + 1)
			return 0; /* delivering the inherited tail ran out of budget */
		return e->lease_at;
	case SL_ROLE_FOLLOWER:
		return min_u64(min_u64(e->deadline, e->prevoting ? e->vreq_at : UINT64_MAX),
			       !e->synced && p->cfg.leader_id ? e->ask_at : UINT64_MAX);
	default:
		return min_u64(e->deadline, e->vreq_at);
	}
}
