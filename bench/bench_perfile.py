#!/usr/bin/env python3
"""Per-file cost in instructions: what one more queued file costs a batch.

Wall and CPU times on a shared 2-core VM move by 10-20 % from run to run;
instruction counts (valgrind's callgrind) do not.  Each checkout's batch runs
twice under callgrind, with N1 and N2 files of 4 KB from a local nginx (as
bench_batch.py scenario b), and the difference divided by N2 - N1 is the cost
of one file: start-up, imports and exit cancel out.  The kernel's work
(system calls) is not counted: CPU ms/file in bench_batch.py scenario b has it.

    python3 bench/bench_perfile.py                       # this checkout
    python3 bench/bench_perfile.py --compare /tmp/old    # and another (before/after)
    python3 bench/bench_perfile.py --floor               # and a bare pycurl loop
    python3 bench/bench_perfile.py --curl                # and curl --parallel itself

Needs valgrind (Debian: apt-get install valgrind) and nginx.  About 1 minute
per checkout with the defaults.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)

# One batch as a bench driver queues it (async_=(base, 8), a failfunc), then exit.
CLIENT = r"""
import os, sys, tempfile, shutil
repo, base, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, repo)
import urlgrabber
from urlgrabber.grabber import URLGrabber
d = tempfile.mkdtemp(dir=sys.argv[4])
g = URLGrabber(retry=3)
def failfunc(obj):
    pass
urlgrabber.parallel_begin(max_connections=8)
for i in range(n):
    g.urlgrab(base + "gen/4096/f%05d.bin" % i, os.path.join(d, "f%05d.bin" % i),
              async_=(base, 8), failfunc=failfunc)
results = urlgrabber.parallel_end()
assert len(results) == n and all(r.ok for r in results)
shutil.rmtree(d)
"""

# The floor: one CurlMulti on epoll driven through its socket callback, a hidden
# temporary file per download with the server's mtime, renamed over the
# destination; nothing else (no options, states, retries or results).
FLOOR = r"""
import os, select, sys, tempfile, shutil, time
import pycurl
base, n = sys.argv[2], int(sys.argv[3])
d = tempfile.mkdtemp(dir=sys.argv[4])
m = pycurl.CurlMulti()
ep = select.epoll()
watched = {}
def on_socket(what, fd, multi, data):
    if what == pycurl.POLL_REMOVE:
        if fd in watched:
            watched[fd] = 0
        return
    ev = (select.POLLIN if what & pycurl.POLL_IN else 0) | (select.POLLOUT if what & pycurl.POLL_OUT else 0)
    old = watched.get(fd)
    if old == ev:
        return
    try:
        ep.modify(fd, ev) if old is not None else ep.register(fd, ev)
    except OSError:
        ep.register(fd, ev)
    watched[fd] = ev
m.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
free = [pycurl.Curl() for _ in range(8)]
queue = [(base + "gen/4096/f%05d.bin" % i, os.path.join(d, "f%05d.bin" % i)) for i in range(n)][::-1]
running = {}
def start():
    while queue and free:
        url, dest = queue.pop()
        c = free.pop()
        tmp = dest + ".part"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.OPT_FILETIME, 1)
        c.setopt(pycurl.WRITEFUNCTION, lambda data, fd=fd: os.write(fd, data))
        running[c] = (fd, tmp, dest)
        m.add_handle(c)
    m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
start()
while running or queue:
    ms = m.timeout()
    for fd, mask in ep.poll(1.0 if ms < 0 else ms / 1000.0):
        flags = pycurl.CSELECT_IN if mask & (select.POLLIN | select.POLLHUP | select.POLLERR) else 0
        m.socket_action(fd, flags | (pycurl.CSELECT_OUT if mask & select.POLLOUT else 0))
    m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
    while True:
        left, ok, err = m.info_read()
        for c in ok + [e[0] for e in err]:
            m.remove_handle(c)
            fd, tmp, dest = running.pop(c)
            mtime = c.getinfo(pycurl.INFO_FILETIME)
            os.access(dest, os.F_OK)
            if mtime > 0:
                os.utime(fd, (mtime, mtime))
            os.close(fd)
            os.replace(tmp, dest)
            free.append(c)
        if not left:
            break
    if queue and free:
        start()
shutil.rmtree(d)
"""


def instructions(python: str, code: str, repo: str, base: str, n: int, out_dir: str) -> int:
    """Instructions callgrind counts for one run of ``code`` with ``n`` files."""
    return _callgrind([python, "-c", code, repo, base, str(n), out_dir], out_dir)


def curl_instructions(base: str, n: int, out_dir: str) -> int:
    """Instructions callgrind counts for ``curl --parallel`` (8 at a time) fetching ``n`` files."""
    cfg = os.path.join(out_dir, "curl.cfg")
    names = ["f%05d.bin" % i for i in range(n)]
    C.curl_config([base + "gen/4096/" + x for x in names], [os.path.join(out_dir, x) for x in names], cfg)
    try:
        return _callgrind(["curl", "-s", "--parallel", "--parallel-max", "8", "--parallel-immediate", "-K", cfg],
                          out_dir)
    finally:
        for x in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(out_dir, x))


def _callgrind(cmd: list[str], out_dir: str) -> int:
    out = os.path.join(out_dir, "callgrind.out")
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
        capture_output=True, text=True, env=C.clean_env(), timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed ({proc.returncode}): {C.short(proc.stderr)}")
    m = re.search(r"Collected : (\d+)", proc.stderr)
    if not m:
        raise RuntimeError(f"no instruction count in valgrind's output: {C.short(proc.stderr)}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", default="500,2500", help="N1,N2 (default 500,2500)")
    ap.add_argument("--compare", action="append", default=[], help="another checkout to measure too")
    ap.add_argument("--floor", action="store_true", help="also a bare pycurl loop")
    ap.add_argument("--curl", action="store_true", help="also curl --parallel --parallel-immediate (8 at a time)")
    ap.add_argument("--python", default=sys.executable, help="interpreter (default: this one)")
    args = ap.parse_args()
    n1, n2 = (int(x) for x in args.files.split(","))
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    gen = C.gen_function("bench")
    files = C.Files(n2, 4096, gen)
    server = C.Nginx([files], gen)
    rows = [("urlgrabber", CLIENT, os.path.abspath(r)) for r in [REPO, *args.compare]]
    if args.floor:
        rows.append(("bare pycurl loop", FLOOR, REPO))
    try:
        for _name, code, repo in rows:
            if code is CLIENT:  # (no run pays for compiling; forced, as C.precompile says why)
                compileall.compile_dir(os.path.join(repo, "urlgrabber"), quiet=1, force=True)
        print(f"Per-file instructions (callgrind), {n1} and {n2} files x 4 KB, local nginx, 8 connections; "
              f"{args.python}")
        for name, code, repo in rows:
            with tempfile.TemporaryDirectory(dir=C.SHM, prefix="ugbench-perfile-") as out_dir:
                a = instructions(args.python, code, repo, server.base, n1, out_dir)
                b = instructions(args.python, code, repo, server.base, n2, out_dir)
            label = name if code is FLOOR else f"{name} at {repo}"
            print(f"    {(b - a) / (n2 - n1):>10,.0f}  {label}")
        if args.curl:
            with tempfile.TemporaryDirectory(dir=C.SHM, prefix="ugbench-perfile-") as out_dir:
                a = curl_instructions(server.base, n1, out_dir)
                b = curl_instructions(server.base, n2, out_dir)
            version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[:2]
            print(f"    {(b - a) / (n2 - n1):>10,.0f}  {' '.join(version)} --parallel-immediate (its libcurl's own)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
