//! `rump.halt [-dhn]`: halt the rump kernel named by `RUMP_SERVER` (NetBSD's rump.halt(1)).
//!
//! Connects with the client crate, makes the one reboot(2) call (208) and exits 0 on success;
//! `rump.halt: init failed: …` or `rump.halt: reboot: …` and status 1 otherwise.

use kernel::abi::{RB_DUMP, RB_HALT, RB_NOSYNC};

const USAGE: &str = "usage: rump.halt [-dhn]";

/// Parses `rump.halt`'s arguments (getopt `dhn`, no operands) into reboot flags.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<i32, String> {
    let mut howto = 0u32;
    let mut args = args.into_iter();
    for arg in args.by_ref() {
        if arg == "--" {
            break;
        }
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            return Err(String::new()); // an operand: usage error
        };
        for c in letters.chars() {
            howto |= match c {
                'd' => RB_DUMP,
                'h' => RB_HALT,
                'n' => RB_NOSYNC,
                other => return Err(format!("rump.halt: illegal option -- {other}")),
            };
        }
    }
    if args.next().is_some() {
        return Err(String::new());
    }
    Ok(howto as i32)
}

/// Runs rump.halt; never returns.
pub fn main() -> ! {
    let howto = match parse_args(std::env::args().skip(1)) {
        Ok(h) => h,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            eprintln!("{USAGE}");
            std::process::exit(1);
        }
    };
    let mut client = match client::Client::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rump.halt: init failed: {}", describe(&e));
            std::process::exit(1);
        }
    };
    match client.reboot(howto, None) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("rump.halt: reboot: {}", describe(&e));
            std::process::exit(1);
        }
    }
}

/// An error as err(3) would print it: NetBSD errno numbers by their NetBSD text.
fn describe(e: &client::Error) -> String {
    match e {
        client::Error::Errno(n) => kernel::Errno::from_raw(*n as u16).to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<i32, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        assert_eq!(p(&[]).unwrap(), 0);
        assert_eq!(p(&["-n"]).unwrap(), RB_NOSYNC as i32);
        assert_eq!(p(&["-dh"]).unwrap(), (RB_DUMP | RB_HALT) as i32);
        assert_eq!(p(&["-h", "-n"]).unwrap(), (RB_HALT | RB_NOSYNC) as i32);
        assert_eq!(p(&["--"]).unwrap(), 0);
    }

    #[test]
    fn usage_errors() {
        assert!(p(&["now"]).is_err());
        assert!(p(&["-x"]).unwrap_err().contains("illegal option -- x"));
        assert!(p(&["-n", "x"]).is_err());
        assert!(p(&["-"]).is_err());
    }
}
