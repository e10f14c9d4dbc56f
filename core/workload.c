/* Deterministic workloads; see include/shiplog/workload.h. */
#include "shiplog/workload.h"

#include "shiplog/err.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* xorshift64* (Vigna); the state must never be 0, so 0 is replaced.
 * Inlined into the generator, which draws a hundred times per 1 KiB. */
static inline uint64_t rng_step(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

uint64_t sl_rng_next(uint64_t *state)
{
	return rng_step(state);
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
	w->pool = NULL;
	w->pool_recs = 0;
	w->pool_len = 0;
}

/* A bounded writer: appends until `end`, silently truncating. */
struct wbuf {
	uint8_t *p;
	uint8_t *end;
};

static void put_bytes(struct wbuf *b, const char *s, size_t n)
{
	if (n > (size_t)(b->end - b->p))
		n = (size_t)(b->end - b->p);
	memcpy(b->p, s, n);
	b->p += n;
}

/* A literal: a fixed-size copy the compiler inlines, while room remains. */
#define PUT_LIT(b, lit)                                                                            \
	do {                                                                                       \
		if ((b)->end - (b)->p >= (ptrdiff_t)sizeof(lit)) {                                 \
			memcpy((b)->p, (lit), sizeof(lit) - 1);                                    \
			(b)->p += sizeof(lit) - 1;                                                 \
		} else {                                                                           \
			put_bytes((b), (lit), sizeof(lit) - 1);                                    \
		}                                                                                  \
	} while (0)

/* Decimal, zero-padded to at least `width` digits, two digits per
 * division. The digits end at tmp[NUM_MAX], so a fixed NUM_MAX-byte copy
 * from the first of them stays inside tmp. */
#define NUM_MAX 24
static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
				  "25262728293031323334353637383940414243444546474849"
				  "50515253545556575859606162636465666768697071727374"
				  "75767778798081828384858687888990919293949596979899";

static void put_num(struct wbuf *b, uint64_t v, int width)
{
	char tmp[2 * NUM_MAX];
	int i = NUM_MAX;
	uint32_t w;

	while (v > UINT32_MAX) {
		i -= 2;
		memcpy(tmp + i, digit_pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	for (w = (uint32_t)v; w >= 100; w /= 100) {
		i -= 2;
		memcpy(tmp + i, digit_pairs + 2 * (w % 100), 2);
	}
	if (w >= 10) {
		i -= 2;
		memcpy(tmp + i, digit_pairs + 2 * w, 2);
	} else {
		tmp[--i] = (char)('0' + w);
	}
	while (NUM_MAX - i < width)
		tmp[--i] = '0';
	if (b->end - b->p >= NUM_MAX) {
		memcpy(b->p, tmp + i, NUM_MAX);
		b->p += NUM_MAX - i;
		return;
	}
	put_bytes(b, tmp + i, (size_t)(NUM_MAX - i));
}

static uint32_t rng_below(struct sl_wl *w, uint32_t n)
{
	return (uint32_t)((rng_step(&w->rng) >> 32) * n >> 32);
}

/* Strings in fixed 16-byte slots with their lengths: records are made of
 * dozens of them, and copying a whole slot while 16 bytes of room remain is
 * far cheaper than measuring and copying each by its length. */
#define WL_SLOT 16
struct wl_str {
	char s[WL_SLOT]; /* not NUL-terminated when 16 long */
	uint8_t len;
	uint8_t num; /* a random number follows (words ending in =) */
};
#define STR(lit)                                                                                   \
	{                                                                                          \
		(lit), sizeof(lit) - 1, 0                                                          \
	}
#define NUM_STR(lit)                                                                               \
	{                                                                                          \
		(lit), sizeof(lit) - 1, 1                                                          \
	}

static void put_str(struct wbuf *b, const struct wl_str *s)
{
	if (b->end - b->p >= WL_SLOT) {
		memcpy(b->p, s->s, WL_SLOT);
		b->p += s->len;
	} else {
		put_bytes(b, s->s, s->len);
	}
}

static const struct wl_str wl_ops[] = {STR("PUT"), STR("PUT"), STR("PUT"),
				       STR("UPD"), STR("UPD"), STR("DEL")};
static const struct wl_str wl_tables[] = {STR("orders"), STR("users"), STR("payments"),
					  STR("inventory"), STR("sessions")};
/* A small vocabulary, so values repeat like real row images do. */
static const struct wl_str wl_words[] = {
    STR("status=pending"),  STR("status=shipped"), STR("status=paid"),	  STR("status=cancelled"),
    STR("currency=EUR"),    STR("currency=USD"),   STR("region=eu-west"), STR("region=us-east"),
    STR("priority=normal"), STR("priority=high"),  STR("channel=web"),	  STR("channel=mobile"),
    STR("channel=store"),   STR("note=gift"),	   STR("note=repeat"),	  STR("flag=true"),
    STR("flag=false"),	    NUM_STR("sku="),	   NUM_STR("qty="),	  NUM_STR("price="),
    NUM_STR("customer="),   STR("warehouse=wh-"),  NUM_STR("retries="),	  NUM_STR("version="),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void put_word(struct sl_wl *w, struct wbuf *b)
{
	const struct wl_str *word = &wl_words[rng_below(w, NELEM(wl_words))];

	put_str(b, word);
	if (word->num)
		put_num(b, rng_below(w, 100000), 1);
	PUT_LIT(b, " ");
}

static void fill_text(struct sl_wl *w, uint8_t *out, size_t len)
{
	struct wbuf b = {out, out + len};

	PUT_LIT(&b, "ts=");
	put_num(&b, 1700000000000000ull + w->seq * 250 + rng_below(w, 250), 1);
	PUT_LIT(&b, " op=");
	put_str(&b, &wl_ops[rng_below(w, NELEM(wl_ops))]);
	PUT_LIT(&b, " table=");
	put_str(&b, &wl_tables[rng_below(w, NELEM(wl_tables))]);
	PUT_LIT(&b, " key=user:");
	put_num(&b, rng_below(w, 1000000), 6);
	PUT_LIT(&b, " val=");
	while (b.p < b.end)
		put_word(w, &b);
	if (len > 0)
		out[len - 1] = '\n';
}

/* Bytes taken low-first, so the stream is the same on any byte order. */
static void fill_random(struct sl_wl *w, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_step(&w->rng);

		for (size_t k = 0; k < 8 && i + k < len; k++)
			out[i + k] = (uint8_t)(v >> (8 * k));
	}
}

/* A pooled record's own sequence number, where a generated one has its
 * varying fields: the text's ts= (16 digits, as generated), random's first
 * 8 bytes. */
#define TS_END 19 /* "ts=" and 16 digits */
static void stamp(const struct sl_wl *w, uint8_t *out, size_t len)
{
	if (w->kind == SL_WL_RANDOM) {
		for (size_t k = 0; k < 8 && k < len; k++)
			out[k] = (uint8_t)(w->seq >> (8 * k));
	} else if (len > TS_END) {
		struct wbuf b = {out + 3, out + TS_END};

		put_num(&b, 1700000000000000ull + w->seq * 250, 16);
	}
}

void sl_wl_fill(struct sl_wl *w, uint8_t *out, size_t len)
{
	if (w->pool && len == w->pool_len) {
		memcpy(out, w->pool + (size_t)(w->seq % w->pool_recs) * len, len);
		stamp(w, out, len);
	} else if (w->kind == SL_WL_RANDOM) {
		fill_random(w, out, len);
	} else {
		fill_text(w, out, len);
	}
	w->seq++;
}

size_t sl_wl_pool_make(struct sl_wl *w, uint8_t *buf, size_t cap, uint32_t len)
{
	size_t recs = len ? cap / len : 0;

	for (size_t i = 0; i < recs; i++)
		sl_wl_fill(w, buf + i * len, len);
	w->seq = 0;
	if (recs)
		sl_wl_pool_use(w, buf, recs, len);
	return recs;
}

void sl_wl_pool_use(struct sl_wl *w, const uint8_t *pool, size_t recs, uint32_t len)
{
	w->pool = recs && len ? pool : NULL;
	w->pool_recs = recs;
	w->pool_len = len;
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
