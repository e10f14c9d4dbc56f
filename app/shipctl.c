/* shipctl: shiplog's command line. status and lag ask a running shipd
 * through its control socket (app/ctl.h), given with -s or found in the
 * daemon's configuration with -c; tail and verify read a log directory
 * (app/shipctl_log.c), or for tail the running shipd's own log. */
#include "shipctl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "shiplog/err.h"
#include "shiplog/proto.h"

#define DEFAULT_CONFIG	"/etc/shiplog/shipd.ini"
#define LAG_INTERVAL_MS 1000
#define LAG_LINE_MAX	160
#define INTERVAL_MAX_MS 3600000

volatile sig_atomic_t shipctl_stop;

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(const struct ctl_opts *o);
	int dir; /* 1: takes a directory (2: must) */
};

static int cmd_status(const struct ctl_opts *o);
static int cmd_lag(const struct ctl_opts *o);
static int cmd_promote(const struct ctl_opts *o);
static int parse_u64(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out);
static int cmd_stepdown(const struct ctl_opts *o);

static const struct command commands[] = {
    {"status", "[--json]",
     "a running shipd's role, positions, commit and delivered LSNs,\n"
     "                      per-follower lag, counters",
     cmd_status, 0},
    {"tail", "[DIR]",
     "print the records of log directory DIR or, without DIR, those a\n"
     "                      running shipd has committed and holds durably",
     shipctl_tail, 1},
    {"verify", "DIR",
     "check every batch (CRCs, chain, records) of log directory DIR;\n"
     "                      report the first problem with its segment file and offset;\n"
     "                      with --cluster instead, compare the Merkle trees of running\n"
     "                      nodes (-s or -c for each) and report where they differ",
     shipctl_verify, 2},
    {"lag", "", "per-follower lag of a running leader, refreshed in place", cmd_lag, 0},
    {"promote", "NODE",
     "(elections) the leader hands over to NODE once NODE holds its whole\n"
     "                      log, and waits until NODE leads; ask the leader (-c its config)",
     cmd_promote, 2},
    {"stepdown", "", "(elections) the leader steps down; waits until another leads", cmd_stepdown,
     0},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: shipctl COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s %-9s  %s\n", commands[i].name, commands[i].args,
			commands[i].help);
	fprintf(f,
		"\nreaching shipd (status, lag, tail without DIR):\n"
		"  -s, --socket PATH    the control socket\n"
		"  -c, --config FILE    read the socket's path from shipd's configuration\n"
		"                       (default " DEFAULT_CONFIG " when -s is not given)\n"
		"status:\n"
		"      --json           one JSON object\n"
		"tail (one line per record: its LSN, a space, its bytes):\n"
		"      --from LSN       start at this LSN (default: the oldest held)\n"
		"  -n, --count N        stop after N records (default: no limit)\n"
		"  -f, --follow         keep printing records as they arrive (Ctrl-C stops)\n"
		"      --hex            bytes as hex digits (default: text, with \\\\, \\n, \\t,\n"
		"                       \\r and \\xNN escapes for the rest)\n"
		"      --batches        one line per batch instead: LSNs, epoch, position,\n"
		"                       segment file and offset, sizes\n"
		"verify --cluster (exit 1 when replicas differ):\n"
		"      --cluster        every -s SOCKET / -c CONFIG names a node to compare\n"
		"promote:\n"
		"      --force          make NODE lead without an election (ask NODE itself,\n"
		"                       the first -s / -c): for when no quorum of voters is\n"
		"                       left. Refused without the flag. Prints the LSNs that\n"
		"                       may be lost: from the first LSN NODE does not know\n"
		"                       committed (its log past there may differ from the\n"
		"                       committed one) to the highest LSN a leader is known\n"
		"                       to have appended, as NODE and every other -s / -c\n"
		"                       given (the nodes still reachable) saw it\n"
		"lag:\n"
		"  -n, --count N        stop after N refreshes (default: until Ctrl-C)\n"
		"  -i, --interval MS    between refreshes (default %d; tail -f: 200)\n"
		"\n  -h, --help           this help\n\n"
		"exit status: 0 done; 1 shipd unreachable or refusing, a log that cannot be\n"
		"read or (verify) is corrupt; 2 bad usage; 3 (verify) a torn tail, which shipd\n"
		"cuts when it opens the log\n",
		LAG_INTERVAL_MS);
}

const char *shipctl_socket(const struct ctl_opts *o)
{
	static struct sl_config *cfg;

	if (o->socket)
		return o->socket;
	/* No filesystem checks: finding the socket must not need write
	 * access to the log directory. */
	if (!cfg && sl_config_load(o->config ? o->config : DEFAULT_CONFIG, 0, &cfg)) {
		fprintf(stderr, "shipctl: %s\n", sl_err_msg());
		return NULL;
	}
	return cfg->control_socket;
}

int shipctl_ask(const char *socket, const char *request, char *reply)
{
	int n = sl_ctl_request(socket, request, SHIPCTL_TIMEOUT_MS, reply, SL_CTL_REPLY_MAX + 1);

	if (n < 0) {
		fprintf(stderr, "shipctl: %s%s\n", sl_err_msg(),
			n == -ENOENT || n == -ECONNREFUSED ? " — is shipd running?" : "");
		return 1;
	}
	if (strncmp(reply, "error: ", 7) == 0) {
		fprintf(stderr, "shipctl: shipd at %s: %s", socket, reply + 7);
		return 1;
	}
	return 0;
}

int shipctl_nap(uint64_t ms)
{
	struct timespec t = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};

	while (!shipctl_stop && nanosleep(&t, &t) != 0 && errno == EINTR)
		;
	return shipctl_stop;
}

static int cmd_status(const struct ctl_opts *o)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	const char *socket = shipctl_socket(o);

	if (!socket || shipctl_ask(socket, o->json ? "status json" : "status", reply))
		return 1;
	fputs(reply, stdout);
	return ferror(stdout) || fflush(stdout) ? 1 : 0;
}

/* --- promote and stepdown -------------------------------------------------------- */

#define ELECT_WAIT_MS 10000 /* for the outcome of a promote or stepdown */

/* Ask `socket` for its role and leader until done(role, leader) or the
 * wait ends. 0 done, 1 not (printed). */
static int watch(const char *socket, uint32_t want, int forced, uint32_t self)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	uint64_t epoch = 0, leader = 0;
	char role[16] = "?";

	for (int waited = 0; waited <= ELECT_WAIT_MS && !shipctl_stop; waited += 50) {
		if (sl_ctl_request(socket, "status json", SHIPCTL_TIMEOUT_MS, reply,
				   sizeof(reply)) > 0 &&
		    sl_ctl_json_get(reply, "node.role", role, sizeof(role)) == 0 &&
		    sl_ctl_json_u64(reply, "node.leader_id", &leader) == 0 &&
		    sl_ctl_json_u64(reply, "node.epoch", &epoch) == 0) {
			int done = forced ? strcmp(role, "leader") == 0
				   : want ? leader == want
					  : leader != 0 && leader != self;

			if (done) {
				printf("node %" PRIu64 " leads epoch %" PRIu64 "\n", leader, epoch);
				return fflush(stdout) ? 1 : 0;
			}
		}
		shipctl_nap(50);
	}
	fprintf(stderr,
		"shipctl: not done after %d ms: node %" PRIu32 " is %s in epoch %" PRIu64
		", leader %" PRIu64 "%s\n",
		ELECT_WAIT_MS, self, role, epoch, leader,
		want && !forced ? " (a hand-over is given up after an election timeout when the "
				  "target does not catch up)"
				: "");
	return 1;
}

static int self_id(const char *socket, uint64_t *id)
{
	static char reply[SL_CTL_REPLY_MAX + 1];

	if (shipctl_ask(socket, "status json", reply))
		return 1;
	if (sl_ctl_json_u64(reply, "node.node_id", id)) {
		fprintf(stderr, "shipctl: %s\n", sl_err_msg());
		return 1;
	}
	return 0;
}

#define PEER_WAIT_MS 1000 /* promote --force: for each other node's status */

static void add_name(char *list, size_t cap, const char *name)
{
	size_t n = strlen(list);

	snprintf(list + n, cap - n, "%s%s", n ? ", " : "", name);
}

/* promote --force: the LSNs that may be lost run from the first LSN the
 * target does not know committed (past its commit its log may hold an older
 * epoch's tail that a later leader committed over: forced, that tail wins)
 * to the highest LSN any node asked (the target, then every other -s / -c)
 * knows a leader appended (node.heard_lsn: its own log, or a batch header a
 * leader sent it). Asked before the force, so the target's log is as it was. */
static void print_lost(const struct ctl_opts *o, const char *target)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	char asked[256] = "", gone[512] = "", name[32];
	uint64_t a = 0, b = 0, from = 0, id, heard, commit = 0, delivered = 0, next = 0;

	for (int i = 0; i < (o->nsockets > 1 ? o->nsockets : 1); i++) {
		const char *sock = i == 0 ? target : o->sockets[i];

		if (sl_ctl_request(sock, "status json", i == 0 ? SHIPCTL_TIMEOUT_MS : PEER_WAIT_MS,
				   reply, sizeof(reply)) <= 0 ||
		    sl_ctl_json_u64(reply, "node.node_id", &id) ||
		    sl_ctl_json_u64(reply, "node.heard_lsn", &heard) ||
		    (i == 0 && (sl_ctl_json_u64(reply, "node.commit_lsn", &commit) ||
				sl_ctl_json_u64(reply, "node.delivered_lsn", &delivered) ||
				sl_ctl_json_u64(reply, "node.next_lsn", &next)))) {
			add_name(gone, sizeof(gone), sock);
			continue;
		}
		if (i == 0) { /* committed records it does not hold are lost too */
			commit = commit > delivered ? commit : delivered;
			a = commit < next ? commit + 1 : next;
		}
		snprintf(name, sizeof(name), "%" PRIu64, id);
		add_name(asked, sizeof(asked), name);
		if (heard >= b) {
			b = heard;
			from = id;
		}
	}
	if (a == 0) /* the target did not answer: the request fails below */
		return;
	if (b >= a)
		printf("LSNs %" PRIu64 "..%" PRIu64 " may be lost (%" PRIu64
		       ": the highest LSN a leader is known to have appended, seen by node "
		       "%" PRIu64 " in its log or in a batch a leader sent it",
		       a, b, b, from);
	else
		printf("no LSN is known to be lost (no node asked saw a leader append past lsn "
		       "%" PRIu64,
		       a - 1);
	printf("; nodes asked: %s%s%s; a leader's records no node asked saw are not counted)\n",
	       asked, gone[0] ? "; not reachable: " : "", gone);
}

static int cmd_promote(const struct ctl_opts *o)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	const char *socket = o->force && o->nsockets > 1 ? o->sockets[0] : shipctl_socket(o);
	char req[64];
	uint64_t target, self;

	if (parse_u64("NODE", o->dir, 1, UINT32_MAX, &target))
		return 2;
	if (!socket || self_id(socket, &self))
		return 1;
	if (o->force && target == self)
		print_lost(o, socket);
	snprintf(req, sizeof(req), "promote %" PRIu64 "%s", target, o->force ? " force" : "");
	if (shipctl_ask(socket, req, reply))
		return 1;
	fputs(reply, stdout);
	return watch(socket, (uint32_t)target, o->force, (uint32_t)self);
}

static int cmd_stepdown(const struct ctl_opts *o)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	const char *socket = shipctl_socket(o);
	uint64_t self;

	if (!socket || self_id(socket, &self) || shipctl_ask(socket, "stepdown", reply))
		return 1;
	fputs(reply, stdout);
	return watch(socket, 0, 0, (uint32_t)self);
}

/* --- lag ----------------------------------------------------------------------- */

struct lag {
	uint64_t last_commit, last_ns;
	int lines; /* printed by the last refresh (a terminal rewrites them) */
};

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* A field of the status as text, "?" when it is missing. */
static const char *field(const char *json, const char *path, char *buf, size_t cap)
{
	if (sl_ctl_json_get(json, path, buf, cap) < 0)
		snprintf(buf, cap, "?");
	return buf;
}

static const char *peer_field(const char *json, int i, const char *name, char *buf, size_t cap)
{
	char path[64];

	snprintf(path, sizeof(path), "peers.%d.%s", i, name);
	return field(json, path, buf, cap);
}

/* One row per follower. Returns the rows printed. */
static int lag_peers(FILE *f, const char *json)
{
	char id[24], rec[24], bytes[24], w[24], fl[24], ap[24], last[24], cu[8];
	int i;

	fprintf(f, "%8s %14s %14s %10s %10s %10s %12s  %s\n", "follower", "records_behind",
		"bytes_behind", "write_ms", "flush_ms", "apply_ms", "last_status", "state");
	for (i = 0; i < SL_NODES_MAX; i++) {
		char path[32];

		snprintf(path, sizeof(path), "peers.%d.node_id", i);
		if (sl_ctl_json_get(json, path, id, sizeof(id)) < 0)
			break;
		peer_field(json, i, "last_status_ms_ago", last, sizeof(last));
		if (strcmp(last, "never") != 0 && strlen(last) + 7 < sizeof(last))
			strcat(last, "ms ago");
		fprintf(f, "%8s %14s %14s %10s %10s %10s %12s  %s\n", id,
			peer_field(json, i, "records_behind", rec, sizeof(rec)),
			peer_field(json, i, "bytes_behind", bytes, sizeof(bytes)),
			peer_field(json, i, "write_lag_ms", w, sizeof(w)),
			peer_field(json, i, "flush_lag_ms", fl, sizeof(fl)),
			peer_field(json, i, "apply_lag_ms", ap, sizeof(ap)), last,
			strcmp(peer_field(json, i, "catching_up", cu, sizeof(cu)), "true") == 0
			    ? "catching up"
			    : "live");
	}
	return i + 1;
}

/* Render one refresh into f; returns the lines written. */
static int lag_render(FILE *f, const char *json, struct lag *l, uint64_t now)
{
	char role[16], id[24], leader[24], epoch[24], clock[16], rate[48] = "";
	uint64_t commit = 0, delivered = 0;
	time_t t = time(NULL);

	field(json, "node.role", role, sizeof(role));
	field(json, "node.node_id", id, sizeof(id));
	field(json, "node.leader_id", leader, sizeof(leader));
	field(json, "node.epoch", epoch, sizeof(epoch));
	sl_ctl_json_u64(json, "node.commit_lsn", &commit);
	sl_ctl_json_u64(json, "node.delivered_lsn", &delivered);
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&t));
	if (l->last_ns && now > l->last_ns && commit >= l->last_commit)
		snprintf(rate, sizeof(rate), " (%.0f records/s)",
			 (double)(commit - l->last_commit) * 1e9 / (double)(now - l->last_ns));
	l->last_commit = commit;
	l->last_ns = now;
	if (strcmp(role, "leader") != 0) {
		fprintf(f,
			"%s  node %s (follower of %s), epoch %s: commit lsn %" PRIu64
			"%s, delivered lsn %" PRIu64 " (%" PRIu64 " behind)\n"
			"per-follower lag is kept by the leader: run shipctl lag against node %s\n",
			clock, id, leader, epoch, commit, rate, delivered,
			commit > delivered ? commit - delivered : 0, leader);
		return 2;
	}
	fprintf(f, "%s  node %s (leader), epoch %s: commit lsn %" PRIu64 "%s\n", clock, id, epoch,
		commit, rate);
	return 1 + lag_peers(f, json);
}

static int cmd_lag(const struct ctl_opts *o)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	const char *socket = shipctl_socket(o);
	uint64_t interval = o->interval_ms ? o->interval_ms : LAG_INTERVAL_MS;
	int tty = isatty(STDOUT_FILENO);
	struct lag l = {0};

	if (!socket)
		return 1;
	for (uint64_t k = 0; !o->count || k < o->count; k++) {
		if (k > 0 && shipctl_nap(interval))
			break;
		if (shipctl_ask(socket, "status json", reply))
			return 1;
		/* A terminal sees one table rewritten in place; a pipe or a
		 * file gets every refresh, one after the other. */
		if (tty && l.lines)
			printf("\033[%dA\033[J", l.lines);
		else if (l.lines)
			putchar('\n');
		l.lines = lag_render(stdout, reply, &l, mono_ns());
		if (fflush(stdout) || ferror(stdout))
			return 1;
	}
	return 0;
}

/* --- main ------------------------------------------------------------------------ */

static int parse_u64(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	if (sl_config_parse_u64(v, min, max, out)) {
		fprintf(stderr, "shipctl: %s: %s\n", opt, sl_err_msg());
		return -1;
	}
	return 0;
}

/* verify --cluster: each -c stands for its configuration's socket. */
static int cluster_sockets(struct ctl_opts *o)
{
	static char socks[SHIPCTL_SOCKETS_MAX][SL_CONFIG_SOCK_MAX];

	for (int i = 0; i < o->nsockets; i++) {
		struct sl_config *cfg;

		if (!o->is_config[i])
			continue;
		if (sl_config_load(o->sockets[i], 0, &cfg)) {
			fprintf(stderr, "shipctl: %s\n", sl_err_msg());
			return 1;
		}
		snprintf(socks[i], sizeof(socks[i]), "%s", cfg->control_socket);
		sl_config_free(cfg);
		o->sockets[i] = socks[i];
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct ctl_opts *o)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, 0, 's'},
	    {"config", required_argument, 0, 'c'},
	    {"json", no_argument, 0, 'j'},
	    {"from", required_argument, 0, 'F'},
	    {"count", required_argument, 0, 'n'},
	    {"follow", no_argument, 0, 'f'},
	    {"hex", no_argument, 0, 'x'},
	    {"batches", no_argument, 0, 'b'},
	    {"interval", required_argument, 0, 'i'},
	    {"cluster", no_argument, 0, 'C'},
	    {"force", no_argument, 0, 'P'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	int c;

	/* GNU getopt permutes: options may follow the command. */
	while ((c = getopt_long(argc, argv, "s:c:n:fi:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'c':
			if (o->nsockets == SHIPCTL_SOCKETS_MAX) {
				fprintf(stderr, "shipctl: at most %d nodes\n", SHIPCTL_SOCKETS_MAX);
				return 2;
			}
			o->is_config[o->nsockets] = c == 'c';
			if (c == 's')
				o->socket = o->sockets[o->nsockets++] = optarg;
			else
				o->config = o->sockets[o->nsockets++] = optarg;
			break;
		case 'C':
			o->cluster = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'F':
			if (parse_u64("--from", optarg, 1, UINT64_MAX, &o->from))
				return 2;
			break;
		case 'n':
			if (parse_u64("--count", optarg, 1, UINT64_MAX, &o->count))
				return 2;
			break;
		case 'f':
			o->follow = 1;
			break;
		case 'x':
			o->hex = 1;
			break;
		case 'b':
			o->batches = 1;
			break;
		case 'P':
			o->force = 1;
			break;
		case 'i':
			if (parse_u64("--interval", optarg, 1, INTERVAL_MAX_MS, &o->interval_ms))
				return 2;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (o->cluster || (o->force && o->nsockets > 1))
		return cluster_sockets(o);
	if (o->nsockets > 1) {
		fprintf(stderr, "shipctl: -s and -c name one socket: give one (several: only "
				"verify --cluster and promote --force)\n");
		return 2;
	}
	return 0;
}

static void on_stop(int sig)
{
	(void)sig;
	shipctl_stop = 1;
}

int main(int argc, char **argv)
{
	struct ctl_opts o = {0};
	const struct command *cmd = NULL;
	struct sigaction sa = {.sa_handler = on_stop};
	int rc = parse_opts(argc, argv, &o), nargs;

	if (rc)
		return rc;
	if (optind == argc) {
		fprintf(stderr, "shipctl: which command?\n");
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "shipctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	nargs = argc - optind - 1;
	if (nargs > (cmd->dir ? 1 : 0) || (cmd->dir == 2 && nargs == 0 && !o.cluster)) {
		fprintf(stderr, "shipctl %s: %s\n", cmd->name,
			nargs			  ? "too many arguments"
			: cmd->run == cmd_promote ? "which node?"
						  : "which log directory?");
		return 2;
	}
	if (nargs)
		o.dir = argv[optind + 1];
	if (o.force && cmd->run != cmd_promote) {
		fprintf(stderr, "shipctl %s: --force is promote's\n", cmd->name);
		return 2;
	}
	if (o.cluster && cmd->run != shipctl_verify) {
		fprintf(stderr, "shipctl %s: --cluster is for verify\n", cmd->name);
		return 2;
	}
	if (o.cluster)
		return nargs ? (fprintf(stderr, "shipctl verify --cluster: no directory\n"), 2)
			     : shipctl_verify_cluster(&o);
	/* Stopping a loop (lag, tail -f) ends it cleanly, output flushed. */
	if (cmd->run == cmd_lag || o.follow) {
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	return cmd->run(&o);
}
