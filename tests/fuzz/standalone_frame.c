/* Replay driver for fuzz_frame without libFuzzer (gcc builds, CI); replay.c
 * holds what every target's driver shares (command line, truncations and
 * extensions, bit flips, random damage, splices).
 *
 * Seeds: valid frames of every type from the encoder, with and without a MAC
 * trailer. Its own patches: header and body fields (lengths, version, type,
 * flags, NAK ranges) set to edge values with the CRC recomputed so that the
 * checks behind the checksum are reached. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/workload.h"

static uint8_t frag_src[SL_FRAME_MAX];

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr64(uint8_t *p, uint64_t v)
{
	replay_wr32(p, (uint32_t)v);
	replay_wr32(p + 4, (uint32_t)(v >> 32));
}

/* Recompute the CRC over whatever of the frame is present before the MAC
 * trailer the flags announce: a DATA fragment first, then the header (CRC
 * field zero) and the rest of the body. */
static void refix(uint8_t *b, size_t len)
{
	static const uint8_t zero[4];
	size_t mac = (b[6] & SL_FRAME_F_MAC) ? SL_FRAME_MAC_LEN : 0;
	size_t end = len >= SL_FRAME_HDR + mac ? len - mac : SL_FRAME_HDR, fixed = end;
	uint32_t crc = 0;

	if (len < SL_FRAME_HDR)
		return;
	if (b[5] == SL_FRAME_DATA && end >= SL_FRAME_DATA_PREFIX) {
		crc = sl_crc32c(0, b + SL_FRAME_DATA_PREFIX, end - SL_FRAME_DATA_PREFIX);
		fixed = SL_FRAME_DATA_PREFIX;
	}
	crc = sl_crc32c(crc, b, 60);
	crc = sl_crc32c(crc, zero, sizeof(zero));
	crc = sl_crc32c(crc, b + SL_FRAME_HDR, fixed - SL_FRAME_HDR);
	replay_wr32(b + 60, crc);
}

/* ---- seeds ---- */

static void fill_hdr(struct sl_frame *f, uint8_t type, uint16_t flags, uint64_t s)
{
	memset(f, 0, sizeof(*f));
	f->hdr.type = type;
	f->hdr.flags = flags;
	for (int i = 0; i < 16; i++)
		f->hdr.cluster_id[i] = (uint8_t)(s + (uint64_t)i);
	f->hdr.stream_id = s;
	f->hdr.epoch = 3 + s;
	f->hdr.sender = 1;
	f->hdr.receiver = 2;
	f->hdr.seq = replay_rand();
}

static struct replay_seed encode_seed(const struct sl_frame *f)
{
	struct replay_seed out;
	int n;

	out.buf = malloc(SL_FRAME_MAX);
	if (out.buf == NULL)
		abort();
	n = sl_frame_encode(f, out.buf, SL_FRAME_MAX);
	if (n < 0) {
		fprintf(stderr, "fuzz_frame_replay: seed encode: %s\n", sl_err_msg());
		abort();
	}
	out.len = (size_t)n;
	/* A MAC as a transport would fill it: decode must not care. */
	if (f->hdr.flags & SL_FRAME_F_MAC)
		for (size_t i = out.len - SL_FRAME_MAC_LEN; i < out.len; i++)
			out.buf[i] = (uint8_t)replay_rand();
	return out;
}

static struct replay_seed data_seed(uint16_t flags, uint32_t frag_len, uint32_t frag_off,
				    uint64_t s)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_DATA, flags, s);
	f.data.batch_pos = 4096 * s;
	f.data.frag_off = frag_off;
	f.data.batch_len = frag_off + frag_len + (uint32_t)replay_below(3000);
	f.data.commit_pos = replay_rand();
	f.data.leader_end = replay_rand();
	f.data.frag = frag_src + replay_below(64);
	f.data.frag_len = frag_len;
	return encode_seed(&f);
}

static struct replay_seed fixed_seed(uint8_t type, uint16_t flags, uint64_t s)
{
	struct sl_frame f;

	fill_hdr(&f, type, flags, s);
	switch (type) {
	case SL_FRAME_STATUS:
		f.status = (struct sl_frame_status){100, 90, 80, 200, 7, 11, 12, 13, 14};
		break;
	case SL_FRAME_NAK:
		f.nak = (struct sl_frame_nak){4096 * s, 4096 * s + 1};
		break;
	case SL_FRAME_VOTE_REQ:
		f.vreq = (struct sl_frame_vote_req){3 + s, 4096 * s, 77 * s, SL_VOTE_F_TRANSFER};
		break;
	case SL_FRAME_VOTE:
		f.vote = (struct sl_frame_vote){1, SL_VOTE_F_PRE, 2 + s, 4096 * s};
		break;
	case SL_FRAME_EPOCH_REQ:
		f.ereq = (struct sl_frame_epoch_req){2 + s, 8192 * s};
		break;
	case SL_FRAME_ELECT_NOW:
		f.enow = (struct sl_frame_elect_now){4096 * s, 2048 * s};
		break;
	case SL_FRAME_EPOCH_END:
		f.eend =
		    (struct sl_frame_epoch_end){2 + s, 4096 * s, 33 * s, (uint32_t)replay_rand()};
		break;
	case SL_FRAME_TREE_REQ:
		f.treq = (struct sl_frame_tree_req){1000 + s, 0, 7, s};
		break;
	case SL_FRAME_TREE:
		f.tree = (struct sl_frame_tree){1000 + s,      0,      SL_TREE_ROOT, SL_TREE_OK, 0,
						replay_rand(), 999 + s};
		break;
	case SL_FRAME_REPAIR_REQ:
		f.rreq = (struct sl_frame_repair_req){4096 * s, 1500};
		break;
	default:
		f.hb = (struct sl_frame_hb){4096 * s, 2048 * s, replay_rand()};
		break;
	}
	return encode_seed(&f);
}

static size_t make_seeds(struct replay_seed *s)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(frag_src); i++)
		frag_src[i] = (uint8_t)replay_rand();

	for (uint16_t mac = 0; mac <= SL_FRAME_F_MAC; mac++) {
		s[n++] = data_seed(mac, 1, 0, 1);   /* smallest DATA */
		s[n++] = data_seed(mac, 40, 96, 2); /* small, mid-batch */
		s[n++] = data_seed(mac, sl_frame_frag_max(1500, mac), 0, 3);
		s[n++] = data_seed(mac, sl_frame_frag_max(9000, mac), 8876, 4);
		s[n++] =
		    data_seed(mac, sl_frame_frag_max(UINT32_MAX, mac), 0, 5); /* SL_FRAME_MAX */
		s[n++] = fixed_seed(SL_FRAME_STATUS, mac, 6);
		s[n++] = fixed_seed(SL_FRAME_NAK, mac, 7);
		s[n++] = fixed_seed(SL_FRAME_HEARTBEAT, mac, 8);
		s[n++] = fixed_seed(SL_FRAME_VOTE_REQ, mac, 9);
		s[n++] = fixed_seed(SL_FRAME_VOTE, mac, 10);
		s[n++] = fixed_seed(SL_FRAME_EPOCH_REQ, mac, 11);
		s[n++] = fixed_seed(SL_FRAME_EPOCH_END, mac, 12);
		s[n++] = fixed_seed(SL_FRAME_ELECT_NOW, mac, 13);
		s[n++] = fixed_seed(SL_FRAME_TREE_REQ, mac, 14);
		s[n++] = fixed_seed(SL_FRAME_TREE, mac, 15);
		s[n++] = fixed_seed(SL_FRAME_REPAIR_REQ, mac, 16);
	}
	return n;
}

/* ---- patches ---- */

/* A 32-bit field of the frame set to edge values around its own, CRC refixed. */
static void patch32(const struct replay_seed *s, uint8_t *w, size_t off, uint32_t limit)
{
	uint32_t v = replay_rd32(s->buf + off);
	const uint32_t vals[] = {0,	      1,	   v - 1,	v + 1,
				 v - 32,      v + 32,	   v * 2,	v / 2,
				 limit - 1,   limit,	   limit + 1,	0x7fffffffu,
				 0x80000000u, 0xffffffffu, 0xffffffe0u, (uint32_t)s->len};

	if (off + 4 > s->len)
		return;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		memcpy(w, s->buf, s->len);
		replay_wr32(w + off, vals[i]);
		refix(w, s->len);
		replay_run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* body_len, and for DATA batch_len and frag_off, around their limits. */
static void length_patches(const struct replay_seed *s, uint8_t *w)
{
	patch32(s, w, 56, SL_FRAME_MAX - SL_FRAME_HDR);
	if (s->buf[5] != SL_FRAME_DATA)
		return;
	patch32(s, w, 72, (uint32_t)SL_FRAME_BATCH_MAX);
	/* frag_off's limit: where the fragment would end exactly at batch_len. */
	patch32(s, w, 76,
		replay_rd32(s->buf + 72) - (replay_rd32(s->buf + 56) - SL_FRAME_DATA_SUB));
}

/* Version, type and flags: every byte value / flag bit, CRC refixed. */
static void format_patches(const struct replay_seed *s, uint8_t *w)
{
	for (unsigned v = 0; v < 256; v++) {
		for (size_t off = 4; off <= 5; off++) {
			memcpy(w, s->buf, s->len);
			w[off] = (uint8_t)v;
			refix(w, s->len);
			replay_run(w, s->len);
		}
	}
	for (unsigned bit = 0; bit < 16; bit++) {
		memcpy(w, s->buf, s->len);
		wr16(w + 6, (uint16_t)((w[6] | w[7] << 8) ^ (1u << bit)));
		refix(w, s->len);
		replay_run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* NAK ranges: empty, reversed, extreme. */
static void nak_patches(const struct replay_seed *s, uint8_t *w)
{
	static const uint64_t r[][2] = {
	    {5, 5}, {6, 5}, {0, 0}, {0, 1}, {UINT64_MAX - 1, UINT64_MAX}, {UINT64_MAX, 0}};

	if (s->buf[5] != SL_FRAME_NAK)
		return;
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		memcpy(w, s->buf, s->len);
		wr64(w + 64, r[i][0]);
		wr64(w + 72, r[i][1]);
		refix(w, s->len);
		replay_run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* The election frames' narrow fields (VOTE_REQ flags, VOTE granted and
 * flags, EPOCH_END end_lsn) and reserved words at edge values, CRC refixed. */
static void election_patches(const struct replay_seed *s, uint8_t *w)
{
	static const uint32_t vals[] = {0, 1, 2, 3, 4, 0x80000000u, 0xffffffffu};
	size_t off[2];

	switch (s->buf[5]) {
	case SL_FRAME_VOTE_REQ:
		off[0] = 88, off[1] = 92;
		break;
	case SL_FRAME_VOTE:
		off[0] = 64, off[1] = 68;
		break;
	case SL_FRAME_EPOCH_END:
		off[0] = 80, off[1] = 92;
		break;
	default:
		return;
	}
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			memcpy(w, s->buf, s->len);
			replay_wr32(w + off[k], vals[i]);
			refix(w, s->len);
			replay_run(w, s->len);
		}
	memcpy(w, s->buf, s->len);
}

static void patches(const struct replay_seed *s, uint8_t *w)
{
	length_patches(s, w);
	format_patches(s, w);
	nak_patches(s, w);
	election_patches(s, w);
}

static int accepts(const struct replay_seed *s)
{
	struct sl_frame f;
	int rc = sl_frame_decode(s->buf, s->len, &f);

	if (rc < 0)
		fprintf(stderr, "fuzz_frame_replay: %s\n", sl_err_msg());
	return rc < 0 ? rc : 0;
}

static const struct replay_target target = {
    .name = "fuzz_frame_replay",
    .ext = "frame",
    .rng_seed = 0xf4a3e,
    .make_seeds = make_seeds,
    .accepts = accepts,
    .refix = refix,
    .patches = patches,
    .hdr_len = SL_FRAME_DATA_PREFIX,
    .dense_len = 1024,
    .flip_budget = 4000,
    .damage_rounds = 2000,
};

int main(int argc, char **argv)
{
	return replay_main(&target, argc, argv);
}
