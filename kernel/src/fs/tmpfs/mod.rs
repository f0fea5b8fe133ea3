//! tmpfs (sys/fs/tmpfs, the `rumpfs_tmpfs` component): a memory file system mounted with
//! `struct tmpfs_args`, with a size and a node limit.
//!
//! The nodes are the memory nodes rumpfs uses (crate::vfs::memnode); tmpfs differs where a
//! client can see it: getdents lists `.` and `..` (cookies 0 and 1), inode numbers count
//! from 2 (the root) per mount, `st_dev` is the mount's `f_fsidx[0]`, `st_blksize` is a page,
//! statvfs reports pages of the size limit and nodes. File data is charged to a child budget
//! of the kernel's (`-r`) with the size limit (none: the kernel budget alone decides), so a
//! write gets `ENOSPC` at either; the node limit gives `ENOSPC` on creation. Unlike
//! NetBSD's tmpfs of the 2016 tree, FIFOs work (netbsd-abi.md §10).

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, Weak};

use crate::abi::{Statvfs, Timespec, ALLPERMS};
use crate::mem::Budget;
use crate::module::ExtFs;
use crate::vfs::memnode::{Dir, PAGE_SIZE};
use crate::vfs::ops::{BuildArgs, FsOps, FsType, MountParams};
use crate::vfs::{Attr, Body, Mount, NewMount, VType, Vnode};
use crate::{Errno, Result};

/// `TMPFS_ARGS_VERSION`.
pub const TMPFS_ARGS_VERSION: i32 = 1;
/// `sizeof(struct tmpfs_args)` on amd64.
pub const TMPFS_ARGS_SIZE: usize = 40;
/// Inode number of a tmpfs root; later nodes count up from it.
pub const ROOT_INO: u64 = 2;
/// `VNOVAL` as a 32-bit id: "no value", refused for the root's owner and group.
const VNOVAL32: u32 = u32::MAX;
/// Most nodes a tmpfs may be given (`INT_MAX`, as tmpfs caps `tm_nodes_max`).
const NODES_MAX: u64 = i32::MAX as u64;

/// `struct tmpfs_args` (netbsd-abi.md §4.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TmpfsArgs {
    /// `ta_version`.
    pub version: i32,
    /// `ta_nodes_max` (≤ 3: derived from the size).
    pub nodes_max: u64,
    /// `ta_size_max` in bytes (below a page: no limit).
    pub size_max: i64,
    /// `ta_root_uid`.
    pub root_uid: u32,
    /// `ta_root_gid`.
    pub root_gid: u32,
    /// `ta_root_mode`.
    pub root_mode: u32,
}

impl TmpfsArgs {
    /// The encoded arguments of a tmpfs with no limits of its own and a 0755 root owned
    /// by root (component file systems mount without arguments).
    pub fn default_args() -> [u8; TMPFS_ARGS_SIZE] {
        TmpfsArgs {
            version: TMPFS_ARGS_VERSION,
            nodes_max: 0,
            size_max: 0,
            root_uid: 0,
            root_gid: 0,
            root_mode: 0o755,
        }
        .encode()
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl TmpfsArgs {
    /// Decodes the structure; `EINVAL` when fewer than its 40 bytes were given.
    pub fn parse(b: &[u8]) -> Result<TmpfsArgs> {
        if b.len() < TMPFS_ARGS_SIZE {
            return Err(Errno::EINVAL);
        }
        Ok(TmpfsArgs {
            version: u32_at(b, 0) as i32,
            nodes_max: u64_at(b, 8),
            size_max: u64_at(b, 16) as i64,
            root_uid: u32_at(b, 24),
            root_gid: u32_at(b, 28),
            root_mode: u32_at(b, 32),
        })
    }

    /// The 40 bytes of the structure.
    pub fn encode(&self) -> [u8; TMPFS_ARGS_SIZE] {
        let mut b = [0u8; TMPFS_ARGS_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[8..16].copy_from_slice(&self.nodes_max.to_le_bytes());
        b[16..24].copy_from_slice(&self.size_max.to_le_bytes());
        b[24..28].copy_from_slice(&self.root_uid.to_le_bytes());
        b[28..32].copy_from_slice(&self.root_gid.to_le_bytes());
        b[32..36].copy_from_slice(&self.root_mode.to_le_bytes());
        b
    }

    /// tmpfs_mount's checks and limits: the version (`EINVAL`), a root owner or group of
    /// `VNOVAL` (`EINVAL`); the size limit in bytes (`u64::MAX`: none, for anything below a
    /// page) and the node limit (≤ 3: 3 + one per KiB of the size limit), at most `INT_MAX`.
    pub fn limits(&self) -> Result<(u64, u64)> {
        if self.version != TMPFS_ARGS_VERSION {
            return Err(Errno::EINVAL);
        }
        if self.root_uid == VNOVAL32 || self.root_gid == VNOVAL32 {
            return Err(Errno::EINVAL);
        }
        let size = if self.size_max < PAGE_SIZE as i64 {
            u64::MAX
        } else {
            self.size_max as u64
        };
        let nodes = if self.nodes_max <= 3 {
            3 + size / 1024
        } else {
            self.nodes_max
        };
        Ok((size, nodes.min(NODES_MAX)))
    }
}

/// `tmpfs_mount` of a new file system: checks `args` (missing: `EINVAL`; see
/// [`TmpfsArgs::limits`]) and builds the mount with its root directory (owner, group and
/// mode from the arguments).
fn mount(
    nm: &NewMount,
    args: Option<&[u8]>,
    kernel_budget: &Arc<Budget>,
    now: Timespec,
) -> Result<Arc<Mount>> {
    let args = TmpfsArgs::parse(args.ok_or(Errno::EINVAL)?)?;
    let (size_max, nodes_max) = args.limits()?;
    let budget = Budget::child(kernel_budget, size_max);
    let m = nm.build(b"tmpfs", ROOT_INO, budget);
    let m = Arc::new(m.with(Box::new(TmpfsOps), nm.fsidx, nm.owner, nodes_max));
    let attr = Attr {
        mode: args.root_mode & ALLPERMS,
        uid: args.root_uid,
        gid: args.root_gid,
        nlink: 2,
        atime: now,
        mtime: now,
        ctime: now,
        birthtime: now,
        ..Attr::default()
    };
    let body = Body::Dir(Mutex::new(Dir::new(
        Weak::new(),
        m.first_cookie(),
        m.budget(),
    )));
    let root = Vnode::try_new(&m, m.alloc_ino(), VType::Dir, attr, body)?;
    m.set_root(root);
    Ok(m)
}

/// `MNT_GETARGS`: the arguments as the file system runs now. The caller's buffer must
/// already carry `TMPFS_ARGS_VERSION` (tmpfs checks it first, netbsd-abi.md §10), else
/// `EINVAL`; so must it hold the whole structure.
fn getargs(m: &Mount, given: &[u8]) -> Result<Vec<u8>> {
    let given = TmpfsArgs::parse(given)?;
    if given.version != TMPFS_ARGS_VERSION {
        return Err(Errno::EINVAL);
    }
    let size_max = m.budget().limit();
    let root = m.root().attr();
    let out = TmpfsArgs {
        version: TMPFS_ARGS_VERSION,
        nodes_max: m.state().nodes_max(),
        size_max: size_max as i64,
        root_uid: root.uid,
        root_gid: root.gid,
        root_mode: root.mode,
    };
    Ok(out.encode().to_vec())
}

/// tmpfs's part of `MNT_UPDATE`: the arguments are required and checked as for a new
/// mount; a node limit below the nodes in use is `EBUSY`; the root's owner, group and mode
/// change. The size limit is fixed at mount time here: a different one is `EOPNOTSUPP`
/// (NetBSD can change it while it is above the pages in use).
fn update(m: &Mount, args: Option<&[u8]>) -> Result<()> {
    let args = TmpfsArgs::parse(args.ok_or(Errno::EINVAL)?)?;
    let (size_max, nodes_max) = args.limits()?;
    if nodes_max < m.state().nodes() {
        return Err(Errno::EBUSY);
    }
    // tmpfs_mount's update: a smaller size than what is in use is EBUSY.
    m.budget().set_limit(size_max)?;
    m.set_nodes_max(nodes_max);
    m.root().update(|a| {
        a.uid = args.root_uid;
        a.gid = args.root_gid;
        a.mode = args.root_mode & ALLPERMS;
    });
    Ok(())
}

/// `sizeof(tmpfs_dirent_t)` on amd64: what each entry adds to a directory's `st_size`.
pub const TMPFS_DIRENT_SIZE: u64 = 48;
/// `sizeof(tmpfs_node_t)` on amd64: statvfs counts the nodes that fit in the free pages
/// at this size.
const TMPFS_NODE_SIZE: u64 = 216;
/// `PDRESERVE` of a rump kernel's vm.c: the page daemon's share of `-r` (2 × `MAXPHYS`).
const PDRESERVE: u64 = 2 * 64 * 1024;

/// The pages a rump kernel's tmpfs sees as free (`tmpfs_mem_info` less `uvmexp.freetarg`)
/// in a kernel whose memory limit is `kernel_limit` (`-r`; `u64::MAX`: none): vm.c makes
/// `uvmexp.free` the limit's pages and never updates it, with a free target of the tenth
/// of the limit above the page daemon's reserve; without a limit, rump's `physmem` with
/// no free target.
fn rump_free_pages(kernel_limit: u64) -> u64 {
    let page = PAGE_SIZE as u64;
    match kernel_limit {
        u64::MAX => crate::abi::RUMP_PHYSMEM_BYTES / page,
        pd => {
            let limit = pd.saturating_sub(PDRESERVE);
            let freetarg = (limit - 9 * (limit / 10)) / page;
            (pd / page).saturating_sub(freetarg)
        }
    }
}

/// tmpfs_statvfs: `tmpfs_bytes_max` in pages — the size limit, or what the rump kernel's
/// memory leaves (its budget's limit, `-r`; without `-r`, whether unlimited or the host's
/// memory, rump's default `physmem`, never the host's) plus the pages this
/// file system holds — then the pages still free (also bounded by what the kernel's budget
/// really has left), nodes in use and the nodes that still fit (a node limit, or the free
/// pages at `sizeof(tmpfs_node_t)` each).
fn statvfs(m: &Mount, s: &mut Statvfs) {
    let page = PAGE_SIZE as u64;
    let budget = m.budget();
    let used = budget.used();
    // Without `-r` the kernel's budget is the host's memory; a rump kernel then counts
    // its default `physmem`, as with no limit at all.
    let kernel_limit = budget
        .parent()
        .filter(|p| !p.host_sized())
        .map_or(u64::MAX, |p| p.limit());
    let held = used.div_ceil(page).saturating_mul(page);
    let mem = held.saturating_add(rump_free_pages(kernel_limit).saturating_mul(page));
    let max = budget.limit().min(mem);
    let avail = max.saturating_sub(used).min(budget.available()) / page;
    s.bsize = page;
    s.blocks = max / page;
    (s.bfree, s.bavail) = (avail, avail);
    let (nodes, nodes_max) = (m.state().nodes(), m.state().nodes_max());
    let free = nodes_max
        .saturating_sub(nodes)
        .min(avail.saturating_mul(page) / TMPFS_NODE_SIZE);
    s.files = nodes + free;
    (s.ffree, s.favail) = (free, free);
    (s.frsize, s.iosize) = (s.bsize, s.bsize);
}

/// The operations of a tmpfs mount (its size limit, `tm_mem_limit`, is the limit of the
/// mount's budget; `u64::MAX`: none).
struct TmpfsOps;

impl FsOps for TmpfsOps {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn params(&self) -> MountParams {
        MountParams {
            dev_is_ino: false,
            blksize: PAGE_SIZE as u64,
            lists_dots: true,
            fixed_bytes: None,
            dirent_size: Some(TMPFS_DIRENT_SIZE),
            newest_first: false,
            enforces_flags: true,
            pathconf: crate::vfs::ops::PathconfParams {
                filesize_bits: 64,
                symlinks: false,
                fifofs: true,
            },
        }
    }

    fn statvfs(&self, m: &Mount, s: &mut Statvfs) {
        statvfs(m, s);
    }

    fn update(&self, m: &Mount, _old: u64, _new: u64, data: Option<&[u8]>) -> Result<()> {
        update(m, data)
    }

    fn getargs(&self, m: &Mount, given: Vec<u8>) -> Result<Vec<u8>> {
        getargs(m, &given)
    }
}

/// The tmpfs file-system type.
pub struct TmpfsType;

impl FsType for TmpfsType {
    fn name(&self) -> &str {
        "tmpfs"
    }

    fn min_mount_data(&self) -> usize {
        TMPFS_ARGS_SIZE
    }

    fn build(&self, nm: &NewMount, args: BuildArgs<'_>) -> Result<Arc<Mount>> {
        mount(nm, args.data, args.budget, args.vfs.now())
    }
}

/// A component file system (`Component`): a tmpfs under the component's type name,
/// filled by the component at mount.
pub struct ComponentType {
    name: String,
    fs: Arc<dyn ExtFs>,
}

impl ComponentType {
    /// The type of component file system `name` that `fs` fills.
    pub fn new(name: String, fs: Arc<dyn ExtFs>) -> ComponentType {
        ComponentType { name, fs }
    }
}

impl FsType for ComponentType {
    /// The kind the mount runs (what `vfs_getnewfsid` hashes); `f_fstypename` is the
    /// component's name.
    fn name(&self) -> &str {
        "tmpfs"
    }

    fn min_mount_data(&self) -> usize {
        TMPFS_ARGS_SIZE
    }

    fn build(&self, nm: &NewMount, args: BuildArgs<'_>) -> Result<Arc<Mount>> {
        // No arguments needed: a tmpfs limited by the kernel budget alone.
        let default = TmpfsArgs::default_args();
        let data = args.data.unwrap_or(&default);
        let m = mount(nm, Some(data), args.budget, args.vfs.now())?;
        m.set_type_name(&self.name);
        let mut p = crate::module::populate::Populator {
            vfs: args.vfs,
            root: m.root().clone(),
        };
        self.fs.populate(&mut p)?;
        Ok(m)
    }
}
