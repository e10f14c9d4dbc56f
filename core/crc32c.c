/* CRC32C (Castagnoli); see include/shiplog/crc32c.h.
 *
 * All internal state is the "raw" CRC register: no initial or final inversion.
 * The public functions invert on entry and exit, which is what makes
 * sl_crc32c(sl_crc32c(0, a), b) == sl_crc32c(0, a||b).
 *
 * The hardware path runs three independent crc32 chains over three adjacent
 * blocks (the instruction has a latency of 3 and a throughput of 1 per cycle)
 * and joins them with "append n zero bytes" operators, which are linear in the
 * register and therefore table-driven like a slicing table.
 *
 * With AVX-512 VPCLMULQDQ, long runs are folded instead: sixteen 16-byte lanes
 * (four 512-bit accumulators) each multiplied forward by 256 bytes and added
 * to the data there, then folded into one 16-byte block whose CRC the crc32
 * instruction finishes, as in Intel's paper on CRCs with PCLMULQDQ. Folding
 * keeps the data's remainder modulo the polynomial, which is all a CRC sees.
 *
 * Combining (crc(A), crc(B), |B|) into crc(A||B) multiplies crc(A) by
 * x^(8|B|) modulo the polynomial: polynomials are reflected 32-bit values
 * (bit 31 is x^0), the power comes from a table of x^(2^k), and the product
 * is taken bit by bit, or with one carry-less multiply reduced by the crc32
 * instruction when the CPU has PCLMULQDQ. */
#include "shiplog/crc32c.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
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
/* x2n[k] = x^(2^k) mod P, for the operator of appending n bytes. */
#define CRC_X2N 67
static uint32_t crc_x2n[CRC_X2N];
/* Folding constants (see fold_k): a 16-byte lane forward by 256 and by 64
 * bytes, and lanes 0..2 of the last accumulator onto lane 3. */
#define CRC_FOLD_MIN 256 /* bytes: shorter runs are not folded */
static uint64_t crc_k256[2], crc_k64[2], crc_klanes[8];

enum { TAB_NONE, TAB_BUILDING, TAB_READY };
static atomic_int tab_state;

enum { HW_UNKNOWN, HW_NO, HW_YES };
static atomic_int hw_state;
static atomic_int clmul_state;
static atomic_int fold_state;

/* a * b mod P, one bit of a at a time (a's bit 31 - i is its x^i term). */
static uint32_t gf_mul_sw(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (int i = 0; i < 32; i++) {
		if (a & (0x80000000u >> i))
			p ^= b;
		b = (b >> 1) ^ (CRC_POLY & (0u - (b & 1))); /* b *= x */
	}
	return p;
}

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

/* x^n mod P, from the powers x^(2^k). */
static uint32_t xpow(uint64_t n)
{
	uint32_t p = 0x80000000u; /* x^0 */

	for (int k = 0; n; n >>= 1, k++)
		if (n & 1)
			p = gf_mul_sw(p, crc_x2n[k]);
	return p;
}

/* A folding constant for a 16-byte lane: its first 8 bytes (the higher
 * powers) carry x^64 more than its last 8, so moving the lane forward by d
 * bytes multiplies them by x^(8d + 64) and x^(8d). The constant for x^t is
 * x^(t - 1) mod P in the high half of 64 bits: the carry-less product of two
 * reflected operands lands one bit short, and the missing x makes it up. */
static uint64_t fold_k(uint64_t t)
{
	return (uint64_t)xpow(t - 1) << 32;
}

static void build_fold_constants(void)
{
	crc_k256[0] = fold_k(8 * 256 + 64), crc_k256[1] = fold_k(8 * 256);
	crc_k64[0] = fold_k(8 * 64 + 64), crc_k64[1] = fold_k(8 * 64);
	for (int lane = 0; lane < 3; lane++) {
		uint64_t d = 16 * (3 - lane); /* bytes from this lane to lane 3 */

		crc_klanes[2 * lane] = fold_k(8 * d + 64);
		crc_klanes[2 * lane + 1] = fold_k(8 * d);
	}
	crc_klanes[6] = crc_klanes[7] = 0; /* lane 3 stays */
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
	crc_x2n[0] = 0x40000000u; /* x^1 */
	for (int k = 1; k < CRC_X2N; k++)
		crc_x2n[k] = gf_mul_sw(crc_x2n[k - 1], crc_x2n[k - 1]);
	build_fold_constants();
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

static inline void store_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Register after 3*n bytes at p, as three chains of n bytes joined by `op`;
 * with `copy`, the bytes are also stored to d as they are read. */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t
crc_3way(uint32_t c, uint8_t *d, const uint8_t *p, size_t n, const uint32_t op[4][256],
	 const int copy)
{
	uint64_t c0 = c, c1 = 0, c2 = 0;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t v0 = load_u64(p + i), v1 = load_u64(p + n + i),
			 v2 = load_u64(p + 2 * n + i);

		c0 = _mm_crc32_u64(c0, v0);
		c1 = _mm_crc32_u64(c1, v1);
		c2 = _mm_crc32_u64(c2, v2);
		if (copy) {
			store_u64(d + i, v0);
			store_u64(d + n + i, v1);
			store_u64(d + 2 * n + i, v2);
		}
	}
	/* crc(s, A||B) = zeros(crc(s, A), |B|) ^ crc(0, B), by linearity. */
	c = shift_op(op, (uint32_t)c0) ^ (uint32_t)c1;
	return shift_op(op, c) ^ (uint32_t)c2;
}

#define FOLD(x, k, next)                                                                           \
	_mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128((x), (k), 0x00),                        \
				  _mm512_clmulepi64_epi128((x), (k), 0x11), (next), 0x96)

/* Load 64 bytes at p + i (and store them to d + i with `copy`). */
#define LOAD64(i) (copy ? load_store64(d + (i), p + (i)) : _mm512_loadu_si512(p + (i)))

__attribute__((target("avx512f"), always_inline)) static inline __m512i
load_store64(uint8_t *d, const uint8_t *p)
{
	__m512i v = _mm512_loadu_si512(p);

	_mm512_storeu_si512(d, v);
	return v;
}

/* The register after the first len - len % 64 bytes at p (len >= 256),
 * folded; with `copy` they are also stored to d. *done: bytes consumed.
 * Four named accumulators, not an array, so they stay in registers. */
__attribute__((target("avx512f,avx512vl,vpclmulqdq,sse4.2"), always_inline)) static inline uint32_t
crc_fold(uint32_t c, uint8_t *d, const uint8_t *p, size_t len, size_t *done, const int copy)
{
	const __m512i k256 = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)crc_k256));
	const __m512i k64 = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)crc_k64));
	__m512i x0 = LOAD64(0), x1 = LOAD64(64), x2 = LOAD64(128), x3 = LOAD64(192), f;
	__m128i a;
	size_t i;

	/* The register enters as the first four message bytes, XORed. */
	x0 = _mm512_xor_si512(x0, _mm512_castsi128_si512(_mm_cvtsi32_si128((int)c)));
	for (i = 256; len - i >= 256; i += 256) {
		x0 = FOLD(x0, k256, LOAD64(i));
		x1 = FOLD(x1, k256, LOAD64(i + 64));
		x2 = FOLD(x2, k256, LOAD64(i + 128));
		x3 = FOLD(x3, k256, LOAD64(i + 192));
	}
	x3 = FOLD(FOLD(FOLD(x0, k64, x1), k64, x2), k64, x3);
	for (; len - i >= 64; i += 64)
		x3 = FOLD(x3, k64, LOAD64(i));
	f = _mm512_loadu_si512((const void *)crc_klanes);
	f = _mm512_xor_si512(_mm512_clmulepi64_epi128(x3, f, 0x00),
			     _mm512_clmulepi64_epi128(x3, f, 0x11));
	a = _mm_xor_si128(
	    _mm_xor_si128(_mm512_extracti32x4_epi32(f, 0), _mm512_extracti32x4_epi32(f, 1)),
	    _mm_xor_si128(_mm512_extracti32x4_epi32(f, 2), _mm512_extracti32x4_epi32(x3, 3)));
	*done = i;
	/* 16 bytes with the remainder of all that: the crc32 instruction ends it. */
	return (uint32_t)_mm_crc32_u64(_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(a)),
				       (uint64_t)_mm_extract_epi64(a, 1));
}

__attribute__((target("avx512f,avx512vl,vpclmulqdq,sse4.2"))) static uint32_t
crc_fold_only(uint32_t c, const uint8_t *p, size_t len, size_t *done)
{
	return crc_fold(c, NULL, p, len, done, 0);
}

__attribute__((target("avx512f,avx512vl,vpclmulqdq,sse4.2"))) static uint32_t
crc_fold_copy(uint32_t c, uint8_t *d, const uint8_t *p, size_t len, size_t *done)
{
	return crc_fold(c, d, p, len, done, 1);
}

/* With `copy`, byte i of p is also stored to d[i] (d is not used otherwise);
 * with `fold`, long runs are folded first. */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t
crc_hw(uint32_t crc, uint8_t *d, const uint8_t *p, size_t len, const int copy, const int fold)
{
	const uint8_t *start = p;
	uint64_t c = ~crc;

	if (fold && len >= CRC_FOLD_MIN) {
		size_t done;

		tables_ensure();
		c = copy ? crc_fold_copy((uint32_t)c, d, p, len, &done)
			 : crc_fold_only((uint32_t)c, p, len, &done);
		p += done, len -= done;
	}

	for (; len && ((uintptr_t)p & 7); p++, len--) {
		c = _mm_crc32_u8((uint32_t)c, *p);
		if (copy)
			d[p - start] = *p;
	}
	if (len >= 3 * CRC_SHORT) {
		tables_ensure();
		for (; len >= 3 * CRC_LONG; p += 3 * CRC_LONG, len -= 3 * CRC_LONG)
			c = crc_3way((uint32_t)c, copy ? d + (p - start) : NULL, p, CRC_LONG,
				     crc_long_op, copy);
		for (; len >= 3 * CRC_SHORT; p += 3 * CRC_SHORT, len -= 3 * CRC_SHORT)
			c = crc_3way((uint32_t)c, copy ? d + (p - start) : NULL, p, CRC_SHORT,
				     crc_short_op, copy);
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v = load_u64(p);

		c = _mm_crc32_u64(c, v);
		if (copy)
			store_u64(d + (p - start), v);
	}
	for (; len; p++, len--) {
		c = _mm_crc32_u8((uint32_t)c, *p);
		if (copy)
			d[p - start] = *p;
	}
	return ~(uint32_t)c;
}

__attribute__((target("sse4.2"))) uint32_t sl_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return crc_hw(crc, NULL, buf, len, 0, 0);
}

__attribute__((target("sse4.2"))) uint32_t sl_crc32c_copy_hw(uint32_t crc, void *dst,
							     const void *src, size_t len)
{
	return crc_hw(crc, dst, src, len, 1, 0);
}

__attribute__((target("sse4.2"))) uint32_t sl_crc32c_fold(uint32_t crc, const void *buf, size_t len)
{
	return crc_hw(crc, NULL, buf, len, 0, 1);
}

__attribute__((target("sse4.2"))) uint32_t sl_crc32c_copy_fold(uint32_t crc, void *dst,
							       const void *src, size_t len)
{
	return crc_hw(crc, dst, src, len, 1, 1);
}

int sl_crc32c_have_fold(void)
{
	int s = atomic_load_explicit(&fold_state, memory_order_relaxed);

	if (s == HW_UNKNOWN) {
		__builtin_cpu_init();
		s = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("avx512f") &&
			    __builtin_cpu_supports("avx512vl") &&
			    __builtin_cpu_supports("vpclmulqdq")
			? HW_YES
			: HW_NO;
		atomic_store_explicit(&fold_state, s, memory_order_relaxed);
	}
	return s == HW_YES;
}

/* a * b mod P: the 63-bit carry-less product, shifted to a 64-bit reflected
 * value lo * x^32 + hi, whose lo * x^32 mod P is what crc32 computes on lo. */
__attribute__((target("sse4.2,pclmul"))) static uint32_t gf_mul_hw(uint32_t a, uint32_t b)
{
	__m128i m = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)a), _mm_cvtsi32_si128((int)b), 0);
	uint64_t v = (uint64_t)_mm_cvtsi128_si64(m) << 1;

	return _mm_crc32_u32(0, (uint32_t)v) ^ (uint32_t)(v >> 32);
}

static int have_clmul(void)
{
	int s = atomic_load_explicit(&clmul_state, memory_order_relaxed);

	if (s == HW_UNKNOWN) {
		__builtin_cpu_init();
		s = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") ? HW_YES
											 : HW_NO;
		atomic_store_explicit(&clmul_state, s, memory_order_relaxed);
	}
	return s == HW_YES;
}

static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	return have_clmul() ? gf_mul_hw(a, b) : gf_mul_sw(a, b);
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

uint32_t sl_crc32c_copy_hw(uint32_t crc, void *dst, const void *src, size_t len)
{
	return sl_crc32c_copy_sw(crc, dst, src, len);
}

uint32_t sl_crc32c_fold(uint32_t crc, const void *buf, size_t len)
{
	return sl_crc32c_sw(crc, buf, len);
}

uint32_t sl_crc32c_copy_fold(uint32_t crc, void *dst, const void *src, size_t len)
{
	return sl_crc32c_copy_sw(crc, dst, src, len);
}

int sl_crc32c_have_fold(void)
{
	(void)fold_state;
	return 0;
}

static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	(void)clmul_state;
	return gf_mul_sw(a, b);
}

int sl_crc32c_have_hw(void)
{
	(void)hw_state;
	return 0;
}

#endif

uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (len >= CRC_FOLD_MIN && sl_crc32c_have_fold())
		return sl_crc32c_fold(crc, buf, len);
	if (sl_crc32c_have_hw())
		return sl_crc32c_hw(crc, buf, len);
	return sl_crc32c_sw(crc, buf, len);
}

uint32_t sl_crc32c_copy_sw(uint32_t crc, void *dst, const void *src, size_t len)
{
	if (len > 0)
		memcpy(dst, src, len);
	return sl_crc32c_sw(crc, src, len);
}

uint32_t sl_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
	if (len >= CRC_FOLD_MIN && sl_crc32c_have_fold())
		return sl_crc32c_copy_fold(crc, dst, src, len);
	if (sl_crc32c_have_hw())
		return sl_crc32c_copy_hw(crc, dst, src, len);
	return sl_crc32c_copy_sw(crc, dst, src, len);
}

/* x^(8n) mod P: the product of x^(2^(k+3)) over the bits k of n. */
uint32_t sl_crc32c_op(size_t len_b)
{
	uint32_t p = 0x80000000u; /* x^0 */

	tables_ensure();
	for (int k = 3; len_b; len_b >>= 1, k++)
		if (len_b & 1)
			p = gf_mul(p, crc_x2n[k]);
	return p;
}

/* crc(A||B) = crc(A) * x^(8|B|) ^ crc(B): the inversions at both ends of
 * the finished CRCs cancel, as in zlib's crc32_combine. */
uint32_t sl_crc32c_combine_op(uint32_t op, uint32_t crc_a, uint32_t crc_b)
{
	return gf_mul(op, crc_a) ^ crc_b;
}

uint32_t sl_crc32c_combine_op_sw(uint32_t op, uint32_t crc_a, uint32_t crc_b)
{
	return gf_mul_sw(op, crc_a) ^ crc_b;
}

uint32_t sl_crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b)
{
	return sl_crc32c_combine_op(sl_crc32c_op(len_b), crc_a, crc_b);
}
