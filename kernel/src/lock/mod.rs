//! Advisory locks (vfs_lockf.c): POSIX record locks owned by processes, flock(2) locks owned
//! by open files, on objects named by an opaque `u64` key (the VFS uses a vnode's id).
//!
//! One [`Locks`] per kernel ([`crate::Kernel::locks`]). What the VFS calls:
//!
//! - `fcntl(F_GETLK/F_SETLK/F_SETLKW)`: [`fcntl_lock`] with the copied-in `struct flock`
//!   bytes, the open file, the vnode's key and size; it checks the access mode as
//!   `do_fcntl_lock` does and returns the bytes to copy out for `F_GETLK`.
//! - `flock(2)`: [`flock`] with the open file's [`FileLockOwner`] (one per open vnode file,
//!   made by [`Locks::file_owner`]; dropping it — last close of the open file — releases its
//!   flock locks, NetBSD's `FHASLOCK` in `closef`).
//! - close of *any* descriptor of a vnode by a process: [`Locks::release_posix`] (POSIX
//!   semantics: all the process's record locks on that file go); process exit:
//!   [`Locks::release_proc`] (done by `Kernel::exit_process`).
//!
//! Semantics from NetBSD: `l_len` 0 locks to end of file, a negative `l_len` locks the bytes
//! before `l_start`; a lock replaces the owner's overlapping ranges (splitting them), without
//! merging neighbours; conflicts give `EAGAIN` (`EWOULDBLOCK`); a waiting `F_SETLKW` sleeps
//! interruptibly and fails with `EDEADLK` when the chain of waiting processes leads back to
//! the caller (or is longer than [`MAX_DEPTH`]); a flock upgrade releases the shared lock
//! before sleeping; `F_GETLK` reports the first blocking lock and its pid (−1 for a flock
//! lock).
//!
//! Records are counted per effective uid of the caller that placed them, as NetBSD's
//! `ui_lockcnt` (`lf_alloc`/`lf_free`): a non-root uid passing [`LOCKS_PER_UID_MAX`] (twice
//! that for an unlock that may split) gets `ENOMEM`, and so does a request the `-r` budget or
//! the per-object cap refuses.

mod engine;
mod sys;

pub use engine::{
    FileLockOwner, Held, LockType, Locks, Owner, Range, LOCKS_PER_UID_MAX, MAX_DEPTH,
};
pub use sys::{fcntl_lock, flock, Flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN};

#[cfg(test)]
mod tests;
