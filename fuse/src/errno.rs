//! NetBSD errno numbers → Linux errno numbers: the one table every reply goes through.
//!
//! The rump kernel answers with NetBSD's numbers (kernel/src/errno.rs); FUSE wants Linux's.
//! Numbers 1–34 are the same on both (the old Unix ones); from 35 on they differ. A NetBSD
//! errno that Linux lacks maps to the nearest Linux meaning (listed in the table's comments).

/// `(NetBSD, Linux)` for every NetBSD errno from 35 (`EAGAIN`) to 98 (`ENOTRECOVERABLE`).
const TABLE: [(i32, i32); 64] = [
    (35, libc::EAGAIN),
    (36, libc::EINPROGRESS),
    (37, libc::EALREADY),
    (38, libc::ENOTSOCK),
    (39, libc::EDESTADDRREQ),
    (40, libc::EMSGSIZE),
    (41, libc::EPROTOTYPE),
    (42, libc::ENOPROTOOPT),
    (43, libc::EPROTONOSUPPORT),
    (44, libc::ESOCKTNOSUPPORT),
    (45, libc::EOPNOTSUPP),
    (46, libc::EPFNOSUPPORT),
    (47, libc::EAFNOSUPPORT),
    (48, libc::EADDRINUSE),
    (49, libc::EADDRNOTAVAIL),
    (50, libc::ENETDOWN),
    (51, libc::ENETUNREACH),
    (52, libc::ENETRESET),
    (53, libc::ECONNABORTED),
    (54, libc::ECONNRESET),
    (55, libc::ENOBUFS),
    (56, libc::EISCONN),
    (57, libc::ENOTCONN),
    (58, libc::ESHUTDOWN),
    (59, libc::ETOOMANYREFS),
    (60, libc::ETIMEDOUT),
    (61, libc::ECONNREFUSED),
    (62, libc::ELOOP),
    (63, libc::ENAMETOOLONG),
    (64, libc::EHOSTDOWN),
    (65, libc::EHOSTUNREACH),
    (66, libc::ENOTEMPTY),
    // EPROCLIM: Linux has no such limit error; fork-style limits are EAGAIN there.
    (67, libc::EAGAIN),
    (68, libc::EUSERS),
    (69, libc::EDQUOT),
    (70, libc::ESTALE),
    (71, libc::EREMOTE),
    // The Sun RPC errors (EBADRPC … EPROCUNAVAIL) have no Linux twin: a protocol error.
    (72, libc::EPROTO),
    (73, libc::EPROTO),
    (74, libc::EPROTO),
    (75, libc::EPROTO),
    (76, libc::EPROTO),
    (77, libc::ENOLCK),
    (78, libc::ENOSYS),
    // EFTYPE ("inappropriate file type or format", e.g. O_NOFOLLOW on a symlink): Linux
    // answers that case with ELOOP; elsewhere EINVAL would be less precise.
    (79, libc::ELOOP),
    (80, libc::EACCES),
    (81, libc::EACCES),
    (82, libc::EIDRM),
    (83, libc::ENOMSG),
    (84, libc::EOVERFLOW),
    (85, libc::EILSEQ),
    (86, libc::ENOTSUP),
    (87, libc::ECANCELED),
    (88, libc::EBADMSG),
    (89, libc::ENODATA),
    (90, libc::ENOSR),
    (91, libc::ENOSTR),
    (92, libc::ETIME),
    // ENOATTR is ENODATA on Linux (getxattr of a missing attribute).
    (93, libc::ENODATA),
    (94, libc::EMULTIHOP),
    (95, libc::ENOLINK),
    (96, libc::EPROTO),
    (97, libc::EOWNERDEAD),
    (98, libc::ENOTRECOVERABLE),
];

/// The Linux errno for NetBSD errno `nb`; `EIO` for a number NetBSD does not define.
pub fn to_linux(nb: i32) -> i32 {
    match nb {
        // 1..=34 (EPERM … ERANGE) are numbered alike; 7 (E2BIG) is too.
        1..=34 => nb,
        35..=98 => TABLE[(nb - 35) as usize].1,
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_dense_and_ordered() {
        for (i, (nb, _)) in TABLE.iter().enumerate() {
            assert_eq!(*nb, 35 + i as i32);
        }
    }

    #[test]
    fn common_values() {
        assert_eq!(to_linux(2), libc::ENOENT);
        assert_eq!(to_linux(13), libc::EACCES);
        assert_eq!(to_linux(35), libc::EAGAIN);
        assert_eq!(to_linux(62), libc::ELOOP);
        assert_eq!(to_linux(63), libc::ENAMETOOLONG);
        assert_eq!(to_linux(66), libc::ENOTEMPTY);
        assert_eq!(to_linux(78), libc::ENOSYS);
        assert_eq!(to_linux(45), libc::EOPNOTSUPP);
        assert_eq!(to_linux(0), libc::EIO);
        assert_eq!(to_linux(99), libc::EIO);
        assert_eq!(to_linux(-3), libc::EIO);
    }
}
