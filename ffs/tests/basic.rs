//! Basic engine operations on newfs images, each followed by the checker.

mod common;
use common::*;
use ffs::sb::Superblock;
use ffs::{block_on, Errno, SetAttr, LINK_MAX};

#[test]
fn create_write_read_remount() {
    for ufs2 in [false, true] {
        let disk = fresh(8 << 20, ufs2, None);
        let fs = mount(&disk);
        let root = fs.root();
        let f = block_on(fs.create(root, b"a", 0o100644, 7, 8, 0)).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        assert_eq!(block_on(fs.write(f, 0, &data)).unwrap(), data.len());
        let d = block_on(fs.mkdir(root, b"d", 0o755, 0, 0)).unwrap();
        let s = block_on(fs.symlink(d, b"s", b"../a", 0o755, 0, 0)).unwrap();
        let long = vec![b'x'; 300];
        let l = block_on(fs.symlink(d, b"long", &long, 0o755, 0, 0)).unwrap();
        block_on(fs.link(d, b"hard", f)).unwrap();
        let disk2 = block_on(fs.unmount()).unwrap();
        assert_clean(&disk2, "after unmount");
        let fs = mount(&disk);
        let mut back = vec![0u8; data.len() + 10];
        assert_eq!(block_on(fs.read(f, 0, &mut back)).unwrap(), data.len());
        assert_eq!(&back[..data.len()], &data[..]);
        let a = block_on(fs.getattr(f)).unwrap();
        assert_eq!(
            (a.nlink, a.uid, a.gid, a.size),
            (2, 7, 8, data.len() as u64)
        );
        assert_eq!(block_on(fs.lookup(root, b"d")).unwrap(), d);
        assert_eq!(block_on(fs.readlink(s)).unwrap(), b"../a");
        assert_eq!(block_on(fs.readlink(l)).unwrap(), long);
        assert!(block_on(fs.getattr(l)).unwrap().blocks > 0);
        assert_eq!(block_on(fs.getattr(s)).unwrap().blocks, 0);
        let names: Vec<_> = block_on(fs.readdir(d, 0, 100))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            vec![
                b".".to_vec(),
                b"..".to_vec(),
                b"s".to_vec(),
                b"long".to_vec(),
                b"hard".to_vec()
            ]
        );
        drop(fs);
    }
}

#[test]
fn errors() {
    let disk = fresh(4 << 20, true, None);
    let fs = mount(&disk);
    let root = fs.root();
    let d = block_on(fs.mkdir(root, b"d", 0o755, 0, 0)).unwrap();
    let f = block_on(fs.create(d, b"f", 0o100644, 0, 0, 0)).unwrap();
    assert_eq!(
        block_on(fs.create(d, b"f", 0o100644, 0, 0, 0)),
        Err(Errno::EEXIST)
    );
    assert_eq!(block_on(fs.lookup(d, b"nope")), Err(Errno::ENOENT));
    assert_eq!(block_on(fs.lookup(f, b"x")), Err(Errno::ENOTDIR));
    assert_eq!(block_on(fs.rmdir(root, b"d")), Err(Errno::ENOTEMPTY));
    assert_eq!(block_on(fs.unlink(root, b"d")), Err(Errno::EPERM));
    assert_eq!(block_on(fs.rmdir(d, b"f")), Err(Errno::ENOTDIR));
    assert_eq!(
        block_on(fs.lookup(root, &[b'n'; 256])),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(block_on(fs.write(d, 0, b"x")), Err(Errno::EISDIR));
    let sub = block_on(fs.mkdir(d, b"sub", 0o755, 0, 0)).unwrap();
    assert_eq!(
        block_on(fs.rename(root, b"d", sub, b"x")),
        Err(Errno::EINVAL)
    );
    assert_eq!(block_on(fs.rename(root, b"d", d, b"x")), Err(Errno::EINVAL));
    let big = fs.superblock().maxfilesize;
    assert_eq!(block_on(fs.write(f, big, b"x")), Err(Errno::EFBIG));
    block_on(fs.unlink(d, b"f")).unwrap();
    block_on(fs.rmdir(d, b"sub")).unwrap();
    block_on(fs.rmdir(root, b"d")).unwrap();
    block_on(fs.unmount()).unwrap();
    assert_clean(&disk, "after errors");
}

#[test]
fn sparse_and_truncate_all_levels() {
    // bsize 4096 on UFS2: single indirect from 48 KiB, double from 2 MiB, triple from 1 GiB.
    let disk = fresh(16 << 20, true, Some(4096));
    let fs = mount(&disk);
    let root = fs.root();
    let f = block_on(fs.create(root, b"sparse", 0o100644, 0, 0, 0)).unwrap();
    let offs = [
        0u64,
        5000,
        60_000,
        3 << 20,
        (1 << 30) + 12345,
        (3u64 << 30) + 7,
    ];
    for (i, &o) in offs.iter().enumerate() {
        block_on(fs.write(f, o, &[i as u8 + 1; 100])).unwrap();
    }
    block_on(fs.sync()).unwrap();
    assert_clean(&disk, "sparse writes");
    for (i, &o) in offs.iter().enumerate() {
        let mut b = [0u8; 102];
        block_on(fs.read(f, o - 1.min(o), &mut b)).unwrap();
        let start = (o != 0) as usize;
        assert!(b[start..start + 100].iter().all(|&x| x == i as u8 + 1));
    }
    for size in [(1u64 << 30) + 20000, 3 << 20, 70_000, 5001, 100, 0] {
        block_on(fs.truncate(f, size)).unwrap();
        block_on(fs.sync()).unwrap();
        assert_clean(&disk, &format!("truncate to {size}"));
    }
    block_on(fs.truncate(f, 1 << 20)).unwrap();
    let mut b = vec![1u8; 4096];
    block_on(fs.read(f, (1 << 20) - 4096, &mut b)).unwrap();
    assert!(b.iter().all(|&x| x == 0));
    let a = block_on(fs.setattr(
        f,
        &SetAttr {
            mode: Some(0o600),
            uid: Some(5),
            ..SetAttr::default()
        },
    ))
    .unwrap();
    assert_eq!(a.mode, 0o100600);
    block_on(fs.unmount()).unwrap();
    assert_clean(&disk, "end");
}

#[test]
fn link_max() {
    let disk = fresh(4 << 20, false, None);
    let fs = mount(&disk);
    let root = fs.root();
    let f = block_on(fs.create(root, b"f", 0o100644, 0, 0, 0)).unwrap();
    let d = block_on(fs.mkdir(root, b"d", 0o755, 0, 0)).unwrap();
    block_on(fs.unmount()).unwrap();
    // Raise the link counts to LINK_MAX - 1 on disk (di_nlink is at offset 2).
    let sb = block_on(Superblock::find(&disk)).unwrap();
    for ino in [f, d] {
        let off = sb.inode_offset(ino) as usize + 2;
        disk.with_bytes(|b| b[off..off + 2].copy_from_slice(&(LINK_MAX - 1).to_le_bytes()));
    }
    let fs = mount(&disk);
    block_on(fs.link(root, b"g", f)).unwrap();
    assert_eq!(block_on(fs.link(root, b"h", f)), Err(Errno::EMLINK));
    block_on(fs.mkdir(d, b"s1", 0o755, 0, 0)).unwrap();
    assert_eq!(
        block_on(fs.mkdir(d, b"s2", 0o755, 0, 0)),
        Err(Errno::EMLINK)
    );
    let e = block_on(fs.mkdir(root, b"e", 0o755, 0, 0)).unwrap();
    block_on(fs.mkdir(e, b"x", 0o755, 0, 0)).unwrap();
    assert_eq!(block_on(fs.rename(e, b"x", d, b"x")), Err(Errno::EMLINK));
    assert_eq!(block_on(fs.getattr(f)).unwrap().nlink, LINK_MAX);
}

#[test]
fn devices_fifos_and_times() {
    let disk = fresh(4 << 20, true, None);
    let fs = mount(&disk);
    let root = fs.root();
    let c = block_on(fs.create(root, b"null", 0o020666, 0, 0, 0x0203)).unwrap();
    let p = block_on(fs.create(root, b"fifo", 0o010644, 0, 0, 0)).unwrap();
    let s = block_on(fs.create(root, b"sock", 0o140644, 0, 0, 0)).unwrap();
    let t = ffs::Timespec {
        sec: 1_234_567_890,
        nsec: 987_654_321,
    };
    let a = SetAttr {
        atime: Some(t),
        mtime: Some(t),
        birthtime: Some(t),
        flags: Some(4),
        ..SetAttr::default()
    };
    block_on(fs.setattr(p, &a)).unwrap();
    block_on(fs.unmount()).unwrap();
    assert_clean(&disk, "with special files");
    let fs = mount(&disk);
    let ca = block_on(fs.getattr(c)).unwrap();
    assert_eq!((ca.mode, ca.rdev, ca.size), (0o020666, 0x0203, 0));
    let pa = block_on(fs.getattr(p)).unwrap();
    assert_eq!(
        (pa.mode, pa.mtime, pa.atime, pa.birthtime, pa.flags),
        (0o010644, t, t, t, 4)
    );
    assert_eq!(block_on(fs.getattr(s)).unwrap().mode, 0o140644);
    let types: Vec<u8> = block_on(fs.readdir(root, 0, 10))
        .unwrap()
        .iter()
        .map(|e| e.dtype)
        .collect();
    assert_eq!(types, vec![4, 4, 2, 1, 12]);
}

#[test]
fn readdir_cookies_resume() {
    let disk = fresh(4 << 20, true, None);
    let fs = mount(&disk);
    let root = fs.root();
    for i in 0..300 {
        block_on(fs.create(root, format!("file-{i:03}").as_bytes(), 0o100644, 0, 0, 0)).unwrap();
    }
    for i in (0..300).step_by(7) {
        block_on(fs.unlink(root, format!("file-{i:03}").as_bytes())).unwrap();
    }
    let all = block_on(fs.readdir(root, 0, usize::MAX)).unwrap();
    let mut got = Vec::new();
    let mut cookie = 0;
    loop {
        let part = block_on(fs.readdir(root, cookie, 13)).unwrap();
        let Some(last) = part.last() else { break };
        cookie = last.next;
        got.extend(part);
    }
    assert_eq!(got, all);
    let live = all.iter().filter(|e| e.ino != 0).count();
    assert_eq!(live, 2 + 300 - 300usize.div_ceil(7));
    // A removed entry that starts a 512-byte chunk stays as a record with inode 0 and its
    // old name, as NetBSD's ufs_readdir shows it; the others merged into their neighbours.
    let removed: Vec<_> = all.iter().filter(|e| e.ino == 0).collect();
    assert!(!removed.is_empty());
    for e in removed {
        let n: usize = std::str::from_utf8(&e.name).unwrap()[5..].parse().unwrap();
        assert_eq!(n % 7, 0, "{:?}", String::from_utf8_lossy(&e.name));
    }
    // A cookie inside a record is refused, as ufs_readdir's "invalid cookie".
    assert_eq!(
        block_on(fs.readdir(root, all[2].next - 1, 5)),
        Err(Errno::EINVAL)
    );
}
