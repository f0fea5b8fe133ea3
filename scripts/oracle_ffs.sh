#!/bin/sh
# Regenerates tests/oracle/ffs.netbsd from NetBSD's rump_server (issue 13): the probe starts
# the given binary itself (default /work/ref/rump_server, a wrapper that sets
# LD_LIBRARY_PATH for buildrump.sh's libraries; see docs/benchmarks.md).
set -e
ref=${1:-/work/ref/rump_server}
cd "$(dirname "$0")/.."
cargo run -q --example oracle_ffs -- "$ref" > tests/oracle/ffs.netbsd
wc -l tests/oracle/ffs.netbsd
