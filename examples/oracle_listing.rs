//! Prints the listings probe's transcript for the server at URL (see tests/oracle/listing.rs):
//! `cargo run --example oracle_listing -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/listing.rs"]
mod listing;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_listing URL");
        std::process::exit(1)
    });
    for line in listing::run(&url).0 {
        println!("{line}");
    }
}
