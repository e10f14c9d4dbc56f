/* CRC32C: published vectors, hardware == software, incremental == one-shot. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shiplog/crc32c.h"
#include "shiplog/workload.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* The implementations to check: always sw and the dispatcher; hw and the
 * folding one when present. */
static size_t impls(crc_fn *out)
{
	size_t n = 0;

	out[n++] = sl_crc32c_sw;
	out[n++] = sl_crc32c;
	if (sl_crc32c_have_hw())
		out[n++] = sl_crc32c_hw;
	if (sl_crc32c_have_fold())
		out[n++] = sl_crc32c_fold;
	return n;
}

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(sl_rng_next(&s) >> 56);
}

/* RFC 3720 appendix B.4 and the usual check value of "123456789". */
static void test_published_vectors(void **state)
{
	uint8_t buf[32];
	crc_fn fn[4];
	size_t n = impls(fn);

	(void)state;
	for (size_t f = 0; f < n; f++) {
		memset(buf, 0, sizeof(buf));
		assert_int_equal(fn[f](0, buf, 32), 0x8A9136AAu);
		memset(buf, 0xff, sizeof(buf));
		assert_int_equal(fn[f](0, buf, 32), 0x62A8AB43u);
		for (int i = 0; i < 32; i++)
			buf[i] = (uint8_t)i;
		assert_int_equal(fn[f](0, buf, 32), 0x46DD794Eu);
		for (int i = 0; i < 32; i++)
			buf[i] = (uint8_t)(31 - i);
		assert_int_equal(fn[f](0, buf, 32), 0x113FDB5Cu);
		assert_int_equal(fn[f](0, "123456789", 9), 0xE3069283u);
		assert_int_equal(fn[f](0, NULL, 0), 0);
		assert_int_equal(fn[f](0x12345678u, NULL, 0), 0x12345678u);
	}
}

/* Bit-at-a-time reference, independent of the tables under test. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	uint32_t c = ~crc;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
}

/* Every length 0..1024 from every start offset 0..7, against the reference. */
static void test_impls_agree_small(void **state)
{
	enum { MAXLEN = 1024 };
	uint8_t *buf = malloc(MAXLEN + 8);
	crc_fn fn[4];
	size_t n = impls(fn);

	(void)state;
	assert_non_null(buf);
	fill_random(buf, MAXLEN + 8, 1);
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len <= MAXLEN; len++) {
			uint32_t want = crc_bitwise(0, buf + off, len);

			for (size_t f = 0; f < n; f++)
				assert_int_equal(fn[f](0, buf + off, len), want);
		}
	}
	free(buf);
}

/* Lengths around the 3-way block sizes (768 and 24576 bytes) and multiples. */
static void test_impls_agree_large(void **state)
{
	static const size_t lens[] = {255,   256,   257,   319,	  320,	  511,	  512,	 513,
				      767,   768,   769,   1535,  1536,	  24575,  24576, 24577,
				      25343, 25344, 49152, 50000, 100003, 1 << 20};
	size_t max = 1 << 20;
	uint8_t *buf = malloc(max + 8);
	crc_fn fn[4];
	size_t n = impls(fn);

	(void)state;
	assert_non_null(buf);
	fill_random(buf, max + 8, 2);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t off = 0; off < 8; off += 3) {
			uint32_t want = crc_bitwise(0, buf + off, lens[i]);

			for (size_t f = 0; f < n; f++)
				assert_int_equal(fn[f](0, buf + off, lens[i]), want);
		}
	}
	free(buf);
}

/* Splitting a buffer anywhere gives the one-shot CRC, mixing implementations. */
static void test_incremental(void **state)
{
	enum { LEN = 3000 };
	uint8_t *buf = malloc(LEN);
	crc_fn fn[4];
	size_t n = impls(fn);

	(void)state;
	assert_non_null(buf);
	fill_random(buf, LEN, 3);
	uint32_t whole = sl_crc32c(0, buf, LEN);
	for (size_t cut = 0; cut <= LEN; cut += 7) {
		for (size_t a = 0; a < n; a++) {
			for (size_t b = 0; b < n; b++) {
				uint32_t c = fn[a](0, buf, cut);

				assert_int_equal(fn[b](c, buf + cut, LEN - cut), whole);
			}
		}
	}
	/* Many tiny pieces. */
	uint32_t c = 0;
	for (size_t i = 0; i < LEN; i += 5)
		c = sl_crc32c(c, buf + i, LEN - i < 5 ? LEN - i : 5);
	assert_int_equal(c, whole);
	free(buf);
}

/* A single flipped bit anywhere changes the CRC. */
static void test_detects_bit_flip(void **state)
{
	uint8_t buf[64];

	(void)state;
	fill_random(buf, sizeof(buf), 4);
	uint32_t good = sl_crc32c(0, buf, sizeof(buf));
	for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(sl_crc32c(0, buf, sizeof(buf)), good);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

typedef uint32_t (*copy_fn)(uint32_t, void *, const void *, size_t);

/* Copy-and-CRC equals memcpy plus the CRC, for lengths and offsets around
 * the block sizes, and touches no byte outside dst[0..len). */
static void test_copy(void **state)
{
	static const size_t lens[] = {0,    1,	  7,	8,     9,     63,    64,    255,
				      256,  257,  319,	320,   767,   768,   769,   1376,
				      1537, 8876, 9000, 24575, 24576, 24577, 25344, 65536};
	enum { MAX = 65536 + 16 };
	uint8_t *src = malloc(MAX), *dst = malloc(MAX), *want = malloc(MAX);
	copy_fn fn[4] = {sl_crc32c_copy_sw, sl_crc32c_copy};
	size_t n = 2;

	(void)state;
	if (sl_crc32c_have_hw())
		fn[n++] = sl_crc32c_copy_hw;
	if (sl_crc32c_have_fold())
		fn[n++] = sl_crc32c_copy_fold;
	assert_non_null(src);
	assert_non_null(dst);
	assert_non_null(want);
	fill_random(src, MAX, 5);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t so = 0; so < 8; so += 3) {
			for (size_t f = 0; f < n; f++) {
				size_t doff = (so + f) % 8;

				memset(dst, 0xa5, MAX);
				memset(want, 0xa5, MAX);
				memcpy(want + doff, src + so, lens[i]);
				assert_int_equal(fn[f](0x1234u, dst + doff, src + so, lens[i]),
						 crc_bitwise(0x1234u, src + so, lens[i]));
				assert_memory_equal(dst, want, MAX);
			}
		}
	}
	free(src);
	free(dst);
	free(want);
}

/* combine(crc(A), crc(B), |B|) == crc(A||B) at every cut, through the
 * operator too, with the software multiply as well; and a known prefix
 * comes off again. */
static void test_combine(void **state)
{
	enum { LEN = 20000 };
	uint8_t *buf = malloc(LEN);

	(void)state;
	assert_non_null(buf);
	fill_random(buf, LEN, 6);
	for (size_t len = 0; len <= LEN; len += len < 300 ? 1 : 997) {
		uint32_t whole = sl_crc32c(0, buf, len);

		for (size_t cut = 0; cut <= len; cut += cut < 40 ? 1 : 331) {
			uint32_t a = sl_crc32c(0, buf, cut), b = sl_crc32c(0, buf + cut, len - cut);
			uint32_t op = sl_crc32c_op(len - cut);

			assert_int_equal(sl_crc32c_combine(a, b, len - cut), whole);
			assert_int_equal(sl_crc32c_combine_op(op, a, b), whole);
			assert_int_equal(sl_crc32c_combine_op_sw(op, a, b), whole);
			assert_int_equal(sl_crc32c_combine(a, whole, len - cut), b);
		}
	}
	/* Lengths far beyond any buffer: the operator is periodic-free math,
	 * so check it against composing smaller steps. */
	uint32_t c = 0x9e3779b9u;
	uint32_t big = sl_crc32c_combine(c, 0, (size_t)1 << 40);
	uint32_t steps = c;
	for (int i = 0; i < 4; i++)
		steps = sl_crc32c_combine(steps, 0, (size_t)1 << 38);
	assert_int_equal(big, steps);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_published_vectors), cmocka_unit_test(test_impls_agree_small),
	    cmocka_unit_test(test_impls_agree_large), cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_detects_bit_flip),  cmocka_unit_test(test_copy),
	    cmocka_unit_test(test_combine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
