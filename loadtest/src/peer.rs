//! The baseline's echo peer: answers every 24-byte request with a 48-byte SYSCALL response,
//! over the same socket type, connection count and in-flight depth as the measured server.
//!
//! It is the fastest sp "server" we know how to write on this host: no kernel, no decoding
//! beyond the header, one receive and one coalesced send per batch. Two engines
//! (`--peer-engine`):
//! - `uring` (default): one io_uring loop per thread (the `ring` runtime the server uses), one
//!   task per connection doing recv → respond → send. Many connections' receives and sends
//!   then go to the kernel in one `io_uring_enter`, which plain syscalls cannot match: with
//!   64 × 4 an epoll peer measured *slower* than the server itself (1.39 M vs 1.94 M ops/s).
//! - `epoll`: a thread that owns one connection uses blocking `read`/`write` (two system
//!   calls per round trip, the minimum); a thread with many uses level-triggered epoll.
//!
//! Threads: `--peer-threads` (the matrix passes the server's `-c`, so the baseline gets the
//! cores the server gets).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::JoinHandle;

use sp::url::SpAddr;
use sp::HEADER_LEN;

/// A running echo peer.
pub struct Peer {
    /// Where the load engine connects.
    pub addr: SpAddr,
    thread: Option<JoinHandle<()>>,
    unix_path: Option<PathBuf>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn accept(&self) -> io::Result<File> {
        let fd: OwnedFd = match self {
            Listener::Unix(l) => l.accept()?.0.into(),
            Listener::Tcp(l) => {
                let s = l.accept()?.0;
                s.set_nodelay(true)?;
                s.into()
            }
        };
        Ok(File::from(fd))
    }
}

/// How the peer drives its sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// `epoll` when every peer thread owns at most one connection (blocking I/O is then the
    /// fastest: 217 k vs 162 k round trips/s for one unix connection here), else `uring`.
    Auto,
    /// io_uring loops (the server's runtime).
    Uring,
    /// Blocking I/O for one connection per thread, else epoll.
    Epoll,
}

/// Starts a peer of the same socket family as `like` that serves `conns` connections with
/// `threads` threads and ends when all of them are closed.
pub fn start(
    like: &SpAddr,
    conns: usize,
    threads: usize,
    engine: Engine,
    shaped: bool,
) -> io::Result<Peer> {
    let (listener, addr, unix_path) = match like {
        SpAddr::Unix(_) => {
            let p =
                std::env::temp_dir().join(format!("loadtest-baseline-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&p);
            let l = UnixListener::bind(&p)?;
            (Listener::Unix(l), SpAddr::Unix(p.clone()), Some(p))
        }
        SpAddr::Tcp(_) => {
            let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
            let port = l.local_addr()?.port();
            let a = SpAddr::Tcp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into());
            (Listener::Tcp(l), a, None)
        }
    };
    let threads = threads.clamp(1, conns.max(1));
    let t = std::thread::Builder::new()
        .name("peer-accept".into())
        .spawn(move || {
            if let Err(e) = accept_and_serve(listener, conns, threads, engine, shaped) {
                eprintln!("loadtest: baseline peer: {e}");
            }
        })?;
    Ok(Peer {
        addr,
        thread: Some(t),
        unix_path,
    })
}

fn accept_and_serve(
    l: Listener,
    conns: usize,
    threads: usize,
    engine: Engine,
    shaped: bool,
) -> io::Result<()> {
    let uring = match engine {
        Engine::Auto => conns > threads,
        e => e == Engine::Uring,
    };
    if uring {
        return serve_uring(l, conns, threads, shaped);
    }
    let mut per_thread: Vec<Vec<File>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..conns {
        per_thread[i % threads].push(accept_one(&l)?);
    }
    drop(l);
    let workers: Vec<_> = per_thread
        .into_iter()
        .enumerate()
        .map(|(i, socks)| {
            std::thread::Builder::new()
                .name(format!("peer-{i}"))
                .spawn(move || {
                    let r = match socks.len() {
                        1 => serve_one(socks.into_iter().next().expect("one socket"), shaped),
                        _ => serve_many(socks, shaped),
                    };
                    if let Err(e) = r {
                        eprintln!("loadtest: baseline peer: {e}");
                    }
                })
        })
        .collect::<io::Result<_>>()?;
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// Accepts one connection: banner, GUEST handshake read and answered (blocking).
fn accept_one(l: &Listener) -> io::Result<File> {
    let banner = sp::banner("NetBSD", "10.1", "amd64");
    let mut s = l.accept()?;
    s.write_all(banner.as_bytes())?;
    let mut hdr = [0u8; HEADER_LEN];
    s.read_exact(&mut hdr)?;
    let h = sp::Header::from_bytes(&hdr);
    let mut payload = vec![0u8; h.payload_len().min(4096)];
    s.read_exact(&mut payload)?;
    let mut out = Vec::new();
    sp::encode_handshake_resp(&mut out, h.reqno, 0);
    s.write_all(&out)?;
    Ok(s)
}

/// The io_uring engine: connections spread over `threads` ring loops.
fn serve_uring(l: Listener, conns: usize, threads: usize, shaped: bool) -> io::Result<()> {
    let cfg = ring::Config {
        loops: threads,
        pin: true,
        ring_entries: 256,
        // The same busy-poll as the server's loops (rump_server::server::SPIN_US_DEFAULT),
        // so the baseline gets what the server gets; `RING_SPIN_US` overrides both.
        spin_us: ring::spin_us_from_env().unwrap_or(50),
        ..Default::default()
    };
    let rt = ring::Runtime::start(&cfg).map_err(|e| io::Error::other(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    for i in 0..conns {
        let fd: OwnedFd = accept_one(&l)?.into();
        let tx = tx.clone();
        rt.handles()[i % threads].spawn(move || async move {
            serve_ring(ring::Stream::from_fd(fd), shaped).await;
            let _ = tx.send(());
        });
    }
    drop(l);
    drop(tx);
    for _ in 0..conns {
        if rx.recv().is_err() {
            break;
        }
    }
    rt.shutdown();
    Ok(())
}

async fn serve_ring(s: ring::Stream, shaped: bool) {
    let mut f = Framing::new(shaped);
    let mut buf = Vec::with_capacity(64 << 10);
    let mut out = Vec::with_capacity(64 << 10);
    loop {
        let (r, b) = s.recv(buf).await;
        buf = b;
        if !matches!(r, Ok(n) if n > 0) {
            return;
        }
        f.respond(&buf, &mut out);
        let (r, o) = s.send_all(out).await;
        out = o;
        out.clear();
        if r.is_err() {
            return;
        }
    }
}

/// Where a connection's input stands between reads.
#[derive(Default)]
struct Framing {
    hdr: [u8; HEADER_LEN],
    have: usize,
    skip: u64,
    /// `--baseline-shape`: answer reads and writes with the frames a server sends.
    shaped: Option<Shaped>,
}

/// The frames of a workload without its kernel: `pread` is answered by a COPYOUT of the
/// requested length (zeros) and the response; `pwrite` by a COPYIN request, and its answer
/// by the response; anything else by the null response. So `--baseline --baseline-shape
/// read4k` moves the same bytes and round trips as read4k against a server.
struct Shaped {
    dec: sp::FrameDecoder,
    next_reqno: u64,
    /// Outstanding COPYINs: server reqno → (client reqno, length).
    copyins: std::collections::HashMap<u64, (u64, u64)>,
}

/// The data of every shaped COPYOUT (one zero page range for all connections).
static ZEROS: [u8; SHAPED_MAX_BYTES as usize] = [0; SHAPED_MAX_BYTES as usize];

/// The largest transfer a shaped peer answers (the workloads use 4 KiB).
const SHAPED_MAX_BYTES: u64 = 1 << 20;
const SYS_PREAD: u32 = 173;
const SYS_PWRITE: u32 = 174;

impl Shaped {
    fn new() -> Shaped {
        Shaped {
            dec: sp::FrameDecoder::new(sp::DEFAULT_MAX_FRAME_LEN),
            next_reqno: 1,
            copyins: std::collections::HashMap::new(),
        }
    }

    fn respond(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        loop {
            let f = match self.dec.next(&mut input) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => panic!("baseline peer: client framing lost: {e:?}"),
            };
            let h = f.header;
            if h.class == sp::Class::RESP && h.typ == sp::MsgType::COPYIN {
                if let Some((reqno, len)) = self.copyins.remove(&h.reqno) {
                    sp::encode_syscall_resp(out, reqno, 0, [len as i64, 0]);
                }
                continue;
            }
            let args = sp::syscall_args(f.payload);
            let (addr, len) = (args[1], args[2].min(SHAPED_MAX_BYTES));
            match h.u {
                SYS_PREAD => {
                    let r = self.take_reqno();
                    sp::encode_copyout_req(out, r, addr, &ZEROS[..len as usize]);
                    sp::encode_syscall_resp(out, h.reqno, 0, [len as i64, 0]);
                }
                SYS_PWRITE => {
                    let r = self.take_reqno();
                    assert!(self.copyins.len() < 1 << 16, "client never answers COPYINs");
                    self.copyins.insert(r, (h.reqno, len));
                    sp::encode_copyin_req(out, r, sp::MsgType::COPYIN, len, addr);
                }
                _ => sp::encode_syscall_resp(out, h.reqno, 0, [2, 1]),
            }
        }
    }

    fn take_reqno(&mut self) -> u64 {
        let r = self.next_reqno;
        self.next_reqno += 1;
        r
    }
}

impl Framing {
    fn new(shaped: bool) -> Framing {
        Framing {
            shaped: shaped.then(Shaped::new),
            ..Framing::default()
        }
    }

    /// Appends one 48-byte response to `out` per request header completed in `input` (or,
    /// shaped, the frames of `Shaped`).
    fn respond(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if let Some(s) = &mut self.shaped {
            return s.respond(input, out);
        }
        while !input.is_empty() {
            if self.skip > 0 {
                let k = (self.skip.min(input.len() as u64)) as usize;
                self.skip -= k as u64;
                input = &input[k..];
                continue;
            }
            let k = (HEADER_LEN - self.have).min(input.len());
            self.hdr[self.have..self.have + k].copy_from_slice(&input[..k]);
            self.have += k;
            input = &input[k..];
            if self.have == HEADER_LEN {
                self.have = 0;
                let h = sp::Header::from_bytes(&self.hdr);
                self.skip = h.len.saturating_sub(HEADER_LEN as u64);
                sp::encode_syscall_resp(out, h.reqno, 0, [2, 1]);
            }
        }
    }
}

fn serve_one(mut s: File, shaped: bool) -> io::Result<()> {
    let mut f = Framing::new(shaped);
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::with_capacity(64 << 10);
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        };
        f.respond(&buf[..n], &mut out);
        if s.write_all(&out).is_err() {
            return Ok(()); // the client went away
        }
        out.clear();
    }
}

fn serve_many(socks: Vec<File>, shaped: bool) -> io::Result<()> {
    let ep = crate::sys::Epoll::new()?;
    let mut conns: Vec<Option<(File, Framing)>> = Vec::with_capacity(socks.len());
    for (i, s) in socks.into_iter().enumerate() {
        ep.add(s.as_raw_fd(), libc::EPOLLIN as u32, i as u64)?;
        conns.push(Some((s, Framing::new(shaped))));
    }
    let mut live = conns.len();
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::with_capacity(64 << 10);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    while live > 0 {
        let n = ep.wait(&mut events, 1000)?;
        for ev in &events[..n] {
            let i = ev.u64 as usize;
            let Some((s, f)) = conns[i].as_mut() else {
                continue;
            };
            // Blocking socket: EPOLLIN promises one read will not block.
            let done = match s.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    f.respond(&buf[..n], &mut out);
                    // Responses are small and the client reads them: a blocking write of a
                    // few KiB does not stall in practice, and keeps the peer simple.
                    let r = s.write_all(&out);
                    out.clear();
                    r.is_err()
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
                Err(_) => true,
            };
            if done {
                conns[i] = None;
                live -= 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_answers_each_header_across_splits() {
        let mut req = Vec::new();
        sp::encode_syscall_req(&mut req, 7, 20, &[]);
        sp::encode_syscall_req(&mut req, 8, 4, &[1, 2, 3]);
        sp::encode_syscall_req(&mut req, 9, 20, &[]);
        for split in 0..req.len() {
            let mut f = Framing::default();
            let mut out = Vec::new();
            f.respond(&req[..split], &mut out);
            f.respond(&req[split..], &mut out);
            assert_eq!(out.len(), 3 * 48, "split at {split}");
            let reqnos: Vec<u64> = out
                .chunks(48)
                .map(|c| u64::from_le_bytes(c[8..16].try_into().unwrap()))
                .collect();
            assert_eq!(reqnos, vec![7, 8, 9]);
        }
    }

    #[test]
    fn shaped_framing_answers_reads_with_copyout_and_writes_with_copyin() {
        let mut f = Framing::new(true);
        let mut req = Vec::new();
        sp::encode_syscall_req(&mut req, 7, SYS_PREAD, &[3, 0x1000, 4096, 0, 0]);
        sp::encode_syscall_req(&mut req, 8, SYS_PWRITE, &[3, 0x2000, 4096, 0, 0]);
        sp::encode_syscall_req(&mut req, 9, 20, &[]);
        let mut out = Vec::new();
        // Byte at a time: the decoder holds partial frames.
        for b in req.chunks(1) {
            f.respond(b, &mut out);
        }
        let mut dec = sp::FrameDecoder::new(sp::DEFAULT_MAX_FRAME_LEN);
        let mut input = &out[..];
        let mut frames = Vec::new();
        while let Some(fr) = dec.next(&mut input).unwrap() {
            frames.push((fr.header, fr.payload.to_vec()));
        }
        assert_eq!(frames.len(), 4, "COPYOUT + resp, COPYIN, resp");
        let (h, p) = &frames[0];
        assert_eq!((h.class, h.typ), (sp::Class::REQ, sp::MsgType::COPYOUT));
        let (addr, data) = sp::parse_copyout_req(p).unwrap();
        assert_eq!((addr, data.len()), (0x1000, 4096));
        assert_eq!(
            sp::parse_syscall_resp(&frames[1].1).unwrap().retval[0],
            4096
        );
        assert_eq!(frames[1].0.reqno, 7);
        let (h, p) = &frames[2];
        assert_eq!((h.class, h.typ), (sp::Class::REQ, sp::MsgType::COPYIN));
        let c = sp::parse_copy_req(p).unwrap();
        assert_eq!((c.len, c.addr), (4096, 0x2000));
        assert_eq!(frames[3].0.reqno, 9, "the null call is answered at once");
        // The COPYIN answer completes the write.
        let mut ans = Vec::new();
        sp::encode_copyin_resp(&mut ans, h.reqno, &[5u8; 4096]);
        out.clear();
        f.respond(&ans, &mut out);
        let mut input = &out[..];
        let fr = dec.next(&mut input).unwrap().unwrap();
        assert_eq!(fr.header.reqno, 8);
        assert_eq!(sp::parse_syscall_resp(fr.payload).unwrap().retval[0], 4096);
    }
}
