/* A transport made of point-to-point links: one sub-transport per peer
 * (e.g. a DPDK memif or veth pair per link, which carry exactly two ends), so
 * that a node reaches every peer as a full mesh of cables would. send() goes
 * to the link of the addressed peer; poll() visits every link in turn; the
 * stats are the sum. */
#ifndef SHIPLOG_MESH_H
#define SHIPLOG_MESH_H

#include "shiplog/transport.h"

/* Take `n` sub-transports (1..SL_NODES_MAX), link i reaching node ids[i].
 * On success the mesh owns them (its destroy destroys them); on failure
 * the caller still does. 0 or -errno. */
int sl_mesh_create(struct sl_transport **out, struct sl_transport *const *links,
		   const uint32_t *ids, unsigned n);

/* The sub-transport that reaches node `id`, or NULL (for link details). */
struct sl_transport *sl_mesh_link(struct sl_transport *t, uint32_t id);

#endif
