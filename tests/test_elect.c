/* Elections, fencing and divergence repair on a small in-memory cluster
 * whose superblock writes (the persist op) complete only when the test says:
 * votes wait for them; N - W + 1 votes elect; a silent leader is replaced
 * and, back, fenced (it steps down and its appends are refused); a deposed
 * leader cuts its uncommitted suffix and converges byte for byte; a node
 * that still hears its leader refuses pre-votes; and a follower never cuts
 * below what it knows is committed; a new leader whose uncommitted tail
 * cannot be read gets it back from a follower that holds it, and gives it up
 * (steps down, cuts) when none does. The randomized version of all this is
 * tests/sim (shiplog-sim). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shiplog/epoch.h"
#include "shiplog/frame.h"
#include "shiplog/merkle.h"
#include "shiplog/proto.h"

#define E_NODES	    5
#define E_LOG	    (4u << 20)
#define E_QUEUE	    8192
#define E_TIMEOUT   20000000ull /* election timeout: 20 ms */
#define E_HEARTBEAT 2000000ull

struct e_frame {
	uint32_t from, to, len;
	uint8_t buf[SL_FRAME_MAX];
};

struct e_node {
	uint32_t id;
	struct sl_proto *p;
	uint8_t *log;
	uint64_t written;
	int manual_persist; /* persist completes only through e_persist() */
	int persist_pending;
	uint64_t pers_epoch, sb_epoch;
	uint32_t pers_vote, sb_vote;
	uint64_t truncations, engine_lsn;
	enum sl_role role;
	uint64_t epoch;
	uint64_t commit_lsn;
	struct sl_merkle tree; /* with_tree: over the written batches */
	uint64_t leaf_pos[1024];
	uint64_t rewrites;
};

/* Set before e_init: nodes get the tree and rewrite ops (anti-entropy). */
static int with_tree;

static struct {
	uint32_t n;
	struct e_node nodes[E_NODES];
	struct e_frame *q;
	uint32_t q_head, q_len;
	int cut[E_NODES + 1][E_NODES + 1]; /* by id: frames from -> to dropped */
	uint64_t now;
	struct sl_proto_config cfg;
} E;

static struct e_node *node(uint32_t id)
{
	return &E.nodes[id - 1];
}

/* ---- ops ---- */

static int op_write(void *ctx, const uint8_t *b, size_t len, uint64_t pos)
{
	struct e_node *n = ctx;

	if (pos != n->written || pos + len > E_LOG)
		return -EIO;
	memcpy(n->log + pos, b, len);
	n->written += len;
	sl_proto_on_durable(n->p, n->written, E.now);
	return 0;
}

/* As the store reads: a batch that does not verify is an I/O error. */
static int op_read(void *ctx, uint64_t pos, uint8_t *buf, size_t cap)
{
	struct e_node *n = ctx;
	struct sl_batch_hdr h;
	int len;

	if (pos >= n->written)
		return -ENOENT;
	len = sl_batch_verify(n->log + pos, n->written - pos, &sl_batch_default_limits, &h);
	if (len < 0)
		return -EIO;
	if ((size_t)len > cap)
		return -ENOSPC;
	memcpy(buf, n->log + pos, (size_t)len);
	return len;
}

/* The tree over every written batch, as leaves appended (from the headers:
 * a payload that rotted since keeps its leaf). */
static int op_tree(void *ctx, struct sl_proto_tree *t)
{
	struct e_node *n = ctx;
	struct sl_batch_hdr h;
	uint64_t pos = 0, k = 0;

	sl_merkle_reset(&n->tree);
	for (; pos < n->written && k < 1024; pos += SL_BATCH_HDR_SIZE + h.stored_len) {
		if (sl_batch_decode_hdr(n->log + pos, n->written - pos, &sl_batch_default_limits,
					&h) < 0 ||
		    sl_merkle_add(&n->tree, sl_merkle_leaf(pos, SL_BATCH_HDR_SIZE + h.stored_len,
							   h.hdr_crc)) < 0)
			return -EIO;
		n->leaf_pos[k++] = pos;
	}
	*t = (struct sl_proto_tree){
	    .m = &n->tree, .leaf_pos = n->leaf_pos, .leaves = k, .sealed = k};
	return 0;
}

static int op_rewrite(void *ctx, uint64_t pos, const uint8_t *b, size_t len)
{
	struct e_node *n = ctx;

	if (pos + len > n->written)
		return -EINVAL;
	memcpy(n->log + pos, b, len);
	n->rewrites++;
	return 0;
}

static int op_send(void *ctx, uint32_t to, const uint8_t *head, size_t head_len,
		   const uint8_t *body, size_t body_len)
{
	struct e_node *n = ctx;
	struct e_frame *f;

	if (E.q_len == E_QUEUE || head_len + body_len > sizeof(f->buf))
		return -ENOBUFS;
	f = &E.q[(E.q_head + E.q_len++) % E_QUEUE];
	f->from = n->id;
	f->to = to;
	f->len = (uint32_t)(head_len + body_len);
	memcpy(f->buf, head, head_len);
	if (body_len > 0)
		memcpy(f->buf + head_len, body, body_len);
	return 0;
}

static int op_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *batch, size_t len)
{
	struct e_node *n = ctx;

	(void)batch;
	(void)len;
	if (h->base_lsn == n->engine_lsn + 1)
		n->engine_lsn = h->base_lsn + h->record_count - 1;
	sl_proto_on_applied(n->p, n->engine_lsn, E.now);
	return 0;
}

static void op_commit(void *ctx, uint64_t lsn, uint64_t pos)
{
	struct e_node *n = ctx;

	(void)pos;
	n->commit_lsn = lsn;
}

static int op_persist(void *ctx, uint64_t epoch, uint32_t vote)
{
	struct e_node *n = ctx;

	assert_false(n->persist_pending); /* one at a time */
	n->persist_pending = 1;
	n->pers_epoch = epoch;
	n->pers_vote = vote;
	return 0;
}

static int op_truncate(void *ctx, uint64_t pos, uint64_t lsn)
{
	struct e_node *n = ctx;

	assert_true(pos <= n->written);
	n->written = pos;
	n->truncations++;
	if (n->engine_lsn >= lsn)
		n->engine_lsn = lsn - 1;
	return 0;
}

static void op_role(void *ctx, enum sl_role role, uint64_t epoch, uint32_t leader)
{
	struct e_node *n = ctx;

	(void)leader;
	n->role = role;
	n->epoch = epoch;
}

/* ---- the cluster ---- */

static void e_persist(struct e_node *n)
{
	if (!n->persist_pending)
		return;
	n->persist_pending = 0;
	n->sb_epoch = n->pers_epoch;
	n->sb_vote = n->pers_vote;
	sl_proto_on_persisted(n->p, n->sb_epoch, n->sb_vote, E.now);
}

/* Start node `nd` over `log` (its superblock's epoch and vote). */
static int e_start(struct e_node *nd, const struct sl_log_state *log)
{
	struct sl_proto_ops ops = {.ctx = nd,
				   .write = op_write,
				   .read = op_read,
				   .send = op_send,
				   .deliver = op_deliver,
				   .commit = op_commit,
				   .persist = op_persist,
				   .truncate = op_truncate,
				   .role = op_role,
				   .tree = with_tree ? op_tree : NULL,
				   .rewrite = with_tree ? op_rewrite : NULL};
	struct sl_proto_config c = E.cfg;
	struct sl_proto_status st;
	int rc;

	c.node_id = nd->id;
	c.rng_seed = 77;
	if ((rc = sl_proto_create(&nd->p, &c, log, &ops)))
		return rc;
	sl_proto_get_status(nd->p, &st);
	nd->role = st.role;
	nd->epoch = st.epoch;
	return 0;
}

/* Restart node `id` over its first `keep` bytes (the rest was not synced),
 * its engine at `applied_lsn` ending at `applied_pos`, as recovery would:
 * the epoch map from the batch headers. */
static void e_restart(uint32_t id, uint64_t keep, uint64_t applied_lsn, uint64_t applied_pos)
{
	struct e_node *nd = node(id);
	struct sl_epoch_map map;
	struct sl_log_state log = {.next_lsn = 1,
				   .applied_lsn = applied_lsn,
				   .applied_pos = applied_pos,
				   .current_epoch = nd->sb_epoch,
				   .voted_epoch = nd->sb_epoch,
				   .voted_for = nd->sb_vote,
				   .epochs = &map};
	struct sl_batch_hdr h;

	sl_epoch_map_reset(&map);
	for (uint64_t pos = 0; pos < keep; pos += SL_BATCH_HDR_SIZE + h.stored_len) {
		assert_int_equal(
		    sl_batch_decode_hdr(nd->log + pos, keep - pos, &sl_batch_default_limits, &h),
		    0);
		assert_true(sl_epoch_map_note(&map, h.epoch, pos, h.base_lsn, h.prev_crc) >= 0);
		log.next_lsn = h.base_lsn + h.record_count;
		log.last_crc = h.hdr_crc;
	}
	sl_proto_destroy(nd->p);
	nd->written = keep;
	nd->engine_lsn = applied_lsn;
	log.next_pos = log.durable_pos = keep;
	assert_int_equal(e_start(nd, &log), 0);
}

static int e_init(uint32_t n, int acks)
{
	struct sl_log_state log = {.next_lsn = 1};

	memset(&E, 0, sizeof(E));
	E.n = n;
	E.now = 1000000;
	E.q = calloc(E_QUEUE, sizeof(*E.q));
	if (!E.q)
		return -ENOMEM;
	memcpy(E.cfg.cluster_id, "elect-test-clust", 16);
	E.cfg.stream_id = 4;
	E.cfg.n_nodes = n;
	E.cfg.leader_id = 1;
	E.cfg.epoch = 5;
	E.cfg.policy = (struct sl_ack_policy){.acks = acks, .level = SL_ACK_DURABLE};
	E.cfg.rcv_window_bytes = 1 << 20;
	E.cfg.window_bytes = 1 << 20;
	E.cfg.batch_bytes = 4096;
	E.cfg.heartbeat_ns = E_HEARTBEAT;
	E.cfg.elect = 1;
	E.cfg.election_timeout_ns = E_TIMEOUT;
	E.cfg.limits = (struct sl_batch_limits){.max_raw_bytes = 1 << 20, .max_record_bytes = 8192};
	for (uint32_t i = 0; i < n; i++)
		E.cfg.node_ids[i] = i + 1;
	for (uint32_t i = 0; i < n; i++) {
		struct e_node *nd = &E.nodes[i];
		int rc;

		nd->id = i + 1;
		nd->log = malloc(E_LOG);
		if (!nd->log || sl_merkle_init(&nd->tree, 1024) < 0)
			return -ENOMEM;
		if ((rc = e_start(nd, &log)))
			return rc;
		e_persist(nd); /* the first leader's claim on the configured epoch */
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (uint32_t i = 0; i < E.n; i++) {
		sl_proto_destroy(E.nodes[i].p);
		free(E.nodes[i].log);
		sl_merkle_destroy(&E.nodes[i].tree);
	}
	free(E.q);
	with_tree = 0;
	return 0;
}

/* Deliver queued frames (links cut drop them), completing persists that are
 * not manual; up to `max`. */
static void e_run(uint32_t max)
{
	for (uint32_t moved = 0; E.q_len > 0 && moved < max; moved++) {
		struct e_frame f = E.q[E.q_head];

		E.q_head = (E.q_head + 1) % E_QUEUE;
		E.q_len--;
		if (!E.cut[f.from][f.to])
			sl_proto_on_frame(node(f.to)->p, f.buf, f.len, E.now);
		E.now += 2000;
		for (uint32_t i = 0; i < E.n; i++)
			if (!E.nodes[i].manual_persist)
				e_persist(&E.nodes[i]);
	}
}

/* Move time forward in steps, running timers and the network. */
static void e_advance(uint64_t ns)
{
	for (uint64_t end = E.now + ns; E.now < end;) {
		E.now += 500000;
		for (uint32_t i = 0; i < E.n; i++) {
			sl_proto_tick(E.nodes[i].p, E.now);
			if (!E.nodes[i].manual_persist)
				e_persist(&E.nodes[i]);
		}
		e_run(100000);
	}
}

static void isolate(uint32_t id, int cut)
{
	for (uint32_t j = 1; j <= E.n; j++)
		if (j != id)
			E.cut[id][j] = E.cut[j][id] = cut;
}

/* The engine on a leader holds what it appends. */
static int64_t append(uint32_t id, uint32_t len)
{
	static uint8_t rec[8192];
	int64_t lsn;

	memset(rec, (int)(id * 17 + len), len);
	lsn = sl_proto_append(node(id)->p, rec, len, E.now);
	if (lsn > 0)
		node(id)->engine_lsn = (uint64_t)lsn;
	return lsn;
}

/* Append until `count` records are accepted on `id` (retrying -EAGAIN). */
/* A frame header of this cluster and stream, as a peer would send it. */
static void forged_hdr(struct sl_frame *f, uint64_t epoch, uint32_t sender, uint32_t receiver)
{
	memcpy(f->hdr.cluster_id, E.cfg.cluster_id, 16);
	f->hdr.stream_id = E.cfg.stream_id;
	f->hdr.epoch = epoch;
	f->hdr.sender = sender;
	f->hdr.receiver = receiver;
}

static void append_n(uint32_t id, int count)
{
	for (int i = 0, tries = 0; i < count && tries < 10000; tries++) {
		int64_t lsn = append(id, 300);

		if (lsn > 0) {
			i++;
			continue;
		}
		assert_int_equal(lsn, -EAGAIN);
		e_advance(1000000);
	}
	sl_proto_flush(node(id)->p, E.now);
}

static uint32_t leader_count(uint64_t *epoch, uint32_t *who)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < E.n; i++)
		if (E.nodes[i].role == SL_ROLE_LEADER) {
			n++;
			*epoch = E.nodes[i].epoch;
			*who = E.nodes[i].id;
		}
	return n;
}

/* How many queued frames of `type` (with or without PRE) `from` sent. */
static uint32_t queued(uint32_t from, uint8_t type, int pre)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < E.q_len; i++) {
		const struct e_frame *f = &E.q[(E.q_head + i) % E_QUEUE];
		struct sl_frame d;

		if (f->from != from || sl_frame_decode(f->buf, f->len, &d) < 0 ||
		    d.hdr.type != type)
			continue;
		if (type == SL_FRAME_VOTE_REQ && !!(d.vreq.flags & SL_VOTE_F_PRE) != pre)
			continue;
		if (type == SL_FRAME_VOTE && !!(d.vote.flags & SL_VOTE_F_PRE) != pre)
			continue;
		n++;
	}
	return n;
}

/* ---- tests ---- */

/* The first leader replicates; when it falls silent, a follower is elected
 * in a higher epoch it owns, and commits what was committed before plus
 * new records. */
static void silent_leader_replaced(void **state)
{
	struct sl_proto_status st;
	uint64_t epoch, commit_before;
	uint32_t who;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	assert_int_equal(node(1)->role, SL_ROLE_LEADER);
	append_n(1, 50);
	e_advance(10000000);
	commit_before = node(1)->commit_lsn;
	assert_int_equal(commit_before, 50);
	isolate(1, 1);
	e_advance(4 * E_TIMEOUT);
	/* 1 still thinks it leads until it hears otherwise (or its lease ends). */
	assert_true(node(2)->role == SL_ROLE_LEADER || node(3)->role == SL_ROLE_LEADER);
	who = node(2)->role == SL_ROLE_LEADER ? 2 : 3;
	epoch = node(who)->epoch;
	assert_true(epoch > 5);
	assert_int_equal(epoch % 16, who - 1); /* the epoch its rank owns */
	append_n(who, 30);
	e_advance(10000000);
	assert_int_equal(node(who)->commit_lsn, 80);
	sl_proto_get_status(node(who)->p, &st);
	assert_int_equal(st.elections_won, 1);
	/* 1 stepped down when its followers stopped answering. */
	assert_int_equal(node(1)->role, SL_ROLE_FOLLOWER);
	isolate(1, 0);
	e_advance(4 * E_TIMEOUT);
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_int_equal(node(1)->engine_lsn, 80);
	assert_int_equal(node(1)->written, node(who)->written);
	assert_memory_equal(node(1)->log, node(who)->log, node(who)->written);
}

/* A follower whose log has a hole (recovery kept a corrupt batch for a peer
 * to repair) does not stand and cannot be forced to lead: with holes in
 * both followers, the silent leader is not replaced (they would be a
 * quorum); with one, the other is elected. */
static void a_log_with_a_hole_does_not_lead(void **state)
{
	struct sl_proto_status st;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 20);
	e_advance(10000000);
	assert_int_equal(sl_proto_hole(node(2)->p, 0, 100, 1), 0);
	assert_int_equal(sl_proto_hole(node(3)->p, 0, 100, 1), 0);
	assert_int_equal(sl_proto_force_lead(node(2)->p, E.now), -EAGAIN);
	isolate(1, 1);
	e_advance(10 * E_TIMEOUT);
	for (uint32_t id = 2; id <= 3; id++) {
		sl_proto_get_status(node(id)->p, &st);
		assert_int_equal(st.role, SL_ROLE_FOLLOWER);
		assert_int_equal(st.elections, 0);
		assert_int_equal(st.entropy.holes, 1);
	}
}

/* A candidate sends VOTE_REQ only once its own vote is persisted, and a
 * voter sends its VOTE only once that vote is persisted. */
static void votes_wait_for_persist(void **state)
{
	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	for (uint32_t i = 1; i <= 3; i++)
		node(i)->manual_persist = 1;
	append_n(1, 5);
	e_advance(5000000);
	assert_int_equal(node(1)->commit_lsn, 5);
	isolate(1, 1);
	/* Until someone stands: pre-votes need no persist. */
	for (int i = 0; i < 400 && !node(2)->persist_pending && !node(3)->persist_pending; i++) {
		E.now += 500000;
		for (uint32_t j = 1; j <= 3; j++)
			sl_proto_tick(node(j)->p, E.now);
		e_run(100000);
	}
	uint32_t cand = node(2)->persist_pending ? 2 : 3, voter = 5 - cand;

	assert_true(node(cand)->persist_pending);
	assert_int_equal(node(cand)->role, SL_ROLE_CANDIDATE);
	assert_int_equal(node(cand)->pers_vote, cand);
	assert_int_equal(queued(cand, SL_FRAME_VOTE_REQ, 0), 0);
	e_persist(node(cand));
	assert_int_equal(queued(cand, SL_FRAME_VOTE_REQ, 0), 2);
	E.cut[cand][1] = 1;
	e_run(100000);
	assert_true(node(voter)->persist_pending);
	assert_int_equal(node(voter)->pers_epoch, node(cand)->epoch);
	assert_int_equal(node(voter)->pers_vote, cand);
	assert_int_equal(queued(voter, SL_FRAME_VOTE, 0), 0);
	assert_int_equal(node(cand)->role, SL_ROLE_CANDIDATE);
	e_persist(node(voter));
	assert_int_equal(queued(voter, SL_FRAME_VOTE, 0), 1);
	e_run(100000);
	assert_int_equal(node(cand)->role, SL_ROLE_LEADER);
}

/* acks=all (W = N): one vote elects, the candidate's own; acks=0 (W = 1):
 * every node must vote, so with the leader gone nobody is elected. */
static void vote_quorum_follows_the_policy(void **state)
{
	uint64_t epoch;
	uint32_t who;

	(void)state;
	assert_int_equal(e_init(3, SL_ACKS_ALL), 0);
	isolate(1, 1);
	isolate(2, 1);
	isolate(3, 1);
	e_advance(4 * E_TIMEOUT);
	assert_true(node(2)->role == SL_ROLE_LEADER || node(3)->role == SL_ROLE_LEADER);
	teardown(NULL);

	assert_int_equal(e_init(3, 0), 0);
	e_advance(5000000);
	isolate(1, 1);
	e_advance(10 * E_TIMEOUT);
	assert_int_equal(node(2)->role, SL_ROLE_FOLLOWER);
	assert_int_equal(node(3)->role, SL_ROLE_FOLLOWER);
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_int_equal(who, 1);
	/* Pre-votes kept 2 and 3 from raising their epochs: 1 is followed again. */
	assert_int_equal(node(2)->epoch, 5);
	isolate(1, 0);
	append_n(1, 3);
	e_advance(5000000);
	assert_int_equal(node(1)->commit_lsn, 3);
}

/* A leader cut off while it accepts appends is replaced; back, it is fenced:
 * it steps down, refuses appends, cuts the suffix nobody else has, and ends
 * with the new leader's log byte for byte. */
static void deposed_leader_fenced_and_cut(void **state)
{
	struct sl_proto_status st;
	uint32_t who;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 20);
	e_advance(5000000);
	assert_int_equal(node(1)->commit_lsn, 20);
	isolate(1, 1);
	for (int i = 0; i < 10; i++)
		assert_true(append(1, 200) > 0); /* accepted, never committed */
	sl_proto_flush(node(1)->p, E.now);
	/* Long enough to be replaced, too short for its lease to end. */
	for (int i = 0;
	     i < 1000 && node(2)->role != SL_ROLE_LEADER && node(3)->role != SL_ROLE_LEADER; i++) {
		E.now += 500000;
		sl_proto_tick(node(2)->p, E.now);
		sl_proto_tick(node(3)->p, E.now);
		e_run(100000);
	}
	who = node(2)->role == SL_ROLE_LEADER ? 2 : 3;
	append_n(who, 5);
	isolate(1, 0);
	e_advance(4 * E_TIMEOUT);
	assert_int_equal(node(1)->role, SL_ROLE_FOLLOWER);
	assert_int_equal(node(1)->epoch, node(who)->epoch);
	assert_int_equal(append(1, 10), -EPERM);
	sl_proto_get_status(node(1)->p, &st);
	assert_int_equal(st.step_downs, 1);
	assert_true(st.truncations >= 1);
	assert_int_equal(node(1)->engine_lsn, 25); /* its 10 own records forgotten */
	assert_int_equal(node(1)->commit_lsn, 20);
	assert_int_equal(node(1)->written, node(who)->written);
	assert_memory_equal(node(1)->log, node(who)->log, node(who)->written);
}

/* A follower that still hears its leader answers a pre-vote "no", and
 * nothing changes (no epoch raised, no persist). */
static void prevote_refused_while_leader_heard(void **state)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_VOTE_REQ};
	uint8_t buf[SL_FRAME_MAX];
	int len;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 5);
	e_advance(5000000);
	E.q_len = 0;
	forged_hdr(&f, 5, 3, 2);
	f.vreq = (struct sl_frame_vote_req){
	    .last_epoch = 5, .last_pos = 1u << 20, .flags = SL_VOTE_F_PRE};
	len = sl_frame_encode(&f, buf, sizeof(buf));
	assert_true(len > 0);
	sl_proto_on_frame(node(2)->p, buf, (size_t)len, E.now);
	assert_int_equal(E.q_len, 1);
	{
		struct sl_frame r;

		assert_int_equal(sl_frame_decode(E.q[E.q_head].buf, E.q[E.q_head].len, &r), 0);
		assert_int_equal(r.hdr.type, SL_FRAME_VOTE);
		assert_int_equal(r.vote.granted, 0);
		assert_int_equal(r.vote.flags, SL_VOTE_F_PRE);
	}
	assert_int_equal(node(2)->epoch, 5);
	assert_false(node(2)->persist_pending);
	assert_int_equal(node(2)->sb_epoch, 0);
}

/* A follower never cuts below what it knows is committed: an EPOCH_END that
 * would have it do so fails it instead (-EPROTO). */
static void never_cuts_below_commit(void **state)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_HEARTBEAT};
	struct sl_proto_status st;
	uint8_t buf[SL_FRAME_MAX];
	uint64_t written;
	int len;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 20);
	e_advance(5000000);
	written = node(2)->written;
	sl_proto_get_status(node(2)->p, &st);
	assert_int_equal(st.safe_pos, written);
	/* A leader of a later epoch (owned by node 3: 5 - 5 % 16 + 2 + 16) with
	 * a log that leaves 2's at position 0. */
	forged_hdr(&f, 18, 3, 2);
	f.hb = (struct sl_frame_hb){.leader_end = 96, .commit_pos = 0, .leader_ts = E.now};
	len = sl_frame_encode(&f, buf, sizeof(buf));
	sl_proto_on_frame(node(2)->p, buf, (size_t)len, E.now);
	assert_int_equal(node(2)->epoch, 18);
	assert_int_equal(queued(2, SL_FRAME_EPOCH_REQ, 0), 1);
	f.hdr.type = SL_FRAME_EPOCH_END;
	f.eend = (struct sl_frame_epoch_end){.epoch = 0, .end_pos = 0, .end_lsn = 1};
	len = sl_frame_encode(&f, buf, sizeof(buf));
	sl_proto_on_frame(node(2)->p, buf, (size_t)len, E.now);
	sl_proto_get_status(node(2)->p, &st);
	assert_int_equal(st.failed, -EPROTO);
	assert_int_equal(node(2)->truncations, 0);
	assert_int_equal(node(2)->written, written);
}

/* Frames of a lower epoch change nothing; a leader's DATA or HEARTBEAT of
 * a lower epoch is answered, once per heartbeat interval, with a denied
 * vote of the current epoch, which deposes that leader. */
static void lower_epoch_fenced(void **state)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_HEARTBEAT}, r;
	struct sl_proto_status before, after;
	uint8_t buf[SL_FRAME_MAX];
	int len;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 5);
	e_advance(5000000);
	E.q_len = 0;
	forged_hdr(&f, 4, 3, 2);
	f.hb = (struct sl_frame_hb){.leader_end = 1 << 20, .commit_pos = 1 << 20};
	len = sl_frame_encode(&f, buf, sizeof(buf));
	sl_proto_get_status(node(2)->p, &before);
	sl_proto_on_frame(node(2)->p, buf, (size_t)len, E.now);
	sl_proto_on_frame(node(2)->p, buf, (size_t)len, E.now + 1000);
	sl_proto_get_status(node(2)->p, &after);
	assert_int_equal(after.frames_stale, before.frames_stale + 2);
	assert_int_equal(after.safe_pos, before.safe_pos);
	assert_int_equal(after.epoch, 5);
	assert_int_equal(E.q_len, 1);
	assert_int_equal(sl_frame_decode(E.q[E.q_head].buf, E.q[E.q_head].len, &r), 0);
	assert_int_equal(r.hdr.type, SL_FRAME_VOTE);
	assert_int_equal(r.hdr.epoch, 5);
	assert_int_equal(r.vote.granted, 0);
	/* That denied vote, sent to a leader of epoch 4, deposes it. */
	assert_int_equal(node(1)->role, SL_ROLE_LEADER);
	r.hdr.epoch = 6;
	r.hdr.receiver = 1;
	len = sl_frame_encode(&r, buf, sizeof(buf));
	sl_proto_on_frame(node(1)->p, buf, (size_t)len, E.now);
	assert_int_equal(node(1)->role, SL_ROLE_FOLLOWER);
	assert_int_equal(node(1)->epoch, 6);
	assert_int_equal(append(1, 10), -EPERM);
}

/* A candidate whose pre-vote passed but whose log is behind by the time its
 * vote request arrives (the voter was still taking in the dead leader's
 * frames): the voter refuses, and asks for pre-votes itself at once rather
 * than a whole draw later, and wins. */
static void refused_vote_for_a_shorter_log_stands_at_once(void **state)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_VOTE_REQ};
	struct sl_proto_status st;
	uint8_t buf[SL_FRAME_MAX];
	uint64_t epoch = 0;
	uint32_t who = 0;
	int len;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 20);
	e_advance(5000000);
	isolate(2, 1);
	append_n(1, 5); /* node 3 holds 5 records more than node 2 */
	e_advance(2000000);
	isolate(1, 1); /* the leader dies */
	isolate(2, 0);
	isolate(1, 1);
	E.now += E_TIMEOUT; /* neither has heard it for a timeout, neither stood yet */
	sl_proto_get_status(node(2)->p, &st);
	E.q_len = 0;
	/* Node 2's vote request in an epoch it owns (epoch % 16 is its index). */
	forged_hdr(&f, 5 + 16 - 5 % 16 + 1, 2, 3);
	f.vreq = (struct sl_frame_vote_req){
	    .last_epoch = st.last_epoch, .last_pos = st.log_end, .last_lsn = st.next_lsn - 1};
	len = sl_frame_encode(&f, buf, sizeof(buf));
	assert_true(len > 0);
	sl_proto_on_frame(node(3)->p, buf, (size_t)len, E.now);
	assert_int_equal(queued(3, SL_FRAME_VOTE, 0), 1);     /* refused */
	assert_int_equal(queued(3, SL_FRAME_VOTE_REQ, 1), 2); /* and asks at once */
	e_run(100);
	e_advance(E_TIMEOUT / 4); /* well before any draw of node 3's own */
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_int_equal(who, 3);
	append_n(3, 5);
	e_advance(5000000);
	assert_int_equal(node(3)->commit_lsn, 30);
}

/* shipctl promote: the leader waits for the target to hold its whole log
 * (appends refused meanwhile), hands over, and the target leads the next
 * epoch it owns with every record; nothing committed is lost and the cluster
 * takes appends again. stepdown: the leader leaves, another is elected. */
static void transfer_and_stepdown(void **state)
{
	uint64_t epoch = 0;
	uint32_t who = 0;

	(void)state;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 30);
	assert_int_equal(sl_proto_transfer(node(2)->p, 3, E.now), -EPERM);
	assert_int_equal(sl_proto_transfer(node(1)->p, 1, E.now), -EINVAL);
	assert_int_equal(sl_proto_transfer(node(1)->p, 9, E.now), -EINVAL);
	/* Node 3 falls behind first, so the leader must wait for it. */
	isolate(3, 1);
	append_n(1, 10);
	assert_int_equal(sl_proto_transfer(node(1)->p, 3, E.now), 0);
	assert_int_equal(append(1, 10), -EAGAIN);
	e_advance(3000000);
	assert_int_equal(node(1)->role, SL_ROLE_LEADER);
	isolate(3, 0);
	e_advance(4 * E_TIMEOUT);
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_int_equal(who, 3);
	assert_int_equal(epoch % 16, 2);
	assert_int_equal(node(1)->role, SL_ROLE_FOLLOWER);
	assert_int_equal(node(1)->commit_lsn, 40);
	append_n(3, 5);
	e_advance(5000000);
	assert_int_equal(node(3)->commit_lsn, 45);
	for (uint32_t i = 1; i <= 2; i++) {
		assert_int_equal(node(i)->written, node(3)->written);
		assert_memory_equal(node(i)->log, node(3)->log, node(3)->written);
	}

	assert_int_equal(sl_proto_stepdown(node(1)->p, E.now), -EPERM);
	assert_int_equal(sl_proto_stepdown(node(3)->p, E.now), 0);
	assert_int_equal(node(3)->role, SL_ROLE_FOLLOWER);
	e_advance(4 * E_TIMEOUT);
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_true(who != 3); /* it stands no sooner than the others */
	append_n(who, 5);
	e_advance(5000000);
	assert_int_equal(node(who)->commit_lsn, 50);
}

/* Node 2 holds a tail of 10 records node 1 appended in epoch 5 that nobody
 * committed (node 3 was away, node 2's acks lost), node 1 lost it unsynced
 * in a crash, and node 2 restarts with the tail's first batch rotten on
 * disk. With node 1 away, node 2 is elected; it cannot send that batch and
 * nobody can send it back a good copy. Once both followers have told it
 * where their logs end (before the batch), it gives the tail up: steps
 * down, cuts its log there, and a new epoch goes on from that position. */
static void an_unreadable_tail_nobody_holds_is_given_up(void **state)
{
	struct sl_proto_status st;
	uint64_t tail, led, epoch = 0;
	uint32_t who = 0;

	(void)state;
	with_tree = 1;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 20);
	e_advance(5000000);
	assert_int_equal(node(1)->commit_lsn, 20);
	tail = node(1)->written;
	isolate(3, 1);
	E.cut[2][1] = 1; /* node 2 receives, its acks are lost */
	append_n(1, 10);
	e_advance(1000000);
	assert_true(node(2)->written > tail);
	assert_int_equal(node(1)->commit_lsn, 20);
	isolate(1, 1);
	e_restart(1, tail, 20, tail); /* its tail was not synced */
	e_restart(2, node(2)->written, 20, tail);
	node(2)->log[tail + SL_BATCH_HDR_SIZE + 7] ^= 0x10; /* rot in the payload */
	isolate(3, 0);
	isolate(1, 1);
	e_advance(10 * E_TIMEOUT);
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_int_equal(who, 2); /* the longest log */
	led = epoch;
	assert_true(node(2)->written > tail);
	sl_proto_get_status(node(2)->p, &st);
	assert_int_equal(st.entropy.tails_given_up, 0); /* node 1 may hold it */
	isolate(1, 0);
	e_advance(10 * E_TIMEOUT);
	sl_proto_get_status(node(2)->p, &st);
	assert_int_equal(st.entropy.tails_given_up, 1);
	assert_true(st.step_downs >= 1);
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_true(epoch > led); /* waits on the given-up LSNs ended with it */
	append_n(who, 5);
	e_advance(5000000);
	assert_int_equal(node(who)->commit_lsn, 25);
	for (uint32_t i = 1; i <= 3; i++) {
		assert_int_equal(node(i)->written, node(who)->written);
		assert_memory_equal(node(i)->log, node(who)->log, node(who)->written);
		assert_int_equal(node(i)->engine_lsn, 25);
	}
	assert_int_equal(node(2)->rewrites, 0);
}

/* The same, but node 1 keeps the tail: node 2 leads, fetches a good copy
 * of the rotten batch from node 1 once it reports holding it, and commits
 * the tail. */
static void an_unreadable_tail_a_follower_holds_is_repaired(void **state)
{
	uint64_t tail, epoch = 0;
	uint32_t who = 0;
	struct sl_proto_status st;

	(void)state;
	with_tree = 1;
	assert_int_equal(e_init(3, 1), 0);
	append_n(1, 20);
	e_advance(5000000);
	tail = node(1)->written;
	isolate(3, 1);
	E.cut[2][1] = 1;
	append_n(1, 10);
	e_advance(1000000);
	isolate(1, 1);
	e_restart(2, node(2)->written, 20, tail);
	node(2)->log[tail + SL_BATCH_HDR_SIZE + 7] ^= 0x10;
	isolate(3, 0);
	isolate(1, 1);
	e_advance(10 * E_TIMEOUT);
	assert_int_equal(leader_count(&epoch, &who), 1);
	assert_int_equal(who, 2);
	isolate(1, 0);
	e_advance(10 * E_TIMEOUT);
	sl_proto_get_status(node(2)->p, &st);
	assert_int_equal(st.entropy.tails_given_up, 0);
	assert_int_equal(node(2)->rewrites, 1);
	assert_int_equal(node(2)->role, SL_ROLE_LEADER);
	append_n(2, 5);
	e_advance(5000000);
	assert_int_equal(node(2)->commit_lsn, 35);
	for (uint32_t i = 1; i <= 3; i++) {
		assert_int_equal(node(i)->written, node(2)->written);
		assert_memory_equal(node(i)->log, node(2)->log, node(2)->written);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(silent_leader_replaced, teardown),
	    cmocka_unit_test_teardown(a_log_with_a_hole_does_not_lead, teardown),
	    cmocka_unit_test_teardown(votes_wait_for_persist, teardown),
	    cmocka_unit_test_teardown(vote_quorum_follows_the_policy, teardown),
	    cmocka_unit_test_teardown(deposed_leader_fenced_and_cut, teardown),
	    cmocka_unit_test_teardown(prevote_refused_while_leader_heard, teardown),
	    cmocka_unit_test_teardown(never_cuts_below_commit, teardown),
	    cmocka_unit_test_teardown(lower_epoch_fenced, teardown),
	    cmocka_unit_test_teardown(transfer_and_stepdown, teardown),
	    cmocka_unit_test_teardown(refused_vote_for_a_shorter_log_stands_at_once, teardown),
	    cmocka_unit_test_teardown(an_unreadable_tail_nobody_holds_is_given_up, teardown),
	    cmocka_unit_test_teardown(an_unreadable_tail_a_follower_holds_is_repaired, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
