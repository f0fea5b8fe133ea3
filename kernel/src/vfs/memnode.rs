//! In-memory node bodies: sparse page-backed file data and directories with stable cookies.
//!
//! Used by the memory file systems. File data lives in 4 KiB pages kept only where written, so a
//! write far out allocates one page, holes read as zeros, and shrinking frees pages and
//! zeroes the tail of the last one (POSIX; NetBSD's root file system shows old bytes again).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use crate::mem::{heap_bytes, Budget, Charge};
use crate::vfs::Vnode;
use crate::{Errno, Result};

/// Size of one data page.
pub const PAGE_SIZE: usize = 4096;

/// The data of a regular file. Its pages are charged to a memory budget: a write that
/// needs pages the budget cannot give fails with `ENOSPC` before changing anything (as
/// NetBSD's memory file system resizes first), and freed pages go back to it.
pub struct RegData {
    size: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
    budget: Arc<Budget>,
}

impl Default for RegData {
    fn default() -> Self {
        RegData::new(&Budget::unlimited())
    }
}

impl Drop for RegData {
    fn drop(&mut self) {
        self.budget.release(self.bytes_held());
    }
}

impl RegData {
    /// An empty file whose pages are charged to `budget`.
    pub fn new(budget: &Arc<Budget>) -> RegData {
        RegData {
            size: 0,
            pages: BTreeMap::new(),
            budget: budget.clone(),
        }
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of memory held by data pages (for `st_blocks` and the memory budget).
    pub fn bytes_held(&self) -> u64 {
        self.pages.len() as u64 * PAGE_SIZE as u64
    }

    /// Up to `len` bytes at `off`; fewer at end of file, none past it.
    pub fn read(&self, off: u64, len: usize) -> Vec<u8> {
        let n = self.readable(off, len);
        let mut out = vec![0u8; n];
        self.read_into(off, &mut out);
        out
    }

    /// Bytes a read of `len` at `off` returns (short at the end of the file).
    fn readable(&self, off: u64, len: usize) -> usize {
        match off >= self.size {
            true => 0,
            false => (self.size - off).min(len as u64) as usize,
        }
    }

    /// Reads at `off` into `out` (holes read as zeros); returns the bytes read, short at the
    /// end of the file.
    pub fn read_into(&self, off: u64, out: &mut [u8]) -> usize {
        let n = self.readable(off, out.len());
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let (pg, in_pg) = (pos / PAGE_SIZE as u64, (pos % PAGE_SIZE as u64) as usize);
            let k = (PAGE_SIZE - in_pg).min(n - done);
            match self.pages.get(&pg) {
                Some(p) => out[done..done + k].copy_from_slice(&p[in_pg..in_pg + k]),
                None => out[done..done + k].fill(0),
            }
            done += k;
        }
        n
    }

    /// Writes `data` at `off`, growing the file; `EFBIG` beyond the largest `off_t`.
    pub fn write(&mut self, off: u64, data: &[u8]) -> Result<()> {
        let end = off
            .checked_add(data.len() as u64)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or(Errno::EFBIG)?;
        if !data.is_empty() {
            let (first, last) = (off / PAGE_SIZE as u64, (end - 1) / PAGE_SIZE as u64);
            let have = self.pages.range(first..=last).count() as u64;
            let new_pages = last - first + 1 - have;
            if new_pages > 0 {
                self.budget.try_charge(new_pages * PAGE_SIZE as u64)?;
            }
        }
        let mut done = 0;
        while done < data.len() {
            let pos = off + done as u64;
            let (pg, in_pg) = (pos / PAGE_SIZE as u64, (pos % PAGE_SIZE as u64) as usize);
            let k = (PAGE_SIZE - in_pg).min(data.len() - done);
            let page = self
                .pages
                .entry(pg)
                .or_insert_with(|| vec![0u8; PAGE_SIZE].into_boxed_slice());
            page[in_pg..in_pg + k].copy_from_slice(&data[done..done + k]);
            done += k;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Sets the size: shrinking frees whole pages past the end and zeroes the rest of the
    /// last page, so a later extension reads zeros.
    pub fn truncate(&mut self, len: u64) {
        if len < self.size {
            let keep = len.div_ceil(PAGE_SIZE as u64);
            let gone = self.pages.split_off(&keep);
            self.budget.release(gone.len() as u64 * PAGE_SIZE as u64);
            let in_pg = (len % PAGE_SIZE as u64) as usize;
            if in_pg != 0 {
                if let Some(p) = self.pages.get_mut(&(len / PAGE_SIZE as u64)) {
                    p[in_pg..].fill(0);
                }
            }
        }
        self.size = len;
    }

    /// Drops the pages wholly inside `[off, off+len)` and zeroes the partial ones
    /// (`fdiscard`); the size does not change.
    pub fn discard(&mut self, off: u64, len: u64) {
        let end = off.saturating_add(len).min(self.size);
        let mut pos = off;
        while pos < end {
            let (pg, in_pg) = (pos / PAGE_SIZE as u64, (pos % PAGE_SIZE as u64) as usize);
            let k = ((PAGE_SIZE - in_pg) as u64).min(end - pos) as usize;
            if k == PAGE_SIZE {
                if self.pages.remove(&pg).is_some() {
                    self.budget.release(PAGE_SIZE as u64);
                }
            } else if let Some(p) = self.pages.get_mut(&pg) {
                p[in_pg..in_pg + k].fill(0);
            }
            pos += k as u64;
        }
    }
}

/// One directory entry.
pub struct Entry {
    /// The name.
    pub name: Vec<u8>,
    /// The node.
    pub node: Arc<Vnode>,
}

/// Bytes of one entry's slot in the cookie map (`u64` and [`Entry`]).
const ENTRY_SLOT_BYTES: u64 = (8 + std::mem::size_of::<Entry>()) as u64;
/// Bytes of one entry's slot in the name index (`Vec<u8>`, `u64` and a control byte).
const NAME_SLOT_BYTES: u64 = (std::mem::size_of::<Vec<u8>>() + 8 + 1) as u64;
/// Bytes one directory entry costs beyond its name's two allocations: its cookie-map slot
/// twice over (B-tree nodes are at least half full) and its name-index slot at the index's
/// emptiest (a hash table at most 7/8 full that doubles when it grows).
pub const DIRENT_OVERHEAD_BYTES: u64 = 2 * ENTRY_SLOT_BYTES + (16 * NAME_SLOT_BYTES).div_ceil(7);

/// What an entry called `name` is charged to its file system's budget: the name's two
/// allocations (the entry and the name index) and [`DIRENT_OVERHEAD_BYTES`].
pub const fn dirent_charge_bytes(name_len: usize) -> u64 {
    2 * heap_bytes(name_len) + DIRENT_OVERHEAD_BYTES
}

/// A directory: entries in creation order under stable cookies, and a name index.
///
/// A cookie is never reused, so a getdents offset (the cookie of the next entry) stays
/// valid across creations and removals: reading resumes exactly after the last entry seen.
///
/// Its entries are charged to the file system's budget ([`dirent_charge_bytes`] each)
/// before they are made: an insert past the budget is `ENOSPC` (tmpfs_alloc_dirent), and
/// the charge goes back with the entry (or with the directory).
pub struct Dir {
    entries: BTreeMap<u64, Entry>,
    names: HashMap<Vec<u8>, u64>,
    next_cookie: u64,
    charge: Charge,
    /// The parent directory (`..`); the root of a file system points nowhere.
    pub parent: Weak<Vnode>,
    /// Set by rmdir: no entry may be added any more.
    pub removed: bool,
}

impl Dir {
    /// An empty directory under `parent` whose entries are charged to `budget`. Cookies
    /// start at `first_cookie` (file systems that return `.` and `..` reserve the cookies
    /// below).
    pub fn new(parent: Weak<Vnode>, first_cookie: u64, budget: &Arc<Budget>) -> Dir {
        Dir {
            entries: BTreeMap::new(),
            names: HashMap::new(),
            next_cookie: first_cookie,
            charge: Charge::empty(budget),
            parent,
            removed: false,
        }
    }

    /// The node called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<Vnode>> {
        let c = self.names.get(name)?;
        self.entries.get(c).map(|e| &e.node)
    }

    /// Adds `name`; `EEXIST` if taken, `ENOENT` if the directory was removed, `ENOSPC`
    /// when its charge does not fit the budget (nothing changed then).
    pub fn insert(&mut self, name: &[u8], node: Arc<Vnode>) -> Result<()> {
        self.insert_charged(name, node, false)
    }

    /// [`Dir::insert`] charged whatever the budget: for boot-time nodes only.
    pub fn insert_forced(&mut self, name: &[u8], node: Arc<Vnode>) -> Result<()> {
        self.insert_charged(name, node, true)
    }

    fn insert_charged(&mut self, name: &[u8], node: Arc<Vnode>, forced: bool) -> Result<()> {
        if self.removed {
            return Err(Errno::ENOENT);
        }
        if self.names.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let bytes = dirent_charge_bytes(name.len());
        match forced {
            true => self.charge.grow_forced(bytes),
            false => self.charge.try_grow(bytes)?,
        }
        let c = self.next_cookie;
        self.next_cookie += 1;
        self.names.insert(name.to_vec(), c);
        self.entries.insert(
            c,
            Entry {
                name: name.to_vec(),
                node,
            },
        );
        Ok(())
    }

    /// Removes `name`, returning its node.
    pub fn remove(&mut self, name: &[u8]) -> Option<Arc<Vnode>> {
        let c = self.names.remove(name)?;
        self.charge.shrink(dirent_charge_bytes(name.len()));
        self.entries.remove(&c).map(|e| e.node)
    }

    /// Replaces the node of an existing `name` in place (rename onto an existing name).
    pub fn replace(&mut self, name: &[u8], node: Arc<Vnode>) -> Option<Arc<Vnode>> {
        let c = *self.names.get(name)?;
        let e = self.entries.get_mut(&c)?;
        Some(std::mem::replace(&mut e.node, node))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries with cookies below `below` (all for `None`), newest first, with their
    /// cookies (NetBSD's root file system's order).
    pub fn newest_before(&self, below: Option<u64>) -> impl Iterator<Item = (u64, &Entry)> {
        let r = match below {
            Some(b) => self.entries.range(..b),
            None => self.entries.range(..),
        };
        r.rev().map(|(c, e)| (*c, e))
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries from cookie `from` on, with their cookies.
    pub fn from(&self, from: u64) -> impl Iterator<Item = (u64, &Entry)> {
        self.entries.range(from..).map(|(c, e)| (*c, e))
    }
}

/// Tear-down support for [`crate::vfs::Vnode`]'s iterative drop (kept apart from the
/// entry bookkeeping above).
impl Dir {
    /// Removes every entry (through [`Dir::remove`], so whatever it accounts for is undone)
    /// and appends the nodes to `out`: the caller drops them one level at a time instead of
    /// letting a deep tree drop itself recursively.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Arc<Vnode>>) {
        out.reserve(self.entries.len());
        while let Some(name) = self.entries.first_key_value().map(|(_, e)| e.name.clone()) {
            out.extend(self.remove(&name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_pages_holes_and_truncate() {
        let mut d = RegData::default();
        d.write(10_000, b"abc").unwrap();
        assert_eq!(d.size(), 10_003);
        assert_eq!(d.bytes_held(), 4096);
        assert_eq!(d.read(9_998, 10), b"\0\0abc");
        assert_eq!(d.read(10_003, 10), b"");
        assert_eq!(d.read(0, 4), [0; 4]);
        d.truncate(10_001);
        d.truncate(20_000);
        assert_eq!(d.read(10_000, 3), b"a\0\0");
        d.truncate(0);
        assert_eq!(d.bytes_held(), 0);
        assert_eq!(d.write(i64::MAX as u64, b"x"), Err(Errno::EFBIG));
        d.write(0, &[7; 9000]).unwrap();
        d.discard(100, 8092);
        assert_eq!(d.bytes_held(), 2 * 4096);
        assert_eq!(d.read(99, 2), [7, 0]);
        assert_eq!(d.read(8191, 2), [0, 7]);
        assert_eq!(d.size(), 9000);
    }

    #[test]
    fn pages_are_charged_to_the_budget_and_enospc_changes_nothing() {
        let b = Budget::new(3 * PAGE_SIZE as u64);
        let mut d = RegData::new(&b);
        d.write(100, &[1; 5000]).unwrap();
        assert_eq!(b.used(), 2 * PAGE_SIZE as u64);
        d.write(200, &[2; 100]).unwrap();
        assert_eq!(
            b.used(),
            2 * PAGE_SIZE as u64,
            "rewriting a page charges nothing"
        );
        assert_eq!(d.write(8000, &[3; 9000]), Err(Errno::ENOSPC));
        assert_eq!((d.size(), b.used()), (5100, 2 * PAGE_SIZE as u64));
        assert_eq!(
            d.read(8000, 10),
            [0; 0],
            "nothing was written past the old end"
        );
        d.write(1 << 30, b"far").unwrap();
        assert_eq!(b.used(), 3 * PAGE_SIZE as u64);
        d.discard(0, PAGE_SIZE as u64);
        assert_eq!(b.used(), 2 * PAGE_SIZE as u64);
        d.truncate(10);
        assert_eq!(
            b.used(),
            0,
            "the first page was discarded, the rest truncated"
        );
        d.write(0, b"x").unwrap();
        drop(d);
        assert_eq!(b.used(), 0);
    }
}
