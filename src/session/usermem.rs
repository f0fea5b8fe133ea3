//! The kernel's view of a remote process's memory: copy requests over the sp connection.
//!
//! COPYIN/COPYINSTR send a request and wait for the matching RESP (sp-protocol.md §6.5);
//! COPYOUT is sent and not answered (§6.6); RAISE posts a signal (§6.8). Requests larger than
//! the connection's frame limit could never be answered, so they fail with `EFAULT` up front.
//!
//! A SYSCALL_FAST brings client memory along (docs/sp-fastpath.md): a COPYIN or COPYINSTR
//! that one prefetched range answers is served from it without a frame; anything else is
//! asked as above. A COPYOUT of the same syscall is applied to the prefetched bytes too, so a
//! later COPYIN sees what the client's memory then holds.

use std::cell::RefCell;
use std::rc::Rc;

use kernel::{Errno, UserMem};
use sp::MsgType;

use super::copies::CopyKind;
use super::{Conn, Kept};

/// Client memory of one connection, as handed to `Kernel::syscall`.
pub struct SessionMem {
    conn: Rc<Conn>,
    /// Memory the syscall's request carried (fast path); never borrowed across an await.
    kept: RefCell<Option<Kept>>,
}

impl SessionMem {
    pub(super) fn new(conn: Rc<Conn>, kept: Option<Kept>) -> SessionMem {
        SessionMem {
            conn,
            kept: RefCell::new(kept),
        }
    }

    /// The prefetched answer to a copy of `len` bytes at `addr` (at most `len` for a string).
    ///
    /// A request that carried one range keeps its data alone; a copy whose answer is the
    /// whole range (a path with its NUL, a write's data) takes that buffer itself, so the
    /// bytes reach the kernel without another copy (the one from the receive buffer is all).
    /// The range is then gone: a later copy of it in this syscall is asked from the client, as
    /// any copy may be (docs/sp-fastpath.md §2.1). Other answers (part of a range: a write
    /// copied in pieces) are copied into a spare buffer and the range stays.
    fn prefetched(&self, addr: u64, len: usize, string: bool) -> Option<Vec<u8>> {
        let mut kept = self.kept.borrow_mut();
        let k = kept.as_mut()?;
        let data = match k.single {
            Some(start) => {
                let data = match string {
                    false => sp::fast::range_copyin(start, &k.bytes, addr, len)?,
                    true => sp::fast::range_copyinstr(start, &k.bytes, addr, len)?,
                };
                if addr == start && data.len() == k.bytes.len() {
                    k.single = None;
                    k.n = 0;
                    return Some(std::mem::take(&mut k.bytes));
                }
                data
            }
            None => {
                let pf = sp::fast::PrefetchRef::kept(&k.bytes, k.n);
                match string {
                    false => pf.copyin(addr, len)?,
                    true => pf.copyinstr(addr, len)?,
                }
            }
        };
        Some(self.conn.copies.buffer_with(data))
    }

    /// A COPYOUT changes client memory the request may have carried.
    fn copied_out(&self, addr: u64, data: &[u8]) {
        if let Some(k) = self.kept.borrow_mut().as_mut() {
            match k.single {
                Some(start) => sp::fast::range_apply_copyout(start, &mut k.bytes, addr, data),
                None => sp::fast::prefetch_apply_copyout(&mut k.bytes, k.n, addr, data),
            }
        }
    }

    fn max_copy_len(&self) -> usize {
        self.conn.shared.limits.max_frame_len - sp::HEADER_LEN
    }

    async fn request(
        &self,
        kind: CopyKind,
        typ: MsgType,
        len: usize,
        addr: u64,
    ) -> kernel::Result<Vec<u8>> {
        if len > self.max_copy_len() || self.conn.outbox.is_dead() {
            return Err(Errno::EFAULT);
        }
        let reqno = self.conn.copies.register(kind)?;
        self.conn
            .outbox
            .push(|o| sp::encode_copyin_req(o, reqno, typ, len as u64, addr));
        self.conn.copies.wait(reqno).await
    }
}

impl UserMem for SessionMem {
    async fn copyin(&self, addr: u64, len: usize) -> kernel::Result<Vec<u8>> {
        if let Some(v) = self.prefetched(addr, len, false) {
            return Ok(v);
        }
        self.request(CopyKind::In { len }, MsgType::COPYIN, len, addr)
            .await
    }

    async fn copyinstr(&self, addr: u64, maxlen: usize) -> kernel::Result<Vec<u8>> {
        if let Some(v) = self.prefetched(addr, maxlen, true) {
            return Ok(v);
        }
        self.request(CopyKind::InStr { maxlen }, MsgType::COPYINSTR, maxlen, addr)
            .await
    }

    async fn copyout(&self, addr: u64, data: &[u8]) -> kernel::Result<()> {
        if data.len() > self.max_copy_len() {
            return Err(Errno::EFAULT);
        }
        self.conn.outbox.wait_space().await;
        if self.conn.outbox.is_dead() {
            return Err(Errno::EFAULT);
        }
        let reqno = self.conn.copies.next_reqno();
        self.conn
            .outbox
            .push(|o| sp::encode_copyout_req(o, reqno, addr, data));
        self.copied_out(addr, data);
        Ok(())
    }

    async fn copyout_fill(
        &self,
        addr: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> kernel::Result<usize> {
        if len > self.max_copy_len() {
            return Err(Errno::EFAULT);
        }
        self.conn.outbox.wait_space().await;
        if self.conn.outbox.is_dead() {
            return Err(Errno::EFAULT);
        }
        let reqno = self.conn.copies.next_reqno();
        let mut n = 0;
        // The data goes straight into the outgoing frame; its lengths are set once known.
        self.conn.outbox.push(|o| {
            let start = o.len();
            sp::encode_copyout_req(o, reqno, addr, &[]);
            let data = o.len();
            o.resize(data + len, 0);
            n = fill(&mut o[data..]).min(len);
            match n {
                0 => o.truncate(start),
                _ => {
                    o.truncate(data + n);
                    let frame_len = (data + n - start) as u64;
                    o[start..start + 8].copy_from_slice(&frame_len.to_le_bytes());
                    let hdr = start + sp::HEADER_LEN;
                    o[hdr..hdr + 8].copy_from_slice(&(n as u64).to_le_bytes());
                    self.copied_out(addr, &o[data..data + n]);
                }
            }
        });
        Ok(n)
    }

    fn recycle(&self, buf: Vec<u8>) {
        self.conn.copies.recycle(buf);
    }

    fn raise(&self, signo: u32) {
        let reqno = self.conn.copies.next_reqno();
        self.conn.outbox.push(|o| sp::encode_raise(o, reqno, signo));
    }
}

impl Drop for SessionMem {
    /// The prefetch buffer goes back to the connection's spares (its charge is released).
    fn drop(&mut self) {
        if let Some(k) = self.kept.get_mut().take() {
            self.conn.copies.recycle(k.bytes);
        }
    }
}
