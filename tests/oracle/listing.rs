//! The listings probe (issue 14 item 4) whose answers NetBSD's rump_server recorded in
//! `tests/oracle/listing.netbsd`: what `ls -l`, `ls -li`, `ls -f` and `df` see on rumpfs and
//! tmpfs — `st_ino`, `st_nlink`, `st_size`, `st_blocks` and `st_flags` of files, directories
//! and symbolic links; getdents order and names (also read one entry at a time); statvfs of
//! a tmpfs without a size limit and with one — then chflags/fchflags/lchflags with their
//! errors and what immutable and append-only flags forbid, and the `proc.curproc.rlimit`
//! sysctl nodes against getrlimit/setrlimit. One line per step: `name: ok[ value]` or
//! `name: errno N`.
//!
//! Run against any server with `cargo run --example oracle_listing -- URL` (the server
//! started as `rump_server -lrumpvfs -lrumpfs_tmpfs -r 64m URL`, fresh: the probe halts it at
//! the end); `tests/oracle_listing.rs` runs it against ours and compares.

use client::fs::{tmpfs_args, Stat, O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_WRONLY};
use client::{addr_of, Buf, Client};

use crate::transcript::{connect, Transcript};

const SYS_SETUID: u32 = 23;
const SYS_CHFLAGS: u32 = 34;
const SYS_FCHFLAGS: u32 = 35;
const SYS_SYSCTL: u32 = 202;
const SYS_LCHFLAGS: u32 = 304;
/// `statvfs1` with `struct statvfs90` (what NetBSD 7.99's clients call; its leading fields
/// are those of today's structure).
const SYS_STATVFS1_90: u32 = 357;
const ST_WAIT: u64 = 1;
const SYS_GETRLIMIT: u32 = 194;
const SYS_SETRLIMIT: u32 = 195;
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;
const UF_NODUMP: u64 = 0x1;
const UF_IMMUTABLE: u64 = 0x2;
const UF_APPEND: u64 = 0x4;
const SF_ARCHIVED: u64 = 0x1_0000;
const SF_IMMUTABLE: u64 = 0x2_0000;
const RLIMIT_NOFILE: u64 = 8;
/// `proc.curproc.rlimit.descriptors`.
const RLIMIT_DESCRIPTORS: [i32; 4] = [10, 0x7fff_ffff, 2, 9];

/// What `ls -li` shows of a node (with its inode number) or without it (tmpfs's inode
/// numbers are kernel addresses on NetBSD).
fn show(s: &Stat, ino: bool) -> String {
    let i = match ino {
        true => format!("ino {} ", s.ino),
        false => String::new(),
    };
    format!(
        "{i}mode {:o} nlink {} size {} blocks {} flags {:#x}",
        s.mode, s.nlink, s.size, s.blocks, s.flags
    )
}

fn path_arg(p: &str) -> Vec<u8> {
    let mut v = p.as_bytes().to_vec();
    v.push(0);
    v
}

fn chflags(c: &mut Client, nr: u32, path: &str, flags: u64) -> client::Result<[i64; 2]> {
    let p = path_arg(path);
    c.syscall(nr, &[addr_of(&p), flags], &mut [Buf::In(&p)])
}

fn fchflags(c: &mut Client, fd: i32, flags: u64) -> client::Result<[i64; 2]> {
    c.syscall(SYS_FCHFLAGS, &[fd as u64, flags], &mut [])
}

fn write_file(c: &mut Client, path: &str, len: usize) -> client::Result<()> {
    let fd = c.open(path, O_CREAT | O_RDWR, 0o644)?;
    if len > 0 {
        c.pwrite(fd, &vec![b'x'; len], 0)?;
    }
    c.close(fd)
}

/// `statvfs(path)` through the 7.99 call.
fn statvfs(c: &mut Client, path: &str) -> client::Result<client::fs::Statvfs> {
    let p = path_arg(path);
    let mut b = vec![0u8; client::fs::STATVFS_LEN];
    let args = [addr_of(&p), addr_of(&b), ST_WAIT];
    c.syscall(SYS_STATVFS1_90, &args, &mut [Buf::In(&p), Buf::Out(&mut b)])?;
    Ok(client::fs::Statvfs::parse(&b))
}

/// Names (and, with `ino`, inode numbers) of a directory as getdents lists them, read in
/// one call; then, with `small`, read again through 40-byte buffers (a long name's record
/// at most, so several calls), which must give the same list. (NetBSD's rumpfs repeats an
/// entry when a buffer cannot hold the rest, netbsd-abi.md §10: not asked of it.)
fn dents(c: &mut Client, path: &str, ino: bool, small: bool, t: &mut Transcript) {
    let show = |d: &[client::fs::Dirent]| {
        d.iter()
            .map(|e| {
                let n = String::from_utf8_lossy(&e.name).into_owned();
                match ino {
                    true => format!("{n}={}", e.fileno),
                    false => n,
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    t.step(&format!("getdents {path}"), c.list_dir(path), |d| show(&d));
    if !small {
        return;
    }
    let one = (|| {
        let fd = c.open(path, O_RDONLY, 0)?;
        let mut all = Vec::new();
        for _ in 0..200 {
            let d = c.getdents(fd, 40)?;
            if d.is_empty() {
                break;
            }
            all.extend(d);
        }
        c.close(fd)?;
        Ok(all)
    })();
    t.step(&format!("getdents {path} in small reads"), one, |d| {
        show(&d)
    });
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "listing");
    rumpfs_steps(&mut c, &mut t);
    tmpfs_steps(&mut c, &mut t);
    chflags_steps(url, &mut c, &mut t);
    rlimit_steps(url, &mut c, &mut t);
    t.unit("halt", c.reboot(RB_HALT | RB_NOSYNC, None));
    t
}

fn rumpfs_steps(c: &mut Client, t: &mut Transcript) {
    t.unit("mkdir /tmp/d", c.mkdir("/tmp/d", 0o755));
    t.unit("mkdir /tmp/d again", c.mkdir("/tmp/d", 0o755));
    t.unit("create /tmp/f1 (5 bytes)", write_file(c, "/tmp/f1", 5));
    t.unit(
        "create /tmp/f2 (5000 bytes)",
        write_file(c, "/tmp/f2", 5000),
    );
    t.unit(
        "create /tmp/f3 (70000 bytes)",
        write_file(c, "/tmp/f3", 70000),
    );
    t.unit("mkdir /tmp/d/sub", c.mkdir("/tmp/d/sub", 0o755));
    t.unit("symlink /tmp/sl", c.symlink("f1", "/tmp/sl"));
    t.unit("create /tmp/empty", write_file(c, "/tmp/empty", 0));
    for p in ["/", "/dev", "/dev/null", "/tmp", "/tmp/d", "/tmp/d/sub"] {
        t.step(&format!("lstat {p}"), c.lstat(p), |s| show(&s, true));
    }
    for p in ["/tmp/f1", "/tmp/f2", "/tmp/f3", "/tmp/sl", "/tmp/empty"] {
        t.step(&format!("lstat {p}"), c.lstat(p), |s| show(&s, true));
    }
    dents(c, "/", true, false, t);
    dents(c, "/dev", true, false, t);
    dents(c, "/tmp", true, false, t);
    t.unit("unlink /tmp/f2", c.unlink("/tmp/f2"));
    t.unit("create /tmp/f4", write_file(c, "/tmp/f4", 1));
    t.step("lstat /tmp/f4", c.lstat("/tmp/f4"), |s| show(&s, true));
    dents(c, "/tmp", true, false, t);
    t.step("statvfs /", statvfs(c, "/"), |s| {
        format!("bsize {} blocks {} bfree {}", s.bsize, s.blocks, s.bfree)
    });
}

fn tmpfs_steps(c: &mut Client, t: &mut Transcript) {
    let df = |c: &mut Client, t: &mut Transcript, name: &str, p: &str| {
        t.step(name, statvfs(c, p), |s| {
            format!(
                "bsize {} frsize {} blocks {} bfree {} bavail {} files {} ffree {}",
                s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree
            )
        })
    };
    t.unit("mkdir /tmp/t", c.mkdir("/tmp/t", 0o755));
    t.unit(
        "mount tmpfs /tmp/t",
        c.mount_tmpfs("/tmp/t", 0, &tmpfs_args(0, 0, 0, 0, 0o755)),
    );
    df(c, t, "statvfs /tmp/t (fresh)", "/tmp/t");
    t.step("lstat /tmp/t (empty)", c.lstat("/tmp/t"), |s| {
        show(&s, false)
    });
    t.unit("mkdir /tmp/t/e", c.mkdir("/tmp/t/e", 0o755));
    t.step("lstat /tmp/t/e", c.lstat("/tmp/t/e"), |s| show(&s, false));
    t.step("lstat /tmp/t (one entry)", c.lstat("/tmp/t"), |s| {
        show(&s, false)
    });
    for i in 0..20 {
        let n = format!("/tmp/t/longer_name_of_entry_{i}");
        match i % 3 {
            0 => t.unit(&format!("mkdir {n}"), c.mkdir(&n, 0o755)),
            1 => t.unit(&format!("create {n}"), write_file(c, &n, 100 * i)),
            _ => t.unit(&format!("symlink {n}"), c.symlink("e", &n)),
        }
    }
    t.step("lstat /tmp/t (21 entries)", c.lstat("/tmp/t"), |s| {
        show(&s, false)
    });
    for n in [3, 4, 5] {
        let p = format!("/tmp/t/longer_name_of_entry_{n}");
        t.step(&format!("lstat {p}"), c.lstat(&p), |s| show(&s, false));
    }
    t.unit(
        "create /tmp/t/big (70000 bytes)",
        write_file(c, "/tmp/t/big", 70000),
    );
    t.step("lstat /tmp/t/big", c.lstat("/tmp/t/big"), |s| {
        show(&s, false)
    });
    t.unit("unlink /tmp/t/longer_name_of_entry_1", {
        c.unlink("/tmp/t/longer_name_of_entry_1")
    });
    t.step("lstat /tmp/t (after unlink)", c.lstat("/tmp/t"), |s| {
        show(&s, false)
    });
    dents(c, "/tmp/t", false, true, t);
    df(c, t, "statvfs /tmp/t (used)", "/tmp/t");
    t.unit("mkdir /tmp/s", c.mkdir("/tmp/s", 0o755));
    t.unit(
        "mount tmpfs /tmp/s size 1m",
        c.mount_tmpfs("/tmp/s", 0, &tmpfs_args(1 << 20, 0, 0, 0, 0o755)),
    );
    df(c, t, "statvfs /tmp/s", "/tmp/s");
    t.unit(
        "create /tmp/s/f (10000 bytes)",
        write_file(c, "/tmp/s/f", 10000),
    );
    df(c, t, "statvfs /tmp/s (used)", "/tmp/s");
}

fn chflags_steps(url: &str, c: &mut Client, t: &mut Transcript) {
    for (fs, dir) in [("tmpfs", "/tmp/t"), ("rumpfs", "/tmp")] {
        let f = format!("{dir}/cf");
        let g = format!("{dir}/cg");
        let l = format!("{dir}/cl");
        t.unit(&format!("{fs}: create cf"), write_file(c, &f, 10));
        t.unit(&format!("{fs}: create cg"), write_file(c, &g, 10));
        t.unit(&format!("{fs}: symlink cl"), c.symlink("cf", &l));
        let flags = |c: &mut Client, t: &mut Transcript, p: &str| {
            t.step(&format!("{fs}: flags of {p}"), c.lstat(p), |s| {
                format!("{:#x}", s.flags)
            })
        };
        let r = chflags(c, SYS_CHFLAGS, &f, UF_NODUMP);
        t.unit(&format!("{fs}: chflags nodump"), r);
        flags(c, t, &f);
        let r = chflags(c, SYS_CHFLAGS, &f, UF_IMMUTABLE | UF_NODUMP);
        t.unit(&format!("{fs}: chflags uchg"), r);
        flags(c, t, &f);
        t.unit(
            &format!("{fs}: open uchg for writing"),
            c.open(&f, O_WRONLY, 0),
        );
        t.unit(&format!("{fs}: open uchg for reading"), {
            c.open(&f, O_RDONLY, 0).and_then(|fd| c.close(fd))
        });
        t.unit(&format!("{fs}: truncate uchg"), c.truncate(&f, 0));
        t.unit(&format!("{fs}: chmod uchg"), c.chmod(&f, 0o600));
        t.unit(&format!("{fs}: unlink uchg"), c.unlink(&f));
        t.unit(
            &format!("{fs}: rename uchg"),
            c.rename(&f, &format!("{f}2")),
        );
        t.unit(&format!("{fs}: link uchg"), c.link(&f, &format!("{f}3")));
        let r = chflags(c, SYS_CHFLAGS, &f, SF_IMMUTABLE);
        t.unit(&format!("{fs}: chflags schg as root"), r);
        flags(c, t, &f);
        let r = chflags(c, SYS_CHFLAGS, &f, 0);
        t.unit(&format!("{fs}: chflags 0 as root"), r);
        flags(c, t, &f);
        t.unit(&format!("{fs}: unlink after clearing"), c.unlink(&f));
        let fd = match c.open(&g, O_RDWR, 0) {
            Ok(fd) => fd,
            Err(e) => {
                t.unit(&format!("{fs}: open cg"), Err::<(), _>(e));
                -1
            }
        };
        t.unit(
            &format!("{fs}: fchflags uappnd"),
            fchflags(c, fd, UF_APPEND),
        );
        flags(c, t, &g);
        t.unit(&format!("{fs}: write through the open fd"), {
            c.pwrite(fd, b"abc", 0)
        });
        t.unit(&format!("{fs}: close cg"), c.close(fd));
        t.unit(
            &format!("{fs}: open uappnd O_WRONLY"),
            c.open(&g, O_WRONLY, 0),
        );
        t.unit(&format!("{fs}: open uappnd O_APPEND"), {
            c.open(&g, O_WRONLY | O_APPEND, 0)
                .and_then(|fd| c.close(fd))
        });
        t.unit(&format!("{fs}: unlink uappnd"), c.unlink(&g));
        let r = chflags(c, SYS_LCHFLAGS, &l, UF_NODUMP);
        t.unit(&format!("{fs}: lchflags on the link"), r);
        flags(c, t, &l);
        let r = chflags(c, SYS_CHFLAGS, &l, SF_ARCHIVED);
        t.unit(&format!("{fs}: chflags through the link"), r);
        flags(c, t, &g);
        t.unit(&format!("{fs}: fchflags bad fd"), fchflags(c, 99, 0));
        let r = chflags(c, SYS_CHFLAGS, &format!("{dir}/nonexistent"), 0);
        t.unit(&format!("{fs}: chflags missing"), r);

        let mut u = connect(url, "user");
        let uf = format!("{dir}/uf");
        t.unit(&format!("{fs}: create uf"), write_file(c, &uf, 1));
        t.unit(&format!("{fs}: chmod dir 1777"), c.chmod(dir, 0o1777));
        t.unit(&format!("{fs}: setuid 1000"), {
            u.syscall(SYS_SETUID, &[1000], &mut [])
        });
        let r = chflags(&mut u, SYS_CHFLAGS, &uf, UF_NODUMP);
        t.unit(&format!("{fs}: user chflags root's file"), r);
        let mine = format!("{dir}/mine");
        t.unit(
            &format!("{fs}: user creates mine"),
            write_file(&mut u, &mine, 1),
        );
        let r = chflags(&mut u, SYS_CHFLAGS, &mine, UF_NODUMP);
        t.unit(&format!("{fs}: user chflags nodump"), r);
        let r = chflags(&mut u, SYS_CHFLAGS, &mine, SF_ARCHIVED);
        t.unit(&format!("{fs}: user chflags arch"), r);
        let r = chflags(&mut u, SYS_CHFLAGS, &mine, UF_IMMUTABLE);
        t.unit(&format!("{fs}: user chflags uchg"), r);
        flags(c, t, &mine);
        t.unit(&format!("{fs}: user unlink uchg"), u.unlink(&mine));
        let r = chflags(c, SYS_CHFLAGS, &mine, SF_IMMUTABLE);
        t.unit(&format!("{fs}: root chflags schg on mine"), r);
        let r = chflags(&mut u, SYS_CHFLAGS, &mine, 0);
        t.unit(&format!("{fs}: user clears schg"), r);
        let r = chflags(c, SYS_CHFLAGS, &mine, 0);
        t.unit(&format!("{fs}: root clears"), r);
        t.unit(&format!("{fs}: user unlink mine"), u.unlink(&mine));
    }
}

fn getrlimit(c: &mut Client, which: u64) -> client::Result<(u64, u64)> {
    let mut rl = [0u8; 16];
    let a = addr_of(&rl);
    c.syscall(SYS_GETRLIMIT, &[which, a], &mut [Buf::Out(&mut rl)])?;
    let w = |o: usize| u64::from_le_bytes(rl[o..o + 8].try_into().unwrap());
    Ok((w(0), w(8)))
}

fn setrlimit(c: &mut Client, which: u64, cur: u64, max: u64) -> client::Result<[i64; 2]> {
    let mut rl = [0u8; 16];
    rl[..8].copy_from_slice(&cur.to_le_bytes());
    rl[8..].copy_from_slice(&max.to_le_bytes());
    c.syscall(SYS_SETRLIMIT, &[which, addr_of(&rl)], &mut [Buf::In(&rl)])
}

/// Reads (and with `new` writes) the quad at `name`; returns the old value.
fn sysctl_quad(c: &mut Client, name: &[i32], new: Option<u64>) -> client::Result<u64> {
    let nm: Vec<u8> = name.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut old = [0u8; 8];
    let mut len = 8u64.to_le_bytes();
    let nb = new.unwrap_or(0).to_le_bytes();
    let (pn, nl) = match new {
        Some(_) => (addr_of(&nb), 8),
        None => (0, 0),
    };
    let args = [
        addr_of(&nm),
        name.len() as u64,
        addr_of(&old),
        addr_of(&len),
        pn,
        nl,
    ];
    let mut mem = vec![Buf::In(&nm), Buf::Out(&mut old), Buf::InOut(&mut len)];
    if new.is_some() {
        mem.push(Buf::In(&nb));
    }
    c.syscall(SYS_SYSCTL, &args, &mut mem)?;
    Ok(u64::from_le_bytes(old))
}

fn rlimit_steps(url: &str, c: &mut Client, t: &mut Transcript) {
    let soft = [&RLIMIT_DESCRIPTORS[..], &[1]].concat();
    let hard = [&RLIMIT_DESCRIPTORS[..], &[2]].concat();
    let show = |v: (u64, u64)| format!("{} {}", v.0, v.1);
    t.step(
        "sysctl descriptors.soft",
        sysctl_quad(c, &soft, None),
        |v| v.to_string(),
    );
    t.step(
        "sysctl descriptors.hard",
        sysctl_quad(c, &hard, None),
        |v| v.to_string(),
    );
    t.unit(
        "setrlimit nofile 100 1000",
        setrlimit(c, RLIMIT_NOFILE, 100, 1000),
    );
    t.step(
        "sysctl soft after setrlimit",
        sysctl_quad(c, &soft, None),
        |v| v.to_string(),
    );
    t.step(
        "sysctl hard after setrlimit",
        sysctl_quad(c, &hard, None),
        |v| v.to_string(),
    );
    t.step(
        "sysctl write soft 50",
        sysctl_quad(c, &soft, Some(50)),
        |v| v.to_string(),
    );
    t.step("getrlimit after sysctl", getrlimit(c, RLIMIT_NOFILE), show);
    t.step(
        "sysctl write soft 2000",
        sysctl_quad(c, &soft, Some(2000)),
        |v| v.to_string(),
    );
    t.step(
        "sysctl write hard 500",
        sysctl_quad(c, &hard, Some(500)),
        |v| v.to_string(),
    );
    t.step("getrlimit after hard", getrlimit(c, RLIMIT_NOFILE), show);
    let mut u = connect(url, "rlimit-user");
    t.unit("setuid 1000", u.syscall(SYS_SETUID, &[1000], &mut []));
    let r = sysctl_quad(&mut u, &hard, Some(2000));
    t.step("user raises hard", r, |v| v.to_string());
    let r = sysctl_quad(&mut u, &soft, Some(20));
    t.step("user lowers soft", r, |v| v.to_string());
    t.step("user getrlimit", getrlimit(&mut u, RLIMIT_NOFILE), show);
    let fsize = [10, 0x7fff_ffff, 2, 2, 1];
    let r = sysctl_quad(&mut u, &fsize, Some(1 << 20));
    t.step("user sets filesize soft", r, |v| v.to_string());
    t.step("user getrlimit fsize", getrlimit(&mut u, 1), show);
}
