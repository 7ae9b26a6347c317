#!/usr/bin/env python3
"""Soak: many files through three faulty mirrors in one MirrorGroup batch.

Three bench/_latency_server.py processes on 127.0.0.1 (5 ms latency each)
inject faults per response from seeded generators (seed, seed+1, seed+2):
5 % HTTP 500, 2 % truncated bodies, 1 % corrupted bodies (one byte flipped,
right length: only the checksum notices) and 1 % stalls (half the body, then
nothing for 10 s, then the connection is dropped; the client's timeout is 2 s).

The client runs in this process, on this repository's urlgrabber:

    g  = URLGrabber(retry=5, timeout=2, checkfunc=<sha256, URLGrabError(-1) on mismatch>,
                    failure_callback=<count failed attempts>)
    mg = MirrorGroup(g, [{'mirror': m, 'kwargs': {'max_connections': 4}} for m in m1, m2, m3],
                     failure_callback=<count failovers>)
    urlgrabber.parallel_begin(max_connections=12)
    mg.urlgrab(rel, dest, async_=True, failfunc=<collect>)    # every file
    urlgrabber.parallel_end()

Destinations are on /dev/shm and removed at the end.  Afterwards every
destination is read back (size and sha256); the exit status is 0 only when no
file is missing and none is wrong.  --batches K splits the files into K
batches in the same process (same grabber and group) and prints RSS and open
fds after each one, to show they stay flat.  See bench/README.md ("soak.py").

    python3 bench/soak.py                       # 20 000 files, about a minute or two
    python3 bench/soak.py --files 2000 --batches 4
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import gc
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)     # this repository's urlgrabber, as bench/_ug_driver.py does
sys.path.insert(1, BENCH)

import pycurl  # noqa: E402
from _common import terminate  # noqa: E402
from _latency_server import _BLOCK, _block  # noqa: E402

import urlgrabber  # noqa: E402
from urlgrabber.grabber import URLGrabber, URLGrabError  # noqa: E402
from urlgrabber.mirror import MirrorGroup  # noqa: E402

SHM = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
SERVER = os.path.join(BENCH, "_latency_server.py")
ERRNO_NAMES = {12: "timeout", 14: "http/transfer", -1: "checksum", 256: "no more mirrors"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# process figures
# --------------------------------------------------------------------------

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def open_fds():
    """(count, Counter of kinds) of this process's open file descriptors."""
    kinds = collections.Counter()
    d = "/proc/self/fd"
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
        except OSError:       # the directory listing's own fd, already closed
            continue
        if target.startswith("socket:"):
            kinds["socket"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("anon_inode:"):
            kinds[target.split(":", 1)[1].strip("[]")] += 1
        elif target.startswith("/dev/pts") or target.startswith("/dev/tty") or target == "/dev/null":
            kinds["tty/null"] += 1
        else:
            kinds["file"] += 1
    return sum(kinds.values()), kinds


def fds_text(fds):
    n, kinds = fds
    return "%d (%s)" % (n, ", ".join("%s %d" % kv for kv in sorted(kinds.items())))


def cpu_self():
    t = os.times()
    return t.user + t.system


def proc_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def mb(kb):
    return kb / 1024.0


# --------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------

class Mirror:
    """One bench/_latency_server.py with the fault knobs of the soak."""

    def __init__(self, a, seed):
        cmd = [sys.executable, SERVER, "--port", "0", "--latency", str(a.latency),
               "--seed", str(seed)]
        for flag, value in (("--error-rate", a.error_rate), ("--truncate-rate", a.truncate_rate),
                            ("--corrupt-rate", a.corrupt_rate), ("--stall-rate", a.stall_rate)):
            if value:
                cmd += [flag, str(value)]
        if a.stall_rate:
            cmd += ["--stall-seconds", str(a.stall_seconds)]
        self.cmd = cmd
        self.errf = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the server)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf,
                                     stdin=subprocess.DEVNULL, cwd=BENCH,
                                     start_new_session=True)
        line = self.proc.stdout.readline().decode().split()
        self.proc.stdout.close()          # one fd less in the client's count
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise RuntimeError("server %s did not say PORT: %r" % (cmd, line))
        self.port = int(line[1])
        self.base = "http://127.0.0.1:%d/" % self.port
        self.stats = {}
        self.cpu = None

    def stop(self):
        """Stop the server; parse its STATS line into self.stats."""
        if self.proc.poll() is None:
            self.cpu = proc_cpu(self.proc.pid)
        terminate(self.proc)
        if self.errf.closed:
            return self.stats
        self.errf.seek(0)
        text = self.errf.read().decode(errors="replace")
        self.errf.close()
        for line in text.splitlines():
            if line.startswith("STATS "):
                self.stats = {k: int(v) for v, k in re.findall(r"(\d+) (\w+)", line)}
                self.stats_line = line
        if not self.stats:
            self.stats_line = "no STATS line: %s" % text.strip()[-300:]
        return self.stats


# --------------------------------------------------------------------------
# the files
# --------------------------------------------------------------------------

def expected_sha(size, name):
    """sha256 of /gen/<size>/<name> without filling the server module's block cache
    (it would count in this process's RSS)."""
    h = hashlib.sha256()
    for i in range((size + _BLOCK - 1) // _BLOCK):
        h.update(_block.__wrapped__(size, name, i))
    return h.hexdigest()


class Counters:
    """What the callbacks saw (the engine calls them from this thread)."""

    def __init__(self, ports):
        self.port_index = {p: i for i, p in enumerate(ports)}
        n = len(ports)
        self.failed_attempts = [collections.Counter() for _ in range(n + 1)]  # by errno
        self.left = [0] * (n + 1)           # MirrorGroup failure_callback, per mirror
        self.delivered = [0] * (n + 1)      # checkfunc accepted, per mirror
        self.rejected = [0] * (n + 1)       # checkfunc rejected, per mirror
        self.final = []                      # failfunc: (rel, error)
        self.final_dest = []                 # failfunc: the destination, as cnt.final
        self.per_file = collections.Counter()  # failed attempts per destination
        self.history = collections.defaultdict(list)  # destination: its failed attempts
        self.done = 0                        # files delivered or given up (progress)

    def mirror_of(self, url):
        if isinstance(url, bytes):
            url = url.decode("utf-8", "replace")
        try:
            port = urllib.parse.urlsplit(url or "").port
        except ValueError:
            port = None
        return self.port_index.get(port, len(self.port_index))   # last slot: unknown


def make_client(a, mirrors, want, cnt):
    size = a.size

    def checkfunc(obj):
        fn = obj.filename
        if isinstance(fn, bytes):
            fn = fn.decode()
        with open(fn, "rb") as f:
            data = f.read()
        url = obj.url.decode() if isinstance(obj.url, bytes) else obj.url
        name = url.rstrip("/").rsplit("/", 1)[-1]
        m = cnt.mirror_of(url)
        if len(data) != size or hashlib.sha256(data).hexdigest() != want.get(name):
            cnt.rejected[m] += 1
            raise URLGrabError(-1, "sha256 mismatch: %s (%d bytes)" % (name, len(data)))
        cnt.delivered[m] += 1
        cnt.done += 1

    def attempt_failed(obj):            # the grabber's: after every failed attempt
        err = obj.exception
        cnt.failed_attempts[cnt.mirror_of(getattr(obj, "url", None))][
            getattr(err, "errno", None)] += 1
        cnt.per_file[getattr(obj, "filename", None)] += 1
        cnt.history[getattr(obj, "filename", None)].append(
            "m%d %s" % (cnt.mirror_of(getattr(obj, "url", None)) + 1, err))

    def left_mirror(obj):               # the group's: the next attempt goes elsewhere (or none)
        cnt.left[cnt.mirror_of(getattr(obj, "mirror", None))] += 1

    def failfunc(obj):
        cnt.final.append((obj.url, str(obj.exception)))
        cnt.final_dest.append(getattr(obj, "filename", None))
        cnt.done += 1

    g = URLGrabber(retry=a.retry, timeout=a.timeout, checkfunc=checkfunc,
                   failure_callback=attempt_failed)
    mg = MirrorGroup(g, [{"mirror": m.base, "kwargs": {"max_connections": a.conns}}
                         for m in mirrors], failure_callback=left_mirror)
    return mg, failfunc


class Deadline(BaseException):
    """--deadline passed: the run is stuck (a traceback was dumped)."""


def _alarm(signum, frame):
    faulthandler.dump_traceback(file=sys.stderr)
    raise Deadline()


def progress(cnt, total, stop, t0):
    while not stop.wait(10.0):
        log("  %6.1fs  %d/%d files done, %d failed attempts, %d given up"
            % (time.perf_counter() - t0, cnt.done, total,
               sum(sum(c.values()) for c in cnt.failed_attempts), len(cnt.final)))


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

def parse():
    doc = __doc__.split("\n\n")
    ap = argparse.ArgumentParser(description=doc[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(doc[1:]))
    ap.add_argument("--files", type=int, default=20000, help="files (20000)")
    ap.add_argument("--size", type=int, default=32768, help="bytes per file (32768)")
    ap.add_argument("--batches", type=int, default=1,
                    help="split the files into K batches, one after the other (1)")
    ap.add_argument("--latency", type=float, default=0.005, help="server latency s (0.005)")
    ap.add_argument("--conns", type=int, default=4, help="max_connections per mirror (4)")
    ap.add_argument("--max-connections", type=int, default=12,
                    help="parallel_begin(max_connections=) (12)")
    ap.add_argument("--retry", type=int, default=5, help="grabber retry (5)")
    ap.add_argument("--timeout", type=float, default=2.0, help="grabber timeout s (2)")
    ap.add_argument("--error-rate", type=float, default=0.05, help="HTTP 500 share (0.05)")
    ap.add_argument("--truncate-rate", type=float, default=0.02,
                    help="truncated-body share (0.02)")
    ap.add_argument("--corrupt-rate", type=float, default=0.01,
                    help="one-byte-flipped body share (0.01)")
    ap.add_argument("--stall-rate", type=float, default=0.01, help="stalled-body share (0.01)")
    ap.add_argument("--stall-seconds", type=float, default=10.0,
                    help="how long a stalled body stops before the server drops it (10)")
    ap.add_argument("--seed", type=int, default=1,
                    help="fault seed of the first mirror; the others get seed+1, seed+2 (1)")
    ap.add_argument("--deadline", type=float, default=1800.0,
                    help="give up (traceback on stderr, exit 3) after this many s (1800; 0: none)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--json", help="also write every figure to this file")
    a = ap.parse_args()
    if a.files < 1 or a.batches < 1 or a.batches > a.files:
        ap.error("need 1 <= --batches <= --files")
    return a


def verify(names, dests, want, size, destdir):
    """(ok, missing, wrong, stray files in destdir)."""
    ok, missing, wrong = 0, [], []
    for name, dest in zip(names, dests):
        try:
            with open(dest, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            missing.append(name)
            continue
        if len(data) != size or hashlib.sha256(data).hexdigest() != want[name]:
            wrong.append("%s (%d bytes)" % (name, len(data)))
        else:
            ok += 1
    stray = sorted(set(os.listdir(destdir)) - set(names))
    return ok, missing, wrong, stray


def main():
    a = parse()
    when = time.strftime("%Y-%m-%d %H:%M")
    names = ["s%06d.bin" % i for i in range(a.files)]
    rels = ["gen/%d/%s" % (a.size, n) for n in names]
    log("soak: computing the sha256 of %d files ..." % a.files)
    want = {n: expected_sha(a.size, n) for n in names}
    destdir = tempfile.mkdtemp(prefix="ugsoak-", dir=SHM)
    dests = [os.path.join(destdir, n) for n in names]
    mirrors = []
    batches = []
    t_all = None
    code = 1
    try:
        for i in range(3):
            mirrors.append(Mirror(a, a.seed + i))
        cnt = Counters([m.port for m in mirrors])
        mg, failfunc = make_client(a, mirrors, want, cnt)
        log("soak: %d files x %d B via %s -> %s" % (a.files, a.size,
                                                    " ".join(m.base for m in mirrors), destdir))
        gc.collect()
        rss0, hwm_start, fds0 = status_kb("VmRSS:"), status_kb("VmHWM:"), open_fds()
        peak_reset = reset_peak()
        cpu0 = cpu_self()
        if a.deadline:
            signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(int(a.deadline))
        stop = threading.Event()
        t_all = time.perf_counter()
        if not a.quiet:
            threading.Thread(target=progress, args=(cnt, a.files, stop, t_all),
                             daemon=True).start()
        bounds = [a.files * k // a.batches for k in range(a.batches + 1)]
        try:
            for k in range(a.batches):
                lo, hi = bounds[k], bounds[k + 1]
                t0 = time.perf_counter()
                final0 = len(cnt.final)
                urlgrabber.parallel_begin(max_connections=a.max_connections)
                for i in range(lo, hi):
                    mg.urlgrab(rels[i], dests[i], async_=True, failfunc=failfunc)
                results = urlgrabber.parallel_end()
                wall = time.perf_counter() - t0
                failed_results = sum(1 for r in results if not r.ok)
                del results
                gc.collect()
                batches.append({"batch": k + 1, "files": hi - lo, "wall": wall,
                                "given_up": len(cnt.final) - final0,
                                "failed_results": failed_results,
                                "rss_kb": status_kb("VmRSS:"), "hwm_kb": status_kb("VmHWM:"),
                                "fds": open_fds()})
        finally:
            signal.alarm(0)
            stop.set()
        t_end = time.perf_counter()
        wall = t_end - t_all
        cpu = cpu_self() - cpu0
        rss1, hwm1, fds1 = status_kb("VmRSS:"), status_kb("VmHWM:"), open_fds()
        log("soak: verifying %d files ..." % a.files)
        ok, missing, wrong, stray = verify(names, dests, want, a.size, destdir)
        for m in mirrors:
            m.stop()
        code = 0 if not missing and not wrong else 1
        report(a, when, mirrors, cnt, batches, wall, cpu, rss0, hwm_start, rss1, hwm1,
               peak_reset, fds0, fds1, ok, missing, wrong, stray, code)
    except Deadline:
        log("soak: --deadline %ss passed; gave up (traceback above)" % a.deadline)
        code = 3
    except KeyboardInterrupt:
        log("soak: interrupted")
        code = 130
    finally:
        for m in mirrors:
            m.stop()
        shutil.rmtree(destdir, ignore_errors=True)
    return code


def pct(n, d):
    return 100.0 * n / d if d else 0.0


def report(a, when, mirrors, cnt, batches, wall, cpu, rss0, hwm_start, rss1, hwm1,
           peak_reset, fds0, fds1, ok, missing, wrong, stray, code):
    n = a.files
    lost = len(missing)
    attempts_failed = sum(sum(c.values()) for c in cnt.failed_attempts)
    given_up = len(cnt.final)
    left = sum(cnt.left)
    requests = sum(m.stats.get("requests", 0) for m in mirrors)
    fault_keys = ("errors", "truncated", "corrupted", "stalled")
    faults = {k: sum(m.stats.get(k, 0) for m in mirrors) for k in fault_keys}
    failovers = left - given_up
    by_errno = collections.Counter()
    for c in cnt.failed_attempts:
        by_errno.update(c)
    server_cpu = sum(m.cpu for m in mirrors if m.cpu is not None)

    out = []
    p = out.append
    p("")
    p("Soak: %d files x %d B, %d batch%s, 3 mirrors (%.0f ms latency, %d connections each, "
      "%d in all)  [%s]" % (n, a.size, a.batches, "" if a.batches == 1 else "es",
                            a.latency * 1000, a.conns, a.max_connections, when))
    p("faults per response: %.0f%% HTTP 500, %.0f%% truncated, %.0f%% corrupted, "
      "%.0f%% stalled %gs (seeds %d-%d); retry=%d, timeout=%gs, sha256 checkfunc"
      % (a.error_rate * 100, a.truncate_rate * 100, a.corrupt_rate * 100, a.stall_rate * 100,
         a.stall_seconds, a.seed, a.seed + 2, a.retry, a.timeout))
    p("urlgrabber %s, %s, Python %s" % (urlgrabber.__version__, pycurl.version.split()[1],
                                        sys.version.split()[0]))
    rows = [
        ("wall s", "%.1f  (%.0f files/s)" % (wall, n / wall if wall else 0)),
        ("CPU s", "%.1f client, %.1f servers" % (cpu, server_cpu)),
        ("files ok", "%d/%d" % (ok, n)),
        ("lost (missing)", "%d" % lost),
        ("wrong (bad size/sha256)", "%d" % len(wrong)),
        ("given up (failfunc)", "%d" % given_up),
        ("stray files in dest dir", "%d" % len(stray)),
        ("failed attempts", "%d  (%s)" % (attempts_failed, ", ".join(
            "%s %d" % (ERRNO_NAMES.get(e, "errno %s" % e), c)
            for e, c in sorted(by_errno.items(), key=lambda kv: -kv[1])) or "-")),
        ("retries", "%d  (attempts beyond one per file: failed attempts - given up)"
         % (attempts_failed - given_up)),
        ("failovers", "%d  (next attempt on another mirror)" % failovers),
        ("files by failed attempts", "  ".join("%s: %d" % kv for kv in spread(cnt.per_file, n))),
        ("server requests", "%d  (%+d vs files)" % (requests, requests - n)),
        ("slow-tail races", "%d  (inferred: requests - files delivered - failed attempts)"
         % (requests - (n - given_up) - attempts_failed)),
        ("server faults", "%d 500, %d truncated, %d corrupted, %d stalled  (%.1f%% of requests)"
         % (faults["errors"], faults["truncated"], faults["corrupted"], faults["stalled"],
            pct(sum(faults.values()), requests))),
        ("RSS MB before/after", "%.1f / %.1f" % (mb(rss0), mb(rss1))),
        ("peak RSS MB (VmHWM)", "%.1f%s" % (mb(hwm1), "" if peak_reset else
                                            " (since start: VmHWM could not be reset)")),
        ("open fds before/after", "%s / %s" % (fds_text(fds0), fds_text(fds1))),
        ("exit status", "%d" % code),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        p("  %-*s  %s" % (w, k, v))

    # per mirror
    p("")
    head = ("mirror", "requests", "500", "trunc", "corrupt", "stall", "failed att.",
            "of which timeout/http/sha", "left it", "delivered")
    lines = []
    for i, m in enumerate(mirrors):
        s, fa = m.stats, cnt.failed_attempts[i]
        lines.append(("m%d :%d" % (i + 1, m.port), s.get("requests", 0), s.get("errors", 0),
                      s.get("truncated", 0), s.get("corrupted", 0), s.get("stalled", 0),
                      sum(fa.values()), "%d/%d/%d" % (fa[12], fa[14], fa[-1]),
                      cnt.left[i], cnt.delivered[i]))
    unk = cnt.failed_attempts[-1]
    if sum(unk.values()) or cnt.left[-1] or cnt.delivered[-1]:
        lines.append(("(no mirror)", "-", "-", "-", "-", "-", sum(unk.values()),
                      "%d/%d/%d" % (unk[12], unk[14], unk[-1]), cnt.left[-1], cnt.delivered[-1]))
    table(p, head, lines)

    for (url, err), dest in list(zip(cnt.final, cnt.final_dest))[:5]:
        p("")                           # why a file was given up: its attempts, in order
        p("given up: %s: %s" % (url, err))
        for line in cnt.history.get(dest, ()):
            p("    attempt failed: %s" % line)

    if a.batches > 1:
        p("")
        head = ("batch", "files", "wall s", "given up", "RSS MB", "peak MB", "fds")
        lines = [(b["batch"], b["files"], "%.1f" % b["wall"], b["given_up"],
                  "%.1f" % mb(b["rss_kb"]), "%.1f" % mb(b["hwm_kb"]), b["fds"][0])
                 for b in batches]
        table(p, head, lines)
    p("")
    p("failed attempts: the grabber's failure_callback (every failed try); left it: the "
      "group's failure_callback")
    p("(a file moves to another mirror, or gives up); delivered: checkfunc accepted a body "
      "from that mirror.")
    for what, items in (("missing", missing), ("wrong", wrong), ("stray", stray)):
        if items:
            p("%s: %s%s" % (what, " ".join(items[:10]), " ..." if len(items) > 10 else ""))
    if cnt.final:
        reasons = collections.Counter(re.sub(r"\d+", "N", e)[:160] for _, e in cnt.final)
        p("given up, by error:")
        for e, c in reasons.most_common(6):
            p("  %5d  %s" % (c, e))
    print("\n".join(out), flush=True)

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"argv": sys.argv, "when": when, "files": n, "size": a.size,
                       "batches": batches, "wall": wall, "cpu": cpu, "server_cpu": server_cpu,
                       "ok": ok, "missing": missing, "wrong": wrong, "stray": stray,
                       "given_up": cnt.final, "failed_attempts": attempts_failed,
                       "by_errno": {str(k): v for k, v in by_errno.items()},
                       "failovers": failovers, "server_requests": requests,
                       "server_stats": [m.stats for m in mirrors],
                       "rss_before_kb": rss0, "rss_after_kb": rss1, "hwm_kb": hwm1,
                       "hwm_at_start_kb": hwm_start, "fds_before": fds0[0],
                       "fds_after": fds1[0], "exit": code}, f, indent=1, default=str)


def spread(per_file, n):
    """[(failed attempts, number of files)], 0 first; 3 and more in one bucket."""
    buckets = collections.Counter(min(c, 3) for c in per_file.values())
    buckets[0] = n - len(per_file)
    return [("3+" if k == 3 else str(k), buckets[k]) for k in range(4) if buckets[k] or k < 3]


def table(p, head, lines):
    cells = [[str(c) for c in row] for row in [head, *lines]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for j, r in enumerate(cells):
        p("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if j == 0:
            p("  " + "  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
