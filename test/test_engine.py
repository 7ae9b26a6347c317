"""The event loop itself: idle waits, handle reuse, stalls, streams that break, results."""

from __future__ import annotations

import os
import time

import pytest
from modes import MODES, grab
from util import gathered_replies, gen_bytes

import urlgrabber
from urlgrabber.grabber import URLGrabber, URLGrabError


def test_idle_wait_uses_no_cpu(server, tmp_path):
    """Waiting 1.5 s for a slow server must not spin.

    The engine runs in the thread that calls parallel_end(), so only that
    thread's CPU time counts: the in-process server's threads (and anything
    else the machine is busy with) are not measured."""
    g = URLGrabber()
    urlgrabber.parallel_begin()
    g.urlgrab(f"{server.url}/gen/10/idle?latency=1.5", str(tmp_path / "idle"), async_=True)
    cpu0, t0 = time.thread_time(), time.monotonic()
    assert urlgrabber.parallel_end()[0].ok
    cpu = time.thread_time() - cpu0
    assert time.monotonic() - t0 >= 1.4
    assert cpu < 0.3, f"the engine used {cpu:.2f}s of CPU while waiting 1.5s"


def test_pooled_handles_pick_up_changed_options(server):
    """A reused curl handle must not keep the previous request's settings."""
    g = URLGrabber()
    seen = []
    for agent, headers in [("a/1", [("X-One", "1")]), ("b/2", [("X-Two", "2")]), ("a/1", None)]:
        body = g.urlread(f"{server.url}/echo/headers", user_agent=agent, http_headers=headers)
        seen.append(body.decode())
    assert '"a/1"' in seen[0] and "x-one" in seen[0]
    assert '"b/2"' in seen[1] and "x-two" in seen[1] and "x-one" not in seen[1]
    assert "x-one" not in seen[2] and "x-two" not in seen[2]
    assert server.connections == 1  # ... and the connection is still reused


def test_range_settings_do_not_leak_to_the_next_request(server, tmp_path):
    g = URLGrabber()
    assert g.urlread(f"{server.url}/gen/1000/rl", range=(10, 20)) == gen_bytes(1000, "rl")[10:20]
    assert g.urlread(f"{server.url}/gen/1000/rl") == gen_bytes(1000, "rl")
    assert server.log[-1]["range"] is None


@pytest.mark.parametrize("mode", MODES)
def test_stall_ends_after_timeout_and_resumes(mode, server, tmp_path):
    """A body that stops mid-way is abandoned after `timeout` and resumed from where it broke."""
    g = URLGrabber(retry=2, retrycodes=[12])
    url = f"{server.url}/gen/200000/st"
    server.defaults.update(stall_at=50000, stall=30)
    t0 = time.monotonic()
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, url, str(tmp_path / "st"), timeout=1)
    elapsed = time.monotonic() - t0
    assert info.value.errno == 12
    # Two attempts, each abandoned 1 s (timeout) after its last byte; stalls are
    # checked every 0.25 s, so 2.0-3.0 s.  A doubled window would take >= 4 s.
    assert 2.0 <= elapsed < 4.0, f"two 1 s stalls took {elapsed:.2f}s"
    ranges = [e["range"] for e in server.log]
    assert ranges[0] is None and ranges[1] == "bytes=50000-"
    assert os.listdir(tmp_path) == []


def test_retry_no_cache(server, tmp_path):
    calls = []

    def check(obj):
        calls.append(1)
        if len(calls) == 1:
            raise URLGrabError(-1, "stale copy")

    grab("batch", URLGrabber(retry=2, retry_no_cache=True), f"{server.url}/gen/100/nc",
         str(tmp_path / "nc"), checkfunc=check)
    first, second = server.log
    assert "pragma" not in first["headers"]
    assert second["headers"].get("pragma") == "no-cache"


def test_batch_results_hide_passwords(server, tmp_path):
    url = server.url.replace("http://", "http://bob:hunter2@") + "/status/404"
    urlgrabber.parallel_begin()
    urlgrabber.urlgrab(url, str(tmp_path / "x"), async_=True, failfunc=lambda obj: None)
    result = urlgrabber.parallel_end()[0]
    assert "hunter2" not in result.url and "hunter2" not in str(result.exception)


def test_stream_delivers_every_byte_before_the_error(server):
    size, cut = 3_000_000, 1_234_567
    f = urlgrabber.urlopen(f"{server.url}/gen/{size}/cut?truncate={cut}")
    got = bytearray()
    with pytest.raises(URLGrabError) as info:
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            got += chunk
    assert info.value.errno == 14
    assert bytes(got) == gen_bytes(size, "cut")[:cut]


def test_blocking_calls_reuse_connections(server, tmp_path):
    """A blocking urlgrab is a batch of one on the thread's engine: keep-alive carries over."""
    for i in range(5):
        urlgrabber.urlgrab(f"{server.url}/gen/100/k{i}", str(tmp_path / f"k{i}"))
    assert server.connections == 1


def test_queued_then_blocking_call_does_not_start_the_queue(server, tmp_path):
    """Queued requests wait for parallel_end even when a blocking call runs the engine meanwhile."""
    g = URLGrabber()
    g.urlgrab(f"{server.url}/gen/100/q", str(tmp_path / "q"), async_=True)
    g.urlgrab(f"{server.url}/gen/100/now", str(tmp_path / "now"))
    assert server.by_path["/gen/100/q"] == 0
    assert urlgrabber.parallel_end()[0].ok
    assert server.by_path["/gen/100/q"] == 1


def test_unwritable_destination_fails_only_its_request(server, tmp_path):
    failed = []
    g = URLGrabber(failfunc=failed.append)
    urlgrabber.parallel_begin()
    g.urlgrab(f"{server.url}/gen/100/w0", str(tmp_path / "w0"), async_=True)
    g.urlgrab(f"{server.url}/gen/100/w1", str(tmp_path / "missing-dir" / "w1"), async_=True)
    g.urlgrab(f"{server.url}/gen/100/w2", str(tmp_path / "w2"), async_=True)
    results = urlgrabber.parallel_end()
    assert [r.ok for r in results] == [True, False, True]
    assert len(failed) == 1 and failed[0].exception.errno == 16
    assert sorted(os.listdir(tmp_path)) == ["w0", "w2"]


@pytest.mark.parametrize("mode", MODES)
def test_reget_rejected_by_checkfunc_is_fetched_whole_on_retry(mode, server, tmp_path):
    """A resumed file that fails its check is not resumed again: the retry starts at zero."""
    size = 50_000
    dest = tmp_path / "rg"
    dest.write_bytes(b"X" * 1000)  # a wrong partial file
    calls = []

    def check(obj):
        calls.append(1)
        with open(obj.filename, "rb") as f:
            if f.read() != gen_bytes(size, "rg"):
                raise URLGrabError(-1, "checksum mismatch")

    grab(mode, URLGrabber(retry=2), f"{server.url}/gen/{size}/rg", str(dest), reget="simple", checkfunc=check)
    assert dest.read_bytes() == gen_bytes(size, "rg")
    assert len(calls) == 2
    assert [e["range"] for e in server.log] == ["bytes=1000-", None]


EXIT_SCRIPT = r"""
import atexit, os, sys
def sockets_left():  # registered before urlgrabber's own exit handler: runs after it
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # (the listing's own descriptor, closed by now)
            pass
    print("SOCKETS", n, flush=True)
atexit.register(sockets_left)
import urlgrabber
body = urlgrabber.urlread(sys.argv[1], ssl_ca_cert=sys.argv[2])
print("READ", len(body), flush=True)
"""


def test_the_engine_closes_its_connections_before_the_interpreter_tears_down(tls_server, ca_file):
    """At exit the main thread's engine closes its kept-alive (TLS) connections while its
    module is whole: libcurl's goodbye goes through our socket callback, and with the
    module torn down first that printed a TypeError (pycurl 7.45, Python 3.9)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, f"{tls_server.url}/gen/5000/x", ca_file],
                          capture_output=True, text=True, timeout=60, cwd=root,
                          env=dict(os.environ, PYTHONPATH=root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["READ", "5000", "SOCKETS", "0"], (proc.stdout, proc.stderr)
    assert proc.stderr == ""


def test_a_reused_descriptor_is_watched_again_without_a_remove():
    """libcurl calls the socket callback on changes only.  A descriptor closed without a
    POLL_REMOVE (the kernel takes it out of the poller) and reused for a new socket that
    wants the same events is registered again, not skipped as already watched."""
    import select
    import socket

    import pycurl

    from urlgrabber._engine import Engine

    if not hasattr(select, "epoll"):
        pytest.skip("epoll only: poll() objects keep a closed descriptor's registration")
    eng = Engine()
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        fd = a.fileno()
        eng._on_socket(pycurl.POLL_IN, fd, None, None)
        os.dup2(c.fileno(), fd)  # the old socket's last reference goes: a new socket, same number
        eng._on_socket(pycurl.POLL_IN, fd, None, None)  # (no POLL_REMOVE came between)
        d.send(b"x")
        assert (fd, select.EPOLLIN) in eng._poller.poll(5.0)
    finally:
        for s in (a, b, c, d):
            s.close()
        eng.close()


class _DeafPoller:
    """The engine's real poller, minus every event of the descriptors in ``deaf``: a
    readiness event that never comes, as when the poller and libcurl fall out of step."""

    def __init__(self, real):
        self.real, self.deaf = real, set()

    def register(self, fd, events):
        self.deaf.add(fd)  # (every socket of the test's one transfer)
        return self.real.register(fd, events)

    def poll(self, timeout=-1):
        return [(fd, ev) for fd, ev in self.real.poll(timeout) if fd not in self.deaf]

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_missed_readiness_event_costs_seconds_not_the_stall_window(server):
    """If a socket's events never reach the loop, libcurl is asked to look at every
    watched socket once a transfer has been quiet for 2 s: the reply is read then, not
    after the 60 s stall window (or never)."""
    from urlgrabber._engine import engine

    eng = engine()
    real = eng._poller
    eng._poller = deaf = _DeafPoller(real)
    try:
        t0 = time.monotonic()
        data = URLGrabber(timeout=60, keepalive=0).urlread(server.url + "/gen/1000/deaf?latency=0.2")
        elapsed = time.monotonic() - t0
    finally:
        eng._poller = real
    assert data == gen_bytes(1000, "deaf")
    assert deaf.deaf and elapsed < 15, elapsed


@pytest.mark.parametrize("waiting", [True, False], ids=["waiting-on-network", "busy"])
def test_a_finished_transfer_sends_its_next_request_before_other_ready_sockets_are_read(
        server, tmp_path, monkeypatch, waiting):
    """Two replies ready at once.  While the loop waits on the network (its last poll
    slept), the first transfer to end is concluded at once: its connection's next
    request goes out (socket_action on curl's timer) before the second socket is read.
    When the loop is busy (polls never sleep), both are read first and concluded
    together."""
    import pycurl

    from urlgrabber import _engine

    if not waiting:
        monkeypatch.setattr(_engine, "_SLEPT", 3600.0)  # no poll counts as a sleep
    with gathered_replies(2) as gather:
        urlgrabber.parallel_begin(max_connections=2)
        g = URLGrabber()
        for i in range(4):
            g.urlgrab(server.url + f"/gen/1000/p{i}?latency=0.35", str(tmp_path / f"p{i}"),
                      async_=("k", 2))
        results = urlgrabber.parallel_end()
    calls = gather.calls
    assert [r.ok for r in results] == [True] * 4
    for i in range(4):
        assert (tmp_path / f"p{i}").read_bytes() == gen_bytes(1000, f"p{i}")
    # (0.35 s: libcurl 7.88's 200 ms connect timer would read replies ready at 0.2 s itself)
    assert len(gather.gathered) == 2 and gather.had_work, (gather.gathered, gather.had_work)
    after = calls[gather.mark:gather.mark + 3]
    first, second = after[0], (after[1] if after[1] != pycurl.SOCKET_TIMEOUT else after[2])
    assert {first, second} == set(gather.gathered), (after, gather.gathered)
    if waiting:
        assert after[1] == pycurl.SOCKET_TIMEOUT, after  # the next request, then the other socket
    else:
        assert after[1] == second, after  # both sockets read first


def test_a_checkfunc_that_downloads_while_other_replies_wait_unread(server, tmp_path):
    """A transfer concluded in the middle of dispatching ready sockets runs its
    checkfunc there, and this one makes a blocking download of its own (the same
    engine, one level down), which may read the other ready sockets first.  The
    outer loop then goes on with events that are already stale: every file still
    arrives whole, and each checkfunc runs once."""
    seen = []
    checked_at = []

    def check(obj):
        checked_at.append(len(calls))
        inner = URLGrabber().urlread(server.url + f"/gen/300/inner-{os.path.basename(obj.filename)}")
        assert inner == gen_bytes(300, f"inner-{os.path.basename(obj.filename)}")
        seen.append(os.path.basename(obj.filename))

    with gathered_replies(3) as gather:
        calls = gather.calls
        urlgrabber.parallel_begin(max_connections=3)
        g = URLGrabber(checkfunc=check)
        for i in range(9):
            g.urlgrab(server.url + f"/gen/2000/c{i}?latency=0.35", str(tmp_path / f"c{i}"),
                      async_=("k", 3))
        results = urlgrabber.parallel_end()
    assert len(gather.gathered) == 3 and gather.had_work, (gather.gathered, gather.had_work)
    # the first checkfunc after them ran while the outer loop had yet to read some of them
    first = next(at for at in checked_at if at >= gather.mark)
    read_first = set(calls[gather.mark:first]) & set(gather.gathered)
    assert read_first < set(gather.gathered), (calls[gather.mark:], gather.gathered)
    assert [r.ok for r in results] == [True] * 9, [r.exception for r in results]
    assert sorted(seen) == [f"c{i}" for i in range(9)]
    for i in range(9):
        assert (tmp_path / f"c{i}").read_bytes() == gen_bytes(2000, f"c{i}")
