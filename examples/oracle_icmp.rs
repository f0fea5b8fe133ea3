//! Prints the ICMP probe's transcript (tests/oracle/icmp.rs) for the server at URL whose
//! directory is DIR (the probe joins the server's bus there itself):
//! `cargo run --example oracle_icmp -- unix:///tmp/dir/ref.sock /tmp/dir`.

#[path = "../tests/oracle/icmp.rs"]
mod icmp;
#[path = "../tests/netinet/peer.rs"]
mod peer;
#[path = "../tests/oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: oracle_icmp URL DIR");
        std::process::exit(1)
    };
    for line in icmp::run(&url, std::path::Path::new(&dir)).0 {
        println!("{line}");
    }
}
