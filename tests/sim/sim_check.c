/* Invariant bookkeeping of the simulator; see sim_check.h. */
#include "sim_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sl_sim_check_init(struct sl_sim_check *c, uint64_t max_recs)
{
	memset(c, 0, sizeof(*c));
	c->recs = calloc(max_recs + 1, sizeof(*c->recs));
	if (!c->recs)
		return -ENOMEM;
	c->max_recs = max_recs;
	return 0;
}

void sl_sim_check_destroy(struct sl_sim_check *c)
{
	free(c->recs);
	memset(c, 0, sizeof(*c));
}

void sl_sim_check_reset(struct sl_sim_check *c, uint64_t seed)
{
	c->seed = seed;
	c->n_trace = 0;
	c->failed = 0;
	c->letter = 0;
	c->count = 0;
	memset(c->recs, 0, (c->max_recs + 1) * sizeof(*c->recs));
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void trace_print(const struct sl_sim_trace_ent *e)
{
	printf("  t=%llu.%06llu ms ", (unsigned long long)(e->t / 1000000),
	       (unsigned long long)(e->t % 1000000));
	if (e->node >= 0)
		printf("n%d ", e->node + 1);
	printf(e->fmt, e->a[0], e->a[1], e->a[2], e->a[3]);
	printf("\n");
}
#pragma GCC diagnostic pop

/* Conversions in a trace format (%% excluded). */
static int conversions(const char *fmt)
{
	int n = 0;

	for (; *fmt; fmt++) {
		if (*fmt != '%')
			continue;
		if (fmt[1] == '%')
			fmt++;
		else
			n++;
	}
	return n;
}

void sl_sim_trace(struct sl_sim_check *c, uint64_t t, int node, const char *fmt, ...)
{
	struct sl_sim_trace_ent *e = &c->trace[c->n_trace++ % SL_SIM_TRACE_LEN];
	int n = conversions(fmt);
	va_list ap;

	e->t = t;
	e->node = node;
	e->fmt = fmt;
	va_start(ap, fmt);
	for (int i = 0; i < 4; i++)
		e->a[i] = i < n ? va_arg(ap, uint64_t) : 0;
	va_end(ap);
	if (c->live)
		trace_print(e);
}

void sl_sim_trace_dump(const struct sl_sim_check *c)
{
	uint64_t first = c->n_trace > SL_SIM_TRACE_LEN ? c->n_trace - SL_SIM_TRACE_LEN : 0;

	printf("  last %llu of %llu events (nK = node K, positions in bytes):\n",
	       (unsigned long long)(c->n_trace - first), (unsigned long long)c->n_trace);
	for (uint64_t i = first; i < c->n_trace; i++)
		trace_print(&c->trace[i % SL_SIM_TRACE_LEN]);
}

static void print_at(uint64_t v, const char *name)
{
	if (v != UINT64_MAX)
		printf(" %s=%llu", name, (unsigned long long)v);
}

void sl_sim_violation(struct sl_sim_check *c, char letter, int node, uint64_t pos, uint64_t lsn,
		      uint64_t now, const char *fmt, ...)
{
	va_list ap;

	c->count++;
	if (c->failed)
		return;
	c->failed = 1;
	c->letter = letter;
	if (c->quiet)
		return;
	printf("VIOLATION (%c) seed=%llu", letter, (unsigned long long)c->seed);
	if (node >= 0)
		printf(" node=%d", node + 1);
	print_at(pos, "pos");
	print_at(lsn, "lsn");
	printf(" t=%llu ns: ", (unsigned long long)now);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	sl_sim_trace_dump(c);
	fflush(stdout);
}

uint64_t sl_sim_hash(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

int sl_sim_rec_put(struct sl_sim_check *c, uint64_t lsn, const void *rec, uint32_t len)
{
	if (lsn == 0 || lsn > c->max_recs)
		return -ERANGE;
	c->recs[lsn].hash = sl_sim_hash(rec, len);
	c->recs[lsn].len = len;
	return 0;
}

int sl_sim_rec_match(const struct sl_sim_check *c, uint64_t lsn, const void *rec, uint32_t len)
{
	if (lsn == 0 || lsn > c->max_recs)
		return 0;
	return c->recs[lsn].len == len && c->recs[lsn].hash == sl_sim_hash(rec, len);
}

int sl_sim_required(const struct sl_ack_policy *p, unsigned n_nodes)
{
	unsigned followers = n_nodes - 1;

	if (n_nodes < 1 || n_nodes > SL_NODES_MAX)
		return -1;
	if (p->acks == SL_ACKS_ALL)
		return (int)followers;
	if (p->acks == SL_ACKS_MAJORITY)
		return (int)(n_nodes / 2 + 1) - 1;
	if (p->acks >= 0 && (unsigned)p->acks <= followers)
		return p->acks;
	return -1;
}

uint64_t sl_sim_quorum(int local_none, uint64_t leader_end, uint64_t leader_durable,
		       const uint64_t *follower_pos, unsigned n_followers, unsigned required)
{
	uint64_t v[SL_NODES_MAX];
	uint64_t c = local_none ? leader_end : leader_durable;

	if (required > n_followers || n_followers > SL_NODES_MAX)
		return 0;
	/* Sort descending (insertion sort: at most 15 values); the required-th
	 * highest is the position that many followers have all reached. */
	for (unsigned i = 0; i < n_followers; i++) {
		unsigned j = i;

		for (; j > 0 && v[j - 1] < follower_pos[i]; j--)
			v[j] = v[j - 1];
		v[j] = follower_pos[i];
	}
	if (required > 0 && v[required - 1] < c)
		c = v[required - 1];
	return c < leader_end ? c : leader_end;
}

#define DIFF(f)                                                                                    \
	do {                                                                                       \
		if (a->f != b->f)                                                                  \
			return #f;                                                                 \
	} while (0)

#define PDIFF(f)                                                                                   \
	do {                                                                                       \
		if (a->f != b->f)                                                                  \
			return "peers[]." #f;                                                      \
	} while (0)

static const char *peer_diff(const struct sl_peer_status *a, const struct sl_peer_status *b)
{
	PDIFF(node_id);
	PDIFF(sent_pos);
	PDIFF(received_pos);
	PDIFF(durable_pos);
	PDIFF(applied_pos);
	PDIFF(applied_lsn);
	PDIFF(write_lag_ns);
	PDIFF(flush_lag_ns);
	PDIFF(apply_lag_ns);
	PDIFF(bytes_behind);
	PDIFF(records_behind);
	PDIFF(last_status_ns);
	PDIFF(naks);
	PDIFF(retransmits);
	PDIFF(catchup_batches);
	PDIFF(catching_up);
	return NULL;
}

const char *sl_sim_status_diff(const struct sl_proto_status *a, const struct sl_proto_status *b)
{
	DIFF(role);
	DIFF(node_id);
	DIFF(leader_id);
	DIFF(epoch);
	DIFF(next_lsn);
	DIFF(log_end);
	DIFF(durable_pos);
	DIFF(commit_pos);
	DIFF(commit_lsn);
	DIFF(safe_pos);
	DIFF(delivered_lsn);
	DIFF(degraded);
	DIFF(degrade_events);
	DIFF(blocked_since_ns);
	DIFF(failed);
	DIFF(dup_fragments);
	DIFF(naks_sent);
	DIFF(naks_received);
	DIFF(retransmits);
	DIFF(tlps);
	DIFF(last_epoch);
	DIFF(elections);
	DIFF(elections_won);
	DIFF(step_downs);
	DIFF(votes_granted);
	DIFF(truncations);
	DIFF(synced);
	DIFF(n_peers);
	for (uint32_t i = 0; i < a->n_peers && i < SL_NODES_MAX; i++) {
		const char *d = peer_diff(&a->peers[i], &b->peers[i]);

		if (d)
			return d;
	}
	return NULL;
}
