/* Replay driver for fuzz_encap without libFuzzer (gcc builds, CI); replay.c
 * holds what every target's driver shares (command line, truncations and
 * extensions, bit flips, random damage, splices).
 *
 * Seeds: valid packets from the encoder (UDP of several sizes, with IP
 * options, with the UDP checksum omitted, completed offload packets, ARP
 * requests and replies, padded runts, other ethertypes). Its own patches:
 * every value of the version/IHL, protocol and flag bytes, length fields at
 * their edges, ARP fields, wrong UDP checksums, with the checksums recomputed
 * after a patch so that the checks behind them are reached; and MAC strings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "shiplog/encap.h"
#include "shiplog/err.h"
#include "shiplog/workload.h"

static void wbe16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t ref_csum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Recompute the IPv4 header checksum and, when it was not zero (omitted),
 * the UDP checksum, over whatever the fields describe that is present. */
static void refix(uint8_t *b, size_t len)
{
	size_t ihl, udp_off, ulen;
	uint32_t s;
	uint16_t c;

	if (len < SL_ETH_HDR + SL_IPV4_HDR || be16(b + 12) != SL_ETHERTYPE_IPV4)
		return;
	ihl = (size_t)(b[SL_ETH_HDR] & 0xf) * 4;
	if (ihl < SL_IPV4_HDR || SL_ETH_HDR + ihl > len)
		return;
	b[SL_ETH_HDR + 10] = b[SL_ETH_HDR + 11] = 0;
	wbe16(b + SL_ETH_HDR + 10, (uint16_t)~ref_csum(b + SL_ETH_HDR, ihl, 0));
	udp_off = SL_ETH_HDR + ihl;
	if (b[SL_ETH_HDR + 9] != SL_IPPROTO_UDP || udp_off + SL_UDP_HDR > len)
		return;
	if (b[udp_off + 6] == 0 && b[udp_off + 7] == 0)
		return;
	ulen = be16(b + udp_off + 4);
	if (ulen < SL_UDP_HDR || udp_off + ulen > len)
		return;
	s = ref_csum(b + SL_ETH_HDR + 12, 8, 0) + SL_IPPROTO_UDP + (uint32_t)ulen;
	b[udp_off + 6] = b[udp_off + 7] = 0;
	c = (uint16_t)~ref_csum(b + udp_off, ulen, s);
	wbe16(b + udp_off + 6, c ? c : 0xffff);
}

/* ---- seeds ---- */

static const struct sl_endpoint ep_src = {{0x02, 1, 2, 3, 4, 5}, 0x01004d0a, 7001};
static const struct sl_endpoint ep_dst = {{0x02, 9, 8, 7, 6, 5}, 0x02004d0a, 7002};

static struct replay_seed udp_seed(size_t payload, int offload_done, int no_csum)
{
	struct replay_seed out;

	out.len = SL_ENCAP_HDR + payload;
	out.buf = malloc(out.len < SL_ETH_MIN ? SL_ETH_MIN : out.len);
	if (out.buf == NULL)
		abort();
	for (size_t i = 0; i < payload; i++)
		out.buf[SL_ENCAP_HDR + i] = (uint8_t)replay_rand();
	if (sl_encap_write(out.buf, out.len, &ep_src, &ep_dst, (uint16_t)payload, payload,
			   offload_done ? SL_CSUM_OFFLOAD : SL_CSUM_SOFTWARE) < 0) {
		fprintf(stderr, "fuzz_encap_replay: seed encode: %s\n", sl_err_msg());
		abort();
	}
	if (offload_done) {
		uint8_t *udp = out.buf + SL_ETH_HDR + SL_IPV4_HDR;
		uint16_t c;

		/* The NIC: the UDP sum over the pseudo-header sum we left, then
		 * the IP header (refix would redo that UDP checksum the same). */
		c = (uint16_t)~ref_csum(udp, SL_UDP_HDR + payload, 0);
		wbe16(udp + 6, c ? c : 0xffff);
		refix(out.buf, out.len);
	}
	if (no_csum)
		out.buf[40] = out.buf[41] = 0;
	if (out.len < SL_ETH_MIN) { /* Ethernet padding, as a NIC delivers it */
		memset(out.buf + out.len, 0, SL_ETH_MIN - out.len);
		out.len = SL_ETH_MIN;
	}
	return out;
}

/* A UDP packet with `opt_words` 32-bit words of IP options (NOP, then EOL). */
static struct replay_seed options_seed(size_t payload, size_t opt_words)
{
	struct replay_seed u = udp_seed(payload, 0, 0), out;
	size_t opt = 4 * opt_words, ip_len = SL_IPV4_HDR + opt + SL_UDP_HDR + payload;

	out.len = SL_ETH_HDR + ip_len;
	out.buf = malloc(out.len);
	if (out.buf == NULL)
		abort();
	memcpy(out.buf, u.buf, SL_ETH_HDR + SL_IPV4_HDR);
	memset(out.buf + SL_ETH_HDR + SL_IPV4_HDR, 1, opt);
	out.buf[SL_ETH_HDR + SL_IPV4_HDR + opt - 1] = 0;
	memcpy(out.buf + SL_ETH_HDR + SL_IPV4_HDR + opt, u.buf + SL_ETH_HDR + SL_IPV4_HDR,
	       SL_UDP_HDR + payload);
	out.buf[SL_ETH_HDR] = (uint8_t)(0x40 | (5 + opt_words));
	wbe16(out.buf + SL_ETH_HDR + 2, (uint16_t)ip_len);
	refix(out.buf, out.len);
	free(u.buf);
	return out;
}

static struct replay_seed arp_seed(int reply)
{
	struct replay_seed out;
	int n;

	out.buf = malloc(SL_ETH_MIN);
	if (out.buf == NULL)
		abort();
	n = reply ? sl_arp_reply(out.buf, SL_ETH_MIN, &ep_dst, &ep_src)
		  : sl_arp_request(out.buf, SL_ETH_MIN, &ep_src, ep_dst.ip);
	if (n < 0)
		abort();
	out.len = (size_t)n;
	return out;
}

static size_t make_seeds(struct replay_seed *s)
{
	size_t n = 0;

	s[n++] = udp_seed(0, 0, 0);
	s[n++] = udp_seed(1, 0, 0);
	s[n++] = udp_seed(64, 0, 0);
	s[n++] = udp_seed(97, 0, 1); /* UDP checksum omitted */
	s[n++] = udp_seed(1472, 0, 0);
	s[n++] = udp_seed(1472, 1, 0); /* offload, as the NIC completed it */
	s[n++] = udp_seed(8972, 0, 0);
	s[n++] = options_seed(40, 1);
	s[n++] = options_seed(200, 10); /* IHL 15, the most */
	s[n++] = arp_seed(0);
	s[n++] = arp_seed(1);
	s[n] = udp_seed(100, 0, 0); /* IPv6 ethertype: not ours */
	wbe16(s[n++].buf + 12, 0x86dd);
	s[n] = udp_seed(100, 0, 0); /* TCP: not ours */
	s[n].buf[SL_ETH_HDR + 9] = 6;
	refix(s[n].buf, s[n].len);
	n++;
	return n;
}

/* ---- patches ---- */

/* Every value of one byte, checksums refixed. */
static void byte_sweep(const struct replay_seed *s, uint8_t *w, size_t off)
{
	if (off >= s->len)
		return;
	for (unsigned v = 0; v < 256; v++) {
		memcpy(w, s->buf, s->len);
		w[off] = (uint8_t)v;
		refix(w, s->len);
		replay_run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* A 16-bit big-endian field set to edge values around its own. */
static void patch16(const struct replay_seed *s, uint8_t *w, size_t off)
{
	uint16_t v;

	if (off + 2 > s->len)
		return;
	v = be16(s->buf + off);
	{
		const uint16_t vals[] = {0,
					 1,
					 7,
					 8,
					 19,
					 20,
					 27,
					 28,
					 (uint16_t)(v - 1),
					 (uint16_t)(v + 1),
					 (uint16_t)(v - 8),
					 (uint16_t)(v + 8),
					 (uint16_t)(v / 2),
					 (uint16_t)(v * 2),
					 (uint16_t)(s->len - SL_ETH_HDR),
					 (uint16_t)(s->len - SL_ETH_HDR + 1),
					 (uint16_t)(s->len - SL_ETH_HDR - 1),
					 0x7fff,
					 0x8000,
					 0xffff};

		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			memcpy(w, s->buf, s->len);
			wbe16(w + off, vals[i]);
			refix(w, s->len);
			replay_run(w, s->len);
		}
	}
	memcpy(w, s->buf, s->len);
}

static void field_patches(const struct replay_seed *s, uint8_t *w)
{
	size_t ihl;

	/* Ethertype. */
	{
		static const uint16_t types[] = {0x0800, 0x0806, 0x86dd, 0x8100, 0x88a8, 0, 0xffff};

		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			memcpy(w, s->buf, s->len);
			wbe16(w + 12, types[i]);
			refix(w, s->len);
			replay_run(w, s->len);
		}
		memcpy(w, s->buf, s->len);
	}
	if (be16(s->buf + 12) == SL_ETHERTYPE_ARP) {
		for (size_t off = SL_ETH_HDR; off < SL_ETH_HDR + 8; off++)
			byte_sweep(s, w, off); /* hardware, protocol, lengths, op */
		return;
	}
	if (be16(s->buf + 12) != SL_ETHERTYPE_IPV4)
		return;
	byte_sweep(s, w, SL_ETH_HDR);	  /* version / IHL */
	byte_sweep(s, w, SL_ETH_HDR + 6); /* flags, offset high bits */
	byte_sweep(s, w, SL_ETH_HDR + 7); /* offset low bits */
	byte_sweep(s, w, SL_ETH_HDR + 9); /* protocol */
	patch16(s, w, SL_ETH_HDR + 2);	  /* total length */
	ihl = (size_t)(s->buf[SL_ETH_HDR] & 0xf) * 4;
	patch16(s, w, SL_ETH_HDR + ihl + 4); /* UDP length */
	/* The UDP checksum itself: wrong values, and zero (omitted). */
	if (SL_ETH_HDR + ihl + SL_UDP_HDR <= s->len) {
		for (unsigned i = 0; i < 18; i++) {
			memcpy(w, s->buf, s->len);
			wbe16(w + SL_ETH_HDR + ihl + 6,
			      (uint16_t)(i < 16 ? be16(s->buf + SL_ETH_HDR + ihl + 6) ^ (1u << i)
						: (i == 16 ? 0 : 0xffff)));
			replay_run(w, s->len);
		}
		memcpy(w, s->buf, s->len);
	}
}

/* The input as a MAC string: well formed, in either case, cut short, and
 * ending in a NUL with bytes after it (found by libFuzzer: the target must
 * read the string, not the input, up to the NUL). */
static void mac_strings(void)
{
	static const char *const in[] = {"02:ab:cd:ef:01:23", "02:AB:CD:EF:01:23",
					 "02:ab:cd:ef:01:2",  "02:ab:cd:ef:01:234",
					 "02:ab:cd:ef:01:2g", "02-ab-cd-ef-01-23"};
	uint8_t buf[32];

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		size_t n = strlen(in[i]);

		replay_run((const uint8_t *)in[i], n);
		memcpy(buf, in[i], n);
		memcpy(buf + n, "\0\0`@\0\0\354\233", 8);
		replay_run(buf, n + 8);
	}
}

static int accepts(const struct replay_seed *s)
{
	struct sl_pkt p;
	int rc = sl_encap_parse(s->buf, s->len, 0, &p);

	if (rc < 0)
		fprintf(stderr, "fuzz_encap_replay: %s\n", sl_err_msg());
	return rc < 0 ? rc : 0;
}

static const struct replay_target target = {
    .name = "fuzz_encap_replay",
    .ext = "pkt",
    .rng_seed = 0xe4ca9,
    .make_seeds = make_seeds,
    .accepts = accepts,
    .refix = refix,
    .patches = field_patches,
    .extra = mac_strings,
    .hdr_len = SL_ENCAP_HDR,
    .dense_len = 1600,
    .flip_budget = 3000,
    .damage_rounds = 1500,
};

int main(int argc, char **argv)
{
	return replay_main(&target, argc, argv);
}
