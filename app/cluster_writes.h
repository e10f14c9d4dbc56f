/* The logs' writes in the in-process cluster (shipbench cluster --breakdown):
 * every node's per-write records (sl_store_wtrace) classed by what was in
 * flight beside each group write, on its own log and on the other logs. */
#ifndef SHIPLOG_CLUSTER_WRITES_H
#define SHIPLOG_CLUSTER_WRITES_H

#include "shiplog/cluster.h"
#include "shiplog/store.h"

/* wt[i] is node i + 1's; group writes submitted in [win_start, win_end)
 * count. */
void sl_cluster_writes(const struct sl_store_wtrace *wt, unsigned nodes, uint64_t win_start,
		       uint64_t win_end, struct sl_cluster_writes *out);

#endif
