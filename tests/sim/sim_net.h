/* The simulated network between the nodes of one run: per-link loss,
 * duplication, reordering and delay distributions, partitions (reference
 * counted per directed link, so overlapping partitions heal correctly), a
 * bounded pool of frame buffers, and the forging of frames from another
 * cluster, stream, receiver or a lower epoch, or corrupted ones. The net
 * decides fates; the simulator schedules the deliveries. */
#ifndef SHIPLOG_SIM_NET_H
#define SHIPLOG_SIM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/frame.h"
#include "shiplog/quorum.h"

enum sl_sim_delay_kind {
	SL_SIM_DELAY_FIXED = 0, /* base */
	SL_SIM_DELAY_UNIFORM,	/* base + U[0, spread] */
	SL_SIM_DELAY_EXP,	/* base + Exp(mean spread), capped */
	SL_SIM_DELAY_PARETO,	/* base + Pareto(scale spread, alpha 1.5) - spread, capped */
	SL_SIM_DELAY_KINDS
};

struct sl_sim_link {
	uint32_t loss_ppm, dup_ppm, reorder_ppm;
	enum sl_sim_delay_kind kind;
	uint64_t base_ns, spread_ns, cap_ns;
	uint64_t reorder_ns; /* a reordered frame waits up to this much longer */
	uint32_t blocked;    /* partitions currently cutting this direction */
};

/* Ways to forge a frame from a real one (all must change no state). */
enum sl_sim_forge {
	SL_SIM_FORGE_CLUSTER = 0, /* another cluster id */
	SL_SIM_FORGE_STREAM,	  /* another stream id */
	SL_SIM_FORGE_EPOCH,	  /* a lower epoch (stale leader) */
	SL_SIM_FORGE_RECEIVER,	  /* addressed to someone else */
	SL_SIM_FORGE_SENDER,	  /* from a node outside the cluster */
	SL_SIM_FORGE_CORRUPT,	  /* one bit flipped, CRC left wrong */
	SL_SIM_FORGE_KINDS
};

struct sl_sim_net_stats {
	uint64_t sent, delivered, lost, duplicated, partitioned, congested, to_down;
	uint64_t forged;
};

struct sl_sim_net {
	unsigned n; /* nodes */
	struct sl_sim_link link[SL_NODES_MAX][SL_NODES_MAX];
	uint32_t forge_ppm; /* chance a sent frame is also forged and injected */
	uint8_t *slot_mem;  /* n_slots buffers of SL_FRAME_MAX bytes */
	uint32_t *slot_len;
	uint32_t *free_slots;
	uint32_t n_slots, n_free;
	struct sl_sim_net_stats st;
};

/* 0 or -ENOMEM / -EINVAL. */
int sl_sim_net_init(struct sl_sim_net *net, uint32_t n_slots);
void sl_sim_net_destroy(struct sl_sim_net *net);

/* A perfect network of n nodes with a fixed delay: no loss, no partitions,
 * no forging; every slot free, counters zero. */
void sl_sim_net_reset(struct sl_sim_net *net, unsigned n, uint64_t delay_ns);

/* Give each directed link random faults: loss up to max_loss_ppm (<= 30 %),
 * duplication up to max_dup_ppm (<= 50 %), reordering and a random delay
 * distribution. Without `faulty` only the delays vary. */
void sl_sim_net_randomize(struct sl_sim_net *net, uint64_t *rng, int faulty, uint32_t max_loss_ppm,
			  uint32_t max_dup_ppm);

/* End every fault: loss, duplication, reordering, partitions and forging.
 * Delays stay as they are (a healthy network still has latency). */
void sl_sim_net_heal(struct sl_sim_net *net);

/* Cut (delta +1) or restore (-1) the directed link from -> to. */
void sl_sim_net_block(struct sl_sim_net *net, unsigned from, unsigned to, int delta);

static inline int sl_sim_net_blocked(const struct sl_sim_net *net, unsigned from, unsigned to)
{
	return net->link[from][to].blocked > 0;
}

/* One delay draw for the link, reordering included. */
uint64_t sl_sim_net_delay(const struct sl_sim_net *net, unsigned from, unsigned to, uint64_t *rng);
/* Is this frame lost? Duplicated? (one draw each) */
int sl_sim_net_lose(const struct sl_sim_net *net, unsigned from, unsigned to, uint64_t *rng);
int sl_sim_net_dup(const struct sl_sim_net *net, unsigned from, unsigned to, uint64_t *rng);

/* Copy a frame into a free slot: the slot index, or -ENOSPC (congestion:
 * the caller drops the frame) / -EMSGSIZE (over SL_FRAME_MAX). */
int sl_sim_net_slot_put(struct sl_sim_net *net, const uint8_t *frame, size_t len);
const uint8_t *sl_sim_net_slot(const struct sl_sim_net *net, int slot, size_t *len);
void sl_sim_net_slot_free(struct sl_sim_net *net, int slot);

/* Forge `kind` from a valid frame into out (cap >= SL_FRAME_MAX): decode,
 * patch the field, encode again (so the CRC is right and only the field
 * differs), except CORRUPT which flips one bit after encoding. Returns the
 * forged length or -errno (e.g. EPOCH of a frame at epoch 0). */
int sl_sim_net_forge(enum sl_sim_forge kind, const uint8_t *frame, size_t len, uint8_t *out,
		     size_t cap, uint64_t *rng);

const char *sl_sim_delay_kind_name(enum sl_sim_delay_kind k);
const char *sl_sim_forge_name(enum sl_sim_forge k);

#endif
