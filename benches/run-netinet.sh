#!/usr/bin/env bash
# netinet benchmark (issue 16 §7): TCP bulk throughput between two rump processes (two
# client connections) over lo0 in one server and between two servers on one shmif bus,
# and ping RTT over shmif; our rump_server next to NetBSD's doing the same, driven by the
# same client (examples/inet_peer over the Rust client; NetBSD's rumpctrl ping for its
# own RTT report). Prints a markdown table; docs/benchmarks.md has the figures.
#
#   RUMP_REFERENCE=/work/ref/rump_server benches/run-netinet.sh
#   NO_BUILD=1 BYTES=$((64<<20)) RUNS=3 benches/run-netinet.sh
#   RUMPCTRL=/work/ref/rumpctrl/bin  (optional: adds rumpctrl ping's own average)
#
# Each TCP figure is the best of RUNS: BYTES written 64 KiB per write(2) by one process,
# read 64 KiB per read(2) by the other, timed from connect(2) to the reader's close.
# Ping: 200 echoes, one at a time, timed on the host (sendto + recvfrom per echo).
set -euo pipefail
cd "$(dirname "$0")/.."

BYTES=${BYTES:-$((32 << 20))}
RUNS=${RUNS:-3}
PINGS=${PINGS:-200}
BIN=${BIN:-$PWD/target/release}
REF=${RUMP_REFERENCE:-/work/ref/rump_server}
RUMPCTRL=${RUMPCTRL:-}
LIBS=(-lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_shmif)
WORK=$(mktemp -d /tmp/rump-netinet.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -q --bin rump_server --example inet_peer
fi
PEER=$BIN/examples/inet_peer

start() { # start KIND DIR NAME: a server in DIR (the buses' directory), socket DIR/NAME.sock
    local kind=$1 dir=$2 name=$3 srv
    [[ $kind == ours ]] && srv=$BIN/rump_server || srv=$REF
    mkdir -p "$dir"
    (cd "$dir" && exec "$srv" -s "${LIBS[@]}" "unix://$dir/$name.sock") >"$dir/$name.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 200); do [[ -S $dir/$name.sock ]] && return; sleep 0.05; done
    echo "server $kind $name did not start" >&2
    exit 1
}

halt_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

bulk() { # bulk SINK_URL SEND_URL DST PORT -> MB/s
    "$PEER" "$1" sink "$4" >/dev/null &
    local sink=$! out
    for _ in $(seq 50); do
        if out=$("$PEER" "$2" send "$3" "$4" "$BYTES" 2>/dev/null); then
            wait "$sink"
            sed -E 's/.*: ([0-9.]+) MB\/s/\1/' <<<"$out"
            return
        fi
        sleep 0.1
    done
    kill "$sink" 2>/dev/null
    echo "send to $3:$4 failed" >&2
    exit 1
}

best() { # best CMD... : the best of RUNS figures (highest)
    local b=0 v port
    for i in $(seq "$RUNS"); do
        v=$("$@" $((5000 + RANDOM % 1000)))
        b=$(awk -v a="$b" -v c="$v" 'BEGIN { print (c > a) ? c : a }')
    done
    echo "$b"
}

declare -A R
for kind in netbsd ours; do
    d=$WORK/$kind
    start "$kind" "$d" lo
    u=unix://$d/lo.sock
    R[$kind,lo]=$(best bulk "$u" "$u" 127.0.0.1)
    start "$kind" "$d" a
    start "$kind" "$d" b
    "$PEER" "unix://$d/a.sock" ifconfig shmif0 bus1 10.0.1.1 >/dev/null
    "$PEER" "unix://$d/b.sock" ifconfig shmif0 bus1 10.0.1.2 >/dev/null
    "$PEER" "unix://$d/a.sock" ping 10.0.1.2 3 >/dev/null # ARP
    R[$kind,shmif]=$(best bulk "unix://$d/b.sock" "unix://$d/a.sock" 10.0.1.2)
    R[$kind,ping]=$("$PEER" "unix://$d/a.sock" ping 10.0.1.2 "$PINGS" |
        sed -E 's/.* ([0-9.]+) ms per echo/\1/')
    if [[ -n $RUMPCTRL ]]; then
        R[$kind,rping]=$(RUMP_SERVER=unix://$d/a.sock "$RUMPCTRL/ping" -c 20 -i 0.05 10.0.1.2 |
            sed -nE 's|^round-trip min/avg/max/stddev = [0-9.]+/([0-9.]+)/.*|\1|p')
    fi
    halt_all
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
echo "| $(date -u +%F) · $((BYTES >> 20)) MiB, best of $RUNS · loadavg $(cut -d' ' -f1-3 /proc/loadavg) | NetBSD's rump_server | ours | ours/NetBSD |"
echo "|---|---|---|---|"
echo "| TCP over lo0, one server, two processes (MB/s) | ${R[netbsd,lo]} | ${R[ours,lo]} | $(ratio "${R[ours,lo]}" "${R[netbsd,lo]}") |"
echo "| TCP over one shmif bus, two servers (MB/s) | ${R[netbsd,shmif]} | ${R[ours,shmif]} | $(ratio "${R[ours,shmif]}" "${R[netbsd,shmif]}") |"
echo "| ping over shmif, ms per echo (host-timed, $PINGS) | ${R[netbsd,ping]} | ${R[ours,ping]} | $(ratio "${R[netbsd,ping]}" "${R[ours,ping]}") faster |"
if [[ -n $RUMPCTRL ]]; then
    echo "| rumpctrl ping -c 20 avg (ms, the server's clock) | ${R[netbsd,rping]} | ${R[ours,rping]} | |"
fi
