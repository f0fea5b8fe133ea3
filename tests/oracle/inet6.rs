//! The netinet6 probe (issue 16): the in6 interface ioctls ifconfig and ndp make on an
//! AF_INET6 datagram socket (with their errno), the link-local address an shmif interface
//! gets when it comes up (as getifaddrs reads it through `NET_RT_IFLIST`), the neighbour
//! table `ndp -a` reads, `net.inet6.ip6.forwarding`, and the raw ICMPv6 socket options
//! ping6 sets. Run against a server started in a directory of its own with `-lrumpnet
//! -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif` (the bus
//! `oracle6-bus` lands there).

use std::net::Ipv6Addr;

use client::Client;

use crate::peer::{ioctl, SOCK_DGRAM, SOCK_RAW};
use crate::sysctl::sysctl;
use crate::transcript::{connect, Transcript};

const IOC_OUT: u32 = 0x4000_0000;
const IOC_IN: u32 = 0x8000_0000;
const RW: u32 = IOC_IN | IOC_OUT;
const AF_INET6: i32 = 24;

const fn io(dir: u32, num: u32, len: u32) -> u32 {
    dir | (len & 0x1fff) << 16 | (b'i' as u32) << 8 | num
}

/// `sizeof(struct in6_ifreq)`: its union's largest member is `struct icmp6_ifstat`.
const IN6_IFREQ: u32 = 16 + 34 * 8;
const SIOCIFCREATE: u32 = io(IOC_IN, 122, 144);
const SIOCSLINKSTR: u32 = io(IOC_IN, 136, 40);
const SIOCGIFFLAGS: u32 = io(RW, 17, 144);
const SIOCSIFFLAGS: u32 = io(IOC_IN, 16, 144);
const SIOCAIFADDR_IN6: u32 = io(IOC_IN, 107, 128);
const SIOCDIFADDR_IN6: u32 = io(IOC_IN, 25, IN6_IFREQ);
const GETTERS: &[(&str, u32)] = &[
    ("SIOCGIFADDR_IN6", io(RW, 33, IN6_IFREQ)),
    ("SIOCGIFNETMASK_IN6", io(RW, 37, IN6_IFREQ)),
    ("SIOCGIFAFLAG_IN6", io(RW, 73, IN6_IFREQ)),
];
const SIOCGNBRINFO_IN6: u32 = io(RW, 78, 56);

fn req(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

fn sin6(a: Ipv6Addr, scope: u32) -> [u8; 28] {
    let mut s = [0u8; 28];
    s[0] = 28;
    s[1] = AF_INET6 as u8;
    s[8..24].copy_from_slice(&a.octets());
    s[24..28].copy_from_slice(&scope.to_le_bytes());
    s
}

fn show_sin6(s: &[u8]) -> String {
    let a: [u8; 16] = s[8..24].try_into().unwrap();
    format!(
        "len {} family {} {} scope {}",
        s[0],
        s[1],
        Ipv6Addr::from(a),
        u32::from_le_bytes(s[24..28].try_into().unwrap())
    )
}

fn aifaddr(name: &str, addr: [u8; 28], mask: Option<Ipv6Addr>) -> Vec<u8> {
    let mut r = req(name, 128);
    r[16..44].copy_from_slice(&addr);
    if let Some(m) = mask {
        r[72..100].copy_from_slice(&sin6(m, 0));
    }
    r[120..128].copy_from_slice(&[0xff; 8]); // vltime, pltime: ND6_INFINITE_LIFETIME
    r
}

/// A link-local address told by its shape only (the MAC is random per boot): its prefix,
/// the scope a message carries (embedded or in `sin6_scope_id`) and the EUI-64 marks.
fn ll_shape(a: &[u8; 16], scope_id: u32) -> String {
    format!(
        "fe80 embedded {} scope_id {} id {:02x}{:02x}:..{:02x}{:02x}..",
        u16::from_be_bytes([a[2], a[3]]),
        scope_id,
        a[8],
        a[9],
        a[11],
        a[12]
    )
}

/// The IPv6 addresses of `NET_RT_IFLIST`'s `RTM_NEWADDR` messages for interface `index`,
/// link-local ones by shape.
fn iflist6(c: &mut Client, index: u16) -> client::Result<String> {
    let a = sysctl(c, &[4, 34, 0, AF_INET6, 5, 0], Some(8192), Some(8192), None);
    if a.errno != 0 {
        return Err(client::Error::Errno(a.errno));
    }
    let b = &a.old[..a.oldlen as usize];
    let mut out = Vec::new();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        if len < 4 || o + len > b.len() {
            break;
        }
        let m = &b[o..o + len];
        if m[3] == 0xc && u16::from_le_bytes([m[16], m[17]]) == index {
            // After the 24-byte ifa_msghdr: netmask, then the address (RTA_NETMASK|RTA_IFA).
            let mut p = 24;
            let mut n = 0;
            while p + 2 <= m.len() {
                let sl = usize::from(m[p]);
                if n == 1 && m[p + 1] == AF_INET6 as u8 && p + 28 <= m.len() {
                    let a: [u8; 16] = m[p + 8..p + 24].try_into().unwrap();
                    let scope = u32::from_le_bytes(m[p + 24..p + 28].try_into().unwrap());
                    if a[0] == 0xfe && a[1] == 0x80 {
                        out.push(ll_shape(&a, scope));
                    } else {
                        out.push(format!("{} scope_id {scope}", Ipv6Addr::from(a)));
                    }
                }
                n += 1;
                p += sl.max(1).div_ceil(8) * 8;
            }
        }
        o += len;
    }
    Ok(out.join(", "))
}

/// `NET_RT_FLAGS` with `RTF_LLDATA` for AF_INET6 (ndp -a): per entry its destination (by
/// shape when link-local), whether a link address is there and `rmx_expire` is zero.
fn ndp_list(c: &mut Client) -> client::Result<String> {
    let a = sysctl(
        c,
        &[4, 34, 0, AF_INET6, 2, 0x400],
        Some(8192),
        Some(8192),
        None,
    );
    if a.errno != 0 {
        return Err(client::Error::Errno(a.errno));
    }
    let b = &a.old[..a.oldlen as usize];
    let mut out = Vec::new();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
        if len < 120 || o + len > b.len() {
            break;
        }
        let m = &b[o..o + len];
        let permanent = m[104..112] == [0; 8];
        let d = &m[120..];
        let a: [u8; 16] = d[8..24].try_into().unwrap();
        let dst = if a[0] == 0xfe && a[1] == 0x80 {
            ll_shape(&a, u32::from_le_bytes(d[24..28].try_into().unwrap()))
        } else {
            Ipv6Addr::from(a).to_string()
        };
        let g = &d[usize::from(d[0]).div_ceil(8) * 8..];
        let alen = g.get(6).copied().unwrap_or(0);
        out.push(format!(
            "{dst} alen {alen}{}",
            if permanent { " permanent" } else { "" }
        ));
        o += len;
    }
    out.sort();
    Ok(out.join("; "))
}

impl Transcript {
    fn in6_getters(&mut self, c: &mut Client, s: i32, tag: &str, a: [u8; 28]) {
        for (name, com) in GETTERS {
            let mut r = req("shmif0", IN6_IFREQ as usize);
            r[16..44].copy_from_slice(&a);
            let res = ioctl(c, s, *com, &mut r, &[]);
            self.step(&format!("{tag} {name}"), res, |()| match *name {
                "SIOCGIFAFLAG_IN6" => {
                    format!("{:#x}", i32::from_le_bytes(r[16..20].try_into().unwrap()))
                }
                _ => show_sin6(&r[16..44]),
            });
        }
    }

    fn nbrinfo(&mut self, c: &mut Client, s: i32, tag: &str, a: Ipv6Addr) {
        let mut r = req("shmif0", 56);
        r[16..32].copy_from_slice(&a.octets());
        let res = ioctl(c, s, SIOCGNBRINFO_IN6, &mut r, &[]);
        self.step(&format!("{tag} SIOCGNBRINFO_IN6"), res, |()| {
            format!(
                "asked {} isrouter {} state {} expire {}",
                i64::from_le_bytes(r[32..40].try_into().unwrap()),
                i32::from_le_bytes(r[40..44].try_into().unwrap()),
                i32::from_le_bytes(r[44..48].try_into().unwrap()),
                if r[48..56] == [0; 8] { "0" } else { "set" }
            )
        });
    }

    fn sockopt(&mut self, c: &mut Client, s: i32, step: &str, level: i32, name: i32, v: &[u8]) {
        let r = c.setsockopt(s, level, name, v);
        self.unit(step, r);
    }
}

/// Runs the probe against the server at `url`; the transcript.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "oracle-inet6");
    let s = c
        .socket(AF_INET6, SOCK_DGRAM, 0)
        .expect("an AF_INET6 socket");
    let fc1: Ipv6Addr = "fc00::1".parse().unwrap();
    let fc2: Ipv6Addr = "fc00::2".parse().unwrap();
    let mask64 = Ipv6Addr::from(!0u128 << 64);

    let r = ioctl(&mut c, s, SIOCIFCREATE, &mut req("shmif0", 144), &[]);
    t.unit("create shmif0", r);
    let bus = b"oracle6-bus\0";
    let mut d = req("shmif0", 40);
    d[24..32].copy_from_slice(&(bus.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&client::addr_of(bus).to_le_bytes());
    let r = ioctl(&mut c, s, SIOCSLINKSTR, &mut d, bus);
    t.unit("linkstr shmif0", r);
    t.in6_getters(&mut c, s, "down ::", sin6(Ipv6Addr::UNSPECIFIED, 0));
    let r = iflist6(&mut c, 2);
    t.step("down iflist6 shmif0", r, |v| v);
    let mut f = req("shmif0", 144);
    let r = ioctl(&mut c, s, SIOCGIFFLAGS, &mut f, &[]);
    t.unit("SIOCGIFFLAGS shmif0", r);
    f[16] |= 1;
    let r = ioctl(&mut c, s, SIOCSIFFLAGS, &mut f, &[]);
    t.unit("up shmif0", r);
    let r = iflist6(&mut c, 2);
    t.step("up iflist6 shmif0", r, |v| v);

    // Addresses: good, a mask with a hole, another family, no mask at all (a multicast
    // one last: both take it).
    let r = ioctl(
        &mut c,
        s,
        SIOCAIFADDR_IN6,
        &mut aifaddr("shmif0", sin6(fc1, 0), Some(mask64)),
        &[],
    );
    t.unit("SIOCAIFADDR_IN6 fc00::1/64", r);
    // At once: tentative (duplicate-address detection waits a second for an answer).
    let mut fl = req("shmif0", IN6_IFREQ as usize);
    fl[16..44].copy_from_slice(&sin6(fc1, 0));
    let r = ioctl(&mut c, s, GETTERS[2].1, &mut fl, &[]);
    t.step("at once SIOCGIFAFLAG_IN6 fc00::1", r, |()| {
        format!("{:#x}", i32::from_le_bytes(fl[16..20].try_into().unwrap()))
    });
    let holed = Ipv6Addr::from(!0u128 << 64 ^ 1 << 100);
    let r = ioctl(
        &mut c,
        s,
        SIOCAIFADDR_IN6,
        &mut aifaddr("shmif0", sin6(fc2, 0), Some(holed)),
        &[],
    );
    t.unit("SIOCAIFADDR_IN6 holed mask", r);
    let mut fam0 = sin6(fc2, 0);
    fam0[1] = 0;
    let r = ioctl(
        &mut c,
        s,
        SIOCAIFADDR_IN6,
        &mut aifaddr("shmif0", fam0, Some(mask64)),
        &[],
    );
    t.unit("SIOCAIFADDR_IN6 family 0", r);
    let r = ioctl(
        &mut c,
        s,
        SIOCAIFADDR_IN6,
        &mut aifaddr("shmif0", sin6(fc2, 0), None),
        &[],
    );
    t.unit("SIOCAIFADDR_IN6 fc00::2 no mask", r);
    // Duplicate-address detection is over after a second on NetBSD (one probe).
    std::thread::sleep(std::time::Duration::from_secs(3));
    t.in6_getters(&mut c, s, "fc00::1", sin6(fc1, 0));
    t.in6_getters(&mut c, s, "fc00::2", sin6(fc2, 0));
    t.in6_getters(&mut c, s, "fc00::9", sin6("fc00::9".parse().unwrap(), 0));
    let r = iflist6(&mut c, 2);
    t.step("addressed iflist6 shmif0", r, |v| v);
    t.nbrinfo(&mut c, s, "own fc00::1", fc1);
    t.nbrinfo(&mut c, s, "none fc00::9", "fc00::9".parse().unwrap());
    let r = ndp_list(&mut c);
    t.step("ndp list", r, |v| v);

    // A connected UDP socket's local address is the one the route gives.
    let u = c.socket(AF_INET6, SOCK_DGRAM, 0).unwrap();
    let r = c.connect_sock(u, &sin6("fc00::77".parse().unwrap(), 0)[..]);
    t.unit("udp connect port 0", r);
    let mut to = sin6("fc00::77".parse().unwrap(), 0);
    to[2..4].copy_from_slice(&9u16.to_be_bytes());
    let r = c.connect_sock(u, &to);
    t.unit("udp connect fc00::77.9", r);
    let r = c.getsockname(u);
    t.step("udp getsockname", r, |n| show_sin6(&n[..28]));
    let _ = c.close(u);

    // Removing: once, then it is gone.
    let mut r6 = req("shmif0", IN6_IFREQ as usize);
    r6[16..44].copy_from_slice(&sin6(fc2, 0));
    let r = ioctl(&mut c, s, SIOCDIFADDR_IN6, &mut r6.clone(), &[]);
    t.unit("SIOCDIFADDR_IN6 fc00::2", r);
    let r = ioctl(&mut c, s, SIOCDIFADDR_IN6, &mut r6, &[]);
    t.unit("SIOCDIFADDR_IN6 fc00::2 again", r);
    let r = iflist6(&mut c, 2);
    t.step("removed iflist6 shmif0", r, |v| v);

    // net.inet6.ip6.forwarding: off.
    let a = sysctl(&mut c, &[4, 24, 41, 1], Some(4), Some(4), None);
    let r = match a.errno {
        0 => Ok(i32::from_le_bytes(a.old[..4].try_into().unwrap())),
        e => Err(client::Error::Errno(e)),
    };
    t.step("sysctl net.inet6.ip6.forwarding", r, |v| v.to_string());

    // The raw ICMPv6 socket options ping6 sets, and wrong values.
    let raw = c.socket(AF_INET6, SOCK_RAW, 58).unwrap();
    let mut filt = [0u8; 32];
    filt[16] = 1 << 1; // ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY = 129)
    t.sockopt(&mut c, raw, "ICMP6_FILTER", 58, 18, &filt);
    t.sockopt(&mut c, raw, "ICMP6_FILTER short", 58, 18, &filt[..4]);
    let one = 1i32.to_le_bytes();
    t.sockopt(&mut c, raw, "IPV6_USE_MIN_MTU 1", 41, 42, &one);
    t.sockopt(
        &mut c,
        raw,
        "IPV6_USE_MIN_MTU 2",
        41,
        42,
        &2i32.to_le_bytes(),
    );
    t.sockopt(&mut c, raw, "IPV6_RECVPKTINFO", 41, 36, &one);
    t.sockopt(&mut c, raw, "IPV6_RECVHOPLIMIT", 41, 37, &one);
    t.sockopt(
        &mut c,
        raw,
        "IPV6_UNICAST_HOPS 300",
        41,
        4,
        &300i32.to_le_bytes(),
    );
    t.sockopt(
        &mut c,
        raw,
        "IPV6_UNICAST_HOPS 9",
        41,
        4,
        &9i32.to_le_bytes(),
    );
    let _ = c.close(raw);
    let r = ioctl(
        &mut c,
        s,
        SIOCAIFADDR_IN6,
        &mut aifaddr("shmif0", sin6("ff02::5".parse().unwrap(), 0), Some(mask64)),
        &[],
    );
    t.unit("SIOCAIFADDR_IN6 multicast", r);
    let _ = c.close(s);
    t
}
