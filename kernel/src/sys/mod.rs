//! System calls: argument decoding and the dispatch table by NetBSD number.
//!
//! One file per syscall family, as NetBSD's `sys_*.c`/`kern_*.c`. Each syscall is an async fn
//! taking a [`Ctx`] and its [`Args`]; dispatch is a `match` on the number, so a simple call
//! allocates nothing. Adding a syscall = one fn in its family file + one arm here.

mod at;
mod attr;
mod cred;
mod cwd;
mod descrip;
mod dir;
mod event;
mod extattr;
mod ioctl;
pub(crate) mod ktrace;
mod link;
pub(crate) mod modctl;
mod mount;
pub mod names;
pub(crate) mod open;
mod pathconf;
mod pipe;
mod proc;
mod random;
mod reboot;
mod resource;
mod rw;
mod select;
mod stat;
mod statvfs;
mod sync;
mod sysctl;
mod time;

use std::sync::Arc;

use crate::abi::sysnum::*;
use crate::usermem::{BoxFut, DynMem};
use crate::{Kernel, Proc, Result, UserMem};
use extattr::{Op, Target};

/// What a syscall returns: `retval[0]`, `retval[1]`.
pub type SysResult = Result<[i64; 2]>;

/// The system calls of a faction outside this crate (the socket layer), registered with
/// `Kernel::register_syscalls` at boot. Numbers the kernel serves itself never reach it;
/// without any table the rest stay `ENOSYS`, as in a NetBSD rump kernel without the
/// component.
pub trait SyscallTable: Send + Sync {
    /// Whether this table serves syscall `nr`.
    fn serves(&self, nr: u32) -> bool;
    /// Runs syscall `nr` (one [`SyscallTable::serves`] said yes to) for `p`.
    fn syscall<'a>(
        &'a self,
        k: &'a Kernel,
        p: &'a Arc<Proc>,
        mem: &'a dyn DynMem,
        nr: u32,
        args: &'a [u64; 8],
    ) -> BoxFut<'a, SysResult>;
}

/// The outcome of one syscall, for the session to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallOutcome {
    /// The two return values, or the NetBSD errno.
    pub result: Result<[i64; 2]>,
    /// `Some(howto)` only for a successful reboot: the server answers the caller, then halts.
    pub halt: Option<u32>,
}

/// The raw argument slots of a syscall (sp-protocol.md §6.3); missing slots are zero.
#[derive(Clone, Copy)]
pub struct Args<'a>(pub &'a [u64; 8]);

impl Args<'_> {
    /// An `int` argument: the low 32 bits, signed.
    pub fn int(&self, i: usize) -> i32 {
        self.0[i] as u32 as i32
    }

    /// An unsigned 32-bit argument (`u_int`, `mode_t`, `uid_t`).
    pub fn uint(&self, i: usize) -> u32 {
        self.0[i] as u32
    }

    /// A pointer, `size_t` or `u_long` argument: the whole slot.
    pub fn word(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// An `off_t`/`long` argument.
    pub fn long(&self, i: usize) -> i64 {
        self.0[i] as i64
    }
}

/// The context a syscall runs in: the kernel, the calling process and its memory.
pub struct Ctx<'a, M> {
    /// The kernel.
    pub k: &'a Kernel,
    /// The calling process.
    pub p: &'a Arc<Proc>,
    /// The caller's memory.
    pub mem: &'a M,
}

/// `retval = [v, 0]`.
pub(crate) fn ret(v: i64) -> SysResult {
    Ok([v, 0])
}

/// Runs syscall `nr`.
#[allow(non_upper_case_globals)] // NetBSD's `SYS_*` names
pub(crate) async fn dispatch<M: UserMem>(
    k: &Kernel,
    p: &Arc<Proc>,
    mem: &M,
    nr: u32,
    args: &[u64; 8],
) -> SyscallOutcome {
    let c = Ctx { k, p, mem };
    let a = Args(args);
    let result = match nr {
        SYS_read => rw::read(&c, a).await,
        SYS_write => rw::write(&c, a).await,
        SYS_close => descrip::close(&c, a).await,
        SYS_getpid => proc::getpid(&c),
        SYS_getuid => proc::getuid(&c),
        SYS_geteuid => proc::geteuid(&c),
        SYS_getppid => proc::getppid(&c),
        SYS_dup => descrip::dup(&c, a),
        SYS_pipe => pipe::pipe(&c),
        SYS_getegid => proc::getegid(&c),
        SYS_getgid => proc::getgid(&c),
        SYS_ioctl => ioctl::ioctl(&c, a).await,
        SYS_umask => proc::umask(&c, a),
        SYS_dup2 => descrip::dup2(&c, a),
        SYS_fcntl => descrip::fcntl(&c, a).await,
        SYS_flock => descrip::flock(&c, a).await,
        SYS_readv => rw::readv(&c, a).await,
        SYS_writev => rw::writev(&c, a).await,
        SYS_reboot => {
            let result = reboot::reboot(&c, a).await;
            let halt = result.is_ok().then(|| a.uint(0));
            return SyscallOutcome { result, halt };
        }
        SYS_issetugid => proc::issetugid(&c),
        SYS___sysctl => sysctl::sysctl(&c, a).await,
        SYS___gettimeofday50 => time::gettimeofday(&c, a).await,
        SYS___clock_gettime50 => time::clock_gettime(&c, a).await,
        SYS___clock_getres50 => time::clock_getres(&c, a).await,
        SYS_getrandom => random::getrandom(&c, a).await,
        SYS___nanosleep50 => time::nanosleep(&c, a).await,
        SYS_clock_nanosleep => time::clock_nanosleep(&c, a).await,
        SYS___fstat50 => descrip::fstat(&c, a).await,
        SYS_pipe2 => pipe::pipe2(&c, a).await,
        SYS_poll => select::poll(&c, a).await,
        SYS___pollts50 => select::pollts(&c, a).await,
        SYS___select50 => select::select(&c, a).await,
        SYS___pselect50 => select::pselect(&c, a).await,
        SYS_kqueue => event::kqueue(&c),
        SYS_kqueue1 => event::kqueue1(&c, a),
        SYS___kevent50 => event::kevent50(&c, a).await,
        SYS___kevent100 => event::kevent100(&c, a).await,
        SYS_setuid => cred::setuid(&c, a),
        SYS___getlogin => cred::getlogin(&c, a).await,
        SYS___setlogin => cred::setlogin(&c, a).await,
        SYS_getgroups => cred::getgroups(&c, a).await,
        SYS_setgroups => cred::setgroups(&c, a).await,
        SYS_setreuid => cred::setreuid(&c, a),
        SYS_setregid => cred::setregid(&c, a),
        SYS_setgid => cred::setgid(&c, a),
        SYS_setegid => cred::setegid(&c, a),
        SYS_seteuid => cred::seteuid(&c, a),
        SYS_dup3 => descrip::dup3_compat(&c, a),
        SYS___dup3100 => descrip::dup3(&c, a),
        SYS_open => open::open(&c, a).await,
        SYS_link => link::link(&c, a).await,
        SYS_unlink => link::unlink(&c, a).await,
        SYS_unmount => mount::unmount(&c, a).await,
        SYS_chdir => cwd::chdir(&c, a).await,
        SYS_fchdir => cwd::fchdir(&c, a).await,
        SYS_chmod => attr::chmod(&c, a).await,
        SYS_chflags => attr::chflags(&c, a).await,
        SYS_fchflags => attr::fchflags(&c, a).await,
        SYS_lchflags => attr::lchflags(&c, a).await,
        SYS_chown | SYS___posix_chown => attr::chown(&c, a).await,
        SYS_access => stat::access(&c, a).await,
        SYS_sync => sync::sync(&c).await,
        SYS_symlink => link::symlink(&c, a).await,
        SYS_readlink => link::readlink(&c, a).await,
        SYS_chroot => cwd::chroot(&c, a).await,
        SYS_fsync => sync::fsync(&c, a).await,
        SYS_fchown | SYS___posix_fchown => attr::fchown(&c, a).await,
        SYS_fchmod => attr::fchmod(&c, a).await,
        SYS_rename => link::rename(&c, a).await,
        SYS___posix_rename => link::posix_rename(&c, a).await,
        SYS_mkfifo => open::mkfifo(&c, a).await,
        SYS_mkdir => dir::mkdir(&c, a).await,
        SYS_rmdir => dir::rmdir(&c, a).await,
        SYS_pread => rw::pread(&c, a).await,
        SYS_pwrite => rw::pwrite(&c, a).await,
        SYS_pathconf => pathconf::pathconf(&c, a).await,
        SYS_fpathconf => pathconf::fpathconf(&c, a),
        SYS_lseek => rw::lseek(&c, a),
        SYS_truncate => attr::truncate(&c, a).await,
        SYS_ftruncate => attr::ftruncate(&c, a).await,
        SYS_fdatasync => sync::fdatasync(&c, a).await,
        SYS_lchmod => attr::lchmod(&c, a).await,
        SYS_lchown | SYS___posix_lchown => attr::lchown(&c, a).await,
        SYS_preadv => rw::preadv(&c, a).await,
        SYS_pwritev => rw::pwritev(&c, a).await,
        SYS___getcwd => cwd::getcwd(&c, a).await,
        SYS_fsync_range => sync::fsync_range(&c, a).await,
        SYS_getvfsstat => statvfs::getvfsstat(&c, a, true).await,
        SYS_statvfs1 => statvfs::statvfs1(&c, a, true).await,
        SYS_fstatvfs1 => statvfs::fstatvfs1(&c, a, true).await,
        SYS___getdents30 => dir::getdents(&c, a).await,
        SYS___mount50 => mount::mount(&c, a).await,
        SYS___posix_fadvise50 => sync::fadvise(&c, a),
        SYS___utimes50 => attr::utimes(&c, a).await,
        SYS___futimes50 => attr::futimes(&c, a).await,
        SYS___lutimes50 => attr::lutimes(&c, a).await,
        SYS___stat50 => stat::stat(&c, a).await,
        SYS___lstat50 => stat::lstat(&c, a).await,
        SYS___mknod50 => open::mknod(&c, a).await,
        SYS_linkat => link::linkat(&c, a).await,
        SYS_renameat => link::renameat(&c, a).await,
        SYS_mkfifoat => open::mkfifoat(&c, a).await,
        SYS_mknodat => open::mknodat(&c, a).await,
        SYS_mkdirat => dir::mkdirat(&c, a).await,
        SYS_faccessat => stat::faccessat(&c, a).await,
        SYS_fchmodat => attr::fchmodat(&c, a).await,
        SYS_fchownat => attr::fchownat(&c, a).await,
        SYS_fstatat => stat::fstatat(&c, a).await,
        SYS_utimensat => attr::utimensat(&c, a).await,
        SYS_openat => open::openat(&c, a).await,
        SYS_readlinkat => link::readlinkat(&c, a).await,
        SYS_symlinkat => link::symlinkat(&c, a).await,
        SYS_unlinkat => link::unlinkat(&c, a).await,
        SYS_futimens => attr::futimens(&c, a).await,
        SYS_posix_fallocate => sync::fallocate(&c, a),
        SYS_fdiscard => sync::fdiscard(&c, a),
        SYS___getvfsstat90 => statvfs::getvfsstat(&c, a, false).await,
        SYS___statvfs190 => statvfs::statvfs1(&c, a, false).await,
        SYS___fstatvfs190 => statvfs::fstatvfs1(&c, a, false).await,
        SYS_lpathconf => pathconf::lpathconf(&c, a).await,
        SYS_extattrctl => extattr::extattrctl(&c, a).await,
        SYS_extattr_set_file => extattr::extattr(&c, a, Target::File, Op::Set).await,
        SYS_extattr_get_file => extattr::extattr(&c, a, Target::File, Op::Get).await,
        SYS_extattr_delete_file => extattr::extattr(&c, a, Target::File, Op::Delete).await,
        SYS_extattr_set_fd => extattr::extattr(&c, a, Target::Fd, Op::Set).await,
        SYS_extattr_get_fd => extattr::extattr(&c, a, Target::Fd, Op::Get).await,
        SYS_extattr_delete_fd => extattr::extattr(&c, a, Target::Fd, Op::Delete).await,
        SYS_extattr_set_link => extattr::extattr(&c, a, Target::Link, Op::Set).await,
        SYS_extattr_get_link => extattr::extattr(&c, a, Target::Link, Op::Get).await,
        SYS_extattr_delete_link => extattr::extattr(&c, a, Target::Link, Op::Delete).await,
        SYS_extattr_list_fd => extattr::extattr(&c, a, Target::Fd, Op::List).await,
        SYS_extattr_list_file => extattr::extattr(&c, a, Target::File, Op::List).await,
        SYS_extattr_list_link => extattr::extattr(&c, a, Target::Link, Op::List).await,
        SYS_getrlimit => resource::getrlimit(&c, a).await,
        SYS_setrlimit => resource::setrlimit(&c, a).await,
        SYS_modctl => modctl::modctl(&c, a).await,
        SYS_ktrace => ktrace::ktrace(&c, a).await,
        SYS_fktrace => ktrace::fktrace(&c, a).await,
        _ => match k.faction_syscall(nr) {
            Some(t) => t.syscall(k, p, mem as &dyn DynMem, nr, args).await,
            None => modctl::ext(&c, nr, a).await,
        },
    };
    SyscallOutcome { result, halt: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Fixture;
    use crate::Errno;

    #[test]
    fn unknown_and_out_of_range_numbers_are_enosys() {
        let f = Fixture::new();
        for nr in [0, 1, 2, 37, 59, 511, 512, 1000, u32::MAX] {
            assert_eq!(f.sys(nr, &[1, 2, 3]).result, Err(Errno::ENOSYS), "{nr}");
            assert_eq!(f.sys(nr, &[]).halt, None);
        }
        assert!(f.mem.requests().is_empty());
    }

    #[test]
    fn short_argument_blocks_read_as_zero() {
        let f = Fixture::new();
        // close() with no payload is close(0); a second time fd 0 is gone.
        assert_eq!(f.call(SYS_close, &[]), Ok([0, 0]));
        assert_eq!(f.call(SYS_close, &[]), Err(Errno::EBADF));
        assert_eq!(f.p.fd_count(), 2);
    }

    #[test]
    fn int_slots_use_the_low_half_only() {
        let f = Fixture::new();
        // fd 1 with garbage in the upper half of the slot is still fd 1.
        assert_eq!(f.call(SYS_dup, &[0xdead_beef_0000_0001]), Ok([3, 0]));
    }
}
