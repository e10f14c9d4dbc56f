/* CRC32C (Castagnoli); see include/shiplog/crc32c.h.
 *
 * All internal state is the "raw" CRC register: no initial or final inversion.
 * The public functions invert on entry and exit, which is what makes
 * sl_crc32c(sl_crc32c(0, a), b) == sl_crc32c(0, a||b).
 *
 * The hardware path runs three independent crc32 chains over three adjacent
 * blocks (the instruction has a latency of 3 and a throughput of 1 per cycle)
 * and joins them with "append n zero bytes" operators, which are linear in the
 * register and therefore table-driven like a slicing table. */
#include "shiplog/crc32c.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC_HAVE_X86 1
#else
#define CRC_HAVE_X86 0
#endif

#define CRC_POLY  0x82F63B78u /* reflected Castagnoli polynomial */
#define CRC_LONG  8192u	      /* bytes per chain in a large 3-way block */
#define CRC_SHORT 256u	      /* bytes per chain in a small 3-way block */

/* crc_tab[k][b]: register after byte b followed by k zero bytes (slicing-by-8). */
static uint32_t crc_tab[8][256];
/* Operators that advance a register over CRC_LONG / CRC_SHORT zero bytes. */
static uint32_t crc_long_op[4][256];
static uint32_t crc_short_op[4][256];

enum { TAB_NONE, TAB_BUILDING, TAB_READY };
static atomic_int tab_state;

enum { HW_UNKNOWN, HW_NO, HW_YES };
static atomic_int hw_state;

/* Register after `n` zero bytes, one table step per byte (init only). */
static uint32_t zeros_slow(uint32_t c, size_t n)
{
	while (n--)
		c = (c >> 8) ^ crc_tab[0][c & 0xff];
	return c;
}

/* op[k][b] = zeros(b << 8k, n); built from one column per register bit. */
static void build_zeros_op(uint32_t op[4][256], size_t n)
{
	uint32_t col[32];

	for (int i = 0; i < 32; i++)
		col[i] = zeros_slow(1u << i, n);
	for (int k = 0; k < 4; k++) {
		op[k][0] = 0;
		for (unsigned b = 1; b < 256; b++)
			op[k][b] = op[k][b & (b - 1)] ^ col[8 * k + __builtin_ctz(b)];
	}
}

static void build_tables(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int j = 0; j < 8; j++)
			c = (c >> 1) ^ (CRC_POLY & (0u - (c & 1)));
		crc_tab[0][i] = c;
	}
	for (int k = 1; k < 8; k++)
		for (unsigned i = 0; i < 256; i++)
			crc_tab[k][i] =
			    (crc_tab[k - 1][i] >> 8) ^ crc_tab[0][crc_tab[k - 1][i] & 0xff];
	build_zeros_op(crc_long_op, CRC_LONG);
	build_zeros_op(crc_short_op, CRC_SHORT);
}

/* Build the tables once. No constructor (init order) and no lock (core/
 * makes no syscalls): the first caller builds, concurrent callers wait. */
static void tables_ensure(void)
{
	int s = atomic_load_explicit(&tab_state, memory_order_acquire);
	int expect = TAB_NONE;

	if (s == TAB_READY)
		return;
	if (atomic_compare_exchange_strong(&tab_state, &expect, TAB_BUILDING)) {
		build_tables();
		atomic_store_explicit(&tab_state, TAB_READY, memory_order_release);
		return;
	}
	while (atomic_load_explicit(&tab_state, memory_order_acquire) != TAB_READY)
		;
}

static inline uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t sl_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	tables_ensure();
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo = load_le32(p) ^ c;
		uint32_t hi = load_le32(p + 4);

		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^
		    crc_tab[2][(hi >> 8) & 0xff] ^ crc_tab[1][(hi >> 16) & 0xff] ^
		    crc_tab[0][hi >> 24];
	}
	for (; len; p++, len--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p) & 0xff];
	return ~c;
}

#if CRC_HAVE_X86

static inline uint32_t shift_op(const uint32_t op[4][256], uint32_t c)
{
	return op[0][c & 0xff] ^ op[1][(c >> 8) & 0xff] ^ op[2][(c >> 16) & 0xff] ^ op[3][c >> 24];
}

static inline uint64_t load_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v)); /* x86 is little-endian, as the crc32 instruction expects */
	return v;
}

/* Register after 3*n bytes at p, as three chains of n bytes joined by `op`. */
__attribute__((target("sse4.2"))) static uint32_t crc_3way(uint32_t c, const uint8_t *p, size_t n,
							   const uint32_t op[4][256])
{
	uint64_t c0 = c, c1 = 0, c2 = 0;

	for (size_t i = 0; i < n; i += 8) {
		c0 = _mm_crc32_u64(c0, load_u64(p + i));
		c1 = _mm_crc32_u64(c1, load_u64(p + n + i));
		c2 = _mm_crc32_u64(c2, load_u64(p + 2 * n + i));
	}
	/* crc(s, A||B) = zeros(crc(s, A), |B|) ^ crc(0, B), by linearity. */
	c = shift_op(op, (uint32_t)c0) ^ (uint32_t)c1;
	return shift_op(op, c) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2"))) uint32_t sl_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	for (; len && ((uintptr_t)p & 7); p++, len--)
		c = _mm_crc32_u8((uint32_t)c, *p);
	if (len >= 3 * CRC_SHORT) {
		tables_ensure();
		for (; len >= 3 * CRC_LONG; p += 3 * CRC_LONG, len -= 3 * CRC_LONG)
			c = crc_3way((uint32_t)c, p, CRC_LONG, crc_long_op);
		for (; len >= 3 * CRC_SHORT; p += 3 * CRC_SHORT, len -= 3 * CRC_SHORT)
			c = crc_3way((uint32_t)c, p, CRC_SHORT, crc_short_op);
	}
	for (; len >= 8; p += 8, len -= 8)
		c = _mm_crc32_u64(c, load_u64(p));
	for (; len; p++, len--)
		c = _mm_crc32_u8((uint32_t)c, *p);
	return ~(uint32_t)c;
}

int sl_crc32c_have_hw(void)
{
	int s = atomic_load_explicit(&hw_state, memory_order_relaxed);

	if (s == HW_UNKNOWN) {
		__builtin_cpu_init();
		s = __builtin_cpu_supports("sse4.2") ? HW_YES : HW_NO;
		atomic_store_explicit(&hw_state, s, memory_order_relaxed);
	}
	return s == HW_YES;
}

#else /* !CRC_HAVE_X86 */

uint32_t sl_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return sl_crc32c_sw(crc, buf, len);
}

int sl_crc32c_have_hw(void)
{
	(void)hw_state;
	return 0;
}

#endif

uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (sl_crc32c_have_hw())
		return sl_crc32c_hw(crc, buf, len);
	return sl_crc32c_sw(crc, buf, len);
}
