/* Nodes end to end: three shiplog nodes in this process, one thread each,
 * over kernel UDP on 127.0.0.1 (and once over DPDK memif links) with real
 * logs (sl_cluster, app/cluster.c).
 * 100,000 records with acks=1 at ack_level=durable: the commit LSN reaches
 * the last record, every follower is delivered every record exactly once, in
 * order, with the bytes appended, and every follower's log holds the
 * leader's byte for byte; then the same with a follower closed and reopened
 * mid-run (its log recovered, its engine resuming after what it applied),
 * which must catch up. Plus the node's own edges: directory rules, refused
 * configurations, the key file; and a leader with compress_thread and
 * elections stepping down with records in its compressor stage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shiplog/cluster.h"
#include "shiplog/err.h"
#include "shiplog/node.h"
#include "store_helpers.h"

#define RECORDS 100000

static struct sl_cluster_opts base_opts(void)
{
	struct sl_cluster_opts o = {
	    .nodes = 3,
	    .net = SL_CLUSTER_UDP,
	    .policy = {.acks = 1, .level = SL_ACK_DURABLE},
	    .record_bytes = 200,
	    .data = SL_WL_TEXT,
	    .seed = 7,
	    .mode = SL_CLUSTER_CLOSED,
	    .inflight = 512, /* enough in flight that 100,000 take seconds, not minutes */
	    .records = RECORDS,
	    .check_records = 1,
	    .progress = getenv("SHIPLOG_TEST_PROGRESS") != NULL, /* a line a second */
	};
	const char *tmp = getenv("SHIPLOG_TEST_TMP");

	if (tmp && tmp[0]) {
		mkdir(tmp, 0755);
		o.base_dir = tmp;
	}
	return o;
}

static void check_replicated(const struct sl_cluster_result *r, uint64_t records)
{
	assert_int_equal(r->appended, records);
	assert_int_equal(r->commit_lsn, records);
	assert_true(r->drained);
	assert_int_equal(r->n_followers, 2);
	for (unsigned i = 0; i < r->n_followers; i++) {
		const struct sl_cluster_follower *f = &r->f[i];

		/* Exactly once, in order: every delivery started right after the
		 * previous one and the count adds up to the records appended. */
		assert_int_equal(f->order_errors, 0);
		assert_int_equal(f->record_errors, 0);
		assert_int_equal(f->delivered_lsn, records);
		assert_int_equal(f->delivered, records);
		assert_true(f->log_identical);
		assert_int_equal(f->log_bytes, r->commit_pos);
		assert_true(f->log_batches > 0);
	}
	assert_true(r->verified);
	assert_true(r->commit.count > 0);
	assert_true(r->lag.count > 0);
}

static void test_three_nodes_udp(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	(void)state;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, RECORDS);
	assert_int_equal(r.f[0].restarts + r.f[1].restarts, 0);
}

/* --breakdown: the nodes' traces matched batch by batch. Every batch of an
 * open loop is followed from its first record's due time to its commit;
 * each hop is recorded once per batch, and a commit (which needs a
 * follower's durable copy at acks=1 durable) takes at least the follower's
 * write. */
static void test_breakdown(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	const struct sl_cluster_breakdown *b = &r.breakdown;
	int rc;

	(void)state;
	o.mode = SL_CLUSTER_OPEN;
	o.rate = 2000;
	o.records = 2000;
	o.breakdown = 1;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, 2000);
	assert_true(b->batches > 0);
	assert_true(b->batches >= 9 * b->unmatched);
	assert_int_equal(b->trace_full, 0);
	assert_int_equal(b->hop[SL_HOP_TOTAL].count, b->batches);
	assert_int_equal(b->hop[SL_HOP_F_WRITE].count, b->batches);
	assert_int_equal(b->hop[SL_HOP_WIRE].count + b->hop[SL_HOP_WIRE_ASLEEP].count, b->batches);
	assert_int_equal(b->hop[SL_HOP_ACK_WIRE].count + b->hop[SL_HOP_ACK_WIRE_ASLEEP].count,
			 b->batches);
	assert_true(b->hop[SL_HOP_TOTAL].min >= b->hop[SL_HOP_F_WRITE].min);
	assert_true(b->hop[SL_HOP_TOTAL].max <= r.commit.max);
	/* every follower delivers every batch, after the commit */
	assert_int_equal(b->hop[SL_HOP_LAG].count, 2 * b->batches);
	assert_true(b->hop[SL_HOP_LAG].min >= b->hop[SL_HOP_F_WRITE].min);
	for (unsigned h = 0; h < SL_HOPS; h++)
		assert_string_not_equal(sl_cluster_hop_name(h), "unknown");
}

/* Node 3 goes down for half a second after 30,000 records and comes back on
 * its recovered log, its engine resuming after the last LSN it applied; it
 * must catch up (from the leader's in-memory window: 16 MiB hold this whole
 * run) and end with every record, once. */
static void run_restart(size_t window_bytes, int check_records, uint64_t records)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	o.restart_node = 3;
	o.restart_at = 30000;
	o.restart_down_ms = 500;
	o.window_bytes = window_bytes;
	o.check_records = check_records;
	o.records = records;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, records);
	assert_int_equal(r.f[1].restarts, 1);
	assert_int_equal(r.f[0].restarts, 0);
	if (window_bytes)
		assert_true(r.leader_status.peers[1].catchup_batches > 0);
}

static void test_follower_restart_catches_up(void **state)
{
	(void)state;
	run_restart(0, 1, RECORDS);
}

/* The same with engines that read no records: deliveries are headers
 * alone, nothing is decompressed for them, and after the restart the
 * batches node 3 had applied are still not delivered again (the counts and
 * the order check). */
static void test_follower_restart_headers(void **state)
{
	(void)state;
	run_restart(0, 0, 50000);
}

/* The same with a 1 MiB window, so that what node 3 missed is served from
 * the leader's disk (the read op, sl_store_read_pos) before it rejoins the
 * live stream. */
static void test_follower_restart_disk_catchup(void **state)
{
	(void)state;
	run_restart(1 << 20, 1, RECORDS);
}

/* With a pre-shared key every frame carries a MAC: the protocol is given
 * 16 bytes less of the MTU, the node signs what it sends and drops what
 * does not verify (none here). */
static void test_three_nodes_mac(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	char *dir = th_mkdtemp("node-key"), *key = th_path(dir, "cluster.key");
	FILE *f = fopen(key, "w");
	int rc;

	(void)state;
	assert_non_null(f);
	fputs("f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff\n", f);
	fclose(f);
	chmod(key, 0600);
	o.key_file = key;
	o.records = 20000;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, 20000);
	assert_int_equal(r.leader_stats.mac_rejected, 0);
	for (unsigned i = 0; i < r.n_followers; i++)
		assert_int_equal(r.f[i].stats.mac_rejected, 0);
	th_rmrf(dir);
	free(key);
	free(dir);
}

/* The same over DPDK: a net_memif pair per pair of nodes (no hugepages,
 * no root), each node's transport the mesh of its two links. */
static void test_three_nodes_memif(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	(void)state;
	o.net = SL_CLUSTER_MEMIF;
	o.records = 20000;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, 20000);
}

/* The same over DPDK net_af_packet: a veth pair per pair of nodes, each
 * end in its node's network namespace (made and removed by the run). */
static void test_three_nodes_af_packet(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	(void)state;
	o.net = SL_CLUSTER_AF_PACKET;
	o.records = 20000;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, 20000);
}

/* The same over the kernel TCP baseline (plain sockets on 127.0.0.1). */
static void test_three_nodes_tcp(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	(void)state;
	o.net = SL_CLUSTER_TCP;
	o.records = 20000;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, 20000);
}

/* Records made by two client threads and handed to the leader's thread:
 * every one committed and delivered once (their bytes are the clients',
 * so the followers do not regenerate them). */
static void test_three_nodes_clients(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	(void)state;
	o.clients = 2;
	o.check_records = 0;
	o.records = 20000;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, 20000);
	assert_int_equal(r.commit.count, 20000);
	o.check_records = 1; /* refused: the followers could not regenerate them */
	assert_int_equal(sl_cluster_run(&o, &r), -EINVAL);
}

/* Group commit: the leader also seals whenever its log is idle (or, with
 * seal_when_idle, whenever nothing it sealed is in flight), in open loop
 * with sealing otherwise left to the linger. Every record arrives, once,
 * in order, and some batches went because the log (or the pipeline) was
 * idle. */
static void run_seal_when_idle(int log_only)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	/* A record every millisecond: most find the log idle even under ASan
	 * on a loaded machine (at 20,000/s under ASan none did: the log was
	 * always busy, batches sealed by size). */
	o.mode = SL_CLUSTER_OPEN;
	o.rate = 1000;
	o.records = 2000;
	o.seal_by_linger = 1;
	o.seal_when_log_idle = log_only;
	o.seal_when_idle = !log_only;
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, 2000);
	assert_true((log_only ? r.leader_stats.log_idle_seals : r.leader_stats.idle_seals) > 0);
	assert_int_equal(log_only ? r.leader_stats.idle_seals : r.leader_stats.log_idle_seals, 0);
}

static void test_seal_when_log_idle(void **state)
{
	(void)state;
	run_seal_when_idle(1);
}

static void test_seal_when_idle(void **state)
{
	(void)state;
	run_seal_when_idle(0);
}

/* compress_thread: the leader's full batches go through the compressor
 * stage. Closed loop (a backlog: batches fill), then sealing left to the
 * linger (the stage's open slot sealed by it; LZ4 acceleration 8), then an open loop slow
 * enough that no batch fills (the stage never used): every record
 * arrives once, in order, byte for byte, and the logs are identical. */
static void run_compress_thread(enum sl_cluster_mode mode, int by_linger, int staged)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;
	int rc;

	o.compress_thread = 1;
	o.mode = mode;
	o.rate = 1000;
	o.records = mode == SL_CLUSTER_OPEN ? 500 : 30000;
	o.seal_by_linger = by_linger;
	o.lz4_accel = by_linger ? 8 : 0; /* batches of LZ4 acceleration 8: read as any */
	rc = sl_cluster_run(&o, &r);
	if (rc < 0)
		fail_msg("cluster: %d %s", rc, r.error);
	check_replicated(&r, o.records);
	if (staged)
		assert_true(r.leader_stats.stage_batches > 0);
	else
		assert_int_equal(r.leader_stats.stage_batches, 0);
}

static void test_compress_thread(void **state)
{
	(void)state;
	run_compress_thread(SL_CLUSTER_CLOSED, 0, 1);
	run_compress_thread(SL_CLUSTER_CLOSED, 1, 1);
	run_compress_thread(SL_CLUSTER_OPEN, 1, 0);
}

/* compress_thread with elections: a leader whose stage holds a backlog
 * steps down. The staged records end as an open batch does: the engine is
 * told to forget them (truncate at the first), no LSN it saw committed is
 * past that, and the new leader's log holds every LSN the old one reported
 * committed with the bytes appended under it, and none of the dropped
 * records; the new leader's own appends (through its stage) get LSNs
 * after those and land under them. */
#define SD_NODES 3
#define SD_REC	 200

struct sd_eng {
	uint64_t commit, trunc; /* highest commit; lowest truncate (0: none) */
	int leading;
};

static void sd_commit(void *ctx, uint64_t lsn)
{
	struct sd_eng *e = ctx;

	if (e->leading && lsn > e->commit)
		e->commit = lsn;
}

static void sd_role(void *ctx, enum sl_role role, uint64_t epoch, uint32_t leader_id)
{
	struct sd_eng *e = ctx;

	(void)epoch;
	(void)leader_id;
	e->leading = role == SL_ROLE_LEADER;
}

static void sd_truncate(void *ctx, uint64_t lsn)
{
	struct sd_eng *e = ctx;

	if (!e->trunc || lsn < e->trunc)
		e->trunc = lsn;
}

/* The record `who` appended with `lsn`: both in its bytes. */
static void sd_rec(uint8_t *rec, uint32_t who, uint64_t lsn)
{
	memset(rec, 'a' + (int)(lsn % 26), SD_REC);
	snprintf((char *)rec, SD_REC, "node %u lsn %llu", who, (unsigned long long)lsn);
}

static void sd_poll_all(struct sl_node **n)
{
	for (int i = 0; i < SD_NODES; i++)
		assert_true(sl_node_poll(n[i]) >= 0);
}

/* The record at `lsn` in node n's log, into rec: 0, or -ENOENT. */
static int sd_read(struct sl_node *n, uint64_t lsn, uint8_t *rec)
{
	static uint8_t batch[1 << 20], raw[1 << 20];
	struct sl_batch_hdr h;
	struct sl_rec_iter it;
	const uint8_t *r;
	uint32_t len;
	int rc = sl_node_read(n, lsn, batch, sizeof(batch), &h);

	if (rc == -ENOENT)
		return rc;
	assert_true(rc > 0);
	assert_true(sl_batch_decode(batch, (size_t)rc, NULL, raw, sizeof(raw), &h) >= 0);
	sl_rec_iter_init(&it, raw, h.raw_len);
	for (uint64_t l = h.base_lsn; sl_rec_next(&it, &r, &len) == 1; l++)
		if (l == lsn) {
			assert_int_equal(len, SD_REC);
			memcpy(rec, r, SD_REC);
			return 0;
		}
	fail_msg("lsn %llu not in its batch", (unsigned long long)lsn);
	return -EIO;
}

static void test_compress_thread_stepdown(void **state)
{
	char *dir[SD_NODES];
	uint16_t ports[SD_NODES];
	struct sl_node *n[SD_NODES];
	struct sd_eng eng[SD_NODES] = {0};
	struct sl_proto_status st;
	struct sl_node_stats ns;
	uint8_t rec[SD_REC], got[SD_REC];
	uint64_t lsn, last1 = 0, commit1, first2, last2, deadline;
	int64_t a;
	int lead = -1;

	(void)state;
	assert_int_equal(sl_cluster_free_ports(ports, SD_NODES), 0);
	for (int i = 0; i < SD_NODES; i++) {
		struct sl_node_config c = {0};
		struct sl_node_engine e = {
		    .ctx = &eng[i], .commit = sd_commit, .role = sd_role, .truncate = sd_truncate};

		dir[i] = th_mkdtemp("node-zsd");
		memcpy(c.proto.cluster_id, "test-node-zstage", 16);
		c.proto.stream_id = 1;
		c.proto.node_id = (uint32_t)i + 1;
		c.proto.n_nodes = SD_NODES;
		for (int j = 0; j < SD_NODES; j++)
			c.proto.node_ids[j] = (uint32_t)j + 1;
		c.proto.leader_id = 1;
		c.proto.epoch = 1;
		c.proto.elect = 1;
		c.proto.policy.acks = 1;
		c.proto.batch_bytes = 8192;
		c.compress_thread = 1;
		c.store.dir = dir[i];
		c.net.self = (struct sl_endpoint){.ip = htonl(0x7f000001), .port = ports[i]};
		for (int j = 0; j < SD_NODES; j++)
			if (j != i)
				c.net.peers[c.net.n_peers++] = (struct sl_peer_addr){
				    .node_id = (uint32_t)j + 1,
				    .ep = {.ip = htonl(0x7f000001), .port = ports[j]}};
		if (sl_node_open(&n[i], &c, &e))
			fail_msg("node %d: %s", i + 1, sl_err_msg());
		eng[i].leading = i == 0;
	}
	/* Node 1 leads: some records committed, with polls between. */
	deadline = sl_node_now() + 5000000000ull;
	while (eng[0].commit < 200 && sl_node_now() < deadline) {
		for (int k = 0; k < 20; k++) {
			sd_rec(rec, 1, last1 + 1);
			if ((a = sl_node_append(n[0], rec, SD_REC)) == -EAGAIN)
				break;
			assert_int_equal(a, (int64_t)last1 + 1);
			last1++;
		}
		sd_poll_all(n);
	}
	assert_true(eng[0].commit >= 200);
	/* Then a backlog without a poll: batches fill, the stage takes them
	 * until every slot is busy. */
	for (;;) {
		sd_rec(rec, 1, last1 + 1);
		if ((a = sl_node_append(n[0], rec, SD_REC)) == -EAGAIN)
			break;
		assert_int_equal(a, (int64_t)last1 + 1);
		last1++;
	}
	assert_true(sl_node_staged(n[0]) > 0);
	assert_int_equal(eng[0].trunc, 0);
	/* Leadership lost: the stage's records are forgotten. */
	assert_int_equal(sl_node_stepdown(n[0]), 0);
	assert_int_equal(sl_node_staged(n[0]), 0);
	assert_true(eng[0].trunc > eng[0].commit && eng[0].trunc <= last1);
	commit1 = eng[0].commit;
	sl_node_status(n[0], &st);
	assert_int_equal(st.role, SL_ROLE_FOLLOWER);
	assert_true(sl_node_append(n[0], rec, SD_REC) < 0);
	/* A new leader is elected (node 1 stands only after the others). */
	deadline = sl_node_now() + 10000000000ull;
	while (lead < 0 && sl_node_now() < deadline) {
		sd_poll_all(n);
		for (int i = 0; i < SD_NODES; i++) {
			sl_node_status(n[i], &st);
			if (st.role == SL_ROLE_LEADER)
				lead = i;
		}
	}
	assert_true(lead >= 0);
	/* Its own appends, through its stage too, committed. */
	sl_node_status(n[lead], &st);
	first2 = st.next_lsn;
	last2 = first2 - 1;
	eng[lead].commit = 0;
	deadline = sl_node_now() + 5000000000ull;
	while (eng[lead].commit < first2 + 1999 && sl_node_now() < deadline) {
		for (int k = 0; k < 50 && last2 < first2 + 1999; k++) {
			sd_rec(rec, (uint32_t)lead + 1, last2 + 1);
			if ((a = sl_node_append(n[lead], rec, SD_REC)) == -EAGAIN)
				break;
			assert_int_equal(a, (int64_t)last2 + 1);
			last2++;
		}
		sl_node_flush(n[lead]);
		sd_poll_all(n);
	}
	sl_node_stats(n[lead], &ns);
	assert_true(ns.stage_batches > 0);
	assert_true(first2 > commit1);
	assert_true(eng[lead].commit >= last2);
	/* Node 1's committed records are in the new leader's log, its dropped
	 * ones are not, the new leader's are under their LSNs. */
	for (lsn = 1; lsn <= commit1; lsn++) {
		sd_rec(rec, 1, lsn);
		assert_int_equal(sd_read(n[lead], lsn, got), 0);
		assert_memory_equal(got, rec, SD_REC);
	}
	for (lsn = eng[0].trunc; lsn <= last1; lsn++) {
		sd_rec(rec, 1, lsn);
		if (sd_read(n[lead], lsn, got) == 0)
			assert_memory_not_equal(got, rec, SD_REC);
	}
	for (lsn = first2; lsn <= last2; lsn++) {
		sd_rec(rec, (uint32_t)lead + 1, lsn);
		assert_int_equal(sd_read(n[lead], lsn, got), 0);
		assert_memory_equal(got, rec, SD_REC);
	}
	for (int i = 0; i < SD_NODES; i++) {
		sl_node_close(n[i]);
		th_rmrf(dir[i]);
		free(dir[i]);
	}
}

/* A single node commits on its own durability. */
static void test_single_node(void **state)
{
	struct sl_cluster_opts o = base_opts();
	static struct sl_cluster_result r;

	(void)state;
	o.nodes = 1;
	o.policy.acks = 0;
	o.records = 5000;
	assert_int_equal(sl_cluster_run(&o, &r), 0);
	assert_int_equal(r.commit_lsn, 5000);
	assert_int_equal(r.n_followers, 0);
	assert_true(r.verified);
}

/* A 2-node config for the edge cases, its log in `dir`. */
static struct sl_node_config one_config(const char *dir, uint16_t port, uint16_t peer_port)
{
	struct sl_node_config c = {0};

	memcpy(c.proto.cluster_id, "test-node-edges", 16);
	c.proto.stream_id = 1;
	c.proto.node_id = 1;
	c.proto.n_nodes = 2;
	c.proto.node_ids[0] = 1;
	c.proto.node_ids[1] = 2;
	c.proto.leader_id = 1;
	c.proto.epoch = 1;
	c.proto.policy.acks = 1;
	c.store.dir = dir;
	c.net.self = (struct sl_endpoint){.ip = htonl(0x7f000001), .port = port};
	c.net.n_peers = 1;
	c.net.peers[0] =
	    (struct sl_peer_addr){.node_id = 2, .ep = {.ip = htonl(0x7f000001), .port = peer_port}};
	return c;
}

static void test_open_rules(void **state)
{
	char *dir = th_mkdtemp("node"), *other, *file, *key;
	uint16_t ports[2];
	struct sl_node_config c;
	struct sl_node *n = NULL;
	struct sl_store_info info;
	FILE *f;

	(void)state;
	assert_int_equal(sl_cluster_free_ports(ports, 2), 0);
	c = one_config(dir, ports[0], ports[1]);
	/* A new directory: created; then the same directory is recovered. */
	assert_int_equal(sl_node_open(&n, &c, NULL), 0);
	assert_true(sl_node_append(n, "hello", 5) == 1);
	sl_node_close(n);
	n = NULL;
	assert_int_equal(sl_node_open(&n, &c, NULL), 0);
	sl_node_store_info(n, &info);
	assert_int_equal(info.next_lsn, 2); /* close flushed the open batch */
	/* The leader's read op serves the batch back by position. */
	{
		uint8_t buf[256];
		struct sl_batch_hdr h;

		assert_true(sl_node_read_pos(n, 0, buf, sizeof(buf), &h) > 0);
		assert_int_equal(h.base_lsn, 1);
	}
	sl_node_close(n);
	n = NULL;

	/* A directory holding some other file is not taken for a new one. */
	other = th_mkdtemp("node-other");
	file = th_path(other, "notes.txt");
	f = fopen(file, "w");
	assert_non_null(f);
	fputs("not a log\n", f);
	fclose(f);
	c.store.dir = other;
	assert_true(sl_node_open(&n, &c, NULL) < 0);
	assert_non_null(strstr(sl_err_msg(), "recovering log"));
	th_rmrf(other);
	free(other);
	free(file);

	/* Refused configurations name what is wrong. */
	c = one_config(dir, ports[0], ports[1]);
	c.store.group_bytes = 64 << 10; /* smaller than a 1 MiB record's batch */
	assert_int_equal(sl_node_open(&n, &c, NULL), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "group_bytes"));
	c = one_config(dir, ports[0], ports[1]);
	c.net.self_id = 9;
	assert_int_equal(sl_node_open(&n, &c, NULL), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "self_id"));
	/* [node] cpu: a CPU this process may not run on is refused; one it may
	 * is where the loop's thread runs from its first turn. */
	c = one_config(dir, ports[0], ports[1]);
	c.pin_cpu = 1;
	c.cpu = CPU_SETSIZE - 1;
	assert_int_equal(sl_node_open(&n, &c, NULL), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "not a CPU this process may run on"));
	{
		cpu_set_t was, now;
		int last = -1;

		assert_int_equal(sched_getaffinity(0, sizeof(was), &was), 0);
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &was))
				last = i;
		c.cpu = (uint32_t)last;
		assert_int_equal(sl_node_open(&n, &c, NULL), 0);
		assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
		assert_true(CPU_EQUAL(&was, &now)); /* open pins nothing */
		assert_true(sl_node_poll(n) >= 0);
		assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
		assert_int_equal(CPU_COUNT(&now), 1);
		assert_true(CPU_ISSET(last, &now));
		sl_node_close(n);
		n = NULL;
		assert_int_equal(sched_setaffinity(0, sizeof(was), &was), 0);
	}

	/* A key file others may read is refused (net/auth.c's rule). */
	key = th_path(dir, "node.key"); /* a regular file: after the log exists */
	f = fopen(key, "w");
	assert_non_null(f);
	fputs("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", f);
	fclose(f);
	chmod(key, 0644);
	c = one_config(dir, ports[0], ports[1]);
	c.key_file = key;
	assert_true(sl_node_open(&n, &c, NULL) < 0);
	chmod(key, 0600);
	assert_int_equal(sl_node_open(&n, &c, NULL), 0);
	sl_node_close(n);
	unlink(key);
	free(key);
	th_rmrf(dir);
	free(dir);
}

static void test_parsers(void **state)
{
	enum sl_idle idle;
	enum sl_cluster_net net;

	(void)state;
	assert_int_equal(sl_idle_parse("backoff", &idle), 0);
	assert_int_equal(idle, SL_IDLE_BACKOFF);
	assert_int_equal(sl_idle_parse("spin", &idle), 0);
	assert_int_equal(idle, SL_IDLE_SPIN);
	assert_int_equal(sl_idle_parse("nap", &idle), 0);
	assert_int_equal(idle, SL_IDLE_NAP);
	assert_string_equal(sl_idle_name(SL_IDLE_NAP), "nap");
	assert_int_equal(sl_idle_parse("doze", &idle), -EINVAL);
	assert_string_equal(sl_idle_name(SL_IDLE_YIELD), "yield");
	assert_int_equal(sl_cluster_net_parse("af_packet", &net), 0);
	assert_int_equal(net, SL_CLUSTER_AF_PACKET);
	assert_int_equal(sl_cluster_net_parse("tcp", &net), 0);
	assert_int_equal(net, SL_CLUSTER_TCP);
	assert_string_equal(sl_cluster_net_name(SL_CLUSTER_TCP), "tcp");
	assert_int_equal(sl_cluster_net_parse("sctp", &net), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parsers),
	    cmocka_unit_test(test_open_rules),
	    cmocka_unit_test(test_single_node),
	    cmocka_unit_test(test_seal_when_log_idle),
	    cmocka_unit_test(test_seal_when_idle),
	    cmocka_unit_test(test_compress_thread),
	    cmocka_unit_test(test_compress_thread_stepdown),
	    cmocka_unit_test(test_three_nodes_udp),
	    cmocka_unit_test(test_three_nodes_mac),
	    cmocka_unit_test(test_three_nodes_memif),
	    cmocka_unit_test(test_three_nodes_af_packet),
	    cmocka_unit_test(test_three_nodes_tcp),
	    cmocka_unit_test(test_three_nodes_clients),
	    cmocka_unit_test(test_breakdown),
	    cmocka_unit_test(test_follower_restart_catches_up),
	    cmocka_unit_test(test_follower_restart_headers),
	    cmocka_unit_test(test_follower_restart_disk_catchup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
