#!/usr/bin/env bash
# fio through rump_fuse (docs/benchmarks.md, "FUSE bridge"): sequential and random 4 KiB
# reads and writes on a host tmpfs, on a passthrough FUSE file system over that tmpfs (what
# FUSE itself costs), and through rump_fuse on a rump tmpfs and a rump FFS (image on the host
# tmpfs). Needs root, fio, /dev/fuse and release builds:
#   cargo build --release -p rump-fuse --bin rump_fuse --examples -p rump_server --bins -p rump-ffs --bins
# Usage: [INVALIDATE=0] scripts/fuse-fio.sh [SIZE (default 128m)] [RUNTIME secs (default 10)] [rump_fuse -o opts]
# INVALIDATE=0 keeps the page cache fio would drop before each job (warm-cache figures).
set -euo pipefail
cd "$(dirname "$0")/.."
T=target/release
SIZE=${1:-128m}; RUNTIME=${2:-10}; FOPT=${3:-}
W=$(mktemp -d /tmp/fuse-fio.XXXXXX); chmod 755 "$W"
mkdir -p "$W/host" "$W/pass" "$W/rt" "$W/rf"
mount -t tmpfs -o size=2g tmpfs "$W/host"
SRV=; PASS=; F1=; F2=
cleanup() {
  for m in "$W/pass" "$W/rt" "$W/rf"; do fusermount3 -u -z "$m" 2>/dev/null || true; done
  [ -n "$PASS" ] && kill "$PASS" 2>/dev/null || true
  [ -n "$SRV" ] && RUMP_SERVER="unix://$W/sock" $T/rump_halt 2>/dev/null || true
  sleep 0.5; umount "$W/host" 2>/dev/null || true; rm -rf "$W"
}
trap cleanup EXIT
mkdir "$W/host/pt"
$T/examples/host_passthrough "$W/host/pt" "$W/pass" 4 & PASS=$!
$T/rump_newfs -O 2 -s 1g "$W/host/ffs.img" >/dev/null
$T/rump_server -s -lrumpvfs -lrumpfs_tmpfs -lrumpfs_ffs -lrumpdev -lrumpdev_disk -r 2g -c 2 \
  -d key=/dk,hostpath="$W/host/ffs.img",size=host,type=blk "unix://$W/sock" >/dev/null & SRV=$!
sleep 1
$T/examples/rump_prepare "unix://$W/sock" tmpfs /t
$T/examples/rump_prepare "unix://$W/sock" ffs /dk /f
$T/rump_fuse "unix://$W/sock" "$W/rt" --root /t ${FOPT:+-o $FOPT}
$T/rump_fuse "unix://$W/sock" "$W/rf" --root /f ${FOPT:+-o $FOPT}
sleep 0.5
run() { # name dir rw
  fio --name="$1" --directory="$2" --filename=fio.dat --size="$SIZE" --bs=4k --rw="$3" \
      --ioengine=psync --numjobs=1 --time_based --runtime="$RUNTIME" --ramp_time=1 --invalidate="${INVALIDATE:-1}" \
      --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; r=j["read"]["iops"]; w=j["write"]["iops"]; print(f"{r+w:.0f}")'
}
printf '%-26s %12s %12s %12s %12s\n' target seq-read seq-write rand-read rand-write
for t in "host tmpfs:$W/host" "passthrough FUSE:$W/pass" "rump_fuse rump tmpfs:$W/rt" "rump_fuse rump FFS:$W/rf"; do
  name=${t%%:*}; dir=${t#*:}
  printf '%-26s' "$name"
  for rw in read write randread randwrite; do printf ' %12s' "$(run "$rw" "$dir" "$rw")"; done
  echo
done
echo "(IOPS, fio psync, 4 KiB, one job, file $SIZE, ${RUNTIME}s each, invalidate=${INVALIDATE:-1}; $(nproc) cores; rump_fuse -o ${FOPT:-defaults})"
