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
