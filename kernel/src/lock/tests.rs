//! Tests of the lock engine: ranges, conflicts, release, waiting, deadlock, flock.

use std::thread;
use std::time::Duration;

use super::sys::{F_RDLCK, F_UNLCK, F_WRLCK, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN};
use super::*;
use crate::abi::{FREAD, FWRITE, F_GETLK, F_SETLK, F_SETLKW, SEEK_CUR, SEEK_END};
use crate::file::{Console, File, FileKind};
use crate::sync::tests::run;
use crate::testutil::Fixture;
use crate::Errno;

const KEY: u64 = 42;

fn r(start: i64, end: i64) -> Range {
    Range { start, end }
}

fn fl(ty: i16, start: i64, len: i64) -> Flock {
    Flock {
        start,
        len,
        ty,
        ..Flock::default()
    }
}

#[test]
fn flock_struct_and_ranges() {
    let f = Flock {
        start: 10,
        len: -4,
        pid: 7,
        ty: F_WRLCK,
        whence: SEEK_END as i16,
    };
    assert_eq!(Flock::decode(&f.encode()), f);
    assert_eq!(f.encode()[20..24], [3, 0, 2, 0]);
    assert_eq!(f.range(100), Ok(r(106, 109)));
    assert_eq!(fl(F_RDLCK, 5, 0).range(0), Ok(r(5, i64::MAX)));
    assert_eq!(fl(F_RDLCK, 5, 3).range(0), Ok(r(5, 7)));
    assert_eq!(fl(F_RDLCK, 5, -5).range(0), Ok(r(0, 4)));
    assert_eq!(fl(F_RDLCK, 5, -6).range(0), Err(Errno::EINVAL));
    assert_eq!(fl(F_RDLCK, -1, 1).range(0), Err(Errno::EINVAL));
    assert_eq!(fl(F_RDLCK, i64::MAX, 2).range(0), Err(Errno::EINVAL));
    let bad = Flock {
        whence: 3,
        ..fl(F_RDLCK, 0, 0)
    };
    assert_eq!(bad.range(0), Err(Errno::EINVAL));
}

#[test]
fn own_locks_split_and_give_way() {
    let l = Locks::new();
    let a = Owner::Proc(2);
    l.set(KEY, a, 0, r(0, 99), LockType::Read).unwrap();
    // A read lock inside our read lock changes nothing.
    l.set(KEY, a, 0, r(10, 19), LockType::Read).unwrap();
    assert_eq!(l.count(KEY), 1);
    // A write lock in the middle splits it in three.
    l.set(KEY, a, 0, r(10, 19), LockType::Write).unwrap();
    assert_eq!(l.count(KEY), 3);
    let b = Owner::Proc(3);
    let held = |s, e| {
        l.get(KEY, b, 0, r(s, e), LockType::Write)
            .map(|h| (h.range, h.ty))
    };
    assert_eq!(held(0, 200), Some((r(0, 9), LockType::Read)));
    assert_eq!(held(12, 200), Some((r(10, 19), LockType::Write)));
    assert_eq!(held(50, 60), Some((r(20, 99), LockType::Read)));
    assert_eq!(held(100, 200), None);
    // Unlocking a hole splits; unlocking everything empties.
    l.clear(KEY, a, 0, r(30, 39)).unwrap();
    assert_eq!(l.count(KEY), 4);
    assert_eq!(held(30, 39), None);
    l.clear(KEY, a, 0, Range::ALL).unwrap();
    assert_eq!((l.count(KEY), l.objects()), (0, 0));
}

#[test]
fn conflicts_between_processes() {
    let l = Locks::new();
    let (a, b) = (Owner::Proc(2), Owner::Proc(3));
    l.set(KEY, a, 0, r(0, 9), LockType::Write).unwrap();
    assert_eq!(
        l.set(KEY, b, 0, r(5, 5), LockType::Read),
        Err(Errno::EAGAIN)
    );
    l.set(KEY, b, 0, r(10, 20), LockType::Read).unwrap();
    l.set(KEY, a, 0, r(15, 30), LockType::Read).unwrap();
    assert_eq!(
        l.set(KEY, a, 0, r(20, 20), LockType::Write),
        Err(Errno::EAGAIN)
    );
    // Other objects are separate.
    l.set(KEY + 1, b, 0, r(0, 9), LockType::Write).unwrap();
    l.release_posix(KEY, 2);
    l.set(KEY, b, 0, r(0, 9), LockType::Write).unwrap();
    l.release_proc(3);
    assert_eq!(l.objects(), 0);
}

#[test]
fn fcntl_checks_modes_and_getlk_reports_the_blocker() {
    let f = Fixture::new();
    let q = f.k.spawn_guest(b"q").unwrap();
    let rd = File::new(FileKind::Console(Console), FREAD);
    let rw = File::new(FileKind::Console(Console), FREAD | FWRITE);
    let l = f.k.locks().clone();
    let lock = |p, fp: &File, cmd, fl: &mut Flock| run(fcntl_lock(&l, p, fp, KEY, 1000, cmd, fl));
    assert_eq!(
        lock(&f.p, &rd, F_SETLK, &mut fl(F_WRLCK, 0, 0)),
        Err(Errno::EBADF)
    );
    assert_eq!(
        lock(&f.p, &rd, F_SETLK, &mut fl(9, 0, 0)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        lock(&f.p, &rd, F_GETLK, &mut fl(0, 0, 0)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        lock(&f.p, &rd, 99, &mut fl(F_RDLCK, 0, 0)),
        Err(Errno::EINVAL)
    );
    rw.set_offset(100);
    let mut mine = Flock {
        whence: SEEK_CUR as i16,
        ..fl(F_WRLCK, -50, 10)
    };
    assert_eq!(lock(&f.p, &rw, F_SETLK, &mut mine), Ok(()));
    let mut probe = fl(F_RDLCK, 0, 0);
    assert_eq!(lock(&q, &rw, F_GETLK, &mut probe), Ok(()));
    assert_eq!(
        probe,
        Flock {
            start: 50,
            len: 10,
            pid: 2,
            ty: F_WRLCK,
            whence: 0
        }
    );
    // The owner itself sees no conflict; F_UNLCK probes like a read lock.
    let mut own = fl(F_WRLCK, 0, 0);
    assert_eq!(lock(&f.p, &rw, F_GETLK, &mut own), Ok(()));
    assert_eq!(own.ty, F_UNLCK);
    let mut un = fl(F_UNLCK, 55, 1);
    assert_eq!(lock(&q, &rw, F_GETLK, &mut un), Ok(()));
    assert_eq!(un.ty, F_WRLCK);
    assert_eq!(
        lock(&q, &rw, F_SETLK, &mut fl(F_RDLCK, 59, 1)),
        Err(Errno::EAGAIN)
    );
    assert_eq!(lock(&f.p, &rw, F_SETLK, &mut fl(F_UNLCK, 0, 0)), Ok(()));
    assert_eq!(lock(&q, &rw, F_SETLKW, &mut fl(F_RDLCK, 59, 1)), Ok(()));
    // Exit releases the process's locks.
    f.k.exit_process(&q);
    assert_eq!(l.objects(), 0);
}

#[test]
fn setlkw_waits_across_threads_and_is_interrupted_by_exit() {
    let f = Fixture::new();
    let q = f.k.spawn_guest(b"q").unwrap();
    let l = f.k.locks().clone();
    l.set(KEY, Owner::Proc(f.p.pid()), 0, r(0, 9), LockType::Write)
        .unwrap();
    let (l2, q2) = (l.clone(), q.clone());
    let waiter =
        thread::spawn(move || run(l2.set_wait(&q2, KEY, Owner::Proc(3), r(5, 5), LockType::Read)));
    thread::sleep(Duration::from_millis(20));
    assert!(!waiter.is_finished());
    l.clear(KEY, Owner::Proc(f.p.pid()), 0, r(0, 5)).unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    // Now q holds [5,5]; p waits for it and q's client disconnects: p is not disturbed,
    // but a waiter of q's own is interrupted.
    let (l2, q2) = (l.clone(), q.clone());
    l.set(KEY, Owner::Proc(2), 0, r(100, 100), LockType::Write)
        .unwrap();
    let waiter = thread::spawn(move || {
        run(l2.set_wait(&q2, KEY, Owner::Proc(3), r(100, 100), LockType::Read))
    });
    thread::sleep(Duration::from_millis(20));
    f.k.begin_exit(&q);
    assert_eq!(waiter.join().unwrap(), Err(Errno::EINTR));
    f.k.exit_process(&q);
    // p keeps [6, 9] and [100, 100].
    assert_eq!(l.count(KEY), 2);
}

#[test]
fn a_cycle_of_waiters_is_edeadlk() {
    let f = Fixture::new();
    let q = f.k.spawn_guest(b"q").unwrap();
    let l = f.k.locks().clone();
    let (p, qp) = (Owner::Proc(2), Owner::Proc(3));
    l.set(KEY, p, 0, r(0, 0), LockType::Write).unwrap();
    l.set(KEY + 1, qp, 0, r(0, 0), LockType::Write).unwrap();
    let (l2, q2) = (l.clone(), q.clone());
    let waiter = thread::spawn(move || run(l2.set_wait(&q2, KEY, qp, r(0, 0), LockType::Write)));
    thread::sleep(Duration::from_millis(20));
    // p would wait for q, which waits for p.
    let e = run(l.set_wait(&f.p, KEY + 1, p, r(0, 0), LockType::Write));
    assert_eq!(e, Err(Errno::EDEADLK));
    l.clear(KEY, p, 0, Range::ALL).unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    // No stale wait is left: p may now wait for q without EDEADLK.
    let (l2, p2) = (l.clone(), f.p.clone());
    let waiter = thread::spawn(move || run(l2.set_wait(&p2, KEY + 1, p, r(0, 0), LockType::Read)));
    thread::sleep(Duration::from_millis(20));
    l.release_proc(3);
    assert_eq!(waiter.join().unwrap(), Ok(()));
}

#[test]
fn flock_belongs_to_the_open_file() {
    let f = Fixture::new();
    let l = f.k.locks().clone();
    let (o1, o2) = (l.file_owner(KEY), l.file_owner(KEY));
    assert_eq!(run(flock(&f.p, &o1, LOCK_SH)), Ok(()));
    assert_eq!(run(flock(&f.p, &o2, LOCK_SH | LOCK_NB)), Ok(()));
    assert_eq!(run(flock(&f.p, &o2, LOCK_EX | LOCK_NB)), Err(Errno::EAGAIN));
    assert_eq!(run(flock(&f.p, &o2, 0)), Err(Errno::EINVAL));
    // A POSIX lock of the same process conflicts with a flock lock (different owners).
    let probe = l
        .get(KEY, Owner::Proc(2), 0, Range::ALL, LockType::Write)
        .unwrap();
    assert_eq!(probe.owner, o1.owner());
    // Blocking upgrade: o2 drops its shared lock, waits for o1's last close.
    let (p, l2) = (f.p.clone(), l.clone());
    let waiter = thread::spawn(move || {
        let res = run(flock(&p, &o2, LOCK_EX));
        (
            res,
            l2.get(KEY, Owner::Proc(9), 0, Range::ALL, LockType::Read)
                .map(|h| h.ty),
        )
    });
    thread::sleep(Duration::from_millis(20));
    assert_eq!(l.count(KEY), 1);
    drop(o1);
    assert_eq!(waiter.join().unwrap(), (Ok(()), Some(LockType::Write)));
    assert_eq!(l.objects(), 0);
    let o3 = l.file_owner(KEY);
    assert_eq!(run(flock(&f.p, &o3, LOCK_EX)), Ok(()));
    assert_eq!(run(flock(&f.p, &o3, LOCK_UN)), Ok(()));
    assert_eq!(l.objects(), 0);
}

/// A process of `f`'s kernel with effective uid `uid`.
fn as_uid(f: &Fixture, uid: u32) -> std::sync::Arc<crate::Proc> {
    let p = f.k.spawn_guest(b"u").unwrap();
    p.modify_cred(|c| {
        Ok(crate::proc::Cred {
            uid,
            euid: uid,
            svuid: uid,
            ..*c
        })
    })
    .unwrap();
    p
}

/// `F_SETLK` write locks of one byte on every other byte from `first` until one fails:
/// how many were granted and the error.
fn flood(l: &Locks, p: &crate::Proc, fp: &File, key: u64, first: i64, most: i64) -> (i64, Errno) {
    for i in 0..most {
        let mut one = fl(F_WRLCK, first + 2 * i, 1);
        if let Err(e) = run(fcntl_lock(l, p, fp, key, 0, F_SETLK, &mut one)) {
            return (i, e);
        }
    }
    (most, Errno::EAGAIN)
}

#[test]
fn a_uid_gets_1023_records_then_enomem() {
    let f = Fixture::new();
    let l = f.k.locks().clone();
    let rw = File::new(FileKind::Console(Console), FREAD | FWRITE);
    let u = as_uid(&f, 1000);
    // NetBSD's rump_server: 1023, then ENOMEM (the spare and the request count too).
    assert_eq!(flood(&l, &u, &rw, KEY, 0, 3000), (1023, Errno::ENOMEM));
    assert_eq!(l.records(1000), 1023);
    assert_eq!(l.count(KEY), 1023);
    let lock = |p, cmd, fl: &mut Flock| run(fcntl_lock(&l, p, &rw, KEY + 1, 0, cmd, fl));
    // The limit is the uid's, on every file and for every process of the uid; the count
    // comes before the conflict check.
    assert_eq!(
        lock(&u, F_SETLK, &mut fl(F_RDLCK, 0, 1)),
        Err(Errno::ENOMEM)
    );
    let u2 = as_uid(&f, 1000);
    assert_eq!(
        lock(&u2, F_SETLK, &mut fl(F_WRLCK, 0, 1)),
        Err(Errno::ENOMEM)
    );
    let mut probe = fl(F_WRLCK, 0, 0);
    assert_eq!(lock(&u2, F_GETLK, &mut probe), Ok(()));
    // Another uid has its own count; root has none that binds.
    let v = as_uid(&f, 1001);
    assert_eq!(flood(&l, &v, &rw, KEY + 2, 0, 3000), (1023, Errno::ENOMEM));
    assert_eq!(
        flood(&l, &f.p, &rw, KEY + 3, 0, 3000),
        (3000, Errno::EAGAIN)
    );
    assert_eq!(l.records(0), 3000);
    // Unlocking one record makes room for one.
    assert_eq!(
        run(fcntl_lock(
            &l,
            &u,
            &rw,
            KEY,
            0,
            F_SETLK,
            &mut fl(F_UNLCK, 10, 1)
        )),
        Ok(())
    );
    assert_eq!(l.records(1000), 1022);
    assert_eq!(lock(&u2, F_SETLK, &mut fl(F_WRLCK, 0, 1)), Ok(()));
    assert_eq!(
        lock(&u2, F_SETLK, &mut fl(F_WRLCK, 2, 1)),
        Err(Errno::ENOMEM)
    );
    // Close and exit give the records back, to the uid they were counted for.
    l.release_posix(KEY + 1, u2.pid());
    assert_eq!(l.records(1000), 1022);
    f.k.exit_process(&u);
    assert_eq!(l.records(1000), 0);
    f.k.exit_process(&v);
    f.k.exit_process(&f.p);
    assert_eq!((l.records(0), l.records(1001), l.objects()), (0, 0, 0));
}

#[test]
fn unlocks_may_split_up_to_twice_the_limit() {
    let f = Fixture::new();
    let l = f.k.locks().clone();
    let rw = File::new(FileKind::Console(Console), FREAD | FWRITE);
    let u = as_uid(&f, 1000);
    let lock = |fl: &mut Flock| run(fcntl_lock(&l, &u, &rw, KEY, 0, F_SETLK, fl));
    assert_eq!(lock(&mut fl(F_WRLCK, 0, 1 << 20)), Ok(()));
    // Each hole splits a record in two: the uid may go past 1024 up to 2047 (the unlock's
    // request and spare make 2048).
    let mut holes = 0;
    let refused = loop {
        match lock(&mut fl(F_UNLCK, 2 * holes + 1, 1)) {
            Ok(()) => holes += 1,
            Err(e) => break e,
        }
    };
    assert_eq!((holes, refused), (2046, Errno::ENOMEM));
    assert_eq!((l.records(1000), l.count(KEY)), (2047, 2047));
    // Even an unlock that would not split is refused there, unless it starts at 0 or
    // reaches the end of file (it never splits then); new locks are refused.
    assert_eq!(lock(&mut fl(F_UNLCK, 1 << 30, 1)), Err(Errno::ENOMEM));
    assert_eq!(lock(&mut fl(F_WRLCK, 1 << 30, 1)), Err(Errno::ENOMEM));
    assert_eq!(lock(&mut fl(F_UNLCK, 1 << 30, 0)), Ok(()));
    assert_eq!(lock(&mut fl(F_UNLCK, 0, 3)), Ok(()));
    assert_eq!(l.records(1000), 2045);
    // Root splits without a limit.
    let rl = |fl: &mut Flock| run(fcntl_lock(&l, &f.p, &rw, KEY + 1, 0, F_SETLK, fl));
    assert_eq!(rl(&mut fl(F_WRLCK, 0, 1 << 20)), Ok(()));
    for i in 0..3000 {
        assert_eq!(rl(&mut fl(F_UNLCK, 2 * i + 1, 1)), Ok(()));
    }
    assert_eq!(l.records(0), 3001);
    assert_eq!(lock(&mut fl(F_UNLCK, 0, 0)), Ok(()));
    assert_eq!(rl(&mut fl(F_UNLCK, 0, 0)), Ok(()));
    assert_eq!((l.records(1000), l.records(0), l.objects()), (0, 0, 0));
}

#[test]
fn records_stay_counted_for_the_uid_that_placed_them() {
    let f = Fixture::new();
    let l = f.k.locks().clone();
    let rw = File::new(FileKind::Console(Console), FREAD | FWRITE);
    let lock = |fl: &mut Flock| run(fcntl_lock(&l, &f.p, &rw, KEY, 0, F_SETLK, fl));
    // Root (saved uid 0) places a record as euid 1000 and splits it as euid 2000: the
    // split-off tail is counted for 2000, whose spare it is.
    let seteuid = |euid| {
        f.p.modify_cred(|c| Ok(crate::proc::Cred { euid, ..*c }))
            .unwrap()
    };
    seteuid(1000);
    assert_eq!(lock(&mut fl(F_WRLCK, 0, 100)), Ok(()));
    // Changing the type of exactly that range keeps the record (and its uid).
    seteuid(2000);
    assert_eq!(lock(&mut fl(F_RDLCK, 0, 100)), Ok(()));
    assert_eq!((l.records(1000), l.records(2000)), (1, 0));
    assert_eq!(lock(&mut fl(F_UNLCK, 10, 10)), Ok(()));
    assert_eq!((l.records(1000), l.records(2000)), (1, 1));
    seteuid(0);
    assert_eq!(lock(&mut fl(F_WRLCK, 50, 1)), Ok(()));
    assert_eq!(
        (l.records(1000), l.records(2000), l.records(0)),
        (1, 1, 2),
        "[0,9] of 1000, [20,49] of 2000, [50] and the split-off [51,99] of 0"
    );
    l.release_posix(KEY, f.p.pid());
    assert_eq!((l.records(1000), l.records(2000), l.records(0)), (0, 0, 0));
}

#[test]
fn flock_records_count_without_a_spare() {
    let f = Fixture::new();
    let l = f.k.locks().clone();
    let rw = File::new(FileKind::Console(Console), FREAD | FWRITE);
    let u = as_uid(&f, 1000);
    assert_eq!(flood(&l, &u, &rw, KEY, 0, 3000), (1023, Errno::ENOMEM));
    // A flock request has no spare: the 1024th record is granted, the 1025th not.
    let (o1, o2) = (l.file_owner(KEY + 1), l.file_owner(KEY + 2));
    assert_eq!(run(flock(&u, &o1, LOCK_EX | LOCK_NB)), Ok(()));
    assert_eq!(l.records(1000), 1024);
    assert_eq!(run(flock(&u, &o2, LOCK_SH | LOCK_NB)), Err(Errno::ENOMEM));
    assert_eq!(run(flock(&u, &o2, LOCK_SH)), Err(Errno::ENOMEM));
    // Unlocking is never refused; the last close gives the record back.
    assert_eq!(run(flock(&u, &o2, LOCK_UN)), Ok(()));
    drop(o1);
    assert_eq!(l.records(1000), 1023);
    assert_eq!(run(flock(&u, &o2, LOCK_SH)), Ok(()));
    drop(o2);
    f.k.exit_process(&u);
    assert_eq!((l.records(1000), l.objects()), (0, 0));
}

#[test]
fn a_waiting_request_holds_its_records() {
    let f = Fixture::new();
    let l = f.k.locks().clone();
    let u = as_uid(&f, 1000);
    l.set(KEY, Owner::Proc(f.p.pid()), 0, r(0, 0), LockType::Write)
        .unwrap();
    let (l2, u2) = (l.clone(), u.clone());
    let pid = u.pid();
    let waiter = thread::spawn(move || {
        run(l2.set_wait(&u2, KEY, Owner::Proc(pid), r(0, 0), LockType::Write))
    });
    thread::sleep(Duration::from_millis(20));
    // The request and its spare.
    assert_eq!(l.records(1000), 2);
    l.clear(KEY, Owner::Proc(f.p.pid()), 0, Range::ALL).unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    assert_eq!((l.records(1000), l.records(0)), (1, 0));
    f.k.exit_process(&u);
    assert_eq!(l.records(1000), 0);
}
