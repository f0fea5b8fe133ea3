//! Tidy checks run as tests: every source file opens with a `//!` line, lines fit 100 columns,
//! and the kernel names none of the runtime, socket or wire-protocol crates.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read");
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn tidy() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10);
    // Spelled in pieces so this file does not trip its own check.
    let banned = [
        ["io", "_uring"].concat(),
        ["Unix", "Stream"].concat(),
        ["sp", "::"].concat(),
    ];
    for (name, text) in &files {
        assert!(
            text.starts_with("//!"),
            "{name}: first line must be a //! line"
        );
        for (i, line) in text.lines().enumerate() {
            assert!(
                line.chars().count() <= 100,
                "{name}:{}: longer than 100 columns",
                i + 1
            );
            for b in &banned {
                assert!(!line.contains(b.as_str()), "{name}:{}: names {b}", i + 1);
            }
        }
    }
}

/// The VFS and the system calls name no concrete file system: they call the interfaces of
/// `vfs/ops.rs`, and FFS is named only in `fs/ffs/` (ARCHITECTURE.md's invariant).
#[test]
fn file_systems_plug_in() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let ffs_dir = src.join("fs").join("ffs").display().to_string();
    let this = src.join("tidy.rs").display().to_string();
    // Spelled in pieces so this file does not trip its own check.
    let ffs_names = [
        ["fs::", "ffs"].concat(),
        ["Body::", "Ffs"].concat(),
        ["is_", "ffs"].concat(),
    ];
    let concrete = [
        ["crate::", "fs::"].concat(),
        ["ffs", "::"].concat(),
        ["tmpfs", "::"].concat(),
        ["rumpfs", "::"].concat(),
        ["etfs", "::"].concat(),
        ["Fs", "Kind"].concat(),
    ];
    let generic: Vec<String> = ["vfs", "sys"]
        .iter()
        .map(|d| format!("{}/", src.join(d).display()))
        .collect();
    for (name, text) in &files {
        if name.starts_with(&ffs_dir) || *name == this {
            continue;
        }
        let in_generic = generic.iter().any(|g| name.starts_with(g.as_str()));
        // Test modules may set up kernels with a chosen list of file systems.
        let is_test = name.ends_with("tests.rs");
        for (i, line) in text.lines().enumerate() {
            for b in &ffs_names {
                assert!(!line.contains(b.as_str()), "{name}:{}: names {b}", i + 1);
            }
            if in_generic && !is_test && !line.trim_start().starts_with("//") {
                for b in &concrete {
                    assert!(!line.contains(b.as_str()), "{name}:{}: names {b}", i + 1);
                }
            }
        }
    }
}
