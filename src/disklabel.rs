//! Finding a NetBSD disklabel in a host file for `-d …,disklabel=<letter>` (netbsd-abi.md
//! §8.2 step 2): the first 64 KiB are scanned at every 4-byte boundary for a label with both
//! magic numbers, at most 22 partitions and a zero XOR checksum, in either byte order.
//!
//! Differences from the reference (`rump_allserver.c`): offsets and sizes are computed in
//! 64 bits (the reference multiplies in 32 bits and wraps for partitions past 4 GiB) and a
//! byte-swapped label is swapped before the multiplication, not after.

/// Bytes of the host file searched.
pub const SCAN_BYTES: usize = 64 * 1024;
/// `DISKMAGIC`, at the start and at byte 132 of the label.
const DISKMAGIC: u32 = 0x8256_4557;
/// `MAXPARTITIONS` of amd64.
const MAXPARTITIONS: usize = 22;
/// Offset of `d_partitions`; each entry is 16 bytes (`p_size`, `p_offset`, …).
const PARTITIONS_OFF: usize = 148;
/// `DEV_BSIZE`: label sizes and offsets count 512-byte sectors.
const DEV_BSIZE: u64 = 512;

/// Why no window came out of the label; the messages are the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelError {
    /// No valid label in the first 64 KiB.
    NotFound,
    /// The letter is past `d_npartitions`.
    NoPartition,
}

impl std::fmt::Display for LabelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LabelError::NotFound => "disklabel not found",
            LabelError::NoPartition => "partition not available",
        })
    }
}

/// The byte window `(offset, size)` of partition `part` (`'a'`…) of the first label found
/// in `head` (the start of the host file).
pub fn partition(head: &[u8], part: char) -> Result<(u64, u64), LabelError> {
    let idx = (part as u32).wrapping_sub('a' as u32) as usize;
    let head = &head[..head.len().min(SCAN_BYTES)];
    for at in (0..head.len()).step_by(4) {
        for swapped in [false, true] {
            let Some(label) = Label::at(&head[at..], swapped) else {
                continue;
            };
            if idx >= label.npartitions {
                return Err(LabelError::NoPartition);
            }
            let p = PARTITIONS_OFF + 16 * idx;
            let size = u64::from(label.u32(p)) * DEV_BSIZE;
            let offset = u64::from(label.u32(p + 4)) * DEV_BSIZE;
            return Ok((offset, size));
        }
    }
    Err(LabelError::NotFound)
}

struct Label<'a> {
    b: &'a [u8],
    swapped: bool,
    npartitions: usize,
}

impl<'a> Label<'a> {
    fn at(b: &'a [u8], swapped: bool) -> Option<Label<'a>> {
        if b.len() < PARTITIONS_OFF {
            return None;
        }
        let mut l = Label {
            b,
            swapped,
            npartitions: 0,
        };
        if l.u32(0) != DISKMAGIC || l.u32(132) != DISKMAGIC {
            return None;
        }
        let np = usize::from(l.u16(138));
        let end = PARTITIONS_OFF + 16 * np;
        if np > MAXPARTITIONS || end > b.len() {
            return None;
        }
        let sum = b[..end]
            .chunks_exact(2)
            .fold(0u16, |x, w| x ^ u16::from_le_bytes([w[0], w[1]]));
        if sum != 0 {
            return None;
        }
        l.npartitions = np;
        Some(l)
    }

    fn u32(&self, off: usize) -> u32 {
        let w = [
            self.b[off],
            self.b[off + 1],
            self.b[off + 2],
            self.b[off + 3],
        ];
        match self.swapped {
            false => u32::from_le_bytes(w),
            true => u32::from_be_bytes(w),
        }
    }

    fn u16(&self, off: usize) -> u16 {
        let w = [self.b[off], self.b[off + 1]];
        match self.swapped {
            false => u16::from_le_bytes(w),
            true => u16::from_be_bytes(w),
        }
    }
}

/// Builds a label image (tests, and tools that prepare disk images): `parts` are
/// `(offset_bytes, size_bytes)`, multiples of 512, in the given byte order.
pub fn build(parts: &[(u64, u64)], big_endian: bool) -> Vec<u8> {
    assert!(parts.len() <= MAXPARTITIONS);
    let end = PARTITIONS_OFF + 16 * parts.len();
    let mut d = vec![0u8; end.max(PARTITIONS_OFF + 16)];
    let put32 = |d: &mut [u8], off: usize, v: u32| {
        let b = match big_endian {
            false => v.to_le_bytes(),
            true => v.to_be_bytes(),
        };
        d[off..off + 4].copy_from_slice(&b);
    };
    put32(&mut d, 0, DISKMAGIC);
    put32(&mut d, 40, DEV_BSIZE as u32);
    put32(&mut d, 132, DISKMAGIC);
    let np = (parts.len() as u16).to_le_bytes();
    let np = if big_endian { [np[1], np[0]] } else { np };
    d[138..140].copy_from_slice(&np);
    for (i, &(off, size)) in parts.iter().enumerate() {
        let p = PARTITIONS_OFF + 16 * i;
        put32(&mut d, p, (size / DEV_BSIZE) as u32);
        put32(&mut d, p + 4, (off / DEV_BSIZE) as u32);
    }
    let sum = d[..end]
        .chunks_exact(2)
        .fold(0u16, |x, w| x ^ u16::from_le_bytes([w[0], w[1]]));
    let cur = u16::from_le_bytes([d[136], d[137]]);
    d[136..138].copy_from_slice(&(cur ^ sum).to_le_bytes());
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_label_at_any_aligned_offset_in_either_byte_order() {
        for (at, be) in [(0usize, false), (512, false), (4100, true), (65_000, false)] {
            let mut img = vec![0u8; 70_000];
            let label = build(&[(8192, 1 << 20), (2 << 20, 6 << 30)], be);
            img[at..at + label.len()].copy_from_slice(&label);
            assert_eq!(partition(&img, 'a'), Ok((8192, 1 << 20)), "at {at}");
            assert_eq!(partition(&img, 'b'), Ok((2 << 20, 6 << 30)), "64-bit sizes");
            assert_eq!(partition(&img, 'c'), Err(LabelError::NoPartition));
        }
    }

    #[test]
    fn bad_checksum_magic_or_position_is_not_a_label() {
        let label = build(&[(0, 4096)], false);
        let mut img = vec![0u8; 4096];
        img[..label.len()].copy_from_slice(&label);
        img[150] ^= 1;
        assert_eq!(partition(&img, 'a'), Err(LabelError::NotFound));
        let mut img = vec![0u8; 4096];
        img[2..2 + label.len()].copy_from_slice(&label);
        assert_eq!(partition(&img, 'a'), Err(LabelError::NotFound), "unaligned");
        let mut img = vec![0u8; 70_000];
        img[66_000..66_000 + label.len()].copy_from_slice(&label);
        assert_eq!(
            partition(&img, 'a'),
            Err(LabelError::NotFound),
            "past 64 KiB"
        );
        assert_eq!(partition(&[], 'a'), Err(LabelError::NotFound));
        // A truncated label at the very end of the scanned area never reads out of bounds.
        assert_eq!(partition(&label[..100], 'a'), Err(LabelError::NotFound));
    }
}
