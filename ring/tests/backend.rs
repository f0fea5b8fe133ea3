//! The backend choice: `auto` falls back to epoll when io_uring setup fails (a failure
//! injected through `Config`, not by changing the host), `io_uring` then fails instead, and a
//! fallen-back runtime serves like any other.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::recv;
use ring::{Backend, BackendChoice, Config, RingMode, Runtime, SetupError};

fn cfg(backend: BackendChoice, fault: Option<i32>) -> Config {
    Config {
        loops: 2,
        pin: false,
        ring_entries: 64,
        backend: Some(backend),
        io_uring_setup_errno: fault,
        spin_us: 0,
    }
}

/// A loop of `rt` still runs tasks, timers and cross-thread wakes.
fn serves(rt: &Runtime) {
    let (tx, rx) = mpsc::channel();
    for h in rt.handles() {
        let tx = tx.clone();
        h.spawn(move || async move {
            ring::sleep(Duration::from_millis(5)).await;
            tx.send(ring::current().unwrap().index()).unwrap();
        });
    }
    let mut got: Vec<usize> = (0..rt.handles().len()).map(|_| recv(&rx)).collect();
    got.sort();
    assert_eq!(got, (0..rt.handles().len()).collect::<Vec<_>>());
}

#[test]
fn auto_falls_back_to_epoll_when_io_uring_setup_fails() {
    for errno in [libc::EPERM, libc::ENOSYS, libc::EINVAL, libc::ENOMEM] {
        let rt = Runtime::start(&cfg(BackendChoice::Auto, Some(errno))).expect("fallback");
        for h in rt.handles() {
            assert_eq!(h.backend(), Backend::Epoll, "errno {errno}");
            assert_eq!(h.ring_mode(), RingMode::Epoll);
        }
        assert_eq!(ring::ring_mode_name(RingMode::Epoll), "epoll (no io_uring)");
        serves(&rt);
    }
}

#[test]
fn an_explicit_io_uring_choice_fails_instead_of_falling_back() {
    let e = match Runtime::start(&cfg(BackendChoice::IoUring, Some(libc::EPERM))) {
        Ok(_) => panic!("started despite the injected failure"),
        Err(e) => e,
    };
    assert!(
        matches!(
            e,
            SetupError::Blocked(_) | SetupError::Disabled | SetupError::Restricted
        ),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(m.contains("io_uring"), "{m}");
}

#[test]
fn an_explicit_epoll_choice_never_touches_io_uring() {
    let rt = Runtime::start(&cfg(BackendChoice::Epoll, Some(libc::EPERM))).unwrap();
    assert!(rt.handles().iter().all(|h| h.backend() == Backend::Epoll));
    serves(&rt);
}

#[test]
fn auto_uses_io_uring_where_it_works() {
    if let Err(e) = ring::probe_io_uring() {
        eprintln!("skipping: {e}");
        return;
    }
    let rt = Runtime::start(&cfg(BackendChoice::Auto, None)).unwrap();
    for h in rt.handles() {
        assert_eq!(h.backend(), Backend::IoUring);
        assert_ne!(h.ring_mode(), RingMode::Epoll);
    }
    serves(&rt);
}

#[test]
fn backend_names() {
    assert_eq!(Backend::IoUring.name(), "io_uring");
    assert_eq!(Backend::Epoll.to_string(), "epoll");
    assert_eq!(ring::BACKEND_ENV, "RUMP_IO_BACKEND");
    for b in [Backend::IoUring, Backend::Epoll] {
        let choice = BackendChoice::parse(b.name()).unwrap();
        assert_ne!(choice, BackendChoice::Auto);
    }
}
