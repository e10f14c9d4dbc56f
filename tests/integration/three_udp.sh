#!/usr/bin/env bash
# integration_udp: three shipd processes on 127.0.0.1 over kernel UDP. The
# leader generates RECORDS records of BYTES bytes (acks=1, ack_level=durable);
# the test waits (at most WAIT seconds) until shipctl shows the leader's
# commit LSN at RECORDS and both followers' delivered LSN there too, stops
# every node with SIGTERM (each must drain and exit 0), and checks with
# logcmp that both followers' logs hold the leader's committed prefix byte
# for byte (the leader and node 2 with inline_write_max = 64K, node 3 without;
# the leader compresses full batches in its compressor stage, compress_thread).
# lib.sh has the shared parts (trap, configs, waits).
#
#   three_udp.sh SHIPD SHIPCTL LOGCMP      (meson passes the built programs)
#   env: RECORDS (1000000), BYTES (1024), WAIT (360), KEEP=1 keeps the dir,
#        KIND=tcp for the kernel TCP baseline transport (three_tcp.sh)
SHIPD=$1 SHIPCTL=$2 LOGCMP=$3
KIND=${KIND:-udp}
. "$(dirname "$0")/lib.sh"

it_init "three_$KIND"
it_free_ports 3 "$KIND"
for n in 1 2 3; do
	IT_ADDR[$n]=127.0.0.1:${ports[$((n - 1))]}
	IT_TRANSPORT[$n]="kind = $KIND"
done
# The leader's generated records fill batches: its compressor stage encodes
# them, and the drain waits for what the stage holds.
IT_STREAM_EXTRA="compress_thread = on"
for n in 1 2 3; do it_config "$n"; done
# The leader and one follower write lone small groups from their store's
# writer thread ([store] inline_write_max), the other follower through io_uring: every log
# must still hold the leader's committed prefix byte for byte.
for n in 1 2; do printf '\n[store]\ninline_write_max = 64K\n' >>"$dir/n$n.ini"; done
it_start_all
it_wait_all "$RECORDS"
it_stop 2 3 1
it_compare "$RECORDS"
say PASS
