/* Internal state of the protocol state machine, shared by proto.c (common
 * parts, frame dispatch), proto_leader.c, proto_follower.c, and for
 * failover elect.c (elections, fencing), diverge.c (divergence repair) and
 * proto_role.c (role changes and truncation: their narrow way into the
 * replication state). */
#ifndef SHIPLOG_PROTO_INT_H
#define SHIPLOG_PROTO_INT_H

#include <stdint.h>

#include "shiplog/frame.h"
#include "shiplog/proto.h"

#define SL_PROTO_SLOTS		 256 /* follower: batches being reassembled at once */
#define SL_PROTO_NAK_MAX	 4   /* NAK frames per round */
#define SL_PROTO_NAK_BACKOFF_MAX 32  /* NAK interval grows up to 32x without progress */
#define SL_PROTO_REXMIT_MEMO	 8   /* recent retransmitted ranges a leader remembers per peer */
#define SL_PROTO_DESC_MIN	 64

/* A byte ring addressed by stream position. A batch at `pos` always lives
 * contiguously at buf + pos % cap: the buffer has `slack` extra bytes past
 * cap, so a batch that crosses the end continues into them. */
struct sl_ring {
	uint8_t *buf;
	uint64_t cap;
	uint64_t slack;
};

/* A batch held in memory: where it is and what it holds. */
struct sl_bdesc {
	uint8_t *lent; /* leader: the caller's buffer holding it (sl_proto_append_ref),
			* NULL: in the ring */
	uint64_t pos;
	uint64_t base_lsn;
	uint64_t ts;   /* leader_ts_ns */
	uint64_t fidx; /* leader: its fragments' CRCs in the fcrc ring start here */
	uint32_t len;
	uint32_t count;
};

/* Leader: the CRC32C of every fragment of the batches in the window, so each
 * fragment is checksummed once for every follower and retransmission. A
 * batch's run starts at fcrc + fidx % cap and is contiguous (slack past cap,
 * like struct sl_ring). */
struct sl_fcrc_ring {
	uint32_t *c;
	uint64_t cap;
	uint64_t next; /* fidx of the next batch */
};

/* A batch's bytes and its fragments' CRCs, wherever they are held. */
struct sl_bref {
	const uint8_t *b;
	const uint32_t *fcrc;
	uint32_t len;
	int disk; /* read from storage (catch-up), not the window */
};

/* FIFO of batch descriptors in position order. */
struct sl_bq {
	struct sl_bdesc *d;
	uint32_t cap, head, n;
};

/* A range a leader resent recently, to ignore NAKs that crossed it. */
struct sl_rexmit {
	uint64_t from, to, at;
};

/* Leader's view of one follower. */
struct sl_peer {
	uint32_t id;
	uint64_t seq;	    /* frames sent to it */
	uint64_t sent_end;  /* live sending has reached here */
	uint32_t frag_next; /* resume offset inside the batch at sent_end */
	uint64_t received, durable, applied, applied_lsn, window_end;
	uint64_t write_lag, flush_lag, apply_lag;
	uint64_t last_status_ns, last_progress_ns, last_send_ns, last_tlp_ns;
	uint64_t safe_sent; /* safe_pos last told to it */
	uint64_t naks, retransmits, catchup_batches;
	struct sl_rexmit memo[SL_PROTO_REXMIT_MEMO];
	uint32_t memo_next;
	uint64_t scratch_pos; /* batch cached in scratch (catch-up), UINT64_MAX none */
	uint32_t scratch_len;
	uint8_t *scratch;
	uint32_t *scratch_fcrc; /* its fragments' CRCs */
};

/* Follower: a batch being reassembled from fragments. Every fragment it
 * marks received was checked by its frame's CRC, which is kept: the batch's
 * payload CRC is then combined from them instead of read again. */
struct sl_slot {
	uint64_t pos;
	uint32_t len;
	uint32_t got;	/* bytes received */
	uint64_t *bits; /* one bit per fragment */
	uint32_t *fcrc; /* CRC32C of each received fragment */
	int used;
};

/* Follower: a delivered batch waiting for the engine's applied ack. */
struct sl_applied_ent {
	uint64_t last_lsn, end, ts;
};

/* Elections, fencing and divergence repair (elect.c, diverge.c). */
struct sl_elect {
	int on;
	uint64_t rng;
	uint32_t votes_needed;
	uint32_t lease_need; /* leader: followers that must answer within a timeout */
	uint64_t boot_epoch; /* the configured epoch, led by boot_leader */
	uint32_t boot_leader;
	uint32_t rank;		 /* this node's place among the sorted node ids */
	int arm;		 /* timers start at the first tick (the time is unknown before) */
	uint64_t timeout;	 /* drawn in [t, 2t) for this term */
	uint64_t deadline;	 /* follower or candidate: stand at, UINT64_MAX never */
	uint64_t last_leader_ns; /* last frame from the leader: stickiness */
	uint32_t votes;		 /* candidate: granted, one bit per node index */
	uint64_t vreq_at;	 /* candidate or pre-voter: (re)send VOTE_REQs at */
	int prevoting;		 /* follower: asking for pre-votes */
	uint32_t pre_votes;	 /* pre-votes granted, one bit per node index */
	uint64_t pre_epoch;	 /* highest epoch heard in answers: stand above it */
	uint64_t fenced_at[SL_NODES_MAX]; /* last reply to node i's stale frames */
	uint64_t heard[SL_NODES_MAX];	  /* leader: last frame of this epoch from node i */
	uint64_t lease_at;		  /* leader: next check that followers still answer */
	uint32_t fresh;		 /* leader: peers (bit per index) not heard in this epoch yet */
	uint32_t transfer_to;	 /* leader: handing over to this node, 0 none */
	uint64_t transfer_until; /* and giving up at */
	int transferred;	 /* candidate: stands by the leader's leave (TRANSFER) */
	int forced;		 /* candidate: leads on its own vote (an operator's order) */
	/* The promise and the vote, in memory and as persisted. */
	uint64_t voted_epoch;
	uint32_t voted_for;
	uint64_t dur_epoch, want_epoch, fly_epoch;
	uint32_t dur_vote, want_vote, fly_vote;
	int flying;
	uint32_t grant_to; /* a granted vote to send once persisted (node id) */
	/* Divergence repair (follower). */
	int synced;
	uint64_t asked;	 /* epoch of the last EPOCH_REQ */
	uint64_t ask_at; /* resend it at */
	/* Leader: commits and deliveries wait for the first batch of its epoch. */
	uint64_t floor;
	int barrier_due;
	uint32_t reserve; /* follower ring bytes kept free for a barrier */
	uint64_t rcv_cap; /* the part of the ring a follower offers (ring.cap, or
			   * the receive window when the ring also fits a leader's) */
	struct sl_epoch_map map;
	uint64_t elections, elections_won, step_downs, votes_granted;
	uint64_t truncations, truncated_bytes;
};

/* Anti-entropy (entropy.c): the comparison in flight, the repairs. */
struct sl_repair {
	uint64_t pos, leaf;
	uint32_t len;
};
struct sl_entropy {
	int on;
	uint64_t seq;	  /* frames it sent */
	uint64_t next_at; /* follower: compare with the leader at */
	int phase;	  /* idle, root, peaks, descending */
	uint32_t peer, level, tries;
	uint64_t leaves, base, index, start, asked_at;
	/* Repairs: queued, and the one asked for (rlen 0: none). */
	struct sl_repair want[SL_PROTO_REPAIRS_MAX];
	uint32_t nwant;
	/* Holes recovery kept (sl_proto_hole): repaired once committed. */
	struct sl_repair holes[SL_PROTO_REPAIRS_MAX];
	uint32_t nholes;
	uint64_t holes_at; /* asked for them again at */
	uint64_t rpos, rleaf, r_at;
	uint32_t rlen, rpeer, rtries, rgot;
	uint8_t *rbuf;	 /* the batch being fetched */
	uint64_t *rbits; /* its fragments received */
	uint8_t *sbuf;	 /* a batch being served */
	struct sl_entropy_status st;
};

struct sl_proto {
	struct sl_proto_config cfg;
	struct sl_proto_ops ops;
	enum sl_role role;
	int failed;
	uint32_t frag_unit;
	uint32_t frag_max; /* fragments of the largest batch */
	uint32_t op_unit;  /* sl_crc32c_op(frag_unit) */
	uint32_t op_first; /* sl_crc32c_op(frag_unit - SL_BATCH_HDR_SIZE) */
	uint32_t raw_cap;  /* largest raw payload of one batch */
	uint32_t enc_cap;  /* largest encoded batch */

	/* Log, both roles. */
	struct sl_ring ring;
	struct sl_bq bq;  /* batches held in ring, oldest first */
	uint64_t log_end; /* end of complete batches (leader: sealed) */
	uint64_t next_lsn;
	uint32_t last_crc;
	uint64_t last_epoch;
	uint64_t durable_pos;
	uint64_t commit_pos, commit_lsn, safe_pos;

	/* Leader. */
	struct sl_batch_builder builder;
	uint8_t *raw;
	uint64_t open_ts; /* first record of the open batch, 0: none */
	int seal_blocked; /* the open batch waits for room in the window */
	int required;	  /* follower acks the policy needs */
	int degraded;
	uint64_t degrade_mark, degrade_events, blocked_since;
	/* Catch-up from disk: a token bucket (bytes) filled at `cu_rate`, the
	 * rate cut in half when a commit takes longer than the budget (at most
	 * once per budget) and raised by an eighth per commit within it. */
	uint64_t cu_rate, cu_tokens, cu_fill_ns, cu_cut_ns, cu_wait_until;
	uint64_t commit_lat, cu_throttled, cu_cuts;
	uint64_t live_ns; /* the last batch sealed */
	uint32_t n_peers;
	struct sl_peer peers[SL_NODES_MAX];
	struct sl_fcrc_ring fcrc;
	uint8_t frame[SL_FRAME_MAX];

	/* Follower. */
	uint64_t leader_end, highest_seen;
	/* The highest LSN a leader was seen appending (batch headers of DATA
	 * fragments, complete or not), and that leader's epoch. */
	uint64_t heard_lsn, heard_epoch;
	uint64_t delivered_pos, delivered_lsn;
	uint64_t rot_wait; /* delivery waits for the repair of the batch at rot_wait - 1 (0: no) */
	uint64_t applied_lsn, applied_pos, engine_start_lsn;
	uint64_t echo_recv_ts, echo_durable_ts, echo_applied_ts;
	uint64_t gap_since, last_nak;
	uint64_t last_frag_ns; /* a new fragment was stored, 0: none yet */
	uint64_t nak_log_end;  /* log_end at the last NAK round */
	uint32_t nak_backoff;  /* NAK interval multiplier, 1..SL_PROTO_NAK_BACKOFF_MAX */
	uint64_t seq_to_leader, last_status_sent;
	int status_dirty;
	/* Progress the leader does not wait for (a receipt or a delivery when
	 * the policy's level is above it), not yet reported: it goes in the
	 * next STATUS (one STATUS, one wake-up of the leader), at the latest
	 * report_delay (follower.c) after report_at. */
	int report_pending;
	uint64_t report_at;
	int delivering; /* guards deliver() against re-entry from callbacks */
	struct sl_slot slots[SL_PROTO_SLOTS];
	struct sl_slot *used[SL_PROTO_SLOTS]; /* the slots in use, n_used of them */
	uint32_t n_used;
	struct sl_applied_ent *applyq;
	uint32_t applyq_cap, applyq_head, applyq_n;
	uint8_t *scratch; /* storage reads */

	/* Counters. */
	uint64_t frames_in, frames_out, frames_bad, frames_foreign, frames_stale;
	uint64_t dup_fragments, naks_sent, naks_received, retransmits, tlps;

	struct sl_elect el;
	struct sl_entropy ent;
};

/* proto.c */
static inline uint8_t *sl_ring_at(const struct sl_ring *r, uint64_t pos)
{
	return r->buf + pos % r->cap;
}
/* Where the bytes of a batch held in memory are. */
static inline uint8_t *sl_bq_bytes(const struct sl_proto *p, const struct sl_bdesc *d)
{
	return d->lent ? d->lent : sl_ring_at(&p->ring, d->pos);
}
struct sl_bdesc *sl_bq_find(const struct sl_bq *q, uint64_t pos);
struct sl_bdesc *sl_bq_at(const struct sl_bq *q, uint32_t i);
int sl_bq_push(struct sl_bq *q, const struct sl_bdesc *d);
void sl_bq_pop(struct sl_bq *q);
void sl_bq_give_back(struct sl_proto *p, struct sl_bdesc *d);
uint64_t sl_proto_ring_base(const struct sl_proto *p);
int sl_proto_send(struct sl_proto *p, uint32_t to, uint64_t *seq, struct sl_frame *f);
int sl_proto_send_data(struct sl_proto *p, uint32_t to, uint64_t *seq, struct sl_frame *f,
		       uint32_t frag_crc);
void sl_proto_fail(struct sl_proto *p, int err);
static inline uint32_t sl_proto_nfrag(const struct sl_proto *p, uint32_t len)
{
	return (len + p->frag_unit - 1) / p->frag_unit;
}
uint32_t sl_proto_payload_crc(const struct sl_proto *p, const uint8_t *b, uint32_t len,
			      const uint32_t *fcrc);

/* proto_leader.c */
int sl_leader_init(struct sl_proto *p);
void sl_leader_index_window(struct sl_proto *p);
void sl_leader_keep_window(struct sl_proto *p);
void sl_leader_on_status(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_leader_on_nak(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_leader_on_durable(struct sl_proto *p, uint64_t now);
void sl_leader_tick(struct sl_proto *p, uint64_t now);
uint64_t sl_leader_next_timer(const struct sl_proto *p);

int sl_leader_seal_barrier(struct sl_proto *p, uint64_t now);

/* proto_follower.c */
int sl_follower_init(struct sl_proto *p, const struct sl_log_state *log);
uint8_t *sl_follower_rx_dest(void *ctx, const struct sl_frame *f);
void sl_follower_on_data(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_follower_on_heartbeat(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_follower_on_durable(struct sl_proto *p, uint64_t now);
void sl_follower_on_applied(struct sl_proto *p, uint64_t lsn, uint64_t now);
void sl_follower_tick(struct sl_proto *p, uint64_t now);
uint64_t sl_follower_next_timer(const struct sl_proto *p);
void sl_follower_deliver(struct sl_proto *p);

/* proto_role.c: the narrow interface elections use to change roles and cut
 * the log, and the set-up of a node that may take either role. */
int sl_role_init(struct sl_proto *p, const struct sl_log_state *log);
void sl_role_leader(struct sl_proto *p, uint64_t now);
void sl_role_follower(struct sl_proto *p, uint32_t leader_id, uint64_t now);
void sl_role_candidate(struct sl_proto *p, uint64_t epoch);
int sl_role_truncate(struct sl_proto *p, uint64_t pos, uint64_t lsn, uint32_t crc);
uint64_t sl_role_lsn_at(const struct sl_proto *p, uint64_t pos);

/* elect.c */
int sl_elect_init(struct sl_proto *p, const struct sl_log_state *log);
int sl_elect_boot(struct sl_proto *p);
int sl_elect_admit(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_elect_on_vote_req(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_elect_on_vote(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_elect_on_persisted(struct sl_proto *p, uint64_t epoch, uint32_t vote, uint64_t now);
int sl_elect_is_pre(const struct sl_frame *f);
void sl_elect_on_elect_now(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_elect_fence(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_elect_tick(struct sl_proto *p, uint64_t now);
uint64_t sl_elect_next_timer(const struct sl_proto *p);
uint32_t sl_elect_owner(const struct sl_proto *p, uint64_t epoch);

/* entropy.c */
int sl_entropy_init(struct sl_proto *p);
void sl_entropy_free(struct sl_proto *p);
int sl_entropy_frame(uint8_t type);
void sl_entropy_on_frame(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_entropy_rejoin(struct sl_proto *p);
void sl_entropy_tick(struct sl_proto *p, uint64_t now);
uint64_t sl_entropy_next_timer(const struct sl_proto *p);
void sl_entropy_status(const struct sl_proto *p, struct sl_entropy_status *s);
uint64_t sl_entropy_first_hole(const struct sl_proto *p);
void sl_entropy_cut(struct sl_proto *p, uint64_t pos);
void sl_entropy_unreadable(struct sl_proto *p, uint64_t pos);

/* diverge.c */
void sl_diverge_start(struct sl_proto *p, uint64_t now);
void sl_diverge_on_req(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_diverge_on_end(struct sl_proto *p, const struct sl_frame *f, uint64_t now);
void sl_diverge_tick(struct sl_proto *p, uint64_t now);

#endif
