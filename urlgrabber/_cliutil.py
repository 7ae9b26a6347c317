"""What the ``urlgrabber`` command (``cli``) and its demo (``demo``) share.

One batch run that leaves nothing queued when it is interrupted, the failfunc
that keeps failures in the batch results, and the sha256 checkfunc.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, TextIO

import urlgrabber

from ._batch import BatchResult, parallel_abort
from .errors import URLGrabError
from .progress import (
    _NAME,
    MultiFileHelper,
    MultiFileMeter,
    _cells,
    _emit,
    _fit,
    _label,
    _layout,
    _percent,
    _sanitize,
    _terminal_columns,
    format_number,
    format_time,
)

PROG = "urlgrabber"


def run_batch(queue: Callable[[], None], max_connections: int) -> list[BatchResult]:
    """``parallel_begin()``, ``queue()`` (which queues the downloads), ``parallel_end()``: its results.

    The batch runs to its end (``raise_errors=False``): each failure stays in its result.
    Whatever goes wrong on the way (Ctrl-C included) drops the queued requests before it propagates.
    """
    urlgrabber.parallel_begin(max_connections=max_connections)
    try:
        queue()
        return urlgrabber.parallel_end(raise_errors=False)
    except BaseException:
        parallel_abort()
        raise


def ignore_failure(obj: Any) -> None:
    """failfunc: keep the failure in the batch results instead of raising."""
    return None


def sha256_of(path: str) -> str:
    """The sha256 hex digest of a file, read 1 MiB at a time."""
    import hashlib  # only with --sha256: OpenSSL's ~5 ms at start-up otherwise

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_checkfunc(expected: str) -> Callable[[Any], None]:
    """A checkfunc that rejects the downloaded file unless its sha256 is ``expected``.

    It raises URLGrabError errno -1, so the library retries and finally drops the file.
    """
    def check(obj: Any) -> None:
        try:
            actual = sha256_of(obj.filename)
        except OSError as e:
            raise URLGrabError(-1, f"cannot read the download to check it: {e}")
        if actual != expected:
            raise URLGrabError(-1, f"sha256 mismatch: expected {expected}, got {actual}")
    return check


def format_bytes(n: float | None) -> str:
    """A byte count in the units the progress meters use (1024-based): ``6.8 MB``."""
    return format_number(n) + "B"


def format_rate(rate: float | None) -> str:
    """A rate in the meters' units: ``1.2 MB/s``, ``--- B/s`` when unknown."""
    if rate is None or rate != rate or rate < 0 or rate == float("inf"):
        return "--- B/s"
    return format_number(rate) + "B/s"


class StatusDisplay(MultiFileMeter):
    """The command's screen: one status line redrawn in place (files done/total,
    bytes, percent, rate, ETA, a running file's name) with a line per finished or
    failed file printed above it.

    The status line is drawn only when ``fo`` is a terminal; otherwise only the
    permanent lines are written, with no carriage returns.  Every line fits the
    terminal's width minus one column, so nothing wraps.  ``width`` (None: ask the
    terminal) is for tests.
    """

    def __init__(self, fo: TextIO, verbose: bool = False, width: int | None = None) -> None:
        MultiFileMeter.__init__(self, fo)
        self.fo: TextIO = fo
        self.verbose = verbose
        self.width = width
        try:
            self.tty = bool(fo.isatty())
        except (AttributeError, ValueError, OSError):
            self.tty = False
        self.update_period = 0.2
        self._shown = False
        self._index = 0
        self._index_time = 0.0

    def _columns(self) -> int:
        if self.width is not None:
            return max(int(self.width), 1)
        return _terminal_columns(self.fo)

    # -- permanent lines --------------------------------------------------------

    def line(self, text: str, wrap: bool = False) -> None:
        """Print ``text`` on a line of its own above the status line; on a terminal it is
        cut to the width, or with ``wrap`` broken at spaces."""
        text = _sanitize(text)
        if self.tty:
            width = max(self._columns() - 1, 1)
            if _cells(text) > width and wrap:
                text = "\n".join(_wrap(text, width))
            elif _cells(text) > width:
                text = _fit(text, width).rstrip()
            head = "\r\x1b[K" if self._shown else ""
            _emit(self.fo, head + text + "\n")
            self._shown = False
            if self.start_time is not None and self.numfiles:
                self._draw(time.time())
        else:
            _emit(self.fo, text + "\n")

    def _do_start_meter(self, meter: MultiFileHelper, now: float) -> None:
        if self.verbose and meter.url:
            self.line(f"{PROG}: {_label(meter)}: from {meter.url}")

    def _do_update_meter(self, meter: MultiFileHelper, now: float) -> None:
        if self.tty:
            self._draw(now)

    def _do_end_meter(self, meter: MultiFileHelper, now: float) -> None:
        started = meter.start_time if meter.start_time is not None else now
        seconds = max(now - started, 0.0)
        size = meter.last_amount_read
        rate = format_rate(size / seconds if seconds > 0 else None)
        self.line(f"done  {_label(meter)}  {format_bytes(size)}  {seconds:.1f} s  {rate}")

    def _do_end(self, now: float) -> None:
        self.clear()

    def clear(self) -> None:
        """Erase the status line (the cursor stays at the start of that empty line)."""
        if self._shown:
            _emit(self.fo, "\r\x1b[K")
            self._shown = False

    # -- the status line ----------------------------------------------------------

    def _draw(self, now: float) -> None:
        # erase what a longer previous line left on the right, then back to column 0
        _emit(self.fo, "\r" + self.status_line(now, max(self._columns() - 1, 1)) + "\x1b[K\r")
        self._shown = True

    def _estimated_total(self) -> int | None:
        """Bytes of the whole batch: the sizes given, else finished and running files'
        sizes plus the mean of those for each file not started yet."""
        if self.total_size:
            return self.total_size
        known = [m.size for m in self.in_progress_meters if m.size]
        count = self.finished_files + len(known)
        if not count:
            return None
        sizes = self.finished_file_size + sum(known)
        waiting = max((self.numfiles or 0) - self.finished_files - self.failed_files
                      - len(self.in_progress_meters), 0)
        return sizes + (waiting * sizes) // count

    def status_line(self, now: float, width: int) -> str:
        """The status line for ``width`` cells: the fields that fit, by priority, then a file's name."""
        done = self._amount_read()
        files = f"[{self.finished_files}/{self.numfiles or '?'}]"
        total = self._estimated_total()
        rate = self.re.average_rate()
        parts: list[tuple[int, str]] = [(0, files)]
        if total:
            frac = min(done / total, 1.0)
            eta = (total - done) / rate if rate else None
            parts += [(1, f" {_percent(frac):3d}%"), (2, f" {format_bytes(done)}/{format_bytes(total)}"),
                      (4, f"  {format_rate(rate)}"), (5, f"  ETA {format_time(eta)}")]
        else:
            parts += [(2, f" {format_bytes(done)}"), (4, f"  {format_rate(rate)}")]
        if self.failed_files:
            parts.append((3, f"  {self.failed_files} failed"))
        parts += [(6, "  "), (0, _NAME)]
        return _layout(width, parts, self._running_name(now), None, name_min=0).rstrip()

    def _running_name(self, now: float) -> str:
        """One running file's name, a different one every second."""
        active = self.in_progress_meters
        if not active:
            return ""
        if now >= self._index_time + 1.0 or now < self._index_time:
            self._index_time = now
            self._index += 1
        return _label(active[self._index % len(active)])



def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken at spaces (a long URL is split)."""
    import textwrap

    # a number stays with its unit ("7.6 s", "9.6 MB"): glued by a placeholder while wrapping
    glued = _NUMBER_UNIT.sub("\\1\x1f", text)
    lines = textwrap.wrap(glued, width, subsequent_indent="  ", break_on_hyphens=False) or [""]
    return [_fit(line.replace("\x1f", " "), width).rstrip() for line in lines]


_NUMBER_UNIT = re.compile(r"(\d) (?=(?:B|[kMGT]B|[kMGT]?B/s|s|files?)\b)")
