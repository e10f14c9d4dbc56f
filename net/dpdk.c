/* The DPDK transport: one ethdev port, one RX and one TX queue, frames
 * wrapped in Ethernet/IPv4/UDP by net/encap.c so a kernel-UDP node reads the
 * same bytes. See include/shiplog/dpdk.h for the EAL, port and zero-copy
 * rules, and include/shiplog/transport.h for the ops contract.
 *
 * Threads: one transport is used by one thread at a time (the node that
 * polls it); several transports in one process may run on different threads.
 * The process-wide state (EAL, which ports are taken) is under one mutex. */
#include "shiplog/dpdk.h"

#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_alarm.h>
#include <rte_bus.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include "shiplog/encap.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/log.h"

#define SL_DPDK_ARGS_MAX     64	  /* EAL arguments we split eal_args into */
#define SL_DPDK_ARGS_LEN     4096 /* ... and their total length */
#define SL_DPDK_DESC	     1024 /* RX and TX descriptors asked for (the driver adjusts) */
#define SL_DPDK_TX_RETRIES   64	  /* rte_eth_tx_burst calls after a short one, 1 us apart */
#define SL_DPDK_RX_BATCH     64
#define SL_DPDK_RX_MAX	     512
#define SL_DPDK_TX_QUEUE     256
#define SL_DPDK_TX_MAX	     4096
#define SL_DPDK_MBUFS	     8191
#define SL_DPDK_POLL_ROUNDS  4	 /* rx bursts per poll() at most */
#define SL_DPDK_DRAIN_ROUNDS 64	 /* rx bursts destroy() frees before stopping */
#define SL_DPDK_ARP_RETRY_MS 200 /* one ARP request per unresolved peer per this */
#define SL_DPDK_MTU_MIN	     576
#define SL_DPDK_MTU_MAX	     (SL_FRAME_MAX + SL_FRAME_IP_UDP)
#define SL_DPDK_VLAN	     4	/* a tagged frame still fits the linearisation buffer */
#define SL_DPDK_ZC_HDR_ROOM  64 /* data room of the header mbufs of zero-copy frames */

/* ---- process-wide state ---- */

static pthread_mutex_t dpdk_lock = PTHREAD_MUTEX_INITIALIZER;
static int eal_state; /* 0: not tried, 1: up, -errno: rte_eal_init failed */
static char eal_failure[SL_ERR_MSG_MAX];
static uint8_t port_taken[RTE_MAX_ETHPORTS];
static unsigned pool_seq;

/* EAL may keep pointers into argv: the strings of the one init live on. */
struct argv_buf {
	char buf[SL_DPDK_ARGS_LEN];
	char *argv[SL_DPDK_ARGS_MAX + 2];
	int argc;
};
static struct argv_buf eal_argv;

static int split_args(const char *s, struct argv_buf *a)
{
	size_t n = s ? strlen(s) : 0;
	char *p = a->buf;

	if (n >= sizeof(a->buf))
		return sl_err_set(E2BIG, "dpdk: eal_args of %zu bytes, limit %zu", n,
				  sizeof(a->buf) - 1);
	if (n)
		memcpy(a->buf, s, n + 1);
	else
		a->buf[0] = '\0';
	a->argc = 0;
	a->argv[a->argc++] = (char *)"shiplog";
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			*p++ = '\0';
		if (!*p)
			break;
		if (a->argc > SL_DPDK_ARGS_MAX)
			return sl_err_set(E2BIG, "dpdk: eal_args has over %d arguments",
					  SL_DPDK_ARGS_MAX);
		a->argv[a->argc++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n')
			p++;
	}
	a->argv[a->argc] = NULL;
	return 0;
}

/* Hot-plug each --vdev of `a` that is not an ethdev yet. Called with
 * dpdk_lock held, EAL up. */
static int hotplug_vdevs(const struct argv_buf *a)
{
	for (int i = 1; i < a->argc; i++) {
		char name[RTE_DEV_NAME_MAX_LEN];
		const char *spec = NULL, *comma;
		uint16_t port;
		size_t len;
		int rc;

		if (strcmp(a->argv[i], "--vdev") == 0 && i + 1 < a->argc)
			spec = a->argv[++i];
		else if (strncmp(a->argv[i], "--vdev=", 7) == 0)
			spec = a->argv[i] + 7;
		if (spec == NULL)
			continue;
		comma = strchr(spec, ',');
		len = comma ? (size_t)(comma - spec) : strlen(spec);
		if (len == 0 || len >= sizeof(name))
			return sl_err_set(EINVAL, "dpdk: bad --vdev '%.64s'", spec);
		memcpy(name, spec, len);
		name[len] = '\0';
		if (rte_eth_dev_get_port_by_name(name, &port) == 0)
			continue;
		/* EAL's hot-plug, rather than rte_vdev_init, so we need not
		 * link the vdev bus driver, a plugin in shared builds. */
		rc = rte_eal_hotplug_add("vdev", name, comma ? comma + 1 : "");
		if (rc < 0 && rc != -EEXIST)
			return sl_err_set(-rc, "dpdk: hot-plugging %s (%s): %s", name,
					  comma ? comma + 1 : "", rte_strerror(-rc));
		sl_debug("dpdk: hot-plugged %s", spec);
	}
	return 0;
}

/* Called with dpdk_lock held. */
static int eal_up_locked(const char *eal_args)
{
	struct argv_buf *local;
	int rc;

	if (eal_state < 0)
		return sl_err_set(-eal_state, "%s", eal_failure);
	if (eal_state == 0) {
		rc = split_args(eal_args, &eal_argv);
		if (rc < 0)
			return rc;
		rc = rte_eal_init(eal_argv.argc, eal_argv.argv);
		if (rc < 0 && rte_errno == EALREADY) {
			/* The application initialised EAL itself: share it. */
			eal_state = 1;
			return hotplug_vdevs(&eal_argv);
		}
		if (rc < 0) {
			int e = rte_errno > 0 ? rte_errno : EINVAL;

			/* rte_eal_init cannot be retried in this process. */
			snprintf(eal_failure, sizeof(eal_failure), "dpdk: rte_eal_init(\"%s\"): %s",
				 eal_args ? eal_args : "", rte_strerror(e));
			eal_state = -e;
			return sl_err_set(e, "%s", eal_failure);
		}
		if (rc + 1 < eal_argv.argc)
			sl_warn("dpdk: eal_args after EAL's own ignored (from '%s')",
				eal_argv.argv[rc + 1]);
		eal_state = 1;
		return 0;
	}
	local = malloc(sizeof(*local));
	if (local == NULL)
		return sl_err_set(ENOMEM, "dpdk: eal_args buffer");
	rc = split_args(eal_args, local);
	if (rc == 0)
		rc = hotplug_vdevs(local);
	free(local);
	return rc;
}

int sl_dpdk_eal_init(const char *eal_args)
{
	int rc;

	pthread_mutex_lock(&dpdk_lock);
	rc = eal_up_locked(eal_args);
	pthread_mutex_unlock(&dpdk_lock);
	return rc;
}

int sl_dpdk_port_by_name(const char *name, uint16_t *port_id)
{
	uint16_t p;

	if (eal_state != 1 || rte_eth_dev_get_port_by_name(name, &p) != 0)
		return sl_err_set(ENODEV, "dpdk: no ethdev named '%s'", name);
	*port_id = p;
	return 0;
}

/* ---- the transport ---- */

struct sl_dpdk_peer {
	uint32_t node_id;
	struct sl_endpoint ep;
	int mac_static; /* from the config: never overwritten by ARP */
	int mac_known;
	uint64_t arp_next; /* timer cycle before which we send no ARP request */
};

struct sl_dpdk_zc;

/* One external buffer handed to the driver: its refcount and free callback. */
struct sl_dpdk_zc_slot {
	struct rte_mbuf_ext_shared_info shinfo;
	struct sl_dpdk_zc *zc;
	uint32_t busy;
};

/* Separate from the transport so a driver releasing a buffer after destroy
 * (after a stall) touches memory that is still ours: it is then leaked. */
struct sl_dpdk_zc {
	uint32_t outstanding; /* buffers the driver holds */
	uint32_t n, next;
	struct sl_dpdk_zc_slot slot[];
};

struct sl_dpdk {
	struct sl_transport base;
	uint16_t port;
	int started, created;
	struct rte_device *dev;
	char name[64], driver[32];
	char where[112]; /* "dpdk port 0 (net_memif0)" for messages */
	struct sl_endpoint self;
	uint32_t n_peers;
	struct sl_dpdk_peer peers[SL_NODES_MAX];
	uint32_t mtu, rx_batch, tx_cap, zc_min, data_room;
	int is_vdev, rx_scatter, tx_multi_seg, csum_offload, rx_csum, zero_copy, promisc;
	uint16_t ip_id;
	uint64_t arp_retry; /* timer cycles */
	struct rte_mempool *pool, *zc_pool;
	struct sl_dpdk_zc *zc;
	struct rte_mbuf **txq;
	uint32_t *txlen; /* frame bytes of each queued packet, for tx_bytes */
	uint32_t tx_n;
	struct rte_mbuf **rxq;
	uint8_t *lin; /* linearised chained packets */
	size_t lin_cap;
	/* Doorbells (in-process links); frames wait_fd took from the ring
	 * while arming, delivered first by the next poll. */
	struct sl_dpdk_doorbell *bell_own, *bell_peer;
	struct rte_mbuf **held;
	uint16_t n_held, held_at;
	struct sl_transport_stats st;
	struct sl_dpdk_info info; /* the counters part */
};

static const struct sl_transport_ops dpdk_ops;

static struct sl_dpdk *to_dpdk(struct sl_transport *t)
{
	return (struct sl_dpdk *)t;
}

static struct sl_dpdk_peer *peer_by_id(struct sl_dpdk *t, uint32_t id)
{
	for (uint32_t i = 0; i < t->n_peers; i++)
		if (t->peers[i].node_id == id)
			return &t->peers[i];
	return NULL;
}

static uint32_t peer_by_addr(const struct sl_dpdk *t, uint32_t ip, uint16_t port)
{
	for (uint32_t i = 0; i < t->n_peers; i++)
		if (t->peers[i].ep.ip == ip && t->peers[i].ep.port == port)
			return t->peers[i].node_id;
	return 0;
}

static int mac_is_zero(const uint8_t mac[6])
{
	static const uint8_t zero[6];

	return memcmp(mac, zero, 6) == 0;
}

/* Send one small packet (ARP) now, outside the frame queue, so replies go
 * out even when the caller has nothing to flush. */
static void send_raw(struct sl_dpdk *t, const uint8_t *pkt, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(t->pool);
	uint8_t *p;

	if (m == NULL) {
		t->info.tx_nombuf++;
		t->st.tx_dropped++;
		return;
	}
	p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	if (p == NULL) {
		rte_pktmbuf_free(m);
		t->st.tx_dropped++;
		return;
	}
	memcpy(p, pkt, len);
	for (int i = 0; i < 4; i++) {
		if (rte_eth_tx_burst(t->port, 0, &m, 1) == 1)
			return;
		rte_delay_us_block(1);
	}
	rte_pktmbuf_free(m);
	t->st.tx_dropped++;
}

static void arp_maybe(struct sl_dpdk *t, struct sl_dpdk_peer *p)
{
	uint8_t pkt[SL_ETH_MIN];
	uint64_t now = rte_get_timer_cycles();
	int n;

	if (now < p->arp_next)
		return;
	p->arp_next = now + t->arp_retry;
	n = sl_arp_request(pkt, sizeof(pkt), &t->self, p->ep.ip);
	if (n > 0) {
		send_raw(t, pkt, (size_t)n);
		t->info.arp_requests++;
	}
}

/* A peer whose MAC the config left zero takes the one its ARP says. */
static void arp_learn(struct sl_dpdk *t, const struct sl_endpoint *who)
{
	if (who->ip == 0 || (who->mac[0] & 1) || mac_is_zero(who->mac))
		return;
	for (uint32_t i = 0; i < t->n_peers; i++) {
		struct sl_dpdk_peer *p = &t->peers[i];

		if (p->mac_static || p->ep.ip != who->ip)
			continue;
		if (!p->mac_known || memcmp(p->ep.mac, who->mac, 6) != 0) {
			memcpy(p->ep.mac, who->mac, 6);
			p->mac_known = 1;
			t->info.arp_learned++;
		}
	}
}

static void zc_free_cb(void *addr, void *opaque)
{
	struct sl_dpdk_zc_slot *s = opaque;

	(void)addr;
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
	__atomic_fetch_sub(&s->zc->outstanding, 1, __ATOMIC_RELEASE);
}

static struct sl_dpdk_zc_slot *zc_slot_get(struct sl_dpdk_zc *zc)
{
	for (uint32_t k = 0; k < zc->n; k++) {
		struct sl_dpdk_zc_slot *s = &zc->slot[zc->next];

		zc->next = zc->next + 1 == zc->n ? 0 : zc->next + 1;
		if (!__atomic_load_n(&s->busy, __ATOMIC_ACQUIRE))
			return s;
	}
	return NULL;
}

/* The device must be able to read the caller's bytes: virtual devices read
 * them through the CPU; a PCI device needs them in DPDK (or registered
 * external) memory, IOVA-contiguous. */
static int zc_iova(const struct sl_dpdk *t, const uint8_t *frame, size_t len, rte_iova_t *iova)
{
	rte_iova_t a, b;

	if (t->is_vdev) {
		*iova = rte_eal_iova_mode() == RTE_IOVA_VA ? (rte_iova_t)(uintptr_t)frame
							   : RTE_BAD_IOVA;
		return 1;
	}
	if (rte_mem_virt2memseg(frame, NULL) == NULL ||
	    rte_mem_virt2memseg(frame + len - 1, NULL) == NULL)
		return 0;
	a = rte_mem_virt2iova(frame);
	b = rte_mem_virt2iova(frame + len - 1);
	if (a == RTE_BAD_IOVA || b == RTE_BAD_IOVA || b - a != len - 1)
		return 0;
	*iova = a;
	return 1;
}

static void set_tx_offload(struct rte_mbuf *m)
{
	m->l2_len = SL_ETH_HDR;
	m->l3_len = SL_IPV4_HDR;
	m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
}

/* Without offload the UDP checksum stays zero: every shiplog frame carries a
 * CRC32C over all its bytes that the receiver checks, so a software sum over
 * the same bytes (a pass on each side) would only check them again, weaker. */
static enum sl_encap_csum tx_csum(const struct sl_dpdk *t)
{
	return t->csum_offload ? SL_CSUM_OFFLOAD : SL_CSUM_IP_ONLY;
}

/* A header mbuf and an external-buffer mbuf on the caller's bytes, or NULL
 * (the caller then copies). */
static struct rte_mbuf *build_zc(struct sl_dpdk *t, const struct sl_dpdk_peer *p,
				 const uint8_t *frame, size_t len)
{
	struct sl_dpdk_zc_slot *s;
	struct rte_mbuf *h, *e;
	rte_iova_t iova;
	uint8_t *hdr;

	if (!zc_iova(t, frame, len, &iova))
		return NULL;
	s = zc_slot_get(t->zc);
	if (s == NULL)
		return NULL;
	h = rte_pktmbuf_alloc(t->zc_pool);
	e = h ? rte_pktmbuf_alloc(t->zc_pool) : NULL;
	if (e == NULL) {
		rte_pktmbuf_free(h);
		return NULL;
	}
	hdr = (uint8_t *)rte_pktmbuf_append(h, SL_ENCAP_HDR);
	if (hdr == NULL || sl_encap_write_hdr(hdr, SL_ENCAP_HDR, &t->self, &p->ep, t->ip_id++,
					      frame, len, tx_csum(t)) < 0) {
		rte_pktmbuf_free(h);
		rte_pktmbuf_free(e);
		return NULL;
	}
	__atomic_store_n(&s->busy, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&t->zc->outstanding, 1, __ATOMIC_RELAXED);
	s->shinfo.free_cb = zc_free_cb;
	s->shinfo.fcb_opaque = s;
	rte_mbuf_ext_refcnt_set(&s->shinfo, 1);
	/* DPDK only reads a TX buffer; the cast drops const for its API. */
	rte_pktmbuf_attach_extbuf(e, (void *)(uintptr_t)frame, iova, (uint16_t)len, &s->shinfo);
	e->data_len = (uint16_t)len;
	e->pkt_len = (uint32_t)len;
	if (rte_pktmbuf_chain(h, e) != 0) {
		rte_pktmbuf_free(h);
		rte_pktmbuf_free(e); /* runs zc_free_cb */
		return NULL;
	}
	if (t->csum_offload)
		set_tx_offload(h);
	return h;
}

/* Copy header + frame into one mbuf, or a chain of them on a port that takes
 * chains (the pool's data room fits a whole frame on one that does not). */
static struct rte_mbuf *build_copy(struct sl_dpdk *t, const struct sl_dpdk_peer *p,
				   const uint8_t *frame, size_t len)
{
	struct rte_mbuf *head = rte_pktmbuf_alloc(t->pool), *cur;
	size_t left = len, room;
	const uint8_t *src = frame;
	uint8_t *dst;

	if (head == NULL)
		return NULL;
	room = rte_pktmbuf_tailroom(head);
	if (room < SL_ENCAP_HDR || (SL_ENCAP_HDR + len > room && !t->tx_multi_seg))
		goto fail; /* cannot happen: the data room is sized at create */
	dst = (uint8_t *)rte_pktmbuf_append(head, SL_ENCAP_HDR);
	if (sl_encap_write_hdr(dst, SL_ENCAP_HDR, &t->self, &p->ep, t->ip_id++, frame, len,
			       tx_csum(t)) < 0)
		goto fail;
	cur = head;
	while (left > 0) {
		size_t n;

		room = rte_pktmbuf_tailroom(cur);
		if (room == 0) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(t->pool);

			if (m == NULL)
				goto fail;
			if (rte_pktmbuf_chain(head, m) != 0) {
				rte_pktmbuf_free(m);
				goto fail;
			}
			cur = m;
			room = rte_pktmbuf_tailroom(cur);
		}
		n = left < room ? left : room;
		/* rte_pktmbuf_append grows the last segment and pkt_len. */
		dst = (uint8_t *)rte_pktmbuf_append(head, (uint16_t)n);
		if (dst == NULL)
			goto fail;
		memcpy(dst, src, n);
		src += n;
		left -= n;
	}
	if (head->nb_segs > 1)
		t->info.tx_chained++;
	if (t->csum_offload)
		set_tx_offload(head);
	return head;
fail:
	rte_pktmbuf_free(head);
	return NULL;
}

/* ---- doorbells ---- */

_Static_assert(sizeof(struct sl_dpdk_doorbell) == SL_DPDK_DOORBELL_BYTES, "a doorbell per line");

int sl_dpdk_doorbell_init(struct sl_dpdk_doorbell *d)
{
	memset(d, 0, sizeof(*d));
	d->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->fd < 0)
		return sl_err_set(errno, "doorbell eventfd: %s", strerror(errno));
	return 0;
}

void sl_dpdk_doorbell_close(struct sl_dpdk_doorbell *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

/* Sender: after the burst's ring writes, ring once if the owner armed. */
static void bell_ring(struct sl_dpdk_doorbell *d)
{
	uint64_t one = 1;

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&d->armed, memory_order_relaxed) &&
	    atomic_exchange(&d->armed, 0) &&
	    write(d->fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		sl_debug("dpdk: doorbell write: %s", strerror(errno));
}

/* Owner: empty the eventfd of a ring that is due; 1 when it was read, 0
 * while the sender has yet to write it. */
static int bell_read(struct sl_dpdk_doorbell *d)
{
	uint64_t v;

	if (read(d->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		d->rung = 0;
	return !d->rung;
}

/* Owner, awake again: take the arming back. A sender that took it first
 * rings (or is about to): read that now or before the next sleep, so that a
 * stale count cannot cut every later sleep short. */
static void bell_disarm(struct sl_dpdk_doorbell *d)
{
	if (!d->owner_armed)
		return;
	d->owner_armed = 0;
	if (!atomic_exchange(&d->armed, 0)) {
		d->rung = 1;
		bell_read(d);
	}
}

int sl_dpdk_set_doorbells(struct sl_transport *tt, struct sl_dpdk_doorbell *own,
			  struct sl_dpdk_doorbell *peer)
{
	struct sl_dpdk *t = to_dpdk(tt);

	if (tt == NULL || tt->ops != &dpdk_ops)
		return sl_err_set(EINVAL, "dpdk: not a DPDK transport");
	t->bell_own = own;
	t->bell_peer = peer;
	return 0;
}

static int dpdk_flush(struct sl_transport *tt);

static int dpdk_send(struct sl_transport *tt, uint32_t to, const uint8_t *frame, size_t len)
{
	struct sl_dpdk *t = to_dpdk(tt);
	struct sl_dpdk_peer *p = peer_by_id(t, to);
	struct rte_mbuf *m = NULL;

	if (p == NULL)
		return sl_err_set(ENOENT, "%s: send to unknown node %u", t->where, to);
	if (len + SL_IPV4_HDR + SL_UDP_HDR > t->mtu)
		return sl_err_set(EMSGSIZE, "%s: frame of %zu bytes over MTU %u", t->where, len,
				  t->mtu);
	if (!p->mac_known) {
		/* Like a kernel socket whose neighbour is unresolved: the frame
		 * is lost, the protocol's retransmission repairs it. */
		arp_maybe(t, p);
		t->info.tx_unresolved++;
		t->st.tx_dropped++;
		return 0;
	}
	if (t->tx_n == t->tx_cap) {
		dpdk_flush(tt);
		if (t->tx_n == t->tx_cap) {
			t->st.tx_dropped++;
			return sl_err_set(ENOBUFS, "%s: TX queue of %u full after a flush",
					  t->where, t->tx_cap);
		}
	}
	if (t->zero_copy && len >= t->zc_min && len > 0) {
		m = build_zc(t, p, frame, len);
		if (m != NULL)
			t->info.tx_zero_copy++;
	}
	if (m == NULL) {
		m = build_copy(t, p, frame, len);
		if (m == NULL) {
			t->info.tx_nombuf++;
			t->st.tx_dropped++;
			return sl_err_set(ENOBUFS, "%s: mbuf pool empty (%u mbufs free)", t->where,
					  rte_mempool_avail_count(t->pool));
		}
		t->info.tx_copied++;
	}
	t->txq[t->tx_n] = m;
	t->txlen[t->tx_n] = (uint32_t)len;
	t->tx_n++;
	return 0;
}

/* Wait, bounded, until the driver has released every external buffer. */
static void zc_wait(struct sl_dpdk *t)
{
	uint64_t deadline;

	if (__atomic_load_n(&t->zc->outstanding, __ATOMIC_ACQUIRE) == 0)
		return;
	t->info.zc_waits++;
	deadline = rte_get_timer_cycles() + rte_get_timer_hz() * SL_DPDK_ZC_WAIT_US / 1000000;
	while (__atomic_load_n(&t->zc->outstanding, __ATOMIC_ACQUIRE) > 0) {
		if (rte_get_timer_cycles() > deadline) {
			t->info.zc_stalls++;
			t->zero_copy = 0;
			sl_warn("%s: driver still holds %u zero-copy buffers %d us after "
				"rte_eth_tx_burst; zero-copy off for this transport",
				t->where, __atomic_load_n(&t->zc->outstanding, __ATOMIC_RELAXED),
				SL_DPDK_ZC_WAIT_US);
			return;
		}
		rte_eth_tx_done_cleanup(t->port, 0, 0); /* -ENOTSUP on many: fine */
		rte_pause();
	}
}

static int dpdk_flush(struct sl_transport *tt)
{
	struct sl_dpdk *t = to_dpdk(tt);
	uint32_t n = t->tx_n, sent = 0;
	uint64_t bytes = 0;

	if (n == 0)
		return 0;
	t->tx_n = 0;
	if (t->csum_offload) {
		/* Drivers that need headers adjusted for offload do it here; a
		 * packet it refuses is dropped, the rest go on. */
		uint32_t ok = 0;

		for (int guard = 0; ok < n && guard <= (int)n; guard++) {
			ok += rte_eth_tx_prepare(t->port, 0, t->txq + ok, (uint16_t)(n - ok));
			if (ok < n) {
				rte_pktmbuf_free(t->txq[ok]);
				t->st.tx_dropped++;
				memmove(t->txq + ok, t->txq + ok + 1,
					(n - ok - 1) * sizeof(*t->txq));
				memmove(t->txlen + ok, t->txlen + ok + 1,
					(n - ok - 1) * sizeof(*t->txlen));
				n--;
			}
		}
	}
	for (int tries = 0; sent < n; tries++) {
		uint16_t k = rte_eth_tx_burst(t->port, 0, t->txq + sent, (uint16_t)(n - sent));

		for (uint32_t i = sent; i < sent + k; i++)
			bytes += t->txlen[i];
		sent += k;
		if (sent == n || tries == SL_DPDK_TX_RETRIES)
			break;
		t->info.tx_retries++;
		rte_delay_us_block(1);
	}
	for (uint32_t i = sent; i < n; i++)
		rte_pktmbuf_free(t->txq[i]);
	t->st.tx_dropped += n - sent;
	t->st.tx_packets += sent;
	t->st.tx_bytes += bytes;
	if (sent && t->bell_peer)
		bell_ring(t->bell_peer);
	if (t->zc)
		zc_wait(t);
	return (int)sent;
}

/* One received packet: deliver it (1) or count why not (0). */
static int rx_one(struct sl_dpdk *t, struct rte_mbuf *m, sl_rx_fn fn, void *arg)
{
	const uint8_t *data;
	struct sl_pkt pkt;
	uint32_t len;
	int verified = 0;
	uint32_t from;

	if (m->nb_segs > 1) {
		len = rte_pktmbuf_pkt_len(m);
		if (len > t->lin_cap) {
			t->info.rx_oversize++;
			t->st.rx_dropped++;
			return 0;
		}
		data = rte_pktmbuf_read(m, 0, len, t->lin);
		if (data == NULL) {
			t->info.rx_malformed++;
			t->st.rx_dropped++;
			return 0;
		}
		t->info.rx_chained++;
	} else {
		len = rte_pktmbuf_data_len(m);
		data = rte_pktmbuf_mtod(m, const uint8_t *);
	}
	if (t->rx_csum) {
		uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
		uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

		if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD || l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
			t->info.rx_bad_csum++;
			t->st.rx_dropped++;
			return 0;
		}
		if (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
			verified |= SL_ENCAP_IP_CSUM_OK;
		if (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
			verified |= SL_ENCAP_UDP_CSUM_OK;
	}
	if (sl_encap_parse(data, len, verified, &pkt) < 0) {
		sl_debug("%s: dropped: %s", t->where, sl_err_msg());
		t->info.rx_malformed++;
		t->st.rx_dropped++;
		return 0;
	}
	switch (pkt.kind) {
	case SL_PKT_UDP:
		if (pkt.dst.ip != t->self.ip || pkt.dst.port != t->self.port ||
		    memcmp(pkt.dst.mac, t->self.mac, 6) != 0)
			break;
		from = peer_by_addr(t, pkt.src.ip, pkt.src.port);
		if (from == 0)
			t->info.rx_unknown++;
		t->st.rx_packets++;
		t->st.rx_bytes += pkt.payload_len;
		fn(arg, from, pkt.payload, pkt.payload_len);
		return 1;
	case SL_PKT_ARP_REQUEST:
		arp_learn(t, &pkt.src);
		/* Answer for our IP, to a unicast sender address only. */
		if (pkt.dst.ip == t->self.ip && !(pkt.src.mac[0] & 1) &&
		    !mac_is_zero(pkt.src.mac)) {
			uint8_t reply[SL_ETH_MIN];
			int n = sl_arp_reply(reply, sizeof(reply), &t->self, &pkt.src);

			if (n > 0) {
				send_raw(t, reply, (size_t)n);
				t->st.arp_replies++;
			}
		}
		return 0;
	case SL_PKT_ARP_REPLY:
		arp_learn(t, &pkt.src);
		return 0;
	default:
		break;
	}
	t->info.rx_not_ours++;
	t->st.rx_dropped++;
	return 0;
}

static int dpdk_poll(struct sl_transport *tt, sl_rx_fn fn, void *arg, unsigned budget)
{
	struct sl_dpdk *t = to_dpdk(tt);
	unsigned delivered = 0;

	if (t->bell_own)
		bell_disarm(t->bell_own);
	while (t->held_at < t->n_held && delivered < budget) {
		struct rte_mbuf *m = t->held[t->held_at++];

		delivered += (unsigned)rx_one(t, m, fn, arg);
		rte_pktmbuf_free(m);
	}
	if (t->held_at < t->n_held)
		return (int)delivered;
	t->n_held = t->held_at = 0;
	for (int round = 0; round < SL_DPDK_POLL_ROUNDS && delivered < budget; round++) {
		uint16_t want =
		    (uint16_t)(budget - delivered < t->rx_batch ? budget - delivered : t->rx_batch);
		uint16_t n = rte_eth_rx_burst(t->port, 0, t->rxq, want);

		for (uint16_t i = 0; i < n; i++) {
			delivered += (unsigned)rx_one(t, t->rxq[i], fn, arg);
			rte_pktmbuf_free(t->rxq[i]);
		}
		if (n < want)
			break;
	}
	return (int)delivered;
}

/* Arm the bell, then look at the ring once more: a frame a sender put there
 * before it could see the bell armed is held for the next poll. */
static int dpdk_wait_fd(struct sl_transport *tt)
{
	struct sl_dpdk *t = to_dpdk(tt);
	struct sl_dpdk_doorbell *d = t->bell_own;

	if (d == NULL)
		return -EOPNOTSUPP;
	if (t->n_held > t->held_at || (d->rung && !bell_read(d)))
		return -EAGAIN;
	/* A node's links share its bell (a mesh sleeps on one fd): when an
	 * earlier link armed it for this sleep, arming again would hide a
	 * sender that took the arming since; the poll would then find its
	 * bell still armed, leave its ring unread, and every later sleep
	 * would end at once on the stale count. Such a sender's frame is
	 * coming: no sleep. */
	if (d->owner_armed) {
		if (!atomic_load(&d->armed))
			return -EAGAIN;
	} else {
		atomic_store(&d->armed, 1);
		d->owner_armed = 1;
	}
	atomic_thread_fence(memory_order_seq_cst);
	t->n_held = rte_eth_rx_burst(t->port, 0, t->held, (uint16_t)t->rx_batch);
	t->held_at = 0;
	return t->n_held ? -EAGAIN : d->fd;
}

static void dpdk_stats(const struct sl_transport *tt, struct sl_transport_stats *out)
{
	*out = ((const struct sl_dpdk *)tt)->st;
}

int sl_dpdk_info(const struct sl_transport *tt, struct sl_dpdk_info *out)
{
	const struct sl_dpdk *t = (const struct sl_dpdk *)tt;

	if (tt == NULL || tt->ops != &dpdk_ops)
		return sl_err_set(EINVAL, "dpdk: not a DPDK transport");
	*out = t->info;
	out->port_id = t->port;
	snprintf(out->name, sizeof(out->name), "%s", t->name);
	snprintf(out->driver, sizeof(out->driver), "%s", t->driver);
	memcpy(out->mac, t->self.mac, 6);
	out->mtu = t->mtu;
	out->data_room = t->data_room;
	out->rx_scatter = t->rx_scatter;
	out->tx_multi_seg = t->tx_multi_seg;
	out->csum_offload = t->csum_offload;
	out->rx_csum_offload = t->rx_csum;
	out->zero_copy = t->zero_copy;
	out->promiscuous = t->promisc;
	{
		struct rte_eth_link link;

		memset(&link, 0, sizeof(link));
		out->link_up = rte_eth_link_get_nowait(t->port, &link) == 0 &&
			       link.link_status == RTE_ETH_LINK_UP;
	}
	return 0;
}

/* A pool with mbufs still out (in a peer's ring, or held by a driver) must
 * outlive us: leak it rather than let them return into freed memory. */
static void pool_release(struct rte_mempool *mp)
{
	if (mp == NULL)
		return;
	if (rte_mempool_in_use_count(mp) == 0)
		rte_mempool_free(mp);
	else
		sl_debug("dpdk: pool %s kept: %u mbufs still out", mp->name,
			 rte_mempool_in_use_count(mp));
}

struct stop_req {
	uint16_t port;
	uint32_t done;
};

static void stop_cb(void *arg)
{
	struct stop_req *r = arg;

	rte_eth_dev_stop(r->port);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

/* memif runs its control channel in EAL's interrupt thread, and a
 * disconnect there (the peer went away) is not safe against dev_stop's own
 * disconnect from another thread: with both ends in one process, closing
 * one end while stopping the other crashed the interrupt thread. So stop a
 * memif port from that thread too (an EAL alarm), waiting a bounded time;
 * anything else, or if that fails, is stopped here. */
static void port_stop(const struct sl_dpdk *t)
{
	struct stop_req r = {t->port, 0};
	uint64_t deadline;

	if (strcmp(t->driver, "net_memif") != 0 || rte_eal_alarm_set(1, stop_cb, &r) != 0) {
		rte_eth_dev_stop(t->port);
		return;
	}
	deadline = rte_get_timer_cycles() + rte_get_timer_hz(); /* 1 s */
	while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) && rte_get_timer_cycles() < deadline)
		rte_delay_us_sleep(100);
	/* Cancel it if it has not run; if it is running, this waits for it:
	 * either way `r` is ours again after the call. */
	rte_eal_alarm_cancel(stop_cb, &r);
	if (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE))
		rte_eth_dev_stop(t->port);
}

static void dpdk_free(struct sl_dpdk *t)
{
	for (uint32_t i = 0; i < t->tx_n; i++)
		rte_pktmbuf_free(t->txq[i]);
	t->tx_n = 0;
	while (t->held_at < t->n_held)
		rte_pktmbuf_free(t->held[t->held_at++]);
	if (t->started) {
		/* Free what waits in our RX queue: on net_ring those mbufs are
		 * the peer's, and its pool must see them again. */
		for (int r = 0; r < SL_DPDK_DRAIN_ROUNDS && t->rxq; r++) {
			uint16_t n = rte_eth_rx_burst(t->port, 0, t->rxq, (uint16_t)t->rx_batch);

			for (uint16_t i = 0; i < n; i++)
				rte_pktmbuf_free(t->rxq[i]);
			if (n == 0)
				break;
		}
		port_stop(t);
	}
	if (t->created) {
		/* A virtual device is removed with its port, so a later
		 * transport can hot-plug it again from its eal_args; a PCI
		 * device stays probed, its port closed. (A create that failed
		 * leaves the device as it was, stopped, for another try.) */
		if (!t->is_vdev || t->dev == NULL || rte_dev_remove(t->dev) != 0)
			rte_eth_dev_close(t->port);
	}
	pool_release(t->pool);
	pool_release(t->zc_pool);
	if (t->zc && __atomic_load_n(&t->zc->outstanding, __ATOMIC_ACQUIRE) == 0)
		free(t->zc);
	free(t->txq);
	free(t->txlen);
	free(t->rxq);
	free(t->held);
	free(t->lin);
	pthread_mutex_lock(&dpdk_lock);
	port_taken[t->port] = 0;
	pthread_mutex_unlock(&dpdk_lock);
	free(t);
}

static void dpdk_destroy(struct sl_transport *tt)
{
	if (tt != NULL)
		dpdk_free(to_dpdk(tt));
}

static const struct sl_transport_ops dpdk_ops = {
    .name = "dpdk",
    .send = dpdk_send,
    .flush = dpdk_flush,
    .poll = dpdk_poll,
    .stats = dpdk_stats,
    .destroy = dpdk_destroy,
    .wait_fd = dpdk_wait_fd,
};

/* ---- create ---- */

static int check_config(const struct sl_transport_config *c)
{
	if (c == NULL)
		return sl_err_set(EINVAL, "dpdk: no config");
	if (c->n_peers > SL_NODES_MAX)
		return sl_err_set(EINVAL, "dpdk: %u peers, limit %d", c->n_peers, SL_NODES_MAX);
	if (c->self.ip == 0 || c->self.port == 0)
		return sl_err_set(EINVAL, "dpdk: our own IPv4 address and UDP port are needed");
	if (c->mtu && (c->mtu < SL_DPDK_MTU_MIN || c->mtu > SL_DPDK_MTU_MAX))
		return sl_err_set(EINVAL, "dpdk: MTU %u outside %d..%d", c->mtu, SL_DPDK_MTU_MIN,
				  SL_DPDK_MTU_MAX);
	if (c->rx_batch > SL_DPDK_RX_MAX || c->tx_queue > SL_DPDK_TX_MAX)
		return sl_err_set(EINVAL, "dpdk: rx_batch %u (limit %d) or tx_queue %u (limit %d)",
				  c->rx_batch, SL_DPDK_RX_MAX, c->tx_queue, SL_DPDK_TX_MAX);
	for (uint32_t i = 0; i < c->n_peers; i++) {
		if (c->peers[i].node_id == 0 || c->peers[i].ep.ip == 0 || c->peers[i].ep.port == 0)
			return sl_err_set(EINVAL, "dpdk: peer %u needs a node id, IP and port", i);
		for (uint32_t j = 0; j < i; j++)
			if (c->peers[j].node_id == c->peers[i].node_id)
				return sl_err_set(EINVAL, "dpdk: node %u listed twice",
						  c->peers[i].node_id);
	}
	return 0;
}

static int claim_port(uint16_t port)
{
	char names[256] = "";
	size_t len = 0;
	uint16_t p;

	if (!rte_eth_dev_is_valid_port(port)) {
		RTE_ETH_FOREACH_DEV(p)
		{
			char n[RTE_ETH_NAME_MAX_LEN];

			if (rte_eth_dev_get_name_by_port(p, n) == 0 && len < sizeof(names))
				len += (size_t)snprintf(names + len, sizeof(names) - len, " %u=%s",
							p, n);
		}
		return sl_err_set(ENODEV, "dpdk port %u: no such port (ports:%s)", port,
				  len ? names : " none");
	}
	pthread_mutex_lock(&dpdk_lock);
	if (port_taken[port]) {
		pthread_mutex_unlock(&dpdk_lock);
		return sl_err_set(EBUSY, "dpdk port %u: already driven by another transport", port);
	}
	port_taken[port] = 1;
	pthread_mutex_unlock(&dpdk_lock);
	return 0;
}

/* Decide zero-copy, offloads, scatter and the data room from what the port
 * offers. */
static void choose_paths(struct sl_dpdk *t, const struct rte_eth_dev_info *di,
			 const struct sl_dpdk_opts *o)
{
	const struct rte_bus *bus = rte_dev_bus(di->device);
	const struct rte_devargs *da = rte_dev_devargs(di->device);
	uint32_t max_frame = t->mtu + SL_ETH_HDR;

	t->is_vdev = bus != NULL && strcmp(rte_bus_name(bus), "vdev") == 0;
	t->tx_multi_seg = (di->tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0;
	t->csum_offload = !o->no_csum_offload &&
			  (di->tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) &&
			  (di->tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
	t->rx_csum = !o->no_csum_offload && (di->rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) &&
		     (di->rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
	t->data_room = RTE_MBUF_DEFAULT_DATAROOM;
	if (max_frame + SL_DPDK_VLAN > t->data_room) {
		if ((di->rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) && t->tx_multi_seg)
			t->rx_scatter = 1;
		else /* one mbuf per frame: round the room up to 1 KiB */
			t->data_room = (max_frame + SL_DPDK_VLAN + 1023) & ~1023u;
	}
	if (t->data_room < di->min_rx_bufsize)
		t->data_room = di->min_rx_bufsize;
	/* net_ring hands the very mbuf to the peer port, which reads it after
	 * our flush() returned; memif in zero-copy mode only sends mbufs from
	 * its own shared region. Both rule out buffers that are the caller's. */
	t->zero_copy = !o->no_zero_copy && t->tx_multi_seg && strcmp(t->driver, "net_ring") != 0 &&
		       !(strcmp(t->driver, "net_memif") == 0 && da != NULL && da->args != NULL &&
			 strstr(da->args, "zero-copy=yes") != NULL);
	t->zc_min = o->zc_min ? o->zc_min : SL_DPDK_ZC_MIN_DEFAULT;
}

static int setup_pools(struct sl_dpdk *t, uint32_t n, int socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	unsigned seq, cache = n / 8 < 256 ? n / 8 : 256;

	pthread_mutex_lock(&dpdk_lock);
	seq = pool_seq++;
	pthread_mutex_unlock(&dpdk_lock);
	snprintf(name, sizeof(name), "sl%u_%u", t->port, seq);
	/* LIFO: the node threads are not EAL lcores, so they get no
	 * per-lcore cache, and the default ring hands out the least recently
	 * freed mbuf: every frame a cold one, cycling through the pool's
	 * megabytes. A stack hands back the one just freed. */
	t->pool = rte_pktmbuf_pool_create_by_ops(
	    name, n, cache, 0, (uint16_t)(t->data_room + RTE_PKTMBUF_HEADROOM), socket, "stack");
	if (t->pool == NULL)
		t->pool = rte_pktmbuf_pool_create(
		    name, n, cache, 0, (uint16_t)(t->data_room + RTE_PKTMBUF_HEADROOM), socket);
	if (t->pool == NULL)
		return sl_err_set(rte_errno ? rte_errno : ENOMEM,
				  "%s: mbuf pool of %u x %u bytes: %s", t->where, n,
				  t->data_room + RTE_PKTMBUF_HEADROOM, rte_strerror(rte_errno));
	if (!t->zero_copy)
		return 0;
	/* Header and external-buffer mbufs: two per queued frame, plus a
	 * few the driver may still hold; flush() waits for those. */
	n = 2 * t->tx_cap + 64;
	snprintf(name, sizeof(name), "slz%u_%u", t->port, seq);
	t->zc_pool = rte_pktmbuf_pool_create(name, n, n / 8 < 64 ? n / 8 : 64, 0,
					     RTE_PKTMBUF_HEADROOM + SL_DPDK_ZC_HDR_ROOM, socket);
	t->zc = calloc(1, sizeof(*t->zc) + t->tx_cap * sizeof(t->zc->slot[0]));
	if (t->zc_pool == NULL || t->zc == NULL)
		return sl_err_set(ENOMEM, "%s: zero-copy pool of %u mbufs: %s", t->where, n,
				  rte_strerror(rte_errno));
	t->zc->n = t->tx_cap;
	for (uint32_t i = 0; i < t->tx_cap; i++)
		t->zc->slot[i].zc = t->zc;
	return 0;
}

static int setup_mac(struct sl_dpdk *t)
{
	struct rte_ether_addr pm, want;
	int rc;

	rc = rte_eth_macaddr_get(t->port, &pm);
	if (rc < 0)
		return sl_err_set(-rc, "%s: rte_eth_macaddr_get: %s", t->where, rte_strerror(-rc));
	if (mac_is_zero(t->self.mac)) {
		if (!mac_is_zero(pm.addr_bytes)) {
			memcpy(t->self.mac, pm.addr_bytes, 6);
			return 0;
		}
		/* A port without an address (net_ring): a locally administered
		 * one from our IP, unique wherever the IPs are. */
		t->self.mac[0] = 0x02;
		t->self.mac[1] = 0x00;
		memcpy(t->self.mac + 2, &t->self.ip, 4);
	}
	if (memcmp(pm.addr_bytes, t->self.mac, 6) == 0)
		return 0;
	memcpy(want.addr_bytes, t->self.mac, 6);
	rc = rte_eth_dev_default_mac_addr_set(t->port, &want);
	if (rc < 0) {
		/* Receive everything and filter on our MAC ourselves. */
		sl_debug("%s: cannot set MAC (%s): promiscuous", t->where, rte_strerror(-rc));
		t->promisc = 1;
	}
	return 0;
}

static int setup_port(struct sl_dpdk *t, const struct rte_eth_dev_info *di, uint32_t mbufs)
{
	struct rte_eth_conf conf;
	uint16_t nb_rxd = SL_DPDK_DESC, nb_txd = SL_DPDK_DESC;
	int socket = rte_eth_dev_socket_id(t->port);
	uint32_t need;
	int rc;

	if (socket < 0)
		socket = (int)rte_socket_id();
	memset(&conf, 0, sizeof(conf));
	conf.rxmode.mtu = t->mtu;
	if (t->rx_scatter)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	if (t->rx_csum)
		conf.rxmode.offloads |=
		    RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	if (t->tx_multi_seg)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	if (t->csum_offload)
		conf.txmode.offloads |=
		    RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	rc = rte_eth_dev_configure(t->port, 1, 1, &conf);
	if (rc < 0)
		return sl_err_set(-rc,
				  "%s: rte_eth_dev_configure (MTU %u; the port allows MTU %u..%u "
				  "and frames up to %u bytes): %s",
				  t->where, t->mtu, di->min_mtu, di->max_mtu, di->max_rx_pktlen,
				  rte_strerror(-rc));
	/* configure set the ethdev's MTU; this also tells drivers that keep
	 * one elsewhere (af_packet: the kernel interface). */
	rc = rte_eth_dev_set_mtu(t->port, (uint16_t)t->mtu);
	if (rc < 0 && rc != -ENOTSUP)
		return sl_err_set(-rc, "%s: rte_eth_dev_set_mtu(%u): %s%s", t->where, t->mtu,
				  rte_strerror(-rc),
				  strcmp(t->driver, "net_af_packet") == 0
				      ? " (af_packet: framesz= must hold the MTU)"
				      : "");
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(t->port, &nb_rxd, &nb_txd);
	if (rc < 0)
		return sl_err_set(-rc, "%s: rte_eth_dev_adjust_nb_rx_tx_desc: %s", t->where,
				  rte_strerror(-rc));
	/* Every RX descriptor holds an mbuf, the TX ring and our queue hold
	 * more, one RX burst is out while we process it, and per-lcore caches
	 * keep some: ask for at least all of that. */
	need = nb_rxd + nb_txd + t->tx_cap + t->rx_batch + 256 + 64;
	if (mbufs < need)
		return sl_err_set(EINVAL,
				  "%s: %u mbufs are too few for %u RX + %u TX "
				  "descriptors and a %u-frame queue: use at least %u",
				  t->where, mbufs, nb_rxd, nb_txd, t->tx_cap, need);
	rc = setup_pools(t, mbufs, socket);
	if (rc < 0)
		return rc;
	rc = rte_eth_rx_queue_setup(t->port, 0, nb_rxd, (unsigned)socket, NULL, t->pool);
	if (rc < 0)
		return sl_err_set(-rc,
				  "%s: rte_eth_rx_queue_setup (%u descriptors, %u-byte mbufs): %s",
				  t->where, nb_rxd, t->data_room, rte_strerror(-rc));
	rc = rte_eth_tx_queue_setup(t->port, 0, nb_txd, (unsigned)socket, NULL);
	if (rc < 0)
		return sl_err_set(-rc, "%s: rte_eth_tx_queue_setup (%u descriptors): %s", t->where,
				  nb_txd, rte_strerror(-rc));
	rc = setup_mac(t);
	if (rc < 0)
		return rc;
	rc = rte_eth_dev_start(t->port);
	if (rc < 0)
		return sl_err_set(-rc, "%s: rte_eth_dev_start: %s", t->where, rte_strerror(-rc));
	t->started = 1;
	if (t->promisc) {
		rc = rte_eth_promiscuous_enable(t->port);
		if (rc < 0 && rc != -ENOTSUP)
			return sl_err_set(-rc,
					  "%s: our MAC could not be set, and promiscuous "
					  "mode failed: %s",
					  t->where, rte_strerror(-rc));
	}
	return 0;
}

int sl_dpdk_transport_create_opts(struct sl_transport **out, const struct sl_transport_config *c,
				  const struct sl_dpdk_opts *o)
{
	static const struct sl_dpdk_opts no_opts;
	struct rte_eth_dev_info di;
	struct sl_dpdk *t;
	int rc;

	*out = NULL;
	if (o == NULL)
		o = &no_opts;
	rc = check_config(c);
	if (rc < 0)
		return rc;
	rc = sl_dpdk_eal_init(c->eal_args);
	if (rc < 0)
		return rc;
	rc = claim_port(c->port_id);
	if (rc < 0)
		return rc;
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		pthread_mutex_lock(&dpdk_lock);
		port_taken[c->port_id] = 0;
		pthread_mutex_unlock(&dpdk_lock);
		return sl_err_set(ENOMEM, "dpdk port %u: transport", c->port_id);
	}
	t->base.ops = &dpdk_ops;
	t->port = c->port_id;
	if (rte_eth_dev_get_name_by_port(t->port, t->name) != 0)
		snprintf(t->name, sizeof(t->name), "?");
	snprintf(t->where, sizeof(t->where), "dpdk port %u (%s)", t->port, t->name);
	rc = rte_eth_dev_info_get(t->port, &di);
	if (rc < 0) {
		rc = sl_err_set(-rc, "%s: rte_eth_dev_info_get: %s", t->where, rte_strerror(-rc));
		goto fail;
	}
	snprintf(t->driver, sizeof(t->driver), "%s", di.driver_name ? di.driver_name : "?");
	t->dev = di.device;
	t->self = c->self;
	t->mtu = c->mtu ? c->mtu : 1500;
	t->rx_batch = c->rx_batch ? c->rx_batch : SL_DPDK_RX_BATCH;
	t->tx_cap = c->tx_queue ? c->tx_queue : SL_DPDK_TX_QUEUE;
	t->arp_retry = rte_get_timer_hz() * SL_DPDK_ARP_RETRY_MS / 1000;
	t->n_peers = c->n_peers;
	for (uint32_t i = 0; i < c->n_peers; i++) {
		t->peers[i].node_id = c->peers[i].node_id;
		t->peers[i].ep = c->peers[i].ep;
		t->peers[i].mac_static = !mac_is_zero(c->peers[i].ep.mac);
		t->peers[i].mac_known = t->peers[i].mac_static;
	}
	choose_paths(t, &di, o);
	t->lin_cap = t->mtu + SL_ETH_HDR + SL_DPDK_VLAN;
	t->txq = calloc(t->tx_cap, sizeof(*t->txq));
	t->txlen = calloc(t->tx_cap, sizeof(*t->txlen));
	t->rxq = calloc(t->rx_batch, sizeof(*t->rxq));
	t->held = calloc(t->rx_batch, sizeof(*t->held));
	t->lin = malloc(t->lin_cap);
	if (t->txq == NULL || t->txlen == NULL || t->rxq == NULL || t->held == NULL ||
	    t->lin == NULL) {
		rc = sl_err_set(ENOMEM, "%s: queues", t->where);
		goto fail;
	}
	rc = setup_port(t, &di, c->mbufs ? c->mbufs : SL_DPDK_MBUFS);
	if (rc < 0)
		goto fail;
	for (uint32_t i = 0; i < t->n_peers; i++)
		if (!t->peers[i].mac_known)
			arp_maybe(t, &t->peers[i]);
	sl_info("%s: driver %s, MTU %u, %u-byte mbufs%s, checksums %s, zero-copy %s%s", t->where,
		t->driver, t->mtu, t->data_room, t->rx_scatter ? " (RX scatter)" : "",
		t->csum_offload ? "offloaded" : "IPv4 in software, UDP none (CRC32C per frame)",
		t->zero_copy ? "on" : "off", t->promisc ? ", promiscuous" : "");
	t->created = 1;
	*out = &t->base;
	return 0;
fail:
	dpdk_free(t);
	return rc;
}

int sl_dpdk_transport_create(struct sl_transport **out, const struct sl_transport_config *c)
{
	return sl_dpdk_transport_create_opts(out, c, NULL);
}
