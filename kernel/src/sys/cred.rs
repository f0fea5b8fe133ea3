//! Credential syscalls (kern_prot.c): set*id, setre*id, setgroups/getgroups, login name.
//!
//! NetBSD's rules (`do_setresuid`/`do_setresgid`): each new id must equal one of the current
//! ids the call allows, unless the caller is the superuser (euid 0, secmodel_suser's
//! `KAUTH_PROCESS_SETID`), else `EPERM`; `(uid_t)-1` leaves an id unchanged. A call that
//! changes something marks the process `PK_SUGID` (issetugid(2) then returns 1); setgroups
//! always does.

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{MAXLOGNAME, NGROUPS_MAX};
use crate::proc::Cred;
use crate::{copy, Errno, UserMem};

/// `(uid_t)-1`: no change.
const NOCHANGE: u32 = u32::MAX;

/// Which current ids a new real (R), effective (E) or saved (S) id may equal (`ID_*_EQ_*`).
#[derive(Clone, Copy)]
struct Allow {
    r: [bool; 3],
    e: [bool; 3],
    s: [bool; 3],
}

/// `[real, effective, saved]` of one kind of id.
type Ids = [u32; 3];

/// The check and update of `do_setresuid`/`do_setresgid` on `cur`; `None` = refused.
fn setres(cur: Ids, new: Ids, allow: Allow, root: bool) -> Option<Ids> {
    let ok = |v: u32, which: [bool; 3]| v == NOCHANGE || (0..3).any(|i| which[i] && v == cur[i]);
    let allowed = ok(new[0], allow.r) && ok(new[1], allow.e) && ok(new[2], allow.s);
    if !allowed && !root {
        return None;
    }
    let mut out = cur;
    for i in 0..3 {
        if new[i] != NOCHANGE {
            out[i] = new[i];
        }
    }
    Some(out)
}

const ONLY_REAL: Allow = Allow {
    r: [true, false, false],
    e: [true, false, false],
    s: [true, false, false],
};
const EUID_RS: Allow = Allow {
    r: [false; 3],
    e: [true, false, true],
    s: [false; 3],
};
const RE_RULES: Allow = Allow {
    r: [true, true, false],
    e: [true, true, true],
    s: [true, true, true],
};

fn uids(c: &Cred) -> Ids {
    [c.uid, c.euid, c.svuid]
}

fn gids(c: &Cred) -> Ids {
    [c.gid, c.egid, c.svgid]
}

/// Applies `new` user (`user` true) or group ids to the caller's credentials.
fn change<M>(c: &Ctx<'_, M>, user: bool, new: impl Fn(&Cred) -> Ids, allow: Allow) -> SysResult {
    c.p.modify_cred(|cr| {
        let cur = if user { uids(cr) } else { gids(cr) };
        let ids = setres(cur, new(cr), allow, cr.is_root()).ok_or(Errno::EPERM)?;
        let mut out = *cr;
        if user {
            [out.uid, out.euid, out.svuid] = ids;
        } else {
            [out.gid, out.egid, out.svgid] = ids;
        }
        Ok(out)
    })?;
    ret(0)
}

/// `setuid(uid)` — sets the real, effective and saved user id; `setuid(2)`. Without
/// privilege only to the real user id.
pub fn setuid<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let id = a.uint(0);
    change(c, true, |_| [id; 3], ONLY_REAL)
}

/// `seteuid(euid)` — sets the effective user id (to the real or saved one without
/// privilege); `seteuid(2)`.
pub fn seteuid<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let id = a.uint(0);
    change(c, true, |_| [NOCHANGE, id, NOCHANGE], EUID_RS)
}

/// `setgid(gid)` — sets the real, effective and saved group id; `setgid(2)`.
pub fn setgid<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let id = a.uint(0);
    change(c, false, |_| [id; 3], ONLY_REAL)
}

/// `setegid(egid)` — sets the effective group id; `setegid(2)`.
pub fn setegid<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let id = a.uint(0);
    change(c, false, |_| [NOCHANGE, id, NOCHANGE], EUID_RS)
}

/// `setreuid(ruid, euid)` — sets the real and effective user ids; the saved id follows the
/// new effective id when the real id changes; `setreuid(2)`.
pub fn setreuid<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (r, e) = (a.uint(0), a.uint(1));
    change(c, true, |cr| re(uids(cr), r, e), RE_RULES)
}

/// `setregid(rgid, egid)` — as setreuid for group ids; `setregid(2)`.
pub fn setregid<M>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (r, e) = (a.uint(0), a.uint(1));
    change(c, false, |cr| re(gids(cr), r, e), RE_RULES)
}

/// `sys_setreuid`'s new ids: −1 means the current one; the saved id becomes the new
/// effective id if the real id changes.
fn re(cur: Ids, r: u32, e: u32) -> Ids {
    let r = if r == NOCHANGE { cur[0] } else { r };
    let e = if e == NOCHANGE { cur[1] } else { e };
    let s = if r == cur[0] { NOCHANGE } else { e };
    [r, e, s]
}

/// `getgroups(gidsetsize, gidset)` — the supplementary groups; `gidsetsize` 0 returns
/// only their number, a smaller one `EINVAL`; `getgroups(2)`.
pub async fn getgroups<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let cred = c.p.cred();
    let n = cred.ngroups;
    let size = a.int(0);
    if size == 0 {
        return ret(n as i64);
    }
    if size < n as i32 {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = cred.groups().iter().flat_map(|g| g.to_le_bytes()).collect();
    copy::copyout(c.mem, a.word(1), &bytes).await?;
    ret(n as i64)
}

/// `setgroups(gidsetsize, gidset)` — sets the supplementary groups (at most
/// `NGROUPS_MAX`, 16, else `EINVAL`); the list is copied in before the privilege check
/// (`EPERM`); `setgroups(2)`.
pub async fn setgroups<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let n = a.int(0) as u32 as usize;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = copy::copyin(c.mem, a.word(1), n * 4).await?;
    c.p.modify_cred(|cr| {
        if !cr.is_root() {
            return Err(Errno::EPERM);
        }
        let mut out = *cr;
        out.groups = [u32::MAX; NGROUPS_MAX];
        for (g, b) in out.groups.iter_mut().zip(raw.chunks_exact(4)) {
            *g = u32::from_le_bytes(b.try_into().expect("4 bytes"));
        }
        out.ngroups = n;
        Ok(out)
    })?;
    c.p.set_sugid();
    ret(0)
}

/// `__getlogin(namebuf, namelen)` — the session's login name, `namelen` bytes of it (at
/// most `MAXLOGNAME`, NUL-padded); `getlogin(2)`. Every client process is in the session
/// of proc0, so the name is shared by all of them (as in a NetBSD rump kernel).
pub async fn getlogin<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let name = c.k.login();
    let n = (a.word(1) as usize).min(MAXLOGNAME);
    copy::copyout(c.mem, a.word(0), &name[..n]).await?;
    ret(0)
}

/// `__setlogin(namebuf)` — sets the session's login name (superuser only, `EPERM`); a
/// name of `MAXLOGNAME` bytes or more is `EINVAL`; `setlogin(2)`.
pub async fn setlogin<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    if !c.p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    let name = match copy::copyinstr(c.mem, a.word(0), MAXLOGNAME + 1).await {
        Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        r => r?,
    };
    let mut login = [0u8; MAXLOGNAME];
    let n = name.len().min(MAXLOGNAME);
    login[..n].copy_from_slice(&name[..n]);
    c.k.set_login(login);
    ret(0)
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::testutil::{block_on, int, Fixture, Req, TestMem};
    use crate::Errno;

    fn ids(f: &Fixture) -> (u32, u32, u32, u32, u32, u32) {
        let c = f.p.cred();
        (c.uid, c.euid, c.svuid, c.gid, c.egid, c.svgid)
    }

    #[test]
    fn root_sets_anything_then_the_rules_apply() {
        let f = Fixture::new();
        // (uid_t)-1 changes nothing and does not taint.
        assert_eq!(f.ok(SYS_setuid, &[u64::from(u32::MAX)]), 0);
        assert_eq!(f.ok(SYS_issetugid, &[]), 0);
        assert_eq!(f.ok(SYS_setgid, &[50]), 0);
        assert_eq!(f.ok(SYS_issetugid, &[]), 1);
        assert_eq!(f.ok(SYS_setuid, &[100]), 0);
        assert_eq!(ids(&f), (100, 100, 100, 50, 50, 50));
        assert_eq!(f.call(SYS_getuid, &[]), Ok([100, 100]));
        // No way back without privilege; the same id is fine.
        assert_eq!(f.err(SYS_setuid, &[0]), Errno::EPERM);
        assert_eq!(f.err(SYS_seteuid, &[0]), Errno::EPERM);
        assert_eq!(f.err(SYS_setgid, &[0]), Errno::EPERM);
        assert_eq!(f.ok(SYS_setuid, &[100]), 0);
        assert_eq!(f.ok(SYS_setegid, &[50]), 0);
    }

    #[test]
    fn seteuid_keeps_the_saved_id_for_the_way_back() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_seteuid, &[100]), 0);
        assert_eq!(ids(&f), (0, 100, 0, 0, 0, 0));
        assert_eq!(f.ok(SYS_issetugid, &[]), 1);
        // Not root now: only the real or saved uid.
        assert_eq!(f.err(SYS_seteuid, &[200]), Errno::EPERM);
        assert_eq!(f.err(SYS_setgid, &[5]), Errno::EPERM);
        assert_eq!(f.ok(SYS_seteuid, &[0]), 0);
        assert_eq!(f.ok(SYS_setegid, &[7]), 0);
        assert_eq!(ids(&f), (0, 0, 0, 0, 7, 0));
        // setuid to the real uid is allowed even when the euid is not root.
        assert_eq!(f.ok(SYS_seteuid, &[100]), 0);
        assert_eq!(f.ok(SYS_setuid, &[0]), 0);
        assert_eq!(ids(&f), (0, 0, 0, 0, 7, 0));
    }

    #[test]
    fn setreuid_swaps_and_moves_the_saved_id() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_setreuid, &[10, 20]), 0);
        assert_eq!(ids(&f), (10, 20, 20, 0, 0, 0));
        assert_eq!(f.ok(SYS_setreuid, &[20, 10]), 0);
        assert_eq!(ids(&f), (20, 10, 10, 0, 0, 0));
        assert_eq!(f.err(SYS_setreuid, &[30, int(-1)]), Errno::EPERM);
        // -1 keeps; the real id unchanged keeps the saved one.
        assert_eq!(f.ok(SYS_setreuid, &[int(-1), 20]), 0);
        assert_eq!(ids(&f), (20, 20, 10, 0, 0, 0));
        let g = Fixture::new();
        assert_eq!(g.ok(SYS_setregid, &[3, 4]), 0);
        assert_eq!(ids(&g), (0, 0, 0, 3, 4, 4));
    }

    #[test]
    fn groups_count_size_and_privilege() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_getgroups, &[0, 0]), 0);
        let list: Vec<u8> = [5u32, 6].iter().flat_map(|g| g.to_le_bytes()).collect();
        f.mem.map(0x1000, &list);
        assert_eq!(f.err(SYS_setgroups, &[17, 0x1000]), Errno::EINVAL);
        assert_eq!(f.err(SYS_setgroups, &[int(-1), 0x1000]), Errno::EINVAL);
        assert_eq!(f.err(SYS_setgroups, &[2, 0]), Errno::EFAULT);
        assert_eq!(f.ok(SYS_issetugid, &[]), 0);
        assert_eq!(f.ok(SYS_setgroups, &[2, 0x1000]), 0);
        assert_eq!(f.ok(SYS_issetugid, &[]), 1);
        assert_eq!(f.ok(SYS_getgroups, &[0, 0]), 2);
        assert_eq!(f.err(SYS_getgroups, &[1, 0x2000]), Errno::EINVAL);
        assert_eq!(f.err(SYS_getgroups, &[int(-1), 0x2000]), Errno::EINVAL);
        f.mem.map(0x2000, &[0xff; 64]);
        assert_eq!(f.ok(SYS_getgroups, &[16, 0x2000]), 2);
        assert_eq!(
            f.mem.read(0x2000, 12),
            [5, 0, 0, 0, 6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
        );
        assert!(f.p.cred().in_group(6));
        // Emptying is allowed; a non-root caller is refused after the copy-in.
        assert_eq!(f.ok(SYS_setgroups, &[0, 0]), 0);
        assert_eq!(f.ok(SYS_seteuid, &[1]), 0);
        f.mem.clear_requests();
        assert_eq!(f.err(SYS_setgroups, &[1, 0x1000]), Errno::EPERM);
        assert_eq!(f.mem.requests(), vec![Req::In(0x1000, 4)]);
    }

    #[test]
    fn login_name_is_shared_and_root_only() {
        let f = Fixture::new();
        f.mem.map(0x1000, &[0xee; 32]);
        assert_eq!(f.ok(SYS___getlogin, &[0x1000, 32]), 0);
        assert_eq!(f.mem.read(0x1000, 17), [&[0u8; 16][..], &[0xee]].concat());
        f.mem.map(0x2000, b"alice\0");
        assert_eq!(f.ok(SYS___setlogin, &[0x2000]), 0);
        let q = f.k.spawn_guest(b"q").unwrap();
        let mem = TestMem::new();
        mem.map_zero(0x1000, 8);
        let out = block_on(f.k.syscall(&q, &mem, SYS___getlogin, &[0x1000, 6, 0, 0, 0, 0, 0, 0]));
        assert_eq!(out.result, Ok([0, 0]));
        assert_eq!(mem.read(0x1000, 8), b"alice\0\0\0");
        f.mem.map(0x3000, b"abcdefghijklmnopq\0");
        assert_eq!(f.err(SYS___setlogin, &[0x3000]), Errno::EINVAL);
        assert_eq!(f.ok(SYS___setlogin, &[0x3001]), 0);
        assert_eq!(&f.k.login(), b"bcdefghijklmnopq");
        assert_eq!(f.ok(SYS_setuid, &[5]), 0);
        assert_eq!(f.err(SYS___setlogin, &[0x2000]), Errno::EPERM);
    }
}
