//! Prints the socket probe's transcript for the server at URL (see tests/oracle/sockets.rs):
//! `cargo run --example oracle_sockets -- unix:///tmp/ref.sock`; with `--absent` first, the
//! probe of a server without AF_LOCAL or without the socket layer; with `--sysctl`, the
//! `net.local` sysctl nodes.

#[path = "../tests/oracle/netlocal.rs"]
mod netlocal;
#[path = "../tests/oracle/sockets.rs"]
mod sockets;
#[path = "../tests/oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (absent, url) = match args.as_slice() {
        [flag, url] if flag == "--sysctl" => {
            for line in netlocal::run(url) {
                println!("{line}");
            }
            return;
        }
        [flag, url] if flag == "--absent" => (true, url.clone()),
        [url] => (false, url.clone()),
        _ => {
            eprintln!("usage: oracle_sockets [--absent|--sysctl] URL");
            std::process::exit(1)
        }
    };
    let t = if absent {
        sockets::run_absent(&url)
    } else {
        sockets::run(&url)
    };
    for line in t.0 {
        println!("{line}");
    }
}
