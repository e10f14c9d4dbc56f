/* Protocol frame codec; see include/shiplog/frame.h.
 *
 * Fields are read and written one at a time at their fixed offsets through
 * the le.h helpers, never by overlaying a struct, so the layout is exactly
 * the one documented and independent of the compiler's padding.
 *
 * Encode and decode share one set of validity checks (check_hdr and
 * check_body), so the encoder can never produce a frame the decoder
 * refuses; encode reports their failures as -EINVAL. */
#include "shiplog/frame.h"

#include <errno.h>
#include <string.h>

#include "shiplog/crc32c.h"
#include "shiplog/err.h"
#include "shiplog/le.h"

/* Common header offsets. */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_TYPE = 5,
	OFF_FLAGS = 6,
	OFF_CLUSTER = 8,
	OFF_STREAM = 24,
	OFF_EPOCH = 32,
	OFF_SENDER = 40,
	OFF_RECEIVER = 44,
	OFF_SEQ = 48,
	OFF_BODY_LEN = 56,
	OFF_CRC = 60,
};

/* DATA sub-header offsets, relative to the body. */
enum {
	OFF_D_BATCH_POS = 0,
	OFF_D_BATCH_LEN = 8,
	OFF_D_FRAG_OFF = 12,
	OFF_D_COMMIT = 16,
	OFF_D_LEADER_END = 24,
};

/* DATA and REPAIR carry a fragment of a batch after the same sub-header. */
static int has_frag(uint8_t type)
{
	return type == SL_FRAME_DATA || type == SL_FRAME_REPAIR;
}

static size_t mac_len(uint16_t flags)
{
	return (flags & SL_FRAME_F_MAC) ? SL_FRAME_MAC_LEN : 0;
}

/* Largest fragment that keeps a DATA frame within SL_FRAME_MAX. */
static uint32_t frag_cap(uint16_t flags)
{
	return (uint32_t)(SL_FRAME_MAX - SL_FRAME_DATA_PREFIX - mac_len(flags));
}

/* Body length of the fixed-size types; 0 for DATA (variable) or unknown. */
static uint32_t fixed_body_len(uint8_t type)
{
	switch (type) {
	case SL_FRAME_STATUS:
		return SL_FRAME_STATUS_BODY;
	case SL_FRAME_NAK:
		return SL_FRAME_NAK_BODY;
	case SL_FRAME_HEARTBEAT:
		return SL_FRAME_HB_BODY;
	case SL_FRAME_VOTE_REQ:
		return SL_FRAME_VREQ_BODY;
	case SL_FRAME_VOTE:
		return SL_FRAME_VOTE_BODY;
	case SL_FRAME_EPOCH_REQ:
		return SL_FRAME_EREQ_BODY;
	case SL_FRAME_EPOCH_END:
		return SL_FRAME_EEND_BODY;
	case SL_FRAME_ELECT_NOW:
		return SL_FRAME_ENOW_BODY;
	case SL_FRAME_TREE_REQ:
		return SL_FRAME_TREQ_BODY;
	case SL_FRAME_TREE:
		return SL_FRAME_TREE_BODY;
	case SL_FRAME_REPAIR_REQ:
		return SL_FRAME_RREQ_BODY;
	default:
		return 0;
	}
}

static int type_known(uint8_t type)
{
	return type >= SL_FRAME_DATA && type <= SL_FRAME_REPAIR;
}

const char *sl_frame_type_name(uint8_t type)
{
	switch (type) {
	case SL_FRAME_DATA:
		return "DATA";
	case SL_FRAME_STATUS:
		return "STATUS";
	case SL_FRAME_NAK:
		return "NAK";
	case SL_FRAME_HEARTBEAT:
		return "HEARTBEAT";
	case SL_FRAME_VOTE_REQ:
		return "VOTE_REQ";
	case SL_FRAME_VOTE:
		return "VOTE";
	case SL_FRAME_EPOCH_REQ:
		return "EPOCH_REQ";
	case SL_FRAME_EPOCH_END:
		return "EPOCH_END";
	case SL_FRAME_ELECT_NOW:
		return "ELECT_NOW";
	case SL_FRAME_TREE_REQ:
		return "TREE_REQ";
	case SL_FRAME_TREE:
		return "TREE";
	case SL_FRAME_REPAIR_REQ:
		return "REPAIR_REQ";
	case SL_FRAME_REPAIR:
		return "REPAIR";
	default:
		return "unknown";
	}
}

uint32_t sl_frame_frag_max(uint32_t mtu, int with_mac)
{
	/* Signed arithmetic so a small MTU goes negative instead of wrapping. */
	int64_t frame_room = (int64_t)mtu - SL_FRAME_IP_UDP;
	int64_t frag = frame_room - SL_FRAME_DATA_PREFIX - (with_mac ? SL_FRAME_MAC_LEN : 0);
	uint32_t cap = frag_cap(with_mac ? SL_FRAME_F_MAC : 0);

	if (frag <= 0)
		return 0;
	return frag > cap ? cap : (uint32_t)frag;
}

/* ---- checks shared by encode and decode ---- */

/* Type, flags and body_len (which the caller has set or parsed). */
static int check_hdr(const struct sl_frame_hdr *h)
{
	const char *name = sl_frame_type_name(h->type);
	uint32_t want;

	if (!type_known(h->type))
		return sl_err_set(EPROTO, "frame: unknown type %u", h->type);
	if (h->flags & ~SL_FRAME_F_KNOWN)
		return sl_err_set(EPROTO, "frame %s: unknown flags 0x%04x (known 0x%04x)", name,
				  h->flags, SL_FRAME_F_KNOWN);
	if (!has_frag(h->type)) {
		want = fixed_body_len(h->type);
		if (h->body_len != want)
			return sl_err_set(EBADMSG, "frame %s: body_len %u, must be %u", name,
					  h->body_len, want);
		return 0;
	}
	if (h->body_len < SL_FRAME_DATA_SUB)
		return sl_err_set(EBADMSG,
				  "frame %s: body_len %u shorter than the %u-byte sub-header", name,
				  h->body_len, SL_FRAME_DATA_SUB);
	if (h->body_len - SL_FRAME_DATA_SUB > frag_cap(h->flags))
		return sl_err_set(EMSGSIZE, "frame %s: fragment of %u bytes over the limit of %u",
				  name, h->body_len - SL_FRAME_DATA_SUB, frag_cap(h->flags));
	return 0;
}

static int check_data(const struct sl_frame_data *d)
{
	uint64_t end = (uint64_t)d->frag_off + d->frag_len;

	if (d->frag_len == 0)
		return sl_err_set(EBADMSG, "frame DATA: empty fragment");
	if (end > d->batch_len)
		return sl_err_set(EBADMSG,
				  "frame DATA: fragment [%u, %llu) runs past batch_len %u "
				  "(batch_pos %llu)",
				  d->frag_off, (unsigned long long)end, d->batch_len,
				  (unsigned long long)d->batch_pos);
	if (d->batch_len > SL_FRAME_BATCH_MAX)
		return sl_err_set(EMSGSIZE, "frame DATA: batch_len %u over the limit of %llu",
				  d->batch_len, (unsigned long long)SL_FRAME_BATCH_MAX);
	return 0;
}

/* Field relations the header alone cannot show. */
static int check_body(const struct sl_frame *f)
{
	switch (f->hdr.type) {
	case SL_FRAME_DATA:
	case SL_FRAME_REPAIR:
		return check_data(&f->data);
	case SL_FRAME_TREE_REQ:
		if (f->treq.level > SL_TREE_LEVEL_MAX && f->treq.level != SL_TREE_ROOT)
			return sl_err_set(EBADMSG, "frame TREE_REQ: level %u (at most %u, or root)",
					  f->treq.level, SL_TREE_LEVEL_MAX);
		return 0;
	case SL_FRAME_TREE:
		if (f->tree.status > SL_TREE_BASE)
			return sl_err_set(EBADMSG, "frame TREE: status %u unknown", f->tree.status);
		if (f->tree.level > SL_TREE_LEVEL_MAX && f->tree.level != SL_TREE_ROOT)
			return sl_err_set(EBADMSG, "frame TREE: level %u (at most %u, or root)",
					  f->tree.level, SL_TREE_LEVEL_MAX);
		return 0;
	case SL_FRAME_REPAIR_REQ:
		if (f->rreq.len == 0 || f->rreq.len > SL_FRAME_BATCH_MAX)
			return sl_err_set(EBADMSG, "frame REPAIR_REQ: len %u (1..%llu)",
					  f->rreq.len, (unsigned long long)SL_FRAME_BATCH_MAX);
		return 0;
	case SL_FRAME_NAK:
		if (f->nak.from_pos >= f->nak.to_pos)
			return sl_err_set(EBADMSG, "frame NAK: from_pos %llu not below to_pos %llu",
					  (unsigned long long)f->nak.from_pos,
					  (unsigned long long)f->nak.to_pos);
		return 0;
	case SL_FRAME_VOTE_REQ:
		if (f->vreq.flags & ~SL_VOTE_F_KNOWN)
			return sl_err_set(EBADMSG,
					  "frame VOTE_REQ: unknown flags 0x%x (known 0x%x)",
					  f->vreq.flags, SL_VOTE_F_KNOWN);
		return 0;
	case SL_FRAME_VOTE:
		if (f->vote.granted > 1)
			return sl_err_set(EBADMSG, "frame VOTE: granted %u, must be 0 or 1",
					  f->vote.granted);
		if (f->vote.flags & ~SL_VOTE_F_PRE)
			return sl_err_set(EBADMSG, "frame VOTE: flags 0x%x (known 0x%x)",
					  f->vote.flags, SL_VOTE_F_PRE);
		return 0;
	case SL_FRAME_EPOCH_END:
		if (f->eend.end_lsn == 0)
			return sl_err_set(EBADMSG, "frame EPOCH_END: end_lsn 0 (LSNs start at 1)");
		return 0;
	default:
		return 0;
	}
}

/* Reserved u32 fields (VOTE_REQ, EPOCH_END, TREE_REQ, REPAIR_REQ) must be zero, so every
 * accepted frame re-encodes to the same bytes. `b` is the body. */
static int check_reserved(const uint8_t *b, const struct sl_frame_hdr *h)
{
	size_t off;

	switch (h->type) {
	case SL_FRAME_VOTE_REQ:
		off = 28;
		break;
	case SL_FRAME_EPOCH_END:
		off = 28;
		break;
	case SL_FRAME_TREE_REQ:
		off = 20;
		break;
	case SL_FRAME_REPAIR_REQ:
		off = 12;
		break;
	default:
		return 0;
	}
	if (sl_le32_get(b + off) != 0)
		return sl_err_set(EBADMSG, "frame %s: reserved field at body offset %zu is 0x%08x",
				  sl_frame_type_name(h->type), off, sl_le32_get(b + off));
	return 0;
}

/* Body bytes that follow the header in every frame of the type: the whole
 * body, or DATA's sub-header (its fragment comes after). */
static uint32_t fixed_len(uint8_t type, uint32_t body_len)
{
	return has_frag(type) ? SL_FRAME_DATA_SUB : body_len;
}

/* The frame CRC: CRC32C over the fragment (DATA; frag_crc is its CRC, 0
 * without one), continued over the header, whose crc field counts as zero,
 * and the fixed body. Fragment first, so a fragment's CRC is computed once
 * and continued over the header of every frame that carries it. */
static uint32_t frame_crc(uint32_t frag_crc, const uint8_t *head, uint32_t fixed)
{
	static const uint8_t zero[4];
	uint32_t c = sl_crc32c(frag_crc, head, OFF_CRC);

	c = sl_crc32c(c, zero, sizeof(zero));
	return sl_crc32c(c, head + SL_FRAME_HDR, fixed);
}

/* ---- encode ---- */

static void put_hdr(uint8_t *out, const struct sl_frame_hdr *h, uint32_t body_len)
{
	sl_le32_put(out + OFF_MAGIC, SL_FRAME_MAGIC);
	out[OFF_VERSION] = SL_FRAME_VERSION;
	out[OFF_TYPE] = h->type;
	sl_le16_put(out + OFF_FLAGS, h->flags);
	memcpy(out + OFF_CLUSTER, h->cluster_id, sizeof(h->cluster_id));
	sl_le64_put(out + OFF_STREAM, h->stream_id);
	sl_le64_put(out + OFF_EPOCH, h->epoch);
	sl_le32_put(out + OFF_SENDER, h->sender);
	sl_le32_put(out + OFF_RECEIVER, h->receiver);
	sl_le64_put(out + OFF_SEQ, h->seq);
	sl_le32_put(out + OFF_BODY_LEN, body_len);
	sl_le32_put(out + OFF_CRC, 0); /* the CRC is computed with this zeroed */
}

static void put_data_sub(uint8_t *b, const struct sl_frame_data *d)
{
	sl_le64_put(b + OFF_D_BATCH_POS, d->batch_pos);
	sl_le32_put(b + OFF_D_BATCH_LEN, d->batch_len);
	sl_le32_put(b + OFF_D_FRAG_OFF, d->frag_off);
	sl_le64_put(b + OFF_D_COMMIT, d->commit_pos);
	sl_le64_put(b + OFF_D_LEADER_END, d->leader_end);
}

static void put_status(uint8_t *b, const struct sl_frame_status *s)
{
	const uint64_t v[] = {
	    s->received_pos,	s->durable_pos,	    s->applied_pos,
	    s->window_end,	s->applied_lsn,	    s->echo_received_ts,
	    s->echo_durable_ts, s->echo_applied_ts, s->status_ts,
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		sl_le64_put(b + 8 * i, v[i]);
}

/* TREE_REQ, TREE, REPAIR_REQ; reserved fields written as zero. */
static void put_entropy_body(uint8_t *b, const struct sl_frame *f)
{
	switch (f->hdr.type) {
	case SL_FRAME_TREE_REQ:
		sl_le64_put(b, f->treq.leaves);
		sl_le64_put(b + 8, f->treq.base_pos);
		sl_le32_put(b + 16, f->treq.level);
		sl_le32_put(b + 20, 0);
		sl_le64_put(b + 24, f->treq.index);
		break;
	case SL_FRAME_TREE:
		sl_le64_put(b, f->tree.leaves);
		sl_le64_put(b + 8, f->tree.base_pos);
		sl_le32_put(b + 16, f->tree.level);
		sl_le32_put(b + 20, f->tree.status);
		sl_le64_put(b + 24, f->tree.index);
		sl_le64_put(b + 32, f->tree.hash);
		sl_le64_put(b + 40, f->tree.sealed);
		break;
	case SL_FRAME_REPAIR_REQ:
		sl_le64_put(b, f->rreq.pos);
		sl_le32_put(b + 8, f->rreq.len);
		sl_le32_put(b + 12, 0);
		break;
	}
}

/* VOTE_REQ, VOTE, EPOCH_REQ, EPOCH_END; reserved fields written as zero. */
static void put_election_body(uint8_t *b, const struct sl_frame *f)
{
	switch (f->hdr.type) {
	case SL_FRAME_VOTE_REQ:
		sl_le64_put(b, f->vreq.last_epoch);
		sl_le64_put(b + 8, f->vreq.last_pos);
		sl_le64_put(b + 16, f->vreq.last_lsn);
		sl_le32_put(b + 24, f->vreq.flags);
		sl_le32_put(b + 28, 0);
		break;
	case SL_FRAME_VOTE:
		sl_le32_put(b, f->vote.granted);
		sl_le32_put(b + 4, f->vote.flags);
		sl_le64_put(b + 8, f->vote.last_epoch);
		sl_le64_put(b + 16, f->vote.last_pos);
		break;
	case SL_FRAME_EPOCH_REQ:
		sl_le64_put(b, f->ereq.epoch);
		sl_le64_put(b + 8, f->ereq.log_end);
		break;
	case SL_FRAME_EPOCH_END:
		sl_le64_put(b, f->eend.epoch);
		sl_le64_put(b + 8, f->eend.end_pos);
		sl_le64_put(b + 16, f->eend.end_lsn);
		sl_le32_put(b + 24, f->eend.end_crc);
		sl_le32_put(b + 28, 0);
		break;
	case SL_FRAME_ELECT_NOW:
		sl_le64_put(b, f->enow.log_end);
		sl_le64_put(b + 8, f->enow.commit_pos);
		break;
	default:
		put_entropy_body(b, f);
		break;
	}
}

static void put_body(uint8_t *b, const struct sl_frame *f)
{
	switch (f->hdr.type) {
	case SL_FRAME_DATA:
	case SL_FRAME_REPAIR:
		put_data_sub(b, &f->data);
		memcpy(b + SL_FRAME_DATA_SUB, f->data.frag, f->data.frag_len);
		break;
	case SL_FRAME_STATUS:
		put_status(b, &f->status);
		break;
	case SL_FRAME_NAK:
		sl_le64_put(b, f->nak.from_pos);
		sl_le64_put(b + 8, f->nak.to_pos);
		break;
	case SL_FRAME_HEARTBEAT:
		sl_le64_put(b, f->hb.leader_end);
		sl_le64_put(b + 8, f->hb.commit_pos);
		sl_le64_put(b + 16, f->hb.leader_ts);
		break;
	default:
		put_election_body(b, f);
		break;
	}
}

/* Validate `f` for encoding and compute its body_len. */
static int check_encode(const struct sl_frame *f, uint32_t *body_len)
{
	struct sl_frame_hdr h = f->hdr;
	int rc;

	if (!type_known(h.type))
		return sl_err_set(EINVAL, "encoding frame: unknown type %u", h.type);
	if (has_frag(h.type)) {
		if (f->data.frag_len > 0 && f->data.frag == NULL)
			return sl_err_set(EINVAL, "encoding frame %s: frag is NULL, frag_len %u",
					  sl_frame_type_name(h.type), f->data.frag_len);
		/* Saturate rather than wrap so check_hdr sees an oversized fragment. */
		h.body_len = f->data.frag_len > UINT32_MAX - SL_FRAME_DATA_SUB
				 ? UINT32_MAX
				 : SL_FRAME_DATA_SUB + f->data.frag_len;
	} else {
		h.body_len = fixed_body_len(h.type);
	}
	rc = check_hdr(&h);
	if (rc == 0)
		rc = check_body(f);
	if (rc < 0)
		return sl_err_wrap(-EINVAL, "encoding frame");
	*body_len = h.body_len;
	return 0;
}

static int check_cap(const struct sl_frame *f, size_t need, size_t cap)
{
	if (cap < need)
		return sl_err_set(ENOSPC, "encoding frame %s: needs %zu bytes, buffer holds %zu",
				  sl_frame_type_name(f->hdr.type), need, cap);
	return 0;
}

int sl_frame_encode(const struct sl_frame *f, uint8_t *out, size_t cap)
{
	uint32_t body_len;
	size_t covered, total;
	int rc;

	rc = check_encode(f, &body_len);
	if (rc < 0)
		return rc;
	covered = SL_FRAME_HDR + (size_t)body_len;
	total = covered + mac_len(f->hdr.flags);
	rc = check_cap(f, total, cap);
	if (rc < 0)
		return rc;
	put_hdr(out, &f->hdr, body_len);
	put_body(out + SL_FRAME_HDR, f);
	memset(out + covered, 0, total - covered); /* the MAC slot, if any */
	sl_le32_put(out + OFF_CRC,
		    frame_crc(has_frag(f->hdr.type)
				  ? sl_crc32c(0, out + SL_FRAME_DATA_PREFIX, f->data.frag_len)
				  : 0,
			      out, fixed_len(f->hdr.type, body_len)));
	return (int)total;
}

int sl_frame_encode_prefix_crc(const struct sl_frame *f, uint32_t frag_crc, uint8_t *out,
			       size_t cap)
{
	uint32_t body_len;
	int rc;

	if (!has_frag(f->hdr.type))
		return sl_err_set(
		    EINVAL, "encoding frame prefix: type %s (%u), only DATA and REPAIR have one",
		    sl_frame_type_name(f->hdr.type), f->hdr.type);
	rc = check_encode(f, &body_len);
	if (rc < 0)
		return rc;
	rc = check_cap(f, SL_FRAME_DATA_PREFIX, cap);
	if (rc < 0)
		return rc;
	put_hdr(out, &f->hdr, body_len);
	put_data_sub(out + SL_FRAME_HDR, &f->data);
	sl_le32_put(out + OFF_CRC, frame_crc(frag_crc, out, SL_FRAME_DATA_SUB));
	return SL_FRAME_DATA_PREFIX;
}

int sl_frame_encode_prefix(const struct sl_frame *f, uint8_t *out, size_t cap)
{
	uint32_t crc = 0;

	if (has_frag(f->hdr.type) && f->data.frag)
		crc = sl_crc32c(0, f->data.frag, f->data.frag_len);
	return sl_frame_encode_prefix_crc(f, crc, out, cap);
}

/* ---- decode ---- */

/* Magic and version, then the fields into h (unchecked). */
static int parse_hdr(const uint8_t *buf, struct sl_frame_hdr *h)
{
	uint32_t magic = sl_le32_get(buf + OFF_MAGIC);

	if (magic != SL_FRAME_MAGIC)
		return sl_err_set(EBADMSG, "frame: bad magic 0x%08x (want 0x%08x)", magic,
				  SL_FRAME_MAGIC);
	if (buf[OFF_VERSION] != SL_FRAME_VERSION)
		return sl_err_set(EPROTO, "frame: version %u, this node speaks %u",
				  buf[OFF_VERSION], SL_FRAME_VERSION);
	h->type = buf[OFF_TYPE];
	h->flags = sl_le16_get(buf + OFF_FLAGS);
	memcpy(h->cluster_id, buf + OFF_CLUSTER, sizeof(h->cluster_id));
	h->stream_id = sl_le64_get(buf + OFF_STREAM);
	h->epoch = sl_le64_get(buf + OFF_EPOCH);
	h->sender = sl_le32_get(buf + OFF_SENDER);
	h->receiver = sl_le32_get(buf + OFF_RECEIVER);
	h->seq = sl_le64_get(buf + OFF_SEQ);
	h->body_len = sl_le32_get(buf + OFF_BODY_LEN);
	return 0;
}

static void get_status(const uint8_t *b, struct sl_frame_status *s)
{
	uint64_t *const v[] = {
	    &s->received_pos,	 &s->durable_pos,     &s->applied_pos,
	    &s->window_end,	 &s->applied_lsn,     &s->echo_received_ts,
	    &s->echo_durable_ts, &s->echo_applied_ts, &s->status_ts,
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		*v[i] = sl_le64_get(b + 8 * i);
}

static void parse_election_body(const uint8_t *b, struct sl_frame *f)
{
	switch (f->hdr.type) {
	case SL_FRAME_VOTE_REQ:
		f->vreq.last_epoch = sl_le64_get(b);
		f->vreq.last_pos = sl_le64_get(b + 8);
		f->vreq.last_lsn = sl_le64_get(b + 16);
		f->vreq.flags = sl_le32_get(b + 24);
		break;
	case SL_FRAME_VOTE:
		f->vote.granted = sl_le32_get(b);
		f->vote.flags = sl_le32_get(b + 4);
		f->vote.last_epoch = sl_le64_get(b + 8);
		f->vote.last_pos = sl_le64_get(b + 16);
		break;
	case SL_FRAME_EPOCH_REQ:
		f->ereq.epoch = sl_le64_get(b);
		f->ereq.log_end = sl_le64_get(b + 8);
		break;
	case SL_FRAME_EPOCH_END:
		f->eend.epoch = sl_le64_get(b);
		f->eend.end_pos = sl_le64_get(b + 8);
		f->eend.end_lsn = sl_le64_get(b + 16);
		f->eend.end_crc = sl_le32_get(b + 24);
		break;
	case SL_FRAME_ELECT_NOW:
		f->enow.log_end = sl_le64_get(b);
		f->enow.commit_pos = sl_le64_get(b + 8);
		break;
	case SL_FRAME_TREE_REQ:
		f->treq.leaves = sl_le64_get(b);
		f->treq.base_pos = sl_le64_get(b + 8);
		f->treq.level = sl_le32_get(b + 16);
		f->treq.index = sl_le64_get(b + 24);
		break;
	case SL_FRAME_TREE:
		f->tree.leaves = sl_le64_get(b);
		f->tree.base_pos = sl_le64_get(b + 8);
		f->tree.level = sl_le32_get(b + 16);
		f->tree.status = sl_le32_get(b + 20);
		f->tree.index = sl_le64_get(b + 24);
		f->tree.hash = sl_le64_get(b + 32);
		f->tree.sealed = sl_le64_get(b + 40);
		break;
	case SL_FRAME_REPAIR_REQ:
		f->rreq.pos = sl_le64_get(b);
		f->rreq.len = sl_le32_get(b + 8);
		break;
	}
}

/* The body's fields into f: the fixed part from b, DATA's fragment at frag;
 * lengths already checked against hdr.body_len. */
static void parse_body(const uint8_t *b, const uint8_t *frag, struct sl_frame *f)
{
	switch (f->hdr.type) {
	case SL_FRAME_DATA:
	case SL_FRAME_REPAIR:
		f->data.batch_pos = sl_le64_get(b + OFF_D_BATCH_POS);
		f->data.batch_len = sl_le32_get(b + OFF_D_BATCH_LEN);
		f->data.frag_off = sl_le32_get(b + OFF_D_FRAG_OFF);
		f->data.commit_pos = sl_le64_get(b + OFF_D_COMMIT);
		f->data.leader_end = sl_le64_get(b + OFF_D_LEADER_END);
		f->data.frag = frag;
		f->data.frag_len = f->hdr.body_len - SL_FRAME_DATA_SUB;
		break;
	case SL_FRAME_STATUS:
		get_status(b, &f->status);
		break;
	case SL_FRAME_NAK:
		f->nak.from_pos = sl_le64_get(b);
		f->nak.to_pos = sl_le64_get(b + 8);
		break;
	case SL_FRAME_HEARTBEAT:
		f->hb.leader_end = sl_le64_get(b);
		f->hb.commit_pos = sl_le64_get(b + 8);
		f->hb.leader_ts = sl_le64_get(b + 16);
		break;
	default:
		parse_election_body(b, f);
		break;
	}
}

/* A DATA fragment's CRC: read where it lies, or copied while read to where
 * `place` says it goes (one pass over its bytes), frag then pointing there. */
static uint32_t fragment_crc(struct sl_frame_data *d, const struct sl_frame *f,
			     const struct sl_frame_place *place)
{
	uint8_t *dst = place ? place->dest(place->ctx, f) : NULL;

	if (!dst || dst == d->frag)
		return sl_crc32c(0, d->frag, d->frag_len);
	d->frag = dst;
	return sl_crc32c_copy(0, dst, f->data.frag, d->frag_len);
}

static int check_crc(const uint8_t *head, struct sl_frame *f, const struct sl_frame_place *place)
{
	const struct sl_frame_hdr *h = &f->hdr;
	uint32_t want = sl_le32_get(head + OFF_CRC), frag_crc = 0, got;

	if (has_frag(h->type)) {
		struct sl_frame_data d = f->data;

		frag_crc = fragment_crc(&d, f, place);
		f->data = d;
		f->data.frag_crc = frag_crc;
	}
	got = frame_crc(frag_crc, head, fixed_len(h->type, h->body_len));
	if (got != want)
		return sl_err_set(EBADMSG, "frame %s: CRC 0x%08x, computed 0x%08x (seq %llu)",
				  sl_frame_type_name(h->type), want, got,
				  (unsigned long long)h->seq);
	return 0;
}

/* A frame as head || tail: tail is empty, or it starts at a DATA fragment
 * and head is exactly the DATA prefix. */
static int decode(const uint8_t *head, size_t head_len, const uint8_t *tail, size_t tail_len,
		  const struct sl_frame_place *place, struct sl_frame *out)
{
	size_t len = head_len + tail_len, want;
	struct sl_frame f;
	int rc;

	if (len < SL_FRAME_HDR)
		return sl_err_set(EBADMSG, "frame: %zu bytes, shorter than the %u-byte header", len,
				  SL_FRAME_HDR);
	if (tail_len > 0 && head_len < SL_FRAME_HDR)
		return sl_err_set(EINVAL,
				  "frame in two parts: the first holds %zu bytes of the "
				  "%u-byte header",
				  head_len, SL_FRAME_HDR);
	memset(&f, 0, sizeof(f));
	rc = parse_hdr(head, &f.hdr);
	if (rc == 0)
		rc = check_hdr(&f.hdr);
	if (rc < 0)
		return rc;
	/* check_hdr bounded body_len by SL_FRAME_MAX, so this cannot overflow. */
	want = SL_FRAME_HDR + (size_t)f.hdr.body_len + mac_len(f.hdr.flags);
	if (len != want)
		return sl_err_set(EBADMSG, "frame %s: %zu bytes arrived, header says %zu",
				  sl_frame_type_name(f.hdr.type), len, want);
	if (tail_len > 0 && (!has_frag(f.hdr.type) || head_len != SL_FRAME_DATA_PREFIX))
		return sl_err_set(EINVAL,
				  "frame %s in two parts: the first must be the %u-byte DATA "
				  "prefix, not %zu bytes",
				  sl_frame_type_name(f.hdr.type), SL_FRAME_DATA_PREFIX, head_len);
	parse_body(head + SL_FRAME_HDR,
		   !has_frag(f.hdr.type) ? NULL
		   : tail_len > 0	 ? tail
					 : head + SL_FRAME_DATA_PREFIX,
		   &f);
	rc = check_body(&f);
	if (rc == 0)
		rc = check_reserved(head + SL_FRAME_HDR, &f.hdr);
	if (rc == 0)
		rc = check_crc(head, &f, place);
	if (rc < 0)
		return rc;
	*out = f;
	return 0;
}

int sl_frame_decode(const uint8_t *buf, size_t len, struct sl_frame *f)
{
	return decode(buf, len, NULL, 0, NULL, f);
}

int sl_frame_decode_parts(const uint8_t *head, size_t head_len, const uint8_t *tail,
			  size_t tail_len, struct sl_frame *f)
{
	return decode(head, head_len, tail, tail_len, NULL, f);
}

int sl_frame_decode_place(const uint8_t *head, size_t head_len, const uint8_t *tail,
			  size_t tail_len, const struct sl_frame_place *place, struct sl_frame *f)
{
	return decode(head, head_len, tail, tail_len, place, f);
}

void sl_frame_mac_region(const uint8_t *buf, size_t len, size_t *covered)
{
	size_t body_len;

	*covered = 0;
	if (len < SL_FRAME_HDR || !(sl_le16_get(buf + OFF_FLAGS) & SL_FRAME_F_MAC))
		return;
	body_len = sl_le32_get(buf + OFF_BODY_LEN);
	/* Compare without adding to the untrusted body_len, so nothing can wrap. */
	if (body_len > len - SL_FRAME_HDR || len - SL_FRAME_HDR - body_len < SL_FRAME_MAC_LEN)
		return;
	*covered = SL_FRAME_HDR + body_len;
}
