//! Images built by makefs(8) from a generated tree read back byte-exact through the engine,
//! with the stat fields makefs keeps, and the checker finds nothing; then they take writes.
//! Skipped (with a notice) when `makefs` is not installed; CI installs it.

mod common;
use common::*;
use ffs::{block_on, check, Fs, Ino, MemDisk, MountOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn have_makefs() -> bool {
    Command::new("makefs").arg("-h").output().is_ok()
}

fn tempdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rump-ffs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn set_mtime(p: &Path, sec: i64, nsec: u32) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(sec as u64, nsec);
    let f = std::fs::File::options()
        .write(true)
        .open(p)
        .or_else(|_| std::fs::File::open(p))
        .unwrap();
    f.set_modified(t).unwrap();
}

/// Builds the source tree: files of many sizes (through double indirect), symlinks around
/// the inline limits, hard links, a deep chain of directories, a directory of 600 names.
const SIZES: &[usize] = &[
    0,
    1,
    100,
    511,
    512,
    513,
    1023,
    1024,
    2047,
    4095,
    4096,
    4097,
    8191,
    8192,
    8193,
    12 * 4096,
    12 * 4096 + 1,
    12 * 8192 - 1,
    12 * 8192,
    12 * 8192 + 1,
    200_000,
    1 << 20,
    5 << 20,
    (17 << 20) + 12345,
];

fn fname(i: usize) -> String {
    format!("f{i:02}_{}", SIZES[i])
}

fn make_tree(root: &Path, rng: &mut Rng) {
    let sizes = SIZES;
    let files = root.join("files");
    std::fs::create_dir(&files).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let p = files.join(format!("f{i:02}_{n}"));
        std::fs::write(&p, rng.bytes(n)).unwrap();
        std::fs::set_permissions(
            &p,
            std::fs::Permissions::from_mode(0o600 + i as u32 % 0o100),
        )
        .unwrap();
        set_mtime(&p, 1_600_000_000 + i as i64 * 1000, 123_456_789);
    }
    std::os::unix::fs::chown(files.join(fname(1)), Some(1234), Some(5678)).unwrap();
    let links = root.join("links");
    std::fs::create_dir(&links).unwrap();
    for n in [1usize, 10, 59, 60, 61, 119, 120, 121, 500, 1000] {
        let target: String = (0..n).map(|k| (b'a' + (k % 26) as u8) as char).collect();
        std::os::unix::fs::symlink(&target, links.join(format!("s{n}"))).unwrap();
    }
    std::fs::hard_link(files.join(fname(6)), links.join("hard1")).unwrap();
    std::fs::hard_link(files.join(fname(6)), root.join("hard2")).unwrap();
    let mut deep = root.join("deep");
    for i in 0..20 {
        deep = deep.join(format!("level{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom"), b"the bottom\n").unwrap();
    let many = root.join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..600 {
        let name = format!("entry-{i}-{}", "x".repeat(i % 40));
        std::fs::write(many.join(name), format!("{i}\n")).unwrap();
    }
    let status = Command::new("mkfifo").arg(root.join("fifo")).status();
    assert!(status.map(|s| s.success()).unwrap_or(false));
}

/// Compares the directory `ino` of the image with `host`, recursively; returns entries seen.
fn compare(fs: &Fs<MemDisk>, ino: Ino, host: &Path) -> usize {
    let ents = block_on(fs.readdir(ino, 0, usize::MAX)).unwrap();
    let mut seen = 0;
    let mut host_names: Vec<_> = std::fs::read_dir(host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_encoded_bytes())
        .collect();
    host_names.sort();
    let mut img_names: Vec<_> = ents
        .iter()
        .filter(|e| e.name != b"." && e.name != b"..")
        .map(|e| e.name.clone())
        .collect();
    img_names.sort();
    assert_eq!(img_names, host_names, "names in {}", host.display());
    for e in ents.iter().filter(|e| e.name != b"." && e.name != b"..") {
        let hp = host.join(std::str::from_utf8(&e.name).unwrap());
        let md = std::fs::symlink_metadata(&hp).unwrap();
        let a = block_on(fs.getattr(e.ino)).unwrap();
        let what = hp.display().to_string();
        assert_eq!(a.mode as u32, md.mode(), "mode of {what}");
        assert_eq!(a.uid, md.uid(), "uid of {what}");
        assert_eq!(a.gid, md.gid(), "gid of {what}");
        assert_eq!(a.nlink as u64, md.nlink(), "nlink of {what}");
        assert_eq!(a.mtime.sec, md.mtime(), "mtime of {what}");
        if md.file_type().is_symlink() {
            let t = std::fs::read_link(&hp)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes();
            assert_eq!(block_on(fs.readlink(e.ino)).unwrap(), t, "target of {what}");
        } else if md.is_file() {
            assert_eq!(a.size, md.len(), "size of {what}");
            let want = std::fs::read(&hp).unwrap();
            let mut got = vec![0u8; want.len() + 1];
            let n = block_on(fs.read(e.ino, 0, &mut got)).unwrap();
            assert_eq!(n, want.len(), "length of {what}");
            assert!(got[..n] == want[..], "contents of {what}");
        } else if md.is_dir() {
            seen += compare(fs, e.ino, &hp);
        }
        seen += 1;
    }
    seen
}

#[test]
fn makefs_images_read_back_and_take_writes() {
    if !have_makefs() {
        eprintln!("SKIPPED: makefs not installed (apt-get install makefs)");
        return;
    }
    let dir = tempdir("makefs");
    let src = dir.join("tree");
    std::fs::create_dir(&src).unwrap();
    make_tree(&src, &mut Rng(seed()));
    let variants: &[(&str, &[&str])] = &[
        ("v1", &["-o", "version=1"]),
        ("v2", &["-o", "version=2"]),
        ("v1-4k", &["-o", "version=1,bsize=4096,fsize=512"]),
        ("v2-4k", &["-o", "version=2,bsize=4096,fsize=512"]),
        (
            "v2-16k-le",
            &["-B", "le", "-o", "version=2,bsize=16384,fsize=2048"],
        ),
        ("v1-le", &["-B", "le", "-o", "version=1"]),
    ];
    for (tag, args) in variants {
        let img = dir.join(format!("{tag}.img"));
        let out = Command::new("makefs")
            .args(["-t", "ffs", "-b", "20%", "-f", "20%"])
            .args(*args)
            .arg(&img)
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "makefs {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let disk = MemDisk::from_vec(std::fs::read(&img).unwrap());
        let f = block_on(check(&disk)).unwrap();
        assert!(
            f.is_empty(),
            "checker on makefs {tag} image:\n{}",
            f.join("\n")
        );
        let ro = MountOptions {
            read_only: true,
            ..MountOptions::default()
        };
        let fs = block_on(Fs::mount(disk.clone(), ro)).unwrap();
        let before = disk.to_vec();
        let n = compare(&fs, fs.root(), &src);
        assert!(n > 650, "{tag}: only {n} entries");
        drop(fs);
        assert!(disk.to_vec() == before, "{tag}: a read-only mount wrote");

        // Read-write: change things, unmount, check, compare what changed.
        let fs = mount(&disk);
        let root = fs.root();
        let files = block_on(fs.lookup(root, b"files")).unwrap();
        let big = block_on(fs.lookup(files, fname(SIZES.len() - 1).as_bytes())).unwrap();
        block_on(fs.truncate(big, 3_000_000)).unwrap();
        block_on(fs.write(big, 2_999_000, &[0xab; 5000])).unwrap();
        let many = block_on(fs.lookup(root, b"many")).unwrap();
        for i in (0..600).step_by(3) {
            let name = format!("entry-{i}-{}", "x".repeat(i % 40));
            block_on(fs.unlink(many, name.as_bytes())).unwrap();
        }
        for i in 0..100 {
            let name = format!("new-{i}-{}", "y".repeat(i % 60));
            block_on(fs.create(many, name.as_bytes(), 0o100644, 0, 0, 0)).unwrap();
        }
        let d = block_on(fs.mkdir(root, b"newdir", 0o755, 0, 0)).unwrap();
        block_on(fs.rename(root, b"deep", d, b"deep-moved")).unwrap();
        block_on(fs.unmount()).unwrap();
        assert_clean(&disk, &format!("after writing makefs {tag} image"));
        let fs = mount(&disk);
        let big = block_on(fs.lookup(files, fname(SIZES.len() - 1).as_bytes())).unwrap();
        let mut b = vec![0u8; 6000];
        assert_eq!(block_on(fs.read(big, 2_999_000, &mut b)).unwrap(), 5000);
        assert!(b[..5000].iter().all(|&x| x == 0xab));
        assert_eq!(block_on(fs.getattr(big)).unwrap().size, 3_004_000);
        let moved = block_on(fs.lookup(d, b"deep-moved")).unwrap();
        assert_eq!(block_on(fs.lookup(moved, b"..")).unwrap(), d);
        drop(fs);
        eprintln!("makefs {tag}: {n} entries verified, writes checked");
    }
    // A big-endian image is recognised and refused, by the mount and by the checker.
    let img = dir.join("be.img");
    let out = Command::new("makefs")
        .args(["-t", "ffs", "-B", "be", "-o", "version=2"])
        .arg(&img)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "makefs -B be: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let disk = MemDisk::from_vec(std::fs::read(&img).unwrap());
    let e = block_on(Fs::mount(disk.clone(), MountOptions::default())).expect_err("refused");
    assert_eq!(e, ffs::Errno::EINVAL);
    assert_eq!(block_on(check(&disk)), Err(ffs::sb::SbError::BigEndian));
    let _ = std::fs::remove_dir_all(&dir);
}
