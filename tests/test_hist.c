/* Tests for the log-linear histogram: exact small values, bounded relative
 * error on large ones, quantiles against a sorted reference, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "shiplog/hist.h"

static struct sl_hist h, h2;

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void small_values_exact(void **state)
{
	(void)state;
	sl_hist_reset(&h);
	for (uint64_t v = 1; v <= 50; v++)
		sl_hist_record(&h, v);
	assert_int_equal(h.count, 50);
	assert_int_equal(sl_hist_quantile(&h, 0.5), 26);
	assert_int_equal(sl_hist_quantile(&h, 0.0), 1);
	assert_int_equal(sl_hist_quantile(&h, 1.0), 50);
	assert_true(sl_hist_mean(&h) > 25.49 && sl_hist_mean(&h) < 25.51);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void quantiles_within_error(void **state)
{
	enum { N = 20000 };
	static uint64_t vals[N];
	uint64_t rng = 42;
	const double qs[] = {0.1, 0.5, 0.9, 0.99, 0.999};

	(void)state;
	sl_hist_reset(&h);
	for (int i = 0; i < N; i++) {
		/* Spread over ~7 decades. */
		vals[i] = next_rand(&rng) % (1ull << (10 + i % 20));
		sl_hist_record(&h, vals[i]);
	}
	qsort(vals, N, sizeof(vals[0]), cmp_u64);
	for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		uint64_t exact = vals[(size_t)(qs[i] * N)];
		uint64_t got = sl_hist_quantile(&h, qs[i]);
		double err = exact ? ((double)got - (double)exact) / (double)exact : (double)got;

		assert_true(got >= exact);
		assert_true(err <= 1.0 / 32);
	}
	assert_int_equal(sl_hist_quantile(&h, 1.0), vals[N - 1]);
}

static void huge_values_clamp(void **state)
{
	(void)state;
	sl_hist_reset(&h);
	sl_hist_record(&h, UINT64_MAX);
	sl_hist_record(&h, 1ull << 45);
	assert_int_equal(h.count, 2);
	assert_int_equal(sl_hist_quantile(&h, 0.99), UINT64_MAX);
}

static void merge_adds_counts(void **state)
{
	(void)state;
	sl_hist_reset(&h);
	sl_hist_reset(&h2);
	for (int i = 0; i < 100; i++)
		sl_hist_record(&h, 1000);
	for (int i = 0; i < 100; i++)
		sl_hist_record(&h2, 3000);
	sl_hist_merge(&h, &h2);
	assert_int_equal(h.count, 200);
	assert_int_equal(h.min, 1000);
	assert_int_equal(h.max, 3000);
	assert_true(sl_hist_quantile(&h, 0.25) <= 1000 * 65 / 64);
	assert_true(sl_hist_quantile(&h, 0.75) >= 3000);
}

static void empty_is_zero(void **state)
{
	(void)state;
	sl_hist_reset(&h);
	assert_int_equal(sl_hist_quantile(&h, 0.5), 0);
	assert_true(sl_hist_mean(&h) == 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(small_values_exact), cmocka_unit_test(quantiles_within_error),
	    cmocka_unit_test(huge_values_clamp),  cmocka_unit_test(merge_adds_counts),
	    cmocka_unit_test(empty_is_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
