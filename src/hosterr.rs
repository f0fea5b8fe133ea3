//! Linux errno → NetBSD errno, for host failures the server reports (bind, open, …).
//!
//! NetBSD and Linux agree on 1–34 except 11 (Linux `EAGAIN`, NetBSD `EDEADLK`); above that the
//! numbering differs. NetBSD's `rumpuser_errtrans.c` does the same at its host boundary.

/// Translates a Linux errno value to NetBSD's number (unknown values become `EIO`).
pub fn to_netbsd(linux: i32) -> u16 {
    use libc::*;
    let n = match linux {
        EAGAIN => 35,
        1..=34 => linux,
        EDEADLK => 11,
        ENAMETOOLONG => 63,
        ENOLCK => 77,
        ENOSYS => 78,
        ENOTEMPTY => 66,
        ELOOP => 62,
        ENOMSG => 83,
        EIDRM => 82,
        ENODATA => 89,
        ETIME => 92,
        EOVERFLOW => 84,
        EILSEQ => 85,
        ENOTSOCK => 38,
        EDESTADDRREQ => 39,
        EINPROGRESS => 36,
        EALREADY => 37,
        ESOCKTNOSUPPORT => 44,
        EPFNOSUPPORT => 46,
        ENETRESET => 52,
        ESHUTDOWN => 58,
        EHOSTDOWN => 64,
        EMSGSIZE => 40,
        EPROTOTYPE => 41,
        ENOPROTOOPT => 42,
        EPROTONOSUPPORT => 43,
        EOPNOTSUPP => 45,
        EAFNOSUPPORT => 47,
        EADDRINUSE => 48,
        EADDRNOTAVAIL => 49,
        ENETDOWN => 50,
        ENETUNREACH => 51,
        ECONNABORTED => 53,
        ECONNRESET => 54,
        ENOBUFS => 55,
        EISCONN => 56,
        ENOTCONN => 57,
        ETIMEDOUT => 60,
        ECONNREFUSED => 61,
        EHOSTUNREACH => 65,
        EDQUOT => 69,
        ESTALE => 70,
        ECANCELED => 87,
        _ => 5,
    };
    n as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_values() {
        assert_eq!(to_netbsd(libc::EADDRINUSE), 48);
        assert_eq!(to_netbsd(libc::EAGAIN), 35);
        assert_eq!(to_netbsd(libc::ENOENT), 2);
        assert_eq!(to_netbsd(libc::EACCES), 13);
        assert_eq!(to_netbsd(libc::ENAMETOOLONG), 63);
        assert_eq!(to_netbsd(libc::ENOSYS), 78);
    }
}
