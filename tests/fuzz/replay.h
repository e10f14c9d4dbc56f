/* The replay driver every fuzz target shares when built without libFuzzer
 * (gcc builds, CI): the command line, exactly-sized heap copies so that ASan
 * sees any over-read, and the mutations all formats get (truncations and
 * extensions, bit flips, random damage, splices). Each standalone_*.c
 * describes its format in a struct replay_target and adds its own patches. */
#ifndef SHIPLOG_TESTS_FUZZ_REPLAY_H
#define SHIPLOG_TESTS_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_SEEDS_MAX 32

struct replay_seed {
	uint8_t *buf;
	size_t len;
};

struct replay_target {
	const char *name; /* program name in messages: "fuzz_batch_replay" */
	const char *ext;  /* seed file extension for --write-seeds: "batch" */
	uint64_t rng_seed;
	/* Builds the valid inputs (at most REPLAY_SEEDS_MAX, heap buffers). */
	size_t (*make_seeds)(struct replay_seed *s);
	/* 0 if the format's decoder accepts a seed (else the mutations prove little). */
	int (*accepts)(const struct replay_seed *s);
	/* Recomputes the checksums over whatever the fields describe that is present. */
	void (*refix)(uint8_t *b, size_t len);
	/* The format's own patches; w holds the seed and must hold it again on return. */
	void (*patches)(const struct replay_seed *s, uint8_t *w);
	/* Inputs not derived from the seeds, run once (may be NULL). */
	void (*extra)(void);
	size_t hdr_len;	    /* bytes of header: bit-flipped densely, damaged often, spliced */
	size_t dense_len;   /* seeds up to this size are bit-flipped densely throughout */
	size_t flip_budget; /* roughly how many bit flips beyond the header on larger seeds */
	int damage_rounds;  /* random damage rounds per seed */
};

/* Runs the target on a heap copy of exactly len bytes. */
void replay_run(const uint8_t *data, size_t len);
/* The driver's deterministic PRNG. */
uint64_t replay_rand(void);
uint32_t replay_below(uint32_t n);
/* Copies the seed into w, sets the u32 (little-endian) at off, refixes, runs, restores. */
void replay_patch32(const struct replay_target *t, const struct replay_seed *s, uint8_t *w,
		    size_t off, uint32_t val);

uint32_t replay_rd32(const uint8_t *p);
void replay_wr32(uint8_t *p, uint32_t v);

/* main(): no arguments replays the deterministic set; FILE... replays files;
 * --write-seeds DIR writes the seeds as a libFuzzer corpus. */
int replay_main(const struct replay_target *t, int argc, char **argv);

#endif
