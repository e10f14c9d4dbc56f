/* libshiplog: the client side of shipd's shared-memory rings. See
 * include/shiplog/client.h for the API and docs/client.md for the layout.
 *
 * Every wait has the same shape: poll shared memory for spin_us (shipd's
 * loop publishes progress there within a turn), then tell shipd what would
 * wake us (a wake_* field of the session page), check once more, and sleep:
 * appends and level waits on the session page's futex word, the others in
 * epoll on our eventfd and the socket (whose hang-up means shipd died). */
#include "shiplog/client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/err.h"
#include "shm.h"

#define SPIN_MIN_NS	   20000ull /* short waits spin at least this long */
#define SPIN_SHORT_NS	   50000ull /* waits typically longer than this sleep at once */
#define CONNECT_MS_DEFAULT 2000
#define LIVENESS_NS	   1000000ull  /* a spin looks at the socket this often */
#define RETRY_MS	   20	       /* between connection attempts */
#define FUTEX_LIVE_NS	   10000000ull /* a futex sleep looks at the socket this often */

struct sl_client {
	struct sl_client_opts o;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint64_t spin_ns;    /* opts.spin_us; 0: adaptive */
	uint64_t typical[2]; /* what appends (0) and level waits (1) usually take */
	int efd;	     /* ours: shipd signals it; stable across reconnects */
	int epfd;	     /* efd + sock: what sl_client_fd hands out */
	/* the connection (sock -1: none) */
	int sock;
	int doorbell;
	const struct sl_shm_node *node;
	struct sl_shm_sess *sess;
	uint8_t *ap, *dl;
	uint32_t ap_bytes, dl_bytes;
	uint64_t seq;	     /* last append entry */
	uint64_t sealed_lsn; /* appended with SL_APPEND_FLUSH up to here: no flush needed */
	uint64_t ap_tail;    /* bytes published */
	uint64_t dl_read;    /* delivery bytes handed out as views */
	uint8_t *old_dl;     /* the ring of a previous connection, still viewed */
	uint32_t old_dl_bytes;
	/* what survives reconnects */
	uint64_t consumed_lsn, applied_lsn;
	uint64_t epoch;
	uint32_t leader_id, node_id, max_record;
	uint64_t reconnects;
	/* Fencing: LSNs fence_lo..fence_hi were appended by this client in
	 * fence_epoch. A wait for them fails once the epoch moved on before
	 * they reached the level: another leader may have other records there. */
	uint64_t fence_epoch, fence_lo, fence_hi;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

const char *sl_client_errmsg(void)
{
	return sl_err_msg();
}

const char *sl_client_level_name(enum sl_client_level level)
{
	static const char *const names[] = {"received", "durable", "applied", "committed",
					    "applied_here"};

	return (unsigned)level < sizeof(names) / sizeof(names[0]) ? names[level] : "unknown";
}

/* ---- connection ---- */

static void unmap_conn(struct sl_client *c)
{
	if (c->sock >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
	}
	if (c->doorbell >= 0)
		close(c->doorbell);
	if (c->node)
		munmap((void *)c->node, sizeof(struct sl_shm_node));
	if (c->sess)
		munmap(c->sess, sizeof(struct sl_shm_sess));
	sl_shm_unmap_ring(c->ap, c->ap_bytes);
	/* Views into the delivery ring stay valid until the next consume. */
	if (c->dl) {
		sl_shm_unmap_ring(c->old_dl, c->old_dl_bytes);
		c->old_dl = c->dl;
		c->old_dl_bytes = c->dl_bytes;
	}
	c->sock = c->doorbell = -1;
	c->node = NULL;
	c->sess = NULL;
	c->ap = c->dl = NULL;
	c->ap_bytes = c->dl_bytes = 0;
}

static int connect_sock(struct sl_client *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return sl_err_set(errno, "socket: %s", strerror(errno));
	memcpy(sa.sun_path, c->path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		return sl_err_set(err, "connecting to shipd at %s: %s", c->path, strerror(err));
	}
	return fd;
}

static int recv_welcome(struct sl_client *c, struct sl_shm_welcome *w, int *fds, int *nfds,
			uint64_t deadline)
{
	struct pollfd p = {.fd = c->sock, .events = POLLIN};
	uint64_t now = now_ns();
	int rc;

	if (now >= deadline || poll(&p, 1, (int)((deadline - now + 999999) / 1000000)) <= 0)
		return sl_err_set(ETIMEDOUT, "shipd at %s did not answer the handshake", c->path);
	rc = sl_shm_recv(c->sock, w, sizeof(*w), fds, nfds, 1);
	if (rc < 0)
		return sl_err_set(-rc, "handshake with shipd at %s: %s", c->path, strerror(-rc));
	if (rc == 0)
		return sl_err_set(ECONNRESET, "shipd at %s closed the connection", c->path);
	if ((size_t)rc != sizeof(*w) || w->magic != SL_SHM_MAGIC || w->version != SL_SHM_VERSION)
		return sl_err_set(EPROTO, "shipd at %s speaks another client protocol", c->path);
	w->msg[sizeof(w->msg) - 1] = '\0';
	if (w->err < 0)
		return sl_err_set(-w->err, "shipd at %s refused: %s", c->path, w->msg);
	if (*nfds != SL_SHM_FDS - (w->dl_bytes ? 0 : 1))
		return sl_err_set(EPROTO, "shipd at %s sent %d descriptors", c->path, *nfds);
	return 0;
}

/* fds: node page, session page, append ring, [delivery ring,] doorbell. */
static int map_conn(struct sl_client *c, const struct sl_shm_welcome *w, int *fds)
{
	int dl = w->dl_bytes != 0, rc;
	void *p;

	c->doorbell = fds[3 + dl];
	fds[3 + dl] = -1;
	p = mmap(NULL, sizeof(struct sl_shm_node), PROT_READ, MAP_SHARED, fds[0], 0);
	if (p == MAP_FAILED)
		return sl_err_set(errno, "mapping shipd's node page: %s", strerror(errno));
	c->node = p;
	p = mmap(NULL, sizeof(struct sl_shm_sess), PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (p == MAP_FAILED)
		return sl_err_set(errno, "mapping the session page: %s", strerror(errno));
	c->sess = p;
	if ((rc = sl_shm_map_ring(fds[2], w->ap_bytes, &p)))
		return rc;
	c->ap = p;
	c->ap_bytes = w->ap_bytes;
	if (dl) {
		if ((rc = sl_shm_map_ring(fds[3], w->dl_bytes, &p)))
			return rc;
		c->dl = p;
		c->dl_bytes = w->dl_bytes;
	}
	if (c->node->magic != SL_SHM_MAGIC || c->node->version != SL_SHM_VERSION)
		return sl_err_set(EPROTO, "shipd's node page has another layout");
	return 0;
}

/* One attempt: connect, hello, welcome, map. */
static int try_connect(struct sl_client *c, uint64_t deadline)
{
	struct sl_shm_hello h = {.magic = SL_SHM_MAGIC,
				 .version = SL_SHM_VERSION,
				 .flags = c->o.consumer ? SL_SHM_HELLO_CONSUMER : 0,
				 .resume_lsn = c->consumed_lsn};
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	struct sl_shm_welcome w;
	int fds[SL_SHM_FDS], nfds = 0, rc;

	if ((rc = connect_sock(c)) < 0)
		return rc;
	c->sock = rc;
	if ((rc = sl_shm_send(c->sock, &h, sizeof(h), &c->efd, 1)))
		rc = sl_err_set(-rc, "greeting shipd at %s: %s", c->path, strerror(-rc));
	else if (!(rc = recv_welcome(c, &w, fds, &nfds, deadline)))
		rc = map_conn(c, &w, fds);
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ev.data.fd = c->sock;
	if (!rc && epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->sock, &ev) < 0)
		rc = sl_err_set(errno, "epoll: %s", strerror(errno));
	if (rc) {
		unmap_conn(c);
		return rc;
	}
	/* A fresh session: our counters start over with it. */
	c->seq = c->ap_tail = c->dl_read = c->sealed_lsn = 0;
	c->node_id = c->node->node_id;
	c->max_record = c->node->max_record_bytes;
	c->epoch = atomic_load(&c->node->epoch);
	c->leader_id = atomic_load(&c->node->leader_id);
	atomic_store(&c->sess->applied_lsn, c->applied_lsn);
	return 0;
}

/* Retries refusals that a restarting shipd gives (no socket yet, a stale
 * consumer slot) until the deadline. */
static int connect_until(struct sl_client *c, uint64_t deadline)
{
	for (;;) {
		int rc = try_connect(c, deadline);

		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EBUSY && rc != -ECONNRESET)
			return rc;
		if (now_ns() + RETRY_MS * 1000000ull >= deadline)
			return rc;
		nanosleep(&(struct timespec){.tv_nsec = RETRY_MS * 1000000l}, NULL);
	}
}

static uint64_t connect_deadline(const struct sl_client *c)
{
	return now_ns() + (uint64_t)c->o.connect_timeout_ms * 1000000ull;
}

/* shipd went away: reconnect (unless told not to) and resume. */
static int reconnect(struct sl_client *c)
{
	int rc;

	unmap_conn(c);
	if (c->o.no_reconnect)
		return sl_err_set(ENOTCONN, "shipd at %s went away", c->path);
	rc = connect_until(c, connect_deadline(c));
	if (rc)
		return sl_err_wrap(-ENOTCONN, "shipd at %s went away and did not come back",
				   c->path);
	c->reconnects++;
	return 0;
}

/* Is the connection alive? Reads nothing but a hang-up (shipd sends nothing
 * after the welcome). 0 alive, 1 gone. */
static int conn_gone(struct sl_client *c)
{
	struct pollfd p = {.fd = c->sock, .events = POLLIN | POLLRDHUP};

	if (c->sock < 0)
		return 1;
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLRDHUP | POLLERR));
}

static int ensure_conn(struct sl_client *c)
{
	if (c->sock >= 0)
		return 0;
	return reconnect(c);
}

/* opts.pin_to_loop: the calling thread onto shipd's loop CPU. */
static int pin_to_loop(struct sl_client *c)
{
	int32_t cpu = c->node->loop_cpu;
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return sl_err_set(EINVAL,
				  "pin_to_loop: shipd at %s does not pin its loop to a CPU "
				  "([node] cpu)",
				  c->path);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* 0: the calling thread */
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return sl_err_set(errno, "pin_to_loop: CPU %d: %s", cpu, strerror(errno));
	return 0;
}

int sl_client_open(struct sl_client **out, const struct sl_client_opts *o)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sl_client *c;
	int rc;

	if (!out || !o || !o->socket || !*o->socket)
		return sl_err_set(EINVAL, "sl_client_open: no socket path");
	*out = NULL;
	if (strlen(o->socket) >= sizeof(c->path))
		return sl_err_set(ENAMETOOLONG, "socket path %s is too long", o->socket);
	c = calloc(1, sizeof(*c));
	if (!c)
		return sl_err_set(ENOMEM, "client state");
	c->o = *o;
	c->o.socket = NULL;
	strcpy(c->path, o->socket);
	if (!c->o.connect_timeout_ms)
		c->o.connect_timeout_ms = CONNECT_MS_DEFAULT;
	c->spin_ns = c->o.spin_us == UINT32_MAX ? UINT64_MAX : (uint64_t)c->o.spin_us * 1000;
	c->consumed_lsn = c->applied_lsn = o->consumer ? o->applied_lsn : 0;
	c->sock = c->doorbell = -1;
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->efd < 0 || c->epfd < 0) {
		rc = sl_err_set(errno, "eventfd/epoll: %s", strerror(errno));
		goto err;
	}
	ev.data.fd = c->efd;
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->efd, &ev) < 0) {
		rc = sl_err_set(errno, "epoll: %s", strerror(errno));
		goto err;
	}
	/* The first connection is not retried: a wrong path should fail fast. */
	if ((rc = try_connect(c, connect_deadline(c))))
		goto err;
	if (o->pin_to_loop && (rc = pin_to_loop(c)))
		goto err;
	*out = c;
	return 0;
err:
	sl_client_close(c);
	return rc;
}

void sl_client_close(struct sl_client *c)
{
	if (!c)
		return;
	unmap_conn(c);
	sl_shm_unmap_ring(c->old_dl, c->old_dl_bytes);
	if (c->efd >= 0)
		close(c->efd);
	if (c->epfd >= 0)
		close(c->epfd);
	free(c);
}

/* ---- waiting, generically ---- */

/* 1 done, 0 not yet, -errno */
typedef int (*cond_fn)(struct sl_client *c, const void *arg);
/* Tell shipd to signal our eventfd when the condition may hold. */
typedef void (*arm_fn)(struct sl_client *c, const void *arg);

static void ring_doorbell(struct sl_client *c)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&c->node->sleeping, memory_order_relaxed))
		sl_shm_kick(c->doorbell);
}

/* After arming a wait, before looking at the condition again: Dekker with
 * shipd, which publishes progress, fences, then looks at the armed waits
 * (and will not sleep while one it reached is armed). No doorbell: only
 * shipd's own turns make progress, and each ends looking. */
static void fence_armed(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

static void drain_efd(struct sl_client *c)
{
	uint64_t v;
	ssize_t n = read(c->efd, &v, sizeof(v));

	(void)n;
}

/* Sleep in epoll until the eventfd or the socket says something, or the
 * deadline. 1: the connection is gone, 0 otherwise. */
static int sleep_once(struct sl_client *c, uint64_t deadline)
{
	struct epoll_event ev[2];
	uint64_t now = now_ns();
	int ms = deadline == UINT64_MAX ? -1 : (int)((deadline - now + 999999) / 1000000);
	int n = epoll_wait(c->epfd, ev, 2, ms), gone = 0;

	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == c->efd)
			drain_efd(c);
		else
			gone = conn_gone(c);
	}
	return gone;
}

/* Sleep in FUTEX_WAIT on the session's wake_word until shipd signals it or
 * the deadline: shipd's futex wake reaches a sleeper by a shorter path than
 * an eventfd through epoll. A futex does not hear shipd die, so the sleep
 * looks at the socket every FUTEX_LIVE_NS. Flag, then word (seq_cst):
 * Dekker with shipd's kick, which bumps the word, then reads the flag. 1:
 * the connection is gone, 0 otherwise. */
static int sleep_futex(struct sl_client *c, cond_fn cond, const void *arg, uint64_t deadline)
{
	uint64_t now = now_ns(), ns = deadline > now ? deadline - now : 0;
	uint32_t word;
	int gone = 0;

	if (ns > FUTEX_LIVE_NS)
		ns = FUTEX_LIVE_NS;
	atomic_store(&c->sess->futex_wait, 1);
	word = atomic_load(&c->sess->wake_word);
	if (cond(c, arg) == 0 && sl_shm_futex_wait(&c->sess->wake_word, word, ns) == -ETIMEDOUT)
		gone = conn_gone(c);
	atomic_store(&c->sess->futex_wait, 0);
	return gone;
}

/* How long a wait spins before it sleeps: opts.spin_us, or adaptive: a
 * kind of wait that usually ends within SPIN_SHORT_NS (an append that shipd's
 * loop takes at once) spins twice its usual time, at least SPIN_MIN_NS; a
 * longer one (a commit: replication, other threads' work) sleeps at once,
 * since a spinner would hold a core those threads need and a wake-up costs
 * less than that wait. Often the loop that woke us yielded its CPU to us
 * (app/client_srv.c) and waits for us to sleep: a spin would delay it. */
static uint64_t spin_for(const struct sl_client *c, const uint64_t *typical)
{
	uint64_t t = typical ? *typical : 0;

	if (c->spin_ns)
		return c->spin_ns;
	if (t == 0)
		return SPIN_MIN_NS;
	if (t > SPIN_SHORT_NS)
		return 0;
	return 2 * t < SPIN_MIN_NS ? SPIN_MIN_NS : 2 * t;
}

/* Wait for cond. A connection lost on the way is reconnected when
 * `resumable` (the condition still makes sense on the new session),
 * otherwise -ENOTCONN. `typical` (NULL: none) learns how long such waits
 * take (a moving average over about eight); such waits (appends, levels:
 * the ones a record's latency is made of) sleep on the futex, the others
 * (ring room, records to consume, which may last hours) in epoll. */
static int wait_cond(struct sl_client *c, cond_fn cond, arm_fn arm, const void *arg, int timeout_ms,
		     int resumable, uint64_t *typical)
{
	uint64_t start = now_ns(), next_live = start + LIVENESS_NS;
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000ull;
	uint64_t spin = spin_for(c, typical);
	uint64_t spin_end = spin == UINT64_MAX ? UINT64_MAX : start + spin;
	int rc;

	for (unsigned i = 0;; i++) {
		uint64_t now;
		int gone = 0;

		if ((rc = cond(c, arg)) != 0) {
			if (rc > 0 && typical) {
				uint64_t d = now_ns() - start;

				*typical = *typical ? (*typical * 7 + d) / 8 : d;
			}
			return rc < 0 ? rc : 0;
		}
		if (spin && (i & 63) != 63) {
			/* Pinned beside shipd's loop, a spin must leave it the CPU. */
			if (c->o.pin_to_loop)
				sched_yield();
			else
				cpu_relax();
			continue;
		}
		now = now_ns();
		if (now >= deadline)
			return sl_err_set(ETIMEDOUT, "timed out after %d ms", timeout_ms);
		if (now < spin_end) {
			if (now >= next_live) {
				next_live = now + LIVENESS_NS;
				gone = conn_gone(c);
			}
		} else {
			arm(c, arg);
			if ((rc = cond(c, arg)) != 0)
				return rc < 0 ? rc : 0;
			gone =
			    typical ? sleep_futex(c, cond, arg, deadline) : sleep_once(c, deadline);
		}
		if (gone) {
			if (!resumable) {
				unmap_conn(c);
				return sl_err_set(ENOTCONN, "shipd at %s went away", c->path);
			}
			if ((rc = reconnect(c)))
				return rc;
		}
	}
}

/* ---- the stream ---- */

static int check_level(const struct sl_client *c, enum sl_client_level level)
{
	uint32_t flags;

	if ((unsigned)level >= SL_SHM_LEVELS)
		return sl_err_set(EINVAL, "unknown level %d", (int)level);
	flags = atomic_load_explicit(&c->node->flags, memory_order_relaxed);
	if (level <= SL_LEVEL_APPLIED && !(flags & SL_SHM_F_LEADER))
		return sl_err_set(ENOTSUP,
				  "level %s is a leader's view: node %" PRIu32
				  " follows (wait for committed or applied_here)",
				  sl_client_level_name(level), c->node_id);
	return 0;
}

/* 1 reached, 0 not yet, -ESTALE when the leadership changed before an LSN
 * this client appended reached a leader's level (the level is read before
 * the epoch, which shipd publishes first: an unchanged epoch means the level
 * is the appending leader's). */
static int level_reached(const struct sl_client *c, uint64_t lsn, enum sl_client_level level)
{
	int reached = atomic_load_explicit(&c->node->level_lsn[level], memory_order_acquire) >= lsn;
	uint64_t epoch;

	if (level == SL_LEVEL_APPLIED_HERE || !c->fence_epoch || lsn < c->fence_lo ||
	    lsn > c->fence_hi)
		return reached;
	epoch = atomic_load_explicit(&c->node->epoch, memory_order_acquire);
	if (epoch == c->fence_epoch)
		return reached;
	return sl_err_set(ESTALE,
			  "lsn %" PRIu64 " was appended in epoch %" PRIu64
			  ", and the leadership moved on (epoch %" PRIu64 ", leader %" PRIu32
			  ") before it was %s: it may be lost or committed",
			  lsn, c->fence_epoch, epoch, atomic_load(&c->node->leader_id),
			  sl_client_level_name(level));
}

int sl_client_reached(struct sl_client *c, uint64_t lsn, enum sl_client_level level)
{
	int rc;

	if (!c || lsn == 0)
		return sl_err_set(EINVAL, "sl_client_reached: %s", c ? "LSN 0" : "no client");
	if ((rc = ensure_conn(c)) || (rc = check_level(c, level)))
		return rc;
	if (atomic_load(&c->node->flags) & SL_SHM_F_FAILED)
		return sl_err_set(EIO, "node %" PRIu32 ": its log failed", c->node_id);
	return level_reached(c, lsn, level);
}

struct level_wait {
	uint64_t lsn;
	enum sl_client_level level;
};

static int cond_level(struct sl_client *c, const void *arg)
{
	const struct level_wait *w = arg;
	int rc = level_reached(c, w->lsn, w->level);

	if (rc != 0)
		return rc;
	if (atomic_load_explicit(&c->node->flags, memory_order_relaxed) & SL_SHM_F_FAILED)
		return sl_err_set(EIO, "node %" PRIu32 ": its log failed", c->node_id);
	return 0;
}

static void arm_level(struct sl_client *c, const void *arg)
{
	const struct level_wait *w = arg;

	atomic_store(&c->sess->wake_lsn[w->level], w->lsn);
	fence_armed();
}

/* A commit cannot happen while the record sits in the open batch. */
static void request_flush(struct sl_client *c, uint64_t lsn, enum sl_client_level level)
{
	if (level == SL_LEVEL_APPLIED_HERE || lsn <= c->sealed_lsn ||
	    !(atomic_load_explicit(&c->node->flags, memory_order_relaxed) & SL_SHM_F_LEADER) ||
	    atomic_load_explicit(&c->node->next_lsn, memory_order_relaxed) > lsn)
		return;
	atomic_fetch_add(&c->sess->flush_req, 1);
	ring_doorbell(c);
}

int sl_client_wait(struct sl_client *c, uint64_t lsn, enum sl_client_level level, int timeout_ms)
{
	struct level_wait w = {.lsn = lsn, .level = level};
	int rc = sl_client_reached(c, lsn, level);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (timeout_ms == 0)
		return sl_err_set(ETIMEDOUT, "lsn %" PRIu64 " has not reached %s", lsn,
				  sl_client_level_name(level));
	request_flush(c, lsn, level);
	rc = wait_cond(c, cond_level, arm_level, &w, timeout_ms, 1, &c->typical[1]);
	if (c->sess)
		atomic_store(&c->sess->wake_lsn[level], 0);
	if (rc == -ETIMEDOUT)
		sl_err_wrap(rc, "waiting for lsn %" PRIu64 " to reach %s", lsn,
			    sl_client_level_name(level));
	return rc;
}

int sl_client_fd(const struct sl_client *c)
{
	return c ? c->epfd : sl_err_set(EINVAL, "sl_client_fd: no client");
}

int sl_client_arm(struct sl_client *c, uint64_t lsn, enum sl_client_level level)
{
	struct level_wait w = {.lsn = lsn, .level = level};
	int rc = sl_client_reached(c, lsn, level);

	if (rc != 0)
		return rc;
	request_flush(c, lsn, level);
	arm_level(c, &w);
	return level_reached(c, lsn, level);
}

int sl_client_dispatch(struct sl_client *c)
{
	if (!c)
		return sl_err_set(EINVAL, "sl_client_dispatch: no client");
	drain_efd(c);
	if (c->sock >= 0 && !conn_gone(c))
		return 0;
	return reconnect(c);
}

int sl_client_info(struct sl_client *c, struct sl_client_info *out)
{
	const struct sl_shm_node *n;
	int rc;

	if (!c || !out)
		return sl_err_set(EINVAL, "sl_client_info: NULL argument");
	if ((rc = ensure_conn(c)))
		return rc;
	n = c->node;
	c->epoch = atomic_load(&n->epoch);
	c->leader_id = atomic_load(&n->leader_id);
	*out = (struct sl_client_info){
	    .stream_id = n->stream_id,
	    .node_id = n->node_id,
	    .leader_id = c->leader_id,
	    .epoch = c->epoch,
	    .leader = !!(atomic_load(&n->flags) & SL_SHM_F_LEADER),
	    .max_record_bytes = n->max_record_bytes,
	    .ring_bytes = c->ap_bytes,
	    .next_lsn = atomic_load(&n->next_lsn),
	    .commit_lsn = atomic_load(&n->level_lsn[SL_LEVEL_COMMITTED]),
	    .durable_lsn = atomic_load(&n->durable_lsn),
	    .applied_lsn = atomic_load(&n->level_lsn[SL_LEVEL_APPLIED_HERE]),
	    .consumed_lsn = c->consumed_lsn,
	    .reconnects = c->reconnects,
	};
	return 0;
}

uint64_t sl_client_epoch(const struct sl_client *c)
{
	return c && c->node ? atomic_load(&c->node->epoch) : 0;
}

uint32_t sl_client_leader(const struct sl_client *c)
{
	if (!c)
		return 0;
	return c->node ? atomic_load(&c->node->leader_id) : c->leader_id;
}

/* ---- appending ---- */

static uint64_t entry_bytes(const struct iovec *recs, unsigned n)
{
	uint64_t b = sizeof(struct sl_shm_append);

	for (unsigned i = 0; i < n; i++)
		b += sl_shm_pad(sizeof(uint32_t) + recs[i].iov_len);
	return b;
}

static int check_records(const struct sl_client *c, const struct iovec *recs, unsigned n)
{
	if (!recs || n == 0)
		return sl_err_set(EINVAL, "append: no records");
	for (unsigned i = 0; i < n; i++) {
		if (!recs[i].iov_base || recs[i].iov_len == 0)
			return sl_err_set(EINVAL, "append: record %u is %s", i,
					  recs[i].iov_base ? "empty" : "NULL");
		if (recs[i].iov_len > c->max_record)
			return sl_err_set(EMSGSIZE,
					  "append: record %u has %zu bytes, over the stream's "
					  "max_record_bytes %" PRIu32,
					  i, recs[i].iov_len, c->max_record);
	}
	return 0;
}

static int not_leader(struct sl_client *c)
{
	c->leader_id = atomic_load(&c->node->leader_id);
	c->epoch = atomic_load(&c->node->epoch);
	return sl_err_set(EPERM,
			  "append: node %" PRIu32 " is not the leader: node %" PRIu32
			  " leads (epoch %" PRIu64 ")",
			  c->node_id, c->leader_id, c->epoch);
}

static void write_entry(struct sl_client *c, const struct iovec *recs, unsigned n, uint64_t bytes,
			unsigned flags, uint32_t wait)
{
	uint8_t *p = c->ap + c->ap_tail % c->ap_bytes; /* contiguous: the ring is mapped twice */
	struct sl_shm_append *e = (struct sl_shm_append *)p;
	uint8_t *q = p + sizeof(*e);

	e->bytes = (uint32_t)bytes;
	e->count = n;
	e->seq = ++c->seq;
	e->flags = flags & (SL_APPEND_FLUSH | SL_APPEND_NONBLOCK);
	e->wait = wait;
	for (unsigned i = 0; i < n; i++) {
		uint32_t len = (uint32_t)recs[i].iov_len;

		memcpy(q, &len, sizeof(len));
		memcpy(q + sizeof(len), recs[i].iov_base, len);
		q += sl_shm_pad(sizeof(len) + len);
	}
	c->ap_tail += bytes;
	atomic_store_explicit(&c->sess->ap_tail, c->ap_tail, memory_order_release);
	ring_doorbell(c);
}

/* shipd finished the entry numbered *arg: took it, or (NONBLOCK, no
 * window room) refused it with -EAGAIN in done_err. */
static int cond_done(struct sl_client *c, const void *arg)
{
	return atomic_load_explicit(&c->sess->done_seq, memory_order_acquire) >=
	       *(const uint64_t *)arg;
}

static void arm_done(struct sl_client *c, const void *arg)
{
	atomic_store(&c->sess->wake_seq, *(const uint64_t *)arg);
	fence_armed();
}

/* Room for `bytes` in the append ring (shipd frees what it finished). */
static int cond_room(struct sl_client *c, const void *arg)
{
	uint64_t bytes = *(const uint64_t *)arg;

	return c->ap_tail - atomic_load_explicit(&c->sess->ap_head, memory_order_acquire) + bytes <=
	       c->ap_bytes;
}

static void arm_room(struct sl_client *c, const void *arg)
{
	(void)arg;
	atomic_store(&c->sess->wake_seq, c->seq);
	fence_armed();
}

/* Checks and writes one entry (waiting up to timeout_ms for ring room):
 * 0 when published (its seq is c->seq), or -errno with nothing appended. */
static int submit(struct sl_client *c, const struct iovec *recs, unsigned n, unsigned flags,
		  uint32_t wait, int timeout_ms)
{
	uint64_t bytes;
	int rc;

	if ((rc = ensure_conn(c)) || (rc = check_records(c, recs, n)))
		return rc;
	if (!(atomic_load(&c->node->flags) & SL_SHM_F_LEADER))
		return not_leader(c);
	if (atomic_load(&c->node->flags) & SL_SHM_F_FAILED)
		return sl_err_set(EIO, "append: node %" PRIu32 ": its log failed", c->node_id);
	bytes = entry_bytes(recs, n);
	if (bytes > c->ap_bytes)
		return sl_err_set(EMSGSIZE,
				  "append: %u records take %" PRIu64
				  " bytes in the ring, which holds %" PRIu32,
				  n, bytes, c->ap_bytes);
	if (!cond_room(c, &bytes)) {
		if (flags & SL_APPEND_NONBLOCK)
			return sl_err_set(EAGAIN, "append: the ring is full");
		if ((rc = wait_cond(c, cond_room, arm_room, &bytes, timeout_ms, 0, NULL)))
			return sl_err_wrap(rc, "append");
	}
	if ((flags & SL_APPEND_NONBLOCK) && (atomic_load(&c->node->flags) & SL_SHM_F_FULL))
		return sl_err_set(EAGAIN, "append: the replication window is full");
	write_entry(c, recs, n, bytes, flags, wait);
	return 0;
}

/* shipd finished our last entry: its first LSN, or why it refused it. */
static int64_t entry_result(struct sl_client *c, unsigned n, unsigned flags)
{
	int64_t lsn;
	uint64_t e;
	int rc;

	if ((rc = atomic_load(&c->sess->done_err)) < 0) {
		if (rc == -EPERM)
			return not_leader(c);
		if (rc == -EAGAIN)
			return sl_err_set(EAGAIN, "append: the replication window is full");
		return sl_err_set(-rc, "append: shipd refused it: %s", strerror(-rc));
	}
	lsn = (int64_t)atomic_load(&c->sess->done_lsn);
	e = atomic_load(&c->sess->done_epoch);
	if (e != c->fence_epoch) {
		c->fence_epoch = e;
		c->fence_lo = (uint64_t)lsn;
	}
	c->fence_hi = (uint64_t)lsn + n - 1;
	if (flags & SL_APPEND_FLUSH)
		c->sealed_lsn = (uint64_t)lsn + n - 1;
	return lsn;
}

int64_t sl_client_appendv(struct sl_client *c, const struct iovec *recs, unsigned n, unsigned flags)
{
	uint64_t seq;
	int rc;

	if (!c)
		return sl_err_set(EINVAL, "append: no client");
	if (flags & ~(SL_APPEND_NONBLOCK | SL_APPEND_FLUSH))
		return sl_err_set(EINVAL, "append: unknown flags 0x%x", flags);
	if ((rc = submit(c, recs, n, flags, 0, -1)))
		return rc;
	seq = c->seq;
	rc = wait_cond(c, cond_done, arm_done, &seq, -1, 0, &c->typical[0]);
	if (c->sess)
		atomic_store(&c->sess->wake_seq, 0);
	if (rc)
		return rc == -ENOTCONN ? sl_err_wrap(rc, "append: whether shipd took it is unknown")
				       : rc;
	return entry_result(c, n, flags);
}

/* ---- appending and waiting in one call ---- */

struct append_wait {
	uint64_t seq;
	enum sl_client_level level;
	unsigned flags;
	int64_t lsn; /* 0 until shipd took the entry, then its LSN or -errno */
};

/* Until shipd takes the entry, its refusal is what we wait for; once it
 * has, the level (whose wake-up shipd armed as it took it). */
static int cond_append_wait(struct sl_client *c, const void *arg)
{
	struct append_wait *w = (struct append_wait *)arg;

	if (w->lsn == 0) {
		if (atomic_load_explicit(&c->sess->done_seq, memory_order_acquire) < w->seq)
			return 0;
		w->lsn = entry_result(c, 1, w->flags);
	}
	if (w->lsn < 0)
		return (int)w->lsn;
	return cond_level(c, &(struct level_wait){.lsn = (uint64_t)w->lsn, .level = w->level});
}

/* Before shipd took the entry: wake us for it only if it refuses it. After:
 * nothing to arm, shipd armed the level's wake-up before it showed the LSN
 * (and only it clears that, signalling us). */
static void arm_append_wait(struct sl_client *c, const void *arg)
{
	const struct append_wait *w = arg;

	if (w->lsn == 0)
		atomic_store(&c->sess->wake_seq, w->seq | SL_SHM_WAKE_QUIET);
	fence_armed();
}

int64_t sl_client_append_wait(struct sl_client *c, const void *rec, uint32_t len,
			      enum sl_client_level level, int timeout_ms)
{
	struct iovec v = {.iov_base = (void *)rec, .iov_len = len};
	struct append_wait w = {.level = level};
	int rc;

	if (!c)
		return sl_err_set(EINVAL, "append_wait: no client");
	if ((unsigned)level >= SL_SHM_LEVELS)
		return sl_err_set(EINVAL, "append_wait: unknown level %d", (int)level);
	if (timeout_ms == 0)
		return sl_err_set(EINVAL, "append_wait: a timeout of 0 leaves no time to commit "
					  "(sl_client_append does not wait)");
	/* A commit cannot happen while the record sits in the open batch. */
	w.flags = level == SL_LEVEL_APPLIED_HERE ? 0 : SL_APPEND_FLUSH;
	if ((rc = submit(c, &v, 1, w.flags, (uint32_t)level + 1, timeout_ms)))
		return rc;
	w.seq = c->seq;
	rc = wait_cond(c, cond_append_wait, arm_append_wait, &w, timeout_ms, 0, &c->typical[1]);
	if (c->sess) {
		atomic_store(&c->sess->wake_seq, 0);
		atomic_store(&c->sess->wake_lsn[level], 0);
	}
	if (rc == -ENOTCONN)
		return sl_err_wrap(rc, "append_wait: whether shipd took it is unknown");
	if (rc == -ETIMEDOUT && w.lsn > 0)
		return sl_err_wrap(rc, "append_wait: lsn %" PRId64 " has not reached %s", w.lsn,
				   sl_client_level_name(level));
	if (rc == -ETIMEDOUT)
		return sl_err_wrap(rc, "append_wait: shipd has not taken the record yet (it "
				       "still may: its LSN is unknown)");
	return rc ? rc : w.lsn;
}

int64_t sl_client_append(struct sl_client *c, const void *rec, uint32_t len, unsigned flags)
{
	struct iovec v = {.iov_base = (void *)rec, .iov_len = len};

	return sl_client_appendv(c, &v, 1, flags);
}

/* ---- consuming ---- */

static int check_consumer(const struct sl_client *c, const char *what)
{
	if (!c)
		return sl_err_set(EINVAL, "%s: no client", what);
	if (!c->o.consumer)
		return sl_err_set(EINVAL, "%s: this client did not open as the consumer", what);
	return 0;
}

static int cond_records(struct sl_client *c, const void *arg)
{
	(void)arg;
	return atomic_load_explicit(&c->sess->dl_tail, memory_order_acquire) > c->dl_read;
}

static void arm_records(struct sl_client *c, const void *arg)
{
	(void)arg;
	atomic_store(&c->sess->wake_consume, 1);
	ring_doorbell(c);
}

int sl_client_arm_consume(struct sl_client *c)
{
	int rc;

	if ((rc = check_consumer(c, "sl_client_arm_consume")) || (rc = ensure_conn(c)))
		return rc;
	if (cond_records(c, NULL))
		return 1;
	arm_records(c, NULL);
	return cond_records(c, NULL);
}

/* Hand out the entries in [dl_read, tail) as views, checking each. */
static int take_records(struct sl_client *c, struct sl_client_rec *recs, unsigned max)
{
	uint64_t tail = atomic_load_explicit(&c->sess->dl_tail, memory_order_acquire);
	unsigned n = 0;

	while (n < max && c->dl_read < tail) {
		const struct sl_shm_deliver *d =
		    (const struct sl_shm_deliver *)(c->dl + c->dl_read % c->dl_bytes);

		if (d->bytes < sizeof(*d) || d->bytes > tail - c->dl_read ||
		    d->bytes != sl_shm_pad(sizeof(*d) + d->len) || d->lsn != c->consumed_lsn + 1)
			return sl_err_set(EPROTO,
					  "delivery ring: bad entry after lsn %" PRIu64
					  " (lsn %" PRIu64 ", %" PRIu32 " bytes)",
					  c->consumed_lsn, d->lsn, d->bytes);
		recs[n++] = (struct sl_client_rec){.lsn = d->lsn, .data = d + 1, .len = d->len};
		c->consumed_lsn = d->lsn;
		c->dl_read += d->bytes;
	}
	return (int)n;
}

int sl_client_consume(struct sl_client *c, struct sl_client_rec *recs, unsigned max, int timeout_ms)
{
	int rc;

	if ((rc = check_consumer(c, "consume")))
		return rc;
	if (!recs || max == 0)
		return sl_err_set(EINVAL, "consume: no room for records");
	sl_shm_unmap_ring(c->old_dl, c->old_dl_bytes); /* releases views of an old session */
	c->old_dl = NULL;
	c->old_dl_bytes = 0;
	if ((rc = ensure_conn(c)))
		return rc;
	atomic_store_explicit(&c->sess->dl_head, c->dl_read, memory_order_release);
	if (!cond_records(c, NULL)) {
		if (timeout_ms == 0)
			return 0;
		rc = wait_cond(c, cond_records, arm_records, NULL, timeout_ms, 1, NULL);
		if (c->sess)
			atomic_store(&c->sess->wake_consume, 0);
		if (rc == -ETIMEDOUT)
			return 0;
		if (rc)
			return rc;
	}
	return take_records(c, recs, max);
}

int sl_client_applied(struct sl_client *c, uint64_t lsn)
{
	int rc;

	if (!c)
		return sl_err_set(EINVAL, "applied: no client");
	if ((rc = ensure_conn(c)))
		return rc;
	if (lsn < c->applied_lsn)
		return sl_err_set(EINVAL, "applied: lsn %" PRIu64 " is behind %" PRIu64 " already",
				  lsn, c->applied_lsn);
	if (c->o.consumer ? lsn > c->consumed_lsn
			  : !(atomic_load(&c->node->flags) & SL_SHM_F_LEADER))
		return sl_err_set(EINVAL,
				  c->o.consumer ? "applied: lsn %" PRIu64
						  " was not consumed (consumed up to %" PRIu64 ")"
						: "applied: lsn %" PRIu64
						  ": only the consumer applies on a follower "
						  "(%" PRIu64 ")",
				  lsn, c->consumed_lsn);
	c->applied_lsn = lsn;
	atomic_store_explicit(&c->sess->applied_lsn, lsn, memory_order_release);
	ring_doorbell(c);
	return 0;
}
