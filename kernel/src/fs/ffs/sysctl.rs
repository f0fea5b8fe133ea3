//! FFS's sysctl nodes (`vfs.ffs`, `vfs.ufs.dirhash`), registered when `rumpfs_ffs` is
//! loaded, in NetBSD's order (the dynamic numbers depend on it).

use crate::sysctl::{Env, Mib, Spec, CTLFLAG_READWRITE, CTLTYPE_INT};
use crate::{Errno, Result};

const RW: u32 = CTLFLAG_READWRITE;

/// Registers one node; the tree is fixed, so a clash is a bug the unit tests catch.
fn reg(m: &Mib, parent: &[&str], spec: Spec) {
    let r = m.register(parent, spec);
    debug_assert!(r.is_ok(), "sysctl vfs.ffs: {r:?}");
}

/// What the `rumpfs_ffs` component adds (ffs_vfsops.c, ufs_dirhash.c): the clustering
/// switches NetBSD leaves unavailable (`EOPNOTSUPP`), and the dirhash tunables.
pub fn nodes(m: &Mib) {
    reg(m, &["vfs"], Spec::node("ffs", Some(1)).flags(0));
    let ffs = &["vfs", "ffs"][..];
    let notavail = |_: &Env<'_>| -> Result<Vec<u8>> { Err(Errno::EOPNOTSUPP) };
    for (name, num) in [
        ("doclusterread", 1),
        ("doclusterwrite", 2),
        ("doreallocblks", 3),
    ] {
        reg(
            m,
            ffs,
            Spec::func(name, Some(num), CTLTYPE_INT, 4, notavail).flags(RW),
        );
    }
    reg(m, ffs, Spec::int("log_changeopt", Some(5), 0).flags(RW));
    reg(
        m,
        ffs,
        Spec::int("extattr_autocreate", Some(6), 1024).flags(RW),
    );
    reg(m, &["vfs"], Spec::node("ufs", None).flags(0));
    reg(m, &["vfs", "ufs"], Spec::node("dirhash", None).flags(0));
    let dh = &["vfs", "ufs", "dirhash"][..];
    reg(m, dh, Spec::int("minblocks", None, 5).flags(RW));
    reg(m, dh, Spec::int("maxmem", None, 2 << 20).flags(RW));
    reg(m, dh, Spec::int("memused", None, 0).flags(0));
    reg(m, dh, Spec::int("docheck", None, 0).flags(RW));
}
