/* Point-to-point DPDK links for the in-process cluster; see
 * cluster_links.h. Why links and not one port per node: a memif interface
 * and a veth pair each join exactly two ends, so a leader that must reach
 * two followers needs two ports, as it would need two cables without a
 * switch. A software switch would add a hop (and a polling thread on a
 * two-core machine) that a real deployment does not have. */
#include "cluster_links.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/dpdk.h"
#include "shiplog/err.h"
#include "shiplog/log.h"
#include "shiplog/mesh.h"
#include "shiplog/node.h"

#define LINK_UP_NS    10000000000ull /* memif connects from EAL's interrupt thread */
#define LINK_PORT     7000
#define EAL_MEMORY_MB 1024
/* af_packet RX ring frames per port (the PMD defaults to 512, 11 batches of
 * 64 KiB: a follower thread descheduled for a moment overflowed it, and
 * every dropped frame cost a NAK and a retransmission). */
#define AF_PACKET_FRAMES 4096
/* memif rings of 2^12 slots (the PMD's default 2^10) for the same reason. */
#define MEMIF_RING_LOG2 12

extern char **environ;

/* Ports are created one at a time: hot-plug and port start go through
 * EAL's shared state, and the node threads open at once. */
static pthread_mutex_t links_lock = PTHREAD_MUTEX_INITIALIZER;

/* EAL pins the thread that initialises it to its main lcore's CPU; every
 * thread started from it afterwards would inherit that one CPU. Put the
 * caller's affinity back. */
static int eal_up(void)
{
	static int up;
	char args[256];
	cpu_set_t saved;
	int have = sched_getaffinity(0, sizeof(saved), &saved) == 0, rc;

	if (up)
		return 0;
	snprintf(args, sizeof(args),
		 "-l 0 --no-huge -m %d --no-pci --file-prefix shiplog-%d --log-level=*:error",
		 EAL_MEMORY_MB, (int)getpid());
	rc = sl_dpdk_eal_init(args);
	if (have)
		sched_setaffinity(0, sizeof(saved), &saved);
	if (rc < 0)
		return sl_err_wrap(rc, "DPDK EAL");
	up = 1;
	return 0;
}

/* Run `ip` with these arguments (no shell); 0 when it exits 0. */
static int run_ip(char *const argv[])
{
	pid_t pid;
	int status, rc = posix_spawnp(&pid, "ip", NULL, NULL, argv, environ);

	if (rc)
		return sl_err_set(rc, "running ip: %s", strerror(rc));
	if (waitpid(pid, &status, 0) < 0)
		return sl_err_set(errno, "waiting for ip: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return sl_err_set(EIO, "ip %s %s %s %s: failed (needs root)", argv[1], argv[2],
				  argv[3], argv[4] ? argv[4] : "");
	return 0;
}

static int link_vdev(const struct sl_cluster_links *l, uint32_t self, uint32_t peer, char *name,
		     size_t ncap, char *args, size_t acap);

/* All memif devices are hot-plugged here, servers first, so that the node
 * threads only find and start their ports (see sl_cluster_links_mesh for
 * the order in which they start). */
static int memif_plug_all(const struct sl_cluster_links *l)
{
	for (int servers = 1; servers >= 0; servers--)
		for (uint32_t self = 1; self <= l->nodes; self++)
			for (uint32_t peer = 1; peer <= l->nodes; peer++) {
				char name[48], args[PATH_MAX + 128];
				int rc;

				if (peer == self || (self < peer) != servers)
					continue;
				rc = link_vdev(l, self, peer, name, sizeof(name), args,
					       sizeof(args));
				if (rc == 0)
					rc = sl_dpdk_eal_init(args);
				if (rc < 0)
					return sl_err_wrap(rc, "memif device %s", name);
			}
	return 0;
}

static void veth_name(const struct sl_cluster_links *l, uint32_t self, uint32_t peer, char *out,
		      size_t cap)
{
	snprintf(out, cap, "s%s_%u_%u", l->tag, self, peer); /* at most 15 characters */
}

static void netns_name(const struct sl_cluster_links *l, uint32_t node, char *out, size_t cap)
{
	snprintf(out, cap, "shiplog-%s-n%u", l->tag, node);
}

/* Node `node`'s network namespace, made once. */
static int netns_make(struct sl_cluster_links *l, uint32_t node)
{
	char ns[32];
	char *add[] = {"ip", "netns", "add", ns, NULL};
	int rc;

	if (l->netns_made[node])
		return 0;
	netns_name(l, node, ns, sizeof(ns));
	if ((rc = run_ip(add)))
		return rc;
	l->netns_made[node] = 1;
	return 0;
}

/* The veth pair of link {a, b}: each end in its node's namespace, up. */
static int veth_make(struct sl_cluster_links *l, uint32_t a, uint32_t b)
{
	char na[16], nb[16], sa[32], sb[32];
	char *add[] = {"ip",   "link", "add",  na, "netns", sa, "type",
		       "veth", "peer", "name", nb, "netns", sb, NULL};
	char *up_a[] = {"ip", "-n", sa, "link", "set", na, "up", NULL};
	char *up_b[] = {"ip", "-n", sb, "link", "set", nb, "up", NULL};
	int rc;

	veth_name(l, a, b, na, sizeof(na));
	veth_name(l, b, a, nb, sizeof(nb));
	netns_name(l, a, sa, sizeof(sa));
	netns_name(l, b, sb, sizeof(sb));
	if ((rc = netns_make(l, a)) || (rc = netns_make(l, b)) || (rc = run_ip(add)))
		return rc;
	l->made[a][b] = 1;
	if ((rc = run_ip(up_a)) || (rc = run_ip(up_b)))
		return rc;
	return 0;
}

/* Run fn in node's namespace (this thread only), then come back. The
 * af_packet port opens its socket, and so binds to its veth end, while
 * it is hot-plugged; the socket stays in that namespace afterwards. */
static int in_netns(const struct sl_cluster_links *l, uint32_t node, int (*fn)(void *), void *arg)
{
	char ns[32], path[64];
	int own, fd, rc;

	netns_name(l, node, ns, sizeof(ns));
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	if ((own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		return sl_err_set(errno, "opening this thread's network namespace: %s",
				  strerror(errno));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || setns(fd, CLONE_NEWNET) < 0) {
		rc = sl_err_set(errno, "entering network namespace %s: %s", ns, strerror(errno));
		if (fd >= 0)
			close(fd);
		close(own);
		return rc;
	}
	close(fd);
	rc = fn(arg);
	if (setns(own, CLONE_NEWNET) < 0) {
		/* The thread would go on in the wrong namespace: no way on. */
		sl_error("cluster: leaving network namespace %s: %s", ns, strerror(errno));
		abort();
	}
	close(own);
	return rc;
}

int sl_cluster_links_prepare(struct sl_cluster_links *l, enum sl_cluster_net net, unsigned nodes,
			     const char *dir)
{
	int rc;

	memset(l, 0, sizeof(*l));
	l->net = net;
	l->nodes = nodes;
	for (uint32_t n = 0; n <= SL_NODES_MAX; n++)
		l->bell[n].fd = -1;
	for (uint32_t n = 1; net == SL_CLUSTER_MEMIF && n <= nodes; n++)
		if ((rc = sl_dpdk_doorbell_init(&l->bell[n])))
			return rc;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->sync_ready = 1;
	snprintf(l->tag, sizeof(l->tag), "%04x", (unsigned)getpid() & 0xffff);
	if (net == SL_CLUSTER_MEMIF) {
		if (snprintf(l->dir, sizeof(l->dir), "%s/memif", dir) >= (int)sizeof(l->dir))
			return sl_err_set(ENAMETOOLONG, "memif directory under %s", dir);
		if (mkdir(l->dir, 0700) < 0 && errno != EEXIST)
			return sl_err_set(errno, "creating %s: %s", l->dir, strerror(errno));
	}
	if (net == SL_CLUSTER_AF_PACKET)
		for (uint32_t a = 1; a <= nodes; a++)
			for (uint32_t b = a + 1; b <= nodes; b++)
				if ((rc = veth_make(l, a, b)))
					return sl_err_wrap(rc, "veth pair for link %u-%u", a, b);
	pthread_mutex_lock(&links_lock);
	rc = eal_up();
	if (rc == 0 && net == SL_CLUSTER_MEMIF)
		rc = memif_plug_all(l);
	pthread_mutex_unlock(&links_lock);
	return rc;
}

void sl_cluster_links_cleanup(struct sl_cluster_links *l)
{
	/* A namespace takes its veth ends along. */
	for (uint32_t n = 1; n <= l->nodes; n++) {
		char ns[32];
		char *del[] = {"ip", "netns", "del", ns, NULL};

		if (!l->netns_made[n])
			continue;
		netns_name(l, n, ns, sizeof(ns));
		if (run_ip(del) < 0)
			sl_warn("cluster: could not delete network namespace %s: %s", ns,
				sl_err_msg());
		l->netns_made[n] = 0;
	}
	memset(l->made, 0, sizeof(l->made));
	for (uint32_t n = 0; n <= SL_NODES_MAX; n++)
		sl_dpdk_doorbell_close(&l->bell[n]);
	if (l->dir[0])
		rmdir(l->dir); /* the sockets went with their servers */
	if (l->sync_ready) {
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->cond);
		l->sync_ready = 0;
	}
}

static struct sl_endpoint link_end(uint32_t self, uint32_t peer)
{
	struct sl_endpoint e = {
	    .mac = {0x02, 0x53, 0x4c, 0x00, (uint8_t)self, (uint8_t)peer},
	    .ip = htonl((10u << 24) | (83u << 16) | (self << 8) | peer),
	    .port = (uint16_t)(LINK_PORT + self),
	};

	return e;
}

/* The ethdev name and devargs of self's end of link {self, peer}. The
 * lower id is the memif server. */
static int link_vdev(const struct sl_cluster_links *l, uint32_t self, uint32_t peer, char *name,
		     size_t ncap, char *args, size_t acap)
{
	uint32_t lo = self < peer ? self : peer, hi = self ^ peer ^ lo;
	int n;

	if (l->net == SL_CLUSTER_MEMIF) {
		snprintf(name, ncap, "net_memif%u_%u", self, peer);
		n = snprintf(args, acap, "--vdev=%s,role=%s,socket=%s/link%u_%u.sock,id=0,rsize=%u",
			     name, self == lo ? "server" : "client", l->dir, lo, hi,
			     MEMIF_RING_LOG2);
	} else {
		char veth[16];

		veth_name(l, self, peer, veth, sizeof(veth));
		snprintf(name, ncap, "net_af_packet%u_%u", self, peer);
		n = snprintf(args, acap, "--vdev=%s,iface=%s,framecnt=%u", name, veth,
			     AF_PACKET_FRAMES);
	}
	return n < 0 || (size_t)n >= acap ? sl_err_set(ENAMETOOLONG, "devargs for %s", name) : 0;
}

struct port_make {
	const char *name, *args;
	struct sl_transport_config *tc;
	struct sl_transport **out;
};

/* Hot-plug the port (a destroyed port took its device along), find it,
 * make its transport. */
static int port_make(void *arg)
{
	struct port_make *m = arg;
	int rc = sl_dpdk_eal_init(m->args);

	if (rc == 0)
		rc = sl_dpdk_port_by_name(m->name, &m->tc->port_id);
	if (rc == 0)
		rc = sl_dpdk_transport_create_opts(m->out, m->tc, &sl_node_dpdk_opts);
	return rc;
}

int sl_cluster_links_port(struct sl_cluster_links *l, uint32_t self, uint32_t peer,
			  const struct sl_transport_config *c, struct sl_transport **out)
{
	struct sl_transport_config tc = {
	    .self_id = self,
	    .self = link_end(self, peer),
	    .n_peers = 1,
	    .peers[0] = {.node_id = peer, .ep = link_end(peer, self)},
	    .mtu = c->mtu,
	    .rx_batch = c->rx_batch,
	    .tx_queue = c->tx_queue,
	};
	char name[48], args[PATH_MAX + 128];
	struct port_make m = {.name = name, .args = args, .tc = &tc, .out = out};
	int rc;

	if ((rc = link_vdev(l, self, peer, name, sizeof(name), args, sizeof(args))))
		return rc;
	tc.eal_args = args;
	pthread_mutex_lock(&links_lock);
	rc = l->net == SL_CLUSTER_AF_PACKET ? in_netns(l, self, port_make, &m) : port_make(&m);
	pthread_mutex_unlock(&links_lock);
	/* memif's ring writes are done when its burst returns, so a ring
	 * right after it finds the frames there (af_packet's reach the peer
	 * through the kernel later: it keeps the timer). */
	if (rc == 0 && l->net == SL_CLUSTER_MEMIF)
		rc = sl_dpdk_set_doorbells(*out, &l->bell[self], &l->bell[peer]);
	return rc < 0 ? sl_err_wrap(rc, "node %u's end of link %u-%u (%s)", self, self, peer, name)
		      : 0;
}

static void drop_frame(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	(void)arg;
	(void)from;
	(void)frame;
	(void)len;
}

int sl_cluster_links_wait(struct sl_transport *const *t, unsigned n)
{
	struct timespec start, now, pause = {.tv_nsec = 1000000};
	unsigned up = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		up = 0;
		for (unsigned i = 0; i < n; i++) {
			struct sl_dpdk_info info;

			t[i]->ops->poll(t[i], drop_frame, NULL, 64);
			up += sl_dpdk_info(t[i], &info) == 0 && info.link_up;
		}
		if (up == n)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((uint64_t)(now.tv_sec - start.tv_sec) * 1000000000ull + (uint64_t)now.tv_nsec -
			(uint64_t)start.tv_nsec >
		    LINK_UP_NS)
			return sl_err_set(ETIMEDOUT, "%u of %u links up after 10 s", up, n);
		nanosleep(&pause, NULL);
	}
}

/* memif: a client connects once, when its port starts, and stays down for
 * good if its server has not started yet. Count the servers started and
 * let clients wait (bounded) for all of them. */
static int servers_started(struct sl_cluster_links *l, unsigned just_started)
{
	unsigned all = l->nodes * (l->nodes - 1) / 2;
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LINK_UP_NS / 1000000000ull;
	pthread_mutex_lock(&l->lock);
	l->servers_started += just_started;
	pthread_cond_broadcast(&l->cond);
	while (rc == 0 && l->servers_started < all)
		rc = pthread_cond_timedwait(&l->cond, &l->lock, &until);
	pthread_mutex_unlock(&l->lock);
	return rc ? sl_err_set(rc, "memif: %u of %u server ends started after 10 s",
			       l->servers_started, all)
		  : 0;
}

int sl_cluster_links_mesh(struct sl_cluster_links *l, uint32_t self,
			  const struct sl_transport_config *c, struct sl_transport **out)
{
	struct sl_transport *t[SL_NODES_MAX];
	uint32_t ids[SL_NODES_MAX];
	unsigned n = 0;
	int rc = 0;

	/* Server ends (towards higher ids) first, then client ends. */
	for (int servers = 1; servers >= 0 && rc == 0; servers--) {
		for (uint32_t peer = 1; peer <= l->nodes && rc == 0; peer++) {
			if (peer == self || (self < peer) != servers)
				continue;
			rc = sl_cluster_links_port(l, self, peer, c, &t[n]);
			if (rc == 0)
				ids[n++] = peer;
		}
		if (rc == 0 && servers && l->net == SL_CLUSTER_MEMIF)
			rc = servers_started(l, n);
	}
	if (rc == 0)
		rc = sl_cluster_links_wait(t, n);
	if (rc == 0)
		rc = sl_mesh_create(out, t, ids, n);
	if (rc < 0)
		while (n-- > 0)
			t[n]->ops->destroy(t[n]);
	return rc;
}
