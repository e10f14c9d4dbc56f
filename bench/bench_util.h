/* Helpers shared by shipbench subcommands: clocks, option parsing, and the
 * one-JSON-object-per-line output every benchmark prints. */
#ifndef SHIPLOG_BENCH_UTIL_H
#define SHIPLOG_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shiplog/hist.h"
#include "shiplog/store.h"

struct bench_common {
	int json;	 /* --json: one JSON object per result line on stdout */
	double seconds;	 /* --seconds: measuring time per phase */
	const char *dir; /* --dir: where file-system benchmarks write */
	uint64_t seed;	 /* --seed */
};

uint64_t bench_now_ns(void);
/* qsort comparator of uint64_t values (or of records led by one). */
int bench_cmp_u64(const void *a, const void *b);
/* qsort comparator of doubles. */
int bench_cmp_double(const void *a, const void *b);

/* A JSON line builder: bench_json_begin(&j, "codec"); bench_json_str(&j, "data", "text");
 * bench_json_num(&j, "ratio", 2.1); bench_json_end(&j) prints it to stdout. */
struct bench_json {
	char buf[8192]; /* --breakdown adds about 1.5 KB of keys */
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

/* Incompressible bytes from a xorshift state. */
void bench_fill_random(uint8_t *p, size_t n, uint64_t *x);
/* A new O_DIRECT file `dir`/`name`-N of `size` preallocated bytes, its path
 * in `path`. The descriptor, or -errno (printed). */
int bench_fresh_file(const char *dir, const char *name, uint64_t size, char *path, size_t cap);
/* The disk's durable-write limit: 4 KiB O_DIRECT writes at queue depth 1 in
 * a fresh file in `dir` for `secs`, each pwrite + fdatasync (or one
 * pwritev2 RWF_DSYNC for SL_SYNC_DSYNC), latencies into h. `written` 0:
 * into the file's fallocated (unwritten) blocks; else the first `written`
 * bytes are written and synced first and the writes cycle over them, as a
 * log that writes ahead of its appends does. 0 or -errno. */
int bench_raw_sync(const char *dir, enum sl_sync_mode mode, double secs, uint64_t written,
		   struct sl_hist *h, uint64_t *seed);
/* The same probe run by `n` threads at once, each on its own file in `dir`
 * (what the nodes of one machine's cluster contend with), with RWF_DSYNC,
 * each writing at most `per_s` times a second (0: back to back) for `secs`
 * from a common start; every write's latency into h. 0 or -errno. */
int bench_raw_sync_par(const char *dir, unsigned n, uint64_t per_s, double secs, uint64_t written,
		       struct sl_hist *h, uint64_t *seed);
/* The same with a log's pattern: each of `writers` threads makes durable
 * writes of `bytes` (a multiple of 4096, at most BENCH_ZERO_CHUNK) at
 * `per_s` (0: back to back), and with zeros_per_s as many more threads each
 * write a BENCH_ZERO_CHUNK of zeros into fresh (fallocated) blocks and
 * fdatasync it, zeros_per_s times a second, as a log's prewriting does
 * (io/store.c); only the durable writes' latencies go into h. */
#define BENCH_ZERO_CHUNK (1u << 20)
struct bench_sync_pattern {
	unsigned writers;
	uint64_t per_s;
	uint32_t bytes;
	uint64_t zeros_per_s;
};
int bench_raw_sync_pattern(const char *dir, const struct bench_sync_pattern *p, double secs,
			   uint64_t written, struct sl_hist *h, uint64_t *seed);
/* Sequential O_DIRECT writes of `wbytes`, `depth` in flight through
 * io_uring, into fd from offset 0 for `secs`: wrapping at `file_bytes` when
 * `wrap`, else stopping there (which ends the phase early). secs < 0: one
 * pass, untimed. Adds the bytes written and the time taken to *bytes and
 * *ns (when not NULL). 0 or -errno. */
int bench_raw_loop(int fd, uint64_t file_bytes, int wrap, uint32_t wbytes, unsigned depth,
		   double secs, uint64_t *bytes, uint64_t *ns, uint64_t *seed);
/* LZ4_compress_default speed on `pool`, `chunk` bytes at a time (a batch's
 * raw payload), for `secs`: MB/s of input (1 MB = 1e6 bytes), 0 on ENOMEM. */
double bench_lz4_mb_s(const uint8_t *pool, size_t total, size_t chunk, double secs);
/* Remove a directory and what is in it (files and directories). */
void bench_remove_dir(const char *path);

/* Subcommands: argc/argv start at the subcommand's own options. */
int bench_codec_main(const struct bench_common *c, int argc, char **argv);
int bench_store_main(const struct bench_common *c, int argc, char **argv);
int bench_proto_main(const struct bench_common *c, int argc, char **argv);
int bench_cluster_main(const struct bench_common *c, int argc, char **argv);
int bench_client_main(const struct bench_common *c, int argc, char **argv);
int bench_failover_main(const struct bench_common *c, int argc, char **argv);

#endif
