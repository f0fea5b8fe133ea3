//! Resource limits (kern_resource.c): getrlimit, setrlimit.
//!
//! Limits are per process and inherited by fork. Enforced where they mean something here:
//! `RLIMIT_NOFILE` bounds the descriptor table, `RLIMIT_FSIZE` the size a write may reach
//! (`rw.rs`); the others are stored and reported (a rump kernel runs no code of its clients,
//! so CPU, stack, data and core limits have nothing to act on, as in NetBSD's rump kernel).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{Rlimit, RLIMIT_SIZE};
use crate::{copy, UserMem};

/// `getrlimit(which, rlp)` — a resource limit; unknown `which` → `EINVAL`; `getrlimit(2)`.
pub async fn getrlimit<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let rl = c.p.rlimit(a.uint(0))?;
    copy::copyout(c.mem, a.word(1), &rl.encode()).await?;
    ret(0)
}

/// `setrlimit(which, rlp)` — sets a resource limit (`dosetrlimit`: the copy first, then
/// `EINVAL`, `EPERM` for raising a hard limit without privilege); `setrlimit(2)`.
pub async fn setrlimit<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let b = copy::copyin(c.mem, a.word(1), RLIMIT_SIZE).await?;
    let new = Rlimit::decode(&b).ok_or(crate::Errno::EFAULT)?;
    c.mem.recycle(b);
    c.p.set_rlimit(a.uint(0), new, c.p.cred().is_root())?;
    ret(0)
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::abi::*;
    use crate::testutil::Fixture;
    use crate::Errno;

    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh address for each mapping (the test memory finds the first region mapped).
    fn fresh() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(0x10_0000);
        NEXT.fetch_add(0x100, Ordering::Relaxed)
    }

    fn put(f: &Fixture, cur: u64, max: u64) -> u64 {
        let addr = fresh();
        f.mem.map(addr, &Rlimit::new(cur, max).encode());
        addr
    }

    fn get(f: &Fixture, which: u64) -> Rlimit {
        let addr = fresh();
        f.mem.map_zero(addr, 16);
        assert_eq!(f.ok(SYS_getrlimit, &[which, addr]), 0);
        Rlimit::decode(&f.mem.read(addr, 16)).unwrap()
    }

    #[test]
    fn get_and_set_limits() {
        let f = Fixture::new();
        assert_eq!(get(&f, 8), Rlimit::new(128, 1772));
        assert_eq!(f.err(SYS_getrlimit, &[12, fresh()]), Errno::EINVAL);
        assert_eq!(f.err(SYS_getrlimit, &[8, 0]), Errno::EFAULT);
        assert_eq!(f.err(SYS_setrlimit, &[12, 0]), Errno::EFAULT);
        let rl = put(&f, 0, 0);
        assert_eq!(f.ok(SYS_setrlimit, &[RLIMIT_CORE as u64, rl]), 0);
        assert_eq!(get(&f, 4), Rlimit::new(0, 0));
        let rl = put(&f, 5, 4);
        assert_eq!(f.err(SYS_setrlimit, &[4, rl]), Errno::EINVAL);
    }

    #[test]
    fn nofile_bounds_the_descriptor_table() {
        let f = Fixture::new();
        let rl = put(&f, 5, 128);
        assert_eq!(f.ok(SYS_setrlimit, &[RLIMIT_NOFILE as u64, rl]), 0);
        assert_eq!(f.ok(SYS_dup, &[0]), 3);
        assert_eq!(f.ok(SYS_dup, &[0]), 4);
        assert_eq!(f.err(SYS_dup, &[0]), Errno::EMFILE);
        assert_eq!(f.err(SYS_dup2, &[0, 5]), Errno::EBADF);
        // Lowering below what is open keeps the open descriptors.
        let rl = put(&f, 1, 128);
        assert_eq!(f.ok(SYS_setrlimit, &[8, rl]), 0);
        assert_eq!(f.p.fd_count(), 5);
        assert_eq!(f.err(SYS_dup, &[0]), Errno::EMFILE);
    }

    #[test]
    fn limits_are_inherited_by_fork() {
        let f = Fixture::new();
        let rl = put(&f, 7, 9);
        assert_eq!(f.ok(SYS_setrlimit, &[RLIMIT_NOFILE as u64, rl]), 0);
        let prepared = f.k.prefork(&f.p).unwrap();
        assert_eq!(prepared.rlimit(RLIMIT_NOFILE), Ok(Rlimit::new(7, 9)));
        let child = f.k.adopt_fork(prepared, b"child").unwrap();
        assert_eq!(child.rlimit(RLIMIT_NOFILE), Ok(Rlimit::new(7, 9)));
        assert_eq!(child.fd.limit(), 7);
        let fresh = f.k.spawn_guest(b"fresh").unwrap();
        assert_eq!(fresh.rlimit(RLIMIT_NOFILE), Ok(Rlimit::new(128, 1772)));
    }
}
