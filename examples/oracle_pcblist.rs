//! Prints the `pcblist` probe's transcript for the server at URL (see
//! tests/oracle/pcblist.rs): `cargo run --example oracle_pcblist -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/pcblist.rs"]
mod pcblist;
#[path = "../tests/oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: oracle_pcblist URL");
        std::process::exit(1)
    };
    for line in pcblist::run(&url).0 {
        println!("{line}");
    }
}
