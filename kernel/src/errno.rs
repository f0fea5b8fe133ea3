//! `Errno`: NetBSD error numbers (netbsd-abi.md §5.1), as a newtype like rustix's.

use core::fmt;

/// A NetBSD errno value. A newtype, because not every value a peer sends is known.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Errno(u16);

/// The result of a kernel operation.
pub type Result<T> = core::result::Result<T, Errno>;

/// (name, strerror text) by number; index 0 is unused.
const TABLE: [(&str, &str); 99] = [
    ("0", "Undefined error: 0"),
    ("EPERM", "Operation not permitted"),
    ("ENOENT", "No such file or directory"),
    ("ESRCH", "No such process"),
    ("EINTR", "Interrupted system call"),
    ("EIO", "Input/output error"),
    ("ENXIO", "Device not configured"),
    ("E2BIG", "Argument list too long"),
    ("ENOEXEC", "Exec format error"),
    ("EBADF", "Bad file descriptor"),
    ("ECHILD", "No child processes"),
    ("EDEADLK", "Resource deadlock avoided"),
    ("ENOMEM", "Cannot allocate memory"),
    ("EACCES", "Permission denied"),
    ("EFAULT", "Bad address"),
    ("ENOTBLK", "Block device required"),
    ("EBUSY", "Device busy"),
    ("EEXIST", "File exists"),
    ("EXDEV", "Cross-device link"),
    ("ENODEV", "Operation not supported by device"),
    ("ENOTDIR", "Not a directory"),
    ("EISDIR", "Is a directory"),
    ("EINVAL", "Invalid argument"),
    ("ENFILE", "Too many open files in system"),
    ("EMFILE", "Too many open files"),
    ("ENOTTY", "Inappropriate ioctl for device"),
    ("ETXTBSY", "Text file busy"),
    ("EFBIG", "File too large"),
    ("ENOSPC", "No space left on device"),
    ("ESPIPE", "Illegal seek"),
    ("EROFS", "Read-only file system"),
    ("EMLINK", "Too many links"),
    ("EPIPE", "Broken pipe"),
    ("EDOM", "Numerical argument out of domain"),
    ("ERANGE", "Result too large or too small"),
    ("EAGAIN", "Resource temporarily unavailable"),
    ("EINPROGRESS", "Operation now in progress"),
    ("EALREADY", "Operation already in progress"),
    ("ENOTSOCK", "Socket operation on non-socket"),
    ("EDESTADDRREQ", "Destination address required"),
    ("EMSGSIZE", "Message too long"),
    ("EPROTOTYPE", "Protocol wrong type for socket"),
    ("ENOPROTOOPT", "Protocol option not available"),
    ("EPROTONOSUPPORT", "Protocol not supported"),
    ("ESOCKTNOSUPPORT", "Socket type not supported"),
    ("EOPNOTSUPP", "Operation not supported"),
    ("EPFNOSUPPORT", "Protocol family not supported"),
    (
        "EAFNOSUPPORT",
        "Address family not supported by protocol family",
    ),
    ("EADDRINUSE", "Address already in use"),
    ("EADDRNOTAVAIL", "Can't assign requested address"),
    ("ENETDOWN", "Network is down"),
    ("ENETUNREACH", "Network is unreachable"),
    ("ENETRESET", "Network dropped connection on reset"),
    ("ECONNABORTED", "Software caused connection abort"),
    ("ECONNRESET", "Connection reset by peer"),
    ("ENOBUFS", "No buffer space available"),
    ("EISCONN", "Socket is already connected"),
    ("ENOTCONN", "Socket is not connected"),
    ("ESHUTDOWN", "Can't send after socket shutdown"),
    ("ETOOMANYREFS", "Too many references: can't splice"),
    ("ETIMEDOUT", "Operation timed out"),
    ("ECONNREFUSED", "Connection refused"),
    ("ELOOP", "Too many levels of symbolic links"),
    ("ENAMETOOLONG", "File name too long"),
    ("EHOSTDOWN", "Host is down"),
    ("EHOSTUNREACH", "No route to host"),
    ("ENOTEMPTY", "Directory not empty"),
    ("EPROCLIM", "Too many processes"),
    ("EUSERS", "Too many users"),
    ("EDQUOT", "Disc quota exceeded"),
    ("ESTALE", "Stale NFS file handle"),
    ("EREMOTE", "Too many levels of remote in path"),
    ("EBADRPC", "RPC struct is bad"),
    ("ERPCMISMATCH", "RPC version wrong"),
    ("EPROGUNAVAIL", "RPC prog. not avail"),
    ("EPROGMISMATCH", "Program version wrong"),
    ("EPROCUNAVAIL", "Bad procedure for program"),
    ("ENOLCK", "No locks available"),
    ("ENOSYS", "Function not implemented"),
    ("EFTYPE", "Inappropriate file type or format"),
    ("EAUTH", "Authentication error"),
    ("ENEEDAUTH", "Need authenticator"),
    ("EIDRM", "Identifier removed"),
    ("ENOMSG", "No message of desired type"),
    ("EOVERFLOW", "Value too large to be stored in data type"),
    ("EILSEQ", "Illegal byte sequence"),
    ("ENOTSUP", "Not supported"),
    ("ECANCELED", "Operation canceled"),
    ("EBADMSG", "Bad or Corrupt message"),
    ("ENODATA", "No message available"),
    ("ENOSR", "No STREAM resources"),
    ("ENOSTR", "Not a STREAM"),
    ("ETIME", "STREAM ioctl timeout"),
    ("ENOATTR", "Attribute not found"),
    ("EMULTIHOP", "Multihop attempted"),
    ("ENOLINK", "Link has been severed"),
    ("EPROTO", "Protocol error"),
    ("EOWNERDEAD", "Previous owner died"),
    ("ENOTRECOVERABLE", "State not recoverable"),
];

impl Errno {
    /// 1: Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// 2: No such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// 3: No such process.
    pub const ESRCH: Errno = Errno(3);
    /// 4: Interrupted system call.
    pub const EINTR: Errno = Errno(4);
    /// 5: Input/output error.
    pub const EIO: Errno = Errno(5);
    /// 6: Device not configured.
    pub const ENXIO: Errno = Errno(6);
    /// 7: Argument list too long.
    pub const E2BIG: Errno = Errno(7);
    /// 8: Exec format error.
    pub const ENOEXEC: Errno = Errno(8);
    /// 9: Bad file descriptor.
    pub const EBADF: Errno = Errno(9);
    /// 10: No child processes.
    pub const ECHILD: Errno = Errno(10);
    /// 11: Resource deadlock avoided.
    pub const EDEADLK: Errno = Errno(11);
    /// 12: Cannot allocate memory.
    pub const ENOMEM: Errno = Errno(12);
    /// 13: Permission denied.
    pub const EACCES: Errno = Errno(13);
    /// 14: Bad address.
    pub const EFAULT: Errno = Errno(14);
    /// 15: Block device required.
    pub const ENOTBLK: Errno = Errno(15);
    /// 16: Device busy.
    pub const EBUSY: Errno = Errno(16);
    /// 17: File exists.
    pub const EEXIST: Errno = Errno(17);
    /// 18: Cross-device link.
    pub const EXDEV: Errno = Errno(18);
    /// 19: Operation not supported by device.
    pub const ENODEV: Errno = Errno(19);
    /// 20: Not a directory.
    pub const ENOTDIR: Errno = Errno(20);
    /// 21: Is a directory.
    pub const EISDIR: Errno = Errno(21);
    /// 22: Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// 23: Too many open files in system.
    pub const ENFILE: Errno = Errno(23);
    /// 24: Too many open files.
    pub const EMFILE: Errno = Errno(24);
    /// 25: Inappropriate ioctl for device.
    pub const ENOTTY: Errno = Errno(25);
    /// 26: Text file busy.
    pub const ETXTBSY: Errno = Errno(26);
    /// 27: File too large.
    pub const EFBIG: Errno = Errno(27);
    /// 28: No space left on device.
    pub const ENOSPC: Errno = Errno(28);
    /// 29: Illegal seek.
    pub const ESPIPE: Errno = Errno(29);
    /// 30: Read-only file system.
    pub const EROFS: Errno = Errno(30);
    /// 31: Too many links.
    pub const EMLINK: Errno = Errno(31);
    /// 32: Broken pipe.
    pub const EPIPE: Errno = Errno(32);
    /// 33: Numerical argument out of domain.
    pub const EDOM: Errno = Errno(33);
    /// 34: Result too large or too small.
    pub const ERANGE: Errno = Errno(34);
    /// 35: Resource temporarily unavailable.
    pub const EAGAIN: Errno = Errno(35);
    /// 36: Operation now in progress.
    pub const EINPROGRESS: Errno = Errno(36);
    /// 37: Operation already in progress.
    pub const EALREADY: Errno = Errno(37);
    /// 38: Socket operation on non-socket.
    pub const ENOTSOCK: Errno = Errno(38);
    /// 39: Destination address required.
    pub const EDESTADDRREQ: Errno = Errno(39);
    /// 40: Message too long.
    pub const EMSGSIZE: Errno = Errno(40);
    /// 41: Protocol wrong type for socket.
    pub const EPROTOTYPE: Errno = Errno(41);
    /// 42: Protocol option not available.
    pub const ENOPROTOOPT: Errno = Errno(42);
    /// 43: Protocol not supported.
    pub const EPROTONOSUPPORT: Errno = Errno(43);
    /// 44: Socket type not supported.
    pub const ESOCKTNOSUPPORT: Errno = Errno(44);
    /// 45: Operation not supported.
    pub const EOPNOTSUPP: Errno = Errno(45);
    /// 46: Protocol family not supported.
    pub const EPFNOSUPPORT: Errno = Errno(46);
    /// 47: Address family not supported by protocol family.
    pub const EAFNOSUPPORT: Errno = Errno(47);
    /// 48: Address already in use.
    pub const EADDRINUSE: Errno = Errno(48);
    /// 49: Can't assign requested address.
    pub const EADDRNOTAVAIL: Errno = Errno(49);
    /// 50: Network is down.
    pub const ENETDOWN: Errno = Errno(50);
    /// 51: Network is unreachable.
    pub const ENETUNREACH: Errno = Errno(51);
    /// 52: Network dropped connection on reset.
    pub const ENETRESET: Errno = Errno(52);
    /// 53: Software caused connection abort.
    pub const ECONNABORTED: Errno = Errno(53);
    /// 54: Connection reset by peer.
    pub const ECONNRESET: Errno = Errno(54);
    /// 55: No buffer space available.
    pub const ENOBUFS: Errno = Errno(55);
    /// 56: Socket is already connected.
    pub const EISCONN: Errno = Errno(56);
    /// 57: Socket is not connected.
    pub const ENOTCONN: Errno = Errno(57);
    /// 58: Can't send after socket shutdown.
    pub const ESHUTDOWN: Errno = Errno(58);
    /// 59: Too many references: can't splice.
    pub const ETOOMANYREFS: Errno = Errno(59);
    /// 60: Operation timed out.
    pub const ETIMEDOUT: Errno = Errno(60);
    /// 61: Connection refused.
    pub const ECONNREFUSED: Errno = Errno(61);
    /// 62: Too many levels of symbolic links.
    pub const ELOOP: Errno = Errno(62);
    /// 63: File name too long.
    pub const ENAMETOOLONG: Errno = Errno(63);
    /// 64: Host is down.
    pub const EHOSTDOWN: Errno = Errno(64);
    /// 65: No route to host.
    pub const EHOSTUNREACH: Errno = Errno(65);
    /// 66: Directory not empty.
    pub const ENOTEMPTY: Errno = Errno(66);
    /// 67: Too many processes.
    pub const EPROCLIM: Errno = Errno(67);
    /// 68: Too many users.
    pub const EUSERS: Errno = Errno(68);
    /// 69: Disc quota exceeded.
    pub const EDQUOT: Errno = Errno(69);
    /// 70: Stale NFS file handle.
    pub const ESTALE: Errno = Errno(70);
    /// 71: Too many levels of remote in path.
    pub const EREMOTE: Errno = Errno(71);
    /// 72: RPC struct is bad.
    pub const EBADRPC: Errno = Errno(72);
    /// 73: RPC version wrong.
    pub const ERPCMISMATCH: Errno = Errno(73);
    /// 74: RPC prog. not avail.
    pub const EPROGUNAVAIL: Errno = Errno(74);
    /// 75: Program version wrong.
    pub const EPROGMISMATCH: Errno = Errno(75);
    /// 76: Bad procedure for program.
    pub const EPROCUNAVAIL: Errno = Errno(76);
    /// 77: No locks available.
    pub const ENOLCK: Errno = Errno(77);
    /// 78: Function not implemented.
    pub const ENOSYS: Errno = Errno(78);
    /// 79: Inappropriate file type or format.
    pub const EFTYPE: Errno = Errno(79);
    /// 80: Authentication error.
    pub const EAUTH: Errno = Errno(80);
    /// 81: Need authenticator.
    pub const ENEEDAUTH: Errno = Errno(81);
    /// 82: Identifier removed.
    pub const EIDRM: Errno = Errno(82);
    /// 83: No message of desired type.
    pub const ENOMSG: Errno = Errno(83);
    /// 84: Value too large to be stored in data type.
    pub const EOVERFLOW: Errno = Errno(84);
    /// 85: Illegal byte sequence.
    pub const EILSEQ: Errno = Errno(85);
    /// 86: Not supported.
    pub const ENOTSUP: Errno = Errno(86);
    /// 87: Operation canceled.
    pub const ECANCELED: Errno = Errno(87);
    /// 88: Bad or Corrupt message.
    pub const EBADMSG: Errno = Errno(88);
    /// 89: No message available.
    pub const ENODATA: Errno = Errno(89);
    /// 90: No STREAM resources.
    pub const ENOSR: Errno = Errno(90);
    /// 91: Not a STREAM.
    pub const ENOSTR: Errno = Errno(91);
    /// 92: STREAM ioctl timeout.
    pub const ETIME: Errno = Errno(92);
    /// 93: Attribute not found.
    pub const ENOATTR: Errno = Errno(93);
    /// 94: Multihop attempted.
    pub const EMULTIHOP: Errno = Errno(94);
    /// 95: Link has been severed.
    pub const ENOLINK: Errno = Errno(95);
    /// 96: Protocol error.
    pub const EPROTO: Errno = Errno(96);
    /// 97: Previous owner died.
    pub const EOWNERDEAD: Errno = Errno(97);
    /// 98: State not recoverable.
    pub const ENOTRECOVERABLE: Errno = Errno(98);
    /// Same value as `EAGAIN`.
    pub const EWOULDBLOCK: Errno = Errno(35);
    /// Highest errno number known (current NetBSD).
    pub const ELAST: Errno = Errno(98);

    /// The NetBSD number.
    pub const fn raw(self) -> u16 {
        self.0
    }

    /// An errno from its NetBSD number (any value is kept, known or not).
    pub const fn from_raw(raw: u16) -> Errno {
        Errno(raw)
    }

    /// The symbolic name (`"ENOENT"`), or `"E?"` for an unknown number.
    pub fn name(self) -> &'static str {
        match TABLE.get(usize::from(self.0)) {
            Some((name, _)) if self.0 != 0 => name,
            _ => "E?",
        }
    }

    /// NetBSD's `strerror` text, or `None` for an unknown number.
    pub fn message(self) -> Option<&'static str> {
        match TABLE.get(usize::from(self.0)) {
            Some((_, text)) if self.0 != 0 => Some(text),
            _ => None,
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(_) => f.write_str(self.name()),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(text) => f.write_str(text),
            None => write!(f, "Unknown error: {}", self.0),
        }
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_names_and_texts() {
        assert_eq!(Errno::EPERM.raw(), 1);
        assert_eq!(Errno::ENOSYS.raw(), 78);
        assert_eq!(Errno::ENOTRECOVERABLE.raw(), 98);
        assert_eq!(Errno::EAGAIN, Errno::EWOULDBLOCK);
        assert_eq!(format!("{:?}", Errno::EBADF), "EBADF");
        assert_eq!(Errno::EADDRINUSE.to_string(), "Address already in use");
        assert_eq!(Errno::from_raw(22), Errno::EINVAL);
        assert_eq!(format!("{:?}", Errno::from_raw(500)), "Errno(500)");
        assert_eq!(Errno::from_raw(500).to_string(), "Unknown error: 500");
        for n in 1..=98u16 {
            assert_ne!(Errno::from_raw(n).name(), "E?", "{n}");
        }
    }
}
