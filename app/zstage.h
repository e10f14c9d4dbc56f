/* The compressor stage: a leader node's full batches are LZ4-compressed
 * (sl_batch_encode) on a thread of their own while the node's loop goes on,
 * in order, through a bounded ring of slots. The loop thread fills a slot's
 * raw buffer, submits it, and later takes the encoded payloads back oldest
 * first; an eventfd says one is ready. */
#ifndef SHIPLOG_APP_ZSTAGE_H
#define SHIPLOG_APP_ZSTAGE_H

#include <stddef.h>
#include <stdint.h>

#include "shiplog/batch.h"

struct sl_zstage;

/* An encoded slot: the header's payload fields (flags, record_count, raw_len,
 * stored_len, payload_crc) and the payload. */
struct sl_zstage_out {
	struct sl_batch_hdr h;
	const uint8_t *payload;
};

/* `slots` (2..64) of `raw_cap` raw bytes each, and the thread, which
 * compresses at LZ4 acceleration `accel`. 0 or -errno. */
int sl_zstage_open(struct sl_zstage **out, uint32_t slots, size_t raw_cap, int accel);
/* Stops the thread and frees everything (NULL: nothing). */
void sl_zstage_close(struct sl_zstage *z);

/* Loop thread. The raw buffer of the slot to fill next (`raw_cap` bytes),
 * NULL while every slot is submitted or not yet taken back. */
uint8_t *sl_zstage_slot(struct sl_zstage *z);
/* Hand that slot to the thread: `count` records, `raw_len` bytes. */
void sl_zstage_submit(struct sl_zstage *z, size_t raw_len, uint32_t count);
/* The oldest submitted slot once it is encoded, else NULL; then pop it. */
const struct sl_zstage_out *sl_zstage_peek(struct sl_zstage *z);
void sl_zstage_pop(struct sl_zstage *z);
/* Slots submitted and not yet popped. */
uint32_t sl_zstage_pending(const struct sl_zstage *z);
/* Before sleeping on sl_zstage_wait_fd: 1 when an encoded slot already
 * waits (do not sleep), 0 when the fd will become readable once one does
 * (then call sl_zstage_disarm after the sleep). The thread writes the fd
 * only for an armed sleeper: a loop that is awake costs it no system call. */
int sl_zstage_arm(struct sl_zstage *z);
void sl_zstage_disarm(struct sl_zstage *z);
int sl_zstage_wait_fd(const struct sl_zstage *z);
/* The loop, instead of sleeping while batches wait: encode the next one
 * still waiting for the thread itself. 1 if it did, 0 if none waited. */
int sl_zstage_help(struct sl_zstage *z);
/* Discard every slot submitted and not yet popped (their records will not
 * be appended: the leadership was lost). Slots no one is encoding yet are
 * dropped unencoded; a slot the thread is encoding is waited for. */
void sl_zstage_drop(struct sl_zstage *z);
/* Batches encoded so far. */
uint64_t sl_zstage_encoded(const struct sl_zstage *z);

#endif
