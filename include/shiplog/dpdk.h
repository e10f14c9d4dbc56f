/* DPDK transport (net/dpdk.c) extras beyond transport.h: create-time
 * options, the EAL shared by every transport of a process, and what the port
 * granted plus counters the common stats do not have (so status output,
 * benchmarks and tests can tell which paths ran).
 *
 * EAL: DPDK initialises its environment once per process. The first
 * sl_dpdk_transport_create (or sl_dpdk_eal_init) runs rte_eal_init with its
 * eal_args; later ones share that EAL, and the --vdev devices their eal_args
 * name that do not exist yet are hot-plugged (rte_eal_hotplug_add); their other
 * EAL options are ignored. An application that initialised EAL itself is
 * detected and shared the same way. eal_args is split at blanks (no quoting).
 * Note: rte_eal_init pins the calling thread to the main lcore's CPU set;
 * pass -l/--lcores to choose it.
 *
 * Ports: one transport drives one ethdev port (config port_id), with one RX
 * and one TX queue; a port serves one transport at a time. destroy() stops
 * and closes the port; a virtual device is removed with it, so a later
 * transport (or sl_dpdk_eal_init) hot-plugs it again from its eal_args. A
 * create that fails leaves the device in place. Hot-plugged devices take
 * the next free port id: look it up with sl_dpdk_port_by_name.
 *
 * flush() returns how many frames went out (>= 0; those it could not send
 * after SL_DPDK_TX_RETRIES-bounded retries are dropped and counted), or
 * -errno.
 *
 * Counters: packets and bytes in the common stats are frames (UDP payloads)
 * delivered or put on the wire; ARP is counted apart.
 *
 * Zero-copy: transport.h lets send() reference the frame until flush(). A
 * DPDK port may hold a TX mbuf after rte_eth_tx_burst returns (a NIC until
 * its DMA completes, net_ring until the peer dequeues), so frames are sent
 * zero-copy (a header mbuf + an external-buffer mbuf on the caller's bytes)
 * only when the port has TX multi-segment support, the bytes are reachable
 * by the device (any memory for virtual devices; DPDK or registered external
 * memory, IOVA-contiguous, for PCI devices), and the driver is not net_ring;
 * and flush() then waits, bounded (SL_DPDK_ZC_WAIT_US), until the driver has
 * released every external buffer it was given (calling rte_eth_tx_done_cleanup
 * on drivers that support it). A driver that does not release them in time
 * has zero-copy switched off for the rest of the transport's life and is
 * counted in zc_stalls: its bytes may be read after flush() returned. */
#ifndef SHIPLOG_DPDK_H
#define SHIPLOG_DPDK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shiplog/transport.h"

#define SL_DPDK_ZC_MIN_DEFAULT 1024 /* frames below this are copied */
#define SL_DPDK_ZC_WAIT_US     2000 /* flush()'s bound for the driver to release them */
#define SL_DPDK_DOORBELL_BYTES 64   /* a doorbell's size: one cache line */

struct sl_dpdk_opts {
	int no_zero_copy;    /* always copy frames into mbufs */
	int no_csum_offload; /* software checksums even when the port offers offload */
	uint32_t zc_min;     /* smallest frame sent zero-copy; 0: SL_DPDK_ZC_MIN_DEFAULT */
};

struct sl_dpdk_info {
	uint16_t port_id;
	char name[64];		/* ethdev name, e.g. net_memif0 or 0000:03:00.0 */
	char driver[32];	/* e.g. net_memif */
	uint8_t mac[6];		/* our source MAC */
	uint32_t mtu;		/* IP MTU configured */
	uint32_t data_room;	/* mbuf data room (bytes after the headroom) */
	int rx_scatter;		/* RX of frames over one mbuf (RTE_ETH_RX_OFFLOAD_SCATTER) */
	int tx_multi_seg;	/* the port takes mbuf chains */
	int csum_offload;	/* IPv4 + UDP checksums by the NIC on TX */
	int rx_csum_offload;	/* ... and verified by it on RX */
	int zero_copy;		/* zero-copy sends allowed now */
	int promiscuous;	/* our MAC could not be set on the port */
	int link_up;		/* the port's link, now (memif: connected to its peer) */
	uint64_t tx_zero_copy;	/* frames sent with an external buffer */
	uint64_t tx_copied;	/* frames copied into mbufs */
	uint64_t tx_chained;	/* ... of which into more than one mbuf */
	uint64_t tx_retries;	/* rte_eth_tx_burst calls after a short one */
	uint64_t tx_unresolved; /* frames dropped: the peer's MAC is not known yet */
	uint64_t tx_nombuf;	/* frames dropped: the mbuf pool was empty */
	uint64_t zc_waits;	/* flushes that waited for the driver to release buffers */
	uint64_t zc_stalls;	/* ... that gave up (zero-copy then switched off) */
	uint64_t rx_chained;	/* packets received in more than one mbuf (linearised) */
	uint64_t rx_malformed;	/* failed sl_encap_parse */
	uint64_t rx_bad_csum;	/* the NIC flagged a bad checksum */
	uint64_t rx_not_ours;	/* other protocol, address or port */
	uint64_t rx_oversize;	/* longer than the linearisation buffer */
	uint64_t rx_unknown;	/* frames delivered with from = 0 */
	uint64_t arp_requests;	/* ARP requests we sent for unresolved peers */
	uint64_t arp_learned;	/* peer MACs learned from ARP */
};

/* sl_dpdk_transport_create with options; `o` may be NULL. */
int sl_dpdk_transport_create_opts(struct sl_transport **out, const struct sl_transport_config *c,
				  const struct sl_dpdk_opts *o);

/* Initialise the process's EAL from `eal_args` if nobody has yet, else
 * hot-plug the --vdev devices it names that are missing (see above). For
 * programs that need DPDK before their first transport (e.g. to make ports
 * from rte_rings). 0 or -errno with a message. */
int sl_dpdk_eal_init(const char *eal_args);

/* The port id of ethdev `name` (e.g. "net_memif1"), after sl_dpdk_eal_init
 * or a create: hot-plugged devices get the next free id. 0 or -ENODEV. */
int sl_dpdk_port_by_name(const char *name, uint16_t *port_id);

/* Fill `out` for a transport made by sl_dpdk_transport_create*; -EINVAL for
 * any other transport. */
int sl_dpdk_info(const struct sl_transport *t, struct sl_dpdk_info *out);

/* A doorbell, so that a node whose ports are all in this process can sleep
 * until a frame arrives instead of polling on a timer: net_memif in DPDK
 * 22.11 masks its receive interrupts and has no rx_intr_enable. Before it
 * sleeps, the receiving node arms its bell and looks at its rings once more
 * (wait_fd); a sender that finds the peer's bell armed after a burst
 * disarms it and writes its eventfd, one system call per sleep, none while
 * the receiver is awake. The receiver arms, fences, then reads the ring; the
 * sender fills the ring, fences, then reads the bell: one of them sees the
 * other's write, so no frame waits for a timer. */
struct sl_dpdk_doorbell {
	int fd;		   /* eventfd, readable once rung */
	_Atomic int armed; /* the owner may sleep: ring after sending */
	int owner_armed;   /* owner's thread only: it armed, not disarmed yet */
	int rung;	   /* owner's thread only: a ring is due, not read yet */
	/* A cache line per bell: kept in an array (one per node), a node
	 * arming its own bell would evict the line every sender reads after
	 * each burst. 16-byte-aligned storage keeps the fields above on one
	 * line. */
	char pad[SL_DPDK_DOORBELL_BYTES - 4 * sizeof(int)];
};

/* 0 or -errno; close with sl_dpdk_doorbell_close (fd -1 after either). */
int sl_dpdk_doorbell_init(struct sl_dpdk_doorbell *d);
void sl_dpdk_doorbell_close(struct sl_dpdk_doorbell *d);

/* Frames arriving on `t` may be waited for on `own` (its wait_fd then
 * returns own's fd), and every flush that sent frames rings `peer` if it is
 * armed (the node at the other end of a point-to-point port, in this
 * process). Either may be NULL. Without `own`, wait_fd is -EOPNOTSUPP: the
 * node polls, yields and sleeps on a timer. */
int sl_dpdk_set_doorbells(struct sl_transport *t, struct sl_dpdk_doorbell *own,
			  struct sl_dpdk_doorbell *peer);

#endif
