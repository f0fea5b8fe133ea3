//! Micro-benchmarks of the server's hot paths: sp frame decode/encode and syscall dispatch.
//!
//! `cargo bench -p rump-benches` (set `BENCH_TIME_MS` to time longer). Not yet here, until
//! the VFS lands: name lookup (`namei` of a cached path) and a buffer-cache hit under N threads.
//! TODO(vfs): add `lookup /tmp/loadtest/data` through the kernel's namei and a pread of a
//! cached block from 1, 2 and 4 threads once `kernel::vfs` exists.

use std::hint::black_box;
use std::sync::Arc;

use kernel::{BootConfig, Kernel, StdHost};
use rump_benches::{block_on, Bencher, NullMem};

/// NetBSD `getpid`.
const SYS_GETPID: u32 = 20;
/// NetBSD `dup`, `close`: a descriptor-table round trip.
const SYS_DUP: u32 = 41;
const SYS_CLOSE: u32 = 6;

fn frames(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n as u64 {
        sp::encode_syscall_req(&mut v, i, SYS_GETPID, &[]);
    }
    v
}

fn bench_sp(b: &Bencher) {
    let input = frames(64);
    let mut dec = sp::FrameDecoder::new(sp::DEFAULT_MAX_FRAME_LEN);
    b.run("sp decode 64 getpid requests (one recv)", || {
        let mut inp: &[u8] = &input;
        let mut n = 0u64;
        while let Ok(Some(f)) = dec.next(&mut inp) {
            n += f.header.reqno + u64::from(f.header.u);
        }
        n
    });
    // The same bytes arriving in 7-byte pieces: the decoder's buffering path.
    b.run("sp decode 64 requests split in 7-byte recvs", || {
        let mut n = 0u64;
        for chunk in input.chunks(7) {
            let mut inp = chunk;
            while let Ok(Some(f)) = dec.next(&mut inp) {
                n += f.header.reqno;
            }
        }
        n
    });
    let mut out = Vec::with_capacity(64 * 48);
    b.run("sp encode 64 syscall responses", || {
        out.clear();
        for i in 0..64 {
            sp::encode_syscall_resp(&mut out, i, 0, [2, 1]);
        }
        out.len()
    });
    let payload = [0u8; 40];
    b.run("sp syscall_args (5 slots)", || {
        sp::syscall_args(black_box(&payload))
    });
}

fn bench_dispatch(b: &Bencher) {
    let cfg = BootConfig {
        ncpu: 1,
        verbose: false,
        hostname: "bench".into(),
        vfs: true,
        mem_limit_bytes: None,
        filesystems: Vec::new(),
        dev: false,
    };
    let k = Kernel::boot(cfg, Arc::new(StdHost)).expect("boot");
    let p = k.spawn_guest(b"bench").expect("process");
    let mem = NullMem;
    let args = [0u64; 8];
    b.run("Kernel::syscall getpid (dispatch only)", || {
        block_on(k.syscall(&p, &mem, SYS_GETPID, &args)).result
    });
    let dup_args = [1u64, 0, 0, 0, 0, 0, 0, 0];
    b.run("Kernel::syscall dup(1) + close", || {
        let r = block_on(k.syscall(&p, &mem, SYS_DUP, &dup_args)).result;
        let fd = r.map(|rv| rv[0] as u64).unwrap_or(0);
        let close = [fd, 0, 0, 0, 0, 0, 0, 0];
        block_on(k.syscall(&p, &mem, SYS_CLOSE, &close)).result
    });
}

fn main() {
    let b = Bencher::new();
    bench_sp(&b);
    bench_dispatch(&b);
}
