//! Workloads: what one operation is (a chain of syscalls), the client address plan the server
//! copies from and to, and the `--mix` weights.

use crate::nb::*;

/// A client "address space" the server's copy requests refer to. Nothing is mapped: each
/// region is served from the load generator's own buffers (strings, a write pattern) or
/// discarded (the targets of COPYOUT).
pub mod addr {
    /// NUL-terminated strings: string `i` lives at `STR + i * STR_STRIDE`.
    pub const STR: u64 = 0x10_0000_0000;
    /// Room for one string.
    pub const STR_STRIDE: u64 = 4096;
    /// Data that pwrite/write send (served from the write pattern).
    pub const WRITE: u64 = 0x20_0000_0000;
    /// Where pread/read put data (COPYOUT target, discarded).
    pub const READ: u64 = 0x30_0000_0000;
    /// `struct stat` target.
    pub const STAT: u64 = 0x40_0000_0000;
    /// getdents target.
    pub const DENTS: u64 = 0x50_0000_0000;
    /// Size of each of the discarded regions.
    pub const SINK_LEN: u64 = 1 << 24;
    /// Size of the getdents buffer handed to the server.
    pub const DENTS_LEN: u64 = 8192;

    /// The address of string `id`.
    pub fn str(id: usize) -> u64 {
        STR + id as u64 * STR_STRIDE
    }
}

/// Fixed string ids; per-slot scratch names follow from `STR_SLOT0`.
pub mod strid {
    /// `/tmp`.
    pub const TMP: usize = 0;
    /// The workload directory.
    pub const ROOT: usize = 1;
    /// The cached data file (stat, open-close, read4k).
    pub const DATA: usize = 2;
    /// The file write4k writes.
    pub const WDATA: usize = 3;
    /// The directory readdir lists.
    pub const DIR: usize = 4;
    /// The etfs device of `block`.
    pub const BLOCK: usize = 5;
    /// A name rewritten during setup.
    pub const SCRATCH: usize = 6;
    /// First per-slot name (create-write-unlink).
    pub const SLOT0: usize = 8;
}

/// Bytes in the data files.
pub const DATA_FILE_LEN: u64 = 1 << 20;
/// Entries in the readdir directory.
pub const DIR_ENTRIES: usize = 32;
/// Size of the cached reads and writes.
pub const IO_LEN: u64 = 4096;

/// One kind of operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Getpid,
    Stat,
    OpenClose,
    Read4k,
    Write4k,
    CreateWriteUnlink,
    Readdir,
    Block,
    /// 4 KiB ping-pong over an AF_LOCAL stream between two rump processes (connections
    /// paired in setup: the even one writes then reads, the odd one reads then writes).
    LocalPingPong,
    /// The same shape over two FIFOs between the same two processes (the pipe engine).
    FifoPingPong,
    /// The same shape over a sockin TCP connection on 127.0.0.1 between the two processes
    /// (`-lrumpnet_sockin`: the bytes go through the host's loopback).
    SockinPingPong,
    /// Each op writes 4 KiB to a sockin TCP connection and reads 4 KiB back from a host
    /// echo peer on 127.0.0.1 that the load generator runs (`-lrumpnet_sockin`).
    SockinEcho,
}

/// Every kind, in `--workload` order.
pub const KINDS: [Kind; 12] = [
    Kind::Getpid,
    Kind::Stat,
    Kind::OpenClose,
    Kind::Read4k,
    Kind::Write4k,
    Kind::CreateWriteUnlink,
    Kind::Readdir,
    Kind::Block,
    Kind::LocalPingPong,
    Kind::FifoPingPong,
    Kind::SockinPingPong,
    Kind::SockinEcho,
];

impl Kind {
    /// The workload's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Getpid => "getpid",
            Kind::Stat => "stat",
            Kind::OpenClose => "open-close",
            Kind::Read4k => "read4k",
            Kind::Write4k => "write4k",
            Kind::CreateWriteUnlink => "create-write-unlink",
            Kind::Readdir => "readdir",
            Kind::Block => "block",
            Kind::LocalPingPong => "local-pingpong",
            Kind::FifoPingPong => "fifo-pingpong",
            Kind::SockinPingPong => "sockin-pingpong",
            Kind::SockinEcho => "sockin-echo",
        }
    }

    /// Whether the kind pairs connections (two processes ping-ponging).
    pub fn paired(self) -> bool {
        matches!(
            self,
            Kind::LocalPingPong | Kind::FifoPingPong | Kind::SockinPingPong
        )
    }

    /// Parses a workload name.
    pub fn parse(s: &str) -> Option<Kind> {
        KINDS.iter().copied().find(|k| k.name() == s)
    }
}

/// Parameters of the block workload.
#[derive(Clone, Debug)]
pub struct BlockCfg {
    /// Path of the etfs device inside the rump kernel.
    pub dev: String,
    /// Bytes per pread/pwrite.
    pub size: u64,
    /// Bytes of the device used (offsets stay below).
    pub span: u64,
    /// Random offsets instead of sequential ones.
    pub random: bool,
    /// Percentage of block ops that write.
    pub write_pct: u32,
}

/// The weights of a workload: one kind (weight 100) or a `--mix`.
#[derive(Clone, Debug)]
pub struct Mix {
    /// (kind, cumulative weight) in increasing order.
    table: Vec<(Kind, u32)>,
}

impl Mix {
    /// A single kind.
    pub fn single(k: Kind) -> Mix {
        Mix {
            table: vec![(k, 1)],
        }
    }

    /// Parses `getpid=50,read4k=30,write4k=20`.
    pub fn parse(s: &str) -> Result<Mix, String> {
        let mut table = Vec::new();
        let mut total = 0u32;
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (name, w) = part.split_once('=').unwrap_or((part, "1"));
            let k = Kind::parse(name.trim()).ok_or_else(|| format!("unknown workload `{name}`"))?;
            let w: u32 = w
                .trim()
                .parse()
                .map_err(|_| format!("bad weight `{w}` for {name}"))?;
            if w > 0 {
                total += w;
                table.push((k, total));
            }
        }
        if table.is_empty() {
            return Err("--mix needs at least one workload with a weight > 0".into());
        }
        Ok(Mix { table })
    }

    /// The distinct kinds used.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut v: Vec<Kind> = self.table.iter().map(|e| e.0).collect();
        v.dedup();
        v
    }

    /// Picks a kind for the random number `r`.
    pub fn pick(&self, r: u64) -> Kind {
        if self.table.len() == 1 {
            return self.table[0].0;
        }
        let total = self.table[self.table.len() - 1].1;
        let x = (r % u64::from(total)) as u32;
        self.table
            .iter()
            .find(|e| x < e.1)
            .map_or(self.table[0].0, |e| e.0)
    }

    /// How the mix reads on the command line.
    pub fn describe(&self) -> String {
        if self.table.len() == 1 {
            return self.table[0].0.name().to_string();
        }
        let mut prev = 0;
        let parts: Vec<String> = self
            .table
            .iter()
            .map(|&(k, c)| {
                let s = format!("{}={}", k.name(), c - prev);
                prev = c;
                s
            })
            .collect();
        format!("mix:{}", parts.join(","))
    }
}

/// One syscall to send: number and argument slots.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub nr: u32,
    pub nargs: u8,
    pub args: [u64; 5],
}

impl Call {
    fn new(nr: u32, a: &[u64]) -> Call {
        let mut args = [0u64; 5];
        args[..a.len()].copy_from_slice(a);
        Call {
            nr,
            nargs: a.len() as u8,
            args,
        }
    }

    /// The argument slots.
    pub fn args(&self) -> &[u64] {
        &self.args[..self.nargs as usize]
    }
}

/// Descriptors a connection opened during setup (-1: not needed).
#[derive(Clone, Copy, Debug)]
pub struct Fds {
    pub data: i64,
    pub wdata: i64,
    pub block: i64,
    /// Ping-pong: the descriptor written to and the one read from.
    pub pw: i64,
    pub pr: i64,
    /// Ping-pong: this connection answers (reads first).
    pub pong: bool,
}

impl Fds {
    /// No descriptors.
    pub const NONE: Fds = Fds {
        data: -1,
        wdata: -1,
        block: -1,
        pw: -1,
        pr: -1,
        pong: false,
    };
}

/// The per-slot state of the operation in progress.
#[derive(Clone, Copy, Debug)]
pub struct OpState {
    pub kind: Kind,
    pub step: u8,
    /// A descriptor opened by an earlier step.
    pub fd: i64,
    /// Offset for the op (chosen at start).
    pub off: u64,
    /// Block op writes.
    pub write: bool,
}

/// What follows a syscall result.
pub enum Next {
    Call(Call),
    Done,
}

/// `int` arguments travel in the low 32 bits with zero above (sp-protocol.md §6.3).
fn int(v: i64) -> u64 {
    u64::from(v as i32 as u32)
}

/// The first call of an op.
pub fn first(op: &OpState, fds: &Fds, slot: usize, blk: &BlockCfg) -> Call {
    use addr::*;
    match op.kind {
        Kind::Getpid => Call::new(SYS_GETPID, &[]),
        Kind::Stat => Call::new(SYS_STAT, &[str(strid::DATA), STAT]),
        Kind::OpenClose => Call::new(SYS_OPEN, &[str(strid::DATA), O_RDONLY]),
        Kind::Read4k => Call::new(SYS_PREAD, &[int(fds.data), READ, IO_LEN, 0, op.off]),
        Kind::Write4k => Call::new(SYS_PWRITE, &[int(fds.wdata), WRITE, IO_LEN, 0, op.off]),
        Kind::CreateWriteUnlink => Call::new(
            SYS_OPEN,
            &[
                str(strid::SLOT0 + slot),
                O_WRONLY | O_CREAT | O_TRUNC,
                0o644,
            ],
        ),
        Kind::Readdir => Call::new(SYS_OPEN, &[str(strid::DIR), O_RDONLY | O_DIRECTORY]),
        Kind::Block => {
            let (nr, buf) = match op.write {
                true => (SYS_PWRITE, WRITE),
                false => (SYS_PREAD, READ),
            };
            Call::new(nr, &[int(fds.block), buf, blk.size, 0, op.off])
        }
        Kind::LocalPingPong | Kind::FifoPingPong | Kind::SockinPingPong | Kind::SockinEcho => {
            match fds.pong {
                true => Call::new(SYS_READ, &[int(fds.pr), READ, IO_LEN]),
                false => Call::new(SYS_WRITE, &[int(fds.pw), WRITE, IO_LEN]),
            }
        }
    }
}

/// The call after step `op.step` returned `rv` (no error); advances `op`.
pub fn next(op: &mut OpState, rv: i64, slot: usize, fds: &Fds) -> Next {
    use addr::*;
    op.step += 1;
    match (op.kind, op.step) {
        (Kind::LocalPingPong | Kind::FifoPingPong | Kind::SockinPingPong | Kind::SockinEcho, 1) => {
            Next::Call(match fds.pong {
                true => Call::new(SYS_WRITE, &[int(fds.pw), WRITE, IO_LEN]),
                false => Call::new(SYS_READ, &[int(fds.pr), READ, IO_LEN]),
            })
        }
        (Kind::OpenClose, 1) => Next::Call(Call::new(SYS_CLOSE, &[int(rv)])),
        (Kind::CreateWriteUnlink, 1) => {
            op.fd = rv;
            Next::Call(Call::new(SYS_WRITE, &[int(rv), WRITE, IO_LEN]))
        }
        (Kind::CreateWriteUnlink, 2) => Next::Call(Call::new(SYS_CLOSE, &[int(op.fd)])),
        (Kind::CreateWriteUnlink, 3) => {
            Next::Call(Call::new(SYS_UNLINK, &[str(strid::SLOT0 + slot)]))
        }
        (Kind::Readdir, 1) => {
            op.fd = rv;
            Next::Call(Call::new(SYS_GETDENTS, &[int(rv), DENTS, DENTS_LEN]))
        }
        (Kind::Readdir, _) if op.fd >= 0 && rv > 0 => {
            Next::Call(Call::new(SYS_GETDENTS, &[int(op.fd), DENTS, DENTS_LEN]))
        }
        (Kind::Readdir, _) if op.fd >= 0 => {
            let fd = op.fd;
            op.fd = -1;
            Next::Call(Call::new(SYS_CLOSE, &[int(fd)]))
        }
        _ => Next::Done,
    }
}

/// Offset for a new op of kind `k`: `seq` counts this slot's ops, `r` is random.
pub fn offset(k: Kind, seq: u64, r: u64, blk: &BlockCfg) -> u64 {
    let pages = DATA_FILE_LEN / IO_LEN;
    match k {
        Kind::Read4k | Kind::Write4k => (r % pages) * IO_LEN,
        Kind::Block => {
            let blocks = (blk.span / blk.size).max(1);
            let b = if blk.random { r % blocks } else { seq % blocks };
            b * blk.size
        }
        _ => 0,
    }
}

/// A fast per-slot random number generator (xorshift64*).
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; a zero seed is replaced.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_picks_by_weight() {
        let m = Mix::parse("getpid=3,read4k=1").unwrap();
        assert_eq!(m.kinds(), vec![Kind::Getpid, Kind::Read4k]);
        let mut n = [0; 2];
        for r in 0..400 {
            match m.pick(r) {
                Kind::Getpid => n[0] += 1,
                _ => n[1] += 1,
            }
        }
        assert_eq!(n, [300, 100]);
        assert_eq!(m.describe(), "mix:getpid=3,read4k=1");
        assert!(Mix::parse("nope=1").is_err());
        assert!(Mix::parse("getpid=0").is_err());
    }

    #[test]
    fn readdir_chain_reads_until_empty_then_closes() {
        let mut op = OpState {
            kind: Kind::Readdir,
            step: 0,
            fd: -1,
            off: 0,
            write: false,
        };
        assert!(matches!(next(&mut op, 7, 0, &Fds::NONE), Next::Call(c) if c.nr == SYS_GETDENTS));
        assert!(matches!(next(&mut op, 512, 0, &Fds::NONE), Next::Call(c) if c.nr == SYS_GETDENTS));
        assert!(matches!(next(&mut op, 0, 0, &Fds::NONE), Next::Call(c) if c.nr == SYS_CLOSE));
        assert!(matches!(next(&mut op, 0, 0, &Fds::NONE), Next::Done));
    }

    #[test]
    fn pingpong_ops_write_then_read_or_read_then_write() {
        let blk = BlockCfg {
            dev: String::new(),
            size: 4096,
            span: 4096,
            random: false,
            write_pct: 0,
        };
        for kind in [Kind::LocalPingPong, Kind::FifoPingPong] {
            for pong in [false, true] {
                let fds = Fds {
                    pw: 5,
                    pr: 6,
                    pong,
                    ..Fds::NONE
                };
                let mut op = OpState {
                    kind,
                    step: 0,
                    fd: -1,
                    off: 0,
                    write: false,
                };
                let c = first(&op, &fds, 0, &blk);
                let (nr1, fd1, nr2, fd2) = match pong {
                    false => (SYS_WRITE, 5, SYS_READ, 6),
                    true => (SYS_READ, 6, SYS_WRITE, 5),
                };
                assert_eq!((c.nr, c.args[0], c.args[2]), (nr1, fd1, IO_LEN));
                let Next::Call(c) = next(&mut op, 4096, 0, &fds) else {
                    panic!("a second call")
                };
                assert_eq!((c.nr, c.args[0]), (nr2, fd2));
                assert!(matches!(next(&mut op, 4096, 0, &fds), Next::Done));
            }
        }
    }
}
