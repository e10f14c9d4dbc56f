/* Tests for the workload's record pool: the pool holds what the generator
 * makes, every sl_wl on one pool sends the same stamped stream (what a
 * follower checks byte for byte), and no two records of a stream are equal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shiplog/workload.h"

#define LEN  1024u
#define RECS 64u

static uint8_t pool[RECS * LEN], a[LEN], b[LEN], prev[LEN];

static void pool_holds_generated_records(void **state)
{
	struct sl_wl gen, w;

	(void)state;
	sl_wl_init(&gen, SL_WL_TEXT, 7);
	sl_wl_init(&w, SL_WL_TEXT, 7);
	assert_int_equal(sl_wl_pool_make(&w, pool, sizeof(pool) + LEN - 1, LEN), RECS);
	for (unsigned i = 0; i < RECS; i++) {
		sl_wl_fill(&gen, a, LEN);
		assert_memory_equal(pool + i * LEN, a, LEN);
	}
	/* Too small for one record: the generator keeps going. */
	sl_wl_init(&w, SL_WL_TEXT, 7);
	assert_int_equal(sl_wl_pool_make(&w, pool, LEN - 1, LEN), 0);
	assert_null(w.pool);
}

static void kind_streams_match(enum sl_wl_kind kind)
{
	struct sl_wl maker, user;

	sl_wl_init(&maker, kind, 3);
	assert_int_equal(sl_wl_pool_make(&maker, pool, sizeof(pool), LEN), RECS);
	sl_wl_init(&user, kind, 99); /* the seed no longer matters: the pool does */
	sl_wl_pool_use(&user, pool, RECS, LEN);
	for (unsigned i = 0; i < 3 * RECS; i++) {
		sl_wl_fill(&maker, a, LEN);
		sl_wl_fill(&user, b, LEN);
		assert_memory_equal(a, b, LEN);
		/* The copy is its pool record but for the stamp. */
		assert_memory_equal(a + 32, pool + (i % RECS) * LEN + 32, LEN - 32);
		if (i > 0)
			assert_memory_not_equal(a, prev, LEN);
		memcpy(prev, a, LEN);
	}
	assert_int_equal(maker.seq, 3 * RECS);
}

static void streams_match_text(void **state)
{
	(void)state;
	kind_streams_match(SL_WL_TEXT);
	/* Text keeps its shape: the stamp is the ts= field's 16 digits. */
	assert_memory_equal(a, "ts=17000000000", 14);
	assert_int_equal(a[19], ' ');
	assert_int_equal(a[LEN - 1], '\n');
}

static void streams_match_random(void **state)
{
	(void)state;
	kind_streams_match(SL_WL_RANDOM);
}

static void other_lengths_generated(void **state)
{
	struct sl_wl w;

	(void)state;
	sl_wl_init(&w, SL_WL_TEXT, 5);
	sl_wl_pool_make(&w, pool, sizeof(pool), LEN);
	sl_wl_fill(&w, a, 100);
	assert_memory_not_equal(a, pool, 100); /* not a pool record's head */
	assert_memory_equal(a, "ts=", 3);
	assert_int_equal(a[99], '\n');
	assert_int_equal(w.seq, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pool_holds_generated_records),
	    cmocka_unit_test(streams_match_text),
	    cmocka_unit_test(streams_match_random),
	    cmocka_unit_test(other_lengths_generated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
