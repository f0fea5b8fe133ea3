//! The `pcblist` sysctl leaves (`struct kinfo_pcb` lists, what `netstat` reads): the record
//! layout and NetBSD's handler rules (`sysctl_unpcblist` in uipc_domain.c,
//! `sysctl_inpcblist` in in_pcb.c) shared by the families that serve one.
//!
//! A leaf takes four name components below it: op, arg, element size and count. Without
//! an old buffer it is a size probe: every record counts and `PCB_SLOP` more are added;
//! with one, the element size must be `sizeof(struct kinfo_pcb)` (`EINVAL`), whole records
//! are copied while they fit and the count lasts, and `*oldlenp` is the size of them all
//! (so a short buffer ends in `ENOMEM` at `__sysctl`). Kernel pointers are not the
//! server's: each socket has a made-up kernel-looking address from its number.

use kernel::sysctl::{ArgsCall, ArgsOut, CTL_QUERY};
use kernel::Errno;

/// `sizeof(struct kinfo_pcb)` on amd64.
pub const KINFO_PCB_SIZE: usize = 640;
/// `PCB_SLOP`: records a size probe adds.
pub const PCB_SLOP: u64 = 20;
/// Room for an address in a record (`ki_spad`/`ki_dpad`).
pub const PAD: usize = 264;
/// Name components a `pcblist` leaf takes.
pub const PCBLIST_ARGS: usize = 4;

/// Where made-up kernel addresses start (a kernel-looking amd64 address).
const ADDR_BASE: u64 = 0xffff_a000_0000_0000;

/// A made-up kernel address for object `kind` (0: pcb, 1: socket, 2: vnode, 3: ppcb) of
/// socket number `id`; 0 for none.
pub fn kaddr(id: u64, kind: u64) -> u64 {
    match id {
        0 => 0,
        _ => ADDR_BASE + (id << 8) + (kind << 6),
    }
}

/// One `struct kinfo_pcb`.
#[derive(Clone, Debug, Default)]
pub struct Pcb {
    /// `ki_pcbaddr`.
    pub pcbaddr: u64,
    /// `ki_ppcbaddr`.
    pub ppcbaddr: u64,
    /// `ki_sockaddr`.
    pub sockaddr: u64,
    /// `ki_family`.
    pub family: u32,
    /// `ki_type`.
    pub ty: u32,
    /// `ki_protocol`.
    pub protocol: u32,
    /// `ki_pflags`.
    pub pflags: u32,
    /// `ki_sostate`.
    pub sostate: u32,
    /// `ki_prstate`.
    pub prstate: u32,
    /// `ki_tstate`.
    pub tstate: i32,
    /// `ki_tflags`.
    pub tflags: u32,
    /// `ki_rcvq`.
    pub rcvq: u64,
    /// `ki_sndq`.
    pub sndq: u64,
    /// `ki_src` (at most `PAD` bytes are kept).
    pub src: Vec<u8>,
    /// `ki_dst`.
    pub dst: Vec<u8>,
    /// `ki_inode`.
    pub inode: u64,
    /// `ki_vnode`.
    pub vnode: u64,
    /// `ki_conn`.
    pub conn: u64,
    /// `ki_refs`.
    pub refs: u64,
    /// `ki_nextref`.
    pub nextref: u64,
}

impl Pcb {
    /// The record's bytes (amd64 layout of sys/socket.h).
    pub fn encode(&self) -> [u8; KINFO_PCB_SIZE] {
        let mut b = [0u8; KINFO_PCB_SIZE];
        let q = |b: &mut [u8; KINFO_PCB_SIZE], o: usize, v: u64| {
            b[o..o + 8].copy_from_slice(&v.to_le_bytes())
        };
        let w = |b: &mut [u8; KINFO_PCB_SIZE], o: usize, v: u32| {
            b[o..o + 4].copy_from_slice(&v.to_le_bytes())
        };
        q(&mut b, 0, self.pcbaddr);
        q(&mut b, 8, self.ppcbaddr);
        q(&mut b, 16, self.sockaddr);
        w(&mut b, 24, self.family);
        w(&mut b, 28, self.ty);
        w(&mut b, 32, self.protocol);
        w(&mut b, 36, self.pflags);
        w(&mut b, 40, self.sostate);
        w(&mut b, 44, self.prstate);
        w(&mut b, 48, self.tstate as u32);
        w(&mut b, 52, self.tflags);
        q(&mut b, 56, self.rcvq);
        q(&mut b, 64, self.sndq);
        let n = self.src.len().min(PAD);
        b[72..72 + n].copy_from_slice(&self.src[..n]);
        let n = self.dst.len().min(PAD);
        b[72 + PAD..72 + PAD + n].copy_from_slice(&self.dst[..n]);
        q(&mut b, 600, self.inode);
        q(&mut b, 608, self.vnode);
        q(&mut b, 616, self.conn);
        q(&mut b, 624, self.refs);
        q(&mut b, 632, self.nextref);
        b
    }
}

/// NetBSD's handler loop over `pcbs` for a call with `oldlen` bytes of room (see the
/// module documentation). `CTL_QUERY` below the leaf is `ENOTDIR` (`sysctl_query` on a
/// leaf), any other count of components `EINVAL`.
pub fn serve(call: &ArgsCall<'_>, oldlen: u64, pcbs: &[Pcb]) -> Result<ArgsOut, Errno> {
    if call.args == [CTL_QUERY] {
        return Err(Errno::ENOTDIR);
    }
    let [_op, _arg, elem_size, elem_count] = *call.args else {
        return Err(Errno::EINVAL);
    };
    let (mut len, mut count) = if call.probe {
        (0, i32::MAX)
    } else {
        if elem_size as usize != KINFO_PCB_SIZE {
            return Err(Errno::EINVAL);
        }
        (oldlen, elem_count)
    };
    let mut data = Vec::new();
    let mut needed = 0u64;
    for p in pcbs {
        if len >= KINFO_PCB_SIZE as u64 && count > 0 {
            data.extend_from_slice(&p.encode());
            len -= KINFO_PCB_SIZE as u64;
        }
        needed += KINFO_PCB_SIZE as u64;
        if count > 0 && count != i32::MAX {
            count -= 1;
        }
    }
    if call.probe {
        needed += PCB_SLOP * KINFO_PCB_SIZE as u64;
    }
    Ok(ArgsOut {
        data,
        oldlen: needed,
    })
}
