/* Protocol rules on a small in-memory cluster: replication end to end,
 * quorum waits, slow followers, loss repair, duplicates, foreign and stale
 * frames, receive windows, ack timeouts (block and degrade), ack levels. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_harness.h"
#include "shiplog/frame.h"

static struct harness H;

static void status_of(uint32_t id, struct sl_proto_status *s)
{
	sl_proto_get_status(H.nodes[id - 1].p, s);
}

/* Append `n` records of varying sizes, moving the network as we go. */
static void append_many(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int64_t lsn;
		int tries = 0;

		while ((lsn = h_append(&H, (uint32_t)(i * 37 % 1500))) == -EAGAIN &&
		       tries++ < 20000) {
			h_run(&H, 100000);
			h_advance(&H, 100000);
		}
		assert_true(lsn > 0);
	}
	assert_int_equal(sl_proto_flush(H.nodes[0].p, H.now), 0);
}

/* Run network and timers until quiet for 20 ms of virtual time (longer than
 * every repair timer), bounded. */
static void settle(void)
{
	int quiet = 0;

	for (int i = 0; i < 4000 && quiet < 40; i++) {
		quiet = h_run(&H, 1000000) == 0 ? quiet + 1 : 0;
		h_advance(&H, 500000);
	}
}

static void assert_logs_equal(uint32_t a, uint32_t b)
{
	assert_int_equal(H.nodes[a - 1].written, H.nodes[b - 1].written);
	assert_memory_equal(H.nodes[a - 1].log, H.nodes[b - 1].log, H.nodes[a - 1].written);
}

static int setup3(const struct sl_ack_policy *p)
{
	return h_init(&H, 3, p);
}

static int teardown(void **state)
{
	(void)state;
	h_free(&H);
	return 0;
}

static void replicates_end_to_end(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	append_many(20000);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 20000);
	for (uint32_t id = 2; id <= 3; id++) {
		assert_int_equal(H.nodes[id - 1].delivered_next, 20001);
		assert_logs_equal(1, id);
	}
}

static void single_node_commits_on_durability(void **state)
{
	struct sl_ack_policy pol = {.acks = 0, .level = SL_ACK_DURABLE};

	(void)state;
	assert_int_equal(h_init(&H, 1, &pol), 0);
	H.nodes[0].auto_durable = 0;
	append_many(100);
	assert_int_equal(H.nodes[0].commit_lsn, 0);
	h_make_durable(&H.nodes[0]);
	assert_int_equal(H.nodes[0].commit_lsn, 100);
}

static void all_waits_for_slowest(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_DURABLE};

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.nodes[2].auto_durable = 0;
	append_many(500);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 0);
	/* Received is not durable: nothing delivered anywhere yet. */
	assert_int_equal(H.nodes[1].delivered_next, 1);
	h_make_durable(&H.nodes[2]);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 500);
	assert_int_equal(H.nodes[1].delivered_next, 501);
	assert_int_equal(H.nodes[2].delivered_next, 501);
}

static void dead_follower_does_not_stall_acks1(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.nodes[2].down = 1;
	append_many(5000);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 5000);
	assert_int_equal(H.nodes[1].delivered_next, 5001);
	assert_int_equal(H.nodes[2].written, 0);
	status_of(1, &s);
	assert_int_equal(s.peers[1].node_id, 3);
	assert_int_equal(s.peers[1].received_pos, 0);
	assert_true(s.peers[1].bytes_behind > 0);
	assert_int_equal(s.peers[1].records_behind, 5000);
	/* It comes back and catches up, from memory or the leader's log. */
	H.nodes[2].down = 0;
	settle();
	assert_int_equal(H.nodes[2].delivered_next, 5001);
	assert_logs_equal(1, 3);
}

static void majority_of_five(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_MAJORITY, .level = SL_ACK_DURABLE};

	(void)state;
	assert_int_equal(h_init(&H, 5, &pol), 0);
	H.nodes[2].down = H.nodes[3].down = H.nodes[4].down = 1;
	append_many(50);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 0); /* 2 of 5 is not a majority */
	H.nodes[4].down = 0;
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 50);
}

static void loss_is_repaired(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_DURABLE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.drop_every = 7;
	append_many(20000);
	settle();
	H.drop_every = 0;
	settle();
	status_of(1, &s);
	assert_true(s.naks_received > 0);
	assert_true(s.retransmits > 0);
	assert_int_equal(H.nodes[0].commit_lsn, 20000);
	assert_logs_equal(1, 2);
	assert_logs_equal(1, 3);
	assert_int_equal(H.nodes[1].delivered_next, 20001);
}

/* The STATUS frames node 2 sends (h_run delivers them all). */
static struct sl_frame_status st2[64];
static int n_st2;

static uint64_t status_from_2, batches_to_2;

static int catch_status_from_2(struct harness *h, const struct h_frame *f)
{
	struct sl_frame d;

	(void)h;
	if (sl_frame_decode(f->buf, f->len, &d) != 0)
		return 0;
	if (f->from == 2 && d.hdr.type == SL_FRAME_STATUS) {
		status_from_2++;
		if (n_st2 < 64)
			st2[n_st2++] = d.status;
	}
	if (f->to == 2 && d.hdr.type == SL_FRAME_DATA && d.data.frag_off == 0)
		batches_to_2++;
	return 0;
}

/* Append one batch and move the network, no time passing: node 2 has it. */
static uint64_t one_batch_to_2(void)
{
	n_st2 = 0;
	assert_true(h_append(&H, 700) > 0);
	assert_int_equal(sl_proto_flush(H.nodes[0].p, H.now), 0);
	h_run(&H, 1000);
	assert_int_equal(H.nodes[1].written, H.nodes[0].written);
	return H.nodes[0].written;
}

/* A leader that waits for durable acks hears of a follower's receipt in
 * the STATUS of its durability (one STATUS, one wake-up), or alone a
 * quarter of the tail-loss probe later when the disk is slow, and of its
 * deliveries with the next batch's; at ack_level=received the receipt goes
 * at once. */
static void receipt_waits_for_durability(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	uint64_t end, end2;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	settle();
	H.nodes[1].auto_durable = 0;
	H.filter = catch_status_from_2;
	end = one_batch_to_2();
	assert_int_equal(n_st2, 0);
	h_make_durable(&H.nodes[1]);
	h_run(&H, 1000);
	assert_true(n_st2 >= 1);
	assert_int_equal(st2[0].received_pos, end);
	assert_int_equal(st2[0].durable_pos, end);
	/* A slow disk: the receipt alone after 500 us (tlp_ns 2 ms / 4). */
	end2 = one_batch_to_2();
	assert_true(end2 > end);
	h_advance(&H, 400000);
	h_run(&H, 1000);
	assert_int_equal(n_st2, 0);
	h_advance(&H, 100000);
	h_run(&H, 1000);
	assert_true(n_st2 >= 1);
	assert_int_equal(st2[0].received_pos, end2);
	assert_int_equal(st2[0].durable_pos, end);
	/* A stream of batches: fewer than 2.75 STATUS per batch (here 2.4, the
	 * deliveries riding with later ones; 3.4 with a STATUS per delivery). */
	h_make_durable(&H.nodes[1]);
	H.nodes[1].auto_durable = 1;
	settle();
	status_from_2 = batches_to_2 = 0;
	append_many(3000);
	settle();
	assert_int_equal(H.nodes[1].delivered_next, H.nodes[0].commit_lsn + 1);
	assert_true(batches_to_2 > 50);
	assert_true(status_from_2 * 4 < batches_to_2 * 11);
	H.filter = NULL;
	h_free(&H);
	pol.level = SL_ACK_RECEIVED;
	assert_int_equal(setup3(&pol), 0);
	settle();
	H.nodes[1].auto_durable = 0;
	H.filter = catch_status_from_2;
	end = one_batch_to_2();
	assert_true(n_st2 >= 1);
	assert_int_equal(st2[0].received_pos, end);
	H.filter = NULL;
}

/* Node 2 gets only the first fragment of each batch. */
static int first_fragments_to_2(struct harness *h, const struct h_frame *f)
{
	struct sl_frame d;

	(void)h;
	return f->to == 2 && sl_frame_decode(f->buf, f->len, &d) == 0 &&
	       d.hdr.type == SL_FRAME_DATA && d.data.frag_off != 0;
}

/* heard_lsn: a follower that saw only a batch's first fragment knows the
 * LSNs the leader appended in it (what promote --force reports as may be
 * lost), past its own log; the leader's is its own last LSN. */
static void heard_lsn_from_first_fragments(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_MAJORITY, .level = SL_ACK_DURABLE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.filter = first_fragments_to_2;
	for (int i = 0; i < 6; i++)
		assert_true(h_append(&H, 30000) > 0);
	assert_int_equal(sl_proto_flush(H.nodes[0].p, H.now), 0);
	h_run(&H, 100000);
	status_of(2, &s);
	assert_int_equal(s.next_lsn, 1);
	assert_int_equal(s.heard_lsn, 6);
	status_of(1, &s);
	assert_int_equal(s.heard_lsn, 6);
	status_of(3, &s);
	assert_int_equal(s.next_lsn, 7);
	assert_int_equal(s.heard_lsn, 6);
	H.filter = NULL;
}

/* Lose only the last DATA frames of a burst: the tail-loss probe recovers. */
static int drop_tail(struct harness *h, const struct h_frame *f)
{
	(void)h;
	return f->buf[5] == SL_FRAME_DATA && f->to == 2;
}

static void tail_loss_probe(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_DURABLE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.filter = drop_tail;
	append_many(10);
	h_run(&H, 100000);
	H.filter = NULL;
	settle();
	status_of(1, &s);
	assert_true(s.tlps > 0);
	assert_int_equal(H.nodes[0].commit_lsn, 10);
	assert_int_equal(H.nodes[1].delivered_next, 11);
}

static int duplicate_all(struct harness *h, const struct h_frame *f)
{
	/* Deliver a copy now; the original follows. */
	struct h_node *dst = &h->nodes[f->to - 1];

	sl_proto_on_frame(dst->p, f->buf, f->len, h->now);
	return 0;
}

static void duplicates_deliver_once(void **state)
{
	struct sl_ack_policy pol = {.acks = 2, .level = SL_ACK_DURABLE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.filter = duplicate_all;
	append_many(3000);
	settle();
	status_of(2, &s);
	assert_true(s.dup_fragments > 0);
	assert_int_equal(H.nodes[1].delivered_next, 3001);
	assert_int_equal(s.delivered_lsn, 3000);
	assert_logs_equal(1, 2);
}

/* Batches encoded by the caller and record appends interleave, replicate
 * through loss, and deliver every record once. */
static void encoded_replicate(int lend)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_DURABLE};
	uint64_t lsn = 0;

	assert_int_equal(setup3(&pol), 0);
	H.lend = lend;
	H.drop_every = 11;
	for (uint32_t i = 0; i < 300; i++) {
		int64_t r;
		int tries = 0;

		do {
			r = i % 3 == 2 ? h_append(&H, 200 + i)
				       : h_append_encoded(&H, 1 + i % 40, 300 + i, 0);
			if (r == -EAGAIN) {
				h_run(&H, 100000);
				h_advance(&H, 100000);
			}
		} while (r == -EAGAIN && tries++ < 20000);
		assert_true(r > (int64_t)lsn);
		lsn = (uint64_t)r;
	}
	assert_int_equal(sl_proto_flush(H.nodes[0].p, H.now), 0);
	settle();
	H.drop_every = 0;
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, lsn);
	assert_logs_equal(1, 2);
	assert_logs_equal(1, 3);
	assert_int_equal(H.nodes[1].delivered_next, lsn + 1);
	assert_int_equal(H.nodes[2].delivered_next, lsn + 1);
}

static void encoded_batches_replicate(void **state)
{
	(void)state;
	encoded_replicate(0);
}

/* The same with every encoded batch lent to the leader's window instead of
 * copied (sl_proto_append_ref): the followers hold the same bytes, the
 * window gave buffers back as it freed them (the harness frees and poisons
 * them, so a later read would show), and destroying the leader gives back
 * the rest. */
static void lent_batches_replicate(void **state)
{
	(void)state;
	encoded_replicate(1);
	assert_true(H.lent_total == 200);
	/* Past the window's 2 MiB: the oldest buffers come back. */
	for (int i = 0; i < 200 && H.lent_out == H.lent_total; i++) {
		assert_true(h_append_encoded(&H, 30, 2000, 0) > 0);
		settle();
	}
	assert_true(H.lent_out < H.lent_total);
	assert_logs_equal(1, 2);
	sl_proto_destroy(H.nodes[0].p);
	H.nodes[0].p = NULL;
	assert_int_equal(H.lent_out, 0);
}

/* A lent batch that does not match its CRC is refused and not kept; one
 * that does is kept until its room is needed. */
static void lent_batch_checked(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.lend = 1;
	assert_int_equal(h_append_encoded(&H, 5, 100, 0x10), -EINVAL);
	assert_int_equal(H.lent_out, 0);
	assert_int_equal(h_append_encoded(&H, 5, 100, 0), 5);
	assert_int_equal(H.lent_out, 1);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 5);
	assert_logs_equal(1, 2);
	assert_int_equal(H.lent_out, 1); /* freed lazily, when room is needed */
}

static struct h_frame caught[64];
static int n_caught;

/* Keeps the DATA frames to node 2 back (the test hands them over itself). */
static int catch_data_to_2(struct harness *h, const struct h_frame *f)
{
	struct sl_frame d;

	(void)h;
	if (f->to != 2 || n_caught == 64 || sl_frame_decode(f->buf, f->len, &d) < 0 ||
	    d.hdr.type != SL_FRAME_DATA)
		return 0;
	caught[n_caught++] = *f;
	return 1;
}

/* A follower copies a fragment to its place in the ring while checking its
 * frame's CRC, before it knows the frame is sound. A corrupt frame must
 * then change nothing that counts: its fragment lands only where nothing
 * was received (the good frame later overwrites it), never over a fragment
 * already received. Every corrupt frame is counted, and the log is the
 * leader's byte for byte. */
static void corrupt_fragment_changes_nothing(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	struct sl_proto_status st;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	n_caught = 0;
	H.filter = catch_data_to_2;
	for (int i = 0; i < 30; i++)
		assert_true(h_append(&H, 1000) > 0);
	assert_int_equal(sl_proto_flush(H.nodes[0].p, H.now), 0);
	h_run(&H, 10000);
	H.filter = NULL;
	assert_true(n_caught >= 6);
	for (int k = 0; k < n_caught; k++) {
		struct h_frame bad = caught[k];

		bad.buf[bad.len - 1 - k % 7] ^= 0x40; /* a fragment byte */
		if (k % 2 == 0)
			sl_proto_on_frame(H.nodes[1].p, bad.buf, bad.len, H.now);
		sl_proto_on_frame(H.nodes[1].p, caught[k].buf, caught[k].len, H.now);
		if (k % 2 == 1)
			sl_proto_on_frame(H.nodes[1].p, bad.buf, bad.len, H.now);
	}
	status_of(2, &st);
	assert_int_equal(st.frames_bad, n_caught);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 30);
	assert_logs_equal(1, 2);
	assert_logs_equal(1, 3);
	assert_int_equal(H.nodes[1].delivered_next, 31);
}

/* A payload that does not match its CRC, or no records, is refused and
 * changes nothing: the next batch takes the same LSNs and position. */
static void encoded_batch_checked(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	struct sl_proto_status before, after;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	assert_int_equal(h_append_encoded(&H, 5, 100, 0), 5);
	status_of(1, &before);
	assert_int_equal(h_append_encoded(&H, 5, 100, 0x10), -EINVAL);
	assert_int_equal(h_append_encoded(&H, 0, 100, 0), -EINVAL);
	assert_int_equal(h_append_encoded(&H, 2, 40000, 0), -EMSGSIZE); /* over the raw cap */
	status_of(1, &after);
	assert_int_equal(after.log_end, before.log_end);
	assert_int_equal(after.next_lsn, before.next_lsn);
	assert_int_equal(h_append_encoded(&H, 5, 100, 0), 10);
	assert_int_equal(
	    sl_proto_append_encoded(H.nodes[1].p, &(struct sl_batch_hdr){0}, NULL, H.now), -EPERM);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 10);
	assert_logs_equal(1, 2);
}

/* A frame with a valid CRC that claims a batch overlapping one being
 * reassembled (a buggy or confused leader) cannot corrupt it: the follower
 * keeps no two overlapping slots, so bytes whose fragment CRC it holds are
 * never overwritten, and the real batch is repaired by NAK. */
static int inject_overlap(struct harness *h, const struct h_frame *f)
{
	static uint8_t junk[SL_FRAME_MAX], out[SL_FRAME_MAX];
	struct h_node *dst = &h->nodes[f->to - 1];
	struct sl_frame fr;
	int n;

	if (f->to != 2 || f->buf[5] != SL_FRAME_DATA || sl_frame_decode(f->buf, f->len, &fr) ||
	    fr.data.frag_off != 0 || fr.data.batch_len < 3 * fr.data.frag_len)
		return 0;
	sl_proto_on_frame(dst->p, f->buf, f->len, h->now); /* the real fragment first */
	memset(junk, 0x5a, sizeof(junk));
	fr.data.batch_pos += 200; /* then a forged one over its payload */
	fr.data.frag = junk;
	n = sl_frame_encode(&fr, out, sizeof(out));
	assert_true(n > 0);
	sl_proto_on_frame(dst->p, out, (size_t)n, h->now);
	h->filter = NULL; /* once */
	return 1;
}

static void overlapping_batches_cannot_corrupt(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_DURABLE};

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.filter = inject_overlap;
	append_many(200);
	settle();
	assert_null(H.filter);
	assert_int_equal(H.nodes[0].commit_lsn, 200);
	assert_logs_equal(1, 2);
	assert_int_equal(H.nodes[1].delivered_next, 201);
}

/* Re-encode a captured frame with one header field changed. */
static size_t mutate(const struct h_frame *f, uint8_t *out, int what)
{
	struct sl_frame fr;
	int len;

	assert_int_equal(sl_frame_decode(f->buf, f->len, &fr), 0);
	if (what == 0)
		fr.hdr.cluster_id[0] ^= 1;
	else if (what == 1)
		fr.hdr.epoch--;
	else if (what == 2)
		fr.hdr.stream_id++;
	else
		fr.hdr.receiver = 99;
	len = sl_frame_encode(&fr, out, SL_FRAME_MAX);
	assert_true(len > 0);
	return (size_t)len;
}

static void foreign_and_stale_frames_change_nothing(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	struct sl_proto_status before, after;
	static uint8_t buf[SL_FRAME_MAX];

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	append_many(10);
	assert_true(H.q_len > 0);
	status_of(2, &before);
	/* Every queued frame, mutated four ways, to its receiver. */
	for (uint32_t i = 0; i < H.q_len; i++) {
		const struct h_frame *f = &H.q[(H.q_head + i) % H_QUEUE];

		for (int what = 0; what < 4; what++) {
			size_t len = mutate(f, buf, what);

			sl_proto_on_frame(H.nodes[f->to - 1].p, buf, len, H.now);
		}
		/* And garbage. */
		memset(buf, 0xa5, 200);
		sl_proto_on_frame(H.nodes[f->to - 1].p, buf, 200, H.now);
	}
	status_of(2, &after);
	assert_int_equal(after.log_end, before.log_end);
	assert_int_equal(after.delivered_lsn, before.delivered_lsn);
	assert_int_equal(after.commit_pos, before.commit_pos);
	assert_int_equal(after.frames_out, before.frames_out);
	assert_true(after.frames_foreign > before.frames_foreign);
	assert_true(after.frames_stale > before.frames_stale);
	assert_true(after.frames_bad > before.frames_bad);
	assert_int_equal(H.nodes[1].written, 0);
	/* The genuine frames still work. */
	settle();
	assert_int_equal(H.nodes[1].delivered_next, 11);
}

static void follower_refuses_appends(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	uint8_t rec[8] = {0};
	static uint8_t big[70000];

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	assert_int_equal(sl_proto_append(H.nodes[1].p, rec, sizeof(rec), H.now), -EPERM);
	assert_int_equal(sl_proto_append(H.nodes[0].p, big, sizeof(big), H.now), -EMSGSIZE);
}

static void receive_window_limits_sending(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	/* Node 2 never makes anything durable, so it can free nothing. */
	H.nodes[1].auto_durable = 0;
	append_many(30000);
	settle();
	status_of(1, &s);
	assert_int_equal(H.nodes[0].commit_lsn, 30000); /* node 3 carried the quorum */
	assert_int_equal(H.nodes[2].delivered_next, 30001);
	/* Node 2 got at most its window's worth. */
	assert_true(H.nodes[1].written <= (1u << 20));
	assert_true(s.peers[0].sent_pos < s.log_end);
	h_make_durable(&H.nodes[1]);
	settle();
	for (int i = 0; i < 200 && H.nodes[1].written < H.nodes[0].written; i++) {
		h_make_durable(&H.nodes[1]);
		settle();
	}
	assert_logs_equal(1, 2);
}

static void timeout_degrade_and_recover(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL,
				    .level = SL_ACK_DURABLE,
				    .timeout_ns = 5000000,
				    .on_timeout = SL_ON_TIMEOUT_DEGRADE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.nodes[2].down = 1;
	append_many(100);
	h_run(&H, 100000);
	assert_int_equal(H.nodes[0].commit_lsn, 0);
	h_advance(&H, 6000000);
	status_of(1, &s);
	assert_int_equal(s.degraded, 1);
	assert_int_equal(s.degrade_events, 1);
	assert_int_equal(H.nodes[0].commit_lsn, 100);
	H.nodes[2].down = 0;
	settle();
	status_of(1, &s);
	assert_int_equal(s.degraded, 0);
	assert_int_equal(H.nodes[2].delivered_next, 101);
}

static void timeout_block_waits(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL,
				    .level = SL_ACK_DURABLE,
				    .timeout_ns = 5000000,
				    .on_timeout = SL_ON_TIMEOUT_BLOCK};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.nodes[2].down = 1;
	append_many(100);
	h_run(&H, 100000);
	h_advance(&H, 20000000);
	status_of(1, &s);
	assert_int_equal(s.degraded, 0);
	assert_true(s.blocked_since_ns > 0);
	assert_int_equal(H.nodes[0].commit_lsn, 0);
	H.nodes[2].down = 0;
	settle();
	status_of(1, &s);
	assert_int_equal(H.nodes[0].commit_lsn, 100);
	assert_int_equal(s.blocked_since_ns, 0);
}

static void applied_level_waits_for_engine(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_APPLIED};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.nodes[1].auto_apply = 0;
	append_many(200);
	settle();
	/* Delivered (safe at the durable quorum) but not applied: no commit. */
	assert_int_equal(H.nodes[1].delivered_next, 201);
	assert_int_equal(H.nodes[0].commit_lsn, 0);
	status_of(1, &s);
	assert_true(s.safe_pos > 0);
	sl_proto_on_applied(H.nodes[1].p, 200, H.now);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 200);
	status_of(1, &s);
	assert_int_equal(s.peers[0].applied_lsn, 200);
}

static void received_level_commits_before_durable(void **state)
{
	struct sl_ack_policy pol = {.acks = SL_ACKS_ALL, .level = SL_ACK_RECEIVED};

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	H.nodes[1].auto_durable = H.nodes[2].auto_durable = 0;
	append_many(100);
	settle();
	assert_int_equal(H.nodes[0].commit_lsn, 100);
	/* Followers deliver only what they hold durably. */
	assert_int_equal(H.nodes[1].delivered_next, 1);
	h_make_durable(&H.nodes[1]);
	settle();
	assert_int_equal(H.nodes[1].delivered_next, 101);
}

static void lag_is_reported(void **state)
{
	struct sl_ack_policy pol = {.acks = 1, .level = SL_ACK_DURABLE};
	struct sl_proto_status s;

	(void)state;
	assert_int_equal(setup3(&pol), 0);
	append_many(1000);
	settle();
	status_of(1, &s);
	assert_int_equal(s.n_peers, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(s.peers[i].received_pos, s.log_end);
		assert_int_equal(s.peers[i].durable_pos, s.log_end);
		assert_int_equal(s.peers[i].applied_lsn, 1000);
		assert_int_equal(s.peers[i].bytes_behind, 0);
		assert_int_equal(s.peers[i].records_behind, 0);
		assert_true(s.peers[i].write_lag_ns > 0);
		assert_true(s.peers[i].last_status_ns > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(replicates_end_to_end, teardown),
	    cmocka_unit_test_teardown(heard_lsn_from_first_fragments, teardown),
	    cmocka_unit_test_teardown(receipt_waits_for_durability, teardown),
	    cmocka_unit_test_teardown(single_node_commits_on_durability, teardown),
	    cmocka_unit_test_teardown(all_waits_for_slowest, teardown),
	    cmocka_unit_test_teardown(dead_follower_does_not_stall_acks1, teardown),
	    cmocka_unit_test_teardown(majority_of_five, teardown),
	    cmocka_unit_test_teardown(loss_is_repaired, teardown),
	    cmocka_unit_test_teardown(tail_loss_probe, teardown),
	    cmocka_unit_test_teardown(duplicates_deliver_once, teardown),
	    cmocka_unit_test_teardown(encoded_batches_replicate, teardown),
	    cmocka_unit_test_teardown(encoded_batch_checked, teardown),
	    cmocka_unit_test_teardown(lent_batches_replicate, teardown),
	    cmocka_unit_test_teardown(lent_batch_checked, teardown),
	    cmocka_unit_test_teardown(corrupt_fragment_changes_nothing, teardown),
	    cmocka_unit_test_teardown(overlapping_batches_cannot_corrupt, teardown),
	    cmocka_unit_test_teardown(foreign_and_stale_frames_change_nothing, teardown),
	    cmocka_unit_test_teardown(follower_refuses_appends, teardown),
	    cmocka_unit_test_teardown(receive_window_limits_sending, teardown),
	    cmocka_unit_test_teardown(timeout_degrade_and_recover, teardown),
	    cmocka_unit_test_teardown(timeout_block_waits, teardown),
	    cmocka_unit_test_teardown(applied_level_waits_for_engine, teardown),
	    cmocka_unit_test_teardown(received_level_commits_before_durable, teardown),
	    cmocka_unit_test_teardown(lag_is_reported, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
