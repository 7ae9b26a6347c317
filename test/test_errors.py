"""URLGrabError: its fields, every errno, and passwords never leaking into it.

Behaviour tests run in both modes (see ``modes.py``); in batch mode a final
failure is raised by ``parallel_end()`` (the default ``failfunc``).
"""

from __future__ import annotations

import pickle
import urllib.parse

import pycurl
import pytest
from modes import grab, listing, read
from util import gen_bytes, permission_bits_apply

import urlgrabber
from urlgrabber import URLGrabber, URLGrabError

SECRET = "s3cr3t-P4ss"


def grab_error(mode, g, url, dest, **kw) -> URLGrabError:
    with pytest.raises(URLGrabError) as info:
        grab(mode, g, url, dest, **kw)
    return info.value


def with_password(url: str, user: str = "bob", password: str = SECRET) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"{user}:{password}@{parts.netloc}").geturl()


# ---------------------------------------------------------------------------
# the exception class


def test_urlgraberror_is_an_ioerror():
    err = URLGrabError(14, "boom", url="http://h/x", code=404)
    assert isinstance(err, IOError)
    assert isinstance(err, OSError)
    assert err.errno == 14
    assert err.strerror == "boom"
    assert err.url == "http://h/x"
    assert err.code == 404
    assert err.exception is None
    assert err.args == (14, "boom")
    assert "boom" in str(err)


def test_urlgraberror_defaults():
    err = URLGrabError(2)
    assert err.errno == 2
    assert err.url is None
    assert err.code is None
    assert err.exception is None


def test_urlgraberror_redacts_url_given_to_it():
    err = URLGrabError(14, "x", url=f"http://bob:{SECRET}@h/x")
    assert SECRET not in err.url
    assert SECRET not in repr(err)


def test_urlgraberror_pickles():
    err = URLGrabError(14, "boom", url="http://h/x", code=500)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.errno, copy.strerror, copy.url, copy.code) == (14, "boom", "http://h/x", 500)


# ---------------------------------------------------------------------------
# errno 1: bad input


def test_errno_1_unknown_option(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/10/x", str(tmp_path / "out"), not_an_option=1)
    assert err.errno == 1
    assert server.requests == 0
    assert listing(tmp_path) == []


def test_errno_1_unknown_option_in_constructor():
    with pytest.raises(URLGrabError) as info:
        URLGrabber(not_an_option=1)
    assert info.value.errno == 1


@pytest.mark.parametrize("url", ["http://[::1", "http://[oops]/x", "", "http://127.0.0.1:99999/x",
                                 "http://127.0.0.1:notaport/x"])
def test_errno_1_malformed_url(mode, g, tmp_path, url):
    err = grab_error(mode, g, url, str(tmp_path / "out"))
    assert err.errno == 1, err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("url", ["http://[::1", ""])
def test_errno_1_malformed_url_urlread_urlopen(url):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(url)
    assert info.value.errno == 1
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlopen(url)
    assert info.value.errno == 1


# ---------------------------------------------------------------------------
# errno 2 / 3: local files


@pytest.mark.parametrize("copy_local", [0, 1])
def test_errno_2_missing_local_file(mode, g, tmp_path, copy_local):
    missing = tmp_path / "missing.txt"
    err = grab_error(mode, g, missing.as_uri(), str(tmp_path / "out"), copy_local=copy_local)
    assert err.errno == 2
    assert listing(tmp_path) == []


def test_errno_2_missing_local_file_urlread_urlopen(tmp_path):
    uri = (tmp_path / "missing.txt").as_uri()
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(uri)
    assert info.value.errno == 2
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlopen(uri)
    assert info.value.errno == 2


@pytest.mark.parametrize("copy_local", [0, 1])
def test_errno_3_directory(mode, g, tmp_path, copy_local):
    sub = tmp_path / "sub"
    sub.mkdir()
    err = grab_error(mode, g, sub.as_uri(), str(tmp_path / "out"), copy_local=copy_local)
    assert err.errno == 3
    assert listing(tmp_path) == ["sub"]


def test_errno_3_directory_urlread(tmp_path):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(tmp_path.as_uri())
    assert info.value.errno == 3


# ---------------------------------------------------------------------------
# errno 8, 9, 11


def test_errno_8_urlread_limit(server):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(server.url + "/gen/100000/big", limit=5000)
    assert info.value.errno == 8


def test_errno_8_not_retried(server):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(server.url + "/gen/100000/big8", limit=5000, retry=3, retrycodes=[8, 14])
    assert info.value.errno == 8
    assert server.by_path["/gen/100000/big8"] == 1


def test_errno_9_range_not_satisfiable(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/1000/r9", str(tmp_path / "out"), range=(5000, 6000))
    assert err.errno == 9
    assert err.code == 416
    assert listing(tmp_path) == []


def test_errno_9_urlread(server):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(server.url + "/gen/1000/r9r", range=(2000, None))
    assert info.value.errno == 9


def test_errno_9_status_416(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/status/416", str(tmp_path / "out"))
    assert err.errno == 9
    assert err.code == 416


def test_errno_11_bad_reget_mode(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/10/x", str(tmp_path / "out"), reget="bogus")
    assert err.errno == 11
    assert server.requests == 0
    with pytest.raises(URLGrabError) as info:
        URLGrabber(reget="bogus")
    assert info.value.errno == 11


# ---------------------------------------------------------------------------
# errno 12: timeout


def test_errno_12_header_timeout(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/10/t?stall_headers=4", str(tmp_path / "out"), timeout=0.5)
    assert err.errno == 12
    assert err.code == 28
    assert listing(tmp_path) == []


def test_errno_12_body_stall(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/200000/tb?stall_at=50000&stall=4", str(tmp_path / "out"),
                     timeout=0.5)
    assert err.errno == 12
    assert listing(tmp_path) == []


def test_errno_12_urlread(server):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(server.url + "/gen/10/tr?stall_headers=4", timeout=0.5)
    assert info.value.errno == 12


def test_errno_12_is_retried_when_asked(mode, g, server, tmp_path):
    # the first request stalls, the second one does not
    server.defaults["stall_headers"] = 4
    calls = []

    def on_failure(obj):
        calls.append(obj.exception.errno)
        server.defaults.pop("stall_headers", None)

    dest = str(tmp_path / "out")
    grab(mode, g, server.url + "/gen/100/tr", dest, timeout=0.5, retry=2, retrycodes=[12],
         failure_callback=on_failure)
    assert calls == [12]
    assert read(dest) == gen_bytes(100, "tr")


# ---------------------------------------------------------------------------
# errno 14: HTTP and transfer errors


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 500, 502, 503])
def test_errno_14_http_status(mode, g, server, tmp_path, status):
    url = server.url + f"/status/{status}"
    err = grab_error(mode, g, url, str(tmp_path / "out"))
    assert err.errno == 14
    assert err.code == status
    assert err.url == url
    assert str(status) in str(err)
    assert listing(tmp_path) == []


def test_errno_14_404_urlread(server):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(server.url + "/nothing-here")
    assert info.value.errno == 14
    assert info.value.code == 404


def test_errno_14_connection_refused(mode, g, dead_url, tmp_path):
    err = grab_error(mode, g, dead_url + "/x", str(tmp_path / "out"))
    assert err.errno == 14
    assert err.code == 7
    assert err.url == dead_url + "/x"
    assert isinstance(err.exception, pycurl.error)
    assert listing(tmp_path) == []


def test_errno_14_truncated_body(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/100000/tr?truncate=5000", str(tmp_path / "out"))
    assert err.errno == 14
    assert err.code == 18  # CURLE_PARTIAL_FILE
    assert listing(tmp_path) == []


def test_errno_14_dropped_connection(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/100/dr?drop=1", str(tmp_path / "out"))
    assert err.errno == 14
    assert err.code == 52  # CURLE_GOT_NOTHING
    assert listing(tmp_path) == []


def test_truncated_body_resumed_on_retry(mode, g, server, tmp_path):
    # the first response is cut after 30000 bytes; the retry asks for the rest
    server.defaults["truncate"] = 30000

    def on_failure(obj):
        server.defaults.pop("truncate", None)

    dest = str(tmp_path / "out")
    grab(mode, g, server.url + "/gen/100000/res", dest, retry=2, retrycodes=[14],
         failure_callback=on_failure)
    assert read(dest) == gen_bytes(100000, "res")
    assert [e["range"] for e in server.log] == [None, "bytes=30000-"]
    assert listing(tmp_path) == ["out"]


# ---------------------------------------------------------------------------
# errno 15: user abort


class _CtrlC:
    """A progress meter whose update() acts like Ctrl-C."""

    def start(self, *args, **kwargs):
        pass

    def update(self, amount_read, now=None):
        raise KeyboardInterrupt

    def end(self, amount_read, now=None):
        pass


def test_errno_15_user_abort_while_retries_remain(g, server, tmp_path):
    """A Ctrl-C whose interrupt_callback returns is a failed attempt (errno 15) while retries remain."""
    seen = []

    def on_failure(obj):
        seen.append(obj.exception.errno)

    class CtrlCOnce(_CtrlC):
        fired = False

        def update(self, amount_read, now=None):
            if not CtrlCOnce.fired:
                CtrlCOnce.fired = True
                raise KeyboardInterrupt

    g.urlgrab(server.url + "/gen/300000/ua", str(tmp_path / "out"), progress_obj=CtrlCOnce(),
              interrupt_callback=lambda obj: None, retry=2, failure_callback=on_failure)
    assert listing(tmp_path) == ["out"]
    assert server.by_path["/gen/300000/ua"] == 2
    assert seen == []  # classic: failure_callback is not called for an interrupt


# ---------------------------------------------------------------------------
# errno 16: local write errors


def test_errno_16_destination_directory_missing(mode, g, server, tmp_path):
    err = grab_error(mode, g, server.url + "/gen/100/w", str(tmp_path / "nodir" / "out"))
    assert err.errno == 16
    assert listing(tmp_path) == []


def test_errno_16_destination_parent_is_a_file(mode, g, server, tmp_path):
    (tmp_path / "afile").write_bytes(b"x")
    err = grab_error(mode, g, server.url + "/gen/100/w", str(tmp_path / "afile" / "out"))
    assert err.errno == 16
    assert listing(tmp_path) == ["afile"]


def test_errno_16_destination_directory_not_writable(mode, g, server, tmp_path):
    """A 0555 directory: creating the temporary file fails with EACCES.  As root
    the test drops the capability that overrides mode bits (permission_bits_apply)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with permission_bits_apply():
            with pytest.raises(PermissionError):  # the state under test is reached
                (ro / "probe").open("x").close()
            err = grab_error(mode, g, server.url + "/gen/100/w", str(ro / "out"))
    finally:
        ro.chmod(0o755)
    assert err.errno == 16
    assert "Permission denied" in str(err)
    assert listing(ro) == []


def test_errno_16_destination_is_a_directory(mode, g, server, tmp_path):
    (tmp_path / "adir").mkdir()
    err = grab_error(mode, g, server.url + "/gen/100/w", str(tmp_path / "adir"))
    assert err.errno == 16
    assert listing(tmp_path) == ["adir"]
    assert listing(tmp_path / "adir") == []


# ---------------------------------------------------------------------------
# negative errno: checkfunc


@pytest.mark.parametrize("errno", [-1, -5])
def test_negative_errno_from_checkfunc(mode, g, server, tmp_path, errno):
    def check(obj):
        raise URLGrabError(errno, "checksum mismatch")

    err = grab_error(mode, g, server.url + "/gen/100/neg", str(tmp_path / "out"), checkfunc=check)
    assert err.errno == errno
    assert err.strerror == "checksum mismatch"
    assert err.url == server.url + "/gen/100/neg"
    assert listing(tmp_path) == []


def test_checkfunc_other_exception_propagates_and_cleans_up(mode, g, server, tmp_path):
    def check(obj):
        raise RuntimeError("bug in checkfunc")

    with pytest.raises(RuntimeError, match="bug in checkfunc"):
        grab(mode, g, server.url + "/gen/100/rt", str(tmp_path / "out"), checkfunc=check)
    assert listing(tmp_path) == []
    # the engine still works afterwards
    assert urlgrabber.urlread(server.url + "/gen/10/after") == gen_bytes(10, "after")


# ---------------------------------------------------------------------------
# passwords never leak


def assert_no_secret(err: URLGrabError) -> None:
    texts = [str(err), repr(err), str(err.url), str(err.strerror), repr(err.args)]
    if err.exception is not None:
        texts += [str(err.exception), repr(err.exception)]
    for text in texts:
        assert SECRET not in text, text


def test_password_not_in_http_error(mode, g, server, tmp_path):
    url = with_password(server.url + "/status/404")
    err = grab_error(mode, g, url, str(tmp_path / "out"))
    assert err.code == 404
    assert_no_secret(err)
    assert err.url.startswith("http://bob:")
    assert "127.0.0.1" in err.url


def test_password_not_in_connection_error(mode, g, dead_url, tmp_path):
    err = grab_error(mode, g, with_password(dead_url + "/x"), str(tmp_path / "out"))
    assert err.code == 7
    assert_no_secret(err)


def test_password_not_in_timeout_error(mode, g, server, tmp_path):
    err = grab_error(mode, g, with_password(server.url + "/gen/10/t?stall_headers=4"), str(tmp_path / "out"),
                     timeout=0.5)
    assert err.errno == 12
    assert_no_secret(err)


def test_password_not_in_auth_failure(mode, g, server, tmp_path):
    url = with_password(server.url + "/gen/10/a?auth=bob:other")
    err = grab_error(mode, g, url, str(tmp_path / "out"))
    assert err.code == 401
    assert_no_secret(err)


def test_password_not_in_size_error(mode, g, server, tmp_path):
    err = grab_error(mode, g, with_password(server.url + "/gen/100000/s?chunked=1"), str(tmp_path / "out"),
                     size=10)
    assert err.errno == 14
    assert_no_secret(err)


def test_password_not_in_ftp_login_error(mode, g, ftp_server, tmp_path):
    (ftp_server.root / "f.bin").write_bytes(b"x")
    url = f"ftp://{ftp_server.user}:{SECRET}@{ftp_server.host}:{ftp_server.port}/f.bin"
    err = grab_error(mode, g, url, str(tmp_path / "out"))
    assert err.errno == 14
    assert_no_secret(err)


def test_password_not_in_urlread_limit_error(server):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(with_password(server.url + "/gen/100000/l"), limit=10)
    assert info.value.errno == 8
    assert_no_secret(info.value)


def test_password_not_in_urlopen_error(server):
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlopen(with_password(server.url + "/status/404"))
    assert_no_secret(info.value)


def test_password_not_in_callbacks(mode, g, server, tmp_path):
    seen = []

    def check(obj):
        seen.append(obj.url)
        raise URLGrabError(-1, "no")

    def on_failure(obj):
        seen.append(obj.url)
        seen.append(str(obj.exception))

    def failfunc(obj):
        seen.append(obj.url)
        seen.append(str(obj.exception))

    url = with_password(server.url + "/gen/100/cb")
    grab(mode, g, url, str(tmp_path / "out"), checkfunc=check, failure_callback=on_failure,
         failfunc=failfunc)
    assert len(seen) == 5
    for text in seen:
        assert SECRET not in text, text


def test_password_not_in_batch_results(server, tmp_path):
    urlgrabber.parallel_begin()
    urlgrabber.urlgrab(with_password(server.url + "/status/404"), str(tmp_path / "out"), async_=True,
                       failfunc=lambda obj: None)
    results = urlgrabber.parallel_end()
    assert len(results) == 1
    res = results[0]
    assert not res.ok
    assert res.exception.code == 404
    assert_no_secret(res.exception)


def test_a_404_on_a_very_long_url_gives_a_short_message_and_the_whole_url(server):
    """The message stays readable (a log line, not 10 KB); err.url keeps the URL."""
    url = server.url + "/missing/" + "x" * 10000
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(url)
    err = info.value
    assert err.errno == 14 and err.code == 404
    assert len(err.strerror) < 2100 and "characters]..." in err.strerror
    assert err.strerror.startswith("HTTP Error 404") and err.strerror.endswith("x" * 50)
    assert err.url == url
