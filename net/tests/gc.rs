//! Descriptors in flight: a socket sent over itself, sockets sent over each other and long
//! chains of sockets inside sockets are all freed once nothing outside can reach them; the
//! budget comes back to where it was and nothing is counted in flight.

mod harness;

use harness::{boot, P};
use net::abi::{SOCK_DGRAM, SOCK_STREAM};

#[test]
fn cycles_and_chains_of_descriptors_in_flight_are_freed() {
    let k = boot(Some(64 << 20));
    let pr = P::new(&k);
    let base = k.budget().used();

    // A datagram socket that holds its own descriptor: closing both ends frees it.
    let (a, b) = pr.socketpair(SOCK_DGRAM);
    assert_eq!(pr.send_rights(a, b"x", &[b]), Ok(1));
    assert_eq!(net::gc::in_flight(), 1);
    pr.close(b);
    pr.close(a);
    assert_eq!(
        net::gc::in_flight(),
        0,
        "the self-cycle is collected at a's close"
    );

    // Two stream sockets sent over each other, closed in either order.
    for order in [false, true] {
        let (a, b) = pr.socketpair(SOCK_STREAM);
        assert_eq!(pr.send_rights(a, b"1", &[a]), Ok(1), "a into b's buffer");
        assert_eq!(pr.send_rights(b, b"2", &[b]), Ok(1), "b into a's buffer");
        let (x, y) = if order { (a, b) } else { (b, a) };
        pr.close(x);
        pr.close(y);
        // The last close found nothing else to free it: the next socket close does.
        let (c, d) = pr.socketpair(SOCK_STREAM);
        pr.close(c);
        pr.close(d);
        assert_eq!(net::gc::in_flight(), 0, "order {order}");
    }

    // A chain: each pair's reading end carries the previous pair's reading end.
    let mut prev: Option<i32> = None;
    for _ in 0..300 {
        let (a, b) = pr.socketpair(SOCK_STREAM);
        if let Some(p) = prev {
            assert_eq!(pr.send_rights(a, b"c", &[p]), Ok(1));
            pr.close(p);
        }
        pr.close(a);
        prev = Some(b);
    }
    assert_eq!(net::gc::in_flight(), 299);
    pr.close(prev.unwrap());
    assert_eq!(net::gc::in_flight(), 0, "the chain went with its head");
    assert_eq!(
        k.budget().used(),
        base,
        "every socket and buffer given back"
    );
    assert_eq!(
        pr.p.fd_count(),
        3,
        "only the console's descriptors are left"
    );
}
