//! Module table and modctl tests: built-in file-system modules, unload rules, external
//! system calls, MODCTL_STAT's layout, and what a client may load.

use std::sync::Arc;

use super::*;
use crate::abi::sysnum::{SYS___mount50, SYS_modctl, SYS_unmount};
use crate::hostio::StdFile;
use crate::sys::modctl::{MODCTL_EXISTS, MODCTL_LOAD, MODCTL_STAT, MODCTL_UNLOAD, MODSTAT_LEN};
use crate::testutil::{int, Fixture};

fn cstr(f: &Fixture, at: u64, s: &str) -> u64 {
    f.mem.map(at, format!("{s}\0").as_bytes());
    at
}

fn modctl_load(f: &Fixture, path: &str) -> Result<[i64; 2]> {
    let p = cstr(f, 0x1_0000 + path.len() as u64 * 0x100, path);
    let ml = 0x9_0000 + path.len() as u64 * 0x100;
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&p.to_le_bytes());
    f.mem.map(ml, &b);
    f.call(SYS_modctl, &[int(MODCTL_LOAD), ml])
}

fn stat_names(f: &Fixture) -> Vec<(String, u32, u32, u32)> {
    let (iov, buf) = (0x5_0000u64, 0x6_0000u64);
    f.mem.map_zero(buf, 4096);
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&buf.to_le_bytes());
    v[8..].copy_from_slice(&4096u64.to_le_bytes());
    f.mem.map(iov, &v);
    f.ok(SYS_modctl, &[int(MODCTL_STAT), iov]);
    let out = f.mem.read(buf, 4096);
    let n = i32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
    let total = u64::from_le_bytes(f.mem.read(iov + 8, 8).try_into().unwrap());
    assert_eq!(
        total as usize,
        4 + n * MODSTAT_LEN + 1,
        "iov_len becomes the full size"
    );
    (0..n)
        .map(|i| {
            let ms = &out[4 + i * MODSTAT_LEN..4 + (i + 1) * MODSTAT_LEN];
            let end = ms[..32].iter().position(|&b| b == 0).unwrap();
            let u = |o: usize| u32::from_le_bytes(ms[o..o + 4].try_into().unwrap());
            (
                String::from_utf8(ms[..end].to_vec()).unwrap(),
                u(40),
                u(44),
                u(52),
            )
        })
        .collect()
}

fn mount_tmpfs(f: &Fixture, dir: &str) -> Result<[i64; 2]> {
    let ty = cstr(f, 0x2_0000, "tmpfs");
    let path = cstr(f, 0x2_1000, dir);
    // struct tmpfs_args: version 1, everything else 0 (defaults).
    let mut args = [0u8; 40];
    args[..4].copy_from_slice(&1i32.to_le_bytes());
    f.mem.map(0x2_2000, &args);
    f.call(SYS___mount50, &[ty, path, 0, 0x2_2000, 40])
}

#[test]
fn a_builtin_file_system_module_loads_lists_and_unloads_unless_mounted() {
    let f = Fixture::new();
    // The fixture has tmpfs built in; an unused built-in unloads like a loaded module.
    f.k.modules().unload(&f.k, "tmpfs").unwrap();
    assert!(!f.k.has_filesystem(FsKind::Tmpfs));
    assert_eq!(mount_tmpfs(&f, "/tmp"), Err(Errno::ENODEV));
    assert_eq!(modctl_load(&f, "nosuchmodule"), Err(Errno::ENOENT));
    assert_eq!(modctl_load(&f, "tmpfs"), Ok([0, 0]));
    assert_eq!(modctl_load(&f, "tmpfs"), Err(Errno::EEXIST));
    assert_eq!(
        stat_names(&f),
        vec![("tmpfs".to_string(), 2, 2, 0), ("ffs".to_string(), 0, 2, 0)],
        "loaded modules first, then built-ins"
    );
    mount_tmpfs(&f, "/tmp").unwrap();
    let name = cstr(&f, 0x3_0000, "tmpfs");
    assert_eq!(
        f.call(SYS_modctl, &[int(MODCTL_UNLOAD), name]),
        Err(Errno::EBUSY)
    );
    f.ok(SYS_unmount, &[cstr(&f, 0x3_1000, "/tmp"), 0]);
    f.ok(SYS_modctl, &[int(MODCTL_UNLOAD), name]);
    assert_eq!(mount_tmpfs(&f, "/tmp"), Err(Errno::ENODEV));
    assert_eq!(
        f.call(SYS_modctl, &[int(MODCTL_UNLOAD), name]),
        Err(Errno::ENOENT)
    );
    assert_eq!(f.call(SYS_modctl, &[int(MODCTL_EXISTS), 0]), Ok([0, 0]));
    assert_eq!(
        f.call(SYS_modctl, &[int(MODCTL_EXISTS), 7]),
        Err(Errno::EINVAL)
    );
    assert_eq!(f.call(SYS_modctl, &[99, 0]), Err(Errno::EINVAL));
}

#[test]
fn builtins_from_the_command_line_are_listed_as_kernel_modules() {
    let m = Modules::new(&[FsKind::Rumpfs, FsKind::Tmpfs]);
    assert!(m.has_fs(FsKind::Tmpfs));
    let st = m.stat();
    assert_eq!(st.len(), 1);
    assert_eq!(
        (st[0].source, st[0].class, st[0].refcnt),
        (ModSource::Kernel, ModClass::Vfs, 0)
    );
    assert_eq!(m.load_builtin("tmpfs"), Err(Errno::EEXIST));
}

struct Add;

impl ExtSyscall for Add {
    fn spec(&self) -> ExtSpec {
        ExtSpec {
            input: Some((0, 1)),
            output: Some((2, 3)),
            max_len: 64,
        }
    }

    fn call(&self, args: &[u64; 8], input: &[u8], output: &mut [u8]) -> Result<([i64; 2], usize)> {
        if input.is_empty() {
            return Err(Errno::EINVAL);
        }
        let n = input.len().min(output.len());
        for (o, i) in output.iter_mut().zip(input) {
            *o = i.to_ascii_uppercase();
        }
        Ok(([args[4] as i64 + 1, 0], n))
    }
}

#[test]
fn external_system_calls_copy_their_buffers_in_and_out() {
    let f = Fixture::new();
    let m = f.k.modules();
    assert_eq!(f.call(210, &[]), Err(Errno::ENOSYS));
    assert_eq!(m.add_syscall("ext", 300, Arc::new(Add)), Err(Errno::EINVAL));
    m.add_syscall("ext", 210, Arc::new(Add)).unwrap();
    assert_eq!(
        m.add_syscall("other", 210, Arc::new(Add)),
        Err(Errno::EEXIST)
    );
    f.mem.map(0x7_0000, b"hello");
    f.mem.map_zero(0x7_1000, 8);
    assert_eq!(f.call(210, &[0x7_0000, 5, 0x7_1000, 8, 41]), Ok([42, 0]));
    assert_eq!(f.mem.read(0x7_1000, 8), b"HELLO\0\0\0");
    assert_eq!(
        f.call(210, &[0x7_0000, 65, 0x7_1000, 8, 0]),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        f.call(210, &[0x7_0000, 0, 0x7_1000, 8, 0]),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        f.call(210, &[0xdead_0000, 5, 0x7_1000, 8, 0]),
        Err(Errno::EFAULT)
    );
    m.forget_owned(&f.k, "ext");
    assert_eq!(f.call(210, &[]), Err(Errno::ENOSYS));
}

/// A host file the operator marked as a module (the server's is `RingFile::module`).
struct ModFile(StdFile, std::path::PathBuf);

impl crate::hostio::HostFile for ModFile {
    fn read_at(
        &self,
        buf: Vec<u8>,
        off: u64,
    ) -> crate::hostio::HostIo<'_, crate::hostio::IoResult> {
        self.0.read_at(buf, off)
    }
    fn write_at(
        &self,
        buf: Vec<u8>,
        off: u64,
    ) -> crate::hostio::HostIo<'_, crate::hostio::IoResult> {
        self.0.write_at(buf, off)
    }
    fn sync_data(&self) -> crate::hostio::HostIo<'_, Result<()>> {
        self.0.sync_data()
    }
    fn len(&self) -> Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.0.set_len(len)
    }
    fn writable(&self) -> bool {
        false
    }
    fn host_path(&self) -> Option<std::path::PathBuf> {
        Some(self.1.clone())
    }
    fn module_path(&self) -> Option<std::path::PathBuf> {
        Some(self.1.clone())
    }
}

#[test]
fn clients_load_only_host_files_the_operator_marked_as_modules() {
    let f = Fixture::new();
    f.k.modules().unload(&f.k, "tmpfs").unwrap();
    let dir = std::env::temp_dir().join(format!("modtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kmod = dir.join("tmpfs.kmod");
    std::fs::write(&kmod, b"\x7fELF not really").unwrap();
    let reg = crate::fs::rumpfs::etfs::EtfsType::Reg;
    let host: Arc<dyn crate::hostio::HostFile> = Arc::new(ModFile(
        StdFile::open(&kmod, false, false).unwrap(),
        kmod.clone(),
    ));
    f.k.etfs_register(b"/stand/tmpfs.kmod", host, reg, 0, None)
        .unwrap();
    // The same host file behind a key not marked as a module (even read-only) is refused.
    let plain: Arc<dyn crate::hostio::HostFile> =
        Arc::new(StdFile::open(&kmod, false, false).unwrap());
    f.k.etfs_register(b"/p/tmpfs.kmod", plain, reg, 0, None)
        .unwrap();
    assert_eq!(modctl_load(&f, "/p/tmpfs.kmod"), Err(Errno::EPERM));
    // A file a client wrote into rumpfs is never loaded as host code.
    let fd = f.ok(
        crate::abi::sysnum::SYS_open,
        &[cstr(&f, 0x4_0000, "/tmp/evil.so"), 0x202, 0o755],
    );
    f.ok(crate::abi::sysnum::SYS_close, &[fd as u64]);
    assert_eq!(modctl_load(&f, "/tmp/evil.so"), Err(Errno::EPERM));
    assert_eq!(modctl_load(&f, "/tmp"), Err(Errno::EFTYPE));
    assert_eq!(modctl_load(&f, "/no/such"), Err(Errno::ENOENT));
    assert_eq!(modctl_load(&f, "/stand/tmpfs.kmod"), Ok([0, 0]));
    assert!(f.k.has_filesystem(FsKind::Tmpfs));
    // Another host file that is no built-in needs the server's loader (none here).
    let other = dir.join("libfoo.so");
    std::fs::write(&other, b"x").unwrap();
    assert_eq!(
        f.k.modules().load_host_file(&f.k, &other),
        Err(Errno::ENOEXEC)
    );
    assert_eq!(f.k.modules().load_host_file(&f.k, &dir), Err(Errno::EFTYPE));
    let _ = std::fs::remove_dir_all(dir);
}

struct Tree(&'static [u8]);

impl ExtFs for Tree {
    fn populate(&self, p: &mut dyn Populate) -> Result<()> {
        p.mkdir(b"d", 0o755)?;
        p.add_file(b"/d/f", 0o600, b"data")?;
        p.symlink(b"d/l", b"f")?;
        p.add_file(self.0, 0o644, b"")
    }
}

fn mount_comp(f: &Fixture, ty: &str) -> Result<[i64; 2]> {
    // Test memory serves the first region mapped at an address: one address per name.
    let at = 0x20_0000 + ty.bytes().map(u64::from).sum::<u64>() * 0x100;
    let t = cstr(f, at, ty);
    let path = cstr(f, 0x2_4000, "/tmp");
    f.call(SYS___mount50, &[t, path, 0, 0, 0])
}

#[test]
fn component_file_systems_are_filled_inside_their_root_only() {
    let f = Fixture::new();
    let m = f.k.modules();
    assert_eq!(mount_comp(&f, "treefs"), Err(Errno::ENODEV));
    assert_eq!(
        m.add_fstype("c", "tmpfs", Arc::new(Tree(b"x"))),
        Err(Errno::EEXIST),
        "a built-in name"
    );
    m.add_fstype("c", "treefs", Arc::new(Tree(b"x"))).unwrap();
    m.add_fstype("c", "escapefs", Arc::new(Tree(b"../../etc/x")))
        .unwrap();
    m.add_fstype("c", "dotfs", Arc::new(Tree(b"d/./y")))
        .unwrap();
    assert_eq!(mount_comp(&f, "escapefs"), Err(Errno::EINVAL));
    assert_eq!(mount_comp(&f, "dotfs"), Err(Errno::EINVAL));
    assert_eq!(
        f.k.vfs().unwrap().mounts().len(),
        1,
        "a failed fill leaves no mount"
    );
    mount_comp(&f, "treefs").unwrap();
    let v = f.k.vfs().unwrap();
    let mnt = v.mounts().pop().unwrap();
    assert_eq!(mnt.type_name(), b"treefs");
    assert_eq!(mnt.statvfs().fstypename, b"treefs");
    let d = mnt.root().dir().unwrap().get(b"d").unwrap().clone();
    assert!(d.dir().unwrap().get(b"f").is_some());
    assert!(d.dir().unwrap().get(b"l").is_some());
    m.forget_owned(&f.k, "c");
    assert!(m.fstype(b"treefs").is_none());
}

/// NetBSD 5–8 clients ask with command 2 and get 392-byte records, the same modules as the
/// new layout, and the full size back in the iovec (also with no room: a size probe).
#[test]
fn old_modstat_layout_answers_command_2() {
    use crate::sys::modctl::{MODCTL_OSTAT, OMODSTAT_LEN};
    let f = Fixture::new();
    let new = stat_names(&f);
    let (iov, buf) = (0x7_0000u64, 0x7_1000u64);
    f.mem.map_zero(buf, 4096);
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&buf.to_le_bytes());
    v[8..].copy_from_slice(&4096u64.to_le_bytes());
    f.mem.map(iov, &v);
    f.ok(SYS_modctl, &[int(MODCTL_OSTAT), iov]);
    let total = u64::from_le_bytes(f.mem.read(iov + 8, 8).try_into().unwrap()) as usize;
    assert_eq!(total, new.len() * OMODSTAT_LEN);
    let out = f.mem.read(buf, total);
    let old: Vec<(String, u32, u32, u32)> = out
        .chunks_exact(OMODSTAT_LEN)
        .map(|ms| {
            let end = ms[..32].iter().position(|&b| b == 0).unwrap();
            let u = |o: usize| u32::from_le_bytes(ms[o..o + 4].try_into().unwrap());
            assert!(ms[32..352].iter().all(|&b| b == 0), "no required modules");
            let name = String::from_utf8(ms[..end].to_vec()).unwrap();
            (name, u(360), u(364), u(372))
        })
        .collect();
    assert_eq!(old, new);
    // A size probe: nothing copied, the size reported.
    let (iov0, buf0) = (0x7_2000u64, 0x7_3000u64);
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&buf0.to_le_bytes());
    f.mem.map(iov0, &v);
    f.mem.clear_requests();
    f.ok(SYS_modctl, &[int(MODCTL_OSTAT), iov0]);
    let total0 = u64::from_le_bytes(f.mem.read(iov0 + 8, 8).try_into().unwrap()) as usize;
    assert_eq!(total0, total);
    assert_eq!(f.mem.requests().len(), 2, "the iovec in and out only");
}
