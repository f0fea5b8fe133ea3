//! Prints the per-file-system probe's transcript (see tests/oracle/fsconf.rs) for servers
//! started from the given binary: `cargo run --example oracle_fsconf -- /work/ref/rump_server`
//! records NetBSD's answers; `-- target/debug/rump_server` shows ours.

#[allow(dead_code)] // the FFS probe's launcher and image maker only
#[path = "../tests/oracle/ffs.rs"]
mod ffs;
#[path = "../tests/oracle/fsconf.rs"]
mod fsconf;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let exe = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_fsconf SERVER-BINARY");
        std::process::exit(1)
    });
    let dir = std::env::temp_dir().join(format!("oracle-fsconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let t = fsconf::run(std::path::Path::new(&exe), &dir);
    let _ = std::fs::remove_dir_all(&dir);
    for line in t.0 {
        println!("{line}");
    }
}
