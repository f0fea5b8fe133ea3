#!/usr/bin/env bash
# Runs the standard benchmark matrix against target/release/rump_server (and, when
# RUMP_REFERENCE=/path/to/NetBSD/rump_server is set, against it too) and writes
# docs/benchmarks.md with the commands, the machine and ratios to the in-tool baseline.
#
#   benches/run-matrix.sh                 # full matrix, ~2 s per point
#   DURATION=1s WORKLOADS="getpid read4k" benches/run-matrix.sh
#   NO_BUILD=1 SERVER=path/rump_server LT=path/loadtest benches/run-matrix.sh
#   RESULTS_COPY=r.jsonl ...; IMPLS=netbsd PRIOR_RESULTS=r.jsonl RUMP_REFERENCE=... (re-run one)
#
# Shapes: unix/tcp x conns {1, 16, 64, 256} (in flight 1 for one connection, else 4) x
# server -c {1, 2}, unpinned; plus "pinned": client and server on core 0 with -c 1 (taskset).
# Every shape also runs `loadtest --baseline` (same socket type, connections, depth and
# pinning; the echo peer gets as many threads as the server gets loops), and for read4k and
# write4k `--baseline --baseline-shape W`: the same frames as W (COPYOUT of 4 KiB, or a
# COPYIN round trip with 4 KiB) from a peer that does no kernel work.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-2s}
WARMUP=${WARMUP:-300ms}
WORKLOADS=${WORKLOADS:-"getpid stat open-close read4k write4k create-write-unlink readdir"}
CONNS=${CONNS:-"1 16 64 256"}
OUT=${OUT:-docs/benchmarks.md}
SERVER=${SERVER:-target/release/rump_server}
LT=${LT:-target/release/loadtest}
WORK=$(mktemp -d /tmp/rump-matrix.XXXXXX)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

[[ -n "${NO_BUILD:-}" ]] || cargo build --release -q -p rump_server -p loadtest

SERVER_PID=
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        # A hung server (NetBSD's can deadlock, docs/benchmarks.md) ignores SIGTERM.
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# start_server IMPL BIN SCHEME NCPU PIN → sets URL and SERVER_PID (3 tries: a random TCP
# port may be taken; ports stay below the ephemeral range the clients use)
start_server() {
    local try
    for try in 1 2 3; do
        start_server_once "$@" && return 0
        stop_server
    done
    return 1
}

start_server_once() {
    local impl=$1 bin=$2 scheme=$3 ncpu=$4 pin=$5 pre=()
    [[ $pin == pinned ]] && pre=(taskset -c 0)
    if [[ $scheme == unix ]]; then
        URL=unix://$WORK/$impl.sock
        rm -f "$WORK/$impl.sock"
    else
        PORT=$((20000 + RANDOM % 12000))
        URL=tcp://127.0.0.1:$PORT/
    fi
    "${pre[@]}" "$bin" -s -lrumpvfs -c "$ncpu" "$URL" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        if [[ $scheme == unix ]]; then [[ -S $WORK/$impl.sock ]] && return 0
        else (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && sleep 0.05 && return 0
        fi
        sleep 0.05
    done
    echo "server $bin did not come up on $URL:" >&2
    cat "$WORK/server.log" >&2
    return 1
}

# run_lt TAG PIN ARGS... → appends one JSON line {"tag":..., ...} (or an error record)
run_lt() {
    local tag=$1 pin=$2; shift 2
    local pre=() out
    [[ $pin == pinned ]] && pre=(taskset -c 0)
    echo "  $tag: loadtest $*" >&2
    # Bounded: a server that stops answering costs one point, not the run.
    if out=$(timeout "${POINT_TIMEOUT:-60}" "${pre[@]}" "$LT" --duration "$DURATION" \
        --warmup "$WARMUP" --json "$@" 2>"$WORK/lt.err"); then
        echo "{\"tag\":\"$tag\",\"pin\":\"$pin\",\"args\":\"$*\",\"r\":$out}" >>"$RESULTS"
    else
        local msg
        msg=$(tr '"\\' "''" <"$WORK/lt.err" | tr '\n' ' ' | cut -c1-300)
        [[ -n $msg ]] || msg="no result within ${POINT_TIMEOUT:-60} s (server hung?)"
        echo "{\"tag\":\"$tag\",\"pin\":\"$pin\",\"args\":\"$*\",\"error\":\"$msg\"}" >>"$RESULTS"
    fi
}

shape_args() { # conns → loadtest shape args
    local c=$1 inflight=4
    [[ $c == 1 ]] && inflight=1
    echo "--conns $c --inflight $inflight"
}

run_impl() { # IMPL BIN
    local impl=$1 bin=$2
    for scheme in unix tcp; do
        for mode in pinned unpinned-c1 unpinned-c2; do
            local ncpu=1 pin=unpinned threads=()
            [[ $mode == unpinned-c2 ]] && ncpu=2
            [[ $mode == pinned ]] && pin=pinned && threads=(--threads 1)
            start_server "$impl" "$bin" "$scheme" "$ncpu" "$pin"
            for c in $CONNS; do
                [[ $mode == pinned && $c -gt 16 ]] && continue
                # shellcheck disable=SC2046
                set -- $(shape_args "$c")
                if [[ $impl == ours ]]; then
                    run_lt "baseline/$scheme/$mode/$c" "$pin" --url "$URL" "$@" \
                        --baseline --peer-threads "$ncpu" "${threads[@]}"
                    # The framing limit of the data workloads (same frames, no kernel).
                    for w in read4k write4k; do
                        [[ " $WORKLOADS " == *" $w "* ]] || continue
                        run_lt "baseline-$w/$scheme/$mode/$c" "$pin" --url "$URL" "$@" \
                            --baseline --baseline-shape "$w" --peer-threads "$ncpu" "${threads[@]}"
                    done
                fi
                for w in $WORKLOADS; do
                    run_lt "$impl/$w/$scheme/$mode/$c" "$pin" --url "$URL" "$@" \
                        --workload "$w" "${threads[@]}"
                done
            done
            if [[ $impl == ours && $scheme == unix && $mode == unpinned-c2 ]]; then
                measure_idle
            fi
            stop_server
        done
    done
}

IDLE_LINE="not measured"
measure_idle() {
    local n=1000 before after
    before=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    "$LT" --url "$URL" --conns $n --idle-hold 2s 2>/dev/null &
    local lt=$!
    sleep 1.5
    after=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    wait $lt || true
    IDLE_LINE="$(( (after - before) / n )) KiB per idle connection (server RSS $before KiB \
→ $after KiB with $n idle unix connections, -c 2)"
}

# IMPLS=netbsd PRIOR_RESULTS=earlier.jsonl re-runs only the reference and reports both.
[[ -z "${PRIOR_RESULTS:-}" ]] || cat "$PRIOR_RESULTS" >>"$RESULTS"
if [[ " ${IMPLS:-ours netbsd} " == *" ours "* ]]; then
    echo "ours: $SERVER" >&2
    run_impl ours "$SERVER"
fi
if [[ -n "${RUMP_REFERENCE:-}" && " ${IMPLS:-ours netbsd} " == *" netbsd "* ]]; then
    echo "reference: $RUMP_REFERENCE" >&2
    run_impl netbsd "$RUMP_REFERENCE"
fi

MACHINE=$WORK/machine.txt
{
    echo "kernel: $(uname -srm)"
    lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\)|Hypervisor)' || true
    echo "rustc: $(rustc --version)"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
} >"$MACHINE"

python3 benches/matrix_report.py "$RESULTS" "$MACHINE" "$IDLE_LINE" \
    "DURATION=$DURATION WARMUP=$WARMUP CONNS='$CONNS' WORKLOADS='$WORKLOADS'" >"$OUT.matrix"
python3 benches/splice.py "$OUT" "$OUT.matrix"
rm -f "$OUT.matrix"
cp "$RESULTS" "${RESULTS_COPY:-/dev/null}" 2>/dev/null || true
echo "wrote $OUT" >&2
