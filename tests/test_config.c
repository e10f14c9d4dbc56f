/* shipd's INI configuration (app/config.c): a full valid file read field by
 * field, the defaults, relative paths, the value parsers, and one test per
 * class of refusal, each checking that the message names the file, the line
 * and the key (or section) at fault. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "shiplog/err.h"
#include "store_helpers.h"

/* The base file every refusal test edits. Line numbers below follow it. */
static const char *const base_lines[] = {
    "# a three-node cluster", /* 1 */
    "[cluster]",	      /* 2 */
    "id = 0123456789abcdef0123456789ABCDEF",
    "stream = 7",
    "epoch = 3", /* 5 */
    "leader = 1",
    "",
    "[node]",
    "id = 2",
    "log_dir = @DIR@", /* 10 */
    "",
    "[peer.1]",
    "address = 127.0.0.1:7001",
    "mac = 02:00:00:00:00:01",
    "[peer.2]", /* 15 */
    "address = 127.0.0.1:7002",
    "mac = 02:00:00:00:00:02",
    "[peer.3]",
    "address = 127.0.0.1:7003",
    "mac = 02:00:00:00:00:03", /* 20 */
};
#define BASE_N ((unsigned)(sizeof(base_lines) / sizeof(base_lines[0])))

struct fx {
	char *dir;  /* temp dir: the config file and the log directory */
	char *path; /* the config file */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = th_mkdtemp("config");
	f->path = th_path(f->dir, "shipd.ini");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	chmod(f->dir, 0700);
	th_rmrf(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* The base with line `replace_line` (1-based; 0: none) replaced by `with`
 * (NULL: dropped) and `extra` appended, written to f->path. */
static void write_cfg(struct fx *f, unsigned replace_line, const char *with, const char *extra)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	assert_non_null(m);
	for (unsigned i = 0; i < BASE_N; i++) {
		const char *line = i + 1 == replace_line ? with : base_lines[i];

		if (!line)
			continue;
		if (strcmp(line, "log_dir = @DIR@") == 0)
			fprintf(m, "log_dir = %s\n", f->dir);
		else
			fprintf(m, "%s\n", line);
	}
	if (extra)
		fputs(extra, m);
	assert_int_equal(fclose(m), 0);
	write_file(f->path, text, len);
	free(text);
}

/* Loading must fail, and the message must carry "FILE:LINE:" (or "FILE:"
 * when line is 0) and every needle. */
static void refused(struct fx *f, unsigned line, const char *needle1, const char *needle2)
{
	struct sl_config *c = (struct sl_config *)1;
	char where[PATH_MAX + 16];
	const char *msg;

	sl_err_clear();
	assert_int_not_equal(sl_config_load(f->path, SL_CONFIG_CHECK_FS, &c), 0);
	assert_null(c);
	msg = sl_err_msg();
	if (line)
		snprintf(where, sizeof(where), "%s:%u: ", f->path, line);
	else
		snprintf(where, sizeof(where), "%s: ", f->path);
	if (strstr(msg, where) != msg || !strstr(msg, needle1) ||
	    (needle2 && !strstr(msg, needle2)))
		fail_msg("message '%s' lacks '%s', '%s' or '%s'", msg, where, needle1,
			 needle2 ? needle2 : "");
}

static struct sl_config *loaded(struct fx *f)
{
	struct sl_config *c = NULL;

	if (sl_config_load(f->path, SL_CONFIG_CHECK_FS, &c) != 0)
		fail_msg("refused: %s", sl_err_msg());
	return c;
}

/* ---- valid files ---- */

static void test_full_config_field_by_field(void **state)
{
	struct fx *f = *state;
	char *text, *keyf = th_path(f->dir, "cluster.key");
	struct sl_config *c;
	const struct sl_node_config *n;
	static const uint8_t id[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
				       0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

	write_file(keyf, "k", 1);
	assert_true(asprintf(&text,
			     "; every key\n"
			     "[cluster]\n"
			     "id = 0123456789abcdef0123456789ABCDEF\n"
			     "stream = 7\n"
			     "epoch = 3\n"
			     "leader = 3\n"
			     "[node]\n"
			     "  id = 2   ; inline comment, indented key\n"
			     "log_dir = %s\n"
			     "control_socket = ctl.sock\n"
			     "idle = spin\n"
			     "key_file = cluster.key\n"
			     "drain_timeout = 250ms\n"
			     "[transport]\n"
			     "kind = dpdk\n"
			     "mtu = 9000\n"
			     "eal_args = --no-huge -m 256\n"
			     "eal_args = --vdev net_memif0\n"
			     "port_id = 1\n"
			     "mbufs = 16383\n"
			     "rx_batch = 32\n"
			     "tx_queue = 512\n"
			     "[stream]\n"
			     "acks = 2\n"
			     "ack_level = applied\n"
			     "ack_timeout = 2s\n"
			     "on_timeout = degrade\n"
			     "batch_bytes = 128K\n"
			     "linger_us = 250\n"
			     "local = none\n"
			     "window_bytes = 32MiB\n"
			     "rcv_window_bytes = 4M\n"
			     "max_record_bytes = 64KiB\n"
			     "[store]\n"
			     "segment_bytes = 1G\n"
			     "group_bytes = 4M\n"
			     "max_inflight = 4\n"
			     "sync = fdatasync\n"
			     "io = buffered\n"
			     "[peer.1]\n"
			     "address = 10.0.0.1:7001\n"
			     "mac = 02:00:00:00:00:01\n"
			     "[peer.2]\n"
			     "address = 10.0.0.2:7002\n"
			     "mac = 02:00:00:00:00:02\n"
			     "[peer.3]\n"
			     "address = 10.0.0.3:7003\n"
			     "mac = 02:00:00:00:00:03\n",
			     f->dir) > 0);
	write_file(f->path, text, strlen(text));
	free(text);
	c = loaded(f);
	n = &c->node;

	assert_string_equal(c->path, f->path);
	assert_memory_equal(n->proto.cluster_id, id, 16);
	assert_int_equal(n->proto.stream_id, 7);
	assert_int_equal(n->proto.epoch, 3);
	assert_int_equal(n->proto.leader_id, 3);
	assert_int_equal(n->proto.node_id, 2);
	assert_int_equal(n->proto.n_nodes, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(n->proto.node_ids[i], i + 1);
	assert_string_equal(c->log_dir, f->dir);
	assert_ptr_equal(n->store.dir, c->log_dir);
	assert_true(strcmp(c->control_socket + strlen(f->dir), "/ctl.sock") == 0);
	assert_int_equal(n->idle, SL_IDLE_SPIN);
	assert_string_equal(n->key_file, keyf);
	assert_int_equal(c->drain_timeout_ns, 250000000ull);

	assert_int_equal(n->transport, SL_TRANSPORT_DPDK);
	assert_int_equal(n->net.mtu, 9000);
	assert_int_equal(n->proto.mtu, 9000);
	assert_string_equal(n->net.eal_args, "--no-huge -m 256 --vdev net_memif0");
	assert_int_equal(n->net.port_id, 1);
	assert_int_equal(n->net.mbufs, 16383);
	assert_int_equal(n->net.rx_batch, 32);
	assert_int_equal(n->net.tx_queue, 512);
	assert_int_equal(n->net.self_id, 2);
	assert_int_equal(n->net.self.ip, htonl(0x0a000002));
	assert_int_equal(n->net.self.port, 7002);
	assert_memory_equal(n->net.self.mac, "\x02\0\0\0\0\x02", 6);
	assert_int_equal(n->net.n_peers, 2);
	assert_int_equal(n->net.peers[0].node_id, 1);
	assert_int_equal(n->net.peers[0].ep.ip, htonl(0x0a000001));
	assert_int_equal(n->net.peers[0].ep.port, 7001);
	assert_memory_equal(n->net.peers[0].ep.mac, "\x02\0\0\0\0\x01", 6);
	assert_int_equal(n->net.peers[1].node_id, 3);
	assert_int_equal(n->net.peers[1].ep.port, 7003);

	assert_int_equal(n->proto.policy.acks, 2);
	assert_int_equal(n->proto.policy.level, SL_ACK_APPLIED);
	assert_int_equal(n->proto.policy.timeout_ns, 2000000000ull);
	assert_int_equal(n->proto.policy.on_timeout, SL_ON_TIMEOUT_DEGRADE);
	assert_int_equal(n->proto.policy.local_none, 1);
	assert_int_equal(n->proto.batch_bytes, 128 << 10);
	assert_int_equal(n->proto.linger_ns, 250000);
	assert_int_equal(n->proto.window_bytes, 32 << 20);
	assert_int_equal(n->proto.rcv_window_bytes, 4 << 20);
	assert_int_equal(n->proto.limits.max_record_bytes, 64 << 10);
	assert_int_equal(n->store.limits.max_record_bytes, 64 << 10);

	assert_int_equal(n->store.segment_bytes, 1ull << 30);
	assert_int_equal(n->store.group_bytes, 4 << 20);
	assert_int_equal(n->store.max_inflight, 4);
	assert_int_equal(n->store.sync_mode, SL_SYNC_FDATASYNC);
	assert_int_equal(n->store.io_mode, SL_IO_BUFFERED);
	assert_int_equal(n->store.create, 0);
	assert_memory_equal(n->store.cluster_id, id, 16);
	assert_int_equal(n->store.node_id, 2);
	assert_int_equal(n->store.stream_id, 7);
	sl_config_free(c);
	free(keyf);
}

static void test_defaults(void **state)
{
	struct fx *f = *state;
	struct sl_config *c;
	const struct sl_node_config *n;
	char sock[PATH_MAX];

	write_cfg(f, 4, NULL, NULL); /* no stream: the default */
	c = loaded(f);
	n = &c->node;
	assert_int_equal(n->proto.stream_id, 1);
	snprintf(sock, sizeof(sock), "%s/shipd.sock", f->dir);
	assert_string_equal(c->control_socket, sock);
	assert_int_equal(n->idle, SL_IDLE_BACKOFF);
	assert_null(n->key_file);
	assert_null(n->net.eal_args);
	assert_int_equal(n->transport, SL_TRANSPORT_UDP);
	assert_int_equal(n->net.mtu, 1500);
	assert_int_equal(n->proto.policy.acks, SL_ACKS_MAJORITY);
	assert_int_equal(n->proto.policy.level, SL_ACK_DURABLE);
	assert_int_equal(n->proto.policy.timeout_ns, 1000000000ull);
	assert_int_equal(n->proto.policy.on_timeout, SL_ON_TIMEOUT_BLOCK);
	assert_int_equal(n->proto.policy.local_none, 0);
	assert_int_equal(n->proto.batch_bytes, 64 << 10);
	assert_int_equal(n->proto.linger_ns, 100000);
	assert_int_equal(n->proto.limits.max_record_bytes, 1 << 20);
	assert_int_equal(c->drain_timeout_ns, 5000000000ull);
	assert_int_equal(n->store.group_bytes, 0); /* the node sizes it */
	assert_int_equal(n->store.segment_bytes, 64 << 20);
	assert_int_equal(n->store.sync_mode, SL_SYNC_DEFAULT);
	snprintf(sock, sizeof(sock), "%s/client.sock", f->dir);
	assert_string_equal(c->client_socket, sock);
	assert_int_equal(c->client_ring_bytes, 4 << 20);
	assert_int_equal(c->client_max, 64);
	assert_int_equal(c->client_engine, 0);
	assert_int_equal(n->pin_cpu, 0); /* the loop is not pinned */
	sl_config_free(c);
}

/* [node] cpu: the loop thread's CPU (whether the process may run there is
 * the node's to check when it opens). */
static void test_node_cpu(void **state)
{
	struct fx *f = *state;
	struct sl_config *c;

	write_cfg(f, 11, "cpu = 1", NULL);
	c = loaded(f);
	assert_int_equal(c->node.pin_cpu, 1);
	assert_int_equal(c->node.cpu, 1);
	sl_config_free(c);
	write_cfg(f, 11, "cpu = 0", NULL);
	c = loaded(f);
	assert_int_equal(c->node.pin_cpu, 1);
	assert_int_equal(c->node.cpu, 0);
	sl_config_free(c);
	write_cfg(f, 11, "cpu = -1", NULL);
	refused(f, 11, "[node] cpu", NULL);
	write_cfg(f, 11, "cpu = first", NULL);
	refused(f, 11, "[node] cpu", "'first' is not a number");
	write_cfg(f, 11, "cpu = 1024", NULL);
	refused(f, 11, "[node] cpu", "0..1023");
}

static void test_client_section(void **state)
{
	struct fx *f = *state;
	struct sl_config *c;
	char sock[PATH_MAX];

	write_cfg(f, 0, NULL,
		  "[client]\nsocket = engine.sock\nring_bytes = 1M\nmax_clients = 3\n"
		  "engine = consumer\n");
	c = loaded(f);
	snprintf(sock, sizeof(sock), "%s/engine.sock", f->dir);
	assert_string_equal(c->client_socket, sock);
	assert_int_equal(c->client_ring_bytes, 1 << 20);
	assert_int_equal(c->client_max, 3);
	assert_int_equal(c->client_engine, 1);
	sl_config_free(c);
	write_cfg(f, 0, NULL, "[client]\nengine = rocksdb\n");
	refused(f, BASE_N + 2, "[client] engine", "none or consumer");
	write_cfg(f, 0, NULL, "[client]\nring_bytes = 1K\n");
	refused(f, BASE_N + 2, "[client] ring_bytes", NULL);
	write_cfg(f, 0, NULL, "[client]\nmax_clients = 0\n");
	refused(f, BASE_N + 2, "[client] max_clients", NULL);
}

static void test_relative_paths_and_name_id(void **state)
{
	struct fx *f = *state;
	char *logs = th_path(f->dir, "logs"), want[PATH_MAX];
	struct sl_config *c;

	assert_int_equal(mkdir(logs, 0700), 0);
	/* Relative to the file's directory, not the working directory. */
	write_cfg(f, 10, "log_dir = logs", NULL);
	c = loaded(f);
	assert_string_equal(c->log_dir, logs);
	snprintf(want, sizeof(want), "%s/shipd.sock", logs);
	assert_string_equal(c->control_socket, want);
	sl_config_free(c);
	write_cfg(f, 3, "id = prod-eu.1", NULL);
	c = loaded(f);
	assert_memory_equal(c->node.proto.cluster_id, "prod-eu.1\0\0\0\0\0\0\0", 16);
	sl_config_free(c);
	free(logs);
}

static void test_crlf_and_parse_string(void **state)
{
	struct fx *f = *state;
	char *text;
	struct sl_config *c;

	assert_true(asprintf(&text,
			     "[cluster]\r\nid = a\r\nleader = 1\r\n[node]\r\nid = 1\r\n"
			     "log_dir = %s\r\n[peer.1]\r\naddress = 127.0.0.1:9\r\n",
			     f->dir) > 0);
	assert_int_equal(sl_config_parse("mem.ini", text, strlen(text), 0, &c), 0);
	assert_int_equal(c->node.proto.n_nodes, 1);
	assert_int_equal(c->node.net.n_peers, 0);
	assert_int_equal(c->node.proto.policy.acks, SL_ACKS_MAJORITY);
	sl_config_free(c);
	free(text);
}

static void test_value_parsers(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(sl_config_parse_size("4K", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(sl_config_parse_size("3GiB", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 3ull << 30);
	assert_int_equal(sl_config_parse_size("17", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 17);
	assert_int_equal(sl_config_parse_size("1T", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(sl_config_parse_size("-1", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(sl_config_parse_size("99999999999999999999", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(sl_config_parse_size("17179869184G", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(sl_config_parse_duration("500ms", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 500000000);
	assert_int_equal(sl_config_parse_duration("2m", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 120000000000ull);
	assert_int_equal(sl_config_parse_duration("0", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(sl_config_parse_duration("5", 0, UINT64_MAX, &v), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "'5' is not a duration"));
	assert_int_equal(sl_config_parse_duration(" 5s", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(sl_config_parse_u64("12", 13, 20, &v), -EINVAL);
	assert_non_null(strstr(sl_err_msg(), "13..20"));
	assert_int_equal(sl_config_parse_u64("", 0, 20, &v), -EINVAL);
}

/* ---- one test per class of refusal ---- */

static void test_unreadable_file(void **state)
{
	struct fx *f = *state;

	refused(f, 0, "No such file", NULL);
}

static void test_syntax(void **state)
{
	struct fx *f = *state;
	char longline[300], *extra;

	write_cfg(f, 7, "just words", NULL);
	refused(f, 7, "expected 'key = value'", NULL);
	write_cfg(f, 0, NULL, "[store\n");
	refused(f, BASE_N + 1, "without ']'", NULL);
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "eal_args = ", 11);
	longline[sizeof(longline) - 1] = '\0';
	assert_true(asprintf(&extra, "[transport]\n%s\n", longline) > 0);
	write_cfg(f, 0, NULL, extra);
	free(extra);
	refused(f, BASE_N + 2, "line longer than", NULL);
}

static void test_nul_byte(void **state)
{
	struct fx *f = *state;
	static const char text[] = "[cluster]\nid = a\0b\n";

	write_file(f->path, text, sizeof(text) - 1);
	refused(f, 2, "NUL byte", NULL);
}

static void test_unknown_section(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 0, NULL, "\n[storage]\nsync = dsync\n");
	refused(f, BASE_N + 2, "unknown section [storage]", NULL);
}

static void test_duplicate_section(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 0, NULL, "[cluster]\n");
	refused(f, BASE_N + 1, "section [cluster] appears twice (first at line 2)", NULL);
}

static void test_unknown_key(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 11, "colour = blue", NULL);
	refused(f, 11, "unknown key 'colour' in [node]", NULL);
	write_cfg(f, 0, NULL, "weight = 9\n");
	refused(f, BASE_N + 1, "unknown key 'weight' in [peer.3]", NULL);
}

static void test_key_outside_section(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 1, "epoch = 4", NULL);
	refused(f, 1, "'epoch' outside any section", NULL);
}

static void test_key_twice(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 7, "epoch = 4", NULL);
	refused(f, 7, "[cluster] epoch", "set twice (first at line 5)");
	write_cfg(f, 0, NULL, "address = 127.0.0.1:7004\n");
	refused(f, BASE_N + 1, "[peer.3] address", "set twice (first at line 19)");
}

static void test_bad_number(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 5, "epoch = three", NULL);
	refused(f, 5, "[cluster] epoch", "'three' is not a number");
	write_cfg(f, 5, "epoch = 0", NULL);
	refused(f, 5, "[cluster] epoch", "1..");
	write_cfg(f, 9, "id = 4294967296", NULL);
	refused(f, 9, "[node] id", "1..4294967295");
	write_cfg(f, 0, NULL, "[stream]\nlinger_us = 5ms\n");
	refused(f, BASE_N + 2, "[stream] linger_us", "'5ms'");
}

static void test_bad_size(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 0, NULL, "[stream]\nbatch_bytes = 64Q\n");
	refused(f, BASE_N + 2, "[stream] batch_bytes", "'64Q' is not a size");
	write_cfg(f, 0, NULL, "[store]\ngroup_bytes = 128M\n");
	refused(f, BASE_N + 2, "[store] group_bytes", "4K..64M");
}

static void test_bad_duration(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 0, NULL, "[stream]\nack_timeout = 500\n");
	refused(f, BASE_N + 2, "[stream] ack_timeout", "'500' is not a duration");
	write_cfg(f, 11, "drain_timeout = 2h", NULL);
	refused(f, 11, "[node] drain_timeout",
		"'2h' is not a duration (with ns, us, ms, s or m) in 0..60m");
}

static void test_bad_choice(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 11, "idle = sleepy", NULL);
	refused(f, 11, "[node] idle", "'sleepy' is not spin, yield, backoff or nap");
	write_cfg(f, 0, NULL, "[stream]\nack_level = fsynced\n");
	refused(f, BASE_N + 2, "[stream] ack_level", "received, durable or applied");
	write_cfg(f, 0, NULL, "[stream]\nacks = most\n");
	refused(f, BASE_N + 2, "[stream] acks", "'most'");
	write_cfg(f, 0, NULL, "[transport]\nkind = rdma\n");
	refused(f, BASE_N + 2, "[transport] kind", "udp, dpdk or tcp");
	write_cfg(f, 0, NULL, "[store]\nsync = always\n");
	refused(f, BASE_N + 2, "[store] sync", "default, fdatasync or dsync");
}

static void test_bad_cluster_id(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 3, "id = 0123456789abcdef0123456789abcdeg", NULL);
	refused(f, 3, "[cluster] id", "neither 32 hex digits nor a name");
	write_cfg(f, 3, "id = my cluster", NULL);
	refused(f, 3, "[cluster] id", "'my cluster'");
}

static void test_bad_address(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 16, "address = 127.0.0.256:7002", NULL);
	refused(f, 16, "[peer.2] address", "'127.0.0.256' is not an IPv4 address");
	write_cfg(f, 16, "address = 127.0.0.1", NULL);
	refused(f, 16, "[peer.2] address", "not IPv4:port");
	write_cfg(f, 16, "address = 127.0.0.1:70000", NULL);
	refused(f, 16, "[peer.2] address", "port '70000' is not 1..65535");
	write_cfg(f, 16, "address = 127.0.0.1:0", NULL);
	refused(f, 16, "[peer.2] address", "port '0'");
}

static void test_bad_mac(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 17, "mac = 02:00:00:00:00", NULL);
	refused(f, 17, "[peer.2] mac", "is not a MAC address");
}

static void test_bad_peer_section(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 18, "[peer.0]", NULL);
	refused(f, 18, "[peer.0]: the node id must be", NULL);
	write_cfg(f, 18, "[peer.x]", NULL);
	refused(f, 18, "[peer.x]", NULL);
}

static void test_duplicate_node_id(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 18, "[peer.2]", NULL);
	refused(f, 18, "duplicate node id 2 (first at line 15)", NULL);
}

static void test_too_many_nodes(void **state)
{
	struct fx *f = *state;
	char *extra = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&extra, &len);

	for (int id = 4; id <= SL_NODES_MAX + 1; id++)
		fprintf(m, "[peer.%d]\naddress = 127.0.0.1:%d\n", id, 7000 + id);
	fclose(m);
	write_cfg(f, 0, NULL, extra);
	free(extra);
	refused(f, BASE_N + 2 * (SL_NODES_MAX - 3) + 1, "more than 16 nodes", NULL);
}

static void test_duplicate_address(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 19, "address = 127.0.0.1:7001", NULL);
	refused(f, 19, "[peer.3] address", "same address as node 1 (line 13)");
}

static void test_self_missing(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 9, "id = 4", NULL);
	refused(f, 9, "[node] id", "node 4 has no [peer.4] section");
}

static void test_leader_not_a_node(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 6, "leader = 9", NULL);
	refused(f, 6, "[cluster] leader", "9 is not a node of the cluster");
}

static void test_missing_key(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 6, NULL, NULL);
	refused(f, 2, "[cluster] leader", "missing");
	write_cfg(f, 16, NULL, NULL);
	refused(f, 15, "[peer.2] address", "missing");
}

static void test_missing_section(void **state)
{
	struct fx *f = *state;
	const char *text = "[cluster]\nid = a\nleader = 1\n[peer.1]\naddress = 127.0.0.1:1\n";

	write_file(f->path, text, strlen(text));
	refused(f, 0, "[node] id", "there is no [node] section");
	text = "[cluster]\nid = a\nleader = 1\n[node]\nid = 1\nlog_dir = /\n";
	write_file(f->path, text, strlen(text));
	refused(f, 0, "no [peer.N] section", NULL);
}

static void test_dpdk_needs_macs(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 17, NULL, "[transport]\nkind = dpdk\n");
	refused(f, 15, "[peer.2] mac", "kind = dpdk");
}

/* [peer.N] port: a DPDK port per peer (point-to-point links), on every
 * other peer or none, never on this node, each port once. */
static void test_peer_ports(void **state)
{
	struct fx *f = *state;
	const char *peer1 = "mac = 02:00:00:00:00:01\nport = net_memif0"; /* lines 14, 15 */
	struct sl_config *c;

	write_cfg(f, 14, peer1, "port = net_memif1\n[transport]\nkind = dpdk\n");
	c = loaded(f);
	assert_int_equal(c->node.net.n_peers, 2);
	assert_int_equal(c->node.net.peers[0].node_id, 1);
	assert_string_equal(c->node.net.peers[0].port, "net_memif0");
	assert_int_equal(c->node.net.peers[1].node_id, 3);
	assert_string_equal(c->node.net.peers[1].port, "net_memif1");
	sl_config_free(c);
	/* Without: no port anywhere. */
	write_cfg(f, 0, NULL, "[transport]\nkind = dpdk\n");
	c = loaded(f);
	assert_null(c->node.net.peers[0].port);
	assert_null(c->node.net.peers[1].port);
	sl_config_free(c);

	write_cfg(f, 14, peer1, "port = net_memif1\n");
	refused(f, 15, "[peer.1] port", "only with [transport] kind = dpdk");
	write_cfg(f, 14, peer1, "[transport]\nkind = dpdk\n");
	refused(f, 19, "[peer.3] port", "node 1 has one (line 15)");
	write_cfg(f, 14, peer1, "port = net_memif0\n[transport]\nkind = dpdk\n");
	refused(f, 22, "[peer.3] port", "same port as node 1 (line 15)");
	write_cfg(f, 17, "mac = 02:00:00:00:00:02\nport = net_memif9",
		  "[transport]\nkind = dpdk\n");
	refused(f, 18, "[peer.2] port", "node 2 is this node");
	write_cfg(f, 14, "mac = 02:00:00:00:00:01\nport = net/memif0", NULL);
	refused(f, 15, "[peer.1] port", "not a DPDK port name");
}

/* The TCP baseline needs no MAC either. */
static void test_kind_tcp(void **state)
{
	struct fx *f = *state;

	struct sl_config *c;

	write_cfg(f, 4, NULL, "[transport]\nkind = tcp\n");
	c = loaded(f);
	assert_int_equal(c->node.transport, SL_TRANSPORT_TCP);
	sl_config_free(c);
}

static void test_log_dir(void **state)
{
	struct fx *f = *state;
	char *file = th_path(f->dir, "plain");

	write_cfg(f, 10, "log_dir = /nonexistent/shiplog", NULL);
	refused(f, 10, "[node] log_dir", "No such file or directory");
	write_file(file, "x", 1);
	write_cfg(f, 10, "log_dir = plain", NULL);
	refused(f, 10, "[node] log_dir", "is not a directory");
	write_cfg(f, 10, "log_dir =", NULL);
	refused(f, 10, "[node] log_dir", "empty path");
	free(file);
}

static void test_log_dir_unwritable(void **state)
{
	struct fx *f = *state;
	char *ro = th_path(f->dir, "ro");

	if (geteuid() == 0) {
		free(ro);
		skip(); /* root writes anywhere: access() says yes */
	}
	assert_int_equal(mkdir(ro, 0500), 0);
	write_cfg(f, 10, "log_dir = ro", NULL);
	refused(f, 10, "[node] log_dir", "is not writable");
	free(ro);
}

static void test_impossible_policy(void **state)
{
	struct fx *f = *state;

	struct sl_config *c;

	/* Three nodes: two followers at most. */
	write_cfg(f, 0, NULL, "[stream]\nacks = 3\n");
	refused(f, BASE_N + 2, "[stream] acks", NULL);
	write_cfg(f, 0, NULL, "[stream]\nacks = all\n");
	c = loaded(f);
	assert_int_equal(c->node.proto.policy.acks, SL_ACKS_ALL);
	sl_config_free(c);
}

/* Elections: off by default; on, the timers in milliseconds, a heartbeat
 * that leaves fewer than three per timeout refused, and leader 0 (a node
 * joining a running cluster) only with elections. */
static void test_elections(void **state)
{
	struct fx *f = *state;
	struct sl_config *c;

	write_cfg(f, 0, NULL, NULL);
	c = loaded(f);
	assert_int_equal(c->node.proto.elect, 0);
	sl_config_free(c);
	write_cfg(f, 0, NULL,
		  "[stream]\nelect = on\nelection_timeout_ms = 300\nheartbeat_ms = 20\n");
	c = loaded(f);
	assert_int_equal(c->node.proto.elect, 1);
	assert_int_equal(c->node.proto.election_timeout_ns, 300000000ull);
	assert_int_equal(c->node.proto.heartbeat_ns, 20000000ull);
	sl_config_free(c);
	write_cfg(f, 0, NULL, "[stream]\nelect = maybe\n");
	refused(f, BASE_N + 2, "[stream] elect", NULL);
	write_cfg(f, 0, NULL, "[stream]\nelect = on\nheartbeat_ms = 60\n");
	refused(f, BASE_N + 3, "[stream] heartbeat_ms", "more than a third");
	write_cfg(f, 0, NULL, "[stream]\nelection_timeout_ms = 20\n");
	refused(f, BASE_N + 2, "[stream] election_timeout_ms", "more than a third");
	write_cfg(f, 6, "leader = 0", NULL);
	refused(f, 6, "[cluster] leader", "elect = on");
	write_cfg(f, 6, "leader = 0", "[stream]\nelect = on\n");
	c = loaded(f);
	assert_int_equal(c->node.proto.leader_id, 0);
	sl_config_free(c);
}

static void test_compress_thread(void **state)
{
	struct fx *f = *state;
	struct sl_config *c;

	write_cfg(f, 0, NULL, NULL);
	c = loaded(f);
	assert_int_equal(c->node.compress_thread, 0);
	sl_config_free(c);
	write_cfg(f, 0, NULL, "[stream]\ncompress_thread = on\n");
	c = loaded(f);
	assert_int_equal(c->node.compress_thread, 1);
	sl_config_free(c);
	write_cfg(f, 0, NULL, "[stream]\ncompress_thread = 2\n");
	refused(f, BASE_N + 2, "[stream] compress_thread", NULL);
	write_cfg(f, 0, NULL, NULL);
	c = loaded(f);
	assert_int_equal(c->node.proto.lz4_accel, 1);
	sl_config_free(c);
	write_cfg(f, 0, NULL, "[stream]\nlz4_acceleration = 4\n");
	c = loaded(f);
	assert_int_equal(c->node.proto.lz4_accel, 4);
	sl_config_free(c);
	write_cfg(f, 0, NULL, "[stream]\nlz4_acceleration = 0\n");
	refused(f, BASE_N + 2, "[stream] lz4_acceleration", NULL);
}

/* What a policy survives: nothing to say for the default; each risk of a
 * single failure named once; and acks=0 with local=none refused. */
static int warnings_for(struct fx *f, const char *stream, char w[][SL_CONFIG_WARN_MAX])
{
	struct sl_config *c;
	int n;

	write_cfg(f, 0, NULL, stream);
	c = loaded(f);
	n = sl_config_warnings(c, w, 8);
	sl_config_free(c);
	return n;
}

static void test_policy_warnings(void **state)
{
	struct fx *f = *state;
	char w[8][SL_CONFIG_WARN_MAX];

	assert_int_equal(warnings_for(f, "[stream]\nacks = majority\n", w), 0);
	assert_int_equal(warnings_for(f, "[stream]\nacks = 0\n", w), 1);
	assert_non_null(strstr(w[0], "all 3 nodes' votes"));
	assert_int_equal(warnings_for(f, "[stream]\nacks = all\n", w), 1);
	assert_non_null(strstr(w[0], "one failed follower stops every commit"));
	assert_int_equal(warnings_for(f, "[stream]\nacks = all\non_timeout = degrade\n", w), 1);
	assert_non_null(strstr(w[0], "[stream] on_timeout"));
	assert_int_equal(warnings_for(f, "[stream]\nack_level = received\n", w), 1);
	assert_non_null(strstr(w[0], "[stream] ack_level"));
	assert_int_equal(warnings_for(f, "[stream]\nacks = 2\nlocal = none\n", w), 2);
	assert_non_null(strstr(w[0], "one failed follower"));
	assert_non_null(strstr(w[1], "[stream] local"));
	write_cfg(f, 0, NULL, "[stream]\nacks = 0\nlocal = none\n");
	refused(f, BASE_N + 3, "[stream] local", "no node has made durable");
}

static void test_mtu_range(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 0, NULL, "[transport]\nmtu = 575\n");
	refused(f, BASE_N + 2, "[transport] mtu", "576..9216");
	write_cfg(f, 0, NULL, "[transport]\nmtu = 9217\n");
	refused(f, BASE_N + 2, "[transport] mtu", "576..9216");
}

static void test_sizes_that_do_not_fit(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 0, NULL, "[store]\ngroup_bytes = 1M\n");
	refused(f, BASE_N + 2, "[store] group_bytes", "cannot hold the largest batch");
	write_cfg(f, 0, NULL, "[store]\nsegment_bytes = 1M\n");
	refused(f, BASE_N + 2, "[store] segment_bytes", "cannot hold a");
	write_cfg(f, 0, NULL, "[stream]\nmax_record_bytes = 9M\n");
	refused(f, BASE_N + 2, "[stream] max_record_bytes", NULL);
}

static void test_control_socket_too_long(void **state)
{
	struct fx *f = *state;
	char line[200];

	snprintf(line, sizeof(line), "control_socket = /%0120d", 0);
	write_cfg(f, 11, line, NULL);
	refused(f, 11, "[node] control_socket", "longer than 107 bytes");
}

static void test_key_file(void **state)
{
	struct fx *f = *state;

	write_cfg(f, 11, "key_file = missing.key", NULL);
	refused(f, 11, "[node] key_file", "cannot read");
}

static void test_eal_args_too_long(void **state)
{
	struct fx *f = *state;
	char *extra = NULL, chunk[180];
	size_t len = 0;
	FILE *m = open_memstream(&extra, &len);
	unsigned lines = SL_CONFIG_EAL_MAX / (sizeof(chunk) - 12) + 1;

	memset(chunk, 'a', sizeof(chunk) - 1);
	chunk[sizeof(chunk) - 1] = '\0';
	fprintf(m, "[transport]\n");
	for (unsigned i = 0; i < lines; i++)
		fprintf(m, "eal_args = %s\n", chunk + 12);
	fclose(m);
	write_cfg(f, 0, NULL, extra);
	free(extra);
	refused(f, BASE_N + 1 + lines, "[transport] eal_args", "exceed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_full_config_field_by_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_node_cpu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relative_paths_and_name_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crlf_and_parse_string, setup, teardown),
	    cmocka_unit_test(test_value_parsers),
	    cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_outside_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_number, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_duration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_choice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_cluster_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_address, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_mac, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_peer_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_node_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_nodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_address, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leader_not_a_node, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dpdk_needs_macs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_ports, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kind_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_dir_unwritable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_impossible_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_policy_warnings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compress_thread, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mtu_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sizes_that_do_not_fit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_control_socket_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eal_args_too_long, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
