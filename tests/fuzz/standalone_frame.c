/* Replay driver for fuzz_frame without libFuzzer (gcc builds, CI); the same
 * command line as standalone.c, which does this for fuzz_batch.
 *
 * With file arguments it runs the target on each file (a corpus entry or a
 * crash reproducer). Without, it runs a deterministic set: valid frames of
 * every type from the encoder, then mutations of each: every truncation and
 * extension, bit flips, random byte damage, splices, and header and body
 * fields patched to edge values with the CRC recomputed so that the checks
 * behind the checksum are reached. Every input is handed over in an
 * exactly-sized heap block so ASan sees any over-read.
 * `--write-seeds DIR` stores the valid frames as a libFuzzer seed corpus. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEEDS_MAX 32

static unsigned long n_inputs;
static uint64_t rng = 0xf4a3e;
static uint8_t frag_src[SL_FRAME_MAX];

static void run(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	n_inputs++;
}

static uint32_t below(uint32_t n)
{
	return (uint32_t)((sl_rng_next(&rng) >> 32) * n >> 32);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* Recompute the CRC over the header (CRC field zero) and whatever of the
 * body is present before the MAC trailer the flags announce. */
static void refix(uint8_t *b, size_t len)
{
	static const uint8_t zero[4];
	size_t mac = (b[6] & SL_FRAME_F_MAC) ? SL_FRAME_MAC_LEN : 0;
	size_t end = len >= SL_FRAME_HDR + mac ? len - mac : SL_FRAME_HDR;
	uint32_t crc;

	if (len < SL_FRAME_HDR)
		return;
	crc = sl_crc32c(0, b, 60);
	crc = sl_crc32c(crc, zero, sizeof(zero));
	crc = sl_crc32c(crc, b + SL_FRAME_HDR, end - SL_FRAME_HDR);
	wr32(b + 60, crc);
}

/* ---- seeds ---- */

struct seed {
	uint8_t *buf;
	size_t len;
};

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
	f->hdr.seq = sl_rng_next(&rng);
}

static struct seed encode_seed(const struct sl_frame *f)
{
	struct seed out;
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
			out.buf[i] = (uint8_t)sl_rng_next(&rng);
	return out;
}

static struct seed data_seed(uint16_t flags, uint32_t frag_len, uint32_t frag_off, uint64_t s)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_DATA, flags, s);
	f.data.batch_pos = 4096 * s;
	f.data.frag_off = frag_off;
	f.data.batch_len = frag_off + frag_len + (uint32_t)below(3000);
	f.data.commit_pos = sl_rng_next(&rng);
	f.data.leader_end = sl_rng_next(&rng);
	f.data.frag = frag_src + below(64);
	f.data.frag_len = frag_len;
	return encode_seed(&f);
}

static struct seed fixed_seed(uint8_t type, uint16_t flags, uint64_t s)
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
	default:
		f.hb = (struct sl_frame_hb){4096 * s, 2048 * s, sl_rng_next(&rng)};
		break;
	}
	return encode_seed(&f);
}

static size_t make_seeds(struct seed *s)
{
	size_t n = 0;

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
	}
	return n;
}

/* ---- mutations ---- */

static void truncations_and_extensions(const struct seed *s)
{
	size_t step = s->len <= 2048 ? 1 : s->len / 512;
	uint8_t *w = malloc(s->len + 64);

	if (w == NULL)
		abort();
	for (size_t len = 0; len < s->len; len += (len < 128 || len + 128 > s->len) ? 1 : step)
		run(s->buf, len);
	memcpy(w, s->buf, s->len);
	memset(w + s->len, 0, 64);
	for (size_t extra = 1; extra <= 64; extra *= 2)
		run(w, s->len + extra);
	free(w);
}

static void bit_flips(const struct seed *s, uint8_t *w)
{
	size_t bits = s->len * 8;
	size_t step = s->len <= 1024 ? 1 : bits / 4000;

	for (size_t bit = 0; bit < bits; bit += bit < SL_FRAME_DATA_PREFIX * 8 ? 1 : step) {
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		run(w, s->len);
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* A 32-bit field of the frame set to edge values around its own, CRC refixed. */
static void patch32(const struct seed *s, uint8_t *w, size_t off, uint32_t limit)
{
	uint32_t v = rd32(s->buf + off);
	const uint32_t vals[] = {0,	      1,	   v - 1,	v + 1,
				 v - 32,      v + 32,	   v * 2,	v / 2,
				 limit - 1,   limit,	   limit + 1,	0x7fffffffu,
				 0x80000000u, 0xffffffffu, 0xffffffe0u, (uint32_t)s->len};

	if (off + 4 > s->len)
		return;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		memcpy(w, s->buf, s->len);
		wr32(w + off, vals[i]);
		refix(w, s->len);
		run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* body_len, and for DATA batch_len and frag_off, around their limits. */
static void length_patches(const struct seed *s, uint8_t *w)
{
	patch32(s, w, 56, SL_FRAME_MAX - SL_FRAME_HDR);
	if (s->buf[5] != SL_FRAME_DATA)
		return;
	patch32(s, w, 72, (uint32_t)SL_FRAME_BATCH_MAX);
	/* frag_off's limit: where the fragment would end exactly at batch_len. */
	patch32(s, w, 76, rd32(s->buf + 72) - (rd32(s->buf + 56) - SL_FRAME_DATA_SUB));
}

/* Version, type and flags: every byte value / flag bit, CRC refixed. */
static void format_patches(const struct seed *s, uint8_t *w)
{
	for (unsigned v = 0; v < 256; v++) {
		for (size_t off = 4; off <= 5; off++) {
			memcpy(w, s->buf, s->len);
			w[off] = (uint8_t)v;
			refix(w, s->len);
			run(w, s->len);
		}
	}
	for (unsigned bit = 0; bit < 16; bit++) {
		memcpy(w, s->buf, s->len);
		wr16(w + 6, (uint16_t)((w[6] | w[7] << 8) ^ (1u << bit)));
		refix(w, s->len);
		run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* NAK ranges: empty, reversed, extreme. */
static void nak_patches(const struct seed *s, uint8_t *w)
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
		run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* Random damage: a few bytes set, with and without the CRC refixed. */
static void random_damage(const struct seed *s, uint8_t *w, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		int hits = 1 + (int)below(8);

		memcpy(w, s->buf, s->len);
		for (int k = 0; k < hits; k++)
			w[below((uint32_t)s->len)] = (uint8_t)sl_rng_next(&rng);
		if (r & 1)
			refix(w, s->len);
		run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* Two frames back to back (one datagram must be one frame), and one
 * frame's header on another's body with the CRC refixed. */
static void splices(const struct seed *a, const struct seed *b)
{
	size_t len = a->len + b->len;
	uint8_t *w = malloc(len);

	if (w == NULL)
		abort();
	memcpy(w, a->buf, a->len);
	memcpy(w + a->len, b->buf, b->len);
	run(w, len);
	memcpy(w, a->buf, SL_FRAME_HDR);
	memcpy(w + SL_FRAME_HDR, b->buf + SL_FRAME_HDR, b->len - SL_FRAME_HDR);
	refix(w, b->len);
	run(w, b->len);
	free(w);
}

static int replay_seeds(void)
{
	struct seed s[SEEDS_MAX];
	size_t n = make_seeds(s);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t *w = malloc(s[i].len);
		struct sl_frame f;

		if (w == NULL)
			abort();
		/* The seeds themselves must be accepted, or the mutations prove little. */
		if (sl_frame_decode(s[i].buf, s[i].len, &f) < 0) {
			fprintf(stderr, "fuzz_frame_replay: seed %zu rejected: %s\n", i,
				sl_err_msg());
			bad = 1;
		}
		memcpy(w, s[i].buf, s[i].len);
		run(s[i].buf, s[i].len);
		truncations_and_extensions(&s[i]);
		bit_flips(&s[i], w);
		length_patches(&s[i], w);
		format_patches(&s[i], w);
		nak_patches(&s[i], w);
		random_damage(&s[i], w, 2000);
		for (size_t j = 0; j < n; j++)
			splices(&s[i], &s[j]);
		free(w);
	}
	for (size_t i = 0; i < n; i++)
		free(s[i].buf);
	printf("fuzz_frame_replay: %lu inputs from %zu seeds\n", n_inputs, n);
	return bad;
}

static int write_seeds(const char *dir)
{
	struct seed s[SEEDS_MAX];
	size_t n = make_seeds(s);

	for (size_t i = 0; i < n; i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed-%02zu.frame", dir, i);
		f = fopen(path, "wb");
		if (f == NULL || fwrite(s[i].buf, 1, s[i].len, f) != s[i].len || fclose(f) != 0) {
			fprintf(stderr, "fuzz_frame_replay: writing %s: %s\n", path,
				strerror(errno));
			return 1;
		}
		free(s[i].buf);
	}
	printf("fuzz_frame_replay: wrote %zu seeds to %s\n", n, dir);
	return 0;
}

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "fuzz_frame_replay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 16384;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	run(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(frag_src); i++)
		frag_src[i] = (uint8_t)sl_rng_next(&rng);
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2]);
	if (argc == 1)
		return replay_seeds();
	for (int i = 1; i < argc; i++)
		rc |= replay_file(argv[i]);
	printf("fuzz_frame_replay: %lu inputs from files\n", n_inputs);
	return rc;
}
