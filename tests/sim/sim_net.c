/* Simulated network; see sim_net.h. */
#include "sim_net.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

int sl_sim_net_init(struct sl_sim_net *net, uint32_t n_slots)
{
	memset(net, 0, sizeof(*net));
	if (n_slots == 0)
		return -EINVAL;
	/* malloc, not calloc: only the slots a run really uses get touched. */
	net->slot_mem = malloc((size_t)n_slots * SL_FRAME_MAX);
	net->slot_len = calloc(n_slots, sizeof(*net->slot_len));
	net->free_slots = calloc(n_slots, sizeof(*net->free_slots));
	if (!net->slot_mem || !net->slot_len || !net->free_slots) {
		sl_sim_net_destroy(net);
		return -ENOMEM;
	}
	net->n_slots = n_slots;
	sl_sim_net_reset(net, 1, 0);
	return 0;
}

void sl_sim_net_destroy(struct sl_sim_net *net)
{
	free(net->slot_mem);
	free(net->slot_len);
	free(net->free_slots);
	memset(net, 0, sizeof(*net));
}

void sl_sim_net_reset(struct sl_sim_net *net, unsigned n, uint64_t delay_ns)
{
	net->n = n;
	memset(net->link, 0, sizeof(net->link));
	for (unsigned a = 0; a < SL_NODES_MAX; a++)
		for (unsigned b = 0; b < SL_NODES_MAX; b++)
			net->link[a][b].base_ns = delay_ns;
	net->forge_ppm = 0;
	/* Lowest slot first: allocation order is part of a deterministic run. */
	for (uint32_t i = 0; i < net->n_slots; i++)
		net->free_slots[i] = net->n_slots - 1 - i;
	net->n_free = net->n_slots;
	memset(&net->st, 0, sizeof(net->st));
}

/* Delays between 2 us and 2 ms: loopback-like to a congested LAN. */
static void randomize_delay(struct sl_sim_link *l, uint64_t *rng)
{
	l->kind = (enum sl_sim_delay_kind)sl_sim_below(rng, SL_SIM_DELAY_KINDS);
	l->base_ns = sl_sim_range(rng, 2000, 100000);
	l->spread_ns = sl_sim_range(rng, 1000, 200000);
	l->cap_ns = sl_sim_range(rng, 200000, 2000000);
}

void sl_sim_net_randomize(struct sl_sim_net *net, uint64_t *rng, int faulty, uint32_t max_loss_ppm,
			  uint32_t max_dup_ppm)
{
	if (max_loss_ppm > 300000)
		max_loss_ppm = 300000;
	if (max_dup_ppm > 500000)
		max_dup_ppm = 500000;
	for (unsigned a = 0; a < net->n; a++) {
		for (unsigned b = 0; b < net->n; b++) {
			struct sl_sim_link *l = &net->link[a][b];
			/* Draw everything whatever `faulty` says: same PRNG use. */
			uint32_t loss = (uint32_t)sl_sim_range(rng, 0, max_loss_ppm);
			uint32_t dup = (uint32_t)sl_sim_range(rng, 0, max_dup_ppm);
			uint32_t reo = (uint32_t)sl_sim_range(rng, 0, 300000);
			uint64_t reo_ns = sl_sim_range(rng, 10000, 1000000);

			randomize_delay(l, rng);
			l->loss_ppm = faulty ? loss : 0;
			l->dup_ppm = faulty ? dup : 0;
			l->reorder_ppm = faulty ? reo : 0;
			l->reorder_ns = faulty ? reo_ns : 0;
		}
	}
}

void sl_sim_net_heal(struct sl_sim_net *net)
{
	for (unsigned a = 0; a < SL_NODES_MAX; a++) {
		for (unsigned b = 0; b < SL_NODES_MAX; b++) {
			struct sl_sim_link *l = &net->link[a][b];

			l->loss_ppm = 0;
			l->dup_ppm = 0;
			l->reorder_ppm = 0;
			l->blocked = 0;
		}
	}
	net->forge_ppm = 0;
}

void sl_sim_net_block(struct sl_sim_net *net, unsigned from, unsigned to, int delta)
{
	struct sl_sim_link *l = &net->link[from][to];

	if (delta > 0)
		l->blocked++;
	else if (l->blocked > 0) /* heal_all may have cleared it already */
		l->blocked--;
}

static uint64_t tail_delay(const struct sl_sim_link *l, uint64_t *rng)
{
	double u = sl_sim_unit(rng), x;

	if (l->kind == SL_SIM_DELAY_EXP)
		x = -log1p(-u) * (double)l->spread_ns;
	else /* Pareto, alpha 1.5, shifted to start at 0 */
		x = (double)l->spread_ns * (pow(1.0 - u, -1.0 / 1.5) - 1.0);
	if (!(x < (double)l->cap_ns)) /* also catches inf */
		return l->cap_ns;
	return (uint64_t)x;
}

uint64_t sl_sim_net_delay(const struct sl_sim_net *net, unsigned from, unsigned to, uint64_t *rng)
{
	const struct sl_sim_link *l = &net->link[from][to];
	uint64_t d = l->base_ns;

	switch (l->kind) {
	case SL_SIM_DELAY_FIXED:
		break;
	case SL_SIM_DELAY_UNIFORM:
		d += sl_sim_range(rng, 0, l->spread_ns);
		break;
	default:
		d += tail_delay(l, rng);
		break;
	}
	if (l->reorder_ppm && sl_sim_chance(rng, l->reorder_ppm))
		d += sl_sim_range(rng, 0, l->reorder_ns);
	return d;
}

int sl_sim_net_lose(const struct sl_sim_net *net, unsigned from, unsigned to, uint64_t *rng)
{
	uint32_t ppm = net->link[from][to].loss_ppm;

	return ppm && sl_sim_chance(rng, ppm);
}

int sl_sim_net_dup(const struct sl_sim_net *net, unsigned from, unsigned to, uint64_t *rng)
{
	uint32_t ppm = net->link[from][to].dup_ppm;

	return ppm && sl_sim_chance(rng, ppm);
}

int sl_sim_net_slot_put(struct sl_sim_net *net, const uint8_t *frame, size_t len)
{
	uint32_t s;

	if (len > SL_FRAME_MAX)
		return -EMSGSIZE;
	if (net->n_free == 0)
		return -ENOSPC;
	s = net->free_slots[--net->n_free];
	memcpy(net->slot_mem + (size_t)s * SL_FRAME_MAX, frame, len);
	net->slot_len[s] = (uint32_t)len;
	return (int)s;
}

const uint8_t *sl_sim_net_slot(const struct sl_sim_net *net, int slot, size_t *len)
{
	*len = net->slot_len[slot];
	return net->slot_mem + (size_t)slot * SL_FRAME_MAX;
}

void sl_sim_net_slot_free(struct sl_sim_net *net, int slot)
{
	net->free_slots[net->n_free++] = (uint32_t)slot;
}

/* Patch one header field of a decoded frame. */
static int forge_field(enum sl_sim_forge kind, struct sl_frame *f, uint64_t *rng)
{
	switch (kind) {
	case SL_SIM_FORGE_CLUSTER:
		f->hdr.cluster_id[sl_sim_below(rng, 16)] ^= (uint8_t)sl_sim_range(rng, 1, 255);
		return 0;
	case SL_SIM_FORGE_STREAM:
		f->hdr.stream_id ^= sl_sim_range(rng, 1, UINT64_MAX);
		return 0;
	case SL_SIM_FORGE_EPOCH:
		/* Pre-votes carry no epoch promise: a lower epoch makes them no
		 * stale frame, and they are answered (changing nothing) anyway. */
		if (f->hdr.epoch == 0 ||
		    (f->hdr.type == SL_FRAME_VOTE_REQ && (f->vreq.flags & SL_VOTE_F_PRE)) ||
		    (f->hdr.type == SL_FRAME_VOTE && (f->vote.flags & SL_VOTE_F_PRE)))
			return -EINVAL;
		f->hdr.epoch = sl_sim_below(rng, f->hdr.epoch);
		return 0;
	case SL_SIM_FORGE_RECEIVER:
		f->hdr.receiver += (uint32_t)sl_sim_range(rng, 1, 1000);
		return 0;
	case SL_SIM_FORGE_SENDER: /* ids past SL_NODES_MAX: never a member */
		f->hdr.sender = (uint32_t)sl_sim_range(rng, SL_NODES_MAX + 1, 100000);
		return 0;
	default:
		return -EINVAL;
	}
}

int sl_sim_net_forge(enum sl_sim_forge kind, const uint8_t *frame, size_t len, uint8_t *out,
		     size_t cap, uint64_t *rng)
{
	struct sl_frame f;
	int rc;

	if (len > cap)
		return -ENOSPC;
	if (kind == SL_SIM_FORGE_CORRUPT) {
		memcpy(out, frame, len);
		out[sl_sim_below(rng, len)] ^= (uint8_t)(1u << sl_sim_below(rng, 8));
		return (int)len;
	}
	rc = sl_frame_decode(frame, len, &f);
	if (rc < 0)
		return rc;
	rc = forge_field(kind, &f, rng);
	if (rc < 0)
		return rc;
	return sl_frame_encode(&f, out, cap);
}

const char *sl_sim_delay_kind_name(enum sl_sim_delay_kind k)
{
	static const char *const names[] = {"fixed", "uniform", "exp", "pareto"};

	return (unsigned)k < SL_SIM_DELAY_KINDS ? names[k] : "?";
}

const char *sl_sim_forge_name(enum sl_sim_forge k)
{
	static const char *const names[] = {"cluster",	"stream", "epoch",
					    "receiver", "sender", "corrupt"};

	return (unsigned)k < SL_SIM_FORGE_KINDS ? names[k] : "?";
}
