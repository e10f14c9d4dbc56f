/* The simulator's event queue: a bounded binary min-heap of timed events.
 * Events due at the same virtual time pop in insertion order (each push gets
 * a sequence number), so a run never depends on the heap's internal layout
 * and replays exactly from its seed. */
#ifndef SHIPLOG_SIM_HEAP_H
#define SHIPLOG_SIM_HEAP_H

#include <stdint.h>

enum sl_sim_ev_type {
	SL_SIM_EV_FRAME = 1,	   /* a frame arrives at `node` from `from` */
	SL_SIM_EV_DURABLE,	   /* the node's disk finished syncing its oldest writes */
	SL_SIM_EV_APPLIED,	   /* the node's engine acknowledges what it applied */
	SL_SIM_EV_APPEND,	   /* the workload appends on the leader */
	SL_SIM_EV_CRASH,	   /* the node's process dies */
	SL_SIM_EV_RESTART,	   /* the node's process starts again */
	SL_SIM_EV_PART_START,	   /* a partition begins (arg: partition index) */
	SL_SIM_EV_PART_HEAL,	   /* that partition heals */
	SL_SIM_EV_STORAGE_ERR,	   /* the node's next fsync fails */
	SL_SIM_EV_HEAL_ALL,	   /* end of the fault phase: heal everything */
	SL_SIM_EV_PERSISTED,	   /* the node's superblock write finished */
	SL_SIM_EV_CRASH_LEADER,	   /* the current leader's process dies */
	SL_SIM_EV_CRASH_CANDIDATE, /* a node standing for election dies */
	SL_SIM_EV_CRASH_ALL,	   /* power loss: every node dies (arg: restart spread) */
	SL_SIM_EV_PAUSE,	   /* the current leader stops (SIGSTOP) for `arg` ns */
	SL_SIM_EV_RESUME,	   /* and continues */
	SL_SIM_EV_REBUILD,	   /* the operator rebuilds a node whose log diverged */
	SL_SIM_EV_TRANSFER,	   /* the operator hands the leadership to another node */
	SL_SIM_EV_STEPDOWN,	   /* the operator has the leader step down */
	SL_SIM_EV_ROT,		   /* bits flip, or a batch lands at the wrong offset, on a disk */
	SL_SIM_EV_SCRUB,	   /* every node's scrub reads its log back */
	SL_SIM_EV_FORCE,	   /* the operator forces a follower to lead (promote --force) */
	SL_SIM_EV_TYPES
};

struct sl_sim_event {
	uint64_t time; /* virtual ns */
	uint64_t seq;  /* set by push: tie-breaker, insertion order */
	uint64_t arg;  /* type-specific */
	int32_t slot;  /* frame pool slot (FRAME), -1 otherwise */
	uint16_t type;
	uint8_t node; /* target node index */
	uint8_t from; /* FRAME: sender index */
	uint32_t gen; /* target's incarnation when scheduled: stale if it changed */
	uint32_t flags;
};

struct sl_sim_heap {
	struct sl_sim_event *ev;
	uint32_t len, cap;
	uint64_t next_seq;
};

/* 0, or -ENOMEM / -EINVAL (cap 0). */
int sl_sim_heap_init(struct sl_sim_heap *h, uint32_t cap);
void sl_sim_heap_destroy(struct sl_sim_heap *h);
/* Forget every event (slots are the caller's to release first). */
void sl_sim_heap_clear(struct sl_sim_heap *h);
/* Copies *e, stamping its sequence number. 0, or -ENOSPC when full. */
int sl_sim_heap_push(struct sl_sim_heap *h, const struct sl_sim_event *e);
/* Removes the earliest event into *out. 0, or -ENOENT when empty. */
int sl_sim_heap_pop(struct sl_sim_heap *h, struct sl_sim_event *out);
/* The earliest event, NULL when empty. */
const struct sl_sim_event *sl_sim_heap_peek(const struct sl_sim_heap *h);

static inline uint32_t sl_sim_heap_room(const struct sl_sim_heap *h)
{
	return h->cap - h->len;
}

#endif
