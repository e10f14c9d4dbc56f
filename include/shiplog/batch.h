/* The batch: shiplog's unit of compression, checksum, storage and shipping.
 * A fixed 96-byte little-endian header, then the payload: length-prefixed
 * records, LZ4-compressed (or raw when that would not be smaller). The bytes
 * are identical on the wire and on disk. Pure code: no syscalls, no allocation. */
#ifndef SHIPLOG_BATCH_H
#define SHIPLOG_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define SL_BATCH_MAGIC	  0x31424c53u /* "SLB1" little-endian */
#define SL_BATCH_VERSION  1
#define SL_BATCH_HDR_SIZE 96
#define SL_BATCH_F_LZ4	  0x0001u /* payload is one LZ4 block */
#define SL_BATCH_F_KNOWN  (SL_BATCH_F_LZ4)
#define SL_REC_PREFIX	  4	      /* u32 LE length before each record */
#define SL_BATCH_RAW_MAX  (64u << 20) /* hard ceiling on a batch's raw payload */

/*
 * Header layout (all little-endian):
 *   0 magic u32 | 4 version u16 | 6 flags u16 | 8 cluster_id[16] | 24 stream_id u64
 *  32 epoch u64 | 40 base_lsn u64 | 48 record_count u32 | 52 raw_len u32
 *  56 position u64 | 64 stored_len u32 | 68 payload_crc u32 | 72 prev_crc u32
 *  76 reserved u32 (0) | 80 leader_ts_ns u64 | 88 reserved u32 (0) | 92 hdr_crc u32
 * hdr_crc is CRC32C of bytes 0..91. prev_crc is the hdr_crc of the previous
 * batch of the stream (0 for the first), which chains the log.
 */
struct sl_batch_hdr {
	uint16_t version;
	uint16_t flags;
	uint8_t cluster_id[16];
	uint64_t stream_id;
	uint64_t epoch;
	uint64_t base_lsn;     /* LSN of the first record; LSNs start at 1 */
	uint32_t record_count; /* may be 0 (an empty batch, e.g. an epoch marker) */
	uint32_t raw_len;      /* bytes of length-prefixed records before compression */
	uint64_t position;     /* byte offset of this batch in the stream */
	uint32_t stored_len;   /* payload bytes that follow the header */
	uint32_t payload_crc;  /* CRC32C of the stored payload */
	uint32_t prev_crc;     /* hdr_crc of the previous batch */
	uint64_t leader_ts_ns; /* leader's clock when the batch was sealed */
	uint32_t hdr_crc;      /* filled in by encode, checked by decode */
};

/* Caller's bounds for decoding untrusted bytes. */
struct sl_batch_limits {
	uint32_t max_raw_bytes;	   /* <= SL_BATCH_RAW_MAX */
	uint32_t max_record_bytes; /* largest single record accepted */
};

/* Collects length-prefixed records into a caller-owned raw buffer. */
struct sl_batch_builder {
	uint8_t *raw;
	size_t cap;
	size_t len;
	uint32_t count;
};

void sl_batch_builder_init(struct sl_batch_builder *b, uint8_t *raw, size_t cap);
void sl_batch_builder_reset(struct sl_batch_builder *b);
/* 0, or -ENOSPC when the record does not fit (the builder is unchanged). */
int sl_batch_builder_add(struct sl_batch_builder *b, const void *rec, uint32_t len);

/* Largest encoded size for `raw_len` raw bytes (header + worst-case payload). */
size_t sl_batch_bound(size_t raw_len);

/* Encode: fills version, flags, raw_len, record_count, stored_len, payload_crc
 * and hdr_crc of `*h` (the caller sets the rest; base_lsn must be >= 1) and
 * writes header + payload to `out`. `raw` must hold exactly `count` length-
 * prefixed records (as a builder makes them). Returns the encoded length or a
 * negative errno (-ENOSPC: out too small, -EINVAL: bad arguments or records,
 * -EMSGSIZE: raw_len over SL_BATCH_RAW_MAX); `*h` is only changed on success.
 * out_cap >= sl_batch_bound(raw_len) always suffices. */
int sl_batch_encode(struct sl_batch_hdr *h, const uint8_t *raw, size_t raw_len, uint32_t count,
		    uint8_t *out, size_t out_cap);
/* sl_batch_encode with LZ4's acceleration (1: the default, as
 * sl_batch_encode; higher: faster, larger batches; 1..SL_BATCH_ACCEL_MAX).
 * Readers need not know it: any acceleration makes an ordinary LZ4 block. */
#define SL_BATCH_ACCEL_MAX 65537
int sl_batch_encode_accel(struct sl_batch_hdr *h, const uint8_t *raw, size_t raw_len,
			  uint32_t count, uint8_t *out, size_t out_cap, int accel);

/* Encode only the header, for a payload encoded earlier (by sl_batch_encode,
 * elsewhere): `*h` must hold the payload's flags, raw_len, record_count,
 * stored_len and payload_crc besides the caller's fields. Checks it as
 * decoding would (flags, LSN range, lengths against `lim`, NULL for the
 * defaults), fills version and hdr_crc and writes the 96 header bytes to
 * out. Returns the batch's length (96 + stored_len), or -EINVAL (-EMSGSIZE
 * over a limit); `*h` is only changed on success. */
int sl_batch_encode_hdr(struct sl_batch_hdr *h, const struct sl_batch_limits *lim, uint8_t *out);

/* Parse and check a header: magic, version, known flags, hdr_crc, and that
 * stored/raw lengths are within limits. Does not look at the payload.
 * 0 or a negative errno (-EBADMSG bad checksum/magic/format or fewer than 96
 * bytes, -EMSGSIZE over a limit). `lim` NULL means sl_batch_default_limits.
 * In all the decode functions `*h` is only written on success. */
int sl_batch_decode_hdr(const void *buf, size_t len, const struct sl_batch_limits *lim,
			struct sl_batch_hdr *h);

/* decode_hdr, then check that `len` holds the whole payload and payload_crc
 * matches. Returns the batch's total length (header + stored_len) or -errno. */
int sl_batch_verify(const void *buf, size_t len, const struct sl_batch_limits *lim,
		    struct sl_batch_hdr *h);

/* sl_batch_verify for a caller that already has the CRC32C of the payload
 * bytes, buf[96..len) (combined from the CRCs of pieces it checked as they
 * arrived, say): the payload is not read again. The batch must fill `len`
 * exactly. */
int sl_batch_verify_crc(const void *buf, size_t len, const struct sl_batch_limits *lim,
			uint32_t payload_crc, struct sl_batch_hdr *h);

/* verify, then decompress (LZ4_decompress_safe) into `raw` (capacity `raw_cap`,
 * not overlapping `buf`) and check that the records exactly fill raw_len with
 * record_count records each within max_record_bytes. Returns raw_len or -errno
 * (-ENOSPC when raw_cap < raw_len). */
int sl_batch_decode(const void *buf, size_t len, const struct sl_batch_limits *lim, uint8_t *raw,
		    size_t raw_cap, struct sl_batch_hdr *h);

/* Walk the records of a decoded raw payload. */
struct sl_rec_iter {
	const uint8_t *p;
	const uint8_t *end;
};
void sl_rec_iter_init(struct sl_rec_iter *it, const uint8_t *raw, size_t raw_len);
/* 1 and the record, 0 at the end, -EBADMSG on a malformed prefix. */
int sl_rec_next(struct sl_rec_iter *it, const uint8_t **rec, uint32_t *len);

/* Default limits: 1 MiB records, 16 MiB raw batches. */
extern const struct sl_batch_limits sl_batch_default_limits;

#endif
