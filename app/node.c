/* A shiplog node: the protocol state machine (core/proto) wired to the log
 * store (io/store), a transport (net/) and the monotonic clock, driven by a
 * polling loop. See include/shiplog/node.h.
 *
 * One turn of the loop, in this order, each step bounded:
 *   1. receive up to rx_budget frames and hand them to the protocol (a
 *      follower's complete batch is appended to the store from inside);
 *   2. run the protocol's timers when due (linger, heartbeats, NAKs, probes);
 *   3. reap storage completions without waiting (this also queues the next
 *      group) and report the durable position to the protocol;
 *   4. flush the transport and submit the store's writes (held since 1), so
 *      whatever 1-3 queued leaves in this turn: a leader sends first (its
 *      followers' writes are the longer way to a commit, and submitting its
 *      own costs tens of microseconds), a follower writes first.
 * New work (an in-process engine's appends, shipd's clients') is taken
 * before 1 and again before 4, besides the poller's own turn after 2: an
 * append that arrived while the turn was busy (a commit's callback woke its
 * client) is sealed and sent in this turn, not after the next receive. */
#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/auth.h"
#include "shiplog/dpdk.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/log.h"
#include "shiplog/mesh.h"
#include "shiplog/node.h"
#include "zstage.h"

#define RX_BUDGET_DEFAULT   256
#define STORE_GROUP_HDR	    32 /* a group's header, store.h: batch + 32 must fit */
#define STORE_GROUP_DEFAULT (1u << 20)
#define STORE_FULL_WAITS    64	 /* completions an append may wait for before failing */
#define STATUS_CHECK_TURNS  1024 /* how often a turn looks for a protocol failure */
/* Backoff: a short spin. Nodes that share cores (several per process, or
 * a loaded machine) lose more to a long spin than it saves: each spinning
 * thread holds a core the thread with work needs, and the scheduler then
 * makes it wait its turn once it has work (300 spins and 50 yields before
 * sleeping halved closed-loop throughput in shipbench cluster). */
#define BACKOFF_SPINS	  20	 /* idle turns spent spinning */
#define BACKOFF_YIELDS	  5	 /* then yielding */
#define BACKOFF_SLEEP_MIN 1000	 /* then sleeping, doubling from 1 us */
#define BACKOFF_SLEEP_MAX 50000	 /* up to 50 us */
#define TIMER_SLACK_NS	  1000ul /* so a 1 us sleep is not the default 50 us */
#define BLOCK_MAX_NS                                                                               \
	1000000ul /* waitable transport: after the spins, sleep in ppoll,                          \
		   * looking up at least every 1 ms */

struct sl_node {
	struct sl_node_config cfg;
	struct sl_node_engine eng;
	struct sl_store *store;
	struct sl_transport *tr;
	struct sl_proto *proto;
	struct sl_auth auth;
	int mac;	  /* frames carry and must carry a MAC */
	int pinned;	  /* the loop thread is on cfg.cpu (pin_cpu) */
	uint8_t *txbuf;	  /* a frame being signed (SL_FRAME_MAX) */
	uint8_t *joinbuf; /* a DATA frame's prefix and fragment joined (SL_FRAME_MAX) */
	uint8_t *raw;	  /* a delivered batch's records (limits.max_raw_bytes) */
	size_t raw_cap;	  /* largest raw batch the protocol builds */
	size_t batch_max;
	/* compress_thread: the leader's compressor stage. While `zs_on` (a
	 * backlog) every append goes into the slot being filled, `zs_b` in
	 * zs_raw; the protocol's own open batch stays empty. */
	struct sl_zstage *zs;
	int zs_on;
	uint8_t *zs_raw; /* NULL: no slot open */
	struct sl_batch_builder zs_b;
	uint64_t zs_open_ts;   /* when the open slot's first record came */
	uint64_t zs_next_lsn;  /* the LSN the next record appended gets */
	uint64_t zs_take_lsn;  /* the first LSN of the next encoded batch */
	uint64_t now;	       /* the clock at the start of this turn */
	uint64_t durable_told; /* durable position the protocol knows */
	uint64_t skip_through; /* deliver nothing <= this: applied before the start */
	int leading;	       /* the protocol's role is leader */
	/* Elections: the superblock holds (persist_epoch, persist_vote); the
	 * protocol is told in the loop, not from inside its own call. */
	int persist_due;
	uint64_t persist_epoch;
	uint32_t persist_vote;
	int failed;
	uint32_t idle_streak;
	uint64_t sleep_ns;
	int slack_set;
	struct sl_node_stats st;
	struct sl_node_poller poller; /* poll NULL: none */
	uint32_t poller_errors;
	/* leader: (end position, last LSN) of sealed batches, a ring */
	struct {
		uint64_t end, last_lsn;
	} lsnmap[SL_NODE_LSN_MAP];
	uint32_t lsnmap_head, lsnmap_n;
	uint64_t lsnmap_floor; /* last LSN of the newest batch forgotten */
	uint64_t scrub_at;     /* the next scrub step */
	/* sl_node_set_trace: what was traced last, so each event says news */
	struct sl_node_trace *trace;
	uint64_t tr_data, tr_data_told, tr_ack, tr_ack_told, tr_submitted;
};

#define SCRUB_STEP_BYTES (256u << 10) /* read per step; the rate spaces the steps */

uint64_t sl_node_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void trace_at(struct sl_node *n, uint64_t at, enum sl_node_trace_ev ev, uint64_t v,
		     uint64_t w)
{
	struct sl_node_trace *t = n->trace;

	if (t->n < t->cap)
		t->rec[t->n++] =
		    (struct sl_node_trace_rec){.t = at, .v = v, .w = w, .ev = (uint32_t)ev};
}

static void trace_rec(struct sl_node *n, enum sl_node_trace_ev ev, uint64_t v, uint64_t w)
{
	trace_at(n, sl_node_now(), ev, v, w);
}

/* Where a step that may send or submit starts (0: no trace). */
static uint64_t trace_mark(const struct sl_node *n)
{
	return __builtin_expect(n->trace != NULL, 0) ? sl_node_now() : 0;
}

#define TRACE(n, ev, v, w)                                                                         \
	do {                                                                                       \
		if (__builtin_expect((n)->trace != NULL, 0))                                       \
			trace_rec((n), (ev), (v), (w));                                            \
	} while (0)

/* A frame sent or received, for the trace: where its batch or ack stands. */
static void trace_frame(struct sl_node *n, const uint8_t *frame, size_t len, int rx)
{
	struct sl_frame f;

	if (sl_frame_decode(frame, len, &f) < 0)
		return;
	if (f.hdr.type == SL_FRAME_DATA) {
		uint64_t end = f.data.batch_pos + f.data.frag_off + f.data.frag_len;

		if (rx)
			trace_rec(n, SL_TRACE_RX_DATA, end, f.data.batch_pos + f.data.batch_len);
		else if (end > n->tr_data)
			n->tr_data = end;
	} else if (f.hdr.type == SL_FRAME_STATUS) {
		if (rx)
			trace_rec(n, SL_TRACE_RX_ACK, f.status.durable_pos, f.hdr.sender);
		else if (f.status.durable_pos > n->tr_ack)
			n->tr_ack = f.status.durable_pos;
	}
}

/* After a step that began at t0 and may have submitted log writes: those
 * that went, at t0, with the step's time in w. */
static void trace_submitted(struct sl_node *n, uint64_t t0)
{
	uint64_t sub = sl_store_submitted_position(n->store);

	if (sub > n->tr_submitted) {
		n->tr_submitted = sub;
		trace_at(n, t0, SL_TRACE_SUBMIT, sub, sl_node_now() - t0);
	}
}

/* After a flush that began at t0: the frames that went. */
static void trace_sent(struct sl_node *n, uint64_t t0)
{
	uint64_t t1 = sl_node_now();

	if (n->tr_data > n->tr_data_told) {
		n->tr_data_told = n->tr_data;
		trace_at(n, t0, SL_TRACE_SENT_DATA, n->tr_data, t1 - t0);
	}
	if (n->tr_ack > n->tr_ack_told) {
		n->tr_ack_told = n->tr_ack;
		trace_at(n, t0, SL_TRACE_SENT_ACK, n->tr_ack, t1 - t0);
	}
}

void sl_node_set_trace(struct sl_node *n, struct sl_node_trace *t)
{
	n->trace = t;
}

static const char *const idle_names[] = {[SL_IDLE_BACKOFF] = "backoff",
					 [SL_IDLE_SPIN] = "spin",
					 [SL_IDLE_YIELD] = "yield",
					 [SL_IDLE_NAP] = "nap"};

int sl_idle_parse(const char *s, enum sl_idle *out)
{
	for (unsigned i = 0; i < sizeof(idle_names) / sizeof(idle_names[0]); i++)
		if (strcmp(s, idle_names[i]) == 0) {
			*out = (enum sl_idle)i;
			return 0;
		}
	return sl_err_set(EINVAL, "idle strategy '%s': want spin, yield, backoff or nap", s);
}

const char *sl_idle_name(enum sl_idle idle)
{
	return (unsigned)idle < sizeof(idle_names) / sizeof(idle_names[0]) ? idle_names[idle]
									   : "unknown";
}

static void node_fail(struct sl_node *n, int err, const char *what)
{
	if (n->failed)
		return;
	n->failed = err < 0 ? err : -EIO;
	sl_error("node %" PRIu32 ": %s: %s (the node stops acknowledging)", n->cfg.proto.node_id,
		 what, sl_err_msg());
}

/* ---- the protocol's ops ---- */

static void lsnmap_push(struct sl_node *n, const uint8_t *batch, size_t len, uint64_t pos)
{
	struct sl_batch_hdr h;
	uint32_t i;

	if (sl_batch_decode_hdr(batch, len, &n->cfg.proto.limits, &h) < 0 || h.record_count == 0)
		return;
	if (n->lsnmap_n == SL_NODE_LSN_MAP) {
		n->lsnmap_floor = n->lsnmap[n->lsnmap_head].last_lsn;
		n->lsnmap_head = (n->lsnmap_head + 1) % SL_NODE_LSN_MAP;
		n->lsnmap_n--;
	}
	i = (n->lsnmap_head + n->lsnmap_n++) % SL_NODE_LSN_MAP;
	n->lsnmap[i].end = pos + len;
	n->lsnmap[i].last_lsn = h.base_lsn + h.record_count - 1;
}

uint64_t sl_node_lsn_at(const struct sl_node *n, uint64_t pos)
{
	uint32_t lo = 0, hi = n->lsnmap_n;

	/* the first entry ending after pos */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (n->lsnmap[(n->lsnmap_head + mid) % SL_NODE_LSN_MAP].end <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? n->lsnmap_floor
		       : n->lsnmap[(n->lsnmap_head + lo - 1) % SL_NODE_LSN_MAP].last_lsn;
}

/* A sealed (leader) or received (follower) batch goes to the store. With
 * every group buffer busy, wait for write completions: the protocol has no
 * way to retry a write later, and the wait is bounded by the disk. */
static int op_write(void *ctx, const uint8_t *batch, size_t len, uint64_t pos)
{
	struct sl_node *n = ctx;
	int rc;

	for (unsigned waits = 0; (rc = sl_store_append(n->store, batch, len)) == -EAGAIN; waits++) {
		if (waits == 0)
			n->st.store_full_waits++;
		if (waits == STORE_FULL_WAITS) {
			rc = sl_err_set(EIO, "store still full after %u completions", waits);
			break;
		}
		if ((rc = sl_store_poll(n->store, 1)) < 0)
			break;
	}
	if (rc < 0) {
		rc = sl_err_wrap(rc, "appending the batch at position %" PRIu64, pos);
		node_fail(n, rc, "storage");
		return rc;
	}
	if (n->leading)
		lsnmap_push(n, batch, len, pos);
	if (__builtin_expect(n->trace != NULL, 0)) {
		struct sl_batch_hdr h = {0};

		if (n->leading)
			sl_batch_decode_hdr(batch, len, &n->cfg.proto.limits, &h);
		trace_rec(n, n->leading ? SL_TRACE_SEAL : SL_TRACE_STORE, pos + len, h.base_lsn);
	}
	return rc;
}

static int op_read(void *ctx, uint64_t pos, uint8_t *buf, size_t cap)
{
	struct sl_node *n = ctx;
	int rc = sl_store_read_pos(n->store, pos, buf, cap, NULL);

	if (rc < 0)
		sl_warn("node %" PRIu32 ": reading the batch at position %" PRIu64 ": %s",
			n->cfg.proto.node_id, pos, sl_err_msg());
	return rc;
}

static int op_tree(void *ctx, struct sl_proto_tree *out)
{
	struct sl_node *n = ctx;
	struct sl_store_tree t;

	sl_store_tree(n->store, &t);
	*out = (struct sl_proto_tree){.m = t.m,
				      .leaf_pos = t.leaf_pos,
				      .base_pos = t.base_pos,
				      .leaves = t.leaves,
				      .sealed = t.sealed};
	return 0;
}

static int op_rewrite(void *ctx, uint64_t pos, const uint8_t *batch, size_t len)
{
	struct sl_node *n = ctx;
	int rc = sl_store_rewrite(n->store, pos, batch, len);

	if (rc < 0)
		sl_warn("node %" PRIu32 ": repairing the batch at position %" PRIu64 ": %s",
			n->cfg.proto.node_id, pos, sl_err_msg());
	else
		sl_warn("node %" PRIu32 ": repaired the batch at position %" PRIu64
			" (%zu bytes) with a copy from a peer",
			n->cfg.proto.node_id, pos, len);
	return rc;
}

/* A step of the scrub when due: a bad batch goes to the protocol's repair
 * (a batch the store cannot tell, past the commit, waits for the next
 * pass). Returns 1 when it did something. */
static int scrub_step(struct sl_node *n)
{
	struct sl_store_bad bad;
	uint64_t rate = n->cfg.scrub_rate;
	int rc;

	if (n->now < n->scrub_at)
		return 0;
	rc = sl_store_scrub(n->store, SCRUB_STEP_BYTES, &bad);
	n->scrub_at = n->now + (uint64_t)SCRUB_STEP_BYTES * 1000000000ull / rate;
	n->st.scrub_steps++;
	if (rc == 0) {
		n->st.scrub_passes++;
		n->scrub_at = n->now + n->cfg.proto.entropy_interval_ns;
	} else if (rc == 2) {
		n->st.scrub_bad++;
		sl_error("node %" PRIu32 ": bad batch at position %" PRIu64 " (%" PRIu32
			 " bytes) in segment %s offset %" PRIu64 ": %s; repairing from a peer",
			 n->cfg.proto.node_id, bad.pos, bad.len, bad.segment, bad.offset, bad.why);
		if (sl_proto_repair(n->proto, bad.pos, bad.len, bad.leaf_hash, n->now) < 0)
			sl_warn("node %" PRIu32 ": %s", n->cfg.proto.node_id, sl_err_msg());
	} else if (rc < 0) {
		sl_warn("node %" PRIu32 ": scrub: %s", n->cfg.proto.node_id, sl_err_msg());
		n->scrub_at = n->now + n->cfg.proto.entropy_interval_ns;
	}
	return 1;
}

/* With a key, the protocol's frame is rebuilt with the MAC flag and its
 * trailer, then signed. The protocol was given an MTU 16 bytes smaller, so
 * the signed frame still fits. */
static int sign_frame(struct sl_node *n, const uint8_t **frame, size_t *len)
{
	struct sl_frame f;
	int rc = sl_frame_decode(*frame, *len, &f);

	if (rc == 0) {
		f.hdr.flags |= SL_FRAME_F_MAC;
		rc = sl_frame_encode(&f, n->txbuf, SL_FRAME_MAX);
	}
	if (rc > 0) {
		*len = (size_t)rc;
		rc = sl_auth_sign(&n->auth, n->txbuf, *len);
	}
	*frame = n->txbuf;
	return rc < 0 ? rc : 0;
}

/* The transports take a frame in one buffer, so a DATA frame's prefix and
 * fragment are joined here, once (the protocol copies nothing). */
static int op_send(void *ctx, uint32_t to, const uint8_t *head, size_t head_len,
		   const uint8_t *body, size_t body_len)
{
	struct sl_node *n = ctx;
	const uint8_t *frame = head;
	size_t len = head_len + body_len;
	int rc = 0;

	if (body_len > 0 && len > SL_FRAME_MAX)
		rc = sl_err_set(EMSGSIZE, "frame of %zu bytes", len);
	else if (body_len > 0) {
		memcpy(n->joinbuf, head, head_len);
		memcpy(n->joinbuf + head_len, body, body_len);
		frame = n->joinbuf;
	}
	if (rc == 0 && n->mac)
		rc = sign_frame(n, &frame, &len);
	if (rc == 0)
		rc = n->tr->ops->send(n->tr, to, frame, len);
	if (__builtin_expect(n->trace != NULL, 0) && rc >= 0)
		trace_frame(n, frame, len, 0);
	if (rc < 0) {
		n->st.tx_refused++;
		return rc; /* the protocol resumes from here later (NAK, probe) */
	}
	n->st.frames_tx++;
	return 0;
}

/* Deliver a batch's header alone, to an engine that reads no records: the
 * records applied before this start are cut by count. */
static int deliver_header(struct sl_node *n, const struct sl_batch_hdr *h)
{
	struct sl_batch_hdr rest = *h;

	if (h->base_lsn <= n->skip_through) {
		uint64_t skip = n->skip_through - h->base_lsn + 1;

		if (skip >= h->record_count)
			return 0;
		rest.base_lsn += skip;
		rest.record_count -= (uint32_t)skip;
	}
	rest.raw_len = 0;
	n->eng.deliver(n->eng.ctx, &rest, NULL, 0);
	return 0;
}

/* The protocol delivers the batch as logged; its records are decoded here
 * for the engine. Records at or below skip_through were applied before this
 * start: an engine that applied part of a batch gets only the rest of it. */
static int op_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *batch, size_t len)
{
	struct sl_node *n = ctx;
	struct sl_batch_hdr rest;
	struct sl_rec_iter it;
	const uint8_t *rec, *raw = n->raw;
	uint32_t rlen;
	int raw_len;

	TRACE(n, SL_TRACE_DELIVER, h->position + len, 0);
	if (!n->eng.deliver)
		return 0;
	if (n->eng.wants_records && !n->eng.wants_records(n->eng.ctx, h))
		return deliver_header(n, h);
	raw_len = sl_batch_decode(batch, len, &n->cfg.proto.limits, n->raw,
				  n->cfg.proto.limits.max_raw_bytes, &rest);
	if (raw_len < 0) {
		node_fail(n, raw_len, "decoding a delivered batch");
		return raw_len;
	}
	if (h->base_lsn > n->skip_through) {
		n->eng.deliver(n->eng.ctx, h, raw, (size_t)raw_len);
		return 0;
	}
	rest = *h;
	sl_rec_iter_init(&it, raw, (size_t)raw_len);
	while (rest.base_lsn <= n->skip_through && rest.record_count > 0 &&
	       sl_rec_next(&it, &rec, &rlen) == 1) {
		rest.base_lsn++;
		rest.record_count--;
	}
	if (rest.record_count == 0)
		return 0;
	rest.raw_len = (uint32_t)(it.end - it.p);
	n->eng.deliver(n->eng.ctx, &rest, it.p, rest.raw_len);
	return 0;
}

static void op_commit(void *ctx, uint64_t commit_lsn, uint64_t commit_pos)
{
	struct sl_node *n = ctx;

	TRACE(n, SL_TRACE_COMMIT, commit_pos, commit_lsn);
	if (n->eng.commit)
		n->eng.commit(n->eng.ctx, commit_lsn);
}

/* Elections: (epoch, vote) durably in the superblock before the protocol
 * sends anything that depends on it. A failed write fails the node, as a
 * failed fsync of the log does. */
static int op_persist(void *ctx, uint64_t epoch, uint32_t voted_for)
{
	struct sl_node *n = ctx;
	struct sl_store_meta m;
	int rc;

	sl_store_meta_get(n->store, &m);
	m.current_epoch = epoch;
	m.voted_epoch = epoch;
	m.voted_for = voted_for;
	if ((rc = sl_store_meta_put(n->store, &m)) < 0) {
		rc =
		    sl_err_wrap(rc, "persisting epoch %" PRIu64 " vote %" PRIu32, epoch, voted_for);
		node_fail(n, rc, "superblock");
		return rc;
	}
	n->st.persists++;
	n->persist_due = 1;
	n->persist_epoch = epoch;
	n->persist_vote = voted_for;
	return 0;
}

static void report_persisted(struct sl_node *n)
{
	if (!n->persist_due)
		return;
	n->persist_due = 0;
	sl_proto_on_persisted(n->proto, n->persist_epoch, n->persist_vote, n->now);
}

/* Forget the LSNs this node no longer holds. */
static void lsnmap_cut(struct sl_node *n, uint64_t lsn)
{
	while (n->lsnmap_n > 0 &&
	       n->lsnmap[(n->lsnmap_head + n->lsnmap_n - 1) % SL_NODE_LSN_MAP].last_lsn >= lsn)
		n->lsnmap_n--;
	if (n->lsnmap_floor >= lsn)
		n->lsnmap_floor = lsn - 1;
}

/* Elections: cut the log at `pos` (divergence repair, or only the engine's
 * records when pos is the log end), durably, then the engine forgets. */
static int op_truncate(void *ctx, uint64_t pos, uint64_t lsn)
{
	struct sl_node *n = ctx;
	int rc = sl_store_truncate_at(n->store, pos);

	if (rc < 0) {
		node_fail(n, rc, "truncating the log");
		return rc;
	}
	if (n->durable_told > pos)
		n->durable_told = pos;
	lsnmap_cut(n, lsn);
	sl_info("node %" PRIu32 ": log cut at position %" PRIu64 " (lsn %" PRIu64 " on are gone)",
		n->cfg.proto.node_id, pos, lsn);
	if (n->eng.truncate)
		n->eng.truncate(n->eng.ctx, lsn);
	return 0;
}

static const char *role_name(enum sl_role r)
{
	return r == SL_ROLE_LEADER ? "leader" : r == SL_ROLE_CANDIDATE ? "candidate" : "follower";
}

static void zs_drop(struct sl_node *n);

static void op_role(void *ctx, enum sl_role role, uint64_t epoch, uint32_t leader_id)
{
	struct sl_node *n = ctx;

	n->leading = role == SL_ROLE_LEADER;
	if (!n->leading)
		zs_drop(n);
	sl_info("node %" PRIu32 ": %s in epoch %" PRIu64 ", leader %" PRIu32, n->cfg.proto.node_id,
		role_name(role), epoch, leader_id);
	if (n->eng.role)
		n->eng.role(n->eng.ctx, role, epoch, leader_id);
}

/* ---- opening ---- */

/* A directory with no regular file in it is a new node's: create the log
 * there. Anything else is recovered (and refused if it is not a log), so a
 * node never initialises over files it does not know. */
static int dir_is_new(const char *dir, int *is_new)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return sl_err_set(errno, "log directory %s: %s", dir, strerror(errno));
	*is_new = 1;
	while (*is_new && (de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_type == DT_REG)
			*is_new = 0;
		else if (de->d_type == DT_UNKNOWN &&
			 fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			*is_new = !S_ISREG(st.st_mode);
	}
	closedir(d);
	return 0;
}

/* Sizes: one MTU for both layers, the MAC's room taken from the protocol's
 * share; the store's group fits the largest batch the protocol builds. */
static int settle_config(struct sl_node *n)
{
	struct sl_node_config *c = &n->cfg;
	uint32_t mtu = c->net.mtu ? c->net.mtu : c->proto.mtu ? c->proto.mtu : 1500;
	uint64_t raw_cap, need;

	c->net.mtu = mtu;
	c->proto.mtu = mtu - (c->key_file ? SL_FRAME_MAC_LEN : 0);
	sl_proto_config_defaults(&c->proto);
	if (!c->net.self_id)
		c->net.self_id = c->proto.node_id;
	if (c->net.self_id != c->proto.node_id)
		return sl_err_set(EINVAL, "transport self_id %" PRIu32 " is not node_id %" PRIu32,
				  c->net.self_id, c->proto.node_id);
	if (!c->rx_budget)
		c->rx_budget = RX_BUDGET_DEFAULT;
	if (!c->scrub_rate)
		c->scrub_rate = SL_NODE_SCRUB_RATE_DEFAULT;
	/* As the protocol sizes its batches (core/proto.c). */
	raw_cap = c->proto.batch_bytes > c->proto.limits.max_record_bytes + SL_REC_PREFIX
		      ? c->proto.batch_bytes
		      : c->proto.limits.max_record_bytes + SL_REC_PREFIX;
	if (raw_cap > c->proto.limits.max_raw_bytes)
		raw_cap = c->proto.limits.max_raw_bytes;
	n->raw_cap = raw_cap;
	n->batch_max = sl_batch_bound(raw_cap);
	if (c->pin_cpu) {
		cpu_set_t set;

		if (sched_getaffinity(0, sizeof(set), &set) < 0)
			return sl_err_set(errno, "sched_getaffinity: %s", strerror(errno));
		if (c->cpu >= CPU_SETSIZE || !CPU_ISSET(c->cpu, &set))
			return sl_err_set(
			    EINVAL, "cpu %" PRIu32 ": not a CPU this process may run on", c->cpu);
	}
	need = n->batch_max + STORE_GROUP_HDR;
	if (!c->store.group_bytes)
		c->store.group_bytes =
		    need > STORE_GROUP_DEFAULT ? (uint32_t)need : STORE_GROUP_DEFAULT;
	if (c->store.group_bytes < need)
		return sl_err_set(EINVAL,
				  "store group_bytes %" PRIu32
				  " cannot hold the largest batch (%" PRIu64
				  " bytes with its group header)",
				  c->store.group_bytes, need);
	memcpy(c->store.cluster_id, c->proto.cluster_id, sizeof(c->store.cluster_id));
	c->store.stream_id = c->proto.stream_id;
	c->store.node_id = c->proto.node_id;
	c->store.limits = c->proto.limits;
	return 0;
}

static int open_store(struct sl_node *n)
{
	struct sl_store_info info;
	int is_new = 0, rc;

	if (!n->cfg.store.dir)
		return sl_err_set(EINVAL, "no log directory");
	if ((rc = dir_is_new(n->cfg.store.dir, &is_new)))
		return rc;
	n->cfg.store.create = is_new;
	/* Corrupt batches followed by valid ones are kept for a peer to repair
	 * (never cut: they may be committed) where this node can follow. */
	n->cfg.store.repair_holes =
	    n->cfg.proto.elect || n->cfg.proto.leader_id != n->cfg.proto.node_id;
	if ((rc = sl_store_open(&n->store, &n->cfg.store)))
		return sl_err_wrap(rc, "%s log %s", is_new ? "creating" : "recovering",
				   n->cfg.store.dir);
	sl_store_get_info(n->store, &info);
	if (is_new)
		sl_info("node %" PRIu32 ": created log %s (%s I/O)", n->cfg.proto.node_id,
			n->cfg.store.dir, info.direct_io ? "direct" : "buffered");
	else
		sl_info("node %" PRIu32 ": recovered log %s: lsn %" PRIu64 "..%" PRIu64
			", position %" PRIu64 ", last epoch %" PRIu64 ", %" PRIu32
			" segments, %" PRIu64 " torn bytes cut, applied lsn %" PRIu64,
			n->cfg.proto.node_id, n->cfg.store.dir, info.first_lsn, info.next_lsn - 1,
			info.next_position, info.last_epoch, info.segments, info.torn_bytes,
			n->cfg.applied_lsn);
	return 0;
}

/* Recovery's holes go to the protocol, which has them fetched from a peer
 * once committed and keeps this node from leading meanwhile. */
static int keep_holes(struct sl_node *n)
{
	struct sl_store_bad holes[SL_STORE_HOLES_MAX];
	uint32_t nh = sl_store_holes(n->store, holes, SL_STORE_HOLES_MAX);
	struct sl_proto_status st;
	int rc;

	if (nh == 0)
		return 0;
	sl_proto_get_status(n->proto, &st);
	if (st.role == SL_ROLE_LEADER)
		return sl_err_set(EBADMSG,
				  "%" PRIu32 " corrupt batches (the first in segment %s at offset "
				  "%" PRIu64
				  ": %s) and this node would lead: nobody to repair them from",
				  nh, holes[0].segment, holes[0].offset, holes[0].why);
	for (uint32_t k = 0; k < nh; k++)
		if ((rc = sl_proto_hole(n->proto, holes[k].pos, holes[k].len, holes[k].leaf_hash)))
			return rc;
	sl_warn("node %" PRIu32 ": %" PRIu32 " corrupt batches kept for repair from a peer "
		"(first at position %" PRIu64 "); this node does not stand for election until "
		"they are repaired",
		n->cfg.proto.node_id, nh, holes[0].pos);
	return 0;
}

/* Where delivery resumes on a follower: after the batch holding the
 * engine's applied LSN, or at its start when the engine stopped inside it
 * (op_deliver then skips what was applied). */
static int applied_state(struct sl_node *n, const struct sl_store_info *info,
			 struct sl_log_state *ls)
{
	uint64_t lsn = n->cfg.applied_lsn;
	struct sl_batch_hdr h;
	uint8_t *buf;
	int len;

	if (n->cfg.proto.node_id == n->cfg.proto.leader_id)
		lsn = 0;
	else if (info->first_lsn > lsn + 1 && info->first_lsn < info->next_lsn) {
		/* Older segments were removed: what they held cannot be delivered
		 * again (a consumer resuming below is refused with -ERANGE). */
		sl_warn("node %" PRIu32 ": log %s starts at lsn %" PRIu64 ": delivery resumes "
			"there, not after applied lsn %" PRIu64,
			n->cfg.proto.node_id, n->cfg.store.dir, info->first_lsn, lsn);
		lsn = info->first_lsn - 1;
	}
	n->skip_through = lsn;
	if (lsn == 0)
		return 0;
	if (lsn > info->durable_lsn)
		return sl_err_set(
		    EINVAL, "the engine applied lsn %" PRIu64 " but log %s holds up to %" PRIu64,
		    lsn, n->cfg.store.dir, info->durable_lsn);
	buf = malloc(n->batch_max);
	if (!buf)
		return sl_err_set(ENOMEM, "read buffer");
	/* the batch holding lsn, or the log's first when it starts after lsn */
	len = sl_store_read(n->store, lsn < info->first_lsn ? info->first_lsn : lsn, buf,
			    n->batch_max, &h);
	free(buf);
	if (len < 0)
		return sl_err_wrap(len, "finding the batch of applied lsn %" PRIu64, lsn);
	if (h.base_lsn > lsn) {
		ls->applied_lsn = lsn;
		ls->applied_pos = h.position;
	} else if (h.base_lsn + h.record_count - 1 == lsn) {
		ls->applied_lsn = lsn;
		ls->applied_pos = h.position + (uint64_t)len;
	} else {
		ls->applied_lsn = h.base_lsn - 1;
		ls->applied_pos = h.position;
	}
	return 0;
}

/* Frames reach the transport in buffers reused for the next frame (the
 * protocol's header buffer, the join and the MAC signing here): a transport
 * may not keep a reference to them until flush, as DPDK's zero-copy sends
 * would. They copy. */
const struct sl_dpdk_opts sl_node_dpdk_opts = {.no_zero_copy = 1};

/* A port per peer (shiplog/transport.h: sl_peer_addr.port): each link a
 * DPDK transport of its own, from this node's address to that one peer,
 * and the node's transport the mesh of them. EAL comes up first with every
 * vdev of eal_args, so the ports can be found by name. */
static int open_dpdk_links(struct sl_node *n, struct sl_transport **out)
{
	const struct sl_transport_config *c = &n->cfg.net;
	struct sl_transport *links[SL_NODES_MAX];
	uint32_t ids[SL_NODES_MAX];
	unsigned k = 0;
	int rc = sl_dpdk_eal_init(c->eal_args);

	for (; rc == 0 && k < c->n_peers; k++) {
		struct sl_transport_config tc = *c;

		tc.n_peers = 1;
		tc.peers[0] = c->peers[k];
		ids[k] = c->peers[k].node_id;
		if (!c->peers[k].port) {
			rc = sl_err_set(EINVAL, "node %" PRIu32 " has no port of its own", ids[k]);
			break;
		}
		rc = sl_dpdk_port_by_name(c->peers[k].port, &tc.port_id);
		if (rc == 0)
			rc = sl_dpdk_transport_create_opts(&links[k], &tc, &sl_node_dpdk_opts);
		if (rc < 0) {
			rc = sl_err_wrap(rc, "port %s to node %" PRIu32, c->peers[k].port, ids[k]);
			break;
		}
	}
	if (rc == 0)
		rc = sl_mesh_create(out, links, ids, k);
	if (rc < 0)
		while (k-- > 0)
			links[k]->ops->destroy(links[k]);
	return rc;
}

static int open_transport(struct sl_node *n)
{
	int rc;

	if (n->cfg.make_transport) {
		rc = n->cfg.make_transport(n->cfg.make_transport_arg, &n->cfg.net, &n->tr);
		return rc ? sl_err_wrap(rc, "transport") : 0;
	}
	switch (n->cfg.transport) {
	case SL_TRANSPORT_UDP:
		rc = sl_udp_transport_create(&n->tr, &n->cfg.net);
		break;
	case SL_TRANSPORT_DPDK:
		if (n->cfg.net.n_peers > 0 && n->cfg.net.peers[0].port)
			rc = open_dpdk_links(n, &n->tr);
		else
			rc = sl_dpdk_transport_create_opts(&n->tr, &n->cfg.net, &sl_node_dpdk_opts);
		break;
	case SL_TRANSPORT_TCP:
		rc = sl_tcp_transport_create(&n->tr, &n->cfg.net);
		break;
	default:
		rc = sl_err_set(EINVAL, "unknown transport kind %d", (int)n->cfg.transport);
	}
	return rc ? sl_err_wrap(rc, "transport") : 0;
}

int sl_node_open(struct sl_node **out, const struct sl_node_config *c,
		 const struct sl_node_engine *engine)
{
	struct sl_proto_ops ops = {
	    .write = op_write,
	    .read = op_read,
	    .send = op_send,
	    .deliver = op_deliver,
	    .commit = op_commit,
	    .tree = op_tree,
	    .rewrite = op_rewrite,
	    .persist = op_persist,
	    .truncate = op_truncate,
	    .role = op_role,
	};
	struct sl_log_state ls = {0};
	struct sl_epoch_map epochs;
	struct sl_store_meta meta;
	struct sl_proto_status st;
	struct sl_store_info info;
	struct sl_node *n = calloc(1, sizeof(*n));
	int rc;

	if (!n)
		return sl_err_set(ENOMEM, "node state");
	n->cfg = *c;
	if (engine)
		n->eng = *engine;
	n->sleep_ns = BACKOFF_SLEEP_MIN;
	if ((rc = settle_config(n)))
		goto err;
	n->joinbuf = malloc(SL_FRAME_MAX);
	n->raw = malloc(n->cfg.proto.limits.max_raw_bytes);
	if (!n->joinbuf || !n->raw) {
		rc = sl_err_set(ENOMEM, "frame and record buffers");
		goto err;
	}
	if (c->key_file) {
		n->txbuf = malloc(SL_FRAME_MAX);
		if (!n->txbuf) {
			rc = sl_err_set(ENOMEM, "frame buffer");
			goto err;
		}
		if ((rc = sl_auth_load_key(&n->auth, c->key_file)))
			goto err;
		n->mac = 1;
	}
	if ((rc = open_store(n)))
		goto err;
	sl_store_hold(n->store, 1); /* submitted at the end of each turn */
	sl_store_get_info(n->store, &info);
	ls = (struct sl_log_state){.next_lsn = info.next_lsn,
				   .next_pos = info.next_position,
				   .last_crc = info.last_crc,
				   .durable_pos = info.durable_position};
	n->durable_told = info.durable_position;
	sl_store_meta_get(n->store, &meta);
	sl_store_epochs(n->store, &epochs);
	ls.current_epoch = meta.current_epoch;
	ls.voted_epoch = meta.voted_epoch;
	ls.voted_for = meta.voted_for;
	ls.epochs = &epochs;
	if ((rc = applied_state(n, &info, &ls)) || (rc = open_transport(n)))
		goto err;
	ops.ctx = n;
	if ((rc = sl_proto_create(&n->proto, &n->cfg.proto, &ls, &ops)))
		goto err;
	if ((rc = keep_holes(n)))
		goto err;
	sl_proto_get_status(n->proto, &st);
	n->leading = st.role == SL_ROLE_LEADER;
	/* With elections any node may come to lead. */
	if (n->cfg.compress_thread && (n->leading || n->cfg.proto.elect) &&
	    (rc = sl_zstage_open(&n->zs, SL_NODE_STAGE_SLOTS, n->raw_cap,
				 (int)n->cfg.proto.lz4_accel)))
		goto err;
	if (n->cfg.proto.elect)
		sl_info("node %" PRIu32 ": elections on: %s in epoch %" PRIu64
			" (persisted epoch %" PRIu64 ", vote %" PRIu32 " in %" PRIu64
			"), log's last epoch %" PRIu64 " of %" PRIu32 " in its map",
			n->cfg.proto.node_id, role_name(st.role), st.epoch, meta.current_epoch,
			meta.voted_for, meta.voted_epoch, st.last_epoch, epochs.n);
	/* The caller's strings need not outlive open. */
	n->cfg.key_file = NULL;
	n->cfg.store.dir = NULL;
	n->cfg.net.eal_args = NULL;
	for (uint32_t i = 0; i < n->cfg.net.n_peers; i++)
		n->cfg.net.peers[i].port = NULL;
	*out = n;
	return 0;
err:
	rc = sl_err_wrap(rc, "opening node %" PRIu32, c->proto.node_id);
	sl_node_close(n);
	return rc;
}

uint32_t sl_node_staged(const struct sl_node *n)
{
	return n->zs ? sl_zstage_pending(n->zs) + (n->zs_raw != NULL) : 0;
}

void sl_node_close(struct sl_node *n)
{
	if (!n)
		return;
	if (n->proto && !n->failed && n->leading)
		sl_proto_flush(n->proto, sl_node_now());
	if (n->tr && !n->failed)
		n->tr->ops->flush(n->tr);
	sl_proto_destroy(n->proto);
	if (n->tr)
		n->tr->ops->destroy(n->tr);
	sl_store_close(n->store); /* waits for the writes in flight */
	if (n->zs)
		sl_info("node %" PRIu32 ": the compressor stage encoded %" PRIu64
			" batches (%" PRIu32 " still held)",
			n->cfg.proto.node_id, n->st.stage_batches, sl_node_staged(n));
	sl_zstage_close(n->zs);
	sl_auth_clear(&n->auth);
	free(n->txbuf);
	free(n->joinbuf);
	free(n->raw);
	free(n);
}

/* ---- the loop ---- */

static void on_rx(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	struct sl_node *n = arg;

	(void)from; /* the protocol checks the sender named in the frame */
	if (n->mac && sl_auth_verify(&n->auth, frame, len) < 0) {
		n->st.mac_rejected++;
		return;
	}
	n->st.frames_rx++;
	if (__builtin_expect(n->trace != NULL, 0))
		trace_frame(n, frame, len, 1);
	sl_proto_on_frame(n->proto, frame, len, n->now);
}

static int reap_storage(struct sl_node *n)
{
	uint64_t durable, t0 = trace_mark(n);
	int rc = sl_store_poll(n->store, 0);

	if (t0)
		trace_submitted(n, t0);
	if (rc < 0) {
		sl_proto_on_storage_error(n->proto, rc);
		node_fail(n, rc, "storage");
		return rc;
	}
	durable = sl_store_durable_position(n->store);
	if (durable > n->durable_told) {
		n->durable_told = durable;
		n->st.durable_events++;
		TRACE(n, SL_TRACE_DURABLE, durable, 0);
		sl_proto_on_durable(n->proto, durable, n->now);
		rc++;
	}
	return rc;
}

/* Group commit (seal_when_log_idle, seal_when_idle): a leader whose log
 * has nothing in flight (and, for seal_when_idle, nothing uncommitted)
 * seals its open batch now rather than after the linger. */
static int seal_if_log_idle(struct sl_node *n)
{
	if (!(n->cfg.seal_when_log_idle || n->cfg.seal_when_idle) ||
	    !sl_proto_batch_open(n->proto) || !sl_store_idle(n->store))
		return 0;
	if (!n->cfg.seal_when_log_idle && !sl_proto_all_committed(n->proto))
		return 0;
	if (sl_proto_flush(n->proto, n->now) < 0)
		return 0;
	if (n->cfg.seal_when_log_idle)
		n->st.log_idle_seals++;
	else
		n->st.idle_seals++;
	return 1;
}

/* The protocol fails itself on errors it meets inside (a follower that
 * cannot read its own log back): look now and then. */
static void check_proto(struct sl_node *n)
{
	struct sl_proto_status st;

	sl_proto_get_status(n->proto, &st);
	if (st.failed) {
		sl_err_set(-st.failed, "the protocol failed");
		node_fail(n, st.failed, "protocol");
	}
}

static void flush_transport(struct sl_node *n)
{
	uint64_t t0 = trace_mark(n);

	if (n->tr->ops->flush(n->tr) < 0 && n->st.tx_errors++ == 0)
		sl_warn("node %" PRIu32 ": sending: %s", n->cfg.proto.node_id, sl_err_msg());
	if (t0)
		trace_sent(n, t0);
}

static int submit_writes(struct sl_node *n)
{
	uint64_t t0 = trace_mark(n);
	int rc = sl_store_submit(n->store);

	if (t0)
		trace_submitted(n, t0);
	if (rc < 0) {
		sl_proto_on_storage_error(n->proto, rc);
		node_fail(n, rc, "storage");
	}
	return rc;
}

/* What the turn queued leaves: frames and writes, in the order above.
 * Returns 0 or -errno. */
static int send_and_write(struct sl_node *n)
{
	int rc;

	if (!sl_proto_is_leader(n->proto)) {
		rc = submit_writes(n);
		flush_transport(n);
	} else {
		flush_transport(n);
		rc = submit_writes(n);
	}
	return rc;
}

/* ---- the compressor stage (compress_thread) ---- */

static void zs_seal(struct sl_node *n)
{
	if (!n->zs_raw)
		return;
	sl_zstage_submit(n->zs, n->zs_b.len, n->zs_b.count);
	n->zs_raw = NULL;
}

/* Encoded batches into the protocol, oldest first, until the window is
 * full; the backlog ends once the stage is empty. Batches taken, or -errno. */
static int zs_take(struct sl_node *n)
{
	const struct sl_zstage_out *o;
	int taken = 0;

	if (!n->zs_on)
		return 0;
	if (n->zs_raw && n->now - n->zs_open_ts >= n->cfg.proto.linger_ns)
		zs_seal(n);
	while ((o = sl_zstage_peek(n->zs))) {
		int64_t lsn = sl_proto_append_encoded(n->proto, &o->h, o->payload, n->now);

		if (!n->zs_on)
			return taken; /* the leadership went meanwhile (zs_drop) */
		if (lsn == -EAGAIN)
			break;
		if (lsn >= 0 && (uint64_t)lsn != n->zs_take_lsn + o->h.record_count - 1)
			lsn = sl_err_set(EPROTO,
					 "compressed batch of %" PRIu32 " records got lsn %" PRId64
					 ", not %" PRIu64,
					 o->h.record_count, lsn,
					 n->zs_take_lsn + o->h.record_count - 1);
		if (lsn < 0) {
			node_fail(n, (int)lsn, "compressor stage");
			return (int)lsn;
		}
		n->zs_take_lsn += o->h.record_count;
		n->st.stage_batches++;
		sl_zstage_pop(n->zs);
		taken++;
	}
	if (!n->zs_raw && sl_zstage_pending(n->zs) == 0)
		n->zs_on = 0;
	return taken;
}

/* The leadership is lost (a step-down, a higher epoch, fencing): the
 * stage's records end as the protocol's open batch does then, never in the
 * log, their LSNs promised for nothing. The engine forgets them (its
 * clients' appends are fenced by the epoch) and a new leadership starts
 * with the stage empty. */
static void zs_drop(struct sl_node *n)
{
	uint64_t first = n->zs_take_lsn, records = n->zs_next_lsn - n->zs_take_lsn;

	if (!n->zs_on)
		return;
	n->zs_raw = NULL;
	sl_zstage_drop(n->zs);
	n->zs_on = 0;
	if (records == 0)
		return;
	sl_info("node %" PRIu32 ": no longer leading: lsn %" PRIu64 "..%" PRIu64
		" of the compressor stage are dropped",
		n->cfg.proto.node_id, first, first + records - 1);
	if (n->eng.truncate)
		n->eng.truncate(n->eng.ctx, first);
}

/* An append with the stage: into the protocol's open batch while it has
 * room; the record that would fill it seals it there and starts a backlog,
 * whose records fill the stage's slots. */
static int64_t zs_append(struct sl_node *n, const void *rec, uint32_t len, uint64_t now)
{
	uint32_t batch = n->cfg.proto.batch_bytes;
	int rc;

	if (!n->zs_on) {
		size_t open = sl_proto_open_bytes(n->proto);

		if (open == 0 || open + SL_REC_PREFIX + len < batch ||
		    len > n->cfg.proto.limits.max_record_bytes || !sl_proto_is_leader(n->proto))
			return sl_proto_append(n->proto, rec, len, now);
		if ((rc = sl_proto_flush(n->proto, now)) < 0)
			return rc; /* -EAGAIN: the window is full */
		n->zs_on = 1;
		n->zs_next_lsn = n->zs_take_lsn = sl_proto_next_lsn(n->proto);
	}
	if (len > n->cfg.proto.limits.max_record_bytes)
		return sl_err_set(EMSGSIZE, "record of %u bytes over the limit %u", len,
				  n->cfg.proto.limits.max_record_bytes);
	if (n->zs_raw && n->zs_b.len + SL_REC_PREFIX + len > batch)
		zs_seal(n);
	if (!n->zs_raw) {
		if (!(n->zs_raw = sl_zstage_slot(n->zs)))
			return -EAGAIN; /* every slot busy: poll and retry */
		sl_batch_builder_init(&n->zs_b, n->zs_raw, n->raw_cap);
		n->zs_open_ts = now;
	}
	rc = sl_batch_builder_add(&n->zs_b, rec, len);
	assert(rc == 0);
	if (n->zs_b.len >= batch)
		zs_seal(n);
	return (int64_t)n->zs_next_lsn++;
}

/* New work: the engine's own appends, then the poller's (its clients'),
 * then what the compressor stage encoded. */
static int take_work(struct sl_node *n)
{
	int events = n->eng.take ? n->eng.take(n->eng.ctx) : 0;

	events += n->poller.take ? n->poller.take(n->poller.arg) : 0;
	return events + (n->zs ? zs_take(n) : 0);
}

/* The loop's thread onto its configured CPU, at its first turn (the thread
 * that opened the node need not be the one that runs it). */
static int pin_loop(struct sl_node *n)
{
	cpu_set_t set;
	int rc;

	CPU_ZERO(&set);
	CPU_SET(n->cfg.cpu, &set);
	if ((rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set)))
		return sl_err_set(rc, "node %" PRIu32 ": pinning the loop to CPU %" PRIu32 ": %s",
				  n->cfg.proto.node_id, n->cfg.cpu, strerror(rc));
	n->pinned = 1;
	sl_info("node %" PRIu32 ": loop thread pinned to CPU %" PRIu32, n->cfg.proto.node_id,
		n->cfg.cpu);
	return 0;
}

int sl_node_poll(struct sl_node *n)
{
	int events, taken, rc;

	if (n->failed)
		return n->failed;
	if (n->cfg.pin_cpu && !n->pinned && (rc = pin_loop(n)))
		return rc;
	n->now = sl_node_now();
	n->st.turns++;
	taken = take_work(n);
	events = n->tr->ops->poll(n->tr, on_rx, n, n->cfg.rx_budget);
	if (events < 0) {
		/* Transport trouble is logged once; the counter tells the rest. */
		if (n->st.rx_errors++ == 0)
			sl_warn("node %" PRIu32 ": receiving: %s", n->cfg.proto.node_id,
				sl_err_msg());
		events = 0;
	}
	events += taken;
	if (sl_proto_next_timer(n->proto) <= n->now) {
		sl_proto_tick(n->proto, n->now);
		n->st.timer_ticks++;
		events++;
	}
	if (n->persist_due) {
		report_persisted(n);
		events++;
	}
	if (n->poller.poll) {
		if ((rc = n->poller.poll(n->poller.arg, n->now)) < 0) {
			if (n->poller_errors++ == 0)
				sl_warn("node %" PRIu32 ": clients: %s", n->cfg.proto.node_id,
					sl_err_msg());
			rc = 0;
		}
		events += rc;
	}
	if (n->persist_due) {
		report_persisted(n);
		events++;
	}
	if ((rc = reap_storage(n)) < 0)
		return rc;
	events += rc;
	events += take_work(n);
	events += seal_if_log_idle(n);
	events += scrub_step(n);
	if ((rc = send_and_write(n)) < 0)
		return rc;
	if (n->poller.after)
		n->poller.after(n->poller.arg);
	if (n->st.turns % STATUS_CHECK_TURNS == 0)
		check_proto(n);
	if (events == 0)
		n->st.idle_turns++;
	return n->failed ? n->failed : events;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static void set_slack(struct sl_node *n)
{
	if (!n->slack_set) {
		prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS);
		n->slack_set = 1;
	}
}

/* The next timed event: the protocol's timer, the scrub's step, the open
 * compressor slot's linger or the caller's deadline, whichever is first;
 * with timer_early_ns, that much before it (the rest is spun). */
static uint64_t next_timed(const struct sl_node *n, uint64_t deadline)
{
	uint64_t until = sl_proto_next_timer(n->proto);

	if (n->scrub_at < until)
		until = n->scrub_at;
	if (n->zs_raw && n->zs_open_ts + n->cfg.proto.linger_ns < until)
		until = n->zs_open_ts + n->cfg.proto.linger_ns; /* the open slot's linger */
	if (deadline < until)
		until = deadline;
	return until > n->cfg.timer_early_ns ? until - n->cfg.timer_early_ns : 0;
}

/* Sleep in the kernel until a frame or a storage completion arrives, the
 * protocol's next timer or `deadline` (at most BLOCK_MAX_NS). An idle node
 * then costs no CPU, which on a machine with fewer cores than nodes is what
 * the busy ones need, and wakes when its work arrives rather than at the
 * end of a sleep. 1 when it slept or found work pending, 0 when the
 * transport cannot be waited for (DPDK ports without a doorbell: poll,
 * yield and sleep instead). */
static int block(struct sl_node *n, uint64_t now, uint64_t deadline)
{
	struct pollfd fds[4] = {
	    {.events = POLLIN}, {.events = POLLIN}, {.events = POLLIN}, {.events = POLLIN}};
	uint64_t until = next_timed(n, deadline);
	nfds_t nfds = 2;
	struct timespec ts;

	if (!n->tr->ops->wait_fd)
		return 0;
	/* Nothing queued may wait for the sleep (an engine's append between
	 * turns can seal a batch). */
	if (send_and_write(n) < 0)
		return 1;
	if ((fds[0].fd = n->tr->ops->wait_fd(n->tr)) < 0)
		return fds[0].fd == -EAGAIN;
	fds[1].fd = sl_store_wait_fd(n->store);
	if (until <= now)
		return 1;
	if (until - now > BLOCK_MAX_NS)
		until = now + BLOCK_MAX_NS;
	ts = (struct timespec){.tv_sec = (time_t)((until - now) / 1000000000ull),
			       .tv_nsec = (long)((until - now) % 1000000000ull)};
	/* The poller's doorbell (a client's work) wakes us too. */
	if (n->poller.sleep && (fds[nfds++].fd = n->poller.sleep(n->poller.arg, 1)) < 0)
		return 1; /* work arrived: no sleep */
	/* ... and so does the compressor stage's next encoded batch. */
	if (n->zs_on) {
		if (sl_zstage_arm(n->zs)) {
			if (n->poller.sleep)
				n->poller.sleep(n->poller.arg, 0);
			return 1;
		}
		fds[nfds++].fd = sl_zstage_wait_fd(n->zs);
	}
	set_slack(n);
	TRACE(n, SL_TRACE_SLEEP, 0, 0);
	ppoll(fds, nfds, &ts, NULL);
	TRACE(n, SL_TRACE_WAKE, 0, 0);
	if (n->poller.sleep)
		n->poller.sleep(n->poller.arg, 0);
	if (n->zs_on)
		sl_zstage_disarm(n->zs);
	n->st.blocks++;
	return 1;
}

static int stage_full(struct sl_node *n)
{
	return n->zs_on && !n->zs_raw && !sl_zstage_slot(n->zs) && !sl_zstage_peek(n->zs);
}

void sl_node_idle_until(struct sl_node *n, int events, uint64_t deadline)
{
	struct timespec ts;
	uint64_t now;

	/* Batches wait for the compressor stage's thread: encode one here
	 * rather than idle (one thread woken less, and two encoding). */
	if (events > 0 || (n->zs_on && sl_zstage_help(n->zs))) {
		n->idle_streak = 0;
		n->sleep_ns = BACKOFF_SLEEP_MIN;
		return;
	}
	if (n->cfg.idle == SL_IDLE_SPIN) {
		cpu_relax();
		return;
	}
	if (n->cfg.idle == SL_IDLE_YIELD) {
		sched_yield();
		return;
	}
	if (n->idle_streak < BACKOFF_SPINS + BACKOFF_YIELDS)
		n->idle_streak++;
	/* Every stage slot busy: nothing comes sooner than its next batch,
	 * whose encoding takes far longer than a spin (and the core). */
	if (n->idle_streak < BACKOFF_SPINS && !stage_full(n)) {
		cpu_relax();
		return;
	}
	now = sl_node_now();
	/* A timed event within timer_early_ns: spin to it. */
	if (n->cfg.timer_early_ns && next_timed(n, deadline) <= now) {
		cpu_relax();
		return;
	}
	/* A waitable transport: sleep until there is work (nap: on the
	 * timer, whatever the transport). */
	if (n->cfg.idle != SL_IDLE_NAP && block(n, now, deadline))
		return;
	/* A poller's sleep wakes on its doorbell (a client's work), so go
	 * straight to it: on a busy machine a yield can cost a whole time
	 * slice, with nothing to cut it short. */
	if (n->idle_streak < BACKOFF_SPINS + BACKOFF_YIELDS && !n->poller.sleep) {
		sched_yield();
		return;
	}
	if (send_and_write(n) < 0)
		return;
	set_slack(n);
	ts = (struct timespec){.tv_nsec = (long)n->sleep_ns};
	if (deadline > now && deadline - now < n->sleep_ns)
		ts.tv_nsec = (long)(deadline - now);
	if (!n->poller.sleep) {
		TRACE(n, SL_TRACE_SLEEP, 0, 0);
		nanosleep(&ts, NULL);
		TRACE(n, SL_TRACE_WAKE, 0, 0);
	} else {
		struct pollfd p = {.events = POLLIN};

		if ((p.fd = n->poller.sleep(n->poller.arg, 1)) < 0)
			return; /* work arrived: no sleep */
		ppoll(&p, 1, &ts, NULL);
		n->poller.sleep(n->poller.arg, 0);
	}
	n->st.sleeps++;
	n->sleep_ns = n->sleep_ns * 2 > BACKOFF_SLEEP_MAX ? BACKOFF_SLEEP_MAX : n->sleep_ns * 2;
}

void sl_node_idle(struct sl_node *n, int events)
{
	sl_node_idle_until(n, events, UINT64_MAX);
}

int sl_node_run(struct sl_node *n, const volatile int *stop)
{
	while (!*stop) {
		int rc = sl_node_poll(n);

		if (rc < 0)
			return rc;
		sl_node_idle(n, rc);
	}
	return 0;
}

/* ---- the engine's calls ---- */

int64_t sl_node_append(struct sl_node *n, const void *rec, uint32_t len)
{
	int64_t lsn;

	if (n->failed)
		return n->failed;
	lsn = n->zs ? zs_append(n, rec, len, sl_node_now())
		    : sl_proto_append(n->proto, rec, len, sl_node_now());
	if (lsn > 0)
		TRACE(n, SL_TRACE_APPEND, (uint64_t)lsn, 0);
	return lsn;
}

int sl_node_flush(struct sl_node *n)
{
	int rc;

	if (n->failed)
		return n->failed;
	if (n->zs_on) {
		/* The open slot goes to the stage, behind the others. */
		zs_seal(n);
		n->now = sl_node_now();
		rc = zs_take(n);
		send_and_write(n);
		return rc < 0 ? rc : 0;
	}
	rc = sl_proto_flush(n->proto, sl_node_now());
	/* Send and write now: the caller is about to wait for what it flushed. */
	send_and_write(n);
	return rc;
}

int sl_node_transfer(struct sl_node *n, uint32_t target)
{
	return n->failed ? n->failed : sl_proto_transfer(n->proto, target, sl_node_now());
}

int sl_node_stepdown(struct sl_node *n)
{
	return n->failed ? n->failed : sl_proto_stepdown(n->proto, sl_node_now());
}

int sl_node_force_lead(struct sl_node *n)
{
	return n->failed ? n->failed : sl_proto_force_lead(n->proto, sl_node_now());
}

void sl_node_set_poller(struct sl_node *n, const struct sl_node_poller *p)
{
	n->poller = p ? *p : (struct sl_node_poller){0};
}

void sl_node_applied(struct sl_node *n, uint64_t lsn)
{
	sl_proto_on_applied(n->proto, lsn, sl_node_now());
}

void sl_node_status(const struct sl_node *n, struct sl_proto_status *out)
{
	sl_proto_get_status(n->proto, out);
}

void sl_node_transport_stats(const struct sl_node *n, struct sl_transport_stats *out)
{
	n->tr->ops->stats(n->tr, out);
}

void sl_node_stats(const struct sl_node *n, struct sl_node_stats *out)
{
	*out = n->st;
}

void sl_node_store_info(const struct sl_node *n, struct sl_store_info *out)
{
	sl_store_get_info(n->store, out);
}

void sl_node_tree(const struct sl_node *n, struct sl_store_tree *out)
{
	sl_store_tree(n->store, out);
}

const char *sl_node_segment_of(const struct sl_node *n, uint64_t pos)
{
	return sl_store_segment_of(n->store, pos);
}

int sl_node_read_pos(struct sl_node *n, uint64_t pos, void *buf, size_t cap, struct sl_batch_hdr *h)
{
	return sl_store_read_pos(n->store, pos, buf, cap, h);
}

int sl_node_read(struct sl_node *n, uint64_t lsn, void *buf, size_t cap, struct sl_batch_hdr *h)
{
	return sl_store_read(n->store, lsn, buf, cap, h);
}

const struct sl_node_config *sl_node_get_config(const struct sl_node *n)
{
	return &n->cfg;
}

size_t sl_node_batch_max(const struct sl_node *n)
{
	return n->batch_max;
}
