"""MirrorGroup: failover and load spreading, in blocking and batch mode.

A mirror is a base URL (or a dict with its own grabber and options); a
download is a path relative to the mirrors.  A blocking call tries mirrors in
the classic order; a batch binds each queued file to a mirror only when it
starts.  Every failure kind must fail over to a working mirror, failure
actions (``remove``, ``increment``, ``remove_master``, ``increment_master``,
``fail``) must mean the same thing in both modes, and in a batch the load is
spread over the mirrors, each within its own connection limit, while a
broken mirror costs only a handful of attempts.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from modes import MODES, grab
from util import gen_bytes

import urlgrabber
from urlgrabber.grabber import URLGrabber, URLGrabError
from urlgrabber.mirror import MGRandomOrder, MGRandomStart, MirrorGroup

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def rel(size: int, name: str) -> str:
    """A path relative to a mirror: the server's deterministic ``/gen`` body."""
    return f"gen/{size}/{name}"


def assert_gen(path, size: int, name: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == size, f"{path}: {len(data)} bytes, expected {size}"
    assert data == gen_bytes(size, name), f"{path}: wrong content"


def mirror(server, **kwargs) -> dict:
    """A mirror entry with per-mirror options (e.g. ``max_connections``)."""
    return {"mirror": server.url, "kwargs": kwargs}


def fetch(mode: str, mg, files, limit: int | None = None, **kw):
    """Download ``files`` (``(relative, dest)`` pairs) through ``mg`` in ``mode``.

    Blocking: one call after the other.  Batch: queue them all with
    ``async_=True`` and run them with ``parallel_end()`` (whose results are
    returned; with the default failfunc a final failure is raised).
    """
    if mode == "blocking":
        return [mg.urlgrab(r, str(d), **kw) for r, d in files]
    urlgrabber.parallel_begin(limit)
    try:
        for r, d in files:
            mg.urlgrab(r, str(d), async_=True, **kw)
    except BaseException:
        urlgrabber.parallel_end()
        raise
    return urlgrabber.parallel_end()


def checker(size: int, name: str):
    """A checkfunc that rejects (errno -1) any body that is not the expected one."""
    expected = gen_bytes(size, name)

    def check(obj):
        with open(obj.filename, "rb") as f:
            if f.read() != expected:
                raise URLGrabError(-1, f"bad content for {name}")

    return check


class Recorder:
    """A failure_callback that records what it was given (and can return an action)."""

    def __init__(self, action=None):
        self.calls = []
        self.action = action

    def __call__(self, obj):
        self.calls.append(obj)
        return self.action(obj) if callable(self.action) else self.action

    def urls(self):
        return [o.url for o in self.calls]


# ---------------------------------------------------------------------------
# classic behaviour, both modes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_healthy_group_downloads_from_the_first_mirror(mode, server, server2, tmp_path):
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url])
    dest = tmp_path / "a.bin"
    assert grab(mode, mg, rel(5000, "a"), str(dest)) == str(dest)
    assert_gen(dest, 5000, "a")
    assert server.by_path["/gen/5000/a"] == 1
    assert server2.requests == 0


@pytest.mark.parametrize("mode", MODES)
def test_mirror_base_with_path_and_slashes(mode, server, tmp_path):
    """Base and relative URL are joined with exactly one slash, however they are written."""
    mg = MirrorGroup(URLGrabber(), [server.url + "/gen/3000/"])
    grab(mode, mg, "/joined", str(tmp_path / "one"))
    mg2 = MirrorGroup(URLGrabber(), [server.url + "/gen/3000"])
    grab(mode, mg2, "joined2", str(tmp_path / "two"))
    assert_gen(tmp_path / "one", 3000, "joined")
    assert_gen(tmp_path / "two", 3000, "joined2")
    assert [e["path"] for e in server.log] == ["/gen/3000/joined", "/gen/3000/joined2"]


@pytest.mark.parametrize("mode", MODES)
def test_failover_from_refused_mirror(mode, dead_url, server, tmp_path):
    seen = Recorder()
    mg = MirrorGroup(URLGrabber(), [dead_url, server.url], failure_callback=seen)
    dest = tmp_path / "f"
    grab(mode, mg, rel(2000, "f"), str(dest))
    assert_gen(dest, 2000, "f")
    assert [o.mirror for o in seen.calls] == [dead_url]
    assert server.by_path["/gen/2000/f"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_failure_callback_object(mode, server, server2, tmp_path):
    """obj carries exception, mirror, relative_url, url and tries."""
    server.defaults["status"] = 500
    seen = Recorder()
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], failure_callback=seen)
    r = rel(1000, "obj")
    grab(mode, mg, r, str(tmp_path / "obj"))
    assert_gen(tmp_path / "obj", 1000, "obj")
    assert len(seen.calls) == 1
    obj = seen.calls[0]
    assert isinstance(obj.exception, URLGrabError)
    assert obj.exception.code == 500
    assert obj.mirror == server.url
    assert obj.relative_url == r
    assert obj.url == f"{server.url}/{r}"
    assert obj.tries == 1


@pytest.mark.parametrize("mode", MODES)
def test_all_mirrors_failed_is_errno_256_with_errors(mode, server, server2, tmp_path):
    server.defaults["status"] = 500
    server2.defaults["status"] = 503
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url])
    r = rel(1000, "x")
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, r, str(tmp_path / "x"))
    err = info.value
    assert err.errno == 256
    assert all(isinstance(e, tuple) and len(e) == 2 for e in err.errors)
    urls = [u for u, _ in err.errors]
    if mode == "blocking":
        assert len(err.errors) == 2  # classic: each mirror once
    else:
        # a batch tries its last mirror again after a pause when it answered "busy" (503)
        assert urls[0] in (f"{server.url}/{r}", f"{server2.url}/{r}")
        assert set(urls[2:]) == {f"{server2.url}/{r}"} or set(urls[2:]) == {f"{server.url}/{r}"}
    assert sorted(set(urls)) == sorted([f"{server.url}/{r}", f"{server2.url}/{r}"])
    messages = dict(err.errors)
    assert "500" in messages[f"{server.url}/{r}"]
    assert "503" in messages[f"{server2.url}/{r}"]
    assert not (tmp_path / "x").exists()
    assert [n for n in os.listdir(tmp_path) if n.endswith(".part")] == []


@pytest.mark.parametrize("mode", MODES)
def test_all_mirrors_failed_collected_by_failfunc(mode, dead_url, server, tmp_path):
    server.defaults["status"] = 404
    got = []
    mg = MirrorGroup(URLGrabber(), [dead_url, server.url])
    grab(mode, mg, rel(100, "gone"), str(tmp_path / "gone"), failfunc=got.append)
    assert len(got) == 1
    assert got[0].exception.errno == 256
    assert [u for u, _ in got[0].exception.errors] == [f"{dead_url}/gen/100/gone", f"{server.url}/gen/100/gone"]


def test_blocking_tries_mirrors_in_list_order(make_server, tmp_path):
    a, b, c = make_server(status=500), make_server(status=500), make_server()
    seen = Recorder()
    mg = MirrorGroup(URLGrabber(), [a.url, b.url, c.url], failure_callback=seen)
    mg.urlgrab(rel(100, "o"), str(tmp_path / "o"))
    assert [o.mirror for o in seen.calls] == [a.url, b.url]
    assert (a.requests, b.requests, c.requests) == (1, 1, 1)


# -- failure actions -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_fail_action_from_callback_stops_at_once(mode, server, server2, tmp_path):
    server.defaults["status"] = 404
    seen = Recorder(action={"fail": 1})
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], failure_callback=seen)
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, rel(100, "nf"), str(tmp_path / "nf"))
    assert info.value.errno == 14
    assert info.value.code == 404
    assert server2.requests == 0
    assert len(seen.calls) == 1


@pytest.mark.parametrize("mode", MODES)
def test_instance_default_action_fail(mode, server, server2, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"fail": 1})
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, rel(100, "d"), str(tmp_path / "d"))
    assert info.value.code == 500
    assert server2.requests == 0


@pytest.mark.parametrize("mode", MODES)
def test_action_precedence(mode, server, server2, tmp_path):
    """instance default_action < per-call default_action < failure_callback's return."""
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"fail": 1})
    # the per-call default_action overrides the instance's
    grab(mode, mg, rel(100, "p1"), str(tmp_path / "p1"), default_action={"fail": 0})
    assert_gen(tmp_path / "p1", 100, "p1")
    # what the callback returns overrides the per-call default_action
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"fail": 1})
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, rel(100, "p2"), str(tmp_path / "p2"), default_action={"fail": 0},
             failure_callback=lambda obj: {"fail": 1})
    assert info.value.errno == 14 and info.value.code == 500
    assert server2.by_path["/gen/100/p2"] == 0


@pytest.mark.parametrize("mode", MODES)
def test_actions_are_merged_not_replaced(mode, server, server2, tmp_path):
    """A per-call default_action adds to the instance's: remove_master still applies."""
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"remove_master": 1})
    grab(mode, mg, rel(100, "mg1"), str(tmp_path / "mg1"), default_action={"increment_master": 0})
    del server.defaults["status"]
    grab(mode, mg, rel(100, "mg2"), str(tmp_path / "mg2"))
    assert server.requests == 1
    assert server2.by_path["/gen/100/mg2"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_per_call_callback_and_action_are_group_level(mode, server, server2, tmp_path):
    """Per-call failure_callback/default_action belong to the group: the grabber never sees them."""
    server.defaults["status"] = 500
    grabber_seen = Recorder()
    call_seen = Recorder()
    mg = MirrorGroup(URLGrabber(failure_callback=grabber_seen), [server.url, server2.url])
    grab(mode, mg, rel(100, "pc"), str(tmp_path / "pc"),
         failure_callback=call_seen, default_action={"remove": 1})
    assert_gen(tmp_path / "pc", 100, "pc")
    # called once per failed attempt, as the group's callback (with .mirror)
    assert len(call_seen.calls) == 1
    assert call_seen.calls[0].mirror == server.url
    # the grabber's own failure_callback still runs once per failed attempt
    assert len(grabber_seen.calls) == 1


@pytest.mark.parametrize("mode", MODES)
def test_failure_callback_tuple_form(mode, server, server2, tmp_path):
    server.defaults["status"] = 500
    seen = []

    def cb(obj, tag, key=None):
        seen.append((obj.mirror, tag, key))

    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], failure_callback=(cb, ("t",), {"key": 7}))
    grab(mode, mg, rel(100, "t"), str(tmp_path / "t"))
    assert seen == [(server.url, "t", 7)]


@pytest.mark.parametrize("mode", MODES)
def test_remove_false_keeps_the_mirror_for_this_download(mode, server, server2, tmp_path):
    """Both mirrors fail a file once: only keeping them lets the download succeed.
    (501: a batch waits out a 500 on the last mirror; a 501 will not change.)"""
    for s in (server, server2):
        s.defaults.update(fail_first=1, fail_status=501)
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url])
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, rel(100, "k1"), str(tmp_path / "k1"))
    assert info.value.errno == 256
    grab(mode, mg, rel(100, "k2"), str(tmp_path / "k2"), default_action={"remove": 0})
    assert_gen(tmp_path / "k2", 100, "k2")


def test_increment_false_retries_the_same_mirror_blocking(server, server2, tmp_path):
    server.defaults.update(fail_first=1, fail_status=500)
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url])
    mg.urlgrab(rel(100, "i"), str(tmp_path / "i"), default_action={"remove": 0, "increment": 0})
    assert_gen(tmp_path / "i", 100, "i")
    assert server.by_path["/gen/100/i"] == 2
    assert server2.requests == 0


@pytest.mark.parametrize("mode", MODES)
def test_increment_master_moves_the_start_for_future_downloads(mode, server, server2, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url])
    grab(mode, mg, rel(100, "m1"), str(tmp_path / "m1"))
    assert (server.requests, server2.requests) == (1, 1)
    del server.defaults["status"]  # the first mirror works again
    grab(mode, mg, rel(100, "m2"), str(tmp_path / "m2"))
    assert_gen(tmp_path / "m2", 100, "m2")
    assert server.requests == 1, "increment_master (default 1): the next download starts at the next mirror"
    assert server2.by_path["/gen/100/m2"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_increment_master_off_keeps_the_start(mode, server, server2, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"increment_master": 0})
    grab(mode, mg, rel(100, "n1"), str(tmp_path / "n1"))
    del server.defaults["status"]
    grab(mode, mg, rel(100, "n2"), str(tmp_path / "n2"))
    assert server.by_path["/gen/100/n2"] == 1
    assert server2.by_path["/gen/100/n2"] == 0


@pytest.mark.parametrize("mode", MODES)
def test_remove_master_drops_the_mirror_for_future_downloads(mode, server, server2, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"remove_master": 1})
    grab(mode, mg, rel(100, "r1"), str(tmp_path / "r1"))
    del server.defaults["status"]
    for name in ("r2", "r3", "r4"):
        grab(mode, mg, rel(100, name), str(tmp_path / name))
        assert_gen(tmp_path / name, 100, name)
    assert server.requests == 1
    assert server2.requests == 4


@pytest.mark.parametrize("mode", MODES)
def test_remove_master_of_every_mirror_leaves_an_empty_group(mode, server, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url], default_action={"remove_master": 1})
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, rel(100, "e1"), str(tmp_path / "e1"))
    assert info.value.errno == 256
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, rel(100, "e2"), str(tmp_path / "e2"))
    assert info.value.errno == 256
    assert server.requests == 1


# -- mirror entries ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_mirror_dict_grabber_and_kwargs(mode, server, server2, tmp_path):
    """A dict mirror uses its own grabber, and its kwargs override that grabber's options."""
    server.defaults["status"] = 500
    g_b = URLGrabber(user_agent="ua-of-b", http_headers=(("X-Which", "grabber"),))
    mirrors = [
        {"mirror": server.url, "kwargs": {"http_headers": (("X-Which", "a"),)}},
        {"mirror": server2.url, "grabber": g_b, "kwargs": {"http_headers": (("X-Which", "b"),)}},
    ]
    mg = MirrorGroup(URLGrabber(user_agent="ua-of-group"), mirrors)
    grab(mode, mg, rel(100, "dm"), str(tmp_path / "dm"))
    assert_gen(tmp_path / "dm", 100, "dm")
    (a_entry,) = server.log
    (b_entry,) = server2.log
    assert a_entry["headers"]["x-which"] == "a"
    assert a_entry["headers"]["user-agent"] == "ua-of-group"
    assert b_entry["headers"]["x-which"] == "b"
    assert b_entry["headers"]["user-agent"] == "ua-of-b"


def test_bytes_mirror_and_relative_url(server, tmp_path):
    mg = MirrorGroup(URLGrabber(), [server.url.encode()])
    mg.urlgrab(rel(100, "by").encode(), str(tmp_path / "by"))
    assert_gen(tmp_path / "by", 100, "by")


# -- urlread / urlopen (blocking only) -----------------------------------------


def test_urlread_fails_over(dead_url, make_server):
    bad = make_server(status=503)
    good = make_server()
    mg = MirrorGroup(URLGrabber(), [dead_url, bad.url, good.url])
    assert mg.urlread(rel(3000, "rd")) == gen_bytes(3000, "rd")
    assert bad.requests == 1


def test_urlread_all_fail(dead_url, server):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [dead_url, server.url])
    with pytest.raises(URLGrabError) as info:
        mg.urlread(rel(100, "rf"))
    assert info.value.errno == 256
    assert len(info.value.errors) == 2


def test_urlopen_fails_over(make_server, dead_url):
    bad = make_server(status=500)
    good = make_server()
    mg = MirrorGroup(URLGrabber(), [dead_url, bad.url, good.url])
    fo = mg.urlopen(rel(200_000, "op"))
    try:
        assert fo.read() == gen_bytes(200_000, "op")
    finally:
        fo.close()
    assert bad.requests == 1


# -- random start / order ------------------------------------------------------


def _first_mirror_counts(servers):
    return [s.requests for s in servers]


def test_mg_random_start_spreads_first_mirror(make_server, tmp_path):
    servers = [make_server() for _ in range(3)]
    urls = [s.url for s in servers]
    random.seed(12345)
    for i in range(30):
        mg = MGRandomStart(URLGrabber(), urls)
        mg.urlgrab(rel(50, f"rs{i}"), str(tmp_path / f"rs{i}"))
    counts = _first_mirror_counts(servers)
    assert sum(counts) == 30  # healthy mirrors: one request per download
    assert sum(1 for c in counts if c) >= 2, counts


def test_mg_random_order_spreads_first_mirror(make_server, tmp_path):
    servers = [make_server() for _ in range(3)]
    random.seed(54321)
    mg = MGRandomOrder(URLGrabber(), [s.url for s in servers])
    for i in range(30):
        mg.urlgrab(rel(50, f"ro{i}"), str(tmp_path / f"ro{i}"))
    counts = _first_mirror_counts(servers)
    assert sum(counts) == 30
    assert sum(1 for c in counts if c) >= 2, counts


def test_mg_random_order_fails_over(make_server, tmp_path):
    bad = make_server(status=500)
    good = make_server()
    random.seed(7)
    mg = MGRandomOrder(URLGrabber(), [bad.url, good.url], default_action={"remove_master": 0})
    for i in range(10):
        mg.urlgrab(rel(50, f"rof{i}"), str(tmp_path / f"rof{i}"))
        assert_gen(tmp_path / f"rof{i}", 50, f"rof{i}")
    assert good.requests == 10
    assert 0 < bad.requests < 10  # tried first only when the shuffle put it first


# ---------------------------------------------------------------------------
# failover for each failure kind, both modes
# ---------------------------------------------------------------------------

SIZE = 60_000
NFILES = 6


def _bad_mirror(kind, make_server, dead_url):
    """(bad server or None, bad base URL, extra per-call kwargs) for a mirror failing in ``kind``."""
    if kind == "refused":
        return None, dead_url, {}
    kw = {}
    if kind == "stall_headers":
        srv, kw = make_server(stall_headers=3), {"timeout": 0.5}
    elif kind == "stall_body":
        srv, kw = make_server(stall_at=20_000, stall=3), {"timeout": 0.5}
    elif kind == "status500":
        srv = make_server(status=500)
    elif kind == "status404":
        srv = make_server(status=404)
    elif kind == "truncate":
        srv = make_server(truncate=25_000)
    elif kind == "drop":
        srv = make_server(drop=1)
    elif kind == "refuse_after_accept":
        srv = make_server()
        srv.refuse = True
    elif kind == "corrupt":
        srv = make_server(corrupt=1)
    else:
        raise AssertionError(kind)
    return srv, srv.url, kw


KINDS = ("refused", "stall_headers", "stall_body", "status500", "status404", "truncate", "drop",
         "refuse_after_accept", "corrupt")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_failover_for_each_failure_kind(kind, mode, make_server, dead_url, tmp_path):
    bad_server, bad, kw = _bad_mirror(kind, make_server, dead_url)
    good = make_server()
    attempts = Recorder()
    mg = MirrorGroup(URLGrabber(failure_callback=attempts), [bad, good.url])
    names = [f"{kind}{i}" for i in range(NFILES)]
    if mode == "batch":
        urlgrabber.parallel_begin(4)
        for n in names:
            mg.urlgrab(rel(SIZE, n), str(tmp_path / n), async_=True, checkfunc=checker(SIZE, n), **kw)
        results = urlgrabber.parallel_end()
        assert all(r.ok for r in results), [r.exception for r in results]
    else:
        for n in names:
            mg.urlgrab(rel(SIZE, n), str(tmp_path / n), checkfunc=checker(SIZE, n), **kw)
    for n in names:
        assert_gen(tmp_path / n, SIZE, n)
    if bad_server is None:
        assert any(u.startswith(bad) for u in attempts.urls()), "the bad mirror was never tried"
    else:
        assert bad_server.connections > 0, "the bad mirror was never tried"
    assert [n for n in os.listdir(tmp_path) if n.endswith(".part")] == []


# -- resume across mirrors ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_resume_on_the_next_mirror_after_a_short_body(mode, make_server, tmp_path):
    size, cut = 300_000, 100_000
    first = make_server(truncate=cut)
    second = make_server()
    mg = MirrorGroup(URLGrabber(), [first.url, second.url])
    grab(mode, mg, rel(size, "res"), str(tmp_path / "res"))
    assert_gen(tmp_path / "res", size, "res")
    (entry,) = [e for e in second.log if e["path"] == f"/gen/{size}/res"]
    assert entry["range"] == f"bytes={cut}-"
    assert entry["status"] == 206
    assert entry["body_bytes"] == size - cut < size


@pytest.mark.parametrize("mode", MODES)
def test_resume_on_a_mirror_that_ignores_range_restarts(mode, make_server, tmp_path):
    size, cut = 300_000, 100_000
    first = make_server(truncate=cut)
    second = make_server(ignore_range=1)
    mg = MirrorGroup(URLGrabber(), [first.url, second.url])
    grab(mode, mg, rel(size, "ign"), str(tmp_path / "ign"))
    assert_gen(tmp_path / "ign", size, "ign")
    (entry,) = [e for e in second.log if e["path"] == f"/gen/{size}/ign"]
    assert entry["range"] == f"bytes={cut}-"
    assert entry["status"] == 200
    assert entry["body_bytes"] == size


def test_resume_in_a_batch_of_many(make_server, tmp_path):
    size, cut = 200_000, 50_000
    first = make_server(truncate=cut)
    second = make_server()
    mg = MirrorGroup(URLGrabber(), [mirror(first, max_connections=3), mirror(second, max_connections=3)])
    names = [f"rb{i}" for i in range(8)]
    fetch("batch", mg, [(rel(size, n), tmp_path / n) for n in names], limit=6)
    for n in names:
        assert_gen(tmp_path / n, size, n)
    truncated = {e["path"] for e in first.log if e["body_bytes"] == cut}
    for e in second.log:
        if e["path"] in truncated:
            assert e["range"] == f"bytes={cut}-"
            assert e["body_bytes"] == size - cut


# ---------------------------------------------------------------------------
# batch mode: load spreading and mirror health
# ---------------------------------------------------------------------------


def test_load_is_spread_within_per_mirror_limits(make_server, tmp_path):
    servers = [make_server(latency=0.05) for _ in range(3)]
    mg = MirrorGroup(URLGrabber(), [mirror(s, max_connections=3) for s in servers])
    names = [f"ls{i}" for i in range(60)]
    results = fetch("batch", mg, [(rel(4000, n), tmp_path / n) for n in names], limit=9)
    assert all(r.ok for r in results)
    for n in names:
        assert_gen(tmp_path / n, 4000, n)
    peaks = [s.peak_inflight for s in servers]
    counts = [s.requests for s in servers]
    assert sum(counts) == 60
    assert all(p <= 3 for p in peaks), peaks
    assert all(c > 0 for c in counts), counts
    assert all(p >= 2 for p in peaks), peaks


def test_default_per_mirror_limit_is_the_group_grabbers_max_connections(make_server, tmp_path):
    servers = [make_server(latency=0.03) for _ in range(2)]
    mg = MirrorGroup(URLGrabber(max_connections=2), [s.url for s in servers])
    names = [f"dl{i}" for i in range(20)]
    fetch("batch", mg, [(rel(1000, n), tmp_path / n) for n in names], limit=10)
    assert all(s.peak_inflight <= 2 for s in servers), [s.peak_inflight for s in servers]
    assert all(s.requests > 0 for s in servers)


def test_dead_mirror_costs_only_a_few_attempts(make_server, dead_url, tmp_path):
    good = [make_server(), make_server()]
    attempts = Recorder()
    mirrors = [{"mirror": dead_url, "kwargs": {"max_connections": 3}}] + [mirror(s, max_connections=3) for s in good]
    mg = MirrorGroup(URLGrabber(failure_callback=attempts), mirrors)
    names = [f"dm{i}" for i in range(200)]
    results = fetch("batch", mg, [(rel(200, n), tmp_path / n) for n in names], limit=9)
    assert all(r.ok for r in results)
    dead_hits = [u for u in attempts.urls() if u.startswith(dead_url)]
    assert 0 < len(dead_hits) < 10, len(dead_hits)
    assert sum(s.requests for s in good) == 200
    for n in names[::17]:
        assert_gen(tmp_path / n, 200, n)


def test_refusing_mirror_costs_only_a_few_attempts(make_server, tmp_path):
    bad = make_server()
    bad.refuse = True
    good = [make_server(), make_server()]
    mirrors = [mirror(s, max_connections=3) for s in (bad, *good)]
    mg = MirrorGroup(URLGrabber(), mirrors)
    names = [f"rm{i}" for i in range(200)]
    results = fetch("batch", mg, [(rel(200, n), tmp_path / n) for n in names], limit=9)
    assert all(r.ok for r in results)
    assert 0 < bad.connections < 10, bad.connections


def test_retry_after_503_pauses_the_mirror(make_server, tmp_path):
    """A 503 with Retry-After: 1 rests the mirror: it gets no new request for a second.

    The mirror recovers right after its first 503, so only the pause (not a
    "dead mirror" verdict) keeps it idle.
    """
    busy = make_server(latency=0.05, status=503, retry_after=1)
    others = [make_server(latency=0.05), make_server(latency=0.05)]
    t503 = []

    def on_fail(obj):
        if obj.url.startswith(busy.url):
            t503.append(time.monotonic())
            busy.defaults.pop("status", None)

    served_by_busy = []

    def check(obj):
        if obj.url.startswith(busy.url):
            served_by_busy.append(time.monotonic())

    mirrors = [mirror(busy, max_connections=1)] + [mirror(s, max_connections=2) for s in others]
    mg = MirrorGroup(URLGrabber(failure_callback=on_fail), mirrors)
    names = [f"ra{i}" for i in range(80)]
    results = fetch("batch", mg, [(rel(500, n), tmp_path / n) for n in names], limit=5, checkfunc=check)
    assert all(r.ok for r in results)
    for n in names[::9]:
        assert_gen(tmp_path / n, 500, n)
    assert len(t503) == 1
    assert served_by_busy == [] or min(served_by_busy) - t503[0] >= 0.9, \
        f"busy mirror used {min(served_by_busy) - t503[0]:.2f}s after its 503 with Retry-After: 1"
    # without the pause it would take about a fifth of the files
    assert busy.requests <= 1 + len(served_by_busy) < 16


def test_overloaded_mirror_gets_fewer_connections(make_server, tmp_path):
    """503 without Retry-After on some requests: the mirror's connection limit shrinks."""
    flaky = make_server(latency=0.05, fail_first=1, fail_status=503)
    steady = make_server(latency=0.05)
    mg = MirrorGroup(URLGrabber(), [mirror(flaky, max_connections=4), mirror(steady, max_connections=4)])
    names = [f"ov{i}" for i in range(40)]
    results = fetch("batch", mg, [(rel(500, n), tmp_path / n) for n in names], limit=8)
    assert all(r.ok for r in results)
    assert steady.requests > flaky.requests


# ---------------------------------------------------------------------------
# yum-style use: a MirrorGroup per repository
# ---------------------------------------------------------------------------


def _yum_callback(log):
    def cb(obj):
        code = getattr(obj.exception, "code", None)
        log.append((obj.mirror, obj.relative_url, code))
        if code in (403, 404):
            return {"fail": True}
        return {"remove": False}
    return cb


def _yum_repos(make_server, log):
    r1 = [make_server(fail_first=1, fail_status=503), make_server()]
    r2 = [make_server(), make_server(latency=0.02)]
    repos = {}
    for name, servers in (("base", r1), ("updates", r2)):
        mirrors = [{"mirror": s.url, "kwargs": {"max_connections": 2}} for s in servers]
        repos[name] = (MirrorGroup(URLGrabber(), mirrors, failure_callback=_yum_callback(log)), servers)
    return repos


def test_yum_style_batch_with_failfunc(make_server, tmp_path):
    log = []
    repos = _yum_repos(make_server, log)
    failed = []
    urlgrabber.parallel_begin(6)
    expected = []
    for repo, (mg, _) in repos.items():
        for i in range(10):
            n = f"{repo}-{i}.rpm"
            dest = str(tmp_path / n)
            assert mg.urlgrab(rel(20_000 + i, n), dest, failfunc=failed.append, **{"async": True}) == dest
            expected.append((n, 20_000 + i))
    mg_updates, updates_servers = repos["updates"]
    mg_updates.urlgrab("Packages/missing.rpm", str(tmp_path / "missing.rpm"), failfunc=failed.append,
                       **{"async": True})
    results = urlgrabber.parallel_end()
    assert len(results) == 21
    for n, size in expected:
        assert_gen(tmp_path / n, size, n)
    assert len(failed) == 1
    exc = failed[0].exception
    assert exc.errno == 14 and exc.code == 404, exc  # 'fail': the 404 itself, not errno 256
    assert not (tmp_path / "missing.rpm").exists()
    # 'fail' stopped at the first 404: the other mirror was never asked
    assert sum(s.by_path["/Packages/missing.rpm"] for s in updates_servers) == 1
    # the transient 503s were kept (remove False) and recovered from
    assert any(code == 503 for _, _, code in log)
    for s in repos["base"][1] + updates_servers:
        assert s.peak_inflight <= 2


def test_yum_style_batch_default_failfunc_raises(make_server, tmp_path):
    log = []
    repos = _yum_repos(make_server, log)
    urlgrabber.parallel_begin(6)
    for repo, (mg, _) in repos.items():
        for i in range(4):
            mg.urlgrab(rel(1000, f"{repo}{i}"), str(tmp_path / f"{repo}{i}"), **{"async": True})
    repos["base"][0].urlgrab("nope/missing.rpm", str(tmp_path / "missing.rpm"), **{"async": True})
    with pytest.raises(URLGrabError) as info:
        urlgrabber.parallel_end()
    assert info.value.code == 404
    assert info.value.errno == 14
    assert [n for n in os.listdir(tmp_path) if n.endswith(".part")] == []


# ---------------------------------------------------------------------------
# slow tail
# ---------------------------------------------------------------------------


class _TooSlow(Exception):
    pass


class _Deadline:
    """A progress meter that stops the batch (by raising) once ``seconds`` have passed."""

    def __init__(self, seconds):
        self.deadline = time.monotonic() + seconds

    def start(self, *args, **kwargs):
        pass

    def update(self, *args, **kwargs):
        if time.monotonic() > self.deadline:
            raise _TooSlow()

    def end(self, *args, **kwargs):
        pass

    def failure(self, *args, **kwargs):
        pass


@pytest.mark.parametrize("fast_ignores_range", [False, True])
def test_slow_tail_moves_to_an_idle_faster_mirror(fast_ignores_range, make_server, tmp_path):
    """Once the queue is empty, a transfer crawling on a slow mirror is restarted for
    its remaining range on an idle faster one (which may answer the whole file instead)."""
    size, bw = 2_000_000, 20_000  # 100 s on the slow mirror alone
    slow = make_server(bw=bw)
    fast = make_server(ignore_range=int(fast_ignores_range))
    mg = MirrorGroup(URLGrabber(), [mirror(slow, max_connections=2), mirror(fast, max_connections=2)])
    big = rel(size, "big")
    bound = min(size / bw / 2, 15.0)
    urlgrabber.parallel_begin(4)
    checked = []

    def check(obj):
        checked.append(obj.url)
        checker(size, "big")(obj)

    mg.urlgrab(big, str(tmp_path / "big"), async_=True, progress_obj=_Deadline(bound), checkfunc=check)
    for i in range(5):
        mg.urlgrab(rel(2000, f"st{i}"), str(tmp_path / f"st{i}"), async_=True)
    t0 = time.monotonic()
    try:
        urlgrabber.parallel_end()
    except _TooSlow:
        pytest.fail(f"the 2 MB file still crawled on the slow mirror after {bound:.0f}s "
                    f"(slow-tail restart on the idle fast mirror missing)")
    elapsed = time.monotonic() - t0
    # The race starts once the slow attempt is _HEDGE_MIN_AGE (0.5 s) old, checked
    # every 0.25 s; then 2 MB come over loopback (~0.6 s in all).  The window
    # itself is checked through `cut` below; this is the batch's end to end.
    assert elapsed < 2.0, f"the batch took {elapsed:.1f}s"
    assert_gen(tmp_path / "big", size, "big")
    assert len(checked) == 1, checked  # checkfunc ran once, on the whole assembled file
    for i in range(5):
        assert_gen(tmp_path / f"st{i}", 2000, f"st{i}")
    # The slow mirror paces 2000-byte pieces every 0.1 s from the start, and the
    # race may begin only after 0.5 s: it has always sent something by then.
    slow_entries = [e for e in slow.log if e["path"] == "/" + big]
    assert len(slow_entries) == 1, slow_entries
    assert slow_entries[0]["range"] is None  # the first attempt asked for the whole file
    slow_bytes = slow_entries[0]["body_bytes"]
    assert 0 < slow_bytes < size, f"the slow mirror sent {slow_bytes} bytes"
    fast_entries = [e for e in fast.log if e["path"] == "/" + big]
    assert len(fast_entries) == 1, f"the big file was not raced once on the fast mirror: {fast_entries}"
    entry = fast_entries[0]
    rng = entry["range"] or ""
    assert rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit(), \
        f"the fast mirror was not asked for the remaining range: {rng!r}"
    cut = int(rng[6:-1])
    # the race continues where the slow attempt's written bytes end: not at 0, and
    # never past what the slow mirror actually sent
    assert 0 < cut <= slow_bytes, (cut, slow_bytes)
    # ... and the fast mirror sent just the rest (or, ignoring Range, the whole file)
    assert entry["body_bytes"] == (size if fast_ignores_range else size - cut), entry
    # The race began within 0.9 s of slow-mirror time (bw bytes a second): the
    # window is 0.5 s plus at most one 0.25 s watch tick; a doubled window is >= 1 s.
    assert cut < 0.9 * bw, f"the race began only after {cut / bw:.2f}s on the slow mirror"


def test_batch_with_every_mirror_unreachable_fails_promptly(make_server, dead_url, tmp_path):
    """Each file ends with errno 256 without the batch crawling at one attempt per second."""
    refusing = make_server()
    refusing.refuse = True
    mg = MirrorGroup(URLGrabber(), [dead_url, refusing.url])
    failed = []
    urlgrabber.parallel_begin(6)
    for i in range(12):
        mg.urlgrab(rel(100, f"ud{i}"), str(tmp_path / f"ud{i}"), async_=True, failfunc=failed.append)
    t0 = time.monotonic()
    urlgrabber.parallel_end()
    elapsed = time.monotonic() - t0
    assert len(failed) == 12
    assert {f.exception.errno for f in failed} == {256}
    assert elapsed < 4.0, f"12 files over 2 unreachable mirrors took {elapsed:.1f}s"
    assert os.listdir(tmp_path) == []


def test_urlread_resumes_on_the_next_mirror(make_server):
    size, cut = 300_000, 120_000
    first, second = make_server(truncate=cut), make_server()
    mg = MirrorGroup(URLGrabber(), [first.url, second.url])
    assert mg.urlread(rel(size, "rr")) == gen_bytes(size, "rr")
    (entry,) = second.log
    assert entry["range"] == f"bytes={cut}-"


def test_urlopen_stream_survives_a_mirror_cut_mid_body(make_server):
    size, cut = 300_000, 120_000
    first, second = make_server(truncate=cut), make_server()
    mg = MirrorGroup(URLGrabber(), [first.url, second.url])
    with mg.urlopen(rel(size, "ro")) as fo:
        assert fo.read() == gen_bytes(size, "ro")
    (entry,) = second.log
    assert entry["range"] == f"bytes={cut}-"


@pytest.mark.parametrize("mode", MODES)
def test_failure_callback_raising_stops_with_that_error(mode, server, server2, tmp_path):
    server.defaults["status"] = 500

    def cb(obj):
        raise URLGrabError(15, "stop, says the callback")

    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], failure_callback=cb)
    with pytest.raises(URLGrabError) as info:
        grab(mode, mg, rel(100, "cr"), str(tmp_path / "cr"))
    assert info.value.errno == 15
    assert server2.requests == 0


@pytest.mark.parametrize("mode", MODES)
def test_per_mirror_timeout_from_kwargs(mode, make_server, tmp_path):
    """A mirror's own kwargs (here ``timeout``) apply to the attempts on that mirror."""
    stalled = make_server(stall_headers=4)
    good = make_server()
    mg = MirrorGroup(URLGrabber(timeout=60), [mirror(stalled, timeout=0.5), good.url])
    t0 = time.monotonic()
    grab(mode, mg, rel(1000, "pt"), str(tmp_path / "pt"))
    assert time.monotonic() - t0 < 1.5  # the stalled mirror's own 0.5 s window, not the grabber's 60 s
    assert_gen(tmp_path / "pt", 1000, "pt")
    assert stalled.requests == 1


def test_batch_starts_sized_mirror_requests_largest_first(server, server2, tmp_path):
    """A MirrorGroup batch starts the files whose size is given largest first (the
    rest after them, as queued); results stay in queue order, and other requests
    keep theirs."""
    mg = MirrorGroup(URLGrabber(), [mirror(server, max_connections=1)])
    queued = [(1000, "s1"), (None, "u1"), (5000, "s5"), (3000, "s3"), (None, "u2"), (5000, "t5")]
    urlgrabber.parallel_begin(max_connections=1)
    for size, name in queued:
        kw = {} if size is None else {"size": size}
        mg.urlgrab(rel(size or 2000, name), str(tmp_path / name), async_=True, **kw)
        urlgrabber.urlgrab(f"{server2.url}/gen/100/p-{name}", str(tmp_path / f"p-{name}"), async_=True)
    results = urlgrabber.parallel_end()
    assert [os.path.basename(r.filename) for r in results] == [
        n for _, name in queued for n in (name, f"p-{name}")]
    assert all(r.ok for r in results)
    assert [e["path"].rsplit("/", 1)[1] for e in server.log] == ["s5", "t5", "s3", "s1", "u1", "u2"]
    assert [e["path"].rsplit("-", 1)[1] for e in server2.log] == [name for _, name in queued]
    for size, name in queued:
        assert_gen(tmp_path / name, size or 2000, name)
