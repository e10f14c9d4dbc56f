/* libshiplog: the library a storage engine links to use the shipd running on
 * its own machine. It connects over shipd's client Unix socket and receives
 * shared-memory rings (memfd) and a doorbell (eventfd); records then travel
 * through shared memory, polled by shipd's run loop, with no system call on
 * the fast path. See docs/client.md for the ring layout and failure rules.
 *
 *   leader:    append records -> LSN tokens -> wait for commit at a level
 *   follower:  consume committed records in order -> acknowledge applied
 *   any node:  wait until a token is applied here (read-your-writes), the
 *              epoch as a fencing token, the current leader
 *
 * Return values follow the project's rule: 0 or a count (an LSN) on success,
 * a negative errno on failure, with a message in sl_client_errmsg().
 *
 * Threads: one struct sl_client is used by one thread at a time (serialise
 * with your own lock, or open one client per thread). Distinct clients are
 * independent. The library starts no thread and installs no signal handler
 * (it sends with MSG_NOSIGNAL). */
#ifndef SHIPLOG_CLIENT_H
#define SHIPLOG_CLIENT_H

#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_CLIENT_ABI 1 /* bumped on every incompatible change of this header */

/* How far a record has travelled. The first three are the stream's ack
 * levels (shiplog/quorum.h), asked of the quorum the stream's `acks`
 * setting names (the leader's own log counts as it does for commits). */
enum sl_client_level {
	SL_LEVEL_RECEIVED = 0, /* leader: `acks` followers hold it in memory */
	SL_LEVEL_DURABLE = 1,  /* leader: `acks` followers fsynced it */
	SL_LEVEL_APPLIED = 2,  /* leader: `acks` followers' engines applied it */
	/* Committed under the stream's own policy (ack_level and on_timeout).
	 * On a follower: committed and durable here (what may be consumed). */
	SL_LEVEL_COMMITTED = 3,
	/* Applied on THIS node: a follower's consumer acknowledged it with
	 * sl_client_applied (with shipd's [client] engine = none: delivered
	 * there), on the leader any client did. Read-your-writes and monotonic
	 * reads: a reader on any node waits for the token its writer got. */
	SL_LEVEL_APPLIED_HERE = 4,
};

struct sl_client_opts {
	/* shipd's client socket ([client] socket in its configuration;
	 * default <log_dir>/client.sock). Required. */
	const char *socket;
	/* 1: this client consumes the committed records delivered on this
	 * node (a follower's engine). One consumer per node: a second is
	 * refused with -EBUSY while the first is connected. */
	int consumer;
	/* Consumer: the last LSN the engine has applied durably before this
	 * start (0: none). Delivery starts right after it. */
	uint64_t applied_lsn;
	/* Waits spin (polling shared memory) this long before they sleep in
	 * the kernel; UINT32_MAX never sleeps. 0 (the default) adapts: a kind
	 * of wait (appends, levels) that usually ends within 50 us spins
	 * twice its usual time (at least 20 us, the first wait too), a longer
	 * one (typically a commit) sleeps at once. Spinning keeps a wait within a
	 * microsecond of the event, but holds a core that shipd's threads may
	 * need for the commit itself; a sleep costs a wake-up. With
	 * pin_to_loop the spin yields the CPU at every look (sched_yield)
	 * instead: the thread shares that CPU with shipd's loop, which then
	 * runs whenever it has work, and the CPU never halts, so neither side
	 * pays a wake-up. */
	uint32_t spin_us;
	/* Bound on connecting and on the handshake (default 2000 ms). */
	uint32_t connect_timeout_ms;
	/* After shipd goes away, calls reconnect (each call tries for at most
	 * connect_timeout_ms) and resume where they were: the consumer after
	 * the last record it consumed. 1 turns that off: calls then fail with
	 * -ENOTCONN. */
	int no_reconnect;
	/* 1: sl_client_open pins the calling thread to the CPU shipd's loop
	 * thread is pinned to ([node] cpu), the sidecar tuning of
	 * docs/operations.md: shipd's wake-ups of this thread, and this
	 * thread's of shipd's loop, then stay on one CPU. Fails with -EINVAL
	 * if shipd does not pin its loop. The affinity stays after close, and
	 * a reconnect does not change it. */
	int pin_to_loop;
};

struct sl_client;

/* Connect and map the rings. -ENOENT/-ECONNREFUSED: no shipd on that
 * socket; -EBUSY: a consumer is already connected; -ERANGE: the records
 * after the consumer's applied_lsn are no longer in this node's log;
 * -EPROTO: a shipd of another version. */
int sl_client_open(struct sl_client **out, const struct sl_client_opts *o);
/* Disconnects and unmaps; records appended but not yet taken by shipd may be
 * lost (wait for what you need first). NULL is ignored. */
void sl_client_close(struct sl_client *c);

/* ---- appending (leader) ---- */

#define SL_APPEND_NONBLOCK 0x1u /* ring or window full: -EAGAIN, nothing appended */
#define SL_APPEND_FLUSH	   0x2u /* seal the open batch now instead of after linger */

/* Append one record (1..max_record_bytes bytes) and return its LSN once
 * shipd has taken it (usually within one turn of its loop). Without
 * SL_APPEND_NONBLOCK a full ring or a full replication window waits until
 * there is room. Errors: -EINVAL (NULL, zero length, unknown flags),
 * -EMSGSIZE (over max_record_bytes), -EAGAIN (NONBLOCK and full), -EPERM
 * (this node does not lead; the message and sl_client_leader() name the
 * leader), -ENOTCONN (shipd went away during the call: whether the record
 * was taken is unknown, the next call reconnects; or it did not come back
 * within connect_timeout_ms), -EIO (shipd's log failed). */
int64_t sl_client_append(struct sl_client *c, const void *rec, uint32_t len, unsigned flags);

/* Append n records as one unit: they get consecutive LSNs, first..first+n-1,
 * with no other client's record between them; returns first. The whole
 * vector must fit the ring (sl_client_info: ring_bytes): -EMSGSIZE
 * otherwise. Same errors as sl_client_append; nothing is appended on error. */
int64_t sl_client_appendv(struct sl_client *c, const struct iovec *recs, unsigned n,
			  unsigned flags);

/* ---- appending and waiting in one call ---- */

/* Append one record and wait until it reaches `level`; return its LSN. The
 * call an engine that waits for each write makes (a Kafka producer's
 * send().get() with acks, a PostgreSQL commit under synchronous_commit):
 * the same as sl_client_append(SL_APPEND_FLUSH) then sl_client_wait, but
 * shipd arms the level's wake-up itself as it takes the record, so the
 * caller sleeps once, woken when the level is reached, not also when the
 * LSN is known. A quorum level seals the record's batch at once.
 * timeout_ms < 0 waits without limit; it covers waiting for ring room too.
 * Errors: those of sl_client_append (-EINVAL also for level unknown or
 * timeout_ms 0) and of sl_client_wait (-ESTALE, -EIO), and -ETIMEDOUT:
 * nothing was appended if the ring had no room in time; otherwise the
 * record stays in the ring and shipd appends it, but its LSN is unknown to
 * the caller (the message names it when shipd had taken it). This call
 * uses the level's wake-up target: it replaces one armed by sl_client_arm. */
int64_t sl_client_append_wait(struct sl_client *c, const void *rec, uint32_t len,
			      enum sl_client_level level, int timeout_ms);

/* ---- waiting ---- */

/* 1 when `lsn` has reached `level`, 0 when not yet, -errno on trouble
 * (-ENOTSUP: a quorum level asked on a follower; -ENOTCONN; -ESTALE: this
 * client appended `lsn` in an epoch that ended before it reached a leader's
 * level: whether it survives is unknown, docs/client.md "Fencing"). Never
 * blocks. */
int sl_client_reached(struct sl_client *c, uint64_t lsn, enum sl_client_level level);

/* Wait until `lsn` reaches `level`: spin, then sleep. timeout_ms < 0 waits
 * without limit, 0 only checks. Waiting for a commit seals the batch that
 * holds `lsn` if it is still open. 0, -ETIMEDOUT, or as sl_client_reached. */
int sl_client_wait(struct sl_client *c, uint64_t lsn, enum sl_client_level level, int timeout_ms);

/* For the engine's own event loop: a file descriptor (stable across
 * reconnects) that becomes readable once an armed event happens or shipd
 * goes away. Arm, poll the fd, then call sl_client_dispatch, then check. */
int sl_client_fd(const struct sl_client *c);
/* Ask for the fd to become readable when `lsn` reaches `level`. Returns 1
 * when it already has (no need to poll), 0 when armed, -errno. One target
 * per level: arming again replaces it. */
int sl_client_arm(struct sl_client *c, uint64_t lsn, enum sl_client_level level);
/* Consumer: the fd becomes readable when records can be consumed. */
int sl_client_arm_consume(struct sl_client *c);
/* Clear the fd's readiness and notice a shipd that went away (reconnecting
 * unless no_reconnect). 0 or -errno. Never blocks beyond a reconnect. */
int sl_client_dispatch(struct sl_client *c);

/* ---- consuming (followers) ---- */

struct sl_client_rec {
	uint64_t lsn;
	const void *data; /* a view into the shared ring: valid until the next
			     sl_client_consume or sl_client_close */
	uint32_t len;
};

/* Up to `max` committed records, in LSN order, each exactly once (across
 * reconnects too), and only records this node holds durably. Waits up to
 * timeout_ms for the first (< 0: no limit; 0: do not wait). Returns the
 * count, 0 when none came in time; -EINVAL for a non-consumer or bad
 * arguments. Calling it again releases the previous views. */
int sl_client_consume(struct sl_client *c, struct sl_client_rec *recs, unsigned max,
		      int timeout_ms);

/* The engine has applied every record up to `lsn` (it must have been
 * consumed: -EINVAL otherwise, and LSNs never go back). This drives the
 * stream's ack_level=applied, the apply lag and SL_LEVEL_APPLIED_HERE. On
 * the leader any client may call it (it feeds APPLIED_HERE only); on a
 * follower only the consumer (-EINVAL). */
int sl_client_applied(struct sl_client *c, uint64_t lsn);

/* ---- the stream ---- */

struct sl_client_info {
	uint64_t stream_id;
	uint32_t node_id;   /* the node this client is attached to */
	uint32_t leader_id; /* the current leader */
	uint64_t epoch;	    /* the leadership term: a fencing token */
	int leader;	    /* 1: this node leads (appends are accepted) */
	uint32_t max_record_bytes;
	uint32_t ring_bytes;   /* append ring: the largest appendv, headers included */
	uint64_t next_lsn;     /* the next LSN this node will append or receive */
	uint64_t commit_lsn;   /* SL_LEVEL_COMMITTED has reached this */
	uint64_t durable_lsn;  /* durable in this node's log */
	uint64_t applied_lsn;  /* SL_LEVEL_APPLIED_HERE has reached this */
	uint64_t consumed_lsn; /* consumer: last record handed out */
	uint64_t reconnects;   /* times this client reconnected to a restarted shipd */
};

/* Snapshot of the stream as this node sees it. 0 or -ENOTCONN. */
int sl_client_info(struct sl_client *c, struct sl_client_info *out);
/* The current epoch (fencing token) and leader; 0 when not connected. */
uint64_t sl_client_epoch(const struct sl_client *c);
uint32_t sl_client_leader(const struct sl_client *c);

/* The calling thread's message for the last error this library returned. */
const char *sl_client_errmsg(void);
/* "received", "durable", "applied", "committed", "applied_here". */
const char *sl_client_level_name(enum sl_client_level level);

#ifdef __cplusplus
}
#endif

#endif
