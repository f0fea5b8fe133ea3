//! Filling a component file system at mount (`ExtFs::populate`): directories, files and
//! symbolic links created as root under the new mount's root, before anyone can see it.

use std::sync::Arc;

use super::Populate;
use crate::abi::{ALLPERMS, NODEV};
use crate::proc::Cred;
use crate::vfs::{namei, Nd, NewNode, VType, Vfs, Vnode};
use crate::{Errno, Result};

/// Creates nodes under `root` of a mount that is not in the table yet.
pub(crate) struct Populator<'a> {
    pub(crate) vfs: &'a Vfs,
    pub(crate) root: Arc<Vnode>,
}

impl Populator<'_> {
    /// The directory a component path's last name goes in, and that name. Paths are
    /// relative to the root (a leading `/` is allowed); `.`, `..` and empty names are
    /// `EINVAL`, so nothing is created outside the new file system.
    fn parent<'p>(&self, path: &'p [u8]) -> Result<(Arc<Vnode>, &'p [u8])> {
        let names: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|n| !n.is_empty())
            .collect();
        let (&last, dirs) = names.split_last().ok_or(Errno::EINVAL)?;
        if names.iter().any(|n| *n == b"." || *n == b"..") {
            return Err(Errno::EINVAL);
        }
        let nd = Nd {
            root: self.root.clone(),
            cred: Cred::default(),
        };
        let dir = match dirs {
            [] => self.root.clone(),
            // Memory directories never wait: the walk completes on its first poll.
            _ => crate::bio::park_on(namei(&nd, &self.root, &dirs.join(&b'/'), false))?,
        };
        Ok((dir, last))
    }

    fn create(&self, path: &[u8], vtype: VType, mode: u32, target: &[u8]) -> Result<Arc<Vnode>> {
        let (dir, name) = self.parent(path)?;
        let new = NewNode {
            vtype,
            mode: mode & ALLPERMS,
            rdev: NODEV,
            target,
        };
        // Memory directories: the create completes on its first poll.
        crate::bio::park_on(self.vfs.create(&Cred::default(), &dir, name, &new))
    }
}

impl Populate for Populator<'_> {
    fn mkdir(&mut self, path: &[u8], mode: u32) -> Result<()> {
        self.create(path, VType::Dir, mode, b"").map(drop)
    }

    fn add_file(&mut self, path: &[u8], mode: u32, data: &[u8]) -> Result<()> {
        let vn = self.create(path, VType::Reg, mode, b"")?;
        // A memory file's write completes without waiting.
        crate::bio::park_on(vn.write_at(0, data, false)).map(drop)
    }

    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<()> {
        if target.is_empty() || target.len() > crate::abi::PATH_MAX {
            return Err(Errno::EINVAL);
        }
        self.create(path, VType::Lnk, 0o777, target).map(drop)
    }
}
