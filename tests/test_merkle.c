/* The Merkle tree: roots agree exactly when the leaves do, one changed leaf
 * anywhere (for every length to 300) is found by descending in O(log n)
 * comparisons, prefixes and truncation, subtree queries, bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "shiplog/merkle.h"

static uint64_t rng = 0x1234567;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(struct sl_merkle *m, const uint64_t *leaves, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(sl_merkle_add(m, leaves[i]), 0);
}

static void leaves_identify_batches(void **state)
{
	(void)state;
	assert_int_not_equal(sl_merkle_leaf(0, 100, 7), sl_merkle_leaf(1, 100, 7));
	assert_int_not_equal(sl_merkle_leaf(0, 100, 7), sl_merkle_leaf(0, 101, 7));
	assert_int_not_equal(sl_merkle_leaf(0, 100, 7), sl_merkle_leaf(0, 100, 8));
	assert_int_equal(sl_merkle_leaf(4096, 100, 7), sl_merkle_leaf(4096, 100, 7));
}

/* Every length 0..300: equal leaves, equal roots; a changed leaf at any
 * index is the first difference found, in O(log n) comparisons. */
static void one_changed_leaf_is_found(void **state)
{
	static uint64_t leaves[300];
	struct sl_merkle a, b;

	(void)state;
	for (int i = 0; i < 300; i++)
		leaves[i] = next();
	assert_int_equal(sl_merkle_init(&a, 300), 0);
	assert_int_equal(sl_merkle_init(&b, 300), 0);
	for (uint64_t n = 0; n <= 300; n++) {
		uint64_t compares;

		sl_merkle_reset(&a);
		sl_merkle_reset(&b);
		fill(&a, leaves, n);
		fill(&b, leaves, n);
		assert_int_equal(sl_merkle_root(&a), sl_merkle_root(&b));
		assert_int_equal(sl_merkle_first_diff(&a, &b, &compares), n);
		for (uint64_t j = 0; j < n; j += 1 + n / 17) {
			sl_merkle_reset(&b);
			for (uint64_t i = 0; i < n; i++)
				sl_merkle_add(&b, i == j ? leaves[i] ^ 1 : leaves[i]);
			assert_int_not_equal(sl_merkle_root(&a), sl_merkle_root(&b));
			assert_int_equal(sl_merkle_first_diff(&a, &b, &compares), j);
			assert_true(compares <= 2 * 9 + 2); /* log2(300) levels, twice */
		}
	}
	assert_int_equal(sl_merkle_root(&a) != 0, 1);
	sl_merkle_destroy(&a);
	sl_merkle_destroy(&b);
}

/* A prefix differs from the whole (the count is in the root), and its
 * first difference is where it ends; cutting the longer back to the prefix
 * and appending other leaves behaves as a tree built that way. */
static void prefixes_and_truncation(void **state)
{
	static uint64_t leaves[100], other[100];
	struct sl_merkle a, b, c;
	uint64_t compares;

	(void)state;
	for (int i = 0; i < 100; i++) {
		leaves[i] = next();
		other[i] = next();
	}
	assert_int_equal(sl_merkle_init(&a, 100), 0);
	assert_int_equal(sl_merkle_init(&b, 100), 0);
	assert_int_equal(sl_merkle_init(&c, 100), 0);
	fill(&a, leaves, 100);
	fill(&b, leaves, 61);
	assert_int_not_equal(sl_merkle_root(&a), sl_merkle_root(&b));
	assert_int_equal(sl_merkle_first_diff(&a, &b, &compares), 61);
	assert_int_equal(sl_merkle_first_diff(&b, &a, &compares), 61);

	sl_merkle_truncate(&a, 61);
	assert_int_equal(a.n, 61);
	assert_int_equal(sl_merkle_root(&a), sl_merkle_root(&b));
	fill(&a, other + 61, 39);
	fill(&c, leaves, 61);
	fill(&c, other + 61, 39);
	assert_int_equal(sl_merkle_root(&a), sl_merkle_root(&c));
	sl_merkle_truncate(&a, 500); /* never grows */
	assert_int_equal(a.n, 100);
	sl_merkle_destroy(&a);
	sl_merkle_destroy(&b);
	sl_merkle_destroy(&c);
}

/* Subtree hashes as a peer asks for them: complete subtrees only; a change
 * shows in the subtrees that hold it and no other. */
static void subtree_queries(void **state)
{
	static uint64_t leaves[16];
	struct sl_merkle a, b;
	uint64_t h, g;

	(void)state;
	for (int i = 0; i < 16; i++)
		leaves[i] = next();
	assert_int_equal(sl_merkle_init(&a, 16), 0);
	assert_int_equal(sl_merkle_init(&b, 16), 0);
	fill(&a, leaves, 13);
	assert_int_equal(sl_merkle_node(&a, 0, 12, &h), 0);
	assert_int_equal(h, leaves[12]);
	assert_int_equal(sl_merkle_node(&a, 0, 13, &h), -ENOENT);
	assert_int_equal(sl_merkle_node(&a, 3, 0, &h), 0);
	assert_int_equal(sl_merkle_node(&a, 3, 1, &h), -ENOENT); /* 8..15: 13 held */
	assert_int_equal(sl_merkle_node(&a, 2, 2, &h), 0);	 /* 8..11 */
	assert_int_equal(sl_merkle_node(&a, 4, 0, &h), -ENOENT);
	assert_int_equal(sl_merkle_node(&a, 40, 0, &h), -ENOENT);
	leaves[10] ^= 4;
	fill(&b, leaves, 13);
	assert_int_equal(sl_merkle_node(&a, 2, 1, &h), 0);
	assert_int_equal(sl_merkle_node(&b, 2, 1, &g), 0);
	assert_int_equal(h, g); /* 4..7 unchanged */
	assert_int_equal(sl_merkle_node(&a, 2, 2, &h), 0);
	assert_int_equal(sl_merkle_node(&b, 2, 2, &g), 0);
	assert_int_not_equal(h, g); /* 8..11 holds the change */
	sl_merkle_destroy(&a);
	sl_merkle_destroy(&b);
}

/* A prefix's root is the root of a tree holding only that prefix; setting
 * a leaf gives the tree one built with that leaf. */
static void prefix_roots_and_set(void **state)
{
	static uint64_t leaves[77];
	struct sl_merkle a, b;

	(void)state;
	for (int i = 0; i < 77; i++)
		leaves[i] = next();
	assert_int_equal(sl_merkle_init(&a, 77), 0);
	assert_int_equal(sl_merkle_init(&b, 77), 0);
	fill(&a, leaves, 77);
	for (uint64_t n = 0; n <= 77; n++) {
		sl_merkle_reset(&b);
		fill(&b, leaves, n);
		assert_int_equal(sl_merkle_root_at(&a, n), sl_merkle_root(&b));
	}
	assert_int_equal(sl_merkle_root_at(&a, 78), 0);
	for (uint64_t j = 0; j < 77; j += 5) {
		uint64_t compares, old = leaves[j];

		leaves[j] ^= 0x100;
		sl_merkle_reset(&b);
		fill(&b, leaves, 77);
		assert_int_equal(sl_merkle_set(&a, j, leaves[j]), 0);
		assert_int_equal(sl_merkle_root(&a), sl_merkle_root(&b));
		assert_int_equal(sl_merkle_first_diff(&a, &b, &compares), 77);
		for (uint64_t n = 1; n <= 77; n += 7)
			assert_int_equal(sl_merkle_root_at(&a, n), sl_merkle_root_at(&b, n));
		leaves[j] = old;
		assert_int_equal(sl_merkle_set(&a, j, old), 0);
	}
	assert_int_equal(sl_merkle_set(&a, 77, 1), -ENOENT);
	sl_merkle_destroy(&a);
	sl_merkle_destroy(&b);
}

static void bounds(void **state)
{
	struct sl_merkle m;

	(void)state;
	assert_int_equal(sl_merkle_init(&m, 0), -EINVAL);
	assert_int_equal(sl_merkle_init(&m, 1ull << 40), -EINVAL);
	assert_int_equal(sl_merkle_init(&m, 3), 0);
	assert_int_equal(sl_merkle_root(&m), 0);
	assert_int_equal(sl_merkle_add(&m, 1), 0);
	assert_int_equal(sl_merkle_add(&m, 2), 0);
	assert_int_equal(sl_merkle_add(&m, 3), 0);
	assert_int_equal(sl_merkle_add(&m, 4), -ENOSPC);
	assert_int_not_equal(sl_merkle_root(&m), 0);
	sl_merkle_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(leaves_identify_batches), cmocka_unit_test(one_changed_leaf_is_found),
	    cmocka_unit_test(prefixes_and_truncation), cmocka_unit_test(subtree_queries),
	    cmocka_unit_test(prefix_roots_and_set),    cmocka_unit_test(bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
