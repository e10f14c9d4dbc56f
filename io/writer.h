/* The store's writer thread: one durable write at a time (pwritev2 with
 * RWF_DSYNC) made off the caller's thread, its result posted to the
 * caller's io_uring as a completion (IORING_OP_MSG_RING), so the caller
 * reaps and sleeps as it does for its own writes. */
#ifndef SHIPLOG_IO_WRITER_H
#define SHIPLOG_IO_WRITER_H

#include <stdint.h>

struct sl_writer;

/* Start the thread; its completions go to the ring whose fd is ring_fd
 * (which must outlive sl_writer_stop). Returns 0 or -errno. */
int sl_writer_start(struct sl_writer **out, int ring_fd);
/* Join the thread after the write it holds (if any) is posted. */
void sl_writer_stop(struct sl_writer *w);
/* Hand over one write: `len` bytes of buf to fd at off, RWF_DSYNC. Its
 * completion carries user_data and the write's result (bytes or -errno).
 * At most one write at a time: the previous one's completion must have
 * been reaped. */
void sl_writer_post(struct sl_writer *w, int fd, const void *buf, uint32_t len, uint64_t off,
		    uint64_t user_data);
/* 1 when a completion could not be posted to the ring (the write's result
 * is lost: the caller must fail the log), 0 otherwise. */
int sl_writer_broken(const struct sl_writer *w);

#endif
