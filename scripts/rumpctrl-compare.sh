#!/usr/bin/env bash
# rumpctrl-compare.sh — run NetBSD's own userland (rumpctrl: ls, sysctl, newfs, fsck_ffs, ...,
# built as sysproxy clients) against NetBSD's rump_server and against ours, with the same
# command line, and diff the normalised transcripts (output and exit status of every command).
#
# Usage:
#   RUMP_REFERENCE=/path/to/netbsd/rump_server scripts/rumpctrl-compare.sh [RUMPCTRL_BIN_DIR]
#
#   RUMPCTRL_BIN_DIR  rumpctrl's bin/ directory (or set RUMPCTRL); required.
#   RUMP_REFERENCE    command that starts NetBSD's rump_server (required; it may be a wrapper
#                     script setting LD_LIBRARY_PATH). It is given the same arguments as ours.
#   RUMP_OURS         our server (default: target/debug/rump_server of this repository;
#                     `cargo build` first).
#   RUMP_HALT         rump.halt used when rumpctrl's `halt` left a server running
#                     (default: target/debug/rump_halt).
#   RUMP_COMPARE_OUT  directory for the transcripts (default: a new /tmp/rumpctrl-compare.XXXXXX;
#                     it is kept). Files: netbsd.raw, ours.raw (as printed), netbsd.txt,
#                     ours.txt (normalised), diff.txt, summary.txt.
#   RUMP_COMPARE_TIMEOUT  seconds per command (default 20; a hang shows as `[exit 124]`).
#   RUMP_COMPARE_ONLY     `netbsd` or `ours`: run only that side (no diff).
#
# Exit status: 0 when the transcripts are the same, 1 when they differ, 2 on a usage error.
# The summary (summary.txt, also printed) has one line per command: `same` or `DIFFERS`.
#
# Both servers get: -lrumpvfs -lrumpfs_tmpfs -lrumpfs_ffs -lrumpdev -lrumpdev_disk
#   -d key=/dk,hostpath=<dir>/dk.img,size=16777216            (block device)
#   -d key=/rdk,hostpath=<dir>/dk.img,size=16777216,type=chr  (the same image, raw)
# The size is given in bytes: the reference built by buildrump.sh on Linux lacks strsuftoll
# and reads `size=16m` as 16 bytes (ours takes the suffix, as NetBSD proper does).
# No networking components are loaded; the network tools (ifconfig, route, arp, ndp, npfctl,
# ping, ping6) are run only for their error paths. Not run: dump (its slaves are forks),
# reboot (halts the server; `reboot -q` answers "reboot: Undefined error: 0" on both),
# `mount -t` and fsck's checks (they exec mount_<type>/fsck_<type>), rtadvd, wpa_supplicant.
#
# Normalised (they legitimately vary between runs): dates and times, the server pid in
# kern.hostname (rump-<pid>.<host>), kern.urandom/kern.arandom/kern.hardclock_ticks values,
# dd's transfer time and rate, the file-system id newfs draws (dumpfs `id [ … ]`), the
# per-side directory of the socket and image, and disklabel's "partitions X and Y overlap"
# warnings about garbage partition letters (NetBSD's fictitious label of a rumpblk device
# leaves partitions uninitialised: their number varies from run to run). Nothing else.
# dumpfs after files were written is run with -s (superblock only): NetBSD's ffs_dirpref
# places a new top-level directory in a random cylinder group.
#
# ---------------------------------------------------------------------------------------------
# Building rumpctrl (https://github.com/rumpkernel/rumpctrl, commit d1d4705), out of tree, on
# Debian 12 / gcc 12 (took about 7 minutes on 2 cores):
#
#   git clone https://github.com/rumpkernel/rumpctrl && cd rumpctrl
#   git submodule update --init      # buildrump.sh 9c9b022cb2115734935e50600c867a3bc230b32c,
#                                    # src-netbsd   b7a6451a8d004a75172f186bcade321d5d1a3c4b
#   (from local mirrors: `git submodule init`, then
#    `git config submodule.buildrump.sh.url <mirror>`, `git config submodule.rumpsrc.url
#    <mirror>`, `git -c protocol.file.allow=always submodule update`; if the mirror lacks the
#    big compiler_rt test files, check src-netbsd out sparsely without
#    sys/external/bsd/compiler_rt/dist/test/ — they are not built)
#   export HOST_CFLAGS="-O -fcommon"
#   export FLAGS="-j2 -V NOGCCERROR=1 -F CFLAGS=-fcommon -F CWARNFLAGS=-Wno-error"
#   ./buildnb.sh       # buildnb.sh passes $FLAGS to both buildrump.sh runs; its last step,
#                      # `make`, fails on gcc 12's default PIE:
#                      # "/usr/bin/ld: -r and -pie may not be used together"
#   make netbsd_init.o && COPTS=-fcommon LDFLAGS=-no-pie make -j2
#                      # LDFLAGS reaches the stunt linker (rump/lib/ld.rump); COPTS gives the
#                      # utilities -fcommon (dump and pax define globals in headers:
#                      # "multiple definition of `dumpinomap'"). netbsd_init.o first: every
#                      # link uses it but bin/halt does not depend on it (a -j2 race).
#                      # (If a utility was already compiled without -fcommon:
#                      #  `make clean_dump clean_pax` first.)
#
# The utilities are then in bin/ (ls, sysctl, newfs, fsck_ffs, mount_ffs, dumpfs, halt, ...).
# Each connects to $RUMP_SERVER when it starts; fds 0-2 stay the host's.
# ---------------------------------------------------------------------------------------------

set -u

usage() {
    sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${RUMPCTRL:-}}
[ -n "$bin" ] || { echo "rumpctrl-compare: no rumpctrl bin directory (argument or RUMPCTRL)" >&2; usage; }
[ -x "$bin/ls" ] && [ -x "$bin/sysctl" ] || { echo "rumpctrl-compare: $bin has no rumpctrl utilities (bin/ls, bin/sysctl)" >&2; exit 2; }
bin=$(cd "$bin" && pwd)
ours=${RUMP_OURS:-$repo/target/debug/rump_server}
halt=${RUMP_HALT:-$repo/target/debug/rump_halt}
tmo=${RUMP_COMPARE_TIMEOUT:-20}
only=${RUMP_COMPARE_ONLY:-}
if [ "$only" != ours ]; then
    [ -n "${RUMP_REFERENCE:-}" ] || { echo "rumpctrl-compare: set RUMP_REFERENCE to NetBSD's rump_server (command or wrapper)" >&2; usage; }
fi
if [ "$only" != netbsd ]; then
    [ -x "$ours" ] || { echo "rumpctrl-compare: $ours missing: run cargo build (or set RUMP_OURS)" >&2; exit 2; }
fi
out=${RUMP_COMPARE_OUT:-$(mktemp -d /tmp/rumpctrl-compare.XXXXXX)}
mkdir -p "$out"

# --- one command of the transcript ---------------------------------------------------------
# run CMD ARGS...        stdin /dev/null
# feed TEXT CMD ARGS...  TEXT (printf %b) on stdin
# Prints "$ CMD ARGS", the command's stdout and stderr (2>&1), then "[exit N]".
# The utility is found through PATH so that its argv[0] (and the program name in its
# messages) is the bare name.
# At most $maxlines lines of output are kept (a runaway command cannot fill the disk).
maxlines=2000
run() {
    printf '$ %s\n' "$*"
    env PATH="$bin:$PATH" RUMP_SERVER="$RUMP_SERVER" timeout -k 5 "$tmo" "$@" </dev/null 2>&1 |
        head -n "$maxlines"
    printf '[exit %d]\n' "${PIPESTATUS[0]}"
}
feed() {
    local text=$1
    shift
    printf '$ %s <<< %q\n' "$*" "$text"
    printf '%b' "$text" | env PATH="$bin:$PATH" RUMP_SERVER="$RUMP_SERVER" timeout -k 5 "$tmo" "$@" 2>&1 |
        head -n "$maxlines"
    printf '[exit %d]\n' "${PIPESTATUS[1]}"
}

# --- the transcript ------------------------------------------------------------------------
transcript() {
    # identity and sysctl
    run sysctl kern.ostype
    run sysctl kern.osrelease kern.osrevision
    run sysctl kern.version
    run sysctl kern.hostname
    run sysctl hw.machine hw.machine_arch hw.pagesize
    run sysctl vfs.generic.fstypes
    run sysctl -d kern.hostname
    run sysctl -a
    run sysctl -w kern.hostname=rumpctrl-compare
    run sysctl -n kern.hostname
    run sysctl no.such.node
    run modstat
    run modstat ffs

    # the root file system
    run ls -l /
    run ls -la /dev
    run ls -ld /tmp
    run df
    run mount
    run cat /dev/null

    # files and directories on rumpfs (NetBSD's rumpfs has no link(2) or rename(2): each
    # attempt is undone so that the transcript goes on from the same state on both sides)
    run mkdir /d
    run mkdir /d
    run mkdir -p /d/a/b/c
    run ls -R /d
    run ls -ld /d /d/a
    feed 'hello, world\n' dd of=/d/f
    run cat /d/f
    run cp /d/f /d/g
    run cat /d/g
    run ln /d/f /d/hard
    run rm -f /d/hard
    run mv /d/g /d/h
    run rm -f /d/g /d/h
    run ln -s f /d/sym
    run chmod 640 /d/f
    run chown 12:34 /d/f
    run ls -l /d
    run ls -lL /d/sym
    run dd if=/dev/zero of=/d/z bs=1k count=64
    run dd if=/d/z of=/dev/null bs=4k
    run ls -l /d/z
    run mknod /d/null c 2 2
    run mknod /d/fifo p
    run ls -l /d/null /d/fifo
    feed 'a\nline one\nline two\nline three\n.\nw /d/ed.txt\nq\n' ed -s
    feed '2d\n,p\nw\nq\n' ed -s /d/ed.txt
    run cat /d/ed.txt
    run pax -w -f /tmp/d.pax /d/f /d/a
    run pax -f /tmp/d.pax
    run rm /d/nonexistent
    run rmdir /d/a
    run rm -r /d/a
    run rm -f /d/ed.txt
    run ls -a /d

    # tmpfs
    run mkdir /mnt
    run mount_tmpfs -s 4m tmpfs /mnt
    run mount
    run df /mnt
    run cp /d/f /mnt/f
    run ln /mnt/f /mnt/hard
    run mv /mnt/f /mnt/g
    run chmod 600 /mnt/g
    run chown 5:6 /mnt/g
    run mkdir -p /mnt/a/b
    run ls -la /mnt
    run ls -R /mnt
    feed 'a\nalpha\nbeta\n.\nw /mnt/ed.txt\nq\n' ed -s
    run cat /mnt/ed.txt
    run mkdir /mnt/copy
    run pax -rw -pe /mnt/a /mnt/hard /mnt/copy
    run ls -lR /mnt/copy
    run rm -r /mnt/copy
    run umount /d
    run umount /mnt
    run rm -r /mnt/a
    run umount /mnt
    run umount /mnt
    run mount_tmpfs -o ro tmpfs /mnt
    run mkdir /mnt/x
    run umount /mnt

    # FFS on the image: newfs, check, mount, write, unmount, check again
    run disklabel /rdk
    run newfs /rdk
    run fsck_ffs -fn /rdk
    run dumpfs /rdk
    run mount_ffs /dk /mnt
    run mount
    run df /mnt
    run ls -la /mnt
    run mkdir /mnt/dir
    run cp /d/f /mnt/dir/f
    run dd if=/dev/zero of=/mnt/dir/big bs=64k count=16
    run ln -s dir/f /mnt/link
    run ln /mnt/dir/f /mnt/dir/hard
    run mv /mnt/dir/hard /mnt/dir/moved
    run chmod 600 /mnt/dir/moved
    run chown 7:8 /mnt/dir/moved
    run ls -lR /mnt
    run cat /mnt/link
    run df /mnt
    run umount /mnt
    run fsck_ffs -fn /dk
    run dumpfs -s /rdk
    run mount_ffs -o ro /dk /mnt
    run cat /mnt/dir/f
    run mkdir /mnt/ro
    run umount /mnt
    run fsck -n /dk
    # (dump is left out: its slaves are host forks whose pids mix with the rump kernel's;
    # it loops printing `Parent N waiting for child M has another child K return`)

    # other file systems on the same image (their kernel parts are not loaded: mount fails)
    run newfs_ext2fs /rdk
    run fsck_ext2fs -n /rdk
    run mount_ext2fs /dk /mnt
    run newfs_msdos -s 32768 /rdk
    run fsck_msdos -n /rdk
    run mount_msdos /dk /mnt

    # devices and subsystems that are not configured (error paths)
    run rndctl -l
    run ktrace -C
    run pcictl pci0 list
    run mixerctl -a
    run raidctl -s raid0
    run vnconfig -l
    run cgdconfig -l
    run wlanctl -a

    # networking is not loaded (error paths)
    run ifconfig -a
    run ifconfig lo0
    run route -n show
    run arp -an
    run ndp -a
    run npfctl show
    run ping -c 1 127.0.0.1
    run ping6 -c 1 ::1

    # no kernel at all
    run wpa_passphrase ssid password

    run ls -l /
}

# --- normalisation -------------------------------------------------------------------------
normalise() {
    local dir=$1
    LC_ALL=C sed -E \
        -e '/^disklabel: partitions .*[^ -~]/d' \
        -e "s#${dir}#<dir>#g" \
        -e 's/[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}/<time>/g' \
        -e 's/[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}/<date>/g' \
        -e 's/[A-Z][a-z]{2} [ 0-9][0-9]  [0-9]{4}/<date>/g' \
        -e 's/rump-[0-9]+\./rump-<pid>./g' \
        -e 's/^(kern\.(urandom|arandom|hardclock_ticks) = ).*/\1<varies>/' \
        -e 's/bytes transferred in [0-9.]+ secs \([0-9]+ bytes\/sec\)/bytes transferred in <t> secs (<rate> bytes\/sec)/' \
        -e 's/(id[[:space:]]+)\[ [0-9a-f]+ [0-9a-f]+ \]/\1[ <fsid> ]/'
}

# --- one side: start, transcript, halt -----------------------------------------------------
side() {
    local name=$1 server=$2
    local dir=$out/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    export RUMP_SERVER=unix://$dir/sock
    {
        printf '$ rump_server -lrumpvfs -lrumpfs_tmpfs -lrumpfs_ffs -lrumpdev -lrumpdev_disk -d key=/dk,... -d key=/rdk,... unix://<dir>/sock\n'
        # shellcheck disable=SC2086
        $server -lrumpvfs -lrumpfs_tmpfs -lrumpfs_ffs -lrumpdev -lrumpdev_disk \
            -d "key=/dk,hostpath=$dir/dk.img,size=16777216" \
            -d "key=/rdk,hostpath=$dir/dk.img,size=16777216,type=chr" \
            "$RUMP_SERVER" 2>&1
        printf '[exit %d]\n' $?
        transcript
        run halt
        sleep 1
        printf '$ (socket after halt) %s\n' "$([ -S "$dir/sock" ] && echo present || echo gone)"
    } >"$out/$name.raw"
    # a server left running (halt failed): stop it
    if [ -S "$dir/sock" ] && [ -x "$halt" ]; then
        RUMP_SERVER=unix://$dir/sock timeout 10 "$halt" >/dev/null 2>&1
    fi
    normalise "$dir" <"$out/$name.raw" >"$out/$name.txt"
}

case $only in
    '') side netbsd "$RUMP_REFERENCE"; side ours "$ours" ;;
    netbsd) side netbsd "$RUMP_REFERENCE"; echo "transcript: $out/netbsd.txt"; exit 0 ;;
    ours) side ours "$ours"; echo "transcript: $out/ours.txt"; exit 0 ;;
    *) echo "rumpctrl-compare: RUMP_COMPARE_ONLY must be netbsd or ours" >&2; exit 2 ;;
esac

# --- compare ---------------------------------------------------------------------------------
diff -u --label netbsd --label ours "$out/netbsd.txt" "$out/ours.txt" >"$out/diff.txt"
status=$?

# per-command summary: split each transcript at "$ " lines and compare the blocks
awk -v ours="$out/ours.txt" '
    function load(file, cmds, blocks,    n, line) {
        n = 0
        while ((getline line < file) > 0) {
            if (substr(line, 1, 2) == "$ ") { n++; cmds[n] = substr(line, 3); blocks[n] = "" }
            else if (n > 0) blocks[n] = blocks[n] line "\n"
        }
        close(file)
        return n
    }
    BEGIN {
        n = load(ARGV[1], c1, b1); m = load(ours, c2, b2); ARGV[1] = ""
        same = 0; differ = 0
        for (i = 1; i <= (n > m ? n : m); i++) {
            if (c1[i] != c2[i]) { printf "MISALIGNED %d: netbsd `%s`, ours `%s`\n", i, c1[i], c2[i]; differ++; continue }
            if (b1[i] == b2[i]) { printf "same     %s\n", c1[i]; same++ }
            else { printf "DIFFERS  %s\n", c1[i]; differ++ }
        }
        printf "\n%d same, %d differ\n", same, differ
    }' "$out/netbsd.txt" >"$out/summary.txt"
cat "$out/summary.txt"
echo "transcripts and diff: $out (diff.txt)"
exit $status
