//! The engine: `Fs<D>`, one mounted file system — mount/unmount, inode I/O, the summary
//! counts, and block, fragment and inode allocation through the cylinder-group maps.
//!
//! All cylinder groups are read at mount and kept in memory (`ncg × fs_cgsize` bytes); their
//! blocks, the summary area and the superblock are written back by `sync`.
//!
//! Concurrency: operations take `&self`. The allocation state (maps, counts, hints) is one
//! [`Alloc`] behind a `std::sync::Mutex` held only for in-memory work, never across an
//! `.await`; the inode references have their own. Everything else an operation changes
//! belongs to the inodes it names, and the caller must not run two operations that change
//! one inode (or read one while another changes it) at once: the kernel locks inodes, as
//! NetBSD locks vnodes (see `lib.rs`). Inodes, indirect
//! blocks, directories and file data go to the `Disk` as each operation changes them (the
//! kernel's buffer cache sits below). Allocation policy: a file's blocks come from its inode's
//! group (next to the previous block when possible), then from the following groups; a run
//! of fragments comes from a partly used block of the first group that has one long enough,
//! else from a block of that group broken up, before the next group is tried (NetBSD's
//! `ffs_alloccg`); new directories go to a group with many free inodes and few directories.

use crate::cg::Cg;
use crate::inode::{Dinode, Timespec, IFDIR, IFLNK};
use crate::sb::{Csum, Superblock, CSUM_SIZE, FS_DOQUOTA2, FS_DOWAPBL, FS_FLAGS_UPDATED};
use crate::sb::{FS_ISCLEAN, FS_KNOWN_FLAGS, FS_WASCLEAN, ROOTINO};
use crate::{Disk, Errno, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

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
/// Operations take `&self` and may run concurrently on different inodes (see the module
/// text for what the caller must serialise); `Fs<D>` is `Send` and `Sync` when `D` is. An
/// operation that fails with a disk error may leave its own changes half done (as a crash
/// would); `rump_fsck` reports it.
pub struct Fs<D: Disk> {
    pub(crate) disk: D,
    /// The superblock as mounted; its counts (`cstotal`) are kept in [`Alloc`] instead.
    pub(crate) sb: Superblock,
    /// Maps, counts and hints of the cylinder groups (NetBSD's per-group buffers and
    /// `fs_cstotal` under `ufs_lock`): held for in-memory work only.
    alloc: Mutex<Alloc>,
    /// `cg_initediblk` of each group (UFS2), readable without the allocation lock: it only
    /// grows, and an inode below it has been written.
    inited: Vec<AtomicU32>,
    /// A `sync` is writing the summary (two at once could leave an older copy last).
    syncing: AtomicBool,
    pub(crate) ro: bool,
    /// Directory entries carry `d_type`.
    pub(crate) dtype: bool,
    pub(crate) clock: fn() -> Timespec,
    /// References the kernel holds on inodes (`retain`/`release`): an inode whose last link
    /// goes while referenced is freed at its last `release`.
    pub(crate) refs: Mutex<HashMap<Ino, u32>>,
}

/// The allocation state of a mount (one lock, held only between two awaits).
pub(crate) struct Alloc {
    pub(crate) csum: Vec<Csum>,
    pub(crate) cgs: Vec<Cg>,
    /// `fs_cstotal`.
    pub(crate) total: Csum,
    rng: u64,
    /// Groups whose next inode block is being zeroed (UFS2) by some operation.
    initing: Vec<bool>,
    /// `fs_optim` ([`FS_OPTTIME`] or [`FS_OPTSPACE`]), switched by `realloc_request`.
    pub(crate) optim: u32,
}

/// `fs_optim`: grow fragments into whole blocks (NetBSD's default).
pub(crate) const FS_OPTTIME: u32 = 0;
/// `fs_optim`: grow fragments exactly.
pub(crate) const FS_OPTSPACE: u32 = 1;

impl Alloc {
    fn cs_add(&mut self, c: usize, d: Csum) {
        self.cgs[c].add_cs(&d);
        self.csum[c].add(&d);
        self.total.add(&d);
    }
}

/// Gives a group's inode-block initialisation back if the operation doing it stops early
/// (an error, or its future dropped).
struct Initing<'a> {
    alloc: &'a Mutex<Alloc>,
    c: usize,
}

impl Drop for Initing<'_> {
    fn drop(&mut self) {
        lock(self.alloc).initing[self.c] = false;
    }
}

/// A `std::sync::Mutex` whose holder panicked still holds consistent-enough bytes.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        let inited = cgs.iter().map(|c| AtomicU32::new(c.initediblk())).collect();
        let ncg = cgs.len();
        // `fs_optim`; NetBSD panics on another value when it first reads it, ours takes TIME.
        let optim = match crate::le::u32_at(&sb.raw, 128) {
            FS_OPTSPACE => FS_OPTSPACE,
            _ => FS_OPTTIME,
        };
        let mut fs = Fs {
            disk,
            dtype: sb.maxsymlinklen > 0,
            sb,
            alloc: Mutex::new(Alloc {
                csum,
                cgs,
                total,
                rng: (seed.sec as u64) ^ ((seed.nsec as u64) << 32) ^ 0x9e37_79b9_7f4a_7c15,
                initing: vec![false; ncg],
                optim,
            }),
            inited,
            syncing: AtomicBool::new(false),
            ro,
            clock: opts.clock,
            refs: Mutex::new(HashMap::new()),
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

    pub(crate) fn st(&self) -> MutexGuard<'_, Alloc> {
        lock(&self.alloc)
    }

    pub(crate) fn random(&self) -> u32 {
        // xorshift64*: generation numbers only need to differ.
        let mut a = self.st();
        let mut x = a.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        a.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    /// `fs_cstotal` now.
    pub(crate) fn total(&self) -> Csum {
        self.st().total
    }

    pub(crate) fn check_rw(&self) -> Result<()> {
        if self.ro {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Writes the cylinder groups, the summary area and the superblock, then flushes.
    pub async fn sync(&self) -> Result<()> {
        if self.ro {
            return Ok(());
        }
        self.write_summary().await?;
        self.disk.flush().await
    }

    /// Writes the changed groups, the summary area and the superblock as one snapshot of
    /// the allocation state, taken under its lock; the writes happen without it. Two
    /// summaries are never written at once (the kernel serialises `sync`; should two meet
    /// anyway, the second waits, yielding, for the first).
    async fn write_summary(&self) -> Result<()> {
        while self
            .syncing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.step_through().await;
        }
        let r = self.write_summary_now().await;
        self.syncing.store(false, Ordering::Release);
        r
    }

    async fn write_summary_now(&self) -> Result<()> {
        let now = self.now().sec;
        let mut sb = self.sb.clone();
        let mut area = vec![0u8; sb.fragroundup(sb.cssize as u64) as usize];
        let mut groups = Vec::new();
        {
            let mut a = self.st();
            for (c, cg) in a.cgs.iter_mut().enumerate() {
                if !cg.dirty {
                    continue;
                }
                cg.rebuild(&sb);
                cg.set_time(&sb, now);
                cg.dirty = false;
                groups.push((c, cg.raw.clone()));
            }
            for (c, cs) in a.csum.iter().enumerate() {
                cs.encode32(&mut area[c * CSUM_SIZE..]);
            }
            sb.cstotal = a.total;
            crate::le::put_u32(&mut sb.raw, 128, a.optim);
        }
        for (i, (c, raw)) in groups.iter().enumerate() {
            let off = sb.frag_offset(sb.cgtod(*c as u32));
            if let Err(e) = self.disk.write(off, raw).await {
                // Not written: still to be written.
                let mut a = self.st();
                for (c, _) in &groups[i..] {
                    a.cgs[*c].dirty = true;
                }
                return Err(e);
            }
        }
        // The summary area may span blocks: write it a block at a time.
        let base = sb.frag_offset(sb.csaddr);
        for (i, chunk) in area.chunks(sb.bsize as usize).enumerate() {
            let off = base + (i * sb.bsize as usize) as u64;
            self.disk.write(off, chunk).await?;
        }
        sb.time = now;
        sb.encode();
        let n = sb.sbsize as usize;
        self.disk.write(sb.sblockloc, &sb.raw[..n]).await
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
        for cg in &mut self.st().cgs {
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
            let orphans: Vec<Ino> = std::mem::take(&mut *lock(&self.refs)).into_keys().collect();
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
            if ino % self.sb.ipg >= self.inited[c].load(Ordering::Acquire) {
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
    pub(crate) async fn iput(&self, ino: Ino, ip: &mut Dinode) -> Result<()> {
        self.check_rw()?;
        let off = self.sb.inode_offset(ino);
        self.disk.write(off, ip.encode()).await
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

    /// Allocates a full block as NetBSD's `ffs_alloc`: in `pref`'s group (a fragment
    /// address, or 0 for group `cg`, the inode's), near `pref`, else by `hashalloc`.
    pub(crate) fn alloc_block(&self, cg: u32, pref: u64) -> Result<u64> {
        self.alloc_frags(cg, self.sb.frag as u64, pref)
    }

    /// Allocates `n` contiguous fragments inside one block (a whole block when `n` is
    /// `frag`) as NetBSD's `ffs_alloc`: the group is `pref`'s (a fragment address), or `cg`
    /// (the inode's) when `pref` is 0; then [`hashalloc`] and [`alloccg`] decide.
    pub(crate) fn alloc_frags(&self, cg: u32, n: u64, pref: u64) -> Result<u64> {
        let sb = &self.sb;
        let pref = if pref >= sb.size { 0 } else { pref };
        let c = match pref {
            0 => cg % sb.ncg,
            p => (p / sb.fpg as u64) as u32,
        };
        hashalloc(sb, &mut self.st(), c, pref, n).ok_or(Errno::ENOSPC)
    }

    /// `n` fragments by NetBSD's `ffs_hashalloc` from group `cg` near `pref` (which may
    /// lie in another group: `ffs_realloccg` starts in the old run's group).
    pub(crate) fn alloc_in(&self, cg: u32, n: u64, pref: u64) -> Result<u64> {
        let sb = &self.sb;
        let pref = if pref >= sb.size { 0 } else { pref };
        hashalloc(sb, &mut self.st(), cg % sb.ncg, pref, n).ok_or(Errno::ENOSPC)
    }

    /// NetBSD's `ffs_realloccg` after `ffs_fragextend` failed: the size to ask
    /// `hashalloc` for when a run of `old` fragments must become `new` (< `frag`) fragments
    /// elsewhere, switching `fs_optim` as NetBSD does. With `FS_OPTSPACE` exactly `new`;
    /// with `FS_OPTTIME` a whole block, whose tail the caller frees, so the file's next
    /// growth is in place. NetBSD logs the switch only with `vfs.ffs.log_changeopt` set,
    /// which is off by default; this kernel has no such knob and stays silent.
    pub(crate) fn realloc_request(&self, new: u64) -> u64 {
        let sb = &self.sb;
        let mut a = self.st();
        let nffree = a.total.nffree;
        let (dsize, minfree) = (sb.dsize as i64, sb.minfree as i64);
        match a.optim {
            FS_OPTSPACE => {
                if minfree >= 5 && nffree <= dsize * minfree / (2 * 100) {
                    a.optim = FS_OPTTIME;
                }
                new
            }
            _ => {
                if nffree >= dsize * (minfree - 2) / 100 {
                    a.optim = FS_OPTSPACE;
                }
                sb.frag as u64
            }
        }
    }

    /// Tries to grow the run at `addr` from `old` to `new` fragments in place.
    pub(crate) fn extend_in_place(&self, addr: u64, old: u64, new: u64) -> bool {
        let frag = self.sb.frag as u64;
        if (addr % frag) + new > frag {
            return false;
        }
        let c = (addr / self.sb.fpg as u64) as usize;
        let rel = addr - self.sb.cgbase(c as u32);
        let mut a = self.st();
        if rel + new > a.cgs[c].ndblk || !(rel + old..rel + new).all(|f| a.cgs[c].frag_free(f)) {
            return false;
        }
        for f in rel + old..rel + new {
            a.cgs[c].set_frag_free(f, false);
        }
        a.cs_add(
            c,
            Csum {
                nffree: -((new - old) as i64),
                ..Csum::default()
            },
        );
        true
    }

    /// Frees `n` fragments at `addr` (one block at most). Freeing free space is `EIO`.
    pub(crate) fn free_frags(&self, addr: u64, n: u64) -> Result<()> {
        self.check_run(addr, n)?;
        let sb = &self.sb;
        let frag = sb.frag as u64;
        let c = (addr / sb.fpg as u64) as usize;
        let rel = addr - sb.cgbase(c as u32);
        let mut a = self.st();
        let cgp = &a.cgs[c];
        if (rel..rel + n).any(|f| cgp.frag_free(f)) {
            return Err(Errno::EIO);
        }
        let f0 = rel - rel % frag;
        let before = cgp.free_in_block(sb, f0) as i64;
        let cgp = &mut a.cgs[c];
        for f in rel..rel + n {
            cgp.set_frag_free(f, true);
        }
        if a.cgs[c].block_free(sb, f0) {
            a.cs_add(
                c,
                Csum {
                    nbfree: 1,
                    nffree: -before,
                    ..Csum::default()
                },
            );
        } else {
            a.cs_add(
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

    /// Allocates an inode near `near` (the parent directory) and returns it zeroed with a
    /// fresh generation number; the caller fills it in and writes it.
    ///
    /// The inode is taken in the map under the allocation lock before anything waits, so two
    /// allocations never get the same one. On UFS2 an inode block never written is zeroed
    /// first, by one operation per group at a time (the others use the inodes already
    /// initialised, or wait for it); only then does `cg_initediblk` pass it.
    pub(crate) async fn ialloc(&self, near: Ino, mode: u16) -> Result<(Ino, Dinode)> {
        self.check_rw()?;
        let dir = mode & crate::inode::IFMT == IFDIR;
        let ipg = self.sb.ipg;
        let (c, rel) = loop {
            let plan = {
                let mut a = self.st();
                if a.total.nifree <= 0 {
                    return Err(Errno::ENOSPC);
                }
                let c = pick_inode_cg(&self.sb, &a, near, dir) as usize;
                if a.csum[c].nifree <= 0 {
                    return Err(Errno::ENOSPC);
                }
                let inited = if self.sb.ufs2 {
                    a.cgs[c].initediblk()
                } else {
                    ipg
                };
                let free = |i: u32| !a.cgs[c].inode_used(i) && (c > 0 || i >= ROOTINO);
                // NetBSD's ffs_nodealloccg: the preferred inode if free (a new directory's
                // group's first inode, a file's parent's slot: ffs_dirpref/ffs_valloc),
                // else the first free inode of the first map byte with one, from the byte
                // holding cg_irotor on and then from the map's start; only a search moves
                // the rotor.
                let ipref = match dir {
                    true if c > 0 => Some(0),
                    true => None,
                    false if near > 0 => Some(near % ipg),
                    false => None,
                };
                let by_pref = ipref.filter(|&r| r < inited && free(r));
                let found = by_pref.or_else(|| {
                    let nbytes = ipg.div_ceil(8);
                    let start = (a.cgs[c].irotor() % ipg) / 8;
                    (start..nbytes)
                        .chain(0..=start)
                        .find_map(|b| (b * 8..(b * 8 + 8).min(ipg)).find(|&i| free(i)))
                });
                let below = found.filter(|&i| i < inited);
                match below {
                    Some(rel) => {
                        a.cgs[c].set_inode_used(rel, true);
                        if by_pref.is_none() {
                            a.cgs[c].set_irotor(rel);
                        }
                        a.cs_add(
                            c,
                            Csum {
                                nifree: -1,
                                ndir: dir as i64,
                                ..Csum::default()
                            },
                        );
                        Ok((c, rel))
                    }
                    None if (inited..ipg).any(free) && !a.initing[c] => {
                        a.initing[c] = true;
                        Err(Some((c, inited)))
                    }
                    None if a.initing[c] => Err(None),
                    None => return Err(Errno::EIO),
                }
            };
            match plan {
                Ok(got) => break got,
                // Inode blocks past cg_initediblk were never written: zero the next one.
                Err(Some((c, first))) => {
                    let guard = Initing {
                        alloc: &self.alloc,
                        c,
                    };
                    let off = self.sb.inode_offset(c as u32 * ipg + first);
                    let zero = vec![0u8; self.sb.bsize as usize];
                    self.disk.write(off, &zero).await?;
                    let next = (first + self.sb.inopb).min(ipg);
                    self.st().cgs[c].set_initediblk(next);
                    self.inited[c].store(next, Ordering::Release);
                    drop(guard);
                }
                // Another operation is zeroing this group's next inode block.
                Err(None) => self.step_through().await,
            }
        };
        let ino = c as u32 * ipg + rel;
        let old = match self.iget_any(ino).await {
            Ok(old) if old.mode == 0 => old,
            // The map said free, the inode says used: refuse rather than clobber it.
            r => {
                let mut a = self.st();
                a.cgs[c].set_inode_used(rel, false);
                a.cs_add(
                    c,
                    Csum {
                        nifree: 1,
                        ndir: -(dir as i64),
                        ..Csum::default()
                    },
                );
                return Err(r.err().unwrap_or(Errno::EIO));
            }
        };
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
    pub(crate) async fn ifree(&self, ino: Ino, was_dir: bool) -> Result<()> {
        self.check_ino(ino)?;
        let c = (ino / self.sb.ipg) as usize;
        let rel = ino % self.sb.ipg;
        if !self.st().cgs[c].inode_used(rel) {
            return Err(Errno::EIO);
        }
        let mut ip = self.iget_any(ino).await?;
        let gen = ip.gen;
        ip = Dinode::zeroed(self.sb.ufs2);
        ip.gen = gen;
        self.iput(ino, &mut ip).await?;
        let mut a = self.st();
        if !a.cgs[c].inode_used(rel) {
            return Err(Errno::EIO);
        }
        a.cgs[c].set_inode_used(rel, false);
        // ffs_freefile: the rotor moves back to a freed inode below it.
        if rel < a.cgs[c].irotor() {
            a.cgs[c].set_irotor(rel);
        }
        a.cs_add(
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
    pub(crate) async fn reclaim(&self, ino: Ino) -> Result<()> {
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

/// NetBSD's `ffs_hashalloc`: group `cg` near `pref`, then a quadratic rehash over the
/// groups, then every group in turn (both without a preference), for `n` fragments.
fn hashalloc(sb: &Superblock, a: &mut Alloc, cg: u32, pref: u64, n: u64) -> Option<u64> {
    let ncg = sb.ncg;
    if let Some(r) = alloccg(sb, a, cg, pref, n) {
        return Some(r);
    }
    let mut c = cg;
    let mut i = 1;
    while i < ncg {
        c = (c + i) % ncg;
        if let Some(r) = alloccg(sb, a, c, 0, n) {
            return Some(r);
        }
        i *= 2;
    }
    let mut c = (cg + 2) % ncg;
    for _ in 2..ncg {
        if let Some(r) = alloccg(sb, a, c, 0, n) {
            return Some(r);
        }
        c = (c + 1) % ncg;
    }
    None
}

/// NetBSD's `ffs_alloccg`: `n` fragments in group `c` (a whole block when `n` is `frag`).
/// Fragments come from the smallest free run that fits (`cg_frsum`), found from `pref`
/// or the fragment rotor; with none, a whole block is broken up.
fn alloccg(sb: &Superblock, a: &mut Alloc, c: u32, pref: u64, n: u64) -> Option<u64> {
    let frag = sb.frag as u64;
    let cx = c as usize;
    if n >= frag {
        if a.csum[cx].nbfree <= 0 {
            return None;
        }
        let f = alloccgblk(sb, a, c, pref)?;
        return Some(sb.cgbase(c) + f);
    }
    let frsum = a.cgs[cx].live_frsum();
    let Some(size) = (n..frag).find(|&s| frsum[s as usize] != 0) else {
        if a.csum[cx].nbfree <= 0 {
            return None;
        }
        let f = alloccgblk(sb, a, c, pref)?;
        for x in f + n..f + frag {
            a.cgs[cx].set_frag_free(x, true);
        }
        a.cs_add(
            cx,
            Csum {
                nffree: (frag - n) as i64,
                ..Csum::default()
            },
        );
        return Some(sb.cgbase(c) + f);
    };
    let start = (pref != 0).then_some(pref % sb.fpg as u64);
    let f = a.cgs[cx].mapsearch(sb, start, size)?;
    for x in f..f + n {
        a.cgs[cx].set_frag_free(x, false);
    }
    a.cs_add(
        cx,
        Csum {
            nffree: -(n as i64),
            ..Csum::default()
        },
    );
    Some(sb.cgbase(c) + f)
}

/// NetBSD's `ffs_alloccgblk`: a whole block of group `c` (which has one), the one at
/// `pref` if that is in this group and free, else the next free one from `pref` (or from
/// the block rotor), which then moves the rotor. Returns the group-relative fragment.
fn alloccgblk(sb: &Superblock, a: &mut Alloc, c: u32, pref: u64) -> Option<u64> {
    let frag = sb.frag as u64;
    let cx = c as usize;
    let cgp = &mut a.cgs[cx];
    let f = if pref == 0 || pref / sb.fpg as u64 != c as u64 {
        let rotor = cgp.rotor();
        let f = cgp.mapsearch(sb, (rotor != 0).then_some(rotor), frag)?;
        cgp.set_rotor(f);
        f
    } else {
        let rel = pref % sb.fpg as u64;
        let rel = rel - rel % frag;
        if cgp.block_free(sb, rel) {
            rel
        } else {
            let f = cgp.mapsearch(sb, Some(rel), frag)?;
            cgp.set_rotor(f);
            f
        }
    };
    for x in f..f + frag {
        cgp.set_frag_free(x, false);
    }
    a.cs_add(
        cx,
        Csum {
            nbfree: -1,
            ..Csum::default()
        },
    );
    Some(f)
}

/// The group for a new inode near `near`: for a directory, among groups with at least
/// average free inodes the one with the fewest directories; else the first group from
/// `near`'s with a free inode.
fn pick_inode_cg(sb: &Superblock, a: &Alloc, near: Ino, dir: bool) -> u32 {
    let ncg = sb.ncg;
    if dir {
        let avg = a.total.nifree / ncg as i64;
        let mut best: Option<u32> = None;
        for c in 0..ncg {
            let cs = &a.csum[c as usize];
            if cs.nifree <= 0 || cs.nifree < avg {
                continue;
            }
            if best.map_or(true, |b| cs.ndir < a.csum[b as usize].ndir) {
                best = Some(c);
            }
        }
        if let Some(b) = best {
            return b;
        }
    }
    let start = near / sb.ipg;
    (0..ncg)
        .map(|i| (start + i) % ncg)
        .find(|&c| a.csum[c as usize].nifree > 0)
        .unwrap_or(start)
}
