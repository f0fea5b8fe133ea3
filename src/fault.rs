//! Fault injection for tests of the server's own robustness (debug builds only).
//!
//! `RUMP_FAULT_PANIC=nr` makes every call of syscall `nr` panic in its first poll (inline in
//! the connection's reader); `RUMP_FAULT_PANIC=nr:late` makes it panic after it first waited
//! (in a task of its own). tests/attack_panic.rs uses it to check that a panic costs only the
//! connection it happened on. Release builds have no such hook: the check compiles away.

/// Panics as `RUMP_FAULT_PANIC` asks, if it names `sysnum` (debug builds only).
pub async fn maybe_panic(sysnum: u32) {
    #[cfg(debug_assertions)]
    {
        use std::sync::OnceLock;
        static SPEC: OnceLock<Option<(u32, bool)>> = OnceLock::new();
        let spec = SPEC.get_or_init(|| {
            let v = std::env::var("RUMP_FAULT_PANIC").ok()?;
            let (nr, late) = match v.strip_suffix(":late") {
                Some(nr) => (nr, true),
                None => (v.as_str(), false),
            };
            Some((nr.parse().ok()?, late))
        });
        if let Some((nr, late)) = *spec {
            if nr == sysnum {
                if late {
                    ring::yield_now().await;
                }
                panic!("RUMP_FAULT_PANIC: injected panic in syscall {sysnum}");
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = sysnum;
}
