//! IPv4 duplicate-address detection between two of our servers on one shmif bus, as
//! NetBSD 7.99's `arp_dad_*` (RFC 5227), and the `net.inet.arp`/`dad_count` knobs.
//! NetBSD's answers, recorded by hand with its rump_server and rumpctrl's ifconfig and
//! sysctl (docs/netinet.md, "IPv4 DAD and the ARP knobs"): an address set on an
//! interface already up is `tentative` for 3 probes (ifconfig -w waited 5.0 s), then
//! ready; an address another host on the bus holds becomes `duplicated`; an address set
//! on a down interface skips DAD (flags 0 at once); `net.inet.ip.dad_count` = 3,
//! `net.inet.arp.keep` = 1200, `down` = 20, the four `log_*` = 1, `debug` = 0.

mod common;
#[path = "netinet/peer.rs"]
mod peer;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{InDir, TempDir};
use peer::*;

const LIBS: &[&str] = &[
    "-lrumpnet",
    "-lrumpnet_net",
    "-lrumpnet_netinet",
    "-lrumpnet_shmif",
];
/// `_IOWR('i', 39, struct ifreq)`.
const SIOCGIFAFLAG_IN: u32 = 0xc090_6927;
/// `_IOW('i', 26, struct in_aliasreq)`.
const SIOCAIFADDR: u32 = 0x8040_691a;
const IN_IFF_TENTATIVE: i32 = 1;
const IN_IFF_DUPLICATED: i32 = 2;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ifreq(name: &str) -> Vec<u8> {
    let mut r = vec![0u8; 144];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

/// `ifconfig NAME inet ADDR/24 alias`.
fn add_addr(c: &mut client::Client, name: &str, a: Ipv4Addr) {
    let s = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let mut r = vec![0u8; 64];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r[16..32].copy_from_slice(&sin(a, 0));
    r[48..64].copy_from_slice(&sin(ip("255.255.255.0"), 0));
    ioctl(c, s, SIOCAIFADDR, &mut r, &[]).unwrap();
    c.close(s).unwrap();
}

/// `SIOCGIFAFLAG_IN`: the address's `IN_IFF_*` (what ifconfig prints and `-w` waits on).
fn aflags(c: &mut client::Client, name: &str, a: Ipv4Addr) -> i32 {
    let s = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let mut r = ifreq(name);
    r[16..32].copy_from_slice(&sin(a, 0));
    ioctl(c, s, SIOCGIFAFLAG_IN, &mut r, &[]).unwrap();
    c.close(s).unwrap();
    i32::from_le_bytes([r[16], r[17], r[18], r[19]])
}

fn int(v: &[u8]) -> i32 {
    i32::from_le_bytes(v[..4].try_into().unwrap())
}

#[test]
fn ipv4_dad_tentative_then_ready_and_duplicated_between_two_servers() {
    let dir = TempDir::new("netinet-arp-dad");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let b = InDir::start(&dir, "b.sock", LIBS);
    let (mut ca, mut cb) = (a.client(), b.client());
    // net.inet.ip.dad_count (IPCTL_DAD_COUNT 25): NetBSD's 3.
    assert_eq!(int(&sysctl_read(&mut ca, &[4, 2, 0, 25]).unwrap()), 3);

    // On a down interface no DAD: ready at once (a gratuitous request instead).
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    assert_eq!(aflags(&mut ca, "shmif0", ip("10.0.1.1")), 0);

    // On an interface up already (its first address brought it up): tentative while
    // the probes go.
    ifconfig_shmif(&mut cb, "shmif0", "bus1", ip("10.0.1.2")).unwrap();
    add_addr(&mut cb, "shmif0", ip("10.0.1.3"));
    let t0 = Instant::now();
    assert_eq!(aflags(&mut cb, "shmif0", ip("10.0.1.3")), IN_IFF_TENTATIVE);
    // a's address: probes answered by a, so duplicated.
    add_addr(&mut cb, "shmif0", ip("10.0.1.1"));
    assert_eq!(aflags(&mut cb, "shmif0", ip("10.0.1.1")), IN_IFF_TENTATIVE);
    // Ready after 3 probes + ANNOUNCE_WAIT: between 2 + 2 s and 1 + 2·2 + 2 s (+ slack).
    let ready = loop {
        if aflags(&mut cb, "shmif0", ip("10.0.1.3")) == 0 {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "still tentative");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        ready >= Duration::from_millis(3900),
        "ready too soon: {ready:?}"
    );
    assert_eq!(aflags(&mut cb, "shmif0", ip("10.0.1.1")), IN_IFF_DUPLICATED);
    // a's own address is untouched.
    assert_eq!(aflags(&mut ca, "shmif0", ip("10.0.1.1")), 0);
}

#[test]
fn dad_count_zero_skips_detection() {
    let dir = TempDir::new("netinet-arp-dad0");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let mut ca = a.client();
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    let v = 0i32.to_le_bytes();
    let name: Vec<u8> = [4i32, 2, 0, 25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let args = [client::addr_of(&name), 4, 0, 0, client::addr_of(&v), 4];
    ca.syscall(
        202,
        &args,
        &mut [client::Buf::In(&name), client::Buf::In(&v)],
    )
    .unwrap();
    assert_eq!(int(&sysctl_read(&mut ca, &[4, 2, 0, 25]).unwrap()), 0);
    add_addr(&mut ca, "shmif0", ip("10.0.1.5"));
    assert_eq!(aflags(&mut ca, "shmif0", ip("10.0.1.5")), 0);
}

/// t_arp.sh arp_cache_expiration_5s: with `net.inet.arp.keep` 5 a learnt entry is gone
/// from `arp -an` after 7 s (NetBSD's test sleeps keep + 2 s and expects it gone).
#[test]
fn arp_cache_expiration_5s() {
    let dir = TempDir::new("netinet-arp-keep");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let b = InDir::start(&dir, "b.sock", LIBS);
    let (mut ca, mut cb) = (a.client(), b.client());
    ifconfig_shmif(&mut ca, "shmif0", "bus1", ip("10.0.1.1")).unwrap();
    ifconfig_shmif(&mut cb, "shmif0", "bus1", ip("10.0.1.2")).unwrap();
    // net.inet.arp.keep by name (its number is dynamic, as NetBSD's CTL_CREATE).
    assert_eq!(int(&sysctl_read(&mut ca, &[4, 2, 0, 25]).unwrap()), 3);
    set_keep(&mut ca, 5);
    assert_eq!(ping(&mut ca, ip("10.0.1.2"), 1).unwrap().0, 1);
    let has = |c: &mut client::Client| {
        arp_entries(c)
            .unwrap()
            .iter()
            .any(|e| e.0 == ip("10.0.1.2"))
    };
    assert!(has(&mut ca), "learnt");
    std::thread::sleep(Duration::from_secs(7));
    assert!(!has(&mut ca), "expired after keep");
}

/// `sysctl -w net.inet.arp.keep=N` through `sysctl.nametomib`-style lookup: CTL_QUERY
/// on net.inet for the "arp" node, then on it for "keep".
fn set_keep(c: &mut client::Client, v: i32) {
    let arp = child(c, &[4, 2], "arp");
    let keep = child(c, &[4, 2, arp], "keep");
    let name: Vec<u8> = [4, 2, arp, keep]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let val = v.to_le_bytes();
    let args = [client::addr_of(&name), 4, 0, 0, client::addr_of(&val), 4];
    c.syscall(
        202,
        &args,
        &mut [client::Buf::In(&name), client::Buf::In(&val)],
    )
    .unwrap();
    assert_eq!(int(&sysctl_read(c, &[4, 2, arp, keep]).unwrap()), v);
}

/// The number of node `name` under `parent` (CTL_QUERY, -2: `struct sysctlnode`s, 96
/// bytes each, `sysctl_num` at 4 and `sysctl_name` at 8).
fn child(c: &mut client::Client, parent: &[i32], name: &str) -> i32 {
    let mut p = parent.to_vec();
    p.push(-2);
    let nm: Vec<u8> = p.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut list = vec![0u8; 96 * 64];
    let mut len = (list.len() as u64).to_le_bytes();
    // The request node: SYSCTL_VERSION in sysctl_flags, as sysctl(3) sends it.
    let mut q = vec![0u8; 96];
    q[..4].copy_from_slice(&0x0100_0000u32.to_le_bytes());
    let args = [
        client::addr_of(&nm),
        p.len() as u64,
        client::addr_of(&list),
        client::addr_of(&len),
        client::addr_of(&q),
        q.len() as u64,
    ];
    c.syscall(
        202,
        &args,
        &mut [
            client::Buf::In(&nm),
            client::Buf::Out(&mut list),
            client::Buf::InOut(&mut len),
            client::Buf::In(&q),
        ],
    )
    .unwrap();
    list.truncate(u64::from_le_bytes(len) as usize);
    for n in list.chunks(96) {
        let nm = &n[8..40];
        let end = nm.iter().position(|&b| b == 0).unwrap_or(nm.len());
        if &nm[..end] == name.as_bytes() {
            return i32::from_le_bytes(n[4..8].try_into().unwrap());
        }
    }
    panic!("no {name}");
}
