/* Tests for the protocol frame codec: round trips with every field distinct,
 * the byte layout against frame.h's table (read here with byte shifts, not
 * the codec's helpers), MTU-sized fragments, zero-copy prefixes, and decode's
 * refusal of truncations, bit flips and frames whose CRC is right but whose
 * fields lie. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"

#define BUF_CAP (SL_FRAME_MAX + 256)

static uint8_t frag_src[SL_FRAME_MAX];
static uint8_t buf[BUF_CAP];
static uint8_t buf2[BUF_CAP];

/* ---- helpers ---- */

/* A value whose 8 bytes all differ, and differ from every other k's, so a
 * field written at the wrong offset, width or byte order cannot pass. */
static uint64_t pat(unsigned k)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)((k * 8 + i + 1) & 0xff) << (8 * i);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* Recompute the CRC field over header + everything up to the MAC trailer, so
 * a frame we tampered with fails for the tampered field, not for its CRC. */
/* The CRC as frame.h defines it: DATA's fragment first, then the header
 * with its crc field zeroed and the rest of the body. */
static uint32_t doc_crc(const uint8_t *b, size_t end)
{
	static const uint8_t zero[4];
	size_t fixed = end;
	uint32_t crc = 0;

	if (b[5] == SL_FRAME_DATA && end >= SL_FRAME_DATA_PREFIX) {
		crc = sl_crc32c(0, b + SL_FRAME_DATA_PREFIX, end - SL_FRAME_DATA_PREFIX);
		fixed = SL_FRAME_DATA_PREFIX;
	}
	crc = sl_crc32c(crc, b, 60);
	crc = sl_crc32c(crc, zero, 4);
	return sl_crc32c(crc, b + SL_FRAME_HDR, fixed - SL_FRAME_HDR);
}

static void refix_crc(uint8_t *b, size_t len, int with_mac)
{
	wr32(b + 60, doc_crc(b, len - (with_mac ? SL_FRAME_MAC_LEN : 0)));
}

static void fill_hdr(struct sl_frame *f, uint8_t type, uint16_t flags)
{
	memset(f, 0, sizeof(*f));
	f->hdr.type = type;
	f->hdr.flags = flags;
	for (int i = 0; i < 16; i++)
		f->hdr.cluster_id[i] = (uint8_t)(0xc0 + i);
	f->hdr.stream_id = pat(1);
	f->hdr.epoch = pat(2);
	f->hdr.sender = (uint32_t)pat(3);
	f->hdr.receiver = (uint32_t)pat(4);
	f->hdr.seq = pat(5);
}

static struct sl_frame make_data(uint16_t flags, uint32_t frag_len)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_DATA, flags);
	f.data.batch_pos = pat(6);
	f.data.frag_off = 0x01020304u;
	f.data.batch_len = f.data.frag_off + frag_len + 0x1234;
	f.data.commit_pos = pat(7);
	f.data.leader_end = pat(8);
	f.data.frag = frag_src;
	f.data.frag_len = frag_len;
	return f;
}

static struct sl_frame make_status(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_STATUS, flags);
	f.status.received_pos = pat(6);
	f.status.durable_pos = pat(7);
	f.status.applied_pos = pat(8);
	f.status.window_end = pat(9);
	f.status.applied_lsn = pat(10);
	f.status.echo_received_ts = pat(11);
	f.status.echo_durable_ts = pat(12);
	f.status.echo_applied_ts = pat(13);
	f.status.status_ts = pat(14);
	return f;
}

static struct sl_frame make_nak(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_NAK, flags);
	f.nak.from_pos = pat(6);
	f.nak.to_pos = pat(7);
	return f;
}

static struct sl_frame make_hb(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_HEARTBEAT, flags);
	f.hb.leader_end = pat(6);
	f.hb.commit_pos = pat(7);
	f.hb.leader_ts = pat(8);
	return f;
}

static struct sl_frame make_vreq(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_VOTE_REQ, flags);
	f.vreq.last_epoch = pat(6);
	f.vreq.last_pos = pat(7);
	f.vreq.last_lsn = pat(8);
	f.vreq.flags = SL_VOTE_F_TRANSFER;
	return f;
}

static struct sl_frame make_vote(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_VOTE, flags);
	f.vote.granted = 1;
	f.vote.flags = SL_VOTE_F_PRE;
	f.vote.last_epoch = pat(6);
	f.vote.last_pos = pat(7);
	return f;
}

static struct sl_frame make_ereq(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_EPOCH_REQ, flags);
	f.ereq.epoch = pat(6);
	f.ereq.log_end = pat(7);
	return f;
}

static struct sl_frame make_eend(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_EPOCH_END, flags);
	f.eend.epoch = pat(6);
	f.eend.end_pos = pat(7);
	f.eend.end_lsn = pat(8);
	f.eend.end_crc = (uint32_t)pat(9);
	return f;
}

static struct sl_frame make_enow(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_ELECT_NOW, flags);
	f.enow.log_end = pat(6);
	f.enow.commit_pos = pat(7);
	return f;
}

static struct sl_frame make_treq(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_TREE_REQ, flags);
	f.treq.leaves = pat(6);
	f.treq.base_pos = pat(7);
	f.treq.level = 5;
	f.treq.index = pat(8);
	return f;
}

static struct sl_frame make_tree(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_TREE, flags);
	f.tree.leaves = pat(6);
	f.tree.base_pos = pat(7);
	f.tree.level = SL_TREE_ROOT;
	f.tree.status = SL_TREE_SHORT;
	f.tree.index = pat(8);
	f.tree.hash = pat(9);
	f.tree.sealed = pat(10);
	return f;
}

static struct sl_frame make_rreq(uint16_t flags)
{
	struct sl_frame f;

	fill_hdr(&f, SL_FRAME_REPAIR_REQ, flags);
	f.rreq.pos = pat(6);
	f.rreq.len = 4321;
	return f;
}

static struct sl_frame make_repair(uint16_t flags, uint32_t len)
{
	struct sl_frame f = make_data(flags, len);

	f.hdr.type = SL_FRAME_REPAIR;
	return f;
}

/* Every type, with and without a MAC; DATA small enough to flip every bit. */
static int sample(unsigned i, struct sl_frame *f)
{
	uint16_t flags = (i & 1) ? SL_FRAME_F_MAC : 0;

	switch (i / 2) {
	case 0:
		*f = make_data(flags, 40);
		return 1;
	case 1:
		*f = make_status(flags);
		return 1;
	case 2:
		*f = make_nak(flags);
		return 1;
	case 3:
		*f = make_hb(flags);
		return 1;
	case 4:
		*f = make_vreq(flags);
		return 1;
	case 5:
		*f = make_vote(flags);
		return 1;
	case 6:
		*f = make_ereq(flags);
		return 1;
	case 7:
		*f = make_eend(flags);
		return 1;
	case 8:
		*f = make_enow(flags);
		return 1;
	case 9:
		*f = make_treq(flags);
		return 1;
	case 10:
		*f = make_tree(flags);
		return 1;
	case 11:
		*f = make_rreq(flags);
		return 1;
	case 12:
		*f = make_repair(flags, 40);
		return 1;
	default:
		return 0;
	}
}

static void assert_hdr_equal(const struct sl_frame_hdr *a, const struct sl_frame_hdr *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->flags, b->flags);
	assert_memory_equal(a->cluster_id, b->cluster_id, 16);
	assert_int_equal(a->stream_id, b->stream_id);
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->sender, b->sender);
	assert_int_equal(a->receiver, b->receiver);
	assert_int_equal(a->seq, b->seq);
}

static int encode_ok(const struct sl_frame *f, uint8_t *out)
{
	int n = sl_frame_encode(f, out, BUF_CAP);

	if (n < 0)
		fail_msg("encode: %d %s", n, sl_err_msg());
	return n;
}

static void assert_decode_ok(const uint8_t *b, size_t len, struct sl_frame *f)
{
	int rc = sl_frame_decode(b, len, f);

	if (rc != 0)
		fail_msg("decode: %d %s", rc, sl_err_msg());
}

/* Decode must fail with `code`, and its message must mention `what`. */
static void assert_decode_err(const uint8_t *b, size_t len, int code, const char *what)
{
	struct sl_frame f;
	int rc;

	sl_err_clear();
	rc = sl_frame_decode(b, len, &f);
	if (rc != code)
		fail_msg("decode gave %d (want %d): %s", rc, code, sl_err_msg());
	if (what != NULL && strstr(sl_err_msg(), what) == NULL)
		fail_msg("message \"%s\" does not mention \"%s\"", sl_err_msg(), what);
}

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(frag_src); i++)
		frag_src[i] = (uint8_t)(i * 131 + 7);
	return 0;
}

/* ---- round trips and layout ---- */

static void roundtrip_data(void **state)
{
	struct sl_frame f = make_data(0, 300), g;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_DATA_SUB + 300);
	memset(&g, 0xa5, sizeof(g));
	assert_decode_ok(buf, (size_t)n, &g);
	assert_hdr_equal(&g.hdr, &f.hdr);
	assert_int_equal(g.hdr.body_len, SL_FRAME_DATA_SUB + 300);
	assert_int_equal(g.data.batch_pos, f.data.batch_pos);
	assert_int_equal(g.data.batch_len, f.data.batch_len);
	assert_int_equal(g.data.frag_off, f.data.frag_off);
	assert_int_equal(g.data.commit_pos, f.data.commit_pos);
	assert_int_equal(g.data.leader_end, f.data.leader_end);
	assert_int_equal(g.data.frag_len, 300);
	/* The fragment is not copied: it points into the frame. */
	assert_ptr_equal(g.data.frag, buf + SL_FRAME_DATA_PREFIX);
	assert_memory_equal(g.data.frag, frag_src, 300);
}

static void roundtrip_status(void **state)
{
	struct sl_frame f = make_status(0), g;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_STATUS_BODY);
	memset(&g, 0xa5, sizeof(g));
	assert_decode_ok(buf, (size_t)n, &g);
	assert_hdr_equal(&g.hdr, &f.hdr);
	assert_int_equal(g.hdr.body_len, SL_FRAME_STATUS_BODY);
	assert_int_equal(g.status.received_pos, f.status.received_pos);
	assert_int_equal(g.status.durable_pos, f.status.durable_pos);
	assert_int_equal(g.status.applied_pos, f.status.applied_pos);
	assert_int_equal(g.status.window_end, f.status.window_end);
	assert_int_equal(g.status.applied_lsn, f.status.applied_lsn);
	assert_int_equal(g.status.echo_received_ts, f.status.echo_received_ts);
	assert_int_equal(g.status.echo_durable_ts, f.status.echo_durable_ts);
	assert_int_equal(g.status.echo_applied_ts, f.status.echo_applied_ts);
	assert_int_equal(g.status.status_ts, f.status.status_ts);
}

static void roundtrip_nak(void **state)
{
	struct sl_frame f = make_nak(0), g;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_NAK_BODY);
	memset(&g, 0xa5, sizeof(g));
	assert_decode_ok(buf, (size_t)n, &g);
	assert_hdr_equal(&g.hdr, &f.hdr);
	assert_int_equal(g.hdr.body_len, SL_FRAME_NAK_BODY);
	assert_int_equal(g.nak.from_pos, f.nak.from_pos);
	assert_int_equal(g.nak.to_pos, f.nak.to_pos);
}

static void roundtrip_hb(void **state)
{
	struct sl_frame f = make_hb(0), g;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_HB_BODY);
	memset(&g, 0xa5, sizeof(g));
	assert_decode_ok(buf, (size_t)n, &g);
	assert_hdr_equal(&g.hdr, &f.hdr);
	assert_int_equal(g.hdr.body_len, SL_FRAME_HB_BODY);
	assert_int_equal(g.hb.leader_end, f.hb.leader_end);
	assert_int_equal(g.hb.commit_pos, f.hb.commit_pos);
	assert_int_equal(g.hb.leader_ts, f.hb.leader_ts);
}

/* The election and repair frames: sizes, every field back, and each body
 * at the offsets frame.h documents (reserved fields zero). */
static void roundtrip_election_frames(void **state)
{
	struct sl_frame f, g;
	int n;

	(void)state;
	f = make_vreq(0);
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_VREQ_BODY);
	assert_int_equal(buf[5], 5);
	assert_int_equal(rd64(buf + 64), f.vreq.last_epoch);
	assert_int_equal(rd64(buf + 72), f.vreq.last_pos);
	assert_int_equal(rd64(buf + 80), f.vreq.last_lsn);
	assert_int_equal(rd32(buf + 88), SL_VOTE_F_TRANSFER);
	assert_int_equal(rd32(buf + 92), 0);
	memset(&g, 0xa5, sizeof(g));
	assert_decode_ok(buf, (size_t)n, &g);
	assert_hdr_equal(&g.hdr, &f.hdr);
	assert_int_equal(g.vreq.last_epoch, f.vreq.last_epoch);
	assert_int_equal(g.vreq.last_pos, f.vreq.last_pos);
	assert_int_equal(g.vreq.last_lsn, f.vreq.last_lsn);
	assert_int_equal(g.vreq.flags, f.vreq.flags);

	f = make_vote(0);
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_VOTE_BODY);
	assert_int_equal(buf[5], 6);
	assert_int_equal(rd32(buf + 64), 1);
	assert_int_equal(rd32(buf + 68), SL_VOTE_F_PRE);
	assert_int_equal(rd64(buf + 72), f.vote.last_epoch);
	assert_int_equal(rd64(buf + 80), f.vote.last_pos);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_hdr_equal(&g.hdr, &f.hdr);
	assert_int_equal(g.vote.granted, 1);
	assert_int_equal(g.vote.flags, SL_VOTE_F_PRE);
	assert_int_equal(g.vote.last_epoch, f.vote.last_epoch);
	assert_int_equal(g.vote.last_pos, f.vote.last_pos);

	f = make_ereq(0);
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_EREQ_BODY);
	assert_int_equal(buf[5], 7);
	assert_int_equal(rd64(buf + 64), f.ereq.epoch);
	assert_int_equal(rd64(buf + 72), f.ereq.log_end);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_int_equal(g.ereq.epoch, f.ereq.epoch);
	assert_int_equal(g.ereq.log_end, f.ereq.log_end);

	f = make_eend(0);
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_EEND_BODY);
	assert_int_equal(buf[5], 8);
	assert_int_equal(rd64(buf + 64), f.eend.epoch);
	assert_int_equal(rd64(buf + 72), f.eend.end_pos);
	assert_int_equal(rd64(buf + 80), f.eend.end_lsn);
	assert_int_equal(rd32(buf + 88), f.eend.end_crc);
	assert_int_equal(rd32(buf + 92), 0);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_int_equal(g.eend.epoch, f.eend.epoch);
	assert_int_equal(g.eend.end_pos, f.eend.end_pos);
	assert_int_equal(g.eend.end_lsn, f.eend.end_lsn);
	assert_int_equal(g.eend.end_crc, f.eend.end_crc);

	f = make_enow(0);
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_ENOW_BODY);
	assert_int_equal(buf[5], 9);
	assert_int_equal(rd64(buf + 64), f.enow.log_end);
	assert_int_equal(rd64(buf + 72), f.enow.commit_pos);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_int_equal(g.enow.log_end, f.enow.log_end);
	assert_int_equal(g.enow.commit_pos, f.enow.commit_pos);
}

/* Field values decode refuses even with a right CRC, and encode refuses to
 * build: unknown VOTE_REQ flags, granted other than 0/1, end_lsn 0; and a
 * reserved field that is not zero (which only bytes can carry). */
static void rejects_bad_election_fields(void **state)
{
	struct sl_frame f;
	int n;

	(void)state;
	f = make_vreq(0);
	n = encode_ok(&f, buf);
	wr32(buf + 88, 0x4);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "flags");
	f.vreq.flags = 0x80000000u;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_vreq(0);
	n = encode_ok(&f, buf);
	wr32(buf + 92, 1);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "reserved");

	f = make_vote(0);
	n = encode_ok(&f, buf);
	wr32(buf + 64, 2);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "granted");
	f.vote.granted = 7;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_vote(0);
	n = encode_ok(&f, buf);
	wr32(buf + 68, SL_VOTE_F_TRANSFER);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "flags");
	f.vote.flags = 0x100;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);

	f = make_eend(0);
	n = encode_ok(&f, buf);
	wr64(buf + 80, 0);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "end_lsn");
	f.eend.end_lsn = 0;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_eend(0);
	n = encode_ok(&f, buf);
	wr32(buf + 92, 0xffffffffu);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "reserved");
}

/* Offsets straight from frame.h's table, so a self-consistent but wrong
 * encoder/decoder pair cannot pass. */
static void layout_matches_header_doc(void **state)
{
	struct sl_frame f = make_data(0, 5);
	static const uint8_t zero[4];
	uint32_t crc;

	(void)state;
	assert_int_equal(encode_ok(&f, buf), 64 + 32 + 5);
	assert_memory_equal(buf, "SLF1", 4);
	assert_int_equal(buf[4], SL_FRAME_VERSION);
	assert_int_equal(buf[5], SL_FRAME_DATA);
	assert_int_equal(buf[6] | buf[7] << 8, 0);
	assert_memory_equal(buf + 8, f.hdr.cluster_id, 16);
	assert_int_equal(rd64(buf + 24), f.hdr.stream_id);
	assert_int_equal(rd64(buf + 32), f.hdr.epoch);
	assert_int_equal(rd32(buf + 40), f.hdr.sender);
	assert_int_equal(rd32(buf + 44), f.hdr.receiver);
	assert_int_equal(rd64(buf + 48), f.hdr.seq);
	assert_int_equal(rd32(buf + 56), 32 + 5);
	assert_int_equal(rd64(buf + 64), f.data.batch_pos);
	assert_int_equal(rd32(buf + 72), f.data.batch_len);
	assert_int_equal(rd32(buf + 76), f.data.frag_off);
	assert_int_equal(rd64(buf + 80), f.data.commit_pos);
	assert_int_equal(rd64(buf + 88), f.data.leader_end);
	assert_memory_equal(buf + 96, frag_src, 5);
	/* CRC: the fragment, then the header with the CRC field zeroed, then
	 * the DATA sub-header. */
	crc = sl_crc32c(0, buf + 96, 5);
	crc = sl_crc32c(crc, buf, 60);
	crc = sl_crc32c(crc, zero, 4);
	crc = sl_crc32c(crc, buf + 64, 32);
	assert_int_equal(rd32(buf + 60), crc);

	f = make_hb(SL_FRAME_F_MAC);
	assert_int_equal(encode_ok(&f, buf), 64 + 24 + 16);
	assert_int_equal(buf[6] | buf[7] << 8, SL_FRAME_F_MAC);
	assert_int_equal(rd64(buf + 64), f.hb.leader_end);
	assert_int_equal(rd64(buf + 72), f.hb.commit_pos);
	assert_int_equal(rd64(buf + 80), f.hb.leader_ts);
}

/* Many fragment sizes, with and without MAC, decode to the same fields. */
static void roundtrip_data_sizes(void **state)
{
	struct sl_frame f, g;
	int n;

	(void)state;
	for (int mac = 0; mac < 2; mac++) {
		uint16_t flags = mac ? SL_FRAME_F_MAC : 0;
		uint32_t cap = sl_frame_frag_max(UINT32_MAX, mac);

		for (uint32_t len = 1; len <= cap; len += (len < 300 ? 1 : 997)) {
			f = make_data(flags, len);
			n = encode_ok(&f, buf);
			assert_int_equal(n, SL_FRAME_DATA_PREFIX + len + (mac ? 16 : 0));
			assert_decode_ok(buf, (size_t)n, &g);
			assert_int_equal(g.data.frag_len, len);
			assert_memory_equal(g.data.frag, frag_src, len);
		}
	}
}

/* ---- MTU arithmetic ---- */

static void frag_max_numbers(void **state)
{
	(void)state;
	assert_int_equal(sl_frame_frag_max(1500, 0), 1376);
	assert_int_equal(sl_frame_frag_max(9000, 0), 8876);
	assert_int_equal(sl_frame_frag_max(1500, 1), 1360);
	assert_int_equal(sl_frame_frag_max(9000, 1), 8860);
	/* 28 + 96 bytes of headers leave nothing; one more byte leaves one. */
	assert_int_equal(sl_frame_frag_max(124, 0), 0);
	assert_int_equal(sl_frame_frag_max(125, 0), 1);
	assert_int_equal(sl_frame_frag_max(140, 1), 0);
	assert_int_equal(sl_frame_frag_max(141, 1), 1);
	assert_int_equal(sl_frame_frag_max(0, 0), 0);
	assert_int_equal(sl_frame_frag_max(0, 1), 0);
	/* Capped so the frame stays within SL_FRAME_MAX. */
	assert_int_equal(sl_frame_frag_max(SL_FRAME_MAX + 28, 0), SL_FRAME_MAX - 96);
	assert_int_equal(sl_frame_frag_max(65535, 0), SL_FRAME_MAX - 96);
	assert_int_equal(sl_frame_frag_max(UINT32_MAX, 1), SL_FRAME_MAX - 96 - 16);
}

/* The largest fragment for an MTU makes a frame of exactly MTU - 28 bytes. */
static void data_fills_mtu(void **state)
{
	static const uint32_t mtus[] = {1500, 9000};
	struct sl_frame f, g;
	int n;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		for (int mac = 0; mac < 2; mac++) {
			uint32_t frag = sl_frame_frag_max(mtus[i], mac);

			f = make_data(mac ? SL_FRAME_F_MAC : 0, frag);
			n = encode_ok(&f, buf);
			assert_int_equal(n, mtus[i] - SL_FRAME_IP_UDP);
			assert_decode_ok(buf, (size_t)n, &g);
			assert_int_equal(g.data.frag_len, frag);
			assert_memory_equal(g.data.frag, frag_src, frag);
		}
	}
}

/* One byte over the SL_FRAME_MAX cap: encode refuses, and decode refuses it
 * too even with lengths and CRC consistent. */
static void data_over_frame_max(void **state)
{
	struct sl_frame f;
	int n;

	(void)state;
	for (int mac = 0; mac < 2; mac++) {
		uint16_t flags = mac ? SL_FRAME_F_MAC : 0;
		uint32_t cap = sl_frame_frag_max(UINT32_MAX, mac);

		f = make_data(flags, cap);
		n = encode_ok(&f, buf);
		assert_int_equal(n, SL_FRAME_MAX);
		f = make_data(flags, cap + 1);
		assert_int_equal(sl_frame_encode(&f, buf2, BUF_CAP), -EINVAL);
		/* Build it by hand: one more fragment byte. */
		memmove(buf + n - (mac ? 16 : 0) + 1, buf + n - (mac ? 16 : 0), mac ? 16 : 0);
		wr32(buf + 56, 32 + cap + 1);
		refix_crc(buf, (size_t)n + 1, mac);
		assert_decode_err(buf, (size_t)n + 1, -EMSGSIZE, "fragment");
	}
}

/* ---- zero-copy prefix ---- */

static void prefix_matches_full_encode(void **state)
{
	static const uint32_t lens[] = {1,  2,	  3,	7,    8,
					64, 1000, 1376, 8876, SL_FRAME_MAX - 96 - 16};
	struct sl_frame f;
	int n;

	(void)state;
	for (int mac = 0; mac < 2; mac++) {
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			f = make_data(mac ? SL_FRAME_F_MAC : 0, lens[i]);
			n = encode_ok(&f, buf);
			memset(buf2, 0xee, sizeof(buf2));
			assert_int_equal(sl_frame_encode_prefix(&f, buf2, SL_FRAME_DATA_PREFIX),
					 SL_FRAME_DATA_PREFIX);
			assert_memory_equal(buf2, buf, SL_FRAME_DATA_PREFIX);
			/* Nothing written past the prefix. */
			assert_int_equal(buf2[SL_FRAME_DATA_PREFIX], 0xee);
			/* Prefix + fragment (+ a zero MAC) is the whole frame. */
			memcpy(buf2 + SL_FRAME_DATA_PREFIX, frag_src, lens[i]);
			memset(buf2 + SL_FRAME_DATA_PREFIX + lens[i], 0, mac ? 16 : 0);
			assert_memory_equal(buf2, buf, (size_t)n);
			/* With the fragment's CRC given, the fragment is not read. */
			memset(buf2, 0xee, sizeof(buf2));
			f.data.frag = buf2 + 4096; /* wrong bytes: must not matter */
			assert_int_equal(sl_frame_encode_prefix_crc(&f,
								    sl_crc32c(0, frag_src, lens[i]),
								    buf2, SL_FRAME_DATA_PREFIX),
					 SL_FRAME_DATA_PREFIX);
			assert_memory_equal(buf2, buf, SL_FRAME_DATA_PREFIX);
		}
	}
}

/* A DATA frame decoded as prefix + fragment equals the whole frame decoded,
 * fragment CRC included; the fragment is not copied; other splits refused. */
static void decode_in_parts(void **state)
{
	static uint8_t tail[SL_FRAME_MAX];
	struct sl_frame f = make_data(0, 1000), g, w;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	memcpy(tail, buf + SL_FRAME_DATA_PREFIX, (size_t)n - SL_FRAME_DATA_PREFIX);
	assert_decode_ok(buf, (size_t)n, &w);
	assert_int_equal(w.data.frag_crc, sl_crc32c(0, frag_src, 1000));
	assert_int_equal(sl_frame_decode_parts(buf, SL_FRAME_DATA_PREFIX, tail,
					       (size_t)n - SL_FRAME_DATA_PREFIX, &g),
			 0);
	assert_ptr_equal(g.data.frag, tail);
	assert_int_equal(g.data.frag_len, 1000);
	assert_int_equal(g.data.frag_crc, w.data.frag_crc);
	assert_int_equal(g.data.batch_pos, w.data.batch_pos);
	/* A changed fragment byte fails the frame CRC. */
	tail[500] ^= 1;
	assert_int_equal(sl_frame_decode_parts(buf, SL_FRAME_DATA_PREFIX, tail,
					       (size_t)n - SL_FRAME_DATA_PREFIX, &g),
			 -EBADMSG);
	tail[500] ^= 1;
	/* Whole in the head, empty tail: same as sl_frame_decode. */
	assert_int_equal(sl_frame_decode_parts(buf, (size_t)n, NULL, 0, &g), 0);
	/* Splits elsewhere are the caller's mistake. */
	assert_int_equal(sl_frame_decode_parts(buf, SL_FRAME_DATA_PREFIX + 1, tail + 1,
					       (size_t)n - SL_FRAME_DATA_PREFIX - 1, &g),
			 -EINVAL);
	assert_int_equal(sl_frame_decode_parts(buf, 32, buf + 32, (size_t)n - 32, &g), -EINVAL);
	f = make_hb(0);
	n = encode_ok(&f, buf);
	assert_int_equal(sl_frame_decode_parts(buf, SL_FRAME_HDR, buf + SL_FRAME_HDR,
					       (size_t)n - SL_FRAME_HDR, &g),
			 -EINVAL);
}

static void prefix_errors(void **state)
{
	struct sl_frame f = make_data(0, 100);

	(void)state;
	assert_int_equal(sl_frame_encode_prefix(&f, buf, SL_FRAME_DATA_PREFIX - 1), -ENOSPC);
	f = make_hb(0);
	assert_int_equal(sl_frame_encode_prefix(&f, buf, BUF_CAP), -EINVAL);
	f = make_data(0, 100);
	f.data.batch_len = f.data.frag_off + 99;
	assert_int_equal(sl_frame_encode_prefix(&f, buf, BUF_CAP), -EINVAL);
	f = make_data(0, 0);
	assert_int_equal(sl_frame_encode_prefix(&f, buf, BUF_CAP), -EINVAL);
}

/* ---- encode errors ---- */

static void encode_errors(void **state)
{
	struct sl_frame f;
	int n;

	(void)state;
	for (unsigned i = 0; sample(i, &f); i++) {
		n = encode_ok(&f, buf);
		for (int cap = 0; cap < n; cap++)
			assert_int_equal(sl_frame_encode(&f, buf2, (size_t)cap), -ENOSPC);
		assert_int_equal(sl_frame_encode(&f, buf2, (size_t)n), n);
	}
	f = make_hb(0);
	f.hdr.type = 0;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f.hdr.type = SL_FRAME_REPAIR + 1;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_hb(0x0002);
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_nak(0);
	f.nak.to_pos = f.nak.from_pos;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_data(0, 10);
	f.data.frag = NULL;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_data(0, 10);
	f.data.batch_len = (uint32_t)SL_FRAME_BATCH_MAX + 1;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	f = make_data(0, UINT32_MAX);
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "encoding frame"));
}

/* ---- decode rejects damage ---- */

static void rejects_every_truncation(void **state)
{
	struct sl_frame f;
	int n;

	(void)state;
	for (unsigned i = 0; sample(i, &f); i++) {
		n = encode_ok(&f, buf);
		for (int len = 0; len < n; len++)
			assert_true(sl_frame_decode(buf, (size_t)len, &f) < 0);
		/* A byte too many is as wrong as a byte too few. */
		buf[n] = 0;
		assert_decode_err(buf, (size_t)n + 1, -EBADMSG, "arrived");
	}
}

/* Every single-bit flip of every sample frame. The MAC trailer is the one
 * part decode cannot judge (the transport checks the MAC), so it is skipped. */
static void rejects_every_bit_flip(void **state)
{
	struct sl_frame f, g;
	int n;

	(void)state;
	for (unsigned i = 0; sample(i, &f); i++) {
		n = encode_ok(&f, buf);
		size_t covered = (size_t)n - ((f.hdr.flags & SL_FRAME_F_MAC) ? 16 : 0);

		for (size_t bit = 0; bit < covered * 8; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (sl_frame_decode(buf, (size_t)n, &g) == 0)
				fail_msg("sample %u: flip of bit %zu accepted", i, bit);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		assert_decode_ok(buf, (size_t)n, &g);
	}
}

static void rejects_bad_magic_version_type_flags(void **state)
{
	static const uint8_t bad_types[] = {0, 14, 15, 0x80, 0xff};
	static const uint16_t bad_flags[] = {0x0002, 0x0004, 0x0100, 0x8000, 0xffff, 0xfffe};
	struct sl_frame f = make_hb(0);
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	memcpy(buf2, buf, (size_t)n);

	wr32(buf2, 0x31464c54u);
	refix_crc(buf2, (size_t)n, 0);
	assert_decode_err(buf2, (size_t)n, -EBADMSG, "magic");
	memcpy(buf2, buf, (size_t)n);

	for (unsigned v = 0; v < 256; v++) {
		if (v == SL_FRAME_VERSION)
			continue;
		buf2[4] = (uint8_t)v;
		refix_crc(buf2, (size_t)n, 0);
		assert_decode_err(buf2, (size_t)n, -EPROTO, "version");
	}
	memcpy(buf2, buf, (size_t)n);

	for (size_t i = 0; i < sizeof(bad_types); i++) {
		buf2[5] = bad_types[i];
		refix_crc(buf2, (size_t)n, 0);
		assert_decode_err(buf2, (size_t)n, -EPROTO, "type");
	}
	memcpy(buf2, buf, (size_t)n);

	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		buf2[6] = (uint8_t)bad_flags[i];
		buf2[7] = (uint8_t)(bad_flags[i] >> 8);
		refix_crc(buf2, (size_t)n, 0);
		assert_decode_err(buf2, (size_t)n, -EPROTO, "flags");
	}
}

/* body_len disagrees with the type; the arriving length and the CRC both
 * agree with the lie, so only the per-type length check can catch it. */
static void rejects_body_len_lies(void **state)
{
	static const int deltas[] = {-16, -8, -1, 1, 8, 16};
	struct sl_frame f;
	int n;

	(void)state;
	for (unsigned i = 2; sample(i, &f) && f.hdr.type != SL_FRAME_REPAIR;
	     i += 2) { /* the fixed-size types */
		n = encode_ok(&f, buf);
		for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
			size_t len = (size_t)(n + deltas[d]);

			memcpy(buf2, buf, (size_t)n);
			memset(buf2 + n, 0x5a, 16);
			wr32(buf2 + 56, (uint32_t)(rd32(buf + 56) + deltas[d]));
			refix_crc(buf2, len, 0);
			assert_decode_err(buf2, len, -EBADMSG, "body_len");
		}
		/* Another type's body length. */
		memcpy(buf2, buf, (size_t)n);
		wr32(buf2 + 56,
		     rd32(buf + 56) == SL_FRAME_NAK_BODY ? SL_FRAME_HB_BODY : SL_FRAME_NAK_BODY);
		refix_crc(buf2, SL_FRAME_HDR + rd32(buf2 + 56), 0);
		assert_decode_err(buf2, SL_FRAME_HDR + rd32(buf2 + 56), -EBADMSG, "body_len");
	}

	/* DATA: body shorter than the sub-header. */
	f = make_data(0, 1);
	n = encode_ok(&f, buf);
	for (uint32_t bl = 0; bl < SL_FRAME_DATA_SUB; bl++) {
		wr32(buf + 56, bl);
		refix_crc(buf, SL_FRAME_HDR + bl, 0);
		assert_decode_err(buf, SL_FRAME_HDR + bl, -EBADMSG, "body_len");
	}

	/* Huge body_len values: nothing may overflow into a match with len. */
	static const uint32_t huge[] = {UINT32_MAX, UINT32_MAX - 63, UINT32_MAX - 79, 0x80000000u};
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		f = make_data(0, 40);
		n = encode_ok(&f, buf);
		wr32(buf + 56, huge[i]);
		refix_crc(buf, (size_t)n, 0);
		assert_decode_err(buf, (size_t)n, -EMSGSIZE, "fragment");
	}
	f = make_status(0);
	n = encode_ok(&f, buf);
	wr32(buf + 56, UINT32_MAX);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "body_len");
}

/* Rewrite DATA sub-header fields of buf (n bytes) and re-fix the CRC. */
static void set_data_fields(uint8_t *b, size_t n, uint32_t batch_len, uint32_t frag_off)
{
	wr32(b + 72, batch_len);
	wr32(b + 76, frag_off);
	refix_crc(b, n, 0);
}

static void rejects_bad_fragment_bounds(void **state)
{
	struct sl_frame f = make_data(0, 100), g;
	size_t n;

	(void)state;
	n = (size_t)encode_ok(&f, buf);

	/* Fragment ends exactly at batch_len: fine. One past: refused. */
	set_data_fields(buf, n, 1000, 900);
	assert_decode_ok(buf, n, &g);
	set_data_fields(buf, n, 1000, 901);
	assert_decode_err(buf, n, -EBADMSG, "batch_len 1000");
	set_data_fields(buf, n, 99, 0);
	assert_decode_err(buf, n, -EBADMSG, "batch_len 99");
	/* frag_off + frag_len would wrap a u32 back below batch_len. */
	set_data_fields(buf, n, (uint32_t)SL_FRAME_BATCH_MAX, UINT32_MAX - 50);
	assert_decode_err(buf, n, -EBADMSG, "batch_len");

	/* batch_len over the largest batch there can be. */
	set_data_fields(buf, n, (uint32_t)SL_FRAME_BATCH_MAX, 0);
	assert_decode_ok(buf, n, &g);
	assert_int_equal(g.data.batch_len, SL_FRAME_BATCH_MAX);
	set_data_fields(buf, n, (uint32_t)SL_FRAME_BATCH_MAX + 1, 0);
	assert_decode_err(buf, n, -EMSGSIZE, "batch_len");
	set_data_fields(buf, n, UINT32_MAX, 0);
	assert_decode_err(buf, n, -EMSGSIZE, "batch_len");

	/* An empty fragment: a sub-header and nothing else. */
	f = make_data(0, 1);
	n = (size_t)encode_ok(&f, buf);
	wr32(buf + 56, SL_FRAME_DATA_SUB);
	refix_crc(buf, n - 1, 0);
	assert_decode_err(buf, n - 1, -EBADMSG, "empty fragment");
}

static void rejects_empty_or_reversed_nak(void **state)
{
	static const uint64_t ranges[][2] = {
	    {5, 5}, {6, 5}, {0, 0}, {UINT64_MAX, 0}, {UINT64_MAX, UINT64_MAX}};
	struct sl_frame f = make_nak(0), g;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		wr64(buf + 64, ranges[i][0]);
		wr64(buf + 72, ranges[i][1]);
		refix_crc(buf, (size_t)n, 0);
		assert_decode_err(buf, (size_t)n, -EBADMSG, "NAK");
	}
	wr64(buf + 64, 5);
	wr64(buf + 72, 6);
	refix_crc(buf, (size_t)n, 0);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_int_equal(g.nak.from_pos, 5);
	assert_int_equal(g.nak.to_pos, 6);
}

/* A failed decode leaves the caller's struct alone. */
static void failed_decode_leaves_output(void **state)
{
	struct sl_frame f = make_status(0), g, before;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	buf[70] ^= 1;
	memset(&g, 0x3c, sizeof(g));
	before = g;
	assert_decode_err(buf, (size_t)n, -EBADMSG, "CRC");
	assert_memory_equal(&g, &before, sizeof(g));
}

/* ---- MAC trailer ---- */

static void mac_trailer(void **state)
{
	struct sl_frame f, g;
	size_t covered;
	int n, m;

	(void)state;
	for (unsigned i = 0; sample(i, &f); i += 2) {
		m = encode_ok(&f, buf2); /* without MAC */
		f.hdr.flags = SL_FRAME_F_MAC;
		n = encode_ok(&f, buf);
		assert_int_equal(n, m + SL_FRAME_MAC_LEN);

		sl_frame_mac_region(buf, (size_t)n, &covered);
		assert_int_equal(covered, SL_FRAME_HDR + rd32(buf + 56));
		assert_int_equal(covered, (size_t)n - SL_FRAME_MAC_LEN);
		for (size_t k = covered; k < (size_t)n; k++)
			assert_int_equal(buf[k], 0); /* reserved, zero */
		/* A buffer's capacity in place of the frame length: same region. */
		sl_frame_mac_region(buf, BUF_CAP, &covered);
		assert_int_equal(covered, (size_t)n - SL_FRAME_MAC_LEN);

		/* The transport fills the MAC; decode does not judge it. */
		memset(buf + covered, 0xab, SL_FRAME_MAC_LEN);
		assert_decode_ok(buf, (size_t)n, &g);
		assert_int_equal(g.hdr.flags, SL_FRAME_F_MAC);
		assert_int_equal(g.hdr.body_len, rd32(buf2 + 56));

		/* Too short to hold the MAC, or no MAC flag: no region. */
		sl_frame_mac_region(buf, (size_t)n - 1, &covered);
		assert_int_equal(covered, 0);
		sl_frame_mac_region(buf, 10, &covered);
		assert_int_equal(covered, 0);
		sl_frame_mac_region(buf2, (size_t)m, &covered);
		assert_int_equal(covered, 0);
	}
}

static void mac_region_hostile_body_len(void **state)
{
	struct sl_frame f = make_hb(SL_FRAME_F_MAC);
	size_t covered;
	int n;

	(void)state;
	n = encode_ok(&f, buf);
	wr32(buf + 56, UINT32_MAX);
	sl_frame_mac_region(buf, (size_t)n, &covered);
	assert_int_equal(covered, 0);
	wr32(buf + 56, (uint32_t)(n - SL_FRAME_HDR - SL_FRAME_MAC_LEN + 1));
	sl_frame_mac_region(buf, (size_t)n, &covered);
	assert_int_equal(covered, 0);
}

static void type_names(void **state)
{
	(void)state;
	assert_string_equal(sl_frame_type_name(SL_FRAME_DATA), "DATA");
	assert_string_equal(sl_frame_type_name(SL_FRAME_STATUS), "STATUS");
	assert_string_equal(sl_frame_type_name(SL_FRAME_NAK), "NAK");
	assert_string_equal(sl_frame_type_name(SL_FRAME_HEARTBEAT), "HEARTBEAT");
	assert_string_equal(sl_frame_type_name(SL_FRAME_VOTE_REQ), "VOTE_REQ");
	assert_string_equal(sl_frame_type_name(SL_FRAME_VOTE), "VOTE");
	assert_string_equal(sl_frame_type_name(SL_FRAME_EPOCH_REQ), "EPOCH_REQ");
	assert_string_equal(sl_frame_type_name(SL_FRAME_EPOCH_END), "EPOCH_END");
	assert_string_equal(sl_frame_type_name(SL_FRAME_ELECT_NOW), "ELECT_NOW");
	assert_string_equal(sl_frame_type_name(SL_FRAME_TREE_REQ), "TREE_REQ");
	assert_string_equal(sl_frame_type_name(SL_FRAME_TREE), "TREE");
	assert_string_equal(sl_frame_type_name(SL_FRAME_REPAIR_REQ), "REPAIR_REQ");
	assert_string_equal(sl_frame_type_name(SL_FRAME_REPAIR), "REPAIR");
	assert_string_equal(sl_frame_type_name(0), "unknown");
	assert_string_equal(sl_frame_type_name(99), "unknown");
}

/* The anti-entropy frames: fields at their documented offsets, back as
 * they went; bad levels, statuses, lengths and reserved bits refused;
 * REPAIR decodes in two parts as DATA does. */
static void roundtrip_entropy_frames(void **state)
{
	struct sl_frame f, g;
	int n;

	(void)state;
	f = make_treq(0);
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_TREQ_BODY);
	assert_int_equal(rd64(buf + 64), f.treq.leaves);
	assert_int_equal(rd64(buf + 72), f.treq.base_pos);
	assert_int_equal(rd32(buf + 80), 5);
	assert_int_equal(rd64(buf + 88), f.treq.index);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_memory_equal(&g.treq, &f.treq, sizeof(f.treq));
	wr32(buf + 84, 1); /* reserved */
	refix_crc(buf, (size_t)n, 0);
	assert_decode_err(buf, (size_t)n, -EBADMSG, "reserved");
	f.treq.level = 32;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);

	f = make_tree(SL_FRAME_F_MAC);
	n = encode_ok(&f, buf);
	assert_int_equal(n, SL_FRAME_HDR + SL_FRAME_TREE_BODY + SL_FRAME_MAC_LEN);
	assert_int_equal(rd32(buf + 84), SL_TREE_SHORT);
	assert_int_equal(rd64(buf + 96), f.tree.hash);
	assert_int_equal(rd64(buf + 104), f.tree.sealed);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_memory_equal(&g.tree, &f.tree, sizeof(f.tree));
	f.tree.status = 3;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);

	f = make_rreq(0);
	n = encode_ok(&f, buf);
	assert_int_equal(rd64(buf + 64), f.rreq.pos);
	assert_int_equal(rd32(buf + 72), 4321);
	assert_decode_ok(buf, (size_t)n, &g);
	assert_int_equal(g.rreq.pos, f.rreq.pos);
	assert_int_equal(g.rreq.len, 4321);
	f.rreq.len = 0;
	assert_int_equal(sl_frame_encode(&f, buf, BUF_CAP), -EINVAL);

	f = make_repair(0, 300);
	n = encode_ok(&f, buf);
	assert_int_equal(sl_frame_decode_parts(buf, SL_FRAME_DATA_PREFIX,
					       buf + SL_FRAME_DATA_PREFIX,
					       (size_t)n - SL_FRAME_DATA_PREFIX, &g),
			 0);
	assert_int_equal(g.hdr.type, SL_FRAME_REPAIR);
	assert_int_equal(g.data.frag_len, 300);
	assert_int_equal(g.data.batch_pos, f.data.batch_pos);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(roundtrip_data),
	    cmocka_unit_test(roundtrip_status),
	    cmocka_unit_test(roundtrip_nak),
	    cmocka_unit_test(roundtrip_hb),
	    cmocka_unit_test(roundtrip_election_frames),
	    cmocka_unit_test(rejects_bad_election_fields),
	    cmocka_unit_test(layout_matches_header_doc),
	    cmocka_unit_test(roundtrip_data_sizes),
	    cmocka_unit_test(frag_max_numbers),
	    cmocka_unit_test(data_fills_mtu),
	    cmocka_unit_test(data_over_frame_max),
	    cmocka_unit_test(prefix_matches_full_encode),
	    cmocka_unit_test(prefix_errors),
	    cmocka_unit_test(encode_errors),
	    cmocka_unit_test(rejects_every_truncation),
	    cmocka_unit_test(rejects_every_bit_flip),
	    cmocka_unit_test(rejects_bad_magic_version_type_flags),
	    cmocka_unit_test(rejects_body_len_lies),
	    cmocka_unit_test(rejects_bad_fragment_bounds),
	    cmocka_unit_test(decode_in_parts),
	    cmocka_unit_test(rejects_empty_or_reversed_nak),
	    cmocka_unit_test(failed_decode_leaves_output),
	    cmocka_unit_test(mac_trailer),
	    cmocka_unit_test(mac_region_hostile_body_len),
	    cmocka_unit_test(type_names),
	    cmocka_unit_test(roundtrip_entropy_frames),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
