//! NetBSD's shmif Ethernet bus, byte-compatible with `sys/rump/net/lib/libshmif`: rump
//! kernels on one host join an Ethernet segment by mapping the same 1 MiB file (the
//! interface's `linkstr`). This crate is the bus alone — the file, its lock word, its packet
//! ring, the wake-ups — so our servers and NetBSD's share a bus; the network faction's
//! `shmifN` interfaces sit on it, and `shmif_dumpbus` turns a bus into a pcap file.
//!
//! # The bus file (version 3)
//! All integers in the host's byte order (NetBSD's dumpbus swaps a foreign one).
//!
//! | offset | field | meaning |
//! |---|---|---|
//! | 0 | `shm_magic` u32 | `0xca11d054`, written by the first interface to attach |
//! | 4 | `shm_version` u32 | 3; also the wake-up word (see below) |
//! | 8 | `shm_gen` u64 | ring generation: +1 whenever a write reaches the ring's end |
//! | 16 | `shm_first` u32 | data offset of the oldest packet; `DATA_SIZE` on a new bus |
//! | 20 | `shm_last` u32 | data offset of the newest packet's header |
//! | 24 | `shm_lock` u32 | 0 free, 1 held (compare-and-swap; holders spin, then sleep 1 ms) |
//! | 28 | spare u32 | |
//! | 32 | `shm_data` | the ring, `DATA_SIZE` bytes |
//!
//! A packet is a 24-byte header (`sp_len` u32, `sp_sec` u32, `sp_usec` u32 — the sender's
//! uptime —, 4 bytes of padding, `sp_sender` u64, the sending interface's random id) and
//! `sp_len` bytes of Ethernet frame (no FCS), both wrapping at the ring's end. A writer
//! takes the lock, moves `shm_last` past the newest packet, writes there, pushes
//! `shm_first` past every packet it overwrites, and bumps `shm_gen` if it wrapped. Readers
//! keep their own offset and generation and start over at `shm_first` when the writers
//! lapped them. After writing, a sender rewrites the version word with `pwrite(2)` so that
//! the file's modification wakes the readers' inotify (Linux) or kqueue watches: stores
//! through a mapping do not.
//!
//! # Trust
//! Every process mapping the bus can write anything into it. Nothing read from the bus is
//! trusted: offsets and lengths are checked before use, a corrupt ring is reported as
//! [`BusError::Corrupt`] (readers then start over at the newest packet), every walk is
//! bounded, and the lock wait has a deadline. A process that dies holding the lock leaves
//! NetBSD's interfaces spinning forever; ours give up after the deadline and report
//! [`BusError::LockTimeout`].

mod bus;
mod mem;
pub mod pcap;
mod watch;

pub use bus::{Bus, Header, Packet, Reader, Received};
pub use watch::Watch;

/// `SHMIF_MAGIC`.
pub const MAGIC: u32 = 0xca11_d054;
/// `SHMIF_VERSION`.
pub const VERSION: u32 = 3;
/// `BUSMEM_SIZE`: the bus file's size.
pub const BUS_SIZE: usize = 1024 * 1024;
/// `sizeof(struct shmif_mem)`: the header before the ring.
pub const HEADER_SIZE: usize = 32;
/// `BUSMEM_DATASIZE`: the ring's size.
pub const DATA_SIZE: u32 = (BUS_SIZE - HEADER_SIZE) as u32;
/// `sizeof(struct shmif_pkthdr)`.
pub const PKTHDR_SIZE: u32 = 24;
/// The longest frame an interface sends or accepts (`ETHERMTU + ETHER_HDR_LEN`).
pub const FRAME_MAX: usize = 1514;
/// `ETHER_HDR_LEN`: shorter packets are skipped by readers (the first, empty, one of a new
/// bus among them).
pub const FRAME_MIN: usize = 14;

/// What can go wrong on a bus.
#[derive(Debug)]
pub enum BusError {
    /// The host refused (open, size, map, write).
    Io(std::io::Error),
    /// The file is not a bus of a version this crate speaks.
    NotBus(String),
    /// The ring holds an offset or length no writer could have put there.
    Corrupt(&'static str),
    /// The lock stayed held past the deadline (a holder died, or the bus is abused).
    LockTimeout,
    /// A frame longer than [`FRAME_MAX`] (or shorter than [`FRAME_MIN`]) was to be sent.
    FrameSize(usize),
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusError::Io(e) => write!(f, "{e}"),
            BusError::NotBus(why) => write!(f, "not a shmif bus: {why}"),
            BusError::Corrupt(what) => write!(f, "bus corrupt: {what}"),
            BusError::LockTimeout => write!(
                f,
                "bus lock held too long (a process died holding it?): remove the bus file \
                 when no interface uses it"
            ),
            BusError::FrameSize(n) => write!(
                f,
                "frame of {n} bytes: an Ethernet frame on shmif is {FRAME_MIN}..={FRAME_MAX}"
            ),
        }
    }
}

impl std::error::Error for BusError {}

impl From<std::io::Error> for BusError {
    fn from(e: std::io::Error) -> Self {
        BusError::Io(e)
    }
}

/// The MAC address NetBSD's shmif gives an interface: `b2:a0` and four random bytes (the
/// 32-bit random number as it lies in memory).
pub fn mac_address(random: u32) -> [u8; 6] {
    let r = random.to_ne_bytes();
    [0xb2, 0xa0, r[0], r[1], r[2], r[3]]
}
