/* A log-linear latency histogram (HDR-style): fixed memory, constant-time
 * record, percentiles within 1/64 (~1.6 %) relative error, values in
 * nanoseconds up to ~2^40 (18 min). Pure; no allocation. */
#ifndef SHIPLOG_HIST_H
#define SHIPLOG_HIST_H

#include <stdint.h>

#define SL_HIST_SUB_BITS 6 /* 64 linear sub-buckets per power of two */
#define SL_HIST_MAX_EXP	 40
#define SL_HIST_BUCKETS	 ((SL_HIST_MAX_EXP + 1) << SL_HIST_SUB_BITS)

struct sl_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	uint32_t bins[SL_HIST_BUCKETS];
};

void sl_hist_reset(struct sl_hist *h);
void sl_hist_record(struct sl_hist *h, uint64_t value);
void sl_hist_merge(struct sl_hist *dst, const struct sl_hist *src);
/* Value at quantile q in [0,1] (the upper edge of its bucket, clamped to max);
 * 0 for an empty histogram. */
uint64_t sl_hist_quantile(const struct sl_hist *h, double q);
double sl_hist_mean(const struct sl_hist *h);

#endif
