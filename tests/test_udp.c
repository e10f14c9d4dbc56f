/* Tests for the kernel UDP transport over io_uring (net/udp.c), on loopback
 * inside a network namespace of the test's own (lo at MTU 9000, ports free
 * by construction, and tc qdiscs that touch nobody else):
 *   exchange   100,000 frames each way, 64..8,900 B, content, order, counters
 *   gso        equal-size runs to one peer go as one sendmsg; unequal sizes
 *              and different peers do not; a no-GRO receiver gets them too
 *   gro        a GSO burst arrives coalesced and is split, also across polls
 *              with a small budget and with single-shot receives
 *   unknown    frames from addresses that are not peers come with from = 0
 *   rearm      a 4-buffer ring runs dry; the multishot ends and is re-armed
 *   single     the single-shot fallback carries traffic
 *   bounds     a full TX queue whose forced flush fails gives -ENOBUFS;
 *              EAGAIN from a full socket buffer is retried, then dropped
 *   errors     bind conflicts, bad configs, bad sends name what failed
 * Every loop is bounded in count and in time. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/transport.h"
#include "shiplog/udp.h"

#define MTU	    9000
#define FRAME_MIN   64
#define FRAME_MAX   8900
#define TEST_MAGIC  0x55445054u /* "TPDU" */
#define EXCHANGE_N  100000
#define MAX_SENDERS 8
#define WAIT_MS	    5000
#define POLL_LOOPS  2000000

/* ---- helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t rng_range(uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(rng() % (hi - lo + 1));
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* A frame: magic, sender, seq, len, then bytes from a generator seeded by
 * (sender, seq), so any misplaced, torn or mixed-up byte shows. */
static void fill(uint8_t *b, uint32_t sender, uint32_t seq, uint32_t len)
{
	uint64_t x = ((uint64_t)sender << 32 | seq) * 0x9e3779b97f4a7c15ull | 1;

	wr32(b, TEST_MAGIC);
	wr32(b + 4, sender);
	wr32(b + 8, seq);
	wr32(b + 12, len);
	for (uint32_t i = 16; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, len - i < 8 ? len - i : 8);
	}
}

static int content_ok(const uint8_t *f, size_t len)
{
	static uint8_t want[SL_FRAME_MAX];

	if (len < 16 || len > sizeof(want) || rd32(f) != TEST_MAGIC || rd32(f + 12) != len)
		return 0;
	fill(want, rd32(f + 4), rd32(f + 8), (uint32_t)len);
	return memcmp(want, f, len) == 0;
}

struct rx {
	uint64_t frames, bytes;
	uint32_t next_seq[MAX_SENDERS];	   /* by sender */
	uint32_t expect_from[MAX_SENDERS]; /* `from` each sender should get */
	unsigned bad_content, bad_from, out_of_order;
	uint32_t last_len, last_from;
};

static void on_frame(void *arg, uint32_t from, const uint8_t *f, size_t len)
{
	struct rx *r = arg;
	uint32_t sender, seq;

	r->frames++;
	r->bytes += len;
	r->last_len = (uint32_t)len;
	r->last_from = from;
	if (!content_ok(f, len)) {
		r->bad_content++;
		return;
	}
	sender = rd32(f + 4);
	seq = rd32(f + 8);
	if (sender >= MAX_SENDERS) {
		r->bad_content++;
		return;
	}
	if (from != r->expect_from[sender])
		r->bad_from++;
	if (seq != r->next_seq[sender])
		r->out_of_order++;
	r->next_seq[sender] = seq + 1;
}

/* A port nobody holds right now (we are alone in our namespace). */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void cfg_init(struct sl_transport_config *c, uint32_t id, uint16_t port)
{
	memset(c, 0, sizeof(*c));
	c->self_id = id;
	c->self.ip = htonl(INADDR_LOOPBACK);
	c->self.port = port;
	c->mtu = MTU;
}

static void cfg_peer(struct sl_transport_config *c, uint32_t id, uint16_t port)
{
	c->peers[c->n_peers].node_id = id;
	c->peers[c->n_peers].ep.ip = htonl(INADDR_LOOPBACK);
	c->peers[c->n_peers].ep.port = port;
	c->n_peers++;
}

static struct sl_transport *mk(const struct sl_transport_config *c, const struct sl_udp_opts *o)
{
	struct sl_transport *t = NULL;
	int rc = sl_udp_transport_create_opts(&t, c, o);

	if (rc != 0)
		fprintf(stderr, "create: %s\n", sl_err_msg());
	assert_int_equal(rc, 0);
	assert_non_null(t);
	return t;
}

static struct sl_udp_info info_of(const struct sl_transport *t)
{
	struct sl_udp_info i;

	assert_int_equal(sl_udp_info(t, &i), 0);
	return i;
}

static struct sl_transport_stats stats_of(const struct sl_transport *t)
{
	struct sl_transport_stats s;

	t->ops->stats(t, &s);
	return s;
}

/* Poll until r has `want` frames, or WAIT_MS pass. */
static void pump(struct sl_transport *t, struct rx *r, uint64_t want, unsigned budget)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	for (long i = 0; i < POLL_LOOPS && r->frames < want; i++) {
		int n = t->ops->poll(t, on_frame, r, budget);

		assert_true(n >= 0);
		assert_true((unsigned)n <= (budget ? budget : 64));
		if (n == 0 && now_ms() > deadline)
			break;
	}
}

/* Poll until nothing arrives for `quiet_ms` (bounded). */
static void drain(struct sl_transport *t, struct rx *r, unsigned quiet_ms)
{
	uint64_t last = now_ms();

	for (long i = 0; i < POLL_LOOPS && now_ms() - last < quiet_ms; i++)
		if (t->ops->poll(t, on_frame, r, 64) > 0)
			last = now_ms();
}

static void send_ok(struct sl_transport *t, uint32_t to, uint32_t sender, uint32_t seq,
		    uint32_t len)
{
	static uint8_t buf[SL_FRAME_MAX];
	int rc;

	fill(buf, sender, seq, len);
	rc = t->ops->send(t, to, buf, len);
	if (rc != 0)
		fprintf(stderr, "send: %s\n", sl_err_msg());
	assert_int_equal(rc, 0);
}

static void flush_ok(struct sl_transport *t)
{
	int rc = t->ops->flush(t);

	if (rc != 0)
		fprintf(stderr, "flush: %s\n", sl_err_msg());
	assert_int_equal(rc, 0);
}

/* ---- (a) exchange ---- */

/* Burst sizes: a random mix, one size for the whole burst (GSO-able), or
 * one size with a shorter last frame. */
static uint32_t burst_len(int mode, uint32_t base, uint32_t i, uint32_t n)
{
	if (mode == 0)
		return rng_range(FRAME_MIN, FRAME_MAX);
	if (mode == 2 && i == n - 1)
		return base / 2 > FRAME_MIN ? base / 2 : FRAME_MIN;
	return base;
}

static void test_exchange(void **state)
{
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx ra = {0}, rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	uint64_t bytes_ab = 0, bytes_ba = 0;
	uint32_t seq_a = 0, seq_b = 0;
	uint64_t t0 = now_ms();
	struct sl_transport_stats sa, sb;
	struct sl_udp_info ia, ib;

	(void)state;
	while (pb == pa)
		pb = free_port();
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, NULL);
	b = mk(&cb, NULL);
	rb.expect_from[1] = 1;
	ra.expect_from[2] = 2;

	for (int burst = 0; burst < 100000 && (seq_a < EXCHANGE_N || seq_b < EXCHANGE_N); burst++) {
		uint32_t na = rng_range(1, 64), nb = rng_range(1, 64);
		int mode = (int)(rng() % 3);
		uint32_t base = rng_range(FRAME_MIN, FRAME_MAX);

		if (na > EXCHANGE_N - seq_a)
			na = EXCHANGE_N - seq_a;
		if (nb > EXCHANGE_N - seq_b)
			nb = EXCHANGE_N - seq_b;
		for (uint32_t i = 0; i < na; i++) {
			uint32_t len = burst_len(mode, base, i, na);

			send_ok(a, 2, 1, seq_a++, len);
			bytes_ab += len;
		}
		for (uint32_t i = 0; i < nb; i++) {
			uint32_t len = burst_len((mode + 1) % 3, base, i, nb);

			send_ok(b, 1, 2, seq_b++, len);
			bytes_ba += len;
		}
		flush_ok(a);
		flush_ok(b);
		pump(b, &rb, seq_a, 0);
		pump(a, &ra, seq_b, 0);
		if (rb.frames != seq_a || ra.frames != seq_b)
			fail_msg("burst %d: b has %llu of %u, a has %llu of %u", burst,
				 (unsigned long long)rb.frames, seq_a,
				 (unsigned long long)ra.frames, seq_b);
	}
	assert_int_equal(seq_a, EXCHANGE_N);
	assert_int_equal(seq_b, EXCHANGE_N);
	assert_int_equal(rb.frames, EXCHANGE_N);
	assert_int_equal(ra.frames, EXCHANGE_N);
	assert_int_equal(rb.bytes, bytes_ab);
	assert_int_equal(ra.bytes, bytes_ba);
	assert_int_equal(rb.bad_content + ra.bad_content, 0);
	assert_int_equal(rb.bad_from + ra.bad_from, 0);
	assert_int_equal(rb.out_of_order + ra.out_of_order, 0);

	sa = stats_of(a);
	sb = stats_of(b);
	assert_int_equal(sa.tx_packets, EXCHANGE_N);
	assert_int_equal(sa.tx_bytes, bytes_ab);
	assert_int_equal(sb.rx_packets, EXCHANGE_N);
	assert_int_equal(sb.rx_bytes, bytes_ab);
	assert_int_equal(sb.tx_packets, EXCHANGE_N);
	assert_int_equal(sb.tx_bytes, bytes_ba);
	assert_int_equal(sa.rx_packets, EXCHANGE_N);
	assert_int_equal(sa.rx_bytes, bytes_ba);
	assert_int_equal(sa.tx_dropped + sb.tx_dropped + sa.rx_dropped + sb.rx_dropped, 0);
	ia = info_of(a);
	ib = info_of(b);
	assert_int_equal(ia.rx_unknown + ib.rx_unknown, 0);
	fprintf(stderr,
		"exchange: %u frames each way in %llu ms; a: multishot %d gso %d gro %d, "
		"gso sends %llu (%llu frames), gro bufs %llu (%llu frames), rearms %llu\n",
		EXCHANGE_N, (unsigned long long)(now_ms() - t0), ia.multishot, ia.gso, ia.gro,
		(unsigned long long)ia.gso_sends, (unsigned long long)ia.gso_frames,
		(unsigned long long)ib.gro_bufs, (unsigned long long)ib.gro_frames,
		(unsigned long long)ib.rx_rearms);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

/* ---- (b) GSO ---- */

static void test_gso(void **state)
{
	struct sl_transport_config ca, cb, cc, cb2;
	struct sl_transport *a, *b, *c, *b2;
	struct rx rb = {0}, rc = {0}, rb2 = {0};
	uint16_t pa = free_port(), pb = free_port(), pc = free_port(), pb2 = free_port();
	struct sl_udp_opts no_gro = {.no_gro = 1};
	struct sl_udp_info i0, i1;
	uint32_t seq_b = 0, seq_c = 0;
	static const uint32_t mixed[] = {1400, 1400, 1000, 1400};

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_peer(&ca, 3, pc);
	cfg_peer(&ca, 4, pb2);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	cfg_init(&cc, 3, pc);
	cfg_peer(&cc, 1, pa);
	cfg_init(&cb2, 4, pb2);
	cfg_peer(&cb2, 1, pa);
	a = mk(&ca, NULL);
	b = mk(&cb, NULL);
	c = mk(&cc, NULL);
	b2 = mk(&cb2, &no_gro);
	rb.expect_from[1] = rc.expect_from[1] = rb2.expect_from[1] = 1;
	i0 = info_of(a);
	assert_true(i0.gso); /* UDP_SEGMENT exists since 4.18; this kernel has it */

	/* 40 frames of 1400 B and a last one of 700 B: one sendmsg. */
	for (int i = 0; i < 40; i++)
		send_ok(a, 2, 1, seq_b++, 1400);
	send_ok(a, 2, 1, seq_b++, 700);
	flush_ok(a);
	i1 = info_of(a);
	assert_int_equal(i1.gso_sends - i0.gso_sends, 1);
	assert_int_equal(i1.gso_frames - i0.gso_frames, 41);
	pump(b, &rb, 41, 0);
	assert_int_equal(rb.frames, 41);
	assert_int_equal(rb.last_len, 700);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);

	/* 1400, 1400, 1000 | 1400: a shorter frame ends a GSO run, so two
	 * sendmsgs, the first carrying three frames. */
	i0 = info_of(a);
	for (unsigned i = 0; i < 4; i++)
		send_ok(a, 2, 1, seq_b++, mixed[i]);
	flush_ok(a);
	i1 = info_of(a);
	assert_int_equal(i1.gso_sends - i0.gso_sends, 1);
	assert_int_equal(i1.gso_frames - i0.gso_frames, 3);
	pump(b, &rb, 45, 0);
	assert_int_equal(rb.frames, 45);

	/* Equal sizes, alternating peers: no run longer than one frame. */
	i0 = info_of(a);
	for (int i = 0; i < 20; i++) {
		send_ok(a, 2, 1, seq_b++, 1200);
		send_ok(a, 3, 1, seq_c++, 1200);
	}
	flush_ok(a);
	i1 = info_of(a);
	assert_int_equal(i1.gso_sends, i0.gso_sends);
	pump(b, &rb, 65, 0);
	pump(c, &rc, 20, 0);
	assert_int_equal(rb.frames, 65);
	assert_int_equal(rc.frames, 20);

	/* More than 64 equal frames: split at 64 segments. 8,900 B frames:
	 * at most 7 fit one 64 KiB datagram. */
	i0 = info_of(a);
	for (int i = 0; i < 100; i++)
		send_ok(a, 2, 1, seq_b++, 100);
	for (int i = 0; i < 14; i++)
		send_ok(a, 2, 1, seq_b++, 8900);
	flush_ok(a);
	i1 = info_of(a);
	assert_int_equal(i1.gso_sends - i0.gso_sends, 2 + 2);
	assert_int_equal(i1.gso_frames - i0.gso_frames, 114);
	pump(b, &rb, 65 + 114, 0);
	assert_int_equal(rb.frames, 65 + 114);

	/* A receiver without GRO gets a GSO burst as separate datagrams. */
	for (uint32_t i = 0; i < 30; i++)
		send_ok(a, 4, 1, i, 2000);
	flush_ok(a);
	pump(b2, &rb2, 30, 0);
	assert_int_equal(rb2.frames, 30);
	assert_int_equal(info_of(b2).gro_bufs, 0);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);
	assert_int_equal(rc.bad_content + rc.bad_from + rc.out_of_order, 0);
	assert_int_equal(rb2.bad_content + rb2.bad_from + rb2.out_of_order, 0);
	assert_int_equal(stats_of(a).tx_dropped, 0);
	a->ops->destroy(a);
	b->ops->destroy(b);
	c->ops->destroy(c);
	b2->ops->destroy(b2);
}

/* ---- (c) GRO ---- */

static void gro_case(const struct sl_udp_opts *ropts, unsigned budget)
{
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	struct sl_udp_info ib;
	uint32_t seq = 0;

	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, NULL);
	b = mk(&cb, ropts);
	rb.expect_from[1] = 1;
	assert_true(info_of(b).gro);
	/* Three GSO bursts: 41 x 1,400 (last 600), 7 x 8,900, 64 x 64. */
	for (int i = 0; i < 40; i++)
		send_ok(a, 2, 1, seq++, 1400);
	send_ok(a, 2, 1, seq++, 600);
	for (int i = 0; i < 7; i++)
		send_ok(a, 2, 1, seq++, 8900);
	for (int i = 0; i < 64; i++)
		send_ok(a, 2, 1, seq++, 64);
	flush_ok(a);
	assert_int_equal(info_of(a).gso_sends, 3);
	pump(b, &rb, seq, budget);
	ib = info_of(b);
	assert_int_equal(rb.frames, seq);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);
	/* Loopback hands a GSO packet to a GRO socket whole (the kernel may
	 * still segment one now and then, e.g. under memory pressure). */
	assert_true(ib.gro_bufs >= 1 && ib.gro_bufs <= 3);
	assert_true(ib.gro_frames >= 7 && ib.gro_frames <= seq);
	assert_int_equal(stats_of(b).rx_packets, seq);
	assert_int_equal(stats_of(b).rx_dropped, 0);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

static void test_gro(void **state)
{
	struct sl_udp_opts single = {.no_multishot = 1};

	(void)state;
	gro_case(NULL, 0);    /* multishot, whole buffers per poll */
	gro_case(NULL, 5);    /* a buffer split across many polls */
	gro_case(&single, 3); /* single-shot receives: cmsg through the slot */
}

/* ---- (d) unknown senders ---- */

static void test_unknown_sender(void **state)
{
	struct sl_transport_config ca, cb, cc;
	struct sl_transport *a, *b, *c;
	struct rx rb = {0};
	uint16_t pa = free_port(), pb = free_port(), pc = free_port();
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(pb)};
	uint8_t buf[512];
	int fd;

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa); /* c (3) is not b's peer */
	cfg_init(&cc, 3, pc);
	cfg_peer(&cc, 2, pb);
	a = mk(&ca, NULL);
	b = mk(&cb, NULL);
	c = mk(&cc, NULL);
	rb.expect_from[1] = 1; /* a: known */
	rb.expect_from[3] = 0; /* c: a transport b does not know */
	rb.expect_from[5] = 0; /* a plain socket */

	send_ok(a, 2, 1, 0, 300);
	flush_ok(a);
	pump(b, &rb, 1, 0);
	assert_int_equal(rb.last_from, 1);
	for (uint32_t i = 0; i < 5; i++)
		send_ok(c, 2, 3, i, 500);
	flush_ok(c);
	pump(b, &rb, 6, 0);
	assert_int_equal(rb.last_from, 0);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	for (uint32_t i = 0; i < 3; i++) {
		fill(buf, 5, i, sizeof(buf));
		assert_int_equal(
		    sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)),
		    (ssize_t)sizeof(buf));
	}
	close(fd);
	pump(b, &rb, 9, 0);
	assert_int_equal(rb.frames, 9);
	assert_int_equal(rb.last_from, 0);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);
	assert_int_equal(info_of(b).rx_unknown, 8);
	a->ops->destroy(a);
	b->ops->destroy(b);
	c->ops->destroy(c);
}

/* ---- (e) multishot re-arm ---- */

static void rearm_case(const struct sl_udp_opts *ropts)
{
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	struct sl_udp_opts sopts = {.no_gso = 1};
	struct sl_udp_info ib;
	uint32_t seq = 0;

	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, &sopts); /* one datagram per frame: one buffer each */
	b = mk(&cb, ropts);
	rb.expect_from[1] = 1;
	assert_int_equal(info_of(b).rx_bufs, 4);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 64; i++)
			send_ok(a, 2, 1, seq++, rng_range(64, 1500));
		flush_ok(a);
		pump(b, &rb, seq, 3);
		assert_int_equal(rb.frames, seq);
	}
	ib = info_of(b);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);
	assert_int_equal(stats_of(b).rx_dropped, 0);
	assert_true(ib.multishot);
	{
		/* 64 datagrams against 4 buffers: the ring runs dry (the
		 * multishot ends with ENOBUFS) and is re-armed each time. */
		assert_true(ib.rx_nobufs >= 5);
		assert_true(ib.rx_rearms >= 5);
	}
	fprintf(stderr, "rearm: multishot %d, %llu re-arms, %llu ENOBUFS ends\n", ib.multishot,
		(unsigned long long)ib.rx_rearms, (unsigned long long)ib.rx_nobufs);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

/* Receive completions that flush() reaps are stashed for poll; each must
 * free its buffer exactly once, or a receiver that also sends runs out of
 * buffers and stops receiving (seen under load with three shipd). */
static void test_flush_meets_receives(void **state)
{
	const struct sl_udp_opts small = {.rx_bufs = 8, .no_gro = 1};
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx ra = {0}, rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	uint32_t seq_a = 0, seq_b = 0;
	const int rounds = 3000, burst = 4;

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, NULL);
	b = mk(&cb, &small);
	ra.expect_from[2] = 2;
	rb.expect_from[1] = 1;
	b->ops->poll(b, on_frame, &rb, 64); /* arm b's receive */
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < burst; i++)
			send_ok(a, 2, 1, seq_a++, 200);
		flush_ok(a);
		usleep(50); /* let them land in b's socket */
		/* b sends before it polls: its flush meets a's frames first. */
		send_ok(b, 1, 2, seq_b++, 100);
		flush_ok(b);
		pump(b, &rb, seq_a, 64);
		a->ops->poll(a, on_frame, &ra, 64);
	}
	/* Now run b's buffer ring dry: the multishot receive ends and must be
	 * re-armed, which a leaked buffer count would forbid forever. */
	for (int r = 0; r < 20; r++) {
		for (int i = 0; i < 32; i++)
			send_ok(a, 2, 1, seq_a++, 200);
		flush_ok(a);
		usleep(200);
		pump(b, &rb, seq_a, 64);
	}
	drain(a, &ra, 50);
	assert_int_equal(rb.frames, (uint64_t)rounds * burst + 20 * 32);
	assert_true(info_of(b).rx_rearms > 0);
	assert_int_equal(rb.bad_content, 0);
	assert_int_equal(ra.frames, (uint64_t)rounds);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

static void test_rearm(void **state)
{
	struct sl_udp_opts multi4 = {.rx_bufs = 4}, multi4_nogro = {.rx_bufs = 4, .no_gro = 1};

	(void)state;
	rearm_case(&multi4);
	rearm_case(&multi4_nogro);
}

/* ---- single-shot fallback ---- */

static void test_single_shot(void **state)
{
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx ra = {0}, rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	struct sl_udp_opts single = {.no_multishot = 1},
			   single_nogro = {.no_multishot = 1, .no_gro = 1};
	uint32_t sa = 0, sb = 0;

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, &single);
	b = mk(&cb, &single_nogro);
	ra.expect_from[2] = 2;
	rb.expect_from[1] = 1;
	assert_false(info_of(a).multishot);
	assert_false(info_of(b).multishot);
	for (int burst = 0; burst < 200; burst++) {
		uint32_t n = rng_range(1, 48);

		for (uint32_t i = 0; i < n; i++) {
			send_ok(a, 2, 1, sa++, rng_range(FRAME_MIN, FRAME_MAX));
			send_ok(b, 1, 2, sb++, rng_range(FRAME_MIN, FRAME_MAX));
		}
		flush_ok(a);
		flush_ok(b);
		pump(b, &rb, sa, 0);
		pump(a, &ra, sb, 0);
		assert_int_equal(rb.frames, sa);
		assert_int_equal(ra.frames, sb);
	}
	assert_int_equal(ra.bad_content + ra.bad_from + ra.out_of_order, 0);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

/* Created in this thread, driven in another while this one sleeps in
 * pthread_join: the receives must be armed by (and complete in) the
 * polling thread, or nothing would arrive. */
struct xthread {
	struct sl_transport *a, *b;
	struct rx rb;
	int rc;
};

static void *xthread_main(void *arg)
{
	struct xthread *x = arg;
	uint32_t seq = 0;

	static uint8_t buf[1500];

	for (int burst = 0; burst < 50; burst++) {
		for (int i = 0; i < 20; i++, seq++) {
			fill(buf, 1, seq, 1000);
			if (x->a->ops->send(x->a, 2, buf, 1000) != 0)
				x->rc = -1;
		}
		if (x->a->ops->flush(x->a) != 0)
			x->rc = -2;
		{
			uint64_t deadline = now_ms() + WAIT_MS;

			for (long i = 0;
			     i < POLL_LOOPS && x->rb.frames < seq && now_ms() < deadline; i++)
				x->b->ops->poll(x->b, on_frame, &x->rb, 64);
		}
		if (x->rb.frames != seq) {
			x->rc = -3;
			break;
		}
	}
	return NULL;
}

static void test_other_thread(void **state)
{
	struct sl_transport_config ca, cb;
	struct xthread x = {0};
	uint16_t pa = free_port(), pb = free_port();
	pthread_t th;

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	for (int mode = 0; mode < 2; mode++) {
		struct sl_udp_opts o = {.no_multishot = mode};

		memset(&x, 0, sizeof(x));
		x.a = mk(&ca, NULL);
		x.b = mk(&cb, &o);
		x.rb.expect_from[1] = 1;
		assert_int_equal(pthread_create(&th, NULL, xthread_main, &x), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		if (x.rc != 0)
			fail_msg("mode %d: rc %d after %llu frames", mode, x.rc,
				 (unsigned long long)x.rb.frames);
		assert_int_equal(x.rb.frames, 1000);
		assert_int_equal(x.rb.bad_content + x.rb.bad_from + x.rb.out_of_order, 0);
		x.a->ops->destroy(x.a);
		x.b->ops->destroy(x.b);
	}
}

/* ---- (f) bounds ---- */

static void test_queue_bounds(void **state)
{
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	uint8_t buf[SL_FRAME_MAX + 1];
	struct sl_transport_stats s;
	uint32_t seq = 0;
	int rc;

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	ca.tx_queue = 8;
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, NULL);
	b = mk(&cb, NULL);
	rb.expect_from[1] = 1;

	/* Eight fit; the ninth forces a flush, which fails: -ENOBUFS, one
	 * drop counted, the eight still queued. */
	for (int i = 0; i < 8; i++)
		send_ok(a, 2, 1, seq++, 1000);
	sl_udp_fail_flushes(a, 1);
	fill(buf, 1, 999999, 1000);
	rc = a->ops->send(a, 2, buf, 1000);
	assert_int_equal(rc, -ENOBUFS);
	assert_non_null(strstr(sl_err_msg(), "TX queue full (8 frames)"));
	assert_non_null(strstr(sl_err_msg(), "injected"));
	s = stats_of(a);
	assert_int_equal(s.tx_dropped, 1);
	assert_int_equal(s.tx_packets, 0);
	assert_int_equal(info_of(a).flush_failures, 1);

	/* Many more with every flush failing: all refused, all counted. */
	sl_udp_fail_flushes(a, 1000);
	for (int i = 0; i < 500; i++)
		assert_int_equal(a->ops->send(a, 2, buf, 1000), -ENOBUFS);
	assert_int_equal(stats_of(a).tx_dropped, 501);
	sl_udp_fail_flushes(a, 0);

	/* Now the forced flush works: the eight go, the new one queues. */
	send_ok(a, 2, 1, seq++, 1000);
	assert_int_equal(stats_of(a).tx_packets, 8);
	flush_ok(a);
	pump(b, &rb, 9, 0);
	assert_int_equal(rb.frames, 9);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);

	/* Frames larger than the MTU allows, empty ones, unknown nodes. */
	assert_int_equal(a->ops->send(a, 2, buf, MTU - 28 + 1), -EMSGSIZE);
	assert_non_null(strstr(sl_err_msg(), "udp 127.0.0.1:"));
	assert_int_equal(a->ops->send(a, 2, buf, 0), -EMSGSIZE);
	assert_int_equal(a->ops->send(a, 7, buf, 100), -ENOENT);
	assert_non_null(strstr(sl_err_msg(), "node 7"));
	s = stats_of(a);
	assert_int_equal(s.tx_packets, 9);
	assert_int_equal(s.tx_dropped, 501);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

/* EAGAIN for real: a token bucket on lo holds packets, still charged to the
 * sender's (tiny) socket buffer, so later sendmsgs find it full. They are
 * resubmitted a bounded number of times, then dropped and counted. */
static void test_eagain_drops(void **state)
{
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	struct sl_udp_opts small = {.no_gso = 1, .sockbuf = 4096};
	struct sl_transport_stats s;
	struct sl_udp_info ia;
	uint32_t seq = 0;

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, &small);
	b = mk(&cb, NULL);
	rb.expect_from[1] = 1;
	if (system("tc qdisc add dev lo root tbf rate 8kbit burst 2000 limit 1000000") != 0)
		fail_msg("tc qdisc add dev lo root tbf ... failed (iproute2 needed)");
	for (int i = 0; i < 32; i++)
		send_ok(a, 2, 1, seq++, 1400);
	flush_ok(a);
	s = stats_of(a);
	ia = info_of(a);
	fprintf(stderr, "eagain: sndbuf %d: %llu sent, %llu dropped, %llu retries\n", ia.sndbuf,
		(unsigned long long)s.tx_packets, (unsigned long long)s.tx_dropped,
		(unsigned long long)ia.tx_retries);
	if (system("tc qdisc del dev lo root") != 0)
		fail_msg("tc qdisc del dev lo root failed");
	assert_int_equal(s.tx_packets + s.tx_dropped, 32);
	assert_true(s.tx_dropped > 0);
	assert_true(ia.tx_retries > 0);
	assert_true(ia.tx_errors > 0);

	/* With the qdisc gone the socket buffer empties; sends work again. */
	drain(b, &rb, 100);
	rb = (struct rx){0};
	rb.expect_from[1] = 1;
	rb.next_seq[1] = 1000;
	for (uint32_t i = 0; i < 4; i++)
		send_ok(a, 2, 1, 1000 + i, 1400);
	flush_ok(a);
	pump(b, &rb, 4, 0);
	assert_int_equal(rb.frames, 4);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

static void set_lo_mtu(int mtu)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ifr.ifr_mtu = mtu;
	assert_true(fd >= 0);
	assert_int_equal(ioctl(fd, SIOCSIFMTU, &ifr), 0);
	close(fd);
}

/* DF is set (IP_PMTUDISC_DO): with the path MTU below the configured one,
 * frames that do not fit fail with EMSGSIZE and are dropped and counted,
 * never fragmented. The GSO sendmsg holding them is refused (EINVAL: its
 * segment size exceeds the path MTU); its frames go again one by one, so
 * the one that fits still arrives. */
static void test_dont_fragment(void **state)
{
	struct sl_transport_config ca, cb;
	struct sl_transport *a, *b;
	struct rx rb = {0};
	uint16_t pa = free_port(), pb = free_port();
	struct sl_transport_stats s;

	(void)state;
	cfg_init(&ca, 1, pa);
	cfg_peer(&ca, 2, pb);
	cfg_init(&cb, 2, pb);
	cfg_peer(&cb, 1, pa);
	a = mk(&ca, NULL);
	b = mk(&cb, NULL);
	rb.expect_from[1] = 1;
	rb.next_seq[1] = 3;
	set_lo_mtu(1500);
	for (uint32_t i = 0; i < 3; i++)
		send_ok(a, 2, 1, i, 2000);
	send_ok(a, 2, 1, 3, 1400);
	flush_ok(a);
	set_lo_mtu(MTU);
	s = stats_of(a);
	assert_int_equal(s.tx_dropped, 3);
	assert_int_equal(s.tx_packets, 1);
	assert_true(info_of(a).gso); /* EINVAL is not a reason to give GSO up */
	pump(b, &rb, 1, 0);
	drain(b, &rb, 50);
	assert_int_equal(rb.frames, 1);
	assert_int_equal(rb.last_len, 1400);
	assert_int_equal(rb.bad_content + rb.bad_from + rb.out_of_order, 0);
	a->ops->destroy(a);
	b->ops->destroy(b);
}

/* ---- errors at create ---- */

static void test_create_errors(void **state)
{
	struct sl_transport_config c;
	struct sl_transport *a, *t = NULL;
	uint16_t pa = free_port();
	char want[64];

	(void)state;
	cfg_init(&c, 1, pa);
	cfg_peer(&c, 2, free_port());
	a = mk(&c, NULL);
	/* The same address again: bind fails, the message says where. */
	assert_int_equal(sl_udp_transport_create(&t, &c), -EADDRINUSE);
	assert_null(t);
	snprintf(want, sizeof(want), "udp 127.0.0.1:%u: bind: Address already in use", pa);
	assert_string_equal(sl_err_msg(), want);
	a->ops->destroy(a);

	cfg_init(&c, 1, free_port());
	cfg_peer(&c, 0, 9);
	assert_int_equal(sl_udp_transport_create(&t, &c), -EINVAL);
	cfg_init(&c, 1, free_port());
	cfg_peer(&c, 1, 9); /* ourselves */
	assert_int_equal(sl_udp_transport_create(&t, &c), -EINVAL);
	cfg_init(&c, 1, free_port());
	cfg_peer(&c, 2, 9);
	cfg_peer(&c, 3, 9); /* same address twice */
	assert_int_equal(sl_udp_transport_create(&t, &c), -EINVAL);
	cfg_init(&c, 1, free_port());
	c.mtu = 100;
	assert_int_equal(sl_udp_transport_create(&t, &c), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "MTU 100"));
	cfg_init(&c, 1, free_port());
	{
		struct sl_udp_opts bad = {.rx_bufs = 6};

		assert_int_equal(sl_udp_transport_create_opts(&t, &c, &bad), -EINVAL);
	}
	/* Port 0: the kernel picks one, info reports it. */
	cfg_init(&c, 1, 0);
	a = mk(&c, NULL);
	assert_true(info_of(a).port != 0);
	a->ops->destroy(a);
	assert_null(t);
}

/* ---- namespace ---- */

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
		fprintf(stderr, "writing %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* Our own network namespace: lo up at MTU 9000 (the jumbo case the
 * transport is sized for), free ports, qdiscs that disturb no one. */
static void enter_netns(void)
{
	struct ifreq ifr;
	int fd;

	if (unshare(CLONE_NEWNET) != 0) {
		char map[64];
		unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();

		if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
			fprintf(stderr, "test_udp: cannot create a network namespace: %s\n",
				strerror(errno));
			exit(1);
		}
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1", uid);
		write_file("/proc/self/uid_map", map);
		snprintf(map, sizeof(map), "0 %u 1", gid);
		write_file("/proc/self/gid_map", map);
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		fprintf(stderr, "test_udp: lo: %s\n", strerror(errno));
		exit(1);
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
		fprintf(stderr, "test_udp: lo up: %s\n", strerror(errno));
		exit(1);
	}
	ifr.ifr_mtu = MTU;
	if (ioctl(fd, SIOCSIFMTU, &ifr) != 0) {
		fprintf(stderr, "test_udp: lo mtu %d: %s\n", MTU, strerror(errno));
		exit(1);
	}
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_errors), cmocka_unit_test(test_gso),
	    cmocka_unit_test(test_gro),		  cmocka_unit_test(test_unknown_sender),
	    cmocka_unit_test(test_rearm),	  cmocka_unit_test(test_flush_meets_receives),
	    cmocka_unit_test(test_single_shot),	  cmocka_unit_test(test_queue_bounds),
	    cmocka_unit_test(test_eagain_drops),  cmocka_unit_test(test_dont_fragment),
	    cmocka_unit_test(test_other_thread),  cmocka_unit_test(test_exchange),
	};

	enter_netns();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
