//! The plain backend: `pread`/`pwrite`/`fdatasync` on a std file, completing synchronously.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{io_errno, HostFile, HostFileOpener, HostIo, IoResult};
use crate::Result;

/// A host file done with blocking positional calls (`std::os::unix::fs::FileExt`). It blocks
/// the calling loop for the duration of each call: right for tests, tools and as the
/// fallback where the completion ring is unavailable.
#[derive(Debug)]
pub struct StdFile {
    file: std::fs::File,
    writable: bool,
    path: Option<std::path::PathBuf>,
}

impl StdFile {
    /// Wraps an open file.
    pub fn new(file: std::fs::File) -> StdFile {
        StdFile {
            file,
            writable: true,
            path: None,
        }
    }

    /// Wraps a file opened read-only.
    pub fn read_only(file: std::fs::File) -> StdFile {
        StdFile {
            file,
            writable: false,
            path: None,
        }
    }

    /// Opens `path` (read-write, or read-only without `write`; created 0644 with `create`).
    pub fn open(path: &Path, write: bool, create: bool) -> Result<StdFile> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .create(create && write)
            .mode(0o644)
            .open(path)
            .map(|file| StdFile {
                file,
                writable: write,
                path: Some(path.to_path_buf()),
            })
            .map_err(|e| io_errno(&e))
    }

    /// The file.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }
}

impl HostFile for StdFile {
    fn read_at(&self, mut buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        let r = loop {
            match self.file.read_at(&mut buf, off) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| io_errno(&e)),
            }
        };
        HostIo::ready((r, buf))
    }

    fn write_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        let r = loop {
            match self.file.write_at(&buf, off) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| io_errno(&e)),
            }
        };
        HostIo::ready((r, buf))
    }

    fn sync_data(&self) -> HostIo<'_, Result<()>> {
        HostIo::ready(self.file.sync_data().map_err(|e| io_errno(&e)))
    }

    fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| io_errno(&e))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| io_errno(&e))
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn host_path(&self) -> Option<std::path::PathBuf> {
        self.path.clone()
    }
}

/// Opens host files as [`StdFile`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdOpener;

impl HostFileOpener for StdOpener {
    fn open(&self, path: &Path, write: bool, create: bool) -> Result<Arc<dyn HostFile>> {
        Ok(Arc::new(StdFile::open(path, write, create)?))
    }
}
