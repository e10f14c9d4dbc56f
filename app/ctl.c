/* shipd's control socket and status output; see app/ctl.h. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/err.h"

/* --- status output -----------------------------------------------------------
 * One emitter writes both forms, so text and JSON can never show different
 * fields: text is indented "key: value" lines (YAML-like, "- " before each
 * array element), JSON one object. */

#define OUT_DEPTH 8

struct out {
	char *buf;
	size_t cap, len;
	int json, overflow;
	int depth;
	int first[OUT_DEPTH]; /* JSON: no comma before the first member */
	int item;	      /* text: the next key opens an array element */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->overflow = 1;
	else
		o->len += (size_t)n;
}

/* Start a member: JSON comma and name, text indentation and name. */
static void key(struct out *o, const char *name)
{
	if (o->json) {
		put(o, "%s", o->first[o->depth] ? "" : ",");
		o->first[o->depth] = 0;
		if (name)
			put(o, "\"%s\":", name);
		return;
	}
	for (int i = 1; i < o->depth; i++)
		put(o, i == o->depth - 1 && o->item ? "- " : "  ");
	o->item = 0;
	if (name)
		put(o, "%s:", name);
}

static void open_(struct out *o, const char *name, int array)
{
	if (o->depth > 0 || o->json)
		key(o, name);
	if (o->json)
		put(o, "%c", array ? '[' : '{');
	else if (o->depth > 0 && !array)
		put(o, "\n"); /* an array's first item ends the line (none: "[]") */
	if (o->depth + 1 < OUT_DEPTH)
		o->first[++o->depth] = 1;
}

static void close_(struct out *o, int array)
{
	if (o->json)
		put(o, "%c", array ? ']' : '}');
	else if (array && o->first[o->depth])
		put(o, " []\n");
	o->depth--;
}

static void begin(struct out *o, const char *name)
{
	open_(o, name, 0);
}

static void end(struct out *o)
{
	close_(o, 0);
}

/* An object inside an array: text marks it with "- ". */
static void begin_item(struct out *o)
{
	if (o->json) {
		open_(o, NULL, 0);
		return;
	}
	if (o->first[o->depth])
		put(o, "\n");
	o->first[o->depth] = 0;
	if (o->depth + 1 < OUT_DEPTH)
		o->first[++o->depth] = 1;
	o->item = 1;
}

static void u64(struct out *o, const char *name, uint64_t v)
{
	key(o, name);
	put(o, o->json ? "%" PRIu64 : " %" PRIu64 "\n", v);
}

static void flag(struct out *o, const char *name, int v)
{
	key(o, name);
	put(o, o->json ? "%s" : " %s\n", v ? "true" : "false");
}

/* Nanoseconds shown as milliseconds with three decimals. */
static void ms(struct out *o, const char *name, uint64_t ns)
{
	key(o, name);
	put(o, o->json ? "%" PRIu64 ".%03" PRIu64 : " %" PRIu64 ".%03" PRIu64 "\n", ns / 1000000,
	    ns / 1000 % 1000);
}

static void str(struct out *o, const char *name, const char *v)
{
	key(o, name);
	if (!o->json) {
		put(o, " %s\n", v);
		return;
	}
	put(o, "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			put(o, "\\%c", *p);
		else if (*p < 0x20)
			put(o, "\\u%04x", *p);
		else
			put(o, "%c", *p);
	}
	put(o, "\"");
}

static void out_peer(struct out *o, const struct sl_peer_status *p, uint64_t now)
{
	begin_item(o);
	u64(o, "node_id", p->node_id);
	u64(o, "sent_pos", p->sent_pos);
	u64(o, "received_pos", p->received_pos);
	u64(o, "durable_pos", p->durable_pos);
	u64(o, "applied_pos", p->applied_pos);
	u64(o, "applied_lsn", p->applied_lsn);
	ms(o, "write_lag_ms", p->write_lag_ns);
	ms(o, "flush_lag_ms", p->flush_lag_ns);
	ms(o, "apply_lag_ms", p->apply_lag_ns);
	u64(o, "bytes_behind", p->bytes_behind);
	u64(o, "records_behind", p->records_behind);
	if (p->last_status_ns && now >= p->last_status_ns)
		ms(o, "last_status_ms_ago", now - p->last_status_ns);
	else
		str(o, "last_status_ms_ago", "never");
	u64(o, "naks", p->naks);
	u64(o, "retransmits", p->retransmits);
	u64(o, "catchup_batches", p->catchup_batches);
	flag(o, "catching_up", p->catching_up);
	end(o);
}

static void out_node(struct out *o, const struct sl_ctl_status *s)
{
	const struct sl_proto_status *p = &s->proto;

	begin(o, "node");
	str(o, "role",
	    p->role == SL_ROLE_LEADER	   ? "leader"
	    : p->role == SL_ROLE_CANDIDATE ? "candidate"
					   : "follower");
	u64(o, "node_id", p->node_id);
	u64(o, "leader_id", p->leader_id);
	u64(o, "epoch", p->epoch);
	flag(o, "elect", s->elect);
	if (s->elect) {
		u64(o, "last_epoch", p->last_epoch);
		u64(o, "elections", p->elections);
		u64(o, "elections_won", p->elections_won);
		u64(o, "step_downs", p->step_downs);
		u64(o, "votes_granted", p->votes_granted);
		u64(o, "truncations", p->truncations);
		u64(o, "truncated_bytes", p->truncated_bytes);
		flag(o, "synced", p->synced);
	}
	u64(o, "next_lsn", p->next_lsn);
	u64(o, "heard_lsn", p->heard_lsn);
	u64(o, "log_end", p->log_end);
	u64(o, "durable_pos", p->durable_pos);
	u64(o, "commit_pos", p->commit_pos);
	u64(o, "commit_lsn", p->commit_lsn);
	u64(o, "safe_pos", p->safe_pos);
	u64(o, "delivered_lsn", p->delivered_lsn);
	flag(o, "degraded", p->degraded);
	u64(o, "degrade_events", p->degrade_events);
	if (p->role == SL_ROLE_LEADER) {
		ms(o, "commit_latency_ms", p->commit_latency_ns);
		u64(o, "catchup_rate", p->catchup_rate);
		u64(o, "catchup_throttled", p->catchup_throttled);
		u64(o, "catchup_cuts", p->catchup_cuts);
	}
	flag(o, "blocked", p->blocked_since_ns != 0);
	ms(o, "blocked_ms",
	   p->blocked_since_ns && s->now_ns > p->blocked_since_ns ? s->now_ns - p->blocked_since_ns
								  : 0);
	flag(o, "failed", p->failed != 0);
	if (p->failed)
		str(o, "error", strerror(-p->failed));
	end(o);
}

/* The last comparison of this node's Merkle tree with a peer's, repairs
 * and the scrub. */
static void out_entropy(struct out *o, const struct sl_ctl_status *s)
{
	const struct sl_entropy_status *e = &s->proto.entropy;

	begin(o, "entropy");
	str(o, "last_result", sl_entropy_result_name(e->last_result));
	if (e->last_ns && s->now_ns >= e->last_ns)
		ms(o, "last_ms_ago", s->now_ns - e->last_ns);
	else
		str(o, "last_ms_ago", "never");
	u64(o, "last_peer", e->last_peer);
	u64(o, "last_batches", e->last_leaves);
	if (e->last_result == SL_ENTROPY_DIFFER) {
		u64(o, "diff_batch", e->diff_leaf);
		u64(o, "diff_pos", e->diff_pos);
	}
	u64(o, "comparisons", e->comparisons);
	u64(o, "differences", e->differences);
	u64(o, "incomparable", e->incomparable);
	u64(o, "timeouts", e->timeouts);
	u64(o, "repairs", e->repairs);
	u64(o, "repairs_asked", e->repairs_asked);
	u64(o, "repairs_failed", e->repairs_failed);
	u64(o, "repairs_pending", e->repairs_pending);
	u64(o, "repairs_served", e->repairs_served);
	u64(o, "holes", e->holes);
	u64(o, "tails_given_up", e->tails_given_up);
	u64(o, "scrub_passes", s->loop.scrub_passes);
	u64(o, "scrub_steps", s->loop.scrub_steps);
	u64(o, "scrub_bad", s->loop.scrub_bad);
	u64(o, "tree_batches", s->tree_leaves);
	u64(o, "tree_sealed", s->tree_sealed);
	str(o, "tree_root", s->tree_root);
	end(o);
}

static void out_counters(struct out *o, const struct sl_ctl_status *s)
{
	const struct sl_proto_status *p = &s->proto;
	const struct sl_transport_stats *t = &s->transport;

	begin(o, "frames");
	u64(o, "in", p->frames_in);
	u64(o, "out", p->frames_out);
	u64(o, "bad", p->frames_bad);
	u64(o, "foreign", p->frames_foreign);
	u64(o, "stale", p->frames_stale);
	u64(o, "dup_fragments", p->dup_fragments);
	u64(o, "naks_sent", p->naks_sent);
	u64(o, "naks_received", p->naks_received);
	u64(o, "retransmits", p->retransmits);
	u64(o, "tlps", p->tlps);
	end(o);
	begin(o, "transport");
	str(o, "kind", sl_transport_kind_name(s->transport_kind));
	u64(o, "rx_packets", t->rx_packets);
	u64(o, "rx_bytes", t->rx_bytes);
	u64(o, "tx_packets", t->tx_packets);
	u64(o, "tx_bytes", t->tx_bytes);
	u64(o, "rx_dropped", t->rx_dropped);
	u64(o, "tx_dropped", t->tx_dropped);
	u64(o, "arp_replies", t->arp_replies);
	end(o);
	begin(o, "store");
	u64(o, "first_lsn", s->store.first_lsn);
	u64(o, "next_lsn", s->store.next_lsn);
	u64(o, "durable_lsn", s->store.durable_lsn);
	u64(o, "durable_position", s->store.durable_position);
	u64(o, "segments", s->store.segments);
	flag(o, "direct_io", s->store.direct_io);
	u64(o, "groups_written", s->store.groups_written);
	end(o);
	begin(o, "clients");
	u64(o, "connected", s->clients.clients);
	flag(o, "consumer", s->clients.consumer);
	u64(o, "accepted", s->clients.accepted);
	u64(o, "refused", s->clients.refused);
	u64(o, "closed", s->clients.closed);
	u64(o, "appended", s->clients.appended);
	u64(o, "delivered", s->clients.delivered);
	u64(o, "catchup_reads", s->clients.catchup_reads);
	u64(o, "kicks", s->clients.kicks);
	u64(o, "yields", s->clients.yields);
	u64(o, "bad_entries", s->clients.bad_entries);
	u64(o, "vectors_split", s->clients.vectors_split);
	end(o);
	begin(o, "loop");
	u64(o, "turns", s->loop.turns);
	u64(o, "idle_turns", s->loop.idle_turns);
	u64(o, "sleeps", s->loop.sleeps);
	u64(o, "tx_refused", s->loop.tx_refused);
	u64(o, "mac_rejected", s->loop.mac_rejected);
	u64(o, "store_full_waits", s->loop.store_full_waits);
	end(o);
}

int sl_ctl_format(const struct sl_ctl_status *s, int json, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap, .json = json, .first = {1}};

	if (cap == 0)
		return -ENOSPC;
	buf[0] = '\0';
	begin(&o, NULL);
	begin(&o, "shipd");
	u64(&o, "pid", (uint64_t)s->pid);
	str(&o, "config", s->config ? s->config : "");
	str(&o, "log_dir", s->log_dir ? s->log_dir : "");
	ms(&o, "uptime_ms", s->uptime_ns);
	flag(&o, "draining", s->draining);
	if (s->generate_target) {
		u64(&o, "generate_target", s->generate_target);
		u64(&o, "generate_done", s->generate_done);
		u64(&o, "generate_last_lsn", s->generate_last_lsn);
	}
	if (s->follower) {
		u64(&o, "delivered_records", s->delivered_records);
		u64(&o, "delivery_errors", s->delivery_errors);
	}
	end(&o);
	out_node(&o, s);
	open_(&o, "peers", 1);
	for (uint32_t i = 0; i < s->proto.n_peers && i < SL_NODES_MAX; i++)
		out_peer(&o, &s->proto.peers[i], s->now_ns);
	close_(&o, 1);
	out_counters(&o, s);
	out_entropy(&o, s);
	end(&o);
	put(&o, "\n");
	return o.overflow ? sl_err_set(ENOSPC, "status larger than %zu bytes", cap) : (int)o.len;
}

/* --- reading it back ------------------------------------------------------------
 * A recursive walk over the JSON above, matching `path` one component per
 * level. Depth is bounded by the path's length plus the emitter's nesting. */

struct jr {
	const char *p;
	int depth;
};

#define JR_DEPTH 16

static void jr_ws(struct jr *j)
{
	while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
		j->p++;
}

/* Copy a string at j->p (after its opening quote) into out (may be NULL). */
static int jr_string(struct jr *j, char *out, size_t cap)
{
	size_t n = 0;

	for (;;) {
		char c = *j->p++;

		if (c == '\0')
			return -EBADMSG;
		if (c == '"')
			break;
		if (c == '\\') {
			c = *j->p++;
			if (c == 'u') { /* the emitter escapes control bytes only */
				unsigned v;

				if (sscanf(j->p, "%4x", &v) != 1)
					return -EBADMSG;
				j->p += 4;
				c = (char)v;
			} else if (c == '\0') {
				return -EBADMSG;
			}
		}
		if (out && n + 1 < cap)
			out[n++] = c;
	}
	if (out && cap)
		out[n] = '\0';
	return 0;
}

static int jr_value(struct jr *j, const char *path, char *out, size_t cap);

/* Skip or descend into the value at j->p: `path` is what remains to match
 * inside it (NULL: skip it). 1: found and copied; 0: not there; <0: bad. */
static int jr_container(struct jr *j, const char *path, char *out, size_t cap, int array)
{
	char name[64], want[64];
	size_t wl = 0;
	const char *rest = NULL;
	int rc, found = 0;

	if (++j->depth > JR_DEPTH)
		return -EBADMSG;
	if (path) {
		const char *dot = strchr(path, '.');

		wl = dot ? (size_t)(dot - path) : strlen(path);
		if (wl >= sizeof(want))
			return -ENOENT;
		memcpy(want, path, wl);
		want[wl] = '\0';
		rest = dot ? dot + 1 : "";
	}
	j->p++; /* '{' or '[' */
	jr_ws(j);
	for (long idx = 0; *j->p != (array ? ']' : '}'); idx++) {
		int match;

		if (idx > 0) {
			if (*j->p++ != ',')
				return -EBADMSG;
			jr_ws(j);
		}
		if (array) {
			snprintf(name, sizeof(name), "%ld", idx);
		} else {
			if (*j->p++ != '"' || jr_string(j, name, sizeof(name)) < 0)
				return -EBADMSG;
			jr_ws(j);
			if (*j->p++ != ':')
				return -EBADMSG;
			jr_ws(j);
		}
		match = path && !found && strcmp(name, want) == 0;
		rc = jr_value(j, match ? rest : NULL, out, cap);
		if (rc < 0)
			return rc;
		found |= rc;
		jr_ws(j);
	}
	j->p++;
	j->depth--;
	return found;
}

static int jr_value(struct jr *j, const char *path, char *out, size_t cap)
{
	const char *start;
	size_t n;

	jr_ws(j);
	if (*j->p == '{' || *j->p == '[') {
		if (path && !*path)
			return -EBADMSG; /* a container where a scalar was asked for */
		return jr_container(j, path, out, cap, *j->p == '[');
	}
	if (*j->p == '"') {
		j->p++;
		return jr_string(j, path && !*path ? out : NULL, cap) < 0 ? -EBADMSG
									  : path && !*path;
	}
	start = j->p;
	while (*j->p && !strchr(",}] \n\t\r", *j->p))
		j->p++;
	if (j->p == start)
		return -EBADMSG;
	if (!path || *path)
		return 0; /* skipped, or a scalar where the path goes deeper */
	n = (size_t)(j->p - start) < cap ? (size_t)(j->p - start) : cap - 1;
	memcpy(out, start, n);
	out[n] = '\0';
	return 1;
}

int sl_ctl_json_get(const char *json, const char *path, char *out, size_t cap)
{
	struct jr j = {.p = json};
	int rc;

	if (cap == 0)
		return sl_err_set(EINVAL, "no room for %s", path);
	out[0] = '\0';
	jr_ws(&j);
	if (*j.p != '{')
		return sl_err_set(EBADMSG, "status: not a JSON object");
	rc = jr_container(&j, path, out, cap, 0);
	if (rc < 0)
		return sl_err_set(EBADMSG, "status: malformed JSON near byte %zu",
				  (size_t)(j.p - json));
	return rc ? 0 : sl_err_set(ENOENT, "status has no %s", path);
}

int sl_ctl_json_u64(const char *json, const char *path, uint64_t *v)
{
	char buf[32], *end;
	int rc = sl_ctl_json_get(json, path, buf, sizeof(buf));

	if (rc < 0)
		return rc;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	if (buf[0] < '0' || buf[0] > '9' || *end || errno)
		return sl_err_set(EINVAL, "status: %s is '%s', not a count", path, buf);
	return 0;
}

/* --- server ------------------------------------------------------------------ */

struct conn {
	int fd; /* -1: free */
	uint64_t deadline;
	size_t in_len, out_len, out_off;
	char in[SL_CTL_REQUEST_MAX];
	char out[SL_CTL_REPLY_MAX];
};

struct sl_ctl_server {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we made: removed at close only if still there */
	ino_t ino;
	sl_ctl_handler fn;
	void *ctx;
	struct conn conns[SL_CTL_CONNS];
};

static int fill_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return sl_err_set(ENAMETOOLONG, "control socket path %s is longer than %zu bytes",
				  path, sizeof(a->sun_path) - 1);
	strcpy(a->sun_path, path);
	return 0;
}

/* bind with mode 0600 from the start: the umask covers the window between
 * bind and chmod in which another user could connect. */
static int bind_private(int fd, const struct sockaddr_un *a)
{
	mode_t old = umask(0177);
	int rc = bind(fd, (const struct sockaddr *)a, sizeof(*a));
	int err = errno;

	umask(old);
	errno = err;
	return rc;
}

/* EADDRINUSE: a socket file is there. Replace it only when it is a socket
 * nobody accepts on (a crashed shipd's), never a live one or another file. */
static int replace_stale(int fd, const struct sockaddr_un *a)
{
	struct stat st;
	int probe, rc;

	if (lstat(a->sun_path, &st) != 0)
		return sl_err_set(errno, "control socket %s: %s", a->sun_path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return sl_err_set(EEXIST,
				  "control socket %s: exists and is not a socket (not "
				  "replacing it)",
				  a->sun_path);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return sl_err_set(errno, "socket: %s", strerror(errno));
	rc = connect(probe, (const struct sockaddr *)a, sizeof(*a));
	close(probe);
	if (rc == 0)
		return sl_err_set(EADDRINUSE,
				  "control socket %s: another process is listening (another shipd "
				  "on this log?)",
				  a->sun_path);
	if (errno != ECONNREFUSED)
		return sl_err_set(errno, "control socket %s: probing: %s", a->sun_path,
				  strerror(errno));
	if (unlink(a->sun_path) != 0 && errno != ENOENT)
		return sl_err_set(errno, "control socket %s: removing the stale socket: %s",
				  a->sun_path, strerror(errno));
	if (bind_private(fd, a) != 0)
		return sl_err_set(errno, "control socket %s: bind: %s", a->sun_path,
				  strerror(errno));
	return 0;
}

int sl_ctl_server_open(struct sl_ctl_server **out, const char *path, sl_ctl_handler fn, void *ctx)
{
	struct sl_ctl_server *s;
	struct sockaddr_un a;
	struct stat st;
	int rc;

	*out = NULL;
	if ((rc = fill_addr(&a, path)))
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return sl_err_set(ENOMEM, "control socket: out of memory");
	for (int i = 0; i < SL_CTL_CONNS; i++)
		s->conns[i].fd = -1;
	s->fn = fn;
	s->ctx = ctx;
	strcpy(s->path, path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = sl_err_set(errno, "socket: %s", strerror(errno));
		goto fail;
	}
	if (bind_private(s->fd, &a) != 0) {
		if (errno != EADDRINUSE) {
			rc = sl_err_set(errno, "control socket %s: bind: %s", s->path,
					strerror(errno));
			goto fail;
		}
		if ((rc = replace_stale(s->fd, &a)))
			goto fail;
	}
	if (chmod(s->path, 0600) != 0 || stat(s->path, &st) != 0 || listen(s->fd, 16) != 0) {
		rc = sl_err_set(errno, "control socket %s: %s", s->path, strerror(errno));
		unlink(s->path);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	*out = s;
	return 0;
fail:
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return rc;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static void conn_reply(struct sl_ctl_server *s, struct conn *c)
{
	int n;

	c->in[c->in_len] = '\0';
	n = s->fn(s->ctx, c->in, c->out, sizeof(c->out));
	if (n < 0)
		n = snprintf(c->out, sizeof(c->out), "error: %s\n", sl_err_msg());
	c->out_len = (size_t)n < sizeof(c->out) ? (size_t)n : sizeof(c->out) - 1;
	c->out_off = 0;
}

/* Read what is there; once a line (or EOF) is in, prepare the reply. */
static int conn_read(struct sl_ctl_server *s, struct conn *c)
{
	char *nl;
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	nl = memchr(c->in, '\n', c->in_len);
	if (nl) {
		c->in_len = (size_t)(nl - c->in);
		if (c->in_len && c->in[c->in_len - 1] == '\r')
			c->in_len--;
	} else if (n == 0) {
		if (c->in_len == 0)
			return -ECONNRESET; /* connected and left */
	} else if (c->in_len == sizeof(c->in) - 1) {
		c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
					      "error: request longer than %d bytes\n",
					      SL_CTL_REQUEST_MAX - 1);
		return 1;
	} else {
		return 0;
	}
	conn_reply(s, c);
	return 1;
}

static int conn_write(struct conn *c)
{
	ssize_t n =
	    send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	c->out_off += (size_t)n;
	return c->out_off == c->out_len ? -EALREADY : 1; /* -EALREADY: done, close */
}

int sl_ctl_server_poll(struct sl_ctl_server *s, uint64_t now_ns)
{
	int events = 0, may_accept = 1;

	for (int i = 0; i < SL_CTL_CONNS; i++) {
		struct conn *c = &s->conns[i];
		int rc = 0;

		if (c->fd < 0) {
			if (!may_accept)
				continue;
			c->fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (c->fd < 0) {
				may_accept = 0; /* nobody waiting (or an error): next call */
				continue;
			}
			c->deadline = now_ns + SL_CTL_DEADLINE_NS;
			c->in_len = c->out_len = c->out_off = 0;
			events++;
		}
		if (c->out_len == 0)
			rc = conn_read(s, c);
		if (rc >= 0 && c->out_len > 0)
			rc = conn_write(c);
		if (rc != 0)
			events++;
		if (rc < 0 || now_ns >= c->deadline)
			conn_close(c);
	}
	return events;
}

void sl_ctl_server_close(struct sl_ctl_server *s)
{
	struct stat st;

	if (!s)
		return;
	for (int i = 0; i < SL_CTL_CONNS; i++)
		if (s->conns[i].fd >= 0)
			conn_close(&s->conns[i]);
	close(s->fd);
	/* A newer shipd may have replaced the file: remove ours only. */
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}

/* --- client ------------------------------------------------------------------ */

static int64_t ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
	       (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait for `events` on fd until the deadline. 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int64_t left = ms_left(deadline);
		int rc;

		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

static int transfer(int fd, const char *path, const char *request, int timeout_ms, char *buf,
		    size_t cap)
{
	char line[SL_CTL_REQUEST_MAX];
	struct timespec deadline;
	size_t len = 0, off = 0;
	int n = snprintf(line, sizeof(line), "%s\n", request);

	if (n < 0 || (size_t)n >= sizeof(line))
		return sl_err_set(EINVAL, "request longer than %d bytes", SL_CTL_REQUEST_MAX - 1);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	while (off < (size_t)n) {
		ssize_t w = send(fd, line + off, (size_t)n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		int rc;

		if (w >= 0) {
			off += (size_t)w;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return sl_err_set(errno, "%s: sending: %s", path, strerror(errno));
		if ((rc = wait_fd(fd, POLLOUT, &deadline)))
			return sl_err_set(-rc, "%s: sending: %s", path, strerror(-rc));
	}
	for (;;) {
		ssize_t r;
		int rc;

		if (len + 1 >= cap)
			return sl_err_set(EMSGSIZE, "%s: reply larger than %zu bytes", path,
					  cap - 1);
		r = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (r > 0) {
			len += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			return sl_err_set(errno, "%s: receiving: %s", path, strerror(errno));
		if ((rc = wait_fd(fd, POLLIN, &deadline)))
			return sl_err_set(-rc, "%s: no reply within %d ms", path, timeout_ms);
	}
	buf[len] = '\0';
	return (int)len;
}

int sl_ctl_request(const char *path, const char *request, int timeout_ms, char *buf, size_t cap)
{
	struct sockaddr_un a;
	struct timeval tv;
	int fd, rc;

	if (cap == 0)
		return sl_err_set(EINVAL, "no room for a reply");
	if ((rc = fill_addr(&a, path)))
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sl_err_set(errno, "socket: %s", strerror(errno));
	/* connect on a Unix stream socket waits while the listener's backlog is
	 * full (a stopped shipd): SO_SNDTIMEO bounds that wait. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&a, sizeof(a)) != 0) {
		rc = errno == EAGAIN || errno == EINPROGRESS
			 ? sl_err_set(ETIMEDOUT, "cannot connect to %s: no answer within %d ms",
				      path, timeout_ms)
			 : sl_err_set(errno, "cannot connect to %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	rc = transfer(fd, path, request, timeout_ms, buf, cap);
	close(fd);
	return rc;
}
