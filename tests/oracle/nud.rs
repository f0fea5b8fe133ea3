//! The neighbour unreachability probe (issue 16, nd6.c): three servers A, B, C on the bus
//! `nud-bus` (fc00::1, ::2, ::3); B and C each ping A once, so A learns them from their
//! solicitations and uses the entries to answer; then C halts. A's entries as ndp reads
//! them (`SIOCGNBRINFO_IN6`), sampled every 100 ms for 12 s, go STALE → DELAY → PROBE →
//! REACHABLE for B (it answers the probe) and DELAY → PROBE → gone for C (three unicast
//! probes unanswered); B's entry for A is REACHABLE (its solicitation was answered). The
//! transcript has the states seen, when the entries left DELAY and when C's went (whole
//! seconds after the pings, as ranges), the largest `asked`, the expiry ndp shows in
//! DELAY, and the probes A put on the bus (unicast solicitations, from which address).

use std::net::Ipv6Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use client::{Client, Error};

use crate::peer::{ioctl, sin6, SOCK_DGRAM, SOCK_RAW};
use crate::transcript::{connect, Transcript};

const AF_INET6: i32 = 24;
const SIOCIFCREATE: u32 = 0x8090_697a;
const SIOCSLINKSTR: u32 = 0x8028_6988;
const SIOCAIFADDR_IN6: u32 = 0x8080_696b;
/// `_IOWR('i', 78, struct in6_nbrinfo)`.
const SIOCGNBRINFO_IN6: u32 = 0xc038_694e;
/// The bus, relative to the servers' directory.
pub const BUS: &str = "nud-bus";

fn named(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

/// `ifconfig shmif0 create; linkstr BUS; inet6 A/64`.
pub fn setup(c: &mut Client, a: Ipv6Addr) -> Result<(), Error> {
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0)?;
    ioctl(c, s, SIOCIFCREATE, &mut named("shmif0", 144), &[])?;
    let path = format!("{BUS}\0");
    let mut d = named("shmif0", 40);
    d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&client::addr_of(path.as_bytes()).to_le_bytes());
    ioctl(c, s, SIOCSLINKSTR, &mut d, path.as_bytes())?;
    let mut r = named("shmif0", 128);
    r[16..44].copy_from_slice(&sin6(a, 0));
    r[72..100].copy_from_slice(&sin6(Ipv6Addr::from(!0u128 << 64), 0));
    r[120..128].copy_from_slice(&[0xff; 8]);
    ioctl(c, s, SIOCAIFADDR_IN6, &mut r, &[])?;
    c.close(s)
}

/// One ICMPv6 echo to `to` over a raw socket: whether the reply came within 3 s.
pub fn ping6(c: &mut Client, to: Ipv6Addr) -> Result<bool, Error> {
    let s = c.socket(AF_INET6, SOCK_RAW, 58)?;
    let m = [128, 0, 0, 0, 0x12, 0x34, 0, 1, b'n', b'u', b'd'];
    c.sendto(s, &m, 0, Some(&sin6(to, 0)))?;
    let until = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 256];
    let mut ok = false;
    while Instant::now() < until {
        match c.recvfrom(s, &mut buf, 0x80) {
            Ok((n, _)) if n >= 8 && buf[0] == 129 && buf[4..8] == m[4..8] => {
                ok = true;
                break;
            }
            Ok(_) => {}
            Err(Error::Errno(35)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e),
        }
    }
    c.close(s)?;
    Ok(ok)
}

/// `SIOCGNBRINFO_IN6` of `a` on shmif0: (asked, state, seconds to expiry).
pub fn nbrinfo(c: &mut Client, a: Ipv6Addr) -> Result<(i64, i32, i64), Error> {
    let s = c.socket(AF_INET6, SOCK_DGRAM, 0)?;
    let mut r = named("shmif0", 56);
    r[16..32].copy_from_slice(&a.octets());
    let res = ioctl(c, s, SIOCGNBRINFO_IN6, &mut r, &[]);
    c.close(s)?;
    res?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = i64::from_le_bytes(r[48..56].try_into().unwrap());
    Ok((
        i64::from_le_bytes(r[32..40].try_into().unwrap()),
        i32::from_le_bytes(r[44..48].try_into().unwrap()),
        if exp == 0 { 0 } else { exp - now },
    ))
}

fn state_name(s: i32) -> &'static str {
    match s {
        0 => "incomplete",
        1 => "reachable",
        2 => "stale",
        3 => "delay",
        4 => "probe",
        _ => "other",
    }
}

/// What A's samples of one neighbour showed.
#[derive(Default)]
struct Seen {
    states: Vec<&'static str>,
    left_delay_ms: Option<u128>,
    gone_ms: Option<u128>,
    asked_max: i64,
    delay_expire_max: i64,
}

/// A time as the transcript shows it: a range of whole seconds, wide enough for the
/// timers' granularity and the sampling.
fn about(ms: Option<u128>, lo: u128, hi: u128) -> String {
    match ms {
        Some(m) if (lo * 1000..=hi * 1000).contains(&m) => format!("{lo}-{hi} s"),
        Some(m) => format!("{m} ms (outside {lo}-{hi} s)"),
        None => "never".into(),
    }
}

/// The neighbour solicitations on the bus sent to a unicast address: (target, source).
fn unicast_ns(bus: &Path) -> Vec<(Ipv6Addr, Ipv6Addr)> {
    let Ok(b) = shmif::Bus::open_readonly(bus) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in b.packets().unwrap_or_default() {
        let f = &p.frame;
        if f.len() < 14 + 40 + 24 || f[12..14] != [0x86, 0xdd] || f[0] & 1 != 0 {
            continue;
        }
        let ip = &f[14..];
        if ip[6] != 58 || ip[40] != 135 {
            continue;
        }
        let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&ip[o..o + 16]).unwrap());
        out.push((a(48), a(8)));
    }
    out
}

/// Runs the probe against servers A, B and C (started in `dir`); `halt_c` stops C.
pub fn run(urls: [&str; 3], dir: &Path, halt_c: impl FnOnce()) -> Transcript {
    let mut t = Transcript::default();
    let addrs: [Ipv6Addr; 3] = [
        "fc00::1".parse().unwrap(),
        "fc00::2".parse().unwrap(),
        "fc00::3".parse().unwrap(),
    ];
    let mut cs: Vec<Client> = urls.iter().map(|u| connect(u, "oracle-nud")).collect();
    for (name, num) in [
        ("nd6_delay", 8),
        ("nd6_umaxtries", 9),
        ("nd6_mmaxtries", 10),
    ] {
        let r = crate::peer::sysctl_read(&mut cs[0], &[4, 24, 58, num]);
        t.step(&format!("sysctl net.inet6.icmp6.{name}"), r, |v| {
            i32::from_le_bytes(v[..4].try_into().unwrap()).to_string()
        });
    }
    for (k, c) in cs.iter_mut().enumerate() {
        let r = setup(c, addrs[k]);
        t.unit(&format!("setup fc00::{}", k + 1), r);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let r = ping6(&mut cs[1], addrs[0]);
    // Each entry's times count from the answer to its neighbour's ping.
    let mut since = [Instant::now(); 2];
    t.step("B pings A", r, |ok| ok.to_string());
    let r = ping6(&mut cs[2], addrs[0]);
    since[1] = Instant::now();
    t.step("C pings A", r, |ok| ok.to_string());
    let start = Instant::now();
    let r = nbrinfo(&mut cs[1], addrs[0]);
    t.step("B's entry for A", r, |(_, st, _)| state_name(st).into());
    let r = nbrinfo(&mut cs[0], addrs[1]);
    t.step("A's entry for B at once", r, |(_, st, _)| {
        state_name(st).into()
    });
    halt_c();
    let mut seen = [Seen::default(), Seen::default()];
    while start.elapsed() < Duration::from_secs(12) {
        for (k, s) in seen.iter_mut().enumerate() {
            if s.gone_ms.is_some() {
                continue;
            }
            match nbrinfo(&mut cs[0], addrs[k + 1]) {
                Ok((asked, st, exp)) => {
                    let name = state_name(st);
                    if s.states.last() != Some(&name) {
                        s.states.push(name);
                    }
                    if st == 3 {
                        s.delay_expire_max = s.delay_expire_max.max(exp);
                    } else if s.states.contains(&"delay") && s.left_delay_ms.is_none() {
                        s.left_delay_ms = Some(since[k].elapsed().as_millis());
                    }
                    s.asked_max = s.asked_max.max(asked);
                }
                Err(e) => {
                    s.states.push(if e.errno() == Some(22) {
                        "gone"
                    } else {
                        "error"
                    });
                    s.gone_ms = Some(since[k].elapsed().as_millis());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (k, s) in seen.iter().enumerate() {
        let who = ["B (up)", "C (halted)"][k];
        // Probing may be over between two samples when the neighbour answers at once.
        let states: Vec<&str> = s
            .states
            .iter()
            .copied()
            .filter(|x| k == 1 || *x != "probe")
            .collect();
        t.0.push(format!("A's entry for {who}: {}", states.join(" -> ")));
        t.0.push(format!(
            "A's entry for {who} left delay after: {}",
            about(s.left_delay_ms, 4, 6)
        ));
        t.0.push(format!(
            "A's entry for {who} shown in delay with expiry at most: {} s",
            s.delay_expire_max.clamp(0, 6)
        ));
    }
    t.0.push(format!(
        "A's entry for C (halted) gone after: {}",
        about(seen[1].gone_ms, 7, 10)
    ));
    t.0.push(format!(
        "A's entry for C (halted) asked at most: {}",
        seen[1].asked_max
    ));
    let ns = unicast_ns(&dir.join(BUS));
    let to_c: Vec<_> = ns.iter().filter(|n| n.0 == addrs[2]).collect();
    t.0.push(format!("unicast probes for C on the bus: {}", to_c.len()));
    let srcs: std::collections::BTreeSet<String> = to_c
        .iter()
        .map(|n| {
            if n.1.segments()[0] == 0xfe80 {
                "link-local".to_string()
            } else {
                n.1.to_string()
            }
        })
        .collect();
    t.0.push(format!(
        "unicast probes for C from: {}",
        srcs.into_iter().collect::<Vec<_>>().join(", ")
    ));
    t
}

/// Halts the server at `url` (`reboot(0)`, as rump_halt does without flags).
pub fn halt(url: &str) {
    let mut c = connect(url, "oracle-nud-halt");
    let _ = c.reboot(0, None);
}
