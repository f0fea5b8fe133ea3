//! `struct dirent` records of `__getdents30` (netbsd-abi.md §4.4).

/// Offset of `d_name` in a record.
pub const DIRENT_NAME_OFF: usize = 13;

/// `d_reclen` of a record with a `namlen`-byte name: header, name, NUL, rounded up to 8.
pub const fn dirent_reclen(namlen: usize) -> usize {
    (DIRENT_NAME_OFF + namlen + 1 + 7) & !7
}

/// Appends one record (padding zeroed) to `out`.
pub fn encode_dirent(out: &mut Vec<u8>, fileno: u64, dtype: u8, name: &[u8]) {
    let reclen = dirent_reclen(name.len());
    let start = out.len();
    out.extend_from_slice(&fileno.to_le_bytes());
    out.extend_from_slice(&(reclen as u16).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.push(dtype);
    out.extend_from_slice(name);
    out.resize(start + reclen, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lengths_and_bytes() {
        assert_eq!(dirent_reclen(0), 16);
        assert_eq!(dirent_reclen(2), 16);
        assert_eq!(dirent_reclen(3), 24);
        assert_eq!(dirent_reclen(10), 24);
        assert_eq!(dirent_reclen(11), 32);
        let mut b = vec![];
        encode_dirent(&mut b, 0x0102, 4, b"dev");
        assert_eq!(
            b,
            [2, 1, 0, 0, 0, 0, 0, 0, 24, 0, 3, 0, 4, b'd', b'e', b'v', 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
