//! The kernel's only door to the host (NetBSD's `rumpuser.h` idea): console, clocks, entropy.
//!
//! Host errno values, when later operations can fail, are translated to NetBSD `Errno` here.

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the kernel needs from the host. Implemented by [`StdHost`] for the server, and by
/// in-memory or fault-injecting hosts in tests.
pub trait Host: Send + Sync + 'static {
    /// Writes console output (`rumpuser_putchar`) to the server's stdout.
    fn console_write(&self, data: &[u8]);
    /// Wall-clock time `(sec, nsec)` since the Unix epoch.
    fn clock_realtime(&self) -> (i64, i64);
    /// A monotonic clock `(sec, nsec)` from an arbitrary origin.
    fn clock_monotonic(&self) -> (i64, i64);
    /// Fills `buf` with random bytes.
    fn random(&self, buf: &mut [u8]);
}

/// The host of a real server: stdout, the system clocks and `/dev/urandom`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdHost;

impl Host for StdHost {
    fn console_write(&self, data: &[u8]) {
        // Console output is best effort, as NetBSD's putchar: a closed stdout loses it.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(data);
        let _ = out.flush();
    }

    fn clock_realtime(&self) -> (i64, i64) {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
            Err(e) => {
                let d = e.duration();
                let (s, n) = (d.as_secs() as i64, i64::from(d.subsec_nanos()));
                if n == 0 {
                    (-s, 0)
                } else {
                    (-s - 1, 1_000_000_000 - n)
                }
            }
        }
    }

    fn clock_monotonic(&self) -> (i64, i64) {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let d = ORIGIN.get_or_init(Instant::now).elapsed();
        (d.as_secs() as i64, i64::from(d.subsec_nanos()))
    }

    fn random(&self, buf: &mut [u8]) {
        static URANDOM: OnceLock<Option<std::fs::File>> = OnceLock::new();
        let dev = URANDOM.get_or_init(|| std::fs::File::open("/dev/urandom").ok());
        if let Some(mut f) = dev.as_ref() {
            if f.read_exact(buf).is_ok() {
                return;
            }
        }
        fallback_random(buf);
    }
}

/// Random bytes from std's randomly keyed SipHash, for a host without `/dev/urandom`.
fn fallback_random(buf: &mut [u8]) {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let state = RandomState::new();
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_host_clocks_and_random() {
        let h = StdHost;
        let (s, n) = h.clock_realtime();
        assert!(s > 1_600_000_000 && (0..1_000_000_000).contains(&n));
        let a = h.clock_monotonic();
        let b = h.clock_monotonic();
        assert!(b >= a);
        let mut x = [0u8; 32];
        h.random(&mut x);
        let mut y = [0u8; 32];
        fallback_random(&mut y);
        assert!(x.iter().any(|&v| v != 0) && y.iter().any(|&v| v != 0));
    }
}
