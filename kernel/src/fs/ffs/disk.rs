//! [`BioDisk`]: the FFS engine's `Disk` over the buffer cache of a block device.
//!
//! The engine asks for byte ranges (an inode, a directory chunk, a block); each is split
//! into the cache's blocks, so every FFS read and write goes through the one cache that
//! `sync`, `fsync`, unmount and halt write back, and that `-r` bounds.

use std::sync::Arc;

use crate::bio::{BDev, BufCache};

/// A block device seen by the FFS engine.
pub struct BioDisk {
    cache: Arc<BufCache>,
    dev: Arc<BDev>,
}

impl BioDisk {
    /// The device `dev`, cached in `cache`.
    pub fn new(cache: Arc<BufCache>, dev: Arc<BDev>) -> BioDisk {
        BioDisk { cache, dev }
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
}

#[cfg(test)]
mod tests {
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
            let mut fs = block_on(ffs::Fs::mount(
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
}
