//! NetBSD's tests/net/net/t_udp.c (udp4_send, udp6_send) and t_raw.c (PRU_SENSE) on our
//! server, each answer as NetBSD's rump_server gave it (`tests/oracle/netbsd-udp-raw.netbsd`,
//! recorded by `cargo run --example oracle_netbsd_udp_raw -- URL`).

mod common;

#[path = "oracle/netbsd_udp_raw.rs"]
mod netbsd_udp_raw;
#[path = "oracle/transcript.rs"]
mod transcript;

#[test]
fn t_udp_send_and_t_raw_pru_sense_as_netbsd() {
    let dir = common::TempDir::new("netbsd-t-udp");
    let srv = common::InDir::start(
        &dir,
        "s.sock",
        &[
            "-lrumpnet",
            "-lrumpnet_net",
            "-lrumpnet_netinet",
            "-lrumpnet_netinet6",
        ],
    );
    let ours = netbsd_udp_raw::run(&srv.url);
    let netbsd = include_str!("oracle/netbsd-udp-raw.netbsd");
    transcript::assert_as_netbsd(&ours.0, netbsd, &[]);
}
