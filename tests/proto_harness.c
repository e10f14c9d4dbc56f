/* In-memory cluster for protocol unit tests; see proto_harness.h. */
#include "proto_harness.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/frame.h"

/* Record bytes derive from the LSN: pseudo-random, so batches do not
 * compress away and windows fill as they would with real data. */
void h_record(uint64_t lsn, uint32_t len, uint8_t *out)
{
	uint64_t x = lsn * 0x9e3779b97f4a7c15ull + 1;

	for (uint32_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		out[i] = (uint8_t)x;
	}
}

static int h_write(void *ctx, const uint8_t *b, size_t len, uint64_t pos)
{
	struct h_node *n = ctx;

	if (pos != n->written || pos + len > H_LOG_BYTES)
		return -EIO;
	memcpy(n->log + pos, b, len);
	n->written += len;
	if (n->auto_durable)
		h_make_durable(n);
	return 0;
}

void h_make_durable(struct h_node *n)
{
	if (n->durable == n->written)
		return;
	n->durable = n->written;
	sl_proto_on_durable(n->p, n->durable, n->h->now);
}

static int h_read(void *ctx, uint64_t pos, uint8_t *buf, size_t cap)
{
	struct h_node *n = ctx;
	struct sl_batch_hdr hdr;
	int rc;

	if (pos >= n->written)
		return -ENOENT;
	rc = sl_batch_decode_hdr(n->log + pos, n->written - pos, &sl_batch_default_limits, &hdr);
	if (rc < 0)
		return rc;
	if (SL_BATCH_HDR_SIZE + hdr.stored_len > cap)
		return -ENOSPC;
	memcpy(buf, n->log + pos, SL_BATCH_HDR_SIZE + hdr.stored_len);
	return (int)(SL_BATCH_HDR_SIZE + hdr.stored_len);
}

static int h_send(void *ctx, uint32_t to, const uint8_t *head, size_t head_len, const uint8_t *body,
		  size_t body_len)
{
	struct h_node *n = ctx;
	struct harness *h = n->h;
	struct h_frame *f;

	if (h->q_len == H_QUEUE)
		return -ENOBUFS;
	if (head_len + body_len > sizeof(f->buf))
		return -EMSGSIZE;
	f = &h->q[(h->q_head + h->q_len) % H_QUEUE];
	f->from = n->id;
	f->to = to;
	f->len = (uint32_t)(head_len + body_len);
	memcpy(f->buf, head, head_len);
	if (body_len > 0)
		memcpy(f->buf + head_len, body, body_len);
	h->q_len++;
	h->sent++;
	return 0;
}

static int h_deliver(void *ctx, const struct sl_batch_hdr *hdr, const uint8_t *batch,
		     size_t batch_len)
{
	static uint8_t raw[H_RAW_MAX];
	struct h_node *n = ctx;
	struct sl_batch_hdr dh;
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t len;
	uint64_t lsn = hdr->base_lsn;
	int raw_len = sl_batch_decode(batch, batch_len, &n->h->cfg.limits, raw, sizeof(raw), &dh);

	/* The protocol delivers the batch as logged; the engine decodes it
	 * (failing here fails the node, which the tests see). */
	if (raw_len < 0 || dh.hdr_crc != hdr->hdr_crc)
		return raw_len < 0 ? raw_len : -EBADMSG;
	sl_rec_iter_init(&it, raw, (size_t)raw_len);
	while (sl_rec_next(&it, &rec, &len) == 1) {
		/* Out of order or changed bytes leave delivered_next stuck. */
		if (lsn == n->delivered_next && lsn <= H_MAX_LSN && len == n->h->rec_len[lsn] &&
		    (len == 0 || rec[0] == n->h->rec_first[lsn]))
			n->delivered_next++;
		lsn++;
	}
	n->deliveries++;
	if (n->auto_apply)
		sl_proto_on_applied(n->p, lsn - 1, n->h->now);
	return 0;
}

static void h_commit(void *ctx, uint64_t lsn, uint64_t pos)
{
	struct h_node *n = ctx;

	n->commit_lsn = lsn;
	n->commit_pos = pos;
}

uint64_t h_catchup_budget_ns;

static int h_tree(void *ctx, struct sl_proto_tree *t)
{
	struct h_node *n = ctx;
	uint64_t pos = 0, k = 0;

	sl_merkle_reset(&n->tree);
	while (pos < n->durable && k < 4096) {
		struct sl_batch_hdr hdr;
		uint64_t leaf;
		int rc = sl_batch_decode_hdr(n->log + pos, n->durable - pos,
					     &sl_batch_default_limits, &hdr);
		uint32_t len = SL_BATCH_HDR_SIZE + (rc < 0 ? 0 : hdr.stored_len);

		if (rc < 0)
			return rc;
		leaf = sl_merkle_leaf(pos, len, hdr.hdr_crc) ^ (k == n->xor_leaf ? 1 : 0);
		if (sl_merkle_add(&n->tree, leaf) < 0)
			return -ENOSPC;
		n->leaf_pos[k++] = pos;
		if (pos + len <= n->sealed_pos)
			t->sealed = k;
		pos += len;
	}
	t->m = &n->tree;
	t->leaf_pos = n->leaf_pos;
	t->base_pos = 0;
	t->leaves = k;
	return 0;
}

static int h_rewrite(void *ctx, uint64_t pos, const uint8_t *b, size_t len)
{
	struct h_node *n = ctx;

	if (pos + len > n->durable)
		return -EINVAL;
	memcpy(n->log + pos, b, len);
	n->rewrites++;
	return 0;
}

static int h_setup(struct harness *h, uint32_t n, const struct sl_ack_policy *policy, int tree);

/* A lent batch given back: poisoned, so any later read of it shows. */
static void h_release(void *ctx, uint8_t *batch)
{
	struct harness *h = ((struct h_node *)ctx)->h;

	assert(h->lent_out > 0);
	h->lent_out--;
	memset(batch, 0x5a, SL_BATCH_HDR_SIZE);
	free(batch);
}

int h_init(struct harness *h, uint32_t n, const struct sl_ack_policy *policy)
{
	return h_setup(h, n, policy, 0);
}

int h_init_tree(struct harness *h, uint32_t n, const struct sl_ack_policy *policy)
{
	return h_setup(h, n, policy, 1);
}

static int h_setup(struct harness *h, uint32_t n, const struct sl_ack_policy *policy, int tree)
{
	struct sl_log_state log = {.next_lsn = 1};

	memset(h, 0, sizeof(*h));
	h->n = n;
	h->now = 1000000;
	h->q = calloc(H_QUEUE, sizeof(*h->q));
	if (!h->q)
		return -ENOMEM;
	memcpy(h->cfg.cluster_id, "harness-cluster", 16);
	h->cfg.stream_id = 9;
	h->cfg.n_nodes = n;
	h->cfg.leader_id = 1;
	h->cfg.epoch = 3;
	h->cfg.policy = *policy;
	h->cfg.rcv_window_bytes = 1 << 20;
	h->cfg.window_bytes = 2 << 20;
	h->cfg.batch_bytes = 16 << 10;
	h->cfg.catchup_budget_ns = h_catchup_budget_ns;
	h->cfg.limits =
	    (struct sl_batch_limits){.max_raw_bytes = 1 << 20, .max_record_bytes = 64 << 10};
	for (uint32_t i = 0; i < n; i++)
		h->cfg.node_ids[i] = i + 1;
	for (uint32_t i = 0; i < n; i++) {
		struct h_node *nd = &h->nodes[i];
		struct sl_proto_ops ops = {.ctx = nd,
					   .write = h_write,
					   .read = h_read,
					   .send = h_send,
					   .deliver = h_deliver,
					   .commit = h_commit,
					   .release = h_release};
		struct sl_proto_config c = h->cfg;
		int rc;

		if (tree) {
			ops.tree = h_tree;
			ops.rewrite = h_rewrite;
			if (sl_merkle_init(&nd->tree, 4096) < 0)
				return -ENOMEM;
		}
		nd->sealed_pos = UINT64_MAX;
		nd->xor_leaf = UINT64_MAX;
		nd->h = h;
		nd->id = i + 1;
		nd->auto_durable = 1;
		nd->auto_apply = 1;
		nd->delivered_next = 1;
		nd->log = malloc(H_LOG_BYTES);
		if (!nd->log)
			return -ENOMEM;
		c.node_id = nd->id;
		if ((rc = sl_proto_create(&nd->p, &c, &log, &ops)))
			return rc;
	}
	return 0;
}

void h_free(struct harness *h)
{
	for (uint32_t i = 0; i < h->n; i++) {
		sl_proto_destroy(h->nodes[i].p);
		free(h->nodes[i].log);
		sl_merkle_destroy(&h->nodes[i].tree);
	}
	free(h->q);
}

int64_t h_append(struct harness *h, uint32_t len)
{
	static uint8_t rec[1 << 16];
	uint64_t expect = h->appended + 1; /* appends are sequential from LSN 1 */
	int64_t lsn;

	if (len > sizeof(rec))
		return -EMSGSIZE;
	h_record(expect, len, rec);
	lsn = sl_proto_append(h->nodes[0].p, rec, len, h->now);
	if (lsn < 0)
		return lsn;
	if ((uint64_t)lsn != expect)
		return -EPROTO;
	h->appended++;
	if (lsn <= H_MAX_LSN) {
		h->rec_len[lsn] = len;
		h->rec_first[lsn] = len ? rec[0] : 0;
	}
	return lsn;
}

int64_t h_append_encoded(struct harness *h, uint32_t count, uint32_t len, uint32_t crc_xor)
{
	static uint8_t raw[H_RAW_MAX], enc[H_RAW_MAX + SL_BATCH_HDR_SIZE], rec[1 << 16];
	struct sl_batch_builder bb;
	struct sl_batch_hdr hdr = {.base_lsn = 1};
	uint64_t first = h->appended + 1;
	int64_t last;
	int n;

	sl_batch_builder_init(&bb, raw, sizeof(raw));
	if (len > sizeof(rec))
		return -EMSGSIZE;
	for (uint32_t i = 0; i < count; i++) {
		h_record(first + i, len, rec);
		if (sl_batch_builder_add(&bb, rec, len))
			return -EMSGSIZE;
	}
	n = sl_batch_encode(&hdr, raw, bb.len, bb.count, enc, sizeof(enc));
	if (n < 0)
		return n;
	hdr.payload_crc ^= crc_xor;
	if (h->lend) {
		uint8_t *b = malloc((size_t)n);

		if (!b)
			return -ENOMEM;
		memcpy(b, enc, (size_t)n);
		last = sl_proto_append_ref(h->nodes[0].p, &hdr, b, h->now);
		if (last < 0)
			free(b);
		else
			h->lent_out++, h->lent_total++;
	} else {
		last =
		    sl_proto_append_encoded(h->nodes[0].p, &hdr, enc + SL_BATCH_HDR_SIZE, h->now);
	}
	if (last < 0)
		return last;
	if ((uint64_t)last != first + count - 1)
		return -EPROTO;
	for (uint64_t lsn = first; lsn <= (uint64_t)last && lsn <= H_MAX_LSN; lsn++) {
		h->rec_len[lsn] = len;
		h->rec_first[lsn] =
		    len ? raw[(lsn - first) * (SL_REC_PREFIX + len) + SL_REC_PREFIX] : 0;
	}
	h->appended = (uint64_t)last;
	return last;
}

void h_advance(struct harness *h, uint64_t ns)
{
	h->now += ns;
	for (uint32_t i = 0; i < h->n; i++)
		sl_proto_tick(h->nodes[i].p, h->now);
}

uint64_t h_run(struct harness *h, uint64_t max)
{
	uint64_t moved = 0;

	while (h->q_len > 0 && moved < max) {
		struct h_frame *f = &h->q[h->q_head];
		struct h_node *dst = &h->nodes[f->to - 1];
		int drop = h->nodes[f->from - 1].down || dst->down;

		h->q_head = (h->q_head + 1) % H_QUEUE;
		h->q_len--;
		moved++;
		if (!drop && h->filter)
			drop = h->filter(h, f);
		if (!drop && h->drop_every && f->buf[5] == SL_FRAME_DATA &&
		    moved % h->drop_every == 0)
			drop = 1;
		if (!drop)
			sl_proto_on_frame(dst->p, f->buf, f->len, h->now);
		h->now += 1000; /* 1 us per frame */
	}
	return moved;
}
