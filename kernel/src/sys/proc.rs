//! Process identity syscalls (kern_prot.c, vfs_syscalls.c `umask`).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::ALLPERMS;

/// `getpid()` — the process id, and the parent's in `retval[1]` (`getpid_with_ppid`).
pub fn getpid<M>(c: &Ctx<'_, M>) -> SysResult {
    Ok([i64::from(c.p.pid()), i64::from(c.p.ppid())])
}

/// `getppid()` — the parent process id.
pub fn getppid<M>(c: &Ctx<'_, M>) -> SysResult {
    ret(i64::from(c.p.ppid()))
}

/// `getuid()` — the real user id, and the effective one in `retval[1]`.
pub fn getuid<M>(c: &Ctx<'_, M>) -> SysResult {
    let cr = c.p.cred();
    Ok([i64::from(cr.uid), i64::from(cr.euid)])
}

/// `geteuid()` — the effective user id.
pub fn geteuid<M>(c: &Ctx<'_, M>) -> SysResult {
    ret(i64::from(c.p.cred().euid))
}

/// `getgid()` — the real group id, and the effective one in `retval[1]`.
pub fn getgid<M>(c: &Ctx<'_, M>) -> SysResult {
    let cr = c.p.cred();
    Ok([i64::from(cr.gid), i64::from(cr.egid)])
}

/// `getegid()` — the effective group id.
pub fn getegid<M>(c: &Ctx<'_, M>) -> SysResult {
    ret(i64::from(c.p.cred().egid))
}

/// `issetugid()` — 1 if the process changed credentials (`PK_SUGID`), else 0.
pub fn issetugid<M>(c: &Ctx<'_, M>) -> SysResult {
    ret(i64::from(c.p.sugid()))
}

/// `umask(newmask)` — sets the creation mask (`& ALLPERMS`), returns the old one.
pub fn umask<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    ret(i64::from(c.p.swap_umask(a.uint(0) & ALLPERMS)))
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::testutil::Fixture;

    #[test]
    fn ids_and_second_retvals() {
        let f = Fixture::new();
        assert_eq!(f.call(SYS_getpid, &[]), Ok([2, 1]));
        assert_eq!(f.call(SYS_getppid, &[]), Ok([1, 0]));
        assert_eq!(f.call(SYS_getuid, &[]), Ok([0, 0]));
        assert_eq!(f.call(SYS_geteuid, &[]), Ok([0, 0]));
        assert_eq!(f.call(SYS_getgid, &[]), Ok([0, 0]));
        assert_eq!(f.call(SYS_getegid, &[]), Ok([0, 0]));
        assert_eq!(f.call(SYS_issetugid, &[]), Ok([0, 0]));
        let q = f.k.spawn_guest(b"other").unwrap();
        let mem = crate::testutil::TestMem::new();
        let out = crate::testutil::block_on(f.k.syscall(&q, &mem, SYS_getpid, &[0; 8]));
        assert_eq!(out.result, Ok([3, 1]));
    }

    #[test]
    fn umask_returns_old_and_keeps_allperms() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_umask, &[0o077]), 0o022);
        assert_eq!(f.ok(SYS_umask, &[0o177777]), 0o077);
        assert_eq!(f.ok(SYS_umask, &[0]), 0o7777);
        assert_eq!(f.p.umask(), 0);
    }
}
