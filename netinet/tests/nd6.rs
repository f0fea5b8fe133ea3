//! Neighbour discovery in process, frames fed straight to `ether_input`: duplicate-address
//! detection (tentative, then ready or duplicated), a solicitation for our address is
//! answered and teaches us its sender, hostile NDP (short, bad
//! checksum, hop limit below 255, zero-length and overlong options) is dropped, and a
//! flood of solicitations from ever new senders leaves the neighbour cache bounded.

use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

use kernel::mem::Budget;
use netinet::engine::{csum6, NdState, ND_MAX};
use netinet::Stack;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "netinet-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const OURS: &str = "fc00::1";

/// A neighbour solicitation for `target` from `src` (MAC `mac`) as an Ethernet frame to
/// `dst_mac`; `hlim`, a checksum fix-up and the options can be spoiled by the caller.
fn ns_frame(src: Ipv6Addr, mac: [u8; 6], target: Ipv6Addr, hlim: u8, opts: &[u8]) -> Vec<u8> {
    let t = target.octets();
    let dst = Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&t);
    m.extend_from_slice(opts);
    let c = csum6(src, dst, 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0x33, 0x33, 0xff, t[13], t[14], t[15]];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(m.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, hlim]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&m);
    f
}

fn lla(mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![1, 1];
    o.extend_from_slice(&mac);
    o
}

#[test]
fn solicitations_answered_hostile_ndp_dropped_cache_bounded() {
    let dir = tempdir("nd6");
    let s = Stack::new(Budget::new(64 << 20), dir.clone()).unwrap();
    let mut e = s.lock();
    let i = e.if_create("shmif0").unwrap();
    drop(e);
    s.set_linkstr("shmif0", b"bus1").unwrap();
    let mut e = s.lock();
    let ours: Ipv6Addr = OURS.parse().unwrap();
    e.add_addr(i, IpAddr::V6(ours), 64, None).unwrap();
    // Coming up gave it its link-local address too.
    let ll = e
        .ifp(i)
        .unwrap()
        .addrs
        .iter()
        .find(|a| netinet::engine::is_link_local(a.addr))
        .map(|a| a.addr)
        .expect("a link-local address");
    let mac = e.ifp(i).unwrap().mac.unwrap();
    let IpAddr::V6(ll6) = ll else { unreachable!() };
    assert_eq!(
        &ll6.octets()[8..16],
        &[
            mac[0] ^ 2,
            mac[1],
            mac[2],
            0xff,
            0xfe,
            mac[3],
            mac[4],
            mac[5]
        ]
    );

    // Tentative first: a solicitation for it is not answered and teaches nothing; another
    // node's probe for it (from `::`) makes it a duplicate.
    let probe = "fc00::5".parse().unwrap();
    e.add_addr(i, IpAddr::V6(probe), 64, None).unwrap();
    let peer0: Ipv6Addr = "fc00::3".parse().unwrap();
    let pmac = [0xb2, 0xa0, 1, 2, 3, 4];
    e.ether_input(i, &ns_frame(peer0, pmac, ours, 255, &lla(pmac)));
    assert!(
        !e.nd.contains_key(&(i, peer0)),
        "a tentative target answers nothing"
    );
    e.ether_input(i, &ns_frame(Ipv6Addr::UNSPECIFIED, pmac, probe, 255, &[]));
    let flags = |e: &netinet::Engine, a: Ipv6Addr| {
        e.ifp(i)
            .unwrap()
            .addrs
            .iter()
            .find(|x| x.addr == IpAddr::V6(a))
            .unwrap()
            .flags6
    };
    assert_eq!(flags(&e, probe), netinet::ifnet::IN6_IFF_DUPLICATED);
    assert_eq!(flags(&e, ours), netinet::ifnet::IN6_IFF_TENTATIVE);
    drop(e);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut e = s.lock();
    e.nd6_timer();
    assert_eq!(flags(&e, ours), 0, "ready after a second without an answer");

    // A solicitation for our address: its sender learnt (STALE, as NetBSD's nd6_ns_input),
    // then DELAY, as the advertisement answering it uses the entry (`nd6_na_output` goes
    // through `nd6_output`).
    let peer: Ipv6Addr = "fc00::2".parse().unwrap();
    e.ether_input(i, &ns_frame(peer, pmac, ours, 255, &lla(pmac)));
    let n = e.nd.get(&(i, peer)).expect("the sender learnt");
    assert_eq!((n.mac, n.state), (Some(pmac), NdState::Delay));

    // Hostile: each dropped without an entry.
    let bad_src = |k: u16| Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0xbad, k);
    let mut frames = vec![
        ns_frame(bad_src(1), pmac, ours, 64, &lla(pmac)), // hop limit not 255
        ns_frame(bad_src(2), pmac, ours, 255, &[1, 0, 0, 0, 0, 0, 0, 0]), // option length 0
        ns_frame(bad_src(3), pmac, ours, 255, &[1, 9, 0, 0, 0, 0, 0, 0]), // overlong option
        ns_frame(
            bad_src(4),
            [1, 0, 0x5e, 0, 0, 1],
            ours,
            255,
            &lla([1, 0, 0x5e, 0, 0, 1]),
        ), // multicast MAC
        ns_frame(
            bad_src(5),
            pmac,
            "fc00::99".parse().unwrap(),
            255,
            &lla(pmac),
        ), // not ours
    ];
    let mut spoiled = ns_frame(bad_src(6), pmac, ours, 255, &lla(pmac));
    let l = spoiled.len();
    spoiled[l - 1] ^= 0xff; // checksum no longer right
    frames.push(spoiled);
    let mut short = ns_frame(bad_src(7), pmac, ours, 255, &lla(pmac));
    short.truncate(14 + 40 + 10);
    frames.push(short);
    for f in &frames {
        e.ether_input(i, f);
    }
    for k in 1..=7 {
        assert!(
            !e.nd.contains_key(&(i, bad_src(k))),
            "hostile frame {k} learnt"
        );
    }

    // A flood of senders: the cache stays within its bound.
    for k in 0..(ND_MAX + 500) as u32 {
        let src = Ipv6Addr::from(u128::from(ours) + 0x1_0000 + u128::from(k));
        let m = [0xb2, 0xa0, 9, (k >> 16) as u8, (k >> 8) as u8, k as u8];
        e.ether_input(i, &ns_frame(src, m, ours, 255, &lla(m)));
    }
    assert!(e.nd.len() <= ND_MAX, "{} entries", e.nd.len());
    assert!(e.nd.contains_key(&(i, peer)), "a known neighbour kept");
    drop(e);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
