/* Replay driver for fuzz_batch without libFuzzer (gcc builds, CI); replay.c
 * holds what every target's driver shares (command line, truncations, bit
 * flips, random damage, splices).
 *
 * Seeds: valid batches from the encoder (empty, one byte, small and large, LZ4
 * and raw). Its own patches: record counts, lengths, flags, reserved fields,
 * LSNs and record prefixes set to edge values with the CRCs recomputed so that
 * the checks behind the checksums are reached. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/workload.h"

static const struct replay_target target;

/* Recompute payload CRC (over what is present) and header CRC. */
static void refix(uint8_t *b, size_t len)
{
	size_t stored = replay_rd32(b + 64);

	if (stored > len - SL_BATCH_HDR_SIZE)
		stored = len - SL_BATCH_HDR_SIZE;
	replay_wr32(b + 68, sl_crc32c(0, b + SL_BATCH_HDR_SIZE, stored));
	replay_wr32(b + 92, sl_crc32c(0, b, 92));
}

/* ---- seeds ---- */

static struct replay_seed make_seed(enum sl_wl_kind kind, uint32_t count, uint32_t min,
				    uint32_t max, uint64_t s)
{
	struct replay_seed out = {0};
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
		uint32_t len = min + replay_below(max - min + 1);

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
	h.prev_crc = (uint32_t)replay_rand();
	h.leader_ts_ns = replay_rand();
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

static size_t make_seeds(struct replay_seed *s)
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

/* ---- patches ---- */

/* Length fields patched to edge values. */
static void length_patches(const struct replay_seed *s, uint8_t *w)
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
		uint32_t v = replay_rd32(s->buf + fields[f]);

		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			replay_patch32(&target, s, w, fields[f], fixed[i]);
		replay_patch32(&target, s, w, fields[f], v - 1);
		replay_patch32(&target, s, w, fields[f], v + 1);
		replay_patch32(&target, s, w, fields[f], v + 4);
		replay_patch32(&target, s, w, fields[f], v * 2);
		replay_patch32(&target, s, w, fields[f], v / 2);
		replay_patch32(&target, s, w, fields[f], (uint32_t)s->len);
	}
}

/* version/flags, reserved words, base_lsn: format checks behind the CRC. */
static void format_patches(const struct replay_seed *s, uint8_t *w)
{
	replay_patch32(&target, s, w, 4, 0x00000002u); /* version 2, no flags */
	replay_patch32(&target, s, w, 4, 0x00010002u); /* version 2, LZ4 */
	replay_patch32(&target, s, w, 4, 0x00020001u); /* an unknown flag */
	replay_patch32(&target, s, w, 4, 0x80000001u);
	replay_patch32(&target, s, w, 4, 0x00000001u); /* LZ4 flag cleared */
	replay_patch32(&target, s, w, 4, 0x00010001u); /* LZ4 flag set */
	replay_patch32(&target, s, w, 76, 1);	       /* reserved words */
	replay_patch32(&target, s, w, 88, 0xffffffffu);
	replay_patch32(&target, s, w, 40, 0); /* base_lsn halves: 0, and ranges that wrap */
	replay_patch32(&target, s, w, 44, 0);
	replay_patch32(&target, s, w, 40, 0xffffffffu);
	replay_patch32(&target, s, w, 44, 0xffffffffu);
}

/* In a raw-stored batch the record prefixes are in plain sight: patch them. */
static void prefix_patches(const struct replay_seed *s, uint8_t *w)
{
	size_t end = s->len, off = SL_BATCH_HDR_SIZE;

	if ((s->buf[6] | s->buf[7] << 8) & SL_BATCH_F_LZ4)
		return;
	for (int i = 0; off + 4 <= end && i < 64; i++) {
		uint32_t v = replay_rd32(s->buf + off);

		replay_patch32(&target, s, w, off, 0);
		replay_patch32(&target, s, w, off, v - 1);
		replay_patch32(&target, s, w, off, v + 1);
		replay_patch32(&target, s, w, off, 0xffffffffu);
		replay_patch32(&target, s, w, off,
			       (64u << 10) + 1); /* over the fuzz record limit */
		replay_patch32(&target, s, w, off, (uint32_t)(end - off)); /* runs to the end + 4 */
		replay_patch32(&target, s, w, off,
			       (uint32_t)(end - off - 4)); /* swallows the rest */
		off += 4 + (size_t)v;
	}
}

static void patches(const struct replay_seed *s, uint8_t *w)
{
	length_patches(s, w);
	format_patches(s, w);
	prefix_patches(s, w);
}

static int accepts(const struct replay_seed *s)
{
	size_t cap = (size_t)1 << 20; /* seeds stay far below */
	uint8_t *raw = malloc(cap);
	struct sl_batch_hdr h;
	int rc;

	if (raw == NULL)
		abort();
	rc = sl_batch_decode(s->buf, s->len, NULL, raw, cap, &h);
	if (rc < 0)
		fprintf(stderr, "fuzz_batch_replay: %s\n", sl_err_msg());
	free(raw);
	return rc < 0 ? rc : 0;
}

static const struct replay_target target = {
    .name = "fuzz_batch_replay",
    .ext = "batch",
    .rng_seed = 0x5eed,
    .make_seeds = make_seeds,
    .accepts = accepts,
    .refix = refix,
    .patches = patches,
    .hdr_len = SL_BATCH_HDR_SIZE,
    .dense_len = 1024,
    .flip_budget = 1500,
    .damage_rounds = 1500,
};

int main(int argc, char **argv)
{
	return replay_main(&target, argc, argv);
}
