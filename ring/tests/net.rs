//! Sockets through the ring: unix and TCP accept + echo against std clients, many concurrent
//! connections, large sends, EOF, shutdown, and recv futures dropped mid-flight.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use common::{recv, start};
use ring::Backend;

both_backends!(
    unix_accept_and_echo,
    tcp_accept_and_echo,
    many_concurrent_tcp_connections,
    recv_sees_eof_and_shutdown_ends_a_pending_recv,
    send_partial_offsets_and_bad_input,
    dropped_recv_futures_keep_their_buffers_until_completion,
    dropped_accept_is_cancelled_and_the_listener_closes,
    shutdown_ends_a_pending_tcp_accept,
    shutdown_ends_a_pending_unix_accept,
    lazy_sends_ping_pong_and_overflow_the_socket_buffer,
);

/// Echoes everything received until EOF.
async fn echo(fd: OwnedFd) {
    let s = ring::Stream::from_fd(fd);
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (r, b) = s.recv(buf).await;
        let n = r.expect("recv");
        if n == 0 {
            return;
        }
        assert_eq!(b.len(), n);
        let (r, b) = s.send_all(b).await;
        r.expect("send_all");
        buf = b;
    }
}

/// Accepts forever on the current loop, spreading connections over `handles`.
async fn accept_loop(fd: OwnedFd, handles: Vec<ring::LoopHandle>) {
    let l = ring::Listener::from_std(fd);
    let mut next = 0;
    loop {
        let Ok(c) = l.accept().await else { return };
        let flags = fd_flags(&c);
        assert!(flags & libc::FD_CLOEXEC != 0, "accepted fd is CLOEXEC");
        handles[next % handles.len()].spawn(move || echo(c));
        next += 1;
    }
}

fn fd_flags(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFD on a live descriptor.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) }
}

fn roundtrip<S: Read + Write>(s: &mut S, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

fn unix_accept_and_echo(b: Backend) {
    let Some(rt) = start(b, 2, true) else { return };
    let dir = std::env::temp_dir().join(format!("ring-test-{}-{}", std::process::id(), b.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let handles = rt.handles().to_vec();
    rt.handles()[0].spawn(move || accept_loop(OwnedFd::from(l), handles));
    for i in 0..4 {
        let mut c = UnixStream::connect(&path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        roundtrip(&mut c, format!("hello {i}").as_bytes());
        roundtrip(&mut c, &vec![i as u8; 100_000]);
    }
    rt.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

fn tcp_accept_and_echo(b: Backend) {
    let Some(rt) = start(b, 2, true) else { return };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let handles = rt.handles().to_vec();
    rt.handles()[1].spawn(move || accept_loop(OwnedFd::from(l), handles));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    roundtrip(&mut c, b"ping");
    roundtrip(
        &mut c,
        &(0..1_000_000u32).map(|x| x as u8).collect::<Vec<_>>(),
    );
    rt.shutdown();
}

fn many_concurrent_tcp_connections(b: Backend) {
    let Some(rt) = start(b, 2, true) else { return };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let handles = rt.handles().to_vec();
    rt.handles()[0].spawn(move || accept_loop(OwnedFd::from(l), handles));
    // 200 connections open at once, driven by 10 client threads.
    let threads: Vec<_> = (0..10)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conns: Vec<TcpStream> = (0..20)
                    .map(|_| {
                        let c = TcpStream::connect(addr).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        c
                    })
                    .collect();
                for round in 0..5 {
                    for (i, c) in conns.iter_mut().enumerate() {
                        roundtrip(c, format!("t{t} c{i} r{round}").as_bytes());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rt.shutdown();
}

fn recv_sees_eof_and_shutdown_ends_a_pending_recv(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (a, mut b) = UnixStream::pair().unwrap();
    let (c, d) = UnixStream::pair().unwrap();
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let s = ring::Stream::from_fd(OwnedFd::from(a));
        let (r, buf) = s.recv(Vec::with_capacity(16)).await;
        tx.send((r.unwrap(), buf)).unwrap();
        let (r, _) = s.recv(Vec::with_capacity(16)).await;
        tx.send((r.unwrap(), Vec::new())).unwrap();
        // A recv pending on another stream ends when that stream is shut down.
        let s2 = std::rc::Rc::new(ring::Stream::from_fd(OwnedFd::from(c)));
        let s3 = s2.clone();
        ring::spawn_local(async move {
            ring::sleep(Duration::from_millis(20)).await;
            s3.shutdown();
        });
        let (r, _) = s2.recv(Vec::with_capacity(16)).await;
        tx.send((r.unwrap(), Vec::new())).unwrap();
        let (r, _) = s2.send(b"x".to_vec(), 0).await;
        assert!(
            r.is_err(),
            "send after shutdown fails (EPIPE), without SIGPIPE"
        );
        tx.send((99, Vec::new())).unwrap();
    });
    b.write_all(b"abc").unwrap();
    assert_eq!(recv(&rx), (3, b"abc".to_vec()));
    drop(b);
    assert_eq!(recv(&rx).0, 0, "EOF");
    assert_eq!(recv(&rx).0, 0, "shutdown ends the pending recv");
    assert_eq!(recv(&rx).0, 99);
    drop(d);
}

fn send_partial_offsets_and_bad_input(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (a, mut b) = UnixStream::pair().unwrap();
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let s = ring::Stream::from_fd(OwnedFd::from(a));
        let (r, buf) = s.send(b"0123456789".to_vec(), 4).await;
        let sent = r.unwrap();
        let (r0, buf) = s.send(buf, 10).await;
        let (r1, buf) = s.send(buf, 11).await;
        let (r2, _) = s.recv(Vec::new()).await;
        tx.send((sent, r0.unwrap(), r1.is_err(), r2.is_err(), buf.len()))
            .unwrap();
    });
    assert_eq!(recv(&rx), (6, 0, true, true, 10));
    let mut got = [0u8; 6];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"456789");
}

fn dropped_recv_futures_keep_their_buffers_until_completion(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        for round in 0..200 {
            let (a, mut b) = UnixStream::pair().unwrap();
            let s = ring::Stream::from_fd(OwnedFd::from(a));
            {
                let mut fut = Box::pin(s.recv(Vec::with_capacity(64 * 1024)));
                std::future::poll_fn(|cx| {
                    assert!(fut.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
                if round % 2 == 0 {
                    ring::yield_now().await; // let the recv reach the kernel first
                }
                drop(fut); // abandoned: the slab keeps the 64 KiB buffer
            }
            // Data may land in the abandoned buffer (or the cancel wins); either is fine.
            b.write_all(&[round as u8; 1000]).unwrap();
            match round % 3 {
                0 => s.shutdown(),
                1 => drop(b),
                _ => {}
            }
            ring::yield_now().await;
            drop(s); // closing while an abandoned op may still be in flight
        }
        tx.send(()).unwrap();
    });
    recv(&rx);
    // The loop is still alive and serving.
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        ring::sleep(Duration::from_millis(5)).await;
        tx.send(1).unwrap();
    });
    assert_eq!(recv(&rx), 1);
    rt.shutdown();
}

fn dropped_accept_is_cancelled_and_the_listener_closes(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let l = ring::Listener::from_std(OwnedFd::from(l));
        {
            let mut fut = Box::pin(l.accept());
            std::future::poll_fn(|cx| {
                assert!(fut.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            ring::yield_now().await;
        }
        ring::yield_now().await;
        drop(l);
        tx.send(()).unwrap();
    });
    recv(&rx);
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener is closed, not kept by the ring"
    );
    rt.shutdown();
}

/// `shutdown(2)` of a listening socket from another thread ends a pending accept with an
/// error, so an accept loop can stop (as a server's halt path does).
fn shutdown_ends_pending_accept(b: Backend, fd: OwnedFd) {
    use std::os::fd::AsRawFd;
    let Some(rt) = start(b, 1, false) else { return };
    let raw = fd.as_raw_fd();
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let l = ring::Listener::from_std(fd);
        tx.send(l.accept().await.map(drop).map_err(|e| e.kind()))
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: shutdown(2) on a descriptor the listener owns and keeps open.
    unsafe { libc::shutdown(raw, libc::SHUT_RDWR) };
    let r = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("accept ended after shutdown");
    assert!(r.is_err(), "{r:?}");
}

fn shutdown_ends_a_pending_tcp_accept(b: Backend) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    shutdown_ends_pending_accept(b, OwnedFd::from(l));
}

fn shutdown_ends_a_pending_unix_accept(b: Backend) {
    let dir =
        std::env::temp_dir().join(format!("ring-test-sd-{}-{}", std::process::id(), b.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("l.sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    shutdown_ends_pending_accept(b, OwnedFd::from(l));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Round-trip time of a one-byte echo through a loop, against a std client on a unix socket
/// pair (`cargo test -p rump-ring --release -- --ignored --nocapture pingpong`; on epoll with
/// `RUMP_IO_BACKEND=epoll`).
#[test]
#[ignore]
fn pingpong_round_trip_time() {
    let Some(rt) = start(common::env_backend(), 1, true) else {
        return;
    };
    let (a, mut b) = UnixStream::pair().unwrap();
    rt.handles()[0].spawn(move || echo(OwnedFd::from(a)));
    const N: u32 = 50_000;
    let mut byte = [0u8; 1];
    let t0 = std::time::Instant::now();
    for _ in 0..N {
        b.write_all(&byte).unwrap();
        b.read_exact(&mut byte).unwrap();
    }
    let per = t0.elapsed() / N;
    eprintln!(
        "ring echo round trip: {per:?} ({} /s)",
        1_000_000_000 / per.as_nanos().max(1)
    );
}

/// Lazy sends (`send_all_lazy`) used as their contract says: a reader task with an armed
/// multishot receive queues replies, a writer task sends them lazily and urges when it gets
/// more while busy. A 4000-round ping-pong never stalls (each wait ends at the next request);
/// a lazy send far larger than the socket buffer arrives whole and in order (the
/// non-blocking attempt sends part; its cancelled NOP ends the wait; the rest waits for
/// room); replies queued behind a busy writer go out without another request.
fn lazy_sends_ping_pong_and_overflow_the_socket_buffer(b: Backend) {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    #[derive(Default)]
    struct Q {
        items: VecDeque<Vec<u8>>,
        writer: Option<std::task::Waker>,
        done: bool,
    }
    fn push(q: &RefCell<Q>, item: Vec<u8>) {
        let mut q = q.borrow_mut();
        q.items.push_back(item);
        match q.writer.take() {
            Some(w) => w.wake(),
            None => ring::urge(),
        }
    }
    let Some(rt) = start(b, 1, false) else { return };
    let (a, mut peer) = UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let big: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
    let big2 = big.clone();
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let s = Rc::new(ring::Stream::from_fd(OwnedFd::from(a)));
        let q = Rc::new(RefCell::new(Q::default()));
        let (s2, q2) = (s.clone(), q.clone());
        ring::spawn_local(async move {
            loop {
                let item = std::future::poll_fn(|cx| {
                    let mut q = q2.borrow_mut();
                    match q.items.pop_front() {
                        Some(i) => Poll::Ready(Some(i)),
                        None if q.done => Poll::Ready(None),
                        None => {
                            q.writer = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    }
                })
                .await;
                let Some(item) = item else { break };
                let (r, _) = s2.send_all_lazy(item).await;
                r.expect("lazy send");
            }
            tx.send(()).unwrap();
        });
        let mut rs = s.recv_multi();
        while let Some(b) = rs.next().await.expect("recv") {
            for chunk in b.chunks(8) {
                match chunk {
                    b"BIGBIGBI" => push(&q, big2.clone()),
                    b"TWICE..." => {
                        push(&q, b"first...".to_vec());
                        push(&q, b"second..".to_vec());
                    }
                    c => push(&q, c.to_vec()),
                }
            }
        }
        q.borrow_mut().done = true;
        push(&q, Vec::new());
    });
    let mut got = [0u8; 8];
    for i in 0..4000u64 {
        let msg = i.to_le_bytes();
        peer.write_all(&msg).unwrap();
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, msg, "round {i}");
    }
    peer.write_all(b"TWICE...").unwrap();
    let mut two = [0u8; 16];
    peer.read_exact(&mut two).unwrap();
    assert_eq!(&two, b"first...second..");
    peer.write_all(b"BIGBIGBI").unwrap();
    std::thread::sleep(Duration::from_millis(20)); // let the big send fill the buffer first
    let mut all = vec![0u8; big.len()];
    peer.read_exact(&mut all).unwrap();
    assert!(all == big, "the large lazy send arrived whole and in order");
    peer.write_all(b"end.....").unwrap();
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"end.....");
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    recv(&rx);
}
