/* Deterministic workloads; see include/shiplog/workload.h. */
#include "shiplog/workload.h"

#include "shiplog/err.h"

#include <errno.h>
#include <string.h>

/* xorshift64* (Vigna); the state must never be 0, so 0 is replaced. */
uint64_t sl_rng_next(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* splitmix64 finaliser: spreads nearby seeds (1, 2, 3...) far apart. */
static uint64_t seed_mix(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void sl_wl_init(struct sl_wl *w, enum sl_wl_kind kind, uint64_t seed)
{
	w->kind = kind;
	w->rng = seed_mix(seed);
	if (w->rng == 0)
		w->rng = 1;
	w->seq = 0;
}

/* A bounded writer: appends until `end`, silently truncating. */
struct wbuf {
	uint8_t *p;
	uint8_t *end;
};

static void put_str(struct wbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (n > (size_t)(b->end - b->p))
		n = (size_t)(b->end - b->p);
	memcpy(b->p, s, n);
	b->p += n;
}

/* Decimal, zero-padded to at least `width` digits. */
static void put_num(struct wbuf *b, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v || n < width);
	while (n > 0 && b->p < b->end)
		*b->p++ = (uint8_t)tmp[--n];
}

static uint32_t rng_below(struct sl_wl *w, uint32_t n)
{
	return (uint32_t)((sl_rng_next(&w->rng) >> 32) * n >> 32);
}

static const char *const wl_ops[] = {"PUT", "PUT", "PUT", "UPD", "UPD", "DEL"};
static const char *const wl_tables[] = {"orders", "users", "payments", "inventory", "sessions"};
/* A small vocabulary, so values repeat like real row images do. */
static const char *const wl_words[] = {
    "status=pending",  "status=shipped", "status=paid",	   "status=cancelled",
    "currency=EUR",    "currency=USD",	 "region=eu-west", "region=us-east",
    "priority=normal", "priority=high",	 "channel=web",	   "channel=mobile",
    "channel=store",   "note=gift",	 "note=repeat",	   "flag=true",
    "flag=false",      "sku=",		 "qty=",	   "price=",
    "customer=",       "warehouse=wh-",	 "retries=",	   "version=",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Word ending in '=' takes a random number, the rest stand alone. */
static void put_word(struct sl_wl *w, struct wbuf *b)
{
	const char *word = wl_words[rng_below(w, NELEM(wl_words))];
	size_t n = strlen(word);

	put_str(b, word);
	if (word[n - 1] == '=')
		put_num(b, rng_below(w, 100000), 1);
	put_str(b, " ");
}

static void fill_text(struct sl_wl *w, uint8_t *out, size_t len)
{
	struct wbuf b = {out, out + len};

	put_str(&b, "ts=");
	put_num(&b, 1700000000000000ull + w->seq * 250 + rng_below(w, 250), 1);
	put_str(&b, " op=");
	put_str(&b, wl_ops[rng_below(w, NELEM(wl_ops))]);
	put_str(&b, " table=");
	put_str(&b, wl_tables[rng_below(w, NELEM(wl_tables))]);
	put_str(&b, " key=user:");
	put_num(&b, rng_below(w, 1000000), 6);
	put_str(&b, " val=");
	while (b.p < b.end)
		put_word(w, &b);
	if (len > 0)
		out[len - 1] = '\n';
}

/* Bytes taken low-first, so the stream is the same on any byte order. */
static void fill_random(struct sl_wl *w, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = sl_rng_next(&w->rng);

		for (size_t k = 0; k < 8 && i + k < len; k++)
			out[i + k] = (uint8_t)(v >> (8 * k));
	}
}

void sl_wl_fill(struct sl_wl *w, uint8_t *out, size_t len)
{
	if (w->kind == SL_WL_RANDOM)
		fill_random(w, out, len);
	else
		fill_text(w, out, len);
	w->seq++;
}

int sl_wl_kind_parse(const char *s, enum sl_wl_kind *out)
{
	if (s && strcmp(s, "text") == 0) {
		*out = SL_WL_TEXT;
		return 0;
	}
	if (s && strcmp(s, "random") == 0) {
		*out = SL_WL_RANDOM;
		return 0;
	}
	return sl_err_set(EINVAL, "workload kind '%s': want text or random", s ? s : "(null)");
}

const char *sl_wl_kind_name(enum sl_wl_kind kind)
{
	switch (kind) {
	case SL_WL_TEXT:
		return "text";
	case SL_WL_RANDOM:
		return "random";
	}
	return "unknown";
}
