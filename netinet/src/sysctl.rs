//! The faction's sysctl nodes: `net.inet` (`net.inet6`) knobs the stack really has, and
//! `net.route` (`NET_RT_DUMP`, `NET_RT_FLAGS`, `NET_RT_IFLIST`), which `getifaddrs(3)`,
//! `route show` and `arp -a` read.

use std::sync::Arc;

use kernel::sysctl::{Spec, CTLFLAG_ANYNUMBER, CTLTYPE_INT, CTLTYPE_NODE, CTLTYPE_STRUCT};
use kernel::{Errno, Kernel, Result};

use crate::{rtmsg, sock, Config, Stack};

const PF_INET: i32 = 2;
const PF_INET6: i32 = 24;
const PF_ROUTE: i32 = 34;

fn int_of(v: &[u8]) -> Result<i32> {
    v.get(..4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()))
        .ok_or(Errno::EINVAL)
}

/// Registers the read-write int knob `path.name` (number `num`) kept in the engine: `get`
/// reads it and `set` checks and stores a written value (its error answers the write),
/// both under the engine's lock. The knobs of icmp.rs, frag.rs, arp.rs and nd6.rs.
pub(crate) fn int_knob(
    mib: &kernel::sysctl::Mib,
    st: &Arc<Stack>,
    path: &[&str],
    name: &str,
    num: Option<i32>,
    get: impl Fn(&crate::engine::Engine) -> i32 + Send + Sync + 'static,
    set: impl Fn(&mut crate::engine::Engine, i32) -> Result<()> + Send + Sync + 'static,
) -> Result<i32> {
    let (s1, s2) = (st.clone(), st.clone());
    mib.register(
        path,
        Spec::func_rw(
            name,
            num,
            CTLTYPE_INT,
            4,
            move |_| Ok(get(&s1.lock()).to_le_bytes().to_vec()),
            move |_, v| set(&mut s2.lock(), int_of(v)?),
        )
        .rw(),
    )
}

/// Registers the nodes.
pub fn register(k: &Kernel, st: &Arc<Stack>, cfg: Config) -> Result<()> {
    let mib = k.sysctl();
    mib.register(&["net"], Spec::node("inet", Some(PF_INET)))?;
    mib.register(&["net", "inet"], Spec::node("ip", Some(0)))?;
    let (s1, s2) = (st.clone(), st.clone());
    mib.register(
        &["net", "inet", "ip"],
        Spec::func_rw(
            "forwarding",
            Some(1),
            CTLTYPE_INT,
            4,
            move |_| Ok(i32::from(s1.lock().forwarding_v4).to_le_bytes().to_vec()),
            move |_, v| {
                s2.lock().forwarding_v4 = int_of(v)? != 0;
                Ok(())
            },
        )
        .rw(),
    )?;
    let (t1, t2) = (st.clone(), st.clone());
    mib.register(
        &["net", "inet", "ip"],
        // `ip_defttl` (64, rw): new TCP and UDP sockets over IPv4 take it (NetBSD keeps any
        // int and uses its low byte; one whose low byte is 0 is EINVAL here: smoltcp sends
        // no TTL 0).
        Spec::func_rw(
            "ttl",
            Some(3),
            CTLTYPE_INT,
            4,
            move |_| Ok(i32::from(t1.lock().ip_ttl).to_le_bytes().to_vec()),
            move |_, v| {
                let t = int_of(v)? as u8;
                if t == 0 {
                    return Err(kernel::Errno::EINVAL);
                }
                t2.lock().ip_ttl = t;
                Ok(())
            },
        )
        .rw(),
    )?;
    mib.register(
        &["net", "inet", "ip"],
        Spec::int("anonportmin", Some(10), 49152),
    )?;
    mib.register(
        &["net", "inet", "ip"],
        Spec::int("anonportmax", Some(11), 65535),
    )?;
    mib.register(&["net", "inet"], Spec::node("tcp", Some(6)))?;
    mib.register(
        &["net", "inet", "tcp"],
        Spec::int("sendspace", Some(2), sock::TCP_BUF as i32),
    )?;
    mib.register(
        &["net", "inet", "tcp"],
        Spec::int("recvspace", Some(3), sock::TCP_BUF as i32),
    )?;
    mib.register(&["net", "inet"], Spec::node("udp", Some(17)))?;
    mib.register(
        &["net", "inet", "udp"],
        Spec::int("sendspace", Some(2), sock::UDP_SNDBUF as i32),
    )?;
    mib.register(
        &["net", "inet", "udp"],
        Spec::int("recvspace", Some(3), sock::UDP_RCVBUF as i32),
    )?;
    if cfg.inet6 {
        mib.register(&["net"], Spec::node("inet6", Some(PF_INET6)))?;
        mib.register(&["net", "inet6"], Spec::node("ip6", Some(41)))?;
        let (s1, s2) = (st.clone(), st.clone());
        mib.register(
            &["net", "inet6", "ip6"],
            Spec::func_rw(
                "forwarding",
                Some(1),
                CTLTYPE_INT,
                4,
                move |_| Ok(i32::from(s1.lock().forwarding_v6).to_le_bytes().to_vec()),
                move |_, v| {
                    s2.lock().forwarding_v6 = int_of(v)? != 0;
                    Ok(())
                },
            )
            .rw(),
        )?;
        crate::pcblist::register6(k, st)?;
        // `ip6_v6only` (IPV6CTL_V6ONLY 24, read-write on NetBSD 7.99): the IPV6_V6ONLY a new
        // AF_INET6 socket starts with.
        let (s1, s2) = (st.clone(), st.clone());
        mib.register(
            &["net", "inet6", "ip6"],
            Spec::func_rw(
                "v6only",
                Some(24),
                CTLTYPE_INT,
                4,
                move |_| Ok(i32::from(s1.lock().v6only).to_le_bytes().to_vec()),
                move |_, v| {
                    s2.lock().v6only = int_of(v)? != 0;
                    Ok(())
                },
            )
            .rw(),
        )?;
        // `ip6_auto_linklocal` (1, as NetBSD): 0 stops interfaces that come up from
        // getting their link-local address (t_ipaddress.sh ipaddr_auto_linklocal).
        let (s1, s2) = (st.clone(), st.clone());
        mib.register(
            &["net", "inet6", "ip6"],
            Spec::func_rw(
                "auto_linklocal",
                Some(35),
                CTLTYPE_INT,
                4,
                move |_| Ok(i32::from(s1.lock().auto_linklocal).to_le_bytes().to_vec()),
                move |_, v| {
                    s2.lock().auto_linklocal = int_of(v)? != 0;
                    Ok(())
                },
            )
            .rw(),
        )?;
        crate::nd6::register_sysctl(mib, st)?;
    }
    crate::frag::register_sysctl(k, st, cfg.inet6)?;
    crate::icmp::register_sysctl(k, st, cfg.inet6)?;
    crate::arp::register_sysctl(k, st)?;
    // net.route.0.<af>.<op>.<arg>: NetBSD's `sysctl_rtable` takes the rest of the name;
    // here three any-number levels lead to the leaf that reads it.
    mib.register(&["net"], Spec::node("route", Some(PF_ROUTE)))?;
    let any = |name: &str| {
        Spec {
            ty: CTLTYPE_NODE,
            ..Spec::node(name, Some(0))
        }
        .flags(CTLFLAG_ANYNUMBER | kernel::sysctl::CTLFLAG_PERMANENT)
    };
    mib.register(&["net", "route"], any("rtable"))?;
    mib.register(&["net", "route", "rtable"], any("af"))?;
    mib.register(&["net", "route", "rtable", "af"], any("op"))?;
    let s = st.clone();
    mib.register(
        &["net", "route", "rtable", "af", "op"],
        Spec::func("arg", Some(0), CTLTYPE_STRUCT, 0, move |env| {
            let n = env.name;
            if n.len() != 6 || n[2] != 0 {
                return Err(Errno::EINVAL);
            }
            let (af, op, arg) = (n[3], n[4], n[5]);
            let e = s.lock();
            match op {
                rtmsg::NET_RT_DUMP => Ok(rtmsg::dump(&e, af)),
                // NetBSD 7.99: the link-layer table (arp(8) asks with flags 0).
                rtmsg::NET_RT_FLAGS if arg == 0 || arg & rtmsg::RTF_LLDATA != 0 => {
                    Ok(rtmsg::llinfo(&e, af))
                }
                rtmsg::NET_RT_FLAGS => Ok(Vec::new()),
                rtmsg::NET_RT_IFLIST => Ok(rtmsg::iflist(&e, af, arg)),
                _ => Err(Errno::EINVAL),
            }
        })
        .flags(CTLFLAG_ANYNUMBER | kernel::sysctl::CTLFLAG_PERMANENT),
    )?;
    Ok(())
}
