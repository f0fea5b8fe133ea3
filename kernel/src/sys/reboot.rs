//! reboot(2) (kern_xxx.c `sys_reboot`, rumpkern/emul.c `cpu_reboot`).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{RB_BOOTSTR_MAX, RB_STRING};
use crate::{copy, Errno, UserMem};

/// `reboot(howto, bootstr)` — halts the kernel; `reboot(2)`. Only the superuser may
/// (`KAUTH_SYSTEM_REBOOT`: `EPERM`, checked before anything is fetched, as sys_reboot).
/// With `RB_STRING` the boot string is fetched (at most 128 bytes) and ignored, a failed
/// fetch included. The server then exits as `howto` says.
pub async fn reboot<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    if !c.p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    let howto = a.uint(0);
    if howto & RB_STRING != 0 {
        let _bootstr = copy::copyinstr(c.mem, a.word(1), RB_BOOTSTR_MAX).await;
    }
    c.k.shutdown(howto).await;
    ret(0)
}

#[cfg(test)]
mod tests {
    use crate::abi::sysnum::{SYS_reboot, SYS_setuid};
    use crate::abi::{RB_HALT, RB_NOSYNC, RB_STRING};
    use crate::testutil::{Fixture, Req};

    #[test]
    fn reboot_halts_once_and_prints() {
        let f = Fixture::new();
        let out = f.sys(SYS_reboot, &[u64::from(RB_HALT | RB_NOSYNC), 0]);
        assert_eq!(out.result, Ok([0, 0]));
        assert_eq!(out.halt, Some(RB_HALT | RB_NOSYNC));
        assert!(f.k.halting());
        assert_eq!(f.host.console(), b"rump kernel halting...\n");
        assert!(f.mem.requests().is_empty());
        assert_eq!(f.sys(SYS_reboot, &[0, 0]).halt, Some(0));
        assert_eq!(f.host.console(), b"rump kernel halting...\n");
    }

    /// A halt with sync prints NetBSD's `vfs_shutdown` lines (rumpkern's `cpu_reboot`).
    #[test]
    fn a_syncing_halt_prints_netbsds_lines() {
        let f = Fixture::new();
        assert_eq!(f.sys(SYS_reboot, &[0, 0]).halt, Some(0));
        let text = String::from_utf8(f.host.console()).unwrap();
        assert_eq!(
            text,
            "rump kernel halting...\nsyncing disks... done\n\
             unmounting file systems...\nunmounting done\n"
        );
    }

    #[test]
    fn rb_string_fetches_128_bytes_and_ignores_failures() {
        let f = Fixture::new();
        f.mem.map(0x1000, b"netbsd -s\0");
        let out = f.sys(SYS_reboot, &[u64::from(RB_STRING), 0x1000]);
        assert_eq!(out.halt, Some(RB_STRING));
        assert_eq!(f.mem.requests(), vec![Req::InStr(0x1000, 128)]);
        let g = Fixture::new();
        assert_eq!(
            g.sys(SYS_reboot, &[u64::from(RB_STRING), 0]).halt,
            Some(RB_STRING)
        );
        assert_eq!(
            g.sys(SYS_reboot, &[u64::from(RB_STRING), 0x5000]).result,
            Ok([0, 0])
        );
        assert_eq!(g.mem.requests(), vec![Req::InStr(0x5000, 128)]);
    }

    #[test]
    fn only_root_reboots_and_nothing_is_fetched_first() {
        let f = Fixture::new();
        assert_eq!(f.sys(SYS_setuid, &[1000]).result, Ok([0, 0]));
        let out = f.sys(SYS_reboot, &[u64::from(RB_STRING | RB_HALT), 0x1000]);
        assert_eq!(out.result, Err(crate::Errno::EPERM));
        assert_eq!(out.halt, None);
        assert!(!f.k.halting());
        assert!(f.mem.requests().is_empty(), "no copyin before the check");
        assert_eq!(f.host.console(), b"");
    }
}
