//! Where a file's first fragments go, as NetBSD's allocator puts them (issue 13, item 4).
//!
//! NetBSD's `ffs_alloccg` tries the group the allocation prefers first and, when that group
//! has no run of free fragments long enough, breaks one of its whole blocks, before any
//! other group is tried; `ffs_blkpref` prefers, for a file's first block, its inode's group.
//! So a small file in a directory of a fresh group gets its fragments there, and loose
//! fragments elsewhere stay loose. The engine used to take the first loose fragments of any
//! group instead: on the rumpctrl workload of docs/rumpctrl.md (NetBSD's newfs, mkdir, cp of
//! a small file into the new directory, dd of 1 MiB, links, renames) NetBSD's `fsck_ffs -fn`
//! counted 20 free fragments and 3580 free blocks, ours 12 and 3581; with this rule both
//! count 20 and 3580 and the cylinder groups' maps are the same (dumpfs).

use ffs::inode::Dinode;
use ffs::{block_on, Fs, MemDisk, MountOptions, NewfsOptions};

fn dinode(fs: &Fs<MemDisk>, disk: &MemDisk, ino: u32) -> Dinode {
    let sb = fs.superblock();
    let off = sb.inode_offset(ino) as usize;
    let raw = disk.with_bytes(|b| b[off..off + sb.inode_size() as usize].to_vec());
    Dinode::decode(sb.ufs2, &raw)
}

#[test]
fn a_small_files_fragments_go_to_its_inodes_group() {
    for ufs2 in [true, false] {
        let disk = MemDisk::new(64 << 20);
        let opts = NewfsOptions {
            ufs2,
            bsize: Some(4096),
            fsize: Some(512),
            ..NewfsOptions::default()
        };
        block_on(ffs::newfs(&disk, &opts)).unwrap();
        let fs = block_on(Fs::mount(disk.clone(), MountOptions::default())).unwrap();
        let root = fs.root();
        let sb = fs.superblock().clone();
        assert!(sb.ncg > 1, "the test needs more than one group");
        // Loose fragments in the root's group.
        let a = block_on(fs.create(root, b"a", 0o100644, 0, 0, 0)).unwrap();
        block_on(fs.write(a, 0, &[1u8; 700])).unwrap();
        let loose = fs.statvfs().bfree;
        // A directory in another group, and a small file in it.
        let d = block_on(fs.mkdir(root, b"dir", 0o755, 0, 0)).unwrap();
        let g = d / sb.ipg;
        assert_ne!(g, 0, "ufs2={ufs2}: new top-level directories spread out");
        let f = block_on(fs.create(d, b"f", 0o100644, 0, 0, 0)).unwrap();
        assert_eq!(f / sb.ipg, g, "the file's inode is near its directory");
        block_on(fs.write(f, 0, &[2u8; 1000])).unwrap();
        let at = dinode(&fs, &disk, f).db[0];
        assert_eq!(
            at / sb.fpg as u64,
            u64::from(g),
            "ufs2={ufs2}: the file's fragments ({at}) are in its inode's group {g}"
        );
        let dir_at = dinode(&fs, &disk, d).db[0];
        assert_eq!(
            dir_at / sb.fpg as u64,
            u64::from(g),
            "ufs2={ufs2}: the directory's"
        );
        // Two blocks broken in group g would be one too many: the directory's chunk and the
        // file's two fragments share one block.
        assert_eq!(
            dir_at / sb.frag as u64,
            at / sb.frag as u64,
            "ufs2={ufs2}: one block of group {g} holds both"
        );
        assert_eq!(
            fs.statvfs().bfree,
            loose - 1 - 2,
            "ufs2={ufs2}: three fragments used"
        );
        block_on(fs.unmount()).unwrap();
        assert!(block_on(ffs::check(&disk)).unwrap().is_empty());
    }
}

/// Inode numbers as NetBSD's `ffs_nodealloccg` and `ffs_freefile` choose them: freeing an
/// inode below the group's rotor moves the rotor back to it, and the next search starts at
/// the map byte holding the rotor, so a removed file's inode is the next one given out
/// (the engine used to search from the last inode it had given, taking a fresh one). On the
/// cross-server workload of tests/ffs_cross.rs this made a 300-file directory's group hold
/// other inodes than NetBSD's; now NetBSD's dumpfs shows the same inode map.
#[test]
fn a_freed_inode_below_the_rotor_is_given_out_next() {
    for ufs2 in [true, false] {
        let disk = MemDisk::new(64 << 20);
        let opts = NewfsOptions {
            ufs2,
            ..NewfsOptions::default()
        };
        block_on(ffs::newfs(&disk, &opts)).unwrap();
        let fs = block_on(Fs::mount(disk.clone(), MountOptions::default())).unwrap();
        let root = fs.root();
        let inos: Vec<u32> = (0..20)
            .map(|i| {
                let name = format!("f{i:02}");
                block_on(fs.create(root, name.as_bytes(), 0o100644, 0, 0, 0)).unwrap()
            })
            .collect();
        assert!(inos.windows(2).all(|w| w[1] == w[0] + 1), "{inos:?}");
        block_on(fs.unlink(root, b"f05")).unwrap();
        block_on(fs.unlink(root, b"f12")).unwrap();
        let next = block_on(fs.create(root, b"again", 0o100644, 0, 0, 0)).unwrap();
        assert_eq!(
            next, inos[5],
            "ufs2 {ufs2}: the lowest freed inode comes back first"
        );
        let after = block_on(fs.create(root, b"again2", 0o100644, 0, 0, 0)).unwrap();
        assert_eq!(
            after, inos[12],
            "ufs2 {ufs2}: then the next free one from the rotor"
        );
    }
}
