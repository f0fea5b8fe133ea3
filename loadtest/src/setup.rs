//! Setting the stage through the syscalls themselves: the workload directory and files inside
//! the rump kernel (under `--root`, default `/tmp/loadtest`), then each connection's own
//! descriptors.

use crate::conn::{Conn, ConnState, Fatal};
use crate::nb::*;
use crate::workload::{addr, strid, BlockCfg, Call, Kind, DATA_FILE_LEN, DIR_ENTRIES};

/// Chunk written per pwrite while filling the data files.
const FILL_CHUNK: u64 = 64 << 10;

/// Gives a connection the strings its calls refer to; with `file_per_conn` its write4k file
/// is its own (`wdata-<conn>`), else all share `wdata`; with `dir_per_conn` its
/// create-write-unlink names are in its own directory (`c<conn>/`, made by [`conn_fds`]).
pub fn strings(
    st: &mut ConnState,
    root: &str,
    blk: &BlockCfg,
    conn: usize,
    inflight: usize,
    (file_per_conn, dir_per_conn): (bool, bool),
) {
    st.set_string(strid::TMP, "/tmp");
    st.set_string(strid::ROOT, root);
    st.set_string(strid::DATA, &format!("{root}/data"));
    match file_per_conn {
        true => st.set_string(strid::WDATA, &format!("{root}/wdata-{conn}")),
        false => st.set_string(strid::WDATA, &format!("{root}/wdata")),
    }
    st.set_string(strid::DIR, &format!("{root}/dir"));
    st.set_string(strid::BLOCK, &blk.dev);
    let dir = match dir_per_conn {
        true => format!("{root}/c{conn}"),
        false => String::new(),
    };
    for s in 0..inflight {
        match dir_per_conn {
            true => st.set_string(strid::SLOT0 + s, &format!("{dir}/cwu-{s}")),
            false => st.set_string(strid::SLOT0 + s, &format!("{root}/cwu-{conn}-{s}")),
        }
    }
    // The connection's own directory, if any (the scratch name until setup is done).
    st.set_string(strid::SCRATCH, &dir);
}

fn call(nr: u32, a: &[u64]) -> Call {
    let mut args = [0u64; 5];
    args[..a.len()].copy_from_slice(a);
    Call {
        nr,
        nargs: a.len() as u8,
        args,
    }
}

fn fill(c: &mut Conn, id: usize, what: &str, rbuf: &mut [u8]) -> Result<(), Fatal> {
    let open = call(SYS_OPEN, &[addr::str(id), O_RDWR | O_CREAT, 0o644]);
    let fd = c.must(what, &open, &[], rbuf)? as u64 & 0xffff_ffff;
    let mut off = 0;
    while off < DATA_FILE_LEN {
        let w = call(SYS_PWRITE, &[fd, addr::WRITE, FILL_CHUNK, 0, off]);
        c.must(what, &w, &[], rbuf)?;
        off += FILL_CHUNK;
    }
    c.must(what, &call(SYS_CLOSE, &[fd]), &[], rbuf)?;
    Ok(())
}

/// Creates what the workloads `kinds` need, through connection `c`.
pub fn shared_files(
    c: &mut Conn,
    kinds: &[Kind],
    root: &str,
    rbuf: &mut [u8],
) -> Result<(), Fatal> {
    let needs_root = kinds.iter().any(|k| {
        !matches!(
            k,
            Kind::Getpid | Kind::Block | Kind::SockinPingPong | Kind::SockinEcho
        )
    });
    if !needs_root {
        return Ok(());
    }
    let what = "setting up the workload directory";
    let mkdir = |id| call(SYS_MKDIR, &[addr::str(id), 0o755]);
    c.must(what, &mkdir(strid::TMP), &[EEXIST], rbuf)?;
    c.must(what, &mkdir(strid::ROOT), &[EEXIST], rbuf)?;
    let has = |k| kinds.contains(&k);
    if has(Kind::Stat) || has(Kind::OpenClose) || has(Kind::Read4k) {
        fill(c, strid::DATA, "creating the data file", rbuf)?;
    }
    if has(Kind::Write4k) {
        fill(c, strid::WDATA, "creating the write4k file", rbuf)?;
    }
    if has(Kind::Readdir) {
        let what = "creating the readdir directory";
        c.must(what, &mkdir(strid::DIR), &[EEXIST], rbuf)?;
        for i in 0..DIR_ENTRIES {
            c.st.set_string(strid::SCRATCH, &format!("{root}/dir/entry-{i:03}"));
            let open = call(
                SYS_OPEN,
                &[addr::str(strid::SCRATCH), O_WRONLY | O_CREAT, 0o644],
            );
            let fd = c.must(what, &open, &[], rbuf)? as u64 & 0xffff_ffff;
            c.must(what, &call(SYS_CLOSE, &[fd]), &[], rbuf)?;
        }
    }
    Ok(())
}

/// Opens the descriptors this connection's ops use (and makes its own directory, if
/// [`strings`] gave it one).
pub fn conn_fds(c: &mut Conn, kinds: &[Kind], rbuf: &mut [u8]) -> Result<(), Fatal> {
    let open = |id, fl| call(SYS_OPEN, &[addr::str(id), fl, 0]);
    if kinds.contains(&Kind::CreateWriteUnlink) && !c.st.string(strid::SCRATCH).is_empty() {
        let mkdir = call(SYS_MKDIR, &[addr::str(strid::SCRATCH), 0o755]);
        c.must("making the connection's directory", &mkdir, &[EEXIST], rbuf)?;
    }
    if kinds.contains(&Kind::Read4k) {
        c.st.fds.data = c.must(
            "opening the data file",
            &open(strid::DATA, O_RDONLY),
            &[],
            rbuf,
        )?;
    }
    if kinds.contains(&Kind::Write4k) {
        // O_CREAT: a per-connection file (`--file-per-conn`) is made here.
        let o = call(
            SYS_OPEN,
            &[addr::str(strid::WDATA), O_RDWR | O_CREAT, 0o644],
        );
        c.st.fds.wdata = c.must("opening the write4k file", &o, &[], rbuf)?;
    }
    if kinds.contains(&Kind::SockinEcho) {
        let what = "connecting to the host echo peer over sockin (-lrumpnet_sockin)";
        let port = echo_peer().map_err(|e| format!("{what}: {e}"))?;
        let mut sin = vec![16u8, AF_INET as u8];
        sin.extend_from_slice(&port.to_be_bytes());
        sin.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        c.st.set_bytes(strid::SCRATCH + 2, &sin);
        c.st.set_bytes(strid::SCRATCH + 3, &1i32.to_le_bytes());
        let k = c.must(
            what,
            &call(SYS_SOCKET, &[AF_INET, SOCK_STREAM, 0]),
            &[],
            rbuf,
        )?;
        let fd = k as u64 & 0xffff_ffff;
        let sa = addr::str(strid::SCRATCH + 2);
        c.must(what, &call(SYS_CONNECT, &[fd, sa, 16]), &[], rbuf)?;
        let one = addr::str(strid::SCRATCH + 3);
        let nodelay = call(SYS_SETSOCKOPT, &[fd, IPPROTO_TCP, TCP_NODELAY, one, 4]);
        c.must(what, &nodelay, &[], rbuf)?;
        (c.st.fds.pw, c.st.fds.pr) = (k, k);
    }
    if kinds.contains(&Kind::Block) {
        let o = open(strid::BLOCK, O_RDWR);
        c.st.fds.block = c.must("opening the block device (--block-dev)", &o, &[], rbuf)?;
    }
    Ok(())
}

/// The host echo peer of `sockin-echo` (started once): a listener on 127.0.0.1 and a
/// thread per connection writing back what it reads. Its port.
fn echo_peer() -> Result<u16, String> {
    use std::io::{Read, Write};
    static PORT: std::sync::OnceLock<Result<u16, String>> = std::sync::OnceLock::new();
    PORT.get_or_init(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        std::thread::Builder::new()
            .name("echo-peer".into())
            .spawn(move || {
                for s in l.incoming().flatten() {
                    let _ = s.set_nodelay(true);
                    let _ = std::thread::Builder::new()
                        .name("echo".into())
                        .spawn(move || {
                            let mut s = s;
                            let mut buf = vec![0u8; 64 << 10];
                            while let Ok(n) = s.read(&mut buf) {
                                if n == 0 || s.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        });
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(port)
    })
    .clone()
}

/// Pairs connection `ping` with `pong` (two rump processes) for a ping-pong workload: an
/// AF_LOCAL stream (ping binds `<root>/pp-<pair>`, listens, pong connects, ping accepts) or
/// two FIFOs `<root>/ff-<pair>-ab` and `-ba` (readers opened non-blocking first, then made
/// blocking). Both get the descriptors they write to and read from; pong reads first.
pub fn pair(
    ping: &mut Conn,
    pong: &mut Conn,
    kind: Kind,
    pair: usize,
    root: &str,
    rbuf: &mut [u8],
) -> Result<(), Fatal> {
    let fd = |v: i64| v as u64 & 0xffff_ffff;
    match kind {
        Kind::LocalPingPong => {
            let what = "pairing connections over an AF_LOCAL socket";
            let path = format!("{root}/pp-{pair}");
            // struct sockaddr_un as a string: sun_len, AF_LOCAL, the path (+ its NUL).
            let sun = format!("{}\u{1}{path}", char::from((2 + path.len()) as u8));
            let len = 2 + path.len() as u64 + 1;
            ping.st.set_string(strid::SCRATCH, &sun);
            pong.st.set_string(strid::SCRATCH, &sun);
            let sock = call(SYS_SOCKET, &[AF_LOCAL, SOCK_STREAM, 0]);
            let l = fd(ping.must(what, &sock, &[], rbuf)?);
            ping.must(
                what,
                &call(SYS_BIND, &[l, addr::str(strid::SCRATCH), len]),
                &[],
                rbuf,
            )?;
            ping.must(what, &call(SYS_LISTEN, &[l, 1]), &[], rbuf)?;
            let k = pong.must(what, &sock, &[], rbuf)?;
            let conn = call(SYS_CONNECT, &[fd(k), addr::str(strid::SCRATCH), len]);
            pong.must(what, &conn, &[], rbuf)?;
            let a = ping.must(what, &call(SYS_ACCEPT, &[l, 0, 0]), &[], rbuf)?;
            ping.must(what, &call(SYS_CLOSE, &[l]), &[], rbuf)?;
            (ping.st.fds.pw, ping.st.fds.pr) = (a, a);
            (pong.st.fds.pw, pong.st.fds.pr) = (k, k);
        }
        Kind::SockinPingPong => {
            let what = "pairing connections over sockin TCP (-lrumpnet_sockin)";
            // A loopback port free on the host now: the ping process binds it.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("{what}: a free port: {e}"))?
                .port();
            let mut sin = vec![16u8, AF_INET as u8];
            sin.extend_from_slice(&port.to_be_bytes());
            sin.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
            for c in [&mut *ping, &mut *pong] {
                c.st.set_bytes(strid::SCRATCH, &sin);
                c.st.set_bytes(strid::SCRATCH + 1, &1i32.to_le_bytes());
            }
            let sa = addr::str(strid::SCRATCH);
            let sock = call(SYS_SOCKET, &[AF_INET, SOCK_STREAM, 0]);
            let l = fd(ping.must(what, &sock, &[], rbuf)?);
            ping.must(what, &call(SYS_BIND, &[l, sa, 16]), &[], rbuf)?;
            ping.must(what, &call(SYS_LISTEN, &[l, 1]), &[], rbuf)?;
            let k = pong.must(what, &sock, &[], rbuf)?;
            pong.must(what, &call(SYS_CONNECT, &[fd(k), sa, 16]), &[], rbuf)?;
            let a = ping.must(what, &call(SYS_ACCEPT, &[l, 0, 0]), &[], rbuf)?;
            ping.must(what, &call(SYS_CLOSE, &[l]), &[], rbuf)?;
            // Each 4 KiB message leaves at once (no Nagle delay behind the last one).
            let one = addr::str(strid::SCRATCH + 1);
            let nodelay = |s: i64| call(SYS_SETSOCKOPT, &[fd(s), IPPROTO_TCP, TCP_NODELAY, one, 4]);
            ping.must(what, &nodelay(a), &[], rbuf)?;
            pong.must(what, &nodelay(k), &[], rbuf)?;
            (ping.st.fds.pw, ping.st.fds.pr) = (a, a);
            (pong.st.fds.pw, pong.st.fds.pr) = (k, k);
        }
        _ => {
            let what = "pairing connections over two FIFOs";
            let ab = format!("{root}/ff-{pair}-ab");
            let ba = format!("{root}/ff-{pair}-ba");
            for c in [&mut *ping, &mut *pong] {
                c.st.set_string(strid::SCRATCH, &ab);
                c.st.set_string(strid::SCRATCH + 1, &ba);
            }
            for id in [strid::SCRATCH, strid::SCRATCH + 1] {
                ping.must(
                    what,
                    &call(SYS_MKFIFO, &[addr::str(id), 0o644]),
                    &[EEXIST],
                    rbuf,
                )?;
            }
            let open = |id, fl| call(SYS_OPEN, &[addr::str(id), fl, 0]);
            let rd = O_RDONLY | O_NONBLOCK;
            pong.st.fds.pr = pong.must(what, &open(strid::SCRATCH, rd), &[], rbuf)?;
            ping.st.fds.pw = ping.must(what, &open(strid::SCRATCH, O_WRONLY), &[], rbuf)?;
            ping.st.fds.pr = ping.must(what, &open(strid::SCRATCH + 1, rd), &[], rbuf)?;
            pong.st.fds.pw = pong.must(what, &open(strid::SCRATCH + 1, O_WRONLY), &[], rbuf)?;
            for c in [&mut *ping, &mut *pong] {
                let r = fd(c.st.fds.pr);
                c.must(what, &call(SYS_FCNTL, &[r, F_SETFL, 0]), &[], rbuf)?;
            }
        }
    }
    pong.st.fds.pong = true;
    Ok(())
}
