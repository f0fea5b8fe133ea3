//! The sp fast path (docs/sp-fastpath.md) against the real server: negotiation as NetBSD's
//! server answers it (tests/sp_fastpath.netbsd, recorded from the reference), SYSCALL_FAST
//! served without copy requests, what is not prefetched asked as in plain sp, hostile frames
//! refused with a disconnect, and the Rust client getting the same answers with and without.

mod common;

use std::io::Read;
use std::path::Path;

use common::{Raw, Server};
use sp::fast::{self, FastGrant, Prefetch, FAST_FLAG};
use sp::{Class, ErrorCode, HandshakeType, MsgType};

const EXPECT: &str = include_str!("sp_fastpath.netbsd");

/// The recorded line for `step` (the words after it).
fn netbsd(step: &str) -> Vec<String> {
    EXPECT
        .lines()
        .find_map(|l| l.strip_prefix(step).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no recorded line {step}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Everything the server sends until it closes (10 s timeout per read).
fn read_to_eof(r: &mut Raw) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match r.s.read(&mut b) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(_) => return (out, false),
        }
    }
}

fn fast_handshake(path: &Path, base: HandshakeType, payload: &[u8]) -> Raw {
    let (mut r, _) = Raw::connect(path);
    let mut o = Vec::new();
    fast::encode_fast_handshake_req(&mut o, 1, base.0, payload);
    r.send(&o);
    r
}

fn cookie_of(r: &mut Raw, reqno: u64) -> [u8; 16] {
    let mut o = Vec::new();
    sp::encode_prefork_req(&mut o, reqno);
    r.send(&o);
    let (h, p) = r.read_frame().unwrap();
    assert_eq!((h.class, h.typ), (Class::RESP, MsgType::PREFORK));
    sp::parse_prefork_resp(&p).unwrap()
}

fn fork_payload(cookie: &[u8; 16]) -> Vec<u8> {
    let mut p = cookie.to_vec();
    p.extend_from_slice(&0i32.to_le_bytes());
    p
}

/// With the fast path off the server answers every fast handshake as NetBSD's does, and a
/// cookie survives a refused fast FORK; on or off, SYSCALL_FAST on a plain connection is an
/// unknown type (ERROR, connection kept) and a plain handshake's answer is the same bytes.
#[test]
fn refused_as_netbsd_refuses_when_off() {
    let srv = Server::unix_env(&[], &[("RUMP_SP_FASTPATH", "0")]);
    let path = srv.sock.clone().unwrap();
    for (step, base, payload) in [
        ("guest-fast", HandshakeType::GUEST, b"probe\0".to_vec()),
        ("fork-fast", HandshakeType::FORK, fork_payload(&[0x11; 16])),
        ("exec-fast-on-new", HandshakeType::EXEC, b"probe\0".to_vec()),
    ] {
        let mut r = fast_handshake(&path, base, &payload);
        let (got, eof) = read_to_eof(&mut r);
        let ours = [hex(&got), if eof { "EOF" } else { "no-EOF" }.to_string()];
        assert_eq!(ours.to_vec(), netbsd(step), "{step}");
    }
    let mut parent = Raw::guest(&path);
    let cookie = cookie_of(&mut parent, 2);
    let mut r = fast_handshake(&path, HandshakeType::FORK, &fork_payload(&cookie));
    let (h, _) = r.read_frame().unwrap();
    assert_eq!((h.class, h.u), (Class::ERROR, ErrorCode::AUTH.0));
    let (mut r, _) = Raw::connect(&path);
    let mut o = Vec::new();
    sp::encode_handshake_fork_req(&mut o, 1, &cookie, 0);
    r.send(&o);
    let (h, p) = r.read_frame().unwrap();
    assert_eq!(
        (h.class, sp::parse_handshake_resp(&p)),
        (Class::RESP, Some(0))
    );
    assert_eq!(netbsd("prefork-then-fast-fork-then-plain-fork"), ["ok"]);

    for fast_on in ["0", "1"] {
        let srv = Server::unix_env(&[], &[("RUMP_SP_FASTPATH", fast_on)]);
        let path = srv.sock.clone().unwrap();
        let (mut r, _) = Raw::connect(&path);
        let mut o = Vec::new();
        sp::encode_handshake_req(&mut o, 1, HandshakeType::GUEST, b"plain\0");
        r.send(&o);
        let (h, p) = r.read_frame().unwrap();
        assert_eq!(
            (h.len, p),
            (28, vec![0, 0, 0, 0]),
            "plain answer, fast {fast_on}"
        );
        o.clear();
        let mut pf = Prefetch::new();
        pf.push(0x1000, b"ab");
        let g = FastGrant {
            version: 1,
            max_ranges: 4,
            max_bytes: 64,
        };
        pf.encode(&mut o, 3, 20, &[], &g);
        r.send(&o);
        let (h, _) = r.read_frame().unwrap();
        let mut raw = h.to_bytes().to_vec();
        raw.truncate(24);
        assert_eq!(
            vec![hex(&raw), "kept".into()],
            netbsd("type9-on-plain"),
            "fast {fast_on}"
        );
        o.clear();
        sp::encode_syscall_req(&mut o, 4, 20, &[]);
        r.send(&o);
        let (h, _) = r.read_frame().unwrap();
        assert_eq!(
            (h.class, h.typ, h.reqno),
            (Class::RESP, MsgType::SYSCALL, 4)
        );
    }
}

/// A granted connection: the grant's layout, a path and write data served from the request,
/// a partial prefetch answered by a COPYIN as in plain sp.
#[test]
fn granted_calls_need_no_copy_requests() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let path = srv.sock.clone().unwrap();
    let mut r = fast_handshake(&path, HandshakeType::GUEST, b"fast\0");
    let (h, p) = r.read_frame().unwrap();
    assert_eq!(
        (h.class, h.typ, h.reqno, h.len),
        (Class::RESP, MsgType::HANDSHAKE, 1, 48)
    );
    let g = fast::parse_fast_handshake_resp(&p).expect("a grant");
    assert_eq!(sp::parse_handshake_resp(&p), Some(0));
    assert_eq!((g.version, g.max_ranges), (1, fast::FAST_MAX_RANGES));
    assert!(g.max_bytes as usize >= 1 << 19, "{g:?}");

    // open("/f", O_RDWR|O_CREAT, 0644): the path travels with it; the answer comes at once.
    let (pa, wa) = (0x7000_0000u64, 0x7100_0000u64);
    let mut o = Vec::new();
    let mut pf = Prefetch::new();
    pf.push(pa, b"/f\0");
    pf.encode(&mut o, 2, 5, &[pa, 0x202, 0o644], &g);
    r.send(&o);
    let (h, p) = r.read_frame().unwrap();
    assert_eq!(
        (h.class, h.typ, h.reqno),
        (Class::RESP, MsgType::SYSCALL, 2),
        "no COPYINSTR"
    );
    let rs = sp::parse_syscall_resp(&p).unwrap();
    assert_eq!(rs.error, 0);
    let fd = rs.retval[0] as u64;

    // pwrite(fd, buf, 8, 0) with the 8 bytes prefetched: answered at once.
    o.clear();
    let mut pf = Prefetch::new();
    pf.push(wa, b"01234567");
    pf.encode(&mut o, 3, 174, &[fd, wa, 8, 0, 0], &g);
    r.send(&o);
    let (h, p) = r.read_frame().unwrap();
    assert_eq!((h.class, h.reqno), (Class::RESP, 3));
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().retval[0], 8);

    // Only 4 of 8 bytes prefetched: the kernel's copy does not fit, so it is asked for.
    o.clear();
    let mut pf = Prefetch::new();
    pf.push(wa, b"abcd");
    pf.encode(&mut o, 4, 174, &[fd, wa, 8, 0, 8], &g);
    r.send(&o);
    let (h, p) = r.read_frame().unwrap();
    assert_eq!((h.class, h.typ), (Class::REQ, MsgType::COPYIN));
    let req = sp::parse_copy_req(&p).unwrap();
    assert_eq!((req.addr, req.len), (wa, 8));
    o.clear();
    sp::encode_copyin_resp(&mut o, h.reqno, b"ABCDEFGH");
    r.send(&o);
    let (h, p) = r.read_frame().unwrap();
    assert_eq!((h.class, h.reqno), (Class::RESP, 4));
    assert_eq!(sp::parse_syscall_resp(&p).unwrap().retval[0], 8);

    // A plain SYSCALL still works on a fast connection: pread it all back.
    o.clear();
    sp::encode_syscall_req(&mut o, 5, 173, &[fd, 0x7200_0000, 16, 0, 0]);
    r.send(&o);
    let (h, p) = r.read_frame().unwrap();
    assert_eq!((h.class, h.typ), (Class::REQ, MsgType::COPYOUT));
    assert_eq!(sp::parse_copyout_req(&p).unwrap().1, b"01234567ABCDEFGH");
    let (h, _) = r.read_frame().unwrap();
    assert_eq!((h.class, h.reqno), (Class::RESP, 5));
}

/// Frames that lie about their ranges end the connection with ERROR MALFORMED_REQUEST; the
/// server keeps serving others.
#[test]
fn hostile_fast_frames_disconnect() {
    let srv = Server::unix(&[]);
    let path = srv.sock.clone().unwrap();
    let frame = |nranges: u32, descs: &[(u64, u64)], data: &[u8]| {
        let mut p = 0u32.to_le_bytes().to_vec();
        p.extend_from_slice(&nranges.to_le_bytes());
        for (a, l) in descs {
            p.extend_from_slice(&a.to_le_bytes());
            p.extend_from_slice(&l.to_le_bytes());
        }
        p.extend_from_slice(data);
        let h = sp::Header {
            len: 24 + p.len() as u64,
            reqno: 9,
            class: Class::REQ,
            typ: MsgType::SYSCALL_FAST,
            u: 4,
        };
        [h.to_bytes().to_vec(), p].concat()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("overlap", frame(2, &[(0x1000, 4), (0x1002, 4)], &[0; 8])),
        ("unsorted", frame(2, &[(0x2000, 1), (0x1000, 1)], b"ab")),
        ("lying length", frame(1, &[(0x1000, 1 << 40)], b"x")),
        ("short data", frame(1, &[(0x1000, 8)], b"x")),
        ("many ranges", frame(1000, &[(0x1000, 1); 1000], &[0; 1000])),
        ("huge count", frame(u32::MAX, &[], &[])),
        ("wraps", frame(1, &[(u64::MAX, 2)], b"ab")),
        ("empty range", frame(1, &[(0x1000, 0)], b"")),
    ];
    for (what, bytes) in cases {
        let mut r = fast_handshake(&path, HandshakeType::GUEST, b"evil\0");
        let (h, _) = r.read_frame().unwrap();
        assert_eq!(h.len, 48);
        r.send(&bytes);
        let (h, _) = r
            .read_frame()
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(
            (h.class, h.u, h.reqno),
            (Class::ERROR, ErrorCode::MALFORMED_REQUEST.0, 9)
        );
        assert!(r.closed(), "{what}: connection kept");
    }
    // A malformed hello is refused too.
    let (mut r, _) = Raw::connect(&path);
    let h = sp::Header {
        len: 24 + 6,
        reqno: 1,
        class: Class::REQ,
        typ: MsgType::HANDSHAKE,
        u: FAST_FLAG,
    };
    r.send(&[h.to_bytes().to_vec(), b"SPFP\x01\0".to_vec()].concat());
    let (h, _) = r.read_frame().unwrap();
    assert_eq!(
        (h.class, h.u),
        (Class::ERROR, ErrorCode::MALFORMED_REQUEST.0)
    );
    assert!(r.closed());
    let mut c = srv.client();
    assert!(c.getpid().unwrap().0 > 1);
}

/// The Rust client with and without the fast path gets the same answers for a script of
/// calls that copy paths, data, iovecs and structures in.
#[test]
fn client_same_answers_with_and_without() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let mut out = Vec::new();
    for fast_path in [false, true] {
        let mut c =
            client::Client::connect_with(&srv.url, "t", client::Options { fast_path }).unwrap();
        assert_eq!(c.fast_path().is_some(), fast_path);
        let d = format!("/d{}", fast_path as u8);
        let mut log = Vec::new();
        log.push(format!("{:?}", c.mkdir(&d, 0o755)));
        let f = format!("{d}/file");
        let fd = c.open(&f, 0x202, 0o644).unwrap();
        log.push(format!("{:?}", c.write(fd, b"hello ")));
        log.push(format!("{:?}", c.writev(fd, &[b"wide ", b"", b"world"])));
        log.push(format!("{:?}", c.pwrite(fd, b"W", 6)));
        let mut buf = [0u8; 32];
        let n = c.pread(fd, &mut buf, 0).unwrap();
        log.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        log.push(format!("{:?}", c.stat(&f).map(|s| s.size)));
        log.push(format!(
            "{:?}",
            c.stat(&format!("{d}/none")).map(|s| s.size)
        ));
        log.push(format!("{:?}", c.rename(&f, &format!("{d}/g"))));
        log.push(format!("{:?}", c.symlink("target", &format!("{d}/l"))));
        log.push(format!("{:?}", c.readlink(&format!("{d}/l"))));
        let long = "x".repeat(2000);
        log.push(format!("{:?}", c.stat(&long).map(|s| s.size)));
        log.push(format!("{:?}", c.close(fd)));
        out.push(log);
    }
    assert_eq!(out[0], out[1]);
    assert_eq!(out[0][4], "hello Wide world");
}

/// A large prefetch is charged to the memory budget (`-r`): with room, a write needs no copy
/// request; when the budget is taken (here by another call's prefetch, held while it blocks on
/// a full pipe), the server drops the prefetch and asks for the data as in plain sp.
#[test]
fn large_prefetch_is_charged_and_dropped_under_pressure() {
    let data = vec![b'z'; 1000 << 10];
    let wa = 0x7300_0000u64;
    for (budget, expect_copyin) in [(None, false), (Some("2m"), true)] {
        let args: Vec<&str> = match budget {
            Some(b) => vec!["-r", b],
            None => vec![],
        };
        let srv = Server::unix(&args);
        let path = srv.sock.clone().unwrap();
        let mut r = fast_handshake(&path, HandshakeType::GUEST, b"big\0");
        let (_, p) = r.read_frame().unwrap();
        let g = fast::parse_fast_handshake_resp(&p).unwrap();
        let mut o = Vec::new();
        if budget.is_some() {
            sp::encode_syscall_req(&mut o, 2, 42, &[]); // pipe
            r.send(&o);
            let (_, p) = r.read_frame().unwrap();
            let wfd = sp::parse_syscall_resp(&p).unwrap().retval[1] as u64;
            o.clear();
            let mut pf = Prefetch::new();
            pf.push(wa, &data);
            pf.encode(&mut o, 3, 4, &[wfd, wa, data.len() as u64], &g); // blocks, holding it
            r.send(&o);
        }
        o.clear();
        let mut pf = Prefetch::new();
        pf.push(wa, &data);
        pf.encode(&mut o, 4, 4, &[1, wa, data.len() as u64], &g);
        r.send(&o);
        let mut copyins = 0;
        loop {
            let (h, p) = r.read_frame().expect("an answer");
            if h.class == Class::RESP {
                assert_eq!(h.reqno, 4);
                assert_eq!(
                    sp::parse_syscall_resp(&p).unwrap().retval[0],
                    data.len() as i64
                );
                break;
            }
            assert_eq!((h.class, h.typ), (Class::REQ, MsgType::COPYIN));
            let req = sp::parse_copy_req(&p).unwrap();
            let off = (req.addr - wa) as usize;
            o.clear();
            sp::encode_copyin_resp(&mut o, h.reqno, &data[off..off + req.len as usize]);
            r.send(&o);
            copyins += 1;
        }
        assert_eq!(
            copyins > 0,
            expect_copyin,
            "budget {budget:?}: {copyins} COPYINs"
        );
    }
}

/// The Rust client against a server that refuses (as NetBSD's): it connects again in plain
/// sp and its process works; the fork's connection, knowing the refusal, hand-shakes plain.
#[test]
fn client_falls_back_when_refused() {
    let srv = Server::unix_env(&[], &[("RUMP_SP_FASTPATH", "0")]);
    let opts = client::Options { fast_path: true };
    let mut c = client::Client::connect_with(&srv.url, "fb", opts).unwrap();
    assert_eq!(c.fast_path(), None);
    let (pid, _) = c.getpid().unwrap();
    assert!(pid > 1);
    assert_eq!(c.write(1, b"x").unwrap(), 1);
    let cookie = c.prefork().unwrap();
    let mut child = client::Client::connect_fork_with(&srv.url, &cookie, opts).unwrap();
    assert_eq!(child.fast_path(), None);
    assert_ne!(child.getpid().unwrap().0, pid);
}
