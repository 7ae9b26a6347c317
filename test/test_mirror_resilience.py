"""A batch through MirrorGroup survives what real mirrors do: some responses stall
half-way, a mirror drops out for a moment.  Every file must arrive.

(Hardening issue: with 2 % stalls, timeout=2 and retry=5, 972 of 2 000 files
used to fail: simultaneous timeouts counted as a streak, the mirror was
declared dead, and every queued file failed at once.)
"""

from __future__ import annotations

import time

import pytest
from util import gen_bytes

import urlgrabber
from urlgrabber.grabber import URLGrabber
from urlgrabber.mirror import MirrorGroup


def run_batch(mg, count, tmp_path, size=2000, prefix="f", **kw):
    failed = []
    urlgrabber.parallel_begin(max_connections=12)
    for i in range(count):
        mg.urlgrab(f"gen/{size}/{prefix}{i}", str(tmp_path / f"{prefix}{i}"), async_=True,
                   failfunc=lambda obj: failed.append((obj.url, str(obj.exception))), **kw)
    results = urlgrabber.parallel_end()
    return results, failed


def assert_all_arrived(results, failed, tmp_path, count, size=2000, prefix="f"):
    assert failed == [], f"{len(failed)} of {count} failed, first: {failed[:3]}"
    assert all(r.ok for r in results)
    for i in (0, count // 2, count - 1):
        assert (tmp_path / f"{prefix}{i}").read_bytes() == gen_bytes(size, f"{prefix}{i}")


def mirrors(servers):
    return [{"mirror": s.url + "/", "kwargs": {"max_connections": 4}} for s in servers]


@pytest.mark.parametrize(("n_mirrors", "count", "timeout"), [(3, 2000, 2), (1, 1000, 0.5)],
                         ids=["3-mirrors", "1-mirror"])
def test_occasional_stalls_lose_no_file(make_server, tmp_path, n_mirrors, count, timeout):
    servers = [make_server(stall_rate=0.02, seed=n, stall=30) for n in range(n_mirrors)]
    # 3 mirrors: the hardening issue's case as reported (timeout=2).  1 mirror:
    # timeout=0.5, a quarter of the time; with ~700 files a second still passing,
    # stalls still overlap (the same failures in less time)
    mg = MirrorGroup(URLGrabber(retry=5, timeout=timeout), mirrors(servers))
    t0 = time.monotonic()
    results, failed = run_batch(mg, count, tmp_path)
    elapsed = time.monotonic() - t0
    assert_all_arrived(results, failed, tmp_path, count)
    stalled = sum(1 for s in servers for e in s.log if e.get("fault") == "stall_rate")
    assert stalled >= count * 0.01  # the stalls did happen
    assert elapsed < 60


def test_only_mirror_unreachable_for_half_a_second(make_server, tmp_path):
    server = make_server()
    mg = MirrorGroup(URLGrabber(retry=5, timeout=2), mirrors([server]))
    server.go_down(0.5)  # (the server's clock decides when it answers again)
    results, failed = run_batch(mg, 400, tmp_path)
    assert_all_arrived(results, failed, tmp_path, 400)
    assert server.connections > 1  # it really refused at first


def test_a_dead_only_mirror_still_fails_the_batch_in_bounded_time(dead_url, tmp_path):
    """A mirror that never answers is not waited on for ever: every file fails, soon."""
    mg = MirrorGroup(URLGrabber(retry=2, timeout=2), [{"mirror": dead_url + "/", "kwargs": {"max_connections": 4}}])
    t0 = time.monotonic()
    _, failed = run_batch(mg, 50, tmp_path)
    assert len(failed) == 50
    assert time.monotonic() - t0 < 30


def test_a_passing_500_on_every_mirror_does_not_lose_the_file(make_server, tmp_path):
    """A few files get a 500 from each mirror on their first request there (as a busy
    mirror answers now and then): the last mirror is tried again after a pause."""
    servers = [make_server() for _ in range(3)]
    mg = MirrorGroup(URLGrabber(retry=2, timeout=2), mirrors(servers))
    failed = []
    urlgrabber.parallel_begin(max_connections=12)
    for i in range(20):
        knob = "?fail_first=1&fail_status=500" if i < 3 else ""
        mg.urlgrab(f"gen/2000/f{i}{knob}", str(tmp_path / f"f{i}"), async_=True,
                   failfunc=lambda obj: failed.append((obj.url, str(obj.exception))))
    results = urlgrabber.parallel_end()
    assert_all_arrived(results, failed, tmp_path, 20)
    for s in servers:  # each of the three files met a 500 on every mirror
        assert sorted(e["path"] for e in s.log if e.get("status") == 500) == [f"/gen/2000/f{i}" for i in range(3)]


def test_a_501_on_every_mirror_fails_after_one_try_each(make_server, tmp_path):
    """501 will not change: no pause, no second try on the last mirror."""
    servers = [make_server(status=501) for _ in range(3)]
    mg = MirrorGroup(URLGrabber(retry=2, timeout=2), mirrors(servers))
    _, failed = run_batch(mg, 5, tmp_path)
    assert len(failed) == 5 and all("256" in text for _, text in failed)
    for s in servers:  # no mirror was asked twice for a file (a mirror may be skipped
        paths = [e["path"] for e in s.log]  # unasked once it failed three times in a row)
        assert len(paths) == len(set(paths))
