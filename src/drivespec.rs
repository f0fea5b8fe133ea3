//! `-d drivespec` parsing: `key=…,hostpath=…,size=…|disklabel=…[,offset=…][,type=blk|chr|reg]`,
//! or `key=…,hostpath=…,module` (ours).
//!
//! Follows rump_server(1) and NetBSD's `getsubopt` loop in `rump_allserver.c`; numbers use
//! `strsuftoll(3)` syntax (`b k m g t w` multipliers and `x`/`*` products), which NetBSD's
//! non-NetBSD builds ignore (`size=16m` became 16 bytes there); we follow the man page.
//!
//! `module` (a bare word: NetBSD's tokens are all `name=value`, so it cannot be mistaken for
//! one of them) marks a key a client may load with `modctl(MODCTL_LOAD)`: a regular file
//! mapping the whole host file, opened read-only (docs/threat-model.md). It implies
//! `type=reg` and refuses `size`, `offset`, `disklabel` and another type.

use std::fmt;

/// How the window size is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    /// An explicit byte count.
    Bytes(u64),
    /// `size=host`: the current size of the (existing, regular) host file.
    Host,
}

/// What the key is exposed as inside the rump kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtfsType {
    /// `blk` (default): a block device cached in the buffer cache.
    Block,
    /// `chr`: the raw device.
    Char,
    /// `reg`: a regular file.
    Regular,
}

/// One validated `-d` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveSpec {
    pub key: String,
    pub hostpath: String,
    pub size: Option<Size>,
    pub offset: u64,
    /// A disklabel partition letter (`a`…`z`) giving offset and size.
    pub disklabel: Option<char>,
    pub etfs_type: EtfsType,
    /// `module`: clients may load this key as a module; it is never writable.
    pub module: bool,
}

/// A malformed drivespec; the message names the offending token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveSpecError(pub String);

impl fmt::Display for DriveSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DriveSpecError {}

fn err(msg: impl Into<String>) -> DriveSpecError {
    DriveSpecError(msg.into())
}

/// Parses one `-d` argument.
pub fn parse(spec: &str) -> Result<DriveSpec, DriveSpecError> {
    let mut key = None;
    let mut hostpath = None;
    let mut size: Option<Size> = None;
    let mut offset: Option<u64> = None;
    let mut disklabel = None;
    let mut etfs_type = None;
    let mut module = false;
    for token in spec.split(',').filter(|t| !t.is_empty()) {
        if token == "module" {
            if std::mem::replace(&mut module, true) {
                return Err(err(format!("-d {spec}: module already given")));
            }
            continue;
        }
        let Some((name, value)) = token.split_once('=') else {
            return Err(err(format!(
                "-d {spec}: token `{token}` has no value: use name=value (incomplete drivespec)"
            )));
        };
        match name {
            "key" => {
                if key.replace(value.to_string()).is_some() {
                    return Err(err(format!("-d {spec}: key already given")));
                }
            }
            "hostpath" => {
                if hostpath.replace(value.to_string()).is_some() {
                    return Err(err(format!("-d {spec}: hostpath already given")));
                }
            }
            "size" => {
                if size.is_some() {
                    return Err(err(format!("-d {spec}: size already given")));
                }
                if disklabel.is_some() {
                    // The reference lets the label silently override; we refuse the mix.
                    return Err(err(format!("-d {spec}: disklabel needs to be used alone")));
                }
                if value == "host" {
                    if offset.is_some() {
                        return Err(err(format!(
                            "-d {spec}: cannot specify offset with size=host"
                        )));
                    }
                    size = Some(Size::Host);
                } else {
                    size = Some(Size::Bytes(strsuftoll("size", value)?));
                }
            }
            "offset" => {
                if offset.is_some() {
                    return Err(err(format!("-d {spec}: offset already given")));
                }
                if size == Some(Size::Host) {
                    return Err(err(format!(
                        "-d {spec}: cannot specify offset with size=host"
                    )));
                }
                if disklabel.is_some() {
                    return Err(err(format!("-d {spec}: disklabel needs to be used alone")));
                }
                offset = Some(strsuftoll("offset", value)?);
            }
            "disklabel" => {
                if size.is_some() || offset.is_some() || disklabel.is_some() {
                    return Err(err(format!("-d {spec}: disklabel needs to be used alone")));
                }
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(c @ 'a'..='z'), None) => disklabel = Some(c),
                    _ => {
                        return Err(err(format!(
                            "-d {spec}: invalid label part `{value}`: give one letter a-z"
                        )))
                    }
                }
            }
            "type" => {
                if etfs_type.is_some() {
                    return Err(err(format!("-d {spec}: type already specified")));
                }
                etfs_type = Some(match value {
                    "blk" => EtfsType::Block,
                    "chr" => EtfsType::Char,
                    "reg" => EtfsType::Regular,
                    other => {
                        return Err(err(format!(
                            "-d {spec}: invalid type {other}: use blk, chr or reg"
                        )))
                    }
                });
            }
            other => {
                return Err(err(format!(
                    "-d {spec}: invalid dtoken `{other}`: known tokens are key, hostpath, size, \
                     offset, disklabel, type, and the word module"
                )))
            }
        }
    }
    if module {
        if etfs_type.is_some_and(|t| t != EtfsType::Regular) {
            return Err(err(format!(
                "-d {spec}: a module key is a regular file: drop type= or use type=reg"
            )));
        }
        if size.is_some() || offset.is_some() || disklabel.is_some() {
            return Err(err(format!(
                "-d {spec}: a module key maps the whole host file: drop size=, offset= and \
                 disklabel="
            )));
        }
        etfs_type = Some(EtfsType::Regular);
    }
    let etfs_type = etfs_type.unwrap_or(EtfsType::Block);
    let (Some(key), Some(hostpath)) = (key, hostpath) else {
        return Err(err(format!(
            "-d {spec}: incomplete drivespec: key and hostpath are required"
        )));
    };
    if size.is_none() && disklabel.is_none() && etfs_type != EtfsType::Regular {
        return Err(err(format!(
            "-d {spec}: incomplete drivespec: give size= (or size=host) or disklabel="
        )));
    }
    if key.is_empty() || hostpath.is_empty() {
        return Err(err(format!(
            "-d {spec}: incomplete drivespec: empty key or hostpath"
        )));
    }
    Ok(DriveSpec {
        key,
        hostpath,
        size,
        offset: offset.unwrap_or(0),
        disklabel,
        etfs_type,
        module,
    })
}

/// `strsuftoll(3)`: leading blanks, digits, an optional multiplier (`b` 512, `k` 1024,
/// `m` 2^20, `g` 2^30, `t` 2^40, `w` 4), then end or `x`/`*` and another such number.
/// The result must fit in 0…`LLONG_MAX`.
pub fn strsuftoll(what: &str, value: &str) -> Result<u64, DriveSpecError> {
    let illegal = || err(format!("-d {what} `{value}': illegal number"));
    let too_large = || err(format!("-d {what}: Result too large"));
    let mut total: u64 = 1;
    for (i, factor) in value.split(['x', '*']).enumerate() {
        let factor = if i == 0 {
            factor.trim_start_matches([' ', '\t'])
        } else {
            factor
        };
        let digits_end = factor.bytes().take_while(u8::is_ascii_digit).count();
        if digits_end == 0 {
            return Err(illegal());
        }
        let n: u64 = factor[..digits_end].parse().map_err(|_| too_large())?;
        let mult: u64 = match &factor[digits_end..] {
            "" => 1,
            "b" => 512,
            "k" => 1 << 10,
            "m" => 1 << 20,
            "g" => 1 << 30,
            "t" => 1 << 40,
            "w" => 4,
            _ => return Err(illegal()),
        };
        let n = n.checked_mul(mult).ok_or_else(too_large)?;
        total = total.checked_mul(n).ok_or_else(too_large)?;
    }
    if total > i64::MAX as u64 {
        return Err(too_large());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_example() {
        let d = parse("key=/dev/dk,hostpath=dk.img,size=1g").unwrap();
        assert_eq!(d.key, "/dev/dk");
        assert_eq!(d.hostpath, "dk.img");
        assert_eq!(d.size, Some(Size::Bytes(1 << 30)));
        assert_eq!(d.offset, 0);
        assert_eq!(d.etfs_type, EtfsType::Block);
    }

    #[test]
    fn all_tokens() {
        let d = parse("key=/k,hostpath=/tmp/h,size=2x16k,offset=1m,type=chr").unwrap();
        assert_eq!(d.size, Some(Size::Bytes(32 << 10)));
        assert_eq!(d.offset, 1 << 20);
        assert_eq!(d.etfs_type, EtfsType::Char);
        let d = parse("key=/k,hostpath=h,size=host,type=reg").unwrap();
        assert_eq!(d.size, Some(Size::Host));
        let d = parse("key=/k,hostpath=h,disklabel=e").unwrap();
        assert_eq!(d.disklabel, Some('e'));
        // type=reg needs no size (the reference then maps a window of size 0).
        assert_eq!(parse("key=/k,hostpath=h,type=reg").unwrap().size, None);
        assert!(!parse("key=/k,hostpath=h,type=reg").unwrap().module);
    }

    #[test]
    fn module_keys() {
        for spec in [
            "key=/stand/x.so,hostpath=x.so,module",
            "module,key=/stand/x.so,hostpath=x.so,type=reg",
        ] {
            let d = parse(spec).unwrap();
            assert!(d.module, "{spec}");
            assert_eq!(d.etfs_type, EtfsType::Regular, "{spec}");
            assert_eq!((d.size, d.offset, d.disklabel), (None, 0, None), "{spec}");
        }
        for (spec, want) in [
            ("key=/k,hostpath=h,module,module", "module already given"),
            ("key=/k,hostpath=h,module,type=blk", "is a regular file"),
            ("key=/k,hostpath=h,type=chr,module", "is a regular file"),
            ("key=/k,hostpath=h,module,size=1m", "whole host file"),
            ("key=/k,hostpath=h,module,offset=512", "whole host file"),
            ("key=/k,hostpath=h,module,disklabel=a", "whole host file"),
            ("key=/k,hostpath=h,module=yes", "invalid dtoken `module`"),
            ("key=/k,hostpath=h,modules", "has no value"),
        ] {
            let e = parse(spec).unwrap_err();
            assert!(e.0.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn strsuftoll_syntax() {
        assert_eq!(strsuftoll("size", "512").unwrap(), 512);
        assert_eq!(strsuftoll("size", "  3b").unwrap(), 1536);
        assert_eq!(strsuftoll("size", "2w").unwrap(), 8);
        assert_eq!(strsuftoll("size", "1t").unwrap(), 1 << 40);
        assert_eq!(strsuftoll("size", "4*2k").unwrap(), 8192);
        assert_eq!(strsuftoll("size", "0").unwrap(), 0);
        for bad in ["", "k", "1q", "1kk", "1x", "x1", "-1", "1 k"] {
            assert!(
                strsuftoll("size", bad)
                    .unwrap_err()
                    .0
                    .contains("illegal number"),
                "{bad}"
            );
        }
        assert!(strsuftoll("size", "8388608t")
            .unwrap_err()
            .0
            .contains("too large"));
        assert!(strsuftoll("size", "99999999999999999999")
            .unwrap_err()
            .0
            .contains("too large"));
    }

    #[test]
    fn errors_name_the_token() {
        let cases = [
            ("key=a,key=b,hostpath=h,size=1", "key already given"),
            (
                "key=a,hostpath=h,hostpath=i,size=1",
                "hostpath already given",
            ),
            ("key=a,hostpath=h,size=1,size=2", "size already given"),
            (
                "key=a,hostpath=h,size=host,offset=1",
                "cannot specify offset with size=host",
            ),
            (
                "key=a,hostpath=h,offset=1,size=host",
                "cannot specify offset with size=host",
            ),
            (
                "key=a,hostpath=h,size=1,offset=1,offset=2",
                "offset already given",
            ),
            (
                "key=a,hostpath=h,size=1,disklabel=a",
                "disklabel needs to be used alone",
            ),
            ("key=a,hostpath=h,disklabel=ab", "invalid label part"),
            ("key=a,hostpath=h,disklabel=A", "invalid label part"),
            (
                "key=a,hostpath=h,size=1,type=blk,type=chr",
                "type already specified",
            ),
            ("key=a,hostpath=h,size=1,type=disk", "invalid type disk"),
            (
                "key=a,hostpath=h,size=1,colour=red",
                "invalid dtoken `colour`",
            ),
            ("hostpath=h,size=1", "incomplete drivespec"),
            ("key=a,size=1", "incomplete drivespec"),
            ("key=a,hostpath=h", "incomplete drivespec"),
            ("key=a,hostpath=h,size", "token `size` has no value"),
            ("key=a,hostpath=h,size=1z", "illegal number"),
        ];
        for (spec, want) in cases {
            let e = parse(spec).unwrap_err();
            assert!(e.0.contains(want), "{spec}: {e}");
        }
    }
}
