//! etfs through the system calls: byte-exact host contents, windows, the three types.

use std::sync::Arc;

use super::*;
use crate::abi::sysnum::*;
use crate::abi::{DIOCGDINFO, DIOCGMEDIASIZE, NODEV, S_IFBLK, S_IFCHR, S_IFREG};
use crate::hostio::{HostFile, StdFile};
use crate::testutil::{block_on, Fixture};

/// A fresh client address for each mapping (test memory finds the first region mapped).
fn fresh(len: usize) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x10_0000);
    NEXT.fetch_add(len as u64 + 0x1000, Ordering::Relaxed)
}

fn host_file(tag: &str, len: usize) -> (std::path::PathBuf, Arc<dyn HostFile>, Vec<u8>) {
    let path = crate::hostio::tests::temp_path(tag);
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let f: Arc<dyn HostFile> = Arc::new(StdFile::open(&path, true, false).unwrap());
    (path, f, data)
}

fn open(f: &Fixture, path: &str) -> Result<u64> {
    let at = fresh(path.len() + 1);
    f.mem.map(at, format!("{path}\0").as_bytes());
    f.call(SYS_open, &[at, 2, 0]).map(|r| r[0] as u64)
}

fn stat(f: &Fixture, path: &str) -> (u32, u64, i64) {
    let (at, st) = (fresh(path.len() + 1), fresh(152));
    f.mem.map(at, format!("{path}\0").as_bytes());
    f.mem.map_zero(st, 152);
    f.ok(SYS___stat50, &[at, st]);
    let b = f.mem.read(st, 152);
    let mode = u32::from_le_bytes(b[8..12].try_into().unwrap());
    let rdev = u64::from_le_bytes(b[40..48].try_into().unwrap());
    let size = i64::from_le_bytes(b[112..120].try_into().unwrap());
    (mode, rdev, size)
}

fn pwrite(f: &Fixture, fd: u64, data: &[u8], off: u64) -> Result<i64> {
    let buf = fresh(data.len());
    f.mem.map(buf, data);
    f.call(SYS_pwrite, &[fd, buf, data.len() as u64, 0, off])
        .map(|r| r[0])
}

fn pread(f: &Fixture, fd: u64, len: usize, off: u64) -> Result<Vec<u8>> {
    let buf = fresh(len);
    f.mem.map_zero(buf, len);
    let n = f.call(SYS_pread, &[fd, buf, len as u64, 0, off])?[0];
    Ok(f.mem.read(buf, n as usize))
}

#[test]
fn three_types_over_windows_of_one_host_file() {
    let f = Fixture::new();
    let (path, host, mut want) = host_file("etfs", 64 << 10);
    let k = &f.k;
    k.etfs_register(
        b"/dev/harddisk",
        host.clone(),
        EtfsType::Blk,
        4096,
        Some(16384),
    )
    .unwrap();
    k.etfs_register(b"//reg", host.clone(), EtfsType::Reg, 1000, Some(3000))
        .unwrap();
    k.etfs_register(b"/raw", host.clone(), EtfsType::Chr, 8192, None)
        .unwrap();

    // stat as NetBSD: type | 0755, rdev makedev(197, minor) for devices, size = window.
    assert_eq!(stat(&f, "/dev/harddisk"), (S_IFBLK | 0o755, 0xc500, 16384));
    assert_eq!(stat(&f, "/reg"), (S_IFREG | 0o755, NODEV, 3000));
    assert_eq!(
        stat(&f, "/raw"),
        (S_IFCHR | 0o755, 0xc500, (56 << 10) as i64)
    );

    // Block device: through the cache, on the host after fsync.
    let fd = open(&f, "/dev/harddisk").unwrap();
    assert_eq!(pwrite(&f, fd, &[0xaa; 100], 5000), Ok(100));
    assert_eq!(std::fs::read(&path).unwrap(), want, "cached until fsync");
    assert_eq!(f.ok(SYS_fsync, &[fd]), 0);
    want[4096 + 5000..4096 + 5100].fill(0xaa);
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(
        pread(&f, fd, 200, 4990).unwrap(),
        &want[4096 + 4990..4096 + 5190]
    );
    // Bounds: reads at/after the end 0 bytes, crossing ones cut; a write at the end writes
    // 0 bytes, one crossing it is cut short, one beyond it is EINVAL.
    assert_eq!(pread(&f, fd, 512, 16384).unwrap(), b"");
    assert_eq!(pread(&f, fd, 512, 20000).unwrap(), b"");
    assert_eq!(pread(&f, fd, 512, 16000).unwrap().len(), 384);
    assert_eq!(pwrite(&f, fd, &[1; 512], 16000), Ok(384));
    assert_eq!(pwrite(&f, fd, &[1; 512], 16384), Ok(0));
    assert_eq!(pwrite(&f, fd, &[1; 512], 16896), Err(Errno::EINVAL));
    assert_eq!(f.ok(SYS_fsync, &[fd]), 0);
    want[4096 + 16000..4096 + 16384].fill(1);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        want,
        "nothing past the window"
    );
    let buf = fresh(8);
    f.mem.map_zero(buf, 8);
    f.ok(SYS_ioctl, &[fd, u64::from(DIOCGMEDIASIZE), buf]);
    assert_eq!(f.mem.read(buf, 8), 16384i64.to_le_bytes());
    let buf = fresh(DISKLABEL_SIZE);
    f.mem.map_zero(buf, DISKLABEL_SIZE);
    f.ok(SYS_ioctl, &[fd, u64::from(DIOCGDINFO), buf]);
    let label = f.mem.read(buf, DISKLABEL_SIZE);
    assert_eq!(&label[..4], &DISKMAGIC.to_le_bytes());
    assert_eq!(&label[148..152], &32u32.to_le_bytes());
    // rumpblk's geometry (makedefaultlabel): type rumpd, one track of one cylinder with
    // every sector, rpm 11, interleave 1, no boot or super block size; NetBSD's d_secperunit
    // is the byte size (a bug), ours the 32 sectors.
    let u16_at = |o: usize| u16::from_le_bytes([label[o], label[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(label[o..o + 4].try_into().unwrap());
    assert_eq!(u16_at(4), 21, "DKTYPE_RUMPD");
    assert_eq!(&label[8..13], b"rumpd");
    let geometry = [40, 44, 48, 52, 56, 60].map(u32_at);
    assert_eq!(geometry, [512, 32, 1, 1, 32, 32]);
    assert_eq!((u16_at(72), u16_at(74)), (11, 1), "rpm, interleave");
    assert_eq!((u32_at(140), u32_at(144)), (0, 0), "bbsize, sbsize");
    // DIOCGPARTINFO is copy-in only (NetBSD's _IOW): it succeeds and the client's buffer
    // stays as it was.
    let buf = fresh(32);
    f.mem.map(buf, &[0xa5; 32]);
    f.ok(SYS_ioctl, &[fd, u64::from(crate::abi::DIOCGPARTINFO), buf]);
    assert_eq!(f.mem.read(buf, 32), [0xa5; 32]);
    // No wedges on rumpblk.
    let buf = fresh(208);
    f.mem.map_zero(buf, 208);
    assert_eq!(
        f.call(SYS_ioctl, &[fd, 0x40d0_647a, buf]),
        Err(Errno::ENOTTY),
        "DIOCGWEDGEINFO"
    );

    // Regular file: straight to the host at begin + offset.
    let fd = open(&f, "/reg").unwrap();
    assert_eq!(pwrite(&f, fd, b"hello", 10), Ok(5));
    want[1010..1015].copy_from_slice(b"hello");
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(pread(&f, fd, 10, 2995).unwrap(), &want[3995..4000]);
    assert_eq!(pwrite(&f, fd, b"hello", 2998), Err(Errno::EINVAL));
    assert_eq!(f.ok(SYS_fsync, &[fd]), 0);

    // Raw device: 512-byte aligned offsets and lengths only.
    let fd = open(&f, "/raw").unwrap();
    assert_eq!(pwrite(&f, fd, &[0x55; 512], 512), Ok(512));
    want[8192 + 512..8192 + 1024].fill(0x55);
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(pwrite(&f, fd, &[1; 100], 0), Err(Errno::EINVAL));
    assert_eq!(pwrite(&f, fd, &[1; 512], 100), Err(Errno::EINVAL));
    assert_eq!(pread(&f, fd, 100, 0), Err(Errno::EINVAL));
    assert_eq!(pread(&f, fd, 512, 56 << 10).unwrap(), b"");
    assert_eq!(pread(&f, fd, 1024, 0).unwrap(), &want[8192..9216]);

    // Halt-time sync writes dirty blocks back.
    let fd = open(&f, "/dev/harddisk").unwrap();
    assert_eq!(pwrite(&f, fd, &[0xbb; 4096], 8192), Ok(4096));
    f.k.sync_all().unwrap();
    want[4096 + 8192..4096 + 12288].fill(0xbb);
    assert_eq!(std::fs::read(&path).unwrap(), want);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn registration_rules_and_lookup() {
    let f = Fixture::new();
    let (path, host, _) = host_file("etfs-rules", 8192);
    let k = &f.k;
    let reg =
        |key: &[u8], begin, size| k.etfs_register(key, host.clone(), EtfsType::Reg, begin, size);
    assert_eq!(reg(b"nokey", 0, None), Err(Errno::EINVAL));
    assert_eq!(reg(b"/a", 8193, None), Err(Errno::EINVAL));
    assert_eq!(reg(b"/a", 4096, Some(4097)), Err(Errno::EINVAL));
    assert_eq!(reg(b"/some/deep/key", 0, None), Ok(()));
    assert_eq!(reg(b"//some/deep/key", 0, None), Err(Errno::EEXIST));
    assert!(open(&f, "/some/deep/key").is_ok());
    assert!(open(&f, "some/deep/key").is_ok());
    // Verbatim comparison; a trailing slash does not match.
    assert_eq!(open(&f, "/some//deep/key"), Err(Errno::ENOENT));
    assert_eq!(open(&f, "/some/deep/key/"), Err(Errno::ENOENT));
    assert_eq!(block_on(k.etfs_remove(b"/some/deep/key")), Ok(()));
    assert_eq!(
        block_on(k.etfs_remove(b"/some/deep/key")),
        Err(Errno::ENOENT)
    );
    assert_eq!(open(&f, "/some/deep/key"), Err(Errno::ENOENT));
    // At most 16 host devices; the same host file reuses its minor.
    for i in 0..16 {
        let (p, h, _) = host_file("etfs-dev", 4096);
        k.etfs_register(format!("/d{i}").as_bytes(), h, EtfsType::Chr, 0, None)
            .unwrap();
        std::fs::remove_file(&p).unwrap();
    }
    let blk = k.etfs_register(b"/d16", host.clone(), EtfsType::Blk, 0, None);
    assert_eq!(blk, Err(Errno::EBUSY));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_read_only_host_file_refuses_write_opens_with_eacces() {
    let f = Fixture::new();
    let path = crate::hostio::tests::temp_path("ro");
    std::fs::write(&path, vec![7u8; 8192]).unwrap();
    let ro = std::fs::File::open(&path).unwrap();
    let host: Arc<dyn HostFile> = Arc::new(StdFile::read_only(ro));
    assert!(!host.writable());
    for (key, t) in [("/rob", EtfsType::Blk), ("/ror", EtfsType::Reg)] {
        f.k.etfs_register(key.as_bytes(), host.clone(), t, 0, None)
            .unwrap();
        assert_eq!(open(&f, key), Err(Errno::EACCES), "{key} O_RDWR");
        let at = fresh(key.len() + 1);
        f.mem.map(at, format!("{key}\0").as_bytes());
        let fd = f.call(SYS_open, &[at, 0, 0]).unwrap()[0] as u64;
        assert_eq!(
            pread(&f, fd, 512, 0).unwrap(),
            vec![7u8; 512],
            "{key} reads"
        );
    }
    let _ = std::fs::remove_file(path);
}

/// Last closes by `F_CLOSEM` (or dup2) queue the device's write-back without running it: the
/// queue holds each device once, however often a client does it.
#[test]
fn last_closes_without_close_queue_a_device_once() {
    let f = Fixture::new();
    let (path, host, _) = host_file("etfs-closem", 16 << 10);
    f.k.etfs_register(b"/dk", host, EtfsType::Blk, 0, None)
        .unwrap();
    for _ in 0..1000 {
        let fd = open(&f, "/dk").unwrap();
        f.ok(SYS_fcntl, &[fd, crate::abi::F_CLOSEM as u64, 0]);
    }
    assert_eq!(f.k.closes_queued(), 1);
    let _ = std::fs::remove_file(path);
}
