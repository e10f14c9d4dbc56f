/* shipbench proto: the pure protocol state machine moving records from a
 * leader to followers on one core, faults off: in-memory network (a FIFO of
 * frames), storage that is durable as soon as written. It shows whether the
 * protocol itself could ever be the bottleneck. Measured beside it, in the
 * same run and on the same records: plain LZ4_compress_default speed (the
 * leader compresses every byte) and memcpy bandwidth. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/proto.h"
#include "shiplog/workload.h"

#define PB_NODES_MAX 7
#define PB_POOL	     4096 /* distinct records cycled through */
#define PB_QUEUE     4096

struct pb_frame {
	uint32_t to;
	uint32_t len;
	uint8_t buf[SL_FRAME_MAX];
};

struct pb_node {
	struct pb_bench *b;
	struct sl_proto *p;
	uint64_t written; /* durable as soon as written, reported in the main loop */
	uint64_t reported;
	uint64_t delivered;
};

struct pb_bench {
	uint32_t n;
	struct pb_node nodes[PB_NODES_MAX];
	struct pb_frame *q;
	uint32_t q_head, q_len;
	uint64_t dropped;
	uint64_t commit_lsn;
	uint64_t now;
};

struct pb_opts {
	uint32_t nodes;
	uint32_t record_bytes;
	uint32_t batch_bytes;
	enum sl_wl_kind data;
	int acks;
};

static int pb_write(void *ctx, const uint8_t *batch, size_t len, uint64_t pos)
{
	struct pb_node *n = ctx;

	(void)batch;
	if (pos != n->written)
		return -EIO;
	n->written += len;
	return 0;
}

static int pb_read(void *ctx, uint64_t pos, uint8_t *buf, size_t cap)
{
	(void)ctx, (void)pos, (void)buf, (void)cap;
	return -ENOENT; /* faults off: nobody falls out of the window */
}

static int pb_send(void *ctx, uint32_t to, const uint8_t *frame, size_t len)
{
	struct pb_bench *b = ((struct pb_node *)ctx)->b;
	struct pb_frame *f;

	if (b->q_len == PB_QUEUE) {
		b->dropped++;
		return -ENOBUFS;
	}
	f = &b->q[(b->q_head + b->q_len++) % PB_QUEUE];
	f->to = to;
	f->len = (uint32_t)len;
	memcpy(f->buf, frame, len);
	return 0;
}

static void pb_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *raw, size_t len)
{
	struct pb_node *n = ctx;

	(void)raw, (void)len;
	n->delivered += h->record_count;
	sl_proto_on_applied(n->p, h->base_lsn + h->record_count - 1, n->b->now);
}

static void pb_commit(void *ctx, uint64_t lsn, uint64_t pos)
{
	(void)pos;
	((struct pb_node *)ctx)->b->commit_lsn = lsn;
}

static int pb_setup(struct pb_bench *b, const struct pb_opts *o)
{
	struct sl_proto_config c = {
	    .stream_id = 1,
	    .n_nodes = o->nodes,
	    .leader_id = 1,
	    .epoch = 1,
	    .policy = {.acks = o->acks, .level = SL_ACK_DURABLE},
	    .batch_bytes = o->batch_bytes,
	    .window_bytes = 64u << 20,
	    .rcv_window_bytes = 32u << 20,
	};
	struct sl_log_state log = {.next_lsn = 1};
	int rc;

	memcpy(c.cluster_id, "shipbench-proto", 16);
	for (uint32_t i = 0; i < o->nodes; i++)
		c.node_ids[i] = i + 1;
	b->n = o->nodes;
	b->now = 1;
	b->q = malloc(sizeof(*b->q) * PB_QUEUE);
	if (!b->q)
		return sl_err_set(ENOMEM, "frame queue");
	for (uint32_t i = 0; i < o->nodes; i++) {
		struct pb_node *n = &b->nodes[i];
		struct sl_proto_ops ops = {.ctx = n,
					   .write = pb_write,
					   .read = pb_read,
					   .send = pb_send,
					   .deliver = pb_deliver,
					   .commit = pb_commit};

		n->b = b;
		c.node_id = i + 1;
		if ((rc = sl_proto_create(&n->p, &c, &log, &ops)))
			return rc;
	}
	return 0;
}

static void pb_teardown(struct pb_bench *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		sl_proto_destroy(b->nodes[i].p);
	free(b->q);
}

/* Move every queued frame and report durability until the cluster is quiet
 * (bounded by the queue: each pass handles what is queued). */
static void pb_settle(struct pb_bench *b)
{
	for (int pass = 0; pass < 64; pass++) {
		int work = 0;

		while (b->q_len > 0) {
			struct pb_frame *f = &b->q[b->q_head];

			b->q_head = (b->q_head + 1) % PB_QUEUE;
			b->q_len--;
			sl_proto_on_frame(b->nodes[f->to - 1].p, f->buf, f->len, b->now);
			work = 1;
		}
		for (uint32_t i = 0; i < b->n; i++) {
			struct pb_node *n = &b->nodes[i];

			if (n->reported < n->written) {
				n->reported = n->written;
				sl_proto_on_durable(n->p, n->written, b->now);
				work = 1;
			}
		}
		if (!work)
			return;
	}
}

/* Append records round-robin from the pool for `ns` of wall time. */
static int pb_run(struct pb_bench *b, uint8_t *pool, uint32_t rec_bytes, uint64_t ns,
		  uint64_t *appended)
{
	uint64_t start = bench_now_ns(), i = 0;

	while (bench_now_ns() - start < ns) {
		for (int k = 0; k < 256; k++, i++) {
			const uint8_t *rec = pool + (i % PB_POOL) * rec_bytes;
			int64_t lsn = sl_proto_append(b->nodes[0].p, rec, rec_bytes, b->now);

			if (lsn == -EAGAIN) {
				i--;
				break;
			}
			if (lsn < 0)
				return sl_err_wrap((int)lsn, "append");
			b->now += 10;
		}
		pb_settle(b);
	}
	sl_proto_flush(b->nodes[0].p, b->now);
	pb_settle(b);
	*appended = i;
	return 0;
}

/* The machine limits on the same records: LZ4 and memcpy, MB/s of raw bytes. */
static void pb_limits(const uint8_t *pool, uint32_t rec_bytes, uint32_t batch_bytes, double secs,
		      double *lz4_mb_s, double *memcpy_mb_s)
{
	size_t n = batch_bytes / rec_bytes ? batch_bytes / rec_bytes * rec_bytes : rec_bytes;
	size_t total = (size_t)PB_POOL * rec_bytes, off = 0;
	char *out = malloc(n);
	uint64_t start, bytes = 0;

	*lz4_mb_s = bench_lz4_mb_s(pool, total, n, secs);
	if (!out) {
		*memcpy_mb_s = 0;
		return;
	}
	start = bench_now_ns();
	while (bench_now_ns() - start < (uint64_t)(secs * 1e9)) {
		if (off + n > total)
			off = 0;
		memcpy(out, pool + off, n);
		__asm__ volatile("" : : "r"(out) : "memory");
		bytes += n, off += n;
	}
	*memcpy_mb_s = (double)bytes * 1e3 / (double)(bench_now_ns() - start);
	free(out);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shipbench proto [--json] [--seconds S] [--seed N] [--nodes N]\n"
		"                      [--record-bytes N] [--batch-bytes N] [--data text|random]\n"
		"                      [--acks N|majority|all]\n"
		"  --nodes N         leader plus followers, 2..7 (default 3)\n"
		"  --record-bytes N  bytes per record (default 1024)\n"
		"  --batch-bytes N   raw bytes per batch (default 65536)\n"
		"  --data KIND       text (WAL-like, compressible) or random (default text)\n"
		"  --acks A          follower acks for commit (default 1), at level durable\n");
}

static int parse_opts(int argc, char **argv, struct pb_opts *o)
{
	uint64_t v;

	*o = (struct pb_opts){.nodes = 3, .record_bytes = 1024, .batch_bytes = 65536, .acks = 1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (val && strcmp(a, "--nodes") == 0) {
			if (bench_parse_u64(a, val, 2, PB_NODES_MAX, &v))
				return -EINVAL;
			o->nodes = (uint32_t)v;
		} else if (val && strcmp(a, "--record-bytes") == 0) {
			if (bench_parse_u64(a, val, 1, 1u << 20, &v))
				return -EINVAL;
			o->record_bytes = (uint32_t)v;
		} else if (val && strcmp(a, "--batch-bytes") == 0) {
			if (bench_parse_u64(a, val, 256, 16u << 20, &v))
				return -EINVAL;
			o->batch_bytes = (uint32_t)v;
		} else if (val && strcmp(a, "--data") == 0) {
			if (sl_wl_kind_parse(val, &o->data)) {
				fprintf(stderr, "shipbench proto: --data is text or random\n");
				return -EINVAL;
			}
		} else if (val && strcmp(a, "--acks") == 0) {
			if (sl_acks_parse(val, &o->acks)) {
				fprintf(stderr, "shipbench proto: %s\n", sl_err_msg());
				return -EINVAL;
			}
		} else {
			fprintf(stderr, "shipbench proto: unknown option '%s'\n", a);
			usage(stderr);
			return -EINVAL;
		}
		if (val && strncmp(a, "--", 2) == 0 && strcmp(a, "--help") != 0)
			i++;
	}
	return 0;
}

static void report(const struct bench_common *c, const struct pb_opts *o, double rps,
		   double stored_mb_s, double raw_mb_s, double lz4, double mcp, uint64_t delivered)
{
	struct bench_json j;

	if (!c->json) {
		printf("proto: %u nodes, %s records of %u B: %.0f records/s, %.1f MB/s batch "
		       "payload, %.1f MB/s raw\n"
		       "       limits on the same records: LZ4 %.1f MB/s, memcpy %.1f MB/s; "
		       "raw/LZ4 = %.2f; every follower delivered %llu records\n",
		       o->nodes, sl_wl_kind_name(o->data), o->record_bytes, rps, stored_mb_s,
		       raw_mb_s, lz4, mcp, lz4 > 0 ? raw_mb_s / lz4 : 0,
		       (unsigned long long)delivered);
		return;
	}
	bench_json_begin(&j, "proto");
	bench_json_int(&j, "nodes", o->nodes);
	bench_json_str(&j, "data", sl_wl_kind_name(o->data));
	bench_json_int(&j, "record_bytes", o->record_bytes);
	bench_json_num(&j, "records_per_s", rps);
	bench_json_num(&j, "mb_s", stored_mb_s);
	bench_json_num(&j, "raw_mb_s", raw_mb_s);
	bench_json_num(&j, "limit_lz4_mb_s", lz4);
	bench_json_num(&j, "limit_memcpy_mb_s", mcp);
	bench_json_num(&j, "ratio", lz4 > 0 ? raw_mb_s / lz4 : 0);
	bench_json_end(&j);
}

int bench_proto_main(const struct bench_common *c, int argc, char **argv)
{
	struct pb_opts o;
	struct pb_bench b = {0};
	struct sl_wl wl;
	uint8_t *pool;
	uint64_t appended = 0, t0, t1, end0;
	double secs, lz4, mcp;
	int rc;

	if (parse_opts(argc, argv, &o))
		return 2;
	pool = malloc((size_t)PB_POOL * o.record_bytes);
	if (!pool)
		return 1;
	sl_wl_init(&wl, o.data, c->seed);
	for (uint32_t i = 0; i < PB_POOL; i++)
		sl_wl_fill(&wl, pool + (size_t)i * o.record_bytes, o.record_bytes);
	pb_limits(pool, o.record_bytes, o.batch_bytes, c->seconds / 4, &lz4, &mcp);
	if ((rc = pb_setup(&b, &o)))
		goto out;
	/* Warm up, then measure from a quiet cluster. */
	if ((rc = pb_run(&b, pool, o.record_bytes, (uint64_t)(c->seconds * 1e8), &appended)))
		goto out;
	end0 = b.nodes[0].written;
	t0 = bench_now_ns();
	{
		uint64_t c0 = b.commit_lsn;

		if ((rc =
			 pb_run(&b, pool, o.record_bytes, (uint64_t)(c->seconds * 1e9), &appended)))
			goto out;
		t1 = bench_now_ns();
		secs = (double)(t1 - t0) / 1e9;
		for (uint32_t i = 1; i < b.n; i++)
			if (b.nodes[i].delivered != b.commit_lsn) {
				rc = sl_err_set(EIO, "node %u delivered %llu of %llu records",
						i + 1, (unsigned long long)b.nodes[i].delivered,
						(unsigned long long)b.commit_lsn);
				goto out;
			}
		report(c, &o, (double)(b.commit_lsn - c0) / secs,
		       (double)(b.nodes[0].written - end0) / 1e6 / secs,
		       (double)(b.commit_lsn - c0) * o.record_bytes / 1e6 / secs, lz4, mcp,
		       b.nodes[1].delivered);
	}
out:
	if (rc)
		fprintf(stderr, "shipbench proto: %s\n", sl_err_msg());
	pb_teardown(&b);
	free(pool);
	return rc ? 1 : 0;
}
