//! Prints the `pcblist` probe's transcript for the server at URL (see
//! tests/oracle/pcblist.rs): `cargo run --example oracle_pcblist -- unix:///tmp/ref.sock`;
//! with `--inet URL` the inet probe (`-lrumpnet_netinet`), `--inet6 URL` the inet6 probe
//! (`-lrumpnet_netinet -lrumpnet_netinet6`), `--sockin URL` the sockin probe
//! (`-lrumpnet_sockin`: run it on a fresh server and halt it after); with `--hold SECS URL` it
//! instead makes a listener, a connection to it and a bound datagram socket and keeps them
//! open SECS seconds (for `netstat -f local` by hand).

#[path = "../tests/oracle/pcblist.rs"]
mod pcblist;
#[path = "../tests/oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn hold(secs: u64, url: &str) {
    use client::net::*;
    let mut c = transcript::connect(url, "pcbhold");
    let l = c.socket(AF_LOCAL, SOCK_STREAM, 0).expect("socket");
    c.bind(l, &sockaddr_un(b"/hold.l")).expect("bind");
    c.listen(l, 5).expect("listen");
    let s = c.socket(AF_LOCAL, SOCK_STREAM, 0).expect("socket");
    c.connect_sock(s, &sockaddr_un(b"/hold.l"))
        .expect("connect");
    let _a = c.accept(l).expect("accept");
    let d = c.socket(AF_LOCAL, SOCK_DGRAM, 0).expect("socket");
    c.bind(d, &sockaddr_un(b"/hold.d")).expect("bind");
    eprintln!("holding {secs} s");
    std::thread::sleep(std::time::Duration::from_secs(secs));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, secs, url] = args.as_slice() {
        if flag == "--hold" {
            return hold(secs.parse().unwrap_or(10), url);
        }
    }
    if let [flag, url] = args.as_slice() {
        let run = match flag.as_str() {
            "--inet" => Some(pcblist::run_inet as fn(&str) -> transcript::Transcript),
            "--inet6" => Some(pcblist::run_inet6 as fn(&str) -> transcript::Transcript),
            "--sockin" => Some(pcblist::run_sockin as fn(&str) -> transcript::Transcript),
            _ => None,
        };
        if let Some(run) = run {
            for line in run(url).0 {
                println!("{line}");
            }
            return;
        }
    }
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: oracle_pcblist URL");
        std::process::exit(1)
    };
    for line in pcblist::run(&url).0 {
        println!("{line}");
    }
}
