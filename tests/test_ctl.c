/* shipd's control socket (app/ctl.c): status output in both forms (the JSON
 * is checked by python3's json module when it is installed), the server and
 * client over a real socket, and the socket file rules: mode 0600, a stale
 * socket replaced, a live one or another file refused, ours removed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "shiplog/err.h"
#include "store_helpers.h"

static char reply[SL_CTL_REPLY_MAX];

static void leader_status(struct sl_ctl_status *s)
{
	memset(s, 0, sizeof(*s));
	s->proto.role = SL_ROLE_LEADER;
	s->proto.node_id = 1;
	s->proto.leader_id = 1;
	s->proto.epoch = 3;
	s->proto.next_lsn = 1000001;
	s->proto.commit_lsn = 999999;
	s->proto.blocked_since_ns = 5000000;
	s->proto.failed = -EIO;
	s->proto.n_peers = 2;
	s->proto.peers[0] = (struct sl_peer_status){.node_id = 2,
						    .durable_pos = 123456789,
						    .write_lag_ns = 1234567,
						    .last_status_ns = 9000000,
						    .catching_up = 1};
	s->proto.peers[1] = (struct sl_peer_status){.node_id = 3};
	s->transport.tx_packets = 42;
	s->config = "/etc/\"odd\"\\dir/shipd.ini";
	s->now_ns = 10000000;
	s->generate_target = 1000000;
	s->generate_done = 999999;
}

static int have_python(void)
{
	return system("python3 -c pass >/dev/null 2>&1") == 0;
}

/* python3 loads the JSON and evaluates `check` over it as d. */
static void python_check(const char *json, const char *check)
{
	char *dir = th_mkdtemp("ctl-json"), *file = th_path(dir, "status.json"), *cmd;
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	fputs(json, f);
	fclose(f);
	assert_true(asprintf(&cmd,
			     "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
			     "sys.exit(0 if (%s) else 1)' %s",
			     check, file) > 0);
	if (system(cmd) != 0)
		fail_msg("python3 rejected or mis-read:\n%s", json);
	free(cmd);
	th_rmrf(dir);
	free(file);
	free(dir);
}

static void test_json_is_valid(void **state)
{
	struct sl_ctl_status s;
	int n;

	(void)state;
	leader_status(&s);
	n = sl_ctl_format(&s, 1, reply, sizeof(reply));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(reply));
	if (!have_python())
		skip();
	python_check(reply,
		     "d[\"node\"][\"role\"] == \"leader\" and "
		     "d[\"node\"][\"commit_lsn\"] == 999999 and "
		     "d[\"node\"][\"blocked\"] is True and d[\"node\"][\"blocked_ms\"] == 5.0 and "
		     "d[\"node\"][\"error\"] == \"Input/output error\" and "
		     "d[\"shipd\"][\"config\"] == \"/etc/\\\"odd\\\"\\\\dir/shipd.ini\" and "
		     "len(d[\"peers\"]) == 2 and d[\"peers\"][0][\"durable_pos\"] == 123456789 and "
		     "d[\"peers\"][0][\"write_lag_ms\"] == 1.234 and "
		     "d[\"peers\"][0][\"last_status_ms_ago\"] == 1.0 and "
		     "d[\"peers\"][0][\"catching_up\"] is True and "
		     "d[\"peers\"][1][\"last_status_ms_ago\"] == \"never\" and "
		     "d[\"transport\"][\"tx_packets\"] == 42 and "
		     "d[\"shipd\"][\"generate_done\"] == 999999");
	/* A follower: no peers, no generator. */
	s.proto.role = SL_ROLE_FOLLOWER;
	s.proto.n_peers = 0;
	s.generate_target = 0;
	assert_true(sl_ctl_format(&s, 1, reply, sizeof(reply)) > 0);
	python_check(reply, "d[\"peers\"] == [] and \"generate_done\" not in d[\"shipd\"]");
}

static void test_text(void **state)
{
	struct sl_ctl_status s;

	(void)state;
	leader_status(&s);
	assert_true(sl_ctl_format(&s, 0, reply, sizeof(reply)) > 0);
	assert_non_null(strstr(reply, "node:\n  role: leader\n  node_id: 1\n"));
	assert_non_null(strstr(reply, "peers:\n  - node_id: 2\n    sent_pos: 0\n"));
	assert_non_null(strstr(reply, "  - node_id: 3\n"));
	assert_non_null(strstr(reply, "    write_lag_ms: 1.234\n"));
	assert_non_null(strstr(reply, "transport:\n  kind: udp\n"));
	s.proto.n_peers = 0;
	assert_true(sl_ctl_format(&s, 0, reply, sizeof(reply)) > 0);
	assert_non_null(strstr(reply, "peers: []\nframes:\n"));
}

/* shipctl lag and tail read the JSON back with sl_ctl_json_get. */
static void test_json_read_back(void **state)
{
	struct sl_ctl_status s;
	char v[128];
	uint64_t u;

	(void)state;
	leader_status(&s);
	s.log_dir = "/var/lib/shiplog/n1";
	assert_true(sl_ctl_format(&s, 1, reply, sizeof(reply)) > 0);
	assert_int_equal(sl_ctl_json_u64(reply, "node.commit_lsn", &u), 0);
	assert_int_equal(u, 999999);
	assert_int_equal(sl_ctl_json_get(reply, "node.role", v, sizeof(v)), 0);
	assert_string_equal(v, "leader");
	assert_int_equal(sl_ctl_json_get(reply, "shipd.config", v, sizeof(v)), 0);
	assert_string_equal(v, "/etc/\"odd\"\\dir/shipd.ini");
	assert_int_equal(sl_ctl_json_get(reply, "shipd.log_dir", v, sizeof(v)), 0);
	assert_string_equal(v, "/var/lib/shiplog/n1");
	assert_int_equal(sl_ctl_json_u64(reply, "peers.0.durable_pos", &u), 0);
	assert_int_equal(u, 123456789);
	assert_int_equal(sl_ctl_json_u64(reply, "peers.1.node_id", &u), 0);
	assert_int_equal(u, 3);
	assert_int_equal(sl_ctl_json_get(reply, "peers.0.write_lag_ms", v, sizeof(v)), 0);
	assert_string_equal(v, "1.234");
	assert_int_equal(sl_ctl_json_get(reply, "peers.1.last_status_ms_ago", v, sizeof(v)), 0);
	assert_string_equal(v, "never");
	assert_int_equal(sl_ctl_json_get(reply, "peers.0.catching_up", v, sizeof(v)), 0);
	assert_string_equal(v, "true");
	/* what is not there, or not a count, or not JSON */
	assert_int_equal(sl_ctl_json_get(reply, "peers.2.node_id", v, sizeof(v)), -ENOENT);
	assert_int_equal(sl_ctl_json_get(reply, "node.nothing", v, sizeof(v)), -ENOENT);
	assert_int_equal(sl_ctl_json_get(reply, "node.role.deeper", v, sizeof(v)), -ENOENT);
	assert_int_equal(sl_ctl_json_u64(reply, "node.role", &u), -EINVAL);
	assert_int_equal(sl_ctl_json_get("status: text", "node.role", v, sizeof(v)), -EBADMSG);
	assert_int_equal(sl_ctl_json_get("{\"node\":{\"role\":", "node.role", v, sizeof(v)),
			 -EBADMSG);
	assert_int_equal(sl_ctl_json_get("{\"a\":[1,2", "a.1", v, sizeof(v)), -EBADMSG);
}

static void test_format_overflow(void **state)
{
	struct sl_ctl_status s;
	char small[64];

	(void)state;
	leader_status(&s);
	assert_int_equal(sl_ctl_format(&s, 1, small, sizeof(small)), -ENOSPC);
}

/* ---- server and client ---- */

struct fx {
	char *dir, *path;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = th_mkdtemp("ctl");
	f->path = th_path(f->dir, "shipd.sock");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	th_rmrf(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static int echo(void *ctx, const char *req, char *out, size_t cap)
{
	(*(int *)ctx)++;
	if (strcmp(req, "bad") == 0)
		return sl_err_set(EINVAL, "unknown request 'bad'");
	return snprintf(out, cap, "you said <%s>\n", req);
}

struct client {
	const char *path, *request;
	char buf[256];
	int rc;
	volatile int done;
};

static void *client_main(void *arg)
{
	struct client *c = arg;

	c->rc = sl_ctl_request(c->path, c->request, 2000, c->buf, sizeof(c->buf));
	c->done = 1;
	return NULL;
}

/* Serve until the client has its reply (bounded: 3 s of polling). */
static void round_trip(struct sl_ctl_server *s, struct client *c)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, client_main, c), 0);
	for (int i = 0; i < 30000 && !c->done; i++) {
		sl_ctl_server_poll(s, 0);
		usleep(100);
	}
	pthread_join(t, NULL);
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct sl_ctl_server *s;
	struct client c = {.path = f->path, .request = "status json"};
	struct stat st;
	int calls = 0;

	assert_int_equal(sl_ctl_server_open(&s, f->path, echo, &calls), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	round_trip(s, &c);
	assert_int_equal(c.rc, (int)strlen("you said <status json>\n"));
	assert_string_equal(c.buf, "you said <status json>\n");
	c = (struct client){.path = f->path, .request = "bad"};
	round_trip(s, &c);
	assert_string_equal(c.buf, "error: unknown request 'bad'\n");
	assert_int_equal(calls, 2);
	sl_ctl_server_close(s);
	assert_int_equal(stat(f->path, &st), -1); /* ours: removed */
}

static void test_connect_errors(void **state)
{
	struct fx *f = *state;
	char buf[64];

	assert_int_equal(sl_ctl_request(f->path, "status", 100, buf, sizeof(buf)), -ENOENT);
	assert_non_null(strstr(sl_err_msg(), "cannot connect to "));
	assert_non_null(strstr(sl_err_msg(), f->path));
	assert_non_null(strstr(sl_err_msg(), "No such file or directory"));
}

/* A socket file left by a crash: bound, never unlinked. */
static void make_stale(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(a.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
}

static void test_stale_socket_replaced(void **state)
{
	struct fx *f = *state;
	struct sl_ctl_server *s;
	struct client c = {.path = f->path, .request = "x"};
	int calls = 0;

	make_stale(f->path);
	assert_int_equal(sl_ctl_server_open(&s, f->path, echo, &calls), 0);
	round_trip(s, &c);
	assert_string_equal(c.buf, "you said <x>\n");
	sl_ctl_server_close(s);
}

static void test_live_socket_refused(void **state)
{
	struct fx *f = *state;
	struct sl_ctl_server *a, *b;
	struct client c = {.path = f->path, .request = "still"};
	int calls = 0;

	assert_int_equal(sl_ctl_server_open(&a, f->path, echo, &calls), 0);
	assert_int_equal(sl_ctl_server_open(&b, f->path, echo, &calls), -EADDRINUSE);
	assert_non_null(strstr(sl_err_msg(), "another process is listening"));
	/* The refused open left the live one alone. */
	round_trip(a, &c);
	assert_string_equal(c.buf, "you said <still>\n");
	sl_ctl_server_close(a);
}

static void test_other_file_refused(void **state)
{
	struct fx *f = *state;
	struct sl_ctl_server *s;
	struct stat st;
	FILE *fp = fopen(f->path, "w");
	int calls = 0;

	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(sl_ctl_server_open(&s, f->path, echo, &calls), -EEXIST);
	assert_non_null(strstr(sl_err_msg(), "is not a socket"));
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_replaced_socket_not_removed(void **state)
{
	struct fx *f = *state;
	struct sl_ctl_server *s;
	struct stat st;
	int calls = 0;

	assert_int_equal(sl_ctl_server_open(&s, f->path, echo, &calls), 0);
	/* Someone else's file now stands at the path. */
	assert_int_equal(unlink(f->path), 0);
	make_stale(f->path);
	sl_ctl_server_close(s);
	assert_int_equal(stat(f->path, &st), 0);
}

static void test_silent_client_dropped_at_deadline(void **state)
{
	struct fx *f = *state;
	struct sl_ctl_server *s;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char b;
	int calls = 0, fd;

	assert_int_equal(sl_ctl_server_open(&s, f->path, echo, &calls), 0);
	strcpy(a.sun_path, f->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_true(sl_ctl_server_poll(s, 1000) > 0); /* accepted */
	sl_ctl_server_poll(s, 1000 + SL_CTL_DEADLINE_NS - 1);
	assert_int_equal(recv(fd, &b, 1, MSG_DONTWAIT), -1); /* still open */
	sl_ctl_server_poll(s, 1000 + SL_CTL_DEADLINE_NS);
	assert_int_equal(recv(fd, &b, 1, 0), 0); /* closed */
	assert_int_equal(calls, 0);
	close(fd);
	sl_ctl_server_close(s);
}

static void test_request_too_long(void **state)
{
	struct fx *f = *state;
	struct sl_ctl_server *s;
	struct client c = {.path = f->path};
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char big[SL_CTL_REQUEST_MAX + 8], buf[128];
	ssize_t n = 0;
	int calls = 0, fd;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sl_ctl_server_open(&s, f->path, echo, &calls), 0);
	/* The client refuses to send it... */
	c.request = big;
	round_trip(s, &c);
	assert_int_equal(c.rc, -EINVAL);
	/* ...and the server refuses a line that does not end in time. */
	strcpy(a.sun_path, f->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(send(fd, big, sizeof(big) - 1, 0), (ssize_t)sizeof(big) - 1);
	for (int i = 0; i < 10; i++)
		sl_ctl_server_poll(s, 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "error: request longer than 255 bytes\n");
	assert_int_equal(calls, 0);
	close(fd);
	sl_ctl_server_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_is_valid),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_json_read_back),
	    cmocka_unit_test(test_format_overflow),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_socket_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_file_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replaced_socket_not_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silent_client_dropped_at_deadline, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_request_too_long, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
