//! Buses written by NetBSD's own shmif interfaces, read by ours as NetBSD's shmif_dumpbus
//! reads them. Recorded with NetBSD's rump_server (docs/shmif.md):
//! - `netbsd-bus1`: one NetBSD interface (10.0.1.1) and `shmif_peer` (10.0.1.2) pinging each
//!   other both ways: the first packets of a new bus, frames from both kinds of writer;
//! - `netbsd-bus2`: two NetBSD interfaces, 500 pings of 1400 bytes: the ring has wrapped
//!   (generation 1), the walk crosses its end.
//!
//! `netbsd-busN.dumpbus` is what NetBSD's shmif_dumpbus printed for the bus,
//! `netbsd-busN.pcap.sha256` the SHA-256 of the pcap file its `-p` wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The recorded bus, unpacked to a temporary file of the test's own (`tag`).
fn bus_file(name: &str, tag: &str) -> PathBuf {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(data(&format!("{name}.gz")))
        .output()
        .expect("gzip");
    assert!(out.status.success());
    let p = std::env::temp_dir().join(format!("shmif-netbsd.{}.{tag}.{name}", std::process::id()));
    std::fs::write(&p, out.stdout).unwrap();
    p
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn dumps_as_netbsd(name: &str) {
    let bus = bus_file(name, "dump");
    let pcap = PathBuf::from(format!("{}.pcap", bus.display()));
    let exe = env!("CARGO_BIN_EXE_shmif_dumpbus");
    let out = Command::new(exe).arg(&bus).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = std::fs::read_to_string(data(&format!("{name}.dumpbus"))).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    let out = Command::new(exe)
        .arg("-p")
        .arg(&pcap)
        .arg(&bus)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    let want_sha = std::fs::read_to_string(data(&format!("{name}.pcap.sha256"))).unwrap();
    assert_eq!(
        sha256(&pcap),
        want_sha.trim(),
        "pcap of {name} differs from NetBSD's"
    );
    // `-h`: the header line alone.
    let out = Command::new(exe).arg("-h").arg(&bus).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        want.lines().next().unwrap().to_string() + "\n"
    );
    let _ = std::fs::remove_file(&bus);
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn a_new_bus_with_both_writers_dumps_as_netbsd() {
    dumps_as_netbsd("netbsd-bus1");
}

#[test]
fn a_wrapped_bus_dumps_as_netbsd() {
    dumps_as_netbsd("netbsd-bus2");
}

/// Our interface joins NetBSD's wrapped bus where NetBSD's would (at the newest packet),
/// sends, and a reader that joined before sees exactly that frame next.
#[test]
fn we_join_and_send_on_a_netbsd_bus() {
    let path = bus_file("netbsd-bus2", "join");
    let before = shmif::Bus::open_readonly(&path).unwrap().packets().unwrap();
    let (bus, mut r) = shmif::Bus::open(&path).unwrap();
    let mut buf = [0u8; shmif::FRAME_MAX];
    // A new interface first reads the newest packet again (NetBSD's allocif).
    let got = r.recv(&bus, &mut buf).unwrap().unwrap();
    assert_eq!(&buf[..got.len], &before.last().unwrap().frame[..]);
    assert_eq!(r.recv(&bus, &mut buf).unwrap(), None);
    let frame: Vec<u8> = (0..100u8).collect();
    bus.send(&frame, 77, 5, 6).unwrap();
    let got = r.recv(&bus, &mut buf).unwrap().unwrap();
    assert_eq!((&buf[..got.len], got.sender), (&frame[..], 77));
    let after = bus.packets().unwrap();
    assert_eq!(after.last().unwrap().frame, frame);
    // The frames it overwrote are gone from the front, the rest are as NetBSD left them.
    let kept = &after[..after.len() - 1];
    assert!(kept.len() <= before.len());
    assert_eq!(kept, &before[before.len() - kept.len()..]);
    let _ = std::fs::remove_file(&path);
}
