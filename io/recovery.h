/* Recovery: list and check the segments of a log directory, verify every
 * group and batch (header CRC, payload CRC, chain), tell a torn tail (cut it,
 * durably) from corruption (refuse, change nothing, or keep a batch whose
 * payload alone is bad as a hole for a peer to repair), rebuild the sparse
 * index and return where appending continues. The rule is in docs/disk-format.md. */
#ifndef SHIPLOG_IO_RECOVERY_H
#define SHIPLOG_IO_RECOVERY_H

#include <stdint.h>

#include "index.h"
#include "segment.h"
#include "shiplog/batch.h"
#include "shiplog/merkle.h"
#include "shiplog/epoch.h"

struct sl_recover_in {
	int dirfd;
	const char *dir;
	const uint8_t *cluster_id; /* 16 bytes; NULL: adopt the first segment's
				    * cluster, stream and node (readers of a log
				    * they did not write, such as shipctl) */
	uint64_t stream_id;
	uint32_t node_id;
	const struct sl_batch_limits *lim;
	/* 1: change nothing. A torn tail is reported (torn_bytes, stop_*), not
	 * cut; an unborn last segment is left out of segs, not removed. */
	int readonly;
	/* Optional: the Merkle tree gets a leaf per valid batch, and
	 * leaf_pos (its capacity, m->cap) the batch's position. */
	struct sl_merkle *tree;
	uint64_t *leaf_pos;
	/* 1: a batch of a sealed segment (not the last) whose header verifies
	 * and chains but whose payload does not is kept as a hole (out->holes)
	 * when valid batches follow it, for the caller to repair from a peer;
	 * past the last valid batch it is a torn tail as before. 0: refused as
	 * corruption, as any other invalid point a later group vouches for. */
	int holes;
};

/* A corrupt batch kept by recovery (in->holes): its header is intact. */
#define SL_RECOVER_HOLES_MAX 16
struct sl_recover_hole {
	uint64_t position, base_lsn, offset;
	uint32_t len, hdr_crc, records;
	char segment[SL_SEG_NAME_MAX];
	char why[160];
};

struct sl_recover_out {
	struct sl_seg **segs; /* sorted by base LSN; malloc'd array of malloc'd segs */
	uint32_t nsegs;	      /* 0: the directory holds no segment yet */
	uint64_t next_lsn, next_position, last_epoch, next_seq;
	uint32_t last_crc;
	uint64_t torn_bytes;
	/* Where the valid log stops: the segment, the file offset and why
	 * ("end of log" when nothing follows). Set on success, and on -EBADMSG
	 * for corruption found by the scan (stop_why then says what is wrong). */
	char stop_segment[SL_SEG_NAME_MAX];
	uint64_t stop_offset;
	char stop_why[160];
	uint8_t cluster_id[16]; /* the log's identity (adopted or as given) */
	uint64_t stream_id;
	uint32_t node_id;
	uint32_t unborn;	    /* readonly: 1 when an unborn last segment was left out */
	struct sl_epoch_map epochs; /* where each epoch of the recovered log starts */
	struct sl_recover_hole holes[SL_RECOVER_HOLES_MAX]; /* in->holes */
	uint32_t nholes;
};

/* 0, or -errno with a message naming the file (and offset for corruption:
 * -EBADMSG). Segments come back with fd -1 and `end` set. */
int sl_recover(const struct sl_recover_in *in, struct sl_index *idx, struct sl_recover_out *out);
void sl_recover_free(struct sl_recover_out *out);

#endif
