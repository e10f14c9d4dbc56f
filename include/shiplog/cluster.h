/* An in-process cluster: N shiplog nodes in one process, one thread each,
 * their logs in a fresh directory, talking over a real transport (kernel UDP
 * on 127.0.0.1). The leader's thread runs a generated workload (closed or
 * open loop) and measures commit latency per record; followers measure the
 * lag from the leader's seal to their delivery (one process, one monotonic
 * clock), check what they are delivered, and at the end every follower's
 * log is compared byte for byte with the leader's committed prefix. Kernel
 * TCP (plain sockets) runs the same cluster as a baseline.
 *
 * Batching: whenever the workload may append nothing more right now (closed
 * loop: `inflight` records are uncommitted; open loop: the next record is not
 * due yet), the leader seals its open batch at once, as an engine about to
 * wait would, instead of waiting for the linger timer. Batches therefore
 * grow with the backlog, and a lone record does not pay the linger time.
 * With seal_by_linger the batcher alone seals (batch_bytes or linger_us),
 * as for an engine that does not wait on its appends.
 *
 * Shared by `shipbench cluster`, shiplog-demo and tests/test_node.c. */
#ifndef SHIPLOG_CLUSTER_H
#define SHIPLOG_CLUSTER_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "shiplog/err.h"
#include "shiplog/hist.h"
#include "shiplog/node.h"
#include "shiplog/workload.h"

enum sl_cluster_net {
	SL_CLUSTER_UDP = 0,   /* kernel UDP over io_uring on 127.0.0.1 */
	SL_CLUSTER_MEMIF,     /* DPDK: a net_memif pair per pair of nodes */
	SL_CLUSTER_AF_PACKET, /* DPDK: net_af_packet on a veth pair per pair of nodes, each
			       * end in its node's network namespace (root) */
	SL_CLUSTER_TCP,	      /* kernel TCP, plain sockets, on 127.0.0.1: the baseline */
};

#define SL_CLUSTER_CLIENTS_MAX 16

enum sl_cluster_mode {
	SL_CLUSTER_CLOSED = 0, /* at most `inflight` records uncommitted at once */
	SL_CLUSTER_OPEN,       /* `rate` records/s on a fixed schedule */
};

struct sl_cluster_opts {
	unsigned nodes; /* 1..SL_NODES_MAX (default 3); node ids 1..nodes, 1 leads */
	enum sl_cluster_net net;
	struct sl_ack_policy policy;
	uint32_t record_bytes; /* default 1024 */
	enum sl_wl_kind data;
	uint64_t seed;
	enum sl_cluster_mode mode;
	uint32_t inflight; /* closed loop: records outstanding (default 1) */
	/* Client threads producing the records (0: the leader's thread does,
	 * as an engine linking the node would). Each hands its records to the
	 * leader's thread through a bounded ring; closed loop: each keeps its
	 * share of `inflight` outstanding; open loop: each runs its share of
	 * `rate` on its own schedule, times from the schedule. */
	unsigned clients;
	uint64_t rate; /* open loop: records per second */
	/* Stop after `records` records (0: run warmup + seconds). Latency and
	 * lag count what was appended (intended, in open loop) after warmup
	 * and before its end. */
	uint64_t records;
	double warmup, seconds;
	uint32_t batch_bytes;  /* protocol batch size (0: its default, 64 KiB) */
	uint64_t linger_ns;    /* (0: its default, 100 us) */
	uint64_t window_bytes; /* the leader's in-memory window (0: its default, 16 MiB) */
	enum sl_idle idle;
	const char *key_file; /* frame MACs with this pre-shared key (NULL: none) */
	const char *base_dir; /* where the run's directory goes (default /var/tmp) */
	int keep;	      /* keep the run's directory */
	int check_records;    /* followers compare every delivered record's bytes */
	/* Generate every record as it is sent rather than copy it from a
	 * prepared pool (sl_wl_pool_make: SL_WL_POOL_BYTES of generated
	 * records per producer, each copy stamped with its own sequence): the
	 * generator's cost then falls on the producing thread. */
	int fresh_records;
	/* Leave sealing to the batcher (batch_bytes or linger) instead of sealing
	 * whenever no record may go now: an engine that pipelines its appends
	 * rather than waiting on each (see the header comment). */
	int seal_by_linger;
	/* The leader's node seals as soon as its log is idle (group commit,
	 * sl_node_config.seal_when_log_idle), besides the rules above. */
	int seal_when_log_idle;
	int seal_when_idle;	   /* sl_node_config.seal_when_idle */
	uint32_t inline_write_max; /* every node's sl_store_opts.inline_write_max */
	uint32_t log_inflight;	   /* every node's sl_store_opts.max_inflight (0: its default) */
	uint32_t timer_early_ns;   /* every node's sl_node_config.timer_early_ns */
	uint32_t prewrite_chunk;   /* every node's sl_store_opts.prewrite_chunk (0: its default) */
	uint32_t mtu;		   /* every node's IP MTU, 576..9216 (0: 1500) */
	int compress_thread;	   /* the leader's sl_node_config.compress_thread */
	uint32_t lz4_accel;	   /* every node's proto.lz4_accel (0: 1) */
	int progress;		   /* a line on stderr every second */
	/* Test hook: after the leader has appended restart_at records, follower
	 * node `restart_node` (2..nodes) is closed, stays down restart_down_ms,
	 * and is reopened on its recovered log with its engine's applied LSN. */
	uint32_t restart_node;
	uint64_t restart_at;
	uint32_t restart_down_ms;
	double drain_seconds; /* bound on waiting for every follower at the end (30) */
	/* Trace every node and break each batch's commit down hop by hop
	 * (result's breakdown); costs a clock read per traced event. */
	int breakdown;
};

/* Fill defaults for every zero field. */
void sl_cluster_opts_defaults(struct sl_cluster_opts *o);

struct sl_cluster_follower {
	uint32_t node_id;
	uint64_t delivered_lsn; /* last LSN delivered */
	uint64_t delivered;	/* records delivered (each exactly once if no errors) */
	uint64_t order_errors;	/* deliveries not starting right after the previous */
	uint64_t record_errors; /* records whose bytes differed (check_records) */
	uint64_t restarts;
	uint64_t log_bytes;   /* bytes of its log compared with the leader's */
	uint64_t log_batches; /* batches compared */
	int log_identical;    /* 1: holds the leader's committed prefix byte for byte */
	struct sl_node_stats stats;
	uint64_t cpu_ns; /* its thread's CPU time from the start to the stop */
};

/* Follower lag over time: the batches sealed in one slice of the measured
 * window (by the leader's seal time), as one follower delivered them. */
#define SL_CLUSTER_LAG_SLICES 600
struct sl_cluster_lag_slice {
	uint64_t count, max_ns;
	double sum_ns;
};

/* A batch's way to its commit, hop by hop (opts.breakdown): each hop's time
 * over the batches of the window whose every step was traced. "The
 * follower" is the one whose acknowledgement reached the leader first. */
enum sl_cluster_hop {
	SL_HOP_DUE_APPEND,	/* the batch's first record: due -> appended */
	SL_HOP_APPEND_SEAL,	/* appended -> batch sealed (the linger) */
	SL_HOP_SEAL_SENT,	/* sealed -> its DATA flush began (leader) */
	SL_HOP_SENT_CALL,	/* that flush's call */
	SL_HOP_SEAL_SUBMIT,	/* sealed -> its write's submission began (leader) */
	SL_HOP_SUBMIT_CALL,	/* that submission's call */
	SL_HOP_L_WRITE,		/* submission began -> durable reaped (leader) */
	SL_HOP_WIRE,		/* DATA flush began -> last fragment received (follower) */
	SL_HOP_WIRE_ASLEEP,	/* ... when the follower was asleep at the send */
	SL_HOP_F_STORE,		/* received -> appended to its store */
	SL_HOP_F_SUBMIT,	/* appended -> its write's submission began */
	SL_HOP_F_SUBMIT_CALL,	/* that submission's call */
	SL_HOP_F_WRITE,		/* submission began -> durable reaped (follower) */
	SL_HOP_F_ACK,		/* durable reaped -> STATUS flush began */
	SL_HOP_ACK_WIRE,	/* STATUS flush began -> received by the leader */
	SL_HOP_ACK_WIRE_ASLEEP, /* ... when the leader was asleep at the send */
	SL_HOP_COMMIT,		/* the later of the ack and its own durability -> commit */
	SL_HOP_TOTAL,		/* due -> commit */
	/* Follower lag, every follower: the leader's commit -> this follower's
	 * delivery (learning the commit, its own write when it was not the
	 * acking one), and seal -> delivery (the lag itself). */
	SL_HOP_DELIVER,
	SL_HOP_LAG,
	SL_HOPS
};
/* The logs' group writes of the window, every node's (opts.breakdown), each
 * from its submission to its report as durable, by what was in flight beside
 * it (sl_store_wtrace): the first class that applies. */
enum sl_cluster_wclass {
	SL_WCLASS_ZEROS_OWN,   /* a chunk of its own log's zeros in flight or started meanwhile */
	SL_WCLASS_ZEROS_OTHER, /* another log's zeros in flight meanwhile */
	SL_WCLASS_BEHIND,      /* a group of its own log submitted before it not yet durable */
	SL_WCLASS_ALONE,       /* none of these (other logs' groups may be) */
	SL_WCLASSES
};
struct sl_cluster_writes {
	uint64_t dropped;		   /* records past a buffer's end */
	struct sl_hist all;		   /* every group write */
	struct sl_hist cls[SL_WCLASSES];   /* by class */
	uint64_t slow[SL_WCLASSES];	   /* those over all's p99, by class */
	uint64_t peers[SL_NODES_MAX];	   /* by how many other logs had a group write meanwhile */
	uint64_t slow_peers[SL_NODES_MAX]; /* ... of the slow ones */
	struct sl_hist linked;		   /* write + linked fdatasync groups */
	struct sl_hist bytes;		   /* group sizes (in ns units: bytes) */
	struct sl_hist zeros;		   /* chunks of zeros: submitted -> synced */
	uint64_t zero_chunks;
};
struct sl_cluster_breakdown {
	uint64_t batches;     /* batches of the window matched end to end */
	uint64_t unmatched;   /* ... and those some step of which was not traced */
	uint64_t leader_last; /* the leader's own write was durable after the ack */
	uint64_t trace_full;  /* a node's trace filled up: later batches unmatched */
	struct sl_hist hop[SL_HOPS];
	struct sl_cluster_writes writes;
};
/* "due->append", ...: the hop's name for reports. */
const char *sl_cluster_hop_name(enum sl_cluster_hop h);

struct sl_cluster_result {
	char dir[PATH_MAX];
	double seconds;	       /* measured: the window, or the whole run with `records` */
	uint64_t records;      /* committed in that time */
	uint64_t record_bytes; /* their bytes */
	uint64_t wire_bytes;   /* the leader's transport sent in that time (every copy) */
	uint64_t stored_bytes; /* the committed log grew by this much (batches as stored) */
	double cpu_seconds;    /* the process's CPU time (every thread) in that time */
	uint64_t retransmits;  /* the leader's fragments sent again in that time */
	uint64_t naks;	       /* NAKs the leader received in that time */
	uint64_t appended;     /* LSN of the last record appended */
	uint64_t commit_lsn, commit_pos;
	uint64_t window_full;  /* appends refused: the leader's window was full */
	struct sl_hist commit; /* ns, append (or intended) time -> commit callback */
	struct sl_hist lag;    /* ns, leader seal -> follower delivery, every follower */
	/* Lag per follower (f[i]) and slice of lag_slice_ns from the window's
	 * start; n_lag_slices used (runs by the clock only). */
	uint64_t lag_slice_ns;
	unsigned n_lag_slices;
	struct sl_cluster_lag_slice lag_slices[SL_NODES_MAX - 1][SL_CLUSTER_LAG_SLICES];
	/* Time the hypervisor kept this machine's CPUs from running it (the
	 * steal column of /proc/stat, 10 ms units): over the window, and per
	 * lag slice the most of any one CPU. A guest cannot see such a pause
	 * any other way: every thread on the CPU stops, the clock runs on.
	 * steal_known 0: /proc/stat was not readable. */
	int steal_known;
	double steal_ms;
	double steal_slice_ms[SL_CLUSTER_LAG_SLICES];
	int direct_io; /* the leader's log */
	enum sl_sync_mode sync_mode;
	int sync_adaptive; /* default mode: RWF_DSYNC alone, write + fdatasync when groups queue */
	struct sl_node_stats leader_stats;
	uint64_t leader_cpu_ns; /* the leader's thread (workload included), start to drained */
	struct sl_proto_status leader_status;
	unsigned n_followers;
	struct sl_cluster_follower f[SL_NODES_MAX];
	int drained;  /* every follower delivered every record before the end */
	int verified; /* drained, no order or record error, every log identical */
	struct sl_cluster_breakdown breakdown; /* opts.breakdown */
	char error[SL_ERR_MSG_MAX];
};

/* Run once. 0 (see r->verified for the checks) or -errno when the cluster
 * could not run (message in r->error and sl_err_msg()). */
int sl_cluster_run(const struct sl_cluster_opts *o, struct sl_cluster_result *r);

/* Throughput, commit latency and follower lag, a line each. */
void sl_cluster_print_summary(FILE *f, const struct sl_cluster_result *r);
/* Each node's counters: its loop (turns, idle turns, sleeps), frames,
 * storage waits, and the leader's protocol repair counters. */
void sl_cluster_print_stats(FILE *f, const struct sl_cluster_result *r);
/* The byte-for-byte check: a line per follower and the verdict. */
void sl_cluster_print_check(FILE *f, const struct sl_cluster_result *r);

/* The transport's limit: `frame_bytes` frames ping-ponged between two
 * transports of kind `net` (UDP on 127.0.0.1, or one DPDK link as the
 * cluster makes them, under base_dir) for `secs`, busy polling; each round
 * trip's time into h. 0 or -errno. */
int sl_cluster_measure_rtt(enum sl_cluster_net net, const char *base_dir, size_t frame_bytes,
			   double secs, struct sl_hist *h);

/* "udp", "memif", "af_packet", "tcp". 0 or -EINVAL (with a message). */
int sl_cluster_net_parse(const char *s, enum sl_cluster_net *out);
const char *sl_cluster_net_name(enum sl_cluster_net n);

/* Pick `n` distinct free UDP ports on 127.0.0.1 (bound together, then
 * released, so they differ; another program could take one in between). */
int sl_cluster_free_ports(uint16_t *ports, unsigned n);

#endif
