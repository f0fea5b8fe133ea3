#!/usr/bin/env bash
# A chain of N of our servers (default 64) joined by N-1 shmif buses: server i is on bus
# i-1 (shmif0, 10.(i-1).0.2/24) and bus i (shmif1, 10.i.0.1/24), IPv4 forwarding on (the
# default), a default route toward the far end and a route back to 10.0.0.0/24; then ping
# from server 0 to server N-1 end to end (N-2 forwarding hops) and the memory of every idle
# server (RSS and PSS from /proc/PID/smaps_rollup). Not in CI (too heavy); tests/netinet.rs
# has the three-server case.
#
#   benches/netinet-chain.sh            # 64 servers
#   N=8 NO_BUILD=1 benches/netinet-chain.sh
#   SERVER=/path/to/netbsd/rump_server NO_BUILD=1 benches/netinet-chain.sh   # NetBSD's
# NetBSD's server keeps one inotify instance per shmif interface: a chain of 64 needs
# `sysctl -w fs.inotify.max_user_instances=512` or so (the default 128 runs out).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-64}
BIN=${BIN:-$PWD/target/release}
LIBS=(-lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_shmif)
WORK=$(mktemp -d /tmp/rump-chain.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
((N >= 2 && N <= 250)) || { echo "N must be 2..250" >&2; exit 2; }

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -q --bin rump_server --example inet_peer
fi
PEER=${PEER:-$BIN/examples/inet_peer}
SERVER=${SERVER:-$BIN/rump_server}
url() { echo "unix://$WORK/s$1.sock"; }

t0=$(date +%s.%N)
for i in $(seq 0 $((N - 1))); do
    (cd "$WORK" && exec "$SERVER" -s "${LIBS[@]}" "$(url "$i")") >"$WORK/s$i.out" 2>&1 &
    PIDS+=($!)
done
for i in $(seq 0 $((N - 1))); do
    for _ in $(seq 400); do [[ -S $WORK/s$i.sock ]] && break; sleep 0.05; done
done
for i in $(seq 0 $((N - 1))); do
    u=$(url "$i")
    if ((i > 0)); then
        "$PEER" "$u" ifconfig shmif0 "bus$((i - 1))" "10.$((i - 1)).0.2" >/dev/null
    fi
    if ((i < N - 1)); then
        "$PEER" "$u" ifconfig shmif1 "bus$i" "10.$i.0.1" >/dev/null
        "$PEER" "$u" route 0.0.0.0/0 "10.$i.0.2" >/dev/null
    else
        "$PEER" "$u" route 0.0.0.0/0 "10.$((i - 1)).0.1" >/dev/null
    fi
    if ((i > 1 && i < N - 1)); then
        "$PEER" "$u" route 10.0.0.0/24 "10.$((i - 1)).0.1" >/dev/null
    fi
done
t1=$(date +%s.%N)
far=10.$((N - 2)).0.2
# The first echoes resolve ARP hop by hop (each hop holds one packet meanwhile).
first=$("$PEER" "$(url 0)" ping "$far" 5)
sleep 1
steady=$("$PEER" "$(url 0)" ping "$far" 20)
sleep 2 # idle
rss=0 pss=0
for p in "${PIDS[@]}"; do
    read -r r s < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { s = $2 } END { print r, s }' "/proc/$p/smaps_rollup")
    rss=$((rss + r)) pss=$((pss + s))
done
echo "$SERVER"
echo "chain of $N servers, $((N - 1)) buses, $((N - 2)) forwarding hops ($(date -u +%F), loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
printf 'set up (start, ifconfig, routes): %.1f s\n' "$(echo "$t1 - $t0" | bc)"
echo "ping 10.0.0.1 -> $far, first 5: $first"
echo "ping 10.0.0.1 -> $far, next 20: $steady"
echo "idle memory per server: RSS $((rss / N)) KiB, PSS $((pss / N)) KiB (total RSS $((rss / 1024)) MiB, PSS $((pss / 1024)) MiB)"
echo "threads per server: $(ls "/proc/${PIDS[0]}/task" | wc -l)"
