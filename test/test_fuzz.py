"""Fuzzing (hypothesis): random URLs and option values against a real local server.

Whatever comes in, a call either succeeds or raises URLGrabError with an int
errno and a message of bounded length; never another exception type.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import urlgrabber
from urlgrabber import URLGrabber, URLGrabError, _curl
from urlgrabber.grabber import URLGrabberOptions
from urlgrabber.progress import BaseMeter

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MAX_MESSAGE = 2000


def outcome(call, kind: str = "call"):
    """Run ``call``: a result, or a URLGrabError that is well formed; anything else fails the test."""
    try:
        return call()
    except URLGrabError as err:
        assert isinstance(err.errno, int), (kind, err.errno)
        text = str(err)
        assert len(text) < MAX_MESSAGE, (kind, len(text), text[:300])
        return err


# ---------------------------------------------------------------------------
# URLs

# text of every kind: non-ASCII, control characters, URL delimiters, lone surrogates
PIECES = ["\x00", "\r\n", "\n", "\t", " ", "%", "%zz", "%C3%A4", "?", "#", "@", ":", "/", "[", "]",
          "\udcff", "\ud800", "\x7f", "ä", "\u200b", "\U0001f600", "xn--"]
any_text = st.lists(st.characters() | st.sampled_from(PIECES), max_size=40).map("".join)


@st.composite
def urls(draw, base: str, port: int) -> str:
    kind = draw(st.sampled_from(["server", "server", "server", "host", "huge", "text", "scheme"]))
    if kind == "server":  # well formed: a prefix of the server, anything after it
        size = draw(st.integers(0, 64))
        return f"{base}/gen/{size}/{draw(any_text)}"
    if kind == "host":  # any host name: *.localhost resolves to the loopback in libcurl
        host = draw(st.text(st.characters(exclude_characters="/?#@:[]\\%"), max_size=20))
        return f"http://{host}.localhost:{port}/gen/8/{draw(any_text)}"
    if kind == "huge":  # more than the 64 KiB limit, up to 9 MB
        n = draw(st.sampled_from([64 * 1024 + 1, 100_000, 9 * 1024 * 1024]))
        char = draw(st.sampled_from(["a", "é", "%", " "]))
        return f"{base}/gen/1/" + char * n
    if kind == "scheme":
        scheme = draw(st.sampled_from(["http", "https", "ftp", "file", "gopher", "HTTP", "ht!tp", "h"]))
        return f"{scheme}://{draw(any_text)}"
    return draw(any_text)


@FUZZ
@given(data=st.data())
def test_fuzz_urls(server, tmp_path, data):
    url = data.draw(urls(server.url, server.port), label="url")
    kind = data.draw(st.sampled_from(["grab", "read", "open", "batch"]), label="kind")
    g = URLGrabber(timeout=5)
    dest = str(tmp_path / "out")
    if kind == "grab":
        outcome(lambda: g.urlgrab(url, dest), kind)
    elif kind == "read":
        outcome(lambda: g.urlread(url), kind)
    elif kind == "open":
        fo = outcome(lambda: g.urlopen(url), kind)
        if not isinstance(fo, URLGrabError):
            outcome(fo.read, kind)
            fo.close()
    else:
        urlgrabber.parallel_begin()
        try:
            outcome(lambda: g.urlgrab(url, dest, async_=True), kind)
        finally:
            outcome(urlgrabber.parallel_end, kind)


# ---------------------------------------------------------------------------
# option values


def _check(obj):
    return None


class Meter(BaseMeter):
    pass


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10), st.integers(), st.integers(min_value=2 ** 62),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 5),
    any_text, st.sampled_from(["30", "2.5", "-1", "abc", "ipv4", "IPv6", "simple", "check_timestamp",
                               "1e400", "nan", "0x10", "PEM"]),
    st.binary(max_size=20),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.tuples(scalars, scalars),
    st.tuples(scalars, scalars, scalars),
    st.dictionaries(st.sampled_from(["http", "https", "ftp", "all"]) | any_text, scalars, max_size=2),
    st.lists(st.tuples(any_text | st.sampled_from(["X-A", "Accept"]), scalars), max_size=2),
    # callables among them must not raise: a callback's own exception is the caller's to see
    st.sampled_from([_check, (_check,), (_check, ()), (_check, (), {}), (_check, 5), (5,), (_check, [1]),
                     Meter(), object(), id, ("key", 2), ("key", None), (["k"], 2),
                     {"http": "_none_"}, {"http": "http://u:pw@127.0.0.1:9"}, [("X-A", "1")],
                     (("X-A", "1\r\nX-B: 2"),), [-1, 2, 14], iter([14]), (0, 10), (5, 1), (None, 3)]),
)
# everything the hardening issue lists, plus the simple booleans
OPTION_NAMES = [
    "timeout", "minrate", "retry", "retrycodes", "size", "range", "throttle", "bandwidth",
    "max_header_size", "max_connections", "keepalive", "close_connection", "copy_local", "user_agent",
    "http_headers", "proxies", "ip_resolve", "checkfunc", "failure_callback", "failfunc",
    "interrupt_callback", "progress_obj", "data", "username", "password", "ssl_verify_peer",
    "ssl_verify_host", "ssl_ca_cert", "ssl_cert", "ssl_key", "ssl_key_pass", "ssl_cert_type",
    "ssl_key_type", "async_", "reget", "quote", "no_cache", "prefix", "urlparser",
]
# a request with these is slow by design (1 byte/s is a valid throttle); they are checked
# by validation and by configure() only, not with a download
SLOW = ("throttle", "bandwidth")


def _network_options(options: dict) -> dict:
    """The options for a real download: no slow throttles, at most 2 retries (a huge valid
    count on a failing URL takes for ever), no lookups of random host names (prefix,
    proxies: their values were validated and configured above)."""
    kw = {k: v for k, v in options.items() if k not in (*SLOW, "prefix")}
    if "retry" in kw:
        try:
            retry = URLGrabberOptions(retry=kw["retry"]).retry
        except URLGrabError:
            pass
        else:
            if retry is not None and retry > 2:
                kw["retry"] = 2
    if isinstance(kw.get("proxies"), dict):
        kw["proxies"] = {k: v if v in (None, "", "_none_") or not isinstance(v, str) else "http://127.0.0.1:9"
                         for k, v in kw["proxies"].items()}
    return kw


@FUZZ
@given(data=st.data())
def test_fuzz_options(server, tmp_path, data):
    options = data.draw(st.dictionaries(st.sampled_from(OPTION_NAMES), values, max_size=4), label="options")
    # 1. set: every way of setting a value agrees, and configure() accepts what validation did
    made = outcome(lambda: URLGrabberOptions(**options), "options")
    derived = outcome(lambda: URLGrabberOptions().derive(**options), "derive")
    assert isinstance(made, URLGrabError) == isinstance(derived, URLGrabError)
    if not isinstance(made, URLGrabError):
        handle = _curl.Handle()
        try:
            for url in ("http://127.0.0.1:9/x", "https://127.0.0.1:9/x", "ftp://127.0.0.1:9/x"):
                _curl.configure(handle, made, url)  # no exception: libcurl takes every value
            assert _curl.throttle_rate(made) >= 0
        finally:
            handle.curl.close()
    # 2. use: a real download with them (per-call keywords)
    kw = _network_options(options)
    url = server.url + f"/gen/{data.draw(st.integers(0, 32), label='size')}/f"
    kind = data.draw(st.sampled_from(["grab", "read", "open"]), label="kind")
    g = URLGrabber(timeout=5)
    dest = str(tmp_path / "out")
    if kind == "grab":
        outcome(lambda: g.urlgrab(url, dest, **kw), kind)
        outcome(urlgrabber.parallel_end, "batch")  # runs it when async_ queued it
    elif kind == "read":
        outcome(lambda: g.urlread(url, **kw), kind)
    else:
        fo = outcome(lambda: g.urlopen(url, **kw), kind)
        if not isinstance(fo, URLGrabError):
            outcome(fo.read, kind)
            fo.close()


@pytest.mark.parametrize("value", ["abc", "x" * 5000])
def test_timeout_string_message_is_short(value):
    """The case that started it: timeout='abc' gave a message repeating 'abc' a thousand times."""
    err = outcome(lambda: urlgrabber.urlread("http://127.0.0.1:9/x", timeout=value))
    assert isinstance(err, URLGrabError) and err.errno == 1
    assert len(str(err)) < 200


# ---------------------------------------------------------------------------
# the plain-URL shortcut

# What _plain_url accepts, as a regular expression (the specification it is
# checked against): a scheme, host and port 0-65535 (after userinfo), a path and a
# non-empty query of characters that need no quoting.
_PORT = (r"(?::(?:[1-5][0-9]{4}(?![0-9])|6(?:[0-4][0-9]{3}|5(?:[0-4][0-9]{2}|5(?:[0-2][0-9]|3[0-5])))(?![0-9])"
         r"|[0-9]{1,4}(?![0-9])))?")
_PLAIN = (r"(?:https?|ftps?)://(?:[A-Za-z0-9.-]+" + _PORT + r"|[A-Za-z0-9.:@-]*@[A-Za-z0-9.-]+" + _PORT + ")"
          r"(?:/[A-Za-z0-9_.~/-]*)?(?:\?[\x21\x22\x24-\x7e]+)?\Z")
# pieces that make near misses: schemes, separators, ports around the limits, characters to quote
_URL_PIECES = st.builds("".join, st.lists(st.sampled_from([
    "http://", "https://", "ftp://", "ftps://", "HTTP://", "file://", "h", "example.org", ":", "@", "/", "?",
    "0", "80", "0080", "01234", "65535", "65536", "99999", "123456", "abc", "-", ".", "_", "~", "%", "#", ";",
    "$", " ", "é", "\n", "[::1]"]), max_size=12))


@settings(max_examples=600, deadline=None)
@given(url=st.from_regex(_PLAIN, fullmatch=True) | _URL_PIECES
       | st.builds(str.__add__, st.sampled_from(["http://h/", "http://h", "ftp://u:p@h:21/"]), st.text(max_size=12)))
def test_plain_url_accepts_what_the_specification_does(url):
    from urlgrabber import grabber

    grabber._plain_prefix = "\0"  # (each URL checked whole, then again after its own prefix)
    expected = re.match(_PLAIN, url) is not None
    assert grabber._plain_url(url) is expected
    assert grabber._plain_url(url) is expected


@pytest.mark.parametrize("url, plain", [
    ("http://127.0.0.1:41111/gen/4096/f00001.bin", True),
    ("https://u:p@mirror.example.org:65535/a/b-c_d.~x?q=1&r=/s?t", True),
    ("ftp://h:0", True), ("http://h?q", True), ("http://h/", True), ("http://@h/", True),
    ("http://h:65536/", False), ("http://h:01234/", False), ("http://h:/", False), ("http://:80/", False),
    ("http://h/?", False), ("http://h/a b", False), ("http://h/a%20b", False), ("http://h/#f", False),
    ("http://h/a?b#c", False), ("http://h/é", False), ("HTTP://h/", False), ("http://h:8:8/", False),
    pytest.param("http://h/" + "x" * (64 * 1024), False, id="too-long"), (b"http://h/", False),
])
def test_plain_url_cases(url, plain):
    from urlgrabber import grabber

    assert grabber._plain_url(url) is plain
    assert grabber._plain_url(url) is plain  # (now with the URL's own prefix remembered)
    assert grabber._plain_url("http://h/x") and grabber._plain_url(url) is plain  # and after another's


@settings(max_examples=400, deadline=None)
@given(url=st.from_regex(_PLAIN, fullmatch=True) | _URL_PIECES)
def test_a_plain_url_is_what_the_parser_makes_of_it(url):
    # URLGrabber, and a MirrorGroup's joined URL, skip URLParser for a URL that
    # _plain_url accepts: the parser must accept every such URL and return it as it is
    from urlgrabber.grabber import URLParser, _plain_url

    if not _plain_url(url):
        return
    parsed, _ = URLParser().parse(url, URLGrabberOptions())
    assert parsed == url
