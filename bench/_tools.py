"""How each tool downloads a job's files; one function per tool.

Every runner takes (files, bases, conns, per_key, opts) and returns a row for
_common.table().  ``bases`` lists one server base URL, or several mirrors.
"""

from __future__ import annotations

import os
import shutil
import sys

import _common as C

TIMEOUT = 600.0


def _job(files, bases, destdir, conns, per_key, opts, mode):
    job = files.job(bases, destdir)  # (C.run_driver drops what the driver will not read)
    job.update(mode=mode, conns=conns, per_key=per_key,
               retry=opts.get("retry", 3), check=opts.get("check", False),
               timeout=opts.get("timeout", 30))
    if opts.get("ca"):
        job["ca"] = opts["ca"]  # HTTPS: the CA that signed the test server's certificate
    if opts.get("segments"):
        job["segments"] = opts["segments"]
    return job


def _driver_row(tool, python, script, mode, files, bases, conns, per_key, opts, env=None):
    d = C.fresh_dir(tool)
    r = C.run_driver(python, script, _job(files, bases, d, conns, per_key, opts, mode),
                     env=env, timeout=opts.get("tool_timeout", TIMEOUT))
    if r["driver"] is None:
        shutil.rmtree(d, ignore_errors=True)
        return {"tool": tool, "wall": r["wall"], "cpu": r["user"] + r["sys"], "ok": 0,
                "status": "fail",
                "problems": ["driver crashed (rc %s): %s" % (r["rc"], r["err"][-600:].strip())]}
    return C.finish_run(tool, r, files, d)


def ug(mode):
    def run(files, bases, conns, per_key, opts):
        return _driver_row(opts["tool"], sys.executable, "_ug_driver.py", mode,
                           files, bases, conns, per_key, opts)
    return run


def classic(mode):
    def run(files, bases, conns, per_key, opts):
        py = C.classic_python(setup=opts.get("setup", True))
        if py is None:
            return skipped(opts["tool"], "no urlgrabber 4.1.0 venv")
        return _driver_row(opts["tool"], py, "_classic_driver.py", mode, files, bases,
                           conns, per_key, opts, env=C.classic_env())
    return run


def librepo(mode):
    def run(files, bases, conns, per_key, opts):
        if not C.librepo_available():
            return skipped(opts["tool"], "python3-librepo not installed")
        return _driver_row(opts["tool"], C.SYSTEM_PYTHON, "_librepo_driver.py", mode,
                           files, bases, conns, per_key, opts)
    return run


def curl(immediate=False):
    def run(files, bases, conns, per_key, opts):
        exe = shutil.which("curl")
        if not exe:
            return skipped(opts["tool"], "curl not installed")
        d = C.fresh_dir(opts["tool"])
        cfg = os.path.join(d, ".curl.cfg")
        # several bases: round-robin, no failover (curl has no mirrors)
        urls = [bases[i % len(bases)] + r for i, r in enumerate(files.rel)]
        C.curl_config(urls, [os.path.join(d, n) for n in files.names], cfg)
        cmd = [exe, "--parallel", "--parallel-max", str(conns), "-sS", "--fail",
               "-K", cfg]
        if opts.get("ca"):
            cmd += ["--cacert", opts["ca"]]
        if immediate:
            cmd.insert(2, "--parallel-immediate")
        r = C.run_measured(cmd, env=C.clean_env(), timeout=opts.get("tool_timeout", TIMEOUT))
        os.unlink(cfg)
        return C.finish_run(opts["tool"], r, files, d)
    return run


def aria2(files, bases, conns, per_key, opts):
    exe = shutil.which("aria2c")
    if not exe:
        return skipped(opts["tool"], "aria2c not installed (apt-get install aria2)")
    d = C.fresh_dir(opts["tool"])
    inp = os.path.join(C.SHM, os.path.basename(d) + ".aria2-input")
    dests = [os.path.join(d, n) for n in files.names]
    if len(bases) == 1:
        lists = [[bases[0] + r] for r in files.rel]
    else:
        # every mirror on the line, rotated so the first choice is spread
        lists = [[bases[(i + k) % len(bases)] + r for k in range(len(bases))]
                 for i, r in enumerate(files.rel)]
    C.aria2_input(lists, dests, inp, files.sha if opts.get("check") else None)
    cmd = [exe, "-i", inp, "-j", str(conns), "-x1", "-s1",
           "--max-tries=%d" % (opts.get("retry", 3) + 1), "--retry-wait=0",
           "--timeout=%d" % opts.get("timeout", 30), *C.ARIA2_FLAGS]
    if opts.get("ca"):
        cmd.append("--ca-certificate=%s" % opts["ca"])
    r = C.run_measured(cmd, env=C.clean_env(), timeout=opts.get("tool_timeout", TIMEOUT))
    os.unlink(inp)
    return C.finish_run(opts["tool"], r, files, d)


def skipped(tool, why):
    return {"tool": tool, "status": "skipped", "why": why, "wall": None, "cpu": None}
