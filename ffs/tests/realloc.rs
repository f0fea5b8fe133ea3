//! A file's last fragments grown where they cannot grow in place, as NetBSD's
//! `ffs_realloccg` does it (issue 13): `ffs_fragextend` first; else, under `FS_OPTTIME`
//! (newfs's default `fs_optim`), a whole block is allocated and its unused tail freed at
//! once, so the file's next growth is in place; under `FS_OPTSPACE` exactly the new size.
//! The file system switches to SPACE when loose fragments reach `minfree - 2` percent of
//! the data area, and back to TIME when they fall to half of `minfree` (with `minfree` of
//! 5 or more); `fs_optim` is written with the superblock.
//!
//! The engine used to move a fragment run to an exact-size run (SPACE) always: the
//! cross-server workload's UFS2 image (tests/ffs_cross.rs) had 55 free fragments where
//! NetBSD's had 63, and 2193 free blocks where NetBSD's had 2192.

use ffs::inode::Dinode;
use ffs::{block_on, Fs, MemDisk, MountOptions, NewfsOptions};

const FS_OPTTIME: u32 = 0;
const FS_OPTSPACE: u32 = 1;
/// `fs_optim` in `struct fs`.
const OPTIM_OFF: usize = 128;

fn dinode(fs: &Fs<MemDisk>, disk: &MemDisk, ino: u32) -> Dinode {
    let sb = fs.superblock();
    let off = sb.inode_offset(ino) as usize;
    let raw = disk.with_bytes(|b| b[off..off + sb.inode_size() as usize].to_vec());
    Dinode::decode(sb.ufs2, &raw)
}

fn fresh(ufs2: bool, minfree: u32) -> MemDisk {
    let disk = MemDisk::new(16 << 20);
    let opts = NewfsOptions {
        ufs2,
        bsize: Some(4096),
        fsize: Some(512),
        minfree,
        ..NewfsOptions::default()
    };
    block_on(ffs::newfs(&disk, &opts)).unwrap();
    disk
}

fn optim_on_disk(disk: &MemDisk, fs_sblockloc: u64) -> u32 {
    let off = fs_sblockloc as usize + OPTIM_OFF;
    disk.with_bytes(|b| u32::from_le_bytes(b[off..off + 4].try_into().unwrap()))
}

fn set_optim_on_disk(disk: &MemDisk, sblockloc: u64, v: u32) {
    let off = sblockloc as usize + OPTIM_OFF;
    disk.with_bytes(|b| b[off..off + 4].copy_from_slice(&v.to_le_bytes()));
}

/// Two one-fragment files, `a` and `b`, where `a` cannot grow in place: the fragment after
/// `a`'s is `b`'s or one of the files' of the test before. Returns (a, a's fragment).
fn blocked_pair(fs: &Fs<MemDisk>, disk: &MemDisk, tag: &str) -> (u32, u64) {
    let root = fs.root();
    let a = block_on(fs.create(root, format!("{tag}a").as_bytes(), 0o100644, 0, 0, 0)).unwrap();
    block_on(fs.write(a, 0, &[1u8; 512])).unwrap();
    let b = block_on(fs.create(root, format!("{tag}b").as_bytes(), 0o100644, 0, 0, 0)).unwrap();
    block_on(fs.write(b, 0, &[2u8; 512])).unwrap();
    let fa = dinode(fs, disk, a).db[0];
    let next_used = block_on(fs.readdir(root, 0, 1 << 20))
        .unwrap()
        .iter()
        .filter(|e| e.ino != a && e.name != b"." && e.name != b"..")
        .any(|e| {
            let ip = dinode(fs, disk, e.ino);
            let n = ip.size.div_ceil(512).min(8);
            ip.db[0] <= fa + 1 && fa + 1 < ip.db[0] + n
        });
    assert!(next_used, "{tag}: the fragment after {fa} is in use");
    (a, fa)
}

/// The grown file reads back what was written: the old data moved, 3 at each of `threes`,
/// zeros elsewhere.
fn check_data(fs: &Fs<MemDisk>, ino: u32, len: usize, threes: &[usize]) {
    let mut buf = vec![0u8; len];
    assert_eq!(block_on(fs.read(ino, 0, &mut buf)).unwrap(), len);
    for (i, &x) in buf.iter().enumerate() {
        let want = match i {
            _ if i < 512 => 1,
            _ if threes.contains(&i) => 3,
            _ => 0,
        };
        assert_eq!(x, want, "byte {i}");
    }
}

#[test]
fn opttime_moves_a_fragment_into_a_whole_block_and_frees_its_tail() {
    for ufs2 in [true, false] {
        let disk = fresh(ufs2, 5);
        let fs = block_on(Fs::mount(disk.clone(), MountOptions::default())).unwrap();
        let sb = fs.superblock().clone();
        let frag = sb.frag as u64;
        assert_eq!(
            optim_on_disk(&disk, sb.sblockloc),
            FS_OPTTIME,
            "newfs's default"
        );
        let (a, old) = blocked_pair(&fs, &disk, "t");
        let b = block_on(fs.lookup(fs.root(), b"tb")).unwrap();
        let before = fs.statvfs().bfree;
        // 1000 bytes: two fragments, and the one after `a`'s is `b`'s.
        block_on(fs.write(a, 999, &[3u8])).unwrap();
        let new = dinode(&fs, &disk, a).db[0];
        assert_ne!(
            new / frag,
            old / frag,
            "ufs2={ufs2}: moved to another block"
        );
        assert_eq!(
            new % frag,
            0,
            "ufs2={ufs2}: at a whole block's start ({new})"
        );
        // A whole block taken, six of its fragments and the old one given back: one more
        // fragment in use.
        assert_eq!(fs.statvfs().bfree, before - 1, "ufs2={ufs2}");
        check_data(&fs, a, 1000, &[999]);
        // The next growth is in place: the block's tail was freed, not kept.
        block_on(fs.write(a, 3999, &[3u8])).unwrap();
        assert_eq!(
            dinode(&fs, &disk, a).db[0],
            new,
            "ufs2={ufs2}: grown in place"
        );
        check_data(&fs, a, 4000, &[999, 3999]);
        assert_eq!(dinode(&fs, &disk, b).db[0], old + 1);
        block_on(fs.unmount()).unwrap();
        assert_eq!(optim_on_disk(&disk, sb.sblockloc), FS_OPTTIME);
        assert!(block_on(ffs::check(&disk)).unwrap().is_empty());
    }
}

#[test]
fn a_low_minfree_switches_to_optspace_after_one_whole_block() {
    // minfree 2: TIME's threshold (minfree - 2 percent of the data area) is 0 loose
    // fragments, so the first move switches to SPACE (yet takes its whole block), and
    // SPACE never switches back below a minfree of 5.
    let disk = fresh(true, 2);
    let fs = block_on(Fs::mount(disk.clone(), MountOptions::default())).unwrap();
    let sb = fs.superblock().clone();
    let frag = sb.frag as u64;
    let (a, _) = blocked_pair(&fs, &disk, "x");
    block_on(fs.write(a, 999, &[3u8])).unwrap();
    assert_eq!(
        dinode(&fs, &disk, a).db[0] % frag,
        0,
        "the switching move: TIME's block"
    );
    block_on(fs.sync()).unwrap();
    assert_eq!(
        optim_on_disk(&disk, sb.sblockloc),
        FS_OPTSPACE,
        "written at sync"
    );
    let (c, old) = blocked_pair(&fs, &disk, "y");
    let before = fs.statvfs().bfree;
    block_on(fs.write(c, 999, &[3u8])).unwrap();
    let new = dinode(&fs, &disk, c).db[0];
    assert_ne!(new, old);
    // Exactly two fragments taken (best fit), the old one given back.
    assert_eq!(fs.statvfs().bfree, before - 1);
    check_data(&fs, c, 1000, &[999]);
    block_on(fs.unmount()).unwrap();
    assert_eq!(optim_on_disk(&disk, sb.sblockloc), FS_OPTSPACE);
    assert!(block_on(ffs::check(&disk)).unwrap().is_empty());
}

#[test]
fn optspace_with_little_fragmentation_switches_back_to_opttime() {
    for ufs2 in [true, false] {
        let disk = fresh(ufs2, 5);
        let sblockloc = {
            let fs = block_on(Fs::mount(disk.clone(), MountOptions::default())).unwrap();
            let l = fs.superblock().sblockloc;
            block_on(fs.unmount()).unwrap();
            l
        };
        set_optim_on_disk(&disk, sblockloc, FS_OPTSPACE);
        let fs = block_on(Fs::mount(disk.clone(), MountOptions::default())).unwrap();
        let frag = fs.superblock().frag as u64;
        // SPACE: this move is exact, and (loose fragments under half of minfree) the
        // file system switches to TIME for the next one.
        let (a, old) = blocked_pair(&fs, &disk, "s");
        block_on(fs.write(a, 999, &[3u8])).unwrap();
        let first = dinode(&fs, &disk, a).db[0];
        assert_eq!(
            first / frag,
            old / frag,
            "ufs2={ufs2}: best fit in the same block"
        );
        check_data(&fs, a, 1000, &[999]);
        let (c, _) = blocked_pair(&fs, &disk, "u");
        block_on(fs.write(c, 999, &[3u8])).unwrap();
        assert_eq!(
            dinode(&fs, &disk, c).db[0] % frag,
            0,
            "ufs2={ufs2}: TIME again"
        );
        block_on(fs.unmount()).unwrap();
        assert_eq!(optim_on_disk(&disk, sblockloc), FS_OPTTIME, "ufs2={ufs2}");
        assert!(block_on(ffs::check(&disk)).unwrap().is_empty());
    }
}
