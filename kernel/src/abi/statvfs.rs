//! `struct statvfs` (3296 bytes) and the old `struct statvfs90` (2256 bytes), §4.6.

/// Size of the current `struct statvfs`.
pub const STATVFS_SIZE: usize = 3296;
/// Size of `struct statvfs90` (syscalls 356–358).
pub const STATVFS90_SIZE: usize = 2256;

/// What a file system reports in statvfs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statvfs {
    /// `f_flag`.
    pub flag: u64,
    /// `f_bsize`.
    pub bsize: u64,
    /// `f_frsize`.
    pub frsize: u64,
    /// `f_iosize`.
    pub iosize: u64,
    /// `f_blocks`.
    pub blocks: u64,
    /// `f_bfree`.
    pub bfree: u64,
    /// `f_bavail`.
    pub bavail: u64,
    /// `f_bresvd`.
    pub bresvd: u64,
    /// `f_files`.
    pub files: u64,
    /// `f_ffree`.
    pub ffree: u64,
    /// `f_favail`.
    pub favail: u64,
    /// `f_fresvd`.
    pub fresvd: u64,
    /// `f_fsidx.__fsid_val`.
    pub fsidx: [i32; 2],
    /// `f_fsid`.
    pub fsid: u64,
    /// `f_namemax`.
    pub namemax: u64,
    /// `f_owner`.
    pub owner: u32,
    /// `f_fstypename`.
    pub fstypename: Vec<u8>,
    /// `f_mntonname`.
    pub mntonname: Vec<u8>,
    /// `f_mntfromname`.
    pub mntfromname: Vec<u8>,
}

fn put_str(b: &mut [u8], s: &[u8]) {
    let n = s.len().min(b.len() - 1);
    b[..n].copy_from_slice(&s[..n]);
}

impl Statvfs {
    fn head(&self, b: &mut [u8]) {
        let words = [
            self.flag,
            self.bsize,
            self.frsize,
            self.iosize,
            self.blocks,
            self.bfree,
            self.bavail,
            self.bresvd,
            self.files,
            self.ffree,
            self.favail,
            self.fresvd,
        ];
        for (i, w) in words.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        // 96..128: sync/async read/write counters, zero.
        b[128..132].copy_from_slice(&self.fsidx[0].to_le_bytes());
        b[132..136].copy_from_slice(&self.fsidx[1].to_le_bytes());
        b[136..144].copy_from_slice(&self.fsid.to_le_bytes());
        b[144..152].copy_from_slice(&self.namemax.to_le_bytes());
        b[152..156].copy_from_slice(&self.owner.to_le_bytes());
    }

    /// The current layout.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; STATVFS_SIZE];
        self.head(&mut b);
        put_str(&mut b[192..224], &self.fstypename);
        put_str(&mut b[224..1248], &self.mntonname);
        put_str(&mut b[1248..2272], &self.mntfromname);
        b
    }

    /// The `statvfs90` layout.
    pub fn encode90(&self) -> Vec<u8> {
        let mut b = vec![0u8; STATVFS90_SIZE];
        self.head(&mut b);
        put_str(&mut b[172..204], &self.fstypename);
        put_str(&mut b[204..1228], &self.mntonname);
        put_str(&mut b[1228..2252], &self.mntfromname);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts() {
        let s = Statvfs {
            flag: 0x1000,
            bsize: 512,
            namemax: 255,
            fsidx: [7, 9],
            fstypename: b"rumpfs".to_vec(),
            mntonname: b"/".to_vec(),
            mntfromname: b"rumpfs".to_vec(),
            ..Statvfs::default()
        };
        let n = s.encode();
        assert_eq!(n.len(), 3296);
        assert_eq!(&n[0..8], &0x1000u64.to_le_bytes());
        assert_eq!(&n[8..16], &512u64.to_le_bytes());
        assert_eq!(&n[128..136], &[7, 0, 0, 0, 9, 0, 0, 0]);
        assert_eq!(&n[144..152], &255u64.to_le_bytes());
        assert_eq!(&n[192..199], b"rumpfs\0");
        assert_eq!(&n[224..226], b"/\0");
        assert_eq!(&n[1248..1254], b"rumpfs");
        let o = s.encode90();
        assert_eq!(o.len(), 2256);
        assert_eq!(&o[172..178], b"rumpfs");
        assert_eq!(&o[204..206], b"/\0");
        assert_eq!(&o[1228..1234], b"rumpfs");
        assert!(o[2252..].iter().all(|&x| x == 0));
    }
}
