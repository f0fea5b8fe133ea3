//! File systems: the in-memory node storage shared by memory file systems, rumpfs and tmpfs,
//! and FFS over block devices (in progress).

pub mod ffs;
pub mod memnode;
pub mod rumpfs;
pub mod tmpfs;
