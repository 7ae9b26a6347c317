"""Bad input is URLGrabError errno 1 with a short message, refused before any request.

Option values are checked when they are set (the constructor, derive(),
attribute assignment, per-call keywords), from the one option table in
grabber.py; request headers cannot be injected through user_agent or
http_headers; non-ASCII URLs are sent as browsers send them (IDNA host,
UTF-8 percent-encoding); a huge URL is refused; bytes and path-like
destinations work.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
import urllib.parse

import pytest
from modes import MODES, grab, listing, read
from util import gen_bytes

import urlgrabber
from urlgrabber import URLGrabber, URLGrabError
from urlgrabber import grabber as grabber_mod
from urlgrabber.grabber import URLGrabberOptions, URLParser
from urlgrabber.mirror import MirrorGroup
from urlgrabber.progress import BaseMeter

# a URL nothing answers: a bad value must be refused before anything connects
NOWHERE = "http://127.0.0.1:9/never"


def bad_value_error(exc_info, name: str) -> URLGrabError:
    err = exc_info.value
    assert type(err) is URLGrabError
    assert err.errno == 1, str(err)
    assert err.strerror.startswith(f"Bad value for option {name}: "), err.strerror
    assert len(str(err)) < 200, str(err)
    return err


def _f(obj):
    return None


# ---------------------------------------------------------------------------
# the option table


def test_option_table_shape():
    names = [row[0] for row in grabber_mod._OPTIONS]
    assert len(names) == len(set(names))
    for row in grabber_mod._OPTIONS:
        name, default, check, doc = row
        assert isinstance(name, str) and name.isidentifier()
        assert check is None or callable(check)
        assert isinstance(doc, str) and doc and "\n" not in doc
        # every default passes its own validator unchanged
        if check is not None:
            assert check(default) == default, name
    assert {row[0]: row[1] for row in grabber_mod._OPTIONS} == grabber_mod._DEFAULTS
    assert set(URLGrabberOptions().__dict__) == set(names) | {"delegate"}


def test_values_are_plain_attributes():
    """Reading an option stays a plain __dict__ lookup; normalised values are stored."""
    opts = URLGrabberOptions(timeout="30", retry="2", size="1000", range=["10", 20])
    assert opts.__dict__["timeout"] == 30 and opts.timeout == 30
    assert opts.retry == 2 and opts.size == 1000
    assert opts.range == (10, 20)


def test_only_given_keywords_are_validated(monkeypatch):
    """derive() runs once per download: it checks the keywords given, never inherited values."""
    calls = []
    checks = dict(grabber_mod._CHECKS)
    for name, check in checks.items():
        if check is not None:
            checks[name] = (lambda n, c: lambda v: (calls.append(n), c(v))[1])(name, check)
    monkeypatch.setattr(grabber_mod, "_CHECKS", checks)
    base = URLGrabberOptions(timeout=5, retry=2, http_headers=[("X-A", "1")])
    assert sorted(calls) == ["http_headers", "retry", "timeout"]
    calls.clear()
    child = base.derive(async_=None)
    assert calls == ["async_"]
    assert child.timeout == 5 and child.retry == 2
    calls.clear()
    base.derive()
    assert calls == []
    # an inherited value is not looked at again (here one put in behind the table's back)
    base.__dict__["size"] = "not checked"
    base.derive(retry=1)


def test_assignment_is_all_or_nothing():
    opts = URLGrabberOptions()
    with pytest.raises(URLGrabError) as info:
        opts._set_attributes(timeout=5, retry="many")
    bad_value_error(info, "retry")
    assert opts.timeout == 300 and opts.retry is None


# ---------------------------------------------------------------------------
# bad values: errno 1, a short message, at every way of setting them

BAD = [
    ("timeout", "abc"), ("timeout", -1), ("timeout", float("inf")), ("timeout", float("nan")),
    ("timeout", [5]), ("timeout", 10 ** 10),
    ("minrate", "fast"), ("minrate", -1), ("minrate", float("inf")), ("minrate", 2 ** 40),
    ("retry", "x"), ("retry", -1), ("retry", 2.5), ("retry", [3]),
    ("retrycodes", None), ("retrycodes", "14"), ("retrycodes", [14, "x"]), ("retrycodes", 14),
    ("size", "big"), ("size", -5), ("size", 10 ** 30), ("size", 2.5), ("size", [1]),
    ("range", "0-10"), ("range", (1, 2, 3)), ("range", ("a", 5)), ("range", (None, "x")),
    ("range", 5), ("range", (float("inf"), None)), ("range", ([1], None)),
    ("throttle", "fast"), ("throttle", -1), ("throttle", float("nan")), ("throttle", 10 ** 30),
    ("bandwidth", "x"), ("bandwidth", -5),
    ("max_header_size", "x"), ("max_header_size", -1),
    ("max_connections", "x"), ("max_connections", -1), ("max_connections", 2.5),
    ("keepalive", "yes"), ("keepalive", 1.5), ("close_connection", "no"), ("copy_local", "1"),
    ("no_cache", []), ("quote", "1"), ("ssl_verify_peer", "False"), ("ssl_verify_host", "no"),
    ("user_agent", 5), ("user_agent", b"ua/1"), ("user_agent", "ü/1"),
    ("http_headers", "X-A: 1"), ("http_headers", {"X-A": "1"}), ("http_headers", [("X-A",)]),
    ("http_headers", [("X-A: 1", "2")]), ("http_headers", [("", "1")]), ("http_headers", [(5, "1")]),
    ("http_headers", [("X-A", None)]), ("http_headers", [("X-A", b"1")]), ("http_headers", [("X-A", "ü")]),
    ("proxies", "http://p:3128"), ("proxies", ["http://p:3128"]), ("proxies", {"http": 5}),
    ("proxies", {5: "http://p:3128"}), ("proxies", {"http": "http://p:3128 x"}), ("proxies", {"http": "http://ü"}),
    ("ip_resolve", "ipv5"), ("ip_resolve", 7), ("ip_resolve", True), ("ip_resolve", ["ipv4"]),
    ("checkfunc", 5), ("checkfunc", "check"), ("checkfunc", (5,)), ("checkfunc", (_f, 5)),
    ("checkfunc", (_f, (), 5)), ("checkfunc", (_f, (), {1: 2})), ("checkfunc", [_f]),
    ("failfunc", 5), ("failure_callback", "x"), ("interrupt_callback", object()),
    ("progress_obj", 5), ("progress_obj", object()), ("progress_obj", _f), ("progress_obj", BaseMeter),
    ("data", 5), ("data", [1, 2]), ("data", object()), ("data", "\ud800"), ("data", {"a": "\ud800"}),
    ("username", 5), ("username", b"u"), ("password", 5), ("password", ["pw"]),
    ("prefix", 5), ("urlparser", 5),
    ("ssl_ca_cert", 5), ("ssl_ca_cert", "/a\0b"), ("ssl_cert", 5.0), ("ssl_key", ["k"]),
    ("ssl_key_pass", 5), ("ssl_key_pass", "pw\0"), ("ssl_cert_type", 5), ("ssl_key_type", "P EM"),
    ("async_", "yes"), ("async_", ("k", "x")), ("async_", ("k", -1)), ("async_", ([1], 2)),
    ("async_", (1, 2, 3)), ("async_", 2.5),
]


def _ids(case):
    return f"{case[0]}={case[1]!r}"[:40]


@pytest.mark.parametrize("case", BAD, ids=[_ids(c) for c in BAD])
def test_bad_value_is_errno_1_wherever_it_is_set(case):
    name, value = case
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(**{name: value})
    bad_value_error(info, name)
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions().derive(**{name: value})
    bad_value_error(info, name)
    opts = URLGrabberOptions()
    before = opts.__dict__[name]
    with pytest.raises(URLGrabError) as info:
        setattr(opts, name, value)
    bad_value_error(info, name)
    assert opts.__dict__[name] is before
    with pytest.raises(URLGrabError) as info:
        URLGrabber(**{name: value})
    bad_value_error(info, name)


@pytest.mark.parametrize("case", BAD, ids=[_ids(c) for c in BAD])
def test_bad_value_as_per_call_keyword(case, tmp_path):
    name, value = case
    g = URLGrabber()
    for call in (lambda: g.urlgrab(NOWHERE, str(tmp_path / "out"), **{name: value}),
                 lambda: g.urlread(NOWHERE, **{name: value}),
                 lambda: g.urlopen(NOWHERE, **{name: value})):
        with pytest.raises(URLGrabError) as info:
            call()
        bad_value_error(info, name)
    assert listing(tmp_path) == []


def test_the_async_spelling_is_validated_too():
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(**{"async": "yes"})
    bad_value_error(info, "async_")


def test_unknown_option_is_still_errno_1():
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(timout=5)
    assert info.value.errno == 1 and "timout" in str(info.value)


def test_bad_reget_mode_keeps_errno_11():
    for value in ("bogus", 1, ["simple"]):
        with pytest.raises(URLGrabError) as info:
            URLGrabberOptions(reget=value)
        assert info.value.errno == 11
        assert len(str(info.value)) < 200


@pytest.mark.parametrize("rng", [(5, 1), (5, 5), (-1, 5), ("7", "3")])
def test_empty_inverted_or_negative_range_keeps_errno_9(rng):
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(range=rng)
    assert info.value.errno == 9


def test_message_is_short_even_for_a_huge_value():
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(timeout="abc" * 1000)
    err = bad_value_error(info, "timeout")
    assert "abc" * 30 not in str(err)
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(size=list(range(100_000)))
    bad_value_error(info, "size")
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(range=(10 ** 5000, 1))  # repr() of such an int raises
    assert info.value.errno == 9 and len(str(info.value)) < 200


def test_a_value_whose_methods_fail_is_errno_1():
    class Hostile:
        def __iter__(self):
            raise RuntimeError("no")

        def __repr__(self):
            raise RuntimeError("no repr either")

    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(retrycodes=Hostile())
    err = bad_value_error(info, "retrycodes")
    assert "Hostile" in str(err)


@pytest.mark.parametrize(("name", "value"), [
    ("password", "s3cr3t\r\nX: y"),
    ("password", 123456789),
    ("ssl_key_pass", "s3cr3t\0"),
    ("proxies", {"http": "http://user:s3cr3t@proxy:3128\r\n"}),
    ("proxies", ["http://user:s3cr3t@proxy:3128"]),
    ("http_headers", [("Authorization", "Bearer s3cr3t\r\nX-Injected: 1")]),
    ("username", "user:s3cr3t\n"),
])
def test_secrets_never_shown(name, value):
    with pytest.raises(URLGrabError) as info:
        URLGrabberOptions(**{name: value})
    err = bad_value_error(info, name)
    assert "s3cr3t" not in str(err)
    assert "123456789" not in str(err)


# ---------------------------------------------------------------------------
# good values still work (and classic's leniency is kept)


def test_numbers_as_strings_as_classic_accepted():
    """Classic did int(timeout) and float(size): "30" and "1000" worked, so they still do."""
    opts = URLGrabberOptions(timeout="30", size="1000", retry="3")
    assert (opts.timeout, opts.size, opts.retry) == (30, 1000, 3)
    assert URLGrabberOptions(timeout=" 2.5 ").timeout == 2.5
    assert URLGrabberOptions(size=1e6).size == 1_000_000
    assert URLGrabberOptions(retry=2.0).retry == 2


@pytest.mark.parametrize(("name", "value", "stored"), [
    ("timeout", None, None), ("timeout", 0, 0), ("timeout", 2.5, 2.5), ("timeout", 10 ** 9, 10 ** 9),
    ("minrate", 1000, 1000), ("minrate", None, None),
    ("retry", 0, 0), ("retry", None, None),
    ("retrycodes", (14,), (14,)), ("retrycodes", {12, 14}, {12, 14}), ("retrycodes", iter([14]), [14]),
    ("size", 0, 0), ("size", None, None),
    ("range", (None, 10), (0, 10)), (("range"), ("", 5), (0, 5)), ("range", (10, None), (10, None)),
    ("range", [3, ""], (3, None)), ("range", None, None), ("range", (5.0, 9), (5, 9)),
    ("throttle", 0, 0), ("throttle", None, None), ("throttle", 0.5, 0.5), ("bandwidth", None, None),
    ("max_header_size", None, None), ("max_connections", 0, 0), ("max_connections", None, None),
    ("keepalive", True, True), ("keepalive", 0, 0), ("copy_local", None, None),
    ("user_agent", None, None), ("user_agent", "", ""), ("user_agent", "a\tb/1", "a\tb/1"),
    ("http_headers", (), ()), ("http_headers", [["X-A", 5]], [["X-A", 5]]), ("http_headers", None, None),
    ("proxies", {}, {}), ("proxies", {"http": "_none_", "ftp": None}, {"http": "_none_", "ftp": None}),
    ("ip_resolve", "IPv4", "IPv4"), ("ip_resolve", 6, 6), ("ip_resolve", "", ""),
    ("checkfunc", (_f,), (_f,)), ("checkfunc", (_f, [1]), (_f, [1])), ("failfunc", None, None),
    ("data", b"x", b"x"), ("data", bytearray(b"x"), bytearray(b"x")), ("data", {"a": 1}, {"a": 1}),
    ("username", "user", "user"), ("password", None, None),
    ("ssl_ca_cert", pathlib.Path("/etc/ca.pem"), "/etc/ca.pem"), ("ssl_cert", b"/c.pem", b"/c.pem"),
    ("ssl_key", "/k\u00e9y.pem", os.fsencode("/k\u00e9y.pem")),
    ("ssl_key_pass", "p\u00e4ss", "p\u00e4ss".encode()), ("ssl_key_pass", b"pw", b"pw"),
    ("ssl_cert_type", "DER", "DER"), ("ssl_key_type", None, None),
    ("async_", True, True), ("async_", 1, 1), ("async_", ("k", 3), ("k", 3)), ("async_", ["k", None], ["k", None]),
    ("text", object, object), ("half_life", "anything", "anything"),
])
def test_good_values_are_stored(name, value, stored):
    opts = URLGrabberOptions(**{name: value})
    assert opts.__dict__[name] == stored


def test_sequences_are_kept_so_changes_in_place_count():
    headers = [("X-A", "1")]
    proxies = {"http": "_none_"}
    codes = [14]
    opts = URLGrabberOptions(http_headers=headers, proxies=proxies, retrycodes=codes)
    assert opts.http_headers is headers and opts.proxies is proxies and opts.retrycodes is codes


def test_good_values_download(mode, server, tmp_path):
    meter = BaseMeter()
    g = URLGrabber(timeout="30", retry="2", retrycodes=(14,), keepalive=True, copy_local=0)
    dest = str(tmp_path / "out")
    grab(mode, g, server.url + "/gen/5000/good", dest, size="5000", range=["100", 200], ip_resolve="IPv4",
         http_headers=[("X-Count", 3)], proxies={"http": "_none_"}, progress_obj=meter, throttle=0,
         bandwidth=None, max_header_size=4096, minrate=1, checkfunc=(_f, (), {}),
         max_connections=3)
    assert read(dest) == gen_bytes(5000, "good")[100:200]
    assert server.log[-1]["headers"]["x-count"] == "3"


def test_urlread_limit_is_validated(server):
    for limit in ("x", -1, 2.5):
        with pytest.raises(URLGrabError) as info:
            urlgrabber.urlread(server.url + "/gen/10/lim", limit=limit)
        assert info.value.errno == 1 and len(str(info.value)) < 200
    assert server.requests == 0
    assert urlgrabber.urlread(server.url + "/gen/10/lim", limit=10) == gen_bytes(10, "lim")


# ---------------------------------------------------------------------------
# request headers cannot be injected


INJECTIONS = [
    ("user_agent", "ua/1\r\nX-Injected: 1"),
    ("user_agent", "ua/1\nX-Injected: 1"),
    ("user_agent", "ua/1\rX-Injected: 1"),
    ("user_agent", "ua/1\0"),
    ("http_headers", [("X-Good", "1\r\nX-Injected: 1")]),
    ("http_headers", [("X-Good", "1\nX-Injected: 1")]),
    ("http_headers", [("X-Good", "1\0")]),
    ("http_headers", [("X-Injected: 1\r\nX-Good", "1")]),
    ("http_headers", (("X-Good", "1"), ("X-Other", "2\r\n\r\nGET / HTTP/1.1"))),
    # classic's empty-header idiom is one empty value and one header line, nothing else
    ("http_headers", [("X-Good", "\nX-Injected: 1\nX-Two: 2")]),
    ("http_headers", [("X-Good", "\n\r\nGET / HTTP/1.1")]),
    ("http_headers", [("X-Good", "\nnot a header")]),
    ("http_headers", [("X-Good", "\n")]),
    ("http_headers", [("X-Good", "\rX-Injected: 1")]),
    ("http_headers", [("X-Good", "\n X-Injected: 1")]),
    ("http_headers", [("X-Good", "\nX-Injected: 1\r")]),
]


@pytest.mark.parametrize("case", INJECTIONS, ids=[_ids(c) for c in INJECTIONS])
def test_crlf_injection_is_refused(mode, server, tmp_path, case):
    name, value = case
    with pytest.raises(URLGrabError) as info:
        grab(mode, URLGrabber(), server.url + "/echo/headers", str(tmp_path / "h"), **{name: value})
    bad_value_error(info, name)
    assert server.requests == 0
    with pytest.raises(URLGrabError) as info:
        setattr(URLGrabber().opts, name, value)
    bad_value_error(info, name)


def test_classic_empty_header_idiom_sends_the_header_empty(mode, server, tmp_path):
    """libcurl drops a header with an empty value, so classic callers (yum-rhn-plugin,
    spacewalk's plugins) send ``"\\nX-libcurl-Empty-Header-Workaround: *"`` instead, LF
    or CRLF: the header arrives empty, the placeholder as its own header, as with
    classic; a plainly empty value still removes the header, as libcurl does."""
    dest = str(tmp_path / "h")
    grab(mode, URLGrabber(), server.url + "/echo/headers", dest, http_headers=(
        ("X-RHN-Auth-User-Id", "\nX-libcurl-Empty-Header-Workaround: *"),
        ("X-Crlf", "\r\nX-Second-Placeholder: *"),
        ("X-RHN-Auth", "token"),
        ("Accept", ""),
    ))
    seen = json.loads(read(dest))
    assert seen["x-rhn-auth-user-id"] == "" and seen["x-libcurl-empty-header-workaround"] == "*"
    assert seen["x-crlf"] == "" and seen["x-second-placeholder"] == "*"
    assert seen["x-rhn-auth"] == "token"
    assert "accept" not in seen  # (libcurl's own Accept: */* removed, as classic could)


def test_a_header_list_changed_in_place_is_checked_again(server, tmp_path):
    """Header lists are read at each call, so a line break added to one in place since
    it was set fails that request (errno 1, nothing sent); the batch's others go on."""
    headers = [("X-A", "1")]
    g = URLGrabber(http_headers=headers)
    grab("blocking", g, server.url + "/echo/headers", str(tmp_path / "ok"))
    headers.append(("X-B", "2\r\n\r\nGET /smuggled HTTP/1.1"))
    before = server.requests
    with pytest.raises(URLGrabError) as info:
        grab("blocking", g, server.url + "/echo/headers", str(tmp_path / "bad"))
    bad_value_error(info, "http_headers")
    assert server.requests == before
    urlgrabber.parallel_begin()
    g.urlgrab(server.url + "/echo/headers", str(tmp_path / "bad2"), async_=True)
    URLGrabber().urlgrab(server.url + "/gen/10/fine", str(tmp_path / "fine"), async_=True)
    results = urlgrabber.parallel_end(raise_errors=False)
    assert [r.ok for r in results] == [False, True]
    assert results[0].exception.errno == 1 and "X-B" in str(results[0].exception)
    assert not (tmp_path / "bad2").exists() and (tmp_path / "fine").read_bytes() == gen_bytes(10, "fine")
    assert not any("smuggled" in e["path"] for e in server.log)


def test_grabber_module_names_pycurl_as_classic_did():
    """Classic's grabber imported pycurl, and callers test for it before using libcurl's
    empty-header idiom (``from urlgrabber.grabber import pycurl``, yum-rhn-plugin)."""
    from urlgrabber.grabber import pycurl

    assert pycurl and pycurl.Curl and pycurl.HTTPHEADER


def test_good_headers_arrive(mode, server, tmp_path):
    g = URLGrabber(user_agent="good-agent/1.0 (tab\tok)")
    dest = str(tmp_path / "h")
    grab(mode, g, server.url + "/echo/headers", dest, http_headers=[("X-Good", "yes: it is"), ("X-Num", 7)])
    seen = json.loads(read(dest))
    assert seen["user-agent"] == "good-agent/1.0 (tab\tok)"
    assert seen["x-good"] == "yes: it is"
    assert seen["x-num"] == "7"
    assert "x-injected" not in seen


# ---------------------------------------------------------------------------
# non-ASCII URLs: IDNA hosts, UTF-8 percent-encoding


@pytest.mark.parametrize(("url", "sent"), [
    ("http://bücher.example/ä?q=ü", "http://xn--bcher-kva.example/%C3%A4?q=%C3%BC"),
    ("https://BÜCHER.example:8443/a b/ä", "https://xn--bcher-kva.example:8443/a b/%C3%A4"),
    ("http://üser:pä@bücher.example/p#frag-é", "http://%C3%BCser:p%C3%A4@xn--bcher-kva.example/p#frag-%C3%A9"),
    ("http://h/a%20ä?x=%41ü", "http://h/a%20%C3%A4?x=%41%C3%BC"),
    ("http://[::1]:80/ä", "http://[::1]:80/%C3%A4"),
    ("http://例え.テスト/", "http://xn--r8jz45g.xn--zckzah/"),
    ("http://h/\U0001f600", "http://h/%F0%9F%98%80"),
    ("http://h/\udcff", "http://h/%FF"),  # an undecodable byte kept as a surrogate escape
    ("ftp://h/ä", "ftp://h/%C3%A4"),
])
def test_ascii_url(url, sent):
    assert grabber_mod._ascii_url(url) == sent


@pytest.mark.parametrize(("host", "ascii_host"), [
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.Example", "xn--bcher-kva.example"),
    ("bücher.example.", "xn--bcher-kva.example."),
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("plain.example", "plain.example"),
])
def test_idna_host(host, ascii_host):
    assert grabber_mod._idna_host(host) == ascii_host


@pytest.mark.parametrize("host", ["ü" * 64 + ".example", "a..ü.example", "ü%41.example", "b ü.example",
                                  "\u0627a\u0628.example"])
def test_host_that_is_not_valid_idna_is_errno_1(host):
    with pytest.raises(URLGrabError) as info:
        grabber_mod._idna_host(host)
    assert info.value.errno == 1 and len(str(info.value)) < 300
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(f"http://{host}/x")
    assert info.value.errno == 1 and len(str(info.value)) < 300


def test_urlparser_returns_ascii():
    url, parts = URLParser().parse("http://bücher.example/ä?q=ü", URLGrabberOptions())
    assert url == "http://xn--bcher-kva.example/%C3%A4?q=%C3%BC"
    assert parts.netloc == "xn--bcher-kva.example" and parts.path == "/%C3%A4" and parts.query == "q=%C3%BC"


def test_plain_ascii_urls_keep_the_fast_path():
    plain = grabber_mod._plain_url
    assert plain("http://h:80/a/b.rpm?x=1&y=%20")
    assert not plain("http://h/a?q=ü")
    assert not plain("http://h/a?q=a\x00")
    assert not plain("http://h/a?q=a b")
    assert not plain("http://h/ä")


@pytest.mark.parametrize("mode", MODES)
def test_non_ascii_path_reaches_the_server_percent_encoded(mode, server, tmp_path):
    dest = str(tmp_path / "out")
    grab(mode, URLGrabber(), server.url + "/gen/10/ä", dest)
    assert server.log[-1]["target"] == "/gen/10/%C3%A4"
    assert read(dest) == gen_bytes(10, "ä")


def test_non_ascii_query_reaches_the_server_percent_encoded(server):
    data = urlgrabber.urlread(server.url + "/gen/10/q?name=ü&x=%41")
    assert server.log[-1]["target"] == "/gen/10/q?name=%C3%BC&x=%41"
    assert data == gen_bytes(10, "q")
    with urlgrabber.urlopen(server.url + "/gen/10/ö") as fo:
        assert fo.read() == gen_bytes(10, "ö")
    assert server.log[-1]["target"] == "/gen/10/%C3%B6"


def test_non_ascii_with_prefix_mirror_and_own_parser(mode, server, tmp_path):
    g = URLGrabber(prefix=server.url + "/gen/10/")
    assert g.urlread("ä") == gen_bytes(10, "ä")
    assert server.log[-1]["target"] == "/gen/10/%C3%A4"
    mg = MirrorGroup(URLGrabber(), [server.url + "/gen/10/"])
    grab(mode, mg, "ü", str(tmp_path / "m"))
    assert server.log[-1]["target"] == "/gen/10/%C3%BC"

    class OwnParser:  # a urlparser of the caller's own, returning the URL as it is
        def parse(self, url, opts):
            import urllib.parse
            return url, urllib.parse.urlparse(url)

    assert URLGrabber(urlparser=OwnParser()).urlread(server.url + "/gen/10/é") == gen_bytes(10, "é")
    assert server.log[-1]["target"] == "/gen/10/%C3%A9"


def test_idna_host_reaches_the_server(server):
    """*.localhost resolves to the loopback in libcurl: an IDNA name reaches our server."""
    data = urlgrabber.urlread(f"http://bücher.localhost:{server.port}/gen/10/i")
    assert data == gen_bytes(10, "i")
    assert server.log[-1]["headers"]["host"] == f"xn--bcher-kva.localhost:{server.port}"


# ---------------------------------------------------------------------------
# huge URLs


@pytest.mark.parametrize("mode", MODES)
def test_huge_url_is_refused_quickly_with_a_short_message(mode, server, tmp_path):
    url = server.url + "/gen/10/" + "a" * (9 * 1024 * 1024)
    started = time.monotonic()
    for call in (lambda: grab(mode, URLGrabber(), url, str(tmp_path / "out")),
                 lambda: urlgrabber.urlread(url),
                 lambda: urlgrabber.urlopen(url),
                 lambda: URLGrabber(prefix=server.url).urlread("/gen/10/" + "é" * (9 * 1024 * 1024))):
        with pytest.raises(URLGrabError) as info:
            call()
        assert info.value.errno == 1
        assert "URL too long" in str(info.value)
        assert len(str(info.value)) < 300
    assert time.monotonic() - started < 5
    assert server.requests == 0
    assert listing(tmp_path) == []


def test_url_length_limit_boundary():
    limit = grabber_mod._MAX_URL_LENGTH
    head = "http://h/"
    opts = URLGrabberOptions()
    url, _parts = URLParser().parse(head + "a" * (limit - len(head)), opts)
    assert len(url) == limit
    with pytest.raises(URLGrabError) as info:
        URLParser().parse(head + "a" * (limit - len(head) + 1), opts)
    assert info.value.errno == 1
    # percent-encoding can make a URL too long too: 2 bytes each, 6 characters
    with pytest.raises(URLGrabError) as info:
        URLParser().parse(head + "ä" * (limit // 6 + 1), opts)
    assert info.value.errno == 1 and "too long" in str(info.value)


def test_malformed_url_message_is_short():
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread("http://h:" + "x" * 50_000 + "/")
    assert info.value.errno == 1 and len(str(info.value)) < 600
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread("http://[::1" + "x" * 50_000 + "/")
    assert info.value.errno == 1 and len(str(info.value)) < 600
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread("http://h/\ud800")  # a lone surrogate: no UTF-8 for it
    assert info.value.errno == 1 and len(str(info.value)) < 600


# ---------------------------------------------------------------------------
# destinations: bytes and path-like, as classic accepted


def test_bytes_and_pathlike_filenames(mode, server, tmp_path):
    g = URLGrabber()
    result = grab(mode, g, server.url + "/gen/100/b", os.fsencode(str(tmp_path / "bytes.bin")))
    assert result == str(tmp_path / "bytes.bin")
    grab(mode, g, server.url + "/gen/100/p", tmp_path / "path.bin")
    undecodable = os.fsencode(str(tmp_path)) + b"/raw-\xff.bin"
    grab(mode, g, server.url + "/gen/100/r", undecodable)
    assert read(tmp_path / "bytes.bin") == gen_bytes(100, "b")
    assert read(tmp_path / "path.bin") == gen_bytes(100, "p")
    with open(undecodable, "rb") as fo:
        assert fo.read() == gen_bytes(100, "r")
    assert sorted(os.listdir(os.fsencode(str(tmp_path)))) == [b"bytes.bin", b"path.bin", b"raw-\xff.bin"]


def test_bytes_and_pathlike_filenames_with_a_mirror_group(mode, server, tmp_path):
    mg = MirrorGroup(URLGrabber(), [server.url + "/gen/100/"])
    grab(mode, mg, "mb", os.fsencode(str(tmp_path / "mb.bin")))
    grab(mode, mg, "mp", tmp_path / "mp.bin")
    assert read(tmp_path / "mb.bin") == gen_bytes(100, "mb")
    assert read(tmp_path / "mp.bin") == gen_bytes(100, "mp")


def test_default_filename_of_a_non_ascii_url(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert urlgrabber.urlgrab(server.url + "/gen/10/ä.txt") == "ä.txt"
    assert read(tmp_path / "ä.txt") == gen_bytes(10, "ä.txt")


@pytest.mark.parametrize("filename", [5, "", b"", "out\0x", 1.5, ["out"]], ids=repr)
def test_bad_filename_is_errno_1(mode, server, tmp_path, monkeypatch, filename):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(URLGrabError) as info:
        grab(mode, URLGrabber(), server.url + "/gen/10/f", filename)
    assert info.value.errno == 1 and len(str(info.value)) < 200
    assert server.requests == 0
    assert listing(tmp_path) == []


def test_bad_filename_with_a_mirror_group_is_errno_1(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mg = MirrorGroup(URLGrabber(), [server.url + "/gen/10/"])
    for filename in ("", "out\0x"):
        with pytest.raises(URLGrabError) as info:
            mg.urlgrab("f", filename)
        assert info.value.errno in (1, 256) and len(str(info.value)) < 500
    assert listing(tmp_path) == []


# ---------------------------------------------------------------------------
# non-ASCII bytes URLs and local paths: each byte goes out as itself
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"caf\xc3\xa9", b"caf\xe9"], ids=["utf-8", "latin-1"])
def test_a_bytes_url_with_non_ascii_bytes_is_percent_encoded_byte_for_byte(server, raw):
    server.add_file("/café", b"the bytes")  # (the test server decodes paths as UTF-8)
    url = server.url.encode() + b"/" + raw
    if raw == b"caf\xc3\xa9":
        assert urlgrabber.urlread(url) == b"the bytes"
    else:
        with pytest.raises(URLGrabError) as info:
            urlgrabber.urlread(url)
        assert info.value.code == 404
    assert server.log[-1]["target"] == "/" + "".join("%%%02X" % c if c > 127 else chr(c) for c in raw)


def test_a_bytes_url_with_a_host_that_is_not_utf8_is_errno_1():
    with pytest.raises(URLGrabError) as info:
        urlgrabber.urlread(b"http://h\xe9st.example/x")
    assert info.value.errno == 1


@pytest.mark.parametrize("name", [b"caf\xc3\xa9", b"caf\xe9"], ids=["utf-8", "latin-1"])
def test_local_paths_and_file_urls_with_non_ascii_bytes(tmp_path, name):
    src = os.path.join(os.fsencode(tmp_path), name)
    with open(src, "wb") as f:
        f.write(b"local bytes")
    quoted = urllib.parse.quote(src).encode()
    for url in (src, os.fsdecode(src), b"file://" + quoted, "file://" + quoted.decode()):
        assert urlgrabber.urlread(url) == b"local bytes", url
    out = tmp_path / "copy"
    urlgrabber.urlgrab(b"file://" + quoted, str(out), copy_local=1)
    assert out.read_bytes() == b"local bytes"


@pytest.mark.parametrize("batch", [False, True], ids=["blocking", "batch"])
def test_mirrorgroup_bad_filename_is_errno_1(server, tmp_path, batch):
    mg = MirrorGroup(URLGrabber(), [server.url + "/"])
    with pytest.raises(URLGrabError) as info:
        mg.urlgrab("gen/10/x", 5, **({"async_": True} if batch else {}))
    assert info.value.errno == 1
    assert urlgrabber.parallel_end() == []
