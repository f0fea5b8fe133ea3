//! Prints the readiness probe's transcript for the server at URL (see tests/oracle/ready.rs):
//! `cargo run --example oracle_ready -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/ready.rs"]
mod ready;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_ready URL");
        std::process::exit(1)
    });
    for line in ready::run(&url).0 {
        println!("{line}");
    }
}
