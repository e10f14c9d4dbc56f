/* Ack policy and commit rule; see include/shiplog/quorum.h. */
#include "shiplog/quorum.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/err.h"

int sl_quorum_required(const struct sl_ack_policy *p, unsigned n_nodes)
{
	unsigned followers, need;

	if (n_nodes < 1 || n_nodes > SL_NODES_MAX)
		return sl_err_set(EINVAL, "cluster of %u nodes: must be 1..%d", n_nodes,
				  SL_NODES_MAX);
	followers = n_nodes - 1;
	if (p->acks == SL_ACKS_ALL)
		need = followers;
	else if (p->acks == SL_ACKS_MAJORITY)
		need = n_nodes / 2; /* W = floor(N/2)+1 nodes, the leader is one */
	else if (p->acks >= 0 && (unsigned)p->acks <= followers)
		need = (unsigned)p->acks;
	else
		return sl_err_set(EINVAL, "acks=%d but the cluster has %u followers", p->acks,
				  followers);
	if (p->debug_undercount && need > 0)
		need--;
	return (int)need;
}

int sl_quorum_votes(const struct sl_ack_policy *p, unsigned n_nodes)
{
	struct sl_ack_policy clean = *p;
	int req, w, votes;

	clean.debug_undercount = 0; /* the commit switch must not move elections */
	req = sl_quorum_required(&clean, n_nodes);
	if (req < 0)
		return req;
	w = req + (p->local_none ? 0 : 1);
	votes = (int)n_nodes - w + 1;
	if (votes > (int)n_nodes)
		votes = (int)n_nodes;
	if (p->debug_undervote && votes > 1)
		votes--;
	return votes;
}

/* The k-th highest of n values (1 <= k <= n), without modifying them:
 * keep the top k in best[], sorted descending, by insertion. */
static uint64_t kth_highest(const uint64_t *v, unsigned n, unsigned k)
{
	uint64_t best[SL_NODES_MAX];
	unsigned have = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned j;

		if (have == k && v[i] <= best[k - 1])
			continue;
		j = have < k ? have++ : k - 1;
		for (; j > 0 && best[j - 1] < v[i]; j--)
			best[j] = best[j - 1];
		best[j] = v[i];
	}
	return best[k - 1];
}

uint64_t sl_quorum_commit(const struct sl_ack_policy *p, uint64_t leader_end,
			  uint64_t leader_durable, const uint64_t *follower_pos,
			  unsigned n_followers, unsigned required)
{
	uint64_t c = p->local_none ? leader_end : leader_durable;

	if (required > n_followers || n_followers > SL_NODES_MAX)
		return 0; /* cannot be met: nothing is committed */
	if (required > 0) {
		uint64_t f = kth_highest(follower_pos, n_followers, required);

		if (f < c)
			c = f;
	}
	return c < leader_end ? c : leader_end;
}

int sl_acks_parse(const char *s, int *acks)
{
	char *end;
	long v;

	if (strcmp(s, "majority") == 0) {
		*acks = SL_ACKS_MAJORITY;
		return 0;
	}
	if (strcmp(s, "all") == 0) {
		*acks = SL_ACKS_ALL;
		return 0;
	}
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < 0 || v >= SL_NODES_MAX)
		return sl_err_set(EINVAL, "acks '%s': want 0..%d, majority or all", s,
				  SL_NODES_MAX - 1);
	*acks = (int)v;
	return 0;
}

static const char *const level_names[] = {"received", "durable", "applied"};

int sl_ack_level_parse(const char *s, enum sl_ack_level *out)
{
	for (int i = 0; i <= SL_ACK_APPLIED; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum sl_ack_level)i;
			return 0;
		}
	return sl_err_set(EINVAL, "ack_level '%s': want received, durable or applied", s);
}

const char *sl_ack_level_name(enum sl_ack_level l)
{
	return (unsigned)l <= SL_ACK_APPLIED ? level_names[l] : "?";
}

const char *sl_acks_name(int acks, char *buf, unsigned cap)
{
	if (acks == SL_ACKS_MAJORITY)
		return "majority";
	if (acks == SL_ACKS_ALL)
		return "all";
	snprintf(buf, cap, "%d", acks);
	return buf;
}
