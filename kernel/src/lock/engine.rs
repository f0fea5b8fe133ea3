//! The lock lists (`lf_setlock`, `lf_clearlock`, `lf_getblock`) and deadlock detection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::mem::{heap_bytes, Budget, Charge};
use crate::sync::{self, WaitQueue};
use crate::{Errno, Proc, Result};

/// How many waiting processes deadlock detection follows before it assumes a cycle
/// (`maxlockdepth`).
pub const MAX_DEPTH: usize = 50;
/// Most locks on one object; a lock that would pass it fails with `ENOMEM` (NetBSD's
/// `lf_alloc` failing). Unlocks may split up to twice as many (`lf_alloc(2)`).
pub const LOCKS_PER_OBJECT_MAX: usize = 16384;
/// Most lock records one effective uid other than root may hold (`maxlocksperuid`): a lock
/// that would pass it fails with `ENOMEM`, an unlock that may split fails above twice as
/// many. Counted as NetBSD's `ui_lockcnt`, see [`Locks::records`].
pub const LOCKS_PER_UID_MAX: usize = 1024;
/// Bytes of one lock record in an object's list.
pub const LOCK_BYTES: usize = std::mem::size_of::<Lock>();
/// Bytes an object with lock state costs beyond its list: its `Arc<Obj>` allocation and
/// its slot in the table of objects (charged whatever the budget: objects are bounded by
/// the open files that hold their locks).
pub const OBJ_BYTES: u64 = heap_bytes(std::mem::size_of::<Obj>() + 16) + 32;

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
    /// The effective uid the record is counted for (`lf_uid`).
    uid: u32,
}

/// How an allocation may fail (`lf_alloc`'s `allowfail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cap {
    /// Always succeeds (`0`).
    None,
    /// Fails when the uid's count would pass [`LOCKS_PER_UID_MAX`] (`1`).
    Limit,
    /// Fails when it would pass twice that (`2`).
    Double,
}

/// Records counted for `uid` that no list holds yet: an operation's request record and
/// spare (`lf_advlock`'s `lock` and `sparelock`). The list takes them as it adds records;
/// what is left is given back when the grant is dropped (NetBSD's `lf_free` at `quit`).
struct Grant<'a> {
    locks: &'a Locks,
    uid: u32,
    n: usize,
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            uncount(&mut self.locks.uids(), self.uid, self.n);
        }
    }
}

/// Records an operation added to and removed from a list, by the uid each is counted for;
/// [`Locks::settle`] brings the per-uid counts up to date.
#[derive(Default)]
struct Tally {
    added: Vec<u32>,
    freed: Vec<u32>,
}

/// Takes `n` from `uid`'s count, forgetting the uid at zero.
fn uncount(uids: &mut HashMap<u32, usize>, uid: u32, n: usize) {
    if let Some(c) = uids.get_mut(&uid) {
        *c = c.saturating_sub(n);
        if *c == 0 {
            uids.remove(&uid);
        }
    }
}

/// The locks on one object and its waiters.
struct Obj {
    list: Mutex<List>,
    waiters: WaitQueue,
}

/// An object's lock records and their share of the budget: [`OBJ_BYTES`] and the list's
/// allocation ([`heap_bytes`] of its capacity), charged before the list grows.
struct List {
    locks: Vec<Lock>,
    charge: Charge,
}

impl std::ops::Deref for List {
    type Target = Vec<Lock>;
    fn deref(&self) -> &Vec<Lock> {
        &self.locks
    }
}

/// Bytes a list of `cap` records holds on the heap.
fn list_bytes(cap: usize) -> u64 {
    match cap {
        0 => 0,
        n => heap_bytes(n * LOCK_BYTES),
    }
}

impl List {
    /// Room for `extra` more records, charged first: `ENOMEM` when the budget refuses
    /// (NetBSD's `lf_alloc` failing), nothing changed then.
    fn reserve(&mut self, extra: usize) -> Result<()> {
        let need = self.locks.len() + extra;
        let cap = self.locks.capacity();
        if need <= cap {
            return Ok(());
        }
        let new_cap = need.max(cap * 2).max(4);
        let more = list_bytes(new_cap) - list_bytes(cap);
        self.charge.try_grow(more).map_err(|_| Errno::ENOMEM)?;
        self.locks.reserve_exact(new_cap - self.locks.len());
        self.settle();
        Ok(())
    }

    /// Gives back a list mostly emptied by unlocks.
    fn fit(&mut self) {
        if self.locks.len() * 4 < self.locks.capacity() {
            self.locks.shrink_to(self.locks.len() * 2);
            self.settle();
        }
    }

    /// Makes the charge what the list holds now.
    fn settle(&mut self) {
        let want = OBJ_BYTES + list_bytes(self.locks.capacity());
        let have = self.charge.bytes();
        match want.cmp(&have) {
            std::cmp::Ordering::Greater => self.charge.grow_forced(want - have),
            std::cmp::Ordering::Less => self.charge.shrink(have - want),
            std::cmp::Ordering::Equal => {}
        }
    }
}

impl Obj {
    fn new(budget: &Arc<Budget>) -> Obj {
        Obj {
            list: Mutex::new(List {
                locks: Vec::new(),
                charge: Charge::forced(budget, OBJ_BYTES),
            }),
            waiters: WaitQueue::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, List> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A blocked `F_SETLKW` of a process: which owner it waits for.
struct Wait {
    token: u64,
    blocker: Owner,
}

/// The advisory locks of a kernel.
pub struct Locks {
    /// What lock records are charged to (the kernel's `-r` budget).
    budget: Arc<Budget>,
    objs: Mutex<HashMap<u64, Arc<Obj>>>,
    /// Blocked POSIX requests by pid (NetBSD follows `l_wchan` of the process's LWP).
    waits: Mutex<HashMap<i32, Vec<Wait>>>,
    /// Records per effective uid (`ui_lockcnt`): those in lists and those of operations in
    /// progress. Only uids with records have an entry, so the map is bounded by the records
    /// (themselves bounded by the budget).
    uids: Mutex<HashMap<u32, usize>>,
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
        self.locks.release(self.key, self.owner());
    }
}

impl Default for Locks {
    fn default() -> Locks {
        Locks::with_budget(Budget::unlimited())
    }
}

impl Locks {
    /// No locks (records charged to an unlimited budget).
    pub fn new() -> Locks {
        Locks::default()
    }

    /// No locks; records are charged to `budget`.
    pub fn with_budget(budget: Arc<Budget>) -> Locks {
        Locks {
            budget,
            objs: Mutex::default(),
            waits: Mutex::default(),
            uids: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
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
        objs.entry(key)
            .or_insert_with(|| Arc::new(Obj::new(&self.budget)))
            .clone()
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

    /// `lf_getlock`: the first lock of another owner that conflicts with `ty` on `range`,
    /// asked by a caller of effective uid `uid` (whose count carries the request record
    /// meanwhile, as NetBSD's `lf_alloc(0)`).
    pub fn get(
        &self,
        key: u64,
        owner: Owner,
        uid: u32,
        range: Range,
        ty: LockType,
    ) -> Option<Held> {
        let _grant = self.alloc(uid, false, Cap::None).ok()?;
        let obj = self.find(key)?;
        let list = obj.lock();
        blocker(&list, owner, &range, ty).map(|l| Held {
            range: l.range,
            ty: l.ty,
            owner: l.owner,
        })
    }

    /// `F_SETLK` by a caller of effective uid `uid`: takes the lock or fails with `EAGAIN`
    /// on a conflict; `ENOMEM` first when `uid` (not root) has [`LOCKS_PER_UID_MAX`] records
    /// counting this request's (and a POSIX request's spare).
    pub fn set(&self, key: u64, owner: Owner, uid: u32, range: Range, ty: LockType) -> Result<()> {
        let mut grant = self.request(owner, uid, Cap::Limit)?;
        let obj = self.obj(key);
        let res = {
            let mut list = obj.lock();
            match blocker(&list, owner, &range, ty) {
                Some(_) => Err(Errno::EAGAIN),
                None => self.apply(&mut list, &mut grant, owner, range, ty),
            }
        };
        drop(grant);
        obj.waiters.wake_all();
        drop(obj);
        self.tidy(key);
        res
    }

    /// `F_SETLKW`/flock without `LOCK_NB`: waits (interruptibly, as `p`) for the lock.
    /// `EDEADLK` when a POSIX request would wait in a cycle. Counted as [`Locks::set`] for
    /// `p`'s effective uid, the request's records for as long as it waits.
    pub async fn set_wait(
        &self,
        p: &Proc,
        key: u64,
        owner: Owner,
        range: Range,
        ty: LockType,
    ) -> Result<()> {
        let mut grant = self.request(owner, p.cred().euid, Cap::Limit)?;
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
                return Some(self.apply(&mut list, &mut grant, owner, range, ty));
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
                let mut tally = Tally::default();
                clear_in(&mut list.locks, owner, &Range::ALL, None, &mut tally);
                self.settle(None, tally);
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
        drop(grant);
        obj.waiters.wake_all();
        drop(obj);
        self.tidy(key);
        res
    }

    /// `lf_clearlock` by a caller of effective uid `uid`: releases `owner`'s locks on
    /// `range` (splitting them as needed). `ENOMEM` when a split needs a record the budget
    /// (or twice the per-object limit) refuses, and — split or not — when `uid` (not root)
    /// would pass twice [`LOCKS_PER_UID_MAX`] records with this request's (and a POSIX
    /// request's spare) unless `range` starts at 0 or reaches the end of file (NetBSD's
    /// `lf_alloc(2)`); clearing [`Range::ALL`] never fails.
    pub fn clear(&self, key: u64, owner: Owner, uid: u32, range: Range) -> Result<()> {
        let cap = match range.start == 0 || range.end == i64::MAX {
            true => Cap::None,
            false => Cap::Double,
        };
        let mut grant = self.request(owner, uid, cap)?;
        self.clear_with(key, owner, range, Some(&mut grant))
    }

    /// Releases all of `owner`'s locks on `key` (a close or an exit: no request records).
    fn release(&self, key: u64, owner: Owner) {
        // The whole range never splits: this cannot fail.
        let _ = self.clear_with(key, owner, Range::ALL, None);
    }

    fn clear_with(
        &self,
        key: u64,
        owner: Owner,
        range: Range,
        grant: Option<&mut Grant<'_>>,
    ) -> Result<()> {
        let Some(obj) = self.find(key) else {
            return Ok(());
        };
        let res = {
            let mut list = obj.lock();
            let had = list
                .iter()
                .any(|l| l.owner == owner && l.range.overlaps(&range));
            let splits = list.iter().any(|l| {
                l.owner == owner && l.range.start < range.start && l.range.end > range.end
            });
            let room = match splits {
                true if list.len() >= 2 * LOCKS_PER_OBJECT_MAX => Err(Errno::ENOMEM),
                true => list.reserve(1),
                false => Ok(()),
            };
            if room.is_ok() {
                let mut tally = Tally::default();
                let uid = grant.as_ref().map(|g| g.uid);
                clear_in(&mut list.locks, owner, &range, uid, &mut tally);
                self.settle(grant, tally);
                list.fit();
            }
            room.map(|()| had)
        };
        if res == Ok(true) {
            obj.waiters.wake_all();
        }
        drop(obj);
        self.tidy(key);
        res.map(|_| ())
    }

    /// Close of any descriptor of object `key` by process `pid`: its record locks go.
    pub fn release_posix(&self, key: u64, pid: i32) {
        self.release(key, Owner::Proc(pid));
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

    /// Lock records counted for effective uid `uid`: those it placed (or split off) that
    /// are still held, plus those of its requests in progress (NetBSD's `ui_lockcnt`).
    pub fn records(&self, uid: u32) -> usize {
        self.uids().get(&uid).copied().unwrap_or(0)
    }

    /// `lf_alloc` for one request of `owner` as `uid`: the request record (failing as `cap`
    /// says) after, for a POSIX request, the spare a split may need (`lf_alloc(0)`). Root's
    /// count never fails.
    fn request(&self, owner: Owner, uid: u32, cap: Cap) -> Result<Grant<'_>> {
        self.alloc(uid, matches!(owner, Owner::Proc(_)), cap)
    }

    fn alloc(&self, uid: u32, spare: bool, cap: Cap) -> Result<Grant<'_>> {
        let n = 1 + usize::from(spare);
        let mut uids = self.uids();
        let c = uids.entry(uid).or_insert(0);
        *c += n;
        let max = match cap {
            Cap::None => usize::MAX,
            Cap::Limit => LOCKS_PER_UID_MAX,
            Cap::Double => 2 * LOCKS_PER_UID_MAX,
        };
        if uid != 0 && *c > max {
            uncount(&mut uids, uid, n);
            return Err(Errno::ENOMEM);
        }
        Ok(Grant {
            locks: self,
            uid,
            n,
        })
    }

    /// Brings the per-uid counts up to date with what an operation did to a list: an added
    /// record of the grant's uid takes one of its records (else it is counted anew), a freed
    /// one is taken from its own uid's count.
    fn settle(&self, mut grant: Option<&mut Grant<'_>>, tally: Tally) {
        if tally.added.is_empty() && tally.freed.is_empty() {
            return;
        }
        let mut uids = self.uids();
        for uid in tally.added {
            match grant.as_deref_mut() {
                Some(g) if g.uid == uid && g.n > 0 => g.n -= 1,
                _ => *uids.entry(uid).or_insert(0) += 1,
            }
        }
        for uid in tally.freed {
            uncount(&mut uids, uid, 1);
        }
    }

    /// The lock-adding half of `lf_setlock`: a same-type lock of ours that covers the range
    /// already does, one of ours on exactly the range changes type; otherwise our
    /// overlapping locks give way (trimmed or split) and the new one goes in, in start order.
    fn apply(
        &self,
        list: &mut List,
        grant: &mut Grant<'_>,
        owner: Owner,
        range: Range,
        ty: LockType,
    ) -> Result<()> {
        let covered = list
            .iter()
            .any(|l| l.owner == owner && l.ty == ty && l.range.contains(&range));
        if covered {
            return Ok(());
        }
        if let Some(l) = list
            .locks
            .iter_mut()
            .find(|l| l.owner == owner && l.range == range)
        {
            l.ty = ty;
            return Ok(());
        }
        if list.len() + 2 > LOCKS_PER_OBJECT_MAX {
            return Err(Errno::ENOMEM);
        }
        // Worst case two more records (a split and the new one), charged first.
        list.reserve(2)?;
        let uid = grant.uid;
        let mut tally = Tally::default();
        let locks = &mut list.locks;
        clear_in(locks, owner, &range, Some(uid), &mut tally);
        let at = locks.partition_point(|l| l.range.start <= range.start);
        locks.insert(
            at,
            Lock {
                range,
                ty,
                owner,
                uid,
            },
        );
        tally.added.push(uid);
        self.settle(Some(grant), tally);
        Ok(())
    }

    fn uids(&self) -> MutexGuard<'_, HashMap<u32, usize>> {
        self.uids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lock records counted for effective uid `uid` (`ui_lockcnt`, `kern.uidinfo.lockcnt`).
    pub fn uid_records(&self, uid: u32) -> usize {
        self.uids().get(&uid).copied().unwrap_or(0)
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

/// Removes `owner`'s locks from `range`, keeping the parts outside it, in place: a record
/// that covers both sides of `range` is split (an owner's records never overlap, so at most
/// one is), within the capacity the caller reserved. The split-off tail is counted for
/// `tail_uid` — the caller's, whose spare it is — or else for the record's own uid; `tally`
/// gets the records added and freed.
fn clear_in(
    list: &mut Vec<Lock>,
    owner: Owner,
    range: &Range,
    tail_uid: Option<u32>,
    tally: &mut Tally,
) {
    if !list
        .iter()
        .any(|l| l.owner == owner && l.range.overlaps(range))
    {
        return;
    }
    let mut tails = Vec::new();
    list.retain_mut(|l| {
        if l.owner != owner || !l.range.overlaps(range) {
            return true;
        }
        let (left, right) = (l.range.start < range.start, l.range.end > range.end);
        if left && right {
            let start = range.end + 1;
            let uid = tail_uid.unwrap_or(l.uid);
            tally.added.push(uid);
            tails.push(Lock {
                range: Range { start, ..l.range },
                uid,
                ..*l
            });
        }
        match (left, right) {
            (false, false) => {
                tally.freed.push(l.uid);
                false
            }
            (true, _) => {
                l.range.end = range.start - 1;
                true
            }
            (false, true) => {
                l.range.start = range.end + 1;
                true
            }
        }
    });
    list.extend(tails);
    list.sort_by_key(|l| l.range.start);
}
