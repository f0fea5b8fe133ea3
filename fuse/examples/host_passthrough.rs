//! A minimal passthrough FUSE file system over a host directory (flat: files in one
//! directory), with the same fuser settings as rump_fuse: the benchmark's measure of what
//! FUSE itself costs (docs/benchmarks.md). `host_passthrough HOSTDIR MOUNTPOINT [threads]`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, SessionACL, WriteFlags,
};

const TTL: Duration = Duration::from_secs(1);

struct Pass {
    dir: PathBuf,
    names: Mutex<HashMap<u64, PathBuf>>,
    files: Mutex<HashMap<u64, Arc<File>>>,
    next: AtomicU64,
}

fn attr(ino: u64, m: &std::fs::Metadata) -> FileAttr {
    let t = |s: i64, ns: i64| UNIX_EPOCH + Duration::new(s.max(0) as u64, ns as u32);
    FileAttr {
        ino: INodeNo(ino),
        size: m.len(),
        blocks: m.blocks(),
        atime: t(m.atime(), m.atime_nsec()),
        mtime: t(m.mtime(), m.mtime_nsec()),
        ctime: t(m.ctime(), m.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: if m.is_dir() {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn eio(e: std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Pass {
    fn path(&self, ino: u64) -> Option<PathBuf> {
        if ino == 1 {
            return Some(self.dir.clone());
        }
        self.names.lock().unwrap().get(&ino).cloned()
    }

    fn enter(&self, name: &OsStr) -> Result<FileAttr, Errno> {
        let p = self.dir.join(name);
        let m = std::fs::symlink_metadata(&p).map_err(eio)?;
        let ino = m.ino() + 1;
        self.names.lock().unwrap().insert(ino, p);
        Ok(attr(ino, &m))
    }

    fn file(&self, fh: FileHandle) -> Option<Arc<File>> {
        self.files.lock().unwrap().get(&fh.0).cloned()
    }

    fn add(&self, f: File) -> FileHandle {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.files.lock().unwrap().insert(fh, Arc::new(f));
        FileHandle(fh)
    }
}

impl Filesystem for Pass {
    fn init(&mut self, _r: &Request, c: &mut KernelConfig) -> std::io::Result<()> {
        let _ = c.set_max_write(1 << 20);
        let _ = c.set_max_readahead(1 << 20);
        let _ = c.add_capabilities(InitFlags::FUSE_BIG_WRITES & c.capabilities());
        Ok(())
    }

    fn lookup(&self, _r: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 != 1 {
            return reply.error(Errno::ENOENT);
        }
        match self.enter(name) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _r: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(p) = self.path(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        match std::fs::symlink_metadata(p) {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(eio(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _r: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _a: Option<fuser::TimeOrNow>,
        _m: Option<fuser::TimeOrNow>,
        _c: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _cr: Option<std::time::SystemTime>,
        _ch: Option<std::time::SystemTime>,
        _b: Option<std::time::SystemTime>,
        _f: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let Some(p) = self.path(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(sz) = size {
            if let Err(e) = OpenOptions::new()
                .write(true)
                .open(&p)
                .and_then(|f| f.set_len(sz))
            {
                return reply.error(eio(e));
            }
        }
        match std::fs::symlink_metadata(p) {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(eio(e)),
        }
    }

    fn open(&self, _r: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(p) = self.path(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let w = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
        match OpenOptions::new().read(true).write(w).open(p) {
            Ok(f) => reply.opened(self.add(f), FopenFlags::empty()),
            Err(e) => reply.error(eio(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        _r: &Request,
        _parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let p = self.dir.join(name);
        let f = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
        {
            Ok(f) => f,
            Err(e) => return reply.error(eio(e)),
        };
        match self.enter(name) {
            Ok(a) => reply.created(&TTL, &a, Generation(0), self.add(f), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        _r: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _f: OpenFlags,
        _l: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(f) = self.file(fh) else {
            return reply.error(Errno::EBADF);
        };
        let mut b = vec![0u8; size as usize];
        match f.read_at(&mut b, offset) {
            Ok(n) => reply.data(&b[..n]),
            Err(e) => reply.error(eio(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        _r: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _wf: WriteFlags,
        _f: OpenFlags,
        _l: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(f) = self.file(fh) else {
            return reply.error(Errno::EBADF);
        };
        match f.write_at(data, offset) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(eio(e)),
        }
    }

    fn flush(&self, _r: &Request, _i: INodeNo, _fh: FileHandle, _l: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsync(&self, _r: &Request, _i: INodeNo, fh: FileHandle, _d: bool, reply: ReplyEmpty) {
        match self.file(fh).map(|f| f.sync_all()) {
            Some(Ok(())) => reply.ok(),
            _ => reply.error(Errno::EIO),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn release(
        &self,
        _r: &Request,
        _i: INodeNo,
        fh: FileHandle,
        _f: OpenFlags,
        _l: Option<LockOwner>,
        _fl: bool,
        reply: ReplyEmpty,
    ) {
        self.files.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn unlink(&self, _r: &Request, _p: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(eio(e)),
        }
    }

    fn readdir(
        &self,
        _r: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino.0 != 1 {
            return reply.error(Errno::ENOTDIR);
        }
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return reply.error(Errno::EIO);
        };
        for (i, e) in rd.flatten().enumerate().skip(offset as usize) {
            let ino = e.metadata().map(|m| m.ino() + 1).unwrap_or(2);
            if reply.add(
                INodeNo(ino),
                i as u64 + 1,
                FileType::RegularFile,
                e.file_name(),
            ) {
                break;
            }
        }
        reply.ok();
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 3 {
        eprintln!("usage: host_passthrough HOSTDIR MOUNTPOINT [threads]");
        std::process::exit(1);
    }
    let fs = Pass {
        dir: PathBuf::from(&a[1]),
        names: Mutex::new(HashMap::new()),
        files: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
    };
    let mut cfg = Config::default();
    cfg.mount_options = vec![MountOption::FSName("passthrough".into())];
    cfg.acl = SessionACL::All;
    cfg.n_threads = Some(a.get(3).and_then(|s| s.parse().ok()).unwrap_or(4));
    cfg.clone_fd = true;
    if let Err(e) = fuser::mount(fs, &a[2], &cfg) {
        eprintln!("host_passthrough: {e}");
        std::process::exit(1);
    }
}
