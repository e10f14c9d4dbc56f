/* Fuzz target for the batch codec.
 *
 * Two properties per input:
 *  1. The input as a batch: decode_hdr, verify and decode never read outside
 *     it, agree with each other, fail only with the documented errors (and a
 *     message), and anything decode accepts is well formed and survives
 *     encode -> decode with the same records and caller fields.
 *  2. The input with its two CRCs recomputed, checked as in 1: random bytes
 *     almost never carry valid checksums, and this lets the fuzzer reach the
 *     length, LZ4 and record checks that sit behind them.
 *  3. The input as records: cut into length-prefixed records, it encodes and
 *     decodes back to the same bytes, whether LZ4 or raw.
 * A failed property aborts, which libFuzzer and the replay driver report. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"

#define FUZZ_RAW_MAX (256u << 10)
#define FUZZ_REC_MAX (64u << 10)

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_batch: %s:%d: CHECK(%s) failed; last error: %s\n",   \
				__FILE__, __LINE__, #c, sl_err_msg());                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const struct sl_batch_limits fuzz_lim = {
    .max_raw_bytes = FUZZ_RAW_MAX,
    .max_record_bytes = FUZZ_REC_MAX,
};

static uint8_t raw[FUZZ_RAW_MAX];
static uint8_t raw2[FUZZ_RAW_MAX];
static uint8_t enc[SL_BATCH_HDR_SIZE + FUZZ_RAW_MAX];

/* The fields a caller sets survive an encode. */
static void check_caller_fields(const struct sl_batch_hdr *a, const struct sl_batch_hdr *b)
{
	CHECK(memcmp(a->cluster_id, b->cluster_id, sizeof(a->cluster_id)) == 0);
	CHECK(a->stream_id == b->stream_id && a->epoch == b->epoch);
	CHECK(a->base_lsn == b->base_lsn && a->position == b->position);
	CHECK(a->prev_crc == b->prev_crc && a->leader_ts_ns == b->leader_ts_ns);
}

/* Records of an accepted raw payload: exactly record_count, all within limit. */
static void check_records(const uint8_t *r, uint32_t len, uint32_t count)
{
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t n = 0, rlen;
	int rc;

	sl_rec_iter_init(&it, r, len);
	while ((rc = sl_rec_next(&it, &rec, &rlen)) == 1) {
		CHECK(rlen <= FUZZ_REC_MAX);
		CHECK(rec >= r && rec + rlen <= r + len);
		n++;
	}
	CHECK(rc == 0);
	CHECK(n == count);
}

/* Encode `len` raw bytes under `h`, decode the result, compare. */
static void check_reencode(const struct sl_batch_hdr *h, const uint8_t *r, uint32_t len)
{
	struct sl_batch_hdr e = *h, d;
	int n, m;

	n = sl_batch_encode(&e, r, len, h->record_count, enc, sl_batch_bound(len));
	CHECK(n >= SL_BATCH_HDR_SIZE && (size_t)n <= sl_batch_bound(len));
	CHECK(((e.flags & SL_BATCH_F_LZ4) != 0) == (e.stored_len < len));
	m = sl_batch_decode(enc, (size_t)n, &fuzz_lim, raw2, sizeof(raw2), &d);
	CHECK(m >= 0 && (uint32_t)m == len);
	CHECK(memcmp(raw2, r, len) == 0);
	CHECK(d.raw_len == len && d.record_count == h->record_count);
	check_caller_fields(h, &d);
	check_caller_fields(&e, &d);
	CHECK(e.hdr_crc == d.hdr_crc && e.payload_crc == d.payload_crc);
}

/* Decode into a heap block of exactly raw_len bytes, so that ASan sees any
 * write (or record-walk read) past what the header declared. */
static int decode_exact(const uint8_t *data, size_t size, uint32_t raw_len, struct sl_batch_hdr *h)
{
	uint8_t *out = malloc(raw_len ? raw_len : 1);
	int rc;

	CHECK(out != NULL);
	rc = sl_batch_decode(data, size, &fuzz_lim, out, raw_len, h);
	if (rc >= 0)
		memcpy(raw, out, (size_t)rc);
	free(out);
	return rc;
}

/* Property 1. */
static void check_as_batch(const uint8_t *data, size_t size)
{
	struct sl_batch_hdr h, hv, hd;
	int hr, vr, dr;

	sl_err_clear();
	hr = sl_batch_decode_hdr(data, size, &fuzz_lim, &h);
	CHECK(hr == 0 || hr == -EBADMSG || hr == -EMSGSIZE);
	CHECK(hr == 0 || sl_err_msg()[0] != '\0');
	vr = sl_batch_verify(data, size, &fuzz_lim, &hv);
	if (hr < 0) {
		dr = sl_batch_decode(data, size, &fuzz_lim, raw, sizeof(raw), &hd);
		CHECK(vr == hr && dr == hr);
		return;
	}
	CHECK(h.raw_len <= FUZZ_RAW_MAX);
	dr = decode_exact(data, size, h.raw_len, &hd);
	CHECK(vr == -EBADMSG || (vr > 0 && (size_t)vr == SL_BATCH_HDR_SIZE + h.stored_len));
	CHECK(vr <= 0 || (size_t)vr <= size);
	if (vr < 0) {
		CHECK(dr == vr);
		return;
	}
	CHECK(dr == -EBADMSG || dr == -EMSGSIZE || (dr >= 0 && (uint32_t)dr == h.raw_len));
	if (dr < 0)
		return;
	check_caller_fields(&hd, &hv);
	CHECK(hd.raw_len == hv.raw_len && hd.record_count == hv.record_count);
	CHECK(hd.flags == hv.flags && hd.stored_len == hv.stored_len);
	CHECK(hd.hdr_crc == hv.hdr_crc && hd.payload_crc == hv.payload_crc);
	check_records(raw, hd.raw_len, hd.record_count);
	/* A buffer one byte short is refused before anything is written. */
	if (hd.raw_len > 0)
		CHECK(sl_batch_decode(data, size, &fuzz_lim, raw2, hd.raw_len - 1, &hv) == -ENOSPC);
	check_reencode(&hd, raw, hd.raw_len);
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

/* Property 2: payload CRC over what is present, then the header CRC. */
static void check_refixed(const uint8_t *data, size_t size)
{
	uint8_t *w;
	size_t stored;

	if (size < SL_BATCH_HDR_SIZE)
		return;
	w = malloc(size);
	CHECK(w != NULL);
	memcpy(w, data, size);
	stored = rd32(w + 64);
	if (stored > size - SL_BATCH_HDR_SIZE)
		stored = size - SL_BATCH_HDR_SIZE;
	wr32(w + 68, sl_crc32c(0, w + SL_BATCH_HDR_SIZE, stored));
	wr32(w + 92, sl_crc32c(0, w, 92));
	check_as_batch(w, size);
	free(w);
}

/* Property 3: the first byte picks a record size scale, then the input is
 * cut into records whose lengths come from the bytes themselves. */
static void check_as_records(const uint8_t *data, size_t size)
{
	struct sl_batch_builder b;
	struct sl_batch_hdr h = {0};
	size_t off = 1;
	uint32_t scale;

	if (size == 0)
		return;
	scale = 1u + (data[0] & 0x3f) * 4u;
	sl_batch_builder_init(&b, raw, sizeof(raw));
	while (off < size) {
		uint32_t want = (uint32_t)data[off] % scale;
		uint32_t len = want < size - off - 1 ? want : (uint32_t)(size - off - 1);

		if (sl_batch_builder_add(&b, data + off + 1, len) < 0)
			break;
		off += 1 + len;
	}
	h.base_lsn = 1 + size;
	h.epoch = data[0];
	h.record_count = b.count;
	check_reencode(&h, raw, (uint32_t)b.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_as_batch(data, size);
	check_refixed(data, size);
	check_as_records(data, size);
	return 0;
}
