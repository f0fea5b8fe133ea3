//! pjdfstest (crates.io `pjdfstest`, `cargo install pjdfstest`) through rump_fuse on a tmpfs
//! and an FFS mount of the server, with `map_creds` so the suite's permission tests are
//! decided by the rump kernel. The set of failing tests must equal the checked-in list
//! (`pjdfstest.expected`, each with its reason): a new failure and a new pass both fail.
//!
//! The binary is `$PJDFSTEST`, else `pjdfstest` on `PATH` or in `~/.cargo/bin`. Without it
//! the test says so and passes, except under CI (`CI` set), which installs it.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::{have_fuse, Backing, Mount, Server};

fn pjdfstest() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PJDFSTEST") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("pjdfstest"))
        .find(|p| p.exists())
}

/// The expected failures for `fs` ("tmpfs" or "ffs"): lines `name  reason`, or
/// `fs:name  reason` for one file system only.
fn expected(fs: &str) -> BTreeSet<String> {
    let text = include_str!("pjdfstest.expected");
    let mut out = BTreeSet::new();
    for l in text.lines() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let name = l.split_whitespace().next().unwrap();
        match name.split_once(':') {
            Some((only, n)) if !n.starts_with(':') && !only.contains("::") => {
                if only == fs {
                    out.insert(n.to_string());
                }
            }
            _ => {
                out.insert(name.to_string());
            }
        }
        assert!(
            l.split_whitespace().nth(1).is_some(),
            "pjdfstest.expected: {name} has no reason"
        );
    }
    out
}

fn run(bin: &PathBuf, backing: Backing) {
    let fs = match backing {
        Backing::Tmpfs => "tmpfs",
        Backing::Ffs => "ffs",
    };
    let srv = Server::start(backing);
    let m = Mount::new(&srv.url, "map_creds");
    assert!(common::mounted(&m.mnt));
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pjdfstest.toml");
    let out = Command::new(bin)
        .args(["-c", conf, "-p"])
        .arg(&m.mnt)
        .current_dir(&m.mnt)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut failed = BTreeSet::new();
    let mut passed = 0;
    for l in text.lines() {
        let mut w = l.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some(name), Some("FAILED"), None) => {
                failed.insert(name.to_string());
            }
            (Some(_), Some("ok"), None) => passed += 1,
            _ => {}
        }
    }
    let summary = text
        .lines()
        .find(|l| l.starts_with("Summary:"))
        .unwrap_or("no summary")
        .to_string();
    eprintln!("pjdfstest on rump {fs} through rump_fuse: {summary}");
    assert!(
        passed > 300,
        "pjdfstest barely ran on {fs}: {summary}\n{text}"
    );
    let want = expected(fs);
    let new_failures: Vec<_> = failed.difference(&want).collect();
    let new_passes: Vec<_> = want.difference(&failed).collect();
    assert!(
        new_failures.is_empty() && new_passes.is_empty(),
        "{fs}: failures not in pjdfstest.expected: {new_failures:?}\n\
         listed failures that now pass (remove them): {new_passes:?}\n{summary}"
    );
    assert!(common::mounted(&m.mnt), "the mount survived the suite");
}

#[test]
fn pjdfstest_on_tmpfs_and_ffs() {
    if !have_fuse() {
        return;
    }
    let Some(bin) = pjdfstest() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install pjdfstest (.ci/run: cargo install pjdfstest)"
        );
        eprintln!("SKIPPED: pjdfstest is not installed (cargo install pjdfstest)");
        return;
    };
    run(&bin, Backing::Tmpfs);
    run(&bin, Backing::Ffs);
}
