//! The sp fast path (docs/sp-fastpath.md): a negotiated extension in which a syscall request
//! carries the client memory the kernel will copy in, so COPYIN/COPYINSTR round trips vanish.
//!
//! Negotiation rides on the handshake: a client that wants the fast path sends the GUEST, FORK
//! or EXEC handshake with [`FAST_FLAG`] set in the subtype and a 16-byte hello in front of the
//! usual payload. NetBSD's server answers an unknown subtype on a new connection with ERROR
//! `AUTH` and closes it, before it creates a process or consumes a fork cookie; the client then
//! connects again and speaks plain sp. A server that grants it answers a longer HANDSHAKE RESP
//! ([`FAST_HANDSHAKE_RESP_LEN`] bytes) with its limits, and from then on accepts
//! [`MsgType::SYSCALL_FAST`] requests (`MsgType::SYSCALL` stays valid).
//!
//! Everything here is pure: no I/O, no panics on input, allocation only by the encoders (what
//! the caller asked to send) and by [`Prefetch::build`] (bounded by the ranges given).

use crate::{Class, Header, MsgType, HEADER_LEN, MAX_SYSCALL_ARGS, SYSCALL_ARG_SLOT};

fn header(len: usize, reqno: u64, class: Class, typ: MsgType, u: u32) -> [u8; HEADER_LEN] {
    Header {
        len: len as u64,
        reqno,
        class,
        typ,
        u,
    }
    .to_bytes()
}

/// Set in a HANDSHAKE request's subtype (`u`) to ask for the fast path: `GUEST | FAST_FLAG`,
/// `FORK | FAST_FLAG`, `EXEC | FAST_FLAG`.
pub const FAST_FLAG: u32 = 0x100;
/// The hello's and the grant's magic number, the bytes `SPFP`.
pub const FAST_MAGIC: u32 = u32::from_le_bytes(*b"SPFP");
/// The fast-path version this crate speaks.
pub const FAST_VERSION: u32 = 1;
/// Bytes of the hello that precedes the handshake's usual payload.
pub const FAST_HELLO_LEN: usize = 16;
/// Payload bytes of a HANDSHAKE RESP that grants the fast path.
pub const FAST_HANDSHAKE_RESP_LEN: usize = 24;
/// Most prefetched ranges one SYSCALL_FAST may carry (the protocol's ceiling; a server may
/// grant fewer).
pub const FAST_MAX_RANGES: u32 = 64;
/// Fixed part of a SYSCALL_FAST payload: `args_len`, `nranges`.
pub const FAST_SYSCALL_FIXED_LEN: usize = 8;
/// Bytes of one range descriptor: `addr`, `len`.
pub const FAST_RANGE_DESC_LEN: usize = 16;

fn u32_at(p: &[u8], off: usize) -> Option<u32> {
    let b = p.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(p: &[u8], off: usize) -> Option<u64> {
    let b = p.get(off..off.checked_add(8)?)?;
    let mut x = [0u8; 8];
    x.copy_from_slice(b);
    Some(u64::from_le_bytes(x))
}

/// Splits a fast handshake payload into the client's version and the usual payload behind the
/// hello. `None` when the hello is short, its magic is wrong or its version is 0.
pub fn parse_fast_hello(p: &[u8]) -> Option<(u32, &[u8])> {
    if u32_at(p, 0)? != FAST_MAGIC {
        return None;
    }
    let version = u32_at(p, 4)?;
    if version == 0 || p.len() < FAST_HELLO_LEN {
        return None;
    }
    Some((version, &p[FAST_HELLO_LEN..]))
}

/// A fast HANDSHAKE request: subtype `base | FAST_FLAG`, the hello, then `payload` (the usual
/// `name\0` or `handshake_fork`, already encoded by the caller).
pub fn encode_fast_handshake_req(out: &mut Vec<u8>, reqno: u64, base: u32, payload: &[u8]) {
    let len = HEADER_LEN + FAST_HELLO_LEN + payload.len();
    out.reserve(len);
    out.extend_from_slice(&header(
        len,
        reqno,
        Class::REQ,
        MsgType::HANDSHAKE,
        base | FAST_FLAG,
    ));
    out.extend_from_slice(&FAST_MAGIC.to_le_bytes());
    out.extend_from_slice(&FAST_VERSION.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // flags, reserved
    out.extend_from_slice(payload);
}

/// What a server granted: the version both speak and its limits for one request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FastGrant {
    /// min(client's version, server's version).
    pub version: u32,
    /// Most ranges one SYSCALL_FAST may carry (≤ [`FAST_MAX_RANGES`]).
    pub max_ranges: u32,
    /// Most prefetched data bytes (the sum of the ranges' lengths) one request may carry.
    pub max_bytes: u32,
}

/// The HANDSHAKE RESP granting the fast path: error 0, then magic, version, limits.
pub fn encode_fast_handshake_resp(out: &mut Vec<u8>, reqno: u64, g: &FastGrant) {
    let len = HEADER_LEN + FAST_HANDSHAKE_RESP_LEN;
    out.reserve(len);
    out.extend_from_slice(&header(len, reqno, Class::RESP, MsgType::HANDSHAKE, 0));
    for v in [0, FAST_MAGIC, g.version, g.max_ranges, g.max_bytes, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads a grant from a HANDSHAKE RESP payload: `None` for a plain (4-byte) answer, a wrong
/// magic or version 0. The error field (first 4 bytes) is the caller's to check.
pub fn parse_fast_handshake_resp(p: &[u8]) -> Option<FastGrant> {
    if p.len() < FAST_HANDSHAKE_RESP_LEN || u32_at(p, 4)? != FAST_MAGIC {
        return None;
    }
    let g = FastGrant {
        version: u32_at(p, 8)?,
        max_ranges: u32_at(p, 12)?.min(FAST_MAX_RANGES),
        max_bytes: u32_at(p, 16)?,
    };
    (g.version != 0).then_some(g)
}

/// Why a SYSCALL_FAST payload was refused. Each means a broken or hostile client: the server
/// answers ERROR `MALFORMED_REQUEST` and closes the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FastError {
    /// Shorter than its fixed part, its argument block or its range descriptors.
    Short,
    /// `args_len` over 64 or not a multiple of 8.
    BadArgsLen,
    /// More ranges than granted.
    TooManyRanges,
    /// A range of length 0.
    EmptyRange,
    /// A range whose end overflows the address space.
    Wraps,
    /// A range that starts before the previous one ends (ranges are sorted and disjoint).
    Overlap,
    /// More data bytes than granted.
    TooLarge,
    /// The data bytes do not add up to the ranges' lengths.
    LengthMismatch,
}

impl std::fmt::Display for FastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            FastError::Short => "payload shorter than its own fields say",
            FastError::BadArgsLen => "argument block not a multiple of 8 up to 64 bytes",
            FastError::TooManyRanges => "more ranges than granted",
            FastError::EmptyRange => "a range of length 0",
            FastError::Wraps => "a range past the end of the address space",
            FastError::Overlap => "ranges not sorted and disjoint",
            FastError::TooLarge => "more prefetched bytes than granted",
            FastError::LengthMismatch => "data length differs from the ranges' total",
        };
        write!(f, "SYSCALL_FAST: {s}")
    }
}

impl std::error::Error for FastError {}

/// A parsed SYSCALL_FAST payload, borrowing it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FastSyscall<'a> {
    /// The argument slots (missing ones zero).
    pub args: [u64; MAX_SYSCALL_ARGS],
    /// The prefetched memory: range descriptors then data, validated.
    pub prefetch: PrefetchRef<'a>,
}

/// Validated prefetched memory: `n` descriptors (`addr`, `len`) sorted by address and
/// disjoint, then their data in the same order. Also the layout a server keeps.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PrefetchRef<'a> {
    n: usize,
    /// Descriptors followed by data (the tail of the payload).
    bytes: &'a [u8],
}

/// Parses a SYSCALL_FAST payload, allowing at most `max_ranges` ranges and `max_bytes` data
/// bytes. Work is linear in the number of ranges, nothing is allocated.
pub fn parse_fast_syscall(
    p: &[u8],
    max_ranges: u32,
    max_bytes: usize,
) -> Result<FastSyscall<'_>, FastError> {
    let args_len = u32_at(p, 0).ok_or(FastError::Short)? as usize;
    let nranges = u32_at(p, 4).ok_or(FastError::Short)?;
    if args_len > MAX_SYSCALL_ARGS * SYSCALL_ARG_SLOT || !args_len.is_multiple_of(SYSCALL_ARG_SLOT)
    {
        return Err(FastError::BadArgsLen);
    }
    if nranges > max_ranges.min(FAST_MAX_RANGES) {
        return Err(FastError::TooManyRanges);
    }
    let args_end = FAST_SYSCALL_FIXED_LEN + args_len;
    let argb = p
        .get(FAST_SYSCALL_FIXED_LEN..args_end)
        .ok_or(FastError::Short)?;
    let args = crate::syscall_args(argb);
    let prefetch = PrefetchRef::parse(&p[args_end..], nranges as usize, max_bytes)?;
    Ok(FastSyscall { args, prefetch })
}

impl<'a> PrefetchRef<'a> {
    /// No prefetched memory.
    pub const EMPTY: PrefetchRef<'static> = PrefetchRef { n: 0, bytes: &[] };

    /// Validates `n` descriptors followed by exactly their data.
    pub fn parse(bytes: &'a [u8], n: usize, max_bytes: usize) -> Result<Self, FastError> {
        let desc_len = n
            .checked_mul(FAST_RANGE_DESC_LEN)
            .ok_or(FastError::TooManyRanges)?;
        if bytes.len() < desc_len {
            return Err(FastError::Short);
        }
        let mut total: u64 = 0;
        let mut prev_end: Option<u64> = None;
        for i in 0..n {
            let addr = u64_at(bytes, i * FAST_RANGE_DESC_LEN).ok_or(FastError::Short)?;
            let len = u64_at(bytes, i * FAST_RANGE_DESC_LEN + 8).ok_or(FastError::Short)?;
            if len == 0 {
                return Err(FastError::EmptyRange);
            }
            let end = addr.checked_add(len).ok_or(FastError::Wraps)?;
            if prev_end.is_some_and(|pe| addr < pe) {
                return Err(FastError::Overlap);
            }
            prev_end = Some(end);
            total = total.checked_add(len).ok_or(FastError::TooLarge)?;
            if total > max_bytes as u64 {
                return Err(FastError::TooLarge);
            }
        }
        if (bytes.len() - desc_len) as u64 != total {
            return Err(FastError::LengthMismatch);
        }
        Ok(PrefetchRef { n, bytes })
    }

    /// A prefetch kept by a server after [`PrefetchRef::parse`] accepted it (and perhaps
    /// changed by [`prefetch_apply_copyout`]): not validated again. Lookups stay bounded and
    /// panic-free whatever `bytes` holds.
    pub fn kept(bytes: &'a [u8], n: usize) -> Self {
        PrefetchRef {
            n: n.min(bytes.len() / FAST_RANGE_DESC_LEN),
            bytes,
        }
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.n
    }

    /// No ranges.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Descriptors and data as received (what a server copies to keep them).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Data bytes (the sum of the ranges' lengths).
    pub fn data_len(&self) -> usize {
        self.bytes
            .len()
            .saturating_sub(self.n * FAST_RANGE_DESC_LEN)
    }

    /// The ranges in address order: `(addr, data)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, &'a [u8])> + 'a {
        let bytes = self.bytes;
        let mut off = self.n * FAST_RANGE_DESC_LEN;
        (0..self.n).map(move |i| {
            let addr = u64_at(bytes, i * FAST_RANGE_DESC_LEN).unwrap_or(0);
            let len = u64_at(bytes, i * FAST_RANGE_DESC_LEN + 8).unwrap_or(0) as usize;
            let end = off.saturating_add(len);
            let d = bytes.get(off..end).unwrap_or(&[]);
            off = end;
            (addr, d)
        })
    }

    /// The range holding `addr`: its start and data.
    fn find(&self, addr: u64) -> Option<(u64, &'a [u8])> {
        self.ranges()
            .take_while(|&(a, _)| a <= addr)
            .find(|&(a, d)| addr - a < d.len() as u64)
    }

    /// A COPYIN of `len` bytes at `addr`, if one range holds all of them.
    pub fn copyin(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        let (a, d) = self.find(addr)?;
        range_copyin(a, d, addr, len)
    }

    /// A COPYINSTR of at most `maxlen` bytes at `addr`, answered as a client would (the string
    /// with its NUL, or `maxlen` bytes without one), if one range holds the answer.
    pub fn copyinstr(&self, addr: u64, maxlen: usize) -> Option<&'a [u8]> {
        let (a, d) = self.find(addr)?;
        range_copyinstr(a, d, addr, maxlen)
    }
}

/// [`PrefetchRef::copyin`] on one range: the client's bytes `data` at `start`. For a server
/// that keeps a single range's data on its own.
pub fn range_copyin(start: u64, data: &[u8], addr: u64, len: usize) -> Option<&[u8]> {
    if len == 0 || addr < start {
        return None;
    }
    let off = usize::try_from(addr - start).ok()?;
    data.get(off..off.checked_add(len)?)
}

/// [`PrefetchRef::copyinstr`] on one range (see [`range_copyin`]).
pub fn range_copyinstr(start: u64, data: &[u8], addr: u64, maxlen: usize) -> Option<&[u8]> {
    if maxlen == 0 || addr < start {
        return None;
    }
    let rest = data.get(usize::try_from(addr - start).ok()?..)?;
    if rest.is_empty() {
        return None;
    }
    let limit = rest.len().min(maxlen);
    match rest[..limit].iter().position(|&c| c == 0) {
        Some(nul) => Some(&rest[..=nul]),
        None if limit == maxlen => Some(&rest[..limit]),
        None => None, // the range ends before a NUL: ask the client
    }
}

/// [`prefetch_apply_copyout`] on one range (see [`range_copyin`]).
pub fn range_apply_copyout(start: u64, data: &mut [u8], addr: u64, out: &[u8]) {
    let Some(oend) = addr.checked_add(out.len() as u64) else {
        return;
    };
    let end = start.saturating_add(data.len() as u64);
    let (lo, hi) = (start.max(addr), end.min(oend));
    if lo < hi {
        let dst = (lo - start) as usize;
        let src = (lo - addr) as usize;
        let k = (hi - lo) as usize;
        if let (Some(d), Some(s)) = (
            data.get_mut(dst..dst.saturating_add(k)),
            out.get(src..src.saturating_add(k)),
        ) {
            d.copy_from_slice(s);
        }
    }
}

/// Overwrites, in a kept prefetch (`bytes` as from [`PrefetchRef::as_bytes`], `n` ranges,
/// already validated), what a COPYOUT of `data` at `addr` changes in the client's memory, so
/// that a later COPYIN of the same syscall sees it as the client would.
pub fn prefetch_apply_copyout(bytes: &mut [u8], n: usize, addr: u64, data: &[u8]) {
    let Some(dend) = addr.checked_add(data.len() as u64) else {
        return;
    };
    let mut off = n * FAST_RANGE_DESC_LEN;
    for i in 0..n {
        let (Some(a), Some(len)) = (
            u64_at(bytes, i * FAST_RANGE_DESC_LEN),
            u64_at(bytes, i * FAST_RANGE_DESC_LEN + 8),
        ) else {
            return;
        };
        let end = off.saturating_add(len as usize);
        if a < dend {
            if let Some(range) = bytes.get_mut(off..end) {
                range_apply_copyout(a, range, addr, data);
            }
        }
        off = end;
    }
}

/// What a client offers to prefetch for one call, in priority order, then sorted, merged and
/// cut to a grant by [`Prefetch::build`].
#[derive(Debug, Default)]
pub struct Prefetch<'m> {
    cand: Vec<(u64, &'m [u8])>,
}

impl<'m> Prefetch<'m> {
    /// An empty set.
    pub fn new() -> Self {
        Prefetch { cand: Vec::new() }
    }

    /// Forgets every candidate, keeping the allocation.
    pub fn clear(&mut self) {
        self.cand.clear();
    }

    /// Offers `data`, the client's memory at `addr` (empty slices are ignored).
    pub fn push(&mut self, addr: u64, data: &'m [u8]) {
        if !data.is_empty() && addr.checked_add(data.len() as u64).is_some() {
            self.cand.push((addr, data));
        }
    }

    /// Number of candidates offered.
    pub fn len(&self) -> usize {
        self.cand.len()
    }

    /// Nothing offered.
    pub fn is_empty(&self) -> bool {
        self.cand.is_empty()
    }

    /// Encodes a SYSCALL_FAST request carrying `args` and the candidates (see
    /// [`encode_fast_syscall`]).
    pub fn encode(
        &mut self,
        out: &mut Vec<u8>,
        reqno: u64,
        sysnum: u32,
        args: &[u64],
        g: &FastGrant,
    ) {
        encode_fast_syscall(out, reqno, sysnum, args, &mut self.cand, g);
    }
}

/// Encodes a SYSCALL_FAST request carrying `args` and as much of `cand` (client memory:
/// `(addr, bytes)`, in priority order) as `g` allows: candidates are cut to the byte budget in
/// the order given (a cut one keeps its first bytes), then sorted by address (in place) and
/// merged where they overlap or touch, and the ranges past `g.max_ranges` by address dropped.
/// Allocates nothing but the room in `out`.
pub fn encode_fast_syscall(
    out: &mut Vec<u8>,
    reqno: u64,
    sysnum: u32,
    args: &[u64],
    cand: &mut [(u64, &[u8])],
    g: &FastGrant,
) {
    let mut budget = g.max_bytes as usize;
    for c in cand.iter_mut() {
        let k = c.1.len().min(budget);
        c.1 = &c.1[..k];
        budget -= k;
    }
    cand.sort_unstable_by_key(|c| c.0);
    let cap = g.max_ranges.min(FAST_MAX_RANGES) as usize;
    // Merged ranges: (addr, len, first candidate, last candidate).
    let mut merged = [(0u64, 0u64, 0usize, 0usize); FAST_MAX_RANGES as usize];
    let mut n: usize = 0;
    for (i, &(a, d)) in cand.iter().enumerate() {
        if d.is_empty() || a.checked_add(d.len() as u64).is_none() {
            continue;
        }
        let end = a + d.len() as u64;
        if let Some(m) = n.checked_sub(1).map(|k| &mut merged[k]) {
            if a <= m.0 + m.1 {
                m.1 = m.1.max(end - m.0);
                m.3 = i;
                continue;
            }
        }
        if n == cap {
            break;
        }
        merged[n] = (a, d.len() as u64, i, i);
        n += 1;
    }
    let merged = &merged[..n];
    let nargs = args.len().min(MAX_SYSCALL_ARGS);
    let data_len: u64 = merged.iter().map(|m| m.1).sum();
    let len = HEADER_LEN
        + FAST_SYSCALL_FIXED_LEN
        + nargs * SYSCALL_ARG_SLOT
        + merged.len() * FAST_RANGE_DESC_LEN
        + data_len as usize;
    out.reserve(len);
    out.extend_from_slice(&header(
        len,
        reqno,
        Class::REQ,
        MsgType::SYSCALL_FAST,
        sysnum,
    ));
    out.extend_from_slice(&((nargs * SYSCALL_ARG_SLOT) as u32).to_le_bytes());
    out.extend_from_slice(&(merged.len() as u32).to_le_bytes());
    for a in &args[..nargs] {
        out.extend_from_slice(&a.to_le_bytes());
    }
    for m in merged {
        out.extend_from_slice(&m.0.to_le_bytes());
        out.extend_from_slice(&m.1.to_le_bytes());
    }
    for m in merged {
        // The union of the merged candidates: each adds what lies past the bytes so far
        // (emptied candidates in between add nothing).
        let mut have = m.0;
        for &(a, d) in &cand[m.2..=m.3] {
            let end = a + d.len() as u64;
            if end > have && a <= have {
                out.extend_from_slice(&d[(have - a) as usize..]);
                have = end;
            }
        }
    }
}

#[cfg(test)]
mod tests;
