/* inject: send a running shipd forged frames over UDP, built with the
 * project's own encoders (core/frame, net/auth), for the integration test
 * that checks they change nothing (tests/integration/inject.sh).
 *
 *   inject CONFIG KIND COUNT
 *
 * CONFIG is the target node's shipd configuration: it gives the address the
 * frames go to, the cluster, stream, epoch, leader and key file. Each frame
 * would move the target's state if it were admitted: to a follower, a
 * HEARTBEAT "from the leader" announcing a commit position and log end far
 * beyond anything written; to the leader, a STATUS "from" its first
 * follower reporting every position at 0. KIND makes it fail one check:
 *   key      signed with another key (the configured one, every byte flipped)
 *   nomac    no MAC at all (the cluster has a key)
 *   cluster  another cluster id (the first byte flipped), signed correctly
 *   epoch    the epoch below the configured one, signed correctly
 *   good     nothing wrong: the control, which must be admitted
 * Exit 0 when all COUNT frames were sent, 1 on error, 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "shiplog/auth.h"
#include "shiplog/err.h"
#include "shiplog/frame.h"

#define FAR_AHEAD (1ull << 40) /* a position no test log reaches */

enum kind { K_KEY, K_NOMAC, K_CLUSTER, K_EPOCH, K_GOOD };

static const char *const kind_names[] = {"key", "nomac", "cluster", "epoch", "good"};

static int parse_kind(const char *s, enum kind *k)
{
	for (unsigned i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*k = (enum kind)i;
			return 0;
		}
	return -1;
}

/* The frame for node `self` of `c`, forged as `k` says, into out. */
static int build(const struct sl_config *c, enum kind k, uint64_t seq, uint8_t *out, size_t cap)
{
	const struct sl_proto_config *p = &c->node.proto;
	struct sl_frame f = {0};
	struct sl_auth auth = {0};
	int len, rc;

	memcpy(f.hdr.cluster_id, p->cluster_id, sizeof(f.hdr.cluster_id));
	f.hdr.stream_id = p->stream_id;
	f.hdr.epoch = p->epoch;
	f.hdr.receiver = p->node_id;
	f.hdr.seq = seq;
	if (p->node_id == p->leader_id) {
		f.hdr.type = SL_FRAME_STATUS;
		f.hdr.sender = c->node.net.peers[0].node_id;
	} else {
		f.hdr.type = SL_FRAME_HEARTBEAT;
		f.hdr.sender = p->leader_id;
		f.hb = (struct sl_frame_hb){.leader_end = FAR_AHEAD, .commit_pos = FAR_AHEAD};
	}
	if (k == K_CLUSTER)
		f.hdr.cluster_id[0] ^= 0xff;
	if (k == K_EPOCH) {
		if (p->epoch < 2)
			return sl_err_set(EINVAL, "epoch: the cluster's epoch is 1, none is lower");
		f.hdr.epoch = p->epoch - 1;
	}
	if (c->key_file[0] && k != K_NOMAC)
		f.hdr.flags |= SL_FRAME_F_MAC;
	len = sl_frame_encode(&f, out, cap);
	if (len < 0 || !(f.hdr.flags & SL_FRAME_F_MAC))
		return len;
	if ((rc = sl_auth_load_key(&auth, c->key_file)) < 0)
		return rc;
	if (k == K_KEY)
		for (int i = 0; i < SL_AUTH_KEY_LEN; i++)
			auth.key[i] ^= 0xff;
	rc = sl_auth_sign(&auth, out, (size_t)len);
	sl_auth_clear(&auth);
	return rc < 0 ? rc : len;
}

static int send_all(const struct sl_config *c, enum kind k, unsigned long count)
{
	const struct sl_endpoint *to = &c->node.net.self;
	struct sockaddr_in dst = {
	    .sin_family = AF_INET, .sin_port = htons(to->port), .sin_addr.s_addr = to->ip};
	uint8_t frame[SL_FRAME_MAX];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return sl_err_set(errno, "socket: %s", strerror(errno));
	for (unsigned long i = 0; i < count && rc == 0; i++) {
		int len = build(c, k, (1ull << 62) + i, frame, sizeof(frame));

		if (len < 0)
			rc = len;
		else if (sendto(fd, frame, (size_t)len, 0, (struct sockaddr *)&dst, sizeof(dst)) !=
			 len)
			rc = sl_err_set(errno, "sendto: %s", strerror(errno));
		else if (i % 64 == 63)
			usleep(1000); /* gently: the point is each frame, not a flood */
	}
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct sl_config *c;
	unsigned long count;
	enum kind k;
	char *end;
	int rc;

	if (argc != 4 || parse_kind(argv[2], &k) < 0 ||
	    (count = strtoul(argv[3], &end, 10), *end != '\0' || count == 0 || count > 100000)) {
		fprintf(stderr,
			"usage: inject CONFIG key|nomac|cluster|epoch|good COUNT (1..100000)\n");
		return 2;
	}
	if ((rc = sl_config_load(argv[1], 0, &c)) == 0) {
		rc = send_all(c, k, count);
		sl_config_free(c);
	}
	if (rc < 0) {
		fprintf(stderr, "inject: %s\n", sl_err_msg());
		return 1;
	}
	return 0;
}
