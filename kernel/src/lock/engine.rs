//! The lock lists (`lf_setlock`, `lf_clearlock`, `lf_getblock`) and deadlock detection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::sync::{self, WaitQueue};
use crate::{Errno, Proc, Result};

/// How many waiting processes deadlock detection follows before it assumes a cycle
/// (`maxlockdepth`).
pub const MAX_DEPTH: usize = 50;
/// Most locks on one object; a lock that would pass it fails with `ENOMEM` (NetBSD's
/// `lf_alloc` failing). Unlocks may always split.
pub const LOCKS_PER_OBJECT_MAX: usize = 16384;

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    /// `F_RDLCK`.
    Read,
    /// `F_WRLCK`.
    Write,
}

/// Who holds a lock: a process (POSIX record locks) or an open file (flock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// `F_POSIX`: the process with this pid.
    Proc(i32),
    /// `F_FLOCK`: the open file with this [`FileLockOwner`] id.
    File(u64),
}

/// Bytes `start..=end`; `end == i64::MAX` means "to end of file" (NetBSD's −1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: i64,
    /// Last byte, inclusive.
    pub end: i64,
}

impl Range {
    /// The whole file.
    pub const ALL: Range = Range {
        start: 0,
        end: i64::MAX,
    };

    fn overlaps(&self, o: &Range) -> bool {
        self.start <= o.end && o.start <= self.end
    }

    fn contains(&self, o: &Range) -> bool {
        self.start <= o.start && o.end <= self.end
    }
}

#[derive(Clone, Copy, Debug)]
struct Lock {
    range: Range,
    ty: LockType,
    owner: Owner,
}

/// The locks on one object and its waiters.
#[derive(Default)]
struct Obj {
    list: Mutex<Vec<Lock>>,
    waiters: WaitQueue,
}

impl Obj {
    fn lock(&self) -> MutexGuard<'_, Vec<Lock>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A blocked `F_SETLKW` of a process: which owner it waits for.
struct Wait {
    token: u64,
    blocker: Owner,
}

/// The advisory locks of a kernel.
#[derive(Default)]
pub struct Locks {
    objs: Mutex<HashMap<u64, Arc<Obj>>>,
    /// Blocked POSIX requests by pid (NetBSD follows `l_wchan` of the process's LWP).
    waits: Mutex<HashMap<i32, Vec<Wait>>>,
    next_id: AtomicU64,
}

/// The flock(2) identity of one open file; dropping it releases the file's flock locks.
pub struct FileLockOwner {
    locks: Arc<Locks>,
    key: u64,
    id: u64,
}

impl FileLockOwner {
    /// The owner to pass to [`Locks`].
    pub fn owner(&self) -> Owner {
        Owner::File(self.id)
    }

    /// The key of the locked object.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// The lock table.
    pub fn locks(&self) -> &Arc<Locks> {
        &self.locks
    }
}

impl Drop for FileLockOwner {
    fn drop(&mut self) {
        self.locks.clear(self.key, self.owner(), Range::ALL);
    }
}

impl Locks {
    /// No locks.
    pub fn new() -> Locks {
        Locks::default()
    }

    /// A flock identity for a new open file of object `key`.
    pub fn file_owner(self: &Arc<Self>, key: u64) -> FileLockOwner {
        FileLockOwner {
            locks: self.clone(),
            key,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn obj(&self, key: u64) -> Arc<Obj> {
        let mut objs = self.objs.lock().unwrap_or_else(|e| e.into_inner());
        objs.entry(key).or_default().clone()
    }

    fn find(&self, key: u64) -> Option<Arc<Obj>> {
        let objs = self.objs.lock().unwrap_or_else(|e| e.into_inner());
        objs.get(&key).cloned()
    }

    /// Forgets `key`'s entry when nothing is locked or waited for.
    fn tidy(&self, key: u64) {
        let mut objs = self.objs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = objs.get(&key) {
            if Arc::strong_count(o) == 1 && o.lock().is_empty() && o.waiters.sleepers() == 0 {
                objs.remove(&key);
            }
        }
    }

    /// `lf_getlock`: the first lock of another owner that conflicts with `ty` on `range`.
    pub fn get(&self, key: u64, owner: Owner, range: Range, ty: LockType) -> Option<Held> {
        let obj = self.find(key)?;
        let list = obj.lock();
        blocker(&list, owner, &range, ty).map(|l| Held {
            range: l.range,
            ty: l.ty,
            owner: l.owner,
        })
    }

    /// `F_SETLK`: takes the lock or fails with `EAGAIN` on a conflict.
    pub fn set(&self, key: u64, owner: Owner, range: Range, ty: LockType) -> Result<()> {
        let obj = self.obj(key);
        let res = {
            let mut list = obj.lock();
            match blocker(&list, owner, &range, ty) {
                Some(_) => Err(Errno::EAGAIN),
                None => apply(&mut list, owner, range, ty),
            }
        };
        obj.waiters.wake_all();
        drop(obj);
        self.tidy(key);
        res
    }

    /// `F_SETLKW`/flock without `LOCK_NB`: waits (interruptibly, as `p`) for the lock.
    /// `EDEADLK` when a POSIX request would wait in a cycle.
    pub async fn set_wait(
        &self,
        p: &Proc,
        key: u64,
        owner: Owner,
        range: Range,
        ty: LockType,
    ) -> Result<()> {
        let obj = self.obj(key);
        let mut wait = WaitEntry {
            locks: self,
            pid: p.pid(),
            token: self.next_id.fetch_add(1, Ordering::Relaxed),
            posix: matches!(owner, Owner::Proc(_)),
        };
        let mut released_shared = false;
        let res = sync::wait_for(p, &obj.waiters, || {
            let mut list = obj.lock();
            let Some(b) = blocker(&list, owner, &range, ty).map(|l| l.owner) else {
                wait.leave();
                return Some(apply(&mut list, owner, range, ty));
            };
            if let (Owner::Proc(_), Owner::Proc(_)) = (owner, b) {
                if let Err(e) = wait.enter(b) {
                    return Some(Err(e));
                }
            }
            // A flock upgrade gives up its shared lock before sleeping.
            if matches!(owner, Owner::File(_)) && ty == LockType::Write && !released_shared {
                released_shared = true;
                let before = list.len();
                clear_in(&mut list, owner, &Range::ALL);
                if list.len() != before {
                    drop(list);
                    obj.waiters.wake_all();
                }
            }
            None
        })
        .await
        .and_then(|r| r);
        drop(wait);
        obj.waiters.wake_all();
        drop(obj);
        self.tidy(key);
        res
    }

    /// `lf_clearlock`: releases `owner`'s locks on `range` (splitting them as needed).
    pub fn clear(&self, key: u64, owner: Owner, range: Range) {
        let Some(obj) = self.find(key) else {
            return;
        };
        let changed = {
            let mut list = obj.lock();
            let had = list
                .iter()
                .any(|l| l.owner == owner && l.range.overlaps(&range));
            clear_in(&mut list, owner, &range);
            had
        };
        if changed {
            obj.waiters.wake_all();
        }
        drop(obj);
        self.tidy(key);
    }

    /// Close of any descriptor of object `key` by process `pid`: its record locks go.
    pub fn release_posix(&self, key: u64, pid: i32) {
        self.clear(key, Owner::Proc(pid), Range::ALL);
    }

    /// Process exit: every record lock of `pid`, on every object.
    pub fn release_proc(&self, pid: i32) {
        let keys: Vec<u64> = {
            let objs = self.objs.lock().unwrap_or_else(|e| e.into_inner());
            objs.iter()
                .filter(|(_, o)| o.lock().iter().any(|l| l.owner == Owner::Proc(pid)))
                .map(|(k, _)| *k)
                .collect()
        };
        for key in keys {
            self.release_posix(key, pid);
        }
    }

    /// Number of locks on `key` (for tests and statistics).
    pub fn count(&self, key: u64) -> usize {
        self.find(key).map_or(0, |o| o.lock().len())
    }

    /// Number of objects with lock state.
    pub fn objects(&self) -> usize {
        self.objs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn waits(&self) -> MutexGuard<'_, HashMap<i32, Vec<Wait>>> {
        self.waits.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A lock that blocks a request, as `F_GETLK` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// Its bytes.
    pub range: Range,
    /// Its type.
    pub ty: LockType,
    /// Its owner.
    pub owner: Owner,
}

/// A process's registration as waiting for a POSIX lock; removed when dropped.
struct WaitEntry<'a> {
    locks: &'a Locks,
    pid: i32,
    token: u64,
    posix: bool,
}

impl WaitEntry<'_> {
    /// Records that we wait for `blocker`, unless that closes a cycle (`EDEADLK`).
    fn enter(&mut self, blocker: Owner) -> Result<()> {
        let mut waits = self.locks.waits();
        remove(&mut waits, self.pid, self.token);
        if deadlock(&waits, self.pid, blocker) {
            return Err(Errno::EDEADLK);
        }
        waits.entry(self.pid).or_default().push(Wait {
            token: self.token,
            blocker,
        });
        Ok(())
    }

    fn leave(&mut self) {
        if self.posix {
            remove(&mut self.locks.waits(), self.pid, self.token);
        }
    }
}

impl Drop for WaitEntry<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

fn remove(waits: &mut HashMap<i32, Vec<Wait>>, pid: i32, token: u64) {
    if let Some(v) = waits.get_mut(&pid) {
        v.retain(|w| w.token != token);
        if v.is_empty() {
            waits.remove(&pid);
        }
    }
}

/// The walk of `lf_setlock`: from the owner of the blocking lock, follow what each process
/// waits for; reaching `me` is a deadlock, and so is a chain of [`MAX_DEPTH`] processes. A
/// process with several waiting requests (threads) ends the walk, as NetBSD's `p_nlwps > 1`.
fn deadlock(waits: &HashMap<i32, Vec<Wait>>, me: i32, blocker: Owner) -> bool {
    let Owner::Proc(mut pid) = blocker else {
        return false;
    };
    let mut i = 0;
    while i < MAX_DEPTH {
        i += 1;
        let next = match waits.get(&pid).map(Vec::as_slice) {
            Some([w]) => w.blocker,
            _ => return false,
        };
        match next {
            Owner::Proc(p) if p == me => return true,
            Owner::Proc(p) => pid = p,
            Owner::File(_) => return false,
        }
    }
    true
}

/// `lf_getblock`: the first lock (lowest start) of another owner that overlaps `range` where
/// one of the two is exclusive.
fn blocker<'a>(list: &'a [Lock], owner: Owner, range: &Range, ty: LockType) -> Option<&'a Lock> {
    list.iter().find(|l| {
        l.owner != owner
            && l.range.overlaps(range)
            && (ty == LockType::Write || l.ty == LockType::Write)
    })
}

/// The lock-adding half of `lf_setlock`: a same-type lock of ours that covers the range
/// already does; otherwise our overlapping locks give way (trimmed or split) and the new one
/// goes in, in start order.
fn apply(list: &mut Vec<Lock>, owner: Owner, range: Range, ty: LockType) -> Result<()> {
    let covered = list
        .iter()
        .any(|l| l.owner == owner && l.ty == ty && l.range.contains(&range));
    if covered {
        return Ok(());
    }
    if list.len() + 2 > LOCKS_PER_OBJECT_MAX {
        return Err(Errno::ENOMEM);
    }
    clear_in(list, owner, &range);
    let at = list.partition_point(|l| l.range.start <= range.start);
    list.insert(at, Lock { range, ty, owner });
    Ok(())
}

/// Removes `owner`'s locks from `range`, keeping the parts outside it.
fn clear_in(list: &mut Vec<Lock>, owner: Owner, range: &Range) {
    if !list
        .iter()
        .any(|l| l.owner == owner && l.range.overlaps(range))
    {
        return;
    }
    let mut out = Vec::with_capacity(list.len() + 1);
    for l in list.drain(..) {
        if l.owner != owner || !l.range.overlaps(range) {
            out.push(l);
            continue;
        }
        if l.range.start < range.start {
            let end = range.start - 1;
            out.push(Lock {
                range: Range { end, ..l.range },
                ..l
            });
        }
        if l.range.end > range.end {
            let start = range.end + 1;
            out.push(Lock {
                range: Range { start, ..l.range },
                ..l
            });
        }
    }
    out.sort_by_key(|l| l.range.start);
    *list = out;
}
