//! Typed wrappers for the file-system system calls, and parsers of NetBSD's `struct stat`
//! (152 bytes) and getdents records (netbsd-abi.md §4.3–§4.4).
//!
//! Paths are sent as NUL-terminated copies offered to the server as `Buf::In`; results come
//! back through `Buf::Out` regions. Errors are NetBSD errno numbers (`Error::Errno`).

use std::ffi::CString;

use crate::{addr_of, int_arg, Buf, Client, Error, Result};

/// File-system syscall numbers (NetBSD, netbsd-abi.md §3).
pub mod fsnr {
    pub const OPEN: u32 = 5;
    pub const LINK: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const CHDIR: u32 = 12;
    pub const FCHDIR: u32 = 13;
    pub const CHMOD: u32 = 15;
    pub const CHOWN: u32 = 16;
    pub const ACCESS: u32 = 33;
    pub const SYNC: u32 = 36;
    pub const PIPE: u32 = 42;
    pub const SYMLINK: u32 = 57;
    pub const READLINK: u32 = 58;
    pub const CHROOT: u32 = 61;
    pub const FSYNC: u32 = 95;
    pub const FCHMOD: u32 = 124;
    pub const RENAME: u32 = 128;
    pub const FLOCK: u32 = 131;
    pub const MKFIFO: u32 = 132;
    pub const MKDIR: u32 = 136;
    pub const RMDIR: u32 = 137;
    pub const PREAD: u32 = 173;
    pub const PWRITE: u32 = 174;
    pub const LSEEK: u32 = 199;
    pub const TRUNCATE: u32 = 200;
    pub const FTRUNCATE: u32 = 201;
    pub const GETCWD: u32 = 296;
    pub const GETDENTS: u32 = 390;
    pub const STAT: u32 = 439;
    pub const FSTAT: u32 = 440;
    pub const LSTAT: u32 = 441;
    pub const PIPE2: u32 = 453;
    pub const LINKAT: u32 = 457;
    pub const RENAMEAT: u32 = 458;
    pub const MKDIRAT: u32 = 461;
    pub const FSTATAT: u32 = 466;
    pub const UTIMENSAT: u32 = 467;
    pub const OPENAT: u32 = 468;
    pub const SYMLINKAT: u32 = 470;
    pub const UNLINKAT: u32 = 471;
    pub const STATVFS1: u32 = 484;
    pub const UNMOUNT: u32 = 22;
    pub const MOUNT: u32 = 410;
    pub const GETVFSSTAT: u32 = 483;
    pub const FSTATVFS1: u32 = 485;
}

/// NetBSD mount flags (`MNT_*`, netbsd-abi.md §5.12).
pub mod mnt {
    pub const RDONLY: i32 = 0x0000_0001;
    pub const SYNCHRONOUS: i32 = 0x0000_0002;
    pub const NOEXEC: i32 = 0x0000_0004;
    pub const NOSUID: i32 = 0x0000_0008;
    pub const NODEV: i32 = 0x0000_0010;
    pub const UNION: i32 = 0x0000_0020;
    pub const LOCAL: i32 = 0x0000_1000;
    pub const ROOTFS: i32 = 0x0000_4000;
    pub const UPDATE: i32 = 0x0001_0000;
    pub const FORCE: i32 = 0x0008_0000;
    pub const GETARGS: i32 = 0x0040_0000;
    pub const LOG: i32 = 0x0200_0000;
    pub const NOATIME: i32 = 0x0400_0000;
}

/// Size of `struct statvfs` (NetBSD 10, syscalls 483–485).
pub const STATVFS_LEN: usize = 3296;

/// NetBSD's `struct statvfs`, decoded (the fields tests look at).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statvfs {
    pub flag: u64,
    pub bsize: u64,
    pub frsize: u64,
    pub iosize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsidx: [i32; 2],
    pub fsid: u64,
    pub namemax: u64,
    pub owner: u32,
    pub fstypename: String,
    pub mntonname: String,
    pub mntfromname: String,
}

fn cstr_at(b: &[u8], off: usize, len: usize) -> String {
    let f = &b[off..off + len];
    let end = f.iter().position(|&c| c == 0).unwrap_or(len);
    String::from_utf8_lossy(&f[..end]).into_owned()
}

impl Statvfs {
    /// Decodes the 3296-byte structure.
    pub fn parse(b: &[u8]) -> Statvfs {
        Statvfs {
            flag: u64_at(b, 0),
            bsize: u64_at(b, 8),
            frsize: u64_at(b, 16),
            iosize: u64_at(b, 24),
            blocks: u64_at(b, 32),
            bfree: u64_at(b, 40),
            bavail: u64_at(b, 48),
            files: u64_at(b, 64),
            ffree: u64_at(b, 72),
            favail: u64_at(b, 80),
            fsidx: [u32_at(b, 128) as i32, u32_at(b, 132) as i32],
            fsid: u64_at(b, 136),
            namemax: u64_at(b, 144),
            owner: u32_at(b, 152),
            fstypename: cstr_at(b, 192, 32),
            mntonname: cstr_at(b, 224, 1024),
            mntfromname: cstr_at(b, 1248, 1024),
        }
    }
}

/// `struct tmpfs_args` (40 bytes, `TMPFS_ARGS_VERSION` 1): size limit in bytes (below a page:
/// none), node limit (≤ 3: derived), the root's owner, group and mode.
pub fn tmpfs_args(size_max: i64, nodes_max: u64, uid: u32, gid: u32, mode: u32) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[0..4].copy_from_slice(&1u32.to_le_bytes());
    b[8..16].copy_from_slice(&nodes_max.to_le_bytes());
    b[16..24].copy_from_slice(&size_max.to_le_bytes());
    b[24..28].copy_from_slice(&uid.to_le_bytes());
    b[28..32].copy_from_slice(&gid.to_le_bytes());
    b[32..36].copy_from_slice(&mode.to_le_bytes());
    b
}

/// `AT_FDCWD`.
pub const AT_FDCWD: i32 = -100;
/// NetBSD open flags used by tests.
pub const O_RDONLY: i32 = 0;
pub const O_WRONLY: i32 = 1;
pub const O_RDWR: i32 = 2;
pub const O_APPEND: i32 = 0x8;
pub const O_CREAT: i32 = 0x200;
pub const O_TRUNC: i32 = 0x400;
pub const O_EXCL: i32 = 0x800;
pub const O_DIRECTORY: i32 = 0x0020_0000;
pub const O_CLOEXEC: i32 = 0x0040_0000;
/// `AT_REMOVEDIR`.
pub const AT_REMOVEDIR: i32 = 0x800;
/// `AT_SYMLINK_NOFOLLOW`.
pub const AT_SYMLINK_NOFOLLOW: i32 = 0x200;

/// NetBSD's `struct stat`, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub mode: u32,
    pub ino: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub birthtime: (i64, i64),
    pub size: i64,
    pub blocks: i64,
    pub blksize: u32,
    pub flags: u32,
    pub gen: u32,
}

/// Size of NetBSD/amd64 `struct stat`.
pub const STAT_LEN: usize = 152;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl Stat {
    /// Decodes the 152-byte structure.
    pub fn parse(b: &[u8; STAT_LEN]) -> Stat {
        let ts = |off: usize| (u64_at(b, off) as i64, u64_at(b, off + 8) as i64);
        Stat {
            dev: u64_at(b, 0),
            mode: u32_at(b, 8),
            ino: u64_at(b, 16),
            nlink: u32_at(b, 24),
            uid: u32_at(b, 28),
            gid: u32_at(b, 32),
            rdev: u64_at(b, 40),
            atime: ts(48),
            mtime: ts(64),
            ctime: ts(80),
            birthtime: ts(96),
            size: u64_at(b, 112) as i64,
            blocks: u64_at(b, 120) as i64,
            blksize: u32_at(b, 128),
            flags: u32_at(b, 132),
            gen: u32_at(b, 136),
        }
    }
}

/// One getdents record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub fileno: u64,
    pub typ: u8,
    pub name: Vec<u8>,
}

/// Parses the records of a getdents buffer; `None` if a record is malformed.
pub fn parse_dirents(mut b: &[u8]) -> Option<Vec<Dirent>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 16 {
            return None;
        }
        let reclen = u16::from_le_bytes([b[8], b[9]]) as usize;
        let namlen = u16::from_le_bytes([b[10], b[11]]) as usize;
        if reclen < 16 || reclen > b.len() || reclen & 7 != 0 || 13 + namlen + 1 > reclen {
            return None;
        }
        out.push(Dirent {
            fileno: u64_at(b, 0),
            typ: b[12],
            name: b[13..13 + namlen].to_vec(),
        });
        b = &b[reclen..];
    }
    Some(out)
}

fn cpath(path: &str) -> Result<CString> {
    CString::new(path).map_err(|_| Error::Protocol(format!("path {path:?} contains a NUL")))
}

impl Client {
    /// `open(path, flags, mode)` — returns the descriptor.
    pub fn open(&mut self, path: &str, flags: i32, mode: u32) -> Result<i32> {
        self.openat(AT_FDCWD, path, flags, mode)
    }

    /// `openat(dirfd, path, flags, mode)`.
    pub fn openat(&mut self, dirfd: i32, path: &str, flags: i32, mode: u32) -> Result<i32> {
        let p = cpath(path)?;
        let p = p.as_bytes_with_nul();
        let args = [int_arg(dirfd), addr_of(p), int_arg(flags), u64::from(mode)];
        Ok(self.syscall(fsnr::OPENAT, &args, &mut [Buf::In(p)])?[0] as i32)
    }

    /// A call whose only memory is one path.
    fn path_call(&mut self, nr: u32, path: &str, rest: &[u64]) -> Result<[i64; 2]> {
        let p = cpath(path)?;
        let p = p.as_bytes_with_nul();
        let mut args = vec![addr_of(p)];
        args.extend_from_slice(rest);
        self.syscall(nr, &args, &mut [Buf::In(p)])
    }

    /// A call with two paths (slots 0 and 1).
    fn two_path_call(&mut self, nr: u32, a: &str, b: &str) -> Result<()> {
        let (a, b) = (cpath(a)?, cpath(b)?);
        let (a, b) = (a.as_bytes_with_nul(), b.as_bytes_with_nul());
        self.syscall(nr, &[addr_of(a), addr_of(b)], &mut [Buf::In(a), Buf::In(b)])?;
        Ok(())
    }

    /// `pread(fd, buf, nbyte, offset)`.
    pub fn pread(&mut self, fd: i32, buf: &mut [u8], offset: i64) -> Result<usize> {
        let args = [
            int_arg(fd),
            addr_of(buf),
            buf.len() as u64,
            0,
            offset as u64,
        ];
        Ok(self.syscall(fsnr::PREAD, &args, &mut [Buf::Out(buf)])?[0] as usize)
    }

    /// `pwrite(fd, buf, nbyte, offset)`.
    pub fn pwrite(&mut self, fd: i32, data: &[u8], offset: i64) -> Result<usize> {
        let args = [
            int_arg(fd),
            addr_of(data),
            data.len() as u64,
            0,
            offset as u64,
        ];
        Ok(self.syscall(fsnr::PWRITE, &args, &mut [Buf::In(data)])?[0] as usize)
    }

    /// `lseek(fd, offset, whence)` — returns the new offset.
    pub fn lseek(&mut self, fd: i32, offset: i64, whence: i32) -> Result<i64> {
        let args = [int_arg(fd), 0, offset as u64, int_arg(whence)];
        Ok(self.syscall(fsnr::LSEEK, &args, &mut [])?[0])
    }

    fn stat_call(&mut self, nr: u32, first: Option<&str>, fd: Option<i32>) -> Result<Stat> {
        let mut sb = [0u8; STAT_LEN];
        match (first, fd) {
            (Some(path), _) => {
                let p = cpath(path)?;
                let p = p.as_bytes_with_nul();
                let args = [addr_of(p), addr_of(&sb)];
                self.syscall(nr, &args, &mut [Buf::In(p), Buf::Out(&mut sb)])?;
            }
            (None, Some(fd)) => {
                let args = [int_arg(fd), addr_of(&sb)];
                self.syscall(nr, &args, &mut [Buf::Out(&mut sb)])?;
            }
            (None, None) => unreachable!("stat_call needs a path or a descriptor"),
        }
        Ok(Stat::parse(&sb))
    }

    /// `stat(path)` (`__stat50`).
    pub fn stat(&mut self, path: &str) -> Result<Stat> {
        self.stat_call(fsnr::STAT, Some(path), None)
    }

    /// `lstat(path)` (`__lstat50`).
    pub fn lstat(&mut self, path: &str) -> Result<Stat> {
        self.stat_call(fsnr::LSTAT, Some(path), None)
    }

    /// `fstat(fd)` (`__fstat50`).
    pub fn fstat(&mut self, fd: i32) -> Result<Stat> {
        self.stat_call(fsnr::FSTAT, None, Some(fd))
    }

    /// `mkdir(path, mode)`.
    pub fn mkdir(&mut self, path: &str, mode: u32) -> Result<()> {
        self.path_call(fsnr::MKDIR, path, &[u64::from(mode)])
            .map(drop)
    }

    /// `rmdir(path)`.
    pub fn rmdir(&mut self, path: &str) -> Result<()> {
        self.path_call(fsnr::RMDIR, path, &[]).map(drop)
    }

    /// `unlink(path)`.
    pub fn unlink(&mut self, path: &str) -> Result<()> {
        self.path_call(fsnr::UNLINK, path, &[]).map(drop)
    }

    /// `chdir(path)`.
    pub fn chdir(&mut self, path: &str) -> Result<()> {
        self.path_call(fsnr::CHDIR, path, &[]).map(drop)
    }

    /// `chroot(path)`.
    pub fn chroot(&mut self, path: &str) -> Result<()> {
        self.path_call(fsnr::CHROOT, path, &[]).map(drop)
    }

    /// `fchdir(fd)`.
    pub fn fchdir(&mut self, fd: i32) -> Result<()> {
        self.syscall(fsnr::FCHDIR, &[int_arg(fd)], &mut [])
            .map(drop)
    }

    /// `chmod(path, mode)`.
    pub fn chmod(&mut self, path: &str, mode: u32) -> Result<()> {
        self.path_call(fsnr::CHMOD, path, &[u64::from(mode)])
            .map(drop)
    }

    /// `chown(path, uid, gid)`.
    pub fn chown(&mut self, path: &str, uid: u32, gid: u32) -> Result<()> {
        self.path_call(fsnr::CHOWN, path, &[u64::from(uid), u64::from(gid)])
            .map(drop)
    }

    /// `access(path, mode)`.
    pub fn access(&mut self, path: &str, mode: i32) -> Result<()> {
        self.path_call(fsnr::ACCESS, path, &[int_arg(mode)])
            .map(drop)
    }

    /// `truncate(path, length)` (3 slots: path, PAD, length).
    pub fn truncate(&mut self, path: &str, length: i64) -> Result<()> {
        self.path_call(fsnr::TRUNCATE, path, &[0, length as u64])
            .map(drop)
    }

    /// `ftruncate(fd, length)`.
    pub fn ftruncate(&mut self, fd: i32, length: i64) -> Result<()> {
        self.syscall(fsnr::FTRUNCATE, &[int_arg(fd), 0, length as u64], &mut [])
            .map(drop)
    }

    /// `fsync(fd)`.
    pub fn fsync(&mut self, fd: i32) -> Result<()> {
        self.syscall(fsnr::FSYNC, &[int_arg(fd)], &mut []).map(drop)
    }

    /// `sync()` (NOERR).
    pub fn sync(&mut self) -> Result<()> {
        self.syscall_raw(fsnr::SYNC, &[], &mut []).map(drop)
    }

    /// `rename(from, to)`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.two_path_call(fsnr::RENAME, from, to)
    }

    /// `link(existing, new)`.
    pub fn link(&mut self, existing: &str, new: &str) -> Result<()> {
        self.two_path_call(fsnr::LINK, existing, new)
    }

    /// `symlink(target, linkpath)`.
    pub fn symlink(&mut self, target: &str, linkpath: &str) -> Result<()> {
        self.two_path_call(fsnr::SYMLINK, target, linkpath)
    }

    /// `readlink(path)` — the link text (up to 1024 bytes).
    pub fn readlink(&mut self, path: &str) -> Result<Vec<u8>> {
        let p = cpath(path)?;
        let p = p.as_bytes_with_nul();
        let mut buf = vec![0u8; 1024];
        let args = [addr_of(p), addr_of(&buf), buf.len() as u64];
        let n = self.syscall(fsnr::READLINK, &args, &mut [Buf::In(p), Buf::Out(&mut buf)])?[0];
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// `unlinkat(dirfd, path, flags)`.
    pub fn unlinkat(&mut self, dirfd: i32, path: &str, flags: i32) -> Result<()> {
        let p = cpath(path)?;
        let p = p.as_bytes_with_nul();
        let args = [int_arg(dirfd), addr_of(p), int_arg(flags)];
        self.syscall(fsnr::UNLINKAT, &args, &mut [Buf::In(p)])
            .map(drop)
    }

    /// `__getdents30(fd, buf, count)` — the records of one call (empty at the end).
    pub fn getdents(&mut self, fd: i32, count: usize) -> Result<Vec<Dirent>> {
        let mut buf = vec![0u8; count];
        let args = [int_arg(fd), addr_of(&buf), count as u64];
        let n = self.syscall(fsnr::GETDENTS, &args, &mut [Buf::Out(&mut buf)])?[0] as usize;
        parse_dirents(&buf[..n.min(count)])
            .ok_or_else(|| Error::Protocol("malformed getdents records".into()))
    }

    /// Every entry of a directory (open, getdents until 0, close), without the records of
    /// removed entries (inode 0) that FFS returns, as libc's readdir skips them.
    pub fn list_dir(&mut self, path: &str) -> Result<Vec<Dirent>> {
        let fd = self.open(path, O_RDONLY | O_DIRECTORY, 0)?;
        let mut all = Vec::new();
        let result = loop {
            match self.getdents(fd, 4096) {
                Ok(d) if d.is_empty() => break Ok(()),
                Ok(d) => all.extend(d.into_iter().filter(|e| e.fileno != 0)),
                Err(e) => break Err(e),
            }
        };
        self.close(fd)?;
        result.map(|()| all)
    }

    /// `__getcwd(buf, len)` — the current directory.
    pub fn getcwd(&mut self) -> Result<String> {
        let mut buf = vec![0u8; 1024];
        let args = [addr_of(&buf), buf.len() as u64];
        self.syscall(fsnr::GETCWD, &args, &mut [Buf::Out(&mut buf)])?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// `flock(fd, how)` — `LOCK_SH` 1, `LOCK_EX` 2, `LOCK_NB` 4, `LOCK_UN` 8.
    pub fn flock(&mut self, fd: i32, how: i32) -> Result<()> {
        self.syscall(fsnr::FLOCK, &[int_arg(fd), int_arg(how)], &mut [])
            .map(drop)
    }

    /// `__mount50(type, path, flags, data, data_len)` — `data` is offered for reading and
    /// writing (`MNT_GETARGS` writes it); returns `retval[0]` (the argument length for
    /// `MNT_GETARGS`).
    pub fn mount(
        &mut self,
        fstype: &str,
        path: &str,
        flags: i32,
        data: Option<&mut [u8]>,
    ) -> Result<i64> {
        let (t, p) = (cpath(fstype)?, cpath(path)?);
        let (t, p) = (t.as_bytes_with_nul(), p.as_bytes_with_nul());
        let (daddr, dlen) = data
            .as_ref()
            .map_or((0, 0), |d| (addr_of(d), d.len() as u64));
        let args = [addr_of(t), addr_of(p), int_arg(flags), daddr, dlen];
        let mut bufs = vec![Buf::In(t), Buf::In(p)];
        if let Some(d) = data {
            bufs.push(Buf::InOut(d));
        }
        Ok(self.syscall(fsnr::MOUNT, &args, &mut bufs)?[0])
    }

    /// Mounts tmpfs on `path` with `args` (see [`tmpfs_args`]).
    pub fn mount_tmpfs(&mut self, path: &str, flags: i32, args: &[u8; 40]) -> Result<()> {
        let mut a = *args;
        self.mount("tmpfs", path, flags, Some(&mut a)).map(drop)
    }

    /// Mounts FFS from block device `dev` on `path`: NetBSD's `struct ufs_args`, whose
    /// `fspec` string the kernel fetches by its address.
    pub fn mount_ffs(&mut self, dev: &str, path: &str, flags: i32) -> Result<()> {
        let (t, p, spec) = (cpath("ffs")?, cpath(path)?, cpath(dev)?);
        let (t, p, spec) = (
            t.as_bytes_with_nul(),
            p.as_bytes_with_nul(),
            spec.as_bytes_with_nul(),
        );
        let mut ufs_args = addr_of(spec).to_le_bytes();
        let args = [
            addr_of(t),
            addr_of(p),
            int_arg(flags),
            addr_of(&ufs_args),
            ufs_args.len() as u64,
        ];
        let mut bufs = [
            Buf::In(t),
            Buf::In(p),
            Buf::InOut(&mut ufs_args),
            Buf::In(spec),
        ];
        self.syscall(fsnr::MOUNT, &args, &mut bufs).map(drop)
    }

    /// `unmount(path, flags)`.
    pub fn unmount(&mut self, path: &str, flags: i32) -> Result<()> {
        self.path_call(fsnr::UNMOUNT, path, &[int_arg(flags)])
            .map(drop)
    }

    /// `statvfs1(path, buf, ST_WAIT)` (`__statvfs190`).
    pub fn statvfs(&mut self, path: &str) -> Result<Statvfs> {
        let p = cpath(path)?;
        let p = p.as_bytes_with_nul();
        let mut b = vec![0u8; STATVFS_LEN];
        let args = [addr_of(p), addr_of(&b), 1];
        self.syscall(fsnr::STATVFS1, &args, &mut [Buf::In(p), Buf::Out(&mut b)])?;
        Ok(Statvfs::parse(&b))
    }

    /// `fstatvfs1(fd, buf, ST_WAIT)` (`__fstatvfs190`).
    pub fn fstatvfs(&mut self, fd: i32) -> Result<Statvfs> {
        let mut b = vec![0u8; STATVFS_LEN];
        let args = [int_arg(fd), addr_of(&b), 1];
        self.syscall(fsnr::FSTATVFS1, &args, &mut [Buf::Out(&mut b)])?;
        Ok(Statvfs::parse(&b))
    }

    /// `getvfsstat(buf, bufsize, ST_WAIT)` (`__getvfsstat90`) — every mount, with room for
    /// `max` of them.
    pub fn getvfsstat(&mut self, max: usize) -> Result<Vec<Statvfs>> {
        let mut b = vec![0u8; STATVFS_LEN * max];
        let args = [addr_of(&b), b.len() as u64, 1];
        let n = self.syscall(fsnr::GETVFSSTAT, &args, &mut [Buf::Out(&mut b)])?[0] as usize;
        Ok(b.chunks(STATVFS_LEN).take(n).map(Statvfs::parse).collect())
    }

    /// `pipe()` — `(read end, write end)`.
    pub fn pipe(&mut self) -> Result<(i32, i32)> {
        let r = self.syscall(fsnr::PIPE, &[], &mut [])?;
        Ok((r[0] as i32, r[1] as i32))
    }

    /// `pipe2(fildes, flags)` — `(read end, write end)`.
    pub fn pipe2(&mut self, flags: i32) -> Result<(i32, i32)> {
        let mut fds = [0u8; 8];
        let args = [addr_of(&fds), int_arg(flags)];
        self.syscall(fsnr::PIPE2, &args, &mut [Buf::Out(&mut fds)])?;
        Ok((u32_at(&fds, 0) as i32, u32_at(&fds, 4) as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_layout() {
        let mut b = [0u8; STAT_LEN];
        b[0..8].copy_from_slice(&7u64.to_le_bytes());
        b[8..12].copy_from_slice(&0o100644u32.to_le_bytes());
        b[16..24].copy_from_slice(&42u64.to_le_bytes());
        b[24..28].copy_from_slice(&3u32.to_le_bytes());
        b[64..72].copy_from_slice(&1_700_000_000u64.to_le_bytes());
        b[72..80].copy_from_slice(&5u64.to_le_bytes());
        b[112..120].copy_from_slice(&4096u64.to_le_bytes());
        b[128..132].copy_from_slice(&512u32.to_le_bytes());
        let s = Stat::parse(&b);
        assert_eq!((s.dev, s.mode, s.ino, s.nlink), (7, 0o100644, 42, 3));
        assert_eq!(
            (s.mtime, s.size, s.blksize),
            ((1_700_000_000, 5), 4096, 512)
        );
    }

    #[test]
    fn dirent_records() {
        let mut b = Vec::new();
        for (ino, name) in [(5u64, &b"a"[..]), (6, b"hello-world")] {
            let reclen = (13 + name.len() + 1 + 7) & !7;
            let start = b.len();
            b.extend_from_slice(&ino.to_le_bytes());
            b.extend_from_slice(&(reclen as u16).to_le_bytes());
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.push(8);
            b.extend_from_slice(name);
            b.resize(start + reclen, 0);
        }
        let d = parse_dirents(&b).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[1].fileno, d[1].typ, d[1].name.as_slice()),
            (6, 8, &b"hello-world"[..])
        );
        assert!(parse_dirents(&b[..20]).is_none());
    }
}
