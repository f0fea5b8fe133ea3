//! `rump_fsck image` — checks an FFS image read-only: exit 0 when clean, 1 with one finding
//! per line, 2 when the image holds no usable file system.

use ffs::{block_on, check, FileDisk};
use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image] = args.as_slice() else {
        eprintln!("usage: rump_fsck image");
        exit(2);
    };
    let disk = FileDisk::open(image.as_ref(), true).unwrap_or_else(|e| {
        eprintln!("rump_fsck: {image}: {e}");
        exit(2)
    });
    match block_on(check(&disk)) {
        Ok(findings) if findings.is_empty() => {}
        Ok(findings) => {
            for f in &findings {
                println!("{f}");
            }
            exit(1);
        }
        Err(e) => {
            eprintln!("rump_fsck: {image}: {e}");
            exit(2);
        }
    }
}
