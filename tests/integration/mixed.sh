#!/usr/bin/env bash
# integration_mixed: one DPDK node and two kernel-UDP nodes in one cluster
# (the wire format is the same). Each node runs in a network namespace of
# its own, its veth plugged into a bridge in a fourth: node 1, the leader,
# drives its veth through DPDK's net_af_packet (static MACs for its peers,
# ARP replies for theirs); nodes 2 and 3 are shipd over kernel UDP. The
# leader generates RECORDS records (acks=1 durable); the test waits for
# commit and delivery, stops all with SIGTERM (exit 0) and compares the
# logs byte for byte. The DPDK node's counters must show ARP answered and
# nothing dropped as malformed.
#
#   mixed.sh SHIPD SHIPCTL LOGCMP
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3
. "$(dirname "$0")/lib.sh"

it_init mixed
tag=$(it_tag)
sw=slmx${tag}sw
it_switch "$sw" bridge
for n in 1 2 3; do
	IT_NETNS[$n]=slmx${tag}n$n
	it_netns "${IT_NETNS[$n]}"
	IT_ADDR[$n]=10.99.0.$n:7000
	IT_MAC[$n]=02:53:4c:00:00:0$n
done
it_plug "$sw" "${IT_NETNS[1]}" eth1 "${IT_MAC[1]}"
it_plug "$sw" "${IT_NETNS[2]}" eth2 "${IT_MAC[2]}" 10.99.0.2/24
it_plug "$sw" "${IT_NETNS[3]}" eth3 "${IT_MAC[3]}" 10.99.0.3/24
IT_TRANSPORT[1]="kind = dpdk
$(it_eal 1 net_af_packet0,iface=eth1,framecnt=4096)"
for n in 1 2 3; do it_config "$n"; done
it_start_all
it_wait_all "$RECORDS"
read -r arp dropped < <(it_field 1 transport.arp_replies transport.rx_dropped | paste -sd' ')
say "DPDK node: $arp ARP replies, $dropped frames dropped on receive"
[ "$arp" -ge 1 ] || fail "the DPDK node answered no ARP request"
it_stop 2 3 1
it_compare "$RECORDS"
say PASS
