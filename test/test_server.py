"""Self-test of the test infrastructure (server.py / conftest.py / util.py).

Uses only the standard library clients, never urlgrabber itself."""

from __future__ import annotations

import base64
import ftplib
import http.client
import io
import json
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate
from pathlib import Path

import pytest
from server import DEFAULT_MTIME, FaultServer, gen_chunks
from util import gen_bytes, wait_until

SERVER_PY = Path(__file__).resolve().parent / "server.py"


def conn(srv: FaultServer, timeout: float = 5.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)


def get(srv: FaultServer, path: str, method: str = "GET", headers=None, body=None):
    """One request on a fresh connection -> (status, headers dict, body)."""
    c = conn(srv)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


# ---------------------------------------------------------------------------
# content
# ---------------------------------------------------------------------------


def test_gen_bytes_deterministic():
    a = gen_bytes(200_000, "a")
    assert a == gen_bytes(200_000, "a")
    assert a != gen_bytes(200_000, "b")
    assert len(a) == 200_000 and gen_bytes(0, "a") == b""
    assert gen_bytes(1000, "a") == a[:1000]
    # blocks differ even at 64 KiB distance (offset errors are detectable)
    assert a[:65536] != a[65536:131072]
    assert b"".join(gen_chunks(200_000, "a", start=12345, chunk=7777)) == a[12345:]


def test_file_get_head_and_404(server):
    data = b"hello world\n" * 100
    url = server.add_file("/a/b.bin", data, mtime=1_600_000_000)
    assert url == server.url + "/a/b.bin"
    status, hdrs, body = get(server, "/a/b.bin")
    assert (status, body) == (200, data)
    assert hdrs["content-length"] == str(len(data))
    assert hdrs["content-type"] == "application/octet-stream"
    assert hdrs["last-modified"] == formatdate(1_600_000_000, usegmt=True)
    status, hdrs, body = get(server, "/a/b.bin", method="HEAD")
    assert (status, body, hdrs["content-length"]) == (200, b"", str(len(data)))
    assert get(server, "/nope")[0] == 404
    assert server.by_path["/a/b.bin"] == 2
    assert server.log[0]["method"] == "GET" and server.log[1]["method"] == "HEAD"


def test_gen_endpoint_and_mtime_knob(server):
    status, hdrs, body = get(server, "/gen/5000/x/y.bin")
    assert status == 200 and body == gen_bytes(5000, "x/y.bin")
    assert hdrs["last-modified"] == formatdate(DEFAULT_MTIME, usegmt=True)
    status, hdrs, _ = get(server, "/gen/10/x?mtime=1000000000")
    assert hdrs["last-modified"] == formatdate(1_000_000_000, usegmt=True)


def test_ranges(server):
    data = gen_bytes(1000, "r")
    server.add_file("/r", data)
    cases = {"bytes=10-19": (10, 19), "bytes=990-": (990, 999), "bytes=-5": (995, 999),
             "bytes=900-5000": (900, 999)}
    for rng, (a, b) in cases.items():
        status, hdrs, body = get(server, "/r", headers={"Range": rng})
        assert status == 206, rng
        assert hdrs["content-range"] == f"bytes {a}-{b}/1000"
        assert body == data[a:b + 1]
    status, hdrs, _ = get(server, "/r", headers={"Range": "bytes=1000-"})
    assert status == 416 and hdrs["content-range"] == "bytes */1000"
    # gen resources support ranges too
    status, _, body = get(server, "/gen/100000/g", headers={"Range": "bytes=70000-"})
    assert status == 206 and body == gen_bytes(100000, "g")[70000:]
    assert server.log[0]["range"] == "bytes=10-19"


def test_if_range(server):
    data = gen_bytes(100, "ir")
    server.add_file("/f", data, mtime=1_600_000_000)
    newer = formatdate(1_600_000_100, usegmt=True)
    older = formatdate(1_500_000_000, usegmt=True)
    status, _, body = get(server, "/f", headers={"Range": "bytes=50-", "If-Range": newer})
    assert status == 206 and body == data[50:]
    status, _, body = get(server, "/f", headers={"Range": "bytes=50-", "If-Range": older})
    assert status == 200 and body == data


def test_ignore_range(server):
    status, _, body = get(server, "/gen/100/i?ignore_range=1", headers={"Range": "bytes=50-"})
    assert status == 200 and body == gen_bytes(100, "i")


def test_keep_alive_reuse_and_close(server):
    c = conn(server)
    for i in range(3):
        c.request("GET", f"/gen/{100 + i}/k")
        r = c.getresponse()
        assert r.read() == gen_bytes(100 + i, "k")
    c.close()
    assert server.connections == 1 and server.requests == 3
    assert {e["conn"] for e in server.log} == {server.log[0]["conn"]}
    # Connection: close from the client is honoured
    _, hdrs, _ = get(server, "/gen/1/k", headers={"Connection": "close"})
    assert hdrs["connection"] == "close"
    # close=1 knob
    _, hdrs, _ = get(server, "/gen/1/k?close=1")
    assert hdrs["connection"] == "close"


def test_latency_knob(server):
    t0 = time.monotonic()
    assert get(server, "/gen/10/l?latency=0.2")[0] == 200
    assert 0.2 <= time.monotonic() - t0 < 3.0
    server.defaults["stall_headers"] = 0.1
    t0 = time.monotonic()
    assert get(server, "/gen/10/l?latency=0.1")[0] == 200
    assert 0.2 <= time.monotonic() - t0 < 3.0


def test_bw_and_stall(server):
    t0 = time.monotonic()
    status, _, body = get(server, "/gen/20000/b?bw=100000")
    assert status == 200 and body == gen_bytes(20000, "b")
    assert 0.15 <= time.monotonic() - t0 < 3.0
    t0 = time.monotonic()
    status, _, body = get(server, "/gen/20000/b?stall_at=1000&stall=0.2")
    assert body == gen_bytes(20000, "b")
    assert 0.2 <= time.monotonic() - t0 < 3.0


def test_fail_first_and_retry_after(server):
    results = [get(server, "/gen/10/ff?fail_first=2&retry_after=3") for _ in range(3)]
    assert [r[0] for r in results] == [503, 503, 200]
    assert results[0][1]["retry-after"] == "3" and "retry-after" not in results[2][1]
    assert get(server, "/gen/10/ff2?fail_first=1&fail_status=500")[0] == 500
    assert [e["fault"] for e in server.log] == ["fail_first", "fail_first", None, "fail_first"]


def test_status_knob_and_endpoint(server):
    assert get(server, "/gen/10/s?status=404")[0] == 404
    assert get(server, "/status/418")[0] == 418
    server.defaults["status"] = 500
    assert get(server, "/gen/10/s")[0] == 500
    assert get(server, "/gen/10/s?status=")[0] == 200  # empty query value disables


def test_truncate(server):
    c = conn(server)
    c.request("GET", "/gen/1000/t?truncate=100")
    r = c.getresponse()
    assert r.getheader("Content-Length") == "1000"
    with pytest.raises(http.client.IncompleteRead) as info:
        r.read()
    assert info.value.partial == gen_bytes(100, "t")
    c.close()
    wait_until(lambda: server.log[-1]["body_bytes"] == 100 and server.inflight == 0)


def test_drop(server):
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        get(server, "/gen/10/d?drop=1")
    assert server.log[-1]["fault"] == "drop" and server.log[-1]["status"] is None


def test_corrupt(server):
    status, _, body = get(server, "/gen/100000/c?corrupt=1")
    good = gen_bytes(100000, "c")
    assert status == 200 and len(body) == len(good) and body != good
    assert sum(x != y for x, y in zip(body, good)) == 1


def test_chunked_response(server):
    c = conn(server)
    c.request("GET", "/gen/150000/ch?chunked=1")
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked" and r.getheader("Content-Length") is None
    assert r.read() == gen_bytes(150000, "ch")
    c.request("GET", "/gen/10/ch")  # the connection survives
    assert c.getresponse().read() == gen_bytes(10, "ch")
    c.close()
    assert server.connections == 1


def test_random_faults_seeded(make_server):
    outcomes = []
    for _ in range(2):
        srv = make_server(error_rate=0.3, truncate_rate=0.3, seed=7)
        for _ in range(20):
            try:
                outcomes.append(get(srv, "/gen/1000/rnd")[0])
            except http.client.IncompleteRead:
                outcomes.append("trunc")
    assert outcomes[:20] == outcomes[20:]
    assert {500, 200, "trunc"} <= set(outcomes)
    srv = make_server()
    assert get(srv, "/gen/10/x?error_rate=1")[0] == 500


def test_auth(server):
    status, hdrs, _ = get(server, "/gen/10/a?auth=user:pw")
    assert status == 401 and hdrs["www-authenticate"] == 'Basic realm="test"'
    token = base64.b64encode(b"user:pw").decode()
    assert get(server, "/gen/10/a?auth=user:pw", headers={"Authorization": f"Basic {token}"})[0] == 200
    bad = base64.b64encode(b"user:nope").decode()
    assert get(server, "/gen/10/a?auth=user:pw", headers={"Authorization": f"Basic {bad}"})[0] == 401


def test_redirect(server):
    target = server.url + "/gen/10/z"
    q = urllib.parse.urlencode({"to": target, "code": 301})
    status, hdrs, _ = get(server, "/redirect?" + q)
    assert status == 301 and hdrs["location"] == target
    # urllib follows it (default code 302)
    with urllib.request.urlopen(server.url + "/redirect?to=" + urllib.parse.quote(target), timeout=5) as r:
        assert r.read() == gen_bytes(10, "z")


def test_echo_endpoints(server):
    status, _, body = get(server, "/echo/headers", headers={"X-Test": "yes"})
    assert status == 200 and json.loads(body)["x-test"] == "yes"
    assert get(server, "/echo/post", method="POST", body=b"payload")[2] == b"payload"
    assert get(server, "/echo/method", method="PUT", body=b"")[2] == b"PUT"
    # chunked request body
    c = conn(server)
    c.request("POST", "/echo/post", body=iter([b"ab", b"cde"]), encode_chunked=True)
    assert c.getresponse().read() == b"abcde"
    c.close()
    assert server.log[-1]["headers"]["transfer-encoding"] == "chunked"
    # Expect: 100-continue is answered
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /echo/post HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"xyz")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.endswith(b"\r\n\r\nxyz") and b" 200 " in data


def test_peak_inflight(server):
    errors = []

    def worker():
        try:
            assert get(server, "/gen/10/p?latency=0.3")[0] == 200
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not errors and not any(t.is_alive() for t in threads)
    assert server.peak_inflight >= 2
    # the counter drops just after the last byte is handed to the kernel
    wait_until(lambda: server.inflight == 0)
    server.reset_stats()
    assert (server.requests, server.peak_inflight, server.log, len(server.by_path)) == (0, 0, [], 0)


def test_refuse(server):
    server.refuse = True
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        get(server, "/gen/10/r")
    assert server.connections >= 1 and server.requests == 0
    server.refuse = False
    assert get(server, "/gen/10/r")[0] == 200


def test_client_disconnect_mid_body_and_stop_with_stalled_handler(make_server):
    srv = make_server()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /gen/50000000/big HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
    wait_until(lambda: srv.inflight == 0)
    assert get(srv, "/gen/10/after")[0] == 200
    assert srv.errors == []
    # a handler stalled for a long time must not block stop()
    stalled = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    stalled.sendall(b"GET /gen/10/s?stall_headers=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: any(e["path"] == "/gen/10/s" for e in srv.log))
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 2.0
    assert stalled.recv(100) == b""
    stalled.close()


def test_https(tls_server, ca_file):
    assert tls_server.url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(tls_server.url + "/gen/1000/tls", context=ctx, timeout=5) as r:
        assert r.read() == gen_bytes(1000, "tls")
    c = http.client.HTTPSConnection("localhost", tls_server.port, context=ctx, timeout=5)
    for _ in range(2):
        c.request("GET", "/gen/10/tls")
        assert c.getresponse().read() == gen_bytes(10, "tls")
    c.close()
    with pytest.raises(urllib.error.URLError):  # unknown CA is rejected
        urllib.request.urlopen(tls_server.url + "/gen/1/x", context=ssl.create_default_context(), timeout=5)


def test_ftp(ftp_server):
    data = gen_bytes(100_000, "ftp")
    (ftp_server.root / "sub").mkdir()
    (ftp_server.root / "sub" / "file.bin").write_bytes(data)
    assert ftp_server.url.startswith("ftp://127.0.0.1:")
    for user, password, epsv in (("anonymous", "a@b", True), (ftp_server.user, ftp_server.password, False)):
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", ftp_server.port, timeout=5)
        ftp.login(user, password)
        ftp.af = socket.AF_INET6 if epsv else socket.AF_INET  # ftplib uses EPSV for AF_INET6
        ftp.set_pasv(True)
        chunks = []
        ftp.retrbinary("RETR /sub/file.bin", chunks.append)
        assert b"".join(chunks) == data
        if not epsv:
            ftp.storbinary("STOR up.bin", io.BytesIO(b"up"))
        ftp.quit()
    assert (ftp_server.root / "up.bin").read_bytes() == b"up"
    with urllib.request.urlopen(ftp_server.url + "/sub/file.bin", timeout=5) as r:
        assert r.read() == data


def test_dead_url(dead_url):
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(dead_url + "/x", timeout=5)


def test_large_gen_body_streams(server):
    size = 50 * 1024 * 1024
    c = conn(server, timeout=30)
    c.request("GET", f"/gen/{size}/big.bin")
    r = c.getresponse()
    assert r.getheader("Content-Length") == str(size)
    body = r.read()
    c.close()
    assert len(body) == size and body == gen_bytes(size, "big.bin")
    assert server.bytes_sent == size


def test_cli_mode():
    proc = subprocess.Popen([sys.executable, str(SERVER_PY), "--latency", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "server did not print its port"
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        port = int(line.split()[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gen/1234/cli", timeout=5) as r:
            assert r.read() == gen_bytes(1234, "cli")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
