"""The classic module-level names of ``urlgrabber.progress`` that programs call:
``terminal_width``, ``terminal_width_cached``, ``TerminalLine`` and
``text_progress_meter``, used the way yum, anaconda and livecd-tools use them.

Terminal sizes come from real pseudo-terminals sized with TIOCSWINSZ; the
cache is exercised with ``cache_timeout=0`` against a large timeout (or a
fake clock), never with sleeps.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import struct
import types

import pytest

fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")

from urlgrabber import progress  # noqa: E402
from urlgrabber.progress import (  # noqa: E402
    TerminalLine,
    TextMeter,
    terminal_width,
    terminal_width_cached,
    text_progress_meter,
)

# a week: long enough that a cached width cannot expire during a test
NEVER = 7 * 24 * 3600.0


def set_columns(fd: int, columns: int, rows: int = 24) -> None:
    """Resize the pseudo-terminal ``fd`` belongs to."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


@pytest.fixture
def pty():
    """A pseudo-terminal 123 columns wide: ``(master_fd, slave_fd)``."""
    master, slave = os.openpty()
    set_columns(slave, 123)
    yield master, slave
    os.close(slave)
    os.close(master)


@contextlib.contextmanager
def as_stdout(fd: int):
    """Make fd 1 a duplicate of ``fd`` while in the block (callers use the default fd=1).

    Done inside the test itself: pytest re-points fd 1 at its capture file
    between the setup and call phases, which would undo it in a fixture.
    """
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        # fd 1 was something else before: drop whatever width was cached for it
        terminal_width_cached(cache_timeout=0)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def read_until_newline(master: int) -> str:
    """What was written to the pty, up to the end line (the pty may deliver it in pieces)."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([master], [], [], 10.0)
        assert ready, "no output from the meter: %r" % data
        data += os.read(master, 65536)
    return data.decode()


# ---------------------------------------------------------------------------
# terminal_width


def test_terminal_width_reads_pty_size(pty):
    master, slave = pty
    assert terminal_width(slave) == 123
    assert terminal_width(master) == 123
    set_columns(slave, 97)
    assert terminal_width(slave) == 97  # uncached: a resize shows at once


def test_terminal_width_default_fd_is_stdout(pty):
    _, slave = pty
    with as_stdout(slave):
        # anaconda: terminal_width() with no argument
        assert terminal_width() == 123
        set_columns(slave, 61)
        assert terminal_width() == 61


def test_terminal_width_accepts_a_file_object(pty):
    _, slave = pty
    with os.fdopen(slave, "w", closefd=False) as fo:
        assert terminal_width(fo) == 123


def test_terminal_width_of_zero_columns_is_80(pty):
    _, slave = pty
    set_columns(slave, 0)
    assert terminal_width(slave) == 80


def test_terminal_width_is_not_clamped_to_a_minimum(pty):
    # classic returns any non-zero width as it is, however narrow or wide
    _, slave = pty
    set_columns(slave, 5)
    assert terminal_width(slave) == 5
    set_columns(slave, 1000)
    assert terminal_width(slave) == 1000


def test_terminal_width_of_a_non_tty_is_80(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")  # classic asks the fd only, never $COLUMNS
    r, w = os.pipe()
    try:
        assert terminal_width(r) == 80
        assert terminal_width(w) == 80
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "f", "w") as fo:
        assert terminal_width(fo.fileno()) == 80
        assert terminal_width(fo) == 80
    assert terminal_width(io.StringIO()) == 80  # no fileno() at all


def test_terminal_width_of_a_bad_fd_is_80(pty):
    _, slave = pty
    spare = os.dup(slave)
    os.close(spare)  # a number that is surely not open now
    assert terminal_width(spare) == 80
    assert terminal_width(-1) == 80
    assert terminal_width(2**40) == 80


# ---------------------------------------------------------------------------
# terminal_width_cached


def test_terminal_width_cached_sees_a_resize_only_after_the_timeout(pty):
    _, slave = pty
    assert terminal_width_cached(slave, cache_timeout=0) == 123
    set_columns(slave, 90)
    assert terminal_width_cached(slave, cache_timeout=NEVER) == 123  # still cached
    assert terminal_width(slave) == 90  # the uncached call is not fooled
    assert terminal_width_cached(slave, cache_timeout=0) == 90  # timeout 0: re-read
    set_columns(slave, 70)
    assert terminal_width_cached(slave, cache_timeout=NEVER) == 90


def test_terminal_width_cached_default_timeout_is_one_second(pty, monkeypatch):
    _, slave = pty
    clock = [1000.0]
    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0], time=lambda: clock[0])
    monkeypatch.setattr(progress, "time", fake_time)
    assert terminal_width_cached(slave, 0) == 123
    set_columns(slave, 90)
    clock[0] += 0.99
    assert terminal_width_cached(slave) == 123
    clock[0] += 0.02  # 1.01 s since the width was read
    assert terminal_width_cached(slave) == 90
    set_columns(slave, 70)
    clock[0] += 0.5  # the refresh restarted the timeout
    assert terminal_width_cached(slave) == 90


def test_terminal_width_cached_default_fd_is_stdout(pty):
    _, slave = pty
    with as_stdout(slave):
        assert terminal_width_cached() == 123
        set_columns(slave, 88)
        assert terminal_width_cached(cache_timeout=NEVER) == 123
        assert terminal_width_cached(1, 0) == 88


def test_terminal_width_cached_keeps_one_width_per_fd(pty):
    _, slave = pty
    other_master, other_slave = os.openpty()
    try:
        set_columns(other_slave, 45)
        assert terminal_width_cached(slave, cache_timeout=0) == 123
        assert terminal_width_cached(other_slave, cache_timeout=NEVER) == 45
        assert terminal_width_cached(slave, cache_timeout=NEVER) == 123
    finally:
        os.close(other_slave)
        os.close(other_master)


def test_terminal_width_cached_of_a_non_tty_is_80():
    r, w = os.pipe()
    try:
        assert terminal_width_cached(w, cache_timeout=0) == 80
        assert terminal_width_cached(w, cache_timeout=NEVER) == 80
    finally:
        os.close(r)
        os.close(w)


# ---------------------------------------------------------------------------
# TerminalLine: the expected numbers are what classic's code computes


def yum_update_line(tl: TerminalLine) -> tuple[list[str], int]:
    """Budget the fields of classic TextMeter's update line (size known) as yum does."""
    fields = [
        tl.add(" |  512 B"),
        tl.add("  00:05"),
        tl.add(" ETA "),
        tl.add(" (12%)", full_len=len(" (100%)")),
        tl.add(" 50%"),
        tl.add("  1.0 kB/s"),
    ]
    blen = 4 + tl.rest_split(8 + 8 + 4)
    fields.append(tl.add(" [%-*.*s]" % (blen, blen, "=" * (blen // 2))))
    return fields, tl.rest()


def test_terminal_line_wide_terminal_keeps_every_field(pty):
    _, slave = pty
    with as_stdout(slave):
        # yum's TextMeter: TerminalLine(8, 8+1+8), fd and cache_timeout left default
        tl = TerminalLine(min_rest=8, beg_len=8 + 1 + 8)
    assert tl._llen == 123
    assert len(tl) == 115
    fields, rest = yum_update_line(tl)
    assert all(fields)
    # 123 - 9 - 7 - 5 - 6 - 4 - 10 = 82 left; blen = 4 + (82 - 20) // 2 = 35
    assert len(fields[-1]) == 3 + 35
    assert rest == 44  # what the file name column gets
    assert not tl._fin


def test_terminal_line_narrow_terminal_drops_the_later_fields(pty):
    _, slave = pty
    set_columns(slave, 40)
    with as_stdout(slave):
        tl = TerminalLine(min_rest=8, beg_len=17)
    fields, rest = yum_update_line(tl)
    # 40 - 9 - 7 - 5 = 19 left; ' (12%)' needs 7 of the 11 above min_rest and
    # uses 6: 13 left; ' 50%' leaves 9; the rate (10) does not fit in 9 - 8,
    # and the bar after it is refused too
    assert fields == [" |  512 B", "  00:05", " ETA ", " (12%)", " 50%", "", ""]
    assert rest == 9
    assert tl._fin
    assert tl.add("x") == ""  # once an add failed, every later one fails too
    assert tl.rest() == 9


def test_terminal_line_full_len_reserves_room_but_uses_the_element_length():
    tl = TerminalLine(min_rest=0, beg_len=20, fd=-1, cache_timeout=0)
    assert tl.rest() == 80  # not a terminal: 80, more than beg_len
    tl._llen = 10
    assert tl.add("abc", full_len=10) == "abc"  # exactly fits: 10 is not < 10
    assert tl.rest() == 7
    assert tl.add("ab", full_len=8) == ""
    assert tl._fin
    assert tl.rest() == 7


def test_terminal_line_beg_len_is_the_least_width(pty):
    _, slave = pty
    set_columns(slave, 10)
    with as_stdout(slave):
        tl = TerminalLine(8, 8 + 1 + 8)
        assert tl._llen == 17
        assert len(tl) == 9
        assert tl.add(" |  512 B") == " |  512 B"  # 9 chars: just fits above min_rest
        assert tl.rest() == 8
        assert tl.add(" ") == ""
        # beg_len defaults to min_rest
        tl = TerminalLine(min_rest=30)
        assert tl._llen == 30
        assert len(tl) == 0


def test_terminal_line_rest_split(pty):
    _, slave = pty
    with as_stdout(slave):
        tl = TerminalLine()
    assert tl.rest() == 123
    assert tl.rest_split(20) == 51  # (123 - 20) / 2 rounded down: an int, usable in '%*s'
    assert isinstance(tl.rest_split(20), int)
    assert tl.rest_split(3, elements=4) == 30
    assert tl.rest_split(0, 1) == tl.rest()
    assert tl.rest_split(123) == 0
    assert tl.rest_split(124) == 0  # less than fixed left: 0, never negative
    assert "%-*s|" % (tl.rest_split(113), "ab") == "ab   |"


def test_terminal_line_uses_its_fd_and_cache_timeout(pty):
    _, slave = pty
    assert TerminalLine(fd=slave, cache_timeout=0).rest() == 123
    set_columns(slave, 60)
    assert TerminalLine(fd=slave, cache_timeout=NEVER).rest() == 123
    assert TerminalLine(fd=slave, cache_timeout=0).rest() == 60
    assert terminal_width_cached(slave, NEVER) == 60  # it refreshed the shared cache


def test_terminal_line_min_rest_above_width_adds_nothing():
    # classic raised ValueError from len() here; we report 0 room and add nothing
    tl = TerminalLine(min_rest=100, beg_len=10, fd=-1, cache_timeout=0)
    assert tl.rest() == 80
    assert len(tl) == 0
    assert tl.add("") == ""
    assert tl.add("x") == ""
    assert tl.rest() == 80


# ---------------------------------------------------------------------------
# text_progress_meter


def test_text_progress_meter_is_text_meter():
    assert text_progress_meter is TextMeter
    for name in ("terminal_width", "terminal_width_cached", "TerminalLine", "text_progress_meter"):
        assert name in progress.__all__


def test_text_progress_meter_writes_progress_to_a_file_object(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    fo = io.StringIO()
    meter = text_progress_meter(fo)  # classic: TextMeter(fo=sys.stderr), positional
    meter.start(filename="/tmp/foo.rpm", url="http://example.org/foo.rpm",
                basename="foo.rpm", size=10240, now=0.0)
    meter.update(5120, now=1.0)
    mid = fo.getvalue()
    assert mid.startswith("\r") and mid.endswith("\r") and "\n" not in mid
    assert "foo.rpm" in mid and " 50%" in mid and "5.0 kB" in mid
    meter.end(10240, now=2.0)
    last = fo.getvalue()[len(mid):]
    assert last.endswith("\n") and last.count("\n") == 1
    assert "foo.rpm" in last and " 10 kB" in last and "00:02" in last


def test_text_progress_meter_on_a_terminal_fills_its_width(pty):
    master, slave = pty
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # no \n -> \r\n translation: read back what was written
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    with os.fdopen(slave, "w", closefd=False) as fo:
        meter = text_progress_meter(fo=fo)
        meter.start(basename="bar.rpm", size=1000, now=0.0)
        meter.update(250, now=1.0)
        meter.end(1000, now=2.0)
    out = read_until_newline(master)
    lines = [s for s in out.replace("\n", "\r").split("\r") if s]
    assert len(lines) == 2
    assert all(len(s) == 122 for s in lines)  # the 123-column pty, less one so it never wraps
    assert lines[0].startswith("bar.rpm") and " 25%" in lines[0]
