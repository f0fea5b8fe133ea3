//! The engine: `Fs<D>`, one mounted file system — mount/unmount, inode I/O, the summary
//! counts, and block, fragment and inode allocation through the cylinder-group maps.
//!
//! All cylinder groups are read at mount and kept in memory (`ncg × fs_cgsize` bytes); their
//! blocks, the summary area and the superblock are written back by `sync`. Inodes, indirect
//! blocks, directories and file data go to the `Disk` as each operation changes them (the
//! kernel's buffer cache sits below). Allocation policy: a file's blocks come from its inode's
//! group (next to the previous block when possible), then from the following groups; new
//! directories go to a group with many free inodes and few directories.

use crate::cg::Cg;
use crate::inode::{Dinode, Timespec, IFDIR, IFLNK};
use crate::sb::{Csum, Superblock, CSUM_SIZE, FS_DOQUOTA2, FS_DOWAPBL, FS_FLAGS_UPDATED};
use crate::sb::{FS_ISCLEAN, FS_KNOWN_FLAGS, FS_WASCLEAN, ROOTINO};
use crate::{Disk, Errno, Result};
use std::collections::HashMap;

/// An inode number.
pub type Ino = u32;

/// NetBSD's `LINK_MAX` for FFS.
pub const LINK_MAX: u16 = 32767;

/// How to mount.
#[derive(Clone, Copy, Debug)]
pub struct MountOptions {
    /// Mount read-only: nothing is ever written.
    pub read_only: bool,
    /// The clock for timestamps (the kernel passes its own).
    pub clock: fn() -> Timespec,
}

/// The host's real-time clock.
pub fn system_clock() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            clock: system_clock,
        }
    }
}

/// A mounted FFS file system over a `Disk`.
///
/// Operations take `&mut self`: the kernel serialises each mount with one async lock
/// (`Arc<Mutex<Fs<D>>>`); `Fs<D>` is `Send` when `D` is. An operation that fails with a disk
/// error may leave its own changes half done (as a crash would); `rump_fsck` reports it.
pub struct Fs<D: Disk> {
    pub(crate) disk: D,
    pub(crate) sb: Superblock,
    pub(crate) csum: Vec<Csum>,
    pub(crate) cgs: Vec<Cg>,
    pub(crate) ro: bool,
    /// Directory entries carry `d_type`.
    pub(crate) dtype: bool,
    pub(crate) clock: fn() -> Timespec,
    rng: u64,
    /// References the kernel holds on inodes (`retain`/`release`): an inode whose last link
    /// goes while referenced is freed at its last `release`.
    pub(crate) refs: HashMap<Ino, u32>,
}

impl<D: Disk> std::fmt::Debug for Fs<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fs")
            .field("ufs2", &self.sb.ufs2)
            .field("ro", &self.ro)
            .field("size", &self.sb.size)
            .finish()
    }
}

impl<D: Disk> Fs<D> {
    /// Mounts the file system on `disk`. A missing, foreign or inconsistent superblock or
    /// cylinder group is `EINVAL` (as NetBSD's `ffs_mountfs`); a read-write mount of an image
    /// with a journal (WAPBL) or quota2 data, or of a pre-2003 UFS1 layout, is `EROFS`.
    pub async fn mount(disk: D, opts: MountOptions) -> Result<Fs<D>> {
        let sb = Superblock::find(&disk).await.map_err(|e| e.errno())?;
        Fs::mount_with(disk, sb, opts).await
    }

    /// Mounts with an already validated superblock.
    pub async fn mount_with(disk: D, mut sb: Superblock, opts: MountOptions) -> Result<Fs<D>> {
        if sb.flags & !(FS_KNOWN_FLAGS | 0x8000_0000) != 0 {
            return Err(Errno::EINVAL);
        }
        let ro = opts.read_only;
        let rw_unsupported = sb.flags & (FS_DOWAPBL | FS_DOQUOTA2) != 0
            || (!sb.ufs2 && sb.old_flags & FS_FLAGS_UPDATED == 0);
        if !ro && rw_unsupported {
            return Err(Errno::EROFS);
        }
        if !ro && sb.bytes() > disk.size() {
            return Err(Errno::EINVAL);
        }
        // Everything read at mount must be on the device (before sizing buffers by it).
        let last_cg = sb.frag_offset(sb.cgtod(sb.ncg - 1)) + sb.cgsize as u64;
        let cs_end = sb.frag_offset(sb.csaddr) + sb.fragroundup(sb.cssize as u64);
        if last_cg > disk.size() || cs_end > disk.size() {
            return Err(Errno::EINVAL);
        }
        let mut area = vec![0u8; sb.fragroundup(sb.cssize as u64) as usize];
        read_span(&disk, &sb, sb.frag_offset(sb.csaddr), &mut area).await?;
        let csum_disk: Vec<Csum> = (0..sb.ncg as usize)
            .map(|c| Csum::decode32(&area[c * CSUM_SIZE..]))
            .collect();
        let mut cgs = Vec::with_capacity(sb.ncg as usize);
        let mut csum = Vec::with_capacity(sb.ncg as usize);
        let mut total = Csum::default();
        for c in 0..sb.ncg {
            disk.pace().await?;
            let off = sb.frag_offset(sb.cgtod(c));
            let mut raw = vec![0u8; sb.cgsize as usize];
            if off + raw.len() as u64 > disk.size() {
                return Err(Errno::EINVAL);
            }
            disk.read(off, &mut raw).await?;
            let mut cg = Cg::from_raw(&sb, c, raw).map_err(|_| Errno::EINVAL)?;
            // The maps are the truth; counts that disagree with them (an unclean image, or
            // makefs filling an image to the last block) are corrected in memory.
            let (nb, nf) = cg.count_free(&sb);
            let used = cg.count_inodes_used(&sb) as i64;
            let mut cs = cg.cs();
            cs.nbfree = nb;
            cs.nffree = nf;
            cs.nifree = sb.ipg as i64 - used;
            cs.ndir = cs.ndir.clamp(0, used);
            if cs != cg.cs() {
                cg.set_cs(&cs);
                if ro {
                    cg.dirty = false;
                }
            }
            total.add(&cs);
            csum.push(cs);
            cgs.push(cg);
        }
        let sb_stale = total != sb.cstotal || csum != csum_disk;
        sb.cstotal = total;
        let seed = (opts.clock)();
        let mut fs = Fs {
            disk,
            dtype: sb.maxsymlinklen > 0,
            sb,
            csum,
            cgs,
            ro,
            clock: opts.clock,
            rng: (seed.sec as u64) ^ ((seed.nsec as u64) << 32) ^ 0x9e37_79b9_7f4a_7c15,
            refs: HashMap::new(),
        };
        if !ro {
            // Mark the image in use, as NetBSD does: ISCLEAN becomes WASCLEAN, on disk now.
            fs.sb.clean <<= 1;
            let _ = sb_stale;
            fs.write_summary().await?;
        }
        Ok(fs)
    }

    /// The superblock in use.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Is the mount read-only?
    pub fn read_only(&self) -> bool {
        self.ro
    }

    /// The root directory's inode number.
    pub fn root(&self) -> Ino {
        ROOTINO
    }

    /// The disk below.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    pub(crate) fn now(&self) -> Timespec {
        (self.clock)()
    }

    pub(crate) fn random(&mut self) -> u32 {
        // xorshift64*: generation numbers only need to differ.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    pub(crate) fn check_rw(&self) -> Result<()> {
        if self.ro {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Writes the cylinder groups, the summary area and the superblock, then flushes.
    pub async fn sync(&mut self) -> Result<()> {
        if self.ro {
            return Ok(());
        }
        self.write_summary().await?;
        self.disk.flush().await
    }

    async fn write_summary(&mut self) -> Result<()> {
        let now = self.now().sec;
        for c in 0..self.cgs.len() {
            if !self.cgs[c].dirty {
                continue;
            }
            let cg = &mut self.cgs[c];
            cg.rebuild(&self.sb);
            cg.set_time(&self.sb, now);
            let off = self.sb.frag_offset(self.sb.cgtod(c as u32));
            self.disk.write(off, &cg.raw).await?;
            self.cgs[c].dirty = false;
        }
        let mut area = vec![0u8; self.sb.fragroundup(self.sb.cssize as u64) as usize];
        for (c, cs) in self.csum.iter().enumerate() {
            cs.encode32(&mut area[c * CSUM_SIZE..]);
        }
        // The summary area may span blocks: write it a block at a time.
        let base = self.sb.frag_offset(self.sb.csaddr);
        for (i, chunk) in area.chunks(self.sb.bsize as usize).enumerate() {
            let off = base + (i * self.sb.bsize as usize) as u64;
            self.disk.write(off, chunk).await?;
        }
        self.sb.time = now;
        self.sb.encode();
        let n = self.sb.sbsize as usize;
        let raw = self.sb.raw[..n].to_vec();
        self.disk.write(self.sb.sblockloc, &raw).await
    }

    /// `fs_fsmnt`: where the file system is mounted (at most 467 bytes kept, as
    /// `MAXMNTLEN` less its NUL), written with the superblock at the next sync or unmount.
    pub fn set_fsmnt(&mut self, path: &[u8]) {
        let field = &mut self.sb.raw[212..212 + 468];
        field.fill(0);
        let n = path.len().min(field.len() - 1);
        field[..n].copy_from_slice(&path[..n]);
    }

    /// `MNT_UPDATE` from read-only to read-write (`ffs_mount` with `IMNT_WANTRDWR`): the
    /// checks of a read-write mount (`EROFS`, `EINVAL`), then the image is marked in use
    /// and the counts corrected at mount reach it.
    pub async fn make_writable(&mut self) -> Result<()> {
        if !self.ro {
            return Ok(());
        }
        let sb = &self.sb;
        if sb.flags & (FS_DOWAPBL | FS_DOQUOTA2) != 0
            || (!sb.ufs2 && sb.old_flags & FS_FLAGS_UPDATED == 0)
        {
            return Err(Errno::EROFS);
        }
        if sb.bytes() > self.disk.size() {
            return Err(Errno::EINVAL);
        }
        for cg in &mut self.cgs {
            cg.dirty = true;
        }
        self.ro = false;
        self.sb.clean <<= 1;
        self.write_summary().await
    }

    /// Unmounts: frees unlinked inodes still referenced, marks the image clean (if it was clean
    /// at mount) and writes everything back.
    pub async fn unmount(mut self) -> Result<D> {
        if !self.ro {
            let orphans: Vec<Ino> = self.refs.keys().copied().collect();
            self.refs.clear();
            for ino in orphans {
                let ip = self.iget(ino).await?;
                if ip.nlink == 0 && ip.mode != 0 {
                    self.reclaim(ino).await?;
                }
            }
            if self.sb.clean & FS_WASCLEAN != 0 {
                self.sb.clean = FS_ISCLEAN;
            }
            self.sync().await?;
        }
        Ok(self.disk)
    }

    // ---- inodes ----------------------------------------------------------------------

    pub(crate) fn check_ino(&self, ino: Ino) -> Result<()> {
        if ino < ROOTINO || ino as u64 >= self.sb.ninodes() {
            return Err(Errno::EIO);
        }
        if self.sb.ufs2 {
            let c = (ino / self.sb.ipg) as usize;
            if ino % self.sb.ipg >= self.cgs[c].initediblk() {
                return Err(Errno::EIO);
            }
        }
        Ok(())
    }

    /// Reads inode `ino` (in use or not).
    pub(crate) async fn iget_any(&self, ino: Ino) -> Result<Dinode> {
        self.check_ino(ino)?;
        let mut raw = vec![0u8; self.sb.inode_size() as usize];
        self.disk.read(self.sb.inode_offset(ino), &mut raw).await?;
        Ok(Dinode::decode(self.sb.ufs2, &raw))
    }

    /// Reads an inode that must be in use (a free one reached by a name is corruption: EIO).
    /// Its space can't exceed the file system's; a directory has no holes, so its size
    /// can't exceed its space either: walks over a directory's blocks are bounded by what
    /// the file system holds, whatever size the inode claims.
    pub(crate) async fn iget(&self, ino: Ino) -> Result<Dinode> {
        let ip = self.iget_any(ino).await?;
        if ip.mode == 0 || ip.size > self.sb.maxfilesize || ip.blocks > self.sectors() {
            return Err(Errno::EIO);
        }
        if ip.is_dir() && ip.size > ip.blocks.saturating_mul(crate::sb::DEV_BSIZE) {
            return Err(Errno::EIO);
        }
        Ok(ip)
    }

    /// The file system's size in 512-byte sectors (the unit of `di_blocks`).
    pub(crate) fn sectors(&self) -> u64 {
        self.sb.bytes() / crate::sb::DEV_BSIZE
    }

    /// A pause in a walk that may stop: `EINTR` when the caller is going away.
    pub(crate) async fn step(&self) -> Result<()> {
        self.disk.pace().await
    }

    /// A pause in a walk that must finish (it is changing the file system): the caller's
    /// exit does not stop it, the walk is bounded by the file system's size instead.
    pub(crate) async fn step_through(&self) {
        // EINTR only says the caller is exiting; finishing keeps the maps consistent.
        let _ = self.disk.pace().await;
    }

    /// Writes inode `ino`.
    pub(crate) async fn iput(&mut self, ino: Ino, ip: &mut Dinode) -> Result<()> {
        self.check_rw()?;
        let off = self.sb.inode_offset(ino);
        self.disk.write(off, ip.encode()).await
    }

    // ---- summary counts ---------------------------------------------------------------

    fn cs_add(&mut self, c: usize, d: Csum) {
        self.cgs[c].add_cs(&d);
        self.csum[c].add(&d);
        self.sb.cstotal.add(&d);
    }

    // ---- fragments and blocks -----------------------------------------------------------

    /// Checks that `n` fragments at `addr` lie in the data area of one block of one group.
    pub(crate) fn check_run(&self, addr: u64, n: u64) -> Result<()> {
        let sb = &self.sb;
        let frag = sb.frag as u64;
        if addr == 0 || n == 0 || n > frag || addr.checked_add(n).map_or(true, |e| e > sb.size) {
            return Err(Errno::EIO);
        }
        if addr / frag != (addr + n - 1) / frag {
            return Err(Errno::EIO);
        }
        if overlaps_metadata(sb, addr, n) {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Allocates a full block, near `pref` (a fragment address or 0) or in group `cg`.
    pub(crate) async fn alloc_block(&mut self, cg: u32, pref: u64) -> Result<u64> {
        let sb = &self.sb;
        let frag = sb.frag as u64;
        let ncg = sb.ncg;
        let start_cg = if pref != 0 {
            (pref / sb.fpg as u64) as u32 % ncg
        } else {
            cg % ncg
        };
        for i in 0..ncg {
            let c = (start_cg + i) % ncg;
            if self.csum[c as usize].nbfree <= 0 {
                continue;
            }
            let cgp = &self.cgs[c as usize];
            let nblk = cgp.ndblk / frag;
            let base = self.sb.cgbase(c);
            let hint = if i == 0 && pref != 0 && pref >= base {
                (pref - base) / frag
            } else {
                cgp.rotor() / frag
            };
            let found = (0..nblk)
                .map(|k| (hint + k) % nblk)
                .find(|&b| cgp.block_free(&self.sb, b * frag));
            let Some(b) = found else {
                continue;
            };
            let cgp = &mut self.cgs[c as usize];
            for f in b * frag..(b + 1) * frag {
                cgp.set_frag_free(f, false);
            }
            cgp.set_rotor(b * frag);
            self.cs_add(
                c as usize,
                Csum {
                    nbfree: -1,
                    ..Csum::default()
                },
            );
            return Ok(base + b * frag);
        }
        Err(Errno::ENOSPC)
    }

    /// Allocates `n` contiguous fragments inside one block (`n < frag`), preferring partly
    /// used blocks so whole blocks stay whole.
    pub(crate) async fn alloc_frags(&mut self, cg: u32, n: u64) -> Result<u64> {
        let frag = self.sb.frag as u64;
        if n >= frag {
            return self.alloc_block(cg, 0).await;
        }
        let ncg = self.sb.ncg;
        for i in 0..ncg {
            let c = (cg + i) % ncg;
            let cs = self.csum[c as usize];
            if cs.nffree < n as i64 {
                continue;
            }
            // Partly used blocks, from where the last fragment allocation left off.
            let cgp = &self.cgs[c as usize];
            let nblk = cgp.ndblk.div_ceil(frag);
            let start = (cgp.frotor() / frag) % nblk.max(1);
            let mut hit = None;
            for k in 0..nblk {
                let f0 = ((start + k) % nblk) * frag;
                if cgp.block_free(&self.sb, f0) {
                    continue;
                }
                let end = (f0 + frag).min(cgp.ndblk);
                let mut run = 0;
                for f in f0..end {
                    run = if cgp.frag_free(f) { run + 1 } else { 0 };
                    if run == n {
                        hit = Some(f + 1 - n);
                        break;
                    }
                }
                if hit.is_some() {
                    break;
                }
            }
            if let Some(f) = hit {
                let cgp = &mut self.cgs[c as usize];
                cgp.set_frotor(f);
                for x in f..f + n {
                    cgp.set_frag_free(x, false);
                }
                self.cs_add(
                    c as usize,
                    Csum {
                        nffree: -(n as i64),
                        ..Csum::default()
                    },
                );
                return Ok(self.sb.cgbase(c) + f);
            }
        }
        // Break a whole block: its remaining fragments become loose free fragments.
        let addr = self.alloc_block(cg, 0).await?;
        let c = (addr / self.sb.fpg as u64) as usize;
        let rel = addr - self.sb.cgbase(c as u32);
        for f in rel + n..rel + frag {
            self.cgs[c].set_frag_free(f, true);
        }
        self.cs_add(
            c,
            Csum {
                nffree: (frag - n) as i64,
                ..Csum::default()
            },
        );
        Ok(addr)
    }

    /// Tries to grow the run at `addr` from `old` to `new` fragments in place.
    pub(crate) fn extend_in_place(&mut self, addr: u64, old: u64, new: u64) -> bool {
        let frag = self.sb.frag as u64;
        if (addr % frag) + new > frag {
            return false;
        }
        let c = (addr / self.sb.fpg as u64) as usize;
        let rel = addr - self.sb.cgbase(c as u32);
        if rel + new > self.cgs[c].ndblk
            || !(rel + old..rel + new).all(|f| self.cgs[c].frag_free(f))
        {
            return false;
        }
        for f in rel + old..rel + new {
            self.cgs[c].set_frag_free(f, false);
        }
        self.cs_add(
            c,
            Csum {
                nffree: -((new - old) as i64),
                ..Csum::default()
            },
        );
        true
    }

    /// Frees `n` fragments at `addr` (one block at most). Freeing free space is `EIO`.
    pub(crate) fn free_frags(&mut self, addr: u64, n: u64) -> Result<()> {
        self.check_run(addr, n)?;
        let sb = &self.sb;
        let frag = sb.frag as u64;
        let c = (addr / sb.fpg as u64) as usize;
        let rel = addr - sb.cgbase(c as u32);
        let cgp = &self.cgs[c];
        if (rel..rel + n).any(|f| cgp.frag_free(f)) {
            return Err(Errno::EIO);
        }
        let f0 = rel - rel % frag;
        let before = cgp.free_in_block(sb, f0) as i64;
        let cgp = &mut self.cgs[c];
        for f in rel..rel + n {
            cgp.set_frag_free(f, true);
        }
        if self.cgs[c].block_free(&self.sb, f0) {
            self.cs_add(
                c,
                Csum {
                    nbfree: 1,
                    nffree: -before,
                    ..Csum::default()
                },
            );
        } else {
            self.cs_add(
                c,
                Csum {
                    nffree: n as i64,
                    ..Csum::default()
                },
            );
        }
        Ok(())
    }

    // ---- inode allocation -------------------------------------------------------------

    fn pick_inode_cg(&self, near: Ino, dir: bool) -> u32 {
        let ncg = self.sb.ncg;
        if dir {
            // Spread directories: among groups with at least average free inodes, the one
            // with the fewest directories.
            let avg = self.sb.cstotal.nifree / ncg as i64;
            let mut best: Option<u32> = None;
            for c in 0..ncg {
                let cs = &self.csum[c as usize];
                if cs.nifree <= 0 || cs.nifree < avg {
                    continue;
                }
                if best.map_or(true, |b| cs.ndir < self.csum[b as usize].ndir) {
                    best = Some(c);
                }
            }
            if let Some(b) = best {
                return b;
            }
        }
        let start = near / self.sb.ipg;
        (0..ncg)
            .map(|i| (start + i) % ncg)
            .find(|&c| self.csum[c as usize].nifree > 0)
            .unwrap_or(start)
    }

    /// Allocates an inode near `near` (the parent directory) and returns it zeroed with a
    /// fresh generation number; the caller fills it in and writes it.
    pub(crate) async fn ialloc(&mut self, near: Ino, mode: u16) -> Result<(Ino, Dinode)> {
        self.check_rw()?;
        let dir = mode & crate::inode::IFMT == IFDIR;
        if self.sb.cstotal.nifree <= 0 {
            return Err(Errno::ENOSPC);
        }
        let c = self.pick_inode_cg(near, dir) as usize;
        if self.csum[c].nifree <= 0 {
            return Err(Errno::ENOSPC);
        }
        let ipg = self.sb.ipg;
        let hint = self.cgs[c].irotor() % ipg;
        let rel = (0..ipg)
            .map(|k| (hint + k) % ipg)
            .find(|&i| !self.cgs[c].inode_used(i) && (c > 0 || i >= ROOTINO))
            .ok_or(Errno::EIO)?;
        let ino = c as u32 * ipg + rel;
        if self.sb.ufs2 {
            // Inode blocks past cg_initediblk were never written: zero them first.
            let inopb = self.sb.inopb;
            while rel >= self.cgs[c].initediblk() {
                let first = self.cgs[c].initediblk();
                let off = self.sb.inode_offset(c as u32 * ipg + first);
                let zero = vec![0u8; self.sb.bsize as usize];
                self.disk.write(off, &zero).await?;
                self.cgs[c].set_initediblk((first + inopb).min(ipg));
            }
        }
        let old = self.iget_any(ino).await?;
        if old.mode != 0 {
            // The map says free, the inode says used: refuse rather than clobber it.
            return Err(Errno::EIO);
        }
        self.cgs[c].set_inode_used(rel, true);
        self.cgs[c].set_irotor(rel);
        self.cs_add(
            c,
            Csum {
                nifree: -1,
                ndir: dir as i64,
                ..Csum::default()
            },
        );
        let mut ip = Dinode::zeroed(self.sb.ufs2);
        ip.gen = if old.gen == 0 || old.gen == u32::MAX {
            self.random().max(1)
        } else {
            old.gen + 1
        };
        ip.mode = mode;
        let now = self.now();
        ip.atime = now;
        ip.mtime = now;
        ip.ctime = now;
        if self.sb.ufs2 {
            ip.birthtime = now;
        }
        Ok((ino, ip))
    }

    /// Releases inode `ino` in the map (its blocks are already freed) and clears it.
    pub(crate) async fn ifree(&mut self, ino: Ino, was_dir: bool) -> Result<()> {
        self.check_ino(ino)?;
        let c = (ino / self.sb.ipg) as usize;
        let rel = ino % self.sb.ipg;
        if !self.cgs[c].inode_used(rel) {
            return Err(Errno::EIO);
        }
        let mut ip = self.iget_any(ino).await?;
        let gen = ip.gen;
        ip = Dinode::zeroed(self.sb.ufs2);
        ip.gen = gen;
        self.iput(ino, &mut ip).await?;
        self.cgs[c].set_inode_used(rel, false);
        self.cs_add(
            c,
            Csum {
                nifree: 1,
                ndir: -(was_dir as i64),
                ..Csum::default()
            },
        );
        Ok(())
    }

    /// Frees an inode with no links: its blocks, then the inode.
    pub(crate) async fn reclaim(&mut self, ino: Ino) -> Result<()> {
        let mut ip = self.iget(ino).await?;
        let was_dir = ip.is_dir();
        self.truncate_blocks(ino, &mut ip, 0).await?;
        self.ifree(ino, was_dir).await
    }

    /// Is `ip` a symlink stored inside the inode?
    pub(crate) fn is_fast_symlink(&self, ip: &Dinode) -> bool {
        ip.kind() == IFLNK
            && ((self.sb.maxsymlinklen > 0 && ip.size < self.sb.maxsymlinklen as u64)
                || (self.sb.maxsymlinklen == 0 && ip.blocks == 0))
    }
}

/// Does the run of `n` fragments at `addr` touch group metadata (superblock copy, group
/// block, inodes; in group 0 also the boot area and the summary area)?
pub(crate) fn overlaps_metadata(sb: &Superblock, addr: u64, n: u64) -> bool {
    let c = (addr / sb.fpg as u64) as u32;
    let lo = if c == 0 { 0 } else { sb.cgsblock(c) };
    let end = addr + n;
    let cs_end = sb.csaddr + sb.numfrags(sb.cssize as u64);
    (addr < sb.cgdmin(c) && end > lo) || (addr < cs_end && end > sb.csaddr)
}

/// Reads `buf` at `off` in pieces that stay inside one block each.
async fn read_span<D: Disk>(disk: &D, sb: &Superblock, off: u64, buf: &mut [u8]) -> Result<()> {
    if off + buf.len() as u64 > disk.size() {
        return Err(Errno::EINVAL);
    }
    let bs = sb.bsize as usize;
    for (i, chunk) in buf.chunks_mut(bs).enumerate() {
        disk.read(off + (i * bs) as u64, chunk).await?;
    }
    Ok(())
}
