/* Futex ping-pong between two pinned threads: see bench_wake.h. */
#include "bench_wake.h"

#include "bench_util.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAKE_GAP_NS	50000	      /* the waker waits this long after the sleeper armed */
#define WAKE_TIMEOUT_NS 2000000000ull /* a side that waits longer gives up */

struct wake_pp {
	_Atomic uint32_t word; /* 0: asleep (or about to be), 1: woken */
	_Atomic uint32_t armed;
	_Atomic uint64_t t_wake; /* when the waker called FUTEX_WAKE */
	_Atomic int failed;
	unsigned n, cpu[2];
	uint64_t *lat;
};

static int pin_self(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void futex_op(_Atomic uint32_t *w, int op, uint32_t val)
{
	struct timespec to = {.tv_nsec = 100000000}; /* re-check `failed` */

	syscall(SYS_futex, (uint32_t *)w, op | FUTEX_PRIVATE_FLAG, val,
		op == FUTEX_WAIT ? &to : NULL, NULL, 0);
}

static void *sleeper(void *arg)
{
	struct wake_pp *p = arg;

	if (pin_self(p->cpu[0]))
		atomic_store(&p->failed, 2);
	for (unsigned i = 0; i < p->n && !atomic_load(&p->failed); i++) {
		uint64_t bound = bench_now_ns() + WAKE_TIMEOUT_NS;

		atomic_store(&p->word, 0);
		atomic_store(&p->armed, 1);
		while (atomic_load(&p->word) == 0 && !atomic_load(&p->failed)) {
			futex_op(&p->word, FUTEX_WAIT, 0);
			if (bench_now_ns() > bound)
				atomic_store(&p->failed, 1);
		}
		p->lat[i] = bench_now_ns() - atomic_load(&p->t_wake);
	}
	return NULL;
}

/* The waker: for each round, waits for the sleeper to arm, lets it fall
 * asleep (its CPU idles if nothing else runs there), then wakes it. */
static void waker(struct wake_pp *p)
{
	if (pin_self(p->cpu[1]))
		atomic_store(&p->failed, 2);
	for (unsigned i = 0; i < p->n && !atomic_load(&p->failed); i++) {
		uint64_t bound = bench_now_ns() + WAKE_TIMEOUT_NS;

		while (!atomic_load(&p->armed) && !atomic_load(&p->failed)) {
			if (bench_now_ns() > bound)
				atomic_store(&p->failed, 1);
			sched_yield();
		}
		atomic_store(&p->armed, 0);
		nanosleep(&(struct timespec){.tv_nsec = WAKE_GAP_NS}, NULL);
		atomic_store(&p->t_wake, bench_now_ns());
		atomic_store(&p->word, 1);
		futex_op(&p->word, FUTEX_WAKE, 1);
	}
}

int bench_wake_p50(unsigned sleeper_cpu, unsigned waker_cpu, unsigned n, double *p50_us)
{
	struct wake_pp p = {.n = n, .cpu = {sleeper_cpu, waker_cpu}};
	cpu_set_t old;
	pthread_t t;
	int rc;

	if (n == 0 || !(p.lat = calloc(n, sizeof(*p.lat))))
		return -ENOMEM;
	/* the caller's thread is the waker: give its CPU set back afterwards */
	if ((rc = -pthread_getaffinity_np(pthread_self(), sizeof(old), &old)) ||
	    (rc = -pthread_create(&t, NULL, sleeper, &p))) {
		free(p.lat);
		return rc;
	}
	waker(&p);
	pthread_join(t, NULL);
	pthread_setaffinity_np(pthread_self(), sizeof(old), &old);
	/* 2: a CPU not in this process's set */
	rc = atomic_load(&p.failed) == 2 ? -EINVAL : atomic_load(&p.failed) ? -ETIMEDOUT : 0;
	if (!rc) {
		qsort(p.lat, n, sizeof(*p.lat), bench_cmp_u64);
		*p50_us = (double)p.lat[n / 2] / 1000.0;
	}
	free(p.lat);
	return rc;
}
