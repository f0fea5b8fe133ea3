//! `rump_server` / `rump_allserver` main: NetBSD's start-up order (netbsd-abi.md §8.5).
//!
//! Parse options → daemonize (unless `-s`) → open `-l` components → boot → listen → tell
//! the parent → serve until a client halts us or SIGTERM/SIGINT arrives. (NetBSD opens `-l`
//! before daemonizing; we fork first, because a library's constructors may start threads,
//! which a fork would leave behind. The command's output and exit status are the same.)

use std::io::Write;
use std::sync::Arc;

use kernel::abi::{RB_DUMP, RB_HALT};
use kernel::{BootConfig, Host, Kernel};
use sp::url::{Role, SpAddr};

use crate::cli::{self, Flavor, Options};
use crate::components::Component;
use crate::daemon;
use crate::server::{self, Control, Limits, StartError};

/// Runs the server program; never returns.
pub fn main(flavor: Flavor, progname: &str) -> ! {
    let opts = match cli::parse(flavor, progname, std::env::args_os()) {
        Ok(o) => o,
        Err(e) => {
            if e.status == 0 {
                print!("{}", e.message);
                std::process::exit(0);
            }
            eprintln!("{progname}: {}", e.message);
            if e.usage {
                eprintln!("{}", cli::usage_line(progname));
            }
            std::process::exit(e.status);
        }
    };
    if let Err(msg) = check_options(&opts) {
        eprintln!("{progname}: {msg}");
        std::process::exit(1);
    }
    // The limits come from the environment (the command line is NetBSD's): README "Limits".
    let limits = Limits::from_env().unwrap_or_else(|msg| {
        eprintln!("{progname}: {msg}");
        std::process::exit(1);
    });
    // Fork before anything that may start threads: a -l library's constructors may, and a
    // fork keeps only the calling thread. (NetBSD dlopens -l before daemonizing; the command
    // behaves the same: a bad -l prints its message on the terminal and the command exits 1,
    // reported by the child.)
    let mut daemon = if opts.foreground {
        None
    } else {
        match daemon::begin() {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("rump daemonize: {e}");
                std::process::exit(1);
            }
        }
    };
    // Before the -l constructors too: threads they start inherit the mask, so SIGTERM and
    // SIGINT reach only the signal thread (a clean halt), never a component's thread.
    block_signals();
    let mut externals = Vec::new();
    for path in &opts.external_libs {
        match crate::extcomp::open(&absolute(path)) {
            Ok(o) => externals.push(o),
            Err(e) => {
                eprintln!(
                    "failed to load -libraries, last error from \"{}\":\n{e}",
                    path.display()
                );
                if let Some(d) = daemon.as_mut() {
                    d.report(1);
                }
                std::process::exit(1);
            }
        }
    }
    let server = match boot_and_listen(&opts, externals, limits) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}", e.message);
            if let Some(d) = daemon.as_mut() {
                d.report(e.errno);
            }
            std::process::exit(1);
        }
    };
    if opts.verbose {
        print_boot_summary(&opts, &server);
    }
    if let Some(d) = daemon.as_mut() {
        // Boot-time console output reaches the terminal before stdout becomes /dev/null.
        server.shared.kernel.host().console_sync(CONSOLE_EXIT_WAIT);
        if let Err(e) = d.done() {
            eprintln!("rump daemonize: {e}");
            std::process::exit(1);
        }
    }
    spawn_signal_thread(server.control_sender());
    let howto = match server.wait() {
        Control::Halt(howto) => howto, // the kernel half ran inside the reboot syscall
        Control::Signal(_) => {
            let k = server.shared.kernel.clone();
            server.block_on_loop(move || async move { k.shutdown(0).await });
            0
        }
    };
    finish(&server, howto)
}

/// Checks what the parser cannot: options whose capability has not landed are refused
/// loudly, a memory limit must leave the kernel room to work.
fn check_options(opts: &Options) -> Result<(), String> {
    if let Some(m) = opts.modules.first() {
        if !opts.components.contains(&Component::Vfs) {
            return Err(format!(
                "-m {m}: modules are loaded through the VFS: add -lrumpvfs"
            ));
        }
    }
    if let Some(r) = opts.total_ram_bytes {
        if r < MIN_TOTAL_RAM_BYTES {
            return Err(format!(
                "-r {r}: too small: the kernel needs at least {}k (its buffer cache reserve \
                 alone is {}k); give -r 2m or more",
                MIN_TOTAL_RAM_BYTES >> 10,
                cache_reserve_bytes() >> 10
            ));
        }
    }
    if !opts.drives.is_empty() && !opts.components.contains(&Component::Vfs) {
        return Err(format!(
            "-d key={}: host drives live in the VFS: add -lrumpvfs",
            opts.drives[0].key
        ));
    }
    Ok(())
}

fn cache_reserve_bytes() -> u64 {
    kernel::bio::BufCache::reserve_bytes(
        kernel::bio::DEFAULT_BLOCK_SIZE,
        kernel::bio::DEFAULT_SHARDS,
    )
}

/// Smallest `-r`: twice the buffer cache's reserve.
const MIN_TOTAL_RAM_BYTES: u64 = 2 << 20;

/// The kernel's memory budget: `-r`, else the host's physical memory.
fn mem_limit_bytes(opts: &Options) -> Option<u64> {
    opts.total_ram_bytes.or_else(host_memory_bytes)
}

/// Physical memory of the host (`_SC_PHYS_PAGES` × page size).
fn host_memory_bytes() -> Option<u64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && page > 0).then(|| pages as u64 * page as u64)
}

/// `path` made absolute against the current directory (a library path without a slash
/// would otherwise be searched for on the host's library path).
fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// After boot: `-l` components' init (built in, `MODULE_SOURCE_KERNEL`), then every `-m`
/// module in order (NetBSD loads the first one each time), as modctl(MODCTL_LOAD) would.
fn load_components(
    kernel: &Arc<Kernel>,
    externals: Vec<crate::extcomp::Opened>,
    modules: &[String],
) -> Result<(), StartError> {
    kernel
        .modules()
        .set_loader(Arc::new(crate::extcomp::Loader));
    for o in externals {
        let path = o.path().display().to_string();
        let (name, handle) = o.init(kernel).map_err(|e| StartError {
            message: format!("rump init failed: component {path}: {e}"),
            errno: i32::from(e.raw()),
        })?;
        kernel
            .modules()
            .insert_external(kernel, &name, handle, kernel::module::ModSource::Kernel)
            .map_err(|e| StartError {
                message: format!("rump init failed: component {path}: {e} (name {name} taken)"),
                errno: i32::from(e.raw()),
            })?;
    }
    for m in modules {
        let path = absolute(std::path::Path::new(m));
        kernel
            .modules()
            .load_host_file(kernel, &path)
            .map_err(|e| StartError {
                message: format!(
                    "module load failed: {e} (-m {m}{})",
                    match e {
                        kernel::Errno::EEXIST => ": already loaded",
                        kernel::Errno::ENOEXEC =>
                            ": not a built-in module name (tmpfs.kmod) nor a rump component",
                        _ => "",
                    }
                ),
                errno: i32::from(e.raw()),
            })?;
    }
    Ok(())
}

fn boot_and_listen(
    opts: &Options,
    externals: Vec<crate::extcomp::Opened>,
    limits: Limits,
) -> Result<server::Server, StartError> {
    let cwd = std::env::current_dir().ok();
    let addr = sp::url::parse(&opts.url, Role::Server, cwd.as_deref()).map_err(|e| {
        let errno = match e.kind {
            sp::url::UrlErrorKind::Invalid => kernel::Errno::EINVAL,
            sp::url::UrlErrorKind::NotSupported => kernel::Errno::EOPNOTSUPP,
            sp::url::UrlErrorKind::Range => kernel::Errno::ERANGE,
            sp::url::UrlErrorKind::NameTooLong => kernel::Errno::ENAMETOOLONG,
        };
        StartError {
            message: format!("{}\nrump server init failed: {errno}", e.message),
            errno: i32::from(errno.raw()),
        }
    })?;
    if cwd.is_none() && matches!(&addr, SpAddr::Unix(p) if p.is_relative()) {
        eprintln!("warning: cannot determine cwd, omitting socket cleanup");
    }
    let host: Arc<dyn Host> = Arc::new(crate::loophost::LoopHost::default());
    let cfg = BootConfig {
        ncpu: opts.ncpu,
        verbose: opts.verbose,
        hostname: rump_hostname(),
        vfs: opts.components.contains(&Component::Vfs),
        mem_limit_bytes: mem_limit_bytes(opts),
        dev: opts.components.contains(&Component::Dev),
        filesystems: opts
            .components
            .iter()
            .filter_map(|c| c.filesystem())
            .collect(),
    };
    let kernel = Kernel::boot(cfg, host).map_err(|e| StartError {
        message: format!("rump init failed: {e}"),
        errno: i32::from(e.raw()),
    })?;
    if opts.total_ram_bytes.is_none() {
        kernel.budget().mark_host_sized();
    }
    if opts.components.contains(&Component::Net) {
        let net =
            net::attach(&kernel, opts.components.contains(&Component::NetLocal)).map_err(|e| {
                StartError {
                    message: format!("rump init failed: rumpnet: {e}"),
                    errno: i32::from(e.raw()),
                }
            })?;
        let has = |c| opts.components.contains(&c);
        if has(Component::NetSockin) {
            let host = crate::sockin::HostSockin::from_env().map_err(|e| StartError {
                message: format!("rump init failed: rumpnet_sockin: {e}"),
                errno: libc::EINVAL,
            })?;
            net::sockin::attach(&net, std::sync::Arc::new(host)).map_err(|e| StartError {
                message: format!("rump init failed: rumpnet_sockin: {e}"),
                errno: i32::from(e.raw()),
            })?;
        }
        if has(Component::NetInet) || has(Component::Shmif) || has(Component::Virtif) {
            let cfg = netinet::Config {
                inet: has(Component::NetInet),
                inet6: has(Component::NetInet6),
            };
            let st = netinet::attach(&kernel, &net, cfg).map_err(|e| StartError {
                message: format!("rump init failed: rumpnet_netinet: {e}"),
                errno: i32::from(e.raw()),
            })?;
            if has(Component::Virtif) {
                // The operator's tap names (docs/threat-model.md); a bad value stops the start.
                let allow = std::env::var("RUMP_VIRTIF_ALLOW").unwrap_or_default();
                let policy = netinet::virtif::Policy::parse(&allow).map_err(|e| StartError {
                    message: format!("rump init failed: rumpnet_virtif: {e}"),
                    errno: libc::EINVAL,
                })?;
                st.enable_virtif(policy);
            }
        }
    }
    load_components(&kernel, externals, &opts.modules)?;
    let drives = crate::drives::attach(&kernel, &opts.drives, opts.verbose)?;
    if let SpAddr::Tcp(sa) = &addr {
        if sa.ip().is_unspecified() {
            // Before binding (also when the bind then fails) and before daemonizing
            // redirects stderr: the operator sees it (docs/threat-model.md).
            eprintln!("{}", network_warning(&opts.url));
        }
    }
    let mut server = server::start(kernel, opts.ncpu, &opts.url, &addr, limits)?;
    server.drives = drives;
    Ok(server)
}

/// The one line printed when a TCP URL binds every address (`tcp://0`, `tcp://*`).
fn network_warning(url: &str) -> String {
    format!(
        "warning: {url} listens on every address: the server is reachable from the network, \
         and every client that connects is root in the rump kernel with access to all -d \
         drives (no authentication; use 127.0.0.1 or a unix socket unless that is intended)"
    )
}

/// `rump-<pid>.<host name>`, as NetBSD's rumpuser names the kernel's host.
fn rump_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let pid = std::process::id();
    if rc != 0 {
        return format!("rump-{pid:05}");
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    format!("rump-{pid:05}.{}", String::from_utf8_lossy(&buf[..end]))
}

fn print_boot_summary(opts: &Options, server: &server::Server) {
    // What components logged at boot comes first.
    server.shared.kernel.host().console_sync(CONSOLE_EXIT_WAIT);
    let names: Vec<&str> = opts.components.iter().map(|c| c.name()).collect();
    let cores = cli::host_cpus();
    println!(
        "{} {} (NetBSD {}/{} ABI)",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        kernel::OSRELEASE,
        kernel::MACHINE
    );
    println!("components: {}", names.join(" "));
    let k = &server.shared.kernel;
    let types: Vec<&str> = kernel::fs::FsKind::ALL
        .into_iter()
        .filter(|t| k.has_filesystem(*t))
        .map(|t| t.name())
        .collect();
    if !types.is_empty() {
        println!("file systems: {}", types.join(" "));
    }
    let mods = k.modules().names();
    if !mods.is_empty() {
        println!("modules: {}", mods.join(" "));
    }
    let budget = server.shared.kernel.budget();
    match opts.total_ram_bytes {
        Some(r) => println!("memory budget: {} (-r)", crate::drives::human(r)),
        None => println!(
            "memory budget: {} (host memory, no -r)",
            crate::drives::human(budget.limit())
        ),
    }
    println!(
        "buffer cache: up to {}, {} in use at boot",
        crate::drives::human(
            server
                .shared
                .kernel
                .vfs()
                .map_or(0, |v| v.bio().capacity_bytes())
        ),
        crate::drives::human(budget.used())
    );
    println!(
        "cpus: {} {} loops, loop i pinned to host core i mod {cores}",
        opts.ncpu,
        server.runtime.handles()[0].backend()
    );
    if server.drives.is_empty() {
        println!("drives: none");
    }
    for d in &server.drives {
        println!(
            "drive {}: {} {} bytes at offset {} of {}{}",
            d.key,
            match d.etfs_type {
                crate::drivespec::EtfsType::Block => "blk",
                crate::drivespec::EtfsType::Char => "chr",
                crate::drivespec::EtfsType::Regular => "reg",
            },
            d.size,
            d.offset,
            d.hostpath,
            match (d.module, d.read_only) {
                (true, _) => " (module, read-only)",
                (false, true) => " (read-only)",
                (false, false) => "",
            }
        );
    }
    let l = &server.shared.limits;
    println!(
        "limits: frame {} bytes, {} connections, {} syscalls in flight and {} bytes queued \
         per connection",
        l.max_frame_len, l.max_conns, l.max_inflight_per_conn, l.max_outbuf_bytes
    );
    match (&server.unix_path, server.tcp_port) {
        (_, Some(port)) => println!("listening on {} (tcp port {port})", opts.url),
        _ => println!("listening on {}", opts.url),
    }
    let _ = std::io::stdout().flush();
}

/// Blocks SIGTERM and SIGINT in every thread (the signal thread takes them with sigwait) and
/// ignores SIGPIPE, which must never kill the server.
fn block_signals() {
    // SAFETY: sigset manipulation on a local set, then pthread_sigmask and signal() with
    // valid arguments; called before any other thread exists, so all threads inherit it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn spawn_signal_thread(tx: std::sync::mpsc::Sender<Control>) {
    let _ = std::thread::Builder::new()
        .name("rump-signals".into())
        .spawn(move || {
            // SAFETY: as in block_signals; sigwait fills `sig` with a signal from `set`.
            let sig = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigaddset(&mut set, libc::SIGINT);
                let mut sig = 0;
                libc::sigwait(&set, &mut sig);
                sig
            };
            let _ = tx.send(Control::Signal(sig));
        });
}

/// How long the server waits for queued console output to reach stdout before it prints
/// itself or exits (the console never blocks a loop: `kernel::StdHost`).
const CONSOLE_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The server half of a halt (sp-protocol.md §14.2 steps 6–7).
fn finish(server: &server::Server, howto: u32) -> ! {
    let console = |s: &str| {
        let host = server.shared.kernel.host();
        host.console_write(s.as_bytes());
        // Bounded: a stdout nobody reads must not keep the process from exiting.
        host.console_sync(CONSOLE_EXIT_WAIT);
    };
    if howto & RB_DUMP != 0 {
        server.stop_listening();
        console("halted\n");
        std::process::abort();
    }
    if howto & RB_HALT != 0 {
        console("rump kernel halted (with RB_HALT, not exiting)\n");
        server.stop_listening();
        server.disconnect_all();
        // The host process stays; SIGTERM/SIGINT still end it (the kernel is already down).
        loop {
            if let Control::Signal(_) = server.wait() {
                console("halted\n");
                std::process::exit(0);
            }
        }
    }
    server.stop_listening();
    console("halted\n");
    std::process::exit(0)
}
