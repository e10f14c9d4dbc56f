/* Sparse LSN index; see index.h. */
#include "index.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sl_index_init(struct sl_index *x, uint32_t cap, uint64_t gap)
{
	assert(cap >= 2 && gap > 0);
	x->e = calloc(cap, sizeof(*x->e));
	if (x->e == NULL)
		return -ENOMEM;
	x->n = 0;
	x->cap = cap;
	x->gap = gap;
	return 0;
}

void sl_index_free(struct sl_index *x)
{
	free(x->e);
	x->e = NULL;
	x->n = x->cap = 0;
}

/* Full: keep every other entry and double the spacing, so the index covers
 * any log size in fixed memory at the cost of longer reads per lookup. */
static void coarsen(struct sl_index *x)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < x->n; i += 2)
		x->e[j++] = x->e[i];
	x->n = j;
	x->gap *= 2;
}

void sl_index_add(struct sl_index *x, const struct sl_index_entry *e)
{
	if (x->n > 0) {
		const struct sl_index_entry *last = &x->e[x->n - 1];

		assert(e->position >= last->position && e->lsn >= last->lsn);
		if (e->seg == last->seg && e->position - last->position < x->gap)
			return;
	}
	if (x->n == x->cap)
		coarsen(x);
	x->e[x->n++] = *e;
}

/* The last entry whose key (LSN or position, both non-decreasing along the
 * index) is <= `key`, or NULL. */
static const struct sl_index_entry *find_last_le(const struct sl_index *x, uint64_t key, int by_pos)
{
	uint32_t lo = 0, hi = x->n; /* answer: the last index in [0, lo) */

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if ((by_pos ? x->e[mid].position : x->e[mid].lsn) <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? NULL : &x->e[lo - 1];
}

const struct sl_index_entry *sl_index_find(const struct sl_index *x, uint64_t lsn)
{
	return find_last_le(x, lsn, 0);
}

const struct sl_index_entry *sl_index_find_pos(const struct sl_index *x, uint64_t position)
{
	return find_last_le(x, position, 1);
}

void sl_index_cut(struct sl_index *x, uint64_t position)
{
	while (x->n > 0 && x->e[x->n - 1].position >= position)
		x->n--;
}

void sl_index_drop_seg(struct sl_index *x, const struct sl_seg *seg)
{
	uint32_t k = 0;

	while (k < x->n && x->e[k].seg == seg)
		k++;
	memmove(x->e, x->e + k, (size_t)(x->n - k) * sizeof(*x->e));
	x->n -= k;
}
