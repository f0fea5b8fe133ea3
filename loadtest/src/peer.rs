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
pub fn start(like: &SpAddr, conns: usize, threads: usize, engine: Engine) -> io::Result<Peer> {
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
            let a = SpAddr::Tcp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
            (Listener::Tcp(l), a, None)
        }
    };
    let threads = threads.clamp(1, conns.max(1));
    let t = std::thread::Builder::new()
        .name("peer-accept".into())
        .spawn(move || {
            if let Err(e) = accept_and_serve(listener, conns, threads, engine) {
                eprintln!("loadtest: baseline peer: {e}");
            }
        })?;
    Ok(Peer {
        addr,
        thread: Some(t),
        unix_path,
    })
}

fn accept_and_serve(l: Listener, conns: usize, threads: usize, engine: Engine) -> io::Result<()> {
    let uring = match engine {
        Engine::Auto => conns > threads,
        e => e == Engine::Uring,
    };
    if uring {
        return serve_uring(l, conns, threads);
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
                        1 => serve_one(socks.into_iter().next().expect("one socket")),
                        _ => serve_many(socks),
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
fn serve_uring(l: Listener, conns: usize, threads: usize) -> io::Result<()> {
    let cfg = ring::Config {
        loops: threads,
        pin: true,
        ring_entries: 256,
        ..Default::default()
    };
    let rt = ring::Runtime::start(&cfg).map_err(|e| io::Error::other(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    for i in 0..conns {
        let fd: OwnedFd = accept_one(&l)?.into();
        let tx = tx.clone();
        rt.handles()[i % threads].spawn(move || async move {
            serve_ring(ring::Stream::from_fd(fd)).await;
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

async fn serve_ring(s: ring::Stream) {
    let mut f = Framing::default();
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
}

impl Framing {
    /// Appends one 48-byte response to `out` per request header completed in `input`.
    fn respond(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
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

fn serve_one(mut s: File) -> io::Result<()> {
    let mut f = Framing::default();
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

fn serve_many(socks: Vec<File>) -> io::Result<()> {
    let ep = crate::sys::Epoll::new()?;
    let mut conns: Vec<Option<(File, Framing)>> = Vec::with_capacity(socks.len());
    for (i, s) in socks.into_iter().enumerate() {
        ep.add(s.as_raw_fd(), libc::EPOLLIN as u32, i as u64)?;
        conns.push(Some((s, Framing::default())));
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
}
