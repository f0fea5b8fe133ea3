//! The TCP/IP faction's probe (issue 16): the interface ioctls ifconfig makes on an
//! AF_INET datagram socket (with their errno), the `net.inet` knobs we serve, the
//! `NET_RT_IFLIST` shape getifaddrs reads, and the inet socket defaults. Run against a
//! server started in a directory of its own with `-lrumpnet -lrumpnet_net
//! -lrumpnet_netinet -lrumpnet_shmif` (the bus `oracle-bus` lands there).

use std::net::Ipv4Addr;

use client::Client;

use crate::peer::{ioctl, sin, AF_INET, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM};
use crate::sysctl::sysctl;
use crate::transcript::{connect, Transcript};

const IOC_OUT: u32 = 0x4000_0000;
const IOC_IN: u32 = 0x8000_0000;

const fn io(dir: u32, num: u32, len: u32) -> u32 {
    dir | (len & 0x1fff) << 16 | (b'i' as u32) << 8 | num
}

const RW: u32 = IOC_IN | IOC_OUT;
const IOCTLS: &[(&str, u32)] = &[
    ("SIOCGIFFLAGS", io(RW, 17, 144)),
    ("SIOCGIFMTU", io(RW, 126, 144)),
    ("SIOCGIFMETRIC", io(RW, 23, 144)),
    ("SIOCGIFINDEX", io(RW, 140, 144)),
    ("SIOCGIFADDR", io(RW, 33, 144)),
    ("SIOCGIFNETMASK", io(RW, 37, 144)),
    ("SIOCGIFBRDADDR", io(RW, 35, 144)),
    ("SIOCGIFDSTADDR", io(RW, 34, 144)),
    ("SIOCGIFMEDIA", io(RW, 54, 48)),
    ("SIOCGIFCAP", io(RW, 118, 32)),
    ("SIOCGLINKSTR", io(RW, 135, 40)),
];
const SIOCIFCREATE: u32 = io(IOC_IN, 122, 144);
const SIOCIFDESTROY: u32 = io(IOC_IN, 121, 144);
const SIOCSIFFLAGS: u32 = io(IOC_IN, 16, 144);
const SIOCSIFMTU: u32 = io(IOC_IN, 127, 144);
const SIOCSLINKSTR: u32 = io(IOC_IN, 136, 40);
const SIOCAIFADDR: u32 = io(IOC_IN, 26, 64);
const SIOCDIFADDR: u32 = io(IOC_IN, 25, 144);

fn req(name: &str, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

fn show(name: &str, r: &[u8]) -> String {
    match name {
        "SIOCGIFFLAGS" => format!("{:#x}", u16::from_le_bytes([r[16], r[17]])),
        "SIOCGIFMTU" | "SIOCGIFMETRIC" | "SIOCGIFINDEX" => {
            i32::from_le_bytes(r[16..20].try_into().unwrap()).to_string()
        }
        "SIOCGIFADDR" | "SIOCGIFNETMASK" | "SIOCGIFBRDADDR" | "SIOCGIFDSTADDR" => {
            format!(
                "len {} family {} {}",
                r[16],
                r[17],
                Ipv4Addr::new(r[20], r[21], r[22], r[23])
            )
        }
        "SIOCGLINKSTR" => format!("len {}", u64::from_le_bytes(r[24..32].try_into().unwrap())),
        "SIOCGIFCAP" => format!("{:?}", &r[16..32]),
        _ => String::new(),
    }
}

impl Transcript {
    fn ioctls(&mut self, c: &mut Client, s: i32, ifname: &str, tag: &str) {
        for (name, com) in IOCTLS {
            let len = ((com >> 16) & 0x1fff) as usize;
            let mut r = req(ifname, len);
            if *name == "SIOCGLINKSTR" {
                r[16] = 1; // IFLINKSTR_QUERYLEN
            }
            let res = ioctl(c, s, *com, &mut r, &[]);
            self.step(&format!("{tag} {name} {ifname}"), res, |()| show(name, &r));
        }
    }

    fn set(&mut self, c: &mut Client, s: i32, step: &str, com: u32, mut r: Vec<u8>, extra: &[u8]) {
        let res = ioctl(c, s, com, &mut r, extra);
        self.unit(step, res);
    }

    fn knob(&mut self, c: &mut Client, name: &str, mib: &[i32]) {
        let a = sysctl(c, mib, Some(4), Some(4), None);
        let r = if a.errno == 0 {
            Ok(i32::from_le_bytes(a.old[..4].try_into().unwrap()))
        } else {
            Err(client::Error::Errno(a.errno))
        };
        self.step(&format!("sysctl {name}"), r, |v| v.to_string());
    }
}

fn aifaddr(name: &str, addr: Ipv4Addr, mask: Option<Ipv4Addr>) -> Vec<u8> {
    let mut a = req(name, 64);
    a[16..32].copy_from_slice(&sin(addr, 0));
    if let Some(m) = mask {
        a[48..64].copy_from_slice(&sin(m, 0));
    }
    a
}

fn linkstr(name: &str, cmd: u64, path: &[u8]) -> Vec<u8> {
    let mut d = req(name, 40);
    d[16..24].copy_from_slice(&cmd.to_le_bytes());
    d[24..32].copy_from_slice(&(path.len() as u64).to_le_bytes());
    d[32..40].copy_from_slice(&client::addr_of(path).to_le_bytes());
    d
}

/// NET_RT_IFLIST: message types and lengths, and the interface's flags and index.
fn iflist_shape(c: &mut Client) -> client::Result<String> {
    let a = sysctl(c, &[4, 34, 0, 0, 5, 0], None, Some(0), None);
    if a.errno != 0 {
        return Err(client::Error::Errno(a.errno));
    }
    let b = sysctl(
        c,
        &[4, 34, 0, 0, 5, 0],
        Some(a.oldlen as usize),
        Some(a.oldlen),
        None,
    );
    if b.errno != 0 {
        return Err(client::Error::Errno(b.errno));
    }
    let mut out = Vec::new();
    let mut off = 0;
    while off + 4 <= b.oldlen as usize {
        let m = &b.old[off..];
        let len = usize::from(u16::from_le_bytes([m[0], m[1]]));
        if len == 0 {
            break;
        }
        let addrs = i32::from_le_bytes(m[4..8].try_into().unwrap());
        out.push(format!(
            "v{} t{:#x} len {} addrs {:#x}",
            m[2], m[3], len, addrs
        ));
        off += len;
    }
    Ok(out.join(", "))
}

/// The probe.
pub fn run(url: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut c = connect(url, "oracle-inet");
    let s = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    t.ioctls(&mut c, s, "lo0", "boot");
    t.ioctls(&mut c, s, "nx0", "none");
    t.set(
        &mut c,
        s,
        "SIOCIFCREATE shmif0",
        SIOCIFCREATE,
        req("shmif0", 144),
        &[],
    );
    t.set(
        &mut c,
        s,
        "SIOCIFCREATE shmif0 again",
        SIOCIFCREATE,
        req("shmif0", 144),
        &[],
    );
    t.set(
        &mut c,
        s,
        "SIOCIFCREATE bogus0",
        SIOCIFCREATE,
        req("bogus0", 144),
        &[],
    );
    t.ioctls(&mut c, s, "shmif0", "created");
    t.set(
        &mut c,
        s,
        "SIOCSLINKSTR empty",
        SIOCSLINKSTR,
        linkstr("shmif0", 0, b""),
        &[],
    );
    t.set(
        &mut c,
        s,
        "SIOCSLINKSTR cmd 7",
        SIOCSLINKSTR,
        linkstr("shmif0", 7, b"x\0"),
        b"x\0",
    );
    let bus = b"oracle-bus\0";
    t.set(
        &mut c,
        s,
        "SIOCSLINKSTR",
        SIOCSLINKSTR,
        linkstr("shmif0", 0, bus),
        bus,
    );
    t.set(
        &mut c,
        s,
        "SIOCSLINKSTR again",
        SIOCSLINKSTR,
        linkstr("shmif0", 0, bus),
        bus,
    );
    t.ioctls(&mut c, s, "shmif0", "linked");
    let a = aifaddr("shmif0", Ipv4Addr::new(10, 0, 1, 1), None);
    t.set(&mut c, s, "SIOCAIFADDR 10.0.1.1", SIOCAIFADDR, a, &[]);
    t.ioctls(&mut c, s, "shmif0", "addressed");
    t.set(
        &mut c,
        s,
        "SIOCSLINKSTR while up",
        SIOCSLINKSTR,
        linkstr("shmif0", 0, bus),
        bus,
    );
    let a = aifaddr(
        "shmif0",
        Ipv4Addr::new(10, 0, 2, 1),
        Some(Ipv4Addr::new(255, 255, 255, 0)),
    );
    t.set(&mut c, s, "SIOCAIFADDR 10.0.2.1/24", SIOCAIFADDR, a, &[]);
    let mut mtu = req("shmif0", 144);
    mtu[16..20].copy_from_slice(&9000i32.to_le_bytes());
    t.set(&mut c, s, "SIOCSIFMTU 9000", SIOCSIFMTU, mtu.clone(), &[]);
    mtu[16..20].copy_from_slice(&1400i32.to_le_bytes());
    t.set(&mut c, s, "SIOCSIFMTU 1400", SIOCSIFMTU, mtu, &[]);
    let iflist = iflist_shape(&mut c);
    t.step("NET_RT_IFLIST", iflist, |v| v);
    let mut d = req("shmif0", 144);
    d[16..32].copy_from_slice(&sin(Ipv4Addr::new(10, 0, 1, 1), 0));
    t.set(
        &mut c,
        s,
        "SIOCDIFADDR 10.0.1.1",
        SIOCDIFADDR,
        d.clone(),
        &[],
    );
    t.set(&mut c, s, "SIOCDIFADDR 10.0.1.1 again", SIOCDIFADDR, d, &[]);
    t.ioctls(&mut c, s, "shmif0", "deleted");
    let mut flags = req("shmif0", 144);
    t.set(
        &mut c,
        s,
        "SIOCSIFFLAGS down",
        SIOCSIFFLAGS,
        flags.clone(),
        &[],
    );
    t.ioctls(&mut c, s, "shmif0", "down");
    // An interface without a bus comes up only in name (if_init fails).
    t.set(
        &mut c,
        s,
        "SIOCIFCREATE shmif1",
        SIOCIFCREATE,
        req("shmif1", 144),
        &[],
    );
    flags[..6].copy_from_slice(b"shmif1");
    flags[16] = 1;
    t.set(
        &mut c,
        s,
        "SIOCSIFFLAGS shmif1 up without a bus",
        SIOCSIFFLAGS,
        flags,
        &[],
    );
    let a = aifaddr("shmif1", Ipv4Addr::new(10, 0, 3, 1), None);
    t.set(
        &mut c,
        s,
        "SIOCAIFADDR shmif1 without a bus",
        SIOCAIFADDR,
        a,
        &[],
    );
    let mut mtu = req("shmif1", 144);
    mtu[16..20].copy_from_slice(&1000i32.to_le_bytes());
    t.set(&mut c, s, "SIOCSIFMTU shmif1 1000", SIOCSIFMTU, mtu, &[]);
    t.ioctls(&mut c, s, "shmif1", "unlinked up");
    t.set(
        &mut c,
        s,
        "SIOCIFDESTROY lo0",
        SIOCIFDESTROY,
        req("lo0", 144),
        &[],
    );
    t.set(
        &mut c,
        s,
        "SIOCIFDESTROY nx0",
        SIOCIFDESTROY,
        req("nx0", 144),
        &[],
    );

    t.knob(&mut c, "net.inet.ip.forwarding", &[4, 2, 0, 1]);
    t.knob(&mut c, "net.inet.ip.ttl", &[4, 2, 0, 3]);
    t.knob(&mut c, "net.inet.ip.anonportmin", &[4, 2, 0, 10]);
    t.knob(&mut c, "net.inet.ip.anonportmax", &[4, 2, 0, 11]);
    t.knob(&mut c, "net.inet.tcp.sendspace", &[4, 2, 6, 2]);
    t.knob(&mut c, "net.inet.tcp.recvspace", &[4, 2, 6, 3]);
    t.knob(&mut c, "net.inet.udp.sendspace", &[4, 2, 17, 2]);
    t.knob(&mut c, "net.inet.udp.recvspace", &[4, 2, 17, 3]);
    t.knob(&mut c, "net.inet6.ip6.forwarding", &[4, 24, 41, 1]);

    for (tag, ty, proto) in [
        ("tcp", SOCK_STREAM, 0),
        ("udp", SOCK_DGRAM, 0),
        ("raw icmp", SOCK_RAW, 1),
        ("stream udp", SOCK_STREAM, 17),
        ("dgram tcp", SOCK_DGRAM, 6),
        ("seqpacket", 5, 0),
    ] {
        let r = c.socket(AF_INET, ty, proto);
        let fd = r.as_ref().ok().copied();
        t.unit(&format!("socket {tag}"), r);
        if let Some(fd) = fd {
            for (o, n) in [
                ("SO_SNDBUF", 0x1001),
                ("SO_RCVBUF", 0x1002),
                ("SO_TYPE", 0x1008),
            ] {
                let v = c.getsockopt_int(fd, 0xffff, n);
                t.step(&format!("{tag} getsockopt {o}"), v, |v| v.to_string());
            }
            let _ = c.close(fd);
        }
    }
    let u = c.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let r = c.bind(u, &sin(Ipv4Addr::new(10, 9, 9, 9), 0));
    t.unit("bind an address not ours", r);
    let r = c.bind(u, &sin(Ipv4Addr::LOCALHOST, 0));
    t.unit("bind 127.0.0.1", r);
    let name = c.getsockname(u);
    t.step("getsockname", name, |n| {
        format!("len {} family {} {:?}", n[0], n[1], &n[4..8])
    });
    let r = c.sendto(u, b"x", 0, Some(&sin(Ipv4Addr::new(192, 0, 2, 1), 9)));
    t.unit("sendto unrouted", r);
    let tcp = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let r = c.connect_sock(tcp, &sin(Ipv4Addr::new(192, 0, 2, 1), 9));
    t.unit("connect unrouted", r);
    let tcp = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let r = c.connect_sock(tcp, &sin(Ipv4Addr::LOCALHOST, 9));
    t.unit("connect a closed port", r);
    let mut short = sin(Ipv4Addr::LOCALHOST, 9);
    short.truncate(8);
    let tcp = c.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let r = c.connect_len(tcp, &short, 8);
    t.unit("connect short sockaddr", r);
    t
}
