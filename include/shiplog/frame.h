/* Protocol frames: the messages replicas exchange (DATA, STATUS, NAK,
 * HEARTBEAT; VOTE_REQ, VOTE and ELECT_NOW for elections; EPOCH_REQ and
 * EPOCH_END for divergence repair after a failover; TREE_REQ, TREE,
 * REPAIR_REQ and REPAIR for anti-entropy). Fixed little-endian
 * layouts, a CRC32C over every frame and room for a keyed MAC. Encoding and
 * bounds-checked decoding only; pure code. */
#ifndef SHIPLOG_FRAME_H
#define SHIPLOG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/batch.h"

#define SL_FRAME_MAGIC	 0x31464c53u /* "SLF1" little-endian */
#define SL_FRAME_VERSION 2	     /* 2: DATA CRC covers the fragment first */
#define SL_FRAME_HDR	 64	     /* common header */
#define SL_FRAME_MAC_LEN 16	     /* trailer when SL_FRAME_F_MAC is set */
#define SL_FRAME_F_MAC	 0x0001u
#define SL_FRAME_F_KNOWN (SL_FRAME_F_MAC) /* any other flag bit: -EPROTO */
#define SL_FRAME_MAX	 9216		  /* largest frame we ever build or accept */

/* IPv4 + UDP header bytes (20 + 8). The MTU excludes the Ethernet header,
 * so a frame fits in MTU - SL_FRAME_IP_UDP. */
#define SL_FRAME_IP_UDP 28

enum sl_frame_type {
	SL_FRAME_DATA = 1,
	SL_FRAME_STATUS = 2,
	SL_FRAME_NAK = 3,
	SL_FRAME_HEARTBEAT = 4,
	SL_FRAME_VOTE_REQ = 5,	  /* a candidate asks for a vote in the header's epoch */
	SL_FRAME_VOTE = 6,	  /* the answer, in the epoch asked for */
	SL_FRAME_EPOCH_REQ = 7,	  /* a follower asks where an epoch ends in the leader's log */
	SL_FRAME_EPOCH_END = 8,	  /* the leader's answer */
	SL_FRAME_ELECT_NOW = 9,	  /* the leader hands over: stand at once */
	SL_FRAME_TREE_REQ = 10,	  /* anti-entropy: your Merkle root, or a subtree's hash */
	SL_FRAME_TREE = 11,	  /* the answer */
	SL_FRAME_REPAIR_REQ = 12, /* send me the batch at this position */
	SL_FRAME_REPAIR = 13,	  /* a fragment of it (DATA's layout) */
};

/* TREE_REQ / TREE: `level` is a subtree's level (leaves are level 0), or
 * SL_TREE_ROOT for the root over the first `leaves` leaves. TREE status. */
#define SL_TREE_ROOT	  0xffffffffu
#define SL_TREE_LEVEL_MAX 31
#define SL_TREE_OK	  0 /* hash is there */
#define SL_TREE_SHORT	  1 /* the answerer holds fewer sealed leaves (see `sealed`) */
#define SL_TREE_BASE	  2 /* its tree starts at another position (base_pos) */

/* VOTE_REQ and VOTE flags. TRANSFER: the leader hands over, so voters need
 * not have lost their leader to grant it. PRE: a pre-vote ("would you vote
 * for me?"), which changes no state and is answered at any epoch. */
#define SL_VOTE_F_TRANSFER 0x1u
#define SL_VOTE_F_PRE	   0x2u
#define SL_VOTE_F_KNOWN	   (SL_VOTE_F_TRANSFER | SL_VOTE_F_PRE)

/*
 * Common header (64 bytes, little-endian):
 *   0 magic u32 | 4 version u8 | 5 type u8 | 6 flags u16 | 8 cluster_id[16]
 *  24 stream_id u64 | 32 epoch u64 | 40 sender u32 | 44 receiver u32
 *  48 seq u64 | 56 body_len u32 | 60 crc u32
 * crc = CRC32C over DATA's fragment bytes (none for other types), continued
 * over the header with the crc field zeroed and the rest of the body. The
 * fragment comes first so that its CRC, computed once, serves every frame
 * that carries it (followers, retransmissions). The MAC trailer, when
 * present, covers the frame as it lies on the wire.
 * The body follows; its layout depends on the type:
 *   DATA      (32 + fragment): batch_pos u64 | batch_len u32 | frag_off u32 |
 *             commit_pos u64 | leader_end u64 | fragment bytes...
 *   STATUS    (72): received_pos u64 | durable_pos u64 | applied_pos u64 |
 *             window_end u64 | applied_lsn u64 | echo_received_ts u64 |
 *             echo_durable_ts u64 | echo_applied_ts u64 | status_ts u64
 *   NAK       (16): from_pos u64 | to_pos u64 (half-open range missing)
 *   HEARTBEAT (24): leader_end u64 | commit_pos u64 | leader_ts u64
 *   VOTE_REQ  (32): last_epoch u64 | last_pos u64 | last_lsn u64 | flags u32 |
 *             reserved u32 (zero)
 *   VOTE      (24): granted u32 (0 or 1) | flags u32 (PRE only) | last_epoch u64 |
 *             last_pos u64
 *   EPOCH_REQ (16): epoch u64 | log_end u64
 *   EPOCH_END (32): epoch u64 | end_pos u64 | end_lsn u64 (>= 1) | end_crc u32 |
 *             reserved u32 (zero)
 *   ELECT_NOW (16): log_end u64 | commit_pos u64 (the leader's, informational)
 *   TREE_REQ  (32): leaves u64 | base_pos u64 | level u32 | reserved u32 (zero) |
 *             index u64
 *   TREE      (48): leaves u64 | base_pos u64 | level u32 | status u32 | index u64 |
 *             hash u64 | sealed u64
 *   REPAIR_REQ (16): pos u64 | len u32 | reserved u32 (zero)
 *   REPAIR    (32 + fragment): DATA's layout (commit_pos, leader_end zero)
 */
#define SL_FRAME_DATA_SUB    32
#define SL_FRAME_STATUS_BODY 72
#define SL_FRAME_NAK_BODY    16
#define SL_FRAME_HB_BODY     24
#define SL_FRAME_VREQ_BODY   32
#define SL_FRAME_VOTE_BODY   24
#define SL_FRAME_EREQ_BODY   16
#define SL_FRAME_EEND_BODY   32
#define SL_FRAME_ENOW_BODY   16
#define SL_FRAME_TREQ_BODY   32
#define SL_FRAME_TREE_BODY   48
#define SL_FRAME_RREQ_BODY   16
/* Header + DATA sub-header: what sl_frame_encode_prefix writes. */
#define SL_FRAME_DATA_PREFIX (SL_FRAME_HDR + SL_FRAME_DATA_SUB)
/* Largest batch_len a DATA frame may announce: a batch header plus a stored
 * payload, which is never larger than the raw payload. */
#define SL_FRAME_BATCH_MAX ((uint64_t)SL_BATCH_RAW_MAX + SL_BATCH_HDR_SIZE)

struct sl_frame_hdr {
	uint8_t type;
	uint16_t flags;
	uint8_t cluster_id[16];
	uint64_t stream_id;
	uint64_t epoch;
	uint32_t sender;
	uint32_t receiver;
	uint64_t seq;
	uint32_t body_len;
};

struct sl_frame_data {
	uint64_t batch_pos;  /* position of the batch this fragment belongs to */
	uint32_t batch_len;  /* whole batch length (header + stored payload) */
	uint32_t frag_off;   /* offset of this fragment within the batch */
	uint64_t commit_pos; /* leader's commit position, piggy-backed */
	uint64_t leader_end; /* end of the leader's log, for tail-gap detection */
	const uint8_t *frag; /* decode: points into the frame; encode: source bytes */
	uint32_t frag_len;
	uint32_t frag_crc; /* decode: sl_crc32c(0, frag, frag_len), as checked */
};

struct sl_frame_status {
	uint64_t received_pos; /* contiguous complete batches received up to here */
	uint64_t durable_pos;
	uint64_t applied_pos;
	uint64_t window_end; /* the sender may send batches ending at or before this */
	uint64_t applied_lsn;
	uint64_t echo_received_ts; /* leader_ts of the batch ending at received_pos */
	uint64_t echo_durable_ts;
	uint64_t echo_applied_ts;
	uint64_t status_ts; /* follower's clock when sent (informational) */
};

struct sl_frame_nak {
	uint64_t from_pos;
	uint64_t to_pos;
};

struct sl_frame_hb {
	uint64_t leader_end;
	uint64_t commit_pos;
	uint64_t leader_ts;
};

/* A candidate's log, for the voter's up-to-date check (last epoch, then
 * last position). */
struct sl_frame_vote_req {
	uint64_t last_epoch; /* epoch of the last batch in the candidate's log */
	uint64_t last_pos;   /* end of the candidate's log */
	uint64_t last_lsn;   /* last LSN in it (informational) */
	uint32_t flags;	     /* SL_VOTE_F_* */
};

struct sl_frame_vote {
	uint32_t granted;	       /* 0 or 1 */
	uint32_t flags;		       /* SL_VOTE_F_PRE: the answer to a pre-vote */
	uint64_t last_epoch, last_pos; /* the voter's log (informational) */
};

/* Kafka's OffsetsForLeaderEpoch: where does `epoch` end in your log? */
struct sl_frame_epoch_req {
	uint64_t epoch;	  /* the last epoch in the follower's log */
	uint64_t log_end; /* the follower's log end (informational) */
};

/* The largest epoch <= the one asked for in the leader's log, and where it
 * ends there: the start of the next epoch (or the log end), with the LSN
 * that follows and the header CRC of the batch that ends there (0 at 0). */
struct sl_frame_epoch_end {
	uint64_t epoch; /* 0: the leader holds no epoch that old */
	uint64_t end_pos;
	uint64_t end_lsn;
	uint32_t end_crc;
};

/* A leader that hands over (a leadership transfer) tells the node it chose,
 * once that node holds its whole log, to stand at once. */
struct sl_frame_elect_now {
	uint64_t log_end;
	uint64_t commit_pos;
};

/* Anti-entropy: the asker compares the Merkle trees over the first `leaves`
 * batches of both logs, from the root down (docs/failover.md). */
struct sl_frame_tree_req {
	uint64_t leaves;   /* the prefix compared */
	uint64_t base_pos; /* where the asker's tree starts */
	uint32_t level;	   /* SL_TREE_ROOT, or a subtree level */
	uint64_t index;	   /* the subtree [index 2^level, (index+1) 2^level) */
};

struct sl_frame_tree {
	uint64_t leaves; /* as asked */
	uint64_t base_pos;
	uint32_t level;
	uint32_t status; /* SL_TREE_* */
	uint64_t index;
	uint64_t hash;	 /* SL_TREE_OK only */
	uint64_t sealed; /* the answerer's sealed leaves (what it can compare) */
};

/* Send me the batch at `pos`, `len` bytes long (a bad copy to repair). */
struct sl_frame_repair_req {
	uint64_t pos;
	uint32_t len;
};

/* A decoded frame; the body union member matching hdr.type is valid. */
struct sl_frame {
	struct sl_frame_hdr hdr;
	union {
		struct sl_frame_data data; /* DATA and REPAIR */
		struct sl_frame_status status;
		struct sl_frame_nak nak;
		struct sl_frame_hb hb;
		struct sl_frame_vote_req vreq;
		struct sl_frame_vote vote;
		struct sl_frame_epoch_req ereq;
		struct sl_frame_epoch_end eend;
		struct sl_frame_elect_now enow;
		struct sl_frame_tree_req treq;
		struct sl_frame_tree tree;
		struct sl_frame_repair_req rreq;
	};
};

/* Largest DATA fragment for an MTU: mtu - 28 (IPv4 + UDP) - 64 - 32, minus
 * 16 more with a MAC (e.g. 1500 -> 1376, 9000 -> 8876 bytes), capped so the
 * frame stays within SL_FRAME_MAX; 0 when the MTU is too small to carry a
 * DATA frame with at least one fragment byte. */
uint32_t sl_frame_frag_max(uint32_t mtu, int with_mac);

/* Encode `f` into out (capacity `cap`). The version is SL_FRAME_VERSION and
 * hdr.body_len is ignored: it is computed. With SL_FRAME_F_MAC in hdr.flags,
 * SL_FRAME_MAC_LEN zero bytes are reserved at the end for the transport to
 * fill (sl_frame_mac_region tells where). `f` must pass every check decode
 * makes (so DATA needs frag_len > 0 and frag_off + frag_len <= batch_len, NAK
 * needs from_pos < to_pos); encode never builds a frame decode would refuse.
 * Returns the frame length or -errno (-ENOSPC, -EINVAL). */
int sl_frame_encode(const struct sl_frame *f, uint8_t *out, size_t cap);

/* Zero-copy DATA: write only the header and the DATA sub-header
 * (SL_FRAME_DATA_PREFIX bytes) to out, with the CRC computed over them and
 * over the fragment f->data.frag, which is read but not copied. The
 * transport sends the prefix and the fragment as two segments; the result is
 * byte-identical to sl_frame_encode's. With SL_FRAME_F_MAC the transport
 * appends the SL_FRAME_MAC_LEN-byte MAC, over prefix + fragment, as a third.
 * Returns SL_FRAME_DATA_PREFIX or -errno (-ENOSPC; -EINVAL also when the
 * type is not DATA). */
int sl_frame_encode_prefix(const struct sl_frame *f, uint8_t *out, size_t cap);

/* sl_frame_encode_prefix with the fragment's CRC32C given (it must be
 * sl_crc32c(0, f->data.frag, f->data.frag_len)) instead of read from the
 * fragment: a fragment sent to several followers, or sent again, is then
 * checksummed once. The fragment bytes are not read. */
int sl_frame_encode_prefix_crc(const struct sl_frame *f, uint32_t frag_crc, uint8_t *out,
			       size_t cap);

/* Decode untrusted bytes: magic, version, type, flags, exact body length for
 * the type, total length == what arrived, DATA fragment bounds (0 < frag_len,
 * frag_off + frag_len <= batch_len <= SL_FRAME_BATCH_MAX), NAK from < to,
 * VOTE_REQ flags known, VOTE granted 0 or 1 and flags PRE at most, EPOCH_END
 * end_lsn >= 1, reserved fields zero, then the CRC. Does not check
 * cluster/epoch/receiver, nor the MAC: that is the protocol's and the
 * transport's job. DATA's frag points into buf.
 * `*f` is written only on success. Returns 0 or
 *   -EPROTO   unknown version, type or flag bits (a peer we cannot speak to)
 *   -EMSGSIZE a fragment or batch_len over its limit
 *   -EBADMSG  anything else malformed: short, bad magic, wrong lengths, CRC.
 * The error message (sl_err_msg) names the field and its values. */
int sl_frame_decode(const uint8_t *buf, size_t len, struct sl_frame *f);

/* sl_frame_decode of head || tail without joining them: a DATA frame that
 * travelled as its prefix (head, SL_FRAME_DATA_PREFIX bytes) and its
 * fragment with any MAC trailer (tail), as a gather send carries it; or a
 * whole frame in head with tail_len 0. Any other split is -EINVAL. DATA's
 * frag then points into tail. */
int sl_frame_decode_parts(const uint8_t *head, size_t head_len, const uint8_t *tail,
			  size_t tail_len, struct sl_frame *f);

/* Where a receiver wants a DATA fragment: dest() sees the frame decoded and
 * bounds-checked but not yet CRC-verified (any field may be a forgery), and
 * returns where the fragment's frag_len bytes should go, or NULL to leave
 * them where they are. */
struct sl_frame_place {
	uint8_t *(*dest)(void *ctx, const struct sl_frame *f);
	void *ctx;
};

/* sl_frame_decode_parts that copies a DATA fragment to place->dest while it
 * checks its CRC, one pass over the bytes instead of a CRC pass and a later
 * copy; frag then points at the copy (a dest equal to the fragment's address
 * is read in place). A frame that fails the CRC leaves unverified bytes at
 * the destination: dest must name only bytes nothing trusts yet. */
int sl_frame_decode_place(const uint8_t *head, size_t head_len, const uint8_t *tail,
			  size_t tail_len, const struct sl_frame_place *place, struct sl_frame *f);

/* For a frame with SL_FRAME_F_MAC: the bytes the MAC covers are [0, *covered)
 * and the MAC itself lives at buf + *covered. Read from the header's
 * body_len, so `len` may be larger than the frame (a buffer's capacity).
 * *covered is 0 when buf does not hold a whole frame header + body + MAC
 * or the frame has no MAC flag. */
void sl_frame_mac_region(const uint8_t *buf, size_t len, size_t *covered);

/* "DATA", "STATUS", "NAK", "HEARTBEAT", "VOTE_REQ", "VOTE", "EPOCH_REQ",
 * "EPOCH_END", "ELECT_NOW", "TREE_REQ", "TREE", "REPAIR_REQ", "REPAIR", or
 * "unknown". */
const char *sl_frame_type_name(uint8_t type);

#endif
