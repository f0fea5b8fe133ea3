//! The sysctl probe (issue 14) whose answers NetBSD's rump_server recorded in
//! `tests/oracle/sysctl.netbsd`: the whole MIB walked with `CTL_QUERY` from the root, every
//! leaf read (a size probe with a NULL buffer, then the value), every level's `CTL_DESCRIBE`,
//! and a set of error cases (unknown names, names below a leaf, short buffers, writes as root
//! and as a user, bad sizes).
//!
//! One line per node: `name numbers type flags size=N = value # description`, where value is
//! `<varies>` for nodes whose value legitimately differs between two servers or two runs
//! (`VARIES`), and one line per error case: `case: ok …` or `case: errno N …`.
//!
//! Run against any server with `cargo run --example sysctl_probe -- URL` (the server started
//! fresh as `rump_server -lrumpvfs URL`); `tests/oracle_sysctl.rs` runs it against ours.

use client::{Buf, Client};

/// `__sysctl`.
pub const SYS_SYSCTL: u32 = 202;
const SYS_SETUID: u32 = 23;

/// `CTL_QUERY`, `CTL_DESCRIBE`, `CTL_CREATE`.
pub const CTL_QUERY: i32 = -2;
/// `CTL_DESCRIBE`.
pub const CTL_DESCRIBE: i32 = -7;
const CTL_CREATE: i32 = -3;
/// `SYSCTL_VERS_1`, in every node's flags.
pub const SYSCTL_VERSION: u32 = 0x0100_0000;
/// `sizeof(struct sysctlnode)` on amd64.
pub const NODE_SIZE: usize = 96;
const CTLTYPE_NODE: u32 = 1;
const CTLTYPE_INT: u32 = 2;
const CTLTYPE_STRING: u32 = 3;
const CTLTYPE_QUAD: u32 = 4;
const CTLTYPE_STRUCT: u32 = 5;
const CTLTYPE_BOOL: u32 = 6;
const CTLFLAG_ALIAS: u32 = 0x10000;
const CTLFLAG_IMMEDIATE: u32 = 0x800;

/// Nodes whose value differs between two honest servers or two runs: host names, times,
/// random numbers, counters and the memory and CPUs of the machine.
pub const VARIES: &[&str] = &[
    "kern.hostname",
    "kern.boottime",
    "kern.urandom",
    "kern.arandom",
    "kern.cp_time",
    "kern.cp_id",
    "kern.lwp",
    "kern.proc",
    "kern.proc2",
    "kern.file",
    "kern.file2",
    "kern.hostid",
    "kern.uuid",
    "kern.version",
    "kern.tkstat.nin",
    "kern.tkstat.nout",
    "kern.tkstat.cancc",
    "kern.tkstat.rawcc",
    "kern.consdev",
    "kern.timecounter.choice",
    "kern.timecounter.hardware",
    "hw.ncpu",
    "hw.ncpuonline",
    "hw.physmem",
    "hw.physmem64",
    "hw.usermem",
    "hw.usermem64",
    "vm.loadavg",
    "vm.uvmexp",
    "vm.uvmexp2",
    "vm.vmmeter",
    "vm.nkmempages",
    "vm.maxslp",
    "kern.msgbuf",
    "kern.pool",
    "kern.hardclock_ticks",
    "kern.uidinfo.proccnt",
    "kern.uidinfo.lwpcnt",
    "vm.bufmem_lowater",
    "vm.bufmem_hiwater",
    "proc.curproc.rlimit.memorylocked.soft",
    "proc.curproc.rlimit.memorylocked.hard",
];

/// One node as `CTL_QUERY` copies it out.
#[derive(Clone, Debug)]
pub struct Node {
    /// `sysctl_flags` (version, type, flags).
    pub flags: u32,
    /// `sysctl_num`.
    pub num: i32,
    /// `sysctl_name`.
    pub name: String,
    /// `sysctl_csize`/`sysctl_clen`, or immediate data (the 8 bytes of the union's start).
    pub un: u64,
    /// `sysctl_size`.
    pub size: u64,
}

impl Node {
    /// `SYSCTL_TYPE(flags)`.
    pub fn ty(&self) -> u32 {
        self.flags & 0xf
    }

    /// Parses one 96-byte node.
    pub fn parse(b: &[u8]) -> Node {
        let u32at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let name = &b[8..40];
        let end = name.iter().position(|&c| c == 0).unwrap_or(32);
        Node {
            flags: u32at(0),
            num: u32at(4) as i32,
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
            un: u64at(48),
            size: u64at(64),
        }
    }
}

/// A query/describe request node: only the version flags (and a number) set.
pub fn request_node(num: i32) -> [u8; NODE_SIZE] {
    let mut n = [0u8; NODE_SIZE];
    n[0..4].copy_from_slice(&SYSCTL_VERSION.to_le_bytes());
    n[4..8].copy_from_slice(&num.to_le_bytes());
    n
}

/// The result of one `__sysctl`: the errno (0 for success), the `*oldlenp` it left, and the
/// bytes of the old buffer.
pub struct Answer {
    /// 0 or the NetBSD errno.
    pub errno: i32,
    /// `*oldlenp` after the call.
    pub oldlen: u64,
    /// The old buffer after the call.
    pub old: Vec<u8>,
}

/// `__sysctl(name, old (None: NULL) of `oldlen` bytes, new)`. `oldlen` None: a NULL
/// `oldlenp`.
pub fn sysctl(
    c: &mut Client,
    name: &[i32],
    old: Option<usize>,
    oldlen: Option<u64>,
    new: Option<&[u8]>,
) -> Answer {
    let nm: Vec<u8> = name.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut nm = nm;
    if nm.is_empty() {
        nm.push(0);
    }
    let mut oldbuf = vec![0xa5u8; old.unwrap_or(0).max(1)];
    let mut lenbuf = oldlen.unwrap_or(0).to_le_bytes();
    let newb: Vec<u8> = match new {
        Some(n) if !n.is_empty() => n.to_vec(),
        _ => vec![0],
    };
    let args = [
        client::addr_of(&nm),
        name.len() as u64,
        if old.is_some() {
            client::addr_of(&oldbuf)
        } else {
            0
        },
        if oldlen.is_some() {
            client::addr_of(&lenbuf)
        } else {
            0
        },
        if new.is_some() {
            client::addr_of(&newb)
        } else {
            0
        },
        new.map_or(0, |n| n.len() as u64),
    ];
    let r = c.syscall(
        SYS_SYSCTL,
        &args,
        &mut [
            Buf::In(&nm),
            Buf::Out(&mut oldbuf),
            Buf::InOut(&mut lenbuf),
            Buf::In(&newb),
        ],
    );
    let errno = match r {
        Ok(_) => 0,
        Err(e) => e.errno().unwrap_or(-1),
    };
    oldbuf.truncate(old.unwrap_or(0));
    Answer {
        errno,
        oldlen: u64::from_le_bytes(lenbuf),
        old: oldbuf,
    }
}

/// The children of the node at `path` (a size probe, then the query), or the errno.
pub fn query(c: &mut Client, path: &[i32]) -> Result<Vec<Node>, i32> {
    let mut name = path.to_vec();
    name.push(CTL_QUERY);
    let req = request_node(0);
    let probe = sysctl(c, &name, None, Some(0), Some(&req));
    if probe.errno != 0 {
        return Err(probe.errno);
    }
    let n = probe.oldlen as usize;
    let a = sysctl(c, &name, Some(n), Some(n as u64), Some(&req));
    if a.errno != 0 {
        return Err(a.errno);
    }
    Ok(a.old[..a.oldlen as usize]
        .chunks_exact(NODE_SIZE)
        .map(Node::parse)
        .collect())
}

/// The descriptions of the children of the node at `path`: (number, text).
pub fn describe(c: &mut Client, path: &[i32]) -> Result<Vec<(i32, String)>, i32> {
    let mut name = path.to_vec();
    name.push(CTL_DESCRIBE);
    let probe = sysctl(c, &name, None, Some(0), None);
    if probe.errno != 0 {
        return Err(probe.errno);
    }
    let n = probe.oldlen as usize;
    let a = sysctl(c, &name, Some(n), Some(n as u64), None);
    if a.errno != 0 {
        return Err(a.errno);
    }
    Ok(parse_descriptions(&a.old[..a.oldlen as usize]))
}

/// Parses an array of `struct sysctldesc`.
pub fn parse_descriptions(mut b: &[u8]) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    while b.len() >= 12 {
        let num = i32::from_le_bytes(b[0..4].try_into().unwrap());
        let len = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
        let text = b.get(12..12 + len).unwrap_or(&[]);
        let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
        out.push((num, String::from_utf8_lossy(&text[..end]).into_owned()));
        let step = 12 + ((len.max(1) + 3) & !3);
        b = b.get(step..).unwrap_or(&[]);
    }
    out
}

fn type_name(t: u32) -> &'static str {
    match t {
        CTLTYPE_NODE => "node",
        CTLTYPE_INT => "int",
        CTLTYPE_STRING => "string",
        CTLTYPE_QUAD => "quad",
        CTLTYPE_STRUCT => "struct",
        CTLTYPE_BOOL => "bool",
        _ => "?",
    }
}

/// Formats a leaf's value by its type.
pub fn show_value(ty: u32, v: &[u8]) -> String {
    match ty {
        CTLTYPE_INT if v.len() == 4 => i32::from_le_bytes(v.try_into().unwrap()).to_string(),
        CTLTYPE_QUAD if v.len() == 8 => u64::from_le_bytes(v.try_into().unwrap()).to_string(),
        CTLTYPE_BOOL if v.len() == 1 => v[0].to_string(),
        CTLTYPE_STRING => {
            let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
            format!("{:?}", String::from_utf8_lossy(&v[..end]))
        }
        _ => v.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The probe's transcript.
#[derive(Default)]
pub struct Transcript(pub Vec<String>);

/// Reads the leaf at `path`: a size probe, then the value; `Err(errno)` of either.
pub fn read_leaf(c: &mut Client, path: &[i32]) -> Result<Vec<u8>, (i32, &'static str)> {
    let probe = sysctl(c, path, None, Some(0), None);
    if probe.errno != 0 {
        return Err((probe.errno, "probe"));
    }
    let n = probe.oldlen as usize;
    let a = sysctl(c, path, Some(n), Some(n as u64), None);
    if a.errno != 0 {
        return Err((a.errno, "read"));
    }
    let len = (a.oldlen as usize).min(n);
    Ok(a.old[..len].to_vec())
}

fn walk(c: &mut Client, path: &mut Vec<i32>, prefix: &str, t: &mut Transcript, depth: usize) {
    let nodes = match query(c, path) {
        Ok(n) => n,
        Err(e) => {
            t.0.push(format!("{prefix} query: errno {e}"));
            return;
        }
    };
    let descs = describe(c, path).unwrap_or_default();
    for n in nodes {
        let full = match prefix.is_empty() {
            true => n.name.clone(),
            false => format!("{prefix}.{}", n.name),
        };
        path.push(n.num);
        let nums: Vec<String> = path.iter().map(|v| v.to_string()).collect();
        let desc = descs
            .iter()
            .find(|d| d.0 == n.num)
            .map_or("-", |d| d.1.as_str());
        let mut line = format!(
            "{full} {} {} flags={:#x} size={}",
            nums.join("."),
            type_name(n.ty()),
            n.flags & !0xf,
            n.size
        );
        if n.flags & CTLFLAG_ALIAS != 0 {
            line.push_str(&format!(" alias={}", n.un as u32 as i32));
        } else if n.ty() == CTLTYPE_NODE {
            // csize is an allocation detail; clen is the child count.
            line.push_str(&format!(" children={}", n.un >> 32));
        } else {
            let value = match read_leaf(c, path) {
                _ if VARIES.contains(&full.as_str()) => "<varies>".to_string(),
                Ok(v) => show_value(n.ty(), &v),
                Err((e, what)) => format!("<{what} errno {e}>"),
            };
            line.push_str(&format!(" = {value}"));
            if n.flags & CTLFLAG_IMMEDIATE != 0 && !VARIES.contains(&full.as_str()) {
                line.push_str(&format!(" imm={:#x}", n.un));
            }
        }
        line.push_str(&format!(" # {desc}"));
        t.0.push(line);
        if n.ty() == CTLTYPE_NODE && n.flags & CTLFLAG_ALIAS == 0 && depth < 8 {
            walk(c, path, &full, t, depth + 1);
        }
        path.pop();
    }
}

fn connect(url: &str, name: &str) -> Client {
    Client::connect_named(url, name).unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

fn answer_line(case: &str, a: &Answer, show: &str) -> String {
    match a.errno {
        0 => format!("{case}: ok oldlen={}{show}", a.oldlen),
        e => format!("{case}: errno {e} oldlen={}{show}", a.oldlen),
    }
}

/// Runs the probe against the server at `url` and returns its transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "sysctl");
    walk(&mut c, &mut Vec::new(), "", &mut t, 0);
    error_cases(url, &mut c, &mut t);
    t
}

const KERN: i32 = 1;
const KERN_OSTYPE: i32 = 1;
const KERN_HOSTNAME: i32 = 10;
const KERN_DOMAINNAME: i32 = 22;
const KERN_ARND: i32 = 81;
const KERN_RAWPARTITION: i32 = 24;

fn error_cases(url: &str, c: &mut Client, t: &mut Transcript) {
    let ostype = [KERN, KERN_OSTYPE];
    let case = |t: &mut Transcript, name: &str, a: Answer, show: String| {
        t.0.push(answer_line(name, &a, &show));
    };
    let a = sysctl(c, &[99], Some(8), Some(8), None);
    case(t, "unknown top-level 99", a, String::new());
    let a = sysctl(c, &[KERN, 9999], Some(8), Some(8), None);
    case(t, "unknown kern.9999", a, String::new());
    let a = sysctl(c, &[KERN, KERN_OSTYPE, 1], Some(8), Some(8), None);
    case(t, "below a leaf kern.ostype.1", a, String::new());
    let a = sysctl(c, &[KERN, KERN_OSTYPE, CTL_QUERY], Some(96), Some(96), None);
    case(t, "query a leaf", a, String::new());
    let a = sysctl(c, &[], Some(8), Some(8), None);
    case(t, "namelen 0", a, String::new());
    let a = sysctl(c, &[1; 13], Some(8), Some(8), None);
    case(t, "namelen 13", a, String::new());
    let a = sysctl(c, &[KERN], Some(8), Some(8), None);
    case(t, "read a node (kern)", a, String::new());
    let a = sysctl(c, &[KERN, -9], Some(8), Some(8), None);
    case(t, "unknown meta -9", a, String::new());
    let a = sysctl(c, &ostype, None, Some(0), None);
    case(t, "size probe kern.ostype", a, String::new());
    let a = sysctl(c, &ostype, None, None, None);
    case(t, "no oldp, no oldlenp", a, String::new());
    let a = sysctl(c, &ostype, Some(3), Some(3), None);
    let show = format!(" old={:?}", String::from_utf8_lossy(&a.old));
    case(t, "kern.ostype into 3 bytes", a, show);
    let a = sysctl(c, &ostype, Some(16), Some(0), None);
    let show = format!(" old={}", show_value(CTLTYPE_STRUCT, &a.old[..2]));
    case(t, "kern.ostype oldlen 0, buffer", a, show);
    let a = sysctl(c, &ostype, Some(16), Some(16), None);
    let show = format!(" old={:?}", String::from_utf8_lossy(&a.old[..8]));
    case(t, "kern.ostype into 16 bytes", a, show);
    let a = sysctl(c, &ostype, None, Some(0), Some(b"Linux\0"));
    case(t, "write kern.ostype (root)", a, String::new());
    let a = sysctl(
        c,
        &[KERN, CTL_QUERY],
        Some(2 * NODE_SIZE),
        Some(2 * NODE_SIZE as u64),
        Some(&request_node(0)),
    );
    let names: Vec<String> = a
        .old
        .chunks_exact(NODE_SIZE)
        .map(|b| Node::parse(b).name)
        .collect();
    let show = format!(" first={}", names.join(","));
    case(t, "query kern into 2 nodes", a, show);
    let a = sysctl(c, &[KERN, CTL_QUERY], None, Some(0), None);
    case(t, "query without a request node", a, String::new());
    let mut bad = request_node(0);
    bad[0..4].copy_from_slice(&0u32.to_le_bytes());
    let a = sysctl(c, &[KERN, CTL_QUERY], None, Some(0), Some(&bad));
    case(t, "query with version 0", a, String::new());
    let a = sysctl(c, &[KERN, CTL_QUERY], None, Some(0), Some(&bad[..8]));
    case(t, "query with a short node", a, String::new());
    let one = request_node(KERN_OSTYPE);
    let a = sysctl(c, &[KERN, CTL_DESCRIBE], Some(64), Some(64), Some(&one));
    let show = format!(
        " {:?}",
        parse_descriptions(&a.old[..(a.oldlen as usize).min(64)])
    );
    case(t, "describe kern.ostype alone", a, show);
    let a = sysctl(
        c,
        &[KERN, CTL_DESCRIBE],
        Some(64),
        Some(64),
        Some(&request_node(9999)),
    );
    case(t, "describe kern.9999", a, String::new());
    let a = sysctl(
        c,
        &[KERN, KERN_OSTYPE, CTL_DESCRIBE],
        Some(64),
        Some(64),
        None,
    );
    case(t, "describe below a leaf", a, String::new());
    let a = sysctl(c, &[KERN, CTL_DESCRIBE], Some(16), Some(16), None);
    case(t, "describe kern into 16 bytes", a, String::new());
    // arandom: size probe, 64 bytes, 256, 257, 0.
    let arnd = [KERN, KERN_ARND];
    let a = sysctl(c, &arnd, None, Some(64), None);
    case(t, "kern.arandom probe 64", a, String::new());
    let a = sysctl(c, &arnd, Some(64), Some(64), None);
    let show = format!(" nonzero={}", a.old.iter().any(|&b| b != 0xa5 && b != 0));
    case(t, "kern.arandom 64", a, show);
    let a = sysctl(c, &arnd, Some(256), Some(256), None);
    case(t, "kern.arandom 256", a, String::new());
    let a = sysctl(c, &arnd, Some(257), Some(257), None);
    case(t, "kern.arandom 257", a, String::new());
    let a = sysctl(c, &arnd, Some(8), Some(0), None);
    case(t, "kern.arandom 0", a, String::new());
    let a = sysctl(c, &[KERN, KERN_RAWPARTITION], Some(4), Some(4), None);
    let show = format!(" value={}", show_value(CTLTYPE_INT, &a.old));
    case(t, "kern.rawpartition", a, show);
    let host = [KERN, KERN_HOSTNAME];
    let a = sysctl(c, &host, None, None, Some(b"oracle\0"));
    case(t, "write kern.hostname (root)", a, String::new());
    let a = sysctl(c, &host, Some(64), Some(64), None);
    let show = format!(" value={}", show_value(CTLTYPE_STRING, &a.old));
    case(t, "read kern.hostname", a, show);
    let a = sysctl(c, &host, Some(64), Some(64), Some(b"second"));
    let show = format!(" old={}", show_value(CTLTYPE_STRING, &a.old));
    case(t, "swap kern.hostname (no NUL)", a, show);
    let a = sysctl(c, &host, Some(64), Some(64), None);
    let show = format!(" value={}", show_value(CTLTYPE_STRING, &a.old));
    case(t, "read kern.hostname again", a, show);
    let a = sysctl(c, &host, None, Some(0), Some(&[b'x'; 257]));
    case(t, "write kern.hostname 257 bytes", a, String::new());
    let a = sysctl(c, &host, None, Some(0), Some(&[b'x'; 256]));
    case(t, "write kern.hostname 256 bytes no NUL", a, String::new());
    let mut long = [b'y'; 256];
    long[255] = 0;
    let a = sysctl(c, &host, None, Some(0), Some(&long));
    case(t, "write kern.hostname 255+NUL", a, String::new());
    let a = sysctl(c, &host, Some(300), Some(300), None);
    case(t, "read kern.hostname long", a, String::new());
    let a = sysctl(c, &host, None, Some(0), Some(&[]));
    case(t, "write kern.hostname newlen 0", a, String::new());
    let dom = [KERN, KERN_DOMAINNAME];
    let a = sysctl(c, &dom, None, Some(0), Some(b"example.org\0"));
    case(t, "write kern.domainname (root)", a, String::new());
    let a = sysctl(c, &dom, Some(64), Some(64), None);
    let show = format!(" value={}", show_value(CTLTYPE_STRING, &a.old));
    case(t, "read kern.domainname", a, show);
    let a = sysctl(
        c,
        &[KERN, CTL_CREATE],
        None,
        Some(0),
        Some(&request_node(0)),
    );
    case(t, "create (root, empty node)", a, String::new());
    let mut u = connect(url, "sysctl-user");
    let r = u.syscall(SYS_SETUID, &[1000], &mut []);
    t.0.push(format!(
        "setuid 1000: {}",
        if r.is_ok() { "ok" } else { "failed" }
    ));
    let a = sysctl(&mut u, &host, None, Some(0), Some(b"user\0"));
    case(t, "write kern.hostname as user", a, String::new());
    let a = sysctl(&mut u, &ostype, None, Some(0), Some(b"user\0"));
    case(t, "write kern.ostype as user", a, String::new());
    let a = sysctl(&mut u, &host, Some(64), Some(64), None);
    let show = format!(" value={}", show_value(CTLTYPE_STRING, &a.old));
    case(t, "read kern.hostname as user", a, show);
    let a = sysctl(&mut u, &arnd, Some(32), Some(32), None);
    case(t, "kern.arandom as user", a, String::new());
    let a = sysctl(
        &mut u,
        &[KERN, CTL_CREATE],
        None,
        Some(0),
        Some(&request_node(0)),
    );
    case(t, "create as user", a, String::new());
    let mut d = request_node(KERN_OSTYPE);
    d[88..96].copy_from_slice(&1u64.to_le_bytes());
    let a = sysctl(&mut u, &[KERN, CTL_DESCRIBE], None, Some(0), Some(&d));
    case(t, "set a description as user", a, String::new());
}
