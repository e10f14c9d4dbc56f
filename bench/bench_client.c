/* shipbench client: append-to-commit latency through libshiplog against the
 * same append made inside the node process, in the same cluster and the
 * same run. Three nodes in this process (one thread each, kernel UDP on
 * 127.0.0.1, logs in a fresh directory); the leader's node serves the client
 * socket (app/client_srv.c) from its loop, and a client thread in this
 * process appends through the library (shared-memory rings, exactly as an
 * engine in another process would).
 *
 * Two paths, one record in flight each, taking turns in slices (so drift in
 * the machine's load hits both alike):
 *   inproc: the leader's thread appends (sl_node_append + sl_node_flush)
 *           where its turn takes new work (sl_node_engine's take: where
 *           shipd takes a client's entries) and times until it sees, there,
 *           that a commit callback covered the record;
 *   client: the client thread times sl_client_append_wait(COMMITTED), one
 *           call and one wake-up per record, as an engine that waits for
 *           each write makes it (--client-call append+wait: the two calls
 *           sl_client_append(FLUSH) then sl_client_wait(COMMITTED)).
 * The in-process path is the limit the library is judged against: the
 * difference of the medians is what the library costs. Each is also split
 * at the leader's commit callback (its time read there, in both paths
 * alike): from the append to the callback, and from the callback until
 * the engine sees the commit (the in-process engine at its turn's next
 * take point, the client when sl_client_wait returns). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../app/client_srv.h"
#include "bench_util.h"
#include "bench_wake.h"
#include "shiplog/client.h"
#include "shiplog/cluster.h"
#include "shiplog/err.h"
#include "shiplog/node.h"
#include "shiplog/quorum.h"
#include "shiplog/workload.h"

#define NODES	    3
#define SLICE_NS    100000000ull /* each path runs this long per turn */
#define WAIT_MS	    10000	 /* a commit slower than this stops the run */
#define SAMPLES_MAX (1u << 22)	 /* latencies kept per path for exact quantiles */
#define WAKE_ROUNDS 2000	 /* futex wake-ups timed for the limit, per kind */

enum { PH_IDLE, PH_INPROC, PH_CLIENT, PH_STOP };

struct cb {
	/* options */
	struct sl_ack_policy policy;
	uint32_t record_bytes, spin_us;
	int two_calls; /* --client-call append+wait */
	int cpu;       /* --cpu: leader loop and client thread on this CPU, -1: none */
	enum sl_idle idle;
	double warmup, seconds;
	const char *base;
	/* the cluster */
	char dir[PATH_MAX / 2], sock[PATH_MAX];
	struct sl_node_config cfg[NODES];
	char ndir[NODES][PATH_MAX];
	struct sl_node *node[NODES];
	struct sl_csrv *srv;
	pthread_t thr[NODES + 1];
	volatile int stop; /* sl_node_run's flag */
	_Atomic int phase, measuring;
	_Atomic int inproc_busy, client_busy;
	/* the in-process engine (leader thread) */
	uint64_t commit_lsn;
	uint64_t inflight, t0; /* its record in flight (0: none), appended at t0 */
	uint8_t *rec;
	struct sl_wl wl;
	_Atomic uint64_t commit_ns;		/* when the callback last moved commit_lsn */
	struct sl_hist inproc, client, handoff; /* handoff: sl_client_append alone */
	struct sl_hist to_commit[2], seen[2];	/* [0] inproc, [1] client: the split */
	/* Each path's latencies, for exact quantiles: the histogram's buckets
	 * are 2-4 us wide here, as wide as the difference it is judged by. */
	struct lat_samples {
		uint64_t *v;
		uint32_t n, cap;
	} lat[2];
	/* The machine's wake-up cost (bench_wake.h), measured before the run:
	 * a sleeping thread woken from the other CPU, and from its own (-1:
	 * not measured). */
	double wake_x_us, wake_same_us;
	struct sl_csrv_stats srv_st; /* at the end */
	int leader_rc, client_rc;
	char client_err[SL_ERR_MSG_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shipbench client [--json] [--seconds S] [--dir DIR] [--seed N]\n"
		"                       [--acks A] [--ack-level received|durable|applied]\n"
		"                       [--record-bytes N] [--warmup S] [--spin-us N]\n"
		"                       [--idle spin|yield|backoff|nap]\n"
		"                       [--client-call append-wait|append+wait] [--cpu N]\n"
		"Append-to-commit latency through libshiplog against the same append made\n"
		"inside the node process (at the points of the leader's turn where shipd takes\n"
		"a client's records): 3 nodes over kernel UDP on 127.0.0.1, one record in\n"
		"flight, the two paths alternating every 100 ms in the same cluster.\n"
		"  --seconds S       measured seconds per path (default 2)\n"
		"  --warmup S        seconds of both paths before measuring (default 0.5)\n"
		"  --acks A          follower acks a commit needs (default 1)\n"
		"  --ack-level L     received, durable or applied (default durable)\n"
		"  --record-bytes N  bytes per record (default 1024)\n"
		"  --spin-us N       how long the client's waits spin before they sleep in the\n"
		"                    kernel (default 0: the library's adaptive spin); with\n"
		"                    --cpu the spin yields the shared CPU at every look\n"
		"  --idle I          the nodes' idle strategy (default backoff)\n"
		"  --client-call C   what the client path times: append-wait (default),\n"
		"                    sl_client_append_wait(COMMITTED); append+wait,\n"
		"                    sl_client_append(FLUSH) then sl_client_wait(COMMITTED)\n"
		"  --cpu N           pin the leader's loop thread (both paths') and the client\n"
		"                    thread to CPU N (default: not pinned)\n"
		"  --dir DIR         parent of the run's directory (default /var/tmp)\n"
		"Before the run it measures the machine's limit, a sleeping thread's futex\n"
		"wake-up (%u of them) from the other CPU and from its own, the two\n"
		"hand-offs a client record makes that the in-process append does not.\n",
		WAKE_ROUNDS);
}

static int parse_opts(struct cb *b, int argc, char **argv)
{
	uint64_t v;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;

		sl_err_clear();
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (!val) {
			rc = -EINVAL;
		} else if (strcmp(a, "--acks") == 0) {
			rc = sl_acks_parse(val, &b->policy.acks);
		} else if (strcmp(a, "--ack-level") == 0) {
			rc = sl_ack_level_parse(val, &b->policy.level);
		} else if (strcmp(a, "--record-bytes") == 0) {
			rc = bench_parse_u64(a, val, 1, 1u << 20, &v);
			b->record_bytes = (uint32_t)v;
		} else if (strcmp(a, "--spin-us") == 0) {
			rc = bench_parse_u64(a, val, 0, 10000000, &v);
			b->spin_us = (uint32_t)v;
		} else if (strcmp(a, "--client-call") == 0) {
			b->two_calls = strcmp(val, "append+wait") == 0;
			if (!b->two_calls && strcmp(val, "append-wait") != 0)
				rc = sl_err_set(EINVAL,
						"--client-call: append-wait or append+wait, "
						"not '%s'",
						val);
		} else if (strcmp(a, "--cpu") == 0) {
			cpu_set_t set;

			rc = bench_parse_u64(a, val, 0, CPU_SETSIZE - 1, &v);
			b->cpu = (int)v;
			if (!rc && (sched_getaffinity(0, sizeof(set), &set) < 0 ||
				    !CPU_ISSET(b->cpu, &set)))
				rc = sl_err_set(
				    EINVAL, "--cpu %d: not a CPU this process may run on", b->cpu);
		} else if (strcmp(a, "--idle") == 0) {
			rc = sl_idle_parse(val, &b->idle);
		} else if (strcmp(a, "--warmup") == 0) {
			char *end;

			b->warmup = strtod(val, &end);
			if (*end || b->warmup < 0)
				rc = sl_err_set(EINVAL, "--warmup wants seconds, got '%s'", val);
		} else {
			rc = sl_err_set(EINVAL, "unknown option '%s'", a);
		}
		if (rc) {
			fprintf(stderr, "shipbench client: %s\n",
				*sl_err_msg() ? sl_err_msg() : "bad option");
			usage(stderr);
			return -EINVAL;
		}
		i++;
	}
	return 0;
}

/* ---- the cluster ---- */

static void leader_commit(void *ctx, uint64_t commit_lsn)
{
	struct cb *b = ctx;

	b->commit_lsn = commit_lsn;
	atomic_store_explicit(&b->commit_ns, sl_node_now(), memory_order_release);
	sl_csrv_on_commit(b->srv, commit_lsn);
}

/* No engine on the followers: delivered is applied. */
static void follower_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *raw,
			     size_t raw_len)
{
	struct sl_node **n = ctx;

	(void)raw, (void)raw_len;
	if (h->record_count && *n)
		sl_node_applied(*n, h->base_lsn + h->record_count - 1);
}

static int configure(struct cb *b)
{
	static const uint8_t id[16] = "shipbench-client";
	uint16_t ports[NODES];
	int rc;

	if ((rc = sl_cluster_free_ports(ports, NODES)))
		return rc;
	for (unsigned i = 0; i < NODES; i++) {
		struct sl_node_config *nc = &b->cfg[i];

		snprintf(b->ndir[i], PATH_MAX, "%s/n%u", b->dir, i + 1);
		if (mkdir(b->ndir[i], 0700) < 0)
			return sl_err_set(errno, "mkdir %s: %s", b->ndir[i], strerror(errno));
		memcpy(nc->proto.cluster_id, id, sizeof(id));
		nc->proto.stream_id = 1;
		nc->proto.node_id = i + 1;
		nc->proto.n_nodes = NODES;
		for (unsigned k = 0; k < NODES; k++)
			nc->proto.node_ids[k] = k + 1;
		nc->proto.leader_id = 1;
		nc->proto.epoch = 1;
		nc->proto.policy = b->policy;
		nc->proto.limits = sl_batch_default_limits;
		nc->proto.limits.max_record_bytes = b->record_bytes;
		nc->store.dir = b->ndir[i];
		nc->idle = b->idle;
		if (i == 0 && b->cpu >= 0) {
			nc->pin_cpu = 1;
			nc->cpu = (uint32_t)b->cpu;
		}
		nc->net.self = (struct sl_endpoint){.ip = htonl(INADDR_LOOPBACK), .port = ports[i]};
		for (unsigned k = 0; k < NODES; k++)
			if (k != i)
				nc->net.peers[nc->net.n_peers++] = (struct sl_peer_addr){
				    .node_id = k + 1,
				    .ep = {.ip = htonl(INADDR_LOOPBACK), .port = ports[k]}};
	}
	return 0;
}

static int inproc_take(void *ctx);

static int open_nodes(struct cb *b)
{
	int rc;

	for (unsigned i = 0; i < NODES; i++) {
		struct sl_node_engine e = {0};

		if (i == 0)
			e = (struct sl_node_engine){
			    .ctx = b, .commit = leader_commit, .take = inproc_take};
		else
			e = (struct sl_node_engine){.ctx = &b->node[i],
						    .deliver = follower_deliver};
		if ((rc = sl_node_open(&b->node[i], &b->cfg[i], &e)))
			return rc;
	}
	snprintf(b->sock, sizeof(b->sock), "%s/client.sock", b->dir);
	return sl_csrv_open(&b->srv, b->node[0], &(struct sl_csrv_opts){.path = b->sock});
}

struct fthread {
	struct cb *b;
	unsigned i;
};

static void *follower_run(void *arg)
{
	struct fthread *f = arg;

	sl_node_run(f->b->node[f->i], &f->b->stop);
	return NULL;
}

/* ---- the two engines ---- */

/* Each path's samples are written by its own thread only. Past
 * SAMPLES_MAX (or without memory) the report falls back to the histogram. */
static void keep_sample(struct cb *b, int path, uint64_t ns)
{
	struct lat_samples *l = &b->lat[path];

	if (l->n == l->cap && l->cap < SAMPLES_MAX) {
		uint32_t cap = l->cap ? l->cap * 2 : 65536;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));

		if (v) {
			l->v = v;
			l->cap = cap;
		}
	}
	if (l->n < l->cap)
		l->v[l->n] = ns;
	l->n++; /* counts what did not fit too */
}

/* Exact quantile of a path's latencies in us, or the histogram's. */
static double lat_q(struct cb *b, int path, double q)
{
	struct lat_samples *l = &b->lat[path];
	uint32_t i;

	if (l->n == 0 || l->n > l->cap)
		return (double)sl_hist_quantile(path ? &b->client : &b->inproc, q) / 1000.0;
	qsort(l->v, l->n, sizeof(*l->v), bench_cmp_u64);
	i = (uint32_t)(q * (l->n - 1) + 0.5);
	return (double)l->v[i] / 1000.0;
}

/* One record in flight, in one path at a time: the last commit callback is
 * the one that covered it. */
static void record_split(struct cb *b, int path, uint64_t t0, uint64_t t_seen)
{
	uint64_t tc = atomic_load_explicit(&b->commit_ns, memory_order_acquire);

	sl_hist_record(path ? &b->client : &b->inproc, t_seen - t0);
	keep_sample(b, path, t_seen - t0);
	if (tc >= t0 && tc <= t_seen) {
		sl_hist_record(&b->to_commit[path], tc - t0);
		sl_hist_record(&b->seen[path], t_seen - tc);
	}
}

/* The in-process engine, at the points of the leader's turn where shipd
 * takes a client's entries (so neither path appends at a better place in
 * the turn): its record's commit seen, then the next record appended and
 * flushed. */
static int inproc_take(void *ctx)
{
	struct cb *b = ctx;
	struct sl_node *n = b->node[0];
	int64_t lsn;

	if (b->leader_rc)
		return 0;
	if (b->inflight && b->commit_lsn >= b->inflight) {
		if (atomic_load_explicit(&b->measuring, memory_order_relaxed))
			record_split(b, 0, b->t0, sl_node_now());
		b->inflight = 0;
		atomic_store(&b->inproc_busy, 0);
	}
	if (b->inflight || atomic_load_explicit(&b->phase, memory_order_relaxed) != PH_INPROC)
		return 0;
	atomic_store(&b->inproc_busy, 1);
	sl_wl_fill(&b->wl, b->rec, b->record_bytes);
	b->t0 = sl_node_now();
	lsn = sl_node_append(n, b->rec, b->record_bytes);
	if (lsn < 0) {
		b->leader_rc = (int)lsn;
		return 0;
	}
	sl_node_flush(n);
	b->inflight = (uint64_t)lsn;
	return 1;
}

/* The leader's thread: its node's loop (which runs the in-process engine). */
static void *leader_main(void *arg)
{
	struct cb *b = arg;
	struct sl_node *n = b->node[0];

	while (!b->stop && !b->leader_rc) {
		int ev = sl_node_poll(n);

		if (ev < 0) {
			b->leader_rc = ev;
			break;
		}
		if (b->inflight && sl_node_now() - b->t0 > WAIT_MS * 1000000ull) {
			b->leader_rc = sl_err_set(ETIMEDOUT, "inproc: no commit in %d ms", WAIT_MS);
			break;
		}
		sl_node_idle(n, ev);
	}
	b->stop = 1;
	return NULL;
}

static void *client_main(void *arg)
{
	struct cb *b = arg;
	struct sl_client_opts o = {
	    .socket = b->sock, .spin_us = b->spin_us, .pin_to_loop = b->cpu >= 0};
	struct sl_client *c = NULL;
	uint8_t *rec = malloc(b->record_bytes);
	struct sl_wl wl;
	int rc = rec ? sl_client_open(&c, &o) : -ENOMEM;

	sl_wl_init(&wl, SL_WL_TEXT, 2);
	while (rc == 0 && !b->stop) {
		uint64_t t0, t1;
		int64_t lsn;

		if (atomic_load(&b->phase) != PH_CLIENT) {
			atomic_store(&b->client_busy, 0);
			nanosleep(&(struct timespec){.tv_nsec = 200000}, NULL);
			continue;
		}
		atomic_store(&b->client_busy, 1);
		sl_wl_fill(&wl, rec, b->record_bytes);
		t0 = sl_node_now();
		if (!b->two_calls) {
			lsn = sl_client_append_wait(c, rec, b->record_bytes, SL_LEVEL_COMMITTED,
						    WAIT_MS);
			if (lsn < 0) {
				rc = (int)lsn;
				break;
			}
			if (atomic_load_explicit(&b->measuring, memory_order_relaxed))
				record_split(b, 1, t0, sl_node_now());
			continue;
		}
		lsn = sl_client_append(c, rec, b->record_bytes, SL_APPEND_FLUSH);
		if (lsn < 0) {
			rc = (int)lsn;
			break;
		}
		t1 = sl_node_now();
		if ((rc = sl_client_wait(c, (uint64_t)lsn, SL_LEVEL_COMMITTED, WAIT_MS)))
			break;
		if (atomic_load_explicit(&b->measuring, memory_order_relaxed)) {
			record_split(b, 1, t0, sl_node_now());
			sl_hist_record(&b->handoff, t1 - t0);
		}
	}
	if (rc) {
		b->client_rc = rc;
		snprintf(b->client_err, sizeof(b->client_err), "%s", sl_client_errmsg());
		b->stop = 1;
	}
	atomic_store(&b->client_busy, 0);
	sl_client_close(c);
	free(rec);
	return NULL;
}

/* ---- the run ---- */

static void sleep_ns(uint64_t ns)
{
	nanosleep(&(struct timespec){.tv_sec = (time_t)(ns / 1000000000ull),
				     .tv_nsec = (long)(ns % 1000000000ull)},
		  NULL);
}

/* Alternate the paths slice by slice: warmup, then `seconds` of each. */
static void conduct(struct cb *b, const struct bench_common *c)
{
	uint64_t warm = (uint64_t)(b->warmup * 1e9), each = (uint64_t)(b->seconds * 1e9);
	uint64_t done[2] = {0, 0}, warmed = 0;
	int turn = 0;

	while (!b->stop && (done[0] < each || done[1] < each)) {
		int ph = turn ? PH_CLIENT : PH_INPROC;
		_Atomic int *busy = turn ? &b->client_busy : &b->inproc_busy;
		uint64_t t0 = sl_node_now(), bound = t0 + (uint64_t)WAIT_MS * 1000000ull;

		atomic_store(&b->measuring, warmed >= warm);
		atomic_store(&b->phase, ph);
		sleep_ns(SLICE_NS);
		atomic_store(&b->phase, PH_IDLE);
		/* its last record finishes before the other path starts */
		while (atomic_load(busy) && !b->stop && sl_node_now() < bound)
			sleep_ns(100000);
		if (warmed >= warm)
			done[turn] += sl_node_now() - t0;
		else
			warmed += sl_node_now() - t0;
		if (!c->json)
			bench_progress("client", (double)(done[0] + done[1]) / 1e9, 2 * b->seconds);
		turn ^= 1;
	}
	atomic_store(&b->phase, PH_STOP);
}

/* The limit the two wake-ups a client record pays are judged against:
 * futex wake-ups between the first two CPUs this process may use (the
 * --cpu one first), and within one. */
static int measure_wake(struct cb *b)
{
	cpu_set_t set;
	int cpu[2] = {b->cpu, -1}, rc;

	b->wake_x_us = b->wake_same_us = -1;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return sl_err_set(errno, "sched_getaffinity: %s", strerror(errno));
	for (int i = 0; i < CPU_SETSIZE && cpu[1] < 0; i++) {
		if (!CPU_ISSET(i, &set) || i == cpu[0])
			continue;
		if (cpu[0] < 0)
			cpu[0] = i;
		else
			cpu[1] = i;
	}
	if ((rc =
		 bench_wake_p50((unsigned)cpu[0], (unsigned)cpu[0], WAKE_ROUNDS, &b->wake_same_us)))
		return sl_err_set(-rc, "the wake-up limit on CPU %d: %s", cpu[0], strerror(-rc));
	if (cpu[1] >= 0 &&
	    (rc = bench_wake_p50((unsigned)cpu[1], (unsigned)cpu[0], WAKE_ROUNDS, &b->wake_x_us)))
		return sl_err_set(-rc, "the wake-up limit, CPU %d to %d: %s", cpu[0], cpu[1],
				  strerror(-rc));
	return 0;
}

static int run(struct cb *b, const struct bench_common *c)
{
	struct fthread ft[NODES];
	int rc, started = 0;

	if ((rc = measure_wake(b)) || (rc = configure(b)) || (rc = open_nodes(b)))
		goto out;
	for (unsigned i = 1; i < NODES; i++) {
		ft[i] = (struct fthread){.b = b, .i = i};
		if (pthread_create(&b->thr[i], NULL, follower_run, &ft[i]) == 0)
			started |= 1 << i;
	}
	if (pthread_create(&b->thr[0], NULL, leader_main, b) == 0)
		started |= 1;
	if (pthread_create(&b->thr[NODES], NULL, client_main, b) == 0)
		started |= 1 << NODES;
	if (started != (1 << (NODES + 1)) - 1) {
		rc = sl_err_set(EAGAIN, "could not start the threads");
		b->stop = 1;
	} else {
		conduct(b, c);
	}
	b->stop = 1;
	for (unsigned i = 0; i <= NODES; i++)
		if (started & (1 << i))
			pthread_join(b->thr[i], NULL);
	if (!rc && b->leader_rc)
		rc = sl_err_wrap(b->leader_rc, "the leader");
	if (!rc && b->client_rc)
		rc = sl_err_set(-b->client_rc, "the client: %s", b->client_err);
out:
	if (b->srv)
		sl_csrv_get_stats(b->srv, &b->srv_st);
	sl_csrv_close(b->srv);
	for (unsigned i = 0; i < NODES; i++)
		sl_node_close(b->node[i]);
	return rc;
}

/* The machine's 1-minute load average: wall-clock figures mean little on a
 * busy machine, so the report says how busy it was. */
static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static double q50(const struct sl_hist *h)
{
	return us(sl_hist_quantile(h, 0.5));
}

static void report(struct cb *b, const struct bench_common *c)
{
	double ip50 = lat_q(b, 0, 0.5), ip99 = lat_q(b, 0, 0.99), cp50 = lat_q(b, 1, 0.5),
	       cp99 = lat_q(b, 1, 0.99);
	char acks[16], pin[24] = "not pinned";

	if (b->cpu >= 0)
		snprintf(pin, sizeof(pin), "on CPU %d", b->cpu);
	if (c->json) {
		struct bench_json j;

		bench_json_begin(&j, "client");
		bench_json_num(&j, "inproc_p50_us", ip50);
		bench_json_num(&j, "inproc_p99_us", ip99);
		bench_json_num(&j, "client_p50_us", cp50);
		bench_json_num(&j, "client_p99_us", cp99);
		bench_json_num(&j, "diff_p50_us", cp50 - ip50);
		bench_json_str(&j, "client_call", b->two_calls ? "append+wait" : "append-wait");
		bench_json_num(&j, "handoff_p50_us", us(sl_hist_quantile(&b->handoff, 0.5)));
		bench_json_num(&j, "inproc_to_commit_p50_us", q50(&b->to_commit[0]));
		bench_json_num(&j, "inproc_seen_p50_us", q50(&b->seen[0]));
		bench_json_num(&j, "client_to_commit_p50_us", q50(&b->to_commit[1]));
		bench_json_num(&j, "client_seen_p50_us", q50(&b->seen[1]));
		bench_json_num(&j, "ratio_p50", ip50 > 0 ? cp50 / ip50 : 0);
		bench_json_num(&j, "limit_wake_p50_us", b->wake_x_us);
		bench_json_num(&j, "limit_wake_same_cpu_p50_us", b->wake_same_us);
		bench_json_num(&j, "diff_per_wake",
			       b->wake_x_us > 0 ? (cp50 - ip50) / b->wake_x_us : 0);
		bench_json_num(&j, "diff_per_wake_same_cpu",
			       b->wake_same_us > 0 ? (cp50 - ip50) / b->wake_same_us : 0);
		bench_json_int(&j, "inproc_n", (long long)b->inproc.count);
		bench_json_int(&j, "client_n", (long long)b->client.count);
		bench_json_str(&j, "acks", sl_acks_name(b->policy.acks, acks, sizeof(acks)));
		bench_json_str(&j, "ack_level", sl_ack_level_name(b->policy.level));
		bench_json_int(&j, "record_bytes", b->record_bytes);
		bench_json_int(&j, "spin_us", b->spin_us);
		bench_json_str(&j, "idle", sl_idle_name(b->idle));
		bench_json_int(&j, "cpu", b->cpu);
		bench_json_num(&j, "loadavg", loadavg());
		bench_json_int(&j, "client_wakeups", (long long)b->srv_st.kicks);
		bench_json_int(&j, "node_sleeps", (long long)b->srv_st.wakeups);
		bench_json_int(&j, "leader_yields", (long long)b->srv_st.yields);
		bench_json_end(&j);
		return;
	}
	printf("client: 3 nodes, kernel UDP, acks=%s %s, %u-byte records, one in flight, "
	       "idle %s, client spin %u us (0: adaptive), leader loop and client %s; load "
	       "average %.2f\n",
	       sl_acks_name(b->policy.acks, acks, sizeof(acks)), sl_ack_level_name(b->policy.level),
	       b->record_bytes, sl_idle_name(b->idle), b->spin_us, pin, loadavg());
	printf("  in process (the limit): p50 %8.1f us  p99 %8.1f us  (%" PRIu64 " commits)\n",
	       ip50, ip99, b->inproc.count);
	printf("  through libshiplog:     p50 %8.1f us  p99 %8.1f us  (%" PRIu64 " commits, %s)\n",
	       cp50, cp99, b->client.count,
	       b->two_calls ? "sl_client_append + sl_client_wait" : "sl_client_append_wait");
	printf("  the client slept in the kernel %" PRIu64 " times, the leader's loop %" PRIu64
	       " times; the leader yielded its CPU to a woken client %" PRIu64 " times\n",
	       b->srv_st.kicks, b->srv_st.wakeups, b->srv_st.yields);
	printf("  split at the commit callback, p50: in process %.1f + %.1f us (seen at the "
	       "turn's next take point), through libshiplog %.1f + %.1f us (the call "
	       "returned)\n",
	       q50(&b->to_commit[0]), q50(&b->seen[0]), q50(&b->to_commit[1]), q50(&b->seen[1]));
	printf("  library cost at p50: %+.1f us (ratio %.3f)", cp50 - ip50,
	       ip50 > 0 ? cp50 / ip50 : 0);
	printf(
	    "\n  the machine's wake-up (the limit: a client record needs two that the in-process "
	    "engine does not), p50: %.1f us from the other CPU, %.1f us on the same CPU; "
	    "the library cost is %.2f / %.2f of them",
	    b->wake_x_us, b->wake_same_us, b->wake_x_us > 0 ? (cp50 - ip50) / b->wake_x_us : 0,
	    b->wake_same_us > 0 ? (cp50 - ip50) / b->wake_same_us : 0);
	if (b->two_calls)
		printf("; the append alone (until shipd took it): p50 %.1f us",
		       us(sl_hist_quantile(&b->handoff, 0.5)));
	printf("\n");
}

int bench_client_main(const struct bench_common *c, int argc, char **argv)
{
	struct cb *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return 1;
	b->policy.acks = 1;
	b->policy.level = SL_ACK_DURABLE;
	b->record_bytes = 1024;
	b->idle = SL_IDLE_BACKOFF;
	b->warmup = 0.5;
	b->cpu = -1;
	b->seconds = c->seconds;
	if (parse_opts(b, argc, argv)) {
		free(b);
		return 2;
	}
	if (!(b->rec = malloc(b->record_bytes))) {
		free(b);
		return 1;
	}
	sl_wl_init(&b->wl, SL_WL_TEXT, 1);
	sl_hist_reset(&b->inproc);
	sl_hist_reset(&b->client);
	sl_hist_reset(&b->handoff);
	for (int i = 0; i < 2; i++) {
		sl_hist_reset(&b->to_commit[i]);
		sl_hist_reset(&b->seen[i]);
	}
	snprintf(b->dir, sizeof(b->dir), "%s/shipbench-client.XXXXXX",
		 c->dir ? c->dir : "/var/tmp");
	if (!mkdtemp(b->dir)) {
		fprintf(stderr, "shipbench client: mkdtemp %s: %s\n", b->dir, strerror(errno));
		free(b->rec);
		free(b);
		return 1;
	}
	rc = run(b, c);
	bench_remove_dir(b->dir);
	free(b->rec);
	if (rc) {
		fprintf(stderr, "shipbench client: %s\n", sl_err_msg());
		free(b->lat[0].v);
		free(b->lat[1].v);
		free(b);
		return 1;
	}
	report(b, c);
	free(b->lat[0].v);
	free(b->lat[1].v);
	free(b);
	return 0;
}
