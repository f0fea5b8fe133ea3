//! Seeded random operation sequences against an in-memory model: create, write (sparse,
//! at random offsets), truncate, rename, link, unlink, mkdir, rmdir, symlink; then unmount,
//! the checker, a remount and a full comparison with the model. `RUMP_FFS_SEED` picks the
//! seed (the failing sequence's seed is printed).

mod common;
use common::*;
use ffs::{block_on, Errno, Fs, Ino, MemDisk, Result};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, Ino>),
    Link(Vec<u8>),
}

struct Model {
    nodes: HashMap<Ino, Node>,
    nlink: HashMap<Ino, u16>,
    parent: HashMap<Ino, Ino>,
}

impl Model {
    fn dirs(&self) -> Vec<Ino> {
        let mut v: Vec<Ino> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n, Node::Dir(_)))
            .map(|(i, _)| *i)
            .collect();
        v.sort_unstable();
        v
    }

    fn entries(&self, d: Ino) -> &BTreeMap<Vec<u8>, Ino> {
        match &self.nodes[&d] {
            Node::Dir(m) => m,
            _ => unreachable!(),
        }
    }

    fn entries_mut(&mut self, d: Ino) -> &mut BTreeMap<Vec<u8>, Ino> {
        match self.nodes.get_mut(&d) {
            Some(Node::Dir(m)) => m,
            _ => unreachable!(),
        }
    }

    fn is_dir(&self, i: Ino) -> bool {
        matches!(self.nodes[&i], Node::Dir(_))
    }

    fn unref(&mut self, i: Ino) {
        let n = self.nlink.get_mut(&i).unwrap();
        *n -= 1;
        if *n == 0 {
            self.nodes.remove(&i);
            self.nlink.remove(&i);
        }
    }

    /// Is `d` inside the tree at `top`?
    fn under(&self, mut d: Ino, top: Ino) -> bool {
        loop {
            if d == top {
                return true;
            }
            let p = self.parent[&d];
            if p == d {
                return false;
            }
            d = p;
        }
    }
}

const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "dd",
    "eee",
    "ffff",
    "a-much-longer-name-for-variety",
    "g",
    "hh",
    "i",
    "this-name-is-quite-long-and-fills-a-directory-chunk-quickly-0123456789",
];

fn pick<'a, T>(rng: &mut Rng, v: &'a [T]) -> &'a T {
    &v[rng.below(v.len() as u64) as usize]
}

fn expect_same<T: std::fmt::Debug>(what: &str, got: Result<T>, want: Result<()>) -> Option<T> {
    match (got, want) {
        (Ok(v), Ok(())) => Some(v),
        (Err(g), Err(w)) => {
            assert_eq!(g, w, "{what}");
            None
        }
        (g, w) => panic!("{what}: engine {g:?}, model {w:?}"),
    }
}

fn step(fs: &mut Fs<MemDisk>, m: &mut Model, rng: &mut Rng) {
    let dirs = m.dirs();
    let d = *pick(rng, &dirs);
    let name = pick(rng, NAMES).as_bytes().to_vec();
    let exists = m.entries(d).get(&name).copied();
    match rng.below(100) {
        0..=14 => {
            let want = if exists.is_some() {
                Err(Errno::EEXIST)
            } else {
                Ok(())
            };
            if let Some(i) = expect_same(
                "create",
                block_on(fs.create(d, &name, 0o100644, 1, 2, 0)),
                want,
            ) {
                m.entries_mut(d).insert(name, i);
                m.nodes.insert(i, Node::File(Vec::new()));
                m.nlink.insert(i, 1);
            }
        }
        15..=39 => {
            let files: Vec<Ino> = m
                .nodes
                .iter()
                .filter(|(_, n)| matches!(n, Node::File(_)))
                .map(|(i, _)| *i)
                .collect();
            if files.is_empty() {
                return;
            }
            let mut files = files;
            files.sort_unstable();
            let f = *pick(rng, &files);
            let Node::File(data) = m.nodes.get_mut(&f).unwrap() else {
                unreachable!()
            };
            let off = match rng.below(4) {
                0 => data.len() as u64,
                1 => rng.below(20_000),
                _ => rng.below(1 << 20),
            };
            let len = match rng.below(3) {
                0 => 1 + rng.below(100),
                1 => 1 + rng.below(10_000),
                _ => 1 + rng.below(70_000),
            } as usize;
            let bytes = rng.bytes(len);
            assert_eq!(block_on(fs.write(f, off, &bytes)).unwrap(), len);
            let end = off as usize + len;
            if data.len() < end {
                data.resize(end, 0);
            }
            data[off as usize..end].copy_from_slice(&bytes);
        }
        40..=47 => {
            let mut files: Vec<Ino> = m
                .nodes
                .iter()
                .filter(|(_, n)| matches!(n, Node::File(_)))
                .map(|(i, _)| *i)
                .collect();
            if files.is_empty() {
                return;
            }
            files.sort_unstable();
            let f = *pick(rng, &files);
            let Node::File(data) = m.nodes.get_mut(&f).unwrap() else {
                unreachable!()
            };
            let size = match rng.below(3) {
                0 => 0,
                1 => rng.below(data.len() as u64 + 1),
                _ => rng.below(1 << 20),
            };
            block_on(fs.truncate(f, size)).unwrap();
            data.resize(size as usize, 0);
        }
        48..=57 => {
            let want = if exists.is_some() {
                Err(Errno::EEXIST)
            } else {
                Ok(())
            };
            if let Some(i) = expect_same("mkdir", block_on(fs.mkdir(d, &name, 0o755, 0, 0)), want) {
                m.entries_mut(d).insert(name, i);
                m.nodes.insert(i, Node::Dir(BTreeMap::new()));
                m.nlink.insert(i, 2);
                m.parent.insert(i, d);
                *m.nlink.get_mut(&d).unwrap() += 1;
            }
        }
        58..=63 => {
            let want = match exists {
                None => Err(Errno::ENOENT),
                Some(i) if !m.is_dir(i) => Err(Errno::ENOTDIR),
                Some(i) if !m.entries(i).is_empty() => Err(Errno::ENOTEMPTY),
                Some(_) => Ok(()),
            };
            if expect_same("rmdir", block_on(fs.rmdir(d, &name)), want).is_some() {
                let i = m.entries_mut(d).remove(&name).unwrap();
                m.nodes.remove(&i);
                m.nlink.remove(&i);
                m.parent.remove(&i);
                *m.nlink.get_mut(&d).unwrap() -= 1;
            }
        }
        64..=73 => {
            let want = match exists {
                None => Err(Errno::ENOENT),
                Some(i) if m.is_dir(i) => Err(Errno::EPERM),
                Some(_) => Ok(()),
            };
            if expect_same("unlink", block_on(fs.unlink(d, &name)), want).is_some() {
                let i = m.entries_mut(d).remove(&name).unwrap();
                m.unref(i);
            }
        }
        74..=79 => {
            let mut targets: Vec<Ino> = m
                .nodes
                .iter()
                .filter(|(_, n)| !matches!(n, Node::Dir(_)))
                .map(|(i, _)| *i)
                .collect();
            if targets.is_empty() {
                return;
            }
            targets.sort_unstable();
            let t = *pick(rng, &targets);
            let want = if exists.is_some() {
                Err(Errno::EEXIST)
            } else {
                Ok(())
            };
            if expect_same("link", block_on(fs.link(d, &name, t)), want).is_some() {
                m.entries_mut(d).insert(name, t);
                *m.nlink.get_mut(&t).unwrap() += 1;
            }
        }
        80..=87 => {
            let len = match rng.below(3) {
                0 => 1 + rng.below(59),
                1 => 55 + rng.below(70),
                _ => 1 + rng.below(900),
            } as usize;
            let target: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
            let want = if exists.is_some() {
                Err(Errno::EEXIST)
            } else {
                Ok(())
            };
            if let Some(i) = expect_same(
                "symlink",
                block_on(fs.symlink(d, &name, &target, 0o755, 0, 0)),
                want,
            ) {
                m.entries_mut(d).insert(name, i);
                m.nodes.insert(i, Node::Link(target));
                m.nlink.insert(i, 1);
            }
        }
        _ => {
            let dd = *pick(rng, &dirs);
            let dname = pick(rng, NAMES).as_bytes().to_vec();
            let Some(src) = exists else {
                let r = block_on(fs.rename(d, &name, dd, &dname));
                assert_eq!(r, Err(Errno::ENOENT), "rename of a missing name");
                return;
            };
            let dst = m.entries(dd).get(&dname).copied();
            let sdir = m.is_dir(src);
            let want = if sdir && d != dd && m.under(dd, src) {
                Err(Errno::EINVAL)
            } else {
                match dst {
                    Some(t) if t == src => Ok(()),
                    Some(t) if sdir && !m.is_dir(t) => Err(Errno::ENOTDIR),
                    Some(t) if sdir && !m.entries(t).is_empty() => Err(Errno::ENOTEMPTY),
                    Some(t) if !sdir && m.is_dir(t) => Err(Errno::EISDIR),
                    _ => Ok(()),
                }
            };
            let r = block_on(fs.rename(d, &name, dd, &dname));
            if expect_same("rename", r, want).is_none() || dst == Some(src) {
                return;
            }
            if let Some(t) = dst {
                if m.is_dir(t) {
                    m.nodes.remove(&t);
                    m.nlink.remove(&t);
                    m.parent.remove(&t);
                    *m.nlink.get_mut(&dd).unwrap() -= 1;
                } else {
                    m.unref(t);
                }
            }
            m.entries_mut(d).remove(&name);
            m.entries_mut(dd).insert(dname, src);
            if sdir && d != dd {
                m.parent.insert(src, dd);
                *m.nlink.get_mut(&d).unwrap() -= 1;
                *m.nlink.get_mut(&dd).unwrap() += 1;
            }
        }
    }
}

/// Compares the whole image with the model.
fn verify(fs: &Fs<MemDisk>, m: &Model, d: Ino) {
    let ents = block_on(fs.readdir(d, 0, usize::MAX)).unwrap();
    let mut names = BTreeMap::new();
    for e in &ents {
        names.insert(e.name.clone(), e.ino);
    }
    assert_eq!(names.remove(b".".as_slice()), Some(d));
    assert_eq!(names.remove(b"..".as_slice()), Some(m.parent[&d]));
    assert_eq!(&names, m.entries(d), "entries of {d}");
    for (name, &i) in m.entries(d) {
        let a = block_on(fs.getattr(i)).unwrap();
        assert_eq!(
            a.nlink,
            m.nlink[&i],
            "nlink of {}",
            String::from_utf8_lossy(name)
        );
        match &m.nodes[&i] {
            Node::File(data) => {
                assert_eq!(a.size, data.len() as u64);
                let mut got = vec![0u8; data.len()];
                assert_eq!(block_on(fs.read(i, 0, &mut got)).unwrap(), data.len());
                assert!(
                    got == *data,
                    "contents of {}",
                    String::from_utf8_lossy(name)
                );
            }
            Node::Link(t) => assert_eq!(&block_on(fs.readlink(i)).unwrap(), t),
            Node::Dir(_) => verify(fs, m, i),
        }
    }
}

fn run_sequence(seed: u64, ufs2: bool, bsize: u32, ops: usize) {
    let mut rng = Rng(seed);
    let disk = fresh(24 << 20, ufs2, Some(bsize));
    let mut fs = mount(&disk);
    let root = fs.root();
    let mut m = Model {
        nodes: HashMap::from([(root, Node::Dir(BTreeMap::new()))]),
        nlink: HashMap::from([(root, 2)]),
        parent: HashMap::from([(root, root)]),
    };
    for i in 0..ops {
        step(&mut fs, &mut m, &mut rng);
        if i % 97 == 96 {
            let d = block_on(fs.unmount()).unwrap();
            assert_clean(&d, &format!("seed {seed} after op {i}"));
            fs = mount(&disk);
        }
    }
    block_on(fs.unmount()).unwrap();
    assert_clean(&disk, &format!("seed {seed} at the end"));
    let fs = mount(&disk);
    verify(&fs, &m, root);
}

#[test]
fn random_sequences() {
    let base = seed();
    let n: u64 = std::env::var("RUMP_FFS_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let t0 = std::time::Instant::now();
    for k in 0..n {
        let s = base.wrapping_add(k);
        let (ufs2, bsize) = match k % 4 {
            0 => (false, 4096),
            1 => (true, 4096),
            2 => (false, 8192),
            _ => (true, 16384),
        };
        let r = std::panic::catch_unwind(|| run_sequence(s, ufs2, bsize, 250));
        if let Err(e) = r {
            eprintln!(
                "failing sequence: RUMP_FFS_SEED={s} (UFS{}, bsize {bsize})",
                if ufs2 { 2 } else { 1 }
            );
            std::panic::resume_unwind(e);
        }
    }
    eprintln!(
        "{n} random sequences of 250 operations verified in {:?}",
        t0.elapsed()
    );
}
