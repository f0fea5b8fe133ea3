//! Unit tests of the MIB and of `__sysctl` through the syscall table.

use super::*;
use crate::abi::sysnum::SYS___sysctl;
use crate::testutil::{Fixture, TestMem};

#[test]
fn registration_is_mkdir_p_with_dynamic_numbers_in_order() {
    let m = Mib::new();
    assert_eq!(m.register(&[], Spec::node("net", Some(4))), Ok(4));
    assert_eq!(m.register(&[], Spec::node("net", None)), Ok(4), "reused");
    assert_eq!(
        m.register(&[], Spec::node("net", Some(5))),
        Err(Errno::EEXIST)
    );
    assert_eq!(m.register(&["net"], Spec::node("inet", None)), Ok(1025));
    assert_eq!(m.register(&["net"], Spec::int("a", Some(2), 7)), Ok(2));
    assert_eq!(m.register(&["net"], Spec::int("b", None, 7)), Ok(1026));
    assert_eq!(
        m.register(&["net"], Spec::int("a", None, 1)),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        m.register(&["net"], Spec::int("c", Some(2), 1)),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        m.register(&["nope"], Spec::int("x", None, 1)),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        m.register(&["net", "a"], Spec::int("x", None, 1)),
        Err(Errno::ENOTDIR)
    );
    for bad in ["", "a.b", &"n".repeat(32)] {
        assert_eq!(m.register(&[], Spec::node(bad, None)), Err(Errno::EINVAL));
    }
    // Children come out sorted by number.
    let q = m.query(&[4], 0).unwrap();
    let nums: Vec<i32> = q
        .chunks(NODE_SIZE)
        .map(|n| i32::from_le_bytes(n[4..8].try_into().unwrap()))
        .collect();
    assert_eq!(nums, [2, 1025, 1026]);
    assert_eq!(m.count(), (4, 2));
}

#[test]
fn resolve_errors_as_sysctl_locate() {
    let f = Fixture::new();
    let m = f.k.sysctl();
    assert_eq!(m.resolve(&[1, 1], true), Ok(Target::Leaf));
    assert_eq!(
        m.resolve(&[1, CTL_QUERY], true),
        Ok(Target::Meta(CTL_QUERY))
    );
    assert_eq!(m.resolve(&[CTL_QUERY], true), Ok(Target::Meta(CTL_QUERY)));
    assert_eq!(m.resolve(&[99], true), Err(Errno::ENOENT));
    assert_eq!(m.resolve(&[1, 1, 1], true), Err(Errno::ENOTDIR));
    assert_eq!(
        m.resolve(&[1, 81, 1], true),
        Err(Errno::EINVAL),
        "func leaf"
    );
    assert_eq!(
        m.resolve(&[1], true),
        Err(Errno::EINVAL),
        "a node is not read"
    );
    assert_eq!(m.resolve(&[1, -9], true), Err(Errno::EOPNOTSUPP));
    assert_eq!(m.resolve(&[1, -9, 1], true), Err(Errno::ENOENT));
    // proc.<any pid>.…: ANYNUMBER.
    assert_eq!(m.resolve(&[10, 1234, 1], true), Ok(Target::Leaf));
    assert_eq!(m.resolve(&[10, -3, 1], true), Err(Errno::ENOENT));
}

#[test]
fn base_tree_has_netbsds_node_count() {
    let f = Fixture::new();
    // The fixture has every file system: tests/oracle/sysctl-ffs.netbsd, 149 nodes, 103
    // of them leaves (-lrumpvfs alone: 137 and 94, tests/oracle_sysctl.rs).
    assert_eq!(f.k.sysctl().count(), (149, 103));
}

thread_local! {
    /// Each call's buffers get fresh addresses (`TestMem` regions are never remapped).
    static BASE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn base() -> u64 {
    BASE.with(|b| b.get())
}

/// `__sysctl` with the name at base+0x1000, oldlenp at +0x2000, old at +0x3000 and new at
/// +0x4000, a new base per call; returns `*oldlenp` after the call.
fn call(
    f: &Fixture,
    name: &[i32],
    old: Option<usize>,
    oldlen: Option<u64>,
    new: &[u8],
) -> Result<u64> {
    let b = BASE.with(|b| {
        b.set(b.get() + 0x10000);
        b.get()
    });
    let mem: &TestMem = &f.mem;
    let nm: Vec<u8> = name.iter().flat_map(|v| v.to_le_bytes()).collect();
    mem.map(b + 0x1000, &nm);
    mem.map(b + 0x2000, &oldlen.unwrap_or(0).to_le_bytes());
    mem.map(b + 0x3000, &vec![0xee; old.unwrap_or(0)]);
    mem.map(b + 0x4000, new);
    let args = [
        b + 0x1000,
        name.len() as u64,
        old.map_or(0, |_| b + 0x3000),
        oldlen.map_or(0, |_| b + 0x2000),
        if new.is_empty() { 0 } else { b + 0x4000 },
        new.len() as u64,
    ];
    f.call(SYS___sysctl, &args)?;
    Ok(oldlen_of(f))
}

fn oldlen_of(f: &Fixture) -> u64 {
    u64::from_le_bytes(f.mem.read(base() + 0x2000, 8).try_into().unwrap())
}

/// The old buffer of the last call.
fn old_buf(f: &Fixture, len: usize) -> Vec<u8> {
    f.mem.read(base() + 0x3000, len)
}

#[test]
fn reads_probe_and_partial_copies() {
    let f = Fixture::new();
    assert_eq!(call(&f, &[1, 1], None, Some(0), &[]), Ok(7), "size probe");
    assert_eq!(call(&f, &[1, 1], Some(16), Some(16), &[]), Ok(7));
    assert_eq!(old_buf(&f, 8), b"NetBSD\0\xee");
    assert_eq!(call(&f, &[1, 1], Some(8), Some(3), &[]), Err(Errno::ENOMEM));
    assert_eq!(oldlen_of(&f), 7, "the size needed, even with the error");
    assert_eq!(old_buf(&f, 4), b"Net\xee");
    assert_eq!(call(&f, &[6, 3], Some(4), Some(4), &[]), Ok(4));
    assert_eq!(old_buf(&f, 4), 1i32.to_le_bytes(), "hw.ncpu");
    assert_eq!(call(&f, &[1, 24], Some(4), Some(4), &[]), Ok(4));
    assert_eq!(old_buf(&f, 4), 3i32.to_le_bytes(), "kern.rawpartition");
}

#[test]
fn namelen_out_of_range_is_einval() {
    let f = Fixture::new();
    f.mem.map(0x100, &[1; 64]);
    assert_eq!(f.err(SYS___sysctl, &[0x100, 0]), Errno::EINVAL);
    assert_eq!(f.err(SYS___sysctl, &[0x100, 13]), Errno::EINVAL);
    assert_eq!(f.err(SYS___sysctl, &[0x100, u64::MAX]), Errno::EINVAL);
}

#[test]
fn arandom_serves_oldlen_bytes_from_the_host() {
    let f = Fixture::new();
    assert_eq!(call(&f, &[1, 81], Some(64), Some(64), &[]), Ok(64));
    assert_eq!(old_buf(&f, 64), vec![0xa5; 64], "TestHost::random");
    assert_eq!(call(&f, &[1, 81], Some(256), Some(256), &[]), Ok(256));
    assert_eq!(
        call(&f, &[1, 81], Some(257), Some(257), &[]),
        Err(Errno::E2BIG)
    );
    assert_eq!(call(&f, &[1, 81], Some(8), Some(0), &[]), Ok(0));
}

#[test]
fn writes_follow_netbsds_rules() {
    let f = Fixture::new();
    assert_eq!(call(&f, &[1, 10], None, None, b"box\0"), Ok(0));
    assert_eq!(call(&f, &[1, 10], Some(8), Some(8), &[]), Ok(4));
    assert_eq!(old_buf(&f, 4), b"box\0");
    // Old value out, then the new one in; no NUL needed when shorter than the node.
    assert_eq!(call(&f, &[1, 10], Some(8), Some(8), b"cat"), Ok(4));
    assert_eq!(old_buf(&f, 4), b"box\0");
    assert_eq!(call(&f, &[1, 10], Some(8), Some(8), &[]), Ok(4));
    assert_eq!(old_buf(&f, 4), b"cat\0");
    assert_eq!(
        call(&f, &[1, 10], None, Some(0), &[b'x'; 257]),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        call(&f, &[1, 10], None, Some(0), &[b'x'; 256]),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        call(&f, &[1, 1], None, Some(0), b"Linux\0"),
        Err(Errno::EPERM)
    );
    // An int must come with exactly its size.
    let direct = [1, 1032];
    assert_eq!(
        call(&f, &direct, None, Some(0), &[1, 0, 0]),
        Err(Errno::EINVAL)
    );
    assert_eq!(call(&f, &direct, None, Some(0), &1i32.to_le_bytes()), Ok(4));
    // A bool only 0 or 1.
    let autoload = [1, 1038, 1039];
    assert_eq!(call(&f, &autoload, None, Some(0), &[2]), Err(Errno::EINVAL));
    assert_eq!(call(&f, &autoload, None, Some(0), &[1]), Ok(1));
    // A computed value has nowhere to keep a new one.
    assert_eq!(
        call(&f, &[1, 1027, 1029], None, Some(0), b"x\0"),
        Err(Errno::EOPNOTSUPP)
    );
    // Not root: EPERM before anything else.
    f.ok(crate::abi::sysnum::SYS_setuid, &[1000]);
    assert_eq!(
        call(&f, &[1, 10], None, Some(0), b"user\0"),
        Err(Errno::EPERM)
    );
    assert_eq!(call(&f, &[1, 10], Some(8), Some(8), &[]), Ok(4));
}

#[test]
fn query_and_describe_copy_whole_records() {
    let f = Fixture::new();
    let mut req = [0u8; NODE_SIZE];
    req[0..4].copy_from_slice(&SYSCTL_VERSION.to_le_bytes());
    let kern = f.k.sysctl().query(&[1], 0).unwrap().len() as u64;
    let q = [1, CTL_QUERY];
    assert_eq!(call(&f, &q, None, Some(0), &req), Ok(kern));
    assert_eq!(call(&f, &q, Some(200), Some(200), &req), Err(Errno::ENOMEM));
    assert_eq!(oldlen_of(&f), kern);
    let got = old_buf(&f, 200);
    assert_eq!(&got[8..14], b"ostype");
    assert_eq!(&got[96 + 8..96 + 17], b"osrelease");
    assert_eq!(got[192..], [0xee; 8], "no partial node");
    assert_eq!(
        call(&f, &q, None, Some(0), &[]),
        Err(Errno::EINVAL),
        "no request"
    );
    assert_eq!(call(&f, &q, None, Some(0), &req[..8]), Err(Errno::EINVAL));
    let mut old = req;
    old[40..44].copy_from_slice(&12345u32.to_le_bytes());
    assert_eq!(
        call(&f, &q, None, Some(0), &old),
        Err(Errno::EINVAL),
        "version"
    );
    // Descriptions: 16 bytes each (12 + "" rounded to 4).
    let d = [1, CTL_DESCRIBE];
    assert_eq!(call(&f, &d, None, Some(0), &[]), Ok(kern / 96 * 16));
    let mut one = req;
    one[4..8].copy_from_slice(&1i32.to_le_bytes());
    assert_eq!(call(&f, &d, Some(64), Some(64), &one), Ok(16));
    assert_eq!(old_buf(&f, 12)[..4], 1i32.to_le_bytes());
    one[4..8].copy_from_slice(&9999i32.to_le_bytes());
    assert_eq!(call(&f, &d, Some(64), Some(64), &one), Err(Errno::ENOENT));
    assert_eq!(
        call(&f, &[1, 1, CTL_DESCRIBE], None, Some(0), &[]),
        Err(Errno::ENOTDIR)
    );
}

#[test]
fn a_faction_adds_nodes_that_query_and_read_see() {
    let f = Fixture::new();
    let m = f.k.sysctl();
    let inet = m.register(&["net"], Spec::node("inet", Some(2))).unwrap();
    let n = m
        .register(&["net", "inet"], Spec::int("ttl", None, 64).rw())
        .unwrap();
    assert!(n > CREATE_BASE);
    let mut req = [0u8; NODE_SIZE];
    req[0..4].copy_from_slice(&SYSCTL_VERSION.to_le_bytes());
    assert_eq!(call(&f, &[4, CTL_QUERY], Some(96), Some(96), &req), Ok(96));
    assert_eq!(&old_buf(&f, 96)[8..12], b"inet");
    assert_eq!(call(&f, &[4, inet, n], Some(4), Some(4), &[]), Ok(4));
    assert_eq!(old_buf(&f, 4), 64i32.to_le_bytes());
}

#[test]
fn a_leaf_taking_arguments_gets_up_to_its_bound_of_them() {
    let m = Mib::new();
    m.register(&[], Spec::node("net", Some(4))).unwrap();
    let f = |_: &Env<'_>, c: &ArgsCall<'_>| {
        Ok(ArgsOut {
            data: c.args.iter().flat_map(|a| a.to_le_bytes()).collect(),
            oldlen: c.args.len() as u64,
        })
    };
    let spec = Spec::func_args("list", Some(7), CTLTYPE_STRUCT, 0, 2, f);
    m.register(&["net"], spec).unwrap();
    m.register(
        &["net"],
        Spec::func("plain", Some(8), CTLTYPE_INT, 4, |_| Ok(vec![0; 4])),
    )
    .unwrap();
    for name in [&[4, 7][..], &[4, 7, 1], &[4, 7, 1, 2], &[4, 7, CTL_QUERY]] {
        assert_eq!(m.resolve(name, true), Ok(Target::Leaf), "{name:?}");
        let (_, _, depth) = m.args_leaf(name).expect("an arguments leaf");
        assert_eq!(depth, 2);
    }
    assert_eq!(
        m.resolve(&[4, 7, 1, 2, 3], true),
        Err(Errno::EINVAL),
        "past the bound"
    );
    assert!(m.args_leaf(&[4, 7, 1, 2, 3]).is_none());
    assert_eq!(
        m.resolve(&[4, 8, 1], true),
        Err(Errno::EINVAL),
        "plain function leaf"
    );
    assert!(m.args_leaf(&[4, 8]).is_none());
    // CTL_QUERY on the parent still lists the leaf as any other (96-byte node).
    assert_eq!(m.query(&[4], 0).map(|b| b.len()), Ok(2 * NODE_SIZE));
}
