//! reboot(2) (kern_xxx.c `sys_reboot`, rumpkern/emul.c `cpu_reboot`).

use super::{ret, Args, Ctx, SysResult};
use crate::abi::{RB_BOOTSTR_MAX, RB_STRING};
use crate::{copy, UserMem};

/// `reboot(howto, bootstr)` — halts the kernel; `reboot(2)`. With `RB_STRING` the boot string
/// is fetched (at most 128 bytes) and ignored, a failed fetch included. The caller (every
/// client is root) always succeeds; the server then exits as `howto` says.
pub async fn reboot<M: UserMem>(c: &Ctx<'_, M>, a: Args<'_>) -> SysResult {
    let howto = a.uint(0);
    if howto & RB_STRING != 0 {
        let _bootstr = copy::copyinstr(c.mem, a.word(1), RB_BOOTSTR_MAX).await;
    }
    c.k.shutdown(howto);
    ret(0)
}
