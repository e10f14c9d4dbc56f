/* Bounded binary min-heap of simulator events; see sim_heap.h. */
#include "sim_heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sl_sim_heap_init(struct sl_sim_heap *h, uint32_t cap)
{
	memset(h, 0, sizeof(*h));
	if (cap == 0)
		return -EINVAL;
	h->ev = calloc(cap, sizeof(*h->ev));
	if (!h->ev)
		return -ENOMEM;
	h->cap = cap;
	return 0;
}

void sl_sim_heap_destroy(struct sl_sim_heap *h)
{
	free(h->ev);
	memset(h, 0, sizeof(*h));
}

void sl_sim_heap_clear(struct sl_sim_heap *h)
{
	h->len = 0;
	h->next_seq = 0;
}

/* Strict order on (time, seq): seq is unique, so no two events tie. */
static int ev_before(const struct sl_sim_event *a, const struct sl_sim_event *b)
{
	if (a->time != b->time)
		return a->time < b->time;
	return a->seq < b->seq;
}

static void sift_up(struct sl_sim_heap *h, uint32_t i)
{
	struct sl_sim_event e = h->ev[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!ev_before(&e, &h->ev[parent]))
			break;
		h->ev[i] = h->ev[parent];
		i = parent;
	}
	h->ev[i] = e;
}

static void sift_down(struct sl_sim_heap *h, uint32_t i)
{
	struct sl_sim_event e = h->ev[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->len)
			break;
		if (c + 1 < h->len && ev_before(&h->ev[c + 1], &h->ev[c]))
			c++;
		if (!ev_before(&h->ev[c], &e))
			break;
		h->ev[i] = h->ev[c];
		i = c;
	}
	h->ev[i] = e;
}

int sl_sim_heap_push(struct sl_sim_heap *h, const struct sl_sim_event *e)
{
	if (h->len == h->cap)
		return -ENOSPC;
	h->ev[h->len] = *e;
	h->ev[h->len].seq = h->next_seq++;
	sift_up(h, h->len++);
	return 0;
}

int sl_sim_heap_pop(struct sl_sim_heap *h, struct sl_sim_event *out)
{
	if (h->len == 0)
		return -ENOENT;
	*out = h->ev[0];
	if (--h->len > 0) {
		h->ev[0] = h->ev[h->len];
		sift_down(h, 0);
	}
	return 0;
}

const struct sl_sim_event *sl_sim_heap_peek(const struct sl_sim_heap *h)
{
	return h->len ? &h->ev[0] : NULL;
}
