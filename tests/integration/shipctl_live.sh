#!/usr/bin/env bash
# integration_shipctl: shipctl against running nodes. Two shipd on 127.0.0.1
# over kernel UDP (acks=1, ack_level=durable); the leader generates
# SHIPCTL_RECORDS records. While it does, `tail -f -n N` on the follower must
# print every record and stop by itself; then live tail on both nodes must
# agree, --from must start where asked, `lag` must show the follower (and,
# asked on the follower, name the leader), a missing socket must be an error.
# After SIGTERM, `verify` passes on both logs and `tail DIR` prints what the
# live tail printed. Every wait is bounded (lib.sh); the trap cleans up.
#
#   shipctl_live.sh SHIPD SHIPCTL [LOGCMP]   (meson passes the built programs)
#   env: SHIPCTL_RECORDS (20000), BYTES (200), WAIT (120), KEEP=1 keeps the dir
SHIPD=$1 SHIPCTL=$2 LOGCMP=${3:-}
RECORDS=${SHIPCTL_RECORDS:-20000}
BYTES=${BYTES:-200}
WAIT=${WAIT:-120}
IT_NODES="1 2"
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init shipctl_live
it_free_ports 2
IT_ADDR[1]=127.0.0.1:${ports[0]}
IT_ADDR[2]=127.0.0.1:${ports[1]}
it_config 1
it_config 2

it_start 2
# The follower answers before the leader starts: tail -f starts on an empty
# log and must print the records as they come.
it_wait 10 "the follower's control socket" "$SHIPCTL" status -c "$dir/n2.ini"
timeout "$WAIT" "$SHIPCTL" tail -f -i 50 -n "$RECORDS" -c "$dir/n2.ini" \
	>"$dir/follow.out" 2>"$dir/follow.log" &
follow=$!
it_on_exit "kill -KILL $follow"
it_start 1 --generate "$RECORDS:$BYTES"
say "dir $dir, pids ${pid[*]}"

rc=0
wait "$follow" || rc=$?
[ "$rc" = 0 ] || fail "tail -f on the follower exited with $rc"
lines=$(wc -l <"$dir/follow.out")
[ "$lines" = "$RECORDS" ] || fail "tail -f printed $lines lines, want $RECORDS"
say "tail -f on the follower printed all $RECORDS records and stopped"

for n in 1 2; do
	timeout 30 "$SHIPCTL" tail -n "$RECORDS" -c "$dir/n$n.ini" >"$dir/live$n.out" ||
		fail "live tail on node $n"
done
cmp -s "$dir/live1.out" "$dir/follow.out" || fail "tail -f on the follower differs from the leader's tail"
cmp -s "$dir/live1.out" "$dir/live2.out" || fail "the follower's tail differs from the leader's"
[ "$(head -c 6 "$dir/live1.out")" = "1 ts=1" ] || fail "the leader's tail does not start at lsn 1"
[ "$(wc -l <"$dir/live1.out")" = "$RECORDS" ] || fail "live tail: not $RECORDS lines"

from=$((RECORDS - 9))
"$SHIPCTL" tail --from "$from" -c "$dir/n1.ini" >"$dir/from.out"
[ "$(wc -l <"$dir/from.out")" = 10 ] || fail "--from $from: $(wc -l <"$dir/from.out") lines, want 10"
[ "$(cut -d' ' -f1 "$dir/from.out" | head -1)" = "$from" ] || fail "--from $from starts elsewhere"
tail -n 10 "$dir/live1.out" | cmp -s - "$dir/from.out" || fail "--from $from: other bytes"

# lag: two refreshes into a file, one after the other.
"$SHIPCTL" lag -n 2 -i 100 -c "$dir/n1.ini" >"$dir/lag.out"
[ "$(grep -c 'node 1 (leader), epoch 1: commit lsn' "$dir/lag.out")" = 2 ] ||
	fail "lag: not two refreshes: $(cat "$dir/lag.out")"
grep -Eq '^ +2 +[0-9]+ +[0-9]+ .* (live|catching up)$' "$dir/lag.out" ||
	fail "lag: no row for follower 2: $(cat "$dir/lag.out")"
"$SHIPCTL" lag -n 1 -c "$dir/n2.ini" | grep -q 'node 2 (follower of 1)' ||
	fail "lag on the follower does not say whose follower it is"
if "$SHIPCTL" tail -s "$dir/no.sock" 2>"$dir/nosock.log"; then
	fail "tail with a missing socket succeeded"
fi
grep -q 'is shipd running' "$dir/nosock.log" || fail "missing socket: $(cat "$dir/nosock.log")"
say "live tail, --from, lag and a missing socket as expected"

it_stop 2 1
for n in 1 2; do
	"$SHIPCTL" verify "$dir/n$n" >"$dir/verify$n.out" || fail "verify n$n: $(cat "$dir/verify$n.out")"
	"$SHIPCTL" tail -n "$RECORDS" "$dir/n$n" | cmp -s - "$dir/live1.out" ||
		fail "tail of the stopped node $n's directory differs from the live tail"
done
say "verify ok on both logs; their directories tail as the live nodes did"
say "PASS"
