"""MirrorGroup with ``URLGrabber(timedhosts=path)``: mirror speeds kept across runs.

A batch records every mirror it used in the statistics file; a later group
(a new process, in effect: new grabber, new MirrorGroup) starts from that
history and prefers the mirror that was fast.  The file is advice only: a
damaged one, or a directory where the file should be, never stops a batch.
"""

from __future__ import annotations

import os
import random

import pytest
from util import gen_bytes

import urlgrabber
from urlgrabber.grabber import URLGrabber
from urlgrabber.mirror import MirrorGroup

SIZE = 64 * 1024  # large enough to count as a speed measurement


def rel(size, name):
    return f"gen/{size}/{name}"


def assert_gen(path, size, name):
    with open(path, "rb") as f:
        assert f.read() == gen_bytes(size, name), f"{path}: wrong content"


def mirror(server, **kwargs):
    return {"mirror": server.url, "kwargs": kwargs}


def run_batch(mg, names, directory, size=SIZE, limit=2):
    urlgrabber.parallel_begin(limit)
    for n in names:
        mg.urlgrab(rel(size, n), str(directory / n), async_=True)
    results = urlgrabber.parallel_end()
    assert all(r.ok for r in results), [r.exception for r in results]
    for n in names:
        assert_gen(directory / n, size, n)
    return results


def hosts_in(path):
    """The host field of each line of a timedhosts file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rsplit(None, 3)[0] for line in f if len(line.split()) >= 4]


def lists(hosts, server):
    return any(f"127.0.0.1:{server.port}" in h for h in hosts)


def first_batch(fast, slow, path, directory):
    """Both mirrors serve part of a batch: ``fast`` first, ``slow`` when fast is busy."""
    mg = MirrorGroup(URLGrabber(timedhosts=str(path)),
                     [mirror(fast, max_connections=1), mirror(slow, max_connections=1)])
    run_batch(mg, [f"h{i}" for i in range(4)], directory)


def test_batch_writes_the_mirrors_to_timedhosts(make_server, tmp_path):
    fast, slow = make_server(), make_server(bw=300_000)
    path = tmp_path / "timedhosts"
    first_batch(fast, slow, path, tmp_path)
    assert fast.requests > 0 and slow.requests > 0
    assert path.is_file()
    hosts = hosts_in(path)
    assert lists(hosts, fast), hosts
    assert lists(hosts, slow), hosts
    assert [n for n in os.listdir(tmp_path) if n.startswith(".timedhosts")] == []


def test_failed_mirror_is_recorded_too(make_server, tmp_path):
    bad, good = make_server(status=500), make_server()
    path = tmp_path / "timedhosts"
    mg = MirrorGroup(URLGrabber(timedhosts=str(path)), [bad.url, good.url])
    run_batch(mg, ["f0", "f1"], tmp_path)
    hosts = hosts_in(path)
    assert lists(hosts, bad) and lists(hosts, good), hosts


def test_next_batch_prefers_the_mirror_that_was_fast(make_server, tmp_path):
    fast, slow = make_server(), make_server(bw=300_000)
    path = tmp_path / "timedhosts"
    first_batch(fast, slow, path, tmp_path)

    # now both are equally fast; only the history tells them apart
    del slow.defaults["bw"]
    fast.reset_stats()
    slow.reset_stats()
    out = tmp_path / "second"
    out.mkdir()
    # a new grabber and group (as in a new process), the slow mirror listed first;
    # one transfer at a time, so without history the first file would go to it
    order = []

    def record(obj):
        order.append(obj.url)

    mg = MirrorGroup(URLGrabber(timedhosts=str(path), checkfunc=record),
                     [mirror(slow, max_connections=2), mirror(fast, max_connections=2)])
    run_batch(mg, [f"p{i}" for i in range(20)], out, limit=1)
    assert fast.requests + slow.requests == 20
    assert order[0].startswith(fast.url + "/"), "the first download did not go to the historically fast mirror"
    assert fast.requests > 2 * slow.requests, (fast.requests, slow.requests)


@pytest.mark.parametrize("damage", ["random_bytes", "garbage_lines", "directory"])
def test_corrupt_timedhosts_is_ignored(damage, make_server, tmp_path):
    path = tmp_path / "timedhosts"
    if damage == "random_bytes":
        path.write_bytes(random.Random(1234).randbytes(8192))
    elif damage == "garbage_lines":
        path.write_text("only-one-field\nhost nan nan nan\nhost -5 -1 x\n\x00\x01\x02 1 2 3\n")
    else:
        path.mkdir()
    a, b = make_server(), make_server()
    out = tmp_path / "out"
    out.mkdir()
    mg = MirrorGroup(URLGrabber(timedhosts=str(path)), [mirror(a, max_connections=2), mirror(b, max_connections=2)])
    run_batch(mg, [f"c{i}" for i in range(6)], out, limit=4)
    if damage == "directory":
        assert path.is_dir()
    else:
        # rewritten with what this batch learned
        hosts = hosts_in(path)
        assert lists(hosts, a) or lists(hosts, b), hosts
    # a blocking download with the same damaged file works too
    mg.urlgrab(rel(1000, "blk"), str(out / "blk"))
    assert_gen(out / "blk", 1000, "blk")


def test_blocking_downloads_update_timedhosts(make_server, tmp_path):
    bad, good = make_server(status=503), make_server()
    path = tmp_path / "timedhosts"
    mg = MirrorGroup(URLGrabber(timedhosts=str(path)), [bad.url, good.url])
    mg.urlgrab(rel(SIZE, "b0"), str(tmp_path / "b0"))
    assert_gen(tmp_path / "b0", SIZE, "b0")
    hosts = hosts_in(path)
    assert lists(hosts, bad) and lists(hosts, good), hosts
