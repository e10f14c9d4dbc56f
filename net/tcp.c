/* Kernel TCP transport, the baseline; see include/shiplog/tcp.h.
 *
 * Per peer: one outgoing connection and its TX buffer, a byte stream of
 * [u32 length][frame] records behind the hello; flush() write()s what the
 * kernel takes and keeps the rest for the next flush. Incoming connections
 * (accepted on the listening socket) each have an RX buffer that poll()
 * fills with read() and cuts into frames; an epoll set tells poll() which
 * sockets have anything. Sizes are fixed at create. */
#include "shiplog/tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/le.h"
#include "shiplog/log.h"

#define TCP_MAGIC	     0x43544c53u /* "SLTC" little-endian */
#define TCP_HELLO	     8u
#define TCP_LEN		     4u
#define TCP_TXQ_DEFAULT	     256u
#define TCP_TXQ_MAX	     16384u
#define TCP_RX_BUF	     (256u << 10)
#define TCP_IN_MAX	     (2 * SL_NODES_MAX) /* a restarted peer's old connection lingers */
#define TCP_RECONNECT_NS     10000000ull	/* at most one connect per peer per 10 ms */
#define TCP_WRITES_PER_FLUSH 16u		/* write() calls per peer per flush */
#define TCP_LISTEN_TAG	     UINT32_MAX		/* epoll data of the listening socket */

struct tcp_out {
	uint32_t id;
	struct sockaddr_in sa;
	int fd; /* -1: not connected */
	int up; /* the kernel took bytes: established */
	uint64_t next_try;
	uint8_t *buf;
	size_t head, tail, cap;
};

struct tcp_in {
	int fd; /* -1: free slot */
	uint32_t from;
	int hello;
	uint8_t *buf;
	size_t head, tail;
};

struct sl_tcp {
	struct sl_transport base;
	char name[40];
	uint32_t self_id;
	uint32_t frame_max, rx_batch;
	int lfd, epfd; /* epoll: which sockets have bytes (or connections) waiting */
	unsigned n_out;
	struct tcp_out out[SL_NODES_MAX];
	struct tcp_in in[TCP_IN_MAX];
	struct sl_transport_stats st;
	struct sl_tcp_info info;
};

static const struct sl_transport_ops tcp_ops;

static struct sl_tcp *tcp_of(struct sl_transport *t)
{
	return (struct sl_tcp *)t;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct tcp_out *out_of(struct sl_tcp *t, uint32_t id)
{
	for (unsigned i = 0; i < t->n_out; i++)
		if (t->out[i].id == id)
			return &t->out[i];
	return NULL;
}

/* ---- sending ---- */

/* Close and forget what was queued: its frames may be cut mid-way, and the
 * next connection starts a new stream with its own hello. */
static void out_drop(struct sl_tcp *t, struct tcp_out *o, int err)
{
	if (o->fd >= 0) {
		close(o->fd);
		t->info.disconnects++;
		if (o->up)
			t->info.connected--;
		if (err && err != ECONNREFUSED)
			sl_debug("%s: connection to node %u: %s", t->name, o->id, strerror(err));
	}
	o->fd = -1;
	o->up = 0;
	o->head = o->tail = 0;
}

static void out_hello(struct sl_tcp *t, struct tcp_out *o)
{
	sl_le32_put(o->buf, TCP_MAGIC);
	sl_le32_put(o->buf + 4, t->self_id);
	o->head = 0;
	o->tail = TCP_HELLO;
}

/* A non-blocking connect; write() says when it is done (EAGAIN while in
 * progress, the error once it failed). */
static void out_connect(struct sl_tcp *t, struct tcp_out *o, uint64_t now)
{
	int one = 1;

	if (o->fd >= 0 || now < o->next_try)
		return;
	o->next_try = now + TCP_RECONNECT_NS;
	t->info.connects++;
	o->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (o->fd < 0)
		return;
	setsockopt(o->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(o->fd, (struct sockaddr *)&o->sa, sizeof(o->sa)) < 0 && errno != EINPROGRESS) {
		out_drop(t, o, errno);
		return;
	}
	out_hello(t, o);
}

static int out_flush(struct sl_tcp *t, struct tcp_out *o)
{
	for (unsigned w = 0; w < TCP_WRITES_PER_FLUSH && o->fd >= 0 && o->head < o->tail; w++) {
		ssize_t n = send(o->fd, o->buf + o->head, o->tail - o->head, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break; /* connecting, or the socket buffer is full */
			out_drop(t, o, errno);
			return 0;
		}
		if (!o->up) {
			o->up = 1;
			t->info.connected++;
		}
		if ((size_t)n < o->tail - o->head)
			t->info.tx_partial++;
		o->head += (size_t)n;
	}
	if (o->head == o->tail)
		o->head = o->tail = 0;
	return 0;
}

static int tcp_flush(struct sl_transport *tr)
{
	struct sl_tcp *t = tcp_of(tr);
	uint64_t now = 0;

	for (unsigned i = 0; i < t->n_out; i++) {
		struct tcp_out *o = &t->out[i];

		if (o->fd < 0 && o->tail > 0) {
			if (!now)
				now = now_ns();
			out_connect(t, o, now);
		}
		out_flush(t, o);
	}
	return 0;
}

static int tcp_send(struct sl_transport *tr, uint32_t to, const uint8_t *frame, size_t len)
{
	struct sl_tcp *t = tcp_of(tr);
	struct tcp_out *o = out_of(t, to);

	if (!o)
		return sl_err_set(ENOENT, "%s: send to node %u: not a peer", t->name, to);
	if (len == 0 || len > t->frame_max)
		return sl_err_set(EMSGSIZE, "%s: send to node %u: %zu-byte frame; 1..%u fit",
				  t->name, to, len, t->frame_max);
	if (o->fd < 0) {
		out_connect(t, o, now_ns());
		if (o->fd < 0) {
			t->st.tx_dropped++; /* the peer is down: the protocol repairs */
			return 0;
		}
	}
	if (o->tail + TCP_LEN + len > o->cap) {
		out_flush(t, o);
		if (o->head > 0) {
			memmove(o->buf, o->buf + o->head, o->tail - o->head);
			o->tail -= o->head;
			o->head = 0;
		}
		if (o->fd < 0 || o->tail + TCP_LEN + len > o->cap) {
			t->st.tx_dropped++;
			return sl_err_set(ENOBUFS, "%s: send to node %u: %zu bytes queued", t->name,
					  to, o->tail);
		}
	}
	sl_le32_put(o->buf + o->tail, (uint32_t)len);
	memcpy(o->buf + o->tail + TCP_LEN, frame, len);
	o->tail += TCP_LEN + len;
	t->st.tx_packets++;
	t->st.tx_bytes += len;
	return 0;
}

/* ---- receiving ---- */

static void in_close(struct sl_tcp *t, struct tcp_in *in, int bad)
{
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, in->fd, NULL);
	close(in->fd);
	in->fd = -1;
	in->head = in->tail = 0;
	t->info.accepted--;
	t->info.disconnects++;
	if (bad) {
		t->info.rx_bad++;
		t->st.rx_dropped++;
	}
}

static void accept_new(struct sl_tcp *t)
{
	for (;;) {
		int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event ev = {.events = EPOLLIN};
		unsigned i = 0;

		if (fd < 0)
			return; /* EAGAIN: none waiting */
		while (i < TCP_IN_MAX && t->in[i].fd >= 0)
			i++;
		ev.data.u32 = i;
		if (i == TCP_IN_MAX || epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd); /* full: the peer reconnects later */
			t->st.rx_dropped++;
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		t->in[i] = (struct tcp_in){.fd = fd, .buf = t->in[i].buf};
		t->info.accepted++;
	}
}

/* The hello names a peer of ours; anything else closes the connection. */
static int in_hello(struct sl_tcp *t, struct tcp_in *in)
{
	uint32_t id;

	if (in->tail - in->head < TCP_HELLO)
		return 0;
	id = sl_le32_get(in->buf + in->head + 4);
	if (sl_le32_get(in->buf + in->head) != TCP_MAGIC || !out_of(t, id))
		return -1;
	in->from = id;
	in->hello = 1;
	in->head += TCP_HELLO;
	return 0;
}

/* Hand out complete frames, up to `room`. -1: a bad length. */
static int in_frames(struct sl_tcp *t, struct tcp_in *in, sl_rx_fn fn, void *arg, unsigned room)
{
	unsigned n = 0;

	if (!in->hello && in_hello(t, in) < 0)
		return -1;
	while (in->hello && n < room && in->tail - in->head >= TCP_LEN) {
		uint32_t len = sl_le32_get(in->buf + in->head);

		if (len == 0 || len > t->frame_max)
			return -1;
		if (in->tail - in->head < TCP_LEN + len)
			break;
		t->st.rx_packets++;
		t->st.rx_bytes += len;
		fn(arg, in->from, in->buf + in->head + TCP_LEN, len);
		in->head += TCP_LEN + len;
		n++;
	}
	if (in->head == in->tail)
		in->head = in->tail = 0;
	return (int)n;
}

/* Frames left from the last read first, then one read() for more. */
static int in_poll(struct sl_tcp *t, struct tcp_in *in, sl_rx_fn fn, void *arg, unsigned room)
{
	int n = in_frames(t, in, fn, arg, room), m;
	ssize_t got;

	if (n < 0 || (unsigned)n == room)
		return n;
	if (in->head > 0) {
		memmove(in->buf, in->buf + in->head, in->tail - in->head);
		in->tail -= in->head;
		in->head = 0;
	}
	got = read(in->fd, in->buf + in->tail, TCP_RX_BUF - in->tail);
	if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
		in_close(t, in, 0); /* the peer closed or reset: it reconnects */
		return n;
	}
	if (got > 0)
		in->tail += (size_t)got;
	m = in_frames(t, in, fn, arg, room - (unsigned)n);
	return m < 0 ? m : n + m;
}

static int poll_one(struct sl_tcp *t, struct tcp_in *in, sl_rx_fn fn, void *arg, unsigned room)
{
	int got = in_poll(t, in, fn, arg, room);

	if (got < 0) {
		in_close(t, in, 1);
		return 0;
	}
	return got;
}

/* Frames a small budget left in the buffers first, then one epoll_wait
 * (not waiting) says which sockets have more: one system call per idle
 * poll, as an event loop over plain sockets would make. */
static int tcp_poll(struct sl_transport *tr, sl_rx_fn fn, void *arg, unsigned budget)
{
	struct sl_tcp *t = tcp_of(tr);
	struct epoll_event ev[TCP_IN_MAX + 1];
	unsigned n = 0;
	int ready;

	if (budget == 0)
		budget = t->rx_batch;
	for (unsigned i = 0; i < TCP_IN_MAX && n < budget; i++)
		if (t->in[i].fd >= 0 && t->in[i].head < t->in[i].tail)
			n += (unsigned)poll_one(t, &t->in[i], fn, arg, budget - n);
	if (n == budget)
		return (int)n;
	ready = epoll_wait(t->epfd, ev, TCP_IN_MAX + 1, 0);
	for (int k = 0; k < ready && n < budget; k++) {
		if (ev[k].data.u32 == TCP_LISTEN_TAG)
			accept_new(t);
		else if (t->in[ev[k].data.u32].fd >= 0)
			n += (unsigned)poll_one(t, &t->in[ev[k].data.u32], fn, arg, budget - n);
	}
	return (int)n;
}

static void tcp_stats(const struct sl_transport *tr, struct sl_transport_stats *out)
{
	*out = ((const struct sl_tcp *)tr)->st;
}

/* ---- create / destroy ---- */

static void tcp_destroy(struct sl_transport *tr)
{
	struct sl_tcp *t = tcp_of(tr);

	for (unsigned i = 0; i < t->n_out; i++) {
		if (t->out[i].fd >= 0)
			close(t->out[i].fd);
		free(t->out[i].buf);
	}
	for (unsigned i = 0; i < TCP_IN_MAX; i++) {
		if (t->in[i].fd >= 0)
			close(t->in[i].fd);
		free(t->in[i].buf);
	}
	if (t->lfd >= 0)
		close(t->lfd);
	if (t->epfd >= 0)
		close(t->epfd);
	free(t);
}

static int tcp_listen(struct sl_tcp *t, const struct sl_transport_config *c)
{
	struct sockaddr_in sa = {
	    .sin_family = AF_INET, .sin_addr.s_addr = c->self.ip, .sin_port = htons(c->self.port)};
	socklen_t sl = sizeof(sa);
	struct epoll_event ev = {.events = EPOLLIN};
	int one = 1;

	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->lfd < 0)
		return sl_err_set(errno, "%s: socket: %s", t->name, strerror(errno));
	setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return sl_err_set(errno, "%s: bind: %s", t->name, strerror(errno));
	if (listen(t->lfd, TCP_IN_MAX) < 0)
		return sl_err_set(errno, "%s: listen: %s", t->name, strerror(errno));
	if (getsockname(t->lfd, (struct sockaddr *)&sa, &sl) == 0)
		t->info.port = ntohs(sa.sin_port);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	ev.data.u32 = TCP_LISTEN_TAG;
	if (t->epfd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &ev) < 0)
		return sl_err_set(errno, "%s: epoll: %s", t->name, strerror(errno));
	return 0;
}

static int tcp_validate(const struct sl_transport_config *c, const char *name)
{
	if (c->n_peers > SL_NODES_MAX)
		return sl_err_set(EINVAL, "%s: %u peers; at most %d", name, c->n_peers,
				  SL_NODES_MAX);
	if (c->mtu != 0 && (c->mtu < 576 || c->mtu > 65535))
		return sl_err_set(EINVAL, "%s: MTU %u; want 576..65535", name, c->mtu);
	if (c->tx_queue > TCP_TXQ_MAX)
		return sl_err_set(EINVAL, "%s: tx_queue %u; at most %u", name, c->tx_queue,
				  TCP_TXQ_MAX);
	for (uint32_t i = 0; i < c->n_peers; i++) {
		if (c->peers[i].node_id == 0 || c->peers[i].node_id == c->self_id)
			return sl_err_set(EINVAL, "%s: peer %u has node id %u", name, i,
					  c->peers[i].node_id);
		if (c->peers[i].ep.port == 0)
			return sl_err_set(EINVAL, "%s: peer node %u has port 0", name,
					  c->peers[i].node_id);
		for (uint32_t j = 0; j < i; j++)
			if (c->peers[j].node_id == c->peers[i].node_id)
				return sl_err_set(EINVAL, "%s: peers %u and %u share node id %u",
						  name, j, i, c->peers[i].node_id);
	}
	return 0;
}

static int tcp_alloc(struct sl_tcp *t, const struct sl_transport_config *c)
{
	size_t txq = c->tx_queue ? c->tx_queue : TCP_TXQ_DEFAULT;

	for (unsigned i = 0; i < TCP_IN_MAX; i++) {
		t->in[i].fd = -1;
		if (!(t->in[i].buf = malloc(TCP_RX_BUF)))
			return sl_err_set(ENOMEM, "%s: receive buffers", t->name);
	}
	t->n_out = c->n_peers;
	for (unsigned i = 0; i < c->n_peers; i++) {
		struct tcp_out *o = &t->out[i];

		o->id = c->peers[i].node_id;
		o->sa = (struct sockaddr_in){.sin_family = AF_INET,
					     .sin_addr.s_addr = c->peers[i].ep.ip,
					     .sin_port = htons(c->peers[i].ep.port)};
		o->fd = -1;
		o->cap = TCP_HELLO + txq * (TCP_LEN + t->frame_max);
		if (!(o->buf = malloc(o->cap)))
			return sl_err_set(ENOMEM, "%s: send buffers", t->name);
	}
	return 0;
}

int sl_tcp_transport_create(struct sl_transport **out, const struct sl_transport_config *c)
{
	struct sl_tcp *t = calloc(1, sizeof(*t));
	uint32_t mtu = c->mtu ? c->mtu : 1500;
	char ip[INET_ADDRSTRLEN] = "?";
	int rc;

	if (!t)
		return sl_err_set(ENOMEM, "tcp transport");
	t->base.ops = &tcp_ops;
	t->lfd = t->epfd = -1;
	for (unsigned i = 0; i < TCP_IN_MAX; i++)
		t->in[i].fd = -1;
	inet_ntop(AF_INET, &c->self.ip, ip, sizeof(ip));
	snprintf(t->name, sizeof(t->name), "tcp %s:%u", ip, c->self.port);
	t->self_id = c->self_id;
	/* The same frames as over UDP: one MTU's worth each. */
	t->frame_max = mtu - SL_FRAME_IP_UDP;
	if (t->frame_max > SL_FRAME_MAX)
		t->frame_max = SL_FRAME_MAX;
	t->rx_batch = c->rx_batch ? c->rx_batch : 64;
	if ((rc = tcp_validate(c, t->name)) || (rc = tcp_alloc(t, c)) || (rc = tcp_listen(t, c))) {
		tcp_destroy(&t->base);
		return rc;
	}
	*out = &t->base;
	return 0;
}

int sl_tcp_info(const struct sl_transport *tr, struct sl_tcp_info *out)
{
	if (!tr || tr->ops != &tcp_ops)
		return -EINVAL;
	*out = ((const struct sl_tcp *)tr)->info;
	return 0;
}

static const struct sl_transport_ops tcp_ops = {
    .name = "tcp",
    .send = tcp_send,
    .flush = tcp_flush,
    .poll = tcp_poll,
    .stats = tcp_stats,
    .destroy = tcp_destroy,
};
