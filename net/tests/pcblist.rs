//! The list of open sockets behind the `pcblist` sysctl leaves: a socket is listed while a
//! file holds it (in a descriptor table or in flight, as NetBSD's file list), gone once
//! closed, and the list of weak references stays within a bound however many sockets come
//! and go.

mod harness;

use harness::{boot_net, P};
use net::abi::{AF_LOCAL, SOCK_DGRAM, SOCK_STREAM};

#[test]
fn open_sockets_are_listed_and_the_list_stays_bounded() {
    let (k, net) = boot_net(Some(64 << 20));
    let pr = P::new(&k);
    let count = |ty: i32| {
        net.pcbs(|p| p.family == AF_LOCAL as u32 && p.ty == ty as u32)
            .len()
    };
    assert_eq!(count(SOCK_STREAM), 0);
    let (a, b) = pr.socketpair(SOCK_STREAM);
    let (c, d) = pr.socketpair(SOCK_DGRAM);
    assert_eq!((count(SOCK_STREAM), count(SOCK_DGRAM)), (2, 2));
    let conn: Vec<u64> = net
        .pcbs(|p| p.ty == SOCK_STREAM as u32)
        .iter()
        .map(|p| p.conn)
        .collect();
    let pcbs: Vec<u64> = net
        .pcbs(|p| p.ty == SOCK_STREAM as u32)
        .iter()
        .map(|p| p.pcbaddr)
        .collect();
    assert_eq!(
        conn,
        [pcbs[1], pcbs[0]],
        "each end's ki_conn is the other's pcb"
    );

    // In flight: b travels inside c's message to d and is closed here; still a file.
    assert_eq!(pr.send_rights(c, b"x", &[b]), Ok(1));
    pr.close(b);
    assert_eq!(count(SOCK_STREAM), 2, "a socket in flight is still listed");
    pr.close(d);
    assert_eq!(count(SOCK_STREAM), 1, "discarded with d's buffer");
    pr.close(c);
    pr.close(a);
    assert_eq!((count(SOCK_STREAM), count(SOCK_DGRAM)), (0, 0));

    // Thousands of sockets come and go while two stay: the list is pruned as it grows.
    let (keep1, keep2) = pr.socketpair(SOCK_STREAM);
    for _ in 0..3000 {
        let (x, y) = pr.socketpair(SOCK_DGRAM);
        pr.close(x);
        pr.close(y);
    }
    assert!(
        net.file_entries() <= 64,
        "{} entries for 2 live sockets",
        net.file_entries()
    );
    assert_eq!(count(SOCK_STREAM), 2);
    pr.close(keep1);
    pr.close(keep2);
}
