//! `check`: a read-only consistency checker in the spirit of `fsck_ffs -n`.
//!
//! It verifies the superblock, every cylinder group (layout, maps, counts, fragment and
//! cluster summaries), every inode's block tree (pointers in range and outside metadata, no
//! fragment claimed twice, nothing past EOF, `di_blocks`), that the maps agree with what the
//! inodes claim (no leaked or wrongly free fragments or inodes), the summary area and
//! totals, and the directory tree (entry format, `.` and `..`, reachability, no directory
//! with two parents or in a loop, link counts). It never writes and every walk is bounded.

use crate::cg::Cg;
use crate::dir::{self, DIRBLKSIZ};
use crate::fs::overlaps_metadata;
use crate::inode::*;
use crate::sb::{Csum, SbError, Superblock, CSUM_SIZE, DEV_BSIZE, NDADDR, ROOTINO};
use crate::Disk;
use std::collections::{HashMap, VecDeque};

/// At most this many findings are listed (the last one says how many more there were).
const MAX_FINDINGS: usize = 500;
const DT_WHT: u8 = 14;

struct Findings {
    list: Vec<String>,
    more: usize,
}

impl Findings {
    fn push(&mut self, s: String) {
        if self.list.len() < MAX_FINDINGS {
            self.list.push(s);
        } else {
            self.more += 1;
        }
    }
}

struct InodeInfo {
    ip: Dinode,
    /// Data block addresses by logical block (directories only; 0 for holes).
    dir_blocks: Vec<u64>,
}

struct Checker<'a, D: Disk> {
    disk: &'a D,
    sb: Superblock,
    out: Findings,
    claimed: Vec<u64>,
}

/// Checks the file system on `disk`; returns the inconsistencies found, one line each (an
/// empty list: clean). No usable superblock is an `Err`.
pub async fn check<D: Disk>(disk: &D) -> Result<Vec<String>, SbError> {
    let sb = Superblock::find(disk).await?;
    if sb.bytes() > disk.size() {
        return Ok(vec![format!(
            "file system ({} bytes) is larger than the device ({} bytes)",
            sb.bytes(),
            disk.size()
        )]);
    }
    let words = sb.size.div_ceil(64) as usize;
    let mut c = Checker {
        disk,
        sb,
        out: Findings {
            list: Vec::new(),
            more: 0,
        },
        claimed: vec![0; words],
    };
    c.run().await;
    let mut list = c.out.list;
    if c.out.more > 0 {
        list.push(format!("... and {} more findings", c.out.more));
    }
    Ok(list)
}

impl<D: Disk> Checker<'_, D> {
    fn is_claimed(&self, f: u64) -> bool {
        self.claimed[(f / 64) as usize] & (1 << (f % 64)) != 0
    }

    /// Claims `n` fragments at `addr` for inode `ino`; false if the pointer is unusable.
    fn claim(&mut self, ino: u32, addr: u64, n: u64, what: &str) -> bool {
        let sb = &self.sb;
        if addr.checked_add(n).map_or(true, |e| e > sb.size) {
            self.out.push(format!(
                "inode {ino}: {what} pointer {addr} outside the file system"
            ));
            return false;
        }
        if n > 1 && addr / sb.frag as u64 != (addr + n - 1) / sb.frag as u64 {
            self.out.push(format!(
                "inode {ino}: {what} {addr} (+{n}) crosses a block boundary"
            ));
            return false;
        }
        if overlaps_metadata(sb, addr, n) {
            self.out
                .push(format!("inode {ino}: {what} {addr} points into metadata"));
            return false;
        }
        for f in addr..addr + n {
            if self.is_claimed(f) {
                self.out
                    .push(format!("inode {ino}: fragment {f} claimed twice"));
            }
            self.claimed[(f / 64) as usize] |= 1 << (f % 64);
        }
        true
    }

    async fn read(&mut self, off: u64, buf: &mut [u8], what: &str) -> bool {
        if let Err(e) = self.disk.read(off, buf).await {
            self.out
                .push(format!("cannot read {what} at byte {off}: {e}"));
            return false;
        }
        true
    }

    async fn run(&mut self) {
        let sb = self.sb.clone();
        let mut area = vec![0u8; sb.fragroundup(sb.cssize as u64) as usize];
        if !self
            .read(sb.frag_offset(sb.csaddr), &mut area, "summary area")
            .await
        {
            return;
        }
        let mut cgs: Vec<Option<Cg>> = Vec::new();
        for c in 0..sb.ncg {
            let mut raw = vec![0u8; sb.cgsize as usize];
            if !self
                .read(sb.frag_offset(sb.cgtod(c)), &mut raw, "cylinder group")
                .await
            {
                cgs.push(None);
                continue;
            }
            match Cg::from_raw(&sb, c, raw) {
                Ok(cg) => cgs.push(Some(cg)),
                Err(why) => {
                    self.out.push(why);
                    cgs.push(None);
                }
            }
        }
        let inodes = self.scan_inodes(&cgs).await;
        self.check_maps(&cgs, &inodes, &area);
        self.check_tree(&inodes).await;
    }

    async fn scan_inodes(&mut self, cgs: &[Option<Cg>]) -> HashMap<u32, InodeInfo> {
        let sb = self.sb.clone();
        let mut out = HashMap::new();
        let isz = sb.inode_size() as usize;
        for (c, cg) in cgs.iter().enumerate() {
            let Some(cg) = cg else { continue };
            let limit = if sb.ufs2 { cg.initediblk() } else { sb.ipg };
            for i in limit..sb.ipg {
                if cg.inode_used(i) {
                    let ino = c as u32 * sb.ipg + i;
                    self.out
                        .push(format!("inode {ino}: marked used but never initialised"));
                }
            }
            let mut blk = vec![0u8; sb.bsize as usize];
            for i in 0..limit {
                let ino = c as u32 * sb.ipg + i;
                if i % sb.inopb == 0 {
                    let off = sb.inode_offset(ino);
                    let n = ((limit - i) as usize * isz).min(blk.len());
                    if !self.read(off, &mut blk[..n], "inode block").await {
                        return out;
                    }
                }
                let at = (i % sb.inopb) as usize * isz;
                let ip = Dinode::decode(sb.ufs2, &blk[at..at + isz]);
                if ino < ROOTINO {
                    if !cg.inode_used(i) {
                        self.out
                            .push(format!("inode {ino}: reserved inode marked free"));
                    }
                    continue;
                }
                if ip.mode == 0 {
                    if cg.inode_used(i) {
                        self.out
                            .push(format!("inode {ino}: marked used but unallocated"));
                    }
                    continue;
                }
                if !cg.inode_used(i) {
                    self.out
                        .push(format!("inode {ino}: allocated but marked free"));
                }
                let dir_blocks = self.check_inode(ino, &ip).await;
                out.insert(ino, InodeInfo { ip, dir_blocks });
            }
        }
        out
    }

    /// Checks one inode's type, size and block tree; returns a directory's block list.
    async fn check_inode(&mut self, ino: u32, ip: &Dinode) -> Vec<u64> {
        let sb = self.sb.clone();
        let kind = ip.kind();
        match kind {
            IFREG | IFDIR | IFLNK => {}
            IFCHR | IFBLK | IFIFO | IFSOCK => {
                if ip.blocks != 0 {
                    self.out.push(format!(
                        "inode {ino}: special file with {} blocks",
                        ip.blocks
                    ));
                }
                return Vec::new();
            }
            _ => {
                self.out
                    .push(format!("inode {ino}: bad type {:o}", ip.mode));
                return Vec::new();
            }
        }
        if ip.size > sb.maxfilesize {
            self.out
                .push(format!("inode {ino}: size {} beyond the maximum", ip.size));
            return Vec::new();
        }
        let fast = kind == IFLNK
            && ((sb.maxsymlinklen > 0 && ip.size < sb.maxsymlinklen as u64)
                || (sb.maxsymlinklen == 0 && ip.blocks == 0));
        if fast {
            if ip.blocks != 0 {
                self.out.push(format!(
                    "inode {ino}: short symlink with {} blocks",
                    ip.blocks
                ));
            }
            return Vec::new();
        }
        if kind == IFDIR && (ip.size == 0 || ip.size % DIRBLKSIZ as u64 != 0) {
            self.out
                .push(format!("inode {ino}: directory size {}", ip.size));
        }
        let bs = sb.bsize as u64;
        let nblocks = ip.size.div_ceil(bs);
        let mut frags = 0u64;
        let mut dir_blocks = Vec::new();
        for lbn in 0..NDADDR as u64 {
            let a = ip.db[lbn as usize];
            if kind == IFDIR && lbn < nblocks {
                dir_blocks.push(a);
            }
            if a == 0 {
                continue;
            }
            if lbn >= nblocks {
                self.out
                    .push(format!("inode {ino}: direct block {lbn} past EOF"));
                continue;
            }
            // A rejected pointer's fragments still count toward di_blocks, as in NetBSD's
            // fsck_ffs (the pointer is the finding, not the count).
            let n = sb.numfrags(sb.blksize(ip.size, lbn));
            self.claim(ino, a, n, "direct block");
            frags += n;
        }
        let mut start = NDADDR as u64;
        let nind = sb.nindir as u64;
        let mut span = nind;
        for level in 0..3 {
            let top = ip.ib[level];
            if top != 0 {
                frags += self
                    .walk_ind(
                        ino,
                        top,
                        level + 1,
                        start,
                        nblocks,
                        kind == IFDIR,
                        &mut dir_blocks,
                    )
                    .await;
            }
            start += span;
            span *= nind;
        }
        let sectors = frags * sb.fsize as u64 / DEV_BSIZE;
        if sectors != ip.blocks {
            self.out.push(format!(
                "inode {ino}: di_blocks {} but {} sectors allocated",
                ip.blocks, sectors
            ));
        }
        dir_blocks
    }

    /// Walks an indirect block (levels 1..=3) rooted at logical block `base`; returns the
    /// fragments claimed.
    #[allow(clippy::too_many_arguments)]
    async fn walk_ind(
        &mut self,
        ino: u32,
        blk: u64,
        level: usize,
        base: u64,
        nblocks: u64,
        is_dir: bool,
        dir_blocks: &mut Vec<u64>,
    ) -> u64 {
        // An explicit stack instead of recursion: (block, level, first logical block).
        let sb = self.sb.clone();
        let frag = sb.frag as u64;
        let nind = sb.nindir as u64;
        let mut total = 0;
        let mut stack = vec![(blk, level, base)];
        while let Some((b, lvl, first)) = stack.pop() {
            if first >= nblocks {
                self.out
                    .push(format!("inode {ino}: indirect block {b} past EOF"));
            }
            total += frag;
            if b % frag != 0 || !self.claim(ino, b, frag, "indirect block") {
                continue;
            }
            let mut raw = vec![0u8; sb.bsize as usize];
            if !self
                .read(sb.frag_offset(b), &mut raw, "indirect block")
                .await
            {
                continue;
            }
            let span = nind.pow(lvl as u32 - 1);
            let psz = if sb.ufs2 { 8 } else { 4 };
            let mut children = Vec::new();
            for i in 0..nind {
                let o = (i * psz) as usize;
                let p = if sb.ufs2 {
                    crate::le::u64_at(&raw, o)
                } else {
                    crate::le::u32_at(&raw, o) as u64
                };
                let lbn = first + i * span;
                if lvl == 1 && is_dir && lbn < nblocks {
                    dir_blocks.resize(lbn as usize + 1, 0);
                    dir_blocks[lbn as usize] = p;
                }
                if p == 0 {
                    continue;
                }
                if lvl == 1 {
                    if lbn >= nblocks {
                        self.out.push(format!("inode {ino}: block {lbn} past EOF"));
                        continue;
                    }
                    total += frag;
                    if p % frag != 0 {
                        self.out
                            .push(format!("inode {ino}: block {p} not block-aligned"));
                    } else {
                        self.claim(ino, p, frag, "data block");
                    }
                } else {
                    children.push((p, lvl - 1, lbn));
                }
            }
            stack.extend(children.into_iter().rev());
        }
        total
    }

    fn check_maps(&mut self, cgs: &[Option<Cg>], inodes: &HashMap<u32, InodeInfo>, area: &[u8]) {
        let sb = self.sb.clone();
        // Metadata belongs to the file system itself.
        for c in 0..sb.ncg {
            let lo = if c == 0 { 0 } else { sb.cgsblock(c) };
            for f in lo..sb.cgdmin(c) {
                self.claimed[(f / 64) as usize] |= 1 << (f % 64);
            }
        }
        for f in sb.csaddr..sb.csaddr + sb.numfrags(sb.cssize as u64) {
            self.claimed[(f / 64) as usize] |= 1 << (f % 64);
        }
        let mut total = Csum::default();
        let mut dirs = vec![0i64; sb.ncg as usize];
        let mut inodes_in = vec![0u32; sb.ncg as usize];
        for (ino, info) in inodes {
            if info.ip.is_dir() {
                dirs[(ino / sb.ipg) as usize] += 1;
            }
            inodes_in[(ino / sb.ipg) as usize] += 1;
        }
        for (c, cg) in cgs.iter().enumerate() {
            let Some(cg) = cg else { continue };
            let base = sb.cgbase(c as u32);
            let (mut wrongly_free, mut leaked, mut first) = (0u64, 0u64, None);
            for rel in 0..sb.fpg as u64 {
                let free = cg.frag_free(rel);
                if rel >= cg.ndblk {
                    if free {
                        self.out
                            .push(format!("cg {c}: fragment {rel} past the group end is free"));
                    }
                    continue;
                }
                let claimed = self.is_claimed(base + rel);
                if claimed && free {
                    wrongly_free += 1;
                    first.get_or_insert(base + rel);
                } else if !claimed && !free {
                    leaked += 1;
                    first.get_or_insert(base + rel);
                }
            }
            if wrongly_free + leaked > 0 {
                self.out.push(format!(
                    "cg {c}: free map wrong: {wrongly_free} in use but free, {leaked} leaked \
                     (first at fragment {})",
                    first.unwrap_or(0)
                ));
            }
            // The counts and derived tables are judged against the fragments the inodes
            // really use (as NetBSD's fsck_ffs pass 5 does), not against the stored map: a
            // wrong map alone is a map finding, counts that disagree with use are counts.
            let mut true_cg = cg.clone();
            for rel in 0..cg.ndblk {
                true_cg.set_frag_free(rel, !self.is_claimed(base + rel));
            }
            true_cg.rebuild(&sb);
            let (nb, nf) = true_cg.count_free(&sb);
            let used = if c == 0 { ROOTINO } else { 0 } + inodes_in[c];
            let computed = Csum {
                ndir: dirs[c],
                nbfree: nb,
                nifree: sb.ipg as i64 - used as i64,
                nffree: nf,
            };
            if cg.cs() != computed {
                self.out.push(format!(
                    "cg {c}: counts {:?}, inodes and blocks in use say {:?}",
                    cg.cs(),
                    computed
                ));
            }
            let stored = Csum::decode32(&area[c * CSUM_SIZE..]);
            if stored != computed {
                self.out.push(format!(
                    "cg {c}: summary area {stored:?}, inodes and blocks in use say {computed:?}"
                ));
            }
            total.add(&computed);
            if cg.frsum()[1..sb.frag as usize] != true_cg.frsum()[1..sb.frag as usize] {
                self.out
                    .push(format!("cg {c}: fragment summary (cg_frsum) wrong"));
            }
            if sb.contigsumsize > 0 {
                let nblk = cg.ndblk / sb.frag as u64;
                if (0..nblk).any(|b| cg.cluster_free(b) != true_cg.cluster_free(b)) {
                    self.out.push(format!("cg {c}: cluster map wrong"));
                }
                if cg.clustersum(&sb)[1..] != true_cg.clustersum(&sb)[1..] {
                    self.out.push(format!("cg {c}: cluster summary wrong"));
                }
            }
        }
        if total != sb.cstotal {
            self.out.push(format!(
                "superblock totals {:?}, inodes and blocks in use say {:?}",
                sb.cstotal, total
            ));
        }
    }

    async fn check_tree(&mut self, inodes: &HashMap<u32, InodeInfo>) {
        let sb = self.sb.clone();
        let Some(root) = inodes.get(&ROOTINO) else {
            self.out.push("root inode unallocated".into());
            return;
        };
        if !root.ip.is_dir() {
            self.out.push("root inode is not a directory".into());
            return;
        }
        let dtype_fs = sb.maxsymlinklen > 0;
        let mut refs: HashMap<u32, u32> = HashMap::new();
        let mut parent: HashMap<u32, u32> = HashMap::from([(ROOTINO, ROOTINO)]);
        let mut queue = VecDeque::from([ROOTINO]);
        while let Some(d) = queue.pop_front() {
            let info = &inodes[&d];
            let bs = sb.bsize as usize;
            let mut dotdot = None;
            for (lbn, &addr) in info.dir_blocks.iter().enumerate() {
                let len = ((info.ip.size as usize).saturating_sub(lbn * bs)).min(bs);
                if addr == 0 {
                    self.out.push(format!("directory {d}: hole at block {lbn}"));
                    continue;
                }
                let mut buf = vec![0u8; len - len % DIRBLKSIZ];
                if !self
                    .read(sb.frag_offset(addr), &mut buf, "directory block")
                    .await
                {
                    continue;
                }
                for (ci, chunk) in buf.chunks(DIRBLKSIZ).enumerate() {
                    let at = lbn * bs + ci * DIRBLKSIZ;
                    let ents = match dir::parse_chunk(chunk, dtype_fs) {
                        Ok(e) => e,
                        Err(_) => {
                            self.out
                                .push(format!("directory {d}: bad entry in chunk at {at}"));
                            continue;
                        }
                    };
                    for (k, e) in ents.iter().enumerate() {
                        let first = at == 0 && k < 2;
                        if at == 0 && k == 0 && (e.name != b"." || e.ino != d) {
                            self.out
                                .push(format!("directory {d}: first entry is not '.'"));
                        }
                        if at == 0 && k == 1 {
                            if e.name != b".." {
                                self.out
                                    .push(format!("directory {d}: second entry is not '..'"));
                            } else {
                                dotdot = Some(e.ino);
                            }
                        }
                        if e.ino == 0 || (e.ino == 1 && e.dtype == DT_WHT) {
                            continue;
                        }
                        let name = String::from_utf8_lossy(&e.name);
                        let Some(child) = inodes.get(&e.ino) else {
                            self.out.push(format!(
                                "directory {d}: '{name}' points to unallocated inode {}",
                                e.ino
                            ));
                            continue;
                        };
                        *refs.entry(e.ino).or_insert(0) += 1;
                        if dtype_fs && e.dtype != dtype_of(child.ip.mode) {
                            self.out
                                .push(format!("directory {d}: '{name}' has wrong d_type"));
                        }
                        if first || e.name == b"." || e.name == b".." {
                            if !first {
                                self.out
                                    .push(format!("directory {d}: extra '{name}' entry"));
                            }
                            continue;
                        }
                        if child.ip.is_dir() {
                            if let std::collections::hash_map::Entry::Vacant(v) =
                                parent.entry(e.ino)
                            {
                                v.insert(d);
                                queue.push_back(e.ino);
                            } else {
                                self.out.push(format!(
                                    "directory {}: linked again as '{name}' in {d} (loop or \
                                     second parent)",
                                    e.ino
                                ));
                            }
                        }
                    }
                }
            }
            if dotdot != Some(parent[&d]) {
                self.out.push(format!(
                    "directory {d}: '..' is {dotdot:?}, parent is {}",
                    parent[&d]
                ));
            }
        }
        let mut inos: Vec<_> = inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let n = refs.get(&ino).copied().unwrap_or(0);
            let ip = &inodes[&ino].ip;
            if n == 0 {
                self.out
                    .push(format!("inode {ino}: allocated but unreferenced"));
            } else if n != ip.nlink as u32 {
                self.out.push(format!(
                    "inode {ino}: link count {} but {n} references",
                    ip.nlink
                ));
            }
        }
    }
}
