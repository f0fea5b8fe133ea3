//! ioctl(2) (sys_generic.c `sys_ioctl`): generic commands and the argument copy rules.

use super::{ret, Args, Ctx, SysResult};
use crate::abi::*;
use crate::{copy, Errno, UserMem};

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
        _ => fp.ioctl(com, &mut data)?,
    }
    if com & IOC_OUT != 0 && size > 0 {
        copy::copyout(c.mem, uaddr, &data).await?;
    }
    ret(0)
}
