"""Progress meters compatible with the classic urlgrabber ``progress`` module.

A meter is told about a transfer through ``start()``, ``update()`` and
``end()``; subclasses draw it by overriding the ``_do_*`` hooks.  Redraw
throttling lives in the base classes, so a hook is never called more than
about ten times a second however often the transfer reports progress.

Everything here is synchronous and single-threaded: meters are driven from the
one thread that runs the download loop.  The ``threaded`` arguments and the
``lock()``/``unlock()`` methods exist only so classic callers keep working.
"""

from __future__ import annotations

import math
import os
import sys
import time
import unicodedata

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import IO, Any, TextIO

__all__ = [
    "BaseMeter",
    "MultiFileHelper",
    "MultiFileMeter",
    "RateEstimator",
    "TerminalLine",
    "TextMeter",
    "TextMultiFileMeter",
    "format_number",
    "format_time",
    "terminal_width",
    "terminal_width_cached",
    "text_meter_total_size",
    "text_progress_meter",
]

# Seconds between two redraws; the classic library used 0.3.
UPDATE_PERIOD = 0.1

# The name column keeps at least this many cells before optional fields are shown.
_NAME_MIN = 8
# Bounds of the inner width of a progress bar ``[====    ]``.
_BAR_MIN = 5
_BAR_MAX = 40


# ---------------------------------------------------------------------------
# formatting helpers

_SYMBOLS = ("", "k", "M", "G", "T", "P", "E", "Z", "Y")


def format_number(number: float | None, SI: int = 0, space: str = " ") -> str:
    """Render ``number`` with a 1024-based (or 1000-based with ``SI``) unit prefix.

    Matches the classic output: ``0 ``, ``999 ``, ``1.0 k``, ``10 k``; one
    decimal below 9.95 units, none above.  ``None`` renders as ``0.0 ``.
    """
    step = 1000.0 if SI else 1024.0
    thresh = 999
    max_depth = len(_SYMBOLS) - 1
    value: float
    if number is None:
        value = 0.0
    elif isinstance(number, int):
        value = number
    else:
        value = float(number)
    depth = 0
    while abs(value) > thresh and depth < max_depth:
        depth += 1
        try:
            value = value / step
        except OverflowError:  # an int too big for a float
            value = math.inf if value > 0 else -math.inf
    if isinstance(value, int):
        # never divided, so already short: print it as it is
        fmt = "%i%s%s"
    elif abs(value) < 9.95:
        # 9.95 and not 10: '%.1f' would round 9.97 up to the too long '10.0'
        fmt = "%.1f%s%s"
    else:
        fmt = "%.0f%s%s"
    return fmt % (value, space, _SYMBOLS[depth])


def format_time(seconds: float | None, use_hours: int | bool = 0) -> str:
    """Render a duration as ``MM:SS`` (or ``HH:MM:SS`` with ``use_hours``).

    Unknown durations (None, negative, infinite or NaN) render as dashes so a
    meter never shows nonsense such as a negative ETA.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--:--" if use_hours else "--:--"
    total = int(seconds)
    minutes, secs = divmod(total, 60)
    if use_hours:
        hours, minutes = divmod(minutes, 60)
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def _format_rate(rate: float | None) -> str:
    """Render a rate as ``' 1.2 MB/s'`` in a 5+4 cell column; unknown is ``---``."""
    if rate is None or not math.isfinite(rate) or rate < 0:
        return " --- B/s"
    return f" {format_number(rate):>5}B/s"


def _sanitize(text: object) -> str:
    """Make a label safe for a one-line display: control characters become '?'."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():
        return text
    return "".join(
        "?" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch
        for ch in text
    )


def _char_cells(ch: str) -> int:
    """Terminal cells taken by one character (0 for combining, 2 for wide)."""
    if ch.isascii():
        return 1
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _cells(text: str) -> int:
    """Terminal cells taken by ``text``."""
    if text.isascii():
        return len(text)
    return sum(_char_cells(ch) for ch in text)


def _fit(text: str, width: int) -> str:
    """Cut ``text`` to at most ``width`` cells and pad it to exactly ``width``."""
    if width <= 0:
        return ""
    if text.isascii():
        return text[:width].ljust(width)
    out = []
    used = 0
    for ch in text:
        w = _char_cells(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * (width - used)


def _bar(inner: int, frac: float) -> str:
    """A bar ``[===-   ]`` of ``inner`` cells filled to ``frac`` (clamped to 0..1)."""
    if math.isnan(frac):
        frac = 0.0
    frac = min(max(frac, 0.0), 1.0)
    filled = inner * frac
    full = int(filled)
    body = "=" * full
    if full < inner and filled - full >= 0.5:
        body += "-"
    return " [" + body.ljust(inner) + "]"


# Placeholders in a layout list.
_NAME = "\0name"
_BAR = "\0bar"


def _layout(width: int, parts: list[tuple[int, str]], name: str,
            frac: float | None = None, name_min: int = _NAME_MIN) -> str:
    """Lay out one line of exactly ``width`` cells.

    ``parts`` lists ``(priority, text)`` in display order; the texts ``_NAME``
    and ``_BAR`` mark the flexible name column and the optional bar.  Fields
    are kept by ascending priority while they fit next to ``name_min``
    cells of name, the bar takes part of what is left, and the name gets the
    rest.
    """
    if width <= 0:
        return ""
    name = _sanitize(name)
    name_len = _cells(name)
    name_min = min(name_min, name_len)
    avail = width - name_min
    fields = [i for i, (_, text) in enumerate(parts) if text not in (_NAME, _BAR)]
    kept: set[int] = set()
    for i in sorted(fields, key=lambda i: parts[i][0]):
        w = _cells(parts[i][1])
        if w <= avail:
            kept.add(i)
            avail -= w
    rest = width - sum(_cells(parts[i][1]) for i in kept)
    bar = ""
    if frac is not None and any(text == _BAR for _, text in parts):
        name_want = max(name_min, min(name_len, rest // 2))
        inner = min(rest - name_want - 3, _BAR_MAX)
        if inner >= _BAR_MIN:
            bar = _bar(inner, frac)
    name_width = rest - len(bar)
    out = []
    for i, (_, text) in enumerate(parts):
        if text == _NAME:
            out.append(_fit(name, name_width))
        elif text == _BAR:
            out.append(bar)
        elif i in kept:
            out.append(text)
    return "".join(out)


def _tty_columns(fd: int | IO[Any]) -> int:
    """Columns the TIOCGWINSZ ioctl reports for ``fd`` (a number or a file object), 0 if none."""
    try:
        if not isinstance(fd, int):
            fd = fd.fileno()
        return os.get_terminal_size(fd).columns
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):
        return 0


def _terminal_columns(fo: Any) -> int:
    """Columns of the terminal ``fo`` writes to, else ``$COLUMNS`` or 80."""
    try:
        if fo is not None and fo.isatty():
            cols = _tty_columns(fo.fileno())
            if cols > 0:
                return cols
    except (AttributeError, ValueError, OSError):
        pass
    import shutil  # (only here: it imports bz2, lzma, fnmatch...)

    return shutil.get_terminal_size((80, 24)).columns or 80


def _emit(fo: Any, text: str) -> None:
    """Write and flush, never letting a broken or narrow-charset stream raise."""
    if fo is None:
        return
    try:
        fo.write(text)
    except UnicodeEncodeError:
        encoding = getattr(fo, "encoding", None) or "ascii"
        try:
            fo.write(text.encode(encoding, "replace").decode(encoding))
        except (OSError, ValueError, LookupError):
            return
    except (OSError, ValueError):
        return
    try:
        fo.flush()
    except (AttributeError, OSError, ValueError):
        pass


def _label(meter: BaseMeter) -> str:
    """The name a meter shows: its text, else basename, else the file or URL tail."""
    if meter.text is not None:
        return _sanitize(meter.text)
    if meter.basename is not None:
        return _sanitize(meter.basename)
    for source in (meter.filename, meter.url):
        if source:
            source = str(source)
            return _sanitize(os.path.basename(source.rstrip("/")) or source)
    return ""


def _throttled(last: float | None, now: float, period: float) -> bool:
    """True if a redraw at ``now`` would come too soon after one at ``last``.

    A clock that went backwards does not block redraws until it catches up.
    """
    return last is not None and last <= now < last + period


class _WidthMixin:
    """What the text meters share: the terminal width (``width`` overrides the
    detected columns) and the line of a finished file."""

    fo: Any
    width: int | None

    def _columns(self) -> int:
        """Terminal columns to lay out for (the override, else detected)."""
        if self.width is not None:
            return max(int(self.width), 1)
        return _terminal_columns(self.fo)

    def _line_width(self) -> int:
        """Cells a redrawn line may use: one less than the terminal, so no auto-wrap."""
        return max(self._columns() - 1, 1)

    def _end_line(self, meter: BaseMeter, amount_read: int, head: str = "") -> tuple[str, bool]:
        """The line for ``meter``'s finished file (``head`` first), and whether it came short or long.

        Name, average rate, bytes read, time taken and the ``_end_marker``; fields drop when the line is narrow.
        """
        use_hours = self._columns() > 80
        width = self._line_width()
        elapsed = meter.re.elapsed_time()
        marker, not_done = _end_marker(meter.size, amount_read)
        parts = [
            (0, _NAME),
            (4, _format_rate(_ratio(amount_read, elapsed) if elapsed > 0 else None)),
            (1, f" | {format_number(amount_read):>5}B"),
            (2, "  " + format_time(elapsed, use_hours)),
            (3, marker),
        ]
        if head:
            parts.insert(0, (0, head))
        line = _layout(width, parts, _label(meter), name_min=_end_name_min(width))
        return line, not_done


# ---------------------------------------------------------------------------
# classic terminal-width API (yum, anaconda and livecd-tools call these)

def terminal_width(fd: int | IO[Any] = 1) -> int:
    """The width of the terminal on ``fd``, as classic urlgrabber reports it.

    80 when ``fd`` is not a terminal or reports a width of 0; ``$COLUMNS`` is ignored.
    """
    return _tty_columns(fd) or 80


# fd number (None if it has none) -> (width, time.monotonic() when read)
_term_width_cache: dict[int | None, tuple[int, float]] = {}


def terminal_width_cached(fd: int | IO[Any] = 1, cache_timeout: float = 1.000) -> int:
    """``terminal_width(fd)``, re-read only once ``cache_timeout`` seconds passed since the last read.

    Saves an ioctl per redraw of a fast-updating meter; 0 means always re-read.
    """
    key: int | None
    if isinstance(fd, int):
        key = fd
    else:
        try:
            key = fd.fileno()
        except (AttributeError, ValueError, OSError):
            key = None
    now = time.monotonic()
    cached = _term_width_cache.get(key)
    if cached is not None and 0 <= now - cached[1] < cache_timeout:
        return cached[0]
    width = terminal_width(fd)
    _term_width_cache[key] = (width, now)
    return width


class TerminalLine:
    """Share one terminal line (at least ``beg_len`` wide) among optional fields, as classic did.

    ``add()`` keeps ``min_rest`` cells free for the flexible field that ``rest()`` sizes.
    """

    def __init__(self, min_rest: int = 0, beg_len: int | None = None,
                 fd: int | IO[Any] = 1, cache_timeout: float = 1.000) -> None:
        if beg_len is None:
            beg_len = min_rest
        self._min_len = min_rest
        self._llen = max(terminal_width_cached(fd, cache_timeout), beg_len)
        self._fin = False

    def __len__(self) -> int:
        """Cells still usable for elements: the rest minus ``min_rest`` (never negative)."""
        return max(self._llen - self._min_len, 0)

    def rest_split(self, fixed: int, elements: int = 2) -> int | float:
        """Split what is left after ``fixed`` more cells evenly among ``elements`` (0 if nothing is)."""
        if self._llen < fixed:
            return 0
        if isinstance(self._llen, int) and isinstance(fixed, int) and isinstance(elements, int):
            # classic's Python 2 integer '/': callers pass the result as a '%*s' width
            return (self._llen - fixed) // elements
        return (self._llen - fixed) / elements

    def add(self, element: str, full_len: int | None = None) -> str:
        """Return ``element`` and use up its length if ``full_len`` (default: its length) still fits.

        Once one element did not fit, every later ``add`` returns '' too, so fields drop from the end.
        """
        if full_len is None:
            full_len = len(element)
        if self._llen - self._min_len < full_len:
            self._fin = True
        if self._fin:
            return ""
        self._llen -= len(element)
        return element

    def rest(self) -> int:
        """Cells left on the line (for the flexible field); ``rest_split(0, 1)``."""
        return self._llen


# ---------------------------------------------------------------------------
# single-file meters

class BaseMeter:
    """A meter for one transfer; subclasses draw it in the ``_do_*`` hooks."""

    def __init__(self) -> None:
        self.update_period = UPDATE_PERIOD
        self.filename: str | None = None
        self.url: str | None = None
        self.basename: str | None = None
        self.text: str | None = None
        self.size: int | None = None
        self.fsize: str | None = None
        self.start_time: float | None = None
        self.last_amount_read = 0
        self.last_update_time: float | None = None
        self.re = RateEstimator()
        self._last_redraw: float | None = None

    def start(self, filename: str | None = None, url: str | None = None,
              basename: str | None = None, size: int | None = None,
              now: float | None = None, text: str | None = None) -> None:
        """Begin a transfer of ``size`` bytes (None if unknown)."""
        self.filename = filename
        self.url = url
        self.basename = basename
        self.text = text
        if size is not None and size < 0:
            size = None
        self.size = size
        self.fsize = None if size is None else format_number(size) + "B"
        if now is None:
            now = time.time()
        self.start_time = now
        self.re.start(size, now)
        self.last_amount_read = 0
        self.last_update_time = now
        self._last_redraw = None
        self._do_start(now)

    def _do_start(self, now: float) -> None:
        """Hook: the transfer started."""

    def update(self, amount_read: int, now: float | None = None) -> None:
        """Report ``amount_read`` bytes so far; redraws at most every ``update_period``."""
        if now is None:
            now = time.time()
        if _throttled(self._last_redraw, now, self.update_period):
            return
        self._last_redraw = now
        self.re.update(amount_read, now)
        self.last_amount_read = amount_read
        self.last_update_time = now
        self._do_update(amount_read, now)

    def _do_update(self, amount_read: int, now: float) -> None:
        """Hook: redraw for ``amount_read`` bytes (already throttled)."""

    def end(self, amount_read: int, now: float | None = None) -> None:
        """Finish the transfer with ``amount_read`` bytes in total (never throttled)."""
        if now is None:
            now = time.time()
        self.re.update(amount_read, now)
        self.last_amount_read = amount_read
        self.last_update_time = now
        self._do_end(amount_read, now)

    def _do_end(self, amount_read: int, now: float) -> None:
        """Hook: the transfer ended."""


# Out-of-band batch totals for TextMeter, as in the classic module: callers
# that download several files one after another can show an overall percent.
_text_meter_total_size = 0
_text_meter_sofar_size = 0


def text_meter_total_size(size: int, downloaded: int = 0) -> None:
    """Tell TextMeter the total of a series of downloads, so it shows ``(NN%)``."""
    global _text_meter_total_size, _text_meter_sofar_size
    _text_meter_total_size = size
    _text_meter_sofar_size = downloaded


class TextMeter(_WidthMixin, BaseMeter):
    """A one-line text meter redrawn in place with ``\\r``.

    ``width`` (None = detect) overrides the terminal width, e.g. for tests.
    """

    def __init__(self, fo: TextIO | None = None) -> None:
        BaseMeter.__init__(self)
        self.fo = sys.stderr if fo is None else fo
        self.width: int | None = None

    def _do_update(self, amount_read: int, now: float) -> None:
        cols = self._columns()
        width = self._line_width()
        use_hours = cols > 80
        ui_rate = _format_rate(self.re.average_rate())
        ui_size = f" | {format_number(amount_read):>5}B"
        frac = self.re.fraction_read() if self.size is not None else None
        if frac is None:
            ui_time = "  " + format_time(self.re.elapsed_time(), use_hours)
            parts = [(0, _NAME), (2, ui_rate), (1, ui_size), (3, ui_time)]
        else:
            ui_pc = f" {_percent(frac):3d}%"
            ui_eta = f"  {format_time(self.re.remaining_time(), use_hours)} ETA"
            parts = [(0, _NAME)]
            if _text_meter_total_size:
                sofar = _text_meter_sofar_size + amount_read
                parts.append((5, f" ({_percent(_ratio(sofar, _text_meter_total_size))}%)"))
            parts += [(1, ui_pc), (0, _BAR), (4, ui_rate), (2, ui_size), (3, ui_eta)]
        line = _layout(width, parts, _label(self), frac)
        _emit(self.fo, "\r" + line + "\r")

    def _do_end(self, amount_read: int, now: float) -> None:
        global _text_meter_total_size, _text_meter_sofar_size
        line, not_done = self._end_line(self, amount_read)
        _emit(self.fo, "\r" + line + "\n")

        # The batch total only counts complete files; unknown sizes count as complete.
        if not_done:
            return
        if _text_meter_total_size:
            _text_meter_sofar_size += amount_read
        if _text_meter_total_size <= _text_meter_sofar_size:
            _text_meter_total_size = 0
            _text_meter_sofar_size = 0


text_progress_meter = TextMeter


def _percent(frac: float) -> int:
    """A fraction as a whole percentage clamped to 0..100 (NaN counts as 0)."""
    if math.isnan(frac):
        return 0
    return int(min(max(frac, 0.0), 1.0) * 100)


def _end_name_min(width: int) -> int:
    """Cells kept for the name on a final line, where the name matters most."""
    return max(_NAME_MIN, width // 2)


def _end_marker(size: int | None, amount_read: int) -> tuple[str, bool]:
    """The end-of-line marker: ``!!!`` read more than expected, ``...`` less."""
    if size:
        if amount_read > size:
            return " !!!", True
        if amount_read != size:
            return " ...", True
    return "", False


# ---------------------------------------------------------------------------
# multi-file meters

class MultiFileHelper(BaseMeter):
    """The per-file meter handed out by ``MultiFileMeter.newMeter()``.

    It behaves like a ``BaseMeter`` and forwards every event to its master.
    """

    def __init__(self, master: MultiFileMeter) -> None:
        BaseMeter.__init__(self)
        self.master = master
        self.ftotal_time: str | None = None
        self.ftotal_size: str | None = None
        self._restart_amount = 0

    def start(self, filename: str | None = None, url: str | None = None,
              basename: str | None = None, size: int | None = None,
              now: float | None = None, text: str | None = None) -> None:
        """Begin (or restart, e.g. on a retry) this file's transfer."""
        # Remember what a restarted transfer had read, so the batch rate keeps it.
        self._restart_amount = self.last_amount_read
        BaseMeter.start(self, filename, url, basename, size, now, text)

    def _do_start(self, now: float) -> None:
        self.master.start_meter(self, now)

    def _do_update(self, amount_read: int, now: float) -> None:
        self.master.update_meter(self, now)

    def _do_end(self, amount_read: int, now: float) -> None:
        started = now if self.start_time is None else self.start_time
        self.ftotal_time = format_time(now - started)
        self.ftotal_size = format_number(self.last_amount_read)
        self.master.end_meter(self, now)

    def failure(self, message: object, now: float | None = None) -> None:
        """Report that this file's transfer failed with ``message``."""
        if now is None:
            now = time.time()
        self.master.failure_meter(self, message, now)

    def message(self, message: object) -> None:
        """Pass a free-form message about this file to the master."""
        self.master.message_meter(self, message)


class MultiFileMeter:
    """A meter for a batch of files; one ``MultiFileHelper`` per file.

    Tracks ``numfiles``, ``finished_files``, ``failed_files``, ``open_files``,
    ``total_size``, ``failed_size`` and ``finished_file_size``; ``re`` (alias
    ``re_total``) estimates the rate over all bytes transferred.  Subclasses
    draw in the ``_do_*`` hooks; ``_do_update_meter`` is throttled.
    """

    helperclass = MultiFileHelper

    def __init__(self, fo: TextIO | None = None, threaded: bool = True) -> None:
        if isinstance(fo, bool):  # classic MultiFileMeter(threaded) positional call
            fo = None
        self.fo = fo
        self.meters: list[MultiFileHelper] = []
        self.in_progress_meters: list[MultiFileHelper] = []
        self.update_period = UPDATE_PERIOD
        self.numfiles: int | None = None
        self.finished_files = 0
        self.failed_files = 0
        self.open_files = 0
        self.total_size: int | None = None
        self.failed_size: int | None = 0
        self.start_time: float | None = None
        self.finished_file_size = 0
        self.last_update_time: float | None = None
        self.re = RateEstimator()
        self._lost_size = 0  # bytes read by failed or restarted transfers
        self._last_redraw: float | None = None

    @property
    def re_total(self) -> RateEstimator:
        """The batch-wide rate estimator (same object as ``re``)."""
        return self.re

    def start(self, numfiles: int | None = None, total_size: int | None = None,
              now: float | None = None) -> None:
        """Begin a batch of ``numfiles`` files totalling ``total_size`` bytes."""
        if now is None:
            now = time.time()
        self.numfiles = numfiles
        self.finished_files = 0
        self.failed_files = 0
        # helpers may already have started before the batch itself
        self.open_files = len(self.in_progress_meters)
        self.total_size = total_size
        self.failed_size = 0
        self.start_time = now
        self.finished_file_size = 0
        self._lost_size = 0
        self.last_update_time = now
        self._last_redraw = None
        self.re.start(total_size, now)
        self._do_start(now)

    def _do_start(self, now: float) -> None:
        """Hook: the batch started."""

    def end(self, now: float | None = None) -> None:
        """Finish the batch."""
        if now is None:
            now = time.time()
        if self.start_time is None:
            self.start_time = now
        self.re.update(self._transferred(), now)
        self.last_update_time = now
        self._do_end(now)

    def _do_end(self, now: float) -> None:
        """Hook: the batch ended."""

    def lock(self) -> None:
        """No-op kept for classic callers: meters are single-threaded."""

    def unlock(self) -> None:
        """No-op kept for classic callers: meters are single-threaded."""

    # -- helpers ------------------------------------------------------------

    def newMeter(self) -> MultiFileHelper:
        """Create a per-file meter bound to this batch."""
        meter = self.helperclass(self)
        self.meters.append(meter)
        return meter

    def removeMeter(self, meter: MultiFileHelper) -> None:
        """Forget a per-file meter (normally after it ended or failed)."""
        self.meters.remove(meter)
        self._not_in_progress(meter)

    def _check(self, meter: MultiFileHelper) -> None:
        if meter not in self.meters:
            raise ValueError("attempt to use orphaned meter")

    def _not_in_progress(self, meter: MultiFileHelper) -> None:
        """Take ``meter`` off the running files, if it is there."""
        if meter in self.in_progress_meters:
            self.in_progress_meters.remove(meter)
            self.open_files -= 1

    # Called by helpers only.

    def start_meter(self, meter: MultiFileHelper, now: float) -> None:
        """A helper started (or restarted) its file."""
        self._check(meter)
        if meter in self.in_progress_meters:
            self._lost_size += meter._restart_amount
        else:
            self.in_progress_meters.append(meter)
            self.open_files += 1
        self._do_start_meter(meter, now)

    def _do_start_meter(self, meter: MultiFileHelper, now: float) -> None:
        """Hook: a file started."""

    def update_meter(self, meter: MultiFileHelper, now: float) -> None:
        """A helper made progress; redraws at most every ``update_period``."""
        self._check(meter)
        if _throttled(self._last_redraw, now, self.update_period):
            return
        self._last_redraw = now
        self.re.update(self._transferred(), now)
        self.last_update_time = now
        self._do_update_meter(meter, now)

    def _do_update_meter(self, meter: MultiFileHelper, now: float) -> None:
        """Hook: redraw the batch status (already throttled)."""

    def end_meter(self, meter: MultiFileHelper, now: float) -> None:
        """A helper finished its file successfully."""
        self._check(meter)
        self._not_in_progress(meter)
        self.finished_files += 1
        self.finished_file_size += meter.last_amount_read
        self._do_end_meter(meter, now)

    def _do_end_meter(self, meter: MultiFileHelper, now: float) -> None:
        """Hook: a file finished."""

    def failure_meter(self, meter: MultiFileHelper, message: object, now: float) -> None:
        """A helper's file failed with ``message``."""
        self._check(meter)
        self._not_in_progress(meter)
        self.failed_files += 1
        self._lost_size += meter.last_amount_read
        if meter.size and self.failed_size is not None:
            self.failed_size += meter.size
        else:
            self.failed_size = None
        self._do_failure_meter(meter, message, now)

    def _do_failure_meter(self, meter: MultiFileHelper, message: object, now: float) -> None:
        """Hook: a file failed."""

    def message_meter(self, meter: MultiFileHelper, message: object) -> None:
        """Hook: a helper passed a free-form message."""

    # -- internals ----------------------------------------------------------

    def _amount_read(self) -> int:
        """Bytes of finished files plus what running files have read so far."""
        total = self.finished_file_size
        for m in self.in_progress_meters:
            total += m.last_amount_read
        return total

    def _transferred(self) -> int:
        """All bytes moved, including by failed or restarted attempts (for the rate)."""
        return self._amount_read() + self._lost_size


class TextMultiFileMeter(_WidthMixin, MultiFileMeter):
    """A text meter for a batch: one status line redrawn in place, plus a line
    per finished or failed file and a summary at the end.

    ``width`` (None = detect) overrides the terminal width, e.g. for tests.
    """

    def __init__(self, fo: TextIO | None = None, threaded: bool = True) -> None:
        MultiFileMeter.__init__(self, None, threaded)
        self.fo = sys.stderr if fo is None or isinstance(fo, bool) else fo
        self.width: int | None = None
        self.index = 0
        self.index_time = 0.0
        self._status_shown = False

    def _files_label(self, done: int) -> str:
        """``(done/total)``, or ``(done/?)`` when the number of files is unknown."""
        total = "?" if self.numfiles is None else str(self.numfiles)
        return f"({done}/{total})"

    def _active_meter(self, fallback: MultiFileHelper, now: float) -> MultiFileHelper:
        """One running file to name in the status line, changing every second."""
        active = self.in_progress_meters
        if not active:
            return fallback
        if now >= self.index_time + 1.0 or now < self.index_time:
            self.index_time = now
            self.index += 1
        if self.index >= len(active):
            self.index = 0
        return active[self.index]

    def _do_update_meter(self, meter: MultiFileHelper, now: float) -> None:
        cols = self._columns()
        width = self._line_width()
        use_hours = cols > 80
        shown = self._active_meter(meter, now)
        done = self._amount_read()
        total = self.re.total
        rate = self.re.average_rate()
        parts = [(0, self._files_label(self.finished_files) + " "), (0, _NAME)]
        frac: float | None = None
        if total and total > 0:
            frac = _ratio(done, total)
            if rate:
                eta: float | None = _ratio(max(total - done, 0), rate)
            else:
                eta = None
            parts += [
                (1, f" {_percent(frac):3d}%"),
                (0, _BAR),
                (4, _format_rate(rate)),
                (2, f" | {format_number(done):>5}B"),
                (5, f"/{format_number(total)}B"),
                (3, f"  {format_time(eta, use_hours)} ETA"),
            ]
        else:
            parts += [
                (3, _format_rate(rate)),
                (2, f" | {format_number(done):>5}B"),
                (4, "  " + format_time(self.re.elapsed_time(), use_hours)),
            ]
        line = _layout(width, parts, _label(shown), frac)
        _emit(self.fo, "\r" + line + "\r")
        self._status_shown = True

    def _print_line(self, text: str) -> None:
        """Print a permanent line over the status line; the next update redraws it."""
        width = self._line_width()
        if _cells(text) < width:
            text = _fit(text, width)
        _emit(self.fo, "\r" + text + "\n")
        self._status_shown = False
        self._last_redraw = None

    def _do_end_meter(self, meter: MultiFileHelper, now: float) -> None:
        head = self._files_label(self.finished_files) + " "
        line, _ = self._end_line(meter, meter.last_amount_read, head)
        self._print_line(line)

    def _do_failure_meter(self, meter: MultiFileHelper, message: object, now: float) -> None:
        if message is None:
            lines: list[str] = []
        elif isinstance(message, str):
            lines = message.splitlines()
        elif isinstance(message, (list, tuple)):
            lines = [str(m) for m in message]
        else:
            lines = str(message).splitlines()
        head = "%s FAILED" % (_label(meter) or "?")
        if lines and lines[0]:
            head += "  " + lines[0]
        self._print_line(head)
        for extra in lines[1:]:
            _emit(self.fo, "  " + extra + "\n")

    def message_meter(self, meter: MultiFileHelper, message: object) -> None:
        """Print ``message`` as given on a line of its own."""
        self._print_line(str(message))

    def _do_end(self, now: float) -> None:
        started = now if self.start_time is None else self.start_time
        elapsed = max(now - started, 0.0)
        size = self.finished_file_size
        rate = _ratio(size, elapsed) if elapsed > 0 else None
        count = self.finished_files
        rate_text = "--- " if rate is None else format_number(rate)
        plural = "" if count == 1 else "s"
        spent = format_time(elapsed, self._columns() > 80)
        summary = (f"Total: {count} file{plural}, {format_number(size)}B in {spent}"
                   f" ({rate_text}B/s)")
        if self.failed_files:
            summary += f", {self.failed_files} failed"
        if self._status_shown:
            _emit(self.fo, "\r" + " " * self._line_width() + "\r")
        self._status_shown = False
        _emit(self.fo, summary + "\n")


# ---------------------------------------------------------------------------
# rate estimation

def _ratio(num: float, den: float) -> float:
    """``num / den`` as a float, infinite instead of OverflowError for huge ints."""
    try:
        return num / den
    except OverflowError:
        return math.inf if (num > 0) == (den > 0) else -math.inf


class RateEstimator:
    """Estimate a transfer's rate with a temporal rolling average.

    Each new sample's weight is ``time_diff / timescale`` (at most 1), so the
    average follows irregular update intervals smoothly and fully renews
    itself after ``timescale`` seconds.
    """

    def __init__(self, timescale: float = 5.0) -> None:
        self.timescale = timescale
        self.total: int | None = None
        self.start_time: float | None = None
        self.last_update_time: float | None = None
        self.last_amount_read = 0
        self.ave_rate: float | None = None
        self._ref_time: float | None = None  # sample start: time and amount
        self._ref_amount = 0
        self._primed = False  # whether _ref_amount is a real reading

    def start(self, total: int | None = None, now: float | None = None) -> None:
        """Begin estimating for a transfer of ``total`` bytes (None if unknown)."""
        if now is None:
            now = time.time()
        self.total = total
        self.start_time = now
        self.last_update_time = now
        self.last_amount_read = 0
        self.ave_rate = None
        self._ref_time = now
        self._ref_amount = 0
        self._primed = False

    def update(self, amount_read: int, now: float | None = None) -> None:
        """Fold in that ``amount_read`` bytes have been read by ``now``."""
        if now is None:
            now = time.time()
        if self.start_time is None:
            self.start(self.total, now)
        if self.last_update_time is None or now > self.last_update_time:
            self.last_update_time = now
        if amount_read <= 0 or amount_read < self.last_amount_read:
            # A new or restarted transfer (libcurl reports headers, then 0,
            # then the body): forget the average and start over from here.
            self.ave_rate = None
            self._ref_time = now
            self._ref_amount = amount_read
            self._primed = amount_read > 0
        elif not self._primed:
            # The first reading may be a resume offset, not transferred data:
            # measure from here (the time before it was latency anyway).
            self._ref_time = now
            self._ref_amount = amount_read
            self._primed = True
        else:
            ref_time = now if self._ref_time is None else self._ref_time
            time_diff = now - ref_time
            if time_diff < 0:  # the clock went backwards: restart the sample
                self._ref_time = now
                self._ref_amount = amount_read
            elif time_diff > 0:
                recent = _ratio(amount_read - self._ref_amount, time_diff)
                if self.ave_rate is None:
                    self.ave_rate = recent
                else:
                    eps = time_diff / self.timescale if self.timescale > 0 else 1.0
                    eps = min(eps, 1.0)
                    self.ave_rate = eps * recent + (1 - eps) * self.ave_rate
                if not math.isfinite(self.ave_rate):  # absurd input: no estimate
                    self.ave_rate = None
                self._ref_time = now
                self._ref_amount = amount_read
            # time_diff == 0: keep accumulating bytes into the current sample
        self.last_amount_read = amount_read

    def average_rate(self) -> float | None:
        """The smoothed rate in bytes per second, or None while unknown."""
        return self.ave_rate

    def elapsed_time(self) -> float:
        """Seconds from the start to the most recent update."""
        if self.start_time is None or self.last_update_time is None:
            return 0.0
        return max(self.last_update_time - self.start_time, 0.0)

    def remaining_time(self) -> float | None:
        """Estimated seconds to finish, or None without a rate or a total."""
        if not self.ave_rate or self.ave_rate < 0 or not self.total or self.total < 0:
            return None
        return max(_ratio(self.total - self.last_amount_read, self.ave_rate), 0.0)

    def fraction_read(self) -> float | None:
        """The fraction read so far: None if the total is unknown, 1.0 if it is 0."""
        if self.total is None or self.total < 0:
            return None
        if self.total == 0:
            return 1.0
        return _ratio(self.last_amount_read, self.total)
