//! `rump_fuse URL MOUNTPOINT [--root PATH] [-o OPTIONS] [-f]`: mounts the rump server at URL
//! (or its subtree PATH) on MOUNTPOINT through FUSE.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fuser::{Config, MountOption, SessionACL};
use rump_fuse::fs::{Options, RumpFs};
use rump_fuse::nb::Fail;
use rump_fuse::pool::Pool;

const USAGE: &str = "usage: rump_fuse URL MOUNTPOINT [--root PATH] [-o opt[,opt...]] [-f]
options: allow_other, allow_root, default_permissions, map_creds, ro, kernel_cache,
         direct_io, writeback_cache, conns=N (default 4), threads=N (default 4), attr_timeout=SECS,
         entry_timeout=SECS, max_io=BYTES, fsname=NAME";

struct Args {
    url: String,
    mountpoint: PathBuf,
    root: String,
    foreground: bool,
    opts: Options,
    conns: usize,
    threads: usize,
    acl: SessionACL,
    mount: Vec<MountOption>,
}

fn usage(msg: &str) -> ! {
    eprintln!("rump_fuse: {msg}\n{USAGE}");
    std::process::exit(1)
}

fn parse_secs(v: &str) -> Duration {
    match v.parse::<f64>() {
        Ok(s) if (0.0..=3600.0).contains(&s) => Duration::from_secs_f64(s),
        _ => usage(&format!("bad timeout {v:?}")),
    }
}

fn parse_num(k: &str, v: &str, lo: usize, hi: usize) -> usize {
    match v.parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => n,
        _ => usage(&format!("{k}={v}: want a number in {lo}..={hi}")),
    }
}

fn parse_args() -> Args {
    let mut pos = Vec::new();
    let mut a = Args {
        url: String::new(),
        mountpoint: PathBuf::new(),
        root: "/".into(),
        foreground: false,
        opts: Options::default(),
        conns: 4,
        threads: 4,
        acl: SessionACL::Owner,
        mount: vec![
            MountOption::FSName("rump".into()),
            MountOption::Subtype("rump".into()),
        ],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-f" | "--foreground" => a.foreground = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            "--root" => a.root = it.next().unwrap_or_else(|| usage("--root needs a path")),
            "-o" => {
                let o = it.next().unwrap_or_else(|| usage("-o needs options"));
                for opt in o.split(',').filter(|s| !s.is_empty()) {
                    let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
                    match k {
                        "allow_other" => a.acl = SessionACL::All,
                        "allow_root" => a.acl = SessionACL::RootAndOwner,
                        "default_permissions" => a.mount.push(MountOption::DefaultPermissions),
                        "map_creds" => a.opts.map_creds = true,
                        "ro" => a.mount.push(MountOption::RO),
                        "kernel_cache" => a.opts.kernel_cache = true,
                        "direct_io" => a.opts.direct_io = true,
                        "writeback_cache" => a.opts.writeback = true,
                        "conns" => a.conns = parse_num(k, v, 1, 64),
                        "threads" => a.threads = parse_num(k, v, 1, 64),
                        "max_io" => a.opts.max_io = parse_num(k, v, 4096, 1 << 20) as u32,
                        "attr_timeout" => a.opts.attr_ttl = parse_secs(v),
                        "entry_timeout" => a.opts.entry_ttl = parse_secs(v),
                        "fsname" => a.mount[0] = MountOption::FSName(v.into()),
                        _ => usage(&format!("unknown option {opt:?}")),
                    }
                }
            }
            s if s.starts_with('-') && s.len() > 1 => usage(&format!("unknown flag {s}")),
            _ => pos.push(arg),
        }
    }
    if pos.len() != 2 {
        usage("need URL and MOUNTPOINT");
    }
    a.url = pos.remove(0);
    a.mountpoint = PathBuf::from(pos.remove(0));
    if !a.root.starts_with('/') {
        usage("--root must be an absolute path in the rump kernel");
    }
    a
}

/// Refuses clearly, before anything else, what cannot work: no `/dev/fuse`, or (not root)
/// no `fusermount3` to mount with.
fn preflight(mountpoint: &Path) -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err(
            "/dev/fuse is missing: load the fuse module (modprobe fuse) or give the \
                    container the device (--device /dev/fuse)"
                .into(),
        );
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").exists()))
            .unwrap_or(false);
        if !found {
            return Err(
                "fusermount3 is not installed (apt-get install fuse3); as a user \
                        other than root it is the only way to mount"
                    .into(),
            );
        }
    }
    match std::fs::metadata(mountpoint) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{}: not a directory", mountpoint.display())),
        Err(e) => Err(format!("{}: {e}", mountpoint.display())),
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it starts later; one
/// thread takes them with `sigwait`.
fn block_signals() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Why the mount ends.
#[derive(Debug)]
enum End {
    Signal(i32),
    ServerGone,
    Unmounted,
}

/// Forks (before any thread exists); the parent waits for the child's one-byte report on a
/// pipe and exits with it. Returns the write end in the child.
fn detach() -> OwnedFd {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        eprintln!("rump_fuse: pipe: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    // SAFETY: the process has one thread here (nothing was spawned yet).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        eprintln!("rump_fuse: fork: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    if pid > 0 {
        // SAFETY: fds[1] is ours to close; fds[0] becomes an owned fd.
        unsafe { libc::close(fds[1]) };
        // SAFETY: fds[0] is a valid, owned descriptor from pipe2.
        let rd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        let mut f = std::fs::File::from(rd);
        let mut b = [0u8; 1];
        let code = match std::io::Read::read(&mut f, &mut b) {
            Ok(1) => i32::from(b[0]),
            _ => 1,
        };
        std::process::exit(code);
    }
    // SAFETY: fds[0] belongs to the parent's side; setsid detaches from the terminal.
    unsafe {
        libc::close(fds[0]);
        libc::setsid();
    }
    // SAFETY: fds[1] is a valid, owned descriptor from pipe2.
    unsafe { OwnedFd::from_raw_fd(fds[1]) }
}

fn report(w: Option<OwnedFd>, code: u8) {
    if let Some(w) = w {
        let mut f = std::fs::File::from(w);
        let _ = f.write_all(&[code]);
        if code == 0 {
            // Stdio to /dev/null from now on: the parent has exited.
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                use std::os::fd::AsRawFd;
                for fd in 0..3 {
                    // SAFETY: dup2 onto the standard descriptors.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
        }
    }
}

fn fail(w: Option<OwnedFd>, msg: String) -> ! {
    eprintln!("rump_fuse: {msg}");
    report(w, 1);
    std::process::exit(1)
}

fn main() {
    let a = parse_args();
    if let Err(m) = preflight(&a.mountpoint) {
        eprintln!("rump_fuse: {m}");
        std::process::exit(1);
    }
    let report_fd = if a.foreground { None } else { Some(detach()) };
    let sigset = block_signals();

    let pool = match Pool::new(&a.url, a.conns) {
        Ok(p) => Arc::new(p),
        Err(e) => fail(report_fd, format!("{}: {e}", a.url)),
    };
    let fs = match RumpFs::new(pool.clone(), a.root.as_bytes(), a.opts.clone()) {
        Ok(fs) => fs,
        Err(Fail::Errno(e)) => fail(report_fd, format!("{}: NetBSD errno {e}", a.root)),
        Err(Fail::Gone) => fail(report_fd, format!("{}: connection lost", a.url)),
    };
    let mut cfg = Config::default();
    cfg.mount_options = a.mount.clone();
    cfg.acl = a.acl;
    cfg.n_threads = Some(a.threads);
    cfg.clone_fd = true;
    let session = match fuser::Session::new(fs, &a.mountpoint, &cfg) {
        Ok(s) => s,
        Err(e) => fail(report_fd, format!("mount {}: {e}", a.mountpoint.display())),
    };
    let bg = match session.spawn() {
        Ok(b) => b,
        Err(e) => fail(report_fd, format!("session: {e}")),
    };
    report(report_fd, 0);

    let (tx, rx) = mpsc::channel::<End>();
    {
        let tx = tx.clone();
        std::thread::spawn(move || loop {
            let mut sig = 0i32;
            // SAFETY: sigset was initialised above; sig is a valid out-pointer.
            if unsafe { libc::sigwait(&sigset, &mut sig) } == 0 {
                let _ = tx.send(End::Signal(sig));
            }
        });
    }
    {
        // The halt watcher: a connection of its own, idle; the server closes it when it
        // halts or dies, and a connection of the pool that broke says the same.
        let tx = tx.clone();
        let pool = pool.clone();
        let watch = pool.extra().ok();
        std::thread::spawn(move || loop {
            if pool.gone.load(Ordering::Relaxed) {
                let _ = tx.send(End::ServerGone);
                return;
            }
            if let Some(w) = &watch {
                let fd = w.lock().as_raw_fd();
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut p, 1, 500) };
                if r > 0 {
                    pool.gone.store(true, Ordering::Relaxed);
                }
            } else {
                std::thread::sleep(Duration::from_millis(500));
            }
        });
    }
    let end = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(e) => break e,
            Err(mpsc::RecvTimeoutError::Timeout) if bg.guard.is_finished() => break End::Unmounted,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break End::Unmounted,
        }
    };
    let code = match end {
        End::Signal(s) => {
            eprintln!("rump_fuse: signal {s}: unmounting");
            0
        }
        End::ServerGone => {
            eprintln!("rump_fuse: the server went away: unmounting (pending calls: ENOTCONN)");
            pool.gone.store(true, Ordering::Relaxed);
            2
        }
        End::Unmounted => 0,
    };
    if !matches!(end, End::Unmounted) {
        let (done_tx, done_rx) = mpsc::channel();
        let mp = a.mountpoint.clone();
        std::thread::spawn(move || {
            if bg.umount_and_join().is_err() {
                // Busy (a process has its cwd or a file inside): detach lazily; the mount
                // goes with its last user, who sees ENOTCONN once this process is gone.
                let p =
                    std::ffi::CString::new(mp.as_os_str().as_encoded_bytes()).unwrap_or_default();
                // SAFETY: p is a NUL-terminated path.
                if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } != 0 {
                    let _ = std::process::Command::new("fusermount3")
                        .args(["-u", "-z"])
                        .arg(&mp)
                        .status();
                }
            }
            let _ = done_tx.send(());
        });
        // The session threads end when the kernel drops the connection: wait a little.
        let _ = done_rx.recv_timeout(Duration::from_secs(2));
    }
    std::process::exit(code);
}
