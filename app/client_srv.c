/* shipd's side of libshiplog; see app/client_srv.h and docs/client.md.
 *
 * Hot work (every turn, shared memory only, no system call unless a client
 * must be woken): take append entries, honour flush requests and applied
 * acknowledgements, feed the consumer's ring, publish the node page and
 * signal armed waiters. Housekeeping (accepting, handshakes, hang-ups) runs
 * when epoll says so, looked at most once a millisecond or after a sleep.
 *
 * Everything a client writes is untrusted: ring offsets and entry sizes are
 * checked against the ring and the stream's limits, and a client that
 * breaks the format is cut off. The memfds are sealed against shrinking, so
 * a client cannot make shipd's mappings fault. */
#include "client_srv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../client/shm.h"
#include "shiplog/client.h"
#include "shiplog/err.h"
#include "shiplog/log.h"
#include "shiplog/quorum.h"

#define HOUSEKEEP_NS   1000000ull    /* epoll looked at this often while busy */
#define HELLO_NS       2000000000ull /* a connection must greet within this */
#define ENTRY_BUDGET   64	     /* append entries per client per turn */
#define DELIVER_BUDGET 4096	     /* records per turn into the consumer's ring */
#define ACCEPT_BUDGET  8
#define EV_LISTEN      UINT64_MAX
#define EV_DOORBELL    (UINT64_MAX - 1)

struct sess {
	int used, ready; /* ready: handshake done */
	int sock, efd;
	int consumer;
	int pid;
	uint64_t hello_deadline;
	struct sl_shm_sess *pg;
	uint8_t *ap, *dl;
	uint32_t ap_bytes, dl_bytes;
	uint64_t ap_head, seq; /* next expected entry: seq + 1 */
	uint64_t quiet_seq;    /* the last append-and-wait entry taken: its wake is armed */
	uint32_t part_done;    /* records of the head entry appended (a vector) */
	uint64_t part_first;
	uint32_t flush_seen;
	uint64_t applied_seen;
	uint64_t dl_tail, sent_lsn; /* consumer */
	int hung_up;
};

struct sl_csrv {
	struct sl_node *node;
	struct sl_csrv_opts o;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lsock, epfd, doorbell, node_fd;
	struct sl_shm_node *np;
	uint32_t max_record;
	int leader;
	uint64_t epoch;	     /* the node's, as of its last role change */
	uint64_t woke_epoch; /* waiters were woken for this epoch's change */
	struct sess *s;
	unsigned n;
	int consumer; /* session index or -1 */
	int partial;  /* session index with a half-appended vector, or -1 */
	unsigned rr;  /* round robin start */
	uint64_t next_housekeep;
	int woke;
	/* what the node page shows */
	uint64_t commit_lsn, delivered_lsn, applied_here;
	uint64_t consumer_applied; /* the consumers' acknowledgements, across sessions */
	/* the consumer's current batch (live or read back from the log) */
	uint8_t *batch_buf, *raw_buf;
	size_t batch_cap, raw_cap;
	const uint8_t *cur, *cur_end; /* records not yet in the ring */
	uint64_t cur_lsn;	      /* LSN of the record at cur */
	struct sl_csrv_stats st;
};

/* ---- sessions ---- */

static void sess_free(struct sl_csrv *s, unsigned i)
{
	struct sess *x = &s->s[i];

	if (!x->used)
		return;
	if (x->sock >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, x->sock, NULL);
		close(x->sock);
	}
	if (x->efd >= 0)
		close(x->efd);
	if (x->pg)
		munmap(x->pg, sizeof(*x->pg));
	sl_shm_unmap_ring(x->ap, x->ap_bytes);
	sl_shm_unmap_ring(x->dl, x->dl_bytes);
	if (s->consumer == (int)i) {
		s->consumer = -1;
		s->cur = s->cur_end = NULL;
	}
	if (x->ready)
		s->st.clients--, s->st.closed++;
	*x = (struct sess){.sock = -1, .efd = -1};
}

/* A client gone or misbehaving. A half-appended vector is finished first:
 * its first LSNs are in the log already and the rest must follow them. */
static void sess_drop(struct sl_csrv *s, unsigned i, const char *why)
{
	struct sess *x = &s->s[i];

	if (x->ready)
		sl_debug("client pid %d%s: %s", x->pid, x->consumer ? " (consumer)" : "", why);
	if (s->partial == (int)i) {
		x->hung_up = 1;
		return;
	}
	sess_free(s, i);
}

/* Signal a client: by futex when it sleeps on wake_word, else by its
 * eventfd. The bump, then the flag (seq_cst): Dekker with the client, which
 * sets the flag, then reads the word it will sleep on. */
static void kick(struct sl_csrv *s, struct sess *x)
{
	atomic_fetch_add(&x->pg->wake_word, 1);
	if (atomic_load(&x->pg->futex_wait))
		sl_shm_futex_wake(&x->pg->wake_word);
	else
		sl_shm_kick(x->efd);
	s->st.kicks++;
}

static uint32_t ring_size(uint32_t want, uint32_t max_record)
{
	uint64_t need = sizeof(struct sl_shm_append) + sl_shm_pad(sizeof(uint32_t) + max_record);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), b = want > need ? want : need;

	if (need < sizeof(struct sl_shm_deliver) + sl_shm_pad(max_record))
		need = sizeof(struct sl_shm_deliver) + sl_shm_pad(max_record);
	b = b > need ? b : need;
	return (uint32_t)((b + page - 1) / page * page);
}

static void refuse(struct sl_csrv *s, struct sess *x, int err, const char *msg)
{
	struct sl_shm_welcome w = {.magic = SL_SHM_MAGIC, .version = SL_SHM_VERSION, .err = -err};

	snprintf(w.msg, sizeof(w.msg), "%s", msg);
	sl_shm_send(x->sock, &w, sizeof(w), NULL, 0);
	s->st.refused++;
}

static int map_sess(struct sess *x, int *fds, uint32_t ring)
{
	void *p;
	int rc;

	if ((fds[1] = sl_shm_memfd("shiplog-session", sizeof(struct sl_shm_sess))) < 0)
		return fds[1];
	p = mmap(NULL, sizeof(struct sl_shm_sess), PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (p == MAP_FAILED)
		return sl_err_set(errno, "mapping a session page: %s", strerror(errno));
	x->pg = p;
	if ((fds[2] = sl_shm_memfd("shiplog-append", ring)) < 0)
		return fds[2];
	if ((rc = sl_shm_map_ring(fds[2], ring, &p)))
		return rc;
	x->ap = p;
	x->ap_bytes = ring;
	if (!x->consumer)
		return 0;
	if ((fds[3] = sl_shm_memfd("shiplog-deliver", ring)) < 0)
		return fds[3];
	if ((rc = sl_shm_map_ring(fds[3], ring, &p)))
		return rc;
	x->dl = p;
	x->dl_bytes = ring;
	return 0;
}

static void publish(struct sl_csrv *s);

/* The records after `resume` must still be in this node's log, or arrive. */
static int resumable(struct sl_csrv *s, uint64_t resume, char *msg, size_t cap)
{
	struct sl_store_info si;

	sl_node_store_info(s->node, &si);
	if (si.first_lsn < si.next_lsn && resume + 1 < si.first_lsn) {
		snprintf(msg, cap,
			 "records after lsn %" PRIu64 " are gone from node %" PRIu32
			 "'s log (it starts at lsn %" PRIu64 ")",
			 resume, sl_node_get_config(s->node)->proto.node_id, si.first_lsn);
		return 0;
	}
	return 1;
}

static void welcome(struct sl_csrv *s, unsigned i, const struct sl_shm_hello *h, int efd)
{
	struct sess *x = &s->s[i];
	uint32_t ring = ring_size(s->o.ring_bytes, s->max_record);
	struct sl_shm_welcome w = {.magic = SL_SHM_MAGIC, .version = SL_SHM_VERSION};
	int fds[SL_SHM_FDS] = {s->node_fd, -1, -1, -1, -1}, nfds, rc;
	char msg[SL_SHM_MSG_MAX];

	x->consumer = !!(h->flags & SL_SHM_HELLO_CONSUMER);
	if (x->consumer && s->consumer >= 0) {
		snprintf(msg, sizeof(msg), "a consumer is already connected (pid %d)",
			 s->s[s->consumer].pid);
		refuse(s, x, EBUSY, msg);
		close(efd);
		sess_free(s, i);
		return;
	}
	if (x->consumer && !resumable(s, h->resume_lsn, msg, sizeof(msg))) {
		refuse(s, x, ERANGE, msg);
		close(efd);
		sess_free(s, i);
		return;
	}
	x->efd = efd;
	if ((rc = map_sess(x, fds, ring))) {
		refuse(s, x, -rc, sl_err_msg());
		goto drop;
	}
	w.ap_bytes = x->ap_bytes;
	w.dl_bytes = x->dl_bytes;
	nfds = x->consumer ? 4 : 3;
	fds[nfds++] = s->doorbell;
	publish(s); /* not kept up while nobody is connected */
	rc = sl_shm_send(x->sock, &w, sizeof(w), fds, nfds);
	for (int k = 1; k < SL_SHM_FDS; k++)
		if (fds[k] >= 0 && fds[k] != s->doorbell)
			close(fds[k]);
	if (rc) {
		sl_err_set(-rc, "welcome: %s", strerror(-rc));
		goto drop;
	}
	x->ready = 1;
	s->st.clients++;
	s->st.accepted++;
	if (x->consumer) {
		s->consumer = (int)i;
		x->sent_lsn = h->resume_lsn;
		s->cur = s->cur_end = NULL;
	}
	sl_info("client pid %d connected%s", x->pid, x->consumer ? " as the consumer" : "");
	return;
drop:
	for (int k = 1; k < SL_SHM_FDS; k++)
		if (fds[k] >= 0 && fds[k] != s->doorbell)
			close(fds[k]);
	sl_warn("client pid %d: %s", x->pid, sl_err_msg());
	sess_free(s, i);
}

/* The connection's first message. */
static void read_hello(struct sl_csrv *s, unsigned i)
{
	struct sess *x = &s->s[i];
	struct sl_shm_hello h;
	int fds[SL_SHM_FDS], nfds = 0;
	int n = sl_shm_recv(x->sock, &h, sizeof(h), fds, &nfds, 1);

	if (n == -EAGAIN)
		return;
	if (n != (int)sizeof(h) || nfds != 1 || h.magic != SL_SHM_MAGIC ||
	    h.version != SL_SHM_VERSION) {
		for (int k = 0; k < nfds; k++)
			close(fds[k]);
		if (n > 0)
			refuse(s, x, EPROTO, "unknown client protocol version");
		sess_free(s, i);
		return;
	}
	welcome(s, i, &h, fds[0]);
}

static void accept_some(struct sl_csrv *s, uint64_t now)
{
	for (int k = 0; k < ACCEPT_BUDGET; k++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		int fd = accept4(s->lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned i;

		if (fd < 0)
			return;
		for (i = 0; i < s->n && s->s[i].used; i++)
			;
		if (i == s->n) {
			struct sess tmp = {.sock = fd};

			refuse(s, &tmp, EMFILE,
			       "shipd serves no more clients ([client] max_clients)");
			close(fd);
			continue;
		}
		s->s[i] = (struct sess){
		    .used = 1, .sock = fd, .efd = -1, .hello_deadline = now + HELLO_NS};
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
			s->s[i].pid = (int)cred.pid;
		ev.data.u64 = i;
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
		read_hello(s, i); /* usually there already */
	}
}

/* A ready client sends nothing after its hello: readable means gone. */
static void sock_event(struct sl_csrv *s, unsigned i)
{
	struct sess *x = &s->s[i];
	char b[64];
	int fds[SL_SHM_FDS], nfds;

	if (!x->used)
		return;
	if (!x->ready) {
		read_hello(s, i);
		return;
	}
	if (sl_shm_recv(x->sock, b, sizeof(b), fds, &nfds, 1) == -EAGAIN)
		return;
	for (int k = 0; k < nfds; k++)
		close(fds[k]);
	sess_drop(s, i, "disconnected");
}

static void housekeep(struct sl_csrv *s, uint64_t now)
{
	struct epoll_event ev[16];
	int n = epoll_wait(s->epfd, ev, 16, 0);

	for (int k = 0; k < n; k++) {
		if (ev[k].data.u64 == EV_LISTEN)
			accept_some(s, now);
		else if (ev[k].data.u64 < s->n)
			sock_event(s, (unsigned)ev[k].data.u64);
	}
	{
		uint64_t v;
		ssize_t r = read(s->doorbell, &v, sizeof(v));

		(void)r;
	}
	for (unsigned i = 0; i < s->n; i++)
		if (s->s[i].used && !s->s[i].ready && now > s->s[i].hello_deadline)
			sess_free(s, i);
}

/* ---- appends ---- */

static void finish_entry(struct sl_csrv *s, struct sess *x, const struct sl_shm_append *e,
			 uint64_t first, int err)
{
	x->ap_head += e->bytes;
	x->seq = e->seq;
	x->part_done = 0;
	atomic_store_explicit(&x->pg->done_lsn, first, memory_order_relaxed);
	atomic_store_explicit(&x->pg->done_err, err, memory_order_relaxed);
	atomic_store_explicit(&x->pg->done_epoch, s->epoch, memory_order_relaxed);
	atomic_store_explicit(&x->pg->done_seq, e->seq, memory_order_release);
	atomic_store_explicit(&x->pg->ap_head, x->ap_head, memory_order_release);
	if (s->partial >= 0 && &s->s[s->partial] == x)
		s->partial = -1;
}

/* Checks an entry against the ring and the stream's limits. */
static int entry_ok(const struct sl_csrv *s, const struct sess *x, const struct sl_shm_append *e,
		    uint64_t avail)
{
	const uint8_t *p = (const uint8_t *)(e + 1), *end = (const uint8_t *)e + e->bytes;

	if (e->bytes < sizeof(*e) || e->bytes > avail || e->bytes % SL_SHM_ALIGN ||
	    e->seq != x->seq + 1 || e->count == 0 || e->wait > SL_SHM_LEVELS)
		return 0;
	for (uint32_t k = 0; k < e->count; k++) {
		uint32_t len;

		if ((size_t)(end - p) < sizeof(len))
			return 0;
		memcpy(&len, p, sizeof(len));
		if (len == 0 || len > s->max_record ||
		    (size_t)(end - p) < sl_shm_pad(sizeof(len) + len))
			return 0;
		p += sl_shm_pad(sizeof(len) + len);
	}
	return p == end;
}

/* An append-and-wait entry was taken: arm the wake-up for its level here,
 * before done_seq shows it and before this turn publishes any level, so no
 * commit can pass unseen; the client then needs no wake-up for the LSN. */
static void arm_entry_wait(struct sess *x, const struct sl_shm_append *e, uint64_t last)
{
	atomic_store_explicit(&x->pg->wake_lsn[e->wait - 1], last, memory_order_relaxed);
	x->quiet_seq = e->seq;
}

/* Appends the head entry's records from part_done on. 1 done, 0 waiting for
 * window room, -1 the client broke the format. */
static int take_entry(struct sl_csrv *s, unsigned i, uint64_t tail)
{
	struct sess *x = &s->s[i];
	struct sl_shm_append *e = (struct sl_shm_append *)(x->ap + x->ap_head % x->ap_bytes);
	const uint8_t *p;
	uint32_t flush;

	if (x->part_done == 0) {
		if (!entry_ok(s, x, e, tail - x->ap_head))
			return -1;
		if (!s->leader) {
			finish_entry(s, x, e, 0, -EPERM);
			return 1;
		}
	}
	p = (const uint8_t *)(e + 1);
	for (uint32_t k = 0; k < e->count; k++) {
		uint32_t len;
		int64_t lsn;

		memcpy(&len, p, sizeof(len));
		if (k >= x->part_done) {
			lsn = sl_node_append(s->node, p + sizeof(len), len);
			if (lsn == -EAGAIN) {
				atomic_fetch_or(&s->np->flags, SL_SHM_F_FULL);
				if (x->part_done == 0 && (e->flags & SL_APPEND_NONBLOCK)) {
					finish_entry(s, x, e, 0, -EAGAIN); /* no room: refused */
					return 1;
				}
				if (x->part_done > 0 && s->partial != (int)i) {
					s->partial = (int)i;
					s->st.vectors_split++;
				}
				return 0;
			}
			if (lsn < 0) {
				if (x->part_done > 0)
					sl_error("client pid %d: a vector stopped after %" PRIu32
						 " of %" PRIu32 " records: %s",
						 x->pid, x->part_done, e->count, sl_err_msg());
				finish_entry(s, x, e, 0, (int)lsn);
				return 1;
			}
			if (x->part_done++ == 0)
				x->part_first = (uint64_t)lsn;
			s->st.appended++;
		}
		p += sl_shm_pad(sizeof(len) + len);
	}
	atomic_fetch_and(&s->np->flags, ~SL_SHM_F_FULL);
	flush = e->flags & SL_APPEND_FLUSH; /* the client may reuse e once finished */
	if (e->wait)
		arm_entry_wait(x, e, x->part_first + e->count - 1);
	/* Its LSNs are known: the client need not wait for the send and write
	 * the flush does, it goes on to wait for the commit meanwhile. */
	finish_entry(s, x, e, x->part_first, 0);
	if (flush)
		sl_node_flush(s->node);
	return 1;
}

/* 0: this session can take no more now (empty, or waiting for room). */
static int appends(struct sl_csrv *s, unsigned i, int *events)
{
	struct sess *x = &s->s[i];

	for (int b = 0; b < ENTRY_BUDGET; b++) {
		uint64_t tail = atomic_load_explicit(&x->pg->ap_tail, memory_order_acquire);
		int rc;

		if (tail == x->ap_head)
			return 1;
		if (tail - x->ap_head > x->ap_bytes) {
			s->st.bad_entries++;
			sess_drop(s, i, "append ring overrun");
			return 1;
		}
		rc = take_entry(s, i, tail);
		if (rc < 0) {
			s->st.bad_entries++;
			sl_warn("client pid %d: malformed append entry: cut off", x->pid);
			sess_free(s, i);
			return 1;
		}
		if (rc == 0)
			return 0;
		(*events)++;
	}
	return 1;
}

/* ---- delivery to the consumer ---- */

static void set_batch(struct sl_csrv *s, const struct sl_batch_hdr *h, const uint8_t *raw,
		      size_t raw_len, uint64_t want)
{
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t len;

	sl_rec_iter_init(&it, raw, raw_len);
	s->cur_lsn = h->base_lsn;
	while (s->cur_lsn < want && sl_rec_next(&it, &rec, &len) == 1)
		s->cur_lsn++;
	s->cur = it.p;
	s->cur_end = it.end;
}

/* The batch holding `lsn`, read back from the log. */
static int load_batch(struct sl_csrv *s, uint64_t lsn)
{
	struct sl_batch_hdr h;
	int n = sl_node_read(s->node, lsn, s->batch_buf, s->batch_cap, &h);

	if (n < 0)
		return n;
	n = sl_batch_decode(s->batch_buf, (size_t)n, &sl_node_get_config(s->node)->proto.limits,
			    s->raw_buf, s->raw_cap, &h);
	if (n < 0)
		return n;
	s->st.catchup_reads++;
	set_batch(s, &h, s->raw_buf, (size_t)n, lsn);
	return 0;
}

static int pump(struct sl_csrv *s)
{
	struct sess *x = &s->s[s->consumer];
	uint64_t head = atomic_load_explicit(&x->pg->dl_head, memory_order_acquire);
	int n = 0;

	if (head > x->dl_tail || x->dl_tail - head > x->dl_bytes)
		return -1;
	while (x->sent_lsn < s->delivered_lsn && n < DELIVER_BUDGET) {
		struct sl_shm_deliver *d;
		uint32_t len, need;
		int rc;

		if (s->cur == s->cur_end || s->cur_lsn != x->sent_lsn + 1) {
			if ((rc = load_batch(s, x->sent_lsn + 1)) < 0) {
				sl_warn("client pid %d: reading lsn %" PRIu64
					" for the consumer: %s",
					x->pid, x->sent_lsn + 1, sl_err_msg());
				return -1;
			}
			if (s->cur == s->cur_end)
				return -1;
		}
		memcpy(&len, s->cur, sizeof(len));
		need = sl_shm_pad(sizeof(*d) + len);
		if (x->dl_bytes - (x->dl_tail - head) < need)
			break;
		d = (struct sl_shm_deliver *)(x->dl + x->dl_tail % x->dl_bytes);
		*d = (struct sl_shm_deliver){.bytes = need, .len = len, .lsn = s->cur_lsn};
		memcpy(d + 1, s->cur + sizeof(len), len);
		x->dl_tail += need;
		s->cur += sizeof(len) + len;
		x->sent_lsn = s->cur_lsn++;
		n++;
	}
	if (n > 0) {
		s->st.delivered += (uint64_t)n;
		atomic_store_explicit(&x->pg->dl_tail, x->dl_tail, memory_order_release);
		/* Dekker with the consumer arming (store, fence, look at the
		 * tail): without the fence the tail could still sit in this
		 * CPU's store buffer while an armed wait is missed, and the
		 * consumer would sleep until the next delivery. */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load(&x->pg->wake_consume)) {
			atomic_store(&x->pg->wake_consume, 0);
			kick(s, x);
		}
	}
	return n;
}

/* ---- applied, flushes, the node page ---- */

static void client_flags(struct sl_csrv *s, unsigned i, int *events)
{
	struct sess *x = &s->s[i];
	uint32_t f = atomic_load_explicit(&x->pg->flush_req, memory_order_relaxed);
	uint64_t a = atomic_load_explicit(&x->pg->applied_lsn, memory_order_acquire);

	if (f != x->flush_seen) {
		x->flush_seen = f;
		if (s->leader)
			sl_node_flush(s->node);
		(*events)++;
	}
	if (a != x->applied_seen) {
		/* A consumer applies only what it was given; LSNs never go back. */
		if (x->consumer && (a > x->sent_lsn || a < x->applied_seen)) {
			s->st.bad_entries++;
			sess_drop(s, i, "applied an LSN it was not delivered");
			return;
		}
		x->applied_seen = a;
		if (x->consumer || s->leader) {
			if (a > s->applied_here)
				s->applied_here = a;
			if (x->consumer && a > s->consumer_applied)
				s->consumer_applied = a;
			if (x->consumer && s->o.apply_by_consumer)
				sl_node_applied(s->node, a);
		}
		(*events)++;
	}
}

static void quorum_levels(struct sl_csrv *s, const struct sl_proto_status *st, uint64_t *lv)
{
	const struct sl_node_config *c = sl_node_get_config(s->node);
	int required = sl_quorum_required(&c->proto.policy, c->proto.n_nodes);
	uint64_t pos[SL_NODES_MAX];

	for (int l = SL_LEVEL_RECEIVED; l <= SL_LEVEL_APPLIED; l++) {
		for (uint32_t k = 0; k < st->n_peers; k++)
			pos[k] = l == SL_LEVEL_RECEIVED	 ? st->peers[k].received_pos
				 : l == SL_LEVEL_DURABLE ? st->peers[k].durable_pos
							 : st->peers[k].applied_pos;
		lv[l] = required < 0
			    ? 0
			    : sl_node_lsn_at(s->node,
					     sl_quorum_commit(&c->proto.policy, st->log_end,
							      st->durable_pos, pos, st->n_peers,
							      (unsigned)required));
	}
}

static void publish(struct sl_csrv *s)
{
	struct sl_proto_status st;
	struct sl_store_info si;
	uint64_t lv[SL_SHM_LEVELS] = {0};
	uint32_t flags;

	sl_node_status(s->node, &st);
	sl_node_store_info(s->node, &si);
	s->leader = st.role == SL_ROLE_LEADER;
	s->epoch = st.epoch;
	if (s->leader)
		quorum_levels(s, &st, lv);
	lv[SL_LEVEL_COMMITTED] = s->leader ? s->commit_lsn : s->delivered_lsn;
	lv[SL_LEVEL_APPLIED_HERE] = s->applied_here;
	flags = atomic_load_explicit(&s->np->flags, memory_order_relaxed) & SL_SHM_F_FULL;
	flags |= (s->leader ? SL_SHM_F_LEADER : 0) | (st.failed ? SL_SHM_F_FAILED : 0);
	atomic_store_explicit(&s->np->epoch, st.epoch, memory_order_relaxed);
	atomic_store_explicit(&s->np->leader_id, st.leader_id, memory_order_relaxed);
	atomic_store_explicit(&s->np->flags, flags, memory_order_relaxed);
	atomic_store_explicit(&s->np->next_lsn, st.next_lsn, memory_order_relaxed);
	atomic_store_explicit(&s->np->durable_lsn, si.durable_lsn, memory_order_relaxed);
	for (int l = 0; l < SL_SHM_LEVELS; l++)
		if (lv[l] > atomic_load_explicit(&s->np->level_lsn[l], memory_order_relaxed))
			atomic_store_explicit(&s->np->level_lsn[l], lv[l], memory_order_release);
}

/* Clears the session's armed level wait if the node page shows it reached:
 * 1 when the client must be signalled. */
static int level_due(struct sl_csrv *s, struct sess *x, int l)
{
	uint64_t w = atomic_load_explicit(&x->pg->wake_lsn[l], memory_order_relaxed);

	return w && atomic_load_explicit(&s->np->level_lsn[l], memory_order_relaxed) >= w &&
	       atomic_compare_exchange_strong(&x->pg->wake_lsn[l], &w, 0);
}

/* Signal the clients whose armed targets were reached. The caller has
 * published the node page and fenced (Dekker with the client: it arms,
 * fences, then looks at the page; one of the two sees the other). */
static void wake_waiters(struct sl_csrv *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct sess *x = &s->s[i];
		int wake = 0;

		if (!x->ready || x->hung_up)
			continue;
		/* A new epoch ends the waits for what an earlier one appended. */
		for (int l = 0; s->epoch != s->woke_epoch && l < SL_SHM_LEVELS; l++)
			wake |= atomic_exchange(&x->pg->wake_lsn[l], 0) != 0;
		for (int l = 0; l < SL_SHM_LEVELS; l++)
			wake |= level_due(s, x, l);
		{
			uint64_t w = atomic_load_explicit(&x->pg->wake_seq, memory_order_relaxed);
			uint64_t seq = w & ~SL_SHM_WAKE_QUIET;

			if (w && x->seq >= seq &&
			    atomic_compare_exchange_strong(&x->pg->wake_seq, &w, 0) &&
			    !((w & SL_SHM_WAKE_QUIET) && seq == x->quiet_seq))
				wake = 1;
		}
		if (wake)
			kick(s, x);
	}
	s->woke_epoch = s->epoch;
}

/* Would wake_waiters signal anyone? Read-only: the node must not sleep
 * while it would. */
static int waiter_due(struct sl_csrv *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct sess *x = &s->s[i];
		uint64_t w;

		if (!x->ready || x->hung_up)
			continue;
		for (int l = 0; l < SL_SHM_LEVELS; l++) {
			w = atomic_load_explicit(&x->pg->wake_lsn[l], memory_order_relaxed);
			if (w &&
			    (s->epoch != s->woke_epoch ||
			     atomic_load_explicit(&s->np->level_lsn[l], memory_order_relaxed) >= w))
				return 1;
		}
		w = atomic_load_explicit(&x->pg->wake_seq, memory_order_relaxed);
		if (w && x->seq >= (w & ~SL_SHM_WAKE_QUIET))
			return 1; /* quiet or not: one more turn clears it */
	}
	return 0;
}

/* ---- the node's poller ---- */

/* The clients' new work: flush requests, applied acknowledgements and
 * appends (a half-appended vector first and alone). Shared memory only: the
 * node calls this several times a turn (struct sl_node_poller's take). */
static int csrv_take(void *arg)
{
	struct sl_csrv *s = arg;
	int events = 0;

	if (s->st.clients == 0 && s->partial < 0)
		return 0;
	if (s->partial >= 0) {
		unsigned p = (unsigned)s->partial;

		appends(s, p, &events);
		if (s->partial < 0 && s->s[p].hung_up)
			sess_free(s, p);
	}
	for (unsigned k = 0; k < s->n; k++) {
		unsigned i = (s->rr + k) % s->n;

		if (!s->s[i].ready || s->s[i].hung_up)
			continue;
		client_flags(s, i, &events);
		if (s->s[i].ready && s->partial < 0)
			appends(s, i, &events);
	}
	s->rr++;
	return events;
}

static int csrv_poll(void *arg, uint64_t now)
{
	struct sl_csrv *s = arg;
	int events = csrv_take(s);

	/* After the appends: the record whose doorbell woke the loop goes
	 * first, the epoll_wait and doorbell read after it. */
	if (s->woke || now >= s->next_housekeep) {
		housekeep(s, now);
		s->next_housekeep = now + HOUSEKEEP_NS;
		s->woke = 0;
	}
	if (s->consumer >= 0) {
		int n = pump(s);

		if (n < 0) {
			s->st.bad_entries++;
			sess_drop(s, (unsigned)s->consumer, "delivery failed");
		} else {
			events += n;
		}
	}
	return events;
}

/* End of the node's turn: what changed in it (commits that storage
 * completions brought included) becomes visible, and armed waiters wake. */
static void csrv_after(void *arg)
{
	struct sl_csrv *s = arg;

	if (s->st.clients == 0 && s->partial < 0)
		return; /* nobody looks: spare the turn */
	publish(s);
	atomic_thread_fence(memory_order_seq_cst); /* the page, then the armed waits */
	wake_waiters(s);
}

/* Anything a client asked for that the next turn would do? */
static int work_pending(struct sl_csrv *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct sess *x = &s->s[i];

		if (!x->ready || x->hung_up)
			continue;
		if (atomic_load(&x->pg->ap_tail) != x->ap_head ||
		    atomic_load(&x->pg->flush_req) != x->flush_seen ||
		    atomic_load(&x->pg->applied_lsn) != x->applied_seen)
			return 1;
		if ((int)i == s->consumer && x->sent_lsn < s->delivered_lsn)
			return 1;
	}
	return 0;
}

static int csrv_sleep(void *arg, int on)
{
	struct sl_csrv *s = arg;

	if (!on) {
		atomic_store(&s->np->sleeping, 0);
		s->woke = 1;
		s->st.wakeups++;
		return 0;
	}
	/* seq_cst: pairs with the clients' fence after they publish work or
	 * arm a wait (a wait armed too late for the last turn's wake_waiters
	 * keeps the node up for one more turn). */
	atomic_store(&s->np->sleeping, 1);
	if (work_pending(s) || waiter_due(s)) {
		atomic_store(&s->np->sleeping, 0);
		return -1;
	}
	return s->epfd;
}

/* ---- the engine's callbacks ---- */

void sl_csrv_on_role(struct sl_csrv *s, enum sl_role role, uint64_t epoch, uint32_t leader_id)
{
	(void)leader_id;
	if (!s)
		return;
	s->leader = role == SL_ROLE_LEADER;
	s->epoch = epoch;
}

/* The commit is published and its waiters are signalled at once rather
 * than at the end of the turn, whose receiving, storage and sending would
 * delay them. Only in the epoch the node page shows already: a client reads
 * a level, then the epoch, to tell whether it is its leader's.
 * Having woken one, the loop yields its CPU once: the scheduler mostly puts
 * a woken client on its waker's CPU, where it would wait for the rest of
 * the turn and the idle spin; yielding lets it run now and hand in its next
 * record before this turn's seal and flush take new work (a no-op when
 * nothing else waits for this CPU). */
void sl_csrv_on_commit(struct sl_csrv *s, uint64_t commit_lsn)
{
	int woke = 0;

	if (!s)
		return;
	s->commit_lsn = commit_lsn;
	if (!s->leader || s->st.clients == 0 ||
	    atomic_load_explicit(&s->np->epoch, memory_order_relaxed) != s->epoch ||
	    atomic_load_explicit(&s->np->level_lsn[SL_LEVEL_COMMITTED], memory_order_relaxed) >=
		commit_lsn)
		return;
	atomic_store_explicit(&s->np->level_lsn[SL_LEVEL_COMMITTED], commit_lsn,
			      memory_order_release);
	atomic_thread_fence(memory_order_seq_cst); /* as in csrv_after */
	for (unsigned i = 0; i < s->n; i++) {
		struct sess *x = &s->s[i];

		if (x->ready && !x->hung_up && level_due(s, x, SL_LEVEL_COMMITTED)) {
			kick(s, x);
			woke = 1;
		}
	}
	if (woke) {
		sched_yield();
		s->st.yields++;
	}
}

/* The consumer is at this batch and has nothing else queued: it takes the
 * records from the delivery instead of reading them back from the log. */
int sl_csrv_wants_records(const struct sl_csrv *s, const struct sl_batch_hdr *h)
{
	uint64_t want;

	if (!s || h->record_count == 0 || s->consumer < 0 || s->cur != s->cur_end ||
	    h->raw_len > s->raw_cap)
		return 0;
	want = s->s[s->consumer].sent_lsn + 1;
	return h->base_lsn <= want && want <= h->base_lsn + h->record_count - 1;
}

void sl_csrv_on_deliver(struct sl_csrv *s, const struct sl_batch_hdr *h, const uint8_t *raw,
			size_t raw_len)
{
	uint64_t last;

	if (!s || h->record_count == 0)
		return;
	last = h->base_lsn + h->record_count - 1;
	if (raw && raw_len <= s->raw_cap && sl_csrv_wants_records(s, h)) {
		memcpy(s->raw_buf, raw, raw_len);
		set_batch(s, h, s->raw_buf, raw_len, s->s[s->consumer].sent_lsn + 1);
	}
	if (last > s->delivered_lsn)
		s->delivered_lsn = last;
	if (!s->o.apply_by_consumer && last > s->applied_here)
		s->applied_here = last; /* no engine: delivered is applied */
	if (s->consumer >= 0 && s->o.apply_by_consumer)
		sl_node_applied(s->node, s->s[s->consumer].applied_seen); /* clamped before */
}

/* ---- opening ---- */

static int listen_on(struct sl_csrv *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat stt;
	int fd, probe;

	if (strlen(s->o.path) >= sizeof(sa.sun_path))
		return sl_err_set(ENAMETOOLONG, "client socket %s: path too long", s->o.path);
	strcpy(sa.sun_path, s->o.path);
	if (lstat(sa.sun_path, &stt) == 0) {
		if (!S_ISSOCK(stt.st_mode))
			return sl_err_set(EEXIST, "client socket %s: exists and is not a socket",
					  sa.sun_path);
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			return sl_err_set(EADDRINUSE, "client socket %s: another shipd serves it",
					  sa.sun_path);
		}
		if (probe >= 0)
			close(probe);
		unlink(sa.sun_path); /* stale, from a crash */
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sl_err_set(errno, "client socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0600) < 0 ||
	    listen(fd, 64) < 0) {
		int err = errno;

		close(fd);
		return sl_err_set(err, "client socket %s: %s", sa.sun_path, strerror(err));
	}
	strcpy(s->path, sa.sun_path);
	s->lsock = fd;
	return 0;
}

static int add_ev(struct sl_csrv *s, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return sl_err_set(errno, "epoll: %s", strerror(errno));
	return 0;
}

static int open_node_page(struct sl_csrv *s)
{
	const struct sl_node_config *c = sl_node_get_config(s->node);
	void *p;

	if ((s->node_fd = sl_shm_memfd("shiplog-node", sizeof(struct sl_shm_node))) < 0)
		return s->node_fd;
	p = mmap(NULL, sizeof(struct sl_shm_node), PROT_READ | PROT_WRITE, MAP_SHARED, s->node_fd,
		 0);
	if (p == MAP_FAILED)
		return sl_err_set(errno, "mapping the node page: %s", strerror(errno));
	s->np = p;
	s->np->magic = SL_SHM_MAGIC;
	s->np->version = SL_SHM_VERSION;
	s->np->stream_id = c->proto.stream_id;
	s->np->node_id = c->proto.node_id;
	s->np->max_record_bytes = c->proto.limits.max_record_bytes;
	s->np->loop_cpu = c->pin_cpu ? (int32_t)c->cpu : -1;
	s->max_record = c->proto.limits.max_record_bytes;
	publish(s);
	return 0;
}

static int alloc_buffers(struct sl_csrv *s)
{
	const struct sl_node_config *c = sl_node_get_config(s->node);

	s->batch_cap = sl_node_batch_max(s->node);
	s->raw_cap = c->proto.limits.max_raw_bytes;
	s->batch_buf = malloc(s->batch_cap);
	s->raw_buf = malloc(s->raw_cap);
	s->s = calloc(s->n, sizeof(*s->s));
	if (!s->batch_buf || !s->raw_buf || !s->s)
		return sl_err_set(ENOMEM, "client server buffers");
	for (unsigned i = 0; i < s->n; i++)
		s->s[i] = (struct sess){.sock = -1, .efd = -1};
	return 0;
}

/* A follower that opened with the engine's applied LSN has delivered up to
 * there already (as far as the protocol is concerned). */
static void start_positions(struct sl_csrv *s)
{
	struct sl_proto_status st;
	uint64_t applied = sl_node_get_config(s->node)->applied_lsn;

	sl_node_status(s->node, &st);
	s->delivered_lsn = st.delivered_lsn;
	s->applied_here = s->consumer_applied = applied;
}

int sl_csrv_open(struct sl_csrv **out, struct sl_node *node, const struct sl_csrv_opts *o)
{
	struct sl_node_poller poller = {
	    .poll = csrv_poll, .after = csrv_after, .sleep = csrv_sleep, .take = csrv_take};
	struct sl_csrv *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return sl_err_set(ENOMEM, "client server");
	s->node = node;
	s->o = *o;
	s->lsock = s->epfd = s->doorbell = s->node_fd = -1;
	s->consumer = s->partial = -1;
	s->n = o->max_clients ? o->max_clients : SL_CSRV_CLIENTS_DEFAULT;
	if (!s->o.ring_bytes)
		s->o.ring_bytes = SL_CSRV_RING_DEFAULT;
	if (!o->path || !*o->path) {
		rc = sl_err_set(EINVAL, "no client socket path");
		goto err;
	}
	start_positions(s);
	if ((rc = alloc_buffers(s)) || (rc = open_node_page(s)) || (rc = listen_on(s)))
		goto err;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epfd < 0 || s->doorbell < 0) {
		rc = sl_err_set(errno, "epoll/eventfd: %s", strerror(errno));
		goto err;
	}
	if ((rc = add_ev(s, s->lsock, EV_LISTEN)) || (rc = add_ev(s, s->doorbell, EV_DOORBELL)))
		goto err;
	s->o.path = NULL;
	poller.arg = s;
	sl_node_set_poller(node, &poller);
	*out = s;
	return 0;
err:
	rc = sl_err_wrap(rc, "client socket");
	sl_csrv_close(s);
	return rc;
}

void sl_csrv_close(struct sl_csrv *s)
{
	if (!s)
		return;
	if (s->np)
		sl_node_set_poller(s->node, NULL);
	for (unsigned i = 0; s->s && i < s->n; i++)
		sess_free(s, i);
	if (s->lsock >= 0) {
		close(s->lsock);
		unlink(s->path);
	}
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->doorbell >= 0)
		close(s->doorbell);
	if (s->np)
		munmap(s->np, sizeof(*s->np));
	if (s->node_fd >= 0)
		close(s->node_fd);
	free(s->s);
	free(s->batch_buf);
	free(s->raw_buf);
	free(s);
}

uint64_t sl_csrv_consumer_applied(const struct sl_csrv *s)
{
	return s ? s->consumer_applied : 0;
}

int sl_csrv_busy(const struct sl_csrv *s)
{
	return s && s->partial >= 0;
}

void sl_csrv_get_stats(const struct sl_csrv *s, struct sl_csrv_stats *out)
{
	if (!s) {
		*out = (struct sl_csrv_stats){0};
		return;
	}
	*out = s->st;
	out->consumer = s->consumer >= 0;
}
