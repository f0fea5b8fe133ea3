//! The routing table with NetBSD's semantics (`net/route.c`, `net/radix.c` as seen from
//! outside): host, network and default routes, a gateway or a directly connected network,
//! the longest matching prefix wins, `RTF_REJECT` and `RTF_BLACKHOLE`; a connected route
//! comes with an interface address and goes with it.

use std::net::IpAddr;

/// `RTF_UP`.
pub const RTF_UP: u32 = 0x1;
/// `RTF_GATEWAY`: the destination is reached through `gateway`.
pub const RTF_GATEWAY: u32 = 0x2;
/// `RTF_HOST`: a host route (full-length mask).
pub const RTF_HOST: u32 = 0x4;
/// `RTF_REJECT`: packets are refused (`EHOSTUNREACH`).
pub const RTF_REJECT: u32 = 0x8;
/// `RTF_DONE`.
pub const RTF_DONE: u32 = 0x40;
/// `RTF_CONNECTED` (NetBSD 7.99: the route of an interface's own network).
pub const RTF_CONNECTED: u32 = 0x100;
/// `RTF_STATIC`: added by hand.
pub const RTF_STATIC: u32 = 0x800;
/// `RTF_BLACKHOLE`: packets are dropped silently.
pub const RTF_BLACKHOLE: u32 = 0x1000;
/// `RTF_LOCAL`: a route to one of our own addresses.
pub const RTF_LOCAL: u32 = 0x40000;

/// One route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination network (host routes have the full prefix length).
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Next hop when `RTF_GATEWAY`.
    pub gateway: Option<IpAddr>,
    /// Interface index.
    pub ifindex: u32,
    /// `RTF_*`.
    pub flags: u32,
}

/// Whether `a` lies in `net/prefix` (same family only).
pub fn prefix_contains(net: IpAddr, prefix: u8, a: IpAddr) -> bool {
    match (net, a) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The network address of `a/prefix`.
pub fn network(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4((u32::from(v) & mask).into())
        }
        IpAddr::V6(v) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6((u128::from(v) & mask).into())
        }
    }
}

/// Full prefix length of `a`'s family.
pub fn host_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// Most routes a kernel holds (a client adding routes in a loop gets `ENOBUFS`).
pub const ROUTES_MAX: usize = 4096;

/// The table.
#[derive(Default, Debug)]
pub struct Table {
    routes: Vec<Route>,
}

/// Why a change was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RtError {
    /// `EEXIST`: the same destination and mask is there.
    Exists,
    /// `ESRCH`: no such route.
    NotFound,
    /// `ENOBUFS`: the table is full.
    Full,
}

impl Table {
    /// Adds a route (`rtrequest(RTM_ADD)`): one per destination and prefix.
    pub fn add(&mut self, r: Route) -> Result<(), RtError> {
        let dst = network(r.dst, r.prefix);
        if self
            .routes
            .iter()
            .any(|o| o.dst == dst && o.prefix == r.prefix)
        {
            return Err(RtError::Exists);
        }
        if self.routes.len() >= ROUTES_MAX {
            return Err(RtError::Full);
        }
        self.routes.push(Route { dst, ..r });
        Ok(())
    }

    /// Removes the route for exactly `dst/prefix` (`RTM_DELETE`).
    pub fn delete(&mut self, dst: IpAddr, prefix: u8) -> Result<Route, RtError> {
        let dst = network(dst, prefix);
        match self
            .routes
            .iter()
            .position(|o| o.dst == dst && o.prefix == prefix)
        {
            Some(i) => Ok(self.routes.remove(i)),
            None => Err(RtError::NotFound),
        }
    }

    /// The exact route for `dst/prefix`, to change it (`RTM_CHANGE`).
    pub fn get_mut(&mut self, dst: IpAddr, prefix: u8) -> Option<&mut Route> {
        let dst = network(dst, prefix);
        self.routes
            .iter_mut()
            .find(|o| o.dst == dst && o.prefix == prefix)
    }

    /// Removes every route through interface `ifindex` (the interface goes away), or the
    /// ones `keep` refuses.
    pub fn retain(&mut self, keep: impl FnMut(&Route) -> bool) {
        self.routes.retain(keep);
    }

    /// The route for `a` (`rtalloc1`): the longest matching prefix.
    pub fn lookup(&self, a: IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| prefix_contains(r.dst, r.prefix, a))
            .max_by_key(|r| r.prefix)
    }

    /// Every route, in the order a dump lists them (IPv4 first, then by destination).
    pub fn all(&self) -> Vec<Route> {
        let mut v = self.routes.clone();
        v.sort_by(|a, b| {
            (a.dst.is_ipv6(), a.dst, a.prefix).cmp(&(b.dst.is_ipv6(), b.dst, b.prefix))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, prefix: u8, gw: Option<&str>, flags: u32) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            prefix,
            gateway: gw.map(|g| g.parse().unwrap()),
            ifindex: 2,
            flags,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = Table::default();
        t.add(r("0.0.0.0", 0, Some("10.0.1.254"), RTF_GATEWAY))
            .unwrap();
        t.add(r("10.0.0.0", 8, None, RTF_CONNECTED)).unwrap();
        t.add(r("10.0.2.0", 24, Some("10.0.1.2"), RTF_GATEWAY))
            .unwrap();
        t.add(r("10.0.2.7", 32, None, RTF_HOST | RTF_REJECT))
            .unwrap();
        fn at_(t: &Table, a: &str) -> Route {
            t.lookup(a.parse().unwrap()).unwrap().clone()
        }
        let at = |a: &str| at_(&t, a);
        assert_eq!(at("10.0.2.7").flags, RTF_HOST | RTF_REJECT);
        assert_eq!(at("10.0.2.8").gateway, Some("10.0.1.2".parse().unwrap()));
        assert_eq!(at("10.9.9.9").flags, RTF_CONNECTED);
        assert_eq!(at("192.0.2.1").prefix, 0);
        assert!(t.lookup("::1".parse().unwrap()).is_none());
        assert_eq!(at("192.0.2.1").prefix, 0);
        assert_eq!(
            t.add(r("10.0.2.99", 24, None, 0)),
            Err(RtError::Exists),
            "same network and mask"
        );
        t.delete("10.0.2.0".parse().unwrap(), 24).unwrap();
        assert_eq!(at_(&t, "10.0.2.8").flags, RTF_CONNECTED);
        assert_eq!(
            t.delete("10.0.2.0".parse().unwrap(), 24),
            Err(RtError::NotFound)
        );
    }
}
