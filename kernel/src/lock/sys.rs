//! The syscall halves: `struct flock` (netbsd-abi.md §4.7), `do_fcntl_lock`, `sys_flock`.

use super::engine::{FileLockOwner, LockType, Locks, Owner, Range};
use crate::abi::{FLOCK_SIZE, F_GETLK, F_SETLK, F_SETLKW, SEEK_CUR, SEEK_END, SEEK_SET};
use crate::file::File;
use crate::{Errno, Proc, Result};

/// `F_RDLCK`.
pub const F_RDLCK: i16 = 1;
/// `F_UNLCK`.
pub const F_UNLCK: i16 = 2;
/// `F_WRLCK`.
pub const F_WRLCK: i16 = 3;
/// Shared flock.
pub const LOCK_SH: i32 = 1;
/// Exclusive flock.
pub const LOCK_EX: i32 = 2;
/// Don't block.
pub const LOCK_NB: i32 = 4;
/// Unlock.
pub const LOCK_UN: i32 = 8;

/// `struct flock` (24 bytes on amd64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flock {
    /// `l_start`.
    pub start: i64,
    /// `l_len` (0: to end of file).
    pub len: i64,
    /// `l_pid`.
    pub pid: i32,
    /// `l_type`.
    pub ty: i16,
    /// `l_whence`.
    pub whence: i16,
}

impl Flock {
    /// From the client's bytes (shorter input reads as zeros).
    pub fn decode(b: &[u8]) -> Flock {
        let mut a = [0u8; FLOCK_SIZE];
        let n = b.len().min(FLOCK_SIZE);
        a[..n].copy_from_slice(&b[..n]);
        Flock {
            start: i64::from_le_bytes(a[0..8].try_into().expect("8")),
            len: i64::from_le_bytes(a[8..16].try_into().expect("8")),
            pid: i32::from_le_bytes(a[16..20].try_into().expect("4")),
            ty: i16::from_le_bytes(a[20..22].try_into().expect("2")),
            whence: i16::from_le_bytes(a[22..24].try_into().expect("2")),
        }
    }

    /// The client's bytes.
    pub fn encode(&self) -> [u8; FLOCK_SIZE] {
        let mut b = [0u8; FLOCK_SIZE];
        b[0..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..20].copy_from_slice(&self.pid.to_le_bytes());
        b[20..22].copy_from_slice(&self.ty.to_le_bytes());
        b[22..24].copy_from_slice(&self.whence.to_le_bytes());
        b
    }

    /// `lf_advlock`'s conversion to bytes `start..=end` of a file of `size` bytes:
    /// `l_len` 0 is "to end of file", a negative `l_len` covers the bytes before `l_start`;
    /// a bad `l_whence` or a start below 0 is `EINVAL` (and so is an end past `i64::MAX`).
    pub fn range(&self, size: i64) -> Result<Range> {
        let mut start = match i32::from(self.whence) {
            SEEK_SET | SEEK_CUR => self.start,
            SEEK_END => size.checked_add(self.start).ok_or(Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        let end = match self.len {
            0 => i64::MAX,
            n if n > 0 => start.checked_add(n - 1).ok_or(Errno::EINVAL)?,
            n => {
                let end = start.checked_sub(1).ok_or(Errno::EINVAL)?;
                start = start.checked_add(n).ok_or(Errno::EINVAL)?;
                end
            }
        };
        if start < 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Range { start, end })
    }
}

/// `do_fcntl_lock` for an open vnode file `fp` of object `key` and current size `size`:
/// `F_GETLK` (fills `fl` with the blocking lock, or sets `l_type` to `F_UNLCK`), `F_SETLK`,
/// `F_SETLKW`. `SEEK_CUR` is relative to the file offset; a read lock needs the file open
/// for reading and a write lock for writing (`EBADF`). Records count for `p`'s effective uid
/// (`ENOMEM` past [`super::LOCKS_PER_UID_MAX`]). The caller copies `fl` out after `F_GETLK`.
pub async fn fcntl_lock(
    locks: &Locks,
    p: &Proc,
    fp: &File,
    key: u64,
    size: i64,
    cmd: i32,
    fl: &mut Flock,
) -> Result<()> {
    if i32::from(fl.whence) == SEEK_CUR {
        fl.start = fl.start.checked_add(fp.offset()).ok_or(Errno::EINVAL)?;
    }
    let owner = Owner::Proc(p.pid());
    let uid = p.cred().euid;
    match cmd {
        F_SETLK | F_SETLKW => {
            let ty = match fl.ty {
                F_RDLCK if !fp.readable() => return Err(Errno::EBADF),
                F_WRLCK if !fp.writable() => return Err(Errno::EBADF),
                F_RDLCK => LockType::Read,
                F_WRLCK => LockType::Write,
                F_UNLCK => {
                    let range = fl.range(size)?;
                    return locks.clear(key, owner, uid, range);
                }
                _ => return Err(Errno::EINVAL),
            };
            let range = fl.range(size)?;
            if cmd == F_SETLKW {
                locks.set_wait(p, key, owner, range, ty).await
            } else {
                locks.set(key, owner, uid, range, ty)
            }
        }
        F_GETLK => {
            let ty = match fl.ty {
                F_WRLCK => LockType::Write,
                F_RDLCK | F_UNLCK => LockType::Read,
                _ => return Err(Errno::EINVAL),
            };
            let range = fl.range(size)?;
            match locks.get(key, owner, uid, range, ty) {
                Some(h) => {
                    fl.ty = match h.ty {
                        LockType::Read => F_RDLCK,
                        LockType::Write => F_WRLCK,
                    };
                    fl.whence = SEEK_SET as i16;
                    fl.start = h.range.start;
                    fl.len = match h.range.end {
                        i64::MAX => 0,
                        end => end - h.range.start + 1,
                    };
                    fl.pid = match h.owner {
                        Owner::Proc(pid) => pid,
                        Owner::File(_) => -1,
                    };
                }
                None => fl.ty = F_UNLCK,
            }
            Ok(())
        }
        _ => Err(Errno::EINVAL),
    }
}

/// `flock(fd, how)` on an open vnode file whose flock identity is `owner`: `LOCK_SH`,
/// `LOCK_EX` (waiting unless `LOCK_NB`; `EAGAIN` then), `LOCK_UN`; else `EINVAL`. The
/// caller refuses files that are not vnodes with `EOPNOTSUPP`.
pub async fn flock(p: &Proc, owner: &FileLockOwner, how: i32) -> Result<()> {
    let (locks, key) = (owner.locks(), owner.key());
    let uid = p.cred().euid;
    let ty = match how & !LOCK_NB {
        LOCK_UN => {
            // The whole range never splits nor counts against a limit: this cannot fail.
            let _ = locks.clear(key, owner.owner(), uid, Range::ALL);
            return Ok(());
        }
        LOCK_EX => LockType::Write,
        LOCK_SH => LockType::Read,
        _ => return Err(Errno::EINVAL),
    };
    if how & LOCK_NB != 0 {
        locks.set(key, owner.owner(), uid, Range::ALL, ty)
    } else {
        locks.set_wait(p, key, owner.owner(), Range::ALL, ty).await
    }
}
