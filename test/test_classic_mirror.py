"""MirrorGroup as a drop-in for classic urlgrabber's: the hooks subclasses override.

Blocking calls go through classic ``_mirror_try``: ``_load_gr``, then per try
``_get_mirror``, ``_join_url`` and the chosen grabber's own public method, and
``_failure`` -> ``increment_mirror`` after each failure.  A batch still picks
mirrors with the engine's scheduler, but builds every URL with ``_join_url``
and applies the per-mirror ``kwargs``.  ``group.mirrors`` is the classic list
of dicts; yum's ``preference``/``private`` mirror kwargs are accepted; the
classic DEBUG log lines are written (passwords redacted).
"""

from __future__ import annotations

import logging
import random
import urllib.parse

import pytest
from util import gen_bytes

import urlgrabber
import urlgrabber.grabber
import urlgrabber.mirror as mirror_module
from urlgrabber.grabber import URLGrabber, URLGrabError
from urlgrabber.mirror import GrabRequest, MGRandomOrder, MGRandomStart, MirrorGroup


def rel(size: int, name: str) -> str:
    return f"gen/{size}/{name}"


def assert_gen(path, size: int, name: str) -> None:
    with open(path, "rb") as f:
        assert f.read() == gen_bytes(size, name), f"{path}: wrong content"


def batch(mg, files, limit=None, **kw):
    """Queue ``(relative, dest)`` pairs through ``mg`` and run them; the results."""
    urlgrabber.parallel_begin(limit)
    try:
        for r, d in files:
            assert mg.urlgrab(r, str(d), async_=True, **kw) == str(d)
    except BaseException:
        urlgrabber.parallel_end()
        raise
    return urlgrabber.parallel_end()


class RecordingGrabber(URLGrabber):
    """A URLGrabber subclass that records every call of its public methods."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def urlgrab(self, url, filename=None, **kwargs):
        self.calls.append(("urlgrab", url, filename, dict(kwargs)))
        return super().urlgrab(url, filename, **kwargs)

    def urlread(self, url, limit=None, **kwargs):
        self.calls.append(("urlread", url, limit, dict(kwargs)))
        return super().urlread(url, limit, **kwargs)

    def urlopen(self, url, **kwargs):
        self.calls.append(("urlopen", url, None, dict(kwargs)))
        return super().urlopen(url, **kwargs)

    def urls(self):
        return [c[1] for c in self.calls]


class DuckGrabber:
    """Not a URLGrabber and no ``.opts``: only ``urlgrab``, as classic callers may pass."""

    def __init__(self):
        self.calls = []

    def urlgrab(self, url, filename=None, flavour=None, **kw):
        self.calls.append((url, filename, dict(kw, flavour=flavour) if flavour else dict(kw)))
        return urlgrabber.grabber.urlgrab(url, filename, **kw)


# ---------------------------------------------------------------------------
# the grabber's own public method, per mirror
# ---------------------------------------------------------------------------


def test_grabber_subclass_urlgrab_is_called_per_mirror(server, server2, tmp_path):
    server.defaults["status"] = 500
    g = RecordingGrabber()
    mg = MirrorGroup(g, [server.url, server2.url])
    dest = str(tmp_path / "sub")
    assert mg.urlgrab(rel(1000, "sub"), dest) == dest
    assert_gen(dest, 1000, "sub")
    assert g.calls == [
        ("urlgrab", f"{server.url}/gen/1000/sub", dest, {}),
        ("urlgrab", f"{server2.url}/gen/1000/sub", dest, {}),
    ]
    assert (server.requests, server2.requests) == (1, 1)


def test_mirror_kwargs_merge_under_call_kwargs_without_yum_keys(server, tmp_path):
    g = RecordingGrabber()
    entry = {"mirror": server.url,
             "kwargs": {"user_agent": "mirror-ua", "timeout": 7, "preference": 50, "private": True}}
    mg = MirrorGroup(g, [entry])
    mg.urlgrab(rel(100, "kw"), str(tmp_path / "kw"), user_agent="call-ua",
               failure_callback=lambda obj: None, default_action={"remove": 1})
    ((_, _, _, kw),) = g.calls
    # the caller's option wins, the mirror's others apply, group-level and yum keys stay behind
    assert kw == {"user_agent": "call-ua", "timeout": 7}
    assert server.log[0]["headers"]["user-agent"] == "call-ua"


def test_urlread_and_urlopen_use_the_grabbers_methods(server, server2):
    server.defaults["status"] = 503
    g = RecordingGrabber()
    mg = MirrorGroup(g, [server.url, server2.url], default_action={"remove_master": 0, "increment_master": 0})
    assert mg.urlread(rel(2000, "rd"), limit=5000) == gen_bytes(2000, "rd")
    with mg.urlopen(rel(3000, "op")) as fo:
        assert fo.read() == gen_bytes(3000, "op")
    assert [(c[0], c[1], c[2]) for c in g.calls] == [
        ("urlread", f"{server.url}/gen/2000/rd", 5000),
        ("urlread", f"{server2.url}/gen/2000/rd", 5000),
        ("urlopen", f"{server.url}/gen/3000/op", None),
        ("urlopen", f"{server2.url}/gen/3000/op", None),
    ]


def test_duck_typed_grabber_without_opts(server, server2, tmp_path):
    server.defaults["status"] = 500
    duck = DuckGrabber()
    # "flavour" is no urlgrabber option: the duck's own keyword, passed on to it
    entry = {"mirror": server2.url, "kwargs": {"max_connections": 2, "private": False, "flavour": "quack"}}
    mg = MirrorGroup(duck, [server.url, entry])
    dest = str(tmp_path / "duck")
    assert mg.urlgrab(rel(1500, "duck"), dest) == dest
    assert_gen(dest, 1500, "duck")
    assert duck.calls == [
        (f"{server.url}/gen/1500/duck", dest, {}),
        (f"{server2.url}/gen/1500/duck", dest, {"max_connections": 2, "flavour": "quack"}),
    ]
    # a batch with it runs on the default grabber's options
    results = batch(mg, [(rel(500, "db"), tmp_path / "db")])
    assert all(r.ok for r in results)
    assert_gen(tmp_path / "db", 500, "db")


def test_per_mirror_grabbers_mixed_with_a_plain_one(server, server2, server3, tmp_path):
    """A plain URLGrabber mirror, then a subclass's, then a plain one again: each try
    uses its mirror's grabber, in order, and the hooks see every failure."""
    server.defaults["status"] = 500
    server2.defaults["status"] = 500
    sub = RecordingGrabber()
    seen = []
    mirrors = [{"mirror": server.url, "grabber": URLGrabber()},
               {"mirror": server2.url, "grabber": sub},
               server3.url]
    mg = MirrorGroup(URLGrabber(), mirrors, failure_callback=lambda obj: seen.append((obj.mirror, obj.tries)))
    dest = tmp_path / "mix"
    mg.urlgrab(rel(800, "mix"), str(dest))
    assert_gen(dest, 800, "mix")
    assert sub.urls() == [f"{server2.url}/gen/800/mix"]
    assert seen == [(server.url, 1), (server2.url, 2)]
    assert (server.requests, server2.requests, server3.requests) == (1, 1, 1)


def test_custom_grabber_attempts_update_timedhosts(make_server, tmp_path):
    bad, good = make_server(status=503), make_server()
    path = tmp_path / "timedhosts"
    mg = MirrorGroup(RecordingGrabber(timedhosts=str(path)), [bad.url, good.url])
    mg.urlgrab(rel(70_000, "th"), str(tmp_path / "th"))
    text = path.read_text()
    assert f"127.0.0.1:{bad.port}" in text and f"127.0.0.1:{good.port}" in text, text


# ---------------------------------------------------------------------------
# hooks a subclass overrides
# ---------------------------------------------------------------------------


class OscGroup(MirrorGroup):
    """osc's override: an absolute "relative" URL is used as it is, whatever the mirror."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.joined = []

    def _join_url(self, base_url, rel_url):
        self.joined.append((base_url, rel_url))
        if urllib.parse.urlsplit(rel_url).scheme:
            return rel_url
        return super()._join_url(base_url, rel_url)


@pytest.mark.parametrize("mode", ["blocking", "batch"])
def test_join_url_override_applies(mode, server, server2, tmp_path):
    mg = OscGroup(URLGrabber(), [server2.url])
    absolute = f"{server.url}/gen/900/osc"
    files = [(absolute, tmp_path / "osc"), (rel(700, "plain"), tmp_path / "plain")]
    if mode == "blocking":
        for r, d in files:
            mg.urlgrab(r, str(d))
    else:
        assert all(r.ok for r in batch(mg, files))
    assert_gen(tmp_path / "osc", 900, "osc")
    assert_gen(tmp_path / "plain", 700, "plain")
    assert server.by_path["/gen/900/osc"] == 1
    assert [e["path"] for e in server2.log] == ["/gen/700/plain"]
    assert (server2.url, absolute) in mg.joined


class HookedGroup(MirrorGroup):
    """Records the classic hooks as they are called."""

    def __init__(self, *args, last_first=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []
        self.last_first = last_first

    def _load_gr(self, gr):
        super()._load_gr(gr)
        self.gr = gr
        self.seen.append(("load", gr.func, gr.url, dict(gr.kw), [m["mirror"] for m in gr.mirrors]))

    def _get_mirror(self, gr):
        if self.last_first and gr.mirrors:
            gr._next = len(gr.mirrors) - 1  # e.g. a randomising override
        m = super()._get_mirror(gr)
        self.seen.append(("get", m["mirror"], gr._next))
        return m

    def _failure(self, gr, cb_obj):
        self.seen.append(("failure", cb_obj.mirror, cb_obj.url, cb_obj.relative_url, cb_obj.tries,
                          getattr(cb_obj.exception, "code", None)))
        super()._failure(gr, cb_obj)

    def increment_mirror(self, gr, action=None):
        self.seen.append(("increment", dict(action or {})))
        super().increment_mirror(gr, action)


@pytest.mark.parametrize("grabber_cls", [URLGrabber, RecordingGrabber])
def test_get_mirror_and_failure_overrides_are_called(grabber_cls, server, server2, tmp_path):
    server.defaults["status"] = 500
    mg = HookedGroup(grabber_cls(), [server.url, server2.url], default_action={"remove_master": 0})
    r = rel(600, "hk")
    dest = str(tmp_path / "hk")
    mg.urlgrab(r, dest)
    assert_gen(dest, 600, "hk")
    assert mg.seen == [
        ("load", "urlgrab", r, {"filename": dest}, [server.url, server2.url]),
        ("get", server.url, 0),
        ("failure", server.url, f"{server.url}/{r}", r, 1, 500),
        ("increment", {"remove_master": 0}),
        ("get", server2.url, 0),
    ]
    assert isinstance(mg.gr, GrabRequest)
    assert [u for u, _ in mg.gr.errors] == [f"{server.url}/{r}"]


def test_get_mirror_override_chooses_the_mirror(server, server2, tmp_path):
    mg = HookedGroup(URLGrabber(), [server.url, server2.url], last_first=True)
    for i in range(3):
        mg.urlgrab(rel(100, f"lf{i}"), str(tmp_path / f"lf{i}"))
    assert server.requests == 0
    assert server2.requests == 3


def test_failure_override_can_stop_the_download(server, server2, tmp_path):
    class Stop(MirrorGroup):
        def _failure(self, gr, cb_obj):
            raise URLGrabError(15, "stopped by _failure")

    server.defaults["status"] = 500
    mg = Stop(URLGrabber(), [server.url, server2.url])
    with pytest.raises(URLGrabError) as info:
        mg.urlgrab(rel(100, "st"), str(tmp_path / "st"))
    assert info.value.errno == 15
    assert server2.requests == 0
    assert not (tmp_path / "st").exists()


# ---------------------------------------------------------------------------
# mirrors, GrabRequest and increment_mirror
# ---------------------------------------------------------------------------


def test_mirrors_are_classic_dicts():
    entry = {"mirror": "http://b.example/", "kwargs": {"timeout": 5}}
    mg = MirrorGroup(URLGrabber(), ["http://a.example/", entry, b"http://c.example/"])
    assert mg.mirrors == [{"mirror": "http://a.example/"}, entry, {"mirror": b"http://c.example/"}]
    assert mg.mirrors[1] is entry
    assert "GrabRequest" in mirror_module.__all__
    assert {"MirrorGroup", "MGRandomStart", "MGRandomOrder"} <= set(mirror_module.__all__)


def _loaded(mg):
    gr = GrabRequest()
    gr.url = "x"
    mg._load_gr(gr)
    return gr


def test_increment_mirror_default_action():
    mg = MirrorGroup(URLGrabber(), ["http://a/", "http://b/", "http://c/"])
    a, b, c = mg.mirrors
    gr = _loaded(mg)
    mg.increment_mirror(gr, {})
    assert gr.mirrors == [b, c] and gr._next == 0   # remove (this download)
    assert mg.mirrors == [a, b, c] and mg._next == 1  # increment_master
    mg.increment_mirror(gr, {})  # b fails: the group's start was b, moves on again
    assert gr.mirrors == [c] and mg._next == 2


def test_increment_mirror_actions():
    mg = MirrorGroup(URLGrabber(), ["http://a/", "http://b/", "http://c/"])
    a, b, c = mg.mirrors
    gr = _loaded(mg)
    mg.increment_mirror(gr, {"remove": 0, "increment_master": 0})
    assert gr.mirrors == [a, b, c] and gr._next == 1  # increment (this download)
    assert mg._next == 0
    mg.increment_mirror(gr, {"remove": 0, "increment": 0})
    assert gr._next == 1  # nothing moves: same mirror again
    mg.increment_mirror(gr, {"remove_master": 1})
    assert mg.mirrors == [a, c]
    assert gr.mirrors == [a, c] and gr._next == 1
    mg.increment_mirror(gr, {"remove": 0})
    assert gr._next == 0  # wraps around


def test_remove_master_from_a_download_changes_mg_mirrors(server, server2, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"remove_master": 1})
    mg.urlgrab(rel(100, "rm"), str(tmp_path / "rm"))
    assert mg.mirrors == [{"mirror": server2.url}]
    assert mg._next == 0


def test_increment_master_moves_next(server, server2, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url])
    mg.urlgrab(rel(100, "im"), str(tmp_path / "im"))
    assert mg._next == 1
    assert len(mg.mirrors) == 2


def test_join_url_is_classic():
    mg = MirrorGroup(URLGrabber(), [])
    assert mg._join_url("http://h/p", "a/b") == "http://h/p/a/b"
    assert mg._join_url("http://h/p/", "a") == "http://h/p/a"
    assert mg._join_url("http://h", "a") == "http://h/a"
    assert mg._join_url("http://h/p?x=1#frag", "a") == "http://h/p/a?x=1#frag"
    assert mg._join_url(b"http://h/p", "a") == b"http://h/p/a"
    assert mg._join_url(b"http://h/p/", b"a") == b"http://h/p/a"


@pytest.mark.parametrize("base", ["http://h", "http://h/", "http://h:80", "https://h:8080/a/b",
                                  "https://h/a/b/", "ftp://u@h/x", "ftp://h//", "http://h/a//",
                                  "http://h/~x/-y_.z", "HTTP://H/p", "http://h/p#f", "http://h/p\t/q"])
@pytest.mark.parametrize("rel_url", ["", "/", "a", "/a", "//a", "a/b?c=1", "a#f", "/a?x#y", "a b", "\u00e4", "?q"])
def test_join_url_shortcut_for_plain_bases_agrees_with_splitting(base, rel_url):
    # a plain base (no query) is joined without urlsplit/urlunsplit: same answer
    scheme, netloc, path, query, fragid = urllib.parse.urlsplit(base)
    if path.endswith("/") and rel_url.startswith("/"):
        rel_url_ = rel_url[1:]
    else:
        rel_url_ = rel_url
    sep = "" if path.endswith("/") or rel_url_.startswith("/") else "/"
    want = urllib.parse.urlunsplit((scheme, netloc, path + sep + rel_url_, query, fragid))
    assert MirrorGroup(URLGrabber(), [])._join_url(base, rel_url) == want


def test_base_query_is_kept_on_the_wire(server, tmp_path):
    mg = MirrorGroup(URLGrabber(), [server.url + "/gen/400?token=abc"])
    mg.urlgrab("q", str(tmp_path / "q"))
    assert_gen(tmp_path / "q", 400, "q")
    (entry,) = server.log
    assert entry["path"] == "/gen/400/q"
    assert entry["query"] == {"token": "abc"}


# ---------------------------------------------------------------------------
# failures: errno 256 and failfunc
# ---------------------------------------------------------------------------


def test_no_more_mirrors_is_errno_256_with_errors(server, dead_url, tmp_path):
    server.defaults["status"] = 500
    mg = MirrorGroup(RecordingGrabber(), [dead_url, server.url])
    r = rel(100, "nm")
    with pytest.raises(URLGrabError) as info:
        mg.urlgrab(r, str(tmp_path / "nm"))
    err = info.value
    assert err.errno == 256
    assert [u for u, _ in err.errors] == [f"{dead_url}/{r}", f"{server.url}/{r}"]
    assert "500" in err.errors[1][1]


def test_get_mirror_with_nothing_left_raises_256():
    mg = MirrorGroup(URLGrabber(), ["http://a/"])
    gr = _loaded(mg)
    gr.errors = [("http://a/x", "boom")]
    gr.mirrors = []
    with pytest.raises(URLGrabError) as info:
        mg._get_mirror(gr)
    assert info.value.errno == 256
    assert info.value.errors == [("http://a/x", "boom")]


def test_failfunc_gets_the_final_error_in_blocking_mode(server, server2, tmp_path):
    server.defaults["status"] = 500
    server2.defaults["status"] = 404
    g = RecordingGrabber()
    got = []

    def failfunc(obj):
        got.append(obj)
        return "from failfunc"

    mg = MirrorGroup(g, [server.url, server2.url])
    r = rel(100, "ff")
    dest = str(tmp_path / "ff")
    assert mg.urlgrab(r, dest, failfunc=failfunc) == "from failfunc"
    (obj,) = got
    assert obj.exception.errno == 256
    assert obj.url == r and obj.filename == dest
    assert len(obj.exception.errors) == 2
    # classic pops failfunc: the grabber never saw it, each mirror failed normally
    assert all("failfunc" not in c[3] for c in g.calls) and len(g.calls) == 2


def test_fail_action_error_carries_errors(server, server2, tmp_path):
    server.defaults["status"] = 404
    mg = MirrorGroup(URLGrabber(), [server.url, server2.url], default_action={"fail": 1})
    with pytest.raises(URLGrabError) as info:
        mg.urlgrab(rel(100, "fa"), str(tmp_path / "fa"))
    assert info.value.code == 404
    assert [u for u, _ in info.value.errors] == [f"{server.url}/gen/100/fa"]
    assert server2.requests == 0


# ---------------------------------------------------------------------------
# yum's preference / private
# ---------------------------------------------------------------------------


def test_preference_and_private_kwargs_are_accepted_in_both_modes(server, tmp_path):
    mg = MirrorGroup(URLGrabber(), [{"mirror": server.url, "kwargs": {"preference": 80, "private": False,
                                                                      "max_connections": 2}}])
    mg.urlgrab(rel(100, "pb"), str(tmp_path / "pb"))
    assert all(r.ok for r in batch(mg, [(rel(100, "pq"), tmp_path / "pq")]))
    assert_gen(tmp_path / "pb", 100, "pb")
    assert_gen(tmp_path / "pq", 100, "pq")


def test_private_mirror_is_preferred(server, server2, tmp_path):
    private = {"mirror": server2.url, "kwargs": {"private": True, "preference": 100}}
    mg = MirrorGroup(URLGrabber(), [server.url, private])
    assert mg.mirrors[0] is private  # classic start order: a live private mirror first
    mg.urlgrab(rel(300, "pvb"), str(tmp_path / "pvb"))
    assert (server.requests, server2.requests) == (0, 1)
    # a batch prefers it even when the group's current mirror is the public one
    mg._next = 1
    names = [f"pv{i}" for i in range(6)]
    results = batch(mg, [(rel(300, n), tmp_path / n) for n in names], limit=1)
    assert all(r.ok for r in results)
    assert server.requests == 0
    assert server2.requests == 7


def test_top_level_private_key_still_counts(server, server2, tmp_path):
    mg = MirrorGroup(URLGrabber(), [server.url, {"mirror": server2.url, "private": True}])
    mg._next = mg.mirrors.index({"mirror": server.url})  # start at the public one
    results = batch(mg, [(rel(200, f"tp{i}"), tmp_path / f"tp{i}") for i in range(4)], limit=1)
    assert all(r.ok for r in results)
    assert (server.requests, server2.requests) == (0, 4)


# ---------------------------------------------------------------------------
# DEBUG log lines
# ---------------------------------------------------------------------------


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def debug_log(monkeypatch):
    logger = logging.getLogger("test_classic_mirror.debug")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    monkeypatch.setattr(mirror_module, "DEBUG", logger)
    yield handler
    logger.removeHandler(handler)


def test_debug_lines_are_classic_and_redacted(server, server2, tmp_path, debug_log):
    server.defaults["status"] = 500
    secret_base = f"http://user:secret@127.0.0.1:{server.port}"
    shown_base = f"http://user:***@127.0.0.1:{server.port}"
    mg = MirrorGroup(URLGrabber(), [secret_base, server2.url])
    r = rel(100, "dbg")
    mg.urlgrab(r, str(tmp_path / "dbg"))
    assert_gen(tmp_path / "dbg", 100, "dbg")
    lines = [rec.getMessage() for rec in debug_log.records]
    assert lines == [
        f"MIRROR: trying {r} -> {shown_base}/{r}",
        "MIRROR: failed",
        f"GR   mirrors: [{server2.url}] 0",
        f"MAIN mirrors: [{shown_base} {server2.url}] 1",
        f"MIRROR: trying {r} -> {server2.url}/{r}",
    ]
    assert [rec.msg for rec in debug_log.records] == [
        "MIRROR: trying %s -> %s", "MIRROR: failed", "GR   mirrors: [%s] %i", "MAIN mirrors: [%s] %i",
        "MIRROR: trying %s -> %s"]
    assert all(rec.levelno == logging.INFO for rec in debug_log.records)
    assert not any("secret" in line for line in lines)


def test_debug_off_logs_nothing(server, tmp_path, monkeypatch):
    handler = ListHandler()
    logger = logging.getLogger("test_classic_mirror.off")
    logger.addHandler(handler)
    monkeypatch.setattr(mirror_module, "DEBUG", None)
    try:
        MirrorGroup(URLGrabber(), [server.url]).urlgrab(rel(10, "off"), str(tmp_path / "off"))
    finally:
        logger.removeHandler(handler)
    assert handler.records == []
    assert_gen(tmp_path / "off", 10, "off")


# ---------------------------------------------------------------------------
# random start / order
# ---------------------------------------------------------------------------


def test_mg_random_order_shuffles_the_list_at_creation():
    urls = [f"http://m{i}/" for i in range(8)]
    random.seed(99)
    mg = MGRandomOrder(URLGrabber(), urls)
    expected = list(urls)
    random.seed(99)
    random.shuffle(expected)
    assert [m["mirror"] for m in mg.mirrors] == expected


def test_mg_random_start_picks_a_random_start():
    urls = [f"http://m{i}/" for i in range(8)]
    random.seed(5)
    mg = MGRandomStart(URLGrabber(), urls)
    random.seed(5)
    assert mg._next == random.randrange(8)
    gr = _loaded(mg)
    assert gr._next == mg._next
    assert [m["mirror"] for m in mg.mirrors] == urls
