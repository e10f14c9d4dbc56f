/* CRC32C (Castagnoli), the checksum of batches, frames and on-disk metadata.
 * Folds long runs with AVX-512 VPCLMULQDQ where the CPU has it, uses the
 * SSE4.2 crc32 instruction for the rest or where that is all there is, and a
 * table-driven portable fallback otherwise; all give identical results. */
#ifndef SHIPLOG_CRC32C_H
#define SHIPLOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) over `len` bytes; returns the finished CRC, so
 * sl_crc32c(sl_crc32c(0, a, n), b, m) == sl_crc32c(0, a||b, n+m). */
uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len);

/* memcpy(dst, src, len) and sl_crc32c(crc, src, len) in one pass over the
 * bytes (the buffers must not overlap). */
uint32_t sl_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

/* The CRC of A||B from the CRCs of A and B and the length of B, without the
 * bytes (zlib's crc32_combine). By linearity it also strips a known prefix:
 * crc(B) == sl_crc32c_combine(crc(A), crc(A||B), |B|). */
uint32_t sl_crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);
/* The same in two steps, for many combines with one len_b: the operator of
 * appending len_b bytes, then sl_crc32c_combine_op(sl_crc32c_op(n), a, b)
 * == sl_crc32c_combine(a, b, n) (one multiply with PCLMULQDQ). */
uint32_t sl_crc32c_op(size_t len_b);
uint32_t sl_crc32c_combine_op(uint32_t op, uint32_t crc_a, uint32_t crc_b);

/* The implementations, exposed so tests can compare them. */
uint32_t sl_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t sl_crc32c_hw(uint32_t crc, const void *buf, size_t len); /* needs sl_crc32c_have_hw() */
int sl_crc32c_have_hw(void);
uint32_t sl_crc32c_fold(uint32_t crc, const void *buf,
			size_t len); /* needs sl_crc32c_have_fold() */
int sl_crc32c_have_fold(void);
uint32_t sl_crc32c_copy_fold(uint32_t crc, void *dst, const void *src, size_t len);
uint32_t sl_crc32c_copy_sw(uint32_t crc, void *dst, const void *src, size_t len);
uint32_t sl_crc32c_copy_hw(uint32_t crc, void *dst, const void *src, size_t len);
uint32_t sl_crc32c_combine_op_sw(uint32_t op, uint32_t crc_a, uint32_t crc_b);

#endif
