#!/usr/bin/env bash
# Installs rump_server, rump_allserver, rump.halt, shmif_dumpbus and rump_fuse into PREFIX/bin (default
# /usr/local), and
# librumpclient (clib/): PREFIX/lib/librumpclient.so.0 (+ .so link) and .a, the headers
# PREFIX/include/rump/{rumpclient,rump_syscalls,rumpdefs,rump}.h and
# PREFIX/lib/pkgconfig/rumpclient.pc.
# Cargo cannot name a binary `rump.halt`, so the binary is built as `rump_halt` and installed
# under both names; every binary picks its program from the name it was started under.
set -euo pipefail
prefix=${1:-/usr/local}
cd "$(dirname "$0")/.."
cargo install --locked --path . --root "$prefix"
ln -sf rump_halt "$prefix/bin/rump.halt"
echo "installed: $prefix/bin/{rump_server,rump_allserver,rump_halt,rump.halt}"
cargo install --locked --path shmif --root "$prefix"
echo "installed: $prefix/bin/shmif_dumpbus"
# rump_fuse (fuse/): mounts a server's namespace on the host (needs /dev/fuse; fusermount3
# from Debian's fuse3 for users other than root).
cargo install --locked --path fuse --root "$prefix"
echo "installed: $prefix/bin/rump_fuse"

cargo build --locked --release -p rump-clib
target=${CARGO_TARGET_DIR:-target}/release
version=$(sed -n 's/^version = "\(.*\)"/\1/p' clib/Cargo.toml | head -1)
install -d "$prefix/lib/pkgconfig" "$prefix/include/rump"
install -m 0755 "$target/librumpclient.so" "$prefix/lib/librumpclient.so.0"
ln -sf librumpclient.so.0 "$prefix/lib/librumpclient.so"
install -m 0644 "$target/librumpclient.a" "$prefix/lib/librumpclient.a"
install -m 0644 clib/include/rump/*.h "$prefix/include/rump/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" clib/rumpclient.pc.in \
    >"$prefix/lib/pkgconfig/rumpclient.pc"
echo "installed: $prefix/lib/librumpclient.{so.0,so,a}, $prefix/include/rump/*.h," \
    "$prefix/lib/pkgconfig/rumpclient.pc"
