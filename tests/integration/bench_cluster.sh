#!/usr/bin/env bash
# bench_cluster: shipbench cluster runs its plan and reports it, end to end
# (not a speed test: nothing here judges a figure). Two transports (kernel
# UDP and the TCP baseline), each a closed loop and then (--half-max) an
# open loop at half the rate it reached, short runs, --json and --plot:
# every run prints one JSON line with the issue's keys and a verified log
# check, the summary table comes on stderr, and the plots are drawn. Then one
# short run at --mtu 9000 with --idle nap, and an MTU out of range refused.
# Last, --rounds 2: the transports interleaved round by round, every run a
# JSON line with its round, the median table and rounds.png; and --idle as a
# list.
#
#   bench_cluster.sh SHIPBENCH       (meson passes the built program)
set -euo pipefail
bench=$1
tmp=${SHIPLOG_TEST_TMP:-/tmp}
mkdir -p "$tmp"
dir=$(mktemp -d "$tmp/bench_cluster.XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$bench" cluster --json --transport udp,tcp --half-max \
	--seconds 0.5 --warmup 0.2 --dir "$dir" --plot "$dir/plot" \
	>"$dir/out.jsonl" 2>"$dir/err.log" || {
	tail -20 "$dir/err.log" >&2
	echo "bench_cluster: shipbench cluster failed" >&2
	exit 1
}
python3 - "$dir/out.jsonl" <<'PY'
import json, sys
keys = ("bench transport nodes acks ack_level record_bytes mode rate records_per_s mb_s "
        "wire_mb_s commit_p50_us commit_p99_us commit_p999_us commit_max_us lag_p50_ms "
        "lag_p99_ms lag_max_ms ratio cpu_s_per_gb retransmits naks limit_fsync_p50_us "
        "limit_rtt_p50_us limit_lz4_mb_s limit_seq_mb_s ratio_p99 steal_ms steal_slice_max_ms "
        "limit_fsync_p99_us limit_fsync_par_writers limit_fsync_par_per_s "
        "limit_fsync_par_p50_us limit_fsync_par_p99_us floor_ratio floor_ratio_p99 "
        "verified").split()
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = [(t, m) for t in ("udp", "tcp") for m in ("closed", "open")]
got = [(r["transport"], r["mode"]) for r in runs]
assert got == want, "runs %s, want %s" % (got, want)
for r in runs:
    missing = [k for k in keys if k not in r]
    assert not missing, "%s/%s lacks %s" % (r["transport"], r["mode"], missing)
    assert r["bench"] == "cluster" and r["nodes"] == 3 and r["verified"] is True, r
    assert r["records_per_s"] > 0 and r["commit_p50_us"] > 0 and r["limit_rtt_p50_us"] > 0, r
    assert (r["rate"] > 0) == (r["mode"] == "open"), r
    assert 0 <= r["steal_slice_max_ms"] <= r["steal_ms"], r
    # The parallel probe: a writer per node, paced at the open loop's rate.
    assert r["limit_fsync_par_writers"] == 3 and r["limit_fsync_par_p50_us"] > 0, r
    assert r["limit_fsync_par_p99_us"] >= r["limit_fsync_par_p50_us"], r
    assert r["limit_fsync_p99_us"] >= r["limit_fsync_p50_us"] > 0, r
    assert r["limit_fsync_par_per_s"] == r["rate"], r
for closed, half in zip(runs[::2], runs[1::2]):
    assert abs(half["rate"] - closed["records_per_s"] / 2) <= 1, (closed, half)
print("bench_cluster: %d runs, every key present, every log verified" % len(runs))
PY
# --mtu reaches every node: DATA fragments of a jumbo MTU, the log verified;
# with the nap idle strategy (nodes sleep on the timer only), --log-inflight,
# --breakdown (each hop and the logs' group writes, classed) and
# --timer-early-us (waking 20 us before each timed event to spin to it).
"$bench" cluster --json --transport udp --mtu 9000 --idle nap --seconds 0.3 --warmup 0.1 \
	--log-inflight 4 --breakdown --timer-early-us 20 --dir "$dir" >"$dir/mtu.jsonl" 2>"$dir/mtu.log" || {
	tail -20 "$dir/mtu.log" >&2
	echo "bench_cluster: shipbench cluster --mtu 9000 failed" >&2
	exit 1
}
python3 - "$dir/mtu.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(runs) == 1 and runs[0]["mtu"] == 9000 and runs[0]["verified"] is True, runs
assert runs[0]["idle"] == "nap" and runs[0]["log_inflight"] == 4, runs
assert runs[0]["timer_early_us"] == 20, runs
r = runs[0]
assert r["bd_batches"] > 0 and r["bd_write_p50_us"] > 0, r
assert r["bd_write_p99_us"] >= r["bd_write_p50_us"], r
PY
grep -q "log writes .* group writes of every node" "$dir/mtu.log" || {
	tail -20 "$dir/mtu.log" >&2
	echo "bench_cluster: --breakdown printed no log writes" >&2
	exit 1
}
if "$bench" cluster --mtu 100 --seconds 0.1 >/dev/null 2>"$dir/bad.log"; then
	echo "bench_cluster: --mtu 100 was accepted" >&2
	exit 1
fi
grep -q -- "--mtu" "$dir/bad.log" || { cat "$dir/bad.log" >&2; exit 1; }
grep -q "^transport" "$dir/err.log" || { echo "bench_cluster: no summary table" >&2; exit 1; }
for f in results.jsonl commit_cdf.png lag_over_time.png run-001-steal.csv; do
	[ -s "$dir/plot/$f" ] || { echo "bench_cluster: --plot wrote no $f" >&2; exit 1; }
done
# --rounds: udp, tcp, then tcp, udp (each round starts one transport later);
# the medians (of two: the mean) as printed.
"$bench" cluster --json --transport udp,tcp --rounds 2 --seconds 0.3 --warmup 0.1 \
	--dir "$dir" --plot "$dir/rounds" >"$dir/rounds.jsonl" 2>"$dir/rounds.log" || {
	tail -20 "$dir/rounds.log" >&2
	echo "bench_cluster: shipbench cluster --rounds 2 failed" >&2
	exit 1
}
python3 - "$dir/rounds.jsonl" "$dir/rounds.log" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
got = [(r["transport"], r["round"]) for r in runs]
assert got == [("udp", 1), ("tcp", 1), ("tcp", 2), ("udp", 2)], got
assert all(r["verified"] is True for r in runs), runs
lines = open(sys.argv[2]).read().split("median of 2 rounds", 1)[1].splitlines()
for net in ("udp", "tcp"):
    row = [l.split() for l in lines if l.startswith(net + " ")]
    assert len(row) == 1, (net, lines)
    rps = sorted(r["records_per_s"] for r in runs if r["transport"] == net)
    # transport acks level bytes closed 64 runs records/s (min-max) ...
    assert row[0][6] == "2", row
    assert abs(float(row[0][7]) - sum(rps) / 2) <= 1, (row, rps)
    assert row[0][8] == "(%.0f-%.0f)" % tuple(rps), (row, rps)
PY
[ -s "$dir/rounds/rounds.png" ] || { echo "bench_cluster: --rounds drew no rounds.png" >&2; exit 1; }
# --idle LIST: a run per strategy, in the order listed.
"$bench" cluster --json --transport tcp --idle nap,backoff --seconds 0.2 --warmup 0.1 \
	--dir "$dir" >"$dir/idle.jsonl" 2>"$dir/idle.log" || {
	tail -20 "$dir/idle.log" >&2
	echo "bench_cluster: shipbench cluster --idle nap,backoff failed" >&2
	exit 1
}
python3 -c 'import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [r["idle"] for r in runs] == ["nap", "backoff"], runs
assert all(r["verified"] is True for r in runs), runs' "$dir/idle.jsonl"
echo "bench_cluster: PASS"
