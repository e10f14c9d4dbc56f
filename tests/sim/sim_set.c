/* Open addressing with linear probing; see sim_set.h. */
#include "sim_set.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

static uint64_t slot_of(const struct sl_sim_set *s, uint64_t a, uint64_t b)
{
	return sl_sim_mix(a * 0x9E3779B97F4A7C15ull ^ b) & (s->cap - 1);
}

int sl_sim_set_init(struct sl_sim_set *s, uint64_t cap)
{
	uint64_t c = 64;

	while (c < cap)
		c <<= 1;
	s->keys = malloc(c * 2 * sizeof(uint64_t));
	if (!s->keys)
		return -ENOMEM;
	s->cap = c;
	sl_sim_set_clear(s);
	return 0;
}

void sl_sim_set_destroy(struct sl_sim_set *s)
{
	free(s->keys);
	memset(s, 0, sizeof(*s));
}

void sl_sim_set_clear(struct sl_sim_set *s)
{
	memset(s->keys, 0xff, s->cap * 2 * sizeof(uint64_t));
	s->n = 0;
}

static int empty(const uint64_t *k)
{
	return k[0] == UINT64_MAX && k[1] == UINT64_MAX;
}

static void put(struct sl_sim_set *s, uint64_t a, uint64_t b)
{
	for (uint64_t i = slot_of(s, a, b);; i = (i + 1) & (s->cap - 1)) {
		uint64_t *k = s->keys + 2 * i;

		if (empty(k)) {
			k[0] = a;
			k[1] = b;
			s->n++;
			return;
		}
		if (k[0] == a && k[1] == b)
			return;
	}
}

static int grow(struct sl_sim_set *s)
{
	struct sl_sim_set bigger;

	if (sl_sim_set_init(&bigger, s->cap * 2) < 0)
		return -ENOMEM;
	for (uint64_t i = 0; i < s->cap; i++)
		if (!empty(s->keys + 2 * i))
			put(&bigger, s->keys[2 * i], s->keys[2 * i + 1]);
	free(s->keys);
	*s = bigger;
	return 0;
}

int sl_sim_set_add(struct sl_sim_set *s, uint64_t a, uint64_t b)
{
	if ((s->n + 1) * 2 > s->cap && grow(s) < 0)
		return -ENOMEM;
	put(s, a, b);
	return 0;
}

int sl_sim_set_has(const struct sl_sim_set *s, uint64_t a, uint64_t b)
{
	for (uint64_t i = slot_of(s, a, b);; i = (i + 1) & (s->cap - 1)) {
		const uint64_t *k = s->keys + 2 * i;

		if (empty(k))
			return 0;
		if (k[0] == a && k[1] == b)
			return 1;
	}
}
