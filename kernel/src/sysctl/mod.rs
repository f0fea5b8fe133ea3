//! The sysctl MIB (kern_sysctl.c): a tree of numbered, named nodes that `__sysctl` walks.
//!
//! The tree is data. Each part of the kernel registers its nodes with [`Mib::register`]
//! (a parent path of names, then a [`Spec`]), as NetBSD's `sysctl_createv`: a node that
//! already exists under the same name and number is reused ("mkdir -p"), a number left to
//! the tree ([`Spec::num`] `None`) is the next dynamic one from `CREATE_BASE` in
//! registration order (what `sysctl -a` shows as 1025, 1026, …, so the base tree registers
//! in NetBSD's order). `mib.rs` builds the tree a rump kernel shows; a faction adds its
//! own at boot (`Mib::register` from `Kernel::boot`, or later through `Kernel::sysctl`).
//!
//! A leaf's value is either stored in the tree (read, and written when its flags allow,
//! under NetBSD's size rules: integers exactly, strings up to the node's size with or
//! without their NUL) or computed by a function at each read ([`Value::Func`]), which sees
//! the kernel, the caller and the `oldlen` it asked for (`kern.arandom` serves that many
//! bytes); a function leaf made with [`Spec::func_args`] also takes up to a bounded number
//! of name components below it ([`Value::Args`], NetBSD's `pcblist` handlers). The
//! operations here are synchronous and hold the tree's lock only while they run;
//! `sys/sysctl.rs` does the copies.

mod mib;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{Errno, Kernel, Proc, Result};

pub use mib::populate;

/// `CTL_MAXNAME`: most components of a name.
pub const CTL_MAXNAME: usize = 12;
/// `SYSCTL_NAMELEN`: room for a node's name, NUL included.
pub const SYSCTL_NAMELEN: usize = 32;
/// `CTL_QUERY`: list the children of a node.
pub const CTL_QUERY: i32 = -2;
/// `CTL_CREATE`.
pub const CTL_CREATE: i32 = -3;
/// `CTL_DESTROY`.
pub const CTL_DESTROY: i32 = -5;
/// `CTL_MMAP`.
pub const CTL_MMAP: i32 = -6;
/// `CTL_DESCRIBE`: the descriptions of the children of a node.
pub const CTL_DESCRIBE: i32 = -7;
/// `CREATE_BASE`: dynamic numbers start above it.
pub const CREATE_BASE: i32 = 1024;
/// `sizeof(struct sysctlnode)` on amd64.
pub const NODE_SIZE: usize = 96;
/// `offsetof(struct sysctldesc, descr_str)`.
pub const DESC_HEADER: usize = 12;

/// `SYSCTL_VERS_1`, carried in every node's flags.
pub const SYSCTL_VERSION: u32 = 0x0100_0000;
/// `SYSCTL_VERS_MASK`.
pub const SYSCTL_VERS_MASK: u32 = 0xff00_0000;

/// `CTLTYPE_NODE`.
pub const CTLTYPE_NODE: u32 = 1;
/// `CTLTYPE_INT`.
pub const CTLTYPE_INT: u32 = 2;
/// `CTLTYPE_STRING`.
pub const CTLTYPE_STRING: u32 = 3;
/// `CTLTYPE_QUAD`.
pub const CTLTYPE_QUAD: u32 = 4;
/// `CTLTYPE_STRUCT`.
pub const CTLTYPE_STRUCT: u32 = 5;
/// `CTLTYPE_BOOL`.
pub const CTLTYPE_BOOL: u32 = 6;

/// `CTLFLAG_READWRITE`.
pub const CTLFLAG_READWRITE: u32 = 0x70;
/// `CTLFLAG_ANYWRITE`: anyone may write, not only root.
pub const CTLFLAG_ANYWRITE: u32 = 0x80;
/// `CTLFLAG_PRIVATE`: only root may read or traverse.
pub const CTLFLAG_PRIVATE: u32 = 0x100;
/// `CTLFLAG_PERMANENT`.
pub const CTLFLAG_PERMANENT: u32 = 0x200;
/// `CTLFLAG_IMMEDIATE`: the value is in the node (and in what `CTL_QUERY` copies out).
pub const CTLFLAG_IMMEDIATE: u32 = 0x800;
/// `CTLFLAG_HEX`.
pub const CTLFLAG_HEX: u32 = 0x1000;
/// `CTLFLAG_ANYNUMBER`: the node matches any non-negative number (`proc.<pid>`).
pub const CTLFLAG_ANYNUMBER: u32 = 0x4000;

/// What a leaf's function sees.
pub struct Env<'a> {
    /// The kernel.
    pub k: &'a Kernel,
    /// The calling process.
    pub p: &'a Proc,
    /// The whole name asked for (`proc.<pid>.…` functions read the pid from it).
    pub name: &'a [i32],
    /// The caller's `*oldlenp` (`kern.arandom` serves that many bytes).
    pub oldlen: u64,
}

/// A computed leaf: its current bytes, or an errno.
pub type ReadFn = Arc<dyn Fn(&Env<'_>) -> Result<Vec<u8>> + Send + Sync>;

/// A computed leaf's write: the new bytes (checked against the node's size rules) applied
/// where the value lives, or an errno.
pub type WriteFn = Arc<dyn Fn(&Env<'_>, &[u8]) -> Result<()> + Send + Sync>;

/// What a leaf that takes name components below it is asked (see [`Value::Args`]).
pub struct ArgsCall<'a> {
    /// The components below the leaf (at most the leaf's bound; maybe none).
    pub args: &'a [i32],
    /// Whether the caller gave no old buffer (a size probe).
    pub probe: bool,
}

/// What such a leaf answers: the bytes to copy out (the function fits them to the caller's
/// `oldlen`, NetBSD's handlers copy whole records only) and the `*oldlenp` to report.
pub struct ArgsOut {
    /// Copied out as they are (never more than the caller's `oldlen`).
    pub data: Vec<u8>,
    /// What `*oldlenp` becomes (the size needed; a probe may add slop, as NetBSD's).
    pub oldlen: u64,
}

/// A leaf computed from the name components below it (`sysctl_unp_pcblist`'s op, arg,
/// element size and count).
pub type ArgsFn = Arc<dyn Fn(&Env<'_>, &ArgsCall<'_>) -> Result<ArgsOut> + Send + Sync>;

/// A leaf's value.
#[derive(Clone)]
pub enum Value {
    /// No value: a node with children.
    None,
    /// Bytes kept in the tree (an `int`, quad, bool, struct, or a string without its NUL).
    Stored(Vec<u8>),
    /// Computed at each read; writes to it are refused with `EOPNOTSUPP`.
    Func(ReadFn),
    /// Computed at each read, and written through its function (a value that lives
    /// elsewhere, such as a process's resource limits).
    FuncRw(ReadFn, WriteFn),
    /// Computed at each read from the name components below the leaf, at most the bound
    /// given (NetBSD's handlers that take `name`/`namelen`); read-only.
    Args(ArgsFn, usize),
}

/// A node to register.
#[derive(Clone)]
pub struct Spec {
    /// The name (at most 31 bytes).
    pub name: String,
    /// The number; `None`: the next dynamic number.
    pub num: Option<i32>,
    /// `CTLTYPE_*`.
    pub ty: u32,
    /// `CTLFLAG_*` (type and version are added).
    pub flags: u32,
    /// `sysctl_size` as `CTL_QUERY` shows it; for a stored string also its capacity,
    /// NUL included.
    pub size: u64,
    /// The value.
    pub value: Value,
    /// `CTL_DESCRIBE`'s text (NetBSD's rump kernels are built without them: `None`).
    pub desc: Option<String>,
}

impl Spec {
    fn new(name: &str, num: Option<i32>, ty: u32, size: u64, value: Value) -> Spec {
        Spec {
            name: name.to_string(),
            num,
            ty,
            flags: CTLFLAG_PERMANENT,
            size,
            value,
            desc: None,
        }
    }

    /// A node (children come with later registrations).
    pub fn node(name: &str, num: Option<i32>) -> Spec {
        Spec::new(name, num, CTLTYPE_NODE, NODE_SIZE as u64, Value::None)
    }

    /// A stored `int`.
    pub fn int(name: &str, num: Option<i32>, v: i32) -> Spec {
        Spec::new(
            name,
            num,
            CTLTYPE_INT,
            4,
            Value::Stored(v.to_le_bytes().to_vec()),
        )
    }

    /// A stored 64-bit integer.
    pub fn quad(name: &str, num: Option<i32>, v: u64) -> Spec {
        Spec::new(
            name,
            num,
            CTLTYPE_QUAD,
            8,
            Value::Stored(v.to_le_bytes().to_vec()),
        )
    }

    /// A stored bool.
    pub fn boolean(name: &str, num: Option<i32>, v: bool) -> Spec {
        Spec::new(name, num, CTLTYPE_BOOL, 1, Value::Stored(vec![u8::from(v)]))
    }

    /// A stored string of capacity `size` (NUL included).
    pub fn string(name: &str, num: Option<i32>, v: &str, size: u64) -> Spec {
        let mut b = v.as_bytes().to_vec();
        b.truncate(size.saturating_sub(1) as usize);
        Spec::new(name, num, CTLTYPE_STRING, size, Value::Stored(b))
    }

    /// A read-only string sized to its value (`sysctl_size` = length + 1).
    pub fn text(name: &str, num: Option<i32>, v: &str) -> Spec {
        Spec::string(name, num, v, v.len() as u64 + 1)
    }

    /// A stored struct.
    pub fn bytes(name: &str, num: Option<i32>, v: Vec<u8>) -> Spec {
        Spec::new(name, num, CTLTYPE_STRUCT, v.len() as u64, Value::Stored(v))
    }

    /// A computed leaf of type `ty` whose `CTL_QUERY` size is `size`.
    pub fn func(
        name: &str,
        num: Option<i32>,
        ty: u32,
        size: u64,
        f: impl Fn(&Env<'_>) -> Result<Vec<u8>> + Send + Sync + 'static,
    ) -> Spec {
        Spec::new(name, num, ty, size, Value::Func(Arc::new(f)))
    }

    /// A computed leaf that `write` changes (see [`Value::FuncRw`]).
    pub fn func_rw(
        name: &str,
        num: Option<i32>,
        ty: u32,
        size: u64,
        read: impl Fn(&Env<'_>) -> Result<Vec<u8>> + Send + Sync + 'static,
        write: impl Fn(&Env<'_>, &[u8]) -> Result<()> + Send + Sync + 'static,
    ) -> Spec {
        let value = Value::FuncRw(Arc::new(read), Arc::new(write));
        Spec::new(name, num, ty, size, value)
    }

    /// A computed leaf that takes up to `max_args` name components below it (bounded by
    /// `CTL_MAXNAME`); `CTL_QUERY` lists it as any leaf.
    pub fn func_args(
        name: &str,
        num: Option<i32>,
        ty: u32,
        size: u64,
        max_args: usize,
        f: impl Fn(&Env<'_>, &ArgsCall<'_>) -> Result<ArgsOut> + Send + Sync + 'static,
    ) -> Spec {
        let value = Value::Args(Arc::new(f), max_args.min(CTL_MAXNAME));
        Spec::new(name, num, ty, size, value)
    }

    /// Replaces the flags (`CTLFLAG_*`).
    pub fn flags(mut self, flags: u32) -> Spec {
        self.flags = flags;
        self
    }

    /// Adds `CTLFLAG_READWRITE` (root may write).
    pub fn rw(mut self) -> Spec {
        self.flags |= CTLFLAG_READWRITE;
        self
    }

    /// Adds `CTLFLAG_IMMEDIATE`.
    pub fn immediate(mut self) -> Spec {
        self.flags |= CTLFLAG_IMMEDIATE;
        self
    }

    /// Sets the `CTL_QUERY` size.
    pub fn size(mut self, size: u64) -> Spec {
        self.size = size;
        self
    }

    /// Sets the description.
    pub fn desc(mut self, d: &str) -> Spec {
        self.desc = Some(d.to_string());
        self
    }
}

/// One node of the tree.
struct Node {
    num: i32,
    name: String,
    /// Version, type and `CTLFLAG_*`.
    flags: u32,
    ver: u32,
    size: u64,
    desc: Option<String>,
    value: Value,
    /// Sorted by number.
    children: Vec<Node>,
}

impl Node {
    fn ty(&self) -> u32 {
        self.flags & 0xf
    }

    fn child(&self, num: i32) -> Option<usize> {
        if let Some(first) = self.children.first() {
            if first.flags & CTLFLAG_ANYNUMBER != 0 && num >= 0 {
                return Some(0);
            }
        }
        self.children.iter().position(|c| c.num == num)
    }

    /// `struct sysctlnode` as `CTL_QUERY` copies it out; kernel pointers are zero.
    fn encode(&self) -> [u8; NODE_SIZE] {
        let mut b = [0u8; NODE_SIZE];
        b[0..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.num.to_le_bytes());
        let n = self.name.len().min(SYSCTL_NAMELEN - 1);
        b[8..8 + n].copy_from_slice(&self.name.as_bytes()[..n]);
        b[40..44].copy_from_slice(&self.ver.to_le_bytes());
        if self.ty() == CTLTYPE_NODE {
            let clen = self.children.len() as u32;
            b[48..52].copy_from_slice(&clen.to_le_bytes());
            b[52..56].copy_from_slice(&clen.to_le_bytes());
        } else if self.flags & CTLFLAG_IMMEDIATE != 0 {
            if let Value::Stored(v) = &self.value {
                let n = v.len().min(8);
                b[48..48 + n].copy_from_slice(&v[..n]);
            }
        }
        b[64..72].copy_from_slice(&self.size.to_le_bytes());
        b
    }
}

struct Tree {
    root: Node,
    /// The last dynamic number given.
    next_num: i32,
    /// The last version given.
    ver: u32,
}

/// Where a name leads (`sysctl_dispatch`'s decision).
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A leaf, the whole name consumed: read and write it.
    Leaf,
    /// A meta operation (`CTL_QUERY`, …) on the node named by all but the last component.
    Meta(i32),
}

/// What reading a leaf gave.
pub struct LeafValue {
    /// `CTLTYPE_*`.
    pub ty: u32,
    /// The node's flags.
    pub flags: u32,
    /// The bytes to copy out (a string with its NUL).
    pub data: Vec<u8>,
    /// The most a write may bring (`sysctl_size`).
    pub size: u64,
    /// Whether the value is stored (writable in the tree) rather than computed.
    pub stored: bool,
    /// How a computed value is written, if it can be.
    pub write: Option<WriteFn>,
}

/// The MIB: the tree behind a lock.
pub struct Mib {
    tree: RwLock<Tree>,
}

impl Default for Mib {
    fn default() -> Self {
        Mib::new()
    }
}

impl Mib {
    /// An empty tree: the root only.
    pub fn new() -> Mib {
        Mib {
            tree: RwLock::new(Tree {
                root: Node {
                    num: 0,
                    name: String::new(),
                    flags: SYSCTL_VERSION | CTLTYPE_NODE | CTLFLAG_PERMANENT | CTLFLAG_READWRITE,
                    ver: 1,
                    size: NODE_SIZE as u64,
                    desc: None,
                    value: Value::None,
                    children: Vec::new(),
                },
                next_num: CREATE_BASE,
                ver: 1,
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Tree> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `spec` under the node named by `parent` (names from the root); returns its
    /// number. An existing node of the same name is returned when both are nodes and the
    /// number matches (or was left to the tree); any other clash is `EEXIST`; a missing
    /// parent `ENOENT`, a parent that is a leaf `ENOTDIR`, a bad name `EINVAL`.
    pub fn register(&self, parent: &[&str], spec: Spec) -> Result<i32> {
        if spec.name.is_empty()
            || spec.name.len() >= SYSCTL_NAMELEN
            || !spec
                .name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_')
            || spec.num.is_some_and(|n| n < 0)
        {
            return Err(Errno::EINVAL);
        }
        let mut guard = self.write();
        let t = &mut *guard;
        let mut path = Vec::with_capacity(parent.len());
        let mut node = &t.root;
        for name in parent {
            let i = node
                .children
                .iter()
                .position(|c| c.name == *name)
                .ok_or(Errno::ENOENT)?;
            node = &node.children[i];
            if node.ty() != CTLTYPE_NODE {
                return Err(Errno::ENOTDIR);
            }
            path.push(i);
        }
        if let Some(c) = node.children.iter().find(|c| c.name == spec.name) {
            if c.ty() == CTLTYPE_NODE
                && spec.ty == CTLTYPE_NODE
                && spec.num.map_or(true, |n| n == c.num)
            {
                return Ok(c.num);
            }
            return Err(Errno::EEXIST);
        }
        if let Some(n) = spec.num {
            if node.children.iter().any(|c| c.num == n) {
                return Err(Errno::EEXIST);
            }
        }
        let num = match spec.num {
            Some(n) => n,
            None => {
                t.next_num = t.next_num.checked_add(1).ok_or(Errno::ENOSPC)?;
                t.next_num
            }
        };
        t.ver += 1;
        let ver = t.ver;
        let new = Node {
            num,
            name: spec.name,
            flags: SYSCTL_VERSION | spec.ty | (spec.flags & !(SYSCTL_VERS_MASK | 0xf)),
            ver,
            size: spec.size,
            desc: spec.desc,
            value: spec.value,
            children: Vec::new(),
        };
        // The version of every node on the way down records the change, as NetBSD's.
        let mut node = &mut t.root;
        node.ver = ver;
        for i in path {
            node = &mut node.children[i];
            node.ver = ver;
        }
        let at = node.children.partition_point(|c| c.num < num);
        node.children.insert(at, new);
        Ok(num)
    }

    /// `sysctl_locate` + `sysctl_dispatch`'s choice for `name` (1 to 12 components).
    pub fn resolve(&self, name: &[i32], root: bool) -> Result<Target> {
        let t = self.read();
        let mut node = &t.root;
        for (ni, &n) in name.iter().enumerate() {
            if node.ty() != CTLTYPE_NODE {
                // Below a leaf: a leaf computed by a function takes the rest of the name
                // itself: one that takes arguments gets up to its bound of them, the
                // others refuse them, as NetBSD's helpers do.
                return match node.value {
                    Value::Args(_, max) if name.len() - ni <= max => Ok(Target::Leaf),
                    Value::Func(_) | Value::FuncRw(..) | Value::Args(..) => Err(Errno::EINVAL),
                    _ => Err(Errno::ENOTDIR),
                };
            }
            if node.flags & CTLFLAG_PRIVATE != 0 && !root {
                return Err(Errno::EPERM);
            }
            match node.child(n) {
                Some(i) => node = &node.children[i],
                None if ni + 1 == name.len() && n < 0 => {
                    return match n {
                        CTL_QUERY | CTL_DESCRIBE | CTL_CREATE | CTL_DESTROY | CTL_MMAP => {
                            Ok(Target::Meta(n))
                        }
                        _ => Err(Errno::EOPNOTSUPP),
                    };
                }
                None => return Err(Errno::ENOENT),
            }
        }
        match node.ty() {
            // sysctl_lookup: "you can't look up a node".
            CTLTYPE_NODE => Err(Errno::EINVAL),
            _ => Ok(Target::Leaf),
        }
    }

    /// Runs `f` on the node at `path` (all components must match).
    fn with_node<R>(&self, path: &[i32], f: impl FnOnce(&Tree, &Node) -> Result<R>) -> Result<R> {
        let t = self.read();
        let mut node = &t.root;
        for &n in path {
            let i = node.child(n).ok_or(Errno::ENOENT)?;
            node = &node.children[i];
        }
        f(&t, node)
    }

    /// The leaf at the start of `name` that takes the components after it, if it is one:
    /// its function, flags and depth (the lock is released before the function runs).
    pub fn args_leaf(&self, name: &[i32]) -> Option<(ArgsFn, u32, usize)> {
        let t = self.read();
        let mut node = &t.root;
        for (depth, &n) in name.iter().enumerate() {
            if node.ty() != CTLTYPE_NODE {
                return match &node.value {
                    Value::Args(f, max) if name.len() - depth <= *max => {
                        Some((f.clone(), node.flags, depth))
                    }
                    _ => None,
                };
            }
            node = &node.children[node.child(n)?];
        }
        match &node.value {
            Value::Args(f, _) => Some((f.clone(), node.flags, name.len())),
            _ => None,
        }
    }

    /// The leaf at `name`, read (`sysctl_lookup`'s first half).
    pub fn read_leaf(&self, env: &Env<'_>) -> Result<LeafValue> {
        let (ty, flags, size, value) = self.with_node(env.name, |_, n| {
            Ok((n.ty(), n.flags, n.size, n.value.clone()))
        })?;
        if flags & CTLFLAG_PRIVATE != 0 && !env.p.cred().is_root() {
            return Err(Errno::EPERM);
        }
        let (mut data, stored) = match &value {
            Value::Stored(v) => (v.clone(), true),
            Value::Func(f) | Value::FuncRw(f, _) => (f(env)?, false),
            Value::None | Value::Args(..) => return Err(Errno::EINVAL),
        };
        if ty == CTLTYPE_STRING {
            let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
            data.truncate(end);
            data.push(0);
        }
        let write = match &value {
            Value::FuncRw(_, w) => Some(w.clone()),
            _ => None,
        };
        Ok(LeafValue {
            ty,
            flags,
            data,
            size,
            stored,
            write,
        })
    }

    /// Stores `data` (already checked against the node's size rules) in the leaf at `path`.
    pub fn store(&self, path: &[i32], data: Vec<u8>) -> Result<()> {
        let mut t = self.write();
        let mut node = &mut t.root;
        for &n in path {
            let i = node.child(n).ok_or(Errno::ENOENT)?;
            node = &mut node.children[i];
        }
        match &mut node.value {
            Value::Stored(v) => {
                *v = data;
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    /// `CTL_QUERY` on the node at `path`: its children as `struct sysctlnode`s. `ver`,
    /// when not 0, must be the node's or the root's version (`EINVAL`).
    pub fn query(&self, path: &[i32], ver: u32) -> Result<Vec<u8>> {
        self.with_node(path, |t, n| {
            if n.ty() != CTLTYPE_NODE {
                return Err(Errno::ENOTDIR);
            }
            if ver != 0 && ver != n.ver && ver != t.root.ver {
                return Err(Errno::EINVAL);
            }
            let mut out = Vec::with_capacity(n.children.len() * NODE_SIZE);
            for c in &n.children {
                out.extend_from_slice(&c.encode());
            }
            Ok(out)
        })
    }

    /// `CTL_DESCRIBE` on the node at `path`: `struct sysctldesc` records of its children
    /// (of the child numbered `one` only, `ENOENT` if none), private ones only for root.
    /// Each record is returned alone so that the caller copies out whole records.
    pub fn describe(&self, path: &[i32], one: Option<i32>, root: bool) -> Result<Vec<Vec<u8>>> {
        self.with_node(path, |_, n| {
            if n.ty() != CTLTYPE_NODE {
                return Err(Errno::ENOTDIR);
            }
            let mut out = Vec::new();
            for c in &n.children {
                if one.is_some_and(|o| o != c.num) {
                    continue;
                }
                if c.flags & CTLFLAG_PRIVATE != 0 && !root {
                    continue;
                }
                let text = c.desc.as_deref().unwrap_or("").as_bytes();
                let len = text.len() + 1;
                let padded = (len + 3) & !3;
                let mut r = vec![0u8; DESC_HEADER + padded];
                r[0..4].copy_from_slice(&c.num.to_le_bytes());
                r[4..8].copy_from_slice(&c.ver.to_le_bytes());
                r[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                r[DESC_HEADER..DESC_HEADER + text.len()].copy_from_slice(text);
                out.push(r);
                if one.is_some() {
                    break;
                }
            }
            if one.is_some() && out.is_empty() {
                return Err(Errno::ENOENT);
            }
            Ok(out)
        })
    }

    /// Number of nodes and of leaves in the tree (for tests and `-v`).
    pub fn count(&self) -> (usize, usize) {
        fn walk(n: &Node, acc: &mut (usize, usize)) {
            for c in &n.children {
                acc.0 += 1;
                if c.ty() != CTLTYPE_NODE {
                    acc.1 += 1;
                }
                walk(c, acc);
            }
        }
        let mut acc = (0, 0);
        walk(&self.read().root, &mut acc);
        acc
    }
}

#[cfg(test)]
mod tests;
