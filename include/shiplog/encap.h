/* Ethernet / IPv4 / UDP around protocol frames, and ARP, for transports that
 * build their own packets (DPDK). The UDP payload is exactly the frame, so a
 * DPDK node and a kernel-UDP node exchange the same bytes. Pure code:
 * bounds-checked parsing of untrusted packets, no syscalls.
 *
 * What we send: Ethernet II (no VLAN tag), IPv4 with a 20-byte header (no
 * options), TOS 0, DF set, TTL 64, protocol UDP, and a UDP checksum (never
 * the optional zero), like a Linux UDP socket does.
 *
 * Changes from the first draft of this header: sl_encap_write_hdr (the UDP
 * checksum over a payload that is not behind the header: chained or
 * zero-copy mbufs), the csum_verified argument of sl_encap_parse is a bit
 * mask (SL_ENCAP_*_CSUM_OK) so a NIC that verified only one of the two
 * checksums is handled, parse is address-agnostic (SL_PKT_UDP is any
 * well-formed UDP datagram: the caller compares dst with its own endpoint),
 * and sl_inet_csum is public for transports and tests. */
#ifndef SHIPLOG_ENCAP_H
#define SHIPLOG_ENCAP_H

#include <stddef.h>
#include <stdint.h>

/* Header sizes: Ethernet, IPv4 (we send no options; we accept them), UDP,
 * all three (42); the ARP body for IPv4 over Ethernet; the shortest Ethernet
 * frame without its FCS. */
#define SL_ETH_HDR   14
#define SL_IPV4_HDR  20
#define SL_UDP_HDR   8
#define SL_ENCAP_HDR (SL_ETH_HDR + SL_IPV4_HDR + SL_UDP_HDR)
#define SL_ARP_LEN   28
#define SL_ETH_MIN   60

#define SL_ETHERTYPE_IPV4 0x0800
#define SL_ETHERTYPE_ARP  0x0806
#define SL_IPPROTO_UDP	  17
#define SL_ARP_OP_REQUEST 1
#define SL_ARP_OP_REPLY	  2

/* Largest UDP payload an IPv4 total length (16 bits) can describe. */
#define SL_ENCAP_PAYLOAD_MAX (65535 - SL_IPV4_HDR - SL_UDP_HDR)

/* An address on the wire. ip is in network byte order (as in struct in_addr),
 * port in host byte order. */
struct sl_endpoint {
	uint8_t mac[6];
	uint32_t ip;
	uint16_t port;
};

enum sl_encap_csum {
	SL_CSUM_SOFTWARE = 0, /* fill IPv4 and UDP checksums here */
	SL_CSUM_OFFLOAD,      /* leave them for the NIC (IPv4 zero, UDP pseudo-header sum,
				 not complemented: what DPDK's TX checksum offload expects) */
	SL_CSUM_IP_ONLY,      /* IPv4 checksum here, UDP checksum zero ("none", RFC 768):
				 for payloads that carry a stronger check of their own */
};

/* Write the 42-byte header for a UDP payload of `payload_len` bytes that
 * follows it in `pkt` (the payload must already be there for software UDP
 * checksums, and cap must cover it). Returns SL_ENCAP_HDR or -errno
 * (-ENOSPC, -EMSGSIZE over SL_ENCAP_PAYLOAD_MAX). */
int sl_encap_write(uint8_t *pkt, size_t cap, const struct sl_endpoint *src,
		   const struct sl_endpoint *dst, uint16_t ip_id, size_t payload_len,
		   enum sl_encap_csum csum);

/* The same header into `hdr` (cap >= SL_ENCAP_HDR) for a payload that lives
 * elsewhere (`payload`, read for the software UDP checksum only; it may be
 * NULL with SL_CSUM_OFFLOAD). The packet on the wire is hdr then payload. */
int sl_encap_write_hdr(uint8_t *hdr, size_t cap, const struct sl_endpoint *src,
		       const struct sl_endpoint *dst, uint16_t ip_id, const uint8_t *payload,
		       size_t payload_len, enum sl_encap_csum csum);

enum sl_pkt_kind {
	SL_PKT_UDP = 1, /* a well-formed UDP datagram: payload is set */
	SL_PKT_ARP_REQUEST,
	SL_PKT_ARP_REPLY,
	SL_PKT_OTHER, /* another ethertype, IP protocol, ARP hardware or operation */
};

struct sl_pkt {
	enum sl_pkt_kind kind;
	struct sl_endpoint src, dst; /* UDP: both (MACs from Ethernet); ARP: sender and
					target (MACs and IPs from the ARP body, port 0) */
	const uint8_t *payload;	     /* UDP payload, points into the packet */
	size_t payload_len;
};

/* csum_verified bits: what the NIC already checked (a NIC that found a bad
 * checksum must drop the packet before parse). */
#define SL_ENCAP_IP_CSUM_OK  0x1
#define SL_ENCAP_UDP_CSUM_OK 0x2

/* Parse an Ethernet frame of `len` bytes (what arrived; Ethernet padding
 * after the IP packet is allowed). For IPv4 it checks version, IHL (options
 * are skipped), total length against what arrived, no fragments (MF or an
 * offset), the header checksum; for UDP the length field against the IP
 * payload and the checksum when non-zero. Checksums marked verified in
 * `csum_verified` are not recomputed. ARP must be Ethernet/IPv4 with the
 * standard lengths. Returns 0 with out->kind set, or -EBADMSG with a message
 * (sl_err_msg) naming the check; `*out` is written only on success. */
int sl_encap_parse(const uint8_t *pkt, size_t len, int csum_verified, struct sl_pkt *out);

/* Build an ARP reply (42 bytes + zero padding to 60) answering a request from
 * `asker` (its mac and ip) for `self`. Returns its length or -ENOSPC. */
int sl_arp_reply(uint8_t *pkt, size_t cap, const struct sl_endpoint *self,
		 const struct sl_endpoint *asker);
/* Build a broadcast ARP request (who has `target_ip`, network order), padded
 * to 60 bytes. Returns its length or -ENOSPC. */
int sl_arp_request(uint8_t *pkt, size_t cap, const struct sl_endpoint *self, uint32_t target_ip);

/* Parse "aa:bb:cc:dd:ee:ff" (exactly two hex digits per byte, either case,
 * nothing after); 0 or -EINVAL. */
int sl_mac_parse(const char *s, uint8_t mac[6]);

/* The Internet checksum (RFC 1071) over `len` bytes, continuing from `sum`
 * (0 to start): returns the 16-bit ones' complement sum, folded but not
 * complemented, as the two bytes in memory read as a native uint16_t (so
 * memcpy it into a header as is). Pieces chained through `sum` must each
 * start at an even offset of the checksummed data. */
uint16_t sl_inet_csum(const void *data, size_t len, uint16_t sum);

#endif
