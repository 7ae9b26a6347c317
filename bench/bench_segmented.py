#!/usr/bin/env python3
"""One large file from several mirrors at once (segmented download).

Scenario: one 48 MB file on 3 mirror servers (bench/_latency_server.py), each
response (so each connection) capped at 4 MB/s, 2 connections per mirror.
ideal = size / (6 x 4 MB/s) = 2.0 s; one connection needs 12 s.

Tools
  ug-mirror         MirrorGroup batch (async_=True, parallel_end, max_connections=6,
                    2 per mirror): split over the idle mirrors by default
  ug-mirror-serial  blocking MirrorGroup.urlgrab: classic hooks, one mirror at a time
  ug-single-6       URLGrabber().urlgrab(url, dest, segments=6) on mirror 1 only
  aria2c            aria2c -x2 -s6 with the 3 mirror URLs on the file's line
  aria2c-k1M        the same with --min-split-size=1M (its smallest, its best case)
  librepo          the 3 mirrors as the handle's URL list, 2 per mirror
  curl              one connection to mirror 1

Every file is checked (size and sha256) after each run; see bench/README.md.

    python3 bench/bench_segmented.py --repeat 3
    python3 bench/bench_segmented.py --only ug-mirror,aria2c --size 16000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C
import _tools as T

MB = 1000 * 1000


def _aria2(min_split=None):
    def run(files, bases, conns, per_key, opts):
        exe = shutil.which("aria2c")
        if not exe:
            return T.skipped(opts["tool"], "aria2c not installed (apt-get install aria2)")
        d = C.fresh_dir(opts["tool"])
        inp = os.path.join(C.SHM, os.path.basename(d) + ".aria2-input")
        C.aria2_input([[b + r for b in bases] for r in files.rel],
                      [os.path.join(d, n) for n in files.names], inp,
                      files.sha if opts.get("check") else None)
        cmd = [exe, "-i", inp, "-j", "1", "-x", str(per_key), "-s", str(conns),
               "--max-tries=%d" % (opts.get("retry", 3) + 1), "--retry-wait=0",
               "--timeout=%d" % opts.get("timeout", 30), *C.ARIA2_FLAGS]
        if min_split:
            cmd.append("--min-split-size=%s" % min_split)
        r = C.run_measured(cmd, env=C.clean_env(), timeout=T.TIMEOUT)
        os.unlink(inp)
        return C.finish_run(opts["tool"], r, files, d)
    return run


def _single(segments):
    def run(files, bases, conns, per_key, opts):
        return T._driver_row(opts["tool"], sys.executable, "_ug_driver.py", "serial", files,
                             bases[:1], conns, per_key, dict(opts, segments=segments))
    return run


TOOLS = {
    "ug-mirror": T.ug("mirror"),
    "ug-mirror-serial": T.ug("mirror-serial"),
    "ug-single-6": _single(6),
    "aria2c": _aria2(),
    "aria2c-k1M": _aria2("1M"),
    "librepo": T.librepo("mirror"),
    "curl": T.curl(),
}


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--size", type=int, default=48 * MB, help="bytes (48 MB)")
    ap.add_argument("--bw", type=int, default=4 * MB, help="bytes/s per connection (4 MB/s)")
    ap.add_argument("--per-mirror", type=int, default=2, help="connections per mirror (2)")
    ap.add_argument("--latency", type=float, default=0.01, help="server latency s (0.01)")
    ap.add_argument("--only", help="comma list of tools: " + ",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (default 1)")
    ap.add_argument("--pick", choices=("median", "best"), default="median")
    ap.add_argument("--no-check", action="store_true", help="no checkfunc / checksums")
    ap.add_argument("--json", help="write every figure to this file")
    C.add_driver_args(ap)
    a = ap.parse_args()
    C.set_driver_python(a.driver_python)
    a.only = a.only.split(",") if a.only else list(TOOLS)
    for t in a.only:
        if t not in TOOLS:
            ap.error("unknown tool %r (have %s)" % (t, ", ".join(TOOLS)))
    return a


def main():
    a = parse()
    C.precompile()
    files = C.Files(1, a.size, C.gen_function("bench"), prefix="big")
    conns = 3 * a.per_mirror
    ideal = a.size / (conns * a.bw)
    C.log("1 file x %d B, 3 mirrors x %d connections at %d B/s each; ideal %.2f s"
          % (a.size, a.per_mirror, a.bw, ideal))
    servers = [C.LatencyServer("bench", latency=a.latency, bw=a.bw, files=files) for _ in range(3)]
    bases = [s.base for s in servers]
    opts = {"retry": 3, "check": not a.no_check, "timeout": 30}
    rows = []
    try:
        for tool in a.only:
            runs = []
            for rep in range(a.repeat):
                C.log("  %s run %d/%d ..." % (tool, rep + 1, a.repeat))
                r = TOOLS[tool](files, bases, conns, a.per_mirror, dict(opts, tool=tool))
                if r["status"] == "skipped":
                    runs = [r]
                    break
                C.log("    wall %.3fs cpu %.3fs %s%s" % (r["wall"], r["cpu"], r["status"],
                      (": " + C.short("; ".join(r["problems"][:2]), 300)) if r["problems"] else ""))
                runs.append(r)
            row = runs[0] if runs[0]["status"] == "skipped" else C.summarize(runs, a.pick)
            row["n"] = 1
            rows.append(row)
    finally:
        for s in servers:
            s.stop()
    C.table("One %.0f MB file, 3 mirrors x %d connections, %.0f MB/s per connection, "
            "verification %s (%s of %d runs)"
            % (a.size / MB, a.per_mirror, a.bw / MB, "off" if a.no_check else "on", a.pick, a.repeat),
            rows, 1, ideal=ideal,
            note="ideal = size / (connections x rate per connection); one connection: %.1f s.\n"
                 "x ideal is the whole process (start-up included)." % (a.size / a.bw))
    ok = {r["tool"]: r["wall"] for r in rows if r.get("status") == "ok"}
    if "ug-mirror" in ok:
        for peer in ("aria2c", "aria2c-k1M", "librepo", "curl"):
            if peer in ok:
                print("  ug-mirror / %s = %.2f" % (peer, ok["ug-mirror"] / ok[peer]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"argv": sys.argv, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "ideal": ideal, "rows": rows}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
