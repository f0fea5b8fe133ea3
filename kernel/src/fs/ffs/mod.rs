//! FFS in the kernel (`rumpfs_ffs`): the engine of crate `ffs` over block devices.
//!
//! Landed so far: [`BioDisk`], the engine's `Disk` over the buffer cache of an etfs block
//! device. Still to come (ARCHITECTURE.md, "FFS in the VFS"): the mount(2) path with
//! `struct ufs_args`, `Body::Ffs` vnodes and the component.

mod disk;

pub use disk::BioDisk;
