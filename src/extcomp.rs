//! External components: shared libraries in the C ABI of `include/rump_component.h`, opened
//! with `libloading` for `-l /path/lib.so`, `-m /path/lib.so` and client `modctl` loads.
//!
//! Opening (dlopen, the `rump_component_v1` symbol, the ABI version, the name) happens after
//! the server has forked into the background (a library's constructors may start threads)
//! and before it detaches, so a bad `-l` still fails the command itself; `init` runs after the kernel
//! has booted, with a registrar whose callbacks add to the kernel's module table. The
//! library stays loaded while anything it registered can still be called: every system
//! call it added holds a reference to it, and unloading removes those first.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kernel::fs::rumpfs::etfs::EtfsType;
use kernel::module::{ExtFs, ExtModule, ExtSpec, ExtSyscall, ModuleLoader, Populate, MAXMODNAME};
use kernel::{Errno, Kernel};
use libloading::Library;

/// The ABI version this server implements (`RUMP_COMPONENT_ABI_VERSION`).
pub const ABI_VERSION: u32 = 1;
/// The descriptor's symbol.
pub const SYMBOL: &str = "rump_component_v1";
/// Largest buffer a component system call may declare.
const MAX_SYSCALL_BUF: u32 = 1 << 20;

type SyscallFn = unsafe extern "C" fn(
    *mut c_void,
    *const u64,
    *const c_void,
    usize,
    *mut c_void,
    *mut usize,
    *mut i64,
) -> c_int;
type PopulateFn = unsafe extern "C" fn(*mut c_void, *const c_void) -> c_int;

#[repr(C)]
struct RumpComponent {
    abi_version: u32,
    reserved: u32,
    name: *const c_char,
    init: Option<unsafe extern "C" fn(*const RumpRegistrar) -> c_int>,
    fini: Option<unsafe extern "C" fn() -> c_int>,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RumpSyscallDesc {
    number: i32,
    in_ptr_arg: i32,
    in_len_arg: i32,
    out_ptr_arg: i32,
    out_len_arg: i32,
    max_len: u32,
    func: Option<SyscallFn>,
    cookie: *mut c_void,
}

#[repr(C)]
struct RumpRegistrar {
    abi_version: u32,
    reserved: u32,
    ctx: *mut c_void,
    add_syscall: extern "C" fn(*mut c_void, *const RumpSyscallDesc) -> c_int,
    add_etfs: extern "C" fn(*mut c_void, *const c_char, *const c_char, c_int, u64, u64) -> c_int,
    add_fstype: extern "C" fn(*mut c_void, *const c_char, Option<PopulateFn>, *mut c_void) -> c_int,
    log: extern "C" fn(*mut c_void, *const c_char),
}

/// A component library opened and checked, not yet initialised.
pub struct Opened {
    lib: Arc<Library>,
    name: String,
    init: unsafe extern "C" fn(*const RumpRegistrar) -> c_int,
    fini: Option<unsafe extern "C" fn() -> c_int>,
    path: PathBuf,
}

/// Opens `path` and checks its descriptor. The error is the text operators see.
pub fn open(path: &Path) -> Result<Opened, String> {
    open_as(path, path)
}

/// Opens the library at `open` (a host path, or `/proc/self/fd/N` of a module key's open
/// file) and checks its descriptor; messages name `path`.
fn open_as(open: &Path, path: &Path) -> Result<Opened, String> {
    // SAFETY: loading a library runs its initialisers; the operator named this file as a
    // component (`-l`, `-m`) or marked it as a module for clients to load (`-d …,module`,
    // opened read-only and loaded through that open file), which is the trust the C ABI asks
    // for (include/rump_component.h).
    let lib = unsafe { Library::new(open) }.map_err(|e| match open == path {
        true => e.to_string(),
        false => format!("{}: {e}", path.display()),
    })?;
    // SAFETY: the symbol is declared by the ABI as `const struct rump_component`; we only
    // take its address here.
    let desc: *const RumpComponent = unsafe {
        let sym = lib
            .get::<*const RumpComponent>(format!("{SYMBOL}\0").as_bytes())
            .map_err(|_| {
                format!(
                    "{}: no symbol {SYMBOL}: not a rump component (see include/rump_component.h)",
                    path.display()
                )
            })?;
        sym.try_as_raw_ptr()
            .map(|p| p.cast::<RumpComponent>())
            .ok_or_else(|| format!("{}: {SYMBOL} is null", path.display()))?
    };
    if desc.is_null() {
        return Err(format!("{}: {SYMBOL} is null", path.display()));
    }
    // SAFETY: `desc` points at the library's descriptor, which lives as long as `lib`.
    let d = unsafe { &*desc };
    if d.abi_version != ABI_VERSION {
        return Err(format!(
            "{}: component ABI version {}, this server has {ABI_VERSION}: rebuild it against \
             this server's include/rump_component.h",
            path.display(),
            d.abi_version
        ));
    }
    if d.name.is_null() {
        return Err(format!("{}: the component has no name", path.display()));
    }
    // SAFETY: a non-null name is a NUL-terminated string by the ABI.
    let name = unsafe { CStr::from_ptr(d.name) }
        .to_string_lossy()
        .into_owned();
    let valid = !name.is_empty()
        && name.len() < MAXMODNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(format!(
            "{}: component name {name:?} must be 1–31 letters, digits, _ or -",
            path.display()
        ));
    }
    let init = d
        .init
        .ok_or_else(|| format!("{}: the component has no init function", path.display()))?;
    Ok(Opened {
        fini: d.fini,
        init,
        name,
        lib: Arc::new(lib),
        path: path.to_path_buf(),
    })
}

impl Opened {
    /// The component's module name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `init` against `kernel`; what it registers goes under the component's name.
    /// Returns the name and the handle the module table keeps (the caller inserts it). A
    /// failing init has what it registered removed again.
    pub fn init(self, kernel: &Kernel) -> Result<(String, Box<dyn ExtModule>), Errno> {
        let mods = kernel.modules();
        if mods.contains(&self.name) {
            return Err(Errno::EEXIST);
        }
        let mut cx = LoadCtx {
            kernel,
            module: &self.name,
            lib: &self.lib,
        };
        let reg = RumpRegistrar {
            abi_version: ABI_VERSION,
            reserved: 0,
            ctx: (&mut cx as *mut LoadCtx<'_>).cast(),
            add_syscall: reg_add_syscall,
            add_etfs: reg_add_etfs,
            add_fstype: reg_add_fstype,
            log: reg_log,
        };
        // SAFETY: `init` is the component's entry point; `reg` and `cx` outlive the call,
        // and the registrar's callbacks only use `ctx` during it.
        let rc = unsafe { (self.init)(&reg) };
        if rc != 0 {
            mods.forget_owned(kernel, &self.name);
            return Err(errno_of(rc));
        }
        let handle = Box::new(CModule {
            fini: self.fini,
            _lib: self.lib.clone(),
        });
        Ok((self.name, handle))
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn errno_of(rc: c_int) -> Errno {
    match u16::try_from(rc) {
        Ok(n) if n > 0 => Errno::from_raw(n),
        _ => Errno::EINVAL,
    }
}

/// What the registrar's callbacks need during `init`.
struct LoadCtx<'a> {
    kernel: &'a Kernel,
    module: &'a str,
    lib: &'a Arc<Library>,
}

/// # Safety
/// `ctx` must be the registrar's context, alive for the duration of `init`.
unsafe fn load_ctx<'a>(ctx: *mut c_void) -> Option<&'a LoadCtx<'a>> {
    // SAFETY: by the caller's contract `ctx` is our `LoadCtx` or null.
    unsafe { ctx.cast::<LoadCtx<'a>>().as_ref() }
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

extern "C" fn reg_add_syscall(ctx: *mut c_void, desc: *const RumpSyscallDesc) -> c_int {
    // SAFETY: the component passes back the registrar's ctx and a pointer to its desc.
    let (Some(cx), Some(d)) = (unsafe { load_ctx(ctx) }, unsafe { desc.as_ref() }) else {
        return c_int::from(Errno::EINVAL.raw());
    };
    let d = *d;
    let slot = |i: i32| -> Result<Option<usize>, ()> {
        match i {
            -1 => Ok(None),
            0..=7 => Ok(Some(i as usize)),
            _ => Err(()),
        }
    };
    let pair = |p: i32, l: i32| -> Result<Option<(usize, usize)>, ()> {
        match (slot(p)?, slot(l)?) {
            (Some(p), Some(l)) if p != l => Ok(Some((p, l))),
            (None, None) => Ok(None),
            _ => Err(()),
        }
    };
    let (Ok(input), Ok(output)) = (
        pair(d.in_ptr_arg, d.in_len_arg),
        pair(d.out_ptr_arg, d.out_len_arg),
    ) else {
        return c_int::from(Errno::EINVAL.raw());
    };
    if d.func.is_none() || d.max_len > MAX_SYSCALL_BUF || d.number < 0 {
        return c_int::from(Errno::EINVAL.raw());
    }
    let sc = CSyscall {
        desc: d,
        spec: ExtSpec {
            input,
            output,
            max_len: d.max_len as usize,
        },
        _lib: cx.lib.clone(),
    };
    match cx
        .kernel
        .modules()
        .add_syscall(cx.module, d.number as u32, Arc::new(sc))
    {
        Ok(()) => 0,
        Err(e) => c_int::from(e.raw()),
    }
}

extern "C" fn reg_add_etfs(
    ctx: *mut c_void,
    key: *const c_char,
    hostpath: *const c_char,
    typ: c_int,
    begin: u64,
    size: u64,
) -> c_int {
    // SAFETY: registrar ctx and NUL-terminated strings by the ABI.
    let (Some(cx), Some(key), Some(hostpath)) =
        (unsafe { load_ctx(ctx) }, unsafe { c_str(key) }, unsafe {
            c_str(hostpath)
        })
    else {
        return c_int::from(Errno::EINVAL.raw());
    };
    let etype = match typ {
        0 => EtfsType::Reg,
        1 => EtfsType::Blk,
        2 => EtfsType::Chr,
        _ => return c_int::from(Errno::EINVAL.raw()),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(hostpath)
        .map(|f| (f, true))
        .or_else(|_| std::fs::File::open(hostpath).map(|f| (f, false)));
    let host = match file
        .and_then(|(f, w)| crate::hostfile::RingFile::new(f, w).map(|h| h.with_path(hostpath)))
    {
        Ok(h) => h,
        Err(e) => return c_int::from(kernel::hostio::io_errno(&e).raw()),
    };
    let size = (size != u64::MAX).then_some(size);
    match cx
        .kernel
        .etfs_register(key.as_bytes(), Arc::new(host), etype, begin, size)
    {
        Ok(()) => {
            cx.kernel.modules().own_etfs(cx.module, key.as_bytes());
            0
        }
        Err(e) => c_int::from(e.raw()),
    }
}

extern "C" fn reg_add_fstype(
    ctx: *mut c_void,
    name: *const c_char,
    populate: Option<PopulateFn>,
    cookie: *mut c_void,
) -> c_int {
    // SAFETY: registrar ctx and a NUL-terminated name by the ABI.
    let (Some(cx), Some(name), Some(populate)) =
        (unsafe { load_ctx(ctx) }, unsafe { c_str(name) }, populate)
    else {
        return c_int::from(Errno::EINVAL.raw());
    };
    let fs = CFs {
        populate,
        cookie,
        _lib: cx.lib.clone(),
    };
    match cx
        .kernel
        .modules()
        .add_fstype(cx.module, name, Arc::new(fs))
    {
        Ok(()) => 0,
        Err(e) => c_int::from(e.raw()),
    }
}

#[repr(C)]
struct RumpPopulate {
    ctx: *mut c_void,
    mkdir: extern "C" fn(*mut c_void, *const c_char, u32) -> c_int,
    add_file: extern "C" fn(*mut c_void, *const c_char, u32, *const c_void, usize) -> c_int,
    symlink: extern "C" fn(*mut c_void, *const c_char, *const c_char) -> c_int,
}

/// A component's file-system type.
struct CFs {
    populate: PopulateFn,
    cookie: *mut c_void,
    _lib: Arc<Library>,
}

// SAFETY: the ABI requires callbacks callable from any thread; the cookie is the component's.
unsafe impl Send for CFs {}
// SAFETY: as above.
unsafe impl Sync for CFs {}

impl ExtFs for CFs {
    fn populate(&self, p: &mut dyn Populate) -> kernel::Result<()> {
        let mut target: &mut dyn Populate = p;
        let rp = RumpPopulate {
            ctx: (&mut target as *mut &mut dyn Populate).cast(),
            mkdir: pop_mkdir,
            add_file: pop_add_file,
            symlink: pop_symlink,
        };
        // SAFETY: the component's populate, library loaded; `rp` and `target` outlive the
        // call and the callbacks use `ctx` only during it.
        match unsafe { (self.populate)(self.cookie, (&rp as *const RumpPopulate).cast()) } {
            0 => Ok(()),
            rc => Err(errno_of(rc)),
        }
    }
}

/// # Safety
/// `ctx` is the `rump_populate` context of a running populate call.
unsafe fn populator<'a>(ctx: *mut c_void) -> Option<&'a mut &'a mut dyn Populate> {
    // SAFETY: by the caller's contract.
    unsafe { ctx.cast::<&mut dyn Populate>().as_mut() }
}

fn rc(r: kernel::Result<()>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => c_int::from(e.raw()),
    }
}

extern "C" fn pop_mkdir(ctx: *mut c_void, path: *const c_char, mode: u32) -> c_int {
    // SAFETY: populate ctx and a NUL-terminated path by the ABI.
    match (unsafe { populator(ctx) }, unsafe { c_str(path) }) {
        (Some(p), Some(path)) => rc(p.mkdir(path.as_bytes(), mode)),
        _ => c_int::from(Errno::EINVAL.raw()),
    }
}

extern "C" fn pop_add_file(
    ctx: *mut c_void,
    path: *const c_char,
    mode: u32,
    data: *const c_void,
    len: usize,
) -> c_int {
    if data.is_null() && len > 0 || len > (64 << 20) {
        return c_int::from(Errno::EINVAL.raw());
    }
    let bytes: &[u8] = match len {
        0 => &[],
        // SAFETY: the component passes `len` readable bytes at `data`.
        _ => unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) },
    };
    // SAFETY: populate ctx and a NUL-terminated path by the ABI.
    match (unsafe { populator(ctx) }, unsafe { c_str(path) }) {
        (Some(p), Some(path)) => rc(p.add_file(path.as_bytes(), mode, bytes)),
        _ => c_int::from(Errno::EINVAL.raw()),
    }
}

extern "C" fn pop_symlink(ctx: *mut c_void, path: *const c_char, target: *const c_char) -> c_int {
    // SAFETY: populate ctx and NUL-terminated strings by the ABI.
    match (unsafe { populator(ctx) }, unsafe { c_str(path) }, unsafe {
        c_str(target)
    }) {
        (Some(p), Some(path), Some(target)) => rc(p.symlink(path.as_bytes(), target.as_bytes())),
        _ => c_int::from(Errno::EINVAL.raw()),
    }
}

extern "C" fn reg_log(ctx: *mut c_void, line: *const c_char) {
    // SAFETY: registrar ctx and a NUL-terminated string by the ABI.
    if let (Some(cx), Some(line)) = (unsafe { load_ctx(ctx) }, unsafe { c_str(line) }) {
        let msg = format!("{}: {line}\n", cx.module);
        cx.kernel.host().console_write(msg.as_bytes());
    }
}

/// A component's system call.
struct CSyscall {
    desc: RumpSyscallDesc,
    spec: ExtSpec,
    _lib: Arc<Library>,
}

// SAFETY: the ABI requires component system calls to be callable from any thread,
// concurrently (include/rump_component.h, "Threading"); the cookie is the component's.
unsafe impl Send for CSyscall {}
// SAFETY: as above.
unsafe impl Sync for CSyscall {}

impl ExtSyscall for CSyscall {
    fn spec(&self) -> ExtSpec {
        self.spec
    }

    fn call(
        &self,
        args: &[u64; 8],
        input: &[u8],
        output: &mut [u8],
    ) -> kernel::Result<([i64; 2], usize)> {
        let func = self.desc.func.ok_or(Errno::ENOSYS)?;
        let mut out_len = 0usize;
        let mut rv = [0i64; 2];
        // SAFETY: the function pointer comes from the still-loaded library (`_lib`); every
        // pointer passed is valid for the stated length during the call.
        let rc = unsafe {
            func(
                self.desc.cookie,
                args.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                output.as_mut_ptr().cast(),
                &mut out_len,
                rv.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(errno_of(rc));
        }
        Ok((rv, out_len))
    }
}

/// A loaded component, for unloading.
struct CModule {
    fini: Option<unsafe extern "C" fn() -> c_int>,
    _lib: Arc<Library>,
}

// SAFETY: `fini` is a plain function of the library; the library handle is thread-safe.
unsafe impl Send for CModule {}
// SAFETY: as above.
unsafe impl Sync for CModule {}

impl ExtModule for CModule {
    fn fini(&self) -> kernel::Result<()> {
        let Some(f) = self.fini else {
            return Err(Errno::EBUSY);
        };
        // SAFETY: the component's own fini, library still loaded.
        match unsafe { f() } {
            0 => Ok(()),
            rc => Err(errno_of(rc)),
        }
    }
}

/// The kernel's loader of external components (`-m` files and `modctl` loads by clients).
pub struct Loader;

impl ModuleLoader for Loader {
    fn load(
        &self,
        kernel: &Kernel,
        open: &Path,
        shown: &Path,
    ) -> kernel::Result<(String, Box<dyn ExtModule>)> {
        let opened = open_as(open, shown).map_err(|msg| {
            kernel
                .host()
                .console_write(format!("module load: {msg}\n").as_bytes());
            Errno::ENOEXEC
        })?;
        opened.init(kernel)
    }
}
