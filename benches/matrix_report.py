#!/usr/bin/env python3
"""Formats the matrix results (JSON lines from run-matrix.sh) as the generated part of
docs/benchmarks.md: targets, then one table per socket type and pinning mode."""
import json
import sys

results_path, machine_path, idle_line, settings = sys.argv[1:5]
rows = [json.loads(l) for l in open(results_path) if l.strip()]
by_tag = {r["tag"]: r for r in rows}


def rate(tag):
    r = by_tag.get(tag)
    return r["r"]["ops_per_s"] if r and "r" in r else None


def fmt_rate(v):
    return "—" if v is None else f"{v:,.0f}"


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}"


def cell_err(r):
    e = r.get("error", "")
    if "ENOSYS" in e:
        return "ENOSYS (not implemented)"
    return "error: " + e[:80]


out = []
out.append("## Machine\n")
out.append("```")
out.append(open(machine_path).read().rstrip())
out.append("```\n")
out.append(f"Settings: `{settings}`.\n")

out.append("## Targets (issue 7)\n")
out.append("| target | measured | ratio | goal |")
out.append("|---|---|---|---|")
t = [
    ("getpid, 1 unix conn, pinned (-c 1, taskset core 0)", "unix/pinned/1", "getpid", 0.8),
    ("getpid, 64 x 4 unix, -c 2", "unix/unpinned-c2/64", "getpid", 0.7),
    ("read4k, 64 x 4 unix, -c 2", "unix/unpinned-c2/64", "read4k", 0.6),
    ("write4k, 64 x 4 unix, -c 2", "unix/unpinned-c2/64", "write4k", 0.4),
]
for name, shape, w, goal in t:
    ours, base = rate(f"ours/{w}/{shape}"), rate(f"baseline/{shape}")
    r = by_tag.get(f"ours/{w}/{shape}")
    meas = f"{fmt_rate(ours)} ops/s vs baseline {fmt_rate(base)}"
    if r and "error" in r:
        meas = cell_err(r)
    out.append(f"| {name} | {meas} | {ratio(ours, base)} | ≥ {goal} |")
    nb = rate(f"netbsd/{w}/{shape}")
    if nb is not None:
        out.append(f"| … vs NetBSD rump_server | {fmt_rate(nb)} ops/s | {ratio(ours, nb)} | "
                   f"≥ 5 (getpid) |")
s64, s256 = rate("ours/getpid/unix/unpinned-c2/64"), rate("ours/getpid/unix/unpinned-c2/256")
out.append(f"| scale: getpid 256 vs 64 conns (unix, -c 2) | {fmt_rate(s256)} vs "
           f"{fmt_rate(s64)} | {ratio(s256, s64)} | ≥ 0.9 |")
r64 = by_tag.get("ours/getpid/unix/unpinned-c2/64")
if r64 and "r" in r64:
    lat = r64["r"]["latency_us"]
    out.append(f"| latency getpid 64 x 4 (unix, -c 2) | p50 {lat['p50']:.1f} µs, "
               f"p99 {lat['p99']:.1f} µs | | stated |")
out.append(f"| memory per idle connection | {idle_line} | | ≤ 16 KiB |")
for w in ("read4k", "write4k"):
    shape = "unix/unpinned-c2/64"
    ours, lim = rate(f"ours/{w}/{shape}"), rate(f"baseline-{w}/{shape}")
    if lim is not None:
        out.append(f"| (context) {w}, 64 x 4 unix, -c 2, vs its framing limit (the same "
                   f"frames from a peer with no kernel) | {fmt_rate(ours)} vs {fmt_rate(lim)} | "
                   f"{ratio(ours, lim)} | |")
out.append("")

impls = sorted({r["tag"].split("/")[0] for r in rows if not r["tag"].startswith("baseline")})
for scheme in ("unix", "tcp"):
    for mode in ("pinned", "unpinned-c1", "unpinned-c2"):
        shapes = [r for r in rows if r["tag"].startswith(f"baseline/{scheme}/{mode}/")]
        if not shapes:
            continue
        desc = {"pinned": "pinned: server -c 1 and client on core 0 (taskset)",
                "unpinned-c1": "unpinned, server -c 1",
                "unpinned-c2": "unpinned, server -c 2"}[mode]
        out.append(f"### {scheme}, {desc}\n")
        hdr = ("| workload | conns x inflight | ops/s | × baseline | × framing limit | p50 µs | "
               "p99 µs | p99.9 µs |")
        sep = "|---|---|---|---|---|---|---|---|"
        if "netbsd" in impls:
            hdr += " NetBSD ops/s | ours / NetBSD |"
            sep += "---|---|"
        out.append(hdr)
        out.append(sep)
        workloads = []
        for r in rows:
            parts = r["tag"].split("/")
            if parts[0] == "ours" and parts[1] not in workloads:
                workloads.append(parts[1])
        for b in shapes:
            c = b["tag"].split("/")[-1]
            shape = f"{scheme}/{mode}/{c}"
            base = rate(f"baseline/{shape}")
            br = b.get("r")
            inflight = br["inflight"] if br else "?"
            sh = f"{c} x {inflight}"
            if br:
                lat = br["latency_us"]
                out.append(f"| **baseline** | {sh} | {fmt_rate(base)} | 1.00 | | {lat['p50']:.1f} "
                           f"| {lat['p99']:.1f} | {lat['p999']:.1f} |" +
                           (" | |" if "netbsd" in impls else ""))
            for w in ("read4k", "write4k"):
                lr = by_tag.get(f"baseline-{w}/{shape}")
                if lr and "r" in lr:
                    lat = lr["r"]["latency_us"]
                    v = lr["r"]["ops_per_s"]
                    out.append(f"| *framing limit {w}* | {sh} | {fmt_rate(v)} | {ratio(v, base)} "
                               f"| 1.00 | {lat['p50']:.1f} | {lat['p99']:.1f} | "
                               f"{lat['p999']:.1f} |" + (" | |" if "netbsd" in impls else ""))
            for w in workloads:
                r = by_tag.get(f"ours/{w}/{shape}")
                if r is None:
                    continue
                nb = rate(f"netbsd/{w}/{shape}")
                extra = f" {fmt_rate(nb)} | {ratio(rate(r['tag']), nb)} |" \
                    if "netbsd" in impls else ""
                if "error" in r:
                    out.append(f"| {w} | {sh} | {cell_err(r)} | | | | | |" + extra)
                    continue
                lat = r["r"]["latency_us"]
                v = r["r"]["ops_per_s"]
                lim = rate(f"baseline-{w}/{shape}")
                lim_s = ratio(v, lim) if lim is not None else ""
                out.append(f"| {w} | {sh} | {fmt_rate(v)} | {ratio(v, base)} | {lim_s} | "
                           f"{lat['p50']:.1f} | {lat['p99']:.1f} | {lat['p999']:.1f} |" + extra)
        out.append("")

out.append("<details><summary>Commands of this run</summary>\n")
out.append("```")
for r in rows:
    pre = "taskset -c 0 " if r["pin"] == "pinned" else ""
    out.append(f"{pre}loadtest --json {r['args']}")
out.append("```")
out.append("</details>")
print("\n".join(out))
