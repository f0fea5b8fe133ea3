//! Prints the ktrace probe's transcript for the server at URL (see tests/oracle/ktrace.rs):
//! `cargo run --example oracle_ktrace -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/ktrace.rs"]
mod ktrace;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_ktrace URL");
        std::process::exit(1)
    });
    for line in ktrace::run(&url).0 {
        println!("{line}");
    }
}
