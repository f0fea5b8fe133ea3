//! What the slots do: random file, device, lock and pipe operations, each checked against the
//! model the moment it returns; plus the set-up and the final read-back and cleanup.

use std::rc::Rc;
use std::sync::Arc;

use kernel::abi::sysnum::*;
use kernel::abi::{O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};
use kernel::file::kqueue::{EVFILT_READ, EVFILT_TIMER, EV_ADD, EV_EOF, EV_ERROR};
use kernel::file::ops::{POLLHUP, POLLIN, POLLNVAL, POLLOUT};
use kernel::Errno;

use crate::world::SimMem;
use crate::{Byte, Client, FileModel, Region, World};

/// What a held descriptor refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obj {
    Region(Region),
    /// A private file, by inode index.
    Priv(usize),
}

/// One sequential thread of a client.
pub struct Slot {
    pub w: Rc<World>,
    pub c: Rc<Client>,
    pub id: usize,
    pub local: usize,
    pub base: u64,
}

const PATH0: u64 = 0;
const PATH1: u64 = 0x400;
const OUT: u64 = 0x800;
const DATA: u64 = 0x1000;
/// Largest private file.
const FILE_MAX: usize = 24 << 10;
/// Largest single transfer on a shared object.
const IO_MAX: usize = 48 << 10;
const NAMES: [&str; 3] = ["a", "b", "c"];
const F_SETLK: u64 = 8;
const F_SETLKW: u64 = 9;
const LOCK_EX: u64 = 2;
const LOCK_UN: u64 = 8;
/// Readiness calls' arguments (in the `OUT` page): pollfds, kevent changes and events,
/// a timeout, fd_sets.
const POLLFDS: u64 = OUT;
const CHANGES: u64 = OUT + 0x100;
const EVENTS: u64 = OUT + 0x200;
const TIMEOUT: u64 = OUT + 0x300;
const RSET: u64 = OUT + 0x380;
const WSET: u64 = OUT + 0x3c0;
/// A descriptor no slot holds (its poll answer is `POLLNVAL`).
const NOFD: i32 = 999;
/// A kevent's `data` (bytes to read; timer expirations).
const KEV_DATA: usize = 24;

fn pollfd(fd: i32, events: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&fd.to_le_bytes());
    b[4..6].copy_from_slice(&(events as u16).to_le_bytes());
    b
}

fn kevent(ident: u64, filter: u32, flags: u32, data: i64) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&ident.to_le_bytes());
    b[8..12].copy_from_slice(&filter.to_le_bytes());
    b[12..16].copy_from_slice(&flags.to_le_bytes());
    b[KEV_DATA..KEV_DATA + 8].copy_from_slice(&data.to_le_bytes());
    b
}

fn timespec(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
    b[8..].copy_from_slice(&((ns % 1_000_000_000) as i64).to_le_bytes());
    b
}

fn flock_bytes(ty: i16) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[8..16].copy_from_slice(&1i64.to_le_bytes()); // l_start 0, l_len 1
    b[20..22].copy_from_slice(&ty.to_le_bytes());
    b
}

fn int(v: i32) -> u64 {
    u64::from(v as u32)
}

/// Runs a syscall for `p` with memory `mem` (the set-up and final checks' client).
async fn call(w: &World, p: &Arc<kernel::Proc>, mem: &SimMem, nr: u32, a: &[u64]) -> R {
    let mut slots = [0u64; 8];
    slots[..a.len()].copy_from_slice(a);
    let r = w.k.syscall(p, mem, nr, &slots).await.result;
    w.record(usize::MAX, nr, &r);
    r
}

type R = Result<[i64; 2], Errno>;

impl Slot {
    fn rnd(&self, n: u64) -> u64 {
        self.w.rng.borrow_mut().below(n)
    }

    fn chance(&self, num: u64, den: u64) -> bool {
        self.w.rng.borrow_mut().chance(num, den)
    }

    fn bytes(&self, n: usize) -> Vec<u8> {
        let mut r = self.w.rng.borrow_mut();
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&r.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    fn dead(&self) -> bool {
        self.c.dead.get()
    }

    fn ctx(&self) -> String {
        format!(
            "seed {} client {} (pid {}) slot {}{}",
            self.w.cfg.seed,
            self.c.id,
            self.c.p.pid(),
            self.id,
            if self.dead() { " (disconnected)" } else { "" }
        )
    }

    async fn sys(&self, nr: u32, a: &[u64]) -> R {
        let mut slots = [0u64; 8];
        slots[..a.len()].copy_from_slice(a);
        if self.w.verbose {
            eprintln!(
                "slot {}: syscall {nr} {a:x?} (client {})",
                self.id, self.c.id
            );
        }
        let r = self
            .w
            .k
            .syscall(&self.c.p, &*self.c.mem, nr, &slots)
            .await
            .result;
        self.w.record(self.id, nr, &r);
        r
    }

    /// An error is fine if listed, or if the client is gone and it is what a gone client
    /// gets (`EFAULT` from a copy, `EINTR` from a sleep).
    fn allow(&self, what: &str, e: Errno, ok: &[Errno]) {
        let gone = self.dead() && (e == Errno::EFAULT || e == Errno::EINTR);
        assert!(
            gone || ok.contains(&e),
            "{}: {what}: unexpected {e:?}",
            self.ctx()
        );
    }

    fn path(&self, at: u64, p: &str) -> u64 {
        let mut b = p.as_bytes().to_vec();
        b.push(0);
        self.c.mem.put(self.base + at, &b);
        self.base + at
    }

    fn priv_path(&self, name: &str) -> String {
        format!("/sim/s{}/{name}", self.id)
    }

    fn state(&self) -> std::cell::RefMut<'_, crate::SlotState> {
        self.w.slots[self.id].borrow_mut()
    }

    /// Runs operations until the slot's budget is spent or its client is cut off.
    pub async fn run(self) {
        while !self.dead() {
            {
                let mut st = self.state();
                if st.ops_left == 0 {
                    break;
                }
                st.ops_left -= 1;
            }
            self.one().await;
        }
    }

    async fn one(&self) {
        // The block device (the buffer cache) gets half of the shared-object traffic.
        let r = Region::ALL[[0, 1, 1, 1, 2, 3][self.rnd(6) as usize]];
        match self.rnd(100) {
            0..=17 => self.region_write(r).await,
            18..=31 => self.region_read(r).await,
            32..=37 => self.region_fsync(r).await,
            38..=47 => self.priv_create().await,
            48..=57 => self.priv_write().await,
            58..=65 => self.priv_read().await,
            66..=69 => self.priv_truncate().await,
            70..=73 => self.priv_unlink().await,
            74..=77 => self.priv_rename_or_link().await,
            78..=80 => self.priv_symlink_dir().await,
            81..=86 => self.lock_op().await,
            87..=90 if self.chance(1, 2) => self.pipe_op().await,
            87..=90 => self.ready_op().await,
            91..=95 => self.close_held().await,
            96..=97 => self.dup_close().await,
            _ => {
                let r = self.sys(SYS_sync, &[]).await;
                assert_eq!(r, Ok([0, 0]), "{}: sync", self.ctx());
            }
        }
    }

    /// A descriptor for `obj`: a held one, or a new one (`keep`: held afterwards).
    async fn fd_for(&self, obj: Obj, path: &str, flags: u32) -> Option<(i32, bool)> {
        let held: Vec<i32> = {
            let st = self.state();
            st.held.iter().filter(|h| h.1 == obj).map(|h| h.0).collect()
        };
        if !held.is_empty() && self.chance(3, 4) {
            return Some((held[self.rnd(held.len() as u64) as usize], true));
        }
        let pa = self.path(PATH0, path);
        match self.sys(SYS_open, &[pa, u64::from(flags), 0]).await {
            Ok([fd, _]) => {
                let fd = fd as i32;
                let keep = self.chance(1, 3) && self.state().held.len() < 8;
                if keep {
                    self.state().held.push((fd, obj));
                }
                Some((fd, keep))
            }
            Err(e) => {
                self.allow("open", e, &[Errno::ENOENT]);
                None
            }
        }
    }

    async fn done_with(&self, fd: i32, keep: bool) {
        if !keep {
            let r = self.sys(SYS_close, &[int(fd)]).await;
            assert_eq!(r, Ok([0, 0]), "{}: close {fd}", self.ctx());
        }
    }

    fn pick_range(&self, r: Region) -> (usize, usize) {
        let (start, size) = self.w.region(r, self.id);
        if r == Region::Chr {
            let secs = size / 512;
            let s = self.rnd(secs as u64) as usize;
            let n = 1 + self.rnd((secs - s).min(16) as u64) as usize;
            return (start + s * 512, n * 512);
        }
        if self.chance(1, 4) {
            // Whole cache blocks (written without a fill) inside the slot's range.
            let first = start.div_ceil(4096);
            let last = (start + size) / 4096;
            if last > first {
                let b = first + self.rnd((last - first) as u64) as usize;
                let n = 1 + self.rnd((last - b).min(8) as u64) as usize;
                return (b * 4096, n * 4096);
            }
        }
        let off = self.rnd(size as u64) as usize;
        let max = (size - off).min(IO_MAX);
        let len = 1 + self.rnd(max as u64) as usize;
        (start + off, len)
    }

    async fn region_write(&self, r: Region) {
        let Some((fd, keep)) = self.fd_for(Obj::Region(r), r.path(), O_RDWR).await else {
            return;
        };
        let (off, len) = self.pick_range(r);
        let data = self.bytes(len);
        self.c.mem.put(self.base + DATA, &data);
        let a = [int(fd), self.base + DATA, len as u64, 0, off as u64];
        self.state().pending = vec![(r, off, len)];
        let res = self.sys(SYS_pwrite, &a).await;
        self.state().pending.clear();
        {
            let mut m = self.w.models[r.idx()].borrow_mut();
            match res {
                Ok([n, _]) => {
                    let n = n as usize;
                    assert!(n <= len, "{}: pwrite {r:?} wrote {n} of {len}", self.ctx());
                    for (i, b) in data[..n].iter().enumerate() {
                        m[off + i] = Some(*b);
                    }
                    m[off + n..off + len].fill(None);
                }
                Err(e) => {
                    self.allow("pwrite", e, &[Errno::EIO, Errno::ENOSPC]);
                    m[off..off + len].fill(None);
                }
            }
        }
        self.done_with(fd, keep).await;
    }

    async fn region_read(&self, r: Region) {
        let Some((fd, keep)) = self.fd_for(Obj::Region(r), r.path(), O_RDWR).await else {
            return;
        };
        let (off, len) = self.pick_range(r);
        self.c.mem.put(self.base + DATA, &vec![0xee; len]);
        let a = [int(fd), self.base + DATA, len as u64, 0, off as u64];
        match self.sys(SYS_pread, &a).await {
            Ok([n, _]) => {
                assert_eq!(n as usize, len, "{}: pread {r:?} short", self.ctx());
                let got = self.c.mem.get(self.base + DATA, len);
                let m = self.w.models[r.idx()].borrow();
                check_bytes(&self.ctx(), r.path(), off, &got, &m[off..off + len]);
            }
            Err(e) => self.allow("pread", e, &[Errno::EIO]),
        }
        self.done_with(fd, keep).await;
    }

    async fn region_fsync(&self, r: Region) {
        let Some((fd, keep)) = self.fd_for(Obj::Region(r), r.path(), O_RDWR).await else {
            return;
        };
        match self.sys(SYS_fsync, &[int(fd)]).await {
            Ok(_) => {
                // Acknowledged by fsync: this slot's bytes are on the host file now.
                if let Some((_, host)) = &self.w.hosts[r.idx()] {
                    let (start, size) = self.w.region(r, self.id);
                    let h = host.contents();
                    let m = self.w.models[r.idx()].borrow();
                    let what = format!("host file of {} after fsync", r.path());
                    check_bytes(
                        &self.ctx(),
                        &what,
                        start,
                        &h[start..start + size],
                        &m[start..start + size],
                    );
                    self.w.bump(|c| c.fsync_checks += 1);
                }
            }
            Err(e) => self.allow("fsync", e, &[Errno::EIO, Errno::ENOSPC]),
        }
        self.done_with(fd, keep).await;
    }

    fn pick_name(&self) -> &'static str {
        NAMES[self.rnd(NAMES.len() as u64) as usize]
    }

    async fn priv_create(&self) {
        let name = self.pick_name();
        let pa = self.path(PATH0, &self.priv_path(name));
        let flags = O_RDWR | O_CREAT | O_TRUNC;
        match self.sys(SYS_open, &[pa, u64::from(flags), 0o644]).await {
            Ok([fd, _]) => {
                let fd = fd as i32;
                let ino = {
                    let mut st = self.state();
                    let ino = match st.names.get(name) {
                        Some(&i) => i,
                        None => {
                            st.inodes.push(FileModel::default());
                            let i = st.inodes.len() - 1;
                            st.names.insert(name, i);
                            i
                        }
                    };
                    st.inodes[ino] = FileModel::default();
                    ino
                };
                let keep = self.chance(1, 2) && self.state().held.len() < 8;
                if keep {
                    self.state().held.push((fd, Obj::Priv(ino)));
                }
                self.done_with(fd, keep).await;
            }
            Err(e) => self.allow("create", e, &[Errno::ENOSPC]),
        }
    }

    /// A descriptor on an existing private file: held or opened by name.
    async fn priv_fd(&self, flags: u32) -> Option<(i32, bool, usize)> {
        let held: Vec<(i32, usize)> = self
            .state()
            .held
            .iter()
            .filter_map(|h| match h.1 {
                Obj::Priv(i) => Some((h.0, i)),
                _ => None,
            })
            .collect();
        if flags & O_APPEND == 0 && !held.is_empty() && self.chance(1, 2) {
            let (fd, ino) = held[self.rnd(held.len() as u64) as usize];
            return Some((fd, true, ino));
        }
        let name = self.pick_name();
        let ino = self.state().names.get(name).copied();
        let pa = self.path(PATH0, &self.priv_path(name));
        let r = self.sys(SYS_open, &[pa, u64::from(flags), 0]).await;
        match (r, ino) {
            (Ok([fd, _]), Some(ino)) => Some((fd as i32, false, ino)),
            (Ok(_), None) => panic!("{}: opened {name}, which does not exist", self.ctx()),
            (Err(e), Some(_)) => {
                self.allow("open existing", e, &[]);
                None
            }
            (Err(e), None) => {
                self.allow("open missing", e, &[Errno::ENOENT]);
                None
            }
        }
    }

    async fn priv_write(&self) {
        let append = self.chance(1, 4);
        let flags = if append { O_WRONLY | O_APPEND } else { O_RDWR };
        let Some((fd, keep, ino)) = self.priv_fd(flags).await else {
            return;
        };
        let cur = self.state().inodes[ino].data.len();
        let off = if append {
            cur
        } else {
            self.rnd(cur as u64 + 2048) as usize
        };
        let room = FILE_MAX.saturating_sub(off);
        if room > 0 {
            let len = 1 + self.rnd(room.min(8192) as u64) as usize;
            let data = self.bytes(len);
            self.c.mem.put(self.base + DATA, &data);
            self.state().pending_ino = Some(ino);
            let res = if append {
                self.sys(SYS_write, &[int(fd), self.base + DATA, len as u64])
                    .await
            } else {
                let a = [int(fd), self.base + DATA, len as u64, 0, off as u64];
                self.sys(SYS_pwrite, &a).await
            };
            let mut st = self.state();
            st.pending_ino = None;
            let f = &mut st.inodes[ino];
            match res {
                Ok([n, _]) if n as usize == len && !f.uncertain => {
                    let at = if append { f.data.len() } else { off };
                    if f.data.len() < at + len {
                        f.data.resize(at + len, Some(0));
                    }
                    for (i, b) in data.iter().enumerate() {
                        f.data[at + i] = Some(*b);
                    }
                }
                Ok(_) => f.uncertain = true,
                Err(e) => {
                    self.allow("write private", e, &[Errno::ENOSPC]);
                    f.uncertain = true;
                }
            }
        }
        self.done_with(fd, keep).await;
    }

    async fn priv_read(&self) {
        let Some((fd, keep, ino)) = self.priv_fd(O_RDONLY).await else {
            return;
        };
        let model = self.state().inodes[ino].clone();
        if let Some(st) = self.fstat(fd).await {
            if !model.uncertain {
                assert_eq!(st.0, model.data.len() as u64, "{}: size", self.ctx());
            }
            let links = self.state().names.values().filter(|&&i| i == ino).count();
            // A held descriptor may outlive every name.
            assert_eq!(st.1, links as u32, "{}: nlink of inode {ino}", self.ctx());
        }
        let len = FILE_MAX + 100;
        let a = [int(fd), self.base + DATA, len as u64, 0, 0];
        match self.sys(SYS_pread, &a).await {
            Ok([n, _]) if !model.uncertain => {
                let got = self.c.mem.get(self.base + DATA, n as usize);
                assert_eq!(n as usize, model.data.len(), "{}: read size", self.ctx());
                check_bytes(&self.ctx(), "private file", 0, &got, &model.data);
            }
            Ok(_) => {}
            Err(e) => self.allow("read private", e, &[]),
        }
        self.done_with(fd, keep).await;
    }

    /// `(size, nlink)`, `None` if the call failed as a gone client's may.
    async fn fstat(&self, fd: i32) -> Option<(u64, u32)> {
        match self.sys(SYS___fstat50, &[int(fd), self.base + OUT]).await {
            Ok(_) => {
                let b = self.c.mem.get(self.base + OUT, 152);
                let size = u64::from_le_bytes(b[112..120].try_into().unwrap());
                let nlink = u32::from_le_bytes(b[24..28].try_into().unwrap());
                Some((size, nlink))
            }
            Err(e) => {
                self.allow("fstat", e, &[]);
                None
            }
        }
    }

    async fn priv_truncate(&self) {
        let Some((fd, keep, ino)) = self.priv_fd(O_RDWR).await else {
            return;
        };
        let len = self.rnd(FILE_MAX as u64) as usize;
        self.state().pending_ino = Some(ino);
        let res = self.sys(SYS_ftruncate, &[int(fd), 0, len as u64]).await;
        {
            let mut st = self.state();
            st.pending_ino = None;
            let f = &mut st.inodes[ino];
            match res {
                Ok(_) => f.data.resize(len, Some(0)),
                Err(e) => {
                    self.allow("ftruncate", e, &[Errno::ENOSPC]);
                    f.uncertain = true;
                }
            }
        }
        self.done_with(fd, keep).await;
    }

    async fn priv_unlink(&self) {
        let name = self.pick_name();
        let exists = self.state().names.contains_key(name);
        let pa = self.path(PATH0, &self.priv_path(name));
        match self.sys(SYS_unlink, &[pa]).await {
            Ok(_) => {
                assert!(exists, "{}: unlinked missing {name}", self.ctx());
                self.state().names.remove(name);
            }
            Err(Errno::ENOENT) if !exists => {}
            Err(e) => self.allow("unlink", e, &[]),
        }
    }

    async fn priv_rename_or_link(&self) {
        let (from, to) = (self.pick_name(), self.pick_name());
        let link = self.chance(1, 2);
        let (fi, ti) = {
            let st = self.state();
            (st.names.get(from).copied(), st.names.get(to).copied())
        };
        let pf = self.path(PATH0, &self.priv_path(from));
        let pt = self.path(PATH1, &self.priv_path(to));
        let nr = if link { SYS_link } else { SYS_rename };
        let res = self.sys(nr, &[pf, pt]).await;
        match (res, fi) {
            (Err(Errno::ENOENT), None) => {}
            (Err(e), None) => self.allow("link/rename of missing", e, &[]),
            (Err(Errno::EEXIST), Some(_)) if link && ti.is_some() => {}
            (Err(e), Some(_)) => self.allow("link/rename", e, &[]),
            (Ok(_), None) => panic!("{}: {nr} of missing {from} worked", self.ctx()),
            (Ok(_), Some(i)) if link => {
                assert!(ti.is_none(), "{}: link onto existing {to}", self.ctx());
                self.state().names.insert(to, i);
            }
            (Ok(_), Some(i)) => {
                if ti == Some(i) {
                    // Two links of one file: rename(2) (not __posix_rename) removes the
                    // source name, as BSD does; the same name stays.
                    if from != to {
                        self.state().names.remove(from);
                    }
                } else {
                    let mut st = self.state();
                    st.names.remove(from);
                    st.names.insert(to, i);
                }
            }
        }
    }

    async fn priv_symlink_dir(&self) {
        let link = self.priv_path("l");
        let dir = self.priv_path("d");
        match self.rnd(4) {
            0 => {
                let had = self.state().has_link;
                let t = self.path(PATH0, "a");
                let l = self.path(PATH1, &link);
                match self.sys(SYS_symlink, &[t, l]).await {
                    Ok(_) => {
                        assert!(!had, "{}: symlink over a symlink", self.ctx());
                        self.state().has_link = true;
                    }
                    Err(Errno::EEXIST) if had => {}
                    Err(e) => self.allow("symlink", e, &[Errno::ENOSPC]),
                }
            }
            1 => {
                let had = self.state().has_link;
                let l = self.path(PATH0, &link);
                let r = self.sys(SYS_readlink, &[l, self.base + OUT, 64]).await;
                match r {
                    Ok([n, _]) => {
                        assert!(had, "{}: readlink of no link", self.ctx());
                        assert_eq!(self.c.mem.get(self.base + OUT, n as usize), b"a");
                    }
                    Err(Errno::ENOENT) if !had => {}
                    Err(e) => self.allow("readlink", e, &[]),
                }
                // Through the link: what `a` holds.
                let exists = self.state().names.contains_key("a");
                let l = self.path(PATH0, &link);
                match self.sys(SYS_open, &[l, u64::from(O_RDONLY), 0]).await {
                    Ok([fd, _]) => {
                        assert!(had && exists, "{}: open through link", self.ctx());
                        self.done_with(fd as i32, false).await;
                    }
                    Err(Errno::ENOENT) if !(had && exists) => {}
                    Err(e) => self.allow("open via link", e, &[]),
                }
            }
            2 => {
                let had = self.state().has_link;
                let l = self.path(PATH0, &link);
                match self.sys(SYS_unlink, &[l]).await {
                    Ok(_) => {
                        assert!(had, "{}: unlinked no link", self.ctx());
                        self.state().has_link = false;
                    }
                    Err(Errno::ENOENT) if !had => {}
                    Err(e) => self.allow("unlink link", e, &[]),
                }
            }
            _ => {
                let had = self.state().has_dir;
                let d = self.path(PATH0, &dir);
                let nr = if had { SYS_rmdir } else { SYS_mkdir };
                match self.sys(nr, &[d, 0o755]).await {
                    Ok(_) => self.state().has_dir = !had,
                    Err(e) => self.allow("mkdir/rmdir", e, &[Errno::ENOSPC]),
                }
            }
        }
    }

    async fn lock_op(&self) {
        match self.local {
            0 => self.posix_lock().await,
            1 => self.flock_lock().await,
            _ => self.priv_read().await,
        }
    }

    async fn posix_lock(&self) {
        let pa = self.path(PATH0, "/sim/lockf");
        let fd = match self.sys(SYS_open, &[pa, u64::from(O_RDWR), 0]).await {
            Ok([fd, _]) => fd as i32,
            Err(e) => return self.allow("open lockf", e, &[]),
        };
        let pid = self.c.p.pid();
        self.c.mem.put(self.base + OUT, &flock_bytes(3));
        let r = self
            .sys(SYS_fcntl, &[int(fd), F_SETLKW, self.base + OUT])
            .await;
        match r {
            Ok(_) if !self.dead() => {
                let h = self.w.posix_holder.get();
                assert!(
                    h.is_none(),
                    "{}: POSIX lock also held by pid {h:?}",
                    self.ctx()
                );
                self.w.posix_holder.set(Some(pid));
                let _ = self.sys(SYS_getpid, &[]).await;
                if self.w.posix_holder.get() == Some(pid) {
                    self.w.posix_holder.set(None);
                }
                self.c.mem.put(self.base + OUT, &flock_bytes(2));
                let r = self
                    .sys(SYS_fcntl, &[int(fd), F_SETLK, self.base + OUT])
                    .await;
                if let Err(e) = r {
                    self.allow("unlock", e, &[]);
                }
            }
            Ok(_) => {}
            Err(e) => self.allow("F_SETLKW", e, &[Errno::EDEADLK]),
        }
        self.done_with(fd, false).await;
    }

    async fn flock_lock(&self) {
        let pa = self.path(PATH0, "/sim/flockf");
        let fd = match self.sys(SYS_open, &[pa, u64::from(O_RDWR), 0]).await {
            Ok([fd, _]) => fd as i32,
            Err(e) => return self.allow("open flockf", e, &[]),
        };
        match self.sys(SYS_flock, &[int(fd), LOCK_EX]).await {
            Ok(_) if !self.dead() => {
                let h = self.w.flock_holder.get();
                assert!(h.is_none(), "{}: flock also held by slot {h:?}", self.ctx());
                self.w.flock_holder.set(Some(self.id));
                let _ = self.sys(SYS_getpid, &[]).await;
                if self.w.flock_holder.get() == Some(self.id) {
                    self.w.flock_holder.set(None);
                }
                let r = self.sys(SYS_flock, &[int(fd), LOCK_UN]).await;
                assert_eq!(r, Ok([0, 0]), "{}: LOCK_UN", self.ctx());
            }
            Ok(_) => {}
            Err(e) => self.allow("flock", e, &[]),
        }
        self.done_with(fd, false).await;
    }

    async fn pipe_op(&self) {
        let (rfd, wfd) = match self.sys(SYS_pipe, &[]).await {
            Ok([r, w]) => (r as i32, w as i32),
            Err(e) => return self.allow("pipe", e, &[]),
        };
        let n = 1 + self.rnd(600) as usize;
        let data = self.bytes(n);
        self.c.mem.put(self.base + DATA, &data);
        match self
            .sys(SYS_write, &[int(wfd), self.base + DATA, n as u64])
            .await
        {
            Ok([k, _]) => {
                let k = k as usize;
                assert!(
                    k == n || self.dead(),
                    "{}: pipe write {k} of {n}",
                    self.ctx()
                );
                let at = self.base + DATA + 0x10000;
                let r = self.sys(SYS_read, &[int(rfd), at, 2 * n as u64]).await;
                match r {
                    Ok([got, _]) => {
                        let got = self.c.mem.get(at, got as usize);
                        if !self.dead() {
                            assert_eq!(got, data[..k], "{}: pipe data", self.ctx());
                        }
                    }
                    Err(e) => self.allow("pipe read", e, &[]),
                }
            }
            Err(e) => self.allow("pipe write", e, &[]),
        }
        for fd in [rfd, wfd] {
            self.done_with(fd, false).await;
        }
    }

    /// poll, select or kevent on a pipe of the slot's own, checked against what the pipe
    /// holds: data or a closed write end is readable (`POLLHUP`/`EV_EOF` for the latter), an
    /// empty pipe is writable, a descriptor nobody holds `POLLNVAL`; one out of four waits
    /// on an empty pipe with a long timeout, which a disconnect ends with `EINTR`.
    async fn ready_op(&self) {
        let (rfd, wfd) = match self.sys(SYS_pipe, &[]).await {
            Ok([r, w]) => (r as i32, w as i32),
            Err(e) => return self.allow("pipe", e, &[]),
        };
        let blocked = self.chance(1, 4);
        let n = if blocked || self.chance(1, 3) {
            0
        } else {
            1 + self.rnd(600) as usize
        };
        let mut wopen = true;
        let mut ok = true;
        if n > 0 {
            self.c.mem.put(self.base + DATA, &self.bytes(n));
            let r = self
                .sys(SYS_write, &[int(wfd), self.base + DATA, n as u64])
                .await;
            match r {
                Ok([k, _]) => ok = k as usize == n,
                Err(e) => {
                    self.allow("pipe write", e, &[]);
                    ok = false;
                }
            }
        }
        if !blocked && self.chance(1, 3) {
            self.done_with(wfd, false).await;
            wopen = false;
        }
        // Long waits only where nothing can be ready; short ones (or none) elsewhere.
        let ms = if blocked {
            60_000
        } else {
            [0, 0, 1, 5, 20][self.rnd(5) as usize]
        };
        let readable = n > 0 || !wopen;
        if ok {
            match self.rnd(3) {
                0 => {
                    self.ready_poll(rfd, wopen.then_some(wfd), ms, n, readable)
                        .await
                }
                1 => {
                    let w = wopen.then_some(wfd);
                    self.ready_select(rfd, w, ms, readable).await
                }
                _ => self.ready_kevent(rfd, wopen, ms, n).await,
            }
        }
        self.done_with(rfd, false).await;
        if wopen {
            self.done_with(wfd, false).await;
        }
    }

    async fn ready_poll(&self, rfd: i32, wfd: Option<i32>, ms: u64, n: usize, readable: bool) {
        let eof = wfd.is_none();
        let mut fds = pollfd(rfd, POLLIN).to_vec();
        let check_w = wfd.is_some() && ms < 1000;
        if check_w {
            fds.extend(pollfd(wfd.unwrap(), POLLOUT));
        }
        let nval = ms < 1000 && self.chance(1, 2);
        if nval {
            fds.extend(pollfd(NOFD, POLLIN));
        }
        let nfds = fds.len() / 8;
        self.c.mem.put(self.base + POLLFDS, &fds);
        let r = self
            .sys(SYS_poll, &[self.base + POLLFDS, nfds as u64, ms])
            .await;
        let got = match r {
            Ok([k, _]) => k,
            Err(e) => return self.allow("poll", e, &[]),
        };
        if self.dead() {
            return;
        }
        let out = self.c.mem.get(self.base + POLLFDS, fds.len());
        let rev = |i: usize| u32::from(u16::from_le_bytes([out[i * 8 + 6], out[i * 8 + 7]]));
        let want_r = if readable { POLLIN } else { 0 } | if eof { POLLHUP } else { 0 };
        let ctx = format!(
            "{}: poll of a pipe ({n} bytes, eof {eof}, {ms} ms)",
            self.ctx()
        );
        assert_eq!(rev(0), want_r, "{ctx}: read end");
        let mut want = usize::from(want_r != 0);
        if check_w {
            assert_eq!(rev(1), POLLOUT, "{ctx}: write end");
            want += 1;
        }
        if nval {
            assert_eq!(rev(nfds - 1), POLLNVAL, "{ctx}: fd {NOFD}");
            want += 1;
        }
        assert_eq!(got as usize, want, "{ctx}: count");
    }

    async fn ready_select(&self, rfd: i32, wfd: Option<i32>, ms: u64, readable: bool) {
        let set = |fd: i32| {
            let mut b = [0u8; 64];
            b[fd as usize / 8] |= 1 << (fd % 8);
            b
        };
        if rfd >= 512 || wfd.is_some_and(|w| w >= 512) {
            return;
        }
        let nd = rfd.max(wfd.unwrap_or(0)) + 1;
        self.c.mem.put(self.base + RSET, &set(rfd));
        let check_w = ms < 1000;
        let ws = match wfd {
            Some(w) if check_w => {
                self.c.mem.put(self.base + WSET, &set(w));
                self.base + WSET
            }
            _ => 0,
        };
        let mut tv = [0u8; 16];
        tv[..8].copy_from_slice(&((ms / 1000) as i64).to_le_bytes());
        tv[8..12].copy_from_slice(&(((ms % 1000) * 1000) as i32).to_le_bytes());
        self.c.mem.put(self.base + TIMEOUT, &tv);
        let a = [int(nd), self.base + RSET, ws, 0, self.base + TIMEOUT];
        let got = match self.sys(SYS___select50, &a).await {
            Ok([k, _]) => k,
            Err(e) => return self.allow("select", e, &[]),
        };
        if self.dead() {
            return;
        }
        let ctx = format!("{}: select of a pipe ({ms} ms)", self.ctx());
        let isset = |at: u64, fd: i32| {
            let b = self.c.mem.get(self.base + at + fd as u64 / 8, 1)[0];
            b & (1 << (fd % 8)) != 0
        };
        assert_eq!(isset(RSET, rfd), readable, "{ctx}: read end");
        let mut want = i64::from(readable);
        if ws != 0 {
            assert!(isset(WSET, wfd.unwrap()), "{ctx}: write end not writable");
            want += 1;
        }
        assert_eq!(got, want, "{ctx}: count");
    }

    async fn ready_kevent(&self, rfd: i32, wopen: bool, ms: u64, n: usize) {
        let kq = match self.sys(SYS_kqueue, &[]).await {
            Ok([k, _]) => k as i32,
            Err(e) => return self.allow("kqueue", e, &[Errno::ENOMEM]),
        };
        let timer = ms < 1000 && self.chance(1, 2);
        let mut ch = kevent(rfd as u64, EVFILT_READ, EV_ADD, 0).to_vec();
        if timer {
            ch.extend(kevent(7, EVFILT_TIMER, EV_ADD, 1 + self.rnd(10) as i64));
        }
        let nch = ch.len() / 40;
        self.c.mem.put(self.base + CHANGES, &ch);
        self.c.mem.put(self.base + EVENTS, &[0u8; 160]);
        self.c
            .mem
            .put(self.base + TIMEOUT, &timespec(ms * 1_000_000));
        let a = [
            int(kq),
            self.base + CHANGES,
            nch as u64,
            self.base + EVENTS,
            4,
            self.base + TIMEOUT,
        ];
        let r = self.sys(SYS___kevent50, &a).await;
        let ctx = format!(
            "{}: kevent on a pipe ({n} bytes, writer {wopen}, timer {timer}, {ms} ms)",
            self.ctx()
        );
        match r {
            Ok([k, _]) if !self.dead() => {
                let out = self.c.mem.get(self.base + EVENTS, 160);
                let field = |i: usize, o: usize, len: usize| {
                    let mut b = [0u8; 8];
                    b[..len].copy_from_slice(&out[i * 40 + o..i * 40 + o + len]);
                    u64::from_le_bytes(b)
                };
                let (mut read, mut ticks) = (None, None);
                for i in 0..k as usize {
                    let (ident, filter) = (field(i, 0, 8), field(i, 8, 4) as u32);
                    let flags = field(i, 12, 4) as u32;
                    let data = field(i, KEV_DATA, 8) as i64;
                    assert_eq!(flags & EV_ERROR, 0, "{ctx}: error event {data}");
                    match filter {
                        EVFILT_READ if ident == rfd as u64 && read.is_none() => {
                            read = Some((data, flags & EV_EOF != 0))
                        }
                        EVFILT_TIMER if ident == 7 && timer && ticks.is_none() => {
                            ticks = Some(data)
                        }
                        _ => panic!("{ctx}: unexpected event {ident} {filter}"),
                    }
                }
                let readable = n > 0 || !wopen;
                let want = readable.then_some((n as i64, !wopen));
                assert_eq!(read, want, "{ctx}: EVFILT_READ (data, EV_EOF)");
                if let Some(t) = ticks {
                    assert!(t >= 1, "{ctx}: timer fired {t} times");
                }
            }
            Ok(_) => {}
            Err(e) => self.allow("kevent", e, &[Errno::ENOMEM]),
        }
        self.done_with(kq, false).await;
    }

    async fn close_held(&self) {
        let h = {
            let mut st = self.state();
            if st.held.is_empty() {
                return;
            }
            let i = self.rnd(st.held.len() as u64) as usize;
            st.held.remove(i)
        };
        self.done_with(h.0, false).await;
    }

    async fn dup_close(&self) {
        let fd = {
            let st = self.state();
            if st.held.is_empty() {
                return;
            }
            st.held[self.rnd(st.held.len() as u64) as usize].0
        };
        match self.sys(SYS_dup, &[int(fd)]).await {
            Ok([n, _]) => self.done_with(n as i32, false).await,
            Err(e) => self.allow("dup", e, &[]),
        }
    }
}

/// Compares bytes read at `off` with the model (unknown bytes match anything).
fn check_bytes(ctx: &str, what: &str, off: usize, got: &[u8], model: &[Byte]) {
    assert_eq!(got.len(), model.len(), "{ctx}: {what}: length");
    if let Some(i) = (0..got.len()).find(|&i| model[i].is_some_and(|m| m != got[i])) {
        panic!(
            "{ctx}: {what}: byte {} is {:#04x}, the model says {:#04x}",
            off + i,
            got[i],
            model[i].unwrap()
        );
    }
}

/// A helper client for set-up and the final checks.
struct Helper {
    p: Arc<kernel::Proc>,
    mem: SimMem,
}

const HELPER_ID: u64 = u64::MAX - 1;
const HBASE: u64 = 0x1000_0000;

impl Helper {
    fn new(w: &World) -> Helper {
        let mem = SimMem::new(HELPER_ID);
        mem.map(HBASE, 0x1000 + (256 << 10));
        Helper {
            p: w.k.spawn_guest(b"helper").expect("spawn"),
            mem,
        }
    }

    async fn ok(&self, w: &World, what: &str, nr: u32, a: &[u64]) -> i64 {
        match call(w, &self.p, &self.mem, nr, a).await {
            Ok(rv) => rv[0],
            Err(e) => panic!("seed {}: {what}: {e:?}", w.cfg.seed),
        }
    }

    fn path(&self, p: &str) -> u64 {
        let mut b = p.as_bytes().to_vec();
        b.push(0);
        self.mem.put(HBASE, &b);
        HBASE
    }

    async fn read_all(&self, w: &World, path: &str, len: usize) -> Vec<u8> {
        let pa = self.path(path);
        let fd = self
            .ok(w, path, SYS_open, &[pa, u64::from(O_RDONLY), 0])
            .await;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = (len - out.len()).min(256 << 10);
            let a = [fd as u64, HBASE + 0x1000, n as u64, 0, out.len() as u64];
            let got = self.ok(w, "pread", SYS_pread, &a).await as usize;
            if got == 0 {
                break;
            }
            out.extend_from_slice(&self.mem.get(HBASE + 0x1000, got));
        }
        self.ok(w, "close", SYS_close, &[fd as u64]).await;
        out
    }
}

/// Creates `/sim`, the shared file at its full size, the lock files and the private dirs.
pub async fn setup(w: &Rc<World>) {
    let h = Helper::new(w);
    h.ok(w, "mkdir /sim", SYS_mkdir, &[h.path("/sim"), 0o755])
        .await;
    if w.cfg.ffs {
        // mount("ffs", "/sim", 0, &ufs_args { fspec: FFS_DEV }, 8)
        let (ty, dev, args) = (HBASE + 0x100, HBASE + 0x200, HBASE + 0x300);
        h.mem.put(ty, b"ffs\0");
        h.mem.put(dev, format!("{}\0", crate::FFS_DEV).as_bytes());
        h.mem.put(args, &dev.to_le_bytes());
        let a = [ty, h.path("/sim"), 0, args, 8];
        h.ok(w, "mount ffs on /sim", SYS___mount50, &a).await;
        h.ok(w, "chmod /sim", SYS_chmod, &[h.path("/sim"), 0o755])
            .await;
    }
    for f in ["/sim/lockf", "/sim/flockf"] {
        let a = [h.path(f), u64::from(O_RDWR | O_CREAT), 0o644];
        let fd = h.ok(w, f, SYS_open, &a).await;
        h.ok(w, "close", SYS_close, &[fd as u64]).await;
    }
    let shared = Region::Shared.path();
    let fl = u64::from(O_RDWR | O_CREAT);
    let fd = h
        .ok(w, shared, SYS_open, &[h.path(shared), fl, 0o644])
        .await;
    let size = Region::Shared.per_slot() * w.cfg.slots;
    h.ok(w, "ftruncate", SYS_ftruncate, &[fd as u64, 0, size as u64])
        .await;
    h.ok(w, "close", SYS_close, &[fd as u64]).await;
    for s in 0..w.cfg.slots {
        let d = format!("/sim/s{s}");
        h.ok(w, "mkdir", SYS_mkdir, &[h.path(&d), 0o755]).await;
    }
    w.k.exit_process(&h.p);
}

/// Faults off: syncs, compares the host files and a read-back of everything with the model,
/// then removes every file the run made.
pub async fn final_check(w: &Rc<World>) {
    let seed = w.cfg.seed;
    w.k.sync_all_async()
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: final sync: {e:?}"));
    for r in [Region::Blk, Region::Reg, Region::Chr] {
        let host = w.hosts[r.idx()].as_ref().unwrap().1.contents();
        let m = w.models[r.idx()].borrow();
        check_bytes(
            &format!("seed {seed}"),
            "host file after sync",
            0,
            &host,
            &m,
        );
    }
    let h = Helper::new(w);
    for r in Region::ALL {
        let m = w.models[r.idx()].borrow().clone();
        let got = h.read_all(w, r.path(), m.len()).await;
        check_bytes(&format!("seed {seed}"), r.path(), 0, &got, &m);
    }
    for s in 0..w.cfg.slots {
        let (names, inodes, has_dir, has_link) = {
            let st = w.slots[s].borrow();
            (st.names.clone(), st.inodes.clone(), st.has_dir, st.has_link)
        };
        for (name, ino) in names {
            let f = &inodes[ino];
            let path = format!("/sim/s{s}/{name}");
            let got = h.read_all(w, &path, FILE_MAX + 1).await;
            if !f.uncertain {
                assert_eq!(got.len(), f.data.len(), "seed {seed}: {path}: size");
                check_bytes(&format!("seed {seed}"), &path, 0, &got, &f.data);
            }
            h.ok(w, "unlink", SYS_unlink, &[h.path(&path)]).await;
        }
        if has_link {
            let p = format!("/sim/s{s}/l");
            h.ok(w, "unlink l", SYS_unlink, &[h.path(&p)]).await;
        }
        if has_dir {
            let p = format!("/sim/s{s}/d");
            h.ok(w, "rmdir d", SYS_rmdir, &[h.path(&p)]).await;
        }
        let p = format!("/sim/s{s}");
        h.ok(w, "rmdir slot dir", SYS_rmdir, &[h.path(&p)]).await;
    }
    for f in ["/sim/lockf", "/sim/flockf", "/sim/shared"] {
        h.ok(w, "unlink", SYS_unlink, &[h.path(f)]).await;
    }
    if let Some(image) = &w.ffs_image {
        h.ok(w, "unmount /sim", SYS_unmount, &[h.path("/sim"), 0])
            .await;
        let disk = ffs::MemDisk::from_vec(image.contents());
        let findings = ffs::block_on(ffs::check(&disk)).expect("check");
        assert!(findings.is_empty(), "seed {seed}: FFS image: {findings:?}");
    }
    h.ok(w, "rmdir /sim", SYS_rmdir, &[h.path("/sim")]).await;
    w.k.exit_process(&h.p);
    // The read-back dirtied nothing.
    assert_eq!(w.k.vfs().unwrap().bio().stats().dirty, 0);
}
