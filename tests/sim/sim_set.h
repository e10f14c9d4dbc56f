/* A growable hash set of (a, b) pairs of 64-bit values, for the simulator's
 * bookkeeping: which batches leaders sealed (position, CRC) and which
 * batches each node ever held (node and end position, CRC). */
#ifndef SHIPLOG_SIM_SET_H
#define SHIPLOG_SIM_SET_H

#include <stdint.h>

struct sl_sim_set {
	uint64_t *keys; /* pairs; a slot with both words UINT64_MAX is empty */
	uint64_t cap;	/* slots, a power of two */
	uint64_t n;
};

/* 0 or -ENOMEM. */
int sl_sim_set_init(struct sl_sim_set *s, uint64_t cap);
void sl_sim_set_destroy(struct sl_sim_set *s);
void sl_sim_set_clear(struct sl_sim_set *s);
/* 0 (added or already there) or -ENOMEM. (UINT64_MAX, UINT64_MAX) is not a key. */
int sl_sim_set_add(struct sl_sim_set *s, uint64_t a, uint64_t b);
int sl_sim_set_has(const struct sl_sim_set *s, uint64_t a, uint64_t b);

#endif
