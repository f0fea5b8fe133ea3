//! getrandom(2) (NetBSD 10's sys_getrandom.c): bytes from the host's random source, which is
//! always seeded, so no call waits for entropy.

use super::{ret, Args, Ctx, SysResult};
use crate::{copy, Errno, UserMem};

/// `GRND_NONBLOCK`: do not wait for entropy (never needed here).
pub const GRND_NONBLOCK: u32 = 0x1;
/// `GRND_RANDOM`: `/dev/random` semantics — one short read of at most [`RANDOM_MAX`] bytes.
pub const GRND_RANDOM: u32 = 0x2;
/// `GRND_INSECURE`: whatever the pool holds (the same here).
pub const GRND_INSECURE: u32 = 0x4;
/// Most bytes one `GRND_RANDOM` call returns (`ENTROPY_CAPACITY`, the pool's 32 bytes).
pub const RANDOM_MAX: u64 = 32;
/// Bytes generated and copied out per step (`RANDOM_BUFSIZE`); a process that exits between
/// steps gets what was copied so far.
const CHUNK: usize = 512;

/// `getrandom(buf, buflen, flags)` — fills `buf` with random bytes: unknown flags or
/// `GRND_RANDOM|GRND_INSECURE` are `EINVAL`; `GRND_RANDOM` returns at most 32 bytes; a long
/// request is filled in 512-byte steps and ends early (with the bytes so far, or `EINTR` if
/// none) when the caller's process is exiting. Any bytes transferred suppress an error.
pub async fn getrandom<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let (buf, buflen, flags) = (a.word(0), a.word(1), a.word(2) as u32);
    if flags & !(GRND_RANDOM | GRND_INSECURE | GRND_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE {
        return Err(Errno::EINVAL);
    }
    let want = match flags & GRND_RANDOM != 0 {
        true => buflen.min(RANDOM_MAX),
        false => buflen,
    };
    let mut block = [0u8; CHUNK];
    let mut done = 0u64;
    while done < want {
        let n = (want - done).min(CHUNK as u64) as usize;
        c.k.host().random(&mut block[..n]);
        let copied = copy::copyout(c.mem, buf.wrapping_add(done), &block[..n]).await;
        block[..n].fill(0);
        if let Err(e) = copied {
            return if done > 0 { ret(done as i64) } else { Err(e) };
        }
        done += n as u64;
        if done < want && c.p.exiting() {
            break;
        }
    }
    if done == 0 && want > 0 {
        return Err(Errno::EINTR);
    }
    ret(done as i64)
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::SYS_getrandom;
    use crate::testutil::Fixture;
    use crate::Errno;

    #[test]
    fn flags_lengths_and_bytes() {
        let f = Fixture::new();
        let buf = 0x10_0000;
        f.mem.map_zero(buf, 4096);
        assert_eq!(f.call(SYS_getrandom, &[buf, 16, 8]), Err(Errno::EINVAL));
        assert_eq!(f.call(SYS_getrandom, &[buf, 16, 6]), Err(Errno::EINVAL));
        assert_eq!(f.call(SYS_getrandom, &[buf, 0, 0]).unwrap()[0], 0);
        assert_eq!(f.call(SYS_getrandom, &[buf, 3000, 1]).unwrap()[0], 3000);
        let a = f.mem.read(buf, 3000);
        assert!(a.iter().filter(|&&b| b == 0).count() < 100, "random bytes");
        assert_eq!(f.call(SYS_getrandom, &[buf, 100, 2]).unwrap()[0], 32);
        assert_eq!(f.call(SYS_getrandom, &[buf, 100, 4]).unwrap()[0], 100);
        assert_eq!(
            f.call(SYS_getrandom, &[0xdead_0000, 8, 0]),
            Err(Errno::EFAULT)
        );
    }
}
