//! Fuzz harness for the kernel's syscall layer: argument decoding and everything behind it.
//!
//! `syscalls(data)` boots a kernel (with the VFS), spawns guest processes and runs a
//! sequence of syscalls chosen by the input: numbers (mostly implemented ones, sometimes any),
//! argument slots (small descriptors, flags, lengths, addresses, raw words) and the answers of
//! the client's memory (`FuzzMem`: copyin returns input bytes, copyinstr a path from a small
//! dictionary or raw bytes, either may fail with `EFAULT`). Calls that wait stay pending while
//! later ones run (a pipe read waits for a later write, a lock wait for an unlock), as the
//! session's tasks do. The checks:
//!
//! * nothing panics; nothing halts (`reboot` is sent only by processes that gave up root);
//!   every errno is one NetBSD defines; `read`/`write` never claim more bytes
//!   than asked;
//! * `Kernel::begin_exit` ends every wait: after it, each pending call of that process
//!   completes within a bounded number of polls (what the session relies on at disconnect);
//! * after every process has exited, no process and no advisory lock is left in the kernel.
//!
//! The same file is compiled into `kernel/tests/fuzz_replay.rs` for stable `cargo test`.

#![allow(non_upper_case_globals)] // NetBSD's SYS_* names in patterns

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use kernel::abi::sysnum::*;
use kernel::{BootConfig, Errno, Host, Kernel, Proc, SyscallOutcome, UserMem};

/// Longest sequence of operations one input runs.
const MAX_OPS: usize = 48;
/// Processes alive at once.
const MAX_PROCS: usize = 3;
/// Polls given to a call before it counts as waiting.
const POLLS_PER_STEP: usize = 4;
/// Polls a call may need to finish once its process is exiting.
const POLLS_AFTER_EXIT: usize = 1000;
/// Largest single copyin the memory answers (a client's buffers are finite: beyond, `EFAULT`).
const MAX_COPY_BYTES: usize = 1 << 16;
/// Bytes all copies of one run may move in total; then every copy is `EFAULT`. Without
/// it a 6 EiB `writev` to the console would copy forever (first finding of the fuzzer: the
/// memory of a real client ends, the fuzzer's did not).
const MAX_COPY_TOTAL_BYTES: usize = 1 << 20;

/// The fuzzer's bytes, read front to back; zeros once exhausted.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Paths the memory answers COPYINSTR with (NUL-terminated), chosen by one input byte.
const PATHS: &[&[u8]] = &[
    b"/tmp/a\0",
    b"/tmp/b\0",
    b"/tmp\0",
    b"/\0",
    b"a\0",
    b"..\0",
    b"/tmp/a/b\0",
    b"/dev/null\0",
    b"/dev/zero\0",
    b"/tmp/fifo\0",
    b"/tmp/d/\0",
    b"/tmp/./a/../b\0",
    b"\0",
    b"/tmp/l\0",
    b"tmpfs\0",
    b"/tmp/d\0",
];

/// Client memory answered from the input. Shared by every process of one run (addresses
/// mean nothing here: only the answers matter).
struct FuzzMem<'a> {
    input: Rc<RefCell<Input<'a>>>,
    copied: std::cell::Cell<usize>,
}

impl UserMem for FuzzMem<'_> {
    async fn copyin(&self, _addr: u64, len: usize) -> kernel::Result<Vec<u8>> {
        let mut inp = self.input.borrow_mut();
        let total = self.copied.get().saturating_add(len);
        if inp.byte() == 0xff || len > MAX_COPY_BYTES || total > MAX_COPY_TOTAL_BYTES {
            return Err(Errno::EFAULT);
        }
        self.copied.set(total);
        let mut v = inp.bytes(len).to_vec();
        v.resize(len, 0x5a);
        Ok(v)
    }

    async fn copyinstr(&self, _addr: u64, maxlen: usize) -> kernel::Result<Vec<u8>> {
        let mut inp = self.input.borrow_mut();
        let pick = usize::from(inp.byte());
        let mut v = match pick {
            0xff => return Err(Errno::EFAULT),
            0xf0..=0xfe => {
                let n = usize::from(inp.byte()) * 8;
                let raw = inp.bytes(n);
                let end = raw
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(raw.len(), |i| i + 1);
                raw[..end].to_vec()
            }
            0xe0..=0xef => {
                // A long path of `a/` components, NUL-terminated.
                let n = usize::from(inp.byte()) * 8;
                let mut p = b"/tmp/".to_vec();
                p.extend(vec![b'a'; n]);
                p.push(0);
                p
            }
            _ => PATHS[pick % PATHS.len()].to_vec(),
        };
        v.truncate(maxlen);
        Ok(v)
    }

    async fn copyout(&self, _addr: u64, data: &[u8]) -> kernel::Result<()> {
        let total = self.copied.get().saturating_add(data.len());
        if self.input.borrow_mut().byte() == 0xff || total > MAX_COPY_TOTAL_BYTES {
            return Err(Errno::EFAULT);
        }
        self.copied.set(total);
        Ok(())
    }

    fn raise(&self, _signo: u32) {}
}

/// A host with a silent console and fixed clocks (runs are reproducible).
struct QuietHost;

impl Host for QuietHost {
    fn console_write(&self, _data: &[u8]) {}
    fn clock_realtime(&self) -> (i64, i64) {
        (1_700_000_000, 0)
    }
    fn clock_monotonic(&self) -> (i64, i64) {
        (100, 0)
    }
    fn random(&self, buf: &mut [u8]) {
        buf.fill(0xa5);
    }
}

/// Syscall numbers the input picks from by index (reboot apart: selector 0xfe, sent only by a
/// process that gave up root, which must get `EPERM`, never a halt — issue 19).
const SYSCALLS: &[u32] = &[
    SYS_read,
    SYS_write,
    SYS_open,
    SYS_close,
    SYS_link,
    SYS_unlink,
    SYS_chdir,
    SYS_fchdir,
    SYS_chmod,
    SYS_chown,
    SYS_getpid,
    SYS_setuid,
    SYS_getuid,
    SYS_geteuid,
    SYS_access,
    SYS_sync,
    SYS_getppid,
    SYS_dup,
    SYS_pipe,
    SYS_getegid,
    SYS_getgid,
    SYS___getlogin,
    SYS___setlogin,
    SYS_ioctl,
    SYS_symlink,
    SYS_readlink,
    SYS_umask,
    SYS_chroot,
    SYS_getgroups,
    SYS_setgroups,
    SYS_dup2,
    SYS_fcntl,
    SYS_fsync,
    SYS_readv,
    SYS_writev,
    SYS_fchown,
    SYS_fchmod,
    SYS_setreuid,
    SYS_setregid,
    SYS_rename,
    SYS_flock,
    SYS_mkfifo,
    SYS_mkdir,
    SYS_rmdir,
    SYS_pread,
    SYS_pwrite,
    SYS_setgid,
    SYS_setegid,
    SYS_seteuid,
    SYS_pathconf,
    SYS_fpathconf,
    SYS_lseek,
    SYS_truncate,
    SYS_ftruncate,
    SYS_fdatasync,
    SYS___posix_rename,
    SYS_lchmod,
    SYS_lchown,
    SYS_preadv,
    SYS_pwritev,
    SYS___getcwd,
    SYS_issetugid,
    SYS_fsync_range,
    SYS_getvfsstat,
    SYS_statvfs1,
    SYS_fstatvfs1,
    SYS___getdents30,
    SYS___posix_fadvise50,
    SYS___gettimeofday50,
    SYS___utimes50,
    SYS___futimes50,
    SYS___lutimes50,
    SYS___clock_gettime50,
    SYS___stat50,
    SYS___fstat50,
    SYS___lstat50,
    SYS___mknod50,
    SYS_pipe2,
    SYS_dup3,
    SYS_linkat,
    SYS_renameat,
    SYS_mkfifoat,
    SYS_mknodat,
    SYS_mkdirat,
    SYS_faccessat,
    SYS_fchmodat,
    SYS_fchownat,
    SYS_fstatat,
    SYS_utimensat,
    SYS_openat,
    SYS_readlinkat,
    SYS_symlinkat,
    SYS_unlinkat,
    SYS_futimens,
    SYS_posix_fallocate,
    SYS_fdiscard,
    SYS___getvfsstat90,
    SYS___statvfs190,
    SYS___fstatvfs190,
    SYS_lpathconf,
    SYS___dup3100,
    SYS___mount50,
    SYS_unmount,
    SYS_modctl,
];

/// One argument slot, shaped by a selector byte so that plausible values are common.
fn arg(inp: &mut Input<'_>) -> u64 {
    match inp.byte() % 8 {
        0 | 1 => u64::from(inp.byte() % 8), // a descriptor or small count
        2 => (-100i64) as u64,              // AT_FDCWD
        3 => u64::from(inp.u32()),          // flags, modes, ids
        4 => 0x1000 + u64::from(inp.byte()) * 64, // a user address
        5 => u64::from(inp.u32() % 9000),   // a length
        6 => 0,                             // NULL / zero
        _ => inp.u64(),                     // anything
    }
}

type Call<'a> = Pin<Box<dyn Future<Output = SyscallOutcome> + 'a>>;

/// A syscall in flight: which process and call, and its future.
struct Pending<'a> {
    proc: usize,
    nr: u32,
    args: [u64; 8],
    fut: Call<'a>,
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Checks what every syscall result must satisfy.
fn check(nr: u32, args: &[u64; 8], out: &SyscallOutcome) {
    assert!(out.halt.is_none(), "syscall {nr} asked for a halt");
    match out.result {
        Err(e) => assert_ne!(e.name(), "E?", "syscall {nr} returned unknown errno {e:?}"),
        Ok(rv) => {
            if matches!(nr, SYS_read | SYS_write | SYS_pread | SYS_pwrite) {
                assert!(
                    rv[0] >= 0 && rv[0] as u64 <= args[2],
                    "syscall {nr}: {} bytes for a request of {}",
                    rv[0],
                    args[2]
                );
            }
        }
    }
}

/// Target `syscalls`: see the module documentation for the input format and the checks.
pub fn syscalls(data: &[u8]) {
    let input = Rc::new(RefCell::new(Input { data }));
    let cfg = BootConfig {
        ncpu: 1,
        verbose: false,
        hostname: "rump-00001.fuzz".into(),
        vfs: true,
        mem_limit_bytes: Some(8 << 20),
        filesystems: vec![kernel::fs::FsKind::Tmpfs],
        dev: false,
    };
    let k: Arc<Kernel> = Kernel::boot(cfg, Arc::new(QuietHost)).expect("boot");
    let mem = FuzzMem {
        input: input.clone(),
        copied: std::cell::Cell::new(0),
    };
    let mut procs: Vec<Arc<Proc>> = vec![k.spawn_guest(b"fuzz").expect("spawn")];
    run(&k, &mem, &input, &mut procs);
    assert_eq!(k.process_count(), 0, "processes left after every exit");
    assert_eq!(
        k.locks().objects(),
        0,
        "advisory locks left after every exit"
    );
}

fn run<'m>(
    k: &'m Arc<Kernel>,
    mem: &'m FuzzMem<'_>,
    input: &Rc<RefCell<Input<'_>>>,
    procs: &mut Vec<Arc<Proc>>,
) {
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    let mut pending: Vec<Pending<'m>> = Vec::new();
    for _ in 0..MAX_OPS {
        if input.borrow().is_empty() {
            break;
        }
        let op = input.borrow_mut().byte();
        match op % 16 {
            0..=11 => {
                let (who, nr, args) = {
                    let mut inp = input.borrow_mut();
                    let who = usize::from(inp.byte()) % procs.len();
                    let sel = inp.byte();
                    let nr = if sel == 0xff {
                        inp.u32() % 1024
                    } else if sel == 0xfe {
                        SYS_reboot
                    } else {
                        SYSCALLS[usize::from(sel) % SYSCALLS.len()]
                    };
                    let mut args = [0u64; 8];
                    for a in &mut args[..3 + usize::from(inp.byte() % 6)] {
                        *a = arg(&mut inp);
                    }
                    (who, nr, args)
                };
                let p = procs[who].clone();
                if nr == SYS_reboot && p.cred().is_root() {
                    continue;
                }
                let fut: Call<'m> = Box::pin(async move { k.syscall(&p, mem, nr, &args).await });
                pending.push(Pending {
                    proc: who,
                    nr,
                    args,
                    fut,
                });
                poll_all(&mut pending, &mut cx, POLLS_PER_STEP);
            }
            12 => poll_all(&mut pending, &mut cx, POLLS_PER_STEP),
            13 if procs.len() < MAX_PROCS => {
                // PREFORK + FORK handshake: a child with a copy of the descriptor table.
                let who = usize::from(input.borrow_mut().byte()) % procs.len();
                if let Ok(child) = k.prefork(&procs[who]) {
                    if let Ok(c) = k.adopt_fork(child, b"child") {
                        procs.push(c);
                    }
                }
            }
            14 => {
                // EXEC handshake once the process is idle (as the session does).
                let who = usize::from(input.borrow_mut().byte()) % procs.len();
                if !pending.iter().any(|c| c.proc == who) {
                    k.exec(&procs[who], b"exec");
                }
            }
            _ => {
                // A disconnect: every wait of the process ends, then the process exits.
                let who = usize::from(input.borrow_mut().byte()) % procs.len();
                exit_proc(k, procs, who, &mut pending, &mut cx);
                if procs.is_empty() {
                    return;
                }
            }
        }
    }
    while !procs.is_empty() {
        exit_proc(k, procs, procs.len() - 1, &mut pending, &mut cx);
    }
}

/// Polls every pending call up to `polls` times; finished ones are checked and dropped.
fn poll_all(pending: &mut Vec<Pending<'_>>, cx: &mut Context<'_>, polls: usize) {
    for _ in 0..polls {
        pending.retain_mut(|c| match c.fut.as_mut().poll(cx) {
            Poll::Ready(out) => {
                check(c.nr, &c.args, &out);
                false
            }
            Poll::Pending => true,
        });
        if pending.is_empty() {
            return;
        }
    }
}

/// Disconnect of process `who`: `begin_exit`, its calls must all finish, then it exits.
/// Indices of later processes shift down by one.
fn exit_proc(
    k: &Kernel,
    procs: &mut Vec<Arc<Proc>>,
    who: usize,
    pending: &mut Vec<Pending<'_>>,
    cx: &mut Context<'_>,
) {
    let p = procs[who].clone();
    k.begin_exit(&p);
    for _ in 0..POLLS_AFTER_EXIT {
        if !pending.iter().any(|c| c.proc == who) {
            break;
        }
        poll_all(pending, cx, 1);
    }
    let stuck: Vec<u32> = pending
        .iter()
        .filter(|c| c.proc == who)
        .map(|c| c.nr)
        .collect();
    assert!(
        stuck.is_empty(),
        "syscalls {stuck:?} still waiting after begin_exit"
    );
    k.exit_process(&p);
    procs.remove(who);
    for c in pending.iter_mut() {
        if c.proc > who {
            c.proc -= 1;
        }
    }
}
