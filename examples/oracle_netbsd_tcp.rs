//! Prints the t_tcp.c probe's transcript (tests/oracle/netbsd_tcp.rs) for the server at URL
//! (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6 URL`):
//! `cargo run --example oracle_netbsd_tcp -- unix:///tmp/dir/ref.sock`.

#[path = "../tests/oracle/netbsd_tcp.rs"]
mod netbsd_tcp;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_netbsd_tcp URL");
        std::process::exit(1)
    });
    for line in netbsd_tcp::run(&url).0 {
        println!("{line}");
    }
}
