//! Permission checks (`genfs_can_access`, kauth's superuser rules) for a process's credentials.

use super::{Attr, VType};
use crate::abi::{R_OK, W_OK, X_OK};
use crate::proc::Cred;
use crate::{Errno, Result};

/// Whether the credentials are the superuser's.
pub fn is_root(cred: &Cred) -> bool {
    cred.euid == 0
}

/// Whether `cred` is in group `gid` (effective group; supplementary groups join here).
pub fn groupmember(cred: &Cred, gid: u32) -> bool {
    cred.in_group(gid)
}

/// Whether `cred` owns a file with attributes `a` (or is root).
pub fn owns(cred: &Cred, a: &Attr) -> bool {
    is_root(cred) || cred.euid == a.uid
}

/// `EPERM` when `vn` carries one of the `mask` flags (`IMMUTABLE`, `APPEND`) on a file
/// system that acts on them (NetBSD's memory and disk file systems; the root file system only
/// stores them).
pub fn flags_allow(vn: &super::Vnode, mask: u32) -> Result<()> {
    if vn.attr().flags & mask == 0 {
        return Ok(());
    }
    match vn.mount() {
        Ok(m) if !m.params().enforces_flags => Ok(()),
        _ => Err(Errno::EPERM),
    }
}

/// `VOP_ACCESS`: checks `want` (`R_OK`/`W_OK`/`X_OK` bits) against the owner, group or
/// other bits. Root passes, except that executing a non-directory needs some `x` bit.
pub fn check(cred: &Cred, vtype: VType, a: &Attr, want: u32) -> Result<()> {
    let want = want & (R_OK | W_OK | X_OK);
    if is_root(cred) {
        if want & X_OK != 0 && vtype != VType::Dir && a.mode & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        return Ok(());
    }
    let bits = if cred.euid == a.uid {
        (a.mode >> 6) & 7
    } else if groupmember(cred, a.gid) {
        (a.mode >> 3) & 7
    } else {
        a.mode & 7
    };
    if want & !bits != 0 {
        Err(Errno::EACCES)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(uid: u32, gid: u32) -> Cred {
        Cred {
            uid,
            euid: uid,
            gid,
            egid: gid,
            ..Cred::default()
        }
    }

    #[test]
    fn owner_group_other_and_root() {
        let a = Attr {
            mode: 0o640,
            uid: 10,
            gid: 20,
            ..Attr::default()
        };
        assert_eq!(check(&cred(10, 1), VType::Reg, &a, R_OK | W_OK), Ok(()));
        assert_eq!(
            check(&cred(10, 1), VType::Reg, &a, X_OK),
            Err(Errno::EACCES)
        );
        assert_eq!(check(&cred(11, 20), VType::Reg, &a, R_OK), Ok(()));
        assert_eq!(
            check(&cred(11, 20), VType::Reg, &a, W_OK),
            Err(Errno::EACCES)
        );
        assert_eq!(
            check(&cred(11, 21), VType::Reg, &a, R_OK),
            Err(Errno::EACCES)
        );
        // The owner's bits decide even when the group's would allow more.
        let b = Attr { mode: 0o070, ..a };
        assert_eq!(
            check(&cred(10, 20), VType::Reg, &b, R_OK),
            Err(Errno::EACCES)
        );
        assert_eq!(check(&cred(0, 0), VType::Reg, &b, R_OK | W_OK), Ok(()));
        assert_eq!(check(&cred(0, 0), VType::Reg, &a, X_OK), Err(Errno::EACCES));
        assert_eq!(check(&cred(0, 0), VType::Dir, &a, X_OK), Ok(()));
        assert!(owns(&cred(10, 0), &a) && !owns(&cred(11, 20), &a));
    }
}
