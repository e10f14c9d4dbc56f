/* One simulated run; see sim_run.h.
 *
 * The loop: the next thing to happen is either the earliest event of the
 * heap or the earliest protocol timer of a live, running node (timers win
 * ties, so a node never sees a frame at a time its overdue timers have not
 * run yet). Callbacks never re-enter the protocol: what they cause
 * (durability, a persisted vote, engine acknowledgements, frame arrivals) is
 * scheduled as events, even at delay 0. After every step the invariants are
 * checked for the node that stepped.
 *
 * The committed log. Whenever a leader commits (or, with ack_level=applied,
 * makes deliverable) a position, its log up to there must extend the
 * committed log the simulator keeps (its "truth"): the same batches where
 * they overlap. That is invariants (a) and (b) across failovers: no
 * committed record lost or changed, committed prefixes identical. A node
 * may cut its log only where it leaves the committed log, deliver only
 * batches of the committed log, and at most one leader commits (or is
 * elected) in any epoch (f).
 *
 * What each ack level promises, as checked by invariant (a) for every
 * commit position a leader reaches (and, for ack_level=applied, for its
 * safe position too):
 *   - the leader holds the committed bytes durably, unless local=none;
 *   - received: `required` other nodes have held the bytes in memory (written
 *     them, at any time: a node that crashed since may have lost them,
 *     which is what received allows);
 *   - durable: `required` other nodes hold them durably now;
 *   - applied: `required` other nodes' engines acknowledged applying every
 *     committed record; and the safe position (what followers may deliver)
 *     is durable on `required` of them, as at level durable;
 *   - while the leader is degraded (on_timeout=degrade after ack_timeout)
 *     the policy promises only the leader's own durability.
 * `required` is computed here from DESIGN.md (sl_sim_required), never taken
 * from the protocol, so --broken-quorum (debug_undercount) is caught; so is
 * the number of votes an election needs (--broken-election).
 *
 * Tolerance. The policy keeps committed data through failures as long as W
 * nodes (the ack quorum counting the leader, or not with local=none) still
 * hold it: then every election quorum (N - W + 1 votes) meets one of them.
 * Crashes that lose unsynced committed bytes (ack_level=received,
 * local=none) and commits made by a degraded leader can leave fewer: from
 * then on the run is "beyond tolerance", a new leader may commit a
 * different history, and the simulator only counts that (rewritten). A node
 * whose log then leaves the new leader's below its own commit position
 * refuses to follow (the protocol never cuts committed records); the
 * operator rebuilds it from an empty log (rebuilds).
 *
 * Anti-entropy. Each node has the Merkle tree the store keeps (a leaf per
 * batch as appended, sealed: durable) behind the tree op, and the rewrite op
 * over its disk, so the protocol's real comparisons and repairs run. Rot
 * (SL_SIM_FAULT_ROT) hits durable batches of one replica at a time, before
 * or past the commit position, and only while
 * another node holds a good copy; the scrub (as io/store.c's: a batch that
 * does not read back as appended goes to sl_proto_repair) checks the
 * batches the disk knows were hit, since every other byte was verified as
 * written and never changed. A rotten batch is never cut below the commit
 * position (a), never delivered (c: delivered bytes equal the committed
 * log's), a comparison never finds the committed logs different (E), and
 * the run is done only once every rotten batch is repaired and every log
 * is the leader's byte for byte (E). A node holding rot is not crashed: the
 * real store refuses to start over corruption in a sealed segment, which
 * the simulator does not model. */
#include "sim_run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/hist.h"
#include "shiplog/proto.h"
#include "sim_check.h"
#include "sim_disk.h"
#include "sim_heap.h"
#include "sim_net.h"
#include "sim_rng.h"
#include "sim_set.h"

#define SIM_HEAP_CAP	 (1u << 17)
#define SIM_SLOTS	 16384 /* frames in flight; more is congestion */
#define SIM_HEAP_RESERVE 1024  /* heap room frames may not take: control events */
#define SIM_PARTS_MAX	 8
#define SIM_SPIN_MAX	 1000	     /* ticks at one instant before a timer counts as stuck */
#define SIM_EV_FORGED	 1u	     /* FRAME event flag: a forged copy, must change nothing */
#define SIM_EPOCHS_MAX	 4096	     /* epochs whose leader and committer are remembered */
#define SIM_LSN_SLACK	 4096	     /* LSNs a node may hold past the workload's records */
#define SIM_ENC_RECS	 32	     /* records in an engine-encoded batch, at most */
#define SIM_ENC_RAW	 (64u << 10) /* and their bytes: the largest batch_bytes */
#define SIM_LENT	 8	     /* batch buffers a node's engine lends its leader */
#define SIM_LENT_SIZE	 (SIM_ENC_RAW + SL_BATCH_HDR_SIZE)

struct sim_part {
	uint32_t mask; /* nodes on one side */
	int mode;      /* 0 both directions cut, 1 only mask -> rest, 2 only rest -> mask */
	int active;
};

/* A record the workload appended to one node, by LSN. */
struct sim_own {
	uint64_t hash;
	uint64_t at; /* virtual time of the append, 0 once its latency is counted */
	uint32_t len;
};

struct sim_node {
	struct sl_sim *sim;
	unsigned idx;
	uint32_t id;
	struct sl_proto *p;
	int up;
	int paused; /* SIGSTOPped: its events wait, its timers do not run */
	uint64_t paused_until;
	uint32_t gen; /* incarnation: events of an older one are stale */
	struct sl_sim_disk disk;
	int sync_pending; /* a DURABLE event is queued */
	int fail_sync;	  /* injected: the next sync fails */
	int fail_write;	  /* injected: the next write fails */
	int storage_failed;
	int rebuild_due;  /* its log diverged below its commit: a REBUILD is queued */
	int joined;	  /* rebuilt: it joins the running cluster from now on */
	int in_forged;	  /* a forged frame is being delivered */
	uint64_t spin_at; /* instant of the last tick, for stuck timers */
	uint32_t spin;
	uint64_t spin_ev; /* events dispatched at the last tick */
	/* The superblock: what survives a crash, and the write in flight. */
	uint64_t sb_epoch;
	uint32_t sb_vote;
	int persist_pending;
	uint64_t pers_epoch;
	uint32_t pers_vote;
	/* Votes: the last one it granted, and those it received per epoch. */
	uint64_t granted_epoch;
	uint32_t granted_to;
	uint64_t votes_epoch;
	uint32_t votes_from; /* bit per node index */
	/* What the protocol last said it is. */
	enum sl_role role;
	uint64_t epoch;
	/* Its current leadership, as checked. */
	uint64_t lead_epoch, lead_base, lead_floor;
	uint64_t commit_pos, commit_lsn; /* as the commit callback reported */
	uint64_t a_commit, a_safe;	 /* (a) checked up to these */
	uint64_t deg_commit, deg_safe;	 /* highest commit/safe reached while degraded */
	int prev_degraded;
	uint64_t prev_degrade_events;
	/* Acknowledged: maxima of the genuine STATUS frames it got while
	 * leading lead_epoch, per sender index and level, for (d). */
	uint64_t ack[SL_NODES_MAX][3];
	/* The engine: what it holds survives crashes (its own durable state). */
	uint64_t delivered_lsn; /* records it holds: delivered, or appended here */
	uint64_t told_applied;	/* highest LSN the protocol was told is applied */
	int apply_pending;
	struct sim_own *own; /* records appended here, by LSN */
	/* Encoded batches lent to the protocol (sl_proto_append_ref): a bit
	 * per buffer it holds. A buffer given back is poisoned, so a batch
	 * read from it afterwards breaks the byte checks. */
	uint8_t *lent;
	uint32_t lent_out;
	/* The store's Merkle tree over its batches as appended (tree op). */
	struct sl_merkle tree;
	uint64_t *leaf_pos;
	uint64_t differences; /* anti-entropy differences already judged */
};

struct sim_epoch {
	uint64_t epoch;
	int leader;    /* node index elected, -1 none */
	int committer; /* node index that committed in it, -1 none */
};

struct sl_sim {
	const struct sl_sim_params *prm;
	struct sl_sim_result *res;
	uint64_t *rng;
	uint64_t rng_rot; /* rot, scrub and forced promotions draw from their own stream */
	/* shipctl promote --force: the node forced (-1 none), the epoch it then
	 * leads (0 not yet), where that epoch's first batch goes (force_pos, its
	 * log's end), and the range the promotion declares may be lost: LSNs
	 * from loss_lsn on, positions from loss_pos on, past what the forced node
	 * knew committed (its log beyond may be an older epoch's tail). */
	int force_node;
	uint64_t force_epoch, force_pos, loss_lsn, loss_pos;
	uint64_t now;
	struct sl_proto_config cfg;
	struct sl_ack_policy clean; /* the policy without the debug switches */
	int required;		    /* follower acks the policy demands (ours) */
	unsigned w;		    /* nodes that hold a commit: required + the leader */
	unsigned votes;		    /* votes an election needs (ours) */
	uint64_t own_cap;	    /* LSNs a node's own-record table holds */
	struct sl_sim_heap heap;
	struct sl_sim_net net;
	struct sl_sim_check chk;
	struct sim_node node[SL_NODES_MAX];
	struct sim_part part[SIM_PARTS_MAX];
	unsigned n_parts;
	struct sl_sim_disk truth; /* the committed log */
	struct sl_sim_set sealed; /* (position, CRC) of every batch a leader sealed */
	struct sl_sim_set held;	  /* (node << 56 | end position, CRC) ever written */
	struct sim_epoch *epochs; /* SIM_EPOCHS_MAX */
	uint32_t n_epochs;
	struct sl_epoch_map map; /* scratch for restarts */
	uint8_t *raw;		 /* scratch: decoding a sealed batch */
	struct sl_wl wl;
	uint8_t rec[SL_SIM_REC_MAX];
	uint32_t rec_len; /* a record generated but not yet accepted (-EAGAIN) */
	uint8_t forged[SL_FRAME_MAX];
	uint8_t joined[SL_FRAME_MAX];		      /* a frame sent in two parts, joined */
	uint8_t enc_raw[SIM_ENC_RAW];		      /* an engine-encoded batch: its records */
	uint8_t enc[SIM_ENC_RAW + SL_BATCH_HDR_SIZE]; /* and the batch */
	uint64_t appended;
	uint64_t frame_pushes; /* frames put on the heap */
	struct sl_hist commit_lat;
	int append_pending;
	int healed;
	uint64_t dispatched; /* heap events handled: ticks between them are no spin */
	uint64_t end_time;   /* liveness deadline once healed */
	struct sl_proto_status st, st2;
};

/* ---- small helpers ---- */

static unsigned n_nodes(const struct sl_sim *s)
{
	return s->prm->nodes;
}

#define trace(s, node, ...) sl_sim_trace(&(s)->chk, (s)->now, (node), __VA_ARGS__)

static int push_ev(struct sl_sim *s, const struct sl_sim_event *e)
{
	int rc = sl_sim_heap_push(&s->heap, e);

	if (rc < 0) /* control events are few and bounded: a full heap is a sim bug */
		sl_sim_violation(&s->chk, 'P', e->node, UINT64_MAX, UINT64_MAX, s->now,
				 "simulator event heap full (%u events)", s->heap.cap);
	return rc;
}

static int push(struct sl_sim *s, uint64_t at, uint16_t type, unsigned node, uint64_t arg)
{
	struct sl_sim_event e = {.time = at, .type = type, .node = (uint8_t)node, .arg = arg};

	e.slot = -1;
	e.gen = s->node[node].gen;
	return push_ev(s, &e);
}

static int node_index(const struct sl_sim *s, uint32_t id)
{
	for (unsigned i = 0; i < n_nodes(s); i++)
		if (s->node[i].id == id)
			return (int)i;
	return -1;
}

static int running(const struct sim_node *n)
{
	return n->up && !n->paused;
}

/* The leader of the highest epoch among live nodes, NULL when none. */
static struct sim_node *cur_leader(struct sl_sim *s)
{
	struct sim_node *best = NULL;

	for (unsigned i = 0; i < n_nodes(s); i++) {
		struct sim_node *n = &s->node[i];

		if (n->up && n->role == SL_ROLE_LEADER && !n->storage_failed &&
		    (!best || n->epoch > best->epoch))
			best = n;
	}
	return best;
}

static struct sim_epoch *epoch_rec(struct sl_sim *s, uint64_t epoch)
{
	for (uint32_t i = s->n_epochs; i > 0; i--)
		if (s->epochs[i - 1].epoch == epoch)
			return &s->epochs[i - 1];
	if (s->n_epochs == SIM_EPOCHS_MAX)
		return NULL;
	s->epochs[s->n_epochs] = (struct sim_epoch){.epoch = epoch, .leader = -1, .committer = -1};
	return &s->epochs[s->n_epochs++];
}

/* A callback during a forged frame is a state change: invariant (e). */
static int forged_guard(struct sim_node *n, const char *what)
{
	if (!n->in_forged)
		return 0;
	if (n->in_forged == 2)
		return 0; /* the one reply allowed (see cb_send) */
	sl_sim_violation(&n->sim->chk, 'e', (int)n->idx, UINT64_MAX, UINT64_MAX, n->sim->now,
			 "a forged frame made the node call %s", what);
	return 1;
}

static uint64_t disk_latency(struct sl_sim *s)
{
	const struct sl_sim_params *p = s->prm;
	uint64_t lat = sl_sim_range(s->rng, p->disk_lat_ns / 2, p->disk_lat_ns * 3 / 2);

	if (sl_sim_chance(s->rng, p->disk_tail_ppm))
		lat += sl_sim_range(s->rng, 0, p->disk_tail_ns);
	return lat;
}

/* ---- the committed log ---- */

/* Does node j's log hold the committed log up to `pos` (ending in the batch
 * with CRC `crc`)? A node that is down counts only for what it has synced. */
static int holds(const struct sim_node *j, uint64_t pos, int64_t crc)
{
	uint64_t have = j->up ? j->disk.end : j->disk.durable;

	return have >= pos && sl_sim_disk_crc_at_end(&j->disk, pos) == crc;
}

/* Fewer than W nodes hold the committed log: a failure beyond what the
 * policy tolerates has happened (see the top of this file). */
static void check_tolerance(struct sl_sim *s, const char *why)
{
	uint64_t pos = s->truth.end;
	int64_t crc = sl_sim_disk_crc_at_end(&s->truth, pos);
	unsigned have = 0, need = s->w ? s->w : 1;

	if (s->res->beyond || pos == 0)
		return;
	for (unsigned i = 0; i < n_nodes(s); i++)
		have += (unsigned)holds(&s->node[i], pos, crc);
	if (have >= need)
		return;
	s->res->beyond = 1;
	trace(s, -1,
	      "BEYOND TOLERANCE: committed log (%" PRIu64 " bytes) held by %" PRIu64
	      " nodes < W %" PRIu64,
	      pos, (uint64_t)have, (uint64_t)need);
	(void)why;
}

/* The bytes of batch i of node n as appended: its own, or when rot hit
 * them, an intact copy another node holds (NULL: none). */
static const uint8_t *batch_bytes(const struct sl_sim *s, const struct sim_node *n, uint32_t i)
{
	const struct sl_sim_bref *b = &n->disk.idx[i];

	if (!sl_sim_disk_rotten(&n->disk, i))
		return n->disk.buf + b->pos;
	for (unsigned k = 0; k < n_nodes(s); k++) {
		const struct sim_node *m = &s->node[k];
		int64_t at = sl_sim_disk_find(&m->disk, b->pos);

		if (at >= 0 && m->disk.idx[at].hdr_crc == b->hdr_crc &&
		    sl_sim_disk_intact(&m->disk, (uint32_t)at))
			return m->disk.buf + b->pos;
	}
	return NULL;
}

/* Copy n's batches [from, to) into the committed log. */
static void truth_copy(struct sl_sim *s, const struct sim_node *n, uint64_t from, uint64_t to)
{
	int64_t i = sl_sim_disk_find(&n->disk, from);

	for (; i >= 0 && (uint64_t)i < n->disk.n_idx && n->disk.idx[i].pos < to; i++) {
		const struct sl_sim_bref *b = &n->disk.idx[i];
		const uint8_t *bytes = batch_bytes(s, n, (uint32_t)i);

		if (!bytes && s->res->beyond) {
			trace(s, (int)n->idx, "committed log stops at %" PRIu64 ": no intact copy",
			      b->pos); /* the good copies went beyond tolerance */
			return;
		}
		if (!bytes) {
			sl_sim_violation(&s->chk, 'E', (int)n->idx, b->pos, b->base_lsn, s->now,
					 "a batch committed where no node holds an intact copy");
			return;
		}
		if (sl_sim_disk_write(&s->truth, b->pos, bytes, b->len, 0) < 0) {
			sl_sim_violation(&s->chk, 'P', (int)n->idx, b->pos, b->base_lsn, s->now,
					 "the committed log refused a batch (simulator capacity)");
			return;
		}
	}
	sl_sim_disk_sync(&s->truth, 0);
}

/* Does this log hold the forced history: the forced epoch's first batch at
 * force_pos? */
static int forced_history(const struct sl_sim *s, const struct sl_sim_disk *d)
{
	int64_t i = sl_sim_disk_find(d, s->force_pos);

	return s->force_epoch && i >= 0 && d->idx[i].epoch == s->force_epoch;
}

/* The leader of the forced epoch commits a log that leaves the committed
 * log: allowed where the promotion said records may be lost (from
 * loss_pos on, both logs agreeing before it), which the committed log
 * then loses. So are commits there by leaders of older epochs, which the
 * committed log never takes. 1 when accepted. */
static int forced_loss(struct sl_sim *s, struct sim_node *n, uint64_t pos)
{
	uint64_t fp = s->loss_pos;

	/* A leader of an older epoch that still commits (it has not heard of
	 * the forced one yet) commits only what the promotion declared lost. */
	if (s->force_epoch && n->lead_epoch < s->force_epoch && pos > fp && s->truth.end >= fp &&
	    sl_sim_disk_crc_at_end(&n->disk, fp) == sl_sim_disk_crc_at_end(&s->truth, fp)) {
		trace(s, (int)n->idx,
		      "commit to %" PRIu64 " in epoch %" PRIu64 ", older than the forced one: lost",
		      pos, n->lead_epoch);
		return 1;
	}
	/* A leader of the forced history (the forced epoch's first batch at
	 * fp: the forced node, or any later leader whose log took it over),
	 * while the committed log does not hold that history yet. */
	if (!s->force_epoch || !forced_history(s, &n->disk) || forced_history(s, &s->truth) ||
	    pos < fp || s->truth.end <= fp || sl_sim_disk_crc_at_end(&n->disk, fp) < 0 ||
	    sl_sim_disk_crc_at_end(&n->disk, fp) != sl_sim_disk_crc_at_end(&s->truth, fp))
		return 0;
	trace(s, (int)n->idx,
	      "FORCED LOSS: committed LSNs %" PRIu64 "..%" PRIu64 " (from position %" PRIu64
	      ") replaced, as the promotion declared",
	      sl_sim_disk_lsn_below(&s->truth, fp) + 1, s->truth.next_lsn - 1, fp);
	s->res->forced_lost += s->truth.next_lsn - 1 - sl_sim_disk_lsn_below(&s->truth, fp);
	sl_sim_disk_truncate(&s->truth, fp);
	truth_copy(s, n, fp, pos);
	return 1;
}

/* Leader n commits (or makes deliverable) its log up to `pos`: it must
 * extend the committed log. */
static void truth_extend(struct sl_sim *s, struct sim_node *n, uint64_t pos)
{
	uint64_t t = s->truth.end, at = pos < t ? pos : t;
	int64_t mine = sl_sim_disk_crc_at_end(&n->disk, at);
	int64_t theirs = sl_sim_disk_crc_at_end(&s->truth, at);

	if ((mine != theirs || mine < 0) && forced_loss(s, n, pos))
		return;
	if (mine != theirs || mine < 0) {
		if (!s->res->beyond) {
			sl_sim_violation(&s->chk, 'a', (int)n->idx, at, UINT64_MAX, s->now,
					 "leader in epoch %" PRIu64 " commits up to %" PRIu64
					 ", but its log leaves the committed log (%" PRIu64
					 " bytes, LSNs to %" PRIu64 ") at or before here",
					 n->epoch, pos, t, s->truth.next_lsn - 1);
			return;
		}
		/* Beyond tolerance the committed log may be replaced. */
		s->res->rewritten++;
		trace(s, (int)n->idx, "committed log rewritten from %" PRIu64 " bytes", t);
		sl_sim_disk_truncate(&s->truth, 0);
		truth_copy(s, n, 0, pos);
		return;
	}
	if (pos > t) {
		truth_copy(s, n, t, pos);
		check_tolerance(s, "commit");
	}
}

/* Is the batch at `pos` with CRC `crc` committed? */
static int committed_batch(const struct sl_sim *s, uint64_t pos, uint32_t crc)
{
	int64_t i = sl_sim_disk_find(&s->truth, pos);

	return i >= 0 && s->truth.idx[i].hdr_crc == crc;
}

/* Are these the bytes of the committed batch at `pos`? */
static int truth_bytes(const struct sl_sim *s, uint64_t pos, const uint8_t *b, size_t len)
{
	int64_t i = sl_sim_disk_find(&s->truth, pos);

	return i >= 0 && s->truth.idx[i].len == len && memcmp(s->truth.buf + pos, b, len) == 0;
}

/* ---- leadership bookkeeping ---- */

static void lead_start(struct sl_sim *s, struct sim_node *n)
{
	sl_proto_get_status(n->p, &s->st2);
	n->lead_epoch = s->st2.epoch;
	n->lead_base = n->commit_pos = n->a_commit = s->st2.commit_pos;
	n->commit_lsn = s->st2.commit_lsn;
	n->a_safe = s->st2.safe_pos;
	n->lead_floor = s->prm->elect ? 0 : 1;
	n->deg_commit = n->deg_safe = 0;
	n->prev_degraded = 0;
	n->prev_degrade_events = s->st2.degrade_events;
	memset(n->ack, 0, sizeof(n->ack));
}

/* Elected: enough votes reached it (our count, not the protocol's), and no
 * other node led this epoch. */
static void check_election(struct sl_sim *s, struct sim_node *n, uint64_t epoch)
{
	struct sim_epoch *er = epoch_rec(s, epoch);
	unsigned votes = 0;

	if (er && er->leader >= 0 && er->leader != (int)n->idx)
		sl_sim_violation(&s->chk, 'f', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "elected in epoch %" PRIu64 ", which node %d already led", epoch,
				 er->leader + 1);
	if (er)
		er->leader = (int)n->idx;
	if (n->votes_epoch == epoch)
		votes = (unsigned)__builtin_popcount(n->votes_from & ~(1u << n->idx));
	votes += n->sb_epoch == epoch && n->sb_vote == n->id; /* its own, persisted */
	if (s->force_node == (int)n->idx && !s->force_epoch) {
		s->force_epoch = epoch; /* leads on its own vote: the operator's order */
		trace(s, (int)n->idx, "leads epoch %" PRIu64 " as forced", epoch);
		return;
	}
	if (votes < s->votes && !s->prm->trust_votes)
		sl_sim_violation(&s->chk, 'V', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "leads epoch %" PRIu64 " with %u persisted/received votes, the "
				 "policy demands %u",
				 epoch, votes, s->votes);
}

static void cb_role(void *ctx, enum sl_role role, uint64_t epoch, uint32_t leader_id)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;

	if (forged_guard(n, "role"))
		return;
	trace(s, (int)n->idx, "ROLE %" PRIu64 " epoch=%" PRIu64 " leader=%" PRIu64, (uint64_t)role,
	      epoch, (uint64_t)leader_id);
	n->role = role;
	n->epoch = epoch;
	if (role == SL_ROLE_LEADER) {
		s->res->leader_changes++;
		check_election(s, n, epoch);
		lead_start(s, n);
	} else if (role == SL_ROLE_FOLLOWER && n->delivered_lsn > n->told_applied) {
		n->apply_pending = 0; /* re-tell the engine's state as a follower */
		push(s, s->now, SL_SIM_EV_APPLIED, n->idx, 0);
		n->apply_pending = 1;
	}
}

/* ---- the disk and superblock behind write/read/truncate/persist ---- */

static void schedule_sync(struct sl_sim *s, struct sim_node *n)
{
	uint64_t at = sl_sim_disk_next_sync(&n->disk);

	if (n->sync_pending || at == UINT64_MAX)
		return;
	if (push(s, at, SL_SIM_EV_DURABLE, n->idx, 0) == 0)
		n->sync_pending = 1;
}

/* A leader's batch holds exactly the records the workload appended to it. */
static void check_sealed(struct sl_sim *s, struct sim_node *n, const uint8_t *b, size_t len)
{
	struct sl_batch_hdr h;
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t rlen, i = 0;
	int raw = sl_batch_decode(b, len, &s->cfg.limits, s->raw, s->cfg.limits.max_raw_bytes, &h);

	if (raw < 0) {
		sl_sim_violation(&s->chk, 'W', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "a sealed batch does not decode (%d)", raw);
		return;
	}
	sl_rec_iter_init(&it, s->raw, (size_t)raw);
	while (sl_rec_next(&it, &rec, &rlen) == 1) {
		uint64_t lsn = h.base_lsn + i++;
		const struct sim_own *o = lsn < s->own_cap ? &n->own[lsn] : NULL;

		if (!o || o->len != rlen || o->hash != sl_sim_hash(rec, rlen)) {
			sl_sim_violation(&s->chk, 'b', (int)n->idx, h.position, lsn, s->now,
					 "the leader sealed a record (%u bytes) the workload did "
					 "not append to it",
					 rlen);
			return;
		}
	}
}

static void cb_release(void *ctx, uint8_t *batch)
{
	struct sim_node *n = ctx;
	size_t j = (size_t)(batch - n->lent) / SIM_LENT_SIZE;

	if (batch < n->lent || j >= SIM_LENT || batch != n->lent + j * SIM_LENT_SIZE ||
	    !(n->lent_out >> j & 1)) {
		sl_sim_violation(&n->sim->chk, 'P', (int)n->idx, UINT64_MAX, UINT64_MAX,
				 n->sim->now, "released a batch buffer it was not lent");
		return;
	}
	n->lent_out &= ~(1u << j);
	memset(batch, 0x5a, SIM_LENT_SIZE);
}

/* After sl_proto_destroy every lent buffer is back. */
static void check_lent_back(struct sl_sim *s, struct sim_node *n)
{
	if (n->lent_out)
		sl_sim_violation(&s->chk, 'P', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "destroyed with lent batch buffers 0x%x not given back",
				 n->lent_out);
	n->lent_out = 0;
}

/* ---- the Merkle tree and the rewrite behind the tree/rewrite ops ---- */

static void tree_add(struct sim_node *n, uint32_t i)
{
	const struct sl_sim_bref *b = &n->disk.idx[i];

	n->leaf_pos[n->tree.n] = b->pos;
	if (sl_merkle_add(&n->tree, sl_merkle_leaf(b->pos, b->len, b->hdr_crc)) < 0)
		sl_sim_violation(&n->sim->chk, 'P', (int)n->idx, b->pos, b->base_lsn, n->sim->now,
				 "the Merkle tree is full (simulator capacity)");
}

/* The tree follows the log: leaves of batches since cut go, new ones come. */
static void tree_sync(struct sim_node *n)
{
	uint64_t keep = n->tree.n < n->disk.n_idx ? n->tree.n : n->disk.n_idx;

	while (keep > 0) {
		const struct sl_sim_bref *b = &n->disk.idx[keep - 1];

		if (n->tree.level[0][keep - 1] == sl_merkle_leaf(b->pos, b->len, b->hdr_crc))
			break;
		keep--;
	}
	sl_merkle_truncate(&n->tree, keep);
	while (n->tree.n < n->disk.n_idx)
		tree_add(n, (uint32_t)n->tree.n);
}

static int cb_tree(void *ctx, struct sl_proto_tree *out)
{
	struct sim_node *n = ctx;
	uint64_t sealed = 0;

	if (forged_guard(n, "tree"))
		return -EIO;
	tree_sync(n);
	while (sealed < n->disk.n_idx &&
	       n->disk.idx[sealed].pos + n->disk.idx[sealed].len <= n->disk.durable)
		sealed++;
	*out = (struct sl_proto_tree){.m = &n->tree,
				      .leaf_pos = n->leaf_pos,
				      .base_pos = 0,
				      .leaves = n->tree.n,
				      .sealed = sealed};
	return 0;
}

static int cb_rewrite(void *ctx, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	int64_t i = sl_sim_disk_find(&n->disk, pos);
	int rc;

	if (forged_guard(n, "rewrite"))
		return 0;
	rc = sl_sim_disk_rewrite(&n->disk, pos, batch, len);
	trace(s, (int)n->idx, "REWRITE pos=%" PRIu64 " len=%" PRIu64 " -> %" PRId64, pos,
	      (uint64_t)len, (int64_t)rc);
	if (rc < 0)
		sl_sim_violation(&s->chk, 'E', (int)n->idx, pos, UINT64_MAX, s->now,
				 "rewrite of %zu bytes refused (%d): not the batch appended there, "
				 "or not durable",
				 len, rc);
	else if (i >= 0)
		s->res->repairs++;
	return rc;
}

static int cb_write(void *ctx, const uint8_t *batch, size_t len, uint64_t pos)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	struct sl_batch_hdr h;
	int rc;

	if (forged_guard(n, "write"))
		return 0;
	trace(s, (int)n->idx, "write pos=%" PRIu64 " len=%" PRIu64, pos, len);
	if (sl_batch_decode_hdr(batch, len, &s->cfg.limits, &h) < 0) {
		sl_sim_violation(&s->chk, 'W', (int)n->idx, pos, UINT64_MAX, s->now,
				 "write of %zu bytes that are not a batch", len);
		return -EINVAL;
	}
	/* A leader's batch is sealed even when its own write then fails: its
	 * frames may already be on their way. */
	if (n->role == SL_ROLE_LEADER) {
		check_sealed(s, n, batch, len);
		sl_sim_set_add(&s->sealed, pos, h.hdr_crc);
		if (!n->lead_floor && h.epoch == n->lead_epoch)
			n->lead_floor = pos + len;
	} else if (!sl_sim_set_has(&s->sealed, pos, h.hdr_crc)) {
		sl_sim_violation(&s->chk, 'b', (int)n->idx, pos, h.base_lsn, s->now,
				 "a follower writes a batch no leader sealed (epoch %" PRIu64 ")",
				 h.epoch);
	}
	if (n->fail_write) {
		n->fail_write = 0;
		n->storage_failed = 1;
		s->res->storage_errors++;
		trace(s, (int)n->idx, "write FAILS (injected EIO)");
		return -EIO;
	}
	rc = sl_sim_disk_write(&n->disk, pos, batch, len, s->now + disk_latency(s));
	if (rc < 0) {
		sl_sim_violation(&s->chk, 'W', (int)n->idx, pos, UINT64_MAX, s->now,
				 "write of %zu bytes refused (%d): log end %" PRIu64
				 ", next LSN %" PRIu64
				 "; not a verified, chained append at the end",
				 len, rc, n->disk.end, n->disk.next_lsn);
		return rc;
	}
	sl_sim_set_add(&s->held, (uint64_t)n->idx << 56 | (pos + len), h.hdr_crc);
	tree_sync(n);
	schedule_sync(s, n);
	return 0;
}

static int cb_read(void *ctx, uint64_t pos, uint8_t *buf, size_t cap)
{
	struct sim_node *n = ctx;
	int rc;

	int64_t i = sl_sim_disk_find(&n->disk, pos);

	if (forged_guard(n, "read"))
		return -EIO;
	/* The store verifies what it reads: a rotten batch is an I/O error. */
	if (i >= 0 && !sl_sim_disk_intact(&n->disk, (uint32_t)i)) {
		sl_sim_trace(&n->sim->chk, n->sim->now, (int)n->idx,
			     "read pos=%" PRIu64 " -> EIO (rotten: %" PRIu64 ")", pos,
			     (uint64_t)sl_sim_disk_rotten(&n->disk, (uint32_t)i));
		if (!sl_sim_disk_rotten(&n->disk, (uint32_t)i))
			sl_sim_violation(&n->sim->chk, 'E', (int)n->idx, pos, UINT64_MAX,
					 n->sim->now, "a batch no rot hit does not read back");
		return -EIO;
	}
	rc = sl_sim_disk_read(&n->disk, pos, buf, cap);
	sl_sim_trace(&n->sim->chk, n->sim->now, (int)n->idx, "read pos=%" PRIu64 " -> %" PRId64,
		     pos, (int64_t)rc);
	if (rc < 0)
		sl_sim_violation(&n->sim->chk, 'W', (int)n->idx, pos, UINT64_MAX, n->sim->now,
				 "read of the batch at this position failed (%d): log end %" PRIu64
				 ", buffer %zu bytes",
				 rc, n->disk.end, cap);
	return rc;
}

/* The log is cut at pos: never where it holds a committed batch. The
 * engine forgets what it held from lsn on. */
static int cb_truncate(void *ctx, uint64_t pos, uint64_t lsn)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	int64_t i = sl_sim_disk_find(&n->disk, pos);

	if (forged_guard(n, "truncate"))
		return 0;
	trace(s, (int)n->idx, "TRUNCATE pos=%" PRIu64 " lsn=%" PRIu64 " (log end %" PRIu64 ")", pos,
	      lsn, n->disk.end);
	if (pos < n->disk.end) {
		/* After a forced promotion, by LSN: an empty batch may precede loss_pos. */
		if (i >= 0 && committed_batch(s, pos, n->disk.idx[i].hdr_crc) && !s->res->beyond &&
		    !(s->force_node >= 0 && lsn >= s->loss_lsn))
			sl_sim_violation(&s->chk, 'a', (int)n->idx, pos, lsn, s->now,
					 "cuts a committed batch from its log");
		if (sl_sim_disk_truncate(&n->disk, pos) < 0 || n->disk.next_lsn != lsn)
			sl_sim_violation(&s->chk, 'W', (int)n->idx, pos, lsn, s->now,
					 "truncation not at a batch boundary of the log, or at "
					 "another LSN (log has %" PRIu64 " there)",
					 n->disk.next_lsn);
		check_tolerance(s, "truncate");
		tree_sync(n);
	} else if (pos != n->disk.end || lsn != n->disk.next_lsn) {
		sl_sim_violation(&s->chk, 'W', (int)n->idx, pos, lsn, s->now,
				 "truncation past the log end %" PRIu64 " (next LSN %" PRIu64 ")",
				 n->disk.end, n->disk.next_lsn);
	}
	if (n->delivered_lsn >= lsn)
		n->delivered_lsn = lsn - 1;
	if (n->told_applied >= lsn)
		n->told_applied = lsn - 1;
	return 0;
}

static int cb_persist(void *ctx, uint64_t epoch, uint32_t vote)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;

	if (forged_guard(n, "persist"))
		return 0;
	trace(s, (int)n->idx, "persist epoch=%" PRIu64 " vote=%" PRIu64, epoch, (uint64_t)vote);
	if (n->persist_pending || epoch < n->sb_epoch)
		sl_sim_violation(
		    &s->chk, 'V', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
		    "persist of epoch %" PRIu64 " while %s (superblock epoch %" PRIu64 ")", epoch,
		    n->persist_pending ? "another is in flight" : "lower", n->sb_epoch);
	n->persist_pending = 1;
	n->pers_epoch = epoch;
	n->pers_vote = vote;
	push(s, s->now + disk_latency(s), SL_SIM_EV_PERSISTED, n->idx, 0);
	return 0;
}

/* ---- the network behind send ---- */

/* Is this a frame a correct node would send? */
static int frame_sane(struct sl_sim *s, struct sim_node *n, unsigned to, const uint8_t *frame,
		      size_t len, struct sl_frame *f)
{
	int rc = sl_frame_decode(frame, len, f);
	const char *why = NULL;

	if (rc < 0)
		why = sl_err_msg();
	else if (len > s->cfg.mtu - SL_FRAME_IP_UDP)
		why = "larger than the MTU allows";
	else if (f->hdr.sender != n->id || f->hdr.receiver != s->node[to].id)
		why = "sender/receiver fields do not match the send call";
	else if (memcmp(f->hdr.cluster_id, s->cfg.cluster_id, 16) != 0 ||
		 f->hdr.stream_id != s->cfg.stream_id || f->hdr.epoch != n->epoch)
		why = "wrong cluster, stream or epoch";
	if (!why)
		return 1;
	sl_sim_violation(&s->chk, 'F', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
			 "bad frame of %zu bytes to node %u: %s", len, to + 1, why);
	return 0;
}

/* V: a vote (or a request, which carries the candidate's own vote) leaves
 * only once the superblock holds it, and a node grants one per epoch. */
static void check_vote_sent(struct sl_sim *s, struct sim_node *n, const struct sl_frame *f)
{
	uint64_t e = f->hdr.epoch;
	uint32_t cand = f->hdr.type == SL_FRAME_VOTE ? f->hdr.receiver : n->id;

	if (f->hdr.type == SL_FRAME_VOTE && !f->vote.granted)
		return;
	if (n->sb_epoch != e || n->sb_vote != cand)
		sl_sim_violation(&s->chk, 'V', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "%s for node %u in epoch %" PRIu64
				 " sent before it was persisted (superblock: epoch %" PRIu64
				 " vote %u)",
				 sl_frame_type_name(f->hdr.type), cand, e, n->sb_epoch, n->sb_vote);
	if (f->hdr.type != SL_FRAME_VOTE)
		return;
	if (n->granted_epoch == e && n->granted_to != cand)
		sl_sim_violation(&s->chk, 'V', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "granted votes to nodes %u and %u in epoch %" PRIu64,
				 n->granted_to, cand, e);
	n->granted_epoch = e;
	n->granted_to = cand;
}

static void transmit(struct sl_sim *s, unsigned from, unsigned to, const uint8_t *frame, size_t len,
		     uint32_t flags)
{
	struct sl_sim_event e = {
	    .type = SL_SIM_EV_FRAME, .node = (uint8_t)to, .from = (uint8_t)from};
	int slot;

	if (sl_sim_heap_room(&s->heap) <= SIM_HEAP_RESERVE ||
	    (slot = sl_sim_net_slot_put(&s->net, frame, len)) < 0) {
		s->net.st.congested++;
		return;
	}
	e.time = s->now + sl_sim_net_delay(&s->net, from, to, s->rng);
	e.slot = slot;
	e.flags = flags;
	sl_sim_heap_push(&s->heap, &e); /* room checked above */
	s->frame_pushes++;
}

static void forge_copy(struct sl_sim *s, unsigned from, unsigned to, const uint8_t *frame,
		       size_t len)
{
	enum sl_sim_forge kind = (enum sl_sim_forge)sl_sim_below(s->rng, SL_SIM_FORGE_KINDS);
	int n = sl_sim_net_forge(kind, frame, len, s->forged, sizeof(s->forged), s->rng);

	if (n < 0)
		return;
	s->net.st.forged++;
	transmit(s, from, to, s->forged, (size_t)n, SIM_EV_FORGED | (uint32_t)kind << 8);
}

static int cb_send(void *ctx, uint32_t to_id, const uint8_t *head, size_t head_len,
		   const uint8_t *body, size_t body_len)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	int to = node_index(s, to_id);
	const uint8_t *frame = head;
	size_t len = head_len + body_len;
	struct sl_frame f;

	if (body_len > 0) { /* the network carries whole frames */
		if (len > sizeof(s->joined)) {
			sl_sim_violation(&s->chk, 'F', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
					 "frame of %zu bytes in two parts", len);
			return 0;
		}
		memcpy(s->joined, head, head_len);
		memcpy(s->joined + head_len, body, body_len);
		frame = s->joined;
	}

	/* A stale frame may be answered with a denied vote that tells its
	 * sender our epoch: a reply, not a change of state. */
	if (n->in_forged && sl_frame_decode(frame, len, &f) == 0 && f.hdr.type == SL_FRAME_VOTE &&
	    !f.vote.granted && !f.vote.flags)
		n->in_forged = 2;
	if (forged_guard(n, "send"))
		return 0;
	if (to < 0 || to == (int)n->idx) {
		sl_sim_violation(&s->chk, 'F', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "send to unknown node id %u", to_id);
		return 0;
	}
	if (!frame_sane(s, n, (unsigned)to, frame, len, &f))
		return 0;
	if ((f.hdr.type == SL_FRAME_VOTE && !f.vote.flags) ||
	    (f.hdr.type == SL_FRAME_VOTE_REQ && !(f.vreq.flags & SL_VOTE_F_PRE)))
		check_vote_sent(s, n, &f);
	s->net.st.sent++;
	if (sl_sim_net_lose(&s->net, n->idx, (unsigned)to, s->rng)) {
		s->net.st.lost++;
		trace(s, (int)n->idx, "frame to n%" PRIu64 " lost (%" PRIu64 " bytes)",
		      (uint64_t)to + 1, len);
	} else {
		transmit(s, n->idx, (unsigned)to, frame, len, 0);
	}
	if (sl_sim_net_dup(&s->net, n->idx, (unsigned)to, s->rng)) {
		s->net.st.duplicated++;
		transmit(s, n->idx, (unsigned)to, frame, len, 0);
	}
	if (s->net.forge_ppm && sl_sim_chance(s->rng, s->net.forge_ppm))
		forge_copy(s, n->idx, (unsigned)to, frame, len);
	return 0;
}

/* ---- the engine behind deliver, and the leader's commit ---- */

static void schedule_apply(struct sl_sim *s, struct sim_node *n)
{
	uint64_t d = s->prm->apply_delay_ns ? sl_sim_range(s->rng, 0, s->prm->apply_delay_ns) : 0;

	if (n->apply_pending)
		return;
	if (push(s, s->now + d, SL_SIM_EV_APPLIED, n->idx, 0) == 0)
		n->apply_pending = 1;
}

/* The delivered batch has exactly its header's count of well-formed records. */
static void check_records(struct sl_sim *s, struct sim_node *n, const struct sl_batch_hdr *h,
			  const uint8_t *raw, size_t raw_len)
{
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t len, i = 0;
	int rc;

	sl_rec_iter_init(&it, raw, raw_len);
	while ((rc = sl_rec_next(&it, &rec, &len)) == 1 && i < h->record_count)
		i++;
	if (rc < 0 || i != h->record_count || sl_rec_next(&it, &rec, &len) != 0)
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, h->base_lsn, s->now,
				 "delivered batch holds %u well-formed records, header says %u", i,
				 h->record_count);
}

static void truth_from_status(struct sl_sim *s, struct sim_node *n)
{
	uint64_t pos;

	if (n->role != SL_ROLE_LEADER)
		return;
	sl_proto_get_status(n->p, &s->st2);
	pos = s->st2.safe_pos > s->st2.commit_pos ? s->st2.safe_pos : s->st2.commit_pos;
	if (pos > s->truth.end)
		truth_extend(s, n, pos);
}

/* (c): the next LSN, exactly once, and only committed batches. The
 * protocol hands over the batch as logged; the engine decodes it. */
static int cb_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *batch, size_t len)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	uint64_t last = h->base_lsn + h->record_count - 1;
	struct sl_batch_hdr dh;
	int raw_len;

	if (forged_guard(n, "deliver"))
		return 0;
	raw_len =
	    sl_batch_decode(batch, len, &s->cfg.limits, s->raw, s->cfg.limits.max_raw_bytes, &dh);
	if (raw_len < 0 || dh.hdr_crc != h->hdr_crc || dh.base_lsn != h->base_lsn ||
	    dh.record_count != h->record_count) {
		sl_sim_violation(&s->chk, 'b', (int)n->idx, h->position, h->base_lsn, s->now,
				 "delivered batch does not decode to its header (%d): %s", raw_len,
				 raw_len < 0 ? sl_err_msg() : "headers differ");
		return 0;
	}
	trace(s, (int)n->idx, "deliver lsn=%" PRIu64 "..%" PRIu64 " pos=%" PRIu64, h->base_lsn,
	      last, h->position);
	if (h->record_count == 0) {
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, h->base_lsn, s->now,
				 "deliver called with an empty batch");
		return 0;
	}
	if (h->base_lsn != n->delivered_lsn + 1) {
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, h->base_lsn, s->now,
				 "delivered LSNs %" PRIu64 "..%" PRIu64 " after LSN %" PRIu64
				 " (%s)",
				 h->base_lsn, last, n->delivered_lsn,
				 h->base_lsn <= n->delivered_lsn ? "delivered twice" : "a gap");
		return 0;
	}
	truth_from_status(s, n);
	if (s->force_epoch && h->epoch < s->force_epoch && h->position >= s->loss_pos) {
		trace(s, (int)n->idx, "delivered what the forced promotion declared lost");
	} else if (!committed_batch(s, h->position, h->hdr_crc) && !s->res->beyond) {
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, last, s->now,
				 "delivered a batch that is not committed (committed log: %" PRIu64
				 " bytes, LSNs to %" PRIu64 ")",
				 s->truth.end, s->truth.next_lsn - 1);
		return 0;
	}
	if (!s->res->beyond && !truth_bytes(s, h->position, batch, len) &&
	    !(s->force_epoch && h->epoch < s->force_epoch && h->position >= s->loss_pos)) {
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, last, s->now,
				 "delivered a batch whose %zu bytes are not the committed ones",
				 len);
		return 0;
	}
	check_records(s, n, h, s->raw, (size_t)raw_len);
	n->delivered_lsn = last;
	if (n->role == SL_ROLE_FOLLOWER)
		schedule_apply(s, n);
	return 0;
}

/* A degraded leader commits what only it may hold: when fewer than W nodes
 * hold it, the run is beyond tolerance from this commit on (another leader
 * may already have committed something else). */
static void degraded_commit(struct sl_sim *s, struct sim_node *n, uint64_t pos)
{
	int64_t crc = sl_sim_disk_crc_at_end(&n->disk, pos);
	unsigned have = 0;

	if (s->res->beyond)
		return;
	sl_proto_get_status(n->p, &s->st2);
	if (!s->st2.degraded && s->st2.degrade_events == n->prev_degrade_events)
		return;
	for (unsigned i = 0; i < n_nodes(s); i++)
		have += (unsigned)holds(&s->node[i], pos, crc);
	if (have >= (s->w ? s->w : 1))
		return;
	s->res->beyond = 1;
	trace(s, (int)n->idx,
	      "BEYOND TOLERANCE: a degraded commit to %" PRIu64 " held by %" PRIu64 " nodes", pos,
	      (uint64_t)have);
}

static void cb_commit(void *ctx, uint64_t lsn, uint64_t pos)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	struct sim_epoch *er;

	if (forged_guard(n, "commit"))
		return;
	trace(s, (int)n->idx, "commit lsn=%" PRIu64 " pos=%" PRIu64, lsn, pos);
	if (n->role != SL_ROLE_LEADER || pos < n->commit_pos || lsn < n->commit_lsn) {
		sl_sim_violation(&s->chk, 'd', (int)n->idx, pos, lsn, s->now,
				 "commit went backwards (from pos %" PRIu64 " lsn %" PRIu64
				 ") or was reported by a node not leading",
				 n->commit_pos, n->commit_lsn);
		return;
	}
	if (lsn != sl_sim_disk_lsn_below(&n->disk, pos) ||
	    sl_sim_disk_crc_at_end(&n->disk, pos) < 0)
		sl_sim_violation(&s->chk, 'd', (int)n->idx, pos, lsn, s->now,
				 "commit position is not a batch boundary ending the commit "
				 "LSN (the log there holds LSNs up to %" PRIu64 ")",
				 sl_sim_disk_lsn_below(&n->disk, pos));
	if (!n->lead_floor || pos < n->lead_floor)
		sl_sim_violation(&s->chk, 'd', (int)n->idx, pos, lsn, s->now,
				 "a leader of epoch %" PRIu64
				 " commits before its epoch's first batch (ending at %" PRIu64 ")",
				 n->lead_epoch, n->lead_floor);
	er = epoch_rec(s, n->lead_epoch);
	if (er && er->committer >= 0 && er->committer != (int)n->idx)
		sl_sim_violation(&s->chk, 'f', (int)n->idx, pos, lsn, s->now,
				 "commits in epoch %" PRIu64 ", in which node %d committed",
				 n->lead_epoch, er->committer + 1);
	if (er)
		er->committer = (int)n->idx;
	for (uint64_t l = n->commit_lsn + 1; l <= lsn && l < s->own_cap; l++)
		if (n->own[l].at) {
			sl_hist_record(&s->commit_lat, s->now - n->own[l].at);
			n->own[l].at = 0;
		}
	n->commit_pos = pos;
	n->commit_lsn = lsn;
	degraded_commit(s, n, pos);
	truth_extend(s, n, pos);
}

/* ---- node life ---- */

/* `join`: the node was rebuilt from nothing to join the running cluster
 * (it must not take itself for the first leader of a new one). */
static int node_start(struct sl_sim *s, struct sim_node *n, const struct sl_log_state *ls, int join)
{
	struct sl_proto_config c = s->cfg;
	struct sl_proto_ops ops = {
	    .ctx = n,
	    .write = cb_write,
	    .read = cb_read,
	    .send = cb_send,
	    .deliver = cb_deliver,
	    .commit = cb_commit,
	    .persist = cb_persist,
	    .truncate = cb_truncate,
	    .role = cb_role,
	    .release = cb_release,
	    .tree = cb_tree,
	    .rewrite = cb_rewrite,
	};
	int rc;

	c.node_id = n->id;
	n->differences = 0;
	if (join)
		c.leader_id = 0;
	sl_err_clear();
	n->role = SL_ROLE_FOLLOWER; /* cb_truncate may run inside create */
	rc = sl_proto_create(&n->p, &c, ls, &ops);
	if (rc < 0) {
		n->p = NULL;
		sl_sim_violation(&s->chk, 'R', (int)n->idx, ls->next_pos, ls->next_lsn, s->now,
				 "sl_proto_create failed (%d): %s (applied_lsn %" PRIu64 ")", rc,
				 sl_err_msg(), ls->applied_lsn);
		return rc;
	}
	n->up = 1;
	n->spin = 0;
	sl_proto_get_status(n->p, &s->st2);
	n->role = s->st2.role;
	n->epoch = s->st2.epoch;
	if (n->role == SL_ROLE_LEADER) {
		struct sim_epoch *er = epoch_rec(s, n->epoch);

		if (er)
			er->leader = (int)n->idx;
		lead_start(s, n);
	}
	return 0;
}

static void node_crash(struct sl_sim *s, struct sim_node *n)
{
	struct sl_sim_crash_info ci;

	sl_proto_destroy(n->p);
	check_lent_back(s, n);
	n->p = NULL;
	n->up = 0;
	n->paused = 0;
	n->gen++;
	n->sync_pending = n->apply_pending = n->persist_pending = 0;
	n->fail_sync = n->fail_write = n->storage_failed = 0;
	n->role = SL_ROLE_FOLLOWER;
	sl_sim_disk_crash(&n->disk, s->rng, &ci);
	s->res->crashes++;
	trace(s, (int)n->idx,
	      "CRASH durable=%" PRIu64 " volatile=%" PRIu64 " kept=%" PRIu64 " tear=%" PRIu64,
	      n->disk.durable, ci.volatile_bytes, ci.kept, (uint64_t)ci.tear);
	check_tolerance(s, "crash");
}

/* Every recovered batch was sealed by some leader: (b). */
static void check_recovered(struct sl_sim *s, struct sim_node *n)
{
	for (uint32_t i = 0; i < n->disk.n_idx; i++)
		if (!sl_sim_set_has(&s->sealed, n->disk.idx[i].pos, n->disk.idx[i].hdr_crc)) {
			sl_sim_violation(&s->chk, 'b', (int)n->idx, n->disk.idx[i].pos,
					 n->disk.idx[i].base_lsn, s->now,
					 "recovered a batch no leader sealed");
			return;
		}
}

/* Recover the log (whole verified chained batches) and the superblock, and
 * start the protocol on them with what the engine holds. */
static void node_restart(struct sl_sim *s, struct sim_node *n, int join)
{
	struct sl_sim_recovered rec;
	struct sl_log_state ls;
	uint64_t applied_pos;

	sl_sim_disk_recover(&n->disk, &rec);
	sl_merkle_reset(&n->tree); /* the store rebuilds its tree from what it recovered */
	tree_sync(n);
	trace(s, (int)n->idx,
	      "RESTART log_end=%" PRIu64 " next_lsn=%" PRIu64 " cut=%" PRIu64 " engine=%" PRIu64,
	      rec.next_pos, rec.next_lsn, rec.cut_bytes, n->delivered_lsn);
	if (rec.lost_durable)
		sl_sim_violation(&s->chk, 'a', (int)n->idx, rec.next_pos, UINT64_MAX, s->now,
				 "recovery lost %" PRIu64 " durable bytes", rec.lost_durable);
	check_recovered(s, n);
	/* The end of the batch holding the engine's LSN (not of empty batches
	 * after it); the log end when the engine is ahead of the log. */
	applied_pos = n->delivered_lsn + 1 > rec.next_lsn
			  ? rec.next_pos
			  : sl_sim_disk_lsn_end(&n->disk, n->delivered_lsn);
	if (applied_pos == UINT64_MAX ||
	    (n->delivered_lsn + 1 <= rec.next_lsn &&
	     sl_sim_disk_lsn_below(&n->disk, applied_pos) != n->delivered_lsn))
		sl_sim_violation(&s->chk, 'R', (int)n->idx, applied_pos, n->delivered_lsn, s->now,
				 "the engine's LSN is not the end of a batch of the log");
	sl_sim_disk_epochs(&n->disk, &s->map);
	ls = (struct sl_log_state){
	    .next_lsn = rec.next_lsn,
	    .next_pos = rec.next_pos,
	    .last_crc = rec.last_crc,
	    .durable_pos = rec.next_pos,
	    .applied_lsn = n->delivered_lsn,
	    .applied_pos = applied_pos,
	    .current_epoch = n->sb_epoch,
	    .voted_epoch = n->sb_epoch,
	    .voted_for = n->sb_vote,
	    .epochs = &s->map,
	};
	if (node_start(s, n, &ls, join) == 0) {
		s->res->restarts++;
		if (n->delivered_lsn > n->told_applied)
			n->told_applied = n->delivered_lsn;
	}
}

/* ---- events ---- */

static void trace_frame(struct sl_sim *s, unsigned to, unsigned from, const struct sl_frame *f)
{
	switch (f->hdr.type) {
	case SL_FRAME_DATA:
		trace(s, (int)to,
		      "recv DATA from n%" PRIu64 " pos=%" PRIu64 " off=%" PRIu64 " commit=%" PRIu64,
		      (uint64_t)from + 1, f->data.batch_pos, (uint64_t)f->data.frag_off,
		      f->data.commit_pos);
		break;
	case SL_FRAME_STATUS:
		trace(s, (int)to,
		      "recv STATUS from n%" PRIu64 " recv=%" PRIu64 " durable=%" PRIu64
		      " applied=%" PRIu64,
		      (uint64_t)from + 1, f->status.received_pos, f->status.durable_pos,
		      f->status.applied_pos);
		break;
	case SL_FRAME_NAK:
		trace(s, (int)to, "recv NAK from n%" PRIu64 " [%" PRIu64 ", %" PRIu64 ")",
		      (uint64_t)from + 1, f->nak.from_pos, f->nak.to_pos);
		break;
	case SL_FRAME_HEARTBEAT:
		trace(s, (int)to,
		      "recv HEARTBEAT from n%" PRIu64 " e=%" PRIu64 " end=%" PRIu64
		      " commit=%" PRIu64,
		      (uint64_t)from + 1, f->hdr.epoch, f->hb.leader_end, f->hb.commit_pos);
		break;
	case SL_FRAME_VOTE_REQ:
		trace(s, (int)to,
		      "recv VOTE_REQ from n%" PRIu64 " e=%" PRIu64 " last=%" PRIu64 "/%" PRIu64,
		      (uint64_t)from + 1, f->hdr.epoch, f->vreq.last_epoch, f->vreq.last_pos);
		break;
	case SL_FRAME_VOTE:
		trace(s, (int)to, "recv VOTE from n%" PRIu64 " e=%" PRIu64 " granted=%" PRIu64,
		      (uint64_t)from + 1, f->hdr.epoch, (uint64_t)f->vote.granted);
		break;
	case SL_FRAME_EPOCH_REQ:
		trace(s, (int)to, "recv EPOCH_REQ from n%" PRIu64 " e=%" PRIu64 " asks %" PRIu64,
		      (uint64_t)from + 1, f->hdr.epoch, f->ereq.epoch);
		break;
	case SL_FRAME_ELECT_NOW:
		trace(s, (int)to, "recv ELECT_NOW from n%" PRIu64 " e=%" PRIu64 " end=%" PRIu64,
		      (uint64_t)from + 1, f->hdr.epoch, f->enow.log_end);
		break;
	case SL_FRAME_TREE_REQ:
		trace(s, (int)to,
		      "recv TREE_REQ from n%" PRIu64 " leaves=%" PRIu64 " level=%" PRIu64
		      " index=%" PRIu64,
		      (uint64_t)from + 1, f->treq.leaves, (uint64_t)f->treq.level, f->treq.index);
		break;
	case SL_FRAME_TREE:
		trace(s, (int)to,
		      "recv TREE from n%" PRIu64 " leaves=%" PRIu64 " status=%" PRIu64
		      " sealed=%" PRIu64,
		      (uint64_t)from + 1, f->tree.leaves, (uint64_t)f->tree.status, f->tree.sealed);
		break;
	case SL_FRAME_REPAIR_REQ:
		trace(s, (int)to, "recv REPAIR_REQ from n%" PRIu64 " pos=%" PRIu64 " len=%" PRIu64,
		      (uint64_t)from + 1, f->rreq.pos, (uint64_t)f->rreq.len);
		break;
	case SL_FRAME_REPAIR:
		trace(s, (int)to, "recv REPAIR from n%" PRIu64 " pos=%" PRIu64 " off=%" PRIu64,
		      (uint64_t)from + 1, f->data.batch_pos, (uint64_t)f->data.frag_off);
		break;
	default:
		trace(s, (int)to,
		      "recv EPOCH_END from n%" PRIu64 " epoch %" PRIu64 " ends %" PRIu64
		      " lsn %" PRIu64,
		      (uint64_t)from + 1, f->eend.epoch, f->eend.end_pos, f->eend.end_lsn);
		break;
	}
}

/* Bookkeeping from the genuine frames a node receives, decoded here rather
 * than read from the protocol: STATUS acknowledgements for (d), granted
 * votes for V. */
static void note_frame(struct sim_node *n, unsigned from, const struct sl_frame *f)
{
	if (f->hdr.type == SL_FRAME_STATUS && n->role == SL_ROLE_LEADER &&
	    f->hdr.epoch == n->lead_epoch) {
		uint64_t *a = n->ack[from];

		a[SL_ACK_RECEIVED] = a[0] > f->status.received_pos ? a[0] : f->status.received_pos;
		a[SL_ACK_DURABLE] = a[1] > f->status.durable_pos ? a[1] : f->status.durable_pos;
		a[SL_ACK_APPLIED] = a[2] > f->status.applied_pos ? a[2] : f->status.applied_pos;
	}
	if (f->hdr.type == SL_FRAME_VOTE && f->vote.granted && !f->vote.flags &&
	    f->hdr.epoch >= n->votes_epoch) { /* a late vote of an older epoch counts for none */
		if (n->votes_epoch != f->hdr.epoch) {
			n->votes_epoch = f->hdr.epoch;
			n->votes_from = 0;
		}
		n->votes_from |= 1u << from;
	}
}

static void deliver_genuine(struct sl_sim *s, struct sim_node *n, unsigned from, const uint8_t *b,
			    size_t len)
{
	struct sl_frame f;

	if (sl_frame_decode(b, len, &f) < 0) {
		trace(s, (int)n->idx, "recv BAD frame from n%" PRIu64 " len=%" PRIu64,
		      (uint64_t)from + 1, len);
	} else {
		trace_frame(s, n->idx, from, &f);
		note_frame(n, from, &f);
	}
	s->net.st.delivered++;
	sl_proto_on_frame(n->p, b, len, s->now);
}

/* (e): a forged frame may bump the frame counters, nothing else. */
static void deliver_forged(struct sl_sim *s, struct sim_node *n, unsigned from, const uint8_t *b,
			   size_t len, unsigned kind)
{
	uint64_t end = n->disk.end, durable = n->disk.durable, dl = n->delivered_lsn;
	uint64_t heap_len = s->heap.len, pushed = s->frame_pushes;
	const char *diff;

	trace(s, (int)n->idx, "recv FORGED frame from n%" PRIu64 " kind=%" PRIu64 " len=%" PRIu64,
	      (uint64_t)from + 1, (uint64_t)kind, len);
	sl_proto_get_status(n->p, &s->st);
	n->in_forged = 1;
	sl_proto_on_frame(n->p, b, len, s->now);
	n->in_forged = 0;
	sl_proto_get_status(n->p, &s->st2);
	diff = sl_sim_status_diff(&s->st, &s->st2);
	if (!diff && (end != n->disk.end || durable != n->disk.durable || dl != n->delivered_lsn ||
		      heap_len + (s->frame_pushes - pushed) != s->heap.len))
		diff = "the log, the engine or the events it scheduled";
	if (diff)
		sl_sim_violation(&s->chk, 'e', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "a forged frame (%s) changed %s", sl_sim_forge_name(kind), diff);
}

/* A paused node's events wait until it runs again (frames keep their slot). */
static int defer_paused(struct sl_sim *s, struct sim_node *n, const struct sl_sim_event *e)
{
	struct sl_sim_event later = *e;

	if (!n->up || !n->paused)
		return 0;
	if (e->type == SL_SIM_EV_FRAME && sl_sim_heap_room(&s->heap) <= SIM_HEAP_RESERVE) {
		s->net.st.congested++;
		sl_sim_net_slot_free(&s->net, e->slot);
		return 1;
	}
	later.time = n->paused_until;
	push_ev(s, &later);
	return 1;
}

static void ev_frame(struct sl_sim *s, const struct sl_sim_event *e)
{
	struct sim_node *n = &s->node[e->node];
	size_t len;
	const uint8_t *b = sl_sim_net_slot(&s->net, e->slot, &len);

	if (!n->up) {
		s->net.st.to_down++;
	} else if (sl_sim_net_blocked(&s->net, e->from, e->node)) {
		s->net.st.partitioned++;
		trace(s, (int)n->idx,
		      "frame from n%" PRIu64 " cut by a partition (%" PRIu64 " bytes)",
		      (uint64_t)e->from + 1, len);
	} else if (e->flags & SIM_EV_FORGED)
		deliver_forged(s, n, e->from, b, len, e->flags >> 8);
	else {
		deliver_genuine(s, n, e->from, b, len);
	}
	sl_sim_net_slot_free(&s->net, e->slot);
}

static void ev_durable(struct sl_sim *s, struct sim_node *n)
{
	n->sync_pending = 0;
	if (n->fail_sync) {
		n->fail_sync = 0;
		n->storage_failed = 1;
		s->res->storage_errors++;
		sl_sim_disk_drop_pending(&n->disk);
		trace(s, (int)n->idx, "sync FAILS (injected EIO)");
		sl_proto_on_storage_error(n->p, -EIO);
		return;
	}
	if (sl_sim_disk_sync(&n->disk, s->now)) {
		trace(s, (int)n->idx, "durable pos=%" PRIu64, n->disk.durable);
		sl_proto_on_durable(n->p, n->disk.durable, s->now);
	}
	schedule_sync(s, n);
}

static void ev_applied(struct sl_sim *s, struct sim_node *n)
{
	n->apply_pending = 0;
	if (n->delivered_lsn <= n->told_applied || n->role != SL_ROLE_FOLLOWER)
		return;
	n->told_applied = n->delivered_lsn;
	trace(s, (int)n->idx, "applied lsn=%" PRIu64, n->told_applied);
	sl_proto_on_applied(n->p, n->told_applied, s->now);
}

static void ev_persisted(struct sl_sim *s, struct sim_node *n)
{
	if (!n->persist_pending)
		return;
	n->persist_pending = 0;
	n->sb_epoch = n->pers_epoch;
	n->sb_vote = n->pers_vote;
	trace(s, (int)n->idx, "persisted epoch=%" PRIu64 " vote=%" PRIu64, n->sb_epoch,
	      (uint64_t)n->sb_vote);
	sl_proto_on_persisted(n->p, n->sb_epoch, n->sb_vote, s->now);
}

/* ---- the workload ---- */

static uint32_t record_size(struct sl_sim *s)
{
	uint64_t r = sl_sim_below(s->rng, 100);

	if (r < 50)
		return (uint32_t)sl_sim_range(s->rng, 1, 128);
	if (r < 85)
		return (uint32_t)sl_sim_range(s->rng, 129, 1024);
	return (uint32_t)sl_sim_range(s->rng, 1025, SL_SIM_REC_MAX);
}

static void schedule_append(struct sl_sim *s, uint64_t delay)
{
	if (s->append_pending)
		return;
	if (push(s, s->now + delay, SL_SIM_EV_APPEND, 0, 0) == 0)
		s->append_pending = 1;
}

/* Append one record to leader n (kept across -EAGAIN so the retry is the
 * same record). 1 appended, 0 not now, -1 failed. */
static int append_one(struct sl_sim *s, struct sim_node *n)
{
	int64_t lsn;

	if (n->delivered_lsn >= s->prm->records)
		return 0;
	if (s->rec_len == 0) {
		s->rec_len = record_size(s);
		sl_wl_fill(&s->wl, s->rec, s->rec_len);
	}
	/* Noted first: the append may seal the batch that holds it. */
	if (n->delivered_lsn + 1 < s->own_cap)
		n->own[n->delivered_lsn + 1] = (struct sim_own){
		    .hash = sl_sim_hash(s->rec, s->rec_len), .at = s->now, .len = s->rec_len};
	lsn = sl_proto_append(n->p, s->rec, s->rec_len, s->now);
	if (lsn == -EAGAIN) {
		s->res->eagain++;
		trace(s, (int)n->idx, "append EAGAIN");
		return 0;
	}
	if (lsn < 0 && (n->storage_failed || lsn == -EPERM))
		return 0; /* it failed or was deposed: the client goes elsewhere */
	if (lsn != (int64_t)n->delivered_lsn + 1 || (uint64_t)lsn >= s->own_cap) {
		sl_sim_violation(&s->chk, 'P', (int)n->idx, UINT64_MAX, n->delivered_lsn + 1,
				 s->now,
				 "sl_proto_append returned %" PRId64 ", want LSN %" PRIu64
				 " (the engine's next) (%s)",
				 lsn, n->delivered_lsn + 1, sl_err_msg());
		return -1;
	}
	n->delivered_lsn = (uint64_t)lsn;
	trace(s, (int)n->idx, "append lsn=%" PRIu64 " len=%" PRIu64, (uint64_t)lsn,
	      (uint64_t)s->rec_len);
	s->appended++;
	s->rec_len = 0;
	return 1;
}

/* Leader n takes an encoded batch: copied into its window, or every other
 * time (by the count of records appended, which draws nothing from the
 * run's PRNG) lent to it in one of the engine's free buffers. */
static int64_t append_batch(struct sim_node *n, const struct sl_batch_hdr *h, const uint8_t *enc,
			    size_t len)
{
	struct sl_sim *s = n->sim;
	int64_t last;
	uint32_t j;

	for (j = 0; j < SIM_LENT && (n->lent_out >> j & 1); j++)
		;
	if (s->appended % 2 == 0 || j == SIM_LENT)
		return sl_proto_append_encoded(n->p, h, enc + SL_BATCH_HDR_SIZE, s->now);
	memcpy(n->lent + (size_t)j * SIM_LENT_SIZE, enc, len);
	last = sl_proto_append_ref(n->p, h, n->lent + (size_t)j * SIM_LENT_SIZE, s->now);
	if (last >= 0) /* after an error the buffer is ours */
		n->lent_out |= 1u << j;
	return last;
}

/* Append up to `max` records to leader n as one batch the engine encoded
 * itself (sl_proto_append_encoded), as large as a batch may be. 1 appended,
 * 0 not now (the records are dropped; others take their LSNs), -1 failed. */
static int append_encoded(struct sl_sim *s, struct sim_node *n, uint64_t max)
{
	size_t cap = s->cfg.batch_bytes > SL_SIM_REC_MAX + SL_REC_PREFIX
			 ? s->cfg.batch_bytes
			 : SL_SIM_REC_MAX + SL_REC_PREFIX;
	struct sl_batch_hdr h = {.base_lsn = 1};
	struct sl_batch_builder bb;
	uint64_t first = n->delivered_lsn + 1;
	int64_t last;
	int rc;

	if (cap > sizeof(s->enc_raw))
		cap = sizeof(s->enc_raw);
	if (n->delivered_lsn >= s->prm->records)
		return 0;
	if (n->delivered_lsn + max > s->prm->records)
		max = s->prm->records - n->delivered_lsn;
	sl_batch_builder_init(&bb, s->enc_raw, cap);
	for (uint64_t i = 0; i < max && i < SIM_ENC_RECS && first + i < s->own_cap; i++) {
		uint32_t len = record_size(s);

		if (bb.len + SL_REC_PREFIX + len > cap)
			break;
		sl_wl_fill(&s->wl, s->rec, len);
		sl_batch_builder_add(&bb, s->rec, len);
		/* Noted first: the leader seals the batch within the append. */
		n->own[first + i] =
		    (struct sim_own){.hash = sl_sim_hash(s->rec, len), .at = s->now, .len = len};
	}
	if (bb.count == 0)
		return 0;
	rc = sl_batch_encode(&h, s->enc_raw, bb.len, bb.count, s->enc, sizeof(s->enc));
	last = rc < 0 ? rc : append_batch(n, &h, s->enc, (size_t)rc);
	if (last == -EAGAIN) {
		s->res->eagain++;
		trace(s, (int)n->idx, "append of an encoded batch EAGAIN");
		return 0;
	}
	if (last < 0 && (n->storage_failed || last == -EPERM))
		return 0; /* it failed or was deposed: the client goes elsewhere */
	if (last != (int64_t)(first + bb.count - 1)) {
		sl_sim_violation(&s->chk, 'P', (int)n->idx, UINT64_MAX, first, s->now,
				 "sl_proto_append_encoded of %u records returned %" PRId64
				 ", want LSN %" PRIu64 " (%s)",
				 bb.count, last, first + bb.count - 1, sl_err_msg());
		return -1;
	}
	n->delivered_lsn = (uint64_t)last;
	s->appended += bb.count;
	trace(s, (int)n->idx, "append encoded lsn=%" PRIu64 "..%" PRIu64, first, (uint64_t)last);
	return 1;
}

/* A deposed leader still has clients: now and then one appends there. */
static void append_stale(struct sl_sim *s, const struct sim_node *cur)
{
	for (unsigned i = 0; i < n_nodes(s); i++) {
		struct sim_node *n = &s->node[i];

		if (n != cur && running(n) && n->role == SL_ROLE_LEADER &&
		    sl_sim_chance(s->rng, 250000)) {
			uint32_t keep = s->rec_len;

			s->rec_len = 0; /* a record of its own */
			append_one(s, n);
			s->rec_len = keep;
			return;
		}
	}
}

static void ev_append(struct sl_sim *s)
{
	struct sim_node *n = cur_leader(s);
	uint64_t burst = sl_sim_range(s->rng, 1, s->prm->max_burst);
	uint64_t gap = sl_sim_range(s->rng, 0, 2 * s->prm->append_gap_ns);

	s->append_pending = 0;
	if (!n || !running(n)) {
		schedule_append(s, sl_sim_range(s->rng, 100000, 1000000));
		return;
	}
	/* Now and then a burst arrives encoded, as one batch. */
	if (s->rec_len == 0 && sl_sim_chance(s->rng, 100000)) {
		int rc = append_encoded(s, n, burst);

		if (rc < 0)
			return;
		schedule_append(s, rc ? gap : sl_sim_range(s->rng, 20000, 500000));
		return;
	}
	for (uint64_t i = 0; i < burst; i++) {
		int rc = append_one(s, n);

		if (rc < 0)
			return;
		if (rc == 0) {
			gap = sl_sim_range(s->rng, 20000, 500000); /* retry after progress */
			break;
		}
	}
	if (s->prm->faults & SL_SIM_FAULT_FAILOVER)
		append_stale(s, n);
	if (sl_sim_chance(s->rng, 125000))
		sl_proto_flush(n->p, s->now);
	schedule_append(s, gap);
}

/* ---- faults ---- */

static void part_apply(struct sl_sim *s, struct sim_part *p, int delta)
{
	for (unsigned a = 0; a < n_nodes(s); a++) {
		for (unsigned b = 0; b < n_nodes(s); b++) {
			int a_in = (p->mask >> a) & 1, b_in = (p->mask >> b) & 1;

			if (!a_in || b_in)
				continue;
			if (p->mode != 2)
				sl_sim_net_block(&s->net, a, b, delta);
			if (p->mode != 1)
				sl_sim_net_block(&s->net, b, a, delta);
		}
	}
}

static void ev_partition(struct sl_sim *s, uint64_t k, int start)
{
	struct sim_part *p = &s->part[k];

	if (start && !s->healed && !p->active) {
		p->active = 1;
		part_apply(s, p, +1);
		trace(s, -1,
		      "PARTITION %" PRIu64 " starts: nodes mask 0x%" PRIx64 ", mode %" PRIu64, k,
		      (uint64_t)p->mask, (uint64_t)p->mode);
	} else if (!start && p->active) {
		p->active = 0;
		part_apply(s, p, -1);
		trace(s, -1, "PARTITION %" PRIu64 " heals", k);
	}
}

/* A node holding rot is not crashed (see the top of this file). */
static int crashable(const struct sim_node *n)
{
	return n->disk.n_rot == 0;
}

static void crash_and_restart(struct sl_sim *s, struct sim_node *n, uint64_t down_max)
{
	if (!crashable(n)) {
		trace(s, (int)n->idx, "not crashed: it holds %" PRIu64 " rotten batches",
		      (uint64_t)n->disk.n_rot);
		return;
	}
	node_crash(s, n);
	push(s, s->now + sl_sim_range(s->rng, 100000, down_max), SL_SIM_EV_RESTART, n->idx, 0);
}

/* A random crash: without failover faults, never the leader. */
static void ev_crash(struct sl_sim *s, struct sim_node *n)
{
	if (!n->up || s->healed ||
	    (n->role == SL_ROLE_LEADER && !(s->prm->faults & SL_SIM_FAULT_FAILOVER)))
		return;
	crash_and_restart(s, n, s->prm->down_max_ns);
}

static void ev_crash_leader(struct sl_sim *s)
{
	struct sim_node *n = cur_leader(s);

	if (!n || s->healed)
		return;
	trace(s, (int)n->idx, "crashing the leader");
	crash_and_restart(s, n, s->prm->down_max_ns);
}

static void ev_crash_candidate(struct sl_sim *s)
{
	for (unsigned i = 0; i < n_nodes(s) && !s->healed; i++)
		if (s->node[i].up && s->node[i].role == SL_ROLE_CANDIDATE) {
			trace(s, (int)i, "crashing a candidate");
			crash_and_restart(s, &s->node[i], s->prm->down_max_ns);
			return;
		}
}

/* Power loss: every node dies, each losing what it had not synced; they
 * come back one by one. */
static void ev_crash_all(struct sl_sim *s, uint64_t spread)
{
	if (s->healed)
		return;
	trace(s, -1, "POWER LOSS");
	for (unsigned i = 0; i < n_nodes(s); i++)
		if (s->node[i].up)
			crash_and_restart(s, &s->node[i], spread);
}

static void ev_pause(struct sl_sim *s, uint64_t d)
{
	struct sim_node *n = cur_leader(s);

	if (!n || !running(n) || s->healed)
		return;
	n->paused = 1;
	n->paused_until = s->now + d;
	s->res->pauses++;
	trace(s, (int)n->idx, "PAUSE for %" PRIu64 " us", d / 1000);
	push(s, n->paused_until, SL_SIM_EV_RESUME, n->idx, 0);
}

/* shipctl promote: the leader hands over to another node it picks now. */
static void ev_transfer(struct sl_sim *s)
{
	struct sim_node *n = cur_leader(s);
	unsigned to;

	if (!n || !running(n) || s->healed || n_nodes(s) < 2)
		return;
	to = (n->idx + (unsigned)sl_sim_range(s->rng, 1, n_nodes(s) - 1)) % n_nodes(s);
	trace(s, (int)n->idx, "TRANSFER to n%" PRIu64 ": %" PRId64, (uint64_t)to + 1,
	      (int64_t)sl_proto_transfer(n->p, s->node[to].id, s->now));
}

/* shipctl promote --force: the running follower with the shortest log (a
 * minority, likely) leads without an election; once, per run. */
static void ev_force(struct sl_sim *s)
{
	struct sim_node *n = NULL;
	int rc;

	if (s->healed || s->force_node >= 0 || s->res->beyond)
		return;
	for (unsigned i = 0; i < n_nodes(s); i++) {
		struct sim_node *c = &s->node[i];

		if (running(c) && c->role != SL_ROLE_LEADER && !c->disk.n_rot &&
		    (!n || c->disk.end < n->disk.end))
			n = c;
	}
	if (!n)
		return;
	sl_proto_get_status(n->p, &s->st2);
	rc = sl_proto_force_lead(n->p, s->now);
	trace(s, (int)n->idx,
	      "FORCE (promote --force): %" PRId64 ", LSNs from %" PRIu64 " (position %" PRIu64
	      ") may be lost",
	      (int64_t)rc,
	      s->st2.commit_lsn < s->st2.next_lsn ? s->st2.commit_lsn + 1 : s->st2.next_lsn,
	      s->st2.commit_pos < s->st2.log_end ? s->st2.commit_pos : s->st2.log_end);
	if (rc < 0)
		return;
	s->force_node = (int)n->idx;
	s->force_pos = s->st2.log_end;
	/* Committed records it does not hold are lost too. */
	s->loss_lsn = s->st2.commit_lsn < s->st2.next_lsn ? s->st2.commit_lsn + 1 : s->st2.next_lsn;
	s->loss_pos = s->st2.commit_pos < s->st2.log_end ? s->st2.commit_pos : s->st2.log_end;
	s->res->forces++;
}

static void ev_stepdown(struct sl_sim *s)
{
	struct sim_node *n = cur_leader(s);

	if (!n || !running(n) || s->healed)
		return;
	trace(s, (int)n->idx, "STEPDOWN: %" PRId64, (int64_t)sl_proto_stepdown(n->p, s->now));
}

static void ev_resume(struct sim_node *n)
{
	if (n->up && n->paused) {
		n->paused = 0;
		trace(n->sim, (int)n->idx, "RESUME");
	}
}

static void lost_rot(struct sl_sim *s, struct sim_node *n);

static void rebuild(struct sl_sim *s, struct sim_node *n)
{
	trace(s, (int)n->idx, "REBUILD from an empty log");
	s->res->rebuilds++;
	sl_sim_disk_truncate(&n->disk, 0); /* before the crash: no rot to keep it up */
	node_crash(s, n);
	n->delivered_lsn = n->told_applied = 0;
	n->joined = 1;
	node_restart(s, n, 1);
}

/* Beyond tolerance only: wipe a node that refuses the leader's history
 * (its log and its engine start over), as an operator would. */
static void ev_rebuild(struct sl_sim *s, struct sim_node *n)
{
	n->rebuild_due = 0;
	if (!n->up || !n->p)
		return;
	sl_proto_get_status(n->p, &s->st2);
	if (s->st2.failed != -EPROTO)
		return; /* restarted meanwhile, and following */
	rebuild(s, n);
	for (unsigned i = 0; i < n_nodes(s); i++) /* it may have held the good copies */
		lost_rot(s, &s->node[i]);
}

static void ev_storage_err(struct sl_sim *s, struct sim_node *n)
{
	if (!n->up || s->healed ||
	    (n->role == SL_ROLE_LEADER && !(s->prm->faults & SL_SIM_FAULT_FAILOVER)))
		return;
	if (!crashable(n))
		return; /* a failed store is restarted at the heal */
	if (sl_sim_chance(s->rng, 750000))
		n->fail_sync = 1;
	else
		n->fail_write = 1;
	trace(s, (int)n->idx,
	      "storage error armed (1: next sync fails, 0: next write fails): %" PRIu64,
	      (uint64_t)n->fail_sync);
}

/* Who else holds batch i of node j, durably and intact (a good copy to
 * repair from, so the rot stays within what the policy tolerates)? */
static int good_copy_elsewhere(const struct sl_sim *s, const struct sim_node *j, uint32_t i)
{
	const struct sl_sim_bref *b = &j->disk.idx[i];

	for (unsigned k = 0; k < n_nodes(s); k++) {
		const struct sim_node *m = &s->node[k];
		int64_t at = sl_sim_disk_find(&m->disk, b->pos);

		if (m != j && m->up && at >= 0 && m->disk.idx[at].hdr_crc == b->hdr_crc &&
		    b->pos + b->len <= m->disk.durable &&
		    sl_sim_disk_intact(&m->disk, (uint32_t)at))
			return 1;
	}
	return 0;
}

/* Batches of node j rot may hit: durable ones (each only with a good copy
 * elsewhere), before or past the commit position. */
static uint32_t rot_limit(const struct sim_node *j)
{
	uint64_t lim = j->disk.durable;
	uint32_t n = 0;

	while (n < j->disk.n_idx && j->disk.idx[n].pos + j->disk.idx[n].len <= lim)
		n++;
	return n;
}

/* Rot on one running node at a time: 1..3 batches, bit flips or a valid
 * batch copied over another; not once the run is beyond tolerance (the good
 * copy may be rewritten). */
static void ev_rot(struct sl_sim *s)
{
	struct sim_node *j = &s->node[sl_sim_below(&s->rng_rot, n_nodes(s))];
	uint64_t hits = sl_sim_range(&s->rng_rot, 1, 3);
	uint32_t lim;

	for (unsigned k = 0; k < n_nodes(s); k++)
		if (s->node[k].disk.n_rot)
			return; /* one replica at a time */
	if (!running(j) || s->healed || s->res->beyond || j->storage_failed || j->fail_sync ||
	    j->fail_write || (lim = rot_limit(j)) == 0)
		return; /* a failed store is restarted at the heal: no rot in it */
	for (uint64_t h = 0; h < hits; h++) {
		uint32_t i = (uint32_t)sl_sim_below(&s->rng_rot, lim);
		uint32_t src = (uint32_t)sl_sim_below(&s->rng_rot, j->disk.n_idx);
		int flip = sl_sim_below(&s->rng_rot, 2) || src == i, rc;

		if (!good_copy_elsewhere(s, j, i))
			continue;
		rc = flip ? sl_sim_disk_flip(&j->disk, i, &s->rng_rot)
			  : sl_sim_disk_misplace(&j->disk, src, i);
		trace(s, (int)j->idx,
		      "ROT %s batch at pos %" PRIu64 " (from pos %" PRIu64 "): %" PRId64,
		      flip ? "bit flips in" : "a copy over", j->disk.idx[i].pos,
		      j->disk.idx[src].pos, (int64_t)rc);
		if (rc == 0)
			s->res->rotted++;
	}
}

/* The scrub of every running node: a batch that does not read back as
 * appended goes to the protocol's repair (as app/node.c's scrub step). A
 * rotten batch that reads back intact was missed by nothing: rot that the
 * checksum cannot see would be (1 in 2^32), and is reported. */
static void ev_scrub(struct sl_sim *s)
{
	for (unsigned k = 0; k < n_nodes(s); k++) {
		struct sim_node *n = &s->node[k];

		if (!running(n))
			continue;
		for (uint32_t r = 0; r < n->disk.n_rot; r++) {
			uint32_t i = n->disk.rot[r];
			const struct sl_sim_bref *b = &n->disk.idx[i];
			int rc;

			if (sl_sim_disk_intact(&n->disk, i)) {
				sl_sim_violation(&s->chk, 'E', (int)k, b->pos, b->base_lsn, s->now,
						 "rot left the batch reading back as appended");
				return;
			}
			rc = sl_proto_repair(n->p, b->pos, b->len, n->tree.level[0][i], s->now);
			trace(s, (int)k, "scrub: bad batch at pos %" PRIu64 ", repair -> %" PRId64,
			      b->pos, (int64_t)rc);
		}
	}
	push(s, s->now + s->prm->scrub_ns, SL_SIM_EV_SCRUB, 0, 0);
}

/* Beyond tolerance (or after a forced promotion) the good copies of a
 * rotten batch may be gone (cut, rebuilt): nothing can repair it, and the
 * operator rebuilds the node. */
static void lost_rot(struct sl_sim *s, struct sim_node *n)
{
	if (!s->prm->elect)
		return; /* node 1 leads for good: no rebuild, no other leader */
	for (uint32_t r = 0; r < n->disk.n_rot && n->up && n->p; r++)
		if (!good_copy_elsewhere(s, n, n->disk.rot[r])) {
			trace(s, (int)n->idx, "no intact copy of its rotten batch at %" PRIu64,
			      n->disk.idx[n->disk.rot[r]].pos);
			rebuild(s, n);
			return;
		}
}

/* End of the fault phase: a perfect network, every node up, running and
 * healthy (the operator restarts a failed node). */
static void ev_heal_all(struct sl_sim *s)
{
	s->healed = 1;
	s->end_time = s->now + s->prm->heal_budget_ns;
	sl_sim_net_heal(&s->net);
	for (unsigned k = 0; k < s->n_parts; k++)
		s->part[k].active = 0;
	trace(s, -1, "HEAL ALL");
	for (unsigned i = 0; i < n_nodes(s) && s->res->beyond; i++)
		lost_rot(s, &s->node[i]);
	for (unsigned i = 0; i < n_nodes(s); i++) {
		struct sim_node *n = &s->node[i];

		n->fail_sync = n->fail_write = 0;
		n->paused = 0;
		if (n->up && n->p) {
			sl_proto_get_status(n->p, &s->st2);
			if (n->disk.n_rot && s->st2.failed == -EPROTO) {
				rebuild(s, n); /* what its REBUILD would do: before a restart */
			} else if (n->storage_failed || s->st2.failed) {
				trace(s, (int)i, "failed (%" PRId64 "): restarted",
				      (int64_t)s->st2.failed);
				if (n->disk.n_rot)
					sl_sim_violation(
					    &s->chk, 'E', (int)i, UINT64_MAX, UINT64_MAX, s->now,
					    "failed (%d) while holding rot", s->st2.failed);
				node_crash(s, n);
			}
		}
		if (!n->up)
			node_restart(s, n, n->joined);
	}
}

static void dispatch(struct sl_sim *s, const struct sl_sim_event *e)
{
	struct sim_node *n = &s->node[e->node];

	if ((e->type == SL_SIM_EV_FRAME || e->type == SL_SIM_EV_DURABLE ||
	     e->type == SL_SIM_EV_APPLIED || e->type == SL_SIM_EV_PERSISTED) &&
	    defer_paused(s, n, e))
		return;
	if (e->type == SL_SIM_EV_FRAME) {
		ev_frame(s, e);
		return;
	}
	/* Disk, superblock and engine events belong to one incarnation. */
	if ((e->type == SL_SIM_EV_DURABLE || e->type == SL_SIM_EV_APPLIED ||
	     e->type == SL_SIM_EV_PERSISTED) &&
	    (e->gen != n->gen || !n->up))
		return;
	switch (e->type) {
	case SL_SIM_EV_DURABLE:
		ev_durable(s, n);
		break;
	case SL_SIM_EV_APPLIED:
		ev_applied(s, n);
		break;
	case SL_SIM_EV_PERSISTED:
		ev_persisted(s, n);
		break;
	case SL_SIM_EV_APPEND:
		ev_append(s);
		break;
	case SL_SIM_EV_CRASH:
		ev_crash(s, n);
		break;
	case SL_SIM_EV_CRASH_LEADER:
		ev_crash_leader(s);
		break;
	case SL_SIM_EV_CRASH_CANDIDATE:
		ev_crash_candidate(s);
		break;
	case SL_SIM_EV_CRASH_ALL:
		ev_crash_all(s, e->arg);
		break;
	case SL_SIM_EV_PAUSE:
		ev_pause(s, e->arg);
		break;
	case SL_SIM_EV_RESUME:
		ev_resume(n);
		break;
	case SL_SIM_EV_REBUILD:
		ev_rebuild(s, n);
		break;
	case SL_SIM_EV_TRANSFER:
		ev_transfer(s);
		break;
	case SL_SIM_EV_STEPDOWN:
		ev_stepdown(s);
		break;
	case SL_SIM_EV_RESTART:
		if (!n->up && e->gen == n->gen)
			node_restart(s, n, n->joined);
		break;
	case SL_SIM_EV_PART_START:
	case SL_SIM_EV_PART_HEAL:
		ev_partition(s, e->arg, e->type == SL_SIM_EV_PART_START);
		break;
	case SL_SIM_EV_STORAGE_ERR:
		ev_storage_err(s, n);
		break;
	case SL_SIM_EV_HEAL_ALL:
		ev_heal_all(s);
		break;
	case SL_SIM_EV_ROT:
		ev_rot(s);
		break;
	case SL_SIM_EV_FORCE:
		ev_force(s);
		break;
	case SL_SIM_EV_SCRUB:
		ev_scrub(s);
		break;
	}
}

/* ---- invariants after every step ---- */

/* Does node j hold position pos (LSN lsn, batch CRC crc) at ack level l? */
static int node_has(const struct sl_sim *s, const struct sim_node *j, enum sl_ack_level l,
		    uint64_t pos, uint64_t lsn, int64_t crc)
{
	switch (l) {
	case SL_ACK_RECEIVED:
		return sl_sim_set_has(&s->held, (uint64_t)j->idx << 56 | pos, (uint64_t)crc);
	case SL_ACK_DURABLE:
		return j->disk.durable >= pos && sl_sim_disk_crc_at_end(&j->disk, pos) == crc;
	default:
		return j->told_applied >= lsn;
	}
}

static int degraded(const struct sim_node *n, const struct sl_proto_status *st)
{
	return st->degraded || n->prev_degraded || st->degrade_events != n->prev_degrade_events;
}

/* (a) at one position of leader n: n (unless local=none) and `required`
 * others hold it at level l. */
static void check_held(struct sl_sim *s, struct sim_node *n, const struct sl_proto_status *st,
		       uint64_t pos, enum sl_ack_level l, const char *what)
{
	uint64_t lsn = sl_sim_disk_lsn_below(&n->disk, pos);
	int64_t crc = sl_sim_disk_crc_at_end(&n->disk, pos);
	unsigned have = 0, need = degraded(n, st) ? 0 : (unsigned)s->required;

	/* A leader of an epoch older than a forced one may count acks of
	 * copies the forced leader's followers have cut since: declared lost. */
	if (s->force_epoch && n->lead_epoch < s->force_epoch && pos > s->loss_pos)
		return;
	if (!s->clean.local_none && n->disk.durable < pos)
		sl_sim_violation(&s->chk, 'a', (int)n->idx, pos, lsn, s->now,
				 "%s is not durable on the leader (durable %" PRIu64 ")", what,
				 n->disk.durable);
	for (unsigned i = 0; i < n_nodes(s); i++)
		if (i != n->idx)
			have += (unsigned)node_has(s, &s->node[i], l, pos, lsn, crc);
	if (have < need)
		sl_sim_violation(&s->chk, 'a', -1, pos, lsn, s->now,
				 "%s is %s on %u other nodes, the policy demands %u", what,
				 sl_ack_level_name(l), have, need);
}

static void check_a(struct sl_sim *s, struct sim_node *n, const struct sl_proto_status *st)
{
	enum sl_ack_level l = s->clean.level;

	if (st->commit_pos > n->a_commit) {
		check_held(s, n, st, st->commit_pos, l, "the commit position");
		n->a_commit = st->commit_pos;
	}
	if (l == SL_ACK_APPLIED && st->safe_pos > n->a_safe) {
		check_held(s, n, st, st->safe_pos, SL_ACK_DURABLE, "the safe position");
		n->a_safe = st->safe_pos;
	}
}

/* The position the STATUS frames leader n received acknowledged at level
 * l, computed here and cross-checked against quorum.c. */
static uint64_t acked_quorum(struct sl_sim *s, struct sim_node *n, enum sl_ack_level l)
{
	uint64_t pos[SL_NODES_MAX], mine, theirs;
	unsigned nf = 0;

	for (unsigned i = 0; i < n_nodes(s); i++)
		if (i != n->idx)
			pos[nf++] = n->ack[i][l];
	mine = sl_sim_quorum(s->clean.local_none, n->disk.end, n->disk.durable, pos, nf,
			     (unsigned)s->required);
	theirs = sl_quorum_commit(&s->clean, n->disk.end, n->disk.durable, pos, nf,
				  (unsigned)s->required);
	if (mine != theirs)
		sl_sim_violation(&s->chk, 'd', (int)n->idx, mine, UINT64_MAX, s->now,
				 "sl_quorum_commit says %" PRIu64
				 ", the simulator computes %" PRIu64,
				 theirs, mine);
	return mine;
}

static void check_d(struct sl_sim *s, struct sim_node *n, const struct sl_proto_status *st)
{
	uint64_t alone = s->clean.local_none ? n->disk.end : n->disk.durable;
	int deg = degraded(n, st);
	uint64_t bound = acked_quorum(s, n, s->clean.level), safe_bound;

	if (deg && alone > bound)
		bound = alone;
	/* What was committed while degraded stays committed after the acks
	 * come back, even where they have not caught up with it yet; what a
	 * new leader knew as committed, it knew before any acknowledgement. */
	if (deg && st->commit_pos > n->deg_commit)
		n->deg_commit = st->commit_pos;
	if (n->deg_commit > bound)
		bound = n->deg_commit;
	if (n->lead_base > bound)
		bound = n->lead_base;
	if (st->commit_pos > bound)
		sl_sim_violation(&s->chk, 'd', (int)n->idx, st->commit_pos, st->commit_lsn, s->now,
				 "commit position beyond what the policy acknowledged (%" PRIu64
				 ", %s)",
				 bound, deg ? "degraded: leader alone" : "quorum of STATUS frames");
	if (s->clean.level != SL_ACK_APPLIED) {
		if (st->safe_pos != st->commit_pos)
			sl_sim_violation(
			    &s->chk, 'd', (int)n->idx, st->safe_pos, UINT64_MAX, s->now,
			    "safe_pos differs from commit_pos %" PRIu64 " below ack_level=applied",
			    st->commit_pos);
		return;
	}
	safe_bound = acked_quorum(s, n, SL_ACK_DURABLE);
	if (deg && alone > safe_bound)
		safe_bound = alone;
	if (deg && st->safe_pos > n->deg_safe)
		n->deg_safe = st->safe_pos;
	if (n->deg_safe > safe_bound)
		safe_bound = n->deg_safe;
	if (st->commit_pos > safe_bound)
		safe_bound = st->commit_pos;
	if (n->lead_base > safe_bound)
		safe_bound = n->lead_base;
	if (st->safe_pos > safe_bound)
		sl_sim_violation(&s->chk, 'd', (int)n->idx, st->safe_pos, UINT64_MAX, s->now,
				 "safe position beyond the durable quorum (%" PRIu64 ")",
				 safe_bound);
}

/* Degraded commits leave the committed log on the leader alone: a failover
 * then may lose them, which the policy allows (tolerance, at the top). */
static void note_degraded(struct sl_sim *s, struct sim_node *n, const struct sl_proto_status *st)
{
	if (st->degraded && !s->res->beyond && st->commit_pos > acked_quorum(s, n, s->clean.level))
		check_tolerance(s, "degraded commit");
}

static void check_node(struct sl_sim *s, struct sim_node *n)
{
	struct sl_proto_status *st = &s->st;

	if (!n->up || !n->p)
		return;
	sl_proto_get_status(n->p, st);
	if (st->failed == -EPROTO && !s->res->beyond && s->force_node < 0)
		sl_sim_violation(&s->chk, 'a', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "refused a leader whose log leaves its own below its commit "
				 "position (%s)",
				 sl_err_msg());
	else if (st->failed == -EPROTO && !n->rebuild_due) {
		n->rebuild_due = 1;
		push(s, s->now + s->prm->down_max_ns, SL_SIM_EV_REBUILD, n->idx, 0);
	}
	if (st->entropy.differences > n->differences) {
		n->differences = st->entropy.differences;
		if (!s->res->beyond)
			sl_sim_violation(&s->chk, 'E', (int)n->idx, st->entropy.diff_pos,
					 UINT64_MAX, s->now,
					 "anti-entropy found its committed log different from node "
					 "%u's (leaf %" PRIu64 ")",
					 st->entropy.last_peer, st->entropy.diff_leaf);
	}
	if (n->role != SL_ROLE_LEADER || st->role != SL_ROLE_LEADER)
		return;
	if (st->commit_pos != n->commit_pos || st->commit_lsn != n->commit_lsn)
		sl_sim_violation(&s->chk, 'd', (int)n->idx, st->commit_pos, st->commit_lsn, s->now,
				 "status disagrees with the commit callback (pos %" PRIu64
				 ", lsn %" PRIu64 ")",
				 n->commit_pos, n->commit_lsn);
	if (st->safe_pos > s->truth.end)
		truth_extend(s, n, st->safe_pos);
	/* The forced leader commits its epoch's first batch (no new LSN, no
	 * commit callback) where the committed log may hold others. */
	if (s->force_epoch && forced_history(s, &n->disk) && !forced_history(s, &s->truth) &&
	    st->safe_pos > s->force_pos)
		truth_extend(s, n, st->safe_pos);
	check_a(s, n, st);
	check_d(s, n, st);
	note_degraded(s, n, st);
	n->prev_degraded = st->degraded;
	n->prev_degrade_events = st->degrade_events;
}

/* ---- the loop ---- */

/* Done: a leader has every record committed, every node's engine holds
 * them all, and every node's log holds the committed log (no rot left;
 * beyond tolerance the committed log may be one no leader holds any more). */
static int finished(struct sl_sim *s)
{
	struct sim_node *l = cur_leader(s);

	int64_t crc = sl_sim_disk_crc_at_end(&s->truth, s->truth.end);

	if (!s->healed || !l || l->delivered_lsn < s->prm->records ||
	    l->commit_lsn < l->delivered_lsn)
		return 0;
	for (unsigned i = 0; i < n_nodes(s); i++)
		if (!s->node[i].up || s->node[i].delivered_lsn < l->commit_lsn ||
		    s->node[i].disk.n_rot ||
		    (!s->res->beyond && !holds(&s->node[i], s->truth.end, crc)))
			return 0;
	return 1;
}

/* Once done: every log is the leader's, byte for byte, over the committed
 * log (rot repaired, nothing else changed). */
static void check_replicas(struct sl_sim *s)
{
	struct sim_node *l = cur_leader(s);
	uint64_t end = s->truth.end;

	if (!l || s->res->beyond)
		return;
	for (unsigned i = 0; i < n_nodes(s); i++) {
		const struct sim_node *n = &s->node[i];
		uint64_t at = 0;

		if (n->disk.end < end) {
			sl_sim_violation(&s->chk, 'E', (int)i, n->disk.end, UINT64_MAX, s->now,
					 "its log ends before the committed log's %" PRIu64
					 " bytes once all is done",
					 end);
			return;
		}
		while (at < end && n->disk.buf[at] == s->truth.buf[at])
			at++;
		if (at < end) {
			sl_sim_violation(
			    &s->chk, 'E', (int)i, at, sl_sim_disk_lsn_below(&n->disk, at), s->now,
			    "its log differs from the committed log (leader: node %u) at "
			    "this byte of %" PRIu64 " once all is done (rotten batches: %u)",
			    l->idx + 1, end, n->disk.n_rot);
			return;
		}
	}
}

/* Earliest protocol timer of a running node; *who its index. */
static uint64_t next_timer(struct sl_sim *s, int *who)
{
	uint64_t best = UINT64_MAX;

	*who = -1;
	for (unsigned i = 0; i < n_nodes(s); i++) {
		uint64_t t;

		if (!running(&s->node[i]))
			continue;
		t = sl_proto_next_timer(s->node[i].p);
		if (t < best) {
			best = t;
			*who = (int)i;
		}
	}
	return best;
}

/* A node whose timer is still due after SIM_SPIN_MAX ticks in a row, with
 * no event in between and no time passing, would spin its loop forever. */
static void tick(struct sl_sim *s, struct sim_node *n, uint64_t due)
{
	if (n->spin_at != s->now || n->spin_ev != s->dispatched) {
		n->spin_at = s->now;
		n->spin_ev = s->dispatched;
		n->spin = 0;
	} else if (++n->spin > SIM_SPIN_MAX) {
		sl_sim_violation(&s->chk, 'T', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "timer still due after %u ticks in a row at the same instant "
				 "(next_timer %" PRIu64 ")",
				 n->spin, sl_proto_next_timer(n->p));
		return;
	}
	if (n->spin < 3) /* a stuck timer would flood the trace */
		trace(s, (int)n->idx, "tick (timer due %" PRIu64 " ns ago, repeat %" PRIu64 ")",
		      s->now - due, (uint64_t)n->spin);
	sl_proto_tick(n->p, s->now);
}

static void report_liveness(struct sl_sim *s)
{
	struct sim_node *l = cur_leader(s);
	char buf[768];
	int len = 0;

	for (unsigned i = 0; i < n_nodes(s) && len < (int)sizeof(buf) - 96; i++) {
		struct sim_node *n = &s->node[i];

		len += snprintf(buf + len, sizeof(buf) - (size_t)len,
				" n%u:%s,role=%d,epoch=%" PRIu64 ",log=%" PRIu64 ",durable=%" PRIu64
				",engine=%" PRIu64,
				i + 1, n->up ? "up" : "down", (int)n->role, n->epoch, n->disk.end,
				n->disk.durable, n->delivered_lsn);
	}
	sl_sim_violation(&s->chk, 'L', l ? (int)l->idx : -1, l ? l->commit_pos : UINT64_MAX,
			 l ? l->commit_lsn : UINT64_MAX, s->now,
			 "not done %" PRIu64 " ms after the heal: appended %" PRIu64
			 ", records %u, leader %d, committed log %" PRIu64
			 " bytes (LSNs to %" PRIu64 ");%s",
			 s->prm->heal_budget_ns / 1000000, s->appended, s->prm->records,
			 l ? (int)l->idx + 1 : 0, s->truth.end, s->truth.next_lsn - 1, buf);
}

/* One step: a timer or an event. 0 go on, 1 the run is over. */
static int step(struct sl_sim *s)
{
	const struct sl_sim_event *top = sl_sim_heap_peek(&s->heap);
	uint64_t et = top ? top->time : UINT64_MAX, tt;
	struct sl_sim_event e;
	int who;

	tt = next_timer(s, &who);
	if (tt == UINT64_MAX && et == UINT64_MAX) {
		report_liveness(s); /* nothing can ever happen again */
		return 1;
	}
	if (s->healed && (tt < et ? tt : et) > s->end_time) {
		report_liveness(s);
		return 1;
	}
	if (tt <= et) {
		if (tt > s->now)
			s->now = tt;
		tick(s, &s->node[who], tt);
	} else {
		sl_sim_heap_pop(&s->heap, &e);
		s->dispatched++;
		if (e.time > s->now)
			s->now = e.time;
		dispatch(s, &e);
		who = e.node;
	}
	s->res->events++;
	if (!s->chk.failed)
		check_node(s, &s->node[who]);
	return 0;
}

/* ---- set-up and tear-down ---- */

static void make_config(struct sl_sim *s)
{
	const struct sl_sim_params *p = s->prm;
	struct sl_proto_config *c = &s->cfg;

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < 16; i++)
		c->cluster_id[i] = (uint8_t)sl_rng_next(s->rng);
	c->stream_id = sl_rng_next(s->rng);
	c->epoch = sl_sim_range(s->rng, 2, 1000000); /* > 1, so stale frames exist */
	c->n_nodes = p->nodes;
	for (unsigned i = 0; i < p->nodes; i++)
		c->node_ids[i] = i + 1;
	c->leader_id = 1;
	c->policy = p->policy;
	c->mtu = p->mtu;
	c->batch_bytes = p->batch_bytes;
	c->linger_ns = p->linger_ns;
	c->window_bytes = p->window_bytes;
	c->rcv_window_bytes = p->rcv_window_bytes;
	c->heartbeat_ns = p->heartbeat_ns;
	c->nak_delay_ns = p->nak_delay_ns;
	c->nak_interval_ns = p->nak_interval_ns;
	c->tlp_ns = p->tlp_ns;
	c->send_budget = p->send_budget;
	c->limits.max_raw_bytes = p->batch_bytes > (1u << 20) ? p->batch_bytes : (1u << 20);
	c->limits.max_record_bytes = SL_SIM_REC_MAX;
	c->elect = p->elect;
	c->election_timeout_ns = p->election_timeout_ns;
	c->rng_seed = sl_rng_next(s->rng);
	c->entropy_interval_ns = p->entropy_ns;
	s->clean = p->policy;
	s->clean.debug_undercount = 0;
	s->clean.debug_undervote = 0;
}

static int nodes_init(struct sl_sim *s)
{
	uint64_t recs = s->prm->records;
	/* Every batch holds at least one record, stored no larger than raw,
	 * except the empty first batch of each epoch. */
	uint64_t cap = recs * (SL_SIM_REC_MAX + SL_REC_PREFIX + SL_BATCH_HDR_SIZE) + (1u << 20);
	uint32_t idx = (uint32_t)recs + 4096;
	int rc;

	s->own_cap = recs + SIM_LSN_SLACK;
	if ((rc = sl_sim_disk_init(&s->truth, cap, idx, idx, &s->cfg.limits)) < 0)
		return rc;
	for (unsigned i = 0; i < s->prm->nodes; i++) {
		struct sim_node *n = &s->node[i];

		memset(n, 0, sizeof(*n));
		n->sim = s;
		n->idx = i;
		n->id = i + 1;
		n->own = calloc(s->own_cap, sizeof(*n->own));
		n->lent = malloc((size_t)SIM_LENT * SIM_LENT_SIZE);
		if (!n->own || !n->lent)
			return -ENOMEM;
		rc = sl_sim_disk_init(&n->disk, cap, idx, idx, &s->cfg.limits);
		if (rc < 0)
			return rc;
		if ((rc = sl_merkle_init(&n->tree, idx)) < 0)
			return rc;
		if (!(n->leaf_pos = calloc(idx, sizeof(*n->leaf_pos))))
			return -ENOMEM;
	}
	return 0;
}

static void nodes_fini(struct sl_sim *s)
{
	for (unsigned i = 0; i < s->prm->nodes; i++) {
		sl_proto_destroy(s->node[i].p);
		if (s->node[i].p)
			check_lent_back(s, &s->node[i]);
		s->node[i].p = NULL;
		free(s->node[i].lent);
		s->node[i].lent = NULL;
		sl_sim_disk_destroy(&s->node[i].disk);
		sl_merkle_destroy(&s->node[i].tree);
		free(s->node[i].leaf_pos);
		s->node[i].leaf_pos = NULL;
		free(s->node[i].own);
		s->node[i].own = NULL;
	}
	sl_sim_disk_destroy(&s->truth);
}

static uint64_t rand_time(struct sl_sim *s)
{
	return sl_sim_below(s->rng, s->prm->fault_ns);
}

static void plan_failover(struct sl_sim *s)
{
	const struct sl_sim_params *p = s->prm;
	uint64_t t = p->election_timeout_ns;

	for (uint32_t k = 0; k < p->leader_crashes; k++) {
		uint64_t at = rand_time(s);

		push(s, at, SL_SIM_EV_CRASH_LEADER, 0, 0);
		/* Crashes during the election that follows. */
		if (sl_sim_chance(s->rng, 500000))
			push(s, at + sl_sim_range(s->rng, t, 3 * t), SL_SIM_EV_CRASH_CANDIDATE, 0,
			     0);
	}
	for (uint32_t k = 0; k < p->double_failovers; k++) {
		uint64_t at = rand_time(s);

		/* KIP-279: the new leader fails soon after it took over. */
		push(s, at, SL_SIM_EV_CRASH_LEADER, 0, 0);
		push(s, at + sl_sim_range(s->rng, 2 * t, 5 * t), SL_SIM_EV_CRASH_LEADER, 0, 0);
	}
	for (uint32_t k = 0; k < p->pauses; k++)
		push(s, rand_time(s), SL_SIM_EV_PAUSE, 0,
		     sl_sim_range(s->rng, t / 2, p->pause_max_ns));
	for (uint32_t k = 0; k < p->candidate_crashes; k++)
		push(s, rand_time(s), SL_SIM_EV_CRASH_CANDIDATE, 0, 0);
	for (uint32_t k = 0; k < p->power_losses; k++)
		push(s, rand_time(s), SL_SIM_EV_CRASH_ALL, 0, sl_sim_range(s->rng, 200000, 4 * t));
	for (uint32_t k = 0; k < p->transfers; k++)
		push(s, rand_time(s), SL_SIM_EV_TRANSFER, 0, 0);
	for (uint32_t k = 0; k < p->stepdowns; k++)
		push(s, rand_time(s), SL_SIM_EV_STEPDOWN, 0, 0);
	if (p->forces)
		push(s, sl_sim_below(&s->rng_rot, p->fault_ns), SL_SIM_EV_FORCE, 0, 0);
}

static void plan_faults(struct sl_sim *s)
{
	const struct sl_sim_params *p = s->prm;
	unsigned nf = p->nodes - 1;

	sl_sim_net_randomize(&s->net, s->rng, (p->faults & SL_SIM_FAULT_NET) != 0, p->loss_ppm,
			     p->dup_ppm);
	if (p->faults & SL_SIM_FAULT_NET)
		s->net.forge_ppm = p->forge_ppm;
	s->n_parts = 0;
	for (uint32_t k = 0; nf > 0 && k < p->partitions && k < SIM_PARTS_MAX; k++) {
		struct sim_part *pt = &s->part[s->n_parts];
		uint64_t start = rand_time(s);

		pt->mask = (uint32_t)sl_sim_range(s->rng, 1, (1u << p->nodes) - 2);
		pt->mode = (int)sl_sim_below(s->rng, 3);
		pt->active = 0;
		push(s, start, SL_SIM_EV_PART_START, 0, s->n_parts);
		push(s, start + sl_sim_range(s->rng, 1000000, p->fault_ns / 2 + 1000000),
		     SL_SIM_EV_PART_HEAL, 0, s->n_parts);
		s->n_parts++;
	}
	/* Node 1 leads for good without elections; with them, any node may be
	 * the leader by the time (a crash of the leader is a failover fault). */
	for (uint32_t k = 0; nf > 0 && k < p->crashes; k++)
		push(s, rand_time(s), SL_SIM_EV_CRASH,
		     (unsigned)sl_sim_range(s->rng, !p->elect, nf), 0);
	for (uint32_t k = 0; nf > 0 && k < p->storage_errors; k++)
		push(s, rand_time(s), SL_SIM_EV_STORAGE_ERR,
		     (unsigned)sl_sim_range(s->rng, !p->elect, nf), 0);
	if (p->faults & SL_SIM_FAULT_FAILOVER)
		plan_failover(s);
	if (p->faults & SL_SIM_FAULT_ROT) {
		for (uint32_t k = 0; k < p->rots; k++)
			push(s, sl_sim_below(&s->rng_rot, p->fault_ns), SL_SIM_EV_ROT, 0, 0);
		push(s, p->scrub_ns, SL_SIM_EV_SCRUB, 0, 0);
	}
	push(s, p->fault_ns, SL_SIM_EV_HEAL_ALL, 0, 0);
}

static int start_nodes(struct sl_sim *s)
{
	struct sl_log_state empty = {.next_lsn = 1};

	for (unsigned i = 0; i < s->prm->nodes; i++)
		if (node_start(s, &s->node[i], &empty, 0) < 0)
			return -EINVAL;
	return 0;
}

int sl_sim_create(struct sl_sim **out)
{
	struct sl_sim *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	if ((rc = sl_sim_heap_init(&s->heap, SIM_HEAP_CAP)) < 0 ||
	    (rc = sl_sim_net_init(&s->net, SIM_SLOTS)) < 0 ||
	    (rc = sl_sim_check_init(&s->chk, SL_SIM_RECORDS_MAX)) < 0 ||
	    (rc = sl_sim_set_init(&s->sealed, 1 << 12)) < 0 ||
	    (rc = sl_sim_set_init(&s->held, 1 << 14)) < 0 ||
	    !(s->epochs = calloc(SIM_EPOCHS_MAX, sizeof(*s->epochs))) ||
	    !(s->raw = malloc(SL_BATCH_RAW_MAX))) {
		rc = rc < 0 ? rc : -ENOMEM;
		sl_sim_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

void sl_sim_destroy(struct sl_sim *s)
{
	if (!s)
		return;
	sl_sim_heap_destroy(&s->heap);
	sl_sim_net_destroy(&s->net);
	sl_sim_check_destroy(&s->chk);
	sl_sim_set_destroy(&s->sealed);
	sl_sim_set_destroy(&s->held);
	free(s->epochs);
	free(s->raw);
	free(s);
}

static void collect(struct sl_sim *s, struct sl_sim_result *r)
{
	struct sim_node *l = cur_leader(s);
	uint64_t dmin = UINT64_MAX;

	for (unsigned i = 0; i < n_nodes(s); i++) {
		if (s->node[i].delivered_lsn < dmin)
			dmin = s->node[i].delivered_lsn;
		if (s->node[i].p) {
			sl_proto_get_status(s->node[i].p, &s->st);
			r->elections += s->st.elections;
			r->step_downs += s->st.step_downs;
			r->truncations += s->st.truncations;
			r->truncated_bytes += s->st.truncated_bytes;
			r->comparisons += s->st.entropy.comparisons;
			r->tails_given_up += s->st.entropy.tails_given_up;
		}
	}
	r->appended = s->appended;
	r->committed = s->truth.next_lsn - 1;
	r->truth_bytes = s->truth.end;
	r->delivered_min = dmin;
	r->frames = s->net.st.sent;
	r->lost = s->net.st.lost;
	r->partitioned = s->net.st.partitioned;
	r->congested = s->net.st.congested;
	r->to_down = s->net.st.to_down;
	r->duplicated = s->net.st.duplicated;
	r->forged = s->net.st.forged;
	if (l && l->p) {
		sl_proto_get_status(l->p, &s->st);
		r->degrade_events = s->st.degrade_events;
		r->naks = s->st.naks_received;
		r->retransmits = s->st.retransmits;
		r->tlps = s->st.tlps;
		for (uint32_t i = 0; i < s->st.n_peers && i < SL_NODES_MAX; i++)
			r->catchup += s->st.peers[i].catchup_batches;
	}
	r->vtime_ns = s->now;
	r->commit_p50_ns = sl_hist_quantile(&s->commit_lat, 0.5);
	r->commit_p99_ns = sl_hist_quantile(&s->commit_lat, 0.99);
	r->letter = s->chk.letter;
}

static void reset_run(struct sl_sim *s, const struct sl_sim_params *prm, uint64_t *rng,
		      struct sl_sim_result *r)
{
	memset(r, 0, sizeof(*r));
	s->prm = prm;
	s->res = r;
	s->rng = rng;
	s->rng_rot = sl_sim_mix(prm->seed ^ 0x726f74726f74ull);
	s->force_node = -1;
	s->force_epoch = s->force_pos = s->loss_lsn = s->loss_pos = 0;
	s->now = 0;
	s->appended = 0;
	sl_hist_reset(&s->commit_lat);
	s->append_pending = 0;
	s->rec_len = 0;
	s->healed = 0;
	s->dispatched = 0;
	s->end_time = UINT64_MAX;
	s->n_epochs = 0;
	sl_sim_set_clear(&s->sealed);
	sl_sim_set_clear(&s->held);
	sl_sim_heap_clear(&s->heap);
	sl_sim_net_reset(&s->net, prm->nodes, 0);
	sl_sim_check_reset(&s->chk, prm->seed);
	s->chk.live = prm->trace;
	sl_wl_init(&s->wl, prm->wl_kind, sl_rng_next(rng));
}

/* Our own arithmetic from DESIGN.md: W counts the leader unless local=none;
 * an election needs N - W + 1 votes (at most N, at least 1). */
static void quorums(struct sl_sim *s)
{
	unsigned n = n_nodes(s);

	s->required = sl_sim_required(&s->clean, n);
	s->w = (unsigned)s->required + (s->clean.local_none ? 0 : 1);
	s->votes = n - s->w + 1 > n ? n : n - s->w + 1;
}

int sl_sim_run(struct sl_sim *s, const struct sl_sim_params *prm, uint64_t *rng,
	       struct sl_sim_result *r)
{
	int rc;

	if (prm->nodes < 1 || prm->nodes > SL_NODES_MAX || prm->records > SL_SIM_RECORDS_MAX ||
	    prm->fault_ns == 0 || sl_sim_required(&prm->policy, prm->nodes) < 0 ||
	    ((prm->faults & SL_SIM_FAULT_FAILOVER) && !prm->elect))
		return -EINVAL;
	reset_run(s, prm, rng, r);
	make_config(s);
	quorums(s);
	if ((rc = nodes_init(s)) < 0) {
		nodes_fini(s);
		return rc;
	}
	if (start_nodes(s) == 0) {
		plan_faults(s);
		schedule_append(s, sl_sim_range(rng, 0, prm->append_gap_ns));
		while (!s->chk.failed && !finished(s) && r->events < prm->max_events)
			if (step(s))
				break;
		if (!s->chk.failed && finished(s))
			check_replicas(s);
	}
	collect(s, r);
	if (s->chk.failed)
		r->outcome = SL_SIM_VIOLATION;
	else if (!finished(s))
		r->outcome = SL_SIM_INCOMPLETE;
	nodes_fini(s);
	return 0;
}
