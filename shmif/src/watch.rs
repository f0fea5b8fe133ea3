//! Waiting for the bus to change: an inotify watch for `IN_MODIFY` on the bus file, the
//! Linux half of NetBSD's `rumpcomp_shmif_watchsetup`/`watchwait` (senders modify the file
//! with [`crate::Bus::wakeup`]).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// An inotify watch on one bus file.
pub struct Watch {
    fd: OwnedFd,
}

impl Watch {
    /// Watches `path` for modifications.
    pub fn new(path: &Path) -> std::io::Result<Watch> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let p = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: valid descriptor and NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), p.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Watch { fd })
    }

    /// An inotify instance watching nothing yet: one per kernel, with [`Watch::add`] for
    /// each bus, so a host's `fs.inotify.max_user_instances` (128 by default) does not cap
    /// the number of shmif interfaces (a chain of 64 servers has 126).
    pub fn empty() -> std::io::Result<Watch> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor we own from here on.
        Ok(Watch {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Also watches `path` for modifications; returns the watch descriptor (the same one
    /// for the same file).
    pub fn add(&self, path: &Path) -> std::io::Result<i32> {
        let p = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: valid descriptor and NUL-terminated path.
        let wd =
            unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), p.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(wd)
    }

    /// Stops watching what `wd` ([`Watch::add`]) watches.
    pub fn remove(&self, wd: i32) {
        // SAFETY: plain system call on our descriptor; a stale `wd` is EINVAL, ignored.
        unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd) };
    }

    /// Waits until the file is modified or `timeout` passes; `Ok(true)` if it was. The
    /// pending events are drained, so one modification wakes one wait.
    pub fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::Interrupted => Ok(false),
                _ => Err(e),
            };
        }
        if n == 0 {
            return Ok(false);
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into our buffer of its length.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                break;
            }
        }
        Ok(true)
    }

    /// The descriptor, for an event loop that polls it.
    pub fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}
