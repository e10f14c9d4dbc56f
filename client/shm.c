/* Shared-memory helpers for libshiplog and shipd; see client/shm.h. */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/err.h"

int sl_shm_map_ring(int fd, size_t bytes, void **out)
{
	uint8_t *base = mmap(NULL, 2 * bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return sl_err_set(errno, "reserving %zu bytes for a ring: %s", 2 * bytes,
				  strerror(errno));
	for (int i = 0; i < 2; i++)
		if (mmap(base + i * bytes, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fd, 0) == MAP_FAILED) {
			int err = errno;

			munmap(base, 2 * bytes);
			return sl_err_set(err, "mapping a ring of %zu bytes: %s", bytes,
					  strerror(err));
		}
	*out = base;
	return 0;
}

void sl_shm_unmap_ring(void *p, size_t bytes)
{
	if (p)
		munmap(p, 2 * bytes);
}

/* Sealed against shrinking, so a peer cannot make our mapping fault. */
int sl_shm_memfd(const char *name, size_t bytes)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return sl_err_set(errno, "memfd %s: %s", name, strerror(errno));
	if (ftruncate(fd, (off_t)bytes) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int err = errno;

		close(fd);
		return sl_err_set(err, "memfd %s of %zu bytes: %s", name, bytes, strerror(err));
	}
	return fd;
}

int sl_shm_send(int sock, const void *msg, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SL_SHM_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

int sl_shm_recv(int sock, void *msg, size_t cap, int *fds, int *nfds, int dontwait)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SL_SHM_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = msg, .iov_len = cap};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	int got = 0;

	for (int i = 0; i < SL_SHM_FDS; i++)
		fds[i] = -1;
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | (dontwait ? MSG_DONTWAIT : 0));
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (got < SL_SHM_FDS)
				fds[got++] = fd;
			else
				close(fd); /* more than we take: do not leak them */
		}
	}
	*nfds = got;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		for (int i = 0; i < got; i++)
			close(fds[i]), fds[i] = -1;
		*nfds = 0;
		return -EMSGSIZE;
	}
	return (int)n;
}

void sl_shm_kick(int efd)
{
	uint64_t one = 1;
	ssize_t n = write(efd, &one, sizeof(one));

	(void)n; /* EAGAIN: the counter is already non-zero, the reader wakes */
}

void sl_shm_futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int sl_shm_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	if (syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0) < 0 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}
