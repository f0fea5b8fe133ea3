//! `struct timespec` and `struct timeval` (netbsd-abi.md §4.1–§4.2), clock ids.

/// `CLOCK_REALTIME`.
pub const CLOCK_REALTIME: i32 = 0;
/// `CLOCK_VIRTUAL`.
pub const CLOCK_VIRTUAL: i32 = 1;
/// `CLOCK_PROF`.
pub const CLOCK_PROF: i32 = 2;
/// `CLOCK_MONOTONIC`.
pub const CLOCK_MONOTONIC: i32 = 3;

/// Size of `struct timespec` and of `struct timeval` on amd64.
pub const TIMESPEC_SIZE: usize = 16;
/// Size of `struct timezone` (two ints).
pub const TIMEZONE_SIZE: usize = 8;

/// A point in time or a duration: seconds and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, 0..1e9.
    pub nsec: i64,
}

impl Timespec {
    /// From a host clock reading `(sec, nsec)`.
    pub const fn from_pair(pair: (i64, i64)) -> Timespec {
        Timespec {
            sec: pair.0,
            nsec: pair.1,
        }
    }

    /// `self - other`, normalised (nanoseconds in 0..1e9).
    pub fn since(self, other: Timespec) -> Timespec {
        let mut sec = self.sec.wrapping_sub(other.sec);
        let mut nsec = self.nsec - other.nsec;
        if nsec < 0 {
            nsec += 1_000_000_000;
            sec = sec.wrapping_sub(1);
        }
        Timespec { sec, nsec }
    }

    /// `struct timespec` bytes.
    pub fn encode(&self) -> [u8; TIMESPEC_SIZE] {
        let mut b = [0u8; TIMESPEC_SIZE];
        b[..8].copy_from_slice(&self.sec.to_le_bytes());
        b[8..].copy_from_slice(&self.nsec.to_le_bytes());
        b
    }

    /// `struct timeval` bytes: seconds, 4-byte microseconds, 4 bytes of zero padding.
    pub fn encode_timeval(&self) -> [u8; TIMESPEC_SIZE] {
        let mut b = [0u8; TIMESPEC_SIZE];
        b[..8].copy_from_slice(&self.sec.to_le_bytes());
        let usec = (self.nsec / 1000) as i32;
        b[8..12].copy_from_slice(&usec.to_le_bytes());
        b
    }
}
