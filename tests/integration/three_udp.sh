#!/usr/bin/env bash
# integration_udp: three shipd processes on 127.0.0.1 over kernel UDP. The
# leader generates RECORDS records of BYTES bytes (acks=1, ack_level=durable);
# the test waits (at most WAIT seconds) until shipctl shows the leader's
# commit LSN at RECORDS and both followers' delivered LSN there too, stops
# every node with SIGTERM (each must drain and exit 0), and checks with
# logcmp that both followers' logs hold the leader's committed prefix byte
# for byte. Every wait is bounded; on any failure or interruption the trap
# kills what is left, prints the nodes' log tails and removes the directory.
#
#   three_udp.sh SHIPD SHIPCTL LOGCMP      (meson passes the built programs)
#   env: RECORDS (1000000), BYTES (1024), WAIT (240), KEEP=1 keeps the dir
set -euo pipefail

SHIPD=$1 SHIPCTL=$2 LOGCMP=$3
RECORDS=${RECORDS:-1000000}
BYTES=${BYTES:-1024}
WAIT=${WAIT:-240}
STOP_WAIT=30 # seconds for a node to drain and exit after SIGTERM

base=${SHIPLOG_TEST_TMP:-/var/tmp}
mkdir -p "$base"
dir=$(mktemp -d "$base/three_udp.XXXXXX")
declare -A pid=()

say() { echo "three_udp: $*"; }

cleanup() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		# What each live node thinks, before it goes (shipctl: 5 s at most).
		for n in "${!pid[@]}"; do
			echo "--- node $n: shipctl status"
			"$SHIPCTL" status -c "$dir/n$n.ini" 2>&1 || true
		done
	fi
	for n in "${!pid[@]}"; do
		kill -KILL "${pid[$n]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "$rc" -ne 0 ]; then
		for f in "$dir"/n*.log; do
			[ -f "$f" ] && { echo "--- $f (last 15 lines)"; tail -n 15 "$f"; }
		done
	fi
	if [ "${KEEP:-0}" = 1 ]; then say "kept $dir"; else rm -rf "$dir"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM

fail() {
	say "FAIL: $*"
	exit 1
}

# Three free UDP ports, bound together so that they differ.
read -r -a ports < <(python3 -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')

for n in 1 2 3; do
	mkdir "$dir/n$n"
	cat >"$dir/n$n.ini" <<EOF
[cluster]
id = three-udp
leader = 1

[node]
id = $n
log_dir = n$n
idle = backoff

[stream]
acks = 1
ack_level = durable

[peer.1]
address = 127.0.0.1:${ports[0]}
[peer.2]
address = 127.0.0.1:${ports[1]}
[peer.3]
address = 127.0.0.1:${ports[2]}
EOF
	"$SHIPD" -c "$dir/n$n.ini" --check >/dev/null
done

# Followers first, so the leader's first batches find them listening.
for n in 2 3 1; do
	args=()
	[ "$n" = 1 ] && args=(--generate "$RECORDS:$BYTES")
	"$SHIPD" -c "$dir/n$n.ini" "${args[@]}" >"$dir/n$n.log" 2>&1 &
	pid[$n]=$!
done
say "dir $dir, ports ${ports[*]}, pids ${pid[*]}"

# One field of `shipctl status --json`, e.g. node.commit_lsn; "" if the
# node does not answer.
field() {
	"$SHIPCTL" status --json -c "$dir/n$1.ini" 2>/dev/null |
		python3 -c 'import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[k]
print(d)' "$2" 2>/dev/null || true
}

deadline=$((SECONDS + WAIT))
while :; do
	for n in 1 2 3; do
		kill -0 "${pid[$n]}" 2>/dev/null || fail "node $n exited early"
	done
	commit=$(field 1 node.commit_lsn)
	d2=$(field 2 node.delivered_lsn)
	d3=$(field 3 node.delivered_lsn)
	if [ "$commit" = "$RECORDS" ] && [ "$d2" = "$RECORDS" ] && [ "$d3" = "$RECORDS" ]; then
		break
	fi
	[ "$SECONDS" -lt "$deadline" ] ||
		fail "after ${WAIT}s: commit lsn '$commit', delivered '$d2' and '$d3' (want $RECORDS)"
	sleep 1
done
say "commit lsn $commit on the leader, delivered $d2 and $d3 on the followers"

# Stop: each node drains and must exit 0 within STOP_WAIT seconds.
for n in 2 3 1; do
	kill -TERM "${pid[$n]}"
done
for n in 1 2 3; do
	for ((i = 0; i < STOP_WAIT * 10; i++)); do
		kill -0 "${pid[$n]}" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "${pid[$n]}" 2>/dev/null && fail "node $n still running ${STOP_WAIT}s after SIGTERM"
	rc=0
	wait "${pid[$n]}" || rc=$?
	unset "pid[$n]"
	[ "$rc" = 0 ] || fail "node $n exited with status $rc"
done

for n in 2 3; do
	"$LOGCMP" --lsn "$RECORDS" "$dir/n1.ini" "$dir/n$n.ini" ||
		fail "node $n's log differs from the leader's"
done
say "PASS"
