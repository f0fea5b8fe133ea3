//! The FUSE file system: each FUSE request becomes NetBSD system calls on a pooled rump
//! connection (see `pool.rs`), by path (`nodes.rs`) or on a descriptor held for an open
//! handle. Replies translate NetBSD errno values through `errno::to_linux`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client::fs::Stat;
use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLock, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::errno::to_linux;
use crate::nb::{n, open_flags, Calls, Fail, Flock, R};
use crate::nodes::{Nodes, FALLBACK_IDS, ROOT};
use crate::pool::{Conn, Cred, Pool};

/// The bridge's settings (from `-o`).
#[derive(Clone, Debug)]
pub struct Options {
    /// Run each request as the caller's uid/gid/groups in the rump kernel.
    pub map_creds: bool,
    /// How long the host kernel may cache attributes and names.
    pub attr_ttl: Duration,
    pub entry_ttl: Duration,
    /// Keep the host page cache across opens (`FOPEN_KEEP_CACHE`): only safe when nothing
    /// else writes the files.
    pub kernel_cache: bool,
    /// Bypass the host page cache (`FOPEN_DIRECT_IO`).
    pub direct_io: bool,
    /// Let the host kernel cache writes and send them in big batches
    /// (`FUSE_WRITEBACK_CACHE`): only safe when nothing else writes the files.
    pub writeback: bool,
    /// Nodes the table may hold.
    pub max_nodes: usize,
    /// Largest read or write request the host kernel sends.
    pub max_io: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            map_creds: false,
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            kernel_cache: false,
            direct_io: false,
            writeback: false,
            max_nodes: 1 << 20,
            max_io: 1 << 20,
        }
    }
}

/// Open handles held at most (each is one rump descriptor).
pub const MAX_HANDLES: usize = 16384;
/// Lock owners with a rump process of their own at most (`ENOLCK` beyond).
pub const MAX_LOCK_OWNERS: usize = 64;
/// Blocking lock requests (`F_SETLKW`) waiting at once, each on a thread (`ENOLCK` beyond).
pub const MAX_LOCK_WAITERS: usize = 64;
/// getdents buffer per readdir batch.
const DIRBUF: usize = 16 * 1024;

/// An open file or directory: a descriptor on one connection.
#[derive(Debug)]
struct Handle {
    conn: Arc<Conn>,
    fd: i32,
    ino: u64,
    /// NetBSD open flags it was opened with.
    nflags: i32,
}

/// What a lock request acts on ([`RumpFs::lock_target`]).
struct LockTarget {
    owner: Arc<Mutex<Owner>>,
    conn: Arc<Conn>,
    fd: i32,
    fl: Flock,
}

/// A POSIX lock owner's rump process: its descriptors per node.
#[derive(Debug)]
struct Owner {
    conn: Arc<Conn>,
    fds: HashMap<u64, i32>,
    host_pid: u32,
    /// The owner process's pid in the rump kernel.
    rump_pid: i32,
}

/// The file system.
#[derive(Debug)]
pub struct RumpFs {
    pool: Arc<Pool>,
    nodes: Mutex<Nodes>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    devs: Mutex<Vec<u64>>,
    owners: Mutex<HashMap<u64, Arc<Mutex<Owner>>>>,
    lock_waiters: Arc<std::sync::atomic::AtomicUsize>,
    opts: Options,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers a request that returns nothing: done, or the NetBSD error in Linux's numbers.
fn reply_empty(reply: ReplyEmpty, r: R<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(err(e)),
    }
}

fn err(f: Fail) -> Errno {
    match f {
        Fail::Errno(nb) => Errno::from_i32(to_linux(nb)),
        Fail::Gone => Errno::from_i32(libc::ENOTCONN),
    }
}

fn ts(sec: i64, nsec: i64) -> SystemTime {
    let nsec = nsec.clamp(0, 999_999_999) as u32;
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec)
    } else {
        UNIX_EPOCH - Duration::new(sec.unsigned_abs(), 0) + Duration::new(0, nsec)
    }
}

fn kind_of(mode: u32) -> FileType {
    match mode & 0o170000 {
        0o040000 => FileType::Directory,
        0o120000 => FileType::Symlink,
        0o010000 => FileType::NamedPipe,
        0o020000 => FileType::CharDevice,
        0o060000 => FileType::BlockDevice,
        0o140000 => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn dt_kind(dt: u8) -> FileType {
    match dt {
        1 => FileType::NamedPipe,
        2 => FileType::CharDevice,
        4 => FileType::Directory,
        6 => FileType::BlockDevice,
        10 => FileType::Symlink,
        12 => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn time_arg(t: Option<TimeOrNow>) -> (i64, i64) {
    match t {
        None => (0, n::UTIME_OMIT),
        Some(TimeOrNow::Now) => (0, n::UTIME_NOW),
        Some(TimeOrNow::SpecificTime(st)) => match st.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
            Err(e) => {
                let d = e.duration();
                let (s, ns) = (d.as_secs() as i64, i64::from(d.subsec_nanos()));
                if ns == 0 {
                    (-s, 0)
                } else {
                    (-s - 1, 1_000_000_000 - ns)
                }
            }
        },
    }
}

/// The file system a stat belongs to, for node ids: `st_dev`, except on the rump kernel's
/// root file system (rumpfs), which reports each node's inode number as its `st_dev`
/// (NetBSD's `va_fsid` there): those all count as one.
fn dev_class(st: &Stat) -> u64 {
    if st.dev == st.ino {
        u64::MAX
    } else {
        st.dev
    }
}

/// The caller's supplementary groups, from `/proc/<pid>/status` (empty when unreadable:
/// the process may be gone, or the request came from the kernel itself).
fn groups_of(pid: u32) -> Vec<u32> {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    s.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .take(16)
                .collect()
        })
        .unwrap_or_default()
}

impl RumpFs {
    /// A file system over `pool` whose root is the rump directory `root` (checked here).
    pub fn new(pool: Arc<Pool>, root: &[u8], opts: Options) -> Result<RumpFs, Fail> {
        let st = pool.run_root(|c| Calls::lstat(c, root))?;
        if st.mode & 0o170000 != 0o040000 {
            return Err(Fail::Errno(20)); // ENOTDIR
        }
        Ok(RumpFs {
            nodes: Mutex::new(Nodes::new((st.dev, st.ino), root, opts.max_nodes)),
            pool,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            devs: Mutex::new(vec![dev_class(&st)]),
            owners: Mutex::new(HashMap::new()),
            lock_waiters: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            opts,
        })
    }

    /// The connection pool (its `gone` flag says whether the server went away).
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    fn cred(&self, req: &Request) -> Option<Cred> {
        if !self.opts.map_creds || req.uid() == 0 {
            return None;
        }
        Some(Cred {
            uid: req.uid(),
            gid: req.gid(),
            groups: groups_of(req.pid()),
        })
    }

    fn run<T>(&self, req: &Request, f: impl FnOnce(&mut client::Client) -> R<T>) -> R<T> {
        let cred = self.cred(req);
        self.pool.run_as(cred.as_ref(), f)
    }

    /// The node id `st` gets: `(device index << 48) | ino`, the root's device first, so
    /// `st_ino` stays the rump inode number on the root's file system and stable elsewhere.
    fn want_id(&self, st: &Stat) -> Option<u64> {
        let dev = dev_class(st);
        let mut d = lock(&self.devs);
        let idx = match d.iter().position(|&x| x == dev) {
            Some(i) => i,
            None if d.len() < 1 << 12 => {
                d.push(dev);
                d.len() - 1
            }
            None => return None,
        };
        let id = ((idx as u64) << 48) | st.ino;
        (st.ino < 1 << 48 && id < FALLBACK_IDS).then_some(id)
    }

    fn attr(&self, id: u64, st: &Stat) -> FileAttr {
        FileAttr {
            ino: INodeNo(id),
            size: st.size.max(0) as u64,
            blocks: st.blocks.max(0) as u64,
            atime: ts(st.atime.0, st.atime.1),
            mtime: ts(st.mtime.0, st.mtime.1),
            ctime: ts(st.ctime.0, st.ctime.1),
            crtime: ts(st.birthtime.0, st.birthtime.1),
            kind: kind_of(st.mode),
            perm: (st.mode & 0o7777) as u16,
            nlink: st.nlink,
            uid: st.uid,
            gid: st.gid,
            rdev: st.rdev as u32,
            blksize: st.blksize.max(512),
            flags: 0,
        }
    }

    fn child(&self, parent: u64, name: &OsStr) -> R<Vec<u8>> {
        lock(&self.nodes)
            .child_path(parent, name)
            .ok_or(Fail::Errno(n::ENAMETOOLONG))
    }

    fn path(&self, id: u64) -> R<Vec<u8>> {
        lock(&self.nodes).path(id).ok_or(Fail::Errno(n::ENOENT))
    }

    /// Records a lookup of `(parent, name)` that found `st`: the entry reply's attributes.
    /// Makes the entry `name` of `parent` with `make` (given the new name's path), looks it
    /// up and answers `reply` with it: mknod, mkdir, symlink and link.
    fn new_entry(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        reply: ReplyEntry,
        make: impl FnOnce(&mut client::Client, &[u8]) -> R<()>,
    ) {
        let r = (|| {
            let p = self.child(parent, name)?;
            let st = self.run(req, |c| {
                make(c, &p)?;
                Calls::lstat(c, &p)
            })?;
            self.enter(parent, name, &st)
        })();
        match r {
            Ok(a) => reply.entry(&self.opts.entry_ttl, &a, Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn enter(&self, parent: u64, name: &OsStr, st: &Stat) -> R<FileAttr> {
        let want = self.want_id(st);
        let id = lock(&self.nodes)
            .looked_up((st.dev, st.ino), st.mode & 0o170000, parent, name, want)
            .ok_or(Fail::Errno(23))?; // ENFILE: the table is full
        Ok(self.attr(id, st))
    }

    fn handle(&self, fh: FileHandle) -> R<Arc<Handle>> {
        lock(&self.handles)
            .get(&fh.0)
            .cloned()
            .ok_or(Fail::Errno(9)) // EBADF
    }

    fn add_handle(&self, h: Handle) -> R<u64> {
        let mut m = lock(&self.handles);
        if m.len() >= MAX_HANDLES {
            return Err(Fail::Errno(23));
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        h.conn.open.fetch_add(1, Ordering::Relaxed);
        m.insert(fh, Arc::new(h));
        Ok(fh)
    }

    fn close_handle(&self, fh: FileHandle) -> R<()> {
        let h = lock(&self.handles).remove(&fh.0).ok_or(Fail::Errno(9))?;
        let r = self.pool.run_on(&h.conn, |c| Calls::close(c, h.fd));
        h.conn.open.fetch_sub(1, Ordering::Relaxed);
        r
    }

    /// The attributes of node `id`: through the handle if given, else by its names (each
    /// checked to still name this node), else through any open handle of it.
    fn getattr_of(&self, req: &Request, id: u64, fh: Option<FileHandle>) -> R<FileAttr> {
        if let Some(h) = fh.and_then(|fh| self.handle(fh).ok()) {
            let st = self.pool.run_on(&h.conn, |c| Calls::fstat(c, h.fd))?;
            return Ok(self.attr(id, &st));
        }
        let (key, paths) = {
            let t = lock(&self.nodes);
            let key = t.get(id).map(|n| n.key).ok_or(Fail::Errno(n::ENOENT))?;
            (key, t.paths(id))
        };
        // The error to give when no name leads to the node any more: a refusal (a caller
        // without search permission) rather than ENOENT when one came.
        let mut why = Fail::Errno(n::ENOENT);
        for p in paths {
            match self.run(req, |c| Calls::lstat(c, &p)) {
                Ok(st) if (st.dev, st.ino) == key => return Ok(self.attr(id, &st)),
                Ok(_) => continue,
                Err(Fail::Errno(e)) => {
                    if e != n::ENOENT {
                        why = Fail::Errno(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let h = lock(&self.handles).values().find(|h| h.ino == id).cloned();
        match h {
            Some(h) => {
                let st = self.pool.run_on(&h.conn, |c| Calls::fstat(c, h.fd))?;
                Ok(self.attr(id, &st))
            }
            None => Err(why),
        }
    }

    /// With the host's writeback cache the host kernel may read pages of a file opened
    /// write-only and does appends itself: open for reading and writing, without `O_APPEND`.
    fn wb_flags(&self, nf: i32) -> i32 {
        if !self.opts.writeback {
            return nf;
        }
        let nf = nf & !0x8;
        if nf & 3 == 1 {
            (nf & !3) | 2
        } else {
            nf
        }
    }

    fn fopen_flags(&self) -> FopenFlags {
        let mut f = FopenFlags::empty();
        if self.opts.kernel_cache {
            f |= FopenFlags::FOPEN_KEEP_CACHE;
        }
        if self.opts.direct_io {
            f |= FopenFlags::FOPEN_DIRECT_IO;
        }
        f
    }

    fn open_common(&self, req: &Request, id: u64, nflags: i32) -> R<u64> {
        let p = self.path(id)?;
        let cred = self.cred(req);
        let conn = self.pool.conn_for_open(cred.as_ref())?;
        let fd = self.pool.run_on(&conn, |c| {
            match Calls::openat(c, &p, nflags, 0) {
                // Writeback caching asked for read access the caller may not have: the
                // host kernel then reads nothing through this handle, so write-only does.
                Err(Fail::Errno(13)) if self.opts.writeback && nflags & 3 == 2 => {
                    Calls::openat(c, &p, (nflags & !3) | 1, 0)
                }
                r => r,
            }
        })?;
        let h = Handle {
            conn: conn.clone(),
            fd,
            ino: id,
            nflags,
        };
        self.add_handle(h).inspect_err(|_| {
            let _ = self.pool.run_on(&conn, |c| Calls::close(c, fd));
        })
    }

    fn owner(&self, lo: LockOwner, pid: u32) -> R<Arc<Mutex<Owner>>> {
        let mut m = lock(&self.owners);
        if let Some(o) = m.get(&lo.0) {
            return Ok(o.clone());
        }
        if m.len() >= MAX_LOCK_OWNERS {
            // Drop an owner that holds no descriptors (so no locks) to make room.
            let idle = m
                .iter()
                .find(|(_, o)| lock(o).fds.is_empty())
                .map(|(k, _)| *k);
            match idle {
                Some(k) => {
                    m.remove(&k);
                }
                None => return Err(Fail::Errno(77)), // ENOLCK
            }
        }
        let conn = self.pool.extra()?;
        let rump_pid = self
            .pool
            .run_on(&conn, |c| Ok(c.getpid().map(|p| p.0).unwrap_or(0)))?;
        let o = Arc::new(Mutex::new(Owner {
            conn,
            fds: HashMap::new(),
            host_pid: pid,
            rump_pid,
        }));
        m.insert(lo.0, o.clone());
        Ok(o)
    }

    /// The owner's descriptor of node `id`, opened like handle `h` (locks need the access
    /// mode: a write lock on a read-only descriptor is `EBADF`).
    fn owner_fd(&self, o: &mut Owner, id: u64, h: &Handle) -> R<i32> {
        if let Some(&fd) = o.fds.get(&id) {
            return Ok(fd);
        }
        let p = self.path(id)?;
        let fl = h.nflags & libc::O_ACCMODE;
        let fd = self.pool.run_on(&o.conn, |c| Calls::openat(c, &p, fl, 0))?;
        o.fds.insert(id, fd);
        Ok(fd)
    }

    /// Closes lock owner `lo`'s descriptor of `id`: the rump kernel drops its locks there
    /// (POSIX: any close by the process releases them), as the host's close did.
    fn owner_release(&self, lo: LockOwner, id: u64) {
        let o = lock(&self.owners).get(&lo.0).cloned();
        if let Some(o) = o {
            let mut o = lock(&o);
            if let Some(fd) = o.fds.remove(&id) {
                let conn = o.conn.clone();
                let _ = self.pool.run_on(&conn, |c| Calls::close(c, fd));
            }
        }
    }

    /// What getlk and setlk act on: the lock owner, its connection, its descriptor for the
    /// file `ino` (opened through handle `fh`), and the range as a NetBSD `struct flock`.
    #[allow(clippy::too_many_arguments)]
    fn lock_target(
        &self,
        fh: FileHandle,
        lock_owner: LockOwner,
        pid: u32,
        ino: u64,
        start: u64,
        end: u64,
        typ: i32,
    ) -> R<LockTarget> {
        let h = self.handle(fh)?;
        let o = self.owner(lock_owner, pid)?;
        let (conn, fd) = {
            let mut g = lock(&o);
            let fd = self.owner_fd(&mut g, ino, &h)?;
            (g.conn.clone(), fd)
        };
        Ok(LockTarget {
            owner: o,
            conn,
            fd,
            fl: Self::flock(start, end, typ)?,
        })
    }

    fn flock(start: u64, end: u64, typ: i32) -> R<Flock> {
        let typ = match typ {
            libc::F_RDLCK => n::F_RDLCK,
            libc::F_WRLCK => n::F_WRLCK,
            libc::F_UNLCK => n::F_UNLCK,
            _ => return Err(Fail::Errno(n::EINVAL)),
        };
        let start = i64::try_from(start).map_err(|_| Fail::Errno(n::EINVAL))?;
        let len = if end >= i64::MAX as u64 {
            0
        } else {
            (end as i64) - start + 1
        };
        Ok(Flock {
            start,
            len,
            pid: 0,
            typ,
            whence: 0,
        })
    }
}

impl Filesystem for RumpFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(self.opts.max_io);
        let _ = config.set_max_readahead(self.opts.max_io);
        let _ = config.set_max_background(64);
        let want = InitFlags::FUSE_POSIX_LOCKS
            | InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_BIG_WRITES;
        let _ = config.add_capabilities(want & config.capabilities());
        if self.opts.writeback {
            let _ =
                config.add_capabilities(InitFlags::FUSE_WRITEBACK_CACHE & config.capabilities());
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            let p = self.child(parent.0, name)?;
            let st = self.run(req, |c| Calls::lstat(c, &p))?;
            self.enter(parent.0, name, &st)
        })();
        match r {
            Ok(a) => {
                reply.entry_with_ttls(&self.opts.attr_ttl, &self.opts.entry_ttl, &a, Generation(0))
            }
            Err(e) => reply.error(err(e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        lock(&self.nodes).forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.getattr_of(req, ino.0, fh) {
            Ok(a) => reply.attr(&self.opts.attr_ttl, &a),
            Err(e) => reply.error(err(e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = (|| {
            let h = fh.and_then(|fh| self.handle(fh).ok());
            let p = match &h {
                Some(_) => Vec::new(),
                None => self.path(ino.0)?,
            };
            let fd = h.as_ref().map(|h| h.fd);
            let go = |f: &mut dyn FnMut(&mut client::Client) -> R<()>| match &h {
                Some(h) => self.pool.run_on(&h.conn, f),
                None => self.run(req, f),
            };
            if uid.is_some() || gid.is_some() {
                let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
                go(&mut |c| Calls::chown(c, &p, fd, u, g))?;
            }
            if let Some(m) = mode {
                go(&mut |c| Calls::chmod(c, &p, fd, m & 0o7777))?;
            }
            if let Some(sz) = size {
                let sz = i64::try_from(sz).map_err(|_| Fail::Errno(27))?; // EFBIG
                go(&mut |c| Calls::truncate(c, &p, fd, sz))?;
            }
            if atime.is_some() || mtime.is_some() {
                let t = [time_arg(atime), time_arg(mtime)];
                go(&mut |c| Calls::utimens(c, &p, fd, t))?;
            }
            self.getattr_of(req, ino.0, fh)
        })();
        match r {
            Ok(a) => reply.attr(&self.opts.attr_ttl, &a),
            Err(e) => reply.error(err(e)),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .path(ino.0)
            .and_then(|p| self.run(req, |c| Calls::readlink(c, &p)))
        {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(err(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.new_entry(req, parent.0, name, reply, |c, p| {
            if mode & 0o170000 == 0o100000 {
                // A regular file: NetBSD's mknod makes only devices and FIFOs
                // (as root); create it as open(O_CREAT|O_EXCL) does.
                let fd = Calls::openat(c, p, n::O_CREAT | n::O_EXCL | 1, mode & 0o7777)?;
                Calls::close(c, fd)
            } else {
                Calls::mknod(c, p, mode, u64::from(rdev))
            }
        })
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.new_entry(req, parent.0, name, reply, |c, p| {
            Calls::mkdir(c, p, mode & 0o7777)
        })
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, false, reply)
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, true, reply)
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.new_entry(req, parent.0, link_name, reply, |c, p| {
            Calls::symlink(c, target.as_os_str().as_bytes(), p)
        })
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let from = self.child(parent.0, name)?;
            let to = self.child(newparent.0, newname)?;
            if flags.contains(RenameFlags::RENAME_EXCHANGE)
                || flags.contains(RenameFlags::RENAME_WHITEOUT)
            {
                // NetBSD's rename has no exchange and no whiteout: refused as a Linux file
                // system without them refuses.
                return Err(Fail::Errno(n::EINVAL));
            }
            let (src, dst) = self.run(req, |c| {
                let src = Calls::lstat(c, &from)?;
                let dst = match Calls::lstat(c, &to) {
                    Ok(s) => Some(s),
                    Err(Fail::Errno(n::ENOENT)) => None,
                    Err(e) => return Err(e),
                };
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    if dst.is_some() {
                        return Err(Fail::Errno(n::EEXIST));
                    }
                    if src.mode & 0o170000 == 0o040000 {
                        // No atomic way to keep a directory from replacing a name that
                        // appears meanwhile: refused (callers fall back to rename(2)).
                        return Err(Fail::Errno(n::EINVAL));
                    }
                    // link(2) fails if the new name exists, atomically; then drop the old.
                    Calls::link(c, &from, &to)?;
                    Calls::unlink(c, &from, false)?;
                } else {
                    Calls::rename(c, &from, &to)?;
                }
                Ok((src, dst))
            })?;
            let mut t = lock(&self.nodes);
            if let Some(d) = dst.filter(|d| (d.dev, d.ino) != (src.dev, src.ino)) {
                t.drop_name((d.dev, d.ino), newparent.0, newname);
                if d.mode & 0o170000 == 0o040000 || d.nlink <= 1 {
                    t.detach((d.dev, d.ino));
                }
            }
            t.drop_name((src.dev, src.ino), parent.0, name);
            t.add_name((src.dev, src.ino), newparent.0, newname);
            Ok(())
        })();
        reply_empty(reply, r)
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let from = match self.path(ino.0) {
            Ok(p) => p,
            Err(e) => return reply.error(err(e)),
        };
        self.new_entry(req, newparent.0, newname, reply, |c, to| {
            Calls::link(c, &from, to)
        })
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let nf = self.wb_flags(open_flags(flags.0) & !(n::O_CREAT | n::O_EXCL));
        match self.open_common(req, ino.0, nf) {
            Ok(fh) => reply.opened(FileHandle(fh), self.fopen_flags()),
            Err(e) => reply.error(err(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = (|| {
            let h = self.handle(fh)?;
            let size = size.min(self.opts.max_io) as usize;
            let mut buf = vec![0u8; size];
            let off = i64::try_from(offset).map_err(|_| Fail::Errno(n::EINVAL))?;
            let got = self
                .pool
                .run_on(&h.conn, |c| Calls::pread(c, h.fd, &mut buf, off))?;
            buf.truncate(got.min(size));
            Ok(buf)
        })();
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(err(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = (|| {
            let h = self.handle(fh)?;
            let off = i64::try_from(offset).map_err(|_| Fail::Errno(27))?;
            self.pool
                .run_on(&h.conn, |c| Calls::pwrite(c, h.fd, data, off))
        })();
        match r {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(err(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // A close(2) on the host: that owner's POSIX locks on the file go.
        self.owner_release(lock_owner, ino.0);
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let Some(lo) = lock_owner {
            self.owner_release(lo, ino.0);
        }
        reply_empty(reply, self.close_handle(fh))
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.handle(fh).and_then(|h| {
            self.pool
                .run_on(&h.conn, |c| Calls::fsync(c, h.fd, datasync))
        });
        reply_empty(reply, r)
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.open_common(req, ino.0, n::O_DIRECTORY) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(err(e)),
        }
    }

    /// Offsets are NetBSD getdents cookies: `(cookie << 16) | k` names the `k`-th record of
    /// the batch read from `cookie` (k = 0: the batch's start), so a later call resumes
    /// exactly after the last record the host kernel took.
    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = (|| {
            let h = self.handle(fh)?;
            let (mut pos, mut skip) = ((offset >> 16) as i64, (offset & 0xffff) as usize);
            loop {
                let (recs, after) = self
                    .pool
                    .run_on(&h.conn, |c| Calls::getdents_at(c, h.fd, pos, DIRBUF))?;
                if recs.is_empty() || !(0..1 << 47).contains(&after) {
                    return Ok(());
                }
                let last = recs.len();
                for (i, d) in recs.iter().enumerate().skip(skip) {
                    // FFS returns a removed entry that starts its chunk as a record with
                    // inode 0 (NetBSD's ufs_readdir); libc's readdir skips those, so here too.
                    if d.fileno == 0 {
                        continue;
                    }
                    let off = if i + 1 == last {
                        (after as u64) << 16
                    } else {
                        ((pos as u64) << 16) | (i as u64 + 1)
                    };
                    let name = OsStr::from_bytes(&d.name);
                    if reply.add(INodeNo(d.fileno.max(1)), off, dt_kind(d.typ), name) {
                        return Ok(());
                    }
                }
                pos = after;
                skip = 0;
            }
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.close_handle(fh))
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.handle(fh).and_then(|h| {
            self.pool
                .run_on(&h.conn, |c| Calls::fsync(c, h.fd, datasync))
        });
        reply_empty(reply, r)
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let r = self
            .path(ino.0)
            .or_else(|_| self.path(ROOT))
            .and_then(|p| self.run(req, |c| Calls::statvfs(c, &p)));
        match r {
            Ok(s) => reply.statfs(
                s.blocks,
                s.bfree,
                s.bavail,
                s.files,
                s.ffree,
                s.bsize.min(u64::from(u32::MAX)) as u32,
                s.namemax.min(255) as u32,
                s.frsize.min(u64::from(u32::MAX)) as u32,
            ),
            Err(e) => reply.error(err(e)),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        // R_OK 4, W_OK 2, X_OK 1, F_OK 0: the same bits on NetBSD.
        let r = self
            .path(ino.0)
            .and_then(|p| self.run(req, |c| Calls::access(c, &p, mask.bits() & 7)));
        reply_empty(reply, r)
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = (|| {
            let p = self.child(parent.0, name)?;
            let nf = self.wb_flags(open_flags(flags) | n::O_CREAT);
            let cred = self.cred(req);
            let conn = self.pool.conn_for_open(cred.as_ref())?;
            let (fd, st) = self.pool.run_on(&conn, |c| {
                let fd = Calls::openat(c, &p, nf, mode & 0o7777)?;
                match Calls::fstat(c, fd) {
                    Ok(st) => Ok((fd, st)),
                    Err(e) => {
                        let _ = Calls::close(c, fd);
                        Err(e)
                    }
                }
            })?;
            let a = match self.enter(parent.0, name, &st) {
                Ok(a) => a,
                Err(e) => {
                    let _ = self.pool.run_on(&conn, |c| Calls::close(c, fd));
                    return Err(e);
                }
            };
            let fh = self.add_handle(Handle {
                conn: conn.clone(),
                fd,
                ino: a.ino.0,
                nflags: nf,
            });
            match fh {
                Ok(fh) => Ok((a, fh)),
                Err(e) => {
                    let _ = self.pool.run_on(&conn, |c| Calls::close(c, fd));
                    lock(&self.nodes).forget(a.ino.0, 1);
                    Err(e)
                }
            }
        })();
        match r {
            Ok((a, fh)) => reply.created(
                &self.opts.entry_ttl,
                &a,
                Generation(0),
                FileHandle(fh),
                self.fopen_flags(),
            ),
            Err(e) => reply.error(err(e)),
        }
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let r = (|| {
            let LockTarget {
                owner: o_arc,
                conn,
                fd,
                fl,
            } = self.lock_target(fh, lock_owner, pid, ino.0, start, end, typ)?;
            let got = self
                .pool
                .run_on(&conn, |c| Calls::lock(c, fd, n::F_GETLK, fl))?;
            // The holder's pid is a rump pid: the host process of the owner whose rump
            // process that is, when it is one of ours (0 otherwise).
            let host_pid = if got.typ == n::F_UNLCK {
                0
            } else {
                lock(&self.owners)
                    .values()
                    .filter(|ow| !Arc::ptr_eq(ow, &o_arc))
                    .find_map(|ow| {
                        let ow = ow.try_lock().ok()?;
                        (ow.rump_pid == got.pid).then_some(ow.host_pid)
                    })
                    .unwrap_or(0)
            };
            Ok((got, host_pid))
        })();
        match r {
            Ok((f, host_pid)) => {
                let typ = match f.typ {
                    n::F_RDLCK => libc::F_RDLCK,
                    n::F_WRLCK => libc::F_WRLCK,
                    _ => libc::F_UNLCK,
                };
                let start = f.start.max(0) as u64;
                let end = if f.len == 0 {
                    i64::MAX as u64
                } else {
                    start + f.len as u64 - 1
                };
                reply.locked(start, end, typ, host_pid)
            }
            Err(e) => reply.error(err(e)),
        }
    }

    fn setlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let prep = self.lock_target(fh, lock_owner, pid, ino.0, start, end, typ);
        let LockTarget { conn, fd, fl, .. } = match prep {
            Ok(x) => x,
            Err(e) => return reply.error(err(e)),
        };
        if !sleep {
            match self
                .pool
                .run_on(&conn, |c| Calls::lock(c, fd, n::F_SETLK, fl))
            {
                Ok(_) => reply.ok(),
                Err(e) => reply.error(err(e)),
            }
            return;
        }
        // F_SETLKW may wait for long: on a thread of its own, so the FUSE workers stay free
        // to serve the request that will release the lock. One per lock owner at most (the
        // owner's connection serialises them), and owners are bounded.
        if self.lock_waiters.fetch_add(1, Ordering::AcqRel) >= MAX_LOCK_WAITERS {
            self.lock_waiters.fetch_sub(1, Ordering::AcqRel);
            return reply.error(Errno::from_i32(libc::ENOLCK));
        }
        let pool = self.pool.clone();
        let waiters = self.lock_waiters.clone();
        let spawned = std::thread::Builder::new()
            .name("rump-fuse-lockw".into())
            .spawn(move || {
                match pool.run_on(&conn, |c| Calls::lock(c, fd, n::F_SETLKW, fl)) {
                    Ok(_) => reply.ok(),
                    Err(e) => reply.error(err(e)),
                }
                waiters.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            // The reply went with the closure that never ran; fuser answers a dropped
            // reply with EIO.
            self.lock_waiters.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl RumpFs {
    fn remove(&self, req: &Request, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let r = (|| {
            let p = self.child(parent.0, name)?;
            let st = self.run(req, |c| {
                let st = Calls::lstat(c, &p).ok();
                Calls::unlink(c, &p, dir)?;
                Ok(st)
            })?;
            if let Some(st) = st {
                let mut t = lock(&self.nodes);
                t.drop_name((st.dev, st.ino), parent.0, name);
                if dir || st.nlink <= 1 {
                    t.detach((st.dev, st.ino));
                }
            }
            Ok(())
        })();
        reply_empty(reply, r)
    }
}
