//! The ring: sending (`shmif_start`), receiving (`shmif_rcv`, `stillvalid_p`), and the
//! whole-bus walk of `shmif_dumpbus`, over the offsets and lengths of `shmif_busops.c`,
//! each checked before use.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::mem::Mem;
use crate::{
    BusError, BUS_SIZE, DATA_SIZE, FRAME_MAX, FRAME_MIN, HEADER_SIZE, MAGIC, PKTHDR_SIZE, VERSION,
};

/// How long a sender or receiver waits for the bus lock before giving up.
const LOCK_DEADLINE: Duration = Duration::from_secs(5);
/// More packet headers than the ring can hold: a walk that needs more is going round a
/// corrupt ring.
const WALK_MAX: u32 = 2 * (DATA_SIZE / PKTHDR_SIZE) + 2;

/// `shmif_advance`.
fn advance(off: u32, delta: u32) -> u32 {
    let n = off + delta;
    if n >= DATA_SIZE {
        n - DATA_SIZE
    } else {
        n
    }
}

/// `shmif_busread`: `out.len()` bytes from `off`, wrapping; `(next offset, whether the
/// read reached the ring's end)`.
fn busread(m: &Mem, out: &mut [u8], off: u32) -> Result<(u32, bool), BusError> {
    if off > DATA_SIZE || out.len() >= DATA_SIZE as usize / 2 {
        return Err(BusError::Corrupt("read offset past the ring"));
    }
    let chunk = out.len().min((DATA_SIZE - off) as usize);
    m.read_data(off, &mut out[..chunk]);
    let wrap = off as usize + chunk == DATA_SIZE as usize;
    let rest = out.len() - chunk;
    if rest == 0 {
        return Ok(((off + chunk as u32) % DATA_SIZE, wrap));
    }
    m.read_data(0, &mut out[chunk..]);
    Ok((rest as u32, wrap))
}

/// A packet header as it lies in the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PktHdr {
    len: u32,
    sec: u32,
    usec: u32,
    sender: u64,
}

impl PktHdr {
    fn bytes(&self) -> [u8; PKTHDR_SIZE as usize] {
        let mut b = [0u8; PKTHDR_SIZE as usize];
        b[0..4].copy_from_slice(&self.len.to_ne_bytes());
        b[4..8].copy_from_slice(&self.sec.to_ne_bytes());
        b[8..12].copy_from_slice(&self.usec.to_ne_bytes());
        b[16..24].copy_from_slice(&self.sender.to_ne_bytes());
        b
    }

    fn parse(b: &[u8], swap: bool) -> PktHdr {
        let u32_at = |o: usize| {
            let v = u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
            if swap {
                v.swap_bytes()
            } else {
                v
            }
        };
        let sender = if b.len() >= 24 {
            let v = u64::from_ne_bytes(b[16..24].try_into().expect("8 bytes"));
            if swap {
                v.swap_bytes()
            } else {
                v
            }
        } else {
            0
        };
        PktHdr {
            len: u32_at(0),
            sec: u32_at(4),
            usec: u32_at(8),
            sender,
        }
    }
}

fn read_hdr(m: &Mem, off: u32) -> Result<(PktHdr, u32, bool), BusError> {
    let mut b = [0u8; PKTHDR_SIZE as usize];
    let (next, wrap) = busread(m, &mut b, off)?;
    Ok((PktHdr::parse(&b, false), next, wrap))
}

/// `shmif_nextpktoff`: the offset after the packet at `off`.
fn nextpktoff(m: &Mem, off: u32) -> Result<u32, BusError> {
    let (h, _, _) = read_hdr(m, off)?;
    if h.len as usize > FRAME_MAX {
        return Err(BusError::Corrupt("packet length beyond an Ethernet frame"));
    }
    Ok(advance(off, PKTHDR_SIZE + h.len))
}

/// `shmif_advancefirst`: moves `shm_first` past every packet the write of `len` bytes at
/// `off` will overwrite.
fn advancefirst(m: &Mem, off: u32, len: u32) -> Result<(), BusError> {
    let mut first = m.get32(16);
    let mut steps = 0;
    while off <= first + PKTHDR_SIZE && off + len > first {
        first = nextpktoff(m, first)?;
        steps += 1;
        if steps > WALK_MAX {
            return Err(BusError::Corrupt("first packet never passes the write"));
        }
    }
    m.put32(16, first);
    Ok(())
}

/// `shmif_buswrite`: writes `data` at `off`, wrapping; `(next offset, wrapped)`.
fn buswrite(m: &Mem, off: u32, data: &[u8], wrap: &mut bool) -> Result<u32, BusError> {
    if off > DATA_SIZE || data.len() >= DATA_SIZE as usize / 2 {
        return Err(BusError::Corrupt("write offset past the ring"));
    }
    let chunk = data.len().min((DATA_SIZE - off) as usize);
    let rest = data.len() - chunk;
    let filled = off as usize + chunk == DATA_SIZE as usize;
    advancefirst(m, off, chunk as u32 + u32::from(filled))?;
    m.write_data(off, &data[..chunk]);
    if filled {
        *wrap = true;
    }
    if rest == 0 {
        return Ok((off + chunk as u32) % DATA_SIZE);
    }
    advancefirst(m, 0, rest as u32)?;
    m.write_data(0, &data[chunk..]);
    Ok(rest as u32)
}

/// The bus header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub magic: u32,
    pub version: u32,
    pub generation: u64,
    pub first: u32,
    pub last: u32,
    pub lock: u32,
    /// Whether the bus was written by a host of the other byte order.
    pub swapped: bool,
}

/// One packet of the whole-bus walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Ring offset of the frame (after its header), as shmif_dumpbus prints it.
    pub offset: u32,
    pub sec: u32,
    pub usec: u32,
    /// The sending interface's id (0 on a version 2 bus).
    pub sender: u64,
    pub frame: Vec<u8>,
}

/// What one receive got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes of frame copied to the buffer.
    pub len: usize,
    pub sec: u32,
    pub usec: u32,
    /// The sending interface's id: an interface drops its own packets.
    pub sender: u64,
}

/// A bus file, mapped.
pub struct Bus {
    file: File,
    path: PathBuf,
    mem: Mem,
    lock_deadline: Duration,
}

impl Bus {
    /// Opens (creating) the bus file at `path`, sizes it to 1 MiB as NetBSD's
    /// `rumpcomp_shmif_mmap` does, maps it, and initialises it if no interface has
    /// (`allocif`). Returns the bus and a reader positioned as a new interface's.
    pub fn open(path: &Path) -> Result<(Bus, Reader), BusError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        file.set_len(BUS_SIZE as u64)?;
        let mem = Mem::map(&file, true)?;
        mem.prefault();
        let bus = Bus {
            file,
            path: path.to_path_buf(),
            mem,
            lock_deadline: LOCK_DEADLINE,
        };
        let reader = {
            let _l = bus.mem.lock(bus.lock_deadline)?;
            if bus.mem.get32(0) == 0 {
                bus.mem.put32(0, MAGIC);
                bus.mem.put32(16, DATA_SIZE);
            }
            bus.check()?;
            Reader {
                next: bus.mem.get32(20),
                generation: bus.mem.get64(8),
            }
        };
        Ok((bus, reader))
    }

    /// Maps an existing bus file read-only (for dumping: no lock is taken, as NetBSD's
    /// shmif_dumpbus).
    pub fn open_readonly(path: &Path) -> Result<Bus, BusError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < BUS_SIZE as u64 {
            return Err(BusError::NotBus(format!(
                "{} bytes, a bus is {BUS_SIZE}",
                len
            )));
        }
        let mem = Mem::map(&file, false)?;
        Ok(Bus {
            file,
            path: path.to_path_buf(),
            mem,
            lock_deadline: LOCK_DEADLINE,
        })
    }

    /// How long a send or receive waits for the bus lock (default 5 s) before
    /// [`BusError::LockTimeout`].
    pub fn set_lock_deadline(&mut self, d: Duration) {
        self.lock_deadline = d;
    }

    /// The bus file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header as it is now (read without the lock).
    pub fn header(&self) -> Header {
        let m = &self.mem;
        let swapped = m.get32(0) != MAGIC && m.get32(0) == MAGIC.swap_bytes();
        let s32 = |v: u32| if swapped { v.swap_bytes() } else { v };
        let s64 = |v: u64| if swapped { v.swap_bytes() } else { v };
        Header {
            magic: s32(m.get32(0)),
            version: s32(m.get32(4)),
            generation: s64(m.get64(8)),
            first: s32(m.get32(16)),
            last: s32(m.get32(20)),
            lock: s32(m.get32(24)),
            swapped,
        }
    }

    /// Magic and version of a bus this host may write.
    fn check(&self) -> Result<(), BusError> {
        let (magic, version) = (self.mem.get32(0), self.mem.get32(4));
        if magic != MAGIC {
            return Err(BusError::NotBus(format!("magic {magic:#x}")));
        }
        // The version word is written by the first wake-up (NetBSD's allocif sets only the
        // magic), so a bus nobody has sent on yet says 0.
        if version != VERSION && version != 0 {
            return Err(BusError::NotBus(format!(
                "bus version {version}, this program {VERSION}"
            )));
        }
        Ok(())
    }

    /// Sends one Ethernet frame from interface `sender` at uptime `sec`.`usec`
    /// (`shmif_start`), then wakes the bus's readers.
    pub fn send(&self, frame: &[u8], sender: u64, sec: u32, usec: u32) -> Result<(), BusError> {
        if !(FRAME_MIN..=FRAME_MAX).contains(&frame.len()) {
            return Err(BusError::FrameSize(frame.len()));
        }
        let hdr = PktHdr {
            len: frame.len() as u32,
            sec,
            usec,
            sender,
        };
        {
            let m = &self.mem;
            let _l = m.lock(self.lock_deadline)?;
            self.check()?;
            let last = m.get32(20);
            if last >= DATA_SIZE {
                return Err(BusError::Corrupt("last packet offset past the ring"));
            }
            let last = nextpktoff(m, last)?;
            m.put32(20, last);
            let mut wrap = false;
            let off = buswrite(m, last, &hdr.bytes(), &mut wrap)?;
            buswrite(m, off, frame, &mut wrap)?;
            if wrap {
                m.put64(8, m.get64(8).wrapping_add(1));
            }
        }
        self.wakeup()
    }

    /// NetBSD's `dowakeup`: rewrites the version word with pwrite(2), which modifies the
    /// file as a store through the mapping does not, so readers' watches fire.
    pub fn wakeup(&self) -> Result<(), BusError> {
        self.file.write_all_at(&VERSION.to_ne_bytes(), 4)?;
        Ok(())
    }

    /// Every packet from the oldest to the newest, as NetBSD's shmif_dumpbus walks them
    /// (empty headers skipped), without the lock. Version 2 buses (12-byte headers) and
    /// buses of the other byte order are read too.
    pub fn packets(&self) -> Result<Vec<Packet>, BusError> {
        let h = self.header();
        if h.magic != MAGIC {
            return Err(BusError::NotBus(format!("magic {:#x}", h.magic)));
        }
        let hdr_len = match h.version {
            3 => PKTHDR_SIZE as usize,
            2 => 12,
            v => {
                return Err(BusError::NotBus(format!(
                    "bus version {v}, program {VERSION}"
                )))
            }
        };
        let m = &self.mem;
        let mut out = Vec::new();
        let last = h.last;
        let mut cur = if h.first == DATA_SIZE { 0 } else { h.first };
        if cur > DATA_SIZE || last >= DATA_SIZE {
            return Err(BusError::Corrupt("offsets past the ring"));
        }
        let mut bonus = last < cur;
        let mut steps = 0;
        while cur <= last || bonus {
            steps += 1;
            if steps > WALK_MAX {
                return Err(BusError::Corrupt("the walk goes round the ring"));
            }
            let mut hb = [0u8; PKTHDR_SIZE as usize];
            let (next, wrap) = busread(m, &mut hb[..hdr_len], cur)?;
            cur = next;
            if wrap {
                bonus = false;
            }
            let ph = PktHdr::parse(&hb[..hdr_len], h.swapped);
            if ph.len == 0 {
                continue;
            }
            if ph.len as usize > 64 * 1024 {
                return Err(BusError::Corrupt("packet longer than 64 KiB"));
            }
            let mut frame = vec![0u8; ph.len as usize];
            let offset = cur;
            let (next, wrap) = busread(m, &mut frame, cur)?;
            cur = next;
            if wrap {
                bonus = false;
            }
            out.push(Packet {
                offset,
                sec: ph.sec,
                usec: ph.usec,
                sender: ph.sender,
                frame,
            });
        }
        Ok(out)
    }

    #[cfg(test)]
    pub(crate) fn mem(&self) -> &Mem {
        &self.mem
    }
}

/// One interface's place on the bus (`sc_nextpacket`, `sc_devgen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reader {
    next: u32,
    generation: u64,
}

impl Reader {
    /// `stillvalid_p`: whether the writers have not lapped this reader.
    fn still_valid(
        &self,
        m: &Mem,
        generation: u64,
        first: u32,
        last: u32,
    ) -> Result<bool, BusError> {
        let gendiff = generation.wrapping_sub(self.generation);
        let mut devoff = u64::from(self.next);
        let mut lastoff = u64::from(nextpktoff(m, last)?);
        if gendiff > 1 {
            return Ok(false);
        }
        if u64::from(first) >= lastoff {
            lastoff += u64::from(DATA_SIZE);
            if gendiff == 0 {
                devoff += u64::from(DATA_SIZE);
            }
        } else if gendiff != 0 {
            return Ok(false);
        }
        Ok(devoff >= u64::from(first) && devoff <= lastoff)
    }

    /// Receives the next frame into `buf` (`shmif_rcv`'s loop body): `Ok(None)` when
    /// nothing new is on the bus (then wait on a [`crate::Watch`]); frames shorter than an
    /// Ethernet header are skipped. On a corrupt ring the reader moves to the newest
    /// packet and reports the corruption.
    pub fn recv(
        &mut self,
        bus: &Bus,
        buf: &mut [u8; FRAME_MAX],
    ) -> Result<Option<Received>, BusError> {
        for _ in 0..WALK_MAX {
            match self.recv_one(bus, buf)? {
                Some(r) if r.len < FRAME_MIN => continue,
                r => return Ok(r),
            }
        }
        Err(BusError::Corrupt("no frame among the ring's packets"))
    }

    fn recv_one(
        &mut self,
        bus: &Bus,
        buf: &mut [u8; FRAME_MAX],
    ) -> Result<Option<Received>, BusError> {
        let m = &bus.mem;
        let lock = m.lock(bus.lock_deadline)?;
        bus.check()?;
        let (generation, first, last) = (m.get64(8), m.get32(16), m.get32(20));
        let r = (|| {
            if last >= DATA_SIZE || (first > DATA_SIZE) {
                return Err(BusError::Corrupt("offsets past the ring"));
            }
            if self.generation == generation && nextpktoff(m, last)? == self.next {
                return Ok(None);
            }
            let at = if generation >= self.generation
                && first != last
                && self.still_valid(m, generation, first, last)?
            {
                self.next
            } else {
                // Lapped (or a generation that went backwards): start over at the oldest.
                self.generation = if first > last {
                    generation.wrapping_sub(1)
                } else {
                    generation
                };
                if first == DATA_SIZE {
                    0
                } else {
                    first
                }
            };
            let (h, off, mut wrap) = read_hdr(m, at)?;
            if h.len as usize > FRAME_MAX {
                return Err(BusError::Corrupt("packet length beyond an Ethernet frame"));
            }
            let (next, w) = busread(m, &mut buf[..h.len as usize], off)?;
            wrap |= w;
            self.next = next;
            Ok(Some((h, wrap)))
        })();
        drop(lock);
        match r {
            Ok(Some((h, wrap))) => {
                if wrap {
                    self.generation = self.generation.wrapping_add(1);
                }
                Ok(Some(Received {
                    len: h.len as usize,
                    sec: h.sec,
                    usec: h.usec,
                    sender: h.sender,
                }))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                // Skip whatever is there: continue after the newest packet if it can be
                // found, else at its header.
                self.generation = generation;
                self.next = if last < DATA_SIZE {
                    nextpktoff(m, last).unwrap_or(last)
                } else {
                    0
                };
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// `HEADER_SIZE` and the struct layout agree.
const _: () = assert!(HEADER_SIZE == 32 && PKTHDR_SIZE == 24);
