#!/usr/bin/env bash
# integration_inject: forged frames change nothing. Three shipd over kernel
# UDP on 127.0.0.1 with a pre-shared key and epoch 2 commit and deliver a
# tenth of RECORDS (100,000: the point is the standing cluster after them,
# compared before and after each forgery); then the inject tool sends the follower
# (node 3) and the leader (node 1) COUNT frames of each forgery: another
# key, no MAC, another cluster id, a lower epoch. Each frame would move the
# node if admitted (a commit position far ahead to the follower, positions
# of 0 to the leader). After each, the node's matching drop counter
# (loop.mac_rejected, frames.foreign, frames.stale) has grown by exactly
# COUNT and its positions and log are what they were. Last, the control:
# one well-formed forged heartbeat to node 3 is admitted and does move it
# (so the frames above were refused for what they got wrong). Then all stop
# cleanly and the logs match.
#
#   inject.sh SHIPD SHIPCTL LOGCMP INJECT
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3 INJECT=$4
RECORDS=$((${RECORDS:-1000000} / 10)) # before lib.sh, which keeps it
COUNT=${COUNT:-200}
. "$(dirname "$0")/lib.sh"

it_init inject
it_free_ports 3
for n in 1 2 3; do IT_ADDR[$n]=127.0.0.1:${ports[$((n - 1))]}; done
python3 -c 'import os; print(os.urandom(32).hex())' >"$dir/key"
chmod 600 "$dir/key"
IT_CLUSTER_EXTRA="epoch = 2"
IT_NODE_EXTRA="key_file = key"
for n in 1 2 3; do it_config "$n"; done
it_start_all
it_wait_all "$RECORDS"

# What must not move: positions, LSNs and the log, on either node.
STATE=(node.next_lsn node.log_end node.durable_pos node.commit_pos node.commit_lsn
	node.safe_pos node.delivered_lsn store.next_lsn store.durable_position
	shipd.delivered_records)
LEADER_STATE=(peers.0.received_pos peers.0.durable_pos peers.0.applied_pos
	peers.1.received_pos peers.1.durable_pos peers.1.applied_pos)
# snap N COUNTER: "COUNTER's value|the state", from one status request
# (shipctl is slow to start under ASan: one call per look).
snap() {
	local fields=("$2" "${STATE[@]}")
	[ "$1" = 1 ] && fields+=("${LEADER_STATE[@]}")
	it_field "$1" "${fields[@]}" | paste -sd' ' | sed 's/ /|/'
}

# Succeeds once node $1's counter $2 reaches $3 (prints the snap).
counter_at() {
	local v
	v=$(snap "$1" "$2")
	echo "$v"
	[ "${v%%|*}" = "$3" ]
}

for n in 3 1; do
	for forgery in key:loop.mac_rejected nomac:loop.mac_rejected cluster:frames.foreign \
		epoch:frames.stale; do
		kind=${forgery%%:*} counter=${forgery#*:}
		before=$(snap "$n" "$counter")
		c0=${before%%|*}
		"$INJECT" "$dir/n$n.ini" "$kind" "$COUNT" || fail "inject $kind to node $n"
		sleep 0.5 # anything the frames set off would show by now
		it_wait 20 "node $n counting $COUNT '$kind' frames in $counter (from $c0)" \
			counter_at "$n" "$counter" $((c0 + COUNT))
		[ "${it_last#*|}" = "${before#*|}" ] ||
			fail "node $n moved after '$kind' frames: before: ${before#*|}; after: ${it_last#*|}"
		say "node $n: $COUNT '$kind' frames dropped ($counter $c0 -> $((c0 + COUNT))), state unchanged"
	done
done

# The control: the same heartbeat, well formed, moves node 3's safe position.
safe0=$(it_field 3 node.safe_pos)
"$INJECT" "$dir/n3.ini" good 1 || fail "inject good to node 3"
moved() {
	local v
	v=$(it_field 3 node.safe_pos)
	echo "safe_pos $v"
	[ "$v" != "$safe0" ]
}
it_wait 20 "the control frame admitted by node 3" moved
say "control: a well-formed forged heartbeat moved node 3's safe_pos $safe0 -> ${it_last#safe_pos }"

it_stop 2 3 1
it_compare "$RECORDS"
say PASS
