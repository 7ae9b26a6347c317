#!/usr/bin/env python3
"""MirrorGroup: this library's MirrorGroup in a batch against its own
blocking MirrorGroup loop, classic urlgrabber 4.1.0's MirrorGroup in
parallel_wait() mode, aria2c (all mirrors of a file on one line) and librepo
(the mirrors as the handle's URL list).

Scenarios
  a  3 mirror servers, 40 ms latency each, 5 connections per mirror (15 in
     all), 900 files x 32 KB, checkfunc verification on.
     ideal = files x latency / 15 = 2.4 s.
  b  fault mix, 300 files x 32 KB, retry on, verification on: mirror 1 is a
     dead port (nothing listens), mirror 2 answers 20 % of requests with 500
     and cuts 10 % of bodies short (--error-rate 0.2 --truncate-rate 0.1
     --seed 1), mirror 3 is healthy.  Servers are restarted for every tool,
     so each one meets the same fault sequence.  ideal = files x latency /
     10 (the live mirrors' connections): a lower bound.
  c  a dnf-like transaction: 300 packages of log-normal sizes (seeded; 98 MB
     in all, median ~120 KB, largest ~5 MB) from 3 unequal mirrors: 20, 60
     and 150 ms latency, 8, 4 and 2 MB/s per connection, 3 connections each.
     byte floor = total bytes / (3 x (8 + 4 + 2) MB/s) = 2.3 s; the
     latencies add to it.  A good client sends big files to fast mirrors,
     small ones to near mirrors, and splits the largest.

Every file must be correct (size and sha256 checked after each run); a tool
with any wrong or missing file gets FAIL.  See bench/README.md.

    python3 bench/bench_mirrors.py                  # a and b (about 2-3 min)
    python3 bench/bench_mirrors.py --scenario b --only ug-mirror,aria2c --repeat 3
    python3 bench/bench_mirrors.py --scenario c --repeat 3    # the dnf-like one
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C
import _tools as T

TOOLS = {
    "ug-mirror-serial": T.ug("mirror-serial"),
    "ug-mirror": T.ug("mirror"),
    "classic-mirror": T.classic("mirror"),
    "curl-roundrobin": T.curl(True),
    "aria2c": T.aria2,
    "librepo": T.librepo("mirror"),
}
DEFAULT = {
    "a": ["ug-mirror-serial", "ug-mirror", "classic-mirror", "curl-roundrobin", "aria2c",
          "librepo"],
    # curl has no failover: it would only fail here
    "b": ["ug-mirror-serial", "ug-mirror", "classic-mirror", "aria2c", "librepo"],
    "c": ["ug-mirror", "aria2c", "librepo"],
}


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--scenario", default="all", help="a, b, c or all (a and b)")
    ap.add_argument("--files", type=int, help="files (a: 900, b: 300)")
    ap.add_argument("--size", type=int, default=32768, help="bytes per file (32768)")
    ap.add_argument("--latency", type=float, default=0.04, help="server latency s (0.04)")
    ap.add_argument("--conns", type=int, default=5, help="connections per mirror (5)")
    ap.add_argument("--only", help="comma list of tools: " + ",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (default 1)")
    ap.add_argument("--pick", choices=("median", "best"), default="median",
                    help="which of the repeats the table shows (default median)")
    ap.add_argument("--retry", type=int, default=3, help="retry option (3)")
    ap.add_argument("--no-check", action="store_true",
                    help="no checkfunc / checksums (files are still verified after)")
    ap.add_argument("--server", choices=("bench", "test"), default="bench",
                    help="bench/_latency_server.py (default) or test/server.py")
    ap.add_argument("--classic-cap", type=int, default=300,
                    help="classic urlgrabber downloads only this many of the files "
                         "(0 = all; default 300): it forks a Python helper for most "
                         "requests and would take minutes")
    ap.add_argument("--no-setup", action="store_true",
                    help="do not create the urlgrabber 4.1.0 venv if missing")
    ap.add_argument("--json", help="write every figure to this file")
    C.add_driver_args(ap)
    a = ap.parse_args()
    C.set_driver_python(a.driver_python)
    a.scenarios = ["a", "b"] if a.scenario == "all" else a.scenario.split(",")
    a.only = a.only.split(",") if a.only else None
    for t in a.only or []:
        if t not in TOOLS:
            ap.error("unknown tool %r (have %s)" % (t, ", ".join(TOOLS)))
    return a


# scenario c: (latency s, bytes/s per connection) of each mirror
UNEQUAL = ((0.02, 8_000_000), (0.06, 4_000_000), (0.15, 2_000_000))


def dnf_sizes(count=300, total=98_000_000, seed=7):
    """Log-normal package sizes (seeded), scaled to ``total`` bytes."""
    import random
    rnd = random.Random(seed)
    raw = [rnd.lognormvariate(0, 1.3) for _ in range(count)]
    scale = total / sum(raw)
    sizes = [max(1024, int(x * scale)) for x in raw]
    sizes[-1] += total - sum(sizes)
    return sizes


class Mirrors:
    """The mirror servers of one scenario."""

    def __init__(self, a, faults, files, unequal=False):
        self.servers = []
        self.bases = []
        if unequal:
            self.servers = [C.LatencyServer(a.server, latency=lat, bw=bw, files=files)
                            for lat, bw in UNEQUAL]
        elif faults:
            port = C.free_port()                     # nothing listens there
            self.bases.append("http://127.0.0.1:%d/" % port)
            bad = C.LatencyServer(a.server, latency=a.latency, error_rate=0.2,
                                  truncate_rate=0.1, seed=1, files=files)
            good = C.LatencyServer(a.server, latency=a.latency, files=files)
            self.servers = [bad, good]
        else:
            self.servers = [C.LatencyServer(a.server, latency=a.latency, files=files) for _ in range(3)]
        self.bases += [s.base for s in self.servers]

    def stop(self):
        return [s.stop() for s in self.servers]


def run_scenario(a, name, files, faults, ideal, out, per=None):
    tools = a.only or DEFAULT[name]
    per = per or a.conns
    glob = per * 3
    opts = {"retry": a.retry, "check": not a.no_check, "timeout": 10}
    rows = []
    mirrors = None if faults else Mirrors(a, False, files, unequal=(name == "c"))
    try:
        for tool in tools:
            f = files
            if tool.startswith("classic-") and a.classic_cap and a.classic_cap < files.count:
                f = C.Files(a.classic_cap, files.size, files._gen)
            runs = []
            for rep in range(a.repeat):
                m = Mirrors(a, True, files) if faults else mirrors
                C.log("  %s run %d/%d (%s) ..." % (tool, rep + 1, a.repeat, " ".join(m.bases)))
                try:
                    r = TOOLS[tool](f, m.bases, glob, per, dict(opts, tool=tool,
                                                                setup=not a.no_setup))
                finally:
                    if faults:
                        stats = [x.strip().split("\n")[-1] for x in m.stop()]
                if r["status"] == "skipped":
                    runs = [r]
                    break
                if faults:
                    r["server_stats"] = stats
                C.log("    wall %.3fs cpu %.3fs %s%s%s%s" % (
                    r["wall"], r["cpu"], r["status"],
                    (": " + C.short("; ".join(r["problems"][:2]), 300)) if r["problems"] else "",
                    ("  [faulty mirror: %s]" % stats[0]) if faults else "",
                    (("  [start-up %.3fs, exit %.3fs]" % (r["before"], r["after"])) if "before" in r else "")))
                runs.append(r)
            row = runs[0] if runs[0]["status"] == "skipped" else C.summarize(runs, a.pick)
            row["n"] = f.count
            rows.append(row)
    finally:
        if mirrors:
            mirrors.stop()
    return rows


def main():
    a = parse()
    gen = C.gen_function(a.server)
    out = {"argv": sys.argv, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
           "repeat": a.repeat, "pick": a.pick}
    check = "off" if a.no_check else "on"
    C.precompile()
    if "a" in a.scenarios:
        n = a.files or 900
        files = C.Files(n, a.size, gen)
        C.log("scenario a: %d x %d B, 3 mirrors x %d connections, latency %.3fs"
              % (n, a.size, a.conns, a.latency))
        ideal = n * a.latency / (3 * a.conns)
        rows = run_scenario(a, "a", files, False, ideal, out)
        C.table("Scenario a: %d files x %d B, 3 mirrors, %.0f ms latency, %d connections per "
                "mirror (%d in all), verification %s (%s of %d runs)"
                % (n, a.size, a.latency * 1000, a.conns, 3 * a.conns, check, a.pick, a.repeat),
                rows, n, ideal=ideal, serial_tool="ug-mirror-serial",
                note="ideal = files x latency / (3 x connections per mirror); "
                     "x serial = wall / ug-mirror-serial wall.\n"
                     "curl-roundrobin: URLs spread over the mirrors in turn, no failover, "
                     "no checksum (raw speed reference).\n"
                     "aria2c/librepo verify with the sha256 in their input; the urlgrabber rows "
                     "with checkfunc.")
        out["a"] = {"files": n, "ideal": ideal, "rows": rows}
    if "b" in a.scenarios:
        n = a.files or 300
        files = C.Files(n, a.size, gen)
        C.log("scenario b: %d x %d B, dead + faulty + healthy mirror" % (n, a.size))
        ideal = n * a.latency / (2 * a.conns)
        rows = run_scenario(a, "b", files, True, ideal, out)
        C.table("Scenario b: %d files x %d B, mirrors: dead port, 20%% 500 + 10%% truncated "
                "(seed 1), healthy; %.0f ms latency, %d connections per mirror, retry=%d, "
                "verification %s (%s of %d runs)"
                % (n, a.size, a.latency * 1000, a.conns, a.retry, check, a.pick, a.repeat),
                rows, n, ideal=ideal, serial_tool="ug-mirror-serial",
                note="ideal = files x latency / (2 live mirrors x connections): a lower bound.\n"
                     "mirror order: dead, faulty, healthy (aria2c lines are rotated per file).")
        for r in rows:
            stats = (r.get("server_stats") or [""])[0]
            if stats.startswith("STATS"):    # bench/_latency_server.py says it
                print("  %s: faulty mirror served %s" % (r["tool"], stats[6:]))
        out["b"] = {"files": n, "ideal": ideal, "rows": rows}
    if "c" in a.scenarios:
        sizes = dnf_sizes()
        files = C.Files(len(sizes), max(sizes), gen, prefix="p", sizes=sizes)
        total = sum(sizes)
        ideal = total / (3 * sum(bw for _, bw in UNEQUAL))
        C.log("scenario c: %d packages, %.1f MB, 3 unequal mirrors x 3 connections"
              % (len(sizes), total / 1e6))
        rows = run_scenario(a, "c", files, False, ideal, out, per=3)
        srt = sorted(sizes)
        C.table("Scenario c (dnf-like): %d packages, %.1f MB (median %d KB, largest %.1f MB), "
                "mirrors at 20/60/150 ms and 8/4/2 MB/s per connection, 3 connections each, "
                "verification %s (%s of %d runs)"
                % (len(sizes), total / 1e6, srt[len(srt) // 2] // 1000, srt[-1] / 1e6, check,
                   a.pick, a.repeat),
                rows, len(sizes), ideal=ideal,
                note="ideal = total bytes / (3 connections x (8 + 4 + 2) MB/s): the byte "
                     "floor, latencies left out.")
        out["c"] = {"files": len(sizes), "bytes": total, "ideal": ideal, "rows": rows}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()
