//! NetBSD's per-uid limit on lock records (`maxlocksperuid`, vfs_lockf.c) over the wire: a
//! process that dropped to uid 1000 gets 1023 one-byte write locks on alternate bytes and the
//! 1024th is `ENOMEM`, as NetBSD's rump_server answers (the request and its spare record
//! count too); another uid has its own count, root is bounded only by the `-r` budget, and
//! the records of a client that disconnects stop counting.

mod common;

use client::{Buf, Client};
use common::Server;

const ENOMEM: i32 = 12;
const SYS_SETUID: u32 = 23;
const SYS_FCNTL: u32 = 92;
const F_SETLK: u64 = 8;
const F_WRLCK: i16 = 3;
const O_RDWR: i32 = 2;
const O_CREAT: i32 = 0x200;

/// `struct flock` for a write lock of one byte at `start`.
fn flock_byte(start: i64) -> [u8; 24] {
    let mut fl = [0u8; 24];
    fl[0..8].copy_from_slice(&start.to_le_bytes());
    fl[8..16].copy_from_slice(&1i64.to_le_bytes());
    fl[20..22].copy_from_slice(&F_WRLCK.to_le_bytes());
    fl
}

/// A client that opens `path` read-write and then becomes `uid` (unless 0).
fn client_as(srv: &Server, uid: u64, path: &str) -> (Client, i32) {
    let mut c = common::connect_retry(&srv.url, "locker");
    let fd = c.open(path, O_RDWR, 0).unwrap();
    if uid != 0 {
        c.syscall(SYS_SETUID, &[uid], &mut []).unwrap();
    }
    (c, fd)
}

/// Write locks on bytes `first`, `first + 2`, … until one fails or `most` are granted:
/// how many were granted and the errno of the refusal (0: none).
fn flood(c: &mut Client, fd: i32, first: i64, most: usize) -> (usize, i32) {
    for i in 0..most {
        let fl = flock_byte(first + 2 * i as i64);
        let args = [fd as u64, F_SETLK, client::addr_of(&fl)];
        if let Err(e) = c.syscall(SYS_FCNTL, &args, &mut [Buf::In(&fl)]) {
            return (i, e.errno().unwrap_or(-1));
        }
    }
    (most, 0)
}

#[test]
fn a_non_root_uid_gets_1023_lock_records_then_enomem() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let mut root = common::connect_retry(&srv.url, "root");
    for f in ["/tmp/a", "/tmp/b", "/tmp/c"] {
        root.open(f, O_RDWR | O_CREAT, 0o666).unwrap();
    }
    let (mut u, ufd) = client_as(&srv, 1000, "/tmp/a");
    assert_eq!(flood(&mut u, ufd, 0, 3000), (1023, ENOMEM));
    // The count is the uid's, not the process's or the file's.
    let (mut u2, u2fd) = client_as(&srv, 1000, "/tmp/c");
    assert_eq!(flood(&mut u2, u2fd, 0, 10), (0, ENOMEM));
    let (mut v, vfd) = client_as(&srv, 1001, "/tmp/b");
    assert_eq!(flood(&mut v, vfd, 0, 3000), (1023, ENOMEM));
    // Root gets all 3000 (on the bytes between the user's).
    let (mut r, rfd) = client_as(&srv, 0, "/tmp/a");
    assert_eq!(flood(&mut r, rfd, 1, 3000), (3000, 0));
    // The first user disconnects: its records go, and uid 1000 may place 1023 again.
    drop(u);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match flood(&mut u2, u2fd, 0, 1) {
            (1, 0) => break,
            (0, ENOMEM) => assert!(
                std::time::Instant::now() < deadline,
                "uid 1000's records outlived its client"
            ),
            other => panic!("{other:?}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(flood(&mut u2, u2fd, 2, 3000), (1022, ENOMEM));
}
