//! The kernel's two doors, simulated: client memory whose copies complete when the scheduler
//! says (and fail with `EFAULT` once the client is gone, as the session's do), and host files
//! whose every operation waits for the scheduler and may fail as the seeded fault injector
//! decides.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kernel::hostio::{FaultConfig, FaultyFile, HostFile, HostIo, IoResult, MemFile};
use kernel::{Errno, Result, UserMem};

use crate::sched::{gate, Opened, HOST};

/// One client's memory: regions by base address; copies wait for a gate of the client.
pub struct SimMem {
    owner: u64,
    dead: Cell<bool>,
    regions: RefCell<BTreeMap<u64, Vec<u8>>>,
    /// Signals the kernel raised (SIGPIPE).
    pub raised: RefCell<Vec<u32>>,
}

impl SimMem {
    /// Memory of client `owner`.
    pub fn new(owner: u64) -> SimMem {
        SimMem {
            owner,
            dead: Cell::new(false),
            regions: RefCell::new(BTreeMap::new()),
            raised: RefCell::new(Vec::new()),
        }
    }

    /// Maps `len` zero bytes at `base`.
    pub fn map(&self, base: u64, len: usize) {
        self.regions.borrow_mut().insert(base, vec![0; len]);
    }

    /// The connection is gone: copies from now on fail (pending ones are failed by the
    /// scheduler's `fail_owner`).
    pub fn kill(&self) {
        self.dead.set(true);
    }

    fn with_region<R>(&self, addr: u64, f: impl FnOnce(&mut [u8]) -> Option<R>) -> Option<R> {
        let mut regions = self.regions.borrow_mut();
        let (base, data) = regions.range_mut(..=addr).next_back()?;
        let off = usize::try_from(addr - base).ok()?;
        f(data.get_mut(off..)?)
    }

    /// Writes `bytes` at `addr` (test side).
    pub fn put(&self, addr: u64, bytes: &[u8]) {
        self.with_region(addr, |m| {
            m.get_mut(..bytes.len())?.copy_from_slice(bytes);
            Some(())
        })
        .expect("put: unmapped");
    }

    /// Reads `len` bytes at `addr` (test side).
    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        self.with_region(addr, |m| m.get(..len).map(<[u8]>::to_vec))
            .expect("get: unmapped")
    }

    async fn answer(&self) -> Result<()> {
        if self.dead.get() {
            return Err(Errno::EFAULT);
        }
        match gate(self.owner).await {
            Opened::Ok if !self.dead.get() => Ok(()),
            _ => Err(Errno::EFAULT),
        }
    }
}

impl UserMem for SimMem {
    async fn copyin(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        self.answer().await?;
        self.with_region(addr, |m| m.get(..len).map(<[u8]>::to_vec))
            .ok_or(Errno::EFAULT)
    }

    async fn copyinstr(&self, addr: u64, maxlen: usize) -> Result<Vec<u8>> {
        self.answer().await?;
        self.with_region(addr, |m| {
            let n = m.iter().position(|&b| b == 0).map_or(m.len(), |i| i + 1);
            Some(m[..n.min(maxlen)].to_vec())
        })
        .ok_or(Errno::EFAULT)
    }

    async fn copyout(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.answer().await?;
        self.with_region(addr, |m| {
            m.get_mut(..data.len())?.copy_from_slice(data);
            Some(())
        })
        .ok_or(Errno::EFAULT)
    }

    fn raise(&self, signo: u32) {
        self.raised.borrow_mut().push(signo);
    }
}

/// A host file whose operations complete when the scheduler opens their gate, with seeded
/// faults (`FaultyFile`) while `faults` is on.
pub struct SimFile {
    mem: Arc<MemFile>,
    faulty: FaultyFile,
    faults: AtomicBool,
}

impl SimFile {
    /// `size` zero bytes, faults as `cfg` says.
    pub fn new(size: usize, cfg: FaultConfig) -> (Arc<SimFile>, Arc<MemFile>) {
        SimFile::holding(vec![0; size], cfg)
    }

    /// A file holding `data`, faults as `cfg` says.
    pub fn holding(data: Vec<u8>, cfg: FaultConfig) -> (Arc<SimFile>, Arc<MemFile>) {
        let mem = Arc::new(MemFile::new(data));
        let f = SimFile {
            mem: mem.clone(),
            faulty: FaultyFile::new(mem.clone(), cfg),
            faults: AtomicBool::new(true),
        };
        (Arc::new(f), mem)
    }

    /// Turns fault injection on or off (off for the final sync and checks).
    pub fn set_faults(&self, on: bool) {
        self.faults.store(on, Ordering::SeqCst);
    }

    fn door(&self) -> &dyn HostFile {
        if self.faults.load(Ordering::SeqCst) {
            &self.faulty
        } else {
            &*self.mem
        }
    }
}

impl HostFile for SimFile {
    fn read_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        HostIo::boxed(async move {
            gate(HOST).await;
            self.door().read_at(buf, off).await
        })
    }

    fn write_at(&self, buf: Vec<u8>, off: u64) -> HostIo<'_, IoResult> {
        HostIo::boxed(async move {
            gate(HOST).await;
            self.door().write_at(buf, off).await
        })
    }

    fn sync_data(&self) -> HostIo<'_, Result<()>> {
        HostIo::boxed(async move {
            gate(HOST).await;
            self.door().sync_data().await
        })
    }

    fn len(&self) -> Result<u64> {
        self.mem.len()
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.mem.set_len(len)
    }
}
