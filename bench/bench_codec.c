/* shipbench codec: batch encode/decode (LZ4 + CRC32C + header + record checks)
 * against plain LZ4 on the same raw buffers in the same run.
 *
 * Each phase (compress, decompress) runs for --seconds, split into REPS
 * repetitions; each repetition times both contenders for an equal slice, in
 * alternating order, so that neither always runs on a cache the other warmed
 * or at a different point of a noisy neighbour's load. Reported rates are
 * medians over the repetitions; MB/s counts raw (uncompressed) bytes, 1 MB =
 * 1e6 bytes. encode_vs_lz4 is the median of the per-repetition ratios, which
 * pairs measurements taken moments apart. */
#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/workload.h"

#define REPS	      10
#define WORKING_SET   (4u << 20)  /* raw bytes of batches cycled through */
#define CLOCK_EVERY_B (64u << 10) /* read the clock after about this many raw bytes */

struct codec_opts {
	uint32_t record_bytes;
	uint32_t batch_bytes;
	int kinds[2];
	int nkinds;
};

/* The batches of one data kind, prepared before anything is timed. */
struct corpus {
	size_t n;
	size_t raw_len; /* every batch has the same raw length */
	uint32_t count; /* and the same number of records */
	uint8_t *raw;	/* n * raw_len */
	uint8_t *enc;	/* n * enc_cap, our batches */
	size_t *enc_len;
	size_t enc_cap;
	uint8_t *lz4; /* n * lz4_cap, plain LZ4 blocks */
	int *lz4_len;
	size_t lz4_cap;
	uint8_t *out;  /* scratch for the timed encoders */
	uint8_t *back; /* scratch for the timed decoders */
	size_t stored; /* sum of stored_len */
};

typedef void (*step_fn)(struct corpus *k, size_t i);

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: shipbench codec [--json] [--seconds S] [--seed N]\n"
	    "                      [--record-bytes N] [--batch-bytes N] [--data text|random|both]\n"
	    "  --record-bytes N  bytes per record (default 1024)\n"
	    "  --batch-bytes N   raw bytes per batch, prefixes included (default 65536)\n"
	    "  --data KIND       text (WAL-like), random (incompressible) or both (default)\n");
}

static int parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "shipbench codec: %s wants %u..%u, got '%s'\n", opt, min, max, s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_data(const char *s, struct codec_opts *o)
{
	enum sl_wl_kind k;

	if (strcmp(s, "both") == 0) {
		o->kinds[0] = SL_WL_TEXT;
		o->kinds[1] = SL_WL_RANDOM;
		o->nkinds = 2;
		return 0;
	}
	if (sl_wl_kind_parse(s, &k) < 0) {
		fprintf(stderr, "shipbench codec: --data: %s, or both\n", sl_err_msg());
		return -EINVAL;
	}
	o->kinds[0] = (int)k;
	o->nkinds = 1;
	return 0;
}

/* 1 on --help, 0 on success, -EINVAL on a bad option. argv[0] is "codec". */
static int parse_opts(int argc, char **argv, struct codec_opts *o)
{
	*o = (struct codec_opts){.record_bytes = 1024, .batch_bytes = 64u << 10, .nkinds = 2};
	o->kinds[0] = SL_WL_TEXT;
	o->kinds[1] = SL_WL_RANDOM;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return 1;
		if (v == NULL) {
			fprintf(stderr, "shipbench codec: unknown option or missing value: %s\n",
				a);
			return -EINVAL;
		}
		if (strcmp(a, "--record-bytes") == 0)
			rc = parse_u32(a, v, 1, sl_batch_default_limits.max_record_bytes,
				       &o->record_bytes);
		else if (strcmp(a, "--batch-bytes") == 0)
			rc = parse_u32(a, v, SL_REC_PREFIX + 1,
				       sl_batch_default_limits.max_raw_bytes, &o->batch_bytes);
		else if (strcmp(a, "--data") == 0)
			rc = parse_data(v, o);
		else {
			fprintf(stderr, "shipbench codec: unknown option %s\n", a);
			return -EINVAL;
		}
		if (rc < 0)
			return rc;
	}
	if (o->record_bytes + SL_REC_PREFIX > o->batch_bytes) {
		fprintf(stderr,
			"shipbench codec: --batch-bytes %u cannot hold one %u-byte record\n",
			o->batch_bytes, o->record_bytes);
		return -EINVAL;
	}
	return 0;
}

static void corpus_free(struct corpus *k)
{
	free(k->raw);
	free(k->enc);
	free(k->enc_len);
	free(k->lz4);
	free(k->lz4_len);
	free(k->out);
	free(k->back);
	memset(k, 0, sizeof(*k));
}

static int corpus_alloc(struct corpus *k, const struct codec_opts *o)
{
	k->count = o->batch_bytes / (o->record_bytes + SL_REC_PREFIX);
	k->raw_len = (size_t)k->count * (o->record_bytes + SL_REC_PREFIX);
	k->n = WORKING_SET / k->raw_len > 0 ? WORKING_SET / k->raw_len : 1;
	k->enc_cap = sl_batch_bound(k->raw_len);
	k->lz4_cap = (size_t)LZ4_compressBound((int)k->raw_len);
	k->raw = malloc(k->n * k->raw_len);
	k->enc = malloc(k->n * k->enc_cap);
	k->enc_len = calloc(k->n, sizeof(*k->enc_len));
	k->lz4 = malloc(k->n * k->lz4_cap);
	k->lz4_len = calloc(k->n, sizeof(*k->lz4_len));
	k->out = malloc(k->enc_cap > k->lz4_cap ? k->enc_cap : k->lz4_cap);
	k->back = malloc(k->raw_len);
	if (!k->raw || !k->enc || !k->enc_len || !k->lz4 || !k->lz4_len || !k->out || !k->back) {
		corpus_free(k);
		fprintf(stderr, "shipbench codec: out of memory\n");
		return -ENOMEM;
	}
	return 0;
}

static struct sl_batch_hdr bench_hdr(size_t i, uint32_t count)
{
	struct sl_batch_hdr h = {.stream_id = 1, .epoch = 1};

	h.base_lsn = 1 + (uint64_t)i * count;
	h.position = (uint64_t)i * 65536;
	return h;
}

/* Fill the raw batches, encode them both ways, and check both decode back. */
static int corpus_build(struct corpus *k, const struct codec_opts *o, enum sl_wl_kind kind,
			uint64_t seed)
{
	uint8_t *rec = malloc(o->record_bytes);
	struct sl_wl wl;
	int rc = 0;

	if (rec == NULL)
		return -ENOMEM;
	sl_wl_init(&wl, kind, seed);
	for (size_t i = 0; i < k->n && rc == 0; i++) {
		uint8_t *raw = k->raw + i * k->raw_len, *enc = k->enc + i * k->enc_cap;
		struct sl_batch_builder b;
		struct sl_batch_hdr h = bench_hdr(i, k->count), d;
		int n;

		sl_batch_builder_init(&b, raw, k->raw_len);
		for (uint32_t r = 0; r < k->count; r++) {
			sl_wl_fill(&wl, rec, o->record_bytes);
			sl_batch_builder_add(&b, rec, o->record_bytes);
		}
		n = sl_batch_encode(&h, raw, b.len, b.count, enc, k->enc_cap);
		k->lz4_len[i] =
		    LZ4_compress_default((const char *)raw, (char *)k->lz4 + i * k->lz4_cap,
					 (int)k->raw_len, (int)k->lz4_cap);
		if (n < 0 || b.len != k->raw_len || k->lz4_len[i] <= 0) {
			rc = -EIO;
			break;
		}
		k->enc_len[i] = (size_t)n;
		k->stored += h.stored_len;
		/* Both must decode to the raw records; an LZ4 payload is a plain
		 * block (from a reused stream state: not byte for byte what
		 * LZ4_compress_default makes), which plain LZ4 decodes. */
		if (sl_batch_decode(enc, k->enc_len[i], NULL, k->back, k->raw_len, &d) !=
			(int)k->raw_len ||
		    memcmp(k->back, raw, k->raw_len) != 0 ||
		    LZ4_decompress_safe((const char *)k->lz4 + i * k->lz4_cap, (char *)k->back,
					k->lz4_len[i], (int)k->raw_len) != (int)k->raw_len ||
		    memcmp(k->back, raw, k->raw_len) != 0 ||
		    ((h.flags & SL_BATCH_F_LZ4) &&
		     (LZ4_decompress_safe((const char *)enc + SL_BATCH_HDR_SIZE, (char *)k->back,
					  (int)h.stored_len, (int)k->raw_len) != (int)k->raw_len ||
		      memcmp(k->back, raw, k->raw_len) != 0)))
			rc = sl_err_set(EIO, "batch %zu does not decode back to its records", i);
	}
	free(rec);
	if (rc < 0)
		fprintf(stderr, "shipbench codec: %s corpus failed its self-check: %s\n",
			sl_wl_kind_name(kind), sl_err_msg());
	return rc;
}

/* ---- the four contenders; each handles batch i and aborts on failure ---- */

static void step_encode(struct corpus *k, size_t i)
{
	struct sl_batch_hdr h = bench_hdr(i, k->count);

	if (sl_batch_encode(&h, k->raw + i * k->raw_len, k->raw_len, k->count, k->out, k->enc_cap) <
	    0)
		abort();
}

static void step_lz4(struct corpus *k, size_t i)
{
	if (LZ4_compress_default((const char *)k->raw + i * k->raw_len, (char *)k->out,
				 (int)k->raw_len, (int)k->lz4_cap) <= 0)
		abort();
}

static void step_decode(struct corpus *k, size_t i)
{
	struct sl_batch_hdr h;

	if (sl_batch_decode(k->enc + i * k->enc_cap, k->enc_len[i], NULL, k->back, k->raw_len, &h) <
	    0)
		abort();
}

static void step_lz4_decode(struct corpus *k, size_t i)
{
	if (LZ4_decompress_safe((const char *)k->lz4 + i * k->lz4_cap, (char *)k->back,
				k->lz4_len[i], (int)k->raw_len) < 0)
		abort();
}

/* Run `fn` over the batches, round robin from *next, for `ns`; raw MB/s. */
static double timed(struct corpus *k, step_fn fn, uint64_t ns, size_t *next)
{
	size_t per_clock = CLOCK_EVERY_B / k->raw_len > 0 ? CLOCK_EVERY_B / k->raw_len : 1;
	uint64_t t0 = bench_now_ns(), t;
	size_t done = 0;

	do {
		for (size_t j = 0; j < per_clock; j++) {
			fn(k, *next);
			*next = *next + 1 < k->n ? *next + 1 : 0;
		}
		done += per_clock;
		t = bench_now_ns();
	} while (t - t0 < ns);
	return (double)done * (double)k->raw_len / ((double)(t - t0) / 1e9) / 1e6;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct duel {
	double a, b, a_over_b; /* medians */
};

/* REPS alternating rounds of a vs b, `seconds` in all. */
static struct duel duel(struct corpus *k, step_fn a, step_fn b, double seconds)
{
	uint64_t slice = (uint64_t)(seconds * 1e9 / (2 * REPS));
	double ra[REPS], rb[REPS], ratio[REPS];
	size_t na = 0, nb = 0;

	/* Untimed warm-up: fault in the scratch buffers, train the branches. */
	for (size_t i = 0; i < k->n; i++) {
		a(k, i);
		b(k, i);
	}
	for (int r = 0; r < REPS; r++) {
		if (r % 2 == 0) {
			ra[r] = timed(k, a, slice, &na);
			rb[r] = timed(k, b, slice, &nb);
		} else {
			rb[r] = timed(k, b, slice, &nb);
			ra[r] = timed(k, a, slice, &na);
		}
		ratio[r] = ra[r] / rb[r];
	}
	return (struct duel){median(ra, REPS), median(rb, REPS), median(ratio, REPS)};
}

static void report(const struct codec_opts *o, const struct bench_common *c, const char *data,
		   double ratio, struct duel enc, struct duel dec)
{
	struct bench_json j;

	if (!c->json) {
		printf("%-7s %7u %8u %6.2f %10.1f %10.1f %8.3f %10.1f %10.1f\n", data,
		       o->record_bytes, o->batch_bytes, ratio, enc.a, enc.b, enc.a_over_b, dec.a,
		       dec.b);
		fflush(stdout);
		return;
	}
	bench_json_begin(&j, "codec");
	bench_json_str(&j, "data", data);
	bench_json_int(&j, "record_bytes", o->record_bytes);
	bench_json_int(&j, "batch_bytes", o->batch_bytes);
	bench_json_num(&j, "ratio", ratio);
	bench_json_num(&j, "encode_mb_s", enc.a);
	bench_json_num(&j, "lz4_mb_s", enc.b);
	bench_json_num(&j, "decode_mb_s", dec.a);
	bench_json_num(&j, "lz4_decode_mb_s", dec.b);
	bench_json_num(&j, "encode_vs_lz4", enc.a_over_b);
	bench_json_end(&j);
}

static int run_kind(const struct codec_opts *o, const struct bench_common *c, enum sl_wl_kind kind)
{
	struct corpus k = {0};
	struct duel enc, dec;
	int rc = corpus_alloc(&k, o);

	if (rc < 0)
		return rc;
	rc = corpus_build(&k, o, kind, c->seed);
	if (rc == 0) {
		enc = duel(&k, step_encode, step_lz4, c->seconds);
		dec = duel(&k, step_decode, step_lz4_decode, c->seconds);
		report(o, c, sl_wl_kind_name(kind),
		       (double)(k.n * k.raw_len) / (double)(k.stored ? k.stored : 1), enc, dec);
	}
	corpus_free(&k);
	return rc;
}

int bench_codec_main(const struct bench_common *c, int argc, char **argv)
{
	struct codec_opts o;
	int rc = parse_opts(argc, argv, &o);

	if (rc != 0) {
		usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	if (!c->json)
		printf("# crc32c: %s; MB/s of raw bytes, medians of %d alternating rounds\n"
		       "%-7s %7s %8s %6s %10s %10s %8s %10s %10s\n",
		       sl_crc32c_have_hw() ? "sse4.2" : "table", REPS, "data", "record", "batch",
		       "ratio", "encode", "lz4", "enc/lz4", "decode", "lz4 dec");
	for (int i = 0; i < o.nkinds; i++) {
		if (run_kind(&o, c, (enum sl_wl_kind)o.kinds[i]) < 0)
			return 1;
	}
	return 0;
}
