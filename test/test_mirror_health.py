"""Mirror health in a batch: how failures steer the choice of mirror, and when
a failing mirror is skipped for the rest of the batch.

These pin today's behaviour (mirror.py's ``_Mirror.dead`` thresholds and
the failure streak in ``_MirrorSource.bind``'s score); they are named after
the behaviour, so a redesign (e.g. resting with backoff instead of "dead")
knows what it changes.  Request counts come from the servers themselves.
"""

from __future__ import annotations

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


def test_mirror_that_never_worked_is_skipped_after_three_failures(make_server, tmp_path):
    """A mirror with no success in this batch gets three requests, then none."""
    bad = make_server(status=500)
    mg = MirrorGroup(URLGrabber(), [bad.url + BASE])
    names = [f"n{i}" for i in range(10)]
    results = _run_batch(mg, names, tmp_path, max_connections=1)

    assert not any(r.ok for r in results)
    assert bad.requests == 3, f"{bad.requests} requests reached the mirror: {_paths(bad)}"
    skipped = [r for r in results if any("Mirror skipped" in msg for _, msg in r.exception.errors)]
    assert len(skipped) == len(names) - 3


def test_mirror_that_once_worked_is_skipped_after_eight_failures_in_a_row(make_server, tmp_path):
    """A mirror that worked in this batch is skipped after eight failures in a row."""
    bad = make_server(status=500)
    mg = MirrorGroup(URLGrabber(), [bad.url + BASE])
    names = [f"s{i}" for i in range(14)]
    results = _run_batch(mg, [WARM, *names], tmp_path, max_connections=1)

    assert results[0].ok and not any(r.ok for r in results[1:])
    assert bad.log[0]["status"] == 200
    failed = _paths(bad, 500)
    assert len(failed) == 8, f"{len(failed)} failing requests reached the mirror: {failed}"
    assert bad.requests == 1 + 8
