/* shipd's INI configuration; see app/config.h and docs/configuration.md.
 *
 * libinih does the tokenising. We feed it lines through our own reader so we
 * know the line number of every key (Debian's libinih is built without
 * INI_HANDLER_LINENO), can refuse over-long lines instead of having them
 * split silently, and can see section headers, including empty ones. Keys are
 * table-driven: one row per key with its range and destination; only values
 * with a syntax of their own have a setter. Checks that span keys run once
 * the whole file is read, pointing at the line of the key they blame. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shiplog/err.h"

/* The store's documented defaults (shiplog/store.h) and the node's group
 * sizing rule (shiplog/node.h), made explicit so the checks between keys see
 * the values that will be in use. */
#define STORE_SEGMENT_DEFAULT  (64ull << 20)
#define STORE_GROUP_DEFAULT    (1u << 20)
#define STORE_INFLIGHT_DEFAULT 2u
#define STORE_GROUP_HDR	       32u   /* a batch must fit a group with this header */
#define STORE_BLOCK	       4096u /* the smallest write alignment the store uses */

enum sec {
	SEC_CLUSTER,
	SEC_NODE,
	SEC_TRANSPORT,
	SEC_STREAM,
	SEC_STORE,
	SEC_CLIENT,
	SEC_PEER,
	SEC_N
};

static const char *const sec_names[SEC_N] = {"cluster", "node",	  "transport", "stream",
					     "store",	"client", "peer.N"};

enum key_id {
	K_CLUSTER_ID,
	K_STREAM_ID,
	K_EPOCH,
	K_LEADER,
	K_NODE_ID,
	K_LOG_DIR,
	K_CONTROL_SOCKET,
	K_IDLE,
	K_KEY_FILE,
	K_DRAIN_TIMEOUT,
	K_CPU,
	K_KIND,
	K_MTU,
	K_EAL_ARGS,
	K_PORT_ID,
	K_MBUFS,
	K_RX_BATCH,
	K_TX_QUEUE,
	K_ACKS,
	K_ACK_LEVEL,
	K_ACK_TIMEOUT,
	K_ON_TIMEOUT,
	K_BATCH_BYTES,
	K_LINGER_US,
	K_COMPRESS_THREAD,
	K_LZ4_ACCEL,
	K_ENTROPY_INTERVAL,
	K_CATCHUP_BUDGET,
	K_LOCAL,
	K_WINDOW_BYTES,
	K_RCV_WINDOW_BYTES,
	K_MAX_RECORD_BYTES,
	K_ELECT,
	K_ELECTION_TIMEOUT,
	K_HEARTBEAT,
	K_SEGMENT_BYTES,
	K_GROUP_BYTES,
	K_MAX_INFLIGHT,
	K_INLINE_WRITE_MAX,
	K_PREWRITE_CHUNK,
	K_SYNC,
	K_IO,
	K_SCRUB_RATE,
	K_CLIENT_SOCKET,
	K_CLIENT_RING_BYTES,
	K_CLIENT_MAX,
	K_CLIENT_ENGINE,
	K_ADDRESS, /* [peer.N] keys: their lines live in struct peer */
	K_MAC,
	K_PORT,
	K_N,
};

struct peer {
	uint32_t id;
	unsigned line;	      /* of the [peer.N] header */
	unsigned key_line[3]; /* address, mac, port */
	struct sl_endpoint ep;
	char port[SL_CONFIG_PORT_MAX]; /* "" when none */
};

struct parse {
	struct sl_config *c;
	unsigned flags;
	char base[PATH_MAX]; /* directory that relative paths start from */
	const char *text;
	size_t len, off;
	unsigned lineno;
	int err; /* first error: parsing stops there */
	enum sec sec;
	int in_section;
	struct peer *peer; /* the [peer.N] being read */
	unsigned sec_line[SEC_N];
	unsigned key_line[K_N];
	unsigned n_peers;
	struct peer peers[SL_NODES_MAX];
};

/* --- value parsers --------------------------------------------------------- */

/* Digits then an optional suffix; *rest points at the suffix. */
static int parse_digits(const char *s, uint64_t *out, const char **rest)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	*rest = p;
	return 0;
}

struct unit {
	const char *name;
	uint64_t mult;
};

/* v in the largest unit of `units` that divides it exactly ("16M", "1h" is
 * not a unit: "60m"), for messages that state a range the way it is written. */
static const char *with_unit(uint64_t v, const struct unit *units, char *buf, size_t cap)
{
	const struct unit *best = units;

	for (const struct unit *u = units; u->name; u++)
		if (v && v % u->mult == 0 && u->mult > best->mult)
			best = u;
	snprintf(buf, cap, "%llu%s", (unsigned long long)(v / best->mult), v ? best->name : "");
	return buf;
}

/* A number with a unit from `units` (the empty name allows a bare number);
 * `what` describes the expected form for the message. */
static int parse_with_unit(const char *s, const struct unit *units, uint64_t min, uint64_t max,
			   const char *what, uint64_t *out)
{
	char lo[32], hi[32];
	const char *rest;
	uint64_t v;
	int rc = parse_digits(s, &v, &rest);

	if (rc == 0) {
		rc = -EINVAL;
		for (const struct unit *u = units; u->name; u++) {
			if (strcmp(rest, u->name) != 0 && !(v == 0 && *rest == '\0'))
				continue;
			if (v > UINT64_MAX / u->mult) {
				rc = -ERANGE;
				break;
			}
			v *= u->mult;
			rc = v < min || v > max ? -ERANGE : 0;
			break;
		}
	}
	if (rc == 0) {
		*out = v;
		return 0;
	}
	return sl_err_set(EINVAL, "'%s' is not %s in %s..%s", s, what,
			  with_unit(min, units, lo, sizeof(lo)),
			  with_unit(max, units, hi, sizeof(hi)));
}

int sl_config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const struct unit units[] = {{"", 1}, {NULL, 0}};

	return parse_with_unit(s, units, min, max, "a number", out);
}

int sl_config_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const struct unit units[] = {
	    {"", 1},
	    {"K", 1ull << 10},
	    {"KiB", 1ull << 10},
	    {"M", 1ull << 20},
	    {"MiB", 1ull << 20},
	    {"G", 1ull << 30},
	    {"GiB", 1ull << 30},
	    {NULL, 0},
	};

	return parse_with_unit(s, units, min, max, "a size (bytes, or with K, M, G)", out);
}

int sl_config_parse_duration(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *out)
{
	static const struct unit units[] = {
	    {"ns", 1},
	    {"us", 1000ull},
	    {"ms", 1000000ull},
	    {"s", 1000000000ull},
	    {"m", 60000000000ull},
	    {NULL, 0},
	};

	return parse_with_unit(s, units, min_ns, max_ns, "a duration (with ns, us, ms, s or m)",
			       out);
}

/* --- the key table ---------------------------------------------------------- */

enum vtype { V_U64, V_SIZE, V_DURATION, V_ENUM, V_CUSTOM };

struct enum_name {
	const char *name;
	int value;
};

struct key_def {
	enum sec sec;
	const char *name;
	enum vtype type;
	uint64_t min, max, scale; /* numbers: range as written; stored times scale */
	size_t off, width;	  /* destination in struct sl_config */
	const struct enum_name *names;
	int (*set)(struct parse *p, const char *v);
	int required;
};

#define DEST(m) .off = offsetof(struct sl_config, m), .width = sizeof(((struct sl_config *)0)->m)

_Static_assert(sizeof(enum sl_idle) == sizeof(int) && sizeof(enum sl_sync_mode) == sizeof(int) &&
		   sizeof(enum sl_io_mode) == sizeof(int) &&
		   sizeof(enum sl_on_timeout) == sizeof(int) &&
		   sizeof(enum sl_transport_kind) == sizeof(int),
	       "enum keys are stored as int");

static const struct enum_name idle_names[] = {{"spin", SL_IDLE_SPIN},
					      {"yield", SL_IDLE_YIELD},
					      {"backoff", SL_IDLE_BACKOFF},
					      {"nap", SL_IDLE_NAP},
					      {NULL, 0}};
static const struct enum_name kind_names[] = {
    {"udp", SL_TRANSPORT_UDP}, {"dpdk", SL_TRANSPORT_DPDK}, {"tcp", SL_TRANSPORT_TCP}, {NULL, 0}};
static const struct enum_name on_timeout_names[] = {
    {"block", SL_ON_TIMEOUT_BLOCK}, {"degrade", SL_ON_TIMEOUT_DEGRADE}, {NULL, 0}};
static const struct enum_name local_names[] = {{"durable", 0}, {"none", 1}, {NULL, 0}};
static const struct enum_name sync_names[] = {{"default", SL_SYNC_DEFAULT},
					      {"fdatasync", SL_SYNC_FDATASYNC},
					      {"dsync", SL_SYNC_DSYNC},
					      {NULL, 0}};
static const struct enum_name onoff_names[] = {{"off", 0}, {"on", 1}, {NULL, 0}};
static const struct enum_name engine_names[] = {{"none", 0}, {"consumer", 1}, {NULL, 0}};
static const struct enum_name io_names[] = {
    {"auto", SL_IO_AUTO}, {"direct", SL_IO_DIRECT}, {"buffered", SL_IO_BUFFERED}, {NULL, 0}};

static int set_cluster_id(struct parse *p, const char *v);
static int set_log_dir(struct parse *p, const char *v);
static int set_control_socket(struct parse *p, const char *v);
static int set_key_file(struct parse *p, const char *v);
static int set_client_socket(struct parse *p, const char *v);
static int set_eal_args(struct parse *p, const char *v);
static int set_acks(struct parse *p, const char *v);
static int set_ack_level(struct parse *p, const char *v);
static int set_address(struct parse *p, const char *v);
static int set_mac(struct parse *p, const char *v);
static int set_port(struct parse *p, const char *v);
static int set_cpu(struct parse *p, const char *v);

#define HOUR_NS (3600ull * 1000000000ull)

static const struct key_def keys[K_N] = {
    [K_CLUSTER_ID] = {SEC_CLUSTER, "id", V_CUSTOM, .set = set_cluster_id, .required = 1},
    [K_STREAM_ID] = {SEC_CLUSTER, "stream", V_U64, 0, UINT64_MAX, 1, DEST(node.proto.stream_id)},
    [K_EPOCH] = {SEC_CLUSTER, "epoch", V_U64, 1, UINT64_MAX, 1, DEST(node.proto.epoch)},
    [K_LEADER] = {SEC_CLUSTER, "leader", V_U64, 0, UINT32_MAX, 1, DEST(node.proto.leader_id),
		  .required = 1},
    [K_NODE_ID] = {SEC_NODE, "id", V_U64, 1, UINT32_MAX, 1, DEST(node.proto.node_id),
		   .required = 1},
    [K_LOG_DIR] = {SEC_NODE, "log_dir", V_CUSTOM, .set = set_log_dir, .required = 1},
    [K_CONTROL_SOCKET] = {SEC_NODE, "control_socket", V_CUSTOM, .set = set_control_socket},
    [K_IDLE] = {SEC_NODE, "idle", V_ENUM, DEST(node.idle), .names = idle_names},
    [K_KEY_FILE] = {SEC_NODE, "key_file", V_CUSTOM, .set = set_key_file},
    [K_DRAIN_TIMEOUT] = {SEC_NODE, "drain_timeout", V_DURATION, 0, HOUR_NS, 1,
			 DEST(drain_timeout_ns)},
    [K_CPU] = {SEC_NODE, "cpu", V_CUSTOM, .set = set_cpu},
    [K_KIND] = {SEC_TRANSPORT, "kind", V_ENUM, DEST(node.transport), .names = kind_names},
    [K_MTU] = {SEC_TRANSPORT, "mtu", V_U64, 576, 9216, 1, DEST(node.net.mtu)},
    [K_EAL_ARGS] = {SEC_TRANSPORT, "eal_args", V_CUSTOM, .set = set_eal_args},
    [K_PORT_ID] = {SEC_TRANSPORT, "port_id", V_U64, 0, UINT16_MAX, 1, DEST(node.net.port_id)},
    [K_MBUFS] = {SEC_TRANSPORT, "mbufs", V_U64, 1023, 1u << 24, 1, DEST(node.net.mbufs)},
    [K_RX_BATCH] = {SEC_TRANSPORT, "rx_batch", V_U64, 1, 1024, 1, DEST(node.net.rx_batch)},
    [K_TX_QUEUE] = {SEC_TRANSPORT, "tx_queue", V_U64, 1, 65536, 1, DEST(node.net.tx_queue)},
    [K_ACKS] = {SEC_STREAM, "acks", V_CUSTOM, .set = set_acks},
    [K_ACK_LEVEL] = {SEC_STREAM, "ack_level", V_CUSTOM, .set = set_ack_level},
    [K_ACK_TIMEOUT] = {SEC_STREAM, "ack_timeout", V_DURATION, 0, HOUR_NS, 1,
		       DEST(node.proto.policy.timeout_ns)},
    [K_ON_TIMEOUT] = {SEC_STREAM, "on_timeout", V_ENUM, DEST(node.proto.policy.on_timeout),
		      .names = on_timeout_names},
    [K_BATCH_BYTES] = {SEC_STREAM, "batch_bytes", V_SIZE, 1u << 10, 16u << 20, 1,
		       DEST(node.proto.batch_bytes)},
    [K_LINGER_US] = {SEC_STREAM, "linger_us", V_U64, 1, 1000000, 1000, DEST(node.proto.linger_ns)},
    [K_LZ4_ACCEL] = {SEC_STREAM, "lz4_acceleration", V_U64, 1, 65537, 1,
		     DEST(node.proto.lz4_accel)},
    [K_COMPRESS_THREAD] = {SEC_STREAM, "compress_thread", V_ENUM, DEST(node.compress_thread),
			   .names = onoff_names},
    [K_CATCHUP_BUDGET] = {SEC_STREAM, "catchup_latency_budget", V_DURATION, 1000, HOUR_NS, 1,
			  DEST(node.proto.catchup_budget_ns)},
    [K_ENTROPY_INTERVAL] = {SEC_STREAM, "entropy_interval", V_DURATION, 1000000, HOUR_NS, 1,
			    DEST(node.proto.entropy_interval_ns)},
    [K_LOCAL] = {SEC_STREAM, "local", V_ENUM, DEST(node.proto.policy.local_none),
		 .names = local_names},
    [K_WINDOW_BYTES] = {SEC_STREAM, "window_bytes", V_SIZE, 1u << 20, 16ull << 30, 1,
			DEST(node.proto.window_bytes)},
    [K_RCV_WINDOW_BYTES] = {SEC_STREAM, "rcv_window_bytes", V_SIZE, 1u << 20, 16ull << 30, 1,
			    DEST(node.proto.rcv_window_bytes)},
    [K_MAX_RECORD_BYTES] = {SEC_STREAM, "max_record_bytes", V_SIZE, 1, 8u << 20, 1,
			    DEST(node.proto.limits.max_record_bytes)},
    [K_ELECT] = {SEC_STREAM, "elect", V_ENUM, DEST(node.proto.elect), .names = onoff_names},
    [K_ELECTION_TIMEOUT] = {SEC_STREAM, "election_timeout_ms", V_U64, 10, 600000, 1000000,
			    DEST(node.proto.election_timeout_ns)},
    [K_HEARTBEAT] = {SEC_STREAM, "heartbeat_ms", V_U64, 1, 60000, 1000000,
		     DEST(node.proto.heartbeat_ns)},
    [K_SEGMENT_BYTES] = {SEC_STORE, "segment_bytes", V_SIZE, 1u << 20, 1ull << 40, 1,
			 DEST(node.store.segment_bytes)},
    [K_GROUP_BYTES] = {SEC_STORE, "group_bytes", V_SIZE, 4u << 10, 64u << 20, 1,
		       DEST(node.store.group_bytes)},
    [K_MAX_INFLIGHT] = {SEC_STORE, "max_inflight", V_U64, 1, 64, 1, DEST(node.store.max_inflight)},
    [K_INLINE_WRITE_MAX] = {SEC_STORE, "inline_write_max", V_SIZE, 0, 64u << 20, 1,
			    DEST(node.store.inline_write_max)},
    [K_PREWRITE_CHUNK] = {SEC_STORE, "prewrite_chunk", V_SIZE, 256u << 10, 8u << 20, 1,
			  DEST(node.store.prewrite_chunk)},
    [K_SYNC] = {SEC_STORE, "sync", V_ENUM, DEST(node.store.sync_mode), .names = sync_names},
    [K_IO] = {SEC_STORE, "io", V_ENUM, DEST(node.store.io_mode), .names = io_names},
    [K_SCRUB_RATE] = {SEC_STORE, "scrub_rate", V_SIZE, 64u << 10, 1ull << 40, 1,
		      DEST(node.scrub_rate)},
    [K_CLIENT_SOCKET] = {SEC_CLIENT, "socket", V_CUSTOM, .set = set_client_socket},
    [K_CLIENT_RING_BYTES] = {SEC_CLIENT, "ring_bytes", V_SIZE, 64u << 10, SL_CSRV_RING_MAX, 1,
			     DEST(client_ring_bytes)},
    [K_CLIENT_MAX] = {SEC_CLIENT, "max_clients", V_U64, 1, SL_CSRV_CLIENTS_MAX, 1,
		      DEST(client_max)},
    [K_CLIENT_ENGINE] = {SEC_CLIENT, "engine", V_ENUM, DEST(client_engine), .names = engine_names},
    [K_ADDRESS] = {SEC_PEER, "address", V_CUSTOM, .set = set_address, .required = 1},
    [K_MAC] = {SEC_PEER, "mac", V_CUSTOM, .set = set_mac},
    [K_PORT] = {SEC_PEER, "port", V_CUSTOM, .set = set_port},
};

/* --- messages ----------------------------------------------------------------- */

static const char *sec_label(enum sec s, const struct peer *peer, char *buf, size_t cap)
{
	if (s == SEC_PEER && peer) {
		snprintf(buf, cap, "peer.%u", peer->id);
		return buf;
	}
	return sec_names[s];
}

/* "FILE:LINE: [section] key: " in front of the detail already set with
 * sl_err_set; a line of 0 (nothing to point at) leaves the line out. */
static int wrap_at(struct parse *p, int rc, unsigned line, enum key_id k, const struct peer *peer)
{
	char sec[32], where[PATH_MAX + 32];

	if (line)
		snprintf(where, sizeof(where), "%s:%u", p->c->path, line);
	else
		snprintf(where, sizeof(where), "%s", p->c->path);
	rc = sl_err_wrap(rc, "%s: [%s] %s", where, sec_label(keys[k].sec, peer, sec, sizeof(sec)),
			 keys[k].name);
	if (!p->err)
		p->err = rc;
	return rc;
}

static int fail_at(struct parse *p, unsigned line, enum key_id k, const struct peer *peer,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_at(struct parse *p, unsigned line, enum key_id k, const struct peer *peer,
		   const char *fmt, ...)
{
	char msg[SL_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return wrap_at(p, sl_err_set(EINVAL, "%s", msg), line, k, peer);
}

/* A problem with a line but no key (syntax, sections). */
static int fail_line(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_line(struct parse *p, const char *fmt, ...)
{
	char msg[SL_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!p->err)
		p->err = sl_err_set(EINVAL, "%s:%u: %s", p->c->path, p->lineno, msg);
	return p->err;
}

/* The line to blame for key k's value: where it was set, else its section. */
static unsigned line_of(const struct parse *p, enum key_id k)
{
	return p->key_line[k] ? p->key_line[k] : p->sec_line[keys[k].sec];
}

/* --- setters for values with a syntax of their own ----------------------------- */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int set_cluster_id(struct parse *p, const char *v)
{
	uint8_t *id = p->c->node.proto.cluster_id;
	size_t n = strlen(v);

	memset(id, 0, 16);
	if (n == 32 && strspn(v, "0123456789abcdefABCDEF") == 32) {
		for (size_t i = 0; i < 16; i++)
			id[i] = (uint8_t)(hexval(v[2 * i]) << 4 | hexval(v[2 * i + 1]));
		return 0;
	}
	if (n < 1 || n > 16 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return sl_err_set(EINVAL,
				  "'%s' is neither 32 hex digits nor a name of 1..16 letters, "
				  "digits, '.', '_' or '-'",
				  v);
	memcpy(id, v, n);
	return 0;
}

/* Relative paths start at the configuration file's directory, so a config
 * and its log can move together, whatever the working directory. */
static int resolve_path(struct parse *p, const char *v, char *out, size_t cap)
{
	int n;

	if (*v == '\0')
		return sl_err_set(EINVAL, "empty path");
	n = v[0] == '/' ? snprintf(out, cap, "%s", v) : snprintf(out, cap, "%s/%s", p->base, v);
	if (n < 0 || (size_t)n >= cap)
		return sl_err_set(ENAMETOOLONG, "path '%s' is longer than %zu bytes", v, cap - 1);
	return 0;
}

static int set_log_dir(struct parse *p, const char *v)
{
	char *dir = p->c->log_dir;
	struct stat st;
	int rc = resolve_path(p, v, dir, sizeof(p->c->log_dir));

	if (rc || !(p->flags & SL_CONFIG_CHECK_FS))
		return rc;
	if (stat(dir, &st) != 0)
		return sl_err_set(errno, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return sl_err_set(ENOTDIR, "%s is not a directory", dir);
	if (access(dir, W_OK | X_OK) != 0)
		return sl_err_set(errno, "%s is not writable: %s", dir, strerror(errno));
	return 0;
}

static int set_control_socket(struct parse *p, const char *v)
{
	return resolve_path(p, v, p->c->control_socket, sizeof(p->c->control_socket));
}

static int set_client_socket(struct parse *p, const char *v)
{
	return resolve_path(p, v, p->c->client_socket, sizeof(p->c->client_socket));
}

static int set_key_file(struct parse *p, const char *v)
{
	int rc = resolve_path(p, v, p->c->key_file, sizeof(p->c->key_file));

	if (rc || !(p->flags & SL_CONFIG_CHECK_FS))
		return rc;
	if (access(p->c->key_file, R_OK) != 0)
		return sl_err_set(errno, "cannot read %s: %s", p->c->key_file, strerror(errno));
	return 0;
}

/* DPDK arguments outgrow a line easily: repeated eal_args lines are joined
 * with a space. */
static int set_eal_args(struct parse *p, const char *v)
{
	char *args = p->c->eal_args;
	size_t used = strlen(args), n = strlen(v);

	if (used + (used ? 1 : 0) + n >= sizeof(p->c->eal_args))
		return sl_err_set(E2BIG, "the joined eal_args exceed %zu bytes",
				  sizeof(p->c->eal_args) - 1);
	if (used)
		args[used++] = ' ';
	memcpy(args + used, v, n + 1);
	return 0;
}

static int set_acks(struct parse *p, const char *v)
{
	if (sl_acks_parse(v, &p->c->node.proto.policy.acks) != 0)
		return sl_err_set(EINVAL, "'%s' is not 0..%d, majority or all", v,
				  SL_NODES_MAX - 1);
	return 0;
}

static int set_ack_level(struct parse *p, const char *v)
{
	if (sl_ack_level_parse(v, &p->c->node.proto.policy.level) != 0)
		return sl_err_set(EINVAL, "'%s' is not received, durable or applied", v);
	return 0;
}

static int set_address(struct parse *p, const char *v)
{
	const char *colon = strrchr(v, ':');
	char ip[INET_ADDRSTRLEN];
	struct in_addr a;
	uint64_t port;
	size_t n;

	if (!colon)
		return sl_err_set(EINVAL, "'%s' is not IPv4:port", v);
	n = (size_t)(colon - v);
	if (n >= sizeof(ip))
		return sl_err_set(EINVAL, "'%.*s' is not an IPv4 address", (int)n, v);
	memcpy(ip, v, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return sl_err_set(EINVAL, "'%s' is not an IPv4 address", ip);
	if (sl_config_parse_u64(colon + 1, 1, 65535, &port) != 0)
		return sl_err_set(EINVAL, "port '%s' is not 1..65535", colon + 1);
	p->peer->ep.ip = a.s_addr;
	p->peer->ep.port = (uint16_t)port;
	return 0;
}

static int set_mac(struct parse *p, const char *v)
{
	if (sl_mac_parse(v, p->peer->ep.mac) != 0)
		return sl_err_set(EINVAL, "'%s' is not a MAC address like 02:00:00:00:00:01", v);
	return 0;
}

/* An ethdev name: what DPDK accepts (net_memif0, 0000:03:00.0, ...). */
static int set_port(struct parse *p, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= SL_CONFIG_PORT_MAX ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") != n)
		return sl_err_set(EINVAL,
				  "'%s' is not a DPDK port name (1..%d letters, digits, '.', "
				  "'_', ':', '-')",
				  v, SL_CONFIG_PORT_MAX - 1);
	memcpy(p->peer->port, v, n + 1);
	return 0;
}

/* The loop thread's CPU: whether this process may run there is checked
 * when the node opens (the affinity shipd starts with may differ). */
static int set_cpu(struct parse *p, const char *v)
{
	uint64_t cpu;
	int rc;

	if ((rc = sl_config_parse_u64(v, 0, CPU_SETSIZE - 1, &cpu)))
		return rc;
	p->c->node.pin_cpu = 1;
	p->c->node.cpu = (uint32_t)cpu;
	return 0;
}

/* --- generic values ---------------------------------------------------------- */

static void store_uint(struct sl_config *c, const struct key_def *k, uint64_t v)
{
	uint8_t *dst = (uint8_t *)c + k->off;

	switch (k->width) {
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(dst, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(dst, &x, 4);
		break;
	}
	default:
		memcpy(dst, &v, 8);
	}
}

static int set_enum(struct sl_config *c, const struct key_def *k, const char *v)
{
	char choices[128] = "";
	size_t used = 0;

	for (const struct enum_name *e = k->names; e->name; e++) {
		if (strcmp(v, e->name) == 0) {
			memcpy((uint8_t *)c + k->off, &e->value, sizeof(int));
			return 0;
		}
		used += (size_t)snprintf(choices + used, sizeof(choices) - used, "%s%s",
					 used ? (e[1].name ? ", " : " or ") : "", e->name);
	}
	return sl_err_set(EINVAL, "'%s' is not %s", v, choices);
}

static int set_value(struct parse *p, const struct key_def *k, const char *v)
{
	uint64_t x;
	int rc;

	switch (k->type) {
	case V_U64:
		rc = sl_config_parse_u64(v, k->min, k->max, &x);
		break;
	case V_SIZE:
		rc = sl_config_parse_size(v, k->min, k->max, &x);
		break;
	case V_DURATION:
		rc = sl_config_parse_duration(v, k->min, k->max, &x);
		break;
	case V_ENUM:
		return set_enum(p->c, k, v);
	default:
		return k->set(p, v);
	}
	if (rc == 0)
		store_uint(p->c, k, x * k->scale);
	return rc;
}

/* --- reading: sections in the reader, keys in the handler ---------------------- */

static int begin_peer(struct parse *p, const char *num)
{
	uint64_t id;

	if (sl_config_parse_u64(num, 1, UINT32_MAX, &id) != 0)
		return fail_line(p, "[peer.%s]: the node id must be 1..%u", num, UINT32_MAX);
	for (unsigned i = 0; i < p->n_peers; i++)
		if (p->peers[i].id == id)
			return fail_line(p, "[peer.%s]: duplicate node id %llu (first at line %u)",
					 num, (unsigned long long)id, p->peers[i].line);
	if (p->n_peers == SL_NODES_MAX)
		return fail_line(p, "[peer.%s]: more than %d nodes", num, SL_NODES_MAX);
	p->peer = &p->peers[p->n_peers++];
	p->peer->id = (uint32_t)id;
	p->peer->line = p->lineno;
	return 0;
}

static int begin_section(struct parse *p, const char *line)
{
	const char *end = strchr(line, ']');
	char name[64];
	size_t n;

	if (!end)
		return fail_line(p, "section header without ']'");
	n = (size_t)(end - line - 1);
	if (n >= sizeof(name))
		return fail_line(p, "unknown section [%.*s]", (int)n, line + 1);
	memcpy(name, line + 1, n);
	name[n] = '\0';
	p->in_section = 1;
	if (strncmp(name, "peer.", 5) == 0) {
		p->sec = SEC_PEER;
		p->sec_line[SEC_PEER] = p->lineno;
		return begin_peer(p, name + 5);
	}
	for (int s = 0; s < SEC_PEER; s++) {
		if (strcmp(name, sec_names[s]) != 0)
			continue;
		if (p->sec_line[s])
			return fail_line(p, "section [%s] appears twice (first at line %u)", name,
					 p->sec_line[s]);
		p->sec = (enum sec)s;
		p->sec_line[s] = p->lineno;
		return 0;
	}
	return fail_line(p,
			 "unknown section [%s] (known: cluster, node, transport, stream, store, "
			 "peer.N)",
			 name);
}

/* fgets for libinih over our buffer: counts lines and watches sections. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	const char *s = p->text + p->off, *nl, *first;
	size_t rest = p->len - p->off, n, content;

	if (p->err || p->off >= p->len)
		return NULL;
	nl = memchr(s, '\n', rest);
	n = nl ? (size_t)(nl - s) + 1 : rest;
	content = nl ? n - 1 : n;
	if (content && s[content - 1] == '\r')
		content--;
	p->lineno++;
	p->off += n;
	/* libinih would split a longer line and parse its tail as a line. */
	if (content > (size_t)num - 3) {
		fail_line(p, "line longer than %d characters", num - 3);
		return NULL;
	}
	if (memchr(s, '\0', n)) {
		fail_line(p, "NUL byte in the line");
		return NULL;
	}
	memcpy(str, s, n);
	str[n] = '\0';
	first = str + strspn(str, " \t");
	if (*first == '[' && begin_section(p, first) != 0)
		return NULL;
	return str;
}

static int find_key(const struct parse *p, const char *name)
{
	for (int k = 0; k < K_N; k++)
		if (keys[k].sec == p->sec && strcmp(keys[k].name, name) == 0)
			return k;
	return -1;
}

static int set_key(struct parse *p, const char *name, const char *value)
{
	char sec[32];
	unsigned *seen;
	int k, rc;

	if (!p->in_section)
		return fail_line(p, "'%s' outside any section", name);
	k = find_key(p, name);
	if (k < 0)
		return fail_line(p, "unknown key '%s' in [%s]", name,
				 sec_label(p->sec, p->peer, sec, sizeof(sec)));
	seen = p->sec == SEC_PEER ? &p->peer->key_line[k - K_ADDRESS] : &p->key_line[k];
	if (*seen && k != K_EAL_ARGS)
		return fail_at(p, p->lineno, (enum key_id)k, p->peer,
			       "set twice (first at line %u)", *seen);
	*seen = p->lineno;
	rc = set_value(p, &keys[k], value);
	return rc ? wrap_at(p, rc, p->lineno, (enum key_id)k, p->peer) : 0;
}

/* libinih's handler: nonzero to go on. The section argument is the one the
 * reader already tracked, with its line. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	(void)section;
	return set_key(user, name, value) == 0;
}

/* --- checks across keys --------------------------------------------------------- */

static int check_required(struct parse *p)
{
	for (int k = 0; k < K_ADDRESS; k++) {
		if (!keys[k].required || p->key_line[k])
			continue;
		if (p->sec_line[keys[k].sec])
			return fail_at(p, p->sec_line[keys[k].sec], (enum key_id)k, NULL,
				       "missing (required)");
		return fail_at(p, 0, (enum key_id)k, NULL, "missing (there is no [%s] section)",
			       sec_names[keys[k].sec]);
	}
	if (p->n_peers == 0)
		return fail_at(p, 0, K_ADDRESS, NULL,
			       "no [peer.N] section: list every node, this one included");
	for (unsigned i = 0; i < p->n_peers; i++) {
		const struct peer *a = &p->peers[i];

		if (!a->key_line[0])
			return fail_at(p, a->line, K_ADDRESS, a, "missing (required)");
		if (!a->key_line[1] && p->c->node.transport == SL_TRANSPORT_DPDK)
			return fail_at(p, a->line, K_MAC, a, "missing (kind = dpdk needs it)");
	}
	return 0;
}

/* [peer.N] port: DPDK only, never on this node's own section, and on
 * every other peer or none, each port one link. */
static int check_ports(struct parse *p)
{
	const struct peer *with = NULL, *without = NULL;

	for (unsigned i = 0; i < p->n_peers; i++) {
		const struct peer *a = &p->peers[i];

		if (!a->key_line[2]) {
			if (a->id != p->c->node.proto.node_id && !without)
				without = a;
			continue;
		}
		if (p->c->node.transport != SL_TRANSPORT_DPDK)
			return fail_at(p, a->key_line[2], K_PORT, a,
				       "only with [transport] kind = dpdk");
		if (a->id == p->c->node.proto.node_id)
			return fail_at(p, a->key_line[2], K_PORT, a,
				       "node %u is this node: port names the port that reaches a "
				       "peer",
				       a->id);
		for (unsigned j = 0; j < i; j++)
			if (p->peers[j].key_line[2] && strcmp(p->peers[j].port, a->port) == 0)
				return fail_at(p, a->key_line[2], K_PORT, a,
					       "same port as node %u (line %u): a port is one link "
					       "to one peer",
					       p->peers[j].id, p->peers[j].key_line[2]);
		if (!with)
			with = a;
	}
	if (with && without)
		return fail_at(p, without->line, K_PORT, without,
			       "missing: node %u has one (line %u), so every peer needs its own",
			       with->id, with->key_line[2]);
	return 0;
}

static int check_nodes(struct parse *p)
{
	struct sl_node_config *n = &p->c->node;
	const struct peer *self = NULL, *leader = NULL;

	for (unsigned i = 0; i < p->n_peers; i++) {
		const struct peer *a = &p->peers[i];

		for (unsigned j = 0; j < i; j++)
			if (p->peers[j].ep.ip == a->ep.ip && p->peers[j].ep.port == a->ep.port)
				return fail_at(p, a->key_line[0], K_ADDRESS, a,
					       "same address as node %u (line %u)", p->peers[j].id,
					       p->peers[j].key_line[0]);
		if (a->id == n->proto.node_id)
			self = a;
		if (a->id == n->proto.leader_id)
			leader = a;
	}
	if (!self)
		return fail_at(p, p->key_line[K_NODE_ID], K_NODE_ID, NULL,
			       "node %u has no [peer.%u] section", n->proto.node_id,
			       n->proto.node_id);
	if (n->proto.leader_id == 0 && !n->proto.elect)
		return fail_at(p, p->key_line[K_LEADER], K_LEADER, NULL,
			       "0 (a node joining a running cluster) needs [stream] elect = on");
	if (!leader && n->proto.leader_id != 0)
		return fail_at(p, p->key_line[K_LEADER], K_LEADER, NULL,
			       "%u is not a node of the cluster (no [peer.%u] section)",
			       n->proto.leader_id, n->proto.leader_id);
	n->proto.n_nodes = p->n_peers;
	n->net.self_id = self->id;
	n->net.self = self->ep;
	n->net.n_peers = 0;
	for (unsigned i = 0; i < p->n_peers; i++) {
		n->proto.node_ids[i] = p->peers[i].id;
		if (&p->peers[i] != self) {
			struct sl_peer_addr *pa = &n->net.peers[n->net.n_peers];

			pa->node_id = p->peers[i].id;
			pa->ep = p->peers[i].ep;
			if (p->peers[i].port[0]) {
				memcpy(p->c->peer_port[n->net.n_peers], p->peers[i].port,
				       SL_CONFIG_PORT_MAX);
				pa->port = p->c->peer_port[n->net.n_peers];
			}
			n->net.n_peers++;
		}
	}
	if (sl_quorum_required(&n->proto.policy, n->proto.n_nodes) < 0)
		return wrap_at(p, -EINVAL, line_of(p, K_ACKS), K_ACKS, NULL);
	if (n->proto.policy.acks == 0 && n->proto.policy.local_none)
		return fail_at(p, line_of(p, K_LOCAL), K_LOCAL, NULL,
			       "none with acks=0 commits records that no node has made "
			       "durable or even received: any failure may lose them");
	return 0;
}

/* The largest batch the protocol can seal must fit one store group: the node
 * refuses it at open, but here the message can point at the line. Unset,
 * group_bytes stays 0 and the node sizes the group (shiplog/node.h). */
static int check_sizes(struct parse *p)
{
	struct sl_node_config *n = &p->c->node;
	uint64_t raw = n->proto.batch_bytes, need, group;

	if (raw < (uint64_t)n->proto.limits.max_record_bytes + SL_REC_PREFIX)
		raw = (uint64_t)n->proto.limits.max_record_bytes + SL_REC_PREFIX;
	if (raw > n->proto.limits.max_raw_bytes)
		raw = n->proto.limits.max_raw_bytes;
	need = sl_batch_bound(raw) + STORE_GROUP_HDR;
	group = n->store.group_bytes;
	if (!group)
		group = need > STORE_GROUP_DEFAULT ? need : STORE_GROUP_DEFAULT;
	else if (need > group)
		return fail_at(
		    p, p->key_line[K_GROUP_BYTES], K_GROUP_BYTES, NULL,
		    "%llu bytes cannot hold the largest batch (%llu bytes with the group "
		    "header, from batch_bytes %u and max_record_bytes %u)",
		    (unsigned long long)group, (unsigned long long)need, n->proto.batch_bytes,
		    n->proto.limits.max_record_bytes);
	if (n->store.segment_bytes < group + STORE_BLOCK) {
		enum key_id k = p->key_line[K_SEGMENT_BYTES] ? K_SEGMENT_BYTES : K_GROUP_BYTES;

		return fail_at(p, line_of(p, k), k, NULL,
			       "segment_bytes %llu cannot hold a %llu-byte group and the segment "
			       "header",
			       (unsigned long long)n->store.segment_bytes,
			       (unsigned long long)group);
	}
	return 0;
}

/* A follower must hear several heartbeats within the election timeout, or
 * a loaded machine deposes a working leader. */
static int check_elections(struct parse *p)
{
	const struct sl_proto_config *pc = &p->c->node.proto;
	uint64_t t =
	    pc->election_timeout_ns ? pc->election_timeout_ns : SL_PROTO_ELECTION_TIMEOUT_DEFAULT;
	uint64_t hb = pc->heartbeat_ns ? pc->heartbeat_ns : SL_PROTO_HEARTBEAT_DEFAULT;
	enum key_id k = p->key_line[K_HEARTBEAT] ? K_HEARTBEAT : K_ELECTION_TIMEOUT;

	if (hb * 3 > t)
		return fail_at(p, line_of(p, k), k, NULL,
			       "heartbeat_ms %llu is more than a third of election_timeout_ms %llu",
			       (unsigned long long)(hb / 1000000),
			       (unsigned long long)(t / 1000000));
	return 0;
}

static int finish(struct parse *p)
{
	struct sl_config *c = p->c;
	struct sl_node_config *n = &c->node;
	int rc;

	if ((rc = check_required(p)) || (rc = check_ports(p)) || (rc = check_nodes(p)) ||
	    (rc = check_sizes(p)) || (rc = check_elections(p)))
		return rc;
	if (!c->control_socket[0]) {
		int len = snprintf(c->control_socket, sizeof(c->control_socket), "%s/shipd.sock",
				   c->log_dir);

		if (len < 0 || (size_t)len >= sizeof(c->control_socket))
			return fail_at(p, p->key_line[K_LOG_DIR], K_LOG_DIR, NULL,
				       "too long for the default control socket %s/shipd.sock "
				       "(at most %zu bytes): set [node] control_socket",
				       c->log_dir, sizeof(c->control_socket) - 1);
	}
	if (!c->client_socket[0]) {
		int len = snprintf(c->client_socket, sizeof(c->client_socket), "%s/client.sock",
				   c->log_dir);

		if (len < 0 || (size_t)len >= sizeof(c->client_socket))
			return fail_at(p, p->key_line[K_LOG_DIR], K_LOG_DIR, NULL,
				       "too long for the default client socket %s/client.sock "
				       "(at most %zu bytes): set [client] socket",
				       c->log_dir, sizeof(c->client_socket) - 1);
	}
	n->proto.mtu = n->net.mtu;
	n->key_file = c->key_file[0] ? c->key_file : NULL;
	n->net.eal_args = c->eal_args[0] ? c->eal_args : NULL;
	n->store.dir = c->log_dir;
	memcpy(n->store.cluster_id, n->proto.cluster_id, 16);
	n->store.node_id = n->proto.node_id;
	n->store.stream_id = n->proto.stream_id;
	n->store.limits = n->proto.limits;
	return 0;
}

/* ---- what the policy survives ---------------------------------------------- */

static int warn(char out[][SL_CONFIG_WARN_MAX], int n, int max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int warn(char out[][SL_CONFIG_WARN_MAX], int n, int max, const char *fmt, ...)
{
	va_list ap;

	if (n >= max)
		return n;
	va_start(ap, fmt);
	vsnprintf(out[n], SL_CONFIG_WARN_MAX, fmt, ap);
	va_end(ap);
	return n + 1;
}

int sl_config_warnings(const struct sl_config *c, char out[][SL_CONFIG_WARN_MAX], int max)
{
	const struct sl_proto_config *pc = &c->node.proto;
	const struct sl_ack_policy *pol = &pc->policy;
	int req = sl_quorum_required(pol, pc->n_nodes);
	int votes = sl_quorum_votes(pol, pc->n_nodes);
	unsigned followers = pc->n_nodes - 1;
	int n = 0;

	if (req < 0 || votes < 0)
		return 0; /* refused at load */
	if (pc->n_nodes == 1)
		return warn(out, n, max, "[peer.N]: a single node: any failure stops the stream");
	if (votes == (int)pc->n_nodes)
		n = warn(out, n, max,
			 "[stream] acks: an election needs all %u nodes' votes (N - W + 1 = %d): a "
			 "failed leader cannot be replaced, and what it committed may be "
			 "nowhere else",
			 pc->n_nodes, votes);
	if ((unsigned)req == followers && pol->on_timeout == SL_ON_TIMEOUT_BLOCK)
		n = warn(out, n, max,
			 "[stream] acks: every follower must acknowledge: one failed follower "
			 "stops every commit (on_timeout = block)");
	if (req > 0 && pol->on_timeout == SL_ON_TIMEOUT_DEGRADE)
		n = warn(out, n, max,
			 "[stream] on_timeout: degrade: a degraded leader commits alone; if "
			 "it then fails, a new leader may be elected without those records");
	if (req > 0 && pol->level == SL_ACK_RECEIVED)
		n = warn(out, n, max,
			 "[stream] ack_level: received: a follower that crashes loses what it "
			 "acknowledged; with a leader failure, committed records may be lost");
	if (pol->local_none)
		n = warn(out, n, max,
			 "[stream] local: none: a leader that crashes loses the commits it had "
			 "not synced; with a follower failure, committed records may be lost");
	return n;
}

static void set_defaults(struct sl_config *c)
{
	struct sl_node_config *n = &c->node;

	n->proto.stream_id = 1;
	n->proto.epoch = 1;
	n->proto.policy.acks = SL_ACKS_MAJORITY;
	n->proto.policy.level = SL_ACK_DURABLE;
	n->proto.policy.timeout_ns = 1000000000ull;
	n->proto.policy.on_timeout = SL_ON_TIMEOUT_BLOCK;
	sl_proto_config_defaults(&n->proto);
	n->idle = SL_IDLE_BACKOFF;
	n->transport = SL_TRANSPORT_UDP;
	n->net.mtu = n->proto.mtu;
	n->net.rx_batch = 64;
	n->net.tx_queue = 256;
	n->net.mbufs = 8191;
	n->store.segment_bytes = STORE_SEGMENT_DEFAULT;
	n->store.max_inflight = STORE_INFLIGHT_DEFAULT;
	c->drain_timeout_ns = 5000000000ull;
	c->client_ring_bytes = SL_CSRV_RING_DEFAULT;
	c->client_max = SL_CSRV_CLIENTS_DEFAULT;
}

int sl_config_parse(const char *path, const char *text, size_t len, unsigned flags,
		    struct sl_config **out)
{
	struct parse *p;
	const char *slash;
	int rc;

	*out = NULL;
	if (strlen(path) >= PATH_MAX)
		return sl_err_set(ENAMETOOLONG, "config path too long");
	p = calloc(1, sizeof(*p));
	if (!p || !(p->c = calloc(1, sizeof(*p->c)))) {
		free(p);
		return sl_err_set(ENOMEM, "%s: out of memory", path);
	}
	strcpy(p->c->path, path);
	slash = strrchr(path, '/');
	if (!slash)
		strcpy(p->base, ".");
	else if (slash == path)
		strcpy(p->base, "/");
	else
		snprintf(p->base, sizeof(p->base), "%.*s", (int)(slash - path), path);
	p->flags = flags;
	p->text = text;
	p->len = len;
	set_defaults(p->c);

	/* Process-wide libinih switches (Debian builds them as variables):
	 * indented lines are keys, not continuations, and the first error
	 * stops the parse so its message is the one we keep. */
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	rc = ini_parse_stream(read_line, p, on_key, p);
	if (!p->err && rc > 0) {
		p->lineno = (unsigned)rc;
		fail_line(p, "expected 'key = value', '[section]' or a comment");
	}
	if (!p->err)
		finish(p);
	rc = p->err;
	if (rc)
		free(p->c);
	else
		*out = p->c;
	free(p);
	return rc;
}

int sl_config_load(const char *path, unsigned flags, struct sl_config **out)
{
	char *text;
	ssize_t n;
	size_t len = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sl_err_set(errno, "%s: %s", path, strerror(errno));
	text = malloc(SL_CONFIG_FILE_MAX + 1);
	if (!text) {
		close(fd);
		return sl_err_set(ENOMEM, "%s: out of memory", path);
	}
	/* Bounded: at most SL_CONFIG_FILE_MAX + 1 bytes are ever read. */
	while (len <= SL_CONFIG_FILE_MAX &&
	       (n = read(fd, text + len, SL_CONFIG_FILE_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = sl_err_set(errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if (len > SL_CONFIG_FILE_MAX) {
		rc = sl_err_set(EFBIG, "%s: larger than %u bytes", path, SL_CONFIG_FILE_MAX);
		goto out;
	}
	rc = sl_config_parse(path, text, len, flags, out);
out:
	free(text);
	close(fd);
	return rc;
}

void sl_config_free(struct sl_config *c)
{
	free(c);
}
