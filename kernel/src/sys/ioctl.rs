//! ioctl(2) (sys_generic.c `sys_ioctl`): generic commands and the argument copy rules.

use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::{copy, DynMem, Errno, UserMem};

/// `ioctl(fd, com, data)` — device control; `ioctl(2)`. The direction and size encoded in
/// `com` decide what is copied in before and out after (netbsd-abi.md §5.15).
pub async fn ioctl<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let fd = a.int(0);
    let com = a.word(1) as u32;
    let uaddr = a.word(2);
    let fp = c.p.fd.get(fd)?;
    if !fp.readable() && !fp.writable() {
        return Err(Errno::EBADF);
    }
    if com == FIOCLEX || com == FIONCLEX {
        c.p.fd.set_cloexec(fd, com == FIOCLEX)?;
        return ret(0);
    }
    let size = iocparm_len(com);
    if size > IOCPARM_MAX {
        return Err(Errno::ENOTTY);
    }
    let mut data = if com & IOC_IN != 0 && size > 0 {
        copy::copyin(c.mem, uaddr, size).await?
    } else if com & IOC_OUT != 0 && size > 0 {
        vec![0; size]
    } else {
        // IOC_VOID, IOC_IN without a size, or an old-style command: the pointer value.
        uaddr.to_le_bytes().to_vec()
    };
    match com {
        FIONBIO | FIOASYNC => {
            let bit = if com == FIONBIO { O_NONBLOCK } else { O_ASYNC };
            let on = data.get(..4).is_some_and(|v| v != [0; 4]);
            // As NetBSD: the flag changes even if the file then refuses the command.
            if on {
                fp.flag_or(bit);
            } else {
                fp.flag_clear(bit);
            }
            fp.ioctl(com, &mut data)?;
        }
        _ => {
            // A faction's ioctl that copies through pointers in its argument.
            let mut done = false;
            if let Some(fut) = fp
                .faction()
                .and_then(|f| f.ioctl_mem(&fp, c.k, c.p, c.mem as &dyn DynMem, com, &mut data))
            {
                done = true;
                fut.await?;
            }
            if !done {
                fp.ioctl(com, &mut data)?;
            }
        }
    }
    if com & IOC_OUT != 0 && size > 0 {
        copy::copyout(c.mem, uaddr, &data).await?;
    }
    ret(0)
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::abi::*;
    use crate::testutil::{int, Fixture, Req};
    use crate::Errno;

    #[test]
    fn tiocgeta_copies_out_zero_termios() {
        let f = Fixture::new();
        f.mem.map(0x1000, &[0xff; 64]);
        assert_eq!(f.ok(SYS_ioctl, &[0, u64::from(TIOCGETA), 0x1000]), 0);
        assert_eq!(f.mem.read(0x1000, 44), vec![0; 44]);
        assert_eq!(f.mem.read(0x102c, 4), vec![0xff; 4]);
        assert_eq!(f.mem.requests(), vec![Req::Out(0x1000, vec![0; 44])]);
        assert_eq!(
            f.err(SYS_ioctl, &[0, u64::from(TIOCGETA), 0]),
            Errno::EFAULT
        );
    }

    #[test]
    fn other_ioctls_are_enotty() {
        let f = Fixture::new();
        f.mem.map_zero(0x1000, 8);
        assert_eq!(
            f.err(SYS_ioctl, &[1, u64::from(FIONREAD), 0x1000]),
            Errno::ENOTTY
        );
        assert_eq!(
            f.err(SYS_ioctl, &[1, u64::from(DIOCGMEDIASIZE), 0x1000]),
            Errno::ENOTTY
        );
        assert_eq!(f.err(SYS_ioctl, &[1, 0x2000_7400, 0]), Errno::ENOTTY);
        // No copy-out after a failure.
        assert!(f.mem.requests().is_empty());
        assert_eq!(
            f.err(SYS_ioctl, &[9, u64::from(TIOCGETA), 0x1000]),
            Errno::EBADF
        );
    }

    #[test]
    fn ioctl_copy_rules() {
        let f = Fixture::new();
        // IOC_IN with a size copies in first (NULL: EFAULT without asking).
        let win = u64::from(IOC_IN | (8 << 16) | 0x7401);
        assert_eq!(f.err(SYS_ioctl, &[1, win, 0]), Errno::EFAULT);
        assert!(f.mem.requests().is_empty());
        f.mem.map_zero(0x1000, 8);
        assert_eq!(f.err(SYS_ioctl, &[1, win, 0x1000]), Errno::ENOTTY);
        assert_eq!(f.mem.requests(), vec![Req::In(0x1000, 8)]);
        f.mem.clear_requests();
        // A parameter above IOCPARM_MAX is ENOTTY before any copy.
        let huge = u64::from(IOC_INOUT | (0x1fff << 16) | 0x7401);
        assert_eq!(f.err(SYS_ioctl, &[1, huge, 0x1000]), Errno::ENOTTY);
        assert!(f.mem.requests().is_empty());
    }

    #[test]
    fn fioclex_and_fionbio() {
        let f = Fixture::new();
        assert_eq!(f.ok(SYS_ioctl, &[2, u64::from(FIOCLEX), 0]), 0);
        assert_eq!(f.call(SYS_fcntl, &[2, int(F_GETFD), 0]), Ok([1, 0]));
        assert_eq!(f.ok(SYS_ioctl, &[2, u64::from(FIONCLEX), 0]), 0);
        assert_eq!(f.call(SYS_fcntl, &[2, int(F_GETFD), 0]), Ok([0, 0]));
        f.mem.map(0x1000, &1i32.to_le_bytes());
        // The console refuses FIONBIO, but NetBSD has already set the flag.
        assert_eq!(
            f.err(SYS_ioctl, &[1, u64::from(FIONBIO), 0x1000]),
            Errno::ENOTTY
        );
        let fl = i64::from(O_WRONLY | O_NONBLOCK);
        assert_eq!(f.call(SYS_fcntl, &[1, int(F_GETFL), 0]), Ok([fl, 0]));
    }
}
