"""Progress meters: output content, redraw throttling and robustness.

Every meter is driven with explicit ``now`` values and an ``io.StringIO``
output, so the tests neither sleep nor depend on the real terminal.
"""

from __future__ import annotations

import io
import math
import os
import re
import unicodedata

import pytest

from urlgrabber import progress
from urlgrabber.progress import (
    BaseMeter,
    MultiFileHelper,
    MultiFileMeter,
    RateEstimator,
    TextMeter,
    TextMultiFileMeter,
    format_number,
    format_time,
)


def cells(text: str) -> int:
    """Terminal cells of ``text`` (wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def screens(out: str) -> list[str]:
    """The non-empty segments between carriage returns and newlines."""
    return [s for s in out.replace("\n", "\r").split("\r") if s]


def text_meter(width: int = 80) -> tuple[TextMeter, io.StringIO]:
    fo = io.StringIO()
    meter = TextMeter(fo=fo)
    meter.width = width
    return meter, fo


class CountingMeter(BaseMeter):
    """Records the hook calls, to test the base class's bookkeeping."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def _do_start(self, now):
        self.calls.append(("start", now))

    def _do_update(self, amount_read, now):
        self.calls.append(("update", amount_read, now))

    def _do_end(self, amount_read, now):
        self.calls.append(("end", amount_read, now))


@pytest.fixture(autouse=True)
def no_batch_total():
    """Keep TextMeter's module-level batch total from leaking between tests."""
    progress.text_meter_total_size(0)
    yield
    progress.text_meter_total_size(0)


# ---------------------------------------------------------------------------
# formatting


@pytest.mark.parametrize(("number", "expected"), [
    (0, "0 "),
    (1, "1 "),
    (999, "999 "),
    (1000, "1.0 k"),
    (1023, "1.0 k"),
    (1024, "1.0 k"),
    (1536, "1.5 k"),
    (10180, "9.9 k"),
    (10240, "10 k"),
    (12345, "12 k"),
    (1024 * 999, "999 k"),
    (1024 * 1000, "1.0 M"),
    (5 * 1024 ** 3, "5.0 G"),
    (1024 ** 8, "1.0 Y"),
    (0.0, "0.0 "),
    (1.5, "1.5 "),
    (9.94, "9.9 "),
    (9.96, "10 "),
    (999.4, "1.0 k"),
    (None, "0.0 "),
])
def test_format_number_classic_table(number, expected):
    assert format_number(number) == expected


def test_format_number_si_and_space():
    assert format_number(1000, SI=1) == "1.0 k"
    assert format_number(2_500_000, SI=1) == "2.5 M"
    assert format_number(999, SI=1) == "999 "
    assert format_number(2048, space="") == "2.0k"


def classic_format_number(number, SI=0, space=" "):
    """Classic urlgrabber's progress.format_number, verbatim but for style.

    The oracle for non-negative input, where the classic code is well defined."""
    symbols = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"]
    step = 1000.0 if SI else 1024.0
    thresh = 999
    depth = 0
    max_depth = len(symbols) - 1
    while number > thresh and depth < max_depth:
        depth = depth + 1
        number = number / step
    if isinstance(number, int):
        fmt = "%i%s%s"
    elif number < 9.95:
        fmt = "%.1f%s%s"
    else:
        fmt = "%.0f%s%s"
    return fmt % (float(number or 0), space, symbols[depth])


# A number (or inf/nan), one space, then at most one unit prefix.
NUMBER_SHAPE = re.compile(r"-?(?:\d+(?:\.\d)?|inf|nan) [kMGTPEZY]?\Z")
# Largest magnitude that still fits the Y prefix; beyond it the digits grow.
IN_RANGE = 999 * 1024 ** 8
IN_RANGE_SI = 999 * 1000 ** 8


@pytest.mark.parametrize(("number", "expected"), [
    (-1, "-1 "),
    (-5000, None),  # classic: "-5000 " (it never scales a negative)
    (-1e30, None),  # classic: "-1000000000000000019884624838656.0 "
    (10 ** 30, "827181 Y"),
    (10 ** 400, "inf Y"),  # classic: OverflowError
    (1e308, "%.0f Y" % (1e308 / 1024 ** 8)),
    (math.inf, "inf Y"),
    (-math.inf, None),  # classic: "-inf "
    (math.nan, "nan "),
], ids=["-1", "-5000", "-1e30", "1e30", "10**400", "1e308", "inf", "-inf", "nan"])
def test_format_number_never_fails(number, expected):
    out = format_number(number)
    assert NUMBER_SHAPE.match(out), out
    if expected is not None:
        assert out == expected
    if isinstance(number, int) and number >= 0 and number < 10 ** 300:
        assert out == classic_format_number(number)
    if abs(number) <= IN_RANGE:  # false for inf and nan
        assert len(out) <= len("-999 Y")


def _sweep():
    """Integers and floats around every unit boundary and the 9.95 switch."""
    numbers: list[float] = [0, 0.0, 0.04, 0.05, 0.5, 9.94, 9.95, 9.96, 10.0, 99.5, 998.9, 999.0]
    for depth in range(9):
        unit = 1024 ** depth
        for k in (1, 9.94, 9.95, 9.96, 10, 99.5, 100, 999, 999.4, 999.6, 1000, 1023, 1024):
            base = k * unit
            numbers += [base, int(base), int(base) - 1, int(base) + 1]
    return [n for n in numbers if n >= 0]  # no set: it would merge 999 and 999.0


@pytest.mark.parametrize("SI", [0, 1])
def test_format_number_matches_classic_and_stays_short(SI):
    for number in _sweep():
        out = format_number(number, SI=SI)
        assert out == classic_format_number(number, SI=SI), number
        assert NUMBER_SHAPE.match(out), (number, out)
        if number <= (IN_RANGE_SI if SI else IN_RANGE):
            assert len(out) <= len("999 Y"), (number, out)
        assert format_number(number, SI=SI, space="") == out.replace(" ", "", 1)


def test_format_number_beyond_yotta_keeps_yotta():
    assert format_number(1024 ** 9).endswith(" Y")
    assert format_number(10 ** 400) == "inf Y"


@pytest.mark.parametrize(("seconds", "use_hours", "expected"), [
    (0, 0, "00:00"),
    (0.9, 0, "00:00"),
    (59.99, 0, "00:59"),
    (61, 0, "01:01"),
    (3599, 0, "59:59"),
    (3600, 0, "60:00"),
    (6000, 0, "100:00"),
    (3661, 1, "01:01:01"),
    (59, 1, "00:00:59"),
    (360000, 1, "100:00:00"),
    (None, 0, "--:--"),
    (-1, 0, "--:--"),
    (math.inf, 0, "--:--"),
    (math.nan, 0, "--:--"),
    (None, 1, "--:--:--"),
    (math.inf, 1, "--:--:--"),
])
def test_format_time_table(seconds, use_hours, expected):
    assert format_time(seconds, use_hours) == expected


# ---------------------------------------------------------------------------
# RateEstimator


def test_rate_estimator_temporal_rolling_average():
    re = RateEstimator(timescale=5.0)
    re.start(total=10_000, now=100.0)
    re.update(1000, now=101.0)  # first reading: a possible resume offset
    assert re.average_rate() is None
    re.update(2000, now=102.0)  # 1000 B in 1 s
    assert re.average_rate() == pytest.approx(1000.0)
    re.update(4000, now=103.0)  # 2000 B/s, weight 1/5
    assert re.average_rate() == pytest.approx(0.2 * 2000 + 0.8 * 1000)
    re.update(4000 + 3000 * 10, now=113.0)  # 3000 B/s over >= timescale: replaces
    assert re.average_rate() == pytest.approx(3000.0)
    assert re.elapsed_time() == pytest.approx(13.0)


def test_rate_estimator_fraction_and_remaining():
    re = RateEstimator()
    re.start(total=1000, now=0.0)
    assert re.fraction_read() == 0.0
    assert re.remaining_time() is None  # no rate yet
    re.update(100, now=1.0)
    re.update(300, now=2.0)
    assert re.fraction_read() == pytest.approx(0.3)
    assert re.remaining_time() == pytest.approx(700 / 200)


def test_rate_estimator_unknown_and_zero_total():
    re = RateEstimator()
    re.start(total=None, now=0.0)
    re.update(100, now=1.0)
    re.update(200, now=2.0)
    assert re.fraction_read() is None
    assert re.remaining_time() is None
    re.start(total=0, now=0.0)
    assert re.fraction_read() == 1.0


def test_rate_estimator_zero_and_negative_time_deltas():
    re = RateEstimator()
    re.start(total=None, now=10.0)
    re.update(100, now=10.0)
    re.update(200, now=10.0)  # no time passed: no division by zero
    assert re.average_rate() is None
    re.update(300, now=11.0)  # the bytes of the zero-time update still count
    assert re.average_rate() == pytest.approx(200.0)
    re.update(400, now=5.0)  # clock went backwards: no negative rate
    assert re.average_rate() == pytest.approx(200.0)
    assert re.elapsed_time() >= 0
    re.update(500, now=6.0)
    assert re.average_rate() > 0


def test_rate_estimator_restart_when_amount_goes_back():
    re = RateEstimator()
    re.start(total=None, now=0.0)
    re.update(100, now=1.0)
    re.update(300, now=2.0)
    assert re.average_rate() is not None
    re.update(0, now=3.0)  # libcurl reports headers, then starts the body at 0
    assert re.average_rate() is None
    assert re.last_amount_read == 0


def test_rate_estimator_update_without_start():
    re = RateEstimator()
    re.update(100, now=1.0)
    re.update(200, now=2.0)
    assert re.average_rate() == pytest.approx(100.0)
    assert RateEstimator().elapsed_time() == 0.0


# ---------------------------------------------------------------------------
# BaseMeter


def test_base_meter_records_start_attributes():
    m = CountingMeter()
    m.start(filename="/tmp/f", url="http://h/f", basename="f", size=10, now=5.0, text="T")
    assert (m.filename, m.url, m.basename, m.size, m.text) == ("/tmp/f", "http://h/f", "f", 10, "T")
    assert m.start_time == 5.0 and m.last_update_time == 5.0 and m.last_amount_read == 0
    assert m.fsize == "10 B"
    assert m.calls == [("start", 5.0)]


def test_base_meter_throttles_updates():
    m = CountingMeter()
    m.start(size=1000, now=0.0)
    for i in range(1, 10):  # nine updates within 0.1 s
        m.update(i * 10, now=i * 0.01)
    assert [c for c in m.calls if c[0] == "update"] == [("update", 10, 0.01)]
    m.update(500, now=0.11)  # a full period after the drawn one
    assert m.calls[-1] == ("update", 500, 0.11)
    assert m.last_amount_read == 500 and m.last_update_time == 0.11
    m.end(1000, now=0.12)  # end is never throttled
    assert m.calls[-1] == ("end", 1000, 0.12)


def test_base_meter_update_period_is_about_a_tenth():
    assert BaseMeter().update_period == pytest.approx(0.1)
    assert MultiFileMeter().update_period == pytest.approx(0.1)


def test_base_meter_clock_going_backwards_does_not_freeze_updates():
    m = CountingMeter()
    m.start(now=100.0)
    m.update(1, now=100.0)
    m.update(2, now=50.0)
    assert m.calls[-1] == ("update", 2, 50.0)


def test_base_meter_defaults_now_to_the_clock():
    m = CountingMeter()
    m.start(size=10)
    assert m.start_time is not None and abs(m.start_time - __import__("time").time()) < 60


# ---------------------------------------------------------------------------
# TextMeter


def test_text_meter_update_line_has_name_percent_bar_and_amount():
    m, fo = text_meter(80)
    m.start(basename="file.rpm", size=1_000_000, now=0.0)
    m.update(250_000, now=1.0)
    m.update(500_000, now=2.0)
    line = screens(fo.getvalue())[-1]
    assert line.startswith("file.rpm")
    assert " 50%" in line
    assert "[" in line and "]" in line
    assert "488 kB" in line  # 500_000 bytes
    assert "kB/s" in line
    assert "ETA" in line
    assert len(line) == 79  # one column spare, so the terminal never wraps
    assert fo.getvalue().startswith("\r") and fo.getvalue().endswith("\r")


def test_text_meter_prefers_text_over_basename():
    m, fo = text_meter(80)
    m.start(basename="base.rpm", text="(1/3): nice name", size=100, now=0.0)
    m.update(50, now=1.0)
    assert "(1/3): nice name" in fo.getvalue()
    assert "base.rpm" not in fo.getvalue()


def test_text_meter_falls_back_to_filename_or_url():
    m, fo = text_meter(80)
    m.start(url="http://example.com/pub/pkg.rpm", size=100, now=0.0)
    m.update(50, now=1.0)
    assert "pkg.rpm" in fo.getvalue()


def test_text_meter_many_updates_one_redraw():
    m, fo = text_meter(80)
    m.start(basename="f", size=10_000, now=0.0)
    for i in range(1, 100):
        m.update(i * 10, now=i * 0.001)
    assert len(screens(fo.getvalue())) == 1
    m.update(5000, now=0.2)
    assert len(screens(fo.getvalue())) == 2


def test_text_meter_end_line():
    m, fo = text_meter(80)
    m.start(basename="done.rpm", size=2048, now=0.0)
    m.update(1024, now=1.0)
    m.end(2048, now=2.0)
    out = fo.getvalue()
    assert out.endswith("\n")
    last = out.split("\r")[-1]
    assert last.startswith("done.rpm")
    assert "2.0 kB" in last
    assert "00:02" in last
    assert "!!!" not in last and "..." not in last
    assert len(last.rstrip("\n")) == 79  # padded: clears the longer status line


def test_text_meter_end_marks_short_and_long_reads():
    m, fo = text_meter(80)
    m.start(basename="short", size=2048, now=0.0)
    m.end(1000, now=1.0)
    assert "..." in fo.getvalue().split("\r")[-1]
    m, fo = text_meter(80)
    m.start(basename="long", size=2048, now=0.0)
    m.end(4000, now=1.0)
    assert "!!!" in fo.getvalue().split("\r")[-1]


def test_text_meter_unknown_size_shows_amount_and_elapsed():
    m, fo = text_meter(80)
    m.start(basename="stream", size=None, now=0.0)
    m.update(1000, now=1.0)
    m.update(3000, now=3.0)
    line = screens(fo.getvalue())[-1]
    assert "stream" in line and "2.9 kB" in line and "00:03" in line
    assert "%" not in line and "ETA" not in line and "[" not in line
    m.end(3000, now=4.0)
    assert fo.getvalue().endswith("\n")


def test_text_meter_zero_size():
    m, fo = text_meter(80)
    m.start(basename="empty", size=0, now=0.0)
    m.update(0, now=1.0)
    m.end(0, now=1.0)
    assert "100%" in fo.getvalue()
    assert fo.getvalue().endswith("\n")


def test_text_meter_zero_elapsed_time():
    m, fo = text_meter(80)
    m.start(basename="instant", size=100, now=5.0)
    m.update(100, now=5.0)
    m.end(100, now=5.0)
    out = fo.getvalue()
    assert "--- B/s" in out  # rate unknown, no division by zero
    assert "00:00" in out


def test_text_meter_amount_beyond_size_is_clamped():
    m, fo = text_meter(80)
    m.start(basename="big", size=100, now=0.0)
    m.update(50, now=1.0)
    m.update(500, now=2.0)
    line = screens(fo.getvalue())[-1]
    assert "100%" in line
    assert len(line) == 79


@pytest.mark.parametrize("amount", [-5, 10 ** 30, 10 ** 400])
def test_text_meter_odd_amounts(amount):
    m, fo = text_meter(80)
    m.start(basename="odd", size=1000, now=0.0)
    m.update(10, now=1.0)
    m.update(amount, now=2.0)
    m.end(amount, now=3.0)
    assert all(cells(s) <= 79 for s in screens(fo.getvalue()))


@pytest.mark.parametrize("width", [1, 5, 10, 20, 30, 40, 60, 80, 200])
@pytest.mark.parametrize("size", [None, 0, 10 ** 9])
def test_text_meter_fits_any_width(width, size):
    m, fo = text_meter(width)
    m.start(basename="a-rather-long-package-name-1.2.3-4.fc40.x86_64.rpm", size=size, now=0.0)
    for i in range(1, 6):
        m.update(i * 123_456, now=float(i))
    m.end(5 * 123_456, now=6.0)
    out = fo.getvalue()
    assert out.endswith("\n")
    for line in screens(out):
        assert 1 <= len(line) <= max(width - 1, 1)


def test_text_meter_narrow_width_keeps_the_essentials():
    m, fo = text_meter(20)
    m.start(basename="package.rpm", size=1000, now=0.0)
    m.update(100, now=1.0)
    m.update(420, now=2.0)
    line = screens(fo.getvalue())[-1]
    assert len(line) == 19
    assert line.startswith("package")
    assert "42%" in line


def test_text_meter_wide_terminal_uses_hours():
    m, fo = text_meter(120)
    m.start(basename="f", size=None, now=0.0)
    m.update(10, now=1.0)
    m.update(20, now=3725.0)
    assert "01:02:05" in fo.getvalue()


def test_text_meter_non_ascii_names():
    m, fo = text_meter(40)
    name = "日本語のファイル名-パッケージ.rpm"
    m.start(basename=name, size=1000, now=0.0)
    m.update(100, now=1.0)
    m.update(500, now=2.0)
    m.end(1000, now=3.0)
    out = fo.getvalue()
    assert "日本語" in out
    for line in screens(out):
        assert cells(line) <= 39


def test_text_meter_control_characters_in_name_do_not_break_the_line():
    m, fo = text_meter(80)
    m.start(basename="evil\nname\r\x1b[2J", size=100, now=0.0)
    m.update(50, now=1.0)
    m.end(100, now=2.0)
    out = fo.getvalue()
    assert out.count("\n") == 1
    assert "\x1b" not in out
    assert "evil?name?" in out


def test_text_meter_survives_ascii_only_stream():
    raw = io.BytesIO()
    fo = io.TextIOWrapper(raw, encoding="ascii")
    m = TextMeter(fo=fo)
    m.width = 60
    m.start(basename="naïve-日本.rpm", size=100, now=0.0)
    m.update(50, now=1.0)
    m.end(100, now=2.0)
    fo.flush()
    assert b"na?ve" in raw.getvalue()


@pytest.mark.parametrize("kind", ["closed", "broken-pipe"])
def test_text_meter_survives_closed_stream(kind):
    """Output that went away (closed: ValueError; reader gone: BrokenPipeError)
    neither raises from start/update/end nor stops the meter's bookkeeping."""
    if kind == "closed":
        fo = io.StringIO()
        fo.close()
    else:
        r, w = os.pipe()
        os.close(r)
        fo = os.fdopen(w, "w")
    progress.text_meter_total_size(200)
    try:
        m = TextMeter(fo=fo)
        m.width = 60
        m.start(basename="f", size=100, now=0.0)
        assert m.start_time == 0.0
        m.update(50, now=1.0)
        assert (m.last_amount_read, m.last_update_time) == (50, 1.0)
        assert m.re.fraction_read() == 0.5
        m.end(100, now=2.0)
        assert (m.last_amount_read, m.last_update_time) == (100, 2.0)
        assert m.re.fraction_read() == 1.0
        assert m.re.elapsed_time() == 2.0
    finally:
        if kind != "closed":
            try:
                fo.close()
            except OSError:  # the buffered line cannot be flushed to the gone reader
                pass
    # end() still counted the finished file towards the batch total:
    # a following meter on a working stream shows (100 + 50) / 200.
    m2, fo2 = text_meter(100)
    m2.start(basename="g", size=100, now=3.0)
    m2.update(50, now=4.0)
    assert "(75%)" in fo2.getvalue()


def test_text_meter_update_before_start_does_not_crash():
    m, fo = text_meter(80)
    m.update(100, now=1.0)
    m.end(100, now=2.0)
    assert fo.getvalue().endswith("\n")


def test_text_meter_detects_width_without_override(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    fo = io.StringIO()
    m = TextMeter(fo=fo)
    m.start(basename="f", size=100, now=0.0)
    m.update(50, now=1.0)
    assert len(screens(fo.getvalue())[-1]) == 49


def test_text_meter_batch_total_percent():
    progress.text_meter_total_size(4000)
    m, fo = text_meter(100)
    m.start(basename="one", size=1000, now=0.0)
    m.update(500, now=1.0)
    assert "(12%)" in fo.getvalue()
    m.end(1000, now=2.0)
    m.start(basename="two", size=3000, now=3.0)
    m.update(1000, now=4.0)
    assert "(50%)" in fo.getvalue()


def test_text_meter_default_output_is_stderr(capsys):
    m = TextMeter()
    m.width = 60
    m.start(basename="to-stderr", size=10, now=0.0)
    m.end(10, now=1.0)
    assert "to-stderr" in capsys.readouterr().err


def test_classic_alias():
    assert progress.text_progress_meter is TextMeter


# ---------------------------------------------------------------------------
# MultiFileMeter


class RecordingMultiMeter(MultiFileMeter):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    def _do_start(self, now):
        self.events.append(("start", now))

    def _do_end(self, now):
        self.events.append(("end", now))

    def _do_start_meter(self, meter, now):
        self.events.append(("start_meter", meter.basename))

    def _do_update_meter(self, meter, now):
        self.events.append(("update_meter", meter.basename, now))

    def _do_end_meter(self, meter, now):
        self.events.append(("end_meter", meter.basename))

    def _do_failure_meter(self, meter, message, now):
        self.events.append(("failure_meter", meter.basename, message))


def test_multi_meter_counts_files_and_bytes():
    mm = RecordingMultiMeter()
    mm.start(numfiles=3, total_size=3000, now=0.0)
    a, b, c = (mm.newMeter() for _ in range(3))
    assert isinstance(a, MultiFileHelper) and a.master is mm
    for name, h in zip("abc", (a, b, c)):
        h.start(basename=name, size=1000, now=0.0)
    assert mm.open_files == 3
    a.update(400, now=0.5)
    b.update(300, now=0.5)
    assert mm._amount_read() == 700
    a.end(1000, now=1.0)
    b.failure("boom", now=1.0)
    assert (mm.finished_files, mm.failed_files, mm.open_files) == (1, 1, 1)
    assert mm.finished_file_size == 1000
    assert mm.failed_size == 1000
    c.update(600, now=1.5)
    c.end(1000, now=2.0)
    mm.end(now=2.5)
    assert (mm.finished_files, mm.failed_files, mm.open_files) == (2, 1, 0)
    assert mm.finished_file_size == 2000
    assert mm.re_total is mm.re
    assert mm.re_total.last_amount_read >= 2000
    kinds = [e[0] for e in mm.events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert ("failure_meter", "b", "boom") in mm.events
    assert kinds.count("end_meter") == 2 and kinds.count("start_meter") == 3


def test_multi_meter_failed_size_unknown_when_a_failed_file_had_no_size():
    mm = MultiFileMeter()
    mm.start(2, None, now=0.0)
    h = mm.newMeter()
    h.start(basename="x", size=None, now=0.0)
    h.failure("nope", now=1.0)
    assert mm.failed_size is None


def test_multi_meter_update_is_throttled_across_files():
    mm = RecordingMultiMeter()
    mm.start(numfiles=2, total_size=2000, now=0.0)
    a, b = mm.newMeter(), mm.newMeter()
    a.start(basename="a", size=1000, now=0.0)
    b.start(basename="b", size=1000, now=0.0)
    for i in range(1, 10):  # both files report within 0.1 s
        a.update(i * 10, now=i * 0.01)
        b.update(i * 10, now=i * 0.01 + 0.001)
    assert len([e for e in mm.events if e[0] == "update_meter"]) == 1
    a.update(500, now=0.2)
    assert len([e for e in mm.events if e[0] == "update_meter"]) == 2


def test_multi_meter_orphaned_meter_is_rejected():
    mm = MultiFileMeter()
    mm.start(1, 10, now=0.0)
    h = mm.newMeter()
    mm.removeMeter(h)
    with pytest.raises(ValueError):
        h.start(basename="x", size=10, now=0.0)


def test_multi_meter_remove_running_meter_closes_it():
    mm = MultiFileMeter()
    mm.start(1, 10, now=0.0)
    h = mm.newMeter()
    h.start(basename="x", size=10, now=0.0)
    assert mm.open_files == 1
    mm.removeMeter(h)
    assert mm.open_files == 0 and not mm.meters and not mm.in_progress_meters


def test_multi_meter_restarted_file_keeps_rate_but_not_progress():
    mm = MultiFileMeter()
    mm.start(1, 1000, now=0.0)
    h = mm.newMeter()
    h.start(basename="x", size=1000, now=0.0)
    h.update(100, now=0.5)
    h.update(400, now=1.0)
    h.start(basename="x", size=1000, now=1.1)  # a retry from scratch
    assert mm.open_files == 1
    assert mm._amount_read() == 0
    assert mm._transferred() == 400


def test_multi_meter_helpers_started_before_the_batch():
    mm = MultiFileMeter()
    h = mm.newMeter()
    h.start(basename="x", size=10, now=0.0)
    mm.start(1, 10, now=0.0)
    assert mm.open_files == 1
    h.end(10, now=1.0)
    assert mm.open_files == 0 and mm.finished_files == 1


def test_multi_meter_classic_positional_threaded_argument():
    mm = MultiFileMeter(False)
    assert mm.fo is None
    mm.lock()
    mm.unlock()


def test_multi_meter_end_without_start():
    mm = MultiFileMeter()
    mm.end(now=1.0)
    tm = TextMultiFileMeter(fo=io.StringIO())
    tm.end(now=1.0)
    assert "0 files" in tm.fo.getvalue()


# ---------------------------------------------------------------------------
# TextMultiFileMeter


def text_multi(width: int = 100) -> tuple[TextMultiFileMeter, io.StringIO]:
    fo = io.StringIO()
    mm = TextMultiFileMeter(fo=fo)
    mm.width = width
    return mm, fo


def test_text_multi_status_line():
    mm, fo = text_multi(100)
    mm.start(numfiles=4, total_size=4 * 1024 * 1024, now=0.0)
    h = mm.newMeter()
    h.start(basename="first.rpm", size=1024 * 1024, now=0.0)
    h.update(100_000, now=1.0)
    h.update(1024 * 1024 // 2, now=2.0)
    line = screens(fo.getvalue())[-1]
    assert line.startswith("(0/4) first.rpm")
    assert " 12%" in line  # 0.5 MiB of 4 MiB
    assert "512 kB/4.0 MB" in line
    assert "B/s" in line and "ETA" in line
    assert len(line) == 99


def test_text_multi_finished_and_failed_lines_and_summary():
    mm, fo = text_multi(100)
    mm.start(numfiles=3, total_size=3000, now=0.0)
    a, b, c = mm.newMeter(), mm.newMeter(), mm.newMeter()
    a.start(basename="a.rpm", size=1000, now=0.0)
    b.start(basename="b.rpm", size=1000, now=0.0)
    c.start(basename="c.rpm", size=1000, now=0.0)
    a.update(500, now=0.5)
    a.end(1000, now=1.0)
    mm.removeMeter(a)
    b.failure("[Errno 14] HTTP Error 404 - Not Found", now=1.5)
    mm.removeMeter(b)
    c.update(800, now=1.8)
    c.end(1000, now=2.0)
    mm.removeMeter(c)
    mm.end(now=4.0)
    lines = fo.getvalue().replace("\r", "\n").splitlines()
    finished = [ln for ln in lines if ln.startswith("(") and "B/s |" in ln and "%" not in ln]
    assert [ln.split()[0:2] for ln in finished] == [["(1/3)", "a.rpm"], ["(2/3)", "c.rpm"]]
    failed = [ln for ln in lines if "FAILED" in ln]
    assert len(failed) == 1
    assert "b.rpm" in failed[0]
    assert "[Errno 14] HTTP Error 404 - Not Found" in failed[0]
    summary = fo.getvalue().rstrip("\n").split("\n")[-1]
    assert "2 files" in summary
    assert "2.0 kB" in summary  # 2000 bytes
    assert "00:04" in summary
    assert "500 B/s" in summary
    assert "1 failed" in summary
    assert fo.getvalue().endswith("\n")


def test_text_multi_failure_message_forms():
    mm, fo = text_multi(80)
    mm.start(numfiles=3, total_size=None, now=0.0)
    for message in (None, "line one\nline two", ValueError("bad value")):
        h = mm.newMeter()
        h.start(basename="f", size=None, now=0.0)
        h.failure(message, now=1.0)
    out = fo.getvalue()
    assert out.count("FAILED") == 3
    assert "line one" in out and "  line two\n" in out
    assert "bad value" in out


def test_text_multi_message_printed_as_given():
    mm, fo = text_multi(80)
    mm.start(numfiles=1, total_size=10, now=0.0)
    h = mm.newMeter()
    h.start(basename="f", size=10, now=0.0)
    h.message("mirror switched to http://b/")
    assert "mirror switched to http://b/" in fo.getvalue()


def test_text_multi_redraws_at_most_ten_times_a_second():
    mm, fo = text_multi(100)
    mm.start(numfiles=5, total_size=5_000_000, now=0.0)
    helpers = [mm.newMeter() for _ in range(5)]
    for i, h in enumerate(helpers):
        h.start(basename=f"f{i}", size=1_000_000, now=0.0)
    t = 0.0
    amount = 0
    while t < 1.0:  # 5 files x 1000 reports a second each
        t += 0.001
        amount += 1000
        for h in helpers:
            h.update(amount, now=t)
    assert len(screens(fo.getvalue())) <= 11


def test_text_multi_unknown_total_and_numfiles():
    mm, fo = text_multi(80)
    mm.start(numfiles=None, total_size=None, now=0.0)
    h = mm.newMeter()
    h.start(basename="stream", size=None, now=0.0)
    h.update(1000, now=1.0)
    h.update(5000, now=2.0)
    line = screens(fo.getvalue())[-1]
    assert line.startswith("(0/?) stream")
    assert "4.9 kB" in line and "00:02" in line and "%" not in line


def test_text_multi_cycles_through_active_files():
    mm, fo = text_multi(80)
    mm.start(numfiles=2, total_size=2000, now=0.0)
    a, b = mm.newMeter(), mm.newMeter()
    a.start(basename="alpha", size=1000, now=0.0)
    b.start(basename="beta", size=1000, now=0.0)
    t = 0.0
    for _ in range(40):
        t += 0.11
        a.update(int(t * 100), now=t)
    out = fo.getvalue()
    assert "alpha" in out and "beta" in out


@pytest.mark.parametrize("width", [1, 10, 20, 40, 80, 200])
def test_text_multi_fits_any_width(width):
    mm, fo = text_multi(width)
    mm.start(numfiles=12, total_size=12 * 10 ** 6, now=0.0)
    h = mm.newMeter()
    h.start(basename="some-long-name-日本-1.0.rpm", size=10 ** 6, now=0.0)
    h.update(10_000, now=1.0)
    h.update(200_000, now=2.0)
    h.end(10 ** 6, now=3.0)
    for line in screens(fo.getvalue().rsplit("\n", 2)[0]):
        assert cells(line) <= max(width - 1, 1)
