//! The TCP/IP faction (NetBSD's `rumpnet_netinet`, `rumpnet_netinet6`, `rumpnet_shmif`,
//! `rumpnet_config`): one IP stack per kernel — interfaces (`lo0`, `shmifN` on NetBSD's
//! shmif buses), addresses, a routing table with NetBSD's semantics, ARP, forwarding —
//! with smoltcp doing TCP, UDP and ICMP echo (`engine.rs`).
//!
//! # How it runs
//! One thread per stack (`softint`, NetBSD's network soft interrupt) owns the rhythm: it
//! reads the buses, polls smoltcp, routes what smoltcp sent, and wakes the stack's wait
//! queue. It sleeps on the buses' inotify watches, on an eventfd that socket calls kick,
//! and on smoltcp's next timer (at most 200 ms, to notice a halt). Socket calls never
//! block: they take the engine's lock, act, kick the thread, and a caller that must wait
//! sleeps on [`Stack::wq`] and asks again. The thread ends when the stack is dropped or
//! the kernel halts.
#![warn(missing_docs)]

pub mod arp;
pub mod engine;
pub mod frag;
pub mod icmp;
pub mod ifnet;
pub mod inet;
pub mod ioctl;
pub mod ip6opts;
pub mod link;
pub mod mcast;
pub mod nd6;
pub mod pcblist;
pub mod route;
pub mod rtmsg;
pub mod rtsock;
pub mod sock;
pub mod sysctl;
pub mod virtif;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use kernel::mem::Budget;
use kernel::sync::WaitQueue;
use kernel::Errno;

pub use engine::Engine;

/// Longest sleep of the softint (it notices a halt within this).
const IDLE_MAX: Duration = Duration::from_millis(200);
/// Frames read per bus per round.
const FRAMES_PER_ROUND: usize = 256;

/// One kernel's IP stack.
pub struct Stack {
    eng: Mutex<Engine>,
    /// Woken after every round of the softint: socket calls that wait sleep here.
    pub wq: Arc<WaitQueue>,
    kick_fd: OwnedFd,
    stop: AtomicBool,
    dir: PathBuf,
    /// The one inotify instance for every bus, made with the first linkstr.
    watches: Mutex<Option<Arc<ifnet::Watches>>>,
    /// Open routing sockets (PF_ROUTE), which hear of every change.
    pub rtsocks: Arc<Mutex<Vec<Weak<rtsock::RouteSock>>>>,
    /// `-lrumpnet_virtif`: which host taps `virtN` may open (unset: no virt cloner).
    virtif: std::sync::OnceLock<virtif::Policy>,
}

impl Stack {
    /// A stack with `lo0`; bus paths are relative to `dir` (the server's directory).
    pub fn new(budget: Arc<Budget>, dir: PathBuf) -> std::io::Result<Arc<Stack>> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor we own from here on.
        let kick_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Arc::new(Stack {
            eng: Mutex::new(Engine::new(budget)),
            wq: Arc::new(WaitQueue::new()),
            kick_fd,
            stop: AtomicBool::new(false),
            dir,
            watches: Mutex::new(None),
            rtsocks: Arc::default(),
            virtif: std::sync::OnceLock::new(),
        }))
    }

    /// Starts the softint thread; it ends when the stack is dropped, [`Stack::stop`] is
    /// called, or `alive` says no (the kernel halted).
    pub fn start(
        self: &Arc<Self>,
        alive: Box<dyn Fn() -> bool + Send>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("rump-softnet".into())
            .spawn(move || softint(weak, alive))
    }

    /// Stops the softint.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.kick();
    }

    /// The engine, locked (never across an await).
    pub fn lock(&self) -> MutexGuard<'_, Engine> {
        self.eng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the softint for a round soon (after a socket call changed something).
    pub fn kick(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.kick_fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn watches(&self) -> std::io::Result<Arc<ifnet::Watches>> {
        let mut w = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(x) = w.as_ref() {
            return Ok(x.clone());
        }
        let x = ifnet::Watches::new()?;
        *w = Some(x.clone());
        Ok(x)
    }

    /// Joins interface `name` to the bus at `linkstr` (`SIOCSLINKSTR`): relative to the
    /// server's directory, created if missing.
    pub fn set_linkstr(&self, name: &str, linkstr: &[u8]) -> Result<(), Errno> {
        if linkstr.is_empty() {
            return Err(Errno::EINVAL);
        }
        let path = bus_path(&self.dir, linkstr)?;
        let mut e = self.lock();
        let f = e.ifs.iter().find(|f| f.name == name).ok_or(Errno::ENXIO)?;
        if f.flags & ifnet::IFF_UP != 0 {
            return Err(Errno::EBUSY);
        }
        if !matches!(f.link, ifnet::Link::Shmif { .. }) {
            return Err(Errno::ENOTTY);
        }
        let (bus, reader) = shmif::Bus::open(&path).map_err(|err| match err {
            shmif::BusError::Io(io) => kernel::hostio::io_errno(&io),
            _ => Errno::EINVAL,
        })?;
        let watch = self
            .watches()
            .and_then(|w| w.add(&path))
            .map_err(|io| kernel::hostio::io_errno(&io))?;
        let i = e
            .ifs
            .iter()
            .position(|f| f.name == name)
            .ok_or(Errno::ENXIO)?;
        if let ifnet::Link::Shmif { port, .. } = &mut e.ifs[i].link {
            *port = Some(ifnet::Port {
                linkstr: linkstr.to_vec(),
                path,
                bus,
                reader,
                watch,
            });
        }
        drop(e);
        self.kick();
        Ok(())
    }

    /// Enables the `virt` cloner (`-lrumpnet_virtif`) with the operator's tap policy
    /// (once; a second call changes nothing).
    pub fn enable_virtif(&self, policy: virtif::Policy) {
        let _ = self.virtif.set(policy);
    }

    /// Whether `-lrumpnet_virtif` is loaded.
    pub fn has_virtif(&self) -> bool {
        self.virtif.get().is_some()
    }

    /// `SIOCIFCREATE virtN`: opens host tap `tunN` (NetBSD's virtif on Linux) when the
    /// policy names it (`EACCES` otherwise), then makes the interface. `EINVAL` without
    /// virtif or for a malformed name, the host's errno when the tap cannot be opened.
    pub fn virt_create(&self, name: &str) -> Result<u32, Errno> {
        let policy = self.virtif.get().ok_or(Errno::EINVAL)?;
        let unit = virtif::unit_of(name).ok_or(Errno::EINVAL)?;
        if self.lock().ifp_by_name(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let host = format!("{}{unit}", virtif::HOST_PREFIX);
        if !policy.allows(&host) {
            return Err(Errno::EACCES);
        }
        let tap = virtif::Tap::open(&host).map_err(|e| kernel::hostio::io_errno(&e))?;
        let r = self.lock().virt_create(name, unit, tap);
        self.kick();
        r
    }

    /// The linkstr of `name` (`SIOCGLINKSTR`); `None` when unset.
    pub fn linkstr(&self, name: &str) -> Result<Option<Vec<u8>>, Errno> {
        let e = self.lock();
        let f = e.ifs.iter().find(|f| f.name == name).ok_or(Errno::ENXIO)?;
        match &f.link {
            ifnet::Link::Shmif { port, .. } => Ok(port.as_ref().map(|p| p.linkstr.clone())),
            ifnet::Link::Loop | ifnet::Link::Virt { .. } => Err(Errno::ENOTTY),
        }
    }
}

/// Where the bus named by a client's linkstr lives, checked (docs/threat-model.md: a
/// client never names a host file): a bare file name (no `/`, not `.` or `..`) in the
/// server's directory, as NetBSD's tests use them. An existing file must be a bus already
/// (a regular file, not a symlink, of exactly `BUS_SIZE` bytes with shmif's magic; a bus
/// another interface is creating gets 200 ms to get its magic); a missing one is created
/// here (exclusively) and made a bus by `shmif::Bus::open`. Anything else is `EACCES`:
/// ours never resizes or writes a file that is not a bus.
fn bus_path(dir: &Path, linkstr: &[u8]) -> Result<PathBuf, Errno> {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let name = linkstr.strip_suffix(b"\0").unwrap_or(linkstr);
    if name.is_empty()
        || name.len() > 255
        || name.contains(&b'/')
        || name.contains(&0)
        || name == b"."
        || name == b".."
    {
        return Err(Errno::EACCES);
    }
    let path = dir.join(std::ffi::OsStr::from_bytes(name));
    let deadline = std::time::Instant::now() + Duration::from_millis(200);
    loop {
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(_) => return Ok(path),
                    // Another interface created it meanwhile: check it as existing.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(kernel::hostio::io_errno(&e)),
                }
            }
            Err(e) => return Err(kernel::hostio::io_errno(&e)),
            Ok(m) => {
                if !m.file_type().is_file() {
                    return Err(Errno::EACCES);
                }
                if m.len() == shmif::BUS_SIZE as u64 {
                    let mut magic = [0u8; 4];
                    let mut f =
                        std::fs::File::open(&path).map_err(|e| kernel::hostio::io_errno(&e))?;
                    f.read_exact(&mut magic)
                        .map_err(|e| kernel::hostio::io_errno(&e))?;
                    if u32::from_ne_bytes(magic) == shmif::MAGIC {
                        return Ok(path);
                    }
                }
                // A bus being made (created, not yet sized or stamped) gets a moment.
                if (m.len() == 0 || m.len() == shmif::BUS_SIZE as u64)
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                return Err(Errno::EACCES);
            }
        }
    }
}

fn softint(weak: Weak<Stack>, alive: Box<dyn Fn() -> bool + Send>) {
    loop {
        let Some(s) = weak.upgrade() else { return };
        if s.stop.load(Ordering::SeqCst) || !alive() {
            return;
        }
        let (fds, delay, rtmsgs) = {
            let mut e = s.lock();
            e.read_buses(FRAMES_PER_ROUND);
            e.read_taps(FRAMES_PER_ROUND);
            e.poll();
            let rtmsgs = std::mem::take(&mut e.icmp.rtmsgs);
            let delay = e.poll_delay().unwrap_or(IDLE_MAX).min(IDLE_MAX);
            let mut fds: Vec<i32> = e
                .ifs
                .iter()
                .filter_map(|f| match &f.link {
                    ifnet::Link::Shmif { port: Some(p), .. } => Some(p.watch.as_raw_fd()),
                    ifnet::Link::Virt { tap } => Some(tap.raw_fd()),
                    _ => None,
                })
                .collect();
            fds.dedup(); // one inotify instance for every bus
            fds.push(s.kick_fd.as_raw_fd());
            (fds, delay, rtmsgs)
        };
        if !rtmsgs.is_empty() {
            rtsock::announce(&s, rtmsgs);
        }
        s.wq.wake_all();
        let kick = s.kick_fd.as_raw_fd();
        let mut pfds: Vec<libc::pollfd> = fds
            .iter()
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // Keep the stack alive while polling its descriptors: they are closed only when
        // it is dropped (an interface destroyed meanwhile makes one wake-up spurious).
        // SAFETY: `pfds` is a valid array of its length.
        let n = unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                delay.as_millis().max(if delay.is_zero() { 0 } else { 1 }) as i32,
            )
        };
        if n > 0 {
            let mut b = [0u8; 8];
            // SAFETY: reading 8 bytes into our buffer from our eventfd (non-blocking).
            unsafe { libc::read(kick, b.as_mut_ptr().cast(), 8) };
        }
        drop(s);
    }
}

/// What `-l` asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// `rumpnet_netinet`: AF_INET (without it only interfaces and AF_LINK).
    pub inet: bool,
    /// `rumpnet_netinet6`: AF_INET6 and `::1` on `lo0`.
    pub inet6: bool,
}

/// Attaches the TCP/IP faction to a kernel whose socket layer is `net` (`-lrumpnet_netinet`
/// and friends): the stack (`lo0` up), AF_INET (and AF_INET6), AF_LINK, the `net.inet`
/// and `net.route` sysctl nodes, and the softint, which ends when the kernel halts.
pub fn attach(k: &Arc<kernel::Kernel>, net: &net::Net, cfg: Config) -> kernel::Result<Arc<Stack>> {
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let st = Stack::new(k.budget().clone(), dir).map_err(|e| kernel::hostio::io_errno(&e))?;
    if !cfg.inet6 {
        let mut e = st.lock();
        let _ = e.del_addr(1, std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST));
        e.inet6 = false;
    } else {
        st.lock().nigroup = mcast::nigroup(&k.config().hostname);
    }
    if cfg.inet {
        net.register_domain(Arc::new(inet::InetDomain {
            stack: st.clone(),
            v6: false,
        }))?;
    }
    if cfg.inet6 {
        net.register_domain(Arc::new(inet::InetDomain {
            stack: st.clone(),
            v6: true,
        }))?;
    }
    net.register_domain(Arc::new(link::LinkDomain { stack: st.clone() }))?;
    net.register_domain(Arc::new(rtsock::RouteDomain {
        stack: st.clone(),
        socks: st.rtsocks.clone(),
    }))?;
    sysctl::register(k, &st, cfg)?;
    if cfg.inet {
        pcblist::register(k, &st)?;
    }
    let wk = Arc::downgrade(k);
    st.start(Box::new(move || wk.upgrade().is_some_and(|k| !k.halting())))
        .map_err(|e| kernel::hostio::io_errno(&e))?;
    Ok(st)
}
