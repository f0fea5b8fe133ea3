//! `-d`: host files opened and registered as etfs keys (netbsd-abi.md §8.2, "processing of
//! each drivespec"), after boot and before the listener, in command-line order.
//!
//! Differences from the reference, each deliberate:
//! - a host file the server may only read (permissions, read-only file system) is opened
//!   read-only instead of failing; opening its key for writing inside the kernel then gives
//!   `EACCES`, as rumpblk does for a read-only host device;
//! - a directory or another kind of file that cannot be a drive is refused with a message
//!   that says so (the reference fails later or not at all);
//! - `type=reg` without a size maps the whole host file (the reference maps 0 bytes);
//! - disklabel windows use 64-bit arithmetic (see `crate::disklabel`).
//!
//! A `module` drivespec (ours, `crate::drivespec`) is the one kind of key a client may load
//! as host code with `modctl`: its host file must exist and be a regular file; it is opened
//! read-only (never created, extended or written; write opens of the key are `EACCES`),
//! loaded through that open descriptor, and may not be mapped by any other drivespec (which
//! could write it).
//!
//! Host files are shared: two drivespecs naming the same host file (same device and inode)
//! use one open file, so they get the same minor number, as rumpblk reuses it per path.
//! `RUMP_BLKFAIL` (rate of `EIO` per 10 000 operations) and `RUMP_BLKFAIL_SEED` wrap every
//! drive in the seeded fault injector, as NetBSD's rumpblk does; `RUMP_BLKFAIL_ENOSPC` and
//! `RUMP_BLKFAIL_SHORT` (ours) add `ENOSPC` on writes and short transfers.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::sync::Arc;

use kernel::fs::rumpfs::etfs::EtfsType as KType;
use kernel::hostio::{FaultConfig, FaultyFile, HostFile};
use kernel::Kernel;

use crate::disklabel;
use crate::drivespec::{DriveSpec, EtfsType, Size};
use crate::hostfile::{host_len, RingFile};
use crate::server::StartError;

/// A drive as registered (for the `-v` summary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drive {
    pub key: String,
    pub hostpath: String,
    pub offset: u64,
    pub size: u64,
    pub etfs_type: EtfsType,
    pub read_only: bool,
    /// A module key (`-d …,module`).
    pub module: bool,
}

fn host_err(what: &str, spec: &DriveSpec, e: &std::io::Error) -> StartError {
    let hint = match e.raw_os_error() {
        Some(libc::ENOENT) => "; create its directory first",
        Some(libc::EACCES) | Some(libc::EPERM) => "; check the permissions of the file",
        Some(libc::EISDIR) => "; give a regular file or a device, not a directory",
        Some(libc::ENOSPC) | Some(libc::EFBIG) => "; free space on the host or give a smaller size",
        _ => "",
    };
    StartError {
        message: format!("{what}: {} (hostpath {}{hint})", strerror(e), spec.hostpath),
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// The OS text of an error without Rust's " (os error N)" suffix.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn plain(message: String, errno: i32) -> StartError {
    StartError { message, errno }
}

/// The fault injection the environment asks for, if any.
pub fn fault_config_from_env() -> Option<FaultConfig> {
    let rate = |name: &str| -> u32 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .map_or(0, |v| v.min(kernel::hostio::FAIL_SCALE))
    };
    let cfg = FaultConfig {
        seed: std::env::var("RUMP_BLKFAIL_SEED")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        eio: rate("RUMP_BLKFAIL"),
        enospc: rate("RUMP_BLKFAIL_ENOSPC"),
        short: rate("RUMP_BLKFAIL_SHORT"),
    };
    (cfg.eio | cfg.enospc | cfg.short != 0).then_some(cfg)
}

/// Opens, sizes and registers every drive. The first failure stops start-up with the
/// reference's message (plus what to do) and errno: the host's for host-side failures,
/// NetBSD's for a refused registration.
pub fn attach(
    kernel: &Kernel,
    specs: &[DriveSpec],
    verbose: bool,
) -> Result<Vec<Drive>, StartError> {
    let faults = fault_config_from_env();
    let mut open_files: HashMap<(u64, u64), Arc<dyn HostFile>> = HashMap::new();
    let mut modules = HashSet::new();
    let mut drives = Vec::new();
    for spec in specs {
        drives.push(attach_one(
            kernel,
            spec,
            faults,
            &mut open_files,
            &mut modules,
        )?);
        let d = drives.last().expect("just pushed");
        if verbose && d.etfs_type == EtfsType::Block {
            println!(
                "/{}: hostpath {} ({})",
                d.key.trim_start_matches('/'),
                d.hostpath,
                human(d.size)
            );
        }
    }
    Ok(drives)
}

fn attach_one(
    kernel: &Kernel,
    spec: &DriveSpec,
    faults: Option<FaultConfig>,
    open_files: &mut HashMap<(u64, u64), Arc<dyn HostFile>>,
    modules: &mut HashSet<(u64, u64)>,
) -> Result<Drive, StartError> {
    if spec.module {
        return attach_module(kernel, spec, open_files, modules);
    }
    // 1. Open read-write, creating the file unless size=host; fall back to read-only.
    let create = spec.size != Some(Size::Host);
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o644)
        .open(&spec.hostpath);
    let (mut file, writable) = match rw {
        Ok(f) => (f, true),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EROFS | libc::EPERM)
            ) =>
        {
            match OpenOptions::new().read(true).open(&spec.hostpath) {
                Ok(f) => (f, false),
                Err(_) => return Err(host_err("etfs hostpath open", spec, &e)),
            }
        }
        Err(e) => return Err(host_err("etfs hostpath open", spec, &e)),
    };
    let md = file
        .metadata()
        .map_err(|e| host_err("fstat etfs hostpath", spec, &e))?;
    let ft = md.file_type();
    let is_dev = ft.is_block_device() || ft.is_char_device();
    if !ft.is_file() && !is_dev {
        return Err(plain(
            format!(
                "etfs hostpath open: {} is not a regular file or a device; give a disk image \
                 file or a device",
                spec.hostpath
            ),
            libc::EINVAL,
        ));
    }
    // 2. A disklabel partition gives offset and size.
    let (mut offset, mut size) = (spec.offset, None);
    if let Some(part) = spec.disklabel {
        let mut head = Vec::with_capacity(disklabel::SCAN_BYTES);
        (&mut file)
            .take(disklabel::SCAN_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| host_err("could not read disk device", spec, &e))?;
        let (o, s) = disklabel::partition(&head, part).map_err(|e| {
            plain(
                format!("{e} (hostpath {}, partition {part})", spec.hostpath),
                libc::EINVAL,
            )
        })?;
        offset = o;
        size = Some(s);
    }
    // 3. Size.
    let host_size = host_len(&file).map_err(|e| {
        plain(
            format!("fstat etfs hostpath: {e} (hostpath {})", spec.hostpath),
            i32::from(e.raw()),
        )
    })?;
    match spec.size {
        Some(Size::Host) => {
            if host_size == 0 {
                return Err(plain(
                    format!(
                        "size=host, but cannot query non-zero size: Invalid argument (hostpath \
                         {} is empty; give size=)",
                        spec.hostpath
                    ),
                    libc::EINVAL,
                ));
            }
            size = Some(host_size);
        }
        Some(Size::Bytes(n)) if spec.disklabel.is_none() => size = Some(n),
        _ => {}
    }
    // 4. Extend a short regular file.
    if let Some(s) = size {
        let end = offset.checked_add(s).ok_or_else(|| {
            plain(
                format!("-d key={}: offset + size overflows", spec.key),
                libc::EINVAL,
            )
        })?;
        if ft.is_file() && host_size < end {
            if !writable {
                return Err(plain(
                    format!(
                        "truncate: Permission denied (hostpath {} is read-only and shorter \
                         than offset + size = {end})",
                        spec.hostpath
                    ),
                    libc::EACCES,
                ));
            }
            file.set_len(end)
                .map_err(|e| host_err("truncate", spec, &e))?;
        }
    }
    // 5. Register (one open host file per host object; never a module's).
    let id = (md.dev(), md.ino());
    if modules.contains(&id) {
        return Err(module_shared(spec));
    }
    let host: Arc<dyn HostFile> = match open_files.get(&id) {
        Some(h) => h.clone(),
        None => {
            let ring = RingFile::new(file, writable)
                .map_err(|e| host_err("etfs hostpath open", spec, &e))?
                .with_path(
                    std::fs::canonicalize(&spec.hostpath)
                        .unwrap_or_else(|_| spec.hostpath.clone().into()),
                );
            let h: Arc<dyn HostFile> = match faults {
                Some(cfg) => Arc::new(FaultyFile::new(Arc::new(ring), cfg)),
                None => Arc::new(ring),
            };
            open_files.insert(id, h.clone());
            h
        }
    };
    let ktype = match spec.etfs_type {
        EtfsType::Block => KType::Blk,
        EtfsType::Char => KType::Chr,
        EtfsType::Regular => KType::Reg,
    };
    kernel
        .etfs_register(spec.key.as_bytes(), host, ktype, offset, size)
        .map_err(|e| register_err(spec, e))?;
    let size = size.unwrap_or(host_size.saturating_sub(offset));
    Ok(Drive {
        key: spec.key.clone(),
        hostpath: spec.hostpath.clone(),
        offset,
        size,
        etfs_type: spec.etfs_type,
        read_only: !writable,
        module: false,
    })
}

fn module_shared(spec: &DriveSpec) -> StartError {
    plain(
        format!(
            "-d key={}: hostpath {} is also mapped by a module drivespec: a module's host \
             file may be given once, with module, and no other drivespec (which could write \
             it)",
            spec.key, spec.hostpath
        ),
        libc::EINVAL,
    )
}

/// A `module` drivespec: an existing regular file, opened read-only, mapped whole, loadable
/// by clients through this open descriptor, shared with no other drivespec.
fn attach_module(
    kernel: &Kernel,
    spec: &DriveSpec,
    open_files: &HashMap<(u64, u64), Arc<dyn HostFile>>,
    modules: &mut HashSet<(u64, u64)>,
) -> Result<Drive, StartError> {
    let file = OpenOptions::new()
        .read(true)
        .open(&spec.hostpath)
        .map_err(|e| host_err("etfs hostpath open", spec, &e))?;
    let md = file
        .metadata()
        .map_err(|e| host_err("fstat etfs hostpath", spec, &e))?;
    if !md.file_type().is_file() {
        return Err(plain(
            format!(
                "-d key={}: a module's hostpath must be a regular file (hostpath {})",
                spec.key, spec.hostpath
            ),
            libc::EINVAL,
        ));
    }
    let id = (md.dev(), md.ino());
    if open_files.contains_key(&id) || !modules.insert(id) {
        return Err(module_shared(spec));
    }
    let ring = RingFile::module(file)
        .map_err(|e| host_err("etfs hostpath open", spec, &e))?
        .with_path(
            std::fs::canonicalize(&spec.hostpath).unwrap_or_else(|_| spec.hostpath.clone().into()),
        );
    kernel
        .etfs_register(spec.key.as_bytes(), Arc::new(ring), KType::Reg, 0, None)
        .map_err(|e| register_err(spec, e))?;
    Ok(Drive {
        key: spec.key.clone(),
        hostpath: spec.hostpath.clone(),
        offset: 0,
        size: md.len(),
        etfs_type: spec.etfs_type,
        read_only: true,
        module: true,
    })
}

fn register_err(spec: &DriveSpec, e: kernel::Errno) -> StartError {
    plain(
        format!(
            "etfs register: {e} (key {}, hostpath {}{})",
            spec.key,
            spec.hostpath,
            match e {
                kernel::Errno::EEXIST => "; each key may be given once",
                kernel::Errno::EBUSY => "; at most 16 host files can be block devices",
                kernel::Errno::EINVAL if !spec.key.starts_with('/') => "; keys start with /",
                kernel::Errno::ENOSYS => "; etfs needs the VFS: add -lrumpvfs",
                _ => "",
            }
        ),
        i32::from(e.raw()),
    )
}

/// A size as NetBSD's `format_bytes` writes it: `16 MB`, `1536 KB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 10_000 && u + 1 < UNITS.len() {
        v /= 1024;
        u += 1;
    }
    format!("{v} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(16 << 20), "16 MB");
        assert_eq!(human(1536 << 10), "1536 KB");
        assert_eq!(human(1 << 30), "1024 MB");
        assert_eq!(human(0), "0 B");
    }
}
