//! Descriptors in flight (`unp_rights`): counted and bounded, as NetBSD bounds them by
//! `maxfiles / unp_rights_ratio` (`EAGAIN` past it), so a client that keeps sending
//! descriptors into buffers nobody reads holds a bounded number of open files.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Most descriptors in flight in the whole server.
pub const RIGHTS_MAX: usize = 1024;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Takes `n` places; `false` (nothing taken) past [`RIGHTS_MAX`].
pub fn enter_flight(n: usize) -> bool {
    IN_FLIGHT
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
            (c + n <= RIGHTS_MAX).then_some(c + n)
        })
        .is_ok()
}

/// Gives back `n` places (files received or discarded).
pub fn left_flight(n: usize) {
    let _ = IN_FLIGHT.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
        Some(c.saturating_sub(n))
    });
}

/// Descriptors in flight now.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Acquire)
}

/// Counts `n` files in flight again without a bound (they are about to be discarded).
pub fn enter_flight_forced(n: usize) {
    IN_FLIGHT.fetch_add(n, Ordering::AcqRel);
}
