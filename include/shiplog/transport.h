/* The transport interface: how a node sends protocol frames to its peers and
 * receives theirs. Implementations: kernel UDP through io_uring (net/udp.c,
 * the default), DPDK (net/dpdk.c), kernel TCP as a baseline (net/tcp.c),
 * and the simulator's network. Frames are
 * opaque bytes here; the protocol validates them. */
#ifndef SHIPLOG_TRANSPORT_H
#define SHIPLOG_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/encap.h"
#include "shiplog/quorum.h" /* SL_NODES_MAX */

struct sl_peer_addr {
	uint32_t node_id;
	struct sl_endpoint ep; /* mac used by DPDK only */
	/* DPDK nodes (app/node.c): the port (ethdev name) that reaches this
	 * peer alone, a point-to-point link such as a memif pair; NULL: the
	 * transport's own port. Transports themselves ignore it. */
	const char *port;
};

struct sl_transport_config {
	uint32_t self_id;
	struct sl_endpoint self;
	uint32_t n_peers; /* every other node */
	struct sl_peer_addr peers[SL_NODES_MAX];
	uint32_t mtu;	   /* IP MTU: 1500 or 9000 */
	uint32_t rx_batch; /* frames per receive poll (default 64) */
	uint32_t tx_queue; /* frames queued before a forced flush (default 256) */
	/* DPDK only. */
	const char *eal_args; /* e.g. "--no-huge -m 256 --file-prefix n1 --vdev net_memif0,..." */
	uint16_t port_id;     /* ethdev port, usually 0 */
	uint32_t mbufs;	      /* mbuf pool size (default 8191) */
};

struct sl_transport_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t rx_dropped;  /* not ours, malformed, unknown sender, ring full */
	uint64_t tx_dropped;  /* could not be queued or sent */
	uint64_t arp_replies; /* DPDK */
};

/* Called for each received frame; `from` is the sender's node id when its
 * address matched a peer, else 0. The bytes are valid during the call only. */
typedef void (*sl_rx_fn)(void *arg, uint32_t from, const uint8_t *frame, size_t len);

struct sl_transport;

struct sl_transport_ops {
	const char *name;
	/* Queue one frame for node `to` (copying or referencing it until
	 * flush). -ENOENT unknown node, -ENOBUFS queue full after a flush. */
	int (*send)(struct sl_transport *t, uint32_t to, const uint8_t *frame, size_t len);
	/* Push queued frames to the wire. */
	int (*flush)(struct sl_transport *t);
	/* Receive up to `budget` frames, calling fn for each; returns how many. */
	int (*poll)(struct sl_transport *t, sl_rx_fn fn, void *arg, unsigned budget);
	void (*stats)(const struct sl_transport *t, struct sl_transport_stats *out);
	void (*destroy)(struct sl_transport *t);
	/* Optional: a file descriptor that turns readable when poll() would
	 * find something, so an idle node can sleep in ppoll() until then;
	 * -EAGAIN when something is there already (poll now). NULL: the
	 * transport cannot be waited for (DPDK polls), and so does a negative
	 * errno other than -EAGAIN (a DPDK port without a doorbell). */
	int (*wait_fd)(struct sl_transport *t);
};

struct sl_transport {
	const struct sl_transport_ops *ops;
};

int sl_udp_transport_create(struct sl_transport **out, const struct sl_transport_config *c);
int sl_dpdk_transport_create(struct sl_transport **out, const struct sl_transport_config *c);
int sl_tcp_transport_create(struct sl_transport **out, const struct sl_transport_config *c);

#endif
