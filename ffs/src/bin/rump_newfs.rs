//! `rump_newfs [-O 1|2] [-b bsize] [-f fsize] [-i bytes-per-inode] [-m minfree] [-s size]
//! image` — creates an empty FFS file system in a file (created if missing).

use ffs::{block_on, newfs, FileDisk, NewfsOptions};
use std::process::exit;

const USAGE: &str = "usage: rump_newfs [-O 1|2] [-b bsize] [-f fsize] [-i bytes-per-inode] \
                     [-m minfree] [-s size[k|m|g|t]] image";

/// Parses a size with an optional k/m/g/t suffix (powers of 1024); a bare number is bytes.
fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.chars().last()?.to_ascii_lowercase() {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        'b' => (&s[..s.len() - 1], 512),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn fail(msg: &str) -> ! {
    eprintln!("rump_newfs: {msg}");
    exit(1)
}

fn main() {
    let mut o = NewfsOptions::default();
    let mut image = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value\n{USAGE}")))
        };
        match a.as_str() {
            "-O" => {
                o.ufs2 = match val("-O").as_str() {
                    "1" => false,
                    "2" => true,
                    v => fail(&format!("-O {v}: version must be 1 or 2")),
                }
            }
            "-b" => o.bsize = Some(parse_size(&val("-b")).unwrap_or_else(|| fail("bad -b")) as u32),
            "-f" => o.fsize = Some(parse_size(&val("-f")).unwrap_or_else(|| fail("bad -f")) as u32),
            "-i" => {
                o.density = Some(parse_size(&val("-i")).unwrap_or_else(|| fail("bad -i")) as u32)
            }
            "-m" => o.minfree = val("-m").parse().unwrap_or_else(|_| fail("bad -m")),
            "-s" => o.size = Some(parse_size(&val("-s")).unwrap_or_else(|| fail("bad -s"))),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ if a.starts_with('-') => fail(&format!("unknown option {a}\n{USAGE}")),
            _ if image.is_none() => image = Some(a),
            _ => fail(USAGE),
        }
    }
    let Some(image) = image else { fail(USAGE) };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&image)
        .unwrap_or_else(|e| fail(&format!("{image}: {e}")));
    let mut len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(size) = o.size {
        if size > len {
            file.set_len(size)
                .unwrap_or_else(|e| fail(&format!("{image}: {e}")));
            len = size;
        }
    }
    if len == 0 {
        fail(&format!("{image}: empty; give a size with -s"));
    }
    let disk = FileDisk::from_file(file, len, false);
    match block_on(newfs(&disk, &o)) {
        Ok(l) => {
            let sb = &l.sb;
            println!(
                "{image}: {:.1}MB ({} sectors) block size {}, fragment size {}",
                (sb.size * sb.fsize as u64) as f64 / (1u64 << 20) as f64,
                sb.size * sb.fsize as u64 / 512,
                sb.bsize,
                sb.fsize
            );
            println!(
                "\tusing {} cylinder groups of {:.2}MB, {} blks, {} inodes; FFSv{}",
                sb.ncg,
                (sb.fpg as u64 * sb.fsize as u64) as f64 / (1u64 << 20) as f64,
                sb.fpg / sb.frag,
                sb.ipg,
                if sb.ufs2 { 2 } else { 1 }
            );
        }
        Err(e) => fail(&format!(
            "{image}: cannot create a file system of this size: {e}"
        )),
    }
}
