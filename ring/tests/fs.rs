//! Host-file I/O through the ring: a seeded differential test against pread/pwrite, EOF
//! handling, sync, and one file shared by all loops.

mod common;

use std::os::unix::fs::FileExt;
use std::sync::{mpsc, Arc};

use common::{recv, start};
use ring::Backend;

both_backends!(
    random_ops_match_pread_pwrite,
    read_exact_at_reports_eof_and_appends,
    one_file_shared_by_every_loop,
);

fn temp_file(name: &str) -> (std::path::PathBuf, std::fs::File) {
    let p = std::env::temp_dir().join(format!("ring-fs-{}-{name}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    (p, f)
}

/// xorshift64*: a small deterministic generator for the differential test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn random_ops_match_pread_pwrite(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (pa, fa) = temp_file(&format!("ring-{b}"));
    let (pb, fb) = temp_file(&format!("std-{b}"));
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let ring_file = ring::File::from_std(fa);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for step in 0..2000 {
            let off = rng.next() % (256 * 1024);
            let len = (rng.next() % 20_000) as usize + 1;
            if rng.next() & 1 == 0 {
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let (r, _) = ring_file.write_all_at(data.clone(), off).await;
                r.unwrap();
                fb.write_all_at(&data, off).unwrap();
            } else {
                let (r, got) = ring_file.read_at(Vec::with_capacity(len), off).await;
                let n = r.unwrap();
                let mut want = vec![0u8; len];
                let m = fb.read_at(&mut want, off).unwrap();
                // Regular files return full reads short of EOF.
                assert_eq!(n, m, "step {step}: read length at {off}+{len}");
                assert_eq!(got, want[..m], "step {step}: bytes at {off}");
            }
        }
        ring_file.sync(false).await.unwrap();
        ring_file.sync(true).await.unwrap();
        tx.send(()).unwrap();
    });
    recv(&rx);
    assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
    let _ = std::fs::remove_file(pa);
    let _ = std::fs::remove_file(pb);
}

fn read_exact_at_reports_eof_and_appends(b: Backend) {
    let Some(rt) = start(b, 1, false) else { return };
    let (p, f) = temp_file(&format!("eof-{b}"));
    f.write_all_at(b"0123456789", 0).unwrap();
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        let f = ring::File::from_std(f);
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"ab");
        let (r, buf) = f.read_exact_at(buf, 4).await;
        r.unwrap();
        let (r, buf2) = f.read_exact_at(Vec::with_capacity(8), 6).await;
        let (r3, b3) = f.read_at(Vec::with_capacity(4), 100).await;
        tx.send((buf, r.unwrap_err().kind(), buf2, r3.unwrap(), b3.len()))
            .unwrap();
    });
    let (buf, kind, buf2, n3, l3) = recv(&rx);
    assert_eq!(buf, b"ab456789");
    assert_eq!(kind, std::io::ErrorKind::UnexpectedEof);
    assert_eq!(buf2, b"6789");
    assert_eq!((n3, l3), (0, 0));
    let _ = std::fs::remove_file(p);
}

fn one_file_shared_by_every_loop(b: Backend) {
    let Some(rt) = start(b, 3, true) else { return };
    let (p, f) = temp_file(&format!("shared-{b}"));
    let file = Arc::new(ring::File::from_std(f));
    let (tx, rx) = mpsc::channel();
    for h in rt.handles() {
        let (file, tx, i) = (file.clone(), tx.clone(), h.index());
        h.spawn(move || async move {
            for block in 0..64u64 {
                let data = vec![i as u8 + 1; 4096];
                let off = (block * 3 + i as u64) * 4096;
                let (r, _) = file.write_all_at(data, off).await;
                r.unwrap();
            }
            tx.send(()).unwrap();
        });
    }
    for _ in 0..3 {
        recv(&rx);
    }
    let all = std::fs::read(&p).unwrap();
    assert_eq!(all.len(), 64 * 3 * 4096);
    for (k, chunk) in all.chunks(4096).enumerate() {
        assert!(chunk.iter().all(|&b| b == (k % 3) as u8 + 1), "block {k}");
    }
    let _ = std::fs::remove_file(p);
}
