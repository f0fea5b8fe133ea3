//! A kernel with the net faction attached, a client memory of mapped regions, and a
//! `block_on`: enough to drive the socket calls without a server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use kernel::{BootConfig, Errno, Kernel, Proc, StdHost, UserMem};

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `f` to completion on this thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let w = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&w);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Client memory: regions by address.
#[derive(Default)]
pub struct Mem {
    regions: Mutex<BTreeMap<u64, Vec<u8>>>,
    /// Signals raised.
    pub signals: Mutex<Vec<u32>>,
}

impl Mem {
    /// Maps `data` at `addr`.
    pub fn map(&self, addr: u64, data: &[u8]) {
        self.regions.lock().unwrap().insert(addr, data.to_vec());
    }

    /// Reads `len` bytes at `addr`.
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let r = self.regions.lock().unwrap();
        let (base, v) = r.range(..=addr).next_back().expect("mapped");
        let off = (addr - base) as usize;
        v[off..off + len].to_vec()
    }

    fn find(&self, addr: u64, len: usize) -> Option<(u64, usize)> {
        let r = self.regions.lock().unwrap();
        let (base, v) = r.range(..=addr).next_back()?;
        let off = (addr - base) as usize;
        (off + len <= v.len()).then_some((*base, off))
    }
}

impl UserMem for Mem {
    async fn copyin(&self, addr: u64, len: usize) -> kernel::Result<Vec<u8>> {
        let (base, off) = self.find(addr, len).ok_or(Errno::EFAULT)?;
        Ok(self.regions.lock().unwrap()[&base][off..off + len].to_vec())
    }
    async fn copyinstr(&self, addr: u64, maxlen: usize) -> kernel::Result<Vec<u8>> {
        let (base, off) = self.find(addr, 0).ok_or(Errno::EFAULT)?;
        let r = self.regions.lock().unwrap();
        let v = &r[&base][off..];
        let end = v.iter().position(|&b| b == 0).map_or(v.len(), |i| i + 1);
        Ok(v[..end.min(maxlen)].to_vec())
    }
    async fn copyout(&self, addr: u64, data: &[u8]) -> kernel::Result<()> {
        let (base, off) = self.find(addr, data.len()).ok_or(Errno::EFAULT)?;
        self.regions.lock().unwrap().get_mut(&base).unwrap()[off..off + data.len()]
            .copy_from_slice(data);
        Ok(())
    }
    fn raise(&self, signo: u32) {
        self.signals.lock().unwrap().push(signo);
    }
}

/// A booted kernel with the net faction (AF_LOCAL) and a memory budget.
pub fn boot(limit: Option<u64>) -> Arc<Kernel> {
    boot_net(limit).0
}

/// [`boot`], with the socket layer's registry.
pub fn boot_net(limit: Option<u64>) -> (Arc<Kernel>, Arc<net::Net>) {
    let cfg = BootConfig {
        ncpu: 1,
        verbose: false,
        hostname: "rump-00001.t".into(),
        vfs: true,
        mem_limit_bytes: limit,
        filesystems: Vec::new(),
        dev: false,
    };
    let k = Kernel::boot(cfg, Arc::new(StdHost)).expect("boot");
    let net = net::attach(&k, true).expect("attach");
    (k, net)
}

/// One process and its memory.
pub struct P {
    pub k: Arc<Kernel>,
    pub p: Arc<Proc>,
    pub mem: Mem,
}

impl P {
    pub fn new(k: &Arc<Kernel>) -> P {
        P {
            k: k.clone(),
            p: k.spawn_guest(b"t").expect("spawn"),
            mem: Mem::default(),
        }
    }

    /// Runs syscall `nr`.
    pub fn sys(&self, nr: u32, args: &[u64]) -> kernel::Result<i64> {
        let mut slots = [0u64; 8];
        slots[..args.len()].copy_from_slice(args);
        block_on(self.k.syscall(&self.p, &self.mem, nr, &slots))
            .result
            .map(|r| r[0])
    }

    pub fn socketpair(&self, ty: i32) -> (i32, i32) {
        self.mem.map(0x9000, &[0; 8]);
        self.sys(net::abi::SYS_SOCKETPAIR, &[1, ty as u64, 0, 0x9000])
            .expect("socketpair");
        let b = self.mem.read(0x9000, 8);
        (
            i32::from_le_bytes(b[..4].try_into().unwrap()),
            i32::from_le_bytes(b[4..].try_into().unwrap()),
        )
    }

    /// sendmsg of `data` with SCM_RIGHTS of `fds` (regions at 0xa000…).
    pub fn send_rights(&self, s: i32, data: &[u8], fds: &[i32]) -> kernel::Result<i64> {
        self.mem.map(0xa000, data);
        let mut iov = 0xa000u64.to_le_bytes().to_vec();
        iov.extend_from_slice(&(data.len() as u64).to_le_bytes());
        self.mem.map(0xb000, &iov);
        let len = 16 + 4 * fds.len();
        let mut cm = (len as u32).to_le_bytes().to_vec();
        cm.extend_from_slice(&0xffffi32.to_le_bytes());
        cm.extend_from_slice(&1i32.to_le_bytes());
        cm.extend_from_slice(&[0; 4]);
        for f in fds {
            cm.extend_from_slice(&f.to_le_bytes());
        }
        self.mem.map(0xc000, &cm);
        let mut m = vec![0u8; 48];
        m[16..24].copy_from_slice(&0xb000u64.to_le_bytes());
        m[24..28].copy_from_slice(&1i32.to_le_bytes());
        m[32..40].copy_from_slice(&0xc000u64.to_le_bytes());
        m[40..44].copy_from_slice(&(cm.len() as u32).to_le_bytes());
        self.mem.map(0xd000, &m);
        self.sys(net::abi::SYS_SENDMSG, &[s as u64, 0xd000, 0])
    }

    pub fn close(&self, fd: i32) {
        self.sys(6, &[fd as u64]).expect("close");
    }
}
