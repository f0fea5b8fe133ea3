//! Prints the neighbour unreachability probe's transcript (tests/oracle/nud.rs) for three
//! servers A, B, C started in directory DIR (the probe's bus lands there; C is halted by
//! the probe): `cargo run --example oracle_nud -- URL_A URL_B URL_C DIR`.

#[path = "../tests/oracle/nud.rs"]
mod nud;
#[path = "../tests/netinet/peer.rs"]
mod peer;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 4 {
        eprintln!("usage: oracle_nud URL_A URL_B URL_C DIR");
        std::process::exit(1)
    }
    let c = a[2].clone();
    let t = nud::run([&a[0], &a[1], &a[2]], std::path::Path::new(&a[3]), || {
        nud::halt(&c)
    });
    for line in t.0 {
        println!("{line}");
    }
}
