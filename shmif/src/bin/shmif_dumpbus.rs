//! `shmif_dumpbus [-h] [-p pcapfile] buspath` — prints a shmif bus's header and packets
//! and, with `-p`, writes them to a pcap file (`-p -` writes the pcap to standard output
//! and the listing to standard error), as NetBSD's shmif_dumpbus(1).

use std::io::Write;
use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: shmif_dumpbus [-h] [-p pcapfile] buspath");
    std::process::exit(1)
}

fn main() {
    let mut hflag = false;
    let mut pcap: Option<String> = None;
    let mut path: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" => hflag = true,
            "-p" => pcap = Some(args.next().unwrap_or_else(|| usage())),
            s if s.starts_with("-p") => pcap = Some(s[2..].to_string()),
            s if s.starts_with('-') && s.len() > 1 => usage(),
            _ if path.is_some() => usage(),
            _ => path = Some(PathBuf::from(a)),
        }
    }
    let Some(path) = path else { usage() };
    let bus = shmif::Bus::open_readonly(&path).unwrap_or_else(|e| {
        eprintln!("shmif_dumpbus: {}: {e}", path.display());
        std::process::exit(1)
    });
    let h = bus.header();
    if h.magic != shmif::MAGIC {
        eprintln!("shmif_dumpbus: {} not a shmif bus", path.display());
        std::process::exit(1);
    }
    if h.version != shmif::VERSION && h.version != 2 {
        eprintln!(
            "shmif_dumpbus: bus version {}, program {}",
            h.version,
            shmif::VERSION
        );
        std::process::exit(1);
    }
    let to_stdout = pcap.as_deref() == Some("-");
    let mut listing: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let _ = writeln!(
        listing,
        "bus version {}, lock: {}, generation: {}, firstoff: 0x{:04x}, lastoff: 0x{:04x}",
        h.version, h.lock, h.generation, h.first, h.last
    );
    if hflag {
        return;
    }
    let packets = bus.packets().unwrap_or_else(|e| {
        eprintln!("shmif_dumpbus: {}: {e}", path.display());
        std::process::exit(1)
    });
    for (i, p) in packets.iter().enumerate() {
        let _ = writeln!(
            listing,
            "packet {i}, offset 0x{:04x}, length 0x{:04x}, ts {}/{:06}",
            p.offset,
            p.frame.len(),
            p.sec,
            p.usec
        );
    }
    if let Some(file) = pcap {
        let r = if to_stdout {
            shmif::pcap::write(&mut std::io::stdout().lock(), &packets)
        } else {
            std::fs::File::create(&file)
                .and_then(|f| shmif::pcap::write(&mut std::io::BufWriter::new(f), &packets))
        };
        if let Err(e) = r {
            eprintln!("shmif_dumpbus: cannot write pcap dump file {file}: {e}");
            std::process::exit(1);
        }
    }
}
