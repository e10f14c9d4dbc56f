/* Read-only access to a log directory for tools (shipctl tail and verify):
 * its batches walked in log order from any LSN, each checked as it is read
 * (header and payload CRC, the chain), also while a shipd appends to it; and
 * the recovery rule shipd applies on open, run without changing anything.
 * Nothing here writes, cuts or removes a file. */
#ifndef SHIPLOG_LOGREAD_H
#define SHIPLOG_LOGREAD_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/batch.h"

#define SL_LOGREAD_NAME_MAX 32 /* a segment file name and its NUL */

struct sl_logread;

struct sl_logread_batch {
	struct sl_batch_hdr h;
	const uint8_t *bytes; /* header and payload; valid until the next call */
	size_t len;
	const char *segment; /* the segment file's name */
	uint64_t offset;     /* the batch's offset in that file */
};

/* Open `dir` (which must hold at least one segment) and read its oldest
 * segment's header: the log's cluster, stream and node. 0 or -errno with a
 * message naming the directory. Reading starts at the oldest batch. */
int sl_logread_open(struct sl_logread **out, const char *dir);
void sl_logread_close(struct sl_logread *r);

/* The oldest LSN held (the oldest segment's base), and the identity. */
uint64_t sl_logread_first_lsn(const struct sl_logread *r);
void sl_logread_identity(const struct sl_logread *r, uint8_t cluster_id[16], uint64_t *stream_id,
			 uint32_t *node_id);

/* Read next from the batch that holds `lsn` (or the first batch after it):
 * batches wholly before it are skipped. -ERANGE when `lsn` precedes the
 * oldest segment (retention dropped it). */
int sl_logread_seek(struct sl_logread *r, uint64_t lsn);

/* 1 and the next batch; 0 at the end of what is written now (a later call
 * continues once the log has grown); -EBADMSG where the log is invalid, with
 * a message naming segment and offset (sl_logread_where says them too). An
 * invalid point may be a write still in flight: a reader following a live
 * log retries before it calls it corruption. */
int sl_logread_next(struct sl_logread *r, struct sl_logread_batch *b);

/* Where the reader is: the segment file and the offset of the next group or
 * batch it reads (after -EBADMSG: the invalid one). */
const char *sl_logread_where(const struct sl_logread *r, uint64_t *offset);

/* What the recovery rule finds in `dir` (docs/disk-format.md), read-only.
 * On -EBADMSG (corruption: shipd refuses to open the log) stop_* says where
 * and why when the scan found it; other errors name the file. */
struct sl_logread_check {
	uint32_t segments;
	uint64_t first_lsn;	/* oldest LSN held */
	uint64_t next_lsn;	/* the LSN after the last valid batch */
	uint64_t next_position; /* the position after the last valid batch */
	uint64_t last_epoch;	/* the epoch of the last valid batch */
	uint64_t torn_bytes;	/* bytes of a torn tail, which shipd cuts on open */
	int unborn;		/* 1: a last segment whose creation never completed */
	char stop_segment[SL_LOGREAD_NAME_MAX]; /* where the valid log stops, */
	uint64_t stop_offset;			/* its file offset, */
	char stop_why[160];			/* and why ("end of log") */
};
int sl_logread_check(const char *dir, struct sl_logread_check *out);

#endif
