/* Deterministic generated workloads: text-like WAL records (key=value lines a
 * storage engine would log, compressing roughly like real WALs) and random
 * bytes. Pure and seeded, so benchmarks and the simulator can replay them. */
#ifndef SHIPLOG_WORKLOAD_H
#define SHIPLOG_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

enum sl_wl_kind {
	SL_WL_TEXT = 0, /* text-like WAL records */
	SL_WL_RANDOM,	/* incompressible bytes */
};

struct sl_wl {
	enum sl_wl_kind kind;
	uint64_t rng; /* xorshift state */
	uint64_t seq; /* records generated so far */
};

void sl_wl_init(struct sl_wl *w, enum sl_wl_kind kind, uint64_t seed);
/* Fill `len` bytes with the next record. */
void sl_wl_fill(struct sl_wl *w, uint8_t *out, size_t len);
/* Parse "text" / "random"; -EINVAL otherwise. */
int sl_wl_kind_parse(const char *s, enum sl_wl_kind *out);
const char *sl_wl_kind_name(enum sl_wl_kind kind);

/* The PRNG the simulator and workloads share: xorshift64*. */
uint64_t sl_rng_next(uint64_t *state);

#endif
