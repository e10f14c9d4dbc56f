#!/usr/bin/env bash
# integration_memif: three shipd over DPDK net_memif (shared-memory
# packet interfaces, no NIC, no hugepages). A memif interface joins exactly
# two processes, so each pair of nodes has a link of its own and each node
# one port per peer ([peer.N] port): the lower id is the memif server of
# the link. A client connects only when its port starts, so the nodes start
# in order, each once the sockets of the links it serves exist. The leader
# (node 1) generates RECORDS records (acks=1 durable); the test waits for
# commit and delivery, stops all with SIGTERM (exit 0) and compares the
# logs byte for byte.
#
#   memif.sh SHIPD SHIPCTL LOGCMP
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3
. "$(dirname "$0")/lib.sh"

it_init memif
# memif sockets: a short path (a Unix socket's is 107 bytes at most)
sock=$(mktemp -d /tmp/slmif.XXXXXX)
it_on_exit rm -rf "$sock"
for n in 1 2 3; do
	IT_ADDR[$n]=10.99.0.$n:7000
	IT_MAC[$n]=02:53:4c:00:00:0$n
done
for n in 1 2 3; do
	vdevs=()
	for m in 1 2 3; do
		[ "$m" = "$n" ] && continue
		lo=$((n < m ? n : m)) hi=$((n < m ? m : n))
		role=client
		[ "$n" = "$lo" ] && role=server
		vdevs+=("net_memif$n$m,role=$role,socket=$sock/l${lo}_$hi.sock,socket-abstract=no,id=0")
		IT_PEER_EXTRA[$n,$m]="port = net_memif$n$m"
	done
	IT_TRANSPORT[$n]="kind = dpdk
$(it_eal "$n" "${vdevs[@]}")"
	it_config "$n"
done

# Succeeds once every socket named exists.
sockets() {
	local s
	for s in "$@"; do [ -S "$sock/$s" ] || { echo "no $s yet"; return 1; }; done
}
it_start 1 --generate "$RECORDS:$BYTES"
it_wait 30 "node 1's memif sockets" sockets l1_2.sock l1_3.sock
it_start 2
it_wait 30 "node 2's memif socket" sockets l2_3.sock
it_start 3
say "dir $dir, pids ${pid[*]}"
it_wait_all "$RECORDS"
read -r kind tx < <(it_field 1 transport.kind transport.tx_packets | paste -sd' ')
[ "$kind" = dpdk ] && [ "$tx" -gt 0 ] || fail "leader's transport: $kind, $tx packets sent"
it_stop 2 3 1
it_compare "$RECORDS"
say PASS
