/* A Merkle tree over a log's batches, for anti-entropy between replicas: one
 * leaf per batch in position order (sl_merkle_leaf), complete binary
 * subtrees kept level by level as leaves are appended, and a root that
 * folds them. Two replicas with equal roots hold the same batches; when the
 * roots differ, comparing subtree hashes from the top down finds the first
 * batch that differs in O(log n) comparisons. Pure; the memory is allocated
 * once, at init. */
#ifndef SHIPLOG_MERKLE_H
#define SHIPLOG_MERKLE_H

#include <stdint.h>

#define SL_MERKLE_LEVELS 32 /* up to 2^31 leaves */

struct sl_merkle {
	uint64_t cap;			   /* leaves it can hold */
	uint64_t n;			   /* leaves held */
	uint64_t *level[SL_MERKLE_LEVELS]; /* level[k][i]: subtree of leaves [i 2^k, (i+1) 2^k) */
	uint32_t levels;		   /* levels allocated */
};

/* The leaf of a batch: its position, length and header CRC (which covers
 * its payload CRC). Batches that each verify differ in one of them when
 * their bytes differ, but for 1 in 2^32 payloads. */
uint64_t sl_merkle_leaf(uint64_t position, uint32_t len, uint32_t hdr_crc);

/* 0, -EINVAL (cap 0 or over 2^31) or -ENOMEM. */
int sl_merkle_init(struct sl_merkle *m, uint64_t cap);
void sl_merkle_destroy(struct sl_merkle *m);
void sl_merkle_reset(struct sl_merkle *m);

/* Append a leaf: 0, or -ENOSPC when full. */
int sl_merkle_add(struct sl_merkle *m, uint64_t leaf);

/* Forget leaves from `n` on (the log was cut). */
void sl_merkle_truncate(struct sl_merkle *m, uint64_t n);

/* The root over every leaf held; 0 for none. Equal roots: equal leaves
 * (the count is folded in, so a prefix never matches). */
uint64_t sl_merkle_root(const struct sl_merkle *m);
/* The root over the first `n` leaves (n <= m->n), as a tree holding only
 * those would have it: two replicas compare the prefix they both hold. */
uint64_t sl_merkle_root_at(const struct sl_merkle *m, uint64_t n);

/* Replace leaf j (< m->n), recomputing the complete subtrees above it in
 * O(log n): a batch rewritten in place, or found to differ on disk from
 * what was appended. 0, or -ENOENT past the leaves held. */
int sl_merkle_set(struct sl_merkle *m, uint64_t j, uint64_t leaf);

/* The hash of the complete subtree over leaves [i 2^k, (i+1) 2^k), as a peer
 * would ask for it: 0 and *out, or -ENOENT when that subtree is not complete. */
int sl_merkle_node(const struct sl_merkle *m, uint32_t k, uint64_t i, uint64_t *out);

/* The first leaf at which a and b differ (their shorter length when one
 * holds a prefix of the other, their length when equal), found by descending
 * through subtree hashes; *compares counts the hashes compared. */
uint64_t sl_merkle_first_diff(const struct sl_merkle *a, const struct sl_merkle *b,
			      uint64_t *compares);

#endif
