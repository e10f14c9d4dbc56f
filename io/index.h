/* The sparse index: LSN -> (segment, group offset), one entry per group at
 * most and at least `gap` stream bytes apart, in a fixed-size array that
 * halves its density when full. Lookups give a group to start reading at. */
#ifndef SHIPLOG_IO_INDEX_H
#define SHIPLOG_IO_INDEX_H

#include <stdint.h>

struct sl_seg;

struct sl_index_entry {
	uint64_t lsn;	     /* base LSN of the group's first batch */
	uint64_t position;   /* position of the group's first batch */
	struct sl_seg *seg;  /* segment that holds the group */
	uint64_t off;	     /* file offset of the group header */
	uint64_t seq;	     /* the group's sequence number */
	uint64_t prev_epoch; /* last_epoch before the group's first batch */
};

struct sl_index {
	struct sl_index_entry *e;
	uint32_t n, cap;
	uint64_t gap; /* current minimum distance in positions */
};

/* cap >= 2 entries, gap > 0 bytes. 0 or -ENOMEM. */
int sl_index_init(struct sl_index *x, uint32_t cap, uint64_t gap);
void sl_index_free(struct sl_index *x);
/* Offer a group start (in log order); kept when it is the first of its
 * segment or at least `gap` positions after the last entry. */
void sl_index_add(struct sl_index *x, const struct sl_index_entry *e);
/* The last entry with lsn <= `lsn`, or NULL. */
const struct sl_index_entry *sl_index_find(const struct sl_index *x, uint64_t lsn);
/* The last entry with position <= `position`, or NULL. Positions strictly
 * increase along the log, so this also finds empty batches, which share
 * their base LSN with the batch after them. */
const struct sl_index_entry *sl_index_find_pos(const struct sl_index *x, uint64_t position);
/* Forget the entries of groups whose first batch is at `position` or later. */
void sl_index_cut(struct sl_index *x, uint64_t position);
/* Forget the entries of `seg` (retention drops segments from the front). */
void sl_index_drop_seg(struct sl_index *x, const struct sl_seg *seg);

#endif
