/* shiplog-rocksdb: a RocksDB replicated through shiplog, with RocksDB's C API
 * and libshiplog (include/shiplog/client.h). The replication unit is a
 * RocksDB WriteBatch: the leader applies each batch to its database and
 * appends the batch's bytes (rocksdb_writebatch_data) as one shiplog record;
 * each follower consumes the committed records in order, rebuilds each batch
 * (rocksdb_writebatch_create_from) and applies it, together with the record's
 * LSN in a column family of its own, in one atomic write. After a restart a
 * follower tells libshiplog that LSN, and delivery resumes right after it.
 *
 *   shiplog-rocksdb leader   -s SOCKET -d DB --keys N [--batch K]
 *   shiplog-rocksdb follower -s SOCKET -d DB --until-lsn N [--timeout SECONDS]
 *   shiplog-rocksdb compare  DB DB...
 *
 * See examples/rocksdb/README.md. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>

#include "shiplog/client.h"

#define META_CF		"shiplog" /* the follower's applied LSN; never replicated */
#define APPLIED_KEY	"applied_lsn"
#define CONSUME_MAX	64
#define WB_HDR_BYTES	12 /* a WriteBatch's sequence (8) and count (4) */
#define DELETE_EVERY	10 /* leader: every 10th batch deletes one earlier key */
#define COMMIT_WAIT_MS	60000
#define DEFAULT_TIMEOUT 120

struct opts {
	const char *socket, *db;
	uint64_t keys, batch, until_lsn, timeout_s;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shiplog-rocksdb leader   -s SOCKET -d DB --keys N [--batch K]\n"
		"       shiplog-rocksdb follower -s SOCKET -d DB --until-lsn N [--timeout S]\n"
		"       shiplog-rocksdb compare  DB DB...\n\n"
		"A RocksDB replicated through shiplog: the leader applies each WriteBatch to\n"
		"DB and appends its bytes through libshiplog to the shipd whose client socket\n"
		"is SOCKET; a follower applies the batches its shipd delivers, in order.\n\n"
		"  leader    write N keys (\"key%%08d\") in WriteBatches of K puts (default\n"
		"            100), every %dth batch also overwriting and deleting an earlier\n"
		"            key; wait until the last batch is committed; print the LSNs\n"
		"  follower  apply delivered batches until LSN N is applied (or S seconds,\n"
		"            default %d, pass: exit 1); resumes after the LSN DB holds\n"
		"  compare   scan every DB's keys in order; exit 0 when all hold the same\n"
		"            keys and values (printing the count and a checksum), 1 at the\n"
		"            first difference (printing it)\n",
		DELETE_EVERY, DEFAULT_TIMEOUT);
}

static int fail(const char *what, char *err)
{
	fprintf(stderr, "shiplog-rocksdb: %s: %s\n", what, err ? err : sl_client_errmsg());
	free(err);
	return 1;
}

/* --- databases ------------------------------------------------------------------ */

struct db {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_column_family_handle_t *cf[2]; /* default, META_CF */
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro;
};

static int db_open(struct db *d, const char *path, int readonly)
{
	const char *names[2] = {"default", META_CF};
	const rocksdb_options_t *cfo[2];
	char *err = NULL;

	d->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(d->opts, !readonly);
	rocksdb_options_set_create_missing_column_families(d->opts, !readonly);
	cfo[0] = cfo[1] = d->opts;
	/* compare reads the replicated column family only */
	if (readonly)
		d->db = rocksdb_open_for_read_only_column_families(d->opts, path, 1, names, cfo,
								   d->cf, 0, &err);
	else
		d->db = rocksdb_open_column_families(d->opts, path, 2, names, cfo, d->cf, &err);
	if (err) {
		char what[4200];

		snprintf(what, sizeof(what), "opening %s", path);
		rocksdb_options_destroy(d->opts);
		d->opts = NULL;
		return fail(what, err);
	}
	d->wo = rocksdb_writeoptions_create();
	d->ro = rocksdb_readoptions_create();
	return 0;
}

static void db_close(struct db *d)
{
	if (!d->db)
		return;
	for (int i = 0; i < 2; i++)
		if (d->cf[i])
			rocksdb_column_family_handle_destroy(d->cf[i]);
	rocksdb_close(d->db);
	rocksdb_writeoptions_destroy(d->wo);
	rocksdb_readoptions_destroy(d->ro);
	rocksdb_options_destroy(d->opts);
	memset(d, 0, sizeof(*d));
}

static int client_open(struct sl_client **c, const char *socket, int consumer, uint64_t applied)
{
	struct sl_client_opts o = {.socket = socket, .consumer = consumer, .applied_lsn = applied};
	int rc = sl_client_open(c, &o);

	if (rc < 0)
		return fail(socket, NULL);
	return 0;
}

/* --- leader ------------------------------------------------------------------------- */

static void put_key(rocksdb_writebatch_t *wb, uint64_t i, const char *tag)
{
	char key[32], val[128];
	int kl = snprintf(key, sizeof(key), "key%08" PRIu64, i);
	int vl = snprintf(val, sizeof(val), "%s value of key %" PRIu64 " %016" PRIx64, tag, i,
			  (uint64_t)(i * 0x9e3779b97f4a7c15ull));

	rocksdb_writebatch_put(wb, key, (size_t)kl, val, (size_t)vl);
}

/* WriteBatch b: puts of keys [b*K, (b+1)*K), then, from the second batch on,
 * an overwrite of a key of the batch before and every DELETE_EVERY batches
 * the delete of another (so the replicas must agree on order, not only on
 * the set of puts). Returns the keys deleted. */
static uint64_t fill_batch(rocksdb_writebatch_t *wb, uint64_t b, const struct opts *o)
{
	uint64_t first = b * o->batch,
		 end = first + o->batch < o->keys ? first + o->batch : o->keys;
	char key[32];

	for (uint64_t i = first; i < end; i++)
		put_key(wb, i, "first");
	if (b == 0)
		return 0;
	put_key(wb, first - o->batch + b % o->batch, "overwritten");
	if (b % DELETE_EVERY)
		return 0;
	rocksdb_writebatch_delete(wb, key,
				  (size_t)snprintf(key, sizeof(key), "key%08" PRIu64,
						   first - o->batch + (b * 7 + 1) % o->batch));
	return 1;
}

static int leader(const struct opts *o)
{
	struct sl_client *c = NULL;
	struct db d = {0};
	uint64_t batches = (o->keys + o->batch - 1) / o->batch, deleted = 0;
	int64_t first = 0, lsn = 0;
	char *err = NULL;
	int rc = 1;

	if (db_open(&d, o->db, 0) || client_open(&c, o->socket, 0, 0))
		goto out;
	for (uint64_t b = 0; b < batches && !stop; b++) {
		rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
		size_t len;
		const char *data;

		deleted += fill_batch(wb, b, o);
		rocksdb_write(d.db, d.wo, wb, &err);
		data = rocksdb_writebatch_data(wb, &len);
		if (!err)
			lsn = sl_client_append(c, data, (uint32_t)len, 0);
		rocksdb_writebatch_destroy(wb);
		if (err) {
			fail("applying a WriteBatch", err);
			goto out;
		}
		if (lsn < 0) {
			fail("appending a WriteBatch", NULL);
			goto out;
		}
		first = first ? first : lsn;
	}
	if (stop) {
		fprintf(stderr, "shiplog-rocksdb: stopped\n");
		goto out;
	}
	if (sl_client_wait(c, (uint64_t)lsn, SL_LEVEL_COMMITTED, COMMIT_WAIT_MS) < 0) {
		fail("waiting for the last commit", NULL);
		goto out;
	}
	printf("leader: %" PRIu64 " keys in %" PRIu64 " WriteBatches, lsn %" PRId64 "..%" PRId64
	       " committed, %" PRIu64 " keys deleted, %" PRIu64 " keys expected\n",
	       o->keys, batches, first, lsn, deleted, o->keys - deleted);
	rc = 0;
out:
	sl_client_close(c);
	db_close(&d);
	return rc;
}

/* --- follower ----------------------------------------------------------------------- */

static uint64_t applied_lsn(struct db *d)
{
	char *err = NULL, *v;
	size_t len = 0;
	uint64_t lsn = 0;

	v = rocksdb_get_cf(d->db, d->ro, d->cf[1], APPLIED_KEY, strlen(APPLIED_KEY), &len, &err);
	if (v && len == sizeof(lsn))
		memcpy(&lsn, v, sizeof(lsn));
	rocksdb_free(v);
	free(err);
	return lsn;
}

struct ops {
	int n;
};

static void count_put(void *s, const char *k, size_t kl, const char *v, size_t vl)
{
	(void)k, (void)kl, (void)v, (void)vl;
	((struct ops *)s)->n++;
}

static void count_delete(void *s, const char *k, size_t kl)
{
	(void)k, (void)kl;
	((struct ops *)s)->n++;
}

/* Apply the record of `lsn`: the leader's WriteBatch plus this LSN in
 * META_CF, atomically. The bytes come from the log, so they are checked:
 * a WriteBatch's header, and only puts and deletes of the default column
 * family (what the leader writes); anything else stops the follower. */
static int apply(struct db *d, const struct sl_client_rec *r)
{
	rocksdb_writebatch_t *wb;
	struct ops ops = {0};
	char *err = NULL, what[96];
	int rc = 0;

	snprintf(what, sizeof(what), "lsn %" PRIu64, r->lsn);
	if (r->len < WB_HDR_BYTES)
		return fail(what, strdup("not a WriteBatch (too short)"));
	wb = rocksdb_writebatch_create_from(r->data, r->len);
	rocksdb_writebatch_iterate(wb, &ops, count_put, count_delete);
	if (ops.n != rocksdb_writebatch_count(wb)) {
		rocksdb_writebatch_destroy(wb);
		return fail(what, strdup("a WriteBatch this example does not write"));
	}
	rocksdb_writebatch_put_cf(wb, d->cf[1], APPLIED_KEY, strlen(APPLIED_KEY),
				  (const char *)&r->lsn, sizeof(r->lsn));
	rocksdb_write(d->db, d->wo, wb, &err);
	if (err)
		rc = fail(what, err);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

static int follower(const struct opts *o)
{
	struct sl_client_rec recs[CONSUME_MAX];
	struct sl_client *c = NULL;
	struct db d = {0};
	time_t deadline = time(NULL) + (time_t)o->timeout_s;
	uint64_t start, done;
	int rc = 1;

	if (db_open(&d, o->db, 0))
		goto out;
	start = done = applied_lsn(&d);
	if (done < o->until_lsn && client_open(&c, o->socket, 1, done))
		goto out;
	while (done < o->until_lsn && !stop && time(NULL) < deadline) {
		uint64_t left = o->until_lsn - done;
		int n = sl_client_consume(c, recs,
					  left < CONSUME_MAX ? (unsigned)left : CONSUME_MAX, 200);

		if (n < 0) {
			fail("consuming", NULL);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (recs[i].lsn != done + 1) {
				fprintf(stderr,
					"shiplog-rocksdb: delivered lsn %" PRIu64 " after %" PRIu64
					"\n",
					recs[i].lsn, done);
				goto out;
			}
			if (apply(&d, &recs[i]))
				goto out;
			done = recs[i].lsn;
		}
		if (n > 0 && sl_client_applied(c, done) < 0) {
			fail("acknowledging applied", NULL);
			goto out;
		}
	}
	if (done < o->until_lsn) {
		fprintf(stderr, "shiplog-rocksdb: %s at lsn %" PRIu64 " of %" PRIu64 "\n",
			stop ? "stopped" : "timed out", done, o->until_lsn);
		goto out;
	}
	/* shipd takes the applied LSN from shared memory on its next turn: wait
	 * until it has, or closing now could lose the last acknowledgement
	 * (which ack_level = applied commits on). */
	if (c && sl_client_wait(c, done, SL_LEVEL_APPLIED_HERE, COMMIT_WAIT_MS) < 0) {
		fail("waiting for shipd to take the applied lsn", NULL);
		goto out;
	}
	printf("follower: applied lsn %" PRIu64 "..%" PRIu64 " to %s\n", start + 1, done, o->db);
	rc = 0;
out:
	sl_client_close(c);
	db_close(&d);
	return rc;
}

/* --- compare -------------------------------------------------------------------------- */

/* FNV-1a over the length-prefixed keys and values, in key order. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Both iterators at the same key with the same value, or both at the end. */
static int same(rocksdb_iterator_t *a, rocksdb_iterator_t *b)
{
	size_t al, bl;
	const char *x, *y;

	if (!rocksdb_iter_valid(a) || !rocksdb_iter_valid(b))
		return rocksdb_iter_valid(a) == rocksdb_iter_valid(b);
	x = rocksdb_iter_key(a, &al);
	y = rocksdb_iter_key(b, &bl);
	if (al != bl || memcmp(x, y, al) != 0)
		return 0;
	x = rocksdb_iter_value(a, &al);
	y = rocksdb_iter_value(b, &bl);
	return al == bl && memcmp(x, y, al) == 0;
}

static void show_key(const char *db, rocksdb_iterator_t *it)
{
	size_t kl;
	const char *k;

	if (!rocksdb_iter_valid(it)) {
		printf("  %s: (no more keys)\n", db);
		return;
	}
	k = rocksdb_iter_key(it, &kl);
	printf("  %s: key %.*s\n", db, (int)(kl > 64 ? 64 : kl), k);
}

static int compare(int n, char **paths)
{
	struct db d[16] = {0};
	rocksdb_iterator_t *it[16] = {0};
	uint64_t keys = 0, sum = 0xcbf29ce484222325ull;
	int rc = 1;

	if (n < 2 || n > 16) {
		fprintf(stderr, "shiplog-rocksdb: compare takes 2 to 16 databases\n");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		if (db_open(&d[i], paths[i], 1))
			goto out;
		it[i] = rocksdb_create_iterator_cf(d[i].db, d[i].ro, d[i].cf[0]);
		rocksdb_iter_seek_to_first(it[i]);
	}
	for (;; keys++) {
		size_t kl, vl;
		const char *k, *v;

		for (int i = 1; i < n; i++) {
			if (same(it[0], it[i]))
				continue;
			printf("compare: %s and %s differ after %" PRIu64 " equal keys:\n",
			       paths[0], paths[i], keys);
			show_key(paths[0], it[0]);
			show_key(paths[i], it[i]);
			goto out;
		}
		if (!rocksdb_iter_valid(it[0]))
			break;
		k = rocksdb_iter_key(it[0], &kl);
		v = rocksdb_iter_value(it[0], &vl);
		sum = fnv(fnv(fnv(fnv(sum, &kl, sizeof(kl)), k, kl), &vl, sizeof(vl)), v, vl);
		for (int i = 0; i < n; i++)
			rocksdb_iter_next(it[i]);
	}
	printf("compare: %d databases hold the same %" PRIu64 " keys (checksum %016" PRIx64 ")\n",
	       n, keys, sum);
	rc = 0;
out:
	for (int i = 0; i < n; i++) {
		if (it[i])
			rocksdb_iter_destroy(it[i]);
		db_close(&d[i]);
	}
	return rc;
}

/* --- main ------------------------------------------------------------------------------- */

static int number(const char *opt, const char *v, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || *end || end == v || *out == 0 || v[0] == '-') {
		fprintf(stderr, "shiplog-rocksdb: %s: '%s' is not a positive count\n", opt, v);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, 0, 's'},
	    {"db", required_argument, 0, 'd'},
	    {"keys", required_argument, 0, 'k'},
	    {"batch", required_argument, 0, 'b'},
	    {"until-lsn", required_argument, 0, 'u'},
	    {"timeout", required_argument, 0, 't'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	struct opts o = {.batch = 100, .timeout_s = DEFAULT_TIMEOUT};
	struct sigaction sa = {.sa_handler = on_signal};
	const char *cmd;
	int c;

	while ((c = getopt_long(argc, argv, "s:d:h", longopts, NULL)) != -1) {
		if ((c == 'k' && number("--keys", optarg, &o.keys)) ||
		    (c == 'b' && number("--batch", optarg, &o.batch)) ||
		    (c == 'u' && number("--until-lsn", optarg, &o.until_lsn)) ||
		    (c == 't' && number("--timeout", optarg, &o.timeout_s)))
			return 2;
		if (c == 's')
			o.socket = optarg;
		else if (c == 'd')
			o.db = optarg;
		else if (c == 'h')
			return usage(stdout), 0;
		else if (c == '?')
			return usage(stderr), 2;
	}
	if (optind >= argc)
		return usage(stderr), 2;
	cmd = argv[optind++];
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (strcmp(cmd, "compare") == 0)
		return compare(argc - optind, argv + optind);
	if (optind != argc || !o.socket || !o.db) {
		fprintf(stderr, "shiplog-rocksdb: %s needs -s SOCKET and -d DB\n", cmd);
		return 2;
	}
	if (strcmp(cmd, "leader") == 0 && o.keys)
		return leader(&o);
	if (strcmp(cmd, "follower") == 0 && o.until_lsn)
		return follower(&o);
	usage(stderr);
	return 2;
}
