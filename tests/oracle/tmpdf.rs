//! The tmpfs size probe whose answers NetBSD's rump_server recorded in
//! `tests/oracle/tmpdf.netbsd`: what df sees (statvfs through NetBSD 7.99's call) of a tmpfs
//! without a size limit in a kernel started without `-r` — the rump kernel's own memory (its
//! default 512 MiB `physmem`), never the host's — fresh and holding a 1 MiB file, and of a
//! tmpfs of 1 MiB beside it.
//!
//! Run against any server with `cargo run --example oracle_tmpdf -- URL` (the server
//! started as `rump_server -lrumpvfs -lrumpfs_tmpfs URL`, no `-r`, fresh: the probe halts it
//! at the end); `tests/oracle_tmpdf.rs` runs it against ours and compares.

use client::fs::{tmpfs_args, O_CREAT, O_RDWR};
use client::{addr_of, Buf, Client};

use crate::transcript::{connect, Transcript};

/// `statvfs1` with `struct statvfs90` (what NetBSD 7.99's clients call).
const SYS_STATVFS1_90: u32 = 357;
const ST_WAIT: u64 = 1;
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;

fn statvfs(c: &mut Client, path: &str) -> client::Result<String> {
    let mut p = path.as_bytes().to_vec();
    p.push(0);
    let mut b = vec![0u8; client::fs::STATVFS_LEN];
    let args = [addr_of(&p), addr_of(&b), ST_WAIT];
    c.syscall(SYS_STATVFS1_90, &args, &mut [Buf::In(&p), Buf::Out(&mut b)])?;
    let s = client::fs::Statvfs::parse(&b);
    Ok(format!(
        "bsize {} blocks {} bfree {} bavail {} files {} ffree {}",
        s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree
    ))
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "tmpdf");
    for d in ["/m", "/s"] {
        t.unit(&format!("mkdir {d}"), c.mkdir(d, 0o755));
    }
    t.unit(
        "mount tmpfs /m",
        c.mount_tmpfs("/m", 0, &tmpfs_args(0, 0, 0, 0, 0o755)),
    );
    t.step("statvfs /m (fresh)", statvfs(&mut c, "/m"), |s| s);
    let fd = c.open("/m/f", O_CREAT | O_RDWR, 0o644).unwrap_or(-1);
    t.unit("write 1 MiB", c.pwrite(fd, &vec![b'x'; 1 << 20], 0));
    t.unit("close", c.close(fd));
    t.step("statvfs /m (1 MiB)", statvfs(&mut c, "/m"), |s| s);
    t.unit("unlink", c.unlink("/m/f"));
    t.step("statvfs /m (empty)", statvfs(&mut c, "/m"), |s| s);
    t.unit(
        "mount tmpfs /s size 1 MiB",
        c.mount_tmpfs("/s", 0, &tmpfs_args(1 << 20, 0, 0, 0, 0o755)),
    );
    t.step("statvfs /s", statvfs(&mut c, "/s"), |s| s);
    t.unit("halt", c.reboot(RB_HALT | RB_NOSYNC, None));
    t
}
