//! Prints the fragmentation/MTU probe's transcript (tests/oracle/frag.rs) for the server at
//! URL, which must run in a directory of its own (the probe's bus lands there):
//! `cargo run --example oracle_frag -- unix:///tmp/dir/ref.sock`.

#[path = "../tests/oracle/frag.rs"]
mod frag;
#[path = "../tests/netinet/peer.rs"]
mod peer;
#[path = "../tests/oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_frag URL");
        std::process::exit(1)
    });
    for line in frag::run(&url).0 {
        println!("{line}");
    }
}
