//! Wiring: boot the kernel, start the loops, listen, spread connections, halt.
//!
//! Loop 0 owns the listening socket and accepts; each new connection goes to the loop with the
//! fewest live connections (ties: round robin), which then serves it to completion: every
//! request of a connection runs on the loop that owns it, with no hand-off. The main thread
//! only waits for control events: a halt requested by a client's reboot, or SIGTERM/SIGINT.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use kernel::{Kernel, Proc};
use sp::url::SpAddr;

use crate::session;

/// Bounds on what one client can make the server hold. Receive buffers are not per connection:
/// each loop lends from one fixed pool (`ring`'s provided buffer ring, 256 × 16 KiB), and a
/// partial frame waits in the connection's decoder (at most `max_frame_len`).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest frame accepted from a client, header included; longer → disconnect.
    pub max_frame_len: usize,
    /// Syscalls in flight per connection; beyond it: ERROR TRYAGAIN (librumpclient resends).
    pub max_inflight_per_conn: usize,
    /// Live connections; beyond it new connections are closed before the banner.
    pub max_conns: usize,
    /// Unclaimed PREFORK cookies per connection.
    pub max_forks_per_conn: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_len: sp::HEADER_LEN + (1 << 20),
            max_inflight_per_conn: 256,
            max_conns: 8192,
            max_forks_per_conn: 64,
        }
    }
}

/// Why the main thread wakes up.
#[derive(Debug)]
pub enum Control {
    /// A client's reboot(2) succeeded and was answered.
    Halt(u32),
    /// SIGTERM or SIGINT.
    Signal(i32),
}

/// State shared by all loops (Send + Sync).
pub struct Shared {
    pub kernel: Arc<Kernel>,
    pub banner: String,
    pub limits: Limits,
    pub forks: ForkTable,
    conn_ids: AtomicU64,
    loads: Vec<AtomicUsize>,
    live_conns: AtomicUsize,
    halting: AtomicBool,
    control: Mutex<mpsc::Sender<Control>>,
}

impl Shared {
    pub fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Called by a session when its connection is gone.
    pub fn connection_closed(&self, loop_index: usize) {
        self.loads[loop_index].fetch_sub(1, Ordering::Relaxed);
        self.live_conns.fetch_sub(1, Ordering::Relaxed);
    }

    /// Called by a session after answering a successful reboot.
    pub fn request_halt(&self, howto: u32) {
        if !self.halting.swap(true, Ordering::SeqCst) {
            let _ = self
                .control
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Control::Halt(howto));
        }
    }

    /// Picks the loop for a new connection: fewest live connections, ties round robin.
    fn pick_loop(&self, rr: usize) -> usize {
        let n = self.loads.len();
        (0..n)
            .map(|i| (rr + i) % n)
            .min_by_key(|&i| self.loads[i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

/// Cookie → (connection that prepared it, prepared process).
type Cookies = HashMap<[u8; 16], (u64, Arc<Proc>)>;

/// Prepared processes from PREFORK, by cookie (sp-protocol.md §13.1). Cookies are drawn from
/// the host's random source; a cookie dies with the connection that prepared it.
#[derive(Default)]
pub struct ForkTable {
    inner: Mutex<Cookies>,
    max_per_owner: usize,
}

impl ForkTable {
    fn new(max_per_owner: usize) -> ForkTable {
        ForkTable {
            inner: Mutex::default(),
            max_per_owner,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cookies> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn has_room(&self, owner: u64) -> bool {
        self.lock().values().filter(|(o, _)| *o == owner).count() < self.max_per_owner
    }

    pub fn insert(&self, owner: u64, p: Arc<Proc>) -> [u8; 16] {
        let mut map = self.lock();
        loop {
            let mut cookie = [0u8; 16];
            random_bytes(&mut cookie);
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry(cookie) {
                e.insert((owner, p));
                return cookie;
            }
        }
    }

    pub fn take(&self, cookie: &[u8; 16]) -> Option<Arc<Proc>> {
        self.lock().remove(cookie).map(|(_, p)| p)
    }

    pub fn expire_owner(&self, owner: u64) -> Vec<Arc<Proc>> {
        let mut map = self.lock();
        let keys: Vec<[u8; 16]> = map
            .iter()
            .filter(|(_, (o, _))| *o == owner)
            .map(|(k, _)| *k)
            .collect();
        keys.iter()
            .filter_map(|k| map.remove(k))
            .map(|(_, p)| p)
            .collect()
    }
}

/// Fills `buf` from the kernel's random source (getrandom(2)).
pub fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most rest.len() bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            panic!("getrandom failed: {}", std::io::Error::last_os_error());
        }
    }
}

/// A running server.
pub struct Server {
    pub shared: Arc<Shared>,
    pub runtime: ring::Runtime,
    listen_fd: i32,
    pub unix_path: Option<PathBuf>,
    pub tcp_port: Option<u16>,
    control_rx: mpsc::Receiver<Control>,
    /// The `-d` drives registered before the listener started.
    pub drives: Vec<crate::drives::Drive>,
}

/// A start-up failure: what to print and the errno (NetBSD numbering) to exit with.
#[derive(Debug)]
pub struct StartError {
    pub message: String,
    pub errno: i32,
}

/// Boots the kernel, starts the loops and begins listening on `addr`.
pub fn start(
    kernel: Arc<Kernel>,
    ncpu: usize,
    url: &str,
    addr: &SpAddr,
    limits: Limits,
) -> Result<Server, StartError> {
    let runtime = ring::Runtime::start(&ring::Config {
        loops: ncpu,
        pin: true,
        ring_entries: 256,
        ..Default::default() // backend: RUMP_IO_BACKEND (auto: io_uring, else epoll)
    })
    .map_err(|e| StartError {
        message: format!("rump kernel loops: {e}"),
        errno: 78,
    })?;
    let fd = crate::listen::bind_listen(addr).map_err(|e| {
        let errno = crate::hosterr::to_netbsd(e.raw_os_error().unwrap_or(libc::EIO));
        StartError {
            message: format!(
                "rump_sp: failed to bind to URL {url}\nrump server init failed: {}",
                kernel::Errno::from_raw(errno)
            ),
            errno: i32::from(errno),
        }
    })?;
    let tcp_port = match addr {
        SpAddr::Tcp(_) => crate::listen::local_port(&fd),
        SpAddr::Unix(_) => None,
    };
    let unix_path = match addr {
        SpAddr::Unix(p) if p.is_absolute() => Some(p.clone()),
        _ => None,
    };
    let (tx, control_rx) = mpsc::channel();
    let banner = sp::banner(kernel::OSTYPE, kernel::OSRELEASE, kernel::MACHINE);
    let shared = Arc::new(Shared {
        kernel,
        banner,
        forks: ForkTable::new(limits.max_forks_per_conn),
        limits,
        conn_ids: AtomicU64::new(1),
        loads: (0..ncpu).map(|_| AtomicUsize::new(0)).collect(),
        live_conns: AtomicUsize::new(0),
        halting: AtomicBool::new(false),
        control: Mutex::new(tx),
    });
    let listen_fd = fd.as_raw_fd();
    let is_tcp = matches!(addr, SpAddr::Tcp(_));
    let handles = runtime.handles().to_vec();
    let sh = shared.clone();
    let first = handles[0].clone();
    first.spawn(move || accept_loop(fd, sh, handles, is_tcp));
    Ok(Server {
        shared,
        runtime,
        listen_fd,
        unix_path,
        tcp_port,
        control_rx,
        drives: Vec::new(),
    })
}

async fn accept_loop(
    fd: OwnedFd,
    shared: Arc<Shared>,
    handles: Vec<ring::LoopHandle>,
    is_tcp: bool,
) {
    let listener = ring::Listener::from_std(fd);
    let mut rr = 0usize;
    loop {
        let conn = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                if shared.halting.load(Ordering::SeqCst) {
                    return;
                }
                match e.raw_os_error() {
                    // Out of descriptors or memory: back off instead of spinning.
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        ring::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                    Some(libc::EINTR | libc::ECONNABORTED | libc::EAGAIN) => continue,
                    _ => return,
                }
            }
        };
        if shared.live_conns.load(Ordering::Relaxed) >= shared.limits.max_conns {
            drop(conn); // closed before the banner, as the reference does when full
            continue;
        }
        if is_tcp {
            crate::listen::set_nodelay(&conn);
        }
        shared.live_conns.fetch_add(1, Ordering::Relaxed);
        let target = shared.pick_loop(rr);
        rr = rr.wrapping_add(1);
        shared.loads[target].fetch_add(1, Ordering::Relaxed);
        let sh = shared.clone();
        handles[target].spawn(move || async move { session::serve(conn, sh, target) });
    }
}

impl Server {
    /// Waits for the next control event.
    pub fn wait(&self) -> Control {
        self.control_rx
            .recv()
            .unwrap_or(Control::Signal(libc::SIGTERM))
    }

    /// A sender for control events (the signal thread uses it).
    pub fn control_sender(&self) -> mpsc::Sender<Control> {
        self.shared
            .control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops accepting and removes the unix socket file (sysproxy shutdown, first half).
    pub fn stop_listening(&self) {
        self.shared.halting.store(true, Ordering::SeqCst);
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
        // SAFETY: shutdown(2) on our listening socket; the accept loop then ends.
        unsafe { libc::shutdown(self.listen_fd, libc::SHUT_RDWR) };
    }

    /// Shuts down every client connection on every loop.
    pub fn disconnect_all(&self) {
        for h in self.runtime.handles() {
            h.spawn(|| async { session::shutdown_all_local() });
        }
    }

    /// Runs `f`'s future on loop 0 and waits for its output (kernel work that may need a
    /// loop's ring, e.g. the halt sync); `None` if the loop is gone.
    pub fn block_on_loop<F, Fut, T>(&self, f: F) -> Option<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.runtime.handles()[0].spawn(move || async move {
            let _ = tx.send(f().await);
        });
        rx.recv().ok()
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        self.shared.live_conns.load(Ordering::Relaxed)
    }
}
