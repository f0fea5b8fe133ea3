//! The interface ioctls (`ifioctl`, `in_control`, `shmif_ioctl`, `link_control` as seen
//! from a socket): group `'i'` on any socket of the stack's families, with NetBSD's
//! argument layouts (amd64) and errno.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kernel::{BoxFut, Errno, Result};
use net::Ctx;

use crate::ifnet::*;
use crate::{rtmsg, Stack};

const IOC_OUT: u32 = 0x4000_0000;
const IOC_IN: u32 = 0x8000_0000;
const IOC_INOUT: u32 = IOC_IN | IOC_OUT;

const fn io(dir: u32, num: u32, len: u32) -> u32 {
    dir | (len & 0x1fff) << 16 | (b'i' as u32) << 8 | num
}

/// `sizeof(struct ifreq)`.
pub const IFREQ: u32 = 144;
const IFALIASREQ: u32 = 64;
const IFDRV: u32 = 40;
const IFCONF: u32 = 16;
const IFCLONEREQ: u32 = 16;
const IFCAPREQ: u32 = 32;
const IFDATAREQ: u32 = 16 + IF_DATA as u32;
const IFLADDRREQ: u32 = 280;
const IFMEDIAREQ: u32 = 48;
/// `sizeof(struct if_data)`.
pub const IF_DATA: usize = 136;

/// `SIOCSIFADDR`.
pub const SIOCSIFADDR: u32 = io(IOC_IN, 12, IFREQ);
/// `SIOCGIFADDR`.
pub const SIOCGIFADDR: u32 = io(IOC_INOUT, 33, IFREQ);
/// `SIOCGIFDSTADDR`.
pub const SIOCGIFDSTADDR: u32 = io(IOC_INOUT, 34, IFREQ);
/// `SIOCSIFFLAGS`.
pub const SIOCSIFFLAGS: u32 = io(IOC_IN, 16, IFREQ);
/// `SIOCGIFFLAGS`.
pub const SIOCGIFFLAGS: u32 = io(IOC_INOUT, 17, IFREQ);
/// `SIOCGIFBRDADDR`.
pub const SIOCGIFBRDADDR: u32 = io(IOC_INOUT, 35, IFREQ);
/// `SIOCGIFCONF`.
pub const SIOCGIFCONF: u32 = io(IOC_INOUT, 38, IFCONF);
/// `SIOCGIFNETMASK`.
pub const SIOCGIFNETMASK: u32 = io(IOC_INOUT, 37, IFREQ);
/// `SIOCGIFMETRIC`.
pub const SIOCGIFMETRIC: u32 = io(IOC_INOUT, 23, IFREQ);
/// `SIOCSIFMETRIC`.
pub const SIOCSIFMETRIC: u32 = io(IOC_IN, 24, IFREQ);
/// `SIOCDIFADDR`.
pub const SIOCDIFADDR: u32 = io(IOC_IN, 25, IFREQ);
/// `SIOCAIFADDR`.
pub const SIOCAIFADDR: u32 = io(IOC_IN, 26, IFALIASREQ);
/// `SIOCGIFALIAS`.
pub const SIOCGIFALIAS: u32 = io(IOC_INOUT, 27, IFALIASREQ);
/// `SIOCGIFAFLAG_IN`.
pub const SIOCGIFAFLAG_IN: u32 = io(IOC_INOUT, 39, IFREQ);
/// `SIOCGLIFADDR`.
pub const SIOCGLIFADDR: u32 = io(IOC_INOUT, 29, IFLADDRREQ);
/// `SIOCGIFADDRPREF`.
pub const SIOCGIFADDRPREF: u32 = io(IOC_INOUT, 32, 152);
/// `SIOCSIFADDRPREF`.
pub const SIOCSIFADDRPREF: u32 = io(IOC_IN, 31, 152);
/// `SIOCGIFMEDIA`.
pub const SIOCGIFMEDIA: u32 = io(IOC_INOUT, 54, IFMEDIAREQ);
/// `SIOCSIFMTU`.
pub const SIOCSIFMTU: u32 = io(IOC_IN, 127, IFREQ);
/// `SIOCGIFMTU`.
pub const SIOCGIFMTU: u32 = io(IOC_INOUT, 126, IFREQ);
/// `SIOCIFCREATE`.
pub const SIOCIFCREATE: u32 = io(IOC_IN, 122, IFREQ);
/// `SIOCIFDESTROY`.
pub const SIOCIFDESTROY: u32 = io(IOC_IN, 121, IFREQ);
/// `SIOCIFGCLONERS`.
pub const SIOCIFGCLONERS: u32 = io(IOC_INOUT, 120, IFCLONEREQ);
/// `SIOCGIFCAP`.
pub const SIOCGIFCAP: u32 = io(IOC_INOUT, 118, IFCAPREQ);
/// `SIOCGIFDATA`.
pub const SIOCGIFDATA: u32 = io(IOC_INOUT, 133, IFDATAREQ);
/// `SIOCZIFDATA`.
pub const SIOCZIFDATA: u32 = io(IOC_INOUT, 134, IFDATAREQ);
/// `SIOCGLINKSTR`.
pub const SIOCGLINKSTR: u32 = io(IOC_INOUT, 135, IFDRV);
/// `SIOCSLINKSTR`.
pub const SIOCSLINKSTR: u32 = io(IOC_IN, 136, IFDRV);
/// `SIOCAIFADDR_IN6` (`struct in6_aliasreq`, 128 bytes on amd64).
pub const SIOCAIFADDR_IN6: u32 = io(IOC_IN, 107, 128);
/// `SIOCDIFADDR_IN6` (`struct in6_ifreq`: its union's largest member is
/// `struct icmp6_ifstat`, 34 counters).
pub const SIOCDIFADDR_IN6: u32 = io(IOC_IN, 25, 16 + 34 * 8);
/// `SIOCGNBRINFO_IN6` (`struct in6_nbrinfo`, 56 bytes on amd64).
pub const SIOCGNBRINFO_IN6: u32 = io(IOC_INOUT, 78, 56);
/// `ND6_LLINFO_*` as `ndp` reads them.
const ND6_LLINFO_INCOMPLETE: i32 = 0;
const ND6_LLINFO_REACHABLE: i32 = 1;
const ND6_LLINFO_STALE: i32 = 2;
const ND6_LLINFO_DELAY: i32 = 3;
const ND6_LLINFO_PROBE: i32 = 4;
/// `SIOCGIFINDEX`.
pub const SIOCGIFINDEX: u32 = io(IOC_INOUT, 140, IFREQ);

const IFLINKSTR_QUERYLEN: u64 = 1;
const IFLINKSTR_UNSET: u64 = 2;
const MAXPATHLEN: u64 = 1024;
/// `IFT_ETHER`, `IFT_LOOP`.
const IFT_ETHER: u8 = 6;
const IFT_LOOP: u8 = 24;

/// Whether `com` is an interface ioctl (group `'i'`), which go to [`ifioctl`].
pub fn is_ifioctl(com: u32) -> bool {
    (com >> 8) & 0xff == u32::from(b'i')
}

/// `ProtoSock::ioctl_mem` of this faction's sockets of family `fam`: an interface ioctl
/// goes to [`ifioctl`], anything else to the socket's plain `ioctl` (`None`).
pub fn socket_ioctl_mem<'a>(
    st: &'a Stack,
    cx: Ctx<'a>,
    fam: i32,
    com: u32,
    data: &'a mut [u8],
) -> Option<BoxFut<'a, Result<()>>> {
    is_ifioctl(com).then(|| -> BoxFut<'a, Result<()>> {
        Box::pin(async move { ifioctl(st, &cx, fam, com, data).await })
    })
}

fn name_of(data: &[u8]) -> Result<String> {
    let n = &data[..16.min(data.len())];
    let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
    String::from_utf8(n[..end].to_vec()).map_err(|_| Errno::ENXIO)
}

fn u64_at(d: &[u8], o: usize) -> u64 {
    d.get(o..o + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .unwrap_or(0)
}

fn i32_at(d: &[u8], o: usize) -> i32 {
    d.get(o..o + 4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()))
        .unwrap_or(0)
}

fn put(d: &mut [u8], o: usize, b: &[u8]) {
    if let Some(s) = d.get_mut(o..o + b.len()) {
        s.copy_from_slice(b);
    }
}

/// `sockaddr_in` for an IPv4 address (port 0).
pub fn sin(a: Ipv4Addr) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0] = 16;
    s[1] = 2;
    s[4..8].copy_from_slice(&a.octets());
    s
}

/// `sockaddr_in6` for an IPv6 address.
pub fn sin6(a: Ipv6Addr) -> [u8; 28] {
    let mut s = [0u8; 28];
    s[0] = 28;
    s[1] = 24;
    s[8..24].copy_from_slice(&a.octets());
    s
}

/// The netmask of a prefix length, IPv4.
pub fn mask4(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

/// The netmask of a prefix length, IPv6.
pub fn mask6(prefix: u8) -> Ipv6Addr {
    let p = u32::from(prefix.min(128));
    Ipv6Addr::from(if p == 0 { 0 } else { u128::MAX << (128 - p) })
}

/// The prefix length of a contiguous IPv4 mask.
fn prefix_of(mask: Ipv4Addr) -> u8 {
    u32::from(mask).leading_ones() as u8
}

fn sin_at(d: &[u8], o: usize) -> Option<Ipv4Addr> {
    let s = d.get(o..o + 8)?;
    if s[1] != 2 {
        return None;
    }
    Some(Ipv4Addr::new(s[4], s[5], s[6], s[7]))
}

/// `sockaddr_dl` of an interface (`if_sadl`): index, type, name and Ethernet address.
pub fn sockaddr_dl(f: &Ifnet) -> Vec<u8> {
    let alen = if f.mac.is_some() { 6 } else { 0 };
    let nlen = f.name.len();
    // sdl_len, family, index(2), type, nlen, alen, slen, then name and address; its
    // length rounded up to 8 as `if_alloc_sadl` makes it.
    let mut s = vec![0u8; (8 + nlen + alen).div_ceil(8) * 8];
    s[0] = s.len() as u8;
    s[1] = 18;
    s[2..4].copy_from_slice(&(f.index as u16).to_le_bytes());
    s[4] = if f.mac.is_some() { IFT_ETHER } else { IFT_LOOP };
    s[5] = nlen as u8;
    s[6] = alen as u8;
    s[8..8 + nlen].copy_from_slice(f.name.as_bytes());
    if let Some(m) = f.mac {
        s[8 + nlen..8 + nlen + 6].copy_from_slice(&m);
    }
    s
}

/// `struct if_data` of an interface.
pub fn if_data(f: &Ifnet) -> [u8; IF_DATA] {
    let mut d = [0u8; IF_DATA];
    d[0] = if f.mac.is_some() { IFT_ETHER } else { IFT_LOOP };
    d[1] = if f.mac.is_some() { 6 } else { 0 };
    d[2] = if f.mac.is_some() { 14 } else { 0 };
    // link state: up for a running shmif, unknown for lo0 (NetBSD's loop never sets it).
    let ls: i32 = if f.mac.is_some() && f.flags & IFF_RUNNING != 0 {
        2
    } else {
        0
    };
    d[4..8].copy_from_slice(&ls.to_le_bytes());
    let q = |d: &mut [u8; IF_DATA], o: usize, v: u64| d[o..o + 8].copy_from_slice(&v.to_le_bytes());
    q(&mut d, 8, u64::from(f.mtu));
    q(&mut d, 32, f.ipackets);
    q(&mut d, 40, f.ierrors);
    q(&mut d, 48, f.opackets);
    q(&mut d, 56, f.oerrors);
    q(&mut d, 72, f.ibytes);
    q(&mut d, 80, f.obytes);
    d
}

/// NetBSD's `ifioctl` for a socket of family `fam`.
pub async fn ifioctl(st: &Stack, cx: &Ctx<'_>, fam: i32, com: u32, data: &mut [u8]) -> Result<()> {
    match com {
        SIOCGIFCONF => return ifconf(st, cx, data).await,
        SIOCIFCREATE => {
            let name = name_of(data)?;
            if name.starts_with(crate::virtif::VIF_NAME) && st.has_virtif() {
                return st.virt_create(&name).map(|_| ());
            }
            let r = st.lock().if_create(&name);
            return r.map(|_| ());
        }
        SIOCIFDESTROY => {
            let name = name_of(data)?;
            // `if_clone_destroy`: a name no cloner made is EINVAL, lo0 EPERM.
            if name == "lo0" {
                return Err(Errno::EPERM);
            }
            if st.lock().ifp_by_name(&name).is_none() {
                // `if_clone_lookup` finds a cloner for `shmifN` (`virtN`, `loN`): the
                // interface is not there, ENXIO; any other name EINVAL.
                let unit = ["shmif", "virt", "lo"]
                    .iter()
                    .find_map(|p| name.strip_prefix(p))
                    .filter(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()));
                return Err(if unit.is_some() {
                    Errno::ENXIO
                } else {
                    Errno::EINVAL
                });
            }
            // `virtif_unclone`: an interface that is up stays.
            if st.lock().ifp_by_name(&name).is_some_and(|f| {
                matches!(f.link, Link::Virt { .. }) && f.flags & crate::ifnet::IFF_UP != 0
            }) {
                return Err(Errno::EBUSY);
            }
            let r = st.lock().if_destroy(&name);
            st.kick();
            return r;
        }
        SIOCIFGCLONERS => {
            // The cloners: shmif, and virt with virtif.
            let names: &[&[u8]] = if st.has_virtif() {
                &[b"shmif", b"virt"]
            } else {
                &[b"shmif"]
            };
            put(data, 0, &(names.len() as i32).to_le_bytes());
            let count = i32_at(data, 4);
            let buf = u64_at(data, 8);
            if count < 0 {
                return Err(Errno::EINVAL);
            }
            if buf != 0 {
                let mut out = Vec::new();
                for n in names.iter().take(count as usize) {
                    let mut b = [0u8; 16];
                    b[..n.len()].copy_from_slice(n);
                    out.extend_from_slice(&b);
                }
                kernel::copy::copyout(cx.mem, buf, &out).await?;
            }
            return Ok(());
        }
        _ => {}
    }
    let name = name_of(data)?;
    match if_request(st, fam, com, data, &name)? {
        Next::Done => Ok(()),
        Next::CopyOut { buf, out, cut } => {
            kernel::copy::copyout(cx.mem, buf, &out).await?;
            if cut {
                return Err(Errno::ENAMETOOLONG);
            }
            Ok(())
        }
        Next::SetLinkstr { buf, len } => {
            let path = kernel::copy::copyinstr(cx.mem, buf, len).await?;
            st.set_linkstr(&name, &path)
        }
    }
}

/// What an interface request leaves to do with the caller's memory.
enum Next {
    Done,
    /// `copyoutstr` (cut: ENAMETOOLONG after the copy).
    CopyOut {
        buf: u64,
        out: Vec<u8>,
        cut: bool,
    },
    /// `copyinstr` the new linkstr, then join the bus.
    SetLinkstr {
        buf: u64,
        len: usize,
    },
}

/// The requests on one interface (`name`), under the engine's lock.
fn if_request(st: &Stack, fam: i32, com: u32, data: &mut [u8], name: &str) -> Result<Next> {
    let mut e = st.lock();
    let Some(f) = e.ifp_by_name(name) else {
        return Err(Errno::ENXIO);
    };
    let i = f.index;
    match com {
        SIOCGIFFLAGS => {
            put(data, 16, &(f.flags as u16).to_le_bytes());
            Ok(Next::Done)
        }
        SIOCSIFFLAGS => {
            let want = u32::from(u16::from_le_bytes([data[16], data[17]]));
            let is_shmif_without_bus = matches!(f.link, Link::Shmif { port: None, .. });
            let f = e.ifp_mut(i).ok_or(Errno::ENXIO)?;
            let old = f.flags;
            f.flags = (old & !IFF_CHANGEABLE) | (want & IFF_CHANGEABLE);
            if f.flags & IFF_UP != 0 && old & IFF_UP == 0 {
                // `if_init`: shmif needs its bus: ENXIO, and (as NetBSD) IFF_UP stays set
                // without IFF_RUNNING.
                if is_shmif_without_bus {
                    return Err(Errno::ENXIO);
                }
                f.flags |= IFF_RUNNING;
            } else if f.flags & IFF_UP == 0 && old & IFF_UP != 0 && f.mac.is_some() {
                f.flags &= !IFF_RUNNING;
            }
            let changed = f.flags != old;
            if f.flags & IFF_UP != 0 && old & IFF_UP == 0 {
                // `in6_if_up`: the link-local address.
                e.in6_if_up(i);
            }
            let msg = e.ifp(i).map(rtmsg::if_msg);
            drop(e);
            st.kick();
            if let (true, Some(m)) = (changed, msg) {
                crate::rtsock::announce(st, vec![m]);
            }
            Ok(Next::Done)
        }
        SIOCGIFMETRIC => {
            put(data, 16, &0i32.to_le_bytes());
            Ok(Next::Done)
        }
        SIOCSIFMETRIC => Ok(Next::Done),
        SIOCGIFMTU => {
            put(data, 16, &(f.mtu as i32).to_le_bytes());
            Ok(Next::Done)
        }
        SIOCSIFMTU => {
            // `ether_ioctl`: ETHERMIN (46) to ETHERMTU; `loioctl`: unsigned, at most
            // LOMTU_MAX (65536 + MHLEN + MLEN = 66392 on amd64). Checked against NetBSD's
            // server (docs/netinet.md, "Fragments, MTU and MSS").
            let mtu = i32_at(data, 16);
            let (min, max) = if f.mac.is_some() {
                (46, ETHERMTU as i32)
            } else {
                (0, LOMTU as i32 - 32768 + 65536)
            };
            if mtu < min || mtu > max {
                return Err(Errno::EINVAL);
            }
            let unlinked_up = f.is_up() && matches!(f.link, Link::Shmif { port: None, .. });
            if let Some(f) = e.ifp_mut(i) {
                f.mtu = mtu as u32;
            }
            // NetBSD re-initialises an interface that is up (ENETRESET → if_init), which
            // fails without a bus; the MTU stays changed.
            if unlinked_up {
                return Err(Errno::ENXIO);
            }
            Ok(Next::Done)
        }
        SIOCGIFINDEX => {
            put(data, 16, &(i as i32).to_le_bytes());
            Ok(Next::Done)
        }
        SIOCGIFCAP => {
            put(data, 16, &[0u8; 16]);
            Ok(Next::Done)
        }
        SIOCGIFDATA | SIOCZIFDATA => {
            let d = if_data(f);
            put(data, 16, &d);
            if com == SIOCZIFDATA {
                if let Some(f) = e.ifp_mut(i) {
                    f.ipackets = 0;
                    f.opackets = 0;
                    f.ibytes = 0;
                    f.obytes = 0;
                    f.ierrors = 0;
                    f.oerrors = 0;
                }
            }
            Ok(Next::Done)
        }
        SIOCGLINKSTR => {
            let Link::Shmif { port, .. } = &f.link else {
                return Err(Errno::ENOTTY);
            };
            let Some(p) = port else {
                return Err(Errno::ENOENT);
            };
            let mut s = p.linkstr.clone();
            s.push(0);
            put(data, 24, &(s.len() as u64).to_le_bytes());
            let cmd = u64_at(data, 16);
            if cmd == IFLINKSTR_QUERYLEN {
                return Ok(Next::Done);
            }
            if cmd != 0 {
                return Err(Errno::EINVAL);
            }
            let want = u64_at(data, 24).min(s.len() as u64) as usize;
            let buf = u64_at(data, 32);
            // `copyoutstr` of at most the buffer's length: ENAMETOOLONG when cut.
            let n = want.min(s.len());
            if n == 0 {
                return Err(Errno::ENAMETOOLONG);
            }
            let mut out = s[..n].to_vec();
            let cut = n < s.len();
            if cut {
                out[n - 1] = 0;
            }
            Ok(Next::CopyOut { buf, out, cut })
        }
        SIOCSLINKSTR => {
            if !matches!(f.link, Link::Shmif { .. }) {
                return Err(Errno::ENOTTY);
            }
            if f.flags & IFF_UP != 0 {
                return Err(Errno::EBUSY);
            }
            let cmd = u64_at(data, 16);
            if cmd == IFLINKSTR_UNSET {
                if let Some(f) = e.ifp_mut(i) {
                    if let Link::Shmif { port, .. } = &mut f.link {
                        *port = None;
                    }
                }
                return Ok(Next::Done);
            }
            if cmd != 0 {
                return Err(Errno::EINVAL);
            }
            if matches!(f.link, Link::Shmif { port: Some(_), .. }) {
                return Err(Errno::EBUSY);
            }
            let len = u64_at(data, 24);
            if len > MAXPATHLEN {
                return Err(Errno::E2BIG);
            }
            if len < 1 {
                return Err(Errno::EINVAL);
            }
            let buf = u64_at(data, 32);
            Ok(Next::SetLinkstr {
                buf,
                len: len as usize,
            })
        }
        SIOCGIFADDRPREF | SIOCSIFADDRPREF => {
            // `ifaddrpref_ioctl`: every address has preference 0 (setting it is not kept).
            let sa = &data[24..];
            let a = match sa.get(1) {
                Some(2) => IpAddr::V4(Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7])),
                Some(24) if sa.len() >= 24 => {
                    let b: [u8; 16] = sa[8..24].try_into().unwrap_or_default();
                    IpAddr::V6(Ipv6Addr::from(b))
                }
                Some(18) => {
                    // The link address.
                    if com == SIOCSIFADDRPREF {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    put(data, 16, &0i16.to_le_bytes());
                    return Ok(Next::Done);
                }
                _ => return Err(Errno::EADDRNOTAVAIL),
            };
            if !f.has_addr(a) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            if com == SIOCSIFADDRPREF {
                return Err(Errno::EOPNOTSUPP);
            }
            put(data, 16, &0i16.to_le_bytes());
            Ok(Next::Done)
        }
        // Neither shmif nor lo has media (NetBSD's answer, tests/oracle/inet.netbsd).
        SIOCGIFMEDIA => Err(Errno::ENOTTY),
        SIOCGLIFADDR if fam == 18 => {
            // `link_control`: the link address (prefix form), active.
            let sdl = sockaddr_dl(f);
            put(data, 16, &0xc000u32.to_le_bytes()); // IFLR_ACTIVE | IFLR_PREFIX
            put(
                data,
                20,
                &(u32::from(f.mac.map_or(0u8, |_| 48))).to_le_bytes(),
            );
            let mut a = [0u8; 128];
            a[..sdl.len()].copy_from_slice(&sdl);
            put(data, 24, &a);
            Ok(Next::Done)
        }
        _ if fam == 2 => in_control(st, e, i, com, data).map(|()| Next::Done),
        SIOCGNBRINFO_IN6 if fam == 24 => {
            // `struct in6_nbrinfo`: the address at 16; asked (long) at 32, isrouter at
            // 40, state at 44, expire (time_t, wall clock; 0: permanent) at 48.
            let mut b: [u8; 16] = data[16..32].try_into().map_err(|_| Errno::EINVAL)?;
            if b[0] == 0xfe && b[1] & 0xc0 == 0x80 {
                b[2] = 0;
                b[3] = 0;
            }
            let a = Ipv6Addr::from(b);
            let router = e.nd.get(&(i, a)).is_some_and(|n| n.router);
            let (state, expire_s, asked) = if f.has_addr(IpAddr::V6(a)) {
                (ND6_LLINFO_REACHABLE, 0, 0)
            } else {
                let n = e.nd.get(&(i, a)).ok_or(Errno::EINVAL)?;
                let (st, left_s) = crate::nd6::info(&e, n);
                use crate::engine::NdState;
                let code = match st {
                    NdState::Incomplete => ND6_LLINFO_INCOMPLETE,
                    NdState::Reachable => ND6_LLINFO_REACHABLE,
                    NdState::Stale => ND6_LLINFO_STALE,
                    NdState::Delay => ND6_LLINFO_DELAY,
                    NdState::Probe => ND6_LLINFO_PROBE,
                };
                let wall_s = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let asked = match st {
                    NdState::Incomplete | NdState::Probe => n.tries,
                    _ => 0,
                };
                (code, wall_s + left_s.max(1), asked)
            };
            put(data, 32, &i64::from(asked).to_le_bytes());
            put(data, 40, &i32::from(router).to_le_bytes());
            put(data, 44, &state.to_le_bytes());
            put(data, 48, &(expire_s as i64).to_le_bytes());
            Ok(Next::Done)
        }
        _ if fam == 24 && com & IOC_INOUT == IOC_IN => {
            in6_update(st, e, i, com, data).map(|()| Next::Done)
        }
        _ if fam == 24 => in6_control(f, com, data).map(|()| Next::Done),
        _ => Err(Errno::ENOTTY),
    }
}

/// `in6_control`'s getters ifconfig uses (`struct in6_ifreq`: the address asked about at
/// offset 16): the address, its netmask, its flags (DAD's), lifetimes (infinite: zero).
fn in6_control(f: &Ifnet, com: u32, data: &mut [u8]) -> Result<()> {
    let num = com & 0xff;
    if com & IOC_INOUT != IOC_INOUT || data.len() < 16 + 28 {
        return Err(Errno::ENOTTY);
    }
    if !matches!(num, 33 | 37 | 73 | 106) {
        return Err(Errno::ENOTTY);
    }
    // Every one of them names its address (`in6ifa_ifpwithaddr`; SIOCGIFADDR_IN6 too):
    // another family or an address the interface lacks is EADDRNOTAVAIL.
    let want = sin6_query(data, 16).ok_or(Errno::EADDRNOTAVAIL)?;
    let a = f
        .addrs
        .iter()
        .find(|a| a.addr == IpAddr::V6(want))
        .ok_or(Errno::EADDRNOTAVAIL)?;
    let IpAddr::V6(addr) = a.addr else {
        return Err(Errno::EADDRNOTAVAIL);
    };
    data[16..].fill(0);
    match num {
        33 => put(data, 16, &sin6_scoped(addr, f.index)),
        37 => put(data, 16, &sin6(mask6(a.prefix))),
        // SIOCGIFAFLAG_IN6: tentative during duplicate-address detection (`ifconfig -w`
        // waits for it to clear), duplicated when another node has it.
        73 => put(data, 16, &(a.flags6 as i32).to_le_bytes()),
        _ => {}
    }
    Ok(())
}

/// The `sockaddr_in6` a request names at `o`: `None` for another family; a link-local
/// address in KAME's embedded form (the scope in bytes 2-3) or with `sin6_scope_id` is
/// taken without its scope (one address per interface is looked up on that interface).
fn sin6_query(data: &[u8], o: usize) -> Option<Ipv6Addr> {
    let s = data.get(o..o + 28)?;
    if s[1] != 24 {
        return None;
    }
    let mut b: [u8; 16] = s[8..24].try_into().ok()?;
    if b[0] == 0xfe && b[1] & 0xc0 == 0x80 {
        b[2] = 0;
        b[3] = 0;
    }
    Some(Ipv6Addr::from(b))
}

/// `sockaddr_in6` for an address of interface `index`, link-local ones with their scope
/// (`sa6_recoverscope`: `sin6_scope_id`).
pub fn sin6_scoped(a: Ipv6Addr, index: u32) -> [u8; 28] {
    let mut s = sin6(a);
    if crate::engine::is_link_local(IpAddr::V6(a)) {
        s[24..28].copy_from_slice(&index.to_le_bytes());
    }
    s
}

/// `in6_control`'s setters: `SIOCAIFADDR_IN6` (`struct in6_aliasreq`: the address at
/// 16, the prefix mask at 72; flags and lifetimes are taken as given by ifconfig:
/// infinite) and `SIOCDIFADDR_IN6` (`struct in6_ifreq`: the address at 16). A new
/// address brings the interface up, which gives it its link-local address.
fn in6_update(
    st: &Stack,
    mut e: std::sync::MutexGuard<'_, crate::Engine>,
    i: u32,
    com: u32,
    data: &mut [u8],
) -> Result<()> {
    let sin6_at = |o: usize| sin6_query(data, o);
    match com & 0xff {
        107 if com == SIOCAIFADDR_IN6 => {
            // `in6_control`: another family is EAFNOSUPPORT.
            let addr = sin6_at(16).ok_or(Errno::EAFNOSUPPORT)?;
            // NetBSD takes a multicast address as an interface address too (the engine
            // keeps it from smoltcp).
            if addr.is_unspecified() {
                return Err(Errno::EINVAL);
            }
            let old = e
                .ifp(i)
                .and_then(|f| f.addrs.iter().find(|a| a.addr == IpAddr::V6(addr)).cloned());
            // No mask: an address's own prefix; a new address needs one (`in6_update_ifa`:
            // EINVAL).
            let prefix = match (data[72], &old) {
                (0, Some(o)) => o.prefix,
                (0, None) => return Err(Errno::EINVAL),
                _ => {
                    let m = u128::from(sin6_at(72).unwrap_or(Ipv6Addr::UNSPECIFIED));
                    if m.leading_ones() + m.trailing_zeros() != 128 {
                        return Err(Errno::EINVAL);
                    }
                    m.leading_ones() as u8
                }
            };
            let r = e.add_addr(i, IpAddr::V6(addr), prefix, None);
            let msgs = match r {
                Ok(()) => rtmsg::addr_msgs(&e, i, IpAddr::V6(addr), rtmsg::RTM_NEWADDR),
                Err(_) => Vec::new(),
            };
            drop(e);
            st.kick();
            crate::rtsock::announce(st, msgs);
            r
        }
        25 if com == SIOCDIFADDR_IN6 => {
            let a = IpAddr::V6(sin6_at(16).ok_or(Errno::EADDRNOTAVAIL)?);
            if !e.ifp(i).is_some_and(|f| f.has_addr(a)) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            let msgs = rtmsg::addr_msgs(&e, i, a, rtmsg::RTM_DELADDR);
            let r = e.del_addr(i, a);
            drop(e);
            st.kick();
            if r.is_ok() {
                crate::rtsock::announce(st, msgs);
            }
            r
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// `in_control`: the AF_INET address requests.
fn in_control(
    st: &Stack,
    mut e: std::sync::MutexGuard<'_, crate::Engine>,
    i: u32,
    com: u32,
    data: &mut [u8],
) -> Result<()> {
    let f = e.ifp(i).ok_or(Errno::ENXIO)?;
    let v4: Vec<IfAddr> = f
        .addrs
        .iter()
        .filter(|a| a.addr.is_ipv4())
        .cloned()
        .collect();
    let bcast = f.flags & IFF_BROADCAST != 0;
    match com {
        SIOCAIFADDR => {
            let addr = sin_at(data, 16);
            let bcast = sin_at(data, 32);
            let mask =
                (data[48] != 0).then(|| Ipv4Addr::new(data[52], data[53], data[54], data[55]));
            let Some(addr) = addr else {
                return Err(Errno::EINVAL);
            };
            let old = v4.iter().find(|a| a.addr == IpAddr::V4(addr)).cloned();
            let prefix = match (mask, &old) {
                (Some(m), _) => {
                    if u32::from(m).leading_ones() + u32::from(m).trailing_zeros() != 32 {
                        return Err(Errno::EINVAL);
                    }
                    prefix_of(m)
                }
                (None, Some(o)) => o.prefix,
                (None, None) => classful_prefix(addr),
            };
            let bcast = bcast.filter(|b| !b.is_unspecified());
            let r = e.add_addr(i, IpAddr::V4(addr), prefix, bcast);
            let msgs = match r {
                Ok(()) => rtmsg::addr_msgs(&e, i, IpAddr::V4(addr), rtmsg::RTM_NEWADDR),
                Err(_) => Vec::new(),
            };
            drop(e);
            st.kick();
            crate::rtsock::announce(st, msgs);
            r
        }
        SIOCSIFADDR => {
            let addr = sin_at(data, 16).ok_or(Errno::EINVAL)?;
            let r = e.add_addr(i, IpAddr::V4(addr), classful_prefix(addr), None);
            drop(e);
            st.kick();
            r
        }
        SIOCDIFADDR => {
            let a = match sin_at(data, 16) {
                Some(a) if !a.is_unspecified() => IpAddr::V4(a),
                _ => v4.first().map(|a| a.addr).ok_or(Errno::EADDRNOTAVAIL)?,
            };
            if !v4.iter().any(|x| x.addr == a) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            let msgs = rtmsg::addr_msgs(&e, i, a, rtmsg::RTM_DELADDR);
            let r = e.del_addr(i, a);
            drop(e);
            st.kick();
            if r.is_ok() {
                crate::rtsock::announce(st, msgs);
            }
            r
        }
        SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR | SIOCGIFDSTADDR => {
            let a = v4.first().ok_or(Errno::EADDRNOTAVAIL)?;
            let IpAddr::V4(addr) = a.addr else {
                return Err(Errno::EADDRNOTAVAIL);
            };
            let s = match com {
                SIOCGIFADDR => sin(addr),
                SIOCGIFNETMASK => sin(mask4(a.prefix)),
                SIOCGIFBRDADDR if bcast => sin(a.broadcast.ok_or(Errno::EINVAL)?),
                _ => return Err(Errno::EINVAL),
            };
            put(data, 16, &s);
            Ok(())
        }
        SIOCGIFALIAS => {
            let want = sin_at(data, 16).ok_or(Errno::EADDRNOTAVAIL)?;
            let a = if want.is_unspecified() {
                v4.first()
            } else {
                v4.iter().find(|x| x.addr == IpAddr::V4(want))
            }
            .ok_or(Errno::EADDRNOTAVAIL)?;
            let IpAddr::V4(addr) = a.addr else {
                return Err(Errno::EADDRNOTAVAIL);
            };
            put(data, 16, &sin(addr));
            put(data, 32, &a.broadcast.map(sin).unwrap_or([0; 16]));
            put(data, 48, &sin(mask4(a.prefix)));
            Ok(())
        }
        SIOCGIFAFLAG_IN => {
            let want = sin_at(data, 16).ok_or(Errno::EADDRNOTAVAIL)?;
            // `ia4_flags`: tentative/duplicated (arp.rs), what `ifconfig -w` waits on.
            let Some(x) = v4.iter().find(|x| x.addr == IpAddr::V4(want)) else {
                return Err(Errno::EADDRNOTAVAIL);
            };
            put(data, 16, &(x.flags6 as i32).to_le_bytes());
            Ok(())
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// `ifconf`: one `struct ifreq` per address (an interface without addresses gets one
/// with an empty address), or the length needed when the buffer is null.
async fn ifconf(st: &Stack, cx: &Ctx<'_>, data: &mut [u8]) -> Result<()> {
    let len = i32_at(data, 0);
    let buf = u64_at(data, 8);
    let mut out: Vec<u8> = Vec::new();
    {
        let e = st.lock();
        for f in &e.ifs {
            let mut entries: Vec<Vec<u8>> = vec![sockaddr_dl(f)];
            for a in &f.addrs {
                entries.push(match a.addr {
                    IpAddr::V4(v) => sin(v).to_vec(),
                    IpAddr::V6(v) => sin6(v).to_vec(),
                });
            }
            for sa in entries {
                let mut r = vec![0u8; IFREQ as usize];
                r[..f.name.len()].copy_from_slice(f.name.as_bytes());
                r[16..16 + sa.len().min(128)].copy_from_slice(&sa[..sa.len().min(128)]);
                out.extend_from_slice(&r);
            }
        }
    }
    if buf == 0 {
        put(data, 0, &(out.len() as i32).to_le_bytes());
        return Ok(());
    }
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (len as usize / IFREQ as usize * IFREQ as usize).min(out.len());
    if n > 0 {
        kernel::copy::copyout(cx.mem, buf, &out[..n]).await?;
    }
    put(data, 0, &(n as i32).to_le_bytes());
    Ok(())
}
