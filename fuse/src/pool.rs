//! Connections to the rump server: a pool of root connections used round-robin by the FUSE
//! worker threads, and (with `map_creds`) a bounded set of per-credential connections whose
//! rump process runs as the caller's uid/gid/groups.
//!
//! Each connection is one rump process, so a descriptor belongs to one connection: an open
//! FUSE handle remembers its connection and counts on it (`open`), and a connection with
//! open handles is never evicted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use client::Client;

use crate::nb::{Calls, Fail, R};

/// One connection (one rump process).
#[derive(Debug)]
pub struct Conn {
    c: Mutex<Client>,
    /// Open handles whose descriptor lives here.
    pub open: AtomicUsize,
}

impl Conn {
    fn new(c: Client) -> Arc<Conn> {
        Arc::new(Conn {
            c: Mutex::new(c),
            open: AtomicUsize::new(0),
        })
    }

    /// Exclusive use of the connection (one call at a time on it).
    pub fn lock(&self) -> MutexGuard<'_, Client> {
        self.c.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Who a request runs as in the rump kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// At most this many per-credential connections at once.
pub const MAX_CRED_CONNS: usize = 32;

/// The pool.
#[derive(Debug)]
pub struct Pool {
    url: String,
    root: Vec<Arc<Conn>>,
    rr: AtomicUsize,
    creds: Mutex<HashMap<Cred, (Arc<Conn>, u64)>>,
    tick: AtomicUsize,
    /// Set once any connection broke: the server is gone, every request fails `ENOTCONN`.
    pub gone: AtomicBool,
}

fn connect(url: &str) -> R<Client> {
    let mut c = Client::connect_named(url, "rump_fuse").map_err(Fail::from)?;
    c.prepare()?;
    Ok(c)
}

impl Pool {
    /// Opens `n` root connections to `url`.
    pub fn new(url: &str, n: usize) -> Result<Pool, client::Error> {
        let mut root = Vec::new();
        for _ in 0..n.max(1) {
            let mut c = Client::connect_named(url, "rump_fuse")?;
            c.prepare().map_err(|e| match e {
                Fail::Errno(n) => client::Error::Errno(n),
                Fail::Gone => client::Error::Protocol("connection lost".into()),
            })?;
            root.push(Conn::new(c));
        }
        Ok(Pool {
            url: url.to_string(),
            root,
            rr: AtomicUsize::new(0),
            creds: Mutex::new(HashMap::new()),
            tick: AtomicUsize::new(0),
            gone: AtomicBool::new(false),
        })
    }

    /// A fresh root connection outside the pool (lock owners, the halt watcher).
    pub fn extra(&self) -> R<Arc<Conn>> {
        Ok(Conn::new(connect(&self.url)?))
    }

    /// The root connection for a new descriptor: the one with fewest open handles.
    pub fn root_for_open(&self) -> Arc<Conn> {
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        let n = self.root.len();
        (0..n)
            .map(|i| &self.root[(start + i) % n])
            .min_by_key(|c| c.open.load(Ordering::Relaxed))
            .expect("at least one connection")
            .clone()
    }

    /// Runs `f` on an idle root connection (or waits for one).
    pub fn run_root<T>(&self, f: impl FnOnce(&mut Client) -> R<T>) -> R<T> {
        let n = self.root.len();
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(mut g) = self.root[(start + i) % n].c.try_lock() {
                return self.check(f(&mut g));
            }
        }
        let mut g = self.root[start % n].lock();
        self.check(f(&mut g))
    }

    /// Runs `f` on `conn`.
    pub fn run_on<T>(&self, conn: &Conn, f: impl FnOnce(&mut Client) -> R<T>) -> R<T> {
        if self.gone.load(Ordering::Relaxed) {
            return Err(Fail::Gone);
        }
        let mut g = conn.lock();
        self.check(f(&mut g))
    }

    fn check<T>(&self, r: R<T>) -> R<T> {
        if r.is_err() && r.as_ref().err() == Some(&Fail::Gone) {
            self.gone.store(true, Ordering::Relaxed);
        }
        r
    }

    /// The connection of credential `cred` (root's pool for uid 0), made on first use;
    /// when [`MAX_CRED_CONNS`] are held, the least recently used one without open handles
    /// is closed first (`ENFILE` when all have handles).
    pub fn cred_conn(&self, cred: &Cred) -> R<Option<Arc<Conn>>> {
        if cred.uid == 0 {
            return Ok(None);
        }
        let now = self.tick.fetch_add(1, Ordering::Relaxed) as u64;
        let mut m = self.creds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, t)) = m.get_mut(cred) {
            *t = now;
            return Ok(Some(c.clone()));
        }
        if m.len() >= MAX_CRED_CONNS {
            let victim = m
                .iter()
                .filter(|(_, (c, _))| c.open.load(Ordering::Relaxed) == 0)
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    m.remove(&k);
                }
                None => return Err(Fail::Errno(23)), // ENFILE
            }
        }
        let mut c = self.check(connect(&self.url))?;
        self.check(c.set_creds(cred.uid, cred.gid, &cred.groups))?;
        let c = Conn::new(c);
        m.insert(cred.clone(), (c.clone(), now));
        Ok(Some(c))
    }

    /// Runs `f` as `cred` (`None`: as the rump kernel's root).
    pub fn run_as<T>(&self, cred: Option<&Cred>, f: impl FnOnce(&mut Client) -> R<T>) -> R<T> {
        if self.gone.load(Ordering::Relaxed) {
            return Err(Fail::Gone);
        }
        match cred.map(|c| self.cred_conn(c)).transpose()?.flatten() {
            Some(c) => self.run_on(&c, f),
            None => self.run_root(f),
        }
    }

    /// The connection a new descriptor opened as `cred` lives on.
    pub fn conn_for_open(&self, cred: Option<&Cred>) -> R<Arc<Conn>> {
        match cred.map(|c| self.cred_conn(c)).transpose()?.flatten() {
            Some(c) => Ok(c),
            None => Ok(self.root_for_open()),
        }
    }
}
