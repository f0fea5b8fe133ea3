//! `loadtest`: a load generator for sp (rump sysproxy) servers, ours or NetBSD's, with an
//! in-tool echo peer (`--baseline`) that measures what the host's sockets allow.
//!
//! ```text
//! loadtest --url unix:///tmp/rump.sock --conns 64 --inflight 4 --duration 10s --workload getpid
//! loadtest --url unix:///tmp/rump.sock --conns 64 --inflight 4 --duration 10s --baseline
//! ```

mod conn;
mod engine;
mod nb;
mod peer;
mod report;
mod setup;
mod sys;
mod workload;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use sp::url::{Role, SpAddr};

use conn::{Conn, Fatal};
use engine::{Plan, ThreadResult};
use report::Summary;
use workload::{BlockCfg, Kind, Mix, KINDS};

/// Size of the shared write pattern (the largest copyin served).
const PATTERN_MIN_LEN: usize = 64 << 10;

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    about = "Load generator for sp (rump sysproxy) servers",
    after_help = "Workloads: getpid, stat, open-close, read4k, write4k, create-write-unlink, \
                  readdir, block; --mix 'getpid=50,read4k=30,write4k=20' combines them. \
                  local-pingpong, fifo-pingpong and sockin-pingpong pair the connections \
                  (two processes: 4 KiB over an AF_LOCAL stream, over two FIFOs, or over a \
                  sockin TCP connection on 127.0.0.1; the server needs -lrumpnet_local, \
                  -lrumpvfs, resp. -lrumpnet_sockin). sockin-echo writes and reads 4 KiB \
                  per op over sockin TCP to an echo peer the load generator runs on \
                  127.0.0.1 (-lrumpnet_sockin)."
)]
struct Args {
    /// Server URL (unix:///path or tcp://a.b.c.d:port); default $RUMP_SERVER.
    #[arg(long)]
    url: Option<String>,
    /// Connections (each is one rump process).
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Operations in flight per connection.
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// Measured time (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Time run before measuring starts.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    warmup: Duration,
    /// The workload (see below).
    #[arg(long, default_value = "getpid")]
    workload: String,
    /// Weighted workloads, e.g. getpid=50,read4k=50 (overrides --workload).
    #[arg(long)]
    mix: Option<String>,
    /// Client threads (default: the host's CPU count, at most one per connection).
    #[arg(long)]
    threads: Option<usize>,
    /// Measure the physical limit instead: the same framing against an in-tool echo peer
    /// over the URL's socket type, with the same connections and in-flight depth.
    #[arg(long)]
    baseline: bool,
    /// Threads of the baseline's echo peer (default: the host's CPU count).
    #[arg(long)]
    peer_threads: Option<usize>,
    /// How the baseline's echo peer drives its sockets.
    #[arg(long, value_enum, default_value_t = peer::Engine::Auto)]
    peer_engine: peer::Engine,
    /// With --baseline: run this workload (getpid, read4k or write4k) against a peer that
    /// answers with the frames a server sends for it (COPYOUT of the data, or a COPYIN
    /// round trip) but does no kernel work: the limit of the workload's framing on this host.
    #[arg(long, default_value = "getpid")]
    baseline_shape: String,
    /// write4k: each connection writes its own file instead of all sharing one (which
    /// serialises the writers on one vnode, as in NetBSD).
    #[arg(long)]
    file_per_conn: bool,
    /// create-write-unlink: each connection's files in its own directory (`<root>/c<conn>`)
    /// instead of all in `--root` (one directory serialises creates and unlinks, as in
    /// NetBSD).
    #[arg(long)]
    dir_per_conn: bool,
    /// Directory for the workload's files inside the rump kernel.
    #[arg(long, default_value = "/tmp/loadtest")]
    root: String,
    /// The etfs device `block` uses (rump_server -d key=<this>,hostpath=...,size=...).
    #[arg(long, default_value = "/dev/loadtest")]
    block_dev: String,
    /// Bytes per block read/write.
    #[arg(long, default_value_t = 4096)]
    block_size: u64,
    /// Bytes of the device used by `block`.
    #[arg(long, default_value_t = 64 << 20)]
    block_span: u64,
    /// Random block offsets (default sequential).
    #[arg(long)]
    random: bool,
    /// Percentage of block operations that write.
    #[arg(long, default_value_t = 0)]
    block_write_pct: u32,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    json: bool,
    /// Only connect (and hand-shake) the connections, hold them idle this long, and exit:
    /// for measuring the server's memory per idle connection.
    #[arg(long, value_parser = parse_duration)]
    idle_hold: Option<Duration>,
    /// Write the latency percentile distribution (HdrHistogram .hgrm text, microseconds).
    #[arg(long)]
    hist_file: Option<std::path::PathBuf>,
    /// Speak plain sp even where the server offers the fast path (docs/sp-fastpath.md),
    /// whose calls carry the paths and data they copy in.
    #[arg(long)]
    no_fast_path: bool,
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| format!("bad duration `{s}`"))?;
    if !(0.0..1e7).contains(&v) {
        return Err(format!("bad duration `{s}`"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

fn ncpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(s) => {
            if args.json {
                println!("{}", s.json());
            } else {
                print!("{}", s.human());
            }
            if let Some(p) = &args.hist_file {
                if let Err(e) = std::fs::write(p, s.hgrm()) {
                    eprintln!("loadtest: writing {}: {e}", p.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Summary, Fatal> {
    if args.conns == 0 || args.inflight == 0 || args.inflight > 4096 {
        return Err("--conns must be ≥ 1 and --inflight within 1..=4096".into());
    }
    let url = match &args.url {
        Some(u) => u.clone(),
        None => std::env::var("RUMP_SERVER").map_err(|_| "no --url and no $RUMP_SERVER")?,
    };
    let cwd = std::env::current_dir().ok();
    let target = sp::url::parse(&url, Role::Client, cwd.as_deref()).map_err(|e| e.to_string())?;
    let mix = match (&args.mix, args.baseline) {
        (_, true) => match args.baseline_shape.as_str() {
            "getpid" => Mix::single(Kind::Getpid),
            "read4k" => Mix::single(Kind::Read4k),
            "write4k" => Mix::single(Kind::Write4k),
            other => {
                return Err(format!(
                    "--baseline-shape `{other}`: one of getpid, read4k, write4k"
                ))
            }
        },
        (Some(m), _) => Mix::parse(m)?,
        (None, _) => Mix::single(Kind::parse(&args.workload).ok_or_else(|| {
            let names: Vec<_> = KINDS.iter().map(|k| k.name()).collect();
            format!(
                "unknown workload `{}` (one of {})",
                args.workload,
                names.join(", ")
            )
        })?),
    };
    let block = BlockCfg {
        dev: args.block_dev.clone(),
        size: args.block_size,
        span: args.block_span,
        random: args.random,
        write_pct: args.block_write_pct.min(100),
    };
    if block.size == 0 || block.size > 1 << 20 {
        return Err("--block-size must be within 1..=1048576".into());
    }
    let nofile = sys::raise_nofile().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    let fds_needed = args.conns as u64 * if args.baseline { 2 } else { 1 } + 64;
    if fds_needed > nofile {
        return Err(format!(
            "{} connections need {fds_needed} descriptors but RLIMIT_NOFILE is {nofile} \
             (raise it with ulimit -n)",
            args.conns
        ));
    }
    let threads = args.threads.unwrap_or_else(ncpus).clamp(1, args.conns);
    let peer = match args.baseline {
        true => {
            let pt = args.peer_threads.unwrap_or_else(ncpus);
            let shaped = args.baseline_shape != "getpid";
            Some(
                peer::start(&target, args.conns, pt, args.peer_engine, shaped)
                    .map_err(|e| format!("baseline peer: {e}"))?,
            )
        }
        false => None,
    };
    let addr: SpAddr = peer.as_ref().map_or(target.clone(), |p| p.addr.clone());
    let kinds = mix.kinds();
    let paired = kinds.iter().any(|k| k.paired());
    if paired && (kinds.len() != 1 || args.conns % 2 != 0 || args.baseline) {
        return Err(
            "local-pingpong, fifo-pingpong and sockin-pingpong run alone (no --mix, no --baseline) \
                    on an even number of connections (pairs of processes)"
                .into(),
        );
    }
    let pattern: Arc<[u8]> = (0..PATTERN_MIN_LEN.max(block.size as usize))
        .map(|i| (i % 251) as u8)
        .collect();

    let mut rbuf = vec![0u8; 1 << 20];
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let fast = !args.no_fast_path && !args.baseline;
        let mut c = Conn::open(&addr, pattern.clone(), fast)
            .map_err(|e| format!("connection {i} of {}: {e}", args.conns))?;
        setup::strings(
            &mut c.st,
            &args.root,
            &block,
            i,
            args.inflight,
            (args.file_per_conn, args.dir_per_conn),
        );
        if i == 0 && !args.baseline {
            setup::shared_files(&mut c, &kinds, &args.root, &mut rbuf)?;
        }
        if !args.baseline {
            setup::conn_fds(&mut c, &kinds, &mut rbuf)?;
        }
        if paired && i % 2 == 1 {
            let ping = conns.last_mut().expect("the even connection");
            setup::pair(ping, &mut c, kinds[0], i / 2, &args.root, &mut rbuf)?;
        }
        conns.push(c);
    }
    drop(rbuf);
    if !args.baseline {
        let n = conns.iter().filter(|c| c.st.fast.is_some()).count();
        let how = match (args.no_fast_path, n) {
            (true, _) => "off (--no-fast-path)",
            (false, 0) => "refused by the server",
            _ => "on",
        };
        eprintln!(
            "loadtest: sp fast path {how}: {n} of {} connections",
            conns.len()
        );
    }
    if let Some(t) = args.idle_hold {
        eprintln!(
            "loadtest: {} connections open, holding them for {t:?}",
            conns.len()
        );
        std::thread::sleep(t);
        drop(conns);
        std::process::exit(0);
    }

    let plan = Arc::new(Plan {
        mix: mix.clone(),
        inflight: args.inflight,
        block,
    });
    let mut per_thread: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, c) in conns.into_iter().enumerate() {
        per_thread[i % threads].push(c);
    }
    let start = Instant::now();
    let shared = engine::new_shared(threads, start + args.warmup);
    let seed = start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let handles: Vec<_> = per_thread
        .into_iter()
        .enumerate()
        .map(|(t, cs)| {
            let (plan, shared) = (plan.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || engine::run_thread(cs, &plan, &shared, t, seed ^ (t as u64) << 48))
                .map_err(|e| format!("spawning a thread: {e}"))
        })
        .collect::<Result<_, _>>()?;

    let elapsed_s = wait_and_report(&shared, args);
    let (results, open): (Vec<ThreadResult>, Vec<Vec<Conn>>) = handles
        .into_iter()
        .map(|h| h.join().map_err(|_| "a load thread panicked".to_string()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    // Every thread has drained: only now do the connections close.
    drop(open);
    drop(peer);
    if let Some(e) = shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(e);
    }
    Ok(merge(results, args, &url, &mix, threads, elapsed_s))
}

/// Sleeps through warm-up and the measured interval, printing a progress line each second
/// when stdout is a terminal; returns the measured seconds.
fn wait_and_report(shared: &engine::Shared, args: &Args) -> f64 {
    let tty = sys::stdout_is_tty() && !args.json;
    let end = shared.record_start + args.duration;
    let mut last_ops = 0u64;
    let mut last_t = Instant::now().max(shared.record_start);
    loop {
        let now = Instant::now();
        if now >= end || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let step = Duration::from_secs(1).min(end - now);
        std::thread::sleep(step);
        if tty && Instant::now() > shared.record_start {
            let ops: u64 = shared
                .progress
                .iter()
                .map(|c| c.0.load(Ordering::Relaxed))
                .sum();
            let t = Instant::now();
            let rate = (ops - last_ops) as f64 / (t - last_t).as_secs_f64().max(1e-9);
            let secs = (t - shared.record_start).as_secs_f64();
            print!("\r  {secs:6.1} s  {ops:>12} ops  {rate:>12.0} ops/s   ");
            let _ = std::io::stdout().flush();
            (last_ops, last_t) = (ops, t);
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    if tty {
        print!("\r{:60}\r", "");
        let _ = std::io::stdout().flush();
    }
    let stopped = Instant::now();
    stopped
        .saturating_duration_since(shared.record_start)
        .as_secs_f64()
}

fn merge(
    results: Vec<ThreadResult>,
    args: &Args,
    url: &str,
    mix: &Mix,
    threads: usize,
    elapsed_s: f64,
) -> Summary {
    let mut it = results.into_iter();
    let mut first = it.next().expect("at least one thread");
    for r in it {
        let _ = first.hist.add(&r.hist);
        first.ops += r.ops;
        first.errors += r.errors;
        first.first_error = first.first_error.or(r.first_error);
        for (a, b) in first.per_kind.iter_mut().zip(r.per_kind) {
            *a += b;
        }
    }
    let per_kind = KINDS
        .iter()
        .zip(first.per_kind)
        .filter(|(k, n)| *n > 0 || mix.kinds().contains(k))
        .map(|(k, n)| (k.name(), n))
        .collect();
    Summary {
        workload: match (args.baseline, args.baseline_shape.as_str()) {
            (true, "getpid") => "baseline".into(),
            (true, shape) => format!("baseline-{shape}"),
            (false, _) => mix.describe(),
        },
        url: url.to_string(),
        baseline: args.baseline,
        conns: args.conns,
        inflight: args.inflight,
        threads,
        elapsed_s,
        ops: first.ops,
        errors: first.errors,
        first_error: first.first_error,
        per_kind,
        hist: first.hist,
    }
}
