"""What keeps a large batch cheap must not change what a caller sees.

* A finished batch leaves no reference cycles: its requests, attempts and
  sinks are freed as soon as the results are dropped, not by the cyclic
  garbage collector (which would also have to walk them while the batch runs).
* Queued calls with the same plain keywords share one options copy; any
  change to a grabber's options, or a per-call callback, gives later calls
  their own.
* A download goes to an unnamed temporary file where the system has them,
  linked at its destination when complete (no name to look up or rename).
* A pooled curl handle keeps one writer for its direct attempts (no setopt per
  file), and each attempt's bytes still go to that attempt's own file.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import subprocess
import sys

import pytest
from util import TEMP_KINDS, gen_bytes, unnamed_files, use_temp_kind

import urlgrabber
from urlgrabber import _sinks, grabber
from urlgrabber._request import Request
from urlgrabber._transfer import Transfer
from urlgrabber.grabber import URLGrabber, URLGrabError
from urlgrabber.mirror import MirrorGroup


def _url_of(o: Request | Transfer) -> str:
    return o.url if isinstance(o, Request) else o.binding.url


def _cyclic_garbage(tag: str) -> list[str]:
    """This test's requests and attempts (``tag`` in their URLs) that only the cyclic
    collector could free now (an earlier test's may be freed meanwhile, such as one
    held by a ``pytest.raises`` traceback: those are not this test's)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = [type(o).__name__ for o in gc.garbage
                 if isinstance(o, (Request, Transfer)) and tag in _url_of(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


@pytest.fixture
def no_collector():
    """The cyclic collector off, and nothing cyclic left over from before."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_finished_batch_is_freed_without_the_cyclic_collector(no_collector, server, server2, tmp_path):
    g = URLGrabber(retry=2)
    mg = MirrorGroup(g, [server.url + "/", server2.url + "/"])
    urlgrabber.parallel_begin()
    for i in range(10):
        g.urlgrab(f"{server.url}/gen/2000/lean-p{i}", str(tmp_path / f"p{i}"), async_=True)
        mg.urlgrab(f"gen/3000/lean-m{i}", str(tmp_path / f"m{i}"), async_=True)
    results = urlgrabber.parallel_end()
    assert all(r.ok for r in results) and len(results) == 20
    del results
    assert _cyclic_garbage("lean-") == []


def test_blocking_calls_leave_no_cycles(no_collector, server, tmp_path):
    g = URLGrabber()
    g.urlgrab(f"{server.url}/gen/1000/lean-b", str(tmp_path / "b"))
    assert g.urlread(f"{server.url}/gen/500/lean-r") == g.urlread(f"{server.url}/gen/500/lean-r")
    fo = g.urlopen(f"{server.url}/gen/700/lean-o")
    assert len(fo.read()) == 700 and fo.http_code == 200
    fo.close()
    del fo
    assert _cyclic_garbage("lean-") == []


def _agents(tmp_path, names):
    return [json.loads((tmp_path / n).read_text())["user-agent"] for n in names]


def test_a_changed_option_reaches_the_calls_after_it(server, tmp_path):
    """Calls queued with the same keywords share options only until the grabber's change."""
    g = URLGrabber(user_agent="first/1")
    url = f"{server.url}/echo/headers"
    urlgrabber.parallel_begin()
    g.urlgrab(url, str(tmp_path / "a"), async_=("k", 2))
    g.urlgrab(url, str(tmp_path / "b"), async_=("k", 2))
    g.opts.user_agent = "second/2"
    g.urlgrab(url, str(tmp_path / "c"), async_=("k", 2))
    grabber.set_user_agent("third/3")  # the module helper changes default_grabber's options
    grabber.urlgrab(url, str(tmp_path / "d"), async_=("k", 2))
    g.urlgrab(url, str(tmp_path / "e"), async_=("k", 2), user_agent="fourth/4")
    g.urlgrab(url, str(tmp_path / "f"), async_=("k", 2))
    try:
        assert all(r.ok for r in urlgrabber.parallel_end())
    finally:
        grabber.set_user_agent(grabber._DEFAULTS["user_agent"])
    assert _agents(tmp_path, "abcdef") == ["first/1", "first/1", "second/2", "third/3", "fourth/4", "second/2"]


def test_calls_with_callbacks_keep_their_own_arguments(server, tmp_path):
    """A per-call callback (yum's checkfunc with the package as argument) is never
    mixed up with another call's."""
    seen = []

    def check(obj, name):
        seen.append((name, obj.filename))

    g = URLGrabber()
    urlgrabber.parallel_begin()
    for i in range(4):
        g.urlgrab(f"{server.url}/gen/100/c{i}", str(tmp_path / f"c{i}"), async_=True,
                  checkfunc=(check, (f"pkg{i}",), {}))
    assert all(r.ok for r in urlgrabber.parallel_end())
    assert sorted(seen) == [(f"pkg{i}", str(tmp_path / f"c{i}")) for i in range(4)]


def test_a_shared_copy_is_not_handed_to_a_custom_url_parser(server, tmp_path):
    """A URLParser of the caller's own may change the options it is given: each call
    gets a copy of its own then."""
    given = []

    class Parser(grabber.URLParser):
        def parse(self, url, opts):
            given.append(opts)
            opts.text = url  # a change that must stay with this call
            return super().parse(url, opts)

    g = URLGrabber(urlparser=Parser())
    urlgrabber.parallel_begin()
    for i in range(3):
        g.urlgrab(f"{server.url}/gen/100/u{i}", str(tmp_path / f"u{i}"), async_=True)
    assert all(r.ok for r in urlgrabber.parallel_end())
    assert len({id(o) for o in given}) == 3
    assert [o.text for o in given] == [f"{server.url}/gen/100/u{i}" for i in range(3)]



# ---------------------------------------------------------------------------
# Unnamed temporary files (O_TMPFILE): no name to look up or rename per file


class _Looker:
    """A progress meter that looks at the destination's directory mid-download."""

    def __init__(self, directory):
        self.directory = directory
        self.seen = None

    def start(self, *args, **kwargs):
        pass

    def update(self, amount, now=None):
        if self.seen is None and amount > 20000:
            self.seen = (sorted(os.listdir(self.directory)), unnamed_files(os.getpid(), self.directory))

    def end(self, *args, **kwargs):
        pass


def test_an_unnamed_download_is_invisible_until_it_is_complete(server, tmp_path, monkeypatch):
    use_temp_kind(monkeypatch, "unnamed", tmp_path)
    (tmp_path / "other").write_bytes(b"x")
    looker = _Looker(tmp_path)
    dest = tmp_path / "pkg.rpm"
    URLGrabber(progress_obj=looker).urlgrab(f"{server.url}/gen/200000/pkg?bw=400000", str(dest))
    names, unnamed = looker.seen
    assert names == ["other"] and len(unnamed) == 1
    assert dest.read_bytes() == gen_bytes(200000, "pkg")
    assert os.stat(dest).st_mtime == 1577836800.0  # the server's Last-Modified
    assert sorted(os.listdir(tmp_path)) == ["other", "pkg.rpm"]
    assert unnamed_files(os.getpid(), tmp_path) == []


def test_a_file_system_without_unnamed_files_gets_named_ones(server, tmp_path, monkeypatch):
    """A directory where O_TMPFILE is refused (here: the flags open the directory itself,
    which the OS refuses with EISDIR, as an old kernel does) is remembered, and its
    downloads use hidden named files."""
    use_temp_kind(monkeypatch, "unnamed", tmp_path)
    monkeypatch.setattr(_sinks, "_UNNAMED_FLAGS", os.O_RDWR | os.O_CLOEXEC)
    monkeypatch.setattr(_sinks, "_refusing_dirs", set())
    looker = _Looker(tmp_path)
    g = URLGrabber(progress_obj=looker)
    g.urlgrab(f"{server.url}/gen/200000/a?bw=400000", str(tmp_path / "a"))
    names, unnamed = looker.seen
    assert unnamed == [] and len(names) == 1 and names[0].startswith(".a.") and names[0].endswith(".part")
    assert _sinks._refusing_dirs == {str(tmp_path)}
    g.urlgrab(f"{server.url}/gen/3000/b", str(tmp_path / "b"))
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    assert (tmp_path / "b").read_bytes() == gen_bytes(3000, "b")


@pytest.mark.parametrize("kind", TEMP_KINDS)
def test_an_existing_destination_is_replaced_whole_with_its_mode(server, tmp_path, monkeypatch, kind):
    use_temp_kind(monkeypatch, kind, tmp_path)
    dest = tmp_path / "pkg.rpm"
    dest.write_bytes(b"old")
    os.chmod(dest, 0o600)
    looker = _Looker(tmp_path)
    URLGrabber(progress_obj=looker).urlgrab(f"{server.url}/gen/200000/new?bw=400000", str(dest))
    assert "pkg.rpm" in looker.seen[0]  # (the old file stays while it runs)
    assert dest.read_bytes() == gen_bytes(200000, "new")
    assert os.stat(dest).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["pkg.rpm"]


FORK_SCRIPT = r"""
import os, sys
from urlgrabber import _sinks
from urlgrabber.grabber import URLGrabber

url, out, how = sys.argv[1], sys.argv[2], sys.argv[3]
URLGrabber().urlgrab(url + "/gen/3000/before", out + "/before")  # /proc/self/fd is open now
assert _sinks._fd_dir is not None
# the parent's own unnamed file, open at descriptor n until the child has ended
n = _sinks._create_unnamed(out + "/x")
os.write(n, b"the parent's file")
pid = os.fork()
if pid == 0:
    code = 1
    try:
        if how == "fork":
            assert _sinks._fd_dir is None  # (the fork handler closed the parent's)
        else:  # as after a fork in C code that ran no fork handlers
            parents = os.open(f"/proc/{os.getppid()}/fd", os.O_RDONLY | os.O_DIRECTORY)
            _sinks._fd_dir = (os.getppid(), parents)
        mine = _sinks._create_unnamed(out + "/y")
        os.write(mine, b"the child's file")
        os.dup2(mine, n)  # the child's descriptor n: its own file now
        _sinks._link_unnamed(n, out + "/linked")
        URLGrabber().urlgrab(url + "/gen/3000/after", out + "/after")
        code = 0
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("how", ["fork", "no-handlers"])
def test_a_forked_child_names_its_own_unnamed_files(server, tmp_path, monkeypatch, how):
    """The kept /proc/self/fd directory is the parent's in a forked child: the child's
    descriptor numbers name its own files there, not the parent's files with the same
    numbers.  The fork handler drops it; a fork that ran no handlers is caught by the
    pid check before each link."""
    use_temp_kind(monkeypatch, "unnamed", tmp_path)  # (skips where there are none)
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT, server.url, str(tmp_path), how],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "0", (proc.stdout, proc.stderr)
    assert (tmp_path / "linked").read_bytes() == b"the child's file"
    assert (tmp_path / "after").read_bytes() == gen_bytes(3000, "after")
    assert (tmp_path / "before").read_bytes() == gen_bytes(3000, "before")


OUT_OF_DESCRIPTORS_SCRIPT = r"""
import errno, os, resource, sys
from urlgrabber import _sinks

out = sys.argv[1]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256 if hard == resource.RLIM_INFINITY else min(256, hard), hard))
fillers = []
try:
    while True:  # every descriptor taken, whatever the numbers already open
        fillers.append(os.open(os.devnull, os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE, e
try:
    _sinks._create_unnamed(out + "/a")
    print("no error")
except OSError as e:
    print(errno.errorcode[e.errno], _sinks._unnamed_ok)
for fd in fillers:
    os.close(fd)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
fd = _sinks._create_unnamed(out + "/a")
print(fd is not None, _sinks._unnamed_ok)
"""


def test_no_descriptor_left_at_the_first_download_does_not_give_up_unnamed_files(
        tmp_path, monkeypatch):
    """The first download opens /proc/self/fd; when the process has no descriptor left,
    that download fails (a write error) and the next one asks again: unnamed files
    are given up only where there is no /proc, not for a moment's shortage."""
    use_temp_kind(monkeypatch, "unnamed", tmp_path)  # (skips where there are none)
    proc = subprocess.run([sys.executable, "-c", OUT_OF_DESCRIPTORS_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.split("\n")[:2] == ["EMFILE None", "True True"], (proc.stdout, proc.stderr)


def test_an_unnamed_file_that_cannot_be_linked_is_copied_not_lost(server, tmp_path, monkeypatch):
    """Where naming through /proc fails after all (here: the link is looked up in an
    empty directory instead of /proc/self/fd, and the OS answers ENOENT), the bytes are
    copied to a hidden named file and published from there; later downloads use named files."""
    use_temp_kind(monkeypatch, "unnamed", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "empty").mkdir()
    empty = os.open(tmp_path / "empty", os.O_RDONLY | os.O_DIRECTORY)
    monkeypatch.setattr(_sinks, "_fd_dir", (os.getpid(), empty))
    monkeypatch.setattr(_sinks, "_unnamed_ok", True)
    try:
        g = URLGrabber()
        g.urlgrab(f"{server.url}/gen/300000/c", str(out / "c"))
        assert _sinks._unnamed_ok is False
        g.urlgrab(f"{server.url}/gen/3000/d", str(out / "d"))
    finally:
        os.close(empty)
    assert (out / "c").read_bytes() == gen_bytes(300000, "c")
    assert os.stat(out / "c").st_mtime == 1577836800.0
    assert (out / "d").read_bytes() == gen_bytes(3000, "d")
    assert sorted(os.listdir(out)) == ["c", "d"]


def test_classic_async_keyword_calls_share_one_options_copy(server, tmp_path):
    """Python 3 callers of classic's API pass ``**{'async': (key, n)}``: their calls share
    one options copy as ``async_=`` calls do.  With both names in one call the later one
    wins, whichever order the calls give them in."""
    from urlgrabber._batch import _batch

    g = URLGrabber()
    url = f"{server.url}/gen/100/alias"
    urlgrabber.parallel_begin()
    for name in "abc":
        g.urlgrab(url, str(tmp_path / name), **{"async": ("k", 2)})
    g.urlgrab(url, str(tmp_path / "d"), **{"async": ("k1", 1), "async_": ("k2", 2)})
    g.urlgrab(url, str(tmp_path / "e"), **{"async_": ("k2", 2), "async": ("k1", 1)})
    queued = list(_batch.queue)
    results = urlgrabber.parallel_end()
    assert all(r.ok for r in results)
    a, b, c, d, e = (r.opts for r in queued)
    assert a is b is c and a.async_ == ("k", 2)
    assert d.async_ == ("k2", 2) and e.async_ == ("k1", 1)


def test_only_the_same_plain_keywords_share_an_options_copy(server, tmp_path):
    """A call shares the last call's options only when its keywords are that call's:
    equal values of the same types.  An equal value of another type, or a value that
    cannot be compared (its == raises), gets options of its own."""
    from urlgrabber._batch import _batch, parallel_abort

    class Unequal:
        def __eq__(self, other):
            raise ValueError("no truth value")

        __hash__ = object.__hash__

        def __call__(self, obj):
            pass

    def check(obj):
        pass

    g = URLGrabber()
    url = f"{server.url}/gen/100/same"
    urlgrabber.parallel_begin()
    g.urlgrab(url, str(tmp_path / "a"), async_=("k", 2), retry=1, checkfunc=check)
    g.urlgrab(url, str(tmp_path / "b"), async_=("k", 2), retry=1, checkfunc=check)
    g.urlgrab(url, str(tmp_path / "c"), async_=("k", 2), retry=True, checkfunc=check)  # True == 1
    g.urlgrab(url, str(tmp_path / "d"), async_=("k", 2), retry=1, checkfunc=check)
    g.urlgrab(url, str(tmp_path / "e"), async_=("k", 2), retry=1, checkfunc=Unequal())
    # the same names in another order, each value's type swapped: checked as a new call
    # (keepalive takes no float), though the two dicts compare equal
    g.urlgrab(url, str(tmp_path / "f"), async_=("k", 2), keepalive=1, timeout=1.0)
    with pytest.raises(URLGrabError) as info:
        g.urlgrab(url, str(tmp_path / "g"), async_=("k", 2), timeout=1, keepalive=1.0)
    assert info.value.errno == 1
    # a tuple's items count too: ("k", True) == ("k", 1), but True is no count
    g.urlgrab(url, str(tmp_path / "h"), async_=("k", 1))
    with pytest.raises(URLGrabError) as info:
        g.urlgrab(url, str(tmp_path / "i"), async_=("k", True))
    assert info.value.errno == 1
    queued = list(_batch.queue)
    parallel_abort()
    a, b, c, d, e, f, h = (r.opts for r in queued)
    assert a is b
    assert c is not b and c.retry is True
    assert d is not c and d.retry == 1 and type(d.retry) is int
    assert e is not d and isinstance(e.checkfunc, Unequal)
    assert f is not e and h is not f


class _Counting:
    """A progress meter (its download's chunks go through Python, not the direct writer)."""

    def start(self, *args, **kwargs):
        pass

    def update(self, amount, now=None):
        pass

    def end(self, *args, **kwargs):
        pass


def test_one_handle_writes_each_download_to_its_own_file(server, tmp_path):
    """A pooled handle keeps one writer for its direct attempts and points it at each
    attempt's file: over one connection, direct downloads before and after an observed
    one (a progress meter), a failed one and an empty one each end up whole in their
    own place, and nothing else is left."""
    g = URLGrabber(retry=1)
    plan = [("a", 5000, {}), ("b", 300000, {}), ("m", 120000, {"progress_obj": _Counting()}),
            ("c", 0, {}), ("x", 70000, {"truncate": True}), ("d", 70000, {})]
    urlgrabber.parallel_begin(max_connections=1)
    for name, size, kw in plan:
        query = "?truncate=100" if kw.pop("truncate", False) else ""
        g.urlgrab(f"{server.url}/gen/{size}/{name}{query}", str(tmp_path / name),
                  async_=("one", 1), failfunc=lambda obj: None, **kw)
    results = urlgrabber.parallel_end()
    assert [r.ok for r in results] == [True, True, True, True, False, True]
    assert results[4].exception.errno == 14  # (libcurl: a body cut short)
    for name, size, _kw in plan:
        if name != "x":
            assert (tmp_path / name).read_bytes() == gen_bytes(size, name)
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c", "d", "m"]
    assert unnamed_files(os.getpid(), tmp_path) == []


def test_the_direct_writer_keeps_the_error_of_a_closed_file(tmp_path):
    sink = _sinks.FileSink(str(tmp_path / "f"), "http://example.org/f")
    sink.open()
    writer = _sinks.DirectWriter(sink)
    assert writer.write(b"abc") == 3
    sink.commit()
    assert (tmp_path / "f").read_bytes() == b"abc"
    assert writer.write(b"late") == 0  # (libcurl then fails the transfer: error 23)
    assert sink.write_error.errno == errno.EBADF and sink.write_failure().errno == 16
    assert _sinks.DirectWriter().write(b"nowhere") == 0  # (a writer never pointed at a sink)
