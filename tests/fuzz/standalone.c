/* Replay driver for fuzz_batch without libFuzzer (gcc builds, CI).
 *
 * With file arguments it runs the target on each file (a corpus entry or a
 * crash reproducer). Without, it runs a deterministic set: valid batches from
 * the encoder, then mutations of each: every truncation, bit flips, random
 * byte damage, and patched lengths, flags and record prefixes with the CRCs
 * recomputed so that the checks behind the checksums are reached. Every input
 * is handed over in an exactly-sized heap block so ASan sees any over-read.
 * `--write-seeds DIR` stores the valid batches as a libFuzzer seed corpus. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long n_inputs;
static uint64_t rng = 0x5eed;

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

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute payload CRC (over what is present) and header CRC. */
static void refix(uint8_t *b, size_t len)
{
	size_t stored = rd32(b + 64);

	if (stored > len - SL_BATCH_HDR_SIZE)
		stored = len - SL_BATCH_HDR_SIZE;
	wr32(b + 68, sl_crc32c(0, b + SL_BATCH_HDR_SIZE, stored));
	wr32(b + 92, sl_crc32c(0, b, 92));
}

/* ---- seeds ---- */

struct seed {
	uint8_t *buf;
	size_t len;
};

static struct seed make_seed(enum sl_wl_kind kind, uint32_t count, uint32_t min, uint32_t max,
			     uint64_t s)
{
	struct seed out = {0};
	size_t cap = (size_t)count * (SL_REC_PREFIX + max);
	uint8_t *rawbuf = malloc(cap ? cap : 1), *rec = malloc(max ? max : 1);
	struct sl_batch_builder b;
	struct sl_batch_hdr h = {0};
	struct sl_wl wl;
	int n;

	if (rawbuf == NULL || rec == NULL)
		abort();
	sl_wl_init(&wl, kind, s);
	sl_batch_builder_init(&b, rawbuf, cap);
	for (uint32_t i = 0; i < count; i++) {
		uint32_t len = min + below(max - min + 1);

		sl_wl_fill(&wl, rec, len);
		if (sl_batch_builder_add(&b, rec, len) < 0)
			abort();
	}
	for (int i = 0; i < 16; i++)
		h.cluster_id[i] = (uint8_t)(s + (uint64_t)i);
	h.stream_id = s;
	h.epoch = 3;
	h.base_lsn = 1 + 100 * s;
	h.position = 4096 * s;
	h.prev_crc = (uint32_t)sl_rng_next(&rng);
	h.leader_ts_ns = sl_rng_next(&rng);
	out.buf = malloc(sl_batch_bound(b.len));
	if (out.buf == NULL)
		abort();
	n = sl_batch_encode(&h, rawbuf, b.len, b.count, out.buf, sl_batch_bound(b.len));
	if (n < 0) {
		fprintf(stderr, "fuzz_batch_replay: seed encode: %s\n", sl_err_msg());
		abort();
	}
	out.len = (size_t)n;
	free(rawbuf);
	free(rec);
	return out;
}

static size_t make_seeds(struct seed *s)
{
	size_t n = 0;

	s[n++] = make_seed(SL_WL_TEXT, 0, 0, 0, 1);	    /* empty */
	s[n++] = make_seed(SL_WL_RANDOM, 1, 1, 1, 2);	    /* one byte */
	s[n++] = make_seed(SL_WL_TEXT, 12, 0, 80, 3);	    /* small, LZ4 */
	s[n++] = make_seed(SL_WL_RANDOM, 5, 20, 90, 4);	    /* small, raw */
	s[n++] = make_seed(SL_WL_TEXT, 200, 0, 0, 5);	    /* empty records */
	s[n++] = make_seed(SL_WL_TEXT, 64, 1024, 1024, 6);  /* 64 KiB, LZ4 */
	s[n++] = make_seed(SL_WL_RANDOM, 16, 100, 4096, 7); /* raw, mixed sizes */
	s[n++] = make_seed(SL_WL_TEXT, 2, 30000, 65536, 8); /* large records */
	return n;
}

/* ---- mutations ---- */

static void truncations(const struct seed *s)
{
	size_t step = s->len <= 4096 ? 1 : s->len / 1024;

	for (size_t len = 0; len < s->len; len += (len < 128 || len + 64 > s->len) ? 1 : step)
		run(s->buf, len);
}

static void bit_flips(const struct seed *s, uint8_t *w)
{
	size_t bits = s->len * 8;
	size_t step = s->len <= 1024 ? 1 : bits / 1500;

	for (size_t bit = 0; bit < bits; bit += bit < SL_BATCH_HDR_SIZE * 8 ? 1 : step) {
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		run(w, s->len);
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* Run the seed with one u32 patched and the CRCs refixed; w is scratch. */
static void patch_run(const struct seed *s, uint8_t *w, size_t off, uint32_t val)
{
	memcpy(w, s->buf, s->len);
	wr32(w + off, val);
	refix(w, s->len);
	run(w, s->len);
	memcpy(w, s->buf, s->len);
}

/* Length fields patched to edge values. */
static void length_patches(const struct seed *s, uint8_t *w)
{
	static const size_t fields[] = {48, 52, 64}; /* record_count, raw_len, stored_len */
	static const uint32_t fixed[] = {0,
					 1,
					 0x7fffffffu,
					 0x80000000u,
					 0xffffffffu,
					 256u << 10,
					 (256u << 10) + 1,
					 16u << 20,
					 (16u << 20) + 1};

	for (size_t f = 0; f < 3; f++) {
		uint32_t v = rd32(s->buf + fields[f]);

		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			patch_run(s, w, fields[f], fixed[i]);
		patch_run(s, w, fields[f], v - 1);
		patch_run(s, w, fields[f], v + 1);
		patch_run(s, w, fields[f], v + 4);
		patch_run(s, w, fields[f], v * 2);
		patch_run(s, w, fields[f], v / 2);
		patch_run(s, w, fields[f], (uint32_t)s->len);
	}
}

/* version/flags, reserved words, base_lsn: format checks behind the CRC. */
static void format_patches(const struct seed *s, uint8_t *w)
{
	patch_run(s, w, 4, 0x00000002u); /* version 2, no flags */
	patch_run(s, w, 4, 0x00010002u); /* version 2, LZ4 */
	patch_run(s, w, 4, 0x00020001u); /* an unknown flag */
	patch_run(s, w, 4, 0x80000001u);
	patch_run(s, w, 4, 0x00000001u); /* LZ4 flag cleared */
	patch_run(s, w, 4, 0x00010001u); /* LZ4 flag set */
	patch_run(s, w, 76, 1);		 /* reserved words */
	patch_run(s, w, 88, 0xffffffffu);
	patch_run(s, w, 40, 0); /* base_lsn halves: 0, and ranges that wrap */
	patch_run(s, w, 44, 0);
	patch_run(s, w, 40, 0xffffffffu);
	patch_run(s, w, 44, 0xffffffffu);
}

/* In a raw-stored batch the record prefixes are in plain sight: patch them. */
static void prefix_patches(const struct seed *s, uint8_t *w)
{
	size_t end = s->len, off = SL_BATCH_HDR_SIZE;

	if ((s->buf[6] | s->buf[7] << 8) & SL_BATCH_F_LZ4)
		return;
	for (int i = 0; off + 4 <= end && i < 64; i++) {
		uint32_t v = rd32(s->buf + off);

		patch_run(s, w, off, 0);
		patch_run(s, w, off, v - 1);
		patch_run(s, w, off, v + 1);
		patch_run(s, w, off, 0xffffffffu);
		patch_run(s, w, off, (64u << 10) + 1);		 /* over the fuzz record limit */
		patch_run(s, w, off, (uint32_t)(end - off));	 /* runs to the end + 4 */
		patch_run(s, w, off, (uint32_t)(end - off - 4)); /* swallows the rest */
		off += 4 + (size_t)v;
	}
}

/* Random damage: a few bytes set, with and without the CRCs refixed (the
 * refixed ones feed corrupt LZ4 blocks to the decompressor). */
static void random_damage(const struct seed *s, uint8_t *w, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		int hits = 1 + (int)below(8);

		memcpy(w, s->buf, s->len);
		for (int k = 0; k < hits && s->len > 0; k++)
			w[below((uint32_t)s->len)] = (uint8_t)sl_rng_next(&rng);
		if (r & 1 && s->len >= SL_BATCH_HDR_SIZE)
			refix(w, s->len);
		run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* One seed's header on another's payload, and two seeds back to back. */
static void splices(const struct seed *a, const struct seed *b)
{
	size_t len = a->len + b->len;
	uint8_t *w = malloc(len);

	if (w == NULL)
		abort();
	memcpy(w, a->buf, a->len);
	memcpy(w + a->len, b->buf, b->len);
	run(w, len);
	if (a->len >= SL_BATCH_HDR_SIZE && b->len >= SL_BATCH_HDR_SIZE) {
		memcpy(w, a->buf, SL_BATCH_HDR_SIZE);
		memcpy(w + SL_BATCH_HDR_SIZE, b->buf + SL_BATCH_HDR_SIZE,
		       b->len - SL_BATCH_HDR_SIZE);
		refix(w, b->len);
		run(w, b->len);
	}
	free(w);
}

static int replay_seeds(void)
{
	struct seed s[16];
	size_t n = make_seeds(s);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t *w = malloc(s[i].len);
		uint8_t *rawbuf = malloc((size_t)1 << 20); /* seeds stay far below */
		struct sl_batch_hdr h;

		if (w == NULL || rawbuf == NULL)
			abort();
		/* The seeds themselves must be accepted, or the mutations prove little. */
		if (sl_batch_decode(s[i].buf, s[i].len, NULL, rawbuf, (size_t)1 << 20, &h) < 0) {
			fprintf(stderr, "fuzz_batch_replay: seed %zu rejected: %s\n", i,
				sl_err_msg());
			bad = 1;
		}
		memcpy(w, s[i].buf, s[i].len);
		run(s[i].buf, s[i].len);
		truncations(&s[i]);
		bit_flips(&s[i], w);
		length_patches(&s[i], w);
		format_patches(&s[i], w);
		prefix_patches(&s[i], w);
		random_damage(&s[i], w, s[i].len > 16384 ? 300 : 1500);
		for (size_t j = 0; j < n; j++)
			splices(&s[i], &s[j]);
		free(rawbuf);
		free(w);
	}
	for (size_t i = 0; i < n; i++)
		free(s[i].buf);
	printf("fuzz_batch_replay: %lu inputs from %zu seeds\n", n_inputs, n);
	return bad;
}

static int write_seeds(const char *dir)
{
	struct seed s[16];
	size_t n = make_seeds(s);

	for (size_t i = 0; i < n; i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed-%02zu.batch", dir, i);
		f = fopen(path, "wb");
		if (f == NULL || fwrite(s[i].buf, 1, s[i].len, f) != s[i].len || fclose(f) != 0) {
			fprintf(stderr, "fuzz_batch_replay: writing %s: %s\n", path,
				strerror(errno));
			return 1;
		}
		free(s[i].buf);
	}
	printf("fuzz_batch_replay: wrote %zu seeds to %s\n", n, dir);
	return 0;
}

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "fuzz_batch_replay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
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

	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2]);
	if (argc == 1)
		return replay_seeds();
	for (int i = 1; i < argc; i++)
		rc |= replay_file(argv[i]);
	printf("fuzz_batch_replay: %lu inputs from files\n", n_inputs);
	return rc;
}
