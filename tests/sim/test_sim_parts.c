/* Tests for the simulator's parts: the event heap's order (time, then
 * insertion), its bound; the simulated disk's durability, crashes, tears and
 * recovery; the network's forging and partitions; the independent quorum. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shiplog/batch.h"
#include "shiplog/frame.h"
#include "sim_check.h"
#include "sim_disk.h"
#include "sim_heap.h"
#include "sim_net.h"
#include "sim_rng.h"
#include "sim_set.h"

/* ---- heap ---- */

static void heap_orders_by_time_then_insertion(void **state)
{
	struct sl_sim_heap h;
	struct sl_sim_event e = {0}, out;
	uint64_t rng = 42, last_t = 0, last_seq = 0;
	uint64_t seen = 0;

	(void)state;
	assert_int_equal(sl_sim_heap_init(&h, 4096), 0);
	for (uint32_t i = 0; i < 4000; i++) {
		e.time = sl_sim_below(&rng, 50); /* many ties */
		e.arg = i;
		assert_int_equal(sl_sim_heap_push(&h, &e), 0);
	}
	while (sl_sim_heap_pop(&h, &out) == 0) {
		if (seen) {
			assert_true(out.time >= last_t);
			if (out.time == last_t)
				assert_true(out.seq > last_seq); /* FIFO among equals */
		}
		assert_int_equal(out.seq, out.arg); /* seq is the insertion index */
		last_t = out.time;
		last_seq = out.seq;
		seen++;
	}
	assert_int_equal(seen, 4000);
	assert_null(sl_sim_heap_peek(&h));
	sl_sim_heap_destroy(&h);
}

static void heap_is_bounded(void **state)
{
	struct sl_sim_heap h;
	struct sl_sim_event e = {.time = 5}, out;

	(void)state;
	assert_int_equal(sl_sim_heap_init(&h, 3), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sl_sim_heap_push(&h, &e), 0);
	assert_int_equal(sl_sim_heap_push(&h, &e), -ENOSPC);
	assert_int_equal(sl_sim_heap_room(&h), 0);
	assert_int_equal(sl_sim_heap_pop(&h, &out), 0);
	assert_int_equal(sl_sim_heap_push(&h, &e), 0);
	sl_sim_heap_clear(&h);
	assert_int_equal(sl_sim_heap_pop(&h, &out), -ENOENT);
	sl_sim_heap_destroy(&h);
	assert_int_equal(sl_sim_heap_init(&h, 0), -EINVAL);
}

/* Interleaved pushes and pops still come out in (time, seq) order. */
static void heap_interleaved(void **state)
{
	struct sl_sim_heap h;
	struct sl_sim_event e = {0}, out;
	uint64_t rng = 7, now = 0;

	(void)state;
	assert_int_equal(sl_sim_heap_init(&h, 256), 0);
	for (int round = 0; round < 10000; round++) {
		if (h.len < 200 && sl_sim_below(&rng, 3) != 0) {
			e.time = now + sl_sim_below(&rng, 10);
			assert_int_equal(sl_sim_heap_push(&h, &e), 0);
		} else if (sl_sim_heap_pop(&h, &out) == 0) {
			assert_true(out.time >= now);
			now = out.time;
		}
	}
	sl_sim_heap_destroy(&h);
}

/* ---- disk ---- */

#define T_BATCHES 8

static uint8_t enc[T_BATCHES][2048];
static int enc_len[T_BATCHES];

/* A chain of batches of 1..3 records each, as a leader would write them. */
static void make_chain(void)
{
	uint8_t raw[1024];
	struct sl_batch_builder b;
	uint64_t pos = 0, lsn = 1;
	uint32_t prev = 0;

	for (int i = 0; i < T_BATCHES; i++) {
		struct sl_batch_hdr h = {
		    .stream_id = 9, .epoch = 3, .base_lsn = lsn, .position = pos, .prev_crc = prev};
		uint8_t rec[100];
		int n = 1 + i % 3;

		sl_batch_builder_init(&b, raw, sizeof(raw));
		for (int r = 0; r < n; r++) {
			memset(rec, 'a' + r + i, sizeof(rec));
			assert_int_equal(sl_batch_builder_add(&b, rec, 50 + 10 * r), 0);
		}
		enc_len[i] = sl_batch_encode(&h, raw, b.len, b.count, enc[i], sizeof(enc[i]));
		assert_true(enc_len[i] > 0);
		pos += (uint64_t)enc_len[i];
		lsn += (uint64_t)n;
		prev = h.hdr_crc;
	}
}

static uint64_t chain_end(int n)
{
	uint64_t e = 0;

	for (int i = 0; i < n; i++)
		e += (uint64_t)enc_len[i];
	return e;
}

static void disk_write_all(struct sl_sim_disk *d, int n, uint64_t t0)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(sl_sim_disk_write(d, chain_end(i), enc[i], (size_t)enc_len[i],
						   t0 + 10 * (uint64_t)i),
				 0);
}

static void disk_durability_in_order(void **state)
{
	struct sl_sim_disk d;

	(void)state;
	make_chain();
	assert_int_equal(sl_sim_disk_init(&d, 1 << 16, 64, 64, NULL), 0);
	assert_int_equal(sl_sim_disk_write(&d, 0, enc[0], (size_t)enc_len[0], 100), 0);
	/* A later write with an earlier latency still syncs after the first. */
	assert_int_equal(sl_sim_disk_write(&d, chain_end(1), enc[1], (size_t)enc_len[1], 50), 0);
	assert_int_equal(sl_sim_disk_next_sync(&d), 100);
	assert_int_equal(sl_sim_disk_sync(&d, 99), 0);
	assert_int_equal(d.durable, 0);
	assert_int_equal(sl_sim_disk_sync(&d, 100), 1);
	assert_int_equal(d.durable, chain_end(2)); /* both: group commit */
	assert_int_equal(sl_sim_disk_next_sync(&d), UINT64_MAX);
	sl_sim_disk_destroy(&d);
}

static void disk_refuses_bad_writes(void **state)
{
	struct sl_sim_disk d;
	uint8_t bad[2048];

	(void)state;
	make_chain();
	assert_int_equal(sl_sim_disk_init(&d, 1 << 16, 64, 64, NULL), 0);
	/* not at the end */
	assert_int_equal(sl_sim_disk_write(&d, 5, enc[0], (size_t)enc_len[0], 0), -EINVAL);
	/* does not chain: batch 1 at position 0 */
	assert_int_equal(sl_sim_disk_write(&d, 0, enc[1], (size_t)enc_len[1], 0), -EINVAL);
	/* corrupt */
	memcpy(bad, enc[0], (size_t)enc_len[0]);
	bad[enc_len[0] - 1] ^= 1;
	assert_int_equal(sl_sim_disk_write(&d, 0, bad, (size_t)enc_len[0], 0), -EBADMSG);
	/* too short for its own header */
	assert_int_equal(sl_sim_disk_write(&d, 0, enc[0], (size_t)enc_len[0] - 1, 0), -EBADMSG);
	assert_int_equal(d.end, 0);
	sl_sim_disk_destroy(&d);
}

static void disk_read_and_lookups(void **state)
{
	struct sl_sim_disk d;
	uint8_t buf[2048];

	(void)state;
	make_chain();
	assert_int_equal(sl_sim_disk_init(&d, 1 << 16, 64, 64, NULL), 0);
	disk_write_all(&d, 4, 0);
	assert_int_equal(sl_sim_disk_read(&d, chain_end(2), buf, sizeof(buf)), enc_len[2]);
	assert_memory_equal(buf, enc[2], (size_t)enc_len[2]);
	assert_int_equal(sl_sim_disk_read(&d, chain_end(2) + 1, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(sl_sim_disk_read(&d, chain_end(2), buf, 10), -ENOSPC);
	/* batches hold LSNs 1 | 2-3 | 4-6 | 7 */
	assert_int_equal(sl_sim_disk_lsn_below(&d, 0), 0);
	assert_int_equal(sl_sim_disk_lsn_below(&d, chain_end(1)), 1);
	assert_int_equal(sl_sim_disk_lsn_below(&d, chain_end(2) - 1), 1);
	assert_int_equal(sl_sim_disk_lsn_below(&d, chain_end(3)), 6);
	assert_int_equal(sl_sim_disk_lsn_below(&d, 1u << 30), 7);
	assert_int_equal(sl_sim_disk_lsn_end(&d, 0), 0);
	assert_int_equal(sl_sim_disk_lsn_end(&d, 1), chain_end(1));
	assert_int_equal(sl_sim_disk_lsn_end(&d, 5), chain_end(3));
	assert_int_equal(sl_sim_disk_lsn_end(&d, 7), chain_end(4));
	assert_int_equal(sl_sim_disk_lsn_end(&d, 8), UINT64_MAX);
	sl_sim_disk_destroy(&d);
}

/* Crash after syncing 3 of 8 batches: whatever the tear, recovery keeps the
 * durable prefix, never more than was written, always whole batches that
 * chain, and the log accepts the next write where it left off. */
static void disk_crash_recover(void **state)
{
	uint64_t rng = 1234;
	int seen[4] = {0};

	(void)state;
	make_chain();
	for (int round = 0; round < 400; round++) {
		struct sl_sim_disk d;
		struct sl_sim_crash_info ci;
		struct sl_sim_recovered rec;
		int whole = 0;

		assert_int_equal(sl_sim_disk_init(&d, 1 << 16, 64, 64, NULL), 0);
		disk_write_all(&d, T_BATCHES, 0);
		sl_sim_disk_sync(&d, 20); /* batches 0..2 due at 0, 10, 20 */
		assert_int_equal(d.durable, chain_end(3));
		sl_sim_disk_crash(&d, &rng, &ci);
		seen[ci.tear]++;
		assert_int_equal(ci.volatile_bytes, chain_end(T_BATCHES) - chain_end(3));
		assert_true(ci.kept <= ci.volatile_bytes);
		sl_sim_disk_recover(&d, &rec);
		assert_int_equal(rec.lost_durable, 0);
		assert_true(rec.next_pos >= chain_end(3));
		while (whole < T_BATCHES && chain_end(whole + 1) <= rec.next_pos)
			whole++;
		assert_int_equal(rec.next_pos, chain_end(whole)); /* a batch boundary */
		if (ci.tear == SL_SIM_TEAR_LOST)
			assert_int_equal(whole, 3);
		if (ci.tear == SL_SIM_TEAR_WHOLE)
			assert_int_equal(rec.cut_bytes, 0);
		assert_int_equal(d.durable, rec.next_pos);
		assert_int_equal(d.n_idx, (uint32_t)whole);
		assert_memory_equal(d.buf, enc[0], (size_t)enc_len[0]);
		if (whole < T_BATCHES) /* the log goes on from where recovery left it */
			assert_int_equal(sl_sim_disk_write(&d, rec.next_pos, enc[whole],
							   (size_t)enc_len[whole], 0),
					 0);
		sl_sim_disk_destroy(&d);
	}
	for (int k = 0; k < 4; k++)
		assert_true(seen[k] > 0); /* every kind of tear happened */
}

/* Truncation at a boundary: the chain continues from the cut, pending
 * syncs of the cut bytes are gone, the durable prefix shrinks with it; not
 * at a boundary: refused. CRCs at batch ends and the epoch map. */
static void disk_truncate_and_lookups(void **state)
{
	struct sl_sim_disk d;
	struct sl_epoch_map m;

	(void)state;
	make_chain();
	assert_int_equal(sl_sim_disk_init(&d, 1 << 16, 64, 64, NULL), 0);
	disk_write_all(&d, 6, 0);
	sl_sim_disk_sync(&d, 20); /* 3 durable */
	assert_int_equal(sl_sim_disk_crc_at_end(&d, 0), 0);
	assert_int_equal(sl_sim_disk_crc_at_end(&d, chain_end(2)), (int64_t)d.idx[1].hdr_crc);
	assert_int_equal(sl_sim_disk_crc_at_end(&d, chain_end(6)), (int64_t)d.idx[5].hdr_crc);
	assert_int_equal(sl_sim_disk_crc_at_end(&d, chain_end(2) + 1), -1);
	assert_int_equal(sl_sim_disk_crc_at_end(&d, chain_end(6) + 1), -1);
	sl_sim_disk_epochs(&d, &m);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.e[0].epoch, 3);
	assert_int_equal(m.e[0].pos, 0);
	assert_int_equal(m.e[0].lsn, 1);

	assert_int_equal(sl_sim_disk_truncate(&d, chain_end(4) + 1), -EINVAL);
	assert_int_equal(sl_sim_disk_truncate(&d, chain_end(7)), -EINVAL);
	assert_int_equal(sl_sim_disk_truncate(&d, chain_end(4)), 0);
	assert_int_equal(d.end, chain_end(4));
	assert_int_equal(d.durable, chain_end(3));
	assert_int_equal(d.pend_n, 1); /* batch 3's sync, not 4's and 5's */
	assert_int_equal(d.next_lsn, 8);
	assert_int_equal(sl_sim_disk_write(&d, chain_end(4), enc[4], (size_t)enc_len[4], 0), 0);
	assert_int_equal(sl_sim_disk_truncate(&d, chain_end(2)), 0);
	assert_int_equal(d.durable, chain_end(2));
	assert_int_equal(d.pend_n, 0);
	assert_int_equal(sl_sim_disk_write(&d, chain_end(2), enc[2], (size_t)enc_len[2], 0), 0);
	assert_int_equal(sl_sim_disk_truncate(&d, 0), 0);
	assert_int_equal(d.n_idx, 0);
	assert_int_equal(d.next_lsn, 1);
	assert_int_equal(sl_sim_disk_write(&d, 0, enc[0], (size_t)enc_len[0], 0), 0);
	sl_sim_disk_destroy(&d);
}

/* Rot hits durable batches only; the disk remembers which until a rewrite
 * with the batch appended there, or a cut, removes them. */
static void disk_rot_and_rewrite(void **state)
{
	struct sl_sim_disk d;
	uint64_t rng = 7;

	(void)state;
	make_chain();
	assert_int_equal(sl_sim_disk_init(&d, 1 << 16, 64, 64, NULL), 0);
	disk_write_all(&d, 6, 0);
	sl_sim_disk_sync(&d, 20);				  /* batches 0..2 durable */
	assert_int_equal(sl_sim_disk_flip(&d, 4, &rng), -EINVAL); /* not durable */
	assert_int_equal(sl_sim_disk_flip(&d, 1, &rng), 0);
	assert_false(sl_sim_disk_intact(&d, 1));
	assert_true(sl_sim_disk_rotten(&d, 1));
	assert_true(sl_sim_disk_intact(&d, 0));
	/* A rotten batch is not a valid one to copy; batch 0 is. */
	assert_int_equal(sl_sim_disk_misplace(&d, 1, 2), -EINVAL);
	assert_int_equal(sl_sim_disk_misplace(&d, 0, 2), 0);
	assert_false(sl_sim_disk_intact(&d, 2));
	assert_int_equal(d.n_rot, 2);
	/* Only the batch appended there repairs it. */
	assert_int_equal(sl_sim_disk_rewrite(&d, chain_end(1), enc[0], (size_t)enc_len[0]),
			 -EINVAL);
	assert_int_equal(sl_sim_disk_rewrite(&d, chain_end(1) + 1, enc[1], (size_t)enc_len[1]),
			 -ENOENT);
	assert_int_equal(sl_sim_disk_rewrite(&d, chain_end(4), enc[4], (size_t)enc_len[4]),
			 -ENOENT); /* not durable */
	assert_int_equal(sl_sim_disk_rewrite(&d, chain_end(1), enc[1], (size_t)enc_len[1]), 0);
	assert_true(sl_sim_disk_intact(&d, 1));
	assert_false(sl_sim_disk_rotten(&d, 1));
	assert_int_equal(d.n_rot, 1);
	/* Cutting the rotten batch forgets its rot. */
	assert_int_equal(sl_sim_disk_truncate(&d, chain_end(2)), 0);
	assert_int_equal(d.n_rot, 0);
	sl_sim_disk_destroy(&d);
}

static void disk_drop_pending_is_volatile(void **state)
{
	struct sl_sim_disk d;
	struct sl_sim_crash_info ci;
	struct sl_sim_recovered rec;
	uint64_t rng = 99;

	(void)state;
	make_chain();
	assert_int_equal(sl_sim_disk_init(&d, 1 << 16, 64, 64, NULL), 0);
	disk_write_all(&d, 2, 0);
	sl_sim_disk_drop_pending(&d); /* a failed sync */
	assert_int_equal(sl_sim_disk_next_sync(&d), UINT64_MAX);
	assert_int_equal(d.durable, 0);
	sl_sim_disk_crash(&d, &rng, &ci);
	sl_sim_disk_recover(&d, &rec);
	assert_true(rec.next_pos <= chain_end(2));
	sl_sim_disk_destroy(&d);
}

/* ---- network ---- */

static int make_frame(uint8_t *out, size_t cap)
{
	struct sl_frame f = {.hdr = {.type = SL_FRAME_HEARTBEAT,
				     .stream_id = 5,
				     .epoch = 7,
				     .sender = 1,
				     .receiver = 2,
				     .seq = 3}};

	memset(f.hdr.cluster_id, 0xab, 16);
	f.hb = (struct sl_frame_hb){.leader_end = 100, .commit_pos = 50, .leader_ts = 9};
	return sl_frame_encode(&f, out, cap);
}

static void net_forges_one_field(void **state)
{
	uint8_t frame[256], out[SL_FRAME_MAX];
	uint64_t rng = 5;
	int len;

	(void)state;
	len = make_frame(frame, sizeof(frame));
	assert_true(len > 0);
	for (int k = 0; k < SL_SIM_FORGE_KINDS; k++) {
		struct sl_frame a, b;
		int n = sl_sim_net_forge((enum sl_sim_forge)k, frame, (size_t)len, out, sizeof(out),
					 &rng);

		assert_int_equal(n, len);
		assert_int_equal(sl_frame_decode(frame, (size_t)len, &a), 0);
		if (k == SL_SIM_FORGE_CORRUPT) {
			assert_int_not_equal(sl_frame_decode(out, (size_t)n, &b), 0);
			continue;
		}
		assert_int_equal(sl_frame_decode(out, (size_t)n, &b), 0); /* CRC re-fixed */
		assert_int_equal(memcmp(a.hdr.cluster_id, b.hdr.cluster_id, 16) != 0,
				 k == SL_SIM_FORGE_CLUSTER);
		assert_int_equal(a.hdr.stream_id != b.hdr.stream_id, k == SL_SIM_FORGE_STREAM);
		assert_int_equal(a.hdr.receiver != b.hdr.receiver, k == SL_SIM_FORGE_RECEIVER);
		assert_int_equal(a.hdr.sender != b.hdr.sender, k == SL_SIM_FORGE_SENDER);
		if (k == SL_SIM_FORGE_EPOCH)
			assert_true(b.hdr.epoch < a.hdr.epoch);
		else
			assert_int_equal(b.hdr.epoch, a.hdr.epoch);
		assert_int_equal(b.hb.commit_pos, a.hb.commit_pos);
	}
}

static void net_partitions_and_heal(void **state)
{
	struct sl_sim_net net;
	uint64_t rng = 11;
	uint8_t frame[64] = {1, 2, 3};
	size_t len;
	int s;

	(void)state;
	assert_int_equal(sl_sim_net_init(&net, 2), 0);
	sl_sim_net_reset(&net, 3, 1000);
	sl_sim_net_randomize(&net, &rng, 1, 300000, 500000);
	for (unsigned a = 0; a < 3; a++)
		for (unsigned b = 0; b < 3; b++) {
			assert_true(net.link[a][b].loss_ppm <= 300000);
			assert_true(net.link[a][b].dup_ppm <= 500000);
			assert_true(sl_sim_net_delay(&net, a, b, &rng) <=
				    net.link[a][b].base_ns + 2000000 + net.link[a][b].reorder_ns);
		}
	sl_sim_net_block(&net, 0, 1, +1);
	sl_sim_net_block(&net, 0, 1, +1); /* two overlapping partitions */
	sl_sim_net_block(&net, 0, 1, -1);
	assert_true(sl_sim_net_blocked(&net, 0, 1));
	assert_false(sl_sim_net_blocked(&net, 1, 0));
	sl_sim_net_heal(&net);
	assert_false(sl_sim_net_blocked(&net, 0, 1));
	sl_sim_net_block(&net, 0, 1, -1); /* a late heal after heal_all: harmless */
	assert_false(sl_sim_net_blocked(&net, 0, 1));
	assert_int_equal(net.link[2][1].loss_ppm, 0);
	/* the frame pool is bounded */
	assert_true((s = sl_sim_net_slot_put(&net, frame, 3)) >= 0);
	assert_true(sl_sim_net_slot_put(&net, frame, 3) >= 0);
	assert_int_equal(sl_sim_net_slot_put(&net, frame, 3), -ENOSPC);
	assert_memory_equal(sl_sim_net_slot(&net, s, &len), frame, 3);
	assert_int_equal(len, 3);
	sl_sim_net_slot_free(&net, s);
	assert_true(sl_sim_net_slot_put(&net, frame, 3) >= 0);
	assert_int_equal(sl_sim_net_slot_put(&net, frame, SL_FRAME_MAX + 1), -EMSGSIZE);
	sl_sim_net_destroy(&net);
}

/* ---- quorum and status ---- */

static void quorum_independent(void **state)
{
	struct sl_ack_policy p = {.acks = SL_ACKS_MAJORITY};
	uint64_t f[4] = {300, 100, 400, 200};

	(void)state;
	assert_int_equal(sl_sim_required(&p, 1), 0);
	assert_int_equal(sl_sim_required(&p, 3), 1);
	assert_int_equal(sl_sim_required(&p, 4), 2);
	assert_int_equal(sl_sim_required(&p, 5), 2);
	p.acks = SL_ACKS_ALL;
	assert_int_equal(sl_sim_required(&p, 5), 4);
	p.acks = 3;
	assert_int_equal(sl_sim_required(&p, 3), -1);
	p.debug_undercount = 1; /* ignored on purpose */
	assert_int_equal(sl_sim_required(&p, 4), 3);
	/* 2nd highest of followers = 300; leader durable 250 bounds it */
	assert_int_equal(sl_sim_quorum(0, 1000, 250, f, 4, 2), 250);
	assert_int_equal(sl_sim_quorum(1, 1000, 250, f, 4, 2), 300);
	assert_int_equal(sl_sim_quorum(0, 1000, 900, f, 4, 4), 100);
	assert_int_equal(sl_sim_quorum(0, 1000, 900, f, 4, 0), 900);
	assert_int_equal(sl_sim_quorum(1, 350, 0, f, 4, 1), 350); /* never past leader_end */
	assert_int_equal(sl_sim_quorum(0, 1000, 900, f, 4, 5), 0);
}

static void status_diff_ignores_frame_counters(void **state)
{
	static struct sl_proto_status a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.n_peers = 2;
	a.peers[1].durable_pos = 7;
	b = a;
	b.frames_in = 9;
	b.frames_bad = 1;
	b.frames_foreign = 2;
	b.frames_stale = 3;
	b.frames_out = 4;
	assert_null(sl_sim_status_diff(&a, &b));
	b.peers[1].durable_pos = 8;
	assert_string_equal(sl_sim_status_diff(&a, &b), "peers[].durable_pos");
	b = a;
	b.commit_pos = 1;
	assert_string_equal(sl_sim_status_diff(&a, &b), "commit_pos");
}

static void set_grows_and_finds(void **state)
{
	struct sl_sim_set set;

	(void)state;
	assert_int_equal(sl_sim_set_init(&set, 4), 0);
	for (uint64_t i = 0; i < 5000; i++)
		assert_int_equal(sl_sim_set_add(&set, i * 7, i ^ 0x55), 0);
	assert_int_equal(sl_sim_set_add(&set, 7, 1 ^ 0x55), 0); /* already there */
	assert_int_equal(set.n, 5000);
	for (uint64_t i = 0; i < 5000; i++) {
		assert_true(sl_sim_set_has(&set, i * 7, i ^ 0x55));
		assert_false(sl_sim_set_has(&set, i * 7, i ^ 0x56));
	}
	sl_sim_set_clear(&set);
	assert_false(sl_sim_set_has(&set, 7, 1 ^ 0x55));
	sl_sim_set_destroy(&set);
}

static void records_table(void **state)
{
	struct sl_sim_check c;

	(void)state;
	assert_int_equal(sl_sim_check_init(&c, 10), 0);
	c.quiet = 1;
	assert_int_equal(sl_sim_rec_put(&c, 1, "abc", 3), 0);
	assert_true(sl_sim_rec_match(&c, 1, "abc", 3));
	assert_false(sl_sim_rec_match(&c, 1, "abd", 3));
	assert_false(sl_sim_rec_match(&c, 1, "ab", 2));
	assert_false(sl_sim_rec_match(&c, 2, "abc", 3));
	assert_int_equal(sl_sim_rec_put(&c, 11, "abc", 3), -ERANGE);
	sl_sim_violation(&c, 'a', 0, 1, 1, 5, "first");
	sl_sim_violation(&c, 'b', 0, 1, 1, 5, "second");
	assert_int_equal(c.letter, 'a');
	assert_int_equal(c.count, 2);
	sl_sim_check_reset(&c, 3);
	assert_false(c.failed);
	assert_false(sl_sim_rec_match(&c, 1, "abc", 3));
	sl_sim_check_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(heap_orders_by_time_then_insertion),
	    cmocka_unit_test(heap_is_bounded),
	    cmocka_unit_test(heap_interleaved),
	    cmocka_unit_test(disk_durability_in_order),
	    cmocka_unit_test(disk_refuses_bad_writes),
	    cmocka_unit_test(disk_read_and_lookups),
	    cmocka_unit_test(disk_crash_recover),
	    cmocka_unit_test(disk_truncate_and_lookups),
	    cmocka_unit_test(disk_drop_pending_is_volatile),
	    cmocka_unit_test(disk_rot_and_rewrite),
	    cmocka_unit_test(net_forges_one_field),
	    cmocka_unit_test(net_partitions_and_heal),
	    cmocka_unit_test(quorum_independent),
	    cmocka_unit_test(status_diff_ignores_frame_counters),
	    cmocka_unit_test(set_grows_and_finds),
	    cmocka_unit_test(records_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
