//! FFS (the Berkeley Fast File System, UFS1 and UFS2), independent of the kernel: an engine
//! that mounts an image through the `Disk` trait and operates on it by inode number, plus
//! `newfs` (make an empty file system) and `check` (a read-only fsck).
//!
//! Images are NetBSD's on-disk format, little-endian: what NetBSD's newfs and makefs write
//! and what NetBSD mounts, checks and boots from. Big-endian images are refused.
//!
//! # Using the engine
//! ```
//! use ffs::{block_on, newfs, Fs, MemDisk, MountOptions, NewfsOptions};
//! let disk = MemDisk::new(8 << 20);
//! block_on(newfs(&disk, &NewfsOptions::default())).unwrap();
//! let mut fs = block_on(Fs::mount(disk, MountOptions::default())).unwrap();
//! let root = fs.root();
//! let f = block_on(fs.create(root, b"hello", 0o100644, 0, 0, 0)).unwrap();
//! block_on(fs.write(f, 0, b"hi")).unwrap();
//! let disk = block_on(fs.unmount()).unwrap();
//! assert!(block_on(ffs::check(&disk)).unwrap().is_empty());
//! ```
//!
//! # Concurrency
//! Operations take `&self` (only mount-wide changes — `make_writable`, `set_fsmnt`,
//! `unmount` — take `&mut self` or `self`), so operations on different files may run at
//! once; `Fs<D>` is `Send + Sync` when `D` is. The engine keeps its shared state consistent
//! itself: the allocation state (cylinder-group maps, counts, rotors) behind one short
//! `std::sync::Mutex` never held across an `.await`, the inode references behind another,
//! and one summary write at a time. What the caller must do, as NetBSD's vnode locks do:
//! - an operation that changes an inode (write, truncate, setattr; for a directory every
//!   namespace operation in it) runs alone on that inode: no other operation reads or
//!   changes it meanwhile; reads of one inode may run together;
//! - unlink, rmdir and rename also hold their victims, and rename and rmdir are serialised
//!   with each other per mount (NetBSD's `mnt_renamelock`), as rename reads the `..` chain
//!   of directories it does not lock;
//! - a name looked up is retained (`retain`) before its directory may change again.
//!
//! The kernel's locks are described in its `fs/ffs/`. The futures are not `Send`.
//!
//! # Bad input
//! Every block pointer, inode number, directory entry and size read from the image is
//! checked before use; inconsistencies are `EIO` (or `EINVAL` at mount), never a panic,
//! an unbounded loop or I/O outside the file system.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cg;
pub mod check;
pub mod dir;
mod disk;
mod errno;
mod file;
mod fs;
pub mod inode;
mod le;
pub mod newfs;
mod ns;
pub mod sb;

pub use check::check;
pub use disk::{block_on, Disk, FileDisk, MemDisk};
pub use errno::{Errno, Result};
pub use fs::{system_clock, Fs, Ino, MountOptions, LINK_MAX};
pub use inode::Timespec;
pub use newfs::{newfs, NewfsOptions};
pub use ns::{Attr, DirEntry, SetAttr, StatVfs, MAXPATHLEN};

#[cfg(test)]
mod tests {
    #[test]
    fn a_mount_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<crate::Fs<crate::MemDisk>>();
        send::<crate::Fs<crate::FileDisk>>();
    }

    #[test]
    fn a_mount_can_be_shared_between_threads() {
        fn sync<T: Sync>() {}
        sync::<crate::Fs<crate::MemDisk>>();
        sync::<crate::Fs<crate::FileDisk>>();
    }
}
