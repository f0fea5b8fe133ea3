//! Which I/O backend a loop runs: io_uring, or the epoll fallback for hosts where io_uring
//! cannot be set up; the `RUMP_IO_BACKEND` choice and the automatic fallback decision.

use std::fmt;

use crate::error::SetupError;

/// The environment variable that chooses the backend when `Config::backend` is `None`:
/// `io_uring`, `epoll` or `auto` (the default when unset or empty).
pub const BACKEND_ENV: &str = "RUMP_IO_BACKEND";

/// The I/O backend a loop runs on (chosen once per runtime, the same for every loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One io_uring per loop (the fast path).
    IoUring,
    /// One epoll instance per loop: readiness-driven non-blocking sockets, timers through the
    /// `epoll_wait` timeout, host-file I/O done synchronously on the loop thread.
    Epoll,
}

impl Backend {
    /// `io_uring` or `epoll` (the spelling `RUMP_IO_BACKEND` takes).
    pub fn name(self) -> &'static str {
        match self {
            Backend::IoUring => "io_uring",
            Backend::Epoll => "epoll",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the operator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// io_uring if it can be set up, else epoll with a one-line warning on stderr.
    Auto,
    /// io_uring or a start-up error.
    IoUring,
    /// epoll, even where io_uring works.
    Epoll,
}

impl BackendChoice {
    /// Parses a `RUMP_IO_BACKEND` value: `io_uring`, `epoll` or `auto`; empty is `auto`.
    pub fn parse(s: &str) -> Result<BackendChoice, SetupError> {
        match s {
            "" | "auto" => Ok(BackendChoice::Auto),
            "io_uring" => Ok(BackendChoice::IoUring),
            "epoll" => Ok(BackendChoice::Epoll),
            other => Err(SetupError::BadBackend(other.to_owned())),
        }
    }

    /// The choice in `RUMP_IO_BACKEND` (`Auto` when unset).
    pub fn from_env() -> Result<BackendChoice, SetupError> {
        Self::from_env_value(std::env::var_os(BACKEND_ENV).as_deref())
    }

    /// The choice for a value of `RUMP_IO_BACKEND` (`None`: unset).
    pub(crate) fn from_env_value(v: Option<&std::ffi::OsStr>) -> Result<BackendChoice, SetupError> {
        match v {
            None => Ok(BackendChoice::Auto),
            Some(v) => match v.to_str() {
                Some(s) => Self::parse(s),
                None => Err(SetupError::BadBackend(v.to_string_lossy().into_owned())),
            },
        }
    }
}

/// Whether `auto` falls back to epoll after this io_uring setup failure: yes when io_uring
/// itself is unusable (sysctl, seccomp, memory lock, old kernel), not when the host is out of
/// threads or descriptors (epoll would fail the same way).
pub(crate) fn falls_back(e: &SetupError) -> bool {
    matches!(
        e,
        SetupError::Disabled
            | SetupError::Restricted
            | SetupError::Blocked(_)
            | SetupError::Memory(_)
            | SetupError::Unsupported(_)
            | SetupError::Other(_)
    )
}

/// The one-line warning printed when `auto` falls back: what happened, what it costs, and how
/// to get io_uring back (the remedy is part of `e`'s message).
pub(crate) fn fallback_warning(e: &SetupError) -> String {
    format!(
        "warning: io_uring unavailable: {e}; using the epoll backend, expect lower throughput \
         ({BACKEND_ENV}=epoll chooses it without this warning)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::io;

    #[test]
    fn env_values_parse() {
        let p = |v: Option<&str>| BackendChoice::from_env_value(v.map(OsStr::new));
        assert_eq!(p(None).unwrap(), BackendChoice::Auto);
        assert_eq!(p(Some("")).unwrap(), BackendChoice::Auto);
        assert_eq!(p(Some("auto")).unwrap(), BackendChoice::Auto);
        assert_eq!(p(Some("io_uring")).unwrap(), BackendChoice::IoUring);
        assert_eq!(p(Some("epoll")).unwrap(), BackendChoice::Epoll);
        for bad in ["EPOLL", "uring", "io-uring", " epoll", "poll"] {
            let e = p(Some(bad)).unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, SetupError::BadBackend(_)), "{bad}");
            assert!(
                m.contains(BACKEND_ENV) && m.contains(bad) && m.contains("io_uring, epoll"),
                "{m}"
            );
        }
        use std::os::unix::ffi::OsStrExt;
        let e = BackendChoice::from_env_value(Some(OsStr::from_bytes(b"\xffepoll")));
        assert!(matches!(e, Err(SetupError::BadBackend(_))));
    }

    #[test]
    fn fallback_decision_and_warning() {
        let eperm = || io::Error::from_raw_os_error(libc::EPERM);
        assert!(falls_back(&SetupError::Disabled));
        assert!(falls_back(&SetupError::Restricted));
        assert!(falls_back(&SetupError::Blocked(eperm())));
        assert!(falls_back(&SetupError::Unsupported(eperm())));
        assert!(falls_back(&SetupError::Memory(eperm())));
        assert!(!falls_back(&SetupError::Spawn(eperm())));
        assert!(!falls_back(&SetupError::Eventfd(eperm())));
        assert!(!falls_back(&SetupError::ThreadDied));
        assert!(!falls_back(&SetupError::BadBackend("x".into())));
        let w = fallback_warning(&SetupError::Disabled);
        assert!(!w.contains('\n'), "one line: {w}");
        assert!(w.contains("io_uring unavailable"), "{w}");
        assert!(w.contains("kernel.io_uring_disabled=2"), "the cause: {w}");
        assert!(
            w.contains("sysctl -w kernel.io_uring_disabled=0"),
            "the remedy: {w}"
        );
        assert!(
            w.contains("epoll backend") && w.contains("lower throughput"),
            "{w}"
        );
    }
}
