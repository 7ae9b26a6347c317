"""The batch API's results: ``parallel_end(raise_errors=False)``, the mirror that served
each file, attempts, live progress and per-file meters."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from util import gen_bytes

import urlgrabber
from urlgrabber.grabber import URLGrabber, URLGrabError
from urlgrabber.mirror import MirrorGroup
from urlgrabber.progress import TextMeter, TextMultiFileMeter

pytestmark = pytest.mark.timeout(60)


def test_raise_errors_false_returns_every_result(server, tmp_path):
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=2)
    g.urlgrab(f"{server.url}/missing.bin", str(tmp_path / "m"), async_=True)
    for i in range(5):
        g.urlgrab(f"{server.url}/gen/1000/f{i}", str(tmp_path / f"f{i}"), async_=True)
    results = urlgrabber.parallel_end(raise_errors=False)
    assert len(results) == 6
    assert not results[0].ok and isinstance(results[0].exception, URLGrabError)
    assert results[0].exception.code == 404
    assert all(r.ok for r in results[1:])
    assert (tmp_path / "f4").read_bytes() == gen_bytes(1000, "f4")


def test_default_still_raises_the_first_failure(server, tmp_path):
    g = URLGrabber()
    urlgrabber.parallel_begin()
    g.urlgrab(f"{server.url}/missing.bin", str(tmp_path / "m"), async_=True)
    with pytest.raises(URLGrabError) as info:
        urlgrabber.parallel_end()
    assert info.value.code == 404


def test_raise_errors_false_still_runs_a_callers_failfunc(server, tmp_path):
    seen = []
    g = URLGrabber()
    urlgrabber.parallel_begin()
    g.urlgrab(f"{server.url}/missing.bin", str(tmp_path / "m"), async_=True, failfunc=seen.append)
    results = urlgrabber.parallel_end(raise_errors=False)
    assert len(seen) == 1 and not results[0].ok


def test_result_names_the_mirror_and_counts_attempts(server, server2, tmp_path):
    server2.add_file("/b/x.bin", b"x" * 100)
    g = URLGrabber()
    mg = MirrorGroup(g, [f"http://user:pw@{server.url[7:]}/a/", f"{server2.url}/b/"])
    urlgrabber.parallel_begin()
    mg.urlgrab("x.bin", str(tmp_path / "x"), async_=True)
    g.urlgrab(f"{server2.url}/b/x.bin", str(tmp_path / "y"), async_=True)
    results = urlgrabber.parallel_end()
    assert results[0].mirror == f"{server2.url}/b/" and results[0].attempts == 2
    assert results[1].mirror is None and results[1].attempts == 1


def test_batch_meter_gets_updates_during_transfers(server, tmp_path):
    """The status line moves while bytes arrive, not only when a file ends."""
    updates = []

    class Counting(TextMultiFileMeter):
        def update_meter(self, meter, now):
            updates.append(meter.last_amount_read)
            super().update_meter(meter, now)

    g = URLGrabber(multi_progress_obj=Counting(fo=io.StringIO()))
    urlgrabber.parallel_begin()
    for i in range(2):
        g.urlgrab(f"{server.url}/gen/120000/s{i}?bw=200000", str(tmp_path / f"s{i}"), async_=True)
    urlgrabber.parallel_end()
    assert len(updates) >= 3
    assert any(0 < n < 120000 for n in updates)  # mid-transfer


def test_shared_progress_obj_gets_one_meter_per_file(server, tmp_path):
    started = []

    class Recording(TextMeter):
        def _do_start(self, now):
            started.append((id(self), self.basename))

    meter = Recording(fo=io.StringIO())
    g = URLGrabber(progress_obj=meter)
    urlgrabber.parallel_begin()
    for i in range(3):
        g.urlgrab(f"{server.url}/gen/50000/p{i}?bw=500000", str(tmp_path / f"p{i}"), async_=True)
    urlgrabber.parallel_end()
    assert sorted(name for _, name in started) == ["p0", "p1", "p2"]
    assert len({ident for ident, _ in started}) == 3  # three meters, none relabelled mid-file


_NO_RETRY_AFTER = """
import sys, pycurl
if hasattr(pycurl, "RETRY_AFTER"):
    del pycurl.RETRY_AFTER  # as in pycurl 7.45.7, what pip installs on Python 3.9
import urlgrabber, urlgrabber._transfer as t
from urlgrabber.grabber import URLGrabber
observed = []
t.Transfer.observe = lambda self, _observe=t.Transfer.observe: (observed.append(1), _observe(self))[1]
urlgrabber.parallel_begin()
URLGrabber(retry=2, retrycodes=[14]).urlgrab(sys.argv[1], sys.argv[2], async_=True)
print(urlgrabber.parallel_end(raise_errors=False)[0].ok, len(observed))
"""


def test_works_with_a_pycurl_without_retry_after(server, tmp_path):
    """pycurl 7.45 cannot read CURLINFO_RETRY_AFTER: libcurl still writes the file
    directly (no header passes through Python code), and the Retry-After of the
    last response (after a redirect) is read from the kept header lines."""
    root = Path(__file__).resolve().parent.parent
    target = f"{server.url}/gen/100/ra?fail_first=1&fail_status=503&retry_after=1"
    url = f"{server.url}/redirect?to={urllib.parse.quote(target, safe='')}&code=302"
    proc = subprocess.run([sys.executable, "-c", _NO_RETRY_AFTER, url, str(tmp_path / "ra")],
                          capture_output=True, text=True, timeout=60, cwd=str(root),
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout.split() == ["True", "0"], proc.stderr  # ok, and no attempt observed
    assert (tmp_path / "ra").read_bytes() == gen_bytes(100, "ra")
    assert server.by_path["/gen/100/ra"] == 2
    first, second = (e["at"] for e in server.log if e["path"] == "/gen/100/ra")
    assert second - first >= 0.9  # Retry-After: 1 was read from the headers, and honoured


def test_py_typed_is_shipped():
    root = Path(__file__).resolve().parent.parent
    assert (root / "urlgrabber" / "py.typed").is_file()
    assert '"py.typed"' in (root / "setup.py").read_text()
