#!/usr/bin/env bash
# Installs rump_server, rump_allserver and rump.halt into PREFIX/bin (default /usr/local).
# Cargo cannot name a binary `rump.halt`, so the binary is built as `rump_halt` and installed
# under both names; every binary picks its program from the name it was started under.
set -euo pipefail
prefix=${1:-/usr/local}
cd "$(dirname "$0")/.."
cargo install --locked --path . --root "$prefix"
ln -sf rump_halt "$prefix/bin/rump.halt"
echo "installed: $prefix/bin/{rump_server,rump_allserver,rump_halt,rump.halt}"
