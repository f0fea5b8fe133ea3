//! Detaching from the terminal the way NetBSD's `rumpuser_daemonize_begin/done` do.
//!
//! The parent forks, then waits on a pipe for one status word from the child and exits with it:
//! 0 once the child's socket accepts connections, the error number if start-up failed, and
//! `ESRCH` if the child died without a word. The child calls `setsid()`, keeps its working
//! directory, and after reporting success points stdin, stdout and stderr at `/dev/null`.
//! Fork happens before any thread exists: before the loops, and before `-l` libraries are
//! opened (their constructors may start threads). [`begin`] checks `/proc/self/task` and
//! refuses to fork a process that has other threads (they would be missing in the child,
//! possibly holding locks).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// NetBSD's `ESRCH`: the child died before reporting.
const NETBSD_ESRCH: i32 = 3;

/// The child's end of the status pipe.
pub struct Daemon {
    pipe: Option<OwnedFd>,
}

/// Threads of this process, if `/proc` tells.
fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// Forks. Returns in the child only; the parent waits and exits with the child's status.
/// Refuses (an error) when the process already has other threads.
pub fn begin() -> io::Result<Daemon> {
    if let Some(n @ 2..) = thread_count() {
        return Err(io::Error::other(format!(
            "{n} threads exist before fork; a forked child would lose all but one"
        )));
    }
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid two-int array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists (checked above; the loops and -l libraries come after
    // this), so fork is safe.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(rd);
            // SAFETY: plain syscall in the child; failure (already a leader) is harmless.
            unsafe { libc::setsid() };
            Ok(Daemon { pipe: Some(wr) })
        }
        _child => {
            drop(wr);
            let status = wait_status(&rd);
            std::process::exit(status);
        }
    }
}

fn wait_status(rd: &OwnedFd) -> i32 {
    let mut word = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        // SAFETY: reading into the unfilled tail of a local buffer.
        let n = unsafe { libc::read(rd.as_raw_fd(), word[got..].as_mut_ptr().cast(), 4 - got) };
        match n {
            n if n > 0 => got += n as usize,
            0 => return NETBSD_ESRCH,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => return NETBSD_ESRCH,
        }
    }
    i32::from_ne_bytes(word)
}

impl Daemon {
    /// Tells the waiting parent the outcome: 0 = serving, otherwise the exit status it uses.
    pub fn report(&mut self, status: i32) {
        if let Some(fd) = self.pipe.take() {
            let word = status.to_ne_bytes();
            // SAFETY: writing a 4-byte local buffer to our pipe end.
            let _ = unsafe { libc::write(fd.as_raw_fd(), word.as_ptr().cast(), 4) };
        }
    }

    /// Reports success and detaches stdio (to `/dev/null`).
    pub fn done(&mut self) -> io::Result<()> {
        self.report(0);
        let devnull = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors; devnull stays open until return.
            if unsafe { libc::dup2(devnull.as_raw_fd(), target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn threads_are_counted() {
        assert!(super::thread_count().expect("/proc/self/task") >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        assert!(super::thread_count().unwrap() >= 2);
        drop(tx);
        t.join().unwrap();
    }
}
