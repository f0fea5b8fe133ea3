//! [`BioDisk`]: the FFS engine's `Disk` over the buffer cache of a block device.
//!
//! The engine asks for byte ranges (an inode, a directory chunk, a block); each is split
//! into the cache's blocks, so every FFS read and write goes through the one cache that
//! `sync`, `fsync`, unmount and halt write back, and that `-r` bounds.
//!
//! Long walks (their length decided by the image: a directory's blocks, a truncation's
//! indirect blocks, a `..` chain) call [`ffs::Disk::pace`] per unit of work. Blocks found in
//! the cache complete without waiting, so without it such a walk would hold its loop: every
//! [`PACE_YIELD_STEPS`] units it yields to the loop's other tasks, and once the calling
//! process is exiting (the client went away) it answers `EINTR`, which ends read-only walks.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::bio::{BDev, BufCache};

/// Units of engine work (a block each, at most 64 KiB read and parsed) between two yields
/// of the loop: a few hundred microseconds of work at most when everything is cached.
pub const PACE_YIELD_STEPS: u32 = 8;

/// A block device seen by the FFS engine.
pub struct BioDisk {
    cache: Arc<BufCache>,
    dev: Arc<BDev>,
    /// Units of work paced so far (wrapping), to yield every `PACE_YIELD_STEPS`.
    steps: AtomicU32,
}

impl BioDisk {
    /// The device `dev`, cached in `cache`.
    pub fn new(cache: Arc<BufCache>, dev: Arc<BDev>) -> BioDisk {
        BioDisk {
            cache,
            dev,
            steps: AtomicU32::new(0),
        }
    }

    /// The device.
    pub fn dev(&self) -> &Arc<BDev> {
        &self.dev
    }

    fn check(&self, off: u64, len: usize) -> ffs::Result<()> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.dev.size() => Ok(()),
            _ => Err(ffs::Errno::EIO),
        }
    }
}

fn to_ffs(e: crate::Errno) -> ffs::Errno {
    ffs::Errno(e.raw())
}

impl ffs::Disk for BioDisk {
    fn size(&self) -> u64 {
        self.dev.size()
    }

    async fn read(&self, off: u64, buf: &mut [u8]) -> ffs::Result<()> {
        self.check(off, buf.len())?;
        for (blk, in_blk, piece) in self.cache.spans(off, buf.len()) {
            self.cache
                .read(&self.dev, blk, in_blk, &mut buf[piece])
                .await
                .map_err(to_ffs)?;
        }
        Ok(())
    }

    async fn write(&self, off: u64, buf: &[u8]) -> ffs::Result<()> {
        self.check(off, buf.len())?;
        for (blk, in_blk, piece) in self.cache.spans(off, buf.len()) {
            self.cache
                .write(&self.dev, blk, in_blk, &buf[piece])
                .await
                .map_err(to_ffs)?;
        }
        Ok(())
    }

    async fn flush(&self) -> ffs::Result<()> {
        self.cache.sync_dev(&self.dev).await.map_err(to_ffs)
    }

    async fn pace(&self) -> ffs::Result<()> {
        let n = self.steps.fetch_add(1, Ordering::Relaxed);
        if n % PACE_YIELD_STEPS == PACE_YIELD_STEPS - 1 {
            crate::sync::yield_now().await;
        }
        if crate::sync::caller_exiting() {
            return Err(ffs::Errno::EINTR);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;

    use super::*;
    use crate::hostio::MemFile;
    use crate::testutil::block_on;

    /// newfs, mount, write, unmount and check through the kernel's cache: the image the
    /// host file holds afterwards is a clean file system with the data.
    #[test]
    fn the_ffs_engine_runs_over_the_buffer_cache() {
        let size = 8 << 20;
        let host = Arc::new(MemFile::new(vec![0; size]));
        let cache = Arc::new(BufCache::new(256 << 10, 4096, 4));
        let disk = BioDisk::new(cache.clone(), BDev::new(host.clone(), 0, size as u64));
        for ufs2 in [false, true] {
            let opts = ffs::NewfsOptions {
                ufs2,
                ..ffs::NewfsOptions::default()
            };
            block_on(ffs::newfs(&disk, &opts)).unwrap();
            let fs = block_on(ffs::Fs::mount(
                BioDisk::new(cache.clone(), disk.dev().clone()),
                ffs::MountOptions::default(),
            ))
            .unwrap();
            let root = fs.root();
            let d = block_on(fs.mkdir(root, b"dir", 0o755, 0, 0)).unwrap();
            let f = block_on(fs.create(d, b"file", 0o100644, 0, 0, 0)).unwrap();
            let data: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
            assert_eq!(block_on(fs.write(f, 1000, &data)).unwrap(), data.len());
            block_on(fs.unmount()).unwrap();
            // Everything is on the host file: check it without the cache.
            let image = ffs::MemDisk::from_vec(host.contents());
            let findings = block_on(ffs::check(&image)).unwrap();
            assert!(findings.is_empty(), "ufs2={ufs2}: {findings:?}");
            let fs = block_on(ffs::Fs::mount(image, ffs::MountOptions::default())).unwrap();
            let d = block_on(fs.lookup(fs.root(), b"dir")).unwrap();
            let f = block_on(fs.lookup(d, b"file")).unwrap();
            let mut back = vec![0u8; data.len()];
            assert_eq!(block_on(fs.read(f, 1000, &mut back)).unwrap(), data.len());
            assert!(back == data, "ufs2={ufs2}: data read back");
        }
        assert!(cache.stats().evictions > 0, "the small cache had to evict");
    }

    /// An image whose file "d" is a directory of `len` bytes of empty chunks (a valid,
    /// long directory: made as a regular file, then its mode changed).
    fn long_directory(len: usize) -> (Vec<u8>, u32) {
        let image = ffs::MemDisk::new(32 << 20);
        block_on(ffs::newfs(&image, &ffs::NewfsOptions::default())).unwrap();
        let fs = block_on(ffs::Fs::mount(image.clone(), ffs::MountOptions::default())).unwrap();
        let root = fs.root();
        let d = block_on(fs.create(root, b"d", 0o100755, 0, 0, 0)).unwrap();
        let mut chunks = vec![0u8; len];
        for c in chunks.chunks_mut(ffs::dir::DIRBLKSIZ) {
            c[4..6].copy_from_slice(&(ffs::dir::DIRBLKSIZ as u16).to_le_bytes());
        }
        assert_eq!(block_on(fs.write(d, 0, &chunks)).unwrap(), len);
        block_on(fs.unmount()).unwrap();
        let sb = block_on(ffs::sb::Superblock::find(&image)).unwrap();
        let off = sb.inode_offset(d) as usize;
        image.with_bytes(|b| {
            let mode = 0o040755u16.to_le_bytes();
            b[off..off + 2].copy_from_slice(&mode);
        });
        (image.to_vec(), d)
    }

    /// A lookup through a long directory whose blocks are all cached yields its loop every
    /// few blocks, and ends with EINTR once its process is exiting.
    #[test]
    fn long_directory_walks_yield_and_stop_for_an_exiting_caller() {
        let (bytes, d) = long_directory(4 << 20);
        let size = bytes.len() as u64;
        let host = Arc::new(MemFile::new(bytes));
        let cache = Arc::new(BufCache::new(16 << 20, 4096, 4));
        let disk = BioDisk::new(cache, BDev::new(host, 0, size));
        let opts = ffs::MountOptions {
            read_only: true,
            ..ffs::MountOptions::default()
        };
        let fs = block_on(ffs::Fs::mount(disk, opts)).unwrap();
        // Warm the cache, then count the polls of a lookup that finds nothing.
        assert_eq!(block_on(fs.lookup(d, b"nope")), Err(ffs::Errno::ENOENT));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut look = std::pin::pin!(fs.lookup(d, b"nope"));
        let mut pending = 0;
        let r = loop {
            match look.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => break r,
                std::task::Poll::Pending => pending += 1,
            }
        };
        assert_eq!(r, Err(ffs::Errno::ENOENT));
        let blocks = (4 << 20) / fs.superblock().bsize;
        assert!(
            pending >= blocks / PACE_YIELD_STEPS - 1,
            "{pending} yields for {blocks} blocks"
        );
        // The same walk for a process that is going away stops.
        let f = crate::testutil::Fixture::new();
        let run = || {
            block_on(crate::sync::for_process(
                &f.p,
                std::pin::pin!(fs.lookup(d, b"nope")),
            ))
        };
        assert_eq!(run(), Err(ffs::Errno::ENOENT));
        f.k.begin_exit(&f.p);
        assert_eq!(run(), Err(ffs::Errno::EINTR));
        // Outside the process's syscall nothing stops it.
        assert_eq!(block_on(fs.lookup(d, b"nope")), Err(ffs::Errno::ENOENT));
    }
}
