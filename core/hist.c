/* Log-linear latency histogram; see include/shiplog/hist.h.
 * Bucket index: values below 2^SUB_BITS map linearly; above, each power of two
 * is split into 2^SUB_BITS equal sub-buckets, so relative error <= 2^-SUB_BITS. */
#include "shiplog/hist.h"

#include <assert.h>
#include <string.h>

#define SUB_COUNT (1u << SL_HIST_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < SUB_COUNT)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	if (msb > SL_HIST_MAX_EXP)
		return SL_HIST_BUCKETS - 1;
	shift = msb - SL_HIST_SUB_BITS;
	/* (msb - SUB_BITS + 1) blocks of SUB_COUNT precede this one. */
	return ((shift + 1) << SL_HIST_SUB_BITS) + (unsigned)((v >> shift) - SUB_COUNT);
}

/* Largest value that maps to bucket b. */
static uint64_t bucket_upper(unsigned b)
{
	unsigned block = b >> SL_HIST_SUB_BITS, sub = b & (SUB_COUNT - 1);

	if (block == 0)
		return sub;
	return (((uint64_t)(SUB_COUNT + sub) + 1) << (block - 1)) - 1;
}

void sl_hist_reset(struct sl_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void sl_hist_record(struct sl_hist *h, uint64_t value)
{
	unsigned b = bucket_of(value);

	assert(b < SL_HIST_BUCKETS);
	h->bins[b]++;
	h->count++;
	h->sum += (double)value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void sl_hist_merge(struct sl_hist *dst, const struct sl_hist *src)
{
	for (unsigned i = 0; i < SL_HIST_BUCKETS; i++)
		dst->bins[i] += src->bins[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->count && src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t sl_hist_quantile(const struct sl_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (unsigned b = 0; b < SL_HIST_BUCKETS; b++) {
		seen += h->bins[b];
		if (seen > rank) {
			uint64_t v = bucket_upper(b);

			/* The last bucket also holds every overflowing value. */
			if (v > h->max || b == SL_HIST_BUCKETS - 1)
				v = h->max;
			return v < h->min ? h->min : v;
		}
	}
	return h->max;
}

double sl_hist_mean(const struct sl_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
