#!/usr/bin/env bash
# integration_tcp: three_udp.sh's run over the kernel TCP baseline transport
# ([transport] kind = tcp, net/tcp.c): three shipd, acks=1 durable, the logs
# compared byte for byte. 200,000 records unless RECORDS says otherwise.
export KIND=tcp RECORDS=${RECORDS:-200000}
exec "$(dirname "$0")/three_udp.sh" "$@"
