//! Kernel components named by `-l`, matched against NetBSD's rump library names.
//!
//! NetBSD's `rump_server` `dlopen`s each `-l` argument (as given, then as `lib<arg>.so`). Here
//! the components are built in: `-lrumpvfs`, `-l librumpvfs.so` and `-l /usr/lib/librumpvfs.so`
//! all name the built-in `rumpvfs`. A name of a NetBSD component whose capability has not been
//! built yet is refused with a "not supported yet" error rather than silently ignored; a name
//! that is no rump component at all fails the way the reference's `dlopen` loop does.

use std::fmt;

use crate::cli::Flavor;

/// A built-in component that is available now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// `librump`: the base kernel (always present).
    Base,
    /// `librumpuser`: the host interface (always present).
    User,
    /// `librumpkern_sysproxy`: the sp server (always present).
    Sysproxy,
    /// `librumpvfs`: the VFS faction with rumpfs as the root file system; without it every
    /// file-system syscall returns `ENOSYS`, as NetBSD's server without `-lrumpvfs`.
    Vfs,
    /// `librumpfs_tmpfs`: tmpfs for mount(2); brings `rumpvfs` with it, as the NetBSD
    /// library's dependency on `librumpvfs` does. Without it mounting tmpfs is `ENODEV`.
    Tmpfs,
    /// `librumpfs_ffs`: FFS on etfs block devices (read-only for now); brings `rumpvfs`.
    Ffs,
    /// `librumpdev` and `librumpdev_disk`: the device and disk framework FFS servers name
    /// (NetBSD needs them for FFS; here block devices come with `rumpvfs`): accepted.
    Dev,
    /// `librumpdev_disk`.
    DevDisk,
    /// `librumpnet`: the socket layer (crate `rump-net`); without a family every
    /// `socket(2)` is `EAFNOSUPPORT`, without it every socket call `ENOSYS`.
    Net,
    /// `librumpnet_net`: the network faction's base; brings `rumpnet_local` (AF_LOCAL).
    NetNet,
    /// `librumpnet_local`: AF_LOCAL sockets; brings `rumpnet`.
    NetLocal,
    /// `librumpnet_sockin`: AF_INET/AF_INET6 TCP and UDP through the host's stack; brings
    /// `rumpnet`. Loaded only when named (never by `rump_allserver` alone): it gives
    /// clients the host network within `RUMP_SOCKIN_ALLOW`.
    NetSockin,
    /// `librumpnet_netinet`: the TCP/IP stack, AF_INET (crate `rump-netinet`).
    NetInet,
    /// `librumpnet_netinet6`: AF_INET6 and `::1`; brings `rumpnet_netinet`.
    NetInet6,
    /// `librumpnet_shmif`: `shmifN` interfaces on shmif buses.
    Shmif,
    /// `librumpnet_config`: NetBSD's host-side configuration helpers (nothing in the
    /// kernel); accepted.
    NetConfig,
    /// `librumpnet_virtif`: `virtN` interfaces on host tap devices; brings `rumpnet_net`.
    /// Loaded only when named (never by `rump_allserver` alone): it gives clients host
    /// network interfaces within `RUMP_VIRTIF_ALLOW`.
    Virtif,
}

impl Component {
    /// NetBSD's library name without `lib` and `.so`.
    pub fn name(self) -> &'static str {
        match self {
            Component::Base => "rump",
            Component::User => "rumpuser",
            Component::Sysproxy => "rumpkern_sysproxy",
            Component::Vfs => "rumpvfs",
            Component::Tmpfs => "rumpfs_tmpfs",
            Component::Ffs => "rumpfs_ffs",
            Component::Dev => "rumpdev",
            Component::DevDisk => "rumpdev_disk",
            Component::Net => "rumpnet",
            Component::NetNet => "rumpnet_net",
            Component::NetLocal => "rumpnet_local",
            Component::NetSockin => "rumpnet_sockin",
            Component::NetInet => "rumpnet_netinet",
            Component::NetInet6 => "rumpnet_netinet6",
            Component::Shmif => "rumpnet_shmif",
            Component::NetConfig => "rumpnet_config",
            Component::Virtif => "rumpnet_virtif",
        }
    }

    /// The file-system type this component adds to the kernel, if it is a file system.
    pub fn filesystem(self) -> Option<kernel::fs::FsKind> {
        match self {
            Component::Tmpfs => Some(kernel::fs::FsKind::Tmpfs),
            Component::Ffs => Some(kernel::fs::FsKind::Ffs),
            _ => None,
        }
    }

    /// Components this one needs (loaded with it).
    fn needs(self) -> &'static [Component] {
        match self {
            Component::Tmpfs | Component::Ffs => &[Component::Vfs],
            Component::NetNet => &[Component::Net, Component::NetLocal],
            Component::NetLocal | Component::NetSockin => &[Component::Net],
            Component::NetInet | Component::Shmif | Component::NetConfig => &[Component::Net],
            Component::NetInet6 => &[Component::Net, Component::NetInet],
            Component::Virtif => &[Component::Net],
            _ => &[],
        }
    }
}

/// Components every server has (the reference links them into `rump_server` itself).
pub const BUILTIN: [Component; 3] = [Component::Base, Component::User, Component::Sysproxy];

/// Components that can be named with `-l`; `rump_allserver` has all of them.
pub const OPTIONAL: [Component; 12] = [
    Component::Vfs,
    Component::Tmpfs,
    Component::Ffs,
    Component::Dev,
    Component::DevDisk,
    Component::Net,
    Component::NetNet,
    Component::NetLocal,
    Component::NetInet,
    Component::NetInet6,
    Component::Shmif,
    Component::NetConfig,
];

/// Components loaded only when `-l` names them, also by `rump_allserver`.
pub const ON_REQUEST: [Component; 2] = [Component::NetSockin, Component::Virtif];

/// The in-kernel TCP/IP names sockin replaces (NetBSD's sockin stands in for netinet).
/// `rumpnet_shmif` is among them: our shmif interfaces live in the TCP/IP faction.
const INET: &[&str] = &[
    "rumpnet_netinet",
    "rumpnet_netinet6",
    "rumpnet_shmif",
    "rumpnet_virtif",
];

/// Network components of the TCP/IP faction not built yet: refused with a message that
/// says so.
const TCPIP: &[&str] = &[
    "rumpnet_tap",
    "rumpnet_bridge",
    "rumpnet_agr",
    "rumpnet_gif",
    "rumpnet_npf",
    "rumpnet_bpfjit",
    "rumpnet_pppoe",
    "rumpnet_netmpls",
    "rumpnet_net80211",
    "rumpnet_netbt",
];

/// NetBSD rump component libraries we know of but have not built yet.
const NOT_YET: &[&str] = &[
    "rumpfs_msdos",
    "rumpfs_cd9660",
    "rumpfs_ext2fs",
    "rumpfs_lfs",
    "rumpfs_nfs",
    "rumpfs_null",
    "rumpfs_kernfs",
    "rumpfs_ptyfs",
    "rumpfs_puffs",
    "rumpfs_syspuffs",
    "rumpfs_sysvbfs",
    "rumpfs_udf",
    "rumpfs_union",
    "rumpfs_umap",
    "rumpfs_fdesc",
    "rumpfs_v7fs",
    "rumpfs_ntfs",
    "rumpfs_hfs",
    "rumpfs_efs",
    "rumpfs_nilfs",
    "rumpfs_smbfs",
    "rumpfs_mfs",
    "rumpdev_cgd",
    "rumpdev_vnd",
    "rumpdev_rnd",
    "rumpdev_raidframe",
    "rumpdev_md",
    "rumpdev_putter",
    "rumpkern_tty",
    "rumpkern_crypto",
    "rumpkern_z",
];

/// Why a `-l` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentError {
    /// A NetBSD component whose capability this server does not have yet.
    NotSupportedYet { arg: String, name: String },
    /// Neither a component nor a loadable file (the reference's dlopen failure).
    NotFound { arg: String },
    /// A component of the TCP/IP faction (netinet, interfaces), not built yet.
    NoTcpIp { arg: String, name: String },
    /// `rumpnet_sockin` together with the in-kernel TCP/IP stack.
    SockinWithInet { name: String },
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentError::NotSupportedYet { arg, name } => write!(
                f,
                "-l {arg}: the component {name} is not supported yet by this rump_server; \
                 run without it"
            ),
            ComponentError::NoTcpIp { arg, name } => write!(
                f,
                "-l {arg}: {name} belongs to the TCP/IP stack (netinet, network interfaces), \
                 which this rump_server does not have yet; AF_LOCAL sockets come with \
                 -lrumpnet_local (or -lrumpnet_net)"
            ),
            ComponentError::SockinWithInet { name } => write!(
                f,
                "-l rumpnet_sockin and -l {name} exclude each other: sockin serves AF_INET \
                 and AF_INET6 through the host's stack in place of the in-kernel TCP/IP \
                 stack (as NetBSD's sockin replaces netinet); load one of them"
            ),
            ComponentError::NotFound { arg } => write!(
                f,
                "failed to load -libraries, last error from \"{arg}\":\n\
                 lib{arg}.so: cannot open shared object file: No such file or directory"
            ),
        }
    }
}

impl std::error::Error for ComponentError {}

/// Reduces `librumpvfs.so.0`, `/usr/lib/librumpvfs.so`, `rumpvfs` to `rumpvfs`.
pub fn normalize(arg: &str) -> &str {
    let base = arg.rsplit('/').next().unwrap_or(arg);
    let base = match base.find(".so") {
        Some(i) if base[i + 3..].is_empty() || base[i + 3..].starts_with('.') => &base[..i],
        _ => base,
    };
    base.strip_prefix("lib").unwrap_or(base)
}

/// The `-l` arguments that are no built-in component but an existing file: external
/// component libraries (`crate::extcomp`), in command-line order.
pub fn externals(libs: &[String]) -> Vec<std::path::PathBuf> {
    libs.iter()
        .filter(|arg| {
            let name = normalize(arg);
            !BUILTIN
                .iter()
                .chain(&OPTIONAL)
                .chain(&ON_REQUEST)
                .any(|c| c.name() == name)
                && !NOT_YET.contains(&name)
                && !TCPIP.contains(&name)
                && std::path::Path::new(arg).is_file()
        })
        .map(std::path::PathBuf::from)
        .collect()
}

/// The component set of a server: the flavor's built-ins plus what `-l` names.
pub fn resolve(flavor: Flavor, libs: &[String]) -> Result<Vec<Component>, ComponentError> {
    let mut set: Vec<Component> = BUILTIN.to_vec();
    if flavor == Flavor::All {
        set.extend_from_slice(&OPTIONAL);
    }
    let named = |n: &str| libs.iter().any(|a| normalize(a) == n);
    if named(Component::NetSockin.name()) {
        if let Some(inet) = INET.iter().find(|n| named(n)) {
            return Err(ComponentError::SockinWithInet {
                name: inet.to_string(),
            });
        }
    }
    if named(Component::NetSockin.name()) {
        // sockin stands in for the in-kernel stack the flavor would bring (rump_allserver).
        set.retain(|c| !INET.contains(&c.name()));
    }
    for arg in libs {
        let name = normalize(arg);
        if let Some(c) = BUILTIN
            .iter()
            .chain(&OPTIONAL)
            .chain(&ON_REQUEST)
            .find(|c| c.name() == name)
        {
            for c in c.needs().iter().chain([c]) {
                if !set.contains(c) {
                    set.push(*c);
                }
            }
            continue;
        }
        if TCPIP.contains(&name) {
            return Err(ComponentError::NoTcpIp {
                arg: arg.clone(),
                name: name.to_string(),
            });
        }
        if NOT_YET.contains(&name) {
            return Err(ComponentError::NotSupportedYet {
                arg: arg.clone(),
                name: name.to_string(),
            });
        }
        if std::path::Path::new(arg).is_file() {
            continue; // an external component library: see `externals`
        }
        return Err(ComponentError::NotFound { arg: arg.clone() });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rumpvfs_is_a_component_and_in_allserver() {
        let set = resolve(Flavor::Minimal, &["librumpvfs.so".to_string()]).unwrap();
        assert!(set.contains(&Component::Vfs));
        assert!(!resolve(Flavor::Minimal, &[])
            .unwrap()
            .contains(&Component::Vfs));
        assert!(resolve(Flavor::All, &[]).unwrap().contains(&Component::Vfs));
    }

    #[test]
    fn tmpfs_by_any_spelling_brings_the_vfs() {
        for arg in [
            "rumpfs_tmpfs",
            "-lrumpfs_tmpfs",
            "librumpfs_tmpfs.so",
            "librumpfs_tmpfs.so.0",
            "/usr/lib/librumpfs_tmpfs.so",
        ] {
            let arg = arg.trim_start_matches("-l");
            let set = resolve(Flavor::Minimal, &[arg.to_string()]).unwrap();
            assert!(set.contains(&Component::Tmpfs), "{arg}");
            assert!(
                set.contains(&Component::Vfs),
                "{arg}: rumpvfs comes with it"
            );
        }
        let set = resolve(Flavor::Minimal, &["rumpvfs".into()]).unwrap();
        assert!(!set.contains(&Component::Tmpfs));
        let all = resolve(Flavor::All, &[]).unwrap();
        assert!(all.contains(&Component::Tmpfs) && all.contains(&Component::Vfs));
        assert_eq!(
            Component::Tmpfs.filesystem(),
            Some(kernel::fs::FsKind::Tmpfs)
        );
    }

    #[test]
    fn network_names() {
        for (arg, want) in [
            ("rumpnet", vec![Component::Net]),
            (
                "librumpnet_local.so",
                vec![Component::Net, Component::NetLocal],
            ),
            (
                "rumpnet_net",
                vec![Component::Net, Component::NetLocal, Component::NetNet],
            ),
        ] {
            let set = resolve(Flavor::Minimal, &[arg.to_string()]).unwrap();
            for c in &want {
                assert!(set.contains(c), "{arg}: {c:?}");
            }
        }
        let all = resolve(Flavor::All, &[]).unwrap();
        assert!(all.contains(&Component::NetLocal) && all.contains(&Component::Net));
        for (arg, want) in [
            ("rumpnet_netinet", vec![Component::Net, Component::NetInet]),
            (
                "librumpnet_netinet6.so",
                vec![Component::Net, Component::NetInet, Component::NetInet6],
            ),
            ("rumpnet_shmif", vec![Component::Net, Component::Shmif]),
            ("rumpnet_config", vec![Component::Net, Component::NetConfig]),
        ] {
            let set = resolve(Flavor::Minimal, &[arg.to_string()]).unwrap();
            for c in &want {
                assert!(set.contains(c), "{arg}: {c:?}");
            }
        }
        for c in [Component::NetInet, Component::NetInet6, Component::Shmif] {
            assert!(all.contains(&c), "rump_allserver has {c:?}");
        }
        let set = resolve(Flavor::Minimal, &["librumpnet_virtif.so".to_string()]).unwrap();
        assert!(set.contains(&Component::Virtif) && set.contains(&Component::Net));
        assert!(
            !all.contains(&Component::Virtif),
            "rump_allserver never loads virtif unless named"
        );
        let all_v = resolve(Flavor::All, &["rumpnet_virtif".to_string()]).unwrap();
        assert!(all_v.contains(&Component::Virtif) && all_v.contains(&Component::NetInet));
        let libs = ["rumpnet_sockin".to_string(), "rumpnet_virtif".to_string()];
        let e = resolve(Flavor::Minimal, &libs).unwrap_err();
        assert!(matches!(e, ComponentError::SockinWithInet { .. }), "{e}");
        let e = resolve(Flavor::All, &["rumpnet_bridge".to_string()]).unwrap_err();
        assert!(e.to_string().contains("TCP/IP stack"), "{e}");
        let set = resolve(Flavor::Minimal, &["librumpnet_sockin.so".to_string()]).unwrap();
        assert!(set.contains(&Component::NetSockin) && set.contains(&Component::Net));
        assert!(!set.contains(&Component::NetLocal));
        assert!(
            !all.contains(&Component::NetSockin),
            "rump_allserver never loads sockin unless named"
        );
        for inet in ["rumpnet_netinet", "librumpnet_netinet6.so"] {
            let libs = ["rumpnet_sockin".to_string(), inet.to_string()];
            let e = resolve(Flavor::All, &libs).unwrap_err();
            assert!(matches!(e, ComponentError::SockinWithInet { .. }), "{e}");
            assert!(e.to_string().contains("exclude each other"), "{e}");
        }
        // rump_allserver brings the in-kernel stack; a named sockin stands in for it.
        let all = resolve(Flavor::All, &["rumpnet_sockin".to_string()]).unwrap();
        assert!(all.contains(&Component::NetSockin), "{all:?}");
        for c in [Component::NetInet, Component::NetInet6, Component::Shmif] {
            assert!(!all.contains(&c), "{c:?} with sockin: {all:?}");
        }
        let all = resolve(Flavor::All, &[]).unwrap();
        assert!(all.contains(&Component::NetInet) && !all.contains(&Component::NetSockin));
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("rumpvfs"), "rumpvfs");
        assert_eq!(normalize("librumpvfs.so"), "rumpvfs");
        assert_eq!(normalize("librumpvfs.so.0"), "rumpvfs");
        assert_eq!(normalize("/usr/lib/librumpfs_tmpfs.so"), "rumpfs_tmpfs");
        assert_eq!(normalize("rumpkern_sysproxy"), "rumpkern_sysproxy");
    }

    #[test]
    fn builtins_accepted_others_refused() {
        let libs = vec![
            "rumpkern_sysproxy".to_string(),
            "librumpuser.so".to_string(),
        ];
        assert_eq!(resolve(Flavor::Minimal, &libs).unwrap(), BUILTIN.to_vec());
        let e = resolve(Flavor::Minimal, &["rumpfs_msdos".to_string()]).unwrap_err();
        assert!(e.to_string().contains("not supported yet"), "{e}");
        let e = resolve(Flavor::All, &["nosuchthing".to_string()]).unwrap_err();
        assert!(
            e.to_string().starts_with("failed to load -libraries"),
            "{e}"
        );
        let libs = ["/etc/hostname".to_string(), "rumpvfs".to_string()];
        assert!(resolve(Flavor::Minimal, &libs).is_ok());
        assert_eq!(
            externals(&libs),
            vec![std::path::PathBuf::from("/etc/hostname")]
        );
    }
}
