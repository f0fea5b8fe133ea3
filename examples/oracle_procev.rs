//! Prints the process-event probe's transcript for the server at URL (see tests/oracle/procev.rs):
//! `cargo run --example oracle_procev -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/procev.rs"]
mod procev;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_procev URL");
        std::process::exit(1)
    });
    for line in procev::run(&url).0 {
        println!("{line}");
    }
}
