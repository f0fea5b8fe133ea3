//! Prints the hostile-client probe's transcript for the server at URL (see
//! tests/oracle/hostile.rs): `cargo run --example oracle_probe -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/hostile.rs"]
mod hostile;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_probe URL");
        std::process::exit(1)
    });
    for line in hostile::run(&url).0 {
        println!("{line}");
    }
}
