//! File systems: the in-memory node storage shared by memory file systems, rumpfs and tmpfs.

pub mod memnode;
pub mod rumpfs;
pub mod tmpfs;
