//! Extended attributes (vfs_xattr.c): extattrctl and the `extattr_{get,set,delete,list}`
//! calls on paths, links and descriptors.
//!
//! None of the file systems here keeps extended attributes (NetBSD's memory file systems have none
//! in NetBSD either: their `VOP_GETEXTATTR` is `genfs_eopnotsupp`; a rump kernel's disk file
//! system is built without `UFS_EXTATTR`), so every call that reaches a vnode ends in `EOPNOTSUPP`
//! — which `cp -p` and `mv` take as "nothing to copy". The arguments are still checked in NetBSD's
//! order first: the attribute name (`EFAULT`, `ENAMETOOLONG` past 254 bytes), the path or
//! descriptor (`ENOENT`, `EBADF`, `EINVAL` for a non-vnode), a buffer size over `INT_MAX`.

use super::{at, Args, Ctx, SysResult};
use crate::abi::AT_FDCWD;
use crate::{copy, Errno, Result, UserMem};

/// `EXTATTR_MAXNAMELEN` (`KERNEL_NAME_MAX`): the name buffer, NUL included.
const EXTATTR_MAXNAMELEN: usize = 255;

/// How the vnode is named: a path followed, a path not followed, a descriptor.
#[derive(Clone, Copy)]
pub enum Target {
    /// `*_file`: a path, symbolic links followed.
    File,
    /// `*_link`: a path, a final symbolic link itself.
    Link,
    /// `*_fd`: a descriptor.
    Fd,
}

/// The operation on the vnode.
#[derive(Clone, Copy)]
pub enum Op {
    /// `extattr_get_*(target, ns, name, data, nbytes)`.
    Get,
    /// `extattr_set_*(target, ns, name, data, nbytes)`.
    Set,
    /// `extattr_delete_*(target, ns, name)`.
    Delete,
    /// `extattr_list_*(target, ns, data, nbytes)`.
    List,
}

/// Resolves the target vnode (`namei_simple_user` or `fd_getvnode`) and drops it: the
/// lookup's errors are the call's.
async fn resolve<M: UserMem>(c: &Ctx<'_, M>, t: Target, arg: u64) -> Result<()> {
    match t {
        Target::Fd => at::fd_vnode(c, arg as u32 as i32).map(drop),
        Target::File => at::lookup(c, AT_FDCWD, arg, true).await.map(drop),
        Target::Link => at::lookup(c, AT_FDCWD, arg, false).await.map(drop),
    }
}

/// The `extattr_*` calls: name, target, then the vnode operation, which no file system
/// here supports (`EOPNOTSUPP`); `extattr_get_file(2)`.
pub async fn extattr<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>, t: Target, op: Op) -> SysResult {
    at::vfs(c)?;
    if !matches!(op, Op::List) {
        copy::copyinstr(c.mem, a.word(2), EXTATTR_MAXNAMELEN).await?;
    }
    resolve(c, t, a.word(0)).await?;
    let (data, nbytes) = match op {
        Op::Get | Op::Set => (a.word(3), a.word(4)),
        Op::List => (a.word(2), a.word(3)),
        Op::Delete => (0, 0),
    };
    // extattr_{get,list}_vp check the size only with a buffer, extattr_set_vp always.
    let sized = matches!(op, Op::Set) || (data != 0 && !matches!(op, Op::Delete));
    if sized && nbytes > i32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EOPNOTSUPP)
}

/// `extattrctl(path, cmd, filename, attrnamespace, attrname)` — configures a file system's
/// extended attributes: the name if given, the path, the backing file if given, then
/// `VFS_EXTATTRCTL`, which no file system here has (`EOPNOTSUPP`); `extattrctl(2)`.
pub async fn extattrctl<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    at::vfs(c)?;
    if a.word(4) != 0 {
        copy::copyinstr(c.mem, a.word(4), EXTATTR_MAXNAMELEN).await?;
    }
    resolve(c, Target::File, a.word(0)).await?;
    if a.word(2) != 0 {
        resolve(c, Target::File, a.word(2)).await?;
    }
    Err(Errno::EOPNOTSUPP)
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::testutil::Fixture;
    use crate::Errno;

    #[test]
    fn every_call_checks_its_arguments_then_is_not_supported() {
        let f = Fixture::new();
        f.mem.map(0x1000, b"/\0");
        f.mem.map(0x1100, b"user.x\0");
        f.mem.map(0x1200, b"/nonexistent\0");
        f.mem.map(0x2000, &[b'a'; 300]);
        for nr in [
            SYS_extattr_get_file,
            SYS_extattr_set_file,
            SYS_extattr_get_link,
        ] {
            let e = f.err(nr, &[0x1000, 1, 0x1100, 0, 0]);
            assert_eq!(e, Errno::EOPNOTSUPP, "{nr}");
            assert_eq!(f.err(nr, &[0x1200, 1, 0x1100, 0, 0]), Errno::ENOENT);
            assert_eq!(f.err(nr, &[0x1000, 1, 0x2000, 0, 0]), Errno::ENAMETOOLONG);
            assert_eq!(f.err(nr, &[0x1000, 1, 0, 0, 0]), Errno::EFAULT);
        }
        assert_eq!(
            f.err(SYS_extattr_set_fd, &[1, 1, 0x1100, 0, 1 << 31]),
            Errno::EINVAL
        );
        assert_eq!(
            f.err(SYS_extattr_get_fd, &[1, 1, 0x1100, 0, 1 << 31]),
            Errno::EINVAL
        );
        assert_eq!(
            f.err(SYS_extattr_get_fd, &[1, 1, 0x1100, 9, 1 << 31]),
            Errno::EINVAL
        );
        assert_eq!(f.err(SYS_extattr_delete_fd, &[99, 1, 0x1100]), Errno::EBADF);
        assert_eq!(f.err(SYS_extattr_list_fd, &[99, 1, 0, 0]), Errno::EBADF);
        assert_eq!(
            f.err(SYS_extattr_list_file, &[0x1000, 1, 0, 0]),
            Errno::EOPNOTSUPP
        );
        assert_eq!(
            f.err(SYS_extattr_list_link, &[0x1200, 1, 0, 0]),
            Errno::ENOENT
        );
        assert_eq!(
            f.err(SYS_extattr_delete_link, &[0x1000, 1, 0x1100]),
            Errno::EOPNOTSUPP
        );
        assert_eq!(
            f.err(SYS_extattrctl, &[0x1000, 1, 0, 1, 0]),
            Errno::EOPNOTSUPP
        );
        assert_eq!(
            f.err(SYS_extattrctl, &[0x1200, 1, 0, 1, 0x1100]),
            Errno::ENOENT
        );
        assert_eq!(
            f.err(SYS_extattrctl, &[0x1000, 1, 0x1200, 1, 0]),
            Errno::ENOENT
        );
    }
}
