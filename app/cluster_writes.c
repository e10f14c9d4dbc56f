/* The logs' writes: see cluster_writes.h. A log's group writes are reported
 * durable in submission order and its chunks of zeros go one at a time, so
 * each series is sorted by both ends of its intervals and "did one overlap
 * [a, b)" is a binary search. */
#include "cluster_writes.h"

#include <stdlib.h>
#include <string.h>

/* One node's records of one kind, in submission order: [t0[i], t1[i]). */
struct spans {
	uint64_t *t0, *t1;
	size_t n;
};

static int spans_of(const struct sl_store_wtrace *wt, int zeros, struct spans *sp)
{
	size_t k = 0;

	sp->t0 = malloc((wt->n ? wt->n : 1) * sizeof(uint64_t));
	sp->t1 = malloc((wt->n ? wt->n : 1) * sizeof(uint64_t));
	if (!sp->t0 || !sp->t1)
		return -1;
	for (uint32_t i = 0; i < wt->n; i++) {
		const struct sl_store_wrec *r = &wt->rec[i];

		if ((r->kind != SL_WREC_GROUP) != zeros || r->t_done == 0)
			continue;
		/* kept in order: a record's end never before the previous one's */
		sp->t0[k] = r->t_submit;
		sp->t1[k] = k && sp->t1[k - 1] > r->t_done ? sp->t1[k - 1] : r->t_done;
		k++;
	}
	sp->n = k;
	return 0;
}

/* Does some span of sp overlap (a, b)? */
static int overlaps(const struct spans *sp, uint64_t a, uint64_t b)
{
	size_t lo = 0, hi = sp->n;

	while (lo < hi) { /* the first span ending after a */
		size_t mid = lo + (hi - lo) / 2;

		if (sp->t1[mid] <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < sp->n && sp->t0[lo] < b; lo++)
		if (sp->t1[lo] > a)
			return 1;
	return 0;
}

static enum sl_cluster_wclass classify(const struct sl_store_wrec *r, const struct spans *zeros,
				       unsigned nodes, unsigned self)
{
	if (r->zeros_at || r->zeros_during)
		return SL_WCLASS_ZEROS_OWN;
	for (unsigned k = 0; k < nodes; k++)
		if (k != self && overlaps(&zeros[k], r->t_submit, r->t_done))
			return SL_WCLASS_ZEROS_OTHER;
	return r->groups_ahead ? SL_WCLASS_BEHIND : SL_WCLASS_ALONE;
}

static unsigned busy_peers(const struct sl_store_wrec *r, const struct spans *groups,
			   unsigned nodes, unsigned self)
{
	unsigned n = 0;

	for (unsigned k = 0; k < nodes; k++)
		n += k != self && overlaps(&groups[k], r->t_submit, r->t_done);
	return n;
}

static int in_window(const struct sl_store_wrec *r, uint64_t a, uint64_t b)
{
	return r->t_done != 0 && r->t_submit >= a && r->t_submit < b;
}

static void tally(const struct sl_store_wtrace *wt, const struct spans *groups,
		  const struct spans *zeros, unsigned nodes, uint64_t a, uint64_t b,
		  struct sl_cluster_writes *out)
{
	uint64_t slow;

	for (unsigned k = 0; k < nodes; k++)
		for (uint32_t i = 0; i < wt[k].n; i++) {
			const struct sl_store_wrec *r = &wt[k].rec[i];

			if (!in_window(r, a, b))
				continue;
			if (r->kind != SL_WREC_GROUP) {
				sl_hist_record(&out->zeros, r->t_done - r->t_submit);
				out->zero_chunks++;
				continue;
			}
			sl_hist_record(&out->all, r->t_done - r->t_submit);
			sl_hist_record(&out->bytes, r->bytes);
			if (r->linked_sync)
				sl_hist_record(&out->linked, r->t_done - r->t_submit);
		}
	slow = sl_hist_quantile(&out->all, 0.99);
	for (unsigned k = 0; k < nodes; k++)
		for (uint32_t i = 0; i < wt[k].n; i++) {
			const struct sl_store_wrec *r = &wt[k].rec[i];
			uint64_t d = r->t_done - r->t_submit;
			enum sl_cluster_wclass c;
			unsigned p;

			if (r->kind != SL_WREC_GROUP || !in_window(r, a, b))
				continue;
			c = classify(r, zeros, nodes, k);
			p = busy_peers(r, groups, nodes, k);
			sl_hist_record(&out->cls[c], d);
			out->peers[p]++;
			if (d >= slow) {
				out->slow[c]++;
				out->slow_peers[p]++;
			}
		}
}

void sl_cluster_writes(const struct sl_store_wtrace *wt, unsigned nodes, uint64_t win_start,
		       uint64_t win_end, struct sl_cluster_writes *out)
{
	struct spans groups[SL_NODES_MAX] = {0}, zeros[SL_NODES_MAX] = {0};
	int ok = 1;

	memset(out, 0, sizeof(*out));
	sl_hist_reset(&out->all);
	sl_hist_reset(&out->linked);
	sl_hist_reset(&out->bytes);
	sl_hist_reset(&out->zeros);
	for (unsigned c = 0; c < SL_WCLASSES; c++)
		sl_hist_reset(&out->cls[c]);
	for (unsigned k = 0; k < nodes; k++) {
		out->dropped += wt[k].n == wt[k].cap;
		ok &= spans_of(&wt[k], 0, &groups[k]) == 0 && spans_of(&wt[k], 1, &zeros[k]) == 0;
	}
	if (ok)
		tally(wt, groups, zeros, nodes, win_start, win_end, out);
	for (unsigned k = 0; k < nodes; k++) {
		free(groups[k].t0);
		free(groups[k].t1);
		free(zeros[k].t0);
		free(zeros[k].t1);
	}
}
