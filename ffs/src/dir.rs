//! Directory blocks: entries in `DIRBLKSIZ` (512-byte) chunks, parsed with strict checks.
//!
//! An entry is `d_ino` (u32), `d_reclen` (u16), `d_type` (u8), `d_namlen` (u8) and the name,
//! NUL-terminated and padded to 4 bytes (`DIRSIZ`). Entries tile each chunk exactly; free
//! space is the slack of an entry's `d_reclen` past its `DIRSIZ`, or a whole entry with
//! `d_ino` 0 at the start of a chunk. File systems without `d_type` (`fs_maxsymlinklen` 0,
//! the 4.2BSD format) keep a 16-bit `d_namlen` in the same place.

use crate::le::*;
use crate::{Errno, Result};

/// Bytes of a directory chunk; entries never cross one.
pub const DIRBLKSIZ: usize = 512;
/// Longest name.
pub const MAXNAMLEN: usize = 255;

/// `DIRSIZ`: bytes an entry with a name of `namlen` bytes needs.
pub fn dirsiz(namlen: usize) -> usize {
    (8 + namlen + 1 + 3) & !3
}

/// One entry of a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Offset within the chunk.
    pub off: usize,
    /// Inode number (0: unused).
    pub ino: u32,
    /// Record length.
    pub reclen: usize,
    /// `d_type` (0 on old-format file systems).
    pub dtype: u8,
    /// The name.
    pub name: Vec<u8>,
}

/// Parses the entries of one chunk; a malformed chunk is `EIO`.
pub fn parse_chunk(chunk: &[u8], dtype: bool) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk_chunk(chunk, dtype, |off, ino, reclen, t, name| {
        out.push(Entry {
            off,
            ino,
            reclen,
            dtype: t,
            name: name.to_vec(),
        })
    })?;
    Ok(out)
}

/// The entries of one chunk handed to `f` (offset, inode, record length, type, name; an
/// unused entry's name is what it kept, or empty) without copying, once the whole chunk is checked as
/// [`parse_chunk`] checks it: a malformed chunk is `EIO` and `f` sees none of it.
pub fn walk_chunk(
    chunk: &[u8],
    dtype: bool,
    mut f: impl FnMut(usize, u32, usize, u8, &[u8]),
) -> Result<()> {
    debug_assert_eq!(chunk.len(), DIRBLKSIZ);
    let mut off = 0;
    while off < DIRBLKSIZ {
        let ino = u32_at(chunk, off);
        let reclen = u16_at(chunk, off + 4) as usize;
        let namlen = if dtype {
            chunk[off + 7] as usize
        } else {
            u16_at(chunk, off + 6) as usize
        };
        if reclen % 4 != 0 || reclen < 8 || reclen > DIRBLKSIZ - off {
            return Err(Errno::EIO);
        }
        if ino != 0 && (namlen == 0 || namlen > MAXNAMLEN || dirsiz(namlen) > reclen) {
            return Err(Errno::EIO);
        }
        if ino != 0
            && chunk[off + 8..off + 8 + namlen]
                .iter()
                .any(|&c| c == 0 || c == b'/')
        {
            return Err(Errno::EIO);
        }
        off += reclen;
    }
    let mut off = 0;
    while off < DIRBLKSIZ {
        let ino = u32_at(chunk, off);
        let reclen = u16_at(chunk, off + 4) as usize;
        let (t, namlen) = if dtype {
            (chunk[off + 6], chunk[off + 7] as usize)
        } else {
            (0, u16_at(chunk, off + 6) as usize)
        };
        let name = match ino {
            // A removed entry that starts its chunk keeps its name (ufs_dirremove clears
            // only the inode number); getdents shows it as NetBSD's ufs_readdir does.
            0 if namlen <= MAXNAMLEN && dirsiz(namlen) <= reclen => {
                &chunk[off + 8..off + 8 + namlen]
            }
            0 => &[][..],
            _ => &chunk[off + 8..off + 8 + namlen],
        };
        f(off, ino, reclen, t, name);
        off += reclen;
    }
    Ok(())
}

/// Writes an entry header and name at `off` with `reclen`.
pub fn put_entry(
    chunk: &mut [u8],
    off: usize,
    ino: u32,
    reclen: usize,
    t: u8,
    name: &[u8],
    dtype: bool,
) {
    put_u32(chunk, off, ino);
    put_u16(chunk, off + 4, reclen as u16);
    if dtype {
        chunk[off + 6] = t;
        chunk[off + 7] = name.len() as u8;
    } else {
        put_u16(chunk, off + 6, name.len() as u16);
    }
    let end = off + dirsiz(name.len());
    chunk[off + 8..off + 8 + name.len()].copy_from_slice(name);
    chunk[off + 8 + name.len()..end].fill(0);
}

/// An empty chunk: one unused entry covering it.
pub fn empty_chunk(chunk: &mut [u8]) {
    chunk.fill(0);
    put_u16(chunk, 4, DIRBLKSIZ as u16);
}

/// The first chunk of a new directory: `.` and `..`.
pub fn dot_chunk(chunk: &mut [u8], me: u32, parent: u32, dtype: bool) {
    chunk.fill(0);
    let dt = crate::inode::dtype_of(crate::inode::IFDIR);
    put_entry(chunk, 0, me, 12, dt, b".", dtype);
    put_entry(chunk, 12, parent, DIRBLKSIZ - 12, dt, b"..", dtype);
}

/// Inserts `name` into the chunk if it fits (compacting the chunk when only the sum of its
/// free space is large enough). Returns whether it was inserted.
pub fn insert(chunk: &mut [u8], ino: u32, t: u8, name: &[u8], dtype: bool) -> Result<bool> {
    let need = dirsiz(name.len());
    let ents = parse_chunk(chunk, dtype)?;
    // An unused first entry, or the slack of one entry, is enough.
    for e in &ents {
        let used = if e.ino == 0 { 0 } else { dirsiz(e.name.len()) };
        if e.reclen - used >= need {
            if e.ino == 0 {
                put_entry(chunk, e.off, ino, e.reclen, t, name, dtype);
            } else {
                put_u16(chunk, e.off + 4, used as u16);
                put_entry(chunk, e.off + used, ino, e.reclen - used, t, name, dtype);
            }
            return Ok(true);
        }
    }
    let live: usize = ents
        .iter()
        .filter(|e| e.ino != 0)
        .map(|e| dirsiz(e.name.len()))
        .sum();
    if DIRBLKSIZ - live < need {
        return Ok(false);
    }
    // Compact: rewrite the live entries packed from the start, then the new one last.
    let mut fresh = [0u8; DIRBLKSIZ];
    let mut off = 0;
    for e in ents.iter().filter(|e| e.ino != 0) {
        put_entry(
            &mut fresh,
            off,
            e.ino,
            dirsiz(e.name.len()),
            e.dtype,
            &e.name,
            dtype,
        );
        off += dirsiz(e.name.len());
    }
    put_entry(&mut fresh, off, ino, DIRBLKSIZ - off, t, name, dtype);
    chunk.copy_from_slice(&fresh);
    Ok(true)
}

/// Whether [`insert`] would find room for a name of `namlen` bytes in the chunk (without
/// changing it).
pub fn fits(chunk: &[u8], namlen: usize, dtype: bool) -> Result<bool> {
    let need = dirsiz(namlen);
    let (mut slack, mut live) = (false, 0);
    walk_chunk(chunk, dtype, |_, ino, reclen, _, name| {
        let used = if ino == 0 { 0 } else { dirsiz(name.len()) };
        slack |= reclen - used >= need;
        live += used;
    })?;
    Ok(slack || DIRBLKSIZ - live >= need)
}

/// Removes the entry at `off`: merged into its predecessor, or marked unused when first.
pub fn remove(chunk: &mut [u8], off: usize, dtype: bool) -> Result<()> {
    let ents = parse_chunk(chunk, dtype)?;
    let i = ents.iter().position(|e| e.off == off).ok_or(Errno::EIO)?;
    if i == 0 {
        put_u32(chunk, off, 0);
    } else {
        let prev = &ents[i - 1];
        put_u16(chunk, prev.off + 4, (prev.reclen + ents[i].reclen) as u16);
    }
    Ok(())
}

/// Points the entry at `off` to another inode (rename over an existing name, `..` fix-up).
pub fn set_ino(chunk: &mut [u8], off: usize, ino: u32, t: u8, dtype: bool) {
    put_u32(chunk, off, ino);
    if dtype {
        chunk[off + 6] = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(chunk: &[u8]) -> Vec<Vec<u8>> {
        parse_chunk(chunk, true)
            .unwrap()
            .into_iter()
            .filter(|e| e.ino != 0)
            .map(|e| e.name)
            .collect()
    }

    #[test]
    fn insert_remove_compact() {
        let mut c = [0u8; DIRBLKSIZ];
        dot_chunk(&mut c, 5, 2, true);
        let mut n = 0;
        while insert(&mut c, 100 + n, 8, format!("name-{n:03}").as_bytes(), true).unwrap() {
            n += 1;
        }
        assert_eq!(n, (512 - 24) / 20);
        // Remove every other entry, then a long name must fit only by compaction.
        let ents = parse_chunk(&c, true).unwrap();
        for e in ents.iter().skip(2).step_by(2) {
            remove(&mut c, e.off, true).unwrap();
        }
        let long = [b'x'; 200];
        assert!(insert(&mut c, 999, 8, &long, true).unwrap());
        let ns = names(&c);
        assert_eq!(ns[0], b".");
        assert!(ns.contains(&long.to_vec()));
        assert_eq!(ns.len(), 2 + n.div_ceil(2) as usize + 1);
    }

    #[test]
    fn bad_reclen_is_eio() {
        let mut c = [0u8; DIRBLKSIZ];
        dot_chunk(&mut c, 5, 2, true);
        put_u16(&mut c, 4, 6);
        assert_eq!(parse_chunk(&c, true), Err(Errno::EIO));
        put_u16(&mut c, 4, 600);
        assert_eq!(parse_chunk(&c, true), Err(Errno::EIO));
        dot_chunk(&mut c, 5, 2, true);
        c[7] = 40; // namlen larger than reclen allows
        assert_eq!(parse_chunk(&c, true), Err(Errno::EIO));
    }

    #[test]
    fn remove_first_marks_unused() {
        let mut c = [0u8; DIRBLKSIZ];
        empty_chunk(&mut c);
        assert!(insert(&mut c, 7, 8, b"a", true).unwrap());
        assert!(insert(&mut c, 8, 8, b"b", true).unwrap());
        remove(&mut c, 0, true).unwrap();
        assert_eq!(names(&c), vec![b"b".to_vec()]);
        assert!(insert(&mut c, 9, 8, b"c", true).unwrap());
        assert_eq!(names(&c), vec![b"c".to_vec(), b"b".to_vec()]);
    }
}
