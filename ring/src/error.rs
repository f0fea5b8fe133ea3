//! `SetupError`: why a loop could not be started, worded for the operator.

use std::fmt;
use std::io;

/// Why the runtime (or a probe) could not set up io_uring, epoll or a loop thread.
///
/// Every variant's `Display` names the cause and what the operator can do about it.
#[derive(Debug)]
pub enum SetupError {
    /// io_uring is switched off for everybody (`kernel.io_uring_disabled=2`).
    Disabled,
    /// io_uring is restricted to a group we are not in (`kernel.io_uring_disabled=1`).
    Restricted,
    /// `io_uring_setup` failed with EPERM/ENOSYS although the sysctl allows it: a seccomp
    /// profile or container runtime is filtering the io_uring system calls.
    Blocked(io::Error),
    /// The kernel could not allocate or lock the ring's memory (ENOMEM, RLIMIT_MEMLOCK).
    Memory(io::Error),
    /// The kernel refused every set of setup flags we tried (too old, or io_uring missing).
    Unsupported(io::Error),
    /// The loop's wake-up eventfd could not be created.
    Eventfd(io::Error),
    /// A loop thread could not be spawned.
    Spawn(io::Error),
    /// A loop thread died before it reported whether its ring was set up.
    ThreadDied,
    /// Any other setup failure.
    Other(io::Error),
    /// `RUMP_IO_BACKEND` holds something other than `io_uring`, `epoll` or `auto`.
    BadBackend(String),
    /// The epoll backend could not create its epoll instance.
    Epoll(io::Error),
}

impl SetupError {
    /// Classifies an `io_uring_setup` failure, reading `/proc/sys/kernel/io_uring_disabled`
    /// to tell a sysctl ban from a seccomp filter.
    pub(crate) fn from_setup(e: io::Error) -> SetupError {
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::ENOSYS) | Some(libc::EACCES) => {
                match io_uring_disabled_sysctl() {
                    Some(2) => SetupError::Disabled,
                    Some(1) => SetupError::Restricted,
                    _ => SetupError::Blocked(e),
                }
            }
            Some(libc::ENOMEM) => SetupError::Memory(e),
            Some(libc::EINVAL) => SetupError::Unsupported(e),
            _ => SetupError::Other(e),
        }
    }
}

/// The value of `kernel.io_uring_disabled`, if the kernel has that sysctl.
fn io_uring_disabled_sysctl() -> Option<u8> {
    let s = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok()?;
    s.trim().parse().ok()
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Disabled => write!(
                f,
                "io_uring is disabled on this host (kernel.io_uring_disabled=2): \
                 run `sysctl -w kernel.io_uring_disabled=0`"
            ),
            SetupError::Restricted => write!(
                f,
                "io_uring is restricted to the group kernel.io_uring_group \
                 (kernel.io_uring_disabled=1): run `sysctl -w kernel.io_uring_disabled=0` \
                 or run the server as a member of that group"
            ),
            SetupError::Blocked(e) => write!(
                f,
                "io_uring_setup is blocked ({e}), probably by a seccomp profile or container \
                 runtime: allow io_uring_setup/io_uring_enter/io_uring_register"
            ),
            SetupError::Memory(e) => write!(
                f,
                "io_uring could not allocate its rings ({e}): raise the locked-memory limit \
                 (`ulimit -l`, LimitMEMLOCK=) or use fewer loops (-c)"
            ),
            SetupError::Unsupported(e) => write!(
                f,
                "the kernel refused to set up io_uring ({e}): a Linux kernel 5.19 or newer \
                 with CONFIG_IO_URING=y is needed"
            ),
            SetupError::Eventfd(e) => write!(
                f,
                "could not create a loop's wake-up eventfd ({e}): raise the descriptor limit \
                 (`ulimit -n`)"
            ),
            SetupError::Spawn(e) => write!(
                f,
                "could not start a loop thread ({e}): raise the thread/process limit \
                 (`ulimit -u`, pids cgroup) or use fewer loops (-c)"
            ),
            SetupError::ThreadDied => {
                write!(
                    f,
                    "a loop thread died while setting up its I/O backend (see its panic above)"
                )
            }
            SetupError::Other(e) => write!(f, "io_uring setup failed: {e}"),
            SetupError::BadBackend(v) => write!(
                f,
                "{}={v:?} is not an I/O backend: use io_uring, epoll or auto",
                crate::backend::BACKEND_ENV
            ),
            SetupError::Epoll(e) => write!(
                f,
                "could not create a loop's epoll instance ({e}): raise the descriptor limit \
                 (`ulimit -n`)"
            ),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Blocked(e)
            | SetupError::Memory(e)
            | SetupError::Unsupported(e)
            | SetupError::Eventfd(e)
            | SetupError::Spawn(e)
            | SetupError::Other(e)
            | SetupError::Epoll(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_cause_and_remedy() {
        let m = SetupError::Disabled.to_string();
        assert!(
            m.contains("kernel.io_uring_disabled=2") && m.contains("sysctl -w"),
            "{m}"
        );
        let e = io::Error::from_raw_os_error(libc::EPERM);
        let m = SetupError::Blocked(e).to_string();
        assert!(m.contains("seccomp") && m.contains("io_uring_enter"), "{m}");
        let m = SetupError::Memory(io::Error::from_raw_os_error(libc::ENOMEM)).to_string();
        assert!(m.contains("ulimit -l"), "{m}");
    }

    #[test]
    fn classification_by_errno() {
        let e = SetupError::from_setup(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(matches!(e, SetupError::Memory(_)));
        let e = SetupError::from_setup(io::Error::from_raw_os_error(libc::EINVAL));
        assert!(matches!(e, SetupError::Unsupported(_)));
        let e = SetupError::from_setup(io::Error::from_raw_os_error(libc::EPERM));
        match io_uring_disabled_sysctl() {
            Some(2) => assert!(matches!(e, SetupError::Disabled)),
            Some(1) => assert!(matches!(e, SetupError::Restricted)),
            _ => assert!(matches!(e, SetupError::Blocked(_))),
        }
    }
}
