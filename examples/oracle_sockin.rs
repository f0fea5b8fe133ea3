//! Prints the sockin probe's transcript for the server at URL (see tests/oracle/sockin.rs):
//! `cargo run --example oracle_sockin -- unix:///tmp/ref.sock`, the server started fresh as
//! `rump_server -lrumpnet -lrumpnet_net -lrumpnet_sockin URL`.

#[path = "../tests/oracle/sockin.rs"]
mod sockin;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: oracle_sockin URL");
        std::process::exit(1)
    };
    for line in sockin::run(&url).0 {
        println!("{line}");
    }
}
