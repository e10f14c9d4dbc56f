/* shiplog-demo: the main job. Today a single node: it generates a WAL-like
 * workload, batches and compresses it, appends the batches to a log store
 * with group commit and reports throughput and durable-append latency, then
 * reopens the log and checks every record came back. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/batch.h"
#include "shiplog/err.h"
#include "shiplog/hist.h"
#include "shiplog/log.h"
#include "shiplog/store.h"
#include "shiplog/workload.h"

#define PENDING_MAX 8192 /* batches appended but not yet durable */

struct demo_opts {
	uint64_t records;
	uint32_t record_bytes;
	uint32_t batch_bytes;
	enum sl_wl_kind data;
	const char *dir;
	int keep;
	uint64_t seed;
};

struct pending {
	uint64_t last_lsn;
	uint64_t sealed_ns;
};

struct demo {
	struct demo_opts o;
	struct sl_store *store;
	struct sl_wl wl;
	struct sl_batch_builder builder;
	uint8_t *raw, *rec, *enc;
	size_t enc_cap;
	uint64_t next_lsn, position;
	uint32_t prev_crc;
	struct pending pend[PENDING_MAX];
	size_t pend_head, pend_len;
	struct sl_hist lat;
	uint64_t stored_bytes, batches;
};

static const uint8_t demo_cluster[16] = "shiplog-demo-01";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: shiplog-demo [options]\n"
		   "Appends a generated workload to a fresh log with group commit and prints\n"
		   "throughput and durable-append latency, then reopens and verifies the log.\n\n"
		   "  --records N       records to append (default 1000000)\n"
		   "  --record-bytes N  bytes per record, 1..1048576 (default 1024)\n"
		   "  --batch-bytes N   close a batch at this many raw bytes (default 65536)\n"
		   "  --data KIND       text (WAL-like, compressible) or random (default text)\n"
		   "  --dir DIR         log directory, must be empty (default: new directory\n"
		   "                    under /var/tmp, removed at exit unless --keep)\n"
		   "  --keep            keep the log directory\n"
		   "  --seed N          workload seed (default 1)\n"
		   "  -h, --help        this help\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0' || *out < min || *out > max) {
		fprintf(stderr, "shiplog-demo: %s wants a number in %llu..%llu, got '%s'\n", opt,
			(unsigned long long)min, (unsigned long long)max, s);
		return -EINVAL;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct demo_opts *o)
{
	static const struct option longopts[] = {
	    {"records", required_argument, 0, 'n'},
	    {"record-bytes", required_argument, 0, 'r'},
	    {"batch-bytes", required_argument, 0, 'b'},
	    {"data", required_argument, 0, 'd'},
	    {"dir", required_argument, 0, 'D'},
	    {"keep", no_argument, 0, 'k'},
	    {"seed", required_argument, 0, 's'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	uint64_t v;
	int c;

	*o = (struct demo_opts){
	    .records = 1000000, .record_bytes = 1024, .batch_bytes = 65536, .seed = 1};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_u64("--records", optarg, 1, 1ull << 40, &o->records))
				return -EINVAL;
			break;
		case 'r':
			if (parse_u64("--record-bytes", optarg, 1, 1u << 20, &v))
				return -EINVAL;
			o->record_bytes = (uint32_t)v;
			break;
		case 'b':
			if (parse_u64("--batch-bytes", optarg, 64, 16u << 20, &v))
				return -EINVAL;
			o->batch_bytes = (uint32_t)v;
			break;
		case 'd':
			if (sl_wl_kind_parse(optarg, &o->data)) {
				fprintf(stderr,
					"shiplog-demo: --data is text or random, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'D':
			o->dir = optarg;
			break;
		case 'k':
			o->keep = 1;
			break;
		case 's':
			if (parse_u64("--seed", optarg, 0, UINT64_MAX, &o->seed))
				return -EINVAL;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shiplog-demo: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Account every pending batch that the store now reports durable. */
static void reap_durable(struct demo *d)
{
	struct sl_store_info info;
	uint64_t now = now_ns();

	sl_store_get_info(d->store, &info);
	while (d->pend_len > 0 && d->pend[d->pend_head].last_lsn <= info.durable_lsn) {
		sl_hist_record(&d->lat, now - d->pend[d->pend_head].sealed_ns);
		d->pend_head = (d->pend_head + 1) % PENDING_MAX;
		d->pend_len--;
	}
}

static int wait_some(struct demo *d)
{
	int rc = sl_store_poll(d->store, 1);

	if (rc < 0)
		return sl_err_wrap(rc, "waiting for the log");
	reap_durable(d);
	return 0;
}

static int seal_and_append(struct demo *d)
{
	struct sl_batch_hdr h = {
	    .stream_id = 1,
	    .epoch = 1,
	    .base_lsn = d->next_lsn,
	    .position = d->position,
	    .prev_crc = d->prev_crc,
	    .leader_ts_ns = now_ns(),
	};
	int len, rc;

	memcpy(h.cluster_id, demo_cluster, sizeof(h.cluster_id));
	len = sl_batch_encode(&h, d->raw, d->builder.len, d->builder.count, d->enc, d->enc_cap);
	if (len < 0)
		return sl_err_wrap(len, "encoding batch at lsn %llu",
				   (unsigned long long)d->next_lsn);
	while (d->pend_len == PENDING_MAX)
		if ((rc = wait_some(d)))
			return rc;
	while ((rc = sl_store_append(d->store, d->enc, (size_t)len)) == -EAGAIN)
		if ((rc = wait_some(d)))
			return rc;
	if (rc < 0)
		return sl_err_wrap(rc, "appending batch at lsn %llu",
				   (unsigned long long)d->next_lsn);
	d->pend[(d->pend_head + d->pend_len) % PENDING_MAX] = (struct pending){
	    .last_lsn = d->next_lsn + d->builder.count - 1, .sealed_ns = h.leader_ts_ns};
	d->pend_len++;
	d->next_lsn += d->builder.count;
	d->position += (uint64_t)len;
	d->prev_crc = h.hdr_crc;
	d->stored_bytes += (uint64_t)len;
	d->batches++;
	sl_batch_builder_reset(&d->builder);
	rc = sl_store_poll(d->store, 0);
	if (rc < 0)
		return sl_err_wrap(rc, "polling the log");
	reap_durable(d);
	return 0;
}

static void progress(const struct demo *d, uint64_t start_ns, uint64_t *last_ns)
{
	uint64_t now = now_ns();
	double s = (double)(now - start_ns) / 1e9;

	if (now - *last_ns < 1000000000ull)
		return;
	*last_ns = now;
	fprintf(stderr, "  %6.1f s  %llu/%llu records  %.0f records/s\n", s,
		(unsigned long long)(d->next_lsn - 1), (unsigned long long)d->o.records,
		(double)(d->next_lsn - 1) / s);
}

static int run_workload(struct demo *d, double *seconds)
{
	uint64_t start = now_ns(), last = start;
	int rc;

	for (uint64_t i = 0; i < d->o.records; i++) {
		sl_wl_fill(&d->wl, d->rec, d->o.record_bytes);
		if (sl_batch_builder_add(&d->builder, d->rec, d->o.record_bytes) == -ENOSPC) {
			if ((rc = seal_and_append(d)))
				return rc;
			if (sl_batch_builder_add(&d->builder, d->rec, d->o.record_bytes))
				return sl_err_set(EMSGSIZE, "record does not fit an empty batch");
		}
		if ((i & 1023) == 0)
			progress(d, start, &last);
	}
	if (d->builder.count > 0 && (rc = seal_and_append(d)))
		return rc;
	if ((rc = sl_store_sync(d->store)) < 0)
		return sl_err_wrap(rc, "final sync");
	reap_durable(d);
	*seconds = (double)(now_ns() - start) / 1e9;
	return 0;
}

/* Reopen the log and decode every batch: the records must all come back. */
static int verify_log(struct demo *d, const struct sl_store_opts *so, double *seconds)
{
	struct sl_store_opts o = *so;
	struct sl_batch_hdr h;
	uint64_t start = now_ns(), lsn = 1, seen = 0;
	int rc, len;

	o.create = 0;
	if ((rc = sl_store_open(&d->store, &o)))
		return sl_err_wrap(rc, "reopening %s", o.dir);
	while (lsn <= d->o.records) {
		len = sl_store_read(d->store, lsn, d->enc, d->enc_cap, &h);
		if (len < 0) {
			rc = sl_err_wrap(len, "reading lsn %llu", (unsigned long long)lsn);
			goto out_close;
		}
		rc = sl_batch_decode(d->enc, (size_t)len, &sl_batch_default_limits, d->raw,
				     d->builder.cap, &h);
		if (rc < 0) {
			rc = sl_err_wrap(rc, "decoding lsn %llu", (unsigned long long)lsn);
			goto out_close;
		}
		seen += h.record_count;
		lsn = h.base_lsn + h.record_count;
	}
	rc = seen == d->o.records
		 ? 0
		 : sl_err_set(EIO, "read back %llu of %llu records", (unsigned long long)seen,
			      (unsigned long long)d->o.records);
	*seconds = (double)(now_ns() - start) / 1e9;
out_close:
	sl_store_close(d->store);
	d->store = NULL;
	return rc;
}

static void report(const struct demo *d, double secs, const struct sl_store_info *info)
{
	double raw_mb = (double)d->o.records * d->o.record_bytes / 1e6;

	printf("shiplog demo: 1 node, %s records of %u bytes, batches of %u bytes\n",
	       sl_wl_kind_name(d->o.data), d->o.record_bytes, d->o.batch_bytes);
	printf("  log        %s (%s I/O, %s, %u-byte blocks)\n", d->o.dir,
	       info->direct_io ? "O_DIRECT" : "buffered",
	       info->sync_mode == SL_SYNC_DSYNC ? "RWF_DSYNC writes" : "write+fdatasync",
	       info->block_bytes);
	printf("  appended   %llu records in %llu batches, %.2f s\n",
	       (unsigned long long)d->o.records, (unsigned long long)d->batches, secs);
	printf("  throughput %.0f records/s, %.1f MB/s of records, %.1f MB/s to disk "
	       "(LZ4 ratio %.2f)\n",
	       (double)d->o.records / secs, raw_mb / secs, (double)d->stored_bytes / 1e6 / secs,
	       raw_mb * 1e6 / (double)d->stored_bytes);
	printf("  durable    batch seal -> durable: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, "
	       "max %.1f us (%llu groups)\n",
	       sl_hist_quantile(&d->lat, 0.5) / 1e3, sl_hist_quantile(&d->lat, 0.99) / 1e3,
	       sl_hist_quantile(&d->lat, 0.999) / 1e3, (double)d->lat.max / 1e3,
	       (unsigned long long)info->groups_written);
}

static int make_dir(struct demo_opts *o, char *buf, size_t cap)
{
	if (o->dir == NULL) {
		snprintf(buf, cap, "/var/tmp/shiplog-demo-XXXXXX");
		if (mkdtemp(buf) == NULL)
			return sl_err_set(errno, "creating %s: %s", buf, strerror(errno));
		o->dir = buf;
		return 0;
	}
	if (mkdir(o->dir, 0755) && errno != EEXIST)
		return sl_err_set(errno, "creating %s: %s", o->dir, strerror(errno));
	return 0;
}

static int alloc_buffers(struct demo *d)
{
	size_t raw_cap = d->o.batch_bytes > d->o.record_bytes + SL_REC_PREFIX
			     ? d->o.batch_bytes
			     : d->o.record_bytes + SL_REC_PREFIX;

	d->enc_cap = sl_batch_bound(raw_cap);
	d->raw = malloc(raw_cap);
	d->rec = malloc(d->o.record_bytes);
	d->enc = malloc(d->enc_cap);
	if (!d->raw || !d->rec || !d->enc)
		return sl_err_set(ENOMEM, "allocating batch buffers");
	sl_batch_builder_init(&d->builder, d->raw, raw_cap);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	static struct demo d;
	char dirbuf[64];
	struct sl_store_opts so = {.stream_id = 1, .create = 1};
	struct sl_store_info info;
	double secs = 0, verify_secs = 0;
	int rc;

	if (parse_opts(argc, argv, &d.o))
		return 2;
	if ((rc = make_dir(&d.o, dirbuf, sizeof(dirbuf))) || (rc = alloc_buffers(&d)))
		goto out_fail;
	so.dir = d.o.dir;
	memcpy(so.cluster_id, demo_cluster, sizeof(so.cluster_id));
	sl_wl_init(&d.wl, d.o.data, d.o.seed);
	sl_hist_reset(&d.lat);
	d.next_lsn = 1;
	if ((rc = sl_store_open(&d.store, &so))) {
		rc = sl_err_wrap(rc, "opening log %s", so.dir);
		goto out_rmdir;
	}
	rc = run_workload(&d, &secs);
	sl_store_get_info(d.store, &info);
	sl_store_close(d.store);
	if (rc)
		goto out_rmdir;
	report(&d, secs, &info);
	if ((rc = verify_log(&d, &so, &verify_secs)))
		goto out_rmdir;
	printf("  verified   reopened, recovered and decoded all %llu records in %.2f s\n",
	       (unsigned long long)d.o.records, verify_secs);
out_rmdir:
	if (!d.o.keep && d.o.dir == dirbuf &&
	    nftw(dirbuf, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "shiplog-demo: could not remove %s\n", dirbuf);
out_fail:
	if (rc) {
		fprintf(stderr, "shiplog-demo: %s\n", sl_err_msg());
		return 1;
	}
	return 0;
}
