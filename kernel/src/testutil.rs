//! Test helpers: a no-dependency `block_on`, fake client memory and a capturing host.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::{Errno, Host, Result, UserMem};

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fut` to completion; test futures never really wait, so spinning is fine.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future did not complete");
}

/// One request the kernel made of a [`TestMem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Req {
    /// COPYIN of `len` bytes at `addr`.
    In(u64, usize),
    /// COPYINSTR of at most `maxlen` bytes at `addr`.
    InStr(u64, usize),
    /// COPYOUT of the bytes at `addr`.
    Out(u64, Vec<u8>),
    /// RAISE of a signal.
    Raise(u32),
}

/// Fake client memory: mapped regions by base address; records every request.
#[derive(Default)]
pub struct TestMem {
    regions: RefCell<Vec<(u64, Vec<u8>)>>,
    log: RefCell<Vec<Req>>,
}

impl TestMem {
    /// No memory mapped.
    pub fn new() -> TestMem {
        TestMem::default()
    }

    /// Maps `data` at `base`.
    pub fn map(&self, base: u64, data: &[u8]) {
        self.regions.borrow_mut().push((base, data.to_vec()));
    }

    /// Maps `len` zero bytes at `base`.
    pub fn map_zero(&self, base: u64, len: usize) {
        self.map(base, &vec![0; len]);
    }

    /// Reads mapped memory (panics if unmapped).
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        self.find(addr, len).expect("unmapped")
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Req> {
        self.log.borrow().clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.log.borrow_mut().clear();
    }

    fn find(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let regions = self.regions.borrow();
        regions.iter().find_map(|(base, data)| {
            let off = usize::try_from(addr.checked_sub(*base)?).ok()?;
            data.get(off..off.checked_add(len)?).map(<[u8]>::to_vec)
        })
    }

    fn tail(&self, addr: u64) -> Option<Vec<u8>> {
        let regions = self.regions.borrow();
        regions.iter().find_map(|(base, data)| {
            let off = usize::try_from(addr.checked_sub(*base)?).ok()?;
            data.get(off..)
                .filter(|t| !t.is_empty())
                .map(<[u8]>::to_vec)
        })
    }
}

impl UserMem for TestMem {
    async fn copyin(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        self.log.borrow_mut().push(Req::In(addr, len));
        self.find(addr, len).ok_or(Errno::EFAULT)
    }

    async fn copyinstr(&self, addr: u64, maxlen: usize) -> Result<Vec<u8>> {
        self.log.borrow_mut().push(Req::InStr(addr, maxlen));
        let mut t = self.tail(addr).ok_or(Errno::EFAULT)?;
        let n = t.iter().position(|&b| b == 0).map_or(t.len(), |i| i + 1);
        t.truncate(n.min(maxlen));
        Ok(t)
    }

    async fn copyout(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.log.borrow_mut().push(Req::Out(addr, data.to_vec()));
        let mut regions = self.regions.borrow_mut();
        for (base, mem) in regions.iter_mut() {
            let Some(off) = addr.checked_sub(*base) else {
                continue;
            };
            let Ok(off) = usize::try_from(off) else {
                continue;
            };
            if let Some(dst) = mem.get_mut(off..off + data.len()) {
                dst.copy_from_slice(data);
                return Ok(());
            }
        }
        Err(Errno::EFAULT)
    }

    fn raise(&self, signo: u32) {
        self.log.borrow_mut().push(Req::Raise(signo));
    }
}

/// A host with captured console output, fixed wall clock and a stepping monotonic clock.
#[derive(Default)]
pub struct TestHost {
    console: Mutex<Vec<u8>>,
    mono_ns: Mutex<i64>,
}

/// The wall-clock time a [`TestHost`] reports.
pub const TEST_REALTIME: (i64, i64) = (1_700_000_000, 123_456_789);

impl TestHost {
    /// Everything written to the console so far.
    pub fn console(&self) -> Vec<u8> {
        self.console.lock().unwrap().clone()
    }
}

impl Host for TestHost {
    fn console_write(&self, data: &[u8]) {
        self.console.lock().unwrap().extend_from_slice(data);
    }

    fn clock_realtime(&self) -> (i64, i64) {
        TEST_REALTIME
    }

    fn clock_monotonic(&self) -> (i64, i64) {
        let mut ns = self.mono_ns.lock().unwrap();
        *ns += 1_500_000_000;
        (*ns / 1_000_000_000, *ns % 1_000_000_000)
    }

    fn random(&self, buf: &mut [u8]) {
        buf.fill(0xa5);
    }
}

/// A booted kernel on a [`TestHost`], and one guest process.
pub struct Fixture {
    /// The kernel.
    pub k: Arc<crate::Kernel>,
    /// Its host.
    pub host: Arc<TestHost>,
    /// A guest process ("test").
    pub p: Arc<crate::Proc>,
    /// The guest's memory.
    pub mem: TestMem,
}

impl Fixture {
    /// Boots and spawns one guest.
    pub fn new() -> Fixture {
        let host = Arc::new(TestHost::default());
        let cfg = crate::BootConfig {
            ncpu: 1,
            verbose: false,
            hostname: "rump-00001.t".into(),
            vfs: true,
            mem_limit_bytes: None,
            filesystems: crate::fs::FsKind::ALL.to_vec(),
            dev: false,
        };
        let k = crate::Kernel::boot(cfg, host.clone()).expect("boot");
        let p = k.spawn_guest(b"test").expect("spawn");
        Fixture {
            k,
            host,
            p,
            mem: TestMem::new(),
        }
    }

    /// Runs syscall `nr` with the given leading argument slots (the rest zero).
    pub fn sys(&self, nr: u32, args: &[u64]) -> crate::SyscallOutcome {
        let mut slots = [0u64; 8];
        slots[..args.len()].copy_from_slice(args);
        block_on(self.k.syscall(&self.p, &self.mem, nr, &slots))
    }

    /// Runs syscall `nr` and returns its result.
    pub fn call(&self, nr: u32, args: &[u64]) -> Result<[i64; 2]> {
        self.sys(nr, args).result
    }

    /// Runs syscall `nr` and returns `retval[0]`, panicking on an error.
    pub fn ok(&self, nr: u32, args: &[u64]) -> i64 {
        match self.call(nr, args) {
            Ok(rv) => rv[0],
            Err(e) => panic!("syscall {nr} failed: {e:?}"),
        }
    }

    /// Runs syscall `nr` and returns its errno, panicking on success.
    pub fn err(&self, nr: u32, args: &[u64]) -> Errno {
        match self.call(nr, args) {
            Ok(rv) => panic!("syscall {nr} succeeded: {rv:?}"),
            Err(e) => e,
        }
    }
}

/// An `int` argument as the client puts it in a slot (low 4 bytes, upper zero).
pub fn int(v: i32) -> u64 {
    u64::from(v as u32)
}
