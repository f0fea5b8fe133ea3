//! The `rump_server` / `rump_allserver` command line: exactly the man page's synopsis.
//!
//! `rump_server [-sv] [-c ncpu] [-d drivespec] [-l library] [-m module] [-r total_ram] url`
//!
//! Parsing is done by clap, which also accepts the glued forms (`-lrumpvfs`, `-c2`, `-sv`).
//! Errors print clap's diagnostic and NetBSD's usage line and exit with status 1, as the
//! reference's `getopt` loop does.

use clap::{ArgAction, Parser};

use crate::components::{self, Component};
use crate::drivespec::{self, DriveSpec};

/// The usage line NetBSD prints (it omits `-r` and `-v`, so do we, for compatibility).
pub fn usage_line(progname: &str) -> String {
    format!("usage: {progname} [-s] [-c ncpu] [-d drivespec] [-l libs] [-m modules] bindurl")
}

#[derive(Parser, Debug)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    about = "rump kernel server",
    version
)]
struct RawArgs {
    /// Do not detach from the terminal.
    #[arg(short = 's', action = ArgAction::SetTrue)]
    foreground: bool,
    /// Set bootverbose.
    #[arg(short = 'v', action = ArgAction::SetTrue)]
    verbose: bool,
    /// Number of virtual CPUs (io_uring loop threads); `host` or a number.
    #[arg(short = 'c', value_name = "ncpu")]
    ncpu: Option<String>,
    /// Map a host file into the rump namespace (repeatable).
    #[arg(short = 'd', value_name = "drivespec", action = ArgAction::Append)]
    drives: Vec<String>,
    /// Component library to load before boot (repeatable).
    #[arg(short = 'l', value_name = "library", action = ArgAction::Append)]
    libs: Vec<String>,
    /// Kernel module to load after boot (repeatable).
    #[arg(short = 'm', value_name = "module", action = ArgAction::Append)]
    modules: Vec<String>,
    /// Kernel memory limit (k, m, g suffixes).
    #[arg(short = 'r', value_name = "total_ram")]
    total_ram: Option<String>,
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// Print the program's name and version.
    #[arg(long = "version", action = ArgAction::Version)]
    version: Option<bool>,
    /// Where to listen: unix://path or tcp://addr:port/
    url: String,
}

/// Which program was run: the two servers differ only in their built-in components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `rump_server`: the minimal set plus what `-l` names.
    Minimal,
    /// `rump_allserver`: every built-in component.
    All,
}

/// The validated command line.
#[derive(Debug)]
pub struct Options {
    pub flavor: Flavor,
    pub foreground: bool,
    pub verbose: bool,
    /// Number of loop threads (virtual CPUs).
    pub ncpu: usize,
    pub drives: Vec<DriveSpec>,
    pub components: Vec<Component>,
    /// `-l` arguments that are external component libraries (existing files).
    pub external_libs: Vec<std::path::PathBuf>,
    pub modules: Vec<String>,
    pub total_ram_bytes: Option<u64>,
    pub url: String,
}

/// A command-line error: the message, then the usage line, exit status 1.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    /// Print the usage line after the message (NetBSD does for option errors).
    pub usage: bool,
    /// Exit status (1 for everything NetBSD's argument handling rejects; 0 for `--help`).
    pub status: i32,
}

impl CliError {
    fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            usage: true,
            status: 1,
        }
    }
    fn plain(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            usage: false,
            status: 1,
        }
    }
}

/// Parses `argv` (including the program name) into validated options.
pub fn parse<I, T>(flavor: Flavor, progname: &str, argv: I) -> Result<Options, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches};
    // The program's name in `--help` and `--version`, as it was run.
    let progname = progname.to_string();
    let cmd = RawArgs::command()
        .bin_name(progname.clone())
        .display_name(progname.clone())
        .override_usage(format!(
            "{progname} [-sv] [-c ncpu] [-d drivespec] [-l library] [-m module] [-r total_ram] url"
        ));
    let parsed = cmd
        .try_get_matches_from(argv)
        .and_then(|m| RawArgs::from_arg_matches(&m));
    let raw = match parsed {
        Ok(raw) => raw,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                return Err(CliError {
                    message: e.to_string(),
                    usage: false,
                    status: 0,
                });
            }
            // clap's own diagnostic (like getopt's), then NetBSD's usage line.
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .to_string();
            return Err(CliError::usage(first));
        }
    };
    let ncpu = match raw.ncpu.as_deref() {
        None | Some("host") => host_cpus(),
        Some(s) => parse_ncpu(s)?,
    };
    let mut drives = Vec::with_capacity(raw.drives.len());
    for spec in &raw.drives {
        drives.push(drivespec::parse(spec).map_err(|e| CliError::usage(e.to_string()))?);
    }
    let total_ram_bytes = match raw.total_ram.as_deref() {
        None => None,
        Some(s) => Some(parse_total_ram(s).map_err(CliError::plain)?),
    };
    let components = components::resolve(flavor, &raw.libs).map_err(|e| CliError {
        message: e.to_string(),
        usage: false,
        status: 1,
    })?;
    let _ = progname;
    Ok(Options {
        flavor,
        foreground: raw.foreground,
        verbose: raw.verbose,
        ncpu,
        drives,
        components,
        external_libs: components::externals(&raw.libs),
        modules: raw.modules,
        total_ram_bytes,
        url: raw.url,
    })
}

/// The host's CPU count: the man page's default for `-c`.
pub fn host_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Upper bound on `-c`: one pinned thread per virtual CPU, so keep it sane.
pub const NCPU_MAX: usize = 1024;

fn parse_ncpu(s: &str) -> Result<usize, CliError> {
    match s.parse::<usize>() {
        Ok(n) if (1..=NCPU_MAX).contains(&n) => Ok(n),
        _ => Err(CliError::usage(format!(
            "-c {s}: the number of CPUs must be `host` or an integer from 1 to {NCPU_MAX}"
        ))),
    }
}

/// Minimum `-r`: NetBSD reserves 2 × MAXPHYS (128 KiB) for the pager and panics below it.
pub const TOTAL_RAM_MIN_BYTES: u64 = 128 * 1024;

/// `-r total_ram`: a decimal number with an optional `k`, `m` or `g` suffix (powers of 1024),
/// as NetBSD's `RUMP_MEMLIMIT`; the reference panics at boot on anything else, we refuse it.
pub fn parse_total_ram(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "-r {s}: invalid memory limit: give a number of bytes with an optional k, m or g \
             suffix (for example 16m), more than 128k"
        )
    };
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(mult).ok_or_else(bad)?;
    if bytes <= TOTAL_RAM_MIN_BYTES {
        return Err(bad());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, CliError> {
        let mut v = vec!["rump_server"];
        v.extend_from_slice(args);
        parse(Flavor::Minimal, "rump_server", v)
    }

    #[test]
    fn minimal_and_glued_forms() {
        let o = p(&["-s", "-c2", "unix://sock"]).unwrap();
        assert!(o.foreground);
        assert_eq!(o.ncpu, 2);
        assert_eq!(o.url, "unix://sock");
        let o = p(&["-sv", "-c", "1", "tcp://127.0.0.1:1234/"]).unwrap();
        assert!(o.foreground && o.verbose);
        assert_eq!(o.ncpu, 1);
        let o = p(&["-lrumpkern_sysproxy", "-l", "librump.so", "unix://x"]).unwrap();
        assert!(!o.components.is_empty());
    }

    #[test]
    fn default_ncpu_is_host_count() {
        let o = p(&["unix://sock"]).unwrap();
        assert_eq!(o.ncpu, host_cpus());
        assert_eq!(p(&["-c", "host", "unix://s"]).unwrap().ncpu, host_cpus());
    }

    /// `--version` and `--help` name the program as it was run, and exit 0.
    #[test]
    fn version_and_help_name_the_program() {
        for prog in ["rump_server", "rump_allserver"] {
            let e = parse(Flavor::Minimal, prog, [prog, "--version"]).unwrap_err();
            assert_eq!(e.status, 0);
            assert_eq!(
                e.message.trim(),
                format!("{prog} {}", env!("CARGO_PKG_VERSION"))
            );
            let e = parse(Flavor::Minimal, prog, [prog, "--help"]).unwrap_err();
            assert_eq!(e.status, 0);
            assert!(
                e.message.contains(&format!("Usage: {prog} [-sv]")),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn usage_errors_exit_1() {
        for args in [
            &[][..],
            &["-x", "unix://s"],
            &["-c"],
            &["a", "b"],
            &["-c", "0", "u://"],
        ] {
            let e = p(args).unwrap_err();
            assert_eq!(e.status, 1, "{args:?}");
            assert!(e.usage, "{args:?}");
        }
        // -h is not an option of NetBSD's rump_server.
        assert_eq!(p(&["-h", "unix://s"]).unwrap_err().status, 1);
    }

    #[test]
    fn total_ram_suffixes() {
        assert_eq!(parse_total_ram("16m").unwrap(), 16 << 20);
        assert_eq!(parse_total_ram("1g").unwrap(), 1 << 30);
        assert_eq!(parse_total_ram("200k").unwrap(), 200 << 10);
        assert_eq!(parse_total_ram("1000000").unwrap(), 1_000_000);
        for bad in [
            "",
            "m",
            "16M",
            "16mb",
            "128k",
            "-5",
            "99999999999999999999g",
            "1.5g",
        ] {
            assert!(parse_total_ram(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_options_accumulate() {
        let o = p(&["-m", "/a.kmod", "-m/b.kmod", "unix://s"]).unwrap();
        assert_eq!(
            o.modules,
            vec!["/a.kmod".to_string(), "/b.kmod".to_string()]
        );
        let o = p(&[
            "-d",
            "key=/dk,hostpath=x,size=1m",
            "-dkey=/e,hostpath=y,size=2k",
            "unix://s",
        ])
        .unwrap();
        assert_eq!(o.drives.len(), 2);
        assert_eq!(o.drives[1].size, Some(drivespec::Size::Bytes(2048)));
    }
}
