/* Shared shipbench helpers; see bench_util.h. */
#include "bench_util.h"

#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <lz4.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SYNC_FILE (256ull << 20) /* bench_raw_sync cycles through this much */

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void json_append(struct bench_json *j, const char *fmt, const char *key, const char *val)
{
	int n = snprintf(j->buf + j->len, sizeof(j->buf) - j->len, fmt, key, val);

	if (n > 0 && (size_t)n < sizeof(j->buf) - j->len)
		j->len += (size_t)n;
}

void bench_json_begin(struct bench_json *j, const char *bench)
{
	j->len = 0;
	j->buf[0] = '\0';
	json_append(j, "{\"%s\":\"%s\"", "bench", bench);
}

void bench_json_str(struct bench_json *j, const char *key, const char *val)
{
	json_append(j, ",\"%s\":\"%s\"", key, val);
}

void bench_json_num(struct bench_json *j, const char *key, double val)
{
	char num[64];

	if (!isfinite(val))
		snprintf(num, sizeof(num), "null");
	else
		snprintf(num, sizeof(num), "%.3f", val);
	json_append(j, ",\"%s\":%s", key, num);
}

void bench_json_int(struct bench_json *j, const char *key, long long val)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", val);
	json_append(j, ",\"%s\":%s", key, num);
}

void bench_json_end(struct bench_json *j)
{
	printf("%s}\n", j->buf);
	fflush(stdout);
}

void bench_progress(const char *what, double done, double total)
{
	static uint64_t last_ns;
	uint64_t now = bench_now_ns();

	if (now - last_ns < 1000000000ull && done < total)
		return;
	last_ns = now;
	fprintf(stderr, "\r%s: %.1f/%.1f s%s", what, done, total, done >= total ? "\n" : "");
	fflush(stderr);
}

int bench_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (errno || end == s || *end != '\0' || (shift && v > (UINT64_MAX >> shift)) ||
	    (v << shift) < min || (v << shift) > max) {
		fprintf(stderr, "shipbench: %s wants a number in %llu..%llu, got '%s'\n", opt,
			(unsigned long long)min, (unsigned long long)max, s);
		return -EINVAL;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

void bench_fill_random(uint8_t *p, size_t n, uint64_t *x)
{
	for (size_t i = 0; i < n; i++) {
		*x ^= *x << 13;
		*x ^= *x >> 7;
		*x ^= *x << 17;
		p[i] = (uint8_t)*x;
	}
}

/* Files are removed only at the end of a run (bench_remove_dir): with
 * online discard (ext4 -o discard), removing gigabytes mid-run would load
 * the journal commits, and so the fsyncs, of the phases that follow. */
int bench_fresh_file(const char *dir, const char *name, uint64_t size, char *path, size_t cap)
{
	static unsigned serial;
	int fd;

	snprintf(path, cap, "%s/%s-%u", dir, name, serial++);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "shipbench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (fallocate(fd, 0, 0, (off_t)size) < 0) {
		fprintf(stderr, "shipbench: fallocate %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return -errno;
	}
	fsync(fd);
	return fd;
}

/* One durable-write probe: its file, its buffer, its schedule. */
struct sync_writer {
	int fd;
	enum sl_sync_mode mode;
	uint32_t bytes; /* each write's */
	uint8_t *buf;
	uint64_t span, start_ns, deadline_ns, interval_ns;
	struct sl_hist h;
	int rc;
	pthread_t thr;
};

/* A fresh file in `dir` with its first `written` bytes (0: none, the
 * file's fallocated blocks) written and synced, and `bytes` to write over
 * them: random, or zeros when seed is NULL. 0 or -errno. */
static int sync_writer_open(struct sync_writer *w, const char *dir, enum sl_sync_mode mode,
			    uint32_t bytes, uint64_t written, uint64_t *seed)
{
	char path[4096];
	int rc = 0;

	w->mode = mode;
	w->bytes = bytes;
	w->span = written ? written : SYNC_FILE;
	w->buf = NULL;
	assert(w->span % 4096 == 0 && w->span <= SYNC_FILE);
	if ((w->fd = bench_fresh_file(dir, "raw-sync", w->span, path, sizeof(path))) < 0)
		return w->fd;
	if (written &&
	    ((rc = bench_raw_loop(w->fd, written, 0, 1u << 20, 4, -1, NULL, NULL, seed)) < 0 ||
	     (fdatasync(w->fd) < 0 && (rc = -errno) < 0)))
		goto close_file;
	if (posix_memalign((void **)&w->buf, 4096, bytes)) {
		rc = -ENOMEM;
		goto close_file;
	}
	if (seed)
		bench_fill_random(w->buf, bytes, seed);
	else
		memset(w->buf, 0, bytes);
	return 0;
close_file:
	close(w->fd);
	return rc;
}

static void sync_writer_close(struct sync_writer *w)
{
	free(w->buf);
	close(w->fd);
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Durable writes at queue depth 1 from start_ns to deadline_ns, one
 * every interval_ns at most (0: back to back; a write that ends late starts
 * the next at once, never a burst), each write's own time into w->h. */
static int sync_writer_run(struct sync_writer *w)
{
	uint64_t off = 0, next = w->start_ns;

	sleep_until(w->start_ns);
	while (bench_now_ns() < w->deadline_ns) {
		struct iovec iov = {.iov_base = w->buf, .iov_len = w->bytes};
		uint64_t t0 = bench_now_ns();
		ssize_t n;

		if (w->interval_ns && t0 < next) {
			sleep_until(next);
			t0 = bench_now_ns();
		}
		if (w->mode == SL_SYNC_DSYNC) {
			n = pwritev2(w->fd, &iov, 1, (off_t)off, RWF_DSYNC);
		} else {
			n = pwrite(w->fd, w->buf, w->bytes, (off_t)off);
			if (n == (ssize_t)w->bytes && fdatasync(w->fd) < 0)
				n = -1;
		}
		if (n != (ssize_t)w->bytes) {
			w->rc = -(n < 0 ? errno : EIO);
			fprintf(stderr, "shipbench: raw sync write: %s\n", strerror(-w->rc));
			return w->rc;
		}
		sl_hist_record(&w->h, bench_now_ns() - t0);
		off = off + 2 * w->bytes > w->span ? 0 : off + w->bytes;
		next = next + w->interval_ns > t0 ? next + w->interval_ns : t0;
	}
	return 0;
}

static void *sync_writer_main(void *arg)
{
	sync_writer_run(arg);
	return NULL;
}

int bench_raw_sync(const char *dir, enum sl_sync_mode mode, double secs, uint64_t written,
		   struct sl_hist *h, uint64_t *seed)
{
	static struct sync_writer w;
	int rc;

	if ((rc = sync_writer_open(&w, dir, mode, 4096, written, seed)) < 0)
		return rc;
	sl_hist_reset(&w.h);
	w.rc = 0;
	w.interval_ns = 0;
	w.start_ns = bench_now_ns();
	w.deadline_ns = w.start_ns + (uint64_t)(secs * 1e9);
	rc = sync_writer_run(&w);
	sl_hist_merge(h, &w.h);
	sync_writer_close(&w);
	return rc;
}

int bench_raw_sync_par(const char *dir, unsigned n, uint64_t per_s, double secs, uint64_t written,
		       struct sl_hist *h, uint64_t *seed)
{
	const struct bench_sync_pattern p = {.writers = n, .per_s = per_s, .bytes = 4096};

	return bench_raw_sync_pattern(dir, &p, secs, written, h, seed);
}

/* The pattern's writers: p->writers durable ones, then as many writing
 * zeros into fresh (fallocated) blocks when p->zeros_per_s. */
static int pattern_open(struct sync_writer *w, unsigned *opened, const char *dir,
			const struct bench_sync_pattern *p, uint64_t written, uint64_t *seed)
{
	unsigned n = p->writers * (p->zeros_per_s ? 2 : 1);
	int rc = 0;

	for (*opened = 0; *opened < n; (*opened)++) {
		struct sync_writer *x = &w[*opened];
		int z = *opened >= p->writers;
		uint64_t per_s = z ? p->zeros_per_s : p->per_s;

		if ((rc = z ? sync_writer_open(x, dir, SL_SYNC_FDATASYNC, BENCH_ZERO_CHUNK, 0, NULL)
			    : sync_writer_open(x, dir, SL_SYNC_DSYNC, p->bytes, written, seed)) < 0)
			break;
		x->interval_ns = per_s ? 1000000000ull / per_s : 0;
	}
	return rc;
}

int bench_raw_sync_pattern(const char *dir, const struct bench_sync_pattern *p, double secs,
			   uint64_t written, struct sl_hist *h, uint64_t *seed)
{
	struct sync_writer *w = calloc(2 * (size_t)p->writers, sizeof(*w));
	unsigned opened = 0, started = 0;
	uint64_t start;
	int rc;

	assert(p->bytes % 4096 == 0 && p->bytes > 0 && p->bytes <= BENCH_ZERO_CHUNK);
	if (!w)
		return -ENOMEM;
	rc = pattern_open(w, &opened, dir, p, written, seed);
	/* Every writer starts at the same instant, as the nodes' writes of
	 * one batch do (and their logs' zeros, at the same positions), 2 ms
	 * from now so that the threads are up. */
	start = bench_now_ns() + 2000000;
	for (unsigned i = 0; i < opened; i++) {
		sl_hist_reset(&w[i].h);
		w[i].start_ns = start;
		w[i].deadline_ns = start + (uint64_t)(secs * 1e9);
	}
	for (; started < opened && rc == 0; started++)
		if ((rc = -pthread_create(&w[started].thr, NULL, sync_writer_main, &w[started])) <
		    0)
			break;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].thr, NULL);
		rc = rc < 0 ? rc : w[i].rc;
		if (i < p->writers) /* the zeros' own times are not the probe's */
			sl_hist_merge(h, &w[i].h);
	}
	for (unsigned i = 0; i < opened; i++)
		sync_writer_close(&w[i]);
	free(w);
	return rc;
}

/* Sequential O_DIRECT writes of `wbytes`, `depth` in flight, into fd from
 * offset 0 for `secs`: wrapping at `file_bytes` when `wrap`, else stopping
 * there (which ends the phase early). secs < 0: one pass, untimed. */
int bench_raw_loop(int fd, uint64_t file_bytes, int wrap, uint32_t wbytes, unsigned depth,
		   double secs, uint64_t *bytes, uint64_t *ns, uint64_t *seed)
{
	struct io_uring ring;
	struct iovec iov;
	uint8_t *buf;
	uint64_t off = 0, start, deadline, done = 0;
	unsigned inflight = 0;
	int rc;

	if (posix_memalign((void **)&buf, 4096, (size_t)wbytes * depth))
		return -ENOMEM;
	bench_fill_random(buf, (size_t)wbytes * depth, seed);
	if ((rc = io_uring_queue_init(2 * depth, &ring, 0)) < 0)
		goto out;
	iov = (struct iovec){.iov_base = buf, .iov_len = (size_t)wbytes * depth};
	io_uring_register_buffers(&ring, &iov, 1);
	start = bench_now_ns();
	deadline = secs < 0 ? UINT64_MAX : start + (uint64_t)(secs * 1e9);
	for (;;) {
		struct io_uring_cqe *cqe;

		while (inflight < depth && bench_now_ns() < deadline) {
			struct io_uring_sqe *sqe;

			if (off + wbytes > file_bytes) {
				if (!wrap)
					break;
				off = 0;
			}
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_write_fixed(
			    sqe, fd, buf + (size_t)(inflight % depth) * wbytes, wbytes, off, 0);
			off += wbytes;
			inflight++;
		}
		if (inflight == 0)
			break;
		if ((rc = io_uring_submit_and_wait(&ring, 1)) < 0)
			break;
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			if (cqe->res != (int)wbytes) {
				fprintf(stderr, "shipbench: raw write: %s\n",
					strerror(cqe->res < 0 ? -cqe->res : EIO));
				rc = -EIO;
			}
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			done += wbytes;
		}
		if (rc < 0 && inflight == 0)
			break;
	}
	if (ns != NULL) {
		*ns += bench_now_ns() - start;
		*bytes += done;
	}
	io_uring_queue_exit(&ring);
	rc = rc < 0 ? rc : 0;
out:
	free(buf);
	return rc;
}

void bench_remove_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[4096];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (de->d_type == DT_DIR)
			bench_remove_dir(p);
		else
			unlink(p);
	}
	closedir(d);
	if (rmdir(path) < 0)
		fprintf(stderr, "shipbench: could not remove %s: %s\n", path, strerror(errno));
}

double bench_lz4_mb_s(const uint8_t *pool, size_t total, size_t chunk, double secs)
{
	size_t n = chunk < total ? chunk : total, off = 0;
	int cap = LZ4_compressBound((int)n);
	char *out = malloc((size_t)cap);
	uint64_t start = bench_now_ns(), bytes = 0;

	if (!out)
		return 0;
	while (bench_now_ns() - start < (uint64_t)(secs * 1e9)) {
		if (off + n > total)
			off = 0;
		LZ4_compress_default((const char *)pool + off, out, (int)n, cap);
		bytes += n, off += n;
	}
	free(out);
	return (double)bytes * 1e3 / (double)(bench_now_ns() - start);
}
