#!/usr/bin/python3
"""Driver for dnf's librepo (Debian python3-librepo), run with /usr/bin/python3.

Same job and result files (marshal) as _driver_common.py.  All of ``bases`` become the
handle's mirror list (LRO_URLS); every file is one PackageTarget with its
relative path; ``download_packages`` runs them all.  maxparalleldownloads is
the global cap, maxdownloadspermirror the per-mirror one.  With ``check`` the
targets carry the expected sha256 and size (librepo verifies them itself).
"""

import marshal
import resource
import sys
import time

import librepo


def cpu_now():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def peak_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    with open(sys.argv[1], "rb") as f:
        job = marshal.loads(f.read())
    conns = job.get("conns", 10)
    per = job.get("per_key", conns)
    h = librepo.Handle()
    h.repotype = librepo.YUMREPO
    h.urls = job["bases"]
    h.maxparalleldownloads = conns
    h.maxdownloadspermirror = per
    h.maxmirrortries = 0
    if job.get("timeout"):
        h.connecttimeout = int(job["timeout"])
    if job.get("ca"):
        h.sslcacert = job["ca"]
    t0, c0 = time.perf_counter(), cpu_now()
    targets = []
    sizes = job.get("sizes") or [job["size"]] * len(job["rel"])
    shas = job.get("sha256") or [None] * len(job["rel"])  # (only a checking job carries them)
    for rel, dest, sha, size in zip(job["rel"], job["dests"], shas, sizes):
        if job.get("check"):
            t = librepo.PackageTarget(rel, dest=dest, handle=h,
                                      checksum_type=librepo.SHA256, checksum=sha,
                                      expectedsize=size)
        else:
            t = librepo.PackageTarget(rel, dest=dest, handle=h)
        targets.append(t)
    problems = []
    try:
        librepo.download_packages(targets, failfast=False)
    except librepo.LibrepoException as e:
        problems.append("download_packages: %s" % (e,))
    failed = [t for t in targets if t.err]
    for t in failed[:5]:
        problems.append("%s: %s" % (t.relative_url, t.err))
    t1, c1 = time.perf_counter(), cpu_now()
    res = {"impl": "librepo %d.%d.%d" % (librepo.VERSION_MAJOR, librepo.VERSION_MINOR,
                                         librepo.VERSION_PATCH),
           "wall": t1 - t0, "cpu": c1 - c0, "t0": t0, "failed": len(failed),
           "problems": problems,
           "maxrss_kb": peak_kb()}
    with open(sys.argv[2], "wb") as f:
        f.write(marshal.dumps(res, 4))


if __name__ == "__main__":
    main()
