//! Prints the socket probe's transcript for the server at URL (see tests/oracle/sockets.rs):
//! `cargo run --example oracle_sockets -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/sockets.rs"]
mod sockets;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_sockets URL");
        std::process::exit(1)
    });
    for line in sockets::run(&url).0 {
        println!("{line}");
    }
}
