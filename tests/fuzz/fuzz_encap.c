/* Fuzz target for net/encap.c (Ethernet/IPv4/UDP and ARP).
 *
 * Properties per input:
 *  1. The input as a packet, parsed with every csum_verified mask: parse
 *     never reads outside it, fails only with -EBADMSG and a message and
 *     then leaves *out alone; a mask that trusts more never refuses what one
 *     that trusts less accepted, and gives the same result. What it accepts
 *     is consistent: a UDP payload lies inside the input where the IPv4
 *     header length puts it, and written again by sl_encap_write from the
 *     parsed addresses it parses back the same; an ARP packet rebuilt by
 *     sl_arp_request / sl_arp_reply parses back the same.
 *  2. The input as fields (addresses, ports, IP id, checksum mode, payload):
 *     what sl_encap_write builds parses back field for field (offload mode
 *     after the NIC's part is done here), and any truncation of it fails.
 *  3. sl_inet_csum equals a byte-wise reference over the input.
 *  4. The input as a string: sl_mac_parse accepts exactly the 17-character
 *     form and returns its bytes.
 * A failed property aborts, which libFuzzer and the replay driver report. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/encap.h"
#include "shiplog/err.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_encap: %s:%d: CHECK(%s) failed; last error: %s\n",   \
				__FILE__, __LINE__, #c, sl_err_msg());                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define PKT_MAX (SL_ENCAP_HDR + 65536)

static uint8_t pkt[PKT_MAX];

static uint32_t ref_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

static int same_ep(const struct sl_endpoint *a, const struct sl_endpoint *b)
{
	return memcmp(a->mac, b->mac, 6) == 0 && a->ip == b->ip && a->port == b->port;
}

static void check_udp(const uint8_t *data, size_t size, const struct sl_pkt *p)
{
	size_t ihl = (size_t)(data[SL_ETH_HDR] & 0xf) * 4;
	struct sl_pkt q;
	int n;

	CHECK(ihl >= SL_IPV4_HDR);
	CHECK(p->payload == data + SL_ETH_HDR + ihl + SL_UDP_HDR);
	CHECK(SL_ETH_HDR + ihl + SL_UDP_HDR + p->payload_len <= size);
	CHECK(p->payload_len <= SL_ENCAP_PAYLOAD_MAX);
	/* Our own encoding of what was parsed parses the same. */
	memcpy(pkt + SL_ENCAP_HDR, p->payload, p->payload_len);
	n = sl_encap_write(pkt, sizeof(pkt), &p->src, &p->dst, 7, p->payload_len, SL_CSUM_SOFTWARE);
	CHECK(n == SL_ENCAP_HDR);
	CHECK(sl_encap_parse(pkt, SL_ENCAP_HDR + p->payload_len, 0, &q) == 0);
	CHECK(q.kind == SL_PKT_UDP && same_ep(&q.src, &p->src) && same_ep(&q.dst, &p->dst));
	CHECK(q.payload_len == p->payload_len);
	CHECK(memcmp(q.payload, p->payload, p->payload_len) == 0);
}

static void check_arp(const struct sl_pkt *p)
{
	struct sl_pkt q;
	int n;

	if (p->kind == SL_PKT_ARP_REQUEST)
		n = sl_arp_request(pkt, sizeof(pkt), &p->src, p->dst.ip);
	else
		n = sl_arp_reply(pkt, sizeof(pkt), &p->src, &p->dst);
	CHECK(n == SL_ETH_MIN);
	CHECK(sl_encap_parse(pkt, (size_t)n, 0, &q) == 0);
	CHECK(q.kind == p->kind);
	CHECK(memcmp(q.src.mac, p->src.mac, 6) == 0 && q.src.ip == p->src.ip);
	CHECK(q.dst.ip == p->dst.ip);
	if (p->kind == SL_PKT_ARP_REPLY)
		CHECK(memcmp(q.dst.mac, p->dst.mac, 6) == 0);
}

static void check_parse(const uint8_t *data, size_t size)
{
	struct sl_pkt p[4], untouched;
	int rc[4];

	for (int v = 0; v < 4; v++) {
		memset(&p[v], 0xa5, sizeof(p[v]));
		untouched = p[v];
		sl_err_clear();
		rc[v] = sl_encap_parse(data, size, v, &p[v]);
		if (rc[v] < 0) {
			CHECK(rc[v] == -EBADMSG && sl_err_msg()[0] != '\0');
			CHECK(memcmp(&p[v], &untouched, sizeof(untouched)) == 0);
		}
	}
	/* Trusting the NIC for a checksum only ever removes a check. */
	for (int v = 0; v < 4; v++)
		for (int w = 0; w < 4; w++)
			if ((v & w) == v && rc[v] == 0) {
				CHECK(rc[w] == 0);
				CHECK(p[w].kind == p[v].kind && p[w].payload == p[v].payload &&
				      p[w].payload_len == p[v].payload_len);
			}
	for (int v = 0; v < 4; v++) {
		if (rc[v] != 0)
			continue;
		if (p[v].kind == SL_PKT_UDP)
			check_udp(data, size, &p[v]);
		else if (p[v].kind == SL_PKT_ARP_REQUEST || p[v].kind == SL_PKT_ARP_REPLY)
			check_arp(&p[v]);
		else
			CHECK(p[v].kind == SL_PKT_OTHER);
	}
}

static uint64_t take(const uint8_t **p, size_t *left, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i<n && * left> 0; i++, (*p)++, (*left)--)
		v |= (uint64_t) * *p << (8 * i);
	return v;
}

static void check_build(const uint8_t *data, size_t size)
{
	struct sl_endpoint src, dst;
	enum sl_encap_csum mode;
	uint16_t id, cut;
	struct sl_pkt q;
	size_t n;

	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	for (int i = 0; i < 6; i++) {
		src.mac[i] = (uint8_t)take(&data, &size, 1);
		dst.mac[i] = (uint8_t)take(&data, &size, 1);
	}
	src.ip = (uint32_t)take(&data, &size, 4);
	dst.ip = (uint32_t)take(&data, &size, 4);
	src.port = (uint16_t)take(&data, &size, 2);
	dst.port = (uint16_t)take(&data, &size, 2);
	id = (uint16_t)take(&data, &size, 2);
	cut = (uint16_t)take(&data, &size, 2);
	mode = take(&data, &size, 1) & 1 ? SL_CSUM_OFFLOAD : SL_CSUM_SOFTWARE;
	n = size < SL_ENCAP_PAYLOAD_MAX ? size : SL_ENCAP_PAYLOAD_MAX;
	memcpy(pkt + SL_ENCAP_HDR, data, n);
	CHECK(sl_encap_write(pkt, SL_ENCAP_HDR + n, &src, &dst, id, n, mode) == SL_ENCAP_HDR);
	if (mode == SL_CSUM_OFFLOAD) {
		/* The NIC's part: both checksums over the fields as they are. */
		uint8_t *ip = pkt + SL_ETH_HDR, *udp = ip + SL_IPV4_HDR;
		uint16_t c;

		CHECK(ip[10] == 0 && ip[11] == 0);
		c = (uint16_t)~ref_csum(ip, SL_IPV4_HDR);
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
		c = (uint16_t)~ref_csum(udp, SL_UDP_HDR + n);
		if (c == 0)
			c = 0xffff;
		udp[6] = (uint8_t)(c >> 8);
		udp[7] = (uint8_t)c;
	}
	CHECK(sl_encap_parse(pkt, SL_ENCAP_HDR + n, 0, &q) == 0);
	CHECK(q.kind == SL_PKT_UDP && same_ep(&q.src, &src) && same_ep(&q.dst, &dst));
	CHECK(q.payload == pkt + SL_ENCAP_HDR && q.payload_len == n);
	CHECK(memcmp(q.payload, data, n) == 0);
	/* The wire header holds the fields where the layout says. */
	CHECK(pkt[18] == (uint8_t)(id >> 8) && pkt[19] == (uint8_t)id);
	CHECK(ref_csum(pkt + SL_ETH_HDR, SL_IPV4_HDR) == 0xffff);
	/* Any truncation is refused. */
	CHECK(sl_encap_parse(pkt, cut % (SL_ENCAP_HDR + n), 0, &q) == -EBADMSG);
	CHECK(sl_encap_parse(pkt, cut % (SL_ENCAP_HDR + n),
			     SL_ENCAP_IP_CSUM_OK | SL_ENCAP_UDP_CSUM_OK, &q) == -EBADMSG);
}

static void check_csum(const uint8_t *data, size_t size)
{
	uint16_t got = sl_inet_csum(data, size, 0);
	uint8_t b[2];

	memcpy(b, &got, 2);
	CHECK((uint32_t)(b[0] << 8 | b[1]) == ref_csum(data, size) ||
	      /* 0 and 0xffff are the same ones' complement number */
	      ((b[0] << 8 | b[1]) == 0xffff && ref_csum(data, size) == 0) ||
	      ((b[0] << 8 | b[1]) == 0 && ref_csum(data, size) == 0xffff));
}

static void check_mac(const uint8_t *data, size_t size)
{
	char s[64], back[18];
	uint8_t mac[6];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	int well_formed;

	memcpy(s, data, n);
	s[n] = '\0';
	well_formed = strlen(s) == 17; /* the string ends at the first NUL */
	for (size_t i = 0; i < 17 && well_formed; i++)
		well_formed = i % 3 == 2 ? s[i] == ':' : isxdigit((unsigned char)s[i]) != 0;
	if (sl_mac_parse(s, mac) != 0) {
		CHECK(!well_formed);
		return;
	}
	CHECK(well_formed);
	snprintf(back, sizeof(back), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
	CHECK(strncasecmp(back, s, 17) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);
	check_build(data, size);
	check_csum(data, size);
	check_mac(data, size);
	return 0;
}
