//! One sp connection of the load generator: connect, banner, GUEST handshake, blocking calls
//! for setup, and serving the server's copy requests from the generator's own buffers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use sp::fast::FastGrant;
use sp::url::SpAddr;
use sp::{Class, ErrorCode, Frame, HandshakeType, MsgType};

use crate::nb;
use crate::workload::{addr, Call, Fds};

/// Largest frame the generator accepts (a COPYOUT of a large block plus headers).
pub const MAX_FRAME_LEN: usize = sp::HEADER_LEN + (4 << 20);
/// Reqnos of setup calls (load calls use the slot number).
const SETUP_REQNO: u64 = 1 << 40;

/// A failure that ends the run, with the text for the operator.
pub type Fatal = String;

/// Connects to `addr` and returns the socket as a file (read/write are recv/send).
pub fn connect(addr: &SpAddr) -> io::Result<File> {
    let fd: OwnedFd = match addr {
        SpAddr::Unix(p) => UnixStream::connect(p)?.into(),
        SpAddr::Tcp(a) => {
            let s = TcpStream::connect(a)?;
            s.set_nodelay(true)?;
            s.into()
        }
    };
    Ok(File::from(fd))
}

/// Per-connection state that frame handling mutates (everything but the decoder).
pub struct ConnState {
    /// Bytes queued for the server; `out_off` of them are already sent.
    pub out: Vec<u8>,
    pub out_off: usize,
    /// NUL-terminated strings by id (see `workload::strid`).
    pub strings: Vec<Vec<u8>>,
    /// The bytes served for COPYIN of the write region.
    pub pattern: Arc<[u8]>,
    /// Descriptors opened during setup.
    pub fds: Fds,
    setup_seq: u64,
    /// The sp fast path's grant, if the server gave one: calls carry what they copy in.
    pub fast: Option<FastGrant>,
}

/// One connection.
pub struct Conn {
    pub sock: File,
    pub dec: sp::FrameDecoder,
    pub st: ConnState,
}

impl ConnState {
    /// Answers a COPYIN/COPYINSTR or checks a COPYOUT. Other server requests are ignored.
    pub fn serve_request(&mut self, f: &Frame<'_>) -> Result<(), Fatal> {
        let h = f.header;
        match h.typ {
            MsgType::COPYIN | MsgType::COPYINSTR => {
                let req = sp::parse_copy_req(f.payload).ok_or("malformed copy request")?;
                let string = h.typ == MsgType::COPYINSTR;
                let data = copyin_data(&self.strings, &self.pattern, req.addr, req.len, string)?;
                sp::encode_copyin_resp(&mut self.out, h.reqno, data);
                Ok(())
            }
            MsgType::COPYOUT | MsgType::COPYOUTSTR => {
                let (a, data) = sp::parse_copyout_req(f.payload).ok_or("malformed copyout")?;
                let ok = [addr::READ, addr::STAT, addr::DENTS]
                    .iter()
                    .any(|&b| a >= b && a + data.len() as u64 <= b + addr::SINK_LEN);
                match ok {
                    true => Ok(()),
                    false => Err(format!(
                        "the server wrote {} bytes to client address {a:#x}, which no call \
                         passed",
                        data.len()
                    )),
                }
            }
            _ => Ok(()), // RAISE and others: nothing to answer
        }
    }

    /// Queues a syscall request. On the fast path, the strings and write data the call
    /// names travel with it (docs/sp-fastpath.md); a call that copies nothing in is sent plain.
    pub fn push_call(&mut self, reqno: u64, c: &Call) {
        let Some(g) = self.fast else {
            sp::encode_syscall_req(&mut self.out, reqno, c.nr, c.args());
            return;
        };
        let mut cand: [(u64, &[u8]); 2] = [(0, &[]); 2];
        let mut n = 0;
        for (i, &a) in c.args().iter().enumerate() {
            let data = if (addr::STR..addr::WRITE).contains(&a) {
                copyin_data(&self.strings, &self.pattern, a, addr::STR_STRIDE, true).ok()
            } else if (addr::WRITE..addr::READ).contains(&a) && i == 1 {
                // write/pwrite(fd, buf, nbyte, ...): the length is the next slot.
                let len = c.args().get(2).copied().unwrap_or(0);
                copyin_data(&self.strings, &self.pattern, a, len, false).ok()
            } else {
                None
            };
            if let Some(d) = data.filter(|d| !d.is_empty()) {
                if n < cand.len() {
                    cand[n] = (a, d);
                    n += 1;
                }
            }
        }
        match n {
            0 => sp::encode_syscall_req(&mut self.out, reqno, c.nr, c.args()),
            _ => sp::fast::encode_fast_syscall(
                &mut self.out,
                reqno,
                c.nr,
                c.args(),
                &mut cand[..n],
                &g,
            ),
        }
    }

    /// String `id` without its NUL (empty if never set).
    pub fn string(&self, id: usize) -> &[u8] {
        self.strings
            .get(id)
            .map_or(&[][..], |v| &v[..v.len().saturating_sub(1)])
    }

    /// Sets string `id` to `s` (NUL appended).
    /// Stores raw bytes (a `struct sockaddr_in`, an option value) under string id `id`.
    pub fn set_bytes(&mut self, id: usize, b: &[u8]) {
        if self.strings.len() <= id {
            self.strings.resize(id + 1, b"\0".to_vec());
        }
        self.strings[id] = b.to_vec();
    }

    pub fn set_string(&mut self, id: usize, s: &str) {
        if self.strings.len() <= id {
            self.strings.resize(id + 1, b"\0".to_vec());
        }
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.strings[id] = v;
    }
}

impl Conn {
    /// Connects and performs the GUEST handshake, asking for the sp fast path if `fast`; a
    /// server that refuses it (ERROR AUTH and a close, as NetBSD's) is connected to again.
    pub fn open(a: &SpAddr, pattern: Arc<[u8]>, fast: bool) -> Result<Conn, Fatal> {
        if fast {
            if let Some(c) = Conn::open_once(a, pattern.clone(), true)? {
                return Ok(c);
            }
            // Refused: plain sp on a new connection.
        }
        Conn::open_once(a, pattern, false)?.ok_or_else(|| "handshake refused".to_string())
    }

    /// One connection attempt; `None` when a fast handshake was refused.
    fn open_once(a: &SpAddr, pattern: Arc<[u8]>, fast: bool) -> Result<Option<Conn>, Fatal> {
        let mut sock = connect(a).map_err(|e| format!("connect to {a:?}: {e}"))?;
        let mut banner = [0u8; sp::BANNER_MAX_LEN];
        let n = sock
            .read(&mut banner)
            .map_err(|e| format!("reading the banner: {e}"))?;
        if n == 0 || banner[n - 1] != b'\n' {
            return Err(format!(
                "bad banner from the server: {:?}",
                String::from_utf8_lossy(&banner[..n])
            ));
        }
        let mut c = Conn {
            sock,
            dec: sp::FrameDecoder::new(MAX_FRAME_LEN),
            st: ConnState {
                out: Vec::with_capacity(4096),
                out_off: 0,
                strings: Vec::new(),
                pattern,
                fds: Fds::NONE,
                setup_seq: 0,
                fast: None,
            },
        };
        match fast {
            true => sp::fast::encode_fast_handshake_req(
                &mut c.st.out,
                0,
                HandshakeType::GUEST.0,
                b"loadtest\0",
            ),
            false => {
                sp::encode_handshake_name_req(&mut c.st.out, 0, HandshakeType::GUEST, b"loadtest")
            }
        }
        c.flush_blocking()?;
        let mut rbuf = vec![0u8; 4096];
        loop {
            let n = match c.read_some(&mut rbuf) {
                Ok(n) => n,
                Err(_) if fast => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut input = &rbuf[..n];
            if let Some(f) = c.dec.next(&mut input).map_err(|e| format!("{e:?}"))? {
                let h = f.header;
                if h.class == Class::RESP && h.typ == MsgType::HANDSHAKE {
                    let e = sp::parse_handshake_resp(f.payload).unwrap_or(-1);
                    let grant = sp::fast::parse_fast_handshake_resp(f.payload);
                    return match e {
                        0 => {
                            c.st.fast = grant;
                            Ok(Some(c))
                        }
                        e => Err(format!("handshake refused: {}", nb::errname(e))),
                    };
                }
                if fast && h.class == Class::ERROR && ErrorCode(h.u) == ErrorCode::AUTH {
                    return Ok(None);
                }
                return Err(format!("unexpected frame during the handshake: {h:?}"));
            }
        }
    }

    /// The socket's descriptor.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Fatal> {
        loop {
            match self.sock.read(buf) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("receive: {e}")),
            }
        }
    }

    /// Sends everything queued (blocking socket).
    pub fn flush_blocking(&mut self) -> Result<(), Fatal> {
        let st = &mut self.st;
        self.sock
            .write_all(&st.out[st.out_off..])
            .map_err(|e| format!("send: {e}"))?;
        st.out.clear();
        st.out_off = 0;
        Ok(())
    }

    /// A blocking syscall (setup): `Ok(Ok(retval))`, `Ok(Err(errno))`, or a fatal error.
    pub fn call(&mut self, c: &Call, rbuf: &mut [u8]) -> Result<Result<[i64; 2], i32>, Fatal> {
        self.st.setup_seq += 1;
        let reqno = SETUP_REQNO + self.st.setup_seq;
        self.st.push_call(reqno, c);
        self.flush_blocking()?;
        loop {
            let n = self.read_some(rbuf)?;
            let mut input = &rbuf[..n];
            let mut result = None;
            while let Some(f) = self.dec.next(&mut input).map_err(|e| format!("{e:?}"))? {
                let h = f.header;
                match h.class {
                    Class::REQ => self.st.serve_request(&f)?,
                    Class::RESP if h.reqno == reqno => {
                        let r = sp::parse_syscall_resp(f.payload).ok_or("short response")?;
                        result = Some(match r.error {
                            0 => Ok(r.retval),
                            e => Err(e),
                        });
                    }
                    Class::ERROR if ErrorCode(h.u) == ErrorCode::TRYAGAIN => {
                        self.st.push_call(reqno, c)
                    }
                    _ => return Err(format!("unexpected frame during setup: {h:?}")),
                }
            }
            self.flush_blocking()?;
            if let Some(r) = result {
                return Ok(r);
            }
        }
    }

    /// A setup call that must succeed (or fail with one of `ok_errs`).
    pub fn must(
        &mut self,
        what: &str,
        c: &Call,
        ok_errs: &[i32],
        rbuf: &mut [u8],
    ) -> Result<i64, Fatal> {
        match self.call(c, rbuf)? {
            Ok(rv) => Ok(rv[0]),
            Err(e) if ok_errs.contains(&e) => Ok(-1),
            Err(e) => Err(syscall_failure(what, c.nr, e)),
        }
    }
}

/// The bytes a COPYIN (or COPYINSTR, `string`) of `len` bytes at `a` reads.
fn copyin_data<'a>(
    strings: &'a [Vec<u8>],
    pattern: &'a [u8],
    a: u64,
    len: u64,
    string: bool,
) -> Result<&'a [u8], Fatal> {
    let bad = || format!("the server asked for {len} bytes at client address {a:#x}");
    if a >= addr::WRITE && a < addr::WRITE + pattern.len() as u64 {
        let off = (a - addr::WRITE) as usize;
        let end = off.checked_add(len as usize).ok_or_else(bad)?;
        return pattern.get(off..end).ok_or_else(bad);
    }
    if (addr::STR..addr::WRITE).contains(&a) {
        let id = ((a - addr::STR) / addr::STR_STRIDE) as usize;
        let off = ((a - addr::STR) % addr::STR_STRIDE) as usize;
        let s = strings
            .get(id)
            .ok_or_else(bad)?
            .get(off..)
            .ok_or_else(bad)?;
        if string {
            return Ok(&s[..s.len().min(len as usize)]);
        }
        return s.get(..len as usize).ok_or_else(bad);
    }
    Err(bad())
}

/// The message for a syscall that failed where the workload needs it.
pub fn syscall_failure(what: &str, nr: u32, e: i32) -> Fatal {
    let name = nb::sysname(nr);
    if e == nb::ENOSYS {
        format!(
            "{what}: the server answered ENOSYS to {name} (syscall {nr}): it does not \
             implement that system call yet, so this workload cannot run against it"
        )
    } else {
        format!("{what}: {name} (syscall {nr}) failed: {}", nb::errname(e))
    }
}
