//! NetBSD's tests/net/net/t_ipaddress.sh (ipaddr_same_address, ipaddr_same_address6,
//! ipaddr_auto_linklocal), tests/net/if/t_ifconfig.sh (ifconfig_create_destroy, the
//! interface index a re-made interface gets) and t_ndp.sh's `ndp -d` of an address not in
//! the cache, on one server with `-lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6 -lrumpnet_shmif`, by ioctl, sysctl and routing socket. The IPv6 table
//! is shown without its link-local, multicast and `::1` routes (NetBSD's scoped and
//! multicast routes are not ours yet: docs/netinet.md). Recorded from NetBSD's rump_server
//! by `cargo run --example oracle_netbsd_ipaddr -- URL > tests/oracle/netbsd-ipaddr.netbsd`
//! (the server in a directory of its own: the bus lands there); replayed by
//! `tests/netbsd_net_ipaddr.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use client::Client;

use crate::peer::{ioctl, sin, sysctl_read};
use crate::transcript::{connect, Transcript};

const IOC_IN: u32 = 0x8000_0000;
const IOC_OUT: u32 = 0x4000_0000;
const fn io(dir: u32, num: u32, len: u32) -> u32 {
    dir | (len & 0x1fff) << 16 | (b'i' as u32) << 8 | num
}
const SIOCIFCREATE: u32 = io(IOC_IN, 122, 144);
const SIOCIFDESTROY: u32 = io(IOC_IN, 121, 144);
const SIOCSLINKSTR: u32 = io(IOC_IN, 136, 40);
const SIOCGIFFLAGS: u32 = io(IOC_IN | IOC_OUT, 17, 144);
const SIOCSIFFLAGS: u32 = io(IOC_IN, 16, 144);
const SIOCGIFINDEX: u32 = io(IOC_IN | IOC_OUT, 140, 144);
const SIOCAIFADDR: u32 = io(IOC_IN, 26, 64);
const SIOCDIFADDR: u32 = io(IOC_IN, 25, 144);
const SIOCAIFADDR_IN6: u32 = io(IOC_IN, 107, 128);
const SIOCDIFADDR_IN6: u32 = io(IOC_IN, 25, 16 + 34 * 8);

fn req(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

fn sin6(a: Ipv6Addr) -> Vec<u8> {
    let mut s = vec![0u8; 28];
    s[0] = 28;
    s[1] = 24;
    s[8..24].copy_from_slice(&a.octets());
    s
}

struct If<'a> {
    c: &'a mut Client,
    s: i32,
    s6: i32,
}

impl If<'_> {
    fn call(&mut self, com: u32, mut r: Vec<u8>, v6: bool) -> client::Result<Vec<u8>> {
        let s = if v6 { self.s6 } else { self.s };
        ioctl(self.c, s, com, &mut r, &[])?;
        Ok(r)
    }

    fn create(&mut self, name: &str, bus: &str) -> client::Result<()> {
        self.call(SIOCIFCREATE, req(name, 144), false)?;
        let mut path = bus.as_bytes().to_vec();
        path.push(0);
        let mut d = req(name, 40);
        d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
        d[32..40].copy_from_slice(&client::addr_of(&path).to_le_bytes());
        ioctl(self.c, self.s, SIOCSLINKSTR, &mut d, &path)
    }

    fn up(&mut self, name: &str) -> client::Result<()> {
        let r = self.call(SIOCGIFFLAGS, req(name, 144), false)?;
        let mut w = req(name, 144);
        let f = u16::from_le_bytes([r[16], r[17]]) | 1;
        w[16..18].copy_from_slice(&f.to_le_bytes());
        self.call(SIOCSIFFLAGS, w, false).map(|_| ())
    }

    fn inet(&mut self, name: &str, a: &str, prefix: u8) -> client::Result<()> {
        let mut r = req(name, 64);
        r[16..32].copy_from_slice(&sin(a.parse().unwrap(), 0));
        let m = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        r[48..64].copy_from_slice(&sin(Ipv4Addr::from(m), 0));
        self.call(SIOCAIFADDR, r, false).map(|_| ())
    }

    fn inet_delete(&mut self, name: &str, a: &str) -> client::Result<()> {
        let mut r = req(name, 144);
        r[16..32].copy_from_slice(&sin(a.parse().unwrap(), 0));
        self.call(SIOCDIFADDR, r, false).map(|_| ())
    }

    fn inet6(&mut self, name: &str, a: &str) -> client::Result<()> {
        let mut r = req(name, 128);
        r[16..44].copy_from_slice(&sin6(a.parse().unwrap()));
        let m: Ipv6Addr = "ffff:ffff:ffff:ffff::".parse().unwrap();
        r[72..100].copy_from_slice(&sin6(m));
        r[120..128].copy_from_slice(&[0xff; 8]);
        self.call(SIOCAIFADDR_IN6, r, true).map(|_| ())
    }

    fn inet6_delete(&mut self, name: &str, a: &str) -> client::Result<()> {
        let mut r = req(name, 16 + 34 * 8);
        r[16..44].copy_from_slice(&sin6(a.parse().unwrap()));
        self.call(SIOCDIFADDR_IN6, r, true).map(|_| ())
    }

    fn index(&mut self, name: &str) -> client::Result<i32> {
        let r = self.call(SIOCGIFINDEX, req(name, 144), false)?;
        Ok(i32::from_le_bytes(r[16..20].try_into().unwrap()))
    }
}

/// A routing message's sockaddrs: its destination, gateway and mask as text (`v6`: a
/// mask's address begins at byte 8).
fn sa_text(sa: &[u8], v6: bool) -> String {
    match sa.get(1) {
        Some(2) if sa.len() >= 8 => Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]).to_string(),
        Some(24) if sa.len() >= 24 => {
            let a: [u8; 16] = sa[8..24].try_into().unwrap();
            Ipv6Addr::from(a).to_string()
        }
        Some(18) if sa.len() >= 8 && sa[5] == 0 => {
            format!("link#{}", u16::from_le_bytes([sa[2], sa[3]]))
        }
        Some(18) => "link name".into(),
        _ => {
            // A trimmed mask: its bit count.
            let from = if v6 { 8 } else { 4 };
            let bits: u32 = sa.iter().skip(from).map(|b| b.count_ones()).sum();
            format!("/{bits}")
        }
    }
}

/// `netstat -rn -f inet|inet6` lines, one per route: destination, gateway, flags.
fn table(c: &mut Client, af: i32) -> client::Result<String> {
    let b = sysctl_read(c, &[4, 34, 0, af, 1, 0])?;
    let mut out = Vec::new();
    let mut off = 0;
    while off + 120 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
        if len < 120 || off + len > b.len() {
            break;
        }
        let m = &b[off..off + len];
        let flags = i32::from_le_bytes(m[8..12].try_into().unwrap());
        let addrs = i32::from_le_bytes(m[12..16].try_into().unwrap());
        let mut p = 120;
        let mut sas = Vec::new();
        for k in 0..3 {
            if addrs & (1 << k) == 0 {
                continue;
            }
            let l = usize::from(m[p]);
            sas.push(sa_text(&m[p..p + l], af == 24));
            p += if l == 0 { 8 } else { l.div_ceil(8) * 8 };
        }
        let dst = sas.first().cloned().unwrap_or_default();
        let keep = match dst.parse::<IpAddr>() {
            Ok(IpAddr::V6(a)) => {
                !(a.is_loopback() || a.is_multicast() || a.segments()[0] & 0xffc0 == 0xfe80)
            }
            _ => true,
        };
        if keep {
            out.push(format!("{} {flags:#x}", sas.join(" ")));
        }
        off += len;
    }
    Ok(out.join(", "))
}

/// The link-local addresses of interface `index` (`NET_RT_IFLIST`).
fn linklocals(c: &mut Client, index: i32) -> client::Result<usize> {
    let b = sysctl_read(c, &[4, 34, 0, 24, 5, index])?;
    let mut n = 0;
    let mut off = 0;
    while off + 4 <= b.len() {
        let len = usize::from(u16::from_le_bytes([b[off], b[off + 1]]));
        if len == 0 || off + len > b.len() {
            break;
        }
        let m = &b[off..off + len];
        if m[3] == 0xc {
            // RTM_NEWADDR (ifa_msghdr, 24 bytes): its sockaddrs, one of them an fe80::.
            n += m
                .windows(2)
                .enumerate()
                .filter(|(k, w)| w == &[28, 24] && (k - 24) % 8 == 0)
                .filter(|(k, _)| m.get(k + 8) == Some(&0xfe) && m[k + 9] & 0xc0 == 0x80)
                .count();
        }
        off += len;
    }
    Ok(n)
}

fn auto_linklocal(c: &mut Client, set: Option<i32>) -> client::Result<i32> {
    let name: Vec<u8> = [4i32, 24, 41, 35]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let mut old = [0u8; 4];
    let mut len = 4u64.to_le_bytes();
    let new = set.map(|v| v.to_le_bytes()).unwrap_or_default();
    let (np, nl) = match set {
        Some(_) => (client::addr_of(&new), 4),
        None => (0, 0),
    };
    let args = [
        client::addr_of(&name),
        4,
        client::addr_of(&old),
        client::addr_of(&len),
        np,
        nl,
    ];
    c.syscall(
        202,
        &args,
        &mut [
            client::Buf::In(&name),
            client::Buf::Out(&mut old),
            client::Buf::InOut(&mut len),
            client::Buf::In(if set.is_some() { &new } else { &[] }),
        ],
    )?;
    Ok(i32::from_le_bytes(old))
}

/// `ndp -d fc00::9` of an address not in the cache: ndp(8)'s RTM_GET (RTF_LLDATA), then
/// the answer back as RTM_DELETE.
fn ndp_d(c: &mut Client, a: &str) -> client::Result<String> {
    let s = c.socket(34, 3, 0)?;
    let mut tv = 2i64.to_le_bytes().to_vec();
    tv.extend_from_slice(&[0; 8]);
    c.setsockopt(s, 0xffff, 0x100c, &tv)?;
    let mut m = vec![0u8; 120];
    m[2] = 4;
    m[3] = 4;
    m[8..12].copy_from_slice(&0x400i32.to_le_bytes());
    m[12..16].copy_from_slice(&0x11i32.to_le_bytes());
    m[20..24].copy_from_slice(&7i32.to_le_bytes());
    m.extend_from_slice(&sin6(a.parse().unwrap()));
    m.resize(120 + 32, 0);
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_le_bytes());
    c.write(s, &m)?;
    let mut buf = vec![0u8; 1024];
    let got = loop {
        let n = c.read(s, &mut buf)?;
        if n >= 120 && buf[20..24] == 7i32.to_le_bytes() {
            break buf[..n].to_vec();
        }
    };
    let flags = i32::from_le_bytes(got[8..12].try_into().unwrap()) & !0x40;
    let mut del = got.clone();
    del[3] = 2;
    del[20..24].copy_from_slice(&8i32.to_le_bytes());
    let r = c.write(s, &del);
    let _ = c.close(s);
    r.map(|_| format!("get flags {flags:#x}, then delete"))
}

/// The probe against the server at `url`, started in a directory of its own.
pub fn run(url: &str) -> Transcript {
    let mut c = connect(url, "t_ipaddress");
    let s = c.socket(2, 2, 0).expect("inet socket");
    let s6 = c.socket(24, 2, 0).expect("inet6 socket");
    let mut t = Transcript::default();
    let mut f = If { c: &mut c, s, s6 };
    // ipaddr_same_address.
    t.unit("same_address create shmif0", f.create("shmif0", "bus"));
    t.unit(
        "same_address inet 10.0.0.1/24",
        f.inet("shmif0", "10.0.0.1", 24),
    );
    t.unit("same_address up", f.up("shmif0"));
    t.step("same_address table", table(f.c, 2), |s| s);
    t.unit("same_address delete", f.inet_delete("shmif0", "10.0.0.1"));
    t.step("same_address table after delete", table(f.c, 2), |s| s);
    t.unit("same_address inet again", f.inet("shmif0", "10.0.0.1", 24));
    t.step("same_address table again", table(f.c, 2), |s| s);
    t.unit(
        "same_address delete again",
        f.inet_delete("shmif0", "10.0.0.1"),
    );
    t.unit(
        "same_address delete a third time",
        f.inet_delete("shmif0", "10.0.0.1"),
    );
    t.step("same_address table at last", table(f.c, 2), |s| s);
    // ipaddr_same_address6.
    t.unit("same_address6 inet6 fc00::1", f.inet6("shmif0", "fc00::1"));
    t.step("same_address6 table", table(f.c, 24), |s| s);
    t.unit("same_address6 delete", f.inet6_delete("shmif0", "fc00::1"));
    t.step("same_address6 table after delete", table(f.c, 24), |s| s);
    t.unit("same_address6 inet6 again", f.inet6("shmif0", "fc00::1"));
    t.step("same_address6 table again", table(f.c, 24), |s| s);
    t.unit(
        "same_address6 delete again",
        f.inet6_delete("shmif0", "fc00::1"),
    );
    t.unit(
        "same_address6 delete a third time",
        f.inet6_delete("shmif0", "fc00::1"),
    );
    // t_ndp.sh: ndp -d of an address not in the cache.
    t.unit("ndp inet6 fc00::1 back", f.inet6("shmif0", "fc00::1"));
    t.step("ndp -d fc00::9", ndp_d(f.c, "fc00::9"), |s| s);
    t.step("ndp table after -d", table(f.c, 24), |s| s);
    // ipaddr_auto_linklocal.
    let idx = f.index("shmif0").unwrap_or(0);
    t.step(
        "auto_linklocal shmif0 link-locals",
        linklocals(f.c, idx),
        |n| n.to_string(),
    );
    t.step("auto_linklocal default", auto_linklocal(f.c, None), |v| {
        v.to_string()
    });
    t.step("auto_linklocal set 0", auto_linklocal(f.c, Some(0)), |v| {
        v.to_string()
    });
    t.unit("auto_linklocal create shmif1", f.create("shmif1", "bus"));
    t.unit("auto_linklocal up shmif1", f.up("shmif1"));
    let idx1 = f.index("shmif1").unwrap_or(0);
    t.step(
        "auto_linklocal shmif1 link-locals",
        linklocals(f.c, idx1),
        |n| n.to_string(),
    );
    t.step("auto_linklocal set 1", auto_linklocal(f.c, Some(1)), |v| {
        v.to_string()
    });
    // ifconfig_create_destroy, and the index a re-made interface gets.
    t.step("create_destroy index shmif1", f.index("shmif1"), |v| {
        v.to_string()
    });
    t.unit(
        "create_destroy destroy shmif1",
        f.call(SIOCIFDESTROY, req("shmif1", 144), false),
    );
    t.unit("create_destroy create shmif2", f.create("shmif2", "bus"));
    t.step("create_destroy index shmif2", f.index("shmif2"), |v| {
        v.to_string()
    });
    t.unit(
        "create_destroy inet 192.168.0.1/24",
        f.inet("shmif2", "192.168.0.1", 24),
    );
    t.unit("create_destroy up", f.up("shmif2"));
    t.unit(
        "create_destroy destroy shmif2",
        f.call(SIOCIFDESTROY, req("shmif2", 144), false),
    );
    t.unit(
        "create_destroy create shmif2 again",
        f.create("shmif2", "bus"),
    );
    t.unit("create_destroy inet6 fc00::2", f.inet6("shmif2", "fc00::2"));
    t.unit("create_destroy up again", f.up("shmif2"));
    t.step("create_destroy index again", f.index("shmif2"), |v| {
        v.to_string()
    });
    t.unit(
        "create_destroy destroy again",
        f.call(SIOCIFDESTROY, req("shmif2", 144), false),
    );
    t.unit(
        "create_destroy destroy a gone one",
        f.call(SIOCIFDESTROY, req("shmif2", 144), false),
    );
    t.step("create_destroy table", table(f.c, 2), |s| s);
    t
}
