//! Prints the sysctl probe's transcript for the server at URL (see tests/oracle/sysctl.rs):
//! `cargo run --example sysctl_probe -- unix:///tmp/ref.sock`.

#[path = "../tests/oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: sysctl_probe URL");
        std::process::exit(1)
    });
    for line in sysctl::run(&url).0 {
        println!("{line}");
    }
}
