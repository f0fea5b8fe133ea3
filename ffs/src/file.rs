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
                let pref = self.blkpref_direct(ino, ip, lbn);
                let addr = self.alloc_frags(cg, self.sb.numfrags(want), pref)?;
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

    /// NetBSD's `ffs_blkpref` for logical block `lbn`, the `indx`th pointer of its block
    /// map (the inode's direct blocks or an indirect block; `indx` 0 for an indirect block
    /// itself), whose previous pointer is `prev` (0: none): after `prev`'s block, unless that is missing or `indx` starts
    /// a new `fs_maxbpg` run; then the inode's group's second block while `lbn` is within
    /// the first indirect block's reach, else the second block of the first group (from
    /// the inode's, moved on by `lbn / fs_maxbpg`, or the one after the previous block's)
    /// with at least the average number of free blocks, or 0 for none.
    fn blkpref(&self, ino: Ino, lbn: u64, indx: u64, prev: u64) -> u64 {
        let sb = &self.sb;
        let frag = sb.frag as u64;
        let maxbpg = crate::le::i32_at(&sb.raw, 92).max(1) as u64; // `fs_maxbpg`
        let prev = if indx == 0 { 0 } else { prev };
        if indx % maxbpg != 0 && prev != 0 {
            return prev + frag;
        }
        let inocg = ino / sb.ipg;
        if lbn < NDADDR as u64 + sb.nindir as u64 {
            return sb.cgbase(inocg) + frag;
        }
        let ncg = sb.ncg as u64;
        let startcg = if indx == 0 || prev == 0 {
            inocg as u64 + lbn / maxbpg
        } else {
            prev / sb.fpg as u64 + 1
        } % ncg;
        let a = self.st();
        let avg = a.total.nbfree / ncg as i64;
        (startcg..ncg)
            .chain(0..startcg)
            .find(|&c| a.csum[c as usize].nbfree >= avg)
            .map_or(0, |c| sb.cgbase(c as u32) + frag)
    }

    /// [`Self::blkpref`] for direct block `lbn`.
    fn blkpref_direct(&self, ino: Ino, ip: &Dinode, lbn: u64) -> u64 {
        let prev = if lbn == 0 { 0 } else { ip.db[lbn as usize - 1] };
        self.blkpref(ino, lbn, lbn, prev)
    }

    /// Grows direct block `lbn` from `have` to `want` bytes as NetBSD's `ffs_realloccg`:
    /// in place when the fragments after it are free (`ffs_fragextend`), else moved to a
    /// new run found from the old run's group near `ffs_blkpref`'s choice. Under
    /// `FS_OPTTIME` (newfs's default, `Fs::realloc_request`) the new run is a whole block
    /// whose unused tail is freed at once, so the file's next growth is in place.
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
            let pref = self.blkpref_direct(ino, ip, lbn);
            let request = self.realloc_request(nf);
            let cg = (addr / self.sb.fpg as u64) as u32;
            let new = self.alloc_in(cg, request, pref)?;
            let mut buf = vec![0u8; want as usize];
            let r = self
                .disk
                .read(self.sb.frag_offset(addr), &mut buf[..have as usize])
                .await;
            if let Err(e) = r {
                self.free_frags(new, request)?;
                return Err(e);
            }
            if request > nf {
                self.free_frags(new + nf, request - nf)?;
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
        // Blocks for depths depth..=level are missing (the last is the data block). As
        // NetBSD's `ffs_balloc`: the indirect blocks near one preference (`ffs_blkpref`
        // for an indirect block, taken once), the data block after its neighbour in the
        // indirect block above it.
        let cg = ino / self.sb.ipg;
        let mut pref = 0;
        let mut fresh = Vec::new();
        for d in depth..=level {
            let p = if d < level {
                if pref == 0 {
                    pref = self.blkpref(ino, lbn, 0, 0);
                }
                pref
            } else {
                let i = idx[level - 1];
                let prev = match depth == level && i > 0 {
                    true => self.read_ptr(chain[level - 1], i - 1).await,
                    false => Ok(0),
                };
                match prev {
                    Ok(prev) => self.blkpref(ino, lbn, i, prev),
                    Err(e) => {
                        for a in fresh {
                            self.free_frags(a, self.sb.frag as u64)?;
                        }
                        return Err(e);
                    }
                }
            };
            match self.alloc_block(cg, p) {
                Ok(a) => fresh.push(a),
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
