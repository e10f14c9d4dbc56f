/* Tests for the DPDK transport, on a real EAL (--no-huge, no PCI):
 *   - the first transport initialises EAL from its eal_args (a loopback
 *     net_ring vdev), and frames it sends to itself come back;
 *   - two transports in one process over a pair of net_ring ports exchange
 *     10,000 frames of 64 B .. 8 KiB each way at MTU 9000 (chained mbufs);
 *   - jumbo frames up to the MTU, MTU limits refused;
 *   - ARP: a request for our IP is answered, a peer's MAC is learned from a
 *     reply, unresolved peers are asked for;
 *   - malformed and foreign packets are dropped and counted, never delivered;
 *   - interop with the kernel: net_af_packet on one end of a veth pair in a
 *     network namespace this test creates, a kernel UDP socket in another,
 *     frames both ways (zero-copy and copied sends).
 * EAL initialises once per process, so one binary holds them all; every
 * port after the first is made later (rte_eth_from_rings) or hot-plugged
 * from a transport's eal_args. Needs root (namespaces, af_packet). Every loop
 * is bounded in iterations and time; namespaces are removed at exit, on
 * SIGTERM/SIGINT, and stale ones of dead runs at start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "shiplog/dpdk.h"
#include "shiplog/encap.h"
#include "shiplog/err.h"
#include "shiplog/transport.h"

#define FRAME_CAP 9216
#define BURST	  32

static char prefix[64];			  /* EAL --file-prefix */
static char ns_a[64], ns_b[64], ns_c[64]; /* network namespaces */
static char if_a[IFNAMSIZ], if_b[IFNAMSIZ], if_c[IFNAMSIZ];
static int ns_made;
static int home_ns = -1;	     /* our own network namespace, to come back to */
static struct sl_transport *lo_t;    /* made by the group setup: it initialises EAL */
static struct rte_mempool *inj_pool; /* mbufs the tests inject */
static unsigned uniq;

/* ---- time, frames ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A frame names its origin and sequence number and is otherwise bytes only
 * they determine, so any corruption, truncation or mix-up shows. */
static void gen_frame(uint8_t *b, size_t len, uint8_t origin, uint32_t seq)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (seq + 1) ^ origin;

	b[0] = origin;
	wr32(b + 1, seq);
	wr32(b + 5, (uint32_t)len);
	for (size_t i = 9; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
}

/* 1 when b is frame `*seq` of `origin`, exactly. */
static int check_frame(const uint8_t *b, size_t len, uint8_t origin, uint32_t *seq)
{
	static uint8_t want[FRAME_CAP];

	if (len < 9 || len > FRAME_CAP || b[0] != origin || rd32(b + 5) != len)
		return 0;
	*seq = rd32(b + 1);
	gen_frame(want, len, origin, *seq);
	return memcmp(want, b, len) == 0;
}

static size_t size_of(uint32_t seq, size_t min, size_t max)
{
	return min + (size_t)(((uint64_t)seq * 7919u) % (max - min + 1));
}

static uint32_t ip4(int a, int b, int c, int d)
{
	return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d);
}

/* ---- namespaces ---- */

static int run(const char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void ns_del(const char *name)
{
	const char *argv[] = {"ip", "netns", "del", name, NULL};

	run(argv);
}

static void cleanup(void)
{
	char path[128];
	const char *rm[] = {"rm", "-rf", path, NULL};

	if (ns_made) {
		ns_made = 0;
		ns_del(ns_a);
		ns_del(ns_b);
		ns_del(ns_c);
	}
	if (prefix[0]) {
		snprintf(path, sizeof(path), "/var/run/dpdk/%s", prefix);
		run(rm);
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* What earlier runs left when they were killed: namespaces sldpA<pid> and
 * sldpB<pid>, EAL runtime directories sldpdk<pid>. Remove those whose
 * process is gone. */
static void sweep_dir(const char *dir, const char *const pre[], size_t n_pre, int is_ns)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && n++ < 1000) {
		for (size_t i = 0; i < n_pre; i++) {
			size_t pl = strlen(pre[i]);
			char *end, path[512];
			const char *rm[] = {"rm", "-rf", path, NULL};
			long pid;

			if (strncmp(e->d_name, pre[i], pl) != 0)
				continue;
			pid = strtol(e->d_name + pl, &end, 10);
			if (*end != '\0' || pid <= 0 || pid == getpid() ||
			    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
				continue;
			if (is_ns) {
				ns_del(e->d_name);
			} else {
				snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
				run(rm);
			}
		}
	}
	closedir(d);
}

static void sweep_stale(void)
{
	static const char *const ns[] = {"sldpA", "sldpB", "sldpC"}, *const eal[] = {"sldpdk"};

	sweep_dir("/var/run/netns", ns, 3, 1);
	sweep_dir("/var/run/dpdk", eal, 1, 0);
}

static int make_namespaces(void)
{
	const char *cmds[][12] = {
	    {"ip", "netns", "add", ns_a, NULL},
	    {"ip", "netns", "add", ns_b, NULL},
	    {"ip", "netns", "add", ns_c, NULL},
	    {"ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, NULL},
	    {"ip", "-n", ns_a, "link", "set", if_b, "netns", ns_b, NULL},
	    {"ip", "-n", ns_a, "link", "set", if_a, "up", NULL},
	    {"ip", "-n", ns_b, "addr", "add", "10.77.0.2/24", "dev", if_b, NULL},
	    {"ip", "-n", ns_b, "link", "set", if_b, "up", NULL},
	    {"ip", "-n", ns_b, "link", "set", "lo", "up", NULL},
	    {"ip", "-n", ns_c, "link", "set", "lo", "up", NULL},
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (run(cmds[i]) != 0) {
			fprintf(stderr, "test_dpdk: '%s %s %s %s %s ...' failed\n", cmds[i][0],
				cmds[i][1], cmds[i][2], cmds[i][3], cmds[i][4]);
			return -1;
		}
		if (i == 1)
			ns_made = 1;
	}
	return 0;
}

static int ns_fd(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* ---- ports made of rte_rings ---- */

struct ring_pair {
	struct rte_ring *r1, *r2;
	uint16_t pa, pb; /* pa receives r1 and sends r2; pb the other way */
};

static void ring_pair_make(struct ring_pair *rp)
{
	char n1[32], n2[32], na[32], nb[32];
	unsigned u = uniq++;
	int a, b;

	snprintf(n1, sizeof(n1), "slt_r1_%u", u);
	snprintf(n2, sizeof(n2), "slt_r2_%u", u);
	snprintf(na, sizeof(na), "pa%u", u);
	snprintf(nb, sizeof(nb), "pb%u", u);
	rp->r1 = rte_ring_create(n1, 4096, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	rp->r2 = rte_ring_create(n2, 4096, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	assert_non_null(rp->r1);
	assert_non_null(rp->r2);
	a = rte_eth_from_rings(na, &rp->r1, 1, &rp->r2, 1, rte_socket_id());
	b = rte_eth_from_rings(nb, &rp->r2, 1, &rp->r1, 1, rte_socket_id());
	assert_true(a >= 0 && b >= 0);
	rp->pa = (uint16_t)a;
	rp->pb = (uint16_t)b;
}

/* After the transports are gone: free what is left in the rings, then them. */
static void ring_pair_free(struct ring_pair *rp)
{
	struct rte_ring *r[2] = {rp->r1, rp->r2};

	for (int i = 0; i < 2; i++) {
		void *m;

		for (int k = 0; k < 8192 && rte_ring_dequeue(r[i], &m) == 0; k++)
			rte_pktmbuf_free(m);
		rte_ring_free(r[i]);
	}
}

static struct sl_transport_config base_config(uint16_t port, uint32_t self_id, uint32_t self_ip,
					      uint16_t self_port)
{
	struct sl_transport_config c;

	memset(&c, 0, sizeof(c));
	c.self_id = self_id;
	c.self.ip = self_ip;
	c.self.port = self_port;
	c.mtu = 1500;
	c.port_id = port;
	c.mbufs = 4095;
	return c;
}

static void add_peer(struct sl_transport_config *c, uint32_t id, const struct sl_endpoint *ep)
{
	c->peers[c->n_peers].node_id = id;
	c->peers[c->n_peers].ep = *ep;
	c->n_peers++;
}

static struct sl_transport *create(const struct sl_transport_config *c,
				   const struct sl_dpdk_opts *o)
{
	struct sl_transport *t = NULL;
	int rc = sl_dpdk_transport_create_opts(&t, c, o);

	if (rc < 0)
		fprintf(stderr, "create: %s\n", sl_err_msg());
	assert_int_equal(rc, 0);
	assert_non_null(t);
	return t;
}

/* ---- receiving ---- */

struct rx_side {
	uint8_t origin; /* of the frames we expect */
	uint32_t from;	/* their sender's node id */
	uint32_t n;	/* expected count; seen[] is that long */
	uint8_t *seen;
	uint32_t got, bad, dup;
	uint64_t bytes;
};

static void rx_check(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	struct rx_side *s = arg;
	uint32_t seq;

	if (from != s->from || !check_frame(frame, len, s->origin, &seq) || seq >= s->n) {
		s->bad++;
		return;
	}
	if (s->seen[seq]) {
		s->dup++;
		return;
	}
	s->seen[seq] = 1;
	s->got++;
	s->bytes += len;
}

/* ---- setup: EAL from the first transport's eal_args ---- */

static int group_setup(void **state)
{
	struct sl_transport_config c;
	struct sl_endpoint self;
	char args[512];
	int rc;

	(void)state;
	/* The loopback port: net_ring_lo, the only device at EAL init: port 0. */
	snprintf(args, sizeof(args),
		 "--no-huge -m 512 --no-pci --file-prefix %s --log-level=*:error "
		 "--vdev=net_ring_lo",
		 prefix);
	c = base_config(0, 1, ip4(10, 77, 9, 1), 7001);
	c.eal_args = args;
	self = c.self;
	add_peer(&c, 7, &self); /* ourselves, as a peer */
	rc = sl_dpdk_transport_create(&lo_t, &c);
	if (rc < 0) {
		fprintf(stderr, "test_dpdk: first transport (EAL init): %s\n", sl_err_msg());
		return -1;
	}
	inj_pool = rte_pktmbuf_pool_create("slt_inject", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	return inj_pool ? 0 : -1;
}

/* ---- (0) the EAL-initialising transport, looped back ---- */

static void test_eal_and_loopback(void **state)
{
	static uint8_t buf[BURST][2048];
	struct sl_transport_stats st;
	struct sl_dpdk_info info;
	uint8_t seen[BURST] = {0};
	struct rx_side rx = {'L', 7, BURST, seen, 0, 0, 0, 0};
	uint16_t p;

	(void)state;
	assert_non_null(lo_t);
	assert_int_equal(sl_dpdk_info(lo_t, &info), 0);
	assert_string_equal(info.name, "net_ring_lo");
	assert_string_equal(info.driver, "net_ring");
	assert_int_equal(info.port_id, 0);
	assert_int_equal(sl_dpdk_port_by_name("net_ring_lo", &p), 0);
	assert_int_equal(p, 0);
	/* net_ring has no MAC: ours is made from the IP. */
	assert_int_equal(info.mac[0], 0x02);
	assert_int_equal(info.mac[2], 10);
	assert_int_equal(info.mac[5], 1);
	assert_false(info.zero_copy); /* net_ring would read our bytes after flush */
	/* A second EAL init only hot-plugs; the port is ours already. */
	assert_int_equal(sl_dpdk_eal_init("--no-huge --bogus-option"), 0);
	{
		struct sl_transport_config c = base_config(0, 1, ip4(10, 77, 9, 1), 7001);
		struct sl_transport *t2 = NULL;

		assert_int_equal(sl_dpdk_transport_create(&t2, &c), -EBUSY);
		c.port_id = 200;
		assert_int_equal(sl_dpdk_transport_create(&t2, &c), -ENODEV);
		assert_non_null(strstr(sl_err_msg(), "net_ring_lo"));
	}
	/* Peer 7 is us, but its MAC (ours, made up) was not in the config: we
	 * asked at create who has our IP, answered ourselves through the
	 * loop, and learned the answer. */
	for (int k = 0; k < 100 && info.arp_learned == 0; k++) {
		lo_t->ops->poll(lo_t, rx_check, &rx, 64);
		assert_int_equal(sl_dpdk_info(lo_t, &info), 0);
	}
	assert_int_equal(info.arp_learned, 1);
	assert_int_equal(info.arp_requests, 1);
	for (uint32_t i = 0; i < BURST; i++) {
		size_t len = size_of(i, 64, 1472);

		gen_frame(buf[i], len, 'L', i);
		assert_int_equal(lo_t->ops->send(lo_t, 7, buf[i], len), 0);
	}
	assert_int_equal(lo_t->ops->send(lo_t, 8, buf[0], 64), -ENOENT);
	assert_int_equal(lo_t->ops->send(lo_t, 7, buf[0], 1473), -EMSGSIZE);
	assert_int_equal(lo_t->ops->flush(lo_t), BURST);
	for (int k = 0; k < 100 && rx.got < BURST; k++)
		lo_t->ops->poll(lo_t, rx_check, &rx, 64);
	assert_int_equal(rx.got, BURST);
	assert_int_equal(rx.bad + rx.dup, 0);
	lo_t->ops->stats(lo_t, &st);
	assert_int_equal(st.tx_packets, BURST);
	assert_int_equal(st.rx_packets, BURST);
	assert_int_equal(st.tx_bytes, rx.bytes);
	assert_int_equal(st.rx_bytes, rx.bytes);
	assert_int_equal(st.rx_dropped + st.tx_dropped, 0);
	assert_int_equal(st.arp_replies, 1);
	lo_t->ops->destroy(lo_t);
	lo_t = NULL;
	/* Destroy removed the vdev; its name hot-plugs it again. */
	assert_int_not_equal(sl_dpdk_port_by_name("net_ring_lo", &p), 0);
	assert_int_equal(sl_dpdk_eal_init("--vdev=net_ring_lo"), 0);
	assert_int_equal(sl_dpdk_port_by_name("net_ring_lo", &p), 0);
	{
		struct sl_transport_config c = base_config(p, 1, ip4(10, 77, 9, 1), 7001);
		struct sl_transport *t2 = create(&c, NULL);

		t2->ops->destroy(t2);
	}
}

/* ---- (a) + (b) two transports over a ring pair ---- */

struct pair {
	struct ring_pair rp;
	struct sl_transport *a, *b;
	struct sl_endpoint ea, eb;
};

static void pair_make(struct pair *p, uint32_t mtu)
{
	struct sl_transport_config ca, cb;

	ring_pair_make(&p->rp);
	ca = base_config(p->rp.pa, 1, ip4(10, 77, 1, 1), 7001);
	cb = base_config(p->rp.pb, 2, ip4(10, 77, 1, 2), 7002);
	ca.mtu = cb.mtu = mtu;
	memcpy(ca.self.mac, "\x02\x00\x00\x00\x01\x01", 6);
	memcpy(cb.self.mac, "\x02\x00\x00\x00\x01\x02", 6);
	p->ea = ca.self;
	p->eb = cb.self;
	add_peer(&ca, 2, &p->eb);
	add_peer(&cb, 1, &p->ea);
	p->a = create(&ca, NULL);
	p->b = create(&cb, NULL);
}

static void pair_free(struct pair *p)
{
	p->a->ops->destroy(p->a);
	p->b->ops->destroy(p->b);
	ring_pair_free(&p->rp);
}

/* Send n frames of sizes [min, max] each way, interleaved in bursts, and
 * receive them all; check every byte. */
static void exchange(struct pair *p, uint32_t n, size_t min, size_t max)
{
	static uint8_t buf[2][BURST][FRAME_CAP];
	struct rx_side ra = {'B', 2, n, calloc(n, 1), 0, 0, 0, 0}; /* a receives b's */
	struct rx_side rb = {'A', 1, n, calloc(n, 1), 0, 0, 0, 0};
	struct sl_transport *t[2] = {p->a, p->b};
	uint32_t sent[2] = {0, 0}, to[2] = {2, 1};
	const uint8_t origin[2] = {'A', 'B'};
	uint64_t sent_bytes[2] = {0, 0};
	struct sl_transport_stats st, st0a, st0b;
	double deadline = now_s() + 120;

	assert_non_null(ra.seen);
	assert_non_null(rb.seen);
	p->a->ops->stats(p->a, &st0a);
	p->b->ops->stats(p->b, &st0b);
	for (long it = 0; it < 10000000 && (ra.got < n || rb.got < n); it++) {
		assert_true(now_s() < deadline);
		for (int s = 0; s < 2; s++) {
			uint32_t k = n - sent[s] < BURST ? n - sent[s] : BURST;

			/* The bytes stay untouched until flush() returns. */
			for (uint32_t j = 0; j < k; j++) {
				size_t len = size_of(sent[s] + j, min, max);

				gen_frame(buf[s][j], len, origin[s], sent[s] + j);
				assert_int_equal(t[s]->ops->send(t[s], to[s], buf[s][j], len), 0);
				sent_bytes[s] += len;
			}
			if (k)
				assert_int_equal(t[s]->ops->flush(t[s]), (int)k);
			sent[s] += k;
		}
		p->a->ops->poll(p->a, rx_check, &ra, 256);
		p->b->ops->poll(p->b, rx_check, &rb, 256);
	}
	assert_int_equal(ra.got, n);
	assert_int_equal(rb.got, n);
	assert_int_equal(ra.bad + ra.dup + rb.bad + rb.dup, 0);
	assert_int_equal(ra.bytes, sent_bytes[1]);
	assert_int_equal(rb.bytes, sent_bytes[0]);
	/* The counters moved by exactly that. */
	p->a->ops->stats(p->a, &st);
	assert_int_equal(st.tx_packets - st0a.tx_packets, n);
	assert_int_equal(st.rx_packets - st0a.rx_packets, n);
	assert_int_equal(st.tx_bytes - st0a.tx_bytes, sent_bytes[0]);
	assert_int_equal(st.rx_bytes - st0a.rx_bytes, sent_bytes[1]);
	assert_int_equal(st.tx_dropped + st.rx_dropped, 0);
	p->b->ops->stats(p->b, &st);
	assert_int_equal(st.tx_packets - st0b.tx_packets, n);
	assert_int_equal(st.rx_packets - st0b.rx_packets, n);
	assert_int_equal(st.tx_bytes - st0b.tx_bytes, sent_bytes[1]);
	assert_int_equal(st.rx_bytes - st0b.rx_bytes, sent_bytes[0]);
	assert_int_equal(st.tx_dropped + st.rx_dropped, 0);
	free(ra.seen);
	free(rb.seen);
}

static void rx_one_count(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	(void)from;
	(void)frame;
	(void)len;
	++*(int *)arg;
}

static int readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Doorbells: a receiver with nothing waiting gets its bell's fd and sleeps
 * on it; a send rings it (once, as the bell was armed), the poll delivers
 * the frame and empties the bell; a frame that arrives before the arming
 * is found by wait_fd itself (-EAGAIN) and delivered by the next poll; a
 * send to an awake receiver rings nothing. */
static void test_doorbell(void **state)
{
	struct sl_dpdk_doorbell bell_a, bell_b;
	struct pair p;
	uint8_t f[100];
	int got = 0;

	(void)state;
	pair_make(&p, 1500);
	assert_int_equal(p.b->ops->wait_fd(p.b), -EOPNOTSUPP); /* no bell yet */
	assert_int_equal(sl_dpdk_doorbell_init(&bell_a), 0);
	assert_int_equal(sl_dpdk_doorbell_init(&bell_b), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p.a, &bell_a, &bell_b), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p.b, &bell_b, &bell_a), 0);
	gen_frame(f, sizeof(f), 'A', 0);

	assert_int_equal(p.b->ops->wait_fd(p.b), bell_b.fd);
	assert_false(readable(bell_b.fd));
	assert_int_equal(p.a->ops->send(p.a, 2, f, sizeof(f)), 0);
	assert_int_equal(p.a->ops->flush(p.a), 1);
	assert_true(readable(bell_b.fd));
	assert_int_equal(p.b->ops->poll(p.b, rx_one_count, &got, 16), 1);
	assert_false(readable(bell_b.fd));

	/* Sent before the arming: wait_fd finds it, no sleep. */
	assert_int_equal(p.a->ops->send(p.a, 2, f, sizeof(f)), 0);
	assert_int_equal(p.a->ops->flush(p.a), 1);
	assert_false(readable(bell_b.fd));
	assert_int_equal(p.b->ops->wait_fd(p.b), -EAGAIN);
	assert_int_equal(p.b->ops->wait_fd(p.b), -EAGAIN); /* still held */
	assert_int_equal(p.b->ops->poll(p.b, rx_one_count, &got, 16), 1);
	assert_int_equal(got, 2);

	/* Awake (disarmed by that poll): no ring. */
	assert_int_equal(p.a->ops->send(p.a, 2, f, sizeof(f)), 0);
	assert_int_equal(p.a->ops->flush(p.a), 1);
	assert_false(readable(bell_b.fd));
	assert_int_equal(p.b->ops->poll(p.b, rx_one_count, &got, 16), 1);
	assert_int_equal(p.b->ops->wait_fd(p.b), bell_b.fd);
	assert_int_equal(p.b->ops->poll(p.b, rx_one_count, &got, 16), 0);
	assert_int_equal(got, 3);

	pair_free(&p);
	sl_dpdk_doorbell_close(&bell_a);
	sl_dpdk_doorbell_close(&bell_b);
	assert_int_equal(bell_a.fd, -1);
}

/* One bell for two links, as a node's mesh waits on it: a sender that rings
 * while the receiver is still arming its other link must not be hidden by
 * that second arming. Else the poll finds the bell armed, leaves the ring
 * unread, and the bell's fd stays readable: every later sleep would end at
 * once (the node spinning through ppoll, starving the others). */
static void test_doorbell_shared(void **state)
{
	struct sl_dpdk_doorbell bell_r, bell_s1, bell_s2;
	struct pair p1, p2;
	uint8_t f[100];
	int got = 0;

	(void)state;
	pair_make(&p1, 1500);
	pair_make(&p2, 1500);
	assert_int_equal(sl_dpdk_doorbell_init(&bell_r), 0);
	assert_int_equal(sl_dpdk_doorbell_init(&bell_s1), 0);
	assert_int_equal(sl_dpdk_doorbell_init(&bell_s2), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p1.a, &bell_s1, &bell_r), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p2.a, &bell_s2, &bell_r), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p1.b, &bell_r, &bell_s1), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p2.b, &bell_r, &bell_s2), 0);
	gen_frame(f, sizeof(f), 'A', 0);

	/* Link 1 armed; a frame on it rings before link 2 is looked at. */
	assert_int_equal(p1.b->ops->wait_fd(p1.b), bell_r.fd);
	assert_int_equal(p1.a->ops->send(p1.a, 2, f, sizeof(f)), 0);
	assert_int_equal(p1.a->ops->flush(p1.a), 1);
	assert_true(readable(bell_r.fd));
	assert_int_equal(p2.b->ops->wait_fd(p2.b), -EAGAIN); /* no sleep: a ring came */
	assert_int_equal(p1.b->ops->poll(p1.b, rx_one_count, &got, 16), 1);
	assert_int_equal(p2.b->ops->poll(p2.b, rx_one_count, &got, 16), 0);
	/* The ring was read: the next sleep lasts until a frame comes. */
	assert_int_equal(p1.b->ops->wait_fd(p1.b), bell_r.fd);
	assert_int_equal(p2.b->ops->wait_fd(p2.b), bell_r.fd);
	assert_false(readable(bell_r.fd));
	assert_int_equal(p2.a->ops->send(p2.a, 2, f, sizeof(f)), 0);
	assert_int_equal(p2.a->ops->flush(p2.a), 1);
	assert_true(readable(bell_r.fd));
	assert_int_equal(p1.b->ops->poll(p1.b, rx_one_count, &got, 16), 0);
	assert_int_equal(p2.b->ops->poll(p2.b, rx_one_count, &got, 16), 1);
	assert_false(readable(bell_r.fd));
	assert_int_equal(got, 2);

	pair_free(&p1);
	pair_free(&p2);
	sl_dpdk_doorbell_close(&bell_r);
	sl_dpdk_doorbell_close(&bell_s1);
	sl_dpdk_doorbell_close(&bell_s2);
}

/* Doorbells across threads, as the in-process cluster uses them: a receiver
 * that sleeps on its bell whenever it finds nothing, a sender that rings it
 * only when it finds it armed. A lost wake-up (a frame in the ring, the bell
 * not rung) leaves the receiver asleep until its ppoll times out while the
 * sender waits for it: counted, and the test fails. The sender pauses
 * between bursts now and then so that the receiver goes to sleep often. */
#define BELL_FRAMES  20000u
#define BELL_WINDOW  1024u /* frames in the ring at most (it holds 4096) */
#define BELL_WAIT_MS 1000

struct bell_rx {
	struct sl_transport *t;
	_Atomic uint32_t got;
	uint32_t next_seq, bad, sleeps, wakes, timeouts;
};

static void bell_rx_frame(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	struct bell_rx *r = arg;
	uint32_t seq = UINT32_MAX;

	(void)from;
	if (!check_frame(frame, len, 'B', &seq) || seq != r->next_seq)
		r->bad++;
	r->next_seq = seq + 1;
	atomic_fetch_add(&r->got, 1);
}

static void *bell_rx_main(void *arg)
{
	struct bell_rx *r = arg;
	double deadline = now_s() + 60;

	while (atomic_load(&r->got) < BELL_FRAMES && now_s() < deadline) {
		struct pollfd p = {.events = POLLIN};

		if (r->t->ops->poll(r->t, bell_rx_frame, r, 64) > 0)
			continue;
		p.fd = r->t->ops->wait_fd(r->t);
		if (p.fd == -EAGAIN)
			continue;
		r->sleeps++;
		if (poll(&p, 1, BELL_WAIT_MS) > 0)
			r->wakes++;
		else
			r->timeouts++;
	}
	return NULL;
}

static void test_doorbell_threads(void **state)
{
	struct sl_dpdk_doorbell bell_a, bell_b;
	struct bell_rx r = {0};
	struct pair p;
	pthread_t th;
	uint8_t f[600];
	uint32_t sent = 0, bursts = 0, rng = 12345;
	double deadline = now_s() + 60;

	(void)state;
	pair_make(&p, 1500);
	assert_int_equal(sl_dpdk_doorbell_init(&bell_a), 0);
	assert_int_equal(sl_dpdk_doorbell_init(&bell_b), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p.a, &bell_a, &bell_b), 0);
	assert_int_equal(sl_dpdk_set_doorbells(p.b, &bell_b, &bell_a), 0);
	r.t = p.b;
	assert_int_equal(pthread_create(&th, NULL, bell_rx_main, &r), 0);
	while (sent < BELL_FRAMES && now_s() < deadline) {
		uint32_t n = 1 + (rng >> 16) % 32;

		rng = rng * 1103515245u + 12345u;
		if (n > BELL_FRAMES - sent)
			n = BELL_FRAMES - sent;
		while (sent + n - atomic_load(&r.got) > BELL_WINDOW && now_s() < deadline)
			sched_yield();
		for (uint32_t i = 0; i < n; i++, sent++) {
			size_t len = size_of(sent, 64, sizeof(f));

			gen_frame(f, len, 'B', sent);
			assert_int_equal(p.a->ops->send(p.a, 2, f, len), 0);
		}
		assert_int_equal(p.a->ops->flush(p.a), (int)n);
		bursts++;
		/* Every eighth burst, wait for the receiver to catch up and
		 * (likely) fall asleep. */
		if ((rng >> 20) % 8 == 0)
			for (int k = 0; k < 200 && atomic_load(&r.got) < sent; k++)
				sched_yield();
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	if (r.timeouts || r.bad || r.got != BELL_FRAMES)
		fprintf(stderr,
			"doorbell threads: %u sent in %u bursts, %u received (%u bad), "
			"%u sleeps, %u woken, %u timed out\n",
			sent, bursts, atomic_load(&r.got), r.bad, r.sleeps, r.wakes, r.timeouts);
	assert_int_equal(sent, BELL_FRAMES);
	assert_int_equal(atomic_load(&r.got), BELL_FRAMES);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.timeouts, 0);
	/* It did sleep and was woken, and at most once per burst. */
	assert_true(r.wakes > 0);
	assert_true(r.wakes <= bursts);
	pair_free(&p);
	sl_dpdk_doorbell_close(&bell_a);
	sl_dpdk_doorbell_close(&bell_b);
}

static void test_ring_pair_10k(void **state)
{
	struct sl_dpdk_info ia, ib;
	struct pair p;

	(void)state;
	pair_make(&p, 9000);
	exchange(&p, 10000, 64, 8192);
	assert_int_equal(sl_dpdk_info(p.a, &ia), 0);
	assert_int_equal(sl_dpdk_info(p.b, &ib), 0);
	/* 2 KiB mbufs: frames past 2006 bytes went out as chains and were
	 * linearised on receipt. */
	assert_int_equal(ia.data_room, RTE_MBUF_DEFAULT_DATAROOM);
	assert_true(ia.rx_scatter && ia.tx_multi_seg);
	assert_true(ia.tx_chained > 0 && ib.tx_chained > 0);
	assert_true(ia.rx_chained > 0 && ib.rx_chained > 0);
	assert_int_equal(ia.tx_copied, 10000);
	assert_int_equal(ia.tx_zero_copy, 0);
	pair_free(&p);
}

static void test_jumbo(void **state)
{
	static uint8_t big[FRAME_CAP];
	struct sl_dpdk_info ia;
	struct pair p;

	(void)state;
	pair_make(&p, 9000);
	/* Around the one-mbuf boundary (2048 - 42) and up to the MTU. */
	exchange(&p, 200, 1990, 2030);
	exchange(&p, 300, 8900, 8972);
	assert_int_equal(sl_dpdk_info(p.a, &ia), 0);
	assert_int_equal(ia.mtu, 9000);
	assert_true(ia.rx_chained > 0);
	assert_int_equal(p.a->ops->send(p.a, 2, big, 8973), -EMSGSIZE);
	assert_non_null(strstr(sl_err_msg(), "MTU 9000"));
	pair_free(&p);

	/* MTU 1500: 1472 bytes fit one mbuf, 1473 are refused. */
	pair_make(&p, 1500);
	exchange(&p, 500, 1400, 1472);
	assert_int_equal(sl_dpdk_info(p.a, &ia), 0);
	assert_int_equal(ia.rx_chained + ia.tx_chained, 0);
	assert_int_equal(p.a->ops->send(p.a, 2, big, 1473), -EMSGSIZE);
	pair_free(&p);
}

/* ---- (c) + (d) a transport on a port whose other end is the test ---- */

struct raw {
	struct ring_pair rp; /* the transport drives pa: r1 is its RX, r2 its TX */
	struct sl_transport *t;
	struct sl_endpoint self;
};

static const uint8_t mac_t[6] = {0x02, 0x00, 0x00, 0x00, 0x02, 0x01};
static const uint8_t mac_x[6] = {0x02, 0x00, 0x00, 0x00, 0x02, 0x09};
static const uint8_t mac_y[6] = {0x02, 0x00, 0x00, 0x00, 0x02, 0x05};

static void raw_make(struct raw *r, uint32_t peer_ip, const uint8_t *peer_mac)
{
	struct sl_transport_config c;
	struct sl_endpoint pe = {{0}, 0, 7005};

	ring_pair_make(&r->rp);
	c = base_config(r->rp.pa, 1, ip4(10, 77, 2, 1), 7001);
	memcpy(c.self.mac, mac_t, 6);
	pe.ip = peer_ip;
	if (peer_mac)
		memcpy(pe.mac, peer_mac, 6);
	add_peer(&c, 5, &pe);
	r->self = c.self;
	r->t = create(&c, NULL);
}

static void raw_free(struct raw *r)
{
	r->t->ops->destroy(r->t);
	/* pb was never configured: release the port, then the rings. */
	rte_eth_dev_close(r->rp.pb);
	ring_pair_free(&r->rp);
}

/* Put a packet on the transport's RX ring, in `segs` mbufs. */
static void inject(struct raw *r, const uint8_t *pkt, size_t len, int segs)
{
	struct rte_mbuf *head = NULL;
	size_t per = (len + (size_t)segs - 1) / (size_t)segs, off = 0;

	for (int s = 0; s < segs; s++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(inj_pool);
		size_t n = len - off < per ? len - off : per;
		uint8_t *d;

		assert_non_null(m);
		d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)n);
		assert_true(d != NULL || n == 0);
		if (n)
			memcpy(d, pkt + off, n);
		off += n;
		if (head == NULL)
			head = m;
		else
			assert_int_equal(rte_pktmbuf_chain(head, m), 0);
	}
	assert_int_equal(rte_ring_enqueue(r->rp.r1, head), 0);
}

/* Take the next packet the transport sent; 0 when there is none. */
static size_t take(struct raw *r, uint8_t *buf, size_t cap)
{
	struct rte_mbuf *m;
	const void *d;
	void *v;
	size_t len;

	if (rte_ring_dequeue(r->rp.r2, &v) != 0)
		return 0;
	m = v;
	len = rte_pktmbuf_pkt_len(m);
	assert_true(len <= cap);
	d = rte_pktmbuf_read(m, 0, (uint32_t)len, buf);
	assert_non_null(d);
	if (d != buf)
		memcpy(buf, d, len);
	rte_pktmbuf_free(m);
	return len;
}

struct count_rx {
	uint32_t n, from;
	size_t len;
	uint8_t data[FRAME_CAP];
};

static void rx_count(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	struct count_rx *c = arg;

	c->n++;
	c->from = from;
	c->len = len;
	memcpy(c->data, frame, len < sizeof(c->data) ? len : sizeof(c->data));
}

static void build_arp(uint8_t *pkt, const uint8_t *dst_mac, uint16_t op, const uint8_t *smac,
		      uint32_t sip, const uint8_t *tmac, uint32_t tip)
{
	memset(pkt, 0, 60);
	memcpy(pkt, dst_mac, 6);
	memcpy(pkt + 6, smac, 6);
	pkt[12] = 0x08;
	pkt[13] = 0x06;
	pkt[15] = 1;
	pkt[16] = 0x08;
	pkt[18] = 6;
	pkt[19] = 4;
	pkt[21] = (uint8_t)op;
	memcpy(pkt + 22, smac, 6);
	memcpy(pkt + 28, &sip, 4);
	if (tmac)
		memcpy(pkt + 32, tmac, 6);
	memcpy(pkt + 38, &tip, 4);
}

static void test_arp(void **state)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t pkt[FRAME_CAP], want[60], frame[200];
	struct sl_transport_stats st;
	struct sl_dpdk_info info;
	struct count_rx rx = {0};
	struct sl_pkt sp;
	struct raw r;
	size_t len;

	(void)state;
	/* Peer 5 at 10.77.2.5 with no MAC in the config. */
	raw_make(&r, ip4(10, 77, 2, 5), NULL);

	/* At start the transport asked who has 10.77.2.5. */
	len = take(&r, pkt, sizeof(pkt));
	assert_int_equal(len, 60);
	build_arp(want, bcast, 1, mac_t, ip4(10, 77, 2, 1), NULL, ip4(10, 77, 2, 5));
	assert_memory_equal(pkt, want, 60);
	assert_int_equal(take(&r, pkt, sizeof(pkt)), 0);

	/* Sending to it now loses the frame (counted) and asks no more than
	 * once per retry interval. */
	memset(frame, 0x11, sizeof(frame));
	assert_int_equal(r.t->ops->send(r.t, 5, frame, 100), 0);
	assert_int_equal(r.t->ops->flush(r.t), 0);
	assert_int_equal(sl_dpdk_info(r.t, &info), 0);
	assert_int_equal(info.tx_unresolved, 1);
	assert_true(info.arp_requests >= 1 && info.arp_requests <= 2);

	/* Who has 10.77.2.1 (us)? Tell 10.77.2.9: answered, exactly. */
	while (take(&r, pkt, sizeof(pkt)))
		;
	build_arp(pkt, bcast, 1, mac_x, ip4(10, 77, 2, 9), NULL, ip4(10, 77, 2, 1));
	inject(&r, pkt, 60, 1);
	assert_int_equal(r.t->ops->poll(r.t, rx_count, &rx, 64), 0);
	len = take(&r, pkt, sizeof(pkt));
	assert_int_equal(len, 60);
	build_arp(want, mac_x, 2, mac_t, ip4(10, 77, 2, 1), mac_x, ip4(10, 77, 2, 9));
	assert_memory_equal(pkt, want, 60);
	r.t->ops->stats(r.t, &st);
	assert_int_equal(st.arp_replies, 1);

	/* A request for another address: no answer. Nor for a request that
	 * arrives padded oddly long, chained (still answered: it is ours). */
	build_arp(pkt, bcast, 1, mac_x, ip4(10, 77, 2, 9), NULL, ip4(10, 77, 2, 77));
	inject(&r, pkt, 60, 1);
	r.t->ops->poll(r.t, rx_count, &rx, 64);
	assert_int_equal(take(&r, pkt, sizeof(pkt)), 0);
	build_arp(pkt, bcast, 1, mac_x, ip4(10, 77, 2, 9), NULL, ip4(10, 77, 2, 1));
	inject(&r, pkt, 60, 3);
	r.t->ops->poll(r.t, rx_count, &rx, 64);
	assert_int_equal(take(&r, pkt, sizeof(pkt)), 60);
	r.t->ops->stats(r.t, &st);
	assert_int_equal(st.arp_replies, 2);
	assert_int_equal(rx.n, 0);

	/* 10.77.2.5 answers: learned; a frame to peer 5 now goes out to it. */
	build_arp(pkt, mac_t, 2, mac_y, ip4(10, 77, 2, 5), mac_t, ip4(10, 77, 2, 1));
	inject(&r, pkt, 60, 1);
	r.t->ops->poll(r.t, rx_count, &rx, 64);
	assert_int_equal(sl_dpdk_info(r.t, &info), 0);
	assert_int_equal(info.arp_learned, 1);
	gen_frame(frame, sizeof(frame), 'T', 1);
	assert_int_equal(r.t->ops->send(r.t, 5, frame, sizeof(frame)), 0);
	assert_int_equal(r.t->ops->flush(r.t), 1);
	len = take(&r, pkt, sizeof(pkt));
	assert_int_equal(len, SL_ENCAP_HDR + sizeof(frame));
	assert_int_equal(sl_encap_parse(pkt, len, 0, &sp), 0);
	assert_int_equal(sp.kind, SL_PKT_UDP);
	assert_memory_equal(sp.dst.mac, mac_y, 6);
	assert_memory_equal(sp.src.mac, mac_t, 6);
	assert_int_equal(sp.dst.ip, ip4(10, 77, 2, 5));
	assert_int_equal(sp.dst.port, 7005);
	assert_int_equal(sp.src.port, 7001);
	assert_int_equal(sp.payload_len, sizeof(frame));
	assert_memory_equal(sp.payload, frame, sizeof(frame));
	raw_free(&r);

	/* A peer with a MAC in the config is never asked for nor relearned. */
	raw_make(&r, ip4(10, 77, 2, 5), mac_y);
	assert_int_equal(take(&r, pkt, sizeof(pkt)), 0);
	build_arp(pkt, mac_t, 2, mac_x, ip4(10, 77, 2, 5), mac_t, ip4(10, 77, 2, 1));
	inject(&r, pkt, 60, 1);
	r.t->ops->poll(r.t, rx_count, &rx, 64);
	assert_int_equal(sl_dpdk_info(r.t, &info), 0);
	assert_int_equal(info.arp_learned + info.arp_requests, 0);
	raw_free(&r);
}

/* A UDP packet from 10.77.2.5:7005 to the raw transport, checksums right. */
static size_t good_udp(uint8_t *pkt, const struct raw *r, const uint8_t *payload, size_t n)
{
	struct sl_endpoint src = {{0}, ip4(10, 77, 2, 5), 7005};

	memcpy(src.mac, mac_y, 6);
	memcpy(pkt + SL_ENCAP_HDR, payload, n);
	assert_int_equal(
	    sl_encap_write(pkt, SL_ENCAP_HDR + n, &src, &r->self, 9, n, SL_CSUM_SOFTWARE),
	    SL_ENCAP_HDR);
	return SL_ENCAP_HDR + n;
}

static void fix_ip_csum(uint8_t *pkt)
{
	uint16_t s;

	pkt[24] = pkt[25] = 0;
	s = (uint16_t)~sl_inet_csum(pkt + 14, 20, 0);
	memcpy(pkt + 24, &s, 2);
}

static void test_malformed_dropped(void **state)
{
	uint8_t payload[600], pkt[FRAME_CAP], bad[FRAME_CAP];
	struct sl_transport_stats st;
	struct sl_dpdk_info info;
	struct count_rx rx = {0};
	struct raw r;
	size_t len;
	uint32_t dropped = 0;

	(void)state;
	raw_make(&r, ip4(10, 77, 2, 5), mac_y);
	gen_frame(payload, sizeof(payload), 'M', 3);
	len = good_udp(pkt, &r, payload, sizeof(payload));

	/* Bad IPv4 header checksum. */
	memcpy(bad, pkt, len);
	bad[24] ^= 0x10;
	inject(&r, bad, len, 1);
	dropped++;
	/* Truncated: the last 100 bytes never arrived (in one mbuf, in three). */
	inject(&r, pkt, len - 100, 1);
	inject(&r, pkt, len - 100, 3);
	dropped += 2;
	/* Truncated inside the UDP header. */
	inject(&r, pkt, SL_ETH_HDR + SL_IPV4_HDR + 4, 1);
	dropped++;
	/* UDP length says less than the IP payload. */
	memcpy(bad, pkt, len);
	bad[38] = (uint8_t)((len - 34 - 1) >> 8);
	bad[39] = (uint8_t)(len - 34 - 1);
	inject(&r, bad, len, 1);
	dropped++;
	/* A payload byte changed: the UDP checksum disagrees. */
	memcpy(bad, pkt, len);
	bad[SL_ENCAP_HDR + 300] ^= 0x80;
	inject(&r, bad, len, 2);
	dropped++;
	/* A fragment (MF set), checksum made right. */
	memcpy(bad, pkt, len);
	bad[20] |= 0x20;
	fix_ip_csum(bad);
	inject(&r, bad, len, 1);
	dropped++;
	/* A runt. */
	inject(&r, pkt, 10, 1);
	dropped++;
	/* Not ours: another port, another IP, another MAC, IPv6, TCP. */
	memcpy(bad, pkt, len);
	bad[37] ^= 1; /* destination port: fix the UDP checksum by zeroing it */
	bad[40] = bad[41] = 0;
	inject(&r, bad, len, 1);
	memcpy(bad, pkt, len);
	bad[33] ^= 1; /* destination IP */
	bad[40] = bad[41] = 0;
	fix_ip_csum(bad);
	inject(&r, bad, len, 1);
	memcpy(bad, pkt, len);
	bad[5] ^= 1; /* destination MAC */
	inject(&r, bad, len, 1);
	memcpy(bad, pkt, len);
	bad[12] = 0x86;
	bad[13] = 0xdd;
	inject(&r, bad, len, 1);
	memcpy(bad, pkt, len);
	bad[23] = 6;
	fix_ip_csum(bad);
	inject(&r, bad, len, 1);
	dropped += 5;

	for (int k = 0; k < 10; k++)
		assert_int_equal(r.t->ops->poll(r.t, rx_count, &rx, 64), 0);
	assert_int_equal(rx.n, 0);
	r.t->ops->stats(r.t, &st);
	assert_int_equal(st.rx_dropped, dropped);
	assert_int_equal(st.rx_packets, 0);
	assert_int_equal(sl_dpdk_info(r.t, &info), 0);
	assert_int_equal(info.rx_malformed, 8);
	assert_int_equal(info.rx_not_ours, 5);

	/* The good one, whole and chained: delivered, from peer 5; from an
	 * address no peer has: delivered with from = 0. */
	inject(&r, pkt, len, 1);
	inject(&r, pkt, len, 4);
	for (int k = 0; k < 10 && rx.n < 2; k++)
		r.t->ops->poll(r.t, rx_count, &rx, 64);
	assert_int_equal(rx.n, 2);
	assert_int_equal(rx.from, 5);
	assert_int_equal(rx.len, sizeof(payload));
	assert_memory_equal(rx.data, payload, sizeof(payload));
	memcpy(bad, pkt, len);
	bad[29] ^= 1; /* source IP: 10.77.2.4 */
	bad[40] = bad[41] = 0;
	fix_ip_csum(bad);
	inject(&r, bad, len, 1);
	for (int k = 0; k < 10 && rx.n < 3; k++)
		r.t->ops->poll(r.t, rx_count, &rx, 64);
	assert_int_equal(rx.n, 3);
	assert_int_equal(rx.from, 0);
	assert_int_equal(sl_dpdk_info(r.t, &info), 0);
	assert_int_equal(info.rx_unknown, 1);
	r.t->ops->stats(r.t, &st);
	assert_int_equal(st.rx_dropped, dropped);
	raw_free(&r);
}

/* ---- memif: a server and a client port in one process ---- */

static void wait_links(struct sl_transport *a, struct sl_transport *b)
{
	struct sl_dpdk_info ia, ib;
	struct count_rx rx = {0};
	double deadline = now_s() + 10;

	do {
		/* The connection is made by EAL's interrupt thread. */
		a->ops->poll(a, rx_count, &rx, 64);
		b->ops->poll(b, rx_count, &rx, 64);
		assert_int_equal(sl_dpdk_info(a, &ia), 0);
		assert_int_equal(sl_dpdk_info(b, &ib), 0);
		if (ia.link_up && ib.link_up)
			return;
		usleep(1000);
	} while (now_s() < deadline);
	fail_msg("memif link did not come up (%d, %d)", ia.link_up, ib.link_up);
}

static void test_memif_pair(void **state)
{
	const char *tmp = getenv("SHIPLOG_TEST_TMP");
	char dir[256], args[768];
	struct sl_transport_config ca, cb;
	struct sl_dpdk_info ia, ib;
	struct pair p;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/sldpdk-memif-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
	mkdir(tmp && *tmp ? tmp : "/tmp", 0755);
	assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
	snprintf(args, sizeof(args),
		 "--vdev=net_memif5,role=server,socket=%s/m.sock,id=0 "
		 "--vdev=net_memif6,role=client,socket=%s/m.sock,id=0",
		 dir, dir);
	if (sl_dpdk_eal_init(args) < 0)
		fail_msg("memif hot-plug: %s", sl_err_msg());
	memset(&p, 0, sizeof(p));
	assert_int_equal(sl_dpdk_port_by_name("net_memif5", &p.rp.pa), 0);
	assert_int_equal(sl_dpdk_port_by_name("net_memif6", &p.rp.pb), 0);
	ca = base_config(p.rp.pa, 1, ip4(10, 77, 4, 1), 7001);
	cb = base_config(p.rp.pb, 2, ip4(10, 77, 4, 2), 7002);
	/* memif reports 1518-byte frames at most: MTU 9000 is refused, with
	 * why, and the device stays for the next try. */
	{
		struct sl_transport *t = NULL;

		ca.mtu = 9000;
		assert_int_equal(sl_dpdk_transport_create(&t, &ca), -EINVAL);
		assert_non_null(strstr(sl_err_msg(), "rte_eth_dev_configure"));
		assert_non_null(strstr(sl_err_msg(), "frames up to 1518"));
		ca.mtu = 1500;
	}
	p.ea = ca.self;
	p.eb = cb.self;
	memcpy(p.ea.mac, "\x02\x00\x00\x00\x04\x01", 6);
	memcpy(p.eb.mac, "\x02\x00\x00\x00\x04\x02", 6);
	ca.self = p.ea;
	cb.self = p.eb;
	add_peer(&ca, 2, &p.eb);
	add_peer(&cb, 1, &p.ea);
	p.a = create(&ca, NULL);
	p.b = create(&cb, NULL);
	wait_links(p.a, p.b);
	exchange(&p, 10000, 64, 1472);
	assert_int_equal(sl_dpdk_info(p.a, &ia), 0);
	assert_int_equal(sl_dpdk_info(p.b, &ib), 0);
	assert_string_equal(ia.driver, "net_memif");
	/* memif copies in rte_eth_tx_burst: frames of 1 KiB and up went out
	 * zero-copy, and the driver had let go of them by flush's end. */
	assert_true(ia.zero_copy && ib.zero_copy);
	assert_true(ia.tx_zero_copy > 0 && ia.tx_copied > 0);
	assert_int_equal(ia.tx_zero_copy + ia.tx_copied, 10000);
	assert_int_equal(ia.zc_stalls + ib.zc_stalls, 0);
	p.a->ops->destroy(p.a);
	p.b->ops->destroy(p.b);
	{
		char path[300];

		snprintf(path, sizeof(path), "%s/m.sock", dir);
		unlink(path);
		rmdir(dir);
	}
}

/* ---- (e) interop with the kernel: af_packet on veth, and net_tap ---- */

#define K_PORT	  7002
#define D_PORT	  7001
#define K_PROBE	  0xffffffffu
#define INTEROP_N 400
#define K_TIMEOUT 30

/* One way to reach a kernel UDP socket from a DPDK port. */
struct link {
	const char *what;
	const char *dpdk_ns; /* where the DPDK device is made */
	const char *vdev;    /* its devargs */
	const char *k_ns;    /* where the kernel socket lives */
	const char *k_if;    /* and its interface */
	uint32_t k_ip, d_ip; /* the kernel's and the DPDK side's addresses */
	const char *k_cidr;  /* the kernel's, to configure on k_if after create ("" if done) */
	int veth;	     /* turn the kernel's TX checksum offload off (see kernel_peer) */
};

/* The kernel side, in a child process: a plain UDP socket. It probes until
 * the parent says go, sends INTEROP_N frames, then receives the parent's
 * INTEROP_N frames, checks each and echoes it back. Exit 0 when every frame
 * arrived intact. */
static int kernel_peer(const struct link *l, int nsfd, int go_fd)
{
	struct sockaddr_in me = {0}, dpdk = {0}, from;
	static uint8_t buf[FRAME_CAP];
	static uint8_t seen[INTEROP_N];
	struct timeval tv = {0, 200000};
	struct ethtool_value ev = {ETHTOOL_STXCSUM, 0};
	struct ifreq ifr;
	int s, rcvbuf = 4 << 20, got = 0, go = 0;
	double deadline;
	cpu_set_t all;

	/* EAL pinned the parent to one CPU; the kernel side may use any. */
	CPU_ZERO(&all);
	for (int i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &all);
	sched_setaffinity(0, sizeof(all), &all);
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return 10;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return 11;
	/* veth hands packets to its peer with the UDP checksum left for
	 * hardware (CHECKSUM_PARTIAL); af_packet then shows DPDK a packet
	 * whose checksum is only the pseudo-header sum. A NIC computes it: so
	 * does the kernel when the offload is off. */
	if (l->veth) {
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", l->k_if);
		ifr.ifr_data = (char *)&ev;
		if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
			return 12;
	}
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	me.sin_family = AF_INET;
	me.sin_port = htons(K_PORT);
	me.sin_addr.s_addr = l->k_ip;
	if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0)
		return 13;
	dpdk.sin_family = AF_INET;
	dpdk.sin_port = htons(D_PORT);
	dpdk.sin_addr.s_addr = l->d_ip;

	/* Probe (this also makes the kernel ARP for the DPDK side). */
	deadline = now_s() + K_TIMEOUT;
	while (!go && now_s() < deadline) {
		struct pollfd pf = {go_fd, POLLIN, 0};
		uint8_t probe[64];

		gen_frame(probe, sizeof(probe), 'K', K_PROBE);
		sendto(s, probe, sizeof(probe), 0, (struct sockaddr *)&dpdk, sizeof(dpdk));
		if (poll(&pf, 1, 50) == 1)
			go = 1;
	}
	if (!go)
		return 14;
	for (uint32_t i = 0; i < INTEROP_N; i++) {
		size_t len = size_of(i, 64, 1472);

		gen_frame(buf, len, 'K', i);
		if (sendto(s, buf, len, 0, (struct sockaddr *)&dpdk, sizeof(dpdk)) != (ssize_t)len)
			return 15;
		if (i % 64 == 63)
			usleep(1000); /* let the DPDK side keep up */
	}
	deadline = now_s() + K_TIMEOUT;
	while (got < INTEROP_N && now_s() < deadline) {
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		uint32_t seq;

		if (n < 0)
			continue;
		if (from.sin_addr.s_addr != dpdk.sin_addr.s_addr || from.sin_port != dpdk.sin_port)
			return 16;
		if (!check_frame(buf, (size_t)n, 'D', &seq) || seq >= INTEROP_N)
			return 17;
		if (!seen[seq]) {
			seen[seq] = 1;
			got++;
		}
		sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&dpdk, sizeof(dpdk));
	}
	close(s);
	return got == INTEROP_N ? 0 : 18;
}

struct interop_rx {
	struct rx_side k;    /* frames the kernel sent */
	struct rx_side echo; /* ours, echoed */
	int probes;
};

static void rx_interop(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	struct interop_rx *x = arg;

	if (len >= 5 && frame[0] == 'K' && rd32(frame + 1) == K_PROBE) {
		x->probes++;
		return;
	}
	if (len >= 1 && frame[0] == 'D')
		rx_check(&x->echo, from, frame, len);
	else
		rx_check(&x->k, from, frame, len);
}

/* Make the device in its namespace (the drivers open sockets and set the
 * MTU by interface name there) and the transport on it. */
static struct sl_transport *interop_transport(const struct link *l, const struct sl_dpdk_opts *o)
{
	char name[64];
	struct sl_transport_config c;
	struct sl_endpoint kep = {{0}, 0, K_PORT};
	struct sl_transport *t;
	uint16_t port;
	int fd = ns_fd(l->dpdk_ns);
	const char *comma = strchr(l->vdev, ',');
	char args[160];

	assert_true(fd >= 0);
	assert_int_equal(setns(fd, CLONE_NEWNET), 0);
	close(fd);
	snprintf(args, sizeof(args), "--vdev=%s", l->vdev);
	if (sl_dpdk_eal_init(args) < 0)
		fprintf(stderr, "hot-plug: %s\n", sl_err_msg());
	snprintf(name, sizeof(name), "%.*s", (int)(comma - l->vdev), l->vdev);
	assert_int_equal(sl_dpdk_port_by_name(name, &port), 0);
	c = base_config(port, 1, l->d_ip, D_PORT);
	kep.ip = l->k_ip; /* its MAC: learned from ARP */
	add_peer(&c, 2, &kep);
	t = create(&c, o);
	assert_int_equal(setns(home_ns, CLONE_NEWNET), 0);
	if (l->k_cidr[0]) {
		const char *addr[] = {"ip",	 "-n",	l->k_ns, "addr", "add",
				      l->k_cidr, "dev", l->k_if, NULL};
		const char *up[] = {"ip", "-n", l->k_ns, "link", "set", l->k_if, "up", NULL};

		assert_int_equal(run(addr), 0);
		assert_int_equal(run(up), 0);
	}
	/* If our ARP request at create taught the kernel our MAC, make it
	 * forget: the kernel has to ask, and we have to answer. */
	{
		const char *flush[] = {"ip", "-n", l->k_ns, "neigh", "flush", "dev", l->k_if, NULL};

		assert_int_equal(run(flush), 0);
	}
	return t;
}

enum zc_expect { ZC_NONE, ZC_ALL, ZC_SOME };

static void interop_round(const struct link *l, const struct sl_dpdk_opts *o, enum zc_expect zc,
			  int offload)
{
	static uint8_t buf[BURST][FRAME_CAP];
	uint8_t seen_k[INTEROP_N] = {0}, seen_e[INTEROP_N] = {0};
	struct interop_rx x = {
	    {'K', 2, INTEROP_N, seen_k, 0, 0, 0, 0}, {'D', 2, INTEROP_N, seen_e, 0, 0, 0, 0}, 0};
	struct sl_transport_stats st;
	struct sl_dpdk_info info;
	struct sl_transport *t = interop_transport(l, o);
	uint32_t sent = 0;
	int go[2], fk, status = -1, told = 0;
	double deadline;
	pid_t child;

	fk = ns_fd(l->k_ns);
	assert_true(fk >= 0);
	assert_int_equal(pipe(go), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(go[1]);
		_exit(kernel_peer(l, fk, go[0]));
	}
	close(go[0]);
	deadline = now_s() + 2 * K_TIMEOUT;
	for (long it = 0; it < 100000000 && now_s() < deadline; it++) {
		int n = t->ops->poll(t, rx_interop, &x, 256);

		if (x.probes && !told) {
			assert_int_equal(write(go[1], "g", 1), 1);
			told = 1;
		}
		/* Ours go out once the kernel's have all arrived, in bursts
		 * whose bytes stay put until flush() returns. */
		if (x.k.got == INTEROP_N && sent < INTEROP_N) {
			uint32_t k = INTEROP_N - sent < BURST ? INTEROP_N - sent : BURST;

			for (uint32_t j = 0; j < k; j++) {
				size_t len = size_of(sent + j, 64, 1472);

				gen_frame(buf[j], len, 'D', sent + j);
				assert_int_equal(t->ops->send(t, 2, buf[j], len), 0);
			}
			assert_int_equal(t->ops->flush(t), (int)k);
			sent += k;
		}
		if (x.echo.got == INTEROP_N)
			break;
		if (n == 0)
			sched_yield(); /* the kernel side may share our CPU */
	}
	for (int k = 0; k < 2000; k++) {
		if (waitpid(child, &status, WNOHANG) == child)
			break;
		t->ops->poll(t, rx_interop, &x, 256);
		usleep(5000);
	}
	if (waitpid(child, &status, WNOHANG) == 0) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	close(go[1]);
	close(fk);
	t->ops->stats(t, &st);
	assert_int_equal(sl_dpdk_info(t, &info), 0);
	fprintf(stderr,
		"interop %s: kernel->dpdk %u/%d, dpdk->kernel->dpdk %u/%d, probes %d, arp "
		"replies %lu, learned %lu, checksums %s, zero-copy %lu, copied %lu, rx dropped "
		"%lu (not ours %lu), child %d\n",
		l->what, x.k.got, INTEROP_N, x.echo.got, INTEROP_N, x.probes,
		(unsigned long)st.arp_replies, (unsigned long)info.arp_learned,
		info.csum_offload ? "offloaded" : "software", (unsigned long)info.tx_zero_copy,
		(unsigned long)info.tx_copied, (unsigned long)st.rx_dropped,
		(unsigned long)info.rx_not_ours, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(x.k.got, INTEROP_N);
	assert_int_equal(x.k.bad + x.k.dup, 0);
	assert_int_equal(x.echo.got, INTEROP_N);
	assert_int_equal(x.echo.bad, 0);
	assert_true(st.arp_replies >= 1); /* the kernel asked for us */
	assert_int_equal(info.arp_learned, 1);
	assert_int_equal(info.rx_malformed + info.rx_bad_csum, 0);
	assert_int_equal(info.csum_offload, offload);
	assert_int_equal(info.rx_csum_offload, offload);
	assert_int_equal(info.zc_stalls, 0);
	if (zc == ZC_NONE)
		assert_int_equal(info.tx_zero_copy, 0);
	else if (zc == ZC_ALL)
		assert_int_equal(info.tx_zero_copy, INTEROP_N);
	else
		assert_true(info.tx_zero_copy > 0 && info.tx_copied > 0);
	t->ops->destroy(t);
}

static struct link veth_link(void)
{
	struct link l = {"af_packet/veth", ns_a, NULL, ns_b, if_b, 0, 0, "", 1};
	static char vdev[96];

	snprintf(vdev, sizeof(vdev), "net_af_packet0,iface=%s", if_a);
	l.vdev = vdev;
	l.k_ip = ip4(10, 77, 0, 2);
	l.d_ip = ip4(10, 77, 0, 1);
	return l;
}

/* Software checksums, both kernel directions, zero-copy and copied sends. */
static void test_kernel_interop_af_packet(void **state)
{
	struct sl_dpdk_opts zc = {0, 0, 64}; /* every frame zero-copy */
	struct sl_dpdk_opts copy = {1, 0, 0};
	struct link l = veth_link();

	(void)state;
	interop_round(&l, &zc, ZC_ALL, 0);
	/* destroy removed the vdev: the next round hot-plugs it again. */
	interop_round(&l, &copy, ZC_NONE, 0);
}

/* net_tap offers IPv4/UDP checksum offload: our pseudo-header sums and
 * ol_flags go to the driver, which completes them; the kernel checks. The
 * tap interface is made in namespace C, where the kernel socket lives. */
static void test_kernel_interop_tap_offload(void **state)
{
	struct link l = {"tap (offload)", ns_c, NULL, ns_c, if_c, 0, 0, "10.77.3.2/24", 0};
	struct sl_dpdk_opts sw = {0, 1, 0};
	static char vdev[96];

	(void)state;
	snprintf(vdev, sizeof(vdev), "net_tap0,iface=%s", if_c);
	l.vdev = vdev;
	l.k_ip = ip4(10, 77, 3, 2);
	l.d_ip = ip4(10, 77, 3, 1);
	interop_round(&l, NULL, ZC_SOME, 1);
	/* The same port with offload refused: software checksums. */
	l.what = "tap (software)";
	interop_round(&l, &sw, ZC_SOME, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eal_and_loopback),
	    cmocka_unit_test(test_ring_pair_10k),
	    cmocka_unit_test(test_doorbell),
	    cmocka_unit_test(test_doorbell_shared),
	    cmocka_unit_test(test_doorbell_threads),
	    cmocka_unit_test(test_jumbo),
	    cmocka_unit_test(test_arp),
	    cmocka_unit_test(test_malformed_dropped),
	    cmocka_unit_test(test_memif_pair),
	    cmocka_unit_test(test_kernel_interop_af_packet),
	    cmocka_unit_test(test_kernel_interop_tap_offload),
	};
	int pid = (int)getpid(), rc;

	/* Unbuffered, so a run that dies still shows how far it got. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (geteuid() != 0) {
		fprintf(stderr, "test_dpdk: needs root (network namespaces, af_packet)\n");
		return 1;
	}
	snprintf(prefix, sizeof(prefix), "sldpdk%d", pid);
	snprintf(ns_a, sizeof(ns_a), "sldpA%d", pid);
	snprintf(ns_b, sizeof(ns_b), "sldpB%d", pid);
	snprintf(if_a, sizeof(if_a), "sdA%d", pid);
	snprintf(if_b, sizeof(if_b), "sdB%d", pid);
	snprintf(ns_c, sizeof(ns_c), "sldpC%d", pid);
	snprintf(if_c, sizeof(if_c), "stC%d", pid);
	home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	sweep_stale();
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	if (home_ns < 0 || make_namespaces() < 0) {
		fprintf(stderr, "test_dpdk: cannot set up the network namespaces\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, group_setup, NULL);
	cleanup();
	return rc;
}
