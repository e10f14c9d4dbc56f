/* Helpers shared by shipbench subcommands: clocks, option parsing, and the
 * one-JSON-object-per-line output every benchmark prints. */
#ifndef SHIPLOG_BENCH_UTIL_H
#define SHIPLOG_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>

struct bench_common {
	int json;           /* --json: one JSON object per result line on stdout */
	double seconds;     /* --seconds: measuring time per phase */
	const char *dir;    /* --dir: where file-system benchmarks write */
	uint64_t seed;      /* --seed */
};

uint64_t bench_now_ns(void);

/* A JSON line builder: bench_json_begin(&j, "codec"); bench_json_str(&j, "data", "text");
 * bench_json_num(&j, "ratio", 2.1); bench_json_end(&j) prints it to stdout. */
struct bench_json {
	char buf[2048];
	size_t len;
};
void bench_json_begin(struct bench_json *j, const char *bench);
void bench_json_str(struct bench_json *j, const char *key, const char *val);
void bench_json_num(struct bench_json *j, const char *key, double val);
void bench_json_int(struct bench_json *j, const char *key, long long val);
void bench_json_end(struct bench_json *j);

/* Progress on stderr for long runs ("store: 3.0/10.0 s"), at most once a second. */
void bench_progress(const char *what, double done, double total);

/* Parse an unsigned number option in [min, max] (accepts 0x.., and K/M/G
 * suffixes meaning KiB/MiB/GiB); prints "shipbench: OPT wants ..." and
 * returns -EINVAL on anything else. */
int bench_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Subcommands: argc/argv start at the subcommand's own options. */
int bench_codec_main(const struct bench_common *c, int argc, char **argv);
int bench_store_main(const struct bench_common *c, int argc, char **argv);
int bench_proto_main(const struct bench_common *c, int argc, char **argv);

#endif
