/* One simulated run; see sim_run.h.
 *
 * The loop: the next thing to happen is either the earliest event of the
 * heap or the earliest protocol timer of a live node (timers win ties, so a
 * node never sees a frame at a time its overdue timers have not run yet).
 * Callbacks never re-enter the protocol: what they cause (durability, engine
 * acknowledgements, frame arrivals) is scheduled as events, even at delay 0.
 * After every step the invariants are checked.
 *
 * What each ack level promises, as checked by invariant (a) for every
 * commit position the leader reaches (and, for ack_level=applied, for its
 * safe position too):
 *   - the leader holds the committed bytes durably, unless local=none;
 *   - received: `required` followers have held the bytes in memory (written
 *     to their disk's volatile region, at any time: a follower that crashed
 *     since may have lost them, which is what received allows);
 *   - durable: `required` followers hold them durably now (crashes keep
 *     durable bytes, so this never stops being true);
 *   - applied: `required` followers' engines acknowledged applying every
 *     committed record; and the safe position (what followers may deliver)
 *     is durable on `required` followers, as at level durable;
 *   - while the leader is degraded (on_timeout=degrade after ack_timeout)
 *     the policy promises only the leader's own durability.
 * `required` is computed here from DESIGN.md (sl_sim_required), never taken
 * from the protocol, so --broken-quorum (debug_undercount) is caught. */
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

#define SIM_HEAP_CAP	 (1u << 17)
#define SIM_SLOTS	 16384 /* frames in flight; more is congestion */
#define SIM_HEAP_RESERVE 1024  /* heap room frames may not take: control events */
#define SIM_PARTS_MAX	 8
#define SIM_SPIN_MAX	 1000 /* ticks at one instant before a timer counts as stuck */
#define SIM_EV_FORGED	 1u   /* FRAME event flag: a forged copy, must change nothing */

struct sim_part {
	uint32_t mask; /* nodes on one side */
	int mode;      /* 0 both directions cut, 1 only mask -> rest, 2 only rest -> mask */
	int active;
};

struct sim_node {
	struct sl_sim *sim;
	unsigned idx;
	uint32_t id;
	struct sl_proto *p;
	int up;
	uint32_t gen; /* incarnation: events of an older one are stale */
	struct sl_sim_disk disk;
	int sync_pending; /* a DURABLE event is queued */
	int fail_sync;	  /* injected: the next sync fails */
	int fail_write;	  /* injected: the next write fails */
	int storage_failed;
	int in_forged;	  /* a forged frame is being delivered */
	uint64_t spin_at; /* instant of the last tick, for stuck timers */
	uint32_t spin;
	uint64_t spin_ev; /* events dispatched at the last tick */
	/* The engine: what it applied survives crashes (its own durable state). */
	uint64_t delivered_lsn;
	uint64_t delivered_pos; /* end of the batch holding delivered_lsn */
	uint64_t told_applied;	/* highest LSN the protocol was told is applied */
	int apply_pending;
	/* Replication as it physically is, for (a). */
	uint64_t recv_hw; /* furthest log end ever held, in memory or on disk */
	/* Acknowledged: maxima of the genuine STATUS frames the leader got, (d). */
	uint64_t ack_recv, ack_durable, ack_applied;
};

struct sl_sim {
	const struct sl_sim_params *prm;
	struct sl_sim_result *res;
	uint64_t *rng;
	uint64_t now;
	struct sl_proto_config cfg;
	struct sl_ack_policy clean; /* the policy without debug_undercount */
	int required;		    /* follower acks the policy demands (ours) */
	struct sl_sim_heap heap;
	struct sl_sim_net net;
	struct sl_sim_check chk;
	struct sim_node node[SL_NODES_MAX];
	struct sim_part part[SIM_PARTS_MAX];
	unsigned n_parts;
	struct sl_wl wl;
	uint8_t rec[SL_SIM_REC_MAX];
	uint32_t rec_len; /* a record generated but not yet accepted (-EAGAIN) */
	uint8_t forged[SL_FRAME_MAX];
	uint64_t appended;
	uint64_t *append_ns; /* virtual time each LSN was appended */
	struct sl_hist commit_lat;
	int append_pending;
	uint64_t commit_pos, commit_lsn; /* as the commit callback reported */
	uint64_t a_commit, a_safe;	 /* (a) checked up to these */
	uint64_t deg_commit, deg_safe;	 /* highest commit/safe reached while degraded */
	int prev_degraded;
	uint64_t prev_degrade_events;
	int healed;
	uint64_t dispatched; /* heap events handled: ticks between them are no spin */
	uint64_t end_time;   /* liveness deadline once healed */
	struct sl_proto_status st, st2;
};

/* ---- small helpers ---- */

static struct sim_node *leader(struct sl_sim *s)
{
	return &s->node[0];
}

static unsigned n_nodes(const struct sl_sim *s)
{
	return s->prm->nodes;
}

#define trace(s, node, ...) sl_sim_trace(&(s)->chk, (s)->now, (node), __VA_ARGS__)

static int push(struct sl_sim *s, uint64_t at, uint16_t type, unsigned node, uint64_t arg)
{
	struct sl_sim_event e = {.time = at, .type = type, .node = (uint8_t)node, .arg = arg};
	int rc;

	e.slot = -1;
	e.gen = s->node[node].gen;
	rc = sl_sim_heap_push(&s->heap, &e);
	if (rc < 0) /* control events are few and bounded: a full heap is a sim bug */
		sl_sim_violation(&s->chk, 'P', (int)node, UINT64_MAX, UINT64_MAX, s->now,
				 "simulator event heap full (%u events)", s->heap.cap);
	return rc;
}

static int node_index(const struct sl_sim *s, uint32_t id)
{
	for (unsigned i = 0; i < n_nodes(s); i++)
		if (s->node[i].id == id)
			return (int)i;
	return -1;
}

/* A callback during a forged frame is a state change: invariant (e). */
static int forged_guard(struct sim_node *n, const char *what)
{
	if (!n->in_forged)
		return 0;
	sl_sim_violation(&n->sim->chk, 'e', (int)n->idx, UINT64_MAX, UINT64_MAX, n->sim->now,
			 "a forged frame made the node call %s", what);
	return 1;
}

/* ---- the disk behind write/read ---- */

static uint64_t disk_latency(struct sl_sim *s)
{
	const struct sl_sim_params *p = s->prm;
	uint64_t lat = sl_sim_range(s->rng, p->disk_lat_ns / 2, p->disk_lat_ns * 3 / 2);

	if (sl_sim_chance(s->rng, p->disk_tail_ppm))
		lat += sl_sim_range(s->rng, 0, p->disk_tail_ns);
	return lat;
}

static void schedule_sync(struct sl_sim *s, struct sim_node *n)
{
	uint64_t at = sl_sim_disk_next_sync(&n->disk);

	if (n->sync_pending || at == UINT64_MAX)
		return;
	if (push(s, at, SL_SIM_EV_DURABLE, n->idx, 0) == 0)
		n->sync_pending = 1;
}

/* (b): a follower's bytes at pos must be the leader's bytes at pos (one
 * leader, one epoch, and followers never re-encode). */
static void check_same_bytes(struct sl_sim *s, struct sim_node *n, uint64_t pos, const uint8_t *b,
			     uint64_t len)
{
	const struct sl_sim_disk *ld = &leader(s)->disk;

	if (pos + len > ld->end || memcmp(ld->buf + pos, b, len) != 0)
		sl_sim_violation(&s->chk, 'b', (int)n->idx, pos, UINT64_MAX, s->now,
				 "%" PRIu64 " bytes at this position differ from the leader's log "
				 "(leader log end %" PRIu64 ")",
				 len, ld->end);
}

static int cb_write(void *ctx, const uint8_t *batch, size_t len, uint64_t pos)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	int rc;

	if (forged_guard(n, "write"))
		return 0;
	trace(s, (int)n->idx, "write pos=%" PRIu64 " len=%" PRIu64, pos, len);
	if (n->fail_write) {
		n->fail_write = 0;
		n->storage_failed = 1;
		s->res->storage_errors++;
		trace(s, (int)n->idx, "write FAILS (injected EIO)");
		return -EIO;
	}
	if (n->idx != 0)
		check_same_bytes(s, n, pos, batch, len);
	rc = sl_sim_disk_write(&n->disk, pos, batch, len, s->now + disk_latency(s));
	if (rc < 0) {
		sl_sim_violation(&s->chk, 'W', (int)n->idx, pos, UINT64_MAX, s->now,
				 "write of %zu bytes refused (%d): log end %" PRIu64
				 ", next LSN %" PRIu64
				 "; not a verified, chained append at the end",
				 len, rc, n->disk.end, n->disk.next_lsn);
		return rc;
	}
	if (n->disk.end > n->recv_hw)
		n->recv_hw = n->disk.end;
	schedule_sync(s, n);
	return 0;
}

static int cb_read(void *ctx, uint64_t pos, uint8_t *buf, size_t cap)
{
	struct sim_node *n = ctx;
	int rc;

	if (forged_guard(n, "read"))
		return -EIO;
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

/* ---- the network behind send ---- */

/* Is this a frame a correct node would send? */
static int frame_sane(struct sl_sim *s, struct sim_node *n, unsigned to, const uint8_t *frame,
		      size_t len)
{
	struct sl_frame f;
	int rc = sl_frame_decode(frame, len, &f);
	const char *why = NULL;

	if (rc < 0)
		why = sl_err_msg();
	else if (len > s->cfg.mtu - SL_FRAME_IP_UDP)
		why = "larger than the MTU allows";
	else if (f.hdr.sender != n->id || f.hdr.receiver != s->node[to].id)
		why = "sender/receiver fields do not match the send call";
	else if (memcmp(f.hdr.cluster_id, s->cfg.cluster_id, 16) != 0 ||
		 f.hdr.stream_id != s->cfg.stream_id || f.hdr.epoch != s->cfg.epoch)
		why = "wrong cluster, stream or epoch";
	if (!why)
		return 1;
	sl_sim_violation(&s->chk, 'F', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
			 "bad frame of %zu bytes to node %u: %s", len, to + 1, why);
	return 0;
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

static int cb_send(void *ctx, uint32_t to_id, const uint8_t *frame, size_t len)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	int to = node_index(s, to_id);

	if (forged_guard(n, "send"))
		return 0;
	if (to < 0 || to == (int)n->idx) {
		sl_sim_violation(&s->chk, 'F', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "send to unknown node id %u", to_id);
		return 0;
	}
	if (!frame_sane(s, n, (unsigned)to, frame, len))
		return 0;
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

/* (b) per record and (c): the next LSN, the right bytes, and nothing past
 * what the leader calls safe. */
static void check_records(struct sl_sim *s, struct sim_node *n, const struct sl_batch_hdr *h,
			  const uint8_t *raw, size_t raw_len)
{
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t len, i = 0;
	int rc;

	sl_rec_iter_init(&it, raw, raw_len);
	while ((rc = sl_rec_next(&it, &rec, &len)) == 1 && i < h->record_count) {
		if (!sl_sim_rec_match(&s->chk, h->base_lsn + i, rec, len)) {
			sl_sim_violation(&s->chk, 'b', (int)n->idx, h->position, h->base_lsn + i,
					 s->now,
					 "delivered record (%u bytes) differs from the one "
					 "appended",
					 len);
			return;
		}
		i++;
	}
	if (rc < 0 || i != h->record_count || sl_rec_next(&it, &rec, &len) != 0)
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, h->base_lsn, s->now,
				 "delivered batch holds %u well-formed records, header says %u", i,
				 h->record_count);
}

static void cb_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *raw, size_t raw_len)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	uint64_t last = h->base_lsn + h->record_count - 1, safe_lsn;

	if (forged_guard(n, "deliver"))
		return;
	trace(s, (int)n->idx, "deliver lsn=%" PRIu64 "..%" PRIu64 " pos=%" PRIu64, h->base_lsn,
	      last, h->position);
	if (n->idx == 0 || h->record_count == 0) {
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, h->base_lsn, s->now,
				 "deliver called on the leader or with an empty batch");
		return;
	}
	if (h->base_lsn != n->delivered_lsn + 1) {
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, h->base_lsn, s->now,
				 "delivered LSNs %" PRIu64 "..%" PRIu64 " after LSN %" PRIu64
				 " (%s)",
				 h->base_lsn, last, n->delivered_lsn,
				 h->base_lsn <= n->delivered_lsn ? "delivered twice" : "a gap");
		return;
	}
	sl_proto_get_status(leader(s)->p, &s->st2);
	safe_lsn = sl_sim_disk_lsn_below(&leader(s)->disk, s->st2.safe_pos);
	if (last > safe_lsn) {
		sl_sim_violation(&s->chk, 'c', (int)n->idx, h->position, last, s->now,
				 "delivered before it was safe: the leader's safe_pos %" PRIu64
				 " holds LSNs up to %" PRIu64,
				 s->st2.safe_pos, safe_lsn);
		return;
	}
	check_records(s, n, h, raw, raw_len);
	n->delivered_lsn = last;
	n->delivered_pos = h->position + SL_BATCH_HDR_SIZE + h->stored_len;
	schedule_apply(s, n);
}

static void cb_commit(void *ctx, uint64_t lsn, uint64_t pos)
{
	struct sim_node *n = ctx;
	struct sl_sim *s = n->sim;
	const struct sl_sim_disk *ld = &leader(s)->disk;

	if (forged_guard(n, "commit"))
		return;
	trace(s, (int)n->idx, "commit lsn=%" PRIu64 " pos=%" PRIu64, lsn, pos);
	if (n->idx != 0 || pos < s->commit_pos || lsn < s->commit_lsn)
		sl_sim_violation(&s->chk, 'd', (int)n->idx, pos, lsn, s->now,
				 "commit went backwards (from pos %" PRIu64 " lsn %" PRIu64
				 ") or was reported by a follower",
				 s->commit_pos, s->commit_lsn);
	else if (lsn != sl_sim_disk_lsn_below(ld, pos) ||
		 (pos > 0 && sl_sim_disk_lsn_end(ld, lsn) != pos))
		sl_sim_violation(&s->chk, 'd', (int)n->idx, pos, lsn, s->now,
				 "commit position is not the end of the batch holding the commit "
				 "LSN (the log there holds LSNs up to %" PRIu64 ")",
				 sl_sim_disk_lsn_below(ld, pos));
	for (uint64_t l = s->commit_lsn + 1; l <= lsn && l <= s->appended; l++)
		sl_hist_record(&s->commit_lat, s->now - s->append_ns[l]);
	s->commit_pos = pos;
	s->commit_lsn = lsn;
}

/* ---- node life ---- */

static void config_for(struct sl_sim *s, struct sim_node *n, struct sl_proto_config *c)
{
	*c = s->cfg;
	c->node_id = n->id;
}

static int node_start(struct sl_sim *s, struct sim_node *n, const struct sl_log_state *ls)
{
	struct sl_proto_config c;
	struct sl_proto_ops ops = {
	    .ctx = n,
	    .write = cb_write,
	    .read = cb_read,
	    .send = cb_send,
	    .deliver = cb_deliver,
	    .commit = cb_commit,
	};
	int rc;

	config_for(s, n, &c);
	sl_err_clear();
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
	return 0;
}

static void node_crash(struct sl_sim *s, struct sim_node *n)
{
	struct sl_sim_crash_info ci;

	sl_proto_destroy(n->p);
	n->p = NULL;
	n->up = 0;
	n->gen++;
	n->sync_pending = n->apply_pending = 0;
	n->fail_sync = n->fail_write = n->storage_failed = 0;
	sl_sim_disk_crash(&n->disk, s->rng, &ci);
	s->res->crashes++;
	trace(s, (int)n->idx,
	      "CRASH durable=%" PRIu64 " volatile=%" PRIu64 " kept=%" PRIu64 " tear=%" PRIu64,
	      n->disk.durable, ci.volatile_bytes, ci.kept, (uint64_t)ci.tear);
}

/* Recover the log (whole verified chained batches), check it against the
 * leader's, and start the protocol on it with the engine's applied LSN. */
static void node_restart(struct sl_sim *s, struct sim_node *n)
{
	struct sl_sim_recovered rec;
	struct sl_log_state ls;

	sl_sim_disk_recover(&n->disk, &rec);
	trace(s, (int)n->idx,
	      "RESTART log_end=%" PRIu64 " next_lsn=%" PRIu64 " cut=%" PRIu64 " applied=%" PRIu64,
	      rec.next_pos, rec.next_lsn, rec.cut_bytes, n->delivered_lsn);
	if (rec.lost_durable)
		sl_sim_violation(&s->chk, 'a', (int)n->idx, rec.next_pos, UINT64_MAX, s->now,
				 "recovery lost %" PRIu64 " durable bytes", rec.lost_durable);
	check_same_bytes(s, n, 0, n->disk.buf, rec.next_pos);
	ls = (struct sl_log_state){
	    .next_lsn = rec.next_lsn,
	    .next_pos = rec.next_pos,
	    .last_crc = rec.last_crc,
	    .durable_pos = rec.next_pos,
	    .applied_lsn = n->delivered_lsn,
	    .applied_pos = n->delivered_pos,
	};
	if (node_start(s, n, &ls) == 0) {
		s->res->restarts++;
		if (n->delivered_lsn > n->told_applied)
			n->told_applied = n->delivered_lsn;
	}
}

/* ---- events ---- */

static void trace_frame(struct sl_sim *s, unsigned to, unsigned from, const uint8_t *b, size_t len)
{
	struct sl_frame f;

	if (sl_frame_decode(b, len, &f) < 0) {
		trace(s, (int)to, "recv BAD frame from n%" PRIu64 " len=%" PRIu64,
		      (uint64_t)from + 1, len);
		return;
	}
	switch (f.hdr.type) {
	case SL_FRAME_DATA:
		trace(s, (int)to,
		      "recv DATA from n%" PRIu64 " pos=%" PRIu64 " off=%" PRIu64 " commit=%" PRIu64,
		      (uint64_t)from + 1, f.data.batch_pos, (uint64_t)f.data.frag_off,
		      f.data.commit_pos);
		break;
	case SL_FRAME_STATUS:
		trace(s, (int)to,
		      "recv STATUS from n%" PRIu64 " recv=%" PRIu64 " durable=%" PRIu64
		      " applied=%" PRIu64,
		      (uint64_t)from + 1, f.status.received_pos, f.status.durable_pos,
		      f.status.applied_pos);
		break;
	case SL_FRAME_NAK:
		trace(s, (int)to, "recv NAK from n%" PRIu64 " [%" PRIu64 ", %" PRIu64 ")",
		      (uint64_t)from + 1, f.nak.from_pos, f.nak.to_pos);
		break;
	default:
		trace(s, (int)to,
		      "recv HEARTBEAT from n%" PRIu64 " end=%" PRIu64 " commit=%" PRIu64,
		      (uint64_t)from + 1, f.hb.leader_end, f.hb.commit_pos);
		break;
	}
}

/* (d) bookkeeping: what the followers acknowledged, from the STATUS frames
 * the leader actually receives (decoded here, not read from the protocol). */
static void note_status(struct sl_sim *s, unsigned from, const uint8_t *b, size_t len)
{
	struct sl_frame f;
	struct sim_node *n = &s->node[from];

	if (sl_frame_decode(b, len, &f) < 0 || f.hdr.type != SL_FRAME_STATUS)
		return;
	if (f.status.received_pos > n->ack_recv)
		n->ack_recv = f.status.received_pos;
	if (f.status.durable_pos > n->ack_durable)
		n->ack_durable = f.status.durable_pos;
	if (f.status.applied_pos > n->ack_applied)
		n->ack_applied = f.status.applied_pos;
}

static void deliver_genuine(struct sl_sim *s, struct sim_node *n, unsigned from, const uint8_t *b,
			    size_t len)
{
	trace_frame(s, n->idx, from, b, len);
	if (n->idx == 0)
		note_status(s, from, b, len);
	s->net.st.delivered++;
	sl_proto_on_frame(n->p, b, len, s->now);
}

/* (e): a forged frame may bump the frame counters, nothing else. */
static void deliver_forged(struct sl_sim *s, struct sim_node *n, unsigned from, const uint8_t *b,
			   size_t len, unsigned kind)
{
	uint64_t end = n->disk.end, durable = n->disk.durable, dl = n->delivered_lsn;
	uint32_t heap_len = s->heap.len;
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
		      heap_len != s->heap.len))
		diff = "the log, the engine or the events it scheduled";
	if (diff)
		sl_sim_violation(&s->chk, 'e', (int)n->idx, UINT64_MAX, UINT64_MAX, s->now,
				 "a forged frame (%s) changed %s", sl_sim_forge_name(kind), diff);
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
	if (n->delivered_lsn <= n->told_applied)
		return;
	n->told_applied = n->delivered_lsn;
	trace(s, (int)n->idx, "applied lsn=%" PRIu64, n->told_applied);
	sl_proto_on_applied(n->p, n->told_applied, s->now);
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
	if (s->append_pending || s->appended >= s->prm->records)
		return;
	if (push(s, s->now + delay, SL_SIM_EV_APPEND, 0, 0) == 0)
		s->append_pending = 1;
}

/* Append one record (kept across -EAGAIN so the retry is the same record).
 * 1 appended, 0 window full, -1 failed. */
static int append_one(struct sl_sim *s)
{
	int64_t lsn;

	if (s->rec_len == 0) {
		s->rec_len = record_size(s);
		sl_wl_fill(&s->wl, s->rec, s->rec_len);
	}
	lsn = sl_proto_append(leader(s)->p, s->rec, s->rec_len, s->now);
	if (lsn == -EAGAIN) {
		s->res->eagain++;
		trace(s, 0, "append EAGAIN (window full)");
		return 0;
	}
	if (lsn != (int64_t)s->appended + 1) {
		sl_sim_violation(&s->chk, 'P', 0, UINT64_MAX, s->appended + 1, s->now,
				 "sl_proto_append returned %" PRId64 ", want LSN %" PRIu64 " (%s)",
				 lsn, s->appended + 1, sl_err_msg());
		return -1;
	}
	sl_sim_rec_put(&s->chk, (uint64_t)lsn, s->rec, s->rec_len);
	s->append_ns[lsn] = s->now;
	trace(s, 0, "append lsn=%" PRIu64 " len=%" PRIu64, (uint64_t)lsn, (uint64_t)s->rec_len);
	s->appended++;
	s->rec_len = 0;
	return 1;
}

static void ev_append(struct sl_sim *s)
{
	uint64_t burst = sl_sim_range(s->rng, 1, s->prm->max_burst);
	uint64_t gap = sl_sim_range(s->rng, 0, 2 * s->prm->append_gap_ns);

	s->append_pending = 0;
	for (uint64_t i = 0; i < burst && s->appended < s->prm->records; i++) {
		int rc = append_one(s);

		if (rc < 0)
			return;
		if (rc == 0) {
			gap = sl_sim_range(s->rng, 20000, 500000); /* retry after progress */
			break;
		}
	}
	if (sl_sim_chance(s->rng, 125000))
		sl_proto_flush(leader(s)->p, s->now);
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

static void ev_crash(struct sl_sim *s, struct sim_node *n)
{
	if (!n->up || s->healed || n->idx == 0)
		return;
	node_crash(s, n);
	push(s, s->now + sl_sim_range(s->rng, 100000, s->prm->down_max_ns), SL_SIM_EV_RESTART,
	     n->idx, 0);
}

static void ev_storage_err(struct sl_sim *s, struct sim_node *n)
{
	if (!n->up || s->healed || n->idx == 0)
		return;
	if (sl_sim_chance(s->rng, 750000))
		n->fail_sync = 1;
	else
		n->fail_write = 1;
	trace(s, (int)n->idx,
	      "storage error armed (1: next sync fails, 0: next write fails): %" PRIu64,
	      (uint64_t)n->fail_sync);
}

/* End of the fault phase: a perfect network, every node up and healthy. */
static void ev_heal_all(struct sl_sim *s)
{
	s->healed = 1;
	s->end_time = s->now + s->prm->heal_budget_ns;
	sl_sim_net_heal(&s->net);
	for (unsigned k = 0; k < s->n_parts; k++)
		s->part[k].active = 0;
	trace(s, -1, "HEAL ALL");
	for (unsigned i = 1; i < n_nodes(s); i++) {
		struct sim_node *n = &s->node[i];

		n->fail_sync = n->fail_write = 0;
		if (n->up && n->storage_failed)
			node_crash(s, n); /* the operator restarts a failed node */
		if (!n->up)
			node_restart(s, n);
	}
}

static void dispatch(struct sl_sim *s, const struct sl_sim_event *e)
{
	struct sim_node *n = &s->node[e->node];

	if (e->type == SL_SIM_EV_FRAME) {
		ev_frame(s, e);
		return;
	}
	/* Disk and engine events belong to one incarnation of the node. */
	if ((e->type == SL_SIM_EV_DURABLE || e->type == SL_SIM_EV_APPLIED) &&
	    (e->gen != n->gen || !n->up))
		return;
	switch (e->type) {
	case SL_SIM_EV_DURABLE:
		ev_durable(s, n);
		break;
	case SL_SIM_EV_APPLIED:
		ev_applied(s, n);
		break;
	case SL_SIM_EV_APPEND:
		ev_append(s);
		break;
	case SL_SIM_EV_CRASH:
		ev_crash(s, n);
		break;
	case SL_SIM_EV_RESTART:
		if (!n->up && e->gen == n->gen)
			node_restart(s, n);
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
	}
}

/* ---- invariants after every step ---- */

/* Does follower f hold position pos (LSN lsn) at ack level l, physically? */
static int follower_has(const struct sim_node *f, enum sl_ack_level l, uint64_t pos, uint64_t lsn)
{
	switch (l) {
	case SL_ACK_RECEIVED:
		return f->recv_hw >= pos;
	case SL_ACK_DURABLE:
		return f->disk.durable >= pos;
	default:
		return f->told_applied >= lsn;
	}
}

static int degraded(const struct sl_sim *s, const struct sl_proto_status *st)
{
	return st->degraded || s->prev_degraded || st->degrade_events != s->prev_degrade_events;
}

/* (a) at one position: the leader (unless local=none) and `required`
 * followers hold it at level l. */
static void check_held(struct sl_sim *s, const struct sl_proto_status *st, uint64_t pos,
		       enum sl_ack_level l, const char *what)
{
	uint64_t lsn = sl_sim_disk_lsn_below(&leader(s)->disk, pos);
	unsigned have = 0, need = degraded(s, st) ? 0 : (unsigned)s->required;

	if (!s->clean.local_none && leader(s)->disk.durable < pos)
		sl_sim_violation(&s->chk, 'a', 0, pos, lsn, s->now,
				 "%s is not durable on the leader (durable %" PRIu64 ")", what,
				 leader(s)->disk.durable);
	for (unsigned i = 1; i < n_nodes(s); i++)
		have += (unsigned)follower_has(&s->node[i], l, pos, lsn);
	if (have < need)
		sl_sim_violation(&s->chk, 'a', -1, pos, lsn, s->now,
				 "%s is %s on %u followers, the policy demands %u", what,
				 sl_ack_level_name(l), have, need);
}

static void check_a(struct sl_sim *s, const struct sl_proto_status *st)
{
	enum sl_ack_level l = s->clean.level;

	if (st->commit_pos > s->a_commit) {
		check_held(s, st, st->commit_pos, l, "the commit position");
		s->a_commit = st->commit_pos;
	}
	if (l == SL_ACK_APPLIED && st->safe_pos > s->a_safe) {
		check_held(s, st, st->safe_pos, SL_ACK_DURABLE, "the safe position");
		s->a_safe = st->safe_pos;
	}
}

static uint64_t acked_at(const struct sim_node *f, enum sl_ack_level l)
{
	return l == SL_ACK_RECEIVED  ? f->ack_recv
	       : l == SL_ACK_DURABLE ? f->ack_durable
				     : f->ack_applied;
}

/* The position the followers' STATUS frames acknowledged at level l,
 * computed here and cross-checked against quorum.c. */
static uint64_t acked_quorum(struct sl_sim *s, enum sl_ack_level l)
{
	const struct sl_sim_disk *ld = &leader(s)->disk;
	uint64_t pos[SL_NODES_MAX], mine, theirs;
	unsigned nf = n_nodes(s) - 1;

	for (unsigned i = 0; i < nf; i++)
		pos[i] = acked_at(&s->node[i + 1], l);
	mine = sl_sim_quorum(s->clean.local_none, ld->end, ld->durable, pos, nf,
			     (unsigned)s->required);
	theirs = sl_quorum_commit(&s->clean, ld->end, ld->durable, pos, nf, (unsigned)s->required);
	if (mine != theirs)
		sl_sim_violation(&s->chk, 'd', 0, mine, UINT64_MAX, s->now,
				 "sl_quorum_commit says %" PRIu64
				 ", the simulator computes %" PRIu64,
				 theirs, mine);
	return mine;
}

static void check_d(struct sl_sim *s, const struct sl_proto_status *st)
{
	const struct sl_sim_disk *ld = &leader(s)->disk;
	uint64_t alone = s->clean.local_none ? ld->end : ld->durable;
	int deg = degraded(s, st);
	uint64_t bound = acked_quorum(s, s->clean.level), safe_bound;

	if (deg && alone > bound)
		bound = alone;
	/* What was committed while degraded stays committed after the acks
	 * come back, even where they have not caught up with it yet. */
	if (deg && st->commit_pos > s->deg_commit)
		s->deg_commit = st->commit_pos;
	if (s->deg_commit > bound)
		bound = s->deg_commit;
	if (st->commit_pos > bound)
		sl_sim_violation(&s->chk, 'd', 0, st->commit_pos, st->commit_lsn, s->now,
				 "commit position beyond what the policy acknowledged (%" PRIu64
				 ", %s)",
				 bound, deg ? "degraded: leader alone" : "quorum of STATUS frames");
	if (s->clean.level != SL_ACK_APPLIED) {
		if (st->safe_pos != st->commit_pos)
			sl_sim_violation(&s->chk, 'd', 0, st->safe_pos, UINT64_MAX, s->now,
					 "safe_pos differs from commit_pos %" PRIu64
					 " below ack_level=applied",
					 st->commit_pos);
		return;
	}
	safe_bound = acked_quorum(s, SL_ACK_DURABLE);
	if (deg && alone > safe_bound)
		safe_bound = alone;
	if (deg && st->safe_pos > s->deg_safe)
		s->deg_safe = st->safe_pos;
	if (s->deg_safe > safe_bound)
		safe_bound = s->deg_safe;
	if (st->commit_pos > safe_bound)
		safe_bound = st->commit_pos;
	if (st->safe_pos > safe_bound)
		sl_sim_violation(&s->chk, 'd', 0, st->safe_pos, UINT64_MAX, s->now,
				 "safe position beyond the durable quorum (%" PRIu64 ")",
				 safe_bound);
}

static void check_step(struct sl_sim *s)
{
	struct sl_proto_status *st = &s->st;

	sl_proto_get_status(leader(s)->p, st);
	if (st->commit_pos != s->commit_pos || st->commit_lsn != s->commit_lsn)
		sl_sim_violation(&s->chk, 'd', 0, st->commit_pos, st->commit_lsn, s->now,
				 "status disagrees with the commit callback (pos %" PRIu64
				 ", lsn %" PRIu64 ")",
				 s->commit_pos, s->commit_lsn);
	check_a(s, st);
	check_d(s, st);
	s->prev_degraded = st->degraded;
	s->prev_degrade_events = st->degrade_events;
}

/* ---- the loop ---- */

static int finished(const struct sl_sim *s)
{
	if (!s->healed || s->appended < s->prm->records || s->commit_lsn < s->appended)
		return 0;
	for (unsigned i = 1; i < n_nodes(s); i++)
		if (!s->node[i].up || s->node[i].delivered_lsn < s->appended)
			return 0;
	return 1;
}

/* Earliest protocol timer of a live node; *who its index. */
static uint64_t next_timer(struct sl_sim *s, int *who)
{
	uint64_t best = UINT64_MAX;

	*who = -1;
	for (unsigned i = 0; i < n_nodes(s); i++) {
		uint64_t t;

		if (!s->node[i].up)
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
	char buf[512];
	int len = 0;

	for (unsigned i = 1; i < n_nodes(s) && len < (int)sizeof(buf) - 64; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len,
				" n%u:%s,log=%" PRIu64 ",durable=%" PRIu64 ",delivered=%" PRIu64,
				i + 1, s->node[i].up ? "up" : "down", s->node[i].disk.end,
				s->node[i].disk.durable, s->node[i].delivered_lsn);
	sl_proto_get_status(leader(s)->p, &s->st);
	sl_sim_violation(&s->chk, 'L', -1, s->st.commit_pos, s->commit_lsn, s->now,
			 "not done %" PRIu64 " ms after the heal: appended %" PRIu64 "/%u, "
			 "committed %" PRIu64 ", leader log %" PRIu64 " durable %" PRIu64
			 " degraded=%d blocked_since=%" PRIu64 ";%s",
			 s->prm->heal_budget_ns / 1000000, s->appended, s->prm->records,
			 s->commit_lsn, leader(s)->disk.end, leader(s)->disk.durable,
			 s->st.degraded, s->st.blocked_since_ns, buf);
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
	}
	s->res->events++;
	if (!s->chk.failed)
		check_step(s);
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
	s->clean = p->policy;
	s->clean.debug_undercount = 0;
}

static int nodes_init(struct sl_sim *s)
{
	uint64_t recs = s->prm->records;
	/* Every batch holds at least one record, stored no larger than raw. */
	uint64_t cap = recs * (SL_SIM_REC_MAX + SL_REC_PREFIX + SL_BATCH_HDR_SIZE) + 4096;

	for (unsigned i = 0; i < s->prm->nodes; i++) {
		struct sim_node *n = &s->node[i];
		int rc;

		memset(n, 0, sizeof(*n));
		n->sim = s;
		n->idx = i;
		n->id = i + 1;
		rc = sl_sim_disk_init(&n->disk, cap, (uint32_t)recs + 16, (uint32_t)recs + 16,
				      &s->cfg.limits);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void nodes_fini(struct sl_sim *s)
{
	for (unsigned i = 0; i < s->prm->nodes; i++) {
		sl_proto_destroy(s->node[i].p);
		sl_sim_disk_destroy(&s->node[i].disk);
	}
}

static uint64_t rand_time(struct sl_sim *s)
{
	return sl_sim_below(s->rng, s->prm->fault_ns);
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
	for (uint32_t k = 0; nf > 0 && k < p->crashes; k++)
		push(s, rand_time(s), SL_SIM_EV_CRASH, (unsigned)sl_sim_range(s->rng, 1, nf), 0);
	for (uint32_t k = 0; nf > 0 && k < p->storage_errors; k++)
		push(s, rand_time(s), SL_SIM_EV_STORAGE_ERR, (unsigned)sl_sim_range(s->rng, 1, nf),
		     0);
	push(s, p->fault_ns, SL_SIM_EV_HEAL_ALL, 0, 0);
}

static int start_nodes(struct sl_sim *s)
{
	struct sl_log_state empty = {.next_lsn = 1};

	for (unsigned i = 0; i < s->prm->nodes; i++)
		if (node_start(s, &s->node[i], &empty) < 0)
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
	    !(s->append_ns = calloc(SL_SIM_RECORDS_MAX + 1, sizeof(*s->append_ns)))) {
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
	free(s->append_ns);
	free(s);
}

static void collect(struct sl_sim *s, struct sl_sim_result *r)
{
	uint64_t dmin = s->appended;

	for (unsigned i = 1; i < n_nodes(s); i++)
		if (s->node[i].delivered_lsn < dmin)
			dmin = s->node[i].delivered_lsn;
	r->appended = s->appended;
	r->committed = s->commit_lsn;
	r->delivered_min = dmin;
	r->frames = s->net.st.sent;
	r->lost = s->net.st.lost;
	r->partitioned = s->net.st.partitioned;
	r->congested = s->net.st.congested;
	r->to_down = s->net.st.to_down;
	r->duplicated = s->net.st.duplicated;
	r->forged = s->net.st.forged;
	r->degrade_events = s->prev_degrade_events;
	if (leader(s)->p) {
		sl_proto_get_status(leader(s)->p, &s->st);
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
	s->now = 0;
	s->appended = 0;
	sl_hist_reset(&s->commit_lat);
	s->append_pending = 0;
	s->rec_len = 0;
	s->commit_pos = s->commit_lsn = 0;
	s->a_commit = s->a_safe = 0;
	s->deg_commit = s->deg_safe = 0;
	s->prev_degraded = 0;
	s->prev_degrade_events = 0;
	s->healed = 0;
	s->dispatched = 0;
	s->end_time = UINT64_MAX;
	sl_sim_heap_clear(&s->heap);
	sl_sim_net_reset(&s->net, prm->nodes, 0);
	sl_sim_check_reset(&s->chk, prm->seed);
	s->chk.live = prm->trace;
	sl_wl_init(&s->wl, prm->wl_kind, sl_rng_next(rng));
}

int sl_sim_run(struct sl_sim *s, const struct sl_sim_params *prm, uint64_t *rng,
	       struct sl_sim_result *r)
{
	int rc;

	if (prm->nodes < 1 || prm->nodes > SL_NODES_MAX || prm->records > SL_SIM_RECORDS_MAX ||
	    prm->fault_ns == 0 || sl_sim_required(&prm->policy, prm->nodes) < 0)
		return -EINVAL;
	reset_run(s, prm, rng, r);
	make_config(s);
	s->required = sl_sim_required(&s->clean, prm->nodes);
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
	}
	collect(s, r);
	if (s->chk.failed)
		r->outcome = SL_SIM_VIOLATION;
	else if (!finished(s))
		r->outcome = SL_SIM_INCOMPLETE;
	nodes_fini(s);
	return 0;
}
