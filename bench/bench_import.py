#!/usr/bin/env python3
"""Start-up cost: what ``import urlgrabber.grabber, urlgrabber.mirror`` adds to a
fresh interpreter, beside ``import pycurl`` alone and ``import librepo``.  pycurl
itself loads with the first transfer; the ``urlgrabber+pycurl`` row loads it too:
what a process that downloads pays in all.

Every figure is a fresh process's wall time minus that of a bare ``-c pass`` on
the same interpreter, measured in pairs, one pair of every row per round, so
that drifting load hits every row alike.  Light: about 15 s with the defaults.

    python3 bench/bench_import.py                     # 30 rounds, both modes
    python3 bench/bench_import.py --runs 50 --mode site
    python3 bench/bench_import.py --compare /tmp/old  # also another checkout (before/after)
    python3 bench/bench_import.py --importtime        # also the slowest modules (-X importtime)

Modes: ``site`` runs ``python -c CODE`` as a user would; ``nosite`` runs
``python -S`` with the module's directory put on ``sys.path`` by the code, so
that modules which the interpreter's ``site`` (``.pth`` files) happens to import
anyway (``re``, ``typing``...) are counted too.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import os
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
SYSTEM_PYTHON = "/usr/bin/python3"
OURS = "import urlgrabber.grabber, urlgrabber.mirror"
# the same, with libcurl loaded as the first transfer loads it: what a process that
# downloads pays in all (pycurl is not loaded by the import itself)
OURS_LOADED = OURS + "; urlgrabber.grabber.pycurl"


def _env(repo: str) -> dict[str, str]:
    """No PYTHON* variables but a PYTHONPATH with checkout ``repo`` (and no .pyc writing)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = repo
    return env


def _module_dir(python: str, module: str) -> str | None:
    """The sys.path entry ``python`` imports ``module`` from, or None if it has none."""
    if not os.path.exists(python):
        return None
    code = ("import importlib.util as u, os; s = u.find_spec(%r); o = s.origin;"
            " print(os.path.dirname(os.path.dirname(o)) if s.submodule_search_locations"
            " else os.path.dirname(o))" % module)
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=_env(""), cwd="/")
    return proc.stdout.strip() if proc.returncode == 0 else None


class Case:
    """One row: a command line, measured against the bare interpreter of the same mode."""

    def __init__(self, name: str, python: str, locate: str, code: str, mode: str, repo: str = REPO) -> None:
        self.name, self.python, self.repo = name, python, repo
        self.env = _env(repo if "urlgrabber" in code else "")
        self.head = [python, "-S"] if mode == "nosite" else [python]
        self.code, self.bare_code = code, "pass"
        where = _module_dir(python, locate)  # where pycurl (or librepo) lives
        self.ok = where is not None
        if mode == "nosite" and where is not None:
            path = [repo, where] if "urlgrabber" in code else [where]
            self.code = "import sys; sys.path[:0] = %r; %s" % (path, code)
            self.bare_code = "import sys; sys.path[:0] = %r" % (path,)
        self.times: list[tuple[float, float]] = []  # (wall, CPU) of each run of the code
        self.bare: list[tuple[float, float]] = []   # the same for the bare interpreter

    def run(self, code: str, quiet: bool = False) -> tuple[float, float]:
        """Wall and CPU (user + system) seconds of one fresh interpreter running ``code``
        (CalledProcessError if it fails).  The working directory is the checkout: ``-c``
        puts it first on sys.path."""
        argv = [*self.head, "-c", code]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=self.env, cwd=self.repo, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, argv)
        return wall, usage.ru_utime + usage.ru_stime


def measure(cases: list[Case], runs: int) -> list[Case]:
    """Rounds of (bare, code) pairs for every case, after one unmeasured warm-up each;
    the cases that ran."""
    for c in cases:
        c.run(c.bare_code)
        try:
            c.run(c.code, quiet=True)
        except subprocess.CalledProcessError:
            c.ok = False
    ran = [c for c in cases if c.ok]
    for i in range(runs if ran else 0):
        for c in ran[i % len(ran):] + ran[:i % len(ran)]:
            c.bare.append(c.run(c.bare_code))
            c.times.append(c.run(c.code))
    return ran


def _ms(x: float) -> str:
    return "%.1f" % (x * 1000)


def report(mode: str, cases: list[Case], runs: int) -> None:
    print(f"\n## import cost, mode {mode}: {runs} rounds, {datetime.date.today().isoformat()}\n")
    print("| what | interpreter | bare median ms | median ms | min ms | + median ms | + min ms | + CPU median ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cases:
        name = c.name if c.repo == REPO or "urlgrabber" not in c.code else f"{c.name} ({c.repo})"
        if not c.ok:
            print(f"| {name} | {c.python} | - | - | - | - | - | skipped: does not import |")
            continue
        wall, bare = [t[0] for t in c.times], [t[0] for t in c.bare]
        bm, bn = statistics.median(bare), min(bare)
        m, n = statistics.median(wall), min(wall)
        cpu = statistics.median(t[1] for t in c.times) - statistics.median(t[1] for t in c.bare)
        print(f"| {name} | {c.python} | {_ms(bm)} | {_ms(m)} | {_ms(n)} | {_ms(m - bm)} | {_ms(n - bn)} "
              f"| {_ms(cpu)} |")


def importtime(python: str, top: int) -> None:
    """The ``top`` modules by cumulative time under ``-X importtime`` (one warm run)."""
    argv = [python, "-X", "importtime", "-c", OURS]
    subprocess.run(argv, env=_env(REPO), cwd=REPO, capture_output=True)
    err = subprocess.run(argv, env=_env(REPO), cwd=REPO, capture_output=True, text=True).stderr
    rows: list[tuple[int, int, str]] = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            if parts[2].strip() == "site":  # what came before is the interpreter's start-up
                rows = []
                continue
            rows.append((int(parts[1]), int(parts[0].split(":")[1]), parts[2].rstrip()))
    print(f"\n## -X importtime of `{OURS}`, {python}: top {top} by cumulative us\n")
    print("| cumulative us | self us | module |")
    print("| ---: | ---: | --- |")
    for cum, own, name in sorted(rows, reverse=True)[:top]:
        print(f"| {cum} | {own} | `{name}` |")


def _precompile(pythons: list[str], repos: list[str]) -> None:
    """Byte-compile the checkouts for every interpreter, so that no run pays for compiling."""
    for python in dict.fromkeys(pythons):
        for repo in repos:
            target = os.path.join(repo, "urlgrabber")
            if os.path.realpath(python) == os.path.realpath(sys.executable):
                compileall.compile_dir(target, quiet=1, force=True)  # (see _common.precompile)
            elif os.path.exists(python):
                subprocess.run([python, "-m", "compileall", "-q", "-f", target], env=_env(""),
                               stdout=subprocess.DEVNULL, check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="rounds (default 30)")
    ap.add_argument("--mode", choices=("site", "nosite", "both"), default="both")
    ap.add_argument("--python", default=sys.executable, help="interpreter for urlgrabber and pycurl")
    ap.add_argument("--system-python", default=SYSTEM_PYTHON,
                    help="interpreter for librepo and for second pycurl/urlgrabber rows (default %(default)s)")
    ap.add_argument("--compare", action="append", default=[], metavar="DIR",
                    help="also measure the urlgrabber of checkout DIR (a directory holding urlgrabber/)")
    ap.add_argument("--importtime", nargs="?", type=int, const=25, default=0, metavar="N",
                    help="also list the N slowest imports (default 25)")
    args = ap.parse_args(argv)
    repos = [REPO, *(os.path.abspath(d) for d in args.compare)]
    pythons = [args.python]
    if os.path.exists(args.system_python) and os.path.realpath(args.system_python) != os.path.realpath(args.python):
        pythons.append(args.system_python)
    _precompile(pythons, repos)
    for mode in ("site", "nosite") if args.mode == "both" else (args.mode,):
        cases = []
        for python in pythons:
            cases.append(Case("pycurl", python, "pycurl", "import pycurl", mode))
            cases += [Case("urlgrabber", python, "pycurl", OURS, mode, repo) for repo in repos]
            cases.append(Case("urlgrabber+pycurl", python, "pycurl", OURS_LOADED, mode))
        if os.path.exists(args.system_python):
            cases.append(Case("librepo", args.system_python, "librepo", "import librepo", mode))
        ran = measure(cases, args.runs)
        report(mode, ran + [c for c in cases if c not in ran], args.runs)
    if args.importtime:
        importtime(args.python, args.importtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
