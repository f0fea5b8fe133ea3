//! Prints the t_ipaddress/t_ifconfig probe's transcript (tests/oracle/netbsd_ipaddr.rs) for
//! the server at URL, started in a directory of its own with `-lrumpnet -lrumpnet_net
//! -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif`:
//! `cargo run --example oracle_netbsd_ipaddr -- unix:///tmp/dir/ref.sock`.

#[path = "../tests/oracle/netbsd_ipaddr.rs"]
mod netbsd_ipaddr;
#[path = "../tests/netinet/peer.rs"]
mod peer;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_netbsd_ipaddr URL");
        std::process::exit(1)
    });
    for line in netbsd_ipaddr::run(&url).0 {
        println!("{line}");
    }
}
