/* The epoch map: entries only for new epochs, refusal of epochs going
 * backwards, truncation, where an epoch ends (with and without the epoch in
 * the map), the bound on entries, and the divergence rule of KIP-279 worked
 * through on two maps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shiplog/epoch.h"

static void note_and_last(void **state)
{
	struct sl_epoch_map m;

	(void)state;
	sl_epoch_map_reset(&m);
	assert_int_equal(sl_epoch_map_last(&m), 0);
	assert_int_equal(sl_epoch_map_note(&m, 3, 0, 1, 0), 1);
	assert_int_equal(sl_epoch_map_note(&m, 3, 100, 5, 0x11), 0);
	assert_int_equal(sl_epoch_map_note(&m, 7, 200, 9, 0x22), 1);
	assert_int_equal(m.n, 2);
	assert_int_equal(sl_epoch_map_last(&m), 7);
	assert_int_equal(m.e[1].pos, 200);
	assert_int_equal(m.e[1].lsn, 9);
	assert_int_equal(m.e[1].prev_crc, 0x22);
	/* Epochs never go backwards in a log, and a new epoch starts later. */
	assert_int_equal(sl_epoch_map_note(&m, 5, 300, 12, 0), -EINVAL);
	assert_int_equal(sl_epoch_map_note(&m, 9, 200, 12, 0), -EINVAL);
	assert_int_equal(sl_epoch_map_note(&m, 7, 150, 12, 0), -EINVAL);
	assert_int_equal(m.n, 2);
}

static void truncate_drops_later_epochs(void **state)
{
	struct sl_epoch_map m;

	(void)state;
	sl_epoch_map_reset(&m);
	sl_epoch_map_note(&m, 1, 0, 1, 0);
	sl_epoch_map_note(&m, 2, 100, 4, 0xa);
	sl_epoch_map_note(&m, 4, 250, 8, 0xb);
	sl_epoch_map_truncate(&m, 300);
	assert_int_equal(m.n, 3);
	sl_epoch_map_truncate(&m, 250);
	assert_int_equal(m.n, 2);
	assert_int_equal(sl_epoch_map_last(&m), 2);
	sl_epoch_map_truncate(&m, 101);
	assert_int_equal(m.n, 2);
	sl_epoch_map_truncate(&m, 0);
	assert_int_equal(m.n, 0);
}

static void end_of(void **state)
{
	struct sl_epoch_map m;
	struct sl_epoch_bound b;

	(void)state;
	sl_epoch_map_reset(&m);
	sl_epoch_map_end_of(&m, 5, 0, 1, 0, &b);
	assert_int_equal(b.epoch, 0);
	assert_int_equal(b.pos, 0);
	assert_int_equal(b.lsn, 1);

	sl_epoch_map_note(&m, 2, 0, 1, 0);
	sl_epoch_map_note(&m, 4, 100, 6, 0xa4);
	sl_epoch_map_note(&m, 9, 300, 20, 0xa9);
	/* The last epoch ends at the log end. */
	sl_epoch_map_end_of(&m, 9, 500, 31, 0xee, &b);
	assert_int_equal(b.epoch, 9);
	assert_int_equal(b.pos, 500);
	assert_int_equal(b.lsn, 31);
	assert_int_equal(b.crc, 0xee);
	sl_epoch_map_end_of(&m, 12, 500, 31, 0xee, &b);
	assert_int_equal(b.epoch, 9);
	assert_int_equal(b.pos, 500);
	/* An earlier one where the next begins. */
	sl_epoch_map_end_of(&m, 4, 500, 31, 0xee, &b);
	assert_int_equal(b.epoch, 4);
	assert_int_equal(b.pos, 300);
	assert_int_equal(b.lsn, 20);
	assert_int_equal(b.crc, 0xa9);
	/* An epoch not in the map: the largest below it. */
	sl_epoch_map_end_of(&m, 7, 500, 31, 0xee, &b);
	assert_int_equal(b.epoch, 4);
	assert_int_equal(b.pos, 300);
	sl_epoch_map_end_of(&m, 3, 500, 31, 0xee, &b);
	assert_int_equal(b.epoch, 2);
	assert_int_equal(b.pos, 100);
	assert_int_equal(b.crc, 0xa4);
	/* Older than anything held: epoch 0, ending where the log's epochs begin. */
	sl_epoch_map_end_of(&m, 1, 500, 31, 0xee, &b);
	assert_int_equal(b.epoch, 0);
	assert_int_equal(b.pos, 0);
	assert_int_equal(b.lsn, 1);
}

static void bounded(void **state)
{
	struct sl_epoch_map m;
	struct sl_epoch_bound b;

	(void)state;
	sl_epoch_map_reset(&m);
	for (uint64_t e = 1; e <= SL_EPOCHS_MAX + 10; e++)
		assert_int_equal(sl_epoch_map_note(&m, e, e * 10, e, (uint32_t)e), 1);
	assert_int_equal(m.n, SL_EPOCHS_MAX);
	assert_int_equal(m.e[0].epoch, 11);
	assert_int_equal(sl_epoch_map_last(&m), SL_EPOCHS_MAX + 10);
	sl_epoch_map_end_of(&m, 5, 99999, 9999, 0, &b);
	assert_int_equal(b.epoch, 0);
	assert_int_equal(b.pos, 110);
}

/* KIP-279's case, worked through: follower holds epochs 1 and 3 (3 from a
 * leader whose entries never committed), the new leader 1, 2 and 4. The
 * follower asks about 3 and hears "2 ends at 250". It holds no 2: its
 * largest epoch up to 2 is 1, which ends where its 3 starts (180); what
 * follows is of epochs the leader never had, so it cuts there (not at 250,
 * which may not even be a batch boundary of its log) and asks about 1; the
 * answer, "1 ends at 120", it holds too: it cuts at min(120, 180). */
static void divergence_rounds(void **state)
{
	struct sl_epoch_map f, l;
	struct sl_epoch_bound lb, fb;
	uint64_t cut;

	(void)state;
	sl_epoch_map_reset(&f);
	sl_epoch_map_reset(&l);
	sl_epoch_map_note(&f, 1, 0, 1, 0);
	sl_epoch_map_note(&f, 3, 180, 10, 0xf3);
	sl_epoch_map_note(&l, 1, 0, 1, 0);
	sl_epoch_map_note(&l, 2, 120, 7, 0xc2);
	sl_epoch_map_note(&l, 4, 250, 12, 0xc4);

	sl_epoch_map_end_of(&l, sl_epoch_map_last(&f), 400, 20, 0xcc, &lb);
	assert_int_equal(lb.epoch, 2);
	assert_int_equal(lb.pos, 250);
	sl_epoch_map_end_of(&f, lb.epoch, 300, 15, 0xff, &fb);
	assert_int_equal(fb.epoch, 1); /* it holds no 2 */
	assert_int_equal(fb.pos, 180);
	assert_int_equal(fb.lsn, 10);
	assert_int_equal(fb.crc, 0xf3);
	sl_epoch_map_truncate(&f, fb.pos);
	assert_int_equal(sl_epoch_map_last(&f), 1);

	sl_epoch_map_end_of(&l, sl_epoch_map_last(&f), 400, 20, 0xcc, &lb);
	assert_int_equal(lb.epoch, 1);
	assert_int_equal(lb.pos, 120);
	assert_int_equal(lb.lsn, 7);
	assert_int_equal(lb.crc, 0xc2);
	sl_epoch_map_end_of(&f, lb.epoch, 180, 10, 0xf3, &fb);
	assert_int_equal(fb.epoch, 1); /* held by both: the shorter end */
	cut = lb.pos < fb.pos ? lb.pos : fb.pos;
	assert_int_equal(cut, 120);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(note_and_last),
	    cmocka_unit_test(truncate_drops_later_epochs),
	    cmocka_unit_test(end_of),
	    cmocka_unit_test(bounded),
	    cmocka_unit_test(divergence_rounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
