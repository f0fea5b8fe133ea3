//! How the server serves the kernel's copies from a SYSCALL_FAST's one range
//! (docs/sp-fastpath.md §2.1): a copy that takes the whole range gets it without another copy
//! and a later copy of the same range is asked from the client; copies of parts of a range
//! (two strings the client merged into one) are all served from it.

mod common;

use std::path::Path;

use common::{Raw, Server};
use sp::fast::{self, FastGrant, Prefetch};
use sp::{Class, HandshakeType, MsgType};

const SYS_OPEN: u32 = 5;
const SYS_SYMLINK: u32 = 57;
const SYS_RENAME: u32 = 128;
const ELOOP: i32 = 62;
const ENOENT: i32 = 2;

fn granted(path: &Path) -> (Raw, FastGrant) {
    let (mut r, _) = Raw::connect(path);
    let mut o = Vec::new();
    fast::encode_fast_handshake_req(&mut o, 1, HandshakeType::GUEST.0, b"copies\0");
    r.send(&o);
    let (_, p) = r.read_frame().unwrap();
    let g = fast::parse_fast_handshake_resp(&p).expect("a grant");
    (r, g)
}

/// Sends one SYSCALL_FAST with `ranges`, answers every COPYINSTR from `memory` (address,
/// bytes) and returns (COPYINSTR requests seen, error, retval).
fn call(
    r: &mut Raw,
    g: &FastGrant,
    reqno: u64,
    nr: u32,
    args: &[u64],
    ranges: &[(u64, &[u8])],
    memory: &[(u64, &[u8])],
) -> (Vec<u64>, i32, i64) {
    let mut o = Vec::new();
    let mut pf = Prefetch::new();
    for &(a, d) in ranges {
        pf.push(a, d);
    }
    pf.encode(&mut o, reqno, nr, args, g);
    r.send(&o);
    let mut asked = Vec::new();
    loop {
        let (h, p) = r.read_frame().expect("an answer");
        if h.class == Class::RESP {
            assert_eq!((h.typ, h.reqno), (MsgType::SYSCALL, reqno));
            let rs = sp::parse_syscall_resp(&p).unwrap();
            return (asked, rs.error, rs.retval[0]);
        }
        assert_eq!((h.class, h.typ), (Class::REQ, MsgType::COPYINSTR));
        let req = sp::parse_copy_req(&p).unwrap();
        asked.push(req.addr);
        let (base, bytes) = memory
            .iter()
            .find(|(a, b)| req.addr >= *a && req.addr < a + b.len() as u64)
            .expect("a copy of memory the test has");
        let rest = &bytes[(req.addr - base) as usize..];
        let n = rest
            .iter()
            .position(|&c| c == 0)
            .map_or(rest.len(), |i| i + 1);
        o.clear();
        sp::encode_copyin_resp(&mut o, h.reqno, &rest[..n]);
        r.send(&o);
    }
}

/// symlink(A, A): the target's copy takes the one range whole; the link path's copy of the
/// same address is then asked from the client (once), and both strings are right: the link
/// points at itself, so opening it fails with ELOOP.
#[test]
fn a_range_taken_whole_is_asked_again_from_the_client() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let (mut r, g) = granted(srv.sock.as_deref().unwrap());
    let a = 0x7000_0000u64;
    let mem: &[(u64, &[u8])] = &[(a, b"/loop\0")];
    let (asked, err, _) = call(&mut r, &g, 2, SYS_SYMLINK, &[a, a], mem, mem);
    assert_eq!(err, 0);
    assert_eq!(
        asked,
        vec![a],
        "the second copy of the taken range is asked, once"
    );
    let (asked, err, _) = call(&mut r, &g, 3, SYS_OPEN, &[a, 0, 0], mem, mem);
    assert!(asked.is_empty(), "open's path came with it");
    assert_eq!(err, ELOOP);
}

/// rename("/a", "/b") with the two strings next to each other: the client sends them as one
/// merged range; each copy takes part of it, so nothing is asked, and the rename happened.
#[test]
fn parts_of_one_range_are_all_served_from_it() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let (mut r, g) = granted(srv.sock.as_deref().unwrap());
    let a = 0x7000_0000u64;
    let both: &[u8] = b"/a\0/b\0";
    let mem: &[(u64, &[u8])] = &[(a, both)];
    // open("/a", O_CREAT | O_RDWR, 0644)
    let (asked, err, _) = call(&mut r, &g, 2, SYS_OPEN, &[a, 0x202, 0o644], mem, mem);
    assert_eq!((asked.len(), err), (0, 0));
    let (asked, err, _) = call(&mut r, &g, 3, SYS_RENAME, &[a, a + 3], mem, mem);
    assert!(
        asked.is_empty(),
        "both names came in the one range: {asked:x?}"
    );
    assert_eq!(err, 0);
    let (_, err, _) = call(&mut r, &g, 4, SYS_OPEN, &[a, 0, 0], mem, mem);
    assert_eq!(err, ENOENT, "/a was renamed");
    let (_, err, _) = call(&mut r, &g, 5, SYS_OPEN, &[a + 3, 0, 0], mem, mem);
    assert_eq!(err, 0, "/b exists");
}
