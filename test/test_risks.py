"""Hardening: risks decided and pinned (one section per risk).

1. a replaced destination keeps its permission bits;
2. a redirect from https down to http is refused (allow_insecure_redirect);
3. a body longer than its Content-Length does not poison the next request;
4. SIGTERM during parallel_end() or a blocking call cleans up, then still kills;
5. a batch belongs to the thread that queued it;
6. a dead thread's kept-alive connections close without the garbage collector.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse

import pytest
from modes import MODES, grab, listing, read
from util import NAMED_TEMPS_CODE, TEMP_KINDS, gen_bytes, unnamed_files, use_temp_kind, wait_until

import urlgrabber
from urlgrabber.grabber import URLGrabber, URLGrabError
from urlgrabber.progress import BaseMeter

TEST_DIR = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------
# a tiny HTTP/1.1 server on raw sockets, for replies FaultServer cannot give


class RawServer:
    """Answers each request with ``respond(path)``: a list of bytes to send and
    floats (seconds to sleep), on keep-alive connections.

    ``open`` counts connections the client has not closed yet; ``requests``
    lists ``(connection number, path)`` in arrival order.
    """

    def __init__(self, respond) -> None:
        self.respond = respond
        self.lock = threading.Lock()
        self.open = 0
        self.requests: list[tuple[int, str]] = []
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, name="RawServer", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        number = 0
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            number += 1
            with self.lock:
                self.open += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return  # the client closed the connection
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1].decode()
                with self.lock:
                    self.requests.append((number, path))
                for part in self.respond(path):
                    if isinstance(part, bytes):
                        conn.sendall(part)
                    else:
                        time.sleep(part)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
            conn.close()

    def stop(self) -> None:
        self._stopping = True
        self._thread.join(5)
        self._listener.close()
        with self.lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def raw_server():
    """Factory: ``raw_server(respond)`` -> started RawServer, stopped at teardown."""
    servers: list[RawServer] = []

    def factory(respond) -> RawServer:
        srv = RawServer(respond)
        servers.append(srv)
        return srv

    yield factory
    for srv in servers:
        srv.stop()


def reply(body: bytes, length: int | None = None) -> bytes:
    """A keep-alive 200 with ``Content-Length: length`` (default: the body's)."""
    n = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n" % n + body


# ---------------------------------------------------------------------------
# 1. a replaced destination keeps its permission bits


@pytest.mark.parametrize("old_mode", [0o600, 0o640, 0o755], ids=oct)
@pytest.mark.parametrize("checkfunc", [False, True], ids=["plain", "checkfunc"])
@pytest.mark.parametrize("mode", MODES)
def test_replaced_destination_keeps_its_mode(mode, server, tmp_path, old_mode, checkfunc):
    dest = tmp_path / "pkg.rpm"
    dest.write_bytes(b"old bytes")
    os.chmod(dest, old_mode)
    kw = {"checkfunc": lambda obj: None} if checkfunc else {}
    grab(mode, URLGrabber(), f"{server.url}/gen/3000/pkg", str(dest), **kw)
    assert read(dest) == gen_bytes(3000, "pkg")
    assert oct(os.stat(dest).st_mode & 0o7777) == oct(old_mode)
    assert listing(tmp_path) == ["pkg.rpm"]


@pytest.mark.parametrize("mode", MODES)
def test_new_destination_gets_the_umask_mode(mode, server, tmp_path):
    old = os.umask(0o027)
    try:
        grab(mode, URLGrabber(), f"{server.url}/gen/100/new", str(tmp_path / "new"))
    finally:
        os.umask(old)
    assert oct(os.stat(tmp_path / "new").st_mode & 0o7777) == oct(0o640)


def test_setuid_bit_is_not_carried_over(server, tmp_path):
    """Only the rwx bits follow the old file: new bytes never inherit setuid/setgid."""
    dest = tmp_path / "tool"
    dest.write_bytes(b"old")
    os.chmod(dest, 0o6750)
    if os.stat(dest).st_mode & 0o6000 != 0o6000:
        pytest.skip("this file system drops setuid/setgid bits")
    URLGrabber().urlgrab(f"{server.url}/gen/10/tool", str(dest))
    assert oct(os.stat(dest).st_mode & 0o7777) == oct(0o750)


# ---------------------------------------------------------------------------
# 2. https -> http redirects are refused unless allowed


def redirect_url(frm, to: str) -> str:
    return f"{frm.url}/redirect?to={urllib.parse.quote(to, safe='')}&code=302"


@pytest.mark.parametrize("mode", MODES)
def test_https_to_http_redirect_is_refused(mode, make_server, ca_file, tmp_path):
    tls, plain = make_server(tls=True), make_server()
    target = plain.add_file("/pkg", b"clear text bytes")
    dest = tmp_path / "pkg"
    dest.write_bytes(b"old bytes")
    with pytest.raises(URLGrabError) as info:
        grab(mode, URLGrabber(ssl_ca_cert=ca_file), redirect_url(tls, target), str(dest))
    assert info.value.errno == 14
    assert info.value.code == 1  # curl: protocol disabled (in redirect)
    assert plain.requests == 0, "the clear-text server was asked"
    assert read(dest) == b"old bytes"
    assert listing(tmp_path) == ["pkg"]


def test_https_to_http_redirect_refused_for_urlread(make_server, ca_file):
    tls, plain = make_server(tls=True), make_server()
    target = plain.add_file("/pkg", b"clear text bytes")
    with pytest.raises(URLGrabError) as info:
        URLGrabber(ssl_ca_cert=ca_file).urlread(redirect_url(tls, target))
    assert info.value.errno == 14
    assert plain.requests == 0


@pytest.mark.parametrize("mode", MODES)
def test_https_to_http_redirect_allowed_by_option(mode, make_server, ca_file, tmp_path):
    tls, plain = make_server(tls=True), make_server()
    target = plain.add_file("/pkg", b"clear text bytes")
    g = URLGrabber(ssl_ca_cert=ca_file, allow_insecure_redirect=True)
    grab(mode, g, redirect_url(tls, target), str(tmp_path / "pkg"))
    assert read(tmp_path / "pkg") == b"clear text bytes"


@pytest.mark.parametrize("route", ["https-https", "http-http", "http-https"])
def test_other_redirects_are_still_followed(route, make_server, ca_file, tmp_path):
    frm_tls, to_tls = (part == "https" for part in route.split("-"))
    frm, to = make_server(tls=frm_tls), make_server(tls=to_tls)
    target = to.add_file("/pkg", b"the bytes")
    URLGrabber(ssl_ca_cert=ca_file).urlgrab(redirect_url(frm, target), str(tmp_path / "pkg"))
    assert read(tmp_path / "pkg") == b"the bytes"


def test_an_upgrade_redirect_checks_the_certificate_with_the_callers_ca(make_server, tmp_path):
    """http -> https: the TLS options apply to where the redirect leads (verified
    with the caller's CA, refused without it)."""
    plain, tls = make_server(), make_server(tls=True)
    target = tls.add_file("/pkg", b"the bytes")
    with pytest.raises(URLGrabError) as info:
        URLGrabber().urlgrab(redirect_url(plain, target), str(tmp_path / "pkg"))
    assert info.value.errno == 14 and not (tmp_path / "pkg").exists()


# ---------------------------------------------------------------------------
# 3. a body longer than its Content-Length does not poison the next request

FIRST = b"0123456789"
SECOND = b"the second body"


def excess_server(raw_server, late, excess: bytes = b"X" * 10) -> RawServer:
    """/first says Content-Length: 10 and sends ``excess`` too (by default 10 more
    bytes: 20 in all); every other path gets its own correct reply, on the same
    connection too.  The excess comes with the body (``late`` False), 20 ms later
    when libcurl has already put the connection back in its pool (True), or glued
    to the front of the next reply on that connection ("with-next")."""
    pending = threading.local()  # each connection is served by its own thread

    def respond(path):
        if path == "/first":
            if late == "with-next":
                pending.excess = excess
                return [reply(FIRST)]
            if late:
                return [reply(FIRST), 0.02, excess]
            return [reply(FIRST + excess, length=10)]
        left, pending.excess = getattr(pending, "excess", b""), b""
        return [left + reply(SECOND)]

    return raw_server(respond)


@pytest.mark.parametrize("late", [False, True, "with-next"], ids=["same-write", "late", "with-next"])
@pytest.mark.parametrize("observed", [False, True], ids=["direct", "observed"])
@pytest.mark.parametrize("mode", MODES)
def test_excess_body_does_not_poison_the_next_request(mode, raw_server, tmp_path, late, observed):
    srv = excess_server(raw_server, late)
    # a progress meter makes every chunk and header pass through Python ("observed")
    g = URLGrabber(progress_obj=BaseMeter() if observed else None)
    first, second = tmp_path / "first", tmp_path / "second"
    if mode == "blocking":
        g.urlgrab(f"{srv.url}/first", str(first))
        time.sleep(0.2)  # the extra bytes are there before the next request (within libcurl's 1 s)
        g.urlgrab(f"{srv.url}/second", str(second))
    else:
        urlgrabber.parallel_begin()
        for path in (first, second):  # one lane of one: the second reuses the first's connection
            g.urlgrab(f"{srv.url}/{path.name}", str(path), async_=("one", 1))
        results = urlgrabber.parallel_end()
        assert [r.ok for r in results] == [True, True], [r.exception for r in results]
    assert read(first) == FIRST
    assert read(second) == SECOND
    first_conn = next(n for n, p in srv.requests if p == "/first")
    assert any(n != first_conn for n, p in srv.requests if p == "/second"), \
        "the second body came from the poisoned connection"
    assert sorted(listing(tmp_path)) == ["first", "second"]


@pytest.mark.parametrize("excess", [b"X" * 10, b"HTTP/9 x\r\n\r\n"], ids=["curl-8", "curl-1"])
def test_excess_body_urlread_then_urlread(raw_server, excess):
    """Leftovers read as the next reply: curl error 8 (invalid status line), or 1
    (unsupported HTTP version) when they look like a status line."""
    srv = excess_server(raw_server, late=True, excess=excess)
    g = URLGrabber()
    assert g.urlread(f"{srv.url}/first") == FIRST
    time.sleep(0.2)
    assert g.urlread(f"{srv.url}/second") == SECOND


def test_post_is_not_sent_twice_after_garbage(raw_server):
    """The fresh-connection retry is for leftovers before a GET; a POST's garbage reply
    is the POST's failure (the server did get it), as before."""
    srv = excess_server(raw_server, late=True)
    g = URLGrabber()
    assert g.urlread(f"{srv.url}/first") == FIRST
    time.sleep(0.2)
    try:  # libcurl 8.16 notices the garbage on the idle connection and opens a new one
        assert g.urlread(f"{srv.url}/second", data=b"x=1") == SECOND
    except URLGrabError as e:  # newer ones send the POST and read the garbage as its reply
        assert e.errno == 14

    def seconds():
        return [p for _, p in srv.requests].count("/second")

    wait_until(seconds)  # (the client may read the garbage before the server reads the POST)
    time.sleep(0.2)
    assert seconds() == 1


# ---------------------------------------------------------------------------
# 4. SIGTERM during parallel_end() or a blocking call

SIGTERM_SCRIPT = textwrap.dedent(r"""
    import os, signal, sys
    # A parent may have passed SIGTERM on ignored (or handled) through exec: the
    # test is about the default disposition, so restore it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.path.insert(0, sys.argv[1])
    from server import FaultServer
    import urlgrabber
    from urlgrabber.grabber import URLGrabber

    dest_dir, how = sys.argv[2], sys.argv[3]
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
    try:
        if how == "batch":
            urlgrabber.parallel_begin(max_connections=6)
            for i in range(12):
                g.urlgrab(f"{srv.url}/gen/2000000/i{i}", os.path.join(dest_dir, f"i{i}"), async_=("k", 6))
            urlgrabber.parallel_end()
        else:
            g.urlgrab(f"{srv.url}/gen/2000000/i0", os.path.join(dest_dir, "i0"))
    except BaseException as e:
        print("CAUGHT", type(e).__name__, flush=True)
        sys.exit(3)
    print("FINISHED", flush=True)
""")


@pytest.mark.parametrize("kind", TEMP_KINDS)
@pytest.mark.parametrize("how", ["batch", "blocking"])
def test_sigterm_cleans_up_then_terminates(tmp_path, how, kind, monkeypatch):
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    use_temp_kind(monkeypatch, kind, dest_dir)  # (that it is to be had here; the child is told)
    names = [f"i{i}" for i in range(12)]
    for i, name in enumerate(names):
        (dest_dir / name).write_bytes(b"original %d" % i)
    script = (NAMED_TEMPS_CODE if kind == "named" else "") + SIGTERM_SCRIPT
    proc = subprocess.Popen([sys.executable, "-c", script, TEST_DIR, str(dest_dir), how],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the download never started"
        assert proc.stdout.readline().strip() == "RUNNING"
        if kind == "named":
            assert any(n.endswith(".part") for n in os.listdir(dest_dir)), "no temporary file to clean up"
        else:  # written, and nowhere to be seen in the directory
            assert unnamed_files(proc.pid, dest_dir), "no temporary file being written"
            assert sorted(os.listdir(dest_dir)) == sorted(names)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        stopped = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, out, err)
    assert "CAUGHT" not in out and "FINISHED" not in out, out
    assert stopped < 2.0, f"took {stopped:.1f}s to stop after SIGTERM"
    for i, name in enumerate(names):
        assert (dest_dir / name).read_bytes() == b"original %d" % i
    assert sorted(os.listdir(dest_dir)) == sorted(names), "temporary files left behind"


@pytest.fixture
def sigterm_default():
    """SIGTERM at its default disposition for the test; the old one restored after."""
    old = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, old)


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_handler_only_while_running(mode, server, tmp_path, sigterm_default):
    seen = []
    g = URLGrabber(checkfunc=lambda obj: seen.append(signal.getsignal(signal.SIGTERM)))
    grab(mode, g, f"{server.url}/gen/100/f", str(tmp_path / "f"))
    assert seen and seen[0] is not signal.SIG_DFL, "no handler while the download ran"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the default handler was not restored"


@pytest.mark.parametrize("mode", MODES)
def test_callers_sigterm_handler_is_left_alone(mode, server, tmp_path, sigterm_default):
    def mine(signum, frame):
        pass

    signal.signal(signal.SIGTERM, mine)
    seen = []
    g = URLGrabber(checkfunc=lambda obj: seen.append(signal.getsignal(signal.SIGTERM)))
    grab(mode, g, f"{server.url}/gen/100/f", str(tmp_path / "f"))
    assert seen == [mine]
    assert signal.getsignal(signal.SIGTERM) is mine


# ---------------------------------------------------------------------------
# 5. a batch belongs to the thread that queued it


def test_each_thread_runs_only_its_own_batch(server, tmp_path):
    barrier = threading.Barrier(2, timeout=10)
    outcome: dict[str, object] = {}

    def worker(name: str, begin: bool) -> None:
        try:
            g = URLGrabber()
            if begin:
                urlgrabber.parallel_begin(max_connections=3)
            for i in range(5):
                g.urlgrab(f"{server.url}/gen/{1000 + i}/{name}{i}", str(tmp_path / f"{name}{i}"), async_=True)
            barrier.wait()  # both queues are full before either runs
            outcome[name] = [(r.url.rsplit("/", 1)[-1], r.ok) for r in urlgrabber.parallel_end()]
        except BaseException as e:  # reported by the main thread
            outcome[name] = e
            barrier.abort()

    threads = [threading.Thread(target=worker, args=("a", True)),
               threading.Thread(target=worker, args=("b", False))]  # async_ without parallel_begin
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for name in ("a", "b"):
        assert outcome[name] == [(f"{name}{i}", True) for i in range(5)], outcome
        for i in range(5):
            assert read(tmp_path / f"{name}{i}") == gen_bytes(1000 + i, f"{name}{i}")
    assert urlgrabber.parallel_end() == []  # nothing leaked into the main thread's batch


# ---------------------------------------------------------------------------
# 6. a dead thread's connections close at once, not at the next garbage collection


def test_dead_threads_connections_close_without_gc(raw_server):
    srv = raw_server(lambda path: [reply(b"kept alive")])
    got = []
    gc.disable()  # so that only the fix, not a collection by chance, can close it
    try:
        thread = threading.Thread(target=lambda: got.append(URLGrabber().urlread(f"{srv.url}/x")))
        thread.start()
        thread.join(10)
        assert got == [b"kept alive"]
        assert srv.requests == [(1, "/x")]
        wait_until(lambda: srv.open == 0, timeout=3)
    finally:
        gc.enable()


def test_live_threads_connection_stays_open(raw_server):
    """The other side: while its thread lives, the engine keeps the connection for reuse."""
    srv = raw_server(lambda path: [reply(b"kept alive")])
    g = URLGrabber()
    done, finish = threading.Event(), threading.Event()

    def worker():
        g.urlread(f"{srv.url}/a")
        done.set()
        finish.wait(10)
        g.urlread(f"{srv.url}/b")

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert done.wait(10)
        time.sleep(0.2)
        assert srv.open == 1
    finally:
        finish.set()
        thread.join(10)
    assert [n for n, _ in srv.requests] == [1, 1], "the connection was not reused"
