/* Tests for the compressor stage (app/zstage.c): batches come back in the
 * order they were submitted, each decoding to the records it was given,
 * also when the loop encodes some itself; a full ring refuses a slot; an
 * armed sleeper is woken by the next batch. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../app/zstage.h"
#include "shiplog/workload.h"

#define RAW_CAP (64u << 10)
#define SLOTS	3
#define BATCHES 40

static uint8_t want[BATCHES][RAW_CAP], got[RAW_CAP];
static size_t want_len[BATCHES];
static uint32_t want_count[BATCHES];

/* Fill the stage's next slot with batch i's records. */
static void fill(struct sl_zstage *z, struct sl_wl *wl, unsigned i)
{
	uint8_t *raw = sl_zstage_slot(z), rec[1024];
	struct sl_batch_builder b;

	assert_non_null(raw);
	sl_batch_builder_init(&b, raw, RAW_CAP);
	for (unsigned k = 0; k < 1 + i % 60; k++) {
		sl_wl_fill(wl, rec, sizeof(rec));
		assert_int_equal(sl_batch_builder_add(&b, rec, sizeof(rec)), 0);
	}
	memcpy(want[i], raw, b.len);
	want_len[i] = b.len;
	want_count[i] = b.count;
	sl_zstage_submit(z, b.len, b.count);
}

/* Batch i, the oldest: its payload decodes to what was submitted. */
static void check(const struct sl_zstage_out *o, unsigned i)
{
	static uint8_t enc[SL_BATCH_HDR_SIZE + RAW_CAP];
	struct sl_batch_hdr h = o->h, d;

	assert_int_equal(o->h.record_count, want_count[i]);
	assert_int_equal(o->h.raw_len, want_len[i]);
	h.base_lsn = 1;
	assert_int_equal(sl_batch_encode_hdr(&h, NULL, enc), SL_BATCH_HDR_SIZE + h.stored_len);
	memcpy(enc + SL_BATCH_HDR_SIZE, o->payload, h.stored_len);
	assert_int_equal(
	    sl_batch_decode(enc, SL_BATCH_HDR_SIZE + h.stored_len, NULL, got, sizeof(got), &d),
	    (int)want_len[i]);
	assert_memory_equal(got, want[i], want_len[i]);
}

/* help: the loop encodes a waiting batch itself rather than sleep, so
 * batches are encoded by two threads and may become ready out of order. */
static void run(int help)
{
	struct sl_zstage *z = NULL;
	struct sl_wl wl;
	unsigned sent = 0, taken = 0, helped = 0;

	assert_int_equal(sl_zstage_open(&z, 1, RAW_CAP, 1), -EINVAL);
	assert_int_equal(sl_zstage_open(&z, SLOTS, RAW_CAP, 1), 0);
	sl_wl_init(&wl, SL_WL_TEXT, 3);
	while (taken < BATCHES) {
		const struct sl_zstage_out *o;

		while (sent < BATCHES && sl_zstage_slot(z))
			fill(z, &wl, sent++);
		assert_true(sl_zstage_pending(z) <= SLOTS);
		if (sent - taken == SLOTS)
			assert_null(sl_zstage_slot(z)); /* every slot busy */
		/* Whenever a batch waits, not only when the oldest is not
		 * ready: whether the thread is ahead of the loop at each look
		 * is the scheduler's to decide. */
		if (help && sl_zstage_help(z)) {
			helped++;
			continue;
		}
		if (!(o = sl_zstage_peek(z))) {
			struct pollfd p = {.fd = sl_zstage_wait_fd(z), .events = POLLIN};

			/* Nothing ready: an armed sleep is woken by the next one. */
			if (!sl_zstage_arm(z)) {
				assert_int_equal(poll(&p, 1, 10000), 1);
				sl_zstage_disarm(z);
			}
			continue;
		}
		check(o, taken++);
		sl_zstage_pop(z);
	}
	assert_int_equal(sl_zstage_pending(z), 0);
	assert_int_equal(sl_zstage_encoded(z), BATCHES);
	if (help)
		assert_true(helped > 0);
	sl_zstage_close(z);
}

static void in_order_and_bounded(void **state)
{
	(void)state;
	run(0);
}

static void in_order_with_help(void **state)
{
	(void)state;
	run(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(in_order_and_bounded),
	    cmocka_unit_test(in_order_with_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
