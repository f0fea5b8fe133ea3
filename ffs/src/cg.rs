//! Cylinder groups: the `struct cg` block with its inode map, fragment map and cluster map.
//!
//! A `Cg` keeps the raw block (fields the engine does not use are written back unchanged).
//! The free counts in `cg_cs` are kept exact by every change; the derived tables (`cg_frsum`,
//! the cluster map and cluster summary) are rebuilt from the fragment map by `rebuild` before
//! the block is written, so they can never drift from the maps.

use crate::le::*;
use crate::sb::{Csum, Superblock};

/// `cg_magic`.
pub const CG_MAGIC: i32 = 0x090255;

const CS_OFF: usize = 24;
const FRSUM_OFF: usize = 52;

/// The bits of one whole free block in [`Cg::block_bits`].
pub fn block_mask(sb: &Superblock) -> u8 {
    ((1u16 << sb.frag.min(8)) - 1) as u8
}

/// One cylinder group in memory.
#[derive(Clone, Debug)]
pub struct Cg {
    /// The `fs_cgsize` bytes of the block.
    pub raw: Vec<u8>,
    /// Group number.
    #[allow(dead_code)]
    pub cgx: u32,
    /// Changed since last written.
    pub dirty: bool,
    iused: usize,
    free: usize,
    clustersum: usize,
    cluster: usize,
    /// Fragments in this group (`cg_ndblk`).
    pub ndblk: u64,
    /// `cg_frsum` as the map stands now (kept by `set_frag_free`; the allocator's best-fit
    /// search reads it, as NetBSD's `ffs_alloccg` reads its group's `cg_frsum`).
    live_frsum: [i32; 8],
    /// `frag` of the file system (the block a fragment lies in).
    frag: u64,
}

/// Why a cylinder-group block was refused.
pub fn check_layout(sb: &Superblock, c: u32, raw: &[u8]) -> Result<(), String> {
    if i32_at(raw, 4) != CG_MAGIC {
        return Err(format!("cg {c}: bad magic {:#x}", i32_at(raw, 4)));
    }
    if u32_at(raw, 12) != c {
        return Err(format!("cg {c}: cg_cgx is {}", u32_at(raw, 12)));
    }
    let ndblk = i32_at(raw, 20) as i64;
    if ndblk != sb.cg_frags(c) as i64 {
        return Err(format!(
            "cg {c}: cg_ndblk {ndblk}, expected {}",
            sb.cg_frags(c)
        ));
    }
    let len = raw.len() as u64;
    let fits = |off: i32, n: u64| off >= 168 && off as u64 + n <= len;
    if !fits(i32_at(raw, 92), (sb.ipg as u64).div_ceil(8)) {
        return Err(format!("cg {c}: bad cg_iusedoff"));
    }
    if !fits(i32_at(raw, 96), (sb.fpg as u64).div_ceil(8)) {
        return Err(format!("cg {c}: bad cg_freeoff"));
    }
    if sb.contigsumsize > 0 {
        if !fits(i32_at(raw, 104), (sb.contigsumsize as u64 + 1) * 4) {
            return Err(format!("cg {c}: bad cg_clustersumoff"));
        }
        if !fits(
            i32_at(raw, 108),
            (sb.fpg as u64 / sb.frag as u64).div_ceil(8),
        ) {
            return Err(format!("cg {c}: bad cg_clusteroff"));
        }
    }
    if sb.ufs2 {
        let inited = i32_at(raw, 120);
        if inited < 0 || inited as u32 > sb.ipg {
            return Err(format!("cg {c}: cg_initediblk {inited}"));
        }
    }
    Ok(())
}

impl Cg {
    /// Wraps a cylinder-group block after checking its magic, number and map offsets.
    pub fn from_raw(sb: &Superblock, c: u32, raw: Vec<u8>) -> Result<Cg, String> {
        check_layout(sb, c, &raw)?;
        let mut cg = Cg {
            cgx: c,
            dirty: false,
            iused: i32_at(&raw, 92) as usize,
            free: i32_at(&raw, 96) as usize,
            clustersum: i32_at(&raw, 104).max(0) as usize,
            cluster: i32_at(&raw, 108).max(0) as usize,
            ndblk: sb.cg_frags(c),
            raw,
            live_frsum: [0; 8],
            frag: sb.frag as u64,
        };
        cg.live_frsum = cg.compute_frsum(sb);
        Ok(cg)
    }

    /// Builds an empty group block with newfs's layout (all inodes free, all data free).
    pub fn new_empty(sb: &Superblock, c: u32, time: i64) -> Cg {
        let mut raw = vec![0u8; sb.cgsize as usize];
        let ndblk = sb.cg_frags(c);
        put_i32(&mut raw, 4, CG_MAGIC);
        put_u32(&mut raw, 12, c);
        put_i32(&mut raw, 20, ndblk as i32);
        let mut start = 168usize;
        if sb.ufs2 {
            put_i64(&mut raw, 136, time);
            put_i32(&mut raw, 116, sb.ipg as i32);
            let inited = sb.ipg.min(2 * sb.inopb);
            put_i32(&mut raw, 120, inited as i32);
        } else {
            put_i32(&mut raw, 8, time as i32);
            let ncyl = if c == sb.ncg - 1 { 1 } else { sb.old_cpg };
            put_u16(&mut raw, 16, ncyl as u16);
            put_u16(&mut raw, 18, sb.ipg as u16);
            put_i32(&mut raw, 84, start as i32);
            put_i32(&mut raw, 88, (start + sb.old_cpg as usize * 4) as i32);
            start += sb.old_cpg as usize * 6;
        }
        put_i32(&mut raw, 92, start as i32);
        let freeoff = start + (sb.ipg as usize).div_ceil(8);
        put_i32(&mut raw, 96, freeoff as i32);
        let mut next = freeoff + (sb.fpg as usize).div_ceil(8);
        if sb.contigsumsize > 0 {
            let sumoff = next.next_multiple_of(4) - 4;
            put_i32(&mut raw, 104, sumoff as i32);
            let clusteroff = sumoff + (sb.contigsumsize as usize + 1) * 4;
            put_i32(&mut raw, 108, clusteroff as i32);
            put_i32(&mut raw, 112, (ndblk / sb.frag as u64) as i32);
            next = clusteroff + (sb.fpg as usize / sb.frag as usize).div_ceil(8);
        }
        put_i32(&mut raw, 100, next as i32);
        Cg::from_raw(sb, c, raw).expect("newfs group layout is valid")
    }

    /// `cg_cs`.
    pub fn cs(&self) -> Csum {
        Csum::decode32(&self.raw[CS_OFF..CS_OFF + 16])
    }

    /// Replaces `cg_cs`.
    pub fn set_cs(&mut self, cs: &Csum) {
        cs.encode32(&mut self.raw[CS_OFF..CS_OFF + 16]);
        self.dirty = true;
    }

    /// Adds `d` to `cg_cs`.
    pub fn add_cs(&mut self, d: &Csum) {
        let mut cs = self.cs();
        cs.add(d);
        self.set_cs(&cs);
    }

    /// Is inode `i` (relative to the group) in use?
    pub fn inode_used(&self, i: u32) -> bool {
        self.raw[self.iused + i as usize / 8] & (1 << (i % 8)) != 0
    }

    /// Marks inode `i` used or free.
    pub fn set_inode_used(&mut self, i: u32, used: bool) {
        let b = &mut self.raw[self.iused + i as usize / 8];
        if used {
            *b |= 1 << (i % 8);
        } else {
            *b &= !(1 << (i % 8));
        }
        self.dirty = true;
    }

    /// Is fragment `f` (relative to the group base) free?
    pub fn frag_free(&self, f: u64) -> bool {
        self.raw[self.free + f as usize / 8] & (1 << (f % 8)) != 0
    }

    /// Marks fragment `f` free or used.
    pub fn set_frag_free(&mut self, f: u64, free: bool) {
        let f0 = f - f % self.frag;
        let before = self.block_runs(f0);
        let b = &mut self.raw[self.free + f as usize / 8];
        if free {
            *b |= 1 << (f % 8);
        } else {
            *b &= !(1 << (f % 8));
        }
        let after = self.block_runs(f0);
        for i in 0..8 {
            self.live_frsum[i] += after[i] - before[i];
        }
        self.dirty = true;
    }

    /// The maximal free runs (by length) of the block starting at `f0` if it is partly used
    /// (a whole free block has none: `cg_frsum` counts fragments only).
    fn block_runs(&self, f0: u64) -> [i32; 8] {
        let mut sum = [0i32; 8];
        let frag = self.frag;
        let valid = |f: u64| f < self.ndblk;
        let free = |f: u64| valid(f) && self.raw[self.free + f as usize / 8] & (1 << (f % 8)) != 0;
        if (f0..f0 + frag).all(|f| valid(f) && free(f)) {
            return sum;
        }
        let mut run = 0usize;
        for f in f0..f0 + frag {
            if free(f) {
                run += 1;
            } else {
                if run > 0 {
                    sum[run] += 1;
                }
                run = 0;
            }
        }
        if run > 0 && run < 8 {
            sum[run] += 1;
        }
        sum
    }

    /// `cg_frsum` as the map stands now.
    pub fn live_frsum(&self) -> [i32; 8] {
        self.live_frsum
    }

    /// NetBSD's `ffs_mapsearch`: the first map byte from `start` (a group-relative fragment,
    /// or the fragment rotor when `None`) holding a block with a maximal free run of exactly
    /// `n` fragments (a whole free block when `n` is `frag`), wrapping to the group's start;
    /// moves the fragment rotor to that byte and returns the run's first fragment.
    pub fn mapsearch(&mut self, sb: &Superblock, start: Option<u64>, n: u64) -> Option<u64> {
        let frag = self.frag;
        let has = |cg: &Cg, f0: u64| -> Option<u64> {
            if f0 >= cg.ndblk {
                return None;
            }
            let bits = cg.block_bits(sb, f0) as u32;
            // A run bounded by used fragments or the block's edges, as `around`/`inside`.
            let blk = bits << 1;
            let field = (1u32 << (n + 2)) - 1;
            let inside = ((1u32 << n) - 1) << 1;
            (0..=frag - n)
                .find(|&pos| (blk >> pos) & field == inside)
                .map(|p| f0 + p)
        };
        let start = start.unwrap_or(self.frotor()) / 8;
        let nbytes = (sb.fpg as u64).div_ceil(8);
        let byte_hit = |cg: &Cg, byte: u64| -> Option<u64> {
            (0..8 / frag.min(8)).find_map(|k| has(cg, byte * 8 + k * frag))
        };
        let byte = (start..nbytes)
            .chain(0..=start.min(nbytes.saturating_sub(1)))
            .find(|&b| byte_hit(self, b).is_some())?;
        self.set_frotor(byte * 8);
        byte_hit(self, byte)
    }

    /// Are all fragments of block `blk` (group-relative fragment of its start) free?
    pub fn block_free(&self, sb: &Superblock, f0: u64) -> bool {
        f0 + sb.frag as u64 <= self.ndblk && self.block_bits(sb, f0) == block_mask(sb)
    }

    /// The free bits of the block starting at `f0` (group-relative, a multiple of `frag`),
    /// the first fragment lowest; fragments past `ndblk` read as used. A block's bits lie in
    /// one byte of the map (`frag` is 1, 2, 4 or 8), so a scan tests a block at a time.
    pub fn block_bits(&self, sb: &Superblock, f0: u64) -> u8 {
        let frag = sb.frag as u64;
        let byte = self.raw[self.free + f0 as usize / 8];
        let mut bits = (byte >> (f0 % 8)) & block_mask(sb);
        if f0 + frag > self.ndblk {
            let valid = self.ndblk.saturating_sub(f0);
            bits &= ((1u16 << valid) - 1) as u8;
        }
        bits
    }

    /// Free fragments in the block starting at `f0` (fragments past `ndblk` count as used).
    pub fn free_in_block(&self, sb: &Superblock, f0: u64) -> u32 {
        (f0..(f0 + sb.frag as u64).min(self.ndblk))
            .filter(|&f| self.frag_free(f))
            .count() as u32
    }

    /// `cg_initediblk` (UFS2: inodes below it have been written at least once).
    pub fn initediblk(&self) -> u32 {
        i32_at(&self.raw, 120).max(0) as u32
    }

    /// Sets `cg_initediblk`.
    pub fn set_initediblk(&mut self, n: u32) {
        put_i32(&mut self.raw, 120, n as i32);
        self.dirty = true;
    }

    /// `cg_irotor`, the inode search hint.
    pub fn irotor(&self) -> u32 {
        i32_at(&self.raw, 48).max(0) as u32
    }

    /// Sets the inode search hint.
    pub fn set_irotor(&mut self, v: u32) {
        put_i32(&mut self.raw, 48, v as i32);
    }

    /// `cg_rotor`, the block search hint (group-relative fragment).
    pub fn rotor(&self) -> u64 {
        i32_at(&self.raw, 40).max(0) as u64
    }

    /// Sets the block search hint.
    pub fn set_rotor(&mut self, v: u64) {
        put_i32(&mut self.raw, 40, v as i32);
    }

    /// `cg_frotor`, the fragment search hint (group-relative fragment).
    pub fn frotor(&self) -> u64 {
        i32_at(&self.raw, 44).max(0) as u64
    }

    /// Sets the fragment search hint.
    pub fn set_frotor(&mut self, v: u64) {
        put_i32(&mut self.raw, 44, v as i32);
    }

    /// Counts free blocks and loose free fragments from the map.
    pub fn count_free(&self, sb: &Superblock) -> (i64, i64) {
        let (mut nb, mut nf) = (0i64, 0i64);
        let mut f0 = 0;
        while f0 < self.ndblk {
            if self.block_free(sb, f0) {
                nb += 1;
            } else {
                nf += self.free_in_block(sb, f0) as i64;
            }
            f0 += sb.frag as u64;
        }
        (nb, nf)
    }

    /// Counts used inodes in the map.
    pub fn count_inodes_used(&self, sb: &Superblock) -> u32 {
        (0..sb.ipg).filter(|&i| self.inode_used(i)).count() as u32
    }

    /// Free-run lengths of fragments in partly used blocks (`cg_frsum`), computed from the map.
    pub fn compute_frsum(&self, sb: &Superblock) -> [i32; 8] {
        let mut sum = [0i32; 8];
        let frag = sb.frag as u64;
        let mut f0 = 0;
        while f0 < self.ndblk {
            if !self.block_free(sb, f0) {
                let mut run = 0usize;
                for f in f0..f0 + frag {
                    if f < self.ndblk && self.frag_free(f) {
                        run += 1;
                    } else {
                        if run > 0 {
                            sum[run] += 1;
                        }
                        run = 0;
                    }
                }
                if run > 0 && run < 8 {
                    sum[run] += 1;
                }
            }
            f0 += frag;
        }
        sum
    }

    /// The stored `cg_frsum`.
    pub fn frsum(&self) -> [i32; 8] {
        let mut s = [0; 8];
        for (i, v) in s.iter_mut().enumerate() {
            *v = i32_at(&self.raw, FRSUM_OFF + 4 * i);
        }
        s
    }

    /// Cluster map bit for block `b` (group-relative block number).
    pub fn cluster_free(&self, b: u64) -> bool {
        self.raw[self.cluster + b as usize / 8] & (1 << (b % 8)) != 0
    }

    /// The stored cluster summary (`contigsumsize + 1` counts).
    pub fn clustersum(&self, sb: &Superblock) -> Vec<i32> {
        (0..=sb.contigsumsize as usize)
            .map(|i| i32_at(&self.raw, self.clustersum + 4 * i))
            .collect()
    }

    /// The cluster summary the map implies.
    pub fn compute_clustersum(&self, sb: &Superblock) -> Vec<i32> {
        let mut sum = vec![0i32; sb.contigsumsize as usize + 1];
        let nblk = self.ndblk / sb.frag as u64;
        let mut run = 0u32;
        for b in 0..=nblk {
            if b < nblk && self.block_free(sb, b * sb.frag as u64) {
                run += 1;
            } else if run > 0 {
                sum[run.min(sb.contigsumsize) as usize] += 1;
                run = 0;
            }
        }
        sum
    }

    /// Rebuilds `cg_frsum`, the cluster map and the cluster summary from the fragment map.
    pub fn rebuild(&mut self, sb: &Superblock) {
        let frsum = self.compute_frsum(sb);
        self.live_frsum = frsum;
        for (i, v) in frsum.iter().enumerate() {
            put_i32(&mut self.raw, FRSUM_OFF + 4 * i, *v);
        }
        if sb.contigsumsize > 0 {
            let nblk = self.ndblk / sb.frag as u64;
            let bytes = (sb.fpg as usize / sb.frag as usize).div_ceil(8);
            for i in 0..bytes {
                self.raw[self.cluster + i] = 0;
            }
            for b in 0..nblk {
                if self.block_free(sb, b * sb.frag as u64) {
                    self.raw[self.cluster + b as usize / 8] |= 1 << (b % 8);
                }
            }
            // Entry 0 is never used and, by newfs's layout, overlaps the free map's tail.
            let sum = self.compute_clustersum(sb);
            for (i, v) in sum.iter().enumerate().skip(1) {
                put_i32(&mut self.raw, self.clustersum + 4 * i, *v);
            }
        }
    }

    /// Stamps the write time: `cg_old_time`, and `cg_time` on UFS2 or a UFS1 with
    /// `FS_FLAGS_UPDATED` (as NetBSD's allocator does; dumpfs shows `cg_time` then).
    pub fn set_time(&mut self, sb: &Superblock, t: i64) {
        put_i32(&mut self.raw, 8, t as i32);
        if sb.ufs2 || sb.old_flags & crate::sb::FS_FLAGS_UPDATED != 0 {
            put_i64(&mut self.raw, 136, t);
        }
    }
}
