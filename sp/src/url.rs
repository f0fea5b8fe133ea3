//! Server URL parsing (§2.1): `tcp://HOST:PORT[/…]`, `unix://PATH`; `tcp6` is recognised but
//! unsupported, as in the reference. Ours also takes an IPv6 host in brackets,
//! `tcp://[::1]:PORT[/…]` (`[::]` is the IPv6 wildcard), which the reference cannot parse.
//! Pure parsing: the only outside input is the optional cwd.
//!
//! Error messages are the reference's texts (it prints them to stderr; we return them).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Longest scheme name accepted (the reference's buffer is 16 bytes with the NUL).
pub const SCHEME_MAX_LEN: usize = 15;
/// Longest tcp host part accepted (the reference's buffer is 64 bytes with the NUL).
pub const TCP_HOST_MAX_LEN: usize = 63;
/// `sizeof(sun_path)` on Linux; a unix socket path must be shorter (room for the NUL).
pub const SUN_PATH_LEN: usize = 108;

/// Who parses: only a server may use the wildcard address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Binds and listens; `*`, `0` and `0.0.0.0` mean any address.
    Server,
    /// Connects; the wildcard address is rejected.
    Client,
}

/// A parsed sp address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpAddr {
    /// A unix-domain stream socket path (absolute when a cwd was given).
    Unix(PathBuf),
    /// A TCP address (IPv4, or IPv6 from a bracketed host).
    Tcp(SocketAddr),
}

/// Which errno the reference returns for a URL error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlErrorKind {
    /// `EINVAL`: malformed URL.
    Invalid,
    /// `EOPNOTSUPP`: `tcp6`.
    NotSupported,
    /// `ERANGE`: port out of range.
    Range,
    /// `ENAMETOOLONG`: unix socket path does not fit in `sun_path`.
    NameTooLong,
}

/// A URL error: the errno kind and the reference's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    /// Which errno this maps to.
    pub kind: UrlErrorKind,
    /// The message, e.g. `rump_sp_tcp: missing port specifier`.
    pub message: String,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UrlError {}

fn err(kind: UrlErrorKind, message: impl Into<String>) -> UrlError {
    UrlError {
        kind,
        message: message.into(),
    }
}

/// Parses an sp URL.
///
/// `cwd` makes a relative unix path absolute (`None` keeps it relative); the result must fit
/// in `sun_path` (108 bytes with the terminating NUL).
pub fn parse(url: &str, role: Role, cwd: Option<&Path>) -> Result<SpAddr, UrlError> {
    let Some(sep) = url.find("://") else {
        return Err(err(
            UrlErrorKind::Invalid,
            format!("rump_sp: invalid locator ``{url}''"),
        ));
    };
    let scheme = &url[..sep];
    if scheme.len() > SCHEME_MAX_LEN {
        let m = format!("rump_sp: identifier too long in ``{url}''");
        return Err(err(UrlErrorKind::Invalid, m));
    }
    let addr = &url[sep + 3..];
    match scheme {
        "tcp" => parse_tcp(addr, role).map(SpAddr::Tcp),
        "unix" => parse_unix(addr, cwd).map(SpAddr::Unix),
        "tcp6" => Err(err(
            UrlErrorKind::NotSupported,
            "rump_sp: support not yet implemented",
        )),
        _ => Err(err(
            UrlErrorKind::Invalid,
            format!("rump_sp: invalid identifier ``{url}''"),
        )),
    }
}

/// `HOST:PORT[/anything]` (§2.1), HOST an IPv4 address or `[IPv6]`.
fn parse_tcp(addr: &str, role: Role) -> Result<SocketAddr, UrlError> {
    // A bracketed IPv6 host: its colons are not the port separator.
    let host_end = match addr.strip_prefix('[') {
        Some(inner) => match inner.find(']') {
            Some(close) => close + 2,
            None => {
                let m = format!("rump_sp_tcp: cannot parse {addr}");
                return Err(err(UrlErrorKind::Invalid, m));
            }
        },
        None => 0,
    };
    let Some(colon) = addr[host_end..].find(':').map(|c| c + host_end) else {
        return Err(err(
            UrlErrorKind::Invalid,
            "rump_sp_tcp: missing port specifier",
        ));
    };
    let host = &addr[..colon];
    if host.len() > TCP_HOST_MAX_LEN {
        return Err(err(UrlErrorKind::Invalid, "rump_sp_tcp: address too long"));
    }
    let cannot = || {
        err(
            UrlErrorKind::Invalid,
            format!("rump_sp_tcp: cannot parse {host}"),
        )
    };
    let ip = if host == "*" || host == "0" {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else if host_end > 0 {
        if colon != host_end {
            return Err(cannot());
        }
        IpAddr::V6(
            host[1..host.len() - 1]
                .parse::<Ipv6Addr>()
                .map_err(|_| cannot())?,
        )
    } else {
        IpAddr::V4(host.parse::<Ipv4Addr>().map_err(|_| cannot())?)
    };
    if role == Role::Client && ip.is_unspecified() {
        return Err(err(
            UrlErrorKind::Invalid,
            "rump_sp_tcp: client needs !INADDR_ANY",
        ));
    }
    let rest = &addr[colon + 1..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        // (sic) "now found" is the reference's spelling.
        let m = format!("rump_sp_tcp: port now found: {rest}");
        return Err(err(UrlErrorKind::Invalid, m));
    }
    if !matches!(rest.as_bytes().get(digits), None | Some(b'/')) {
        let m = format!("rump_sp_tcp: junk at end of port: {addr}");
        return Err(err(UrlErrorKind::Invalid, m));
    }
    let text = &rest[..digits];
    match text.parse::<u64>() {
        Ok(p) if p < 65536 => Ok(SocketAddr::new(ip, p as u16)),
        Ok(p) => Err(err(
            UrlErrorKind::Range,
            format!("rump_sp_tcp: port {p} out of range"),
        )),
        Err(_) => Err(err(
            UrlErrorKind::Range,
            format!("rump_sp_tcp: port {text} out of range"),
        )),
    }
}

/// `PATH`, made absolute against `cwd` when relative (§2.1).
fn parse_unix(path: &str, cwd: Option<&Path>) -> Result<PathBuf, UrlError> {
    let too_long = |p: &str| {
        err(
            UrlErrorKind::NameTooLong,
            format!("rump_sp_unix: socket path too long: {p}"),
        )
    };
    if path.len() >= SUN_PATH_LEN {
        return Err(too_long(path));
    }
    if path.starts_with('/') {
        return Ok(PathBuf::from(path));
    }
    let Some(cwd) = cwd else {
        return Ok(PathBuf::from(path));
    };
    // cwd + "/" + path, textually (as the reference does; no normalisation).
    let mut abs = cwd.as_os_str().to_os_string();
    abs.push("/");
    abs.push(path);
    if abs.len() >= SUN_PATH_LEN {
        return Err(too_long(&abs.to_string_lossy()));
    }
    Ok(PathBuf::from(abs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(a: [u8; 4], port: u16) -> SpAddr {
        SpAddr::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port))
    }

    fn fails(url: &str, role: Role, kind: UrlErrorKind, msg: &str) {
        let e = parse(url, role, None).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (kind, msg), "url {url:?}");
        assert_eq!(e.to_string(), msg);
    }

    use Role::{Client, Server};
    use UrlErrorKind::*;

    #[test]
    fn tcp_good() {
        assert_eq!(
            parse("tcp://127.0.0.1:3755", Client, None).unwrap(),
            tcp([127, 0, 0, 1], 3755)
        );
        assert_eq!(
            parse("tcp://127.0.0.1:3755/", Client, None).unwrap(),
            tcp([127, 0, 0, 1], 3755)
        );
        assert_eq!(
            parse("tcp://10.1.2.3:1/x/y", Client, None).unwrap(),
            tcp([10, 1, 2, 3], 1)
        );
        assert_eq!(
            parse("tcp://0:3755/", Server, None).unwrap(),
            tcp([0; 4], 3755)
        );
        assert_eq!(
            parse("tcp://*:3755", Server, None).unwrap(),
            tcp([0; 4], 3755)
        );
        assert_eq!(
            parse("tcp://0.0.0.0:0", Server, None).unwrap(),
            tcp([0; 4], 0)
        );
        assert_eq!(
            parse("tcp://1.2.3.4:65535", Client, None).unwrap(),
            tcp([1, 2, 3, 4], 65535)
        );
        assert_eq!(
            parse("tcp://1.2.3.4:007", Client, None).unwrap(),
            tcp([1, 2, 3, 4], 7)
        );
    }

    #[test]
    fn tcp_ipv6_in_brackets() {
        let v6 = |s: &str, port| SpAddr::Tcp(SocketAddr::new(s.parse().unwrap(), port));
        assert_eq!(
            parse("tcp://[::1]:3755/", Client, None).unwrap(),
            v6("::1", 3755)
        );
        assert_eq!(
            parse("tcp://[fe80::1]:1", Client, None).unwrap(),
            v6("fe80::1", 1)
        );
        assert_eq!(parse("tcp://[::]:80", Server, None).unwrap(), v6("::", 80));
        fails(
            "tcp://[::]:80",
            Client,
            Invalid,
            "rump_sp_tcp: client needs !INADDR_ANY",
        );
        fails(
            "tcp://[::1]",
            Client,
            Invalid,
            "rump_sp_tcp: missing port specifier",
        );
        fails(
            "tcp://[::1:80",
            Client,
            Invalid,
            "rump_sp_tcp: cannot parse [::1:80",
        );
        fails(
            "tcp://[::1]x:80",
            Client,
            Invalid,
            "rump_sp_tcp: cannot parse [::1]x",
        );
        fails(
            "tcp://[1.2.3.4]:80",
            Client,
            Invalid,
            "rump_sp_tcp: cannot parse [1.2.3.4]",
        );
        fails(
            "tcp://[::1]:99999",
            Client,
            Range,
            "rump_sp_tcp: port 99999 out of range",
        );
    }

    #[test]
    fn tcp_errors() {
        let needs = "rump_sp_tcp: client needs !INADDR_ANY";
        fails("tcp://0:3755/", Client, Invalid, needs);
        fails("tcp://*:3755", Client, Invalid, needs);
        fails("tcp://0.0.0.0:3755", Client, Invalid, needs);
        fails(
            "tcp://127.0.0.1",
            Client,
            Invalid,
            "rump_sp_tcp: missing port specifier",
        );
        let long = format!("tcp://{}:1", "1".repeat(64));
        fails(&long, Server, Invalid, "rump_sp_tcp: address too long");
        let h63 = "1".repeat(63);
        let e = parse(&format!("tcp://{h63}:1"), Server, None).unwrap_err();
        assert_eq!(e.message, format!("rump_sp_tcp: cannot parse {h63}"));
        fails(
            "tcp://localhost:1",
            Client,
            Invalid,
            "rump_sp_tcp: cannot parse localhost",
        );
        fails(
            "tcp://1.2.3:1",
            Client,
            Invalid,
            "rump_sp_tcp: cannot parse 1.2.3",
        );
        fails("tcp://:1", Server, Invalid, "rump_sp_tcp: cannot parse ");
        fails(
            "tcp://1.2.3.4:",
            Client,
            Invalid,
            "rump_sp_tcp: port now found: ",
        );
        fails(
            "tcp://1.2.3.4:x1",
            Client,
            Invalid,
            "rump_sp_tcp: port now found: x1",
        );
        fails(
            "tcp://1.2.3.4:12x",
            Client,
            Invalid,
            "rump_sp_tcp: junk at end of port: 1.2.3.4:12x",
        );
        fails(
            "tcp://1.2.3.4:12 ",
            Client,
            Invalid,
            "rump_sp_tcp: junk at end of port: 1.2.3.4:12 ",
        );
        fails(
            "tcp://1.2.3.4:65536",
            Client,
            Range,
            "rump_sp_tcp: port 65536 out of range",
        );
        fails(
            "tcp://0:99999/",
            Server,
            Range,
            "rump_sp_tcp: port 99999 out of range",
        );
        let huge = "9".repeat(30);
        let m = format!("rump_sp_tcp: port {huge} out of range");
        fails(&format!("tcp://1.2.3.4:{huge}"), Client, Range, &m);
        // Junk is checked before the range.
        fails(
            "tcp://1.2.3.4:70000x",
            Client,
            Invalid,
            "rump_sp_tcp: junk at end of port: 1.2.3.4:70000x",
        );
    }

    #[test]
    fn scheme_errors() {
        fails(
            "tcp6://[::1]:3755",
            Server,
            NotSupported,
            "rump_sp: support not yet implemented",
        );
        fails(
            "tcp6://anything",
            Client,
            NotSupported,
            "rump_sp: support not yet implemented",
        );
        fails(
            "unix:/tmp/sock",
            Server,
            Invalid,
            "rump_sp: invalid locator ``unix:/tmp/sock''",
        );
        fails("", Server, Invalid, "rump_sp: invalid locator ``''");
        fails(
            "udp://1.2.3.4:5",
            Client,
            Invalid,
            "rump_sp: invalid identifier ``udp://1.2.3.4:5''",
        );
        fails(
            "TCP://1.2.3.4:5",
            Client,
            Invalid,
            "rump_sp: invalid identifier ``TCP://1.2.3.4:5''",
        );
        fails(
            "://x",
            Client,
            Invalid,
            "rump_sp: invalid identifier ``://x''",
        );
        let s16 = format!("{}://x", "a".repeat(16));
        fails(
            &s16,
            Client,
            Invalid,
            &format!("rump_sp: identifier too long in ``{s16}''"),
        );
        let s15 = format!("{}://x", "a".repeat(15));
        fails(
            &s15,
            Client,
            Invalid,
            &format!("rump_sp: invalid identifier ``{s15}''"),
        );
    }

    #[test]
    fn unix_paths() {
        let abs = parse("unix:///tmp/sock", Client, Some(Path::new("/home"))).unwrap();
        assert_eq!(abs, SpAddr::Unix(PathBuf::from("/tmp/sock")));
        let rel = parse("unix://sock", Server, Some(Path::new("/work/dir"))).unwrap();
        assert_eq!(rel, SpAddr::Unix(PathBuf::from("/work/dir/sock")));
        let keep = parse("unix://a/b", Client, None).unwrap();
        assert_eq!(keep, SpAddr::Unix(PathBuf::from("a/b")));
        // 107 bytes fit, 108 do not.
        let ok = format!("/{}", "p".repeat(106));
        let url = format!("unix://{ok}");
        assert_eq!(
            parse(&url, Server, None).unwrap(),
            SpAddr::Unix(PathBuf::from(&ok))
        );
        let long = format!("/{}", "p".repeat(107));
        let e = parse(&format!("unix://{long}"), Server, None).unwrap_err();
        assert_eq!(e.kind, NameTooLong);
        // Relative path that only overflows once the cwd is prefixed.
        let cwd = format!("/{}", "d".repeat(60));
        let rel = "r".repeat(50);
        let e = parse(&format!("unix://{rel}"), Server, Some(Path::new(&cwd))).unwrap_err();
        assert_eq!(e.kind, NameTooLong);
        assert!(e.message.contains(&cwd), "{}", e.message);
        assert!(parse(&format!("unix://{rel}"), Server, None).is_ok());
    }
}
