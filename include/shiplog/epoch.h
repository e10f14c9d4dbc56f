/* The epoch map of one log (Kafka's leader-epoch cache): for every epoch
 * that wrote to the log, where its first batch starts. Two logs agree up to
 * where the last epoch they share ends in both, which is how a follower
 * finds where its log leaves a new leader's (see docs/failover.md). Pure. */
#ifndef SHIPLOG_EPOCH_H
#define SHIPLOG_EPOCH_H

#include <stdint.h>

#define SL_EPOCHS_MAX 128 /* entries kept; the oldest are forgotten first */

/* The first batch of an epoch: its position, base LSN, and the header CRC of
 * the batch before it (what a log cut at `pos` chains its next batch to). */
struct sl_epoch_start {
	uint64_t epoch;
	uint64_t pos;
	uint64_t lsn;
	uint32_t prev_crc;
};

struct sl_epoch_map {
	uint32_t n;
	struct sl_epoch_start e[SL_EPOCHS_MAX];
};

/* Where an epoch ends in a log: the start of the next epoch or the log end,
 * the LSN that follows and the CRC of the batch that ends there. `epoch` is
 * the largest epoch of the log not above the one asked for, 0 when none. */
struct sl_epoch_bound {
	uint64_t epoch;
	uint64_t pos;
	uint64_t lsn;
	uint32_t crc;
};

static inline void sl_epoch_map_reset(struct sl_epoch_map *m)
{
	m->n = 0;
}

/* The epoch of the log's last batch, 0 for an empty map. */
static inline uint64_t sl_epoch_map_last(const struct sl_epoch_map *m)
{
	return m->n ? m->e[m->n - 1].epoch : 0;
}

/* A batch of `epoch` was appended at `pos` (base LSN `lsn`, chained to
 * `prev_crc`): a new entry when the epoch is new. Returns 1 added, 0 the
 * epoch already had one, -EINVAL when the epoch is lower than the last one
 * or `pos` not beyond its start. A full map forgets its oldest entry. */
int sl_epoch_map_note(struct sl_epoch_map *m, uint64_t epoch, uint64_t pos, uint64_t lsn,
		      uint32_t prev_crc);

/* The log was cut at `pos`: forget epochs that started at or after it. */
void sl_epoch_map_truncate(struct sl_epoch_map *m, uint64_t pos);

/* Where the largest epoch <= `epoch` ends in a log whose end is
 * (end_pos, end_lsn, end_crc). With no such epoch: epoch 0, ending where
 * the oldest epoch held starts (or the log end when the map is empty). */
void sl_epoch_map_end_of(const struct sl_epoch_map *m, uint64_t epoch, uint64_t end_pos,
			 uint64_t end_lsn, uint32_t end_crc, struct sl_epoch_bound *out);

#endif
