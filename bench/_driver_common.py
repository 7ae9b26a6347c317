"""Download loops shared by _ug_driver.py (this library) and _classic_driver.py
(urlgrabber 4.1.0 in its own venv).  Standard library only; each driver is
run in a fresh process as ``driver JOB RESULT`` (marshal data: see _common.run_driver).

Job keys: mode (serial | batch | mirror | mirror-serial | memory),
bases, rel, dests, size, sha256 (only with check), conns, per_key, retry, check (bool),
timeout, ca (HTTPS: a CA file), tracemalloc (memory mode), run (memory
mode: also download), segments (optional: the segments option).

The result has wall and cpu (user+sys of this process and of the children it
waited for) of the download phase only, failures, and memory figures.
"""

from __future__ import annotations

import marshal
import os
import resource
import sys
import time


def rss_kb(field="VmRSS:"):
    """Current RSS (or with "VmHWM:" the peak RSS since exec), in KB.

    ru_maxrss is not used: it also counts the RSS this process had before
    exec, i.e. that of the (large) benchmark harness that forked it.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def peak_kb():
    return rss_kb("VmHWM:")


def cpu_now():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Adapter:
    """What differs between the two libraries."""
    name = "?"
    URLGrabber = None
    MirrorGroup = None
    URLGrabError = None

    def begin(self, conns):
        raise NotImplementedError

    def end(self):
        """Run the queue; return the library's results (or None)."""
        raise NotImplementedError

    def count_failed(self, results):
        return 0

    def extra(self):
        """Implementation-specific figures added to the result."""
        return {}

    def mirror_base(self, base):
        return base


def make_checkfunc(adapter, job):
    import hashlib  # only here: OpenSSL's libcrypto costs ~3 ms at start-up

    # keyed by the file name in the URL: obj.filename may be a temporary
    # file (this library checks the ".part" file before renaming it)
    want = {os.path.basename(r): s for r, s in zip(job["rel"], job["sha256"])}
    sizes = {os.path.basename(r): n for r, n in zip(job["rel"], job.get("sizes") or
                                                     [job["size"]] * len(job["rel"]))}
    err = adapter.URLGrabError
    calls = [0]

    def check(obj):
        calls[0] += 1
        fn = obj.filename
        if isinstance(fn, bytes):
            fn = fn.decode()
        with open(fn, "rb") as f:
            data = f.read()
        url = obj.url
        if isinstance(url, bytes):
            url = url.decode()
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if len(data) != sizes.get(name) or hashlib.sha256(data).hexdigest() != want.get(name):
            raise err(-1, "bad")
    return check, calls


def main(adapter: Adapter):
    jobfile, resfile = sys.argv[1], sys.argv[2]
    with open(jobfile, "rb") as f:
        job = marshal.loads(f.read())
    mode = job["mode"]
    bases, rel, dests = job["bases"], job["rel"], job["dests"]
    conns = job.get("conns", 10)
    per_key = job.get("per_key", conns)
    kw = {"retry": job.get("retry", 3)}
    if job.get("timeout"):
        kw["timeout"] = job["timeout"]
    if job.get("ca"):
        kw["ssl_ca_cert"] = job["ca"]
    if job.get("segments"):
        kw["segments"] = job["segments"]  # (this library only: one large file over N connections)
    check_calls = None
    if job.get("check"):
        kw["checkfunc"], check_calls = make_checkfunc(adapter, job)
    res = {"impl": adapter.name, "mode": mode, "problems": [], "failed": 0}
    failures = []

    def failfunc(obj):
        failures.append("%s: %s" % (getattr(obj, "url", "?"), getattr(obj, "exception", "?")))

    g = adapter.URLGrabber(**kw)
    n = len(rel)
    # each file's size, as yum passes it to a MirrorGroup (librepo's targets carry it too)
    sizes = job.get("sizes") or [job["size"]] * n
    if mode in ("mirror", "mirror-serial"):
        mirrors = [{"mirror": adapter.mirror_base(b), "kwargs": {"max_connections": per_key}}
                   for b in bases]
        mg = adapter.MirrorGroup(g, mirrors)

    if mode == "memory":
        return memory(adapter, job, res, g, failfunc, failures, resfile)

    rss0, t0, c0 = rss_kb(), time.perf_counter(), cpu_now()
    results = None
    if mode == "serial":
        base = bases[0]
        for i in range(n):
            try:
                g.urlgrab(base + rel[i], dests[i])
            except adapter.URLGrabError as e:
                failures.append("%s: %s" % (rel[i], e))
    elif mode == "mirror-serial":
        for i in range(n):
            try:
                mg.urlgrab(rel[i], dests[i], size=sizes[i])
            except adapter.URLGrabError as e:
                failures.append("%s: %s" % (rel[i], e))
    elif mode == "batch":
        base = bases[0]
        adapter.begin(conns)
        for i in range(n):
            g.urlgrab(base + rel[i], dests[i], async_=(base, per_key), failfunc=failfunc)
        results = adapter.end()
    elif mode == "mirror":
        adapter.begin(conns)
        for i in range(n):
            mg.urlgrab(rel[i], dests[i], async_=True, failfunc=failfunc, size=sizes[i])
        results = adapter.end()
    else:
        raise SystemExit("unknown mode %r" % mode)
    t1, c1 = time.perf_counter(), cpu_now()
    res["failed"] = max(len(failures), adapter.count_failed(results))
    res["problems"] = failures[:5]
    if check_calls is not None:
        res["checkfunc_calls"] = check_calls[0]
    res.update(adapter.extra())
    res.update(wall=t1 - t0, cpu=c1 - c0, t0=t0, rss_before_kb=rss0, rss_after_kb=rss_kb(),
               maxrss_kb=peak_kb())
    with open(resfile, "wb") as f:
        f.write(marshal.dumps(res, 4))


def memory(adapter, job, res, g, failfunc, failures, resfile):
    """Queue every request; measure RSS after queueing and at peak."""
    base, rel, dests = job["bases"][0], job["rel"], job["dests"]
    conns = job.get("conns", 8)
    tm = job.get("tracemalloc")
    import gc
    gc.collect()
    if tm:
        import tracemalloc
        tracemalloc.start()
    rss0 = rss_kb()
    max0 = peak_kb()
    t0, c0 = time.perf_counter(), cpu_now()
    adapter.begin(conns)
    for i in range(len(rel)):
        g.urlgrab(base + rel[i], dests[i], async_=(base, conns), failfunc=failfunc)
    tq = time.perf_counter() - t0
    rss_q = rss_kb()
    if tm:
        cur, peak = tracemalloc.get_traced_memory()
        res.update(tracemalloc_queue_bytes=cur, tracemalloc_queue_peak=peak)
        tracemalloc.stop()
    results = None
    if job.get("run", True) and not tm:
        results = adapter.end()
    t1, c1 = time.perf_counter(), cpu_now()
    res["failed"] = max(len(failures), adapter.count_failed(results))
    res["problems"] = failures[:5]
    res.update(wall=t1 - t0, cpu=c1 - c0, t0=t0, queue_s=tq, rss_before_kb=rss0,
               maxrss_before_kb=max0, rss_after_queue_kb=rss_q,
               rss_after_end_kb=rss_kb(),
               maxrss_kb=peak_kb())
    with open(resfile, "wb") as f:
        f.write(marshal.dumps(res, 4))
