"""Classic callers' view of a download: what checkfunc sees on disk, callback objects,
progress in a batch, error URLs, Ctrl-C, check_timestamp, URLParser types, batch globals.

Each test calls the library the way a classic program (yum, anaconda, osc) does.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.parse

import pytest
from modes import MODES, listing, read
from util import gen_bytes

import urlgrabber
from urlgrabber import grabber
from urlgrabber._sinks import backup_path
from urlgrabber.errors import URLGrabError
from urlgrabber.grabber import URLGrabber, URLGrabberOptions, URLParser
from urlgrabber.progress import MultiFileHelper, TextMultiFileMeter

OLD = b"the old file, precious\n"


def _run(mode, g, url, dest, **kw):
    """One urlgrab in ``mode``; returns (result or None, exception or None), never raising a URLGrabError."""
    if mode == "blocking":
        try:
            return g.urlgrab(url, dest, **kw), None
        except URLGrabError as e:
            return None, e
    failed = []
    urlgrabber.parallel_begin()
    g.urlgrab(url, dest, async_=True, failfunc=lambda obj: failed.append(obj.exception), **kw)
    results = urlgrabber.parallel_end()
    assert len(results) == 1
    return (None, failed[0]) if failed else (results[0].filename, None)


def _prepare(tmp_path, existing: bool, reget):
    dest = tmp_path / "pkg.rpm"
    if existing:
        dest.write_bytes(OLD)
    return str(dest)


def _expected(body: bytes, existing: bool, reget) -> bytes:
    """What the destination holds once the download is complete (reget resumes after OLD)."""
    if existing and reget:
        return OLD + body[len(OLD):]
    return body


CASES = [(mode, reget, existing) for mode in MODES for reget in (None, "simple") for existing in (False, True)]
IDS = [f"{m}-{r or 'noreget'}-{'existing' if e else 'new'}" for m, r, e in CASES]


# ---------------------------------------------------------------------------
# checkfunc sees the destination, as in classic


@pytest.mark.parametrize(("mode", "reget", "existing"), CASES, ids=IDS)
def test_checkfunc_reads_the_destination_by_its_own_path(mode, reget, existing, g, server, tmp_path):
    dest = _prepare(tmp_path, existing, reget)
    body = gen_bytes(70000, "own")
    seen = {}

    def verify(obj):
        seen["filename"] = obj.filename
        with open(dest, "rb") as fo:  # the caller's own path, not obj.filename
            seen["bytes"] = fo.read()
        seen["mtime"] = os.stat(dest).st_mtime
        seen["names"] = [n for n in listing(tmp_path) if n.endswith(".part")]

    result, err = _run(mode, g, server.url + "/gen/70000/own", dest, checkfunc=verify, reget=reget)
    assert err is None
    assert result == dest
    assert seen["filename"] == dest
    assert seen["bytes"] == _expected(body, existing, reget)
    assert seen["mtime"] == 1577836800.0  # the server's Last-Modified is set before checkfunc runs
    assert seen["names"] == []  # no temporary file left over while checkfunc runs
    assert read(dest) == _expected(body, existing, reget)
    assert listing(tmp_path) == ["pkg.rpm"]


@pytest.mark.parametrize(("mode", "reget", "existing"), CASES, ids=IDS)
def test_checkfunc_that_renames_the_file_away(mode, reget, existing, g, server, tmp_path):
    """yum's --downloadonly: checkfunc moves the package; the library must not touch the path again."""
    dest = _prepare(tmp_path, existing, reget)
    moved = str(tmp_path / "moved.rpm")
    kept = []

    def verify(obj):
        kept.append(obj.filename)  # yum keeps it as the package's local path
        os.stat(obj.filename)
        os.rename(obj.filename, moved)

    _result, err = _run(mode, g, server.url + "/gen/50000/mv", dest, checkfunc=verify, reget=reget)
    assert err is None, err
    assert kept == [dest]
    assert read(moved) == _expected(gen_bytes(50000, "mv"), existing, reget)
    assert os.stat(moved).st_mtime == 1577836800.0
    assert listing(tmp_path) == ["moved.rpm"]


@pytest.mark.parametrize(("mode", "reget", "existing"), CASES, ids=IDS)
def test_checkfunc_that_raises(mode, reget, existing, g, server, tmp_path):
    dest = _prepare(tmp_path, existing, reget)
    calls = []

    def verify(obj):
        calls.append(read(obj.filename))
        raise URLGrabError(-1, "bad checksum")

    _result, err = _run(mode, g, server.url + "/gen/40000/bad", dest, checkfunc=verify, reget=reget)
    assert err is not None and err.errno == -1
    assert calls == [_expected(gen_bytes(40000, "bad"), existing, reget)]
    if reget:
        # reget works in place on purpose: the rejected file stays, as in classic
        assert listing(tmp_path) == ["pkg.rpm"]
    elif existing:
        assert read(dest) == OLD  # the old file is back
        assert listing(tmp_path) == ["pkg.rpm"]
    else:
        assert listing(tmp_path) == []  # the rejected file is gone


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_checkfunc_rejection_then_retry_checks_the_new_copy(mode, existing, g, server, tmp_path):
    dest = _prepare(tmp_path, existing, None)
    contents = []

    def verify(obj):
        contents.append(read(dest))
        if len(contents) == 1:
            raise URLGrabError(-1, "try again")

    _result, err = _run(mode, g, server.url + "/gen/30000/rt", dest, checkfunc=verify, retry=2)
    assert err is None
    assert contents == [gen_bytes(30000, "rt")] * 2
    assert read(dest) == gen_bytes(30000, "rt")
    assert listing(tmp_path) == ["pkg.rpm"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("exc", [KeyError, KeyboardInterrupt])
def test_checkfunc_raising_another_exception_restores_the_old_file(mode, exc, g, server, tmp_path):
    """Not a URLGrabError: classic lets it propagate; the old destination is put back first."""
    dest = _prepare(tmp_path, True, None)

    def verify(obj):
        assert read(obj.filename) == gen_bytes(20000, "ex")
        raise exc("from checkfunc")

    with pytest.raises(exc):
        if mode == "blocking":
            g.urlgrab(server.url + "/gen/20000/ex", dest, checkfunc=verify)
        else:
            urlgrabber.parallel_begin()
            g.urlgrab(server.url + "/gen/20000/ex", dest, checkfunc=verify, async_=True)
            urlgrabber.parallel_end()
    assert read(dest) == OLD
    assert listing(tmp_path) == ["pkg.rpm"]


def test_old_destination_hard_link_keeps_old_bytes(g, server, tmp_path):
    """The new file replaces dest by rename: another link to the old inode keeps the old bytes."""
    dest = _prepare(tmp_path, True, None)
    os.link(dest, tmp_path / "link")
    g.urlgrab(server.url + "/gen/9000/hl", dest, checkfunc=lambda obj: None)
    assert read(dest) == gen_bytes(9000, "hl")
    assert read(tmp_path / "link") == OLD
    assert sorted(listing(tmp_path)) == ["link", "pkg.rpm"]


def test_crash_during_checkfunc_leaves_a_backup_that_the_next_download_removes(server, tmp_path):
    dest = _prepare(tmp_path, True, None)
    child = textwrap.dedent(f"""
        import os
        from urlgrabber.grabber import urlgrab
        urlgrab({server.url + "/gen/8000/crash"!r}, {dest!r}, checkfunc=lambda obj: os._exit(7))
    """)
    proc = subprocess.run([sys.executable, "-c", child], timeout=60)
    assert proc.returncode == 7
    backup = backup_path(dest)
    assert read(backup) == OLD  # documented: a crash inside checkfunc leaves the old file here
    assert read(dest) == gen_bytes(8000, "crash")
    urlgrabber.urlgrab(server.url + "/gen/8001/next", dest)
    assert not os.path.exists(backup)
    assert listing(tmp_path) == ["pkg.rpm"]


def test_backup_name_of_a_long_destination_fits(g, server, tmp_path):
    dest = str(tmp_path / ("p" * 250))
    with open(dest, "wb") as fo:
        fo.write(OLD)
    assert len(os.path.basename(backup_path(dest))) <= 255
    _result, err = _run("blocking", g, server.url + "/gen/100/long", dest,
                       checkfunc=lambda obj: (_ for _ in ()).throw(URLGrabError(-1, "no")))
    assert err.errno == -1
    assert read(dest) == OLD
    g.urlgrab(server.url + "/gen/100/long", dest, checkfunc=lambda obj: None)
    assert read(dest) == gen_bytes(100, "long")
    assert listing(tmp_path) == ["p" * 250]


def test_urlread_checkfunc_object_has_data_and_url_and_no_filename(g, server):
    seen = {}

    def verify(obj):
        seen["has_filename"] = hasattr(obj, "filename")
        seen["data"] = obj.data
        seen["url"] = obj.url

    url = server.url + "/gen/1234/rd"
    assert g.urlread(url, checkfunc=verify) == gen_bytes(1234, "rd")
    assert seen == {"has_filename": False, "data": gen_bytes(1234, "rd"), "url": url}


# ---------------------------------------------------------------------------
# one request's local failure goes to its failfunc, never to the whole batch


def test_batch_local_write_error_goes_to_that_requests_failfunc(g, server, tmp_path):
    (tmp_path / "adir").mkdir()
    failed = []
    urlgrabber.parallel_begin()
    for i in range(6):
        name = "adir" if i == 3 else f"f{i}"
        g.urlgrab(server.url + f"/gen/2000/w{i}", str(tmp_path / name), async_=True,
                  checkfunc=lambda obj: None,
                  failfunc=lambda obj: failed.append((obj.url, obj.exception.errno)))
    results = urlgrabber.parallel_wait()
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert failed == [(server.url + "/gen/2000/w3", 16)]
    for i in (0, 1, 2, 4, 5):
        assert read(tmp_path / f"f{i}") == gen_bytes(2000, f"w{i}")
    assert sorted(listing(tmp_path)) == ["adir", "f0", "f1", "f2", "f4", "f5"]
    assert listing(tmp_path / "adir") == []


def test_a_bad_request_in_a_batch_fails_alone(g, server, tmp_path):
    """A bad option value is refused when the request is made (errno 1); one that cannot
    start (its destination is a directory) fails through its failfunc; the rest arrive."""
    (tmp_path / "s1").mkdir()
    failed = []
    urlgrabber.parallel_begin()
    for i in range(4):
        if i == 2:
            with pytest.raises(URLGrabError) as info:
                g.urlgrab(server.url + f"/gen/300/s{i}", str(tmp_path / f"s{i}"), async_=True, timeout="abc")
            assert info.value.errno == 1 and len(str(info.value)) < 200
            continue
        g.urlgrab(server.url + f"/gen/300/s{i}", str(tmp_path / f"s{i}"), async_=True,
                  failfunc=lambda obj: failed.append(obj.exception))
    results = urlgrabber.parallel_end()
    assert [r.ok for r in results] == [True, False, True]
    assert len(failed) == 1 and failed[0].errno == 16
    assert sorted(listing(tmp_path)) == ["s0", "s1", "s3"]


# ---------------------------------------------------------------------------
# progress in a batch reaches a classic meter subclass as bytes arrive


class CountingHelper(MultiFileHelper):
    def update(self, amount_read, now=None):
        self.master.helper_updates.append((self.basename, amount_read))
        super().update(amount_read, now)


class CountingMultiMeter(TextMultiFileMeter):
    helperclass = CountingHelper

    def __init__(self, fo):
        super().__init__(fo=fo)
        self.helper_updates = []
        self.meter_updates = 0

    def update_meter(self, meter, now=None):
        self.meter_updates += 1
        super().update_meter(meter, now)


def test_batch_progress_reaches_update_meter_during_transfers(g, server, tmp_path):
    import io

    size = 600000
    meter = CountingMultiMeter(io.StringIO())
    urlgrabber.parallel_begin()
    for name in ("a", "b"):
        g.urlgrab(server.url + f"/gen/{size}/{name}?bw=3000000", str(tmp_path / name), async_=True,
                  multi_progress_obj=meter)
    results = urlgrabber.parallel_end()
    assert all(r.ok for r in results)
    for name in ("a", "b"):
        amounts = [n for base, n in meter.helper_updates if base == name]
        assert len(amounts) >= 3, meter.helper_updates
        assert amounts == sorted(amounts)
        assert any(n < size for n in amounts)  # progress while the body arrives, not only at the end
    assert meter.meter_updates >= 2  # update_meter itself is called (it redraws at most every 0.1 s)


# ---------------------------------------------------------------------------
# URLGrabError.url is where the failure happened (after redirects)


@pytest.mark.parametrize("mode", MODES)
def test_error_url_is_the_url_after_redirects(mode, g, server, tmp_path):
    target = server.url + "/status/404"
    url = server.url + "/redirect?to=" + urllib.parse.quote(target, safe="") + "&code=302"
    _result, err = _run(mode, g, url, str(tmp_path / "key"))
    assert err.code == 404
    assert err.url == target
    assert target in str(err)


@pytest.mark.parametrize("mode", MODES)
def test_error_url_after_redirect_hides_the_password(mode, g, server, tmp_path):
    host = urllib.parse.urlsplit(server.url).netloc
    target = f"http://bob:s3cret@{host}/status/404"
    url = server.url + "/redirect?to=" + urllib.parse.quote(target, safe="") + "&code=302"
    _result, err = _run(mode, g, url, str(tmp_path / "key"))
    assert err.code == 404
    assert "s3cret" not in err.url and "s3cret" not in str(err)
    assert err.url.endswith(f"{host}/status/404")


def test_error_url_without_redirect_is_the_requested_url(g, server, tmp_path):
    url = server.url + "/status/500"
    _result, err = _run("blocking", g, url, str(tmp_path / "x"))
    assert err.url == url


# ---------------------------------------------------------------------------
# no_cache sends classic's header bytes


def _capture_one_request(response: bytes) -> tuple[str, list[bytes], threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.settimeout(10)
    got: list[bytes] = []

    def serve():
        try:
            conn, _ = sock.accept()
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            got.append(data)
            conn.sendall(response)
            conn.close()
        finally:
            sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}/x", got, thread


def test_no_cache_sends_classic_pragma_bytes(g):
    url, got, thread = _capture_one_request(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    assert g.urlread(url, no_cache=True) == b"ok"
    thread.join(10)
    assert b"\r\nPragma:no-cache\r\n" in got[0]


# ---------------------------------------------------------------------------
# URLParser keeps the type it is given; opts= as classic's methods take it


def test_urlparser_keeps_bytes_and_str():
    opts = URLGrabberOptions()
    url, parts = URLParser().parse(b"http://example.org/a b$c", opts)
    assert url == b"http://example.org/a%20b$c"
    assert all(isinstance(p, bytes) for p in parts)
    url, parts = URLParser().parse("http://example.org/a b", opts)
    assert url == "http://example.org/a%20b"
    assert all(isinstance(p, str) for p in parts)
    url, parts = URLParser().parse("pkg.rpm", URLGrabberOptions(prefix=b"http://m/repo"))
    assert url == "http://m/repo/pkg.rpm"
    url, parts = URLParser().parse(b"pkg.rpm", URLGrabberOptions(prefix="http://m/repo/"))
    assert url == b"http://m/repo/pkg.rpm"
    url, parts = URLParser().parse(b"/tmp/some file", opts)
    assert url == b"file:///tmp/some%20file"


def test_urlparser_subclass_hooks_get_the_callers_type(g, server, tmp_path):
    seen = []

    class Parser(URLParser):
        def process_http(self, parts, url):
            seen.append(type(url))
            return super().process_http(parts, url)

    g2 = URLGrabber(urlparser=Parser())
    assert g2.urlread((server.url + "/gen/10/tp").encode()) == gen_bytes(10, "tp")
    assert seen == [bytes]
    g2.urlgrab(server.url + "/gen/10/tp", str(tmp_path / "tp"))
    assert seen == [bytes, str]


def test_methods_take_classic_opts_argument(g, server, tmp_path):
    opts = URLGrabberOptions(user_agent="via-opts/1")
    body = g.urlread(server.url + "/echo/headers", opts=opts)
    assert b'"user-agent": "via-opts/1"' in body
    body = g.urlread(server.url + "/echo/headers", opts=opts, user_agent="kw-wins/2")
    assert b'"user-agent": "kw-wins/2"' in body
    assert g.urlgrab(server.url + "/gen/10/o", str(tmp_path / "o"), opts=opts) == str(tmp_path / "o")


def test_bytes_and_pathlike_filenames(g, server, tmp_path):
    assert g.urlgrab(server.url + "/gen/10/bf", os.fsencode(tmp_path / "b")) == str(tmp_path / "b")
    assert g.urlgrab(server.url + "/gen/10/pf", tmp_path / "p") == str(tmp_path / "p")
    assert read(tmp_path / "b") == gen_bytes(10, "bf")


# ---------------------------------------------------------------------------
# batch globals come from default_grabber.opts, as yum sets them


@pytest.fixture
def classic_defaults():
    saved = dict(grabber.default_grabber.opts.__dict__)
    yield grabber.default_grabber.opts
    grabber.default_grabber.opts.__dict__.clear()
    grabber.default_grabber.opts.__dict__.update(saved)


def test_batch_limit_is_default_grabbers_max_connections(classic_defaults, make_server, tmp_path):
    server = make_server(latency=0.05)
    classic_defaults.max_connections = 1
    other = URLGrabber(max_connections=8)
    urlgrabber.parallel_begin()
    for i in range(4):
        other.urlgrab(server.url + f"/gen/100/c{i}", str(tmp_path / f"c{i}"), async_=(f"key{i}", 4))
    assert all(r.ok for r in urlgrabber.parallel_end())
    assert server.peak_inflight == 1

    classic_defaults.max_connections = 3
    server.reset_stats()
    urlgrabber.parallel_begin()
    for i in range(6):
        other.urlgrab(server.url + f"/gen/100/d{i}", str(tmp_path / f"d{i}"), async_=(f"key{i}", 4))
    assert all(r.ok for r in urlgrabber.parallel_end())
    assert server.peak_inflight == 3


# ---------------------------------------------------------------------------
# classic's debug lines


def test_retry_log_lines_when_a_logger_is_set(g, server, tmp_path):
    records = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("test-urlgrabber-compat")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(ListHandler())
    saved = grabber.DEBUG
    grabber.set_logger(logger)
    try:
        url = server.url + "/status/503"
        _result, err = _run("blocking", g, url, str(tmp_path / "x"), retry=2, retrycodes=[14])
        assert err.code == 503
        _result, err = _run("blocking", g, url, str(tmp_path / "x"), retry=2)
    finally:
        grabber.set_logger(saved)
    assert records.count(f"attempt 1/2: {url}") == 2
    assert f"attempt 2/2: {url}" in records
    assert "retries exceeded, re-raising" in records
    assert "retrycode (14) not in list [-1, 2, 4, 5, 6, 7], re-raising" in records
    assert any(r.startswith("exception: ") and "503" in r for r in records)


def test_logspec_option_sets_the_debug_level(g, server, tmp_path):
    """Classic's per-call logspec configures the debug logger like URLGRABBER_DEBUG."""
    saved = grabber.DEBUG
    log = tmp_path / "debug.log"
    try:
        g.urlgrab(server.url + "/gen/10/ls", str(tmp_path / "ls"), logspec=f"INFO,{log}")
        assert grabber.DEBUG is not None and grabber.DEBUG.level == logging.INFO
        g.urlgrab(server.url + "/gen/10/ls2", str(tmp_path / "ls2"))
        for handler in grabber.DEBUG.handlers:
            handler.flush()
        assert f"attempt 1/None: {server.url}/gen/10/ls2" in log.read_text()
    finally:
        grabber.set_logger(saved)


def test_batch_uses_default_grabbers_timedhosts(classic_defaults, make_server, tmp_path):
    """yum sets default_grabber.opts.timedhosts once; a group on another grabber records there."""
    from urlgrabber.mirror import MirrorGroup

    m1, m2 = make_server(), make_server()
    path = tmp_path / "timedhosts"
    classic_defaults.timedhosts = str(path)
    mg = MirrorGroup(URLGrabber(), [m1.url, m2.url])
    urlgrabber.parallel_begin()
    for i in range(4):
        mg.urlgrab(f"gen/1000/t{i}", str(tmp_path / f"t{i}"), async_=True)
    assert all(r.ok for r in urlgrabber.parallel_end())
    text = path.read_text()
    assert f"127.0.0.1:{m1.port}" in text or f"127.0.0.1:{m2.port}" in text
