/* Anti-entropy in the protocol (core/entropy.c), on the in-memory harness:
 * a follower compares its tree with the leader's when it joins and then
 * every interval; equal logs compare equal, one divergent batch is found
 * with O(log n) questions; a bad batch is fetched from the leader, checked
 * against its leaf and rewritten, and a valid batch that differs from the
 * leader's is replaced with the leader's; nothing at or past the commit is
 * repaired;
 * a node without enough sealed leaves makes the asker compare less. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_harness.h"

#define SEC 1000000000ull

static struct harness h;

static void start(void)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_DURABLE};

	assert_int_equal(h_init_tree(&h, 3, &pol), 0);
	/* Batches of about 4 KiB: 60 of them. */
	for (int i = 0; i < 60; i++) {
		for (int r = 0; r < 4; r++)
			assert_true(h_append(&h, 1000) > 0);
		assert_int_equal(sl_proto_flush(h.nodes[0].p, h.now), 0);
		h_run(&h, 100000);
	}
	h_advance(&h, 20000000); /* heartbeats carry the commit */
	h_run(&h, 100000);
}

static struct sl_entropy_status entropy_of(int i)
{
	struct sl_proto_status s;

	sl_proto_get_status(h.nodes[i].p, &s);
	return s.entropy;
}

/* Run the cluster for `ns` in 10 ms steps. */
static uint64_t run_for(uint64_t ns)
{
	uint64_t frames = 0;

	for (uint64_t t = 0; t < ns; t += 10000000) {
		h_advance(&h, 10000000);
		frames += h_run(&h, 100000);
	}
	return frames;
}

static void equal_logs_compare_equal(void **state)
{
	struct sl_entropy_status e;

	(void)state;
	start();
	run_for(SEC / 10);
	for (int i = 1; i < 3; i++) {
		e = entropy_of(i);
		assert_true(e.comparisons >= 1);
		assert_int_equal(e.last_result, SL_ENTROPY_EQUAL);
		assert_int_equal(e.last_leaves, 60);
		assert_int_equal(e.last_peer, 1);
		assert_int_equal(e.differences, 0);
	}
	/* Then every interval (10 s by default), not more often. */
	run_for(9 * SEC);
	assert_int_equal(entropy_of(1).comparisons, 1);
	run_for(2 * SEC);
	assert_int_equal(entropy_of(1).comparisons, 2);
	assert_string_equal(sl_entropy_result_name(SL_ENTROPY_EQUAL), "equal");
	h_free(&h);
}

/* One divergent leaf at each place: the first difference found, asking at
 * most two questions per level (6 levels for 60 leaves), plus the root. */
static void a_divergent_batch_is_found(void **state)
{
	(void)state;
	start();
	run_for(SEC / 10);
	for (uint64_t j = 0; j < 60; j += 7) {
		uint64_t before = h.sent, c0 = entropy_of(2).comparisons;
		struct sl_entropy_status e;

		h.nodes[2].xor_leaf = j;
		sl_proto_tick(h.nodes[2].p, h.now + 11 * SEC);
		h.now += 11 * SEC;
		h_run(&h, 100000);
		e = entropy_of(2);
		assert_int_equal(e.comparisons, c0 + 1);
		assert_int_equal(e.last_result, SL_ENTROPY_DIFFER);
		assert_int_equal(e.diff_leaf, j);
		assert_int_equal(e.diff_pos, h.nodes[2].leaf_pos[j]);
		assert_true(h.sent - before <= 2 * (1 + 2 * 6) + 4); /* and a STATUS or two */
	}
	h_free(&h);
}

/* The leader holds fewer sealed leaves: the follower compares those. */
static void compares_what_both_hold(void **state)
{
	(void)state;
	start();
	h.nodes[0].sealed_pos = 100000; /* about 24 batches */
	run_for(11 * SEC);
	assert_int_equal(entropy_of(1).last_result, SL_ENTROPY_EQUAL);
	assert_true(entropy_of(1).last_leaves > 10);
	assert_true(entropy_of(1).last_leaves < 60);
	h_free(&h);
}

/* A bad batch (a bit flipped in the follower's copy) is fetched from the
 * leader and rewritten: the logs are equal again, byte for byte. */
static void a_bad_batch_is_repaired(void **state)
{
	struct h_node *f;
	uint64_t pos, len, leaf;
	struct sl_entropy_status e;

	(void)state;
	start();
	run_for(SEC / 10);
	f = &h.nodes[1];
	pos = f->leaf_pos[17];
	len = f->leaf_pos[18] - pos;
	leaf = f->tree.level[0][17];
	f->log[pos + 500] ^= 0x10;
	assert_int_not_equal(memcmp(f->log, h.nodes[0].log, f->durable), 0);
	assert_int_equal(sl_proto_repair(f->p, pos, (uint32_t)len, leaf, h.now), 0);
	assert_int_equal(sl_proto_repair(f->p, pos, (uint32_t)len, leaf, h.now), 0); /* once */
	assert_int_equal(entropy_of(1).repairs_pending, 1);
	run_for(SEC / 10);
	e = entropy_of(1);
	assert_int_equal(e.repairs, 1);
	assert_int_equal(e.repairs_asked, 1);
	assert_int_equal(e.repairs_pending, 0);
	assert_int_equal(f->rewrites, 1);
	assert_int_equal(entropy_of(0).repairs_served, 1);
	assert_memory_equal(f->log, h.nodes[0].log, f->durable);

	/* A batch whose leaf the good copy does not match is not written. */
	assert_int_equal(sl_proto_repair(f->p, pos, (uint32_t)len, leaf ^ 1, h.now), 0);
	run_for(SEC);
	e = entropy_of(1);
	assert_int_equal(f->rewrites, 1);
	assert_int_equal(e.repairs_failed, 1);
	/* Nothing at or past the commit position. */
	assert_int_equal(sl_proto_repair(f->p, f->durable, 100, 0, h.now), -EAGAIN);
	assert_int_equal(sl_proto_repair(f->p, pos, 0, 0, h.now), -EINVAL);
	h_free(&h);
}

/* A valid batch copied over another of the same length in a follower's
 * log (its tree shows it): the comparison finds the leaf and replaces the
 * batch in place with the leader's copy, checked against the leader's leaf,
 * whether the leaf is a left or a right child; the next comparison is
 * equal. */
static void a_misplaced_batch_is_replaced(void **state)
{
	struct h_node *f;
	struct sl_entropy_status e;
	int replaced = 0;

	(void)state;
	start();
	run_for(SEC / 10);
	f = &h.nodes[2];
	for (uint64_t j = 3; j < 40 && replaced < 2; j++) {
		uint64_t pos = f->leaf_pos[j], len = f->leaf_pos[j + 1] - pos, k;

		if ((j & 1) != (uint64_t)replaced) /* one left child, one right */
			continue;
		for (k = j + 1; k < 58; k++)
			if (f->leaf_pos[k + 1] - f->leaf_pos[k] == len)
				break;
		if (k == 58)
			continue;
		memcpy(f->log + pos, f->log + f->leaf_pos[k], len);
		assert_int_not_equal(memcmp(f->log, h.nodes[0].log, f->durable), 0);
		sl_proto_tick(f->p, h.now + 11 * SEC);
		h.now += 11 * SEC;
		h_run(&h, 100000);
		run_for(SEC / 10);
		e = entropy_of(2);
		assert_int_equal(e.last_result, SL_ENTROPY_DIFFER);
		assert_int_equal(e.diff_leaf, j);
		assert_int_equal(e.repairs, (uint64_t)replaced + 1);
		assert_int_equal(f->rewrites, (uint64_t)replaced + 1);
		assert_memory_equal(f->log, h.nodes[0].log, f->durable);
		replaced++;
	}
	assert_int_equal(replaced, 2);
	run_for(11 * SEC);
	e = entropy_of(2);
	assert_int_equal(e.last_result, SL_ENTROPY_EQUAL);
	assert_int_equal(e.repairs_failed, 0);
	h_free(&h);
}

/* A hole recovery kept (sl_proto_hole) is asked for once the commit passes
 * it, rewritten, and forgotten; force_lead is refused meanwhile. */
static void a_hole_is_filled(void **state)
{
	struct h_node *f;
	uint64_t pos, len, leaf;

	(void)state;
	start();
	f = &h.nodes[1];
	pos = f->leaf_pos[9];
	len = f->leaf_pos[10] - pos;
	leaf = f->tree.level[0][9];
	f->log[pos + 300] ^= 0x04;
	assert_int_equal(sl_proto_hole(f->p, pos, (uint32_t)len, leaf), 0);
	assert_int_equal(entropy_of(1).holes, 1);
	run_for(SEC / 10);
	assert_int_equal(entropy_of(1).holes, 0);
	assert_int_equal(entropy_of(1).repairs, 1);
	assert_int_equal(f->rewrites, 1);
	assert_memory_equal(f->log, h.nodes[0].log, f->durable);
	h_free(&h);
}

/* The leader's bad batch comes from a follower that holds it durably. */
static void the_leader_asks_a_follower(void **state)
{
	struct h_node *l;
	uint64_t pos, len;

	(void)state;
	start();
	l = &h.nodes[0];
	assert_int_equal(sl_proto_repair(l->p, 0, 0, 0, h.now), -EINVAL);
	run_for(SEC / 10);
	/* The leader's tree: rebuilt by the op, as a follower's. */
	{
		struct sl_proto_status s;

		sl_proto_get_status(h.nodes[1].p, &s);
		assert_true(s.entropy.comparisons >= 1);
	}
	pos = h.nodes[1].leaf_pos[5];
	len = h.nodes[1].leaf_pos[6] - pos;
	l->log[pos + 200] ^= 1;
	assert_int_equal(
	    sl_proto_repair(l->p, pos, (uint32_t)len, h.nodes[1].tree.level[0][5], h.now), 0);
	run_for(SEC / 10);
	assert_int_equal(l->rewrites, 1);
	assert_int_equal(entropy_of(0).repairs, 1);
	assert_memory_equal(l->log, h.nodes[1].log, l->durable);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(equal_logs_compare_equal),
	    cmocka_unit_test(a_divergent_batch_is_found),
	    cmocka_unit_test(compares_what_both_hold),
	    cmocka_unit_test(a_bad_batch_is_repaired),
	    cmocka_unit_test(a_misplaced_batch_is_replaced),
	    cmocka_unit_test(a_hole_is_filled),
	    cmocka_unit_test(the_leader_asks_a_follower),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
