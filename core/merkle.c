/* Merkle tree over batches; see include/shiplog/merkle.h.
 *
 * level[k][i] holds the hash of the complete subtree over leaves
 * [i 2^k, (i+1) 2^k). Appending leaf n fills level 0 and, while n is the
 * right child of its parent, the parents above: O(log n). The root folds the
 * peaks (the complete subtrees that n's binary digits split [0, n) into, the
 * largest first) with the leaf count, as a Merkle mountain range does. */
#include "shiplog/merkle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEAF 0x4c45414620534c31ull /* distinct starting points per kind */
#define TAG_NODE 0x4e4f444520534c31ull
#define TAG_ROOT 0x524f4f5420534c31ull

/* splitmix64's finalizer: every input bit moves every output bit. */
static uint64_t mix(uint64_t z)
{
	z ^= z >> 30;
	z *= 0xBF58476D1CE4E5B9ull;
	z ^= z >> 27;
	z *= 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Order matters: (a, b) and (b, a) hash apart. */
static uint64_t combine(uint64_t tag, uint64_t a, uint64_t b)
{
	return mix(mix(tag ^ a) + 0x9E3779B97F4A7C15ull * b);
}

uint64_t sl_merkle_leaf(uint64_t position, uint32_t len, uint32_t hdr_crc)
{
	return combine(TAG_LEAF, position, (uint64_t)len << 32 | hdr_crc);
}

int sl_merkle_init(struct sl_merkle *m, uint64_t cap)
{
	memset(m, 0, sizeof(*m));
	if (cap == 0 || cap > (1ull << (SL_MERKLE_LEVELS - 1)))
		return -EINVAL;
	m->cap = cap;
	for (uint32_t k = 0; k < SL_MERKLE_LEVELS && (cap >> k) > 0; k++) {
		m->level[k] = malloc((cap >> k) * sizeof(uint64_t));
		if (!m->level[k]) {
			sl_merkle_destroy(m);
			return -ENOMEM;
		}
		m->levels = k + 1;
	}
	return 0;
}

void sl_merkle_destroy(struct sl_merkle *m)
{
	for (uint32_t k = 0; k < m->levels; k++)
		free(m->level[k]);
	memset(m, 0, sizeof(*m));
}

void sl_merkle_reset(struct sl_merkle *m)
{
	m->n = 0;
}

int sl_merkle_add(struct sl_merkle *m, uint64_t leaf)
{
	uint64_t i = m->n;

	if (m->n == m->cap)
		return -ENOSPC;
	m->level[0][i] = leaf;
	/* While i is a right child, its parent's subtree is now complete. */
	for (uint32_t k = 0; (i & 1) && k + 1 < m->levels; k++, i >>= 1)
		m->level[k + 1][i >> 1] = combine(TAG_NODE, m->level[k][i - 1], m->level[k][i]);
	m->n++;
	return 0;
}

void sl_merkle_truncate(struct sl_merkle *m, uint64_t n)
{
	if (n < m->n)
		m->n = n; /* subtrees past n are recomputed as leaves come again */
}

uint64_t sl_merkle_root(const struct sl_merkle *m)
{
	return sl_merkle_root_at(m, m->n);
}

/* The subtrees of a prefix of n leaves are complete subtrees of the whole,
 * computed when their last leaf came: the prefix's peaks are all there. */
uint64_t sl_merkle_root_at(const struct sl_merkle *m, uint64_t n)
{
	uint64_t h = mix(TAG_ROOT ^ n), start = 0;

	if (n == 0 || n > m->n)
		return 0;
	for (uint32_t k = m->levels; k-- > 0;) {
		if (!(n >> k & 1))
			continue;
		h = combine(TAG_ROOT, h, m->level[k][start >> k]);
		start += 1ull << k;
	}
	return h;
}

int sl_merkle_set(struct sl_merkle *m, uint64_t j, uint64_t leaf)
{
	if (j >= m->n)
		return -ENOENT;
	m->level[0][j] = leaf;
	/* Up through every parent whose subtree is complete. */
	for (uint32_t k = 0; k + 1 < m->levels && ((j >> 1) + 1) << (k + 1) <= m->n; k++, j >>= 1)
		m->level[k + 1][j >> 1] =
		    combine(TAG_NODE, m->level[k][j & ~1ull], m->level[k][j | 1]);
	return 0;
}

int sl_merkle_node(const struct sl_merkle *m, uint32_t k, uint64_t i, uint64_t *out)
{
	if (k >= m->levels || (i + 1) << k > m->n)
		return -ENOENT;
	*out = m->level[k][i];
	return 0;
}

/* Inside a subtree whose hashes differ: the leftmost differing leaf. */
static uint64_t descend(const struct sl_merkle *a, const struct sl_merkle *b, uint32_t k,
			uint64_t i, uint64_t *compares)
{
	while (k > 0) {
		k--;
		i <<= 1;
		++*compares;
		if (a->level[k][i] == b->level[k][i])
			i++; /* the left halves agree: the difference is on the right */
	}
	return i;
}

uint64_t sl_merkle_first_diff(const struct sl_merkle *a, const struct sl_merkle *b,
			      uint64_t *compares)
{
	uint64_t n = a->n < b->n ? a->n : b->n, start = 0;
	uint32_t levels = a->levels < b->levels ? a->levels : b->levels;

	*compares = 0;
	for (uint32_t k = levels; k-- > 0;) {
		if (!(n >> k & 1))
			continue;
		++*compares;
		if (a->level[k][start >> k] != b->level[k][start >> k])
			return descend(a, b, k, start >> k, compares);
		start += 1ull << k;
	}
	return n;
}
