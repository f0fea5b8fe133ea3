//! The network component names (issue 15): `-lrumpnet`, `-lrumpnet_net`, `-lrumpnet_local`
//! attach the socket layer and AF_LOCAL (`-v` lists them, rump_allserver has them); the
//! TCP/IP names stop the start with a message that says why, and so does `rumpnet_sockin`
//! named with the in-kernel TCP/IP stack it replaces.

mod common;

use std::process::Command;

use client::net::{sockaddr_un, AF_LOCAL, SOCK_STREAM};
use common::{Server, TempDir, HALT, SERVER};

fn start_fails(args: &[&str]) -> String {
    let out = Command::new(SERVER).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn verbose_lists_the_network_components() {
    let srv = Server::unix(&["-v", "-lrumpvfs", "-lrumpnet_net"]);
    srv.wait_stdout(
        "components: rump rumpuser rumpkern_sysproxy rumpvfs rumpnet rumpnet_local rumpnet_net",
    );
    let mut c = srv.client();
    let (a, b) = c.socketpair(AF_LOCAL, SOCK_STREAM, 0).unwrap();
    c.write(a, b"net").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(c.read(b, &mut buf).unwrap(), 3);
}

#[test]
fn tcpip_and_sockin_names_are_refused_with_their_reason() {
    // netinet, netinet6, shmif, config and virtif are built (tests/netinet.rs,
    // tests/virtif.rs); bridge not yet.
    for name in ["-lrumpnet_bridge", "-llibrumpnet_agr.so"] {
        let err = start_fails(&["-s", "-lrumpvfs", "-lrumpnet_net", name, "unix://x"]);
        assert!(err.contains("TCP/IP stack"), "{name}: {err}");
    }
    for inet in ["-lrumpnet_netinet", "-llibrumpnet_netinet6.so"] {
        let err = start_fails(&["-s", "-lrumpnet_sockin", inet, "unix://x"]);
        assert!(
            err.contains("rumpnet_sockin") && err.contains("exclude each other"),
            "{err}"
        );
    }
}

#[test]
fn rump_allserver_has_af_local_and_not_sockin() {
    let exe = env!("CARGO_BIN_EXE_rump_allserver");
    let dir = TempDir::new("allnet");
    let url = format!("unix://{}", dir.path().join("a.sock").display());
    let child = Command::new(exe)
        .args(["-s", "-v", "-c", "1", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = common::connect_retry(&url, "allnet");
    let s = c.socket(AF_LOCAL, SOCK_STREAM, 0).unwrap();
    c.bind(s, &sockaddr_un(b"/all.sock")).unwrap();
    let out = Command::new(HALT)
        .env("RUMP_SERVER", &url)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rumpnet_local"), "{text}");
    assert!(!text.contains("sockin"), "{text}");
}

/// sockin only when named: `-v` lists it, AF_INET works; without it (also in
/// rump_allserver) `socket(AF_INET)` is `EAFNOSUPPORT`; a bad `RUMP_SOCKIN_ALLOW` stops
/// the start with a message naming it.
#[test]
fn sockin_is_loaded_only_when_named() {
    const AF_INET: i32 = 2;
    let srv = Server::unix(&["-v", "-lrumpnet_sockin"]);
    srv.wait_stdout("components: rump rumpuser rumpkern_sysproxy rumpnet rumpnet_sockin");
    let mut c = srv.client();
    assert!(c.socket(AF_INET, SOCK_STREAM, 0).is_ok());
    let plain = Server::unix(&["-lrumpnet_net"]);
    let mut c = plain.client();
    let e = c.socket(AF_INET, SOCK_STREAM, 0).unwrap_err();
    assert_eq!(e.errno(), Some(47));
    let out = Command::new(SERVER)
        .env("RUMP_SOCKIN_ALLOW", "10.0.0.0/99")
        .args(["-s", "-lrumpnet_sockin", "unix:///nonexistent/x.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RUMP_SOCKIN_ALLOW"), "{err}");
}
