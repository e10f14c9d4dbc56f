/* An in-process cluster for the demo, the cluster benchmark and the node
 * tests; see include/shiplog/cluster.h.
 *
 * Threads: one per node plus the caller's. Each node is opened, polled and
 * (for a restart) reopened on its own thread; the caller only starts them,
 * waits, and once they have all been joined reads the logs back and closes
 * the nodes. What threads share while running: the stop flag, the number of
 * records appended (the restart trigger) and each follower's delivered LSN
 * (the drain), all atomics; measurement windows are written before the
 * threads pass the start barrier and only read after. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster_breakdown.h"
#include "cluster_writes.h"
#include "cluster_links.h"
#include "shiplog/cluster.h"
#include "shiplog/frame.h"
#include "shiplog/log.h"

#define TS_RING	       (1u << 20) /* append times kept: records outstanding at most */
#define TRACE_RECS     (1u << 20) /* --breakdown: events traced per node at most */
#define WTRACE_RECS    (1u << 18) /* --breakdown: log writes recorded per node at most */
#define APPEND_BURST   1024	  /* appends between two polls of the leader */
#define PROGRESS_NS    1000000000ull
#define CLIENT_LOOK_NS 50000ull /* an idle leader looks at the client rings this often */
#define CLUSTER_BASE   "/var/tmp"
#define STREAM_ID      1
#define LEADER_ID      1

static const uint8_t cluster_id[16] = "shiplog-cluster";

struct cl_node {
	struct sl_cluster *c;
	unsigned idx; /* 0: the leader */
	struct sl_node_config cfg;
	char dir[PATH_MAX];
	struct sl_node *node;
	pthread_t thread;
	int started;
	int rc;
	char err[SL_ERR_MSG_MAX];
	/* Follower: its engine. */
	_Atomic uint64_t delivered_pub;
	uint64_t delivered_lsn, delivered, order_errors, record_errors, restarts;
	struct sl_wl expect_wl;
	uint8_t *expect;
	struct sl_hist lag;
	struct sl_cluster_lag_slice slices[SL_CLUSTER_LAG_SLICES];
	struct sl_node_trace trace;    /* opts.breakdown */
	struct sl_store_wtrace wtrace; /* opts.breakdown */
};

/* The leader's counters at a window edge. */
struct window_mark {
	int taken;
	uint64_t at, commit_lsn, commit_pos, tx_bytes, retransmits, naks, cpu_ns;
};

struct sl_cluster {
	struct sl_cluster_opts o;
	struct sl_cluster_result *r;
	struct cl_node nodes[SL_NODES_MAX];
	pthread_barrier_t opened, go;
	int abort;
	atomic_int stop;
	atomic_int clients_stop;
	_Atomic uint64_t appended_pub;
	uint64_t t0, win_start, win_end, slice_ns;
	/* Leader's thread only. */
	uint64_t *ts; /* append (or intended) time of LSN l at ts[l % TS_RING] */
	uint64_t committed, last_commit_ns;
	struct window_mark w0, w1;
	uint64_t next; /* open loop: when the next record is due */
	uint8_t *rec;  /* the record being appended (feed_self) */
	int have;      /* ... generated, not yet appended */
	struct sl_wl wl;
	uint8_t *pool; /* the leader's record pool (o.fresh_records: NULL) */
	size_t pool_recs;
	struct cl_client *clients;     /* o.clients of them */
	uint8_t *owner;		       /* the client of LSN l at owner[l % TS_RING] */
	unsigned next_client;	       /* taken from first next time */
	struct sl_cluster_links links; /* DPDK transports: a link per node pair */
	int links_prepared;
};

static const char *const net_names[] = {[SL_CLUSTER_UDP] = "udp",
					[SL_CLUSTER_MEMIF] = "memif",
					[SL_CLUSTER_AF_PACKET] = "af_packet",
					[SL_CLUSTER_TCP] = "tcp"};

int sl_cluster_net_parse(const char *s, enum sl_cluster_net *out)
{
	for (unsigned i = 0; i < sizeof(net_names) / sizeof(net_names[0]); i++)
		if (strcmp(s, net_names[i]) == 0) {
			*out = (enum sl_cluster_net)i;
			return 0;
		}
	return sl_err_set(EINVAL, "transport '%s': want udp, memif, af_packet or tcp", s);
}

const char *sl_cluster_net_name(enum sl_cluster_net n)
{
	return (unsigned)n < sizeof(net_names) / sizeof(net_names[0]) ? net_names[n] : "unknown";
}

void sl_cluster_opts_defaults(struct sl_cluster_opts *o)
{
	if (!o->nodes)
		o->nodes = 3;
	if (!o->record_bytes)
		o->record_bytes = 1024;
	if (!o->inflight)
		o->inflight = 1;
	if (!o->base_dir)
		o->base_dir = CLUSTER_BASE;
	if (!o->drain_seconds)
		o->drain_seconds = 30;
	if (!o->records && !o->seconds)
		o->seconds = 5;
}

/* Distinct free ports of a socket type (UDP and TCP ports are apart). */
static int free_ports(int type, uint16_t *ports, unsigned n)
{
	int fds[SL_NODES_MAX];
	unsigned i;
	int rc = 0;

	if (n > SL_NODES_MAX)
		return sl_err_set(EINVAL, "%u ports: at most %d", n, SL_NODES_MAX);
	for (i = 0; i < n && rc == 0; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(sa);

		fds[i] = socket(AF_INET, type | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(fds[i], (struct sockaddr *)&sa, &len) < 0)
			rc = sl_err_set(errno, "finding a free %s port: %s",
					type == SOCK_STREAM ? "TCP" : "UDP", strerror(errno));
		else
			ports[i] = ntohs(sa.sin_port);
	}
	while (i-- > 0)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

int sl_cluster_free_ports(uint16_t *ports, unsigned n)
{
	return free_ports(SOCK_DGRAM, ports, n);
}

/* The kernel transports listen on 127.0.0.1; the DPDK kinds have links. */
static int net_is_kernel(enum sl_cluster_net net)
{
	return net == SL_CLUSTER_UDP || net == SL_CLUSTER_TCP;
}

static int net_free_ports(enum sl_cluster_net net, uint16_t *ports, unsigned n)
{
	return free_ports(net == SL_CLUSTER_TCP ? SOCK_STREAM : SOCK_DGRAM, ports, n);
}

static void clients_committed(struct sl_cluster *c, uint64_t from, uint64_t to);

/* ---- the engines ---- */

static void leader_commit(void *ctx, uint64_t commit_lsn)
{
	struct cl_node *cn = ctx;
	struct sl_cluster *c = cn->c;
	uint64_t now = sl_node_now();

	for (uint64_t l = c->committed + 1; l <= commit_lsn; l++) {
		uint64_t t = c->ts[l % TS_RING];

		if (t >= c->win_start && t < c->win_end)
			sl_hist_record(&c->r->commit, now - t);
	}
	if (commit_lsn > c->committed) {
		if (c->o.clients)
			clients_committed(c, c->committed + 1, commit_lsn);
		c->committed = commit_lsn;
		c->last_commit_ns = now;
	}
}

/* The records must be the workload's, in order: regenerate and compare. */
static void check_records(struct cl_node *cn, const struct sl_batch_hdr *h, const uint8_t *raw,
			  size_t raw_len)
{
	uint32_t want = cn->c->o.record_bytes, len, i = 0;
	struct sl_rec_iter it;
	const uint8_t *rec;

	sl_rec_iter_init(&it, raw, raw_len);
	while (i < h->record_count && sl_rec_next(&it, &rec, &len) == 1) {
		sl_wl_fill(&cn->expect_wl, cn->expect, want);
		if (len != want || memcmp(rec, cn->expect, want) != 0)
			cn->record_errors++;
		i++;
	}
	cn->record_errors += h->record_count - i;
}

/* The engine applies nothing: it reads the records only to check them. */
static int follower_wants_records(void *ctx, const struct sl_batch_hdr *h)
{
	const struct cl_node *cn = ctx;

	(void)h;
	return cn->c->o.check_records;
}

static void follower_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *raw,
			     size_t raw_len)
{
	struct cl_node *cn = ctx;
	struct sl_cluster *c = cn->c;
	uint64_t now = sl_node_now(), last = h->base_lsn + h->record_count - 1;

	if (h->base_lsn != cn->delivered_lsn + 1) {
		if (!cn->order_errors++)
			sl_error("node %u: delivered lsn %" PRIu64 "..%" PRIu64
				 " after lsn %" PRIu64,
				 cn->idx + 1, h->base_lsn, last, cn->delivered_lsn);
	} else if (c->o.check_records) {
		check_records(cn, h, raw, raw_len);
	}
	if (h->leader_ts_ns >= c->win_start && h->leader_ts_ns < c->win_end &&
	    now > h->leader_ts_ns) {
		uint64_t lag = now - h->leader_ts_ns,
			 s = (h->leader_ts_ns - c->win_start) / c->slice_ns;

		sl_hist_record(&cn->lag, lag);
		if (s < SL_CLUSTER_LAG_SLICES) {
			cn->slices[s].count++;
			cn->slices[s].sum_ns += (double)lag;
			if (lag > cn->slices[s].max_ns)
				cn->slices[s].max_ns = lag;
		}
	}
	cn->delivered += h->record_count;
	cn->delivered_lsn = last;
	atomic_store_explicit(&cn->delivered_pub, last, memory_order_release);
	/* The engine applies at once (drives ack_level=applied). */
	sl_node_applied(cn->node, last);
}

/* ---- node threads ---- */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "shiplog-node2": so top, perf and gdb tell the nodes apart. */
static void name_thread(const struct cl_node *cn)
{
	char name[16];

	snprintf(name, sizeof(name), "shiplog-node%u", cn->idx + 1);
	pthread_setname_np(pthread_self(), name);
}

static int open_node(struct cl_node *cn)
{
	struct sl_node_engine eng = {.ctx = cn};
	int rc;

	if (cn->idx == 0) {
		eng.commit = leader_commit;
	} else {
		eng.deliver = follower_deliver;
		eng.wants_records = follower_wants_records;
	}
	cn->cfg.applied_lsn = cn->delivered_lsn;
	rc = sl_node_open(&cn->node, &cn->cfg, &eng);
	if (rc < 0) {
		cn->node = NULL;
		cn->rc = rc;
		snprintf(cn->err, sizeof(cn->err), "%s", sl_err_msg());
	} else if (cn->trace.rec) {
		sl_node_set_trace(cn->node, &cn->trace);
	}
	return rc;
}

static void thread_fail(struct cl_node *cn, int rc, const char *what)
{
	if (cn->rc)
		return;
	cn->rc = rc;
	snprintf(cn->err, sizeof(cn->err), "node %u: %s: %s", cn->idx + 1, what, sl_err_msg());
}

/* Close, stay down, reopen on the recovered log: what a restarted follower
 * process does, its engine remembering what it applied. */
static int restart(struct cl_node *cn)
{
	struct timespec ts = {.tv_sec = cn->c->o.restart_down_ms / 1000,
			      .tv_nsec = (long)(cn->c->o.restart_down_ms % 1000) * 1000000};

	sl_info("node %u: closing for a restart at lsn %" PRIu64, cn->idx + 1, cn->delivered_lsn);
	sl_node_close(cn->node);
	cn->node = NULL;
	nanosleep(&ts, NULL);
	cn->restarts++;
	return open_node(cn);
}

static void *follower_main(void *arg)
{
	struct cl_node *cn = arg;
	struct sl_cluster *c = cn->c;
	int restart_due = c->o.restart_node == cn->idx + 1 && c->o.restart_at > 0;
	uint64_t cpu0;

	name_thread(cn);
	open_node(cn);
	pthread_barrier_wait(&c->opened);
	pthread_barrier_wait(&c->go);
	if (c->abort || !cn->node)
		return NULL;
	cpu0 = thread_cpu_ns();
	while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
		int rc = sl_node_poll(cn->node);

		if (rc < 0) {
			thread_fail(cn, rc, "polling");
			break;
		}
		sl_node_idle(cn->node, rc);
		if (restart_due && atomic_load_explicit(&c->appended_pub, memory_order_relaxed) >=
				       c->o.restart_at) {
			restart_due = 0;
			if (restart(cn) < 0)
				break;
		}
	}
	c->r->f[cn->idx - 1].cpu_ns = thread_cpu_ns() - cpu0;
	if (cn->node)
		sl_node_stats(cn->node, &c->r->f[cn->idx - 1].stats);
	return NULL;
}

/* ---- the workload, on the leader's thread ---- */

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mark(struct sl_cluster *c, struct sl_node *n, struct window_mark *m, uint64_t now)
{
	struct sl_proto_status st;
	struct sl_transport_stats ts;

	sl_node_transport_stats(n, &ts);
	sl_node_status(n, &st);
	*m = (struct window_mark){.taken = 1,
				  .at = now,
				  .commit_lsn = c->committed,
				  .commit_pos = st.commit_pos,
				  .tx_bytes = ts.tx_bytes,
				  .retransmits = st.retransmits,
				  .naks = st.naks_received,
				  .cpu_ns = cpu_ns()};
}

static void progress(struct sl_cluster *c, uint64_t now, uint64_t appended, uint64_t *last)
{
	double s = (double)(now - c->t0) / 1e9;

	if (!c->o.progress || now - *last < PROGRESS_NS)
		return;
	*last = now;
	fprintf(stderr,
		"cluster: %5.1f s  appended %" PRIu64 "  committed %" PRIu64 "  %.0f records/s\n",
		s, appended, c->committed, (double)c->committed / s);
}

/* ---- client threads (o.clients > 0) ----
 *
 * Each client produces its own records into a single-producer,
 * single-consumer ring; the leader's thread takes them out in turn and
 * appends them, noting for each LSN which client it came from so that the
 * commit callback can give each client its commits back. */

#define CLIENT_RING_BYTES (16u << 20) /* a client's ring holds at most this */
#define CLIENT_RING_MAX	  1024u	      /* slots */
#define CLIENT_SPINS	  200
#define CLIENT_NAP_NS	  20000

struct cl_client {
	struct sl_cluster *c;
	unsigned idx;
	pthread_t thread;
	int started;
	uint32_t slots;		     /* a power of two */
	uint8_t *recs;		     /* slots x record_bytes */
	uint64_t *due;		     /* the time each slot's record was produced or due */
	_Atomic uint64_t head, tail; /* consumer (leader), producer (client) */
	_Atomic uint64_t committed;  /* this client's records committed */
	atomic_int done;	     /* produces nothing more */
	uint8_t *pool;		     /* its record pool (o.fresh_records: NULL) */
	size_t pool_recs;
	uint64_t share; /* closed loop: records outstanding at most */
	uint64_t quota; /* runs by count: records to produce */
};

static void client_nap(unsigned *idle)
{
	struct timespec ts = {.tv_nsec = CLIENT_NAP_NS};

	if (++*idle < CLIENT_SPINS)
		return;
	if (*idle < 2 * CLIENT_SPINS)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

static uint64_t client_seed(const struct sl_cluster *c, unsigned idx)
{
	return c->o.seed + 0x9e3779b97f4a7c15ull * (idx + 1);
}

/* A producer's record pool, unless every record is to be generated: as
 * large as SL_WL_POOL_BYTES, or as the records it will send if fewer (a
 * short run, a test under ASan, need not generate megabytes). */
static int pool_make(const struct sl_cluster *c, uint64_t seed, uint64_t records, uint8_t **pool,
		     size_t *recs)
{
	size_t len = c->o.record_bytes, n = SL_WL_POOL_BYTES / len;
	struct sl_wl wl;

	*pool = NULL;
	*recs = 0;
	if (c->o.fresh_records)
		return 0;
	if (records && records < n)
		n = (size_t)records;
	if (n == 0)
		n = 1;
	if (!(*pool = malloc(n * len)))
		return sl_err_set(ENOMEM, "record pool of %zu bytes", n * len);
	sl_wl_init(&wl, c->o.data, seed);
	*recs = sl_wl_pool_make(&wl, *pool, n * len, (uint32_t)len);
	return 0;
}

static void *client_main(void *arg)
{
	struct cl_client *k = arg;
	struct sl_cluster *c = k->c;
	uint64_t n = c->o.clients, rate = c->o.rate;
	/* Open loop: this client's share of the rate, its schedule offset so
	 * the clients interleave. */
	uint64_t interval = rate ? 1000000000ull * n / rate : 0, next, produced = 0;
	unsigned idle = 0;
	struct sl_wl wl;

	/* Every client's records differ: the seed names the client. */
	sl_wl_init(&wl, c->o.data, client_seed(c, k->idx));
	if (k->pool)
		sl_wl_pool_use(&wl, k->pool, k->pool_recs, c->o.record_bytes);
	pthread_barrier_wait(&c->go);
	next = c->t0 + (rate ? 1000000000ull * k->idx / rate : 0); /* t0 is set now */
	while (!c->abort && !atomic_load_explicit(&c->clients_stop, memory_order_acquire)) {
		uint64_t now = sl_node_now(),
			 tail = atomic_load_explicit(&k->tail, memory_order_relaxed);
		uint64_t head = atomic_load_explicit(&k->head, memory_order_acquire), t;
		int go;

		if (c->o.records ? produced >= k->quota
				 : (c->o.mode == SL_CLUSTER_OPEN ? next : now) >= c->win_end)
			break;
		if (c->o.mode == SL_CLUSTER_OPEN) {
			go = next <= now;
			t = next;
		} else {
			go = produced - atomic_load_explicit(&k->committed, memory_order_acquire) <
			     k->share;
			t = now;
		}
		if (!go || tail - head == k->slots) {
			client_nap(&idle);
			continue;
		}
		idle = 0;
		sl_wl_fill(&wl, k->recs + (size_t)(tail & (k->slots - 1)) * c->o.record_bytes,
			   c->o.record_bytes);
		k->due[tail & (k->slots - 1)] = t;
		atomic_store_explicit(&k->tail, tail + 1, memory_order_release);
		produced++;
		next += interval;
	}
	atomic_store_explicit(&k->done, 1, memory_order_release);
	return NULL;
}

static int clients_make(struct sl_cluster *c)
{
	uint32_t slots = CLIENT_RING_MAX;

	while (slots > 4 && (uint64_t)slots * c->o.record_bytes > CLIENT_RING_BYTES)
		slots /= 2;
	c->owner = calloc(TS_RING, 1);
	c->clients = calloc(c->o.clients, sizeof(*c->clients));
	if (!c->owner || !c->clients)
		return sl_err_set(ENOMEM, "client state");
	for (unsigned i = 0; i < c->o.clients; i++) {
		struct cl_client *k = &c->clients[i];

		k->c = c;
		k->idx = i;
		k->slots = slots;
		k->share = c->o.inflight / c->o.clients + (i < c->o.inflight % c->o.clients);
		if (!k->share)
			k->share = 1;
		k->quota = c->o.records / c->o.clients + (i < c->o.records % c->o.clients);
		k->recs = malloc((size_t)slots * c->o.record_bytes);
		k->due = malloc(slots * sizeof(*k->due));
		if (!k->recs || !k->due)
			return sl_err_set(ENOMEM, "client %u's ring", i);
		if (pool_make(c, client_seed(c, i), k->quota, &k->pool, &k->pool_recs))
			return sl_err_wrap(-ENOMEM, "client %u", i);
	}
	return 0;
}

static void clients_free(struct sl_cluster *c)
{
	for (unsigned i = 0; c->clients && i < c->o.clients; i++) {
		free(c->clients[i].recs);
		free(c->clients[i].due);
		free(c->clients[i].pool);
	}
	free(c->clients);
	free(c->owner);
}

/* The commit callback's share-out: each client learns how many of its
 * records committed. */
static void clients_committed(struct sl_cluster *c, uint64_t from, uint64_t to)
{
	uint64_t per[SL_CLUSTER_CLIENTS_MAX] = {0};

	for (uint64_t l = from; l <= to; l++)
		per[c->owner[l % TS_RING]]++;
	for (unsigned i = 0; i < c->o.clients; i++)
		if (per[i])
			atomic_fetch_add_explicit(&c->clients[i].committed, per[i],
						  memory_order_release);
}

/* ---- the workload, on the leader's thread ---- */

/* Append one record that was due at t (from client `owner`). 1 appended,
 * 0 window full (retry later), -errno. */
static int append_one(struct sl_cluster *c, struct cl_node *cn, const uint8_t *rec, uint64_t t,
		      unsigned owner, uint64_t *appended)
{
	int64_t lsn = sl_node_append(cn->node, rec, c->o.record_bytes);

	if (lsn == -EAGAIN) {
		c->r->window_full++;
		return 0;
	}
	if (lsn < 0)
		return sl_err_wrap((int)lsn, "appending record %" PRIu64, *appended + 1);
	*appended = (uint64_t)lsn;
	c->ts[*appended % TS_RING] = t;
	if (c->owner)
		c->owner[*appended % TS_RING] = (uint8_t)owner;
	return 1;
}

/* May the next record go now, and when was it due? Closed loop: while fewer
 * than `inflight` are uncommitted, due now. Open loop: on its schedule. */
static int next_due(struct sl_cluster *c, uint64_t appended, uint64_t now, uint64_t *t)
{
	if (appended - c->committed >= TS_RING)
		return 0;
	if (c->o.mode == SL_CLUSTER_OPEN) {
		*t = c->next;
		return c->next <= now;
	}
	*t = now;
	return appended - c->committed < c->o.inflight;
}

/* Has the workload appended all it should? Closed loop by the clock; open
 * loop once every record scheduled before the window's end went out, even
 * late (a stall then shows in the latencies instead of vanishing). With
 * clients: once they all stopped and their rings are empty. */
static int appending_done(const struct sl_cluster *c, uint64_t appended, uint64_t now)
{
	if (c->o.clients) {
		for (unsigned i = 0; i < c->o.clients; i++) {
			struct cl_client *k = &c->clients[i];

			if (!atomic_load_explicit(&k->done, memory_order_acquire) ||
			    atomic_load_explicit(&k->head, memory_order_relaxed) !=
				atomic_load_explicit(&k->tail, memory_order_acquire))
				return 0;
		}
		return 1;
	}
	if (c->o.records)
		return appended >= c->o.records;
	if (c->o.mode == SL_CLUSTER_OPEN)
		return c->next >= c->win_end;
	return now >= c->win_end;
}

/* The leader's thread produces the records itself. */
static int feed_self(struct sl_cluster *c, struct cl_node *cn, uint64_t now, uint64_t *appended)
{
	uint64_t interval = c->o.rate ? 1000000000ull / c->o.rate : 0, t;
	int work = 0, rc;

	for (; work < APPEND_BURST && !appending_done(c, *appended, now) &&
	       next_due(c, *appended, now, &t);
	     work++) {
		if (!c->have)
			sl_wl_fill(&c->wl, c->rec, c->o.record_bytes);
		c->have = 1;
		if ((rc = append_one(c, cn, c->rec, t, 0, appended)) <= 0)
			return rc < 0 ? rc : work;
		c->have = 0;
		c->next += interval;
	}
	return work;
}

/* Records from the client threads' rings, a client at a time. */
static int feed_clients(struct sl_cluster *c, struct cl_node *cn, uint64_t *appended)
{
	int work = 0, rc;

	for (unsigned i = 0; i < c->o.clients && work < APPEND_BURST; i++) {
		struct cl_client *k = &c->clients[(c->next_client + i) % c->o.clients];
		uint64_t head = atomic_load_explicit(&k->head, memory_order_relaxed);
		uint64_t tail = atomic_load_explicit(&k->tail, memory_order_acquire);

		for (; head < tail && work < APPEND_BURST; head++, work++) {
			uint32_t slot = (uint32_t)(head & (k->slots - 1));

			if (*appended - c->committed >= TS_RING - 1)
				break;
			rc = append_one(c, cn, k->recs + (size_t)slot * c->o.record_bytes,
					k->due[slot], k->idx, appended);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
		}
		atomic_store_explicit(&k->head, head, memory_order_release);
	}
	c->next_client = (c->next_client + 1) % c->o.clients;
	return work;
}

/* How long the leader's thread may sleep when its node is idle: until the
 * next scheduled record (open loop), a window edge, or briefly when client
 * threads fill rings it must look at (they cannot wake it). */
static uint64_t wake_by(const struct sl_cluster *c, uint64_t now)
{
	uint64_t t = UINT64_MAX;

	if (c->o.clients)
		t = now + CLIENT_LOOK_NS;
	else if (c->o.mode == SL_CLUSTER_OPEN)
		t = c->next;
	if (!c->w0.taken && c->win_start < t)
		t = c->win_start;
	if (!c->w1.taken && c->win_end < t)
		t = c->win_end;
	return t;
}

static int workload(struct sl_cluster *c, struct cl_node *cn, uint64_t *appended_out)
{
	uint64_t appended = 0, last_progress = c->t0, now;
	uint64_t stall_ns = (uint64_t)(c->o.drain_seconds * 1e9);
	uint64_t give_up = c->win_end == UINT64_MAX ? UINT64_MAX : c->win_end + stall_ns;
	int rc = 0;

	c->next = c->t0;
	if (!(c->rec = malloc(c->o.record_bytes)))
		return sl_err_set(ENOMEM, "record buffer");
	sl_wl_init(&c->wl, c->o.data, c->o.seed);
	if (c->pool)
		sl_wl_pool_use(&c->wl, c->pool, c->pool_recs, c->o.record_bytes);
	while (!appending_done(c, appended, now = sl_node_now())) {
		int work;

		if (now >= give_up) {
			rc = sl_err_set(ETIMEDOUT,
					"%.0f s past the window, records are still waiting to be "
					"appended (open loop behind schedule)",
					c->o.drain_seconds);
			break;
		}
		/* A cluster that stopped committing must not hang the caller. */
		if (appended > c->committed &&
		    now - (c->last_commit_ns > c->t0 ? c->last_commit_ns : c->t0) > stall_ns) {
			rc = sl_err_set(ETIMEDOUT,
					"no commit for %.0f s: commit lsn %" PRIu64 ", %" PRIu64
					" records appended",
					c->o.drain_seconds, c->committed, appended);
			break;
		}
		if (!c->w0.taken && now >= c->win_start)
			mark(c, cn->node, &c->w0, now);
		if (!c->w1.taken && now >= c->win_end)
			mark(c, cn->node, &c->w1, now);
		work = c->o.clients ? feed_clients(c, cn, &appended)
				    : feed_self(c, cn, now, &appended);
		if ((rc = work) < 0)
			goto out;
		atomic_store_explicit(&c->appended_pub, appended, memory_order_relaxed);
		/* Nothing more may go now: the engine would wait, so seal. */
		if (!c->o.seal_by_linger && (rc = sl_node_flush(cn->node)) < 0 && rc != -EAGAIN)
			goto out; /* -EAGAIN: window full, the batch seals once it has room */
		if ((rc = sl_node_poll(cn->node)) < 0)
			goto out;
		sl_node_idle_until(cn->node, rc + work, wake_by(c, now));
		rc = 0;
		progress(c, now, appended, &last_progress);
	}
	/* A run by the clock ends its window here, before the drain. */
	if (!c->w0.taken)
		mark(c, cn->node, &c->w0, now);
	if (!c->o.records && !c->w1.taken)
		mark(c, cn->node, &c->w1, now);
out:
	/* Clients still producing (a failed run) must stop too. */
	atomic_store_explicit(&c->clients_stop, 1, memory_order_release);
	free(c->rec);
	c->rec = NULL;
	*appended_out = appended;
	return rc;
}

static int followers_have(struct sl_cluster *c, uint64_t lsn)
{
	for (unsigned i = 1; i < c->o.nodes; i++)
		if (atomic_load_explicit(&c->nodes[i].delivered_pub, memory_order_acquire) < lsn)
			return 0;
	return 1;
}

/* Wait, bounded, until everything appended is committed and delivered by
 * every follower. */
static int drain(struct sl_cluster *c, struct cl_node *cn, uint64_t appended)
{
	uint64_t start = sl_node_now(), deadline = start + (uint64_t)(c->o.drain_seconds * 1e9);
	int rc;

	if ((rc = sl_node_flush(cn->node)) < 0 && rc != -EAGAIN)
		return rc;
	while (sl_node_now() < deadline) {
		if (c->committed >= appended && followers_have(c, appended)) {
			c->r->drained = 1;
			break;
		}
		if ((rc = sl_node_poll(cn->node)) < 0)
			return rc;
		sl_node_idle(cn->node, rc);
	}
	/* A run by record count is measured whole, to the last commit. */
	if (!c->w1.taken)
		mark(c, cn->node, &c->w1,
		     c->committed >= appended ? c->last_commit_ns : sl_node_now());
	c->r->seconds = (double)(c->w1.at - c->w0.at) / 1e9;
	c->r->records = c->w1.commit_lsn - c->w0.commit_lsn;
	c->r->wire_bytes = c->w1.tx_bytes - c->w0.tx_bytes;
	c->r->stored_bytes = c->w1.commit_pos - c->w0.commit_pos;
	c->r->retransmits = c->w1.retransmits - c->w0.retransmits;
	c->r->naks = c->w1.naks - c->w0.naks;
	c->r->cpu_seconds = (double)(c->w1.cpu_ns - c->w0.cpu_ns) / 1e9;
	if (!c->r->drained)
		sl_warn("cluster: after %.1f s, not every follower has every record",
			c->o.drain_seconds);
	return 0;
}

static void *leader_main(void *arg)
{
	struct cl_node *cn = arg;
	struct sl_cluster *c = cn->c;
	uint64_t appended = 0, cpu0;
	int rc;

	name_thread(cn);
	open_node(cn);
	pthread_barrier_wait(&c->opened);
	pthread_barrier_wait(&c->go);
	if (c->abort || !cn->node)
		return NULL;
	cpu0 = thread_cpu_ns();
	rc = workload(c, cn, &appended);
	if (rc == 0)
		rc = drain(c, cn, appended);
	c->r->leader_cpu_ns = thread_cpu_ns() - cpu0;
	if (rc < 0)
		thread_fail(cn, rc, "workload");
	c->r->appended = appended;
	sl_node_stats(cn->node, &c->r->leader_stats);
	sl_node_status(cn->node, &c->r->leader_status);
	c->r->commit_lsn = c->r->leader_status.commit_lsn;
	c->r->commit_pos = c->r->leader_status.commit_pos;
	return NULL;
}

/* ---- set-up, the check, tear-down ---- */

static int make_dirs(struct sl_cluster *c)
{
	int n = snprintf(c->r->dir, sizeof(c->r->dir), "%s/shiplog-cluster-XXXXXX", c->o.base_dir);

	if (n < 0 || (size_t)n >= sizeof(c->r->dir))
		return sl_err_set(ENAMETOOLONG, "base directory %s", c->o.base_dir);
	if (!mkdtemp(c->r->dir))
		return sl_err_set(errno, "creating %s: %s", c->r->dir, strerror(errno));
	for (unsigned i = 0; i < c->o.nodes; i++) {
		struct cl_node *cn = &c->nodes[i];

		n = snprintf(cn->dir, sizeof(cn->dir), "%s/node%u", c->r->dir, i + 1);
		if (n < 0 || (size_t)n >= sizeof(cn->dir))
			return sl_err_set(ENAMETOOLONG, "base directory %s", c->o.base_dir);
		if (mkdir(cn->dir, 0755) < 0)
			return sl_err_set(errno, "creating %s: %s", cn->dir, strerror(errno));
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A node's transport on the DPDK kinds: its links to every other node. */
static int make_mesh(void *arg, const struct sl_transport_config *c, struct sl_transport **out)
{
	struct cl_node *cn = arg;

	return sl_cluster_links_mesh(&cn->c->links, cn->idx + 1, c, out);
}

static int configure(struct sl_cluster *c)
{
	uint16_t ports[SL_NODES_MAX] = {0}; /* kernel transports only */
	int rc;

	if (!net_is_kernel(c->o.net)) {
		c->links_prepared = 1;
		if ((rc = sl_cluster_links_prepare(&c->links, c->o.net, c->o.nodes, c->r->dir)))
			return rc;
	} else if ((rc = net_free_ports(c->o.net, ports, c->o.nodes))) {
		return rc;
	}
	for (unsigned i = 0; i < c->o.nodes; i++) {
		struct cl_node *cn = &c->nodes[i];
		struct sl_node_config *nc = &cn->cfg;

		cn->c = c;
		cn->idx = i;
		memcpy(nc->proto.cluster_id, cluster_id, sizeof(cluster_id));
		nc->proto.stream_id = STREAM_ID;
		nc->proto.node_id = i + 1;
		nc->proto.n_nodes = c->o.nodes;
		for (unsigned k = 0; k < c->o.nodes; k++)
			nc->proto.node_ids[k] = k + 1;
		nc->proto.leader_id = LEADER_ID;
		nc->proto.epoch = 1;
		nc->proto.policy = c->o.policy;
		nc->proto.batch_bytes = c->o.batch_bytes;
		nc->proto.linger_ns = c->o.linger_ns;
		nc->proto.lz4_accel = c->o.lz4_accel;
		nc->proto.window_bytes = c->o.window_bytes;
		/* The workload's records are all record_bytes long: sizing the
		 * largest batch to them keeps buffers (and the smallest window
		 * the protocol allows, four such batches) small. */
		nc->proto.limits = sl_batch_default_limits;
		nc->proto.limits.max_record_bytes = c->o.record_bytes;
		nc->store.dir = cn->dir;
		nc->store.inline_write_max = c->o.inline_write_max;
		nc->store.max_inflight = c->o.log_inflight;
		nc->store.prewrite_chunk = c->o.prewrite_chunk;
		nc->store.wtrace = c->o.breakdown ? &cn->wtrace : NULL;
		nc->net.mtu = c->o.mtu;
		nc->transport = c->o.net == SL_CLUSTER_TCP ? SL_TRANSPORT_TCP : SL_TRANSPORT_UDP;
		nc->idle = c->o.idle;
		nc->seal_when_log_idle = c->o.seal_when_log_idle;
		nc->seal_when_idle = c->o.seal_when_idle;
		nc->timer_early_ns = c->o.timer_early_ns;
		nc->compress_thread = i == 0 && c->o.compress_thread;
		nc->key_file = c->o.key_file;
		if (!net_is_kernel(c->o.net)) {
			nc->make_transport = make_mesh;
			nc->make_transport_arg = cn;
		}
		nc->net.self = (struct sl_endpoint){.ip = htonl(INADDR_LOOPBACK), .port = ports[i]};
		for (unsigned k = 0; k < c->o.nodes; k++) {
			if (k == i)
				continue;
			nc->net.peers[nc->net.n_peers++] = (struct sl_peer_addr){
			    .node_id = k + 1,
			    .ep = {.ip = htonl(INADDR_LOOPBACK), .port = ports[k]}};
		}
		sl_hist_reset(&cn->lag);
		if (i > 0 && c->o.check_records) {
			cn->expect = malloc(c->o.record_bytes);
			if (!cn->expect)
				return sl_err_set(ENOMEM, "record buffer");
			sl_wl_init(&cn->expect_wl, c->o.data, c->o.seed);
			if (c->pool)
				sl_wl_pool_use(&cn->expect_wl, c->pool, c->pool_recs,
					       c->o.record_bytes);
		}
	}
	return 0;
}

/* Every follower's log must hold the leader's committed prefix, byte for
 * byte: read both batch by batch by position. */
static void compare_logs(struct sl_cluster *c)
{
	struct sl_node *leader = c->nodes[0].node;
	size_t cap = sl_node_batch_max(leader);
	uint8_t *a = malloc(cap), *b = malloc(cap);

	for (unsigned i = 1; i < c->o.nodes && a && b; i++) {
		struct sl_cluster_follower *f = &c->r->f[i - 1];
		uint64_t pos = 0;
		int la = 0, lb = 0;

		if (!c->nodes[i].node)
			continue;
		while (pos < c->r->commit_pos) {
			la = sl_node_read_pos(leader, pos, a, cap, NULL);
			lb = la < 0 ? la : sl_node_read_pos(c->nodes[i].node, pos, b, cap, NULL);
			if (la < 0 || lb != la || memcmp(a, b, (size_t)la) != 0)
				break;
			pos += (uint64_t)la;
			f->log_batches++;
		}
		f->log_bytes = pos;
		f->log_identical = pos == c->r->commit_pos;
		if (!f->log_identical)
			sl_error(
			    "cluster: node %u's log differs from the leader's at position %" PRIu64
			    " (%s): %s",
			    i + 1, pos,
			    la < 0   ? "leader read"
			    : lb < 0 ? "follower read"
				     : "bytes",
			    la < 0 || lb < 0 ? sl_err_msg() : "the batches differ");
	}
	free(a);
	free(b);
}

static void collect(struct sl_cluster *c)
{
	struct sl_cluster_result *r = c->r;
	struct sl_store_info info;

	r->n_followers = c->o.nodes - 1;
	r->verified = r->drained;
	r->record_bytes = r->records * c->o.record_bytes;
	if (c->nodes[0].node) {
		sl_node_store_info(c->nodes[0].node, &info);
		r->direct_io = info.direct_io;
		r->sync_mode = info.sync_mode;
		r->sync_adaptive = info.sync_adaptive;
		compare_logs(c);
	}
	for (unsigned i = 1; i < c->o.nodes; i++) {
		struct cl_node *cn = &c->nodes[i];
		struct sl_cluster_follower *f = &r->f[i - 1];

		f->node_id = i + 1;
		f->delivered_lsn = cn->delivered_lsn;
		f->delivered = cn->delivered;
		f->order_errors = cn->order_errors;
		f->record_errors = cn->record_errors;
		f->restarts = cn->restarts;
		sl_hist_merge(&r->lag, &cn->lag);
		memcpy(r->lag_slices[i - 1], cn->slices, sizeof(cn->slices));
		r->verified &= f->log_identical && !f->order_errors && !f->record_errors &&
			       f->delivered == r->appended;
	}
}

static int start_threads(struct sl_cluster *c)
{
	for (unsigned i = 0; i < c->o.nodes; i++) {
		struct cl_node *cn = &c->nodes[i];
		int rc =
		    pthread_create(&cn->thread, NULL, i == 0 ? leader_main : follower_main, cn);

		if (rc)
			return sl_err_set(rc, "starting node %u's thread: %s", i + 1, strerror(rc));
		cn->started = 1;
	}
	for (unsigned i = 0; i < c->o.clients; i++) {
		struct cl_client *k = &c->clients[i];
		int rc = pthread_create(&k->thread, NULL, client_main, k);

		if (rc)
			return sl_err_set(rc, "starting client %u's thread: %s", i, strerror(rc));
		k->started = 1;
	}
	return 0;
}

static int first_error(struct sl_cluster *c)
{
	for (unsigned i = 0; i < c->o.nodes; i++)
		if (c->nodes[i].rc) {
			snprintf(c->r->error, sizeof(c->r->error), "%s", c->nodes[i].err);
			return sl_err_set(-c->nodes[i].rc, "%s", c->nodes[i].err);
		}
	return 0;
}

/* ---- steal time ---- */

#define STEAL_CPUS 256

/* Each CPU's steal time so far, in ms (USER_HZ ticks of /proc/stat). The
 * number of CPUs read, or -1 when /proc/stat cannot be read. */
static int steal_read(double *ms, unsigned cap)
{
	long hz = sysconf(_SC_CLK_TCK);
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f || hz <= 0) {
		if (f)
			fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f) && (unsigned)n < cap) {
		unsigned long long v[8];

		/* "cpuN user nice system idle iowait irq softirq steal ..." */
		if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
			continue;
		if (sscanf(line, "%*s %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
			continue;
		ms[n++] = (double)v[7] * 1000.0 / (double)hz;
	}
	fclose(f);
	return n > 0 ? n : -1;
}

static void sleep_until(uint64_t at)
{
	struct timespec ts = {.tv_sec = (time_t)(at / 1000000000ull),
			      .tv_nsec = (long)(at % 1000000000ull)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* While the leader's thread runs the window: at the end of each lag slice,
 * the steal of the CPU that lost most, so that a stall in the lag plot can
 * be told from one the machine's host made. 1 when it joined the leader's
 * thread (the leader stopped before the window ended). */
static int steal_watch(struct sl_cluster *c)
{
	static double prev[STEAL_CPUS], cur[STEAL_CPUS];
	struct sl_cluster_result *r = c->r;
	int n;

	if (r->n_lag_slices == 0)
		return 0;
	sleep_until(c->win_start);
	if (pthread_tryjoin_np(c->nodes[0].thread, NULL) == 0)
		return 1;
	if ((n = steal_read(prev, STEAL_CPUS)) < 0)
		return 0;
	r->steal_known = 1;
	for (unsigned s = 0; s < r->n_lag_slices; s++) {
		sleep_until(c->win_start + (s + 1) * c->slice_ns);
		if (steal_read(cur, STEAL_CPUS) != n) {
			r->steal_known = 0;
			return 0;
		}
		for (int i = 0; i < n; i++) {
			double d = cur[i] - prev[i];

			r->steal_ms += d;
			if (d > r->steal_slice_ms[s])
				r->steal_slice_ms[s] = d;
			prev[i] = cur[i];
		}
		if (pthread_tryjoin_np(c->nodes[0].thread, NULL) == 0)
			return 1;
	}
	return 0;
}

/* Slices of at least 10 ms, at most SL_CLUSTER_LAG_SLICES over the window. */
static uint64_t lag_slice_ns(const struct sl_cluster_opts *o)
{
	uint64_t s = (uint64_t)(o->seconds * 1e9) / SL_CLUSTER_LAG_SLICES + 1;

	return s < 10000000ull ? 10000000ull : s;
}

static int run(struct sl_cluster *c)
{
	int rc;

	/* The followers check the leader's records against its pool. */
	if (!c->o.clients && (rc = pool_make(c, c->o.seed, c->o.records, &c->pool, &c->pool_recs)))
		return rc;
	if ((rc = make_dirs(c)) || (rc = configure(c)) || (c->o.clients && (rc = clients_make(c))))
		return rc;
	for (unsigned i = 0; c->o.breakdown && i < c->o.nodes; i++) {
		c->nodes[i].trace.cap = TRACE_RECS;
		if (!(c->nodes[i].trace.rec =
			  malloc(TRACE_RECS * sizeof(struct sl_node_trace_rec))))
			return sl_err_set(ENOMEM, "node traces");
		c->nodes[i].wtrace.cap = WTRACE_RECS;
		if (!(c->nodes[i].wtrace.rec = malloc(WTRACE_RECS * sizeof(struct sl_store_wrec))))
			return sl_err_set(ENOMEM, "log write records");
	}
	if ((rc = start_threads(c))) {
		/* Threads that started wait at the barriers for the missing ones:
		 * there is no clean way back, so this is fatal. */
		sl_error("cluster: %s", sl_err_msg());
		abort();
	}
	pthread_barrier_wait(&c->opened);
	for (unsigned i = 0; i < c->o.nodes; i++)
		c->abort |= c->nodes[i].node == NULL;
	c->t0 = sl_node_now();
	c->win_start = c->o.records ? c->t0 : c->t0 + (uint64_t)(c->o.warmup * 1e9);
	c->win_end = c->o.records ? UINT64_MAX : c->win_start + (uint64_t)(c->o.seconds * 1e9);
	c->slice_ns = lag_slice_ns(&c->o);
	c->r->lag_slice_ns = c->slice_ns;
	c->r->n_lag_slices =
	    c->o.records
		? 0
		: (unsigned)((c->o.seconds * 1e9 + (double)c->slice_ns - 1) / (double)c->slice_ns);
	if (c->r->n_lag_slices > SL_CLUSTER_LAG_SLICES)
		c->r->n_lag_slices = SL_CLUSTER_LAG_SLICES;
	pthread_barrier_wait(&c->go);
	if (!steal_watch(c))
		pthread_join(c->nodes[0].thread, NULL);
	atomic_store_explicit(&c->clients_stop, 1, memory_order_release);
	for (unsigned i = 0; i < c->o.clients; i++)
		pthread_join(c->clients[i].thread, NULL);
	atomic_store_explicit(&c->stop, 1, memory_order_release);
	for (unsigned i = 1; i < c->o.nodes; i++)
		pthread_join(c->nodes[i].thread, NULL);
	if ((rc = first_error(c)))
		return rc;
	collect(c);
	if (c->o.breakdown) {
		struct sl_node_trace tr[SL_NODES_MAX];
		struct sl_store_wtrace wt[SL_NODES_MAX];

		for (unsigned i = 0; i < c->o.nodes; i++) {
			tr[i] = c->nodes[i].trace;
			wt[i] = c->nodes[i].wtrace;
		}
		sl_cluster_breakdown(tr, c->o.nodes, c->ts, TS_RING, c->r->appended, c->win_start,
				     c->win_end, &c->r->breakdown);
		sl_cluster_writes(wt, c->o.nodes, c->win_start, c->win_end,
				  &c->r->breakdown.writes);
	}
	return 0;
}

static int check_opts(const struct sl_cluster_opts *o)
{
	if (o->nodes < 1 || o->nodes > SL_NODES_MAX)
		return sl_err_set(EINVAL, "%u nodes: want 1..%d", o->nodes, SL_NODES_MAX);
	if (o->mode == SL_CLUSTER_OPEN && (o->rate == 0 || o->rate > 1000000000ull))
		return sl_err_set(EINVAL, "open loop needs a rate of 1..1e9 records/s");
	if (!net_is_kernel(o->net) && o->nodes < 2)
		return sl_err_set(EINVAL, "%s links join two nodes: want 2..%d nodes",
				  sl_cluster_net_name(o->net), SL_NODES_MAX);
	if (o->clients > SL_CLUSTER_CLIENTS_MAX)
		return sl_err_set(EINVAL, "%u clients: at most %d", o->clients,
				  SL_CLUSTER_CLIENTS_MAX);
	/* The followers regenerate one workload; clients interleave several. */
	if (o->clients && o->check_records)
		return sl_err_set(EINVAL, "checking records needs the records made on the "
					  "leader's thread (no client threads)");
	if (o->mtu && (o->mtu < 576 || o->mtu > SL_FRAME_MAX))
		return sl_err_set(EINVAL, "MTU %u: want 576..%d", o->mtu, SL_FRAME_MAX);
	if (o->restart_at && (o->restart_node < 2 || o->restart_node > o->nodes))
		return sl_err_set(EINVAL, "restart_node %u is not a follower", o->restart_node);
	return 0;
}

int sl_cluster_run(const struct sl_cluster_opts *opts, struct sl_cluster_result *r)
{
	struct sl_cluster *c = calloc(1, sizeof(*c));
	int rc;

	memset(r, 0, sizeof(*r));
	sl_hist_reset(&r->commit);
	sl_hist_reset(&r->lag);
	if (!c)
		return sl_err_set(ENOMEM, "cluster state");
	c->o = *opts;
	c->r = r;
	sl_cluster_opts_defaults(&c->o);
	c->ts = calloc(TS_RING, sizeof(*c->ts));
	if (!c->ts) {
		free(c);
		return sl_err_set(ENOMEM, "append times");
	}
	if ((rc = check_opts(&c->o)) == 0) {
		pthread_barrier_init(&c->opened, NULL, c->o.nodes + 1);
		pthread_barrier_init(&c->go, NULL, c->o.nodes + c->o.clients + 1);
		rc = run(c);
		pthread_barrier_destroy(&c->opened);
		pthread_barrier_destroy(&c->go);
	}
	for (unsigned i = 0; i < c->o.nodes && i < SL_NODES_MAX; i++) {
		sl_node_close(c->nodes[i].node);
		free(c->nodes[i].expect);
		free(c->nodes[i].trace.rec);
		free(c->nodes[i].wtrace.rec);
	}
	if (c->links_prepared)
		sl_cluster_links_cleanup(&c->links);
	if (r->dir[0] && !c->o.keep && nftw(r->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		sl_warn("cluster: could not remove %s", r->dir);
	if (rc < 0 && !r->error[0])
		snprintf(r->error, sizeof(r->error), "%s", sl_err_msg());
	clients_free(c);
	free(c->pool);
	free(c->ts);
	free(c);
	return rc;
}

/* ---- the transport's round trip ---- */

static void count_frame(void *arg, uint32_t from, const uint8_t *frame, size_t len)
{
	(void)from;
	(void)frame;
	(void)len;
	++*(int *)arg;
}

/* One frame from a to node `to`, spinning on b until it arrives. */
static int hop(struct sl_transport *a, struct sl_transport *b, uint32_t to, const uint8_t *frame,
	       size_t len)
{
	uint64_t deadline = sl_node_now() + 1000000000ull;
	int got = 0, rc;

	if ((rc = a->ops->send(a, to, frame, len)) < 0 || (rc = a->ops->flush(a)) < 0)
		return rc;
	while (!got) {
		if ((rc = b->ops->poll(b, count_frame, &got, 16)) < 0)
			return rc;
		if (sl_node_now() > deadline)
			return sl_err_set(ETIMEDOUT, "a %zu-byte frame took over 1 s", len);
	}
	return 0;
}

static int kernel_pair(enum sl_cluster_net net, struct sl_transport *t[2])
{
	uint16_t ports[2];
	int rc = net_free_ports(net, ports, 2);

	for (int i = 0; i < 2 && rc == 0; i++) {
		struct sl_transport_config c = {
		    .self_id = (uint32_t)i + 1,
		    .self = {.ip = htonl(INADDR_LOOPBACK), .port = ports[i]},
		    .n_peers = 1,
		    .peers[0] = {.node_id = (uint32_t)(2 - i),
				 .ep = {.ip = htonl(INADDR_LOOPBACK), .port = ports[1 - i]}},
		    .mtu = 1500,
		};

		rc = net == SL_CLUSTER_TCP ? sl_tcp_transport_create(&t[i], &c)
					   : sl_udp_transport_create(&t[i], &c);
	}
	return rc;
}

int sl_cluster_measure_rtt(enum sl_cluster_net net, const char *base_dir, size_t frame_bytes,
			   double secs, struct sl_hist *h)
{
	struct sl_transport_config c = {.mtu = 1500};
	struct sl_transport *t[2] = {NULL, NULL};
	struct sl_cluster_links links;
	char dir[PATH_MAX] = "";
	uint8_t frame[SL_FRAME_MAX] = {0};
	uint64_t deadline;
	int rc, made_dir = 0;

	if (frame_bytes < 1 || frame_bytes > 1400)
		return sl_err_set(EINVAL, "round-trip frames of %zu bytes: want 1..1400",
				  frame_bytes);
	memset(&links, 0, sizeof(links));
	if (net_is_kernel(net)) {
		rc = kernel_pair(net, t);
	} else {
		snprintf(dir, sizeof(dir), "%s/shiplog-rtt-XXXXXX",
			 base_dir ? base_dir : CLUSTER_BASE);
		made_dir = mkdtemp(dir) != NULL;
		rc = made_dir ? 0 : sl_err_set(errno, "creating %s: %s", dir, strerror(errno));
		if (rc == 0)
			rc = sl_cluster_links_prepare(&links, net, 2, dir);
		if (rc == 0)
			rc = sl_cluster_links_port(&links, 1, 2, &c, &t[0]);
		if (rc == 0)
			rc = sl_cluster_links_port(&links, 2, 1, &c, &t[1]);
		if (rc == 0)
			rc = sl_cluster_links_wait(t, 2);
	}
	/* One round untimed: TCP connects on its first frame. */
	if (rc == 0 && (rc = hop(t[0], t[1], 2, frame, frame_bytes)) == 0)
		rc = hop(t[1], t[0], 1, frame, frame_bytes);
	deadline = sl_node_now() + (uint64_t)(secs * 1e9);
	while (rc == 0 && sl_node_now() < deadline) {
		uint64_t t0 = sl_node_now();

		if ((rc = hop(t[0], t[1], 2, frame, frame_bytes)) == 0 &&
		    (rc = hop(t[1], t[0], 1, frame, frame_bytes)) == 0)
			sl_hist_record(h, sl_node_now() - t0);
	}
	for (int i = 0; i < 2; i++)
		if (t[i])
			t[i]->ops->destroy(t[i]);
	sl_cluster_links_cleanup(&links);
	if (made_dir && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		sl_warn("cluster: could not remove %s", dir);
	return rc < 0 ? sl_err_wrap(rc, "%s round trip", sl_cluster_net_name(net)) : 0;
}

/* ---- printing ---- */

void sl_cluster_print_summary(FILE *f, const struct sl_cluster_result *r)
{
	double secs = r->seconds > 0 ? r->seconds : 1e-9;

	fprintf(
	    f,
	    "  throughput  %.0f records/s, %.2f MB/s of records, %.2f MB/s on the wire (%.2f s)\n",
	    (double)r->records / secs, (double)r->record_bytes / 1e6 / secs,
	    (double)r->wire_bytes / 1e6 / secs, r->seconds);
	fprintf(f,
		"  commit      append -> committed: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max "
		"%.1f us (%llu records)\n",
		(double)sl_hist_quantile(&r->commit, 0.5) / 1e3,
		(double)sl_hist_quantile(&r->commit, 0.99) / 1e3,
		(double)sl_hist_quantile(&r->commit, 0.999) / 1e3, (double)r->commit.max / 1e3,
		(unsigned long long)r->commit.count);
	if (r->n_followers)
		fprintf(f,
			"  lag         leader seal -> follower delivery: p50 %.3f ms, p99 %.3f ms, "
			"max %.3f ms\n",
			(double)sl_hist_quantile(&r->lag, 0.5) / 1e6,
			(double)sl_hist_quantile(&r->lag, 0.99) / 1e6, (double)r->lag.max / 1e6);
}

static void print_node_stats(FILE *f, uint32_t id, const struct sl_node_stats *s, uint64_t cpu_ns,
			     uint64_t records)
{
	fprintf(f,
		"  node %" PRIu32 "      cpu %.2f s (%.2f us/record), turns %" PRIu64
		" (idle %" PRIu64 ", sleeps %" PRIu64 "), frames rx %" PRIu64 " tx %" PRIu64
		" (refused %" PRIu64 "), durable events %" PRIu64 ", store full %" PRIu64
		", timer ticks %" PRIu64 ", blocks %" PRIu64 "\n",
		id, (double)cpu_ns / 1e9, records ? (double)cpu_ns / 1e3 / (double)records : 0.0,
		s->turns, s->idle_turns, s->sleeps, s->frames_rx, s->frames_tx, s->tx_refused,
		s->durable_events, s->store_full_waits, s->timer_ticks, s->blocks);
}

void sl_cluster_print_stats(FILE *f, const struct sl_cluster_result *r)
{
	const struct sl_proto_status *st = &r->leader_status;

	print_node_stats(f, 1, &r->leader_stats, r->leader_cpu_ns, r->appended);
	for (unsigned i = 0; i < r->n_followers; i++)
		print_node_stats(f, r->f[i].node_id, &r->f[i].stats, r->f[i].cpu_ns, r->appended);
	fprintf(f,
		"  leader      window full %" PRIu64 ", naks received %" PRIu64
		", retransmits %" PRIu64 ", tail-loss probes %" PRIu64
		", sealed on an idle log %" PRIu64 ", with nothing in flight %" PRIu64
		", compressed by the stage %" PRIu64 "\n",
		r->window_full, st->naks_received, st->retransmits, st->tlps,
		r->leader_stats.log_idle_seals, r->leader_stats.idle_seals,
		r->leader_stats.stage_batches);
}

void sl_cluster_print_check(FILE *f, const struct sl_cluster_result *r)
{
	for (unsigned i = 0; i < r->n_followers; i++) {
		const struct sl_cluster_follower *fo = &r->f[i];

		fprintf(f,
			"  check       node %u: %s the leader's committed log (%llu batches, %llu "
			"bytes); delivered %llu of %llu records%s\n",
			fo->node_id, fo->log_identical ? "holds, byte for byte," : "DIFFERS from",
			(unsigned long long)fo->log_batches, (unsigned long long)fo->log_bytes,
			(unsigned long long)fo->delivered, (unsigned long long)r->appended,
			fo->order_errors || fo->record_errors ? ", WITH ERRORS" : "");
	}
	if (!r->n_followers)
		fprintf(f, "  check       a single node: no follower to compare\n");
	fprintf(f, "  verdict     %s\n",
		!r->verified	 ? "FAILED: a follower's log or deliveries differ (see above)"
		: r->n_followers ? "OK: every follower holds the committed log, byte for byte"
				 : "OK: every record committed");
}
