//! Fuzz harnesses for the `sp` crate, one function per cargo-fuzz target.
//!
//! Each function takes the fuzzer's bytes and panics only when an invariant of `sp` is broken.
//! The same file is compiled into `sp/tests/fuzz_replay.rs` (by `#[path]`), which runs the
//! checked-in regression inputs and a bounded number of seeded random inputs on stable Rust.

use sp::{FrameDecoder, Header, HEADER_LEN};

/// Largest payload limit the decoder harness configures (keeps every run small).
const MAX_PAYLOAD_LIMIT: usize = 4096;

/// What decoding a stream produced: the frames, then the error that stopped it, if any.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    frames: Vec<(Header, Vec<u8>)>,
    error: Option<sp::DecodeError>,
    /// Bytes of an incomplete frame left in the decoder at the end.
    buffered: usize,
}

/// Feeds `stream` to a fresh decoder in chunks of the given sizes (cycled; 0 = the rest).
fn decode(max: usize, stream: &[u8], chunks: &[usize]) -> Decoded {
    let mut d = FrameDecoder::new(max);
    let mut out = Decoded {
        frames: Vec::new(),
        error: None,
        buffered: 0,
    };
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let want = chunks[i % chunks.len()];
        i += 1;
        let n = if want == 0 { stream.len() - pos } else { want };
        let n = n.min(stream.len() - pos);
        let mut input = &stream[pos..pos + n];
        pos += n;
        loop {
            match d.next(&mut input) {
                Ok(Some(f)) => {
                    assert_eq!(f.header.len as usize, HEADER_LEN + f.payload.len());
                    assert!(f.header.len as usize <= max, "frame over the limit");
                    out.frames.push((f.header, f.payload.to_vec()));
                }
                Ok(None) => {
                    assert!(input.is_empty(), "decoder wants more with input left");
                    break;
                }
                Err(e) => {
                    // Sticky: a later call reports the same error.
                    let mut rest = input;
                    assert_eq!(d.next(&mut rest).err(), Some(e.clone()));
                    out.error = Some(e);
                    out.buffered = d.buffered_len();
                    return out;
                }
            }
            assert!(d.buffered_len() <= max, "decoder holds more than a frame");
        }
    }
    out.buffered = d.buffered_len();
    out
}

/// Target `frame_decoder`: `[limit: 2][chunk sizes: 4][stream…]`.
///
/// The stream is decoded whole (the zero-copy path) and in chunks of the given sizes (the
/// buffered path); both must yield the same frames and the same error, every frame must be
/// within the limit, the decoder must never hold more than one frame, and every byte must be
/// accounted for (frames + the buffered tail = the stream, unless framing was lost). Every
/// frame's payload then goes through all the payload parsers.
pub fn frame_decoder(data: &[u8]) {
    if data.len() < 6 {
        return;
    }
    let max = HEADER_LEN + usize::from(u16::from_le_bytes([data[0], data[1]])) % MAX_PAYLOAD_LIMIT;
    let chunks: Vec<usize> = data[2..6].iter().map(|&b| usize::from(b)).collect();
    let stream = &data[6..];
    let whole = decode(max, stream, &[0]);
    let split = decode(max, stream, &chunks);
    let bytewise = decode(max, stream, &[1]);
    assert_eq!(whole, split, "chunking changed the result");
    assert_eq!(whole, bytewise, "byte-at-a-time changed the result");
    if whole.error.is_none() {
        let framed: usize = whole.frames.iter().map(|(h, _)| h.len as usize).sum();
        assert_eq!(
            framed + whole.buffered,
            stream.len(),
            "bytes lost or invented"
        );
    }
    for (h, p) in &whole.frames {
        parse_all(h, p);
    }
}

/// Runs every payload parser on `p` and checks what each promises.
fn parse_all(h: &Header, p: &[u8]) {
    let args = sp::syscall_args(p);
    for (i, a) in args.iter().enumerate() {
        let mut slot = [0u8; 8];
        if let Some(chunk) = p.get(i * 8..) {
            let n = chunk.len().min(8);
            slot[..n].copy_from_slice(&chunk[..n]);
        }
        assert_eq!(*a, u64::from_le_bytes(slot), "syscall slot {i}");
    }
    if let Some(c) = sp::parse_copy_req(p) {
        assert!(p.len() >= sp::COPY_REQ_LEN);
        let mut out = Vec::new();
        sp::encode_copyin_req(&mut out, h.reqno, sp::MsgType::COPYIN, c.len, c.addr);
        assert_eq!(&out[HEADER_LEN..], &p[..sp::COPY_REQ_LEN]);
    }
    if let Some((addr, data)) = sp::parse_copyout_req(p) {
        let mut out = Vec::new();
        sp::encode_copyout_req(&mut out, h.reqno, addr, data);
        assert_eq!(&out[HEADER_LEN..], p, "copyout round trip");
    }
    match sp::parse_handshake_fork(p) {
        Some(f) => {
            let mut out = Vec::new();
            sp::encode_handshake_fork_req(&mut out, h.reqno, &f.cookie, f.cancel);
            assert_eq!(&out[HEADER_LEN..], p, "handshake fork round trip");
        }
        None => assert_ne!(p.len(), sp::HANDSHAKE_FORK_LEN),
    }
    let name = sp::parse_name(p);
    assert!(!name.contains(&0) && p.starts_with(name));
    if let Some(r) = sp::parse_syscall_resp(p) {
        let mut out = Vec::new();
        sp::encode_syscall_resp(&mut out, h.reqno, r.error, r.retval);
        // The 4 padding bytes are ignored on input and zero on output.
        assert_eq!(out[HEADER_LEN..HEADER_LEN + 4], p[..4]);
        assert_eq!(out[HEADER_LEN + 8..], p[8..sp::SYSCALL_RESP_LEN]);
    }
    assert_eq!(sp::parse_handshake_resp(p).is_some(), p.len() >= 4);
    assert_eq!(
        sp::parse_prefork_resp(p).is_some(),
        p.len() >= sp::COOKIE_LEN
    );
    assert_eq!(sp::parse_u64(p).is_some(), p.len() >= 8);
    let _ = h.payload_len();
}

/// Target `payloads`: `[kind: 1][numbers: 24][data…]`: one encoder chosen by `kind`, fed
/// with the numbers and data, must produce exactly one frame that the decoder returns whole
/// and whose payload parses back to what was encoded; then the raw data goes through every
/// parser as a payload.
pub fn payloads(data: &[u8]) {
    if data.len() < 25 {
        return;
    }
    let kind = data[0];
    let n = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[1 + 8 * i..9 + 8 * i]);
        u64::from_le_bytes(b)
    };
    let (reqno, x, y) = (n(0), n(1), n(2));
    let rest = &data[25..];
    let mut out = Vec::new();
    match kind % 10 {
        0 => {
            let k = (x % 9) as usize;
            let args: Vec<u64> = (0..k)
                .map(|i| y.rotate_left(i as u32 * 7) ^ i as u64)
                .collect();
            sp::encode_syscall_req(&mut out, reqno, x as u32, &args);
            let f = one_frame(&out);
            assert_eq!(f.header.u, x as u32);
            let got = sp::syscall_args(&f.payload);
            assert_eq!(&got[..k], &args[..]);
            assert!(got[k..].iter().all(|&a| a == 0));
        }
        1 => {
            let rv = [x as i64, y as i64];
            sp::encode_syscall_resp(&mut out, reqno, x as i32, rv);
            let r = sp::parse_syscall_resp(&one_frame(&out).payload).expect("syscall resp");
            assert_eq!((r.error, r.retval), (x as i32, rv));
        }
        2 => {
            sp::encode_copyin_req(&mut out, reqno, sp::MsgType::COPYINSTR, x, y);
            let c = sp::parse_copy_req(&one_frame(&out).payload).expect("copy req");
            assert_eq!((c.len, c.addr), (x, y));
        }
        3 => {
            sp::encode_copyout_req(&mut out, reqno, x, rest);
            let f = one_frame(&out);
            let got = sp::parse_copyout_req(&f.payload).expect("copyout");
            assert_eq!(got, (x, rest));
        }
        4 => {
            let mut cookie = [0u8; sp::COOKIE_LEN];
            cookie[..8].copy_from_slice(&x.to_le_bytes());
            cookie[8..].copy_from_slice(&y.to_le_bytes());
            sp::encode_handshake_fork_req(&mut out, reqno, &cookie, x as i32);
            let f = sp::parse_handshake_fork(&one_frame(&out).payload).expect("fork");
            assert_eq!((f.cookie, f.cancel), (cookie, x as i32));
            sp::encode_prefork_resp(&mut out, reqno, &cookie);
        }
        5 => {
            let name: Vec<u8> = rest.iter().copied().filter(|&b| b != 0).collect();
            sp::encode_handshake_name_req(&mut out, reqno, sp::HandshakeType::GUEST, &name);
            assert_eq!(sp::parse_name(&one_frame(&out).payload), &name[..]);
        }
        6 => {
            sp::encode_handshake_resp(&mut out, reqno, x as i32);
            assert_eq!(
                sp::parse_handshake_resp(&one_frame(&out).payload),
                Some(x as i32)
            );
        }
        7 => {
            sp::encode_anonmmap_req(&mut out, reqno, x);
            assert_eq!(sp::parse_u64(&one_frame(&out).payload), Some(x));
        }
        8 => {
            sp::encode_error(&mut out, reqno, sp::ErrorCode(x as u32));
            let f = one_frame(&out);
            assert_eq!((f.header.class, f.header.u), (sp::Class::ERROR, x as u32));
            let code = sp::ErrorCode(x as u32);
            let _ = (code.name(), code.errno(), code.to_string());
        }
        _ => {
            sp::encode_copyin_resp(&mut out, reqno, rest);
            assert_eq!(one_frame(&out).payload, rest);
        }
    }
    let h = Header::from_bytes(&data[1..25].try_into().expect("24 bytes"));
    assert_eq!(Header::from_bytes(&h.to_bytes()), h);
    parse_all(&h, rest);
}

/// A decoded frame, owned.
struct Owned {
    header: Header,
    payload: Vec<u8>,
}

/// Decodes `bytes`, which must hold exactly one whole frame, and returns it.
fn one_frame(bytes: &[u8]) -> Owned {
    let mut d = FrameDecoder::new(HEADER_LEN + (1 << 20));
    let mut input = bytes;
    let f = d
        .next(&mut input)
        .expect("valid frame")
        .expect("whole frame");
    assert!(input.is_empty(), "encoder wrote more than one frame");
    assert_eq!(f.header.len as usize, bytes.len());
    Owned {
        header: f.header,
        payload: f.payload.to_vec(),
    }
}

/// Target `url`: `[role: 1][text…]`: parsing any text as a server or client URL, with and
/// without a working directory, never panics; an accepted unix path fits `sun_path` and a
/// relative one is made absolute when a directory is given; a client never gets INADDR_ANY.
pub fn url(data: &[u8]) {
    let Some((&role, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let role = if role & 1 == 0 {
        sp::url::Role::Server
    } else {
        sp::url::Role::Client
    };
    let cwd = std::path::Path::new("/work/dir");
    for dir in [None, Some(cwd)] {
        match sp::url::parse(&text, role, dir) {
            Ok(sp::url::SpAddr::Unix(p)) => {
                assert!(
                    p.as_os_str().len() < sp::url::SUN_PATH_LEN,
                    "{p:?} too long"
                );
                if dir.is_some() {
                    assert!(p.is_absolute(), "{p:?} left relative");
                }
            }
            Ok(sp::url::SpAddr::Tcp(a)) => {
                if role == sp::url::Role::Client {
                    assert!(!a.ip().is_unspecified(), "client given INADDR_ANY");
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// Target `fast`: `[max_ranges: 1][max_bytes: 2][mode: 1][data…]`, the fast path's decoder.
///
/// Mode even: `data` is a SYSCALL_FAST payload from a hostile client. The parser must not
/// panic; when it accepts, the ranges must be sorted, disjoint, non-empty, within the limits,
/// and the data exactly their total; every COPYIN/COPYINSTR answer it gives must equal what a
/// byte-by-byte model of the same memory gives; COPYOUTs applied to a kept copy must show
/// in later lookups as in the model. Mode odd: `data` is cut into candidate ranges that the
/// client-side builder encodes under the grant; the result must parse back within the grant
/// and hold exactly the candidates' bytes where it holds any.
pub fn fast(data: &[u8]) {
    use sp::fast::*;
    use std::collections::BTreeMap;
    if data.len() < 4 {
        return;
    }
    let max_ranges = u32::from(data[0] % 70);
    let max_bytes = usize::from(u16::from_le_bytes([data[1], data[2]]));
    let mode = data[3];
    let data = &data[4..];
    // Client memory as the model sees it: address → byte.
    let mut model: BTreeMap<u64, u8> = BTreeMap::new();
    let payload: Vec<u8>;
    if mode & 1 == 0 {
        payload = data.to_vec();
    } else {
        // Candidates: [addr lo: 1][len: 1] from the front, bytes from the back.
        let mut cand: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut i = 0;
        let mut fill = 0u8;
        while i + 2 <= data.len() && cand.len() < 80 {
            let a = 0x1000 + u64::from(data[i]) * 3;
            let l = usize::from(data[i + 1] % 24);
            // Overlapping candidates name the same memory: the same bytes at an address.
            let bytes: Vec<u8> = (0..l as u64)
                .map(|k| {
                    *model.entry(a + k).or_insert_with(|| {
                        fill = fill.wrapping_add(1);
                        fill
                    })
                })
                .collect();
            cand.push((a, bytes));
            i += 2;
        }
        let mut refs: Vec<(u64, &[u8])> = cand.iter().map(|(a, b)| (*a, &b[..])).collect();
        let g = FastGrant {
            version: 1,
            max_ranges,
            max_bytes: max_bytes as u32,
        };
        let mut out = Vec::new();
        encode_fast_syscall(&mut out, 1, 4, &[1, 2, 3], &mut refs, &g);
        let f = one_frame(&out);
        assert_eq!(f.header.typ, sp::MsgType::SYSCALL_FAST);
        payload = f.payload;
        let fs = parse_fast_syscall(&payload, max_ranges, max_bytes).expect("builder output");
        assert_eq!(fs.args[..3], [1, 2, 3]);
    }
    let Ok(fs) = parse_fast_syscall(&payload, max_ranges, max_bytes) else {
        return;
    };
    let pf = fs.prefetch;
    assert!(pf.len() as u32 <= max_ranges && pf.data_len() <= max_bytes);
    let mut prev_end = 0u64;
    let mut total = 0usize;
    let mut known: BTreeMap<u64, u8> = BTreeMap::new();
    for (i, (a, d)) in pf.ranges().enumerate() {
        assert!(!d.is_empty(), "empty range");
        assert!(i == 0 || a >= prev_end, "overlap");
        prev_end = a + d.len() as u64;
        total += d.len();
        for (k, &b) in d.iter().enumerate() {
            let addr = a + k as u64;
            if mode & 1 == 1 {
                assert_eq!(model.get(&addr), Some(&b), "builder changed a byte");
            }
            known.insert(addr, b);
        }
    }
    assert_eq!(total, pf.data_len());
    let mut kept = pf.as_bytes().to_vec();
    let probes: Vec<u64> = known.keys().copied().step_by(3).take(40).collect();
    for (j, &addr) in probes.iter().enumerate() {
        let len = j % 9;
        check_lookup(&PrefetchRef::kept(&kept, pf.len()), &known, addr, len);
        if j % 4 == 0 {
            let w = [0xeeu8, 0xdd, 0xcc];
            prefetch_apply_copyout(&mut kept, pf.len(), addr.wrapping_sub(1), &w);
            for (k, &b) in w.iter().enumerate() {
                let x = addr.wrapping_sub(1).wrapping_add(k as u64);
                if let Some(v) = known.get_mut(&x) {
                    *v = b;
                }
            }
        }
    }
}

/// A lookup in the prefetch answers what the byte model answers, or nothing.
fn check_lookup(
    pf: &sp::fast::PrefetchRef<'_>,
    known: &std::collections::BTreeMap<u64, u8>,
    addr: u64,
    len: usize,
) {
    let run = |n: usize| -> Option<Vec<u8>> {
        (0..n as u64)
            .map(|k| known.get(&addr.checked_add(k)?).copied())
            .collect()
    };
    if let Some(got) = pf.copyin(addr, len) {
        assert_eq!(Some(got.to_vec()), run(len), "copyin {addr:#x}+{len}");
    }
    if let Some(got) = pf.copyinstr(addr, len) {
        assert!(!got.is_empty() && got.len() <= len);
        assert_eq!(Some(got.to_vec()), run(got.len()), "copyinstr {addr:#x}");
        let nul = got.iter().position(|&b| b == 0);
        assert!(nul.is_none_or(|p| p == got.len() - 1), "stops at the NUL");
        assert!(nul.is_some() || got.len() == len, "no NUL: exactly maxlen");
    }
}
