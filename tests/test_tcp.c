/* Tests for the kernel TCP baseline transport (net/tcp.c), on 127.0.0.1:
 *   exchange   20,000 frames each way, 1..1472 B: content, order, sender,
 *              counters
 *   budget     a small poll budget hands frames out across polls, in order
 *   reconnect  a peer that goes away and comes back on its port is reached
 *              again; frames sent meanwhile are dropped, not errors
 *   bad        a connection with a wrong hello or frame length is closed
 *              and counted, nothing delivered
 *   errors     unknown peer, oversize frame, bad config, port in use
 * Every loop is bounded in count and in time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "shiplog/frame.h"
#include "shiplog/le.h"
#include "shiplog/tcp.h"
#include "shiplog/transport.h"

#define EXCHANGE_N 20000
#define WAIT_MS	   5000
#define FRAME_CAP  (1500 - SL_FRAME_IP_UDP)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void free_tcp_ports(uint16_t *ports, unsigned n)
{
	int fds[4];

	assert_true(n <= 4);
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(sa);

		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(getsockname(fds[i], (struct sockaddr *)&sa, &len), 0);
		ports[i] = ntohs(sa.sin_port);
	}
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

static struct sl_transport_config cfg(uint32_t self, uint16_t port, uint32_t peer,
				      uint16_t peer_port)
{
	struct sl_transport_config c = {
	    .self_id = self,
	    .self = {.ip = htonl(INADDR_LOOPBACK), .port = port},
	    .n_peers = 1,
	    .peers[0] = {.node_id = peer, .ep = {.ip = htonl(INADDR_LOOPBACK), .port = peer_port}},
	    .mtu = 1500,
	};
	return c;
}

static void make_pair(struct sl_transport *t[2], uint16_t ports[2])
{
	struct sl_transport_config a, b;

	free_tcp_ports(ports, 2);
	a = cfg(1, ports[0], 2, ports[1]);
	b = cfg(2, ports[1], 1, ports[0]);
	assert_int_equal(sl_tcp_transport_create(&t[0], &a), 0);
	assert_int_equal(sl_tcp_transport_create(&t[1], &b), 0);
}

/* What a receiver saw: the next sequence number expected, errors. */
struct rx {
	uint32_t from_want, next, errors;
};

static size_t frame_len(uint32_t seq)
{
	return 1 + (seq * 7919u) % FRAME_CAP;
}

static void fill(uint8_t *f, uint32_t seq, size_t len)
{
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seq * 31u + i);
	if (len >= 4)
		sl_le32_put(f, seq);
}

static void on_frame(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	struct rx *r = arg;
	uint8_t want[FRAME_CAP];
	size_t wl = frame_len(r->next);

	fill(want, r->next, wl);
	if (from != r->from_want || len != wl || memcmp(frame, want, len) != 0)
		r->errors++;
	r->next++;
}

static void send_seq(struct sl_transport *t, uint32_t to, uint32_t seq)
{
	uint8_t f[FRAME_CAP];
	size_t len = frame_len(seq);
	int rc;

	fill(f, seq, len);
	/* A full queue: flush and let the receiver catch up (bounded). */
	for (unsigned tries = 0; (rc = t->ops->send(t, to, f, len)) == -ENOBUFS && tries < 1000;
	     tries++)
		usleep(100);
	assert_int_equal(rc, 0);
}

/* Poll both until each has `want` frames, flushing both between. */
static void pump(struct sl_transport *t[2], struct rx r[2], uint32_t want, unsigned budget)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	while ((r[0].next < want || r[1].next < want) && now_ms() < deadline) {
		for (int i = 0; i < 2; i++) {
			assert_true(t[i]->ops->flush(t[i]) >= 0);
			assert_true(t[i]->ops->poll(t[i], on_frame, &r[i], budget) >= 0);
		}
	}
}

static void test_exchange(void **state)
{
	struct sl_transport *t[2];
	struct rx r[2] = {{.from_want = 2}, {.from_want = 1}};
	struct sl_transport_stats s;
	uint16_t ports[2];

	(void)state;
	make_pair(t, ports);
	for (uint32_t seq = 0; seq < EXCHANGE_N; seq++) {
		send_seq(t[0], 2, seq);
		send_seq(t[1], 1, seq);
		if (seq % 64 == 63)
			pump(t, r, seq - 32, 64); /* keep the queues moving */
	}
	pump(t, r, EXCHANGE_N, 64);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].next, EXCHANGE_N);
		assert_int_equal(r[i].errors, 0);
		t[i]->ops->stats(t[i], &s);
		assert_int_equal(s.rx_packets, EXCHANGE_N);
		assert_int_equal(s.tx_packets, EXCHANGE_N);
		assert_int_equal(s.rx_dropped, 0);
		assert_int_equal(s.tx_dropped, 0);
	}
	for (int i = 0; i < 2; i++)
		t[i]->ops->destroy(t[i]);
}

static void test_budget(void **state)
{
	struct sl_transport *t[2];
	struct rx r[2] = {{.from_want = 2}, {.from_want = 1}};
	uint16_t ports[2];

	(void)state;
	make_pair(t, ports);
	for (uint32_t seq = 0; seq < 100; seq++)
		send_seq(t[0], 2, seq);
	r[0].next = 100; /* nothing comes the other way */
	pump(t, r, 100, 7);
	assert_int_equal(r[1].next, 100);
	assert_int_equal(r[1].errors, 0);
	for (int i = 0; i < 2; i++)
		t[i]->ops->destroy(t[i]);
}

static void test_reconnect(void **state)
{
	struct sl_transport *t[2];
	struct rx r[2] = {{.from_want = 2}, {.from_want = 1}};
	struct sl_transport_config b;
	struct sl_tcp_info info;
	uint16_t ports[2];
	uint64_t deadline;

	(void)state;
	make_pair(t, ports);
	send_seq(t[0], 2, 0);
	r[0].next = 1000;
	pump(t, r, 1, 16);
	assert_int_equal(r[1].next, 1);
	t[1]->ops->destroy(t[1]);
	/* Sends while the peer is away do not fail. */
	for (uint32_t i = 0; i < 10; i++) {
		uint8_t f[8] = {0};

		assert_int_equal(t[0]->ops->send(t[0], 2, f, sizeof(f)), 0);
		assert_true(t[0]->ops->flush(t[0]) >= 0);
		usleep(2000);
	}
	b = cfg(2, ports[1], 1, ports[0]);
	assert_int_equal(sl_tcp_transport_create(&t[1], &b), 0);
	/* Keep sending frame 1 until one arrives on the new connection. */
	r[1] = (struct rx){.from_want = 1, .next = 1};
	deadline = now_ms() + WAIT_MS;
	while (r[1].next == 1 && now_ms() < deadline) {
		send_seq(t[0], 2, 1);
		assert_true(t[0]->ops->flush(t[0]) >= 0);
		usleep(1000);
		assert_true(t[1]->ops->poll(t[1], on_frame, &r[1], 1) >= 0);
	}
	assert_true(r[1].next >= 2);
	assert_int_equal(r[1].errors, 0);
	assert_int_equal(sl_tcp_info(t[0], &info), 0);
	assert_true(info.connects >= 2);
	assert_true(info.disconnects >= 1);
	for (int i = 0; i < 2; i++)
		t[i]->ops->destroy(t[i]);
}

/* A raw connection to `port` that sends `bytes`; the transport must close
 * it, count it and deliver nothing. */
static void bad_peer(const uint8_t *bytes, size_t n)
{
	struct sl_transport *t[2];
	struct rx r = {.from_want = 2};
	struct sl_tcp_info info = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	uint16_t ports[2];
	uint64_t deadline;
	int fd;

	make_pair(t, ports);
	sa.sin_port = htons(ports[1]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, bytes, n), (ssize_t)n);
	deadline = now_ms() + WAIT_MS;
	while (info.rx_bad == 0 && now_ms() < deadline) {
		assert_true(t[1]->ops->poll(t[1], on_frame, &r, 16) >= 0);
		assert_int_equal(sl_tcp_info(t[1], &info), 0);
	}
	assert_int_equal(info.rx_bad, 1);
	assert_int_equal(r.next, 0);
	close(fd);
	for (int i = 0; i < 2; i++)
		t[i]->ops->destroy(t[i]);
}

static void test_bad(void **state)
{
	uint8_t b[16];

	(void)state;
	sl_le32_put(b, 0x12345678); /* wrong magic */
	sl_le32_put(b + 4, 1);
	bad_peer(b, 8);
	sl_le32_put(b, 0x43544c53u); /* right magic, unknown node 9 */
	sl_le32_put(b + 4, 9);
	bad_peer(b, 8);
	sl_le32_put(b + 4, 1); /* node 1, then a frame longer than the MTU */
	sl_le32_put(b + 8, 60000);
	bad_peer(b, 12);
}

static void test_errors(void **state)
{
	struct sl_transport *t[2], *x;
	struct sl_transport_config c;
	uint8_t big[FRAME_CAP + 1] = {0};
	uint16_t ports[2];

	(void)state;
	make_pair(t, ports);
	assert_int_equal(t[0]->ops->send(t[0], 7, big, 10), -ENOENT);
	assert_int_equal(t[0]->ops->send(t[0], 2, big, sizeof(big)), -EMSGSIZE);
	assert_int_equal(t[0]->ops->send(t[0], 2, big, 0), -EMSGSIZE);
	c = cfg(3, ports[0], 2, ports[1]); /* port in use */
	assert_int_equal(sl_tcp_transport_create(&x, &c), -EADDRINUSE);
	c = cfg(3, 0, 3, ports[1]); /* a peer with our own id */
	assert_int_equal(sl_tcp_transport_create(&x, &c), -EINVAL);
	c = cfg(3, 0, 2, 0); /* a peer without a port */
	assert_int_equal(sl_tcp_transport_create(&x, &c), -EINVAL);
	for (int i = 0; i < 2; i++)
		t[i]->ops->destroy(t[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exchange),  cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_reconnect), cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
