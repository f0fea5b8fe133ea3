//! `__sysctl` (kern_sysctl.c): name lookup, `CTL_QUERY`, `CTL_DESCRIBE`, reads and writes
//! of the MIB (`crate::sysctl`), with NetBSD's `oldlenp` rules.
//!
//! `*oldlenp` is read first and written back after the operation even when it failed; a
//! NULL old buffer is a size probe; a buffer too small receives what fits (a value's first
//! bytes, whole nodes or whole descriptions) and the call fails with `ENOMEM`, `*oldlenp`
//! telling the size needed. The tree's lock is never held across a copy.

use super::{ret, Args, Ctx, SysResult};
use crate::sysctl::{
    ArgsCall, Env, Target, CTLFLAG_ANYWRITE, CTLFLAG_PRIVATE, CTLFLAG_READWRITE, CTLTYPE_BOOL,
    CTLTYPE_INT, CTLTYPE_QUAD, CTLTYPE_STRING, CTLTYPE_STRUCT, CTL_CREATE, CTL_DESCRIBE,
    CTL_DESTROY, CTL_MAXNAME, CTL_QUERY, NODE_SIZE, SYSCTL_VERSION, SYSCTL_VERS_MASK,
};
use crate::{copy, Errno, Result, UserMem};

/// The caller's buffers.
struct Req {
    oldp: u64,
    oldlen: u64,
    newp: u64,
    newlen: u64,
}

/// `__sysctl(name, namelen, oldv, oldlenp, newv, newlen)`; `sysctl(3)`.
pub async fn sysctl<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (namep, namelen, oldlenp) = (a.word(0), a.uint(1) as usize, a.word(3));
    let mut req = Req {
        oldp: a.word(2),
        oldlen: 0,
        newp: a.word(4),
        newlen: a.word(5),
    };
    if oldlenp != 0 {
        let b = copy::copyin(c.mem, oldlenp, 8).await?;
        req.oldlen = u64::from_le_bytes(b[..8].try_into().map_err(|_| Errno::EFAULT)?);
    }
    let savelen = req.oldlen;
    if !(1..=CTL_MAXNAME).contains(&namelen) {
        return Err(Errno::EINVAL);
    }
    let raw = copy::copyin(c.mem, namep, namelen * 4).await?;
    let name: Vec<i32> = raw
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut r = dispatch(c, &name, &mut req).await;
    if oldlenp != 0 {
        let n = copy::copyout(c.mem, oldlenp, &req.oldlen.to_le_bytes()).await;
        if r.is_ok() {
            r = n;
        }
    }
    r?;
    if req.oldp != 0 && savelen < req.oldlen {
        return Err(Errno::ENOMEM);
    }
    ret(0)
}

async fn dispatch<M: UserMem>(c: &Ctx<'_, M>, name: &[i32], req: &mut Req) -> Result<()> {
    let root = c.p.cred().is_root();
    let mib = c.k.sysctl();
    match mib.resolve(name, root)? {
        Target::Leaf => lookup(c, name, req).await,
        Target::Meta(op) => {
            let parent = &name[..name.len() - 1];
            match op {
                CTL_QUERY => query(c, parent, req).await,
                CTL_DESCRIBE => describe(c, parent, req).await,
                // The tree cannot be changed by processes here (NetBSD's rump kernel
                // refuses them too); a request without a node is EINVAL first.
                CTL_CREATE | CTL_DESTROY if req.newp == 0 => Err(Errno::EINVAL),
                CTL_CREATE | CTL_DESTROY => Err(Errno::EPERM),
                _ => Err(Errno::EOPNOTSUPP),
            }
        }
    }
}

/// `sysctl_cvt_in`: the request node of a query or description; returns (num, ver, desc).
async fn request_node<M: UserMem>(c: &Ctx<'_, M>, req: &Req) -> Result<(i32, u32, u64)> {
    if req.newp == 0 || req.newlen < 4 {
        return Err(Errno::EINVAL);
    }
    let f = copy::copyin(c.mem, req.newp, 4).await?;
    let flags = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
    if req.newlen != NODE_SIZE as u64 || flags & SYSCTL_VERS_MASK != SYSCTL_VERSION {
        return Err(Errno::EINVAL);
    }
    let n = copy::copyin(c.mem, req.newp, NODE_SIZE).await?;
    let word = |o: usize| u32::from_le_bytes([n[o], n[o + 1], n[o + 2], n[o + 3]]);
    let desc = u64::from(word(88)) | u64::from(word(92)) << 32;
    Ok((word(4) as i32, word(40), desc))
}

/// Copies out the records that fit whole, in order, each after the last one copied (a
/// record that does not fit in what is left is skipped, as NetBSD's loops do); `*oldlenp`
/// becomes the total.
async fn copy_records<M: UserMem>(c: &Ctx<'_, M>, recs: &[&[u8]], req: &mut Req) -> Result<()> {
    let total: usize = recs.iter().map(|r| r.len()).sum();
    if req.oldp != 0 {
        let mut out = Vec::new();
        for r in recs {
            if (out.len() + r.len()) as u64 <= req.oldlen {
                out.extend_from_slice(r);
            }
        }
        if !out.is_empty() {
            copy::copyout(c.mem, req.oldp, &out).await?;
        }
    }
    req.oldlen = total as u64;
    Ok(())
}

async fn query<M: UserMem>(c: &Ctx<'_, M>, parent: &[i32], req: &mut Req) -> Result<()> {
    // ENOTDIR for a leaf comes before the request node is looked at.
    c.k.sysctl().query(parent, 0)?;
    let (_, ver, _) = request_node(c, req).await?;
    let all = c.k.sysctl().query(parent, ver)?;
    let recs: Vec<&[u8]> = all.chunks(NODE_SIZE).collect();
    copy_records(c, &recs, req).await
}

async fn describe<M: UserMem>(c: &Ctx<'_, M>, parent: &[i32], req: &mut Req) -> Result<()> {
    let root = c.p.cred().is_root();
    c.k.sysctl().describe(parent, None, root)?;
    let one = match req.newp {
        0 => None,
        _ => {
            let (num, _, desc) = request_node(c, req).await?;
            if desc != 0 {
                // Setting a description: only root may, and never on the permanent tree
                // a rump kernel has.
                return Err(Errno::EPERM);
            }
            Some(num)
        }
    };
    let recs = c.k.sysctl().describe(parent, one, root)?;
    let recs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
    copy_records(c, &recs, req).await
}

/// `sysctl_lookup`: read the leaf, then write it when a new value is given.
async fn lookup<M: UserMem>(c: &Ctx<'_, M>, name: &[i32], req: &mut Req) -> Result<()> {
    if req.newlen == 0 {
        req.newp = 0;
    }
    let root = c.p.cred().is_root();
    let env = Env {
        k: c.k,
        p: c.p,
        name,
        oldlen: req.oldlen,
    };
    if let Some((f, flags, depth)) = c.k.sysctl().args_leaf(name) {
        return args_leaf(c, &env, (f, flags, depth), req).await;
    }
    let v = c.k.sysctl().read_leaf(&env)?;
    if req.newp != 0 {
        if v.flags & CTLFLAG_ANYWRITE == 0 && !root {
            return Err(Errno::EPERM);
        }
        if v.flags & CTLFLAG_READWRITE == 0 {
            return Err(Errno::EPERM);
        }
    }
    if req.oldp != 0 {
        let n = v
            .data
            .len()
            .min(usize::try_from(req.oldlen).unwrap_or(usize::MAX));
        if n > 0 {
            copy::copyout(c.mem, req.oldp, &v.data[..n]).await?;
        }
    }
    req.oldlen = v.data.len() as u64;
    if req.newp == 0 {
        return Ok(());
    }
    let sz = v.size;
    let data = match v.ty {
        CTLTYPE_BOOL => {
            if req.newlen != sz {
                return Err(Errno::EINVAL);
            }
            let b = copy::copyin(c.mem, req.newp, sz as usize).await?;
            if b.iter().any(|&x| x > 1) {
                return Err(Errno::EINVAL);
            }
            b
        }
        CTLTYPE_INT | CTLTYPE_QUAD | CTLTYPE_STRUCT => {
            if req.newlen != sz {
                return Err(Errno::EINVAL);
            }
            copy::copyin(c.mem, req.newp, sz as usize).await?
        }
        CTLTYPE_STRING => {
            // Shorter than the node is fine, with or without the NUL; a full-size string
            // must end in one.
            if req.newlen > sz {
                return Err(Errno::EINVAL);
            }
            let mut b = copy::copyin(c.mem, req.newp, req.newlen as usize).await?;
            if req.newlen == sz && b.last() != Some(&0) {
                return Err(Errno::EINVAL);
            }
            let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
            b.truncate(end);
            b
        }
        _ => return Err(Errno::EINVAL),
    };
    if !v.stored {
        // A computed value is written through its function, if it has one; else it has
        // nowhere to keep a new one.
        return match &v.write {
            Some(w) => w(&env, &data),
            None => Err(Errno::EOPNOTSUPP),
        };
    }
    c.k.sysctl().store(name, data)
}

/// A leaf that takes the name components below it (NetBSD's handlers such as
/// `sysctl_unpcblist`): read-only (a new value is ignored), its function decides what is
/// copied out and what `*oldlenp` becomes; it runs without the tree's lock.
async fn args_leaf<M: UserMem>(
    c: &Ctx<'_, M>,
    env: &Env<'_>,
    (f, flags, depth): (crate::sysctl::ArgsFn, u32, usize),
    req: &mut Req,
) -> Result<()> {
    let root = c.p.cred().is_root();
    if flags & CTLFLAG_PRIVATE != 0 && !root {
        return Err(Errno::EPERM);
    }
    // A new value is ignored, as NetBSD's handlers ignore `newp`.
    let call = ArgsCall {
        args: &env.name[depth..],
        probe: req.oldp == 0,
    };
    let out = f(env, &call)?;
    if req.oldp != 0 && !out.data.is_empty() {
        let n = out
            .data
            .len()
            .min(usize::try_from(req.oldlen).unwrap_or(usize::MAX));
        copy::copyout(c.mem, req.oldp, &out.data[..n]).await?;
    }
    req.oldlen = out.oldlen;
    Ok(())
}
