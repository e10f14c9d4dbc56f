/* The simulator's invariant bookkeeping: a ring buffer of the last events
 * (the trace a violation prints), the table of every appended record (what
 * followers must deliver, byte for byte), an independent computation of the
 * ack quorum, the comparison of protocol snapshots for invariant (e), and
 * the reporting of violations.
 *
 * Violation letters: a-e are the invariants of the brief (DESIGN.md rules
 * 1-5), f its rule 6 (at most one leader commits, or is elected, in any
 * epoch); the simulator adds
 *   V  votes: one sent before it was persisted, two granted in one epoch,
 *      or a leader elected without the votes the policy demands
 *   F  a frame the protocol sent is malformed or misaddressed
 *   W  the protocol wrote or read its log out of order (not an append at the
 *      end, or a batch that does not chain)
 *   R  a restarted node could not be created from its recovered log
 *   T  a timer that does not advance (the node would spin)
 *   L  liveness: after every fault healed, the appended records were not all
 *      committed and delivered (and every rotten batch repaired) within the
 *      virtual time budget
 *   E  anti-entropy: a rotten batch read back as good, a repair that wrote
 *      other bytes, a difference found in the committed log, or a replica
 *      whose log is not the leader's byte for byte once all is done. */
#ifndef SHIPLOG_SIM_CHECK_H
#define SHIPLOG_SIM_CHECK_H

#include <stdint.h>

#include "shiplog/proto.h"
#include "shiplog/quorum.h"

#define SL_SIM_TRACE_LEN 64

/* One trace line, formatted only when printed: `fmt` is a string literal
 * whose conversions (at most four) all take uint64_t (PRIu64, PRIx64). */
struct sl_sim_trace_ent {
	uint64_t t;
	const char *fmt;
	uint64_t a[4];
	int node;
};

struct sl_sim_rec {
	uint64_t hash;
	uint32_t len;
};

struct sl_sim_check {
	uint64_t seed;
	struct sl_sim_trace_ent trace[SL_SIM_TRACE_LEN];
	uint64_t n_trace;
	struct sl_sim_rec *recs; /* indexed by LSN, 1..max_recs */
	uint64_t max_recs;
	int failed;	/* a violation was reported */
	char letter;	/* of the first one */
	uint64_t count; /* violations seen (only the first is printed in full) */
	int quiet;	/* print nothing (unit tests) */
	int live;	/* print every trace line as it is recorded (--trace) */
};

/* 0 or -ENOMEM. */
int sl_sim_check_init(struct sl_sim_check *c, uint64_t max_recs);
void sl_sim_check_destroy(struct sl_sim_check *c);
/* Start a new run: forget the trace, the records and any violation. */
void sl_sim_check_reset(struct sl_sim_check *c, uint64_t seed);

/* Record one trace line; the arguments must all be uint64_t (the format
 * attribute makes the compiler check them against `fmt`). */
void sl_sim_trace(struct sl_sim_check *c, uint64_t t, int node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Print the trace, oldest first. */
void sl_sim_trace_dump(const struct sl_sim_check *c);

/* Report a violation of invariant `letter` at `node` (-1: none), at
 * position `pos` / LSN `lsn` (UINT64_MAX: not applicable). The first one of
 * a run prints the message, the seed and the trace. */
void sl_sim_violation(struct sl_sim_check *c, char letter, int node, uint64_t pos, uint64_t lsn,
		      uint64_t now, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* A 64-bit FNV-1a hash of a record's bytes. */
uint64_t sl_sim_hash(const void *p, uint32_t len);
/* Remember what LSN `lsn` holds; -ERANGE past max_recs. */
int sl_sim_rec_put(struct sl_sim_check *c, uint64_t lsn, const void *rec, uint32_t len);
/* 1 when LSN `lsn` holds exactly these bytes. */
int sl_sim_rec_match(const struct sl_sim_check *c, uint64_t lsn, const void *rec, uint32_t len);

/* Followers whose acknowledgement the policy demands for n nodes, computed
 * here from DESIGN.md, never from quorum.c: acks k -> k, majority -> the
 * floor(N/2)+1 nodes of a majority minus the leader, all -> N-1. Ignores
 * debug_undercount on purpose. -1 when the policy cannot be met. */
int sl_sim_required(const struct sl_ack_policy *p, unsigned n_nodes);

/* The highest position the policy acknowledged: the `required`-th highest
 * follower position, bounded by the leader's durable position (or its log
 * end with local_none) and the leader's log end. Independent of quorum.c. */
uint64_t sl_sim_quorum(int local_none, uint64_t leader_end, uint64_t leader_durable,
		       const uint64_t *follower_pos, unsigned n_followers, unsigned required);

/* NULL when two snapshots of one node agree on everything but the frame
 * counters a rejected frame may bump (frames_in, frames_bad,
 * frames_foreign, frames_stale, and frames_out: a stale leader's frame is
 * answered); otherwise the name of a field that differs. */
const char *sl_sim_status_diff(const struct sl_proto_status *a, const struct sl_proto_status *b);

#endif
