/* Kernel UDP transport (net/udp.c) extras beyond transport.h: create-time
 * options, and what the kernel granted plus counters the common stats do
 * not have (so status output and tests can tell which paths ran).
 *
 * Threads: a transport is used by one thread at a time. It may be created
 * in one thread and driven in another: the first poll arms the receives,
 * and io_uring runs their completion work in the thread that armed them,
 * so keep polling from that thread (a poll loop that moves to another
 * thread stalls receives until the first one enters the kernel again).
 * Destroy it from the polling thread or after that thread has stopped. */
#ifndef SHIPLOG_UDP_H
#define SHIPLOG_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/transport.h"

struct sl_udp_opts {
	int no_multishot; /* use single-shot recvmsg even if multishot works */
	int no_gso;	  /* one sendmsg per frame */
	int no_gro;	  /* one datagram per receive */
	unsigned rx_bufs; /* receive buffers, a power of two 2..4096; 0: 64 with
			     GRO (64 KiB each), 256 without (9 KiB each) */
	uint32_t sockbuf; /* SO_RCVBUF and SO_SNDBUF bytes; 0: 8 MiB */
	/* Fault injection for tests: the next `fail_flushes` flushes fail
	 * with -EIO before submitting anything, leaving the queue as it is. */
	unsigned fail_flushes;
};

struct sl_udp_info {
	int multishot;		 /* receive: multishot recvmsg + buf ring (else single-shot) */
	int gso, gro;		 /* UDP_SEGMENT on send, UDP_GRO on receive, in use now */
	unsigned rx_bufs;	 /* receive buffers */
	size_t rx_buf_size;	 /* bytes each, headers included */
	unsigned gso_max_segs;	 /* frames per GSO sendmsg at most */
	unsigned ring_flags;	 /* IORING_SETUP_* the ring got */
	int rcvbuf, sndbuf;	 /* what the kernel reports */
	uint16_t port;		 /* bound port (the config may say 0: any) */
	uint64_t gso_sends;	 /* sendmsgs carrying more than one frame */
	uint64_t gso_frames;	 /* frames sent in those */
	uint64_t gro_bufs;	 /* receives that held more than one frame */
	uint64_t gro_frames;	 /* frames split out of those */
	uint64_t rx_rearms;	 /* multishot receives re-armed after they ended */
	uint64_t rx_nobufs;	 /* ... of which because the buffer ring ran dry */
	uint64_t rx_unknown;	 /* frames delivered with from = 0 */
	uint64_t rx_errors;	 /* receive completions with an error */
	uint64_t tx_retries;	 /* sendmsgs resubmitted after EAGAIN/ENOBUFS */
	uint64_t tx_errors;	 /* sendmsgs that failed for good */
	uint64_t flush_failures; /* flushes that returned an error */
};

/* sl_udp_transport_create with options; `o` may be NULL. */
int sl_udp_transport_create_opts(struct sl_transport **out, const struct sl_transport_config *c,
				 const struct sl_udp_opts *o);

/* Fill `out` for a transport made by sl_udp_transport_create*; -EINVAL
 * for any other transport. */
int sl_udp_info(const struct sl_transport *t, struct sl_udp_info *out);

/* Arm the flush fault injection after create (see sl_udp_opts). */
void sl_udp_fail_flushes(struct sl_transport *t, unsigned n);

#endif
