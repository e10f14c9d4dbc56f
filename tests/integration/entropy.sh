#!/usr/bin/env bash
# integration_entropy: anti-entropy with real processes. Three shipd over
# kernel UDP on 127.0.0.1 with 1 MiB segments write RECORDS records;
# `shipctl verify --cluster` finds their Merkle trees equal. Then a bit is
# flipped, while the nodes run, in a batch of a sealed segment of follower 2
# (its second segment file, inside the first batch's payload). The
# follower's scrub must find it (scrub_bad), fetch the batch from the leader
# and rewrite it in place (entropy.repairs); shipctl status shows the
# comparisons. Then a valid batch is copied over another in follower 3's
# sealed segment: its scrub finds the batch is not the one appended there and
# replaces it with the leader's copy. Then follower 2 stops, a bit of a
# sealed batch flips, and it starts again: recovery keeps the batch as a hole,
# and it is repaired from the leader. Every node then stops (SIGTERM, drain, exit 0) and logcmp
# finds each follower's log equal to the leader's, byte for byte.
#
#   entropy.sh SHIPD SHIPCTL LOGCMP      (meson passes the built programs)
#   env: ENTROPY_RECORDS (20000), BYTES (1024), WAIT (360), KEEP=1 keeps the dir
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3
RECORDS=${ENTROPY_RECORDS:-20000}
. "$(dirname "$0")/lib.sh"

it_init entropy
it_free_ports 3
for n in 1 2 3; do IT_ADDR[$n]=127.0.0.1:${ports[$((n - 1))]}; done
IT_STREAM_EXTRA="entropy_interval = 300ms
max_record_bytes = 16K"
IT_NODE_EXTRA="
[store]
segment_bytes = 1M
group_bytes = 256K
scrub_rate = 64M"
for n in 1 2 3; do it_config "$n"; done
it_start_all
it_wait_all "$RECORDS"

compared() { # every follower compared with the leader at least once, equal
	local n out= ok=0 r
	for n in $(it_followers); do
		r=$(it_field "$n" entropy.comparisons entropy.last_result | tr '\n' ' ')
		out="$out node $n: $r;"
		case "$r" in "0 "* | "" | *" none "*) ok=1 ;; esac
		[[ "$r" == *equal* ]] || ok=1
	done
	echo "$out"
	return $ok
}
it_wait 30 "tree comparisons" compared
say "comparisons: $it_last"
"$SHIPCTL" verify --cluster -c "$dir/n1.ini" -c "$dir/n2.ini" -c "$dir/n3.ini" >"$dir/verify1.out" ||
	fail "verify --cluster: $(cat "$dir/verify1.out")"
grep -q "replicas agree" "$dir/verify1.out" || fail "verify --cluster: $(cat "$dir/verify1.out")"
say "$(head -1 "$dir/verify1.out")"

# flip_bit FILE OFFSET BIT: invert one bit of one byte in place.
flip_bit() {
	python3 - "$1" "$2" "$3" <<'PY'
import sys
off, bit = int(sys.argv[2]), int(sys.argv[3])
with open(sys.argv[1], "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ (1 << bit)]))
PY
}

# The flip: follower 2's second segment (sealed: later ones exist), in the
# payload of the first batch of its first group (segment header block 4096,
# group header 32 bytes, batch header 96).
seg=$(ls "$dir/n2"/*.seg | sort | sed -n 2p)
[ -n "$seg" ] && [ "$(ls "$dir/n2"/*.seg | wc -l)" -ge 3 ] || fail "node 2 has too few segments"
before=$(it_field 2 entropy.repairs entropy.scrub_bad | tr '\n' ' ')
flip_bit "$seg" $((4096 + 32 + 96 + 1000)) 3
say "flipped bit 3 of byte $((4096 + 32 + 96 + 1000)) of $(basename "$seg") on node 2 (repairs, scrub_bad before: $before)"

repaired() {
	local r
	r=$(it_field 2 entropy.repairs entropy.scrub_bad | tr '\n' ' ')
	echo "node 2 repairs, scrub_bad: $r"
	[[ "$r" =~ ^([0-9]+)\ ([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[2]}" -ge 1 ]
}
it_wait 60 "the repair of node 2's batch" repaired
say "$it_last"
grep -q "bad batch at position" "$dir/n2.log" || fail "node 2 logged no bad batch"
grep -q "repaired the batch at position" "$dir/n2.log" || fail "node 2 logged no repair"
served=$(it_field 1 entropy.repairs_served)
[ "${served:-0}" -ge 1 ] || fail "the leader served no repair ($served)"
"$SHIPCTL" status -c "$dir/n2.ini" | sed -n '/^entropy:/,$p' >"$dir/status2.out"
grep -q "last_result: equal" "$dir/status2.out" || fail "status: $(cat "$dir/status2.out")"

# A valid batch at the wrong offset: in follower 3's second segment, a batch
# of the first groups copied over an earlier one of the same length (or, with
# none of the same length, the second over the first). Its scrub must find
# it (not the batch appended there) and replace it with the leader's copy.
seg=$(ls "$dir/n3"/*.seg | sort | sed -n 2p)
before=$(it_field 3 entropy.repairs)
python3 - "$seg" <<'PY' || fail "no two batches in the first groups of node 3's $(basename "$seg")"
import struct, sys
with open(sys.argv[1], "r+b") as f:
    offs, off = [], 4096
    while len(offs) < 16: # the batches of the first groups
        f.seek(off)
        g = f.read(32)
        if len(g) < 32 or struct.unpack_from("<I", g, 0)[0] != 0x52474C53:
            break
        q, end = off + 32, off + 32 + struct.unpack_from("<I", g, 4)[0]
        while q < end:
            f.seek(q)
            h = f.read(96)
            n = 96 + struct.unpack_from("<I", h, 64)[0]
            offs.append((q, n))
            q += n
        off = (end + 4095) // 4096 * 4096
    pair = next(((a, b) for i, a in enumerate(offs) for b in offs[i + 1:] if a[1] == b[1]), None)
    if pair is None and len(offs) >= 2:
        pair = (offs[0], offs[1])
    if pair is None:
        sys.exit(1)
    (dst, dn), (src, sn) = pair
    f.seek(src)
    b = f.read(sn)
    f.seek(dst)
    f.write(b)
    print(f"copied the batch at offset {src} ({sn} bytes) over the one at {dst} ({dn} bytes)")
PY
say "node 3: $(basename "$seg"): a valid batch copied over another (repairs before: $before)"
replaced() {
	local r
	r=$(it_field 3 entropy.repairs)
	echo "node 3 repairs: $r"
	[ "${r:-0}" -gt "$before" ]
}
it_wait 60 "the repair of node 3's misplaced batch" replaced
say "$it_last"
grep -q "that is not the one appended here" "$dir/n3.log" || fail "node 3 logged no misplaced batch"

# A stopped follower with a flipped bit in a sealed segment: node 2 stops,
# a bit of a batch's payload in its second segment flips, and it starts
# again. Recovery keeps the batch as a hole (valid batches follow it: not a
# torn tail), the node follows without standing for election, and the batch
# is fetched from the leader and rewritten.
it_stop 2
seg=$(ls "$dir/n2"/*.seg | sort | sed -n 2p)
before=$(it_field 1 entropy.repairs_served)
flip_bit "$seg" $((4096 + 32 + 96 + 500)) 6
say "node 2 stopped; flipped bit 6 of byte $((4096 + 32 + 96 + 500)) of $(basename "$seg"); restarting it"
it_start 2
healed() {
	local r
	r=$(it_field 2 entropy.holes entropy.repairs node.role | tr '\n' ' ')
	echo "node 2 holes, repairs, role: $r"
	[[ "$r" =~ ^0\ ([0-9]+)\ follower ]] && [ "${BASH_REMATCH[1]}" -ge 1 ]
}
it_wait 60 "the repair of node 2's hole" healed
say "$it_last"
grep -q "valid batches follow, so it is kept" "$dir/n2.log" || fail "node 2 kept no hole"
grep -q "repaired the batch at position" "$dir/n2.log" || fail "node 2 logged no repair"

it_stop 2 3 1
it_compare "$RECORDS"
say PASS
