/* Point-to-point links between the nodes of an in-process cluster, for the
 * transports whose ports carry exactly two ends (DPDK net_memif pairs,
 * net_af_packet on veth pairs): node i reaches node j over link {i, j}, one
 * port at each end, and a node's transport is the mesh of its links
 * (shiplog/mesh.h). af_packet: each node has a network namespace of its
 * own (made here, named after the process), holding its ends of the veth
 * pairs, so the links touch nothing outside the run. Addresses are made up
 * per link end:
 *   MAC 02:53:4c:00:i:j, IPv4 10.83.i.j, UDP port 7000 + i.
 * Internal to app/cluster.c. */
#ifndef SHIPLOG_APP_CLUSTER_LINKS_H
#define SHIPLOG_APP_CLUSTER_LINKS_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "shiplog/cluster.h"
#include "shiplog/dpdk.h"
#include "shiplog/transport.h"

struct sl_cluster_links {
	enum sl_cluster_net net;
	unsigned nodes;
	char dir[PATH_MAX];				  /* memif sockets */
	char tag[8];					  /* makes this run's veth names unique */
	uint8_t made[SL_NODES_MAX + 1][SL_NODES_MAX + 1]; /* veth pair {i<j} exists */
	uint8_t netns_made[SL_NODES_MAX + 1];		  /* node i's namespace exists */
	/* memif: client ends start only once every server end has. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned servers_started;
	int sync_ready; /* lock and cond initialised */
	/* memif: node i's doorbell, rung by its peers' sends, so that it can
	 * sleep until a frame arrives (net_memif has no RX interrupts). */
	struct sl_dpdk_doorbell bell[SL_NODES_MAX + 1];
};

/* Bring the process's EAL up (once) and make what the links need: the
 * memif socket directory under `dir`, or the namespaces and veth pairs
 * (root). 0 or
 * -errno. Undo with sl_cluster_links_cleanup, also after a failure. */
int sl_cluster_links_prepare(struct sl_cluster_links *l, enum sl_cluster_net net, unsigned nodes,
			     const char *dir);
void sl_cluster_links_cleanup(struct sl_cluster_links *l);

/* Node `self`'s transport: a mesh of its links to every other node, each
 * link's port hot-plugged and started, returned once every link is up
 * (bounded wait). `c` gives the MTU and queue sizes. Thread-safe. */
int sl_cluster_links_mesh(struct sl_cluster_links *l, uint32_t self,
			  const struct sl_transport_config *c, struct sl_transport **out);

/* Node `self`'s end of link {self, peer} alone. Thread-safe. */
int sl_cluster_links_port(struct sl_cluster_links *l, uint32_t self, uint32_t peer,
			  const struct sl_transport_config *c, struct sl_transport **out);

/* Wait (bounded) until every transport made by sl_cluster_links_port in
 * `t` reports its link up, polling them meanwhile (frames dropped). */
int sl_cluster_links_wait(struct sl_transport *const *t, unsigned n);

#endif
