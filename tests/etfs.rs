//! `-d` drives over the wire: host files as etfs block, raw and regular nodes, durability at
//! fsync and halt, start-up errors, injected host faults, and the `-r` memory budget.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use client::fs::{O_CREAT, O_RDONLY, O_RDWR, O_WRONLY};
use client::{Buf, Client};
use common::{errno, Server, TempDir, SERVER};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
const S_IFMT: u32 = 0o170000;
const S_IFBLK: u32 = 0o060000;
const S_IFCHR: u32 = 0o020000;
const S_IFREG: u32 = 0o100000;
const DIOCGMEDIASIZE: u32 = 0x4008_6484;
const SYS_IOCTL: u32 = 54;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

fn drive(dir: &Path, name: &str, rest: &str) -> String {
    format!(
        "key=/{name},hostpath={},{rest}",
        dir.join(format!("{name}.img")).display()
    )
}

fn host_bytes(path: &Path, off: usize, len: usize) -> Vec<u8> {
    std::fs::read(path).unwrap()[off..off + len].to_vec()
}

fn media_size(c: &mut Client, fd: i32) -> u64 {
    let mut out = [0u8; 8];
    let args = [
        fd as u32 as u64,
        u64::from(DIOCGMEDIASIZE),
        client::addr_of(&out),
    ];
    c.syscall(SYS_IOCTL, &args, &mut [Buf::Out(&mut out)])
        .unwrap();
    u64::from_le_bytes(out)
}

#[test]
fn a_block_drive_is_created_sized_and_served_through_the_cache() {
    let dir = TempDir::new("blk");
    let img = dir.path().join("dk.img");
    let srv = Server::unix(&["-lrumpvfs", "-d", &drive(dir.path(), "dk", "size=1m")]);
    let md = std::fs::metadata(&img).expect("the host file was created");
    assert_eq!(md.len(), 1 << 20);
    assert_eq!(md.permissions().mode() & 0o7777 & !0o022, 0o644 & !0o022);
    let mut c = srv.client();
    let st = c.stat("/dk").unwrap();
    assert_eq!(st.mode & S_IFMT, S_IFBLK);
    assert_eq!(st.size, 1 << 20);
    assert_eq!(st.rdev >> 8 & 0xfff, 197, "rumpblk's major");
    let fd = c.open("/dk", O_RDWR, 0).unwrap();
    assert_eq!(media_size(&mut c, fd), 1 << 20);
    let data = pattern(12_288, 7);
    assert_eq!(c.pwrite(fd, &data, 8192).unwrap(), data.len());
    let mut back = vec![0u8; 12_288];
    assert_eq!(c.pread(fd, &mut back, 8192).unwrap(), back.len());
    assert!(back == data, "read back what was written");
    // The block device takes any length (read-modify-write of its blocks, as spec_write);
    // nothing goes past the end.
    assert_eq!(c.pwrite(fd, &[1; 100], 100_002).unwrap(), 100);
    let mut mixed = [9u8; 104];
    c.pread(fd, &mut mixed, 100_000).unwrap();
    assert_eq!(mixed[..2], [0, 0]);
    assert_eq!(mixed[2..102], [1; 100]);
    assert_eq!(mixed[102..], [0, 0]);
    let mut sector = [0u8; 512];
    assert_eq!(c.pread(fd, &mut sector, 1 << 20).unwrap(), 0);
    assert_eq!(
        c.pwrite(fd, &sector, (1 << 20) + 512).unwrap_err().errno(),
        Some(errno::EINVAL)
    );
    // fsync puts the data on the host file.
    c.fsync(fd).unwrap();
    assert!(
        host_bytes(&img, 8192, data.len()) == data,
        "fsync reached the host"
    );
    // A second connection sees the same device contents.
    let mut c2 = srv.client();
    let fd2 = c2.open("/dk", O_RDONLY, 0).unwrap();
    let mut again = vec![0u8; 4096];
    c2.pread(fd2, &mut again, 12_288).unwrap();
    assert!(again == data[4096..8192], "second connection");
}

#[test]
fn halt_and_signals_flush_what_was_never_fsynced() {
    for how in ["halt", "sigterm", "sigint"] {
        let dir = TempDir::new("halt");
        let img = dir.path().join("dk.img");
        let mut srv = Server::unix(&["-lrumpvfs", "-d", &drive(dir.path(), "dk", "size=256k")]);
        let mut c = srv.client();
        let fd = c.open("/dk", O_RDWR, 0).unwrap();
        let data = pattern(64 << 10, 3);
        c.pwrite(fd, &data, 4096).unwrap();
        assert!(
            host_bytes(&img, 4096, data.len()) != data,
            "{how}: written back before any sync (the cache is not write-through)"
        );
        // The client keeps the device open while the server goes down.
        match how {
            "halt" => {
                let out = srv.halt_with(Path::new(common::HALT), &[]);
                assert!(out.status.success(), "{out:?}");
            }
            sig => {
                let signal = if sig == "sigterm" { "TERM" } else { "INT" };
                let st = Command::new("kill")
                    .args([&format!("-{signal}"), &srv.pid().to_string()])
                    .status()
                    .unwrap();
                assert!(st.success());
            }
        }
        let st = srv.wait_exit(20);
        assert_eq!(st.code(), Some(0), "{how}");
        assert!(
            host_bytes(&img, 4096, data.len()) == data,
            "{how}: data lost"
        );
        drop(c);
    }
}

#[test]
fn raw_and_regular_drives() {
    let dir = TempDir::new("chr");
    let reg = dir.path().join("file.img");
    let contents = pattern(10_000, 9);
    std::fs::write(&reg, &contents).unwrap();
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-d",
        &drive(dir.path(), "rdk", "size=64k,type=chr"),
        "-d",
        &format!("key=/file,hostpath={},size=host,type=reg", reg.display()),
    ]);
    let mut c = srv.client();
    let st = c.stat("/rdk").unwrap();
    assert_eq!(st.mode & S_IFMT, S_IFCHR);
    let fd = c.open("/rdk", O_RDWR, 0).unwrap();
    let data = pattern(1024, 1);
    c.pwrite(fd, &data, 512).unwrap();
    // The raw device is not cached: the host file has it at once.
    assert_eq!(host_bytes(&dir.path().join("rdk.img"), 512, 1024), data);
    assert_eq!(
        c.pwrite(fd, &data, 100).unwrap_err().errno(),
        Some(errno::EINVAL),
        "unaligned offset"
    );
    let st = c.stat("/file").unwrap();
    assert_eq!((st.mode & S_IFMT, st.size), (S_IFREG, 10_000));
    let fd = c.open("/file", O_RDONLY, 0).unwrap();
    let mut back = vec![0u8; 10_000];
    assert_eq!(c.pread(fd, &mut back, 0).unwrap(), 10_000);
    assert!(back == contents, "regular drive contents");
    let wfd = c.open("/file", O_WRONLY, 0).unwrap();
    c.pwrite(wfd, b"hello", 3).unwrap();
    assert_eq!(host_bytes(&reg, 3, 5), b"hello");
}

#[test]
fn a_disklabel_partition_gives_the_window() {
    let dir = TempDir::new("label");
    let img = dir.path().join("disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    let label = rump_server::disklabel::build(&[(0, 1 << 20), (64 << 10, 128 << 10)], false);
    bytes[512..512 + label.len()].copy_from_slice(&label);
    std::fs::write(&img, &bytes).unwrap();
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-d",
        &format!("key=/dk1,hostpath={},disklabel=b", img.display()),
    ]);
    let mut c = srv.client();
    assert_eq!(c.stat("/dk1").unwrap().size, 128 << 10);
    let fd = c.open("/dk1", O_RDWR, 0).unwrap();
    c.pwrite(fd, &[0xab; 4096], 0).unwrap();
    c.fsync(fd).unwrap();
    assert_eq!(host_bytes(&img, 64 << 10, 4096), vec![0xab; 4096]);
    assert_eq!(host_bytes(&img, 512, 4), label[..4], "the label is intact");
}

/// Runs the server in the foreground with `args` and returns (status, stderr).
fn start_fails(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(SERVER).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_drives_stop_the_start_with_a_message_that_says_what_to_do() {
    let dir = TempDir::new("bad");
    let url = format!("unix://{}/sock", dir.path().display());
    let sub = dir.path().join("subdir");
    std::fs::create_dir(&sub).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("key=/dk,hostpath={},size=1m", sub.display()),
            "etfs hostpath open: Is a directory",
        ),
        (
            format!(
                "key=/dk,hostpath={}/no/such/dir/x.img,size=1m",
                dir.path().display()
            ),
            "etfs hostpath open: No such file or directory",
        ),
        (
            format!("key=/dk,hostpath={}/empty,size=host", dir.path().display()),
            "etfs hostpath open: No such file or directory",
        ),
        (
            format!("key=dk,hostpath={}/a.img,size=1m", dir.path().display()),
            "etfs register: Invalid argument",
        ),
        (
            format!(
                "key=/dk,hostpath={}/a.img,disklabel=a",
                dir.path().display()
            ),
            "disklabel not found",
        ),
    ];
    for (spec, want) in &cases {
        let (code, err) = start_fails(&["-s", "-lrumpvfs", "-d", spec, &url]);
        assert_eq!(code, Some(1), "{spec}: {err}");
        assert!(err.contains(want), "{spec}: want {want:?}, got {err}");
        assert!(!dir.path().join("sock").exists(), "{spec}: never listened");
    }
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let spec = format!("key=/dk,hostpath={}/empty,size=host", dir.path().display());
    let (_, err) = start_fails(&["-s", "-lrumpvfs", "-d", &spec, &url]);
    assert!(
        err.contains("size=host, but cannot query non-zero size"),
        "{err}"
    );
    // Two drives on one key.
    let spec = format!("key=/dk,hostpath={}/b.img,size=64k", dir.path().display());
    let (_, err) = start_fails(&["-s", "-lrumpvfs", "-d", &spec, "-d", &spec, &url]);
    assert!(err.contains("etfs register: File exists"), "{err}");
    // Daemon mode: the command exits with the host errno of the failed open (ENOENT).
    let spec = format!("key=/dk,hostpath={}/no/x.img,size=1m", dir.path().display());
    let (code, _) = start_fails(&["-lrumpvfs", "-d", &spec, &url]);
    assert_eq!(code, Some(libc::ENOENT));
}

#[test]
fn injected_host_faults_reach_the_client_as_eio_and_nothing_else_breaks() {
    let dir = TempDir::new("fault");
    let srv = Server::unix_env(
        &["-lrumpvfs", "-d", &drive(dir.path(), "dk", "size=1m")],
        &[("RUMP_BLKFAIL", "5000"), ("RUMP_BLKFAIL_SEED", "42")],
    );
    let mut c = srv.client();
    let fd = c.open("/dk", O_RDWR, 0).unwrap();
    let (mut ok, mut eio) = (0, 0);
    for blk in 0..64i64 {
        let mut b = vec![0u8; 4096];
        match c.pread(fd, &mut b, blk * 4096) {
            Ok(n) => {
                assert!(
                    n == 4096 && b.iter().all(|&x| x == 0),
                    "a read that succeeds is right"
                );
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.errno(), Some(EIO), "{e}");
                eio += 1;
            }
        }
    }
    assert!(ok > 5 && eio > 5, "both outcomes seen: {ok} ok, {eio} EIO");
    // The server and other files are unaffected.
    c.getpid().unwrap();
    let f = c.open("/tmp/x", O_CREAT | O_RDWR, 0o644).unwrap();
    c.pwrite(f, b"fine", 0).unwrap();
    let mut b = [0u8; 4];
    c.pread(f, &mut b, 0).unwrap();
    assert_eq!(&b, b"fine");
}

#[test]
fn the_memory_budget_bounds_file_data_and_the_cache() {
    let dir = TempDir::new("budget");
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-r",
        "16m",
        "-d",
        &drive(dir.path(), "dk", "size=64m"),
    ]);
    let mut c = srv.client();
    let rss_start = common::rss_kib(srv.pid());
    // 48 MiB through the block device: the cache stays inside the budget.
    let fd = c.open("/dk", O_RDWR, 0).unwrap();
    let chunk = pattern(256 << 10, 5);
    for i in 0..192i64 {
        c.pwrite(fd, &chunk, i * (256 << 10)).unwrap();
    }
    let mut back = vec![0u8; 256 << 10];
    for i in (0..192i64).step_by(37) {
        c.pread(fd, &mut back, i * (256 << 10)).unwrap();
        assert!(back == chunk, "chunk {i}");
    }
    let grown = common::rss_kib(srv.pid()).saturating_sub(rss_start);
    assert!(grown < 20 << 10, "RSS grew by {grown} KiB with -r 16m");
    // rumpfs file data: ENOSPC before 16 MiB, the server keeps serving.
    let f = c.open("/tmp/big", O_CREAT | O_RDWR, 0o644).unwrap();
    let mut written = 0i64;
    let err = loop {
        match c.pwrite(f, &chunk, written) {
            Ok(n) => written += n as i64,
            Err(e) => break e,
        }
        assert!(written <= 16 << 20, "wrote past the budget");
    };
    assert_eq!(err.errno(), Some(ENOSPC), "{err}");
    assert!(written >= 4 << 20, "only {written} bytes fit");
    c.getpid().unwrap();
    // Freeing the data gives the room back.
    c.ftruncate(f, 0).unwrap();
    c.pwrite(f, &chunk, 0).unwrap();
    // The device data is still all there after the cache was squeezed.
    c.fsync(fd).unwrap();
    let host = std::fs::read(dir.path().join("dk.img")).unwrap();
    for i in 0..192usize {
        assert!(host[i << 18..(i + 1) << 18] == chunk[..], "host chunk {i}");
    }
    std::thread::sleep(Duration::from_millis(1));
}

#[test]
fn verbose_start_lists_the_drives_and_the_budget() {
    let dir = TempDir::new("verbose");
    let srv = Server::unix(&[
        "-v",
        "-lrumpvfs",
        "-r",
        "32m",
        "-d",
        &drive(dir.path(), "dk", "size=16m"),
    ]);
    srv.wait_stdout("drive /dk");
    let out = srv.stdout_text();
    assert!(out.contains("/dk: hostpath "), "{out}");
    assert!(out.contains("(16 MB)"), "{out}");
    assert!(out.contains("memory budget: 32 MB (-r)"), "{out}");
}
