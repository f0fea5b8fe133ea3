//! Prints the router advertisement probe's transcript (tests/oracle/rtadv.rs) for the server at URL,
//! started in directory DIR (the probe's bus lands there and is read back):
//! `cargo run --example oracle_rtadv -- unix:///tmp/dir/ref.sock /tmp/dir`.

#[path = "../tests/netinet/peer.rs"]
mod peer;
#[path = "../tests/oracle/rtadv.rs"]
mod rtadv;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let mut a = std::env::args().skip(1);
    let (Some(url), Some(dir)) = (a.next(), a.next()) else {
        eprintln!("usage: oracle_rtadv URL DIR");
        std::process::exit(1)
    };
    for line in rtadv::run(&url, std::path::Path::new(&dir)).0 {
        println!("{line}");
    }
}
