//! Unit tests of the fast-path frames: layouts byte for byte, the client-side builder, and the
//! hostile payloads the server must refuse.

use super::*;
use crate::{FrameDecoder, HandshakeType};

const G: FastGrant = FastGrant {
    version: 1,
    max_ranges: 64,
    max_bytes: 1 << 20,
};

/// Builds a raw SYSCALL_FAST payload from its fields (no checks: for hostile inputs).
fn raw(args: &[u64], ranges: &[(u64, u64)], data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&((args.len() * 8) as u32).to_le_bytes());
    p.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
    for a in args {
        p.extend_from_slice(&a.to_le_bytes());
    }
    for (a, l) in ranges {
        p.extend_from_slice(&a.to_le_bytes());
        p.extend_from_slice(&l.to_le_bytes());
    }
    p.extend_from_slice(data);
    p
}

fn one_frame(bytes: &[u8]) -> (Header, Vec<u8>) {
    let mut d = FrameDecoder::new(1 << 24);
    let mut input = bytes;
    let f = d.next(&mut input).unwrap().unwrap();
    assert!(input.is_empty(), "exactly one frame");
    (f.header, f.payload.to_vec())
}

#[test]
fn handshake_layouts() {
    let mut out = Vec::new();
    encode_fast_handshake_req(&mut out, 1, HandshakeType::GUEST.0, b"cat\0");
    let expect: Vec<u8> = [
        &44u64.to_le_bytes()[..],
        &1u64.to_le_bytes(),
        &[0, 0, 0, 0],
        &0x100u32.to_le_bytes(),
        b"SPFP",
        &1u32.to_le_bytes(),
        &[0; 8],
        b"cat\0",
    ]
    .concat();
    assert_eq!(out, expect);
    let (h, p) = one_frame(&out);
    assert_eq!(h.u & !FAST_FLAG, HandshakeType::GUEST.0);
    assert_eq!(parse_fast_hello(&p), Some((1, &b"cat\0"[..])));
    assert_eq!(parse_fast_hello(&p[..15]), None, "short hello");
    assert_eq!(parse_fast_hello(b"SPFQ\x01\0\0\0\0\0\0\0\0\0\0\0"), None);
    assert_eq!(
        parse_fast_hello(b"SPFP\0\0\0\0\0\0\0\0\0\0\0\0"),
        None,
        "version 0"
    );
    assert_eq!(parse_fast_hello(&[]), None);

    out.clear();
    encode_fast_handshake_resp(
        &mut out,
        7,
        &FastGrant {
            version: 1,
            max_ranges: 64,
            max_bytes: 1000,
        },
    );
    assert_eq!(out.len(), 48);
    let (h, p) = one_frame(&out);
    assert_eq!(
        (h.class, h.typ, h.reqno, h.u),
        (Class::RESP, MsgType::HANDSHAKE, 7, 0)
    );
    assert_eq!(
        crate::parse_handshake_resp(&p),
        Some(0),
        "a plain client reads error 0"
    );
    assert_eq!(
        parse_fast_handshake_resp(&p),
        Some(FastGrant {
            version: 1,
            max_ranges: 64,
            max_bytes: 1000
        })
    );
    assert_eq!(
        parse_fast_handshake_resp(&p[..4]),
        None,
        "plain answer: no grant"
    );
    let mut big = p.clone();
    big[12..16].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(
        parse_fast_handshake_resp(&big).unwrap().max_ranges,
        FAST_MAX_RANGES
    );
}

#[test]
fn syscall_fast_layout_and_lookup() {
    let path = b"/tmp/f\0";
    let data = [7u8; 10];
    let mut pf = Prefetch::new();
    pf.push(0x2000, &data);
    pf.push(0x1000, path);
    let mut out = Vec::new();
    pf.encode(&mut out, 5, 4, &[1, 0x2000, 10], &G);
    let (h, p) = one_frame(&out);
    assert_eq!((h.typ, h.u, h.reqno), (MsgType::SYSCALL_FAST, 4, 5));
    let expect = raw(
        &[1, 0x2000, 10],
        &[(0x1000, 7), (0x2000, 10)],
        &[&path[..], &data].concat(),
    );
    assert_eq!(p, expect, "sorted by address, data in range order");
    let fs = parse_fast_syscall(&p, 64, 1 << 20).unwrap();
    assert_eq!(fs.args[..3], [1, 0x2000, 10]);
    assert_eq!(fs.args[3..], [0; 5]);
    let pr = fs.prefetch;
    assert_eq!(pr.len(), 2);
    assert_eq!(pr.data_len(), 17);
    assert_eq!(pr.copyin(0x2000, 10), Some(&data[..]));
    assert_eq!(pr.copyin(0x2003, 7), Some(&data[3..]));
    assert_eq!(pr.copyin(0x2003, 8), None, "runs past the range");
    assert_eq!(pr.copyin(0x1fff, 2), None, "starts before");
    assert_eq!(
        pr.copyin(0x2000, 0),
        None,
        "zero length is the kernel's business"
    );
    assert_eq!(pr.copyin(u64::MAX, usize::MAX), None);
    assert_eq!(pr.copyinstr(0x1000, 1024), Some(&path[..]));
    assert_eq!(pr.copyinstr(0x1000, 7), Some(&path[..]));
    assert_eq!(
        pr.copyinstr(0x1000, 3),
        Some(&path[..3]),
        "too long: maxlen bytes, no NUL"
    );
    assert_eq!(pr.copyinstr(0x1005, 1024), Some(&b"f\0"[..]));
    assert_eq!(
        pr.copyinstr(0x2000, 1024),
        None,
        "no NUL before the range ends: ask"
    );
    assert_eq!(pr.copyinstr(0x2000, 10), Some(&data[..]));
    assert_eq!(pr.copyinstr(0x3000, 10), None);
    assert_eq!(pr.copyinstr(0x1000, 0), None);
}

#[test]
fn builder_merges_cuts_and_limits() {
    let buf: Vec<u8> = (0..100u8).collect();
    let base = 0x10_000u64;
    // Overlapping and touching candidates become one range holding their union.
    let mut pf = Prefetch::new();
    pf.push(base + 50, &buf[50..80]);
    pf.push(base, &buf[0..20]);
    pf.push(base + 10, &buf[10..60]);
    pf.push(base + 80, &buf[80..100]);
    pf.push(base + 500, &[]);
    let mut out = Vec::new();
    pf.encode(&mut out, 1, 4, &[], &G);
    let (_, p) = one_frame(&out);
    assert_eq!(p, raw(&[], &[(base, 100)], &buf));

    // The byte budget cuts candidates in the order offered; emptied ones vanish.
    let mut pf = Prefetch::new();
    pf.push(base + 200, &buf[..30]);
    pf.push(base, &buf[..30]);
    pf.push(base + 100, &buf[..30]);
    let g = FastGrant { max_bytes: 40, ..G };
    out.clear();
    pf.encode(&mut out, 1, 4, &[], &g);
    let (_, p) = one_frame(&out);
    assert_eq!(
        p,
        raw(
            &[],
            &[(base, 10), (base + 200, 30)],
            &[&buf[..10], &buf[..30]].concat()
        )
    );

    // Ranges beyond the grant's count are dropped (the highest addresses).
    let mut pf = Prefetch::new();
    for i in 0..5u64 {
        pf.push(base + i * 1000, &buf[..4]);
    }
    out.clear();
    pf.encode(&mut out, 1, 4, &[9], &FastGrant { max_ranges: 3, ..G });
    let (_, p) = one_frame(&out);
    let fs = parse_fast_syscall(&p, 3, 100).unwrap();
    let got: Vec<u64> = fs.prefetch.ranges().map(|r| r.0).collect();
    assert_eq!(got, [base, base + 1000, base + 2000]);
    assert_eq!(fs.args[0], 9);
}

#[test]
fn hostile_payloads_refused() {
    let ok = raw(&[1, 2], &[(0x1000, 2), (0x1002, 1)], b"abc");
    assert!(
        parse_fast_syscall(&ok, 64, 100).is_ok(),
        "touching ranges are fine"
    );
    let cases: Vec<(Vec<u8>, FastError)> = vec![
        (vec![], FastError::Short),
        (vec![8, 0, 0, 0], FastError::Short),
        (raw(&[1], &[], &[])[..12].to_vec(), FastError::Short),
        (
            {
                let mut p = raw(&[], &[], &[]);
                p[0] = 72;
                p
            },
            FastError::BadArgsLen,
        ),
        (
            {
                let mut p = raw(&[], &[], &[]);
                p[0] = 7;
                p
            },
            FastError::BadArgsLen,
        ),
        (
            {
                let mut p = raw(&[], &[], &[]);
                p[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
                p
            },
            FastError::TooManyRanges,
        ),
        (raw(&[], &[(1, 1); 65], &[0; 65]), FastError::TooManyRanges),
        (raw(&[], &[(0x1000, 4)], b"abc"), FastError::LengthMismatch),
        (raw(&[], &[(0x1000, 2)], b"abc"), FastError::LengthMismatch),
        (raw(&[], &[(0x1000, 0)], b""), FastError::EmptyRange),
        (raw(&[], &[(u64::MAX, 2)], b"ab"), FastError::Wraps),
        (
            raw(&[], &[(0x1000, 4), (0x1002, 1)], b"abcde"),
            FastError::Overlap,
        ),
        (
            raw(&[], &[(0x2000, 1), (0x1000, 1)], b"ab"),
            FastError::Overlap,
        ),
        (
            raw(&[], &[(0x1000, 1), (0x1000, 1)], b"ab"),
            FastError::Overlap,
        ),
        (raw(&[], &[(0x1000, 101)], &[0; 101]), FastError::TooLarge),
        // Lying sizes: lengths that add up past u64, with no data behind them.
        (
            raw(
                &[],
                &[(0, u64::MAX / 2 + 1), (u64::MAX / 2 + 1, u64::MAX / 2)],
                b"",
            ),
            FastError::TooLarge,
        ),
        (raw(&[], &[(0x1000, 1 << 40)], b"x"), FastError::TooLarge),
        (
            raw(&[], &[(0x1000, 1); 3], b"")[..40].to_vec(),
            FastError::Short,
        ),
    ];
    for (i, (p, e)) in cases.iter().enumerate() {
        assert_eq!(parse_fast_syscall(p, 64, 100), Err(*e), "case {i}");
    }
    assert_eq!(
        parse_fast_syscall(&raw(&[], &[(1, 1); 3], b"abc"), 2, 100),
        Err(FastError::TooManyRanges),
        "over the grant"
    );
}

#[test]
fn copyout_updates_the_kept_prefetch() {
    let p = raw(&[], &[(0x1000, 4), (0x2000, 4)], b"abcdwxyz");
    let fs = parse_fast_syscall(&p, 64, 100).unwrap();
    let mut kept = fs.prefetch.as_bytes().to_vec();
    prefetch_apply_copyout(&mut kept, 2, 0x0ffe, b"1234"); // overlaps the first range's head
    prefetch_apply_copyout(&mut kept, 2, 0x2003, b"56"); // the second's tail and beyond
    prefetch_apply_copyout(&mut kept, 2, 0x3000, b"!!"); // nothing
    prefetch_apply_copyout(&mut kept, 2, u64::MAX, b"!!"); // wraps: ignored
    let pr = PrefetchRef::parse(&kept, 2, 100).unwrap();
    assert_eq!(pr.copyin(0x1000, 4), Some(&b"34cd"[..]));
    assert_eq!(pr.copyin(0x2000, 4), Some(&b"wxy5"[..]));
}

/// The one-range lookups a server uses for a request with a single range answer as
/// `PrefetchRef` does for that range, and refuse what lies outside it.
#[test]
fn one_range_lookups_match_the_prefetch_rules() {
    let data = b"/tmp/f\0xyz";
    let at = 0x4000u64;
    assert_eq!(range_copyin(at, data, at, 3), Some(&b"/tm"[..]));
    assert_eq!(range_copyin(at, data, at + 7, 3), Some(&b"xyz"[..]));
    assert_eq!(range_copyin(at, data, at + 7, 4), None, "runs past the end");
    assert_eq!(range_copyin(at, data, at - 1, 2), None, "starts before");
    assert_eq!(range_copyin(at, data, at, 0), None);
    assert_eq!(range_copyin(at, data, u64::MAX, usize::MAX), None);
    assert_eq!(range_copyinstr(at, data, at, 1024), Some(&b"/tmp/f\0"[..]));
    assert_eq!(
        range_copyinstr(at, data, at, 3),
        Some(&b"/tm"[..]),
        "maxlen, no NUL"
    );
    assert_eq!(
        range_copyinstr(at, data, at + 7, 1024),
        None,
        "ends before a NUL"
    );
    assert_eq!(
        range_copyinstr(at, data, at + 10, 4),
        None,
        "just past the end"
    );
    assert_eq!(range_copyinstr(at, data, at - 1, 4), None);
    let mut kept = data.to_vec();
    range_apply_copyout(at, &mut kept, at - 2, b"..AB"); // the head
    range_apply_copyout(at, &mut kept, at + 9, b"!?"); // the tail and beyond
    range_apply_copyout(at, &mut kept, u64::MAX, b"!!"); // wraps: ignored
    assert_eq!(&kept, b"ABmp/f\0xy!");
}
