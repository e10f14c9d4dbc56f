/* The epoch map; see include/shiplog/epoch.h. */
#include "shiplog/epoch.h"

#include <errno.h>
#include <string.h>

int sl_epoch_map_note(struct sl_epoch_map *m, uint64_t epoch, uint64_t pos, uint64_t lsn,
		      uint32_t prev_crc)
{
	const struct sl_epoch_start *last = m->n ? &m->e[m->n - 1] : NULL;

	if (last && epoch == last->epoch)
		return pos >= last->pos ? 0 : -EINVAL;
	if (last && (epoch < last->epoch || pos <= last->pos))
		return -EINVAL;
	if (m->n == SL_EPOCHS_MAX) {
		memmove(m->e, m->e + 1, (SL_EPOCHS_MAX - 1) * sizeof(m->e[0]));
		m->n--;
	}
	m->e[m->n++] =
	    (struct sl_epoch_start){.epoch = epoch, .pos = pos, .lsn = lsn, .prev_crc = prev_crc};
	return 1;
}

void sl_epoch_map_truncate(struct sl_epoch_map *m, uint64_t pos)
{
	while (m->n > 0 && m->e[m->n - 1].pos >= pos)
		m->n--;
}

void sl_epoch_map_end_of(const struct sl_epoch_map *m, uint64_t epoch, uint64_t end_pos,
			 uint64_t end_lsn, uint32_t end_crc, struct sl_epoch_bound *out)
{
	uint32_t i = m->n;

	/* The first entry above `epoch`: everything before it is <= epoch. */
	while (i > 0 && m->e[i - 1].epoch > epoch)
		i--;
	out->epoch = i > 0 ? m->e[i - 1].epoch : 0;
	if (i == m->n) {
		out->pos = end_pos;
		out->lsn = end_lsn;
		out->crc = end_crc;
	} else {
		out->pos = m->e[i].pos;
		out->lsn = m->e[i].lsn;
		out->crc = m->e[i].prev_crc;
	}
}
