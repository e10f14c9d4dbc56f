/* Where a commit's time goes in the in-process cluster: the nodes' traces
 * (sl_node_set_trace) matched batch by batch by end position, a histogram
 * per hop from the record's due time to its commit (shipbench cluster
 * --breakdown). */
#ifndef SHIPLOG_CLUSTER_BREAKDOWN_H
#define SHIPLOG_CLUSTER_BREAKDOWN_H

#include "shiplog/cluster.h"

/* traces[i] is node i + 1's (1 leads); due[l % ring] the time LSN l was
 * due, for the LSNs within `ring` of last_lsn; batches whose first record
 * was due in [win_start, win_end) count. Sorts the traces by time. */
void sl_cluster_breakdown(const struct sl_node_trace *traces, unsigned nodes, const uint64_t *due,
			  uint64_t ring, uint64_t last_lsn, uint64_t win_start, uint64_t win_end,
			  struct sl_cluster_breakdown *out);

#endif
