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

#[test]
fn heap_bytes_counts_the_allocator_header_and_rounding() {
    assert_eq!(heap_bytes(0), 32);
    assert_eq!(heap_bytes(24), 32);
    assert_eq!(heap_bytes(25), 48);
    assert_eq!(heap_bytes(1000), 1008);
    assert_eq!(heap_bytes(4096), 4112);
}

#[test]
fn a_fallible_charge_grows_shrinks_and_gives_back_on_drop() {
    let b = Budget::new(1_000);
    let mut c = Charge::try_new(&b, 400).unwrap();
    assert_eq!(Charge::try_new(&b, 700).map(|_| ()), Err(Errno::ENOSPC));
    c.try_grow(500).unwrap();
    assert_eq!(c.try_grow(200), Err(Errno::ENOSPC), "past the limit");
    assert_eq!(
        (c.bytes(), b.used()),
        (900, 900),
        "a refused growth adds nothing"
    );
    c.shrink(300);
    assert_eq!((c.bytes(), b.used()), (600, 600));
    c.shrink(10_000);
    assert_eq!(
        c.bytes(),
        0,
        "a shrink never gives back more than the charge holds"
    );
    c.try_grow(1_000).unwrap();
    drop(c);
    assert_eq!(b.used(), 0);
}

fn mount_with(budget: &Arc<Budget>) -> Arc<crate::vfs::Mount> {
    use crate::vfs::Mount;
    Arc::new(Mount::new(
        crate::fs::FsKind::Tmpfs.fs_type(),
        None,
        0,
        b"/t",
        b"tmpfs",
        1,
        2,
        budget.clone(),
    ))
}

#[test]
fn a_vnode_is_charged_with_its_symlink_target_and_refused_past_the_budget() {
    use crate::vfs::{Attr, Body, VType, Vnode, VNODE_CHARGE_BYTES};
    let b = Budget::new(10 * VNODE_CHARGE_BYTES);
    let m = mount_with(&b);
    let target = vec![b't'; 1000];
    let lnk = Vnode::try_new(
        &m,
        3,
        VType::Lnk,
        Attr::default(),
        Body::Link(target.clone()),
    )
    .unwrap();
    assert_eq!(b.used(), VNODE_CHARGE_BYTES + heap_bytes(1000));
    let mut held = vec![lnk];
    let refused = loop {
        match Vnode::try_new(
            &m,
            4,
            VType::Lnk,
            Attr::default(),
            Body::Link(target.clone()),
        ) {
            Ok(v) => held.push(v),
            Err(e) => break e,
        }
    };
    assert_eq!(refused, Errno::ENOSPC);
    assert!(b.used() <= b.limit());
    assert_eq!(
        m.state().nodes(),
        held.len() as u64,
        "a refused node is not counted"
    );
    drop(held);
    assert_eq!(b.used(), 0);
}

#[test]
fn directory_entries_are_charged_by_name_and_given_back_on_remove_and_drop() {
    use crate::vfs::memnode::{dirent_charge_bytes, Dir};
    use crate::vfs::{Attr, Body, VType, Vnode};
    let b = Budget::new(1 << 20);
    let m = mount_with(&Budget::unlimited());
    let node = Vnode::try_new(&m, 3, VType::Reg, Attr::default(), Body::Special).unwrap();
    let mut d = Dir::new(std::sync::Weak::new(), 0, &b);
    let long = [b'n'; 255];
    d.insert(&long, node.clone()).unwrap();
    d.insert(b"x", node.clone()).unwrap();
    let both = dirent_charge_bytes(255) + dirent_charge_bytes(1);
    assert_eq!(b.used(), both);
    assert!(
        dirent_charge_bytes(255) >= 2 * 255 + 100,
        "names and slots are counted"
    );
    assert_eq!(d.insert(b"x", node.clone()), Err(Errno::EEXIST));
    assert_eq!(b.used(), both, "a refused insert charges nothing");
    d.replace(b"x", node.clone()).unwrap();
    assert_eq!(b.used(), both, "replacing a node keeps the name's charge");
    d.remove(&long).unwrap();
    assert_eq!(b.used(), dirent_charge_bytes(1));
    // Hard links: every name of the same node is charged.
    let mut i = 0u32;
    let refused = loop {
        match d.insert(format!("{i:0>200}").as_bytes(), node.clone()) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(refused, Errno::ENOSPC);
    assert!(b.used() <= b.limit() && i > 100);
    drop(d);
    assert_eq!(
        b.used(),
        0,
        "a dropped directory gives its entries' charge back"
    );
}

#[test]
fn lock_records_are_charged_and_refused_with_enomem() {
    use crate::lock::{LockType, Locks, Owner, Range};
    let b = Budget::new(64 << 10);
    let l = Locks::with_budget(b.clone());
    let one = |i: i64| Range {
        start: 2 * i,
        end: 2 * i,
    };
    let mut n = 0;
    let refused = loop {
        match l.set(7, Owner::Proc(1), 0, one(n), LockType::Write) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(refused, Errno::ENOMEM);
    assert!(n > 500, "only {n} records in 64 KiB");
    assert!(b.used() <= b.limit());
    assert_eq!(l.count(7), n as usize);
    l.release_proc(1);
    assert_eq!(
        (l.objects(), b.used()),
        (0, 0),
        "exit gives every record back"
    );
    // An unlock that splits a record needs one more: past the budget, ENOMEM and untouched.
    l.set(7, Owner::Proc(1), 0, Range::ALL, LockType::Write)
        .unwrap();
    let filler = b.available();
    b.try_charge(filler).unwrap();
    let mut k = 0;
    let e = loop {
        match l.clear(7, Owner::Proc(1), 0, one(k)) {
            Ok(()) => k += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(e, Errno::ENOMEM);
    assert!(k >= 1, "the list had room for a split");
    let count = l.count(7);
    b.release(filler);
    l.clear(7, Owner::Proc(1), 0, one(k)).unwrap();
    assert_eq!(l.count(7), count + 1);
    l.release_proc(1);
    assert_eq!(b.used(), 0);
}

#[test]
fn pipes_are_charged_when_made_and_refused_with_enomem() {
    use crate::abi::Timespec;
    use crate::file::pipe::{Pipe, PIPE_CHARGE_BYTES};
    let b = Budget::new(3 * PIPE_CHARGE_BYTES);
    let now = Timespec::default();
    let pipes: Vec<_> = (0..3).map(|_| Pipe::pair(now, 0, 0, &b).unwrap()).collect();
    assert_eq!(b.used(), 3 * PIPE_CHARGE_BYTES);
    assert_eq!(Pipe::pair(now, 0, 0, &b).err(), Some(Errno::ENOMEM));
    drop(pipes);
    assert_eq!(b.used(), 0);
}
