/* shipd: the shiplog daemon. One node of one stream per process, configured
 * by an INI file (app/config.c), driven by its own run-to-completion loop:
 * each turn polls the node, feeds --generate's workload on the leader and,
 * at most once a millisecond, the control socket (app/ctl.c), then idles the
 * node's way. SIGTERM or SIGINT drains (closes the open batch, waits a
 * bounded time for durability and, on the leader, for commits) and exits 0;
 * a second signal cuts the drain short.
 *
 * Storage engines attach through libshiplog (app/client_srv.c, polled from
 * the node's loop): they append on the leader and consume on followers.
 * With [client] engine = none (the default) what a follower is delivered
 * counts as applied at once; with engine = consumer only the consumer's
 * acknowledgements do. --generate stands in for an engine's appends. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_srv.h"
#include "config.h"
#include "ctl.h"
#include "shiplog/err.h"
#include "shiplog/log.h"
#include "shiplog/node.h"
#include "shiplog/workload.h"

#define DEFAULT_CONFIG	  "/etc/shiplog/shipd.ini"
#define GEN_BUDGET	  256		/* records appended per turn at most */
#define CTL_INTERVAL_NS	  1000000ull	/* control socket polled at most this often */
#define REPORT_NS	  1000000000ull /* --generate progress lines */
#define GEN_BYTES_DEFAULT 1024
#define DESCRIBE_MAX	  (PATH_MAX + 1024) /* describe(): the log path and the rest */
#define APPLIED_FILE	  "client-applied"  /* in log_dir: the consumer's applied LSN */
#define APPLIED_SAVE_NS	  1000000000ull	    /* saved at most this often */

struct shipd_opts {
	const char *config;
	int check;
	uint64_t generate; /* records, 0: none */
	uint32_t generate_bytes;
	uint64_t exit_after_lsn; /* 0: run until signalled */
};

struct shipd {
	struct shipd_opts o;
	struct sl_config *cfg;
	struct sl_node *node;
	struct sl_ctl_server *ctl;
	struct sl_csrv *clients;	      /* libshiplog's socket */
	uint64_t applied_saved, next_save_ns; /* engine = consumer: client-applied */
	int leader;
	uint64_t started_ns, next_ctl_ns;
	int draining;
	/* engine callbacks */
	uint64_t commit_lsn;
	uint64_t delivered_lsn, delivered_end; /* end position of the last delivered batch */
	uint64_t delivered_records, delivery_errors;
	/* --generate */
	struct sl_wl wl;
	uint8_t *rec;
	int rec_ready; /* rec holds the next record (an append refused it) */
	uint64_t gen_done, gen_first_lsn, gen_last_lsn;
	uint64_t gen_start_ns, gen_end_ns; /* end: all committed */
	uint64_t next_report_ns, last_report_done, last_report_ns;
};

static volatile sig_atomic_t signals;

static void on_signal(int sig)
{
	(void)sig;
	signals++;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shipd [-c FILE] [--check] [--generate N[:BYTES]] [--exit-after-lsn N]\n"
		"The shiplog daemon: one node of a replicated log, configured by FILE\n"
		"(docs/configuration.md). SIGTERM or SIGINT drains and exits 0.\n\n"
		"  -c, --config FILE       configuration (default " DEFAULT_CONFIG ")\n"
		"      --check             check the configuration, print a summary, exit 0 or 1\n"
		"      --generate N[:BYTES]\n"
		"                          leader only (with elections: while this node leads):\n"
		"                          append N generated WAL-like records of\n"
		"                          BYTES bytes each (default %d) as fast as the pipeline\n"
		"                          takes them, log progress every second and the commit\n"
		"                          LSN at the end, then keep serving\n"
		"      --exit-after-lsn N  drain and exit 0 once LSN N is committed (leader) or\n"
		"                          delivered and durable here (follower)\n"
		"  -h, --help              this help\n\n"
		"Status: shipctl status [-c FILE] (the control socket is in the config).\n",
		GEN_BYTES_DEFAULT);
}

static int parse_generate(const char *arg, struct shipd_opts *o)
{
	char count[32];
	const char *colon = strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	uint64_t bytes = GEN_BYTES_DEFAULT;

	if (n >= sizeof(count))
		return sl_err_set(EINVAL, "--generate '%s': want N[:BYTES]", arg);
	memcpy(count, arg, n);
	count[n] = '\0';
	if (sl_config_parse_u64(count, 1, 1ull << 40, &o->generate) ||
	    (colon && sl_config_parse_size(colon + 1, 1, 8u << 20, &bytes)))
		return sl_err_wrap(-EINVAL, "--generate");
	o->generate_bytes = (uint32_t)bytes;
	return 0;
}

static int parse_opts(int argc, char **argv, struct shipd_opts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, 0, 'c'},   {"check", no_argument, 0, 'k'},
	    {"generate", required_argument, 0, 'g'}, {"exit-after-lsn", required_argument, 0, 'x'},
	    {"help", no_argument, 0, 'h'},	     {0, 0, 0, 0},
	};
	int c;

	*o = (struct shipd_opts){.config = DEFAULT_CONFIG};
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'k':
			o->check = 1;
			break;
		case 'g':
			if (parse_generate(optarg, o))
				return -EINVAL;
			break;
		case 'x':
			if (sl_config_parse_u64(optarg, 1, UINT64_MAX, &o->exit_after_lsn))
				return sl_err_wrap(-EINVAL, "--exit-after-lsn");
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return sl_err_set(EINVAL, "bad usage");
		}
	}
	if (optind < argc) {
		usage(stderr);
		return sl_err_set(EINVAL, "unexpected argument '%s'", argv[optind]);
	}
	return 0;
}

/* "node 2 (follower of 1), 3 nodes, udp 127.0.0.1:7002, ..." */
static void describe(const struct sl_config *c, char *buf, size_t cap)
{
	const struct sl_node_config *n = &c->node;
	const struct sl_ack_policy *p = &n->proto.policy;
	char ip[INET_ADDRSTRLEN], acks[16], role[48];
	struct in_addr a = {.s_addr = n->net.self.ip};

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	if (n->proto.elect && n->proto.leader_id)
		snprintf(role, sizeof(role), "elections, first leader %" PRIu32,
			 n->proto.leader_id);
	else if (n->proto.elect)
		snprintf(role, sizeof(role), "elections, joining");
	else if (n->proto.node_id == n->proto.leader_id)
		snprintf(role, sizeof(role), "leader");
	else
		snprintf(role, sizeof(role), "follower of %" PRIu32, n->proto.leader_id);
	snprintf(buf, cap,
		 "node %" PRIu32 " (%s), %" PRIu32 " nodes, stream %" PRIu64 ", epoch %" PRIu64
		 ", %s %s:%u mtu %" PRIu32 ", log %s, control socket %s, client socket %s, "
		 "acks=%s level=%s timeout=%" PRIu64 "ms on_timeout=%s%s",
		 n->proto.node_id, role, n->proto.n_nodes, n->proto.stream_id, n->proto.epoch,
		 sl_transport_kind_name(n->transport), ip, n->net.self.port, n->net.mtu, c->log_dir,
		 c->control_socket, c->client_socket, sl_acks_name(p->acks, acks, sizeof(acks)),
		 sl_ack_level_name(p->level), p->timeout_ns / 1000000,
		 p->on_timeout == SL_ON_TIMEOUT_DEGRADE ? "degrade" : "block",
		 p->local_none ? " local=none" : "");
}

/* --- the engine shipd stands in for ----------------------------------------- */

static void on_commit(void *ctx, uint64_t commit_lsn)
{
	struct shipd *d = ctx;

	d->commit_lsn = commit_lsn;
	sl_csrv_on_commit(d->clients, commit_lsn);
}

/* The consumer client gets the records (app/client_srv.c follows its own
 * cursor, reading the log when behind); with [client] engine = none,
 * delivered counts as applied. The node opens with applied_lsn 0, so a
 * (re)started follower is delivered its log from LSN 1, then the live
 * stream. Each delivery must continue the last one: counted, the first one
 * logged. */
static void on_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *raw, size_t raw_len)
{
	struct shipd *d = ctx;

	sl_csrv_on_deliver(d->clients, h, raw, raw_len);
	d->delivered_end = h->position + SL_BATCH_HDR_SIZE + h->stored_len;
	if (h->record_count == 0)
		return;
	if (h->base_lsn != d->delivered_lsn + 1 && d->delivery_errors++ == 0)
		sl_error("delivered lsn %" PRIu64 "..%" PRIu64 " after lsn %" PRIu64, h->base_lsn,
			 h->base_lsn + h->record_count - 1, d->delivered_lsn);
	d->delivered_records += h->record_count;
	d->delivered_lsn = h->base_lsn + h->record_count - 1;
	if (d->node && !d->cfg->client_engine)
		sl_node_applied(d->node, d->delivered_lsn);
}

static int on_wants_records(void *ctx, const struct sl_batch_hdr *h)
{
	const struct shipd *d = ctx;

	return sl_csrv_wants_records(d->clients, h);
}

/* Elections: appends (and --generate) only while leading. */
static void on_role(void *ctx, enum sl_role role, uint64_t epoch, uint32_t leader_id)
{
	struct shipd *d = ctx;

	d->leader = role == SL_ROLE_LEADER;
	sl_csrv_on_role(d->clients, role, epoch, leader_id);
}

/* Records from `lsn` on are gone (never committed): delivery, had it reached
 * them, continues from before. */
static void on_truncate(void *ctx, uint64_t lsn)
{
	struct shipd *d = ctx;

	if (d->delivered_lsn >= lsn)
		d->delivered_lsn = lsn - 1;
	if (d->gen_last_lsn >= lsn)
		sl_warn("generate: lsn %" PRIu64 "..%" PRIu64
			" were appended by this node as leader "
			"and never committed: gone",
			lsn, d->gen_last_lsn);
}

/* --- control requests --------------------------------------------------------- */

/* shipctl verify --cluster walks the replicas' Merkle trees through these:
 *   tree root N   -> "root HEX leaves L sealed S base B"  (root over N leaves)
 *   tree node K I -> "hash HEX"  (the complete subtree [I 2^K, (I+1) 2^K))
 *   tree leaf J   -> "pos P len L segment NAME" */
static int tree_request(struct shipd *d, const char *req, char *reply, size_t cap)
{
	struct sl_store_tree t;
	unsigned long long a, b;
	uint64_t h;
	char extra;

	sl_node_tree(d->node, &t);
	if (sscanf(req, "tree root %llu%c", &a, &extra) == 1) {
		if (a > t.leaves)
			return sl_err_set(ERANGE, "tree: %llu leaves asked, %" PRIu64 " held", a,
					  t.leaves);
		return snprintf(reply, cap,
				"root %016" PRIx64 " leaves %" PRIu64 " sealed %" PRIu64
				" base %" PRIu64 "\n",
				sl_merkle_root_at(t.m, a), t.leaves, t.sealed, t.base_pos);
	}
	if (sscanf(req, "tree node %llu %llu%c", &a, &b, &extra) == 2) {
		if (a > SL_MERKLE_LEVELS || ((b + 1) << a) > t.leaves ||
		    sl_merkle_node(t.m, (uint32_t)a, b, &h) < 0)
			return sl_err_set(ERANGE, "tree: no complete subtree %llu/%llu", a, b);
		return snprintf(reply, cap, "hash %016" PRIx64 "\n", h);
	}
	if (sscanf(req, "tree leaf %llu%c", &a, &extra) == 1) {
		if (a >= t.leaves)
			return sl_err_set(ERANGE, "tree: no leaf %llu", a);
		b = a + 1 < t.leaves ? t.leaf_pos[a + 1] : t.end_pos;
		return snprintf(reply, cap, "pos %" PRIu64 " len %" PRIu64 " segment %s\n",
				t.leaf_pos[a], (uint64_t)b - t.leaf_pos[a],
				sl_node_segment_of(d->node, t.leaf_pos[a]));
	}
	return sl_err_set(EINVAL, "unknown tree request '%.64s'", req);
}

static void tree_status(struct shipd *d, struct sl_ctl_status *s)
{
	struct sl_store_tree t;

	sl_node_tree(d->node, &t);
	s->tree_leaves = t.leaves;
	s->tree_sealed = t.sealed;
	snprintf(s->tree_root, sizeof(s->tree_root), "%016" PRIx64,
		 sl_merkle_root_at(t.m, t.sealed));
}

/* promote N [force] and stepdown (shipctl): the protocol acts on its next
 * turns; shipctl watches the status for the outcome. */
static int elect_request(struct shipd *d, const char *req, char *reply, size_t cap)
{
	const uint32_t self = d->cfg->node.proto.node_id;
	struct sl_proto_status st;
	uint64_t known, from, last;
	unsigned long target = 0;
	char force[8] = "";
	int rc, n;

	if (!d->cfg->node.proto.elect)
		return sl_err_set(EPERM,
				  "elections are off ([stream] elect = off): node %" PRIu32
				  " leads for good",
				  d->cfg->node.proto.leader_id);
	sl_node_status(d->node, &st);
	if (strcmp(req, "stepdown") == 0) {
		if ((rc = sl_node_stepdown(d->node)) < 0)
			return sl_err_wrap(rc,
					   "stepdown (leader: node %" PRIu32 ", epoch %" PRIu64 ")",
					   st.leader_id, st.epoch);
		return snprintf(reply, cap, "node %" PRIu32 " steps down in epoch %" PRIu64 "\n",
				self, st.epoch);
	}
	if (sscanf(req, "promote %lu %7s", &target, force) < 1 || target == 0 ||
	    target > UINT32_MAX || (force[0] && strcmp(force, "force") != 0))
		return sl_err_set(EINVAL, "bad request '%.64s' (promote NODE [force])", req);
	if (force[0] && target != self)
		return sl_err_set(EINVAL,
				  "promote --force makes the node it is sent to lead: this is node "
				  "%" PRIu32 ", not %lu (use node %lu's configuration)",
				  self, target, target);
	if (force[0]) {
		if ((rc = sl_node_force_lead(d->node)) < 0)
			return sl_err_wrap(rc, "promote --force");
		/* What it holds is kept; what others hold beyond it is cut. Past
		 * what it knows committed its log may be an older epoch's tail a
		 * later leader committed over: that range may be lost too. */
		known = st.commit_lsn > st.delivered_lsn ? st.commit_lsn : st.delivered_lsn;
		/* committed records it does not hold are lost too */
		from = (known < st.next_lsn - 1 ? known : st.next_lsn - 1) + 1;
		last = st.heard_lsn > st.next_lsn - 1 ? st.heard_lsn : st.next_lsn - 1;
		n = snprintf(reply, cap,
			     "node %" PRIu32
			     " takes the lead without an election (epoch was %" PRIu64
			     ")\nkept: lsn 1..%" PRIu64
			     " (its log; known committed through lsn %" PRIu64 ")\n",
			     self, st.epoch, st.next_lsn - 1, known);
		if (n > 0 && (size_t)n < cap && last >= from)
			n += snprintf(
			    reply + n, cap - (size_t)n,
			    "may be lost: lsn %" PRIu64 "..%" PRIu64
			    " as this node knows (not held or not known committed; a leader "
			    "appended "
			    "through lsn %" PRIu64 "), and whatever other nodes hold past "
			    "lsn %" PRIu64 "\n",
			    from, last, last, st.next_lsn - 1);
		else if (n > 0 && (size_t)n < cap)
			n += snprintf(reply + n, cap - (size_t)n,
				      "may be lost: whatever other nodes hold past lsn %" PRIu64
				      " (this node saw no leader append past it)\n",
				      st.next_lsn - 1);
		return n;
	}
	if (target == self)
		return sl_err_set(st.role == SL_ROLE_LEADER ? EALREADY : EPERM,
				  st.role == SL_ROLE_LEADER
				      ? "node %" PRIu32 " already leads"
				      : "node %" PRIu32
					" does not lead: send promote to the leader "
					"(node %" PRIu32 "), or, when no leader can be elected, "
					"promote --force (refused without it: records may be lost)",
				  self, st.leader_id);
	if ((rc = sl_node_transfer(d->node, (uint32_t)target)) < 0)
		return sl_err_wrap(rc, "promote %lu (leader: node %" PRIu32 ", epoch %" PRIu64 ")",
				   target, st.leader_id, st.epoch);
	return snprintf(reply, cap,
			"node %" PRIu32 " hands over to node %lu once it holds the whole log (lsn "
			"%" PRIu64 ")\n",
			self, target, st.next_lsn - 1);
}

static int on_request(void *ctx, const char *req, char *reply, size_t cap)
{
	struct shipd *d = ctx;
	struct sl_ctl_status s;
	char log_dir[PATH_MAX];
	int json;

	if (strcmp(req, "status") == 0)
		json = 0;
	else if (strcmp(req, "status json") == 0)
		json = 1;
	else if (strncmp(req, "tree ", 5) == 0)
		return tree_request(d, req, reply, cap);
	else if (strncmp(req, "promote ", 8) == 0 || strcmp(req, "stepdown") == 0)
		return elect_request(d, req, reply, cap);
	else
		return sl_err_set(EINVAL,
				  "unknown request '%.64s' (known: status, status json, tree, "
				  "promote NODE [force], stepdown)",
				  req);
	memset(&s, 0, sizeof(s));
	sl_node_status(d->node, &s.proto);
	sl_node_transport_stats(d->node, &s.transport);
	sl_node_stats(d->node, &s.loop);
	sl_node_store_info(d->node, &s.store);
	sl_csrv_get_stats(d->clients, &s.clients);
	s.transport_kind = d->cfg->node.transport;
	s.pid = (int)getpid();
	s.config = d->cfg->path;
	s.log_dir = realpath(d->cfg->log_dir, log_dir) ? log_dir : d->cfg->log_dir;
	s.now_ns = sl_node_now();
	s.uptime_ns = s.now_ns - d->started_ns;
	s.generate_target = d->o.generate;
	s.generate_done = d->gen_done;
	s.generate_last_lsn = d->gen_last_lsn;
	s.draining = d->draining;
	s.elect = d->cfg->node.proto.elect;
	s.follower = !d->leader;
	s.delivered_records = d->delivered_records;
	s.delivery_errors = d->delivery_errors;
	tree_status(d, &s);
	return sl_ctl_format(&s, json, reply, cap);
}

/* --- --generate ----------------------------------------------------------------- */

static void report(struct shipd *d, uint64_t now)
{
	double secs = (double)(now - d->last_report_ns) / 1e9;
	double rate = secs > 0 ? (double)(d->gen_done - d->last_report_done) / secs : 0;

	sl_info("generate: %" PRIu64 "/%" PRIu64 " appended, commit lsn %" PRIu64
		", %.0f records/s, %.1f MB/s",
		d->gen_done, d->o.generate, d->commit_lsn, rate, rate * d->o.generate_bytes / 1e6);
	d->last_report_done = d->gen_done;
	d->last_report_ns = now;
	d->next_report_ns = now + REPORT_NS;
}

/* Append up to GEN_BUDGET records; stop at -EAGAIN (the window is full:
 * the node must turn first). Returns records appended or -errno. */
static int generate(struct shipd *d, uint64_t now)
{
	int n = 0;

	if (d->gen_end_ns)
		return 0;
	if (!d->gen_start_ns) {
		d->gen_start_ns = d->last_report_ns = now;
		d->next_report_ns = now + REPORT_NS;
	}
	while (d->gen_done < d->o.generate && n < GEN_BUDGET) {
		int64_t lsn;

		if (!d->rec_ready)
			sl_wl_fill(&d->wl, d->rec, d->o.generate_bytes);
		d->rec_ready = 1;
		lsn = sl_node_append(d->node, d->rec, d->o.generate_bytes);
		if (lsn == -EAGAIN || (lsn == -EPERM && d->cfg->node.proto.elect))
			break; /* window full, or no longer leading: later */
		if (lsn < 0)
			return sl_err_wrap((int)lsn, "generate: appending record %" PRIu64,
					   d->gen_done + 1);
		d->rec_ready = 0;
		if (!d->gen_first_lsn)
			d->gen_first_lsn = (uint64_t)lsn;
		d->gen_last_lsn = (uint64_t)lsn;
		d->gen_done++;
		n++;
		if (d->gen_done == d->o.generate) {
			sl_node_flush(d->node); /* no linger for the last batch */
			sl_info("generate: all %" PRIu64 " records appended (lsn %" PRIu64
				"..%" PRIu64 ")",
				d->gen_done, d->gen_first_lsn, d->gen_last_lsn);
		}
	}
	if (d->gen_done == d->o.generate && d->commit_lsn >= d->gen_last_lsn) {
		double secs = (double)(now - d->gen_start_ns) / 1e9;

		d->gen_end_ns = now;
		sl_info("generate: %" PRIu64 " records committed in %.2f s (%.0f records/s, "
			"%.1f MB/s); commit lsn %" PRIu64,
			d->gen_done, secs, secs > 0 ? (double)d->gen_done / secs : 0,
			secs > 0 ? (double)d->gen_done * d->o.generate_bytes / secs / 1e6 : 0,
			d->commit_lsn);
	} else if (now >= d->next_report_ns) {
		report(d, now);
	}
	return n;
}

/* --exit-after-lsn: committed (leader), or delivered and durable here. */
static int reached_exit_lsn(struct shipd *d)
{
	struct sl_proto_status st;

	if (!d->o.exit_after_lsn)
		return 0;
	if (d->leader)
		return d->commit_lsn >= d->o.exit_after_lsn;
	if (d->delivered_lsn < d->o.exit_after_lsn)
		return 0;
	sl_node_status(d->node, &st);
	return st.durable_pos >= d->delivered_end;
}

/* --- the consumer's applied LSN across restarts ------------------------------
 * With [client] engine = consumer a follower opens its node with the last
 * LSN the consumer acknowledged as applied, kept in <log_dir>/client-applied
 * (written by rename, at most once a second and at exit; no fsync: a value
 * older than the truth only means the protocol delivers more again, and it
 * is never newer than what the engine acknowledged). */

static void applied_path(const struct shipd *d, char *buf, size_t cap, const char *suffix)
{
	snprintf(buf, cap, "%s/%s%s", d->cfg->log_dir, APPLIED_FILE, suffix);
}

static uint64_t load_applied(const struct shipd *d)
{
	char path[PATH_MAX + 32], text[32] = "";
	unsigned long long v = 0;
	FILE *f;

	applied_path(d, path, sizeof(path), "");
	if (!(f = fopen(path, "r")))
		return 0;
	if (!fgets(text, sizeof(text), f) || sscanf(text, "%llu", &v) != 1) {
		sl_warn("%s: not an LSN: ignored", path);
		v = 0;
	}
	fclose(f);
	return v;
}

static void save_applied(struct shipd *d)
{
	uint64_t v = sl_csrv_consumer_applied(d->clients);
	char tmp[PATH_MAX + 32], path[PATH_MAX + 32];
	FILE *f;

	if (!d->cfg->client_engine || v == d->applied_saved)
		return;
	applied_path(d, tmp, sizeof(tmp), ".tmp");
	applied_path(d, path, sizeof(path), "");
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%" PRIu64 "\n", v) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		sl_warn("saving the consumer's applied lsn in %s: %s", path, strerror(errno));
		return;
	}
	d->applied_saved = v;
}

/* The node, opened with the consumer's applied LSN when there is one; a
 * log that no longer holds it (restored from an older copy) opens as if
 * nothing was applied. */
static int open_node(struct shipd *d, const struct sl_node_engine *engine)
{
	int rc;

	if (d->cfg->client_engine && !d->leader)
		d->cfg->node.applied_lsn = d->applied_saved = load_applied(d);
	rc = sl_node_open(&d->node, &d->cfg->node, engine);
	if (rc && d->cfg->node.applied_lsn) {
		sl_warn("opening with the consumer's applied lsn %" PRIu64 ": %s; opening "
			"without it",
			d->cfg->node.applied_lsn, sl_err_msg());
		d->cfg->node.applied_lsn = 0;
		rc = sl_node_open(&d->node, &d->cfg->node, engine);
	}
	/* Delivery resumes right after it. */
	d->delivered_lsn = d->cfg->node.applied_lsn;
	return rc;
}

/* --- the loop ------------------------------------------------------------------- */

/* One turn: the node, the workload, the control socket. Events or -errno. */
static int turn(struct shipd *d)
{
	int events = sl_node_poll(d->node), rc;
	uint64_t now;

	if (events < 0)
		return events;
	now = sl_node_now();
	if (d->o.generate && d->leader && !d->draining && !sl_csrv_busy(d->clients)) {
		if ((rc = generate(d, now)) < 0)
			return rc;
		events += rc;
	}
	if (now >= d->next_ctl_ns) {
		events += sl_ctl_server_poll(d->ctl, now);
		d->next_ctl_ns = now + CTL_INTERVAL_NS;
	}
	if (now >= d->next_save_ns) {
		save_applied(d);
		d->next_save_ns = now + APPLIED_SAVE_NS;
	}
	return events;
}

static int run(struct shipd *d)
{
	while (!signals) {
		int events = turn(d);

		if (events < 0)
			return sl_err_wrap(events, "node failed");
		if (reached_exit_lsn(d)) {
			sl_info("lsn %" PRIu64 " reached: exiting", d->o.exit_after_lsn);
			break;
		}
		sl_node_idle_until(d->node, events, d->next_ctl_ns);
	}
	return 0;
}

/* Bounded: until durable (and on the leader committed) up to the log's end,
 * drain_timeout, a node failure or a second signal. */
static void drain(struct shipd *d)
{
	uint64_t start = sl_node_now(), deadline = start + d->cfg->drain_timeout_ns;
	sig_atomic_t seen = signals;
	struct sl_proto_status st;
	int done = 0;

	d->draining = 1;
	if (d->leader)
		sl_node_flush(d->node);
	while (!done && signals == seen && sl_node_now() < deadline) {
		int events = turn(d);

		if (events < 0)
			break;
		sl_node_status(d->node, &st);
		done = st.durable_pos >= st.log_end &&
		       (!d->leader || (st.commit_pos >= st.log_end && !sl_node_staged(d->node)));
		sl_node_idle_until(d->node, events, d->next_ctl_ns);
	}
	sl_node_status(d->node, &st);
	if (done)
		sl_info("drained in %.3f s: log end %" PRIu64 " durable, commit lsn %" PRIu64,
			(double)(sl_node_now() - start) / 1e9, st.log_end, st.commit_lsn);
	else
		sl_warn("drain incomplete: log end %" PRIu64 ", durable %" PRIu64
			", commit %" PRIu64 " (lsn %" PRIu64 ")",
			st.log_end, st.durable_pos, st.commit_pos, st.commit_lsn);
}

static int serve(struct shipd *d)
{
	struct sl_node_engine engine = {.ctx = d,
					.deliver = on_deliver,
					.wants_records = on_wants_records,
					.commit = on_commit,
					.role = on_role,
					.truncate = on_truncate};
	char what[DESCRIBE_MAX];
	int rc;

	/* The control socket first: a second shipd on the same log stops at
	 * its live socket before touching the log. */
	if ((rc = sl_ctl_server_open(&d->ctl, d->cfg->control_socket, on_request, d)))
		return rc;
	describe(d->cfg, what, sizeof(what));
	sl_info("shipd %d: %s", (int)getpid(), what);
	if ((rc = open_node(d, &engine)))
		return sl_err_wrap(rc, "opening the node");
	{
		struct sl_proto_status st;

		sl_node_status(d->node, &st);
		d->leader = st.role == SL_ROLE_LEADER;
	}
	if ((rc = sl_csrv_open(&d->clients, d->node,
			       &(struct sl_csrv_opts){
				   .path = d->cfg->client_socket,
				   .ring_bytes = d->cfg->client_ring_bytes,
				   .max_clients = d->cfg->client_max,
				   .apply_by_consumer = d->cfg->client_engine,
			       })))
		return rc;
	d->started_ns = sl_node_now();
	if (d->o.generate) {
		d->rec = malloc(d->o.generate_bytes);
		if (!d->rec)
			return sl_err_set(ENOMEM, "generate: out of memory");
		sl_wl_init(&d->wl, SL_WL_TEXT, d->cfg->node.proto.node_id);
	}
	rc = run(d);
	if (rc == 0)
		drain(d);
	save_applied(d);
	return rc;
}

/* What the policy cannot survive: on stdout for --check, logged otherwise. */
static void print_risks(const struct sl_config *c, int check)
{
	char w[8][SL_CONFIG_WARN_MAX];
	int n = sl_config_warnings(c, w, 8);

	for (int i = 0; i < n; i++) {
		if (check)
			printf("%s: warning: %s\n", c->path, w[i]);
		else
			sl_warn("shipd: %s: %s", c->path, w[i]);
	}
}

int main(int argc, char **argv)
{
	struct shipd d = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	int rc;

	if (parse_opts(argc, argv, &d.o)) {
		fprintf(stderr, "shipd: %s\n", sl_err_msg());
		return 2;
	}
	if (sl_config_load(d.o.config, SL_CONFIG_CHECK_FS, &d.cfg)) {
		fprintf(stderr, "shipd: %s\n", sl_err_msg());
		return 1;
	}
	d.leader = d.cfg->node.proto.node_id == d.cfg->node.proto.leader_id;
	/* Election timeouts differ between nodes and runs. */
	d.cfg->node.proto.rng_seed = sl_node_now() ^ (uint64_t)getpid() << 32;
	if (d.o.check) {
		char what[DESCRIBE_MAX];

		describe(d.cfg, what, sizeof(what));
		printf("%s: ok: %s\n", d.cfg->path, what);
		print_risks(d.cfg, 1);
		sl_config_free(d.cfg);
		return 0;
	}
	print_risks(d.cfg, 0);
	if (d.o.generate && !d.leader && !d.cfg->node.proto.elect) {
		fprintf(stderr,
			"shipd: --generate: node %" PRIu32 " is not the leader (%" PRIu32 ")\n",
			d.cfg->node.proto.node_id, d.cfg->node.proto.leader_id);
		sl_config_free(d.cfg);
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = serve(&d);
	if (rc)
		sl_error("shipd: %s", sl_err_msg());
	sl_csrv_close(d.clients);
	if (d.node)
		sl_node_close(d.node);
	sl_ctl_server_close(d.ctl);
	free(d.rec);
	sl_config_free(d.cfg);
	if (!rc)
		sl_info("shipd: stopped");
	return rc ? 1 : 0;
}
