/* Shared helpers of the store suites; see store_helpers.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store_helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shiplog/batch.h"
#include "shiplog/err.h"

const uint8_t th_cluster[16] = {0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
const uint8_t th_other_cluster[16] = {0xa5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

char *th_mkdtemp(const char *tag)
{
	const char *base = getenv("SHIPLOG_TEST_TMP");
	char *path;

	if (base == NULL || base[0] == '\0')
		base = "/var/tmp";
	mkdir(base, 0755);
	assert_true(asprintf(&path, "%s/%s-XXXXXX", base, tag) > 0);
	assert_non_null(mkdtemp(path));
	return path;
}

void th_rmrf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *p;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		p = th_path(path, de->d_name);
		th_rmrf(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

char *th_path(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted regular-file names of dir (malloc'd array of malloc'd strings). */
static char **list_files(const char *dir, int *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	int cap = 0;

	assert_non_null(d);
	*n = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, (size_t)cap * sizeof(*names));
			assert_non_null(names);
		}
		names[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (*n > 0)
		qsort(names, (size_t)*n, sizeof(*names), cmp_str);
	return names;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void th_copy_dir(const char *src, const char *dst)
{
	int n;
	char **names = list_files(src, &n);

	for (int i = 0; i < n; i++) {
		char *a = th_path(src, names[i]), *b = th_path(dst, names[i]);
		size_t len;
		uint8_t *buf = th_read_file(a, &len);

		th_write_file(b, buf, len);
		free(buf);
		free(a);
		free(b);
	}
	free_names(names, n);
}

int th_dirs_equal(const char *a, const char *b)
{
	int na, nb, eq;
	char **x = list_files(a, &na), **y = list_files(b, &nb);

	eq = na == nb;
	for (int i = 0; eq && i < na; i++) {
		char *pa = th_path(a, x[i]), *pb = th_path(b, y[i]);
		size_t la, lb;
		uint8_t *ba, *bb;

		eq = strcmp(x[i], y[i]) == 0;
		if (eq) {
			ba = th_read_file(pa, &la);
			bb = th_read_file(pb, &lb);
			eq = la == lb && memcmp(ba, bb, la) == 0;
			free(ba);
			free(bb);
		}
		free(pa);
		free(pb);
	}
	free_names(x, na);
	free_names(y, nb);
	return eq;
}

struct sl_store_opts th_opts(const char *dir, int create)
{
	struct sl_store_opts o = {
	    .dir = dir,
	    .node_id = 7,
	    .stream_id = 3,
	    .create = create,
	};

	memcpy(o.cluster_id, th_cluster, 16);
	return o;
}

void th_log_init(struct th_log *l, const struct sl_store_info *info)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->cluster, th_cluster, 16);
	l->stream = 3;
	l->next_lsn = info->next_lsn;
	l->position = info->next_position;
	l->prev_crc = info->last_crc;
	l->epoch = info->last_epoch ? info->last_epoch : 1;
}

void th_log_free(struct th_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->b[i].bytes);
	free(l->b);
	memset(l, 0, sizeof(*l));
}

static uint32_t hdr_u32(const uint8_t *p, size_t off)
{
	return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
	       (uint32_t)p[off + 3] << 24;
}

static uint64_t hdr_u64(const uint8_t *p, size_t off)
{
	return (uint64_t)hdr_u32(p, off) | (uint64_t)hdr_u32(p, off + 4) << 32;
}

void th_log_truncate(struct th_log *l, uint64_t lsn)
{
	size_t keep = 0;

	while (keep < l->n) {
		const struct th_batch *b = &l->b[keep];
		uint64_t last = b->lsn + (b->count ? b->count - 1 : 0);

		if (last > lsn)
			break;
		keep++;
	}
	if (keep == l->n)
		return;
	/* Rewind to the state before the first removed batch. */
	l->next_lsn = l->b[keep].lsn;
	l->position = hdr_u64(l->b[keep].bytes, 56);
	l->prev_crc = hdr_u32(l->b[keep].bytes, 72);
	for (size_t i = keep; i < l->n; i++)
		free(l->b[i].bytes);
	l->n = keep;
}

const struct th_batch *th_log_next(struct th_log *l, uint32_t records, uint32_t rec_bytes,
				   uint32_t seed)
{
	size_t raw_cap = (size_t)records * (SL_REC_PREFIX + rec_bytes) + 1;
	uint8_t *raw = malloc(raw_cap), *rec = malloc(rec_bytes + 1);
	struct sl_batch_builder bld;
	struct sl_batch_hdr h = {0};
	struct th_batch *b;
	size_t cap;
	int len;

	assert_non_null(raw);
	assert_non_null(rec);
	sl_batch_builder_init(&bld, raw, raw_cap);
	for (uint32_t r = 0; r < records; r++) {
		uint64_t x = (l->next_lsn + r) * 0x9e3779b97f4a7c15ull + seed;

		for (uint32_t i = 0; i < rec_bytes; i++) {
			if (seed == 0) { /* text-like, compresses */
				rec[i] = (uint8_t)("shiplog record "[i % 15] + (i / 64) % 3);
			} else {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				rec[i] = (uint8_t)x;
			}
		}
		if (rec_bytes >= 8)
			memcpy(rec, &(uint64_t){l->next_lsn + r}, 8);
		assert_int_equal(sl_batch_builder_add(&bld, rec, rec_bytes), 0);
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->b = realloc(l->b, l->cap * sizeof(*l->b));
		assert_non_null(l->b);
	}
	b = &l->b[l->n];
	memcpy(h.cluster_id, l->cluster, 16);
	h.stream_id = l->stream;
	h.epoch = l->epoch;
	h.base_lsn = l->next_lsn;
	h.position = l->position;
	h.prev_crc = l->prev_crc;
	h.leader_ts_ns = 1000 + l->next_lsn;
	cap = sl_batch_bound(bld.len);
	b->bytes = malloc(cap);
	assert_non_null(b->bytes);
	len = sl_batch_encode(&h, raw, bld.len, bld.count, b->bytes, cap);
	assert_true(len > 0);
	b->lsn = l->next_lsn;
	b->count = records;
	b->len = (size_t)len;
	l->n++;
	l->next_lsn += records;
	l->position += (uint64_t)len;
	l->prev_crc = h.hdr_crc;
	free(raw);
	free(rec);
	return b;
}

int th_append(struct sl_store *s, struct th_log *l, uint32_t records, uint32_t rec_bytes,
	      uint32_t seed)
{
	const struct th_batch *b = th_log_next(l, records, rec_bytes, seed);
	int rc, polls = 0;

	/* Each poll reaps at least one completion while any is outstanding: a
	 * store that stays full with nothing in flight fails here. */
	while ((rc = sl_store_append(s, b->bytes, b->len)) == -EAGAIN) {
		int p = sl_store_poll(s, 1);

		if (p < 0)
			return p;
		assert_true(++polls < 100000);
	}
	if (rc < 0) /* not appended: forget it */
		th_log_truncate(l, b->lsn - 1);
	return rc;
}

void th_check_reads(struct sl_store *s, const struct th_log *l, size_t from)
{
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	for (size_t i = from; i < l->n; i++) {
		const struct th_batch *b = &l->b[i];
		uint64_t probe[2] = {b->lsn, b->lsn + b->count - 1};

		if (b->count == 0)
			continue;
		for (int k = 0; k < 2; k++) {
			struct sl_batch_hdr h;
			int rc = sl_store_read(s, probe[k], buf, cap, &h);

			if (rc < 0)
				fail_msg("read lsn %llu: %d %s", (unsigned long long)probe[k], rc,
					 sl_err_msg());
			assert_int_equal((size_t)rc, b->len);
			assert_memory_equal(buf, b->bytes, b->len);
			assert_int_equal(h.base_lsn, b->lsn);
		}
	}
	free(buf);
}

static int th_fault_fn(void *ctx, enum sl_store_op op, const char *segment, uint64_t offset,
		       int res)
{
	struct th_faults *f = ctx;

	if ((unsigned)op < 8)
		f->calls[op]++;
	if (f->fail_at == 0 || (unsigned)op != f->fail_op ||
	    (f->fail_off != UINT64_MAX && offset != f->fail_off))
		return res;
	f->seen++;
	if (f->seen == f->fail_at || (f->sticky && f->seen > f->fail_at)) {
		f->fired++;
		snprintf(f->last_segment, sizeof(f->last_segment), "%s", segment);
		return f->fail_res;
	}
	return res;
}

void th_faults_init(struct th_faults *f)
{
	memset(f, 0, sizeof(*f));
	f->hook.on_complete = th_fault_fn;
	f->hook.ctx = f;
}

void th_faults_arm(struct th_faults *f, enum sl_store_op op, unsigned at, int res, int sticky)
{
	f->fail_op = (unsigned)op;
	f->fail_at = at;
	f->fail_res = res;
	f->sticky = sticky;
	f->fail_off = UINT64_MAX;
	f->seen = 0;
	f->fired = 0;
}

uint8_t *th_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *buf;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, *len, 0), (ssize_t)*len);
	close(fd);
	return buf;
}

void th_write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	close(fd);
}

void th_zero_range(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_WRONLY);
	uint8_t *z = calloc(1, len + 1);

	assert_true(fd >= 0);
	assert_non_null(z);
	assert_int_equal(pwrite(fd, z, len, (off_t)off), (ssize_t)len);
	close(fd);
	free(z);
}

void th_flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

int th_list_spares(const char *dir, char names[][32], int max)
{
	int n, k = 0;
	char **all = list_files(dir, &n);

	for (int i = 0; i < n; i++) {
		size_t len = strlen(all[i]);

		if (len == 26 && strcmp(all[i] + 20, ".spare") == 0 && k < max)
			snprintf(names[k++], 32, "%s", all[i]);
	}
	free_names(all, n);
	return k;
}

int th_list_segments(const char *dir, char names[][32], int max)
{
	int n, k = 0;
	char **all = list_files(dir, &n);

	for (int i = 0; i < n; i++) {
		size_t len = strlen(all[i]);

		if (len == 24 && strcmp(all[i] + 20, ".seg") == 0 && k < max)
			snprintf(names[k++], 32, "%s", all[i]);
	}
	free_names(all, n);
	return k;
}

int th_parse_groups(const uint8_t *img, size_t len, struct th_group *g, int max)
{
	uint64_t off = TH_BLOCK;
	/* The segment's tag (0 in version 1): a group of another tag is what
	 * the file held before, not part of this segment. */
	uint32_t tag = len >= 80 ? hdr_u32(img, 76) : 0;
	int n = 0;

	while (off + 32 <= len && n < max && hdr_u32(img, off) == 0x52474c53u &&
	       hdr_u32(img, off + 24) == tag) {
		struct th_group *x = &g[n++];
		uint64_t q = off + 32, end;

		x->off = off;
		x->batch_bytes = hdr_u32(img, off + 4);
		x->seq = hdr_u64(img, off + 8);
		x->durable_through = hdr_u64(img, off + 16);
		x->nbatches = 0;
		end = q + x->batch_bytes;
		while (q < end && hdr_u32(img, q) != 0 && x->nbatches < 64) {
			uint32_t blen = 96 + hdr_u32(img, q + 64);

			x->batch_off[x->nbatches] = q;
			x->batch_len[x->nbatches++] = blen;
			q += blen;
		}
		off = (q + TH_BLOCK - 1) / TH_BLOCK * TH_BLOCK;
	}
	return n;
}

void th_wait_spare(struct sl_store *s)
{
	struct sl_store_info info;

	for (int i = 0; i < 1000; i++) {
		sl_store_get_info(s, &info);
		if (info.spares > 0)
			return;
		assert_true(sl_store_poll(s, 1) >= 0);
	}
	fail_msg("no spare became ready");
}
