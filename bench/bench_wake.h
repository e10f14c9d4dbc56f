/* The machine's thread wake-up cost, the limit shipbench client judges the
 * library by: a thread asleep on a futex woken by another, on the other CPU
 * or on the same one, timed from the FUTEX_WAKE call until the sleeper runs. */
#ifndef SHIPLOG_BENCH_WAKE_H
#define SHIPLOG_BENCH_WAKE_H

/* p50 in us of `n` wake-ups of a thread pinned to CPU `sleeper_cpu` by one
 * pinned to `waker_cpu`, each about 50 us after the sleeper went to sleep.
 * Negative errno if a thread could not be started or pinned. */
int bench_wake_p50(unsigned sleeper_cpu, unsigned waker_cpu, unsigned n, double *p50_us);

#endif
