//! `rump_fuse`: mounts a rump server's namespace (or a subtree) on the Linux host through
//! FUSE, translating each FUSE request into NetBSD system calls over pooled sp connections.

pub mod errno;
pub mod fs;
pub mod nb;
pub mod nodes;
pub mod pool;
