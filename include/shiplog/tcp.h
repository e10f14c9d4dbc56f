/* Kernel TCP transport (net/tcp.c): the baseline a user would build without
 * shiplog's transports: plain non-blocking sockets, TCP_NODELAY, a
 * length-prefixed frame stream per peer and direction, epoll, read() and
 * write() system calls. Behind the same ops as kernel UDP and DPDK, so
 * the same protocol, batching and storage run over it (shipbench cluster
 * --transport tcp compares them).
 *
 * Connections: each node listens on its own address (config `self`) and
 * connects to every peer; it sends on the connection it opened and receives
 * on the ones it accepted. A connection opens with an 8-byte hello (magic,
 * sender's node id); then each frame is a 4-byte little-endian length and
 * the frame. poll() asks epoll which sockets are readable (one system call
 * when idle) and read()s those. A broken connection drops what was queued on it (the protocol
 * repairs loss) and is reopened, at most once per reconnect interval.
 *
 * Threads: one thread at a time, as every transport. */
#ifndef SHIPLOG_TCP_H
#define SHIPLOG_TCP_H

#include <stdint.h>

#include "shiplog/transport.h"

struct sl_tcp_info {
	uint16_t port;	      /* bound listening port (the config may say 0: any) */
	unsigned connected;   /* outgoing connections established now */
	unsigned accepted;    /* incoming connections open now */
	uint64_t connects;    /* connection attempts made */
	uint64_t disconnects; /* connections closed on an error or EOF */
	uint64_t rx_bad;      /* incoming connections closed: bad hello or frame length */
	uint64_t tx_partial;  /* writes the kernel took only part of */
};

/* Fill `out` for a transport made by sl_tcp_transport_create; -EINVAL for
 * any other transport. */
int sl_tcp_info(const struct sl_transport *t, struct sl_tcp_info *out);

#endif
