#!/usr/bin/env python3
"""HTTP/2: many small files over HTTPS from a server that multiplexes, 4 per host.

Scenarios
  a  1 000 files x 16 KB over HTTPS from an HTTP/2 server (test/h2server.py)
     that answers each request after 40 ms; per-host limit 4.
     ideal = files x latency / (4 connections x 32 streams) = 0.31 s.
  b  the same server offering only http/1.1 in ALPN (it refuses h2): every
     tool is back to one transfer per connection (ideal files x latency / 4 = 10 s).

Tools: ug-batch (this library: parallel_begin(max_connections=4),
urlgrab(..., async_=(base, 4)); max_streams at its default), curl-4
(curl --parallel --parallel-max 4), curl-100 (--parallel-max 100, curl's
default cap: it multiplexes up to 100 streams over one connection), librepo
(maxparalleldownloads=4, maxdownloadspermirror=4), aria2c (-j 4; no HTTP/2).

Each tool runs in its own process, writes to a fresh directory on /dev/shm,
and every file is checked (size and sha256).  After every run the server says
how many TCP connections the tool opened and the most requests it had in
progress at once on one connection.  See bench/README.md.

    python3 bench/bench_h2.py --repeat 3
    python3 bench/bench_h2.py --scenario a,b --only ug-batch,curl-100
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C
import _tools as T

TOOLS = {
    "ug-batch": lambda files, bases, conns, opts: T.ug("batch")(files, bases, conns, conns, opts),
    "curl-4": lambda files, bases, conns, opts: T.curl(False)(files, bases, conns, conns, opts),
    "curl-100": lambda files, bases, conns, opts: T.curl(False)(files, bases, 100, 100, opts),
    "librepo": lambda files, bases, conns, opts: T.librepo("batch")(files, bases, conns, conns, opts),
    "aria2c": lambda files, bases, conns, opts: T.aria2(files, bases, conns, conns, opts),
}
STREAMS = 32  # max_streams' default: the ideal of scenario a


class H2Server:
    """test/h2server.py in a subprocess of its own (HTTPS; its CA written to /dev/shm)."""

    def __init__(self, latency: float, h1_only: bool = False):
        fd, self.ca = tempfile.mkstemp(prefix="ugbench-h2-ca-", suffix=".pem", dir=C.SHM)
        os.close(fd)
        cmd = [sys.executable, os.path.join(C.TEST, "h2server.py"), "--port", "0",
               "--latency", str(latency), "--ca-out", self.ca]
        if h1_only:
            cmd.append("--h1-only")
        self.errf = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the server)
        env = dict(os.environ, PYTHONPATH=C.TEST)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf, env=env,
                                     cwd=C.REPO, start_new_session=True)
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise RuntimeError("h2server did not start (pip install -e '.[test]' installs h2 and trustme)")
        self.port = int(line[1])
        self.base = "https://127.0.0.1:%d/" % self.port
        self._ctx = ssl.create_default_context(cafile=self.ca)

    def control(self, path: str) -> dict:
        """GET /_stats or /_reset: the server's counters (its own connection left out)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self._ctx, timeout=10)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def cpu(self) -> float:
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return float("nan")

    def stop(self) -> str:
        C.terminate(self.proc)
        try:
            os.unlink(self.ca)
        except OSError:
            pass
        self.errf.seek(0)
        return self.errf.read().decode(errors="replace")


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--scenario", default="a", help="a, b or all (comma list ok; default a)")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--latency", type=float, default=0.04)
    ap.add_argument("--conns", type=int, default=4, help="per-host limit (default 4)")
    ap.add_argument("--only", help="comma list of tools: " + ",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--pick", choices=("median", "best"), default="median")
    ap.add_argument("--json", help="write every figure to this file")
    C.add_driver_args(ap)
    a = ap.parse_args()
    C.set_driver_python(a.driver_python)
    a.scenarios = ["a", "b"] if a.scenario == "all" else a.scenario.split(",")
    a.only = a.only.split(",") if a.only else list(TOOLS)
    for t in a.only:
        if t not in TOOLS:
            ap.error("unknown tool %r (have %s)" % (t, ", ".join(TOOLS)))
    return a


def run_scenario(a, name, h1_only, out):
    files = C.Files(a.files, a.size, C.gen_function("test"))
    srv = H2Server(a.latency, h1_only=h1_only)
    label = "http/1.1 only" if h1_only else "HTTP/2"
    C.log("scenario %s: %d x %d B over HTTPS (%s), latency %.3fs, %d per host, server %s"
          % (name, files.count, files.size, label, a.latency, a.conns, srv.base))
    rows = []
    try:
        # one unmeasured pass: the server generates each file's bytes once, then keeps them
        w = T.curl(False)(files, [srv.base], 100, 100, {"tool": "warm-up", "ca": srv.ca})
        C.log("warm-up (curl-100) %.2fs %s" % (w["wall"], w["status"]))
        for tool in a.only:
            runs = []
            for rep in range(a.repeat):
                C.log("  %s run %d/%d ..." % (tool, rep + 1, a.repeat))
                srv.control("/_reset")
                c0 = srv.cpu()
                r = TOOLS[tool](files, [srv.base], a.conns, {"tool": tool, "ca": srv.ca})
                if r["status"] == "skipped":
                    runs = [r]
                    break
                r["server"] = srv.control("/_stats")
                r["server"].pop("per_connection", None)
                r["server_cpu"] = srv.cpu() - c0
                C.log("    wall %.3fs cpu %.3fs %s, %d connections, <= %d streams each%s" % (
                    r["wall"], r["cpu"], r["status"], r["server"]["connections"],
                    r["server"]["max_streams"], (": " + "; ".join(r["problems"][:2])) if r["problems"] else ""))
                runs.append(r)
            rows.append(runs[0] if runs[0]["status"] == "skipped" else C.summarize(runs, a.pick))
    finally:
        srv.stop()
    streams = 1 if h1_only else STREAMS
    ideal = files.count * a.latency / (a.conns * streams)
    ref = next((r for r in rows if r["tool"] == "curl-100" and r["status"] == "ok"), None)
    note = ("ideal = files x latency / (%d connections x %d streams).\n" % (a.conns, streams)
            + "connections, streams: TCP connections the server accepted, most requests at once on one;"
            " server CPU per request.")
    for r in rows:
        if r["status"] == "skipped":
            continue
        s = r.get("server") or {}
        note += "\n  %-9s %3s connections, <= %3s streams each, %s; server %.0f us/request" % (
            r["tool"], s.get("connections", "-"), s.get("max_streams", "-"),
            ", ".join("%s %d" % kv for kv in sorted(s.get("protocols", {}).items())) or "-",
            1e6 * r.get("server_cpu", float("nan")) / files.count)
        if ref is not None and r["status"] == "ok":
            note += "; x curl-100 %.2f" % (r["wall"] / ref["wall"])
    C.table("Scenario %s: %d files x %d B over HTTPS, %s server, %.0f ms latency, %d per host (%s of %d runs)"
            % (name, files.count, files.size, label, a.latency * 1000, a.conns, a.pick, a.repeat),
            rows, files.count, ideal=ideal, note=note)
    out[name] = {"files": files.count, "size": files.size, "latency": a.latency, "conns": a.conns,
                 "h1_only": h1_only, "ideal": ideal, "rows": rows}


def main():
    a = parse()
    out = {"argv": sys.argv, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "curl": subprocess.run(["curl", "--version"], capture_output=True,
                                              text=True).stdout.split("\n")[0]
                       if shutil.which("curl") else None,
                       "load": os.getloadavg()},
           "repeat": a.repeat, "pick": a.pick}
    C.precompile()
    if "a" in a.scenarios:
        run_scenario(a, "a", False, out)
    if "b" in a.scenarios:
        run_scenario(a, "b", True, out)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()
