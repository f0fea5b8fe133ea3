//! rump_etfs (rumpfs.c `etfs_*`, netbsd-abi.md §7.2): host-file windows at keys of the rumpfs
//! namespace, as a regular file, a block device (through the buffer cache) or a raw
//! character device (straight to the host, 512-byte aligned).
//!
//! Bounds (netbsd-abi.md §10, rumpblk's window check): a read starting at or after the end
//! of the window returns 0 bytes and one crossing it is cut at the end. A device write
//! starting exactly at the end writes 0 bytes, one crossing it is cut at the end (a short
//! count, so nothing is dropped silently), one starting beyond it is `EINVAL`. A regular
//! file's write that does not fit in the window is `EINVAL` as a whole. The raw device also
//! wants offset and length in multiples of 512 (`EINVAL`, reads too). NetBSD's block device
//! goes through 2048-byte buffers (`spec_write`, `BLKDEV_IOSIZE`) whose parts past a window
//! end not a multiple of 2048 it keeps only in its cache; ours follows the rule above for
//! both device types (tests/oracle_ffs.rs lists the steps where that differs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::abi::makedev;
use crate::bio::{BDev, BufCache};
use crate::hostio::{read_full, write_full, HostFile};
use crate::vfs::ops::{FsFuture, VnodeOps};
use crate::vfs::Vnode;
use crate::{Errno, Result};

/// `RUMPBLK_DEVMAJOR`: major number of the host block devices.
pub const RUMPBLK_DEVMAJOR: u32 = 197;
/// Most host files registered as block or character devices (`RUMPBLK_SIZE`).
pub const RUMPBLK_MAX: usize = 16;
/// Sector size of the raw device.
pub const SECTOR: u64 = 512;

/// `enum rump_etfs_type` (the non-directory kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtfsType {
    /// `RUMP_ETFS_REG`: a regular file.
    Reg,
    /// `RUMP_ETFS_BLK`: a block device through the buffer cache.
    Blk,
    /// `RUMP_ETFS_CHR`: a raw character device.
    Chr,
}

/// The data of an etfs vnode.
pub struct EtfsNode {
    etype: EtfsType,
    file: Arc<dyn HostFile>,
    begin: u64,
    size: u64,
    minor: u32,
    /// The cache and its device, for `Blk`.
    blk: Option<(Arc<BufCache>, Arc<BDev>)>,
    /// A file system is mounted on it (`vfs_mountedon`).
    mounted: AtomicBool,
}

impl EtfsNode {
    /// The type.
    pub fn etype(&self) -> EtfsType {
        self.etype
    }

    /// The host file's path, when the server opened it by path.
    pub fn host_path(&self) -> Option<std::path::PathBuf> {
        self.file.host_path()
    }

    /// Where the module loader opens the host file, if the operator marked it as a module
    /// (`HostFile::module_path`).
    pub fn module_path(&self) -> Option<std::path::PathBuf> {
        self.file.module_path()
    }

    /// The buffer cache and device of a `blk` node (what a file system mounts).
    pub fn block_dev(&self) -> Option<(&Arc<BufCache>, &Arc<BDev>)> {
        self.blk.as_ref().map(|(c, d)| (c, d))
    }

    /// Marks the device as mounted on: `EBUSY` when it already is (NetBSD's
    /// `vfs_mountedon` check of `ffs_mountfs`: two mounts of one device corrupt it).
    pub fn claim_mount(&self) -> Result<()> {
        match self.mounted.swap(true, Ordering::AcqRel) {
            true => Err(Errno::EBUSY),
            false => Ok(()),
        }
    }

    /// The mount on the device went.
    pub fn release_mount(&self) {
        self.mounted.store(false, Ordering::Release);
    }

    /// Whether the host file was opened for writing.
    pub fn writable(&self) -> bool {
        self.file.writable()
    }

    /// Window size in bytes (`st_size`, `DIOCGMEDIASIZE`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `st_rdev`: `makedev(197, minor)` for devices.
    pub fn rdev(&self) -> Option<u64> {
        (self.etype != EtfsType::Reg).then(|| makedev(RUMPBLK_DEVMAJOR, self.minor))
    }

    fn check_raw(&self, off: u64, len: usize) -> Result<()> {
        if self.etype == EtfsType::Chr && (off % SECTOR != 0 || len as u64 % SECTOR != 0) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Reads at most `len` bytes at window offset `off`.
    pub async fn read(&self, off: u64, len: usize) -> Result<Vec<u8>> {
        self.check_raw(off, len)?;
        if off >= self.size {
            return Ok(Vec::new());
        }
        let len = (len as u64).min(self.size - off) as usize;
        match &self.blk {
            Some((cache, dev)) => {
                let mut out = vec![0; len];
                for (blk, inb, piece) in cache.spans(off, len) {
                    cache.read(dev, blk, inb, &mut out[piece]).await?;
                }
                Ok(out)
            }
            None => {
                let (r, mut buf) = read_full(&*self.file, vec![0; len], self.begin + off).await;
                buf.truncate(r?);
                Ok(buf)
            }
        }
    }

    /// Writes `data` at window offset `off`; the bytes written. A device cuts the write at
    /// the window's end (0 bytes at the end, `EINVAL` beyond it); a regular file's write is
    /// `EINVAL` unless it fits.
    pub async fn write(&self, off: u64, data: &[u8]) -> Result<usize> {
        self.check_raw(off, data.len())?;
        if data.is_empty() {
            return Ok(0);
        }
        let end = off.checked_add(data.len() as u64).ok_or(Errno::EINVAL)?;
        if off > self.size || (self.etype == EtfsType::Reg && end > self.size) {
            return Err(Errno::EINVAL);
        }
        let data = &data[..(self.size - off).min(data.len() as u64) as usize];
        if data.is_empty() {
            return Ok(0);
        }
        match &self.blk {
            Some((cache, dev)) => {
                for (blk, inb, piece) in cache.spans(off, data.len()) {
                    cache.write(dev, blk, inb, &data[piece]).await?;
                }
                Ok(data.len())
            }
            None => {
                let (r, _) = write_full(&*self.file, data.to_vec(), self.begin + off).await;
                r.map(|_| data.len())
            }
        }
    }

    /// `VOP_FSYNC`: the block device's dirty buffers, then the host's `fdatasync`.
    pub async fn fsync(&self) -> Result<()> {
        match &self.blk {
            Some((cache, dev)) => cache.sync_dev(dev).await,
            None => self.file.sync_data().await,
        }
    }
}

/// The etfs data of `vn`, if it is an etfs key.
pub fn of(vn: &Vnode) -> Option<&EtfsNode> {
    vn.node_as::<EtfsNode>()
}

/// An etfs key as a vnode: its data is the host file's window, whatever its type (a
/// device node drives itself: rumpblk).
impl VnodeOps for EtfsNode {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn drives_data(&self) -> bool {
        true
    }

    fn read<'a>(&'a self, _vn: &'a Vnode, off: u64, len: usize) -> FsFuture<'a, Vec<u8>> {
        Box::pin(EtfsNode::read(self, off, len))
    }

    fn write<'a>(
        &'a self,
        _vn: &'a Vnode,
        off: u64,
        data: &'a [u8],
        append: bool,
    ) -> FsFuture<'a, (u64, usize)> {
        Box::pin(async move {
            // NetBSD's etfs appends at the registered size: outside the window.
            let at = if append { self.size } else { off };
            let n = EtfsNode::write(self, at, data).await?;
            Ok((at, n))
        })
    }

    fn fsync<'a>(&'a self, _vn: &'a Vnode) -> FsFuture<'a, ()> {
        Box::pin(EtfsNode::fsync(self))
    }

    /// The last close of a block device writes its dirty blocks back to the host file
    /// (spec_close's `vinvalbuf(V_SAVE)`), so a server killed afterwards has lost nothing.
    fn close<'a>(&'a self, _vn: &'a Vnode) -> FsFuture<'a, ()> {
        Box::pin(async move {
            match &self.blk {
                Some((cache, dev)) => cache.sync_dev(dev).await,
                None => Ok(()),
            }
        })
    }

    /// A host file the server could only open read-only cannot be opened for writing
    /// (rumpblk's `EACCES`); a block device a file system is mounted on cannot be opened
    /// at all (`spec_open`'s `vfs_mountedon`: `EBUSY`).
    fn open(&self, fmode: u32) -> Result<()> {
        if self.etype == EtfsType::Blk && self.mounted.load(Ordering::Acquire) {
            return Err(Errno::EBUSY);
        }
        if fmode & crate::abi::FWRITE != 0 && !self.writable() {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    fn ioctl(&self, com: u32, data: &mut [u8]) -> Result<()> {
        disk_ioctl(self, com, data)
    }
}

/// The etfs keys of a rumpfs mount and the host device minors in use.
#[derive(Default)]
pub struct Keys {
    keys: RwLock<HashMap<Vec<u8>, Arc<Vnode>>>,
    minors: Mutex<Vec<Option<Arc<dyn HostFile>>>>,
}

fn norm(key: &[u8]) -> Result<&[u8]> {
    if key.first() != Some(&b'/') {
        return Err(Errno::EINVAL);
    }
    let n = key.iter().take_while(|&&b| b == b'/').count();
    Ok(&key[n..])
}

impl Keys {
    fn minors(&self) -> MutexGuard<'_, Vec<Option<Arc<dyn HostFile>>>> {
        self.minors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The etfs vnode at `path` (the whole remaining path of a lookup at the rumpfs root,
    /// leading slashes removed), compared verbatim.
    pub fn get(&self, path: &[u8]) -> Option<Arc<Vnode>> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        if keys.is_empty() {
            return None;
        }
        keys.get(path).cloned()
    }

    /// Checks the registration rules and builds the node (netbsd-abi.md §7.2 steps 1–4).
    pub fn make_node(
        &self,
        key: &[u8],
        host: Arc<dyn HostFile>,
        etype: EtfsType,
        begin: u64,
        size: Option<u64>,
        cache: &Arc<BufCache>,
    ) -> Result<(Vec<u8>, EtfsNode)> {
        let key = norm(key)?.to_vec();
        let hsize = host.len()?;
        if begin > hsize {
            return Err(Errno::EINVAL);
        }
        let size = size.unwrap_or(hsize - begin);
        if begin.checked_add(size).map_or(true, |end| end > hsize) {
            return Err(Errno::EINVAL);
        }
        if self.get(&key).is_some() {
            return Err(Errno::EEXIST);
        }
        let mut minor = 0;
        if etype != EtfsType::Reg {
            let mut m = self.minors();
            minor = match m
                .iter()
                .position(|f| f.as_ref().is_some_and(|f| Arc::ptr_eq(f, &host)))
            {
                Some(i) => i,
                None => match m.iter().position(Option::is_none) {
                    Some(i) => {
                        m[i] = Some(host.clone());
                        i
                    }
                    None if m.len() < RUMPBLK_MAX => {
                        m.push(Some(host.clone()));
                        m.len() - 1
                    }
                    None => return Err(Errno::EBUSY),
                },
            } as u32;
        }
        let blk =
            (etype == EtfsType::Blk).then(|| (cache.clone(), BDev::new(host.clone(), begin, size)));
        let node = EtfsNode {
            etype,
            file: host,
            begin,
            size,
            minor,
            blk,
            mounted: AtomicBool::new(false),
        };
        Ok((key, node))
    }

    /// Adds the vnode at `key`; `EEXIST` if taken meanwhile.
    pub fn insert(&self, key: Vec<u8>, vn: Arc<Vnode>) -> Result<()> {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.contains_key(&key) {
            return Err(Errno::EEXIST);
        }
        keys.insert(key, vn);
        Ok(())
    }

    /// Removes `key`, returning its vnode; `ENOENT` if unknown.
    pub fn remove(&self, key: &[u8]) -> Result<Arc<Vnode>> {
        let key = norm(key)?;
        let vn = (self.keys.write().unwrap_or_else(|e| e.into_inner()))
            .remove(key)
            .ok_or(Errno::ENOENT)?;
        if let Some(n) = of(&vn) {
            let still = self
                .keys
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .any(|o| of(o).is_some_and(|m| Arc::ptr_eq(&m.file, &n.file)));
            if n.etype != EtfsType::Reg && !still {
                self.minors()[n.minor as usize] = None;
            }
        }
        Ok(vn)
    }

    /// Every registered node (for sync).
    pub fn nodes(&self) -> Vec<Arc<Vnode>> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.values().cloned().collect()
    }
}

/// The disk ioctls of an etfs device (rumpblk.c): `DIOCGMEDIASIZE` (window bytes),
/// `DIOCCACHESYNC` (accepted; `fsync` is the flush), `DIOCGDINFO` (a fabricated label:
/// 512-byte sectors, type "rumpd", pack "fictitious", one partition over the window at
/// index = minor), `DIOCGPARTINFO` (that partition: offset 0, the window's sectors, 512-byte
/// sectors, `BLKDEV_IOSIZE` 2048); the rest `ENOTTY` (no wedges, as rumpblk).
pub fn disk_ioctl(n: &EtfsNode, com: u32, data: &mut [u8]) -> Result<()> {
    use crate::abi::{DIOCCACHESYNC, DIOCGDINFO, DIOCGMEDIASIZE, DIOCGPARTINFO};
    match com {
        DIOCGMEDIASIZE => {
            data[..8].copy_from_slice(&(n.size as i64).to_le_bytes());
            Ok(())
        }
        DIOCCACHESYNC => Ok(()),
        DIOCGDINFO => {
            fake_label(n, data);
            Ok(())
        }
        DIOCGPARTINFO => {
            let d = &mut data[..32];
            d.fill(0);
            d[8..16].copy_from_slice(&(n.size / SECTOR).to_le_bytes()); // pi_size
            d[16..20].copy_from_slice(&(SECTOR as u32).to_le_bytes()); // pi_secsize
            d[20..24].copy_from_slice(&2048u32.to_le_bytes()); // pi_bsize
            Ok(())
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// Size of `struct disklabel` with 22 partitions on amd64.
pub const DISKLABEL_SIZE: usize = 408;
/// `DISKMAGIC`.
pub(crate) const DISKMAGIC: u32 = 0x8256_4557;
/// `DKTYPE_RUMPD`: the disk type of rump's virtual disks.
const DKTYPE_RUMPD: u16 = 21;
/// Partitions in the label (`MAXPARTITIONS` of amd64).
const MAXPARTITIONS: usize = 22;

/// rumpblk's fabricated label (netbsd-abi.md §4.9 offsets).
fn fake_label(n: &EtfsNode, d: &mut [u8]) {
    let d = &mut d[..DISKLABEL_SIZE];
    d.fill(0);
    let put32 =
        |d: &mut [u8], off: usize, v: u32| d[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let put16 =
        |d: &mut [u8], off: usize, v: u16| d[off..off + 2].copy_from_slice(&v.to_le_bytes());
    let sectors = (n.size / SECTOR) as u32;
    put32(d, 0, DISKMAGIC);
    put16(d, 4, DKTYPE_RUMPD); // d_type
    d[8..13].copy_from_slice(b"rumpd");
    d[24..34].copy_from_slice(b"fictitious");
    // rumpblk's geometry: one track of one cylinder holding every sector. Its d_secperunit
    // is the window's size in bytes (a bug: `disklabel` then shows a unit 512 times too
    // big); ours is the sector count.
    put32(d, 40, SECTOR as u32); // d_secsize
    put32(d, 44, sectors); // d_nsectors
    put32(d, 48, 1); // d_ntracks
    put32(d, 52, 1); // d_ncylinders
    put32(d, 56, sectors); // d_secpercyl
    put32(d, 60, sectors); // d_secperunit
    put16(d, 72, 11); // d_rpm
    put16(d, 74, 1); // d_interleave
    put32(d, 132, DISKMAGIC);
    let np = (n.minor as usize + 1).min(MAXPARTITIONS);
    put16(d, 138, np as u16);
    // d_bbsize and d_sbsize stay 0, as rumpblk leaves them.
    let p = 148 + 16 * (n.minor as usize).min(MAXPARTITIONS - 1);
    put32(d, p, sectors);
    put32(d, p + 4, 0);
    d[p + 12] = 0; // FS_UNUSED
    let end = 148 + 16 * np;
    let mut x = 0u16;
    for w in d[..end].chunks(2) {
        x ^= u16::from_le_bytes([w[0], w[1]]);
    }
    put16(d, 136, x);
}

#[cfg(test)]
#[path = "etfs_tests.rs"]
mod tests;
