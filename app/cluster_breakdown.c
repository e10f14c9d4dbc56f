/* Where a commit's time goes: see cluster_breakdown.h. Each node's trace is
 * split into a series per event kind, in time order, with the running
 * maximum of its position, so "the first time this node had done X through
 * position E" is a binary search. */
#include "cluster_breakdown.h"

#include <stdlib.h>
#include <string.h>

#include "shiplog/log.h"

#define NONE UINT64_MAX

static const char *const hop_names[SL_HOPS] = {
    [SL_HOP_DUE_APPEND] = "due->append",
    [SL_HOP_APPEND_SEAL] = "append->seal",
    [SL_HOP_SEAL_SENT] = "seal->send",
    [SL_HOP_SENT_CALL] = "send call",
    [SL_HOP_SEAL_SUBMIT] = "seal->submit",
    [SL_HOP_SUBMIT_CALL] = "submit call",
    [SL_HOP_L_WRITE] = "leader write",
    [SL_HOP_WIRE] = "send->f.rx",
    [SL_HOP_WIRE_ASLEEP] = "send->f.rx asleep",
    [SL_HOP_F_STORE] = "f.rx->f.append",
    [SL_HOP_F_SUBMIT] = "f.append->f.submit",
    [SL_HOP_F_SUBMIT_CALL] = "f.submit call",
    [SL_HOP_F_WRITE] = "follower write",
    [SL_HOP_F_ACK] = "f.durable->ack",
    [SL_HOP_ACK_WIRE] = "ack->l.rx",
    [SL_HOP_ACK_WIRE_ASLEEP] = "ack->l.rx asleep",
    [SL_HOP_COMMIT] = "ack/durable->commit",
    [SL_HOP_TOTAL] = "due->commit",
    [SL_HOP_DELIVER] = "commit->f.deliver",
    [SL_HOP_LAG] = "seal->f.deliver",
};

const char *sl_cluster_hop_name(enum sl_cluster_hop h)
{
	return (unsigned)h < SL_HOPS ? hop_names[h] : "unknown";
}

/* One kind of event of one node: times, running max of v, and w. */
struct series {
	uint64_t *t, *vmax, *w;
	size_t n;
};

struct node_series {
	struct series s[SL_TRACE_EVENTS];
	struct series acks[SL_NODES_MAX + 1]; /* RX_ACK by sender */
};

static int series_alloc(struct series *s, size_t n)
{
	s->n = 0;
	s->t = malloc((n ? n : 1) * sizeof(uint64_t));
	s->vmax = malloc((n ? n : 1) * sizeof(uint64_t));
	s->w = malloc((n ? n : 1) * sizeof(uint64_t));
	return s->t && s->vmax && s->w ? 0 : -1;
}

static void series_free(struct series *s)
{
	free(s->t);
	free(s->vmax);
	free(s->w);
}

static void series_push(struct series *s, const struct sl_node_trace_rec *r)
{
	uint64_t m = s->n && s->vmax[s->n - 1] > r->v ? s->vmax[s->n - 1] : r->v;

	s->t[s->n] = r->t;
	s->vmax[s->n] = m;
	s->w[s->n] = r->w;
	s->n++;
}

/* The index of the first of the n sorted values a[] at least x (n: none). */
static size_t lower_bound(const uint64_t *a, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The index of the first event through at least `pos` (n: none). */
static size_t first_through(const struct series *s, uint64_t pos)
{
	return lower_bound(s->vmax, s->n, pos);
}

static uint64_t time_through(const struct series *s, uint64_t pos)
{
	size_t i = first_through(s, pos);

	return i < s->n ? s->t[i] : NONE;
}

/* Records are appended in time order but a step's events carry the time
 * it began: sort each series by time before the running max. */
static int cmp_rec(const void *a, const void *b)
{
	const struct sl_node_trace_rec *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t;
}

static int split(const struct sl_node_trace *tr, struct node_series *ns)
{
	size_t count[SL_TRACE_EVENTS] = {0}, acks[SL_NODES_MAX + 1] = {0};

	qsort(tr->rec, tr->n, sizeof(*tr->rec), cmp_rec);
	for (uint32_t i = 0; i < tr->n; i++) {
		const struct sl_node_trace_rec *r = &tr->rec[i];

		if (r->ev == SL_TRACE_RX_ACK && r->w <= SL_NODES_MAX)
			acks[r->w]++;
		/* SLEEP and WAKE go to one series: the last before t says */
		count[r->ev == SL_TRACE_WAKE ? SL_TRACE_SLEEP : r->ev]++;
	}
	for (unsigned k = 0; k < SL_TRACE_EVENTS; k++)
		if (series_alloc(&ns->s[k], count[k]) < 0)
			return -1;
	for (unsigned k = 0; k <= SL_NODES_MAX; k++)
		if (series_alloc(&ns->acks[k], acks[k]) < 0)
			return -1;
	for (uint32_t i = 0; i < tr->n; i++) {
		struct sl_node_trace_rec r = tr->rec[i];

		if (r.ev == SL_TRACE_SLEEP || r.ev == SL_TRACE_WAKE) {
			r.v = 0;
			r.w = r.ev == SL_TRACE_SLEEP;
			series_push(&ns->s[SL_TRACE_SLEEP], &r);
			continue;
		}
		if (r.ev == SL_TRACE_RX_ACK && r.w <= SL_NODES_MAX)
			series_push(&ns->acks[r.w], &r);
		series_push(&ns->s[r.ev], &r);
	}
	return 0;
}

/* Was the node asleep at time t (its last sleep or wake before t a sleep)? */
static int asleep_at(const struct node_series *ns, uint64_t t)
{
	const struct series *s = &ns->s[SL_TRACE_SLEEP];
	size_t i = lower_bound(s->t, s->n, t); /* the first event at or after t */

	return i > 0 && s->w[i - 1] == 1;
}

static void hop(struct sl_cluster_breakdown *out, enum sl_cluster_hop h, uint64_t from, uint64_t to)
{
	sl_hist_record(&out->hop[h], to > from ? to - from : 0);
}

/* The follower whose acknowledgement through `end` reached the leader
 * first, and when (NONE: none did). */
static unsigned acking_follower(const struct node_series *l, unsigned nodes, uint64_t end,
				uint64_t *at)
{
	unsigned who = 0;

	*at = NONE;
	for (unsigned id = 2; id <= nodes; id++) {
		uint64_t t = time_through(&l->acks[id], end);

		if (t < *at) {
			*at = t;
			who = id;
		}
	}
	return who;
}

struct batch {
	uint64_t due, append, seal, sent, sent_call, submit, submit_call, durable, ack_rx, commit;
};

/* The leader's side of the batch sealed at index i of its SEAL series. */
static int leader_side(const struct node_series *l, size_t i, const uint64_t *due, uint64_t ring,
		       struct batch *b)
{
	uint64_t end = l->s[SL_TRACE_SEAL].vmax[i], lsn = l->s[SL_TRACE_SEAL].w[i];
	size_t j;

	b->seal = l->s[SL_TRACE_SEAL].t[i];
	b->due = lsn ? due[lsn % ring] : NONE;
	b->append = time_through(&l->s[SL_TRACE_APPEND], lsn);
	if ((j = first_through(&l->s[SL_TRACE_SENT_DATA], end)) == l->s[SL_TRACE_SENT_DATA].n)
		return -1;
	b->sent = l->s[SL_TRACE_SENT_DATA].t[j];
	b->sent_call = l->s[SL_TRACE_SENT_DATA].w[j];
	if ((j = first_through(&l->s[SL_TRACE_SUBMIT], end)) == l->s[SL_TRACE_SUBMIT].n)
		return -1;
	b->submit = l->s[SL_TRACE_SUBMIT].t[j];
	b->submit_call = l->s[SL_TRACE_SUBMIT].w[j];
	b->durable = time_through(&l->s[SL_TRACE_DURABLE], end);
	b->commit = time_through(&l->s[SL_TRACE_COMMIT], end);
	return b->due == NONE || b->append == NONE || b->durable == NONE || b->commit == NONE ? -1
											      : 0;
}

/* The acking follower's side; 0 when every step of it was traced. */
static int follower_side(struct sl_cluster_breakdown *out, const struct node_series *l,
			 const struct node_series *f, uint64_t end, const struct batch *b)
{
	const struct series *sub = &f->s[SL_TRACE_SUBMIT], *ack = &f->s[SL_TRACE_SENT_ACK];
	uint64_t rx = time_through(&f->s[SL_TRACE_RX_DATA], end);
	uint64_t st = time_through(&f->s[SL_TRACE_STORE], end);
	uint64_t dur = time_through(&f->s[SL_TRACE_DURABLE], end);
	size_t js = first_through(sub, end), ja = first_through(ack, end);

	if (rx == NONE || st == NONE || dur == NONE || js == sub->n || ja == ack->n)
		return -1;
	hop(out, asleep_at(f, b->sent) ? SL_HOP_WIRE_ASLEEP : SL_HOP_WIRE, b->sent, rx);
	hop(out, SL_HOP_F_STORE, rx, st);
	hop(out, SL_HOP_F_SUBMIT, st, sub->t[js]);
	sl_hist_record(&out->hop[SL_HOP_F_SUBMIT_CALL], sub->w[js]);
	hop(out, SL_HOP_F_WRITE, sub->t[js], dur);
	hop(out, SL_HOP_F_ACK, dur, ack->t[ja]);
	hop(out, asleep_at(l, ack->t[ja]) ? SL_HOP_ACK_WIRE_ASLEEP : SL_HOP_ACK_WIRE, ack->t[ja],
	    b->ack_rx);
	return 0;
}

static void match(const struct node_series *ns, unsigned nodes, const uint64_t *due, uint64_t ring,
		  uint64_t last_lsn, uint64_t win_start, uint64_t win_end,
		  struct sl_cluster_breakdown *out)
{
	const struct node_series *l = &ns[0];

	for (size_t i = 0; i < l->s[SL_TRACE_SEAL].n; i++) {
		uint64_t end = l->s[SL_TRACE_SEAL].vmax[i];
		struct batch b;
		unsigned who;

		/* the due time of an LSN this far back was overwritten */
		if (l->s[SL_TRACE_SEAL].w[i] + ring <= last_lsn)
			continue;
		if (leader_side(l, i, due, ring, &b) < 0) {
			out->unmatched++;
			continue;
		}
		if (b.due < win_start || b.due >= win_end)
			continue;
		who = acking_follower(l, nodes, end, &b.ack_rx);
		if (who == 0 || follower_side(out, l, &ns[who - 1], end, &b) < 0) {
			out->unmatched++;
			continue;
		}
		out->batches++;
		hop(out, SL_HOP_DUE_APPEND, b.due, b.append);
		hop(out, SL_HOP_APPEND_SEAL, b.append, b.seal);
		hop(out, SL_HOP_SEAL_SENT, b.seal, b.sent);
		sl_hist_record(&out->hop[SL_HOP_SENT_CALL], b.sent_call);
		hop(out, SL_HOP_SEAL_SUBMIT, b.seal, b.submit);
		sl_hist_record(&out->hop[SL_HOP_SUBMIT_CALL], b.submit_call);
		hop(out, SL_HOP_L_WRITE, b.submit, b.durable);
		out->leader_last += b.durable > b.ack_rx;
		hop(out, SL_HOP_COMMIT, b.durable > b.ack_rx ? b.durable : b.ack_rx, b.commit);
		hop(out, SL_HOP_TOTAL, b.due, b.commit);
		for (unsigned k = 1; k < nodes; k++) {
			uint64_t t = time_through(&ns[k].s[SL_TRACE_DELIVER], end);

			if (t == NONE)
				continue;
			hop(out, SL_HOP_DELIVER, b.commit, t);
			hop(out, SL_HOP_LAG, b.seal, t);
		}
	}
}

void sl_cluster_breakdown(const struct sl_node_trace *traces, unsigned nodes, const uint64_t *due,
			  uint64_t ring, uint64_t last_lsn, uint64_t win_start, uint64_t win_end,
			  struct sl_cluster_breakdown *out)
{
	struct node_series *ns = calloc(nodes, sizeof(*ns));
	int ok = ns != NULL;

	memset(out, 0, sizeof(*out));
	for (unsigned h = 0; h < SL_HOPS; h++)
		sl_hist_reset(&out->hop[h]);
	for (unsigned i = 0; ok && i < nodes; i++) {
		out->trace_full += traces[i].n == traces[i].cap;
		ok = split(&traces[i], &ns[i]) == 0;
	}
	if (ok)
		match(ns, nodes, due, ring, last_lsn, win_start, win_end, out);
	else
		sl_warn("cluster: out of memory for the breakdown");
	for (unsigned i = 0; ns && i < nodes; i++) {
		for (unsigned k = 0; k < SL_TRACE_EVENTS; k++)
			series_free(&ns[i].s[k]);
		for (unsigned k = 0; k <= SL_NODES_MAX; k++)
			series_free(&ns[i].acks[k]);
	}
	free(ns);
}
