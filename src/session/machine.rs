//! The connection's protocol state machine, without I/O (sp-protocol.md §5.4, §8, §12, §13).
//!
//! `Machine` decides what each received frame means — which request to run, which ERROR to
//! answer, when to close — and keeps the counts that decide when the connection's process can
//! be torn down. `Conn` (mod.rs) carries the decisions out (spawns processes, runs syscalls,
//! writes frames). Kept apart so that the fuzz target `session` (root `fuzz/`) can drive every
//! transition without sockets or a kernel.
//!
//! States: NEW (no process) → RUNNING (after a GUEST or FORK handshake succeeded) → DYING (the
//! reader stopped: EOF, a framing error, or a close we decided). A connection is finished —
//! its process exits, its slot is given back — exactly once, when the reader has stopped and
//! no syscall is in flight.

use sp::fast::{FastGrant, PrefetchRef, FAST_FLAG};
use sp::{Class, ErrorCode, HandshakeFork, HandshakeType, Header, MsgType, MAX_SYSCALL_ARGS};

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Banner sent, no handshake yet.
    New,
    /// A process is attached; syscalls are served.
    Running,
    /// The reader stopped; in-flight syscalls finish, nothing new is accepted.
    Dying,
}

/// What to do with one received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// A RESP: hand the payload to the copy table (an unknown reqno is dropped there).
    Deliver,
    /// Answer ERROR with this code and go on.
    Error(ErrorCode),
    /// Answer ERROR with this code, then close the connection once it is sent.
    Fail(ErrorCode),
    /// GUEST handshake: spawn a process with this name, then [`Machine::running`] (or close).
    Guest(&'a [u8]),
    /// FORK handshake: claim the prepared process, then [`Machine::running`] (or fail).
    Fork(HandshakeFork),
    /// Run a syscall; it is already counted in flight: call [`Machine::syscall_done`] after.
    Syscall {
        /// Syscall number (`u` of the header).
        nr: u32,
        /// The argument slots.
        args: [u64; MAX_SYSCALL_ARGS],
        /// Client memory sent with a SYSCALL_FAST (validated; empty for SYSCALL).
        prefetch: PrefetchRef<'a>,
    },
    /// PREFORK: prepare a child process and answer its cookie.
    Prefork,
    /// EXEC handshake: once idle, rename the process, answer, then [`Machine::exec_done`].
    Exec(&'a [u8]),
    /// The connection is dying: stop reading.
    Stop,
}

/// The decision-making half of a connection.
#[derive(Debug)]
pub struct Machine {
    state: State,
    inflight: usize,
    max_inflight: usize,
    in_exec: bool,
    reader_done: bool,
    finished: bool,
    /// What this server grants a client that asks for the fast path (None: refused as
    /// NetBSD's server refuses it).
    grant: Option<FastGrant>,
    /// The handshake being carried out asked for the fast path (and it is granted).
    fast_asked: bool,
    /// The fast-path version that handshake's hello named.
    asked_version: u32,
    /// The fast path is in use: SYSCALL_FAST is accepted.
    fast: bool,
}

impl Machine {
    /// A new connection allowing `max_inflight` syscalls at once (at least 1).
    pub fn new(max_inflight: usize) -> Machine {
        Machine {
            state: State::New,
            inflight: 0,
            max_inflight: max_inflight.max(1),
            in_exec: false,
            reader_done: false,
            finished: false,
            grant: None,
            fast_asked: false,
            asked_version: 0,
            fast: false,
        }
    }

    /// The same, granting `grant` to a client that asks for the fast path
    /// (docs/sp-fastpath.md).
    pub fn with_fast_path(max_inflight: usize, grant: FastGrant) -> Machine {
        Machine {
            grant: Some(grant),
            ..Machine::new(max_inflight)
        }
    }

    /// The grant for the handshake just decided, if it asked for the fast path: answer it
    /// with `sp::fast::encode_fast_handshake_resp` instead of the plain response.
    pub fn fast_answer(&self) -> Option<FastGrant> {
        let g = self.grant.filter(|_| self.fast_asked)?;
        Some(FastGrant {
            version: g.version.min(self.asked_version),
            ..g
        })
    }

    /// The fast path is in use on this connection.
    pub fn fast(&self) -> bool {
        self.fast
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Syscalls in flight.
    pub fn inflight(&self) -> usize {
        self.inflight
    }

    /// An EXEC handshake is being carried out.
    pub fn in_exec(&self) -> bool {
        self.in_exec
    }

    /// The reader has stopped (the connection is gone or going).
    pub fn reader_done(&self) -> bool {
        self.reader_done
    }

    /// What to do with a frame the reader decoded.
    pub fn on_frame<'a>(&mut self, h: &Header, payload: &'a [u8]) -> Decision<'a> {
        match h.class {
            Class::RESP => Decision::Deliver,
            Class::REQ => match self.state {
                State::New => self.on_new(h, payload),
                State::Running => self.on_running(h, payload),
                State::Dying => Decision::Stop,
            },
            // ERROR or an unknown class: answered, connection kept (reference behaviour).
            _ => Decision::Error(ErrorCode::MALFORMED_REQUEST),
        }
    }

    /// Before the handshake only GUEST and FORK are accepted (§6.1, §5.4 ERR_AUTH).
    fn on_new<'a>(&mut self, h: &Header, payload: &'a [u8]) -> Decision<'a> {
        if h.typ != MsgType::HANDSHAKE {
            return Decision::Fail(ErrorCode::AUTH);
        }
        let (sub, payload) = match self.fast_hello(h.u, payload) {
            Ok(x) => x,
            Err(d) => return d,
        };
        match sub {
            HandshakeType::GUEST => Decision::Guest(sp::parse_name(payload)),
            HandshakeType::FORK => match sp::parse_handshake_fork(payload) {
                Some(hf) => Decision::Fork(hf),
                None => Decision::Fail(ErrorCode::MALFORMED_REQUEST),
            },
            _ => Decision::Fail(ErrorCode::AUTH),
        }
    }

    fn on_running<'a>(&mut self, h: &Header, payload: &'a [u8]) -> Decision<'a> {
        match h.typ {
            MsgType::SYSCALL => {
                if self.inflight >= self.max_inflight {
                    // librumpclient resends on TRYAGAIN (§5.4): back-pressure, not failure.
                    return Decision::Error(ErrorCode::TRYAGAIN);
                }
                self.inflight += 1;
                Decision::Syscall {
                    nr: h.u,
                    args: sp::syscall_args(payload),
                    prefetch: PrefetchRef::EMPTY,
                }
            }
            MsgType::PREFORK if self.in_exec => Decision::Fail(ErrorCode::INEXEC),
            MsgType::PREFORK => Decision::Prefork,
            MsgType::SYSCALL_FAST if self.fast => {
                let g = self.grant.unwrap_or(FastGrant {
                    version: 0,
                    max_ranges: 0,
                    max_bytes: 0,
                });
                let fs =
                    match sp::fast::parse_fast_syscall(payload, g.max_ranges, g.max_bytes as usize)
                    {
                        Ok(fs) => fs,
                        // A client that lies about its own frame: refuse it and close.
                        Err(_) => return Decision::Fail(ErrorCode::MALFORMED_REQUEST),
                    };
                if self.inflight >= self.max_inflight {
                    return Decision::Error(ErrorCode::TRYAGAIN);
                }
                self.inflight += 1;
                Decision::Syscall {
                    nr: h.u,
                    args: fs.args,
                    prefetch: fs.prefetch,
                }
            }
            MsgType::HANDSHAKE => {
                let (sub, payload) = match self.fast_hello(h.u, payload) {
                    Ok(x) => x,
                    Err(d) => return d,
                };
                if sub != HandshakeType::EXEC {
                    return Decision::Fail(ErrorCode::MALFORMED_REQUEST);
                }
                if self.in_exec {
                    return Decision::Fail(ErrorCode::INEXEC);
                }
                self.in_exec = true;
                // The new image speaks what its handshake asked for.
                self.fast = self.fast_asked;
                Decision::Exec(sp::parse_name(payload))
            }
            _ => Decision::Error(ErrorCode::MALFORMED_REQUEST),
        }
    }

    /// Splits a handshake's subtype into the base one and whether the fast path is asked for
    /// (recorded in `fast_asked`), and its payload into the usual part. A server that grants
    /// no fast path sees the flagged subtype as unknown, as NetBSD's does; a granting one
    /// closes on a malformed hello.
    fn fast_hello<'a>(
        &mut self,
        u: u32,
        payload: &'a [u8],
    ) -> Result<(HandshakeType, &'a [u8]), Decision<'a>> {
        self.fast_asked = false;
        if u & FAST_FLAG == 0 || self.grant.is_none() {
            return Ok((HandshakeType(u), payload));
        }
        match sp::fast::parse_fast_hello(payload) {
            Some((version, rest)) => {
                self.fast_asked = true;
                self.asked_version = version;
                Ok((HandshakeType(u & !FAST_FLAG), rest))
            }
            None => Err(Decision::Fail(ErrorCode::MALFORMED_REQUEST)),
        }
    }

    /// The GUEST or FORK handshake succeeded: the connection has its process.
    pub fn running(&mut self) {
        debug_assert_eq!(self.state, State::New);
        if self.state == State::New {
            self.state = State::Running;
            self.fast = self.fast_asked;
        }
    }

    /// A syscall answered. True if the connection is now idle (an EXEC may proceed).
    pub fn syscall_done(&mut self) -> bool {
        assert!(
            self.inflight > 0,
            "syscall_done without a syscall in flight"
        );
        self.inflight -= 1;
        self.inflight == 0
    }

    /// No syscall in flight, or the connection is gone: what an EXEC waits for.
    pub fn idle(&self) -> bool {
        self.inflight == 0 || self.reader_done
    }

    /// The EXEC handshake finished (answered, or abandoned because the connection died).
    pub fn exec_done(&mut self) {
        self.in_exec = false;
    }

    /// The reader stopped: no frame is decided any more.
    pub fn disconnect(&mut self) {
        self.state = State::Dying;
        self.reader_done = true;
    }

    /// True exactly once: when the reader has stopped and no syscall is in flight. The
    /// caller then ends the process and gives the connection's slot back.
    pub fn take_finish(&mut self) -> bool {
        if !self.reader_done || self.inflight > 0 || self.finished {
            return false;
        }
        self.finished = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(typ: MsgType, u: u32) -> Header {
        Header {
            len: 24,
            reqno: 1,
            class: Class::REQ,
            typ,
            u,
        }
    }

    #[test]
    fn handshake_first() {
        let mut m = Machine::new(2);
        let sys = req(MsgType::SYSCALL, 20);
        assert_eq!(m.on_frame(&sys, &[]), Decision::Fail(ErrorCode::AUTH));
        let g = req(MsgType::HANDSHAKE, HandshakeType::GUEST.0);
        assert_eq!(m.on_frame(&g, b"x\0"), Decision::Guest(b"x"));
        m.running();
        assert!(matches!(
            m.on_frame(&sys, &[]),
            Decision::Syscall { nr: 20, .. }
        ));
        assert_eq!(
            m.on_frame(&g, b"x\0"),
            Decision::Fail(ErrorCode::MALFORMED_REQUEST)
        );
    }

    #[test]
    fn inflight_limit_and_finish_once() {
        let mut m = Machine::new(2);
        m.running();
        let sys = req(MsgType::SYSCALL, 3);
        assert!(matches!(m.on_frame(&sys, &[]), Decision::Syscall { .. }));
        assert!(matches!(m.on_frame(&sys, &[]), Decision::Syscall { .. }));
        assert_eq!(m.on_frame(&sys, &[]), Decision::Error(ErrorCode::TRYAGAIN));
        assert!(!m.syscall_done());
        m.disconnect();
        assert!(!m.take_finish(), "a syscall is still in flight");
        assert!(m.idle());
        assert!(m.syscall_done());
        assert!(m.take_finish());
        assert!(!m.take_finish());
        assert_eq!(m.on_frame(&sys, &[]), Decision::Stop);
    }

    #[test]
    fn exec_excludes_prefork_and_exec() {
        let mut m = Machine::new(4);
        m.running();
        let e = req(MsgType::HANDSHAKE, HandshakeType::EXEC.0);
        assert_eq!(m.on_frame(&e, b"sh\0"), Decision::Exec(b"sh"));
        assert_eq!(m.on_frame(&e, b"sh\0"), Decision::Fail(ErrorCode::INEXEC));
        let pf = req(MsgType::PREFORK, 0);
        assert_eq!(m.on_frame(&pf, &[]), Decision::Fail(ErrorCode::INEXEC));
        m.exec_done();
        assert_eq!(m.on_frame(&pf, &[]), Decision::Prefork);
    }

    fn grant() -> FastGrant {
        FastGrant {
            version: 1,
            max_ranges: 4,
            max_bytes: 64,
        }
    }

    fn hello(payload: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        sp::fast::encode_fast_handshake_req(&mut o, 1, 0, payload);
        o[sp::HEADER_LEN..].to_vec()
    }

    #[test]
    fn fast_handshake_granted_or_refused_as_netbsd() {
        let flagged = req(MsgType::HANDSHAKE, HandshakeType::GUEST.0 | FAST_FLAG);
        // Without a grant the flagged subtype is unknown: AUTH, as NetBSD's server.
        let mut m = Machine::new(2);
        assert_eq!(
            m.on_frame(&flagged, &hello(b"a\0")),
            Decision::Fail(ErrorCode::AUTH)
        );
        // With one: the usual handshake behind the hello, answered with the grant.
        let mut m = Machine::with_fast_path(2, grant());
        assert_eq!(m.on_frame(&flagged, &hello(b"a\0")), Decision::Guest(b"a"));
        assert_eq!(m.fast_answer(), Some(grant()));
        m.running();
        assert!(m.fast());
        // A plain handshake on a granting server: plain answer, no SYSCALL_FAST.
        let mut m = Machine::with_fast_path(2, grant());
        let g = req(MsgType::HANDSHAKE, HandshakeType::GUEST.0);
        assert_eq!(m.on_frame(&g, b"b\0"), Decision::Guest(b"b"));
        assert_eq!(m.fast_answer(), None);
        m.running();
        let sf = req(MsgType::SYSCALL_FAST, 4);
        let mut p = Vec::new();
        sp::fast::encode_fast_syscall(&mut p, 2, 4, &[1], &mut [], &grant());
        assert_eq!(
            m.on_frame(&sf, &p[sp::HEADER_LEN..]),
            Decision::Error(ErrorCode::MALFORMED_REQUEST),
            "unknown type on a plain connection: error, kept"
        );
        // A malformed hello on a granting server closes.
        let mut m = Machine::with_fast_path(2, grant());
        assert_eq!(
            m.on_frame(&flagged, b"SPFP"),
            Decision::Fail(ErrorCode::MALFORMED_REQUEST)
        );
    }

    #[test]
    fn fast_syscalls_parsed_limited_and_exec_switches() {
        let mut m = Machine::with_fast_path(1, grant());
        let flagged = req(MsgType::HANDSHAKE, HandshakeType::GUEST.0 | FAST_FLAG);
        assert!(matches!(
            m.on_frame(&flagged, &hello(b"a\0")),
            Decision::Guest(_)
        ));
        m.running();
        let sf = req(MsgType::SYSCALL_FAST, 5);
        let mut o = Vec::new();
        let path = b"/x\0";
        sp::fast::encode_fast_syscall(
            &mut o,
            2,
            5,
            &[0x1000, 2],
            &mut [(0x1000, &path[..])],
            &grant(),
        );
        let p = o[sp::HEADER_LEN..].to_vec();
        match m.on_frame(&sf, &p) {
            Decision::Syscall { nr, args, prefetch } => {
                assert_eq!((nr, args[0], args[1]), (5, 0x1000, 2));
                assert_eq!(prefetch.copyinstr(0x1000, 1024), Some(&path[..]));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(m.on_frame(&sf, &p), Decision::Error(ErrorCode::TRYAGAIN));
        assert!(m.syscall_done());
        // Over the grant (65 bytes > 64): refused and closed.
        let big = [0u8; 65];
        let g2 = FastGrant {
            max_bytes: 1000,
            ..grant()
        };
        o.clear();
        sp::fast::encode_fast_syscall(&mut o, 3, 4, &[], &mut [(0x1000, &big[..])], &g2);
        assert_eq!(
            m.on_frame(&sf, &o[sp::HEADER_LEN..]),
            Decision::Fail(ErrorCode::MALFORMED_REQUEST)
        );
        // A plain EXEC turns the fast path off; EXEC | FAST keeps it.
        let mut m = Machine::with_fast_path(1, grant());
        assert!(matches!(
            m.on_frame(&flagged, &hello(b"a\0")),
            Decision::Guest(_)
        ));
        m.running();
        let e = req(MsgType::HANDSHAKE, HandshakeType::EXEC.0);
        assert_eq!(m.on_frame(&e, b"sh\0"), Decision::Exec(b"sh"));
        assert_eq!(m.fast_answer(), None);
        assert!(!m.fast());
        m.exec_done();
        let ef = req(MsgType::HANDSHAKE, HandshakeType::EXEC.0 | FAST_FLAG);
        assert_eq!(m.on_frame(&ef, &hello(b"sh2\0")), Decision::Exec(b"sh2"));
        assert_eq!(m.fast_answer(), Some(grant()));
        assert!(m.fast());
    }
}
