/* shipbench cluster: three shiplog nodes in this process, one thread each
 * (idle strategy backoff, so they share a small machine), logs in a fresh
 * directory, talking over a real transport (kernel UDP on 127.0.0.1, or
 * DPDK: net_memif or net_af_packet on veth, one link per pair of nodes). The
 * leader's thread runs the workload and times every record from its append
 * (closed loop) or from when it was due (open loop, so a stall cannot hide
 * behind the records it delayed) to the commit callback that covers it;
 * followers time each batch from the leader's seal (leader_ts, same clock)
 * to their delivery. The cluster itself is app/cluster.c.
 *
 * Before it, in the same run, the machine's limits: a 4 KiB O_DIRECT
 * write + fdatasync at queue depth 1 in the logs' file system, the
 * transport's round trip (1 KiB frames ping-ponged between two transports
 * of the same kind, busy polling), and LZ4 on the same records; the ratio
 * is commit p50 / (fsync p50 + round-trip p50), 1.0 being a commit as fast
 * as one disk flush plus one network round trip.
 *
 * After it, every follower's log is compared with the leader's committed
 * prefix byte for byte (batches read by position); the exit status says
 * whether they matched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "shiplog/cluster.h"
#include "shiplog/err.h"
#include "shiplog/hist.h"
#include "shiplog/quorum.h"
#include "shiplog/workload.h"

#define LIMIT_SECONDS 1.0
#define RTT_FRAME     1024
#define LZ4_POOL      4096 /* records LZ4 is measured on */

struct cb_limits {
	double fsync_p50_us, rtt_p50_us, lz4_mb_s;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shipbench cluster [--json] [--seconds S] [--dir DIR] [--seed N]\n"
		"                        [--transport udp|memif|af_packet] [--acks A]\n"
		"                        [--ack-level received|durable|applied]\n"
		"                        [--record-bytes N] [--data text|random]\n"
		"                        [--mode closed|open] [--rate N] [--inflight N]\n"
		"                        [--warmup S] [--batch-bytes N] [--linger-us N]\n"
		"                        [--idle spin|yield|backoff] [--check-records] [--keep]\n"
		"  --transport T     udp: kernel UDP on 127.0.0.1, free ports (default);\n"
		"                    memif: DPDK, a net_memif pair per pair of nodes;\n"
		"                    af_packet: DPDK net_af_packet on a veth pair per pair of\n"
		"                    nodes (root). DPDK runs without hugepages (--no-huge)\n"
		"  --acks A          follower acks a commit needs: 0, 1..15, majority, all (1)\n"
		"  --ack-level L     received, durable or applied (durable)\n"
		"  --record-bytes N  bytes per record (default 1024)\n"
		"  --data KIND       text (WAL-like) or random (default text)\n"
		"  --mode M          closed: at most --inflight records uncommitted (default);\n"
		"                    open: --rate records/s on a fixed schedule, latency from\n"
		"                    the scheduled time\n"
		"  --rate N          open loop: records per second\n"
		"  --inflight N      closed loop: records outstanding (default 1)\n"
		"  --warmup S        seconds run before measuring (default 1)\n"
		"  --seconds S       seconds measured (default 2)\n"
		"  --batch-bytes N   close a batch at this many raw bytes (default 65536)\n"
		"  --linger-us N     or this long after its first record (default 100)\n"
		"  --idle I          node idle strategy (default backoff)\n"
		"  --check-records   followers also compare every record they are delivered\n"
		"  --dir DIR         parent of the run's directory (default /var/tmp)\n"
		"  --keep            keep the logs\n");
}

static int parse_opts(int argc, char **argv, struct sl_cluster_opts *o)
{
	uint64_t v;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0, takes = 1;

		sl_err_clear();
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--check-records") == 0) {
			o->check_records = 1, takes = 0;
		} else if (strcmp(a, "--keep") == 0) {
			o->keep = 1, takes = 0;
		} else if (!val) {
			rc = -EINVAL;
		} else if (strcmp(a, "--transport") == 0) {
			rc = sl_cluster_net_parse(val, &o->net);
		} else if (strcmp(a, "--acks") == 0) {
			rc = sl_acks_parse(val, &o->policy.acks);
		} else if (strcmp(a, "--ack-level") == 0) {
			rc = sl_ack_level_parse(val, &o->policy.level);
		} else if (strcmp(a, "--record-bytes") == 0) {
			rc = bench_parse_u64(a, val, 1, 1u << 20, &v);
			o->record_bytes = (uint32_t)v;
		} else if (strcmp(a, "--data") == 0) {
			rc = sl_wl_kind_parse(val, &o->data);
		} else if (strcmp(a, "--mode") == 0) {
			if (strcmp(val, "closed") == 0)
				o->mode = SL_CLUSTER_CLOSED;
			else if (strcmp(val, "open") == 0)
				o->mode = SL_CLUSTER_OPEN;
			else
				rc = sl_err_set(EINVAL, "--mode is closed or open, got '%s'", val);
		} else if (strcmp(a, "--rate") == 0) {
			rc = bench_parse_u64(a, val, 1, 100000000, &o->rate);
		} else if (strcmp(a, "--inflight") == 0) {
			rc = bench_parse_u64(a, val, 1, 1u << 19, &v);
			o->inflight = (uint32_t)v;
		} else if (strcmp(a, "--warmup") == 0) {
			char *end;

			o->warmup = strtod(val, &end);
			if (*end || o->warmup < 0)
				rc = sl_err_set(EINVAL, "--warmup wants seconds >= 0, got '%s'",
						val);
		} else if (strcmp(a, "--batch-bytes") == 0) {
			rc = bench_parse_u64(a, val, 256, 16u << 20, &v);
			o->batch_bytes = (uint32_t)v;
		} else if (strcmp(a, "--linger-us") == 0) {
			rc = bench_parse_u64(a, val, 1, 1000000, &v);
			o->linger_ns = v * 1000;
		} else if (strcmp(a, "--idle") == 0) {
			rc = sl_idle_parse(val, &o->idle);
		} else {
			rc = -EINVAL;
		}
		if (rc < 0) {
			if (sl_err_msg()[0])
				fprintf(stderr, "shipbench cluster: %s\n", sl_err_msg());
			else
				fprintf(stderr, "shipbench cluster: bad option '%s'\n", a);
			usage(stderr);
			return -EINVAL;
		}
		i += takes;
	}
	if (o->mode == SL_CLUSTER_OPEN && !o->rate) {
		fprintf(stderr, "shipbench cluster: --mode open needs --rate\n");
		return -EINVAL;
	}
	return 0;
}

/* ---- the limits ---- */

static double us_p50(const struct sl_hist *h)
{
	return (double)sl_hist_quantile(h, 0.5) / 1e3;
}

static int measure_limits(const struct bench_common *c, const struct sl_cluster_opts *o,
			  struct cb_limits *l)
{
	static struct sl_hist fs, rtt;
	char dir[4096];
	uint64_t seed = c->seed;
	uint8_t *pool = malloc((size_t)LZ4_POOL * o->record_bytes);
	struct sl_wl wl;
	int rc;

	sl_hist_reset(&fs);
	sl_hist_reset(&rtt);
	if (!pool)
		return sl_err_set(ENOMEM, "LZ4 pool");
	snprintf(dir, sizeof(dir), "%s/shipbench-limits-XXXXXX", o->base_dir);
	if (!mkdtemp(dir)) {
		free(pool);
		return sl_err_set(errno, "creating %s: %s", dir, strerror(errno));
	}
	rc = bench_raw_sync(dir, SL_SYNC_FDATASYNC, LIMIT_SECONDS, &fs, &seed);
	bench_remove_dir(dir);
	if (rc == 0)
		rc = sl_cluster_measure_rtt(o->net, o->base_dir, RTT_FRAME, LIMIT_SECONDS, &rtt);
	sl_wl_init(&wl, o->data, o->seed);
	for (uint32_t i = 0; i < LZ4_POOL; i++)
		sl_wl_fill(&wl, pool + (size_t)i * o->record_bytes, o->record_bytes);
	l->lz4_mb_s = bench_lz4_mb_s(pool, (size_t)LZ4_POOL * o->record_bytes,
				     o->batch_bytes ? o->batch_bytes : 65536, LIMIT_SECONDS / 2);
	free(pool);
	l->fsync_p50_us = us_p50(&fs);
	l->rtt_p50_us = us_p50(&rtt);
	return rc;
}

/* ---- the report ---- */

static void report(const struct bench_common *c, const struct sl_cluster_opts *o,
		   const struct sl_cluster_result *r, const struct cb_limits *l)
{
	double secs = r->seconds > 0 ? r->seconds : 1e-9;
	double rps = (double)r->records / secs, mb_s = (double)r->record_bytes / 1e6 / secs,
	       wire = (double)r->wire_bytes / 1e6 / secs;
	double c50 = (double)sl_hist_quantile(&r->commit, 0.5) / 1e3,
	       c99 = (double)sl_hist_quantile(&r->commit, 0.99) / 1e3,
	       c999 = (double)sl_hist_quantile(&r->commit, 0.999) / 1e3,
	       cmax = (double)r->commit.max / 1e3;
	double l50 = (double)sl_hist_quantile(&r->lag, 0.5) / 1e6,
	       l99 = (double)sl_hist_quantile(&r->lag, 0.99) / 1e6, lmax = (double)r->lag.max / 1e6;
	double ratio = c50 / (l->fsync_p50_us + l->rtt_p50_us);
	char acks[16];
	struct bench_json j;

	sl_acks_name(o->policy.acks, acks, sizeof(acks));
	if (!c->json) {
		printf("cluster: %u nodes over %s, acks=%s at %s, %u-byte %s records, %s loop",
		       o->nodes, sl_cluster_net_name(o->net), acks,
		       sl_ack_level_name(o->policy.level), o->record_bytes,
		       sl_wl_kind_name(o->data), o->mode == SL_CLUSTER_OPEN ? "open" : "closed");
		if (o->mode == SL_CLUSTER_OPEN)
			printf(" at %llu records/s\n", (unsigned long long)o->rate);
		else
			printf(", %u in flight\n", o->inflight);
		printf(
		    "  limits      fsync 4 KiB QD1 p50 %.1f us, %s round trip 1 KiB p50 %.1f us, "
		    "LZ4 %.0f MB/s\n",
		    l->fsync_p50_us, sl_cluster_net_name(o->net), l->rtt_p50_us, l->lz4_mb_s);
		sl_cluster_print_summary(stdout, r);
		printf("  vs limits   commit p50 / (fsync p50 + round-trip p50) = %.2f\n", ratio);
		return;
	}
	bench_json_begin(&j, "cluster");
	bench_json_str(&j, "transport", sl_cluster_net_name(o->net));
	bench_json_int(&j, "nodes", o->nodes);
	bench_json_str(&j, "acks", acks);
	bench_json_str(&j, "ack_level", sl_ack_level_name(o->policy.level));
	bench_json_int(&j, "record_bytes", o->record_bytes);
	bench_json_str(&j, "mode", o->mode == SL_CLUSTER_OPEN ? "open" : "closed");
	bench_json_int(&j, "rate", o->mode == SL_CLUSTER_OPEN ? (long long)o->rate : 0);
	bench_json_int(&j, "inflight", o->mode == SL_CLUSTER_OPEN ? 0 : o->inflight);
	bench_json_num(&j, "records_per_s", rps);
	bench_json_num(&j, "mb_s", mb_s);
	bench_json_num(&j, "wire_mb_s", wire);
	bench_json_num(&j, "commit_p50_us", c50);
	bench_json_num(&j, "commit_p99_us", c99);
	bench_json_num(&j, "commit_p999_us", c999);
	bench_json_num(&j, "commit_max_us", cmax);
	bench_json_num(&j, "lag_p50_ms", l50);
	bench_json_num(&j, "lag_p99_ms", l99);
	bench_json_num(&j, "lag_max_ms", lmax);
	bench_json_num(&j, "limit_fsync_p50_us", l->fsync_p50_us);
	bench_json_num(&j, "limit_rtt_p50_us", l->rtt_p50_us);
	bench_json_num(&j, "limit_lz4_mb_s", l->lz4_mb_s);
	bench_json_num(&j, "ratio", ratio);
	j.len += (size_t)snprintf(j.buf + j.len, sizeof(j.buf) - j.len, ",\"verified\":%s",
				  r->verified ? "true" : "false");
	bench_json_end(&j);
}

int bench_cluster_main(const struct bench_common *c, int argc, char **argv)
{
	struct sl_cluster_opts o = {
	    .nodes = 3,
	    .policy = {.acks = 1, .level = SL_ACK_DURABLE},
	    .record_bytes = 1024,
	    .warmup = 1.0,
	    .progress = 1,
	};
	static struct sl_cluster_result r;
	struct cb_limits l;
	int rc;

	if (parse_opts(argc, argv, &o))
		return 2;
	o.seed = c->seed;
	o.seconds = c->seconds;
	o.base_dir = c->dir;
	sl_cluster_opts_defaults(&o);
	if ((rc = measure_limits(c, &o, &l)) < 0) {
		fprintf(stderr, "shipbench cluster: measuring the limits: %s\n", sl_err_msg());
		return 1;
	}
	if ((rc = sl_cluster_run(&o, &r)) < 0) {
		fprintf(stderr, "shipbench cluster: %s\n", r.error);
		return 1;
	}
	report(c, &o, &r, &l);
	/* With --json, stdout stays JSON lines. */
	sl_cluster_print_check(c->json ? stderr : stdout, &r);
	return r.verified ? 0 : 1;
}
