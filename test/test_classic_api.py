"""The classic module-level names real programs call (issue #7), called the way they call them."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from util import gen_bytes

import urlgrabber.grabber as grabber
from urlgrabber import _engine
from urlgrabber.grabber import URLGrabber, URLGrabberOptions, URLGrabError
from urlgrabber.progress import BaseMeter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path) -> bytes:
    with open(path, "rb") as fo:
        return fo.read()


@pytest.fixture
def default_opts():
    """Put back what the deprecated setters change on ``default_grabber``."""
    opts = grabber.default_grabber.opts
    saved = {k: opts.__dict__[k] for k in ("throttle", "bandwidth", "progress_obj", "user_agent")}
    yield opts
    for k, v in saved.items():
        setattr(opts, k, v)


# ---------------------------------------------------------------------------
# reset_curl_obj


def test_reset_curl_obj_makes_the_next_request_connect_afresh(server, tmp_path):
    url = f"{server.url}/gen/5000/rc"
    grabber.urlgrab(url, str(tmp_path / "a"))
    grabber.urlgrab(url, str(tmp_path / "b"))
    assert server.connections == 1  # kept alive between blocking calls
    grabber.reset_curl_obj()
    grabber.urlgrab(url, str(tmp_path / "c"))
    assert server.connections == 2
    grabber.urlgrab(url, str(tmp_path / "d"))
    assert server.connections == 2  # the fresh connection is kept alive again
    assert read(tmp_path / "d") == gen_bytes(5000, "rc")


def test_reset_curl_obj_leaves_a_running_stream_alone(server):
    size = 3_000_000
    url = f"{server.url}/gen/{size}/rs"
    fo = grabber.urlopen(url)
    head = fo.read(1000)
    grabber.reset_curl_obj()  # the stream is paused, not finished: its connection stays
    rest = fo.read()
    fo.close()
    assert head + rest == gen_bytes(size, "rs")
    assert grabber.urlread(f"{server.url}/gen/10/after") == gen_bytes(10, "after")
    assert server.connections == 1
    grabber.reset_curl_obj()
    assert grabber.urlread(f"{server.url}/gen/10/after") == gen_bytes(10, "after")
    assert server.connections == 2


def test_reset_curl_obj_from_a_checkfunc_then_retry(server, tmp_path):
    """yum resets from its callbacks: the engine's loop is on the stack, and the retry must run."""
    calls = []

    def check(obj):
        calls.append(obj.url)
        grabber.reset_curl_obj()
        if len(calls) == 1:
            raise URLGrabError(-1, "retry after a network change")

    dest = tmp_path / "cf"
    assert grabber.urlgrab(f"{server.url}/gen/4000/cf", str(dest), retry=2, checkfunc=check) == str(dest)
    assert len(calls) == 2
    assert read(dest) == gen_bytes(4000, "cf")
    assert server.connections == 2


def test_reset_curl_obj_in_a_thread_without_an_engine():
    seen = []

    def run():
        grabber.reset_curl_obj()
        seen.append(getattr(_engine._local, "engine", "none"))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == ["none"]  # nothing to reset, and no engine made just for that


# ---------------------------------------------------------------------------
# DEBUG, set_logger, URLGRABBER_DEBUG


def _child(code: str, env_value: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("URLGRABBER_DEBUG", None)
    if env_value is not None:
        env["URLGRABBER_DEBUG"] = env_value
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=True)


_REPORT = (
    "import logging, urlgrabber.grabber as g\n"
    "d = g.DEBUG\n"
    "print(type(d).__name__, d.level if isinstance(d, logging.Logger) else None)\n"
    "if d: d.info('hello from the child')\n"
)


def test_urlgrabber_debug_logs_to_a_file(tmp_path):
    log = tmp_path / "ug.log"
    out = _child(_REPORT, f"INFO,{log}")
    assert out.stdout.split() == ["Logger", "20"]
    text = log.read_text()
    assert "hello from the child" in text
    assert "urlgrabber version" not in text  # a DEBUG line, below INFO


@pytest.mark.parametrize("spec, stream, level", [
    ("1,-", "stdout", 1),          # an int level; '-' is stdout
    ("WARNING,-", "stdout", 30),
    ("DEBUG,", "stderr", 10),      # empty filename: stderr
    ("INFO", "stderr", 20),        # no filename at all (classic's own documented form)
])
def test_urlgrabber_debug_levels_and_streams(spec, stream, level):
    out = _child(_REPORT, spec)
    assert f"Logger {level}" in out.stdout.splitlines()
    logged = out.stdout if stream == "stdout" else out.stderr
    other = out.stderr if stream == "stdout" else out.stdout
    if level <= 20:
        assert "hello from the child" in logged
    if level <= 10:
        assert "urlgrabber version  = " in logged
    assert "hello from the child" not in other


@pytest.mark.parametrize("spec", ["0", "-3,-", "", "NOSUCHLEVEL,-", f"INFO,{os.sep}no{os.sep}such{os.sep}dir.log"])
def test_urlgrabber_debug_off_or_unusable(spec):
    out = _child(_REPORT, spec)
    assert out.stdout.split() == ["NoneType", "None"]


def test_import_does_not_load_logging():
    out = _child("import sys, urlgrabber.grabber as g; print(g.DEBUG, 'logging' in sys.modules)", None)
    assert out.stdout.split() == ["None", "False"]


def test_init_default_logger_with_a_list_spec():
    code = ("import urlgrabber.grabber as g\n"
            "g._init_default_logger(['WARNING', '-'])\n"
            "g._init_default_logger(['WARNING', '-'])\n"  # again: one handler, not two
            "g.DEBUG.warning('once')\n"
            "g._init_default_logger('0')\n"
            "print(g.DEBUG)\n")
    out = _child(code, None)
    assert out.stdout.count("once") == 1
    assert out.stdout.splitlines()[-1] == "None"


def test_set_logger_sets_debug_here_and_in_mirror():
    import urlgrabber.mirror as mirror

    old = grabber.DEBUG
    logger = logging.getLogger("test_classic_api")
    try:
        grabber.set_logger(logger)
        assert grabber.DEBUG is logger
        assert mirror.DEBUG is logger
        grabber.set_logger(None)
        assert grabber.DEBUG is None and mirror.DEBUG is None
    finally:
        grabber.set_logger(old)


# ---------------------------------------------------------------------------
# retrygrab


def test_retrygrab_retries_after_a_checkfunc_asks(server, tmp_path):
    """Classic's own _retry_test: checkfunc as (fn, args, kwargs), errno -1 asks for another try."""
    calls = []

    def cfunc(obj, hello, there="foo"):
        calls.append((hello, there))
        if len(calls) < 3:
            raise URLGrabError(-1, "forcing retry")

    dest = str(tmp_path / "rg")
    url = f"{server.url}/gen/3000/rg"
    assert grabber.retrygrab(url, dest, checkfunc=(cfunc, ("hello",), {"there": "there"})) == dest
    assert calls == [("hello", "there")] * 3
    assert server.by_path["/gen/3000/rg"] == 3
    assert read(dest) == gen_bytes(3000, "rg")


@pytest.mark.parametrize("numtries, ok", [(3, True), (2, False)])
def test_retrygrab_numtries_and_retrycodes(server, tmp_path, numtries, ok):
    url = f"{server.url}/gen/100/nt?fail_first=2"
    dest = str(tmp_path / "nt")
    if ok:
        assert grabber.retrygrab(url, dest, numtries=numtries, retrycodes=[14]) == dest
        assert read(dest) == gen_bytes(100, "nt")
    else:
        with pytest.raises(URLGrabError) as info:
            grabber.retrygrab(url, dest, numtries=numtries, retrycodes=[14])
        assert info.value.errno == 14 and info.value.code == 503
    assert server.by_path["/gen/100/nt"] == min(numtries, 3)


def test_retrygrab_default_retrycodes_do_not_retry_http_errors(server, tmp_path):
    with pytest.raises(URLGrabError):
        grabber.retrygrab(f"{server.url}/gen/100/dr?fail_first=1", str(tmp_path / "dr"))
    assert server.by_path["/gen/100/dr"] == 1  # errno 14 is not in [-1,2,4,5,6,7]


def test_retrygrab_copy_local(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"local bytes")
    assert grabber.retrygrab(str(src)) == str(src)  # copy_local=0: the local path itself
    dest = str(tmp_path / "copy.bin")
    assert grabber.retrygrab(str(src), dest, copy_local=1) == dest
    assert read(dest) == b"local bytes"


# ---------------------------------------------------------------------------
# the deprecated setters


def test_set_user_agent(server, default_opts):
    grabber.set_user_agent("classic-client/1.0")
    seen = json.loads(grabber.urlread(f"{server.url}/echo/headers"))
    assert seen["user-agent"] == "classic-client/1.0"
    assert default_opts.user_agent == "classic-client/1.0"


def test_set_throttle_in_bytes_per_second(server, tmp_path, default_opts):
    size = 125_000
    grabber.set_throttle(100_000)
    t0 = time.monotonic()
    grabber.urlgrab(f"{server.url}/gen/{size}/st", str(tmp_path / "st"))
    elapsed = time.monotonic() - t0
    # (libcurl may let one second's worth through at once, as 8.16 does)
    assert elapsed >= 0.8 * (size - 100_000) / 100_000, f"{elapsed:.2f}s: not throttled"
    assert read(tmp_path / "st") == gen_bytes(size, "st")


def test_set_bandwidth_with_a_fractional_throttle(server, tmp_path, default_opts):
    size = 125_000
    grabber.set_throttle(0.5)
    grabber.set_bandwidth(200_000)  # half of it: 100000 B/s
    t0 = time.monotonic()
    grabber.urlgrab(f"{server.url}/gen/{size}/sb", str(tmp_path / "sb"))
    elapsed = time.monotonic() - t0
    # (libcurl may let one second's worth through at once, as 8.16 does)
    assert elapsed >= 0.8 * (size - 100_000) / 100_000, f"{elapsed:.2f}s: not throttled"
    assert default_opts.bandwidth == 200_000


class RecordingMeter(BaseMeter):
    def __init__(self):
        super().__init__()
        self.calls = []

    def start(self, *args, **kwargs):
        self.calls.append(("start", kwargs.get("size")))
        super().start(*args, **kwargs)

    def end(self, amount_read, now=None):
        self.calls.append(("end", amount_read))
        super().end(amount_read, now)


def test_set_progress_obj(server, tmp_path, default_opts):
    meter = RecordingMeter()
    grabber.set_progress_obj(meter)
    grabber.urlgrab(f"{server.url}/gen/20000/sp", str(tmp_path / "sp"))
    assert meter.calls == [("start", 20000), ("end", 20000)]


# ---------------------------------------------------------------------------
# helpers


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


@pytest.mark.parametrize("exc, expected", [
    (URLGrabError(14, "HTTP Error 404"), "[Errno 14] HTTP Error 404"),
    (ValueError("caf\u00e9"), "caf\u00e9"),
    (Exception("caf\u00e9".encode()), "caf\u00e9"),
    (Exception(b"\xff bad utf-8"), "\ufffd bad utf-8"),
    ("caf\u00e9".encode(), "caf\u00e9"),
    (OSError(2, "No such file"), "[Errno 2] No such file"),
])
def test_exception2msg(exc, expected):
    assert grabber.exception2msg(exc) == expected


def test_exception2msg_never_raises():
    msg = grabber.exception2msg(Unprintable("x"))
    assert isinstance(msg, str) and "Unprintable" in msg


@pytest.mark.parametrize("tup, normal, header", [
    (None, None, None),
    ((None, None), None, None),
    ((0, None), None, None),
    (("", ""), None, None),
    ((0, ""), None, None),
    ((5, 10), (5, 10), "bytes=5-9"),
    ((0, 10), (0, 10), "bytes=0-9"),
    ((5, None), (5, ""), "bytes=5-"),
    ((5,), (5, ""), "bytes=5-"),
    (("5", "10"), (5, 10), "bytes=5-9"),
    ((None, 10), (0, 10), "bytes=0-9"),
    ((7, 7), (7, 7), "bytes=7-6"),  # classic: an empty range makes a header like that
])
def test_range_tuple_helpers(tup, normal, header):
    assert grabber.range_tuple_normalize(tup) == normal
    assert grabber.range_tuple_to_header(tup) == header


@pytest.mark.parametrize("tup", [(10, 5), (1, 0)])
def test_range_tuple_end_before_start_is_errno_9(tup):
    for fn in (grabber.range_tuple_normalize, grabber.range_tuple_to_header):
        with pytest.raises(URLGrabError) as info:
            fn(tup)
        assert info.value.errno == 9


def test_make_callback():
    """As classic's test_make_callback."""
    def cb(e):
        pass

    tup_cb = (cb, ("stuff",), {"some": "dict"})
    g = URLGrabber()
    assert g._make_callback(cb) == (cb, (), {})
    assert g._make_callback(tup_cb) is tup_cb


@pytest.mark.parametrize("proxies, scheme, expected", [
    ({"http": "http://p:3128"}, "http", "http://p:3128"),
    ({"http": "http://p:3128"}, b"http", "http://p:3128"),
    ({"http": "http://p:3128"}, "https", "http://p:3128"),    # http and https stand in for each other
    ({"https": "http://s:3128"}, "http", "http://s:3128"),
    ({"http": "http://p:3128", "https": "http://s:3128"}, "https", "http://s:3128"),
    ({"http": "http://p:3128"}, "ftp", None),
    ({"ftp": "http://f:3128"}, "ftp", "http://f:3128"),
    ({"http": "_none_"}, "http", ""),
    ({"http": "http://p:3128"}, "file", None),
    (None, "http", None),
])
def test_find_proxy(proxies, scheme, expected):
    opts = URLGrabberOptions(proxies=proxies)
    opts.proxy = "stale"
    opts.find_proxy("whatever://host/", scheme)
    assert opts.proxy == expected


def test_proxy_option_defaults_to_none():
    assert URLGrabberOptions().proxy is None
    assert URLGrabber(proxies={"http": "http://p:1"}).opts.derive().proxy is None


# ---------------------------------------------------------------------------
# PyCurlFileObject


REFERENCE = b"".join(b"line %d: %s\n" % (i, b"x" * (i % 97)) for i in range(3000)) + b"no newline at the end"


@pytest.fixture
def wrapper(tmp_path):
    """As classic's FileObjectTests.setUp: a parsed file:// URL, a BytesIO as ``filename``."""
    path = tmp_path / "reference"
    path.write_bytes(REFERENCE)
    url, _parts = grabber.default_grabber.opts.urlparser.parse(str(path), grabber.default_grabber.opts)
    fo = grabber.PyCurlFileObject(url, io.BytesIO(), grabber.default_grabber.opts)
    yield fo
    fo.close()


def test_pycurlfileobject_readall(wrapper):
    assert wrapper.read() == REFERENCE


def test_pycurlfileobject_readline(wrapper):
    out = io.BytesIO()
    while True:
        s = wrapper.readline()
        out.write(s)
        if not s:
            break
    assert out.getvalue() == REFERENCE


def test_pycurlfileobject_readlines(wrapper):
    lines = wrapper.readlines()
    assert b"".join(lines) == REFERENCE
    assert len(lines) == 3001


def test_pycurlfileobject_smallread(wrapper):
    out = io.BytesIO()
    while True:
        s = wrapper.read(23)
        out.write(s)
        if not s:
            break
        assert len(s) == 23 or out.tell() == len(REFERENCE)
    assert out.getvalue() == REFERENCE


def test_pycurlfileobject_over_http(server):
    size = 3_000_000
    url = f"{server.url}/gen/{size}/pc"
    fo = grabber.PyCurlFileObject(url, None, URLGrabberOptions())
    assert fo.url == url and fo.geturl() == url
    assert fo.http_code == 200
    assert fo.hdr["Content-Length"] == str(size) and fo.info() is fo.hdr
    first = fo.read(1_500_000)  # more than a stream buffers (1 MiB)
    assert len(first) == 1_500_000  # read(n) returns n bytes until the end, as classic
    line = fo.readline()
    rest = fo.read()
    fo.close()
    assert first + line + rest == gen_bytes(size, "pc")
    assert line.endswith(b"\n") or not rest
    with pytest.raises(ValueError):
        fo.read()


def test_pycurlfileobject_to_a_filename(server, tmp_path):
    """With a filename the body is downloaded there first (classic's _do_grab) and read back."""
    dest = tmp_path / "pcf"
    fo = grabber.PyCurlFileObject(f"{server.url}/gen/70000/pcf", str(dest), grabber.default_grabber.opts)
    try:
        assert read(dest) == gen_bytes(70000, "pcf")  # complete before the first read
        assert fo.read(10) == gen_bytes(70000, "pcf")[:10]
        assert fo.read() == gen_bytes(70000, "pcf")[10:]
        assert fo.http_code == 200
    finally:
        fo.close()
    assert server.requests == 1


def test_pycurlfileobject_errors(server, tmp_path):
    with pytest.raises(URLGrabError) as info:
        grabber.PyCurlFileObject(f"{server.url}/status/404", None, URLGrabberOptions(retry=3, retrycodes=[14]))
    assert info.value.errno == 14 and info.value.code == 404
    assert server.requests == 1  # one attempt: retries are URLGrabber's
    with pytest.raises(URLGrabError) as info:
        grabber.PyCurlFileObject(f"{server.url}/status/500", str(tmp_path / "e"), URLGrabberOptions())
    assert info.value.errno == 14
    assert os.listdir(tmp_path) == []
    with pytest.raises(URLGrabError) as info:
        grabber.PyCurlFileObject((tmp_path / "missing").as_uri(), None, URLGrabberOptions())
    assert info.value.errno == 2


def test_help_of_urlgrabber_lists_every_option_with_its_default():
    import pydoc

    text = pydoc.render_doc(URLGrabber, renderer=pydoc.plaintext)
    for name, _default, _check, doc in grabber._OPTIONS:
        assert f"{name} " in text and doc in text, name
    assert "[default: 300]" in text  # timeout
