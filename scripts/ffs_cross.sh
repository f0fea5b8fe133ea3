#!/bin/sh
# FFS images across servers (issue 13): ours and NetBSD's rump_server each write the
# workload of tests/oracle/cross.rs on fresh UFS1 and UFS2 images and read the other's back;
# prints the comparison. Then records the images NetBSD's server wrote, and its listings,
# as tests/oracle/cross-ufsN.img.gz and tests/oracle/cross-ufsN.netbsd, which
# tests/ffs_cross.rs reads back in ours without the reference.
set -e
ref=${1:-/work/ref/rump_server}
cd "$(dirname "$0")/.."
cargo build -q --bin rump_server --example ffs_cross
keep=$(mktemp -d)
CROSS_KEEP=$keep ./target/debug/examples/ffs_cross ./target/debug/rump_server "$ref"
for n in 1 2; do
	gzip -9 -n -c "$keep/cross-ufs$n.img" > "tests/oracle/cross-ufs$n.img.gz"
	cp "$keep/cross-ufs$n.listing" "tests/oracle/cross-ufs$n.netbsd"
done
rm -rf "$keep"
ls -l tests/oracle/cross-ufs*
