"""Start-up: ``import urlgrabber.grabber, urlgrabber.mirror`` loads no heavy module
it does not need yet, and the public API still works after ``import urlgrabber``.

The imports run in fresh interpreters; speed itself is measured in bench/, never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent

# Loaded only when a call needs them (or never): each costs milliseconds at start-up.
LAZY = (
    "urllib.request", "http.client", "http", "email", "email.parser", "email.utils", "email.message",
    "ssl", "socket", "tempfile", "shutil", "hashlib", "logging", "argparse", "numbers", "signal",
    "datetime", "calendar", "copy", "random",
    "dataclasses", "inspect",  # BatchResult acts as a dataclass without them (_batchresult)
    "typing", "contextlib",  # annotations only (TYPE_CHECKING)
    "urllib.parse", "ipaddress", "re",  # on first use (_lazy)
    "threading", "functools", "enum",  # never: _thread, a dict cache, _named (~11 M instructions)
    "urlgrabber._timedhosts",  # with the first MirrorGroup that has a timedhosts file
)
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with its own (older) pycurl: python3-pycurl


def _env() -> dict[str, str]:
    """The environment for a subprocess that must import this checkout's urlgrabber."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _pycurl_dir(python: str = sys.executable) -> str | None:
    """The sys.path entry ``python`` imports pycurl from (None: it has no pycurl)."""
    code = ("import importlib.util as u, os; s = u.find_spec('pycurl'); o = s.origin;"
            " print(os.path.dirname(os.path.dirname(o)) if s.submodule_search_locations"
            " else os.path.dirname(o))")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    return proc.stdout.strip() if proc.returncode == 0 else None


def _new_modules(statement: str, python: str = sys.executable, after: str = "") -> set[str]:
    """The modules ``statement`` loads in a fresh ``python -S`` (no site: nothing preloaded),
    beyond those loaded by ``after`` run first in the same process."""
    code = textwrap.dedent(f"""
        import sys, json
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        {after}
        before = set(sys.modules)
        {statement}
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    proc = subprocess.run([python, "-S", "-c", code], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def _pythons() -> list[str]:
    """This interpreter, and Debian's when it is another one with a pycurl of its own (7.45
    imports neither dataclasses nor typing; PyPI's 7.49 imports both)."""
    pythons = [sys.executable]
    if (os.path.exists(SYSTEM_PYTHON) and os.path.realpath(SYSTEM_PYTHON) != os.path.realpath(sys.executable)
            and _pycurl_dir(SYSTEM_PYTHON)):
        pythons.append(SYSTEM_PYTHON)
    return pythons


@pytest.mark.parametrize("python", _pythons())
def test_import_loads_no_dataclasses_beyond_pycurl(python):
    """``dataclasses`` and ``inspect`` (~10 ms), ``typing`` (~5 ms) come only with pycurl,
    where it imports them (7.49's AsyncCurlMulti), never with urlgrabber: BatchResult is
    written out by hand, and typing's names serve annotations only."""
    ours = _new_modules("import urlgrabber.grabber, urlgrabber.mirror", python, after="import pycurl")
    assert "urlgrabber.mirror" in ours
    unwanted = {"dataclasses", "inspect", "typing", "contextlib", "urllib.parse", "ipaddress", "re"}
    assert sorted(ours & unwanted) == []


def test_lazy_module_and_pattern_load_on_first_use():
    """_lazy's stand-ins import (compile) on the first read of a name, then hold it."""
    code = textwrap.dedent("""
        import sys
        from urlgrabber import _lazy
        assert "wave" not in sys.modules
        wave = _lazy.Module("wave")
        assert "wave" not in sys.modules
        assert wave.open is sys.modules["wave"].open and "open" in vars(wave)
        try:
            wave.no_such_name
        except AttributeError:
            pass
        else:
            raise AssertionError("no AttributeError")
        try:
            wave.__wrapped__
        except AttributeError:
            pass
        else:
            raise AssertionError("a dunder was looked up in the module")
        p = _lazy.Pattern(r"(a+)b", 2)  # re.IGNORECASE
        assert p.match("AAb").group(1) == "AA" and p.sub("x", "zaab") == "zx"
        # with a home, the first read puts the module itself there: names read once per
        # download (_request's _curl) are then a module's, which the interpreter specialises
        home = {}
        home["_cs"] = stand_in = _lazy.Module("colorsys", home, "_cs")
        assert "colorsys" not in sys.modules and home["_cs"] is stand_in
        assert stand_in.rgb_to_hsv is sys.modules["colorsys"].rgb_to_hsv
        assert home["_cs"] is sys.modules["colorsys"]
        import os, tempfile
        from urlgrabber import _batch, _calls, _request, grabber
        assert type(_request._curl) is _lazy.Module and type(_calls._engine) is _lazy.Module
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "src")
            with open(src, "wb") as f:
                f.write(b"x")
            grabber.urlgrab("file://" + src, os.path.join(d, "dest"), copy_local=1)
            grabber.parallel_begin()
            grabber.urlgrab("file://" + src, os.path.join(d, "dest2"), copy_local=1, async_=("k", 1))
            assert all(r.ok for r in grabber.parallel_end())
        for module, name in ((_request, "_curl"), (_request, "_transfer"), (_calls, "_engine"),
                             (_batch, "_engine")):
            assert getattr(module, name) is sys.modules["urlgrabber." + name], (module, name)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_batch_result_acts_as_a_dataclass():
    """BatchResult is written out by hand, yet ``dataclasses`` treats it as one of its
    own (fields, asdict, astuple, replace), with a dataclass's init, repr, == and pickle."""
    code = textwrap.dedent("""
        import pickle, sys
        import urlgrabber
        from urlgrabber.grabber import BatchResult
        import urlgrabber._batch
        assert BatchResult is urlgrabber.BatchResult is urlgrabber._batch.BatchResult
        r = BatchResult("http://h/f", "/tmp/f", None, 3, 0.5)
        assert r.ok and r.mirror is None and r.attempts == 0
        assert repr(r) == ("BatchResult(url='http://h/f', filename='/tmp/f', exception=None, size=3, "
                           "seconds=0.5, mirror=None, attempts=0)"), repr(r)
        assert r == BatchResult(url="http://h/f", filename="/tmp/f", exception=None, size=3, seconds=0.5)
        assert r != BatchResult("http://h/f", "/tmp/f", None, 3, 0.5, attempts=1) and r != ("http://h/f",)
        assert pickle.loads(pickle.dumps(r)) == r
        try:
            hash(r)
        except TypeError:
            pass
        else:
            raise AssertionError("hashable, as a dataclass with eq is not")
        bad = BatchResult("u", None, OSError("x"), 0, 0.1, mirror="http://m/", attempts=2)
        assert not bad.ok and bad.mirror == "http://m/" and bad.attempts == 2

        import dataclasses
        assert dataclasses.is_dataclass(BatchResult) and dataclasses.is_dataclass(r)
        names = [f.name for f in dataclasses.fields(BatchResult)]
        assert names == ["url", "filename", "exception", "size", "seconds", "mirror", "attempts"], names
        assert [f.name for f in dataclasses.fields(r)] == names
        assert dataclasses.asdict(r) == {"url": "http://h/f", "filename": "/tmp/f", "exception": None,
                                         "size": 3, "seconds": 0.5, "mirror": None, "attempts": 0}
        assert dataclasses.astuple(bad)[-2:] == ("http://m/", 2)
        r2 = dataclasses.replace(r, attempts=2)
        assert type(r2) is BatchResult and r2.attempts == 2 and r2.url == r.url and r2 != r
        assert list(BatchResult.__annotations__) == names
        class Mine(BatchResult):
            pass
        assert repr(Mine("u", None, None, 1, 0.5)).startswith("Mine(url='u', ")
        ns = {}
        exec("from urlgrabber.grabber import *", ns)
        assert ns["BatchResult"] is BatchResult
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("python", _pythons())
def test_a_batch_loads_no_dataclasses_beyond_pycurl(python, tmp_path):
    """A process's first batch, to its results, imports no ``dataclasses`` or ``inspect``
    (~53 M instructions on Debian's python3, whose pycurl imports neither), and no
    progress or copy when no meter is shared."""
    src = tmp_path / "src"
    src.write_bytes(b"x" * 100)
    batch = (f"import urlgrabber; urlgrabber.parallel_begin(); "
             f"urlgrabber.urlgrab({'file://' + str(src)!r}, {str(tmp_path / 'dst')!r}, async_=True, copy_local=1); "
             f"assert [r.ok for r in urlgrabber.parallel_end()] == [True]")
    ours = _new_modules(batch, python, after="import pycurl")
    assert "urlgrabber._batchresult" in ours
    assert sorted(ours & {"dataclasses", "inspect", "typing", "contextlib", "urlgrabber.progress", "copy",
                          "shutil", "threading"}) == []
    assert (tmp_path / "dst").read_bytes() == b"x" * 100


def test_import_loads_no_heavy_module():
    floor = _new_modules("import pycurl")  # whatever pycurl itself needs (7.49: dataclasses...)
    ours = _new_modules("import urlgrabber.grabber, urlgrabber.mirror")
    assert "urlgrabber.mirror" in ours
    assert sorted((ours - floor) & set(LAZY)) == []


# the transport: loaded with the first transfer, not with the API
TRANSPORT = {"pycurl", "pycurl._pycurl", "urlgrabber._engine", "urlgrabber._curl", "urlgrabber._transfer",
             "urlgrabber._segments", "urlgrabber._scheduler"}


@pytest.mark.parametrize("python", _pythons())
def test_libcurl_is_loaded_with_the_first_transfer_not_the_import(python, tmp_path):
    """A program that imports urlgrabber and never downloads (most of yum's commands)
    pays for no libcurl: pycurl and the engine load with the first transfer.  Setting
    up grabbers and mirror groups, checking options and their errors need neither."""
    src = tmp_path / "src"
    src.write_bytes(b"z" * 10)
    out = _run(f"""
        import sys
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        transport = {sorted(TRANSPORT)!r}
        import urlgrabber, urlgrabber.grabber, urlgrabber.mirror, urlgrabber.progress
        from urlgrabber.grabber import URLGrabber, URLGrabError
        from urlgrabber.mirror import MirrorGroup
        assert "collections" not in sys.modules  # (3-4 ms; deque comes from _collections)
        g = URLGrabber(retry=3, timeout=30, ip_resolve="ipv4", http_headers=(("X-A", "1"),))
        mg = MirrorGroup(g, ["http://a.example/", {{"mirror": "http://b.example/"}}])
        try:
            URLGrabber(ip_resolve="ipv5")
        except URLGrabError as e:
            assert e.errno == 1, e
        urlgrabber.parallel_begin()
        assert urlgrabber.parallel_end() == []
        assert [m for m in transport if m in sys.modules] == [], [m for m in transport if m in sys.modules]
        assert g.urlread({'file://' + str(src)!r}) == b"z" * 10
        print(sorted(m for m in ("pycurl", "pycurl._pycurl", "urlgrabber._engine") if m in sys.modules))
    """, python)
    assert "'urlgrabber._engine'" in out and "pycurl" in out


@pytest.mark.parametrize("python", _pythons())
def test_threads_whose_first_transfers_start_together_share_one_libcurl(python, tmp_path):
    """Four threads released at once, each with its first download of the process: they
    load the engine and pycurl once between them (the import system's locks) and each
    gets its file."""
    src = tmp_path / "src"
    src.write_bytes(b"t" * 1000)
    out = _run(f"""
        import sys, threading
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        import urlgrabber
        gate, got = threading.Barrier(4), []
        def first():
            gate.wait(10)
            got.append(urlgrabber.urlread({'file://' + str(src)!r}))
        threads = [threading.Thread(target=first) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        from urlgrabber import _engine, _libcurl, _request
        assert got == [b"t" * 1000] * 4, [len(g) for g in got]
        assert _engine.pycurl is _libcurl.pycurl is _request._curl.pycurl
        print("ok", sum(1 for m in sys.modules if m in ("pycurl", "pycurl._pycurl")))
    """, python)
    assert out == "ok 1"


@pytest.mark.parametrize("python", _pythons())
def test_classic_grabber_pycurl_name_still_imports(python):
    """yum-rhn-plugin's ``from urlgrabber.grabber import pycurl``: the very module urlgrabber
    uses, loaded then; other unknown names are still an AttributeError."""
    out = _run(f"""
        import sys
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        from urlgrabber.grabber import pycurl
        from urlgrabber import _libcurl, grabber
        assert pycurl is _libcurl.pycurl is grabber.pycurl and pycurl.Curl
        try:
            grabber.no_such_name
        except AttributeError as e:
            print("AttributeError", "no_such_name" in str(e))
    """, python)
    assert out == "AttributeError True"


def test_a_missing_pycurl_still_fails_the_import():
    """Classic's grabber imported pycurl at the top: without it, ``import urlgrabber``
    raises ImportError, as before, not the first download."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "try:\n    import urlgrabber\nexcept ImportError as e:\n    print(type(e).__name__, e.name)")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                          timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ModuleNotFoundError pycurl"


# what pycurl 7.46+'s package __init__ brings with its asyncio helper (AsyncCurlMulti)
ASYNC_HELPER = {"pycurl.async_multi", "dataclasses", "inspect", "typing", "ast", "dis", "tokenize"}


@pytest.mark.parametrize("python", _pythons())
def test_import_skips_pycurls_asyncio_helper(python):
    """Where pycurl is a package, urlgrabber loads its C module alone: no AsyncCurlMulti
    and what that imports (~40 ms of start-up and exit with PyPI's 7.49)."""
    floor = _new_modules("import pycurl", python)
    ours = _new_modules("import urlgrabber.grabber, urlgrabber.mirror; urlgrabber.grabber.pycurl", python)
    assert sorted(ours & ASYNC_HELPER) == []
    if "pycurl._pycurl" in floor:  # a package: its C module, not the package
        assert "pycurl._pycurl" in ours and "pycurl" not in ours
    else:  # one C module (7.45, Debian's): imported as it is
        assert "pycurl" in ours
    # either way the import system's own modules do: no importlib package, no warnings
    assert sorted(ours & {"importlib", "importlib.machinery", "warnings"}) == []


def _run(code: str, python: str = sys.executable) -> str:
    proc = subprocess.run([python, "-S", "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("python", _pythons())
def test_a_programs_own_import_pycurl_gets_the_whole_package(python, tmp_path):
    """After urlgrabber, ``import pycurl`` is the whole package (AsyncCurlMulti and all) with
    the very classes urlgrabber uses, and both download."""
    src = tmp_path / "src"
    src.write_bytes(b"y" * 50)
    out = _run(f"""
        import sys, io
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        import urlgrabber.grabber
        from urlgrabber import _libcurl
        assert urlgrabber.grabber.urlread({'file://' + str(src)!r}) == b"y" * 50  # (loads libcurl)
        import pycurl
        assert pycurl.Curl is _libcurl.pycurl.Curl and pycurl.error is _libcurl.pycurl.error
        assert pycurl.CurlMulti is _libcurl.pycurl.CurlMulti
        if "pycurl._pycurl" in sys.modules:
            assert _libcurl.pycurl is sys.modules["pycurl._pycurl"] is pycurl._pycurl
            assert _libcurl.pycurl.__package__ == "pycurl", _libcurl.pycurl.__package__
            import pycurl.async_multi
            assert pycurl.AsyncCurlMulti is pycurl.async_multi.AsyncCurlMulti
        assert urlgrabber.grabber.urlread({'file://' + str(src)!r}) == b"y" * 50
        c = pycurl.Curl(); buf = io.BytesIO()
        c.setopt(pycurl.URL, {'file://' + str(src)!r}); c.setopt(pycurl.WRITEDATA, buf); c.perform()
        assert buf.getvalue() == b"y" * 50
        try:
            c.setopt(pycurl.URL, "nosuch://x"); c.perform()
        except _libcurl.pycurl.error as e:
            print("caught", e.args[0])
    """, python)
    assert out == "caught 1"  # CURLE_UNSUPPORTED_PROTOCOL, through urlgrabber's name for the class


@pytest.mark.parametrize("python", _pythons())
def test_a_pycurl_imported_first_is_the_one_used(python):
    out = _run(f"""
        import sys
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        import pycurl
        from urlgrabber import _libcurl
        assert _libcurl.pycurl is pycurl
        print("ok")
    """, python)
    assert out == "ok"


@pytest.mark.parametrize("blocked", ["pycurl", "pycurl._pycurl"])
def test_a_blocked_pycurl_import_stays_blocked(blocked):
    """``sys.modules[name] = None`` (how a program hides a module) makes importing
    urlgrabber fail with ImportError where ``import pycurl`` fails so (blocking the
    C module of a pycurl that is one module blocks nothing), and the block stays."""
    def attempt(statement: str) -> str:
        return _run(f"""
            import sys
            sys.path[:0] = {[str(ROOT), _pycurl_dir()]!r}
            sys.modules[{blocked!r}] = None
            try:
                {statement}
            except ImportError:
                print("ImportError", sys.modules[{blocked!r}])
            else:
                print("imported")
        """)
    plain = attempt("import pycurl")
    assert attempt("import urlgrabber") == plain
    if blocked == "pycurl":
        assert plain == "ImportError None"


@pytest.mark.parametrize("python", _pythons())
def test_a_thread_importing_pycurl_meanwhile_gets_the_same_classes(python):
    """Another thread's ``import pycurl`` while urlgrabber loads the C module waits for it
    (the import system's lock for that module), so there is one pycurl.error, not two:
    the C module's init, run twice, would make a second class. The other thread is started
    from inside that init (its call to collections.namedtuple) and given half a second."""
    out = _run(f"""
        import sys, threading, collections
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        real, box, started = collections.namedtuple, {{}}, threading.Event()
        def other():
            started.set()
            import pycurl
            box["pycurl"] = pycurl
        threads = []
        def namedtuple(*args, **kwargs):
            if not threads:  # the first call: inside the C module's init
                threads.append(threading.Thread(target=other))
                threads[0].start()
                assert started.wait(10)
                threads[0].join(0.5)  # (unguarded, the other import ran the init again by now)
            return real(*args, **kwargs)
        collections.namedtuple = namedtuple
        from urlgrabber import _libcurl
        _libcurl.pycurl  # (loaded on first use)
        collections.namedtuple = real
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        import pycurl
        assert box.get("pycurl", pycurl) is pycurl
        assert _libcurl.pycurl.error is pycurl.error and _libcurl.pycurl.Curl is pycurl.Curl
        c = pycurl.Curl()
        c.setopt(pycurl.URL, "nosuch://x")
        try:
            c.perform()
        except _libcurl.pycurl.error as e:
            print("caught", e.args[0], bool(threads))
    """, python)
    assert out.startswith("caught 1 ")
    if "pycurl._pycurl" in _new_modules("import pycurl", python):
        assert out == "caught 1 True"  # the race was staged (7.49's init makes a namedtuple)


def test_other_pycurl_layouts_take_the_normal_import(tmp_path):
    """A single module (pycurl 7.45's layout), a package whose ``_pycurl`` is no C module,
    and a namespace: the lean load declines and the normal import decides, leaving no
    ``pycurl._pycurl`` behind."""
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "pycurl.py").write_text("MARK = 'single'\n")
    pure = tmp_path / "pure" / "pycurl"
    pure.mkdir(parents=True)
    (pure / "__init__.py").write_text("MARK = 'pure'\n")
    (pure / "_pycurl.py").write_text("Curl = CurlMulti = error = version_info = None\n")
    (tmp_path / "namespace" / "pycurl").mkdir(parents=True)
    for layout, mark in (("single", "single"), ("pure", "pure"), ("namespace", None)):
        out = _run(f"""
            import sys, importlib.util
            sys.path.insert(0, {str(tmp_path / layout)!r})  # (no other pycurl on the path)
            spec = importlib.util.spec_from_file_location("lean", {str(ROOT / "urlgrabber" / "_libcurl.py")!r})
            lean = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(lean)
            assert lean.pycurl is sys.modules["pycurl"]
            assert lean._c_module() is None and "pycurl._pycurl" not in sys.modules
            print(getattr(lean.pycurl, "MARK", None))
        """)
        assert out == str(mark), layout



def test_import_urlgrabber_alone_loads_no_heavy_module():
    floor = _new_modules("import pycurl")
    assert sorted((_new_modules("import urlgrabber") - floor) & set(LAZY)) == []


def test_public_api_after_import_urlgrabber_alone(tmp_path):
    """A fresh process that imports only ``urlgrabber`` (and then the classic
    submodules by name) downloads, reads, streams, batches and mirrors."""
    (tmp_path / "m1").mkdir()
    (tmp_path / "m2").mkdir()
    (tmp_path / "m2" / "f.txt").write_bytes(b"mirrored\n")
    src = tmp_path / "a b%.txt"
    src.write_bytes(b"alpha\nbeta\n")
    code = textwrap.dedent(f"""
        import sys
        import urlgrabber

        tmp = {str(tmp_path)!r}
        src = {str(src)!r}
        url = {"file://" + urllib.request.pathname2url(str(src))!r}
        preloaded = "email.parser" in sys.modules  # by the interpreter's site, say
        assert urlgrabber.urlgrab(url, tmp + "/copy.txt") == src  # classic: no copy of a local file
        assert urlgrabber.urlgrab(url, tmp + "/copy.txt", copy_local=1) == tmp + "/copy.txt"
        assert open(tmp + "/copy.txt", "rb").read() == b"alpha\\nbeta\\n"
        assert urlgrabber.urlread(src) == b"alpha\\nbeta\\n"  # a plain path
        fo = urlgrabber.urlopen(url)
        assert fo.readline() == b"alpha\\n" and fo.read() == b"beta\\n"
        assert preloaded or "email.parser" not in sys.modules  # nobody asked for the headers yet
        assert fo.info()["Content-Length"] in (None, "11")
        assert "email.parser" in sys.modules
        fo.close()
        g = urlgrabber.URLGrabber(retry=2)
        assert g.urlread(url, limit=11) == b"alpha\\nbeta\\n"

        urlgrabber.parallel_begin()
        urlgrabber.urlgrab(url, tmp + "/batch.txt", async_=True, copy_local=1)
        results = urlgrabber.parallel_end()
        assert [r.ok for r in results] == [True], results
        assert isinstance(results[0], urlgrabber.BatchResult)

        try:
            urlgrabber.urlread(tmp + "/missing")
        except urlgrabber.URLGrabError as e:
            assert e.errno == 2
        else:
            raise AssertionError("no URLGrabError")

        from urlgrabber.mirror import MGRandomOrder, MirrorGroup
        from urlgrabber.progress import TextMeter, TextMultiFileMeter
        mirrors = ["file://" + tmp + "/m1/", "file://" + tmp + "/m2/"]
        mg = MirrorGroup(urlgrabber.grabber.default_grabber, mirrors)
        assert mg.urlread("f.txt") == b"mirrored\\n"
        assert MGRandomOrder(g, mirrors).urlgrab("f.txt", tmp + "/m.txt", copy_local=1) == tmp + "/m.txt"
        assert open(tmp + "/m.txt", "rb").read() == b"mirrored\\n"
        TextMeter, TextMultiFileMeter
        for name in urlgrabber.__all__:
            assert hasattr(urlgrabber, name), name
        for name in urlgrabber.grabber.__all__:
            assert hasattr(urlgrabber.grabber, name), name
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# Names the oldest pycurl we support lacks: 7.45.2, Debian 12's python3-pycurl
# (pycurl 7.45.3 added the ``*_T`` size infos; RETRY_AFTER and CONN_ID are newer).
_NEWER_PYCURL_NAMES = ("SIZE_DOWNLOAD_T", "CONTENT_LENGTH_DOWNLOAD_T", "RETRY_AFTER", "CONN_ID")


def _batch_runs() -> list:
    runs = [pytest.param(sys.executable, (), id="this-pycurl"),
            pytest.param(sys.executable, _NEWER_PYCURL_NAMES, id="as-pycurl-7.45.2")]
    if len(_pythons()) > 1:
        runs.append(pytest.param(SYSTEM_PYTHON, (), id="system-python"))
    return runs


@pytest.mark.parametrize("python, hide", _batch_runs())
def test_long_batch_with_an_older_pycurl(python, hide, make_server, tmp_path):
    """A batch that outlives the engine's stall and slow-tail checks (every 0.25 s)
    completes with an older pycurl: the checks read libcurl's sizes under the names
    that pycurl has (7.45.2 has only the double-valued ones)."""
    from server import gen_bytes

    slow = make_server(bw=200_000)  # 600 KB: 3 s here alone; raced on the fast mirror
    fast = make_server()
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = {[str(ROOT), _pycurl_dir(python)]!r}
        import pycurl
        for name in {hide!r}:
            if hasattr(pycurl, name):
                delattr(pycurl, name)  # as an older pycurl: no such name
        import urlgrabber
        from urlgrabber.grabber import URLGrabber
        from urlgrabber.mirror import MirrorGroup
        tmp, slow, fast = {str(tmp_path)!r}, {slow.url!r}, {fast.url!r}
        g = URLGrabber(timeout=30)
        mg = MirrorGroup(g, [{{"mirror": slow + "/", "kwargs": {{"max_connections": 2}}}},
                             {{"mirror": fast + "/", "kwargs": {{"max_connections": 2}}}}])
        urlgrabber.parallel_begin(4)
        mg.urlgrab("gen/600000/big", tmp + "/big", async_=True)
        for i in range(3):
            g.urlgrab(slow + "/gen/100000/s%d" % i, tmp + "/s%d" % i, async_=True)
        results = urlgrabber.parallel_end()
        assert [r.ok for r in results] == [True] * 4, results
        print("ok")
    """)
    proc = subprocess.run([python, "-S", "-c", code], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert (tmp_path / "big").read_bytes() == gen_bytes(600_000, "big")
    for i in range(3):
        assert (tmp_path / f"s{i}").read_bytes() == gen_bytes(100_000, f"s{i}")
    # the slow tail was raced on the fast mirror: the size checks ran meanwhile
    assert [e["range"] for e in fast.log if e["path"] == "/gen/600000/big"] != [], fast.log
