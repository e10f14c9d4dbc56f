#!/usr/bin/env bash
# example_rocksdb: a RocksDB replicated through libshiplog on three shipd
# (127.0.0.1, kernel UDP, acks=all, ack_level=applied, [client] engine =
# consumer, so a commit means both followers' databases applied it). The
# leader writes KEYS keys in WriteBatches of 100 (with overwrites and
# deletes); each follower applies what it is delivered until the last LSN.
# Node 3's engine stops half way first: compare must then find its database
# behind the leader's, and restarted it must resume after the LSN it holds.
# At the end `shiplog-rocksdb compare` scans the three databases key by key
# and they must hold the same keys and values, as many as the leader expects,
# and the three shiplog logs must be byte-identical. Bounded waits (lib.sh).
#
#   test_rocksdb.sh SHIPD SHIPCTL LOGCMP SHIPLOG_ROCKSDB   (from meson)
#   env: ROCKSDB_KEYS (100000), WAIT (180), KEEP=1 keeps the directory
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3 ROCKSDB=$4
KEYS=${ROCKSDB_KEYS:-100000}
BATCH=100
LSNS=$(((KEYS + BATCH - 1) / BATCH)) # one record per WriteBatch, from lsn 1
WAIT=${WAIT:-180}
IT_NODES="1 2 3"
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../tests/integration/lib.sh"

it_init example_rocksdb
it_free_ports 3
for n in 1 2 3; do IT_ADDR[$n]=127.0.0.1:${ports[$((n - 1))]}; done
for n in 1 2 3; do
	it_config "$n"
	sed -i 's/^acks = 1$/acks = all/; s/^ack_level = durable$/ack_level = applied/' "$dir/n$n.ini"
	printf '\n[client]\nengine = consumer\n' >>"$dir/n$n.ini"
	"$SHIPD" -c "$dir/n$n.ini" --check >/dev/null
done

declare -A engine=()
# follower N UNTIL: node N's engine, in the background, until lsn UNTIL.
follower() {
	"$ROCKSDB" follower -s "$dir/n$1/client.sock" -d "$dir/db$1" --until-lsn "$2" \
		--timeout "$WAIT" >>"$dir/engine$1.out" 2>>"$dir/engine$1.log" &
	engine[$1]=$!
	it_on_exit "kill -KILL ${engine[$1]}"
}
# finish N: node N's engine must exit 0.
finish() {
	local rc=0
	wait "${engine[$1]}" || rc=$?
	[ "$rc" = 0 ] || fail "node $1's engine exited with $rc: $(cat "$dir/engine$1.log")"
	say "$(tail -n 1 "$dir/engine$1.out")"
}
half=$((LSNS / 2))
for n in 2 3; do
	it_start "$n"
	it_wait 10 "node $n's client socket" test -S "$dir/n$n/client.sock"
done
follower 2 "$LSNS"
follower 3 "$half"
it_start 1
it_wait 10 "node 1's client socket" test -S "$dir/n1/client.sock"
say "dir $dir, shipd ${pid[*]}, engines ${engine[*]}"

start=$SECONDS
timeout "$WAIT" "$ROCKSDB" leader -s "$dir/n1/client.sock" -d "$dir/db1" --keys "$KEYS" \
	--batch "$BATCH" >"$dir/engine1.out" 2>"$dir/engine1.log" &
engine[1]=$!
it_on_exit "kill -KILL ${engine[1]}"

# Node 3's engine stopped half way: the leader (which applies before it
# appends) is ahead of it, and compare must say so; then it resumes.
finish 3
grep -q "applied lsn 1\.\.$half to" "$dir/engine3.out" || fail "node 3 did not stop at lsn $half"
rc=0
"$ROCKSDB" compare "$dir/db1" "$dir/db3" >"$dir/compare.out" || rc=$?
[ "$rc" = 1 ] && grep -q "differ after" "$dir/compare.out" ||
	fail "compare did not find node 3 behind (exit $rc): $(cat "$dir/compare.out")"
say "node 3 half way: $(head -n 1 "$dir/compare.out")"
follower 3 "$LSNS"

finish 1
say "the leader's engine took $((SECONDS - start)) s"
grep -q "lsn 1\.\.$LSNS committed" "$dir/engine1.out" || fail "the leader did not append lsn 1..$LSNS"
expected=$(sed -n 's/.*, \([0-9]*\) keys expected$/\1/p' "$dir/engine1.out")

finish 2
finish 3
grep -q "applied lsn $((half + 1))\.\.$LSNS to" "$dir/engine3.out" ||
	fail "node 3 did not resume after lsn $half"

"$ROCKSDB" compare "$dir/db1" "$dir/db2" "$dir/db3" >"$dir/compare.out" ||
	fail "$(cat "$dir/compare.out")"
say "$(cat "$dir/compare.out")"
grep -q "hold the same $expected keys" "$dir/compare.out" ||
	fail "the databases hold other than the $expected keys the leader expects"

it_stop 2 3 1
it_compare "$LSNS"
say "PASS"
