//! `newfs`: writes an empty UFS1 or UFS2 file system (a root directory holding `.` and `..`)
//! with NetBSD newfs's layout rules and size-dependent defaults.

use crate::cg::Cg;
use crate::dir;
use crate::fs::system_clock;
use crate::inode::{Dinode, IFDIR};
use crate::le::*;
use crate::sb::*;
use crate::{Disk, Errno, Result};

/// Parameters of `newfs`; `None` picks NetBSD's default for the size.
#[derive(Clone, Debug)]
pub struct NewfsOptions {
    /// UFS2 (`-O 2`, the default) or UFS1.
    pub ufs2: bool,
    /// Block size: 4096 below 20 MB, 8192 below 1 GB, else 16384.
    pub bsize: Option<u32>,
    /// Fragment size: `bsize / 8`.
    pub fsize: Option<u32>,
    /// Bytes of the file system: the whole disk.
    pub size: Option<u64>,
    /// Bytes of data space per inode: `4 × fsize`.
    pub density: Option<u32>,
    /// Reserved percentage of the data space.
    pub minfree: u32,
}

impl Default for NewfsOptions {
    fn default() -> Self {
        NewfsOptions {
            ufs2: true,
            bsize: None,
            fsize: None,
            size: None,
            density: None,
            minfree: 5,
        }
    }
}

/// The computed layout (exposed for `rump_newfs`'s summary line).
#[derive(Clone, Debug)]
pub struct Layout {
    /// The superblock written.
    pub sb: Superblock,
}

fn roundup(v: u64, m: u64) -> u64 {
    v.div_ceil(m) * m
}

/// Writes an empty file system on `disk`.
pub async fn newfs<D: Disk>(disk: &D, o: &NewfsOptions) -> Result<Layout> {
    let bytes = o.size.unwrap_or(disk.size()).min(disk.size());
    let bsize = o.bsize.unwrap_or(if bytes < 20 << 20 {
        4096
    } else if bytes < 1 << 30 {
        8192
    } else {
        16384
    });
    let fsize = o.fsize.unwrap_or(bsize / 8).max(512);
    let pow2 = |v: u32| v.is_power_of_two();
    if !pow2(bsize) || !(MINBSIZE..=MAXBSIZE).contains(&bsize) || !pow2(fsize) {
        return Err(Errno::EINVAL);
    }
    if fsize > bsize || bsize / fsize > MAXFRAG {
        return Err(Errno::EINVAL);
    }
    let ufs2 = o.ufs2;
    let (isize, psize) = if ufs2 { (256u64, 8u64) } else { (128, 4) };
    let (b, f) = (bsize as u64, fsize as u64);
    let frag = b / f;
    let inopb = b / isize;
    let density = o.density.unwrap_or(4 * fsize).max(fsize) as u64;
    let sblockloc: u64 = if ufs2 { 65536 } else { 8192 };
    let sblkno = roundup((sblockloc + SBLOCKSIZE as u64).div_ceil(f), frag);
    let cblkno = sblkno + roundup((SBLOCKSIZE as u64).div_ceil(f), frag);
    let iblkno = cblkno + frag;
    let contig = (65536 / b).clamp(1, 16);
    let old_cpg = if ufs2 { 0 } else { 1 };
    let nfrags_all = bytes / f;
    let ipg_for = |fpg: u64| {
        let n = roundup((fpg * f).div_ceil(density).max(inopb), inopb);
        if ufs2 {
            n
        } else {
            n.min(32767 / inopb * inopb)
        }
    };
    // The largest group whose cylinder-group block fits in one block.
    let mut fpg = roundup(nfrags_all.max(frag), frag).min(b * 8);
    while fpg > frag && cgsize_for(ufs2, old_cpg, ipg_for(fpg), fpg, frag, contig) > b {
        fpg -= frag * if fpg > frag * 64 { 8 } else { 1 };
    }
    let ipg = ipg_for(fpg);
    let dblkno = iblkno + ipg / inopb * frag;
    if dblkno + frag > fpg {
        return Err(Errno::EINVAL);
    }
    let mut ncg = nfrags_all.div_ceil(fpg);
    if ncg == 0 {
        return Err(Errno::ENOSPC);
    }
    let mut nfrags = nfrags_all;
    // A last group too small for its metadata and one block is left out.
    if nfrags - (ncg - 1) * fpg < dblkno + frag {
        ncg -= 1;
        nfrags = ncg * fpg;
    }
    let cssize = roundup(ncg * CSUM_SIZE as u64, f);
    if ncg == 0 || dblkno + cssize / f + frag > fpg.min(nfrags) {
        return Err(Errno::ENOSPC);
    }
    if ncg * ipg > i32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let cgsize = roundup(cgsize_for(ufs2, old_cpg, ipg, fpg, frag, contig), f);
    let dsize = nfrags - sblkno - ncg * (dblkno - sblkno) - cssize / f;
    let now = system_clock();
    let nindir = b / psize;
    let maxsym = if ufs2 { 120 } else { 60 };

    let mut r = vec![0u8; SBLOCKSIZE];
    let i32s: &[(usize, i64)] = &[
        (8, sblkno as i64),
        (12, cblkno as i64),
        (16, iblkno as i64),
        (20, dblkno as i64),
        (44, ncg as i64),
        (48, b as i64),
        (52, f as i64),
        (56, frag as i64),
        (60, o.minfree.min(99) as i64),
        (72, !(b as i64 - 1)),
        (76, !(f as i64 - 1)),
        (80, b.trailing_zeros() as i64),
        (84, f.trailing_zeros() as i64),
        (88, contig as i64),
        (92, (b / 4) as i64),
        (96, frag.trailing_zeros() as i64),
        (100, (f / DEV_BSIZE).trailing_zeros() as i64),
        (
            104,
            roundup(SB_STRUCT_SIZE as u64, f).min(SBLOCKSIZE as u64) as i64,
        ),
        (116, nindir as i64),
        (120, inopb as i64),
        (144, now.sec as u32 as i64),
        (148, (now.nsec ^ 0x5a5a_1234) as i64),
        (156, cssize as i64),
        (160, cgsize as i64),
        (184, ipg as i64),
        (188, fpg as i64),
        (860, b as i64),
        (1196, 16384),
        (1200, 64),
        (1316, contig as i64),
        (1320, maxsym),
        (1324, 2),
        (
            1372,
            if ufs2 { FS_UFS2_MAGIC } else { FS_UFS1_MAGIC } as i64,
        ),
    ];
    for &(off, v) in i32s {
        put_i32(&mut r, off, v as i32);
    }
    if !ufs2 {
        let nspf = f / DEV_BSIZE;
        let spc = fpg * nspf;
        for &(off, v) in &[
            (28usize, -1i64),
            (36, nfrags as i64),
            (40, dsize as i64),
            (68, 60),
            (124, nspf as i64),
            (132, spc as i64),
            (136, 1),
            (152, (dblkno) as i64),
            (168, spc as i64),
            (172, spc as i64),
            (176, ncg as i64),
            (180, 1),
            (1356, 1),
            (1360, 1),
        ] {
            put_i32(&mut r, off, v as i32);
        }
    }
    r[209] = FS_ISCLEAN;
    r[211] = FS_FLAGS_UPDATED;
    put_i64(&mut r, 1000, sblockloc as i64);
    put_i64(&mut r, 1080, nfrags as i64);
    put_i64(&mut r, 1088, dsize as i64);
    put_i64(&mut r, 1096, dblkno as i64);
    let tree =
        (NDADDR as u128 + nindir as u128 + (nindir as u128).pow(2) + (nindir as u128).pow(3))
            * b as u128
            - 1;
    put_u64(&mut r, 1328, tree.min(i64::MAX as u128) as u64);
    put_i64(&mut r, 1336, b as i64 - 1);
    put_i64(&mut r, 1344, f as i64 - 1);
    let mut sb = Superblock::parse(r, sblockloc, disk.size()).map_err(|_| Errno::EINVAL)?;
    sb.time = now.sec;

    // Groups: metadata used, everything else free; group 0 also holds the summary area
    // and the root directory's fragment.
    let root_frag = sb.csaddr + sb.numfrags(sb.cssize as u64);
    let mut cgs = Vec::new();
    let mut total = Csum::default();
    for c in 0..sb.ncg {
        let mut cg = Cg::new_empty(&sb, c, now.sec);
        let base = sb.cgbase(c);
        let (lo, hi) = if c == 0 {
            (0, root_frag + 1)
        } else {
            (sb.cgsblock(c) - base, sb.cgdmin(c) - base)
        };
        for fr in 0..cg.ndblk {
            cg.set_frag_free(fr, fr < lo || fr >= hi);
        }
        let mut used = 0;
        if c == 0 {
            for i in 0..=ROOTINO {
                cg.set_inode_used(i, true);
            }
            used = ROOTINO as i64 + 1;
        }
        let (nb, nf) = cg.count_free(&sb);
        let cs = Csum {
            ndir: (c == 0) as i64,
            nbfree: nb,
            nifree: sb.ipg as i64 - used,
            nffree: nf,
        };
        cg.set_cs(&cs);
        cg.rebuild(&sb);
        total.add(&cs);
        cgs.push(cg);
    }
    sb.cstotal = total;
    sb.encode();

    // Stale superblocks elsewhere would be found first: clear every search location.
    let zero = vec![0u8; SBLOCKSIZE];
    for loc in SBLOCK_SEARCH {
        if loc != sblockloc && loc + SBLOCKSIZE as u64 <= disk.size() {
            disk.write(loc, &zero).await?;
        }
    }
    let zblock = vec![0u8; b as usize];
    for (c, cg) in cgs.iter().enumerate() {
        let c = c as u32;
        // Inode blocks: UFS1 all of them; UFS2 only those below cg_initediblk.
        let n = if ufs2 { cg.initediblk() as u64 } else { ipg };
        for blk in 0..n.div_ceil(inopb) {
            disk.write(sb.frag_offset(sb.cgimin(c) + blk * frag), &zblock)
                .await?;
        }
        disk.write(sb.frag_offset(sb.cgtod(c)), &cg.raw).await?;
        disk.write(
            sb.frag_offset(sb.cgsblock(c)),
            &sb.raw[..sb.sbsize as usize],
        )
        .await?;
    }
    let mut area = vec![0u8; sb.cssize as usize];
    for (c, cg) in cgs.iter().enumerate() {
        cg.cs().encode32(&mut area[c * CSUM_SIZE..]);
    }
    for (i, chunk) in area.chunks(b as usize).enumerate() {
        disk.write(sb.frag_offset(sb.csaddr) + i as u64 * b, chunk)
            .await?;
    }
    // The root directory.
    let mut blk = vec![0u8; f as usize];
    dir::dot_chunk(&mut blk[..dir::DIRBLKSIZ], ROOTINO, ROOTINO, true);
    disk.write(sb.frag_offset(root_frag), &blk).await?;
    let mut ip = Dinode::zeroed(ufs2);
    ip.mode = IFDIR | 0o755;
    ip.nlink = 2;
    ip.size = dir::DIRBLKSIZ as u64;
    ip.blocks = f / DEV_BSIZE;
    ip.db[0] = root_frag;
    ip.atime = now;
    ip.mtime = now;
    ip.ctime = now;
    if ufs2 {
        ip.birthtime = now;
    }
    ip.gen = (now.nsec | 1) ^ now.sec as u32;
    disk.write(sb.inode_offset(ROOTINO), ip.encode()).await?;
    disk.write(sblockloc, &sb.raw[..sb.sbsize as usize]).await?;
    // The file system's last fragment exists (NetBSD checks it at a read-write mount).
    let last = sb.frag_offset(sb.size - 1);
    let mut tail = vec![0u8; f as usize];
    disk.read(last, &mut tail).await?;
    disk.write(last, &tail).await?;
    disk.flush().await?;
    Ok(Layout { sb })
}
