/* The replication protocol of one stream on one node, as a pure state
 * machine. It consumes events (append, frame received, storage progress,
 * engine applied, election state persisted, timer tick with the time) and
 * acts through the callbacks of struct sl_proto_ops (write a batch, send a
 * frame, deliver records, report a commit; with elections, persist a vote,
 * cut the log). No syscalls, no clock reads, no allocation after
 * sl_proto_create. Elections and failover: docs/failover.md. */
#ifndef SHIPLOG_PROTO_H
#define SHIPLOG_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/batch.h"
#include "shiplog/epoch.h"
#include "shiplog/merkle.h"
#include "shiplog/quorum.h"

struct sl_proto;

enum sl_role {
	SL_ROLE_LEADER = 1,
	SL_ROLE_FOLLOWER = 2,
	SL_ROLE_CANDIDATE = 3, /* standing for election (elections only) */
};

/* The election timeout a LAN suits (heartbeats every 10 ms): a follower that
 * hears no leader for a random time in [t, 2t) stands for election. */
#define SL_PROTO_ELECTION_TIMEOUT_DEFAULT 150000000ull
#define SL_PROTO_HEARTBEAT_DEFAULT	  10000000ull

struct sl_proto_config {
	uint8_t cluster_id[16];
	uint64_t stream_id;
	uint32_t node_id;		 /* this node */
	uint32_t n_nodes;		 /* 1..SL_NODES_MAX */
	uint32_t node_ids[SL_NODES_MAX]; /* every node, this one included */
	uint32_t leader_id; /* the leader; with elections the first one of a new cluster,
			     * or 0 for a node (re)built to join a running one */
	uint64_t epoch;	    /* its epoch */
	struct sl_ack_policy policy;
	uint32_t mtu;		   /* frames fit in this MTU (default 1500) */
	uint32_t batch_bytes;	   /* close a batch at this many raw bytes (64 KiB) */
	uint64_t linger_ns;	   /* or this long after its first record (100 us) */
	uint32_t lz4_accel;	   /* LZ4 acceleration of the batches it seals (1) */
	uint64_t window_bytes;	   /* leader's in-memory window of batches (16 MiB) */
	uint64_t rcv_window_bytes; /* follower's receive buffer (8 MiB) */
	uint64_t heartbeat_ns;	   /* leader heartbeat interval (10 ms) */
	uint64_t nak_delay_ns;	   /* wait this long for reordering before a NAK (200 us) */
	uint64_t nak_interval_ns;  /* repeat an unanswered NAK after (1 ms) */
	uint64_t tlp_ns;	   /* tail-loss probe after this long without progress (2 ms) */
	uint32_t send_budget;	   /* max frames one event may send to one peer (256) */
	struct sl_batch_limits limits;
	/* Elections (docs/failover.md). 0: leader_id leads for good. */
	int elect;
	uint64_t election_timeout_ns; /* SL_PROTO_ELECTION_TIMEOUT_DEFAULT */
	uint64_t rng_seed;	      /* randomizes election timeouts (mixed with node_id) */
	/* Anti-entropy (with the tree op): a follower compares its Merkle tree
	 * with the leader's this often, and at once when it (re)joins one. */
	uint64_t entropy_interval_ns; /* SL_PROTO_ENTROPY_INTERVAL_DEFAULT */
	/* Catch-up throttling: a follower behind the window is served from
	 * disk at a rate the leader halves whenever the live path's commit
	 * latency exceeds this budget and raises while it stays within it
	 * (SL_PROTO_CATCHUP_BUDGET_DEFAULT). */
	uint64_t catchup_budget_ns;
};

#define SL_PROTO_CATCHUP_BUDGET_DEFAULT 5000000ull    /* 5 ms */
#define SL_PROTO_CATCHUP_RATE_MIN	(1ull << 20)  /* bytes/s the rate never falls below */
#define SL_PROTO_CATCHUP_RATE_MAX	(1ull << 30)  /* nor rises above */
#define SL_PROTO_CATCHUP_RATE_START	(64ull << 20) /* where it starts */

#define SL_PROTO_ENTROPY_INTERVAL_DEFAULT 10000000000ull /* 10 s */

/* The log's Merkle tree as the tree op shows it (see sl_store_tree): a leaf
 * per batch from base_pos, leaves [0, sealed) in sealed segments. */
struct sl_proto_tree {
	const struct sl_merkle *m;
	const uint64_t *leaf_pos;
	uint64_t base_pos, leaves, sealed;
};

/* Fill defaults for every zero field of `c` (sizes, timers, limits). */
void sl_proto_config_defaults(struct sl_proto_config *c);

/* Where this node's log stands when the protocol starts (from the store). */
struct sl_log_state {
	uint64_t next_lsn;    /* 1 for an empty log */
	uint64_t next_pos;    /* 0 for an empty log */
	uint32_t last_crc;    /* hdr_crc of the last batch, 0 when empty */
	uint64_t durable_pos; /* == next_pos after recovery */
	uint64_t applied_lsn; /* the engine's applied LSN (followers), 0 if none */
	uint64_t applied_pos; /* end position of the batch holding applied_lsn */
	/* Elections: what the superblock holds, and the log's epoch map (rebuilt
	 * from the batch headers by recovery; required when the log is not empty). */
	uint64_t current_epoch; /* highest epoch persisted, 0 none */
	uint64_t voted_epoch;	/* the epoch of the persisted vote */
	uint32_t voted_for;	/* node voted for in voted_epoch, 0 none */
	const struct sl_epoch_map *epochs;
};

/* The world, as the protocol sees it. Every callback returns 0 or -errno;
 * a negative return from write, read or deliver fails the node (the
 * status shows it in `failed`). */
struct sl_proto_ops {
	void *ctx;
	/* Hand a complete, verified batch to local storage. Durability is
	 * reported later through sl_proto_on_durable. */
	int (*write)(void *ctx, const uint8_t *batch, size_t len, uint64_t pos);
	/* Read the whole batch at `pos` from local storage (catch-up of a
	 * follower that fell out of the leader's window). Returns its length;
	 * -EIO for a batch found corrupt, which fails nothing: it is left to
	 * anti-entropy's repair (sl_proto_repair) and read again later. */
	int (*read)(void *ctx, uint64_t pos, uint8_t *buf, size_t cap);
	/* Send one frame to a node: head followed by body. body_len is 0 for
	 * a frame whole in head; a DATA frame is its prefix (head) and its
	 * fragment (body), which points into the batch, not a copy. Both are
	 * valid during the call only. Loss is the network's business. */
	int (*send)(void *ctx, uint32_t to, const uint8_t *head, size_t head_len,
		    const uint8_t *body, size_t body_len);
	/* Deliver a committed batch to the engine (followers): its verified
	 * bytes as in the log, header and stored payload; sl_batch_decode
	 * yields its records (the codec's work, not the protocol's). */
	int (*deliver)(void *ctx, const struct sl_batch_hdr *h, const uint8_t *batch, size_t len);
	/* The commit LSN moved forward (leader). */
	void (*commit)(void *ctx, uint64_t commit_lsn, uint64_t commit_pos);
	/* Elections only (required then). Make (epoch, voted_for) durable, then
	 * call sl_proto_on_persisted; one at a time. */
	int (*persist)(void *ctx, uint64_t epoch, uint32_t voted_for);
	/* Cut the log at `pos`, a batch boundary (LSNs from `lsn` on are gone),
	 * durably before returning; the engine forgets what it holds from `lsn`
	 * on (records a deposed leader accepted: never committed). pos may be
	 * the log end: only the engine has something to forget. */
	int (*truncate)(void *ctx, uint64_t pos, uint64_t lsn);
	/* Required by sl_proto_append_ref only: the protocol is done with a
	 * batch buffer it was lent (it left the window). */
	void (*release)(void *ctx, uint8_t *batch);
	/* Optional: the role or epoch changed (leader_id 0: not known yet). */
	void (*role)(void *ctx, enum sl_role role, uint64_t epoch, uint32_t leader_id);
	/* Optional, anti-entropy (docs/failover.md): the log's Merkle tree
	 * (0, or -errno: none now), and the rewrite in place of a bad batch
	 * with a good copy fetched from a peer (sl_proto_repair), durably. */
	int (*tree)(void *ctx, struct sl_proto_tree *out);
	int (*rewrite)(void *ctx, uint64_t pos, const uint8_t *batch, size_t len);
};

int sl_proto_create(struct sl_proto **out, const struct sl_proto_config *c,
		    const struct sl_log_state *log, const struct sl_proto_ops *ops);
void sl_proto_destroy(struct sl_proto *p);

/* Leader: add one record; returns its LSN, -EAGAIN when the window is full
 * or a new leader is still committing what it inherited (retry after
 * progress), -EPERM on a follower or candidate, -EMSGSIZE when too large. */
int64_t sl_proto_append(struct sl_proto *p, const void *rec, uint32_t len, uint64_t now);
/* Leader: close the open batch now instead of waiting for linger. */
int sl_proto_flush(struct sl_proto *p, uint64_t now);
/* Leader: append a batch whose payload the caller encoded (an LZ4 block or
 * raw records, as sl_batch_encode makes them): `h` gives flags, raw_len,
 * record_count (>= 1), stored_len and payload_crc; the protocol sets the
 * rest of the header (position, LSNs, chain, epoch, time). Any open batch
 * is sealed first. The payload is copied into the window and checked
 * against payload_crc on the way. Returns the batch's last LSN, -EAGAIN when
 * the window is full, -EINVAL for a header or CRC that does not fit. */
int64_t sl_proto_append_encoded(struct sl_proto *p, const struct sl_batch_hdr *h,
				const uint8_t *payload, uint64_t now);

/* Leader: sl_proto_append_encoded without the copy. `batch` is the caller's
 * buffer: SL_BATCH_HDR_SIZE bytes the protocol fills with the header, then
 * the stored payload. The window keeps the buffer itself, reads it to send
 * and resend fragments and to write it (its bytes must not change), and
 * hands it back through ops.release exactly once: when the window frees it
 * (committed and durable), when this node stops leading (its bytes are
 * copied into the window's own memory then), or at sl_proto_destroy. At
 * most the window's bytes of batches are held. Each fragment's CRC is
 * computed in place and checked against payload_crc. Returns as
 * sl_proto_append_encoded (-EINVAL also without ops.release); after an
 * error the buffer is the caller's (a failed write op fails the node, whose
 * window then keeps a copy). */
int64_t sl_proto_append_ref(struct sl_proto *p, const struct sl_batch_hdr *h, uint8_t *batch,
			    uint64_t now);

/* A frame arrived. Frames that fail decoding, name another cluster or
 * stream, another receiver, or a lower epoch are counted and ignored. With
 * elections a higher epoch fences this node: a leader steps down. */
void sl_proto_on_frame(struct sl_proto *p, const uint8_t *frame, size_t len, uint64_t now);
/* The same for a frame that arrived as two parts, head then tail (a DATA
 * frame as its prefix and its fragment; see sl_frame_decode_parts). */
void sl_proto_on_frame_parts(struct sl_proto *p, const uint8_t *head, size_t head_len,
			     const uint8_t *tail, size_t tail_len, uint64_t now);

/* Storage made everything below `durable_pos` durable. */
void sl_proto_on_durable(struct sl_proto *p, uint64_t durable_pos, uint64_t now);
/* Storage failed (write or fsync): the node stops acknowledging for good. */
void sl_proto_on_storage_error(struct sl_proto *p, int err);

/* Elections: hand the leadership to `target` (shipctl promote): appends get
 * -EAGAIN while the leader waits for `target` to hold its whole log; it then
 * tells it to stand at once (ELECT_NOW, and its vote requests carry
 * SL_VOTE_F_TRANSFER, so voters that still hear this leader grant them) and
 * steps down. Abandoned after an election timeout without that. -EPERM when
 * not the leader (or without elections), -EINVAL for an unknown target or
 * this node. */
int sl_proto_transfer(struct sl_proto *p, uint32_t target, uint64_t now);
/* Elections: the leader steps down (shipctl stepdown) and stands no sooner
 * than the others would. -EPERM when not the leader. */
int sl_proto_stepdown(struct sl_proto *p, uint64_t now);

/* Elections: make this node lead without an election (shipctl promote
 * --force, when no quorum of voters can be reached): it takes the next epoch
 * it owns and leads it on its own vote once that is persisted. Records other
 * nodes hold past this node's log end (committed or not) are cut when they
 * follow it: the operator accepts losing LSNs from its next_lsn on.
 * -EALREADY when leading, -EPERM without elections or once failed. */
int sl_proto_force_lead(struct sl_proto *p, uint64_t now);

/* Anti-entropy: the batch at `pos`, `len` bytes, whose leaf is `leaf`
 * (sl_merkle_leaf as appended), is bad in this node's log (the store's
 * scrub found it): fetch it from a peer that holds it committed (the
 * leader; a leader asks a follower that holds it durably), check it matches
 * `leaf`, and rewrite it (the rewrite op). Queued, at most
 * SL_PROTO_REPAIRS_MAX at once: -ENOSPC beyond, -EINVAL without the ops.
 * A follower's batch at or past its commit position is refused (-EAGAIN):
 * that is divergence repair's. A leader's log is the reference: it repairs
 * any durable batch of it, committed or not, from a follower holding it. */
#define SL_PROTO_REPAIRS_MAX 16
int sl_proto_repair(struct sl_proto *p, uint64_t pos, uint32_t len, uint64_t leaf, uint64_t now);

/* Anti-entropy: recovery kept the batch at `pos` as a hole (its payload is
 * corrupt, valid batches follow it; sl_store_holes). Until it is repaired
 * (sl_proto_repair, asked for once the commit position passes it) this node
 * does not stand for election, cannot be forced to lead, and delivers no
 * record from it on. A cut of the log below it forgets it. At most
 * SL_PROTO_REPAIRS_MAX: -ENOSPC beyond. Without the tree and rewrite ops
 * nothing repairs it: the node never leads. */
int sl_proto_hole(struct sl_proto *p, uint64_t pos, uint32_t len, uint64_t leaf);

/* Elections: the persist op finished writing (epoch, voted_for). */
void sl_proto_on_persisted(struct sl_proto *p, uint64_t epoch, uint32_t voted_for, uint64_t now);

/* The engine applied every record up to `lsn` (drives ack_level=applied). */
void sl_proto_on_applied(struct sl_proto *p, uint64_t lsn, uint64_t now);

/* Timers: linger, heartbeats, NAKs, tail-loss probes, ack timeout, election
 * timeouts. Call at
 * least every `sl_proto_next_timer(p) - now` ns. */
void sl_proto_tick(struct sl_proto *p, uint64_t now);
uint64_t sl_proto_next_timer(const struct sl_proto *p);

/* Lag and state, as pg_stat_replication shows it. */
struct sl_peer_status {
	uint32_t node_id;
	uint64_t sent_pos, received_pos, durable_pos, applied_pos;
	uint64_t applied_lsn;
	uint64_t write_lag_ns, flush_lag_ns, apply_lag_ns; /* leader clock */
	uint64_t bytes_behind;				   /* leader_end - received_pos */
	uint64_t records_behind; /* leader's last LSN - follower's received LSN */
	uint64_t last_status_ns; /* when its last STATUS arrived, 0 never */
	uint64_t naks, retransmits, catchup_batches;
	int catching_up; /* being served from the leader's disk */
};

/* Anti-entropy: comparisons of this node's tree with a peer's, repairs. */
enum sl_entropy_result {
	SL_ENTROPY_NONE = 0,	 /* no comparison finished yet */
	SL_ENTROPY_EQUAL,	 /* the compared prefixes agree */
	SL_ENTROPY_DIFFER,	 /* they differ from diff_pos on */
	SL_ENTROPY_INCOMPARABLE, /* the trees start at different positions */
	SL_ENTROPY_TIMEOUT,	 /* the peer did not answer */
};
struct sl_entropy_status {
	uint64_t comparisons, differences, incomparable, timeouts;
	uint64_t repairs_asked, repairs, repairs_failed, repairs_served;
	uint64_t last_ns;     /* when the last comparison finished, 0 never */
	uint32_t last_peer;   /* with whom */
	uint64_t last_leaves; /* over how many leaves (batches) */
	enum sl_entropy_result last_result;
	uint64_t diff_leaf, diff_pos; /* DIFFER: the first batch that differs */
	uint32_t repairs_pending;
	uint32_t holes; /* recovery's holes not repaired yet (sl_proto_hole) */
	/* Leader: uncommitted tails given up, their first batch unreadable and
	 * held by no follower (the leader stepped down and cut its log). */
	uint64_t tails_given_up;
};

struct sl_proto_status {
	enum sl_role role;
	uint32_t node_id, leader_id; /* leader_id 0: not known (elections) */
	uint64_t epoch;
	uint64_t last_epoch; /* epoch of the last batch in this node's log */
	uint64_t next_lsn;   /* next LSN this node expects to append/receive */
	/* The highest LSN this node knows a leader of the latest epoch it
	 * heard appended: its own log's last, or a batch header a leader sent
	 * it (complete or not). promote --force reports it as what may be lost. */
	uint64_t heard_lsn;
	uint64_t log_end; /* end position of complete batches held */
	uint64_t durable_pos;
	uint64_t commit_pos, commit_lsn;
	uint64_t safe_pos;	/* quorum-durable: what followers may deliver */
	uint64_t delivered_lsn; /* followers: last LSN handed to the engine */
	int degraded;		/* committing without the quorum (on_timeout=degrade) */
	uint64_t degrade_events;
	/* Leader: the live path's last commit latency (seal to commit), the
	 * catch-up rate from disk it allows, and how often catch-up waited
	 * for it (throttled) or the rate was halved (cuts). */
	uint64_t commit_latency_ns, catchup_rate, catchup_throttled, catchup_cuts;
	uint64_t blocked_since_ns; /* commit waiting past ack_timeout, 0 if not */
	int failed;		   /* negative errno once storage failed */
	uint64_t frames_in, frames_out, frames_bad, frames_foreign, frames_stale;
	uint64_t dup_fragments, naks_sent, naks_received, retransmits, tlps;
	/* Elections: stood, won, stepped down as leader; divergence repairs. */
	uint64_t elections, elections_won, step_downs, votes_granted;
	uint64_t truncations, truncated_bytes;
	int synced; /* follower: its log is known to agree with the leader's */
	struct sl_entropy_status entropy;
	uint32_t n_peers;
	struct sl_peer_status peers[SL_NODES_MAX];
};
void sl_proto_get_status(const struct sl_proto *p, struct sl_proto_status *out);
/* "none", "equal", "differ", "incomparable", "timeout". */
const char *sl_entropy_result_name(enum sl_entropy_result r);
/* 1 while this node leads (cheaper than sl_proto_get_status, for every turn). */
int sl_proto_is_leader(const struct sl_proto *p);
/* Leader: 1 while a batch is open (records appended, not sealed) and could
 * be sealed now (the window has room). */
int sl_proto_batch_open(const struct sl_proto *p);
/* Leader: every batch it sealed is committed (nothing in flight). */
int sl_proto_all_committed(const struct sl_proto *p);
/* Leader: raw bytes of the open batch (its records with their length
 * prefixes; 0: none open), and the LSN the next appended record gets. */
size_t sl_proto_open_bytes(const struct sl_proto *p);
uint64_t sl_proto_next_lsn(const struct sl_proto *p);

#endif
