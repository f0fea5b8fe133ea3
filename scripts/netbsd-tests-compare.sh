#!/usr/bin/env bash
# netbsd-tests-compare.sh — the scenarios of NetBSD's tests/net (route/t_route.sh,
# route/t_flags.sh, net/t_forwarding.sh, arp/t_arp.sh, icmp/t_ping.sh) by hand with
# rumpctrl's tools, on three NetBSD rump_servers and on three of ours in the same layout
# (src 10.0.1.2 on bus1, a forwarder 10.0.1.1/10.0.2.1 on bus1 and bus2, dst 10.0.2.2 on
# bus2, as t_route's route_command_get), then diffs the normalised transcripts
# (docs/netinet.md, "NetBSD's tests/net by hand"). Not in CI (needs rumpctrl and NetBSD's
# rump_server, built out of tree: docs/rumpctrl.md); tests/netbsd_net_*.rs replay them.
#
# Usage: RUMP_REFERENCE=/path/to/netbsd/rump_server scripts/netbsd-tests-compare.sh RUMPCTRL_BIN_DIR
#   RUMP_OURS  our server (default target/debug/rump_server; `cargo build` first)
#   RUMP_HALT  default target/debug/rump_halt
#   INET_PEER  default target/debug/examples/inet_peer (the TCP echo)
set -u
BIN=${1:?usage: RUMP_REFERENCE=... $0 RUMPCTRL_BIN_DIR}
REF=${RUMP_REFERENCE:?set RUMP_REFERENCE to the NetBSD rump_server}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OURS=${RUMP_OURS:-$ROOT/target/debug/rump_server}
HALT=${RUMP_HALT:-$ROOT/target/debug/rump_halt}
PEER=${INET_PEER:-$ROOT/target/debug/examples/inet_peer}
OUT=$(mktemp -d /tmp/netbsd-tests-compare.XXXXXX)
LIBS="-lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_shmif"
LIBS6="$LIBS -lrumpnet_netinet6"

side() { # side NAME SERVER
    local d=$OUT/$1
    mkdir -p "$d"
    (cd "$d" && for s in src fwd dst host gw; do "$2" $LIBS "unix://$d/$s.sock" || exit 1; done
     for s in v6a v6b; do "$2" $LIBS6 "unix://$d/$s.sock" || exit 1; done) 2>/dev/null
    run() { # run SOCK CMD...
        local s=$1; shift
        echo "\$ [$s] $*"
        RUMP_SERVER=unix://$d/$s.sock timeout 20 "$BIN/$@" 2>&1
        echo "[exit $?]"
    }
    iface() { # iface SOCK IF BUS ADDR
        run "$1" ifconfig "$2" create
        run "$1" ifconfig "$2" linkstr "$3"
        run "$1" ifconfig "$2" inet "$4" netmask 0xffffff00
    }
    {
        echo "## t_route.sh route_command_get: setup"
        iface src shmif0 bus1 10.0.1.2
        run src route add default 10.0.1.1
        run src ifconfig shmif0 up
        run src ifconfig -w 10
        iface dst shmif0 bus2 10.0.2.2
        run dst route add default 10.0.2.1
        iface fwd shmif0 bus1 10.0.1.1
        iface fwd shmif1 bus2 10.0.2.1
        run fwd ifconfig -w 10
        run fwd sysctl net.inet.ip.forwarding
        run fwd sysctl -w net.inet.ip.forwarding=1
        echo "## route_command_get"
        run src arp -d 10.0.1.1
        run src route -n get 10.0.1.2
        run src route -n get 10.0.1.1
        run src route -n get 10.0.2.2
        run src ping -q -n -w 1 -c 1 10.0.1.1
        run src route -n get 10.0.1.1
        echo "## t_flags.sh route_flags_lo, route_flags_connected, route_flags_default_gateway"
        run src route -n show -inet
        echo "## t_arp.sh: the cache after a ping"
        run src arp -n 10.0.1.2
        run src arp -n 10.0.1.1
        run src arp -n 10.0.1.99
        run src arp -an
        echo "## t_forwarding.sh / t_ping.sh: through the forwarder"
        run src ping -n -c 2 10.0.2.2
        run dst ping -n -c 1 10.0.1.2
        run src ping -n -c 1 -s 1000 10.0.2.2
        run src ping -n -w 1 -c 1 10.0.2.99
        run fwd arp -an
        "$PEER" "unix://$d/dst.sock" echo-server 7 >/dev/null 2>&1 &
        sleep 0.5
        echo "\$ [src] inet_peer echo 10.0.2.2 7 100000"
        "$PEER" "unix://$d/src.sock" echo 10.0.2.2 7 100000 2>&1 | grep -v ' in '
        wait
        run src ping -n -w 1 -c 1 10.0.2.255
        run dst ping -n -w 1 -c 1 10.0.2.255
        run fwd sysctl -w net.inet.ip.forwarding=0
        run src ping -n -w 1 -c 1 10.0.2.2
        run fwd sysctl -w net.inet.ip.forwarding=1
        run src ping -n -w 1 -c 1 10.0.2.2
        echo "## t_arp.sh arp_command"
        run src arp -s 10.0.1.10 b2:a0:20:00:00:10
        run src arp -n 10.0.1.10
        run src arp -d 10.0.1.10
        run src arp -n 10.0.1.10
        run src arp -s 10.0.1.11 b2:a0:20:00:00:11
        run src arp -s 10.0.1.12 b2:a0:20:00:00:12
        run src arp -n -a
        run src arp -d -a
        run src arp -n -a
        run src arp -n 10.0.1.2
        run src arp -s 10.0.1.10 b2:a0:20:00:00:10 temp
        run src arp -n 10.0.1.10
        echo "## t_arp.sh arp_cache_overwriting"
        run src arp -s 10.0.1.1 b2:a0:20:00:00:ff
        run src arp -s 10.0.1.1 b2:a0:20:00:00:fe
        run src arp -d 10.0.1.1
        run src ping -n -w 1 -c 1 10.0.1.1
        run src arp -s 10.0.1.1 b2:a0:20:00:00:00
        run src arp -n 10.0.1.1
        run src arp -s 10.0.1.10 b2:a0:20:00:00:ff
        run src arp -n 10.0.1.10
        run src arp -d 10.0.1.1
        run src arp -d 10.0.1.10
        run src ping -n -w 1 -c 1 10.0.1.1
        run src arp -an
        echo "## t_flags.sh route_flags_static"
        run src route add 10.0.3.1 10.0.1.1
        run src route add -net 10.0.4.0/24 10.0.1.1
        run src route -n show -inet
        run src route -n get 10.0.3.1
        run src route -n get 10.0.4.9
        run src route delete 10.0.3.1
        run src route delete -net 10.0.4.0/24
        echo "## t_flags.sh route_flags_blackhole"
        run src ping -n -w 1 -c 1 10.0.1.1
        run src route delete -net 10.0.1.0/24
        run src route add -net 10.0.1.0/24 127.0.0.1 -blackhole
        run src route -n show -inet
        run src ping -n -w 1 -c 1 10.0.1.1
        run src route -n get 10.0.1.1
        echo "## route_flags_reject"
        run src route delete -net 10.0.1.0/24
        run src route add -net 10.0.1.0/24 10.0.1.1 -reject
        run src ping -n -w 1 -c 1 10.0.1.1
        run src route delete -net 10.0.1.0/24
        run src route add -net 10.0.1.0/24 127.0.0.1 -reject
        run src ping -n -w 1 -c 1 10.0.1.1
        run src route delete -net 10.0.1.0/24
        run src route add -host 10.0.1.1/24 127.0.0.1 -iface -reject
        run src route -n show -inet
        run src ping -n -w 1 -c 1 10.0.1.1
        echo "## route_flags_announce"
        run src route delete -host 10.0.1.1
        run src route add -net 10.0.1.0/24 10.0.1.1 -proxy
        run src route -n show -inet
        echo "## t_change.sh (route change)"
        run src route change -net 10.0.1.0/24 10.0.1.5
        run src route -n get 10.0.1.3
        run src route change -net 10.0.1.0/24 -reject
        run src route -n get 10.0.1.3
        run src route change -net 10.0.99.0/24 10.0.1.5
        run src route delete -net 10.0.1.0/24
        run src route -n show -inet
        echo "## t_route.sh route_command_add (a server of its own, bus3)"
        iface host shmif0 bus3 10.0.0.1
        run host route add -net 10.0.1.0/24 10.0.0.2
        run host route add -host 10.0.2.1 10.0.0.3
        run host route add -net 10.0.3.0/24 -connected -link -iface shmif0
        run host route add -net 10.0.4.0/24 10.0.3.1
        run host route add -net 10.0.1.0/26 10.0.5.1
        run host route add -net 10.0.6.0/24 10.0.1.1
        run host route add default 10.0.0.254
        run host route add -net 10.0.7.0/24 10.0.9.9
        run host route -n show -inet
        run host route -n get 10.0.3.7
        run host route -n get 10.0.1.1
        echo "## t_route.sh route_non_subnet_gateway (bus4)"
        run gw ifconfig shmif0 create
        run gw ifconfig shmif0 linkstr bus4
        run gw ifconfig shmif0 192.168.0.1
        run gw route add -net 10.0.0.5/32 -link -cloning -iface shmif0
        run host ifconfig shmif1 create
        run host ifconfig shmif1 linkstr bus4
        run host route delete default
        run host ifconfig shmif1 10.0.0.5/32
        run host ifconfig -w 10
        run host ping -n -c 1 -w 1 192.168.0.1
        run host route add -net 192.168.0.1/32 -link -cloning -iface shmif1
        run host route add default -ifa 10.0.0.5 192.168.0.1
        run host route -n show -inet
        run host ping -n -c 1 -w 1 192.168.0.1
        echo "## t_arp.sh arp_purge_on_route_delete, arp_purge_on_ifdown"
        run host arp -n 192.168.0.1
        run host route delete -net 192.168.0.1/32
        run host arp -n 192.168.0.1
        run gw arp -n 10.0.0.5
        run gw ifconfig shmif0 down
        run gw arp -n 10.0.0.5
        run gw arp -an
        echo "## t_ipaddress.sh ipaddr_same_address (v6a, netinet6)"
        run v6a ifconfig shmif0 create
        run v6a ifconfig shmif0 linkstr bus5
        run v6a ifconfig shmif0 10.0.0.1/24
        run v6a ifconfig shmif0 up
        run v6a ifconfig -w 10
        run v6a route -n show -inet
        run v6a ifconfig shmif0 10.0.0.1 delete
        run v6a route -n show -inet
        run v6a ifconfig shmif0 10.0.0.1/24
        run v6a route -n show -inet
        run v6a ifconfig shmif0 10.0.0.1 delete
        echo "## ipaddr_same_address6"
        run v6a ifconfig shmif0 inet6 fc00::1
        run v6a ifconfig -w 10
        run v6a route -n show -inet6
        run v6a ifconfig shmif0 inet6 fc00::1 delete
        run v6a route -n show -inet6
        run v6a ifconfig shmif0 inet6 fc00::1
        run v6a ifconfig -w 10
        run v6a route -n get -inet6 fc00::1
        run v6a route -n get -inet6 fc00::5
        echo "## ipaddr_auto_linklocal"
        run v6a sysctl net.inet6.ip6.auto_linklocal
        echo "## t_ifconfig.sh ifconfig_create_destroy"
        run v6b ifconfig shmif0 create
        run v6b ifconfig shmif0 destroy
        run v6b ifconfig shmif0 create
        run v6b ifconfig shmif0 linkstr bus5
        run v6b ifconfig shmif0 192.168.0.1/24
        run v6b ifconfig shmif0 up
        run v6b ifconfig shmif0 destroy
        run v6b ifconfig shmif0 create
        run v6b ifconfig shmif0 linkstr bus5
        run v6b ifconfig shmif0 inet6 fc00::1
        run v6b ifconfig shmif0 up
        run v6b ifconfig shmif0 destroy
        echo "## ifconfig_options / ifconfig_parameters (a part)"
        run v6b ifconfig shmif0 create
        run v6b ifconfig shmif0 linkstr bus5
        run v6b ifconfig shmif0 inet 10.0.0.2/24
        run v6b ifconfig shmif0 inet6 fc00::2/64
        run v6b ifconfig shmif0 up
        run v6b ifconfig -w 10
        run v6b ifconfig lo0 inet
        run v6b ifconfig lo0 inet6
        run v6b ifconfig lo0 atalk
        run v6b ifconfig -a -b
        run v6b ifconfig -l
        run v6b ifconfig -l -b
        run v6b ifconfig -s shmif0
        run v6b ifconfig shmif0 down
        run v6b ifconfig -l -d
        run v6b ifconfig shmif0 up
        run v6b ifconfig -l -u
        run v6b ifconfig shmif0 inet 192.168.1.1/24 alias
        run v6b ifconfig shmif0 inet
        run v6b ifconfig shmif0 inet 192.168.1.1/24 -alias
        run v6b ifconfig shmif0 inet
        run v6b ifconfig shmif0 inet 192.168.1.1 delete
        run v6b ifconfig shmif0 inet 172.16.0.1 netmask 255.255.255.0 alias
        run v6b route -n show -inet
        run v6b ifconfig shmif0 inet 172.16.0.1 delete
        run v6b ifconfig shmif0 inet 172.16.0.1 broadcast 255.255.255.255 alias
        run v6b ifconfig shmif0 inet
        run v6b ifconfig shmif0 metric 10
        run v6b ifconfig shmif0 metric 0
        run v6b ifconfig shmif0 inet6 fc00::3 prefixlen 70
        run v6b route -n show -inet6
        echo "## t_ndp.sh (basic): the cache after ping6"
        run v6a ping6 -n -c 1 -X 2 fc00::2
        run v6a ndp -n fc00::2
        run v6a ndp -n fc00::9
        run v6b ping6 -n -c 1 -X 2 fc00::1
        run v6a ndp -d fc00::2
        run v6a ndp -n fc00::2
    } > "$d/raw.txt"
    for s in src fwd dst host gw v6a v6b; do RUMP_SERVER=unix://$d/$s.sock "$HALT" 2>/dev/null; done
    sed -E 's/b2:a0(:[0-9a-f]{2}){4}/b2:a0:MAC/g; s/time=[0-9.]+ ms/time=T ms/;
            s/fe80::b0a0:[0-9a-f]{1,2}ff:fe[0-9a-f]{1,2}:[0-9a-f]{1,4}/fe80::EUI64/g;
            s/(shmif[0-9]+) [0-9]+s( +[RS] )/\1 Ns\2/;
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
