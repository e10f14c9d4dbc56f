/* shiplog-demo: the main job. Three shiplog nodes in this process, one
 * thread each, replicate a generated WAL-like workload over kernel UDP on
 * 127.0.0.1 (or DPDK memif / af_packet links) into logs in a fresh
 * directory; the leader commits each record under the ack policy. It
 * prints throughput, commit latency percentiles and follower lag, then
 * checks that every follower's log holds the leader's committed log byte
 * for byte. The cluster itself is app/cluster.c, shared with `shipbench
 * cluster` and the node tests. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/cluster.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/quorum.h"
#include "shiplog/workload.h"

#define DEMO_NODES_MAX 7

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shiplog-demo [options]\n"
		"Runs a shiplog cluster in this process: one thread per node, kernel UDP on\n"
		"127.0.0.1 (or DPDK), each node's log in a new directory under /var/tmp\n"
		"(removed at exit). Node 1 leads and appends generated WAL-like records, at most\n"
		"--inflight uncommitted at a time; followers write, acknowledge and are\n"
		"delivered them. Prints throughput, commit latency (append -> committed)\n"
		"and follower lag (leader's seal -> delivery), then compares every\n"
		"follower's log with the leader's, byte for byte; exits 1 if they differ.\n\n"
		"  --nodes N         1..%d (default 3); 1: a single node, no replication\n"
		"  --transport T     udp: kernel UDP on 127.0.0.1 (default); memif: DPDK,\n"
		"                    a net_memif pair per pair of nodes; af_packet: DPDK\n"
		"                    net_af_packet on a veth pair per pair of nodes, each\n"
		"                    end in its node's network namespace (root);\n"
		"                    tcp: kernel TCP, plain sockets (the baseline)\n"
		"  --records N       records to append (default 200000)\n"
		"  --record-bytes N  bytes per record, 1..1048576 (default 1024)\n"
		"  --acks A          follower acks a commit needs: 0, 1.., majority, all\n"
		"                    (default 1; 0 with --nodes 1)\n"
		"  --ack-level L     received, durable (default) or applied\n"
		"  --inflight N      records appended but not yet committed, at most\n"
		"                    (default 64: like 64 clients waiting on their commit)\n"
		"  --data KIND       text (WAL-like, compressible) or random (default text)\n"
		"  --mtu N           every node's IP MTU, 576..9216 (default 1500)\n"
		"  --dir DIR         where the run's directory goes (default /var/tmp)\n"
		"  --keep            keep the logs\n"
		"  --seed N          workload seed (default 1)\n"
		"  --compress-thread the leader compresses full batches on a thread of their\n"
		"                    own while its loop goes on (a compressor stage)\n"
		"  --fresh-records   generate every record as it is appended rather than copy\n"
		"                    it from a prepared pool of 8 MiB of generated records\n"
		"                    (each copy stamped with its own sequence number)\n"
		"  --stats           also print each node's loop, storage and protocol counters\n"
		"  -h, --help        this help\n",
		DEMO_NODES_MAX);
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0' || *out < min || *out > max) {
		fprintf(stderr, "shiplog-demo: %s wants a number in %llu..%llu, got '%s'\n", opt,
			(unsigned long long)min, (unsigned long long)max, s);
		return -EINVAL;
	}
	return 0;
}

/* An option whose parser reports through sl_err. */
static int parsed(int rc)
{
	if (rc < 0)
		fprintf(stderr, "shiplog-demo: %s\n", sl_err_msg());
	return rc;
}

static int show_stats;

static int parse_opts(int argc, char **argv, struct sl_cluster_opts *o)
{
	static const struct option longopts[] = {
	    {"nodes", required_argument, 0, 'N'},
	    {"transport", required_argument, 0, 't'},
	    {"records", required_argument, 0, 'n'},
	    {"record-bytes", required_argument, 0, 'r'},
	    {"acks", required_argument, 0, 'a'},
	    {"ack-level", required_argument, 0, 'l'},
	    {"inflight", required_argument, 0, 'i'},
	    {"data", required_argument, 0, 'd'},
	    {"dir", required_argument, 0, 'D'},
	    {"keep", no_argument, 0, 'k'},
	    {"seed", required_argument, 0, 's'},
	    {"stats", no_argument, 0, 'S'},
	    {"fresh-records", no_argument, 0, 'F'},
	    {"mtu", required_argument, 0, 'm'},
	    {"compress-thread", no_argument, 0, 'Z'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	int acks_set = 0, c;
	uint64_t v;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int rc = 0;

		switch (c) {
		case 'N':
			rc = parse_u64("--nodes", optarg, 1, DEMO_NODES_MAX, &v);
			o->nodes = (unsigned)v;
			break;
		case 't':
			rc = parsed(sl_cluster_net_parse(optarg, &o->net));
			break;
		case 'n':
			rc = parse_u64("--records", optarg, 1, 1ull << 40, &o->records);
			break;
		case 'r':
			rc = parse_u64("--record-bytes", optarg, 1, 1u << 20, &v);
			o->record_bytes = (uint32_t)v;
			break;
		case 'a':
			rc = parsed(sl_acks_parse(optarg, &o->policy.acks));
			acks_set = 1;
			break;
		case 'l':
			rc = parsed(sl_ack_level_parse(optarg, &o->policy.level));
			break;
		case 'i':
			rc = parse_u64("--inflight", optarg, 1, 1u << 19, &v);
			o->inflight = (uint32_t)v;
			break;
		case 'd':
			rc = parsed(sl_wl_kind_parse(optarg, &o->data));
			break;
		case 'D':
			o->base_dir = optarg;
			break;
		case 'k':
			o->keep = 1;
			break;
		case 's':
			rc = parse_u64("--seed", optarg, 0, UINT64_MAX, &o->seed);
			break;
		case 'S':
			show_stats = 1;
			break;
		case 'F':
			o->fresh_records = 1;
			break;
		case 'm':
			rc = parse_u64("--mtu", optarg, 576, SL_FRAME_MAX, &v);
			o->mtu = (uint32_t)v;
			break;
		case 'Z':
			o->compress_thread = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (rc < 0)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "shiplog-demo: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->nodes == 1 && !acks_set)
		o->policy.acks = 0; /* nobody to acknowledge: the leader's disk commits */
	return 0;
}

int main(int argc, char **argv)
{
	struct sl_cluster_opts o = {
	    .nodes = 3,
	    .policy = {.acks = 1, .level = SL_ACK_DURABLE},
	    .records = 200000,
	    .record_bytes = 1024,
	    .inflight = 64,
	    .seed = 1,
	    .check_records = 1,
	    .progress = 1,
	};
	static struct sl_cluster_result r;
	char buf[16];
	const char *acks;

	if (parse_opts(argc, argv, &o))
		return 2;
	/* majority and all come back as literals, not in buf */
	acks = sl_acks_name(o.policy.acks, buf, sizeof(buf));
	printf("shiplog demo: %u node%s over %s, acks=%s at %s, %llu %s records of "
	       "%u bytes, %u in flight\n",
	       o.nodes, o.nodes > 1 ? "s" : "", sl_cluster_net_name(o.net), acks,
	       sl_ack_level_name(o.policy.level), (unsigned long long)o.records,
	       sl_wl_kind_name(o.data), o.record_bytes, o.inflight);
	fflush(stdout);
	if (sl_cluster_run(&o, &r) < 0) {
		fprintf(stderr, "shiplog-demo: %s\n", r.error);
		return 1;
	}
	printf("  logs        %s (%s I/O, %s)%s\n", r.dir, r.direct_io ? "O_DIRECT" : "buffered",
	       r.sync_adaptive ? "RWF_DSYNC alone, write + fdatasync when groups queue"
	       : r.sync_mode == SL_SYNC_DSYNC ? "RWF_DSYNC writes"
					      : "write + fdatasync",
	       o.keep ? "" : ", removed");
	sl_cluster_print_summary(stdout, &r);
	if (show_stats)
		sl_cluster_print_stats(stdout, &r);
	sl_cluster_print_check(stdout, &r);
	return r.verified ? 0 : 1;
}
