/* shipctl verify --cluster: compare the Merkle trees of a running cluster's
 * replicas through their control sockets. Every node is asked for its root
 * over the batches of sealed segments that all of them hold; a node whose
 * root differs from the reference's (the leader's, else the first named)
 * is walked down, subtree by subtree, to the first batch that differs,
 * which is reported with its position range and segment file on both. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "shipctl.h"
#include "shiplog/err.h"

#define LEVELS 32

struct member {
	const char *sock;
	uint64_t id, sealed;
	int leader;
	char *reply; /* SL_CTL_REPLY_MAX + 1 */
};

/* Ask and parse one "key HEX..." or numbers reply. 0, or 1 after printing. */
static int ask(struct member *m, const char *req)
{
	return shipctl_ask(m->sock, req, m->reply);
}

static int hash_of(struct member *m, uint32_t k, uint64_t i, uint64_t *h)
{
	char req[64];

	snprintf(req, sizeof(req), "tree node %" PRIu32 " %" PRIu64, k, i);
	if (ask(m, req))
		return 1;
	if (sscanf(m->reply, "hash %" SCNx64, h) != 1) {
		fprintf(stderr, "shipctl: %s: unexpected reply to '%s': %s", m->sock, req,
			m->reply);
		return 1;
	}
	return 0;
}

static int root_of(struct member *m, uint64_t n, uint64_t *h)
{
	char req[64];

	snprintf(req, sizeof(req), "tree root %" PRIu64, n);
	if (ask(m, req))
		return 1;
	if (sscanf(m->reply, "root %" SCNx64, h) != 1) {
		fprintf(stderr, "shipctl: %s: unexpected reply to '%s': %s", m->sock, req,
			m->reply);
		return 1;
	}
	return 0;
}

/* The first leaf of the first n at which a and b differ (their roots do),
 * through the peaks and then down: *asked counts the subtree hashes. */
static int first_diff(struct member *a, struct member *b, uint64_t n, uint64_t *leaf,
		      uint64_t *asked)
{
	uint64_t start = 0, ha, hb;

	for (int k = LEVELS - 1; k >= 0; k--) {
		uint64_t i;

		if (!(n >> k & 1))
			continue;
		i = start >> k;
		*asked += 2;
		if (hash_of(a, (uint32_t)k, i, &ha) || hash_of(b, (uint32_t)k, i, &hb))
			return 1;
		if (ha == hb) {
			start += 1ull << k;
			continue;
		}
		while (k > 0) { /* i differs: its left half, or else its right */
			k--;
			i *= 2;
			*asked += 2;
			if (hash_of(a, (uint32_t)k, i, &ha) || hash_of(b, (uint32_t)k, i, &hb))
				return 1;
			if (ha == hb)
				i++;
		}
		*leaf = i;
		return 0;
	}
	*leaf = n; /* every peak agrees */
	return 0;
}

static int leaf_of(struct member *m, uint64_t j, uint64_t *pos, uint64_t *len, char *seg,
		   size_t cap)
{
	char req[64], name[64];

	snprintf(req, sizeof(req), "tree leaf %" PRIu64, j);
	if (ask(m, req))
		return 1;
	if (sscanf(m->reply, "pos %" SCNu64 " len %" SCNu64 " segment %63s", pos, len, name) != 3) {
		fprintf(stderr, "shipctl: %s: unexpected reply to '%s': %s", m->sock, req,
			m->reply);
		return 1;
	}
	snprintf(seg, cap, "%s", name);
	return 0;
}

static int load(struct member *m)
{
	char role[32];

	if (ask(m, "status json"))
		return 1;
	if (sl_ctl_json_u64(m->reply, "node.node_id", &m->id) ||
	    sl_ctl_json_u64(m->reply, "entropy.tree_sealed", &m->sealed) ||
	    sl_ctl_json_get(m->reply, "node.role", role, sizeof(role))) {
		fprintf(stderr, "shipctl: %s: %s\n", m->sock, sl_err_msg());
		return 1;
	}
	m->leader = strcmp(role, "leader") == 0;
	return 0;
}

static int report(struct member *ref, struct member *m, uint64_t n)
{
	uint64_t j = 0, asked = 0, rp = 0, rl = 0, mp = 0, ml = 0;
	char rseg[64], mseg[64];

	if (first_diff(ref, m, n, &j, &asked))
		return -1;
	if (j >= n) {
		printf("node %" PRIu64 ": roots differ but every subtree agrees (the logs "
		       "changed while compared?)\n",
		       m->id);
		return 1;
	}
	if (leaf_of(ref, j, &rp, &rl, rseg, sizeof(rseg)) ||
	    leaf_of(m, j, &mp, &ml, mseg, sizeof(mseg)))
		return -1;
	printf("node %" PRIu64 ": differs from node %" PRIu64 " from batch %" PRIu64
	       ": positions [%" PRIu64 ", %" PRIu64 ") in its segment %s, [%" PRIu64 ", %" PRIu64
	       ") in node %" PRIu64 "'s segment %s (%" PRIu64 " subtree hashes asked of each)\n",
	       m->id, ref->id, j, mp, mp + ml, mseg, rp, rp + rl, ref->id, rseg, asked / 2);
	return 1;
}

int shipctl_verify_cluster(const struct ctl_opts *o)
{
	struct member ms[SHIPCTL_SOCKETS_MAX];
	struct member *ref = NULL;
	uint64_t n = UINT64_MAX, roots[SHIPCTL_SOCKETS_MAX];
	int differ = 0, rc = 0;

	if (o->nsockets < 2) {
		fprintf(stderr, "shipctl verify --cluster: name at least two nodes (-s SOCKET or "
				"-c CONFIG, once for each)\n");
		return 2;
	}
	memset(ms, 0, sizeof(ms));
	for (int i = 0; i < o->nsockets && rc == 0; i++) {
		ms[i].sock = o->sockets[i];
		if ((ms[i].reply = malloc(SL_CTL_REPLY_MAX + 1)) == NULL) {
			fprintf(stderr, "shipctl: out of memory\n");
			rc = 1;
		} else {
			rc = load(&ms[i]);
		}
		if (rc == 0 && ms[i].sealed < n)
			n = ms[i].sealed;
		if (rc == 0 && (ref == NULL || (ms[i].leader && !ref->leader)))
			ref = &ms[i];
	}
	for (int i = 0; i < o->nsockets && rc == 0; i++)
		rc = root_of(&ms[i], n, &roots[i]);
	if (rc == 0)
		printf("comparing %d nodes over the %" PRIu64
		       " batches of sealed segments they all hold, against node %" PRIu64 "%s\n",
		       o->nsockets, n, ref->id, ref->leader ? " (the leader)" : "");
	for (int i = 0; i < o->nsockets && rc == 0; i++) {
		int r;

		if (&ms[i] == ref)
			continue;
		if (roots[i] == roots[ref - ms]) {
			printf("node %" PRIu64 ": equal (root %016" PRIx64 ")\n", ms[i].id,
			       roots[i]);
			continue;
		}
		if ((r = report(ref, &ms[i], n)) < 0)
			rc = 1;
		differ |= r > 0;
	}
	for (int i = 0; i < o->nsockets; i++)
		free(ms[i].reply);
	if (rc)
		return rc;
	printf("%s\n", differ ? "replicas differ" : "replicas agree");
	return differ ? 1 : 0;
}
