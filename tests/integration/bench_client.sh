#!/usr/bin/env bash
# bench_client: shipbench client runs both paths and reports them, end to end
# (not a speed test: nothing here judges a figure). A short --json run must
# give every key with both paths measured and each split at the commit
# callback, with each client call (sl_client_append_wait by default, the two
# calls with --client-call append+wait); the text report must carry the same
# lines and name the call; both print the machine's wake-up limit (a futex
# wake-up from the other CPU and on the same one) and the difference's ratio
# to it; --cpu pins and says so, a CPU the process may not use is refused;
# --help exits 0; an unknown call is refused.
#
#   bench_client.sh SHIPBENCH       (meson passes the built program)
set -euo pipefail
bench=$1
tmp=${SHIPLOG_TEST_TMP:-/tmp}
mkdir -p "$tmp"
dir=$(mktemp -d "$tmp/bench_client.XXXXXX")
trap 'rm -rf "$dir"' EXIT

run() {
	"$bench" client --seconds 0.3 --warmup 0.1 --dir "$dir" "$@" 2>"$dir/err.log" || {
		tail -20 "$dir/err.log" >&2
		echo "bench_client: shipbench client $* failed" >&2
		exit 1
	}
}
check_json() {
python3 - "$dir/out.json" "$1" "${2:--1}" <<'PY'
import json, os, sys
keys = ("bench client_call inproc_p50_us inproc_p99_us client_p50_us client_p99_us diff_p50_us "
        "handoff_p50_us inproc_to_commit_p50_us inproc_seen_p50_us client_to_commit_p50_us "
        "client_seen_p50_us ratio_p50 inproc_n client_n acks ack_level record_bytes spin_us "
        "idle loadavg client_wakeups node_sleeps leader_yields limit_wake_p50_us "
        "limit_wake_same_cpu_p50_us diff_per_wake diff_per_wake_same_cpu cpu").split()
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 1, lines
r = json.loads(lines[0])
missing = [k for k in keys if k not in r]
assert not missing, "lacks %s" % missing
assert r["bench"] == "client" and r["inproc_n"] > 0 and r["client_n"] > 0, r
assert r["client_call"] == sys.argv[2], r
for p in ("inproc", "client"):
    assert 0 < r[p + "_p50_us"] <= r[p + "_p99_us"], r
    assert 0 < r[p + "_to_commit_p50_us"] <= r[p + "_p99_us"], r
    assert 0 < r[p + "_seen_p50_us"] <= r[p + "_p99_us"], r
assert abs(r["diff_p50_us"] - (r["client_p50_us"] - r["inproc_p50_us"])) < 0.01, r
# one CPU: no other CPU to wake from (-1)
assert r["limit_wake_same_cpu_p50_us"] > 0, r
assert r["limit_wake_p50_us"] > 0 or (r["limit_wake_p50_us"] == -1 and len(os.sched_getaffinity(0)) == 1), r
assert abs(r["diff_per_wake_same_cpu"] * r["limit_wake_same_cpu_p50_us"] - r["diff_p50_us"]) < 0.01, r
assert r["cpu"] == int(sys.argv[3]), r
print("bench_client: every key present, %d + %d commits (%s)" % (r["inproc_n"], r["client_n"],
                                                                 r["client_call"]))
PY
}
run --json >"$dir/out.json"
check_json append-wait
run --json --client-call append+wait --cpu 0 >"$dir/out.json"
check_json append+wait 0
run --cpu 0 >"$dir/out.txt"
grep -q "leader loop and client on CPU 0" "$dir/out.txt" || { echo "bench_client: --cpu 0 not said" >&2; exit 1; }
for bad in x -1 4096 "$(nproc --all)"; do
	if "$bench" client --cpu "$bad" --seconds 0.1 --dir "$dir" >/dev/null 2>&1; then
		echo "bench_client: --cpu $bad accepted" >&2
		exit 1
	fi
done
run >"$dir/out.txt"
grep -q "sl_client_append_wait" "$dir/out.txt" || { echo "bench_client: call not named" >&2; exit 1; }
if "$bench" client --client-call nope >/dev/null 2>&1; then
	echo "bench_client: --client-call nope accepted" >&2
	exit 1
fi
for want in "in process (the limit)" "through libshiplog" "split at the commit callback" \
	"library cost at p50" "the machine's wake-up"; do
	grep -q "$want" "$dir/out.txt" || { echo "bench_client: no '$want' in the report" >&2; exit 1; }
done
"$bench" client --help | grep -q -- "--client-call" || { echo "bench_client: --help" >&2; exit 1; }
echo "bench_client: PASS"
