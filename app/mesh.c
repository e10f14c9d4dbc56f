/* A transport of point-to-point links; see include/shiplog/mesh.h. */
#include "shiplog/mesh.h"

#include <errno.h>
#include <stdlib.h>

#include "shiplog/err.h"

struct sl_mesh {
	struct sl_transport t; /* first: the transport callers see */
	unsigned n;
	unsigned next; /* link polled first next time, so none starves */
	uint32_t ids[SL_NODES_MAX];
	struct sl_transport *links[SL_NODES_MAX];
};

static struct sl_mesh *mesh_of(struct sl_transport *t)
{
	return (struct sl_mesh *)t;
}

static int mesh_send(struct sl_transport *t, uint32_t to, const uint8_t *frame, size_t len)
{
	struct sl_transport *l = sl_mesh_link(t, to);

	if (!l)
		return sl_err_set(ENOENT, "mesh: no link to node %u", to);
	return l->ops->send(l, to, frame, len);
}

/* Every link is flushed even when one fails; the first error is returned. */
static int mesh_flush(struct sl_transport *t)
{
	struct sl_mesh *m = mesh_of(t);
	int rc = 0;

	for (unsigned i = 0; i < m->n; i++) {
		int r = m->links[i]->ops->flush(m->links[i]);

		if (r < 0 && rc == 0)
			rc = r;
	}
	return rc;
}

static int mesh_poll(struct sl_transport *t, sl_rx_fn fn, void *arg, unsigned budget)
{
	struct sl_mesh *m = mesh_of(t);
	unsigned got = 0;

	for (unsigned k = 0; k < m->n && got < budget; k++) {
		struct sl_transport *l = m->links[(m->next + k) % m->n];
		int r = l->ops->poll(l, fn, arg, budget - got);

		if (r < 0)
			return got ? (int)got : r;
		got += (unsigned)r;
	}
	m->next = (m->next + 1) % m->n;
	return (int)got;
}

static void mesh_stats(const struct sl_transport *t, struct sl_transport_stats *out)
{
	const struct sl_mesh *m = (const struct sl_mesh *)t;

	*out = (struct sl_transport_stats){0};
	for (unsigned i = 0; i < m->n; i++) {
		struct sl_transport_stats s;

		m->links[i]->ops->stats(m->links[i], &s);
		out->rx_packets += s.rx_packets;
		out->rx_bytes += s.rx_bytes;
		out->tx_packets += s.tx_packets;
		out->tx_bytes += s.tx_bytes;
		out->rx_dropped += s.rx_dropped;
		out->tx_dropped += s.tx_dropped;
		out->arp_replies += s.arp_replies;
	}
}

static void mesh_destroy(struct sl_transport *t)
{
	struct sl_mesh *m = mesh_of(t);

	for (unsigned i = 0; i < m->n; i++)
		m->links[i]->ops->destroy(m->links[i]);
	free(m);
}

/* One fd for the whole mesh: its links must share it (a doorbell per node,
 * sl_dpdk_set_doorbells); -EAGAIN as soon as one link has frames. */
static int mesh_wait_fd(struct sl_transport *t)
{
	struct sl_mesh *m = mesh_of(t);
	int fd = -EOPNOTSUPP;

	for (unsigned i = 0; i < m->n; i++) {
		struct sl_transport *l = m->links[i];
		int r = l->ops->wait_fd ? l->ops->wait_fd(l) : -EOPNOTSUPP;

		if (r < 0 || (i > 0 && r != fd))
			return r == -EAGAIN ? r : -EOPNOTSUPP;
		fd = r;
	}
	return fd;
}

static const struct sl_transport_ops mesh_ops = {
    .name = "mesh",
    .send = mesh_send,
    .flush = mesh_flush,
    .poll = mesh_poll,
    .stats = mesh_stats,
    .destroy = mesh_destroy,
    .wait_fd = mesh_wait_fd,
};

int sl_mesh_create(struct sl_transport **out, struct sl_transport *const *links,
		   const uint32_t *ids, unsigned n)
{
	struct sl_mesh *m;

	if (n < 1 || n > SL_NODES_MAX)
		return sl_err_set(EINVAL, "mesh of %u links: want 1..%d", n, SL_NODES_MAX);
	m = calloc(1, sizeof(*m));
	if (!m)
		return sl_err_set(ENOMEM, "mesh transport");
	m->t.ops = &mesh_ops;
	m->n = n;
	for (unsigned i = 0; i < n; i++) {
		m->links[i] = links[i];
		m->ids[i] = ids[i];
	}
	*out = &m->t;
	return 0;
}

struct sl_transport *sl_mesh_link(struct sl_transport *t, uint32_t id)
{
	struct sl_mesh *m = mesh_of(t);

	for (unsigned i = 0; i < m->n; i++)
		if (m->ids[i] == id)
			return m->links[i];
	return NULL;
}
