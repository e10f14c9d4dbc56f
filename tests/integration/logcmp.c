/* logcmp: do two nodes' logs hold the same batches, byte for byte, up to an
 * LSN? Each log is found through its node's shipd configuration (directory,
 * cluster, stream and node ids) and opened through the store API, which
 * recovers it (after a clean shutdown that changes nothing); then both are
 * walked batch by batch by stream position, from the first batch of the
 * first log. Used by tests/integration/three_udp.sh on stopped nodes.
 *
 *   logcmp [--lsn N] CONFIG_A CONFIG_B
 *
 * N defaults to the lower durable LSN of the two. Exit 0: identical through
 * the batch holding N; 1: a difference, a log that stops short, or an error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "shiplog/err.h"
#include "shiplog/store.h"

struct log {
	struct sl_config *cfg;
	struct sl_store *store;
	struct sl_store_info info;
	uint8_t *buf;
	size_t cap;
};

static int open_log(struct log *l, const char *config)
{
	struct sl_store_opts o;
	int rc;

	if ((rc = sl_config_load(config, 0, &l->cfg)))
		return rc;
	o = l->cfg->node.store;
	o.create = 0;
	if ((rc = sl_store_open(&l->store, &o)))
		return sl_err_wrap(rc, "%s", config);
	sl_store_get_info(l->store, &l->info);
	l->cap = sl_batch_bound(l->cfg->node.proto.limits.max_raw_bytes);
	l->buf = malloc(l->cap);
	return l->buf ? 0 : sl_err_set(ENOMEM, "out of memory");
}

static void close_log(struct log *l)
{
	if (l->store)
		sl_store_close(l->store);
	sl_config_free(l->cfg);
	free(l->buf);
}

static int read_at(struct log *l, uint64_t pos, struct sl_batch_hdr *h)
{
	int n = sl_store_read_pos(l->store, pos, l->buf, l->cap, h);

	if (n < 0)
		return sl_err_wrap(n, "%s: the batch at position %" PRIu64, l->cfg->log_dir, pos);
	return n;
}

/* Walk both logs from A's first batch through the batch holding `upto`.
 * Every step moves `pos` forward by a whole batch, so the walk ends. */
static int compare(struct log *a, struct log *b, uint64_t upto)
{
	uint64_t pos, batches = 0, bytes = 0, first_lsn, last_lsn = 0;
	struct sl_batch_hdr ha, hb;
	int na, nb;

	na = sl_store_read(a->store, a->info.first_lsn, a->buf, a->cap, &ha);
	if (na < 0)
		return sl_err_wrap(na, "%s: the first batch", a->cfg->log_dir);
	pos = ha.position;
	first_lsn = ha.base_lsn;
	while (last_lsn < upto) {
		if ((na = read_at(a, pos, &ha)) < 0 || (nb = read_at(b, pos, &hb)) < 0)
			return -EINVAL;
		if (na != nb || memcmp(a->buf, b->buf, (size_t)na) != 0)
			return sl_err_set(EINVAL,
					  "the batches at position %" PRIu64 " differ (lsn %" PRIu64
					  ", %d and %d bytes)",
					  pos, ha.base_lsn, na, nb);
		batches++;
		bytes += (uint64_t)na;
		if (ha.record_count)
			last_lsn = ha.base_lsn + ha.record_count - 1;
		pos += (uint64_t)na;
	}
	printf("identical: %" PRIu64 " batches, %" PRIu64 " bytes, lsn %" PRIu64 "..%" PRIu64
	       ", positions ..%" PRIu64 "\n",
	       batches, bytes, first_lsn, last_lsn, pos);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"lsn", required_argument, 0, 'l'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	struct log a = {0}, b = {0};
	uint64_t upto = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'l' && sl_config_parse_u64(optarg, 1, UINT64_MAX, &upto) == 0)
			continue;
		fprintf(stderr, "usage: logcmp [--lsn N] CONFIG_A CONFIG_B\n");
		return c == 'h' ? 0 : 1;
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: logcmp [--lsn N] CONFIG_A CONFIG_B\n");
		return 1;
	}
	if ((rc = open_log(&a, argv[optind])) || (rc = open_log(&b, argv[optind + 1])))
		goto out;
	if (!upto)
		upto = a.info.durable_lsn < b.info.durable_lsn ? a.info.durable_lsn
							       : b.info.durable_lsn;
	if (a.info.durable_lsn < upto || b.info.durable_lsn < upto) {
		rc = sl_err_set(ENOENT,
				"lsn %" PRIu64 " is not in both logs (durable through %" PRIu64
				" and %" PRIu64 ")",
				upto, a.info.durable_lsn, b.info.durable_lsn);
		goto out;
	}
	if (upto == 0)
		printf("both logs are empty\n");
	else
		rc = compare(&a, &b, upto);
out:
	if (rc)
		fprintf(stderr, "logcmp: %s\n", sl_err_msg());
	close_log(&a);
	close_log(&b);
	return rc ? 1 : 0;
}
