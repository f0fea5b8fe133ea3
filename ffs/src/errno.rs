//! `Errno`: the NetBSD error numbers the engine returns (the kernel converts them 1:1).

use core::fmt;

/// A NetBSD errno value (netbsd-abi.md §5.1).
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Errno(pub u16);

/// The result of an engine operation.
pub type Result<T> = core::result::Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident = $n:expr, $text:expr;)*) => {
        impl Errno {
            $(#[doc = $text] pub const $name: Errno = Errno($n);)*

            /// The symbolic name, e.g. `"ENOENT"`, if known.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($n => Some(stringify!($name)),)* _ => None }
            }

            fn text(self) -> Option<&'static str> {
                match self.0 { $($n => Some($text),)* _ => None }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    ENXIO = 6, "Device not configured";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EBUSY = 16, "Device busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Cross-device link";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    EFBIG = 27, "File too large";
    ENOSPC = 28, "No space left on device";
    EROFS = 30, "Read-only file system";
    EMLINK = 31, "Too many links";
    ERANGE = 34, "Result too large or too small";
    EOPNOTSUPP = 45, "Operation not supported";
    ELOOP = 62, "Too many levels of symbolic links";
    ENAMETOOLONG = 63, "File name too long";
    ENOTEMPTY = 66, "Directory not empty";
    EFTYPE = 79, "Inappropriate file type or format";
}

impl Errno {
    /// The raw NetBSD number.
    pub fn raw(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(t) => f.write_str(t),
            None => write!(f, "Unknown error: {}", self.0),
        }
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(Errno::EFTYPE.raw(), 79);
        assert_eq!(format!("{:?}", Errno::ENOTEMPTY), "ENOTEMPTY");
        assert_eq!(Errno::ENOSPC.to_string(), "No space left on device");
        assert_eq!(format!("{:?}", Errno(999)), "Errno(999)");
    }
}
