//! modctl(2) (`sys_module.c`: `sys_modctl`, `handle_modctl_load`, `handle_modctl_stat`) and
//! the system calls external modules serve.

use super::{at, ret, Args, Ctx, SysResult};
use crate::abi::{AT_FDCWD, PATH_MAX};
use crate::module::MAXMODNAME;
use crate::vfs::access;
use crate::{copy, Errno, Result, UserMem};

/// `MODCTL_LOAD`.
pub const MODCTL_LOAD: i32 = 0;
/// `MODCTL_UNLOAD`.
pub const MODCTL_UNLOAD: i32 = 1;
/// `MODCTL_OSTAT`: NetBSD 9's name for the `MODCTL_STAT` of NetBSD 5–8 (`COMPAT_80`), whose
/// 392-byte records the clients of those releases (rumpctrl's `modstat`) ask for.
pub const MODCTL_OSTAT: i32 = 2;
/// `MODCTL_EXISTS`.
pub const MODCTL_EXISTS: i32 = 3;
/// `MODCTL_STAT`.
pub const MODCTL_STAT: i32 = 4;
/// Size of `struct modctl_load`.
const MODCTL_LOAD_LEN: usize = 32;
/// `MAXPROPSLEN`: longest property list text.
const MAXPROPSLEN: u64 = 4096;
/// Size of `modstat_t` (name, addr, source, class, size, refcnt, flags, reqoffset).
pub const MODSTAT_LEN: usize = 64;
/// Size of NetBSD 5–8's `modstat_t` (name[32], required[320], addr, source, class, size,
/// refcnt, flags, reserved[3]).
pub const OMODSTAT_LEN: usize = 392;

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Only the superuser controls modules (`KAUTH_SYSTEM_MODULE`).
fn superuser<M>(c: &Ctx<'_, M>) -> Result<()> {
    if access::is_root(&c.p.cred()) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// `modctl(cmd, arg)` — loads, unloads and lists kernel modules; `modctl(2)`.
pub async fn modctl<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    match a.int(0) {
        MODCTL_LOAD => load(c, a.word(1)).await,
        MODCTL_UNLOAD => {
            let name = copy::copyinstr(c.mem, a.word(1), MAXMODNAME).await?;
            superuser(c)?;
            let name = String::from_utf8(name).map_err(|_| Errno::ENOENT)?;
            c.k.modules().unload(c.k, &name)?;
            ret(0)
        }
        MODCTL_STAT => stat(c, a.word(1)).await,
        // The command number tells the layouts apart: 2 is the old one (NetBSD 9 keeps it
        // as MODCTL_OSTAT under COMPAT_80), 4 the new one.
        MODCTL_OSTAT => ostat(c, a.word(1)).await,
        MODCTL_EXISTS => match a.word(1) {
            0 | 1 => superuser(c).and(ret(0)),
            _ => Err(Errno::EINVAL),
        },
        _ => Err(Errno::EINVAL),
    }
}

/// `handle_modctl_load`: the path (a name without `/` is a built-in module), the property
/// list (at most 4096 bytes, `ENOMEM` beyond; it must be a property-list dictionary, whose
/// contents no module here uses), then the load.
async fn load<M: UserMem>(c: &Ctx<'_, M>, arg: u64) -> SysResult {
    let ml = copy::copyin(c.mem, arg, MODCTL_LOAD_LEN).await?;
    let (filename, props, propslen) = (u64_at(&ml, 0), u64_at(&ml, 16), u64_at(&ml, 24));
    let path = copy::copyinstr(c.mem, filename, PATH_MAX).await?;
    if props != 0 {
        if propslen > MAXPROPSLEN {
            return Err(Errno::ENOMEM);
        }
        let text = copy::copyinstr(c.mem, props, propslen as usize + 1).await?;
        if !text.windows(5).any(|w| w == b"<dict") {
            return Err(Errno::EINVAL);
        }
    }
    superuser(c)?;
    let mods = c.k.modules();
    if !path.contains(&b'/') {
        let name = std::str::from_utf8(&path).map_err(|_| Errno::ENOENT)?;
        mods.load_builtin(name)?;
        return ret(0);
    }
    // A path in the rump namespace: only a host file the operator marked as a module. The
    // vnode (and with it the server's open descriptor the loader opens) is held until the
    // load is done.
    let v = at::vfs(c)?;
    let start = at::start_namei(c, v, AT_FDCWD, &path)?;
    let vn = crate::vfs::namei(&at::nd(c, v), &start, &path, true).await?;
    if vn.vtype() != crate::vfs::VType::Reg {
        return Err(Errno::EFTYPE);
    }
    let (shown, open) = crate::module::module_file_of(&vn).ok_or(Errno::EPERM)?;
    mods.load_file(c.k, &shown, &open)?;
    drop(vn);
    ret(0)
}

/// `handle_modctl_stat`: into the caller's `struct iovec` buffer, as much as fits of: the
/// number of modules (`int`), the `modstat_t` array, the required-modules strings (none
/// here: one NUL byte); then the iovec's length becomes the full size.
async fn stat<M: UserMem>(c: &Ctx<'_, M>, arg: u64) -> SysResult {
    let iov = copy::copyin(c.mem, arg, 16).await?;
    let (base, len) = (u64_at(&iov, 0), u64_at(&iov, 8));
    let rows = c.k.modules().stat();
    let mut out = Vec::with_capacity(4 + rows.len() * MODSTAT_LEN + 1);
    out.extend_from_slice(&(rows.len() as i32).to_le_bytes());
    for r in &rows {
        let mut ms = [0u8; MODSTAT_LEN];
        let n = r.name.len().min(MAXMODNAME - 1);
        ms[..n].copy_from_slice(&r.name.as_bytes()[..n]);
        ms[40..44].copy_from_slice(&(r.source as u32).to_le_bytes());
        ms[44..48].copy_from_slice(&(r.class as u32).to_le_bytes());
        ms[52..56].copy_from_slice(&r.refcnt.to_le_bytes());
        out.extend_from_slice(&ms);
    }
    out.push(0);
    let fit = out.len().min(usize::try_from(len).unwrap_or(usize::MAX));
    if fit > 0 {
        copy::copyout(c.mem, base, &out[..fit]).await?;
    }
    let mut new_iov = [0u8; 16];
    new_iov[..8].copy_from_slice(&base.to_le_bytes());
    new_iov[8..].copy_from_slice(&(out.len() as u64).to_le_bytes());
    copy::copyout(c.mem, arg, &new_iov).await?;
    ret(0)
}

/// `handle_modctl_stat` of NetBSD 5–8 (`compat_80_modstat` in 9): into the caller's `struct
/// iovec` buffer, as much as fits of one 392-byte `modstat_t` per module (no count, no
/// strings after them; no module here requires another); then the iovec's length becomes
/// the full size.
async fn ostat<M: UserMem>(c: &Ctx<'_, M>, arg: u64) -> SysResult {
    let iov = copy::copyin(c.mem, arg, 16).await?;
    let (base, len) = (u64_at(&iov, 0), u64_at(&iov, 8));
    let rows = c.k.modules().stat();
    let mut out = Vec::with_capacity(rows.len() * OMODSTAT_LEN);
    for r in &rows {
        let mut ms = [0u8; OMODSTAT_LEN];
        let n = r.name.len().min(MAXMODNAME - 1);
        ms[..n].copy_from_slice(&r.name.as_bytes()[..n]);
        ms[360..364].copy_from_slice(&(r.source as u32).to_le_bytes());
        ms[364..368].copy_from_slice(&(r.class as u32).to_le_bytes());
        ms[372..376].copy_from_slice(&r.refcnt.to_le_bytes());
        out.extend_from_slice(&ms);
    }
    let fit = out.len().min(usize::try_from(len).unwrap_or(usize::MAX));
    if fit > 0 {
        copy::copyout(c.mem, base, &out[..fit]).await?;
    }
    let mut new_iov = [0u8; 16];
    new_iov[..8].copy_from_slice(&base.to_le_bytes());
    new_iov[8..].copy_from_slice(&(out.len() as u64).to_le_bytes());
    copy::copyout(c.mem, arg, &new_iov).await?;
    ret(0)
}

/// A system call an external module registered (numbers 210–219), else `ENOSYS`: its input
/// buffer is copied in first, its output copied out after a successful call.
pub async fn ext<M: UserMem>(c: &Ctx<'_, M>, nr: u32, a: Args<'_>) -> SysResult {
    let Some(sc) = c.k.modules().syscall(nr) else {
        return Err(Errno::ENOSYS);
    };
    let spec = sc.spec();
    let input = match spec.input {
        Some((ptr, len)) => {
            let n = a.word(len);
            if n > spec.max_len as u64 {
                return Err(Errno::EINVAL);
            }
            copy::copyin(c.mem, a.word(ptr), n as usize).await?
        }
        None => Vec::new(),
    };
    let mut output = match spec.output {
        Some((_, len)) => vec![0u8; a.word(len).min(spec.max_len as u64) as usize],
        None => Vec::new(),
    };
    let (rv, n) = sc.call(a.0, &input, &mut output)?;
    if let Some((ptr, _)) = spec.output {
        if n > output.len() {
            return Err(Errno::EFAULT);
        }
        if n > 0 {
            copy::copyout(c.mem, a.word(ptr), &output[..n]).await?;
        }
    }
    Ok(rv)
}
