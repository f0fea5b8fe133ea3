use super::*;
use crate::Watch;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shmif-test.{}.{name}", std::process::id()));
    let _ = std::fs::remove_file(&d);
    d
}

fn frame(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed as usize * 7 + i * 13) as u8)
        .collect()
}

fn recv_all(r: &mut Reader, bus: &Bus) -> Vec<(Vec<u8>, u64)> {
    let mut buf = [0u8; FRAME_MAX];
    let mut out = Vec::new();
    while let Some(got) = r.recv(bus, &mut buf).unwrap() {
        out.push((buf[..got.len].to_vec(), got.sender));
    }
    out
}

#[test]
fn a_new_bus_is_initialised_as_netbsd_does() {
    let p = tmp("new");
    let (bus, mut r) = Bus::open(&p).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), BUS_SIZE as u64);
    let h = bus.header();
    assert_eq!((h.magic, h.version, h.generation), (MAGIC, 0, 0));
    assert_eq!((h.first, h.last, h.lock), (DATA_SIZE, 0, 0));
    // The empty packet at offset 0 is read and skipped: nothing to receive.
    assert!(recv_all(&mut r, &bus).is_empty());
    // The first send wakes (the version word becomes 3) and lands after that empty header.
    bus.send(&frame(1, 60), 9, 1, 2).unwrap();
    let h = bus.header();
    assert_eq!((h.version, h.last), (VERSION, PKTHDR_SIZE));
    assert_eq!(bus.packets().unwrap()[0].offset, 2 * PKTHDR_SIZE);
    let _ = std::fs::remove_file(&p);
}

#[test]
fn frames_go_round_in_order_with_sender_and_time() {
    let p = tmp("order");
    let (bus, mut r) = Bus::open(&p).unwrap();
    for i in 0..5 {
        bus.send(&frame(i, 60 + i as usize), u64::from(i), i, i * 10)
            .unwrap();
    }
    let got = recv_all(&mut r, &bus);
    assert_eq!(got.len(), 5);
    for (i, (f, sender)) in got.iter().enumerate() {
        assert_eq!(f, &frame(i as u32, 60 + i));
        assert_eq!(*sender, i as u64);
    }
    let walk = bus.packets().unwrap();
    assert_eq!(walk.len(), 5);
    assert_eq!((walk[3].sec, walk[3].usec, walk[3].sender), (3, 30, 3));
    // A second interface joining now starts at the newest packet, as NetBSD's allocif.
    let (bus2, mut r2) = Bus::open(&p).unwrap();
    let got2 = recv_all(&mut r2, &bus2);
    assert_eq!(got2.len(), 1);
    assert_eq!(got2[0].0, frame(4, 64));
    let _ = std::fs::remove_file(&p);
}

#[test]
fn the_ring_wraps_and_a_lapped_reader_starts_over_at_the_oldest() {
    let p = tmp("wrap");
    let (bus, mut keeps_up) = Bus::open(&p).unwrap();
    let mut lapped = keeps_up;
    let mut got = Vec::new();
    let n = 3 * (DATA_SIZE as usize) / (FRAME_MAX + PKTHDR_SIZE as usize);
    let mut buf = [0u8; FRAME_MAX];
    for i in 0..n as u32 {
        bus.send(&frame(i, FRAME_MAX - (i as usize % 50)), 1, i, 0)
            .unwrap();
        while let Some(r) = keeps_up.recv(&bus, &mut buf).unwrap() {
            got.push((buf[..r.len].to_vec(), r.sec));
        }
    }
    assert!(bus.header().generation >= 2, "{:?}", bus.header());
    assert_eq!(got.len(), n);
    for (i, (f, sec)) in got.iter().enumerate() {
        assert_eq!(
            (f, *sec),
            (&frame(i as u32, FRAME_MAX - (i % 50)), i as u32)
        );
    }
    // The lapped reader gets what the ring still holds, oldest first, ending at the newest.
    let late = recv_all(&mut lapped, &bus);
    let walk = bus.packets().unwrap();
    assert!(!late.is_empty() && late.len() < n);
    assert_eq!(late.len(), walk.len());
    assert_eq!(
        late.last().unwrap().0,
        frame(n as u32 - 1, FRAME_MAX - ((n - 1) % 50))
    );
    for (l, w) in late.iter().zip(&walk) {
        assert_eq!(l.0, w.frame);
    }
    let _ = std::fs::remove_file(&p);
}

#[test]
fn frame_sizes_outside_ethernet_are_refused() {
    let p = tmp("size");
    let (bus, _) = Bus::open(&p).unwrap();
    assert!(matches!(
        bus.send(&[0; 13], 1, 0, 0),
        Err(BusError::FrameSize(13))
    ));
    assert!(matches!(
        bus.send(&vec![0; FRAME_MAX + 1], 1, 0, 0),
        Err(BusError::FrameSize(_))
    ));
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_lock_held_by_a_dead_process_times_out() {
    let p = tmp("lock");
    let (mut bus, mut r) = Bus::open(&p).unwrap();
    bus.mem()
        .lock(Duration::from_secs(1))
        .map(std::mem::forget)
        .unwrap();
    bus.set_lock_deadline(Duration::from_millis(50));
    let t = std::time::Instant::now();
    assert!(matches!(
        bus.send(&frame(0, 60), 1, 0, 0),
        Err(BusError::LockTimeout)
    ));
    let mut buf = [0u8; FRAME_MAX];
    assert!(matches!(r.recv(&bus, &mut buf), Err(BusError::LockTimeout)));
    assert!(t.elapsed() < Duration::from_secs(2));
    let _ = std::fs::remove_file(&p);
}

/// Garbage written into the bus by another process: every call returns, none panics.
#[test]
fn a_corrupt_bus_gives_errors_not_panics() {
    let p = tmp("garbage");
    let (bus, mut r) = Bus::open(&p).unwrap();
    for i in 0..20 {
        bus.send(&frame(i, 100), 1, 0, 0).unwrap();
    }
    let m = bus.mem();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut buf = [0u8; FRAME_MAX];
    for round in 0..100 {
        match round % 4 {
            0 => m.put32(16, next() as u32 % (DATA_SIZE + 100)),
            1 => m.put32(20, next() as u32 % (DATA_SIZE + 100)),
            2 => m.put64(8, next() % 4),
            _ => {
                let off = next() as u32 % (DATA_SIZE - 8);
                m.write_data(off, &(next() as u32 % 3000).to_ne_bytes());
            }
        }
        let _ = bus.send(&frame(round, 80), 1, 0, 0);
        for _ in 0..3 {
            let _ = r.recv(&bus, &mut buf);
        }
        let _ = bus.packets();
    }
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_send_wakes_a_watch() {
    let p = tmp("watch");
    let (bus, _) = Bus::open(&p).unwrap();
    let w = Watch::new(&p).unwrap();
    assert!(!w.wait(Duration::from_millis(20)).unwrap());
    bus.send(&frame(0, 60), 1, 0, 0).unwrap();
    assert!(w.wait(Duration::from_secs(5)).unwrap());
    assert!(!w.wait(Duration::from_millis(20)).unwrap());
    let _ = std::fs::remove_file(&p);
}

#[test]
fn one_watch_for_two_buses() {
    let (p1, p2) = (tmp("watch-a"), tmp("watch-b"));
    let (b1, _) = Bus::open(&p1).unwrap();
    let (b2, _) = Bus::open(&p2).unwrap();
    let w = Watch::empty().unwrap();
    assert!(!w.wait(Duration::from_millis(20)).unwrap());
    let (wd1, wd2) = (w.add(&p1).unwrap(), w.add(&p2).unwrap());
    assert_ne!(wd1, wd2);
    assert_eq!(
        w.add(&p1).unwrap(),
        wd1,
        "the same file, the same descriptor"
    );
    b1.send(&frame(0, 60), 1, 0, 0).unwrap();
    assert!(w.wait(Duration::from_secs(5)).unwrap());
    b2.send(&frame(0, 60), 1, 0, 0).unwrap();
    assert!(w.wait(Duration::from_secs(5)).unwrap());
    w.remove(wd1);
    // The removal itself is one event (IN_IGNORED): drained here.
    let _ = w.wait(Duration::from_millis(50)).unwrap();
    b1.send(&frame(0, 60), 1, 0, 0).unwrap();
    assert!(
        !w.wait(Duration::from_millis(50)).unwrap(),
        "bus a no longer watched"
    );
    b2.send(&frame(0, 60), 1, 0, 0).unwrap();
    assert!(w.wait(Duration::from_secs(5)).unwrap());
    assert!(w.add(&p1.with_extension("missing")).is_err());
    let _ = std::fs::remove_file(&p1);
    let _ = std::fs::remove_file(&p2);
}

#[test]
fn mac_addresses_are_netbsds() {
    assert_eq!(
        crate::mac_address(u32::from_ne_bytes([0x8e, 0xa8, 0xa4, 0x37])),
        [0xb2, 0xa0, 0x8e, 0xa8, 0xa4, 0x37]
    );
}
