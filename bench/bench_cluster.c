/* shipbench cluster, the benchmark of record: shiplog nodes in this
 * process, one thread each (idle strategy backoff, so they share a small
 * machine), logs in a fresh directory, over a real transport: kernel UDP on
 * 127.0.0.1, DPDK (net_memif, or net_af_packet on veth pairs), or the kernel
 * TCP baseline. The cluster itself is app/cluster.c: the leader's thread
 * runs the workload and times every record from its append (closed loop)
 * or from when it was due (open loop, so a stall cannot hide behind the
 * records it delayed) to the commit callback that covers it; followers
 * time each batch from the leader's seal to their delivery (same clock).
 *
 * One invocation runs a plan: every combination of the listed transports,
 * data kinds, record sizes, modes, acks and ack levels (--matrix: every
 * ack policy), one after the other with the same workload. Before the
 * first run, the machine's limits: a durable 4 KiB write at queue depth 1
 * over written blocks (measure_sync) and sequential O_DIRECT bandwidth in the logs' file system,
 * the same durable write by one writer per node at once (measure_par, before a run whose pacing
 * differs from the last: in an open loop each writer at the loop's rate),
 * each transport's round trip (1 KiB frames ping-ponged between two transports of that kind, busy
 * polling), LZ4 on each data kind and record size. Each run prints its results against them, then a
 * summary table; --json prints one line per run; --plot DIR writes the data behind the plots and
 * draws them (bench/plot.py).
 *
 * After each run every follower's log is compared with the leader's
 * committed prefix byte for byte; the exit status says whether all did. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "shiplog/cluster.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/hist.h"
#include "shiplog/quorum.h"
#include "shiplog/workload.h"

#define LIMIT_SECONDS 1.0
#define LZ4_SECONDS   0.25 /* a trial; the best of LZ4_TRIALS is the limit */
#define LZ4_TRIALS    3
#define RTT_FRAME     1024
#define LZ4_POOL      (4u << 20) /* bytes of records LZ4 is measured on */
#define SEQ_FILE      (1ull << 30)
/* The fsync limit writes over this many bytes written beforehand, as the
 * log writes over blocks it has written ahead (io/store.c, prewriting). */
#define SYNC_WRITTEN (16ull << 20)
/* The parallel probe: one writer per node for PAR_SECONDS, each over
 * PAR_WRITTEN bytes of its own file, before each run whose pacing or node
 * count differs from the last one measured. */
#define PAR_SECONDS 0.5
/* --breakdown: the run's own write pattern, right after it, this long
 * without and with zeros (measure_run_pattern). */
#define PATTERN_SECONDS 1.0
#define PAR_WRITTEN	(4ull << 20)
#define SEQ_WRITE	(1u << 20) /* the store's group size */
#define SEQ_DEPTH	2
#define LIST_MAX	8
#define RUNS_MAX	512
#define NETS		4
#define ROUNDS_MAX	64

#ifndef SHIPLOG_PLOT_PY
#define SHIPLOG_PLOT_PY "bench/plot.py"
#endif

struct cb_plan {
	enum sl_cluster_net nets[LIST_MAX];
	int acks[LIST_MAX];
	enum sl_ack_level levels[LIST_MAX];
	uint32_t sizes[LIST_MAX];
	enum sl_wl_kind data[LIST_MAX];
	enum sl_cluster_mode modes[LIST_MAX];
	enum sl_idle idles[LIST_MAX];
	unsigned n_nets, n_acks, n_levels, n_sizes, n_data, n_modes, n_idles;
	const char *plot_dir;
	int matrix;
	int half_max;	 /* each closed-loop run followed by an open loop at half its rate */
	int seal;	 /* 0 auto (linger in open loop), 1 idle, 2 linger, 3 log, 4 adaptive */
	unsigned rounds; /* the plan this many times, transports interleaved */
};

struct cb_disk {
	double fsync_p50_us, fsync_p99_us, seq_mb_s;
};

/* The durable write as the run's nodes contend for it: `writers` probes at
 * once, each at most `per_s` writes a second (0: back to back). */
struct cb_par {
	unsigned writers;
	uint64_t per_s;
	int measured;
	double p50_us, p99_us;
};

/* The disk alone under a run's own write pattern (--breakdown). */
struct cb_pattern {
	int measured;
	struct bench_sync_pattern p; /* zeros_per_s 0: the run wrote none */
	double p50_us, p99_us;	     /* without zeros */
	double z50_us, z99_us;	     /* with them */
};

/* One run's figures, kept for the summary table. */
struct cb_row {
	enum sl_cluster_net net;
	int acks;
	enum sl_ack_level level;
	uint32_t size;
	enum sl_wl_kind data;
	enum sl_cluster_mode mode;
	uint64_t load; /* open loop: records/s asked for; closed: in flight */
	enum sl_idle idle;
	unsigned round;
	int failed, verified;
	double rps, mb_s, c50, c99, c999, l50, l99, ratio, cpu_gb, load1;
	uint64_t retransmits;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shipbench cluster [--json] [--seconds S] [--dir DIR] [--seed N]\n"
		"                        [--transport LIST] [--acks LIST] [--ack-level LIST]\n"
		"                        [--record-bytes LIST] [--data LIST] [--mode LIST]\n"
		"                        [--matrix] [--half-max] [--rate N] [--inflight N]\n"
		"                        [--clients N] [--warmup S] [--nodes N]\n"
		"                        [--batch-bytes N] [--linger-us N] [--seal S]\n"
		"                        [--inline-write-max N] [--log-inflight N]\n"
		"                        [--prewrite-chunk N] [--timer-early-us N] [--mtu N]\n"
		"                        [--lz4-accel N] [--idle LIST] [--plot DIR]\n"
		"                        [--check-records] [--fresh-records] [--breakdown]\n"
		"                        [--compress-thread] [--rounds N]\n"
		"                        [--keep]\n"
		"Runs every combination of the lists (comma-separated) one after the other,\n"
		"after measuring the machine's limits once (the durable write by one writer\n"
		"per node at once again before a run whose pacing differs: 0.5 s). --seconds S\n"
		"is each run's measured time.\n"
		"  --rounds N        run the plan N times (1..64, default 1), the transports\n"
		"                    interleaved (udp, memif, then memif, udp in the next\n"
		"                    round, ... for each workload) so that a slow minute of\n"
		"                    the host falls on all alike and none always runs first;\n"
		"                    every run is reported (JSON key \"round\"),\n"
		"                    then per transport and workload the median of the\n"
		"                    rounds, their spread (min-max) and in how many rounds\n"
		"                    it led (most records/s, lowest commit p99)\n"
		"  --transport LIST  udp: kernel UDP over io_uring on 127.0.0.1 (default);\n"
		"                    memif: DPDK, a net_memif pair per pair of nodes;\n"
		"                    af_packet: DPDK net_af_packet on a veth pair per pair of\n"
		"                    nodes, each end in its node's network namespace, made\n"
		"                    and removed by the run (root); tcp: kernel TCP, plain\n"
		"                    sockets, the baseline. DPDK runs without hugepages\n"
		"                    (--no-huge)\n"
		"  --acks LIST       follower acks a commit needs: 0, 1..15, majority, all (1)\n"
		"  --ack-level LIST  received, durable, applied (durable); with acks 0 only the\n"
		"                    first level runs (no follower is waited for)\n"
		"  --matrix          every ack policy: acks 0,1,majority,all x every level\n"
		"  --record-bytes LIST  bytes per record, 1..1M (1024)\n"
		"  --data LIST       text (WAL-like) or random (text)\n"
		"  --mode LIST       closed: at most --inflight records uncommitted (default);\n"
		"                    open: --rate records/s on a fixed schedule, latency from\n"
		"                    the scheduled time\n"
		"  --half-max        after each closed-loop run, the same workload in open loop\n"
		"                    at half the records/s it reached (follower lag at half\n"
		"                    the maximum throughput)\n"
		"  --rate N          open loop: records per second (10000)\n"
		"  --inflight N      closed loop: records outstanding (default 64)\n"
		"  --clients N       client threads producing the records and handing them to\n"
		"                    the leader's thread (0: the leader's thread produces them,\n"
		"                    as an engine linking the node would; default 0)\n"
		"  --warmup S        seconds run before measuring (default 1)\n"
		"  --nodes N         cluster size (default 3)\n"
		"  --batch-bytes N   close a batch at this many raw bytes (default 65536)\n"
		"  --linger-us N     or this long after its first record (default 100)\n"
		"  --idle LIST       node idle strategy: backoff (default): spin, then sleep\n"
		"                    until a frame or a completion arrives (a transport that\n"
		"                    cannot be waited for: yield, then sleep up to 50 us);\n"
		"                    nap: spin, yield, then sleep up to 50 us on the timer\n"
		"                    whatever the transport; spin; yield\n"
		"  --seal S          idle: seal the open batch whenever no record may go now, as\n"
		"                    an engine about to wait would; linger: leave it to\n"
		"                    --batch-bytes and --linger-us, as an engine that does not\n"
		"                    wait; log: as linger, and the leader also seals whenever\n"
		"                    its log has no write in flight (group commit); adaptive:\n"
		"                    as linger, and the leader also seals whenever nothing is\n"
		"                    in flight (its log idle, every batch committed); auto\n"
		"                    (default): idle in closed loop, linger in open loop (its\n"
		"                    records go on schedule, nobody waits)\n"
		"  --lz4-accel N     LZ4 acceleration of the leader's batches ([stream]\n"
		"                    lz4_acceleration; default 1): faster, larger batches;\n"
		"                    limit_lz4_mb_s is measured at it\n"
		"  --inline-write-max N  every node writes a group of at most N bytes\n"
		"                    alone in its log from its store's writer thread\n"
		"                    (pwritev2, RWF_DSYNC) rather than through io_uring\n"
		"                    ([store] inline_write_max; default 0: off)\n"
		"  --log-inflight N  every node's group writes in flight at once, 1..64\n"
		"                    ([store] max_inflight; default 2)\n"
		"  --timer-early-us N  every node wakes N us before a timed event (a record\n"
		"                    due, a linger's end) and spins to it (default 0: sleeps\n"
		"                    until it; a timer's wake-up comes 10-16 us late here)\n"
		"  --prewrite-chunk N  every node's chunks of zeros written ahead, 256K..8M\n"
		"                    ([store] prewrite_chunk; default 1M)\n"
		"  --mtu N           every node's IP MTU, 576..9216: DATA fragments fill it\n"
		"                    (default 1500)\n"
		"  --plot DIR        write each run's commit-latency CDF, follower lag and the\n"
		"                    host's steal time over time (CSV) and results.jsonl into\n"
		"                    DIR, then draw the PNG\n"
		"                    plots with %s (python3-matplotlib)\n"
		"  --check-records   followers also compare every record they are delivered\n"
		"                    (else their engines read no records: no batch is\n"
		"                    decompressed for them)\n"
		"  --compress-thread the leader compresses full batches on a thread of their\n"
		"                    own while its loop goes on (a compressor stage, used\n"
		"                    while batches fill; default: in the loop)\n"
		"  --fresh-records   generate every record as it is sent (on the producing\n"
		"                    thread) rather than copy it from a prepared pool of 8 MiB\n"
		"                    of generated records, each copy stamped with its own\n"
		"                    sequence number (the default, as benchmarks commonly\n"
		"                    send from a prepared payload)\n"
		"  --breakdown       trace every node and print where each batch's time went,\n"
		"                    hop by hop from its first record's due time to its commit\n"
		"                    and on to each follower's delivery\n"
		"                    (p50/p90/p99 per hop; with --json also bd_*_p50_us keys);\n"
		"                    the tracing itself costs a clock read per event\n"
		"  --dir DIR         parent of the runs' directories (default /var/tmp)\n"
		"  --keep            keep the logs\n"
		"Output: per run a report (or with --json one JSON line), then a summary table\n"
		"(on stderr with --json); progress on stderr.\n",
		SHIPLOG_PLOT_PY);
}

/* ---- options ---- */

/* Split a comma-separated list, parsing each item with `one`. */
static int parse_list(const char *opt, const char *val, unsigned *n, void *out, size_t elem,
		      int (*one)(const char *opt, const char *s, void *out))
{
	char buf[256], *save = NULL, *tok;

	if (strlen(val) >= sizeof(buf))
		return sl_err_set(EINVAL, "%s: list too long", opt);
	snprintf(buf, sizeof(buf), "%s", val);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int rc;

		if (*n == LIST_MAX)
			return sl_err_set(EINVAL, "%s: at most %d items", opt, LIST_MAX);
		if ((rc = one(opt, tok, (char *)out + *n * elem)) < 0)
			return rc;
		++*n;
	}
	return *n ? 0 : sl_err_set(EINVAL, "%s: empty list", opt);
}

static int one_net(const char *opt, const char *s, void *out)
{
	(void)opt;
	return sl_cluster_net_parse(s, out);
}

static int one_acks(const char *opt, const char *s, void *out)
{
	(void)opt;
	return sl_acks_parse(s, out);
}

static int one_level(const char *opt, const char *s, void *out)
{
	(void)opt;
	return sl_ack_level_parse(s, out);
}

static int one_data(const char *opt, const char *s, void *out)
{
	(void)opt;
	return sl_wl_kind_parse(s, out);
}

static int one_size(const char *opt, const char *s, void *out)
{
	uint64_t v;
	int rc = bench_parse_u64(opt, s, 1, 1u << 20, &v);

	*(uint32_t *)out = (uint32_t)v;
	return rc;
}

static int one_idle(const char *opt, const char *s, void *out)
{
	(void)opt;
	return sl_idle_parse(s, out);
}

static int one_mode(const char *opt, const char *s, void *out)
{
	(void)opt;
	if (strcmp(s, "closed") == 0)
		*(enum sl_cluster_mode *)out = SL_CLUSTER_CLOSED;
	else if (strcmp(s, "open") == 0)
		*(enum sl_cluster_mode *)out = SL_CLUSTER_OPEN;
	else
		return sl_err_set(EINVAL, "--mode is closed or open, got '%s'", s);
	return 0;
}

static int parse_seconds(const char *opt, const char *val, double *out)
{
	char *end;

	*out = strtod(val, &end);
	if (*end || end == val || *out < 0)
		return sl_err_set(EINVAL, "%s wants seconds >= 0, got '%s'", opt, val);
	return 0;
}

static int parse_one(const char *a, const char *val, struct sl_cluster_opts *o, struct cb_plan *p)
{
	uint64_t v;
	int rc;

	if (strcmp(a, "--transport") == 0)
		return parse_list(a, val, &p->n_nets, p->nets, sizeof(p->nets[0]), one_net);
	if (strcmp(a, "--acks") == 0)
		return parse_list(a, val, &p->n_acks, p->acks, sizeof(p->acks[0]), one_acks);
	if (strcmp(a, "--ack-level") == 0)
		return parse_list(a, val, &p->n_levels, p->levels, sizeof(p->levels[0]), one_level);
	if (strcmp(a, "--record-bytes") == 0)
		return parse_list(a, val, &p->n_sizes, p->sizes, sizeof(p->sizes[0]), one_size);
	if (strcmp(a, "--data") == 0)
		return parse_list(a, val, &p->n_data, p->data, sizeof(p->data[0]), one_data);
	if (strcmp(a, "--mode") == 0)
		return parse_list(a, val, &p->n_modes, p->modes, sizeof(p->modes[0]), one_mode);
	if (strcmp(a, "--plot") == 0) {
		p->plot_dir = val;
		return 0;
	}
	if (strcmp(a, "--rate") == 0)
		return bench_parse_u64(a, val, 1, 100000000, &o->rate);
	if (strcmp(a, "--warmup") == 0)
		return parse_seconds(a, val, &o->warmup);
	if (strcmp(a, "--idle") == 0)
		return parse_list(a, val, &p->n_idles, p->idles, sizeof(p->idles[0]), one_idle);
	if (strcmp(a, "--seal") == 0) {
		if (strcmp(val, "auto") == 0)
			p->seal = 0;
		else if (strcmp(val, "idle") == 0)
			p->seal = 1;
		else if (strcmp(val, "linger") == 0)
			p->seal = 2;
		else if (strcmp(val, "log") == 0)
			p->seal = 3;
		else if (strcmp(val, "adaptive") == 0)
			p->seal = 4;
		else
			return sl_err_set(
			    EINVAL, "--seal is auto, idle, linger, log or adaptive, got '%s'", val);
		return 0;
	}
	if (strcmp(a, "--rounds") == 0) {
		rc = bench_parse_u64(a, val, 1, ROUNDS_MAX, &v);
		p->rounds = (unsigned)v;
	} else if (strcmp(a, "--inflight") == 0) {
		rc = bench_parse_u64(a, val, 1, 1u << 19, &v);
		o->inflight = (uint32_t)v;
	} else if (strcmp(a, "--clients") == 0) {
		rc = bench_parse_u64(a, val, 0, SL_CLUSTER_CLIENTS_MAX, &v);
		o->clients = (unsigned)v;
	} else if (strcmp(a, "--nodes") == 0) {
		rc = bench_parse_u64(a, val, 1, SL_NODES_MAX, &v);
		o->nodes = (unsigned)v;
	} else if (strcmp(a, "--batch-bytes") == 0) {
		rc = bench_parse_u64(a, val, 256, 16u << 20, &v);
		o->batch_bytes = (uint32_t)v;
	} else if (strcmp(a, "--lz4-accel") == 0) {
		rc = bench_parse_u64(a, val, 1, SL_BATCH_ACCEL_MAX, &v);
		o->lz4_accel = (uint32_t)v;
	} else if (strcmp(a, "--inline-write-max") == 0) {
		rc = bench_parse_u64(a, val, 0, 64u << 20, &v);
		o->inline_write_max = (uint32_t)v;
	} else if (strcmp(a, "--log-inflight") == 0) {
		rc = bench_parse_u64(a, val, 1, 64, &v);
		o->log_inflight = (uint32_t)v;
	} else if (strcmp(a, "--timer-early-us") == 0) {
		rc = bench_parse_u64(a, val, 0, 1000, &v);
		o->timer_early_ns = (uint32_t)v * 1000;
	} else if (strcmp(a, "--prewrite-chunk") == 0) {
		rc = bench_parse_u64(a, val, 256u << 10, 8u << 20, &v);
		o->prewrite_chunk = (uint32_t)v;
	} else if (strcmp(a, "--mtu") == 0) {
		rc = bench_parse_u64(a, val, 576, SL_FRAME_MAX, &v);
		o->mtu = (uint32_t)v;
	} else if (strcmp(a, "--linger-us") == 0) {
		rc = bench_parse_u64(a, val, 1, 1000000, &v);
		o->linger_ns = v * 1000;
	} else {
		return -ENOENT;
	}
	return rc;
}

static void plan_defaults(struct cb_plan *p)
{
	static const int all_acks[] = {0, 1, SL_ACKS_MAJORITY, SL_ACKS_ALL};

	if (p->matrix) {
		for (unsigned i = 0; i < 4; i++)
			p->acks[i] = all_acks[i];
		for (unsigned i = 0; i < 3; i++)
			p->levels[i] = (enum sl_ack_level)i;
		p->n_acks = 4, p->n_levels = 3;
	}
	if (!p->n_nets)
		p->nets[p->n_nets++] = SL_CLUSTER_UDP;
	if (!p->n_acks)
		p->acks[p->n_acks++] = 1;
	if (!p->n_levels)
		p->levels[p->n_levels++] = SL_ACK_DURABLE;
	if (!p->n_sizes)
		p->sizes[p->n_sizes++] = 1024;
	if (!p->n_data)
		p->data[p->n_data++] = SL_WL_TEXT;
	if (!p->n_modes)
		p->modes[p->n_modes++] = SL_CLUSTER_CLOSED;
	if (!p->rounds)
		p->rounds = 1;
	if (!p->n_idles)
		p->idles[p->n_idles++] = SL_IDLE_BACKOFF;
}

static int parse_opts(int argc, char **argv, struct sl_cluster_opts *o, struct cb_plan *p)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0, takes = 1;

		sl_err_clear();
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--check-records") == 0) {
			o->check_records = 1, takes = 0;
		} else if (strcmp(a, "--compress-thread") == 0) {
			o->compress_thread = 1, takes = 0;
		} else if (strcmp(a, "--fresh-records") == 0) {
			o->fresh_records = 1, takes = 0;
		} else if (strcmp(a, "--breakdown") == 0) {
			o->breakdown = 1, takes = 0;
		} else if (strcmp(a, "--keep") == 0) {
			o->keep = 1, takes = 0;
		} else if (strcmp(a, "--matrix") == 0) {
			p->matrix = 1, takes = 0;
		} else if (strcmp(a, "--half-max") == 0) {
			p->half_max = 1, takes = 0;
		} else if (!val) {
			rc = sl_err_set(EINVAL, "%s wants a value", a);
		} else if ((rc = parse_one(a, val, o, p)) == -ENOENT) {
			rc = sl_err_set(EINVAL, "unknown option '%s'", a);
		}
		if (rc < 0) {
			if (sl_err_msg()[0])
				fprintf(stderr, "shipbench cluster: %s\n", sl_err_msg());
			usage(stderr);
			return -EINVAL;
		}
		i += takes;
	}
	plan_defaults(p);
	if (!o->rate)
		o->rate = 10000;
	if (!o->inflight)
		o->inflight = 64;
	return 0;
}

/* ---- the limits, measured once before every run ---- */

static double us_p50(const struct sl_hist *h)
{
	return (double)sl_hist_quantile(h, 0.5) / 1e3;
}

static double us_p99(const struct sl_hist *h)
{
	return (double)sl_hist_quantile(h, 0.99) / 1e3;
}

/* The durable 4 KiB write at queue depth 1 the way the log makes it: over
 * blocks written before (the store writes zeros ahead of its appends), by
 * whichever of write + fdatasync and RWF_DSYNC is faster here (the store
 * uses both), the two alternated over LIMIT_SECONDS. Into fallocated blocks
 * instead, every write also converts an extent and its sync writes the
 * inode: 190-270 against 70-95 us p50 (fdatasync), 225 against 110-190 us
 * (RWF_DSYNC), alternated at load 9. */
static int measure_sync(const char *dir, uint64_t *seed, struct cb_disk *d)
{
	static struct sl_hist h[2];
	const enum sl_sync_mode mode[2] = {SL_SYNC_FDATASYNC, SL_SYNC_DSYNC};
	int rc = 0;

	sl_hist_reset(&h[0]);
	sl_hist_reset(&h[1]);
	for (int k = 0; k < 4 && rc == 0; k++)
		rc = bench_raw_sync(dir, mode[k % 2], LIMIT_SECONDS / 4, SYNC_WRITTEN, &h[k % 2],
				    seed);
	/* The p99 is the faster mode's, from the same writes as its p50. */
	int k = us_p50(&h[0]) < us_p50(&h[1]) ? 0 : 1;

	d->fsync_p50_us = us_p50(&h[k]);
	d->fsync_p99_us = us_p99(&h[k]);
	return rc;
}

static int measure_disk(const struct bench_common *c, const char *base, struct cb_disk *d)
{
	char dir[4096], path[4096];
	uint64_t seed = c->seed, bytes = 0, ns = 0;
	int rc, fd;

	snprintf(dir, sizeof(dir), "%s/shipbench-limits-XXXXXX", base);
	if (!mkdtemp(dir))
		return sl_err_set(errno, "creating %s: %s", dir, strerror(errno));
	rc = measure_sync(dir, &seed, d);
	if (rc == 0 && (fd = bench_fresh_file(dir, "raw-seq", SEQ_FILE, path, sizeof(path))) >= 0) {
		rc = bench_raw_loop(fd, SEQ_FILE, 0, SEQ_WRITE, SEQ_DEPTH, LIMIT_SECONDS, &bytes,
				    &ns, &seed);
		close(fd);
	} else if (rc == 0) {
		rc = fd;
	}
	bench_remove_dir(dir);
	d->seq_mb_s = ns ? (double)bytes * 1e3 / (double)ns : 0;
	return rc < 0 ? sl_err_set(-rc, "disk limits in %s: %s", base, strerror(-rc)) : 0;
}

/* bench_raw_sync_pattern in a fresh directory under base: into h. */
static int measure_pattern(const char *base, const struct bench_sync_pattern *p, double secs,
			   uint64_t seed, struct sl_hist *h)
{
	char dir[4096];
	int rc;

	snprintf(dir, sizeof(dir), "%s/shipbench-limits-XXXXXX", base);
	if (!mkdtemp(dir))
		return sl_err_set(errno, "creating %s: %s", dir, strerror(errno));
	sl_hist_reset(h);
	rc = bench_raw_sync_pattern(dir, p, secs, PAR_WRITTEN, h, &seed);
	bench_remove_dir(dir);
	if (rc < 0)
		return sl_err_set(-rc, "parallel disk limit in %s: %s", base, strerror(-rc));
	return 0;
}

/* The durable write with every node writing at once (bench_raw_sync_pattern):
 * in an open loop each of the run's `nodes` writers at most the loop's
 * rate (a write per record), in a closed loop back to back. Measured again
 * only when the run's pacing or node count differs from the last. */
static int measure_par(const struct sl_cluster_opts *o, struct cb_par *p)
{
	static struct sl_hist h;
	unsigned writers = o->nodes;
	uint64_t per_s = o->mode == SL_CLUSTER_OPEN ? o->rate : 0;
	const struct bench_sync_pattern pat = {.writers = writers, .per_s = per_s, .bytes = 4096};
	int rc;

	if (p->measured && p->writers == writers && p->per_s == per_s)
		return 0;
	fprintf(stderr, "cluster: measuring %u durable writers at once (%s)\n", writers,
		per_s ? "each at the open loop's rate" : "back to back");
	if ((rc = measure_pattern(o->base_dir, &pat, PAR_SECONDS, o->seed, &h)) < 0)
		return rc;
	*p = (struct cb_par){writers, per_s, 1, us_p50(&h), us_p99(&h)};
	return 0;
}

/* --breakdown: the disk alone under the run's own pattern, right after it:
 * one writer per node making the run's group writes a second per node, of
 * its median group size; then the same beside one writer of zeros per node
 * at the run's chunks a second per node (zeros written ahead). */
static int measure_run_pattern(const struct sl_cluster_opts *o, const struct sl_cluster_result *r,
			       struct cb_pattern *out)
{
	static struct sl_hist h;
	const struct sl_cluster_writes *w = &r->breakdown.writes;
	double per_node_s = (double)o->nodes * (r->seconds > 0 ? r->seconds : 1);
	/* groups are whole blocks; a quantile is its bucket's upper edge */
	uint64_t b = sl_hist_quantile(&w->bytes, 0.5);
	struct bench_sync_pattern p = {.writers = o->nodes,
				       .per_s = (uint64_t)((double)w->all.count / per_node_s + 0.5),
				       .bytes =
					   (uint32_t)(b < 4096		     ? 4096
						      : b > BENCH_ZERO_CHUNK ? BENCH_ZERO_CHUNK
									     : b / 4096 * 4096)};
	int rc;

	*out = (struct cb_pattern){0};
	if (w->all.count == 0 || p.per_s == 0)
		return 0;
	fprintf(stderr,
		"cluster: the disk alone under the run's pattern: %u writers of %u bytes, %llu/s "
		"each, without and with zeros\n",
		p.writers, p.bytes, (unsigned long long)p.per_s);
	if ((rc = measure_pattern(o->base_dir, &p, PATTERN_SECONDS, o->seed, &h)) < 0)
		return rc;
	out->p = p;
	out->p50_us = us_p50(&h);
	out->p99_us = us_p99(&h);
	p.zeros_per_s = (uint64_t)((double)w->zero_chunks / per_node_s + 0.5);
	if (p.zeros_per_s > 0) {
		if ((rc = measure_pattern(o->base_dir, &p, PATTERN_SECONDS, o->seed, &h)) < 0)
			return rc;
		out->p.zeros_per_s = p.zeros_per_s;
		out->z50_us = us_p50(&h);
		out->z99_us = us_p99(&h);
	}
	out->measured = 1;
	return 0;
}

static int measure_rtt(enum sl_cluster_net net, const char *base, double *p50_us)
{
	static struct sl_hist rtt;
	int rc;

	sl_hist_reset(&rtt);
	rc = sl_cluster_measure_rtt(net, base, RTT_FRAME, LIMIT_SECONDS, &rtt);
	*p50_us = us_p50(&rtt);
	return rc;
}

/* Encode batches of `size`-byte records from `pool` (n records) into
 * batches of batch_bytes, as the leader seals them, for `secs`: records'
 * MB per second. */
static double encode_mb_s(const uint8_t *pool, size_t n, uint32_t size, uint32_t batch_bytes,
			  int accel, double secs)
{
	size_t raw_cap = batch_bytes > size + SL_REC_PREFIX ? batch_bytes : size + SL_REC_PREFIX;
	uint8_t *raw = malloc(raw_cap), *out = malloc(sl_batch_bound(raw_cap));
	uint64_t start = bench_now_ns(), bytes = 0;
	struct sl_batch_builder b;
	size_t i = 0;

	if (!raw || !out) {
		free(raw);
		free(out);
		return 0;
	}
	sl_batch_builder_init(&b, raw, raw_cap);
	while (bench_now_ns() - start < (uint64_t)(secs * 1e9)) {
		struct sl_batch_hdr h = {.base_lsn = 1};

		sl_batch_builder_reset(&b);
		do {
			if (sl_batch_builder_add(&b, pool + (i % n) * size, size) < 0)
				break;
			i++;
		} while (b.len + SL_REC_PREFIX + size <= batch_bytes);
		if (sl_batch_encode_accel(&h, raw, b.len, b.count, out, sl_batch_bound(raw_cap),
					  accel) < 0)
			break;
		bytes += (uint64_t)b.count * size;
	}
	free(raw);
	free(out);
	return (double)bytes * 1e3 / (double)(bench_now_ns() - start);
}

/* The leader's batch encoding (LZ4 at its acceleration, CRC32C) on the
 * records it sends (the first LZ4_POOL bytes of its pool): the best of a few
 * short trials, the core's speed when nothing else took it. */
static double measure_lz4(enum sl_wl_kind kind, uint32_t size, uint32_t batch_bytes, uint64_t seed,
			  uint32_t accel)
{
	size_t n = LZ4_POOL / size ? LZ4_POOL / size : 1;
	uint8_t *pool = malloc(n * size);
	struct sl_wl wl;
	double mb_s = 0;

	if (!pool)
		return 0;
	sl_wl_init(&wl, kind, seed);
	n = sl_wl_pool_make(&wl, pool, n * size, size);
	for (int i = 0; i < LZ4_TRIALS && n; i++) {
		double t = encode_mb_s(pool, n, size, batch_bytes ? batch_bytes : 65536,
				       accel ? (int)accel : 1, LZ4_SECONDS);

		mb_s = t > mb_s ? t : mb_s;
	}
	free(pool);
	return mb_s;
}

/* ---- one run's report ---- */

struct cb_limits {
	double fsync_p50_us, fsync_p99_us, seq_mb_s, rtt_p50_us, lz4_mb_s;
	struct cb_par par;
	struct cb_pattern pat; /* measured after the run */
};

static double q_us(const struct sl_hist *h, double q)
{
	return (double)sl_hist_quantile(h, q) / 1e3;
}

static double q_ms(const struct sl_hist *h, double q)
{
	return (double)sl_hist_quantile(h, q) / 1e6;
}

static double safe_div(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static void fill_row(struct cb_row *w, const struct sl_cluster_result *r, const struct cb_limits *l)
{
	double secs = r->seconds > 0 ? r->seconds : 1e-9;

	w->verified = r->verified;
	w->rps = (double)r->records / secs;
	w->mb_s = (double)r->record_bytes / 1e6 / secs;
	w->c50 = q_us(&r->commit, 0.5);
	w->c99 = q_us(&r->commit, 0.99);
	w->c999 = q_us(&r->commit, 0.999);
	w->l50 = q_ms(&r->lag, 0.5);
	w->l99 = q_ms(&r->lag, 0.99);
	w->ratio = safe_div(w->c50, l->fsync_p50_us + l->rtt_p50_us);
	w->cpu_gb = safe_div(r->cpu_seconds, (double)r->record_bytes / 1e9);
	w->retransmits = r->retransmits;
}

/* A commit quantile against the parallel write's same quantile plus the
 * round trip: how far the run is from what the machine's disk allows. */
static double floor_ratio(double commit_us, double par_us, const struct cb_limits *l)
{
	return safe_div(commit_us, par_us + l->rtt_p50_us);
}

/* The most steal time one CPU saw in one lag slice. */
static double steal_slice_max(const struct sl_cluster_result *r)
{
	double m = 0;

	for (unsigned s = 0; s < r->n_lag_slices; s++)
		if (r->steal_slice_ms[s] > m)
			m = r->steal_slice_ms[s];
	return m;
}

static void print_text(const struct sl_cluster_opts *o, const struct sl_cluster_result *r,
		       const struct cb_limits *l, const struct cb_row *w)
{
	double secs = r->seconds > 0 ? r->seconds : 1e-9,
	       stored = (double)r->stored_bytes / 1e6 / secs;

	char pace[48];

	snprintf(pace, sizeof(pace), l->par.per_s ? "%llu/s each" : "back to back",
		 (unsigned long long)l->par.per_s);
	printf("  limits      fsync 4 KiB QD1 p50 %.1f us p99 %.1f us; %u writers at once (%s) "
	       "p50 %.1f us p99 %.1f us;\n"
	       "              sequential writes %.0f MB/s, %s round trip 1 KiB p50 %.1f us, "
	       "LZ4 %.0f MB/s\n",
	       l->fsync_p50_us, l->fsync_p99_us, l->par.writers, pace, l->par.p50_us, l->par.p99_us,
	       l->seq_mb_s, sl_cluster_net_name(o->net), l->rtt_p50_us, l->lz4_mb_s);
	sl_cluster_print_summary(stdout, r);
	printf("  cost        %.1f CPU s per GB of records, %llu retransmits, %llu NAKs\n",
	       w->cpu_gb, (unsigned long long)r->retransmits, (unsigned long long)r->naks);
	if (r->steal_known)
		printf(
		    "  host        %.0f ms of CPU time stolen by the hypervisor, at most %.0f ms "
		    "of one CPU in one %.0f ms slice\n",
		    r->steal_ms, steal_slice_max(r), (double)r->lag_slice_ns / 1e6);
	printf("  vs limits   commit p50 / (fsync p50 + round-trip p50) = %.2f, p99 / that = %.2f; "
	       "lag p50 / that = %.2f;\n"
	       "              floor: commit p50 / (%u-writer fsync p50 + round-trip p50) = %.2f, "
	       "p99 / (%u-writer fsync p99 + round-trip p50) = %.2f;\n"
	       "              records MB/s / LZ4 MB/s = %.3f; log MB/s (%.1f) / sequential MB/s = "
	       "%.3f\n",
	       w->ratio, safe_div(w->c99, l->fsync_p50_us + l->rtt_p50_us),
	       safe_div(w->l50 * 1e3, l->fsync_p50_us + l->rtt_p50_us), l->par.writers,
	       floor_ratio(w->c50, l->par.p50_us, l), l->par.writers,
	       floor_ratio(w->c99, l->par.p99_us, l), safe_div(w->mb_s, l->lz4_mb_s), stored,
	       safe_div(stored, l->seq_mb_s));
	sl_cluster_print_check(stdout, r);
}

static const char *const wclass_names[SL_WCLASSES] = {
    [SL_WCLASS_ZEROS_OWN] = "beside own zeros",
    [SL_WCLASS_ZEROS_OTHER] = "beside others' zeros",
    [SL_WCLASS_BEHIND] = "behind own group",
    [SL_WCLASS_ALONE] = "alone on its log",
};

static void print_hist_line(FILE *f, const char *name, const struct sl_hist *h, uint64_t slow)
{
	fprintf(f, "    %-22s p50 %9.1f us  p90 %9.1f us  p99 %9.1f us  (%llu", name,
		(double)sl_hist_quantile(h, 0.5) / 1e3, (double)sl_hist_quantile(h, 0.9) / 1e3,
		(double)sl_hist_quantile(h, 0.99) / 1e3, (unsigned long long)h->count);
	if (slow != UINT64_MAX)
		fprintf(f, ", %llu of the slowest 1 %%", (unsigned long long)slow);
	fprintf(f, ")\n");
}

/* --breakdown: the logs' group writes, submitted -> durable, by what was
 * in flight beside them. */
static void print_writes(FILE *f, const struct sl_cluster_result *r, const struct cb_limits *l,
			 const struct cb_row *row, unsigned nodes)
{
	const struct sl_cluster_writes *w = &r->breakdown.writes;
	uint64_t slow = 0;

	for (unsigned c = 0; c < SL_WCLASSES; c++)
		slow += w->slow[c];
	fprintf(
	    f,
	    "  log writes  %llu group writes of every node (sizes p50 %llu, p99 %llu bytes), "
	    "%llu chunks of zeros%s\n",
	    (unsigned long long)w->all.count, (unsigned long long)sl_hist_quantile(&w->bytes, 0.5),
	    (unsigned long long)sl_hist_quantile(&w->bytes, 0.99),
	    (unsigned long long)w->zero_chunks, w->dropped ? "; a record buffer filled up" : "");
	print_hist_line(f, "group write", &w->all, slow);
	for (unsigned c = 0; c < SL_WCLASSES; c++)
		print_hist_line(f, wclass_names[c], &w->cls[c], w->slow[c]);
	print_hist_line(f, "with linked fdatasync", &w->linked, UINT64_MAX);
	print_hist_line(f, "chunk of zeros", &w->zeros, UINT64_MAX);
	fprintf(f, "    other logs writing meanwhile:");
	for (unsigned p = 0; p < nodes && p < SL_NODES_MAX; p++)
		fprintf(f, " %u: %llu (slowest %llu)", p, (unsigned long long)w->peers[p],
			(unsigned long long)w->slow_peers[p]);
	fprintf(f, "\n");
	if (!l->pat.measured)
		return;
	fprintf(f,
		"    the disk alone, the run's pattern (%u writers of %u bytes, %llu/s each): p50 "
		"%.1f us p99 %.1f us;\n"
		"      beside %llu chunks of zeros a second each: p50 %.1f us p99 %.1f us\n"
		"    lag p99 / (that p99 without zeros + round-trip p50) = %.2f, with zeros %.2f\n",
		l->pat.p.writers, l->pat.p.bytes, (unsigned long long)l->pat.p.per_s, l->pat.p50_us,
		l->pat.p99_us, (unsigned long long)l->pat.p.zeros_per_s, l->pat.z50_us,
		l->pat.z99_us, floor_ratio(row->l99 * 1e3, l->pat.p99_us, l),
		floor_ratio(row->l99 * 1e3, l->pat.z99_us, l));
}

/* --breakdown: a line per hop. */
static void print_breakdown(FILE *f, const struct sl_cluster_result *r)
{
	const struct sl_cluster_breakdown *b = &r->breakdown;

	fprintf(f,
		"  breakdown   %llu batches matched end to end (%llu not), the leader's own write "
		"durable after the ack in %llu%s\n",
		(unsigned long long)b->batches, (unsigned long long)b->unmatched,
		(unsigned long long)b->leader_last,
		b->trace_full ? "; a trace filled up: later batches missing" : "");
	for (unsigned h = 0; h < SL_HOPS; h++)
		fprintf(f, "    %-22s p50 %9.1f us  p90 %9.1f us  p99 %9.1f us  (%llu)\n",
			sl_cluster_hop_name(h), (double)sl_hist_quantile(&b->hop[h], 0.5) / 1e3,
			(double)sl_hist_quantile(&b->hop[h], 0.9) / 1e3,
			(double)sl_hist_quantile(&b->hop[h], 0.99) / 1e3,
			(unsigned long long)b->hop[h].count);
}

/* "bd_due_append_p50_us" for "due->append". */
static void breakdown_json(struct bench_json *j, const struct sl_cluster_result *r,
			   const struct cb_limits *l, const struct cb_row *w)
{
	bench_json_int(j, "bd_batches", (long long)r->breakdown.batches);
	for (unsigned h = 0; h < SL_HOPS; h++) {
		char key[64];
		size_t k = 0;

		k += (size_t)snprintf(key, sizeof(key), "bd_");
		for (const char *p = sl_cluster_hop_name(h); *p && k < 48; p++)
			if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
				key[k++] = *p;
			else if (key[k - 1] != '_')
				key[k++] = '_';
		snprintf(key + k, sizeof(key) - k, "_p50_us");
		bench_json_num(j, key, (double)sl_hist_quantile(&r->breakdown.hop[h], 0.5) / 1e3);
	}
	bench_json_num(j, "bd_write_p50_us",
		       (double)sl_hist_quantile(&r->breakdown.writes.all, 0.5) / 1e3);
	bench_json_num(j, "bd_write_p99_us",
		       (double)sl_hist_quantile(&r->breakdown.writes.all, 0.99) / 1e3);
	bench_json_int(j, "bd_write_slow_zeros_own",
		       (long long)r->breakdown.writes.slow[SL_WCLASS_ZEROS_OWN]);
	bench_json_int(j, "bd_write_slow_zeros_other",
		       (long long)r->breakdown.writes.slow[SL_WCLASS_ZEROS_OTHER]);
	bench_json_int(j, "bd_write_slow_behind",
		       (long long)r->breakdown.writes.slow[SL_WCLASS_BEHIND]);
	bench_json_int(j, "bd_write_slow_alone",
		       (long long)r->breakdown.writes.slow[SL_WCLASS_ALONE]);
	if (!l->pat.measured)
		return;
	bench_json_int(j, "limit_pattern_per_s", (long long)l->pat.p.per_s);
	bench_json_int(j, "limit_pattern_bytes", l->pat.p.bytes);
	bench_json_num(j, "limit_pattern_p50_us", l->pat.p50_us);
	bench_json_num(j, "limit_pattern_p99_us", l->pat.p99_us);
	bench_json_int(j, "limit_pattern_zeros_per_s", (long long)l->pat.p.zeros_per_s);
	bench_json_num(j, "limit_pattern_zeros_p99_us", l->pat.z99_us);
	bench_json_num(j, "lag_floor_ratio_p99", floor_ratio(w->l99 * 1e3, l->pat.p99_us, l));
}

/* The run's JSON line to stdout (to_stdout) and to `also` (not NULL). */
static void print_json(const struct sl_cluster_opts *o, const struct sl_cluster_result *r,
		       const struct cb_limits *l, const struct cb_row *w, int to_stdout, FILE *also)
{
	double secs = r->seconds > 0 ? r->seconds : 1e-9,
	       stored = (double)r->stored_bytes / 1e6 / secs;
	char buf[16];
	const char *acks = sl_acks_name(o->policy.acks, buf, sizeof(buf));
	struct bench_json j;

	bench_json_begin(&j, "cluster");
	bench_json_str(&j, "transport", sl_cluster_net_name(o->net));
	bench_json_int(&j, "round", w->round);
	bench_json_int(&j, "nodes", o->nodes);
	bench_json_str(&j, "acks", acks);
	bench_json_str(&j, "ack_level", sl_ack_level_name(o->policy.level));
	bench_json_int(&j, "record_bytes", o->record_bytes);
	bench_json_str(&j, "data", sl_wl_kind_name(o->data));
	bench_json_str(&j, "mode", o->mode == SL_CLUSTER_OPEN ? "open" : "closed");
	bench_json_int(&j, "rate", o->mode == SL_CLUSTER_OPEN ? (long long)o->rate : 0);
	bench_json_int(&j, "inflight", o->mode == SL_CLUSTER_OPEN ? 0 : o->inflight);
	bench_json_int(&j, "clients", o->clients);
	bench_json_int(&j, "fresh_records", o->fresh_records);
	bench_json_int(&j, "compress_thread", o->compress_thread);
	bench_json_int(&j, "lz4_accel", o->lz4_accel ? o->lz4_accel : 1);
	bench_json_str(&j, "seal",
		       o->seal_when_log_idle ? "log"
		       : o->seal_when_idle   ? "adaptive"
		       : o->seal_by_linger   ? "linger"
					     : "idle");
	bench_json_int(&j, "inline_write_max", o->inline_write_max);
	bench_json_int(&j, "log_inflight", o->log_inflight); /* 0: the store's default */
	bench_json_int(&j, "timer_early_us", o->timer_early_ns / 1000);
	bench_json_int(&j, "prewrite_chunk", o->prewrite_chunk); /* 0: the store's default */
	bench_json_int(&j, "mtu", o->mtu ? o->mtu : 1500);
	bench_json_str(&j, "idle", sl_idle_name(o->idle));
	bench_json_num(&j, "seconds", r->seconds);
	bench_json_num(&j, "records_per_s", w->rps);
	bench_json_num(&j, "mb_s", w->mb_s);
	bench_json_num(&j, "wire_mb_s", (double)r->wire_bytes / 1e6 / secs);
	bench_json_num(&j, "log_mb_s", stored);
	/* Records' bytes per byte logged (headers and length prefixes too). */
	bench_json_num(&j, "compression", safe_div(w->mb_s, stored));
	bench_json_num(&j, "commit_p50_us", w->c50);
	bench_json_num(&j, "commit_p99_us", w->c99);
	bench_json_num(&j, "commit_p999_us", w->c999);
	bench_json_num(&j, "commit_max_us", (double)r->commit.max / 1e3);
	bench_json_num(&j, "lag_p50_ms", w->l50);
	bench_json_num(&j, "lag_p99_ms", w->l99);
	bench_json_num(&j, "lag_max_ms", (double)r->lag.max / 1e6);
	bench_json_num(&j, "cpu_s_per_gb", w->cpu_gb);
	bench_json_int(&j, "retransmits", (long long)r->retransmits);
	bench_json_int(&j, "naks", (long long)r->naks);
	bench_json_num(&j, "limit_fsync_p50_us", l->fsync_p50_us);
	bench_json_num(&j, "limit_fsync_p99_us", l->fsync_p99_us);
	bench_json_int(&j, "limit_fsync_par_writers", l->par.writers);
	bench_json_int(&j, "limit_fsync_par_per_s", (long long)l->par.per_s);
	bench_json_num(&j, "limit_fsync_par_p50_us", l->par.p50_us);
	bench_json_num(&j, "limit_fsync_par_p99_us", l->par.p99_us);
	bench_json_num(&j, "limit_rtt_p50_us", l->rtt_p50_us);
	bench_json_num(&j, "limit_lz4_mb_s", l->lz4_mb_s);
	bench_json_num(&j, "limit_seq_mb_s", l->seq_mb_s);
	bench_json_num(&j, "ratio", w->ratio);
	bench_json_num(&j, "ratio_p99", safe_div(w->c99, l->fsync_p50_us + l->rtt_p50_us));
	bench_json_num(&j, "floor_ratio", floor_ratio(w->c50, l->par.p50_us, l));
	bench_json_num(&j, "floor_ratio_p99", floor_ratio(w->c99, l->par.p99_us, l));
	bench_json_num(&j, "lag_ratio", safe_div(w->l50 * 1e3, l->fsync_p50_us + l->rtt_p50_us));
	bench_json_num(&j, "lz4_ratio", safe_div(w->mb_s, l->lz4_mb_s));
	bench_json_num(&j, "disk_ratio", safe_div(stored, l->seq_mb_s));
	bench_json_num(&j, "load1", w->load1);
	if (r->steal_known) {
		bench_json_num(&j, "steal_ms", r->steal_ms);
		bench_json_num(&j, "steal_slice_max_ms", steal_slice_max(r));
	}
	if (o->breakdown)
		breakdown_json(&j, r, l, w);
	j.len += (size_t)snprintf(j.buf + j.len, sizeof(j.buf) - j.len, ",\"verified\":%s",
				  r->verified ? "true" : "false");
	if (also)
		fprintf(also, "%s}\n", j.buf);
	if (to_stdout)
		bench_json_end(&j);
}

/* ---- plot data ---- */

/* The commit-latency CDF (quantiles, finer in the tail) and each
 * follower's lag per time slice, as CSV files named after the run. */
static int write_plot_data(const char *dir, unsigned run, const struct sl_cluster_result *r)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/run-%03u-commit.csv", dir, run);
	if (!(f = fopen(path, "w")))
		return sl_err_set(errno, "%s: %s", path, strerror(errno));
	fprintf(f, "latency_us,quantile\n");
	for (unsigned i = 0; i <= 200 && r->commit.count; i++) {
		/* 0..0.99 linearly, then 0.99..0.99999 by powers of ten. */
		double q = i < 100 ? i / 100.0 : 1.0 - 0.01 * pow(10.0, -(double)(i - 100) / 33.3);

		fprintf(f, "%.3f,%.6f\n", q_us(&r->commit, q), q);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/run-%03u-lag.csv", dir, run);
	if (!(f = fopen(path, "w")))
		return sl_err_set(errno, "%s: %s", path, strerror(errno));
	fprintf(f, "t_s,follower,batches,mean_ms,max_ms\n");
	for (unsigned k = 0; k < r->n_followers; k++)
		for (unsigned s = 0; s < r->n_lag_slices; s++) {
			const struct sl_cluster_lag_slice *x = &r->lag_slices[k][s];

			if (!x->count)
				continue;
			fprintf(f, "%.3f,%u,%llu,%.4f,%.4f\n", (double)(s * r->lag_slice_ns) / 1e9,
				r->f[k].node_id, (unsigned long long)x->count,
				x->sum_ns / (double)x->count / 1e6, (double)x->max_ns / 1e6);
		}
	fclose(f);
	if (!r->steal_known)
		return 0;
	snprintf(path, sizeof(path), "%s/run-%03u-steal.csv", dir, run);
	if (!(f = fopen(path, "w")))
		return sl_err_set(errno, "%s: %s", path, strerror(errno));
	fprintf(f, "t_s,steal_ms\n");
	for (unsigned s = 0; s < r->n_lag_slices; s++)
		fprintf(f, "%.3f,%.1f\n", (double)(s * r->lag_slice_ns) / 1e9,
			r->steal_slice_ms[s]);
	fclose(f);
	return 0;
}

/* Draw the PNGs from the data in dir (bench/plot.py, python3-matplotlib). */
static int draw_plots(const char *dir)
{
	const char *script = getenv("SHIPLOG_PLOT_PY");
	/* Debian's interpreter, the one python3-matplotlib installs into, even
	 * when PATH leads to another python3 first. */
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char cmd[8192];
	int st;

	if (!script || !script[0])
		script = SHIPLOG_PLOT_PY;
	snprintf(cmd, sizeof(cmd), "%s '%s' '%s' >&2", py, script, dir);
	st = system(cmd);
	if (st != 0) {
		fprintf(stderr,
			"shipbench cluster: drawing the plots failed (%s); the data is in %s: "
			"run python3 %s %s (needs python3-matplotlib)\n",
			WIFEXITED(st) ? "exit status" : "signal", dir, script, dir);
		return -EIO;
	}
	return 0;
}

/* ---- the plan ---- */

/* "closed 64", "open 10000/s"; with several idle strategies in the plan
 * "closed 64 nap"; with several rounds (round > 0) "closed 64 #2". */
static void mode_label(char *buf, size_t cap, const struct cb_row *w, int show_idle, unsigned round)
{
	int k = snprintf(buf, cap, w->mode == SL_CLUSTER_OPEN ? "open %llu/s" : "closed %llu",
			 (unsigned long long)w->load);

	if (show_idle && k >= 0 && (size_t)k < cap)
		k += snprintf(buf + k, cap - (size_t)k, " %s", sl_idle_name(w->idle));
	if (round && k >= 0 && (size_t)k < cap)
		snprintf(buf + k, cap - (size_t)k, " #%u", round);
}

static void print_table(FILE *f, const struct cb_row *rows, unsigned n, unsigned rounds,
			int show_idle)
{
	fprintf(f, "\n%-9s %-8s %-8s %6s %-6s %-13s %10s %8s %9s %9s %9s %8s %8s %6s %7s %5s %s\n",
		"transport", "acks", "level", "bytes", "data", "mode", "records/s", "MB/s",
		"c.p50 us", "c.p99 us", "c.p999us", "lag p50", "lag p99", "ratio", "CPUs/GB", "rtx",
		"check");
	for (unsigned i = 0; i < n; i++) {
		const struct cb_row *w = &rows[i];
		char buf[16];
		const char *acks = sl_acks_name(w->acks, buf, sizeof(buf));
		char mode[32];

		mode_label(mode, sizeof(mode), w, show_idle, rounds > 1 ? w->round : 0);
		fprintf(f, "%-9s %-8s %-8s %6u %-6s %-13s ", sl_cluster_net_name(w->net), acks,
			sl_ack_level_name(w->level), w->size, sl_wl_kind_name(w->data), mode);
		if (w->failed) {
			fprintf(f, "%s\n", "(run failed: see above)");
			continue;
		}
		fprintf(f, "%10.0f %8.2f %9.1f %9.1f %9.1f %8.3f %8.3f %6.2f %7.2f %5llu %s\n",
			w->rps, w->mb_s, w->c50, w->c99, w->c999, w->l50, w->l99, w->ratio,
			w->cpu_gb, (unsigned long long)w->retransmits,
			w->verified ? "ok" : "FAILED");
	}
}

/* ---- --rounds: the median of the rounds ---- */

/* Same workload (everything but transport and round); --half-max open loops
 * differ in rate from round to round and still compare. */
static int same_work(const struct cb_row *x, const struct cb_row *y, int half_max)
{
	return x->acks == y->acks && x->level == y->level && x->size == y->size &&
	       x->data == y->data && x->mode == y->mode && x->idle == y->idle &&
	       (x->load == y->load || (half_max && x->mode == SL_CLUSTER_OPEN));
}

/* The median of n values (n >= 1), the mean of the middle two when even;
 * lo and hi: the spread. Sorts v. */
static double median(double *v, unsigned n, double *lo, double *hi)
{
	qsort(v, n, sizeof(v[0]), bench_cmp_double);
	if (lo)
		*lo = v[0];
	if (hi)
		*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Whether w led its round's runs of the same workload: the most records/s
 * (by_p99 0) or the lowest commit p99 (by_p99 1). */
static int led_round(const struct cb_row *rows, unsigned n, const struct cb_row *w, int by_p99,
		     int half_max)
{
	for (unsigned i = 0; i < n; i++) {
		const struct cb_row *x = &rows[i];

		if (x == w || x->failed || x->round != w->round || !same_work(x, w, half_max))
			continue;
		if (by_p99 ? x->c99 < w->c99 : x->rps > w->rps)
			return 0;
	}
	return 1;
}

/* The rows of w's transport and workload that ran (at most ROUNDS_MAX). */
static unsigned group_of(const struct cb_row *rows, unsigned n, const struct cb_row *w,
			 int half_max, const struct cb_row **g)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && k < ROUNDS_MAX; i++)
		if (!rows[i].failed && rows[i].net == w->net && same_work(&rows[i], w, half_max))
			g[k++] = &rows[i];
	return k;
}

/* The median of one field (a double of struct cb_row, at offset off) over g. */
static double group_median(const struct cb_row *const *g, unsigned k, size_t off, double *lo,
			   double *hi)
{
	double v[ROUNDS_MAX];

	for (unsigned i = 0; i < k; i++)
		memcpy(&v[i], (const char *)g[i] + off, sizeof(v[i]));
	return median(v, k, lo, hi);
}

/* Per transport and workload (in the order first run): the median of its
 * rounds, the spread, and in how many rounds it led the others. */
static void print_medians(FILE *f, const struct cb_row *rows, unsigned n, unsigned rounds,
			  int half_max, int show_idle)
{
	fprintf(f,
		"\nmedian of %u rounds (min-max); led: rounds with the most records/s, the "
		"lowest commit p99\n"
		"%-9s %-8s %-8s %6s %-13s %4s %10s %-17s %9s %9s %-19s %8s %7s %5s %-5s %-11s %s\n",
		rounds, "transport", "acks", "level", "bytes", "mode", "runs", "records/s",
		"(spread)", "c.p50 us", "c.p99 us", "(spread)", "lag p99", "CPUs/GB", "rtx", "led",
		"load", "check");
	for (unsigned i = 0; i < n; i++) {
		const struct cb_row *w = &rows[i], *g[ROUNDS_MAX];
		unsigned k, led_rps = 0, led_p99 = 0, ok = 1, first = 1;
		uint64_t rtx = 0;
		double rlo, rhi, plo, phi, llo, lhi;
		char buf[16], mode[32], spread[2][48], load[24];

		if (w->failed)
			continue;
		for (unsigned j = 0; j < i && first; j++)
			first = !(!rows[j].failed && rows[j].net == w->net &&
				  same_work(&rows[j], w, half_max));
		if (!first)
			continue;
		k = group_of(rows, n, w, half_max, g);
		for (unsigned j = 0; j < k; j++) {
			led_rps += led_round(rows, n, g[j], 0, half_max);
			led_p99 += led_round(rows, n, g[j], 1, half_max);
			rtx += g[j]->retransmits;
			ok &= g[j]->verified;
		}
		mode_label(mode, sizeof(mode), w, show_idle, 0);
		double rps = group_median(g, k, offsetof(struct cb_row, rps), &rlo, &rhi);
		double c99 = group_median(g, k, offsetof(struct cb_row, c99), &plo, &phi);

		group_median(g, k, offsetof(struct cb_row, load1), &llo, &lhi);
		snprintf(spread[0], sizeof(spread[0]), "(%.0f-%.0f)", rlo, rhi);
		snprintf(spread[1], sizeof(spread[1]), "(%.0f-%.0f)", plo, phi);
		snprintf(load, sizeof(load), "%.1f-%.1f", llo, lhi);
		fprintf(f,
			"%-9s %-8s %-8s %6u %-13s %4u %10.0f %-17s %9.1f %9.1f %-19s %8.3f %7.2f "
			"%5llu %2u/%-2u %-11s %s\n",
			sl_cluster_net_name(w->net), sl_acks_name(w->acks, buf, sizeof(buf)),
			sl_ack_level_name(w->level), w->size, mode, k, rps, spread[0],
			group_median(g, k, offsetof(struct cb_row, c50), NULL, NULL), c99,
			spread[1], group_median(g, k, offsetof(struct cb_row, l99), NULL, NULL),
			group_median(g, k, offsetof(struct cb_row, cpu_gb), NULL, NULL),
			(unsigned long long)rtx, led_rps, led_p99, load, ok ? "ok" : "FAILED");
	}
}

struct cb_state {
	const struct bench_common *c;
	struct cb_plan *p;
	struct cb_disk disk;
	struct cb_par par; /* the last parallel probe */
	double rtt[NETS];
	int rtt_rc[NETS];
	double lz4[LIST_MAX][LIST_MAX]; /* [data][size] */
	struct cb_row rows[RUNS_MAX];
	unsigned n_rows, total, round;
	uint64_t rate; /* --rate, restored after a --half-max run */
	FILE *jsonl;
};

static int measure_limits(struct cb_state *s, const struct sl_cluster_opts *o)
{
	const struct cb_plan *p = s->p;
	int rc;

	fprintf(stderr, "cluster: measuring the limits (disk, %u transport(s), LZ4)\n", p->n_nets);
	if ((rc = measure_disk(s->c, o->base_dir, &s->disk)) < 0)
		return rc;
	for (unsigned i = 0; i < p->n_nets; i++) {
		enum sl_cluster_net n = p->nets[i];

		if (n < NETS && !s->rtt[n] && !s->rtt_rc[n]) {
			s->rtt_rc[n] = measure_rtt(n, o->base_dir, &s->rtt[n]);
			if (s->rtt_rc[n] < 0)
				fprintf(stderr, "shipbench cluster: %s round trip: %s\n",
					sl_cluster_net_name(n), sl_err_msg());
		}
	}
	for (unsigned d = 0; d < p->n_data; d++)
		for (unsigned z = 0; z < p->n_sizes; z++)
			s->lz4[d][z] = measure_lz4(p->data[d], p->sizes[z], o->batch_bytes, o->seed,
						   o->lz4_accel);
	return 0;
}

static int one_run(struct cb_state *s, struct sl_cluster_opts *o, unsigned d, unsigned z)
{
	static struct sl_cluster_result r;
	struct cb_limits l;
	struct cb_row *w = &s->rows[s->n_rows++];
	char buf[16];
	const char *acks = sl_acks_name(o->policy.acks, buf, sizeof(buf));
	int rc;

	*w = (struct cb_row){.net = o->net,
			     .acks = o->policy.acks,
			     .level = o->policy.level,
			     .size = o->record_bytes,
			     .data = o->data,
			     .mode = o->mode,
			     .load = o->mode == SL_CLUSTER_OPEN ? o->rate : o->inflight,
			     .idle = o->idle,
			     .round = s->round};
	fprintf(stderr,
		"cluster: run %u/%u (round %u): %s, acks=%s at %s, %u-byte %s records, %s loop\n",
		s->n_rows, s->total, s->round, sl_cluster_net_name(o->net), acks,
		sl_ack_level_name(o->policy.level), o->record_bytes, sl_wl_kind_name(o->data),
		o->mode == SL_CLUSTER_OPEN ? "open" : "closed");
	if (!s->c->json) {
		printf("cluster: %u nodes over %s, acks=%s at %s, %u-byte %s records, %s loop",
		       o->nodes, sl_cluster_net_name(o->net), acks,
		       sl_ack_level_name(o->policy.level), o->record_bytes,
		       sl_wl_kind_name(o->data), o->mode == SL_CLUSTER_OPEN ? "open" : "closed");
		if (o->mode == SL_CLUSTER_OPEN)
			printf(" at %llu records/s", (unsigned long long)o->rate);
		else
			printf(", %u in flight", o->inflight);
		printf(o->clients ? ", %u client threads\n" : "\n", o->clients);
	}
	o->seal_by_linger = s->p->seal ? s->p->seal >= 2 : o->mode == SL_CLUSTER_OPEN;
	o->seal_when_log_idle = s->p->seal == 3;
	o->seal_when_idle = s->p->seal == 4;
	if (o->net < NETS && s->rtt_rc[o->net] < 0) {
		w->failed = 1;
		fprintf(stderr, "shipbench cluster: skipping the run: no %s round trip\n",
			sl_cluster_net_name(o->net));
		return -EIO;
	}
	if ((rc = measure_par(o, &s->par)) < 0) {
		w->failed = 1;
		fprintf(stderr, "shipbench cluster: %s\n", sl_err_msg());
		return rc;
	}
	l = (struct cb_limits){s->disk.fsync_p50_us,
			       s->disk.fsync_p99_us,
			       s->disk.seq_mb_s,
			       s->rtt[o->net],
			       s->lz4[d][z],
			       s->par,
			       {0}};
	if ((rc = sl_cluster_run(o, &r)) < 0) {
		w->failed = 1;
		fprintf(stderr, "shipbench cluster: %s\n", r.error);
		return rc;
	}
	fill_row(w, &r, &l);
	getloadavg(&w->load1, 1);
	if (o->breakdown && measure_run_pattern(o, &r, &l.pat) < 0)
		fprintf(stderr, "shipbench cluster: %s\n", sl_err_msg());
	/* With --json, stdout stays JSON lines. */
	if (!s->c->json)
		print_text(o, &r, &l, w);
	else
		sl_cluster_print_check(stderr, &r);
	if (o->breakdown) {
		print_breakdown(s->c->json ? stderr : stdout, &r);
		print_writes(s->c->json ? stderr : stdout, &r, &l, w, o->nodes);
	}
	if (s->c->json || s->jsonl)
		print_json(o, &r, &l, w, s->c->json, s->jsonl);
	if (s->p->plot_dir && (rc = write_plot_data(s->p->plot_dir, s->n_rows, &r)) < 0)
		fprintf(stderr, "shipbench cluster: %s\n", sl_err_msg());
	return r.verified ? 0 : -EIO;
}

/* Every combination, transports outermost (a DPDK kind's set-up once per
 * block of runs is the EAL's, not the run's); with --rounds, rounds
 * outermost and transports innermost, so that the runs a median compares
 * are made minutes apart from each other, never in one block. acks 0
 * waits for no follower: one level only. */
static unsigned plan_runs(const struct cb_plan *p)
{
	unsigned n = 0;

	for (unsigned a = 0; a < p->n_acks; a++)
		n += p->acks[a] == 0 ? 1 : p->n_levels;
	n *= p->n_nets * p->n_data * p->n_sizes * p->n_idles * p->rounds;
	for (unsigned m = 0, modes = 0;; m++) {
		if (m == p->n_modes)
			return n * modes;
		modes += p->half_max && p->modes[m] == SL_CLUSTER_CLOSED ? 2 : 1;
	}
}

/* --half-max: the closed-loop run just made found the maximum; run the same
 * open loop at half of it (the lag target is stated there). */
static int run_half(struct cb_state *s, struct sl_cluster_opts *o, unsigned d, unsigned z)
{
	const struct cb_row *w = &s->rows[s->n_rows - 1];
	uint64_t rate = (uint64_t)(w->rps / 2);
	int rc;

	if (w->failed || rate == 0) {
		s->rows[s->n_rows++] = (struct cb_row){.net = o->net,
						       .acks = o->policy.acks,
						       .level = o->policy.level,
						       .size = o->record_bytes,
						       .data = o->data,
						       .mode = SL_CLUSTER_OPEN,
						       .load = rate,
						       .idle = o->idle,
						       .round = s->round,
						       .failed = 1};
		fprintf(stderr, "shipbench cluster: no maximum to halve: the closed loop failed\n");
		return -EIO;
	}
	o->mode = SL_CLUSTER_OPEN;
	o->rate = rate;
	rc = one_run(s, o, d, z);
	o->mode = SL_CLUSTER_CLOSED;
	o->rate = s->rate;
	return rc;
}

/* A workload of the plan: everything but the transport. */
struct cb_work {
	unsigned d, z, m, a, v, i;
};

static unsigned plan_works(const struct cb_plan *p, struct cb_work *w)
{
	unsigned n = 0;

	for (unsigned d = 0; d < p->n_data; d++)
		for (unsigned z = 0; z < p->n_sizes; z++)
			for (unsigned m = 0; m < p->n_modes; m++)
				for (unsigned a = 0; a < p->n_acks; a++)
					for (unsigned v = 0; v < p->n_levels; v++) {
						if (p->acks[a] == 0 && v > 0)
							break;
						for (unsigned i = 0; i < p->n_idles; i++)
							w[n++] = (struct cb_work){d, z, m, a, v, i};
					}
	return n;
}

static int run_work(struct cb_state *s, struct sl_cluster_opts *o, unsigned t,
		    const struct cb_work *k)
{
	const struct cb_plan *p = s->p;
	int failed;

	o->net = p->nets[t];
	o->data = p->data[k->d];
	o->record_bytes = p->sizes[k->z];
	o->mode = p->modes[k->m];
	o->policy.acks = p->acks[k->a];
	o->policy.level = p->levels[k->v];
	o->idle = p->idles[k->i];
	failed = one_run(s, o, k->d, k->z) < 0;
	if (p->half_max && o->mode == SL_CLUSTER_CLOSED)
		failed |= run_half(s, o, k->d, k->z) < 0;
	return failed;
}

static int run_plan(struct cb_state *s, struct sl_cluster_opts *o)
{
	static struct cb_work works[RUNS_MAX];
	const struct cb_plan *p = s->p;
	unsigned n = plan_works(p, works);
	int failed = 0;

	if (p->rounds == 1) {
		s->round = 1;
		for (unsigned t = 0; t < p->n_nets; t++)
			for (unsigned k = 0; k < n; k++)
				failed |= run_work(s, o, t, &works[k]);
		return failed;
	}
	/* Each round starts one transport later (udp, memif, tcp; memif, tcp,
	 * udp; ...): no transport always runs first after the disk probe of a
	 * new pacing, or always after the same other one. */
	for (s->round = 1; s->round <= p->rounds; s->round++)
		for (unsigned k = 0; k < n; k++)
			for (unsigned i = 0; i < p->n_nets; i++)
				failed |= run_work(s, o, (i + s->round - 1) % p->n_nets, &works[k]);
	return failed;
}

static int open_plot_dir(struct cb_state *s)
{
	char path[4096];

	if (mkdir(s->p->plot_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "shipbench cluster: creating %s: %s\n", s->p->plot_dir,
			strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/results.jsonl", s->p->plot_dir);
	if (!(s->jsonl = fopen(path, "w"))) {
		fprintf(stderr, "shipbench cluster: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	return 0;
}

int bench_cluster_main(const struct bench_common *c, int argc, char **argv)
{
	struct sl_cluster_opts o = {
	    .nodes = 3,
	    .warmup = 1.0,
	    .progress = 1,
	};
	static struct cb_plan p;
	static struct cb_state s;
	int failed;

	if (parse_opts(argc, argv, &o, &p))
		return 2;
	o.seed = c->seed;
	o.seconds = c->seconds;
	o.base_dir = c->dir;
	sl_cluster_opts_defaults(&o);
	s.c = c;
	s.p = &p;
	s.rate = o.rate;
	s.total = plan_runs(&p);
	if (s.total > RUNS_MAX) {
		fprintf(stderr, "shipbench cluster: %u runs; at most %d\n", s.total, RUNS_MAX);
		return 2;
	}
	if (p.plot_dir && open_plot_dir(&s) < 0)
		return 1;
	if (measure_limits(&s, &o) < 0) {
		fprintf(stderr, "shipbench cluster: measuring the limits: %s\n", sl_err_msg());
		return 1;
	}
	failed = run_plan(&s, &o);
	print_table(c->json ? stderr : stdout, s.rows, s.n_rows, p.rounds, p.n_idles > 1);
	if (p.rounds > 1)
		print_medians(c->json ? stderr : stdout, s.rows, s.n_rows, p.rounds, p.half_max,
			      p.n_idles > 1);
	if (s.jsonl)
		fclose(s.jsonl);
	if (p.plot_dir && draw_plots(p.plot_dir) < 0)
		failed = 1;
	return failed ? 1 : 0;
}
