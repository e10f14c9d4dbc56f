/* Shared shipbench helpers; see bench_util.h. */
#include "bench_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void json_append(struct bench_json *j, const char *fmt, const char *key, const char *val)
{
	int n = snprintf(j->buf + j->len, sizeof(j->buf) - j->len, fmt, key, val);

	if (n > 0 && (size_t)n < sizeof(j->buf) - j->len)
		j->len += (size_t)n;
}

void bench_json_begin(struct bench_json *j, const char *bench)
{
	j->len = 0;
	j->buf[0] = '\0';
	json_append(j, "{\"%s\":\"%s\"", "bench", bench);
}

void bench_json_str(struct bench_json *j, const char *key, const char *val)
{
	json_append(j, ",\"%s\":\"%s\"", key, val);
}

void bench_json_num(struct bench_json *j, const char *key, double val)
{
	char num[64];

	if (!isfinite(val))
		snprintf(num, sizeof(num), "null");
	else
		snprintf(num, sizeof(num), "%.3f", val);
	json_append(j, ",\"%s\":%s", key, num);
}

void bench_json_int(struct bench_json *j, const char *key, long long val)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", val);
	json_append(j, ",\"%s\":%s", key, num);
}

void bench_json_end(struct bench_json *j)
{
	printf("%s}\n", j->buf);
	fflush(stdout);
}

void bench_progress(const char *what, double done, double total)
{
	static uint64_t last_ns;
	uint64_t now = bench_now_ns();

	if (now - last_ns < 1000000000ull && done < total)
		return;
	last_ns = now;
	fprintf(stderr, "\r%s: %.1f/%.1f s%s", what, done, total, done >= total ? "\n" : "");
	fflush(stderr);
}

int bench_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (errno || end == s || *end != '\0' || (shift && v > (UINT64_MAX >> shift)) ||
	    (v << shift) < min || (v << shift) > max) {
		fprintf(stderr, "shipbench: %s wants a number in %llu..%llu, got '%s'\n", opt,
			(unsigned long long)min, (unsigned long long)max, s);
		return -EINVAL;
	}
	*out = (uint64_t)v << shift;
	return 0;
}
