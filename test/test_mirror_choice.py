"""Unit tests of a batch's mirror choice (_MirrorSource.bind): load, limits, speed,
health, rest and private mirrors.  Nothing is fetched: bind only chooses."""

from __future__ import annotations

import time

import urlgrabber
import urlgrabber._batch
from urlgrabber.grabber import URLGrabber, URLGrabberOptions
from urlgrabber.mirror import MirrorGroup, _MirrorSource, _Plan

BASES = ["http://m1.example/repo/", "http://m2.example/repo/", "http://m3.example/repo/"]


class _Req:
    """What bind reads of a request: its options (per-mirror default limit 2), and
    that it is not a split download."""

    opts = URLGrabberOptions(async_=True, max_connections=2)
    segments = None


def setup(mirrors=BASES):
    group = MirrorGroup(URLGrabber(), list(mirrors))
    states = [group._state(m) for m in group.mirrors]
    source = _MirrorSource(group, "Packages/a.rpm", {}, _Plan(states, 0), None, None)
    return group, states, source


def chosen(source, active=None):
    binding = source.bind(_Req(), dict(active or {}))
    return None if binding is None else binding.url


def test_fresh_mirrors_go_in_classic_order():
    _, _, source = setup()
    assert chosen(source) == "http://m1.example/repo/Packages/a.rpm"


def test_load_spreads_requests():
    _, states, source = setup()
    assert chosen(source, {states[0].key: 1}) == "http://m2.example/repo/Packages/a.rpm"
    assert chosen(source, {states[0].key: 1, states[1].key: 1}) == "http://m3.example/repo/Packages/a.rpm"


def test_a_full_mirror_is_not_chosen_and_all_full_waits():
    _, states, source = setup()
    full = {s.key: 2 for s in states}
    assert chosen(source, full) is None
    full[states[2].key] = 1
    assert chosen(source, full) == "http://m3.example/repo/Packages/a.rpm"


def test_a_faster_mirror_wins_despite_some_load():
    _, states, source = setup()
    states[0].speed, states[1].speed, states[2].speed = 1e6, 10e6, 1e6
    assert chosen(source, {states[1].key: 1}) == "http://m2.example/repo/Packages/a.rpm"


def test_a_failure_streak_loses_to_a_healthy_mirror():
    _, states, source = setup()
    states[0].streak = 2
    assert chosen(source) == "http://m2.example/repo/Packages/a.rpm"


def test_a_private_mirror_comes_first():
    *_, source = setup([*BASES[:2], {"mirror": BASES[2], "kwargs": {"private": True}}])
    assert chosen(source) == "http://m3.example/repo/Packages/a.rpm"


def test_a_resting_mirror_is_skipped_until_its_time():
    _, states, source = setup()
    now = time.monotonic()
    states[0].resting_until = now + 30
    assert chosen(source) == "http://m2.example/repo/Packages/a.rpm"
    states[1].resting_until = now + 10
    states[2].resting_until = now + 20
    assert chosen(source) is None
    assert source.next_wakeup() == states[1].resting_until


def test_when_every_mirror_is_dead_the_attempt_fails_without_a_connection():
    _, states, source = setup()
    for s in states:
        s.failures = 3
        s.failing_since = time.monotonic() - 60  # failing for a minute, never worked
    binding = source.bind(_Req(), {})
    assert binding.error is not None and binding.error.errno == 14
    assert "Mirror skipped" in str(binding.error)


def test_join_url_and_mirror_kwargs_shape_the_binding():
    class Group(MirrorGroup):
        def _join_url(self, base_url, rel_url):
            return base_url + "x/" + rel_url

    group = Group(URLGrabber(), [{"mirror": BASES[0], "kwargs": {"timeout": 7, "preference": 50}}])
    source = _MirrorSource(group, "f", {}, _Plan([group._state(m) for m in group.mirrors], 0), None, None)
    binding = source.bind(_Req(), {})
    assert binding.url == "http://m1.example/repo/x/f"
    assert binding.opts.timeout == 7


def test_a_queued_calls_options_go_over_each_mirrors_checked_once():
    # MirrorGroup.urlgrab(async_=True, ...) checks the call's options once; each mirror's
    # binding gets them over the mirror's own options, as derive(**call) would make them
    from urlgrabber._batch import parallel_abort

    group = MirrorGroup(URLGrabber(retry=2), [{"mirror": BASES[0], "kwargs": {"timeout": 7, "retry": 5}}])
    urlgrabber.parallel_begin()
    try:
        # (classic's async spelling, and a size given as text, which the check makes a number)
        group.urlgrab("f", "/nonexistent/f", **{"async": ("k", 3)}, size="1234", retry=4,
                      http_headers=(("A", "b"),))
        (req,) = urlgrabber._batch._batch.queue
        binding = req.source.bind(req, {})
    finally:
        parallel_abort()
    want = group._state(group.mirrors[0]).opts.derive(
        async_=("k", 3), size="1234", retry=4, http_headers=(("A", "b"),))
    got = {k: v for k, v in binding.opts.__dict__.items() if k != "delegate"}
    assert got == {k: v for k, v in want.__dict__.items() if k != "delegate"}
    assert (binding.opts.timeout, binding.opts.retry, binding.opts.size) == (7, 4, 1234)
    assert type(binding.opts.size) is int and binding.opts.async_ == ("k", 3)
