//! The client's error type.

use std::fmt;
use std::io;

use sp::url::{UrlError, UrlErrorKind};
use sp::ErrorCode;

/// Why a client operation failed.
#[derive(Debug)]
pub enum Error {
    /// The socket failed (connect, read, write) or the server closed the connection.
    Io(io::Error),
    /// The system call failed in the rump kernel with this **NetBSD** errno number.
    Errno(i32),
    /// The server answered with an sp ERROR frame.
    Sp(ErrorCode),
    /// The server broke the protocol (bad banner, malformed or unexpected frame).
    Protocol(String),
    /// The server URL is invalid.
    Url(UrlError),
}

/// Result of a client operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The NetBSD errno this error stands for, if there is one: the syscall's errno, the
    /// librumpclient mapping of an ERROR code (`ErrorCode::errno`), or the URL parser's errno.
    /// `None` for socket and protocol errors.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Errno(n) => Some(*n),
            Error::Sp(c) => Some(c.errno()),
            Error::Url(u) => Some(match u.kind {
                UrlErrorKind::Invalid => 22,      // EINVAL
                UrlErrorKind::NotSupported => 45, // EOPNOTSUPP
                UrlErrorKind::Range => 34,        // ERANGE
                UrlErrorKind::NameTooLong => 63,  // ENAMETOOLONG
            }),
            Error::Io(_) | Error::Protocol(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "rump client: {e}"),
            Error::Errno(n) => write!(f, "rump kernel error: NetBSD errno {n}"),
            Error::Sp(c) => write!(f, "rump server refused the request: {c}"),
            Error::Protocol(m) => write!(f, "rump client: sp protocol violation: {m}"),
            Error::Url(u) => write!(f, "{u}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Url(u) => Some(u),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Error {
        Error::Url(e)
    }
}
