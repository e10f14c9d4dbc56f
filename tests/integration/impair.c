/* impair: a learning Ethernet switch between network interfaces that
 * loses, duplicates and reorders the frames it forwards, with a seeded
 * PRNG. The integration tests run it in a namespace of their own, one veth
 * end per node plugged in, where `tc qdisc ... netem` would otherwise do
 * the damage: this kernel is built without sch_netem, and netem on the
 * nodes' side would not see DPDK's af_packet frames anyway (they bypass
 * the qdisc).
 *
 *   impair [--loss PCT] [--dup PCT] [--reorder PCT] [--delay-us N]
 *          [--seed N] [--seconds N] IF...
 *
 * Each frame to forward (to the port its destination MAC was learned on,
 * or flooded to every other port) is, per output: dropped with probability
 * loss; otherwise sent, and sent twice with probability dup; or, with
 * probability reorder, held back delay-us (default 500) and sent then,
 * behind frames that came after it. At most HELD_MAX frames are held (past
 * that they go at once). Runs until SIGTERM/SIGINT or --seconds (default
 * 600) pass, then prints its counters (frames in, forwarded, dropped,
 * duplicated, reordered) on stdout. Needs CAP_NET_RAW. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORTS_MAX  8
#define MACS_MAX   64
#define HELD_MAX   4096
#define HELD_BYTES 2048 /* larger frames are never held */
#define FRAME_MAX  9216
#define RX_BURST   64 /* frames read from one port per poll round */
#define SOCK_BUF   (4 << 20)

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

struct port {
	const char *name;
	int fd;
};

struct held {
	uint64_t due_ns;
	int port;
	uint16_t len;
	uint8_t bytes[HELD_BYTES];
};

struct sw {
	struct port ports[PORTS_MAX];
	int n_ports;
	struct {
		uint8_t mac[6];
		int port;
	} macs[MACS_MAX];
	int n_macs;
	struct held *held; /* ring */
	unsigned held_head, held_n;
	unsigned loss, dup, reorder; /* per 10,000 */
	uint64_t delay_ns, rng;
	uint64_t in, forwarded, dropped, duplicated, reordered, send_errors;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a fixed stream per seed. */
static unsigned chance(struct sw *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (unsigned)((s->rng * 0x2545f4914f6cdd1dull) >> 32) % 10000;
}

static int open_port(struct port *p)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
	int one = 1, buf = SOCK_BUF;

	sll.sll_ifindex = (int)if_nametoindex(p->name);
	if (sll.sll_ifindex == 0) {
		fprintf(stderr, "impair: no interface %s\n", p->name);
		return -1;
	}
	p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
	    setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
		fprintf(stderr, "impair: %s: %s\n", p->name, strerror(errno));
		return -1;
	}
	setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	return 0;
}

static void learn(struct sw *s, const uint8_t *src, int port)
{
	if (src[0] & 1)
		return; /* multicast sources are bogus */
	for (int i = 0; i < s->n_macs; i++)
		if (memcmp(s->macs[i].mac, src, 6) == 0) {
			s->macs[i].port = port;
			return;
		}
	if (s->n_macs < MACS_MAX) {
		memcpy(s->macs[s->n_macs].mac, src, 6);
		s->macs[s->n_macs++].port = port;
	}
}

static int lookup(const struct sw *s, const uint8_t *dst)
{
	if (dst[0] & 1)
		return -1;
	for (int i = 0; i < s->n_macs; i++)
		if (memcmp(s->macs[i].mac, dst, 6) == 0)
			return s->macs[i].port;
	return -1;
}

static void send_now(struct sw *s, int port, const uint8_t *f, size_t len)
{
	if (send(s->ports[port].fd, f, len, 0) != (ssize_t)len)
		s->send_errors++; /* a full socket buffer: a loss of its own */
	else
		s->forwarded++;
}

/* One output of one frame, through the faults. */
static void out(struct sw *s, int port, const uint8_t *f, size_t len, uint64_t now)
{
	unsigned r = chance(s);

	if (r < s->loss) {
		s->dropped++;
		return;
	}
	if (r < s->loss + s->reorder && len <= HELD_BYTES && s->held_n < HELD_MAX) {
		struct held *h = &s->held[(s->held_head + s->held_n++) % HELD_MAX];

		h->due_ns = now + s->delay_ns;
		h->port = port;
		h->len = (uint16_t)len;
		memcpy(h->bytes, f, len);
		s->reordered++;
		return;
	}
	send_now(s, port, f, len);
	if (r >= 10000 - s->dup) {
		send_now(s, port, f, len);
		s->duplicated++;
	}
}

static void forward(struct sw *s, int from, const uint8_t *f, size_t len, uint64_t now)
{
	int to;

	s->in++;
	if (len < 14)
		return;
	learn(s, f + 6, from);
	to = lookup(s, f);
	if (to == from)
		return;
	if (to >= 0) {
		out(s, to, f, len, now);
		return;
	}
	for (int p = 0; p < s->n_ports; p++)
		if (p != from)
			out(s, p, f, len, now);
}

static void release(struct sw *s, uint64_t now)
{
	while (s->held_n > 0) {
		struct held *h = &s->held[s->held_head];

		if (h->due_ns > now)
			break;
		send_now(s, h->port, h->bytes, h->len);
		s->held_head = (s->held_head + 1) % HELD_MAX;
		s->held_n--;
	}
}

static int run(struct sw *s, uint64_t end_ns)
{
	static uint8_t frame[FRAME_MAX];
	struct pollfd pfd[PORTS_MAX];

	for (int p = 0; p < s->n_ports; p++)
		pfd[p] = (struct pollfd){.fd = s->ports[p].fd, .events = POLLIN};
	while (!stop) {
		uint64_t now = now_ns();
		struct timespec wait = {0, 100 * 1000000}; /* stop is checked at least this often */

		if (now >= end_ns)
			break;
		release(s, now);
		if (s->held_n > 0) {
			uint64_t d = s->held[s->held_head].due_ns - now;

			if (d < (uint64_t)wait.tv_nsec)
				wait.tv_nsec = (long)d;
		}
		if (ppoll(pfd, (nfds_t)s->n_ports, &wait, NULL) < 0 && errno != EINTR) {
			perror("impair: ppoll");
			return 1;
		}
		now = now_ns();
		for (int p = 0; p < s->n_ports; p++) {
			for (int k = 0; k < RX_BURST && (pfd[p].revents & POLLIN); k++) {
				ssize_t n = recv(s->ports[p].fd, frame, sizeof(frame), MSG_TRUNC);

				if (n < 0)
					break;
				if ((size_t)n <= sizeof(frame))
					forward(s, p, frame, (size_t)n, now);
			}
		}
	}
	return 0;
}

static unsigned pct(const char *arg)
{
	double v = strtod(arg, NULL);

	if (v < 0 || v > 100) {
		fprintf(stderr, "impair: %s: want a percentage 0..100\n", arg);
		exit(2);
	}
	return (unsigned)(v * 100 + 0.5);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"loss", required_argument, 0, 'l'},
	    {"dup", required_argument, 0, 'd'},
	    {"reorder", required_argument, 0, 'r'},
	    {"delay-us", required_argument, 0, 'u'},
	    {"seed", required_argument, 0, 's'},
	    {"seconds", required_argument, 0, 't'},
	    {0, 0, 0, 0},
	};
	static struct sw s = {.delay_ns = 500000, .rng = 1};
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t seconds = 600;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			s.loss = pct(optarg);
			break;
		case 'd':
			s.dup = pct(optarg);
			break;
		case 'r':
			s.reorder = pct(optarg);
			break;
		case 'u':
			s.delay_ns = strtoull(optarg, NULL, 10) * 1000;
			break;
		case 's':
			s.rng = strtoull(optarg, NULL, 10) | 1;
			break;
		case 't':
			seconds = strtoull(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc || argc - optind > PORTS_MAX || s.loss + s.reorder + s.dup > 10000) {
		fprintf(stderr,
			"usage: impair [--loss PCT] [--dup PCT] [--reorder PCT] "
			"[--delay-us N] [--seed N] [--seconds N] IF... (1..%d)\n",
			PORTS_MAX);
		return 2;
	}
	s.held = calloc(HELD_MAX, sizeof(*s.held));
	if (!s.held)
		return 1;
	for (; optind < argc; optind++) {
		s.ports[s.n_ports].name = argv[optind];
		if (open_port(&s.ports[s.n_ports++]) < 0)
			return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = run(&s, now_ns() + seconds * 1000000000ull);
	printf("in %llu forwarded %llu dropped %llu duplicated %llu reordered %llu send_errors "
	       "%llu\n",
	       (unsigned long long)s.in, (unsigned long long)s.forwarded,
	       (unsigned long long)s.dropped, (unsigned long long)s.duplicated,
	       (unsigned long long)s.reordered, (unsigned long long)s.send_errors);
	for (int p = 0; p < s.n_ports; p++)
		close(s.ports[p].fd);
	free(s.held);
	return rc;
}
