//! Prints the IPv6 socket-option probe's transcript (tests/oracle/inet6_opts.rs) for the server
//! at URL (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6 URL`):
//! `cargo run --example oracle_inet6_opts -- unix:///tmp/dir/ref.sock`.

#[path = "../tests/oracle/inet6_opts.rs"]
mod inet6_opts;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_inet6_opts URL");
        std::process::exit(1)
    });
    for line in inet6_opts::run(&url).0 {
        println!("{line}");
    }
}
