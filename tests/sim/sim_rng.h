/* Random helpers over the one seeded PRNG of a simulation (sl_rng_next,
 * xorshift64*). Everything random in a run draws from the same state, so a
 * seed replays the run exactly. */
#ifndef SHIPLOG_SIM_RNG_H
#define SHIPLOG_SIM_RNG_H

#include <stdint.h>

#include "shiplog/workload.h"

/* Uniform in [0, n); 0 when n == 0. The modulo bias (n << 2^64) is
 * irrelevant for a simulator and keeps draws one PRNG step each. */
static inline uint64_t sl_sim_below(uint64_t *rng, uint64_t n)
{
	uint64_t x = sl_rng_next(rng);

	return n ? x % n : 0;
}

/* Uniform in [lo, hi] (inclusive). */
static inline uint64_t sl_sim_range(uint64_t *rng, uint64_t lo, uint64_t hi)
{
	if (hi <= lo) {
		sl_rng_next(rng); /* same number of draws whatever the bounds */
		return lo;
	}
	return lo + sl_sim_below(rng, hi - lo + 1);
}

/* 1 with probability ppm / 1e6. */
static inline int sl_sim_chance(uint64_t *rng, uint32_t ppm)
{
	return sl_sim_below(rng, 1000000) < ppm;
}

/* Uniform in [0, 1). */
static inline double sl_sim_unit(uint64_t *rng)
{
	return (double)(sl_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* splitmix64: turns consecutive seeds into unrelated PRNG states. */
static inline uint64_t sl_sim_mix(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return z ? z : 1;
}

#endif
