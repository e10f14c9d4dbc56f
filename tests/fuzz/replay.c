/* The shared replay driver of the fuzz targets: see replay.h. */
#include "replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long n_inputs;
static uint64_t rng;

void replay_run(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	n_inputs++;
}

uint64_t replay_rand(void)
{
	return sl_rng_next(&rng);
}

uint32_t replay_below(uint32_t n)
{
	return (uint32_t)((replay_rand() >> 32) * n >> 32);
}

uint32_t replay_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void replay_wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void replay_patch32(const struct replay_target *t, const struct replay_seed *s, uint8_t *w,
		    size_t off, uint32_t val)
{
	if (off + 4 > s->len)
		return;
	memcpy(w, s->buf, s->len);
	replay_wr32(w + off, val);
	t->refix(w, s->len);
	replay_run(w, s->len);
	memcpy(w, s->buf, s->len);
}

/* ---- the mutations every format gets ---- */

/* Every short prefix, strided in the middle of large seeds; then the seed
 * with 1 to 64 random bytes after it. */
static void truncations_and_extensions(const struct replay_seed *s)
{
	size_t step = s->len <= 4096 ? 1 : s->len / 1024;
	uint8_t *w = malloc(s->len + 64);

	if (w == NULL)
		abort();
	for (size_t len = 0; len < s->len; len += (len < 128 || len + 128 > s->len) ? 1 : step)
		replay_run(s->buf, len);
	memcpy(w, s->buf, s->len);
	for (size_t i = 0; i < 64; i++)
		w[s->len + i] = (uint8_t)replay_rand();
	for (size_t extra = 1; extra <= 64; extra *= 2)
		replay_run(w, s->len + extra);
	free(w);
}

/* Every bit of the header (and of small seeds); a strided sample elsewhere. */
static void bit_flips(const struct replay_target *t, const struct replay_seed *s, uint8_t *w)
{
	size_t bits = s->len * 8;
	size_t step = s->len <= t->dense_len ? 1 : bits / t->flip_budget;

	if (step == 0)
		step = 1;
	for (size_t bit = 0; bit < bits; bit += bit < t->hdr_len * 8 ? 1 : step) {
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		replay_run(w, s->len);
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* A few bytes set at random, every other round only in the header (where the
 * checks are); half the rounds with the checksums refixed, which is what
 * feeds damaged bodies to the checks behind them. */
static void random_damage(const struct replay_target *t, const struct replay_seed *s, uint8_t *w)
{
	int rounds = s->len > 16384 ? t->damage_rounds / 5 : t->damage_rounds;

	if (s->len == 0)
		return;
	for (int r = 0; r < rounds; r++) {
		int hits = 1 + (int)replay_below(8);
		uint32_t lim =
		    (r & 2) || s->len < t->hdr_len ? (uint32_t)s->len : (uint32_t)t->hdr_len;

		memcpy(w, s->buf, s->len);
		for (int k = 0; k < hits; k++)
			w[replay_below(lim)] = (uint8_t)replay_rand();
		if (r & 1)
			t->refix(w, s->len);
		replay_run(w, s->len);
	}
	memcpy(w, s->buf, s->len);
}

/* Two inputs back to back, and one's header on the other's body, refixed. */
static void splices(const struct replay_target *t, const struct replay_seed *a,
		    const struct replay_seed *b)
{
	size_t len = a->len + b->len;
	uint8_t *w = malloc(len ? len : 1);

	if (w == NULL)
		abort();
	memcpy(w, a->buf, a->len);
	memcpy(w + a->len, b->buf, b->len);
	replay_run(w, len);
	if (a->len >= t->hdr_len && b->len >= t->hdr_len) {
		memcpy(w, a->buf, t->hdr_len);
		memcpy(w + t->hdr_len, b->buf + t->hdr_len, b->len - t->hdr_len);
		t->refix(w, b->len);
		replay_run(w, b->len);
	}
	free(w);
}

/* ---- the command line ---- */

static int replay_seeds(const struct replay_target *t)
{
	struct replay_seed s[REPLAY_SEEDS_MAX];
	size_t n = t->make_seeds(s);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t *w = malloc(s[i].len ? s[i].len : 1);

		if (w == NULL)
			abort();
		if (t->accepts(&s[i]) < 0) {
			fprintf(stderr, "%s: seed %zu rejected\n", t->name, i);
			bad = 1;
		}
		memcpy(w, s[i].buf, s[i].len);
		replay_run(s[i].buf, s[i].len);
		truncations_and_extensions(&s[i]);
		bit_flips(t, &s[i], w);
		t->patches(&s[i], w);
		random_damage(t, &s[i], w);
		for (size_t j = 0; j < n; j++)
			splices(t, &s[i], &s[j]);
		free(w);
	}
	for (size_t i = 0; i < n; i++)
		free(s[i].buf);
	if (t->extra != NULL)
		t->extra();
	printf("%s: %lu inputs from %zu seeds\n", t->name, n_inputs, n);
	return bad;
}

static int write_seeds(const struct replay_target *t, const char *dir)
{
	struct replay_seed s[REPLAY_SEEDS_MAX];
	size_t n = t->make_seeds(s);
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed-%02zu.%s", dir, i, t->ext);
		f = fopen(path, "wb");
		if (f == NULL || fwrite(s[i].buf, 1, s[i].len, f) != s[i].len || fclose(f) != 0) {
			fprintf(stderr, "%s: writing %s: %s\n", t->name, path, strerror(errno));
			rc = 1;
		}
		free(s[i].buf);
	}
	if (rc == 0)
		printf("%s: wrote %zu seeds to %s\n", t->name, n, dir);
	return rc;
}

static int replay_file(const struct replay_target *t, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "%s: %s: %s\n", t->name, path, strerror(errno));
		return 1;
	}
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	replay_run(buf, len);
	free(buf);
	return 0;
}

int replay_main(const struct replay_target *t, int argc, char **argv)
{
	int rc = 0;

	rng = t->rng_seed;
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(t, argv[2]);
	if (argc == 1)
		return replay_seeds(t);
	for (int i = 1; i < argc; i++)
		rc |= replay_file(t, argv[i]);
	printf("%s: %lu inputs from files\n", t->name, n_inputs);
	return rc;
}
