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

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::*;
    use crate::testutil::{Fixture, Req, TEST_REALTIME};
    use crate::Errno;

    #[test]
    fn gettimeofday_timeval_and_zero_timezone() {
        let f = Fixture::new();
        f.mem.map(0x1000, &[0xff; 24]);
        assert_eq!(f.ok(SYS___gettimeofday50, &[0x1000, 0x1010]), 0);
        let b = f.mem.read(0x1000, 24);
        assert_eq!(
            i64::from_le_bytes(b[..8].try_into().unwrap()),
            TEST_REALTIME.0
        );
        assert_eq!(i32::from_le_bytes(b[8..12].try_into().unwrap()), 123_456);
        assert_eq!(&b[12..24], &[0; 12]);
        f.mem.clear_requests();
        assert_eq!(f.ok(SYS___gettimeofday50, &[0, 0]), 0);
        assert!(f.mem.requests().is_empty());
    }

    #[test]
    fn clock_gettime_clocks() {
        let f = Fixture::new();
        f.mem.map_zero(0x1000, 16);
        assert_eq!(f.ok(SYS___clock_gettime50, &[0, 0x1000]), 0);
        let b = f.mem.read(0x1000, 16);
        assert_eq!(
            i64::from_le_bytes(b[..8].try_into().unwrap()),
            TEST_REALTIME.0
        );
        assert_eq!(
            i64::from_le_bytes(b[8..].try_into().unwrap()),
            TEST_REALTIME.1
        );
        assert_eq!(f.ok(SYS___clock_gettime50, &[3, 0x1000]), 0);
        // The test host's monotonic clock steps 1.5 s per reading: uptime is one step.
        let b = f.mem.read(0x1000, 16);
        assert_eq!(i64::from_le_bytes(b[..8].try_into().unwrap()), 1);
        assert_eq!(i64::from_le_bytes(b[8..].try_into().unwrap()), 500_000_000);
        f.mem.clear_requests();
        assert_eq!(f.err(SYS___clock_gettime50, &[7, 0x1000]), Errno::EINVAL);
        assert_eq!(f.err(SYS___clock_gettime50, &[0, 0]), Errno::EFAULT);
        assert!(f.mem.requests().is_empty());
        assert_eq!(f.ok(SYS___clock_gettime50, &[0, 0x1000]), 0);
        assert_eq!(f.mem.requests().len(), 1);
        assert!(matches!(&f.mem.requests()[0], Req::Out(0x1000, d) if d.len() == 16));
    }
}
