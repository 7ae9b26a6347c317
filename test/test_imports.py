"""Start-up: ``import urlgrabber.grabber, urlgrabber.mirror`` loads no heavy module
it does not need yet, and the public API still works after ``import urlgrabber``.

The imports run in fresh interpreters; speed itself is measured in bench/, never here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from urlgrabber import BatchResult
from urlgrabber._calls import pathname2url, url2pathname

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent

# Loaded only when a call needs them (or never): each costs milliseconds at start-up.
LAZY = (
    "urllib.request", "http.client", "http", "email", "email.parser", "email.utils", "email.message",
    "ssl", "socket", "tempfile", "shutil", "hashlib", "logging", "argparse", "numbers", "signal",
    "dataclasses", "inspect", "datetime", "calendar",
)


def _env() -> dict[str, str]:
    """The environment for a subprocess that must import this checkout's urlgrabber."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _pycurl_dir() -> str:
    """The sys.path entry pycurl is imported from."""
    import pycurl

    here = os.path.dirname(pycurl.__file__)
    return os.path.dirname(here) if os.path.basename(pycurl.__file__).startswith("__init__.") else here


def _new_modules(statement: str) -> set[str]:
    """The modules ``statement`` loads in a fresh ``python -S`` (no site: nothing preloaded)."""
    code = textwrap.dedent(f"""
        import sys, json
        sys.path[:0] = {[str(ROOT), _pycurl_dir()]!r}
        before = set(sys.modules)
        {statement}
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def test_import_loads_no_heavy_module():
    floor = _new_modules("import pycurl")  # whatever pycurl itself needs (7.49: dataclasses...)
    ours = _new_modules("import urlgrabber.grabber, urlgrabber.mirror")
    assert "pycurl" in ours and "urlgrabber.mirror" in ours
    assert sorted((ours - floor) & set(LAZY)) == []


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


# -- the local replacements equal what they replace ---------------------------

PATHS = [
    "/tmp/plain.txt", "/tmp/a b/c d", "/tmp/100%/x", "/tmp/q?x#y;z=1&w", "/tmp/~user/file",
    "//two/slashes", "/tmp/ünïcødé/日本.txt", "/tmp/emoji-\U0001f600", "/tmp/'quote\"s'",
    "relative/path", "", "/", "/tmp/+plus,comma:colon@at!$", "/tmp/tab\tnewline\n",
]


@pytest.mark.skipif(os.name == "nt", reason="the stdlib's own functions there")
@pytest.mark.parametrize("path", PATHS)
def test_pathname2url_as_urllib_request(path):
    assert pathname2url(path) == urllib.request.pathname2url(path)
    url = urllib.request.pathname2url(path)
    assert url2pathname(url) == urllib.request.url2pathname(url) == path


@pytest.mark.skipif(os.name == "nt", reason="the stdlib's own functions there")
@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 decodes with the filesystem encoding")
@pytest.mark.parametrize("url", ["/tmp/%FF%FE", "/tmp/%zz", "/tmp/%", "/tmp/%C3%A9", "/a%2Fb", "//host/x"])
def test_url2pathname_odd_escapes_as_urllib_request(url):
    assert url2pathname(url) == urllib.request.url2pathname(url)


@pytest.mark.skipif(os.name == "nt", reason="the stdlib's own functions there")
def test_pathname2url_lone_surrogate_fails_alike():
    path = "/tmp/\udcff"
    with pytest.raises(UnicodeEncodeError):
        urllib.request.pathname2url(path)
    with pytest.raises(UnicodeEncodeError):
        pathname2url(path)


@dataclasses.dataclass
class _Reference:
    """What BatchResult was: a plain dataclass with these fields."""

    url: str
    filename: str | None
    exception: BaseException | None
    size: int
    seconds: float


def test_batch_result_behaves_as_the_dataclass_it_was():
    err = ValueError("x")
    ours = BatchResult("http://h/f", "/tmp/f", err, 12, 0.5)
    ref = _Reference("http://h/f", "/tmp/f", err, 12, 0.5)
    assert repr(ours) == repr(ref).replace("_Reference", "BatchResult")
    assert ours == BatchResult(url="http://h/f", filename="/tmp/f", exception=err, size=12, seconds=0.5)
    assert ours != BatchResult("http://h/f", "/tmp/f", err, 13, 0.5)
    assert ours != ref and ours != ("http://h/f", "/tmp/f", err, 12, 0.5)
    assert BatchResult.__hash__ is None and _Reference.__hash__ is None
    assert BatchResult.__match_args__ == _Reference.__match_args__
    assert dataclasses.is_dataclass(ours) and dataclasses.is_dataclass(BatchResult)
    assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(ref)]
    ok, ok_ref = BatchResult("u", "f", None, 1, 2.0), _Reference("u", "f", None, 1, 2.0)
    assert dataclasses.asdict(ok) == dataclasses.asdict(ok_ref)  # (asdict deep-copies an exception)
    assert dataclasses.astuple(ok) == dataclasses.astuple(ok_ref)
    assert dataclasses.replace(ours, size=1) == BatchResult("http://h/f", "/tmp/f", err, 1, 0.5)
    assert not ours.ok and BatchResult("u", "f", None, 0, 0.0).ok
    with pytest.raises(TypeError):
        BatchResult("u", "f", None, 0)  # type: ignore[call-arg]
