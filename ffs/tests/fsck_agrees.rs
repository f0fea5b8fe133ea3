//! `check` (rump_fsck) agrees with NetBSD's own `fsck_ffs -fn` on deliberately damaged
//! images (issue 13, deliverable 3).
//!
//! `damaged_images` builds one populated file system per flavour (UFS1, UFS2), then one copy
//! per kind of damage. `ffs/tests/fsck.netbsd` holds what NetBSD's `fsck_ffs -fn` printed for
//! each image (run through NetBSD's rump_server, see docs/fsck.md); this test maps every
//! NetBSD finding line and every one of ours to a finding class and asserts, per image, the
//! same verdict (clean, damaged, no FFS) and the same set of classes.
//!
//! With `FSCK_AGREES_OUT=dir` the images are also written to `dir/<name>.img`, which is how
//! the expectation file is regenerated against the reference (docs/fsck.md).

mod common;
use common::*;
use ffs::sb::SbError;
use ffs::{block_on, check, Ino, MemDisk};
use std::collections::BTreeSet;

/// Byte offset of the entry named `name` in the first block of directory `ino`.
fn entry_off(b: &Base, d: &MemDisk, ino: Ino, name: &[u8]) -> u64 {
    let blk = b.sb.frag_offset(peek_ptr(b, d, db_off(b, ino, 0)));
    let mut at = 0u64;
    while at < b.sb.bsize as u64 {
        let (reclen, namlen) = d.with_bytes(|x| {
            let o = (blk + at) as usize;
            (
                u16::from_le_bytes([x[o + 4], x[o + 5]]) as u64,
                x[o + 7] as usize,
            )
        });
        let found = d.with_bytes(|x| {
            let o = (blk + at) as usize + 8;
            &x[o..o + namlen] == name
        });
        if found {
            return blk + at;
        }
        assert!(reclen > 0, "directory walk");
        at += reclen;
    }
    panic!("no entry {:?}", String::from_utf8_lossy(name));
}

/// Byte offset of cylinder group `c`'s block.
fn cg_off(b: &Base, c: u32) -> u64 {
    b.sb.frag_offset(b.sb.cgtod(c))
}

/// The damaged images: (name, image). Each has one kind of damage, the first is clean.
fn damaged_images(ufs2: bool) -> Vec<(String, MemDisk)> {
    let b = base(ufs2);
    let tag = if ufs2 { "ufs2" } else { "ufs1" };
    let copy = || MemDisk::from_vec(b.disk.to_vec());
    let mut out = Vec::new();
    let mut add = |name: &str, d: MemDisk| out.push((format!("{tag}-{name}"), d));

    add("clean", copy());

    // cg_cs.cs_nbfree of group 0 one too high (maps, summary area and totals untouched).
    let d = copy();
    let o = cg_off(&b, 0) + 28;
    poke32(&d, o, peek32(&d, o) + 1);
    add("cg-nbfree", d);

    // cg_cs.cs_nifree of group 0 one too high.
    let d = copy();
    let o = cg_off(&b, 0) + 32;
    poke32(&d, o, peek32(&d, o) + 1);
    add("cg-nifree", d);

    // `big`'s second block is also `file`'s first: a block referenced by two files (file's
    // own fragments are then used in the map but owned by nobody).
    let d = copy();
    let shared = peek_ptr(&b, &d, db_off(&b, b.big, 1));
    poke_ptr(&b, &d, db_off(&b, b.file, 0), shared);
    add("dup-block", d);

    // The first fragment of `big`'s first block marked free in the map.
    let d = copy();
    let f = peek_ptr(&b, &d, db_off(&b, b.big, 0));
    let c = (f / b.sb.fpg as u64) as u32;
    let rel = f - b.sb.cgbase(c);
    let freeoff = cg_off(&b, c) + peek32(&d, cg_off(&b, c) + 96) as u64;
    d.with_bytes(|x| x[(freeoff + rel / 8) as usize] |= 1 << (rel % 8));
    add("free-but-used", d);

    // `file`'s link count 2 where one name refers to it.
    let d = copy();
    let o = b.sb.inode_offset(b.file) + 2;
    d.with_bytes(|x| x[o as usize..o as usize + 2].copy_from_slice(&2u16.to_le_bytes()));
    add("bad-nlink", d);

    // The entry `dir/file` names an inode that is not allocated.
    let d = copy();
    let e = entry_off(&b, &d, b.dir, b"file");
    poke32(&d, e, 100);
    add("entry-unalloc", d);

    // `dir/sub/..` names the root instead of `dir`.
    let d = copy();
    let e = entry_off(&b, &d, b.sub, b"..");
    poke32(&d, e, 2);
    add("bad-dotdot", d);

    // `file`'s first block pointer far past the end of the file system.
    let d = copy();
    poke_ptr(&b, &d, db_off(&b, b.file, 0), 1 << 28);
    add("ptr-out-of-range", d);

    // Inode maps: `file`'s inode marked free in its group's map.
    let (ipg, iused) = (b.sb.ipg, |d: &MemDisk, c: u32| {
        cg_off(&b, c) + peek32(d, cg_off(&b, c) + 92) as u64
    });
    let d = copy();
    let (c, rel) = (b.file / ipg, b.file % ipg);
    let o = iused(&d, c) + u64::from(rel / 8);
    d.with_bytes(|x| x[o as usize] &= !(1 << (rel % 8)));
    add("inode-free-but-used", d);

    // An unused inode (its mode 0) marked used in the map.
    let d = copy();
    let spare = 20;
    let (c, rel) = (spare / ipg, spare % ipg);
    let o = iused(&d, c) + u64::from(rel / 8);
    d.with_bytes(|x| x[o as usize] |= 1 << (rel % 8));
    add("inode-used-but-free", d);

    // An allocated regular file no directory names (mode, one link, marked used).
    let d = copy();
    let o = b.sb.inode_offset(spare);
    d.with_bytes(|x| {
        x[o as usize..o as usize + 2].copy_from_slice(&0o100644u16.to_le_bytes());
        x[o as usize + 2..o as usize + 4].copy_from_slice(&1u16.to_le_bytes());
    });
    let o = iused(&d, c) + u64::from(rel / 8);
    d.with_bytes(|x| x[o as usize] |= 1 << (rel % 8));
    add("inode-unref", d);

    // cg_cs.cs_ndir of group 0 one too high.
    let d = copy();
    let o = cg_off(&b, 0) + 24;
    poke32(&d, o, peek32(&d, o) + 1);
    add("cg-ndir", d);

    // The superblock's magic number wrong.
    let d = copy();
    poke32(&d, b.sb.sblockloc + 1372, 0x1234_5678);
    add("bad-magic", d);

    let _ = (b.sub, b.dir);
    out
}

/// The finding class of one line of our checker.
fn our_class(line: &str) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("claimed twice", "dup"),
        ("outside the file system", "bad-block"),
        ("points into metadata", "bad-block"),
        ("points to unallocated inode", "unalloc-entry"),
        ("'..'", "dotdot"),
        ("link count", "nlink"),
        ("allocated but unreferenced", "unref"),
        ("free map wrong", "bitmap"),
        ("allocated but marked free", "bitmap"),
        ("marked used but unallocated", "bitmap"),
        ("counts", "counts"),
        ("summary area", "counts"),
        ("superblock totals", "counts"),
        ("di_blocks", "blocks"),
        ("fragment summary", "counts"),
        ("cluster map", "bitmap"),
        ("cluster summary", "counts"),
    ];
    TABLE
        .iter()
        .find(|(k, _)| line.contains(k))
        .map_or("other", |(_, c)| c)
}

/// The finding class of one line of NetBSD's `fsck_ffs -fn` (None: not a finding).
fn netbsd_class(line: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("DUP I=", "dup"),
        ("BAD I=", "bad-block"),
        ("UNALLOCATED", "unalloc-entry"),
        ("'..'", "dotdot"),
        ("LINK COUNT", "nlink"),
        ("UNREF", "unref"),
        ("BLK(S) MISSING IN BIT MAPS", "bitmap"),
        ("ALLOCATED FRAG", "bitmap"),
        ("SUMMARY INFORMATION BAD", "counts"),
        ("FREE BLK COUNT(S) WRONG", "counts"),
        ("INCORRECT BLOCK COUNT", "blocks"),
        ("BAD SUPER BLOCK", "no-ffs"),
        ("MAGIC NUMBER WRONG", "no-ffs"),
    ];
    TABLE
        .iter()
        .find(|(k, _)| line.contains(k))
        .map(|(_, c)| *c)
}

/// Lines of NetBSD's output that are not findings of their own: phase headers, prompts,
/// the details printed under a finding, the closing totals, and pass 2's `DUP/BAD` (the
/// question whether to remove a file a pass 1 `DUP`/`BAD` finding already named).
fn netbsd_neutral(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "** ", "SIZE=", "FILE=", "DIR=", "NAME=", "DUP/BAD ", "exit ",
    ];
    line.is_empty()
        || PREFIXES.iter().any(|p| line.starts_with(p))
        || line.ends_with("? no")
        || line.contains(" files, ")
        || line.contains("UNRESOLVED INCONSISTENCIES REMAIN")
        || line.contains("CANNOT FIGURE OUT FILE SYSTEM PARTITION")
}

/// NetBSD's verdict: "no-ffs", "damaged" or "clean".
fn netbsd_verdict(lines: &[String]) -> &'static str {
    if lines.iter().any(|l| l.contains("BAD SUPER BLOCK")) {
        "no-ffs"
    } else if lines
        .iter()
        .any(|l| l.contains("UNRESOLVED INCONSISTENCIES REMAIN"))
    {
        "damaged"
    } else {
        "clean"
    }
}

/// NetBSD's recorded output per image: `== name` headers followed by its lines.
fn netbsd_expectations() -> Vec<(String, Vec<String>)> {
    let text = include_str!("fsck.netbsd");
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            out.push((name.trim().to_string(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(line.to_string());
        }
    }
    out
}

fn our_classes(d: &MemDisk) -> (BTreeSet<&'static str>, Vec<String>) {
    match block_on(check(d)) {
        Ok(f) => (f.iter().map(|l| our_class(l)).collect(), f),
        Err(SbError::NotFfs) => (BTreeSet::from(["no-ffs"]), vec!["no FFS".into()]),
        Err(e) => (BTreeSet::from(["other"]), vec![format!("{e}")]),
    }
}

#[test]
fn rump_fsck_agrees_with_netbsd_fsck_ffs() {
    let dump = std::env::var_os("FSCK_AGREES_OUT");
    let expected = netbsd_expectations();
    let mut images = damaged_images(false);
    images.extend(damaged_images(true));
    let mut failures = Vec::new();
    for (name, d) in &images {
        if let Some(dir) = &dump {
            std::fs::write(
                std::path::Path::new(dir).join(format!("{name}.img")),
                d.to_vec(),
            )
            .unwrap();
        }
        let (ours, lines) = our_classes(d);
        let Some((_, theirs)) = expected.iter().find(|(n, _)| n == name) else {
            failures.push(format!("{name}: no NetBSD expectation recorded"));
            continue;
        };
        for l in theirs {
            if netbsd_class(l).is_none() && !netbsd_neutral(l) {
                failures.push(format!("{name}: NetBSD line without a class: {l:?}"));
            }
        }
        let want: BTreeSet<&str> = theirs.iter().filter_map(|l| netbsd_class(l)).collect();
        let verdict = match block_on(check(d)) {
            Ok(f) if f.is_empty() => "clean",
            Ok(_) => "damaged",
            Err(_) => "no-ffs",
        };
        if verdict != netbsd_verdict(theirs) {
            failures.push(format!(
                "{name}: NetBSD says {}, ours {verdict}",
                netbsd_verdict(theirs)
            ));
        }
        if ours != want {
            failures.push(format!(
                "{name}: NetBSD {want:?}, ours {ours:?}\n  ours: {}",
                lines.join("\n  ours: ")
            ));
        }
    }
    assert_eq!(images.len(), expected.len(), "one expectation per image");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
