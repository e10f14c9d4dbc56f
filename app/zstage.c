/* The compressor stage; see zstage.h.
 *
 * Threads: the loop thread owns `tail` (slots submitted) and `head` (slots
 * taken back). Slots [claim, tail) wait to be encoded: the stage's thread,
 * or the loop helping (sl_zstage_help), takes the next by moving `claim`
 * (compare and swap), encodes it and sets its `ready`; the loop takes them
 * back in order from `head`, each once it is ready. The indices are
 * atomics; the thread sleeps on a condition variable when it has nothing to
 * encode. */
#include "zstage.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "shiplog/err.h"

#define SLOTS_MAX 64

struct slot {
	uint8_t *raw; /* raw_cap */
	uint8_t *enc; /* sl_batch_bound(raw_cap) */
	size_t raw_len;
	uint32_t count;
	struct sl_zstage_out out;
	atomic_int ready; /* encoded, until popped */
};

struct sl_zstage {
	struct slot s[SLOTS_MAX];
	uint32_t n;
	size_t raw_cap, enc_cap;
	int accel;
	_Atomic uint64_t head, claim, tail, encoded;
	atomic_int stop;
	/* The loop sleeps on efd: armed, the thread writes it once a batch is
	 * encoded (and disarms it); unarmed, it writes nothing. */
	atomic_int armed;
	int efd;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void encode(struct sl_zstage *z, struct slot *s)
{
	struct sl_batch_hdr h = {.base_lsn = 1};
	int len =
	    sl_batch_encode_accel(&h, s->raw, s->raw_len, s->count, s->enc, z->enc_cap, z->accel);

	if (len < 0)
		h.record_count = 0; /* a bug (the loop built the records): refused there */
	s->out.h = h;
	s->out.payload = s->enc + SL_BATCH_HDR_SIZE;
}

/* Take the next slot waiting to be encoded, encode it: 1, or 0 if none. */
static int encode_next(struct sl_zstage *z)
{
	uint64_t c = atomic_load(&z->claim);
	struct slot *s;

	do {
		if (c >= atomic_load_explicit(&z->tail, memory_order_acquire))
			return 0;
	} while (!atomic_compare_exchange_weak(&z->claim, &c, c + 1));
	s = &z->s[c % z->n];
	encode(z, s);
	atomic_fetch_add_explicit(&z->encoded, 1, memory_order_relaxed);
	/* Sequentially consistent with the loop's arm: either it sees this
	 * batch before sleeping, or the thread sees it armed. */
	atomic_store(&s->ready, 1);
	return 1;
}

static void *stage_main(void *arg)
{
	struct sl_zstage *z = arg;
	uint64_t one = 1;

	for (;;) {
		pthread_mutex_lock(&z->mu);
		while (!atomic_load_explicit(&z->stop, memory_order_relaxed) &&
		       atomic_load(&z->claim) >= atomic_load(&z->tail))
			pthread_cond_wait(&z->cv, &z->mu);
		pthread_mutex_unlock(&z->mu);
		if (atomic_load_explicit(&z->stop, memory_order_relaxed))
			break;
		if (encode_next(z) && atomic_exchange(&z->armed, 0) &&
		    write(z->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow. */
		}
	}
	return NULL;
}

int sl_zstage_help(struct sl_zstage *z)
{
	return encode_next(z);
}

void sl_zstage_close(struct sl_zstage *z)
{
	if (!z)
		return;
	if (z->started) {
		pthread_mutex_lock(&z->mu);
		atomic_store_explicit(&z->stop, 1, memory_order_relaxed);
		pthread_cond_signal(&z->cv);
		pthread_mutex_unlock(&z->mu);
		pthread_join(z->thread, NULL);
	}
	for (uint32_t i = 0; i < z->n; i++) {
		free(z->s[i].raw);
		free(z->s[i].enc);
	}
	if (z->efd >= 0)
		close(z->efd);
	pthread_cond_destroy(&z->cv);
	pthread_mutex_destroy(&z->mu);
	free(z);
}

int sl_zstage_open(struct sl_zstage **out, uint32_t slots, size_t raw_cap, int accel)
{
	struct sl_zstage *z;
	int rc;

	if (slots < 2 || slots > SLOTS_MAX || raw_cap == 0 || raw_cap > SL_BATCH_RAW_MAX)
		return sl_err_set(EINVAL,
				  "compressor stage: %u slots of %zu bytes (2..%d, at most %u)",
				  slots, raw_cap, SLOTS_MAX, SL_BATCH_RAW_MAX);
	if (!(z = calloc(1, sizeof(*z))))
		return sl_err_set(ENOMEM, "compressor stage");
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cv, NULL);
	z->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	z->n = slots;
	z->raw_cap = raw_cap;
	z->accel = accel;
	z->enc_cap = sl_batch_bound(raw_cap);
	if (z->efd < 0) {
		rc = sl_err_set(errno, "compressor stage: eventfd");
		goto undo;
	}
	for (uint32_t i = 0; i < slots; i++)
		if (!(z->s[i].raw = malloc(raw_cap)) || !(z->s[i].enc = malloc(z->enc_cap))) {
			rc = sl_err_set(ENOMEM, "compressor stage: %u slots of %zu bytes", slots,
					raw_cap);
			goto undo;
		}
	if ((rc = -pthread_create(&z->thread, NULL, stage_main, z))) {
		sl_err_set(-rc, "compressor stage: starting its thread");
		goto undo;
	}
	z->started = 1;
	pthread_setname_np(z->thread, "shiplog-lz4");
	*out = z;
	return 0;
undo:
	z->n = slots; /* free what was allocated */
	sl_zstage_close(z);
	return rc;
}

uint8_t *sl_zstage_slot(struct sl_zstage *z)
{
	uint64_t tail = atomic_load_explicit(&z->tail, memory_order_relaxed);

	if (tail - atomic_load_explicit(&z->head, memory_order_relaxed) >= z->n)
		return NULL;
	return z->s[tail % z->n].raw;
}

void sl_zstage_submit(struct sl_zstage *z, size_t raw_len, uint32_t count)
{
	uint64_t tail = atomic_load_explicit(&z->tail, memory_order_relaxed);
	struct slot *s = &z->s[tail % z->n];

	s->raw_len = raw_len;
	s->count = count;
	pthread_mutex_lock(&z->mu);
	atomic_store_explicit(&z->tail, tail + 1, memory_order_release);
	pthread_cond_signal(&z->cv);
	pthread_mutex_unlock(&z->mu);
}

const struct sl_zstage_out *sl_zstage_peek(struct sl_zstage *z)
{
	uint64_t head = atomic_load_explicit(&z->head, memory_order_relaxed);

	if (head == atomic_load_explicit(&z->tail, memory_order_relaxed) ||
	    !atomic_load_explicit(&z->s[head % z->n].ready, memory_order_acquire))
		return NULL;
	return &z->s[head % z->n].out;
}

void sl_zstage_pop(struct sl_zstage *z)
{
	uint64_t head = atomic_load_explicit(&z->head, memory_order_relaxed);

	atomic_store_explicit(&z->s[head % z->n].ready, 0, memory_order_relaxed);
	atomic_store_explicit(&z->head, head + 1, memory_order_relaxed);
}

int sl_zstage_arm(struct sl_zstage *z)
{
	uint64_t head = atomic_load_explicit(&z->head, memory_order_relaxed);

	atomic_store(&z->armed, 1);
	if (head == atomic_load_explicit(&z->tail, memory_order_relaxed) ||
	    !atomic_load(&z->s[head % z->n].ready))
		return 0;
	sl_zstage_disarm(z);
	return 1;
}

void sl_zstage_disarm(struct sl_zstage *z)
{
	uint64_t v;

	/* Cleared after every sleep: a count the thread writes after this
	 * read (it took the arm just before) wakes one later sleep early, and
	 * that sleep's disarm clears it. */
	atomic_store(&z->armed, 0);
	if (read(z->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing written */
	}
}

void sl_zstage_drop(struct sl_zstage *z)
{
	uint64_t tail = atomic_load_explicit(&z->tail, memory_order_relaxed);
	uint64_t c = atomic_load(&z->claim);

	/* Claim what waits, so the thread takes none of it. */
	while (c < tail && !atomic_compare_exchange_weak(&z->claim, &c, tail))
		;
	for (; c < tail; c++)
		atomic_store(&z->s[c % z->n].ready, 1);
	/* The thread's claim (one slot at a time) ends within an encoding. */
	while (sl_zstage_pending(z) > 0) {
		if (sl_zstage_peek(z))
			sl_zstage_pop(z);
		else
			sched_yield();
	}
}

uint32_t sl_zstage_pending(const struct sl_zstage *z)
{
	return (uint32_t)(atomic_load_explicit(&z->tail, memory_order_relaxed) -
			  atomic_load_explicit(&z->head, memory_order_relaxed));
}

int sl_zstage_wait_fd(const struct sl_zstage *z)
{
	return z->efd;
}

uint64_t sl_zstage_encoded(const struct sl_zstage *z)
{
	return atomic_load_explicit(&z->encoded, memory_order_relaxed);
}
