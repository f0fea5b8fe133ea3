//! Prints the multicast probe's transcript (tests/oracle/mcast.rs) for the server at URL,
//! started in directory DIR (the probe's bus lands there and is read back):
//! `cargo run --example oracle_mcast -- unix:///tmp/dir/ref.sock /tmp/dir`.

#[path = "../tests/oracle/mcast.rs"]
mod mcast;
#[path = "../tests/netinet/peer.rs"]
mod peer;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let mut a = std::env::args().skip(1);
    let (Some(url), Some(dir)) = (a.next(), a.next()) else {
        eprintln!("usage: oracle_mcast URL DIR");
        std::process::exit(1)
    };
    for line in mcast::run(&url, std::path::Path::new(&dir)).0 {
        println!("{line}");
    }
}
