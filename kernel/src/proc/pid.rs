//! Process ids and the table of live processes (kern_proc.c's pid allocator, simplified).
//!
//! proc0 is 0 and init is 1; new processes get 2, 3, 4, … in order. Numbers are handed out
//! round-robin up to [`PID_MAX`] and then wrap, skipping live pids, so a freed pid is not
//! reused soon. The table is bounded by the pid space.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::Proc;
use crate::abi::PID_MAX;
use crate::{Errno, Result};

/// First pid given to a process other than proc0 and init.
pub const FIRST_PID: i32 = 2;

/// Live processes by pid.
pub struct PidTable {
    live: HashMap<i32, Weak<Proc>>,
    last: i32,
}

impl PidTable {
    /// Only proc0 and init exist (they are not in the table).
    pub fn new() -> PidTable {
        PidTable {
            live: HashMap::new(),
            last: FIRST_PID - 1,
        }
    }

    /// The next free pid after the last one handed out; `EAGAIN` if all are live.
    pub fn alloc(&mut self) -> Result<i32> {
        let span = PID_MAX - FIRST_PID + 1;
        for step in 1..=span {
            let pid = FIRST_PID + (self.last - FIRST_PID + step).rem_euclid(span);
            if !self.live.contains_key(&pid) {
                self.last = pid;
                return Ok(pid);
            }
        }
        Err(Errno::EAGAIN)
    }

    /// Records `p` under its pid (allocated with [`PidTable::alloc`]).
    pub fn insert(&mut self, p: &Arc<Proc>) {
        self.live.insert(p.pid(), Arc::downgrade(p));
    }

    /// Forgets `pid`; returns whether it was live.
    pub fn remove(&mut self, pid: i32) -> bool {
        self.live.remove(&pid).is_some()
    }

    /// Number of live processes in the table.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no process is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The live process `pid`, if any.
    pub fn get(&self, pid: i32) -> Option<Arc<Proc>> {
        self.live.get(&pid).and_then(Weak::upgrade)
    }

    /// Live processes, for re-parenting.
    pub fn procs(&self) -> impl Iterator<Item = Arc<Proc>> + '_ {
        self.live.values().filter_map(Weak::upgrade)
    }
}

impl Default for PidTable {
    fn default() -> Self {
        PidTable::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_count_up_then_wrap_skipping_live() {
        let mut t = PidTable::new();
        assert_eq!(t.alloc(), Ok(2));
        assert_eq!(t.alloc(), Ok(3));
        t.last = PID_MAX - 1;
        assert_eq!(t.alloc(), Ok(PID_MAX));
        t.live.insert(2, Weak::new());
        assert_eq!(t.alloc(), Ok(3));
    }
}
