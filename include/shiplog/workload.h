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
	/* A prepared pool (sl_wl_pool_make/use), NULL: each record generated. */
	const uint8_t *pool;
	size_t pool_recs;
	uint32_t pool_len;
};

/* The pool benchmarks send from: far larger than a 64 KiB batch, so a batch
 * of pooled records compresses as one of freshly generated ones does. */
#define SL_WL_POOL_BYTES (8u << 20)

void sl_wl_init(struct sl_wl *w, enum sl_wl_kind kind, uint64_t seed);
/* Fill `len` bytes with the next record. */
void sl_wl_fill(struct sl_wl *w, uint8_t *out, size_t len);
/* Records from a prepared pool, as benchmarks commonly send them: generate
 * cap / len records of `len` bytes into `buf` (as sl_wl_fill would) and
 * use them. Returns the records in the pool, 0 when not even one fits (w
 * then keeps generating). */
size_t sl_wl_pool_make(struct sl_wl *w, uint8_t *buf, size_t cap, uint32_t len);
/* Use a pool another sl_wl made (same kind; read-only, may be shared across
 * threads once made). From then on sl_wl_fill of `len` bytes copies pool
 * record seq % recs and stamps it with its own sequence number (text: the
 * ts= field, random: the first 8 bytes), so the stream is the same for every
 * sl_wl on the same pool: a follower can check it byte for byte. Other
 * lengths are still generated. */
void sl_wl_pool_use(struct sl_wl *w, const uint8_t *pool, size_t recs, uint32_t len);
/* Parse "text" / "random"; -EINVAL otherwise. */
int sl_wl_kind_parse(const char *s, enum sl_wl_kind *out);
const char *sl_wl_kind_name(enum sl_wl_kind kind);

/* The PRNG the simulator and workloads share: xorshift64*. */
uint64_t sl_rng_next(uint64_t *state);

#endif
