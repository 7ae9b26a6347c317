"""Small helpers for tests: ``from util import wait_until, gen_bytes``."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import sys
import time

import pytest
from server import gen_bytes

__all__ = ["GatheringPoller", "gathered_replies", "gen_bytes", "permission_bits_apply", "wait_until"]


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Poll ``predicate()`` until it returns a truthy value and return that
    value; raise AssertionError if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"wait_until: condition {predicate!r} not met within {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# permission bits for root too


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_VERSION_3 = 0x20080522
_CAP_DAC_OVERRIDE = 1     # write/read anything regardless of the mode bits
_CAP_DAC_READ_SEARCH = 2  # read and search anything


@contextlib.contextmanager
def permission_bits_apply():
    """Make file mode bits bind the calling thread even when it runs as root.

    As root (Linux), the thread's effective CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH are dropped for the body and restored after, so a 0555
    directory refuses new files and a 0000 file refuses to be read (EACCES), as
    for any other user.  Capabilities are per thread: the engine runs in the
    thread that calls urlgrab/parallel_end, and the test servers' threads keep
    theirs.  Not root: nothing to do.  Root where they cannot be dropped: skip.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield
        return
    if not sys.platform.startswith("linux"):
        pytest.skip("root, and no Linux capabilities to drop")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    header = _CapHeader(_CAP_VERSION_3, 0)  # pid 0: this thread
    saved = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), saved) != 0:
        pytest.skip(f"capget: {os.strerror(ctypes.get_errno())}")
    dropped = (_CapData * 2)()
    ctypes.memmove(dropped, saved, ctypes.sizeof(saved))
    dropped[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), dropped) != 0:
        pytest.skip(f"capset: {os.strerror(ctypes.get_errno())}")
    try:
        yield
    finally:
        header = _CapHeader(_CAP_VERSION_3, 0)
        if libc.capset(ctypes.byref(header), saved) != 0:
            raise OSError(ctypes.get_errno(), "could not restore this thread's capabilities")


# Temporary files: unnamed (O_TMPFILE, linked at the destination when complete)
# where the system has them, else hidden named ones.  Tests of what happens to
# a temporary file run with both kinds (``TEMP_KINDS``).
TEMP_KINDS = ["unnamed", "named"]
# a child process started with this as its first lines uses named temporary files
NAMED_TEMPS_CODE = "import urlgrabber._sinks as _s; _s._unnamed_ok = False\n"


def use_temp_kind(monkeypatch, kind: str, directory) -> None:
    """Make this process's downloads use ``kind`` temporary files (skip where unnamed
    ones are not to be had in ``directory``)."""
    from urlgrabber import _sinks

    if kind == "named":
        monkeypatch.setattr(_sinks, "_unnamed_ok", False)
        return
    fd = _sinks._create_unnamed(os.path.join(os.fspath(directory), "probe"))
    if fd is None:
        pytest.skip("no unnamed temporary files here (O_TMPFILE, /proc)")
    os.close(fd)


def unnamed_files(pid: int, directory) -> list[str]:
    """The unnamed files (O_TMPFILE) in ``directory`` that process ``pid`` has open."""
    prefix = os.path.realpath(os.fspath(directory)) + "/#"
    found = []
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith(prefix) and target.endswith(" (deleted)"):
            found.append(target)
    return found


class GatheringPoller:
    """The engine's real poller, except that the first time a poll finds a socket of a
    running transfer readable, it waits (at most 10 s) until ``want`` of them are and
    returns them together: replies that arrive at once, every time.  ``calls`` (the
    socket_action calls recorded so far) is marked where that poll returned.  ``first``
    (optional) picks the URL prefix whose transfer's socket comes first among them."""

    def __init__(self, eng, want, calls, first=None):
        self.eng, self.real, self.want, self.calls = eng, eng._poller, want, calls
        self.first = first
        self.gathered: list[int] = []
        self.mark = -1
        self.had_work = False

    def _readable(self, ready):
        # (not a parked keep-alive connection of an earlier test, closed by its server)
        return [fd for fd, ev in ready.items() if ev & select.POLLIN and self.eng._watched.get(fd)]

    def poll(self, timeout=-1):
        events = self.real.poll(timeout)
        if self.mark >= 0 or not self._readable(dict(events)):
            return events
        deadline = time.monotonic() + 10.0
        ready = dict(events)
        while len(self._readable(ready)) < self.want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready.update(self.real.poll(left))
        self.gathered = self._readable(ready)
        self.mark = len(self.calls)
        self.had_work = self.eng.scheduler.has_work()  # (requests still queued behind these)
        events = list(ready.items())
        if self.first is not None:
            lead = self._socket_of(self.first)
            events.sort(key=lambda e: e[0] != lead)
        return events

    def _socket_of(self, prefix):
        import pycurl

        for curl, transfer in self.eng._running.items():
            if transfer.binding.url.startswith(prefix):
                # (pycurl 7.45 has no ACTIVESOCKET; LASTSOCKET is the same socket here)
                return curl.getinfo(getattr(pycurl, "ACTIVESOCKET", pycurl.LASTSOCKET))
        return None

    def __getattr__(self, name):
        return getattr(self.real, name)


def _record_actions(eng):
    """Wrap the engine's socket_action: the descriptors it is called with, in order
    (pycurl.SOCKET_TIMEOUT for curl's timer, which is also how new requests are sent)."""
    real = eng._socket_action
    calls: list[int] = []

    def action(fd, ev):
        calls.append(fd)
        return real(fd, ev)

    eng._socket_action = action
    return real, calls


@contextlib.contextmanager
def gathered_replies(want, first=None):
    """The thread's engine with a GatheringPoller (``want``, ``first``) and its
    socket_action calls recorded (the poller's ``calls``); both undone on exit."""
    from urlgrabber import _engine

    eng = _engine.engine()
    real_action, calls = _record_actions(eng)
    real_poller = eng._poller
    eng._poller = gather = GatheringPoller(eng, want, calls, first)
    try:
        yield gather
    finally:
        eng._poller, eng._socket_action = real_poller, real_action
