//! Prints the tmpfs size probe's transcript for the server at URL (see tests/oracle/tmpdf.rs):
//! `cargo run --example oracle_tmpdf -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/tmpdf.rs"]
mod tmpdf;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_tmpdf URL");
        std::process::exit(1)
    });
    for line in tmpdf::run(&url).0 {
        println!("{line}");
    }
}
