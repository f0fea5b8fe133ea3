//! The inode table: rump `(dev, ino)` ↔ FUSE node ids, refcounted by FUSE lookups (`forget`
//! drops them), bounded, and each node's known names (parent node, name) from which the
//! bridge builds the rump path of a node.
//!
//! The bridge speaks to the rump kernel by path (NetBSD has no `O_PATH` to hold a handle on
//! any node), so a node keeps up to [`MAX_NAMES`] of its names, the most recently seen
//! first; a directory has one. Every use of a path is checked against the node's identity
//! (the caller compares `(dev, ino)` after its `lstat`), so a name that went stale behind the
//! bridge's back (another client renamed it) is noticed, never silently used for another file.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Names kept per node (hard links beyond this are still reachable by lookup).
pub const MAX_NAMES: usize = 4;
/// The longest path the bridge builds (NetBSD's `PATH_MAX` is 1024: longer fails there anyway).
pub const PATH_MAX_BUILD: usize = 4096;

/// Where ids not derived from a rump identity start.
pub const FALLBACK_IDS: u64 = 1 << 62;

/// FUSE's root node id.
pub const ROOT: u64 = 1;

/// One node.
#[derive(Debug)]
pub struct Node {
    /// The rump identity: `(st_dev, st_ino)`.
    pub key: (u64, u64),
    /// Known names, most recent first.
    pub names: Vec<(u64, OsString)>,
    /// Outstanding FUSE lookups.
    pub nlookup: u64,
    /// The file type bits (`S_IFMT`) when first seen: a reused inode number of another
    /// type is a new node (the host kernel would take a type change for corruption).
    pub kind: u32,
}

/// The table.
#[derive(Debug)]
pub struct Nodes {
    by_id: HashMap<u64, Node>,
    by_key: HashMap<(u64, u64), u64>,
    next: u64,
    max: usize,
    /// The rump path the mount's root stands for (no trailing slash; empty = `/`).
    prefix: Vec<u8>,
}

impl Nodes {
    /// A table whose root node is `root_key` at rump path `prefix`, holding at most `max`
    /// nodes.
    pub fn new(root_key: (u64, u64), prefix: &[u8], max: usize) -> Nodes {
        let mut t = Nodes {
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            next: FALLBACK_IDS,
            max: max.max(2),
            prefix: prefix.strip_suffix(b"/").unwrap_or(prefix).to_vec(),
        };
        t.by_id.insert(
            ROOT,
            Node {
                key: root_key,
                names: Vec::new(),
                nlookup: 1,
                kind: 0o040000,
            },
        );
        t.by_key.insert(root_key, ROOT);
        t
    }

    /// Number of nodes held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether only the root is held.
    pub fn is_empty(&self) -> bool {
        self.by_id.len() <= 1
    }

    /// The node `id`.
    pub fn get(&self, id: u64) -> Option<&Node> {
        self.by_id.get(&id)
    }

    /// The node id of `key`, if held.
    pub fn id_of(&self, key: (u64, u64)) -> Option<u64> {
        self.by_key.get(&key).copied()
    }

    /// Records one lookup of `key` (of type `kind`) under `(parent, name)`: the node's id,
    /// held or new — `want` if that id is free (ids derived from the rump identity keep
    /// `st_ino` stable), else one from the counter. `None` when the table is full.
    pub fn looked_up(
        &mut self,
        key: (u64, u64),
        kind: u32,
        parent: u64,
        name: &OsStr,
        want: Option<u64>,
    ) -> Option<u64> {
        let held = self.by_key.get(&key).copied();
        let held = match held {
            Some(id) if id == ROOT || self.by_id.get(&id).is_some_and(|n| n.kind == kind) => {
                Some(id)
            }
            Some(_) => {
                // Another incarnation of a reused inode number: the old node stays until
                // its forget, unreachable by key.
                self.by_key.remove(&key);
                None
            }
            None => None,
        };
        let id = match held {
            Some(id) => id,
            None => {
                if self.by_id.len() >= self.max {
                    return None;
                }
                let id = match want {
                    Some(w) if w > ROOT && !self.by_id.contains_key(&w) => w,
                    _ => loop {
                        let id = self.next;
                        self.next += 1;
                        if !self.by_id.contains_key(&id) {
                            break id;
                        }
                    },
                };
                self.by_key.insert(key, id);
                self.by_id.insert(
                    id,
                    Node {
                        key,
                        names: Vec::new(),
                        nlookup: 0,
                        kind,
                    },
                );
                id
            }
        };
        let n = self.by_id.get_mut(&id)?;
        n.nlookup += 1;
        if id != ROOT {
            add_name(n, parent, name);
        }
        Some(id)
    }

    /// FUSE `forget`: drops `count` lookups; the node goes when none are left.
    pub fn forget(&mut self, id: u64, count: u64) {
        if id == ROOT {
            return;
        }
        let gone = match self.by_id.get_mut(&id) {
            Some(n) => {
                n.nlookup = n.nlookup.saturating_sub(count);
                n.nlookup == 0
            }
            None => false,
        };
        if gone {
            if let Some(n) = self.by_id.remove(&id) {
                if self.by_key.get(&n.key) == Some(&id) {
                    self.by_key.remove(&n.key);
                }
            }
        }
    }

    /// The name `(parent, name)` no longer names `key` (unlink, rename away, replaced).
    pub fn drop_name(&mut self, key: (u64, u64), parent: u64, name: &OsStr) {
        if let Some(n) = self.by_key.get(&key).and_then(|id| self.by_id.get_mut(id)) {
            n.names.retain(|(p, nm)| !(*p == parent && nm == name));
        }
    }

    /// The file `key` stands for is gone (its last link removed): a later file with the
    /// same reused inode number gets a new node id. The old node stays, unreachable by key,
    /// until its forget (the host kernel holds it as a dead inode, which it must not reuse).
    pub fn detach(&mut self, key: (u64, u64)) {
        if self.by_key.get(&key).is_some_and(|&id| id != ROOT) {
            self.by_key.remove(&key);
        }
    }

    /// `key` is now (also) named `(parent, name)`.
    pub fn add_name(&mut self, key: (u64, u64), parent: u64, name: &OsStr) {
        if let Some(n) = self.by_key.get(&key).and_then(|id| self.by_id.get_mut(id)) {
            add_name(n, parent, name);
        }
    }

    /// The rump path of `(parent, name)`.
    pub fn child_path(&self, parent: u64, name: &OsStr) -> Option<Vec<u8>> {
        let mut p = self.path(parent)?;
        if p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(name.as_bytes());
        (p.len() <= PATH_MAX_BUILD).then_some(p)
    }

    /// Rump paths of node `id`, one per known name (the root's is the prefix, or `/`).
    pub fn paths(&self, id: u64) -> Vec<Vec<u8>> {
        if id == ROOT {
            return vec![self.root_path()];
        }
        let Some(n) = self.by_id.get(&id) else {
            return Vec::new();
        };
        n.names
            .iter()
            .filter_map(|(p, nm)| self.child_path(*p, nm))
            .collect()
    }

    fn root_path(&self) -> Vec<u8> {
        if self.prefix.is_empty() {
            b"/".to_vec()
        } else {
            self.prefix.clone()
        }
    }

    /// The first path of node `id`: its most recent name, walking up through the parents'
    /// first names. Bounded by [`PATH_MAX_BUILD`] bytes (a cycle, which renames of
    /// directories cannot make but a stale table might, ends there).
    pub fn path(&self, id: u64) -> Option<Vec<u8>> {
        let mut parts: Vec<&OsStr> = Vec::new();
        let mut len = 0usize;
        let mut cur = id;
        while cur != ROOT {
            let n = self.by_id.get(&cur)?;
            let (p, nm) = n.names.first()?;
            len += nm.len() + 1;
            if len > PATH_MAX_BUILD {
                return None;
            }
            parts.push(nm);
            cur = *p;
        }
        if parts.is_empty() {
            return Some(self.root_path());
        }
        let mut out = self.prefix.clone();
        for nm in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(nm.as_bytes());
        }
        Some(out)
    }
}

fn add_name(n: &mut Node, parent: u64, name: &OsStr) {
    n.names.retain(|(p, nm)| !(*p == parent && nm == name));
    n.names.insert(0, (parent, name.to_os_string()));
    n.names.truncate(MAX_NAMES);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn paths_follow_renames_of_parents() {
        let mut t = Nodes::new((1, 2), b"/mnt", 100);
        let d = t.looked_up((1, 10), 0o100000, ROOT, os("d"), None).unwrap();
        let f = t.looked_up((1, 11), 0o100000, d, os("f"), None).unwrap();
        assert_eq!(t.path(f).unwrap(), b"/mnt/d/f");
        t.drop_name((1, 10), ROOT, os("d"));
        t.add_name((1, 10), ROOT, os("e"));
        assert_eq!(t.path(f).unwrap(), b"/mnt/e/f");
        assert_eq!(t.path(ROOT).unwrap(), b"/mnt");
        let r = Nodes::new((1, 2), b"/", 10);
        assert_eq!(r.path(ROOT).unwrap(), b"/");
        assert_eq!(r.child_path(ROOT, os("x")).unwrap(), b"/x");
    }

    #[test]
    fn hard_links_keep_several_names_and_forget_frees() {
        let mut t = Nodes::new((1, 2), b"", 100);
        let a = t.looked_up((1, 5), 0o100000, ROOT, os("a"), None).unwrap();
        let b = t.looked_up((1, 5), 0o100000, ROOT, os("b"), None).unwrap();
        assert_eq!(a, b);
        assert_eq!(t.paths(a), vec![b"/b".to_vec(), b"/a".to_vec()]);
        t.drop_name((1, 5), ROOT, os("b"));
        assert_eq!(t.paths(a), vec![b"/a".to_vec()]);
        for i in 0..10 {
            t.add_name((1, 5), ROOT, os(&format!("n{i}")));
        }
        assert_eq!(t.get(a).unwrap().names.len(), MAX_NAMES);
        t.forget(a, 1);
        assert!(t.get(a).is_some());
        t.forget(a, 1);
        assert!(t.get(a).is_none());
        assert!(t.id_of((1, 5)).is_none());
        t.forget(ROOT, 100);
        assert!(t.get(ROOT).is_some());
    }

    #[test]
    fn a_reused_number_of_another_type_is_a_new_node() {
        let mut t = Nodes::new((1, 2), b"", 10);
        let f = t
            .looked_up((1, 7), 0o100000, ROOT, os("f"), Some(7))
            .unwrap();
        assert_eq!(f, 7);
        let d = t
            .looked_up((1, 7), 0o040000, ROOT, os("d"), Some(7))
            .unwrap();
        assert_ne!(d, f);
        assert!(d >= FALLBACK_IDS);
        t.forget(f, 1);
        assert_eq!(
            t.id_of((1, 7)),
            Some(d),
            "the old node's forget keeps the new mapping"
        );
    }

    #[test]
    fn a_removed_file_s_number_gets_a_new_node() {
        let mut t = Nodes::new((1, 2), b"", 10);
        let d = t
            .looked_up((1, 7), 0o040000, ROOT, os("d"), Some(7))
            .unwrap();
        t.drop_name((1, 7), ROOT, os("d"));
        t.detach((1, 7));
        let e = t
            .looked_up((1, 7), 0o040000, ROOT, os("e"), Some(7))
            .unwrap();
        assert_ne!(d, e);
        assert_eq!(t.path(e).unwrap(), b"/e");
        t.forget(d, 1);
        assert_eq!(t.id_of((1, 7)), Some(e));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = Nodes::new((1, 2), b"", 3);
        assert_eq!(
            t.looked_up((1, 9), 0o100000, ROOT, os("w"), Some(9)),
            Some(9)
        );
        t.forget(9, 1);
        assert!(t.looked_up((1, 3), 0o100000, ROOT, os("a"), None).is_some());
        assert!(t.looked_up((1, 4), 0o100000, ROOT, os("b"), None).is_some());
        assert!(t.looked_up((1, 5), 0o100000, ROOT, os("c"), None).is_none());
        // A held node is still found when full.
        assert!(t
            .looked_up((1, 3), 0o100000, ROOT, os("a2"), None)
            .is_some());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn overlong_paths_are_refused() {
        let mut t = Nodes::new((1, 2), b"", 10_000);
        let mut cur = ROOT;
        let long = "x".repeat(255);
        for i in 0..20 {
            cur = t
                .looked_up((1, 100 + i), 0o040000, cur, os(&long), None)
                .unwrap();
        }
        assert!(t.path(cur).is_none());
    }
}
