//! Records tests/oracle/netbsd_net.rs's scenarios (NetBSD's tests/net) against five
//! servers it starts in a new directory under /tmp with SERVER (NetBSD's rump_server, which
//! daemonizes when ready) and halts at the end with HALT (default: the rump_halt beside
//! this example): `cargo run --example oracle_netbsd_net -- SERVER [HALT] >
//! tests/oracle/netbsd-net.netbsd`.

#[path = "../tests/oracle/netbsd_net.rs"]
#[allow(dead_code)]
mod netbsd_net;
#[path = "../tests/netinet/peer.rs"]
mod peer;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

use std::process::Command;

fn main() {
    let mut a = std::env::args().skip(1);
    let server = a.next().unwrap_or_else(|| {
        eprintln!("usage: oracle_netbsd_net SERVER [HALT]");
        std::process::exit(1)
    });
    let halt = a.next().unwrap_or_else(|| {
        let me = std::env::current_exe().expect("exe");
        me.parent()
            .and_then(|p| p.parent())
            .expect("target dir")
            .join("rump_halt")
            .display()
            .to_string()
    });
    let dir = std::env::temp_dir().join(format!("oracle-netbsd-net.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let urls: Vec<String> = netbsd_net::SERVERS
        .iter()
        .map(|n| {
            let url = format!("unix://{}/{n}.sock", dir.display());
            let st = Command::new(&server)
                .current_dir(&dir)
                .args(netbsd_net::LIBS)
                .arg(&url)
                .status()
                .expect("start the server");
            assert!(st.success(), "{server} {url}: {st}");
            url
        })
        .collect();
    let t = netbsd_net::run(&urls, None);
    for u in &urls {
        let _ = Command::new(&halt).env("RUMP_SERVER", u).status();
    }
    let _ = std::fs::remove_dir_all(&dir);
    for line in t.0 {
        println!("{line}");
    }
}
