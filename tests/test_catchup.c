/* Catch-up throttling (core/proto_leader.c) on the in-memory harness, where
 * every frame takes 1 us of the network's time, so catch-up traffic delays
 * the live path's frames as it would on a link. A follower that was down
 * while the leader wrote past its window comes back while records keep
 * coming: served from the leader's log at a rate the leader halves when a
 * commit takes longer than catchup_budget_ns, it catches up, joins the live
 * stream and delivers every record once, in order, with no gap. With a
 * tight budget the rate is cut and catch-up waits for it (throttled), and
 * the live commits stay faster than with a budget that never binds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_harness.h"

static struct harness h;

struct run {
	uint64_t throttled, cuts, min_rate, catchup_batches;
	uint64_t lat_sum, lat_n, lat_max;
	int caught_up_at; /* iteration, -1 never */
};

static void append_batch(void)
{
	for (int r = 0; r < 15; r++)
		assert_true(h_append(&h, 1000) > 0);
	assert_int_equal(sl_proto_flush(h.nodes[0].p, h.now), 0);
}

static void run(uint64_t budget_ns, struct run *out)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	struct sl_proto_status st;

	memset(out, 0, sizeof(*out));
	out->min_rate = UINT64_MAX;
	out->caught_up_at = -1;
	h_catchup_budget_ns = budget_ns;
	assert_int_equal(h_init(&h, 3, &pol), 0);
	h_catchup_budget_ns = 0;
	/* Node 3 down while the leader writes three windows' worth (2 MiB). */
	h.nodes[2].down = 1;
	for (int i = 0; i < 400; i++) {
		append_batch();
		h_advance(&h, 100000);
		h_run(&h, 100000);
	}
	h.nodes[2].down = 0;
	/* Back, while a batch a millisecond keeps coming. */
	for (int i = 0; i < 3000; i++) {
		/* The batch's frames queue behind what catch-up sent meanwhile. */
		append_batch();
		h_run(&h, 100000);
		h_advance(&h, 1000000);
		sl_proto_get_status(h.nodes[0].p, &st);
		if (st.catchup_rate < out->min_rate)
			out->min_rate = st.catchup_rate;
		if (st.peers[1].catching_up || st.peers[1].received_pos < st.log_end) {
			out->lat_sum += st.commit_latency_ns;
			out->lat_n++;
			if (st.commit_latency_ns > out->lat_max)
				out->lat_max = st.commit_latency_ns;
		} else if (out->caught_up_at < 0) {
			out->caught_up_at = i;
		}
		if (out->caught_up_at >= 0 && i > out->caught_up_at + 50)
			break;
	}
	/* Quiet: everything committed and delivered everywhere. */
	for (int i = 0; i < 200; i++) {
		h_advance(&h, 1000000);
		h_run(&h, 100000);
	}
	sl_proto_get_status(h.nodes[0].p, &st);
	out->throttled = st.catchup_throttled;
	out->cuts = st.catchup_cuts;
	out->catchup_batches = st.peers[1].catchup_batches;
	assert_int_equal(st.peers[1].node_id, 3);
	assert_true(out->catchup_batches > 100); /* it was served from disk */
	assert_int_equal(st.commit_lsn, h.appended);
	for (int n = 1; n < 3; n++) /* every record once, in order: no gap */
		assert_int_equal(h.nodes[n].delivered_next, h.appended + 1);
	assert_memory_equal(h.nodes[2].log, h.nodes[0].log, h.nodes[0].written);
	h_free(&h);
}

static void show(const char *name, const struct run *r)
{
	printf("%s: throttled %llu, cuts %llu, min rate %llu B/s, caught up at %d ms, commit "
	       "latency mean %llu us max %llu us\n",
	       name, (unsigned long long)r->throttled, (unsigned long long)r->cuts,
	       (unsigned long long)r->min_rate, r->caught_up_at,
	       (unsigned long long)(r->lat_sum / (r->lat_n ? r->lat_n : 1) / 1000),
	       (unsigned long long)r->lat_max / 1000);
}

static void throttle_keeps_the_budget(void **state)
{
	struct run tight, loose;

	(void)state;
	run(50000, &tight);	 /* 50 us */
	run(1000000000, &loose); /* 1 s: never binds */
	show("tight", &tight);
	show("loose", &loose);
	assert_true(tight.caught_up_at >= 0 && loose.caught_up_at >= 0);
	assert_true(tight.cuts > 0);
	assert_true(tight.throttled > 0);
	assert_true(tight.min_rate < SL_PROTO_CATCHUP_RATE_START);
	assert_int_equal(loose.cuts, 0);
	/* The throttled catch-up left the live commits faster. */
	assert_true(tight.lat_sum / tight.lat_n < loose.lat_sum / loose.lat_n);
	assert_true(tight.caught_up_at >= loose.caught_up_at);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(throttle_keeps_the_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
