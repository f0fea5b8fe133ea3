//! Clocks and sleeps (kern_time.c): gettimeofday, clock_gettime, clock_getres, nanosleep,
//! clock_nanosleep.

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{Timespec, CLOCK_MONOTONIC, CLOCK_REALTIME, TIMESPEC_SIZE, TIMEZONE_SIZE};
use crate::{copy, Errno, Result, UserMem};

/// `hz` of a NetBSD rump kernel: the clocks' resolution is one tick, 10 ms.
const HZ: i64 = 100;
/// `TIMER_ABSTIME`: the request is a time of the clock, not a duration.
const TIMER_ABSTIME: i32 = 1;
const NSEC: i128 = 1_000_000_000;

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

/// `__clock_getres50(clock_id, tp)` — the resolution of `CLOCK_REALTIME` and
/// `CLOCK_MONOTONIC`, one clock tick (`1/hz`); other clocks `EINVAL`; a NULL `tp` only
/// checks the clock; `clock_getres(2)`.
pub async fn clock_getres<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    match a.int(0) {
        CLOCK_REALTIME | CLOCK_MONOTONIC => {}
        _ => return Err(Errno::EINVAL),
    }
    if a.word(1) != 0 {
        let res = Timespec {
            sec: 0,
            nsec: 1_000_000_000 / HZ,
        };
        copy::copyout(c.mem, a.word(1), &res.encode()).await?;
    }
    ret(0)
}

/// `__nanosleep50(rqtp, rmtp)` — sleeps for `*rqtp` on the monotonic clock; the time left
/// (zero unless interrupted) goes to `rmtp`; `nanosleep(2)`.
pub async fn nanosleep<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let rq = copy::copyin(c.mem, a.word(0), TIMESPEC_SIZE).await?;
    sleep(c, CLOCK_MONOTONIC, 0, &rq, a.word(1)).await?;
    ret(0)
}

/// `clock_nanosleep(clock_id, flags, rqtp, rmtp)` — nanosleep on a given clock, until a
/// time of it with `TIMER_ABSTIME`. Errors are its return value, not `errno`;
/// `clock_nanosleep(2)`.
pub async fn clock_nanosleep<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let res = match copy::copyin(c.mem, a.word(2), TIMESPEC_SIZE).await {
        Ok(rq) => sleep(c, a.int(0), a.int(1), &rq, a.word(3)).await,
        Err(e) => Err(e),
    };
    ret(res.err().map_or(0, |e| i64::from(e.raw())))
}

/// A clock's time (`clock_gettime1`): `EINVAL` for clocks without one.
fn clock_now<M>(c: &Ctx<'_, M>, clock: i32) -> Result<Timespec> {
    match clock {
        CLOCK_REALTIME => Ok(Timespec::from_pair(c.k.host().clock_realtime())),
        CLOCK_MONOTONIC => Ok(c.k.uptime()),
        _ => Err(Errno::EINVAL),
    }
}

fn ns(t: Timespec) -> i128 {
    i128::from(t.sec) * NSEC + i128::from(t.nsec)
}

/// `nanosleep1` with `ts2timo`: the clock (`EINVAL` for one without a time), for
/// `TIMER_ABSTIME` the request made relative, the request's nanoseconds (`EINVAL` outside
/// [0, 10⁹)); a negative or zero duration returns at once; otherwise the caller sleeps,
/// interruptibly (`EINTR` on disconnect), until the duration has passed on the host's
/// monotonic clock — exactly, where NetBSD's `kpause` rounds up to clock ticks. The time
/// left (zero, or what an interruption left) then goes to `rmtp`.
async fn sleep<M: UserMem>(
    c: &Ctx<'_, M>,
    clock: i32,
    flags: i32,
    rq: &[u8],
    rmtp: u64,
) -> Result<()> {
    let field = |o: usize| i64::from_le_bytes(rq[o..o + 8].try_into().expect("8 bytes"));
    let (mut sec, mut nsec) = (field(0), field(8));
    let start = clock_now(c, clock)?;
    if flags & TIMER_ABSTIME != 0 {
        // timespecsub, with its single borrow.
        sec = sec.wrapping_sub(start.sec);
        nsec = nsec.wrapping_sub(start.nsec);
        if nsec < 0 {
            sec = sec.wrapping_sub(1);
            nsec += 1_000_000_000;
        }
    }
    if !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    let want = i128::from(sec) * NSEC + i128::from(nsec);
    let mut res = Ok(());
    if sec >= 0 && want > 0 {
        let mono = ns(Timespec::from_pair(c.k.host().clock_monotonic())) + want;
        let mono = mono.min(i128::from(i64::MAX) * NSEC);
        let deadline = ((mono / NSEC) as i64, (mono % NSEC) as i64);
        res = crate::sync::sleep_for(c.p, c.k.host(), deadline).await;
    }
    if rmtp != 0 && matches!(res, Ok(()) | Err(Errno::EINTR)) {
        let left = match res {
            Ok(()) => 0,
            Err(_) => (want - (ns(clock_now(c, clock)?) - ns(start))).max(0),
        };
        let left = Timespec {
            sec: (left / NSEC) as i64,
            nsec: (left % NSEC) as i64,
        };
        copy::copyout(c.mem, rmtp, &left.encode()).await?;
    }
    res
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
        // The test host's monotonic clock steps 1.5 s per reading: uptime is one step past
        // NetBSD's one-second origin.
        let b = f.mem.read(0x1000, 16);
        assert_eq!(i64::from_le_bytes(b[..8].try_into().unwrap()), 2);
        assert_eq!(i64::from_le_bytes(b[8..].try_into().unwrap()), 500_000_000);
        f.mem.clear_requests();
        assert_eq!(f.err(SYS___clock_gettime50, &[7, 0x1000]), Errno::EINVAL);
        assert_eq!(f.err(SYS___clock_gettime50, &[0, 0]), Errno::EFAULT);
        assert!(f.mem.requests().is_empty());
        assert_eq!(f.ok(SYS___clock_gettime50, &[0, 0x1000]), 0);
        assert_eq!(f.mem.requests().len(), 1);
        assert!(matches!(&f.mem.requests()[0], Req::Out(0x1000, d) if d.len() == 16));
    }

    fn ts(sec: i64, nsec: i64) -> Vec<u8> {
        [sec.to_le_bytes(), nsec.to_le_bytes()].concat()
    }

    #[test]
    fn clock_getres_is_one_tick() {
        let f = Fixture::new();
        f.mem.map_zero(0x1000, 16);
        assert_eq!(f.ok(SYS___clock_getres50, &[3, 0x1000]), 0);
        assert_eq!(f.mem.read(0x1000, 16), ts(0, 10_000_000));
        assert_eq!(f.ok(SYS___clock_getres50, &[0, 0]), 0);
        assert_eq!(f.err(SYS___clock_getres50, &[1, 0x1000]), Errno::EINVAL);
        assert_eq!(
            f.err(SYS___clock_getres50, &[0x4000_0000, 0]),
            Errno::EINVAL
        );
    }

    #[test]
    fn nanosleep_checks_and_reports_the_time_left() {
        let f = Fixture::new();
        f.mem.map(0x1000, &ts(0, 1_000_000_000));
        f.mem.map(0x1100, &ts(0, -1));
        f.mem.map(0x1200, &ts(-1, 0));
        f.mem.map(0x1300, &ts(0, 5_000_000));
        f.mem.map(0x2000, &[0xff; 16]);
        assert_eq!(f.err(SYS___nanosleep50, &[0x1000, 0]), Errno::EINVAL);
        assert_eq!(f.err(SYS___nanosleep50, &[0x1100, 0]), Errno::EINVAL);
        assert_eq!(f.err(SYS___nanosleep50, &[0, 0]), Errno::EFAULT);
        assert_eq!(f.ok(SYS___nanosleep50, &[0x1200, 0x2000]), 0);
        assert_eq!(f.mem.read(0x2000, 16), ts(0, 0));
        assert_eq!(f.ok(SYS___nanosleep50, &[0x1300, 0]), 0);
        // clock_nanosleep answers its errors as the value.
        assert_eq!(f.ok(SYS_clock_nanosleep, &[3, 0, 0x1300, 0]), 0);
        assert_eq!(f.ok(SYS_clock_nanosleep, &[99, 0, 0x1300, 0]), 22);
        assert_eq!(f.ok(SYS_clock_nanosleep, &[3, 0, 0x1000, 0]), 22);
        assert_eq!(f.ok(SYS_clock_nanosleep, &[3, 0, 0, 0]), 14);
        // An absolute time already passed returns at once.
        assert_eq!(f.ok(SYS_clock_nanosleep, &[3, 1, 0x1300, 0x2000]), 0);
    }
}
