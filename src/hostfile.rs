//! The completion-ring backend of the kernel's host files: [`kernel::hostio::HostFile`] over
//! `ring::File`, so that etfs block I/O runs on the ring of the loop serving the request.
//!
//! An operation started off the loops (the main thread at start-up, a tool) has no ring to
//! go through; it falls back to the blocking positional calls on the same file.
//!
//! **Only what would block goes through the ring.** Host files are opened buffered, so most
//! transfers are copies to or from the host's page cache:
//! - a read first tries `preadv2(…, RWF_NOWAIT)` on the loop thread: a page-cache hit is one
//!   system call and no ring round trip; only a miss (`EAGAIN`) becomes an io_uring read,
//!   which the host completes asynchronously;
//! - a write to a regular file on a local disk or memory file system, or to a block device,
//!   is a plain `pwrite` on the loop thread: buffered writes only copy into the page
//!   cache (they may wait for the host's dirty-page throttling, which is bounded), while io_uring punts buffered writes that allocate blocks to its io-wq worker
//!   threads, which then serialise on the inode lock. Measured on ext4 (Linux 6.18, 2 vCPUs),
//!   `-r 16m`, 16 connections × 4 in flight of random 4 KiB writes to a 256 MiB device (every
//!   write evicting a dirty block): 14 k ops/s with io_uring writes (also with an
//!   `RWF_NOWAIT` attempt first: allocating writes return `EAGAIN`), 144 k ops/s with inline
//!   `pwrite`; sequential 148 k → 301 k. `RUMP_RING_WRITES=1` restores ring writes (to
//!   compare on other file systems). Any other host file — a character device (a tty may
//!   block for ever), a regular file on a network or FUSE file system, or an unknown one —
//!   is written through the ring, so that a host that does not take the data stalls only
//!   that request, never its loop ([`inline_writes_ok`]);
//! - `fdatasync` always goes through the ring: it waits for the device.
//!
//! Calls made off the loops (start-up, tools, `len`/`set_len` at registration) are the only
//! other blocking host calls; no loop makes them.
//!
//! A file system without `RWF_NOWAIT` support (`EOPNOTSUPP`) is remembered and its reads go
//! straight to the ring.

use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::sync::atomic::{AtomicBool, Ordering};

use kernel::hostio::{io_errno, HostFile, HostIo, IoResult};
use kernel::Result;

/// A host file read and written through the current loop's io_uring.
pub struct RingFile {
    ring: ring::File,
    /// The same open file (a dup of the descriptor) for calls made off the loops and for
    /// metadata.
    std: std::fs::File,
    writable: bool,
    /// Cleared when the host file system refuses `RWF_NOWAIT`.
    nowait: AtomicBool,
    /// Buffered writes as plain `pwrite` on the loop (see the module notes).
    sync_writes: bool,
    /// The host path it was opened by.
    path: Option<std::path::PathBuf>,
    /// Marked by the operator as a module (`-d …,module`): never writable, loadable.
    module: bool,
}

/// What an inline `RWF_NOWAIT` attempt gave.
enum Inline {
    Done(Result<usize>),
    /// The host would block: use the ring.
    WouldBlock,
}

impl RingFile {
    /// Wraps `file`, opened read-write (`writable`) or read-only.
    pub fn new(file: std::fs::File, writable: bool) -> std::io::Result<RingFile> {
        let ring_writes = std::env::var_os("RUMP_RING_WRITES").is_some();
        let inline = !ring_writes && inline_writes_ok(&file);
        RingFile::build(file, writable, true, inline)
    }

    /// Every transfer through the ring, none inline (tests of the ring path).
    pub fn ring_only(file: std::fs::File, writable: bool) -> std::io::Result<RingFile> {
        RingFile::build(file, writable, false, false)
    }

    fn build(
        file: std::fs::File,
        writable: bool,
        nowait: bool,
        sync_writes: bool,
    ) -> std::io::Result<RingFile> {
        let std = file.try_clone()?;
        Ok(RingFile {
            ring: ring::File::from_std(file),
            std,
            writable,
            nowait: AtomicBool::new(nowait),
            sync_writes,
            path: None,
            module: false,
        })
    }

    /// A module file (`-d …,module`) over `file`, opened read-only: clients may load it
    /// with `modctl`, through this open descriptor (`/proc/self/fd/N`), and never write it.
    pub fn module(file: std::fs::File) -> std::io::Result<RingFile> {
        let mut f = RingFile::new(file, false)?;
        f.module = true;
        Ok(f)
    }

    /// Records the host path the file was opened by (`HostFile::host_path`).
    pub fn with_path(mut self, path: impl Into<std::path::PathBuf>) -> RingFile {
        self.path = Some(path.into());
        self
    }

    /// `preadv2`/`pwritev2(…, RWF_NOWAIT)` of `buf` at `off` on the calling thread.
    fn try_inline(&self, buf: &mut [u8], off: u64, write: bool) -> Inline {
        if !self.nowait.load(Ordering::Relaxed) || buf.is_empty() {
            return Inline::WouldBlock;
        }
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let fd = self.std.as_raw_fd();
        loop {
            // SAFETY: `iov` describes `buf`, valid (and writable, for a read) for its whole
            // length during this synchronous call; `fd` is our open file.
            let n = unsafe {
                match write {
                    true => libc::pwritev2(fd, &iov, 1, off as libc::off_t, libc::RWF_NOWAIT),
                    false => libc::preadv2(fd, &iov, 1, off as libc::off_t, libc::RWF_NOWAIT),
                }
            };
            if n >= 0 {
                return Inline::Done(Ok(n as usize));
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Inline::WouldBlock,
                Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => {
                    self.nowait.store(false, Ordering::Relaxed);
                    return Inline::WouldBlock;
                }
                _ => return Inline::Done(Err(io_errno(&e))),
            }
        }
    }

    fn on_loop() -> bool {
        ring::current().is_some()
    }
}

impl HostFile for RingFile {
    fn read_at(&self, mut buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        if !Self::on_loop() {
            let r = retry(|| self.std.read_at(&mut buf, off));
            return HostIo::ready((r, buf));
        }
        if let Inline::Done(r) = self.try_inline(&mut buf, off, false) {
            return HostIo::ready((r, buf));
        }
        HostIo::boxed(async move {
            let want = buf.len();
            // The ring reads into spare capacity: hand it an empty vector of exactly the
            // capacity wanted, then give the caller back a buffer of its original length.
            if buf.capacity() != want {
                buf = Vec::with_capacity(want);
            }
            buf.clear();
            let (r, mut buf) = self.ring.read_at(buf, off).await;
            let r = r.map(|n| n.min(want)).map_err(|e| io_errno(&e));
            buf.resize(want, 0);
            (r, buf)
        })
    }

    fn write_at(&self, mut buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        if !Self::on_loop() {
            let r = retry(|| self.std.write_at(&buf, off));
            return HostIo::ready((r, buf));
        }
        if self.sync_writes {
            let r = retry(|| self.std.write_at(&buf, off));
            return HostIo::ready((r, buf));
        }
        if let Inline::Done(r) = self.try_inline(&mut buf, off, true) {
            return HostIo::ready((r, buf));
        }
        HostIo::boxed(async move {
            let (r, buf) = self.ring.write_at(buf, 0, off).await;
            (r.map_err(|e| io_errno(&e)), buf)
        })
    }

    fn sync_data(&self) -> HostIo<'_, Result<()>> {
        if !Self::on_loop() {
            return HostIo::ready(self.std.sync_data().map_err(|e| io_errno(&e)));
        }
        HostIo::boxed(async move { self.ring.sync(true).await.map_err(|e| io_errno(&e)) })
    }

    fn len(&self) -> Result<u64> {
        host_len(&self.std)
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.std.set_len(len).map_err(|e| io_errno(&e))
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn host_path(&self) -> Option<std::path::PathBuf> {
        self.path.clone()
    }

    fn module_path(&self) -> Option<std::path::PathBuf> {
        // The descriptor stays open as long as this file (the etfs key holds it, and a load
        // holds the key's vnode while the loader opens this path).
        self.module
            .then(|| format!("/proc/self/fd/{}", self.std.as_raw_fd()).into())
    }
}

/// `statfs` `f_type` values of local disk and memory file systems, whose buffered writes are
/// page-cache copies: ext2/3/4, XFS, Btrfs, F2FS, tmpfs, overlayfs (containers), bcachefs.
const LOCAL_FS_MAGIC: [i64; 8] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0xF2F5_2010,
    0x0102_1994,
    0x794C_7630,
    0xCA45_1A4E,
    0x0000_4d44, // vfat
];

/// Whether writes to `file` may be made inline on a loop thread: a block device, or a
/// regular file on a local file system ([`LOCAL_FS_MAGIC`]). Anything else (a character
/// device, a network or FUSE file system) may block indefinitely and goes through the ring.
pub fn inline_writes_ok(file: &std::fs::File) -> bool {
    let Ok(md) = file.metadata() else {
        return false;
    };
    let ft = md.file_type();
    if ft.is_block_device() {
        return true;
    }
    if !ft.is_file() {
        return false;
    }
    // SAFETY: `statfs` is plain data; fstatfs fills it for our open descriptor.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `file` is open and `sfs` is a valid, writable statfs.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut sfs) } != 0 {
        return false;
    }
    LOCAL_FS_MAGIC.contains(&(sfs.f_type as i64))
}

/// Size of a host file; for a block or character device its media size (`lseek` to the end,
/// as rumpuser does on Linux).
pub fn host_len(f: &std::fs::File) -> Result<u64> {
    let md = f.metadata().map_err(|e| io_errno(&e))?;
    let ft = md.file_type();
    if ft.is_block_device() || ft.is_char_device() {
        let mut f = f;
        return f.seek(SeekFrom::End(0)).map_err(|e| io_errno(&e));
    }
    Ok(md.len())
}

fn retry(mut op: impl FnMut() -> std::io::Result<usize>) -> Result<usize> {
    loop {
        match op() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r.map_err(|e| io_errno(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kernel::hostio::{read_full, write_full, StdFile};

    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ringfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    fn open(path: &std::path::Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    /// Inline writes only where they cannot block indefinitely: a regular file on a local
    /// file system, not a character device.
    #[test]
    fn inline_writes_only_on_local_files() {
        let p = temp("inline");
        let f = open(&p);
        assert!(inline_writes_ok(&f), "a file in the temporary directory");
        let tty_like = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        assert!(!inline_writes_ok(&tty_like), "a character device");
        assert!(!RingFile::new(tty_like, true).unwrap().sync_writes);
        let _ = std::fs::remove_file(p);
    }

    /// The same seeded operations on the ring backend (on a loop) and the plain backend
    /// give the same results and the same host file, with inline transfers and without.
    #[test]
    fn ring_backend_matches_the_plain_backend() {
        differential(false);
        differential(true);
    }

    fn differential(ring_only: bool) {
        let (pa, pb) = (
            temp(&format!("a{ring_only}")),
            temp(&format!("b{ring_only}")),
        );
        let ring_file = match ring_only {
            true => RingFile::ring_only(open(&pa), true),
            false => RingFile::new(open(&pa), true),
        };
        let ring_file = Arc::new(ring_file.unwrap());
        let std_file = Arc::new(StdFile::new(open(&pb)));
        let rt = ring::Runtime::start(&ring::Config {
            loops: 1,
            pin: false,
            ..ring::Config::default()
        })
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (a, b) = (ring_file.clone(), std_file.clone());
        rt.handles()[0].spawn(move || async move {
            let mut seed = 0x1234_5678_9abc_def0u64;
            let mut next = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let mut log = Vec::new();
            for i in 0..300 {
                let off = next() % 300_000;
                let len = (next() % 20_000) as usize;
                let files: [&dyn HostFile; 2] = [&*a, &*b];
                let mut outs = Vec::new();
                for f in files {
                    let out = match i % 3 {
                        0 => {
                            let data = vec![(i % 251) as u8; len];
                            let (r, _) = write_full(f, data, off).await;
                            (r, Vec::new())
                        }
                        1 => read_full(f, vec![0xee; len], off).await,
                        _ => {
                            // Only the bytes read count; the rest of the buffer is
                            // unspecified.
                            let (r, mut buf) = f.read_at(vec![0xee; len], off).await;
                            buf.truncate(*r.as_ref().unwrap_or(&0));
                            (r, buf)
                        }
                    };
                    outs.push(out);
                }
                log.push(outs[0] == outs[1]);
                if outs[0] != outs[1] {
                    break;
                }
            }
            let synced = a.sync_data().await.is_ok();
            let _ = tx.send((log, synced));
        });
        let (log, synced) = rx.recv().unwrap();
        rt.shutdown();
        assert!(synced);
        assert_eq!(log.len(), 300, "operation {} differed", log.len() - 1);
        assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        // Off the loops the ring backend falls back to blocking calls.
        let (r, buf) = kernel::bio::park_on(ring_file.read_at(vec![0; 5], 0));
        assert_eq!(r, Ok(5));
        assert_eq!(buf, std::fs::read(&pb).unwrap()[..5]);
        assert_eq!(ring_file.len(), Ok(std::fs::metadata(&pa).unwrap().len()));
        let _ = (std::fs::remove_file(pa), std::fs::remove_file(pb));
    }
}
