/* Kernel UDP transport driven by io_uring; see include/shiplog/transport.h
 * and include/shiplog/udp.h.
 *
 * One UDP socket, one io_uring. Receive: one multishot recvmsg feeding from
 * a ring of provided buffers (kernel >= 6.0), re-armed when it ends (buffer
 * ring dry, CQ overflow); else a fixed set of single-shot recvmsgs, one per
 * buffer. With UDP_GRO the kernel may hand us several datagrams of one
 * sender glued together, each of the size its cmsg says (the last may be
 * shorter); we split them. Send: frames are copied into a TX arena in the
 * order send() saw them, so a run of equal-size frames to one peer is one
 * contiguous byte range and goes out as a single sendmsg with UDP_SEGMENT
 * (GSO); flush() submits every sendmsg and reaps every completion before it
 * returns, so the arena is free again after it.
 *
 * Sizes are fixed at create: the arena, queue, buffer count, ring sizes,
 * the stash of receive completions flush() meets. Nothing allocates after. */
#include "shiplog/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/log.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define UDP_BGID 1
/* UDP_MAX_SEGMENTS is 64 on every kernel since GSO appeared (4.18); newer
 * ones allow 128, but 64 is what all of them take. */
#define UDP_GSO_SEGS_MAX 64
/* A GSO sendmsg is one IPv4 datagram before segmentation: 64 KiB less the
 * IPv4 and UDP headers. */
#define UDP_GSO_BYTES_MAX (65535 - 20 - 8)
/* With GRO a receive holds up to 64 KiB; a smaller buffer would truncate
 * (and lose) the tail of a coalesced burst. */
#define UDP_RX_GRO_CAP 65535u
/* Without GRO one datagram is at most one frame; a longer one is truncated
 * (MSG_TRUNC) and dropped. */
#define UDP_RX_CAP ((uint32_t)SL_FRAME_MAX)
/* Receive buffer layout, the same in both modes: io_uring_recvmsg_out (16),
 * the sender's sockaddr_in (16), control space (32: one UDP_GRO cmsg is
 * 20), then the payload, 64-byte aligned. */
#define UDP_RX_NAME	 16u
#define UDP_RX_CTL	 32u
#define UDP_RX_HDR	 64u
#define UDP_RX_BUFS_MAX	 4096u
#define UDP_SINGLE_SLOTS 32u /* single-shot receives outstanding at most */
#define UDP_SOCKBUF	 (8u << 20)
#define UDP_TXQ_MAX	 16384u
/* A sendmsg that got EAGAIN/ENOBUFS (socket or device queue full) is
 * resubmitted at most this many times within the flush, then dropped. */
#define UDP_TX_RETRIES 2
/* Rounds of one flush: the first, the retries, one more for frames a failed
 * GSO sendmsg sends again one by one. */
#define UDP_TX_ROUNDS (UDP_TX_RETRIES + 3)
/* Our sendmsgs carry MSG_DONTWAIT, so they complete during submit; this is
 * only a bound for a kernel that does otherwise. */
#define UDP_REAP_NS  1000000000LL
#define UDP_CLOSE_NS 200000000LL

_Static_assert(sizeof(struct io_uring_recvmsg_out) + UDP_RX_NAME + UDP_RX_CTL == UDP_RX_HDR,
	       "receive header layout");

enum { UD_RX_MULTI = 1, UD_RX_SINGLE, UD_TX, UD_CANCEL };
#define UD(kind, idx) ((uint64_t)(kind) << 56 | (uint64_t)(idx))
#define UD_KIND(u)    ((unsigned)((u) >> 56))
#define UD_IDX(u)     ((uint32_t)(u))

struct udp_cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

enum { TXF_PENDING = 0, TXF_INFLIGHT, TXF_DONE };

struct udp_txf {
	uint32_t off, len;
	uint8_t peer;  /* index into peer_sa */
	uint8_t tries; /* resubmissions after EAGAIN/ENOBUFS */
	uint8_t state;
	uint8_t solo; /* a GSO sendmsg holding it failed: send it alone */
};

struct udp_op {
	struct msghdr msg;
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl;
	uint32_t first, n, bytes, seg;
};

enum { SLOT_IDLE = 0, SLOT_POSTED, SLOT_FULL };

struct udp_slot {
	struct msghdr msg;
	struct iovec iov;
	uint8_t state;
};

/* The receive being handed to the caller, frame by frame, across polls
 * when the budget runs out inside a GRO buffer. */
struct udp_pend {
	int active;
	uint32_t bid; /* buffer id (multishot) or slot */
	const uint8_t *p;
	uint32_t len, seg, off;
	uint32_t from;
};

struct sl_udp {
	struct sl_transport base;
	char name[40]; /* "udp 127.0.0.1:7001", the prefix of every message */
	uint32_t self_id;
	uint16_t port;
	uint32_t n_peers;
	uint32_t peer_id[SL_NODES_MAX];
	struct sockaddr_in peer_sa[SL_NODES_MAX];
	uint32_t frame_max, rx_batch;
	int fd;
	struct io_uring ring;
	bool ring_ok;
	bool multishot, gso, gro;

	/* receive */
	uint8_t *rx_mem;
	size_t rx_mem_size, rx_buf_size;
	uint32_t rx_cap;	   /* payload bytes per buffer */
	unsigned rx_bufs, rx_held; /* buffers; of which out of the kernel's hands */
	struct io_uring_buf_ring *br;
	size_t br_size;
	bool br_registered;
	unsigned br_added; /* buffers added since the last publish */
	struct msghdr rx_msg;
	bool rx_armed;
	bool rx_live;	  /* the first poll armed the receives */
	unsigned rx_arms; /* multishot arms since create (the probe's excluded) */
	uint32_t rx_gen;  /* which arm is current: user_data carries it */
	struct udp_slot *slots;
	unsigned n_slots;
	struct udp_cqe *stash; /* receive completions flush() reaped */
	unsigned stash_cap, stash_head, stash_n;
	struct udp_pend pend;
	int last_rx_err;

	/* send */
	uint8_t *tx_arena;
	size_t tx_arena_size, tx_used;
	struct udp_txf *txq;
	unsigned txq_cap, txq_n;
	struct udp_op *ops;
	unsigned n_ops, tx_inflight;
	int last_tx_err;
	unsigned fail_flushes;

	struct sl_transport_stats st;
	struct sl_udp_info info;
};

static const struct sl_transport_ops udp_ops;

static struct sl_udp *udp_of(struct sl_transport *t)
{
	return (struct sl_udp *)t;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static unsigned pow2_at_least(unsigned v)
{
	unsigned p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static void fmt_addr(char *out, size_t cap, uint32_t ip_be, uint16_t port)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr a = {.s_addr = ip_be};

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(out, cap, "%s:%u", ip, (unsigned)port);
}

/* ---- receive ---- */

static uint32_t peer_from(const struct sl_udp *u, const void *name, uint32_t namelen)
{
	struct sockaddr_in sa;

	if (namelen < sizeof(sa))
		return 0;
	memcpy(&sa, name, sizeof(sa));
	if (sa.sin_family != AF_INET)
		return 0;
	for (uint32_t i = 0; i < u->n_peers; i++)
		if (u->peer_sa[i].sin_addr.s_addr == sa.sin_addr.s_addr &&
		    u->peer_sa[i].sin_port == sa.sin_port)
			return u->peer_id[i];
	return 0;
}

/* The UDP_GRO segment size among the control messages, 0 when absent.
 * Walked by hand within `len`: the bytes came from the kernel, but a
 * truncated control area must not send us past the buffer. */
static uint32_t gro_size(const uint8_t *ctl, size_t len)
{
	size_t off = 0;
	uint32_t gso = 0;

	while (len - off >= sizeof(struct cmsghdr)) {
		struct cmsghdr ch;

		memcpy(&ch, ctl + off, sizeof(ch));
		if (ch.cmsg_len < sizeof(ch) || ch.cmsg_len > len - off)
			break;
		if (ch.cmsg_level == SOL_UDP && ch.cmsg_type == UDP_GRO &&
		    ch.cmsg_len >= CMSG_LEN(sizeof(int))) {
			int v;

			memcpy(&v, ctl + off + CMSG_LEN(0), sizeof(v));
			gso = v > 0 ? (uint32_t)v : 0;
		}
		if (CMSG_ALIGN(ch.cmsg_len) >= len - off)
			break;
		off += CMSG_ALIGN(ch.cmsg_len);
	}
	return gso;
}

static uint8_t *rx_buf(const struct sl_udp *u, uint32_t bid)
{
	return u->rx_mem + (size_t)bid * u->rx_buf_size;
}

/* Give a buffer back: to the buffer ring (visible to the kernel at the next
 * rx_publish), or mark the single-shot slot for re-posting. */
static void rx_release(struct sl_udp *u, uint32_t bid)
{
	u->rx_held--;
	if (u->multishot) {
		io_uring_buf_ring_add(u->br, rx_buf(u, bid), (unsigned)u->rx_buf_size,
				      (unsigned short)bid, io_uring_buf_ring_mask(u->rx_bufs),
				      (int)u->br_added);
		u->br_added++;
	} else {
		u->slots[bid].state = SLOT_IDLE;
	}
}

static void rx_publish(struct sl_udp *u)
{
	if (u->br_added > 0) {
		io_uring_buf_ring_advance(u->br, (int)u->br_added);
		u->br_added = 0;
	}
}

static void rx_drop(struct sl_udp *u, uint32_t bid)
{
	u->st.rx_dropped++;
	rx_release(u, bid);
}

static void rx_error(struct sl_udp *u, int res)
{
	u->info.rx_errors++;
	/* Log each new kind of error once, not every completion. */
	if (res != u->last_rx_err)
		sl_warn("%s: recvmsg: %s", u->name, strerror(-res));
	u->last_rx_err = res;
}

/* A received buffer: check it, find the sender and the GRO segment size,
 * and make it the pending receive. */
static void rx_start(struct sl_udp *u, uint32_t bid, const uint8_t *name, uint32_t namelen,
		     const uint8_t *ctl, size_t ctl_len, const uint8_t *payload, size_t len,
		     int msg_flags)
{
	struct udp_pend *pd = &u->pend;
	uint32_t seg = 0;

	/* MSG_TRUNC: the datagram was longer than the buffer, its tail is
	 * lost. MSG_CTRUNC with GRO: the segment size may be what was lost,
	 * and without it the frames cannot be told apart. */
	if ((msg_flags & MSG_TRUNC) || len == 0 || len > u->rx_cap ||
	    ((msg_flags & MSG_CTRUNC) && u->gro)) {
		rx_drop(u, bid);
		return;
	}
	if (u->gro)
		seg = gro_size(ctl, ctl_len);
	if (seg == 0 || seg >= len)
		seg = (uint32_t)len;
	else {
		u->info.gro_bufs++;
		u->info.gro_frames += (len + seg - 1) / seg;
	}
	pd->active = 1;
	pd->bid = bid;
	pd->p = payload;
	pd->len = (uint32_t)len;
	pd->seg = seg;
	pd->off = 0;
	pd->from = peer_from(u, name, namelen);
}

/* Hand frames of the pending receive to fn, at most `room`. */
static unsigned rx_drain(struct sl_udp *u, sl_rx_fn fn, void *arg, unsigned room)
{
	struct udp_pend *pd = &u->pend;
	unsigned n = 0;

	while (pd->off < pd->len && n < room) {
		uint32_t l = pd->len - pd->off < pd->seg ? pd->len - pd->off : pd->seg;
		const uint8_t *f = pd->p + pd->off;

		/* State first: fn may call send() or flush() on us. */
		pd->off += l;
		n++;
		u->st.rx_packets++;
		u->st.rx_bytes += l;
		if (pd->from == 0)
			u->info.rx_unknown++;
		fn(arg, pd->from, f, l);
	}
	if (pd->off >= pd->len) {
		pd->active = 0;
		rx_release(u, pd->bid);
	}
	return n;
}

/* One receive completion, in poll. */
static void rx_complete(struct sl_udp *u, const struct udp_cqe *c)
{
	if (UD_KIND(c->user_data) == UD_RX_MULTI) {
		struct io_uring_recvmsg_out *o;
		uint32_t bid, avail;
		uint8_t *buf, *name;

		/* The current multishot ended; poll re-arms it. An older one's
		 * end (kept in the stash meanwhile) changes nothing. */
		if (!(c->flags & IORING_CQE_F_MORE) && UD_IDX(c->user_data) == u->rx_gen)
			u->rx_armed = false;
		if (c->res < 0) {
			if (c->res == -ENOBUFS)
				u->info.rx_nobufs++;
			else if (c->res != -ECANCELED)
				rx_error(u, c->res);
			return;
		}
		if (!(c->flags & IORING_CQE_F_BUFFER))
			return;
		bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
		if (bid >= u->rx_bufs) {
			rx_error(u, -EFAULT); /* not a buffer we gave: cannot happen */
			return;
		}
		buf = rx_buf(u, bid);
		o = io_uring_recvmsg_validate(buf, c->res, &u->rx_msg);
		if (o == NULL) {
			rx_drop(u, bid);
			return;
		}
		name = io_uring_recvmsg_name(o);
		avail = io_uring_recvmsg_payload_length(o, c->res, &u->rx_msg);
		rx_start(u, bid, name, o->namelen <= UDP_RX_NAME ? o->namelen : 0,
			 name + UDP_RX_NAME, o->controllen <= UDP_RX_CTL ? o->controllen : 0,
			 io_uring_recvmsg_payload(o, &u->rx_msg), o->payloadlen,
			 (int)o->flags | (o->payloadlen > avail ? MSG_TRUNC : 0));
	} else {
		uint32_t i = UD_IDX(c->user_data);
		struct udp_slot *s = &u->slots[i];

		if (c->res < 0) {
			u->rx_held--;
			s->state = SLOT_IDLE;
			if (c->res != -ECANCELED)
				rx_error(u, c->res);
			return;
		}
		/* recvmsg wrote the name and control lengths and the flags
		 * back into the slot's msghdr. */
		rx_start(u, i, s->msg.msg_name, s->msg.msg_namelen, s->msg.msg_control,
			 s->msg.msg_controllen <= UDP_RX_CTL ? s->msg.msg_controllen : 0,
			 s->iov.iov_base, (size_t)c->res, s->msg.msg_flags);
	}
}

/* Note that a receive completion holds a buffer (or slot). */
static void rx_hold(struct sl_udp *u, const struct udp_cqe *c)
{
	if (UD_KIND(c->user_data) == UD_RX_MULTI) {
		if ((c->flags & IORING_CQE_F_BUFFER) && c->res >= 0 &&
		    (c->flags >> IORING_CQE_BUFFER_SHIFT) < u->rx_bufs)
			u->rx_held++;
	} else {
		u->slots[UD_IDX(c->user_data)].state = SLOT_FULL;
		u->rx_held++;
	}
}

/* flush() met a receive completion: keep it for poll, in order. The stash
 * is sized for every buffer plus the multishot's final completion, so it
 * overflows only if the kernel posts what it should not; then the frame is
 * dropped and counted, never the buffer lost. */
static void rx_stash(struct sl_udp *u, const struct udp_cqe *c)
{
	if (u->stash_n == u->stash_cap) {
		if (UD_KIND(c->user_data) == UD_RX_MULTI) {
			uint32_t bid = c->flags >> IORING_CQE_BUFFER_SHIFT;

			if (!(c->flags & IORING_CQE_F_MORE) && UD_IDX(c->user_data) == u->rx_gen)
				u->rx_armed = false;
			if ((c->flags & IORING_CQE_F_BUFFER) && c->res >= 0 && bid < u->rx_bufs) {
				rx_drop(u, bid);
				rx_publish(u);
			}
		} else if (c->res >= 0) {
			rx_drop(u, UD_IDX(c->user_data));
		} else {
			rx_release(u, UD_IDX(c->user_data));
		}
		return;
	}
	u->stash[(u->stash_head + u->stash_n) % u->stash_cap] = *c;
	u->stash_n++;
}

static int rx_arm_multi(struct sl_udp *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_recvmsg_multishot(sqe, u->fd, &u->rx_msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = UDP_BGID;
	io_uring_sqe_set_data64(sqe, UD(UD_RX_MULTI, ++u->rx_gen));
	u->rx_armed = true;
	u->rx_arms++;
	return 0;
}

static int rx_post_slot(struct sl_udp *u, uint32_t i)
{
	struct udp_slot *s = &u->slots[i];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	uint8_t *b = rx_buf(u, i);

	if (sqe == NULL)
		return -EBUSY;
	memset(&s->msg, 0, sizeof(s->msg));
	s->msg.msg_name = b + sizeof(struct io_uring_recvmsg_out);
	s->msg.msg_namelen = UDP_RX_NAME;
	s->msg.msg_control = b + sizeof(struct io_uring_recvmsg_out) + UDP_RX_NAME;
	s->msg.msg_controllen = UDP_RX_CTL;
	s->iov.iov_base = b + UDP_RX_HDR;
	s->iov.iov_len = u->rx_cap;
	s->msg.msg_iov = &s->iov;
	s->msg.msg_iovlen = 1;
	io_uring_prep_recvmsg(sqe, u->fd, &s->msg, 0);
	io_uring_sqe_set_data64(sqe, UD(UD_RX_SINGLE, i));
	s->state = SLOT_POSTED;
	return 0;
}

/* Keep receives outstanding: re-arm the multishot once it ended and the
 * ring has a buffer again, or re-post idle single-shot slots. At most one
 * submit per poll. */
static void rx_refill(struct sl_udp *u)
{
	bool queued = false;

	if (u->multishot) {
		if (!u->rx_armed && u->rx_held < u->rx_bufs) {
			unsigned before = u->rx_arms;

			if (rx_arm_multi(u) == 0) {
				if (before > 0)
					u->info.rx_rearms++;
				queued = true;
			}
		}
	} else {
		for (uint32_t i = 0; i < u->n_slots; i++)
			if (u->slots[i].state == SLOT_IDLE &&
			    !(u->pend.active && u->pend.bid == i) && rx_post_slot(u, i) == 0)
				queued = true;
	}
	if (queued) {
		int rc = io_uring_submit(&u->ring);

		if (rc < 0)
			rx_error(u, rc); /* the SQEs stay queued; the next submit sends them */
	}
}

/* ---- send ---- */

static int peer_index(const struct sl_udp *u, uint32_t id)
{
	for (uint32_t i = 0; i < u->n_peers; i++)
		if (u->peer_id[i] == id)
			return (int)i;
	return -1;
}

/* Group the pending frames into sendmsgs and queue their SQEs. A GSO
 * sendmsg takes consecutive frames to one peer of the first one's size,
 * the last of them possibly shorter (the kernel cuts the payload into
 * gso_size pieces, so only the final piece may be short). Consecutive queue
 * entries are adjacent in the arena, so one iovec covers the run. */
static int tx_build(struct sl_udp *u)
{
	u->n_ops = 0;
	for (uint32_t i = 0; i < u->txq_n;) {
		struct udp_txf *f = &u->txq[i];
		struct udp_op *op;
		struct io_uring_sqe *sqe;
		uint32_t j = i + 1, seg = f->len, bytes = f->len;

		if (f->state != TXF_PENDING) {
			i++;
			continue;
		}
		if (u->gso && !f->solo) {
			while (j < u->txq_n && j - i < UDP_GSO_SEGS_MAX) {
				const struct udp_txf *g = &u->txq[j];

				if (g->state != TXF_PENDING || g->solo || g->peer != f->peer ||
				    g->len > seg || bytes + g->len > UDP_GSO_BYTES_MAX)
					break;
				bytes += g->len;
				j++;
				if (g->len < seg)
					break;
			}
		}
		sqe = io_uring_get_sqe(&u->ring);
		if (sqe == NULL) {
			/* The SQ is sized for a full queue; make room anyway. */
			if (io_uring_submit(&u->ring) < 0 ||
			    (sqe = io_uring_get_sqe(&u->ring)) == NULL)
				return sl_err_set(EBUSY, "%s: flush: no free io_uring SQE",
						  u->name);
		}
		op = &u->ops[u->n_ops];
		memset(&op->msg, 0, sizeof(op->msg));
		op->first = i;
		op->n = j - i;
		op->bytes = bytes;
		op->seg = seg;
		op->iov.iov_base = u->tx_arena + f->off;
		op->iov.iov_len = bytes;
		op->msg.msg_name = &u->peer_sa[f->peer];
		op->msg.msg_namelen = sizeof(u->peer_sa[f->peer]);
		op->msg.msg_iov = &op->iov;
		op->msg.msg_iovlen = 1;
		if (op->n > 1) {
			struct cmsghdr *cm;
			uint16_t gs = (uint16_t)seg;

			memset(&op->ctl, 0, sizeof(op->ctl));
			op->msg.msg_control = op->ctl.buf;
			op->msg.msg_controllen = sizeof(op->ctl.buf);
			cm = CMSG_FIRSTHDR(&op->msg);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(gs));
			memcpy(CMSG_DATA(cm), &gs, sizeof(gs));
		}
		for (uint32_t k = i; k < j; k++)
			u->txq[k].state = TXF_INFLIGHT;
		/* MSG_DONTWAIT: a full socket buffer completes with -EAGAIN at
		 * once instead of io_uring parking the send on poll, so the
		 * sends run in submission order and flush() never waits. */
		io_uring_prep_sendmsg(sqe, u->fd, &op->msg, MSG_DONTWAIT);
		io_uring_sqe_set_data64(sqe, UD(UD_TX, u->n_ops));
		u->n_ops++;
		u->tx_inflight++;
		i = j;
	}
	return (int)u->n_ops;
}

static void tx_set(struct sl_udp *u, const struct udp_op *op, uint8_t state)
{
	for (uint32_t k = op->first; k < op->first + op->n; k++)
		u->txq[k].state = state;
}

static void tx_complete(struct sl_udp *u, uint32_t idx, int32_t res)
{
	struct udp_op *op;
	int err;

	if (idx >= u->n_ops || u->tx_inflight == 0)
		return; /* not one of this round's: cannot happen, ignore */
	op = &u->ops[idx];
	u->tx_inflight--;
	if (res == (int32_t)op->bytes) {
		tx_set(u, op, TXF_DONE);
		u->st.tx_packets += op->n;
		u->st.tx_bytes += op->bytes;
		if (op->n > 1) {
			u->info.gso_sends++;
			u->info.gso_frames += op->n;
		}
		return;
	}
	err = res < 0 ? -res : EIO; /* a short UDP send: nothing usable went */
	if (op->n > 1 && (err == EIO || err == EINVAL || err == EOPNOTSUPP || err == EMSGSIZE)) {
		/* The GSO sendmsg was refused. EIO: the route's device cannot
		 * checksum GSO packets, so stop using GSO. EINVAL or EMSGSIZE
		 * (kernels differ): the segment size exceeds the path MTU, or
		 * something else about this run. Its frames go again alone:
		 * those that fit arrive, the others fail with their own error. */
		if (err == EIO && u->gso) {
			u->gso = false;
			sl_warn("%s: sendmsg with UDP_SEGMENT: %s; GSO off from now on", u->name,
				strerror(err));
		}
		for (uint32_t k = op->first; k < op->first + op->n; k++) {
			u->txq[k].state = TXF_PENDING;
			u->txq[k].solo = 1;
		}
		return;
	}
	if ((err == EAGAIN || err == ENOBUFS) && u->txq[op->first].tries < UDP_TX_RETRIES) {
		for (uint32_t k = op->first; k < op->first + op->n; k++) {
			u->txq[k].state = TXF_PENDING;
			u->txq[k].tries++;
		}
		u->info.tx_retries++;
		return;
	}
	tx_set(u, op, TXF_DONE);
	u->st.tx_dropped += op->n;
	u->info.tx_errors++;
	if (err != u->last_tx_err) {
		char to[32];
		const struct sockaddr_in *sa = op->msg.msg_name;

		fmt_addr(to, sizeof(to), sa->sin_addr.s_addr, ntohs(sa->sin_port));
		sl_warn("%s: sendmsg to %s (%u frames, %u bytes): %s; dropped", u->name, to, op->n,
			op->bytes, strerror(err));
	}
	u->last_tx_err = err;
}

static void dispatch(struct sl_udp *u, const struct udp_cqe *c, bool in_poll)
{
	switch (UD_KIND(c->user_data)) {
	case UD_RX_MULTI:
	case UD_RX_SINGLE:
		rx_hold(u, c);
		if (in_poll)
			rx_complete(u, c);
		else
			rx_stash(u, c);
		break;
	case UD_TX:
		tx_complete(u, UD_IDX(c->user_data), c->res);
		break;
	default: /* UD_CANCEL */
		break;
	}
}

static void take_cqe(struct sl_udp *u, struct io_uring_cqe *cqe, struct udp_cqe *c)
{
	c->user_data = cqe->user_data;
	c->res = cqe->res;
	c->flags = cqe->flags;
	io_uring_cqe_seen(&u->ring, cqe);
}

/* Submit what is queued and reap until every sendmsg of the round has
 * completed, keeping receive completions for poll. */
static int tx_reap(struct sl_udp *u)
{
	int64_t deadline = now_ns() + UDP_REAP_NS;
	unsigned guard = 0, seen = 0;

	for (int tries = 0; io_uring_sq_ready(&u->ring) > 0; tries++) {
		int rc = io_uring_submit(&u->ring);

		if (rc < 0 && rc != -EAGAIN && rc != -EINTR && rc != -EBUSY)
			return sl_err_set(-rc, "%s: flush: io_uring_submit: %s", u->name,
					  strerror(-rc));
		if (tries == 4 && io_uring_sq_ready(&u->ring) > 0)
			return sl_err_set(rc < 0 ? -rc : EBUSY,
					  "%s: flush: io_uring_submit took no SQEs", u->name);
	}
	while (u->tx_inflight > 0) {
		struct io_uring_cqe *cqe = NULL;
		struct udp_cqe c;
		int rc = io_uring_peek_cqe(&u->ring, &cqe);

		if (rc != 0) {
			int64_t left = deadline - now_ns();
			struct __kernel_timespec ts;

			if (left <= 0 || ++guard > 1000)
				return sl_err_set(
				    ETIMEDOUT, "%s: flush: %u sendmsgs not completed after %lld ms",
				    u->name, u->tx_inflight, UDP_REAP_NS / 1000000);
			ts.tv_sec = left / 1000000000LL;
			ts.tv_nsec = left % 1000000000LL;
			rc = io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
			if (rc == -ETIME || rc == -EINTR || rc == -EAGAIN)
				continue;
			if (rc < 0)
				return sl_err_set(-rc, "%s: flush: waiting for completions: %s",
						  u->name, strerror(-rc));
		}
		take_cqe(u, cqe, &c);
		dispatch(u, &c, false);
		/* Receive completions could keep coming; the clock bounds us. */
		if ((++seen & 255) == 0 && now_ns() > deadline)
			return sl_err_set(ETIMEDOUT,
					  "%s: flush: %u sendmsgs not completed after %lld ms",
					  u->name, u->tx_inflight, UDP_REAP_NS / 1000000);
	}
	return 0;
}

static int udp_flush(struct sl_transport *t)
{
	struct sl_udp *u = udp_of(t);
	int rc;

	if (u->fail_flushes > 0) {
		u->fail_flushes--;
		u->info.flush_failures++;
		return sl_err_set(EIO, "%s: flush: injected failure", u->name);
	}
	if (u->txq_n == 0)
		return 0;
	for (int round = 0; round < UDP_TX_ROUNDS; round++) {
		if (u->tx_inflight == 0) {
			rc = tx_build(u);
			if (rc < 0)
				goto fail;
			if (rc == 0)
				break;
		}
		rc = tx_reap(u);
		if (rc < 0)
			goto fail;
	}
	/* Past the last round (retries spent), whatever is still pending is
	 * dropped; the queue and arena are free again. */
	for (uint32_t i = 0; i < u->txq_n; i++)
		if (u->txq[i].state == TXF_PENDING)
			u->st.tx_dropped++;
	u->txq_n = 0;
	u->tx_used = 0;
	return 0;
fail:
	/* The queue stays as it is: frames may still be in flight, and the
	 * next flush resumes where this one stopped. */
	u->info.flush_failures++;
	return rc;
}

static int udp_send(struct sl_transport *t, uint32_t to, const uint8_t *frame, size_t len)
{
	struct sl_udp *u = udp_of(t);
	struct udp_txf *f;
	int p = peer_index(u, to);

	if (p < 0)
		return sl_err_set(ENOENT, "%s: send to node %u: not a peer", u->name, to);
	if (len == 0 || len > u->frame_max)
		return sl_err_set(EMSGSIZE,
				  "%s: send to node %u: %zu-byte frame; 1..%u fit the MTU", u->name,
				  to, len, u->frame_max);
	if (u->txq_n == u->txq_cap || u->tx_used + len > u->tx_arena_size) {
		int rc = udp_flush(t);

		if (rc < 0 || u->txq_n == u->txq_cap || u->tx_used + len > u->tx_arena_size) {
			u->st.tx_dropped++;
			return sl_err_wrap(-ENOBUFS,
					   "%s: send to node %u: TX queue full (%u frames) and the "
					   "forced flush failed",
					   u->name, to, u->txq_cap);
		}
	}
	f = &u->txq[u->txq_n++];
	f->off = (uint32_t)u->tx_used;
	f->len = (uint32_t)len;
	f->peer = (uint8_t)p;
	f->tries = 0;
	f->state = TXF_PENDING;
	f->solo = 0;
	memcpy(u->tx_arena + u->tx_used, frame, len);
	u->tx_used += len;
	return 0;
}

/* Next completion for poll: what flush() stashed first (it came first),
 * then the ring. io_uring_peek_cqe enters the kernel only when the ring
 * says deferred work waits (IORING_SQ_TASKRUN) or the CQ overflowed.
 * *stashed tells the caller the buffer hold was already counted. */
static bool next_cqe(struct sl_udp *u, struct udp_cqe *c, bool *stashed)
{
	struct io_uring_cqe *cqe;

	*stashed = u->stash_n > 0;
	if (u->stash_n > 0) {
		*c = u->stash[u->stash_head];
		u->stash_head = (u->stash_head + 1) % u->stash_cap;
		u->stash_n--;
		return true;
	}
	if (io_uring_peek_cqe(&u->ring, &cqe) != 0 || cqe == NULL)
		return false;
	take_cqe(u, cqe, c);
	return true;
}

static int udp_poll(struct sl_transport *t, sl_rx_fn fn, void *arg, unsigned budget)
{
	struct sl_udp *u = udp_of(t);
	unsigned n = 0, guard;

	if (budget == 0)
		budget = u->rx_batch;
	/* Completions that deliver nothing (errors, the multishot's end) do
	 * not use budget; this bounds them. */
	guard = budget + u->rx_bufs + u->stash_cap + 8;
	if (!u->rx_live) {
		u->rx_live = true;
		rx_refill(u);
	}
	if (u->pend.active)
		n += rx_drain(u, fn, arg, budget);
	while (n < budget && guard-- > 0) {
		struct udp_cqe c;
		bool stashed;

		if (!next_cqe(u, &c, &stashed))
			break;
		if (stashed)
			rx_complete(u, &c); /* rx_hold ran when flush() stashed it */
		else
			dispatch(u, &c, true);
		if (u->pend.active)
			n += rx_drain(u, fn, arg, budget - n);
	}
	rx_publish(u);
	rx_refill(u);
	return (int)n;
}

/* The ring's fd: readable once a receive completes. What poll() would find
 * without a new completion (a GRO buffer half handed out, completions
 * flush() stashed, an unarmed receive) means: poll now. */
static int udp_wait_fd(struct sl_transport *t)
{
	struct sl_udp *u = udp_of(t);

	if (u->pend.active || u->stash_n > 0 || !u->rx_live || io_uring_cq_ready(&u->ring) > 0 ||
	    (u->multishot && !u->rx_armed))
		return -EAGAIN;
	return u->ring.ring_fd;
}

static void udp_stats(const struct sl_transport *t, struct sl_transport_stats *out)
{
	*out = ((const struct sl_udp *)t)->st;
}

/* ---- create / destroy ---- */

/* Cancel every request on our socket and wait (bounded) for them to end, so
 * the kernel no longer writes into buffers we are about to free. */
static void udp_quiesce(struct sl_udp *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	int64_t deadline = now_ns() + UDP_CLOSE_NS;
	bool cancelled = false;

	if (sqe == NULL)
		return;
	io_uring_prep_cancel_fd(sqe, u->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0));
	if (io_uring_submit(&u->ring) < 0)
		return;
	for (unsigned guard = 0; guard < 100000; guard++) {
		bool rx_busy = u->multishot ? u->rx_armed : false;
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {0, 10000000};
		struct udp_cqe c;

		for (uint32_t i = 0; !u->multishot && i < u->n_slots; i++)
			rx_busy |= u->slots[i].state == SLOT_POSTED;
		if (cancelled && !rx_busy && u->tx_inflight == 0)
			break;
		if (now_ns() > deadline)
			break;
		if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts) != 0)
			continue;
		take_cqe(u, cqe, &c);
		switch (UD_KIND(c.user_data)) {
		case UD_CANCEL:
			cancelled = true;
			break;
		case UD_RX_MULTI:
			if (!(c.flags & IORING_CQE_F_MORE) && UD_IDX(c.user_data) == u->rx_gen)
				u->rx_armed = false;
			break;
		case UD_RX_SINGLE:
			u->slots[UD_IDX(c.user_data)].state = SLOT_FULL;
			break;
		case UD_TX:
			if (u->tx_inflight > 0)
				u->tx_inflight--;
			break;
		}
	}
}

static void udp_destroy(struct sl_transport *t)
{
	struct sl_udp *u = udp_of(t);

	if (u == NULL)
		return;
	if (u->ring_ok) {
		udp_quiesce(u);
		if (u->br_registered)
			io_uring_unregister_buf_ring(&u->ring, UDP_BGID);
		io_uring_queue_exit(&u->ring);
	}
	if (u->fd >= 0)
		close(u->fd);
	if (u->br != NULL)
		munmap(u->br, u->br_size);
	if (u->rx_mem != NULL)
		munmap(u->rx_mem, u->rx_mem_size);
	free(u->slots);
	free(u->stash);
	free(u->tx_arena);
	free(u->txq);
	free(u->ops);
	free(u);
}

static int validate(const struct sl_transport_config *c, const char *name)
{
	if (c->n_peers > SL_NODES_MAX)
		return sl_err_set(EINVAL, "%s: %u peers; at most %d", name, c->n_peers,
				  SL_NODES_MAX);
	if (c->mtu != 0 && (c->mtu < 576 || c->mtu > 65535))
		return sl_err_set(EINVAL, "%s: MTU %u; want 576..65535 (usually 1500 or 9000)",
				  name, c->mtu);
	if (c->tx_queue > UDP_TXQ_MAX)
		return sl_err_set(EINVAL, "%s: tx_queue %u; at most %u", name, c->tx_queue,
				  UDP_TXQ_MAX);
	for (uint32_t i = 0; i < c->n_peers; i++) {
		const struct sl_peer_addr *p = &c->peers[i];

		/* 0 means "unknown sender" to poll's callers. */
		if (p->node_id == 0 || p->node_id == c->self_id)
			return sl_err_set(EINVAL, "%s: peer %u has node id %u", name, i,
					  p->node_id);
		if (p->ep.port == 0)
			return sl_err_set(EINVAL, "%s: peer node %u has port 0", name, p->node_id);
		for (uint32_t j = 0; j < i; j++) {
			const struct sl_peer_addr *q = &c->peers[j];

			if (q->node_id == p->node_id ||
			    (q->ep.ip == p->ep.ip && q->ep.port == p->ep.port))
				return sl_err_set(
				    EINVAL, "%s: peers %u and %u share a node id or an address",
				    name, j, i);
		}
	}
	return 0;
}

static int set_sockbuf(struct sl_udp *u, int opt, int force, uint32_t bytes, int *got)
{
	int v = (int)bytes;
	socklen_t l = sizeof(*got);

	/* The FORCE variants pass rmem_max/wmem_max with CAP_NET_ADMIN; the
	 * plain ones are capped there silently, so read back what we got. */
	if (setsockopt(u->fd, SOL_SOCKET, force, &v, sizeof(v)) < 0 &&
	    setsockopt(u->fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		return sl_err_set(errno, "%s: setsockopt %s: %s", u->name,
				  opt == SO_RCVBUF ? "SO_RCVBUF" : "SO_SNDBUF", strerror(errno));
	if (getsockopt(u->fd, SOL_SOCKET, opt, got, &l) < 0)
		*got = 0;
	return 0;
}

static int open_socket(struct sl_udp *u, const struct sl_transport_config *c,
		       const struct sl_udp_opts *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	uint32_t sockbuf = o->sockbuf ? o->sockbuf : UDP_SOCKBUF;
	int v, rc;

	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		return sl_err_set(errno, "%s: socket: %s", u->name, strerror(errno));
	rc = set_sockbuf(u, SO_RCVBUF, SO_RCVBUFFORCE, sockbuf, &u->info.rcvbuf);
	if (rc == 0)
		rc = set_sockbuf(u, SO_SNDBUF, SO_SNDBUFFORCE, sockbuf, &u->info.sndbuf);
	if (rc < 0)
		return rc;
	/* DF on every datagram: a frame that does not fit the path fails
	 * with EMSGSIZE (counted) instead of being fragmented, which would
	 * turn one lost fragment into a lost frame and cost reassembly. */
	v = IP_PMTUDISC_DO;
	if (setsockopt(u->fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v)) < 0)
		return sl_err_set(errno, "%s: setsockopt IP_MTU_DISCOVER: %s", u->name,
				  strerror(errno));
	sa.sin_addr.s_addr = c->self.ip;
	sa.sin_port = htons(c->self.port);
	if (bind(u->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return sl_err_set(errno, "%s: bind: %s", u->name, strerror(errno));
	if (getsockname(u->fd, (struct sockaddr *)&sa, &sl) == 0 && c->self.port == 0) {
		u->port = ntohs(sa.sin_port);
		fmt_addr(u->name + 4, sizeof(u->name) - 4, c->self.ip, u->port);
	}
	/* Feature probes: the options exist since 4.18 (UDP_SEGMENT) and 5.0
	 * (UDP_GRO); setting the socket-wide segment size to 0 changes
	 * nothing but tells us the kernel knows it. */
	v = 0;
	u->gso = !o->no_gso && setsockopt(u->fd, SOL_UDP, UDP_SEGMENT, &v, sizeof(v)) == 0;
	v = 1;
	u->gro = !o->no_gro && setsockopt(u->fd, SOL_UDP, UDP_GRO, &v, sizeof(v)) == 0;
	return 0;
}

static int setup_ring(struct sl_udp *u)
{
	struct io_uring_params p;
	struct io_uring_probe *probe;
	unsigned sq = pow2_at_least(u->txq_cap + UDP_SINGLE_SLOTS + 8);
	unsigned cq = pow2_at_least(2 * (u->txq_cap + u->rx_bufs + 16));
	int rc;

	/* COOP_TASKRUN: no IPI to run completions, they run when we next
	 * enter the kernel; TASKRUN_FLAG tells io_uring_peek_cqe when that is
	 * needed. SUBMIT_ALL: one bad SQE does not hold back the rest. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG;
	p.cq_entries = cq;
	rc = io_uring_queue_init_params(sq, &u->ring, &p);
	if (rc == -EINVAL) { /* before 5.19 */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = cq;
		rc = io_uring_queue_init_params(sq, &u->ring, &p);
	}
	if (rc < 0)
		return sl_err_set(-rc, "%s: io_uring_queue_init (%u/%u entries): %s", u->name, sq,
				  cq, strerror(-rc));
	u->ring_ok = true;
	u->info.ring_flags = p.flags;
	probe = io_uring_get_probe_ring(&u->ring);
	if (probe != NULL) {
		bool ok = io_uring_opcode_supported(probe, IORING_OP_SENDMSG) &&
			  io_uring_opcode_supported(probe, IORING_OP_RECVMSG);

		io_uring_free_probe(probe);
		if (!ok)
			return sl_err_set(EOPNOTSUPP,
					  "%s: this kernel's io_uring has no SENDMSG/RECVMSG",
					  u->name);
	}
	return 0;
}

/* Take back the multishot the probe armed and wait (bounded) for its end.
 * A datagram it already received is kept for poll, not lost. */
static int rx_unarm_probe(struct sl_udp *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	int64_t deadline = now_ns() + UDP_REAP_NS;
	bool cancelled = false;

	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, UD(UD_RX_MULTI, u->rx_gen), 0);
	io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0));
	if (io_uring_submit(&u->ring) < 0)
		return -EIO;
	for (unsigned guard = 0; guard < 10000 && (!cancelled || u->rx_armed); guard++) {
		struct __kernel_timespec ts = {0, 10000000};
		struct io_uring_cqe *cqe;
		struct udp_cqe c;

		if (now_ns() > deadline)
			return -ETIMEDOUT;
		if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts) != 0)
			continue;
		take_cqe(u, cqe, &c);
		if (UD_KIND(c.user_data) == UD_CANCEL) {
			cancelled = true;
			continue;
		}
		if (UD_KIND(c.user_data) == UD_RX_MULTI && !(c.flags & IORING_CQE_F_MORE))
			u->rx_armed = false;
		/* Stashed for poll; by then a newer arm is current, so this
		 * end does not count as the current multishot's. */
		dispatch(u, &c, false);
	}
	return cancelled && !u->rx_armed ? 0 : -ETIMEDOUT;
}

/* Multishot receive: register the buffer ring, arm, and see whether the
 * kernel refused the multishot flag (it does so at submission, so its
 * error completion is already there after submit). Then take it back:
 * the first poll arms the receives for real, because io_uring runs a
 * request's completion work in the thread that submitted it, and that
 * must be the thread that polls, not the one that created us. */
static int try_multishot(struct sl_udp *u, const char **why)
{
	struct io_uring_buf_reg reg;
	struct io_uring_cqe *cqe;
	int rc;

	u->br_size = ((size_t)u->rx_bufs * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	u->br = mmap(NULL, u->br_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		return sl_err_set(errno, "%s: mmap buffer ring: %s", u->name, strerror(errno));
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)u->br;
	reg.ring_entries = u->rx_bufs;
	reg.bgid = UDP_BGID;
	rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc < 0) {
		*why = "io_uring_register_buf_ring refused (kernel < 5.19)";
		return rc;
	}
	u->br_registered = true;
	io_uring_buf_ring_init(u->br);
	for (uint32_t i = 0; i < u->rx_bufs; i++)
		io_uring_buf_ring_add(u->br, rx_buf(u, i), (unsigned)u->rx_buf_size,
				      (unsigned short)i, io_uring_buf_ring_mask(u->rx_bufs),
				      (int)i);
	io_uring_buf_ring_advance(u->br, (int)u->rx_bufs);
	u->multishot = true;
	rc = rx_arm_multi(u);
	if (rc == 0)
		rc = io_uring_submit(&u->ring);
	if (rc < 0) {
		*why = "submitting it failed";
		return rc;
	}
	if (io_uring_peek_cqe(&u->ring, &cqe) == 0 && cqe != NULL &&
	    UD_KIND(cqe->user_data) == UD_RX_MULTI && cqe->res < 0 &&
	    !(cqe->flags & IORING_CQE_F_MORE)) {
		rc = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		u->rx_armed = false;
		*why = "the kernel refused IORING_RECV_MULTISHOT on recvmsg (kernel < 6.0)";
		return rc;
	}
	rc = rx_unarm_probe(u);
	if (rc < 0)
		return sl_err_set(-rc, "%s: cancelling the multishot receive probe: %s", u->name,
				  strerror(-rc));
	u->rx_arms = 0;
	return 0;
}

static int setup_single(struct sl_udp *u)
{
	u->multishot = false;
	u->rx_armed = false;
	if (u->br_registered) {
		io_uring_unregister_buf_ring(&u->ring, UDP_BGID);
		u->br_registered = false;
	}
	/* Each single-shot receive owns one buffer; a few are enough to keep
	 * the socket drained between polls. */
	u->n_slots = u->rx_bufs < UDP_SINGLE_SLOTS ? u->rx_bufs : UDP_SINGLE_SLOTS;
	u->slots = calloc(u->n_slots, sizeof(*u->slots));
	if (u->slots == NULL)
		return sl_err_set(ENOMEM, "%s: out of memory", u->name);
	/* All SLOT_IDLE: the first poll posts them (see try_multishot). */
	return 0;
}

int sl_udp_transport_create_opts(struct sl_transport **out, const struct sl_transport_config *c,
				 const struct sl_udp_opts *opts)
{
	static const struct sl_udp_opts no_opts;
	const struct sl_udp_opts *o = opts ? opts : &no_opts;
	const char *why = NULL;
	struct sl_udp *u;
	unsigned mtu = c->mtu ? c->mtu : 1500;
	int rc;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return sl_err_set(ENOMEM, "udp: out of memory");
	u->base.ops = &udp_ops;
	u->fd = -1;
	memcpy(u->name, "udp ", 4);
	fmt_addr(u->name + 4, sizeof(u->name) - 4, c->self.ip, c->self.port);
	rc = validate(c, u->name);
	if (rc < 0)
		goto fail;
	u->self_id = c->self_id;
	u->port = c->self.port;
	u->n_peers = c->n_peers;
	for (uint32_t i = 0; i < c->n_peers; i++) {
		u->peer_id[i] = c->peers[i].node_id;
		u->peer_sa[i].sin_family = AF_INET;
		u->peer_sa[i].sin_addr.s_addr = c->peers[i].ep.ip;
		u->peer_sa[i].sin_port = htons(c->peers[i].ep.port);
	}
	u->frame_max = mtu - SL_FRAME_IP_UDP;
	if (u->frame_max > SL_FRAME_MAX)
		u->frame_max = SL_FRAME_MAX;
	u->rx_batch = c->rx_batch ? c->rx_batch : 64;
	u->txq_cap = c->tx_queue ? c->tx_queue : 256;
	u->fail_flushes = o->fail_flushes;
	if (o->rx_bufs != 0 &&
	    (o->rx_bufs < 2 || o->rx_bufs > UDP_RX_BUFS_MAX || (o->rx_bufs & (o->rx_bufs - 1)))) {
		rc = sl_err_set(EINVAL, "%s: rx_bufs %u; want a power of two 2..%u", u->name,
				o->rx_bufs, UDP_RX_BUFS_MAX);
		goto fail;
	}

	rc = open_socket(u, c, o);
	if (rc < 0)
		goto fail;
	u->rx_cap = u->gro ? UDP_RX_GRO_CAP : UDP_RX_CAP;
	u->rx_buf_size = (UDP_RX_HDR + u->rx_cap + 63) & ~(size_t)63;
	u->rx_bufs = o->rx_bufs ? o->rx_bufs : (u->gro ? 64 : 256);
	u->info.gso_max_segs = UDP_GSO_SEGS_MAX;

	/* Everything the data path uses, now. */
	u->rx_mem_size = (u->rx_buf_size * u->rx_bufs + 4095) & ~(size_t)4095;
	u->rx_mem =
	    mmap(NULL, u->rx_mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->rx_mem == MAP_FAILED) {
		u->rx_mem = NULL;
		rc = sl_err_set(ENOMEM, "%s: mmap %zu bytes of receive buffers: %s", u->name,
				u->rx_mem_size, strerror(errno));
		goto fail;
	}
	u->tx_arena_size = (size_t)u->txq_cap * u->frame_max;
	u->tx_arena = malloc(u->tx_arena_size);
	u->txq = calloc(u->txq_cap, sizeof(*u->txq));
	u->ops = calloc(u->txq_cap, sizeof(*u->ops));
	u->stash_cap = u->rx_bufs + 4;
	u->stash = calloc(u->stash_cap, sizeof(*u->stash));
	if (u->tx_arena == NULL || u->txq == NULL || u->ops == NULL || u->stash == NULL) {
		rc = sl_err_set(ENOMEM, "%s: out of memory for a %u-frame TX queue", u->name,
				u->txq_cap);
		goto fail;
	}
	/* The multishot's msghdr only tells the kernel how much room to leave
	 * for the name and the control messages in each buffer. */
	u->rx_msg.msg_namelen = UDP_RX_NAME;
	u->rx_msg.msg_controllen = UDP_RX_CTL;

	rc = setup_ring(u);
	if (rc < 0)
		goto fail;
	/* Multishot when the kernel takes it; `why` says why not. A failure
	 * without a reason (out of memory) is fatal, a refusal is not. */
	if (o->no_multishot) {
		why = "disabled by option";
	} else {
		rc = try_multishot(u, &why);
		if (rc < 0 && why == NULL)
			goto fail;
	}
	if (why != NULL) {
		rc = setup_single(u);
		if (rc < 0)
			goto fail;
	}
	u->info.multishot = u->multishot;
	sl_info(
	    "%s: io_uring (flags 0x%x); receive: %s%s%s%s, %u x %zu B buffers; GRO %s; GSO %s "
	    "(up to %u frames per sendmsg); rcvbuf %d, sndbuf %d; frames up to %u B",
	    u->name, u->info.ring_flags,
	    u->multishot ? "multishot recvmsg with a provided-buffer ring" : "single-shot recvmsg",
	    u->multishot ? "" : " (multishot: ", u->multishot ? "" : why, u->multishot ? "" : ")",
	    u->rx_bufs, u->rx_buf_size, u->gro ? "on" : "off", u->gso ? "on" : "off",
	    UDP_GSO_SEGS_MAX, u->info.rcvbuf, u->info.sndbuf, u->frame_max);
	*out = &u->base;
	return 0;
fail:
	udp_destroy(&u->base);
	return rc;
}

int sl_udp_transport_create(struct sl_transport **out, const struct sl_transport_config *c)
{
	return sl_udp_transport_create_opts(out, c, NULL);
}

int sl_udp_info(const struct sl_transport *t, struct sl_udp_info *out)
{
	const struct sl_udp *u = (const struct sl_udp *)t;

	if (t == NULL || t->ops != &udp_ops)
		return sl_err_set(EINVAL, "sl_udp_info: not a UDP transport");
	*out = u->info;
	out->multishot = u->multishot;
	out->gso = u->gso;
	out->gro = u->gro;
	out->rx_bufs = u->rx_bufs;
	out->rx_buf_size = u->rx_buf_size;
	out->port = u->port;
	return 0;
}

void sl_udp_fail_flushes(struct sl_transport *t, unsigned n)
{
	if (t != NULL && t->ops == &udp_ops)
		udp_of(t)->fail_flushes = n;
}

static const struct sl_transport_ops udp_ops = {
    .name = "udp",
    .send = udp_send,
    .flush = udp_flush,
    .poll = udp_poll,
    .stats = udp_stats,
    .destroy = udp_destroy,
    .wait_fd = udp_wait_fd,
};
