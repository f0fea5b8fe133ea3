//! Incremental, bounded frame decoder (§4.2, with our length limit from §19).

use std::fmt;

use crate::{Header, HEADER_LEN};

/// One decoded frame: its header and a borrowed payload (`header.len − 24` bytes).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame header, as received.
    pub header: Header,
    /// The payload; empty for header-only frames.
    pub payload: &'a [u8],
}

/// Why a byte stream is not a valid frame sequence. Either way the stream has lost its frame
/// boundaries and the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A header's `len` is smaller than the header itself.
    TooShort {
        /// The `len` field received.
        len: u64,
    },
    /// A header's `len` exceeds the decoder's maximum frame length.
    TooLong {
        /// The `len` field received.
        len: u64,
        /// The configured maximum, header included.
        max: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort { len } => {
                write!(
                    f,
                    "sp frame length {len} is shorter than the {HEADER_LEN}-byte header"
                )
            }
            DecodeError::TooLong { len, max } => {
                write!(f, "sp frame length {len} exceeds the limit of {max} bytes")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Capacity above which the partial-frame buffer is released once its frame is done, so that
/// an idle connection does not keep a large buffer.
const KEEP_BUF_CAPACITY: usize = 64 * 1024;

/// Splits a byte stream into frames without copying those that arrive whole.
///
/// Feed it whatever the socket returned; it hands back frames borrowed from that input when a
/// frame lies wholly inside it, and otherwise keeps the incomplete tail in its own buffer, which
/// never grows beyond the maximum frame length (the length is checked as soon as the 24 header
/// bytes are known, before any payload byte is stored).
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_len: usize,
    /// Bytes of the incomplete frame held (header first).
    buf: Vec<u8>,
    /// Total length of the buffered frame once its header is complete, else 0.
    want: usize,
    /// The buffer holds a complete frame that was returned by the last call.
    done: bool,
    /// Sticky error: once framing is lost, every later call reports it.
    failed: Option<DecodeError>,
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_frame_len` bytes, header included.
    ///
    /// # Panics
    /// If `max_frame_len` is smaller than [`HEADER_LEN`].
    pub fn new(max_frame_len: usize) -> Self {
        assert!(
            max_frame_len >= HEADER_LEN,
            "max_frame_len must hold at least a header"
        );
        FrameDecoder {
            max_frame_len,
            buf: Vec::new(),
            want: 0,
            done: false,
            failed: None,
        }
    }

    /// The configured maximum frame length, header included.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes of an incomplete frame currently held.
    pub fn buffered_len(&self) -> usize {
        if self.done {
            0
        } else {
            self.buf.len()
        }
    }

    /// Returns the next complete frame.
    ///
    /// Frames wholly inside `input` are returned borrowed from it (zero copy) and `input` is
    /// advanced past them; a partial frame at the end of `input` is copied into the decoder's
    /// own buffer (bounded by the maximum frame length) and completed by later calls.
    /// `Ok(None)` means more bytes are needed, and `input` is then empty. A header with
    /// `len < 24` or `len >` the maximum is an error as soon as its 24 header bytes are known;
    /// the error is sticky (the stream has no usable frame boundaries any more).
    ///
    /// The two lifetimes let a caller loop over one input slice: the returned frame borrows the
    /// decoder only until it is dropped.
    pub fn next<'s, 'i: 's>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<Frame<'s>>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.done {
            self.reset_buf();
        }
        if self.buf.is_empty() {
            return self.next_direct(input);
        }
        self.continue_buffered(input)
    }

    /// No partial frame held: decode straight from `input`.
    fn next_direct<'s, 'i: 's>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<Frame<'s>>, DecodeError> {
        let data: &'i [u8] = input;
        if data.len() < HEADER_LEN {
            self.grow(data.len());
            self.buf.extend_from_slice(data);
            *input = &data[data.len()..];
            return Ok(None);
        }
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(&data[..HEADER_LEN]);
        let header = Header::from_bytes(&hb);
        let len = self.check(&header)?;
        if data.len() >= len {
            *input = &data[len..];
            return Ok(Some(Frame {
                header,
                payload: &data[HEADER_LEN..len],
            }));
        }
        self.want = len;
        self.grow(data.len());
        self.buf.extend_from_slice(data);
        *input = &data[data.len()..];
        Ok(None)
    }

    /// A partial frame is held: complete its header, then its payload.
    fn continue_buffered<'s>(
        &'s mut self,
        input: &mut &[u8],
    ) -> Result<Option<Frame<'s>>, DecodeError> {
        if self.buf.len() < HEADER_LEN {
            let take = (HEADER_LEN - self.buf.len()).min(input.len());
            self.grow(take);
            self.buf.extend_from_slice(&input[..take]);
            *input = &input[take..];
            if self.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let header = self.buffered_header();
            let len = self.check(&header)?;
            self.want = len;
        }
        let take = (self.want - self.buf.len()).min(input.len());
        self.grow(take);
        self.buf.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if self.buf.len() < self.want {
            return Ok(None);
        }
        self.done = true;
        let header = self.buffered_header();
        Ok(Some(Frame {
            header,
            payload: &self.buf[HEADER_LEN..],
        }))
    }

    /// Makes room for `extra` more bytes of the frame being buffered. Capacity grows with the
    /// bytes that actually arrived (doubling, never past the frame's length), not with the
    /// length the header announces: a client that announces large frames and trickles them
    /// costs the server only what it sent.
    fn grow(&mut self, extra: usize) {
        let needed = self.buf.len() + extra;
        if needed <= self.buf.capacity() {
            return;
        }
        let frame = if self.want == 0 {
            HEADER_LEN
        } else {
            self.want
        };
        let target = needed.max((self.buf.capacity() * 2).min(frame));
        self.buf.reserve_exact(target - self.buf.len());
    }

    fn buffered_header(&self) -> Header {
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(&self.buf[..HEADER_LEN]);
        Header::from_bytes(&hb)
    }

    /// Validates a header's length; on failure the decoder is poisoned.
    fn check(&mut self, h: &Header) -> Result<usize, DecodeError> {
        let err = if h.len < HEADER_LEN as u64 {
            DecodeError::TooShort { len: h.len }
        } else if h.len > self.max_frame_len as u64 {
            DecodeError::TooLong {
                len: h.len,
                max: self.max_frame_len,
            }
        } else {
            return Ok(h.len as usize);
        };
        self.reset_buf();
        self.failed = Some(err.clone());
        Err(err)
    }

    fn reset_buf(&mut self) {
        if self.buf.capacity() > KEEP_BUF_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.want = 0;
        self.done = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, MsgType};

    fn frame(reqno: u64, payload: &[u8]) -> Vec<u8> {
        let h = Header {
            len: (HEADER_LEN + payload.len()) as u64,
            reqno,
            class: Class::REQ,
            typ: MsgType::SYSCALL,
            u: reqno as u32,
        };
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// Decodes everything, feeding the stream in the given chunk sizes (cycled).
    fn decode_all(d: &mut FrameDecoder, stream: &[u8], chunks: &[usize]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < stream.len() {
            let n = chunks[i % chunks.len()].max(1).min(stream.len() - pos);
            i += 1;
            let mut input = &stream[pos..pos + n];
            pos += n;
            while let Some(f) = d.next(&mut input).unwrap() {
                assert_eq!(f.header.len as usize, HEADER_LEN + f.payload.len());
                out.push((f.header.reqno, f.payload.to_vec()));
            }
            assert!(input.is_empty());
        }
        out
    }

    fn sample() -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
        let mut stream = Vec::new();
        let mut expect = Vec::new();
        for (i, n) in [0usize, 1, 5, 24, 100, 0, 3000, 7].iter().enumerate() {
            let p: Vec<u8> = (0..*n).map(|b| (b * 7 + i) as u8).collect();
            stream.extend(frame(i as u64, &p));
            expect.push((i as u64, p));
        }
        (stream, expect)
    }

    #[test]
    fn many_frames_in_one_input_are_borrowed() {
        let (stream, expect) = sample();
        let mut d = FrameDecoder::new(4096);
        let mut input: &[u8] = &stream;
        let mut got = Vec::new();
        // The loop shape a server uses: `next` repeatedly on one input slice.
        while let Some(f) = d.next(&mut input).unwrap() {
            let base = stream.as_ptr() as usize;
            let p = f.payload.as_ptr() as usize;
            assert!(f.payload.is_empty() || (p >= base && p < base + stream.len()));
            got.push((f.header.reqno, f.payload.to_vec()));
        }
        assert_eq!(got, expect);
        assert!(input.is_empty());
        assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn one_byte_at_a_time() {
        let (stream, expect) = sample();
        let mut d = FrameDecoder::new(4096);
        assert_eq!(decode_all(&mut d, &stream, &[1]), expect);
        assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn frames_split_across_inputs() {
        let (stream, expect) = sample();
        for split in [2, 23, 24, 25, 31, 47, 48, 1000, 4000] {
            let mut d = FrameDecoder::new(4096);
            assert_eq!(
                decode_all(&mut d, &stream, &[split]),
                expect,
                "chunk {split}"
            );
        }
        let mut d = FrameDecoder::new(4096);
        assert_eq!(decode_all(&mut d, &stream, &[3, 50, 1, 24, 700]), expect);
    }

    #[test]
    fn partial_frame_is_buffered() {
        let f = frame(9, b"abcdef");
        let mut d = FrameDecoder::new(64);
        let mut input: &[u8] = &f[..10];
        assert_eq!(d.next(&mut input).unwrap(), None);
        assert!(input.is_empty());
        assert_eq!(d.buffered_len(), 10);
        let mut input: &[u8] = &f[10..27];
        assert_eq!(d.next(&mut input).unwrap(), None);
        assert_eq!(d.buffered_len(), 27);
        let mut input: &[u8] = &f[27..];
        let got = d.next(&mut input).unwrap().unwrap();
        assert_eq!((got.header.reqno, got.payload), (9, &b"abcdef"[..]));
        assert_eq!(d.buffered_len(), 0);
        let mut input: &[u8] = &[];
        assert_eq!(d.next(&mut input).unwrap(), None);
    }

    #[test]
    fn too_short_is_rejected() {
        for len in [0u64, 1, 23] {
            let mut h = frame(1, &[]);
            h[..8].copy_from_slice(&len.to_le_bytes());
            let mut d = FrameDecoder::new(100);
            let mut input: &[u8] = &h;
            assert_eq!(d.next(&mut input), Err(DecodeError::TooShort { len }));
            // Sticky.
            let mut input: &[u8] = &frame(2, &[]);
            assert_eq!(d.next(&mut input), Err(DecodeError::TooShort { len }));
        }
        // Also when the header arrives in pieces.
        let mut h = frame(1, &[]);
        h[..8].copy_from_slice(&5u64.to_le_bytes());
        let mut d = FrameDecoder::new(100);
        let mut input: &[u8] = &h[..20];
        assert_eq!(d.next(&mut input), Ok(None));
        let mut input: &[u8] = &h[20..];
        assert_eq!(d.next(&mut input), Err(DecodeError::TooShort { len: 5 }));
    }

    #[test]
    fn too_long_is_rejected_after_the_header_only() {
        let max = 100;
        let len = 1u64 << 40;
        let mut h = frame(1, &[]);
        h[..8].copy_from_slice(&len.to_le_bytes());
        // Whole header in one input: error at once, nothing buffered.
        let mut d = FrameDecoder::new(max);
        let mut input: &[u8] = &h;
        assert_eq!(d.next(&mut input), Err(DecodeError::TooLong { len, max }));
        assert_eq!(d.buffered_len(), 0);
        // Header byte by byte: no error before the 24th byte, error on it.
        let mut d = FrameDecoder::new(max);
        for (i, b) in h.iter().enumerate() {
            let one = [*b];
            let mut input: &[u8] = &one;
            let r = d.next(&mut input);
            if i < 23 {
                assert_eq!(r, Ok(None));
            } else {
                assert_eq!(r, Err(DecodeError::TooLong { len, max }));
            }
        }
        assert!(d.buf.capacity() <= HEADER_LEN);
        // Exactly the maximum is fine; one more is not.
        let mut d = FrameDecoder::new(max);
        let ok = frame(3, &[0u8; 76]);
        let mut input: &[u8] = &ok;
        assert_eq!(d.next(&mut input).unwrap().unwrap().payload.len(), 76);
        let bad = frame(4, &[0u8; 77]);
        let mut input: &[u8] = &bad;
        assert_eq!(
            d.next(&mut input),
            Err(DecodeError::TooLong { len: 101, max })
        );
        assert!(DecodeError::TooLong { len: 101, max }
            .to_string()
            .contains("101"));
    }

    #[test]
    fn announced_length_is_not_reserved_up_front() {
        let max = 1 << 20;
        let f = frame(1, &vec![7u8; max - HEADER_LEN]);
        let mut d = FrameDecoder::new(max);
        let mut input: &[u8] = &f[..HEADER_LEN + 10];
        assert_eq!(d.next(&mut input), Ok(None));
        assert!(d.buf.capacity() < 4096, "{}", d.buf.capacity());
        // Byte by byte, capacity stays within twice what arrived (and the frame's length).
        for (i, b) in f[HEADER_LEN + 10..f.len() - 1].iter().enumerate() {
            let mut input: &[u8] = std::slice::from_ref(b);
            assert_eq!(d.next(&mut input), Ok(None));
            let have = HEADER_LEN + 11 + i;
            assert!(d.buf.capacity() <= (2 * have).max(64), "{have}");
        }
        assert!(d.buf.capacity() <= max);
        let mut input: &[u8] = &f[f.len() - 1..];
        assert_eq!(
            d.next(&mut input).unwrap().unwrap().payload.len(),
            max - HEADER_LEN
        );
    }

    #[test]
    #[should_panic]
    fn max_below_header_panics() {
        FrameDecoder::new(23);
    }

    /// xorshift64*: a tiny deterministic PRNG for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_frames_and_splits() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200 {
            let mut stream = Vec::new();
            let mut expect = Vec::new();
            for i in 0..rng.below(20) {
                let n = rng.below(300) as usize;
                let p: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                stream.extend(frame(i, &p));
                expect.push((i, p));
            }
            let chunks: Vec<usize> = (0..8).map(|_| 1 + rng.below(400) as usize).collect();
            let mut d = FrameDecoder::new(HEADER_LEN + 300);
            assert_eq!(decode_all(&mut d, &stream, &chunks), expect);
            assert_eq!(d.buffered_len(), 0);
        }
    }

    #[test]
    fn random_garbage_never_panics_or_overallocates() {
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let n = rng.below(200) as usize;
            let mut bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            if n >= 8 && rng.below(2) == 0 {
                // Plausible small lengths, so that some frames decode.
                let len = rng.below(80);
                bytes[..8].copy_from_slice(&len.to_le_bytes());
            }
            let max = HEADER_LEN + rng.below(64) as usize;
            let mut d = FrameDecoder::new(max);
            let mut pos = 0;
            while pos < bytes.len() {
                let k = (1 + rng.below(50) as usize).min(bytes.len() - pos);
                let mut input = &bytes[pos..pos + k];
                pos += k;
                loop {
                    match d.next(&mut input) {
                        Ok(Some(f)) => assert!(f.payload.len() + HEADER_LEN <= max),
                        Ok(None) => break,
                        Err(_) => break,
                    }
                }
                assert!(d.buffered_len() <= max);
                assert!(d.buf.capacity() <= max.max(HEADER_LEN) * 2);
            }
        }
    }
}
