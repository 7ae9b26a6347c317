"""Unit tests of the Scheduler: lanes, per-key and global limits, fairness, delays.

No network: a request here is a stand-in with a ``source`` that binds to its
key while the key has a free slot, as a plain-URL source does.
"""

from __future__ import annotations

import time

import pytest

from urlgrabber._request import Binding
from urlgrabber._scheduler import Scheduler


class _Source:
    def __init__(self, key, limit):
        self.lane = key
        self.limit = limit
        self.binding = Binding(f"http://{key}/", key, None)

    wake = None  # a resting source: bind refuses until then

    def bind(self, req, active):
        if self.wake is not None and time.monotonic() < self.wake:
            return None
        return None if active.get(self.lane, 0) >= self.limit else self.binding

    def next_wakeup(self):
        return self.wake


class _Req:
    segments = None  # not a split download

    def __init__(self, name, key, limit=4):
        self.name = name
        self.source = _Source(key, limit)


def start_all(sched):
    """Take every request the scheduler lets start now, in order."""
    started = []
    for req, binding in sched.ready():
        sched.started(binding.key)
        started.append(req)
    return started


def names(reqs):
    return "".join(r.name for r in reqs)


def queue(sched, spec, limit=4):
    """``spec`` like "aaab": one request per letter, keyed by the letter."""
    reqs = [_Req(ch, ch, limit) for ch in spec]
    for r in reqs:
        sched.push(r)
    return reqs


def test_fifo_within_a_key_and_per_key_limit():
    sched = Scheduler()
    reqs = queue(sched, "aaaaaa", limit=2)
    assert start_all(sched) == reqs[:2]
    assert start_all(sched) == []  # the key is full: nothing more, and nothing spins
    sched.stopped("a")
    assert start_all(sched) == [reqs[2]]


def test_the_load_sources_read_follows_the_transfers_and_refuses_writes():
    """``load`` (what sources compare with their limits) is a read-only view kept up to
    date as transfers start and stop; a source cannot change it."""
    sched = Scheduler()
    queue(sched, "aab")
    start_all(sched)
    assert dict(sched.load) == {"a": 2, "b": 1}
    sched.stopped("a")
    assert sched.load.get("a") == 1 and sched.load.get("c", 0) == 0
    with pytest.raises(TypeError):
        sched.load["a"] = 0
    assert sched.load["a"] == 1


def test_keys_take_turns():
    sched = Scheduler()
    queue(sched, "aaaa" + "bbbb" + "cc")
    assert names(start_all(sched)) == "abcabcabab"


def test_global_limit_caps_the_total():
    sched = Scheduler()
    sched.limit = 3
    queue(sched, "aaaabbbb")
    assert names(start_all(sched)) == "aba"
    assert sched.running == 3


def test_turns_continue_across_calls_when_the_global_limit_binds():
    """One free slot at a time: the keys still alternate (no head-of-line blocking)."""
    sched = Scheduler()
    sched.limit = 1
    queue(sched, "ssssffff")
    order = ""
    for _ in range(8):
        got = start_all(sched)
        assert len(got) == 1
        order += names(got)
        sched.stopped(got[0].source.lane)
    assert order == "sfsfsfsf"


def test_three_keys_under_a_binding_global_limit():
    sched = Scheduler()
    sched.limit = 2
    queue(sched, "aaabbbccc")
    order = names(start_all(sched))
    while sched.queued:
        for ch in order[-2:]:
            sched.stopped(ch)
        order += names(start_all(sched))
    assert order == "abcabcabc"


def test_a_full_key_does_not_hold_up_another():
    sched = Scheduler()
    queue(sched, "sss", limit=1)
    queue(sched, "fff", limit=3)
    assert names(start_all(sched)) == "sfff"
    sched.stopped("f")
    assert start_all(sched) == []  # "s" is still full; "f" has nothing left


def test_retry_goes_to_the_front_of_its_lane():
    sched = Scheduler()
    reqs = queue(sched, "aaa", limit=1)
    assert start_all(sched) == [reqs[0]]
    sched.stopped("a")
    sched.push(reqs[0], front=True)
    assert start_all(sched) == [reqs[0]]


def test_delayed_request_waits_for_its_time():
    sched = Scheduler()
    req = _Req("a", "a")
    sched.push_later(req, time.monotonic() + 60)
    assert sched.has_work()
    assert start_all(sched) == []
    assert sched.next_wakeup() > time.monotonic() + 50
    sched2 = Scheduler()
    sched2.push_later(req, time.monotonic() - 1)  # already due
    assert start_all(sched2) == [req]
    assert sched2.next_wakeup() is None


def test_remove_takes_a_request_out():
    sched = Scheduler()
    reqs = queue(sched, "abc")
    sched.remove(reqs[1])
    assert names(start_all(sched)) == "ac"
    assert not sched.has_work()


def test_a_resting_source_says_when_to_look_again():
    sched = Scheduler()
    req = _Req("a", "a")
    req.source.wake = time.monotonic() + 0.2
    sched.push(req)
    assert start_all(sched) == []
    assert sched.next_wakeup() == req.source.wake  # the engine sleeps until then, not in 1 s steps
    deadline = time.monotonic() + 5
    started = []
    while not started and time.monotonic() < deadline:
        started = start_all(sched)  # (no poke: only the source's own time unblocks the lane)
    assert started == [req]
    assert time.monotonic() >= req.source.wake


def test_remove_all_takes_many_requests_out_in_one_pass():
    sched = Scheduler()
    reqs = queue(sched, "abcabc")
    later = _Req("d", "d")
    sched.push_later(later, time.monotonic() - 1)
    sched.remove_all([reqs[0], reqs[4], later])
    assert sched.queued == 4
    assert names(start_all(sched)) == "abcc"  # (keys take turns)
    assert not sched.has_work()


class _CountingReq(_Req):
    """A queued request that counts how often it is compared (a scan of the queue)."""

    compared = 0
    hedge = transfer = None
    finished = False

    def __eq__(self, other):
        _CountingReq.compared += 1
        return self is other

    __hash__ = object.__hash__

    def abort(self):
        self.finished = True


def test_aborting_a_big_queue_does_not_scan_it_once_per_request():
    """Ctrl-C (or a callback's exception) in a batch of 20 000 queued requests once
    took seconds: each was looked for in the whole queue."""
    from urlgrabber._engine import Engine

    eng = Engine()
    try:
        reqs = [_CountingReq(str(i), "k") for i in range(3000)]
        eng.scheduler.extend(reqs)
        _CountingReq.compared = 0
        eng.abort(reqs)
        assert all(r.finished for r in reqs)
        assert not eng.scheduler.has_work()
        assert _CountingReq.compared < len(reqs)  # (one by one: about 4.5 million)
    finally:
        eng.close()
