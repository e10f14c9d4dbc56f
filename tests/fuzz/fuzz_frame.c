/* Fuzz target for the protocol frame codec.
 *
 * Two properties per input:
 *  1. The input as a frame: decode never reads outside it and fails only
 *     with a documented error and a message; anything it accepts re-encodes
 *     to exactly the same bytes (the MAC trailer aside, which encode leaves
 *     zero for the transport), and the zero-copy prefix agrees. So decode
 *     accepts nothing encode would not produce and drops nothing it wrote.
 *     A DATA frame decodes the same in two parts (prefix, fragment), and
 *     with a placement (sl_frame_decode_place) every input gets the same
 *     verdict, an accepted fragment copied to the place with the same CRC.
 *  2. The input as frame fields: whatever encode accepts, decode accepts and
 *     returns field for field; what encode refuses it refuses with -EINVAL.
 * A failed property aborts, which libFuzzer and the replay driver report. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shiplog/err.h"
#include "shiplog/frame.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_frame: %s:%d: CHECK(%s) failed; last error: %s\n",   \
				__FILE__, __LINE__, #c, sl_err_msg());                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint8_t out[SL_FRAME_MAX];
static uint8_t prefix[SL_FRAME_DATA_PREFIX];

static void check_accepted(const uint8_t *data, size_t size, const struct sl_frame *f)
{
	size_t mac = (f->hdr.flags & SL_FRAME_F_MAC) ? SL_FRAME_MAC_LEN : 0;
	size_t covered;
	int n;

	CHECK(size == SL_FRAME_HDR + (size_t)f->hdr.body_len + mac && size <= SL_FRAME_MAX);
	sl_frame_mac_region(data, size, &covered);
	CHECK(covered == (mac ? size - mac : 0));
	if (f->hdr.type == SL_FRAME_DATA || f->hdr.type == SL_FRAME_REPAIR) {
		CHECK(f->data.frag == data + SL_FRAME_DATA_PREFIX);
		CHECK(f->data.frag_len > 0);
		CHECK((uint64_t)f->data.frag_off + f->data.frag_len <= f->data.batch_len);
	}
	n = sl_frame_encode(f, out, sizeof(out));
	CHECK(n >= 0 && (size_t)n == size);
	CHECK(memcmp(out, data, size - mac) == 0);
	if (f->hdr.type == SL_FRAME_DATA || f->hdr.type == SL_FRAME_REPAIR) {
		struct sl_frame g;

		CHECK(sl_frame_encode_prefix(f, prefix, sizeof(prefix)) == SL_FRAME_DATA_PREFIX);
		CHECK(memcmp(prefix, data, sizeof(prefix)) == 0);
		CHECK(sl_frame_encode_prefix_crc(f, f->data.frag_crc, prefix, sizeof(prefix)) ==
		      SL_FRAME_DATA_PREFIX);
		CHECK(memcmp(prefix, data, sizeof(prefix)) == 0);
		/* The same frame in two parts decodes the same, fragment in place. */
		CHECK(sl_frame_decode_parts(data, SL_FRAME_DATA_PREFIX, data + SL_FRAME_DATA_PREFIX,
					    size - SL_FRAME_DATA_PREFIX, &g) == 0);
		CHECK(g.data.frag == data + SL_FRAME_DATA_PREFIX &&
		      g.data.frag_crc == f->data.frag_crc &&
		      g.data.batch_pos == f->data.batch_pos && g.data.frag_off == f->data.frag_off);
	}
}

/* Take up to `n` bytes of the input as a little-endian number. */
static uint64_t take(const uint8_t **p, size_t *left, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i<n && * left> 0; i++, (*p)++, (*left)--)
		v |= (uint64_t) * *p << (8 * i);
	return v;
}

/* The fixed-size bodies: up to nine u64s, STATUS being the largest. Small
 * values dominate the fields with a narrow valid range (flags, granted). */
static void build_fixed(const uint8_t *p, size_t left, struct sl_frame *f)
{
	uint64_t v[9];

	for (size_t i = 0; i < 9; i++)
		v[i] = take(&p, &left, 8);
	switch (f->hdr.type) {
	case SL_FRAME_VOTE_REQ:
		f->vreq = (struct sl_frame_vote_req){v[0], v[1], v[2], (uint32_t)(v[3] % 5)};
		break;
	case SL_FRAME_VOTE:
		f->vote = (struct sl_frame_vote){(uint32_t)(v[0] % 3), (uint32_t)(v[0] >> 8) % 4,
						 v[1], v[2]};
		break;
	case SL_FRAME_EPOCH_REQ:
		f->ereq = (struct sl_frame_epoch_req){v[0], v[1]};
		break;
	case SL_FRAME_ELECT_NOW:
		f->enow = (struct sl_frame_elect_now){v[0], v[1]};
		break;
	case SL_FRAME_EPOCH_END:
		f->eend = (struct sl_frame_epoch_end){v[0], v[1], v[2] % 4, (uint32_t)v[3]};
		break;
	case SL_FRAME_STATUS:
		f->status =
		    (struct sl_frame_status){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
		break;
	case SL_FRAME_NAK:
		f->nak = (struct sl_frame_nak){v[0], v[1]};
		break;
	case SL_FRAME_TREE_REQ:
		f->treq = (struct sl_frame_tree_req){v[0], v[1], (uint32_t)(v[2] % 34), v[3]};
		if (f->treq.level == 33)
			f->treq.level = SL_TREE_ROOT;
		break;
	case SL_FRAME_TREE:
		f->tree = (struct sl_frame_tree){
		    v[0], v[1], (uint32_t)(v[2] % 33), (uint32_t)(v[2] >> 8) % 4, v[3], v[4], v[5]};
		break;
	case SL_FRAME_REPAIR_REQ:
		f->rreq = (struct sl_frame_repair_req){v[0], (uint32_t)v[1]};
		break;
	default: /* HEARTBEAT, and the unknown types encode must refuse */
		f->hb = (struct sl_frame_hb){v[0], v[1], v[2]};
		break;
	}
}

/* Build a frame from the input; the rest of it becomes the fragment. Small
 * type and flag values dominate so most inputs make encodable frames. */
static void build(const uint8_t *p, size_t left, struct sl_frame *f)
{
	memset(f, 0, sizeof(*f));
	f->hdr.type = (uint8_t)(take(&p, &left, 1) % 15);
	f->hdr.flags = (uint16_t)take(&p, &left, 1) & 0x3;
	for (size_t i = 0; i < sizeof(f->hdr.cluster_id); i++)
		f->hdr.cluster_id[i] = (uint8_t)take(&p, &left, 1);
	f->hdr.stream_id = take(&p, &left, 8);
	f->hdr.epoch = take(&p, &left, 8);
	f->hdr.sender = (uint32_t)take(&p, &left, 4);
	f->hdr.receiver = (uint32_t)take(&p, &left, 4);
	f->hdr.seq = take(&p, &left, 8);
	if (f->hdr.type == SL_FRAME_DATA || f->hdr.type == SL_FRAME_REPAIR) {
		f->data.batch_pos = take(&p, &left, 8);
		f->data.frag_off = (uint32_t)take(&p, &left, 4);
		f->data.batch_len = (uint32_t)take(&p, &left, 4);
		f->data.commit_pos = take(&p, &left, 8);
		f->data.leader_end = take(&p, &left, 8);
		f->data.frag = p;
		f->data.frag_len = (uint32_t)left;
	} else {
		build_fixed(p, left, f);
	}
}

static void check_fields_equal(const struct sl_frame *a, const struct sl_frame *b)
{
	CHECK(a->hdr.type == b->hdr.type && a->hdr.flags == b->hdr.flags);
	CHECK(memcmp(a->hdr.cluster_id, b->hdr.cluster_id, sizeof(a->hdr.cluster_id)) == 0);
	CHECK(a->hdr.stream_id == b->hdr.stream_id && a->hdr.epoch == b->hdr.epoch);
	CHECK(a->hdr.sender == b->hdr.sender && a->hdr.receiver == b->hdr.receiver);
	CHECK(a->hdr.seq == b->hdr.seq);
	if (a->hdr.type == SL_FRAME_DATA || a->hdr.type == SL_FRAME_REPAIR) {
		CHECK(a->data.batch_pos == b->data.batch_pos);
		CHECK(a->data.batch_len == b->data.batch_len);
		CHECK(a->data.frag_off == b->data.frag_off);
		CHECK(a->data.commit_pos == b->data.commit_pos);
		CHECK(a->data.leader_end == b->data.leader_end);
		CHECK(a->data.frag_len == b->data.frag_len);
		CHECK(memcmp(a->data.frag, b->data.frag, a->data.frag_len) == 0);
	} else if (a->hdr.type == SL_FRAME_STATUS) {
		CHECK(memcmp(&a->status, &b->status, sizeof(a->status)) == 0);
	} else if (a->hdr.type == SL_FRAME_NAK) {
		CHECK(memcmp(&a->nak, &b->nak, sizeof(a->nak)) == 0);
	} else if (a->hdr.type == SL_FRAME_VOTE_REQ) {
		CHECK(a->vreq.last_epoch == b->vreq.last_epoch);
		CHECK(a->vreq.last_pos == b->vreq.last_pos);
		CHECK(a->vreq.last_lsn == b->vreq.last_lsn && a->vreq.flags == b->vreq.flags);
	} else if (a->hdr.type == SL_FRAME_VOTE) {
		CHECK(a->vote.granted == b->vote.granted && a->vote.flags == b->vote.flags);
		CHECK(a->vote.last_epoch == b->vote.last_epoch);
		CHECK(a->vote.last_pos == b->vote.last_pos);
	} else if (a->hdr.type == SL_FRAME_EPOCH_REQ) {
		CHECK(a->ereq.epoch == b->ereq.epoch && a->ereq.log_end == b->ereq.log_end);
	} else if (a->hdr.type == SL_FRAME_ELECT_NOW) {
		CHECK(a->enow.log_end == b->enow.log_end &&
		      a->enow.commit_pos == b->enow.commit_pos);
	} else if (a->hdr.type == SL_FRAME_TREE_REQ) {
		CHECK(a->treq.leaves == b->treq.leaves && a->treq.base_pos == b->treq.base_pos);
		CHECK(a->treq.level == b->treq.level && a->treq.index == b->treq.index);
	} else if (a->hdr.type == SL_FRAME_TREE) {
		CHECK(a->tree.leaves == b->tree.leaves && a->tree.base_pos == b->tree.base_pos);
		CHECK(a->tree.level == b->tree.level && a->tree.status == b->tree.status);
		CHECK(a->tree.index == b->tree.index && a->tree.hash == b->tree.hash);
		CHECK(a->tree.sealed == b->tree.sealed);
	} else if (a->hdr.type == SL_FRAME_REPAIR_REQ) {
		CHECK(a->rreq.pos == b->rreq.pos && a->rreq.len == b->rreq.len);
	} else if (a->hdr.type == SL_FRAME_EPOCH_END) {
		CHECK(a->eend.epoch == b->eend.epoch && a->eend.end_pos == b->eend.end_pos);
		CHECK(a->eend.end_lsn == b->eend.end_lsn && a->eend.end_crc == b->eend.end_crc);
	} else {
		CHECK(memcmp(&a->hb, &b->hb, sizeof(a->hb)) == 0);
	}
}

static uint8_t placed[SL_FRAME_MAX];

static uint8_t *place_dest(void *ctx, const struct sl_frame *f)
{
	(void)ctx;
	CHECK(f->data.frag_len <= sizeof(placed));
	return placed;
}

static void check_place(const uint8_t *data, size_t size, int rc, const struct sl_frame *f)
{
	const struct sl_frame_place place = {.dest = place_dest};
	struct sl_frame g;

	CHECK(sl_frame_decode_place(data, size, NULL, 0, &place, &g) == rc);
	if (rc != 0 || (f->hdr.type != SL_FRAME_DATA && f->hdr.type != SL_FRAME_REPAIR))
		return;
	CHECK(g.data.frag == placed && g.data.frag_crc == f->data.frag_crc &&
	      g.data.frag_len == f->data.frag_len);
	CHECK(memcmp(placed, f->data.frag, f->data.frag_len) == 0);
}

static void check_build_roundtrip(const uint8_t *data, size_t size)
{
	struct sl_frame f, g;
	int n;

	build(data, size, &f);
	sl_err_clear();
	n = sl_frame_encode(&f, out, sizeof(out));
	if (n < 0) {
		/* out holds SL_FRAME_MAX, so only invalid fields can fail. */
		CHECK(n == -EINVAL && sl_err_msg()[0] != '\0');
		return;
	}
	CHECK(sl_frame_decode(out, (size_t)n, &g) == 0);
	check_fields_equal(&f, &g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_frame f;
	size_t covered;
	int rc;

	/* mac_region must stay inside whatever it is handed. */
	sl_frame_mac_region(data, size, &covered);
	CHECK(covered <= size);
	sl_err_clear();
	rc = sl_frame_decode(data, size, &f);
	if (rc == 0)
		check_accepted(data, size, &f);
	else
		CHECK((rc == -EBADMSG || rc == -EMSGSIZE || rc == -EPROTO) &&
		      sl_err_msg()[0] != '\0');
	check_place(data, size, rc, &f);
	check_build_roundtrip(data, size);
	return 0;
}
