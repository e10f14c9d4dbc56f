/* libshiplog (include/shiplog/client.h) against real shipd processes on
 * 127.0.0.1: every API call, its misuse (wrong order, NULL and oversized
 * records, bad levels and LSNs), back-pressure (a full replication window,
 * a full delivery ring), a client killed mid-append, shipd killed mid-run on
 * a follower (the consumer resumes with nothing lost or repeated) and on the
 * leader, and second clients on the same stream.
 *
 *   test_client SHIPD SHIPCTL   (meson passes the built programs) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shiplog/client.h"
#include "shiplog/cluster.h"
#include "store_helpers.h"

#define NODES_MAX 3
#define START_MS  10000 /* a shipd must accept clients within this */

static const char *shipd_bin, *shipctl_bin;

/* What a failed test leaves (cmocka jumps out of it): the teardown kills
 * these shipd processes and removes the directory. */
static pid_t live_pid[NODES_MAX + 1];
static char live_dir[PATH_MAX];

struct tc {
	char *dir;
	unsigned n;
	uint16_t ports[NODES_MAX];
	pid_t pid[NODES_MAX + 1];
	char ini[NODES_MAX + 1][PATH_MAX];
	char sock[NODES_MAX + 1][PATH_MAX];
};

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000},
		  NULL);
}

/* n nodes, node 1 leads; `stream`, `client` and `node` are extra lines for
 * those sections. */
static void tc_init_node(struct tc *c, unsigned n, const char *stream, const char *client,
			 const char *node)
{
	memset(c, 0, sizeof(*c));
	c->dir = th_mkdtemp("client");
	snprintf(live_dir, sizeof(live_dir), "%s", c->dir);
	c->n = n;
	assert_int_equal(sl_cluster_free_ports(c->ports, n), 0);
	for (unsigned id = 1; id <= n; id++) {
		FILE *f;

		snprintf(c->ini[id], PATH_MAX, "%s/n%u.ini", c->dir, id);
		snprintf(c->sock[id], PATH_MAX, "%s/n%u/client.sock", c->dir, id);
		{
			char d[PATH_MAX];

			snprintf(d, sizeof(d), "%s/n%u", c->dir, id);
			assert_int_equal(mkdir(d, 0700), 0);
		}
		f = fopen(c->ini[id], "w");
		assert_non_null(f);
		fprintf(f,
			"[cluster]\nid = client-test\nleader = 1\n\n[node]\nid = %u\nlog_dir = "
			"n%u\ndrain_timeout = 1s\n%s\n\n[stream]\nacks = "
			"%s\n%s\n\n[store]\nsegment_bytes "
			"= 4M\nio = buffered\n\n[client]\n%s\n",
			id, id, node ? node : "", n > 1 ? "1" : "0", stream ? stream : "",
			client ? client : "");
		for (unsigned k = 1; k <= n; k++)
			fprintf(f, "[peer.%u]\naddress = 127.0.0.1:%u\n", k, c->ports[k - 1]);
		fclose(f);
	}
}

static void tc_init(struct tc *c, unsigned n, const char *stream, const char *client)
{
	tc_init_node(c, n, stream, client, NULL);
}

static void tc_start(struct tc *c, unsigned id)
{
	char log[PATH_MAX];
	pid_t parent, pid;

	snprintf(log, sizeof(log), "%s/n%u.log", c->dir, id);
	parent = getpid();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* A test binary killed by its timeout must not leave shipds behind. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(126);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(shipd_bin, shipd_bin, "-c", c->ini[id], (char *)NULL);
		_exit(127);
	}
	c->pid[id] = live_pid[id] = pid;
}

/* A killed shipd's UDP socket is closed only when the kernel has torn its
 * io_uring down, which may come after waitpid: wait (up to 2 s) until its
 * port can be bound again, so a restart does not fail with EADDRINUSE. */
static void wait_port_free(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 2000; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

		assert_true(fd >= 0);
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
}

static void tc_kill(struct tc *c, unsigned id, int sig)
{
	if (c->pid[id] <= 0)
		return;
	kill(c->pid[id], sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		int st;

		waitpid(c->pid[id], &st, 0);
		c->pid[id] = live_pid[id] = 0;
		wait_port_free(c->ports[id - 1]);
	}
}

static void tc_destroy(struct tc *c)
{
	for (unsigned id = 1; id <= c->n; id++) {
		if (c->pid[id] > 0)
			kill(c->pid[id], SIGCONT);
		tc_kill(c, id, SIGKILL);
	}
	th_rmrf(c->dir);
	free(c->dir);
	live_dir[0] = '\0';
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned id = 1; id <= NODES_MAX; id++)
		if (live_pid[id] > 0) {
			kill(live_pid[id], SIGKILL);
			waitpid(live_pid[id], NULL, 0);
			live_pid[id] = 0;
		}
	if (live_dir[0]) {
		char cmd[PATH_MAX + 128];

		/* the test failed: show what the nodes logged */
		snprintf(cmd, sizeof(cmd), "tail -n 20 %s/n*.log >&2", live_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "(no node logs)\n");
		th_rmrf(live_dir);
	}
	live_dir[0] = '\0';
	return 0;
}

static struct sl_client *open_as(const char *sock, int consumer, uint64_t applied, int expect)
{
	struct sl_client_opts o = {.socket = sock,
				   .consumer = consumer,
				   .applied_lsn = applied,
				   .connect_timeout_ms = START_MS};
	struct sl_client *cl = NULL;
	uint64_t deadline = ms_now() + START_MS;
	int rc;

	while ((rc = sl_client_open(&cl, &o)) == -ENOENT || rc == -ECONNREFUSED) {
		if (ms_now() > deadline)
			break;
		sleep_ms(10);
	}
	if (rc != expect)
		print_error("open %s: %d (%s), expected %d\n", sock, rc, sl_client_errmsg(),
			    expect);
	assert_int_equal(rc, expect);
	return cl;
}

static struct sl_client *open_client(struct tc *c, unsigned id)
{
	return open_as(c->sock[id], 0, 0, 0);
}

/* Record `lsn` of the tests: "rec-<lsn>-" then filler to `len` bytes. */
static size_t make_rec(char *buf, size_t len, uint64_t tag)
{
	int n = snprintf(buf, len, "rec-%" PRIu64 "-", tag);

	for (size_t i = (size_t)n; i < len; i++)
		buf[i] = (char)('a' + (tag + i) % 26);
	return len;
}

/* Incompressible bytes (LZ4 must not shrink what fills a window). */
static void random_fill(char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (char)x;
	}
}

/* A field of `shipctl status --json`, through python3. -1 if unreadable. */
static long long status_field(struct tc *c, unsigned id, const char *path)
{
	char cmd[PATH_MAX * 2 + 512];
	long long v = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "%s status --json -c %s 2>/dev/null | python3 -c 'import json,sys\n"
		 "d=json.load(sys.stdin)\nfor k in sys.argv[1].split(\".\"): "
		 "d=d[int(k)] if isinstance(d, list) else d[k]\n"
		 "print(int(d))' %s 2>/dev/null",
		 shipctl_bin, c->ini[id], path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%lld", &v) != 1)
		v = -1;
	pclose(p);
	return v;
}

/* Waits (bounded) until the field equals want. */
static void expect_field(struct tc *c, unsigned id, const char *path, long long want)
{
	uint64_t deadline = ms_now() + 10000;
	long long v;

	while ((v = status_field(c, id, path)) != want && ms_now() < deadline)
		sleep_ms(50);
	if (v != want)
		print_error("node %u %s: %lld, want %lld\n", id, path, v, want);
	assert_int_equal(v, want);
}

/* ---- tests ---- */

static void test_open_misuse(void **state)
{
	struct sl_client_opts o = {0};
	struct sl_client *cl = (struct sl_client *)1;
	struct sl_client_rec r;
	char *dir = th_mkdtemp("client-none");
	char path[PATH_MAX];

	(void)state;
	assert_int_equal(sl_client_open(NULL, &o), -EINVAL);
	assert_int_equal(sl_client_open(&cl, NULL), -EINVAL);
	assert_int_equal(sl_client_open(&cl, &o), -EINVAL);
	snprintf(path, sizeof(path), "%s/nobody.sock", dir);
	o.socket = path;
	assert_int_equal(sl_client_open(&cl, &o), -ENOENT);
	assert_null(cl);
	assert_non_null(strstr(sl_client_errmsg(), "nobody.sock"));
	/* every call refuses a NULL client */
	sl_client_close(NULL);
	assert_int_equal(sl_client_append(NULL, "x", 1, 0), -EINVAL);
	assert_int_equal(sl_client_appendv(NULL, NULL, 0, 0), -EINVAL);
	assert_int_equal(sl_client_wait(NULL, 1, SL_LEVEL_COMMITTED, 0), -EINVAL);
	assert_int_equal(sl_client_reached(NULL, 1, SL_LEVEL_COMMITTED), -EINVAL);
	assert_int_equal(sl_client_arm(NULL, 1, SL_LEVEL_COMMITTED), -EINVAL);
	assert_int_equal(sl_client_arm_consume(NULL), -EINVAL);
	assert_int_equal(sl_client_dispatch(NULL), -EINVAL);
	assert_int_equal(sl_client_consume(NULL, &r, 1, 0), -EINVAL);
	assert_int_equal(sl_client_applied(NULL, 1), -EINVAL);
	assert_int_equal(sl_client_info(NULL, NULL), -EINVAL);
	assert_int_equal(sl_client_fd(NULL), -EINVAL);
	assert_int_equal(sl_client_epoch(NULL), 0);
	assert_int_equal(sl_client_leader(NULL), 0);
	assert_string_equal(sl_client_level_name(SL_LEVEL_APPLIED_HERE), "applied_here");
	assert_string_equal(sl_client_level_name((enum sl_client_level)42), "unknown");
	th_rmrf(dir);
	free(dir);
}

/* pin_to_loop: refused while shipd does not pin its loop ([node] cpu), the
 * caller's CPUs left as they were; with it, sl_client_open puts the calling
 * thread on shipd's loop CPU, and appends commit, also from a client whose
 * waits spin there (yielding). */
static void test_pin_to_loop(void **state)
{
	struct tc c;
	struct sl_client_opts o = {.pin_to_loop = 1, .connect_timeout_ms = START_MS};
	struct sl_client *cl = NULL;
	cpu_set_t was, now;
	char node[32], cmd[PATH_MAX + 64];
	uint64_t deadline;
	int last = -1, rc;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(was), &was), 0);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &was))
			last = i;
	tc_init(&c, 1, NULL, NULL);
	tc_start(&c, 1);
	sl_client_close(open_client(&c, 1)); /* it is up */
	o.socket = c.sock[1];
	assert_int_equal(sl_client_open(&cl, &o), -EINVAL);
	assert_null(cl);
	assert_non_null(strstr(sl_client_errmsg(), "[node] cpu"));
	assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
	assert_true(CPU_EQUAL(&was, &now));
	tc_destroy(&c);

	snprintf(node, sizeof(node), "cpu = %d", last);
	tc_init_node(&c, 1, NULL, NULL, node);
	tc_start(&c, 1);
	o.socket = c.sock[1];
	deadline = ms_now() + START_MS;
	while ((rc = sl_client_open(&cl, &o)) == -ENOENT || rc == -ECONNREFUSED) {
		if (ms_now() > deadline)
			break;
		sleep_ms(10);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
	assert_int_equal(CPU_COUNT(&now), 1);
	assert_true(CPU_ISSET(last, &now));
	assert_true(sl_client_append_wait(cl, "pinned", 6, SL_LEVEL_COMMITTED, 5000) >= 1);
	sl_client_close(cl);
	/* Spinning beside the loop (yielding): every record commits, in order. */
	o.spin_us = 1000;
	assert_int_equal(sl_client_open(&cl, &o), 0);
	for (int i = 0, prev = 0; i < 200; i++) {
		int64_t lsn = sl_client_append_wait(cl, "spun", 4, SL_LEVEL_COMMITTED, 5000);

		assert_true(lsn >= 1);
		if (prev)
			assert_int_equal(lsn, prev + 1);
		assert_int_equal(sl_client_reached(cl, (uint64_t)lsn, SL_LEVEL_COMMITTED), 1);
		prev = (int)lsn;
	}
	sl_client_close(cl);
	assert_int_equal(sched_setaffinity(0, sizeof(was), &was), 0);
	snprintf(cmd, sizeof(cmd), "grep -q 'loop thread pinned to CPU %d' %s/n1.log", last, c.dir);
	assert_int_equal(system(cmd), 0);
	tc_destroy(&c);
}

/* One node (acks=0): appends, vectors, every level, the fd, misuse. */
static void test_leader_api(void **state)
{
	struct tc c;
	struct sl_client *cl;
	struct sl_client_info info;
	struct sl_client_rec r;
	static char big[5000], rec[64];
	struct iovec v[40];
	int64_t lsn;

	(void)state;
	tc_init(&c, 1, "max_record_bytes = 4K", "ring_bytes = 64K");
	tc_start(&c, 1);
	cl = open_client(&c, 1);
	assert_int_equal(sl_client_info(cl, &info), 0);
	assert_int_equal(info.node_id, 1);
	assert_int_equal(info.leader_id, 1);
	assert_int_equal(info.leader, 1);
	assert_int_equal(info.epoch, 1);
	assert_int_equal(info.max_record_bytes, 4096);
	assert_true(info.ring_bytes >= 64 * 1024);
	assert_int_equal(sl_client_epoch(cl), 1);
	assert_int_equal(sl_client_leader(cl), 1);

	/* one record, then a vector: consecutive LSNs */
	assert_int_equal(sl_client_append(cl, "first", 5, 0), 1);
	for (int i = 0; i < 3; i++)
		v[i] = (struct iovec){.iov_base = rec, .iov_len = make_rec(rec, 20, (uint64_t)i)};
	assert_int_equal(sl_client_appendv(cl, v, 3, SL_APPEND_FLUSH), 2);
	assert_int_equal(sl_client_wait(cl, 4, SL_LEVEL_COMMITTED, 10000), 0);
	assert_int_equal(sl_client_reached(cl, 4, SL_LEVEL_COMMITTED), 1);
	/* acks=0: the quorum levels are the leader's own durability */
	for (int l = SL_LEVEL_RECEIVED; l <= SL_LEVEL_APPLIED; l++)
		assert_int_equal(sl_client_wait(cl, 4, (enum sl_client_level)l, 10000), 0);
	/* read-your-writes on the leader: its engine says what it applied */
	assert_int_equal(sl_client_reached(cl, 4, SL_LEVEL_APPLIED_HERE), 0);
	assert_int_equal(sl_client_applied(cl, 4), 0);
	assert_int_equal(sl_client_wait(cl, 4, SL_LEVEL_APPLIED_HERE, 10000), 0);
	assert_int_equal(sl_client_applied(cl, 3), -EINVAL); /* never back */

	/* misuse */
	assert_int_equal(sl_client_append(cl, NULL, 1, 0), -EINVAL);
	assert_int_equal(sl_client_append(cl, "x", 0, 0), -EINVAL);
	assert_int_equal(sl_client_append(cl, "x", 1, 0x80), -EINVAL);
	assert_int_equal(sl_client_append(cl, big, sizeof(big), 0), -EMSGSIZE);
	assert_non_null(strstr(sl_client_errmsg(), "max_record_bytes"));
	assert_int_equal(sl_client_appendv(cl, v, 0, 0), -EINVAL);
	assert_int_equal(sl_client_appendv(cl, NULL, 1, 0), -EINVAL);
	for (int i = 0; i < 40; i++)
		v[i] = (struct iovec){.iov_base = big, .iov_len = 4000};
	assert_int_equal(sl_client_appendv(cl, v, 40, 0), -EMSGSIZE); /* over the ring */
	assert_non_null(strstr(sl_client_errmsg(), "ring"));
	assert_int_equal(sl_client_wait(cl, 0, SL_LEVEL_COMMITTED, 0), -EINVAL);
	assert_int_equal(sl_client_wait(cl, 1, (enum sl_client_level)9, 0), -EINVAL);
	assert_int_equal(sl_client_wait(cl, 1000, SL_LEVEL_COMMITTED, 50), -ETIMEDOUT);
	assert_int_equal(sl_client_wait(cl, 1000, SL_LEVEL_COMMITTED, 0), -ETIMEDOUT);
	assert_int_equal(sl_client_consume(cl, &r, 1, 0), -EINVAL); /* not the consumer */
	assert_int_equal(sl_client_arm_consume(cl), -EINVAL);
	/* nothing went in: the next record is LSN 5 */
	lsn = sl_client_append(cl, "after", 5, 0);
	assert_int_equal(lsn, 5);

	/* the pollable fd: arm a future LSN, append it, poll */
	assert_true(sl_client_fd(cl) >= 0);
	assert_int_equal(sl_client_arm(cl, 5, SL_LEVEL_COMMITTED) >= 0, 1);
	{
		struct pollfd p = {.fd = sl_client_fd(cl), .events = POLLIN};
		uint64_t deadline = ms_now() + 10000;

		while (sl_client_reached(cl, 5, SL_LEVEL_COMMITTED) != 1 && ms_now() < deadline) {
			poll(&p, 1, 100);
			assert_int_equal(sl_client_dispatch(cl), 0);
		}
		assert_int_equal(sl_client_reached(cl, 5, SL_LEVEL_COMMITTED), 1);
	}
	assert_int_equal(sl_client_arm(cl, 5, SL_LEVEL_COMMITTED), 1); /* already there */
	sl_client_close(cl);
	tc_destroy(&c);
}

/* Leader and follower (acks=1, ack_level=applied, a consumer engine):
 * consume in order, applied acks drive commits, the follower names the
 * leader, a second consumer is refused, two appenders interleave. */
static void test_follower_consume(void **state)
{
	struct tc c;
	struct sl_client *ld, *ld2, *fc, *fr;
	struct sl_client_rec r[64];
	struct sl_client_info info;
	char rec[300], want[300];
	uint64_t next = 1;
	int64_t lsn, prev = 0;

	(void)state;
	tc_init(&c, 2, "ack_level = applied", "engine = consumer");
	tc_start(&c, 2);
	tc_start(&c, 1);
	ld = open_client(&c, 1);
	fc = open_as(c.sock[2], 1, 0, 0);
	fr = open_client(&c, 2);
	/* appends on the follower name the leader */
	assert_int_equal(sl_client_append(fr, "x", 1, 0), -EPERM);
	assert_non_null(strstr(sl_client_errmsg(), "node 1 leads"));
	assert_int_equal(sl_client_leader(fr), 1);
	assert_int_equal(sl_client_info(fr, &info), 0);
	assert_int_equal(info.leader, 0);
	assert_int_equal(sl_client_reached(fr, 1, SL_LEVEL_DURABLE), -ENOTSUP);
	/* a second consumer on the same node */
	open_as(c.sock[2], 1, 0, -EBUSY);
	assert_non_null(strstr(sl_client_errmsg(), "consumer is already connected"));
	/* consumer misuse: applying what was not consumed */
	assert_int_equal(sl_client_applied(fc, 1), -EINVAL);
	assert_int_equal(sl_client_applied(fr, 1), -EINVAL); /* not the consumer */

	/* 200 records from two appenders, alternating */
	ld2 = open_client(&c, 1);
	for (int i = 1; i <= 200; i++) {
		make_rec(rec, sizeof(rec), (uint64_t)i);
		lsn = sl_client_append(i % 2 ? ld : ld2, rec, sizeof(rec), 0);
		assert_int_equal(lsn, prev + 1);
		prev = lsn;
	}
	/* nothing commits until the follower's engine applies (acks=1 applied) */
	while (next <= 200) {
		int n = sl_client_consume(fc, r, 64, 10000);

		assert_true(n > 0);
		for (int k = 0; k < n; k++, next++) {
			assert_int_equal(r[k].lsn, next);
			make_rec(want, sizeof(want), next);
			assert_int_equal(r[k].len, sizeof(want));
			assert_memory_equal(r[k].data, want, sizeof(want));
		}
		assert_int_equal(sl_client_applied(fc, next - 1), 0);
	}
	assert_int_equal(sl_client_wait(ld, 200, SL_LEVEL_COMMITTED, 10000), 0);
	assert_int_equal(sl_client_wait(ld, 200, SL_LEVEL_APPLIED, 10000), 0);
	assert_int_equal(sl_client_wait(ld2, 200, SL_LEVEL_DURABLE, 10000), 0);
	/* read-your-writes on the follower */
	assert_int_equal(sl_client_wait(fr, 200, SL_LEVEL_APPLIED_HERE, 10000), 0);
	assert_int_equal(sl_client_wait(fr, 200, SL_LEVEL_COMMITTED, 10000), 0);
	assert_int_equal(sl_client_consume(fc, r, 64, 0), 0);
	expect_field(&c, 1, "peers.0.applied_lsn", 200);
	/* the pollable consumer */
	assert_int_equal(sl_client_arm_consume(fc), 0);
	assert_int_equal(sl_client_append(ld, "tail", 4, SL_APPEND_FLUSH), 201);
	{
		struct pollfd p = {.fd = sl_client_fd(fc), .events = POLLIN};

		assert_int_equal(poll(&p, 1, 10000), 1);
		assert_int_equal(sl_client_dispatch(fc), 0);
		assert_int_equal(sl_client_consume(fc, r, 64, 10000), 1);
		assert_int_equal(r[0].lsn, 201);
		assert_int_equal(r[0].len, 4);
		assert_memory_equal(r[0].data, "tail", 4);
	}
	sl_client_close(fc);
	/* the slot is free again once the consumer is gone */
	fc = open_as(c.sock[2], 1, 201, 0);
	expect_field(&c, 2, "clients.connected", 2);
	sl_client_close(fc);
	sl_client_close(fr);
	sl_client_close(ld);
	sl_client_close(ld2);
	tc_destroy(&c);
}

/* A stopped follower stalls commits until the leader's window is full:
 * nonblocking appends get -EAGAIN and nothing is appended; blocking ones
 * wait and go through once it runs again. The consumer's ring (64 KiB)
 * holds far less than what is delivered: delivery waits for it. */
static void test_backpressure(void **state)
{
	struct tc c;
	struct sl_client *ld, *fc;
	struct sl_client_rec r[256];
	static char rec[32 << 10];
	int64_t lsn = 0, last = 0;
	int again = 0;
	uint64_t next = 1;

	(void)state;
	tc_init(&c, 2, "window_bytes = 1M\nbatch_bytes = 64K", "ring_bytes = 64K");
	tc_start(&c, 2);
	tc_start(&c, 1);
	ld = open_client(&c, 1);
	fc = open_as(c.sock[2], 1, 0, 0);
	assert_int_equal(sl_client_append(ld, "hello", 5, SL_APPEND_FLUSH), 1);
	assert_int_equal(sl_client_wait(ld, 1, SL_LEVEL_COMMITTED, 10000), 0);
	kill(c.pid[2], SIGSTOP);
	for (int i = 0; i < 2000 && !again; i++) {
		random_fill(rec, sizeof(rec), (uint64_t)i);
		lsn = sl_client_append(ld, rec, sizeof(rec), SL_APPEND_NONBLOCK | SL_APPEND_FLUSH);
		if (lsn == -EAGAIN)
			again = 1;
		else
			assert_int_equal(lsn, ++last + 1);
	}
	assert_true(again);
	assert_true(last > 10);
	/* still refused while stopped; then the next LSN follows on */
	assert_int_equal(sl_client_append(ld, rec, 100, SL_APPEND_NONBLOCK), -EAGAIN);
	kill(c.pid[2], SIGCONT);
	lsn = sl_client_append(ld, rec, 100, SL_APPEND_FLUSH); /* blocks until room */
	assert_int_equal(lsn, last + 2);
	/* 200 records of 1 KiB more: far over the 64 KiB delivery ring */
	for (int i = 0; i < 200; i++)
		assert_true(sl_client_append(ld, rec, 1024, 0) > 0);
	assert_int_equal(sl_client_append(ld, "end", 3, SL_APPEND_FLUSH), lsn + 201);
	assert_int_equal(sl_client_wait(ld, (uint64_t)lsn + 201, SL_LEVEL_COMMITTED, 20000), 0);
	while (next <= (uint64_t)lsn + 201) {
		int n = sl_client_consume(fc, r, 256, 10000);

		assert_true(n > 0);
		for (int k = 0; k < n; k++)
			assert_int_equal(r[k].lsn, next++);
	}
	sl_client_close(fc);
	sl_client_close(ld);
	tc_destroy(&c);
}

/* sl_client_append_wait: each call returns an LSN that has reached its
 * level, with at most one wake-up of the client per record (shipd arms the
 * level's wake-up itself); misuse; a follower names the leader; a stalled
 * commit times out with the record still appended. */
static void test_append_wait(void **state)
{
	struct tc c;
	struct sl_client *ld, *fr;
	static char big[5000], rec[200];
	long long kicks;
	int64_t lsn, last;

	(void)state;
	tc_init(&c, 2, "max_record_bytes = 4K", NULL);
	tc_start(&c, 2);
	tc_start(&c, 1);
	ld = open_client(&c, 1);
	fr = open_client(&c, 2);
	/* misuse: nothing is appended */
	assert_int_equal(sl_client_append_wait(NULL, "x", 1, SL_LEVEL_COMMITTED, 100), -EINVAL);
	assert_int_equal(sl_client_append_wait(ld, NULL, 1, SL_LEVEL_COMMITTED, 100), -EINVAL);
	assert_int_equal(sl_client_append_wait(ld, "x", 0, SL_LEVEL_COMMITTED, 100), -EINVAL);
	assert_int_equal(sl_client_append_wait(ld, "x", 1, (enum sl_client_level)9, 100), -EINVAL);
	assert_int_equal(sl_client_append_wait(ld, "x", 1, SL_LEVEL_COMMITTED, 0), -EINVAL);
	assert_int_equal(sl_client_append_wait(ld, big, sizeof(big), SL_LEVEL_COMMITTED, 100),
			 -EMSGSIZE);
	assert_non_null(strstr(sl_client_errmsg(), "max_record_bytes"));
	assert_int_equal(sl_client_append_wait(fr, "x", 1, SL_LEVEL_COMMITTED, 100), -EPERM);
	assert_non_null(strstr(sl_client_errmsg(), "node 1 leads"));

	/* each returned LSN is the next one, and has reached its level */
	kicks = status_field(&c, 1, "clients.kicks");
	assert_true(kicks >= 0);
	for (int i = 1; i <= 50; i++) {
		make_rec(rec, sizeof(rec), (uint64_t)i);
		lsn = sl_client_append_wait(ld, rec, sizeof(rec), SL_LEVEL_COMMITTED, 10000);
		assert_int_equal(lsn, i);
		assert_int_equal(sl_client_reached(ld, (uint64_t)lsn, SL_LEVEL_COMMITTED), 1);
	}
	/* one wake-up per record at most: none for the LSN, one for the commit */
	assert_true(status_field(&c, 1, "clients.kicks") - kicks <= 50);
	lsn = sl_client_append_wait(ld, "durable", 7, SL_LEVEL_DURABLE, 10000);
	assert_int_equal(lsn, 51);
	assert_int_equal(sl_client_reached(ld, 51, SL_LEVEL_DURABLE), 1);
	assert_int_equal(sl_client_append(ld, "plain", 5, 0), 52); /* mixes with append */
	assert_int_equal(sl_client_append_wait(ld, "x", 1, SL_LEVEL_COMMITTED, 10000), 53);
	assert_int_equal(sl_client_reached(ld, 52, SL_LEVEL_COMMITTED), 1);

	/* no commit while the follower is stopped: the record is appended but
	 * the call times out; it commits once the follower runs again */
	kill(c.pid[2], SIGSTOP);
	assert_int_equal(sl_client_append_wait(ld, "late", 4, SL_LEVEL_COMMITTED, 200), -ETIMEDOUT);
	assert_non_null(strstr(sl_client_errmsg(), "lsn 54 has not reached committed"));
	assert_int_equal(sl_client_reached(ld, 54, SL_LEVEL_COMMITTED), 0);
	kill(c.pid[2], SIGCONT);
	assert_int_equal(sl_client_wait(ld, 54, SL_LEVEL_COMMITTED, 10000), 0);
	last = sl_client_append_wait(ld, "after", 5, SL_LEVEL_COMMITTED, 10000);
	assert_int_equal(last, 55);
	assert_int_equal(sl_client_reached(ld, 55, SL_LEVEL_COMMITTED), 1);
	sl_client_close(fr);
	sl_client_close(ld);
	tc_destroy(&c);
}

/* In a child: append `n` records of `bytes` random bytes as one vector (or
 * one record when n is 1) and write the first LSN (or the error) to `fd`. */
static pid_t append_child(struct tc *c, int fd, unsigned n, size_t bytes)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct sl_client *cl = open_client(c, 1);
		struct iovec *v = calloc(n, sizeof(*v));
		char *buf = malloc(bytes * n);
		int64_t lsn;

		for (unsigned i = 0; i < n; i++) {
			random_fill(buf + i * bytes, bytes, 1000 + i);
			v[i] = (struct iovec){.iov_base = buf + i * bytes, .iov_len = bytes};
		}
		lsn = sl_client_appendv(cl, v, n, SL_APPEND_FLUSH);
		_exit(write(fd, &lsn, sizeof(lsn)) == sizeof(lsn) ? 0 : 1);
	}
	return pid;
}

/* A vector larger than the room left in the window is appended in parts as
 * commits free it; nobody else's record may fall between its LSNs. */
static void test_vector_consecutive(void **state)
{
	struct tc c;
	struct sl_client *cl;
	int pa[2], pb[2];
	int64_t first, other;
	pid_t a, b;

	(void)state;
	/* small records keep the window at 1 MiB (it holds four largest batches) */
	tc_init(&c, 2, "window_bytes = 1M\nbatch_bytes = 64K\nmax_record_bytes = 64K", NULL);
	tc_start(&c, 2);
	tc_start(&c, 1);
	cl = open_client(&c, 1);
	assert_int_equal(sl_client_append(cl, "start", 5, SL_APPEND_FLUSH), 1);
	assert_int_equal(sl_client_wait(cl, 1, SL_LEVEL_COMMITTED, 10000), 0);
	assert_int_equal(pipe(pa), 0);
	assert_int_equal(pipe(pb), 0);
	kill(c.pid[2], SIGSTOP);		   /* nothing commits: the window fills */
	a = append_child(&c, pa[1], 48, 32 << 10); /* 1.5 MiB, incompressible */
	/* Half appended before the other starts (a sleep was not always enough
	 * for the child's 1.5 MiB under ASan on a loaded machine). */
	expect_field(&c, 1, "clients.vectors_split", 1);
	b = append_child(&c, pb[1], 1, 100);
	sleep_ms(300);
	assert_int_equal(status_field(&c, 1, "clients.vectors_split"), 1); /* it waits */
	kill(c.pid[2], SIGCONT);
	assert_int_equal(read(pa[0], &first, sizeof(first)), sizeof(first));
	assert_int_equal(read(pb[0], &other, sizeof(other)), sizeof(other));
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	assert_int_equal(first, 2);
	assert_int_equal(other, 50); /* after the whole vector */
	assert_int_equal(sl_client_wait(cl, 50, SL_LEVEL_COMMITTED, 20000), 0);
	for (int i = 0; i < 2; i++)
		close(pa[i]), close(pb[i]);
	sl_client_close(cl);
	tc_destroy(&c);
}

/* A client killed while appending in a loop: shipd frees it and serves on. */
static void test_client_killed(void **state)
{
	struct tc c;
	struct sl_client *cl;
	int pfd[2];
	pid_t child;
	char b;
	int64_t lsn;

	(void)state;
	tc_init(&c, 1, NULL, NULL);
	tc_start(&c, 1);
	cl = open_client(&c, 1);
	assert_int_equal(pipe(pfd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct sl_client *k = open_client(&c, 1);
		char rec[512];

		memset(rec, 'k', sizeof(rec));
		for (unsigned i = 0;; i++) {
			if (sl_client_append(k, rec, sizeof(rec), 0) < 0)
				_exit(1);
			if (i == 100 && write(pfd[1], "x", 1) != 1)
				_exit(1);
		}
	}
	assert_int_equal(read(pfd[0], &b, 1), 1);
	expect_field(&c, 1, "clients.connected", 2);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(pfd[0]);
	close(pfd[1]);
	expect_field(&c, 1, "clients.connected", 1);
	expect_field(&c, 1, "clients.closed", 1);
	lsn = sl_client_append(cl, "alive", 5, SL_APPEND_FLUSH);
	assert_true(lsn > 100);
	assert_int_equal(sl_client_wait(cl, (uint64_t)lsn, SL_LEVEL_COMMITTED, 10000), 0);
	sl_client_close(cl);
	tc_destroy(&c);
}

/* shipd killed (SIGKILL) on the follower while its consumer reads, then on
 * the leader: the consumer reconnects to the restarted follower and gets
 * every record exactly once; the appender carries on with the next LSN. */
static void test_shipd_killed(void **state)
{
	struct tc c;
	struct sl_client *ld, *fc;
	struct sl_client_rec r[100];
	struct sl_client_info info;
	char rec[200], want[200];
	uint64_t next = 1, total = 0;
	int64_t lsn;

	(void)state;
	tc_init(&c, 2, NULL, "engine = consumer");
	tc_start(&c, 2);
	tc_start(&c, 1);
	ld = open_client(&c, 1);
	fc = open_as(c.sock[2], 1, 0, 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 500; i++) {
			make_rec(rec, sizeof(rec), total + 1);
			lsn = sl_client_append(ld, rec, sizeof(rec), 0);
			if (lsn == -ENOTCONN) { /* the leader died under it: once more */
				lsn = sl_client_append(ld, rec, sizeof(rec), 0);
			}
			assert_int_equal(lsn, (int64_t)total + 1);
			total++;
		}
		assert_int_equal(sl_client_wait(ld, total, SL_LEVEL_COMMITTED, 20000), 0);
		/* consume part of it, apply less, then kill the follower */
		while (next <= total - 200) {
			int n = sl_client_consume(fc, r, 100, 10000);

			assert_true(n > 0);
			for (int k = 0; k < n; k++, next++) {
				assert_int_equal(r[k].lsn, next);
				make_rec(want, sizeof(want), next);
				assert_memory_equal(r[k].data, want, sizeof(want));
			}
			if (next > 50) /* applied trails consumed */
				assert_int_equal(sl_client_applied(fc, next - 50), 0);
		}
		tc_kill(&c, 2, SIGKILL);
		tc_start(&c, 2);
		if (round == 1) { /* and the leader too */
			tc_kill(&c, 1, SIGKILL);
			tc_start(&c, 1);
		}
	}
	while (next <= total) {
		int n = sl_client_consume(fc, r, 100, 20000);

		assert_true(n > 0);
		for (int k = 0; k < n; k++, next++) {
			assert_int_equal(r[k].lsn, next);
			make_rec(want, sizeof(want), next);
			assert_memory_equal(r[k].data, want, sizeof(want));
		}
	}
	assert_int_equal(sl_client_consume(fc, r, 100, 200), 0); /* nothing twice */
	assert_int_equal(sl_client_info(fc, &info), 0);
	assert_int_equal(info.consumed_lsn, total);
	assert_true(info.reconnects >= 3);
	assert_int_equal(sl_client_applied(fc, total), 0);
	expect_field(&c, 1, "peers.0.applied_lsn", (long long)total);
	sl_client_close(fc);
	sl_client_close(ld);
	tc_destroy(&c);
}

/* engine = consumer: a follower keeps its consumer's applied LSN across a
 * restart (log_dir/client-applied) and opens with it: nothing is delivered
 * again and the leader sees the applied LSN before the consumer returns. */
static void test_applied_kept(void **state)
{
	struct tc c;
	struct sl_client *ld, *fc;
	struct sl_client_rec r[64];
	char path[PATH_MAX], text[32] = "";
	uint64_t next = 1;
	FILE *f;

	(void)state;
	tc_init(&c, 2, "ack_level = applied", "engine = consumer");
	tc_start(&c, 2);
	tc_start(&c, 1);
	ld = open_client(&c, 1);
	fc = open_as(c.sock[2], 1, 0, 0);
	for (int i = 1; i <= 100; i++)
		assert_int_equal(sl_client_append(ld, "applied", 7, 0), i);
	while (next <= 100) {
		int n = sl_client_consume(fc, r, 64, 10000);

		assert_true(n > 0);
		next += (uint64_t)n;
		assert_int_equal(sl_client_applied(fc, next - 1), 0);
	}
	assert_int_equal(sl_client_wait(ld, 100, SL_LEVEL_COMMITTED, 10000), 0);
	sl_client_close(fc);
	tc_kill(&c, 2, SIGTERM); /* drains, saves */
	snprintf(path, sizeof(path), "%s/n2/client-applied", c.dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_string_equal(text, "100\n");
	tc_start(&c, 2);
	expect_field(&c, 1, "peers.0.applied_lsn", 100);
	assert_int_equal(sl_client_append(ld, "more", 4, SL_APPEND_FLUSH), 101);
	expect_field(&c, 2, "node.delivered_lsn", 101);
	expect_field(&c, 2, "shipd.delivered_records", 1); /* only the new one */
	expect_field(&c, 2, "shipd.delivery_errors", 0);
	/* the consumer resumes after what it applied */
	fc = open_as(c.sock[2], 1, 100, 0);
	assert_int_equal(sl_client_consume(fc, r, 64, 10000), 1);
	assert_int_equal(r[0].lsn, 101);
	sl_client_close(fc);
	sl_client_close(ld);
	tc_destroy(&c);
}

/* A consumer that resumes after records this node no longer holds (its
 * oldest segment gone) is refused with -ERANGE naming the first LSN held;
 * resuming from what is held works. */
static void test_resume_gone(void **state)
{
	enum { REC = 64 * 1024, RECS = 200 };
	struct tc c;
	struct sl_client *ld, *fc;
	struct sl_client_rec r[4];
	char *rec = malloc(REC), path[PATH_MAX + 64], oldest[32] = "";
	long long first;
	struct dirent *de;
	DIR *d;

	(void)state;
	assert_non_null(rec);
	tc_init(&c, 2, NULL, "engine = consumer");
	tc_start(&c, 2);
	tc_start(&c, 1);
	ld = open_client(&c, 1);
	for (int i = 1; i <= RECS; i++) {
		random_fill(rec, REC, (uint64_t)i);
		assert_int_equal(sl_client_append(ld, rec, REC, SL_APPEND_FLUSH), i);
	}
	assert_int_equal(sl_client_wait(ld, RECS, SL_LEVEL_COMMITTED, 10000), 0);
	expect_field(&c, 2, "node.delivered_lsn", RECS);
	tc_kill(&c, 2, SIGTERM);
	/* 12.5 MiB in 4 MiB segments: drop the oldest, as retention would */
	snprintf(path, sizeof(path), "%s/n2", c.dir);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strlen(de->d_name) == 24 && strcmp(de->d_name + 20, ".seg") == 0 &&
		    (!oldest[0] || strcmp(de->d_name, oldest) < 0))
			memcpy(oldest, de->d_name, 25); /* 24 characters and the NUL */
	closedir(d);
	assert_string_equal(oldest, "00000000000000000001.seg");
	snprintf(path, sizeof(path), "%s/n2/%s", c.dir, oldest);
	assert_int_equal(unlink(path), 0);
	tc_start(&c, 2);
	fc = open_as(c.sock[2], 1, 0, -ERANGE);
	assert_null(fc);
	assert_non_null(strstr(sl_client_errmsg(), "are gone"));
	first = status_field(&c, 2, "store.first_lsn");
	assert_true(first > 1 && first <= RECS);
	fc = open_as(c.sock[2], 1, (uint64_t)first - 1, 0);
	assert_int_equal(sl_client_consume(fc, r, 1, 10000), 1);
	assert_int_equal(r[0].lsn, first);
	random_fill(rec, REC, (uint64_t)first);
	assert_int_equal(r[0].len, REC);
	assert_memory_equal(r[0].data, rec, REC);
	sl_client_close(fc);
	sl_client_close(ld);
	free(rec);
	tc_destroy(&c);
}

/* no_reconnect: once shipd is gone every call says so. */
static void test_no_reconnect(void **state)
{
	struct tc c;
	struct sl_client_opts o = {.no_reconnect = 1, .connect_timeout_ms = 500};
	struct sl_client *cl, *probe;
	struct sl_client_info info;

	(void)state;
	tc_init(&c, 1, NULL, NULL);
	tc_start(&c, 1);
	probe = open_client(&c, 1); /* waits until shipd serves */
	sl_client_close(probe);
	o.socket = c.sock[1];
	assert_int_equal(sl_client_open(&cl, &o), 0);
	assert_int_equal(sl_client_append(cl, "x", 1, 0), 1);
	tc_kill(&c, 1, SIGKILL);
	assert_int_equal(sl_client_wait(cl, 5, SL_LEVEL_COMMITTED, 5000), -ENOTCONN);
	assert_int_equal(sl_client_append(cl, "y", 1, 0), -ENOTCONN);
	assert_int_equal(sl_client_info(cl, &info), -ENOTCONN);
	assert_int_equal(sl_client_epoch(cl), 0);
	assert_int_equal(sl_client_leader(cl), 1); /* the last one known */
	sl_client_close(cl);
	tc_destroy(&c);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_open_misuse, teardown),
	    cmocka_unit_test_teardown(test_leader_api, teardown),
	    cmocka_unit_test_teardown(test_pin_to_loop, teardown),
	    cmocka_unit_test_teardown(test_append_wait, teardown),
	    cmocka_unit_test_teardown(test_follower_consume, teardown),
	    cmocka_unit_test_teardown(test_backpressure, teardown),
	    cmocka_unit_test_teardown(test_client_killed, teardown),
	    cmocka_unit_test_teardown(test_shipd_killed, teardown),
	    cmocka_unit_test_teardown(test_vector_consecutive, teardown),
	    cmocka_unit_test_teardown(test_no_reconnect, teardown),
	    cmocka_unit_test_teardown(test_applied_kept, teardown),
	    cmocka_unit_test_teardown(test_resume_gone, teardown),
	};

	if (argc < 3) {
		fprintf(stderr, "usage: test_client SHIPD SHIPCTL\n");
		return 2;
	}
	shipd_bin = argv[1];
	shipctl_bin = argv[2];
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
