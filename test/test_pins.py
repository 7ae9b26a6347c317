"""Pins for behaviours a mutation audit found unguarded.

Each test names the behaviour it pins and fails when that behaviour breaks
(see the docstrings for the mutation each one was checked against).  Real
servers on 127.0.0.1, real pycurl; behaviour tests run blocking and as a
batch (``mode``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path

import pycurl
import pytest
from modes import grab, listing, read
from server import FaultServer
from util import TEMP_KINDS, gen_bytes, use_temp_kind

import urlgrabber
from urlgrabber import URLGrabber, URLGrabError, _curl, _outcome, _sinks

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t"


def with_password(url: str, user: str = "u", password: str = SECRET) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"{user}:{password}@{parts.netloc}").geturl()


# ---------------------------------------------------------------------------
# 1. the rename is atomic even without a checkfunc


def test_replace_without_checkfunc_leaves_other_hard_links_on_the_old_bytes(mode, g, server, tmp_path):
    """dest is replaced by a rename: a hard link to the old dest keeps the old bytes.

    (Writing the new bytes through the old inode would change the link too.)"""
    dest = tmp_path / "pkg.rpm"
    link = tmp_path / "other-name"
    old = b"the old destination\n" * 500
    dest.write_bytes(old)
    os.link(dest, link)
    grab(mode, g, server.url + "/gen/3000/new", str(dest))
    assert read(dest) == gen_bytes(3000, "new")
    assert read(link) == old, "a hard link to the old destination saw the new bytes"
    assert os.stat(dest).st_ino != os.stat(link).st_ino
    assert listing(tmp_path) == ["other-name", "pkg.rpm"]


# ---------------------------------------------------------------------------
# 2. TLS: the certificate must name the host


@pytest.fixture
def other_name_server(tls_ca):
    """An HTTPS server whose certificate, from the trusted test CA, names other.example."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert("other.example").configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    srv = FaultServer(tls=ctx).start()
    yield srv
    srv.stop()


def test_tls_certificate_for_another_host_name_is_refused(mode, g, other_name_server, ca_file, tmp_path):
    """A trusted certificate for other.example is refused at https://127.0.0.1 (curl 60)."""
    srv = other_name_server
    assert srv.url.startswith("https://127.0.0.1:")
    dest = tmp_path / "out"
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, srv.url + "/gen/1000/tls", str(dest), ssl_ca_cert=ca_file)
    err = info.value
    assert err.errno == 14
    assert err.code == 60  # CURLE_PEER_FAILED_VERIFICATION
    assert srv.requests == 0, "an HTTP request went over a connection to the wrong host"
    assert listing(tmp_path) == []
    # the chain itself is trusted: only the name was wrong
    grab(mode, g, srv.url + "/gen/1000/tls", str(dest), ssl_ca_cert=ca_file, ssl_verify_host=False)
    assert read(dest) == gen_bytes(1000, "tls")


# ---------------------------------------------------------------------------
# 3. a redirect never reads a local file


def test_redirect_to_file_url_never_reads_the_local_file(mode, g, server, tmp_path):
    """A server redirect to file:// fails (curl 1, disabled in redirect), dest untouched."""
    local = tmp_path / "local.txt"
    local.write_bytes(b"LOCAL-FILE-MARKER-4711\n")
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "dest.bin"
    old = b"old destination bytes\n"
    dest.write_bytes(old)
    to = urllib.parse.quote("file://" + str(local), safe="")
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, server.url + f"/redirect?to={to}", str(dest))
    err = info.value
    assert err.errno == 14
    assert err.code == 1, str(err)  # CURLE_UNSUPPORTED_PROTOCOL
    # libcurl 8 says "(in redirect)"; 7.88 only "not supported or disabled in libcurl"
    assert "(in redirect)" in str(err) or "disabled in libcurl" in str(err), str(err)
    assert b"MARKER" not in read(dest)
    assert read(dest) == old
    assert listing(out) == ["dest.bin"]
    assert server.requests == 1


class _RecordingCurl:
    """Stands in for pycurl.Curl to see what configure() sets (no transfer is made)."""

    def __init__(self) -> None:
        self.options: dict = {}

    def reset(self) -> None:
        self.options.clear()

    def getinfo(self, info) -> None:
        return None

    def setopt(self, option, value) -> None:
        self.options[option] = value

    def unsetopt(self, option) -> None:
        self.options.pop(option, None)


@pytest.mark.parametrize("url", ["http://h/x", "https://h/x", "ftp://h/x"])
def test_configure_limits_redirects_to_http_https_ftp_ftps(url):
    """Our own REDIR_PROTOCOLS setting, whatever libcurl's default is.

    (libcurl >= 7.65.2 defaults to the same four protocols, so a transfer
    alone cannot tell our setting from the default.)"""
    handle = _curl.Handle()
    handle.curl.close()
    handle._use(_RecordingCurl())  # (in place of its curl: every setting goes to the recorder)
    _curl.configure(handle, URLGrabber().opts, url)
    assert handle.curl.options.get(pycurl.URL) == url
    allowed = handle.curl.options.get(pycurl.REDIR_PROTOCOLS)
    if url.startswith("https"):  # no downgrade from https (allow_insecure_redirect=False)
        assert allowed == pycurl.PROTO_HTTPS | pycurl.PROTO_FTPS
    else:
        assert allowed == pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS | pycurl.PROTO_FTP | pycurl.PROTO_FTPS
    assert not allowed & pycurl.PROTO_FILE


# ---------------------------------------------------------------------------
# 4. passwords never appear in an error


def _assert_no_password(err: URLGrabError) -> None:
    texts = {"str(err)": str(err), "err.url": str(err.url), "repr(err)": repr(err),
             "err.strerror": str(err.strerror), "err.args": repr(err.args)}
    if err.exception is not None:
        texts["str(err.exception)"] = str(err.exception)
    leaks = [name for name, text in texts.items() if SECRET in text]
    assert not leaks, f"password in {leaks}: {texts}"


def test_password_not_in_connection_refused(mode, g, dead_url, tmp_path):
    """libcurl's message (curl 7) and the URL in it carry no password."""
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, with_password(dead_url + "/x"), str(tmp_path / "out"))
    assert (info.value.errno, info.value.code) == (14, 7)
    _assert_no_password(info.value)
    assert "u:***@127.0.0.1" in str(info.value)


def test_password_not_in_curl_malformed_url(mode, g, tmp_path):
    """A URL Python accepts and libcurl rejects (curl 3, errno 1)."""
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, f"http://u:{SECRET}@bad_host^/x", str(tmp_path / "out"))
    assert (info.value.errno, info.value.code) == (1, 3)
    _assert_no_password(info.value)


def test_password_not_in_url_parser_port_error(mode, g, tmp_path):
    """urllib's ValueError for a bad port, raised by URLParser (errno 1)."""
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, f"http://u:{SECRET}@127.0.0.1:99999999/x", str(tmp_path / "out"))
    assert info.value.errno == 1
    assert "Port" in str(info.value)
    _assert_no_password(info.value)


def test_password_scrubbed_from_a_libcurl_message_that_quotes_the_url():
    """libcurl 8.x quotes no userinfo in the messages we could provoke; this pins
    the scrubbing for any message that does."""
    url = f"http://u:{SECRET}@127.0.0.1:1/x"
    err = _outcome.from_curl(7, f"Failed to connect to {url}", url).error
    assert err.errno == 14 and err.code == 7
    _assert_no_password(err)


def test_password_not_in_malformed_ipv6_url_error(g):
    with pytest.raises(URLGrabError) as info:
        g.urlread(f"http://u:{SECRET}@[::1/x")
    assert info.value.errno == 1
    _assert_no_password(info.value)


@pytest.mark.parametrize("url", [f"http://u:{SECRET}/x@127.0.0.1:1/f", f"http://u:{SECRET}#x@127.0.0.1:1/f",
                                 f"http://u:{SECRET}?x@127.0.0.1:1/f"])
def test_password_with_an_unencoded_delimiter_is_redacted(g, url):
    """The parser sees no password in these; the text before the last '@' is hidden anyway."""
    with pytest.raises(URLGrabError) as info:
        g.urlread(url, timeout=2)
    _assert_no_password(info.value)


# ---------------------------------------------------------------------------
# 5. empty and inverted ranges


@pytest.mark.parametrize("rng", [(5, 5), (5, 1)], ids=["empty", "inverted"])
def test_empty_or_inverted_range_is_errno_9_without_a_request(mode, g, server, tmp_path, rng):
    """range=(start, end) with end <= start: errno 9 (range not satisfiable) at once."""
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, server.url + "/gen/100/r", str(tmp_path / "out"), range=rng)
    assert info.value.errno == 9
    assert server.requests == 0
    assert listing(tmp_path) == []


# ---------------------------------------------------------------------------
# 6. the no-progress window is `timeout` seconds


def test_body_stalled_longer_than_timeout_is_errno_12(mode, g, server, tmp_path):
    """timeout=1, a body that stalls 1.8 s: ended as a timeout before the stall ends.

    (With a 2 s window the body would resume and the download succeed.)"""
    started = time.monotonic()
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, server.url + "/gen/100000/stall?stall_at=1000&stall=1.8",
             str(tmp_path / "out"), timeout=1)
    elapsed = time.monotonic() - started
    assert info.value.errno == 12, str(info.value)
    assert elapsed < 1.8, f"the stall was noticed only after {elapsed:.2f}s"
    assert listing(tmp_path) == []


# ---------------------------------------------------------------------------
# 7. an unread stream does not buffer without bound


def test_unread_stream_stays_bounded_while_another_download_runs(mode, server, tmp_path):
    """While a 200 MB stream is not read, another download on the same thread runs
    for ~1 s; the stream's transfer is paused at its high-water mark meanwhile."""
    fo = urlgrabber.urlopen(server.url + "/gen/209715200/big")
    try:
        assert fo.read(10) == gen_bytes(10, "big")
        dest = tmp_path / "side"
        started = time.monotonic()
        grab(mode, URLGrabber(), server.url + "/gen/100000/side?bw=100000", str(dest))
        elapsed = time.monotonic() - started
        assert read(dest) == gen_bytes(100000, "side")
        assert elapsed > 0.5, "the side download was too short to show anything"
        buffered = fo._sink.buffered
        assert buffered < 4 << 20, f"{buffered} bytes buffered for an unread stream"
        assert fo.read(100) == gen_bytes(110, "big")[10:]
    finally:
        fo.close()


# ---------------------------------------------------------------------------
# 8. a full disk (or file size limit) is errno 16, also on the direct-write path

_FSIZE_CHILD = textwrap.dedent("""
    import json, resource, signal, sys
    import urlgrabber
    from urlgrabber import URLGrabber, URLGrabError
    from urlgrabber.progress import BaseMeter

    url, dest, limit, mode, meter = sys.argv[1:6]
    kw = {"progress_obj": BaseMeter()} if meter == "meter" else {}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
    try:
        if mode == "batch":
            urlgrabber.parallel_begin()
            URLGrabber().urlgrab(url, dest, async_=True, **kw)
            urlgrabber.parallel_end()
        else:
            URLGrabber().urlgrab(url, dest, **kw)
        print(json.dumps({"ok": True}))
    except URLGrabError as e:
        exc = e.exception
        print(json.dumps({"errno": e.errno, "code": e.code, "str": str(e),
                          "os_errno": getattr(exc, "errno", None)}))
""")


@pytest.mark.parametrize("meter", ["lean", "meter"])
def test_file_size_limit_is_errno_16_with_the_os_error(mode, server, tmp_path, meter):
    """RLIMIT_FSIZE below the body's size: errno 16 "File too large" (EFBIG), not
    libcurl's errno 14 for a short write; no file is left behind."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, server.url + "/gen/1000000/big",
         str(out / "big.bin"), "300000", mode, meter],
        capture_output=True, text=True, timeout=60, cwd=str(ROOT),
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.get("errno") == 16, result
    assert "File too large" in result["str"], result
    assert result["os_errno"] == errno.EFBIG, result
    assert listing(out) == []


def test_curl_write_error_maps_to_errno_16():
    """curl 23 (libcurl's "Failure writing output") with no OSError recorded is local too."""
    result = _outcome.from_curl(23, "Failure writing output to destination, passed 16384 returned 0",
                                "http://h/x")
    assert (result.error.errno, result.error.code) == (16, 23)
    assert result.cause is _outcome.Cause.LOCAL  # never held against a mirror


# ---------------------------------------------------------------------------
# 9. the temporary file is always a new file (O_EXCL)


def _next_temp_index() -> int:
    m = re.fullmatch(r"count\((\d+)\)", repr(_sinks._temp_names))
    assert m, repr(_sinks._temp_names)
    return int(m.group(1))


@pytest.mark.parametrize("kind", TEMP_KINDS)
@pytest.mark.parametrize("order", [("file", "symlink"), ("symlink", "file")], ids="-then-".join)
def test_temporary_file_never_reuses_an_existing_name(mode, g, server, tmp_path, order, kind, monkeypatch):
    """A file and a symlink already at the next temporary names are skipped, untouched.

    (An unnamed temporary file takes a hidden name only to replace an existing
    destination: one is there in that case.)"""
    out = tmp_path / "out"
    out.mkdir()
    use_temp_kind(monkeypatch, kind, out)
    dest = out / "pkg.rpm"
    if kind == "unnamed":
        dest.write_bytes(b"the old package")
    outside = tmp_path / "outside.bin"
    outside_bytes = b"outside, must not change\n" * 400
    outside.write_bytes(outside_bytes)
    squatter_bytes = b"a file that was here first\n" * 400
    n = _next_temp_index()
    names = {}
    for i, kind in enumerate(order):
        path = out / f".pkg.rpm.{_sinks._pid}.{n + i}.part"
        names[kind] = path
        if kind == "file":
            path.write_bytes(squatter_bytes)
        else:
            path.symlink_to(outside)

    grab(mode, g, server.url + "/gen/3000/pkg", str(dest))

    assert names["file"].exists(), "the file already at a temporary name was taken over"
    assert read(names["file"]) == squatter_bytes, "the file already at a temporary name was written"
    assert read(outside) == outside_bytes, "written through a symlink"
    assert names["symlink"].is_symlink(), "the symlink already at a temporary name was taken over"
    assert os.readlink(names["symlink"]) == str(outside)
    assert read(dest) == gen_bytes(3000, "pkg")
    assert listing(out) == sorted(["pkg.rpm", names["file"].name, names["symlink"].name])
    assert _next_temp_index() == n + 3, "the pre-created names were not the ones tried"


def test_urlopen_geturl_hides_the_password(server):
    """urlopen().geturl() is the URL without its password, like every other place."""
    host = server.url.split("//", 1)[1]
    with urlgrabber.urlopen(f"http://u:{SECRET}@{host}/gen/10/gu") as fo:
        assert SECRET not in fo.geturl()
        assert fo.geturl() == f"http://u:***@{host}/gen/10/gu"
        assert fo.read() == gen_bytes(10, "gu")
