//! The classic pcap file format (what libpcap's `pcap_dump` writes and tcpdump and
//! Wireshark read): a 24-byte file header, then per packet a 16-byte record header and the
//! bytes. Written in the host's byte order with the microsecond magic, Ethernet link type
//! and a snap length of 1518, as shmif_dumpbus's `pcap_open_dead(DLT_EN10MB, 1518)`.

use std::io::Write;

use crate::Packet;

/// `DLT_EN10MB`.
const LINKTYPE_ETHERNET: u32 = 1;
/// The snap length shmif_dumpbus opens its dump with.
const SNAPLEN: u32 = 1518;

/// Writes `packets` as a pcap file.
pub fn write(out: &mut impl Write, packets: &[Packet]) -> std::io::Result<()> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
    h.extend_from_slice(&2u16.to_ne_bytes());
    h.extend_from_slice(&4u16.to_ne_bytes());
    h.extend_from_slice(&0i32.to_ne_bytes());
    h.extend_from_slice(&0u32.to_ne_bytes());
    h.extend_from_slice(&SNAPLEN.to_ne_bytes());
    h.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
    out.write_all(&h)?;
    for p in packets {
        let len = p.frame.len() as u32;
        let mut r = Vec::with_capacity(16 + p.frame.len());
        r.extend_from_slice(&p.sec.to_ne_bytes());
        r.extend_from_slice(&p.usec.to_ne_bytes());
        r.extend_from_slice(&len.to_ne_bytes());
        r.extend_from_slice(&len.to_ne_bytes());
        r.extend_from_slice(&p.frame);
        out.write_all(&r)?;
    }
    out.flush()
}
