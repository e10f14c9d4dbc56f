/* shiplog-sim: the deterministic cluster simulator. Each seed derives a
 * cluster (size, ack policy, fault mix, workload, timings) from one PRNG,
 * runs it on a virtual clock through sim_run.c, and prints one line with the
 * seed, every derived option and the result. The same seed replays the
 * same run exactly. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/err.h"
#include "shiplog/quorum.h"
#include "sim_rng.h"
#include "sim_run.h"

#define MS ((uint64_t)1000000)
#define US ((uint64_t)1000)

/* What the command line fixed; everything else each seed derives. */
struct opts {
	uint64_t seed;
	int seed_set;
	uint64_t seeds;
	double soak_min;
	unsigned nodes; /* 0: derive */
	int acks, acks_set;
	enum sl_ack_level level;
	int level_set;
	enum sl_on_timeout on_timeout;
	int on_timeout_set;
	int faults;	  /* -1: derive a mix, else an SL_SIM_FAULT_* mask */
	int elect;	  /* -1: derive, else 0 or 1 */
	uint32_t records; /* 0: derive */
	int broken;
	int broken_election;
	int trust_votes;
	int expect;
	int quiet;
	int trace;
	uint64_t max_events;
	char replay[256]; /* the fixed options, to print a replay command */
};

static const char usage[] =
    "usage: shiplog-sim [options]\n"
    "Deterministic simulation of a shiplog cluster: N nodes in one process on a\n"
    "virtual clock, node 1 the first leader (with elections, whoever wins later),\n"
    "a simulated network, disks, superblocks and engines, a workload on the\n"
    "leader and random faults; invariants checked after every event. Each seed prints one line: "
    "the seed, every option it\n"
    "derived, and the result. A violation prints its invariant letter, node,\n"
    "position/LSN, seed and the last 64 events. commit_us=p50/p99 is the\n"
    "virtual time from append to commit.\n"
    "\n"
    "  --seed S          first seed (default 1); alone, replays that seed exactly\n"
    "  --seeds N         run N seeds: S, S+1, ... (default 1)\n"
    "  --soak MINUTES    run random seeds (with --seed: consecutive ones from it)\n"
    "                    until the wall-clock time is up\n"
    "  --nodes N         1..16 nodes (default: derived, 1..7)\n"
    "  --acks A          0..15, majority or all (default: derived; a derived\n"
    "                    cluster then has at least A+1 nodes)\n"
    "  --ack-level L     received, durable or applied (default: derived)\n"
    "  --on-timeout T    block or degrade (default: derived)\n"
    "  --faults F        none, net, disk, failover, rot or all, or a list joined\n"
    "                    with '+' (net+rot): exactly these fault kinds in every\n"
    "                    run (default: each seed derives a mix of them);\n"
    "                    net = loss, duplication, reordering, delays, partitions and\n"
    "                    forged frames; disk = crashes with torn writes, slow syncs\n"
    "                    and storage errors (of followers only, unless failover);\n"
    "                    failover = leader crashes, quick double failovers, leader\n"
    "                    pauses, crashes of candidates, power losses, and the\n"
    "                    operator's leadership transfers and step-downs, and in\n"
    "                    1 seed of 4 a forced promotion (promote --force) of the\n"
    "                    follower with the shortest log (needs elections); rot = bit flips and a "
    "valid batch copied to\n"
    "                    the wrong offset in durable batches of one replica at a\n"
    "                    time (in 1 seed of 4 of the derived mix), which the\n"
    "                    scrub finds and anti-entropy repairs from a peer\n"
    "  --elect on|off    elections and failover (default: derived, on in 7 of 8\n"
    "                    seeds); off: node 1 leads for good\n"
    "  --records N       records the workload appends (default: derived, 30..800)\n"
    "  --broken-quorum   set policy.debug_undercount (the protocol requires one ack\n"
    "                    too few): the run must catch it\n"
    "  --broken-election set policy.debug_undervote (elections need one vote too\n"
    "                    few): the run must catch it (implies elections)\n"
    "  --trust-votes     do not count the votes of each elected leader (check V):\n"
    "                    only the data invariants can then catch a bad election\n"
    "  --expect-violation  exit 0 only if some seed violated invariant (a), (d) or V\n"
    "  --max-events N    events per run before it counts as incomplete (5000000)\n"
    "  --quiet           print only failing runs and the summary\n"
    "  --trace           print every event as it happens (to study one seed)\n"
    "  --help            this text\n"
    "\n"
    "Invariants: (a) committed records held as the policy promises, and never lost\n"
    "or changed across failovers while failures stay within what the policy\n"
    "tolerates (W nodes keep them); (b) replicas byte-identical; (c) each record\n"
    "delivered exactly once, in order, once committed; (d) commit never beyond what\n"
    "the policy acknowledged; (e) forged frames change nothing; (f) at most one\n"
    "leader is elected, and commits, in any epoch. Also V votes (persisted before\n"
    "sent, one per epoch, enough for every leader), F bad frame, W out-of-order log\n"
    "write/read/cut, R restart failed, T stuck timer, P protocol API misbehaved, L\n"
    "liveness: a leader must hold every record committed and every node deliver\n"
    "them within 10 s of virtual time after the faults heal. A run that exhausts\n"
    "--max-events is reported INCOMPLETE and does not fail. beyond=1 marks a run\n"
    "whose failures went past what its policy tolerates (e.g. ack_level=received\n"
    "and a crash losing acknowledged data): its committed log may then be\n"
    "rewritten, which is counted, not failed. After a forced promotion, committed\n"
    "records from the forced node's next LSN on (the range it declares may be\n"
    "lost) may be replaced, counted as forced_lost; E anti-entropy (a rotten batch\n"
    "left unrepaired or read back as good, a log not equal to the committed log\n"
    "byte for byte at the end).\n"
    "\n"
    "Exit status: 0 when no run failed (with --expect-violation: when some run\n"
    "violated (a), (d) or V), 1 otherwise, 2 on a usage error.\n";

/* ---- parsing ---- */

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static const char *const fault_names[] = {"none", "net", "disk", "failover", "rot", "all"};
static const int fault_masks[] = {0,
				  SL_SIM_FAULT_NET,
				  SL_SIM_FAULT_DISK,
				  SL_SIM_FAULT_FAILOVER,
				  SL_SIM_FAULT_ROT,
				  SL_SIM_FAULT_NET | SL_SIM_FAULT_DISK | SL_SIM_FAULT_FAILOVER |
				      SL_SIM_FAULT_ROT};

/* "net", "all", "net+rot", ... */
static int parse_faults(const char *s, int *out)
{
	*out = 0;
	while (*s) {
		size_t len = strcspn(s, "+");
		int i = 0;

		while (i < 6 && (strlen(fault_names[i]) != len || strncmp(s, fault_names[i], len)))
			i++;
		if (i == 6)
			return -EINVAL;
		*out |= fault_masks[i];
		s += len + (s[len] == '+');
	}
	return 0;
}

static void note_replay(struct opts *o, const char *name, const char *val)
{
	size_t len = strlen(o->replay);

	snprintf(o->replay + len, sizeof(o->replay) - len, " --%s%s%s", name, val ? " " : "",
		 val ? val : "");
}

static int parse_value(struct opts *o, int c, const char *arg)
{
	uint64_t v = 0;

	switch (c) {
	case 's':
		o->seed_set = 1;
		return parse_u64(arg, &o->seed);
	case 'n':
		return parse_u64(arg, &o->seeds);
	case 'S': {
		char *end;

		o->soak_min = strtod(arg, &end);
		return end != arg && !*end && o->soak_min > 0 ? 0 : -EINVAL;
	}
	case 'N':
		if (parse_u64(arg, &v) || v < 1 || v > SL_NODES_MAX)
			return -EINVAL;
		o->nodes = (unsigned)v;
		return 0;
	case 'a':
		o->acks_set = 1;
		return sl_acks_parse(arg, &o->acks);
	case 'l':
		o->level_set = 1;
		return sl_ack_level_parse(arg, &o->level);
	case 't':
		o->on_timeout_set = 1;
		if (strcmp(arg, "block") == 0 || strcmp(arg, "degrade") == 0) {
			o->on_timeout = arg[0] == 'b' ? SL_ON_TIMEOUT_BLOCK : SL_ON_TIMEOUT_DEGRADE;
			return 0;
		}
		return -EINVAL;
	case 'f':
		return parse_faults(arg, &o->faults);
	case 'e':
		if (strcmp(arg, "on") == 0 || strcmp(arg, "off") == 0) {
			o->elect = arg[1] == 'n';
			return 0;
		}
		return -EINVAL;
	case 'r':
		if (parse_u64(arg, &v) || v < 1 || v > SL_SIM_RECORDS_MAX)
			return -EINVAL;
		o->records = (uint32_t)v;
		return 0;
	case 'E':
		return parse_u64(arg, &o->max_events) || o->max_events == 0 ? -EINVAL : 0;
	}
	return -EINVAL;
}

static const char *opt_name(const struct option *lo, int c)
{
	for (int i = 0; lo[i].name; i++)
		if (lo[i].val == c)
			return lo[i].name;
	return "?";
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"seed", required_argument, NULL, 's'},
	    {"seeds", required_argument, NULL, 'n'},
	    {"soak", required_argument, NULL, 'S'},
	    {"nodes", required_argument, NULL, 'N'},
	    {"acks", required_argument, NULL, 'a'},
	    {"ack-level", required_argument, NULL, 'l'},
	    {"on-timeout", required_argument, NULL, 't'},
	    {"faults", required_argument, NULL, 'f'},
	    {"elect", required_argument, NULL, 'e'},
	    {"records", required_argument, NULL, 'r'},
	    {"max-events", required_argument, NULL, 'E'},
	    {"broken-quorum", no_argument, NULL, 'B'},
	    {"broken-election", no_argument, NULL, 'b'},
	    {"trust-votes", no_argument, NULL, 'V'},
	    {"expect-violation", no_argument, NULL, 'X'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"trace", no_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct opts){.seed = 1, .seeds = 1, .faults = -1, .elect = -1, .max_events = 5000000};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'B':
			o->broken = 1;
			note_replay(o, "broken-quorum", NULL);
			continue;
		case 'b':
			o->broken_election = 1;
			note_replay(o, "broken-election", NULL);
			continue;
		case 'V':
			o->trust_votes = 1;
			note_replay(o, "trust-votes", NULL);
			continue;
		case 'X':
			o->expect = 1;
			continue;
		case 'q':
			o->quiet = 1;
			continue;
		case 'T':
			o->trace = 1;
			continue;
		case '?':
			return -EINVAL;
		}
		if (parse_value(o, c, optarg) < 0) {
			fprintf(stderr, "shiplog-sim: bad value '%s' for --%s\n", optarg,
				opt_name(lo, c));
			return -EINVAL;
		}
		if (c != 's' && c != 'n' && c != 'S')
			note_replay(o, opt_name(lo, c), optarg);
	}
	if (optind < argc) {
		fprintf(stderr, "shiplog-sim: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* ---- deriving a run from its seed ---- */

/* Acks of `kind` (0: 0, 1: 1, 2: k in 2..followers, 3: majority, 4: all). */
static int acks_of(uint64_t kind, uint64_t raw, unsigned followers)
{
	switch (kind) {
	case 0:
		return 0;
	case 1:
		return followers >= 1 ? 1 : 0;
	case 2:
		return followers >= 2 ? (int)(2 + raw % (followers - 1)) : (int)followers;
	case 3:
		return SL_ACKS_MAJORITY;
	default:
		return SL_ACKS_ALL;
	}
}

/* A mix of fault kinds: none 1/8, net 2/8, disk 2/8, both 3/8. */
static unsigned faults_of(uint64_t r)
{
	static const unsigned mix[8] = {0, 1, 1, 2, 2, 3, 3, 3};

	return mix[r % 8];
}

static uint64_t pick(uint64_t *rng, const uint64_t *v, unsigned n)
{
	return v[sl_sim_below(rng, n)];
}

/* Every draw happens whatever the command line fixed, so fixing an option
 * to the value a seed derived replays that seed exactly. */
static void derive_policy(const struct opts *o, uint64_t *rng, struct sl_sim_params *p)
{
	uint64_t kind = sl_sim_below(rng, 5), raw = sl_rng_next(rng);
	uint64_t level = sl_sim_below(rng, 3), ot = sl_sim_below(rng, 2);
	uint64_t has_timeout = sl_sim_below(rng, 2), timeout = sl_sim_range(rng, 1 * MS, 50 * MS);
	int local_none = sl_sim_chance(rng, 100000);
	unsigned followers;

	if (o->acks_set && o->acks >= 0 && !o->nodes && p->nodes < (unsigned)o->acks + 1)
		p->nodes = (unsigned)o->acks + 1; /* room for the acks asked for */
	followers = p->nodes - 1;
	p->policy = (struct sl_ack_policy){
	    .acks = o->acks_set ? o->acks : acks_of(kind, raw, followers),
	    .level = o->level_set ? o->level : (enum sl_ack_level)level,
	    .timeout_ns = has_timeout ? timeout : 0,
	    .on_timeout = o->on_timeout_set ? o->on_timeout : (enum sl_on_timeout)ot,
	    .local_none = local_none,
	    .debug_undercount = o->broken,
	    .debug_undervote = o->broken_election,
	};
}

static void derive_shape(const struct opts *o, uint64_t *rng, struct sl_sim_params *p)
{
	static const uint64_t windows[] = {256 << 10, 1 << 20, 16 << 20};
	static const uint64_t rcv_windows[] = {128 << 10, 1 << 20, 8 << 20};
	static const uint64_t mtus[] = {512, 1500, 1500, 1500, 4000, 9000};
	static const uint64_t bursts[] = {1, 4, 8, 32};
	uint64_t records = sl_sim_range(rng, 30, 800);

	p->records = o->records ? o->records : (uint32_t)records;
	p->wl_kind = (enum sl_wl_kind)sl_sim_below(rng, 2);
	p->mtu = (uint32_t)pick(rng, mtus, 6);
	p->batch_bytes = 1u << sl_sim_range(rng, 10, 16);
	p->linger_ns = sl_sim_range(rng, 10 * US, 1 * MS);
	p->heartbeat_ns = sl_sim_range(rng, 1 * MS, 20 * MS);
	p->nak_delay_ns = sl_sim_range(rng, 20 * US, 1 * MS);
	p->nak_interval_ns = sl_sim_range(rng, 100 * US, 5 * MS);
	p->tlp_ns = sl_sim_range(rng, 200 * US, 5 * MS);
	p->send_budget = sl_sim_below(rng, 2) ? (uint32_t)sl_sim_range(rng, 1, 64) : 0;
	p->window_bytes = pick(rng, windows, 3);
	p->rcv_window_bytes = pick(rng, rcv_windows, 3);
	p->fault_ns = sl_sim_range(rng, 20 * MS, 400 * MS);
	p->max_burst = (uint32_t)sl_sim_range(rng, 1, pick(rng, bursts, 4));
	/* Spread the workload over roughly the fault phase, sometimes much
	 * faster than the network can carry it (windows fill, -EAGAIN). */
	p->append_gap_ns =
	    p->fault_ns * (p->max_burst + 1) / 2 / p->records * sl_sim_range(rng, 2, 150) / 100;
	p->apply_delay_ns = sl_sim_below(rng, 2) ? sl_sim_range(rng, 1 * US, 2 * MS) : 0;
	p->disk_lat_ns = sl_sim_range(rng, 5 * US, 200 * US);
	p->disk_tail_ppm = (uint32_t)sl_sim_range(rng, 0, 50000);
	p->disk_tail_ns = sl_sim_range(rng, 100 * US, 5 * MS);
}

/* Elections in 7 seeds of 8; their timeout a few heartbeats (at least
 * 2 ms); failover faults in half the seeds that have elections. */
static void derive_elect(const struct opts *o, uint64_t *rng, struct sl_sim_params *p)
{
	int elect = sl_sim_below(rng, 8) != 0;
	uint64_t mult = sl_sim_range(rng, 3, 8);

	p->elect = o->broken_election ? 1 : o->elect >= 0 ? o->elect : elect;
	p->election_timeout_ns = p->heartbeat_ns * mult > 2 * MS ? p->heartbeat_ns * mult : 2 * MS;
	p->pause_max_ns = 5 * p->election_timeout_ns;
}

static void derive_faults(const struct opts *o, uint64_t *rng, struct sl_sim_params *p)
{
	unsigned mix = faults_of(sl_rng_next(rng));
	int failover = sl_sim_below(rng, 2) == 0;
	uint64_t t = p->election_timeout_ns;

	if (failover && p->elect)
		mix |= SL_SIM_FAULT_FAILOVER;
	p->faults = o->faults >= 0 ? (unsigned)o->faults : mix;
	if (!p->elect)
		p->faults &= ~SL_SIM_FAULT_FAILOVER;
	p->leader_crashes = (uint32_t)sl_sim_range(rng, 0, 3);
	p->double_failovers = (uint32_t)sl_sim_range(rng, 0, 1);
	p->pauses = (uint32_t)sl_sim_range(rng, 0, 2);
	p->candidate_crashes = (uint32_t)sl_sim_range(rng, 0, 2);
	p->power_losses = sl_sim_below(rng, 4) == 0;
	/* Room for elections to happen inside the fault phase. */
	if (p->faults & SL_SIM_FAULT_FAILOVER)
		p->fault_ns += sl_sim_range(rng, 4 * t, 30 * t);
	else
		sl_rng_next(rng);
	p->transfers = (uint32_t)sl_sim_range(rng, 0, 2);
	p->stepdowns = (uint32_t)sl_sim_range(rng, 0, 1);
	if (!(p->faults & SL_SIM_FAULT_FAILOVER))
		p->leader_crashes = p->double_failovers = p->pauses = p->candidate_crashes =
		    p->power_losses = p->transfers = p->stepdowns = 0;
	p->crashes = (uint32_t)sl_sim_range(rng, 1, 6);
	p->partitions = (uint32_t)sl_sim_range(rng, 1, 4);
	p->storage_errors = sl_sim_below(rng, 3) == 0 ? (uint32_t)sl_sim_range(rng, 1, 2) : 0;
	p->loss_ppm = (uint32_t)sl_sim_range(rng, 0, 300000);
	p->dup_ppm = (uint32_t)sl_sim_range(rng, 0, 500000);
	p->forge_ppm = (uint32_t)sl_sim_range(rng, 1000, 50000);
	p->down_max_ns = sl_sim_range(rng, 1 * MS, 200 * MS);
	if (!(p->faults & SL_SIM_FAULT_DISK))
		p->crashes = p->storage_errors = 0;
	if (!(p->faults & SL_SIM_FAULT_NET))
		p->partitions = p->loss_ppm = p->dup_ppm = p->forge_ppm = 0;
}

/* Rot and anti-entropy draw from their own stream, so seeds derive every
 * other option (and run) as they did before rot existed. */
static void derive_rot(const struct opts *o, uint64_t seed, struct sl_sim_params *p)
{
	uint64_t rng = sl_sim_mix(seed ^ 0x726f74ull);
	int rot = sl_sim_below(&rng, 4) == 0;

	if (o->faults < 0 && rot)
		p->faults |= SL_SIM_FAULT_ROT;
	p->rots = (uint32_t)sl_sim_range(&rng, 1, 4);
	p->scrub_ns = sl_sim_range(&rng, 1 * MS, 30 * MS);
	p->entropy_ns = sl_sim_range(&rng, 5 * MS, 300 * MS);
	if (!(p->faults & SL_SIM_FAULT_ROT))
		p->rots = 0;
	/* promote --force in 1 failover seed of 4 */
	p->forces = sl_sim_below(&rng, 4) == 0 && (p->faults & SL_SIM_FAULT_FAILOVER);
}

static void derive(const struct opts *o, uint64_t seed, uint64_t *rng, struct sl_sim_params *p)
{
	uint64_t nodes;

	memset(p, 0, sizeof(*p));
	*rng = sl_sim_mix(seed);
	p->seed = seed;
	nodes = sl_sim_range(rng, 1, 7);
	p->nodes = o->nodes ? o->nodes : (unsigned)nodes;
	derive_policy(o, rng, p);
	derive_shape(o, rng, p);
	derive_elect(o, rng, p);
	derive_faults(o, rng, p);
	derive_rot(o, seed, p);
	p->heal_budget_ns = 10000 * MS;
	p->trust_votes = o->trust_votes;
	p->max_events = o->max_events;
	p->trace = o->trace;
}

/* ---- printing ---- */

static const char *faults_name(unsigned f, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = 0;
	for (int i = 1; i < 5; i++)
		if (f & (unsigned)fault_masks[i])
			len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "+" : "",
						fault_names[i]);
	return len ? buf : "none";
}

/* One line, in three parts: policy and shape, timings, faults. */
static void print_params(const struct sl_sim_params *p)
{
	char acks[16], faults[48];

	printf("seed=%" PRIu64 " nodes=%u acks=%s level=%s on_timeout=%s timeout_ms=%.3f "
	       "local=%s%s%s faults=%s records=%u wl=%s mtu=%u batch=%u",
	       p->seed, p->nodes, sl_acks_name(p->policy.acks, acks, sizeof(acks)),
	       sl_ack_level_name(p->policy.level),
	       p->policy.on_timeout == SL_ON_TIMEOUT_BLOCK ? "block" : "degrade",
	       (double)p->policy.timeout_ns / MS, p->policy.local_none ? "none" : "durable",
	       p->policy.debug_undercount ? " BROKEN-QUORUM" : "",
	       p->policy.debug_undervote ? " BROKEN-ELECTION" : "",
	       faults_name(p->faults, faults, sizeof(faults)), p->records,
	       sl_wl_kind_name(p->wl_kind), p->mtu, p->batch_bytes);
	printf(" linger_us=%" PRIu64 " hb_us=%" PRIu64 " nak_us=%" PRIu64 "/%" PRIu64
	       " tlp_us=%" PRIu64 " budget=%u window_k=%" PRIu64 " rcv_window_k=%" PRIu64
	       " burst=%u gap_us=%" PRIu64 " apply_us=%" PRIu64 " disk_us=%" PRIu64
	       " disk_tail=%u/%" PRIu64 "us",
	       p->linger_ns / US, p->heartbeat_ns / US, p->nak_delay_ns / US,
	       p->nak_interval_ns / US, p->tlp_ns / US, p->send_budget, p->window_bytes >> 10,
	       p->rcv_window_bytes >> 10, p->max_burst, p->append_gap_ns / US,
	       p->apply_delay_ns / US, p->disk_lat_ns / US, p->disk_tail_ppm, p->disk_tail_ns / US);
	printf(" fault_ms=%" PRIu64 " crashes=%u down_max_ms=%" PRIu64 " parts=%u storage_errs=%u"
	       " loss_max_ppm=%u dup_max_ppm=%u forge_ppm=%u",
	       p->fault_ns / MS, p->crashes, p->down_max_ns / MS, p->partitions, p->storage_errors,
	       p->loss_ppm, p->dup_ppm, p->forge_ppm);
	printf(" elect=%s election_ms=%.1f leader_crashes=%u double_failovers=%u pauses=%u"
	       " candidate_crashes=%u power_losses=%u transfers=%u stepdowns=%u",
	       p->elect ? "on" : "off", (double)p->election_timeout_ns / MS, p->leader_crashes,
	       p->double_failovers, p->pauses, p->candidate_crashes, p->power_losses, p->transfers,
	       p->stepdowns);
	printf(" rots=%u scrub_ms=%.1f entropy_ms=%.1f forces=%u", p->rots,
	       (double)p->scrub_ns / MS, (double)p->entropy_ns / MS, p->forces);
}

static void print_result(const struct sl_sim_result *r)
{
	static const char *const outcome[] = {"OK", "FAIL", "INCOMPLETE"};

	printf(" | %s", outcome[r->outcome]);
	if (r->outcome == SL_SIM_VIOLATION)
		printf("(%c)", r->letter);
	printf(" appended=%" PRIu64 " committed=%" PRIu64 " delivered=%" PRIu64, r->appended,
	       r->committed, r->delivered_min);
	printf(" frames=%" PRIu64 " drops=%" PRIu64 " congested=%" PRIu64 " dups=%" PRIu64
	       " forged=%" PRIu64,
	       r->frames, r->lost + r->partitioned + r->to_down, r->congested, r->duplicated,
	       r->forged);
	printf(" crashes=%" PRIu64 " storage_errs=%" PRIu64 " eagain=%" PRIu64 " degrades=%" PRIu64,
	       r->crashes, r->storage_errors, r->eagain, r->degrade_events);
	printf(" naks=%" PRIu64 " rexmit=%" PRIu64 " tlps=%" PRIu64 " catchup=%" PRIu64, r->naks,
	       r->retransmits, r->tlps, r->catchup);
	printf(" elections=%" PRIu64 " leaders=%" PRIu64 " step_downs=%" PRIu64
	       " truncations=%" PRIu64 "/%" PRIu64 "B beyond=%d rewritten=%" PRIu64
	       " rebuilds=%" PRIu64,
	       r->elections, r->leader_changes, r->step_downs, r->truncations, r->truncated_bytes,
	       r->beyond, r->rewritten, r->rebuilds);
	printf(" rotted=%" PRIu64 " repairs=%" PRIu64 " given_up=%" PRIu64 " comparisons=%" PRIu64
	       " forced=%" PRIu64 " forced_lost=%" PRIu64,
	       r->rotted, r->repairs, r->tails_given_up, r->comparisons, r->forces, r->forced_lost);
	printf(" commit_us=%" PRIu64 "/%" PRIu64 " events=%" PRIu64 " vtime_ms=%.1f\n",
	       r->commit_p50_ns / US, r->commit_p99_ns / US, r->events, (double)r->vtime_ns / MS);
}

/* ---- the seeds ---- */

struct tally {
	uint64_t runs, failed, incomplete, committed, expected_hits;
	uint64_t elect_runs, failover_runs, leader_changes, truncations, beyond;
	uint64_t rot_runs, rotted, repairs, given_up, forces, forced_lost;
	uint64_t first_failed[8];
};

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_seed(struct sl_sim *sim, const struct opts *o, uint64_t seed, struct tally *t)
{
	struct sl_sim_params p;
	struct sl_sim_result r;
	uint64_t rng;
	int rc;

	derive(o, seed, &rng, &p);
	fflush(stdout);
	rc = sl_sim_run(sim, &p, &rng, &r);
	if (rc < 0) {
		print_params(&p);
		printf(" | simulator error %d: %s\n", rc, sl_err_msg());
		return rc;
	}
	t->runs++;
	t->committed += r.committed;
	t->elect_runs += p.elect != 0;
	t->failover_runs += (p.faults & SL_SIM_FAULT_FAILOVER) != 0;
	t->rot_runs += (p.faults & SL_SIM_FAULT_ROT) != 0;
	t->rotted += r.rotted;
	t->repairs += r.repairs;
	t->given_up += r.tails_given_up;
	t->forces += r.forces;
	t->forced_lost += r.forced_lost;
	t->leader_changes += r.leader_changes;
	t->truncations += r.truncations;
	t->beyond += r.beyond != 0;
	if (r.outcome == SL_SIM_INCOMPLETE)
		t->incomplete++;
	if (r.outcome == SL_SIM_VIOLATION) {
		if (t->failed < 8)
			t->first_failed[t->failed] = seed;
		t->failed++;
		t->expected_hits += r.letter == 'a' || r.letter == 'd' || r.letter == 'V';
	}
	if (!o->quiet || r.outcome != SL_SIM_OK) {
		print_params(&p);
		print_result(&r);
		if (r.outcome == SL_SIM_VIOLATION)
			printf("  replay: shiplog-sim --seed %" PRIu64 "%s\n", seed, o->replay);
	}
	return 0;
}

static void summary(const struct opts *o, const struct tally *t, double secs)
{
	printf("shiplog-sim: %" PRIu64 " seeds (%" PRIu64 " with elections, %" PRIu64
	       " with failover faults), %" PRIu64 " failed, %" PRIu64 " incomplete, %" PRIu64
	       " records committed, %" PRIu64 " leaders elected, %" PRIu64 " logs cut, %" PRIu64
	       " runs beyond tolerance, %" PRIu64 " with rot (%" PRIu64 " batches rotted, %" PRIu64
	       " repaired in place, %" PRIu64 " uncommitted tails given up), %" PRIu64
	       " forced promotions (%" PRIu64
	       " committed records lost as they declared), %.1f s (%.0f seeds/min)",
	       t->runs, t->elect_runs, t->failover_runs, t->failed, t->incomplete, t->committed,
	       t->leader_changes, t->truncations, t->beyond, t->rot_runs, t->rotted, t->repairs,
	       t->given_up, t->forces, t->forced_lost, secs,
	       secs > 0 ? (double)t->runs * 60 / secs : 0.0);
	if (t->failed) {
		printf("; failing seeds:");
		for (uint64_t i = 0; i < t->failed && i < 8; i++)
			printf(" %" PRIu64, t->first_failed[i]);
		if (t->failed > 8)
			printf(" ...");
	}
	printf("\n");
	if (o->expect)
		printf("shiplog-sim: --expect-violation: %" PRIu64 " runs violated (a), (d) or V\n",
		       t->expected_hits);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct tally t = {0};
	struct sl_sim *sim;
	double start = wall_s();
	uint64_t soak_rng;
	int rc = 0;

	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr, "%s", usage);
		return 2;
	}
	if (sl_sim_create(&sim) < 0) {
		fprintf(stderr, "shiplog-sim: out of memory\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	soak_rng = sl_sim_mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	if (o.soak_min > 0 && !o.seed_set)
		printf("shiplog-sim: soak for %.1f min, random seeds\n", o.soak_min);
	for (uint64_t i = 0; rc == 0; i++) {
		uint64_t seed = o.seed + i;

		if (o.soak_min > 0) {
			if (wall_s() - start >= o.soak_min * 60)
				break;
			seed = o.seed_set ? seed : sl_rng_next(&soak_rng) >> 16;
		} else if (i >= o.seeds) {
			break;
		}
		rc = run_seed(sim, &o, seed, &t);
	}
	summary(&o, &t, wall_s() - start);
	sl_sim_destroy(sim);
	if (rc < 0)
		return 1;
	if (o.expect)
		return t.expected_hits > 0 ? 0 : 1;
	return t.failed ? 1 : 0;
}
