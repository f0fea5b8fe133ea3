//! The NetBSD system calls the bridge makes, over one [`Client`], with Linux → NetBSD flag
//! translation. Errors stay NetBSD numbers here ([`Fail::Errno`]); a broken connection is
//! [`Fail::Gone`]. `errno::to_linux` translates at the reply.

use client::fs::{parse_dirents, Dirent, Stat, Statvfs, STATVFS_LEN, STAT_LEN};
use client::{addr_of, int_arg, Buf, Client, Error};

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// The rump kernel's answer: a NetBSD errno.
    Errno(i32),
    /// The connection to the server broke (the server halted or died).
    Gone,
}

/// A call's result.
pub type R<T> = Result<T, Fail>;

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        match e {
            Error::Errno(n) => Fail::Errno(n),
            // An sp ERROR is an answer, not a broken connection.
            Error::Sp(c) => Fail::Errno(c.errno()),
            Error::Url(_) => Fail::Errno(22),
            Error::Io(_) | Error::Protocol(_) => Fail::Gone,
        }
    }
}

/// NetBSD numbers used here.
pub mod n {
    pub const EINVAL: i32 = 22;
    pub const EEXIST: i32 = 17;
    pub const ENOENT: i32 = 2;
    pub const ENAMETOOLONG: i32 = 63;
    pub const AT_FDCWD: i32 = -100;
    pub const AT_SYMLINK_NOFOLLOW: i32 = 0x200;
    pub const AT_REMOVEDIR: i32 = 0x800;
    pub const F_GETLK: u32 = 7;
    pub const F_SETLK: u32 = 8;
    pub const F_SETLKW: u32 = 9;
    pub const F_RDLCK: i16 = 1;
    pub const F_UNLCK: i16 = 2;
    pub const F_WRLCK: i16 = 3;
    pub const SEEK_SET: i32 = 0;
    pub const O_CREAT: i32 = 0x200;
    pub const O_EXCL: i32 = 0x800;
    pub const O_NOFOLLOW: i32 = 0x100;
    pub const O_DIRECTORY: i32 = 0x0020_0000;
    pub const O_CLOEXEC: i32 = 0x0040_0000;
    pub const RLIMIT_NOFILE: u32 = 8;
    /// `UTIME_NOW`/`UTIME_OMIT`: the same values as Linux's.
    pub const UTIME_NOW: i64 = 0x3fff_ffff;
    pub const UTIME_OMIT: i64 = 0x3fff_fffe;
}

/// System call numbers (kernel/src/abi/sysnum.rs).
mod nr {
    pub const CLOSE: u32 = 6;
    pub const SETUID: u32 = 23;
    pub const UMASK: u32 = 60;
    pub const SETGROUPS: u32 = 80;
    pub const FCNTL: u32 = 92;
    pub const FSYNC: u32 = 95;
    pub const FCHOWN: u32 = 123;
    pub const FCHMOD: u32 = 124;
    pub const PREAD: u32 = 173;
    pub const PWRITE: u32 = 174;
    pub const SETGID: u32 = 181;
    pub const GETRLIMIT: u32 = 194;
    pub const SETRLIMIT: u32 = 195;
    pub const LSEEK: u32 = 199;
    pub const TRUNCATE: u32 = 200;
    pub const FTRUNCATE: u32 = 201;
    pub const FDATASYNC: u32 = 241;
    pub const GETDENTS: u32 = 390;
    pub const FSTAT: u32 = 440;
    pub const LINKAT: u32 = 457;
    pub const RENAMEAT: u32 = 458;
    pub const MKNODAT: u32 = 460;
    pub const MKDIRAT: u32 = 461;
    pub const FACCESSAT: u32 = 462;
    pub const FCHMODAT: u32 = 463;
    pub const FCHOWNAT: u32 = 464;
    pub const FSTATAT: u32 = 466;
    pub const UTIMENSAT: u32 = 467;
    pub const OPENAT: u32 = 468;
    pub const READLINKAT: u32 = 469;
    pub const SYMLINKAT: u32 = 470;
    pub const UNLINKAT: u32 = 471;
    pub const FUTIMENS: u32 = 472;
    pub const STATVFS1: u32 = 484;
}

/// Linux `open(2)` flags → NetBSD's. Access mode, `O_APPEND`, `O_NONBLOCK`, the sync flags,
/// `O_NOFOLLOW`, `O_DIRECTORY`, `O_CREAT`/`O_EXCL`/`O_TRUNC`; the rest (`O_NOCTTY`,
/// `O_LARGEFILE`, `O_NOATIME`, `O_DIRECT`, `O_CLOEXEC`: the host's business) are dropped.
pub fn open_flags(l: i32) -> i32 {
    let mut f = l & libc::O_ACCMODE;
    let map = [
        (libc::O_APPEND, 0x8),
        (libc::O_NONBLOCK, 0x4),
        (libc::O_CREAT, n::O_CREAT),
        (libc::O_TRUNC, 0x400),
        (libc::O_EXCL, n::O_EXCL),
        (libc::O_NOFOLLOW, n::O_NOFOLLOW),
        (libc::O_DIRECTORY, n::O_DIRECTORY),
        // O_SYNC contains O_DSYNC's bit on Linux: test O_SYNC first, whole.
        (libc::O_DSYNC, 0x0001_0000),
    ];
    for (lb, nb) in map {
        if l & lb == lb {
            f |= nb;
        }
    }
    if l & libc::O_SYNC == libc::O_SYNC {
        f |= 0x80; // NetBSD O_SYNC
    }
    f
}

fn cpath(p: &[u8]) -> R<Vec<u8>> {
    if p.contains(&0) {
        return Err(Fail::Errno(n::EINVAL));
    }
    let mut v = Vec::with_capacity(p.len() + 1);
    v.extend_from_slice(p);
    v.push(0);
    Ok(v)
}

/// The calls, as methods on a connection.
pub trait Calls {
    /// Prepares a fresh connection: umask 0 (modes arrive already masked by the host) and
    /// the descriptor limit raised to its ceiling.
    fn prepare(&mut self) -> R<()>;
    /// `setgroups`, `setgid`, `setuid` (in that order: the last drops the right to do more).
    fn set_creds(&mut self, uid: u32, gid: u32, groups: &[u32]) -> R<()>;
    fn lstat(&mut self, path: &[u8]) -> R<Stat>;
    fn fstat(&mut self, fd: i32) -> R<Stat>;
    fn openat(&mut self, path: &[u8], flags: i32, mode: u32) -> R<i32>;
    fn close(&mut self, fd: i32) -> R<()>;
    fn pread(&mut self, fd: i32, buf: &mut [u8], off: i64) -> R<usize>;
    fn pwrite(&mut self, fd: i32, data: &[u8], off: i64) -> R<usize>;
    fn fsync(&mut self, fd: i32, datasync: bool) -> R<()>;
    fn mkdir(&mut self, path: &[u8], mode: u32) -> R<()>;
    fn mknod(&mut self, path: &[u8], mode: u32, dev: u64) -> R<()>;
    fn unlink(&mut self, path: &[u8], dir: bool) -> R<()>;
    fn rename(&mut self, from: &[u8], to: &[u8]) -> R<()>;
    fn link(&mut self, from: &[u8], to: &[u8]) -> R<()>;
    fn symlink(&mut self, target: &[u8], path: &[u8]) -> R<()>;
    fn readlink(&mut self, path: &[u8]) -> R<Vec<u8>>;
    fn chmod(&mut self, path: &[u8], fd: Option<i32>, mode: u32) -> R<()>;
    fn chown(&mut self, path: &[u8], fd: Option<i32>, uid: u32, gid: u32) -> R<()>;
    fn truncate(&mut self, path: &[u8], fd: Option<i32>, len: i64) -> R<()>;
    /// `utimensat`/`futimens` with `[(sec, nsec); 2]` (atime, mtime), `UTIME_*` in nsec.
    fn utimens(&mut self, path: &[u8], fd: Option<i32>, t: [(i64, i64); 2]) -> R<()>;
    fn access(&mut self, path: &[u8], mode: i32) -> R<()>;
    fn statvfs(&mut self, path: &[u8]) -> R<Statvfs>;
    /// One getdents batch from cookie `pos` (seeks first): the records and the cookie after.
    fn getdents_at(&mut self, fd: i32, pos: i64, count: usize) -> R<(Vec<Dirent>, i64)>;
    /// `fcntl(fd, cmd, struct flock)`; returns the flock after the call (for `F_GETLK`).
    fn lock(&mut self, fd: i32, cmd: u32, fl: Flock) -> R<Flock>;
}

/// NetBSD's `struct flock` (24 bytes: start, len, pid, type, whence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flock {
    pub start: i64,
    pub len: i64,
    pub pid: i32,
    pub typ: i16,
    pub whence: i16,
}

impl Flock {
    fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..20].copy_from_slice(&self.pid.to_le_bytes());
        b[20..22].copy_from_slice(&self.typ.to_le_bytes());
        b[22..24].copy_from_slice(&self.whence.to_le_bytes());
        b
    }

    fn decode(b: &[u8; 24]) -> Flock {
        let i64_at = |o: usize| i64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
        Flock {
            start: i64_at(0),
            len: i64_at(8),
            pid: i32::from_le_bytes(b[16..20].try_into().expect("4")),
            typ: i16::from_le_bytes([b[20], b[21]]),
            whence: i16::from_le_bytes([b[22], b[23]]),
        }
    }
}

trait Helpers {
    fn p1(&mut self, nr: u32, path: &[u8], pre: &[u64], post: &[u64]) -> R<[i64; 2]>;
    fn stat_out(&mut self, nr: u32, pre: &[u64], path: Option<&[u8]>, post: &[u64]) -> R<Stat>;
    fn p2(&mut self, nr: u32, a: &[u8], b: &[u8], shape: P2) -> R<()>;
}

impl Helpers for Client {
    fn p1(&mut self, nr: u32, path: &[u8], pre: &[u64], post: &[u64]) -> R<[i64; 2]> {
        let p = cpath(path)?;
        let mut args = pre.to_vec();
        args.push(addr_of(&p));
        args.extend_from_slice(post);
        Ok(self.syscall(nr, &args, &mut [Buf::In(&p)])?)
    }

    fn stat_out(&mut self, nr: u32, pre: &[u64], path: Option<&[u8]>, post: &[u64]) -> R<Stat> {
        let mut sb = [0u8; STAT_LEN];
        let p = match path {
            Some(p) => Some(cpath(p)?),
            None => None,
        };
        let mut args = pre.to_vec();
        if let Some(p) = &p {
            args.push(addr_of(p));
        }
        args.push(addr_of(&sb));
        args.extend_from_slice(post);
        match &p {
            Some(p) => self.syscall(nr, &args, &mut [Buf::In(p), Buf::Out(&mut sb)])?,
            None => self.syscall(nr, &args, &mut [Buf::Out(&mut sb)])?,
        };
        Ok(Stat::parse(&sb))
    }

    fn p2(&mut self, nr: u32, a: &[u8], b: &[u8], shape: P2) -> R<()> {
        let (a, b) = (cpath(a)?, cpath(b)?);
        let fdc = int_arg(n::AT_FDCWD);
        let args: Vec<u64> = match shape {
            P2::FdFd => vec![fdc, addr_of(&a), fdc, addr_of(&b)],
            P2::FdFdFlags => vec![fdc, addr_of(&a), fdc, addr_of(&b), 0],
            P2::Symlink => vec![addr_of(&a), fdc, addr_of(&b)],
        };
        self.syscall(nr, &args, &mut [Buf::In(&a), Buf::In(&b)])?;
        Ok(())
    }
}

enum P2 {
    FdFd,
    FdFdFlags,
    Symlink,
}

fn ts_bytes(t: [(i64, i64); 2]) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, (s, ns)) in t.iter().enumerate() {
        b[i * 16..i * 16 + 8].copy_from_slice(&s.to_le_bytes());
        b[i * 16 + 8..i * 16 + 16].copy_from_slice(&ns.to_le_bytes());
    }
    b
}

impl Calls for Client {
    fn prepare(&mut self) -> R<()> {
        self.syscall(nr::UMASK, &[0], &mut [])?;
        // Raise RLIMIT_NOFILE's soft limit to its hard limit (maxfiles): the bridge keeps one
        // descriptor per open FUSE handle. A refusal leaves the default (128).
        let mut get = [0u8; 16];
        if self
            .syscall(
                nr::GETRLIMIT,
                &[u64::from(n::RLIMIT_NOFILE), addr_of(&get)],
                &mut [Buf::Out(&mut get)],
            )
            .is_ok()
        {
            let mut want = get;
            want[0..8].copy_from_slice(&get[8..16]);
            let _ = self.syscall(
                nr::SETRLIMIT,
                &[u64::from(n::RLIMIT_NOFILE), addr_of(&want)],
                &mut [Buf::In(&want)],
            );
        }
        Ok(())
    }

    fn set_creds(&mut self, uid: u32, gid: u32, groups: &[u32]) -> R<()> {
        let g: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
        self.syscall(
            nr::SETGROUPS,
            &[int_arg(groups.len() as i32), addr_of(&g)],
            &mut [Buf::In(&g)],
        )?;
        self.syscall(nr::SETGID, &[u64::from(gid)], &mut [])?;
        self.syscall(nr::SETUID, &[u64::from(uid)], &mut [])?;
        Ok(())
    }

    fn lstat(&mut self, path: &[u8]) -> R<Stat> {
        let fdc = int_arg(n::AT_FDCWD);
        self.stat_out(
            nr::FSTATAT,
            &[fdc],
            Some(path),
            &[int_arg(n::AT_SYMLINK_NOFOLLOW)],
        )
    }

    fn fstat(&mut self, fd: i32) -> R<Stat> {
        self.stat_out(nr::FSTAT, &[int_arg(fd)], None, &[])
    }

    fn openat(&mut self, path: &[u8], flags: i32, mode: u32) -> R<i32> {
        let fdc = int_arg(n::AT_FDCWD);
        let r = self.p1(
            nr::OPENAT,
            path,
            &[fdc],
            &[int_arg(flags | n::O_CLOEXEC), u64::from(mode)],
        )?;
        Ok(r[0] as i32)
    }

    fn close(&mut self, fd: i32) -> R<()> {
        self.syscall(nr::CLOSE, &[int_arg(fd)], &mut [])?;
        Ok(())
    }

    fn pread(&mut self, fd: i32, buf: &mut [u8], off: i64) -> R<usize> {
        let args = [int_arg(fd), addr_of(buf), buf.len() as u64, 0, off as u64];
        Ok(self.syscall(nr::PREAD, &args, &mut [Buf::Out(buf)])?[0] as usize)
    }

    fn pwrite(&mut self, fd: i32, data: &[u8], off: i64) -> R<usize> {
        let args = [int_arg(fd), addr_of(data), data.len() as u64, 0, off as u64];
        Ok(self.syscall(nr::PWRITE, &args, &mut [Buf::In(data)])?[0] as usize)
    }

    fn fsync(&mut self, fd: i32, datasync: bool) -> R<()> {
        let nr = if datasync { nr::FDATASYNC } else { nr::FSYNC };
        self.syscall(nr, &[int_arg(fd)], &mut [])?;
        Ok(())
    }

    fn mkdir(&mut self, path: &[u8], mode: u32) -> R<()> {
        let fdc = int_arg(n::AT_FDCWD);
        self.p1(nr::MKDIRAT, path, &[fdc], &[u64::from(mode)])?;
        Ok(())
    }

    fn mknod(&mut self, path: &[u8], mode: u32, dev: u64) -> R<()> {
        let fdc = int_arg(n::AT_FDCWD);
        self.p1(nr::MKNODAT, path, &[fdc], &[u64::from(mode), 0, dev])?;
        Ok(())
    }

    fn unlink(&mut self, path: &[u8], dir: bool) -> R<()> {
        let fdc = int_arg(n::AT_FDCWD);
        let fl = if dir { n::AT_REMOVEDIR } else { 0 };
        self.p1(nr::UNLINKAT, path, &[fdc], &[int_arg(fl)])?;
        Ok(())
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> R<()> {
        self.p2(nr::RENAMEAT, from, to, P2::FdFd)
    }

    fn link(&mut self, from: &[u8], to: &[u8]) -> R<()> {
        self.p2(nr::LINKAT, from, to, P2::FdFdFlags)
    }

    fn symlink(&mut self, target: &[u8], path: &[u8]) -> R<()> {
        self.p2(nr::SYMLINKAT, target, path, P2::Symlink)
    }

    fn readlink(&mut self, path: &[u8]) -> R<Vec<u8>> {
        let p = cpath(path)?;
        let mut buf = vec![0u8; 1024];
        let args = [
            int_arg(n::AT_FDCWD),
            addr_of(&p),
            addr_of(&buf),
            buf.len() as u64,
        ];
        let r = self.syscall(
            nr::READLINKAT,
            &args,
            &mut [Buf::In(&p), Buf::Out(&mut buf)],
        )?;
        buf.truncate((r[0] as usize).min(1024));
        Ok(buf)
    }

    fn chmod(&mut self, path: &[u8], fd: Option<i32>, mode: u32) -> R<()> {
        match fd {
            Some(fd) => {
                self.syscall(nr::FCHMOD, &[int_arg(fd), u64::from(mode)], &mut [])?;
            }
            None => {
                let fdc = int_arg(n::AT_FDCWD);
                self.p1(nr::FCHMODAT, path, &[fdc], &[u64::from(mode), 0])?;
            }
        }
        Ok(())
    }

    fn chown(&mut self, path: &[u8], fd: Option<i32>, uid: u32, gid: u32) -> R<()> {
        let (u, g) = (u64::from(uid), u64::from(gid));
        match fd {
            Some(fd) => {
                self.syscall(nr::FCHOWN, &[int_arg(fd), u, g], &mut [])?;
            }
            None => {
                let fdc = int_arg(n::AT_FDCWD);
                let fl = int_arg(n::AT_SYMLINK_NOFOLLOW);
                self.p1(nr::FCHOWNAT, path, &[fdc], &[u, g, fl])?;
            }
        }
        Ok(())
    }

    fn truncate(&mut self, path: &[u8], fd: Option<i32>, len: i64) -> R<()> {
        match fd {
            Some(fd) => {
                self.syscall(nr::FTRUNCATE, &[int_arg(fd), 0, len as u64], &mut [])?;
            }
            None => {
                self.p1(nr::TRUNCATE, path, &[], &[0, len as u64])?;
            }
        }
        Ok(())
    }

    fn utimens(&mut self, path: &[u8], fd: Option<i32>, t: [(i64, i64); 2]) -> R<()> {
        let b = ts_bytes(t);
        match fd {
            Some(fd) => {
                self.syscall(
                    nr::FUTIMENS,
                    &[int_arg(fd), addr_of(&b)],
                    &mut [Buf::In(&b)],
                )?;
            }
            None => {
                let p = cpath(path)?;
                let args = [
                    int_arg(n::AT_FDCWD),
                    addr_of(&p),
                    addr_of(&b),
                    int_arg(n::AT_SYMLINK_NOFOLLOW),
                ];
                self.syscall(nr::UTIMENSAT, &args, &mut [Buf::In(&p), Buf::In(&b)])?;
            }
        }
        Ok(())
    }

    fn access(&mut self, path: &[u8], mode: i32) -> R<()> {
        let fdc = int_arg(n::AT_FDCWD);
        self.p1(nr::FACCESSAT, path, &[fdc], &[int_arg(mode), 0])?;
        Ok(())
    }

    fn statvfs(&mut self, path: &[u8]) -> R<Statvfs> {
        let p = cpath(path)?;
        let mut b = vec![0u8; STATVFS_LEN];
        let args = [addr_of(&p), addr_of(&b), 1];
        self.syscall(nr::STATVFS1, &args, &mut [Buf::In(&p), Buf::Out(&mut b)])?;
        Ok(Statvfs::parse(&b))
    }

    fn getdents_at(&mut self, fd: i32, pos: i64, count: usize) -> R<(Vec<Dirent>, i64)> {
        self.syscall(
            nr::LSEEK,
            &[int_arg(fd), 0, pos as u64, int_arg(n::SEEK_SET)],
            &mut [],
        )?;
        let mut buf = vec![0u8; count];
        let args = [int_arg(fd), addr_of(&buf), count as u64];
        let got = self.syscall(nr::GETDENTS, &args, &mut [Buf::Out(&mut buf)])?[0] as usize;
        let recs = parse_dirents(&buf[..got.min(count)]).ok_or(Fail::Errno(5))?;
        let after = self.syscall(nr::LSEEK, &[int_arg(fd), 0, 0, 1], &mut [])?[0];
        Ok((recs, after))
    }

    fn lock(&mut self, fd: i32, cmd: u32, fl: Flock) -> R<Flock> {
        let mut b = fl.encode();
        let args = [int_arg(fd), u64::from(cmd), addr_of(&b)];
        self.syscall(nr::FCNTL, &args, &mut [Buf::InOut(&mut b)])?;
        Ok(Flock::decode(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_translate() {
        assert_eq!(open_flags(libc::O_RDONLY), 0);
        assert_eq!(open_flags(libc::O_RDWR | libc::O_APPEND), 2 | 0x8);
        assert_eq!(
            open_flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC),
            1 | 0x200 | 0x800 | 0x400
        );
        assert_eq!(open_flags(libc::O_SYNC), 0x80 | 0x1_0000);
        assert_eq!(open_flags(libc::O_DSYNC), 0x1_0000);
        assert_eq!(
            open_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY),
            0x100 | 0x20_0000
        );
        assert_eq!(open_flags(libc::O_LARGEFILE | libc::O_NOATIME), 0);
    }

    #[test]
    fn flock_layout() {
        let f = Flock {
            start: 5,
            len: 7,
            pid: 9,
            typ: n::F_WRLCK,
            whence: 0,
        };
        let b = f.encode();
        assert_eq!(&b[0..8], &5i64.to_le_bytes());
        assert_eq!(b[20], 3);
        assert_eq!(Flock::decode(&b), f);
    }
}
