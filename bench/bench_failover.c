/* shipbench failover: how long a 3-node cluster of real shipd processes
 * (kernel UDP on loopback, elections on, acks = majority, ack_level =
 * durable) goes without commits when its leader dies, and whether any
 * record it acknowledged is lost.
 *
 * Load: appends through libshiplog to whichever node leads, in bursts of
 * BURST records sealed at once, each burst acknowledged when its last LSN is
 * committed. A kill: SIGKILL of the leader's shipd (or with --pause SIGSTOP
 * until another leader commits, then SIGCONT); the failover time runs from
 * the signal to the first burst another node acknowledges. The killed node
 * is restarted and must rejoin as a follower holding every acknowledged
 * record before the next kill. At the end every node is stopped and each
 * acknowledged record is read back from every node's log, byte for byte:
 * acked_lost counts those missing or different anywhere.
 *
 * The limit beside it: the configured election timeout t (a follower stands
 * after a random [t, 1.5t) without its leader) and the UDP loopback round trip
 * measured in the same run. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "shiplog/batch.h"
#include "shiplog/client.h"
#include "shiplog/err.h"
#include "shiplog/logread.h"

#define NODES		3
#define BURST		16
#define KILLS_DEFAULT	20
#define LOAD_MS_DEFAULT 300
#define ETO_MS_DEFAULT	150
#define HB_MS_DEFAULT	10
#define BYTES_DEFAULT	256
#define STEP_WAIT_NS	30000000000ull /* any one step: start, failover, rejoin */
#define RTT_ROUNDS	2000

struct fo {
	const struct bench_common *c;
	const char *shipd;
	char dir[PATH_MAX];
	int own_dir, keep, pause, zstage;
	uint64_t kills, load_ms, eto_ms, hb_ms, bytes;
	uint16_t port[NODES];
	pid_t pid[NODES];
	struct sl_client *cl[NODES];
	uint8_t *rec;
	/* acknowledged: (lsn, seq) */
	uint64_t *ack_lsn, *ack_seq;
	size_t n_ack, cap_ack;
	uint64_t seq;	       /* records generated */
	uint64_t last_ack_lsn; /* highest acknowledged LSN */
	double *fail_ms;
	double *lead_ms;		     /* from the signal to another node saying it leads */
	uint64_t fenced_taken, fenced_acked; /* --pause: appends the resumed leader took, acked */
};

static void sleep_ms(unsigned ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&t, NULL);
}

static void path_of(const struct fo *f, char *buf, size_t cap, unsigned i, const char *what)
{
	snprintf(buf, cap, "%s/n%u%s", f->dir, i + 1, what);
}

/* --- the machine limit: UDP loopback round trip ----------------------------------- */

static double udp_rtt_us(void)
{
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in sb = sa;
	socklen_t len = sizeof(sa);
	char buf[64] = {0};
	struct sl_hist h;
	double p50 = -1;

	sl_hist_reset(&h);
	if (a < 0 || b < 0 || bind(a, (struct sockaddr *)&sa, sizeof(sa)) ||
	    bind(b, (struct sockaddr *)&sb, sizeof(sb)) ||
	    getsockname(a, (struct sockaddr *)&sa, &len) ||
	    getsockname(b, (struct sockaddr *)&sb, &len))
		goto out;
	for (int i = 0; i < RTT_ROUNDS; i++) {
		uint64_t t0 = bench_now_ns();

		if (sendto(a, buf, sizeof(buf), 0, (struct sockaddr *)&sb, sizeof(sb)) < 0 ||
		    recv(b, buf, sizeof(buf), 0) < 0 ||
		    sendto(b, buf, sizeof(buf), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    recv(a, buf, sizeof(buf), 0) < 0)
			goto out;
		sl_hist_record(&h, bench_now_ns() - t0);
	}
	p50 = (double)sl_hist_quantile(&h, 0.5) / 1e3;
out:
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return p50;
}

/* --- the cluster ---------------------------------------------------------------- */

static int free_ports(struct fo *f)
{
	int s[NODES];
	int rc = 0;

	for (unsigned i = 0; i < NODES; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);

		s[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (s[i] < 0 || bind(s[i], (struct sockaddr *)&a, sizeof(a)) ||
		    getsockname(s[i], (struct sockaddr *)&a, &len))
			rc = -errno;
		f->port[i] = ntohs(a.sin_port);
	}
	for (unsigned i = 0; i < NODES; i++)
		if (s[i] >= 0)
			close(s[i]);
	return rc;
}

static int write_configs(struct fo *f)
{
	for (unsigned i = 0; i < NODES; i++) {
		char path[PATH_MAX + 16];
		FILE *fp;

		path_of(f, path, sizeof(path), i, "");
		if (mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		path_of(f, path, sizeof(path), i, ".ini");
		if (!(fp = fopen(path, "w")))
			return -errno;
		fprintf(fp,
			"[cluster]\nid = fobench\nleader = 1\n\n[node]\nid = %u\nlog_dir = "
			"n%u\nidle = backoff\n\n[stream]\nacks = majority\nack_level = durable\n"
			"elect = on\nelection_timeout_ms = %" PRIu64 "\nheartbeat_ms = %" PRIu64
			"\n%s\n[transport]\nkind = udp\n",
			i + 1, i + 1, f->eto_ms, f->hb_ms,
			/* Batches smaller than a burst: every burst goes
			 * through the stage. */
			f->zstage ? "compress_thread = on\nbatch_bytes = 2048\n" : "");
		for (unsigned j = 0; j < NODES; j++)
			fprintf(fp, "\n[peer.%u]\naddress = 127.0.0.1:%u\n", j + 1, f->port[j]);
		if (fclose(fp))
			return -errno;
	}
	return 0;
}

static int start_node(struct fo *f, unsigned i)
{
	char ini[PATH_MAX + 16], log[PATH_MAX + 16];
	pid_t p;

	path_of(f, ini, sizeof(ini), i, ".ini");
	path_of(f, log, sizeof(log), i, ".log");
	p = fork();
	if (p < 0)
		return -errno;
	if (p == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(f->shipd, "shipd", "-c", ini, (char *)NULL);
		_exit(127);
	}
	f->pid[i] = p;
	return 0;
}

static void reap(struct fo *f, unsigned i)
{
	if (f->pid[i] > 0)
		waitpid(f->pid[i], NULL, 0);
	f->pid[i] = 0;
}

static int alive(struct fo *f, unsigned i)
{
	if (f->pid[i] > 0 && waitpid(f->pid[i], NULL, WNOHANG) == f->pid[i]) {
		fprintf(stderr, "shipbench failover: node %u exited (see %s/n%u.log)\n", i + 1,
			f->dir, i + 1);
		f->pid[i] = 0;
	}
	return f->pid[i] > 0;
}

/* A client of node i's shipd, retried until it answers. */
static int connect_node(struct fo *f, unsigned i)
{
	char sock[PATH_MAX + 32];
	struct sl_client_opts o = {.socket = sock, .connect_timeout_ms = 100};
	uint64_t deadline = bench_now_ns() + STEP_WAIT_NS;
	int rc;

	path_of(f, sock, sizeof(sock), i, "/client.sock");
	while ((rc = sl_client_open(&f->cl[i], &o)) < 0) {
		if (bench_now_ns() > deadline || !alive(f, i)) {
			fprintf(stderr, "shipbench failover: node %u: %s\n", i + 1,
				sl_client_errmsg());
			return rc;
		}
		sleep_ms(5);
	}
	return 0;
}

static void disconnect_node(struct fo *f, unsigned i)
{
	sl_client_close(f->cl[i]);
	f->cl[i] = NULL;
}

/* The node that leads now, as its own shipd says (-1: none yet). */
static int find_leader(struct fo *f, int skip)
{
	struct sl_client_info in;

	for (unsigned i = 0; i < NODES; i++)
		if ((int)i != skip && f->cl[i] && sl_client_info(f->cl[i], &in) == 0 && in.leader)
			return (int)i;
	return -1;
}

/* --- the load ------------------------------------------------------------------- */

/* Record `seq`: its number in text, then bytes derived from it. */
static void make_rec(const struct fo *f, uint64_t seq, uint8_t *out)
{
	uint64_t x = seq * 0x9E3779B97F4A7C15ull + 1;
	int n = snprintf((char *)out, f->bytes, "failover record %" PRIu64 " ", seq);

	for (size_t i = (size_t)n; i < f->bytes; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		out[i] = (uint8_t)('a' + x % 26);
	}
}

static int note_acked(struct fo *f, uint64_t lsn, uint64_t seq)
{
	if (f->n_ack == f->cap_ack) {
		size_t cap = f->cap_ack ? f->cap_ack * 2 : 4096;
		uint64_t *a = realloc(f->ack_lsn, cap * sizeof(*a)), *s;

		if (!a)
			return -ENOMEM;
		f->ack_lsn = a;
		if (!(s = realloc(f->ack_seq, cap * sizeof(*s))))
			return -ENOMEM;
		f->ack_seq = s;
		f->cap_ack = cap;
	}
	f->ack_lsn[f->n_ack] = lsn;
	f->ack_seq[f->n_ack++] = seq;
	if (lsn > f->last_ack_lsn)
		f->last_ack_lsn = lsn;
	return 0;
}

/* One burst to node i: 1 acknowledged, 0 not (the node does not lead, was
 * deposed or died: its fate is unknown), -errno on trouble of our own. */
static int burst(struct fo *f, unsigned i)
{
	struct iovec v[BURST];
	int64_t first;
	int rc;

	for (unsigned k = 0; k < BURST; k++) {
		make_rec(f, f->seq + k, f->rec + k * f->bytes);
		v[k] = (struct iovec){.iov_base = f->rec + k * f->bytes, .iov_len = f->bytes};
	}
	first = sl_client_appendv(f->cl[i], v, BURST, SL_APPEND_FLUSH);
	if (first < 0)
		return 0;
	f->seq += BURST;
	rc = sl_client_wait(f->cl[i], (uint64_t)first + BURST - 1, SL_LEVEL_COMMITTED,
			    (int)(4 * f->eto_ms));
	if (rc < 0)
		return 0;
	for (unsigned k = 0; k < BURST; k++)
		if ((rc = note_acked(f, (uint64_t)first + k, f->seq - BURST + k)) < 0)
			return rc;
	return 1;
}

/* Bursts to whoever leads for `ms`. */
static int load_for(struct fo *f, uint64_t ms)
{
	uint64_t end = bench_now_ns() + ms * 1000000ull;
	int rc;

	while (bench_now_ns() < end) {
		int l = find_leader(f, -1);

		if (l < 0) {
			sleep_ms(1);
			continue;
		}
		if ((rc = burst(f, (unsigned)l)) < 0)
			return rc;
	}
	return 0;
}

/* --- one kill --------------------------------------------------------------------- */

/* After the new leader committed: the paused one resumes. Whatever it
 * takes now must never be acknowledged. */
static int probe_fenced(struct fo *f, unsigned victim)
{
	uint8_t rec[64];
	int64_t lsn;
	int rc;

	kill(f->pid[victim], SIGCONT);
	memset(rec, 'x', sizeof(rec));
	for (int k = 0; k < 4; k++) {
		lsn = sl_client_append(f->cl[victim], rec, sizeof(rec), SL_APPEND_FLUSH);
		if (lsn < 0)
			continue; /* refused: -EPERM once it knows */
		f->fenced_taken++;
		rc = sl_client_wait(f->cl[victim], (uint64_t)lsn, SL_LEVEL_COMMITTED,
				    (int)(2 * f->eto_ms));
		if (rc == 0)
			f->fenced_acked++;
	}
	return 0;
}

/* Node `victim` follows the leader again and holds every acknowledged
 * record (committed and durable there). */
static int wait_rejoined(struct fo *f, unsigned victim)
{
	uint64_t deadline = bench_now_ns() + STEP_WAIT_NS;
	struct sl_client_info in;

	for (;;) {
		int l = find_leader(f, -1);

		if (l >= 0 && l != (int)victim && sl_client_info(f->cl[victim], &in) == 0 &&
		    !in.leader && in.leader_id == (uint32_t)l + 1 &&
		    in.commit_lsn >= f->last_ack_lsn)
			return 0;
		if (bench_now_ns() > deadline || !alive(f, victim)) {
			fprintf(stderr,
				"shipbench failover: node %u did not rejoin (leader %d, its commit "
				"lsn %" PRIu64 ", acknowledged %" PRIu64 ")\n",
				victim + 1, l + 1, in.commit_lsn, f->last_ack_lsn);
			return -ETIMEDOUT;
		}
		if (l >= 0 && burst(f, (unsigned)l) < 0)
			return -ENOMEM;
		sleep_ms(1);
	}
}

static int one_kill(struct fo *f, uint64_t k)
{
	uint64_t t0, deadline, lead_ns = 0;
	int victim, rc;

	if ((rc = load_for(f, f->load_ms)) < 0)
		return rc;
	/* The load ends on time, maybe while an election runs (at the start a
	 * node whose shipd came up late may stand): kill once one leads. */
	deadline = bench_now_ns() + STEP_WAIT_NS;
	while ((victim = find_leader(f, -1)) < 0) {
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "shipbench failover: kill %" PRIu64 ": no leader\n", k + 1);
			return -ETIMEDOUT;
		}
		sleep_ms(1);
	}
	t0 = bench_now_ns();
	kill(f->pid[victim], f->pause ? SIGSTOP : SIGKILL);
	if (!f->pause) {
		reap(f, (unsigned)victim);
		disconnect_node(f, (unsigned)victim);
	}
	deadline = t0 + STEP_WAIT_NS;
	for (;;) {
		int l = find_leader(f, victim);

		if (l >= 0 && !lead_ns)
			lead_ns = bench_now_ns();
		if (l >= 0 && (rc = burst(f, (unsigned)l)) != 0)
			break;
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "shipbench failover: kill %" PRIu64 ": no new commit\n",
				k + 1);
			return -ETIMEDOUT;
		}
		/* Not while a new leader refuses appends until its first batch
		 * commits: spinning would take the CPU it needs for that. */
		sleep_ms(1);
	}
	if (rc < 0)
		return rc;
	f->fail_ms[k] = (double)(bench_now_ns() - t0) / 1e6;
	f->lead_ms[k] = (double)(lead_ns - t0) / 1e6;
	if (f->pause)
		rc = probe_fenced(f, (unsigned)victim);
	else if ((rc = start_node(f, (unsigned)victim)) == 0)
		rc = connect_node(f, (unsigned)victim);
	if (rc == 0)
		rc = wait_rejoined(f, (unsigned)victim);
	fprintf(stderr,
		"failover: kill %" PRIu64 "/%" PRIu64 ": node %d %s, new leader after %.1f ms, "
		"new commit after %.1f ms; %zu records acknowledged\n",
		k + 1, f->kills, victim + 1, f->pause ? "paused" : "killed", f->lead_ms[k],
		f->fail_ms[k], f->n_ack);
	return rc;
}

/* --- checking the logs ------------------------------------------------------------ */

/* Acknowledged records missing from or different in node i's log: its
 * index in `bad` set. Reads with the index sorted by LSN (ack_lsn, with
 * ack_seq permuted alike through `order`). */
static int check_node(struct fo *f, unsigned i, const uint64_t *order, uint8_t *bad)
{
	char dir[PATH_MAX + 16];
	struct sl_logread *r;
	struct sl_logread_batch b;
	uint8_t *raw = NULL, *want = malloc(f->bytes);
	size_t cap = 0, a = 0;
	int rc;

	path_of(f, dir, sizeof(dir), i, "");
	if (!want)
		return -ENOMEM;
	if ((rc = sl_logread_open(&r, dir)) < 0) {
		free(want);
		return rc;
	}
	while (a < f->n_ack && (rc = sl_logread_next(r, &b)) == 1) {
		struct sl_batch_hdr h;
		struct sl_rec_iter it;
		const uint8_t *rec;
		uint32_t len;
		uint64_t lsn;
		int n;

		if (b.h.raw_len > cap) {
			uint8_t *p = realloc(raw, b.h.raw_len);

			if (!p) {
				rc = -ENOMEM;
				break;
			}
			raw = p;
			cap = b.h.raw_len;
		}
		if ((n = sl_batch_decode(b.bytes, b.len, NULL, raw, cap, &h)) < 0) {
			rc = n;
			break;
		}
		sl_rec_iter_init(&it, raw, (size_t)n);
		for (lsn = h.base_lsn; sl_rec_next(&it, &rec, &len) == 1; lsn++) {
			uint64_t j;

			while (a < f->n_ack && (j = order[a], f->ack_lsn[j] < lsn))
				bad[j] = 1, a++; /* passed without finding it */
			if (a == f->n_ack || f->ack_lsn[j = order[a]] != lsn)
				continue;
			make_rec(f, f->ack_seq[j], want);
			if (len != f->bytes || memcmp(rec, want, len) != 0)
				bad[j] = 1;
			a++;
		}
	}
	for (; a < f->n_ack; a++)
		bad[order[a]] = 1; /* past the log's end */
	sl_logread_close(r);
	free(raw);
	free(want);
	return rc < 0 ? rc : 0;
}

static uint64_t *sort_order(const struct fo *f)
{
	uint64_t *keys = malloc(f->n_ack * 2 * sizeof(uint64_t) + 1), *order;

	if (!keys)
		return NULL;
	/* (lsn, index) pairs sorted by lsn; the index is what we need */
	for (size_t i = 0; i < f->n_ack; i++) {
		keys[2 * i] = f->ack_lsn[i];
		keys[2 * i + 1] = i;
	}
	qsort(keys, f->n_ack, 2 * sizeof(uint64_t), bench_cmp_u64);
	order = keys;
	for (size_t i = 0; i < f->n_ack; i++)
		order[i] = keys[2 * i + 1];
	return order;
}

static int count_lost(struct fo *f, uint64_t *lost)
{
	uint8_t *bad = calloc(f->n_ack + 1, 1);
	uint64_t *order = sort_order(f);
	int rc = bad && order ? 0 : -ENOMEM;

	*lost = 0;
	for (unsigned i = 0; rc == 0 && i < NODES; i++)
		if ((rc = check_node(f, i, order, bad)) < 0)
			fprintf(stderr, "shipbench failover: reading node %u's log: %s\n", i + 1,
				sl_err_msg());
	for (size_t j = 0; rc == 0 && j < f->n_ack; j++)
		*lost += bad[j];
	free(bad);
	free(order);
	return rc;
}

/* --- the run ------------------------------------------------------------------- */

static void stop_all(struct fo *f)
{
	for (unsigned i = 0; i < NODES; i++) {
		disconnect_node(f, i);
		if (f->pid[i] > 0) {
			kill(f->pid[i], SIGCONT);
			kill(f->pid[i], SIGTERM);
		}
	}
	for (unsigned i = 0; i < NODES; i++)
		reap(f, i);
}

/* Nearest rank. */
static double quantile(const double *sorted, uint64_t n, double q)
{
	uint64_t r = (uint64_t)(q * (double)n + 0.999999);

	return sorted[r == 0 ? 0 : r > n ? n - 1 : r - 1];
}

static void report(struct fo *f, uint64_t lost, double rtt_us)
{
	double p50, p99, max, lead_max = 0, after_max = 0, load[3] = {0};

	for (uint64_t k = 0; k < f->kills; k++) {
		if (f->lead_ms[k] > lead_max)
			lead_max = f->lead_ms[k];
		if (f->fail_ms[k] - f->lead_ms[k] > after_max)
			after_max = f->fail_ms[k] - f->lead_ms[k];
	}
	qsort(f->fail_ms, f->kills, sizeof(double), bench_cmp_double);
	p50 = quantile(f->fail_ms, f->kills, 0.5);
	p99 = quantile(f->fail_ms, f->kills, 0.99);
	max = f->fail_ms[f->kills - 1];
	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	if (f->c->json) {
		struct bench_json j;

		bench_json_begin(&j, "failover");
		bench_json_int(&j, "kills", (long long)f->kills);
		bench_json_num(&j, "failover_p50_ms", p50);
		bench_json_num(&j, "failover_p99_ms", p99);
		bench_json_num(&j, "failover_max_ms", max);
		bench_json_num(&j, "leader_max_ms", lead_max);
		bench_json_num(&j, "commit_after_leader_max_ms", after_max);
		bench_json_int(&j, "acked_lost", (long long)lost);
		bench_json_int(&j, "acked", (long long)f->n_ack);
		bench_json_str(&j, "signal", f->pause ? "SIGSTOP" : "SIGKILL");
		if (f->pause) {
			bench_json_int(&j, "fenced_taken", (long long)f->fenced_taken);
			bench_json_int(&j, "fenced_acked", (long long)f->fenced_acked);
		}
		bench_json_int(&j, "compress_thread", f->zstage);
		bench_json_int(&j, "election_timeout_ms", (long long)f->eto_ms);
		bench_json_int(&j, "heartbeat_ms", (long long)f->hb_ms);
		bench_json_num(&j, "udp_rtt_us", rtt_us);
		bench_json_num(&j, "p50_per_election_timeout", p50 / (double)f->eto_ms);
		bench_json_num(&j, "p99_per_election_timeout", p99 / (double)f->eto_ms);
		bench_json_num(&j, "p50_per_rtt", rtt_us > 0 ? p50 * 1e3 / rtt_us : 0);
		bench_json_num(&j, "loadavg", load[0]);
		bench_json_end(&j);
		return;
	}
	printf(
	    "failover (%s of the leader under load, 3 shipd, acks=majority durable):\n"
	    "  kills %" PRIu64 ": to the first new commit p50 %.1f ms, p99 %.1f ms, max %.1f "
	    "ms\n"
	    "  of which: to a new leader at most %.1f ms, from it to the commit at most %.1f ms\n"
	    "  acknowledged %zu records, lost %" PRIu64 "\n",
	    f->pause ? "SIGSTOP" : "SIGKILL", f->kills, p50, p99, max, lead_max, after_max,
	    f->n_ack, lost);
	if (f->pause)
		printf("  the resumed leader took %" PRIu64 " appends, acknowledged %" PRIu64 "\n",
		       f->fenced_taken, f->fenced_acked);
	printf("  limit: election timeout %" PRIu64 " ms (a follower stands after [t, 1.5t)), "
	       "heartbeat %" PRIu64 " ms, UDP loopback round trip %.1f us\n"
	       "  ratio: p50 %.2f x the election timeout, %.0f x the round trip; load average "
	       "%.1f\n",
	       f->eto_ms, f->hb_ms, rtt_us, p50 / (double)f->eto_ms,
	       rtt_us > 0 ? p50 * 1e3 / rtt_us : 0, load[0]);
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: shipbench failover [--kills N] [--pause] [--load-ms MS]\n"
	    "                          [--election-timeout-ms MS] [--heartbeat-ms MS]\n"
	    "                          [--bytes N] [--compress-thread] [--shipd PATH] [--keep]\n"
	    "                          [--json] [--dir DIR]\n"
	    "Runs 3 shipd processes (kernel UDP on 127.0.0.1, elections on, acks=majority,\n"
	    "ack_level=durable, logs under DIR), appends through libshiplog to the leader\n"
	    "in bursts of %d records, and N times (default %d) loads the cluster for\n"
	    "--load-ms (default %d), kills the leader's shipd with SIGKILL and measures\n"
	    "the time to the first burst another node commits, then restarts the killed\n"
	    "node and waits until it follows and holds every acknowledged record.\n"
	    "At the end every acknowledged record is read back from every node's log:\n"
	    "acked_lost counts those missing or changed. One progress line per kill on\n"
	    "stderr.\n\n"
	    "  --pause                 SIGSTOP instead (SIGCONT once another leads): the\n"
	    "                          resumed leader must take no append it acknowledges\n"
	    "  --election-timeout-ms   [stream] election_timeout_ms (default %d)\n"
	    "  --heartbeat-ms          [stream] heartbeat_ms (default %d)\n"
	    "  --bytes N               record size (default %d)\n"
	    "  --compress-thread       [stream] compress_thread = on, batch_bytes = 2048\n"
	    "                          (a burst fills batches: it goes through the stage)\n"
	    "  --shipd PATH            the shipd to run (default: next to shipbench, or\n"
	    "                          ../app/shipd from it in a build tree)\n"
	    "  --keep                  keep DIR (configs n1..n3.ini, logs, shipd output)\n",
	    BURST, KILLS_DEFAULT, LOAD_MS_DEFAULT, ETO_MS_DEFAULT, HB_MS_DEFAULT, BYTES_DEFAULT);
}

static const char *default_shipd(char *buf, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return NULL;
	*slash = '\0';
	snprintf(buf, cap, "%s/shipd", self);
	if (access(buf, X_OK) == 0)
		return buf;
	snprintf(buf, cap, "%s/../app/shipd", self);
	return access(buf, X_OK) == 0 ? buf : NULL;
}

static int parse(struct fo *f, int argc, char **argv, char *shipd_buf, size_t cap)
{
	f->kills = KILLS_DEFAULT;
	f->load_ms = LOAD_MS_DEFAULT;
	f->eto_ms = ETO_MS_DEFAULT;
	f->hb_ms = HB_MS_DEFAULT;
	f->bytes = BYTES_DEFAULT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--pause") == 0) {
			f->pause = 1;
			continue;
		} else if (strcmp(a, "--compress-thread") == 0) {
			f->zstage = 1;
			continue;
		} else if (strcmp(a, "--keep") == 0) {
			f->keep = 1;
			continue;
		} else if (!v) {
			rc = -EINVAL;
		} else if (strcmp(a, "--kills") == 0) {
			rc = bench_parse_u64(a, v, 1, 100000, &f->kills);
		} else if (strcmp(a, "--load-ms") == 0) {
			rc = bench_parse_u64(a, v, 1, 3600000, &f->load_ms);
		} else if (strcmp(a, "--election-timeout-ms") == 0) {
			rc = bench_parse_u64(a, v, 10, 600000, &f->eto_ms);
		} else if (strcmp(a, "--heartbeat-ms") == 0) {
			rc = bench_parse_u64(a, v, 1, 60000, &f->hb_ms);
		} else if (strcmp(a, "--bytes") == 0) {
			rc = bench_parse_u64(a, v, 32, 1u << 20, &f->bytes);
		} else if (strcmp(a, "--shipd") == 0) {
			f->shipd = v;
		} else {
			rc = -EINVAL;
		}
		if (rc) {
			if (rc == -EINVAL && (!v || a[0] != '-' || a[1] != '-'))
				fprintf(stderr, "shipbench failover: bad option '%s'\n", a);
			usage(stderr);
			return -EINVAL;
		}
		i++;
	}
	if (!f->shipd && !(f->shipd = default_shipd(shipd_buf, cap))) {
		fprintf(stderr, "shipbench failover: no shipd found next to shipbench: give "
				"--shipd PATH\n");
		return -EINVAL;
	}
	return 0;
}

int bench_failover_main(const struct bench_common *c, int argc, char **argv)
{
	struct fo f = {.c = c};
	char shipd[PATH_MAX + 16];
	uint64_t lost = 0;
	double rtt;
	int rc;

	if (parse(&f, argc, argv, shipd, sizeof(shipd)))
		return 2;
	if (c->dir) {
		snprintf(f.dir, sizeof(f.dir), "%s", c->dir);
		if (mkdir(f.dir, 0700) && errno != EEXIST) {
			fprintf(stderr, "shipbench failover: %s: %s\n", f.dir, strerror(errno));
			return 1;
		}
	} else {
		snprintf(f.dir, sizeof(f.dir), "/var/tmp/shipbench-failover.XXXXXX");
		if (!mkdtemp(f.dir)) {
			fprintf(stderr, "shipbench failover: mkdtemp: %s\n", strerror(errno));
			return 1;
		}
		f.own_dir = 1;
	}
	f.rec = malloc(BURST * f.bytes);
	f.fail_ms = calloc(f.kills, sizeof(double));
	f.lead_ms = calloc(f.kills, sizeof(double));
	rc = f.rec && f.fail_ms && f.lead_ms ? 0 : -ENOMEM;
	rtt = udp_rtt_us();
	if (rc == 0 && (rc = free_ports(&f)) == 0 && (rc = write_configs(&f)) == 0) {
		for (unsigned i = 0; rc == 0 && i < NODES; i++)
			rc = start_node(&f, i);
		for (unsigned i = 0; rc == 0 && i < NODES; i++)
			rc = connect_node(&f, i);
	}
	for (uint64_t k = 0; rc == 0 && k < f.kills; k++)
		rc = one_kill(&f, k);
	if (rc == 0)
		rc = load_for(&f, f.load_ms);
	/* every node holds every acknowledged record before they stop */
	for (unsigned i = 0; rc == 0 && i < NODES; i++)
		if (find_leader(&f, -1) != (int)i)
			rc = wait_rejoined(&f, i);
	stop_all(&f);
	if (rc == 0)
		rc = count_lost(&f, &lost);
	if (rc == 0)
		report(&f, lost, rtt);
	else
		fprintf(stderr, "shipbench failover: failed (%s); node logs in %s\n", strerror(-rc),
			f.dir);
	if (f.own_dir && !f.keep && rc == 0)
		bench_remove_dir(f.dir);
	free(f.rec);
	free(f.fail_ms);
	free(f.lead_ms);
	free(f.ack_lsn);
	free(f.ack_seq);
	return rc == 0 && lost == 0 && f.fenced_acked == 0 ? 0 : 1;
}
