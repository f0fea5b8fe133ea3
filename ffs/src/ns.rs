//! Names: directory lookup and updates, and the namespace operations on top of them
//! (create, mkdir, symlink, link, unlink, rmdir, rename, readdir), plus attributes,
//! `statvfs` and inode references.

use crate::dir::{self, DIRBLKSIZ, MAXNAMLEN};
use crate::fs::{Fs, Ino, LINK_MAX};
use crate::inode::{dtype_of, Dinode, Timespec, IFBLK, IFCHR, IFDIR, IFIFO, IFLNK, IFMT};
use crate::inode::{IFREG, IFSOCK};
use crate::sb::ROOTINO;
use crate::{Disk, Errno, Result};
use std::collections::{BTreeMap, HashSet};

/// Longest symlink target (NetBSD's `MAXPATHLEN`).
pub const MAXPATHLEN: usize = 1024;
/// Whiteout entries point to this inode number.
const WINO: u32 = 1;
/// `chflags` bits that forbid removing or renaming (user and system immutable/append).
const NOUNLINK_FLAGS: u32 = 0x0000_0002 | 0x0000_0004 | 0x0002_0000 | 0x0004_0000;
const APPEND_FLAGS: u32 = 0x0000_0004 | 0x0004_0000;

/// Attributes of an inode (`getattr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// Type and permission bits (`S_IFMT` as NetBSD).
    pub mode: u16,
    /// Links.
    pub nlink: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Creation (UFS2; zero on UFS1).
    pub birthtime: Timespec,
    /// `chflags` flags.
    pub flags: u32,
    /// Generation number.
    pub gen: u32,
    /// Space allocated, in 512-byte units.
    pub blocks: u64,
    /// Device number (character and block devices).
    pub rdev: u64,
    /// Preferred I/O size (the block size).
    pub blksize: u32,
}

/// Changes for `setattr`; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// Permission bits (07777); the type is kept.
    pub mode: Option<u16>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Size (regular files).
    pub size: Option<u64>,
    /// Access time.
    pub atime: Option<Timespec>,
    /// Modification time.
    pub mtime: Option<Timespec>,
    /// Creation time (UFS2 only; ignored on UFS1).
    pub birthtime: Option<Timespec>,
    /// `chflags` flags.
    pub flags: Option<u32>,
}

/// One directory entry from `readdir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: Ino,
    /// `d_type` (`DT_*`; 0 on old-format file systems).
    pub dtype: u8,
    /// Name.
    pub name: Vec<u8>,
    /// The cookie of the entry after this one (a byte offset in the directory).
    pub next: u64,
}

/// File-system figures for `statvfs`, as NetBSD's `ffs_statvfs` computes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatVfs {
    /// Block size.
    pub bsize: u64,
    /// Fragment size (the unit of the block counts).
    pub frsize: u64,
    /// Preferred I/O size.
    pub iosize: u64,
    /// Data fragments.
    pub blocks: u64,
    /// Free fragments.
    pub bfree: u64,
    /// Free fragments for unprivileged users.
    pub bavail: u64,
    /// Reserved fragments.
    pub bresvd: u64,
    /// Inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Free inodes for unprivileged users.
    pub favail: u64,
    /// Reserved inodes.
    pub fresvd: u64,
    /// Longest name.
    pub namemax: u64,
    /// `fs_id`.
    pub fsid: [u32; 2],
}

/// A chunk with room for a new name: its block's fragment address and its offset there.
type Room = Option<(u64, usize)>;

/// Where a name was found.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub ino: Ino,
    /// Fragment address of the directory block.
    addr: u64,
    /// Byte offset of the chunk in that block.
    chunk: usize,
    /// The entry's offset in the chunk.
    off: usize,
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > MAXNAMLEN {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.iter().any(|&c| c == 0 || c == b'/') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Inodes touched by one operation, written back together at its end.
struct Touched(BTreeMap<Ino, Dinode>);

impl Touched {
    fn get(&mut self, ino: Ino) -> &mut Dinode {
        self.0.get_mut(&ino).expect("inode loaded before use")
    }
}

/// A walk over a directory's blocks in order, from logical block `lbn`: each block paced
/// (the kernel yields its loop, and stops the walk for an exiting caller), and a block
/// reached twice (two pointers to one block) is corruption: `EIO`. Its length is bounded by
/// `iget`: a directory's size is within its space, which is within the file system's.
struct DirWalk {
    lbn: u64,
    end: u64,
    seen: HashSet<u64>,
    /// The walk must finish (its operation has already changed the file system): the
    /// caller's exit does not stop it.
    through: bool,
}

impl DirWalk {
    fn new(bsize: u64, dp: &Dinode, lbn: u64) -> DirWalk {
        DirWalk {
            lbn,
            end: dp.size.div_ceil(bsize),
            seen: HashSet::new(),
            through: false,
        }
    }

    /// The next block: (logical block, address, bytes in use), or `None` at the end.
    async fn next<D: Disk>(
        &mut self,
        fs: &Fs<D>,
        dp: &Dinode,
    ) -> Result<Option<(u64, u64, Vec<u8>)>> {
        if self.lbn >= self.end {
            return Ok(None);
        }
        if self.through {
            fs.step_through().await;
        } else {
            fs.step().await?;
        }
        let lbn = self.lbn;
        let (addr, buf) = fs.dir_block(dp, lbn).await?;
        if !self.seen.insert(addr) {
            return Err(Errno::EIO);
        }
        self.lbn += 1;
        Ok(Some((lbn, addr, buf)))
    }
}

impl<D: Disk> Fs<D> {
    fn check_dir(&self, dp: &Dinode) -> Result<()> {
        if !dp.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if dp.size % DIRBLKSIZ as u64 != 0 || dp.size == 0 || dp.size > self.sb.maxfilesize {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Reads directory block `lbn`: (address, bytes in use).
    async fn dir_block(&self, dp: &Dinode, lbn: u64) -> Result<(u64, Vec<u8>)> {
        let bs = self.sb.bsize as u64;
        let len = (dp.size - lbn * bs).min(bs);
        let addr = self.bmap(dp, lbn).await?;
        if addr == 0 {
            return Err(Errno::EIO);
        }
        let mut buf = vec![0u8; len as usize];
        self.disk.read(self.sb.frag_offset(addr), &mut buf).await?;
        Ok((addr, buf))
    }

    async fn write_chunk(&self, addr: u64, chunk: usize, bytes: &[u8]) -> Result<()> {
        self.disk
            .write(self.sb.frag_offset(addr) + chunk as u64, bytes)
            .await
    }

    /// One scan for a new name: `EEXIST` if it is there, else the first chunk with room
    /// for it (its block's address and offset), if any.
    async fn dir_find_room(&self, dp: &Dinode, name: &[u8]) -> Result<Room> {
        self.check_dir(dp)?;
        let mut room = None;
        let mut walk = DirWalk::new(self.sb.bsize as u64, dp, 0);
        while let Some((_, addr, buf)) = walk.next(self, dp).await? {
            for (ci, chunk) in buf.chunks(DIRBLKSIZ).enumerate() {
                let mut hit = false;
                dir::walk_chunk(chunk, self.dtype, |_, ino, _, _, n| {
                    hit |= ino != 0 && ino != WINO && n == name;
                })?;
                if hit {
                    return Err(Errno::EEXIST);
                }
                if room.is_none() && dir::fits(chunk, name.len(), self.dtype)? {
                    room = Some((addr, ci * DIRBLKSIZ));
                }
            }
        }
        Ok(room)
    }

    pub(crate) async fn dir_find(&self, dp: &Dinode, name: &[u8]) -> Result<Option<Found>> {
        self.dir_find_walk(dp, name, false).await
    }

    /// [`Self::dir_find`] for an operation that has already changed something: an exiting
    /// caller does not stop it halfway (a rename stopped after adding the new name left
    /// both names on an inode counting one link; unlinking one freed the inode under the
    /// other).
    async fn dir_find_through(&self, dp: &Dinode, name: &[u8]) -> Result<Option<Found>> {
        self.dir_find_walk(dp, name, true).await
    }

    async fn dir_find_walk(
        &self,
        dp: &Dinode,
        name: &[u8],
        through: bool,
    ) -> Result<Option<Found>> {
        self.check_dir(dp)?;
        let mut walk = DirWalk::new(self.sb.bsize as u64, dp, 0);
        walk.through = through;
        while let Some((_, addr, buf)) = walk.next(self, dp).await? {
            for (ci, chunk) in buf.chunks(DIRBLKSIZ).enumerate() {
                let mut hit = None;
                dir::walk_chunk(chunk, self.dtype, |off, ino, _, _, n| {
                    if hit.is_none() && ino != 0 && ino != WINO && n == name {
                        hit = Some((ino, off));
                    }
                })?;
                if let Some((ino, off)) = hit {
                    return Ok(Some(Found {
                        ino,
                        addr,
                        chunk: ci * DIRBLKSIZ,
                        off,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Adds `name → ino` to directory `dino` (growing it by a chunk when no chunk has room):
    /// in the chunk `room` names if it has room (the scan that looked for the name found
    /// it, and the directory has not changed since), else the first chunk with room.
    async fn dir_add(
        &self,
        dino: Ino,
        dp: &mut Dinode,
        name: &[u8],
        ino: Ino,
        mode: u16,
        room: Room,
    ) -> Result<()> {
        self.check_dir(dp)?;
        let t = if self.dtype { dtype_of(mode) } else { 0 };
        if let Some((addr, off)) = room {
            let mut chunk = [0u8; DIRBLKSIZ];
            let base = self.sb.frag_offset(addr) + off as u64;
            self.disk.read(base, &mut chunk).await?;
            if dir::insert(&mut chunk, ino, t, name, self.dtype)? {
                return self.write_chunk(addr, off, &chunk).await;
            }
        }
        let mut walk = DirWalk::new(self.sb.bsize as u64, dp, 0);
        while let Some((_, addr, mut buf)) = walk.next(self, dp).await? {
            for ci in 0..buf.len() / DIRBLKSIZ {
                let chunk = &mut buf[ci * DIRBLKSIZ..(ci + 1) * DIRBLKSIZ];
                if dir::insert(chunk, ino, t, name, self.dtype)? {
                    let bytes = chunk.to_vec();
                    return self.write_chunk(addr, ci * DIRBLKSIZ, &bytes).await;
                }
            }
        }
        let mut chunk = [0u8; DIRBLKSIZ];
        dir::empty_chunk(&mut chunk);
        dir::insert(&mut chunk, ino, t, name, self.dtype)?;
        let off = dp.size;
        let before = dp.clone();
        match self.write_data(dino, dp, off, &chunk).await {
            Ok(n) if n == DIRBLKSIZ => Ok(()),
            Ok(_) => {
                // Partly written: give the space back so the size stays a chunk multiple.
                self.truncate_blocks(dino, dp, before.size).await?;
                Err(Errno::ENOSPC)
            }
            Err(e) => Err(e),
        }
    }

    async fn dir_remove(&self, f: &Found) -> Result<()> {
        let mut chunk = vec![0u8; DIRBLKSIZ];
        let base = self.sb.frag_offset(f.addr) + f.chunk as u64;
        self.disk.read(base, &mut chunk).await?;
        dir::remove(&mut chunk, f.off, self.dtype)?;
        self.write_chunk(f.addr, f.chunk, &chunk).await
    }

    async fn dir_set(&self, f: &Found, ino: Ino, mode: u16) -> Result<()> {
        let mut chunk = vec![0u8; DIRBLKSIZ];
        let base = self.sb.frag_offset(f.addr) + f.chunk as u64;
        self.disk.read(base, &mut chunk).await?;
        dir::set_ino(&mut chunk, f.off, ino, dtype_of(mode), self.dtype);
        self.write_chunk(f.addr, f.chunk, &chunk).await
    }

    async fn dir_is_empty(&self, dp: &Dinode) -> Result<bool> {
        self.check_dir(dp)?;
        let mut walk = DirWalk::new(self.sb.bsize as u64, dp, 0);
        while let Some((_, _, buf)) = walk.next(self, dp).await? {
            for chunk in buf.chunks(DIRBLKSIZ) {
                let mut live = false;
                dir::walk_chunk(chunk, self.dtype, |_, ino, _, _, name| {
                    live |= ino != 0 && ino != WINO && !is_dot(name);
                })?;
                if live {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    async fn load(&self, t: &mut Touched, ino: Ino) -> Result<()> {
        if let std::collections::btree_map::Entry::Vacant(v) = t.0.entry(ino) {
            v.insert(self.iget(ino).await?);
        }
        Ok(())
    }

    async fn store(&self, t: Touched) -> Result<()> {
        for (ino, mut ip) in t.0 {
            if ip.nlink == 0 && ip.mode != 0 && !self.referenced(ino) {
                self.iput(ino, &mut ip).await?;
                self.reclaim(ino).await?;
            } else {
                self.iput(ino, &mut ip).await?;
            }
        }
        Ok(())
    }

    // ---- lookups and attributes ---------------------------------------------------------

    /// `lookup(dir, name)` — the inode `name` refers to in directory `dir` (`ENOENT`).
    pub async fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino> {
        check_name(name)?;
        let dp = self.iget(dir).await?;
        let f = self.dir_find(&dp, name).await?.ok_or(Errno::ENOENT)?;
        self.check_ino(f.ino)?;
        Ok(f.ino)
    }

    /// `getattr(ino)` — the inode's attributes.
    pub async fn getattr(&self, ino: Ino) -> Result<Attr> {
        let ip = self.iget(ino).await?;
        Ok(self.attr_of(ino, &ip))
    }

    fn attr_of(&self, ino: Ino, ip: &Dinode) -> Attr {
        Attr {
            ino,
            mode: ip.mode,
            nlink: ip.nlink,
            uid: ip.uid,
            gid: ip.gid,
            size: ip.size,
            atime: ip.atime,
            mtime: ip.mtime,
            ctime: ip.ctime,
            birthtime: ip.birthtime,
            flags: ip.flags,
            gen: ip.gen,
            blocks: ip.blocks,
            rdev: ip.rdev(),
            blksize: self.sb.bsize,
        }
    }

    /// `setattr(ino, changes)` — chmod, chown, utimes, chflags, truncate; sets ctime.
    pub async fn setattr(&self, ino: Ino, a: &SetAttr) -> Result<Attr> {
        self.check_rw()?;
        let mut ip = self.iget(ino).await?;
        if let Some(size) = a.size {
            match ip.kind() {
                IFREG => {}
                IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            if size > self.sb.maxfilesize {
                return Err(Errno::EFBIG);
            }
            let r = self.set_size(ino, &mut ip, size).await;
            let now = self.now();
            ip.mtime = now;
            ip.ctime = now;
            if let Err(e) = r {
                self.iput(ino, &mut ip).await?;
                return Err(e);
            }
        }
        if let Some(m) = a.mode {
            ip.mode = (ip.mode & IFMT) | (m & 0o7777);
        }
        if let Some(u) = a.uid {
            ip.uid = u;
        }
        if let Some(g) = a.gid {
            ip.gid = g;
        }
        if let Some(t) = a.atime {
            ip.atime = t;
        }
        if let Some(t) = a.mtime {
            ip.mtime = t;
        }
        if let (Some(t), true) = (a.birthtime, self.sb.ufs2) {
            ip.birthtime = t;
        }
        if let Some(f) = a.flags {
            ip.flags = f;
        }
        ip.ctime = self.now();
        self.iput(ino, &mut ip).await?;
        Ok(self.attr_of(ino, &ip))
    }

    /// `readlink(ino)` — a symlink's target.
    pub async fn readlink(&self, ino: Ino) -> Result<Vec<u8>> {
        let ip = self.iget(ino).await?;
        if ip.kind() != IFLNK {
            return Err(Errno::EINVAL);
        }
        if self.is_fast_symlink(&ip) {
            return Ok(ip.fast_symlink().to_vec());
        }
        if ip.size > MAXPATHLEN as u64 {
            return Err(Errno::EIO);
        }
        let mut buf = vec![0u8; ip.size as usize];
        let n = self.read_data(&ip, 0, &mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// `readdir(dir, cookie, max)` — up to `max` entries from byte offset `cookie` (0: the
    /// start; then the `next` of the last entry used). Every record of the directory is
    /// returned as NetBSD's ufs_readdir does, also a removed one that starts its chunk
    /// (inode number 0, its old name; libc's readdir skips those); a cookie inside a record
    /// is `EINVAL`.
    pub async fn readdir(&self, dir: Ino, cookie: u64, max: usize) -> Result<Vec<DirEntry>> {
        let dp = self.iget(dir).await?;
        self.check_dir(&dp)?;
        let bs = self.sb.bsize as u64;
        let mut out = Vec::new();
        let mut walk = DirWalk::new(bs, &dp, cookie / bs);
        while out.len() < max {
            let Some((lbn, _, buf)) = walk.next(self, &dp).await? else {
                break;
            };
            for (ci, chunk) in buf.chunks(DIRBLKSIZ).enumerate() {
                let cbase = lbn * bs + (ci * DIRBLKSIZ) as u64;
                if cbase + DIRBLKSIZ as u64 <= cookie {
                    continue;
                }
                for e in dir::parse_chunk(chunk, self.dtype)? {
                    let off = cbase + e.off as u64;
                    if off < cookie {
                        if off + e.reclen as u64 > cookie {
                            return Err(Errno::EINVAL);
                        }
                        continue;
                    }
                    if out.len() == max {
                        return Ok(out);
                    }
                    out.push(DirEntry {
                        ino: e.ino,
                        dtype: e.dtype,
                        name: e.name,
                        next: off + e.reclen as u64,
                    });
                }
            }
        }
        Ok(out)
    }

    /// `statvfs` figures.
    pub fn statvfs(&self) -> StatVfs {
        let sb = &self.sb;
        let t = &self.total();
        let bfree = (t.nbfree.max(0) as u64) * sb.frag as u64 + t.nffree.max(0) as u64;
        let bresvd = sb.reserved_frags();
        let files = sb.ninodes() - ROOTINO as u64;
        StatVfs {
            bsize: sb.bsize as u64,
            frsize: sb.fsize as u64,
            iosize: sb.bsize as u64,
            blocks: sb.dsize,
            bfree,
            bavail: bfree.saturating_sub(bresvd),
            bresvd,
            files,
            ffree: t.nifree.max(0) as u64,
            favail: t.nifree.max(0) as u64,
            fresvd: 0,
            namemax: MAXNAMLEN as u64,
            fsid: sb.id,
        }
    }

    /// `fsync(ino)` — makes the file and the file system's metadata durable (a full `sync`:
    /// the image is consistent afterwards).
    pub async fn fsync(&self, _ino: Ino) -> Result<()> {
        self.sync().await
    }

    /// Takes a reference on `ino` (an open vnode): if its last name goes, it is freed only at
    /// the last `release`.
    pub fn retain(&self, ino: Ino) {
        *self.refs().entry(ino).or_insert(0) += 1;
    }

    fn refs(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Ino, u32>> {
        self.refs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn referenced(&self, ino: Ino) -> bool {
        self.refs().contains_key(&ino)
    }

    /// Drops a reference; frees the inode when it was the last and no name is left.
    pub async fn release(&self, ino: Ino) -> Result<()> {
        {
            let mut refs = self.refs();
            let Some(n) = refs.get_mut(&ino) else {
                return Ok(());
            };
            *n -= 1;
            if *n > 0 {
                return Ok(());
            }
            refs.remove(&ino);
        }
        if self.ro {
            return Ok(());
        }
        let ip = self.iget_any(ino).await?;
        if ip.mode != 0 && ip.nlink == 0 {
            self.reclaim(ino).await?;
        }
        Ok(())
    }

    // ---- namespace operations -----------------------------------------------------------

    /// The directory a new name goes into, checked, and where the name will fit.
    async fn prepare_new(&self, dir: Ino, name: &[u8]) -> Result<(Dinode, Room)> {
        self.check_rw()?;
        check_name(name)?;
        let dp = self.iget(dir).await?;
        self.check_dir(&dp)?;
        if dp.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if is_dot(name) {
            return Err(Errno::EEXIST);
        }
        let room = self.dir_find_room(&dp, name).await?;
        Ok((dp, room))
    }

    /// `create(dir, name, mode, uid, gid, rdev)` — a regular file, FIFO, device or socket
    /// (the type is in `mode`); `EEXIST` if the name is taken.
    pub async fn create(
        &self,
        dir: Ino,
        name: &[u8],
        mode: u16,
        uid: u32,
        gid: u32,
        rdev: u64,
    ) -> Result<Ino> {
        match mode & IFMT {
            IFREG | IFIFO | IFCHR | IFBLK | IFSOCK => {}
            _ => return Err(Errno::EINVAL),
        }
        let (mut dp, room) = self.prepare_new(dir, name).await?;
        let (ino, mut ip) = self.ialloc(dir, mode).await?;
        ip.nlink = 1;
        ip.uid = uid;
        ip.gid = gid;
        if matches!(mode & IFMT, IFCHR | IFBLK) {
            ip.db[0] = if self.sb.ufs2 {
                rdev
            } else {
                rdev & 0xffff_ffff
            };
        }
        self.iput(ino, &mut ip).await?;
        self.link_new(dir, &mut dp, name, ino, &mut ip, room)
            .await?;
        Ok(ino)
    }

    /// Enters a freshly allocated inode in its directory; undoes the allocation on failure.
    async fn link_new(
        &self,
        dir: Ino,
        dp: &mut Dinode,
        name: &[u8],
        ino: Ino,
        ip: &mut Dinode,
        room: Room,
    ) -> Result<()> {
        let r = self.dir_add(dir, dp, name, ino, ip.mode, room).await;
        if r.is_ok() {
            let now = self.now();
            dp.mtime = now;
            dp.ctime = now;
            if ip.is_dir() {
                dp.nlink += 1;
            }
        }
        self.iput(dir, dp).await?;
        if let Err(e) = r {
            let was_dir = ip.is_dir();
            self.truncate_blocks(ino, ip, 0).await?;
            self.iput(ino, ip).await?;
            self.ifree(ino, was_dir).await?;
            return Err(e);
        }
        Ok(())
    }

    /// `mkdir(dir, name, mode, uid, gid)` — a directory holding `.` and `..`.
    pub async fn mkdir(&self, dir: Ino, name: &[u8], mode: u16, uid: u32, gid: u32) -> Result<Ino> {
        let (mut dp, room) = self.prepare_new(dir, name).await?;
        if dp.nlink >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        let (ino, mut ip) = self.ialloc(dir, IFDIR | (mode & 0o7777)).await?;
        ip.nlink = 2;
        ip.uid = uid;
        ip.gid = gid;
        let mut chunk = [0u8; DIRBLKSIZ];
        dir::dot_chunk(&mut chunk, ino, dir, self.dtype);
        let r = self.write_data(ino, &mut ip, 0, &chunk).await;
        if !matches!(r, Ok(DIRBLKSIZ)) {
            self.truncate_blocks(ino, &mut ip, 0).await?;
            self.iput(ino, &mut ip).await?;
            self.ifree(ino, true).await?;
            return Err(r.err().unwrap_or(Errno::ENOSPC));
        }
        self.iput(ino, &mut ip).await?;
        self.link_new(dir, &mut dp, name, ino, &mut ip, room)
            .await?;
        Ok(ino)
    }

    /// `symlink(dir, name, target, perm, uid, gid)` — short targets live in the inode,
    /// longer ones in a block; `perm` the permission bits (the caller's `ACCESSPERMS` less
    /// its umask, as NetBSD's symlinkat gives them).
    pub async fn symlink(
        &self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        if target.len() >= MAXPATHLEN {
            return Err(Errno::ENAMETOOLONG);
        }
        let (mut dp, room) = self.prepare_new(dir, name).await?;
        let (ino, mut ip) = self.ialloc(dir, IFLNK | (perm & 0o7777)).await?;
        ip.nlink = 1;
        ip.uid = uid;
        ip.gid = gid;
        if (target.len() as u64) < self.sb.maxsymlinklen as u64 {
            ip.set_fast_symlink(target);
        } else if !target.is_empty() {
            let r = self.write_data(ino, &mut ip, 0, target).await;
            if !matches!(r, Ok(n) if n == target.len()) {
                self.truncate_blocks(ino, &mut ip, 0).await?;
                self.iput(ino, &mut ip).await?;
                self.ifree(ino, false).await?;
                return Err(r.err().unwrap_or(Errno::ENOSPC));
            }
        }
        self.iput(ino, &mut ip).await?;
        self.link_new(dir, &mut dp, name, ino, &mut ip, room)
            .await?;
        Ok(ino)
    }

    /// `link(dir, name, ino)` — a new name for a non-directory (`EMLINK` at `LINK_MAX`).
    pub async fn link(&self, dir: Ino, name: &[u8], ino: Ino) -> Result<()> {
        let (mut dp, room) = self.prepare_new(dir, name).await?;
        let mut ip = self.iget(ino).await?;
        if ip.is_dir() {
            return Err(Errno::EPERM);
        }
        if ip.flags & NOUNLINK_FLAGS != 0 {
            return Err(Errno::EPERM);
        }
        if ip.nlink >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        if dir == ino {
            return Err(Errno::EIO);
        }
        self.dir_add(dir, &mut dp, name, ino, ip.mode, room).await?;
        let now = self.now();
        dp.mtime = now;
        dp.ctime = now;
        self.iput(dir, &mut dp).await?;
        ip.nlink += 1;
        ip.ctime = now;
        self.iput(ino, &mut ip).await
    }

    /// `unlink(dir, name)` — removes a name of a non-directory (`EPERM` for directories).
    pub async fn unlink(&self, dir: Ino, name: &[u8]) -> Result<()> {
        self.check_rw()?;
        check_name(name)?;
        if is_dot(name) {
            return Err(Errno::EPERM);
        }
        let mut t = Touched(BTreeMap::new());
        self.load(&mut t, dir).await?;
        let f = self
            .dir_find(t.get(dir), name)
            .await?
            .ok_or(Errno::ENOENT)?;
        self.check_ino(f.ino)?;
        if f.ino == dir {
            return Err(Errno::EIO);
        }
        self.load(&mut t, f.ino).await?;
        if t.get(f.ino).is_dir() {
            return Err(Errno::EPERM);
        }
        if t.get(f.ino).flags & NOUNLINK_FLAGS != 0 || t.get(dir).flags & APPEND_FLAGS != 0 {
            return Err(Errno::EPERM);
        }
        self.dir_remove(&f).await?;
        let now = self.now();
        let dp = t.get(dir);
        dp.mtime = now;
        dp.ctime = now;
        let ip = t.get(f.ino);
        ip.nlink = ip.nlink.saturating_sub(1);
        ip.ctime = now;
        self.store(t).await
    }

    /// `rmdir(dir, name)` — removes an empty directory (`ENOTEMPTY`, `ENOTDIR`, `EINVAL` for
    /// `.`).
    pub async fn rmdir(&self, dir: Ino, name: &[u8]) -> Result<()> {
        self.check_rw()?;
        check_name(name)?;
        if name == b"." {
            return Err(Errno::EINVAL);
        }
        if name == b".." {
            return Err(Errno::ENOTEMPTY);
        }
        let mut t = Touched(BTreeMap::new());
        self.load(&mut t, dir).await?;
        let f = self
            .dir_find(t.get(dir), name)
            .await?
            .ok_or(Errno::ENOENT)?;
        self.check_ino(f.ino)?;
        if f.ino == dir || f.ino == ROOTINO {
            return Err(Errno::EIO);
        }
        self.load(&mut t, f.ino).await?;
        if !t.get(f.ino).is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if t.get(f.ino).flags & NOUNLINK_FLAGS != 0 || t.get(dir).flags & APPEND_FLAGS != 0 {
            return Err(Errno::EPERM);
        }
        if !self.dir_is_empty(t.get(f.ino)).await? {
            return Err(Errno::ENOTEMPTY);
        }
        self.dir_remove(&f).await?;
        let now = self.now();
        let dp = t.get(dir);
        dp.nlink = dp.nlink.saturating_sub(1);
        dp.mtime = now;
        dp.ctime = now;
        let ip = t.get(f.ino);
        ip.nlink = 0;
        ip.ctime = now;
        self.store(t).await
    }

    /// Is `dir` inside the tree rooted at `top` (or `top` itself)? Walks `..` to the root.
    /// A chain that comes back to a directory it passed (a `..` pointing into its own
    /// subtree) never reaches the root: `EIO`. So the walk ends within as many steps as
    /// there are directories.
    async fn is_under(&self, dir: Ino, top: Ino) -> Result<bool> {
        let mut cur = dir;
        let mut passed = HashSet::new();
        loop {
            if cur == top {
                return Ok(true);
            }
            if cur == ROOTINO {
                return Ok(false);
            }
            if !passed.insert(cur) {
                return Err(Errno::EIO);
            }
            self.step().await?;
            let dp = self.iget(cur).await?;
            let f = self.dir_find(&dp, b"..").await?.ok_or(Errno::EIO)?;
            self.check_ino(f.ino)?;
            if f.ino == cur {
                return Err(Errno::EIO);
            }
            cur = f.ino;
        }
    }

    /// `rename(sdir, sname, ddir, dname)` — moves a name, replacing a compatible target
    /// (a non-directory, or an empty directory when moving a directory); fixes `..` and the
    /// link counts when a directory changes parent; `EINVAL` when moving a directory into
    /// its own subtree.
    pub async fn rename(&self, sdir: Ino, sname: &[u8], ddir: Ino, dname: &[u8]) -> Result<()> {
        self.check_rw()?;
        check_name(sname)?;
        check_name(dname)?;
        if is_dot(sname) || is_dot(dname) {
            return Err(Errno::EINVAL);
        }
        let mut t = Touched(BTreeMap::new());
        self.load(&mut t, sdir).await?;
        self.load(&mut t, ddir).await?;
        self.check_dir(t.get(ddir))?;
        if t.get(ddir).nlink == 0 {
            return Err(Errno::ENOENT);
        }
        let src = self
            .dir_find(t.get(sdir), sname)
            .await?
            .ok_or(Errno::ENOENT)?;
        self.check_ino(src.ino)?;
        if src.ino == sdir {
            return Err(Errno::EIO);
        }
        self.load(&mut t, src.ino).await?;
        let smode = t.get(src.ino).mode;
        let s_is_dir = smode & IFMT == IFDIR;
        if t.get(src.ino).flags & NOUNLINK_FLAGS != 0 || t.get(sdir).flags & APPEND_FLAGS != 0 {
            return Err(Errno::EPERM);
        }
        let moving_dir = s_is_dir && sdir != ddir;
        if moving_dir && self.is_under(ddir, src.ino).await? {
            return Err(Errno::EINVAL);
        }
        let dst = self.dir_find(t.get(ddir), dname).await?;
        let now = self.now();
        match &dst {
            Some(d) if d.ino == src.ino => return Ok(()),
            Some(d) => {
                self.check_ino(d.ino)?;
                if d.ino == ddir {
                    return Err(Errno::EIO);
                }
                self.load(&mut t, d.ino).await?;
                let target = t.get(d.ino).clone();
                if target.flags & NOUNLINK_FLAGS != 0 {
                    return Err(Errno::EPERM);
                }
                if s_is_dir {
                    if !target.is_dir() {
                        return Err(Errno::ENOTDIR);
                    }
                    if !self.dir_is_empty(&target).await? {
                        return Err(Errno::ENOTEMPTY);
                    }
                } else if target.is_dir() {
                    return Err(Errno::EISDIR);
                }
                self.dir_set(d, src.ino, smode).await?;
                let tip = t.get(d.ino);
                if target.is_dir() {
                    tip.nlink = 0;
                    // The replaced directory's `..` no longer links its parent.
                    let dp = t.get(ddir);
                    dp.nlink = dp.nlink.saturating_sub(1);
                } else {
                    tip.nlink = tip.nlink.saturating_sub(1);
                }
                t.get(d.ino).ctime = now;
            }
            None => {
                if moving_dir && t.get(ddir).nlink >= LINK_MAX {
                    return Err(Errno::EMLINK);
                }
                let mut dp = t.get(ddir).clone();
                let r = self
                    .dir_add(ddir, &mut dp, dname, src.ino, smode, None)
                    .await;
                *t.get(ddir) = dp;
                if let Err(e) = r {
                    self.store(t).await?;
                    return Err(e);
                }
            }
        }
        // Adding may have compacted the chunk holding the source: look it up again.
        let again = self
            .dir_find_through(t.get(sdir), sname)
            .await?
            .ok_or(Errno::EIO)?;
        if again.ino != src.ino {
            return Err(Errno::EIO);
        }
        self.dir_remove(&again).await?;
        if moving_dir {
            let dotdot = self
                .dir_find_through(t.get(src.ino), b"..")
                .await?
                .ok_or(Errno::EIO)?;
            self.dir_set(&dotdot, ddir, IFDIR).await?;
            let sp = t.get(sdir);
            sp.nlink = sp.nlink.saturating_sub(1);
            t.get(ddir).nlink += 1;
        }
        t.get(src.ino).ctime = now;
        for d in [sdir, ddir] {
            let dp = t.get(d);
            dp.mtime = now;
            dp.ctime = now;
        }
        self.store(t).await
    }
}
