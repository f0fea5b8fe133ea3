//! File contents: block mapping (direct, single/double/triple indirect), reads, writes with
//! holes and fragments, and truncation that frees data and indirect blocks.
//!
//! Invariants kept for every file (and checked by `check`): a file of `size` bytes has the
//! block holding byte `size - 1` allocated; no block lies wholly past `size`; a direct block
//! is allocated with `blksize` bytes (only the last block of a small file is a fragment run);
//! bytes past `size` inside the last allocation are zero.

use crate::fs::{Fs, Ino};
use crate::inode::{Dinode, IFDIR, IFLNK, IFREG};
use crate::sb::{DEV_BSIZE, NDADDR};
use crate::{Disk, Errno, Result};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

impl<D: Disk> Fs<D> {
    fn psize(&self) -> u64 {
        if self.sb.ufs2 {
            8
        } else {
            4
        }
    }

    /// The first logical block covered by indirect tree `level` (0, 1, 2) and its span.
    pub(crate) fn tree_range(&self, level: usize) -> (u64, u64) {
        let n = self.sb.nindir as u64;
        let mut start = NDADDR as u64;
        let mut span = n;
        for _ in 0..level {
            start += span;
            span *= n;
        }
        (start, span)
    }

    /// How logical block `lbn` is reached: 0 levels (direct) to 3, and the indices.
    fn lbn_path(&self, lbn: u64) -> Result<(usize, [u64; 3])> {
        if lbn < NDADDR as u64 {
            return Ok((0, [lbn, 0, 0]));
        }
        let n = self.sb.nindir as u64;
        for level in 0..3 {
            let (start, span) = self.tree_range(level);
            if lbn < start + span {
                let mut rel = lbn - start;
                let mut idx = [0u64; 3];
                for i in (0..=level).rev() {
                    idx[i] = rel % n;
                    rel /= n;
                }
                return Ok((level + 1, idx));
            }
        }
        Err(Errno::EFBIG)
    }

    /// Checks a pointer to a whole block (indirect or data past the direct ones).
    pub(crate) fn check_block(&self, addr: u64) -> Result<()> {
        if addr % self.sb.frag as u64 != 0 {
            return Err(Errno::EIO);
        }
        self.check_run(addr, self.sb.frag as u64)
    }

    async fn read_ptr(&self, blk: u64, idx: u64) -> Result<u64> {
        self.check_block(blk)?;
        let off = self.sb.frag_offset(blk) + idx * self.psize();
        let mut b = [0u8; 8];
        let n = self.psize() as usize;
        self.disk.read(off, &mut b[..n]).await?;
        Ok(u64::from_le_bytes(b))
    }

    async fn write_ptr(&self, blk: u64, idx: u64, val: u64) -> Result<()> {
        let off = self.sb.frag_offset(blk) + idx * self.psize();
        let n = self.psize() as usize;
        self.disk.write(off, &val.to_le_bytes()[..n]).await
    }

    pub(crate) async fn read_ind(&self, blk: u64) -> Result<Vec<u64>> {
        self.check_block(blk)?;
        let mut raw = vec![0u8; self.sb.bsize as usize];
        self.disk.read(self.sb.frag_offset(blk), &mut raw).await?;
        Ok(raw
            .chunks(self.psize() as usize)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect())
    }

    async fn write_ind(&self, blk: u64, ptrs: &[u64]) -> Result<()> {
        let ps = self.psize() as usize;
        let mut raw = vec![0u8; self.sb.bsize as usize];
        for (i, p) in ptrs.iter().enumerate() {
            raw[i * ps..(i + 1) * ps].copy_from_slice(&p.to_le_bytes()[..ps]);
        }
        self.disk.write(self.sb.frag_offset(blk), &raw).await
    }

    /// Fragment address of logical block `lbn` (0: a hole).
    pub(crate) async fn bmap(&self, ip: &Dinode, lbn: u64) -> Result<u64> {
        let (level, idx) = self.lbn_path(lbn)?;
        if level == 0 {
            let addr = ip.db[lbn as usize];
            if addr != 0 {
                let n = self.sb.numfrags(self.sb.blksize(ip.size, lbn)).max(1);
                self.check_run(addr, n)?;
            }
            return Ok(addr);
        }
        // The indirect blocks on the way down; a pointer back to one of them (an indirect
        // block pointing to itself or to its parent) is a cycle: EIO.
        let mut path = [0u64; 3];
        let mut cur = ip.ib[level - 1];
        for (d, &i) in idx.iter().take(level).enumerate() {
            if cur == 0 {
                return Ok(0);
            }
            path[d] = cur;
            cur = self.read_ptr(cur, i).await?;
            if cur != 0 && path[..=d].contains(&cur) {
                return Err(Errno::EIO);
            }
        }
        if cur != 0 {
            self.check_block(cur)?;
        }
        Ok(cur)
    }

    /// `read(ino, off, buf)` — reads file contents; returns the bytes read (0 at EOF).
    pub async fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> Result<usize> {
        let ip = self.iget(ino).await?;
        if self.is_fast_symlink(&ip) {
            let t = ip.fast_symlink();
            if off >= t.len() as u64 {
                return Ok(0);
            }
            let n = buf.len().min(t.len() - off as usize);
            buf[..n].copy_from_slice(&t[off as usize..off as usize + n]);
            return Ok(n);
        }
        self.read_data(&ip, off, buf).await
    }

    pub(crate) async fn read_data(&self, ip: &Dinode, off: u64, buf: &mut [u8]) -> Result<usize> {
        if off >= ip.size {
            return Ok(0);
        }
        let total = buf
            .len()
            .min((ip.size - off).min(usize::MAX as u64) as usize);
        let bs = self.sb.bsize as u64;
        let mut done = 0;
        while done < total {
            let pos = off + done as u64;
            let (lbn, boff) = (pos / bs, pos % bs);
            let n = ((bs - boff) as usize).min(total - done);
            self.step().await?;
            let addr = self.bmap(ip, lbn).await?;
            let dst = &mut buf[done..done + n];
            if addr == 0 {
                dst.fill(0);
            } else {
                self.disk
                    .read(self.sb.frag_offset(addr) + boff, dst)
                    .await?;
            }
            done += n;
        }
        Ok(total)
    }

    /// `write(ino, off, data)` — writes a regular file, allocating blocks and growing it.
    /// A write stopped by `ENOSPC` after some bytes returns the bytes written.
    pub async fn write(&self, ino: Ino, off: u64, data: &[u8]) -> Result<usize> {
        self.check_rw()?;
        let mut ip = self.iget(ino).await?;
        match ip.kind() {
            IFREG => {}
            IFDIR => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        if data.is_empty() {
            return Ok(0);
        }
        let r = self.write_data(ino, &mut ip, off, data).await;
        if matches!(r, Ok(n) if n > 0) {
            let now = self.now();
            ip.mtime = now;
            ip.ctime = now;
        }
        self.iput(ino, &mut ip).await?;
        r
    }

    /// Writes `data` at `off` into the blocks of `ip` (the caller writes the inode back, also
    /// on error: allocation may have changed it).
    pub(crate) async fn write_data(
        &self,
        ino: Ino,
        ip: &mut Dinode,
        off: u64,
        data: &[u8],
    ) -> Result<usize> {
        let end = off.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > self.sb.maxfilesize {
            return Err(Errno::EFBIG);
        }
        let bs = self.sb.bsize as u64;
        if ip.size > 0 {
            // The old last block must become whole when the file grows past it.
            let last = (ip.size - 1) / bs;
            let have = self.sb.blksize(ip.size, last);
            if last < NDADDR as u64 && off / bs > last && have < bs && ip.db[last as usize] != 0 {
                self.grow_block(ino, ip, last, have, bs).await?;
            }
        }
        let mut done = 0usize;
        while done < data.len() {
            let pos = off + done as u64;
            let (lbn, boff) = (pos / bs, pos % bs);
            let n = ((bs - boff) as usize).min(data.len() - done);
            let r = self.block_for_write(ino, ip, lbn, pos + n as u64).await;
            let (addr, fresh, alloc) = match r {
                Ok(v) => v,
                Err(e) if done > 0 && e == Errno::ENOSPC => return Ok(done),
                Err(e) => return Err(e),
            };
            let src = &data[done..done + n];
            if fresh && (boff != 0 || n as u64 != alloc) {
                let mut buf = vec![0u8; alloc as usize];
                buf[boff as usize..boff as usize + n].copy_from_slice(src);
                self.disk.write(self.sb.frag_offset(addr), &buf).await?;
            } else {
                self.disk
                    .write(self.sb.frag_offset(addr) + boff, src)
                    .await?;
            }
            ip.size = ip.size.max(pos + n as u64);
            done += n;
        }
        Ok(done)
    }

    /// The block to write logical block `lbn` into when the file will be `nsize` bytes:
    /// (address, freshly allocated, allocated bytes).
    async fn block_for_write(
        &self,
        ino: Ino,
        ip: &mut Dinode,
        lbn: u64,
        nsize: u64,
    ) -> Result<(u64, bool, u64)> {
        let nsize = nsize.max(ip.size);
        let want = self.sb.blksize(nsize, lbn);
        let cg = ino / self.sb.ipg;
        if lbn < NDADDR as u64 {
            let addr = ip.db[lbn as usize];
            if addr == 0 {
                let pref = self.pref_for(ip, lbn).await;
                let addr = if want == self.sb.bsize as u64 {
                    self.alloc_block(cg, pref)?
                } else {
                    // NetBSD's ffs_blkpref for a first block (or one after a hole): the
                    // inode's group, its second block.
                    let pref = match pref {
                        0 => self.sb.cgbase(cg) + self.sb.frag as u64,
                        p => p,
                    };
                    self.alloc_frags(cg, self.sb.numfrags(want), pref)?
                };
                ip.db[lbn as usize] = addr;
                ip.blocks += want / DEV_BSIZE;
                return Ok((addr, true, want));
            }
            let have = self.sb.blksize(ip.size, lbn);
            self.check_run(addr, self.sb.numfrags(have))?;
            if have < want {
                let addr = self.grow_block(ino, ip, lbn, have, want).await?;
                return Ok((addr, false, want));
            }
            return Ok((addr, false, have));
        }
        self.balloc_indirect(ino, ip, lbn).await
    }

    async fn pref_for(&self, ip: &Dinode, lbn: u64) -> u64 {
        if lbn == 0 {
            return 0;
        }
        match self.bmap(ip, lbn - 1).await {
            Ok(a) if a != 0 => a - a % self.sb.frag as u64 + self.sb.frag as u64,
            _ => 0,
        }
    }

    /// Grows direct block `lbn` from `have` to `want` bytes, in place or by moving it.
    async fn grow_block(
        &self,
        ino: Ino,
        ip: &mut Dinode,
        lbn: u64,
        have: u64,
        want: u64,
    ) -> Result<u64> {
        let addr = ip.db[lbn as usize];
        let (of, nf) = (self.sb.numfrags(have), self.sb.numfrags(want));
        self.check_run(addr, of)?;
        let new = if self.extend_in_place(addr, of, nf) {
            // Space freed earlier may hold old data: the new tail must read as zeros.
            let zero = vec![0u8; (want - have) as usize];
            self.disk
                .write(self.sb.frag_offset(addr) + have, &zero)
                .await?;
            addr
        } else {
            let cg = ino / self.sb.ipg;
            let new = if want == self.sb.bsize as u64 {
                self.alloc_block(cg, addr - addr % self.sb.frag as u64)?
            } else {
                self.alloc_frags(cg, nf, 0)?
            };
            let mut buf = vec![0u8; want as usize];
            let r = self
                .disk
                .read(self.sb.frag_offset(addr), &mut buf[..have as usize])
                .await;
            if let Err(e) = r {
                self.free_frags(new, nf)?;
                return Err(e);
            }
            self.disk.write(self.sb.frag_offset(new), &buf).await?;
            self.free_frags(addr, of)?;
            new
        };
        ip.db[lbn as usize] = new;
        ip.blocks += (want - have) / DEV_BSIZE;
        Ok(new)
    }

    /// Maps logical block `lbn` (past the direct blocks), allocating the missing indirect
    /// blocks and the data block. All blocks are allocated before anything is linked, so
    /// `ENOSPC` leaves the file as it was.
    async fn balloc_indirect(
        &self,
        ino: Ino,
        ip: &mut Dinode,
        lbn: u64,
    ) -> Result<(u64, bool, u64)> {
        let bs = self.sb.bsize as u64;
        let (level, idx) = self.lbn_path(lbn)?;
        // Walk the existing chain: `chain[d]` is the block at depth d (0: the inode's).
        let mut chain = [0u64; 4];
        chain[0] = ip.ib[level - 1];
        let mut depth = 0;
        while depth < level && chain[depth] != 0 {
            self.check_block(chain[depth])?;
            chain[depth + 1] = self.read_ptr(chain[depth], idx[depth]).await?;
            depth += 1;
        }
        if depth == level && chain[level] != 0 {
            self.check_block(chain[level])?;
            return Ok((chain[level], false, bs));
        }
        // Blocks for depths depth..=level are missing (the last is the data block).
        let cg = ino / self.sb.ipg;
        let mut pref = self.pref_for(ip, lbn).await;
        let mut fresh = Vec::new();
        for _ in depth..=level {
            match self.alloc_block(cg, pref) {
                Ok(a) => {
                    pref = a + self.sb.frag as u64;
                    fresh.push(a);
                }
                Err(e) => {
                    for a in fresh {
                        self.free_frags(a, self.sb.frag as u64)?;
                    }
                    return Err(e);
                }
            }
        }
        let zeros = vec![0u8; bs as usize];
        for (k, &a) in fresh.iter().enumerate() {
            let d = depth + k;
            if d < level {
                self.disk.write(self.sb.frag_offset(a), &zeros).await?;
                if k + 1 < fresh.len() {
                    self.write_ptr(a, idx[d], fresh[k + 1]).await?;
                }
            }
        }
        if depth == 0 {
            ip.ib[level - 1] = fresh[0];
        } else {
            self.write_ptr(chain[depth - 1], idx[depth - 1], fresh[0])
                .await?;
        }
        ip.blocks += fresh.len() as u64 * bs / DEV_BSIZE;
        Ok((*fresh.last().unwrap_or(&0), true, bs))
    }

    /// `truncate(ino, size)` — sets a regular file's size, freeing or allocating blocks.
    pub async fn truncate(&self, ino: Ino, size: u64) -> Result<()> {
        self.check_rw()?;
        let mut ip = self.iget(ino).await?;
        match ip.kind() {
            IFREG => {}
            IFDIR => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        if size > self.sb.maxfilesize {
            return Err(Errno::EFBIG);
        }
        let r = self.set_size(ino, &mut ip, size).await;
        let now = self.now();
        ip.mtime = now;
        ip.ctime = now;
        self.iput(ino, &mut ip).await?;
        r
    }

    pub(crate) async fn set_size(&self, ino: Ino, ip: &mut Dinode, size: u64) -> Result<()> {
        if size < ip.size {
            self.truncate_blocks(ino, ip, size).await
        } else if size > ip.size {
            // As NetBSD: the block holding the new last byte is allocated (zero-filled).
            self.write_data(ino, ip, size - 1, &[0]).await.map(|_| ())
        } else {
            Ok(())
        }
    }

    /// Shrinks `ip` to `size` bytes: frees whole blocks past it, trims the new last block
    /// to its fragments and zeroes its tail.
    pub(crate) async fn truncate_blocks(
        &self,
        _ino: Ino,
        ip: &mut Dinode,
        size: u64,
    ) -> Result<()> {
        if size >= ip.size {
            return Ok(());
        }
        if self.is_fast_symlink(ip) {
            ip.clear_ptr_area();
            ip.size = size;
            return Ok(());
        }
        if !matches!(ip.kind(), IFREG | IFDIR | IFLNK) {
            ip.size = size;
            return Ok(());
        }
        let bs = self.sb.bsize as u64;
        let old = ip.size;
        let keep = size.div_ceil(bs);
        for lbn in keep..NDADDR as u64 {
            let a = ip.db[lbn as usize];
            if a != 0 {
                let osz = self.sb.blksize(old, lbn);
                self.free_frags(a, self.sb.numfrags(osz))?;
                ip.blocks = ip.blocks.saturating_sub(osz / DEV_BSIZE);
                ip.db[lbn as usize] = 0;
            }
        }
        if keep > 0 && keep - 1 < NDADDR as u64 {
            let lbn = keep - 1;
            let a = ip.db[lbn as usize];
            let (osz, nsz) = (self.sb.blksize(old, lbn), self.sb.blksize(size, lbn));
            if a != 0 && nsz < osz {
                let nf = self.sb.numfrags(nsz);
                self.free_frags(a + nf, self.sb.numfrags(osz) - nf)?;
                ip.blocks = ip.blocks.saturating_sub((osz - nsz) / DEV_BSIZE);
            }
        }
        let mut seen = HashSet::new();
        for level in 0..3 {
            let (start, span) = self.tree_range(level);
            let top = ip.ib[level];
            if top != 0 && keep < start + span {
                let freed = self
                    .free_tree(top, level + 1, start, keep, &mut seen)
                    .await?;
                ip.blocks = ip.blocks.saturating_sub(freed);
                if keep <= start {
                    ip.ib[level] = 0;
                }
            }
        }
        ip.size = size;
        if size % bs != 0 {
            let lbn = size / bs;
            let a = self.bmap(ip, lbn).await?;
            if a != 0 {
                let alloc = self.sb.blksize(size, lbn);
                let zero = vec![0u8; (alloc - size % bs) as usize];
                self.disk
                    .write(self.sb.frag_offset(a) + size % bs, &zero)
                    .await?;
            }
        }
        Ok(())
    }

    /// Frees the part of the tree at `blk` (covering `level` levels from logical block
    /// `base`) that lies at or past logical block `keep`; returns the sectors freed.
    ///
    /// `seen` holds the indirect blocks met so far in this truncation: a tree reaching one
    /// twice (a block pointing to itself, two parents sharing a child) is corrupt (EIO)
    /// rather than walked again and again. The work is one read per indirect block, so at
    /// most the file system's blocks. On an error the pointers to what was freed so far are
    /// cleared on disk first: nothing still referenced is ever free.
    fn free_tree<'a>(
        &'a self,
        blk: u64,
        level: usize,
        base: u64,
        keep: u64,
        seen: &'a mut HashSet<u64>,
    ) -> BoxFut<'a, u64> {
        Box::pin(async move {
            if !seen.insert(blk) {
                return Err(Errno::EIO);
            }
            self.step_through().await;
            let ptrs = self.read_ind(blk).await?;
            let n = self.sb.nindir as u64;
            let span = n.pow(level as u32 - 1);
            let frag = self.sb.frag as u64;
            let bsec = self.sb.bsize as u64 / DEV_BSIZE;
            let mut out = ptrs.clone();
            let mut freed = 0;
            let mut failed = None;
            for (i, &child) in ptrs.iter().enumerate() {
                let cbase = base + i as u64 * span;
                if child == 0 || cbase + span <= keep {
                    continue;
                }
                let r = if level == 1 && seen.contains(&child) {
                    // A data block that is one of the tree's indirect blocks.
                    Err(Errno::EIO)
                } else if level == 1 {
                    self.free_frags(child, frag).map(|()| bsec)
                } else {
                    self.free_tree(child, level - 1, cbase, keep, seen).await
                };
                match r {
                    Ok(f) => freed += f,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                if cbase >= keep {
                    out[i] = 0;
                }
            }
            if let Some(e) = failed {
                if out != ptrs {
                    self.write_ind(blk, &out).await?;
                }
                return Err(e);
            }
            if base >= keep {
                self.free_frags(blk, frag)?;
                freed += bsec;
            } else if out != ptrs {
                self.write_ind(blk, &out).await?;
            }
            Ok(freed)
        })
    }
}
