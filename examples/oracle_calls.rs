//! Prints the calls probe's transcript for the server at URL (see tests/oracle/calls.rs):
//! `cargo run --example oracle_calls -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/calls.rs"]
mod calls;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_calls URL");
        std::process::exit(1)
    });
    for line in calls::run(&url).0 {
        println!("{line}");
    }
}
