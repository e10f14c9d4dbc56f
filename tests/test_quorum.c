/* Commit rule for every policy and N = 1..7, against a reference computed by
 * sorting; required-ack counts; parsing; the debug undercount switch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "shiplog/quorum.h"

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Reference: sort copies, take the required-th highest, cap by the leader. */
static uint64_t reference(const struct sl_ack_policy *p, uint64_t end, uint64_t durable,
			  const uint64_t *f, unsigned n, unsigned req)
{
	uint64_t s[SL_NODES_MAX], c = p->local_none ? end : durable;

	for (unsigned i = 0; i < n; i++)
		s[i] = f[i];
	qsort(s, n, sizeof(s[0]), cmp_desc);
	if (req > 0 && s[req - 1] < c)
		c = s[req - 1];
	return c < end ? c : end;
}

static void required_counts(void **state)
{
	struct sl_ack_policy p = {0};

	(void)state;
	for (unsigned n = 1; n <= 7; n++) {
		p.acks = SL_ACKS_MAJORITY;
		assert_int_equal(sl_quorum_required(&p, n), (int)(n / 2 + 1) - 1);
		p.acks = SL_ACKS_ALL;
		assert_int_equal(sl_quorum_required(&p, n), (int)n - 1);
		for (int k = 0; k < (int)n; k++) {
			p.acks = k;
			assert_int_equal(sl_quorum_required(&p, n), k);
		}
		p.acks = (int)n; /* more acks than followers */
		assert_int_equal(sl_quorum_required(&p, n), -EINVAL);
	}
	p.acks = 1;
	assert_int_equal(sl_quorum_required(&p, 0), -EINVAL);
	assert_int_equal(sl_quorum_required(&p, SL_NODES_MAX + 1), -EINVAL);
	/* Majority of 3 needs 1 follower, of 4 needs 2, of 5 needs 2. */
	p.acks = SL_ACKS_MAJORITY;
	assert_int_equal(sl_quorum_required(&p, 3), 1);
	assert_int_equal(sl_quorum_required(&p, 4), 2);
	assert_int_equal(sl_quorum_required(&p, 5), 2);
}

static void commit_matches_reference(void **state)
{
	const int policies[] = {0, 1, 2, 3, 4, 5, 6, SL_ACKS_MAJORITY, SL_ACKS_ALL};
	uint64_t rng = 7, f[SL_NODES_MAX];

	(void)state;
	for (unsigned n = 1; n <= 7; n++) {
		for (unsigned pi = 0; pi < sizeof(policies) / sizeof(policies[0]); pi++) {
			for (int local_none = 0; local_none <= 1; local_none++) {
				struct sl_ack_policy p = {.acks = policies[pi],
							  .local_none = local_none};
				int req = sl_quorum_required(&p, n);

				if (req < 0)
					continue;
				for (int trial = 0; trial < 200; trial++) {
					uint64_t end, durable;

					rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
					end = 1000 + rng % 1000;
					durable = rng % (end + 1);
					for (unsigned i = 0; i + 1 < n; i++) {
						rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
						f[i] = rng % 2200;
					}
					assert_int_equal(
					    sl_quorum_commit(&p, end, durable, f, n - 1,
							     (unsigned)req),
					    reference(&p, end, durable, f, n - 1, (unsigned)req));
				}
			}
		}
	}
}

static void exact_cases(void **state)
{
	struct sl_ack_policy p = {.acks = 1};
	const uint64_t f[] = {300, 500};

	(void)state;
	/* acks=1: the best follower (500), but not past the leader's durable 400. */
	assert_int_equal(sl_quorum_commit(&p, 1000, 400, f, 2, 1), 400);
	assert_int_equal(sl_quorum_commit(&p, 1000, 900, f, 2, 1), 500);
	/* all: the slowest follower. */
	assert_int_equal(sl_quorum_commit(&p, 1000, 900, f, 2, 2), 300);
	/* async: the leader alone. */
	assert_int_equal(sl_quorum_commit(&p, 1000, 900, f, 2, 0), 900);
	/* local=none: leader durability does not count, its end still caps. */
	p.local_none = 1;
	assert_int_equal(sl_quorum_commit(&p, 1000, 0, f, 2, 1), 500);
	assert_int_equal(sl_quorum_commit(&p, 450, 0, f, 2, 1), 450);
	/* Impossible requirement commits nothing. */
	assert_int_equal(sl_quorum_commit(&p, 1000, 900, f, 2, 3), 0);
}

static void undercount_switch(void **state)
{
	struct sl_ack_policy p = {.acks = SL_ACKS_ALL, .debug_undercount = 1};

	(void)state;
	assert_int_equal(sl_quorum_required(&p, 3), 1);
	p.acks = 0;
	assert_int_equal(sl_quorum_required(&p, 3), 0);
}

/* Election quorum: N - W + 1 with W = acks + 1 (acks + 0 with local_none),
 * and the property it exists for: any election quorum meets any set of W
 * nodes that acknowledged a commit. */
static void vote_counts(void **state)
{
	struct sl_ack_policy p = {0};

	(void)state;
	p.acks = SL_ACKS_ALL;
	assert_int_equal(sl_quorum_votes(&p, 5), 1);
	p.acks = 0;
	assert_int_equal(sl_quorum_votes(&p, 5), 5);
	p.acks = 1;
	assert_int_equal(sl_quorum_votes(&p, 3), 2);
	p.acks = SL_ACKS_MAJORITY;
	assert_int_equal(sl_quorum_votes(&p, 3), 2);
	assert_int_equal(sl_quorum_votes(&p, 4), 2);
	assert_int_equal(sl_quorum_votes(&p, 5), 3);
	p.local_none = 1;
	assert_int_equal(sl_quorum_votes(&p, 5), 4); /* W = 2 followers */
	p.acks = 0;
	assert_int_equal(sl_quorum_votes(&p, 3), 3); /* nothing held: capped at N */
	p = (struct sl_ack_policy){.acks = 1, .debug_undercount = 1};
	assert_int_equal(sl_quorum_votes(&p, 3), 2); /* the commit switch moves nothing */
	p.debug_undervote = 1;
	assert_int_equal(sl_quorum_votes(&p, 3), 1);
	p = (struct sl_ack_policy){.acks = 3};
	assert_int_equal(sl_quorum_votes(&p, 3), -EINVAL);

	for (unsigned n = 1; n <= 7; n++)
		for (int acks = 0; acks < (int)n; acks++)
			for (int ln = 0; ln <= 1; ln++) {
				int w, q;

				p = (struct sl_ack_policy){.acks = acks, .local_none = ln};
				q = sl_quorum_votes(&p, n);
				w = acks + !ln;
				assert_true(q >= 1 && q <= (int)n);
				if (w >= 1)
					assert_true(q + w > (int)n); /* quorums intersect */
			}
}

static void parsing(void **state)
{
	int acks;
	enum sl_ack_level l;
	char buf[8];

	(void)state;
	assert_int_equal(sl_acks_parse("majority", &acks), 0);
	assert_int_equal(acks, SL_ACKS_MAJORITY);
	assert_int_equal(sl_acks_parse("all", &acks), 0);
	assert_int_equal(acks, SL_ACKS_ALL);
	assert_int_equal(sl_acks_parse("3", &acks), 0);
	assert_int_equal(acks, 3);
	assert_int_equal(sl_acks_parse("-1", &acks), -EINVAL);
	assert_int_equal(sl_acks_parse("16", &acks), -EINVAL);
	assert_int_equal(sl_acks_parse("2x", &acks), -EINVAL);
	assert_int_equal(sl_ack_level_parse("durable", &l), 0);
	assert_int_equal(l, SL_ACK_DURABLE);
	assert_int_equal(sl_ack_level_parse("fsync", &l), -EINVAL);
	assert_string_equal(sl_acks_name(SL_ACKS_ALL, buf, sizeof(buf)), "all");
	assert_string_equal(sl_acks_name(2, buf, sizeof(buf)), "2");
	assert_string_equal(sl_ack_level_name(SL_ACK_APPLIED), "applied");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(required_counts), cmocka_unit_test(commit_matches_reference),
	    cmocka_unit_test(exact_cases),     cmocka_unit_test(undercount_switch),
	    cmocka_unit_test(vote_counts),     cmocka_unit_test(parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
