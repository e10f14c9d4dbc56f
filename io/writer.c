/* The store's writer thread (io/writer.h). An io_uring write with
 * RWF_DSYNC on an O_DIRECT file completes its flush from a kernel worker
 * that must get a core and then wake the ring's owner; a thread of our own
 * that writes with pwritev2 waits for the device itself and posts the
 * result straight to the owner's ring. */
#include "writer.h"

#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "shiplog/err.h"
#include "shiplog/log.h"

#define POST_TRIES 100 /* attempts to post one completion, 100 us apart */

struct job {
	int fd;
	const void *buf;
	uint32_t len;
	uint64_t off, user_data;
};

struct sl_writer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int has_job, stop;    /* under mu */
	struct job job;	      /* under mu while has_job */
	int ring_fd;	      /* the owner's ring */
	struct io_uring ring; /* this thread's, for MSG_RING only */
	atomic_int broken;
};

/* Post the result to the owner's ring as a CQE of user_data. */
static int post(struct sl_writer *w, uint64_t user_data, int res)
{
	struct io_uring_cqe *cqe;
	int rc = -EIO;

	for (int i = 0; i < POST_TRIES; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

		assert(sqe != NULL); /* one in flight at a time */
		io_uring_prep_msg_ring(sqe, w->ring_fd, (unsigned)res, user_data, 0);
		rc = io_uring_submit_and_wait(&w->ring, 1);
		if (rc >= 0 && (rc = io_uring_wait_cqe(&w->ring, &cqe)) == 0) {
			rc = cqe->res;
			io_uring_cqe_seen(&w->ring, cqe);
		}
		if (rc >= 0)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 100000}, NULL);
	}
	return rc;
}

static void *run(void *arg)
{
	struct sl_writer *w = arg;

	for (;;) {
		struct iovec iov;
		struct job j;
		ssize_t res;
		int rc;

		pthread_mutex_lock(&w->mu);
		while (!w->has_job && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->has_job) {
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		j = w->job;
		pthread_mutex_unlock(&w->mu);
		iov = (struct iovec){.iov_base = (void *)j.buf, .iov_len = j.len};
		/* Never retried: the owner fails the log on an error or a
		 * short write (signals are blocked here: no EINTR). */
		res = pwritev2(j.fd, &iov, 1, (off_t)j.off, RWF_DSYNC);
		pthread_mutex_lock(&w->mu);
		w->has_job = 0; /* the next may be handed over once this is reaped */
		pthread_mutex_unlock(&w->mu);
		if ((rc = post(w, j.user_data, res < 0 ? -errno : (int)res)) < 0) {
			sl_warn("writer thread: posting a write's completion: %s", strerror(-rc));
			atomic_store(&w->broken, 1);
		}
	}
}

int sl_writer_start(struct sl_writer **out, int ring_fd)
{
	struct sl_writer *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (w == NULL)
		return sl_err_set(ENOMEM, "writer thread: out of memory");
	w->ring_fd = ring_fd;
	if ((rc = io_uring_queue_init(2, &w->ring, 0)) < 0) {
		free(w);
		return sl_err_set(-rc, "writer thread: io_uring setup: %s", strerror(-rc));
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits the mask */
	rc = pthread_create(&w->thread, NULL, run, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		io_uring_queue_exit(&w->ring);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return sl_err_set(rc, "writer thread: %s", strerror(rc));
	}
	pthread_setname_np(w->thread, "sl-writer");
	*out = w;
	return 0;
}

void sl_writer_stop(struct sl_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	io_uring_queue_exit(&w->ring);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void sl_writer_post(struct sl_writer *w, int fd, const void *buf, uint32_t len, uint64_t off,
		    uint64_t user_data)
{
	pthread_mutex_lock(&w->mu);
	assert(!w->has_job && !w->stop);
	w->job = (struct job){.fd = fd, .buf = buf, .len = len, .off = off, .user_data = user_data};
	w->has_job = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int sl_writer_broken(const struct sl_writer *w)
{
	return atomic_load(&((struct sl_writer *)w)->broken);
}
