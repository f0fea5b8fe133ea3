//! Prints the t_udp.c/t_raw.c probe's transcript (tests/oracle/netbsd_udp_raw.rs) for the
//! server at URL (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6 URL`): `cargo run --example oracle_netbsd_udp_raw -- URL`.

#[path = "../tests/oracle/netbsd_udp_raw.rs"]
mod netbsd_udp_raw;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_netbsd_udp_raw URL");
        std::process::exit(1)
    });
    for line in netbsd_udp_raw::run(&url).0 {
        println!("{line}");
    }
}
