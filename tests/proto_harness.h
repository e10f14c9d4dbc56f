/* A tiny in-memory cluster for protocol unit tests: a FIFO network with
 * programmable drops, memory logs whose durability the test controls, and
 * engines that record what they were delivered. (The full randomized
 * simulator is tests/sim/.) */
#ifndef SHIPLOG_TEST_PROTO_HARNESS_H
#define SHIPLOG_TEST_PROTO_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/frame.h"
#include "shiplog/merkle.h"
#include "shiplog/proto.h"

#define H_NODES	    7
#define H_LOG_BYTES (32u << 20)
#define H_QUEUE	    65536
#define H_MAX_LSN   200000
#define H_RAW_MAX   (1u << 20) /* the harness's limits.max_raw_bytes */

struct h_frame {
	uint32_t from, to;
	uint32_t len;
	uint8_t buf[SL_FRAME_MAX];
};

struct h_node {
	struct harness *h;
	uint32_t id;
	struct sl_proto *p;
	uint8_t *log; /* batches by position */
	uint64_t written, durable;
	uint64_t delivered_next; /* next LSN expected by the engine */
	uint64_t deliveries;
	int auto_durable; /* report durability as soon as written */
	int auto_apply;
	int down; /* drop everything to and from it */
	uint64_t commit_lsn, commit_pos;
	/* Anti-entropy (h_init_tree): a tree rebuilt from the log at each
	 * call of the tree op, over the batches that end by sealed_pos
	 * (UINT64_MAX: every durable one), leaf `xor_leaf` XORed with 1 when
	 * set (a divergent batch); rewrites counted. */
	struct sl_merkle tree;
	uint64_t leaf_pos[4096];
	uint64_t sealed_pos, xor_leaf;
	uint64_t rewrites;
};

struct harness {
	uint32_t n;
	struct sl_proto_config cfg;
	struct h_node nodes[H_NODES];
	struct h_frame *q;
	uint32_t q_head, q_len;
	uint64_t now;
	uint64_t drop_every; /* drop every k-th DATA frame, 0 = none */
	uint64_t sent;
	uint64_t appended;
	int (*filter)(struct harness *h, const struct h_frame *f); /* 1 = drop */
	int lend;	     /* h_append_encoded lends its batches (sl_proto_append_ref) */
	uint64_t lent_out;   /* lent batch buffers not given back yet */
	uint64_t lent_total; /* and lent in all */
	uint32_t rec_len[H_MAX_LSN + 1];
	uint8_t rec_first[H_MAX_LSN + 1];
};

/* Non-zero: every node's catchup_budget_ns (set before h_init). */
extern uint64_t h_catchup_budget_ns;

/* Sets up n nodes (ids 1..n, leader 1) with `policy`; 0 or -errno. */
int h_init(struct harness *h, uint32_t n, const struct sl_ack_policy *policy);
/* The same with the tree and rewrite ops (anti-entropy) on every node. */
int h_init_tree(struct harness *h, uint32_t n, const struct sl_ack_policy *policy);
void h_free(struct harness *h);
/* Deliver queued frames (and tick) until the network is quiet or `max`
 * frames moved; returns frames delivered. */
uint64_t h_run(struct harness *h, uint64_t max);
/* Append a record of `len` bytes whose content derives from its LSN. */
int64_t h_append(struct harness *h, uint32_t len);
/* Append `count` records of `len` bytes (contents as h_append makes them)
 * as one batch encoded here (sl_proto_append_encoded, or with `lend` set
 * sl_proto_append_ref in a buffer of its own, freed when given back), its
 * payload CRC XORed with crc_xor. The batch's last LSN, or the append's
 * -errno. */
int64_t h_append_encoded(struct harness *h, uint32_t count, uint32_t len, uint32_t crc_xor);
void h_advance(struct harness *h, uint64_t ns);
void h_make_durable(struct h_node *n);
void h_record(uint64_t lsn, uint32_t len, uint8_t *out);

#endif
