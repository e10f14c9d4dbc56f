/* The superblock: election state survives reopen, writes alternate between
 * the two copies, a torn newer copy falls back to the older one, and a
 * superblock of another cluster or with no valid copy is refused. The file
 * layout (docs/disk-format.md) is checked from the outside. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/store.h"
#include "store_helpers.h"

#define COPY 4096

struct fixture {
	char *dir;
	char *sb;
	struct sl_store_opts o;
	struct sl_store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = th_mkdtemp("superblock");
	f->sb = th_path(f->dir, "superblock");
	f->o = th_opts(f->dir, 1);
	f->o.segment_bytes = 64 << 10;
	f->o.group_bytes = 16 << 10;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sl_store_close(f->s);
	th_rmrf(f->dir);
	free(f->dir);
	free(f->sb);
	free(f);
	return 0;
}

static void open_ok(struct fixture *f)
{
	int rc = sl_store_open(&f->s, &f->o);

	if (rc < 0)
		fail_msg("open: %d %s", rc, sl_err_msg());
	f->o.create = 0;
}

static void reopen(struct fixture *f)
{
	sl_store_close(f->s);
	f->s = NULL;
	open_ok(f);
}

static struct sl_store_meta sample(uint64_t epoch, uint32_t n)
{
	struct sl_store_meta m;

	memset(&m, 0, sizeof(m));
	m.current_epoch = epoch;
	m.voted_for = 3;
	m.voted_epoch = epoch;
	m.n_epochs = n;
	for (uint32_t i = 0; i < n; i++)
		m.epochs[i] = (struct sl_epoch_entry){
		    .epoch = i + 1, .start_position = 1000 * i, .start_lsn = 10 * i + 1};
	return m;
}

static void assert_meta_equal(const struct sl_store_meta *a, const struct sl_store_meta *b)
{
	assert_int_equal(a->current_epoch, b->current_epoch);
	assert_int_equal(a->voted_for, b->voted_for);
	assert_int_equal(a->voted_epoch, b->voted_epoch);
	assert_int_equal(a->n_epochs, b->n_epochs);
	assert_memory_equal(a->epochs, b->epochs, a->n_epochs * sizeof(a->epochs[0]));
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The seq of each copy, or 0 for a copy whose CRC does not hold. */
static void copy_seqs(const char *path, uint64_t seq[2])
{
	size_t len;
	uint8_t *img = th_read_file(path, &len);

	assert_int_equal(len, 2 * COPY);
	for (int i = 0; i < 2; i++) {
		const uint8_t *c = img + i * COPY;

		seq[i] = rd32(c + COPY - 4) == sl_crc32c(0, c, COPY - 4) && rd32(c) == 0x42534c53u
			     ? rd64(c + 8)
			     : 0;
	}
	free(img);
}

static void test_meta_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct sl_store_meta m, got;

	open_ok(f);
	assert_int_equal(sl_store_meta_get(f->s, &got), 0);
	assert_int_equal(got.current_epoch, 0);
	assert_int_equal(got.n_epochs, 0);
	m = sample(5, 4);
	assert_int_equal(sl_store_meta_put(f->s, &m), 0);
	assert_int_equal(sl_store_meta_get(f->s, &got), 0);
	assert_meta_equal(&got, &m);
	reopen(f);
	assert_int_equal(sl_store_meta_get(f->s, &got), 0);
	assert_meta_equal(&got, &m);
	/* A full epoch map fits; one more entry does not. */
	m = sample(9, SL_EPOCH_MAP_MAX);
	assert_int_equal(sl_store_meta_put(f->s, &m), 0);
	reopen(f);
	assert_int_equal(sl_store_meta_get(f->s, &got), 0);
	assert_meta_equal(&got, &m);
	m.n_epochs = SL_EPOCH_MAP_MAX + 1;
	assert_int_equal(sl_store_meta_put(f->s, &m), -EINVAL);
	assert_int_equal(sl_store_meta_get(f->s, &got), 0);
	assert_int_equal(got.n_epochs, SL_EPOCH_MAP_MAX);
}

/* Each write goes to the older copy, so the newer one is never touched. */
static void test_writes_alternate(void **state)
{
	struct fixture *f = *state;
	struct sl_store_meta m;
	uint64_t seq[2];

	open_ok(f);
	copy_seqs(f->sb, seq);
	assert_int_equal(seq[0], 0); /* a new log: only copy 1 is written */
	assert_int_equal(seq[1], 1);
	for (uint64_t i = 2; i < 8; i++) {
		uint64_t before[2];

		copy_seqs(f->sb, before);
		m = sample(i, (uint32_t)i);
		assert_int_equal(sl_store_meta_put(f->s, &m), 0);
		copy_seqs(f->sb, seq);
		/* The copy that was newer is unchanged; the other holds seq i. */
		int newer = before[0] > before[1] ? 0 : 1;

		assert_int_equal(seq[newer], before[newer]);
		assert_int_equal(seq[1 - newer], i);
	}
}

/* A torn write of the newer copy leaves the older one in charge; the next
 * write repairs the torn copy and leaves the good one alone. */
static void test_torn_copy_falls_back(void **state)
{
	struct fixture *f = *state;
	struct sl_store_meta m1 = sample(11, 2), m2 = sample(12, 3), m3 = sample(13, 1), got;
	uint64_t seq[2];
	int newer;

	open_ok(f);
	assert_int_equal(sl_store_meta_put(f->s, &m1), 0);
	assert_int_equal(sl_store_meta_put(f->s, &m2), 0);
	sl_store_close(f->s);
	f->s = NULL;
	copy_seqs(f->sb, seq);
	newer = seq[0] > seq[1] ? 0 : 1;
	th_flip_byte(f->sb, (uint64_t)newer * COPY + 100); /* tear the newer (m2) */
	open_ok(f);
	assert_int_equal(sl_store_meta_get(f->s, &got), 0);
	assert_meta_equal(&got, &m1);
	assert_int_equal(sl_store_meta_put(f->s, &m3), 0);
	copy_seqs(f->sb, seq);
	assert_true(seq[0] != 0 && seq[1] != 0);
	reopen(f);
	assert_int_equal(sl_store_meta_get(f->s, &got), 0);
	assert_meta_equal(&got, &m3);
}

static void test_no_valid_copy_refused(void **state)
{
	struct fixture *f = *state;

	open_ok(f);
	sl_store_close(f->s);
	f->s = NULL;
	th_flip_byte(f->sb, COPY + 20);
	assert_int_equal(sl_store_open(&f->s, &f->o), -EBADMSG);
	assert_non_null(strstr(sl_err_msg(), f->sb));
	assert_null(f->s);
}

static void test_other_cluster_refused(void **state)
{
	struct fixture *f = *state;

	open_ok(f);
	sl_store_close(f->s);
	f->s = NULL;
	memcpy(f->o.cluster_id, th_other_cluster, 16);
	assert_int_equal(sl_store_open(&f->s, &f->o), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), f->sb));
	assert_non_null(strstr(sl_err_msg(), "another cluster"));
	/* Another node or stream is refused too. */
	memcpy(f->o.cluster_id, th_cluster, 16);
	f->o.node_id = 99;
	assert_int_equal(sl_store_open(&f->s, &f->o), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "node"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_meta_roundtrip),	   T(test_writes_alternate),
	    T(test_torn_copy_falls_back),  T(test_no_valid_copy_refused),
	    T(test_other_cluster_refused),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
