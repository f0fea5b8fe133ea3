//! The superblock: finding it, validating it, and writing it back; layout arithmetic.
//!
//! Only little-endian images are accepted; a byte-swapped (big-endian) superblock is
//! recognised and refused with `SbError::BigEndian`. Every check here exists so that later
//! arithmetic (cylinder-group addresses, inode locations, bitmap offsets) cannot overflow or
//! point outside the file system.

use crate::le::*;
use crate::{Disk, Errno};
use std::fmt;

/// Size of the area read for a superblock, and the largest `fs_sbsize`.
pub const SBLOCKSIZE: usize = 8192;
/// Where superblocks are searched, in NetBSD's order.
pub const SBLOCK_SEARCH: [u64; 4] = [65536, 8192, 0, 262144];
/// UFS1 superblock magic.
pub const FS_UFS1_MAGIC: i32 = 0x011954;
/// UFS2 superblock magic.
pub const FS_UFS2_MAGIC: i32 = 0x19540119;
const FS_UFS1_MAGIC_SWAPPED: i32 = 0x54190100;
const FS_UFS2_MAGIC_SWAPPED: i32 = 0x19015419;
/// `sizeof(struct fs)`.
pub const SB_STRUCT_SIZE: usize = 1376;
/// Clean flag values (`fs_clean`).
pub const FS_ISCLEAN: u8 = 1;
/// The file system was clean when mounted read-write.
pub const FS_WASCLEAN: u8 = 2;
/// `fs_old_flags`: the 64-bit fields are valid (every UFS1 newfs since 2003 sets it).
pub const FS_FLAGS_UPDATED: u8 = 0x80;
/// `fs_flags`: a WAPBL journal is in use.
pub const FS_DOWAPBL: u32 = 0x100;
/// `fs_flags`: quota2 inodes exist.
pub const FS_DOQUOTA2: u32 = 0x200;
/// Flags NetBSD knows; others refuse the mount.
pub const FS_KNOWN_FLAGS: u32 = 0x0fff;
/// Direct block pointers in an inode.
pub const NDADDR: usize = 12;
/// Indirect block pointers in an inode.
pub const NIADDR: usize = 3;
/// The largest block size.
pub const MAXBSIZE: u32 = 65536;
/// The smallest block size.
pub const MINBSIZE: u32 = 4096;
/// Fragments per block at most.
pub const MAXFRAG: u32 = 8;
/// Bytes of a disk sector (`di_blocks` unit).
pub const DEV_BSIZE: u64 = 512;
/// The root directory's inode number.
pub const ROOTINO: u32 = 2;
/// `sizeof(struct cg)` as the C compiler pads it (the maps start at 168).
pub const CG_STRUCT_SIZE: u64 = 176;
/// Bytes of one `struct csum`.
pub const CSUM_SIZE: usize = 16;

/// Why no usable superblock was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SbError {
    /// no FFS superblock at any standard location (offsets 65536, 8192, 0, 262144)
    NotFfs,
    /// a byte-swapped (big-endian) FFS superblock: only little-endian images are supported
    BigEndian,
    /// a superblock was found but is inconsistent
    Invalid(String),
    /// the device could not be read
    Io(Errno),
}

impl SbError {
    /// The errno `mount` returns for it (NetBSD's `ffs_mountfs` says `EINVAL`).
    pub fn errno(&self) -> Errno {
        match self {
            SbError::Io(e) => *e,
            _ => Errno::EINVAL,
        }
    }
}

impl fmt::Display for SbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SbError::NotFfs => f.write_str(
                "no FFS superblock at any standard location (offsets 65536, 8192, 0, 262144)",
            ),
            SbError::BigEndian => f.write_str(
                "big-endian (byte-swapped) FFS image: only little-endian images are supported \
                 (rebuild it with makefs -B le)",
            ),
            SbError::Invalid(why) => write!(f, "invalid superblock: {why}"),
            SbError::Io(e) => write!(f, "cannot read the superblock: {e}"),
        }
    }
}

/// Summary counts (`struct csum` per group, `struct csum_total` for the file system).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Csum {
    /// Directories.
    pub ndir: i64,
    /// Free blocks.
    pub nbfree: i64,
    /// Free inodes.
    pub nifree: i64,
    /// Free fragments (outside free blocks).
    pub nffree: i64,
}

impl Csum {
    /// Decodes a 16-byte `struct csum`.
    pub fn decode32(b: &[u8]) -> Csum {
        Csum {
            ndir: i32_at(b, 0) as i64,
            nbfree: i32_at(b, 4) as i64,
            nifree: i32_at(b, 8) as i64,
            nffree: i32_at(b, 12) as i64,
        }
    }

    /// Encodes as a 16-byte `struct csum`.
    pub fn encode32(&self, b: &mut [u8]) {
        put_i32(b, 0, self.ndir as i32);
        put_i32(b, 4, self.nbfree as i32);
        put_i32(b, 8, self.nifree as i32);
        put_i32(b, 12, self.nffree as i32);
    }

    /// Adds `d` field by field.
    pub fn add(&mut self, d: &Csum) {
        self.ndir += d.ndir;
        self.nbfree += d.nbfree;
        self.nifree += d.nifree;
        self.nffree += d.nffree;
    }
}

/// A validated superblock: the raw bytes (unknown fields are written back unchanged) and the
/// decoded fields the engine uses. Addresses are in fragments unless named otherwise.
#[derive(Clone, Debug)]
pub struct Superblock {
    /// The `SBLOCKSIZE` bytes read; fields below are folded back in by `encode`.
    pub raw: Vec<u8>,
    /// UFS2 (256-byte inodes, 64-bit block pointers) rather than UFS1.
    pub ufs2: bool,
    /// Byte offset of this superblock.
    pub sblockloc: u64,
    /// Offset of the superblock copy in each group.
    pub sblkno: u64,
    /// Offset of the cylinder-group block in each group.
    pub cblkno: u64,
    /// Offset of the inode blocks in each group.
    pub iblkno: u64,
    /// Offset of the first data fragment in each group.
    pub dblkno: u64,
    /// UFS1 group-start rotation (0 in modern images).
    pub old_cgoffset: i64,
    /// UFS1 group-start rotation mask.
    pub old_cgmask: i64,
    /// Cylinder groups.
    pub ncg: u32,
    /// Block size in bytes.
    pub bsize: u32,
    /// Fragment size in bytes.
    pub fsize: u32,
    /// Fragments per block.
    pub frag: u32,
    /// log2(frag).
    pub fragshift: u32,
    /// log2(bsize).
    pub bshift: u32,
    /// log2(fsize).
    pub fshift: u32,
    /// log2(fsize / DEV_BSIZE).
    pub fsbtodb: u32,
    /// Reserved percentage.
    pub minfree: u32,
    /// Bytes of the superblock written back.
    pub sbsize: u32,
    /// Block pointers per indirect block.
    pub nindir: u32,
    /// Inodes per block.
    pub inopb: u32,
    /// Bytes of the summary area.
    pub cssize: u32,
    /// Bytes of a cylinder-group block.
    pub cgsize: u32,
    /// Inodes per group.
    pub ipg: u32,
    /// Fragments per group.
    pub fpg: u32,
    /// Fragments in the file system.
    pub size: u64,
    /// Data fragments in the file system.
    pub dsize: u64,
    /// Address of the summary area.
    pub csaddr: u64,
    /// Summary totals.
    pub cstotal: Csum,
    /// `fs_clean`.
    pub clean: u8,
    /// `fs_old_flags`.
    pub old_flags: u8,
    /// `fs_flags`.
    pub flags: u32,
    /// Entries of the cluster summary (0: no cluster maps).
    pub contigsumsize: u32,
    /// Longest symlink kept inside the inode (0: old directory format, no `d_type`).
    pub maxsymlinklen: u32,
    /// Largest file size.
    pub maxfilesize: u64,
    /// Last time written (seconds).
    pub time: i64,
    /// UFS1 cylinders per group (sizes the old rotational tables in each cg).
    pub old_cpg: u32,
    /// `fs_id`.
    pub id: [u32; 2],
}

fn log2_exact(v: u64) -> Option<u32> {
    (v != 0 && v.is_power_of_two()).then(|| v.trailing_zeros())
}

fn invalid<T>(why: impl Into<String>) -> Result<T, SbError> {
    Err(SbError::Invalid(why.into()))
}

impl Superblock {
    /// Searches the standard locations of `disk` for a valid superblock.
    pub async fn find<D: Disk>(disk: &D) -> Result<Superblock, SbError> {
        let mut swapped = false;
        let mut first_err = None;
        for loc in SBLOCK_SEARCH {
            if loc + SBLOCKSIZE as u64 > disk.size() {
                continue;
            }
            let mut raw = vec![0u8; SBLOCKSIZE];
            disk.read(loc, &mut raw).await.map_err(SbError::Io)?;
            match i32_at(&raw, 1372) {
                FS_UFS1_MAGIC | FS_UFS2_MAGIC => {}
                FS_UFS1_MAGIC_SWAPPED | FS_UFS2_MAGIC_SWAPPED => {
                    swapped = true;
                    continue;
                }
                _ => continue,
            }
            match Superblock::parse(raw, loc, disk.size()) {
                Ok(sb) => return Ok(sb),
                Err(SbError::Invalid(why)) if why == "alternate" => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(if swapped {
            SbError::BigEndian
        } else {
            SbError::NotFfs
        }))
    }

    /// Decodes and validates the superblock found at byte `loc`.
    pub fn parse(raw: Vec<u8>, loc: u64, disk_size: u64) -> Result<Superblock, SbError> {
        let r = &raw;
        let ufs2 = i32_at(r, 1372) == FS_UFS2_MAGIC;
        let old_flags = r[211];
        let updated = ufs2 || old_flags & FS_FLAGS_UPDATED != 0;
        if updated && i64_at(r, 1000) as u64 != loc {
            // An alternate copy (e.g. the first group's backup): not the primary.
            return invalid("alternate");
        }
        if !updated && loc == 65536 {
            return invalid("alternate");
        }
        let g32 = |o: usize| i32_at(r, o) as i64;
        let sbsize = g32(104);
        if !(SB_STRUCT_SIZE as i64..=SBLOCKSIZE as i64).contains(&sbsize) {
            return invalid(format!("fs_sbsize {sbsize}"));
        }
        let (bsize, fsize, frag) = (g32(48), g32(52), g32(56));
        if !(MINBSIZE as i64..=MAXBSIZE as i64).contains(&bsize)
            || log2_exact(bsize as u64).is_none()
        {
            return invalid(format!("fs_bsize {bsize}"));
        }
        if fsize < DEV_BSIZE as i64 || fsize > bsize || log2_exact(fsize as u64).is_none() {
            return invalid(format!("fs_fsize {fsize}"));
        }
        if frag != bsize / fsize || frag as u32 > MAXFRAG {
            return invalid(format!("fs_frag {frag} (bsize {bsize}, fsize {fsize})"));
        }
        let bshift = log2_exact(bsize as u64).unwrap_or(0);
        let fshift = log2_exact(fsize as u64).unwrap_or(0);
        let fragshift = log2_exact(frag as u64).unwrap_or(0);
        let fsbtodb = fshift - 9;
        if g32(80) != bshift as i64
            || g32(84) != fshift as i64
            || g32(96) != fragshift as i64
            || g32(100) != fsbtodb as i64
        {
            return invalid("shift fields disagree with the sizes");
        }
        if g32(72) != !(bsize - 1) || g32(76) != !(fsize - 1) {
            return invalid("mask fields disagree with the sizes");
        }
        let isize = if ufs2 { 256 } else { 128 };
        let psize = if ufs2 { 8 } else { 4 };
        if g32(120) != bsize / isize {
            return invalid(format!("fs_inopb {}", g32(120)));
        }
        if g32(116) != bsize / psize {
            return invalid(format!("fs_nindir {}", g32(116)));
        }
        let (ncg, ipg, fpg) = (g32(44), g32(184), g32(188));
        let inopb = bsize / isize;
        if ncg <= 0 || ipg <= 0 || fpg <= 0 || g32(92) <= 0 {
            return invalid("zero ncg, ipg, fpg or maxbpg");
        }
        if ipg % inopb != 0
            || fpg % frag != 0
            || ncg.checked_mul(ipg).map_or(true, |n| n > i32::MAX as i64)
        {
            return invalid(format!("ipg {ipg} / fpg {fpg} / ncg {ncg}"));
        }
        let (size, dsize, csaddr, cstotal, time) = if updated {
            let c = Csum {
                ndir: i64_at(r, 1008),
                nbfree: i64_at(r, 1016),
                nifree: i64_at(r, 1024),
                nffree: i64_at(r, 1032),
            };
            (
                i64_at(r, 1080),
                i64_at(r, 1088),
                i64_at(r, 1096),
                c,
                i64_at(r, 1072),
            )
        } else {
            (
                g32(36),
                g32(40),
                g32(152),
                Csum::decode32(&r[192..208]),
                g32(32),
            )
        };
        if size <= 0 || size > (ncg * fpg) || size <= (ncg - 1) * fpg {
            return invalid(format!(
                "fs_size {size} for {ncg} groups of {fpg} fragments"
            ));
        }
        if size as u128 * fsize as u128 > 1u128 << 60 {
            return invalid(format!("fs_size {size} fragments is too large"));
        }
        if dsize <= 0 || dsize > size {
            return invalid(format!("fs_dsize {dsize}"));
        }
        let (sblkno, cblkno, iblkno, dblkno) = (g32(8), g32(12), g32(16), g32(20));
        if !(0 <= sblkno && sblkno < cblkno && cblkno < iblkno && iblkno < dblkno && dblkno <= fpg)
        {
            return invalid("sblkno/cblkno/iblkno/dblkno out of order");
        }
        if iblkno + (ipg / inopb) * frag > dblkno {
            return invalid("inode blocks overlap the data area");
        }
        let cgsize = g32(160);
        let cssize = g32(156);
        let contigsumsize = g32(1316);
        if !(0..=16).contains(&contigsumsize) {
            return invalid(format!("fs_contigsumsize {contigsumsize}"));
        }
        let old_cpg = if ufs2 { 0 } else { g32(180).max(0) };
        let expect = cgsize_for(
            ufs2,
            old_cpg as u64,
            ipg as u64,
            fpg as u64,
            frag as u64,
            contigsumsize as u64,
        );
        let rounded = (expect + fsize as u64 - 1) & !(fsize as u64 - 1);
        if cgsize as u64 != rounded && cgsize as u64 + 1 != expect || cgsize > bsize {
            return invalid(format!("fs_cgsize {cgsize}, expected {rounded}"));
        }
        if cblkno + ((cgsize + fsize - 1) / fsize) > iblkno {
            return invalid("cylinder-group block overlaps the inodes");
        }
        let cs_need = ncg * CSUM_SIZE as i64;
        if cssize < cs_need || cssize > (cs_need + bsize - 1) / bsize * bsize {
            return invalid(format!("fs_cssize {cssize} for {ncg} groups"));
        }
        if csaddr < 0 || csaddr + (cssize + fsize - 1) / fsize > size {
            return invalid(format!("fs_csaddr {csaddr}"));
        }
        let (old_cgoffset, old_cgmask) = if ufs2 { (0, -1) } else { (g32(24), g32(28)) };
        let maxsym = g32(1320);
        if maxsym < 0 || maxsym > (NDADDR + NIADDR) as i64 * psize {
            return invalid(format!("fs_maxsymlinklen {maxsym}"));
        }
        let sb = Superblock {
            ufs2,
            sblockloc: loc,
            sblkno: sblkno as u64,
            cblkno: cblkno as u64,
            iblkno: iblkno as u64,
            dblkno: dblkno as u64,
            old_cgoffset,
            old_cgmask,
            ncg: ncg as u32,
            bsize: bsize as u32,
            fsize: fsize as u32,
            frag: frag as u32,
            fragshift,
            bshift,
            fshift,
            fsbtodb,
            minfree: g32(60).clamp(0, 99) as u32,
            sbsize: sbsize as u32,
            nindir: (bsize / psize) as u32,
            inopb: inopb as u32,
            cssize: cssize as u32,
            cgsize: cgsize as u32,
            ipg: ipg as u32,
            fpg: fpg as u32,
            size: size as u64,
            dsize: dsize as u64,
            csaddr: csaddr as u64,
            cstotal,
            clean: r[209],
            old_flags,
            flags: u32_at(r, 1312),
            contigsumsize: contigsumsize as u32,
            maxsymlinklen: maxsym as u32,
            maxfilesize: 0,
            time,
            old_cpg: old_cpg as u32,
            id: [u32_at(r, 144), u32_at(r, 148)],
            raw,
        };
        for c in 0..sb.ncg {
            let start = sb.cgstart(c);
            let end = (sb.cgbase(c) + sb.fpg as u64).min(sb.size);
            if start + sb.dblkno > end || start < sb.cgbase(c) {
                return invalid(format!("cylinder group {c} cannot hold its metadata"));
            }
        }
        let _ = disk_size;
        let mut sb = sb;
        sb.maxfilesize = sb.tree_max_size().min(i64_at(&sb.raw, 1328).max(0) as u64);
        if sb.maxfilesize == 0 {
            sb.maxfilesize = sb.tree_max_size();
        }
        Ok(sb)
    }

    /// Bytes the file system spans on its device.
    pub fn bytes(&self) -> u64 {
        self.size << self.fshift
    }

    /// The largest size the block tree can address.
    pub fn tree_max_size(&self) -> u64 {
        let n = self.nindir as u128;
        let blocks = NDADDR as u128 + n + n * n + n * n * n;
        (blocks * self.bsize as u128 - 1).min(i64::MAX as u128) as u64
    }

    /// Folds the decoded fields back into `raw` (the first `sbsize` bytes are written).
    pub fn encode(&mut self) {
        let r = &mut self.raw;
        r[208] = 0; // fs_fmod
        r[209] = self.clean;
        r[210] = 0; // fs_ronly
        put_u32(r, 1312, self.flags);
        put_i64(r, 1104, 0); // fs_pendingblocks
        put_i32(r, 1112, 0); // fs_pendinginodes
        put_i64(r, 1072, self.time);
        put_i64(r, 1008, self.cstotal.ndir);
        put_i64(r, 1016, self.cstotal.nbfree);
        put_i64(r, 1024, self.cstotal.nifree);
        put_i64(r, 1032, self.cstotal.nffree);
        if !self.ufs2 {
            // The 32-bit copies that older readers use.
            put_i32(r, 32, self.time as i32);
            self.cstotal.encode32(&mut r[192..208]);
        }
    }

    /// Bytes of an on-disk inode.
    pub fn inode_size(&self) -> u64 {
        if self.ufs2 {
            256
        } else {
            128
        }
    }

    /// First fragment of group `c`.
    pub fn cgbase(&self, c: u32) -> u64 {
        self.fpg as u64 * c as u64
    }

    /// Where group `c`'s metadata starts (UFS1 may rotate it).
    pub fn cgstart(&self, c: u32) -> u64 {
        if self.ufs2 {
            return self.cgbase(c);
        }
        let rot = self.old_cgoffset * (c as i64 & !self.old_cgmask);
        (self.cgbase(c) as i64 + rot).max(0) as u64
    }

    /// Fragment of group `c`'s cylinder-group block.
    pub fn cgtod(&self, c: u32) -> u64 {
        self.cgstart(c) + self.cblkno
    }

    /// Fragment of group `c`'s superblock copy.
    pub fn cgsblock(&self, c: u32) -> u64 {
        self.cgstart(c) + self.sblkno
    }

    /// First inode fragment of group `c`.
    pub fn cgimin(&self, c: u32) -> u64 {
        self.cgstart(c) + self.iblkno
    }

    /// First data fragment of group `c`.
    pub fn cgdmin(&self, c: u32) -> u64 {
        self.cgstart(c) + self.dblkno
    }

    /// Fragments in group `c` (the last one may be short).
    pub fn cg_frags(&self, c: u32) -> u64 {
        (self.size - self.cgbase(c)).min(self.fpg as u64)
    }

    /// Inode numbers in the file system.
    pub fn ninodes(&self) -> u64 {
        self.ncg as u64 * self.ipg as u64
    }

    /// Byte offset of inode `ino` on the device (`ino` must be below `ninodes`).
    pub fn inode_offset(&self, ino: u32) -> u64 {
        let cg = ino / self.ipg;
        let i = (ino % self.ipg) as u64;
        let blk = self.cgimin(cg) + (i / self.inopb as u64) * self.frag as u64;
        blk * self.fsize as u64 + (i % self.inopb as u64) * self.inode_size()
    }

    /// Byte offset of fragment `f`.
    pub fn frag_offset(&self, f: u64) -> u64 {
        f << self.fshift
    }

    /// `fragroundup`.
    pub fn fragroundup(&self, bytes: u64) -> u64 {
        (bytes + self.fsize as u64 - 1) & !(self.fsize as u64 - 1)
    }

    /// Fragments covering `bytes`.
    pub fn numfrags(&self, bytes: u64) -> u64 {
        self.fragroundup(bytes) >> self.fshift
    }

    /// The allocated size of logical block `lbn` of a file of `size` bytes (`blksize`).
    pub fn blksize(&self, size: u64, lbn: u64) -> u64 {
        let bs = self.bsize as u64;
        if lbn >= NDADDR as u64 || size >= (lbn + 1) * bs {
            bs
        } else {
            self.fragroundup(size % bs)
        }
    }

    /// Fragments reserved by `minfree`.
    pub fn reserved_frags(&self) -> u64 {
        self.dsize * self.minfree as u64 / 100
    }
}

/// `CGSIZE`: bytes a cylinder-group block needs for these parameters.
pub fn cgsize_for(ufs2: bool, old_cpg: u64, ipg: u64, fpg: u64, frag: u64, contig: u64) -> u64 {
    let mut n = CG_STRUCT_SIZE + 4;
    if !ufs2 {
        n += old_cpg * 4 + old_cpg * 2;
    }
    n += ipg.div_ceil(8) + fpg.div_ceil(8);
    if contig > 0 {
        n += contig * 4 + (fpg / frag).div_ceil(8);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgsize_matches_makefs() {
        // makefs: UFS2, ipg 32, fpg 240, frag 8, contigsumsize 8 -> fs_cgsize 1024.
        assert_eq!(cgsize_for(true, 0, 32, 240, 8, 8), 250);
        assert_eq!(cgsize_for(false, 1, 64, 240, 8, 8), 260);
    }
}
