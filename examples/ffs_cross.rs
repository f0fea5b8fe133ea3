//! FFS images across two servers (see tests/oracle/cross.rs): for UFS1 and UFS2, server A
//! writes the workload's tree on a fresh image and lists it, server B reads the image back
//! and lists it, and the other way round; prints each comparison and exits 1 if any differs.
//! `cargo run --example ffs_cross -- target/debug/rump_server /work/ref/rump_server`.
//! With `CROSS_KEEP=DIR`, B's images (written by B) and B's listings are kept in DIR as
//! `cross-ufsN.img` and `cross-ufsN.listing` (scripts/ffs_cross.sh records NetBSD's).

#[path = "../tests/oracle/cross.rs"]
mod cross;
#[allow(dead_code)] // the FFS probe's launcher and image maker only
#[path = "../tests/oracle/ffs.rs"]
mod ffs;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

use std::path::{Path, PathBuf};

fn compare(what: &str, writer: &[String], reader: &[String]) -> bool {
    if writer == reader {
        println!("{what}: same ({} lines)", writer.len());
        return true;
    }
    println!("{what}: DIFFERENT");
    for w in writer.iter().filter(|w| !reader.contains(w)) {
        println!("  writer only: {w}");
    }
    for r in reader.iter().filter(|r| !writer.contains(r)) {
        println!("  reader only: {r}");
    }
    false
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [a, b] = &args[..] else {
        eprintln!("usage: ffs_cross SERVER-A SERVER-B");
        std::process::exit(2)
    };
    let dir = std::env::temp_dir().join(format!("ffs_cross.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let keep = std::env::var_os("CROSS_KEEP").map(PathBuf::from);
    let mut la = ffs::Launcher::new(Path::new(a), &dir.join("a"));
    let mut lb = ffs::Launcher::new(Path::new(b), &dir.join("b"));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    let mut ok = true;
    for ufs in [1, 2] {
        let img = dir.join(format!("ab-ufs{ufs}.img"));
        let w = cross::write_image(&mut la, &img, ufs);
        let r = cross::read_image(&mut lb, &img);
        ok &= compare(&format!("UFS{ufs} written by A, read by B"), &w, &r);
        let img = dir.join(format!("ba-ufs{ufs}.img"));
        let w = cross::write_image(&mut lb, &img, ufs);
        let r = cross::read_image(&mut la, &img);
        ok &= compare(&format!("UFS{ufs} written by B, read by A"), &w, &r);
        if let Some(k) = &keep {
            std::fs::create_dir_all(k).unwrap();
            std::fs::copy(&img, k.join(format!("cross-ufs{ufs}.img"))).unwrap();
            std::fs::write(
                k.join(format!("cross-ufs{ufs}.listing")),
                w.join("\n") + "\n",
            )
            .unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(if ok { 0 } else { 1 })
}
