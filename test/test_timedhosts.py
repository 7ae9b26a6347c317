"""Per-host speed and failure statistics: estimates, decay and a file that
is written atomically and read tolerantly."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from util import permission_bits_apply

from urlgrabber import _timedhosts
from urlgrabber._timedhosts import TimedHosts

DAY = 24 * 3600.0
HOST = "http://127.0.0.1:8080"
MB = 1_000_000


def test_unknown_host_gets_default_speed():
    th = TimedHosts(default_speed=123.0)
    assert th.speed("nowhere", now=0.0) == 123.0
    assert th.failures("nowhere") == 0
    assert not th.known("nowhere")
    assert len(th) == 0


def test_first_measurement_sets_the_speed():
    th = TimedHosts()
    th.update(HOST, 4 * MB, 2.0, now=1000.0)
    assert th.known(HOST) and HOST in th
    assert th.speed(HOST, now=1000.0) == pytest.approx(2 * MB)
    assert th.failures(HOST) == 0


def test_later_measurements_are_smoothed():
    th = TimedHosts()
    th.update(HOST, 10 * MB, 10.0, now=1000.0)  # 1 MB/s
    th.update(HOST, 40 * MB, 10.0, now=1000.0)  # 4 MB/s, weighs 1/10 of the estimate
    speed = th.speed(HOST, now=1000.0)
    assert speed == pytest.approx((1 * MB + 0.1 * 4 * MB) / 1.1)
    assert 1 * MB < speed < 4 * MB


def test_short_readings_weigh_less():
    long_run, short_run = TimedHosts(), TimedHosts()
    for th, seconds in ((long_run, 5.0), (short_run, 0.05)):
        th.update(HOST, 10 * MB, 10.0, now=0.0)  # 1 MB/s
        th.update(HOST, int(8 * MB * seconds), seconds, now=0.0)  # 8 MB/s
    assert short_run.speed(HOST, now=0.0) < long_run.speed(HOST, now=0.0)
    assert short_run.speed(HOST, now=0.0) > 1 * MB


def test_old_estimate_counts_less_against_a_new_reading():
    th = TimedHosts(half_life=DAY)
    th.update(HOST, 10 * MB, 10.0, now=0.0)  # 1 MB/s
    th.update(HOST, 40 * MB, 10.0, now=20 * DAY)  # a new reading after 20 half-lives
    assert th.speed(HOST, now=20 * DAY) == pytest.approx(4 * MB, rel=1e-4)


@pytest.mark.parametrize(("nbytes", "seconds"),
                         [(100, 0.001), (10 * MB, 0.0), (10 * MB, -1.0), (0, 1.0)])
def test_unmeasurable_transfers_count_as_success_but_keep_the_speed(nbytes, seconds):
    th = TimedHosts(default_speed=5e5)
    th.update(HOST, 2 * MB, 1.0, now=0.0)
    th.update(HOST, 0, 0.0, error=True, now=0.0)
    assert th.failures(HOST) == 1
    th.update(HOST, nbytes, seconds, now=0.0)
    assert th.failures(HOST) == 0
    assert th.speed(HOST, now=0.0) == pytest.approx(2 * MB)


def test_small_first_transfer_makes_host_known_at_default_speed():
    th = TimedHosts(default_speed=5e5)
    th.update(HOST, 500, 0.01, now=0.0)
    assert th.known(HOST)
    assert th.speed(HOST, now=0.0) == 5e5
    th.update(HOST, 3 * MB, 1.0, now=1.0)  # the first real measurement is taken as is
    assert th.speed(HOST, now=1.0) == pytest.approx(3 * MB)


def test_min_bytes_is_adjustable():
    th = TimedHosts(min_bytes=0)
    th.update(HOST, 500, 1.0, now=0.0)
    assert th.speed(HOST, now=0.0) == pytest.approx(500.0)


def test_failures_count_up_penalise_and_reset():
    th = TimedHosts()
    th.update(HOST, 8 * MB, 1.0, now=0.0)
    speeds = [th.speed(HOST, now=0.0)]
    for n in range(1, 4):
        th.update(HOST, 0, 0.0, error=True, now=0.0)
        assert th.failures(HOST) == n
        speeds.append(th.speed(HOST, now=0.0))
    assert speeds == sorted(speeds, reverse=True)
    assert speeds[3] == pytest.approx(speeds[0] / 8)
    th.update(HOST, 8 * MB, 1.0, now=0.0)
    assert th.failures(HOST) == 0
    assert th.speed(HOST, now=0.0) == pytest.approx(8 * MB)


def test_failure_of_an_unknown_host():
    th = TimedHosts(default_speed=1e6)
    th.update(HOST, 0, 0.0, error=True, now=0.0)
    assert th.known(HOST)
    assert th.failures(HOST) == 1
    assert th.speed(HOST, now=0.0) < 1e6


def test_many_failures_do_not_break_the_estimate():
    th = TimedHosts()
    for _ in range(5000):
        th.update(HOST, 0, 0.0, error=True, now=0.0)
    assert th.speed(HOST, now=0.0) >= 0.0
    assert th.speed(HOST, now=1e12) == pytest.approx(th.default_speed)


def test_estimate_decays_toward_default_with_age():
    th = TimedHosts(half_life=DAY, default_speed=1e6)
    th.update(HOST, 9 * MB, 1.0, now=0.0)
    assert th.speed(HOST, now=0.0) == pytest.approx(9e6)
    assert th.speed(HOST, now=DAY) == pytest.approx(0.5 * 9e6 + 0.5 * 1e6)
    assert th.speed(HOST, now=2 * DAY) == pytest.approx(0.25 * 9e6 + 0.75 * 1e6)
    assert th.speed(HOST, now=1000 * DAY) == pytest.approx(1e6)


def test_failure_penalty_is_forgotten_with_age():
    th = TimedHosts(half_life=DAY, default_speed=1e6)
    th.update(HOST, 0, 0.0, error=True, now=0.0)
    th.update(HOST, 0, 0.0, error=True, now=0.0)
    assert th.speed(HOST, now=0.0) == pytest.approx(0.25e6)
    assert th.speed(HOST, now=DAY) == pytest.approx(0.5 * 0.25e6 + 0.5 * 1e6)
    assert th.failures(HOST) == 2  # the count itself stays until a success


def test_timestamp_in_the_future_counts_as_fresh():
    th = TimedHosts(half_life=DAY)
    th.update(HOST, 9 * MB, 1.0, now=10 * DAY)
    assert th.speed(HOST, now=0.0) == pytest.approx(9e6)


def test_zero_half_life_means_no_memory():
    th = TimedHosts(half_life=0, default_speed=1e6)
    th.update(HOST, 9 * MB, 1.0, now=0.0)
    assert th.speed(HOST, now=0.0) == pytest.approx(9e6)
    assert th.speed(HOST, now=1.0) == pytest.approx(1e6)


def test_hosts_are_independent_and_keys_verbatim():
    th = TimedHosts()
    th.update("http://a:80", 2 * MB, 1.0, now=0.0)
    th.update("http://A:80", 0, 0.0, error=True, now=0.0)
    assert th.failures("http://a:80") == 0
    assert th.failures("http://A:80") == 1
    assert th.speed("http://a:80", now=0.0) == pytest.approx(2 * MB)


def test_now_defaults_to_the_clock():
    th = TimedHosts(half_life=DAY)
    th.update(HOST, 9 * MB, 1.0)
    assert th.speed(HOST) == pytest.approx(9e6, rel=1e-3)


# ---------------------------------------------------------------------------
# persistence


def test_no_path_means_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    th = TimedHosts()
    th.update(HOST, 2 * MB, 1.0, now=0.0)
    th.save()
    th.load()
    assert list(tmp_path.iterdir()) == []
    assert not th.known(HOST)


def test_save_and_load_round_trip(tmp_path):
    path = tmp_path / "timedhosts"
    th = TimedHosts(str(path), half_life=DAY)
    th.update(HOST, 3 * MB, 1.0, now=5000.0)
    th.update("ftp://mirror.example.org", 0, 0.0, error=True, now=6000.0)
    th.update("ftp://mirror.example.org", 0, 0.0, error=True, now=6000.0)
    th.update("file:///srv/local mirror", 2 * MB, 2.0, now=7000.0)
    th.save()

    again = TimedHosts(str(path), half_life=DAY)
    assert len(again) == 3
    for host in (HOST, "ftp://mirror.example.org", "file:///srv/local mirror"):
        assert again.known(host)
        assert again.failures(host) == th.failures(host)
        assert again.speed(host, now=8000.0) == pytest.approx(th.speed(host, now=8000.0), rel=1e-6)


def test_file_format_is_classic(tmp_path):
    path = tmp_path / "timedhosts"
    th = TimedHosts(str(path))
    th.update(HOST, 3 * MB, 1.0, now=1234.75)
    th.update("other", 0, 0.0, error=True, now=99.0)
    th.save()
    lines = path.read_text().splitlines()
    assert lines == ["http://127.0.0.1:8080 3000000 0 1234", "other 0 1 99"]


def test_load_reads_classic_file(tmp_path):
    path = tmp_path / "timedhosts"
    path.write_text("mirror.example.com 250000 2 1700000000\n"
                    "fast.example.net 9000000 0 1700000000\n")
    th = TimedHosts(str(path), half_life=DAY, default_speed=1e6)
    assert th.failures("mirror.example.com") == 2
    assert th.speed("fast.example.net", now=1_700_000_000) == pytest.approx(9e6)
    assert th.speed("mirror.example.com", now=1_700_000_000) == pytest.approx(250000 / 4)


def test_constructor_loads_and_load_replaces(tmp_path):
    path = tmp_path / "timedhosts"
    path.write_text("a 100 0 10\n")
    th = TimedHosts(str(path))
    assert th.known("a")
    th.update("b", 0, 0.0, error=True, now=0.0)
    th.load()
    assert th.known("a") and not th.known("b")


def test_pathlike_is_accepted(tmp_path):
    th = TimedHosts(tmp_path / "timedhosts")
    th.update(HOST, 2 * MB, 1.0, now=0.0)
    th.save()
    assert (tmp_path / "timedhosts").exists()


def test_atomic_save_leaves_no_temp_files(tmp_path):
    path = tmp_path / "timedhosts"
    th = TimedHosts(str(path))
    for i in range(50):
        th.update(f"http://h{i}", 2 * MB, 1.0, now=float(i))
        th.save()
    assert [p.name for p in tmp_path.iterdir()] == ["timedhosts"]
    assert len(path.read_text().splitlines()) == 50


def test_save_replaces_via_rename(tmp_path, monkeypatch):
    path = tmp_path / "timedhosts"
    path.write_text("old 1 0 1\n")
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((os.path.dirname(src), os.fspath(dst)))
        assert os.path.exists(src)
        assert "old" in Path(dst).read_text()  # the old file is intact until now
        real_replace(src, dst)

    monkeypatch.setattr(_timedhosts.os, "replace", spy)
    th = TimedHosts(str(path))
    th.update("new", 2 * MB, 1.0, now=2.0)
    th.save()
    assert replaced == [(str(tmp_path), str(path))]
    assert "new" in path.read_text()


def test_failed_write_keeps_old_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "timedhosts"
    path.write_text("old 1 0 1\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_timedhosts.os, "replace", broken_replace)
    th = TimedHosts(str(path))
    th.update("new", 2 * MB, 1.0, now=2.0)
    th.save()  # must not raise
    assert path.read_text() == "old 1 0 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["timedhosts"]


def test_save_keeps_file_mode(tmp_path):
    path = tmp_path / "timedhosts"
    path.write_text("a 1 0 1\n")
    path.chmod(0o640)
    th = TimedHosts(str(path))
    th.update("b", 2 * MB, 1.0, now=2.0)
    th.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_save_merges_entries_saved_by_another_process(tmp_path):
    path = tmp_path / "timedhosts"
    mine = TimedHosts(str(path))
    theirs = TimedHosts(str(path))
    mine.update("shared", 2 * MB, 1.0, now=100.0)
    theirs.update("shared", 0, 0.0, error=True, now=200.0)  # newer news
    theirs.update("only-theirs", 3 * MB, 1.0, now=150.0)
    theirs.save()
    mine.update("only-mine", 4 * MB, 1.0, now=120.0)
    mine.save()
    final = TimedHosts(str(path))
    assert all(final.known(h) for h in ("shared", "only-theirs", "only-mine"))
    assert final.failures("shared") == 1


def test_hosts_that_cannot_be_written_are_skipped(tmp_path):
    path = tmp_path / "timedhosts"
    th = TimedHosts(str(path))
    for bad in ("", "  padded  ", "two\nlines", "tab\there", "sep\u2028arator"):
        th.update(bad, 2 * MB, 1.0, now=1.0)
    th.update("good host", 2 * MB, 1.0, now=1.0)
    th.update("unicode-ħost", 2 * MB, 1.0, now=1.0)
    th.save()
    again = TimedHosts(str(path))
    assert len(again) == 2
    assert again.known("good host") and again.known("unicode-ħost")


def test_missing_file_starts_empty(tmp_path):
    th = TimedHosts(str(tmp_path / "absent"))
    assert len(th) == 0


def test_binary_garbage_is_ignored(tmp_path):
    path = tmp_path / "timedhosts"
    path.write_bytes(bytes(range(256)) * 40 + b"\xff\xfe\x00 1 2 3\n")
    th = TimedHosts(str(path))
    assert len(th) == 0
    th.update(HOST, 2 * MB, 1.0, now=0.0)
    th.save()
    assert TimedHosts(str(path)).known(HOST)


def test_partially_valid_file_keeps_valid_lines(tmp_path):
    path = tmp_path / "timedhosts"
    path.write_bytes(
        b"good.example 1000 0 100\n"
        b"too few fields\n"
        b"\n"
        b"bad.speed abc 0 100\n"
        b"neg.speed -5 0 100\n"
        b"neg.fail 1000 -1 100\n"
        b"frac.fail 1000 1.5 100\n"
        b"nan.speed nan 0 100\n"
        b"inf.stamp 1000 0 inf\n"
        b"\xff\xfe 1000 0 100\n"
        b"   spaced.example   2000   1   200   \r\n"
        b"float.example 1500.5 2 300.25\n"
        b"dup.example 1 0 50\n"
        b"dup.example 2 0 60\n"
        b"dup.example 3 0 40\n"
        b"host with spaces 4000 0 100\n"
        b"truncated.example 1000 0"
    )
    th = TimedHosts(str(path), default_speed=1e6)
    valid = ("good.example", "spaced.example", "float.example", "dup.example",
             "host with spaces")
    assert all(th.known(h) for h in valid)
    assert len(th) == len(valid)
    assert th.failures("spaced.example") == 1
    assert th.speed("dup.example", now=60) == pytest.approx(2.0)  # the newest line wins
    assert th.failures("float.example") == 2


def test_directory_at_path_is_ignored(tmp_path):
    path = tmp_path / "timedhosts"
    path.mkdir()
    th = TimedHosts(str(path))
    assert len(th) == 0
    th.update(HOST, 2 * MB, 1.0, now=0.0)
    th.save()  # cannot replace a directory: ignored
    assert path.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["timedhosts"]


def test_fifo_at_path_does_not_block(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "timedhosts"
    os.mkfifo(path)
    th = TimedHosts(str(path))
    assert len(th) == 0


def test_unreadable_file_is_ignored(tmp_path, monkeypatch):
    path = tmp_path / "timedhosts"
    path.write_text("a 100 0 10\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_timedhosts, "open", denied, raising=False)
    th = TimedHosts(str(path))
    assert len(th) == 0


def test_unreadable_file_mode_is_ignored(tmp_path):
    """A mode 0000 file: open() fails with EACCES.  As root the test drops the
    capabilities that override mode bits (permission_bits_apply)."""
    path = tmp_path / "timedhosts"
    path.write_text("a 100 0 10\n")
    assert len(TimedHosts(str(path))) == 1  # readable, the line counts
    path.chmod(0)
    try:
        with permission_bits_apply():
            with pytest.raises(PermissionError):  # the state under test is reached
                path.open("rb").close()
            assert len(TimedHosts(str(path))) == 0
    finally:
        path.chmod(0o600)


def test_save_to_missing_directory_does_not_raise(tmp_path):
    th = TimedHosts(str(tmp_path / "no" / "such" / "dir" / "timedhosts"))
    th.update(HOST, 2 * MB, 1.0, now=0.0)
    th.save()
    assert not (tmp_path / "no").exists()


def test_save_to_unwritable_directory_does_not_raise(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    th = TimedHosts(str(locked / "timedhosts"))
    th.update(HOST, 2 * MB, 1.0, now=0.0)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Root may write anywhere, so also simulate the refusal directly.
    monkeypatch.setattr(tempfile, "mkstemp", denied)  # _timedhosts imports it when saving
    th.save()
    monkeypatch.undo()
    locked.chmod(0o500)
    try:
        th.save()
    finally:
        locked.chmod(0o700)
    leftovers = [p.name for p in locked.iterdir() if p.name != "timedhosts"]
    assert leftovers == []


def test_save_under_a_file_does_not_raise(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    th = TimedHosts(str(blocker / "timedhosts"))
    th.update(HOST, 2 * MB, 1.0, now=0.0)
    th.save()
    assert blocker.read_text() == "x"
