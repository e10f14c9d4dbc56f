/* Anti-entropy: a follower compares the Merkle tree over its sealed,
 * committed batches with the leader's, from the root down to the first batch
 * that differs (TREE_REQ / TREE, one subtree hash per round trip), and any
 * node fetches a good copy of a batch its scrub found bad, or of the batch
 * the comparison found different (REPAIR_REQ / REPAIR), and has it rewritten
 * in place. The tree and the rewrite are ops;
 * the decisions are here. See docs/failover.md. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"
#include "shiplog/err.h"

#define ANSWER_MIN_NS  50000000ull   /* wait this long at least for an answer */
#define ASK_TRIES      3	     /* a tree question is asked this many times */
#define REPAIR_TRIES   6	     /* a batch is asked for this many times */
#define NOTHING_YET_NS 1000000000ull /* nothing to compare: look again after */

enum { PH_IDLE, PH_ROOT, PH_PEAK, PH_DOWN };

const char *sl_entropy_result_name(enum sl_entropy_result r)
{
	switch (r) {
	case SL_ENTROPY_EQUAL:
		return "equal";
	case SL_ENTROPY_DIFFER:
		return "differ";
	case SL_ENTROPY_INCOMPARABLE:
		return "incomparable";
	case SL_ENTROPY_TIMEOUT:
		return "timeout";
	default:
		return "none";
	}
}

int sl_entropy_init(struct sl_proto *p)
{
	struct sl_entropy *e = &p->ent;

	e->on = p->ops.tree != NULL;
	if (!e->on)
		return 0;
	e->next_at = 0; /* at once, when it first hears a leader */
	e->rbuf = malloc(p->enc_cap);
	e->sbuf = malloc(p->enc_cap);
	e->rbits = calloc((p->frag_max + 63) / 64, sizeof(uint64_t));
	if (!e->rbuf || !e->sbuf || !e->rbits)
		return sl_err_set(ENOMEM, "anti-entropy buffers");
	return 0;
}

void sl_entropy_free(struct sl_proto *p)
{
	free(p->ent.rbuf);
	free(p->ent.sbuf);
	free(p->ent.rbits);
}

static uint64_t answer_ns(const struct sl_proto *p)
{
	return 5 * p->cfg.heartbeat_ns > ANSWER_MIN_NS ? 5 * p->cfg.heartbeat_ns : ANSWER_MIN_NS;
}

static int get_tree(struct sl_proto *p, struct sl_proto_tree *t)
{
	memset(t, 0, sizeof(*t));
	return p->ops.tree(p->ops.ctx, t) < 0 || t->m == NULL ? -ENOENT : 0;
}

/* Leaves whose batch starts before `pos`. */
static uint64_t leaves_before(const struct sl_proto_tree *t, uint64_t pos)
{
	uint64_t lo = 0, hi = t->leaves;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (t->leaf_pos[mid] < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The leaf of the batch starting exactly at `pos`: 0 and its index, or
 * -ENOENT when no batch of ours starts there. */
static int leaf_at(const struct sl_proto_tree *t, uint64_t pos, uint64_t *j)
{
	*j = leaves_before(t, pos);
	return *j < t->leaves && t->leaf_pos[*j] == pos ? 0 : -ENOENT;
}

/* What this node can compare: leaves of sealed segments whose batches are
 * committed (as far as it knows). */
static uint64_t comparable(const struct sl_proto *p, const struct sl_proto_tree *t)
{
	uint64_t committed = p->role == SL_ROLE_LEADER ? p->commit_pos : p->safe_pos;
	uint64_t n = leaves_before(t, committed);

	return n < t->sealed ? n : t->sealed;
}

/* ---- answering ---- */

static void on_tree_req(struct sl_proto *p, const struct sl_frame *f)
{
	const struct sl_frame_tree_req *q = &f->treq;
	struct sl_frame a = {.hdr.type = SL_FRAME_TREE};
	struct sl_proto_tree t;
	uint64_t n;

	if (get_tree(p, &t) < 0)
		return;
	n = comparable(p, &t);
	a.tree = (struct sl_frame_tree){.leaves = q->leaves,
					.base_pos = t.base_pos,
					.level = q->level,
					.index = q->index,
					.sealed = n};
	if (n > 0 && q->base_pos != t.base_pos)
		a.tree.status = SL_TREE_BASE;
	else if (q->leaves == 0 || q->leaves > n)
		a.tree.status = SL_TREE_SHORT;
	else if (q->level == SL_TREE_ROOT)
		a.tree.hash = sl_merkle_root_at(t.m, q->leaves);
	else if (q->index >= (q->leaves >> q->level) ||
		 sl_merkle_node(t.m, q->level, q->index, &a.tree.hash) < 0)
		a.tree.status = SL_TREE_SHORT; /* not a complete subtree of the prefix */
	sl_proto_send(p, f->hdr.sender, &p->ent.seq, &a);
}

/* Send the batch at `pos` if this node holds it durably and it reads back
 * whole (the read op verifies it: a bad copy here is not sent). Committed
 * or not: the asker takes it only if it matches the leaf it appended. */
static void on_repair_req(struct sl_proto *p, const struct sl_frame *f)
{
	struct sl_entropy *e = &p->ent;
	uint64_t pos = f->rreq.pos;
	struct sl_frame d = {.hdr.type = SL_FRAME_REPAIR};
	struct sl_proto_tree t;
	uint64_t j;
	int n;

	if (f->rreq.len > p->enc_cap || pos + f->rreq.len > p->durable_pos || get_tree(p, &t) < 0)
		return;
	/* Past the commit our batches may start elsewhere: read only one of ours. */
	if (leaf_at(&t, pos, &j) < 0)
		return;
	n = p->ops.read(p->ops.ctx, pos, e->sbuf, p->enc_cap);
	if (n < 0 || (uint32_t)n != f->rreq.len)
		return;
	d.data.batch_pos = pos;
	d.data.batch_len = (uint32_t)n;
	for (uint32_t off = 0; off < (uint32_t)n; off += p->frag_unit) {
		d.data.frag_off = off;
		d.data.frag = e->sbuf + off;
		d.data.frag_len =
		    (uint32_t)n - off < p->frag_unit ? (uint32_t)n - off : p->frag_unit;
		sl_proto_send(p, f->hdr.sender, &e->seq, &d);
	}
	e->st.repairs_served++;
}

/* ---- comparing ---- */

static void ask(struct sl_proto *p, uint32_t level, uint64_t index, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	struct sl_frame q = {.hdr.type = SL_FRAME_TREE_REQ};

	e->level = level;
	e->index = index;
	e->asked_at = now;
	q.treq = (struct sl_frame_tree_req){
	    .leaves = e->leaves, .base_pos = e->base, .level = level, .index = index};
	sl_proto_send(p, e->peer, &e->seq, &q);
}

static void finish(struct sl_proto *p, enum sl_entropy_result r, uint64_t leaf, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	struct sl_proto_tree t;

	e->phase = PH_IDLE;
	e->next_at = now + p->cfg.entropy_interval_ns;
	e->st.comparisons++;
	e->st.last_ns = now;
	e->st.last_peer = e->peer;
	e->st.last_leaves = e->leaves;
	e->st.last_result = r;
	e->st.diff_leaf = e->st.diff_pos = 0;
	if (r == SL_ENTROPY_DIFFER) {
		e->st.differences++;
		e->st.diff_leaf = leaf;
		if (get_tree(p, &t) == 0 && leaf < t.leaves)
			e->st.diff_pos = t.leaf_pos[leaf];
	} else if (r == SL_ENTROPY_INCOMPARABLE) {
		e->st.incomparable++;
	} else if (r == SL_ENTROPY_TIMEOUT) {
		e->st.timeouts++;
	}
}

/* Leaf `leaf` differs from the peer's, whose hash is `theirs`: a valid
 * batch that is not the committed one (another batch copied there, or one of
 * another history). It is below the commit position, so it is replaced in
 * place with the peer's copy, never cut; a copy of another length cannot
 * be (the repair finds none to take) and stays reported. */
static void found(struct sl_proto *p, uint64_t leaf, uint64_t theirs, uint64_t now)
{
	struct sl_proto_tree t;

	finish(p, SL_ENTROPY_DIFFER, leaf, now);
	if (get_tree(p, &t) < 0 || leaf + 1 >= t.leaves) /* its length is not known */
		return;
	(void)sl_proto_repair(p, t.leaf_pos[leaf],
			      (uint32_t)(t.leaf_pos[leaf + 1] - t.leaf_pos[leaf]), theirs, now);
}

/* Start a comparison with the leader over what both can compare. */
static void start(struct sl_proto *p, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	struct sl_proto_tree t;

	e->next_at = now + p->cfg.entropy_interval_ns;
	if (get_tree(p, &t) < 0 || (e->leaves = comparable(p, &t)) == 0) {
		/* Nothing sealed and committed yet (a node that just started
		 * learns the commit from the leader): look again soon. */
		if (p->cfg.entropy_interval_ns > NOTHING_YET_NS)
			e->next_at = now + NOTHING_YET_NS;
		return;
	}
	e->peer = p->cfg.leader_id;
	e->base = t.base_pos;
	e->phase = PH_ROOT;
	e->tries = 0;
	ask(p, SL_TREE_ROOT, 0, now);
}

/* The peak of a prefix of n leaves that starts at leaf `start` (the peaks
 * before it cover [0, start)), or -1 past the last. The peak of level k
 * exists when bit k of n is set, and starts after the higher ones. */
static int next_peak(uint64_t n, uint64_t start)
{
	for (int k = SL_TREE_LEVEL_MAX; k >= 0; k--)
		if ((n >> k & 1) && (n >> k >> 1 << 1 << k) == start)
			return k;
	return -1;
}

/* The peer's hash for what was asked, against ours. */
static void on_hash(struct sl_proto *p, uint64_t theirs, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	struct sl_proto_tree t;
	uint64_t ours;
	int k;

	if (get_tree(p, &t) < 0 || t.leaves < e->leaves) { /* our log was cut meanwhile */
		e->phase = PH_IDLE;
		return;
	}
	e->tries = 0;
	if (e->phase == PH_ROOT) {
		if (sl_merkle_root_at(t.m, e->leaves) == theirs) {
			finish(p, SL_ENTROPY_EQUAL, 0, now);
			return;
		}
		e->phase = PH_PEAK;
		e->start = 0;
	} else {
		int same = sl_merkle_node(t.m, e->level, e->index, &ours) == 0 && ours == theirs;

		if (e->phase == PH_PEAK && same) {
			e->start += 1ull << e->level;
		} else {
			/* A differing subtree, or the equal left half of one: the
			 * difference is in it, or in its right sibling. */
			uint64_t i = same ? e->index + 1 : e->index;

			e->phase = PH_DOWN;
			if (e->level == 0 && !same) {
				found(p, e->index, theirs, now);
				return;
			}
			if (e->level == 0) {
				/* Its sibling differs: ask for its hash too, the
				 * one a good copy must match (a left child's, the
				 * descent's first leaf: else the trees changed). */
				if (e->index & 1)
					finish(p, SL_ENTROPY_DIFFER, i, now);
				else
					ask(p, 0, i, now);
				return;
			}
			ask(p, e->level - 1, 2 * i, now);
			return;
		}
	}
	k = next_peak(e->leaves, e->start);
	if (k < 0) { /* every peak agrees: the roots cannot have differed */
		finish(p, SL_ENTROPY_EQUAL, 0, now);
		return;
	}
	ask(p, (uint32_t)k, e->start >> k, now);
}

static void on_tree(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	const struct sl_frame_tree *a = &f->tree;

	if (e->phase == PH_IDLE || f->hdr.sender != e->peer || a->leaves != e->leaves ||
	    a->level != e->level || a->index != e->index)
		return; /* not the answer awaited (a late or duplicated one) */
	if (a->status == SL_TREE_BASE) {
		finish(p, SL_ENTROPY_INCOMPARABLE, 0, now);
	} else if (a->status == SL_TREE_SHORT) {
		/* The peer holds fewer: compare what it holds, from the root. */
		if (a->sealed == 0 || a->sealed >= e->leaves || e->phase != PH_ROOT) {
			finish(p, a->sealed == 0 ? SL_ENTROPY_EQUAL : SL_ENTROPY_TIMEOUT, 0, now);
			return;
		}
		e->leaves = a->sealed;
		ask(p, SL_TREE_ROOT, 0, now);
	} else {
		on_hash(p, a->hash, now);
	}
}

/* ---- holes ---- */

int sl_proto_hole(struct sl_proto *p, uint64_t pos, uint32_t len, uint64_t leaf)
{
	struct sl_entropy *e = &p->ent;

	if (e->nholes == SL_PROTO_REPAIRS_MAX)
		return sl_err_set(ENOSPC, "hole at %llu: %d holes already", (unsigned long long)pos,
				  SL_PROTO_REPAIRS_MAX);
	e->holes[e->nholes++] = (struct sl_repair){.pos = pos, .len = len, .leaf = leaf};
	return 0;
}

uint64_t sl_entropy_first_hole(const struct sl_proto *p)
{
	uint64_t first = UINT64_MAX;

	for (uint32_t k = 0; k < p->ent.nholes; k++)
		if (p->ent.holes[k].pos < first)
			first = p->ent.holes[k].pos;
	return first;
}

static void hole_filled(struct sl_proto *p, uint64_t pos)
{
	struct sl_entropy *e = &p->ent;

	for (uint32_t k = 0; k < e->nholes; k++)
		if (e->holes[k].pos == pos) {
			e->holes[k] = e->holes[--e->nholes];
			return;
		}
}

/* The log was cut at `pos`: holes and repairs past it went with it. */
void sl_entropy_cut(struct sl_proto *p, uint64_t pos)
{
	struct sl_entropy *e = &p->ent;
	uint32_t kept = 0;

	for (uint32_t k = e->nholes; k-- > 0;)
		if (e->holes[k].pos + e->holes[k].len > pos)
			e->holes[k] = e->holes[--e->nholes];
	for (uint32_t k = 0; k < e->nwant; k++)
		if (e->want[k].pos + e->want[k].len <= pos)
			e->want[kept++] = e->want[k];
	e->nwant = kept;
	if (e->rlen && e->rpos + e->rlen > pos)
		e->rlen = 0; /* the next one is taken at the next tick */
}

/* Ask for each hole the commit position has passed (a hole repair that
 * failed its retries is asked for again: this node cannot lead without). */
static void ask_holes(struct sl_proto *p, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	uint64_t committed = p->role == SL_ROLE_LEADER ? p->commit_pos : p->safe_pos;

	for (uint32_t k = 0; k < e->nholes && e->nwant < SL_PROTO_REPAIRS_MAX; k++)
		if (e->holes[k].pos + e->holes[k].len <= committed)
			(void)sl_proto_repair(p, e->holes[k].pos, e->holes[k].len, e->holes[k].leaf,
					      now);
}

/* ---- repairing ---- */

int sl_proto_repair(struct sl_proto *p, uint64_t pos, uint32_t len, uint64_t leaf, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	/* A follower's batch past the commit may be of another history: that
	 * is divergence repair's. A leader's log is the reference: any durable
	 * batch of it may be fetched back from a follower holding the same
	 * (its only readable copy may be what followers still need). */
	uint64_t committed = p->role == SL_ROLE_LEADER ? p->durable_pos : p->safe_pos;

	(void)now;
	if (!e->on || !p->ops.rewrite)
		return sl_err_set(EINVAL, "repair: no tree or rewrite op");
	if (len == 0 || len > p->enc_cap)
		return sl_err_set(EINVAL, "repair: batch of %u bytes at %llu", len,
				  (unsigned long long)pos);
	if (pos + len > committed)
		return sl_err_set(EAGAIN,
				  "repair: batch at %llu not below the commit position %llu",
				  (unsigned long long)pos, (unsigned long long)committed);
	for (uint32_t i = 0; i < e->nwant; i++)
		if (e->want[i].pos == pos)
			return 0;
	if (e->rlen && e->rpos == pos)
		return 0;
	if (e->nwant == SL_PROTO_REPAIRS_MAX)
		return sl_err_set(ENOSPC, "repair: %d batches queued already",
				  SL_PROTO_REPAIRS_MAX);
	e->want[e->nwant++] = (struct sl_repair){.pos = pos, .len = len, .leaf = leaf};
	return 0;
}

/* Who holds the batch ending at `end` committed: the leader, or for a
 * leader a follower that holds it durably (a different one each try). */
static uint32_t repair_source(const struct sl_proto *p, uint64_t end, uint32_t tries)
{
	if (p->role == SL_ROLE_FOLLOWER)
		return p->cfg.leader_id;
	if (p->role != SL_ROLE_LEADER)
		return 0;
	for (uint32_t k = 0; k < p->n_peers; k++) {
		const struct sl_peer *peer = &p->peers[(k + tries) % p->n_peers];

		if (peer->durable >= end)
			return peer->id;
	}
	return 0;
}

static void repair_ask(struct sl_proto *p, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	struct sl_frame q = {.hdr.type = SL_FRAME_REPAIR_REQ};

	e->rpeer = repair_source(p, e->rpos + e->rlen, e->rtries);
	e->r_at = now;
	e->rtries++;
	memset(e->rbits, 0, (p->frag_max + 63) / 64 * sizeof(uint64_t));
	e->rgot = 0;
	if (e->rpeer == 0)
		return; /* nobody to ask now: try again after the answer time */
	q.rreq = (struct sl_frame_repair_req){.pos = e->rpos, .len = e->rlen};
	sl_proto_send(p, e->rpeer, &e->seq, &q);
}

static void repair_next(struct sl_proto *p, uint64_t now)
{
	struct sl_entropy *e = &p->ent;

	e->rlen = 0;
	if (e->nwant == 0)
		return;
	e->rpos = e->want[0].pos;
	e->rlen = e->want[0].len;
	e->rleaf = e->want[0].leaf;
	e->rtries = 0;
	memmove(e->want, e->want + 1, --e->nwant * sizeof(e->want[0]));
	e->st.repairs_asked++;
	repair_ask(p, now);
}

static void repair_done(struct sl_proto *p, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	struct sl_batch_hdr h;
	int rc = sl_batch_verify(e->rbuf, e->rlen, &p->cfg.limits, &h);

	if (rc != (int)e->rlen || h.position != e->rpos ||
	    sl_merkle_leaf(h.position, e->rlen, h.hdr_crc) != e->rleaf) {
		/* Not the batch appended here: ask again when the answer time is
		 * up (a leader asks another follower), a bounded number of times. */
		e->rpeer = 0;
		return;
	}
	if (p->ops.rewrite(p->ops.ctx, e->rpos, e->rbuf, e->rlen) < 0) {
		e->st.repairs_failed++;
	} else {
		e->st.repairs++;
		hole_filled(p, e->rpos);
		if (p->role == SL_ROLE_FOLLOWER)
			sl_follower_deliver(p); /* it may have waited for the hole */
	}
	repair_next(p, now);
}

static void on_repair(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	const struct sl_frame_data *d = &f->data;
	uint32_t i = d->frag_off / p->frag_unit;

	if (e->rlen == 0 || f->hdr.sender != e->rpeer || d->batch_pos != e->rpos ||
	    d->batch_len != e->rlen || d->frag_off % p->frag_unit ||
	    d->frag_len !=
		(e->rlen - d->frag_off < p->frag_unit ? e->rlen - d->frag_off : p->frag_unit))
		return;
	if (e->rbits[i / 64] >> (i % 64) & 1)
		return;
	e->rbits[i / 64] |= 1ull << (i % 64);
	memcpy(e->rbuf + d->frag_off, d->frag, d->frag_len);
	e->rgot += d->frag_len;
	if (e->rgot == e->rlen)
		repair_done(p, now);
}

/* ---- an unreadable tail nobody else holds ---- */

/* Leader: the batch at `pos` of its own log cannot be read (a send or the
 * scrub found it bad): ask for a good copy like any other, its length and
 * leaf from the tree. */
void sl_entropy_unreadable(struct sl_proto *p, uint64_t pos)
{
	struct sl_proto_tree t;
	uint64_t j, end, leaf;

	if (!p->ent.on || p->role != SL_ROLE_LEADER || get_tree(p, &t) < 0)
		return;
	if (leaf_at(&t, pos, &j) < 0 || sl_merkle_node(t.m, 0, j, &leaf) < 0)
		return;
	end = j + 1 < t.leaves ? t.leaf_pos[j + 1] : p->durable_pos;
	if (end > pos && end - pos <= p->enc_cap)
		(void)sl_proto_repair(p, pos, (uint32_t)(end - pos), leaf, 0);
}

/* No follower can ever send the leader the batch ending at `end`: each has
 * reported in this epoch (so its log is a prefix of ours) a log that ends
 * before it. */
static int held_by_none(const struct sl_proto *p, uint64_t end)
{
	if (p->el.fresh)
		return 0; /* one has not told us yet where its log ends */
	for (uint32_t k = 0; k < p->n_peers; k++)
		if (p->peers[k].received >= end)
			return 0;
	return 1;
}

/* Where the log is cut at the batch at `pos`: the LSN that starts it and
 * the header CRC it chains to, from the batch before it (in the window or
 * read back). 0, or -EAGAIN when that batch cannot be read now. */
static int cut_point(struct sl_proto *p, uint64_t pos, uint64_t *lsn, uint32_t *crc)
{
	struct sl_proto_tree t;
	struct sl_batch_hdr h;
	uint64_t j;
	int n;

	if (pos == 0) {
		*lsn = 1;
		*crc = 0;
		return 0;
	}
	if (get_tree(p, &t) < 0 || (j = leaves_before(&t, pos)) == 0)
		return -EAGAIN;
	n = p->ops.read(p->ops.ctx, t.leaf_pos[j - 1], p->ent.sbuf, p->enc_cap);
	if (n < 0 || sl_batch_decode_hdr(p->ent.sbuf, (size_t)n, &p->cfg.limits, &h) < 0 ||
	    h.position != t.leaf_pos[j - 1] || h.position + (uint64_t)n != pos)
		return -EAGAIN;
	*lsn = h.base_lsn + h.record_count;
	*crc = h.hdr_crc;
	return 0;
}

/* The leader's batch being repaired is past what a quorum holds, not in its
 * window, unreadable, and held by no follower: nobody can send it, so no
 * quorum ever held it (a committed batch is on a quorum, and in every
 * leader's log) and none ever will. The leader gives that uncommitted
 * suffix up: it steps down (the epoch ends, so whoever waits on those LSNs
 * is told, as when any epoch ends) and cuts its log there, as divergence
 * repair would; the next leader, it or another, goes on from there. */
static void give_up_tail(struct sl_proto *p, uint64_t now)
{
	struct sl_entropy *e = &p->ent;
	uint64_t pos = e->rpos, lsn;
	uint32_t crc;

	if (!p->el.on || p->role != SL_ROLE_LEADER || pos < p->safe_pos || pos >= p->log_end ||
	    sl_bq_find(&p->bq, pos) || !held_by_none(p, pos + e->rlen) ||
	    p->ops.read(p->ops.ctx, pos, e->sbuf, p->enc_cap) >= 0 ||
	    cut_point(p, pos, &lsn, &crc) < 0)
		return;
	e->st.tails_given_up++;
	if (sl_proto_stepdown(p, now) == 0)
		(void)sl_role_truncate(p, pos, lsn, crc);
}

/* ---- driving ---- */

int sl_entropy_frame(uint8_t type)
{
	return type >= SL_FRAME_TREE_REQ && type <= SL_FRAME_REPAIR;
}

void sl_entropy_on_frame(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	if (!p->ent.on)
		return;
	switch (f->hdr.type) {
	case SL_FRAME_TREE_REQ:
		on_tree_req(p, f);
		break;
	case SL_FRAME_TREE:
		on_tree(p, f, now);
		break;
	case SL_FRAME_REPAIR_REQ:
		on_repair_req(p, f);
		break;
	default:
		on_repair(p, f, now);
		break;
	}
}

/* A follower that (re)joins a leader compares at once. */
void sl_entropy_rejoin(struct sl_proto *p)
{
	p->ent.next_at = 0;
	p->ent.phase = PH_IDLE;
}

void sl_entropy_tick(struct sl_proto *p, uint64_t now)
{
	struct sl_entropy *e = &p->ent;

	if (!e->on)
		return;
	if (e->phase != PH_IDLE && now - e->asked_at >= answer_ns(p)) {
		if (++e->tries >= ASK_TRIES || e->peer != p->cfg.leader_id)
			finish(p, SL_ENTROPY_TIMEOUT, 0, now);
		else
			ask(p, e->level, e->index, now);
	}
	if (e->phase == PH_IDLE && now >= e->next_at && p->role == SL_ROLE_FOLLOWER &&
	    p->cfg.leader_id && p->el.synced)
		start(p, now);
	if (e->rlen && p->role == SL_ROLE_LEADER)
		give_up_tail(p, now);
	if (e->rlen && now - e->r_at >= answer_ns(p)) {
		if (e->rtries >= REPAIR_TRIES) {
			e->st.repairs_failed++; /* the scrub finds it again next pass */
			repair_next(p, now);
		} else {
			repair_ask(p, now);
		}
	}
	if (e->nholes && p->role == SL_ROLE_FOLLOWER && p->cfg.leader_id && now >= e->holes_at) {
		ask_holes(p, now);
		e->holes_at = now + answer_ns(p);
	}
	if (!e->rlen && e->nwant)
		repair_next(p, now);
}

uint64_t sl_entropy_next_timer(const struct sl_proto *p)
{
	const struct sl_entropy *e = &p->ent;
	uint64_t t = UINT64_MAX;

	if (!e->on)
		return t;
	if (e->phase != PH_IDLE)
		t = e->asked_at + answer_ns(p);
	else if (p->role == SL_ROLE_FOLLOWER && p->cfg.leader_id && p->el.synced)
		t = e->next_at; /* as the tick starts one: not before its log agrees */
	if (e->rlen && e->r_at + answer_ns(p) < t)
		t = e->r_at + answer_ns(p);
	if (e->nholes && p->role == SL_ROLE_FOLLOWER && p->cfg.leader_id && e->holes_at < t)
		t = e->holes_at;
	if (!e->rlen && e->nwant)
		t = 0;
	return t;
}

void sl_entropy_status(const struct sl_proto *p, struct sl_entropy_status *s)
{
	*s = p->ent.st;
	s->repairs_pending = p->ent.nwant + (p->ent.rlen ? 1 : 0);
	s->holes = p->ent.nholes;
}
