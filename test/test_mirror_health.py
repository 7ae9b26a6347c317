"""Mirror health in a batch: how failures steer the choice of mirror, and when
a failing mirror is skipped for the rest of the batch.

These pin today's behaviour (mirror.py's ``_Mirror.dead`` thresholds and
the failure streak in ``_MirrorSource.bind``'s score); they are named after
the behaviour, so a redesign (e.g. resting with backoff instead of "dead")
knows what it changes.  Request counts come from the servers themselves.
"""

from __future__ import annotations

import time

from util import gen_bytes

import urlgrabber
from urlgrabber.grabber import URLGrabber
from urlgrabber.mirror import MirrorGroup

SIZE = 20000
BASE = f"/gen/{SIZE}/"
WARM = "warm?status="  # an empty ``status=`` in the query switches the failing default off


def _run_batch(mg: MirrorGroup, rels: list[str], tmp_path, max_connections: int) -> list:
    urlgrabber.parallel_begin(max_connections=max_connections)
    try:
        for r in rels:
            mg.urlgrab(r, str(tmp_path / r.split("?")[0]), async_=True, failfunc=lambda obj: None)
    except BaseException:
        urlgrabber.parallel_end()
        raise
    return urlgrabber.parallel_end()


def _paths(server, status: int | None = None) -> list[str]:
    return [e["path"] for e in server.log if status is None or e["status"] == status]


def test_batch_prefers_a_mirror_without_a_failure_streak(make_server, tmp_path):
    """Once a mirror has failed, a healthy mirror with a free slot gets the new files,
    even though the failing one answered faster when it last worked.

    A worked once (so it is not skipped after three failures), then answers 500;
    B answers everything, 50 ms late.  Two connections in all."""
    bad = make_server(status=500)
    good = make_server(latency=0.05)
    mg = MirrorGroup(URLGrabber(), [bad.url + BASE, good.url + BASE])
    names = [f"f{i}" for i in range(12)]
    results = _run_batch(mg, [WARM, *names], tmp_path, max_connections=2)

    assert [r.ok for r in results] == [True] * (1 + len(names)), [r.exception for r in results]
    for name in names:
        assert (tmp_path / name).read_bytes() == gen_bytes(SIZE, name)
    assert bad.log[0]["path"] == BASE + "warm" and bad.log[0]["status"] == 200
    first_on_bad = [p.rsplit("/", 1)[1] for p in _paths(bad, 500)]
    first_on_good = [n for n in names if n not in first_on_bad]
    assert len(first_on_bad) <= 2, f"the failing mirror was chosen first for {first_on_bad}"
    assert len(first_on_bad) < len(first_on_good)


def test_mirror_that_never_worked_is_given_up_after_three_events_and_two_seconds(make_server, tmp_path):
    """A mirror with no success in this batch: benched after three failure events (it rests,
    doubling, then takes one probe at a time), given up two seconds after its first failure."""
    bad = make_server(status=500)
    mg = MirrorGroup(URLGrabber(), [bad.url + BASE])
    names = [f"n{i}" for i in range(30)]
    t0 = time.monotonic()
    results = _run_batch(mg, names, tmp_path, max_connections=1)
    elapsed = time.monotonic() - t0

    assert not any(r.ok for r in results)
    assert 3 <= bad.requests <= 6, f"{bad.requests} requests reached the mirror: {_paths(bad)}"
    skipped = [r for r in results if any("Mirror skipped" in msg for _, msg in r.exception.errors)]
    assert len(skipped) >= len(names) - 6
    assert 2.0 <= elapsed < 5.0


def test_mirror_that_once_worked_rests_and_is_given_up_only_after_ten_seconds(make_server, tmp_path):
    """A mirror that worked in this batch: after three failure events in a row it rests
    (0.25 s, doubling) and is probed one request at a time; it is given up only after
    ten seconds of failing with no success."""
    bad = make_server(status=500)
    mg = MirrorGroup(URLGrabber(), [bad.url + BASE])
    names = [f"s{i}" for i in range(40)]
    t0 = time.monotonic()
    results = _run_batch(mg, [WARM, *names], tmp_path, max_connections=1)
    elapsed = time.monotonic() - t0

    assert results[0].ok and not any(r.ok for r in results[1:])
    assert bad.log[0]["status"] == 200
    arrivals = [e["at"] for e in bad.log]
    gaps = [b - a for a, b in zip(arrivals[4:], arrivals[5:])]
    assert gaps and all(g >= 0.1 for g in gaps), gaps  # benched: probes come after rests
    assert arrivals[-1] - arrivals[1] >= 5.0  # probed for seconds: not given up at 2 s like a mirror that never worked
    skipped = [r for r in results[1:] if any("Mirror skipped" in msg for _, msg in r.exception.errors)]
    assert skipped  # and then given up: the rest of the batch did not wait for ever
    assert elapsed < 20
