/* shipd's control socket: a Unix stream socket that serves one request per
 * connection. The client writes one newline-terminated text command
 * ("status" or "status json"), the daemon writes the reply and closes. A
 * reply that starts with "error: " is a refusal. The server side is polled
 * from the node's loop without blocking, with bounded work per call and a
 * deadline per connection, so no client can stall replication. */
#ifndef SHIPLOG_APP_CTL_H
#define SHIPLOG_APP_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "client_srv.h"
#include "shiplog/node.h"

#define SL_CTL_REQUEST_MAX 256		 /* a request line, newline included */
#define SL_CTL_REPLY_MAX   (64u << 10)	 /* a reply */
#define SL_CTL_CONNS	   8		 /* connections served at once */
#define SL_CTL_DEADLINE_NS 2000000000ull /* a connection's whole life */

/* Everything `status` shows. The daemon fills it; sl_ctl_format prints it. */
struct sl_ctl_status {
	struct sl_proto_status proto;
	struct sl_transport_stats transport;
	struct sl_node_stats loop;
	struct sl_store_info store;
	struct sl_csrv_stats clients; /* libshiplog's clients */
	enum sl_transport_kind transport_kind;
	int pid;
	const char *config;  /* config file path */
	const char *log_dir; /* the log directory, absolute (shipctl tail reads it) */
	uint64_t uptime_ns;
	uint64_t now_ns;	    /* the node's clock, to age last_status_ns */
	uint64_t generate_target;   /* --generate: records to append (0: none) */
	uint64_t generate_done;	    /* ... appended so far */
	uint64_t generate_last_lsn; /* LSN of the last appended, 0 none */
	int draining;		    /* 1 once shutting down */
	int elect;		    /* elections on: their counters are shown */
	/* Followers: records handed to the engine since this start (shipd's
	 * stand-in engine keeps nothing, so a restart delivers from LSN 1),
	 * and deliveries that did not continue the last one (must stay 0). */
	int follower;
	uint64_t delivered_records, delivery_errors;
	/* The Merkle tree: leaves, those of sealed segments, the root over
	 * those (16 hex digits; shipctl verify --cluster compares them). */
	uint64_t tree_leaves, tree_sealed;
	char tree_root[17];
};

/* Print `s` as indented "key: value" text or as one JSON object. Returns
 * the length written (NUL-terminated) or -ENOSPC. */
int sl_ctl_format(const struct sl_ctl_status *s, int json, char *buf, size_t cap);

/* Read one scalar of a JSON object that sl_ctl_format wrote (the reader is
 * that strict): `path` names it by member names and array indexes joined
 * with dots ("node.commit_lsn", "peers.0.node_id"). The value's text (a
 * string unquoted and unescaped) goes to out. 0, -ENOENT (no such member) or
 * -EBADMSG (not such JSON), with a message. */
int sl_ctl_json_get(const char *json, const char *path, char *out, size_t cap);
/* The same for an unsigned integer; -EINVAL when it is not one. */
int sl_ctl_json_u64(const char *json, const char *path, uint64_t *v);

/* Answer one request line (without its newline) into reply; returns the
 * reply's length, or -errno: the client is then sent "error: <message>". */
typedef int (*sl_ctl_handler)(void *ctx, const char *request, char *reply, size_t cap);

struct sl_ctl_server;

/* Listen on `path`: mode 0600; an existing socket file is replaced only
 * when nobody accepts on it (a stale one from a crash); anything else at
 * `path` is refused. 0 or -errno with a message. */
int sl_ctl_server_open(struct sl_ctl_server **out, const char *path, sl_ctl_handler fn, void *ctx);
/* Accept, read, answer and write without blocking; at most SL_CTL_CONNS
 * connections progress per call. Returns the number of events handled. */
int sl_ctl_server_poll(struct sl_ctl_server *s, uint64_t now_ns);
/* Closes every connection and removes the socket file if it is still ours. */
void sl_ctl_server_close(struct sl_ctl_server *s);

/* Client: connect to `path`, send `request` (a newline is added), read the
 * whole reply into buf (NUL-terminated) within timeout_ms. Returns the
 * reply's length or -errno with a message naming the socket. */
int sl_ctl_request(const char *path, const char *request, int timeout_ms, char *buf, size_t cap);

#endif
