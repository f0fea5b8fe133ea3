//! The transcript every oracle probe writes: one line per step, `name: ok[ value]`,
//! `name: errno N` or `name: failed (why)`, so that NetBSD's answers can be recorded once
//! and replayed against ours. `ORACLE_TRACE=1` echoes each line as it is made. Probes add
//! their own step kinds in `impl Transcript` blocks of their own.
#![allow(dead_code)] // each probe uses what it needs

use client::Client;

/// A probe's transcript.
#[derive(Default)]
pub struct Transcript(pub Vec<String>);

impl Transcript {
    /// One step: its result, shown with `show` when it succeeded.
    pub fn step<T>(&mut self, name: &str, r: client::Result<T>, show: impl FnOnce(T) -> String) {
        let line = match r {
            Ok(v) => {
                let v = show(v);
                match v.is_empty() {
                    true => format!("{name}: ok"),
                    false => format!("{name}: ok {v}"),
                }
            }
            Err(e) => match e.errno() {
                Some(n) => format!("{name}: errno {n}"),
                None => format!("{name}: failed ({e})"),
            },
        };
        if std::env::var_os("ORACLE_TRACE").is_some() {
            eprintln!("{line}");
        }
        self.0.push(line);
    }

    /// One step whose success value is not shown.
    pub fn unit<T>(&mut self, name: &str, r: client::Result<T>) {
        self.step(name, r, |_| String::new());
    }
}

/// System call `nr` whose first argument is the NUL-terminated `path` (copied in from the
/// call's memory), then `rest`; its first return value.
pub fn path_syscall(c: &mut Client, nr: u32, path: &str, rest: &[u64]) -> client::Result<i64> {
    let p = std::ffi::CString::new(path).expect("no NUL in probe paths");
    let p = p.as_bytes_with_nul();
    let mut args = vec![client::addr_of(p)];
    args.extend_from_slice(rest);
    c.syscall(nr, &args, &mut [client::Buf::In(p)])
        .map(|r| r[0])
}

/// A connection to the server at `url`, named `name` (the probe cannot go on without it).
pub fn connect(url: &str, name: &str) -> Client {
    Client::connect_named(url, name).unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// Checks our transcript against NetBSD's: every line the same, or a listed difference
/// `(step, our line, why)` whose step begins NetBSD's line (`step:`) and whose line is ours,
/// where a `*` in it stands for one word; every listed difference must still be seen (a fixed
/// one is taken off the list). Panics with every line that differs otherwise.
pub fn assert_as_netbsd(ours: &[String], netbsd: &str, differences: &[(&str, &str, &str)]) {
    let theirs: Vec<&str> = netbsd.lines().collect();
    let listed = |o: &str, n: &str| {
        differences
            .iter()
            .any(|d| n.starts_with(&format!("{}:", d.0)) && word_match(d.1, o))
    };
    let bad: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .enumerate()
        .filter(|(_, (o, n))| o.as_str() != **n && !listed(o, n))
        .map(|(i, (o, n))| format!("line {}: ours `{o}`, NetBSD `{n}`", i + 1))
        .collect();
    assert_eq!(ours.len(), theirs.len(), "transcript lengths: {ours:#?}");
    assert!(
        bad.is_empty(),
        "differences from NetBSD:\n{}",
        bad.join("\n")
    );
    for (step, line, why) in differences {
        assert!(
            ours.iter().any(|o| word_match(line, o)),
            "documented difference `{step}` ({why}) no longer seen"
        );
    }
}

/// Whether `line` is `pattern`, where each `*` of the pattern stands for one word (a run of
/// characters without a space).
fn word_match(pattern: &str, line: &str) -> bool {
    let (p, l): (Vec<&str>, Vec<&str>) = (pattern.split(' ').collect(), line.split(' ').collect());
    p.len() == l.len() && p.iter().zip(&l).all(|(a, b)| *a == "*" || a == b)
}
