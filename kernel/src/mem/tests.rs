//! Budget tests: limits, child budgets, reclaim, forced charges, concurrency.

use std::sync::{Arc, Mutex};

use super::*;

#[test]
fn charges_fit_the_limit_and_release_gives_room_back() {
    let b = Budget::new(10_000);
    b.try_charge(6_000).unwrap();
    assert_eq!(b.try_charge(5_000), Err(Errno::ENOSPC));
    assert_eq!(b.used(), 6_000);
    b.try_charge(4_000).unwrap();
    assert_eq!(b.available(), 0);
    b.release(4_000);
    assert_eq!(b.available(), 4_000);
    assert_eq!(b.used_max(), 10_000);
    assert_eq!(b.try_charge(u64::MAX), Err(Errno::ENOSPC));
}

#[test]
fn a_child_budget_charges_its_parent_and_fails_on_either_limit() {
    let root = Budget::new(10_000);
    let tmp = Budget::child(&root, 4_000);
    tmp.try_charge(3_000).unwrap();
    assert_eq!((tmp.used(), root.used()), (3_000, 3_000));
    assert_eq!(tmp.try_charge(2_000), Err(Errno::ENOSPC));
    assert_eq!((tmp.used(), root.used()), (3_000, 3_000));
    root.try_charge(6_500).unwrap();
    assert_eq!(tmp.available(), 500);
    assert_eq!(tmp.try_charge(800), Err(Errno::ENOSPC));
    assert_eq!(
        (tmp.used(), root.used()),
        (3_000, 9_500),
        "a failed charge leaves nothing"
    );
    tmp.release(3_000);
    assert_eq!(root.used(), 6_500);
}

struct Cache {
    budget: Arc<Budget>,
    held: Mutex<u64>,
}

impl Reclaim for Cache {
    fn reclaim(&self, want: u64) -> u64 {
        let mut held = self.held.lock().unwrap();
        let give = want.min(*held);
        *held -= give;
        self.budget.release(give);
        give
    }
}

#[test]
fn a_failed_charge_asks_the_reclaimers_for_room_once() {
    let root = Budget::new(8_192);
    let cache = Arc::new(Cache {
        budget: root.clone(),
        held: Mutex::new(0),
    });
    let weak: std::sync::Weak<dyn Reclaim> = Arc::downgrade(&cache) as _;
    root.add_reclaimer(weak);
    for _ in 0..6 {
        assert!(root.try_charge_no_reclaim(1_024));
        *cache.held.lock().unwrap() += 1_024;
    }
    assert!(
        !root.try_charge_no_reclaim(4_096),
        "the cache never reclaims itself"
    );
    let file = Budget::child(&root, u64::MAX);
    file.try_charge(4_096).unwrap();
    assert_eq!(
        *cache.held.lock().unwrap(),
        4_096,
        "the cache shrank by what was missing"
    );
    assert_eq!(root.used(), 8_192);
    assert_eq!(
        file.try_charge(8_192),
        Err(Errno::ENOSPC),
        "more than the cache holds"
    );
    assert_eq!((*cache.held.lock().unwrap(), root.used()), (0, 4_096));
    drop(cache);
    root.try_charge(4_096).unwrap();
    assert_eq!(
        root.try_charge(1),
        Err(Errno::ENOSPC),
        "a dead reclaimer is skipped"
    );
}

#[test]
fn forced_charges_pass_the_limit_and_drop_returns_them() {
    let b = Budget::new(100);
    let c = Charge::forced(&b, 150);
    assert_eq!(b.used(), 150);
    assert_eq!(b.available(), 0);
    assert_eq!(b.try_charge(1), Err(Errno::ENOSPC));
    drop(c);
    assert_eq!(b.used(), 0);
    b.try_charge(100).unwrap();
}

#[test]
fn concurrent_charges_never_pass_the_limit() {
    let b = Budget::new(64 * 1024);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                let mut got = 0u64;
                for _ in 0..10_000 {
                    if b.try_charge(1_000).is_ok() {
                        got += 1_000;
                        assert!(b.used() <= 64 * 1024);
                        b.release(1_000);
                        got -= 1_000;
                    }
                }
                got
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 0);
    }
    assert_eq!(b.used(), 0);
    assert!(b.used_max() <= 64 * 1024);
}

#[test]
fn the_limit_can_change_but_not_below_what_is_charged() {
    let b = Budget::new(10_000);
    b.try_charge(6_000).unwrap();
    assert_eq!(b.set_limit(5_000), Err(Errno::EBUSY));
    assert_eq!(b.limit(), 10_000);
    b.set_limit(7_000).unwrap();
    assert_eq!(b.try_charge(2_000), Err(Errno::ENOSPC));
    b.set_limit(u64::MAX).unwrap();
    b.try_charge(2_000).unwrap();
}
