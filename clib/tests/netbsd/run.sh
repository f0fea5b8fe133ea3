#!/usr/bin/env bash
# NetBSD's own sysproxy client programs, compiled unchanged against this project's headers
# and library and run against our server as NetBSD's tests/rump/rumpkern/t_sp.sh runs them
# (docs/librumpclient.md, "Proof of the ABI").
#
#   clib/tests/netbsd/run.sh SRCDIR [SERVER [INCDIR LIBDIR]]
#
# SRCDIR holds NetBSD's sources, not part of this repository (NetBSD/src):
#   usr.bin/rump_halt/rump.halt.c and tests/rump/rumpkern/h_client/{h_simplecli,h_reboot,
#   h_sigcli,h_forkcli,h_reconcli,h_stresscli}.c, all in SRCDIR itself.
# SERVER: an sp server binary taking `-s -lrumpvfs URL` (default target/release/rump_server);
# INCDIR/LIBDIR: the headers and librumpclient.so (default clib/include, target/release).
# The environment's quirks the programs assume of NetBSD come from shim/ (our files):
# __arraycount, __dead, __RCSID, setprogname, NetBSD's CTL_KERN/KERN_HOSTNAME numbers,
# atomic_inc_uint/membar_consumer, an empty rump/rumpuser_port.h.
# Prints one line per case; exits 1 if any failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
src=${1:?usage: run.sh SRCDIR [SERVER [INCDIR LIBDIR]]}
server=${2:-$root/target/release/rump_server}
inc=${3:-$root/clib/include}
lib=${4:-$root/target/release}
work=$(mktemp -d /tmp/nbclients.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$lib/librumpclient.so" "$work/" && ln -s librumpclient.so "$work/librumpclient.so.0"
fail=0
for p in h_simplecli h_reboot h_sigcli h_forkcli h_reconcli h_stresscli rump.halt; do
    if ! cc -w -include "$here/shim/nbcompat.h" -I"$here/shim" -I"$inc" "$src/$p.c" -o "$work/$p" \
        -L"$work" -lrumpclient -Wl,-rpath,"$work" -lpthread; then
        echo "$p: does not compile"; fail=1
    fi
done
# One case: a fresh server, the program with its arguments; the expected exit status.
run() {
    local want=$1; shift
    local sock=$work/s.sock
    rm -f "$sock"
    "$server" -s -lrumpvfs "unix://$sock" >"$work/server.out" 2>&1 &
    local spid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    local t0=$(date +%s.%N)
    RUMP_SERVER=unix://$sock timeout 120 "$work/$@" >"$work/out" 2>&1
    local rc=$?
    local secs=$(echo "$(date +%s.%N) - $t0" | bc)
    local note=""
    if [ "$1" = rump.halt ] && [ "$want" = 0 ]; then
        # The server halts: it exits by itself and its socket is gone.
        for _ in $(seq 100); do kill -0 $spid 2>/dev/null || break; sleep 0.05; done
        if kill -0 $spid 2>/dev/null || [ -e "$sock" ]; then note=" (server still up)"; rc=99; fi
    fi
    kill $spid 2>/dev/null; wait $spid 2>/dev/null
    if [ $rc = "$want" ]; then
        printf 'ok    %-22s exit %s, %.1f s\n' "$*" $rc $secs
    else
        printf 'FAIL  %-22s exit %s (want %s)%s: %s\n' "$*" $rc "$want" "$note" "$(head -c 300 "$work/out")"
        fail=1
    fi
}
run 0 h_simplecli
run 0 h_forkcli simple
run 0 h_forkcli pipecomm
run 0 h_forkcli fakeauth
run 0 h_forkcli cancel
run 0 h_sigcli
run 0 h_stresscli 1
run 0 h_stresscli 1 kill
run 0 h_reconcli 2
run 0 rump.halt
run 1 rump.halt -x
exit $fail
