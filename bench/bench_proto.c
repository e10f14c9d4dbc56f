/* shipbench proto: the protocol state machine alone, a leader and its
 * followers on one core, faults off.
 *
 * Timed: the leader taking batches into its window, cutting them into
 * MTU-sized DATA frames for every follower; the followers checking each frame,
 * placing its fragment in their receive ring, verifying and chaining complete
 * batches, acknowledging them (received, then durable); the leader
 * committing; the followers delivering. All of it the real sl_proto code.
 *
 * Not timed, and said so in the output:
 *  - The codec. With --input encoded (the default) the leader is lent
 *    batches whose payload was encoded before the clock started, in buffers
 *    its window holds until it gives them back (sl_proto_append_ref; enough
 *    buffers that a full window never holds them all, cycled in order, so
 *    the leader reads them from memory as an engine's would be); with
 *    --input encoded-copy it copies them into its window
 *    (sl_proto_append_encoded). Followers deliver batches as logged
 *    (engines decode them). What encoding and decoding those batches costs
 *    (sl_batch_encode, sl_batch_decode: LZ4 and CRC32C) is measured in the
 *    same run and printed beside. --input records appends record by record
 *    (sl_proto_append), so the leader's batching and LZ4 are in the loop, as
 *    in shipd.
 *  - The network and the disk. A frame from the leader is handed to its
 *    follower inside the send call, its fragment read where the leader sent
 *    it from, as a NIC's gather DMA would read it (the follower copies it into
 *    its ring while checking its CRC, as it would from a NIC's buffer).
 *    Frames to the leader are queued. Storage is durable as soon as written.
 *    Neither copies a byte a real node would not.
 *
 * The limit beside the result (pb_passes): the byte passes the nodes must
 * make, replayed alone in the same process on the same buffers, in the
 * run's order, without the protocol: for each batch the leader's pass (a
 * lent batch CRC32C'd fragment by fragment where it lies, the lent buffers
 * cycled as in the run; with --input encoded-copy or records, copied and
 * CRC32C'd into a window of the leader's size), then each follower's
 * copy+CRC32C of every fragment into a ring of its own of the follower's
 * size. The ratio is the protocol's MB per CPU second against that: what
 * its own logic (frames, reassembly, chaining, acks, commits, delivery)
 * costs on top of moving the bytes. The codec is not in it. Plain memcpy,
 * CRC32C, copy+CRC32C and CRC32C over the lent buffers are printed too.
 * Every limit is measured before and after the run and the higher reading
 * kept: a shared machine only slows a measurement down.
 *
 * The machine is shared: rates are given per second of wall time and per
 * second of CPU time this process got (cpu_share is their quotient), and
 * the limits are measured in CPU time, so that ratio (the protocol's MB per
 * CPU second against the limit) compares like with like under load.
 * 1 MB = 1e6 bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "shiplog/batch.h"
#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"
#include "shiplog/proto.h"
#include "shiplog/workload.h"

#define PB_NODES_MAX 7
#define PB_POOL	     4096 /* distinct records cycled through */
#define PB_QUEUE     4096 /* frames to the leader waiting */
#define PB_SMALL     256  /* largest frame to the leader (a STATUS is 136 bytes) */
#define PB_ROUND     16	  /* batches appended between settling the cluster */

struct pb_frame {
	uint32_t len;
	uint8_t buf[PB_SMALL];
};

struct pb_node {
	struct pb_bench *b;
	struct sl_proto *p;
	uint64_t written; /* durable as soon as written, reported in the main loop */
	uint64_t reported;
	uint64_t delivered;
};

/* A batch encoded before the clock starts. */
struct pb_batch {
	struct sl_batch_hdr h;
	const uint8_t *payload;
	const uint8_t *raw; /* its records, length-prefixed */
};

/* Batch buffers lent to the leader's window (sl_proto_append_ref): buffer j
 * holds workload batch j % nb, encoded before the clock starts; the leader
 * writes each header and gives a buffer back when its batch leaves the
 * window. Enough of them that a full window never holds them all. */
struct pb_lent {
	uint8_t *buf;
	size_t stride;
	uint32_t n;
	uint32_t *free; /* FIFO of buffers given back */
	uint32_t free_head, n_free;
	uint64_t released;
};

struct pb_bench {
	uint32_t n;
	struct pb_lent lent;
	struct pb_node nodes[PB_NODES_MAX];
	struct pb_frame *q;
	uint32_t q_head, q_len;
	uint64_t dropped;
	uint64_t commit_lsn;
	uint64_t now;
};

enum pb_input { PB_ENCODED, PB_ENCODED_COPY, PB_RECORDS };

struct pb_opts {
	uint32_t nodes;
	uint32_t record_bytes;
	uint32_t batch_bytes;
	uint32_t mtu;
	enum sl_wl_kind data;
	enum pb_input input;
	int acks;
};

/* The workload: records, and the same records as encoded batches. */
struct pb_work {
	uint8_t *pool; /* PB_POOL records */
	uint8_t *raw;  /* the records length-prefixed, batch after batch */
	uint8_t *enc;  /* each batch encoded, enc_cap apart */
	struct pb_batch *b;
	uint32_t nb, per_batch;
	size_t raw_len, enc_cap, stored; /* stored: sum of the batches' lengths */
};

struct pb_limits {
	double memcpy_mb_s, crc_mb_s, copy_crc_mb_s; /* on the encoded batches */
	double crc_lent_mb_s;			     /* CRC32C over the lent buffers */
	double passes_mb_s;		 /* the run's byte passes alone: the limit (pb_passes) */
	double encode_mb_s, decode_mb_s; /* the codec, raw bytes */
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

/* Leader to follower: handled in the call, nothing copied. Follower to
 * leader: queued (small frames), handled when the cluster settles. */
static int pb_send(void *ctx, uint32_t to, const uint8_t *head, size_t head_len,
		   const uint8_t *body, size_t body_len)
{
	struct pb_node *from = ctx;
	struct pb_bench *b = from->b;
	struct pb_frame *f;

	if (to < 1 || to > b->n)
		return -ENOENT;
	if (from == &b->nodes[0]) {
		sl_proto_on_frame_parts(b->nodes[to - 1].p, head, head_len, body, body_len, b->now);
		return 0;
	}
	if (b->q_len == PB_QUEUE || head_len + body_len > PB_SMALL || to != 1) {
		b->dropped++;
		return -ENOBUFS;
	}
	f = &b->q[(b->q_head + b->q_len++) % PB_QUEUE];
	f->len = (uint32_t)(head_len + body_len);
	memcpy(f->buf, head, head_len);
	if (body_len > 0)
		memcpy(f->buf + head_len, body, body_len);
	return 0;
}

/* The engine: counts records; decoding them is the codec's work, measured
 * apart (decode_mb_s). */
static int pb_deliver(void *ctx, const struct sl_batch_hdr *h, const uint8_t *batch, size_t len)
{
	struct pb_node *n = ctx;

	(void)batch, (void)len;
	n->delivered += h->record_count;
	sl_proto_on_applied(n->p, h->base_lsn + h->record_count - 1, n->b->now);
	return 0;
}

static void pb_release(void *ctx, uint8_t *batch)
{
	struct pb_lent *l = &((struct pb_node *)ctx)->b->lent;
	size_t j = (size_t)(batch - l->buf) / l->stride;

	if (batch < l->buf || j >= l->n || l->n_free == l->n)
		abort(); /* not ours, or given back twice */
	l->free[(l->free_head + l->n_free++) % l->n] = (uint32_t)j;
	l->released++;
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
	    .mtu = o->mtu,
	    .batch_bytes = o->batch_bytes,
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
					   .commit = pb_commit,
					   .release = pb_release};

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
	free(b->lent.buf);
	free(b->lent.free);
}

/* Hand queued frames to the leader and report durability until the cluster
 * is quiet (bounded: each pass handles what is queued). */
static void pb_settle(struct pb_bench *b)
{
	for (int pass = 0; pass < 64; pass++) {
		int work = 0;

		while (b->q_len > 0) {
			struct pb_frame *f = &b->q[b->q_head];

			b->q_head = (b->q_head + 1) % PB_QUEUE;
			b->q_len--;
			sl_proto_on_frame(b->nodes[0].p, f->buf, f->len, b->now);
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

/* One batch's worth: an encoded batch, or its records one by one. 0,
 * -EAGAIN (window full: settle and retry) or -errno. */
static int pb_append(struct pb_bench *b, const struct pb_work *w, enum pb_input in, uint64_t i,
		     uint32_t *rec_next)
{
	const struct pb_batch *pb = &w->b[i % w->nb];
	struct sl_proto *leader = b->nodes[0].p;
	struct pb_lent *l = &b->lent;
	int64_t rc;

	if (in == PB_ENCODED) {
		uint32_t j;

		if (l->n_free == 0)
			return sl_err_set(ENOBUFS, "every lent batch buffer is in the window");
		j = l->free[l->free_head];
		rc =
		    sl_proto_append_ref(leader, &w->b[j % w->nb].h, l->buf + j * l->stride, b->now);
		if (rc >= 0) {
			l->free_head = (l->free_head + 1) % l->n;
			l->n_free--;
		}
		return rc < 0 ? (int)rc : 0;
	}
	if (in == PB_ENCODED_COPY) {
		rc = sl_proto_append_encoded(leader, &pb->h, pb->payload, b->now);
		return rc < 0 ? (int)rc : 0;
	}
	for (; *rec_next < pb->h.record_count; ++*rec_next) {
		size_t off = (size_t)*rec_next * (w->raw_len / w->per_batch); /* prefixed records */

		rc = sl_proto_append(leader, pb->raw + off + SL_REC_PREFIX,
				     (uint32_t)(w->raw_len / w->per_batch - SL_REC_PREFIX), b->now);
		if (rc < 0)
			return (int)rc;
	}
	*rec_next = 0;
	return 0;
}

/* Append batch after batch for `ns` of wall time, settling every round. */
static int pb_run(struct pb_bench *b, const struct pb_work *w, enum pb_input in, uint64_t ns,
		  uint64_t *next)
{
	uint64_t start = bench_now_ns();
	uint32_t rec_next = 0;
	int rc;

	while (bench_now_ns() - start < ns) {
		for (int k = 0; k < PB_ROUND; k++) {
			rc = pb_append(b, w, in, *next, &rec_next);
			if (rc == -EAGAIN)
				break;
			if (rc < 0)
				return sl_err_wrap(rc, "append");
			++*next;
		}
		b->now += 1000;
		pb_settle(b);
	}
	sl_proto_flush(b->nodes[0].p, b->now);
	pb_settle(b);
	return 0;
}

/* ---- the workload ---- */

static void pb_work_free(struct pb_work *w)
{
	free(w->pool);
	free(w->raw);
	free(w->enc);
	free(w->b);
}

/* PB_POOL records, cut into batches of batch_bytes raw, each encoded. */
static int pb_work_make(struct pb_work *w, const struct pb_opts *o, uint64_t seed)
{
	uint32_t rec = o->record_bytes;
	struct sl_wl wl;

	memset(w, 0, sizeof(*w));
	w->per_batch = o->batch_bytes / (rec + SL_REC_PREFIX);
	if (w->per_batch == 0)
		w->per_batch = 1;
	if (w->per_batch > PB_POOL)
		w->per_batch = PB_POOL;
	w->nb = PB_POOL / w->per_batch;
	w->raw_len = (size_t)w->per_batch * (rec + SL_REC_PREFIX);
	w->enc_cap = sl_batch_bound(w->raw_len);
	w->pool = malloc((size_t)PB_POOL * rec);
	w->raw = malloc(w->nb * w->raw_len);
	w->enc = malloc(w->nb * w->enc_cap);
	w->b = calloc(w->nb, sizeof(*w->b));
	if (!w->pool || !w->raw || !w->enc || !w->b)
		return sl_err_set(ENOMEM, "workload of %u records", PB_POOL);
	sl_wl_init(&wl, o->data, seed);
	for (uint32_t i = 0; i < PB_POOL; i++)
		sl_wl_fill(&wl, w->pool + (size_t)i * rec, rec);
	for (uint32_t i = 0; i < w->nb; i++) {
		struct sl_batch_builder bb;
		struct sl_batch_hdr h = {.base_lsn = 1};
		uint8_t *raw = w->raw + i * w->raw_len, *enc = w->enc + i * w->enc_cap;
		int n;

		sl_batch_builder_init(&bb, raw, w->raw_len);
		for (uint32_t r = 0; r < w->per_batch; r++)
			sl_batch_builder_add(&bb, w->pool + ((size_t)i * w->per_batch + r) * rec,
					     rec);
		n = sl_batch_encode(&h, raw, bb.len, bb.count, enc, w->enc_cap);
		if (n < 0)
			return sl_err_wrap(n, "encoding the workload");
		w->b[i] = (struct pb_batch){.h = h, .payload = enc + SL_BATCH_HDR_SIZE, .raw = raw};
		w->stored += (size_t)n;
	}
	return 0;
}

/* Enough lent buffers that the leader's window (its cap, at least four of
 * the largest batches) cannot hold them all, each holding its batch. */
static int pb_lent_make(struct pb_lent *l, const struct pb_work *w)
{
	struct sl_proto_config c = {0};
	size_t min_len = SIZE_MAX, max_len = 0, cap;

	sl_proto_config_defaults(&c);
	for (uint32_t i = 0; i < w->nb; i++) {
		size_t len = SL_BATCH_HDR_SIZE + w->b[i].h.stored_len;

		min_len = len < min_len ? len : min_len;
		max_len = len > max_len ? len : max_len;
	}
	cap = c.window_bytes > 4 * w->enc_cap ? c.window_bytes : 4 * w->enc_cap;
	l->n = (uint32_t)(cap / min_len + 4);
	l->stride = (max_len + 63) / 64 * 64;
	l->buf = malloc(l->n * l->stride);
	l->free = malloc(l->n * sizeof(*l->free));
	if (!l->buf || !l->free)
		return sl_err_set(ENOMEM, "%u lent batch buffers", l->n);
	for (uint32_t j = 0; j < l->n; j++) {
		const struct pb_batch *pb = &w->b[j % w->nb];

		memcpy(l->buf + j * l->stride + SL_BATCH_HDR_SIZE, pb->payload, pb->h.stored_len);
		l->free[j] = j;
	}
	l->free_head = 0;
	l->n_free = l->n;
	return 0;
}

/* ---- the limits, on the same batches ---- */

enum { LIM_MEMCPY, LIM_CRC, LIM_COPY_CRC, LIM_CRC_LENT, LIM_ENCODE, LIM_DECODE };

/* MB/s of one operation cycled over the batches for `secs`: encoded bytes
 * for the byte loops, raw bytes for the codec. `dst` is a buffer of
 * dst_cap bytes written round robin, as a receive ring is. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* MB per CPU second (see the top). */
static double pb_rate(const struct pb_work *w, const struct pb_lent *lent, int what, double secs,
		      uint8_t *dst, size_t dst_cap)
{
	uint64_t start = bench_now_ns(), cpu0 = cpu_ns(), bytes = 0, i = 0;
	size_t off = 0;
	uint32_t sink = 0;

	while (bench_now_ns() - start < (uint64_t)(secs * 1e9)) {
		for (int k = 0; k < 16; k++, i++) {
			const struct pb_batch *pb = &w->b[i % w->nb];
			const uint8_t *src = pb->payload - SL_BATCH_HDR_SIZE;
			size_t len = SL_BATCH_HDR_SIZE + pb->h.stored_len;
			struct sl_batch_hdr h = pb->h;

			if (off + w->enc_cap > dst_cap)
				off = 0;
			switch (what) {
			case LIM_MEMCPY:
				memcpy(dst + off, src, len);
				break;
			case LIM_CRC:
				sink ^= sl_crc32c(0, src, len);
				break;
			case LIM_COPY_CRC:
				sink ^= sl_crc32c_copy(0, dst + off, src, len);
				break;
			case LIM_CRC_LENT: /* buffer j holds batch j % nb */
				pb = &w->b[i % lent->n % w->nb];
				len = SL_BATCH_HDR_SIZE + pb->h.stored_len;
				sink ^= sl_crc32c(0, lent->buf + i % lent->n * lent->stride, len);
				break;
			case LIM_ENCODE:
				sink ^= (uint32_t)sl_batch_encode(
				    &h, pb->raw, w->raw_len, w->per_batch, dst + off, w->enc_cap);
				len = w->raw_len;
				break;
			default:
				sink ^= (uint32_t)sl_batch_decode(src, len, NULL, dst + off,
								  w->raw_len, &h);
				len = w->raw_len;
			}
			__asm__ volatile("" : : "r"(dst), "r"(sink) : "memory");
			bytes += len, off += w->enc_cap;
		}
	}
	return (double)bytes * 1e3 / (double)(cpu_ns() - cpu0);
}

/* The run's byte passes alone, without the protocol: batch after batch as
 * the run takes them, fragment by fragment as frames carry them, the
 * leader's pass (a lent batch CRC32C'd where it lies; otherwise copied and
 * CRC32C'd into a window of its size) and then each follower's copy+CRC32C
 * from there into a ring of its own of its size. MB of batches per CPU
 * second into *out. */
static int pb_passes(const struct pb_work *w, const struct pb_lent *lent, const struct pb_opts *o,
		     double secs, double *out)
{
	struct sl_proto_config c = {.mtu = o->mtu};
	uint8_t *win, *ring[PB_NODES_MAX] = {0};
	uint64_t start, cpu0, bytes = 0, i = 0;
	size_t woff = 0, roff = 0;
	uint32_t frag, sink = 0;
	int rc = 0;

	sl_proto_config_defaults(&c);
	frag = sl_frame_frag_max(c.mtu, 0);
	win = calloc(1, c.window_bytes + w->enc_cap);
	for (uint32_t f = 1; f < o->nodes; f++)
		if (!(ring[f] = calloc(1, c.rcv_window_bytes + w->enc_cap)))
			rc = -ENOMEM;
	if (!win || rc) {
		rc = sl_err_set(ENOMEM, "limit rings");
		goto out;
	}
	/* Touched first, as the run's warm-up touches the nodes' rings. */
	memset(win, 1, c.window_bytes + w->enc_cap);
	for (uint32_t f = 1; f < o->nodes; f++)
		memset(ring[f], 1, c.rcv_window_bytes + w->enc_cap);
	start = bench_now_ns();
	cpu0 = cpu_ns();
	while (bench_now_ns() - start < (uint64_t)(secs * 1e9)) {
		for (int k = 0; k < 16; k++, i++) {
			uint32_t j = (uint32_t)(i % lent->n);
			const struct pb_batch *pb = &w->b[j % w->nb];
			size_t len = SL_BATCH_HDR_SIZE + pb->h.stored_len;
			const uint8_t *src = lent->buf + j * lent->stride;

			if (o->input != PB_ENCODED) { /* the leader copies into its window */
				for (size_t off = 0; off < len; off += frag)
					sink ^=
					    sl_crc32c_copy(0, win + woff + off,
							   pb->payload - SL_BATCH_HDR_SIZE + off,
							   len - off < frag ? len - off : frag);
				src = win + woff;
			} else {
				for (size_t off = 0; off < len; off += frag)
					sink ^= sl_crc32c(0, src + off,
							  len - off < frag ? len - off : frag);
			}
			for (uint32_t f = 1; f < o->nodes; f++)
				for (size_t off = 0; off < len; off += frag)
					sink ^= sl_crc32c_copy(0, ring[f] + roff + off, src + off,
							       len - off < frag ? len - off : frag);
			__asm__ volatile("" : : "r"(win), "r"(sink) : "memory");
			bytes += len;
			woff = woff + len > c.window_bytes ? 0 : woff + len;
			roff = roff + len > c.rcv_window_bytes ? 0 : roff + len;
		}
	}
	*out = (double)bytes * 1e3 / (double)(cpu_ns() - cpu0);
out:
	for (uint32_t f = 1; f < o->nodes; f++)
		free(ring[f]);
	free(win);
	return rc;
}

static int pb_limits(const struct pb_work *w, const struct pb_lent *lent, const struct pb_opts *o,
		     double secs, struct pb_limits *l)
{
	size_t cap = 8u << 20; /* the size of a follower's default receive ring */
	uint8_t *dst = malloc(cap);

	if (!dst)
		return sl_err_set(ENOMEM, "limit buffers");
	memset(dst, 0, cap);
	l->memcpy_mb_s = pb_rate(w, lent, LIM_MEMCPY, secs, dst, cap);
	l->crc_mb_s = pb_rate(w, lent, LIM_CRC, secs, dst, cap);
	l->copy_crc_mb_s = pb_rate(w, lent, LIM_COPY_CRC, secs, dst, cap);
	l->crc_lent_mb_s = pb_rate(w, lent, LIM_CRC_LENT, secs, dst, cap);
	l->encode_mb_s = pb_rate(w, lent, LIM_ENCODE, secs, dst, cap);
	l->decode_mb_s = pb_rate(w, lent, LIM_DECODE, secs, dst, cap);
	free(dst);
	return pb_passes(w, lent, o, secs, &l->passes_mb_s);
}

/* The limits are measured before and after the run: a shared machine only
 * ever slows a measurement down, so the higher reading of each is kept. */
static void pb_limits_max(struct pb_limits *a, const struct pb_limits *b)
{
	double *x[] = {&a->memcpy_mb_s, &a->crc_mb_s,	 &a->copy_crc_mb_s, &a->crc_lent_mb_s,
		       &a->encode_mb_s, &a->decode_mb_s, &a->passes_mb_s};
	const double *y[] = {&b->memcpy_mb_s, &b->crc_mb_s,    &b->copy_crc_mb_s, &b->crc_lent_mb_s,
			     &b->encode_mb_s, &b->decode_mb_s, &b->passes_mb_s};

	for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++)
		if (*y[i] > *x[i])
			*x[i] = *y[i];
}

/* ---- options and output ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shipbench proto [--json] [--seconds S] [--seed N] [--nodes N]\n"
		"                      [--record-bytes N] [--batch-bytes N] [--data text|random]\n"
		"                      [--mtu N] [--input encoded|encoded-copy|records]\n"
		"                      [--acks N|majority|all]\n"
		"  --nodes N         leader plus followers, 2..7 (default 3)\n"
		"  --record-bytes N  bytes per record (default 1024)\n"
		"  --batch-bytes N   raw bytes per batch (default 65536)\n"
		"  --data KIND       text (WAL-like, compressible) or random (default text)\n"
		"  --mtu N           IP MTU the frames fit, 576..9216 (default 9000)\n"
		"  --input KIND      encoded: the leader is lent batches encoded before the\n"
		"                    clock starts, the codec's cost printed beside (default);\n"
		"                    encoded-copy: the same batches copied into its window;\n"
		"                    records: record by record, batching and LZ4 timed too\n"
		"  --acks A          follower acks for commit (default 1), at level durable\n"
		"Prints records/s, MB/s of batches (header and stored payload) and MB/s of\n"
		"raw records, per second of wall time and per second of CPU time the process\n"
		"got (the machine may be shared), against a limit measured in the same run:\n"
		"the byte passes the nodes must make (input encoded: the leader's CRC32C of\n"
		"the lent batches; otherwise its copy+CRC32C into its window; then each\n"
		"follower's copy+CRC32C into its ring), replayed without the protocol.\n");
}

static int parse_opts(int argc, char **argv, struct pb_opts *o)
{
	uint64_t v;

	*o = (struct pb_opts){
	    .nodes = 3, .record_bytes = 1024, .batch_bytes = 65536, .mtu = 9000, .acks = 1};
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
		} else if (val && strcmp(a, "--mtu") == 0) {
			if (bench_parse_u64(a, val, 576, SL_FRAME_MAX, &v))
				return -EINVAL;
			o->mtu = (uint32_t)v;
		} else if (val && strcmp(a, "--data") == 0) {
			if (sl_wl_kind_parse(val, &o->data)) {
				fprintf(stderr, "shipbench proto: --data is text or random\n");
				return -EINVAL;
			}
		} else if (val && strcmp(a, "--input") == 0) {
			if (strcmp(val, "encoded") == 0)
				o->input = PB_ENCODED;
			else if (strcmp(val, "encoded-copy") == 0)
				o->input = PB_ENCODED_COPY;
			else if (strcmp(val, "records") == 0)
				o->input = PB_RECORDS;
			else {
				fprintf(stderr,
					"shipbench proto: --input is encoded, encoded-copy or "
					"records\n");
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

struct pb_result {
	double rps, mb_s, raw_mb_s; /* per second of wall time */
	double cpu_rps, cpu_mb_s;   /* per second of CPU time */
	double cpu_share;
	uint64_t delivered;
};

static void report(const struct bench_common *c, const struct pb_opts *o, const struct pb_result *r,
		   const struct pb_limits *l)
{
	const char *input = o->input == PB_ENCODED	  ? "encoded"
			    : o->input == PB_ENCODED_COPY ? "encoded-copy"
							  : "records";
	double bound = l->passes_mb_s, ratio = bound > 0 ? r->cpu_mb_s / bound : 0;
	struct bench_json j;
	char how[160];

	snprintf(how, sizeof(how),
		 "the run's byte passes alone (leader: %s; %u followers: copy+CRC32C into "
		 "their rings)",
		 o->input == PB_ENCODED ? "CRC32C of the lent batches"
					: "copy+CRC32C into its window",
		 o->nodes - 1);

	if (!c->json) {
		printf("proto: %u nodes, %s records of %u B, input %s, MTU %u: %.0f records/s, "
		       "%.1f MB/s of batches, %.1f MB/s raw\n"
		       "       per CPU second (it got %.0f%% of a core): %.0f records, %.1f MB\n"
		       "       limit per CPU second: %s = %.1f MB, "
		       "ratio %.3f\n"
		       "       (alone: copy+CRC32C %.1f, CRC32C of lent batches %.1f, "
		       "memcpy %.1f, CRC32C %.1f MB)\n"
		       "       codec, not timed%s: encode %.1f MB/s raw, decode %.1f MB/s raw; "
		       "every follower delivered %llu records\n",
		       o->nodes, sl_wl_kind_name(o->data), o->record_bytes, input, o->mtu, r->rps,
		       r->mb_s, r->raw_mb_s, r->cpu_share * 100, r->cpu_rps, r->cpu_mb_s, how,
		       bound, ratio, l->copy_crc_mb_s, l->crc_lent_mb_s, l->memcpy_mb_s,
		       l->crc_mb_s,
		       o->input != PB_RECORDS ? "" : " (but encode is, with --input records)",
		       l->encode_mb_s, l->decode_mb_s, (unsigned long long)r->delivered);
		return;
	}
	bench_json_begin(&j, "proto");
	bench_json_int(&j, "nodes", o->nodes);
	bench_json_str(&j, "data", sl_wl_kind_name(o->data));
	bench_json_int(&j, "record_bytes", o->record_bytes);
	bench_json_str(&j, "input", input);
	bench_json_int(&j, "mtu", o->mtu);
	bench_json_num(&j, "records_per_s", r->rps);
	bench_json_num(&j, "mb_s", r->mb_s);
	bench_json_num(&j, "raw_mb_s", r->raw_mb_s);
	bench_json_num(&j, "cpu_share", r->cpu_share);
	bench_json_num(&j, "records_per_cpu_s", r->cpu_rps);
	bench_json_num(&j, "mb_per_cpu_s", r->cpu_mb_s);
	bench_json_num(&j, "limit_copy_crc_mb_s", l->copy_crc_mb_s);
	bench_json_num(&j, "limit_crc_lent_mb_s", l->crc_lent_mb_s);
	bench_json_num(&j, "limit_mb_s", bound);
	bench_json_num(&j, "ratio", ratio);
	bench_json_num(&j, "memcpy_mb_s", l->memcpy_mb_s);
	bench_json_num(&j, "crc32c_mb_s", l->crc_mb_s);
	bench_json_num(&j, "codec_encode_mb_s", l->encode_mb_s);
	bench_json_num(&j, "codec_decode_mb_s", l->decode_mb_s);
	bench_json_end(&j);
}

/* Every follower delivered every committed record, and no frame was
 * refused or dropped: the run moved what it claims. */
static int pb_check(struct pb_bench *b)
{
	struct sl_proto_status st;

	for (uint32_t i = 0; i < b->n; i++) {
		sl_proto_get_status(b->nodes[i].p, &st);
		if (st.frames_bad || st.failed || b->dropped)
			return sl_err_set(EIO, "node %u: %llu bad frames, failed %d, %llu dropped",
					  i + 1, (unsigned long long)st.frames_bad, st.failed,
					  (unsigned long long)b->dropped);
		if (i > 0 && b->nodes[i].delivered != b->commit_lsn)
			return sl_err_set(EIO, "node %u delivered %llu of %llu records", i + 1,
					  (unsigned long long)b->nodes[i].delivered,
					  (unsigned long long)b->commit_lsn);
	}
	return 0;
}

int bench_proto_main(const struct bench_common *c, int argc, char **argv)
{
	struct pb_opts o;
	struct pb_bench b = {0};
	struct pb_work w = {0};
	struct pb_limits lim = {0}, lim2 = {0};
	struct pb_result r = {0};
	uint64_t next = 0, t0, cpu0, c0, end0, secs_ns;
	int rc;

	if (parse_opts(argc, argv, &o))
		return 2;
	if ((rc = pb_work_make(&w, &o, c->seed)) || (rc = pb_lent_make(&b.lent, &w)) ||
	    (rc = pb_limits(&w, &b.lent, &o, c->seconds / 10, &lim)) || (rc = pb_setup(&b, &o)))
		goto out;
	/* Warm up, then measure from a quiet cluster. */
	if ((rc = pb_run(&b, &w, o.input, (uint64_t)(c->seconds * 1e8), &next)))
		goto out;
	c0 = b.commit_lsn;
	end0 = b.nodes[0].written;
	t0 = bench_now_ns();
	cpu0 = cpu_ns();
	if ((rc = pb_run(&b, &w, o.input, (uint64_t)(c->seconds * 1e9), &next)))
		goto out;
	secs_ns = bench_now_ns() - t0;
	cpu0 = cpu_ns() - cpu0;
	r.cpu_share = (double)cpu0 / (double)secs_ns;
	if ((rc = pb_check(&b)))
		goto out;
	r.rps = (double)(b.commit_lsn - c0) * 1e9 / (double)secs_ns;
	r.mb_s = (double)(b.nodes[0].written - end0) * 1e3 / (double)secs_ns;
	r.raw_mb_s = r.rps * o.record_bytes / 1e6;
	r.cpu_rps = r.rps / r.cpu_share;
	r.cpu_mb_s = r.mb_s / r.cpu_share;
	r.delivered = b.nodes[1].delivered;
	if ((rc = pb_limits(&w, &b.lent, &o, c->seconds / 10, &lim2)))
		goto out;
	pb_limits_max(&lim, &lim2);
	report(c, &o, &r, &lim);
out:
	if (rc)
		fprintf(stderr, "shipbench proto: %s\n", sl_err_msg());
	pb_teardown(&b);
	pb_work_free(&w);
	return rc ? 1 : 0;
}
