//! Resource limits (sys/resource.h, kern_resource.c): `RLIMIT_*`, `struct rlimit` and the
//! maxima a rump kernel of NetBSD 7–9 has (conf/param.c with `MAXUSERS` 32, amd64 vmparam.h).

/// `RLIMIT_CPU`.
pub const RLIMIT_CPU: u32 = 0;
/// `RLIMIT_FSIZE`: largest file a process may write (`EFBIG` + SIGXFSZ beyond).
pub const RLIMIT_FSIZE: u32 = 1;
/// `RLIMIT_DATA`.
pub const RLIMIT_DATA: u32 = 2;
/// `RLIMIT_STACK`.
pub const RLIMIT_STACK: u32 = 3;
/// `RLIMIT_CORE`.
pub const RLIMIT_CORE: u32 = 4;
/// `RLIMIT_RSS`.
pub const RLIMIT_RSS: u32 = 5;
/// `RLIMIT_MEMLOCK`.
pub const RLIMIT_MEMLOCK: u32 = 6;
/// `RLIMIT_NPROC`.
pub const RLIMIT_NPROC: u32 = 7;
/// `RLIMIT_NOFILE`: the descriptor table's size.
pub const RLIMIT_NOFILE: u32 = 8;
/// `RLIMIT_SBSIZE`.
pub const RLIMIT_SBSIZE: u32 = 9;
/// `RLIMIT_AS`.
pub const RLIMIT_AS: u32 = 10;
/// `RLIMIT_NTHR`.
pub const RLIMIT_NTHR: u32 = 11;
/// Number of limits (`RLIM_NLIMITS`).
pub const RLIM_NLIMITS: usize = 12;
/// No limit (`RLIM_INFINITY`: `rlim_t` is unsigned, but this is its largest `int64_t`).
pub const RLIM_INFINITY: u64 = i64::MAX as u64;
/// Size of `struct rlimit` (`rlim_cur`, `rlim_max`).
pub const RLIMIT_SIZE: usize = 16;

/// `maxfiles` (`MAXFILES` = 3 × (`NPROC` + `MAXUSERS`) + 80): the ceiling of `RLIMIT_NOFILE`.
pub const MAXFILES: u64 = 1772;
/// `maxproc` (`NPROC` = 20 + 16 × `MAXUSERS`).
pub const MAXPROC: u64 = 532;
/// `maxuprc` (`MAXUPRC` = `CHILD_MAX`): the default soft `RLIMIT_NPROC` and `RLIMIT_NTHR`.
pub const MAXUPRC: u64 = 160;
/// `maxlwp` (`MAXLWP`).
pub const MAXLWP: u64 = 2048;
/// `maxdmap` (`MAXDSIZ`, amd64): the ceiling of `RLIMIT_DATA`.
pub const MAXDSIZ: u64 = 8 << 30;
/// `maxsmap` (`MAXSSIZ`, amd64): the ceiling of `RLIMIT_STACK`.
pub const MAXSSIZ: u64 = 128 << 20;
/// `DFLSSIZ` (amd64): the default soft `RLIMIT_STACK`.
pub const DFLSSIZ: u64 = 4 << 20;
/// A rump kernel's `physmem` when no memory limit is given (512 × 256 pages, emul.c).
pub const RUMP_PHYSMEM_BYTES: u64 = 512 << 20;
/// `VM_MAXUSER_ADDRESS` (amd64).
pub const VM_MAXUSER_ADDRESS: u64 = 0x7f7f_ffff_c000;
/// Signal: file size limit exceeded.
pub const SIGXFSZ: u32 = 25;

/// One `struct rlimit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    /// The soft limit (`rlim_cur`).
    pub cur: u64,
    /// The hard limit (`rlim_max`).
    pub max: u64,
}

impl Rlimit {
    /// `{cur, max}`.
    pub const fn new(cur: u64, max: u64) -> Rlimit {
        Rlimit { cur, max }
    }

    /// The client's bytes.
    pub fn encode(&self) -> [u8; RLIMIT_SIZE] {
        let mut b = [0u8; RLIMIT_SIZE];
        b[..8].copy_from_slice(&self.cur.to_le_bytes());
        b[8..].copy_from_slice(&self.max.to_le_bytes());
        b
    }

    /// From the client's bytes.
    pub fn decode(b: &[u8]) -> Option<Rlimit> {
        let cur = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
        let max = u64::from_le_bytes(b.get(8..16)?.try_into().ok()?);
        Some(Rlimit { cur, max })
    }
}
