//! Clocks (kern_time.c): gettimeofday, clock_gettime.

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{Timespec, CLOCK_MONOTONIC, CLOCK_REALTIME, TIMESPEC_SIZE, TIMEZONE_SIZE};
use crate::{copy, Errno, UserMem};

/// `__gettimeofday50(tp, tzp)` — wall-clock time; a time zone asked for is all zero;
/// `gettimeofday(2)`.
pub async fn gettimeofday<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (tp, tzp) = (a.word(0), a.word(1));
    if tp != 0 {
        let now = Timespec::from_pair(c.k.host().clock_realtime());
        copy::copyout(c.mem, tp, &now.encode_timeval()).await?;
    }
    if tzp != 0 {
        copy::copyout(c.mem, tzp, &[0u8; TIMEZONE_SIZE]).await?;
    }
    ret(0)
}

/// `__clock_gettime50(clock_id, tp)` — `CLOCK_REALTIME` or `CLOCK_MONOTONIC` (time since
/// boot); other clocks `EINVAL`; `clock_gettime(2)`.
pub async fn clock_gettime<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let ts = match a.int(0) {
        CLOCK_REALTIME => Timespec::from_pair(c.k.host().clock_realtime()),
        CLOCK_MONOTONIC => c.k.uptime(),
        _ => return Err(Errno::EINVAL),
    };
    let bytes: [u8; TIMESPEC_SIZE] = ts.encode();
    copy::copyout(c.mem, a.word(1), &bytes).await?;
    ret(0)
}
