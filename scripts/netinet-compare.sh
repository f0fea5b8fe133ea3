#!/usr/bin/env bash
# netinet-compare.sh — NetBSD's network tools (rumpctrl's ifconfig, ping, arp, route) against
# two NetBSD rump_servers on one shmif bus and against two of ours, the same commands on both
# sides; diffs the normalised transcripts (docs/netinet.md). Not in CI (needs rumpctrl and
# NetBSD's rump_server, built out of tree: docs/rumpctrl.md).
#
# Usage: RUMP_REFERENCE=/path/to/netbsd/rump_server scripts/netinet-compare.sh RUMPCTRL_BIN_DIR
#   RUMP_OURS  our server (default target/debug/rump_server; `cargo build` first)
#   RUMP_HALT  default target/debug/rump_halt
# Normalised: the random part of shmif MAC addresses (b2:a0:…), ping's times and round-trip
# line. Exit status 0 when the transcripts are the same, 1 when they differ.
set -u
BIN=${1:?usage: RUMP_REFERENCE=... $0 RUMPCTRL_BIN_DIR}
REF=${RUMP_REFERENCE:?set RUMP_REFERENCE to the NetBSD rump_server}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OURS=${RUMP_OURS:-$ROOT/target/debug/rump_server}
HALT=${RUMP_HALT:-$ROOT/target/debug/rump_halt}
OUT=$(mktemp -d /tmp/netinet-compare.XXXXXX)
LIBS="-lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_shmif"

side() { # side NAME SERVER
    local d=$OUT/$1
    mkdir -p "$d"
    (cd "$d" && "$2" $LIBS "unix://$d/a.sock" && "$2" $LIBS "unix://$d/b.sock") 2>/dev/null
    run() { # run SOCK CMD...
        local s=$1; shift
        echo "\$ $*"
        RUMP_SERVER=unix://$d/$s.sock timeout 20 "$BIN/$@" 2>&1
        echo "[exit $?]"
    }
    {
        run b ifconfig shmif0 create
        run b ifconfig shmif0 linkstr bus1
        run b ifconfig shmif0 inet 10.0.1.2
        run a ifconfig shmif0 create
        run a ifconfig shmif0 linkstr bus1
        run a ifconfig shmif0 inet 10.0.1.1
        run a ifconfig -a
        run a ifconfig shmif0
        run a ping -c 3 10.0.1.2
        run a ping -c 1 -w 1 10.0.1.9
        run a arp -an
        run a route -n show
        run a route add default 10.0.1.2
        run a route add -host 10.3.3.3 10.0.1.2 -reject
        run a route -n show -inet
        run a route -n get 10.0.2.3
        run a route delete default
        run a route delete 10.3.3.3
        run a route add -net 10.5.0.0/16 10.9.9.9
        run a ifconfig shmif0 delete
        run a ifconfig shmif0
        run a ifconfig shmif0 destroy
        run a ifconfig -a
    } > "$d/raw.txt"
    for s in a b; do RUMP_SERVER=unix://$d/$s.sock "$HALT" 2>/dev/null; done
    sed -E 's/b2:a0(:[0-9a-f]{2}){4}/b2:a0:MAC/g; s/time=[0-9.]+ ms/time=T ms/;
            s/^round-trip .*/round-trip …/; s/^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +-?[0-9]+ *$/ (metrics)/' \
        "$d/raw.txt" > "$OUT/$1.txt"
}
side netbsd "$REF"
side ours "$OURS"
if diff -u "$OUT/netbsd.txt" "$OUT/ours.txt" > "$OUT/diff.txt"; then
    echo "same ($OUT)"
    exit 0
fi
cat "$OUT/diff.txt"
echo "differs ($OUT)"
exit 1
