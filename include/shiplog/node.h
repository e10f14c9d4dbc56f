/* A shiplog node: one stream's protocol state machine wired to its log store
 * (io_uring), its transport (kernel UDP or DPDK) and the clock, driven by a
 * run-to-completion loop with bounded work per turn. Used by shipd (one node
 * per process) and by benchmarks and tests (several nodes in one process,
 * one thread each).
 *
 * Threads: a node is single-threaded. Every function below except
 * sl_node_now must be called from the one thread that polls the node (or
 * after that thread has stopped, e.g. joined). The engine callbacks run on
 * that thread, from inside sl_node_poll, sl_node_append or sl_node_flush. */
#ifndef SHIPLOG_NODE_H
#define SHIPLOG_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/proto.h"
#include "shiplog/store.h"
#include "shiplog/transport.h"

enum sl_idle {
	SL_IDLE_BACKOFF = 0, /* spin briefly, then sleep until there is work (kernel UDP:
			      * ppoll on its ring and the store's); DPDK: spin, yield,
			      * then sleep up to 50 us (default) */
	SL_IDLE_SPIN,	     /* never sleep: bare metal, a core per node */
	SL_IDLE_YIELD,	     /* sched_yield between idle turns */
	SL_IDLE_NAP,	     /* as backoff, but never sleep until work arrives: spin,
			      * yield, then sleep 1 to 50 us on the timer, as over a
			      * transport that cannot be waited for */
};

enum sl_transport_kind {
	SL_TRANSPORT_UDP = 0, /* kernel UDP over io_uring (default) */
	SL_TRANSPORT_DPDK,
	SL_TRANSPORT_TCP, /* kernel TCP, plain sockets: a baseline (net/tcp.c) */
};

#define SL_NODE_SCRUB_RATE_DEFAULT (64ull << 20)
#define SL_NODE_STAGE_SLOTS	   4 /* batches in the compressor stage at once */

struct sl_node_config {
	/* cluster, stream, nodes, leader, epoch, policy, sizes. proto.mtu 0:
	 * net.mtu (and the reverse); with a key the protocol is given 16 bytes
	 * less, the room of the MAC trailer. */
	struct sl_proto_config proto;
	/* Log directory and store tuning. cluster_id, stream_id, node_id and
	 * limits are taken from `proto`; `create` is ignored: the node creates
	 * the log when the directory holds no regular file (a new node) and
	 * recovers it otherwise. group_bytes 0: just large enough for the
	 * largest batch the protocol can build. */
	struct sl_store_opts store;
	enum sl_transport_kind transport;
	struct sl_transport_config net; /* self_id 0: proto.node_id */
	enum sl_idle idle;
	/* pin_cpu 1: the thread that runs the loop pins itself to CPU `cpu` at
	 * its first turn (sl_node_poll), as an operator places a sidecar beside
	 * its engine: a client pinned to the same CPU (sl_client_opts'
	 * pin_to_loop) is then woken, and wakes the loop, on one CPU. The CPU
	 * must be one this process may run on (sl_node_open: -EINVAL). */
	int pin_cpu;
	uint32_t cpu;
	/* Leader: seal the open batch as soon as its own log has no write in
	 * flight, not only at batch_bytes or after the linger: group commit,
	 * where batches grow while the disk is busy and a record that finds
	 * it idle does not wait for the linger timer. */
	int seal_when_log_idle;
	/* Leader: seal it at once, too, when nothing it sealed is in flight: its
	 * log has no write in flight and every batch it sealed is committed. A
	 * record that finds the pipeline idle goes at once; records that come
	 * while a batch is in flight linger (up to proto.linger_ns) and go
	 * together when it commits. */
	int seal_when_idle;
	/* Leader: compress full batches on a thread of their own (a compressor
	 * stage, SL_NODE_STAGE_SLOTS batches at a time, in order) while the
	 * loop goes on. Used only while batches fill (a backlog): a record that
	 * would fill the open batch starts it, and it ends once the stage is
	 * empty; a batch sealed before it is full (a flush, the linger) in the
	 * meantime goes through the stage too. With elections, a node that stops
	 * leading drops the stage's records as the protocol drops its open
	 * batch (the engine's truncate). */
	int compress_thread;
	/* Wake this long before a timed event (the deadline given to
	 * sl_node_idle_until, such as a record due; the protocol's timers, such
	 * as a linger's end) and spin to it rather than sleep until it: a
	 * timer's wake-up of a halted vCPU comes 10-16 us late. 0: off. */
	uint32_t timer_early_ns;
	const char *key_file; /* pre-shared key for frame MACs (shiplog/auth.h), NULL: none */
	/* Followers: the last LSN the engine has applied (durably, on its
	 * side) before this start, 0 if none. Delivery resumes after it;
	 * records of a batch it ends inside of are not delivered again. */
	uint64_t applied_lsn;
	uint32_t rx_budget; /* frames received per turn (default 256) */
	/* Anti-entropy: the store's scrub reads sealed segments back at this
	 * many bytes per second (SL_NODE_SCRUB_RATE_DEFAULT), a pass every
	 * proto.entropy_interval_ns; a bad batch is repaired from a peer. */
	uint64_t scrub_rate;
	/* Optional: make the transport instead of the built-in kinds, from the
	 * settled `net` config (e.g. a mesh of point-to-point DPDK links,
	 * shiplog/mesh.h). The node destroys what it returns at close. The
	 * frames it is given are valid during send() only: it must copy them
	 * (DPDK: create with sl_node_dpdk_opts). */
	int (*make_transport)(void *arg, const struct sl_transport_config *c,
			      struct sl_transport **out);
	void *make_transport_arg;
};

/* What the node tells the storage engine above it (all optional). */
struct sl_node_engine {
	void *ctx;
	/* Followers: committed records, in order, exactly once. `raw` holds
	 * h->record_count length-prefixed records (sl_rec_iter). The engine may
	 * call sl_node_applied from inside. */
	void (*deliver)(void *ctx, const struct sl_batch_hdr *h, const uint8_t *raw,
			size_t raw_len);
	/* Followers, optional: whether deliver will read the records of the
	 * batch `h`. 0: it is called with raw NULL and raw_len 0 and the node
	 * does not decompress the batch (an engine that only counts, or a
	 * daemon with no consumer attached). NULL: always. */
	int (*wants_records)(void *ctx, const struct sl_batch_hdr *h);
	/* Leader: every LSN <= commit_lsn is committed under the policy. */
	void (*commit)(void *ctx, uint64_t commit_lsn);
	/* Leader, optional: the engine's own appends (sl_node_append, flush),
	 * made from the node's thread where the turn takes a poller's new work
	 * (struct sl_node_poller's take): at its top and right before its seal
	 * and flush decision. Returns events handled. */
	int (*take)(void *ctx);
	/* Elections: the role, epoch or leader changed (leader_id 0: none
	 * known yet). Appends succeed only while the role is leader. */
	void (*role)(void *ctx, enum sl_role role, uint64_t epoch, uint32_t leader_id);
	/* Elections: forget every record from `lsn` on. A deposed leader's
	 * appends that never committed, or a follower's uncommitted suffix cut
	 * to follow a new leader; never a committed record. */
	void (*truncate)(void *ctx, uint64_t lsn);
};

/* The node's own counters (the protocol's are in sl_proto_status). */
struct sl_node_stats {
	uint64_t turns;		   /* sl_node_poll calls */
	uint64_t idle_turns;	   /* ... that found nothing to do */
	uint64_t sleeps;	   /* backoff sleeps taken */
	uint64_t frames_rx;	   /* frames handed to the protocol */
	uint64_t frames_tx;	   /* frames handed to the transport */
	uint64_t tx_refused;	   /* sends the transport refused (-ENOBUFS, ...) */
	uint64_t rx_errors;	   /* transport polls that failed (the first is logged) */
	uint64_t tx_errors;	   /* transport flushes that failed (the first is logged) */
	uint64_t mac_rejected;	   /* received frames dropped: MAC missing or wrong */
	uint64_t store_full_waits; /* appends that found every group buffer busy */
	uint64_t durable_events;   /* durable position reported to the protocol */
	uint64_t timer_ticks;
	uint64_t blocks;	 /* backoff sleeps in ppoll until work arrived or a timer */
	uint64_t scrub_passes;	 /* passes of the scrub over the sealed segments */
	uint64_t scrub_steps;	 /* reads of up to 256 KiB it made */
	uint64_t scrub_bad;	 /* bad batches it found (each one handed to repair) */
	uint64_t persists;	 /* election state (epoch, vote) written to the superblock */
	uint64_t log_idle_seals; /* batches sealed because the log was idle (seal_when_log_idle) */
	uint64_t idle_seals;	 /* ... because nothing was in flight (seal_when_idle) */
	uint64_t stage_batches;	 /* batches the compressor stage encoded (compress_thread) */
};

struct sl_node;

/* Opens (recovering) or creates the log, the transport and the protocol.
 * The recovered state is logged at info level. 0 or -errno (message in
 * sl_err_msg()). */
int sl_node_open(struct sl_node **out, const struct sl_node_config *c,
		 const struct sl_node_engine *engine);
/* Flushes what is pending (unless failed) and releases everything. */
void sl_node_close(struct sl_node *n);

/* One turn of the loop: receive frames (at most rx_budget), reap storage
 * completions and report durability, run due timers, flush the transport.
 * Returns the number of events handled (0: idle) or -errno once the node has
 * failed (storage failure: the protocol stops acknowledging for good). */
int sl_node_poll(struct sl_node *n);

/* Turn until *stop becomes non-zero, idling by the configured strategy.
 * 0 when stopped, -errno when the node failed. */
int sl_node_run(struct sl_node *n, const volatile int *stop);

/* Idle the way sl_node_run does after a turn that handled `events` (for
 * callers with their own loop, e.g. a workload on the leader's thread). */
void sl_node_idle(struct sl_node *n, int events);
/* The same, sleeping no later than `deadline` (sl_node_now's clock): for
 * callers that also wait for something the node cannot see (an open-loop
 * schedule, records from other threads, a control socket). */
void sl_node_idle_until(struct sl_node *n, int events, uint64_t deadline);

/* Extra work a node's loop does on every turn: the client rings of shipd
 * (app/client_srv.c). `poll` runs inside sl_node_poll after the protocol's
 * receive and timers and before storage is reaped and the transport flushed,
 * so what it appends and seals is written and sent in the same turn; it
 * returns events handled or -errno (logged once, then counted as 0).
 * `take` (optional) takes new work only (a client's appends, flush requests):
 * it runs at the top of every turn and again right before the turn's seal
 * and flush decision (after the engine's take), so work that arrived while
 * the turn was busy leaves in it rather than waiting for the next; it
 * returns events handled.
 * `after` (optional) runs at the end of every turn, once storage completions
 * (which may have moved the commit) are in: the place to publish progress.
 * `sleep(arg, 1)` is asked before the idle strategy sleeps in the kernel:
 * it returns a file descriptor to sleep on (readable: wake up) or -1 when
 * work is pending and the node must not sleep; `sleep(arg, 0)` follows
 * the sleep. */
struct sl_node_poller {
	void *arg;
	int (*poll)(void *arg, uint64_t now);
	void (*after)(void *arg);
	int (*sleep)(void *arg, int on);
	int (*take)(void *arg);
};
/* Install (or with NULL remove) the poller; it is copied. */
void sl_node_set_poller(struct sl_node *n, const struct sl_node_poller *p);

/* Per-batch timestamps, for finding where a commit's time goes (shipbench
 * cluster --breakdown): with a trace set, the node records each event below
 * with sl_node_now()'s time until the trace is full. Positions are log
 * positions, the same on every node, so a batch's events can be matched
 * across nodes by its end position. */
enum sl_node_trace_ev {
	SL_TRACE_APPEND,    /* leader: a record appended; v = its LSN */
	SL_TRACE_SEAL,	    /* leader: a batch sealed; v = its end, w = its first LSN */
	SL_TRACE_STORE,	    /* follower: a received batch appended; v = its end */
	SL_TRACE_SUBMIT,    /* log writes handed to the kernel through v */
	SL_TRACE_DURABLE,   /* the log durable through v */
	SL_TRACE_SENT_DATA, /* DATA frames through v flushed to the transport */
	SL_TRACE_RX_DATA,   /* a DATA fragment received; v = its end, w = its batch's end */
	SL_TRACE_SENT_ACK,  /* a STATUS flushed; v = its durable position */
	SL_TRACE_RX_ACK,    /* a STATUS received; v = its durable position, w = sender */
	SL_TRACE_COMMIT,    /* the commit moved to v */
	SL_TRACE_SLEEP,	    /* the loop went to sleep in the kernel */
	SL_TRACE_WAKE,	    /* ... and came back */
	SL_TRACE_DELIVER,   /* follower: a committed batch delivered; v = its end */
	SL_TRACE_EVENTS
};
struct sl_node_trace_rec {
	uint64_t t, v, w;
	uint32_t ev;
};
struct sl_node_trace {
	struct sl_node_trace_rec *rec;
	uint32_t cap, n;
};
/* Record into `t` from now on (NULL: stop); the caller owns it and reads it
 * once the node's thread is done with the node. */
void sl_node_set_trace(struct sl_node *n, struct sl_node_trace *t);

/* Leader: append a record (see sl_proto_append: LSN, -EAGAIN when the
 * window is full: poll and retry). */
int64_t sl_node_append(struct sl_node *n, const void *rec, uint32_t len);
/* Leader: close the open batch now (an engine about to wait for a commit).
 * -EAGAIN: the window is full; the batch stays open and is sealed by a later
 * flush or its linger timer once commits make room. */
int sl_node_flush(struct sl_node *n);
/* Elections (shipctl promote, stepdown, promote --force): see
 * sl_proto_transfer, sl_proto_stepdown, sl_proto_force_lead. */
int sl_node_transfer(struct sl_node *n, uint32_t target);
int sl_node_stepdown(struct sl_node *n);
int sl_node_force_lead(struct sl_node *n);
/* Followers / any node: the engine applied up to lsn. */
void sl_node_applied(struct sl_node *n, uint64_t lsn);

void sl_node_status(const struct sl_node *n, struct sl_proto_status *out);
/* Leader with compress_thread: batches in the compressor stage, its open
 * slot included (records appended, not yet in the protocol's log_end). */
uint32_t sl_node_staged(const struct sl_node *n);
void sl_node_transport_stats(const struct sl_node *n, struct sl_transport_stats *out);
void sl_node_stats(const struct sl_node *n, struct sl_node_stats *out);
void sl_node_store_info(const struct sl_node *n, struct sl_store_info *out);
/* The log's Merkle tree (sl_store_tree), and the segment file holding a
 * position: what shipctl verify --cluster asks each node for. */
void sl_node_tree(const struct sl_node *n, struct sl_store_tree *out);
const char *sl_node_segment_of(const struct sl_node *n, uint64_t pos);
/* Read the durable batch that starts at `pos` from this node's log
 * (sl_store_read_pos): for verification and tools. */
int sl_node_read_pos(struct sl_node *n, uint64_t pos, void *buf, size_t cap,
		     struct sl_batch_hdr *h);
/* Read the durable batch that holds `lsn` (sl_store_read). */
int sl_node_read(struct sl_node *n, uint64_t lsn, void *buf, size_t cap, struct sl_batch_hdr *h);
/* Leader: the highest LSN whose batch ends at or before stream position
 * `pos` (for turning acknowledged positions into LSNs), 0 if none. Exact for
 * the batches sealed since the node opened, as far back as it remembers
 * (SL_NODE_LSN_MAP batches); older positions answer the oldest it knows. */
uint64_t sl_node_lsn_at(const struct sl_node *n, uint64_t pos);
#define SL_NODE_LSN_MAP 4096
/* The node's settled configuration (defaults filled in). */
const struct sl_node_config *sl_node_get_config(const struct sl_node *n);
/* Largest batch this node's protocol can build or accept (a read buffer
 * of this size always suffices). */
size_t sl_node_batch_max(const struct sl_node *n);

/* Monotonic clock the node uses (ns). */
uint64_t sl_node_now(void);

/* Options for DPDK transports a node sends through (the built-in kind, or
 * one made by a make_transport hook): the frames handed to send() live in a
 * buffer the protocol reuses at once, so zero-copy sends are off. */
struct sl_dpdk_opts;
extern const struct sl_dpdk_opts sl_node_dpdk_opts;

/* Parse "spin", "yield", "backoff", "nap". 0 or -EINVAL (with a message). */
int sl_idle_parse(const char *s, enum sl_idle *out);
const char *sl_idle_name(enum sl_idle idle);
/* "udp", "dpdk", "tcp" (inline: shipctl's status code names the kind
 * without linking the node). */
static inline const char *sl_transport_kind_name(enum sl_transport_kind kind)
{
	return kind == SL_TRANSPORT_UDP	   ? "udp"
	       : kind == SL_TRANSPORT_DPDK ? "dpdk"
	       : kind == SL_TRANSPORT_TCP  ? "tcp"
					   : "unknown";
}

#endif
