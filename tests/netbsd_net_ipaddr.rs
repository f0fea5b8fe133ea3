//! NetBSD's tests/net/net/t_ipaddress.sh (ipaddr_same_address, ipaddr_same_address6,
//! ipaddr_auto_linklocal), tests/net/if/t_ifconfig.sh (ifconfig_create_destroy) and
//! t_ndp.sh's `ndp -d` on our server, each answer as NetBSD's rump_server gave it
//! (`tests/oracle/netbsd-ipaddr.netbsd`, recorded by `cargo run --example
//! oracle_netbsd_ipaddr -- URL`).

mod common;

#[path = "oracle/netbsd_ipaddr.rs"]
mod netbsd_ipaddr;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/transcript.rs"]
mod transcript;

#[test]
fn ipaddress_ifconfig_and_ndp_d_as_netbsd() {
    let dir = common::TempDir::new("netbsd-ipaddr");
    let srv = common::InDir::start(&dir, "s.sock", common::NETINET6);
    let ours = netbsd_ipaddr::run(&srv.url);
    let netbsd = include_str!("oracle/netbsd-ipaddr.netbsd");
    transcript::assert_as_netbsd(&ours.0, netbsd, &[]);
}
