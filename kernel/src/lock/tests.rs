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
    l.set(KEY, a, r(0, 99), LockType::Read).unwrap();
    // A read lock inside our read lock changes nothing.
    l.set(KEY, a, r(10, 19), LockType::Read).unwrap();
    assert_eq!(l.count(KEY), 1);
    // A write lock in the middle splits it in three.
    l.set(KEY, a, r(10, 19), LockType::Write).unwrap();
    assert_eq!(l.count(KEY), 3);
    let b = Owner::Proc(3);
    let held = |s, e| {
        l.get(KEY, b, r(s, e), LockType::Write)
            .map(|h| (h.range, h.ty))
    };
    assert_eq!(held(0, 200), Some((r(0, 9), LockType::Read)));
    assert_eq!(held(12, 200), Some((r(10, 19), LockType::Write)));
    assert_eq!(held(50, 60), Some((r(20, 99), LockType::Read)));
    assert_eq!(held(100, 200), None);
    // Unlocking a hole splits; unlocking everything empties.
    l.clear(KEY, a, r(30, 39)).unwrap();
    assert_eq!(l.count(KEY), 4);
    assert_eq!(held(30, 39), None);
    l.clear(KEY, a, Range::ALL).unwrap();
    assert_eq!((l.count(KEY), l.objects()), (0, 0));
}

#[test]
fn conflicts_between_processes() {
    let l = Locks::new();
    let (a, b) = (Owner::Proc(2), Owner::Proc(3));
    l.set(KEY, a, r(0, 9), LockType::Write).unwrap();
    assert_eq!(l.set(KEY, b, r(5, 5), LockType::Read), Err(Errno::EAGAIN));
    l.set(KEY, b, r(10, 20), LockType::Read).unwrap();
    l.set(KEY, a, r(15, 30), LockType::Read).unwrap();
    assert_eq!(
        l.set(KEY, a, r(20, 20), LockType::Write),
        Err(Errno::EAGAIN)
    );
    // Other objects are separate.
    l.set(KEY + 1, b, r(0, 9), LockType::Write).unwrap();
    l.release_posix(KEY, 2);
    l.set(KEY, b, r(0, 9), LockType::Write).unwrap();
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
    l.set(KEY, Owner::Proc(f.p.pid()), r(0, 9), LockType::Write)
        .unwrap();
    let (l2, q2) = (l.clone(), q.clone());
    let waiter =
        thread::spawn(move || run(l2.set_wait(&q2, KEY, Owner::Proc(3), r(5, 5), LockType::Read)));
    thread::sleep(Duration::from_millis(20));
    assert!(!waiter.is_finished());
    l.clear(KEY, Owner::Proc(f.p.pid()), r(0, 5)).unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    // Now q holds [5,5]; p waits for it and q's client disconnects: p is not disturbed,
    // but a waiter of q's own is interrupted.
    let (l2, q2) = (l.clone(), q.clone());
    l.set(KEY, Owner::Proc(2), r(100, 100), LockType::Write)
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
    l.set(KEY, p, r(0, 0), LockType::Write).unwrap();
    l.set(KEY + 1, qp, r(0, 0), LockType::Write).unwrap();
    let (l2, q2) = (l.clone(), q.clone());
    let waiter = thread::spawn(move || run(l2.set_wait(&q2, KEY, qp, r(0, 0), LockType::Write)));
    thread::sleep(Duration::from_millis(20));
    // p would wait for q, which waits for p.
    let e = run(l.set_wait(&f.p, KEY + 1, p, r(0, 0), LockType::Write));
    assert_eq!(e, Err(Errno::EDEADLK));
    l.clear(KEY, p, Range::ALL).unwrap();
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
        .get(KEY, Owner::Proc(2), Range::ALL, LockType::Write)
        .unwrap();
    assert_eq!(probe.owner, o1.owner());
    // Blocking upgrade: o2 drops its shared lock, waits for o1's last close.
    let (p, l2) = (f.p.clone(), l.clone());
    let waiter = thread::spawn(move || {
        let res = run(flock(&p, &o2, LOCK_EX));
        (
            res,
            l2.get(KEY, Owner::Proc(9), Range::ALL, LockType::Read)
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
