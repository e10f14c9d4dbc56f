/* Ethernet/IPv4/UDP and ARP encoding and bounds-checked parsing; see
 * include/shiplog/encap.h. Pure code: no syscalls, no allocation. Every
 * multi-byte field is read and written byte by byte or through memcpy, so
 * packets at any alignment are safe. */
#include "shiplog/encap.h"

#include <errno.h>
#include <string.h>

#include "shiplog/err.h"

#define IP_DF	     0x4000
#define IP_MF	     0x2000
#define IP_OFF_MASK  0x1fff
#define IP_TTL	     64
#define ARP_HW_ETHER 1

static const uint8_t mac_bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The IPv4 address is kept in network order in a uint32_t, so its bytes in
 * memory are already the wire bytes: copy them as they are. */
static uint32_t get_ip(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void put_ip(uint8_t *p, uint32_t ip)
{
	memcpy(p, &ip, 4);
}

/* Sum native 16-bit words; by RFC 1071's byte-order independence, the folded
 * result stored back with memcpy has the right bytes on either endianness.
 * 32-bit loads into a 64-bit accumulator cannot overflow below 2^32 words. */
uint16_t sl_inet_csum(const void *data, size_t len, uint16_t sum)
{
	const uint8_t *p = data;
	uint64_t acc = sum;

	while (len >= 8) {
		uint32_t a, b;

		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		acc += (uint64_t)a + b;
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		uint32_t a;

		memcpy(&a, p, 4);
		acc += a;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t a;

		memcpy(&a, p, 2);
		acc += a;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd byte is the high-order byte of a word padded with zero. */
		uint8_t last[2] = {p[0], 0};
		uint16_t a;

		memcpy(&a, last, 2);
		acc += a;
	}
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

/* Sum of the UDP pseudo-header: source, destination, zero, protocol, length. */
static uint16_t pseudo_sum(uint32_t src_ip, uint32_t dst_ip, uint16_t udp_len)
{
	uint8_t ph[12];

	put_ip(ph, src_ip);
	put_ip(ph + 4, dst_ip);
	ph[8] = 0;
	ph[9] = SL_IPPROTO_UDP;
	put_be16(ph + 10, udp_len);
	return sl_inet_csum(ph, sizeof(ph), 0);
}

int sl_encap_write_hdr(uint8_t *hdr, size_t cap, const struct sl_endpoint *src,
		       const struct sl_endpoint *dst, uint16_t ip_id, const uint8_t *payload,
		       size_t payload_len, enum sl_encap_csum csum)
{
	uint8_t *ip = hdr + SL_ETH_HDR, *udp = ip + SL_IPV4_HDR;
	uint16_t udp_len, s;

	if (cap < SL_ENCAP_HDR)
		return sl_err_set(ENOSPC, "encap: header needs %d bytes, buffer has %zu",
				  SL_ENCAP_HDR, cap);
	if (payload_len > SL_ENCAP_PAYLOAD_MAX)
		return sl_err_set(EMSGSIZE,
				  "encap: UDP payload of %zu bytes over the IPv4 limit %d",
				  payload_len, SL_ENCAP_PAYLOAD_MAX);
	if (csum == SL_CSUM_SOFTWARE && payload == NULL && payload_len > 0)
		return sl_err_set(EINVAL, "encap: software UDP checksum needs the payload");
	udp_len = (uint16_t)(SL_UDP_HDR + payload_len);

	memcpy(hdr, dst->mac, 6);
	memcpy(hdr + 6, src->mac, 6);
	put_be16(hdr + 12, SL_ETHERTYPE_IPV4);

	ip[0] = 0x45; /* version 4, IHL 5 */
	ip[1] = 0;    /* TOS */
	put_be16(ip + 2, (uint16_t)(SL_IPV4_HDR + udp_len));
	put_be16(ip + 4, ip_id);
	put_be16(ip + 6, IP_DF); /* never fragmented: frames fit the MTU */
	ip[8] = IP_TTL;
	ip[9] = SL_IPPROTO_UDP;
	ip[10] = ip[11] = 0;
	put_ip(ip + 12, src->ip);
	put_ip(ip + 16, dst->ip);

	put_be16(udp, src->port);
	put_be16(udp + 2, dst->port);
	put_be16(udp + 4, udp_len);
	udp[6] = udp[7] = 0;

	if (csum == SL_CSUM_OFFLOAD) {
		/* The NIC sums the IPv4 header with the field zero, and adds the
		 * UDP header and payload to the pseudo-header sum we leave. */
		s = pseudo_sum(src->ip, dst->ip, udp_len);
		memcpy(udp + 6, &s, 2);
		return SL_ENCAP_HDR;
	}
	s = (uint16_t)~sl_inet_csum(ip, SL_IPV4_HDR, 0);
	memcpy(ip + 10, &s, 2);
	if (csum == SL_CSUM_IP_ONLY)
		return SL_ENCAP_HDR;
	s = pseudo_sum(src->ip, dst->ip, udp_len);
	s = sl_inet_csum(udp, SL_UDP_HDR, s);
	if (payload_len)
		s = sl_inet_csum(payload, payload_len, s);
	s = (uint16_t)~s;
	if (s == 0)
		s = 0xffff; /* zero means "no checksum" in UDP over IPv4 (RFC 768) */
	memcpy(udp + 6, &s, 2);
	return SL_ENCAP_HDR;
}

int sl_encap_write(uint8_t *pkt, size_t cap, const struct sl_endpoint *src,
		   const struct sl_endpoint *dst, uint16_t ip_id, size_t payload_len,
		   enum sl_encap_csum csum)
{
	if (cap < SL_ENCAP_HDR || payload_len > cap - SL_ENCAP_HDR)
		return sl_err_set(ENOSPC, "encap: %d + %zu bytes do not fit a %zu-byte buffer",
				  SL_ENCAP_HDR, payload_len, cap);
	return sl_encap_write_hdr(pkt, cap, src, dst, ip_id, pkt + SL_ENCAP_HDR, payload_len, csum);
}

static int parse_arp(const uint8_t *pkt, size_t len, struct sl_pkt *out)
{
	const uint8_t *a = pkt + SL_ETH_HDR;
	uint16_t op;

	if (len - SL_ETH_HDR < SL_ARP_LEN)
		return sl_err_set(EBADMSG, "encap: ARP body of %zu bytes, need %d",
				  len - SL_ETH_HDR, SL_ARP_LEN);
	op = get_be16(a + 6);
	/* Other hardware or protocol types are not malformed, just not ours. */
	if (get_be16(a) != ARP_HW_ETHER || get_be16(a + 2) != SL_ETHERTYPE_IPV4) {
		memset(out, 0, sizeof(*out));
		out->kind = SL_PKT_OTHER;
		return 0;
	}
	if (a[4] != 6 || a[5] != 4)
		return sl_err_set(
		    EBADMSG, "encap: ARP for Ethernet/IPv4 with address lengths %u/%u", a[4], a[5]);
	memset(out, 0, sizeof(*out));
	if (op == SL_ARP_OP_REQUEST)
		out->kind = SL_PKT_ARP_REQUEST;
	else if (op == SL_ARP_OP_REPLY)
		out->kind = SL_PKT_ARP_REPLY;
	else
		out->kind = SL_PKT_OTHER; /* RARP, InARP...: not for us */
	memcpy(out->src.mac, a + 8, 6);
	out->src.ip = get_ip(a + 14);
	memcpy(out->dst.mac, a + 18, 6);
	out->dst.ip = get_ip(a + 24);
	return 0;
}

int sl_encap_parse(const uint8_t *pkt, size_t len, int csum_verified, struct sl_pkt *out)
{
	const uint8_t *ip, *udp;
	size_t ihl, tot, avail;
	uint16_t frag, udp_len, ether;

	if (len < SL_ETH_HDR)
		return sl_err_set(EBADMSG, "encap: %zu bytes, shorter than an Ethernet header",
				  len);
	ether = get_be16(pkt + 12);
	if (ether == SL_ETHERTYPE_ARP)
		return parse_arp(pkt, len, out);
	if (ether != SL_ETHERTYPE_IPV4) {
		memset(out, 0, sizeof(*out));
		out->kind = SL_PKT_OTHER;
		return 0;
	}

	ip = pkt + SL_ETH_HDR;
	avail = len - SL_ETH_HDR;
	if (avail < SL_IPV4_HDR)
		return sl_err_set(EBADMSG, "encap: IPv4 header truncated (%zu bytes)", avail);
	if (ip[0] >> 4 != 4)
		return sl_err_set(EBADMSG, "encap: IP version %u in an IPv4 ethertype", ip[0] >> 4);
	ihl = (size_t)(ip[0] & 0xf) * 4;
	if (ihl < SL_IPV4_HDR)
		return sl_err_set(EBADMSG, "encap: IPv4 IHL %zu bytes, below 20", ihl);
	tot = get_be16(ip + 2);
	if (tot < ihl)
		return sl_err_set(EBADMSG, "encap: IPv4 total length %zu below its header %zu", tot,
				  ihl);
	if (tot > avail)
		return sl_err_set(EBADMSG, "encap: IPv4 total length %zu, only %zu bytes arrived",
				  tot, avail);
	if (!(csum_verified & SL_ENCAP_IP_CSUM_OK) && sl_inet_csum(ip, ihl, 0) != 0xffff)
		return sl_err_set(EBADMSG, "encap: IPv4 header checksum wrong (field 0x%02x%02x)",
				  ip[10], ip[11]);
	frag = get_be16(ip + 6);
	if (frag & (IP_MF | IP_OFF_MASK))
		return sl_err_set(EBADMSG, "encap: IPv4 fragment (flags/offset 0x%04x) refused",
				  frag);
	if (ip[9] != SL_IPPROTO_UDP) {
		memset(out, 0, sizeof(*out));
		out->kind = SL_PKT_OTHER;
		return 0;
	}

	udp = ip + ihl;
	if (tot - ihl < SL_UDP_HDR)
		return sl_err_set(EBADMSG, "encap: UDP header truncated (%zu bytes of IP payload)",
				  tot - ihl);
	udp_len = get_be16(udp + 4);
	if (udp_len != tot - ihl)
		return sl_err_set(EBADMSG, "encap: UDP length %u, IP payload %zu bytes", udp_len,
				  tot - ihl);
	if (!(csum_verified & SL_ENCAP_UDP_CSUM_OK) && (udp[6] | udp[7]) != 0) {
		uint16_t s = pseudo_sum(get_ip(ip + 12), get_ip(ip + 16), udp_len);

		if (sl_inet_csum(udp, udp_len, s) != 0xffff)
			return sl_err_set(EBADMSG, "encap: UDP checksum wrong (field 0x%02x%02x)",
					  udp[6], udp[7]);
	}

	memset(out, 0, sizeof(*out));
	out->kind = SL_PKT_UDP;
	memcpy(out->dst.mac, pkt, 6);
	memcpy(out->src.mac, pkt + 6, 6);
	out->src.ip = get_ip(ip + 12);
	out->dst.ip = get_ip(ip + 16);
	out->src.port = get_be16(udp);
	out->dst.port = get_be16(udp + 2);
	out->payload = udp + SL_UDP_HDR;
	out->payload_len = (size_t)udp_len - SL_UDP_HDR;
	return 0;
}

static int arp_build(uint8_t *pkt, size_t cap, const uint8_t eth_dst[6], uint16_t op,
		     const struct sl_endpoint *sender, const uint8_t target_mac[6],
		     uint32_t target_ip)
{
	uint8_t *a = pkt + SL_ETH_HDR;

	if (cap < SL_ETH_MIN)
		return sl_err_set(ENOSPC, "encap: ARP needs %d bytes, buffer has %zu", SL_ETH_MIN,
				  cap);
	memcpy(pkt, eth_dst, 6);
	memcpy(pkt + 6, sender->mac, 6);
	put_be16(pkt + 12, SL_ETHERTYPE_ARP);
	put_be16(a, ARP_HW_ETHER);
	put_be16(a + 2, SL_ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, op);
	memcpy(a + 8, sender->mac, 6);
	put_ip(a + 14, sender->ip);
	memcpy(a + 18, target_mac, 6);
	put_ip(a + 24, target_ip);
	/* Pad to the Ethernet minimum: software ports (memif, ring) do not. */
	memset(pkt + SL_ETH_HDR + SL_ARP_LEN, 0, SL_ETH_MIN - SL_ETH_HDR - SL_ARP_LEN);
	return SL_ETH_MIN;
}

int sl_arp_reply(uint8_t *pkt, size_t cap, const struct sl_endpoint *self,
		 const struct sl_endpoint *asker)
{
	return arp_build(pkt, cap, asker->mac, SL_ARP_OP_REPLY, self, asker->mac, asker->ip);
}

int sl_arp_request(uint8_t *pkt, size_t cap, const struct sl_endpoint *self, uint32_t target_ip)
{
	static const uint8_t unknown[6];

	return arp_build(pkt, cap, mac_bcast, SL_ARP_OP_REQUEST, self, unknown, target_ip);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sl_mac_parse(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	if (s == NULL)
		return sl_err_set(EINVAL, "MAC address missing");
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		int hi, lo;

		/* Checking each character before the next keeps the reads
		 * inside the string: a NUL fails the test before we pass it. */
		hi = hexval(p[0]);
		lo = hi < 0 ? -1 : hexval(p[1]);
		if (lo < 0 || p[2] != (i == 5 ? '\0' : ':'))
			return sl_err_set(EINVAL, "MAC address '%.32s': want aa:bb:cc:dd:ee:ff", s);
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, m, 6);
	return 0;
}
