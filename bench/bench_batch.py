#!/usr/bin/env python3
"""Bulk downloads: this library's batch mode against its own serial loop,
classic urlgrabber 4.1.0 (serial and parallel_wait), curl --parallel, aria2c
and librepo.

Scenarios
  a  600 files x 32 KB from one server with 40 ms latency per request,
     10 connections.  ideal = files x latency / connections = 2.4 s.
  b  20 000 files x 4 KB from a private nginx on tmpfs, 8 connections
     (files per second; compare with curl).
  c  memory: queue 5 000 requests in a fresh process, report the RSS growth
     after queueing and the peak growth while they run (target < 60 MB).

Every tool runs in a subprocess of its own and writes to a fresh directory on
/dev/shm; every file is then checked (size and sha256), and a tool with any
wrong or missing file gets FAIL.  See bench/README.md for the columns.

    python3 bench/bench_batch.py                      # a, b, c (about 2-3 min)
    python3 bench/bench_batch.py --scenario a --repeat 3 --only ug-batch,curl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C
import _tools as T

TOOLS = {
    "ug-serial": T.ug("serial"),
    "ug-batch": T.ug("batch"),
    "classic-serial": T.classic("serial"),
    "classic-parallel": T.classic("batch"),
    "curl": T.curl(False),
    "curl-immediate": T.curl(True),
    "aria2c": T.aria2,
    "librepo": T.librepo("batch"),
}
DEFAULT = {
    "a": list(TOOLS),
    # serial loops over 20 000 files are slow and say little here: ask for
    # them with --only
    "b": ["ug-batch", "classic-parallel", "curl", "curl-immediate", "aria2c", "librepo"],
}
MEMORY_TOOLS = ["ug-batch", "classic-parallel", "curl", "aria2c"]


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--scenario", default="all", help="a, b, c or all (comma list ok)")
    ap.add_argument("--files", type=int, help="files (a: 600, b: 20000, c: 5000)")
    ap.add_argument("--size", type=int, help="bytes per file (a: 32768, b/c: 4096)")
    ap.add_argument("--latency", type=float, default=0.04, help="a: server latency s")
    ap.add_argument("--conns", type=int, help="connections (a: 10, b/c: 8)")
    ap.add_argument("--only", help="comma list of tools: " + ",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (default 1)")
    ap.add_argument("--pick", choices=("median", "best"), default="median",
                    help="which of the repeats the table shows (default median)")
    ap.add_argument("--server", choices=("bench", "test"), default="bench",
                    help="a: bench/_latency_server.py (default) or test/server.py")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--classic-cap", type=int, default=300,
                    help="b: classic-parallel downloads only this many of the "
                         "files (0 = all; default 300)")
    ap.add_argument("--classic-memory-run", action="store_true",
                    help="c: let classic urlgrabber also download the 5 000 files "
                         "(takes about 5 minutes); by default it only queues them")
    ap.add_argument("--no-setup", action="store_true",
                    help="do not create the urlgrabber 4.1.0 venv if missing")
    ap.add_argument("--setup", action="store_true",
                    help="only create the urlgrabber 4.1.0 venv, then exit")
    ap.add_argument("--json", help="write every figure to this file")
    C.add_driver_args(ap)
    a = ap.parse_args()
    C.set_driver_python(a.driver_python)
    a.scenarios = ["a", "b", "c"] if a.scenario == "all" else a.scenario.split(",")
    a.only = a.only.split(",") if a.only else None
    for t in a.only or []:
        if t not in TOOLS:
            ap.error("unknown tool %r (have %s)" % (t, ", ".join(TOOLS)))
    return a


def run_tools(a, tools, files, bases, conns, per_key, opts=None):
    """One row per tool.  The repeats take turns (run 1 of every tool, then run 2 ...),
    so a machine that slows down or speeds up meanwhile affects every tool alike."""
    runs = {tool: [] for tool in tools}
    for rep in range(a.repeat):
        for tool in tools:
            if runs[tool] and runs[tool][0]["status"] == "skipped":
                continue
            o = dict(opts or {}, tool=tool, setup=not a.no_setup)
            C.log("  %s run %d/%d ..." % (tool, rep + 1, a.repeat))
            r = TOOLS[tool](files, bases, conns, per_key, o)
            if r["status"] == "skipped":
                runs[tool] = [r]
                continue
            C.log("    wall %.3fs cpu %.3fs %s%s%s" % (
                r["wall"], r["cpu"], r["status"],
                (": " + "; ".join(r["problems"][:2])) if r["problems"] else "",
                (("  [start-up %.3fs, exit %.3fs]" % (r["before"], r["after"])) if "before" in r else "")))
            runs[tool].append(r)
    return [rs[0] if rs[0]["status"] == "skipped" else C.summarize(rs, a.pick)
            for rs in runs.values()]


def scenario_a(a, out):
    n = a.files or 600
    size = a.size or 32768
    conns = a.conns or 10
    lat = a.latency
    tools = a.only or DEFAULT["a"]
    gen = C.gen_function(a.server)
    files = C.Files(n, size, gen)
    srv = C.LatencyServer(a.server, latency=lat, files=files)
    cpu0 = srv.cpu()
    C.log("scenario a: %d x %d B, latency %.3fs, %d connections, server %s"
          % (n, size, lat, conns, srv.base))
    per_tool = []
    rows = []
    try:
        for tool in tools:
            c0 = srv.cpu()
            rows += run_tools(a, [tool], files, [srv.base], conns, conns)
            if rows[-1]["status"] != "skipped":
                per_tool.append(((srv.cpu() - c0) * 1e6 / (n * a.repeat), tool))
    finally:
        scpu = srv.cpu() - cpu0
        srv.stop()
    ideal = n * lat / conns
    C.table("Scenario a: %d files x %d B, one server, %.0f ms latency, %d connections "
            "(%s of %d runs)" % (n, size, lat * 1000, conns, a.pick, a.repeat),
            rows, n, ideal=ideal, serial_tool="ug-serial",
            note="ideal = files x latency / connections; x serial = wall / ug-serial wall.\n"
                 "server (%s) CPU per request: %s" % (a.server, ", ".join(
                     "%s %.0f us" % (t, us) for us, t in per_tool)))
    out["a"] = {"files": n, "size": size, "latency": lat, "conns": conns,
                "ideal": ideal, "rows": rows, "server_cpu_s": scpu}


def scenario_b(a, out, ng, files):
    conns = a.conns or 8
    tools = a.only or DEFAULT["b"]
    n = files.count
    C.log("scenario b: %d x %d B from nginx %s, %d connections" % (n, files.size, ng.base, conns))
    capped = [t for t in tools if t == "classic-parallel" and a.classic_cap and a.classic_cap < n]
    full = [t for t in tools if t not in capped]
    by_tool = {}
    for row in run_tools(a, full, files, [ng.base], conns, conns):  # (their runs take turns)
        by_tool[row["tool"]] = dict(row, n=n)
    for tool in capped:
        # 4.1 forks a Python helper for most requests: the full run
        # would take many minutes, a subset gives its files/s.
        f = C.Files(a.classic_cap, files.size, files._gen)
        by_tool[tool] = dict(run_tools(a, [tool], f, [ng.base], conns, conns)[0], n=f.count)
    rows = [by_tool[t] for t in tools if t in by_tool]
    # the peer to beat is curl's fastest configuration in this very run
    curls = [r for r in rows if r["tool"].startswith("curl") and r["status"] == "ok" and r["n"] == n]
    curl = min(curls, key=lambda r: r["wall"]) if curls else None
    note = "no ideal: the server answers at once. x serial = wall / ug-serial wall (when run)."
    if curl:
        note += "\nrelative to the fastest curl (%s): files/s, CPU per file\n  " % curl["tool"] + ", ".join(
            "%s %.3g, %.3g" % (r["tool"], (r["n"] / r["wall"]) / (n / curl["wall"]),
                               (r["cpu"] / r["n"]) / (curl["cpu"] / n))
            for r in rows if r["status"] == "ok")
        paired = _paired(rows, curl)
        if paired:
            note += "\npaired by round (the median of each round's ratio to %s; the runs take turns):\n  " % (
                curl["tool"]) + ", ".join(paired)
    C.table("Scenario b: %d files x %d B, local nginx (tmpfs), %d connections (%s of %d runs)"
            % (n, files.size, conns, a.pick, a.repeat),
            rows, n, ideal=None, serial_tool="ug-serial", note=note)
    out["b"] = {"files": n, "size": files.size, "conns": conns, "rows": rows}


def _paired(rows, ref):
    """Per tool, the median over rounds of files/s and CPU per file against ``ref``'s run
    of the same round: the runs of one round take turns, so a drifting VM hits both
    alike, where the medians of each tool's own runs may come from different minutes."""
    out = []
    ref_rounds = ref.get("rounds") or []
    for r in rows:
        rounds = r.get("rounds") or []
        if r is ref or r["status"] != "ok" or r["n"] != ref["n"] or len(rounds) != len(ref_rounds):
            continue
        fps = [rw / w for (w, _), (rw, _) in zip(rounds, ref_rounds)]
        cpu = [c / rc for (_, c), (_, rc) in zip(rounds, ref_rounds)]
        out.append("%s %.3g, %.3g (CPU %s)" % (r["tool"], statistics.median(fps), statistics.median(cpu),
                                                " ".join("%.2f" % x for x in cpu)))
    return out


def _mem_python(a, tool, files, base, conns):
    """Two fresh processes: one queues and runs (RSS), one queues under tracemalloc."""
    if tool == "ug-batch":
        py, script, env = sys.executable, "_ug_driver.py", C.clean_env()
    else:
        py = C.classic_python(setup=not a.no_setup)
        if py is None:
            return T.skipped(tool, "no urlgrabber 4.1.0 venv")
        script, env = "_classic_driver.py", C.classic_env()
    # classic 4.1 needs minutes for 5 000 files (a Python helper forked for
    # most requests, see scenario a/b): by default it only queues them.
    run = tool == "ug-batch" or a.classic_memory_run
    d = C.fresh_dir(tool)
    job = files.job([base], d)
    job.update(mode="memory", conns=conns, retry=3, run=run)
    r = C.run_driver(py, script, job, env=env)
    drv = r["driver"]
    if drv is None:
        shutil.rmtree(d, ignore_errors=True)
        return {"tool": tool, "status": "fail", "ok": 0,
                "problems": ["driver crashed: " + C.short(r["err"][-600:])]}
    if run:
        row = C.finish_run(tool, r, files, d)
    else:
        row = {"tool": tool + " (queue only)", "status": "ok", "ok": None, "problems": [],
               "wall": drv["wall"], "cpu": drv["cpu"], "driver": drv}
    job.update(tracemalloc=True, run=False, dests=[os.path.join(d, x) for x in files.names])
    r2 = C.run_driver(py, script, job, env=env)
    shutil.rmtree(d, ignore_errors=True)
    kb = 1024.0
    row.update(
        rss_before=drv["rss_before_kb"] / kb,
        queue_growth=(drv["rss_after_queue_kb"] - drv["rss_before_kb"]) / kb,
        peak_growth=(max(drv["maxrss_kb"], drv["rss_after_queue_kb"]) - drv["rss_before_kb"]) / kb,
        peak_abs=drv["maxrss_kb"] / kb,
        queue_s=drv["queue_s"],
        tracemalloc_queue=(r2["driver"] or {}).get("tracemalloc_queue_bytes", float("nan")) / kb / kb,
    )
    return row


def _mem_cli(a, tool, files, base, conns):
    """Peak RSS of the tool (wait4) for all files minus that for one file."""
    runner = TOOLS[tool]
    one = C.Files(1, files.size, files._gen)
    small = runner(one, [base], conns, conns, {"tool": tool})
    if small["status"] == "skipped":
        return small
    full = runner(files, [base], conns, conns, {"tool": tool})
    kb = 1024.0
    full.update(rss_before=small["maxrss_kb"] / kb, queue_growth=None,
                peak_growth=(full["maxrss_kb"] - small["maxrss_kb"]) / kb,
                peak_abs=full["maxrss_kb"] / kb, queue_s=None, tracemalloc_queue=None)
    return full


def scenario_c(a, out, ng, files):
    conns = a.conns or 8
    n = files.count
    tools = [t for t in (a.only or MEMORY_TOOLS) if t in MEMORY_TOOLS]
    C.log("scenario c: memory, %d requests x %d B from nginx %s" % (n, files.size, ng.base))
    rows = []
    for tool in tools:
        C.log("  %s ..." % tool)
        if tool != "ug-batch" and not os.path.exists(C.GNU_TIME):
            rows.append(T.skipped(tool, "needs GNU time (%s)" % C.GNU_TIME))
        elif tool in ("ug-batch", "classic-parallel"):
            rows.append(_mem_python(a, tool, files, ng.base, conns))
        else:
            rows.append(_mem_cli(a, tool, files, ng.base, conns))
    cols = ["tool", "RSS before MB", "+after queue MB", "peak +MB", "KB/request",
            "tracemalloc queue MB", "queue s", "wall s", "files ok", "verdict"]
    cells = []
    for r in rows:
        if r["status"] == "skipped":
            cells.append([r["tool"]] + ["-"] * 8 + ["skipped: " + r["why"]])
            continue
        verdict = "ok" if r["status"] == "ok" else "FAIL"
        if r["tool"] == "ug-batch" and r["status"] == "ok":
            verdict = "ok (< 60 MB)" if r["peak_growth"] < 60 else "OVER 60 MB TARGET"
        cells.append([r["tool"], C.fmt(r.get("rss_before"), ".1f"),
                      C.fmt(r.get("queue_growth"), ".1f"), C.fmt(r.get("peak_growth"), ".1f"),
                      C.fmt(r["peak_growth"] * 1024 / n if r.get("peak_growth") is not None
                            else None, ".2f"),
                      C.fmt(r.get("tracemalloc_queue"), ".1f"), C.fmt(r.get("queue_s"), ".3f"),
                      C.fmt(r.get("wall"), ".3f"),
                      "-" if r.get("ok") is None else "%d/%d" % (r["ok"], n), verdict])
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c)
              for i, c in enumerate(cols)]
    print()
    print("Scenario c: memory, %d queued requests x %d B (nginx, %d connections)"
          % (n, files.size, conns))
    print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths))))
    print("  ".join("-" * w for w in widths))
    for x in cells:
        print("  ".join(c.rjust(w) if i and i < len(cols) - 1 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(x, widths))))
    for r in rows:
        if r["status"] == "fail":
            print("  %s FAILED: %s" % (r["tool"], C.short("; ".join(r["problems"][:3]))))
    print("  Python rows: RSS (VmRSS) of a fresh process after imports; '+after queue' once\n"
          "  all requests are queued; 'peak +' = peak RSS (VmHWM) at the end - RSS before;\n"
          "  tracemalloc (separate run) = Python heap held by the queued requests.\n"
          "  classic-parallel: parent process only (its urlgrabber-ext-down helpers are\n"
          "  separate processes).  CLI rows: peak RSS (GNU time %M) for all files minus\n"
          "  that for one file; 'RSS before' = the one-file peak.  wall includes queueing.")
    sys.stdout.flush()
    out["c"] = {"files": n, "size": files.size, "conns": conns, "rows": rows}


def main():
    a = parse()
    if a.setup:
        print(C.classic_python(setup=True) or "setup failed")
        return
    out = {"argv": sys.argv, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "curl": subprocess.run(["curl", "--version"], capture_output=True,
                                              text=True).stdout.split("\n")[0]
                       if shutil.which("curl") else None},
           "repeat": a.repeat, "pick": a.pick}
    C.precompile()
    if "a" in a.scenarios:
        scenario_a(a, out)
    if "b" in a.scenarios or "c" in a.scenarios:
        size = a.size or 4096
        nb = (a.files or 20000) if "b" in a.scenarios else 0
        nc = (a.files or 5000) if "c" in a.scenarios else 0
        t0 = time.perf_counter()
        big = C.Files(max(nb, nc), size, C.gen_function("bench"))
        ng = C.Nginx([big], C.gen_function("bench"), workers=a.nginx_workers)
        C.log("nginx ready with %d files in %.1fs" % (big.count, time.perf_counter() - t0))
        if shutil.which("curl"):
            # one unmeasured pass over every file: the first tool would
            # otherwise pay for nginx's and the kernel's first touches
            w = T.curl(False)(big, [ng.base], 8, 8, {"tool": "warm-up"})
            C.log("warm-up (curl) %.2fs %s" % (w["wall"], w["status"]))
        try:
            if nb:
                scenario_b(a, out, ng, big if nb == big.count else C.Files(nb, size, big._gen))
            if nc:
                scenario_c(a, out, ng, big if nc == big.count else C.Files(nc, size, big._gen))
        finally:
            ng.stop()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()
