//! Client unit tests against scripted fake servers (socketpairs and real listeners).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sp::{Class, ErrorCode, Header, MsgType};

use super::*;

const BANNER: &[u8] = b"RUMPSP-0.4-NetBSD-10.0/amd64\n";
const PLAIN: Options = Options { fast_path: false };

/// Parses a hex dump as printed in sp-protocol.md §18.
fn hex(dump: &str) -> Vec<u8> {
    dump.lines()
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, bytes)| bytes.split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// The server end of a connection, driven by a test script.
struct Fake<S: Read + Write> {
    s: S,
}

impl<S: Read + Write> Fake<S> {
    fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.s.read_exact(&mut v).unwrap();
        v
    }

    fn frame(&mut self) -> (Header, Vec<u8>) {
        let h = self.bytes(24);
        let h = Header::from_bytes(&h.try_into().unwrap());
        let p = self.bytes(h.payload_len());
        (h, p)
    }

    fn frame_raw(&mut self) -> Vec<u8> {
        let mut v = self.bytes(24);
        let h = Header::from_bytes(&v[..24].try_into().unwrap());
        v.extend(self.bytes(h.payload_len()));
        v
    }

    /// Reads a GUEST handshake (checking reqno and name) and accepts it.
    fn accept_guest(&mut self, reqno: u64, name: &str) {
        let (h, p) = self.frame();
        assert_eq!(
            (h.class, h.typ, h.u, h.reqno),
            (Class::REQ, MsgType::HANDSHAKE, 0, reqno)
        );
        assert_eq!(p, format!("{name}\0").as_bytes());
        self.resp_handshake(reqno, 0);
    }

    fn resp_handshake(&mut self, reqno: u64, error: i32) {
        let mut o = Vec::new();
        sp::encode_handshake_resp(&mut o, reqno, error);
        self.send(&o);
    }

    fn resp_syscall(&mut self, reqno: u64, error: i32, rv: [i64; 2]) {
        let mut o = Vec::new();
        sp::encode_syscall_resp(&mut o, reqno, error, rv);
        self.send(&o);
    }

    fn error(&mut self, reqno: u64, code: ErrorCode) {
        let mut o = Vec::new();
        sp::encode_error(&mut o, reqno, code);
        self.send(&o);
    }

    /// Sends COPYIN/COPYINSTR and returns the client's answer payload (checking its header).
    fn copyin(&mut self, reqno: u64, typ: MsgType, len: u64, addr: u64) -> Vec<u8> {
        let mut o = Vec::new();
        sp::encode_copyin_req(&mut o, reqno, typ, len, addr);
        self.send(&o);
        let (h, p) = self.frame();
        assert_eq!(
            (h.class, h.typ, h.reqno, h.u),
            (Class::RESP, MsgType::COPYIN, reqno, 0)
        );
        p
    }

    fn copyout(&mut self, reqno: u64, addr: u64, data: &[u8]) {
        let mut o = Vec::new();
        sp::encode_copyout_req(&mut o, reqno, addr, data);
        self.send(&o);
    }

    /// Reads a SYSCALL request; returns (reqno, sysnum, args).
    fn syscall_req(&mut self) -> (u64, u32, [u64; 8]) {
        let (h, p) = self.frame();
        assert_eq!((h.class, h.typ), (Class::REQ, MsgType::SYSCALL));
        (h.reqno, h.u, sp::syscall_args(&p))
    }
}

/// Starts `script` as the server of a socketpair (after sending `banner`) and connects a
/// client named `name` to it.
fn with_server<F>(banner: &'static [u8], name: &str, script: F) -> (Result<Client>, JoinHandle<()>)
where
    F: FnOnce(&mut Fake<UnixStream>) + Send + 'static,
{
    let (c, s) = UnixStream::pair().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = thread::spawn(move || {
        let mut f = Fake { s };
        f.send(banner);
        script(&mut f);
    });
    (Client::from_unix_stream(c, name), t)
}

#[test]
fn worked_example_byte_for_byte() {
    let (c, t) = with_server(BANNER, "hello", |f| {
        let hs = f.bytes(30);
        assert_eq!(
            hs,
            hex("0000: 1e 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00\n\
                 0010: 00 00 00 00 00 00 00 00 68 65 6c 6c 6f 00")
        );
        f.send(&hex(
            "0000: 1c 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00\n\
                     0010: 01 00 00 00 00 00 00 00 00 00 00 00",
        ));
        assert_eq!(
            f.bytes(24),
            hex("0000: 18 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00\n\
                 0010: 00 00 01 00 14 00 00 00")
        );
        f.send(&hex(
            "0000: 30 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00\n\
                     0010: 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                     0020: 02 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00",
        ));
        // write(1, "hi", 2): the buffer address is the client's, so patch it into the dump.
        let w = f.bytes(48);
        let addr = u64::from_le_bytes(w[32..40].try_into().unwrap());
        let mut expect = hex("0000: 30 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00\n\
                              0010: 00 00 01 00 04 00 00 00 01 00 00 00 00 00 00 00\n\
                              0020: a0 92 55 55 55 55 00 00 02 00 00 00 00 00 00 00");
        expect[32..40].copy_from_slice(&addr.to_le_bytes());
        assert_eq!(w, expect);
        let mut req = hex("0000: 28 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                           0010: 00 00 02 00 00 00 00 00 02 00 00 00 00 00 00 00\n\
                           0020: a0 92 55 55 55 55 00 00");
        req[32..40].copy_from_slice(&addr.to_le_bytes());
        f.send(&req);
        assert_eq!(
            f.bytes(26),
            hex("0000: 1a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                 0010: 01 00 02 00 00 00 00 00 68 69")
        );
        f.send(&hex(
            "0000: 30 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00\n\
                     0010: 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00\n\
                     0020: 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        ));
    });
    let mut c = c.unwrap();
    assert_eq!(c.banner(), "RUMPSP-0.4-NetBSD-10.0/amd64\n");
    assert_eq!(c.getpid().unwrap(), (2, 1));
    assert_eq!(c.write(1, b"hi").unwrap(), 2);
    t.join().unwrap();
}

#[test]
fn tryagain_resends_with_a_new_reqno() {
    let (c, t) = with_server(BANNER, "t", |f| {
        f.accept_guest(1, "t");
        for expect in 2..5 {
            let (r, n, _) = f.syscall_req();
            assert_eq!((r, n), (expect, 20));
            f.error(r, ErrorCode::TRYAGAIN);
        }
        let (r, n, _) = f.syscall_req();
        assert_eq!((r, n), (5, 20));
        f.resp_syscall(r, 0, [7, 1]);
    });
    let mut c = c.unwrap();
    assert_eq!(c.getpid().unwrap(), (7, 1));
    t.join().unwrap();
}

#[test]
fn copy_requests_only_touch_the_given_regions() {
    let (c, t) = with_server(BANNER, "m", |f| {
        f.accept_guest(1, "m");
        let (r, n, a) = f.syscall_req();
        assert_eq!(n, 4);
        let (addr, len) = (a[1], a[2]);
        assert_eq!(len, 5);
        assert_eq!(f.copyin(0, MsgType::COPYIN, 5, addr), b"hello");
        assert_eq!(f.copyin(1, MsgType::COPYIN, 3, addr + 1), b"ell");
        assert_eq!(
            f.copyin(2, MsgType::COPYIN, 5, addr + 1),
            b"",
            "past the end"
        );
        assert_eq!(
            f.copyin(3, MsgType::COPYIN, 1, addr - 1),
            b"",
            "before the start"
        );
        assert_eq!(
            f.copyin(4, MsgType::COPYIN, 8, 0x1000),
            b"",
            "unrelated memory"
        );
        assert_eq!(f.copyin(5, MsgType::COPYINSTR, 1024, 0x1000), b"");
        // A short (malformed) copy request is answered empty too.
        let mut o = Vec::new();
        let h = Header {
            len: 30,
            reqno: 6,
            class: Class::REQ,
            typ: MsgType::COPYIN,
            u: 0,
        };
        o.extend_from_slice(&h.to_bytes());
        o.extend_from_slice(&[1; 6]);
        f.send(&o);
        let (h, p) = f.frame();
        assert_eq!((h.reqno, p.len()), (6, 0));
        // COPYOUT into a read-only region is ignored; ANONMMAP answered 0; RAISE recorded.
        f.copyout(7, addr, b"XX");
        let mut o = Vec::new();
        sp::encode_anonmmap_req(&mut o, 8, 4096);
        sp::encode_raise(&mut o, 9, 13);
        f.send(&o);
        let (h, p) = f.frame();
        assert_eq!(
            (h.class, h.typ, h.reqno),
            (Class::RESP, MsgType::ANONMMAP, 8)
        );
        assert_eq!(sp::parse_u64(&p), Some(0));
        f.resp_syscall(r, 0, [5, 0]);

        // read(0, buf[8]): COPYOUT inside, partly outside, outside.
        let (r, n, a) = f.syscall_req();
        assert_eq!((n, a[0], a[2]), (3, 0, 8));
        f.copyout(10, a[1] + 2, b"abc");
        f.copyout(11, a[1] + 6, b"zzz");
        f.copyout(12, 0x1000, b"q");
        assert_eq!(
            f.copyin(13, MsgType::COPYIN, 1, a[1]),
            b"",
            "Out is not readable"
        );
        f.resp_syscall(r, 0, [3, 0]);

        // reboot with a boot string: COPYINSTR within the string.
        let (r, n, a) = f.syscall_req();
        assert_eq!((n, a[0]), (208, 0x400));
        assert_eq!(f.copyin(14, MsgType::COPYINSTR, 128, a[1]), b"boot\0");
        assert_eq!(f.copyin(15, MsgType::COPYINSTR, 2, a[1]), b"bo");
        f.resp_syscall(r, 0, [0, 0]);
    });
    let mut c = c.unwrap();
    let data = *b"hello";
    assert_eq!(c.write(1, &data).unwrap(), 5);
    assert_eq!(data, *b"hello");
    assert_eq!(c.last_signal(), Some(13));
    let mut buf = [0u8; 8];
    assert_eq!(c.read(0, &mut buf).unwrap(), 3);
    assert_eq!(buf, *b"\0\0abc\0\0\0");
    c.reboot(0x400, Some(c"boot")).unwrap();
    t.join().unwrap();
}

#[test]
fn pipelined_requests_are_matched_by_reqno() {
    let (c, t) = with_server(BANNER, "p", |f| {
        f.accept_guest(1, "p");
        let reqs: Vec<_> = (0..3).map(|_| f.syscall_req()).collect();
        assert_eq!(reqs.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(reqs[1].2[..2], [int_arg(-100), 0xdead]);
        // Answer out of order, with a TRYAGAIN for 3 (re-sent under the same reqno) and a
        // copy request in between.
        f.resp_syscall(4, 0, [40, 0]);
        f.error(3, ErrorCode::TRYAGAIN);
        let (r, n, a) = f.syscall_req();
        assert_eq!((r, n, a[0], a[1]), (3, 92, int_arg(-100), 0xdead));
        assert_eq!(f.copyin(0, MsgType::COPYIN, 2, 0x10), b"");
        f.resp_syscall(2, 9, [-1, 0]);
        f.error(3, ErrorCode::MALFORMED_REQUEST);
        // A blocking call while one pipelined request is still out: its answer is kept.
        let (r, _, _) = f.syscall_req();
        assert_eq!(r, 5);
        let (r, n, _) = f.syscall_req();
        assert_eq!((r, n), (6, 20));
        f.resp_syscall(5, 0, [55, 0]);
        f.resp_syscall(999, 0, [0, 0]); // nobody waits for it: dropped
        f.resp_syscall(6, 0, [2, 1]);
    });
    let mut c = c.unwrap();
    assert_eq!(c.send_syscall(20, &[]).unwrap(), 2);
    assert_eq!(c.send_syscall(92, &[int_arg(-100), 0xdead]).unwrap(), 3);
    assert_eq!(c.send_syscall(6, &[1]).unwrap(), 4);
    assert_eq!(c.outstanding(), 3);
    assert_eq!(c.recv_syscall(&mut []).unwrap(), (4, Ok([40, 0])));
    assert_eq!(c.recv_syscall(&mut []).unwrap(), (2, Err(9)));
    assert_eq!(c.recv_syscall(&mut []).unwrap(), (3, Err(22)));
    assert_eq!(c.outstanding(), 0);
    assert!(matches!(c.recv_syscall(&mut []), Err(Error::Protocol(_))));
    assert_eq!(c.send_syscall(6, &[]).unwrap(), 5);
    assert_eq!(c.getpid().unwrap(), (2, 1));
    assert_eq!(c.recv_syscall(&mut []).unwrap(), (5, Ok([55, 0])));
    t.join().unwrap();
}

#[test]
fn syscall_errors() {
    let (c, t) = with_server(BANNER, "e", |f| {
        f.accept_guest(1, "e");
        let (r, n, a) = f.syscall_req();
        assert_eq!((n, a[0]), (6, 99));
        f.resp_syscall(r, 9, [-1, 0]);
        let (r, _, _) = f.syscall_req();
        f.error(r, ErrorCode::MALFORMED_REQUEST);
        // getpid is NOERR: the error field is ignored.
        let (r, _, _) = f.syscall_req();
        f.resp_syscall(r, 78, [3, 1]);
    });
    let mut c = c.unwrap();
    let e = c.close(99).unwrap_err();
    assert!(matches!(e, Error::Errno(9)), "{e}");
    assert_eq!(e.errno(), Some(9));
    let e = c.dup(1).unwrap_err();
    assert!(matches!(e, Error::Sp(ErrorCode::MALFORMED_REQUEST)), "{e}");
    assert_eq!(e.errno(), Some(22));
    assert_eq!(c.getpid().unwrap(), (3, 1));
    t.join().unwrap();
}

#[test]
fn typed_helpers_marshal_arguments() {
    let (c, t) = with_server(BANNER, "h", |f| {
        f.accept_guest(1, "h");
        let mut expect: Vec<(u32, Vec<u64>, [i64; 2])> = vec![
            (24, vec![], [5, 6]),
            (25, vec![], [6, 0]),
            (47, vec![], [7, 8]),
            (43, vec![], [8, 0]),
            (39, vec![], [1, 0]),
            (305, vec![], [0, 0]),
            (60, vec![0o22], [0o77, 0]),
            (41, vec![1], [3, 0]),
            (90, vec![1, 10], [10, 0]),
            (505, vec![1, 11, 0x10000], [11, 0]),
            (454, vec![1, 12, 0], [12, 0]),
            (92, vec![3, 2, 1], [0, 0]),
            (92, vec![int_arg(-1), 1, u64::MAX], [0, 0]),
            (208, vec![int_arg(-8), 0], [0, 0]),
        ];
        for (n, args, rv) in expect.drain(..) {
            let (r, sn, a) = f.syscall_req();
            assert_eq!(sn, n);
            assert_eq!(&a[..args.len()], &args[..], "syscall {n}");
            assert!(a[args.len()..].iter().all(|&x| x == 0));
            f.resp_syscall(r, 0, rv);
        }
        // writev: the iovec array, then both buffers.
        let (r, n, a) = f.syscall_req();
        assert_eq!((n, a[0], a[2]), (121, 1, 2));
        let iov = f.copyin(0, MsgType::COPYIN, 32, a[1]);
        let b0 = u64::from_le_bytes(iov[0..8].try_into().unwrap());
        let l0 = u64::from_le_bytes(iov[8..16].try_into().unwrap());
        let b1 = u64::from_le_bytes(iov[16..24].try_into().unwrap());
        let l1 = u64::from_le_bytes(iov[24..32].try_into().unwrap());
        assert_eq!(f.copyin(1, MsgType::COPYIN, l0, b0), b"ab");
        assert_eq!(f.copyin(2, MsgType::COPYIN, l1, b1), b"cde");
        f.resp_syscall(r, 0, [5, 0]);
    });
    let mut c = c.unwrap();
    assert_eq!(c.getuid().unwrap(), (5, 6));
    assert_eq!(c.geteuid().unwrap(), 6);
    assert_eq!(c.getgid().unwrap(), (7, 8));
    assert_eq!(c.getegid().unwrap(), 8);
    assert_eq!(c.getppid().unwrap(), 1);
    assert_eq!(c.issetugid().unwrap(), 0);
    assert_eq!(c.umask(0o22).unwrap(), 0o77);
    assert_eq!(c.dup(1).unwrap(), 3);
    assert_eq!(c.dup2(1, 10).unwrap(), 10);
    assert_eq!(c.dup3(1, 11, 0x10000).unwrap(), 11);
    assert_eq!(c.dup3_compat(1, 12, 0).unwrap(), 12);
    assert_eq!(c.fcntl(3, 2, 1).unwrap(), 0);
    assert_eq!(c.fcntl(-1, 1, u64::MAX).unwrap(), 0);
    c.reboot(-8, None).unwrap();
    assert_eq!(c.writev(1, &[b"ab", b"cde"]).unwrap(), 5);
    t.join().unwrap();
}

#[test]
fn int_args_are_zero_extended() {
    assert_eq!(int_arg(-100), 0x0000_0000_ffff_ff9c);
    assert_eq!(int_arg(-1), 0xffff_ffff);
    assert_eq!(int_arg(7), 7);
}

#[test]
fn bad_banners_are_rejected() {
    let (c, t) = with_server(b"RUMPSP-0.4-NetBSD-10.0/amd64", "x", |_| {});
    assert!(matches!(c, Err(Error::Protocol(_))));
    t.join().unwrap();
    let (c, t) = with_server(b"", "x", |_| {});
    assert!(matches!(c, Err(Error::Protocol(_))));
    t.join().unwrap();
}

#[test]
fn banner_and_frame_in_one_read_fail_like_librumpclient() {
    // The server must not send anything after the banner before the handshake: a single read
    // then sees more than the banner and the trailing '\n' check fails.
    const BOTH: &[u8] = b"RUMPSP-0.4-NetBSD-10.0/amd64\n\x18\0\0\0\0\0\0\0";
    let (c, t) = with_server(BOTH, "x", |_| {});
    assert!(matches!(c, Err(Error::Protocol(_))));
    t.join().unwrap();
}

#[test]
fn handshake_failures() {
    let (c, t) = with_server(BANNER, "a", |f| {
        let (h, _) = f.frame();
        f.error(h.reqno, ErrorCode::AUTH);
    });
    assert!(matches!(c, Err(Error::Sp(ErrorCode::AUTH))));
    t.join().unwrap();
    let (c, t) = with_server(BANNER, "b", |f| {
        let (h, _) = f.frame();
        f.resp_handshake(h.reqno, 5);
    });
    assert!(matches!(c, Err(Error::Errno(5))));
    t.join().unwrap();
    // Connection closed before the answer.
    let (c, t) = with_server(BANNER, "c", |f| {
        f.frame();
    });
    assert!(matches!(c, Err(Error::Io(_))));
    t.join().unwrap();
    // Garbage frame length.
    let (c, t) = with_server(BANNER, "d", |f| {
        f.frame();
        f.send(&[
            3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        ]);
    });
    assert!(matches!(c, Err(Error::Protocol(_))));
    t.join().unwrap();
    // An unknown request type from the server.
    let (c, t) = with_server(BANNER, "e", |f| {
        f.frame();
        let h = Header {
            len: 24,
            reqno: 0,
            class: Class::REQ,
            typ: MsgType(42),
            u: 0,
        };
        f.send(&h.to_bytes());
    });
    assert!(matches!(c, Err(Error::Protocol(_))));
    t.join().unwrap();
}

#[test]
fn prefork_fork_and_exec_over_a_unix_url() {
    let dir = std::env::temp_dir().join(format!("rump-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let cookie: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
    let t = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut parent = Fake { s };
        parent.send(BANNER);
        parent.accept_guest(1, "parent");
        let (h, p) = parent.frame();
        assert_eq!(
            (h.class, h.typ, h.reqno, p.len()),
            (Class::REQ, MsgType::PREFORK, 2, 0)
        );
        let mut o = Vec::new();
        sp::encode_prefork_resp(&mut o, 2, &cookie);
        parent.send(&o);

        let (s, _) = l.accept().unwrap();
        let mut child = Fake { s };
        child.send(BANNER);
        let (h, p) = child.frame();
        assert_eq!(
            (h.class, h.typ, h.u, h.reqno),
            (Class::REQ, MsgType::HANDSHAKE, 2, 1)
        );
        let hf = sp::parse_handshake_fork(&p).unwrap();
        assert_eq!((hf.cookie, hf.cancel), (cookie, 0));
        child.resp_handshake(1, 0);

        let raw = parent.frame_raw();
        let mut expect = Vec::new();
        sp::encode_handshake_req(&mut expect, 3, sp::HandshakeType::EXEC, b"newprog\0");
        assert_eq!(raw, expect);
        parent.resp_handshake(3, 0);

        // A second fork attempt with a stale cookie.
        let (s, _) = l.accept().unwrap();
        let mut late = Fake { s };
        late.send(BANNER);
        let (h, _) = late.frame();
        late.error(h.reqno, ErrorCode::INVALID_PREFORK);
    });
    let url = format!("unix://{}", path.display());
    let mut parent = Client::connect_with(&url, "parent", PLAIN).unwrap();
    let c = parent.prefork().unwrap();
    assert_eq!(c, cookie);
    let child = Client::connect_fork_with(&url, &c, PLAIN).unwrap();
    assert!(child.as_raw_fd() > 2);
    parent.exec_handshake("newprog").unwrap();
    let e = Client::connect_fork_with(&url, &c, PLAIN).unwrap_err();
    assert!(matches!(e, Error::Sp(ErrorCode::INVALID_PREFORK)), "{e}");
    t.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tcp_url_connects_with_nodelay() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut f = Fake { s };
        f.send(BANNER);
        let (h, p) = f.frame();
        assert_eq!(h.reqno, 1);
        assert_eq!(p, format!("{}\0", program_name()).as_bytes());
        f.resp_handshake(1, 0);
        let (r, _, _) = f.syscall_req();
        f.resp_syscall(r, 0, [2, 1]);
    });
    let url = format!("tcp://127.0.0.1:{port}/");
    let mut c = Client::connect_with(&url, &program_name(), PLAIN).unwrap();
    match &c.wr.stream {
        Stream::Tcp(s) => assert!(s.nodelay().unwrap()),
        Stream::Unix(_) => panic!("expected tcp"),
    }
    assert_eq!(c.getpid().unwrap(), (2, 1));
    t.join().unwrap();
}

#[test]
fn url_and_env_errors() {
    let e = Client::connect("tcp://0:3755").unwrap_err();
    assert!(matches!(&e, Error::Url(u) if u.message == "rump_sp_tcp: client needs !INADDR_ANY"));
    assert_eq!(e.errno(), Some(22));
    assert_eq!(e.to_string(), "rump_sp_tcp: client needs !INADDR_ANY");
    assert!(matches!(Client::connect("nourl"), Err(Error::Url(_))));
    let e = Client::connect("unix:///nonexistent/dir/sock").unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e}");
    assert!(matches!(server_url(None, None), Err(Error::Errno(2))));
    assert_eq!(server_url(None, Some("a".into())).unwrap(), "a");
    assert_eq!(server_url(Some("p".into()), Some("a".into())).unwrap(), "p");
}

#[test]
fn program_name_is_comm() {
    let n = program_name();
    assert!(
        !n.is_empty() && !n.ends_with('\n') && n.len() <= 127,
        "{n:?}"
    );
}

#[test]
fn writing_to_a_closed_server_is_an_error_not_sigpipe() {
    let (c, t) = with_server(BANNER, "z", |f| {
        f.accept_guest(1, "z");
    });
    let mut c = c.unwrap();
    t.join().unwrap(); // the server end is closed now
                       // Rust programs ignore SIGPIPE, which would hide a raised one. Block it in this thread
                       // instead: a blocked signal is kept pending even when ignored, so `sigpending` shows
                       // whether one was raised, and no other test thread is affected.
                       // SAFETY: the sigset_t values are plain data initialised by sigemptyset before use;
                       // changing this thread's signal mask has no memory-safety impact.
    let (r1, r2, pending) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let big = vec![7u8; 256 * 1024];
        let r1 = c.write(1, &big);
        let r2 = c.getpid();
        let mut pend: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pend);
        libc::sigpending(&mut pend);
        let pending = libc::sigismember(&pend, libc::SIGPIPE) == 1;
        // Unblocking discards a pending (ignored) SIGPIPE.
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        (r1, r2, pending)
    };
    eprintln!("DBG {r1:?} {r2:?} {pending}");
    assert!(!pending, "a SIGPIPE was raised");
    assert!(matches!(r1, Err(Error::Io(_))), "{r1:?}");
    assert!(matches!(r2, Err(Error::Io(_))), "{r2:?}");
}

/// A fresh unix socket path for a fake server.
fn sock_path(tag: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("rump-client-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let url = format!("unix://{}", path.display());
    (path, url)
}

/// Reads a fast handshake: checks the subtype and hello, returns the usual payload.
fn fast_handshake<S: Read + Write>(f: &mut Fake<S>, base: u32) -> (u64, Vec<u8>) {
    let (h, p) = f.frame();
    assert_eq!(
        (h.class, h.typ, h.u),
        (Class::REQ, MsgType::HANDSHAKE, base | sp::fast::FAST_FLAG)
    );
    let (v, rest) = sp::fast::parse_fast_hello(&p).expect("a fast hello");
    assert_eq!(v, sp::fast::FAST_VERSION);
    (h.reqno, rest.to_vec())
}

#[test]
fn fast_path_refused_falls_back_to_plain_on_a_new_connection() {
    let (path, url) = sock_path("fastno");
    let l = UnixListener::bind(&path).unwrap();
    let t = thread::spawn(move || {
        // As NetBSD's server: ERROR AUTH to the unknown subtype, then the connection closes.
        let (s, _) = l.accept().unwrap();
        let mut f = Fake { s };
        f.send(BANNER);
        let (reqno, name) = fast_handshake(&mut f, 0);
        assert_eq!((reqno, &name[..]), (1, &b"fb\0"[..]));
        f.error(reqno, ErrorCode::AUTH);
        drop(f);
        let (s, _) = l.accept().unwrap();
        let mut f = Fake { s };
        f.send(BANNER);
        f.accept_guest(1, "fb");
        let (h, p) = f.frame();
        assert_eq!(
            (h.typ, h.u, p.len()),
            (MsgType::SYSCALL, 4, 24),
            "plain write"
        );
        let got = f.copyin(0, MsgType::COPYIN, 2, sp::syscall_args(&p)[1]);
        assert_eq!(got, b"hi");
        f.resp_syscall(h.reqno, 0, [2, 0]);
        // The URL is remembered: a second client does not ask again.
        let (s, _) = l.accept().unwrap();
        let mut f = Fake { s };
        f.send(BANNER);
        f.accept_guest(1, "fb2");
    });
    let mut c = Client::connect_named(&url, "fb").unwrap();
    assert_eq!(c.fast_path(), None);
    assert_eq!(c.write(1, b"hi").unwrap(), 2);
    let c2 = Client::connect_named(&url, "fb2").unwrap();
    assert_eq!(c2.fast_path(), None);
    t.join().unwrap();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn fast_path_granted_carries_what_the_kernel_reads() {
    let (path, url) = sock_path("fastyes");
    let l = UnixListener::bind(&path).unwrap();
    let grant = sp::fast::FastGrant {
        version: 1,
        max_ranges: 64,
        max_bytes: 3,
    };
    let cookie = [7u8; 16];
    let t = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut f = Fake { s };
        f.send(BANNER);
        let (reqno, name) = fast_handshake(&mut f, 0);
        assert_eq!(name, b"fy\0");
        let mut o = Vec::new();
        sp::fast::encode_fast_handshake_resp(&mut o, reqno, &grant);
        f.send(&o);
        // write(1, "hello", 5): the first 3 bytes (the grant) travel with the request; the
        // server asks for the rest as in plain sp.
        let (h, p) = f.frame();
        assert_eq!((h.typ, h.u), (MsgType::SYSCALL_FAST, 4));
        let fs = sp::fast::parse_fast_syscall(&p, 64, 3).unwrap();
        let addr = fs.args[1];
        assert_eq!(fs.args[2], 5);
        assert_eq!(fs.prefetch.copyin(addr, 3), Some(&b"hel"[..]));
        assert_eq!(fs.prefetch.copyin(addr, 5), None);
        assert_eq!(f.copyin(0, MsgType::COPYIN, 2, addr + 3), b"lo");
        f.resp_syscall(h.reqno, 0, [5, 0]);
        // read(): nothing to prefetch, a plain SYSCALL.
        let (r, nr, _) = f.syscall_req();
        assert_eq!(nr, 3);
        f.resp_syscall(r, 0, [0, 0]);
        let (h, p) = f.frame();
        assert_eq!((h.typ, h.reqno), (MsgType::PREFORK, 4));
        assert!(p.is_empty());
        let mut o = Vec::new();
        sp::encode_prefork_resp(&mut o, h.reqno, &cookie);
        f.send(&o);
        // The child asks for the fast path in its FORK handshake too.
        let (s, _) = l.accept().unwrap();
        let mut child = Fake { s };
        child.send(BANNER);
        let (reqno, hf) = fast_handshake(&mut child, 2);
        let hf = sp::parse_handshake_fork(&hf).unwrap();
        assert_eq!((hf.cookie, hf.cancel), (cookie, 0));
        let mut o = Vec::new();
        sp::fast::encode_fast_handshake_resp(&mut o, reqno, &grant);
        child.send(&o);
        // EXEC keeps asking: the server knows the fast path.
        let (reqno, name) = fast_handshake(&mut f, 3);
        assert_eq!(name, b"img\0");
        f.resp_handshake(reqno, 0); // granted nothing this time: plain from here on
        let (r, nr, _) = f.syscall_req();
        assert_eq!(nr, 4);
        assert_eq!(f.copyin(1, MsgType::COPYIN, 1, addr), b"h");
        f.resp_syscall(r, 0, [1, 0]);
    });
    let mut c = Client::connect_named(&url, "fy").unwrap();
    assert_eq!(c.fast_path(), Some(grant));
    let data = *b"hello";
    assert_eq!(c.write(1, &data).unwrap(), 5);
    let mut buf = [0u8; 4];
    assert_eq!(c.read(0, &mut buf).unwrap(), 0);
    let ck = c.prefork().unwrap();
    let child = Client::connect_fork(&url, &ck).unwrap();
    assert_eq!(child.fast_path(), Some(grant));
    c.exec_handshake("img").unwrap();
    assert_eq!(c.fast_path(), None);
    assert_eq!(c.write(1, &data[..1]).unwrap(), 1);
    t.join().unwrap();
    let _ = std::fs::remove_file(&path);
}
