/* CRC32C (Castagnoli), the checksum of batches, frames and on-disk metadata.
 * Uses the SSE4.2 crc32 instruction when the CPU has it and a table-driven
 * portable fallback otherwise; both give identical results. */
#ifndef SHIPLOG_CRC32C_H
#define SHIPLOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) over `len` bytes; returns the finished CRC, so
 * sl_crc32c(sl_crc32c(0, a, n), b, m) == sl_crc32c(0, a||b, n+m). */
uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations, exposed so tests can compare them. */
uint32_t sl_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t sl_crc32c_hw(uint32_t crc, const void *buf, size_t len); /* needs sl_crc32c_have_hw() */
int sl_crc32c_have_hw(void);

#endif
