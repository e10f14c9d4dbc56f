# Shared by the integration tests (sourced, not run): a work directory and a
# cleanup trap, free ports, shipd configurations, starting and stopping
# nodes, reading `shipctl status --json` fields, bounded waits, network
# namespaces, and the final log comparison. Every wait is bounded; whatever
# happens (failure, signal, success), the trap kills the nodes it started,
# runs the registered cleanups (namespaces, links) and removes the directory.
#
# A test sets, before it_init: SHIPD SHIPCTL LOGCMP (the programs), and may
# set RECORDS, BYTES, WAIT (seconds for commit and delivery, 360), KEEP=1
# (keep the directory).
#
# Configuration (it_config N writes $dir/nN.ini):
#   IT_NODES      node ids, e.g. "1 2 3"; the first is the leader
#   IT_ADDR[n]    IPv4:port node n receives on
#   IT_MAC[n]     its MAC (DPDK nodes and their peers)
#   IT_TRANSPORT[n]  lines of node n's [transport] section (default: udp)
#   IT_PEER_EXTRA[n,m]  lines added to [peer.m] in node n's file
#   IT_CLUSTER_EXTRA, IT_NODE_EXTRA, IT_STREAM_EXTRA  lines added to every
#                 [cluster] / [node] / [stream]
#   IT_NETNS[n]   network namespace node n runs in (default: this one)
# shellcheck shell=bash

set -euo pipefail

RECORDS=${RECORDS:-1000000}
BYTES=${BYTES:-1024}
WAIT=${WAIT:-360} # generous: a loaded 2-core machine runs these several times slower
STOP_WAIT=${STOP_WAIT:-30} # seconds for a node to drain and exit after SIGTERM

declare -A pid=() IT_ADDR=() IT_MAC=() IT_TRANSPORT=() IT_PEER_EXTRA=() IT_NETNS=()
IT_NODES=${IT_NODES:-"1 2 3"}
IT_CLUSTER_EXTRA=${IT_CLUSTER_EXTRA:-}
IT_NODE_EXTRA=${IT_NODE_EXTRA:-}
IT_STREAM_EXTRA=${IT_STREAM_EXTRA:-}
it_cleanups=()
it_helpers=()
it_name=it
dir=

say() { echo "$it_name: $*"; }

fail() {
	say "FAIL: $*"
	exit 1
}

it_leader() { set -- $IT_NODES && echo "$1"; }
it_followers() { set -- $IT_NODES && shift && echo "$@"; }

# Run `cmd...` when the test ends, however it ends (last registered first).
it_on_exit() { it_cleanups+=("$*"); }

# it_helper PID: a helper process (not a node) killed when the test ends.
it_helper() { it_helpers+=("$1"); }

it_cleanup() {
	local rc=$? n i
	trap - EXIT INT TERM
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
	for n in "${it_helpers[@]}"; do
		kill -KILL "$n" 2>/dev/null || true
	done
	# Only what we killed: a helper started otherwise may be waited for
	# in a registered cleanup.
	local procs=("${pid[@]}" "${it_helpers[@]}")
	[ ${#procs[@]} -eq 0 ] || wait "${procs[@]}" 2>/dev/null || true
	if [ "$rc" -ne 0 ] && [ -n "$dir" ]; then
		for f in "$dir"/*.log; do
			[ -f "$f" ] && { echo "--- $f (last 20 lines)"; tail -n 20 "$f"; }
		done
	fi
	for ((i = ${#it_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${it_cleanups[$i]}" >/dev/null 2>&1 || true
	done
	if [ -n "$dir" ]; then
		if [ "${KEEP:-0}" = 1 ]; then say "kept $dir"; else rm -rf "$dir"; fi
	fi
	exit "$rc"
}

# it_init NAME: the work directory ($dir) and the trap.
it_init() {
	it_name=$1
	local base=${SHIPLOG_TEST_TMP:-/var/tmp}
	mkdir -p "$base"
	dir=$(mktemp -d "$base/$it_name.XXXXXX")
	it_on_exit "rm -rf /var/run/dpdk/sl$(it_tag)${it_name}*"
	trap it_cleanup EXIT
	trap 'say interrupted; exit 130' INT TERM
}

# it_free_ports N [tcp]: N free UDP (or TCP) ports of 127.0.0.1 (bound
# together, so they differ) into the array `ports`.
it_free_ports() {
	read -r -a ports < <(python3 -c '
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[2] == "tcp" else socket.SOCK_DGRAM
s = [socket.socket(socket.AF_INET, kind) for _ in range(int(sys.argv[1]))]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1" "${2:-udp}")
}

# it_config N: write $dir/nN.ini (and its log directory) and check it.
it_config() {
	local n=$1 m
	mkdir -p "$dir/n$n"
	{
		cat <<EOF
[cluster]
id = ${IT_CLUSTER:-$it_name}
leader = $(it_leader)
$IT_CLUSTER_EXTRA

[node]
id = $n
log_dir = n$n
idle = backoff
$IT_NODE_EXTRA

[stream]
acks = 1
ack_level = durable
$IT_STREAM_EXTRA

[transport]
${IT_TRANSPORT[$n]:-kind = udp}
EOF
		for m in $IT_NODES; do
			echo
			echo "[peer.$m]"
			echo "address = ${IT_ADDR[$m]}"
			[ -n "${IT_MAC[$m]:-}" ] && echo "mac = ${IT_MAC[$m]}"
			[ -n "${IT_PEER_EXTRA[$n,$m]:-}" ] && echo "${IT_PEER_EXTRA[$n,$m]}"
		done
	} >"$dir/n$n.ini"
	"$SHIPD" -c "$dir/n$n.ini" --check >/dev/null
}

# it_start N [shipd args...]: start node N (in IT_NETNS[N] if set), its
# stderr in $dir/nN.log (appended: a restarted node keeps its history).
it_start() {
	local n=$1
	shift
	local cmd=("$SHIPD" -c "$dir/n$n.ini" "$@")
	[ -n "${IT_NETNS[$n]:-}" ] && cmd=(ip netns exec "${IT_NETNS[$n]}" "${cmd[@]}")
	"${cmd[@]}" >>"$dir/n$n.log" 2>&1 &
	pid[$n]=$!
}

# it_start_all: followers first (the leader's first batches find them
# listening), the leader generating RECORDS records of BYTES bytes.
it_start_all() {
	local n
	for n in $(it_followers); do it_start "$n"; done
	it_start "$(it_leader)" --generate "$RECORDS:$BYTES"
	say "dir $dir, pids ${pid[*]}"
}

it_alive() {
	local n
	for n in "${!pid[@]}"; do
		kill -0 "${pid[$n]}" 2>/dev/null || fail "node $n exited early (see n$n.log)"
	done
}

# it_status N: node N's `shipctl status --json` ("" if it does not answer).
it_status() {
	"$SHIPCTL" status --json -c "$dir/n$1.ini" 2>/dev/null || true
}

# it_field N PATH...: fields of node N's status (node.commit_lsn,
# peers.0.naks, ...), one line each; "" for each when N does not answer.
it_field() {
	local n=$1
	shift
	it_status "$n" | python3 -c 'import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    d = None
for path in sys.argv[1:]:
    v = d
    for k in path.split("."):
        if v is None:
            break
        v = v[int(k)] if isinstance(v, list) else v.get(k)
    print("" if v is None else v)' "$@"
}

# it_wait SECONDS WHAT CMD...: run CMD every half second until it succeeds;
# fail (naming WHAT and CMD's last output) after SECONDS, or when a node
# dies. CMD's stdout is kept in $it_last.
it_last=
it_wait() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	while :; do
		it_alive
		if it_last=$("$@"); then
			return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not after ${secs}s ($it_last)"
		sleep "${IT_POLL:-0.5}"
	done
}

# Succeeds once the leader has committed `lsn` and every follower has
# delivered it (prints where they are).
it_reached() {
	local lsn=$1 n v ok=0 out
	v=$(it_field "$(it_leader)" node.commit_lsn)
	out="commit lsn '$v'"
	[ "$v" = "$lsn" ] || ok=1
	for n in $(it_followers); do
		v=$(it_field "$n" node.delivered_lsn)
		out="$out, node $n delivered '$v'"
		[ "$v" = "$lsn" ] || ok=1
	done
	echo "$out"
	return $ok
}

# it_wait_all LSN: bounded (WAIT) until it_reached LSN.
it_wait_all() {
	it_wait "$WAIT" "commit and delivery of lsn $1" it_reached "$1"
	say "$it_last"
}

# it_stop N...: SIGTERM; each must drain and exit 0 within STOP_WAIT.
it_stop() {
	local n i rc
	for n in "$@"; do kill -TERM "${pid[$n]}"; done
	for n in "$@"; do
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
}

# it_kill9 N: SIGKILL node N and reap it.
it_kill9() {
	kill -KILL "${pid[$1]}"
	wait "${pid[$1]}" 2>/dev/null || true
	unset "pid[$1]"
}

# it_compare LSN: every follower's log holds the leader's, byte for byte,
# through the batch of LSN (the nodes must be stopped).
it_compare() {
	local n
	for n in $(it_followers); do
		"$LOGCMP" --lsn "$1" "$dir/n$(it_leader).ini" "$dir/n$n.ini" ||
			fail "node $n's log differs from the leader's"
	done
}

# it_netns NAME: create network namespace NAME (removed at exit), lo up.
it_netns() {
	ip netns add "$1"
	it_on_exit ip netns del "$1"
	ip -n "$1" link set lo up
}

# A short tag unique among concurrent runs, for namespace and link names
# (interface names: 15 characters at most).
it_tag() { printf '%x' $(($$ % 65536)); }

# it_eal N VDEV...: eal_args lines for DPDK node N: no hugepages, no PCI
# scan, a runtime directory of its own (it_init removes them at exit), its main lcore
# free to run on either of the first two CPUs (EAL would pin it to one), and
# the vdevs given.
it_eal() {
	local n=$1 v prefix
	shift
	prefix=sl$(it_tag)${it_name}$n
	echo "eal_args = --no-huge -m 256 --no-pci --file-prefix=$prefix --lcores=0@(0-1)"
	echo "eal_args = --log-level=*:warning"
	for v in "$@"; do echo "eal_args = --vdev=$v"; done
}

# it_switch NS [bridge]: a namespace NS for the switch the node namespaces
# hang off (it_plug): with "bridge", a Linux bridge br0 in it; without, the
# test runs its own switch there (impair).
it_switch() {
	it_netns "$1"
	if [ "${2:-}" = bridge ]; then
		ip -n "$1" link add br0 type bridge
		ip -n "$1" link set br0 up
	fi
}

# it_plug SWITCH_NS NODE_NS IF MAC [CIDR]: a veth pair from the switch
# (port p<IF>, in br0 if there is one) to the node namespace (interface IF,
# with MAC, and CIDR if given: a kernel-UDP node). A kernel node's interface
# computes its UDP checksums (tx off): veth would otherwise leave them to
# "hardware" and a DPDK af_packet peer would see only the pseudo-header
# sum (docs/configuration.md, DPDK without a NIC).
it_plug() {
	local sw=$1 ns=$2 ifn=$3 mac=$4 cidr=${5:-}
	ip -n "$sw" link add "p$ifn" type veth peer name "$ifn" netns "$ns"
	if ip -n "$sw" link show br0 >/dev/null 2>&1; then
		ip -n "$sw" link set "p$ifn" master br0
	fi
	ip -n "$sw" link set "p$ifn" up
	ip -n "$ns" link set "$ifn" address "$mac"
	if [ -n "$cidr" ]; then
		ip -n "$ns" addr add "$cidr" dev "$ifn"
		ip netns exec "$ns" ethtool -K "$ifn" tx off >/dev/null
	fi
	ip -n "$ns" link set "$ifn" up
}
