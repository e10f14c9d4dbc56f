#!/usr/bin/env bash
# integration_afpacket: three shipd over DPDK net_af_packet, each in a
# network namespace of its own on one end of a veth pair whose other end is
# in a switch namespace, where tests/integration/impair forwards between
# them losing 5 %, duplicating 5 % and reordering 5 % (held 500 us) of the
# frames (this kernel has no sch_netem; see impair.c). The leader generates
# RECORDS records (acks=1 durable); the test waits for commit and delivery,
# stops all with SIGTERM (exit 0), checks that the faults happened (the
# switch's counters) and were repaired (NAKs and retransmits on the
# leader), and compares the logs byte for byte.
#
#   afpacket.sh SHIPD SHIPCTL LOGCMP IMPAIR
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3 IMPAIR=$4
. "$(dirname "$0")/lib.sh"

it_init afpacket
tag=$(it_tag)
sw=slaf${tag}sw
it_switch "$sw"
for n in 1 2 3; do
	IT_NETNS[$n]=slaf${tag}n$n
	it_netns "${IT_NETNS[$n]}"
	IT_ADDR[$n]=10.99.0.$n:7000
	IT_MAC[$n]=02:53:4c:00:00:0$n
	it_plug "$sw" "${IT_NETNS[$n]}" "eth$n" "${IT_MAC[$n]}"
	IT_TRANSPORT[$n]="kind = dpdk
$(it_eal "$n" "net_af_packet0,iface=eth$n,framecnt=4096")"
done
seed=${SEED:-$$}
say "switch seed $seed (SEED=$seed repeats its faults)"
ip netns exec "$sw" "$IMPAIR" --loss 5 --dup 5 --reorder 5 --delay-us 500 \
	--seed "$seed" --seconds $((WAIT + 120)) peth1 peth2 peth3 >"$dir/impair.out" 2>&1 &
impair_pid=$!
it_helper "$impair_pid"
for n in 1 2 3; do it_config "$n"; done
it_start_all
it_wait_all "$RECORDS"
read -r naks rexmit < <(it_field 1 frames.naks_received frames.retransmits | paste -sd' ')
it_stop 2 3 1
kill -TERM "$impair_pid"
rc=0
wait "$impair_pid" || rc=$?
it_helpers=()
[ "$rc" = 0 ] || fail "impair exited with $rc: $(cat "$dir/impair.out")"
say "switch: $(cat "$dir/impair.out"); leader: $naks NAKs, $rexmit retransmits"
read -r _ _ _ _ _ dropped _ dup _ reordered _ < "$dir/impair.out"
[ "$dropped" -gt 0 ] && [ "$dup" -gt 0 ] && [ "$reordered" -gt 0 ] ||
	fail "the switch did not lose, duplicate and reorder"
[ "$naks" -gt 0 ] && [ "$rexmit" -gt 0 ] || fail "losses were not repaired through NAKs"
it_compare "$RECORDS"
say PASS
