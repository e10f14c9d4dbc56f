/* Batch codec; see include/shiplog/batch.h.
 *
 * Everything read from a buffer is untrusted until checked: lengths are
 * compared with what arrived and with the caller's limits before they are
 * used, and the payload is only ever decompressed by LZ4_decompress_safe into
 * a bounded buffer. Fields are moved with explicit little-endian helpers,
 * never by casting a struct over the bytes. */
#include "shiplog/batch.h"

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/le.h"

#include <errno.h>
#include <inttypes.h>
#include <lz4.h>
#include <string.h>

/* One LZ4 stream state per thread, reset cheaply for each batch:
 * LZ4_compress_default initialises a 16 KiB state on every call (a memset
 * of its hash table: about 10,000 instructions, more than compressing a
 * 1 KiB record). Each batch is still a block of its own (a new stream). */
static _Thread_local LZ4_stream_t lz4_state;
static _Thread_local int lz4_ready;

static int compress(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap, int accel)
{
	if (!lz4_ready) {
		LZ4_initStream(&lz4_state, sizeof(lz4_state));
		lz4_ready = 1;
	} else {
		LZ4_resetStream_fast(&lz4_state);
	}
	return LZ4_compress_fast_continue(&lz4_state, (const char *)raw, (char *)out, (int)raw_len,
					  (int)cap, accel);
}

/* Byte offsets of the header fields (the layout comment in batch.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_FLAGS = 6,
	OFF_CLUSTER = 8,
	OFF_STREAM = 24,
	OFF_EPOCH = 32,
	OFF_BASE_LSN = 40,
	OFF_COUNT = 48,
	OFF_RAW_LEN = 52,
	OFF_POSITION = 56,
	OFF_STORED_LEN = 64,
	OFF_PAYLOAD_CRC = 68,
	OFF_PREV_CRC = 72,
	OFF_RESERVED1 = 76,
	OFF_LEADER_TS = 80,
	OFF_RESERVED2 = 88,
	OFF_HDR_CRC = 92,
};
_Static_assert(OFF_HDR_CRC + 4 == SL_BATCH_HDR_SIZE, "batch header is 96 bytes");
/* Return values are int: the largest batch must fit. */
_Static_assert(SL_BATCH_RAW_MAX <= LZ4_MAX_INPUT_SIZE, "raw batches fit one LZ4 block");
_Static_assert((uint64_t)SL_BATCH_RAW_MAX + SL_BATCH_HDR_SIZE <= INT32_MAX, "lengths fit int");

const struct sl_batch_limits sl_batch_default_limits = {
    .max_raw_bytes = 16u << 20,
    .max_record_bytes = 1u << 20,
};

/* ---- builder ---- */

void sl_batch_builder_init(struct sl_batch_builder *b, uint8_t *raw, size_t cap)
{
	b->raw = raw;
	b->cap = raw ? cap : 0;
	b->len = 0;
	b->count = 0;
}

void sl_batch_builder_reset(struct sl_batch_builder *b)
{
	b->len = 0;
	b->count = 0;
}

int sl_batch_builder_add(struct sl_batch_builder *b, const void *rec, uint32_t len)
{
	/* No batch may exceed the format's ceiling, whatever the buffer. */
	size_t cap = b->cap < SL_BATCH_RAW_MAX ? b->cap : SL_BATCH_RAW_MAX;
	size_t room = cap > b->len ? cap - b->len : 0;

	if (len > 0 && rec == NULL)
		return sl_err_set(EINVAL, "batch builder: NULL record of %" PRIu32 " bytes", len);
	if (room < SL_REC_PREFIX || len > room - SL_REC_PREFIX || b->count == UINT32_MAX)
		return sl_err_set(ENOSPC,
				  "batch builder: record of %" PRIu32
				  " bytes does not fit (%zu of %zu bytes used, %" PRIu32
				  " records)",
				  len, b->len, cap, b->count);
	sl_le32_put(b->raw + b->len, len);
	if (len > 0)
		memcpy(b->raw + b->len + SL_REC_PREFIX, rec, len);
	b->len += SL_REC_PREFIX + (size_t)len;
	b->count++;
	return 0;
}

/* ---- records ---- */

/* Check that `count` records, each at most `max_rec` bytes, exactly fill
 * raw[0..raw_len). `bad` is the errno for a malformed layout. */
static int walk_records(const uint8_t *raw, uint32_t raw_len, uint32_t count, uint32_t max_rec,
			uint64_t lsn, int bad)
{
	uint32_t off = 0;

	for (uint32_t i = 0; i < count; i++) {
		if (raw_len - off < SL_REC_PREFIX)
			return sl_err_set(bad,
					  "batch at lsn %" PRIu64 ": record %" PRIu32 " of %" PRIu32
					  ": length prefix at offset %" PRIu32
					  " overruns raw_len %" PRIu32,
					  lsn, i, count, off, raw_len);
		uint32_t n = sl_le32_get(raw + off);

		off += SL_REC_PREFIX;
		if (n > max_rec)
			return sl_err_set(EMSGSIZE,
					  "batch at lsn %" PRIu64 ": record at lsn %" PRIu64
					  " is %" PRIu32 " bytes, limit %" PRIu32,
					  lsn, lsn + i, n, max_rec);
		if (n > raw_len - off)
			return sl_err_set(bad,
					  "batch at lsn %" PRIu64 ": record %" PRIu32
					  " length %" PRIu32 " overruns raw_len %" PRIu32
					  " (%" PRIu32 " bytes left)",
					  lsn, i, n, raw_len, raw_len - off);
		off += n;
	}
	if (off != raw_len)
		return sl_err_set(bad,
				  "batch at lsn %" PRIu64 ": %" PRIu32
				  " records end at offset %" PRIu32 ", raw_len is %" PRIu32,
				  lsn, count, off, raw_len);
	return 0;
}

void sl_rec_iter_init(struct sl_rec_iter *it, const uint8_t *raw, size_t raw_len)
{
	it->p = raw;
	it->end = raw_len > 0 ? raw + raw_len : raw; /* NULL + 0 is undefined */
}

int sl_rec_next(struct sl_rec_iter *it, const uint8_t **rec, uint32_t *len)
{
	size_t left = (size_t)(it->end - it->p);
	uint32_t n;

	if (left == 0)
		return 0;
	if (left < SL_REC_PREFIX)
		return sl_err_set(
		    EBADMSG, "record iterator: %zu trailing bytes, too short for a prefix", left);
	n = sl_le32_get(it->p);
	if (n > left - SL_REC_PREFIX)
		return sl_err_set(EBADMSG,
				  "record iterator: length %" PRIu32 " overruns %zu bytes left", n,
				  left - SL_REC_PREFIX);
	*rec = it->p + SL_REC_PREFIX;
	*len = n;
	it->p += SL_REC_PREFIX + (size_t)n;
	return 1;
}

/* ---- encode ---- */

size_t sl_batch_bound(size_t raw_len)
{
	/* The payload is stored raw whenever LZ4 would not shrink it. */
	return SL_BATCH_HDR_SIZE + raw_len;
}

/* Header fields except hdr_crc into out[0..92). */
static void hdr_write(uint8_t *out, const struct sl_batch_hdr *h)
{
	sl_le32_put(out + OFF_MAGIC, SL_BATCH_MAGIC);
	sl_le16_put(out + OFF_VERSION, h->version);
	sl_le16_put(out + OFF_FLAGS, h->flags);
	memcpy(out + OFF_CLUSTER, h->cluster_id, sizeof(h->cluster_id));
	sl_le64_put(out + OFF_STREAM, h->stream_id);
	sl_le64_put(out + OFF_EPOCH, h->epoch);
	sl_le64_put(out + OFF_BASE_LSN, h->base_lsn);
	sl_le32_put(out + OFF_COUNT, h->record_count);
	sl_le32_put(out + OFF_RAW_LEN, h->raw_len);
	sl_le64_put(out + OFF_POSITION, h->position);
	sl_le32_put(out + OFF_STORED_LEN, h->stored_len);
	sl_le32_put(out + OFF_PAYLOAD_CRC, h->payload_crc);
	sl_le32_put(out + OFF_PREV_CRC, h->prev_crc);
	sl_le32_put(out + OFF_RESERVED1, 0);
	sl_le64_put(out + OFF_LEADER_TS, h->leader_ts_ns);
	sl_le32_put(out + OFF_RESERVED2, 0);
}

static int encode_check(const struct sl_batch_hdr *h, const uint8_t *raw, size_t raw_len,
			uint32_t count, const uint8_t *out)
{
	if (h == NULL || out == NULL || (raw_len > 0 && raw == NULL))
		return sl_err_set(EINVAL, "batch encode: NULL %s",
				  h == NULL	? "header"
				  : out == NULL ? "output"
						: "raw payload");
	if (raw_len > SL_BATCH_RAW_MAX)
		return sl_err_set(EMSGSIZE,
				  "batch at lsn %" PRIu64 ": raw_len %zu over the format limit %u",
				  h->base_lsn, raw_len, SL_BATCH_RAW_MAX);
	if (h->base_lsn == 0 || count > UINT64_MAX - h->base_lsn)
		return sl_err_set(EINVAL,
				  "batch encode: base_lsn %" PRIu64 " with %" PRIu32
				  " records (LSNs start at 1 and must not wrap)",
				  h->base_lsn, count);
	/* Cheap (one step per record) and stops garbage from being sealed. */
	return walk_records(raw, (uint32_t)raw_len, count, UINT32_MAX, h->base_lsn, EINVAL);
}

int sl_batch_encode(struct sl_batch_hdr *h, const uint8_t *raw, size_t raw_len, uint32_t count,
		    uint8_t *out, size_t out_cap)
{
	return sl_batch_encode_accel(h, raw, raw_len, count, out, out_cap, 1);
}

int sl_batch_encode_accel(struct sl_batch_hdr *h, const uint8_t *raw, size_t raw_len,
			  uint32_t count, uint8_t *out, size_t out_cap, int accel)
{
	int rc = encode_check(h, raw, raw_len, count, out);
	size_t room = out_cap > SL_BATCH_HDR_SIZE ? out_cap - SL_BATCH_HDR_SIZE : 0;
	struct sl_batch_hdr t;
	uint8_t *payload;
	int stored = 0;

	if (rc < 0)
		return rc;
	if (accel < 1 || accel > SL_BATCH_ACCEL_MAX)
		return sl_err_set(EINVAL, "batch encode: LZ4 acceleration %d (1..%d)", accel,
				  SL_BATCH_ACCEL_MAX);
	if (out_cap < SL_BATCH_HDR_SIZE)
		return sl_err_set(ENOSPC, "batch at lsn %" PRIu64 ": output of %zu bytes < header",
				  h->base_lsn, out_cap);
	payload = out + SL_BATCH_HDR_SIZE;
	/* Capacity raw_len - 1: LZ4 gives up (0) unless it actually saves a byte. */
	if (raw_len > 1) {
		size_t cap = raw_len - 1 < room ? raw_len - 1 : room;

		stored = compress(raw, raw_len, payload, cap, accel);
	}
	t = *h;
	t.version = SL_BATCH_VERSION;
	t.flags = SL_BATCH_F_LZ4;
	if (stored <= 0) {
		/* Incompressible, or LZ4 ran out of room, so raw cannot fit either. */
		if (raw_len > room)
			return sl_err_set(
			    ENOSPC, "batch at lsn %" PRIu64 ": %zu payload bytes, room for %zu",
			    h->base_lsn, raw_len, room);
		if (raw_len > 0)
			memcpy(payload, raw, raw_len);
		stored = (int)raw_len;
		t.flags = 0;
	}
	t.record_count = count;
	t.raw_len = (uint32_t)raw_len;
	t.stored_len = (uint32_t)stored;
	t.payload_crc = sl_crc32c(0, payload, (size_t)stored);
	hdr_write(out, &t);
	t.hdr_crc = sl_crc32c(0, out, OFF_HDR_CRC);
	sl_le32_put(out + OFF_HDR_CRC, t.hdr_crc);
	*h = t;
	return SL_BATCH_HDR_SIZE + stored;
}

/* ---- decode ---- */

static int hdr_check_format(const uint8_t *p, const struct sl_batch_hdr *h);
static int hdr_check_lengths(const struct sl_batch_hdr *h, const struct sl_batch_limits *lim);

int sl_batch_encode_hdr(struct sl_batch_hdr *h, const struct sl_batch_limits *lim, uint8_t *out)
{
	struct sl_batch_hdr t = *h;
	int rc;

	if (lim == NULL)
		lim = &sl_batch_default_limits;
	t.version = SL_BATCH_VERSION;
	hdr_write(out, &t);
	rc = hdr_check_format(out, &t);
	if (rc == 0)
		rc = hdr_check_lengths(&t, lim);
	if (rc < 0)
		return sl_err_wrap(rc == -EMSGSIZE ? rc : -EINVAL, "batch header encode");
	t.hdr_crc = sl_crc32c(0, out, OFF_HDR_CRC);
	sl_le32_put(out + OFF_HDR_CRC, t.hdr_crc);
	*h = t;
	return SL_BATCH_HDR_SIZE + (int)t.stored_len;
}

static void hdr_read(const uint8_t *p, struct sl_batch_hdr *h)
{
	h->version = sl_le16_get(p + OFF_VERSION);
	h->flags = sl_le16_get(p + OFF_FLAGS);
	memcpy(h->cluster_id, p + OFF_CLUSTER, sizeof(h->cluster_id));
	h->stream_id = sl_le64_get(p + OFF_STREAM);
	h->epoch = sl_le64_get(p + OFF_EPOCH);
	h->base_lsn = sl_le64_get(p + OFF_BASE_LSN);
	h->record_count = sl_le32_get(p + OFF_COUNT);
	h->raw_len = sl_le32_get(p + OFF_RAW_LEN);
	h->position = sl_le64_get(p + OFF_POSITION);
	h->stored_len = sl_le32_get(p + OFF_STORED_LEN);
	h->payload_crc = sl_le32_get(p + OFF_PAYLOAD_CRC);
	h->prev_crc = sl_le32_get(p + OFF_PREV_CRC);
	h->leader_ts_ns = sl_le64_get(p + OFF_LEADER_TS);
	h->hdr_crc = sl_le32_get(p + OFF_HDR_CRC);
}

/* Fields a checksum cannot vouch for: the writer must have set them right. */
static int hdr_check_format(const uint8_t *p, const struct sl_batch_hdr *h)
{
	uint64_t lsn = h->base_lsn;
	uint32_t r1 = sl_le32_get(p + OFF_RESERVED1), r2 = sl_le32_get(p + OFF_RESERVED2);

	if (h->version != SL_BATCH_VERSION)
		return sl_err_set(EBADMSG, "batch at lsn %" PRIu64 ": version %u, want %u", lsn,
				  h->version, SL_BATCH_VERSION);
	if (h->flags & ~SL_BATCH_F_KNOWN)
		return sl_err_set(EBADMSG, "batch at lsn %" PRIu64 ": unknown flags 0x%04x", lsn,
				  h->flags & ~SL_BATCH_F_KNOWN);
	if (r1 != 0 || r2 != 0)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": reserved fields 0x%08" PRIx32
				  " 0x%08" PRIx32 " not zero",
				  lsn, r1, r2);
	if (lsn == 0 || h->record_count > UINT64_MAX - lsn)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": bad lsn range (%" PRIu32 " records)",
				  lsn, h->record_count);
	return 0;
}

/* Lengths: against the limits, against each other, against the record count. */
static int hdr_check_lengths(const struct sl_batch_hdr *h, const struct sl_batch_limits *lim)
{
	uint64_t lsn = h->base_lsn;
	uint32_t max_raw =
	    lim->max_raw_bytes < SL_BATCH_RAW_MAX ? lim->max_raw_bytes : SL_BATCH_RAW_MAX;
	uint64_t prefixes = (uint64_t)h->record_count * SL_REC_PREFIX;

	if (h->raw_len > max_raw)
		return sl_err_set(EMSGSIZE,
				  "batch at lsn %" PRIu64 ": raw_len %" PRIu32 " > limit %" PRIu32,
				  lsn, h->raw_len, max_raw);
	if ((h->flags & SL_BATCH_F_LZ4) && (h->stored_len == 0 || h->stored_len >= h->raw_len))
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": lz4 stored_len %" PRIu32
				  " not in 1..raw_len-1 (raw_len %" PRIu32 ")",
				  lsn, h->stored_len, h->raw_len);
	if (!(h->flags & SL_BATCH_F_LZ4) && h->stored_len != h->raw_len)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": raw batch stored_len %" PRIu32
				  " != raw_len %" PRIu32,
				  lsn, h->stored_len, h->raw_len);
	if (prefixes > h->raw_len || (h->record_count == 0 && h->raw_len != 0))
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": %" PRIu32
				  " records cannot fill raw_len %" PRIu32,
				  lsn, h->record_count, h->raw_len);
	if (h->raw_len - prefixes > (uint64_t)h->record_count * lim->max_record_bytes)
		return sl_err_set(EMSGSIZE,
				  "batch at lsn %" PRIu64 ": %" PRIu32
				  " records in raw_len %" PRIu32
				  " exceed the record limit %" PRIu32,
				  lsn, h->record_count, h->raw_len, lim->max_record_bytes);
	return 0;
}

int sl_batch_decode_hdr(const void *buf, size_t len, const struct sl_batch_limits *lim,
			struct sl_batch_hdr *h)
{
	const uint8_t *p = buf;
	struct sl_batch_hdr t;
	uint32_t magic, crc;
	int rc;

	if (h == NULL || (p == NULL && len > 0))
		return sl_err_set(EINVAL, "batch decode: NULL %s", h == NULL ? "header" : "buffer");
	if (lim == NULL)
		lim = &sl_batch_default_limits;
	if (len < SL_BATCH_HDR_SIZE)
		return sl_err_set(EBADMSG, "batch: truncated header, %zu of %d bytes", len,
				  SL_BATCH_HDR_SIZE);
	magic = sl_le32_get(p + OFF_MAGIC);
	if (magic != SL_BATCH_MAGIC)
		return sl_err_set(EBADMSG, "batch: magic 0x%08" PRIx32 " != 0x%08x", magic,
				  SL_BATCH_MAGIC);
	hdr_read(p, &t);
	/* The checksum first: nothing else in a corrupt header is worth a message. */
	crc = sl_crc32c(0, p, OFF_HDR_CRC);
	if (crc != t.hdr_crc)
		return sl_err_set(EBADMSG,
				  "batch claiming lsn %" PRIu64 ": header crc 0x%08" PRIx32
				  " != computed 0x%08" PRIx32,
				  t.base_lsn, t.hdr_crc, crc);
	rc = hdr_check_format(p, &t);
	if (rc == 0)
		rc = hdr_check_lengths(&t, lim);
	if (rc < 0)
		return rc;
	*h = t;
	return 0;
}

/* decode_hdr, then the payload's CRC: `crc` when the caller computed it
 * over exactly buf[96..len) (have_crc), else read from the bytes. */
static int verify(const uint8_t *p, size_t len, const struct sl_batch_limits *lim, int have_crc,
		  uint32_t crc, struct sl_batch_hdr *h)
{
	struct sl_batch_hdr t;
	int rc = sl_batch_decode_hdr(p, len, lim, &t);

	if (rc < 0)
		return rc;
	if (len - SL_BATCH_HDR_SIZE < t.stored_len)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": truncated payload, %zu of %" PRIu32
				  " bytes",
				  t.base_lsn, len - SL_BATCH_HDR_SIZE, t.stored_len);
	if (have_crc && len - SL_BATCH_HDR_SIZE != t.stored_len)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": %zu bytes hold a batch of %" PRIu32,
				  t.base_lsn, len, SL_BATCH_HDR_SIZE + t.stored_len);
	if (!have_crc)
		crc = sl_crc32c(0, p + SL_BATCH_HDR_SIZE, t.stored_len);
	if (crc != t.payload_crc)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64 ": payload crc 0x%08" PRIx32
				  " != computed 0x%08" PRIx32,
				  t.base_lsn, t.payload_crc, crc);
	*h = t;
	return SL_BATCH_HDR_SIZE + (int)t.stored_len;
}

int sl_batch_verify(const void *buf, size_t len, const struct sl_batch_limits *lim,
		    struct sl_batch_hdr *h)
{
	return verify(buf, len, lim, 0, 0, h);
}

int sl_batch_verify_crc(const void *buf, size_t len, const struct sl_batch_limits *lim,
			uint32_t payload_crc, struct sl_batch_hdr *h)
{
	return verify(buf, len, lim, 1, payload_crc, h);
}

/* The stored payload into raw[0..raw_len), which the caller sized. */
static int payload_expand(const uint8_t *src, const struct sl_batch_hdr *h, uint8_t *raw)
{
	int n;

	if (!(h->flags & SL_BATCH_F_LZ4)) {
		if (h->raw_len > 0)
			memcpy(raw, src, h->raw_len);
		return 0;
	}
	/* Capacity raw_len, not raw_cap: a block that wants more is corrupt. */
	n = LZ4_decompress_safe((const char *)src, (char *)raw, (int)h->stored_len,
				(int)h->raw_len);
	if (n < 0)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64
				  ": malformed lz4 block (%d), stored_len %" PRIu32
				  ", raw_len %" PRIu32,
				  h->base_lsn, n, h->stored_len, h->raw_len);
	if ((uint32_t)n != h->raw_len)
		return sl_err_set(EBADMSG,
				  "batch at lsn %" PRIu64
				  ": lz4 block expands to %d bytes, raw_len %" PRIu32,
				  h->base_lsn, n, h->raw_len);
	return 0;
}

int sl_batch_decode(const void *buf, size_t len, const struct sl_batch_limits *lim, uint8_t *raw,
		    size_t raw_cap, struct sl_batch_hdr *h)
{
	struct sl_batch_hdr t;
	int rc = sl_batch_verify(buf, len, lim, &t);

	if (rc < 0)
		return rc;
	if (lim == NULL)
		lim = &sl_batch_default_limits;
	if (raw == NULL && raw_cap > 0)
		return sl_err_set(EINVAL, "batch decode: NULL raw buffer of %zu bytes", raw_cap);
	if (t.raw_len > raw_cap)
		return sl_err_set(
		    ENOSPC, "batch at lsn %" PRIu64 ": raw_len %" PRIu32 " > raw buffer of %zu",
		    t.base_lsn, t.raw_len, raw_cap);
	rc = payload_expand((const uint8_t *)buf + SL_BATCH_HDR_SIZE, &t, raw);
	if (rc == 0)
		rc = walk_records(raw, t.raw_len, t.record_count, lim->max_record_bytes, t.base_lsn,
				  EBADMSG);
	if (rc < 0)
		return rc;
	*h = t;
	return (int)t.raw_len;
}
