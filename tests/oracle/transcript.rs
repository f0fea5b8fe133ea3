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

/// A connection to the server at `url`, named `name` (the probe cannot go on without it).
pub fn connect(url: &str, name: &str) -> Client {
    Client::connect_named(url, name).unwrap_or_else(|e| panic!("connect {url}: {e}"))
}
