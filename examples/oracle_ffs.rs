//! Prints the FFS and block-device probe's transcript (see tests/oracle/ffs.rs) for the
//! server binary EXE, which the probe starts itself (several times, in the foreground):
//! `cargo run --example oracle_ffs -- /work/ref/rump_server > tests/oracle/ffs.netbsd`.

#[path = "../tests/oracle/ffs.rs"]
mod ffs_probe;
#[path = "../tests/oracle/transcript.rs"]
mod transcript;

fn main() {
    let exe = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: oracle_ffs RUMP_SERVER");
        std::process::exit(1)
    });
    let dir = std::env::temp_dir().join(format!("oracle_ffs.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let t = ffs_probe::run(std::path::Path::new(&exe), &dir);
    let _ = std::fs::remove_dir_all(&dir);
    for line in t.0 {
        println!("{line}");
    }
}
