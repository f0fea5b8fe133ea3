//! IP fragmentation and reassembly, interface and path MTU, TCP's segment size: NetBSD's
//! `ip_fragment` (ip_output.c), `ip_reass` (ip_reass.c), `ip6_output`'s fragmenting at the
//! source, `frag6_input` (frag6.c), `icmp_mtudisc`/`icmp6_mtudisc_update` and
//! `tcp_mss_to_advertise`, over our engine (docs/netinet.md, "Fragments, MTU and MSS").
//!
//! smoltcp sees a device of `IP_MAXPACKET` bytes, so it never fragments nor drops a packet
//! for its size; what it sends is cut here to the MTU of the way out: a TCP segment into
//! several (the segment size NetBSD's `tcp_segsize` would have chosen from the route), any
//! other IPv4 datagram without DF into fragments, an IPv6 one into fragments behind a
//! fragment header (at the source only). Fragments for us are put back together before the
//! raw sockets and smoltcp see the packet, within NetBSD's bounds (`maxfragpackets`,
//! `ip_maxfrags`, `ip6_maxfrags`, `IPFRAGTTL`, `IPV6_FRAGTTL`) and a byte bound of ours.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::engine::{csum, csum6, Engine, IpHdr, IPPROTO_ICMPV6};
use crate::icmp;
use crate::ifnet::IFF_LOOPBACK;
use crate::route;

/// `IP_MAXPACKET`: the largest IP packet (and the MTU smoltcp is told).
pub const IP_MAXPACKET: usize = 65535;
/// `IPFRAGTTL` (60 slow ticks of 500 ms): an incomplete IPv4 datagram lives 30 s.
pub const IPFRAGTTL_MS: u64 = 30_000;
/// `IPV6_FRAGTTL` (120 slow ticks): an incomplete IPv6 packet lives 60 s.
pub const IPV6_FRAGTTL_MS: u64 = 60_000;
/// `ip_maxfragpackets`, `ip6_maxfragpackets`, `ip6_maxfrags` (NetBSD's defaults, sysctl).
pub const MAXFRAGPACKETS: i32 = 200;
/// `ip6_maxfrags`.
pub const IP6_MAXFRAGS: i32 = 200;
/// `ip_maxfrags`: `nmbclusters / 4`, 16384 / 4 on NetBSD's rump kernel (not a sysctl).
pub const IP_MAXFRAGS: usize = 4096;
/// Ours: bytes held in reassembly queues per family (fragments beyond are dropped), so a
/// flood of big fragments over lo0 cannot pin more than this.
pub const REASS_BYTES_MAX: usize = 4 << 20;
/// `IP_MINFRAGSIZE`: a first fragment of fewer bytes, or a later one starting before it,
/// is refused (`ip_reass_packet`: "TCP blind data attacks").
const IP_MINFRAGSIZE: usize = 69;
/// `IPV6_MMTU`: the smallest IPv6 link MTU.
pub const IPV6_MMTU: usize = 1280;
/// `ip_mtudisc_timeout`: a learnt path MTU is forgotten after 600 s.
pub const MTUDISC_TIMEOUT_S: i32 = 600;
/// Path MTUs remembered per kernel (destinations).
const PMTU_MAX: usize = 1024;
/// `tcp_mssdflt`.
pub const TCP_MSSDFLT: i32 = 536;
/// Bytes of recent TCP segments kept to send again after a path MTU change.
const TCP_RESEND_BYTES_MAX: usize = 128 << 10;
/// `tcp_minmss`.
pub const TCP_MINMSS: i32 = 216;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_FRAGMENT: u8 = 44;
/// `IP_DF`, `IP_MF`, `IP_OFFMASK`.
const IP_DF: u16 = 0x4000;
const IP_MF: u16 = 0x2000;
const IP_OFFMASK: u16 = 0x1fff;

/// One fragment's data, at its offset in the datagram.
struct Frag {
    off: usize,
    data: Vec<u8>,
    mf: bool,
}

/// A datagram being put back together (`ipfr_queue`/`ip6q`).
struct Queue {
    /// The first fragment's header (IPv4 with options; IPv6 the fixed header), once in.
    hdr: Option<Vec<u8>>,
    /// IPv4: `ip_tos` of the first fragment seen; IPv6: the next header of the first one.
    tos_or_nxt: u8,
    frags: Vec<Frag>,
    expire_ms: u64,
}

impl Queue {
    fn bytes(&self) -> usize {
        self.frags.iter().map(|f| f.data.len()).sum::<usize>()
            + self.hdr.as_ref().map_or(0, |h| h.len())
    }
}

/// Counters (a subset of `ipstat`/`ip6stat`).
#[derive(Default, Debug, Clone)]
pub struct FragStats {
    /// Fragments received.
    pub fragments: u64,
    /// Fragments dropped (duplicates, no room, bounds).
    pub fragdropped: u64,
    /// Malformed fragments.
    pub badfrags: u64,
    /// Datagrams whose fragments timed out.
    pub fragtimeout: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Datagrams too long once reassembled.
    pub toolong: u64,
    /// Datagrams fragmented on output.
    pub fragmented: u64,
    /// Fragments sent.
    pub ofragments: u64,
    /// Datagrams that could not be fragmented (DF).
    pub cantfrag: u64,
    /// TCP segments cut to the path MTU.
    pub tcp_resegmented: u64,
    /// Path MTU changes learnt from ICMP.
    pub pmtuchg: u64,
}

/// A path MTU learnt for a destination.
#[derive(Clone, Copy, Debug)]
pub struct Pmtu {
    /// The MTU.
    pub mtu: usize,
    /// When it is forgotten (seconds of uptime; `mtudisctimeout` after it was learnt).
    pub expire_s: u64,
    /// Whether a dynamic host route was cloned for it (and goes with it).
    pub cloned: bool,
}

/// `RTF_DYNAMIC`: a route made by the kernel (here: for a path MTU).
pub const RTF_DYNAMIC: u32 = 0x10;

/// The reassembly queues, the path MTUs and the knobs.
pub struct FragState {
    q4: HashMap<(Ipv4Addr, Ipv4Addr, u16, u8), Queue>,
    q6: HashMap<(Ipv6Addr, Ipv6Addr, u32), Queue>,
    nfrags4: usize,
    nfrags6: usize,
    bytes4: usize,
    bytes6: usize,
    /// `net.inet.ip.maxfragpackets` (-1: no bound, 0: no reassembly).
    pub maxfragpackets4: i32,
    /// `net.inet6.ip6.maxfragpackets`.
    pub maxfragpackets6: i32,
    /// `net.inet6.ip6.maxfrags`.
    pub maxfrags6: i32,
    /// `net.inet.ip.mtudisc`.
    pub mtudisc: bool,
    /// `net.inet.ip.mtudisctimeout`.
    pub mtudisc_timeout_s: i32,
    /// `net.inet.tcp.mssdflt`.
    pub mssdflt: i32,
    /// `net.inet.tcp.mss_ifmtu`.
    pub mss_ifmtu: bool,
    /// Path MTUs learnt from need-frag / packet-too-big, by destination (the `rmx_mtu` of
    /// NetBSD's cloned host route).
    pub pmtu: HashMap<IpAddr, Pmtu>,
    ip6_ident: u32,
    /// The TCP segments with data smoltcp sent lately through gateways (at most
    /// `TCP_RESEND_BYTES_MAX` bytes), sent again at once, cut to fit, when a need-frag or
    /// packet too big lowers their destination's MTU (what `tcp_mtudisc`'s immediate
    /// `tcp_output` does; smoltcp would wait for its retransmission timer).
    tcp_sent: std::collections::VecDeque<Vec<u8>>,
    tcp_sent_bytes: usize,
    /// Counters.
    pub stats: FragStats,
}

impl FragState {
    /// NetBSD's defaults; `seed` starts the IPv6 fragment identification.
    pub fn new(seed: u64) -> FragState {
        FragState {
            q4: HashMap::new(),
            q6: HashMap::new(),
            nfrags4: 0,
            nfrags6: 0,
            bytes4: 0,
            bytes6: 0,
            maxfragpackets4: MAXFRAGPACKETS,
            maxfragpackets6: MAXFRAGPACKETS,
            maxfrags6: IP6_MAXFRAGS,
            mtudisc: true,
            mtudisc_timeout_s: MTUDISC_TIMEOUT_S,
            mssdflt: TCP_MSSDFLT,
            mss_ifmtu: false,
            pmtu: HashMap::new(),
            ip6_ident: seed as u32,
            tcp_sent: std::collections::VecDeque::new(),
            tcp_sent_bytes: 0,
            stats: FragStats::default(),
        }
    }

    /// Datagrams and fragments waiting (IPv4, IPv6) and the bytes they hold.
    pub fn queued(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.q4.len(),
            self.nfrags4,
            self.q6.len(),
            self.nfrags6,
            self.bytes4 + self.bytes6,
        )
    }

    fn drop4(&mut self, k: &(Ipv4Addr, Ipv4Addr, u16, u8)) {
        if let Some(q) = self.q4.remove(k) {
            self.nfrags4 -= q.frags.len();
            self.bytes4 -= q.bytes();
        }
    }

    /// Drops an IPv6 queue; its first fragment as it came (fixed header, fragment header,
    /// data) when that one had arrived (`frag6_freef` reports it).
    fn drop6(&mut self, k: &(Ipv6Addr, Ipv6Addr, u32)) -> Option<Vec<u8>> {
        let q = self.q6.remove(k)?;
        self.nfrags6 -= q.frags.len();
        self.bytes6 -= q.bytes();
        let first = q.frags.first().filter(|f| f.off == 0)?;
        let mut p = q.hdr?;
        p.extend_from_slice(&[q.tos_or_nxt, 0, 0, 1]);
        p.extend_from_slice(&k.2.to_be_bytes());
        p.extend_from_slice(&first.data);
        let pl = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&pl.to_be_bytes());
        p[6] = IPPROTO_FRAGMENT;
        Some(p)
    }

    /// `ip_reass_slowtimo`/`frag6_slowtimo`: incomplete datagrams past their time go, and
    /// queues beyond a lowered `maxfragpackets` (the oldest first); `ip_maxfrags`
    /// exceeded drops the older half (`ip_reass_drophalf`).
    /// The first fragments of the IPv6 packets given up come back (for `frag6_freef`'s
    /// time exceeded).
    fn timer(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        let mut gone6 = Vec::new();
        let old4: Vec<_> = self
            .q4
            .iter()
            .filter(|(_, q)| q.expire_ms <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        let old6: Vec<_> = self
            .q6
            .iter()
            .filter(|(_, q)| q.expire_ms <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        self.stats.fragtimeout += (old4.len() + old6.len()) as u64;
        old4.iter().for_each(|k| self.drop4(k));
        for k in &old6 {
            gone6.extend(self.drop6(k));
        }
        if self.nfrags4 > IP_MAXFRAGS {
            let mut by_age: Vec<_> = self.q4.iter().map(|(k, q)| (q.expire_ms, *k)).collect();
            by_age.sort();
            let half = self.nfrags4 / 2;
            for (_, k) in by_age {
                if self.nfrags4 <= half {
                    break;
                }
                self.drop4(&k);
            }
        }
        while self.maxfragpackets4 >= 0 && self.q4.len() > self.maxfragpackets4 as usize {
            let Some(k) = self
                .q4
                .iter()
                .min_by_key(|(_, q)| q.expire_ms)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.drop4(&k);
        }
        while self.maxfragpackets6 >= 0 && self.q6.len() > self.maxfragpackets6 as usize {
            let Some(k) = self
                .q6
                .iter()
                .min_by_key(|(_, q)| q.expire_ms)
                .map(|(k, _)| *k)
            else {
                break;
            };
            gone6.extend(self.drop6(&k));
        }
        gone6
    }
}

/// Inserts `f` into `frags` (sorted by offset) as NetBSD's `ip_reass` does: what the
/// preceding fragment already covers is cut from its front (all of it: dropped), the
/// following ones it covers are cut or removed. Returns the change in fragments and bytes,
/// or None when `f` was dropped.
fn insert_v4(frags: &mut Vec<Frag>, mut f: Frag) -> Option<(isize, isize)> {
    let pos = frags
        .iter()
        .position(|q| q.off > f.off)
        .unwrap_or(frags.len());
    let mut dbytes: isize = 0;
    let mut dfrags: isize = 0;
    if pos > 0 {
        let p = &frags[pos - 1];
        let end = p.off + p.data.len();
        if end > f.off {
            let i = end - f.off;
            if i >= f.data.len() {
                return None;
            }
            f.data.drain(..i);
            f.off += i;
        }
    }
    let end = f.off + f.data.len();
    while pos < frags.len() {
        let q = &mut frags[pos];
        if end <= q.off {
            break;
        }
        let i = end - q.off;
        if i < q.data.len() {
            q.data.drain(..i);
            q.off += i;
            dbytes -= i as isize;
            break;
        }
        dbytes -= q.data.len() as isize;
        dfrags -= 1;
        frags.remove(pos);
    }
    dbytes += f.data.len() as isize;
    dfrags += 1;
    frags.insert(pos, f);
    Some((dfrags, dbytes))
}

/// Whether `frags` make the whole datagram: contiguous from 0, the last without MF. Its
/// length if so.
fn complete(frags: &[Frag]) -> Option<usize> {
    let mut next = 0;
    for f in frags {
        if f.off != next {
            return None;
        }
        next += f.data.len();
    }
    match frags.last() {
        Some(l) if !l.mf => Some(next),
        _ => None,
    }
}

fn apply(n: &mut usize, d: isize) {
    *n = (*n as isize + d).max(0) as usize;
}

/// The TCP checksum of `seg` (header and data) between `src` and `dst`.
fn tcp_csum(src: IpAddr, dst: IpAddr, seg: &[u8]) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut b = Vec::with_capacity(12 + seg.len());
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
            b.extend_from_slice(&[0, IPPROTO_TCP]);
            b.extend_from_slice(&(seg.len() as u16).to_be_bytes());
            b.extend_from_slice(seg);
            csum(&b)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => csum6(s, d, IPPROTO_TCP, seg),
        _ => 0,
    }
}

/// `tcp_mss_to_advertise` for an interface of MTU `ifmtu` (IPv6 when `v6`): the larger of
/// it and the largest MTU of our other interfaces (`in_maxmtu`, unless
/// `net.inet.tcp.mss_ifmtu`), less the headers, at least `tcp_mssdflt`.
pub fn mss_to_advertise(
    ifmtu: usize,
    maxmtu: usize,
    v6: bool,
    mss_ifmtu: bool,
    mssdflt: i32,
) -> usize {
    let mtu = if mss_ifmtu { ifmtu } else { ifmtu.max(maxmtu) };
    let hdr = if v6 { 60 } else { 40 };
    mtu.saturating_sub(hdr).max(mssdflt.max(0) as usize)
}

impl Engine {
    /// Milliseconds since the stack started.
    fn frag_now_ms(&self) -> u64 {
        self.now().total_millis().max(0) as u64
    }

    /// The MTU of the way to `dst` (`ip_output`'s `mtu`): `lo0`'s for our own addresses
    /// (LOMTU for loopback ones), else the route's interface's, lowered by a path MTU learnt for `dst`.
    /// None without a usable route.
    pub fn path_mtu(&self, dst: IpAddr) -> Option<usize> {
        if dst.is_loopback() {
            // 127.0.0.1's and ::1's routes keep the `rmx_mtu` lo0 had when they were made
            // at boot (LOMTU), whatever `ifconfig lo0 mtu` says later (NetBSD's server:
            // tests/oracle/frag.netbsd).
            return Some(crate::ifnet::LOMTU as usize);
        }
        if self.is_local(dst) {
            return self.ifp(1).map(|f| f.mtu as usize);
        }
        let r = self.routes.lookup(dst)?;
        let mut mtu = self.ifp(r.ifindex)?.mtu as usize;
        if let Some(p) = self.frag.pmtu.get(&dst) {
            if p.expire_s > self.uptime_s() {
                mtu = mtu.min(p.mtu);
            }
        }
        if dst.is_ipv6() {
            mtu = mtu.max(IPV6_MMTU);
        }
        Some(mtu)
    }

    /// `ip_reass_slowtimo`, `frag6_slowtimo`, and learnt path MTUs expiring (every poll).
    pub fn frag_timer(&mut self) {
        let now_ms = self.frag_now_ms();
        // `frag6_freef`: ICMPv6 time exceeded (reassembly) about a given-up packet whose
        // first fragment came (IPv4's `ip_freef` sends nothing).
        for p in self.frag.timer(now_ms) {
            let Some(h) = crate::engine::ip_header(&p) else {
                continue;
            };
            if h.src.is_ipv6() {
                let (ty, code) = (
                    icmp::ICMP6_TIME_EXCEEDED,
                    icmp::ICMP6_TIME_EXCEED_REASSEMBLY,
                );
                icmp::icmp6_error(self, 0, &p, ty, code, 0);
            }
        }
        if !self.frag.pmtu.is_empty() {
            let now_s = self.uptime_s();
            let gone: Vec<(IpAddr, bool)> = self
                .frag
                .pmtu
                .iter()
                .filter(|(_, p)| p.expire_s <= now_s)
                .map(|(d, p)| (*d, p.cloned))
                .collect();
            for (dst, cloned) in gone {
                self.frag.pmtu.remove(&dst);
                if cloned {
                    self.pmtu_unclone(dst);
                }
            }
        }
    }

    /// A packet for us, with its header `h`: whole packets pass as they are; a fragment
    /// goes into its queue and the whole datagram comes back, with its header read anew,
    /// once its last piece is in (`ip_reass_packet`, `frag6_input`).
    pub fn reass_input(&mut self, h: IpHdr, p: Vec<u8>) -> Option<(IpHdr, Vec<u8>)> {
        let out = match h.src {
            IpAddr::V4(_) if u16::from_be_bytes([p[6], p[7]]) & (IP_MF | IP_OFFMASK) != 0 => {
                self.reass4(&h, p)?
            }
            IpAddr::V6(_) if h.proto == IPPROTO_FRAGMENT => self.reass6(&h, p)?,
            _ => return Some((h, p)),
        };
        let h = crate::engine::ip_header(&out)?;
        let h = crate::mcast::skip_hbh(&h, &out).unwrap_or(h);
        Some((h, out))
    }

    /// A fragment of an IPv4 datagram (MF or an offset).
    fn reass4(&mut self, h: &IpHdr, p: Vec<u8>) -> Option<Vec<u8>> {
        let offf = u16::from_be_bytes([p[6], p[7]]);
        debug_assert!(offf & (IP_MF | IP_OFFMASK) != 0);
        let st = &mut self.frag;
        st.stats.fragments += 1;
        let off = usize::from(offf & IP_OFFMASK) << 3;
        let len = h.total_len;
        let flen = len - h.hlen;
        let mf = offf & IP_MF != 0;
        if (if off > 0 { off + h.hlen } else { len }) < IP_MINFRAGSIZE - 1
            || (mf && (flen == 0 || flen & 7 != 0))
            || off + flen > IP_MAXPACKET
        {
            st.stats.badfrags += 1;
            return None;
        }
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src, h.dst) else {
            return None;
        };
        let key = (src, dst, u16::from_be_bytes([p[4], p[5]]), h.proto);
        let tos = p[1];
        if let Some(q) = st.q4.get(&key) {
            if q.tos_or_nxt != tos {
                st.stats.badfrags += 1;
                return None;
            }
        } else if st.maxfragpackets4 >= 0 && st.q4.len() >= st.maxfragpackets4 as usize {
            st.stats.fragdropped += 1;
            return None;
        }
        if st.nfrags4 >= IP_MAXFRAGS || st.bytes4 + len > REASS_BYTES_MAX {
            st.stats.fragdropped += 1;
            return None;
        }
        let now_ms = self.now().total_millis().max(0) as u64;
        let st = &mut self.frag;
        let q = st.q4.entry(key).or_insert_with(|| Queue {
            hdr: None,
            tos_or_nxt: tos,
            frags: Vec::new(),
            expire_ms: now_ms + IPFRAGTTL_MS,
        });
        let f = Frag {
            off,
            data: p[h.hlen..len].to_vec(),
            mf,
        };
        let Some((df, db)) = insert_v4(&mut q.frags, f) else {
            st.stats.fragdropped += 1;
            if q.frags.is_empty() {
                st.q4.remove(&key);
            }
            return None;
        };
        let mut db = db;
        if off == 0 && q.hdr.is_none() {
            q.hdr = Some(p[..h.hlen].to_vec());
            db += h.hlen as isize;
        }
        apply(&mut st.nfrags4, df);
        apply(&mut st.bytes4, db);
        let total = complete(&q.frags)?;
        let hdr = q.hdr.clone()?;
        if hdr.len() + total > IP_MAXPACKET {
            st.stats.toolong += 1;
            st.drop4(&key);
            return None;
        }
        let q = st.q4.remove(&key)?;
        st.nfrags4 -= q.frags.len();
        st.bytes4 -= q.bytes();
        st.stats.reassembled += 1;
        let mut out = hdr;
        let hl = out.len();
        out.reserve(total);
        for f in q.frags {
            out.extend_from_slice(&f.data);
        }
        out[2..4].copy_from_slice(&((hl + total) as u16).to_be_bytes());
        out[6] = 0;
        out[7] = 0;
        out[10] = 0;
        out[11] = 0;
        let c = csum(&out[..hl]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
        Some(out)
    }

    /// A packet with a fragment header.
    fn reass6(&mut self, h: &IpHdr, p: Vec<u8>) -> Option<Vec<u8>> {
        debug_assert_eq!(h.proto, IPPROTO_FRAGMENT);
        let st = &mut self.frag;
        // The fragment header right behind the fixed one (other extension headers before
        // it are not parsed here: such packets are dropped).
        if p.len() < 48 || h.total_len < 48 {
            st.stats.badfrags += 1;
            return None;
        }
        let nxt = p[40];
        let offlg = u16::from_be_bytes([p[42], p[43]]);
        let ident = u32::from_be_bytes([p[44], p[45], p[46], p[47]]);
        let off = usize::from(offlg & 0xfff8);
        let mf = offlg & 1 != 0;
        let flen = h.total_len - 48;
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
            return None;
        };
        if off == 0 && !mf {
            // An atomic fragment: the packet without its fragment header.
            let mut out = p[..40].to_vec();
            out[6] = nxt;
            out.extend_from_slice(&p[48..h.total_len]);
            let pl = (out.len() - 40) as u16;
            out[4..6].copy_from_slice(&pl.to_be_bytes());
            return Some(out);
        }
        st.stats.fragments += 1;
        // `frag6_input`: a non-final fragment's length is a multiple of 8, none reaches
        // past IPV6_MAXPACKET; both are answered with a parameter problem (header),
        // pointing at the payload length or at the fragment offset.
        let pointer = if mf && flen & 7 != 0 {
            Some(4)
        } else if off + flen > IP_MAXPACKET {
            Some(42)
        } else {
            None
        };
        if pointer.is_some() || (mf && flen == 0) {
            st.stats.badfrags += 1;
            if let Some(ptr) = pointer {
                let code = icmp::ICMP6_PARAMPROB_HEADER;
                icmp::icmp6_error(self, 0, &p, icmp::ICMP6_PARAM_PROB, code, ptr);
            }
            return None;
        }
        if st.maxfrags6 >= 0 && st.nfrags6 >= st.maxfrags6 as usize
            || st.bytes6 + h.total_len > REASS_BYTES_MAX
        {
            st.stats.fragdropped += 1;
            return None;
        }
        let key = (src, dst, ident);
        if !st.q6.contains_key(&key)
            && st.maxfragpackets6 >= 0
            && st.q6.len() >= st.maxfragpackets6 as usize
        {
            st.stats.fragdropped += 1;
            return None;
        }
        let now_ms = self.now().total_millis().max(0) as u64;
        let st = &mut self.frag;
        let q = st.q6.entry(key).or_insert_with(|| Queue {
            hdr: None,
            tos_or_nxt: nxt,
            frags: Vec::new(),
            expire_ms: now_ms + IPV6_FRAGTTL_MS,
        });
        // frag6: a fragment overlapping one already queued is dropped (RFC 5722 would
        // drop the whole packet; NetBSD 7 drops the newcomer).
        let pos = q
            .frags
            .iter()
            .position(|x| x.off > off)
            .unwrap_or(q.frags.len());
        let overlaps_prev = pos > 0 && {
            let pr = &q.frags[pos - 1];
            pr.off + pr.data.len() > off
        };
        let overlaps_next = pos < q.frags.len() && off + flen > q.frags[pos].off;
        if overlaps_prev || overlaps_next || flen == 0 {
            st.stats.fragdropped += 1;
            if q.frags.is_empty() {
                st.q6.remove(&key);
            }
            return None;
        }
        q.frags.insert(
            pos,
            Frag {
                off,
                data: p[48..h.total_len].to_vec(),
                mf,
            },
        );
        let mut db = flen as isize;
        if off == 0 {
            q.tos_or_nxt = nxt;
            if q.hdr.is_none() {
                q.hdr = Some(p[..40].to_vec());
                db += 40;
            }
        }
        st.nfrags6 += 1;
        apply(&mut st.bytes6, db);
        let total = complete(&q.frags)?;
        let hdr = q.hdr.clone()?;
        let nxt = q.tos_or_nxt;
        if total > IP_MAXPACKET {
            st.stats.toolong += 1;
            st.drop6(&key);
            return None;
        }
        let q = st.q6.remove(&key)?;
        st.nfrags6 -= q.frags.len();
        st.bytes6 -= q.bytes();
        st.stats.reassembled += 1;
        let mut out = hdr;
        out.reserve(total);
        for f in q.frags {
            out.extend_from_slice(&f.data);
        }
        out[4..6].copy_from_slice(&(total as u16).to_be_bytes());
        out[6] = nxt;
        Some(out)
    }

    /// A packet bigger than `mtu` on its way out (`ip_output`): IPv4 without DF into
    /// fragments (`ip_fragment`), IPv6 into fragments behind a fragment header
    /// (`ip6_output`, at the source). IPv4 with DF is dropped (a socket's send saw EMSGSIZE
    /// before: `rip_output`; forwarded ones got a need-frag: `forward_too_big`; smoltcp's
    /// TCP segments were cut to fit: `smol_output`). The pieces, each ≤ `mtu`.
    pub fn fit_mtu(&mut self, h: &IpHdr, p: Vec<u8>, mtu: usize) -> Vec<Vec<u8>> {
        if p.len() <= mtu {
            return vec![p];
        }
        match h.src {
            IpAddr::V4(_) => {
                let offf = u16::from_be_bytes([p[6], p[7]]);
                if offf & IP_DF != 0 {
                    self.frag.stats.cantfrag += 1;
                    return Vec::new();
                }
                self.ip_fragment(h, &p, mtu)
            }
            IpAddr::V6(_) => self.ip6_fragment(h, &p, mtu),
        }
    }

    /// `ip_fragment`: pieces of `(mtu - hlen) & ~7` bytes, the first with all options,
    /// the others with the ones whose copy bit is set (`ip_optcopy`); MF on all but the
    /// last (which keeps the original's), each with its own checksum.
    fn ip_fragment(&mut self, h: &IpHdr, p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let hl = h.hlen;
        let data = &p[hl..h.total_len];
        let offf = u16::from_be_bytes([p[6], p[7]]);
        let base = usize::from(offf & IP_OFFMASK) << 3;
        let orig_mf = offf & IP_MF != 0;
        // The header later fragments carry: options with the copy bit only.
        let mut later = p[..20].to_vec();
        let mut o = 20;
        while o < hl {
            let ty = p[o];
            if ty == 0 {
                break;
            }
            if ty == 1 {
                o += 1;
                continue;
            }
            let Some(&l) = p.get(o + 1) else { break };
            let l = usize::from(l);
            if l < 2 || o + l > hl {
                break;
            }
            if ty & 0x80 != 0 {
                later.extend_from_slice(&p[o..o + l]);
            }
            o += l;
        }
        while !later.len().is_multiple_of(4) {
            later.push(0);
        }
        let later_len = later.len();
        later[0] = (later[0] & 0xf0) | (later_len / 4) as u8;
        if mtu < hl + 8 || mtu < later_len + 8 {
            self.frag.stats.cantfrag += 1;
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let hdr: &[u8] = if off == 0 { &p[..hl] } else { &later };
            let room = (mtu - hdr.len()) & !7;
            let n = room.min(data.len() - off);
            let last = off + n == data.len();
            let mut f = Vec::with_capacity(hdr.len() + n);
            f.extend_from_slice(hdr);
            f.extend_from_slice(&data[off..off + n]);
            let len = f.len() as u16;
            f[2..4].copy_from_slice(&len.to_be_bytes());
            let mut fo = (offf & IP_DF) | (((base + off) >> 3) as u16 & IP_OFFMASK);
            if !last || orig_mf {
                fo |= IP_MF;
            }
            f[6..8].copy_from_slice(&fo.to_be_bytes());
            f[10] = 0;
            f[11] = 0;
            let c = csum(&f[..hdr.len()]);
            f[10..12].copy_from_slice(&c.to_be_bytes());
            out.push(f);
            off += n;
        }
        self.frag.stats.fragmented += 1;
        self.frag.stats.ofragments += out.len() as u64;
        out
    }

    /// `ip6_output`'s fragmenting at the source: the fixed header, a fragment header
    /// (the next header, offset, M, one identification), `(mtu - 48) & ~7` bytes each.
    fn ip6_fragment(&mut self, h: &IpHdr, p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let mtu = mtu.max(IPV6_MMTU);
        let data = &p[40..h.total_len];
        self.frag.ip6_ident = self.frag.ip6_ident.wrapping_add(1);
        let ident = self.frag.ip6_ident;
        let room = (mtu - 48) & !7;
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let n = room.min(data.len() - off);
            let last = off + n == data.len();
            let mut f = Vec::with_capacity(48 + n);
            f.extend_from_slice(&p[..40]);
            f[6] = IPPROTO_FRAGMENT;
            let offlg = (off as u16 & 0xfff8) | u16::from(!last);
            f.extend_from_slice(&[h.proto, 0]);
            f.extend_from_slice(&offlg.to_be_bytes());
            f.extend_from_slice(&ident.to_be_bytes());
            f.extend_from_slice(&data[off..off + n]);
            let pl = (f.len() - 40) as u16;
            f[4..6].copy_from_slice(&pl.to_be_bytes());
            out.push(f);
            off += n;
        }
        self.frag.stats.fragmented += 1;
        self.frag.stats.ofragments += out.len() as u64;
        out
    }

    /// A TCP segment cut into segments that fit `mtu`: the same header (options
    /// included) on each, the sequence number advanced, FIN and PSH on the last only,
    /// each IPv4 piece with its own identification. None when it cannot be cut (a SYN
    /// with data, no room for data).
    fn tcp_resegment(&mut self, h: &IpHdr, p: &[u8], mtu: usize) -> Option<Vec<Vec<u8>>> {
        let hl = h.hlen;
        let seg = &p[hl..h.total_len];
        if seg.len() < 20 {
            return None;
        }
        let thl = usize::from(seg[12] >> 4) * 4;
        if thl < 20 || thl > seg.len() || seg[13] & 0x02 != 0 {
            return None;
        }
        let data = &seg[thl..];
        let room = mtu.checked_sub(hl + thl).filter(|r| *r > 0)?;
        let seq0 = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
        let flags = seg[13];
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let n = room.min(data.len() - off);
            let last = off + n == data.len();
            let mut t = Vec::with_capacity(thl + n);
            t.extend_from_slice(&seg[..thl]);
            t[4..8].copy_from_slice(&seq0.wrapping_add(off as u32).to_be_bytes());
            t[13] = if last { flags } else { flags & !0x09 }; // FIN, PSH
            t[16] = 0;
            t[17] = 0;
            t.extend_from_slice(&data[off..off + n]);
            let c = tcp_csum(h.src, h.dst, &t);
            t[16..18].copy_from_slice(&c.to_be_bytes());
            let mut q = p[..hl].to_vec();
            match h.src {
                IpAddr::V4(_) => {
                    q[2..4].copy_from_slice(&((hl + t.len()) as u16).to_be_bytes());
                    if off > 0 {
                        let id = self.next_ip_id();
                        q[4..6].copy_from_slice(&id.to_be_bytes());
                    }
                    q[10] = 0;
                    q[11] = 0;
                    let c = csum(&q[..hl]);
                    q[10..12].copy_from_slice(&c.to_be_bytes());
                }
                IpAddr::V6(_) => {
                    q[4..6].copy_from_slice(&((t.len()) as u16).to_be_bytes());
                }
            }
            q.extend_from_slice(&t);
            out.push(q);
            off += n;
        }
        Some(out)
    }

    /// What smoltcp sends, made NetBSD's and routed: UDP and ICMP without DF (only TCP
    /// uses path MTU discovery), a SYN's MSS option what `tcp_mss_to_advertise` gives for
    /// the route's interface, and a TCP segment bigger than the path MTU cut into segments
    /// that fit (what NetBSD's `tcp_segsize` from the route makes: smoltcp has one MSS, of
    /// its one device). Then `output`.
    pub fn smol_output(&mut self, mut p: Vec<u8>) {
        self.smol_output_fix(&mut p);
        let Some(h) = crate::engine::ip_header(&p) else {
            return self.output(p);
        };
        if h.proto == IPPROTO_TCP {
            self.tcp_remember(&h, &p);
            if let Some(mtu) = self.path_mtu(h.dst).filter(|m| p.len() > *m) {
                if let Some(v) = self.tcp_resegment(&h, &p, mtu) {
                    self.frag.stats.tcp_resegmented += 1;
                    for q in v {
                        self.output(q);
                    }
                    return;
                }
            }
        }
        self.output(p)
    }

    /// Keeps a copy of a TCP segment with data to a host behind a gateway (the oldest go
    /// beyond `TCP_RESEND_BYTES_MAX`): only a router can answer need-frag, a neighbour's
    /// link MTU is ours.
    fn tcp_remember(&mut self, h: &IpHdr, p: &[u8]) {
        let via_gateway = self
            .routes
            .lookup(h.dst)
            .is_some_and(|r| r.flags & route::RTF_GATEWAY != 0);
        if p.len() <= h.hlen + 40 || !via_gateway {
            return;
        }
        let st = &mut self.frag;
        st.tcp_sent_bytes += p.len();
        st.tcp_sent.push_back(p.to_vec());
        while st.tcp_sent_bytes > TCP_RESEND_BYTES_MAX {
            match st.tcp_sent.pop_front() {
                Some(o) => st.tcp_sent_bytes -= o.len(),
                None => break,
            }
        }
    }

    /// `tcp_mtudisc`: the remembered segments to `dst` that no longer fit `mtu` go again
    /// now, cut to fit (the receiver drops what it had).
    fn tcp_resend(&mut self, dst: IpAddr, mtu: usize) {
        let st = &mut self.frag;
        let mut again = Vec::new();
        let mut keep = std::collections::VecDeque::new();
        for p in st.tcp_sent.drain(..) {
            let to_dst = crate::engine::ip_header(&p).is_some_and(|h| h.dst == dst);
            if to_dst && p.len() > mtu {
                again.push(p);
            } else {
                keep.push_back(p);
            }
        }
        st.tcp_sent_bytes = keep.iter().map(|p| p.len()).sum();
        st.tcp_sent = keep;
        for p in again {
            if let Some(h) = crate::engine::ip_header(&p) {
                if let Some(v) = self.tcp_resegment(&h, &p, mtu) {
                    for q in v {
                        self.output(q);
                    }
                }
            }
        }
    }

    fn smol_output_fix(&mut self, p: &mut [u8]) {
        let Some(h) = crate::engine::ip_header(p) else {
            return;
        };
        if h.src.is_ipv4() && (h.proto != IPPROTO_TCP || !self.frag.mtudisc) {
            let offf = u16::from_be_bytes([p[6], p[7]]);
            if offf & IP_DF != 0 {
                p[6..8].copy_from_slice(&(offf & !IP_DF).to_be_bytes());
                p[10] = 0;
                p[11] = 0;
                let c = csum(&p[..h.hlen]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        if h.proto != IPPROTO_TCP {
            return;
        }
        let seg = &p[h.hlen..h.total_len];
        if seg.len() < 20 || seg[13] & 0x02 == 0 {
            return;
        }
        let thl = (usize::from(seg[12] >> 4) * 4).min(seg.len());
        let Some(mss) = self.mss_for(h.dst) else {
            return;
        };
        let mut o = 20;
        let mut changed = false;
        let seg = &mut p[h.hlen..h.total_len];
        while o + 1 < thl {
            match seg[o] {
                0 => break,
                1 => o += 1,
                2 if seg[o + 1] == 4 && o + 4 <= thl => {
                    let cur = u16::from_be_bytes([seg[o + 2], seg[o + 3]]);
                    let want = mss.min(usize::from(u16::MAX)) as u16;
                    if cur != want {
                        seg[o + 2..o + 4].copy_from_slice(&want.to_be_bytes());
                        changed = true;
                    }
                    break;
                }
                _ => {
                    let l = usize::from(seg[o + 1]);
                    if l < 2 {
                        break;
                    }
                    o += l;
                }
            }
        }
        if changed {
            seg[16] = 0;
            seg[17] = 0;
            let c = tcp_csum(h.src, h.dst, seg);
            seg[16..18].copy_from_slice(&c.to_be_bytes());
        }
    }

    /// `tcp_mss_to_advertise` for a connection to `dst`: the MTU of the interface the
    /// route names (`lo0` for our own addresses), with `in_maxmtu` (the largest MTU of the
    /// non-loopback interfaces with an address of the family).
    pub fn mss_for(&self, dst: IpAddr) -> Option<usize> {
        let ifmtu = if self.is_local(dst) || dst.is_loopback() {
            self.ifp(1)?.mtu as usize
        } else {
            // No route or interface: `in_maxmtu` alone (NetBSD's `ifp` NULL).
            self.routes
                .lookup(dst)
                .and_then(|r| self.ifp(r.ifindex))
                .map_or(0, |f| f.mtu as usize)
        };
        let v6 = dst.is_ipv6();
        let maxmtu = self
            .ifs
            .iter()
            .filter(|f| f.flags & IFF_LOOPBACK == 0 && f.first_addr(v6).is_some())
            .map(|f| f.mtu as usize)
            .max()
            .unwrap_or(0);
        Some(mss_to_advertise(
            ifmtu,
            maxmtu,
            v6,
            self.frag.mss_ifmtu,
            self.frag.mssdflt,
        ))
    }

    /// `ip_forward`/`ip6_forward` with a packet bigger than the next hop's MTU (true: it
    /// was dealt with): IPv4 without DF is fragmented and sent (whatever its protocol),
    /// with DF dropped with `ICMP_UNREACH_NEEDFRAG` carrying that MTU (`icmp_error`), IPv6
    /// dropped with an ICMPv6 packet too big. Errors through `icmp::icmp_error`/`icmp6_error`, their rules and `errppslimit`.
    pub fn forward_too_big(&mut self, i: u32, h: &IpHdr, p: &[u8]) -> bool {
        let Some(mtu) = self.path_mtu(h.dst) else {
            return false;
        };
        if p.len() <= mtu {
            return false;
        }
        match (h.src, h.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => {
                let offf = u16::from_be_bytes([p[6], p[7]]);
                if offf & IP_DF == 0 {
                    self.stats.ip_forward += 1;
                    for q in self.ip_fragment(h, p, mtu) {
                        self.output(q);
                    }
                    return true;
                }
                self.frag.stats.cantfrag += 1;
                // `icmp_error` decides (never about an ICMP error; `errppslimit`).
                let (ty, code) = (icmp::ICMP_UNREACH, icmp::ICMP_UNREACH_NEEDFRAG);
                icmp::icmp_error(self, i, p, ty, code, mtu.min(0xffff) as u32);
                true
            }
            (IpAddr::V6(_), IpAddr::V6(_)) => {
                icmp::icmp6_error(self, i, p, icmp::ICMP6_PACKET_TOO_BIG, 0, mtu as u32);
                true
            }
            _ => true,
        }
    }

    /// `icmp_mtudisc` / `icmp6_mtudisc_update`: an `ICMP_UNREACH_NEEDFRAG` or ICMPv6 packet
    /// too big for a packet of ours lowers the path MTU of its destination (NetBSD's
    /// cloned host route's `rmx_mtu`), for `net.inet.ip.mtudisctimeout` seconds; TCP's
    /// segments to it shrink with it (`smol_output`; the ones just sent go again). A
    /// need-frag without an MTU guesses from
    /// the plateau table (RFC 1191), one below 296 or above the interface's is ignored.
    pub fn mtudisc_input(&mut self, h: &IpHdr, p: &[u8]) {
        let m = &p[h.hlen.min(p.len())..];
        let (dst, mtu) = match h.src {
            IpAddr::V4(_) => {
                if h.proto != 1 || m.len() < 8 + 20 || m[0] != 3 || m[1] != 4 || !self.frag.mtudisc
                {
                    return;
                }
                let q = &m[8..];
                if q[0] >> 4 != 4 {
                    return;
                }
                let dst = IpAddr::V4(Ipv4Addr::new(q[16], q[17], q[18], q[19]));
                // `tcp_ctlinput`: only a segment of one of our connections counts (NetBSD
                // changes no route for need-frags about ICMP or UDP).
                let qhl = usize::from(q[0] & 0xf) * 4;
                if q[9] != IPPROTO_TCP || q.len() < qhl + 4 {
                    return;
                }
                let sport = u16::from_be_bytes([q[qhl], q[qhl + 1]]);
                let dport = u16::from_be_bytes([q[qhl + 2], q[qhl + 3]]);
                if !self.tcp_connected(sport, dst, dport) {
                    return;
                }
                let mut mtu = usize::from(u16::from_be_bytes([m[6], m[7]]));
                if mtu == 0 {
                    const PLATEAU: [usize; 10] = [
                        65535, 65280, 32000, 17914, 9180, 8166, 4352, 2002, 1492, 296,
                    ];
                    let len = usize::from(u16::from_be_bytes([q[2], q[3]]));
                    mtu = PLATEAU.iter().copied().find(|&x| len > x).unwrap_or(68);
                }
                (dst, mtu)
            }
            IpAddr::V6(_) => {
                if h.proto != IPPROTO_ICMPV6 || m.len() < 8 + 40 || m[0] != 2 || m[1] != 0 {
                    return;
                }
                let q = &m[8..];
                if q[0] >> 4 != 6 {
                    return;
                }
                let b: [u8; 16] = q[24..40].try_into().unwrap_or_default();
                let dst = Ipv6Addr::from(b);
                let mtu = u32::from_be_bytes([m[4], m[5], m[6], m[7]]) as usize;
                let mtu = mtu.max(IPV6_MMTU);
                crate::sock::notify_pathmtu(self, dst, mtu as u32);
                (IpAddr::V6(dst), mtu)
            }
        };
        if self.is_local(dst) || dst.is_loopback() {
            return;
        }
        let Some(r) = self.routes.lookup(dst).cloned() else {
            return;
        };
        let Some(ifmtu) = self.ifp(r.ifindex).map(|f| f.mtu as usize) else {
            return;
        };
        if (dst.is_ipv4() && mtu < 296) || mtu > ifmtu {
            return;
        }
        let now_s = self.uptime_s();
        let timeout = self.frag.mtudisc_timeout_s.max(1) as u64;
        let st = &mut self.frag;
        let cur = st.pmtu.get(&dst).filter(|p| p.expire_s > now_s).copied();
        if cur.is_some_and(|c| c.mtu <= mtu) {
            return;
        }
        if cur.is_none() && st.pmtu.len() >= PMTU_MAX {
            if let Some((k, p)) = st
                .pmtu
                .iter()
                .min_by_key(|(_, v)| v.expire_s)
                .map(|(k, p)| (*k, *p))
            {
                st.pmtu.remove(&k);
                if p.cloned {
                    self.pmtu_unclone(k);
                }
            }
        }
        // `icmp_mtudisc`: a network route is cloned into a dynamic host route that
        // carries the MTU (`route -n get` shows it, flags UP,GATEWAY,HOST,DYNAMIC).
        let cloned = match cur {
            Some(c) => c.cloned,
            None => {
                let host = route::host_prefix(dst);
                r.prefix != host
                    && self
                        .routes
                        .add(route::Route {
                            dst,
                            prefix: host,
                            gateway: r.gateway,
                            ifindex: r.ifindex,
                            flags: route::RTF_UP
                                | (r.flags & route::RTF_GATEWAY)
                                | route::RTF_HOST
                                | RTF_DYNAMIC,
                        })
                        .is_ok()
            }
        };
        let st = &mut self.frag;
        st.pmtu.insert(
            dst,
            Pmtu {
                mtu,
                expire_s: now_s + timeout,
                cloned,
            },
        );
        st.stats.pmtuchg += 1;
        self.tcp_resend(dst, mtu);
    }

    /// The dynamic host route cloned for `dst`'s path MTU goes (its MTU expired).
    fn pmtu_unclone(&mut self, dst: IpAddr) {
        let host = route::host_prefix(dst);
        self.routes
            .retain(|r| !(r.dst == dst && r.prefix == host && r.flags & RTF_DYNAMIC != 0));
    }

    /// Whether a TCP connection of ours goes from local port `sport` to `dst`:`dport`.
    fn tcp_connected(&self, sport: u16, dst: IpAddr, dport: u16) -> bool {
        self.sockets.iter().any(|(_, s)| match s {
            smoltcp::socket::Socket::Tcp(t) => {
                t.remote_endpoint()
                    .is_some_and(|r| IpAddr::from(r.addr) == dst && r.port == dport)
                    && t.local_endpoint().is_some_and(|l| l.port == sport)
            }
            _ => false,
        })
    }
}

/// The knobs of this module: `net.inet.ip.{maxfragpackets,mtudisc,mtudisctimeout}`,
/// `net.inet.tcp.{mssdflt,mss_ifmtu,minmss}`, `net.inet6.ip6.{maxfragpackets,maxfrags}`
/// (NetBSD's numbers and defaults), read and written through the engine.
pub fn register_sysctl(
    k: &kernel::Kernel,
    st: &std::sync::Arc<crate::Stack>,
    inet6: bool,
) -> kernel::Result<()> {
    use kernel::sysctl::Spec;
    type Get = fn(&FragState) -> i32;
    type Set = fn(&mut FragState, i32) -> kernel::Result<()>;
    let mib = k.sysctl();
    let knob = |path: &[&str], name: &str, num: i32, get: Get, set: Set| {
        crate::sysctl::int_knob(
            mib,
            st,
            path,
            name,
            Some(num),
            move |e| get(&e.frag),
            move |e, v| set(&mut e.frag, v),
        )
    };
    let ip = &["net", "inet", "ip"][..];
    let tcp = &["net", "inet", "tcp"][..];
    knob(
        ip,
        "maxfragpackets",
        18,
        |f| f.maxfragpackets4,
        |f, x| {
            f.maxfragpackets4 = x;
            Ok(())
        },
    )?;
    knob(
        ip,
        "mtudisc",
        9,
        |f| i32::from(f.mtudisc),
        |f, x| {
            f.mtudisc = x != 0;
            Ok(())
        },
    )?;
    // `sysctl_net_inet_ip_pmtudto`: negative is EINVAL.
    knob(
        ip,
        "mtudisctimeout",
        12,
        |f| f.mtudisc_timeout_s,
        |f, x| {
            if x < 0 {
                return Err(kernel::Errno::EINVAL);
            }
            f.mtudisc_timeout_s = x;
            Ok(())
        },
    )?;
    knob(
        tcp,
        "mssdflt",
        4,
        |f| f.mssdflt,
        |f, x| {
            // `sysctl_net_inet_tcp_mssdflt`: below 32 is EINVAL.
            if x < 32 {
                return Err(kernel::Errno::EINVAL);
            }
            f.mssdflt = x;
            Ok(())
        },
    )?;
    knob(
        tcp,
        "mss_ifmtu",
        9,
        |f| i32::from(f.mss_ifmtu),
        |f, x| {
            f.mss_ifmtu = x != 0;
            Ok(())
        },
    )?;
    mib.register(tcp, Spec::int("minmss", None, TCP_MINMSS))?;
    if inet6 {
        let ip6 = &["net", "inet6", "ip6"][..];
        knob(
            ip6,
            "maxfragpackets",
            9,
            |f| f.maxfragpackets6,
            |f, x| {
                f.maxfragpackets6 = x;
                Ok(())
            },
        )?;
        knob(
            ip6,
            "maxfrags",
            41,
            |f| f.maxfrags6,
            |f, x| {
                f.maxfrags6 = x;
                Ok(())
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fr(off: usize, n: usize, b: u8, mf: bool) -> Frag {
        Frag {
            off,
            data: vec![b; n],
            mf,
        }
    }

    #[test]
    fn overlaps_are_trimmed_as_netbsd_and_completion_is_contiguity() {
        let mut v = Vec::new();
        insert_v4(&mut v, fr(0, 16, 1, true)).unwrap();
        // Fully covered: dropped.
        assert!(insert_v4(&mut v, fr(8, 8, 2, true)).is_none());
        // Overlaps the first's tail: its head is cut.
        insert_v4(&mut v, fr(8, 16, 3, true)).unwrap();
        assert_eq!((v[1].off, v[1].data.len()), (16, 8));
        // Same start as the second: that one precedes it (`ip_reass` looks for the first
        // that begins after), so its head is cut.
        let (df, db) = insert_v4(&mut v, fr(16, 16, 4, false)).unwrap();
        assert_eq!((df, db), (1, 8));
        assert_eq!(complete(&v), Some(32));
        assert_eq!(
            v.iter().map(|f| f.data[0]).collect::<Vec<_>>(),
            vec![1, 3, 4]
        );
        // Starting earlier and covering later ones: they are removed.
        let (df, _) = insert_v4(&mut v, fr(8, 32, 5, false)).unwrap();
        assert_eq!(df, -1);
        assert_eq!(
            v.iter().map(|f| (f.off, f.data.len())).collect::<Vec<_>>(),
            vec![(0, 16), (16, 24)]
        );
        assert_eq!(complete(&v), Some(40));
    }

    fn engine() -> Engine {
        Engine::new(kernel::mem::Budget::new(1 << 30))
    }

    /// An IPv4 fragment from 10.9.9.9 to 127.0.0.1: `id`, byte offset `off`, `n` bytes of
    /// `b`, MF when `mf`.
    fn frag4(id: u16, off: usize, n: usize, b: u8, mf: bool) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 9, 9, 9, 127, 0, 0, 1,
        ];
        p[2..4].copy_from_slice(&((20 + n) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&id.to_be_bytes());
        let fo = ((off >> 3) as u16) | if mf { IP_MF } else { 0 };
        p[6..8].copy_from_slice(&fo.to_be_bytes());
        let c = csum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend(std::iter::repeat_n(b, n));
        p
    }

    fn frag6(ident: u32, off: usize, n: usize, b: u8, mf: bool) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, IPPROTO_FRAGMENT, 64];
        p[4..6].copy_from_slice(&((8 + n) as u16).to_be_bytes());
        p.extend_from_slice(&"fc00::9".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(&[17, 0]);
        p.extend_from_slice(&((off as u16 & 0xfff8) | u16::from(mf)).to_be_bytes());
        p.extend_from_slice(&ident.to_be_bytes());
        p.extend(std::iter::repeat_n(b, n));
        p
    }

    fn reass(e: &mut Engine, p: Vec<u8>) -> Option<Vec<u8>> {
        let h = crate::engine::ip_header(&p).unwrap();
        e.reass_input(h, p).map(|(_, p)| p)
    }

    #[test]
    fn a_datagram_comes_back_whole_whatever_the_order_and_overlaps() {
        let mut e = engine();
        assert!(reass(&mut e, frag4(7, 1600, 400, 2, false)).is_none());
        assert!(reass(&mut e, frag4(7, 0, 1480, 1, true)).is_none());
        // A duplicate of the first: nothing new.
        assert!(reass(&mut e, frag4(7, 0, 1480, 9, true)).is_none());
        assert_eq!(e.frag.queued().1, 2);
        // The gap filled by an overlapping piece: its head is cut (the first fragment's
        // bytes win), the last fragment's head is cut (the newcomer's win), as ip_reass.
        let w = reass(&mut e, frag4(7, 1000, 800, 3, true));
        let w = w.expect("complete");
        assert_eq!(w.len(), 2020);
        assert!(crate::engine::ip_header(&w).is_some(), "a valid header");
        assert_eq!(&w[6..8], &[0, 0]);
        assert!(w[20..1500].iter().all(|&b| b == 1));
        assert!(w[1500..1820].iter().all(|&b| b == 3));
        assert!(w[1820..].iter().all(|&b| b == 2));
        assert_eq!(e.frag.queued(), (0, 0, 0, 0, 0));
        // IPv6 likewise; an overlapping fragment is dropped.
        assert!(reass(&mut e, frag6(9, 1232, 100, 2, false)).is_none());
        assert!(reass(&mut e, frag6(9, 1200, 100, 5, false)).is_none());
        let w = reass(&mut e, frag6(9, 0, 1232, 1, true)).expect("complete");
        assert_eq!((w.len(), w[6]), (40 + 1332, 17));
        assert_eq!(u16::from_be_bytes([w[4], w[5]]), 1332);
        assert_eq!(e.frag.queued(), (0, 0, 0, 0, 0));
    }

    #[test]
    fn hostile_fragments_stay_within_netbsds_bounds() {
        let mut e = engine();
        // Never completed, each its own datagram: at most maxfragpackets queues.
        for id in 0..5000u16 {
            let _ = reass(&mut e, frag4(id, 0, 1480, 1, true));
        }
        let (q4, n4, _, _, bytes) = e.frag.queued();
        assert_eq!((q4, n4), (200, 200));
        assert!(bytes <= REASS_BYTES_MAX);
        // Many pieces of one datagram: bounded by the byte bound and ip_maxfrags.
        for off in (8..65000).step_by(16) {
            let _ = reass(&mut e, frag4(60000, off, 8, 1, true));
        }
        let (_, n4, _, _, bytes) = e.frag.queued();
        assert!(
            n4 <= IP_MAXFRAGS && bytes <= REASS_BYTES_MAX,
            "{n4} {bytes}"
        );
        // Tiny, misaligned, past IP_MAXPACKET: refused.
        let bad = e.frag.stats.badfrags;
        assert!(reass(&mut e, frag4(1, 0, 8, 1, true)).is_none());
        assert!(reass(&mut e, frag4(2, 64, 13, 1, true)).is_none());
        assert!(reass(&mut e, frag4(3, 65528, 16, 1, false)).is_none());
        assert_eq!(e.frag.stats.badfrags, bad + 3);
        // IPv6: ip6_maxfrags.
        for id in 0..5000u32 {
            let _ = reass(&mut e, frag6(id, 0, 1232, 1, true));
        }
        let (_, _, q6, n6, _) = e.frag.queued();
        assert!(q6 <= 200 && n6 <= 200, "{q6} {n6}");
        // Time: IPFRAGTTL / IPV6_FRAGTTL drop everything; the IPv6 packets whose first
        // fragment came are reported (as they came) for frag6_freef's time exceeded.
        let gone = e.frag.timer(u64::MAX);
        assert!(!gone.is_empty() && gone.len() <= 200);
        assert!(gone
            .iter()
            .all(|p| p[6] == IPPROTO_FRAGMENT && p[42..44] == [0, 1]));
        assert_eq!(e.frag.queued(), (0, 0, 0, 0, 0));
        // maxfragpackets 0: no reassembly at all.
        e.frag.maxfragpackets4 = 0;
        assert!(reass(&mut e, frag4(5, 0, 1480, 1, true)).is_none());
        assert_eq!(e.frag.queued().0, 0);
    }

    #[test]
    fn fragments_out_fit_the_mtu_and_go_back_together() {
        let mut e = engine();
        let data: Vec<u8> = (0..9216u32).map(|i| i as u8).collect();
        let p = e.ipv4_packet(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::LOCALHOST,
            17,
            64,
            &data,
        );
        let h = crate::engine::ip_header(&p).unwrap();
        let v = e.fit_mtu(&h, p.clone(), 1500);
        assert_eq!(v.len(), 7);
        assert!(v.iter().all(|f| f.len() <= 1500));
        let mut whole = None;
        for f in v.into_iter().rev() {
            whole = reass(&mut e, f);
        }
        assert_eq!(whole.unwrap()[20..], p[20..]);
        // DF: not fragmented.
        let mut d = p.clone();
        d[6] |= 0x40;
        d[10] = 0;
        d[11] = 0;
        let c = csum(&d[..20]);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        let h = crate::engine::ip_header(&d).unwrap();
        assert!(e.fit_mtu(&h, d, 1500).is_empty());
    }

    #[test]
    fn mss_follows_the_interface_and_in_maxmtu() {
        assert_eq!(mss_to_advertise(33624, 1500, false, false, 536), 33584);
        assert_eq!(mss_to_advertise(1500, 1500, false, false, 536), 1460);
        assert_eq!(mss_to_advertise(1280, 1500, false, false, 536), 1460);
        assert_eq!(mss_to_advertise(1280, 1500, false, true, 536), 1240);
        assert_eq!(mss_to_advertise(1500, 1500, true, false, 536), 1440);
        assert_eq!(mss_to_advertise(300, 0, false, true, 536), 536);
    }
}
