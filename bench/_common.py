"""Shared machinery of the benchmark scripts (standard library only).

Servers (our latency server, test/server.py, nginx) run in subprocesses of
their own; every download tool also runs in a subprocess of its own, measured
with ``os.wait4`` (wall, user+sys CPU of it and its children, peak RSS).  The
Python drivers additionally time their download phase from inside, so the
figures of those rows do not include interpreter start-up and imports.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
TEST = os.path.join(REPO, "test")
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()

CLASSIC_VENV = os.environ.get("UG_CLASSIC_VENV", "/tmp/urlgrabber-4.1.0-venv")
CLASSIC_VERSION = "4.1.0"
SYSTEM_PYTHON = "/usr/bin/python3"
GNU_TIME = "/usr/bin/time"   # Debian's, where python3-librepo lives

sys.path.insert(0, BENCH)
from _latency_server import gen_bytes as _bench_gen  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# content and the list of files of a run
# --------------------------------------------------------------------------

def gen_function(kind: str):
    """gen_bytes of the server kind that will serve the files."""
    if kind == "test":
        sys.path.insert(0, TEST)
        from server import gen_bytes  # type: ignore
        return gen_bytes
    return _bench_gen


class Files:
    """The files of one run: relative path, size and sha256 of each."""

    def __init__(self, count: int, size: int, gen, prefix: str = "f", sizes=None):
        self.count, self.size = count, size
        self.sizes = list(sizes) if sizes is not None else [size] * count  # per file
        self.rel = ["gen/%d/%s%05d.bin" % (sz, prefix, i) for i, sz in enumerate(self.sizes)]
        self.names = ["%s%05d.bin" % (prefix, i) for i in range(count)]
        self.sha = []
        self._gen = gen
        for n, sz in zip(self.names, self.sizes):
            self.sha.append(hashlib.sha256(gen(sz, n)).hexdigest())

    def content(self, i):
        return self._gen(self.sizes[i], self.names[i])

    def job(self, bases, destdir):
        """Job description handed to the drivers (JSON)."""
        return {
            "bases": bases,
            "rel": self.rel,
            "dests": [os.path.join(destdir, n) for n in self.names],
            "size": self.size,
            "sizes": self.sizes,
            "sha256": self.sha,
        }

    def verify(self, destdir) -> tuple[int, list[str]]:
        """(number correct, list of problems) for the files in destdir."""
        ok, bad = 0, []
        for n, sha, size in zip(self.names, self.sha, self.sizes):
            p = os.path.join(destdir, n)
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError as e:
                bad.append("%s: missing (%s)" % (n, e.strerror))
                continue
            if len(data) != size:
                bad.append("%s: %d bytes, want %d" % (n, len(data), size))
            elif hashlib.sha256(data).hexdigest() != sha:
                bad.append("%s: wrong content" % n)
            else:
                ok += 1
        return ok, bad


# --------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------

def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class LatencyServer:
    """One HTTP server subprocess printing ``PORT <n>``."""

    def __init__(self, kind="bench", latency=0.04, bw=0, error_rate=0.0,
                 truncate_rate=0.0, seed=None, refuse=False, files=None):
        script = (os.path.join(TEST, "server.py") if kind == "test"
                  else os.path.join(BENCH, "_latency_server.py"))
        cmd = [sys.executable, script, "--port", "0", "--latency", str(latency)]
        if bw:
            cmd += ["--bw", str(bw)]
        if error_rate:
            cmd += ["--error-rate", str(error_rate)]
        if truncate_rate:
            cmd += ["--truncate-rate", str(truncate_rate)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if refuse:
            cmd += ["--refuse"]
        pregen = None
        if files is not None and kind == "bench":
            # every body generated before the first request: the first tool of a
            # run paid for generating them (~0.3 ms of the server's CPU per 32 KB)
            with tempfile.NamedTemporaryFile("w", suffix=".pregen", dir=SHM, delete=False) as f:
                for fs in (files if isinstance(files, (list, tuple)) else [files]):
                    f.writelines("%d %s\n" % (sz, n) for sz, n in zip(fs.sizes, fs.names))
                pregen = f.name
            cmd += ["--pregen", pregen]
        self.cmd = cmd
        self.errf = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the server)
        env = dict(os.environ)
        env["PYTHONPATH"] = TEST if kind == "test" else BENCH
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf,
                                         env=env, cwd=REPO, start_new_session=True)
            line = self.proc.stdout.readline().decode().split()
        finally:
            if pregen is not None:
                os.unlink(pregen)
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise RuntimeError("server %s did not say PORT: %r" % (cmd, line))
        self.port = int(line[1])
        self.base = "http://127.0.0.1:%d/" % self.port
        self._t0 = os.times()

    def cpu(self):
        """CPU seconds the server used so far (from /proc)."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            tck = os.sysconf("SC_CLK_TCK")
            return (int(fields[11]) + int(fields[12])) / tck
        except OSError:
            return float("nan")

    def stop(self):
        terminate(self.proc)
        self.errf.seek(0)
        return self.errf.read().decode(errors="replace")


class Nginx:
    """A private nginx serving ``root/gen/<size>/<name>`` files from tmpfs."""

    def __init__(self, files_list, gen, workers=1):
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(exe):
            raise RuntimeError("nginx not installed (apt-get install nginx)")
        self.prefix = tempfile.mkdtemp(prefix="ugbench-nginx-", dir=SHM)
        os.chmod(self.prefix, 0o755)   # workers run as nobody
        root = os.path.join(self.prefix, "root")
        for files in files_list:
            d = os.path.join(root, "gen", str(files.size))
            os.makedirs(d, exist_ok=True)
            for i, n in enumerate(files.names):
                with open(os.path.join(d, n), "wb") as f:
                    f.write(files.content(i))
        os.makedirs(os.path.join(self.prefix, "logs"), exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"workers": workers, "port": self.port,
                                  "root": root, "prefix": self.prefix})
        self.errf = tempfile.TemporaryFile()  # noqa: SIM115 (lives with nginx)
        self.proc = subprocess.Popen([exe, "-c", conf, "-p", self.prefix],
                                     stdout=self.errf, stderr=self.errf,
                                     start_new_session=True)
        if not wait_listening(self.port):
            self.stop()
            raise RuntimeError("nginx did not start")
        self.base = "http://127.0.0.1:%d/" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


NGINX_CONF = """
daemon off;
master_process on;
worker_processes %(workers)d;
worker_rlimit_nofile 8192;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/logs/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 100000;
    client_body_temp_path %(prefix)s/tmp_body;
    proxy_temp_path %(prefix)s/tmp_proxy;
    fastcgi_temp_path %(prefix)s/tmp_fastcgi;
    uwsgi_temp_path %(prefix)s/tmp_uwsgi;
    scgi_temp_path %(prefix)s/tmp_scgi;
    default_type application/octet-stream;
    types { }
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
    }
}
"""


# --------------------------------------------------------------------------
# running and measuring one tool
# --------------------------------------------------------------------------

def run_measured(cmd, env=None, cwd=None, timeout=600.0, stdin_data=None):
    """Run cmd; return dict(rc, wall, user, sys, maxrss_kb, out, err).

    CPU and peak RSS come from wait4(): the process and every child it
    waited for.  Output goes through temporary files (no pipe deadlocks).
    """
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
    inp = None
    if stdin_data is not None:
        inp = tempfile.TemporaryFile()  # noqa: SIM115
        inp.write(stdin_data)
        inp.seek(0)
    # Peak RSS: a child forked from this (large) process inherits its RSS
    # until exec, and ru_maxrss keeps that figure; GNU time, itself small,
    # forks the tool and reports the tool's own peak (%M, KB).
    rssf = None
    if os.path.exists(GNU_TIME):
        rssf = tempfile.NamedTemporaryFile(prefix="ugbench-rss-", dir=SHM, delete=False)  # noqa: SIM115
        rssf.close()
        cmd = [GNU_TIME, "-f", "%M", "-o", rssf.name, *cmd]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd,
                         stdin=inp if inp is not None else subprocess.DEVNULL,
                         start_new_session=True)
    deadline = t0 + timeout
    timed_out = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    maxrss = None
    if rssf is not None:
        try:
            with open(rssf.name) as f:
                maxrss = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            maxrss = None
        os.unlink(rssf.name)
    return {
        "rc": p.returncode if not timed_out else "timeout",
        "wall": wall,
        "started": t0,  # (perf_counter: CLOCK_MONOTONIC, one clock for every process here)
        "user": ru.ru_utime,
        "sys": ru.ru_stime,
        "maxrss_kb": maxrss,   # None without GNU time
        "out": out.read().decode(errors="replace"),
        "err": err.read().decode(errors="replace"),
    }


def terminate(proc):
    """SIGTERM a server process and reap it (SIGKILL after 5 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def precompile():
    """Byte-compile this repository's library, and the drivers' shared module, once, so
    that no measured run pays for it (the drivers run with PYTHONDONTWRITEBYTECODE, as an
    installed package would; _driver_common.py alone took ~5 ms to compile in each run
    of ours, which librepo's self-contained driver did not pay).  The driver scripts
    themselves are compiled in each run, as any script is: they are kept short.

    Forced: compileall skips a .pyc whose recorded mtime matches the source's, but the
    importer also compares the size, so a file rewritten within the same second (a git
    checkout, a patch) would leave a .pyc that every driver finds stale and recompiles."""
    import compileall

    compileall.compile_dir(os.path.join(os.path.dirname(BENCH), "urlgrabber"), quiet=1, force=True)
    compileall.compile_file(os.path.join(BENCH, "_driver_common.py"), quiet=1, force=True)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k not in ("URLGRABBER_EXT_DOWN",)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


# What each Python driver imports besides the standard library and bench/ (the
# script's directory, sys.path[0]); _ug_driver.py adds this checkout itself.
DRIVER_MODULES = {
    "_ug_driver.py": ("pycurl",),
    "_classic_driver.py": ("urlgrabber", "pycurl", "six"),  # the 4.1.0 venv's
    "_librepo_driver.py": ("librepo",),
}
_module_dirs_cache: dict = {}
_bare_startup_cache: dict = {}
_abi_cache: dict = {}
DRIVER_PYTHON = None  # --driver-python: one interpreter binary for every Python driver


def add_driver_args(ap):
    """The flag every script that runs Python drivers has."""
    ap.add_argument("--driver-python", metavar="PY",
                    help="run every Python driver (ours, classic's, librepo's) on this interpreter, "
                         "each with its own libraries on PYTHONPATH (same Python ABI only); default: "
                         "each tool's own interpreter (see bench/README.md, Start-up)")


def set_driver_python(path):
    global DRIVER_PYTHON
    DRIVER_PYTHON = path or None
    if DRIVER_PYTHON and not os.path.exists(DRIVER_PYTHON):
        raise SystemExit("--driver-python: no such interpreter: %s" % DRIVER_PYTHON)


def python_abi(python):
    """``python``'s SOABI (cpython-311-x86_64-linux-gnu): which extension modules it can load."""
    if python not in _abi_cache:
        p = subprocess.run([python, "-S", "-c", "import sysconfig; print(sysconfig.get_config_var('SOABI'))"],
                           capture_output=True, text=True, env=clean_env(), cwd="/")
        _abi_cache[python] = p.stdout.strip() if p.returncode == 0 else None
    return _abi_cache[python]


def module_dirs(python, modules):
    """The sys.path entries from which ``python``, started as usual (with its site),
    imports ``modules``; None when one of them is missing."""
    key = (python, tuple(modules))
    if key not in _module_dirs_cache:
        code = ("import importlib.util as u, os, sys\n"
                "for m in sys.argv[1:]:\n"
                "    s = u.find_spec(m)\n"
                "    d = os.path.dirname(s.origin)\n"
                "    print(os.path.dirname(d) if s.submodule_search_locations else d)\n")
        p = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True,
                           env=clean_env(), cwd="/")  # (not bench/ or the checkout: their modules)
        dirs = list(dict.fromkeys(p.stdout.split())) if p.returncode == 0 else None
        _module_dirs_cache[key] = dirs
    return _module_dirs_cache[key]


def bare_startup(python, runs=7):
    """Median wall seconds of ``python -S -c pass``: the start-up a driver pays before
    its own imports (cached per interpreter)."""
    if python not in _bare_startup_cache:
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([python, "-S", "-c", "pass"], env=clean_env(), cwd="/", check=True)
            walls.append(time.perf_counter() - t0)
        _bare_startup_cache[python] = statistics.median(walls)
    return _bare_startup_cache[python]


def driver_interpreter(python):
    """The interpreter a driver of ``python``'s libraries runs on: ``python`` itself, or
    --driver-python when it can load the same extension modules."""
    if DRIVER_PYTHON and python_abi(DRIVER_PYTHON) and python_abi(DRIVER_PYTHON) == python_abi(python):
        return DRIVER_PYTHON
    return python


def driver_command(python, script, env=None):
    """The command line and environment of a Python driver whose libraries ``python`` has.

    Every driver starts alike, whatever its interpreter has installed: ``-S`` (no site
    module, so none of the interpreter's .pth files runs: on this machine pyenv's cost
    50-70 ms, Debian's python3 has none) with PYTHONPATH holding only the directories
    ``python`` imports the driver's libraries from.  With --driver-python every driver
    runs on that one binary instead.  See bench/README.md, "Start-up".
    """
    env = dict(env or clean_env())
    dirs = module_dirs(python, DRIVER_MODULES.get(script, ()))
    if dirs is None:  # (as before: the driver reports the missing module)
        return [python, os.path.join(BENCH, script)], env
    env["PYTHONPATH"] = os.pathsep.join(dirs)
    return [driver_interpreter(python), "-S", os.path.join(BENCH, script)], env


def run_driver(python, script, job, env=None, timeout=600.0):
    """Run a Python driver (see driver_command) on ``job``; merge its own timings.

    Job and result travel as marshal data, and the job carries only what the
    driver reads (checksums only when it checks, per-file sizes only where
    they differ): loading it is harness work inside the measured process.
    ``import json`` alone cost a driver 10-15 ms on pyenv's interpreter;
    curl reads a config of URLs and outputs only.  marshal is built in and
    reads 20 000 files' job in ~5 ms.
    """
    jobdir = tempfile.mkdtemp(prefix="ugbench-job-", dir=SHM)
    jf, rf = os.path.join(jobdir, "job.marshal"), os.path.join(jobdir, "res.marshal")
    job = dict(job)
    if not job.get("check"):
        job.pop("sha256", None)
    if job.get("sizes") is not None and all(n == job.get("size") for n in job["sizes"]):
        job.pop("sizes")  # (the drivers take ``size`` for every file then)
    with open(jf, "wb") as f:
        f.write(marshal.dumps(job, 4))
    cmd, env = driver_command(python, script, env)
    r = run_measured([*cmd, jf, rf], env=env, cwd=BENCH, timeout=timeout)
    r["python"], r["site"] = cmd[0], "-S" not in cmd
    try:
        with open(rf, "rb") as f:
            r["driver"] = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        r["driver"] = None
    shutil.rmtree(jobdir, ignore_errors=True)
    return r


# --------------------------------------------------------------------------
# competitors
# --------------------------------------------------------------------------

def classic_python(setup=True):
    """Path to the python of the urlgrabber 4.1.0 venv (created if asked)."""
    py = os.path.join(CLASSIC_VENV, "bin", "python")
    ok = os.path.exists(py) and subprocess.run(
        [py, "-c", "import urlgrabber, pycurl, six, importlib.metadata as m; "
         "assert m.version('urlgrabber') == %r" % CLASSIC_VERSION],
        capture_output=True, env=clean_env(), cwd=CLASSIC_VENV if os.path.isdir(CLASSIC_VENV) else None,
    ).returncode == 0  # (not from this checkout's directory: `import urlgrabber` would find ours)
    if not ok:
        if not setup:
            return None
        log("setting up %s (urlgrabber==%s from PyPI) ..." % (CLASSIC_VENV, CLASSIC_VERSION))
        r = subprocess.run([sys.executable, "-m", "venv", CLASSIC_VENV],
                           capture_output=True, text=True)
        if r.returncode:
            log(r.stderr)
            return None
        r = subprocess.run([py, "-m", "pip", "install", "-q",
                            "urlgrabber==%s" % CLASSIC_VERSION, "pycurl", "six"],
                           capture_output=True, text=True, env=clean_env())
        if r.returncode:
            log("pip install failed:", r.stderr[-2000:])
            return None
    # urlgrabber-ext-down says "#! /usr/bin/python": make a copy that runs
    # with the venv's interpreter.
    src = os.path.join(CLASSIC_VENV, "libexec", "urlgrabber-ext-down")
    dst = os.path.join(CLASSIC_VENV, "bin", "urlgrabber-ext-down-venv")
    if os.path.exists(src) and not os.path.exists(dst):
        with open(src) as f:
            body = f.read().split("\n", 1)[1]
        with open(dst, "w") as f:
            f.write("#!%s\n%s" % (py, body))
        os.chmod(dst, 0o755)
    return py


def classic_env():
    return clean_env({"URLGRABBER_EXT_DOWN":
                      os.path.join(CLASSIC_VENV, "bin", "urlgrabber-ext-down-venv")})


def librepo_available():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import librepo"],
                          capture_output=True, env=clean_env()).returncode == 0


def curl_config(urls, dests, path):
    with open(path, "w") as f:
        for u, d in zip(urls, dests):
            f.write('url = "%s"\noutput = "%s"\n' % (u, d))


def aria2_input(url_lists, dests, path, checksums=None):
    """One download per entry; several URIs of one file are tab-separated."""
    with open(path, "w") as f:
        for i, (urls, d) in enumerate(zip(url_lists, dests)):
            f.write("\t".join(urls) + "\n")
            f.write("  dir=%s\n  out=%s\n" % (os.path.dirname(d), os.path.basename(d)))
            if checksums:
                f.write("  checksum=sha-256=%s\n" % checksums[i])


ARIA2_FLAGS = [
    "--file-allocation=none", "--allow-overwrite=true",
    "--auto-file-renaming=false", "--console-log-level=error",
    "--summary-interval=0", "--download-result=hide", "--quiet=true",
    "--remote-time=false", "--conditional-get=false",
    "--enable-http-keep-alive=true", "--enable-http-pipelining=false",
    "--deferred-input=true", "--max-download-result=100",
    "--auto-save-interval=0", "--no-conf=true", "--check-integrity=false",
]


# --------------------------------------------------------------------------
# results and tables
# --------------------------------------------------------------------------

def summarize(runs, pick="median"):
    """Merge repeats: the median (or best) run by whole-process wall time, with the spread."""
    runs = [r for r in runs if r is not None]
    if not runs:
        return None
    rounds = [(r["wall"], r["cpu"]) for r in runs]  # in run order: round i of every tool ran together
    runs = sorted(runs, key=lambda r: r["wall"])
    if pick == "best":
        chosen = dict(runs[0])
    else:
        chosen = dict(runs[(len(runs) - 1) // 2])
    chosen["walls"] = [round(r["wall"], 3) for r in runs]
    chosen["wall_min"], chosen["wall_max"] = runs[0]["wall"], runs[-1]["wall"]
    chosen["rounds"] = rounds
    # a tool that failed in any repeat is a failure
    if any(r["status"] != "ok" for r in runs):
        bad = next(r for r in runs if r["status"] != "ok")
        chosen["status"] = bad["status"]
        chosen["problems"] = bad.get("problems", [])
    return chosen


def fmt(v, spec):
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return format(v, spec)


COLUMNS = [
    ("rank", "<", None),
    ("tool", "<", None),
    ("wall s", ">", ".3f"),
    ("min-max s", ">", None),
    ("in-proc s", ">", ".3f"),
    ("ideal s", ">", ".2f"),
    ("x ideal", ">", ".2f"),
    ("x serial", ">", ".3f"),
    ("files/s", ">", ".0f"),
    ("CPU s", ">", ".3f"),
    ("CPU ms/file", ">", ".3f"),
    ("files ok", ">", None),
    ("verdict", "<", None),
]


def ranks(rows):
    """Rank the ok rows by wall time; a row whose range of repeats overlaps the
    range of the row ranked above it ties with it ("=2"): noise is no ranking."""
    ok = sorted((r for r in rows if r and r["status"] == "ok"), key=lambda r: r["wall"])
    out, rank, prev = {}, 0, None
    for i, r in enumerate(ok):
        lo = r.get("wall_min", r["wall"])
        if prev is not None and lo <= prev.get("wall_max", prev["wall"]):
            out[id(r)] = "=%d" % rank
            out[id(prev)] = "=%d" % rank
        else:
            rank = i + 1
            out[id(r)] = str(rank)
        prev = r
    return out


def table(title, rows, files, ideal=None, serial_tool=None, note=None):
    """Print one scenario table; rows are summarize()d results.

    wall and CPU are the whole process's, as a user sees them (interpreter
    start-up and imports included); "in-proc" is a Python driver's own timing
    of its download phase.  A rank shared as "=k" means the repeats' ranges
    overlap: a tie, whatever the medians say.
    """
    serial = None
    for r in rows:
        if r and r["tool"] == serial_tool and r["status"] == "ok":
            serial = r["wall"]
    ranked = ranks([r for r in rows if r and r.get("n", files) == files])
    lines = []
    for r in rows:
        if r is None:
            continue
        if r["status"] == "skipped":
            lines.append(["", r["tool"], None, None, None, None, None, None, None, None, None,
                          "-", "skipped: " + r.get("why", "")])
            continue
        wall, cpu = r["wall"], r["cpu"]
        n = r.get("n", files)     # a row may have run on a subset
        spread = ("%.3f-%.3f" % (r["wall_min"], r["wall_max"])
                  if "wall_min" in r and len(r.get("walls", ())) > 1 else "-")
        lines.append([
            ranked.get(id(r), ""),
            r["tool"] if n == files else "%s [%d files]" % (r["tool"], n), wall, spread,
            r.get("inner_wall"),
            ideal * n / files if ideal else None,          # ideal is per file
            wall / (ideal * n / files) if ideal else None,
            wall / serial if serial and n == files else None,
            n / wall if wall else None,
            cpu, cpu * 1000.0 / n if cpu is not None else None,
            "%d/%d" % (r.get("ok", 0), n),
            "ok" if r["status"] == "ok" else "FAIL",
        ])
    cells = []
    for line in lines:
        row = []
        for (_name, _align, spec), v in zip(COLUMNS, line):
            row.append(v if spec is None or isinstance(v, str) else fmt(v, spec))
        cells.append([("-" if c is None else str(c)) for c in row])
    widths = [max([len(c[0])] + [len(row[i]) for row in cells])
              for i, c in enumerate(COLUMNS)]
    def just(text, align, w):
        return text.ljust(w) if align == "<" else text.rjust(w)
    print()
    print("%s  [%s]" % (title, time.strftime("%Y-%m-%d")))
    print("  ".join(just(n, a, w) for (n, a, _), w in zip(COLUMNS, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(just(c, a, w) for (_, a, _), w, c in zip(COLUMNS, widths, row)).rstrip())
    for r in rows:
        if r and r["status"] not in ("ok", "skipped"):
            print("  %s FAILED: %s" % (r["tool"], short("; ".join(r.get("problems", [])[:3]))))
    for r in rows:
        drv = (r or {}).get("driver") or {}
        if drv.get("helpers_spawned"):
            print("  %s forked %d urlgrabber-ext-down helper processes"
                  % (r["tool"], drv["helpers_spawned"]))
    if note:
        print("  " + note.replace("\n", "\n  "))
    startup = startup_note(rows)
    if startup:
        print("  " + startup)
    sys.stdout.flush()


def startup_note(rows):
    """One line on the Python drivers' start-up: how they ran, and each interpreter's
    bare start-up (``-S -c pass``), so that whole-process walls can be compared."""
    tools: dict = {}
    for r in rows:
        if r and r.get("python"):
            tools.setdefault((r["python"], r["site"]), []).append(r["tool"])
    if not tools:
        return ""
    parts = ["%s: %s%s, bare start-up %.0f ms" % ("/".join(t), p, " (with site)" if site else "",
                                                  bare_startup(p) * 1000)
             for (p, site), t in tools.items()]
    return "Python drivers run as `python -S` (no site, no .pth) with their libraries on PYTHONPATH; " + \
        "; ".join(parts)


def short(text, n=400):
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + " ..."


def median(xs):
    return statistics.median(xs) if xs else None


def fresh_dir(tag):
    d = tempfile.mkdtemp(prefix="ugbench-%s-" % tag, dir=SHM)
    return d


def finish_run(tool, r, files, destdir, problems=None):
    """Turn a run_measured/run_driver dict into a table row and verify files."""
    problems = list(problems or [])
    drv = r.get("driver")
    # every tool is measured the same way: the whole process (wait4), start-up included
    wall = r["wall"]
    cpu = r["user"] + r["sys"]
    if drv:
        problems += drv.get("problems", [])[:5]
        if drv.get("failed"):
            problems.append("tool reported %d failed downloads" % drv["failed"])
    if r["rc"] not in (0,):
        problems.append("exit status %s: %s" % (r["rc"], short((r["err"] or r["out"])[-400:])))
    ok, bad = files.verify(destdir)
    if bad:
        problems.append("%d wrong/missing files (first: %s)" % (len(bad), bad[0]))
    shutil.rmtree(destdir, ignore_errors=True)
    row = {"tool": tool, "wall": wall, "cpu": cpu, "ok": ok,
           "status": "ok" if not problems else "fail", "problems": problems,
           "inner_wall": drv["wall"] if drv else None, "inner_cpu": drv["cpu"] if drv else None,
           "maxrss_kb": r["maxrss_kb"], "driver": drv}
    if drv and drv.get("t0") is not None and r.get("started") is not None:
        # outside the download phase: exec, start-up and imports before it; results,
        # teardown and exit after it (the waiter's 2 ms poll included)
        row["before"] = drv["t0"] - r["started"]
        row["after"] = r["started"] + wall - drv["t0"] - drv["wall"]
    if r.get("python"):  # a Python driver: its interpreter, and how it started
        row.update(python=r["python"], site=r["site"])
    return row
