/* Recovery: list and check the segments of a log directory, verify every
 * group and batch (header CRC, payload CRC, chain), tell a torn tail (cut it,
 * durably) from corruption (refuse, change nothing), rebuild the sparse index
 * and return where appending continues. The rule is in docs/disk-format.md. */
#ifndef SHIPLOG_IO_RECOVERY_H
#define SHIPLOG_IO_RECOVERY_H

#include <stdint.h>

#include "index.h"
#include "segment.h"
#include "shiplog/batch.h"

struct sl_recover_in {
	int dirfd;
	const char *dir;
	const uint8_t *cluster_id; /* 16 bytes */
	uint64_t stream_id;
	uint32_t node_id;
	const struct sl_batch_limits *lim;
};

struct sl_recover_out {
	struct sl_seg **segs; /* sorted by base LSN; malloc'd array of malloc'd segs */
	uint32_t nsegs;	      /* 0: the directory holds no segment yet */
	uint64_t next_lsn, next_position, last_epoch, next_seq;
	uint32_t last_crc;
	uint64_t torn_bytes;
};

/* 0, or -errno with a message naming the file (and offset for corruption:
 * -EBADMSG). Segments come back with fd -1 and `end` set. */
int sl_recover(const struct sl_recover_in *in, struct sl_index *idx, struct sl_recover_out *out);
void sl_recover_free(struct sl_recover_out *out);

#endif
