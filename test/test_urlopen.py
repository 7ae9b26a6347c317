"""urlopen: a streaming, file-like object over one transfer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from util import gen_bytes, wait_until

import urlgrabber
from urlgrabber import URLGrabber, URLGrabError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

LINES = b"".join(b"line %d %s\n" % (i, b"x" * (i % 50)) for i in range(2000))


@pytest.fixture
def lines_url(server) -> str:
    return server.add_file("/lines.txt", LINES)


@pytest.fixture(params=[False, True], ids=["content-length", "chunked"])
def chunked(request) -> bool:
    return request.param


def q(chunked: bool) -> str:
    return "?chunked=1" if chunked else ""


# ---------------------------------------------------------------------------
# reading


def test_read_all(server, chunked):
    with urlgrabber.urlopen(server.url + "/gen/300000/all" + q(chunked)) as fo:
        assert fo.read() == gen_bytes(300000, "all")
        assert fo.read() == b""
        assert fo.read(10) == b""


def test_read_n(server, chunked):
    body = gen_bytes(200000, "rn")
    fo = urlgrabber.urlopen(server.url + "/gen/200000/rn" + q(chunked))
    try:
        got = []
        for n in (0, 1, 10, 1000, 65536, 7):
            data = fo.read(n)
            assert len(data) <= n
            got.append(data)
        assert fo.read(0) == b""
        while True:
            data = fo.read(4096)
            assert len(data) <= 4096
            if not data:
                break
            got.append(data)
        assert b"".join(got) == body
    finally:
        fo.close()


def test_read_n_returns_full_chunks_before_the_end(server):
    body = gen_bytes(100000, "full")
    with urlgrabber.urlopen(server.url + "/gen/100000/full") as fo:
        assert fo.read(30000) == body[:30000]
        assert fo.read(30000) == body[30000:60000]
        assert fo.read(30000) == body[60000:90000]
        assert fo.read(30000) == body[90000:]
        assert fo.read(30000) == b""


def test_readline(lines_url):
    expected = LINES.splitlines(keepends=True)
    with urlgrabber.urlopen(lines_url) as fo:
        for want in expected:
            assert fo.readline() == want
        assert fo.readline() == b""


def test_readline_size(server):
    url = server.add_file("/rl.txt", b"abcdefghij\nklm\nno-newline-at-end")
    with urlgrabber.urlopen(url) as fo:
        assert fo.readline(4) == b"abcd"
        assert fo.readline(100) == b"efghij\n"
        assert fo.readline() == b"klm\n"
        assert fo.readline() == b"no-newline-at-end"
        assert fo.readline() == b""


def test_readline_very_long_line(server):
    body = b"y" * (3 << 20) + b"\nshort\n"
    url = server.add_file("/long.txt", body)
    with urlgrabber.urlopen(url) as fo:
        assert fo.readline() == b"y" * (3 << 20) + b"\n"
        assert fo.readline() == b"short\n"
        assert fo.readline() == b""


def test_readlines(lines_url):
    with urlgrabber.urlopen(lines_url) as fo:
        assert fo.readlines() == LINES.splitlines(keepends=True)


def test_iteration(server, chunked):
    url = server.add_file("/it.txt", LINES) + q(chunked)
    with urlgrabber.urlopen(url) as fo:
        assert list(fo) == LINES.splitlines(keepends=True)


def test_mixed_read_and_readline(lines_url):
    with urlgrabber.urlopen(lines_url) as fo:
        first = fo.readline()
        rest = fo.read(5)
        line = fo.readline()
        tail = fo.read()
    assert first + rest + line + tail == LINES
    assert line.endswith(b"\n")


def test_empty_body(server):
    url = server.add_file("/empty", b"")
    with urlgrabber.urlopen(url) as fo:
        assert fo.http_code == 200
        assert fo.read() == b""
        assert fo.readline() == b""
        assert list(fo) == []


def test_big_body_read_in_one_call(server):
    with urlgrabber.urlopen(server.url + "/gen/5000000/one") as fo:
        assert fo.read() == gen_bytes(5000000, "one")


def test_local_file(tmp_path):
    path = tmp_path / "local.txt"
    path.write_bytes(LINES)
    with urlgrabber.urlopen(path.as_uri()) as fo:
        assert fo.readline() == LINES.splitlines(keepends=True)[0]
        assert fo.read() == b"".join(LINES.splitlines(keepends=True)[1:])


# ---------------------------------------------------------------------------
# metadata


def test_geturl_headers_http_code(server):
    url = server.url + "/gen/5000/meta"
    with urlgrabber.urlopen(url) as fo:
        assert fo.geturl() == url
        assert fo.http_code == 200
        assert fo.headers["content-length"] == "5000"
        assert fo.headers["Content-Type"] == "application/octet-stream"
        assert fo.headers["last-modified"] == "Wed, 01 Jan 2020 00:00:00 GMT"
        assert fo.info()["content-length"] == "5000"
        assert fo.read() == gen_bytes(5000, "meta")


def test_headers_of_chunked_body(server):
    with urlgrabber.urlopen(server.url + "/gen/5000/mc?chunked=1") as fo:
        assert fo.headers["transfer-encoding"] == "chunked"
        assert fo.headers["content-length"] is None
        assert fo.read() == gen_bytes(5000, "mc")


def test_headers_after_redirect_are_the_final_ones(server):
    with urlgrabber.urlopen(server.url + "/redirect?to=/gen/777/redir") as fo:
        assert fo.http_code == 200
        assert fo.headers["content-length"] == "777"
        assert fo.read() == gen_bytes(777, "redir")


def test_range_and_http_code_206(server):
    with urlgrabber.urlopen(server.url + "/gen/10000/rng", range=(100, 200)) as fo:
        assert fo.http_code == 206
        assert fo.read() == gen_bytes(10000, "rng")[100:200]


def test_options_apply(server):
    g = URLGrabber(user_agent="stream-agent/1")
    with g.urlopen(server.url + "/echo/headers", http_headers=(("X-Test", "yes"),)) as fo:
        seen = json.loads(fo.read())
    assert seen["user-agent"] == "stream-agent/1"
    assert seen["x-test"] == "yes"


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_raised_at_open(server, status):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlopen(server.url + f"/status/{status}")
    assert info.value.errno == 14
    assert info.value.code == status


def test_connection_refused_raised_at_open(dead_url):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlopen(dead_url + "/x")
    assert info.value.errno == 14
    assert info.value.code == 7


def test_header_timeout_raised_at_open(server):
    t0 = time.monotonic()
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlopen(server.url + "/gen/10/t?stall_headers=4", timeout=0.5)
    assert info.value.errno == 12
    assert 0.5 <= time.monotonic() - t0 < 1.5  # (libcurl 7.88 takes 0.75 s)


def test_retry_at_open(server):
    with urlgrabber.urlopen(server.url + "/gen/1000/ro?fail_first=2", retry=3, retrycodes=[14]) as fo:
        assert fo.read() == gen_bytes(1000, "ro")
    assert server.by_path["/gen/1000/ro"] == 3


@pytest.mark.parametrize(("size", "cut"), [(400000, 200000), (6000000, 3000000)])
def test_truncated_body_raises(server, size, cut):
    """A body cut short raises errno 14 (at open, or from a read); what was read is a true prefix."""
    body = gen_bytes(size, "tr")
    got = []
    fo = None
    with pytest.raises(URLGrabError) as info:
        fo = urlgrabber.urlopen(server.url + f"/gen/{size}/tr?truncate={cut}")
        while True:
            data = fo.read(8192)
            if not data:
                break
            got.append(data)
    if fo is not None:
        fo.close()
    assert info.value.errno == 14
    data = b"".join(got)
    assert len(data) <= cut
    assert data == body[:len(data)]


def test_truncated_body_resumed_by_retry(server):
    server.defaults["truncate"] = 150000

    def on_failure(obj):
        server.defaults.pop("truncate", None)

    with urlgrabber.urlopen(server.url + "/gen/400000/trr", retry=2, retrycodes=[14],
                            failure_callback=on_failure) as fo:
        data = fo.read()
    assert data == gen_bytes(400000, "trr")
    assert [e["range"] for e in server.log] == [None, "bytes=150000-"]


def test_body_stall_raises_on_read(server):
    fo = urlgrabber.urlopen(server.url + "/gen/300000/st?stall_at=100000&stall=4", timeout=1)
    t0 = time.monotonic()
    try:
        with pytest.raises(URLGrabError) as info:
            while fo.read(65536):
                pass
    finally:
        fo.close()
    assert info.value.errno == 12
    assert time.monotonic() - t0 < 2.0  # the window is timeout=1


# ---------------------------------------------------------------------------
# closing


def test_close_and_context_manager(server):
    fo = urlgrabber.urlopen(server.url + "/gen/1000/c")
    assert not fo.closed
    assert fo.read(10) == gen_bytes(1000, "c")[:10]
    fo.close()
    assert fo.closed
    fo.close()  # idempotent
    with urlgrabber.urlopen(server.url + "/gen/1000/c") as fo2:
        assert not fo2.closed
    assert fo2.closed


@pytest.mark.parametrize("call", ["read", "read_n", "readline", "readlines", "iter"])
def test_reading_after_close_raises_valueerror(server, call):
    fo = urlgrabber.urlopen(server.url + "/gen/100000/rc")
    fo.read(10)
    fo.close()
    with pytest.raises(ValueError):
        if call == "read":
            fo.read()
        elif call == "read_n":
            fo.read(5)
        elif call == "readline":
            fo.readline()
        elif call == "readlines":
            fo.readlines()
        else:
            next(iter(fo))


def test_reading_after_context_exit_raises_valueerror(server):
    with urlgrabber.urlopen(server.url + "/gen/100/cx") as fo:
        pass
    with pytest.raises(ValueError):
        fo.read()


def test_close_early_stops_the_transfer(server):
    size = 20_000_000
    fo = urlgrabber.urlopen(server.url + f"/gen/{size}/early?bw=1000000")  # 20 s to drain
    assert fo.read(1000) == gen_bytes(1000, "early")
    t0 = time.monotonic()
    fo.close()
    assert time.monotonic() - t0 < 2
    # the server sees the connection end: its handler finishes without sending everything
    wait_until(lambda: server.inflight == 0, timeout=10)
    assert len(server.log) == 1
    assert server.log[0]["body_bytes"] < size // 2, server.log[0]["body_bytes"]
    # the engine is fine afterwards
    assert urlgrabber.urlread(server.url + "/gen/100/next") == gen_bytes(100, "next")


def test_close_without_reading(server):
    fo = urlgrabber.urlopen(server.url + "/gen/20000000/noread")
    fo.close()
    wait_until(lambda: server.inflight == 0, timeout=10)
    assert server.log[0]["body_bytes"] < 10_000_000


def test_two_streams_interleaved(server):
    a = urlgrabber.urlopen(server.url + "/gen/3000000/sa")
    b = urlgrabber.urlopen(server.url + "/gen/3000000/sb")
    try:
        got_a, got_b = [], []
        while True:
            da = a.read(100000)
            db = b.read(100000)
            got_a.append(da)
            got_b.append(db)
            if not da and not db:
                break
    finally:
        a.close()
        b.close()
    assert b"".join(got_a) == gen_bytes(3000000, "sa")
    assert b"".join(got_b) == gen_bytes(3000000, "sb")


def test_blocking_grab_while_a_stream_is_open(server, tmp_path):
    dest = str(tmp_path / "out")
    with urlgrabber.urlopen(server.url + "/gen/5000000/bg") as fo:
        first = fo.read(1000)
        urlgrabber.urlgrab(server.url + "/gen/200000/other", dest)
        rest = fo.read()
    assert first + rest == gen_bytes(5000000, "bg")
    with open(dest, "rb") as f:
        assert f.read() == gen_bytes(200000, "other")


# ---------------------------------------------------------------------------
# memory stays bounded while streaming a big body

BIG = 300_000_000

_MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    from server import FaultServer, gen_chunks
    import urlgrabber

    size = int(sys.argv[1])
    srv = FaultServer().start()
    try:
        with urlgrabber.urlopen(srv.url + "/gen/1000/warm") as fo:  # warm up imports and buffers
            fo.read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.monotonic()
        total = 0
        chunks = 0
        mismatches = []
        sampled = 0
        with urlgrabber.urlopen(srv.url + "/gen/%d/big" % size) as fo:
            while True:
                data = fo.read(1 << 20)
                if not data:
                    break
                if len(data) > 1 << 20:
                    mismatches.append(("oversized", total, len(data)))
                if chunks % 23 == 0 or total + len(data) == size:
                    sampled += 1
                    expected = next(gen_chunks(size, "big", start=total, chunk=len(data)))
                    if data != expected:
                        mismatches.append(("content", total, len(data)))
                total += len(data)
                chunks += 1
        seconds = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        srv.stop()
    print(json.dumps({"total": total, "chunks": chunks, "sampled": sampled, "seconds": seconds,
                      "grew_kb": after - before, "mismatches": mismatches[:5]}))
""")


def test_streaming_memory_is_bounded():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(BIG)], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mismatches"] == []
    assert result["total"] == BIG
    assert result["sampled"] >= 10
    assert result["grew_kb"] < 50 * 1024, result  # ru_maxrss is in KiB on Linux
    assert result["seconds"] < 60, result
