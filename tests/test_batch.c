/* Batch codec: layout, round trips, and a decoder that refuses every damaged,
 * truncated or oversized input with an error code and no out-of-bounds access.
 * Inputs handed to the decoder are copied into exactly-sized heap blocks so
 * that ASan catches any read past what "arrived". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/workload.h"

/* ---- helpers ---- */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
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

/* Recompute the checksums of enc[0..len) after patching a field, so that the
 * checks behind them run. The payload CRC covers what is there. */
static void refix(uint8_t *enc, size_t len)
{
	size_t stored = rd32(enc + 64);

	if (stored > len - SL_BATCH_HDR_SIZE)
		stored = len - SL_BATCH_HDR_SIZE;
	wr32(enc + 68, sl_crc32c(0, enc + SL_BATCH_HDR_SIZE, stored));
	wr32(enc + 92, sl_crc32c(0, enc, 92));
}

static struct sl_batch_hdr sample_hdr(uint64_t base_lsn)
{
	struct sl_batch_hdr h = {0};

	for (int i = 0; i < 16; i++)
		h.cluster_id[i] = (uint8_t)(0xc0 + i);
	h.stream_id = 0x1122334455667788ull;
	h.epoch = 42;
	h.base_lsn = base_lsn;
	h.position = 0x0000100000000200ull;
	h.prev_crc = 0xfeedf00du;
	h.leader_ts_ns = 1700000000123456789ull;
	return h;
}

/* A raw payload, its records and its encoding. */
struct built {
	uint8_t *raw;
	size_t raw_len;
	uint32_t count;
	uint8_t *enc;
	size_t enc_len;
	struct sl_batch_hdr h;
};

/* `n` records with sizes from `sizes` (cycled), contents from workload `kind`. */
static struct built build(enum sl_wl_kind kind, const uint32_t *sizes, size_t nsizes, uint32_t n,
			  uint64_t seed)
{
	struct built b = {0};
	struct sl_batch_builder bb;
	struct sl_wl wl;
	size_t cap = 0;
	uint8_t *rec;
	uint32_t max = 0;

	for (uint32_t i = 0; i < n; i++) {
		cap += SL_REC_PREFIX + sizes[i % nsizes];
		max = sizes[i % nsizes] > max ? sizes[i % nsizes] : max;
	}
	b.raw = malloc(cap ? cap : 1);
	rec = malloc(max ? max : 1);
	assert_non_null(b.raw);
	assert_non_null(rec);
	sl_wl_init(&wl, kind, seed);
	sl_batch_builder_init(&bb, b.raw, cap);
	for (uint32_t i = 0; i < n; i++) {
		sl_wl_fill(&wl, rec, sizes[i % nsizes]);
		assert_int_equal(sl_batch_builder_add(&bb, rec, sizes[i % nsizes]), 0);
	}
	free(rec);
	assert_int_equal(bb.len, cap);
	b.raw_len = bb.len;
	b.count = bb.count;
	b.h = sample_hdr(1000 + seed);
	b.enc = malloc(sl_batch_bound(b.raw_len));
	assert_non_null(b.enc);
	int rc = sl_batch_encode(&b.h, b.raw, b.raw_len, b.count, b.enc, sl_batch_bound(b.raw_len));
	assert_true(rc >= SL_BATCH_HDR_SIZE);
	b.enc_len = (size_t)rc;
	return b;
}

static void built_free(struct built *b)
{
	free(b->raw);
	free(b->enc);
}

/* A heap copy of exactly `len` bytes (at least 1 allocated, never read past len). */
static uint8_t *exact_copy(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

/* decode(enc[0..len)) into an exactly raw_cap-sized buffer; returns rc. */
static int decode_exact(const uint8_t *enc, size_t len, const struct sl_batch_limits *lim,
			size_t raw_cap, struct sl_batch_hdr *h)
{
	uint8_t *in = exact_copy(enc, len);
	uint8_t *raw = malloc(raw_cap ? raw_cap : 1);
	struct sl_batch_hdr tmp;
	int rc;

	assert_non_null(raw);
	rc = sl_batch_decode(in, len, lim, raw, raw_cap, h ? h : &tmp);
	free(raw);
	free(in);
	return rc;
}

static void assert_hdr_equal(const struct sl_batch_hdr *a, const struct sl_batch_hdr *b)
{
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->flags, b->flags);
	assert_memory_equal(a->cluster_id, b->cluster_id, 16);
	assert_int_equal(a->stream_id, b->stream_id);
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->base_lsn, b->base_lsn);
	assert_int_equal(a->record_count, b->record_count);
	assert_int_equal(a->raw_len, b->raw_len);
	assert_int_equal(a->position, b->position);
	assert_int_equal(a->stored_len, b->stored_len);
	assert_int_equal(a->payload_crc, b->payload_crc);
	assert_int_equal(a->prev_crc, b->prev_crc);
	assert_int_equal(a->leader_ts_ns, b->leader_ts_ns);
	assert_int_equal(a->hdr_crc, b->hdr_crc);
}

/* Decode into an exact buffer and compare bytes and header with what was built. */
static void assert_roundtrip(const struct built *b)
{
	uint8_t *in = exact_copy(b->enc, b->enc_len);
	uint8_t *raw = malloc(b->raw_len ? b->raw_len : 1);
	struct sl_batch_hdr h;
	int rc;

	assert_non_null(raw);
	assert_int_equal(sl_batch_verify(in, b->enc_len, NULL, &h), (int)b->enc_len);
	rc = sl_batch_decode(in, b->enc_len, &sl_batch_default_limits, raw, b->raw_len, &h);
	assert_int_equal(rc, (int)b->raw_len);
	if (b->raw_len)
		assert_memory_equal(raw, b->raw, b->raw_len);
	assert_hdr_equal(&h, &b->h);
	assert_int_equal(h.record_count, b->count);
	free(raw);
	free(in);
}

static const uint32_t small_text_sizes[] = {13, 40, 7, 90, 0, 120, 33};

/* ---- layout ---- */

static void test_header_layout(void **state)
{
	static const uint32_t sizes[] = {200};
	struct built b = build(SL_WL_TEXT, sizes, 1, 20, 5);
	const uint8_t *e = b.enc;

	(void)state;
	assert_memory_equal(e, "SLB1", 4);
	assert_int_equal(rd32(e + 0), SL_BATCH_MAGIC);
	assert_int_equal(e[4] | e[5] << 8, SL_BATCH_VERSION);
	assert_int_equal(e[6] | e[7] << 8, SL_BATCH_F_LZ4);
	for (int i = 0; i < 16; i++)
		assert_int_equal(e[8 + i], 0xc0 + i);
	assert_int_equal(rd64(e + 24), 0x1122334455667788ull);
	assert_int_equal(rd64(e + 32), 42);
	assert_int_equal(rd64(e + 40), 1005);
	assert_int_equal(rd32(e + 48), 20);
	assert_int_equal(rd32(e + 52), 20 * 204);
	assert_int_equal(rd64(e + 56), 0x0000100000000200ull);
	assert_int_equal(rd32(e + 64), b.enc_len - SL_BATCH_HDR_SIZE);
	assert_int_equal(rd32(e + 68), sl_crc32c(0, e + 96, b.enc_len - 96));
	assert_int_equal(rd32(e + 72), 0xfeedf00du);
	assert_int_equal(rd32(e + 76), 0);
	assert_int_equal(rd64(e + 80), 1700000000123456789ull);
	assert_int_equal(rd32(e + 88), 0);
	assert_int_equal(rd32(e + 92), sl_crc32c(0, e, 92));
	/* encode reported what it wrote */
	assert_int_equal(b.h.version, SL_BATCH_VERSION);
	assert_int_equal(b.h.raw_len, 20 * 204);
	assert_int_equal(b.h.stored_len, b.enc_len - 96);
	assert_int_equal(b.h.hdr_crc, rd32(e + 92));
	/* and the payload is a plain LZ4 block of the raw records */
	uint8_t *raw = malloc(b.raw_len);
	assert_int_equal(LZ4_decompress_safe((const char *)e + 96, (char *)raw,
					     (int)(b.enc_len - 96), (int)b.raw_len),
			 (int)b.raw_len);
	assert_memory_equal(raw, b.raw, b.raw_len);
	free(raw);
	built_free(&b);
}

static void test_default_limits(void **state)
{
	(void)state;
	assert_int_equal(sl_batch_default_limits.max_record_bytes, 1u << 20);
	assert_int_equal(sl_batch_default_limits.max_raw_bytes, 16u << 20);
	assert_int_equal(sl_batch_bound(0), SL_BATCH_HDR_SIZE);
	assert_int_equal(sl_batch_bound(1000), SL_BATCH_HDR_SIZE + 1000);
}

/* ---- round trips ---- */

static void test_roundtrip_empty(void **state)
{
	struct built b = build(SL_WL_TEXT, small_text_sizes, 1, 0, 1);
	struct sl_batch_hdr h;

	(void)state;
	assert_int_equal(b.enc_len, SL_BATCH_HDR_SIZE);
	assert_int_equal(b.h.flags, 0);
	assert_int_equal(b.h.stored_len, 0);
	assert_int_equal(b.h.record_count, 0);
	assert_roundtrip(&b);
	/* No raw buffer is needed for an empty batch. */
	assert_int_equal(sl_batch_decode(b.enc, b.enc_len, NULL, NULL, 0, &h), 0);
	built_free(&b);
}

static void test_roundtrip_one_byte(void **state)
{
	static const uint32_t one[] = {1};
	struct built b = build(SL_WL_RANDOM, one, 1, 1, 2);

	(void)state;
	assert_int_equal(b.raw_len, 5);
	assert_int_equal(b.h.flags, 0);
	assert_int_equal(b.enc_len, SL_BATCH_HDR_SIZE + 5);
	assert_memory_equal(b.enc + 96, b.raw, 5);
	assert_roundtrip(&b);
	built_free(&b);
}

static void test_roundtrip_many_small(void **state)
{
	struct built b = build(SL_WL_TEXT, small_text_sizes, 7, 5000, 3);

	(void)state;
	assert_int_equal(b.count, 5000);
	assert_roundtrip(&b);
	built_free(&b);
}

static void test_roundtrip_large_records(void **state)
{
	static const uint32_t sizes[] = {1u << 20, 1, (1u << 20) - 1, 0, 777777};
	struct built t = build(SL_WL_TEXT, sizes, 5, 5, 4);
	struct built r = build(SL_WL_RANDOM, sizes, 5, 5, 5);

	(void)state;
	assert_int_equal(t.h.flags, SL_BATCH_F_LZ4);
	assert_int_equal(r.h.flags, 0);
	assert_roundtrip(&t);
	assert_roundtrip(&r);
	built_free(&t);
	built_free(&r);
}

/* One record over the record limit: encode takes it, the decoder refuses it. */
static void test_record_over_limit(void **state)
{
	static const uint32_t sizes[] = {(1u << 20) + 1};
	struct built b = build(SL_WL_TEXT, sizes, 1, 1, 6);
	struct sl_batch_limits lim = {.max_raw_bytes = 16u << 20, .max_record_bytes = 1000};
	static const uint32_t small[] = {500, 1001, 20};
	struct built s = build(SL_WL_RANDOM, small, 3, 3, 7);

	(void)state;
	assert_int_equal(decode_exact(b.enc, b.enc_len, NULL, b.raw_len, NULL), -EMSGSIZE);
	/* 1521 payload bytes in 3 records pass the header's average check; the
	 * record walk finds the 1001-byte one. */
	assert_int_equal(decode_exact(s.enc, s.enc_len, &lim, s.raw_len, NULL), -EMSGSIZE);
	assert_non_null(strstr(sl_err_msg(), "is 1001 bytes, limit 1000"));
	lim.max_record_bytes = 1001;
	assert_int_equal(decode_exact(s.enc, s.enc_len, &lim, s.raw_len, NULL), (int)s.raw_len);
	built_free(&b);
	built_free(&s);
}

static void test_incompressible_stored_raw(void **state)
{
	static const uint32_t sizes[] = {1024};
	struct built b = build(SL_WL_RANDOM, sizes, 1, 64, 8);

	(void)state;
	assert_int_equal(b.h.flags & SL_BATCH_F_LZ4, 0);
	assert_int_equal(b.h.stored_len, b.raw_len);
	assert_int_equal(b.enc_len, SL_BATCH_HDR_SIZE + b.raw_len);
	assert_memory_equal(b.enc + SL_BATCH_HDR_SIZE, b.raw, b.raw_len);
	assert_roundtrip(&b);
	built_free(&b);
}

static void test_text_compressed(void **state)
{
	static const uint32_t sizes[] = {1024};
	struct built b = build(SL_WL_TEXT, sizes, 1, 64, 9);

	(void)state;
	assert_int_equal(b.h.flags, SL_BATCH_F_LZ4);
	/* WAL-like text should shrink at least 1.5x. */
	assert_true(b.h.stored_len * 3 < b.raw_len * 2);
	assert_roundtrip(&b);
	built_free(&b);
}

/* LZ4's acceleration: any gives a batch every reader decodes to the same
 * records, a higher one no smaller than the default's; out of range refused. */
static void test_encode_accel(void **state)
{
	static const uint32_t sizes[] = {1024};
	struct built b = build(SL_WL_TEXT, sizes, 1, 64, 9);
	uint8_t *out = malloc(sl_batch_bound(b.raw_len)), *raw = malloc(b.raw_len);
	struct sl_batch_hdr h = b.h, d;
	int len;

	(void)state;
	assert_non_null(out);
	assert_non_null(raw);
	len =
	    sl_batch_encode_accel(&h, b.raw, b.raw_len, b.count, out, sl_batch_bound(b.raw_len), 8);
	assert_true(len > SL_BATCH_HDR_SIZE);
	assert_int_equal(h.flags, SL_BATCH_F_LZ4);
	assert_true(h.stored_len >= b.h.stored_len);
	assert_int_equal(sl_batch_decode(out, (size_t)len, NULL, raw, b.raw_len, &d),
			 (int)b.raw_len);
	assert_memory_equal(raw, b.raw, b.raw_len);
	assert_int_equal(
	    sl_batch_encode_accel(&h, b.raw, b.raw_len, b.count, out, sl_batch_bound(b.raw_len), 0),
	    -EINVAL);
	assert_int_equal(sl_batch_encode_accel(&h, b.raw, b.raw_len, b.count, out,
					       sl_batch_bound(b.raw_len), SL_BATCH_ACCEL_MAX + 1),
			 -EINVAL);
	free(out);
	free(raw);
	built_free(&b);
}

/* Encoding is deterministic: the same input gives the same bytes. */
static void test_encode_deterministic(void **state)
{
	struct built a = build(SL_WL_TEXT, small_text_sizes, 7, 300, 10);
	struct built b = build(SL_WL_TEXT, small_text_sizes, 7, 300, 10);

	(void)state;
	assert_int_equal(a.enc_len, b.enc_len);
	assert_memory_equal(a.enc, b.enc, a.enc_len);
	built_free(&a);
	built_free(&b);
}

/* prev_crc chains batches; caller fields survive encode and decode. */
static void test_chain_fields_preserved(void **state)
{
	static const uint32_t sizes[] = {64};
	struct built b[3];
	uint32_t prev = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		b[i] = build(SL_WL_TEXT, sizes, 1, 10, 20);
		b[i].h.prev_crc = prev;
		b[i].h.base_lsn = 1 + 10 * (uint64_t)i;
		b[i].h.position = 4096 * (uint64_t)i;
		b[i].h.epoch = 7 + (uint64_t)i;
		assert_int_equal(sl_batch_encode(&b[i].h, b[i].raw, b[i].raw_len, b[i].count,
						 b[i].enc, sl_batch_bound(b[i].raw_len)),
				 (int)b[i].enc_len);
		prev = b[i].h.hdr_crc;
	}
	for (int i = 0; i < 3; i++) {
		struct sl_batch_hdr h;

		assert_int_equal(decode_exact(b[i].enc, b[i].enc_len, NULL, b[i].raw_len, &h),
				 (int)b[i].raw_len);
		assert_hdr_equal(&h, &b[i].h);
		assert_int_equal(h.prev_crc, i == 0 ? 0 : b[i - 1].h.hdr_crc);
		assert_int_equal(h.base_lsn, 1 + 10 * (uint64_t)i);
		assert_int_equal(h.position, 4096 * (uint64_t)i);
		assert_int_equal(h.epoch, 7 + (uint64_t)i);
	}
	for (int i = 0; i < 3; i++)
		built_free(&b[i]);
}

/* verify reports one batch's length when more bytes follow it. */
static void test_back_to_back(void **state)
{
	struct built a = build(SL_WL_TEXT, small_text_sizes, 7, 30, 11);
	struct built b = build(SL_WL_RANDOM, small_text_sizes, 7, 30, 12);
	size_t len = a.enc_len + b.enc_len;
	uint8_t *buf = malloc(len);
	struct sl_batch_hdr h;
	uint8_t *raw = malloc(b.raw_len);

	(void)state;
	memcpy(buf, a.enc, a.enc_len);
	memcpy(buf + a.enc_len, b.enc, b.enc_len);
	assert_int_equal(sl_batch_verify(buf, len, NULL, &h), (int)a.enc_len);
	assert_int_equal(sl_batch_decode(buf + a.enc_len, b.enc_len, NULL, raw, b.raw_len, &h),
			 (int)b.raw_len);
	assert_memory_equal(raw, b.raw, b.raw_len);
	free(raw);
	free(buf);
	built_free(&a);
	built_free(&b);
}

/* ---- damaged input ---- */

static void check_every_truncation(const struct built *b)
{
	for (size_t len = 0; len < b->enc_len; len++) {
		uint8_t *in = exact_copy(b->enc, len);
		struct sl_batch_hdr h;

		assert_int_equal(decode_exact(b->enc, len, NULL, b->raw_len, NULL), -EBADMSG);
		assert_int_equal(sl_batch_verify(in, len, NULL, &h), -EBADMSG);
		/* The header alone is fine once all 96 bytes are there. */
		assert_int_equal(sl_batch_decode_hdr(in, len, NULL, &h),
				 len < SL_BATCH_HDR_SIZE ? -EBADMSG : 0);
		free(in);
	}
}

static void test_every_truncation(void **state)
{
	static const uint32_t sizes[] = {200, 333, 517};
	struct built t = build(SL_WL_TEXT, small_text_sizes, 7, 40, 13);
	struct built r = build(SL_WL_RANDOM, sizes, 3, 10, 14);

	(void)state;
	assert_int_equal(t.h.flags, SL_BATCH_F_LZ4);
	assert_int_equal(r.h.flags, 0);
	check_every_truncation(&t);
	check_every_truncation(&r);
	built_free(&t);
	built_free(&r);
}

static void check_bit_flips(const struct built *b, size_t stride)
{
	uint8_t *e = exact_copy(b->enc, b->enc_len);
	size_t bits = b->enc_len * 8;

	for (size_t bit = 0; bit < bits; bit += (bit < SL_BATCH_HDR_SIZE * 8 ? 1 : stride)) {
		e[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(decode_exact(e, b->enc_len, NULL, b->raw_len, NULL), -EBADMSG);
		e[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* The last bit, whatever the stride. */
	e[b->enc_len - 1] ^= 0x80;
	assert_int_equal(decode_exact(e, b->enc_len, NULL, b->raw_len, NULL), -EBADMSG);
	e[b->enc_len - 1] ^= 0x80;
	assert_int_equal(decode_exact(e, b->enc_len, NULL, b->raw_len, NULL), (int)b->raw_len);
	free(e);
}

static void test_every_bit_flip_small(void **state)
{
	struct built t = build(SL_WL_TEXT, small_text_sizes, 7, 12, 15);
	struct built r = build(SL_WL_RANDOM, small_text_sizes, 7, 5, 16);

	(void)state;
	assert_int_equal(t.h.flags, SL_BATCH_F_LZ4);
	assert_int_equal(r.h.flags, 0);
	check_bit_flips(&t, 1);
	check_bit_flips(&r, 1);
	built_free(&t);
	built_free(&r);
}

static void test_bit_flips_large(void **state)
{
	static const uint32_t sizes[] = {1024, 3000, 17};
	struct built t = build(SL_WL_TEXT, sizes, 3, 200, 17);

	(void)state;
	check_bit_flips(&t, 97); /* every header bit, then a spread over the payload */
	built_free(&t);
}

static void test_payload_crc_message(void **state)
{
	static const uint32_t sizes[] = {100};
	struct built b = build(SL_WL_TEXT, sizes, 1, 3, 18);
	char want[64];

	(void)state;
	b.enc[b.enc_len - 1] ^= 1;
	assert_int_equal(decode_exact(b.enc, b.enc_len, NULL, b.raw_len, NULL), -EBADMSG);
	snprintf(want, sizeof(want), "batch at lsn %llu: payload crc 0x%08x != computed",
		 (unsigned long long)b.h.base_lsn, b.h.payload_crc);
	assert_non_null(strstr(sl_err_msg(), want));
	built_free(&b);
}

/* Patch one u32 field, refix the CRCs and expect `want` from decode. */
static void expect_patched32(const struct built *b, size_t off, uint32_t v,
			     const struct sl_batch_limits *lim, size_t raw_cap, int want)
{
	uint8_t *e = exact_copy(b->enc, b->enc_len);

	wr32(e + off, v);
	refix(e, b->enc_len);
	assert_int_equal(decode_exact(e, b->enc_len, lim, raw_cap, NULL), want);
	free(e);
}

static void test_oversized_header_lengths(void **state)
{
	static const uint32_t sizes[] = {300, 50, 1000};
	struct built t = build(SL_WL_TEXT, sizes, 3, 30, 19);
	struct built r = build(SL_WL_RANDOM, sizes, 3, 30, 20);
	struct sl_batch_limits tight = {.max_raw_bytes = (uint32_t)t.raw_len - 1,
					.max_record_bytes = 1u << 20};
	struct sl_batch_limits huge = {.max_raw_bytes = UINT32_MAX, .max_record_bytes = UINT32_MAX};
	size_t cap = t.raw_len + 64; /* room, so only the length checks can refuse */

	(void)state;
	/* raw_len: over the caller's limit, over the format's, off by one */
	assert_int_equal(decode_exact(t.enc, t.enc_len, &tight, cap, NULL), -EMSGSIZE);
	expect_patched32(&t, 52, UINT32_MAX, NULL, cap, -EMSGSIZE);
	expect_patched32(&t, 52, SL_BATCH_RAW_MAX + 1, &huge, cap, -EMSGSIZE);
	expect_patched32(&t, 52, (uint32_t)t.raw_len + 1, NULL, cap, -EBADMSG);
	expect_patched32(&t, 52, (uint32_t)t.raw_len - 1, NULL, cap, -EBADMSG);
	expect_patched32(&r, 52, (uint32_t)r.raw_len + 1, NULL, cap, -EBADMSG);
	/* stored_len: beyond what arrived, at/above raw_len for lz4, != raw_len raw */
	expect_patched32(&t, 64, UINT32_MAX, NULL, cap, -EBADMSG);
	expect_patched32(&t, 64, (uint32_t)(t.enc_len - 96) + 1, NULL, cap, -EBADMSG);
	expect_patched32(&t, 64, (uint32_t)t.raw_len, NULL, cap, -EBADMSG);
	expect_patched32(&t, 64, 0, NULL, cap, -EBADMSG);
	expect_patched32(&r, 64, (uint32_t)r.raw_len - 1, NULL, cap, -EBADMSG);
	expect_patched32(&r, 64, UINT32_MAX, NULL, cap, -EBADMSG);
	/* record_count: impossible, one too many, one too few, zero */
	expect_patched32(&t, 48, UINT32_MAX, &huge, cap, -EBADMSG);
	expect_patched32(&t, 48, t.count + 1, NULL, cap, -EBADMSG);
	expect_patched32(&t, 48, t.count - 1, NULL, cap, -EBADMSG);
	expect_patched32(&t, 48, 0, NULL, cap, -EBADMSG);
	expect_patched32(&r, 48, t.count + 1, NULL, cap, -EBADMSG);
	/* the caller's raw buffer is too small */
	assert_int_equal(decode_exact(t.enc, t.enc_len, NULL, t.raw_len - 1, NULL), -ENOSPC);
	built_free(&t);
	built_free(&r);
}

static void test_bad_format_fields(void **state)
{
	struct built t = build(SL_WL_TEXT, small_text_sizes, 7, 30, 21);
	uint8_t *e = exact_copy(t.enc, t.enc_len);
	struct sl_batch_hdr h;

	(void)state;
	expect_patched32(&t, 0, 0x32424c53u, NULL, t.raw_len, -EBADMSG); /* "SLB2" */
	expect_patched32(&t, 4, 2 | SL_BATCH_F_LZ4 << 16, NULL, t.raw_len, -EBADMSG);
	expect_patched32(&t, 4, 1 | 0x0003u << 16, NULL, t.raw_len, -EBADMSG);
	expect_patched32(&t, 4, 1 | 0x8001u << 16, NULL, t.raw_len, -EBADMSG);
	expect_patched32(&t, 76, 1, NULL, t.raw_len, -EBADMSG);
	expect_patched32(&t, 88, 0x80000000u, NULL, t.raw_len, -EBADMSG);
	/* LSN 0 does not exist, and the range must not wrap */
	wr64(e + 40, 0);
	refix(e, t.enc_len);
	assert_int_equal(sl_batch_decode_hdr(e, t.enc_len, NULL, &h), -EBADMSG);
	wr64(e + 40, UINT64_MAX - 5);
	refix(e, t.enc_len);
	assert_int_equal(sl_batch_decode_hdr(e, t.enc_len, NULL, &h), -EBADMSG);
	/* the LZ4 flag cleared on a compressed payload */
	memcpy(e, t.enc, t.enc_len);
	wr32(e + 4, 1);
	refix(e, t.enc_len);
	assert_int_equal(decode_exact(e, t.enc_len, NULL, t.raw_len, NULL), -EBADMSG);
	free(e);
	built_free(&t);
}

/* LZ4 payloads that decompress cleanly yet break the format. */
static void test_lz4_payload_mismatch(void **state)
{
	static const uint32_t sizes[] = {400};
	struct built r = build(SL_WL_RANDOM, sizes, 1, 4, 28);
	struct built t = build(SL_WL_TEXT, sizes, 1, 4, 29);
	size_t cap = (size_t)LZ4_compressBound((int)r.raw_len);
	uint8_t *e = malloc(SL_BATCH_HDR_SIZE + cap);
	uint8_t *raw = calloc(1, t.raw_len + 4);
	struct sl_batch_hdr h;
	int n;

	(void)state;
	/* A valid LZ4 block no smaller than the raw records: never encoded. */
	memcpy(e, r.enc, SL_BATCH_HDR_SIZE);
	n = LZ4_compress_default((const char *)r.raw, (char *)e + 96, (int)r.raw_len, (int)cap);
	assert_true(n >= (int)r.raw_len);
	wr32(e + 4, SL_BATCH_VERSION | SL_BATCH_F_LZ4 << 16);
	wr32(e + 64, (uint32_t)n);
	refix(e, SL_BATCH_HDR_SIZE + (size_t)n);
	assert_int_equal(decode_exact(e, SL_BATCH_HDR_SIZE + (size_t)n, NULL, cap, NULL), -EBADMSG);
	/* raw_len 4 more than the block yields, one more record: the zeroed tail
	 * of the buffer would parse as an empty record if the short output were
	 * not refused. */
	memcpy(e, t.enc, t.enc_len);
	wr32(e + 48, t.count + 1);
	wr32(e + 52, (uint32_t)t.raw_len + 4);
	refix(e, t.enc_len);
	assert_int_equal(sl_batch_decode(e, t.enc_len, NULL, raw, t.raw_len + 4, &h), -EBADMSG);
	assert_non_null(strstr(sl_err_msg(), "lz4 block expands to"));
	free(raw);
	free(e);
	built_free(&r);
	built_free(&t);
}

/* Rewrite a record prefix inside the payload, re-store it, refix the CRCs. */
static uint8_t *forge_prefix(const struct built *b, size_t raw_off, uint32_t v, size_t *len)
{
	uint8_t *raw = exact_copy(b->raw, b->raw_len);
	uint8_t *e = malloc(sl_batch_bound(b->raw_len));
	int stored = (int)b->raw_len;

	wr32(raw + raw_off, v);
	memcpy(e, b->enc, SL_BATCH_HDR_SIZE);
	if (b->h.flags & SL_BATCH_F_LZ4)
		stored = LZ4_compress_default((const char *)raw, (char *)e + 96, (int)b->raw_len,
					      (int)b->raw_len);
	else
		memcpy(e + 96, raw, b->raw_len);
	assert_true(stored > 0);
	*len = SL_BATCH_HDR_SIZE + (size_t)stored;
	wr32(e + 64, (uint32_t)stored);
	refix(e, *len);
	free(raw);
	return e;
}

/* want 0: some refusal; a misaligned walk reads record bytes as prefixes, so
 * whether it first overruns or first exceeds the limit depends on the data. */
static void expect_prefix(const struct built *b, size_t raw_off, uint32_t v, int want)
{
	size_t len;
	uint8_t *e = forge_prefix(b, raw_off, v, &len);
	int rc = decode_exact(e, len, NULL, b->raw_len, NULL);

	if (want != 0)
		assert_int_equal(rc, want);
	else
		assert_true(rc == -EBADMSG || rc == -EMSGSIZE);
	free(e);
}

static void test_oversized_record_prefixes(void **state)
{
	static const uint32_t sizes[] = {300, 50, 1000};
	struct built t = build(SL_WL_TEXT, sizes, 3, 30, 22);
	struct built r = build(SL_WL_RANDOM, sizes, 3, 30, 23);
	size_t last_t = t.raw_len - 4 - 1000, last_r = r.raw_len - 4 - 1000;

	(void)state;
	for (int i = 0; i < 2; i++) {
		const struct built *b = i == 0 ? &t : &r;
		size_t last = i == 0 ? last_t : last_r;

		expect_prefix(b, 0, 300, (int)b->raw_len); /* the forger itself is sound */
		expect_prefix(b, 0, UINT32_MAX, -EMSGSIZE);
		expect_prefix(b, 0, (1u << 20) + 1, -EMSGSIZE);
		expect_prefix(b, 0, 1u << 20, -EBADMSG);
		expect_prefix(b, 0, 301, 0);
		expect_prefix(b, 0, 299, 0);
		expect_prefix(b, 0, 0, 0);
		expect_prefix(b, last, 1001, -EBADMSG);
		expect_prefix(b, last, 999, -EBADMSG);
		expect_prefix(b, last, 0, -EBADMSG);
	}
	built_free(&t);
	built_free(&r);
}

/* ---- builder and encoder limits ---- */

static void test_builder_enospc(void **state)
{
	uint8_t buf[16];
	uint8_t before[16];
	struct sl_batch_builder b;

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	sl_batch_builder_init(&b, buf, 10);
	assert_int_equal(sl_batch_builder_add(&b, "abcdef", 6), 0);
	assert_int_equal(b.len, 10);
	assert_int_equal(b.count, 1);
	memcpy(before, buf, sizeof(buf));
	assert_int_equal(sl_batch_builder_add(&b, "", 0), -ENOSPC);
	assert_int_equal(b.len, 10);
	assert_int_equal(b.count, 1);
	assert_memory_equal(buf, before, sizeof(buf));
	assert_memory_equal(buf,
			    "\x06\x00\x00\x00"
			    "abcdef",
			    10);
	assert_int_equal(buf[10], 0xaa);

	sl_batch_builder_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.count, 0);
	assert_int_equal(sl_batch_builder_add(&b, "abcdefg", 7), -ENOSPC);
	assert_int_equal(sl_batch_builder_add(&b, "abc", 3), 0);
	assert_int_equal(sl_batch_builder_add(&b, "", 0), -ENOSPC);
	assert_int_equal(sl_batch_builder_add(&b, NULL, 5), -EINVAL);
	assert_int_equal(b.len, 7);
	assert_int_equal(b.count, 1);
}

static void test_encode_enospc(void **state)
{
	static const uint32_t sizes[] = {500};
	struct built t = build(SL_WL_TEXT, sizes, 1, 20, 24);
	struct built r = build(SL_WL_RANDOM, sizes, 1, 20, 25);

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct built *b = i == 0 ? &t : &r;
		struct sl_batch_hdr h = sample_hdr(b->h.base_lsn);
		struct sl_batch_hdr saved = h;
		uint8_t *out = malloc(b->enc_len);

		assert_int_equal(sl_batch_encode(&h, b->raw, b->raw_len, b->count, out, 95),
				 -ENOSPC);
		assert_int_equal(
		    sl_batch_encode(&h, b->raw, b->raw_len, b->count, out, b->enc_len - 1),
		    -ENOSPC);
		assert_hdr_equal(&h, &saved); /* unchanged on failure */
		/* Exactly enough room gives the same bytes as the full bound. */
		assert_int_equal(sl_batch_encode(&h, b->raw, b->raw_len, b->count, out, b->enc_len),
				 (int)b->enc_len);
		assert_memory_equal(out, b->enc, b->enc_len);
		free(out);
	}
	built_free(&t);
	built_free(&r);
}

static void test_encode_rejects_bad_input(void **state)
{
	struct built b = build(SL_WL_TEXT, small_text_sizes, 7, 10, 26);
	size_t cap = sl_batch_bound(b.raw_len);
	uint8_t *out = malloc(cap);
	struct sl_batch_hdr h = sample_hdr(1);

	(void)state;
	assert_int_equal(sl_batch_encode(&h, b.raw, b.raw_len, b.count + 1, out, cap), -EINVAL);
	assert_int_equal(sl_batch_encode(&h, b.raw, b.raw_len, b.count - 1, out, cap), -EINVAL);
	assert_int_equal(sl_batch_encode(&h, b.raw, b.raw_len - 1, b.count, out, cap), -EINVAL);
	assert_int_equal(sl_batch_encode(&h, NULL, b.raw_len, b.count, out, cap), -EINVAL);
	assert_int_equal(sl_batch_encode(NULL, b.raw, b.raw_len, b.count, out, cap), -EINVAL);
	assert_int_equal(sl_batch_encode(&h, b.raw, b.raw_len, b.count, NULL, cap), -EINVAL);
	/* Only the length is looked at, not the bytes behind it. */
	assert_int_equal(sl_batch_encode(&h, b.raw, SL_BATCH_RAW_MAX + 1u, 1, out, cap), -EMSGSIZE);
	h.base_lsn = 0;
	assert_int_equal(sl_batch_encode(&h, b.raw, b.raw_len, b.count, out, cap), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "base_lsn 0"));
	h.base_lsn = UINT64_MAX;
	assert_int_equal(sl_batch_encode(&h, b.raw, b.raw_len, b.count, out, cap), -EINVAL);
	free(out);
	built_free(&b);
}

/* ---- record iterator ---- */

static void test_rec_iter(void **state)
{
	struct built b = build(SL_WL_TEXT, small_text_sizes, 7, 50, 27);
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t len, n = 0;
	size_t off = 0;

	(void)state;
	sl_rec_iter_init(&it, b.raw, b.raw_len);
	while (sl_rec_next(&it, &rec, &len) == 1) {
		assert_int_equal(len, small_text_sizes[n % 7]);
		assert_ptr_equal(rec, b.raw + off + 4);
		off += 4 + len;
		n++;
	}
	assert_int_equal(n, 50);
	assert_int_equal(off, b.raw_len);
	assert_int_equal(sl_rec_next(&it, &rec, &len), 0);

	sl_rec_iter_init(&it, NULL, 0);
	assert_int_equal(sl_rec_next(&it, &rec, &len), 0);

	/* A prefix cut short, and a length past the end. */
	uint8_t *cut = exact_copy(b.raw, 4 + 13 + 2);
	sl_rec_iter_init(&it, cut, 4 + 13 + 2);
	assert_int_equal(sl_rec_next(&it, &rec, &len), 1);
	assert_int_equal(sl_rec_next(&it, &rec, &len), -EBADMSG);
	free(cut);
	cut = exact_copy(b.raw, 4 + 12);
	sl_rec_iter_init(&it, cut, 4 + 12);
	assert_int_equal(sl_rec_next(&it, &rec, &len), -EBADMSG);
	free(cut);
	built_free(&b);
}

/* A header encoded alone over an earlier payload is the header encode made:
 * same bytes, same fields; it checks what decoding would. */
static void test_encode_hdr_alone(void **state)
{
	static const uint32_t sizes[] = {300, 17};
	struct built b = build(SL_WL_TEXT, sizes, 2, 40, 9);
	struct sl_batch_hdr h = b.h, bad;
	uint8_t out[SL_BATCH_HDR_SIZE];

	(void)state;
	h.version = 0;
	h.hdr_crc = 0;
	assert_int_equal(sl_batch_encode_hdr(&h, NULL, out), (int)b.enc_len);
	assert_memory_equal(out, b.enc, SL_BATCH_HDR_SIZE);
	assert_hdr_equal(&h, &b.h);
	/* What decode would refuse, encode refuses, leaving *h alone. */
	bad = b.h;
	bad.flags = 0x8000;
	assert_int_equal(sl_batch_encode_hdr(&bad, NULL, out), -EINVAL);
	assert_int_equal(bad.flags, 0x8000);
	bad = b.h;
	bad.stored_len = bad.raw_len; /* LZ4 must be smaller than raw */
	assert_int_equal(sl_batch_encode_hdr(&bad, NULL, out), -EINVAL);
	bad = b.h;
	bad.base_lsn = 0;
	assert_int_equal(sl_batch_encode_hdr(&bad, NULL, out), -EINVAL);
	bad = b.h;
	bad.raw_len = 2u << 20;
	assert_int_equal(
	    sl_batch_encode_hdr(&bad, &(struct sl_batch_limits){1u << 20, 1u << 20}, out),
	    -EMSGSIZE);
	built_free(&b);
}

/* verify_crc takes the payload's CRC from the caller instead of reading it,
 * and still checks header and length. */
static void test_verify_crc(void **state)
{
	static const uint32_t sizes[] = {100};
	struct built b = build(SL_WL_RANDOM, sizes, 1, 10, 3);
	uint32_t crc = sl_crc32c(0, b.enc + SL_BATCH_HDR_SIZE, b.enc_len - SL_BATCH_HDR_SIZE);
	struct sl_batch_hdr h;

	(void)state;
	assert_int_equal(sl_batch_verify_crc(b.enc, b.enc_len, NULL, crc, &h), (int)b.enc_len);
	assert_hdr_equal(&h, &b.h);
	assert_int_equal(sl_batch_verify_crc(b.enc, b.enc_len, NULL, crc ^ 1, &h), -EBADMSG);
	/* The CRC covers exactly len - 96 bytes: a longer buffer is refused. */
	assert_int_equal(sl_batch_verify_crc(b.enc, b.enc_len + 1, NULL, crc, &h), -EBADMSG);
	b.enc[3] ^= 1; /* the header is still checked */
	assert_int_equal(sl_batch_verify_crc(b.enc, b.enc_len, NULL, crc, &h), -EBADMSG);
	built_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_hdr_alone),
	    cmocka_unit_test(test_verify_crc),
	    cmocka_unit_test(test_header_layout),
	    cmocka_unit_test(test_default_limits),
	    cmocka_unit_test(test_roundtrip_empty),
	    cmocka_unit_test(test_roundtrip_one_byte),
	    cmocka_unit_test(test_roundtrip_many_small),
	    cmocka_unit_test(test_roundtrip_large_records),
	    cmocka_unit_test(test_record_over_limit),
	    cmocka_unit_test(test_incompressible_stored_raw),
	    cmocka_unit_test(test_text_compressed),
	    cmocka_unit_test(test_encode_accel),
	    cmocka_unit_test(test_encode_deterministic),
	    cmocka_unit_test(test_chain_fields_preserved),
	    cmocka_unit_test(test_back_to_back),
	    cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_every_bit_flip_small),
	    cmocka_unit_test(test_bit_flips_large),
	    cmocka_unit_test(test_payload_crc_message),
	    cmocka_unit_test(test_oversized_header_lengths),
	    cmocka_unit_test(test_bad_format_fields),
	    cmocka_unit_test(test_lz4_payload_mismatch),
	    cmocka_unit_test(test_oversized_record_prefixes),
	    cmocka_unit_test(test_builder_enospc),
	    cmocka_unit_test(test_encode_enospc),
	    cmocka_unit_test(test_encode_rejects_bad_input),
	    cmocka_unit_test(test_rec_iter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
