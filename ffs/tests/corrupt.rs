//! Corrupted images: the mount is refused or operations fail with `EIO`/`EINVAL`, never a
//! panic, a hang or I/O outside the image; the checker reports each damage. Also `ENOSPC`
//! on a full file system leaves it consistent, and unlinked-but-referenced inodes.

mod common;
use common::*;
use ffs::sb::{SbError, Superblock};
use ffs::{block_on, check, Disk, Errno, Fs, Ino, MemDisk, MountOptions};

/// A disk that fails the test on any request outside it (the engine must check first).
#[derive(Clone)]
struct Strict(MemDisk);

impl Disk for Strict {
    fn size(&self) -> u64 {
        self.0.size()
    }
    async fn read(&self, off: u64, buf: &mut [u8]) -> ffs::Result<()> {
        assert!(
            off + buf.len() as u64 <= self.0.size(),
            "read outside the disk at {off}"
        );
        self.0.read(off, buf).await
    }
    async fn write(&self, off: u64, buf: &[u8]) -> ffs::Result<()> {
        assert!(
            off + buf.len() as u64 <= self.0.size(),
            "write outside the disk at {off}"
        );
        self.0.write(off, buf).await
    }
    async fn flush(&self) -> ffs::Result<()> {
        Ok(())
    }
}

fn poke16(d: &MemDisk, off: u64, v: u16) {
    d.with_bytes(|b| b[off as usize..off as usize + 2].copy_from_slice(&v.to_le_bytes()));
}

fn mount_err(d: &MemDisk) -> Errno {
    block_on(Fs::mount(d.clone(), MountOptions::default())).expect_err("mount refused")
}

fn findings(d: &MemDisk) -> Vec<String> {
    block_on(check(d)).expect("superblock found")
}

fn dir_block_off(b: &Base, d: &MemDisk, ino: Ino) -> u64 {
    let mut raw = [0u8; 8];
    let off = db_off(b, ino, 0);
    d.with_bytes(|x| raw.copy_from_slice(&x[off as usize..off as usize + 8]));
    let p = if b.sb.ufs2 {
        u64::from_le_bytes(raw)
    } else {
        u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as u64
    };
    b.sb.frag_offset(p)
}

#[test]
fn bad_superblocks_are_refused() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let loc = b.sb.sblockloc;
        let d = copy(&b);
        poke32(&d, loc + 1372, 0x1234);
        assert_eq!(mount_err(&d), Errno::EINVAL);
        assert_eq!(block_on(check(&d)), Err(SbError::NotFfs));
        let d = copy(&b);
        let swapped = if ufs2 { 0x19015419u32 } else { 0x54190100 };
        poke32(&d, loc + 1372, swapped);
        assert_eq!(mount_err(&d), Errno::EINVAL);
        assert_eq!(block_on(check(&d)), Err(SbError::BigEndian));
        for (off, v) in [
            (48u64, 3000u32),
            (48, 1 << 20),
            (52, 0),
            (56, 3),
            (44, 0),
            (44, 1000),
            (184, 0),
            (184, 0x7fff_0000),
            (188, 7),
            (156, 0),
            (104, 100),
            (160, 1 << 20),
            (116, 5),
            (120, 1),
            (20, 1 << 30),
        ] {
            let d = copy(&b);
            poke32(&d, loc + off, v);
            assert_eq!(mount_err(&d), Errno::EINVAL, "field at {off} = {v}");
        }
        let d = copy(&b);
        let size_off = loc + 1080;
        d.with_bytes(|x| {
            x[size_off as usize..size_off as usize + 8].copy_from_slice(&(1u64 << 40).to_le_bytes())
        });
        assert_eq!(mount_err(&d), Errno::EINVAL);
        // A file system larger than its device: refused read-write.
        let d = MemDisk::from_vec(b.disk.to_vec()[..6 << 20].to_vec());
        assert_eq!(mount_err(&d), Errno::EINVAL);
    }
}

#[test]
fn bad_cylinder_groups_and_inodes() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        // A cylinder group with a bad magic: mount refused, checker names it.
        let d = copy(&b);
        poke32(&d, b.sb.frag_offset(b.sb.cgtod(0)) + 4, 0xdead);
        assert_eq!(mount_err(&d), Errno::EINVAL);
        assert!(findings(&d).iter().any(|f| f.contains("bad magic")));
        // Wrong counts in a group: mounted (the maps win), reported by the checker.
        let d = copy(&b);
        poke32(&d, b.sb.frag_offset(b.sb.cgtod(0)) + 28, 12345);
        assert!(!findings(&d).is_empty());
        let fs = block_on(Fs::mount(d.clone(), MountOptions::default())).unwrap();
        block_on(fs.unmount()).unwrap();
        assert_clean(&d, "after a mount repaired the counts");
        // A block pointer past the end of the file system.
        let d = copy(&b);
        poke_ptr(&b, &d, db_off(&b, b.file, 0), 1 << 30);
        let fs = mount(&d);
        let mut buf = [0u8; 100];
        assert_eq!(block_on(fs.read(b.file, 0, &mut buf)), Err(Errno::EIO));
        drop(fs);
        assert!(findings(&d).iter().any(|f| f.contains("outside")));
        // A block pointer into the inode area, and an indirect pointer into the group block.
        let d = copy(&b);
        poke_ptr(&b, &d, db_off(&b, b.file, 0), b.sb.cgimin(0));
        let ind = db_off(&b, b.big, 12);
        poke_ptr(&b, &d, ind, b.sb.cgtod(0));
        let fs = mount(&d);
        assert_eq!(block_on(fs.read(b.file, 0, &mut buf)), Err(Errno::EIO));
        assert_eq!(block_on(fs.read(b.big, 1 << 20, &mut buf)), Err(Errno::EIO));
        assert_eq!(block_on(fs.write(b.big, 1 << 20, &buf)), Err(Errno::EIO));
        drop(fs);
        assert!(findings(&d).iter().any(|f| f.contains("metadata")));
        // A huge size.
        let d = copy(&b);
        let so = b.sb.inode_offset(b.file) + if ufs2 { 16 } else { 8 };
        d.with_bytes(|x| {
            x[so as usize..so as usize + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes())
        });
        let fs = mount(&d);
        assert_eq!(block_on(fs.read(b.file, 0, &mut buf)), Err(Errno::EIO));
        assert_eq!(block_on(fs.getattr(b.file)).err(), Some(Errno::EIO));
        drop(fs);
        assert!(!findings(&d).is_empty());
    }
}

#[test]
fn bad_directories() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let root = 2;
        // A record length that runs off the chunk, and one that is not a multiple of 4.
        for reclen in [600u16, 6, 13] {
            let d = copy(&b);
            let blk = dir_block_off(&b, &d, b.dir);
            poke16(&d, blk + 12 + 4, reclen);
            let fs = mount(&d);
            assert_eq!(block_on(fs.lookup(b.dir, b"file")), Err(Errno::EIO));
            assert_eq!(block_on(fs.readdir(b.dir, 0, 100)).err(), Some(Errno::EIO));
            assert_eq!(
                block_on(fs.create(b.dir, b"new", 0o100644, 0, 0, 0)).err(),
                Some(Errno::EIO)
            );
            drop(fs);
            assert!(findings(&d).iter().any(|f| f.contains("bad entry")));
        }
        // A name length that does not fit its record.
        let d = copy(&b);
        let blk = dir_block_off(&b, &d, b.dir);
        d.with_bytes(|x| x[(blk + 7) as usize] = 200);
        let fs = mount(&d);
        assert_eq!(block_on(fs.lookup(b.dir, b"file")), Err(Errno::EIO));
        drop(fs);
        // An entry pointing to an inode number past the end.
        let d = copy(&b);
        let fs = mount(&d);
        let ents = block_on(fs.readdir(b.dir, 0, 100)).unwrap();
        drop(fs);
        let file_off = ents.iter().position(|e| e.name == b"file").unwrap();
        let prev = if file_off == 0 {
            0
        } else {
            ents[file_off - 1].next
        };
        poke32(&d, blk + prev, 0x7fff_fff0);
        let fs = mount(&d);
        assert_eq!(block_on(fs.lookup(b.dir, b"file")), Err(Errno::EIO));
        drop(fs);
        assert!(!findings(&d).is_empty());
        // A loop: sub's `..` points to sub itself; a second parent: sub linked from root.
        let d = copy(&b);
        let sblk = dir_block_off(&b, &d, b.sub);
        poke32(&d, sblk + 12, b.sub);
        let fs = mount(&d);
        let other = block_on(fs.mkdir(root, b"other", 0o755, 0, 0)).unwrap();
        assert_eq!(
            block_on(fs.rename(root, b"other", b.sub, b"o")),
            Err(Errno::EIO)
        );
        let _ = other;
        drop(fs);
        assert!(findings(&d).iter().any(|f| f.contains("'..'")));
        let d = copy(&b);
        let rblk = dir_block_off(&b, &d, root);
        poke32(&d, rblk + 12, b.sub); // root's `..` entry now names sub
        assert!(!findings(&d).is_empty());
    }
}

/// Flips random bytes in the metadata of an image; whatever happens, nothing panics or
/// hangs, and every call returns.
#[test]
fn fuzzed_metadata_never_panics() {
    let mut rng = Rng(seed());
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let meta_end = b.sb.frag_offset(b.sb.cgdmin(0)) + 64 * 1024;
        let rounds = std::env::var("RUMP_FFS_FUZZ_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        for round in 0..rounds {
            let d = copy(&b);
            let flips = 1 + rng.below(40);
            d.with_bytes(|x| {
                for _ in 0..flips {
                    let at = if rng.below(3) == 0 {
                        b.sb.sblockloc + rng.below(1400)
                    } else {
                        rng.below(meta_end)
                    };
                    x[at as usize] ^= 1 << rng.below(8);
                }
            });
            let _ = block_on(check(&Strict(d.clone())));
            let ro = rng.below(2) == 0;
            let opts = MountOptions {
                read_only: ro,
                ..MountOptions::default()
            };
            let Ok(fs) = block_on(Fs::mount(Strict(d.clone()), opts)) else {
                continue;
            };
            let mut budget = 2000;
            walk(&fs, fs.root(), 0, &mut budget);
            if !ro {
                let root = fs.root();
                let _ = block_on(fs.create(root, b"fz", 0o100644, 0, 0, 0));
                if let Ok(f) = block_on(fs.lookup(root, b"fz")) {
                    let _ = block_on(fs.write(f, 0, &[1; 20000]));
                }
                let _ = block_on(fs.mkdir(b.dir, b"m", 0o755, 0, 0));
                let _ = block_on(fs.rename(2, b"dir", b.sub, b"x"));
                let _ = block_on(fs.unlink(b.dir, b"file"));
                let _ = block_on(fs.truncate(b.big, 1000));
                let _ = block_on(fs.rmdir(b.dir, b"sub"));
                let _ = block_on(fs.unmount());
            }
            let _ = round;
        }
    }
}

fn walk(fs: &Fs<Strict>, d: Ino, depth: usize, budget: &mut usize) {
    if depth > 40 || *budget == 0 {
        return;
    }
    let Ok(ents) = block_on(fs.readdir(d, 0, 1000)) else {
        return;
    };
    for e in ents {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let Ok(a) = block_on(fs.getattr(e.ino)) else {
            continue;
        };
        let mut buf = vec![0u8; 70_000];
        let _ = block_on(fs.read(e.ino, 0, &mut buf));
        let _ = block_on(fs.readlink(e.ino));
        if a.mode & 0o170000 == 0o040000 {
            walk(fs, e.ino, depth + 1, budget);
        }
    }
}

#[test]
fn enospc_leaves_the_image_consistent() {
    for ufs2 in [false, true] {
        let disk = fresh(2 << 20, ufs2, Some(4096));
        let fs = mount(&disk);
        let root = fs.root();
        let f = block_on(fs.create(root, b"fill", 0o100644, 0, 0, 0)).unwrap();
        let chunk = vec![0x55u8; 100_000];
        let mut off = 0u64;
        loop {
            match block_on(fs.write(f, off, &chunk)) {
                Ok(n) if n == chunk.len() => off += n as u64,
                Ok(n) => off += n as u64,
                Err(e) => {
                    assert_eq!(e, Errno::ENOSPC);
                    break;
                }
            }
        }
        assert!(off > 1 << 20, "only {off} bytes fit");
        assert_eq!(block_on(fs.getattr(f)).unwrap().size, off);
        // Small files, directories and symlinks until nothing fits either.
        let mut made = 0;
        for i in 0..10_000 {
            let name = format!("n{i}");
            let r = match i % 3 {
                0 => block_on(fs.create(root, name.as_bytes(), 0o100644, 0, 0, 0))
                    .and_then(|x| block_on(fs.write(x, 0, &[1; 700])).map(|_| x)),
                1 => block_on(fs.mkdir(root, name.as_bytes(), 0o755, 0, 0)),
                _ => block_on(fs.symlink(root, name.as_bytes(), &[b's'; 300], 0o755, 0, 0)),
            };
            match r {
                Ok(_) => made += 1,
                Err(e) => {
                    assert_eq!(e, Errno::ENOSPC);
                    if i > 50 {
                        break;
                    }
                }
            }
        }
        let _ = made;
        assert!(fs.statvfs().bfree < 8);
        block_on(fs.sync()).unwrap();
        assert_clean(&disk, "when full");
        block_on(fs.truncate(f, 1000)).unwrap();
        let g = block_on(fs.create(root, b"after", 0o100644, 0, 0, 0)).unwrap();
        assert_eq!(block_on(fs.write(g, 0, &[3; 200_000])).unwrap(), 200_000);
        block_on(fs.unmount()).unwrap();
        assert_clean(&disk, "after freeing space");
    }
}

#[test]
fn referenced_inode_outlives_its_name() {
    let disk = fresh(4 << 20, true, None);
    let fs = mount(&disk);
    let root = fs.root();
    let f = block_on(fs.create(root, b"tmp", 0o100644, 0, 0, 0)).unwrap();
    block_on(fs.write(f, 0, b"still here")).unwrap();
    fs.retain(f);
    let free_before = fs.statvfs().ffree;
    block_on(fs.unlink(root, b"tmp")).unwrap();
    let mut b = [0u8; 10];
    assert_eq!(block_on(fs.read(f, 0, &mut b)).unwrap(), 10);
    assert_eq!(&b, b"still here");
    assert_eq!(fs.statvfs().ffree, free_before);
    block_on(fs.release(f)).unwrap();
    assert_eq!(fs.statvfs().ffree, free_before + 1);
    // Unmount frees what is still referenced but unlinked.
    let g = block_on(fs.create(root, b"tmp2", 0o100644, 0, 0, 0)).unwrap();
    fs.retain(g);
    block_on(fs.unlink(root, b"tmp2")).unwrap();
    block_on(fs.unmount()).unwrap();
    assert_clean(&disk, "after unmount with a referenced orphan");
}

#[test]
fn clean_flag_and_read_only() {
    let disk = fresh(4 << 20, false, None);
    let sb = block_on(Superblock::find(&disk)).unwrap();
    assert_eq!(sb.clean, 1);
    let fs = mount(&disk);
    assert_eq!(
        block_on(Superblock::find(&disk)).unwrap().clean,
        2,
        "WASCLEAN while mounted"
    );
    block_on(fs.unmount()).unwrap();
    assert_eq!(block_on(Superblock::find(&disk)).unwrap().clean, 1);
    let ro = MountOptions {
        read_only: true,
        ..MountOptions::default()
    };
    let fs = block_on(Fs::mount(disk.clone(), ro)).unwrap();
    let root = fs.root();
    assert_eq!(
        block_on(fs.create(root, b"x", 0o100644, 0, 0, 0)),
        Err(Errno::EROFS)
    );
    assert_eq!(
        block_on(fs.mkdir(root, b"x", 0o755, 0, 0)),
        Err(Errno::EROFS)
    );
    let st = fs.statvfs();
    assert_eq!(
        st.bfree,
        (sb.cstotal.nbfree * sb.frag as i64 + sb.cstotal.nffree) as u64
    );
    assert_eq!(st.files, sb.ninodes() - 2);
    assert_eq!(st.bresvd, sb.dsize * 5 / 100);
}

// ---- walks whose length the image decides (issue 19) -------------------------------------

fn inode(b: &Base, d: &MemDisk, ino: Ino) -> ffs::inode::Dinode {
    let off = b.sb.inode_offset(ino) as usize;
    let n = b.sb.inode_size() as usize;
    d.with_bytes(|x| ffs::inode::Dinode::decode(b.sb.ufs2, &x[off..off + n]))
}

fn put_inode(b: &Base, d: &MemDisk, ino: Ino, mut ip: ffs::inode::Dinode) {
    let off = b.sb.inode_offset(ino) as usize;
    let raw = ip.encode().to_vec();
    d.with_bytes(|x| x[off..off + raw.len()].copy_from_slice(&raw));
}

/// Pointer `i` of the indirect block at fragment `blk`: its byte offset.
fn ind_off(b: &Base, blk: u64, i: u64) -> u64 {
    b.sb.frag_offset(blk) + i * if b.sb.ufs2 { 8 } else { 4 }
}

/// Fills the block at fragment `blk` with empty directory chunks (a valid directory block).
fn empty_chunks(b: &Base, d: &MemDisk, blk: u64) {
    let off = b.sb.frag_offset(blk);
    for c in 0..b.sb.bsize as u64 / 512 {
        poke32(d, off + c * 512, 0);
        poke16(d, off + c * 512 + 4, 512);
    }
}

/// Runs `f` on a thread and fails the test if it takes longer than 10 s (a stalled walk).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: still walking after 10 s"))
}

#[test]
fn a_directory_larger_than_its_space_is_eio() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let d = copy(&b);
        // 5.5e11 bytes, every direct pointer to its one block: more than its space, and
        // (with di_blocks raised to the whole file system) more than the file system.
        let mut ip = inode(&b, &d, b.dir);
        ip.size = 550_000_000_000 / 4096 * 4096;
        ip.db = [ip.db[0]; 12];
        put_inode(&b, &d, b.dir, ip.clone());
        let (fs, dir) = (mount(&d), b.dir);
        let r = bounded("lookup", move || block_on(fs.lookup(dir, b"nope")));
        assert_eq!(r, Err(Errno::EIO), "ufs2={ufs2}");
        ip.blocks = (b.sb.bytes() / 512) + 1;
        put_inode(&b, &d, b.dir, ip.clone());
        let fs = mount(&d);
        assert_eq!(block_on(fs.readdir(b.dir, 0, 10)), Err(Errno::EIO));
        assert_eq!(block_on(fs.getattr(b.dir)), Err(Errno::EIO));
        ip.blocks = b.sb.bytes() / 512;
        put_inode(&b, &d, b.dir, ip);
        let fs = mount(&d);
        let r = bounded("lookup", move || block_on(fs.lookup(dir, b"nope")));
        assert_eq!(r, Err(Errno::EIO), "ufs2={ufs2}: all the space");
    }
}

#[test]
fn a_directory_reaching_one_block_twice_is_eio() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let d = copy(&b);
        // A whole block of valid chunks (the big file's first), pointed to four times.
        let one = inode(&b, &d, b.big).db[0];
        empty_chunks(&b, &d, one);
        let mut ip = inode(&b, &d, b.dir);
        ip.db[..4].copy_from_slice(&[one; 4]);
        ip.size = 4 * b.sb.bsize as u64;
        ip.blocks = ip.size / 512;
        put_inode(&b, &d, b.dir, ip.clone());
        let fs = mount(&d);
        assert_eq!(block_on(fs.lookup(b.dir, b"nope")), Err(Errno::EIO));
        assert_eq!(block_on(fs.readdir(b.dir, 0, 1000)), Err(Errno::EIO));
        // Once only: a valid (if odd) directory.
        ip.db[1..4].copy_from_slice(&[0; 3]);
        ip.size = b.sb.bsize as u64;
        put_inode(&b, &d, b.dir, ip);
        let fs = mount(&d);
        assert_eq!(block_on(fs.lookup(b.dir, b"nope")), Err(Errno::ENOENT));
    }
}

#[test]
fn an_indirect_block_pointing_to_itself_is_eio() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let bs = b.sb.bsize as u64;
        let d = copy(&b);
        let x = inode(&b, &d, b.big).ib[0];
        poke_ptr(&b, &d, ind_off(&b, x, 0), x);
        let fs = mount(&d);
        let mut buf = vec![0u8; 100];
        assert_eq!(block_on(fs.read(b.big, 12 * bs, &mut buf)), Err(Errno::EIO));
        assert_eq!(
            block_on(fs.read(b.big, 0, &mut buf)),
            Ok(100),
            "direct blocks"
        );
        // Truncation meets it as a data block that is its own indirect block.
        let big = b.big;
        let r = bounded("truncate", move || block_on(fs.truncate(big, 0)));
        assert_eq!(r, Err(Errno::EIO));
        if ufs2 {
            // The double-indirect block points to itself.
            let d = copy(&b);
            let y = inode(&b, &d, b.big).ib[1];
            assert_ne!(y, 0, "3 MiB of 4 KiB blocks reach the double indirect tree");
            poke_ptr(&b, &d, ind_off(&b, y, 0), y);
            let fs = mount(&d);
            let start = (12 + b.sb.nindir as u64) * bs;
            assert_eq!(block_on(fs.read(b.big, start, &mut buf)), Err(Errno::EIO));
            assert_eq!(block_on(fs.truncate(b.big, 0)), Err(Errno::EIO));
        }
    }
}

#[test]
fn a_dotdot_cycle_ends_a_rename_with_eio() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let d = copy(&b);
        let fs = mount(&d);
        let root = fs.root();
        block_on(fs.mkdir(root, b"m", 0o755, 0, 0)).unwrap();
        block_on(fs.unmount()).unwrap();
        // dir/sub is below dir; now dir's `..` says sub: dir -> sub -> dir -> ...
        let off = dir_block_off(&b, &d, b.dir);
        poke32(&d, off + 12, b.sub);
        let fs = mount(&d);
        let (sub, dir) = (b.sub, b.dir);
        let r = bounded("rename", move || {
            let r = block_on(fs.rename(root, b"m", sub, b"m"));
            (r, block_on(fs.rename(root, b"m", dir, b"m")))
        });
        assert_eq!(r, (Err(Errno::EIO), Err(Errno::EIO)), "ufs2={ufs2}");
    }
}

#[test]
fn huge_sparse_files_truncate_in_bounded_work() {
    for ufs2 in [false, true] {
        let b = base(ufs2);
        let d = copy(&b);
        let fs = mount(&d);
        let root = fs.root();
        let f = block_on(fs.create(root, b"sparse", 0o100644, 0, 0, 0)).unwrap();
        // One byte near the end of the triple-indirect tree, one in each other tree.
        let far = fs.superblock().maxfilesize - 1;
        let n = fs.superblock().nindir as u64;
        let bs = b.sb.bsize as u64;
        for off in [0, 12 * bs, (12 + n) * bs, (12 + n + n * n) * bs, far] {
            block_on(fs.write(f, off, b"x")).unwrap();
        }
        block_on(fs.truncate(f, 20 * bs)).unwrap();
        block_on(fs.truncate(f, far)).unwrap();
        block_on(fs.truncate(f, 0)).unwrap();
        block_on(fs.write(f, far - 1, b"x")).unwrap();
        block_on(fs.unmount()).unwrap();
        assert_clean(&d, "after truncating a huge sparse file");
        // The triple tree with its top pointing to its one child everywhere: the child is
        // met twice (EIO), not walked nindir times.
        let top = inode(&b, &d, f).ib[2];
        let child = {
            let mut x = [0u8; 8];
            let o = ind_off(&b, top, n - 1) as usize;
            let ps = if ufs2 { 8 } else { 4 };
            d.with_bytes(|bytes| x[..ps].copy_from_slice(&bytes[o..o + ps]));
            u64::from_le_bytes(x)
        };
        assert_ne!(child, 0);
        for i in 0..n - 1 {
            poke_ptr(&b, &d, ind_off(&b, top, i), child);
        }
        let fs = mount(&d);
        let r = bounded("truncate", move || block_on(fs.truncate(f, 0)));
        assert_eq!(r, Err(Errno::EIO), "ufs2={ufs2}");
    }
}

/// A disk whose `pace` answers EINTR after `left` calls (a caller that went away).
struct Interrupting {
    disk: MemDisk,
    left: std::sync::atomic::AtomicU32,
}

impl Disk for Interrupting {
    fn size(&self) -> u64 {
        self.disk.size()
    }
    async fn read(&self, off: u64, buf: &mut [u8]) -> ffs::Result<()> {
        self.disk.read(off, buf).await
    }
    async fn write(&self, off: u64, buf: &[u8]) -> ffs::Result<()> {
        self.disk.write(off, buf).await
    }
    async fn flush(&self) -> ffs::Result<()> {
        Ok(())
    }
    async fn pace(&self) -> ffs::Result<()> {
        use std::sync::atomic::Ordering;
        let left = self.left.load(Ordering::Relaxed);
        if left == 0 {
            return Err(Errno::EINTR);
        }
        self.left.store(left - 1, Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn walks_that_change_nothing_stop_when_paced_with_eintr() {
    let b = base(true);
    let d = copy(&b);
    let fs = mount(&d);
    // A directory of several blocks.
    for i in 0..600 {
        block_on(fs.create(b.dir, format!("name-{i:04}").as_bytes(), 0o100644, 0, 0, 0)).unwrap();
    }
    block_on(fs.unmount()).unwrap();
    let disk = Interrupting {
        disk: d.clone(),
        left: std::sync::atomic::AtomicU32::new(u32::MAX),
    };
    let fs = block_on(Fs::mount(disk, MountOptions::default())).unwrap();
    let hit = block_on(fs.lookup(b.dir, b"name-0599")).unwrap();
    fs.disk()
        .left
        .store(1, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(block_on(fs.lookup(b.dir, b"name-0599")), Err(Errno::EINTR));
    assert_eq!(block_on(fs.readdir(b.dir, 0, 1000)), Err(Errno::EINTR));
    let mut buf = vec![0u8; 1 << 20];
    assert_eq!(block_on(fs.read(b.big, 0, &mut buf)), Err(Errno::EINTR));
    // Truncation goes on: the maps stay consistent.
    block_on(fs.truncate(b.big, 0)).unwrap();
    block_on(fs.unlink(b.dir, b"name-0599")).expect_err("the lookup part stops");
    fs.disk()
        .left
        .store(u32::MAX, std::sync::atomic::Ordering::Relaxed);
    block_on(fs.unlink(b.dir, b"name-0599")).unwrap();
    assert_eq!(block_on(fs.lookup(b.dir, b"name-0599")), Err(Errno::ENOENT));
    assert_ne!(hit, 0);
    block_on(fs.unmount()).unwrap();
    assert_clean(&d, "after interrupted walks");
}
