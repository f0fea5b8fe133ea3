//! Prepares a rump server for `rump_fuse` tests and benchmarks: mounts tmpfs or FFS inside it.
//!
//! `rump_prepare URL tmpfs DIR [SIZE_BYTES]` — mkdir DIR, mount tmpfs there.
//! `rump_prepare URL ffs DEV DIR` — mkdir DIR, mount the FFS block device DEV (an etfs key).

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: rump_prepare URL tmpfs DIR [SIZE] | rump_prepare URL ffs DEV DIR";
    if a.len() < 4 {
        eprintln!("{usage}");
        std::process::exit(1);
    }
    let mut c = client::Client::connect_named(&a[1], "rump_prepare").unwrap_or_else(|e| {
        eprintln!("rump_prepare: {}: {e}", a[1]);
        std::process::exit(1)
    });
    let r = match (a[2].as_str(), a.len()) {
        ("tmpfs", 4 | 5) => {
            let size: i64 = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
            let _ = c.mkdir(&a[3], 0o755);
            let args = client::fs::tmpfs_args(size, 0, 0, 0, 0o755);
            c.mount_tmpfs(&a[3], 0, &args)
        }
        ("ffs", 5) => {
            let _ = c.mkdir(&a[4], 0o755);
            c.mount_ffs(&a[3], &a[4], 0)
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(1)
        }
    };
    if let Err(e) = r {
        eprintln!("rump_prepare: mount: {e}");
        std::process::exit(1);
    }
}
