//! External components (include/rump_component.h) and modules over the wire: `-l` and `-m`
//! with the example component built from examples/component/example.c, modctl(2) from a
//! client, built-in file systems as `.kmod` modules, and every bad argument's error.

mod common;

use std::process::Command;

use client::{Buf, Client};
use common::{Server, TempDir, SERVER};

const SYS_MODCTL: u32 = 246;
const SYS_MOUNT: u32 = 410;
const MODCTL_LOAD: u64 = 0;
const MODCTL_UNLOAD: u64 = 1;
const MODCTL_STAT: u64 = 4;
const ENOSYS: i32 = 78;
const ENODEV: i32 = 19;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const EPERM: i32 = 1;

fn rot13(c: &mut Client, text: &[u8]) -> (i64, Vec<u8>) {
    let mut out = vec![0u8; text.len()];
    let args = [
        client::addr_of(text),
        text.len() as u64,
        client::addr_of(&out),
        out.len() as u64,
    ];
    let rv = c
        .syscall(210, &args, &mut [Buf::In(text), Buf::Out(&mut out)])
        .unwrap();
    (rv[0], out)
}

fn modctl_load(c: &mut Client, path: &str) -> Result<(), i32> {
    let name = format!("{path}\0").into_bytes();
    let mut ml = [0u8; 32];
    ml[..8].copy_from_slice(&client::addr_of(&name).to_le_bytes());
    let args = [MODCTL_LOAD, client::addr_of(&ml)];
    c.syscall(SYS_MODCTL, &args, &mut [Buf::In(&ml), Buf::In(&name)])
        .map(drop)
        .map_err(|e| e.errno().unwrap())
}

fn modctl_unload(c: &mut Client, name: &str) -> Result<(), i32> {
    let name = format!("{name}\0").into_bytes();
    c.syscall(
        SYS_MODCTL,
        &[MODCTL_UNLOAD, client::addr_of(&name)],
        &mut [Buf::In(&name)],
    )
    .map(drop)
    .map_err(|e| e.errno().unwrap())
}

/// (name, source, class, refcnt) of every module.
fn modstat(c: &mut Client) -> Vec<(String, u32, u32, u32)> {
    let mut buf = vec![0u8; 4096];
    let mut iov = [0u8; 16];
    iov[..8].copy_from_slice(&client::addr_of(&buf).to_le_bytes());
    iov[8..].copy_from_slice(&4096u64.to_le_bytes());
    let args = [MODCTL_STAT, client::addr_of(&iov)];
    c.syscall(
        SYS_MODCTL,
        &args,
        &mut [Buf::InOut(&mut iov), Buf::Out(&mut buf)],
    )
    .unwrap();
    let n = i32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| {
            let ms = &buf[4 + i * 64..4 + (i + 1) * 64];
            let end = ms[..32].iter().position(|&b| b == 0).unwrap();
            let u = |o: usize| u32::from_le_bytes(ms[o..o + 4].try_into().unwrap());
            (
                String::from_utf8_lossy(&ms[..end]).into_owned(),
                u(40),
                u(44),
                u(52),
            )
        })
        .collect()
}

fn mount_tmpfs(c: &mut Client, dir: &str) -> Result<(), i32> {
    let ty = b"tmpfs\0".to_vec();
    let path = format!("{dir}\0").into_bytes();
    let mut args = [0u8; 40];
    args[..4].copy_from_slice(&1i32.to_le_bytes());
    let a = [
        client::addr_of(&ty),
        client::addr_of(&path),
        0,
        client::addr_of(&args),
        40,
    ];
    c.syscall(
        SYS_MOUNT,
        &a,
        &mut [Buf::In(&ty), Buf::In(&path), Buf::In(&args)],
    )
    .map(drop)
    .map_err(|e| e.errno().unwrap())
}

#[test]
fn an_external_component_from_l_serves_its_system_calls() {
    let dir = TempDir::new("comp");
    let so = common::build_shared_object(dir.path(), "libexample.so", None, &[]);
    let srv = Server::unix(&["-lrumpvfs", "-l", so.to_str().unwrap()]);
    srv.wait_stdout("example: example component ready");
    let mut c = srv.client();
    assert_eq!(
        rot13(&mut c, b"Hello, rump!"),
        (12, b"Uryyb, ehzc!".to_vec())
    );
    assert_eq!(c.syscall(211, &[], &mut []).unwrap()[0], 1);
    let mut c2 = srv.client();
    assert_eq!(c2.syscall(211, &[], &mut []).unwrap()[0], 2);
    assert_eq!(
        c.syscall(212, &[], &mut []).unwrap_err().errno(),
        Some(ENOSYS)
    );
    // Listed as a built-in (source KERNEL, class MISC, refcnt 0), as -l components are.
    assert!(modstat(&mut c).contains(&("example".into(), 0, 1, 0)));
}

#[test]
fn m_loads_a_component_and_modctl_unloads_it_unless_it_refuses() {
    let dir = TempDir::new("compm");
    let so = common::build_shared_object(dir.path(), "libexample.so", None, &[]);
    let srv = Server::unix(&["-lrumpvfs", "-m", so.to_str().unwrap()]);
    let mut c = srv.client();
    assert_eq!(rot13(&mut c, b"abc").1, b"nop");
    assert!(modstat(&mut c).contains(&("example".into(), 2, 1, 0)));
    modctl_unload(&mut c, "example").unwrap();
    assert_eq!(
        c.syscall(210, &[], &mut []).unwrap_err().errno(),
        Some(ENOSYS),
        "its system calls go with it"
    );
    assert_eq!(modctl_unload(&mut c, "example"), Err(2));
    // A component whose fini refuses stays.
    let pinned = Server::unix_env(
        &["-lrumpvfs", "-m", so.to_str().unwrap()],
        &[("EXAMPLE_PIN", "1")],
    );
    let mut c = pinned.client();
    assert_eq!(modctl_unload(&mut c, "example"), Err(EBUSY));
    assert_eq!(rot13(&mut c, b"abc").1, b"nop");
}

#[test]
fn clients_load_components_the_operator_mapped_and_nothing_else() {
    let dir = TempDir::new("compc");
    let so = common::build_shared_object(dir.path(), "libexample.so", None, &[]);
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"from the host\n").unwrap();
    let srv = Server::unix_env(
        &[
            "-lrumpvfs",
            "-d",
            &format!("key=/stand/libexample.so,hostpath={},module", so.display()),
        ],
        &[("EXAMPLE_ETFS_FILE", data.to_str().unwrap())],
    );
    let mut c = srv.client();
    assert_eq!(
        c.syscall(210, &[], &mut []).unwrap_err().errno(),
        Some(ENOSYS)
    );
    modctl_load(&mut c, "/stand/libexample.so").unwrap();
    assert_eq!(modctl_load(&mut c, "/stand/libexample.so"), Err(EEXIST));
    assert_eq!(rot13(&mut c, b"xyz").1, b"klm");
    // The etfs key the component registered.
    let fd = c.open("/example/file", client::fs::O_RDONLY, 0).unwrap();
    let mut b = [0u8; 14];
    assert_eq!(c.pread(fd, &mut b, 0).unwrap(), 14);
    assert_eq!(&b, b"from the host\n");
    c.close(fd).unwrap();
    // Bytes a client wrote are never loaded as host code.
    let fd = c
        .open(
            "/tmp/evil.so",
            client::fs::O_CREAT | client::fs::O_RDWR,
            0o755,
        )
        .unwrap();
    c.pwrite(fd, &std::fs::read(&so).unwrap(), 0).unwrap();
    c.close(fd).unwrap();
    assert_eq!(modctl_load(&mut c, "/tmp/evil.so"), Err(EPERM));
    // Unloading removes its key too.
    modctl_unload(&mut c, "example").unwrap();
    assert_eq!(
        c.open("/example/file", client::fs::O_RDONLY, 0)
            .unwrap_err()
            .errno(),
        Some(2)
    );
}

#[test]
fn a_kmod_named_after_a_built_in_file_system_loads_it() {
    let dir = TempDir::new("kmod");
    let kmod = dir.path().join("tmpfs.kmod");
    std::fs::write(&kmod, b"").unwrap();
    let plain = Server::unix(&["-lrumpvfs"]);
    let mut c = plain.client();
    assert_eq!(mount_tmpfs(&mut c, "/tmp"), Err(ENODEV));
    // The man page's `rump_server -lrumpvfs -m /modules/tmpfs.kmod`.
    let srv = Server::unix(&["-lrumpvfs", "-m", kmod.to_str().unwrap()]);
    let mut c = srv.client();
    mount_tmpfs(&mut c, "/tmp").unwrap();
    assert!(modstat(&mut c).contains(&("tmpfs".into(), 2, 2, 0)));
    assert_eq!(modctl_unload(&mut c, "tmpfs"), Err(EBUSY), "mounted");
}

fn start_fails(args: &[&str]) -> String {
    let out = Command::new(SERVER).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_components_and_modules_stop_the_start_with_their_error() {
    let dir = TempDir::new("compbad");
    let url = format!("unix://{}/sock", dir.path().display());
    let nosym = common::build_shared_object(
        dir.path(),
        "libnosym.so",
        Some("int not_a_component = 1;\n"),
        &[],
    );
    let abi99 = common::build_shared_object(dir.path(), "libabi99.so", None, &["-DEXAMPLE_ABI=99"]);
    let text = dir.path().join("notalib.so");
    std::fs::write(&text, b"just text").unwrap();
    let missing = dir.path().join("missing.so");
    for (lib, want) in [
        (&nosym, "no symbol rump_component_v1"),
        (&abi99, "component ABI version 99, this server has 1"),
        (&text, "failed to load -libraries, last error from"),
        (&missing, "failed to load -libraries, last error from"),
    ] {
        let err = start_fails(&["-s", "-lrumpvfs", "-l", lib.to_str().unwrap(), &url]);
        assert!(
            err.contains(want),
            "{}: want {want:?}, got {err}",
            lib.display()
        );
    }
    for (m, want) in [
        (&missing, "module load failed: No such file or directory"),
        (&text, "module load failed: Exec format error"),
        (&abi99, "module load failed: Exec format error"),
    ] {
        let err = start_fails(&["-s", "-lrumpvfs", "-m", m.to_str().unwrap(), &url]);
        assert!(
            err.contains(want),
            "{}: want {want:?}, got {err}",
            m.display()
        );
    }
    let err = start_fails(&["-s", "-m", abi99.to_str().unwrap(), &url]);
    assert!(err.contains("add -lrumpvfs"), "{err}");
    assert!(!dir.path().join("sock").exists());
}

#[test]
fn a_component_file_system_mounts_filled_and_holds_its_module() {
    let dir = TempDir::new("compfs");
    let so = common::build_shared_object(dir.path(), "libexample.so", None, &[]);
    let srv = Server::unix(&["-lrumpvfs", "-m", so.to_str().unwrap()]);
    let mut c = srv.client();
    c.mkdir("/mnt", 0o755).unwrap();
    c.mount("examplefs", "/mnt", 0, None).unwrap();
    let fd = c.open("/mnt/README", client::fs::O_RDONLY, 0).unwrap();
    let mut b = [0u8; 64];
    let n = c.pread(fd, &mut b, 0).unwrap();
    assert_eq!(&b[..n], b"Hello from the example component.\n");
    c.close(fd).unwrap();
    assert_eq!(c.readlink("/mnt/dir/link").unwrap(), b"../README");
    assert_eq!(
        c.stat("/mnt/dir/link").unwrap().size,
        34,
        "followed to README"
    );
    assert_eq!(c.stat("/mnt/README").unwrap().mode & 0o7777, 0o444);
    let st = c.statvfs("/mnt").unwrap();
    assert_eq!(st.fstypename, "examplefs");
    // Writable like tmpfs.
    let fd = c
        .open("/mnt/new", client::fs::O_CREAT | client::fs::O_RDWR, 0o644)
        .unwrap();
    c.pwrite(fd, b"x", 0).unwrap();
    c.close(fd).unwrap();
    assert_eq!(modctl_unload(&mut c, "example"), Err(EBUSY), "mounted");
    c.unmount("/mnt", 0).unwrap();
    modctl_unload(&mut c, "example").unwrap();
    assert_eq!(
        c.mount("examplefs", "/mnt", 0, None).unwrap_err().errno(),
        Some(ENODEV)
    );
}
