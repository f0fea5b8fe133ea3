//! Kernel modules (NetBSD's `kern_module.c`): the table `modctl(2)` loads into, unloads from
//! and lists, and what modules add to the kernel (file-system types, system calls).
//!
//! Design decisions:
//! - **A module is a built-in file system or an external component.** NetBSD `.kmod` files
//!   are NetBSD kernel ELF objects and cannot run here. A module file whose name (less
//!   `.kmod`) is a built-in file system of this kernel (`tmpfs.kmod`) enables that file
//!   system, so `rump_server -lrumpvfs -m /modules/tmpfs.kmod` works as the man page shows;
//!   any other file must be an external component (a shared library in the C ABI of
//!   `include/rump_component.h`), which the server's [`ModuleLoader`] opens. The kernel
//!   crate never loads code itself.
//! - **Only files the operator marked as modules are loaded.** `modctl(MODCTL_LOAD)` from a
//!   client names a path in the rump namespace; it loads only an etfs key whose host file
//!   the operator marked as a module (`-d …,module`: `HostFile::module_path`), or a built-in
//!   name. Such a file is never writable, and it is loaded through the server's open
//!   descriptor, not its host path. Bytes a client wrote — into a memory file system or
//!   through a writable etfs key — are never turned into host code (`EPERM`): a client is
//!   root in the rump kernel, not on the host.
//! - **Unloading** asks the module (`MODULE_CMD_FINI`): a file system in use is `EBUSY`; an
//!   external component decides in its `fini`. What an external component registered (system
//!   calls, etfs keys) is removed before its library goes.
//! - Modules given with `-l` are built in (`MODULE_SOURCE_KERNEL`), initialized at boot and
//!   so listed with their reference count, 0, as NetBSD's rump_server lists its linked-in
//!   modules (-1 is only for built-ins never initialized, which this kernel does not have);
//!   those loaded later come from the file system.

pub(crate) mod populate;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use crate::fs::FsKind;
use crate::{Errno, Result};

/// System call numbers modules may serve (NetBSD's `lkmnosys` slots).
pub const EXT_SYSCALLS: std::ops::RangeInclusive<u32> = 210..=219;

/// `MAXMODNAME`: module names are shorter than this.
pub const MAXMODNAME: usize = 32;

/// `modclass_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModClass {
    /// `MODULE_CLASS_MISC`.
    Misc = 1,
    /// `MODULE_CLASS_VFS`.
    Vfs = 2,
}

/// `modsrc_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModSource {
    /// `MODULE_SOURCE_KERNEL`: built in.
    Kernel = 0,
    /// `MODULE_SOURCE_FILESYS`: loaded from a file.
    Filesys = 2,
}

/// A loaded external component, as the server holds it.
pub trait ExtModule: Send + Sync {
    /// `MODULE_CMD_FINI`: `Ok` lets the module go (its library is closed afterwards).
    fn fini(&self) -> Result<()>;
}

/// Opens external components (the server's shared-library loader).
pub trait ModuleLoader: Send + Sync {
    /// Loads the component by opening `open` (a host path, or a path naming a file the
    /// server holds open) and runs its `init`, which registers what it adds through
    /// [`Modules`] under the module name it returns. `shown` is the host path for messages.
    fn load(
        &self,
        kernel: &crate::Kernel,
        open: &Path,
        shown: &Path,
    ) -> Result<(String, Box<dyn ExtModule>)>;
}

/// Which client buffers an external system call takes: argument slots of each address and
/// length, copied in before the call and out after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtSpec {
    /// Slots of the input buffer's address and length.
    pub input: Option<(usize, usize)>,
    /// Slots of the output buffer's address and room.
    pub output: Option<(usize, usize)>,
    /// Largest buffer either way.
    pub max_len: usize,
}

/// Building the initial tree of a component file system (paths relative to its root).
pub trait Populate {
    /// A directory (its parent must exist).
    fn mkdir(&mut self, path: &[u8], mode: u32) -> Result<()>;
    /// A regular file with `data`.
    fn add_file(&mut self, path: &[u8], mode: u32, data: &[u8]) -> Result<()>;
    /// A symbolic link to `target`.
    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<()>;
}

/// A file-system type added by an external component: a memory file system (tmpfs
/// semantics) that the component fills at each mount.
pub trait ExtFs: Send + Sync {
    /// Fills a new, empty instance.
    fn populate(&self, p: &mut dyn Populate) -> Result<()>;
}

/// A system call served by an external component.
pub trait ExtSyscall: Send + Sync {
    /// Its buffers.
    fn spec(&self) -> ExtSpec;
    /// Runs it: `output` has the room the client gave (at most `max_len`); returns the
    /// return values and how many bytes of `output` to copy out.
    fn call(&self, args: &[u64; 8], input: &[u8], output: &mut [u8]) -> Result<([i64; 2], usize)>;
}

enum Kind {
    Fs(FsKind),
    Ext(Box<dyn ExtModule>),
}

struct Module {
    name: String,
    source: ModSource,
    kind: Kind,
}

impl Module {
    fn class(&self) -> ModClass {
        match self.kind {
            Kind::Fs(_) => ModClass::Vfs,
            Kind::Ext(_) => ModClass::Misc,
        }
    }
}

/// One row of `MODCTL_STAT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModStat {
    /// Module name.
    pub name: String,
    /// Where it came from.
    pub source: ModSource,
    /// Its class.
    pub class: ModClass,
    /// References (0: nothing here holds a reference on a module).
    pub refcnt: u32,
}

/// What an external module registered, removed when it goes.
#[derive(Default)]
struct Owned {
    syscalls: Vec<u32>,
    etfs: Vec<Vec<u8>>,
    fstypes: Vec<String>,
}

/// The kernel's module table.
#[derive(Default)]
pub struct Modules {
    list: Mutex<Vec<Module>>,
    syscalls: RwLock<HashMap<u32, Arc<dyn ExtSyscall>>>,
    owned: Mutex<HashMap<String, Owned>>,
    fstypes: RwLock<HashMap<String, Arc<dyn ExtFs>>>,
    loader: OnceLock<Arc<dyn ModuleLoader>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The module name a file stands for: its name without a `.kmod` suffix.
fn file_module_name(path: &Path) -> Option<&str> {
    let f = path.file_name()?.to_str()?;
    Some(f.strip_suffix(".kmod").unwrap_or(f))
}

impl Modules {
    /// A table with the built-in file systems `fs` (from `-l`).
    pub fn new(fs: &[FsKind]) -> Modules {
        let m = Modules::default();
        {
            let mut list = lock(&m.list);
            for &k in fs.iter().filter(|&&k| k != FsKind::Rumpfs) {
                list.push(Module {
                    name: k.name().to_string(),
                    source: ModSource::Kernel,
                    kind: Kind::Fs(k),
                });
            }
        }
        m
    }

    /// Installs the server's loader of external components (once).
    pub fn set_loader(&self, loader: Arc<dyn ModuleLoader>) {
        let _ = self.loader.set(loader);
    }

    /// Whether file-system type `kind` is present (built in or loaded).
    pub fn has_fs(&self, kind: FsKind) -> bool {
        kind == FsKind::Rumpfs
            || lock(&self.list)
                .iter()
                .any(|m| matches!(m.kind, Kind::Fs(k) if k == kind))
    }

    /// Loads the module named `name` without a path: a built-in file system of that name.
    /// `EEXIST` if present, `ENOENT` for an unknown name (there is no module directory).
    pub fn load_builtin(&self, name: &str) -> Result<()> {
        let kind = FsKind::from_name(name.as_bytes())
            .filter(|&k| k != FsKind::Rumpfs)
            .ok_or(Errno::ENOENT)?;
        let mut list = lock(&self.list);
        if list.iter().any(|m| m.name == name) {
            return Err(Errno::EEXIST);
        }
        list.push(Module {
            name: name.to_string(),
            source: ModSource::Filesys,
            kind: Kind::Fs(kind),
        });
        Ok(())
    }

    /// Loads the module in host file `path` (an operator's `-m`): a built-in file system by
    /// the file's name, else an external component.
    pub fn load_host_file(&self, kernel: &crate::Kernel, path: &Path) -> Result<String> {
        self.load_file(kernel, path, path)
    }

    /// Loads the module file opened through `open` whose host path is `shown` (a module
    /// key: [`module_file_of`]): a built-in file system by the host file's name, else an
    /// external component.
    pub fn load_file(&self, kernel: &crate::Kernel, shown: &Path, open: &Path) -> Result<String> {
        let meta = std::fs::metadata(open).map_err(|e| crate::hostio::io_errno(&e))?;
        if !meta.is_file() {
            return Err(Errno::EFTYPE);
        }
        if let Some(name) = file_module_name(shown) {
            if FsKind::from_name(name.as_bytes()).is_some_and(|k| k != FsKind::Rumpfs) {
                self.load_builtin(name)?;
                return Ok(name.to_string());
            }
        }
        let loader = self.loader.get().ok_or(Errno::ENOEXEC)?;
        let (name, handle) = loader.load(kernel, open, shown)?;
        self.insert_external(kernel, &name, handle, ModSource::Filesys)?;
        Ok(name)
    }

    /// Whether a module named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        lock(&self.list).iter().any(|m| m.name == name)
    }

    /// Adds an external component whose `init` has run (registering under `name`):
    /// `EEXIST` if the name is taken, in which case its registrations are undone.
    pub fn insert_external(
        &self,
        kernel: &crate::Kernel,
        name: &str,
        handle: Box<dyn ExtModule>,
        source: ModSource,
    ) -> Result<()> {
        let mut list = lock(&self.list);
        if list.iter().any(|m| m.name == name) {
            drop(list);
            self.forget_owned(kernel, name);
            let _ = handle.fini();
            return Err(Errno::EEXIST);
        }
        list.push(Module {
            name: name.to_string(),
            source,
            kind: Kind::Ext(handle),
        });
        Ok(())
    }

    /// `module_unload(name)`: `ENOENT` if unknown, `EBUSY` if in use (a file system with a
    /// mount, a component whose `fini` refuses).
    pub fn unload(&self, kernel: &crate::Kernel, name: &str) -> Result<()> {
        let mut list = lock(&self.list);
        let i = list
            .iter()
            .position(|m| m.name == name)
            .ok_or(Errno::ENOENT)?;
        match &list[i].kind {
            Kind::Fs(k) => {
                let busy = kernel
                    .vfs()
                    .map(|v| v.mounts().iter().any(|m| m.fs_type().name() == k.name()))
                    .unwrap_or(false);
                if busy {
                    return Err(Errno::EBUSY);
                }
            }
            Kind::Ext(h) => {
                // A component whose file system is mounted is in use.
                let types = lock(&self.owned)
                    .get(name)
                    .map(|o| o.fstypes.clone())
                    .unwrap_or_default();
                let busy = kernel.vfs().is_ok_and(|v| {
                    v.mounts()
                        .iter()
                        .any(|m| types.iter().any(|t| t.as_bytes() == m.type_name()))
                });
                if busy {
                    return Err(Errno::EBUSY);
                }
                h.fini()?
            }
        }
        let m = list.remove(i);
        drop(list);
        self.forget_owned(kernel, &m.name);
        drop(m);
        Ok(())
    }

    /// Removes what module `name` registered (system calls, etfs keys): on unload, or when
    /// its `init` failed part-way.
    pub fn forget_owned(&self, kernel: &crate::Kernel, name: &str) {
        let Some(owned) = lock(&self.owned).remove(name) else {
            return;
        };
        {
            let mut sc = self.syscalls.write().unwrap_or_else(|e| e.into_inner());
            for n in owned.syscalls {
                sc.remove(&n);
            }
        }
        {
            let mut ft = self.fstypes.write().unwrap_or_else(|e| e.into_inner());
            for t in &owned.fstypes {
                ft.remove(t);
            }
        }
        for key in owned.etfs {
            if let Ok(vfs) = kernel.vfs() {
                if let Some(keys) = crate::fs::rumpfs::keys(vfs.root_mount()) {
                    let _ = keys.remove(&key);
                }
            }
        }
    }

    /// `MODCTL_STAT`: loaded modules first, then built-ins, as NetBSD lists them.
    pub fn stat(&self) -> Vec<ModStat> {
        let list = lock(&self.list);
        let row = |m: &Module| ModStat {
            name: m.name.clone(),
            source: m.source,
            class: m.class(),
            refcnt: 0,
        };
        let loaded = list.iter().filter(|m| m.source == ModSource::Filesys);
        let builtin = list.iter().filter(|m| m.source == ModSource::Kernel);
        loaded.chain(builtin).map(row).collect()
    }

    /// Registers system call `nr` for module `owner`. Numbers 210–219 are the ones NetBSD
    /// keeps free for loadable modules (`lkmnosys`); others are `EINVAL`, a taken one `EEXIST`.
    pub fn add_syscall(&self, owner: &str, nr: u32, sc: Arc<dyn ExtSyscall>) -> Result<()> {
        if !EXT_SYSCALLS.contains(&nr) {
            return Err(Errno::EINVAL);
        }
        let mut map = self.syscalls.write().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(&nr) {
            return Err(Errno::EEXIST);
        }
        map.insert(nr, sc);
        lock(&self.owned)
            .entry(owner.to_string())
            .or_default()
            .syscalls
            .push(nr);
        Ok(())
    }

    /// Records that module `owner` registered etfs key `key` (removed when it goes).
    pub fn own_etfs(&self, owner: &str, key: &[u8]) {
        lock(&self.owned)
            .entry(owner.to_string())
            .or_default()
            .etfs
            .push(key.to_vec());
    }

    /// Registers file-system type `name` for module `owner`: `EEXIST` if a built-in or
    /// another module has that name, `EINVAL` for an empty name or one of 32 bytes or more.
    pub fn add_fstype(&self, owner: &str, name: &str, fs: Arc<dyn ExtFs>) -> Result<()> {
        if name.is_empty() || name.len() >= crate::abi::VFS_NAMELEN || name.contains('/') {
            return Err(Errno::EINVAL);
        }
        if FsKind::from_name(name.as_bytes()).is_some() || name == "ufs" {
            return Err(Errno::EEXIST);
        }
        let mut map = self.fstypes.write().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        map.insert(name.to_string(), fs);
        lock(&self.owned)
            .entry(owner.to_string())
            .or_default()
            .fstypes
            .push(name.to_string());
        Ok(())
    }

    /// The component file-system type `name`, if one is registered.
    pub fn fstype(&self, name: &[u8]) -> Option<(String, Arc<dyn ExtFs>)> {
        let name = std::str::from_utf8(name).ok()?;
        let map = self.fstypes.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).map(|f| (name.to_string(), f.clone()))
    }

    /// The module system call `nr`, if one is registered.
    pub fn syscall(&self, nr: u32) -> Option<Arc<dyn ExtSyscall>> {
        let map = self.syscalls.read().unwrap_or_else(|e| e.into_inner());
        map.get(&nr).cloned()
    }

    /// Names of the loaded and built-in modules.
    pub fn names(&self) -> Vec<String> {
        lock(&self.list).iter().map(|m| m.name.clone()).collect()
    }
}

/// What a client's `modctl` may load behind a vnode: an etfs key whose host file the
/// operator marked as a module. Returns the host path (for the module's name and messages)
/// and the path the loader opens (the server's open descriptor of that file).
pub fn module_file_of(vn: &crate::vfs::Vnode) -> Option<(PathBuf, PathBuf)> {
    let n = crate::fs::rumpfs::etfs::of(vn)?;
    let open = n.module_path()?;
    Some((n.host_path().unwrap_or_else(|| open.clone()), open))
}
