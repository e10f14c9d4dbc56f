/* shipctl tail and verify: they read a log directory through the read-only
 * reader (include/shiplog/logread.h) and never change it. tail without a
 * directory reads a running shipd's log, up to what that node has both
 * committed and made durable (asked through its control socket), so it
 * prints only records that no failover can take back. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "shipctl.h"
#include "shiplog/err.h"
#include "shiplog/logread.h"

#define FOLLOW_INTERVAL_MS 200
#define BAD_RETRIES	   25 /* tail -f: looks at an invalid point before it is corruption */

/* A batch's records, decoded; kept while some are past the bound. */
struct decoded {
	struct sl_batch_hdr h;
	uint8_t *raw;
	size_t cap, len;
	int pending; /* records left to print once the bound allows */
};

static int decode(struct decoded *d, const struct sl_logread_batch *b)
{
	if (b->h.raw_len > d->cap) {
		uint8_t *n = realloc(d->raw, b->h.raw_len);

		if (!n)
			return sl_err_set(ENOMEM, "out of memory");
		d->raw = n;
		d->cap = b->h.raw_len;
	}
	/* The reader checked the CRCs; this checks LZ4 and the record framing. */
	static const struct sl_batch_limits lim = {SL_BATCH_RAW_MAX, SL_BATCH_RAW_MAX};
	int n = sl_batch_decode(b->bytes, b->len, &lim, d->raw, d->cap, &d->h);

	if (n < 0)
		return sl_err_wrap(n, "segment %s at offset %" PRIu64 ": batch at lsn %" PRIu64,
				   b->segment, b->offset, b->h.base_lsn);
	d->len = (size_t)n;
	return 0;
}

/* --- tail ------------------------------------------------------------------------- */

struct tail {
	const struct ctl_opts *o;
	struct sl_logread *r;
	struct decoded d;
	const char *socket; /* a running shipd, or NULL for a directory */
	char dir[4096];
	uint64_t next;	  /* the next LSN to print */
	uint64_t bound;	  /* the last LSN that may be printed */
	uint64_t printed; /* records (or batches) */
	unsigned bad;	  /* looks in a row at an invalid point */
};

static void put_escaped(FILE *f, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		uint8_t c = p[i];

		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c > 0x7e)
			fprintf(f, "\\x%02x", c);
		else
			putc(c, f);
	}
}

static void put_hex(FILE *f, const uint8_t *p, uint32_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (uint32_t i = 0; i < len; i++) {
		putc(digits[p[i] >> 4], f);
		putc(digits[p[i] & 15], f);
	}
}

static int done(const struct tail *t)
{
	return t->o->count && t->printed >= t->o->count;
}

/* Print the decoded batch's records from t->next up to the bound. */
static int print_records(struct tail *t)
{
	struct decoded *d = &t->d;
	struct sl_rec_iter it;
	const uint8_t *rec;
	uint32_t len;
	uint64_t lsn = d->h.base_lsn;

	sl_rec_iter_init(&it, d->raw, d->len);
	d->pending = 0;
	for (; sl_rec_next(&it, &rec, &len) == 1; lsn++) {
		if (lsn < t->next)
			continue;
		if (lsn > t->bound) {
			d->pending = 1;
			break;
		}
		if (done(t))
			break;
		printf("%" PRIu64 " ", lsn);
		if (t->o->hex)
			put_hex(stdout, rec, len);
		else
			put_escaped(stdout, rec, len);
		putchar('\n');
		t->next = lsn + 1;
		t->printed++;
	}
	return ferror(stdout) ? sl_err_set(EIO, "writing the output") : 0;
}

static void print_batch(struct tail *t, const struct sl_logread_batch *b)
{
	const struct sl_batch_hdr *h = &b->h;

	printf("lsn %" PRIu64 "..%" PRIu64 " records %" PRIu32 " epoch %" PRIu64
	       " position %" PRIu64 " segment %s offset %" PRIu64 " stored %" PRIu32 " raw %" PRIu32
	       " %s leader_ts_ns %" PRIu64 "\n",
	       h->base_lsn, h->base_lsn + h->record_count - (h->record_count > 0), h->record_count,
	       h->epoch, h->position, b->segment, b->offset, h->stored_len, h->raw_len,
	       h->flags & SL_BATCH_F_LZ4 ? "lz4" : "plain", h->leader_ts_ns);
	t->next = h->base_lsn + h->record_count;
	t->printed++;
}

/* A running shipd: where its log is, and how far tail may print: what it
 * holds durably and knows committed (a leader's commit LSN; a follower
 * delivers only committed records). */
static int ask_node(struct tail *t, int first)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	char role[16];
	uint64_t commit, durable;

	if (shipctl_ask(t->socket, "status json", reply))
		return -1;
	if ((first && sl_ctl_json_get(reply, "shipd.log_dir", t->dir, sizeof(t->dir)) < 0) ||
	    sl_ctl_json_get(reply, "node.role", role, sizeof(role)) < 0 ||
	    sl_ctl_json_u64(reply,
			    strcmp(role, "leader") == 0 ? "node.commit_lsn" : "node.delivered_lsn",
			    &commit) < 0 ||
	    sl_ctl_json_u64(reply, "store.durable_lsn", &durable) < 0) {
		fprintf(stderr, "shipctl: tail: %s (a shipd too old for tail?)\n", sl_err_msg());
		return -1;
	}
	if (first && !t->dir[0]) {
		fprintf(stderr, "shipctl: tail: shipd did not say where its log is\n");
		return -1;
	}
	t->bound = commit < durable ? commit : durable;
	return 0;
}

/* Read and print until the log (or the bound) ends for now. 0, or -errno. */
static int tail_round(struct tail *t)
{
	struct sl_logread_batch b;
	int rc;

	if (t->d.pending && (rc = print_records(t)) < 0)
		return rc;
	while (!t->d.pending && !done(t) && t->next <= t->bound) {
		rc = sl_logread_next(t->r, &b);
		if (rc == 0)
			break;
		if (rc == -EBADMSG && t->o->follow && ++t->bad < BAD_RETRIES)
			break; /* perhaps a write in flight: look again */
		if (rc < 0)
			return rc;
		t->bad = 0;
		if (t->o->batches) {
			print_batch(t, &b);
			continue;
		}
		if ((rc = decode(&t->d, &b)) < 0 || (rc = print_records(t)) < 0)
			return rc;
	}
	return fflush(stdout) ? sl_err_set(EIO, "writing the output") : 0;
}

/* Nothing printed from --from: say why, so an empty output is not a puzzle. */
static void say_nothing(const struct tail *t)
{
	if (t->printed || t->o->follow || !t->o->from)
		return;
	if (t->next > t->bound)
		fprintf(stderr,
			"shipctl: tail: lsn %" PRIu64
			" is not committed and durable yet (up to %" PRIu64 ")\n",
			t->o->from, t->bound);
	else
		fprintf(stderr, "shipctl: tail: no record at lsn %" PRIu64 " or after it yet\n",
			t->o->from);
}

static int tail_open(struct tail *t)
{
	const struct ctl_opts *o = t->o;
	int rc;

	if (o->dir) {
		snprintf(t->dir, sizeof(t->dir), "%s", o->dir);
		t->bound = UINT64_MAX;
	} else if (!(t->socket = shipctl_socket(o)) || ask_node(t, 1) < 0) {
		return 1;
	}
	if ((rc = sl_logread_open(&t->r, t->dir)) < 0 ||
	    (o->from && (rc = sl_logread_seek(t->r, o->from)) < 0)) {
		fprintf(stderr, "shipctl: tail: %s\n", sl_err_msg());
		return 1;
	}
	t->next = o->from ? o->from : sl_logread_first_lsn(t->r);
	return 0;
}

int shipctl_tail(const struct ctl_opts *o)
{
	struct tail t = {.o = o};
	uint64_t interval = o->interval_ms ? o->interval_ms : FOLLOW_INTERVAL_MS;
	int rc = tail_open(&t);

	while (rc == 0) {
		if ((rc = tail_round(&t)) < 0) {
			uint64_t off;
			const char *seg = sl_logread_where(t.r, &off);

			fprintf(stderr, "shipctl: tail: %s\n", sl_err_msg());
			if (rc == -EBADMSG)
				fprintf(stderr,
					"shipctl: tail: stopped at %s/%s offset %" PRIu64
					" after lsn %" PRIu64 "; shipctl verify %s tells more\n",
					t.dir, seg, off, t.next - 1, t.dir);
			rc = 1;
			break;
		}
		if (done(&t) || !o->follow || shipctl_nap(interval))
			break;
		if (t.socket && ask_node(&t, 0) < 0)
			rc = 1;
	}
	if (rc == 0)
		say_nothing(&t);
	sl_logread_close(t.r);
	free(t.d.raw);
	return rc;
}

/* --- verify ------------------------------------------------------------------------ */

struct totals {
	uint64_t batches, records, bytes;
};

/* Walk every valid batch and decode it: recovery checks the CRCs and the
 * chain but never decompresses. Stops at the end recovery found. */
static int decode_all(const char *dir, const struct sl_logread_check *c, struct totals *n)
{
	struct sl_logread *r;
	struct sl_logread_batch b;
	struct decoded d = {0};
	int rc;

	if ((rc = sl_logread_open(&r, dir)) < 0)
		return rc;
	while ((rc = sl_logread_next(r, &b)) == 1 && b.h.position < c->next_position) {
		if ((rc = decode(&d, &b)) < 0)
			break;
		n->batches++;
		n->records += b.h.record_count;
		n->bytes += b.len;
		if (b.h.position + b.len >= c->next_position) {
			rc = 0;
			break;
		}
	}
	if (rc == 0 && n->batches == 0 && c->next_position > 0 &&
	    c->next_lsn > c->first_lsn) /* recovery saw batches the reader did not */
		rc = sl_err_set(EBADMSG, "%s: the reader found no batch where recovery did", dir);
	sl_logread_close(r);
	free(d.raw);
	return rc < 0 ? rc : 0;
}

int shipctl_verify(const struct ctl_opts *o)
{
	struct sl_logread_check c;
	struct totals n = {0};
	int rc = sl_logread_check(o->dir, &c);

	if (rc == -EBADMSG && c.stop_segment[0]) {
		fprintf(stderr, "%s: corrupt: segment %s offset %" PRIu64 ": %s\n", o->dir,
			c.stop_segment, c.stop_offset, c.stop_why);
		fprintf(stderr, "shipctl: verify: %s\n", sl_err_msg());
		return 1;
	}
	if (rc == 0)
		rc = decode_all(o->dir, &c, &n);
	if (rc < 0) {
		fprintf(stderr, "%s: %s: %s\n", o->dir, rc == -EBADMSG ? "corrupt" : "unreadable",
			sl_err_msg());
		return 1;
	}
	printf("%s: %" PRIu32 " segments, lsn %" PRIu64 "..%" PRIu64 ": %" PRIu64
	       " records in %" PRIu64 " batches (%" PRIu64 " bytes), positions up to %" PRIu64
	       ", last epoch %" PRIu64 "\n",
	       o->dir, c.segments, c.first_lsn, c.next_lsn - 1, n.records, n.batches, n.bytes,
	       c.next_position, c.last_epoch);
	if (c.torn_bytes) {
		printf("%s: torn tail: segment %s offset %" PRIu64 ": %s (%" PRIu64
		       " bytes, which shipd cuts when it opens the log)\n",
		       o->dir, c.stop_segment, c.stop_offset, c.stop_why, c.torn_bytes);
		return 3;
	}
	if (c.unborn) {
		printf("%s: a last segment whose creation never completed (shipd removes it)\n",
		       o->dir);
		return 3;
	}
	printf("%s: ok\n", o->dir);
	return 0;
}
