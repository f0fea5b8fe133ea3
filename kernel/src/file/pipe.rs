//! Pipes (sys_pipe.c): a bounded byte buffer between writers and readers, and FIFOs on it.
//!
//! A [`Pipe`] is the buffer; a [`PipeEnd`] is what an open file holds (`FileKind::Pipe` for
//! pipe(2), or inside a vnode file for a FIFO): it counts as a reader and/or a writer of the
//! pipe until it is dropped (last close of the open file).
//!
//! NetBSD semantics: the buffer holds [`PIPE_SIZE`] bytes, growing to [`BIG_PIPE_SIZE`] for a
//! large write into an empty pipe (at most [`BIG_PIPES_MAX`] such pipes); writes of at most
//! `PIPE_BUF` (512) bytes are atomic; a read returns what is there, sleeps while the pipe is
//! empty and writers exist (`EAGAIN` with `O_NONBLOCK`) and returns 0 once there are none; a
//! write with no reader left fails with `EPIPE` (the syscall layer posts `SIGPIPE`). Data is
//! copied in bounded chunks ([`PIPE_CHUNK_MAX`]); sleeps are interruptible (`EINTR` when the
//! process exits), and a writer on one loop thread wakes a reader parked on another.
//!
//! For the VFS (mkfifo nodes): keep one [`Fifo`] per FIFO vnode, open it with
//! [`Fifo::open`] (which blocks as NetBSD's `fifo_open` does), keep the returned [`PipeEnd`]
//! in the open file, and forward `fo_read`/`fo_write`/`FIONREAD` to [`PipeEnd::read`],
//! [`PipeEnd::write`] and [`PipeEnd::ioctl`]; `fstat` stays the vnode's.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::Iov;
use crate::abi::{
    Stat, Timespec, FIOASYNC, FIOGETOWN, FIONBIO, FIONREAD, FIOSETOWN, PIPE_BUF, S_IFIFO,
};
use crate::mem::{heap_bytes, Budget, Charge};
use crate::sync::{self, WaitQueue};
use crate::{copy, Errno, Proc, Result, UserMem};

/// Normal buffer size of a pipe (`PIPE_SIZE`).
pub const PIPE_SIZE: usize = 16384;
/// Buffer size of a "big" pipe (`BIG_PIPE_SIZE`).
pub const BIG_PIPE_SIZE: usize = 4 * PIPE_SIZE;
/// Most big pipes at a time in the server (`LIMITBIGPIPES`, kern.pipe.maxbigpipes).
pub const BIG_PIPES_MAX: usize = 32;
/// Most bytes moved to or from the client per copy.
pub const PIPE_CHUNK_MAX: usize = 64 * 1024;
/// Bytes in the other end's buffer (`_IOR('f', 121, int)`).
pub const FIONWRITE: u32 = 0x4004_6679;
/// Free space in the other end's buffer (`_IOR('f', 120, int)`).
pub const FIONSPACE: u32 = 0x4004_6678;

/// What a pipe is charged to the budget when it is made: its allocation and a full normal
/// buffer (NetBSD allocates `PIPE_SIZE` of buffer space with the pipe). Growing big charges
/// the difference to [`BIG_PIPE_SIZE`] first.
pub const PIPE_CHARGE_BYTES: u64 = heap_bytes(std::mem::size_of::<Pipe>() + 16) + PIPE_SIZE as u64;

/// Big pipes in use (NetBSD's `nbigpipe`, one count for the whole server).
static BIG_PIPES: AtomicUsize = AtomicUsize::new(0);

/// A pipe's buffer, shared by its ends.
pub struct Pipe {
    st: Mutex<State>,
    /// Readers sleep here for data or the last writer's close (pollers record on it).
    readers_q: Arc<WaitQueue>,
    /// Writers sleep here for space or the last reader's close (pollers record on it).
    writers_q: Arc<WaitQueue>,
    /// FIFO opens sleep here for the other side.
    opens_q: WaitQueue,
    /// Serializes readers (`pipelock`), so a failed copy-out leaves the data in place.
    read_lock: sync::Mutex<()>,
}

struct State {
    buf: VecDeque<u8>,
    size: usize,
    big: bool,
    readers: usize,
    writers: usize,
    /// Opens so far of each side, so a FIFO open sees a peer that came and went.
    reader_opens: u64,
    writer_opens: u64,
    atime: Timespec,
    mtime: Timespec,
    btime: Timespec,
    owner: i32,
    /// The pipe's share of the budget ([`PIPE_CHARGE_BYTES`], more while big).
    charge: Charge,
}

impl Drop for State {
    fn drop(&mut self) {
        if self.big {
            BIG_PIPES.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Pipe {
    /// An empty pipe with no ends, created at `now`, charged to `budget`: `ENOMEM` when
    /// the budget refuses ([`PIPE_CHARGE_BYTES`], as NetBSD's `pipespace` failing).
    pub fn new(now: Timespec, budget: &Arc<Budget>) -> Result<Arc<Pipe>> {
        let charge = Charge::try_new(budget, PIPE_CHARGE_BYTES).map_err(|_| Errno::ENOMEM)?;
        Ok(Arc::new(Pipe {
            st: Mutex::new(State {
                buf: VecDeque::new(),
                size: PIPE_SIZE,
                big: false,
                readers: 0,
                writers: 0,
                reader_opens: 0,
                writer_opens: 0,
                atime: now,
                mtime: now,
                btime: now,
                owner: 0,
                charge,
            }),
            readers_q: Arc::new(WaitQueue::new()),
            writers_q: Arc::new(WaitQueue::new()),
            opens_q: WaitQueue::new(),
            read_lock: sync::Mutex::new(()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new end reading and/or writing this pipe.
    pub fn end(self: &Arc<Pipe>, read: bool, write: bool, uid: u32, gid: u32) -> PipeEnd {
        self.attach(read, write, uid, gid).0
    }

    /// A new end, and (readers, writers, reader opens, writer opens) right after it came.
    fn attach(
        self: &Arc<Pipe>,
        read: bool,
        write: bool,
        uid: u32,
        gid: u32,
    ) -> (PipeEnd, [u64; 4]) {
        let counts = {
            let mut st = self.lock();
            if read {
                st.readers += 1;
                st.reader_opens += 1;
            }
            if write {
                st.writers += 1;
                st.writer_opens += 1;
            }
            [
                st.readers as u64,
                st.writers as u64,
                st.reader_opens,
                st.writer_opens,
            ]
        };
        self.opens_q.wake_all();
        let end = PipeEnd {
            pipe: self.clone(),
            read,
            write,
            uid,
            gid,
        };
        (end, counts)
    }

    /// `pipe(2)`: a new pipe (charged to `budget`, `ENOMEM` beyond it) and its read and
    /// write ends, owned by `uid`/`gid`.
    pub fn pair(
        now: Timespec,
        uid: u32,
        gid: u32,
        budget: &Arc<Budget>,
    ) -> Result<(PipeEnd, PipeEnd)> {
        let pipe = Pipe::new(now, budget)?;
        Ok((
            pipe.end(true, false, uid, gid),
            pipe.end(false, true, uid, gid),
        ))
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One open end of a pipe: a reader, a writer, or both (a FIFO opened `O_RDWR`).
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
    uid: u32,
    gid: u32,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.lock();
            st.readers -= usize::from(self.read);
            st.writers -= usize::from(self.write);
        }
        // pipeclose: the other side sees EOF (readers) or EPIPE (writers).
        self.pipe.readers_q.wake_all();
        self.pipe.writers_q.wake_all();
    }
}

impl super::FileOps for PipeEnd {
    async fn read<M: UserMem>(
        &self,
        fp: &super::File,
        k: &crate::Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        match at {
            Some(_) => (0, Err(Errno::ESPIPE)),
            None => PipeEnd::read(self, p, mem, iov, fp.nonblock(), super::now(k)).await,
        }
    }

    async fn write<M: UserMem>(
        &self,
        fp: &super::File,
        k: &crate::Kernel,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        at: Option<i64>,
    ) -> (u64, Result<()>) {
        match at {
            Some(_) => (0, Err(Errno::ESPIPE)),
            None => PipeEnd::write(self, p, mem, iov, fp.nonblock(), super::now(k)).await,
        }
    }

    fn ioctl(&self, _fp: &super::File, com: u32, data: &mut [u8]) -> Result<()> {
        PipeEnd::ioctl(self, com, data)
    }

    fn stat(&self, _k: &crate::Kernel) -> Result<Stat> {
        Ok(PipeEnd::stat(self))
    }

    fn poll(
        &self,
        _fp: &super::File,
        events: super::PollEvents,
        sel: Option<&mut super::Selector>,
    ) -> super::PollEvents {
        PipeEnd::poll(self, events, sel)
    }

    fn filter(
        &self,
        _fp: &super::File,
        filter: super::Filter,
        sel: Option<&mut super::Selector>,
    ) -> Result<super::Filt> {
        Ok(PipeEnd::filter(self, filter, sel))
    }
}

/// What a reader found.
enum Got {
    Data(Vec<u8>),
    Eof,
    Again,
}

impl PipeEnd {
    /// The pipe.
    pub fn pipe(&self) -> &Arc<Pipe> {
        &self.pipe
    }

    /// `pipe_poll`: readable with data or at EOF, writable with room for `PIPE_BUF` bytes,
    /// `POLLHUP` once the other side is gone; otherwise the selector is recorded on the
    /// queues this end's reads or writes sleep on (woken with `wake_all` by the other side).
    pub fn poll(
        &self,
        events: super::PollEvents,
        sel: Option<&mut super::Selector>,
    ) -> super::PollEvents {
        use super::ops::{POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
        let pipe = &*self.pipe;
        // Recorded before the state is read: a change after the read wakes the selector.
        if let Some(s) = sel {
            if self.read {
                s.record(&pipe.readers_q);
            }
            if self.write {
                s.record(&pipe.writers_q);
            }
        }
        // NetBSD's two pipe structures: a read end's own buffer holds the data and its peer
        // (the write end) has none; a write end's own buffer is empty and its peer's holds
        // the data. Each end is at EOF once its peer is gone.
        let st = pipe.lock();
        let (rd_eof, wr_eof) = (st.writers == 0, st.readers == 0);
        let room = st.size.saturating_sub(st.buf.len()) >= PIPE_BUF;
        let mut readable = false;
        let mut writable = false;
        let mut hup = false;
        if self.read {
            readable |= !st.buf.is_empty() || rd_eof;
            writable |= rd_eof;
            hup |= rd_eof;
        }
        if self.write {
            readable |= wr_eof;
            writable |= wr_eof || room;
            hup |= wr_eof;
        }
        let mut r = 0;
        if readable {
            r |= events & (POLLIN | POLLRDNORM);
        }
        if writable {
            r |= events & (POLLOUT | POLLWRNORM);
        }
        if hup {
            r |= POLLHUP;
        }
        r
    }

    /// `filt_piperead`/`filt_pipewrite`: readable with data (`data` = bytes buffered) or at
    /// EOF (`EV_EOF`); writable with room for `PIPE_BUF` bytes (`data` = room), or `EV_EOF`
    /// with no reader left.
    pub fn filter(&self, filter: super::Filter, sel: Option<&mut super::Selector>) -> super::Filt {
        let pipe = &*self.pipe;
        if let Some(s) = sel {
            s.record(match filter {
                super::Filter::Read => &pipe.readers_q,
                super::Filter::Write => &pipe.writers_q,
            });
        }
        let st = pipe.lock();
        let (rd_eof, wr_eof) = (st.writers == 0, st.readers == 0);
        match filter {
            // The read end: its buffer; a write-only end: an empty buffer, EOF once the
            // reader is gone.
            super::Filter::Read if self.read => super::Filt {
                ready: !st.buf.is_empty() || rd_eof,
                data: st.buf.len() as i64,
                eof: rd_eof,
            },
            super::Filter::Read => super::Filt {
                ready: wr_eof,
                data: 0,
                eof: wr_eof,
            },
            // The write end: room in its peer's buffer; a read-only end's peer has none.
            super::Filter::Write if self.write && !wr_eof => {
                let room = st.size.saturating_sub(st.buf.len());
                super::Filt {
                    ready: room >= PIPE_BUF,
                    data: room as i64,
                    eof: false,
                }
            }
            super::Filter::Write => {
                let eof = if self.write { wr_eof } else { rd_eof };
                super::Filt {
                    ready: eof,
                    data: 0,
                    eof,
                }
            }
        }
    }

    /// `pipe_read`: fills the buffers from the pipe; returns the bytes moved and the error
    /// that stopped the transfer. Sleeps (interruptibly, as `p`) only while nothing was read.
    pub async fn read<M: UserMem>(
        &self,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        nonblock: bool,
        now: Timespec,
    ) -> (u64, Result<()>) {
        let pipe = &*self.pipe;
        let _reading = match pipe.read_lock.lock_sig(p).await {
            Ok(g) => g,
            Err(e) => return (0, Err(e)),
        };
        let mut done = 0u64;
        for v in iov {
            let mut off = 0u64;
            while off < v.len {
                let want = (v.len - off).min(PIPE_CHUNK_MAX as u64) as usize;
                let got = if done > 0 {
                    // Once something was read, take only what is there.
                    let st = pipe.lock();
                    match st.buf.len() {
                        0 => Got::Eof,
                        n => Got::Data(peek(&st, want.min(n))),
                    }
                } else {
                    let r = sync::wait_for(p, &pipe.readers_q, || {
                        let st = pipe.lock();
                        match st.buf.len() {
                            0 if st.writers == 0 => Some(Got::Eof),
                            0 if nonblock => Some(Got::Again),
                            0 => None,
                            n => Some(Got::Data(peek(&st, want.min(n)))),
                        }
                    })
                    .await;
                    match r {
                        Ok(g) => g,
                        Err(e) => return (done, Err(e)),
                    }
                };
                let data = match got {
                    Got::Data(d) => d,
                    Got::Eof => return self.read_end(done, now, Ok(())),
                    Got::Again => return (done, Err(Errno::EAGAIN)),
                };
                if let Err(e) = copy::copyout(mem, v.base.wrapping_add(off), &data).await {
                    return self.read_end(done, now, Err(e));
                }
                pipe.lock().buf.drain(..data.len());
                pipe.writers_q.wake_all();
                off += data.len() as u64;
                done += data.len() as u64;
            }
        }
        self.read_end(done, now, Ok(()))
    }

    fn read_end(&self, done: u64, now: Timespec, res: Result<()>) -> (u64, Result<()>) {
        if res.is_ok() {
            self.pipe.lock().atime = now;
        }
        (done, res)
    }

    /// `pipe_write`: appends the buffers to the pipe; returns the bytes moved and the error
    /// that stopped the transfer (`EPIPE` without readers, `EAGAIN` when full and
    /// `nonblock`). A write of at most `PIPE_BUF` bytes goes in whole or not at all.
    pub async fn write<M: UserMem>(
        &self,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        nonblock: bool,
        now: Timespec,
    ) -> (u64, Result<()>) {
        let pipe = &*self.pipe;
        let total: u64 = iov.iter().map(|v| v.len).sum();
        {
            let mut st = pipe.lock();
            if st.readers == 0 {
                return (0, Err(Errno::EPIPE));
            }
            grow_for(&mut st, total);
        }
        let res = if total <= PIPE_BUF as u64 {
            self.write_atomic(p, mem, iov, total as usize, nonblock)
                .await
        } else {
            self.write_stream(p, mem, iov, nonblock).await
        };
        if res.1.is_ok() {
            pipe.lock().mtime = now;
        }
        res
    }

    /// A small write: copied in first, then put in whole once there is room for it.
    async fn write_atomic<M: UserMem>(
        &self,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        total: usize,
        nonblock: bool,
    ) -> (u64, Result<()>) {
        let mut data = Vec::with_capacity(total);
        for v in iov {
            match copy::copyin(mem, v.base, v.len as usize).await {
                Ok(d) => data.extend_from_slice(&d),
                Err(e) => return (0, Err(e)),
            }
        }
        if data.is_empty() {
            return (0, Ok(()));
        }
        let pipe = &*self.pipe;
        let r = sync::wait_for(p, &pipe.writers_q, || {
            let mut st = pipe.lock();
            if st.readers == 0 {
                Some(Err(Errno::EPIPE))
            } else if st.size - st.buf.len() >= data.len() {
                st.buf.extend(&data);
                Some(Ok(()))
            } else if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })
        .await
        .and_then(|r| r);
        match r {
            Ok(()) => {
                pipe.readers_q.wake_all();
                (data.len() as u64, Ok(()))
            }
            Err(e) => (0, Err(e)),
        }
    }

    /// A large write: waits for room, copies in at most that much, appends, repeats.
    async fn write_stream<M: UserMem>(
        &self,
        p: &Proc,
        mem: &M,
        iov: &[Iov],
        nonblock: bool,
    ) -> (u64, Result<()>) {
        let pipe = &*self.pipe;
        let mut done = 0u64;
        for v in iov {
            let mut off = 0u64;
            while off < v.len {
                let room = sync::wait_for(p, &pipe.writers_q, || {
                    let st = pipe.lock();
                    let room = st.size - st.buf.len();
                    if st.readers == 0 {
                        Some(Err(Errno::EPIPE))
                    } else if room > 0 {
                        Some(Ok(room))
                    } else if nonblock {
                        Some(Err(Errno::EAGAIN))
                    } else {
                        None
                    }
                })
                .await
                .and_then(|r| r);
                let room = match room {
                    Ok(n) => n,
                    Err(e) => return (done, Err(e)),
                };
                let n = (v.len - off).min(room.min(PIPE_CHUNK_MAX) as u64) as usize;
                let data = match copy::copyin(mem, v.base.wrapping_add(off), n).await {
                    Ok(d) => d,
                    Err(e) => return (done, Err(e)),
                };
                // Another writer may have taken the room meanwhile: put in what fits.
                let mut put = 0;
                while put < data.len() {
                    let r = sync::wait_for(p, &pipe.writers_q, || {
                        let mut st = pipe.lock();
                        let room = st.size - st.buf.len();
                        if st.readers == 0 {
                            Some(Err(Errno::EPIPE))
                        } else if room > 0 {
                            let k = room.min(data.len() - put);
                            st.buf.extend(&data[put..put + k]);
                            Some(Ok(k))
                        } else if nonblock {
                            Some(Err(Errno::EAGAIN))
                        } else {
                            None
                        }
                    })
                    .await
                    .and_then(|r| r);
                    match r {
                        Ok(k) => {
                            put += k;
                            done += k as u64;
                            pipe.readers_q.wake_all();
                        }
                        Err(e) => return (done, Err(e)),
                    }
                }
                off += n as u64;
            }
        }
        (done, Ok(()))
    }

    /// `pipe_ioctl`: `FIONREAD` (bytes buffered for this end's reader), `FIONWRITE` and
    /// `FIONSPACE` (the other direction, always empty here), `FIONBIO`/`FIOASYNC` (flags
    /// kept by the file), `FIOSETOWN`/`FIOGETOWN`; others `ENOTTY`.
    pub fn ioctl(&self, com: u32, data: &mut [u8]) -> Result<()> {
        let mut st = self.pipe.lock();
        let out = match com {
            FIONBIO | FIOASYNC => return Ok(()),
            FIONREAD if self.read => st.buf.len() as i32,
            FIONREAD | FIONWRITE => 0,
            // The write end's own buffer has no space: it writes into its peer's.
            FIONSPACE if self.read => (st.size - st.buf.len()) as i32,
            FIONSPACE => 0,
            FIOSETOWN => {
                let v = data.get(..4).ok_or(Errno::EINVAL)?;
                st.owner = i32::from_le_bytes(v.try_into().expect("4 bytes"));
                return Ok(());
            }
            FIOGETOWN => st.owner,
            _ => return Err(Errno::ENOTTY),
        };
        if let Some(d) = data.get_mut(..4) {
            d.copy_from_slice(&out.to_le_bytes());
        }
        Ok(())
    }

    /// `pipe_stat`: `S_IFIFO | 0600`, the buffer size as `st_blksize`, the buffered bytes
    /// as `st_size` (read end; the write end's own buffer is empty), the opener's ids.
    pub fn stat(&self) -> Stat {
        let st = self.pipe.lock();
        let (size, atime, mtime) = if self.read {
            (st.buf.len() as i64, st.atime, st.mtime)
        } else {
            (0, st.btime, st.btime)
        };
        Stat {
            mode: S_IFIFO | 0o600,
            uid: self.uid,
            gid: self.gid,
            size,
            blocks: i64::from(size != 0),
            blksize: st.size as i32,
            atime,
            mtime,
            ctime: st.btime,
            birthtime: st.btime,
            ..Stat::default()
        }
    }
}

/// The first `n` buffered bytes, left in place.
fn peek(st: &State, n: usize) -> Vec<u8> {
    st.buf.iter().take(n).copied().collect()
}

/// A write larger than `PIPE_SIZE` into an empty normal pipe makes it big, if allowed and
/// the budget has room for the larger buffer (otherwise it stays normal, as NetBSD's pipe
/// does when `pipespace` fails).
fn grow_for(st: &mut State, total: u64) {
    if total > PIPE_SIZE as u64 && !st.big && st.buf.is_empty() {
        let ok = BIG_PIPES
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < BIG_PIPES_MAX).then_some(n + 1)
            })
            .is_ok();
        if !ok {
            return;
        }
        if st
            .charge
            .try_grow((BIG_PIPE_SIZE - PIPE_SIZE) as u64)
            .is_err()
        {
            BIG_PIPES.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        st.big = true;
        st.size = BIG_PIPE_SIZE;
    }
}

/// The pipe behind a FIFO vnode: created by the first open, gone (with its data) after the
/// last close.
#[derive(Default)]
pub struct Fifo {
    pipe: Mutex<Weak<Pipe>>,
}

impl Fifo {
    /// A FIFO nobody has open.
    pub fn new() -> Fifo {
        Fifo::default()
    }

    /// `fifo_open` for `p` (ids of the opener in `uid`/`gid`): `read`/`write` from the open
    /// mode; the pipe the first open makes is charged to `budget` (`ENOMEM` beyond
    /// it). A reader waits for a writer and a writer for a reader, unless `nonblock`; a
    /// non-blocking writer without a reader gets `ENXIO`; `O_RDWR` never waits. `EINTR` if
    /// `p` exits while waiting.
    pub async fn open(
        &self,
        p: &Proc,
        read: bool,
        write: bool,
        nonblock: bool,
        now: Timespec,
        budget: &Arc<Budget>,
    ) -> Result<PipeEnd> {
        let pipe = {
            let mut slot = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
            match slot.upgrade() {
                Some(pipe) => pipe,
                None => {
                    let pipe = Pipe::new(now, budget)?;
                    *slot = Arc::downgrade(&pipe);
                    pipe
                }
            }
        };
        let cred = p.cred();
        let (end, [readers, writers, r0, w0]) = pipe.attach(read, write, cred.euid, cred.egid);
        let peers = if read { writers } else { readers };
        if read == write {
            return Ok(end);
        }
        if write && nonblock && peers == 0 {
            return Err(Errno::ENXIO);
        }
        if nonblock || peers > 0 {
            return Ok(end);
        }
        sync::sleep_until(p, &pipe.opens_q, || {
            let st = pipe.lock();
            if read {
                st.writers > 0 || st.writer_opens != w0
            } else {
                st.readers > 0 || st.reader_opens != r0
            }
        })
        .await?;
        Ok(end)
    }

    /// Whether some end is open.
    pub fn is_open(&self) -> bool {
        self.pipe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .strong_count()
            > 0
    }
}

#[cfg(test)]
mod poll_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::*;
    use crate::file::ops::{POLLHUP, POLLIN, POLLOUT, POLLRDNORM};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The readiness hook: an empty pipe is writable, not readable; the reader's selector is
    /// recorded once, woken when the writer goes, and leaves nothing behind when dropped;
    /// then the reader sees EOF (`POLLIN`) and `POLLHUP`.
    #[test]
    fn poll_answers_readiness_and_records_the_selector() {
        let budget = crate::mem::Budget::unlimited();
        let (r, w) = Pipe::pair(Timespec::default(), 0, 0, &budget).unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let mut sel = crate::file::Selector::new(Waker::from(count.clone()));
        assert_eq!(w.poll(POLLOUT, None), POLLOUT);
        assert_eq!(r.poll(POLLIN | POLLRDNORM, Some(&mut sel)), 0);
        assert_eq!(r.poll(POLLIN, Some(&mut sel)), 0);
        assert_eq!(r.pipe().readers_q.sleepers(), 1, "recorded once");
        // A poller that gives up leaves nothing in the queue.
        let mut other = crate::file::Selector::new(Waker::from(count.clone()));
        assert_eq!(r.poll(POLLIN, Some(&mut other)), 0);
        assert_eq!(r.pipe().readers_q.sleepers(), 2);
        drop(other);
        assert_eq!(r.pipe().readers_q.sleepers(), 1, "cancelled on drop");
        drop(w);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken by the close");
        assert_eq!(r.poll(POLLIN, None), POLLIN | POLLHUP);
    }
}
