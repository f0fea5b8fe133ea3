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
use std::time::{Duration, Instant};

use kernel::{Kernel, Proc};
use sp::url::SpAddr;

use crate::session;

/// Bounds on what one client can make the server hold. Receive buffers are not per connection:
/// each loop lends from one fixed pool (`ring`'s provided buffer ring, 256 × 16 KiB), and a
/// partial frame waits in the connection's decoder (at most `max_frame_len`, grown only as
/// its bytes arrive). The command line is NetBSD's, so each limit is set by an environment
/// variable ([`Limits::from_env`]; README "Limits").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted from a client, header included; longer → disconnect. Copy
    /// requests whose answer could not fit fail with `EFAULT` up front. `RUMP_MAX_FRAME`.
    pub max_frame_len: usize,
    /// Syscalls in flight per connection; beyond it: ERROR TRYAGAIN (librumpclient resends).
    /// `RUMP_MAX_INFLIGHT`.
    pub max_inflight_per_conn: usize,
    /// Live connections; beyond it new connections are closed before the banner.
    /// `RUMP_MAX_CONNS`.
    pub max_conns: usize,
    /// Output queued per connection above which COPYOUT waits and the connection's reads
    /// pause until the client reads. `RUMP_MAX_OUTBUF`.
    pub max_outbuf_bytes: usize,
    /// Unclaimed PREFORK cookies per connection. `RUMP_MAX_FORKS`.
    pub max_forks_per_conn: usize,
    /// The sp fast path is granted to clients that ask (docs/sp-fastpath.md); off, a fast
    /// handshake is refused as NetBSD's server refuses it. `RUMP_SP_FASTPATH=0` turns it off.
    pub fast_path: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_len: sp::DEFAULT_MAX_FRAME_LEN,
            max_inflight_per_conn: 256,
            max_conns: 8192,
            max_outbuf_bytes: 4 << 20,
            max_forks_per_conn: 64,
            fast_path: true,
        }
    }
}

/// One limit's environment variable: its name, the smallest and largest value accepted,
/// whether it is a byte count (suffixes `k`, `m`, `g`), and what it means (for messages).
struct LimitVar {
    name: &'static str,
    min: usize,
    max: usize,
    bytes: bool,
    what: &'static str,
}

/// Smallest frame limit: the header plus a path (COPYINSTR of `PATH_MAX` = 1024 bytes).
pub const MIN_FRAME_LEN: usize = sp::HEADER_LEN + 1024;

const LIMIT_VARS: [LimitVar; 5] = [
    LimitVar {
        name: "RUMP_MAX_FRAME",
        min: MIN_FRAME_LEN,
        max: 1 << 30,
        bytes: true,
        what: "the largest frame a client may send, header included",
    },
    LimitVar {
        name: "RUMP_MAX_CONNS",
        min: 1,
        max: 1 << 20,
        bytes: false,
        what: "the number of connections served at once",
    },
    LimitVar {
        name: "RUMP_MAX_INFLIGHT",
        min: 1,
        max: 1 << 16,
        bytes: false,
        what: "the syscalls one connection may have in flight",
    },
    LimitVar {
        name: "RUMP_MAX_OUTBUF",
        min: 4096,
        max: 1 << 30,
        bytes: true,
        what: "the output bytes queued per connection",
    },
    LimitVar {
        name: "RUMP_MAX_FORKS",
        min: 1,
        max: 1 << 16,
        bytes: false,
        what: "the unclaimed fork cookies per connection",
    },
];

impl Limits {
    /// The defaults, overridden by `RUMP_MAX_FRAME`, `RUMP_MAX_CONNS`, `RUMP_MAX_INFLIGHT`,
    /// `RUMP_MAX_OUTBUF` and `RUMP_MAX_FORKS` where set. A malformed or out-of-range value
    /// is an error whose message names the variable, the accepted range and the default.
    pub fn from_env() -> Result<Limits, String> {
        Limits::from_lookup(|name| std::env::var_os(name))
    }

    /// As [`Limits::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Limits, String> {
        let mut l = Limits::default();
        for v in &LIMIT_VARS {
            let slot = match v.name {
                "RUMP_MAX_FRAME" => &mut l.max_frame_len,
                "RUMP_MAX_CONNS" => &mut l.max_conns,
                "RUMP_MAX_INFLIGHT" => &mut l.max_inflight_per_conn,
                "RUMP_MAX_OUTBUF" => &mut l.max_outbuf_bytes,
                _ => &mut l.max_forks_per_conn,
            };
            if let Some(raw) = get(v.name) {
                *slot = parse_limit(v, &raw, *slot)?;
            }
        }
        if let Some(raw) = get("RUMP_SP_FASTPATH") {
            l.fast_path = match raw.to_str() {
                Some("0") => false,
                Some("1") => true,
                _ => {
                    return Err(format!(
                        "RUMP_SP_FASTPATH must be 0 (off) or 1 (on, the default), not {:?}",
                        raw.to_string_lossy()
                    ))
                }
            };
        }
        Ok(l)
    }
}

/// Parses one limit: decimal digits, for byte counts optionally followed by `k`, `m` or `g`
/// (powers of 1024, as `-r`).
fn parse_limit(v: &LimitVar, raw: &std::ffi::OsStr, default: usize) -> Result<usize, String> {
    let text = raw.to_string_lossy();
    let unit = if v.bytes {
        " (bytes; suffixes k, m, g)"
    } else {
        ""
    };
    let bad = |why: &str| {
        format!(
            "{}={text}: {why}: give {} from {} to {}{unit} (default {default})",
            v.name, v.what, v.min, v.max
        )
    };
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k') if v.bytes => (&text[..text.len() - 1], 10),
        Some(b'm') if v.bytes => (&text[..text.len() - 1], 20),
        Some(b'g') if v.bytes => (&text[..text.len() - 1], 30),
        _ => (&text[..], 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a number"));
    }
    let n = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| bad("too large"))?;
    if n < v.min || n > v.max {
        return Err(bad("out of range"));
    }
    Ok(n)
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

/// A prepared process: the connection that asked for it, the process, and since when it is
/// an orphan (its connection gone).
type Prepared = (u64, Arc<Proc>, Option<Instant>);
type Cookies = HashMap<[u8; 16], Prepared>;

/// How long a cookie outlives the connection that prepared it. NetBSD's server keeps it for
/// good, and NetBSD's `rumpclient_daemon` relies on that: its parent prepares the fork and
/// exits at once, and the child claims the cookie on a new connection afterwards.
pub const ORPHAN_TTL: Duration = Duration::from_secs(60);
/// Most orphaned cookies kept at once (the oldest go first): orphans are not bounded by a
/// live connection's `RUMP_MAX_FORKS`, so they have a bound of their own.
pub const ORPHANS_MAX: usize = 256;

/// Prepared processes from PREFORK, by cookie (sp-protocol.md §13.1). Cookies are drawn from
/// the host's random source. When the connection that prepared a cookie goes, the cookie
/// stays claimable for [`ORPHAN_TTL`], at most [`ORPHANS_MAX`] of them.
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
        let map = self.lock();
        let mine = map
            .values()
            .filter(|(o, _, orphaned)| *o == owner && orphaned.is_none());
        mine.count() < self.max_per_owner
    }

    pub fn insert(&self, owner: u64, p: Arc<Proc>) -> [u8; 16] {
        let mut map = self.lock();
        loop {
            let mut cookie = [0u8; 16];
            random_bytes(&mut cookie);
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry(cookie) {
                e.insert((owner, p, None));
                return cookie;
            }
        }
    }

    pub fn take(&self, cookie: &[u8; 16]) -> Option<Arc<Proc>> {
        let mut map = self.lock();
        match map.get(cookie) {
            Some((_, _, Some(since))) if since.elapsed() > ORPHAN_TTL => None,
            Some(_) => map.remove(cookie).map(|(_, p, _)| p),
            None => None,
        }
    }

    /// The connection `owner` went: its cookies become orphans. Returns the prepared
    /// processes that must end now: orphans past [`ORPHAN_TTL`], and the oldest beyond
    /// [`ORPHANS_MAX`].
    pub fn orphan_owner(&self, owner: u64) -> Vec<Arc<Proc>> {
        let now = Instant::now();
        let mut map = self.lock();
        for (o, _, orphaned) in map.values_mut() {
            if *o == owner && orphaned.is_none() {
                *orphaned = Some(now);
            }
        }
        let mut orphans: Vec<([u8; 16], Instant)> = map
            .iter()
            .filter_map(|(k, (_, _, orphaned))| orphaned.map(|t| (*k, t)))
            .collect();
        orphans.sort_by_key(|(_, t)| *t);
        let over = orphans.len().saturating_sub(ORPHANS_MAX);
        let gone: Vec<[u8; 16]> = orphans
            .iter()
            .enumerate()
            .filter(|(i, (_, t))| *i < over || now.duration_since(*t) > ORPHAN_TTL)
            .map(|(_, (k, _))| *k)
            .collect();
        gone.iter()
            .filter_map(|k| map.remove(k))
            .map(|(_, p, _)| p)
            .collect()
    }

    /// Prepared processes in the table (live and orphaned).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no process is prepared.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
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

/// The loops' busy-poll bound before they sleep (`ring::Config::spin_us`).
pub const SPIN_US_DEFAULT: u32 = 50;

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
        // Busy-poll before sleeping while requests come in quickly (docs/benchmarks.md,
        // issue 17: 16 × 1 ping-pong); `RING_SPIN_US` overrides, 0 turns it off.
        spin_us: ring::spin_us_from_env().unwrap_or(SPIN_US_DEFAULT),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn with(vars: &[(&str, &str)]) -> Result<Limits, String> {
        Limits::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn defaults_without_variables() {
        assert_eq!(with(&[]).unwrap(), Limits::default());
    }

    #[test]
    fn every_variable_sets_its_limit() {
        let l = with(&[
            ("RUMP_MAX_FRAME", "64k"),
            ("RUMP_MAX_CONNS", "3"),
            ("RUMP_MAX_INFLIGHT", "4"),
            ("RUMP_MAX_OUTBUF", "1m"),
            ("RUMP_MAX_FORKS", "2"),
        ])
        .unwrap();
        assert_eq!(
            l,
            Limits {
                max_frame_len: 64 << 10,
                max_conns: 3,
                max_inflight_per_conn: 4,
                max_outbuf_bytes: 1 << 20,
                max_forks_per_conn: 2,
                fast_path: true,
            }
        );
        assert!(!with(&[("RUMP_SP_FASTPATH", "0")]).unwrap().fast_path);
        assert!(with(&[("RUMP_SP_FASTPATH", "1")]).unwrap().fast_path);
        let e = with(&[("RUMP_SP_FASTPATH", "yes")]).unwrap_err();
        assert!(e.contains("RUMP_SP_FASTPATH"), "{e}");
        assert_eq!(
            with(&[("RUMP_MAX_FRAME", "1048")]).unwrap().max_frame_len,
            1048
        );
    }

    #[test]
    fn malformed_values_are_errors_naming_the_variable() {
        for (name, value, why) in [
            ("RUMP_MAX_FRAME", "abc", "not a number"),
            ("RUMP_MAX_FRAME", "", "not a number"),
            ("RUMP_MAX_FRAME", "1000", "out of range"),
            ("RUMP_MAX_FRAME", "2g", "out of range"),
            ("RUMP_MAX_FRAME", "99999999999999999999", "too large"),
            ("RUMP_MAX_CONNS", "0", "out of range"),
            ("RUMP_MAX_CONNS", "10k", "not a number"),
            ("RUMP_MAX_INFLIGHT", "-1", "not a number"),
            ("RUMP_MAX_INFLIGHT", " 4", "not a number"),
            ("RUMP_MAX_OUTBUF", "1x", "not a number"),
            ("RUMP_MAX_OUTBUF", "1k", "out of range"),
            ("RUMP_MAX_FORKS", "0x10", "not a number"),
        ] {
            let e = with(&[(name, value)]).unwrap_err();
            assert!(
                e.starts_with(&format!("{name}={value}: {why}: give ")),
                "{name}={value}: {e}"
            );
            assert!(e.contains("(default "), "{e}");
        }
    }
}
