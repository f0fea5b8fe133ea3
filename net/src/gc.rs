//! Descriptors in flight (`unp_rights`) and their garbage collector (`unp_gc`).
//!
//! Descriptors sent with `SCM_RIGHTS` are open files in a receive buffer. They are counted
//! and bounded, as NetBSD bounds them by `maxfiles / unp_rights_ratio` (`EAGAIN` past it),
//! so a client that keeps sending descriptors into buffers nobody reads holds a bounded
//! number of open files. A socket whose own file sits in a buffer that only it can reach —
//! sent over itself, or two sockets sent over each other, then every descriptor closed —
//! would keep itself alive; [`collect`] finds such files (mark and sweep from the files
//! something else still holds) and flushes the buffers of the unreachable sockets. It runs
//! when a socket is closed while descriptors are in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use kernel::file::File;

use crate::sock::{Ctl, Sock};

/// Most descriptors in flight in the whole server.
pub const RIGHTS_MAX: usize = 1024;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Sockets that were given descriptors (weak: the list never keeps one alive).
static HOLDERS: Mutex<Vec<Weak<Sock>>> = Mutex::new(Vec::new());

/// A collection is running (one at a time; a close during it does not start another).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Takes `n` places; `false` (nothing taken) past [`RIGHTS_MAX`].
pub fn enter_flight(n: usize) -> bool {
    IN_FLIGHT
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
            (c + n <= RIGHTS_MAX).then_some(c + n)
        })
        .is_ok()
}

/// Counts `n` files in flight again without a bound (they are about to be discarded).
pub fn enter_flight_forced(n: usize) {
    IN_FLIGHT.fetch_add(n, Ordering::AcqRel);
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

/// Notes that `so` holds descriptors in its buffer.
pub fn note_holder(so: &Arc<Sock>) {
    let mut h = HOLDERS.lock().unwrap_or_else(|e| e.into_inner());
    if h.len() >= 64 && h.len().is_power_of_two() {
        h.retain(|w| w.strong_count() > 0);
    }
    if !h.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(so))) {
        h.push(Arc::downgrade(so));
    }
}

/// `unp_gc`: flushes the buffers of sockets that nothing outside the buffers of such
/// sockets can reach any more. Conservative under concurrency: a file some syscall holds
/// at the moment counts as reachable.
pub fn collect() {
    if in_flight() == 0 || RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let holders: Vec<Arc<Sock>> = {
        let mut h = HOLDERS.lock().unwrap_or_else(|e| e.into_inner());
        h.retain(|w| w.strong_count() > 0);
        h.iter().filter_map(Weak::upgrade).collect()
    };
    // Snapshot: each holder's files in flight, one clone per distinct file.
    let mut files: HashMap<*const File, (Arc<File>, usize)> = HashMap::new();
    let mut held: Vec<Vec<*const File>> = Vec::with_capacity(holders.len());
    for h in &holders {
        let st = h.lock();
        let mut mine = Vec::new();
        for r in &st.rcv {
            for c in &r.ctl {
                if let Ctl::Rights(fs) = c {
                    for f in fs {
                        let e = files
                            .entry(Arc::as_ptr(f))
                            .or_insert_with(|| (f.clone(), 0));
                        e.1 += 1;
                        mine.push(Arc::as_ptr(f));
                    }
                }
            }
        }
        held.push(mine);
    }
    // The file of each holder that is itself in flight.
    let mut file_of: HashMap<*const Sock, *const File> = HashMap::new();
    for (p, (f, _)) in &files {
        if let Some(so) = crate::local::sock_of(f) {
            file_of.insert(Arc::as_ptr(&so), *p);
        }
    }
    // Roots: files held from outside the buffers (a descriptor, a syscall, a queue).
    let mut reach: HashMap<*const File, bool> = files
        .iter()
        .map(|(p, (f, occ))| (*p, Arc::strong_count(f) > occ + 1))
        .collect();
    // A holder is live when its file is not in flight or is reachable; a live holder
    // makes everything in its buffer reachable (a worklist over the holders).
    let index: HashMap<*const Sock, usize> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| (Arc::as_ptr(h), i))
        .collect();
    let holder_of_file: HashMap<*const File, usize> = file_of
        .iter()
        .filter_map(|(so, f)| index.get(so).map(|&i| (*f, i)))
        .collect();
    let mut work: Vec<usize> = holders
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            file_of
                .get(&Arc::as_ptr(h))
                .is_none_or(|f| reach.get(f).copied().unwrap_or(true))
        })
        .map(|(i, _)| i)
        .collect();
    let mut seen = vec![false; holders.len()];
    while let Some(i) = work.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        for f in &held[i] {
            if let Some(r) = reach.get_mut(f) {
                if !*r {
                    *r = true;
                    if let Some(&j) = holder_of_file.get(f) {
                        work.push(j);
                    }
                }
            }
        }
    }
    let dead: Vec<Arc<Sock>> = holders
        .iter()
        .filter(|h| {
            file_of
                .get(&Arc::as_ptr(h))
                .is_some_and(|f| !reach.get(f).copied().unwrap_or(true))
        })
        .cloned()
        .collect();
    drop(holders);
    for so in &dead {
        so.flush();
    }
    drop(dead);
    let clones: Vec<Arc<File>> = files.into_values().map(|(f, _)| f).collect();
    crate::sock::discard_plain(clones);
    RUNNING.store(false, Ordering::Release);
}
