//! The last close of an etfs block device writes its dirty blocks back to the host file
//! (NetBSD's spec_close), also when the client disconnects holding it open: a server
//! killed afterwards has lost nothing (issue 13).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use client::fs::O_RDWR;
use common::{Server, TempDir};

fn host_bytes(path: &Path, off: usize, len: usize) -> Vec<u8> {
    std::fs::read(path).unwrap()[off..off + len].to_vec()
}

fn drive(dir: &Path) -> (String, std::path::PathBuf) {
    let img = dir.join("dk.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    (format!("key=/dk,hostpath={},size=host", img.display()), img)
}

fn kill(srv: &mut Server) {
    let child = srv.child.as_mut().expect("server running");
    child.kill().unwrap(); // SIGKILL: no halt, no sync.
    child.wait().unwrap();
}

#[test]
fn close_without_fsync_puts_the_blocks_on_the_host_before_a_kill() {
    let dir = TempDir::new("etfs_close");
    let (d, img) = drive(dir.path());
    let mut srv = Server::unix(&["-lrumpvfs", "-d", &d]);
    let mut c = srv.client();
    let fd = c.open("/dk", O_RDWR, 0).unwrap();
    assert_eq!(c.pwrite(fd, &[0x5a; 8192], 4096).unwrap(), 8192);
    assert_eq!(
        host_bytes(&img, 4096, 8192),
        vec![0; 8192],
        "cached until close"
    );
    c.close(fd).unwrap();
    kill(&mut srv);
    assert!(
        host_bytes(&img, 4096, 8192) == vec![0x5a; 8192],
        "lost at the kill"
    );
    assert_eq!(host_bytes(&img, 0, 4096), vec![0; 4096]);
    assert_eq!(host_bytes(&img, 12288, 4096), vec![0; 4096]);
}

#[test]
fn a_disconnect_holding_the_device_writes_it_back() {
    let dir = TempDir::new("etfs_disc");
    let (d, img) = drive(dir.path());
    let mut srv = Server::unix(&["-lrumpvfs", "-d", &d]);
    {
        let mut c = srv.client();
        let fd = c.open("/dk", O_RDWR, 0).unwrap();
        assert_eq!(c.pwrite(fd, &[0xa5; 4096], 65536).unwrap(), 4096);
    }
    // The server notices the disconnect and closes the device on its own time.
    let start = Instant::now();
    while host_bytes(&img, 65536, 4096) != vec![0xa5; 4096] {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the device's blocks never reached the host after the disconnect"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&mut srv);
    assert_eq!(host_bytes(&img, 65536, 4096), vec![0xa5; 4096]);
}
