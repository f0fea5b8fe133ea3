//! A long-lived stream whose reader always leaves part of a record behind keeps a bounded
//! buffer: new data never joins a record already partly read (it would keep the consumed
//! prefix, and its charge, for as long as the writer writes).

mod harness;

use harness::{boot, P};
use net::abi::{SOCK_NONBLOCK, SOCK_STREAM};

const SYS_READ: u32 = 3;
const SYS_WRITE: u32 = 4;

#[test]
fn a_partly_read_stream_keeps_a_bounded_buffer() {
    let k = boot(Some(64 << 20));
    let pr = P::new(&k);
    // Non-blocking: a buffer that fills up fails the test instead of hanging it.
    let (a, b) = pr.socketpair(SOCK_STREAM | SOCK_NONBLOCK);
    pr.mem.map(0x1000, &[7u8; 100]);
    pr.mem.map(0x2000, &[0u8; 100]);
    let write = || pr.sys(SYS_WRITE, &[a as u64, 0x1000, 100]);
    let read = |n: u64| pr.sys(SYS_READ, &[b as u64, 0x2000, n]);
    assert_eq!(write(), Ok(100));
    assert_eq!(read(50), Ok(50));
    let base = k.budget().used();
    for _ in 0..5000 {
        assert_eq!(write(), Ok(100));
        assert_eq!(read(100), Ok(100));
    }
    let grown = k.budget().used().saturating_sub(base);
    assert!(grown < 4096, "the buffer's charge grew by {grown} bytes");
    assert_eq!(read(100), Ok(50), "50 bytes were left");
}
