//! The probe of the "other calls NetBSD programs make" (issue 14 item 3) whose answers
//! NetBSD's rump_server recorded in `tests/oracle/calls.netbsd`: resource limits (defaults,
//! `RLIMIT_NOFILE` and `RLIMIT_FSIZE` enforced, inheritance by fork, the errors), getrusage,
//! the clocks' resolutions, nanosleep and clock_nanosleep, getrandom, the extattr family on
//! rumpfs and tmpfs, and modctl's `MODCTL_STAT` in both layouts. One line per step:
//! `name: ok[ value]` or `name: errno N`.
//!
//! Run against any server with `cargo run --example oracle_calls -- URL` (the server started
//! as `rump_server -lrumpvfs -lrumpfs_tmpfs URL`, fresh: the probe halts it at the end);
//! `tests/oracle_calls.rs` runs it against ours and compares.

use std::ffi::CString;
use std::time::{Duration, Instant};

use client::fs::{tmpfs_args, O_CREAT, O_RDONLY, O_RDWR};
use client::{addr_of, int_arg, Buf, Client};

use crate::transcript::{connect, Transcript};

const SYS_SETUID: u32 = 23;
const SYS_DUP2: u32 = 90;
const SYS_GETRANDOM: u32 = 91;
const SYS_FCNTL: u32 = 92;
const SYS_GETRLIMIT: u32 = 194;
const SYS_SETRLIMIT: u32 = 195;
const SYS_MODCTL: u32 = 246;
const SYS_EXTATTRCTL: u32 = 360;
const SYS_EXTATTR_SET_FILE: u32 = 361;
const SYS_EXTATTR_GET_FILE: u32 = 362;
const SYS_EXTATTR_DELETE_FILE: u32 = 363;
const SYS_EXTATTR_SET_FD: u32 = 364;
const SYS_EXTATTR_GET_FD: u32 = 365;
const SYS_EXTATTR_DELETE_FD: u32 = 366;
const SYS_EXTATTR_SET_LINK: u32 = 367;
const SYS_EXTATTR_GET_LINK: u32 = 368;
const SYS_EXTATTR_DELETE_LINK: u32 = 369;
const SYS_EXTATTR_LIST_FD: u32 = 370;
const SYS_EXTATTR_LIST_FILE: u32 = 371;
const SYS_EXTATTR_LIST_LINK: u32 = 372;
const SYS_CLOCK_GETRES: u32 = 429;
const SYS_NANOSLEEP: u32 = 430;
const SYS_GETRUSAGE: u32 = 445;
const SYS_CLOCK_NANOSLEEP: u32 = 477;
const RLIMIT_FSIZE: u64 = 1;
const RLIMIT_CORE: u64 = 4;
const RLIMIT_NOFILE: u64 = 8;
const RLIM_INFINITY: u64 = i64::MAX as u64;
const F_DUPFD: u64 = 0;
const RB_HALT: i32 = 0x8;
const RB_NOSYNC: i32 = 0x4;
const EXTATTR_NAMESPACE_USER: u64 = 1;
const TIMER_ABSTIME: u64 = 1;

impl Transcript {
    fn ret(&mut self, name: &str, r: client::Result<[i64; 2]>) {
        self.step(name, r, |v| v[0].to_string());
    }
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// A limit as the transcript shows it: `inf` for `RLIM_INFINITY`.
fn lim(v: u64) -> String {
    match v {
        RLIM_INFINITY => "inf".into(),
        v => v.to_string(),
    }
}

fn getrlimit(c: &mut Client, which: u64) -> client::Result<(u64, u64)> {
    let mut rl = [0u8; 16];
    let a = addr_of(&rl);
    c.syscall(SYS_GETRLIMIT, &[which, a], &mut [Buf::Out(&mut rl)])?;
    Ok((le64(&rl, 0), le64(&rl, 8)))
}

fn setrlimit(c: &mut Client, which: u64, cur: u64, max: u64) -> client::Result<[i64; 2]> {
    let mut rl = [0u8; 16];
    rl[..8].copy_from_slice(&cur.to_le_bytes());
    rl[8..].copy_from_slice(&max.to_le_bytes());
    c.syscall(SYS_SETRLIMIT, &[which, addr_of(&rl)], &mut [Buf::In(&rl)])
}

fn show_rlimit((cur, max): (u64, u64)) -> String {
    format!("{} {}", lim(cur), lim(max))
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    rlimit_steps(url, &mut t);
    nofile_steps(url, &mut t);
    fsize_steps(url, &mut t);
    time_steps(url, &mut t);
    extattr_steps(url, &mut t);
    modstat_steps(url, &mut t);
    let mut root = connect(url, "halt");
    t.unit("halt", root.reboot(RB_HALT | RB_NOSYNC, None));
    t
}

fn rlimit_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "rlimit");
    // CPU FSIZE DATA STACK CORE RSS MEMLOCK NPROC NOFILE SBSIZE AS NTHR (sys/resource.h).
    for (which, name) in [
        (0, "cpu"),
        (1, "fsize"),
        (2, "data"),
        (3, "stack"),
        (4, "core"),
        (5, "rss"),
        (6, "memlock"),
        (7, "nproc"),
        (8, "nofile"),
        (9, "sbsize"),
        (10, "as"),
        (11, "nthr"),
    ] {
        let r = getrlimit(&mut c, which);
        t.step(&format!("getrlimit {name}"), r, show_rlimit);
    }
    t.unit("getrlimit 12", getrlimit(&mut c, 12));
    t.unit("getrlimit -1", getrlimit(&mut c, u64::MAX));
    t.ret(
        "getrlimit NULL",
        c.syscall(SYS_GETRLIMIT, &[RLIMIT_NOFILE, 0], &mut []),
    );
    t.ret("setrlimit NULL", c.syscall(SYS_SETRLIMIT, &[4, 0], &mut []));
    t.ret("setrlimit core 0 0", setrlimit(&mut c, RLIMIT_CORE, 0, 0));
    t.step(
        "getrlimit core",
        getrlimit(&mut c, RLIMIT_CORE),
        show_rlimit,
    );
    t.ret("raise core max as root", setrlimit(&mut c, 4, 10, 100));
    t.step(
        "getrlimit core",
        getrlimit(&mut c, RLIMIT_CORE),
        show_rlimit,
    );
    t.ret("setrlimit cur > max", setrlimit(&mut c, 4, 200, 100));
    t.ret("setrlimit 12", setrlimit(&mut c, 12, 1, 1));
    t.ret("setrlimit cpu 5 10", setrlimit(&mut c, 0, 5, 10));
    t.step("getrlimit cpu", getrlimit(&mut c, 0), show_rlimit);
    t.ret(
        "setrlimit nofile huge",
        setrlimit(&mut c, 8, 1 << 40, 1 << 40),
    );
    t.step("getrlimit nofile", getrlimit(&mut c, 8), show_rlimit);
    t.ret(
        "setrlimit nofile inf",
        setrlimit(&mut c, 8, RLIM_INFINITY, RLIM_INFINITY),
    );
    t.step("getrlimit nofile", getrlimit(&mut c, 8), show_rlimit);
    t.ret(
        "setrlimit stack inf",
        setrlimit(&mut c, 3, RLIM_INFINITY, RLIM_INFINITY),
    );
    t.step("getrlimit stack", getrlimit(&mut c, 3), show_rlimit);
    t.ret(
        "setrlimit data 1M",
        setrlimit(&mut c, 2, 1 << 20, RLIM_INFINITY),
    );
    t.step("getrlimit data", getrlimit(&mut c, 2), show_rlimit);
    // Inherited by a fork.
    t.ret("setrlimit fsize 4096", setrlimit(&mut c, 1, 4096, 8192));
    match c.prefork() {
        Ok(cookie) => {
            t.0.push("prefork: ok".into());
            let child = Client::connect_fork(url, &cookie);
            match child {
                Ok(mut ch) => {
                    t.step("child getrlimit fsize", getrlimit(&mut ch, 1), show_rlimit);
                    t.step("child getrlimit cpu", getrlimit(&mut ch, 0), show_rlimit);
                }
                Err(e) => t.0.push(format!("fork: failed ({e})")),
            }
        }
        Err(e) => t.0.push(format!("prefork: failed ({e})")),
    }
    // A new process starts from the defaults.
    let mut d = connect(url, "rlimit-fresh");
    t.step("fresh getrlimit fsize", getrlimit(&mut d, 1), show_rlimit);
    // Not root: lowering is fine, raising the hard limit is not.
    t.ret("setuid 1000", d.syscall(SYS_SETUID, &[1000], &mut []));
    t.ret("user lowers core", setrlimit(&mut d, 4, 0, 1000));
    t.ret("user raises core max", setrlimit(&mut d, 4, 0, 2000));
    t.ret("user raises core cur", setrlimit(&mut d, 4, 1000, 1000));
    t.step("user getrlimit core", getrlimit(&mut d, 4), show_rlimit);
}

fn nofile_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "nofile");
    t.ret(
        "setrlimit nofile 6",
        setrlimit(&mut c, RLIMIT_NOFILE, 6, 128),
    );
    let mut n = 0;
    let mut last = Ok(0);
    for _ in 0..20 {
        last = c.open("/", O_RDONLY, 0);
        if last.is_err() {
            break;
        }
        n += 1;
    }
    t.0.push(format!("opens under nofile 6: {n}"));
    t.unit("open past nofile", last);
    t.ret("dup2 to 6", c.syscall(SYS_DUP2, &[0, 6], &mut []));
    t.ret("dup2 to 5", c.syscall(SYS_DUP2, &[0, 5], &mut []));
    t.ret("F_DUPFD 6", c.syscall(SYS_FCNTL, &[0, F_DUPFD, 6], &mut []));
    t.ret("F_DUPFD 2", c.syscall(SYS_FCNTL, &[0, F_DUPFD, 2], &mut []));
    t.ret(
        "setrlimit nofile 2",
        setrlimit(&mut c, RLIMIT_NOFILE, 2, 128),
    );
    t.unit("open under nofile 2", c.open("/", O_RDONLY, 0));
    t.unit("close 5", c.close(5));
    t.ret(
        "setrlimit nofile 128",
        setrlimit(&mut c, RLIMIT_NOFILE, 128, 128),
    );
    t.unit("open under nofile 128", c.open("/", O_RDONLY, 0));
    t.ret("raise nofile max 129", setrlimit(&mut c, 8, 128, 129));
}

fn fsize_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "fsize");
    t.unit("mkdir /tmp", c.mkdir("/tmp", 0o755));
    let args = tmpfs_args(1 << 20, 0, 0, 0, 0o755);
    t.unit("mount tmpfs /tmp", c.mount_tmpfs("/tmp", 0, &args));
    for path in ["/rf", "/tmp/tf"] {
        // A connection per file: the client keeps only the last signal raised.
        let mut c = connect(url, "fsize-file");
        t.ret(
            "setrlimit fsize 100",
            setrlimit(&mut c, RLIMIT_FSIZE, 100, 1000),
        );
        let fd = c.open(path, O_RDWR | O_CREAT, 0o644).unwrap_or(-1);
        t.step(&format!("{path} write 60"), c.write(fd, &[1; 60]), |n| {
            n.to_string()
        });
        let r = c.write(fd, &[2; 60]);
        t.step(&format!("{path} write 60 more"), r, |n| n.to_string());
        t.0.push(format!("{path} signal: {:?}", c.last_signal()));
        t.step(
            &format!("{path} write 40 to 100"),
            c.write(fd, &[3; 40]),
            |n| n.to_string(),
        );
        t.step(
            &format!("{path} pwrite at 100"),
            c.pwrite(fd, &[4], 100),
            |n| n.to_string(),
        );
        t.step(
            &format!("{path} pwrite 0 at 500"),
            c.pwrite(fd, &[], 500),
            |n| n.to_string(),
        );
        t.step(&format!("{path} size"), c.fstat(fd), |s| s.size.to_string());
        t.unit(&format!("{path} ftruncate 500"), c.ftruncate(fd, 500));
        t.step(&format!("{path} size"), c.fstat(fd), |s| s.size.to_string());
    }
    t.ret(
        "setrlimit fsize inf",
        setrlimit(&mut c, RLIMIT_FSIZE, 1000, 1000),
    );
    let mut p = [0i32; 2];
    match c.pipe() {
        Ok((r, w)) => {
            p = [r, w];
            t.0.push("pipe: ok".into());
        }
        Err(e) => t.0.push(format!("pipe: failed ({e})")),
    }
    t.ret(
        "setrlimit fsize 10",
        setrlimit(&mut c, RLIMIT_FSIZE, 10, 1000),
    );
    t.step("pipe write 100", c.write(p[1], &[5; 100]), |n| {
        n.to_string()
    });
    t.step(
        "console write 20",
        c.write(1, b"fsize console test\n"),
        |n| n.to_string(),
    );
}

fn timespec(sec: i64, nsec: i64) -> [u8; 16] {
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&sec.to_le_bytes());
    ts[8..].copy_from_slice(&nsec.to_le_bytes());
    ts
}

fn time_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "time");
    for (clock, name) in [
        (0, "realtime"),
        (1, "virtual"),
        (2, "prof"),
        (3, "monotonic"),
        (4, "4"),
        (5, "5"),
        (99, "99"),
    ] {
        let mut ts = [0xffu8; 16];
        let a = addr_of(&ts);
        let r = c.syscall(SYS_CLOCK_GETRES, &[clock, a], &mut [Buf::Out(&mut ts)]);
        t.step(&format!("clock_getres {name}"), r, |_| {
            format!("{} {}", le64(&ts, 0) as i64, le64(&ts, 8) as i64)
        });
    }
    t.ret(
        "clock_getres NULL",
        c.syscall(SYS_CLOCK_GETRES, &[0, 0], &mut []),
    );
    let mut ru = [0xffu8; 144];
    let a = addr_of(&ru);
    let r = c.syscall(SYS_GETRUSAGE, &[0, a], &mut [Buf::Out(&mut ru)]);
    t.ret("getrusage self", r);
    let r = c.syscall(SYS_GETRUSAGE, &[int_arg(-1), a], &mut [Buf::Out(&mut ru)]);
    t.ret("getrusage children", r);
    t.ret("getrusage 5", c.syscall(SYS_GETRUSAGE, &[5, a], &mut []));
    // nanosleep: the time slept (whether at least the request), rmtp.
    let rq = timespec(0, 50_000_000);
    let mut rm = [0xffu8; 16];
    let start = Instant::now();
    let args = [addr_of(&rq), addr_of(&rm)];
    let r = c.syscall(SYS_NANOSLEEP, &args, &mut [Buf::In(&rq), Buf::Out(&mut rm)]);
    let slept = start.elapsed() >= Duration::from_millis(50);
    t.step("nanosleep 50ms", r, |v| {
        let rm = (le64(&rm, 0) as i64, le64(&rm, 8) as i64);
        format!("{} slept {slept} rmtp {rm:?}", v[0])
    });
    for (name, s, ns) in [
        ("nanosleep nsec 1e9", 0, 1_000_000_000),
        ("nanosleep nsec -1", 0, -1),
        ("nanosleep sec -1", -1, 0),
        ("nanosleep 0", 0, 0),
    ] {
        let rq = timespec(s, ns);
        let r = c.syscall(SYS_NANOSLEEP, &[addr_of(&rq), 0], &mut [Buf::In(&rq)]);
        t.ret(name, r);
    }
    t.ret("nanosleep NULL", c.syscall(SYS_NANOSLEEP, &[0, 0], &mut []));
    // clock_nanosleep returns its error as the value (NOERR).
    let rq = timespec(0, 30_000_000);
    let start = Instant::now();
    let r = c.syscall(
        SYS_CLOCK_NANOSLEEP,
        &[3, 0, addr_of(&rq), 0],
        &mut [Buf::In(&rq)],
    );
    let slept = start.elapsed() >= Duration::from_millis(30);
    t.step("clock_nanosleep monotonic 30ms", r, |v| {
        format!("{} slept {slept}", v[0])
    });
    let rq = timespec(0, 30_000_000);
    let start = Instant::now();
    let r = c.syscall(
        SYS_CLOCK_NANOSLEEP,
        &[0, 0, addr_of(&rq), 0],
        &mut [Buf::In(&rq)],
    );
    let slept = start.elapsed() >= Duration::from_millis(30);
    t.step("clock_nanosleep realtime 30ms", r, |v| {
        format!("{} slept {slept}", v[0])
    });
    // 1 ns after boot: long past.
    let rq = timespec(0, 1);
    let start = Instant::now();
    let args = [3, TIMER_ABSTIME, addr_of(&rq), 0];
    let r = c.syscall(SYS_CLOCK_NANOSLEEP, &args, &mut [Buf::In(&rq)]);
    let quick = start.elapsed() < Duration::from_millis(500);
    t.step("clock_nanosleep abstime past", r, |v| {
        format!("{} quick {quick}", v[0])
    });
    let mut now = [0u8; 16];
    let a = addr_of(&now);
    let _ = c.syscall(427, &[3, a], &mut [Buf::Out(&mut now)]);
    let (s, ns) = (le64(&now, 0) as i64, le64(&now, 8) as i64);
    let deadline = s * 1_000_000_000 + ns + 40_000_000;
    let rq = timespec(deadline / 1_000_000_000, deadline % 1_000_000_000);
    let start = Instant::now();
    let args = [3, TIMER_ABSTIME, addr_of(&rq), 0];
    let r = c.syscall(SYS_CLOCK_NANOSLEEP, &args, &mut [Buf::In(&rq)]);
    let slept = start.elapsed() >= Duration::from_millis(35);
    t.step("clock_nanosleep abstime +40ms", r, |v| {
        format!("{} slept {slept}", v[0])
    });
    for (name, clock, ns) in [
        ("clock_nanosleep clock 99", 99, 1),
        ("clock_nanosleep clock 5", 5, 1),
        ("clock_nanosleep nsec 1e9", 3, 1_000_000_000),
    ] {
        let rq = timespec(0, ns);
        let args = [clock, 0, addr_of(&rq), 0];
        t.ret(
            name,
            c.syscall(SYS_CLOCK_NANOSLEEP, &args, &mut [Buf::In(&rq)]),
        );
    }
    t.ret(
        "clock_nanosleep NULL",
        c.syscall(SYS_CLOCK_NANOSLEEP, &[3, 0, 0, 0], &mut []),
    );
    let mut rb = [0u8; 32];
    let a = addr_of(&rb);
    let r = c.syscall(SYS_GETRANDOM, &[a, 32, 0], &mut [Buf::Out(&mut rb)]);
    t.ret("getrandom 32", r);
}

fn extattr_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "extattr");
    t.unit("create /xf", c.open("/xf", O_RDWR | O_CREAT, 0o644));
    t.unit("create /tmp/xf", c.open("/tmp/xf", O_RDWR | O_CREAT, 0o644));
    t.unit("symlink /tmp/xl", c.symlink("xf", "/tmp/xl"));
    let attr = CString::new("user.test").unwrap();
    let attr = attr.as_bytes_with_nul();
    let name = CString::new("test").unwrap();
    let name = name.as_bytes_with_nul();
    let data = [7u8; 8];
    for path in ["/xf", "/tmp/xf", "/tmp/xl", "/nonexistent"] {
        let p = CString::new(path).unwrap();
        let p = p.as_bytes_with_nul();
        let ns = EXTATTR_NAMESPACE_USER;
        let (pa, na, da) = (addr_of(p), addr_of(name), addr_of(&data));
        let mut out = [0u8; 64];
        let oa = addr_of(&out);
        let set = [pa, ns, na, da, 8];
        let mem = &mut [Buf::In(p), Buf::In(name), Buf::In(&data)];
        t.ret(
            &format!("extattr_set_file {path}"),
            c.syscall(SYS_EXTATTR_SET_FILE, &set, mem),
        );
        let get = [pa, ns, na, oa, 64];
        let mem = &mut [Buf::In(p), Buf::In(name), Buf::Out(&mut out)];
        t.ret(
            &format!("extattr_get_file {path}"),
            c.syscall(SYS_EXTATTR_GET_FILE, &get, mem),
        );
        let get0 = [pa, ns, na, 0, 0];
        let mem = &mut [Buf::In(p), Buf::In(name)];
        let r = c.syscall(SYS_EXTATTR_GET_FILE, &get0, mem);
        t.ret(&format!("extattr_get_file size {path}"), r);
        let del = [pa, ns, na];
        let mem = &mut [Buf::In(p), Buf::In(name)];
        let r = c.syscall(SYS_EXTATTR_DELETE_FILE, &del, mem);
        t.ret(&format!("extattr_delete_file {path}"), r);
        let list = [pa, ns, oa, 64];
        let mem = &mut [Buf::In(p), Buf::Out(&mut out)];
        let r = c.syscall(SYS_EXTATTR_LIST_FILE, &list, mem);
        t.ret(&format!("extattr_list_file {path}"), r);
        let mem = &mut [Buf::In(p), Buf::In(name), Buf::In(&data)];
        let r = c.syscall(SYS_EXTATTR_SET_LINK, &set, mem);
        t.ret(&format!("extattr_set_link {path}"), r);
        let mem = &mut [Buf::In(p), Buf::In(name), Buf::Out(&mut out)];
        let r = c.syscall(SYS_EXTATTR_GET_LINK, &get, mem);
        t.ret(&format!("extattr_get_link {path}"), r);
        let mem = &mut [Buf::In(p), Buf::In(name)];
        let r = c.syscall(SYS_EXTATTR_DELETE_LINK, &del, mem);
        t.ret(&format!("extattr_delete_link {path}"), r);
        let mem = &mut [Buf::In(p), Buf::Out(&mut out)];
        let r = c.syscall(SYS_EXTATTR_LIST_LINK, &list, mem);
        t.ret(&format!("extattr_list_link {path}"), r);
        let ctl = [pa, 1, 0, ns, na];
        let mem = &mut [Buf::In(p), Buf::In(name)];
        t.ret(
            &format!("extattrctl {path}"),
            c.syscall(SYS_EXTATTRCTL, &ctl, mem),
        );
        let fd = c.open(path, O_RDONLY, 0);
        if let Ok(fd) = fd {
            let fd = fd as u64;
            let set = [fd, ns, na, da, 8];
            let mem = &mut [Buf::In(name), Buf::In(&data)];
            t.ret(
                &format!("extattr_set_fd {path}"),
                c.syscall(SYS_EXTATTR_SET_FD, &set, mem),
            );
            let get = [fd, ns, na, oa, 64];
            let mem = &mut [Buf::In(name), Buf::Out(&mut out)];
            t.ret(
                &format!("extattr_get_fd {path}"),
                c.syscall(SYS_EXTATTR_GET_FD, &get, mem),
            );
            let del = [fd, ns, na];
            let r = c.syscall(SYS_EXTATTR_DELETE_FD, &del, &mut [Buf::In(name)]);
            t.ret(&format!("extattr_delete_fd {path}"), r);
            let list = [fd, ns, oa, 64];
            let r = c.syscall(SYS_EXTATTR_LIST_FD, &list, &mut [Buf::Out(&mut out)]);
            t.ret(&format!("extattr_list_fd {path}"), r);
            let _ = c.close(fd as i32);
        }
    }
    let _ = attr;
    // Bad namespace, bad descriptor, a name too long, a NULL name.
    let p = b"/xf\0";
    let args = [addr_of(p), 9, addr_of(name), 0, 0];
    let r = c.syscall(
        SYS_EXTATTR_GET_FILE,
        &args,
        &mut [Buf::In(p), Buf::In(name)],
    );
    t.ret("extattr_get_file namespace 9", r);
    let args = [99, 1, addr_of(name), 0, 0];
    let r = c.syscall(SYS_EXTATTR_GET_FD, &args, &mut [Buf::In(name)]);
    t.ret("extattr_get_fd bad fd", r);
    let long = [b'a'; 300];
    let args = [addr_of(p), 1, addr_of(&long), 0, 0];
    let r = c.syscall(
        SYS_EXTATTR_GET_FILE,
        &args,
        &mut [Buf::In(p), Buf::In(&long)],
    );
    t.ret("extattr_get_file long name", r);
    let args = [addr_of(p), 1, 0, 0, 0];
    let r = c.syscall(SYS_EXTATTR_GET_FILE, &args, &mut [Buf::In(p)]);
    t.ret("extattr_get_file NULL name", r);
    let args = [99, 1, 0, 0];
    t.ret(
        "extattr_list_fd bad fd",
        c.syscall(SYS_EXTATTR_LIST_FD, &args, &mut []),
    );
}

/// `modctl(cmd, &iov)` with a buffer of `len` bytes; the bytes copied and the length the
/// kernel put back into the iovec.
fn modstat(c: &mut Client, cmd: u64, len: usize) -> client::Result<(Vec<u8>, u64)> {
    let mut buf = vec![0u8; len];
    let mut iov = [0u8; 16];
    iov[..8].copy_from_slice(&addr_of(&buf).to_le_bytes());
    iov[8..].copy_from_slice(&(len as u64).to_le_bytes());
    let a = addr_of(&iov);
    c.syscall(
        SYS_MODCTL,
        &[cmd, a],
        &mut [Buf::InOut(&mut iov), Buf::Out(&mut buf)],
    )?;
    Ok((buf, le64(&iov, 8)))
}

/// The names in an old-layout (`MODCTL_STAT` of NetBSD 5–8, 392-byte `modstat_t`) reply,
/// with their source, class and reference count.
fn old_rows(b: &[u8], len: u64) -> String {
    let n = (len as usize).min(b.len()) / 392;
    let mut rows: Vec<String> = (0..n)
        .map(|i| {
            let r = &b[i * 392..(i + 1) * 392];
            let name = r[..32].split(|&x| x == 0).next().unwrap_or(&[]);
            let word = |o: usize| u32::from_le_bytes(r[o..o + 4].try_into().unwrap()) as i32;
            let req = r[32..352].split(|&x| x == 0).next().unwrap_or(&[]);
            format!(
                "{}(src {} class {} ref {} req '{}')",
                String::from_utf8_lossy(name),
                word(360),
                word(364),
                word(372),
                String::from_utf8_lossy(req)
            )
        })
        .collect();
    rows.sort();
    rows.join(" ")
}

fn modstat_steps(url: &str, t: &mut Transcript) {
    let mut c = connect(url, "modstat");
    // NetBSD 5–8: MODCTL_STAT is 2 and fills 392-byte modstat_t records.
    t.step("modctl 2 probe (len 0)", modstat(&mut c, 2, 0), |(_, l)| {
        format!("len {l}")
    });
    t.step("modctl 2", modstat(&mut c, 2, 8192), |(b, l)| {
        old_rows(&b, l)
    });
    t.step("modctl 2 short", modstat(&mut c, 2, 100), |(b, _)| {
        String::from_utf8_lossy(b[..32].split(|&x| x == 0).next().unwrap_or(&[])).into()
    });
    // NetBSD 9 and later: MODCTL_STAT is 4 (count, 64-byte records, required strings).
    t.step("modctl 4", modstat(&mut c, 4, 8192), |(b, l)| {
        let n = i32::from_le_bytes(b[..4].try_into().unwrap());
        format!("count>0 {} len>4 {}", n > 0, l > 4)
    });
    t.ret("modctl 5", c.syscall(SYS_MODCTL, &[5, 0], &mut []));
    t.ret("modctl 2 NULL", c.syscall(SYS_MODCTL, &[2, 0], &mut []));
}
