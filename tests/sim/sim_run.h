/* One simulated run: N shiplog nodes (node 1 the first leader; with
 * elections, whoever wins later) driven through include/shiplog/proto.h by a
 * virtual clock, a simulated network, disks, superblocks and engines, a
 * workload on the leader and a fault plan, with every invariant checked
 * after every event. See sim.c for the command line. */
#ifndef SHIPLOG_SIM_RUN_H
#define SHIPLOG_SIM_RUN_H

#include <stdint.h>

#include "shiplog/quorum.h"
#include "shiplog/workload.h"

#define SL_SIM_FAULT_NET  1u /* loss, dup, reorder, delays, partitions, forged frames */
#define SL_SIM_FAULT_DISK 2u /* crashes, torn writes, slow syncs, storage errors */
/* Leader crashes, quick double failovers, leader pauses, crashes of
 * candidates, power losses (every node at once), and the operator's
 * leadership transfers and step-downs; needs elections. */
#define SL_SIM_FAULT_FAILOVER 4u
/* Rot in durable batches of one replica at a time: bit flips, and a valid
 * batch copied over another; found by the scrub, repaired by anti-entropy. */
#define SL_SIM_FAULT_ROT 8u

#define SL_SIM_RECORDS_MAX 100000
#define SL_SIM_REC_MAX	   4096 /* largest record the workload appends */

/* Everything a run depends on besides the PRNG. */
struct sl_sim_params {
	uint64_t seed;
	unsigned nodes;
	struct sl_ack_policy policy; /* handed to the protocol as is */
	unsigned faults;	     /* SL_SIM_FAULT_* active in this run */
	uint32_t records;	     /* the workload appends this many */
	enum sl_wl_kind wl_kind;
	uint32_t mtu, batch_bytes;
	uint64_t linger_ns, heartbeat_ns;
	uint64_t nak_delay_ns, nak_interval_ns, tlp_ns;
	uint32_t send_budget;
	uint64_t window_bytes, rcv_window_bytes;
	uint64_t fault_ns;	 /* faults happen in [0, fault_ns); then all heal */
	uint64_t heal_budget_ns; /* after the heal, time to commit and deliver all */
	uint64_t append_gap_ns;	 /* mean gap between append bursts */
	uint32_t max_burst;	 /* records per burst, 1..max_burst */
	uint64_t apply_delay_ns; /* engines acknowledge within this (0: at once) */
	uint64_t disk_lat_ns;	 /* typical sync latency */
	uint64_t disk_tail_ns;	 /* occasional slow sync, up to this */
	uint32_t disk_tail_ppm;
	uint32_t crashes, partitions, storage_errors;
	uint32_t loss_ppm, dup_ppm, forge_ppm; /* per-link maxima / forging rate */
	uint64_t down_max_ns;		       /* a crashed follower restarts within this */
	int elect;			       /* elections on (else node 1 leads for good) */
	uint64_t election_timeout_ns;
	uint32_t leader_crashes, double_failovers, pauses, power_losses, candidate_crashes;
	uint32_t transfers, stepdowns; /* operator actions (shipctl promote, stepdown) */
	uint64_t pause_max_ns;
	uint32_t rots;	     /* rot events (SL_SIM_FAULT_ROT) */
	uint32_t forces;     /* operator's promote --force (failover faults) */
	uint64_t scrub_ns;   /* the scrub reads the logs back this often */
	uint64_t entropy_ns; /* followers compare Merkle trees this often */
	uint64_t max_events;
	int trace;	 /* print every event as it happens */
	int trust_votes; /* skip counting an elected leader's votes (check V) */
};

enum sl_sim_outcome {
	SL_SIM_OK = 0,
	SL_SIM_VIOLATION,  /* an invariant broke (letter in the result) */
	SL_SIM_INCOMPLETE, /* the event budget ran out first: reported, not failed */
};

struct sl_sim_result {
	enum sl_sim_outcome outcome;
	char letter;
	uint64_t appended, committed, delivered_min;
	uint64_t frames, lost, partitioned, congested, to_down, duplicated, forged;
	uint64_t crashes, restarts, storage_errors, eagain, degrade_events;
	uint64_t naks, retransmits, tlps, catchup; /* the leader's counters */
	uint64_t events, vtime_ns;
	uint64_t commit_p50_ns, commit_p99_ns; /* append to commit, virtual time */
	uint64_t elections, leader_changes, step_downs, truncations, truncated_bytes;
	uint64_t pauses;
	uint64_t rotted, repairs; /* batches rot hit; rewrites in place */
	uint64_t comparisons;	  /* Merkle comparisons finished */
	uint64_t tails_given_up;  /* leaders' unreadable tails nobody held, cut */
	uint64_t forces;	  /* forced promotions done */
	uint64_t forced_lost;	  /* committed records they replaced, as declared */
	int beyond;		  /* failures went beyond what the policy tolerates */
	uint64_t rewritten;	  /* of them: committed log replaced (allowed then) */
	uint64_t rebuilds;	  /* nodes whose log left the leader's below their commit */
	uint64_t truth_bytes;	  /* committed log at the end */
};

struct sl_sim;

/* 0 or -errno. */
int sl_sim_create(struct sl_sim **out);
void sl_sim_destroy(struct sl_sim *s);

/* Run once. `rng` is the run's PRNG, already used to derive `prm`; the run
 * continues drawing from it. Returns 0 (see r->outcome) or -errno when the
 * simulator itself could not run (memory, bad parameters). */
int sl_sim_run(struct sl_sim *s, const struct sl_sim_params *prm, uint64_t *rng,
	       struct sl_sim_result *r);

#endif
