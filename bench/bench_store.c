/* shipbench store: the log store against the raw disk, on the same file
 * system in the same run. Each store figure has a raw figure made on the same
 * terms: same file system, same write size (the store's group size), same
 * number of writes in flight, same kind of file. The kind of file matters
 * most: on ext4 a write into preallocated but never-written blocks
 * (unwritten extents) converts extents, and a durable one must also write
 * the inode's extent tree, so writes into a new file and writes over written
 * blocks are different workloads.
 *
 *   raw_write_mb_s     plain io_uring O_DIRECT sequential writes, no fsync, into
 *                      a new preallocated file (as a new segment is). The
 *                      file is never wrapped (RAW_FILE_BYTES; the phase ends
 *                      early if it fills), so every write is a first write.
 *   append_mb_s        a new log: the store appending pre-encoded batches in a
 *                      closed loop (group commit; the time includes the final
 *                      sync, so every byte counted is durable), every segment
 *                      a new file. append_vs_raw = append / raw_write.
 *   raw_overwrite_mb_s the same raw writes, wrapping over a file of
 *                      OVERWRITE_FILE_BYTES written once beforehand (untimed):
 *                      every write goes over written blocks.
 *   recycled_mb_s      a log at steady state under retention: as append_mb_s,
 *                      but the log first rolls over RECYCLE_WARM_SEGS segments
 *                      (untimed), and while timed, whenever it holds more than
 *                      two segments, sl_store_drop_before (its renames and
 *                      directory fsync included in the time) turns the older
 *                      ones into spares that later roll-overs reuse. The
 *                      store's working set, about four segments, is what
 *                      OVERWRITE_FILE_BYTES matches. recycled_vs_raw =
 *                      recycled / raw_overwrite.
 *   raw_fsync_*        4 KiB O_DIRECT pwrite + fdatasync at queue depth 1 (for
 *                      the dsync and default modes: pwritev2 with RWF_DSYNC,
 *                      which is what the store's default sends a lone group
 *                      with), fresh file
 *   durable_*          queue depth 1 on a new log: append one ~4 KiB batch,
 *                      flush, wait until the store reports it durable
 *
 * Every store throughput phase runs right after its raw counterpart, and
 * each sync mode reports the raw figures measured next to its own phases:
 * the disk is shared and its speed drifts by tens of percent over seconds, so
 * a raw figure from another moment would compare the drift, not the store.
 * Each phase runs for --seconds in rounds of about SLICE_SECONDS (at least
 * MIN_ROUNDS), short so that the drift averages out over many pairs; the sync
 * modes rotate their order from round to round so none always runs first on
 * a disk another just warmed. The store's sync modes: default (adaptive, see
 * store.h), fdatasync and dsync. MB/s counts batch (stored) bytes for the
 * store and written bytes for the raw loops, 1 MB = 1e6 bytes.
 *
 *   scrub_cpu_s_per_gb CPU seconds (user + system, this thread) per GB (1e9
 *                      bytes) of batches the store's scrub checks
 *                      (sl_store_scrub over a log of SCRUB_LOG_BYTES in
 *                      SCRUB_SEG_BYTES segments, a pass over its sealed
 *                      ones, at full speed), once per run after the modes.
 *                      Its limit, read_crc_cpu_s_per_gb: the same files read
 *                      with pread in 1 MiB pieces and CRC32C'd, the least a
 *                      check of every byte costs; both read from the page
 *                      cache (the files are read once beforehand, untimed).
 *                      scrub_core_share: the fraction of a core the scrub
 *                      takes at shipd's default scrub_rate (64 MiB/s). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench_util.h"
#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/hist.h"
#include "shiplog/le.h"
#include "shiplog/store.h"

#define MIN_ROUNDS	     3
#define SLICE_SECONDS	     0.5 /* target length of one phase's slice */
#define RAW_FILE_BYTES	     (2ull << 30)
#define OVERWRITE_FILE_BYTES (256ull << 20)
#define RECYCLE_WARM_SEGS    4
#define TEMPLATES	     8
#define SMALL_RAW	     3900 /* a ~4 KiB batch: with headers, one 4 KiB block */
#define SCRUB_LOG_BYTES	     (192ull << 20)
#define SCRUB_SEG_BYTES	     (16ull << 20)
#define SCRUB_RATE_DEFAULT   (64ull << 20) /* shipd's scrub_rate default */

struct sbench_opts {
	uint32_t batch_bytes;
	uint32_t group_bytes;
	uint32_t inflight;
	int32_t spares;
	enum sl_sync_mode modes[3];
	int nmodes;
};

/* The scrub's CPU cost and its limit (see the top). */
struct scrub_result {
	uint64_t scrub_bytes, read_bytes;
	double scrub_cpu_s, read_cpu_s;
};

/* What one sync mode accumulates over the rounds. */
struct mode_result {
	enum sl_sync_mode mode;
	uint64_t append_bytes;
	uint64_t append_ns;
	uint64_t recycled_bytes;
	uint64_t recycled_ns;
	uint64_t raw_bytes, raw_ns;   /* raw_write, run just before each append */
	uint64_t over_bytes, over_ns; /* raw_overwrite, just before each recycled */
	struct sl_hist durable;
	struct sl_hist raw_sync;
	int direct_io;
};

static const uint8_t bench_cluster[16] = {'s', 'h', 'i', 'p', 'b', 'e', 'n', 'c', 'h'};

static void usage(FILE *f)
{
	fprintf(f, "usage: shipbench store [--json] [--seconds S] [--dir DIR] [--seed N]\n"
		   "                      [--batch-bytes N] [--group-bytes N] [--inflight N]\n"
		   "                      [--sync default|fdatasync|dsync|both|all] [--spares N]\n"
		   "  --batch-bytes N  raw bytes per batch in the append phase (default 65536)\n"
		   "  --group-bytes N  the store's group_bytes and the raw write size (default "
		   "1048576)\n"
		   "  --inflight N     groups (and raw writes) in flight (default 2)\n"
		   "  --sync MODE      the store's sync_mode measured (default all; both: "
		   "fdatasync and dsync)\n"
		   "  --spares N       the store's spare_segments (default 0: its default; -1: "
		   "none)\n");
}

static const char *mode_name(enum sl_sync_mode m)
{
	return m == SL_SYNC_DEFAULT ? "default" : m == SL_SYNC_DSYNC ? "dsync" : "fdatasync";
}

/* The plain system calls a mode's QD1 latency is measured against: the
 * default sends a group that is alone with RWF_DSYNC. */
static enum sl_sync_mode raw_sync_mode(enum sl_sync_mode m)
{
	return m == SL_SYNC_FDATASYNC ? SL_SYNC_FDATASYNC : SL_SYNC_DSYNC;
}

static int parse_opts(int argc, char **argv, struct sbench_opts *o)
{
	o->batch_bytes = 64 << 10;
	o->group_bytes = 1 << 20;
	o->inflight = 2;
	o->spares = 0;
	o->modes[0] = SL_SYNC_DEFAULT;
	o->modes[1] = SL_SYNC_FDATASYNC;
	o->modes[2] = SL_SYNC_DSYNC;
	o->nmodes = 3;
	for (int i = 1; i < argc; i++) { /* argv[0] is the subcommand */
		const char *a = argv[i];
		int has_val = i + 1 < argc;

		if (strcmp(a, "--batch-bytes") == 0 && has_val) {
			o->batch_bytes = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (strcmp(a, "--group-bytes") == 0 && has_val) {
			o->group_bytes = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (strcmp(a, "--inflight") == 0 && has_val) {
			o->inflight = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (strcmp(a, "--spares") == 0 && has_val) {
			o->spares = (int32_t)strtol(argv[++i], NULL, 0);
		} else if (strcmp(a, "--sync") == 0 && has_val) {
			const char *v = argv[++i];

			o->nmodes = 1;
			if (strcmp(v, "default") == 0) {
				o->modes[0] = SL_SYNC_DEFAULT;
			} else if (strcmp(v, "fdatasync") == 0) {
				o->modes[0] = SL_SYNC_FDATASYNC;
			} else if (strcmp(v, "dsync") == 0) {
				o->modes[0] = SL_SYNC_DSYNC;
			} else if (strcmp(v, "both") == 0) {
				o->modes[0] = SL_SYNC_FDATASYNC;
				o->modes[1] = SL_SYNC_DSYNC;
				o->nmodes = 2;
			} else if (strcmp(v, "all") == 0) {
				o->modes[0] = SL_SYNC_DEFAULT;
				o->modes[1] = SL_SYNC_FDATASYNC;
				o->modes[2] = SL_SYNC_DSYNC;
				o->nmodes = 3;
			} else {
				goto bad;
			}
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else {
			goto bad;
		}
	}
	if (o->batch_bytes < 64 || o->group_bytes < 4096 || o->inflight < 1 || o->inflight > 64 ||
	    o->batch_bytes + 4096 > o->group_bytes) {
		fprintf(stderr, "shipbench store: need 64 <= batch-bytes <= group-bytes - 4096, "
				"1 <= inflight <= 64\n");
		return -EINVAL;
	}
	return 0;
bad:
	usage(stderr);
	return -EINVAL;
}

/* --- the raw baselines --------------------------------------------------- */

/* Into a new preallocated file: every write a first write, into blocks as
 * new as a new segment's. A file of its own for every phase: with online
 * discard (the development machine's ext4 has -o discard) freed blocks are
 * trimmed, and a virtual disk then deallocates them on the host, so blocks
 * written before are faster to write again than new ones, at every level
 * below the file system too. The file is removed right after (untimed): on
 * the development machine unlink discards synchronously (about 350 ms for
 * 2 GiB) and the next phase shows no after-effect; settle() then commits any
 * journal a file system has before the next phase starts. */
static int raw_write(const char *dir, uint32_t wbytes, unsigned depth, double secs, uint64_t *bytes,
		     uint64_t *ns, uint64_t *seed)
{
	char path[4096];
	int fd, rc;

	if ((fd = bench_fresh_file(dir, "raw-write", RAW_FILE_BYTES, path, sizeof(path))) < 0)
		return fd;
	rc = bench_raw_loop(fd, RAW_FILE_BYTES, 0, wbytes, depth, secs, bytes, ns, seed);
	close(fd);
	unlink(path);
	return rc;
}

/* Over written blocks: the file is made and written once (untimed), then
 * kept in *fd for the later rounds. */
static int raw_overwrite(const char *dir, int *fd, uint32_t wbytes, unsigned depth, double secs,
			 uint64_t *bytes, uint64_t *ns, uint64_t *seed)
{
	char path[4096];
	int rc;

	if (*fd < 0) {
		*fd = bench_fresh_file(dir, "raw-overwrite", OVERWRITE_FILE_BYTES, path,
				       sizeof(path));
		if (*fd < 0)
			return *fd;
		rc = bench_raw_loop(*fd, OVERWRITE_FILE_BYTES, 0, wbytes, depth, -1, NULL, NULL,
				    seed);
		if (rc < 0 || (rc = fsync(*fd) < 0 ? -errno : 0) < 0)
			return rc;
	}
	return bench_raw_loop(*fd, OVERWRITE_FILE_BYTES, 1, wbytes, depth, secs, bytes, ns, seed);
}

/* --- the store ----------------------------------------------------------- */

/* Pre-encoded batches; appending one only restamps its header (lsn,
 * position, previous CRC, header CRC), as the payload never changes. */
struct templates {
	uint8_t *b[TEMPLATES];
	size_t len[TEMPLATES];
	uint32_t count;
	uint64_t next_lsn, position;
	uint32_t prev_crc;
};

static int templates_make(struct templates *t, uint32_t raw_bytes, uint64_t *seed)
{
	uint32_t rec = raw_bytes > 4096 ? 4092 : raw_bytes - SL_REC_PREFIX;
	uint8_t *raw = malloc(raw_bytes), *r = malloc(rec);
	struct sl_batch_builder bld;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	t->next_lsn = 1;
	if (raw == NULL || r == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < TEMPLATES && rc == 0; i++) {
		struct sl_batch_hdr h = {.stream_id = 1, .epoch = 1, .base_lsn = 1};
		size_t cap = sl_batch_bound(raw_bytes);
		int len;

		sl_batch_builder_init(&bld, raw, raw_bytes);
		for (;;) {
			bench_fill_random(r, rec, seed);
			if (sl_batch_builder_add(&bld, r, rec) < 0)
				break;
		}
		memcpy(h.cluster_id, bench_cluster, 16);
		t->b[i] = malloc(cap);
		if (t->b[i] == NULL) {
			rc = -ENOMEM;
			break;
		}
		len = sl_batch_encode(&h, raw, bld.len, bld.count, t->b[i], cap);
		if (len < 0)
			rc = len;
		t->len[i] = (size_t)len;
		t->count = bld.count;
	}
out:
	free(raw);
	free(r);
	return rc;
}

static void templates_free(struct templates *t)
{
	for (int i = 0; i < TEMPLATES; i++)
		free(t->b[i]);
}

/* The next batch of the chain, ready to append. */
static const uint8_t *templates_next(struct templates *t, uint64_t n, size_t *len)
{
	uint8_t *b = t->b[n % TEMPLATES];
	uint32_t crc;

	sl_le64_put(b + 40, t->next_lsn);
	sl_le64_put(b + 56, t->position);
	sl_le32_put(b + 72, t->prev_crc);
	crc = sl_crc32c(0, b, 92);
	sl_le32_put(b + 92, crc);
	*len = t->len[n % TEMPLATES];
	t->next_lsn += t->count;
	t->position += *len;
	t->prev_crc = crc;
	return b;
}

/* Open a store of this bench's cluster in `dir`, saying why when it fails. */
static int open_in(char *dir, struct sl_store_opts *so, struct sl_store **s)
{
	int rc;

	memcpy(so->cluster_id, bench_cluster, 16);
	so->dir = dir;
	if ((rc = sl_store_open(s, so)) < 0)
		fprintf(stderr, "shipbench store: %s\n", sl_err_msg());
	return rc;
}

static int open_bench_store(const char *base, const char *tag, const struct sbench_opts *o,
			    enum sl_sync_mode mode, struct sl_store **s, char *dir, size_t cap)
{
	struct sl_store_opts so = {.stream_id = 1,
				   .node_id = 1,
				   .group_bytes = o->group_bytes,
				   .max_inflight = o->inflight,
				   .sync_mode = mode,
				   .io_mode = SL_IO_AUTO,
				   .spare_segments = o->spares,
				   .create = 1};
	static unsigned serial;

	snprintf(dir, cap, "%s/%s-%s-%u", base, tag, mode_name(mode), serial++);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return open_in(dir, &so, s);
}

/* A store of small segments for the scrub (its sealed ones are scrubbed). */
static int open_scrub_store(const char *base, const struct sbench_opts *o, struct sl_store **s,
			    char *dir, size_t cap)
{
	struct sl_store_opts so = {.stream_id = 1,
				   .node_id = 1,
				   .segment_bytes = SCRUB_SEG_BYTES,
				   .group_bytes = o->group_bytes,
				   .max_inflight = o->inflight,
				   .io_mode = SL_IO_AUTO,
				   .spare_segments = o->spares,
				   .create = 1};

	if ((size_t)snprintf(dir, cap, "%s/scrub", base) >= cap)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return open_in(dir, &so, s);
}

/* Closed loop: append as fast as the store takes batches, then sync. */
static int store_append(const char *base, const struct sbench_opts *o, enum sl_sync_mode mode,
			double secs, struct mode_result *r, uint64_t *seed)
{
	struct templates t;
	struct sl_store *s = NULL;
	struct sl_store_info info;
	char dir[4096];
	uint64_t start, deadline, n = 0, bytes = 0;
	int rc;

	if ((rc = templates_make(&t, o->batch_bytes, seed)) < 0)
		return rc;
	if ((rc = open_bench_store(base, "append", o, mode, &s, dir, sizeof(dir))) < 0)
		goto out;
	start = bench_now_ns();
	deadline = start + (uint64_t)(secs * 1e9);
	while (rc == 0 && bench_now_ns() < deadline) {
		size_t len;
		const uint8_t *b = templates_next(&t, n++, &len);

		while ((rc = sl_store_append(s, b, len)) == -EAGAIN)
			if ((rc = sl_store_poll(s, 1)) < 0)
				break;
		bytes += len;
	}
	if (rc == 0)
		rc = sl_store_sync(s);
	if (rc < 0) {
		fprintf(stderr, "shipbench store: append: %s\n", sl_err_msg());
		goto out;
	}
	r->append_ns += bench_now_ns() - start;
	r->append_bytes += bytes;
	sl_store_get_info(s, &info);
	r->direct_io = info.direct_io;
out:
	sl_store_close(s);
	bench_remove_dir(dir); /* untimed, like raw_write's unlink */
	templates_free(&t);
	return rc;
}

/* Start each phase on a quiet file system: what the last one left dirty is
 * written and committed first. */
static void settle(const char *base)
{
	int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
}

/* Append the next batch, polling while the store is busy. */
static int append_one(struct sl_store *s, struct templates *t, uint64_t n, uint64_t *bytes)
{
	size_t len;
	const uint8_t *b = templates_next(t, n, &len);
	int rc;

	while ((rc = sl_store_append(s, b, len)) == -EAGAIN)
		if ((rc = sl_store_poll(s, 1)) < 0)
			return rc;
	*bytes += len;
	return rc;
}

/* Steady state under retention: roll over RECYCLE_WARM_SEGS segments, drop
 * all but the last (they become the spares), then a closed loop as in
 * store_append that keeps retention going, so roll-overs reuse the files
 * retention left. */
static int store_recycled(const char *base, const struct sbench_opts *o, enum sl_sync_mode mode,
			  double secs, struct mode_result *r, uint64_t *seed)
{
	struct templates t;
	struct sl_store *s = NULL;
	struct sl_store_info info;
	char dir[4096];
	uint64_t start, deadline, n = 0, bytes = 0;
	int rc;

	if ((rc = templates_make(&t, o->batch_bytes, seed)) < 0)
		return rc;
	if ((rc = open_bench_store(base, "recycled", o, mode, &s, dir, sizeof(dir))) < 0)
		goto out;
	do {
		rc = append_one(s, &t, n++, &bytes);
		sl_store_get_info(s, &info);
	} while (rc == 0 && info.segments < RECYCLE_WARM_SEGS);
	if (rc == 0)
		rc = sl_store_sync(s);
	if (rc == 0)
		rc = sl_store_drop_before(s, UINT64_MAX);
	settle(base);
	bytes = 0;
	start = bench_now_ns();
	deadline = start + (uint64_t)(secs * 1e9);
	while (rc >= 0 && bench_now_ns() < deadline) {
		rc = append_one(s, &t, n, &bytes);
		if (rc == 0 && ++n % 16 == 0) {
			sl_store_get_info(s, &info);
			if (info.segments > 2)
				rc = sl_store_drop_before(s, UINT64_MAX);
		}
	}
	if (rc >= 0)
		rc = sl_store_sync(s);
	if (rc < 0) {
		fprintf(stderr, "shipbench store: recycled: %s\n", sl_err_msg());
		goto out;
	}
	r->recycled_ns += bench_now_ns() - start;
	r->recycled_bytes += bytes;
out:
	sl_store_close(s);
	bench_remove_dir(dir);
	templates_free(&t);
	return rc;
}

/* Queue depth 1: one small batch, flush, wait until durable. */
static int store_latency(const char *base, const struct sbench_opts *o, enum sl_sync_mode mode,
			 double secs, struct mode_result *r, uint64_t *seed)
{
	struct templates t;
	struct sl_store *s = NULL;
	char dir[4096];
	uint64_t deadline, n = 0;
	int rc;

	if ((rc = templates_make(&t, SMALL_RAW, seed)) < 0)
		return rc;
	if ((rc = open_bench_store(base, "latency", o, mode, &s, dir, sizeof(dir))) < 0)
		goto out;
	deadline = bench_now_ns() + (uint64_t)(secs * 1e9);
	while (rc >= 0 && bench_now_ns() < deadline) {
		size_t len;
		const uint8_t *b = templates_next(&t, n++, &len);
		uint64_t t0 = bench_now_ns();

		if ((rc = sl_store_append(s, b, len)) < 0 || (rc = sl_store_flush(s)) < 0)
			break;
		do
			rc = sl_store_poll(s, 1);
		while (rc == 0);
		sl_hist_record(&r->durable, bench_now_ns() - t0);
	}
	if (rc < 0)
		fprintf(stderr, "shipbench store: latency: %s\n", sl_err_msg());
	rc = rc < 0 ? rc : 0;
out:
	sl_store_close(s);
	bench_remove_dir(dir);
	templates_free(&t);
	return rc;
}

/* --- the scrub's CPU cost --------------------------------------------------- */

static double thread_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read every sealed segment file of `dir` (all but the last) in 1 MiB
 * pieces, CRC32C over each when `crc`: bytes read, or -errno. */
static int64_t read_sealed(const char *dir, int crc, uint32_t *sink)
{
	char *names[256], path[4352];
	static uint8_t buf[1 << 20];
	struct dirent *de;
	int64_t total = 0;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL && n < 256)
		if (strstr(de->d_name, ".seg") && (names[n] = strdup(de->d_name)) != NULL)
			n++;
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_name);
	for (int i = 0; i < n; i++) {
		int fd;
		ssize_t got;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fd = i + 1 < n ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		for (off_t off = 0; fd >= 0 && (got = pread(fd, buf, sizeof(buf), off)) > 0;
		     off += got) {
			total += got;
			if (crc)
				*sink ^= sl_crc32c(0, buf, (size_t)got);
		}
		if (fd >= 0)
			close(fd);
		free(names[i]);
	}
	return total;
}

/* A log of SCRUB_LOG_BYTES, then one scrub pass over its sealed segments
 * and the same files read and CRC'd, each timed in CPU seconds. */
static int scrub_cost(const char *base, const struct sbench_opts *o, struct scrub_result *r,
		      uint64_t *seed)
{
	struct sbench_opts so = *o;
	struct templates t;
	struct sl_store *s = NULL;
	struct sl_store_tree tree;
	struct sl_store_bad bad;
	char dir[4096];
	uint64_t n = 0, bytes = 0;
	uint32_t sink = 0;
	double c0;
	int rc;

	so.spares = -1;
	if ((rc = templates_make(&t, o->batch_bytes, seed)) < 0)
		return rc;
	if ((rc = open_scrub_store(base, &so, &s, dir, sizeof(dir))) < 0)
		goto out;
	while (rc == 0 && bytes < SCRUB_LOG_BYTES)
		rc = append_one(s, &t, n++, &bytes);
	if (rc == 0)
		rc = sl_store_sync(s);
	if (rc == 0 && (rc = (int)read_sealed(dir, 0, &sink)) >= 0) /* into the page cache */
		rc = 0;
	settle(base);
	if (rc < 0) {
		fprintf(stderr, "shipbench store: scrub: %s\n", sl_err_msg());
		goto out;
	}
	c0 = thread_cpu_s();
	while ((rc = sl_store_scrub(s, 1 << 20, &bad)) == 1)
		;
	r->scrub_cpu_s += thread_cpu_s() - c0;
	if (rc != 0) { /* 2: a bad batch in a log just written */
		fprintf(stderr, "shipbench store: scrub: %s\n", rc == 2 ? bad.why : sl_err_msg());
		rc = rc < 0 ? rc : -EIO;
		goto out;
	}
	sl_store_tree(s, &tree);
	r->scrub_bytes +=
	    (tree.sealed < tree.leaves ? tree.leaf_pos[tree.sealed] : tree.end_pos) - tree.base_pos;
	c0 = thread_cpu_s();
	{
		int64_t got = read_sealed(dir, 1, &sink);

		r->read_cpu_s += thread_cpu_s() - c0;
		rc = got < 0 ? (int)got : 0;
		r->read_bytes += got > 0 ? (uint64_t)got : 0;
	}
out:
	sl_store_close(s);
	bench_remove_dir(dir);
	templates_free(&t);
	return rc;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void report(const struct bench_common *c, const struct sbench_opts *o,
		   const struct mode_result *r, const struct scrub_result *sr)
{
	double scrub_s_gb = sr->scrub_bytes ? sr->scrub_cpu_s * 1e9 / (double)sr->scrub_bytes : 0;
	double read_s_gb = sr->read_bytes ? sr->read_cpu_s * 1e9 / (double)sr->read_bytes : 0;
	double share = scrub_s_gb * (double)SCRUB_RATE_DEFAULT / 1e9;
	double raw_mb_s = r->raw_ns ? (double)r->raw_bytes * 1e3 / (double)r->raw_ns : 0.0;
	double over_mb_s = r->over_ns ? (double)r->over_bytes * 1e3 / (double)r->over_ns : 0.0;
	double append_mb_s =
	    r->append_ns ? (double)r->append_bytes * 1e3 / (double)r->append_ns : 0.0;
	double recycled_mb_s =
	    r->recycled_ns ? (double)r->recycled_bytes * 1e3 / (double)r->recycled_ns : 0.0;
	double d50 = us(sl_hist_quantile(&r->durable, 0.5)),
	       d99 = us(sl_hist_quantile(&r->durable, 0.99)),
	       d999 = us(sl_hist_quantile(&r->durable, 0.999)),
	       f50 = us(sl_hist_quantile(&r->raw_sync, 0.5)),
	       f99 = us(sl_hist_quantile(&r->raw_sync, 0.99));

	if (c->json) {
		struct bench_json j;

		bench_json_begin(&j, "store");
		bench_json_str(&j, "sync", mode_name(r->mode));
		/* a JSON boolean; bench_json has no helper for one */
		j.len += (size_t)snprintf(j.buf + j.len, sizeof(j.buf) - j.len, ",\"direct_io\":%s",
					  r->direct_io ? "true" : "false");
		bench_json_num(&j, "append_mb_s", append_mb_s);
		bench_json_num(&j, "raw_write_mb_s", raw_mb_s);
		bench_json_num(&j, "append_vs_raw", append_mb_s / raw_mb_s);
		bench_json_num(&j, "recycled_mb_s", recycled_mb_s);
		bench_json_num(&j, "raw_overwrite_mb_s", over_mb_s);
		bench_json_num(&j, "recycled_vs_raw", recycled_mb_s / over_mb_s);
		bench_json_num(&j, "durable_p50_us", d50);
		bench_json_num(&j, "durable_p99_us", d99);
		bench_json_num(&j, "durable_p999_us", d999);
		bench_json_num(&j, "raw_fsync_p50_us", f50);
		bench_json_num(&j, "raw_fsync_p99_us", f99);
		bench_json_num(&j, "durable_vs_fsync", d50 / f50);
		bench_json_int(&j, "batch_bytes", o->batch_bytes);
		bench_json_int(&j, "group_bytes", o->group_bytes);
		bench_json_int(&j, "inflight", o->inflight);
		bench_json_int(&j, "spares", o->spares);
		bench_json_int(&j, "durable_samples", (long long)r->durable.count);
		bench_json_num(&j, "scrub_cpu_s_per_gb", scrub_s_gb);
		bench_json_num(&j, "read_crc_cpu_s_per_gb", read_s_gb);
		bench_json_num(&j, "scrub_vs_read_crc", read_s_gb > 0 ? scrub_s_gb / read_s_gb : 0);
		bench_json_num(&j, "scrub_core_share", share);
		bench_json_int(&j, "scrub_bytes", (long long)sr->scrub_bytes);
		bench_json_end(&j);
		return;
	}
	printf("store, sync %s, %s I/O, %u-byte batches, %u-byte groups, %u in flight\n",
	       mode_name(r->mode), r->direct_io ? "direct" : "buffered", o->batch_bytes,
	       o->group_bytes, o->inflight);
	printf("  append          %9.1f MB/s   raw write %9.1f MB/s   ratio %.3f\n", append_mb_s,
	       raw_mb_s, append_mb_s / raw_mb_s);
	printf("  recycled        %9.1f MB/s   raw over  %9.1f MB/s   ratio %.3f\n", recycled_mb_s,
	       over_mb_s, recycled_mb_s / over_mb_s);
	printf("  durable, QD1    p50 %7.1f us   p99 %7.1f us   p99.9 %7.1f us   (%llu)\n", d50,
	       d99, d999, (unsigned long long)r->durable.count);
	printf("  raw %s QD1 p50 %7.1f us   p99 %7.1f us   durable/raw p50 %.3f\n",
	       raw_sync_mode(r->mode) == SL_SYNC_DSYNC ? "dsync    " : "fdatasync", f50, f99,
	       d50 / f50);
	printf("  scrub           %9.3f CPU s/GB read+crc32c %6.3f CPU s/GB  ratio %.3f  "
	       "(%.2f%% of a core at 64 MiB/s; %.0f MB)\n",
	       scrub_s_gb, read_s_gb, read_s_gb > 0 ? scrub_s_gb / read_s_gb : 0, 100 * share,
	       (double)sr->scrub_bytes / 1e6);
}

int bench_store_main(const struct bench_common *c, int argc, char **argv)
{
	struct sbench_opts o;
	struct mode_result res[3];
	struct scrub_result scrub = {0};
	char base[4096];
	struct statfs sfs;
	uint64_t seed = c->seed ? c->seed : 1;
	int rounds = (int)(c->seconds / SLICE_SECONDS + 0.5);
	double slice;
	int rc, over_fd = -1;

	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc > 0 ? 0 : 2;
	if (rounds < MIN_ROUNDS)
		rounds = MIN_ROUNDS;
	slice = c->seconds / rounds;
	snprintf(base, sizeof(base), "%s/shipbench-store-XXXXXX", c->dir ? c->dir : "/var/tmp");
	if (mkdtemp(base) == NULL) {
		fprintf(stderr, "shipbench store: mkdtemp %s: %s\n", base, strerror(errno));
		return 1;
	}
	if (statfs(base, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
		fprintf(stderr,
			"shipbench store: %s is on tmpfs: this measures memory, not a "
			"disk\n",
			base);
	memset(res, 0, sizeof(res));
	for (int m = 0; m < o.nmodes; m++) {
		res[m].mode = o.modes[m];
		sl_hist_reset(&res[m].durable);
		sl_hist_reset(&res[m].raw_sync);
	}
	for (int round = 0; round < rounds && rc == 0; round++) {
		for (int k = 0; k < o.nmodes && rc == 0; k++) {
			/* Alternate which mode goes first. */
			struct mode_result *r = &res[(k + round) % o.nmodes];

			settle(base);
			rc = bench_raw_sync(base, raw_sync_mode(r->mode), slice, 0, &r->raw_sync,
					    &seed);
			settle(base);
			/* Each store phase right after its raw counterpart, so the
			 * two see the same (shared, drifting) disk. */
			if (rc == 0)
				rc = raw_write(base, o.group_bytes, o.inflight, slice,
					       &r->raw_bytes, &r->raw_ns, &seed);
			settle(base);
			if (rc == 0)
				rc = store_append(base, &o, r->mode, slice, r, &seed);
			settle(base);
			if (rc == 0)
				rc = raw_overwrite(base, &over_fd, o.group_bytes, o.inflight, slice,
						   &r->over_bytes, &r->over_ns, &seed);
			settle(base);
			if (rc == 0)
				rc = store_recycled(base, &o, r->mode, slice, r, &seed);
			settle(base);
			if (rc == 0)
				rc = store_latency(base, &o, r->mode, slice, r, &seed);
		}
		bench_progress("store", (round + 1) * slice * 6 * o.nmodes,
			       c->seconds * 6 * o.nmodes);
	}
	if (over_fd >= 0)
		close(over_fd);
	if (rc == 0) {
		settle(base);
		rc = scrub_cost(base, &o, &scrub, &seed);
	}
	bench_remove_dir(base);
	if (rc != 0)
		return 1;
	for (int m = 0; m < o.nmodes; m++)
		report(c, &o, &res[m], &scrub);
	return 0;
}
