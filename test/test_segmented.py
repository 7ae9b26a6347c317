"""Segmented downloads: one large file fetched as byte ranges over several connections.

A MirrorGroup batch splits a large file over idle mirrors; a single URL does
so only with ``segments=N``.  Each server paces every response (``bw``, a
per-connection cap) so the ranges overlap in time; the servers' request logs
show which ranges went where, and every file must come out byte-identical.
"""

from __future__ import annotations

import re

import pytest
from modes import listing, read
from util import gathered_replies, gen_bytes

import urlgrabber
from urlgrabber.grabber import URLGrabber, URLGrabError
from urlgrabber.mirror import MirrorGroup

SIZE = 3 * 1024 * 1024
MIN = 256 * 1024
BW = 3_000_000  # bytes/s per response: ~1 s for the whole file on one connection
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def rel(name: str, size: int = SIZE) -> str:
    return f"gen/{size}/{name}"


def group(servers, **opts) -> MirrorGroup:
    """Two connections per mirror, small segments."""
    opts.setdefault("min_segment", MIN)
    return MirrorGroup(URLGrabber(**opts), [{"mirror": s.url, "kwargs": {"max_connections": 2}}
                                            for s in servers])


def batch(mg, relative, dest, limit=6, **kw):
    urlgrabber.parallel_begin(limit)
    try:
        mg.urlgrab(relative, str(dest), async_=True, **kw)
    except BaseException:
        urlgrabber.parallel_end()
        raise
    return urlgrabber.parallel_end()


def ranges(server, status=206) -> list[tuple[int, int]]:
    """``(first, last)`` of each ranged request the server answered with ``status``."""
    out = []
    for e in server.log:
        m = _RANGE.fullmatch(e["range"] or "")
        if m and e["status"] == status:
            out.append((int(m.group(1)), int(m.group(2))))
    return out


class Meter:
    """A progress meter that records the size it was given and every update."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.size = None
        self.updates: list[int] = []
        self.ended = None
        self.stop_after = stop_after

    def start(self, filename=None, url=None, basename=None, size=None, now=None, text=None):
        self.size = size

    def update(self, amount_read, now=None):
        self.updates.append(amount_read)
        if self.stop_after is not None and amount_read >= self.stop_after:
            raise KeyboardInterrupt

    def end(self, amount_read, now=None):
        self.ended = amount_read


def test_ranges_spread_over_the_mirrors(make_server, tmp_path):
    servers = [make_server(bw=BW) for _ in range(3)]
    calls = []

    def check(obj):
        calls.append(read(obj.filename))

    meter = Meter()
    dest = tmp_path / "big"
    [res] = batch(group(servers), rel("spread"), dest, checkfunc=check, progress_obj=meter)
    assert res.ok and res.size == SIZE
    assert read(dest) == gen_bytes(SIZE, "spread")
    assert calls == [gen_bytes(SIZE, "spread")]  # checkfunc once, on the whole file
    assert listing(tmp_path) == ["big"]
    # the first request fetches from 0 without a Range; every mirror serves ranges
    first = [e for s in servers for e in s.log if e["range"] is None]
    assert len(first) == 1
    for s in servers:
        assert ranges(s), f"{s.url} served no range: {s.log}"
        assert s.peak_inflight <= 2  # each mirror's max_connections
    assert sum(s.peak_inflight for s in servers) >= 5  # the ranges ran at the same time
    # the ranges and the first request's head tile the file
    spans = sorted(r for s in servers for r in ranges(s))
    assert spans[-1][1] == SIZE - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:]))
    # the meter saw the total, and the bytes grew to it
    assert meter.size == SIZE
    assert meter.updates == sorted(meter.updates) and meter.updates[-1] == SIZE
    assert meter.ended == SIZE


def test_a_failing_range_is_fetched_elsewhere(make_server, tmp_path):
    """Mirror 2 cuts every body after 200 KB: what it wrote stays, the rest of each of
    its ranges comes from another mirror, from where it broke off."""
    cut = 200_000
    good, bad, other = make_server(bw=BW), make_server(bw=BW, truncate=cut), make_server(bw=BW)
    dest = tmp_path / "big"
    [res] = batch(group([good, bad, other]), rel("cut"), dest)
    assert res.ok
    assert read(dest) == gen_bytes(SIZE, "cut")
    failed = [(int(m.group(1)), int(m.group(2))) for e in bad.log
              for m in [_RANGE.fullmatch(e["range"] or "")] if m]
    assert failed, "the faulty mirror got no range"
    resumed = {a for s in (good, other) for a, _ in ranges(s)}
    for a, _b in failed:
        assert a + cut in resumed, f"range from {a} not resumed at {a + cut} elsewhere"
    assert listing(tmp_path) == ["big"]


@pytest.mark.parametrize("fault", [{"ignore_range": 1}, {"range_shift": 1000}])
def test_a_mirror_that_misplaces_ranges_is_not_trusted(make_server, tmp_path, fault):
    """A 200 to a range request, or another range than asked: nothing it sent is
    written, it gets no more ranges, and the file is whole and right."""
    servers = [make_server(bw=BW), make_server(bw=BW, **fault), make_server(bw=BW)]
    mg = group(servers)
    dest = tmp_path / "big"
    [res] = batch(mg, rel("liar"), dest)
    assert res.ok
    assert read(dest) == gen_bytes(SIZE, "liar")
    liar = servers[1]
    asked = [e for e in liar.log if e["range"]]
    assert len(asked) >= 1 and all(e["status"] == (200 if "ignore_range" in fault else 206) for e in asked)
    assert mg._state(mg.mirrors[1]).ranges is False
    assert ranges(servers[0]) and ranges(servers[2])


def test_work_moves_off_a_slow_mirror(make_server, tmp_path):
    """A slow mirror's range is split again when the fast ones finish theirs."""
    fast, slow = make_server(bw=BW), make_server(bw=BW // 12)
    dest = tmp_path / "big"
    [res] = batch(group([fast, slow], min_segment=64 * 1024), rel("steal"), dest, limit=4)
    assert res.ok
    assert read(dest) == gen_bytes(SIZE, "steal")
    first_share = SIZE // 4  # the first split gives each of 4 connections a quarter
    served = sum(b - a + 1 for a, b in ranges(slow))
    done = sum(e["body_bytes"] for e in slow.log)
    assert served >= 1 and done < first_share, (served, done)


def test_ctrl_c_leaves_nothing_behind(make_server, tmp_path):
    servers = [make_server(bw=BW) for _ in range(3)]
    dest = tmp_path / "big"
    dest.write_bytes(b"old content")
    with pytest.raises(KeyboardInterrupt):
        batch(group(servers), rel("ctrlc"), dest, progress_obj=Meter(stop_after=SIZE // 2))
    assert listing(tmp_path) == ["big"]
    assert read(dest) == b"old content"


def test_ctrl_c_single_host_blocking(server, tmp_path):
    server.defaults["bw"] = BW
    dest = tmp_path / "big"
    dest.write_bytes(b"old content")
    g = URLGrabber(segments=4, min_segment=MIN)
    with pytest.raises(KeyboardInterrupt):
        g.urlgrab(f"{server.url}/{rel('ctrlc1')}", str(dest), progress_obj=Meter(stop_after=SIZE // 2))
    assert listing(tmp_path) == ["big"]
    assert read(dest) == b"old content"
    assert len(server.log) >= 2  # it was split when interrupted


@pytest.mark.parametrize("mode", ["blocking", "batch"])
def test_single_host_option(server, tmp_path, mode):
    """``segments=4``: up to 4 connections to one host; the default is one."""
    url = f"{server.url}/{rel('single')}"
    g = URLGrabber(min_segment=MIN)
    g.urlgrab(url, str(tmp_path / "one"))
    assert [e["range"] for e in server.log] == [None]
    server.reset_stats()
    server.defaults["bw"] = BW
    dest = tmp_path / "four"
    if mode == "blocking":
        g.urlgrab(url, str(dest), segments=4)
    else:
        urlgrabber.parallel_begin()
        g.urlgrab(url, str(dest), segments=4, async_=(server.url, 4))
        [res] = urlgrabber.parallel_end()
        assert res.ok
    assert read(dest) == gen_bytes(SIZE, "single")
    assert read(tmp_path / "one") == gen_bytes(SIZE, "single")
    assert len(ranges(server)) == 3
    assert server.peak_inflight == 4
    assert len({e["conn"] for e in server.log}) == 4


def test_single_host_that_ignores_ranges(make_server, tmp_path):
    """The ranges go back to the first request, which fetches the whole body."""
    server = make_server(bw=BW, ignore_range=1)
    dest = tmp_path / "big"
    size = 4 * MIN
    URLGrabber(segments=4, min_segment=MIN).urlgrab(f"{server.url}/{rel('whole', size)}", str(dest))
    assert read(dest) == gen_bytes(size, "whole")
    assert listing(tmp_path) == ["big"]
    first = server.log[0]
    assert first["range"] is None and first["body_bytes"] == size
    assert len(server.log) >= 2  # it did try ranges


def test_small_files_and_limits(server, tmp_path):
    g = URLGrabber(segments=4, min_segment=MIN)
    small = 2 * MIN - 1
    g.urlgrab(f"{server.url}/{rel('small', small)}", str(tmp_path / "small"))
    assert [e["range"] for e in server.log] == [None]
    assert read(tmp_path / "small") == gen_bytes(small, "small")
    with pytest.raises(URLGrabError) as info:
        g.urlgrab(f"{server.url}/{rel('big')}", str(tmp_path / "big"), size=SIZE - 1)
    assert info.value.errno == 14
    assert listing(tmp_path) == ["small"]
    # a throttled download stays on one connection: the cap is for the whole file
    server.reset_stats()
    g.urlgrab(f"{server.url}/{rel('slow', 4 * MIN)}", str(tmp_path / "slow"), throttle=50_000_000)
    assert [e["range"] for e in server.log] == [None]


def test_a_failing_range_fails_a_single_url_without_retry(make_server, tmp_path):
    """One URL, no retries: a broken range fails the download as a broken body would."""
    server = make_server(bw=BW, truncate=SIZE // 5)
    dest = tmp_path / "big"
    with pytest.raises(URLGrabError) as info:
        URLGrabber(segments=3, min_segment=MIN).urlgrab(f"{server.url}/{rel('fail')}", str(dest))
    assert info.value.errno == 14
    assert listing(tmp_path) == []


@pytest.mark.parametrize("value", ["x", -1, 1.5])
def test_option_values(value):
    for name in ("segments", "min_segment"):
        with pytest.raises(URLGrabError) as info:
            URLGrabber(**{name: value})
        assert info.value.errno == 1
    assert URLGrabber(segments=3, min_segment=4096).opts.segments == 3


def test_blocking_mirror_group_splits_on_its_mirror_only_when_asked(make_server, tmp_path):
    """Blocking calls keep the classic hooks (one mirror at a time): with
    ``segments=3`` the ranges go to that mirror; by default one connection."""
    servers = [make_server(), make_server()]
    mg = group(servers)
    mg.urlgrab(rel("mg1"), str(tmp_path / "one"))
    assert [e["range"] for e in servers[0].log] == [None] and not servers[1].log
    servers[0].reset_stats()
    servers[0].defaults["bw"] = BW
    mg.urlgrab(rel("mg3"), str(tmp_path / "three"), segments=3)
    assert read(tmp_path / "three") == gen_bytes(SIZE, "mg3")
    assert len(ranges(servers[0])) == 2 and not servers[1].log


def test_a_plain_url_retries_a_failed_range(make_server, tmp_path):
    """With retry, a range cut short is fetched again from where it broke off."""
    server = make_server(bw=BW, truncate=SIZE // 5)
    dest = tmp_path / "big"
    g = URLGrabber(segments=3, min_segment=MIN, retry=20, retrycodes=[14])
    g.urlgrab(f"{server.url}/{rel('again')}", str(dest))
    assert read(dest) == gen_bytes(SIZE, "again")
    assert listing(tmp_path) == ["big"]


def test_checkfunc_rejects_once_then_the_file_is_fetched_again(make_server, tmp_path):
    servers = [make_server(bw=BW) for _ in range(3)]
    seen = []

    def check(obj):
        seen.append(read(obj.filename))
        if len(seen) == 1:
            raise URLGrabError(-1, "not this time")

    dest = tmp_path / "big"
    [res] = batch(group(servers, retry=2), rel("again"), dest, checkfunc=check)
    assert res.ok
    assert seen == [gen_bytes(SIZE, "again")] * 2
    assert read(dest) == seen[0] and listing(tmp_path) == ["big"]
    assert sum(len(ranges(s)) for s in servers) >= 6  # split both times


def test_a_mirror_that_goes_down_mid_way(make_server, tmp_path):
    servers = [make_server(bw=BW) for _ in range(3)]
    meter = Meter()
    down = []

    def update(amount_read, now=None):
        if amount_read >= SIZE // 4 and not down:
            down.append(amount_read)
            servers[1].go_down(30)  # its connections are reset, new ones refused
    meter.update = update
    dest = tmp_path / "big"
    [res] = batch(group(servers), rel("down"), dest, progress_obj=meter)
    assert res.ok and down
    assert read(dest) == gen_bytes(SIZE, "down") and listing(tmp_path) == ["big"]


def test_no_mirror_serves_ranges(make_server, tmp_path):
    """Every mirror answers ranges with 200: the file still arrives whole and right."""
    servers = [make_server(bw=BW, ignore_range=1) for _ in range(3)]
    dest = tmp_path / "big"
    size = 4 * MIN
    [res] = batch(group(servers), rel("noranges", size), dest)
    assert res.ok
    assert read(dest) == gen_bytes(size, "noranges") and listing(tmp_path) == ["big"]
    assert sum(len(s.log) for s in servers) >= 2  # it did try ranges


def test_a_size_too_small_to_split_is_never_planned(make_server, tmp_path, monkeypatch):
    # the caller's ``size`` caps the file: below two segments it is fetched whole, with
    # no split bookkeeping (no probe of its first bytes); a larger one is still split
    from urlgrabber import _segments

    planned = []

    class Counting(_segments.SegmentedFile):
        def __init__(self, req, *args):
            planned.append(req.url)
            super().__init__(req, *args)

    monkeypatch.setattr(_segments, "SegmentedFile", Counting)
    servers = [make_server(bw=BW) for _ in range(3)]
    mg = group(servers)
    small = 2 * MIN - 1
    urlgrabber.parallel_begin(6)
    mg.urlgrab(rel("small", small), str(tmp_path / "small"), async_=True, size=small)
    mg.urlgrab(rel("big"), str(tmp_path / "big"), async_=True, size=SIZE)
    results = urlgrabber.parallel_end()
    assert [r.exception for r in results] == [None, None]
    assert planned == [rel("big")]
    assert read(tmp_path / "small") == gen_bytes(small, "small")
    assert read(tmp_path / "big") == gen_bytes(SIZE, "big")
    assert sum(len(ranges(s)) for s in servers) >= 2  # the big one was split


def test_a_failed_probe_is_not_taken_for_the_attempt_that_reuses_its_handle(make_server, tmp_path):
    """A first attempt that may be split gets its first bytes and fails on one socket
    event; a neighbour's success on the next event of the same poll starts the queued
    retry on a handle just given back.  When the probes' sizes are read after the
    events, the failed one is not taken for whatever now runs on its handle: the retry
    is still split (ranges on the good mirror), and the file arrives whole."""
    bad = make_server(status=503, latency=0.3)
    good = make_server(bw=BW)
    size = 2 * 1024 * 1024
    # the 503 and a small reply together, the 503's socket read first
    with gathered_replies(2, first=bad.url) as gather:
        urlgrabber.parallel_begin(2)
        group([bad, good]).urlgrab(rel("reprobe", size), str(tmp_path / "big"), async_=True)
        g = URLGrabber()
        for i in range(2):
            g.urlgrab(good.url + f"/gen/100/s{i}?latency=0.3", str(tmp_path / f"s{i}"),
                      async_=("small", 1))
        results = urlgrabber.parallel_end()
    assert len(gather.gathered) == 2, gather.gathered
    assert [r.ok for r in results] == [True] * 3, [r.exception for r in results]
    assert read(tmp_path / "big") == gen_bytes(size, "reprobe")
    assert ranges(good), f"the retry on the good mirror was not split: {good.log}"
