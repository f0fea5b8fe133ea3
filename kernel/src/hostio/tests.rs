//! Tests of the host-file backends: std positional I/O, errno translation, fault injection.

use std::sync::Arc;

use super::*;
use crate::testutil::block_on;

/// A fresh temporary host file path, unique per test.
pub(crate) fn temp_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("rump-kernel-{tag}-{}-{n}", std::process::id()))
}

#[test]
fn std_file_positional_io_and_size() {
    let path = temp_path("std");
    let f = StdFile::open(&path, true, true).unwrap();
    assert_eq!(f.len(), Ok(0));
    let (r, _) = block_on(f.write_at(b"hello".to_vec(), 10));
    assert_eq!(r, Ok(5));
    assert_eq!(f.len(), Ok(15));
    let (r, buf) = block_on(f.read_at(vec![0xff; 20], 8));
    assert_eq!(r, Ok(7));
    assert_eq!(&buf[..7], b"\0\0hello");
    assert_eq!(block_on(f.sync_data()), Ok(()));
    f.set_len(12).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0\0\0\0\0\0\0\0he");
    // Host errors arrive as NetBSD numbers.
    let ro = StdFile::open(&path, false, false).unwrap();
    let (r, _) = block_on(ro.write_at(vec![1], 0));
    assert_eq!(r, Err(crate::Errno::EBADF));
    let missing = temp_path("missing");
    assert_eq!(
        StdFile::open(&missing, false, false).err(),
        Some(crate::Errno::ENOENT)
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn host_errno_translation() {
    use crate::Errno;
    assert_eq!(host_errno(5), Errno::EIO);
    assert_eq!(host_errno(28), Errno::ENOSPC);
    assert_eq!(host_errno(11), Errno::EAGAIN);
    assert_eq!(host_errno(35), Errno::EDEADLK);
    assert_eq!(host_errno(36), Errno::ENAMETOOLONG);
    assert_eq!(host_errno(38), Errno::ENOSYS);
    assert_eq!(host_errno(95), Errno::EOPNOTSUPP);
    assert_eq!(host_errno(122), Errno::EDQUOT);
    assert_eq!(host_errno(4095), Errno::EIO);
    let e = std::io::Error::from_raw_os_error(39);
    assert_eq!(io_errno(&e), Errno::ENOTEMPTY);
    assert_eq!(io_errno(&std::io::Error::other("x")), Errno::EIO);
}

#[test]
fn fault_injection_is_seeded_and_full_transfers_survive_short_ones() {
    use crate::Errno;
    let run = |seed| {
        let mem: Arc<dyn HostFile> = Arc::new(MemFile::new(vec![0; 64]));
        let cfg = FaultConfig {
            seed,
            eio: 2000,
            enospc: 2000,
            short: 0,
        };
        let f = FaultyFile::new(mem, cfg);
        (0..200)
            .map(|i| block_on(f.write_at(vec![1; 8], i % 8 * 8)).0)
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    let count = |e| a.iter().filter(|r| **r == Err(e)).count();
    assert!(
        (20..70).contains(&count(Errno::EIO)),
        "{}",
        count(Errno::EIO)
    );
    assert!((20..70).contains(&count(Errno::ENOSPC)));
    assert!(a.contains(&Ok(8)));

    // Only short transfers: the full helpers loop until everything moved.
    let mem = Arc::new(MemFile::new(Vec::new()));
    let cfg = FaultConfig {
        seed: 1,
        short: FAIL_SCALE,
        ..FaultConfig::default()
    };
    let f = FaultyFile::new(mem.clone(), cfg);
    let data: Vec<u8> = (0..=255).collect();
    let (r, _) = block_on(write_full(&f, data.clone(), 3));
    assert_eq!(r, Ok(256));
    assert_eq!(&mem.contents()[3..], &data[..]);
    assert!(f.ops() > 1);
    let (r, buf) = block_on(read_full(&f, vec![0; 300], 3));
    assert_eq!(r, Ok(256));
    assert_eq!(&buf[..256], &data[..]);
}
