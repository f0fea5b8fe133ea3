//! `RUMP_IO_BACKEND` reaches `Runtime::start` when `Config::backend` is `None`. One test in
//! its own binary: it changes the environment, which no other thread may read meanwhile.

use ring::{Backend, Config, Runtime, SetupError};

fn start_from_env() -> Result<Runtime, SetupError> {
    Runtime::start(&Config {
        loops: 1,
        pin: false,
        ..Default::default()
    })
}

#[test]
fn the_environment_variable_chooses_the_backend() {
    std::env::set_var("RUMP_IO_BACKEND", "epoll");
    let rt = start_from_env().unwrap();
    assert_eq!(rt.handles()[0].backend(), Backend::Epoll);
    drop(rt);

    std::env::set_var("RUMP_IO_BACKEND", "kqueue");
    let e = match start_from_env() {
        Ok(_) => panic!("an unknown backend started"),
        Err(e) => e,
    };
    assert!(
        matches!(e, SetupError::BadBackend(ref v) if v == "kqueue"),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains("RUMP_IO_BACKEND") && m.contains("kqueue") && m.contains("io_uring, epoll"),
        "{m}"
    );

    let io_uring_ok = ring::probe_io_uring().is_ok();
    for v in ["io_uring", "auto", ""] {
        std::env::set_var("RUMP_IO_BACKEND", v);
        match start_from_env() {
            Ok(rt) if io_uring_ok => assert_eq!(rt.handles()[0].backend(), Backend::IoUring),
            Ok(rt) => assert_eq!(rt.handles()[0].backend(), Backend::Epoll, "{v}"),
            Err(e) => assert!(!io_uring_ok && v == "io_uring", "{v}: {e}"),
        }
    }
    std::env::remove_var("RUMP_IO_BACKEND");
    let rt = start_from_env().unwrap();
    let want = match io_uring_ok {
        true => Backend::IoUring,
        false => Backend::Epoll,
    };
    assert_eq!(rt.handles()[0].backend(), want, "unset means auto");
}
