//! The `net.local` sysctl nodes (issue 15) as NetBSD's rump_server with `-lrumpnet_local`
//! shows them (`tests/oracle/netlocal.netbsd`): each node under `net.local` with its number,
//! type, size and description, and a read of `net.local` itself. Needs the sysctl probe's
//! helpers (`tests/oracle/sysctl.rs`) as `crate::sysctl`.

use crate::sysctl::{describe, query, read_leaf};
use crate::transcript::connect;

/// `CTL_NET`, `PF_LOCAL`.
const NET: i32 = 4;
const LOCAL: i32 = 1;

/// The lines of the `net.local` subtree, depth first.
pub fn run(url: &str) -> Vec<String> {
    let mut c = connect(url, "netlocal");
    let mut out = Vec::new();
    walk(&mut c, &mut vec![NET, LOCAL], "net.local", &mut out, 0);
    out
}

fn walk(
    c: &mut client::Client,
    path: &mut Vec<i32>,
    prefix: &str,
    out: &mut Vec<String>,
    depth: usize,
) {
    let nodes = match query(c, path) {
        Ok(n) => n,
        Err(e) => {
            out.push(format!("{prefix}: query errno {e}"));
            return;
        }
    };
    let descs = describe(c, path).unwrap_or_default();
    for n in nodes {
        let desc = descs
            .iter()
            .find(|d| d.0 == n.num)
            .map_or("-", |d| d.1.as_str())
            .to_string();
        // Numbers from 1025 are dynamic (CTL_CREATE order): shown as "dyn".
        let num = if n.num >= 1025 {
            "dyn".to_string()
        } else {
            n.num.to_string()
        };
        out.push(format!(
            "{prefix}.{} {num} type={} size={} # {desc}",
            n.name,
            n.ty(),
            n.size
        ));
        if n.name == "pcblist" {
            // sysctl_unp_pcblist: without its four name arguments, and with them (all
            // sockets, `struct kinfo_pcb` of 640 bytes, room for 8).
            path.push(n.num);
            let r = read_leaf(c, path);
            out.push(format!("{prefix}.{} read: {}", n.name, shown(r)));
            path.extend_from_slice(&[0, 0, 640, 8]);
            let r = read_leaf(c, path);
            out.push(format!("{prefix}.{} read all: {}", n.name, shown(r)));
            path.truncate(path.len() - 5);
        }
        if n.ty() == 1 && depth < 4 {
            path.push(n.num);
            walk(c, path, &format!("{prefix}.{}", n.name), out, depth + 1);
            path.pop();
        }
    }
}

fn shown(r: Result<Vec<u8>, (i32, &'static str)>) -> String {
    match r {
        Ok(b) => format!("ok {} bytes", b.len()),
        Err((e, _)) => format!("errno {e}"),
    }
}
