//! `virtN` (NetBSD's `rumpnet_virtif`, sys/rump/net/lib/libvirtif): an Ethernet interface
//! on a host tap device, so a rump kernel joins real Linux networks.
//!
//! As NetBSD's build of `librumpnet_virtif` (no `RUMP_VIF_LINKSTR`), `SIOCIFCREATE virtN`
//! opens the tap at once: on Linux `/dev/net/tun` with `TUNSETIFF`, `IFF_TAP | IFF_NO_PI`
//! and the name `tunN` (`virtif_user.c` names it `tun%d` from the unit number); an
//! existing persistent tap of that name is attached, else the host makes one for as long
//! as the interface lives. The MAC is NetBSD's `b2:0a:RR:0b:0e:NN` (`RR` random, `NN` the
//! unit). `SIOCSLINKSTR`/`SIOCGLINKSTR` are `ENOTTY` as in that build. Destroying an
//! interface that is up is `EBUSY` (`virtif_unclone`).
//!
//! Frames move in the stack's softint (crate docs): the tap descriptor is non-blocking
//! and sits in the softint's `poll(2)` set next to the shmif bus watches; sends are one
//! `write(2)` under the engine's lock (a full tap queue drops the frame, counted in
//! `oerrors`, as NetBSD's `VIFHYPER_SEND` ignores its result).
//!
//! Policy (docs/threat-model.md): a tap is a host network interface, so the operator
//! names the taps clients may open in `RUMP_VIRTIF_ALLOW` (comma-separated host names,
//! `tun0,tun1`, or `any`); unset or empty, none: `SIOCIFCREATE virtN` is `EACCES` for a
//! tap not listed. virtif is loaded only when `-l rumpnet_virtif` names it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use kernel::Errno;

use crate::engine::Engine;
use crate::ifnet::{Ifnet, Link, ETHERMTU, IFF_BROADCAST, IFF_MULTICAST, IFF_SIMPLEX, IFS_MAX};

/// The interface name prefix (`VIRTIF_BASE`).
pub const VIF_NAME: &str = "virt";
/// The host tap name prefix NetBSD's virtif uses on Linux.
pub const HOST_PREFIX: &str = "tun";
/// Largest frame read from a tap (NetBSD's `viu_rcvbuf`: a jumbo frame).
pub const RCVBUF: usize = 9018;
/// `IFNAMSIZ` on Linux.
const IFNAMSIZ: usize = 16;

/// Which host taps clients may open (`RUMP_VIRTIF_ALLOW`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// None (the default).
    #[default]
    None,
    /// Any name (`any`).
    Any,
    /// These names.
    Names(Vec<String>),
}

impl Policy {
    /// Parses `RUMP_VIRTIF_ALLOW`'s value: `any`, or comma-separated tap names (each a
    /// valid Linux interface name: 1 to 15 bytes, no `/`, whitespace or `:`).
    pub fn parse(s: &str) -> Result<Policy, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Policy::None);
        }
        if s == "any" {
            return Ok(Policy::Any);
        }
        let mut names = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty()
                || item.len() >= IFNAMSIZ
                || item == "."
                || item == ".."
                || item.bytes().any(|b| {
                    b == b'/' || b == b':' || b.is_ascii_whitespace() || !b.is_ascii_graphic()
                })
            {
                return Err(format!(
                    "RUMP_VIRTIF_ALLOW: {item:?}: not an interface name"
                ));
            }
            names.push(item.to_string());
        }
        Ok(Policy::Names(names))
    }

    /// Whether a client may open host tap `name`.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Policy::None => false,
            Policy::Any => true,
            Policy::Names(n) => n.iter().any(|x| x == name),
        }
    }
}

/// An open host tap.
pub struct Tap {
    /// Its host name (`tun0`).
    pub host_name: String,
    fd: OwnedFd,
}

impl Tap {
    /// Opens (or makes) host tap `name`: `IFF_TAP | IFF_NO_PI`, non-blocking.
    pub fn open(name: &str) -> std::io::Result<Tap> {
        if name.is_empty() || name.len() >= IFNAMSIZ {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // struct ifreq: the name (16 bytes) then a short of flags in a 24-byte union.
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
        ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq` (40 bytes on Linux) we own.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, ifr.as_mut_ptr()) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Tap {
            host_name: name.to_string(),
            fd,
        })
    }

    /// The descriptor the softint polls.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// One frame, if one is waiting: its length (frames longer than `buf` are cut by the
    /// host and dropped by the caller's checks).
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        // SAFETY: reading at most `buf.len()` bytes into `buf` from our descriptor.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(Some(n as usize))
    }

    /// Sends one frame (never waits: a full queue is an error).
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        // SAFETY: writing `frame` from our memory to our descriptor.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The unit of `virtN` (NetBSD's `if_clone` name rules: digits, no leading zero).
pub fn unit_of(name: &str) -> Option<u32> {
    let u = name.strip_prefix(VIF_NAME)?;
    if u.is_empty() || u.len() > 4 || !u.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if u.len() > 1 && u.starts_with('0') {
        return None;
    }
    u.parse().ok()
}

impl Engine {
    /// Creates `virtN` on the tap `tap` (already opened): down, NetBSD's MAC.
    pub fn virt_create(&mut self, name: &str, unit: u32, tap: Tap) -> Result<u32, Errno> {
        if self.ifp_by_name(name).is_some() {
            return Err(Errno::EEXIST);
        }
        if self.ifs.len() >= IFS_MAX {
            return Err(Errno::ENOBUFS);
        }
        let index = self.alloc_index();
        let r = self.random();
        let mac = [0xb2, 0x0a, r as u8, 0x0b, 0x0e, unit as u8];
        self.ifs.push(Ifnet {
            name: name.into(),
            index,
            flags: IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST,
            mtu: ETHERMTU,
            mac: Some(mac),
            addrs: Vec::new(),
            link: Link::Virt { tap },
            ipackets: 0,
            opackets: 0,
            ibytes: 0,
            obytes: 0,
            ierrors: 0,
            oerrors: 0,
        });
        Ok(index)
    }

    /// Reads every tap (at most `frames_max` frames each); whether anything arrived.
    /// Frames of an interface that is down are read and dropped (NetBSD's
    /// `VIF_DELIVERPKT` without `IFF_RUNNING`), so a tap never keeps the softint awake.
    pub fn read_taps(&mut self, frames_max: usize) -> bool {
        let mut got = false;
        let mut buf = vec![0u8; RCVBUF];
        let idx: Vec<u32> = self
            .ifs
            .iter()
            .filter(|f| matches!(f.link, Link::Virt { .. }))
            .map(|f| f.index)
            .collect();
        for i in idx {
            for _ in 0..frames_max {
                let n = {
                    let Some(f) = self.ifp_mut(i) else { break };
                    let Link::Virt { tap } = &f.link else { break };
                    match tap.recv(&mut buf) {
                        Ok(Some(n)) => n,
                        Ok(None) => break,
                        Err(_) => {
                            f.ierrors += 1;
                            break;
                        }
                    }
                };
                got = true;
                self.ether_input(i, &buf[..n]);
                self.poll_if_full();
            }
        }
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_names_any_and_nothing() {
        assert_eq!(Policy::parse("").unwrap(), Policy::None);
        assert_eq!(Policy::parse("  ").unwrap(), Policy::None);
        assert_eq!(Policy::parse("any").unwrap(), Policy::Any);
        let p = Policy::parse("tun0, tun3").unwrap();
        assert!(p.allows("tun0") && p.allows("tun3"));
        assert!(!p.allows("tun1") && !p.allows("tun") && !p.allows("tun00"));
        assert!(!Policy::None.allows("tun0"));
        assert!(Policy::Any.allows("tun7"));
        for bad in [
            "tun0,",
            "../x",
            "a b",
            "tun0:1",
            "0123456789abcdef",
            ".",
            "é",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unit_numbers_as_if_clone() {
        assert_eq!(unit_of("virt0"), Some(0));
        assert_eq!(unit_of("virt42"), Some(42));
        for bad in [
            "virt",
            "virt01",
            "virtx",
            "virt-1",
            "virt12345",
            "shmif0",
            "virt1a",
        ] {
            assert_eq!(unit_of(bad), None, "{bad}");
        }
    }
}
