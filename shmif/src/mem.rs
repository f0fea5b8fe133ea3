//! The mapped bus: raw access to memory other processes write at any time. Nothing here
//! makes a Rust reference into the mapping (another process may change it under us); bytes
//! are copied in and out through raw pointers, the lock word is an atomic.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{BusError, BUS_SIZE, DATA_SIZE, HEADER_SIZE};

/// Spins before each 1 ms sleep, as NetBSD's `shmif_lockbus` (`LOCK_COOLDOWN`).
const LOCK_SPINS: u32 = 1001;

/// A shared mapping of the whole bus file.
pub struct Mem {
    base: *mut u8,
    writable: bool,
}

// SAFETY: the mapping is process-wide shared memory; every access goes through raw
// pointers or atomics, never references, so moving or sharing `Mem` between threads adds
// no aliasing beyond what other processes already do.
unsafe impl Send for Mem {}
// SAFETY: as above.
unsafe impl Sync for Mem {}

impl Mem {
    /// Maps `BUS_SIZE` bytes of `file` (which must be at least that long), shared.
    pub fn map(file: &File, writable: bool) -> Result<Mem, BusError> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of a file we hold open; the pointer is only used
        // within `BUS_SIZE` and unmapped in `Drop`.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BUS_SIZE,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(Mem {
            base: p.cast(),
            writable,
        })
    }

    /// A header word (`off` < 32, 4-aligned).
    pub fn get32(&self, off: usize) -> u32 {
        assert!(off + 4 <= HEADER_SIZE && off.is_multiple_of(4));
        // SAFETY: inside the mapping and aligned (the mapping is page-aligned).
        unsafe { std::ptr::read_volatile(self.base.add(off).cast::<u32>()) }
    }

    pub fn put32(&self, off: usize, v: u32) {
        assert!(self.writable && off + 4 <= HEADER_SIZE && off.is_multiple_of(4));
        // SAFETY: inside the writable mapping and aligned.
        unsafe { std::ptr::write_volatile(self.base.add(off).cast::<u32>(), v) }
    }

    pub fn get64(&self, off: usize) -> u64 {
        assert!(off + 8 <= HEADER_SIZE && off.is_multiple_of(8));
        // SAFETY: inside the mapping and aligned.
        unsafe { std::ptr::read_volatile(self.base.add(off).cast::<u64>()) }
    }

    pub fn put64(&self, off: usize, v: u64) {
        assert!(self.writable && off + 8 <= HEADER_SIZE && off.is_multiple_of(8));
        // SAFETY: inside the writable mapping and aligned.
        unsafe { std::ptr::write_volatile(self.base.add(off).cast::<u64>(), v) }
    }

    /// Copies ring bytes `[off, off + out.len())`, which must not cross the ring's end.
    pub fn read_data(&self, off: u32, out: &mut [u8]) {
        assert!(off as usize + out.len() <= DATA_SIZE as usize);
        // SAFETY: the range lies inside the ring, which lies inside the mapping; `out` is
        // ours and cannot overlap the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.add(HEADER_SIZE + off as usize),
                out.as_mut_ptr(),
                out.len(),
            )
        }
    }

    /// Copies `data` into the ring at `off`; the range must not cross the ring's end.
    pub fn write_data(&self, off: u32, data: &[u8]) {
        assert!(self.writable && off as usize + data.len() <= DATA_SIZE as usize);
        // SAFETY: inside the writable ring; `data` is ours.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.base.add(HEADER_SIZE + off as usize),
                data.len(),
            )
        }
    }

    fn lock_word(&self) -> &AtomicU32 {
        // SAFETY: offset 24 is 4-aligned inside the mapping, which lives as long as `self`;
        // every process touches this word only with atomic operations.
        unsafe { AtomicU32::from_ptr(self.base.add(24).cast::<u32>()) }
    }

    /// Takes the bus lock as NetBSD's `shmif_lockbus` (compare-and-swap 0 → 1, spinning
    /// `LOCK_COOLDOWN` times between 1 ms sleeps), giving up at `deadline`.
    pub fn lock(&self, deadline: Duration) -> Result<BusLock<'_>, BusError> {
        assert!(self.writable, "locking needs a writable mapping");
        let start = Instant::now();
        let mut spins = 0;
        while self
            .lock_word()
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins > LOCK_SPINS {
                if start.elapsed() > deadline {
                    return Err(BusError::LockTimeout);
                }
                std::thread::sleep(Duration::from_millis(1));
                spins = 0;
            }
            std::hint::spin_loop();
        }
        Ok(BusLock { mem: self })
    }

    /// Touches every 512 bytes, as NetBSD does before taking the lock the first time, so
    /// that page faults do not happen under the lock.
    pub fn prefault(&self) {
        let mut sum = 0u8;
        for off in (0..BUS_SIZE).step_by(512) {
            // SAFETY: inside the mapping.
            sum = sum.wrapping_add(unsafe { std::ptr::read_volatile(self.base.add(off)) });
        }
        std::hint::black_box(sum);
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.base.cast(), BUS_SIZE) };
    }
}

/// The bus lock, released on drop (`shmif_unlockbus`: a swap back to 0).
pub struct BusLock<'a> {
    mem: &'a Mem,
}

impl Drop for BusLock<'_> {
    fn drop(&mut self) {
        self.mem.lock_word().swap(0, Ordering::Release);
    }
}
