//! Prints the socket-timeout probe's transcript (tests/oracle/inet_timeo.rs) for the server
//! at URL (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6 URL`):
//! `cargo run --example oracle_inet_timeo -- unix:///tmp/dir/ref.sock`.

#[path = "../tests/oracle/inet_timeo.rs"]
mod inet_timeo;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_inet_timeo URL");
        std::process::exit(1)
    });
    for line in inet_timeo::run(&url).0 {
        println!("{line}");
    }
}
