/* Tests for net/encap.c: header layout and checksums against hand-computed
 * references, round trips in software and offload mode (with the NIC's part
 * simulated here), every truncation and each malformed field refused, IP
 * options accepted, fragments refused, ARP build and parse, MAC parsing.
 * References are computed with byte shifts here, never with the code under
 * test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "shiplog/encap.h"
#include "shiplog/err.h"

#define PAYLOAD_MAX 9000

static uint8_t pkt[SL_ENCAP_HDR + PAYLOAD_MAX + 64];
static uint8_t pkt2[SL_ENCAP_HDR + PAYLOAD_MAX + 64];
static uint64_t rng = 0x3c4a9;

static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)rng;
}

static uint32_t ip4(int a, int b, int c, int d)
{
	return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d);
}

static const struct sl_endpoint ep_a = {{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}, 0, 7001};
static const struct sl_endpoint ep_b = {{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}, 0, 7002};

static struct sl_endpoint a_ep(void)
{
	struct sl_endpoint e = ep_a;

	e.ip = ip4(10, 77, 0, 1);
	return e;
}

static struct sl_endpoint b_ep(void)
{
	struct sl_endpoint e = ep_b;

	e.ip = ip4(10, 77, 0, 2);
	return e;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wbe16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Reference Internet checksum: big-endian 16-bit words, the plain way. */
static uint32_t ref_sum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t ref_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Recompute the IPv4 header checksum (header at pkt + 14, IHL from it). */
static void fix_ip(uint8_t *p)
{
	uint8_t *ip = p + SL_ETH_HDR;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;

	ip[10] = ip[11] = 0;
	wbe16(ip + 10, (uint16_t)~ref_fold(ref_sum(ip, ihl, 0)));
}

/* Recompute the UDP checksum over what the UDP length says. */
static void fix_udp(uint8_t *p)
{
	uint8_t *ip = p + SL_ETH_HDR;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	uint8_t *udp = ip + ihl;
	uint16_t len = be16(udp + 4);
	uint32_t s = ref_sum(ip + 12, 8, 0) + SL_IPPROTO_UDP + len;
	uint16_t c;

	udp[6] = udp[7] = 0;
	c = (uint16_t)~ref_fold(ref_sum(udp, len, s));
	wbe16(udp + 6, c ? c : 0xffff);
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rnd8();
}

static int build(uint8_t *p, size_t payload_len, enum sl_encap_csum mode)
{
	struct sl_endpoint a = a_ep(), b = b_ep();

	fill(p + SL_ENCAP_HDR, payload_len);
	return sl_encap_write(p, SL_ENCAP_HDR + payload_len, &a, &b, 0x1234, payload_len, mode);
}

static void expect_bad(const uint8_t *p, size_t len, int verified)
{
	struct sl_pkt out;

	sl_err_clear();
	assert_int_equal(sl_encap_parse(p, len, verified, &out), -EBADMSG);
	assert_true(sl_err_msg()[0] != '\0');
}

static void expect_udp(const uint8_t *p, size_t len, int verified, size_t payload_len)
{
	struct sl_endpoint a = a_ep(), b = b_ep();
	struct sl_pkt out;

	assert_int_equal(sl_encap_parse(p, len, verified, &out), 0);
	assert_int_equal(out.kind, SL_PKT_UDP);
	assert_memory_equal(out.src.mac, a.mac, 6);
	assert_memory_equal(out.dst.mac, b.mac, 6);
	assert_int_equal(out.src.ip, a.ip);
	assert_int_equal(out.dst.ip, b.ip);
	assert_int_equal(out.src.port, a.port);
	assert_int_equal(out.dst.port, b.port);
	assert_int_equal(out.payload_len, payload_len);
	assert_ptr_equal(out.payload, p + SL_ENCAP_HDR);
}

/* ---- checksums against hand-computed references ---- */

/* The IPv4 header of the classic worked example (192.168.0.1 ->
 * 192.168.0.199, total length 0x73, id 0, DF, TTL 64, UDP): its checksum is
 * 0xb861, and our header has exactly those fields. */
static void test_ip_header_reference(void **state)
{
	static const uint8_t want[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40,
					 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
					 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	struct sl_endpoint a = a_ep(), b = b_ep();

	(void)state;
	a.ip = ip4(192, 168, 0, 1);
	b.ip = ip4(192, 168, 0, 199);
	memset(pkt, 0, sizeof(pkt));
	assert_int_equal(sl_encap_write(pkt, sizeof(pkt), &a, &b, 0, 0x73 - 28, SL_CSUM_SOFTWARE),
			 SL_ENCAP_HDR);
	assert_memory_equal(pkt + SL_ETH_HDR, want, sizeof(want));
	/* Ethernet: destination, source, type 0x0800. */
	assert_memory_equal(pkt, b.mac, 6);
	assert_memory_equal(pkt + 6, a.mac, 6);
	assert_int_equal(be16(pkt + 12), 0x0800);
}

/* UDP 10.0.0.1:1000 -> 10.0.0.2:2000, payload "abc" (length 11), by hand:
 *   pseudo-header 0a00+0001+0a00+0002+0011+000b = 0x141f
 *   UDP header    03e8+07d0+000b+0000         = 0x0bc3  -> 0x1fe2
 *   payload       6162+6300 (odd byte padded)  = 0xc462  -> 0xe444
 *   checksum = ~0xe444 = 0x1bbb. */
static void test_udp_checksum_reference(void **state)
{
	struct sl_endpoint a = {{1, 2, 3, 4, 5, 6}, 0, 1000}, b = {{6, 5, 4, 3, 2, 1}, 0, 2000};
	struct sl_pkt out;

	(void)state;
	a.ip = ip4(10, 0, 0, 1);
	b.ip = ip4(10, 0, 0, 2);
	memcpy(pkt + SL_ENCAP_HDR, "abc", 3);
	assert_int_equal(sl_encap_write(pkt, SL_ENCAP_HDR + 3, &a, &b, 7, 3, SL_CSUM_SOFTWARE),
			 SL_ENCAP_HDR);
	assert_int_equal(be16(pkt + 34), 1000);
	assert_int_equal(be16(pkt + 36), 2000);
	assert_int_equal(be16(pkt + 38), 11);
	assert_int_equal(be16(pkt + 40), 0x1bbb);
	assert_int_equal(be16(pkt + 16), 31); /* IP total length */
	assert_int_equal(be16(pkt + 18), 7);  /* IP id */
	assert_int_equal(sl_encap_parse(pkt, SL_ENCAP_HDR + 3, 0, &out), 0);
	assert_int_equal(out.payload_len, 3);
	assert_memory_equal(out.payload, "abc", 3);
}

/* Offload mode leaves the IPv4 checksum zero and the pseudo-header sum
 * (not complemented) in the UDP field: 0x141f for the packet above. */
static void test_offload_pseudo_header(void **state)
{
	struct sl_endpoint a = {{1, 2, 3, 4, 5, 6}, 0, 1000}, b = {{6, 5, 4, 3, 2, 1}, 0, 2000};

	(void)state;
	a.ip = ip4(10, 0, 0, 1);
	b.ip = ip4(10, 0, 0, 2);
	memcpy(pkt + SL_ENCAP_HDR, "abc", 3);
	assert_int_equal(sl_encap_write(pkt, SL_ENCAP_HDR + 3, &a, &b, 7, 3, SL_CSUM_OFFLOAD),
			 SL_ENCAP_HDR);
	assert_int_equal(be16(pkt + 24), 0);
	assert_int_equal(be16(pkt + 40), 0x141f);
}

/* IP-only mode: the IPv4 checksum right, the UDP checksum zero ("none"),
 * and the packet parses, payload intact. */
static void test_ip_only_no_udp_checksum(void **state)
{
	struct sl_endpoint a = {{1, 2, 3, 4, 5, 6}, 0, 1000}, b = {{6, 5, 4, 3, 2, 1}, 0, 2000};
	struct sl_pkt out;

	(void)state;
	a.ip = ip4(10, 0, 0, 1);
	b.ip = ip4(10, 0, 0, 2);
	memcpy(pkt + SL_ENCAP_HDR, "abc", 3);
	assert_int_equal(sl_encap_write(pkt, SL_ENCAP_HDR + 3, &a, &b, 7, 3, SL_CSUM_IP_ONLY),
			 SL_ENCAP_HDR);
	assert_int_equal(sl_inet_csum(pkt + 14, 20, 0), 0xffff);
	assert_int_equal(be16(pkt + 40), 0);
	assert_int_equal(sl_encap_parse(pkt, SL_ENCAP_HDR + 3, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_UDP);
	assert_int_equal(out.payload_len, 3);
	assert_memory_equal(out.payload, "abc", 3);
}

/* sl_inet_csum agrees with the reference for every length and alignment,
 * and chains across pieces of even length. */
static void test_inet_csum(void **state)
{
	static uint8_t buf[2100];

	(void)state;
	fill(buf, sizeof(buf));
	for (size_t off = 0; off < 8; off++) {
		for (size_t n = 0; n < 2048; n += (n < 80 ? 1 : 37)) {
			uint16_t got = sl_inet_csum(buf + off, n, 0),
				 want = ref_fold(ref_sum(buf + off, n, 0));
			uint8_t b[2];

			memcpy(b, &got, 2);
			assert_int_equal(be16(b), want);
		}
	}
	for (size_t cut = 0; cut <= 64; cut += 2) {
		uint16_t whole = sl_inet_csum(buf, 1001, 0);
		uint16_t chained = sl_inet_csum(buf + cut, 1001 - cut, sl_inet_csum(buf, cut, 0));

		assert_int_equal(whole, chained);
	}
	/* All ones: the sum of 0xffff words stays 0xffff (no negative zero). */
	memset(buf, 0xff, 64);
	{
		uint16_t v = sl_inet_csum(buf, 64, 0);

		assert_int_equal(v, 0xffff);
	}
}

/* A UDP checksum that computes to zero goes out as 0xffff (RFC 768). */
static void test_udp_zero_checksum_sent_as_ffff(void **state)
{
	struct sl_endpoint a = a_ep(), b = b_ep();
	uint32_t s;
	uint16_t x;

	(void)state;
	memset(pkt + SL_ENCAP_HDR, 0, 4);
	/* Sum of everything with the payload's first word zero; then choose
	 * that word so the total is 0xffff, i.e. the checksum is zero. */
	sl_encap_write(pkt, SL_ENCAP_HDR + 4, &a, &b, 1, 4, SL_CSUM_SOFTWARE);
	pkt[40] = pkt[41] = 0;
	s = ref_sum(pkt + 26, 8, 0) + SL_IPPROTO_UDP + 12;
	s = ref_fold(ref_sum(pkt + 34, 12, s));
	x = (uint16_t)(0xffff - s);
	wbe16(pkt + SL_ENCAP_HDR, x);
	assert_int_equal(sl_encap_write(pkt, SL_ENCAP_HDR + 4, &a, &b, 1, 4, SL_CSUM_SOFTWARE),
			 SL_ENCAP_HDR);
	assert_int_equal(be16(pkt + 40), 0xffff);
	expect_udp(pkt, SL_ENCAP_HDR + 4, 0, 4);
}

/* ---- round trips ---- */

static const size_t sizes[] = {0, 1, 2, 3, 63, 64, 65, 1000, 1472, 2048, 4097, 8192, 8972, 9000};

static void test_roundtrip_software(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];

		assert_int_equal(build(pkt, n, SL_CSUM_SOFTWARE), SL_ENCAP_HDR);
		/* Checksums as the reference computes them. */
		memcpy(pkt2, pkt, SL_ENCAP_HDR + n);
		fix_ip(pkt2);
		fix_udp(pkt2);
		assert_memory_equal(pkt, pkt2, SL_ENCAP_HDR);
		expect_udp(pkt, SL_ENCAP_HDR + n, 0, n);
		expect_udp(pkt, SL_ENCAP_HDR + n, SL_ENCAP_IP_CSUM_OK | SL_ENCAP_UDP_CSUM_OK, n);
		/* Ethernet padding after the IP packet is fine. */
		memset(pkt + SL_ENCAP_HDR + n, 0, 32);
		expect_udp(pkt, SL_ENCAP_HDR + n + 32, 0, n);
	}
}

/* Offload: what a NIC does to the packet (IPv4 checksum, UDP checksum
 * from the pseudo-header sum we left) makes a packet parse accepts. */
static void test_roundtrip_offload(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *udp = pkt + SL_ETH_HDR + SL_IPV4_HDR;
		uint16_t c;

		assert_int_equal(build(pkt, n, SL_CSUM_OFFLOAD), SL_ENCAP_HDR);
		/* Before the NIC: the IP checksum is zero, so only a NIC-verified
		 * parse takes it. */
		expect_bad(pkt, SL_ENCAP_HDR + n, 0);
		fix_ip(pkt);
		c = (uint16_t)~ref_fold(ref_sum(udp, SL_UDP_HDR + n, 0));
		wbe16(udp + 6, c ? c : 0xffff);
		expect_udp(pkt, SL_ENCAP_HDR + n, 0, n);
		/* And the same bytes as the software path. */
		memcpy(pkt2, pkt, SL_ENCAP_HDR + n);
		fix_udp(pkt2);
		assert_memory_equal(pkt, pkt2, SL_ENCAP_HDR);
	}
}

/* The header for a payload elsewhere equals the one written in place. */
static void test_write_hdr_detached(void **state)
{
	struct sl_endpoint a = a_ep(), b = b_ep();
	static uint8_t payload[PAYLOAD_MAX];
	uint8_t hdr[SL_ENCAP_HDR];

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];

		fill(payload, n);
		memcpy(pkt + SL_ENCAP_HDR, payload, n);
		assert_int_equal(sl_encap_write(pkt, sizeof(pkt), &a, &b, 99, n, SL_CSUM_SOFTWARE),
				 SL_ENCAP_HDR);
		assert_int_equal(
		    sl_encap_write_hdr(hdr, sizeof(hdr), &a, &b, 99, payload, n, SL_CSUM_SOFTWARE),
		    SL_ENCAP_HDR);
		assert_memory_equal(hdr, pkt, SL_ENCAP_HDR);
	}
	/* Offload needs no payload. */
	assert_int_equal(
	    sl_encap_write_hdr(hdr, sizeof(hdr), &a, &b, 1, NULL, 100, SL_CSUM_OFFLOAD),
	    SL_ENCAP_HDR);
	assert_int_equal(
	    sl_encap_write_hdr(hdr, sizeof(hdr), &a, &b, 1, NULL, 100, SL_CSUM_SOFTWARE), -EINVAL);
}

static void test_write_errors(void **state)
{
	struct sl_endpoint a = a_ep(), b = b_ep();

	(void)state;
	assert_int_equal(sl_encap_write(pkt, SL_ENCAP_HDR - 1, &a, &b, 0, 0, SL_CSUM_SOFTWARE),
			 -ENOSPC);
	assert_int_equal(sl_encap_write(pkt, SL_ENCAP_HDR + 9, &a, &b, 0, 10, SL_CSUM_SOFTWARE),
			 -ENOSPC);
	assert_int_equal(sl_encap_write_hdr(pkt, sizeof(pkt), &a, &b, 0, NULL,
					    SL_ENCAP_PAYLOAD_MAX + 1, SL_CSUM_OFFLOAD),
			 -EMSGSIZE);
	assert_int_equal(sl_encap_write_hdr(pkt, sizeof(pkt), &a, &b, 0, NULL, SL_ENCAP_PAYLOAD_MAX,
					    SL_CSUM_OFFLOAD),
			 SL_ENCAP_HDR);
	assert_int_equal(be16(pkt + 16), 65535);
}

/* ---- refusals ---- */

static void test_every_truncation(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], step = n > 2048 ? 61 : 1;

		build(pkt, n, SL_CSUM_SOFTWARE);
		for (size_t len = 0; len < SL_ENCAP_HDR + n; len += (len < 128 ? 1 : step)) {
			expect_bad(pkt, len, 0);
			expect_bad(pkt, len, SL_ENCAP_IP_CSUM_OK | SL_ENCAP_UDP_CSUM_OK);
		}
		expect_bad(pkt, SL_ENCAP_HDR + n - 1, 0);
	}
	/* ARP too. */
	{
		struct sl_endpoint a = a_ep();
		int n = sl_arp_request(pkt, sizeof(pkt), &a, ip4(10, 77, 0, 2));

		assert_int_equal(n, SL_ETH_MIN);
		for (size_t len = 0; len < SL_ETH_HDR + SL_ARP_LEN; len++)
			expect_bad(pkt, len, 0);
	}
}

static void test_bad_checksums(void **state)
{
	const size_t n = 300;

	(void)state;
	build(pkt, n, SL_CSUM_SOFTWARE);
	/* Every single-bit flip in the IP header and the UDP part fails a
	 * check (one in the Ethernet header would change only addresses). */
	for (size_t bit = SL_ETH_HDR * 8; bit < (SL_ENCAP_HDR + n) * 8; bit++) {
		pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		{
			struct sl_pkt out;
			int rc = sl_encap_parse(pkt, SL_ENCAP_HDR + n, 0, &out);

			/* The one flip that passes: a UDP checksum field turned
			 * into zero, which means "no checksum". */
			if (rc == 0)
				assert_true(out.kind == SL_PKT_UDP && pkt[40] == 0 && pkt[41] == 0);
			else
				assert_int_equal(rc, -EBADMSG);
		}
		pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* A wrong IP checksum; accepted when the NIC says it checked. */
	pkt[SL_ETH_HDR + 10] ^= 0x40;
	expect_bad(pkt, SL_ENCAP_HDR + n, 0);
	expect_bad(pkt, SL_ENCAP_HDR + n, SL_ENCAP_UDP_CSUM_OK);
	expect_udp(pkt, SL_ENCAP_HDR + n, SL_ENCAP_IP_CSUM_OK, n);
	pkt[SL_ETH_HDR + 10] ^= 0x40;
	/* A wrong UDP checksum (payload changed). */
	pkt[SL_ENCAP_HDR + 17] ^= 0x01;
	expect_bad(pkt, SL_ENCAP_HDR + n, 0);
	expect_bad(pkt, SL_ENCAP_HDR + n, SL_ENCAP_IP_CSUM_OK);
	expect_udp(pkt, SL_ENCAP_HDR + n, SL_ENCAP_UDP_CSUM_OK, n);
	/* UDP checksum zero: "none", accepted (a sender may omit it). */
	pkt[40] = pkt[41] = 0;
	expect_udp(pkt, SL_ENCAP_HDR + n, 0, n);
}

static void test_ip_options(void **state)
{
	const size_t n = 100;
	struct sl_pkt out;

	(void)state;
	build(pkt, n, SL_CSUM_SOFTWARE);
	/* Insert 8 bytes of options (NOPs then end-of-list): IHL 7. */
	memcpy(pkt2, pkt, SL_ETH_HDR + SL_IPV4_HDR);
	memset(pkt2 + SL_ETH_HDR + SL_IPV4_HDR, 1, 7);
	pkt2[SL_ETH_HDR + SL_IPV4_HDR + 7] = 0;
	memcpy(pkt2 + SL_ETH_HDR + 28, pkt + SL_ETH_HDR + SL_IPV4_HDR, SL_UDP_HDR + n);
	pkt2[SL_ETH_HDR] = 0x47;
	wbe16(pkt2 + SL_ETH_HDR + 2, (uint16_t)(28 + SL_UDP_HDR + n));
	fix_ip(pkt2);
	assert_int_equal(sl_encap_parse(pkt2, SL_ENCAP_HDR + 8 + n, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_UDP);
	assert_ptr_equal(out.payload, pkt2 + SL_ENCAP_HDR + 8);
	assert_int_equal(out.payload_len, n);
	assert_memory_equal(out.payload, pkt + SL_ENCAP_HDR, n);
	/* IHL 15 (60 bytes) but the packet is shorter than that header. */
	pkt2[SL_ETH_HDR] = 0x4f;
	wbe16(pkt2 + SL_ETH_HDR + 2, 40);
	fix_ip(pkt2);
	expect_bad(pkt2, SL_ETH_HDR + 40, 0);
	/* IHL below 5. */
	for (int ihl = 0; ihl < 5; ihl++) {
		build(pkt, n, SL_CSUM_SOFTWARE);
		pkt[SL_ETH_HDR] = (uint8_t)(0x40 | ihl);
		expect_bad(pkt, SL_ENCAP_HDR + n, SL_ENCAP_IP_CSUM_OK | SL_ENCAP_UDP_CSUM_OK);
	}
}

/* Header fields that lie, with the checksums made right again so only the
 * field itself can be the reason. */
static void test_bad_fields(void **state)
{
	const size_t n = 200, len = SL_ENCAP_HDR + n;
	uint8_t *ip = pkt + SL_ETH_HDR, *udp = ip + SL_IPV4_HDR;
	struct sl_pkt out;

	(void)state;
	/* Version. */
	for (int v = 0; v < 16; v++) {
		if (v == 4)
			continue;
		build(pkt, n, SL_CSUM_SOFTWARE);
		ip[0] = (uint8_t)(v << 4 | 5);
		fix_ip(pkt);
		expect_bad(pkt, len, 0);
	}
	/* Fragments: MF, or any offset; DF alone is fine, so is no flag. */
	{
		static const uint16_t frag[] = {0x2000, 0x0001, 0x1fff, 0x4001, 0x6000, 0x2001};

		for (size_t i = 0; i < sizeof(frag) / sizeof(frag[0]); i++) {
			build(pkt, n, SL_CSUM_SOFTWARE);
			wbe16(ip + 6, frag[i]);
			fix_ip(pkt);
			expect_bad(pkt, len, 0);
		}
		build(pkt, n, SL_CSUM_SOFTWARE);
		wbe16(ip + 6, 0);
		fix_ip(pkt);
		expect_udp(pkt, len, 0, n);
	}
	/* IP total length: below the header, longer than what arrived, or
	 * shorter (then the UDP length disagrees). */
	{
		static const uint16_t tot[] = {0, 19, 20, 27, 227, 229, 0xffff};

		for (size_t i = 0; i < sizeof(tot) / sizeof(tot[0]); i++) {
			build(pkt, n, SL_CSUM_SOFTWARE);
			wbe16(ip + 2, tot[i]);
			fix_ip(pkt);
			expect_bad(pkt, len, 0);
		}
	}
	/* UDP length: every value but the right one, checksum fixed over
	 * what it claims when it fits. */
	for (uint32_t ul = 0; ul < 0x10000; ul += (ul < 300 ? 1 : 257)) {
		if (ul == SL_UDP_HDR + n)
			continue;
		build(pkt, n, SL_CSUM_SOFTWARE);
		wbe16(udp + 4, (uint16_t)ul);
		if (ul >= SL_UDP_HDR && ul <= SL_UDP_HDR + n)
			fix_udp(pkt);
		expect_bad(pkt, len, 0);
	}
	/* A protocol other than UDP, an ethertype other than IPv4/ARP: not
	 * ours, but not malformed. */
	build(pkt, n, SL_CSUM_SOFTWARE);
	ip[9] = 6;
	fix_ip(pkt);
	assert_int_equal(sl_encap_parse(pkt, len, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_OTHER);
	build(pkt, n, SL_CSUM_SOFTWARE);
	wbe16(pkt + 12, 0x86dd);
	assert_int_equal(sl_encap_parse(pkt, len, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_OTHER);
	wbe16(pkt + 12, 0x8100); /* VLAN tags are not supported */
	assert_int_equal(sl_encap_parse(pkt, len, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_OTHER);
	/* out is untouched on failure. */
	memset(&out, 0x5a, sizeof(out));
	expect_bad(pkt, 10, 0);
	assert_int_equal(((uint8_t *)&out)[0], 0x5a);
}

/* ---- ARP ---- */

static void test_arp_request_layout(void **state)
{
	/* Who has 10.77.0.2? Tell 10.77.0.1 (02:11:22:33:44:55). */
	static const uint8_t want[42] = {
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x06,
	    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
	    10,	  77,	0,    1,    0,	  0,	0,    0,    0,	  0,	10,   77,   0,	  2};
	struct sl_endpoint a = a_ep();
	struct sl_pkt out;

	(void)state;
	memset(pkt, 0xee, 80);
	assert_int_equal(sl_arp_request(pkt, sizeof(pkt), &a, ip4(10, 77, 0, 2)), 60);
	assert_memory_equal(pkt, want, sizeof(want));
	for (int i = 42; i < 60; i++)
		assert_int_equal(pkt[i], 0);
	assert_int_equal(pkt[60], 0xee);
	assert_int_equal(sl_encap_parse(pkt, 60, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_ARP_REQUEST);
	assert_memory_equal(out.src.mac, a.mac, 6);
	assert_int_equal(out.src.ip, a.ip);
	assert_int_equal(out.dst.ip, ip4(10, 77, 0, 2));
	/* Without the padding it still parses (42 bytes hold the body). */
	assert_int_equal(sl_encap_parse(pkt, 42, 0, &out), 0);
	assert_int_equal(sl_arp_request(pkt, 59, &a, 1), -ENOSPC);
}

static void test_arp_reply_layout(void **state)
{
	/* 10.77.0.2 is at 02:aa:bb:cc:dd:ee, to 10.77.0.1 (02:11:22:33:44:55). */
	static const uint8_t want[42] = {
	    0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x08, 0x06,
	    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
	    10,	  77,	0,    2,    0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 10,   77,   0,	  1};
	struct sl_endpoint a = a_ep(), b = b_ep();
	struct sl_pkt out;

	(void)state;
	assert_int_equal(sl_arp_reply(pkt, sizeof(pkt), &b, &a), 60);
	assert_memory_equal(pkt, want, sizeof(want));
	assert_int_equal(sl_encap_parse(pkt, 60, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_ARP_REPLY);
	assert_memory_equal(out.src.mac, b.mac, 6);
	assert_int_equal(out.src.ip, b.ip);
	assert_memory_equal(out.dst.mac, a.mac, 6);
	assert_int_equal(out.dst.ip, a.ip);
	assert_int_equal(sl_arp_reply(pkt, 10, &b, &a), -ENOSPC);
}

static void test_arp_odd(void **state)
{
	struct sl_endpoint a = a_ep();
	struct sl_pkt out;

	(void)state;
	sl_arp_request(pkt, sizeof(pkt), &a, 5);
	/* Other hardware or protocol types, other operations: not ours. */
	wbe16(pkt + 14, 6);
	assert_int_equal(sl_encap_parse(pkt, 60, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_OTHER);
	sl_arp_request(pkt, sizeof(pkt), &a, 5);
	wbe16(pkt + 16, 0x86dd);
	assert_int_equal(sl_encap_parse(pkt, 60, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_OTHER);
	sl_arp_request(pkt, sizeof(pkt), &a, 5);
	wbe16(pkt + 20, 3);
	assert_int_equal(sl_encap_parse(pkt, 60, 0, &out), 0);
	assert_int_equal(out.kind, SL_PKT_OTHER);
	/* Ethernet/IPv4 with wrong address lengths: malformed. */
	sl_arp_request(pkt, sizeof(pkt), &a, 5);
	pkt[18] = 8;
	expect_bad(pkt, 60, 0);
	sl_arp_request(pkt, sizeof(pkt), &a, 5);
	pkt[19] = 16;
	expect_bad(pkt, 60, 0);
}

/* ---- MAC ---- */

static void test_mac_parse(void **state)
{
	static const char *bad[] = {"",
				    "02:11:22:33:44",
				    "02:11:22:33:44:5",
				    "02:11:22:33:44:555",
				    "02:11:22:33:44:55:",
				    "02:11:22:33:44:55 ",
				    "02-11-22-33-44-55",
				    "0211:22:33:44:55:",
				    "g2:11:22:33:44:55",
				    "02:11:22:33:44:5g",
				    " 02:11:22:33:44:55",
				    "2:11:22:33:44:55"};
	const uint8_t want[6] = {0x02, 0xab, 0xcd, 0xef, 0x09, 0xfa};
	uint8_t mac[6] = {9, 9, 9, 9, 9, 9};

	(void)state;
	assert_int_equal(sl_mac_parse("02:ab:cd:ef:09:fa", mac), 0);
	assert_memory_equal(mac, want, 6);
	assert_int_equal(sl_mac_parse("02:AB:Cd:eF:09:FA", mac), 0);
	assert_memory_equal(mac, want, 6);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t m[6] = {7, 7, 7, 7, 7, 7};

		assert_int_equal(sl_mac_parse(bad[i], m), -EINVAL);
		assert_int_equal(m[0], 7); /* untouched */
	}
	assert_int_equal(sl_mac_parse(NULL, mac), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ip_header_reference),
	    cmocka_unit_test(test_udp_checksum_reference),
	    cmocka_unit_test(test_offload_pseudo_header),
	    cmocka_unit_test(test_ip_only_no_udp_checksum),
	    cmocka_unit_test(test_inet_csum),
	    cmocka_unit_test(test_udp_zero_checksum_sent_as_ffff),
	    cmocka_unit_test(test_roundtrip_software),
	    cmocka_unit_test(test_roundtrip_offload),
	    cmocka_unit_test(test_write_hdr_detached),
	    cmocka_unit_test(test_write_errors),
	    cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_bad_checksums),
	    cmocka_unit_test(test_ip_options),
	    cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_arp_request_layout),
	    cmocka_unit_test(test_arp_reply_layout),
	    cmocka_unit_test(test_arp_odd),
	    cmocka_unit_test(test_mac_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
