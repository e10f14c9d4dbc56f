#!/usr/bin/env bash
# integration_verify_cluster: `shipctl verify --cluster` against stand-ins
# for three running shipd (Python, on Unix sockets, answering `status json`
# and the `tree` requests as shipd does), whose Merkle trees agree except,
# on node 3, at one batch J: shipctl must compare over the fewest sealed
# batches any node holds, name node 3, batch J and its position range and
# segment on both sides, exit 1, and leave node 2 equal; with no difference
# it prints "replicas agree" and exits 0. The walk itself is checked too:
# it asks for no more subtree hashes than two per level. No shipd runs here;
# integration_entropy runs the real one.
#
#   verify_cluster.sh SHIPD SHIPCTL LOGCMP
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3
. "$(dirname "$0")/lib.sh"

it_init verify_cluster

# fake.py SOCKET ID ROLE SEALED DIFF: a node whose leaf DIFF differs (-1: none).
cat >"$dir/fake.py" <<'PY'
import json, os, socket, sys
path, nid, role, sealed, diff = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def h(k, i):
    v = k * 1000003 + i
    if diff >= 0 and (i << k) <= diff < ((i + 1) << k):
        v += 1 << 40
    return v
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
while True:
    c, _ = s.accept()
    req = c.makefile().readline().strip()
    w = req.split()
    if req == "status json":
        out = json.dumps({"node": {"node_id": nid, "role": role}, "entropy": {"tree_sealed": sealed}}) + "\n"
    elif w[:2] == ["tree", "root"]:
        out = "root %016x leaves %d sealed %d base 0\n" % (h(40, 0) + int(w[2]), sealed, sealed)
    elif w[:2] == ["tree", "node"]:
        out = "hash %016x\n" % h(int(w[2]), int(w[3]))
        with open(path + ".asked", "a") as f:
            f.write(req + "\n")
    elif w[:2] == ["tree", "leaf"]:
        out = "pos %d len 1000 segment %020d.seg\n" % (int(w[2]) * 1000, nid)
    else:
        out = "error: unknown\n"
    c.sendall(out.encode())
    c.close()
PY
fake() { # fake N ROLE SEALED DIFF
	python3 "$dir/fake.py" "$dir/s$1" "$1" "$2" "$3" "$4" &
	it_helper $!
}
up() { [ -S "$dir/s1" ] && [ -S "$dir/s2" ] && [ -S "$dir/s3" ]; }

fake 1 leader 1000 -1
fake 2 follower 777 -1
fake 3 follower 900 613
it_wait 20 "the stand-ins' sockets" up
rc=0
"$SHIPCTL" verify --cluster -s "$dir/s2" -s "$dir/s1" -s "$dir/s3" >"$dir/out" 2>&1 || rc=$?
cat "$dir/out"
[ "$rc" = 1 ] || fail "exit status $rc, not 1"
grep -q "over the 777 batches .* against node 1 (the leader)" "$dir/out" || fail "prefix or reference"
grep -q "^node 2: equal" "$dir/out" || fail "node 2 not equal"
grep -q "^node 3: differs from node 1 from batch 613: positions \[613000, 614000) in its segment 00000000000000000003.seg, \[613000, 614000) in node 1's segment 00000000000000000001.seg" "$dir/out" ||
	fail "node 3's difference not reported as expected"
grep -q "^replicas differ" "$dir/out" || fail "no verdict"
asked=$(wc -l <"$dir/s3.asked")
# 777 = 512 + 256 + 8 + 1: the peaks of 512 and 256 (612 < 768: the second
# differs), then 8 levels down, one question each.
[ "$asked" -le $((2 * 10)) ] || fail "node 3 was asked $asked subtree hashes"
say "node 3 asked $asked subtree hashes"

"$SHIPCTL" verify --cluster -s "$dir/s1" -s "$dir/s2" >"$dir/out2" 2>&1 || fail "agreeing nodes: $(cat "$dir/out2")"
grep -q "^replicas agree" "$dir/out2" || fail "agreeing nodes: $(cat "$dir/out2")"
rc=0
"$SHIPCTL" verify --cluster -s "$dir/s1" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "one node: exit status $rc, not 2"
say PASS
