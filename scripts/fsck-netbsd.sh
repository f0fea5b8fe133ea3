#!/bin/sh
# Runs NetBSD's fsck_ffs -fn (a rumpctrl sysproxy client) on every image in DIR through
# NetBSD's rump_server, and prints "== name" then fsck_ffs's output (stdout and stderr) and
# its exit status, the format of ffs/tests/fsck.netbsd (docs/fsck.md).
# Usage: scripts/fsck-netbsd.sh DIR [REF] [HALT]
set -u
dir=$1
ref=${2:-/work/ref}
halt=${3:-target/debug/rump_halt}
for img in "$dir"/*.img; do
	name=$(basename "$img" .img)
	sock=/tmp/fsck-netbsd.$$.$name.sock
	size=$(stat -c %s "$img")
	"$ref/rump_server" -lrumpvfs -lrumpdev -lrumpdev_disk -lrumpfs_ffs \
		-d key=/dk,hostpath="$img",size="$size" \
		-d key=/rdk,hostpath="$img",size="$size",type=chr "unix://$sock" || exit 1
	echo "== $name"
	RUMP_SERVER="unix://$sock" "$ref/rumpctrl/bin/fsck_ffs" -fn /dk 2>&1
	echo "exit $?"
	RUMP_SERVER="unix://$sock" "$halt" >/dev/null 2>&1
	rm -f "$sock"
done
