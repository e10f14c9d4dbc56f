/* The shipd side of libshiplog (include/shiplog/client.h): a SOCK_SEQPACKET
 * Unix socket that hands each client its shared-memory rings, and the work
 * a node's loop does for them on every turn (sl_node_poller): take appended
 * records, seal batches clients wait on, publish commit and applied LSNs,
 * feed the consumer's delivery ring and pass its applied acknowledgements to
 * the protocol. Clients that die are noticed through their socket and freed.
 * docs/client.md describes the rings and the failure rules. */
#ifndef SHIPLOG_APP_CLIENT_SRV_H
#define SHIPLOG_APP_CLIENT_SRV_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/batch.h"
#include "shiplog/node.h"

#define SL_CSRV_RING_DEFAULT	(4u << 20) /* each ring's bytes */
#define SL_CSRV_RING_MAX	(1u << 30)
#define SL_CSRV_CLIENTS_DEFAULT 64
#define SL_CSRV_CLIENTS_MAX	1024

struct sl_csrv_opts {
	const char *path;     /* the socket (mode 0600; a stale one is replaced) */
	uint32_t ring_bytes;  /* append and delivery rings (0: 4 MiB; grown to hold
				 the largest record, rounded up to pages) */
	uint32_t max_clients; /* 0: 64 */
	/* 1: applied positions come from the consumer's acknowledgements only
	 * (an engine runs above shipd); 0: delivered counts as applied. */
	int apply_by_consumer;
};

struct sl_csrv_stats {
	uint32_t clients; /* connected now */
	int consumer;	  /* a consumer is connected */
	uint64_t accepted, refused, closed;
	uint64_t appended;	/* records taken from append rings */
	uint64_t delivered;	/* records put in the consumer's ring */
	uint64_t catchup_reads; /* batches read from the log for the consumer */
	uint64_t kicks;		/* eventfd signals sent to clients */
	uint64_t yields;	/* CPU handed over after a commit woke a client */
	uint64_t
	    wakeups; /* the node loop's sleeps on the clients' epoll set (woken or timed out) */
	uint64_t bad_entries;	/* malformed ring entries (the client is cut off) */
	uint64_t vectors_split; /* vectors the window made wait half appended */
};

struct sl_csrv;

/* Listen on o->path and install itself as the node's poller. The node must
 * forward its engine callbacks (sl_csrv_on_commit, sl_csrv_on_deliver).
 * 0 or -errno with a message. */
int sl_csrv_open(struct sl_csrv **out, struct sl_node *node, const struct sl_csrv_opts *o);
/* Removes the poller, disconnects every client, removes the socket file. */
void sl_csrv_close(struct sl_csrv *s);

/* The node's engine callbacks, forwarded (NULL s is ignored). */
void sl_csrv_on_commit(struct sl_csrv *s, uint64_t commit_lsn);
/* Elections: appends are taken only while leading, and each tells its
 * client the epoch it was given its LSNs in (the fencing token). */
void sl_csrv_on_role(struct sl_csrv *s, enum sl_role role, uint64_t epoch, uint32_t leader_id);
/* Whether sl_csrv_on_deliver would take the records of `h` (a consumer is
 * attached and waiting at it); raw may be NULL when not. */
int sl_csrv_wants_records(const struct sl_csrv *s, const struct sl_batch_hdr *h);
void sl_csrv_on_deliver(struct sl_csrv *s, const struct sl_batch_hdr *h, const uint8_t *raw,
			size_t raw_len);

/* 1 while a client's vector is half appended (it waits for window room):
 * nobody else may append until it is whole, so its LSNs stay consecutive. */
int sl_csrv_busy(const struct sl_csrv *s);

/* The highest LSN a consumer has acknowledged as applied (across its
 * sessions; at first the node's configured applied_lsn). */
uint64_t sl_csrv_consumer_applied(const struct sl_csrv *s);

void sl_csrv_get_stats(const struct sl_csrv *s, struct sl_csrv_stats *out);

#endif
