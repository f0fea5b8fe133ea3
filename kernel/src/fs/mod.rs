//! File systems: the in-memory node storage shared by memory file systems, and rumpfs.

pub mod memnode;
pub mod rumpfs;
