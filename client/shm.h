/* The shared memory between libshiplog and shipd (docs/client.md): the node
 * page shipd publishes to every client, each client's session page, and the
 * two byte rings (append: client -> shipd; delivery: shipd -> consumer), each
 * mapped twice back to back so an entry that wraps is still contiguous. Also
 * the two handshake messages. Private to this version of both sides. */
#ifndef SHIPLOG_CLIENT_SHM_H
#define SHIPLOG_CLIENT_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SHM_MAGIC   0x73686c63u /* "shlc" */
#define SL_SHM_VERSION 6u
#define SL_SHM_LEVELS  5 /* enum sl_client_level */
#define SL_SHM_ALIGN   8 /* every ring entry starts and ends on this */
#define SL_SHM_CACHE   64

/* Written by shipd only; clients map it read-only. */
struct sl_shm_node {
	uint32_t magic, version;
	uint64_t stream_id;
	uint32_t node_id, max_record_bytes;
	int32_t loop_cpu; /* the CPU shipd's loop thread is pinned to, -1: none */
	_Alignas(SL_SHM_CACHE) _Atomic uint64_t epoch;
	_Atomic uint32_t leader_id;
	_Atomic uint32_t flags; /* SL_SHM_F_* */
	_Atomic uint64_t next_lsn;
	_Atomic uint64_t durable_lsn;
	_Atomic uint64_t level_lsn[SL_SHM_LEVELS]; /* highest LSN each level reached */
	/* 1 while shipd idles in the kernel: a client that published work must
	 * ring the doorbell. Its own line: it flips on every sleep. */
	_Alignas(SL_SHM_CACHE) _Atomic uint32_t sleeping;
};

#define SL_SHM_F_LEADER 0x1u /* this node leads: appends are taken */
#define SL_SHM_F_FAILED 0x2u /* its log failed: nothing more commits */
#define SL_SHM_F_FULL	0x4u /* the last append found the replication window full */

/* One per client. Each side writes only its own cache lines. */
struct sl_shm_sess {
	/* client -> shipd */
	_Alignas(SL_SHM_CACHE) _Atomic uint64_t ap_tail; /* append ring bytes published */
	_Atomic uint32_t flush_req;			 /* bumped: seal the open batch now */
	_Atomic uint32_t wake_consume; /* 1: signal the client's eventfd when records wait */
	_Atomic uint64_t applied_lsn;  /* consumer: the engine applied up to here */
	_Atomic uint64_t wake_lsn[SL_SHM_LEVELS]; /* signal when a level reaches it (0: none) */
	_Atomic uint64_t dl_head;		  /* delivery ring bytes released */
	/* Signal when done_seq reaches it (0: none). With SL_SHM_WAKE_QUIET:
	 * not when that entry was an append-and-wait one that shipd took (it
	 * armed the entry's wake_lsn instead: one wake-up per record). */
	_Atomic uint64_t wake_seq;
	/* 1 while the client sleeps in FUTEX_WAIT on wake_word: shipd signals
	 * it there (a shorter path than its eventfd and epoll), else by the
	 * eventfd (sl_client_fd's readiness). */
	_Atomic uint32_t futex_wait;
	/* shipd -> client */
	_Alignas(SL_SHM_CACHE) _Atomic uint64_t ap_head; /* append ring bytes taken */
	_Atomic uint64_t done_seq;			 /* the last append entry finished */
	_Atomic uint64_t done_lsn;			 /* ... its first LSN */
	_Atomic int32_t done_err;			 /* ... or why it was refused (-errno) */
	_Atomic uint32_t wake_word;			 /* bumped on every signal */
	_Atomic uint64_t done_epoch;			 /* ... the epoch its LSNs were given in */
	_Atomic uint64_t dl_tail;			 /* delivery ring bytes published */
};

#define SL_SHM_WAKE_QUIET (1ull << 63) /* in wake_seq */

/* An append entry: this header, then `count` records, each a u32 length and
 * its bytes padded to SL_SHM_ALIGN. `bytes` covers the whole entry. */
struct sl_shm_append {
	uint32_t bytes, count;
	uint64_t seq;	/* 1, 2, ... per session */
	uint32_t wait;	/* 0, or 1 + a level: shipd arms wake_lsn[level] for the
			   entry's last LSN when it takes it (sl_client_append_wait) */
	uint32_t flags; /* SL_APPEND_FLUSH, SL_APPEND_NONBLOCK */
};

/* A delivery entry: this header, then `len` bytes padded to SL_SHM_ALIGN. */
struct sl_shm_deliver {
	uint32_t bytes, len;
	uint64_t lsn;
};

static inline uint32_t sl_shm_pad(uint64_t n)
{
	return (uint32_t)((n + SL_SHM_ALIGN - 1) & ~(uint64_t)(SL_SHM_ALIGN - 1));
}

/* ---- the handshake (SOCK_SEQPACKET, one message each way) ---- */

#define SL_SHM_HELLO_CONSUMER 0x1u

/* client -> shipd, with the client's eventfd (SCM_RIGHTS) */
struct sl_shm_hello {
	uint32_t magic, version, flags, pad;
	uint64_t resume_lsn; /* consumer: deliver records after this LSN */
};

#define SL_SHM_MSG_MAX 256

/* shipd -> client. Accepted: err 0 and four fds (node page, session page,
 * append ring, delivery ring: its size may be 0 and its fd then absent) and
 * shipd's doorbell eventfd. Refused: err < 0, msg says why, no fds. */
struct sl_shm_welcome {
	uint32_t magic, version;
	int32_t err;
	uint32_t ap_bytes, dl_bytes; /* ring sizes (page multiples) */
	uint32_t pad;
	char msg[SL_SHM_MSG_MAX];
};

#define SL_SHM_FDS 5

/* Map `bytes` (a page multiple) of fd twice, back to back. 0 or -errno. */
int sl_shm_map_ring(int fd, size_t bytes, void **out);
void sl_shm_unmap_ring(void *p, size_t bytes);
/* A sealed memfd of `bytes`, zero-filled. Returns the fd or -errno. */
int sl_shm_memfd(const char *name, size_t bytes);

/* Send or receive one SEQPACKET message with up to SL_SHM_FDS fds. Receive
 * returns the message length; *nfds says how many fds came (the rest -1).
 * MSG_NOSIGNAL; receive is non-blocking when `dontwait`. */
int sl_shm_send(int sock, const void *msg, size_t len, const int *fds, int nfds);
int sl_shm_recv(int sock, void *msg, size_t cap, int *fds, int *nfds, int dontwait);

/* Signal an eventfd (ignoring EAGAIN: it is already readable). */
void sl_shm_kick(int efd);
/* Wake whoever sleeps in sl_shm_futex_wait on `word` (shared mappings:
 * not a private futex). */
void sl_shm_futex_wake(_Atomic uint32_t *word);
/* Sleep while *word == val, at most `ns`. 0 woken (or the word had
 * changed, or a signal), -ETIMEDOUT. */
int sl_shm_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t ns);

#endif
