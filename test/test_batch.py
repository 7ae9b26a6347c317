"""The bulk API: parallel_begin / urlgrab(async_=...) / parallel_end on one CurlMulti loop."""

from __future__ import annotations

import gc
import io
import os
import resource
import select
import signal
import subprocess
import sys
import textwrap
import time
import weakref

import pytest
from util import gen_bytes

import urlgrabber
from urlgrabber import _batch
from urlgrabber.grabber import URLGrabber, URLGrabError
from urlgrabber.progress import MultiFileMeter, TextMultiFileMeter

TEST_DIR = os.path.dirname(os.path.abspath(__file__))


def gen_url(server, size, name):
    return f"{server.url}/gen/{size}/{name}"


def assert_gen(path, size, name):
    with open(path, "rb") as f:
        assert f.read() == gen_bytes(size, name)


def leftovers(directory):
    """Temporary files a download left behind."""
    return [n for n in os.listdir(directory) if n.endswith(".part")]


def test_queue_then_run(server, tmp_path):
    g = URLGrabber()
    urlgrabber.parallel_begin()
    dests = []
    for i in range(20):
        dest = str(tmp_path / f"f{i}")
        assert g.urlgrab(gen_url(server, 1000 + i, f"f{i}"), dest, async_=True) == dest
        dests.append(dest)
    # queued, nothing transferred, nothing written yet
    assert server.requests == 0
    assert os.listdir(tmp_path) == []
    results = urlgrabber.parallel_end()
    assert [r.filename for r in results] == dests
    assert all(r.ok and r.exception is None for r in results)
    assert [r.size for r in results] == [1000 + i for i in range(20)]
    for i, dest in enumerate(dests):
        assert_gen(dest, 1000 + i, f"f{i}")
    assert server.requests == 20


def test_queueing_opens_no_files(server, tmp_path):
    """Queued requests hold no descriptors: a queue longer than the descriptor limit
    must not exhaust them.  (The soft limit is lowered to 256 above what is open, so
    1000 files outnumber it on any machine; 3000 under the usual 1024 took 3 s.)"""
    g = URLGrabber()
    before = len(os.listdir("/proc/self/fd"))
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = before + 256
    assert limit < count
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        urlgrabber.parallel_begin()
        for i in range(count):
            g.urlgrab(gen_url(server, 10, f"q{i}"), str(tmp_path / f"q{i}"), async_=("k", 8))
        assert len(os.listdir("/proc/self/fd")) <= before + 2
        results = urlgrabber.parallel_end()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert all(r.ok for r in results)
    assert len(os.listdir(tmp_path)) == count
    assert server.connections <= 8


def test_per_key_limit(server, tmp_path):
    server.defaults["latency"] = 0.05
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=10)
    for i in range(24):
        g.urlgrab(gen_url(server, 100, f"k{i}"), str(tmp_path / f"k{i}"), async_=("key", 3))
    urlgrabber.parallel_end()
    assert server.peak_inflight == 3


def test_default_per_host_limit_is_two(server, tmp_path):
    server.defaults["latency"] = 0.05
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=10)
    for i in range(12):
        g.urlgrab(gen_url(server, 100, f"d{i}"), str(tmp_path / f"d{i}"), async_=True)
    urlgrabber.parallel_end()
    assert server.peak_inflight == 2


def test_max_connections_option_is_the_per_host_limit(server, tmp_path):
    server.defaults["latency"] = 0.05
    g = URLGrabber(max_connections=4)
    urlgrabber.parallel_begin(max_connections=10)
    for i in range(16):
        g.urlgrab(gen_url(server, 100, f"m{i}"), str(tmp_path / f"m{i}"), async_=True)
    urlgrabber.parallel_end()
    assert server.peak_inflight == 4


def test_global_limit(server, tmp_path):
    """Two keys of 5 each, global cap 4: never more than 4 requests in flight."""
    server.defaults["latency"] = 0.05
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=4)
    for i in range(20):
        key = ("a", 5) if i % 2 else ("b", 5)
        g.urlgrab(gen_url(server, 100, f"g{i}"), str(tmp_path / f"g{i}"), async_=key)
    urlgrabber.parallel_end()
    assert server.peak_inflight == 4


def test_no_head_of_line_blocking(make_server, tmp_path):
    """A slow host with limit 1 queued first must not delay a fast host's files."""
    slow = make_server(latency=0.4)
    fast = make_server()
    g = URLGrabber()
    done = []
    urlgrabber.parallel_begin(max_connections=6)
    for i in range(3):
        g.urlgrab(gen_url(slow, 10, f"s{i}"), str(tmp_path / f"s{i}"), async_=("slow", 1),
                  checkfunc=lambda obj, i=i: done.append(f"s{i}"))
    for i in range(30):
        g.urlgrab(gen_url(fast, 10, f"f{i}"), str(tmp_path / f"f{i}"), async_=("fast", 5),
                  checkfunc=lambda obj, i=i: done.append(f"f{i}"))
    urlgrabber.parallel_end()
    assert len(done) == 33
    # every fast file finished before the first slow one
    assert all(name.startswith("f") for name in done[:30]), done


def test_fifo_within_a_key(server, tmp_path):
    g = URLGrabber()
    order = []
    urlgrabber.parallel_begin()
    for i in range(10):
        g.urlgrab(gen_url(server, 10, f"o{i}"), str(tmp_path / f"o{i}"), async_=("one", 1),
                  checkfunc=lambda obj, i=i: order.append(i))
    urlgrabber.parallel_end()
    assert order == list(range(10))


def test_connections_are_reused(server, tmp_path):
    g = URLGrabber()
    urlgrabber.parallel_begin()
    for i in range(60):
        g.urlgrab(gen_url(server, 2000, f"r{i}"), str(tmp_path / f"r{i}"), async_=("reuse", 2))
    urlgrabber.parallel_end()
    assert server.requests == 60
    assert server.connections <= 2


def test_both_async_spellings(server, tmp_path):
    server.defaults["latency"] = 0.03
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=10)
    for i in range(4):
        g.urlgrab(gen_url(server, 10, f"a{i}"), str(tmp_path / f"a{i}"), **{"async": ("same", 1)})
    for i in range(4):
        g.urlgrab(gen_url(server, 10, f"b{i}"), str(tmp_path / f"b{i}"), async_=("same", 1))
    assert server.requests == 0
    results = urlgrabber.parallel_end()
    assert len(results) == 8 and all(r.ok for r in results)
    assert server.peak_inflight == 1  # one key, one limit, whichever spelling


def test_async_without_begin_runs_at_parallel_wait(server, tmp_path):
    dest = str(tmp_path / "late")
    assert urlgrabber.urlgrab(gen_url(server, 50, "late"), dest, async_=True) == dest
    assert not os.path.exists(dest)
    results = urlgrabber.parallel_wait()
    assert results[0].ok
    assert_gen(dest, 50, "late")


def test_context_manager(server, tmp_path):
    g = URLGrabber()
    with urlgrabber.parallel(max_connections=3) as results:
        for i in range(5):
            g.urlgrab(gen_url(server, 10, f"c{i}"), str(tmp_path / f"c{i}"), async_=True)
        assert server.requests == 0
        assert results == []
    assert sorted(os.listdir(tmp_path)) == sorted(f"c{i}" for i in range(5))
    assert [(r.ok, r.filename) for r in results] == [(True, str(tmp_path / f"c{i}")) for i in range(5)]
    assert isinstance(results[0], urlgrabber.BatchResult)


def test_context_manager_drops_queue_on_error(server, tmp_path):
    g = URLGrabber()
    with pytest.raises(RuntimeError), urlgrabber.parallel():
        g.urlgrab(gen_url(server, 10, "x"), str(tmp_path / "x"), async_=True)
        raise RuntimeError("boom")
    assert urlgrabber.parallel_end() == []
    assert server.requests == 0


def test_callbacks_and_retries(server, tmp_path):
    """checkfunc per success, failure_callback per failed attempt, failfunc once per final failure."""
    g = URLGrabber(retry=3, retrycodes=[14])
    checked, failed_attempts, final = [], [], []
    urlgrabber.parallel_begin()
    common = dict(
        checkfunc=lambda obj: checked.append((obj.url, obj.filename)),
        failure_callback=lambda obj: failed_attempts.append((obj.url, obj.tries, obj.exception.code)),
        failfunc=lambda obj: final.append((obj.url, obj.exception.errno, obj.exception.code)),
    )
    flaky = gen_url(server, 100, "flaky") + "?fail_first=2&fail_status=503"
    gone = f"{server.url}/status/404"
    g.urlgrab(flaky, str(tmp_path / "flaky"), async_=True, **common)
    g.urlgrab(gone, str(tmp_path / "gone"), async_=True, **common)
    results = urlgrabber.parallel_end()
    assert results[0].ok and not results[1].ok
    assert results[1].exception.code == 404
    assert server.by_path["/gen/100/flaky"] == 3
    assert server.by_path["/status/404"] == 3
    assert len(checked) == 1 and checked[0][0] == flaky
    assert checked[0][1] == str(tmp_path / "flaky")  # classic: checkfunc sees the destination
    assert sorted(c for _, _, c in failed_attempts) == [404, 404, 404, 503, 503]
    assert final == [(gone, 14, 404)]
    assert_gen(tmp_path / "flaky", 100, "flaky")
    assert not os.path.exists(tmp_path / "gone")
    assert leftovers(tmp_path) == []


def test_checkfunc_rejection_is_retried(server, tmp_path):
    g = URLGrabber(retry=2)
    calls = []

    def check(obj):
        calls.append(obj.filename)
        if len(calls) == 1:
            raise URLGrabError(-1, "bad checksum")

    urlgrabber.parallel_begin()
    g.urlgrab(gen_url(server, 500, "ck"), str(tmp_path / "ck"), async_=True, checkfunc=check)
    results = urlgrabber.parallel_end()
    assert results[0].ok and len(calls) == 2
    assert server.by_path["/gen/500/ck"] == 2


def test_failures_mixed_with_successes(server, dead_url, tmp_path):
    g = URLGrabber(timeout=5)
    errors = {}
    urlgrabber.parallel_begin(max_connections=4)
    urls = []
    for i in range(10):
        urls.append((gen_url(server, 3000, f"ok{i}"), True))
    urls += [(f"{server.url}/status/500", False), (f"{dead_url}/x", False),
             (gen_url(server, 3000, "cut") + "?truncate=100", False),
             (f"{server.url}/status/404", False)]
    for n, (url, _) in enumerate(urls):
        g.urlgrab(url, str(tmp_path / f"d{n}"), async_=True,
                  failfunc=lambda obj, n=n: errors.__setitem__(n, obj.exception))
    results = urlgrabber.parallel_end()
    for n, (url, good) in enumerate(urls):
        assert results[n].ok is good, (url, results[n])
        assert os.path.exists(tmp_path / f"d{n}") is good
    assert sorted(errors) == [10, 11, 12, 13]
    assert errors[10].code == 500 and errors[13].code == 404
    assert errors[11].errno == 14 and errors[11].code == 7
    assert leftovers(tmp_path) == []


def test_default_failfunc_stops_batch_cleanly(server, tmp_path):
    """A final failure raises from parallel_end: running transfers stop, old files stay."""
    g = URLGrabber()
    keep = tmp_path / "keep"
    keep.write_bytes(b"precious")
    urlgrabber.parallel_begin(max_connections=4)
    g.urlgrab(f"{server.url}/status/404", str(tmp_path / "bad"), async_=True)
    for i in range(3):
        g.urlgrab(gen_url(server, 400_000, f"slow{i}") + "?bw=100000", str(tmp_path / f"slow{i}"), async_=True)
    g.urlgrab(gen_url(server, 1000, "keep"), str(keep), async_=True)
    with pytest.raises(URLGrabError) as info:
        urlgrabber.parallel_end()
    assert info.value.code == 404
    assert keep.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["keep"]


def test_exception_from_callback_propagates_and_cleans_up(server, tmp_path):
    g = URLGrabber()
    (tmp_path / "old").write_bytes(b"old")

    def check(obj):
        raise RuntimeError("checkfunc exploded")

    urlgrabber.parallel_begin()
    g.urlgrab(gen_url(server, 10, "first"), str(tmp_path / "first"), async_=True, checkfunc=check)
    g.urlgrab(gen_url(server, 300_000, "old") + "?bw=100000", str(tmp_path / "old"), async_=True)
    with pytest.raises(RuntimeError, match="exploded"):
        urlgrabber.parallel_end()
    assert sorted(os.listdir(tmp_path)) == ["old"]
    assert (tmp_path / "old").read_bytes() == b"old"


class RecordingMeter(MultiFileMeter):
    def __init__(self):
        super().__init__(fo=io.StringIO())
        self.events = []

    def start(self, numfiles=None, total_size=None, now=None):
        self.events.append(("start", numfiles, total_size))
        super().start(numfiles, total_size, now)

    def newMeter(self):
        self.events.append(("new",))
        return super().newMeter()

    def end(self, now=None):
        self.events.append(("end",))
        super().end(now)


def test_multi_progress_meter(server, tmp_path):
    meter = RecordingMeter()
    g = URLGrabber(multi_progress_obj=meter)
    urlgrabber.parallel_begin()
    for i in range(5):
        g.urlgrab(gen_url(server, 1000, f"p{i}"), str(tmp_path / f"p{i}"), async_=True, size=1000)
    g.urlgrab(f"{server.url}/status/404", str(tmp_path / "nope"), async_=True, failfunc=lambda obj: None)
    urlgrabber.parallel_end()
    assert meter.events[0] == ("start", 6, 5000)
    assert meter.events.count(("new",)) == 6
    assert meter.events[-1] == ("end",)
    assert meter.finished_files == 5
    assert meter.failed_files == 1


def test_text_multi_meter_output(server, tmp_path):
    out = io.StringIO()
    g = URLGrabber(multi_progress_obj=TextMultiFileMeter(fo=out))
    urlgrabber.parallel_begin()
    for i in range(3):
        g.urlgrab(gen_url(server, 5000, f"t{i}"), str(tmp_path / f"t{i}"), async_=True)
    urlgrabber.parallel_end()
    text = out.getvalue()
    assert "t0" in text and "t2" in text


class FileMeter:
    def __init__(self):
        self.calls = []

    def start(self, filename=None, url=None, basename=None, size=None, now=None, text=None):
        self.calls.append(("start", basename, size))

    def update(self, amount_read, now=None):
        self.calls.append(("update", amount_read))

    def end(self, amount_read, now=None):
        self.calls.append(("end", amount_read))


def test_per_file_progress_without_multi_meter(server, tmp_path):
    meters = [FileMeter() for _ in range(3)]
    g = URLGrabber()
    urlgrabber.parallel_begin()
    for i, m in enumerate(meters):
        g.urlgrab(gen_url(server, 70_000, f"u{i}"), str(tmp_path / f"u{i}"), async_=True, progress_obj=m)
    urlgrabber.parallel_end()
    for i, m in enumerate(meters):
        assert m.calls[0] == ("start", f"u{i}", 70_000)
        assert m.calls[-1] == ("end", 70_000)
        assert ("update", 70_000) in m.calls


def test_retry_after_is_honoured_for_retries(server, tmp_path):
    g = URLGrabber(retry=2, retrycodes=[14])
    url = gen_url(server, 10, "ra") + "?fail_first=1&fail_status=503&retry_after=1"
    urlgrabber.parallel_begin()
    g.urlgrab(url, str(tmp_path / "ra"), async_=True)
    t0 = time.monotonic()
    results = urlgrabber.parallel_end()
    assert results[0].ok
    assert time.monotonic() - t0 >= 0.9  # waited as told before asking again


def test_many_files_one_loop(server, tmp_path):
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=8)
    for i in range(1500):
        g.urlgrab(gen_url(server, 256 + i % 7, f"n{i}"), str(tmp_path / f"n{i}"), async_=("many", 8))
    results = urlgrabber.parallel_end()
    assert all(r.ok for r in results)
    for i in range(0, 1500, 97):
        assert_gen(tmp_path / f"n{i}", 256 + i % 7, f"n{i}")
    assert server.connections <= 8



def _freeze_counts(server, tmp_path, n, name, **kw):
    """Run a batch of ``n``; gc.get_freeze_count() as each file's checkfunc saw it."""
    seen = []
    g = URLGrabber(checkfunc=lambda obj: seen.append(gc.get_freeze_count()))
    urlgrabber.parallel_begin()
    for i in range(n):
        g.urlgrab(gen_url(server, 100, f"{name}{i}"), str(tmp_path / f"{name}{i}"), async_=True, **kw)
    urlgrabber.parallel_end(raise_errors=False)
    return seen


def test_a_big_batch_runs_with_the_heap_frozen(server, tmp_path, monkeypatch):
    """From _FREEZE_MIN requests a batch runs with gc.freeze() (full collections skip
    its queued requests) and unfreezes at its end; never where the collector is off
    or the caller froze objects of its own (unfreezing would undo theirs)."""
    monkeypatch.setattr(_batch, "_FREEZE_MIN", 3)
    assert gc.get_freeze_count() == 0
    seen = _freeze_counts(server, tmp_path, 3, "big")
    assert len(seen) == 3 and all(seen)
    assert gc.get_freeze_count() == 0
    assert _freeze_counts(server, tmp_path, 2, "small") == [0, 0]
    gc.disable()
    try:
        assert _freeze_counts(server, tmp_path, 3, "off") == [0, 0, 0]
    finally:
        gc.enable()
    gc.freeze()
    try:
        theirs = gc.get_freeze_count()  # (frozen objects freed meanwhile leave the count)
        seen = _freeze_counts(server, tmp_path, 3, "theirs")
        assert len(seen) == 3 and all(0 < n <= theirs for n in seen)  # nothing more frozen
        assert 0 < gc.get_freeze_count() <= theirs  # and theirs not unfrozen
    finally:
        gc.unfreeze()


def test_a_frozen_batch_still_collects_what_it_makes(server, tmp_path, monkeypatch):
    """Only what was alive at the batch's start is frozen: a reference cycle made by a
    callback during the batch is collected by a collection during the batch."""
    monkeypatch.setattr(_batch, "_FREEZE_MIN", 3)

    class Node:
        pass

    refs, alive = [], []

    def check(obj):
        if not refs:  # the first file: make a cycle and drop it
            node = Node()
            node.self = node
            refs.append(weakref.ref(node))
            del node
        else:
            gc.collect()
            alive.append(refs[0]() is not None)

    g = URLGrabber(checkfunc=check)
    urlgrabber.parallel_begin(max_connections=1)  # (one at a time: the cycle comes first)
    for i in range(3):
        g.urlgrab(gen_url(server, 100, f"c{i}"), str(tmp_path / f"c{i}"), async_=("c", 1))
    urlgrabber.parallel_end()
    assert alive == [False, False]


def test_a_frozen_batch_unfreezes_when_it_fails(server, tmp_path, monkeypatch):
    monkeypatch.setattr(_batch, "_FREEZE_MIN", 3)
    g = URLGrabber()
    urlgrabber.parallel_begin()
    for i in range(3):
        g.urlgrab(f"{server.url}/missing{i}", str(tmp_path / f"m{i}"), async_=True)
    with pytest.raises(URLGrabError) as e:
        urlgrabber.parallel_end()  # the default failfunc raises the first failure
    assert e.value.errno == 14 and e.value.code == 404
    assert gc.get_freeze_count() == 0


INTERRUPT_SCRIPT = textwrap.dedent(r"""
    import os, signal, sys
    # A parent started with SIGINT ignored (nohup, some CI runners) passes the
    # ignore on through exec; the test is about Ctrl-C, so restore it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, sys.argv[1])
    from server import FaultServer
    import urlgrabber
    from urlgrabber.grabber import URLGrabber

    dest_dir = sys.argv[2]
    srv = FaultServer().start()
    srv.defaults["bw"] = 200000
    class Meter:
        started = False
        def start(self, *a, **k): pass
        def end(self, *a, **k): pass
        def update(self, amount, now=None):
            if not Meter.started and amount > 50000:
                Meter.started = True
                print("RUNNING", flush=True)
    g = URLGrabber(progress_obj=Meter())
    urlgrabber.parallel_begin(max_connections=6)
    for i in range(12):
        g.urlgrab(f"{srv.url}/gen/2000000/i{i}", os.path.join(dest_dir, f"i{i}"), async_=("k", 6))
    try:
        urlgrabber.parallel_end()
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        sys.exit(3)
    print("FINISHED", flush=True)
""")


SIGINT_IN_CALLBACK_SCRIPT = textwrap.dedent(r"""
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # (as INTERRUPT_SCRIPT says)
    sys.path.insert(0, sys.argv[1])
    from server import FaultServer
    import urlgrabber
    from urlgrabber._engine import engine
    from urlgrabber.grabber import URLGrabber

    class CtrlC:
        # the engine's poller; at its third registration, made inside the socket
        # callback that libcurl calls from socket_action, Ctrl-C arrives (and is
        # handled right there, inside the callback)
        def __init__(self, real):
            self.real, self.calls = real, 0
        def register(self, fd, events):
            self.real.register(fd, events)
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGINT)
        def __getattr__(self, name):
            return getattr(self.real, name)

    dest_dir = sys.argv[2]
    srv = FaultServer().start()
    srv.defaults["bw"] = 200000
    eng = engine()
    eng._poller = CtrlC(eng._poller)
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=6)
    for i in range(6):
        g.urlgrab(f"{srv.url}/gen/2000000/c{i}", os.path.join(dest_dir, f"c{i}"), async_=("k", 6))
    try:
        urlgrabber.parallel_end()
    except KeyboardInterrupt:
        print("INTERRUPTED", eng._poller.calls, flush=True)
        sys.exit(3)
    print("FINISHED", flush=True)
""")


def test_ctrl_c_inside_a_pycurl_callback_is_not_lost(tmp_path):
    """Ctrl-C handled while libcurl runs one of our callbacks (the socket callback here;
    the first instruction of the write callback in CI once) raised KeyboardInterrupt
    into pycurl, and pycurl 7.45 prints and drops what a callback raises: the batch
    ran to its end, or failed on curl error 23.  It stops the batch, as Ctrl-C
    anywhere else does, and the destinations are untouched."""
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    (dest_dir / "c0").write_bytes(b"original")
    proc = subprocess.run([sys.executable, "-c", SIGINT_IN_CALLBACK_SCRIPT, TEST_DIR, str(dest_dir)],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("INTERRUPTED"), (proc.stdout, proc.stderr)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr, proc.stderr
    assert os.listdir(dest_dir) == ["c0"] and (dest_dir / "c0").read_bytes() == b"original"


class _RecordingPoller:
    """The engine's real poller, recording how long each poll was allowed to wait."""

    def __init__(self, real):
        self.real, self.waits = real, []

    def poll(self, timeout=-1):
        self.waits.append(timeout)
        return self.real.poll(timeout)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_transfers_ended_while_starting_others_are_collected_at_once(tmp_path):
    """libcurl can end a transfer inside the very call that starts the next ones (a
    file:// copy always; with libcurl 7.x also an HTTP response already in the socket
    buffer).  Those ends must be collected on the next step, not after the 0.25 s
    housekeeping wait: local copies have no socket to wake the loop, so every wait
    here is one too many (bulk runs on libcurl 7.88 once crawled at 8 files a wait)."""
    from urlgrabber._engine import engine

    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i}").write_bytes(b"%d" % i * 100)
    eng = engine()
    real = eng._poller
    eng._poller = rec = _RecordingPoller(real)
    g = URLGrabber(copy_local=1)
    try:
        urlgrabber.parallel_begin(max_connections=4)
        for i in range(40):
            g.urlgrab((src / f"f{i}").as_uri(), str(tmp_path / f"d{i}"), async_=("local", 4))
        results = urlgrabber.parallel_end()
    finally:
        eng._poller = real
    assert [r.ok for r in results] == [True] * 40
    assert all((tmp_path / f"d{i}").read_bytes() == b"%d" % i * 100 for i in range(40))
    assert len(rec.waits) >= 10  # (40 copies, 4 at a time)
    assert [w for w in rec.waits if w > 0] == []


def test_sigint_mid_batch_leaves_destinations_intact(tmp_path):
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    for i in range(12):
        (dest_dir / f"i{i}").write_bytes(b"original %d" % i)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT, TEST_DIR, str(dest_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the batch never started"
        line = proc.stdout.readline()
        assert line.strip() == "RUNNING"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        stopped = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "INTERRUPTED" in out, (out, err)
    assert proc.returncode == 3
    # Ctrl-C acts at once (~0.05 s here), not once the transfers in flight end:
    # at 200 kB/s each of them still has about 9 s to go.
    assert stopped < 2.0, f"the batch took {stopped:.1f}s to stop after SIGINT"
    for i in range(12):
        assert (dest_dir / f"i{i}").read_bytes() == b"original %d" % i
    assert sorted(os.listdir(dest_dir)) == sorted(f"i{i}" for i in range(12))


@pytest.mark.parametrize("keys", ["sf", "abc"])
def test_lanes_take_turns_when_the_global_cap_binds(server, tmp_path, keys):
    """Round-robin also under a binding global cap: with one slot, the keys alternate."""
    g = URLGrabber()
    urlgrabber.parallel_begin(max_connections=1)
    for key in keys:
        for i in range(6):
            g.urlgrab(gen_url(server, 10, f"{key}{i}"), str(tmp_path / f"{key}{i}"), async_=(key, 4))
    assert all(r.ok for r in urlgrabber.parallel_end())
    started = "".join(entry["path"].rsplit("/", 1)[-1][0] for entry in server.log)
    assert started == keys * 6
