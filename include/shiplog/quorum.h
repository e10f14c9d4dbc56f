/* Ack policy and the commit rule: given how far each follower has
 * acknowledged at the policy's level, the highest position the policy has
 * actually acknowledged. Pure functions, tested for every policy and N. */
#ifndef SHIPLOG_QUORUM_H
#define SHIPLOG_QUORUM_H

#include <stdint.h>

#define SL_NODES_MAX	 16
#define SL_ACKS_MAJORITY (-1) /* a majority of all nodes, the leader included */
#define SL_ACKS_ALL	 (-2) /* every follower */

enum sl_ack_level {
	SL_ACK_RECEIVED = 0, /* in the follower's memory (PostgreSQL remote_write) */
	SL_ACK_DURABLE,	     /* fsynced on the follower (on) */
	SL_ACK_APPLIED,	     /* applied by the follower's engine (remote_apply) */
};

enum sl_on_timeout {
	SL_ON_TIMEOUT_BLOCK = 0, /* keep waiting; commit stalls, visibly */
	SL_ON_TIMEOUT_DEGRADE,	 /* commit on the leader alone until acks return */
};

struct sl_ack_policy {
	int acks; /* 0..15, SL_ACKS_MAJORITY or SL_ACKS_ALL */
	enum sl_ack_level level;
	uint64_t timeout_ns; /* 0: never time out */
	enum sl_on_timeout on_timeout;
	int local_none;	      /* 1: the leader's own durability does not count */
	int debug_undercount; /* test switch: require one acknowledgement too few */
	int debug_undervote;  /* test switch: elect with one vote too few */
};

/* Followers whose acknowledgement a commit needs for `n_nodes` nodes, or
 * -EINVAL (with a message) when the policy cannot be met, e.g. acks=3 with
 * two followers. Majority: W = floor(N/2)+1 nodes including the leader. */
int sl_quorum_required(const struct sl_ack_policy *p, unsigned n_nodes);

/* Votes a candidate needs, itself included: N - W + 1, where W is the ack
 * quorum counting the leader (required followers + 1, or + 0 with
 * local_none, whose own copy does not count), so every election quorum
 * meets every set of nodes that acknowledged a commit. At most N (acks=0
 * with local_none guarantees no copy at all); -EINVAL as for
 * sl_quorum_required. acks=all: 1; acks=0: N (every node must vote). */
int sl_quorum_votes(const struct sl_ack_policy *p, unsigned n_nodes);

/* The commit position: min(leader_durable (unless local_none), the
 * `required`-th highest of follower positions), never beyond leader_end.
 * `required` == 0 means the leader alone. follower_pos is not modified. */
uint64_t sl_quorum_commit(const struct sl_ack_policy *p, uint64_t leader_end,
			  uint64_t leader_durable, const uint64_t *follower_pos,
			  unsigned n_followers, unsigned required);

/* Parse "0", "1".."15", "majority", "all"; -EINVAL otherwise. */
int sl_acks_parse(const char *s, int *acks);
int sl_ack_level_parse(const char *s, enum sl_ack_level *out);
const char *sl_ack_level_name(enum sl_ack_level l);
/* Writes "majority", "all" or the number into buf. */
const char *sl_acks_name(int acks, char *buf, unsigned cap);

#endif
