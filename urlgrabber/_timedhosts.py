"""Per-host download speed and failure statistics, kept across runs.

Mirror choice uses these numbers to prefer hosts that were fast and healthy.
They are advice, not data: a missing, unreadable or damaged statistics file
must never stop a download, so loading and saving never raise.

The file is text with one host per line, ``host speed failures timestamp``
(speed in bytes per second, timestamp in seconds since the epoch), the
format of the classic urlgrabber ``timedhosts`` file.  The host is everything
before the last three fields, so it may itself contain spaces.
"""

from __future__ import annotations

import math
import os
import stat
import time

__all__ = ["TimedHosts"]

# Transfers smaller than this measure latency more than bandwidth: they count
# as a success but do not change the speed estimate.
MIN_BYTES = 32 * 1024
# A transfer shorter than this is a less reliable reading and weighs less.
_RELIABLE_SECONDS = 0.5
# A new reading's weight relative to a fresh estimate (10:1 smoothing).
_SAMPLE_WEIGHT = 0.1
# Each recorded failure halves the estimate (classic urlgrabber's 2**-fail).
_FAILURE_FACTOR = 0.5
# Larger files are not statistics files: read no more than this.
_MAX_FILE_BYTES = 16 * 1024 * 1024
_MAX_FAILURES = 1_000_000


class TimedHosts:
    """Per-host download speed and failure statistics, optionally persisted to a file."""

    def __init__(self, path: str | os.PathLike[str] | None = None,
                 half_life: float = 30 * 24 * 3600,
                 default_speed: float = 1e6, min_bytes: int = MIN_BYTES) -> None:
        self.path = None if path is None else os.fspath(path)
        self.half_life = half_life
        self.default_speed = default_speed
        self.min_bytes = min_bytes
        # host -> (speed, failures, timestamp); speed 0 means "not measured yet"
        self._hosts: dict[str, tuple[float, int, float]] = {}
        self.load()

    def __len__(self) -> int:
        return len(self._hosts)

    def __contains__(self, host: object) -> bool:
        return host in self._hosts

    # -- statistics ----------------------------------------------------------

    def _decay(self, age: float) -> float:
        """Weight left to a reading ``age`` seconds old: halves every ``half_life``."""
        if not age > 0:  # also NaN: a reading from the future counts as fresh
            return 1.0
        if not self.half_life > 0:
            return 0.0
        return 2.0 ** (-age / self.half_life)

    def update(self, host: str, nbytes: int, seconds: float, error: bool = False,
               now: float | None = None) -> None:
        """Record one finished transfer from ``host``.

        A success folds the observed speed into the estimate (unless the
        transfer was too small or too quick to measure) and clears the
        failure count; an error adds one failure.  Both refresh the timestamp.
        """
        if now is None:
            now = time.time()
        speed, failures, stamp = self._hosts.get(host, (0.0, 0, now))
        if error:
            failures = min(failures + 1, _MAX_FAILURES)
        else:
            failures = 0
            if seconds > 0 and nbytes >= self.min_bytes:
                observed = nbytes / seconds
                if math.isfinite(observed) and observed > 0:
                    if speed <= 0:
                        speed = observed
                    else:
                        # older estimates count less; short readings count less
                        k_old = self._decay(now - stamp)
                        k_new = min(seconds / _RELIABLE_SECONDS, 1.0) * _SAMPLE_WEIGHT
                        speed = (k_old * speed + k_new * observed) / (k_old + k_new)
        self._hosts[host] = (speed, failures, now)

    def speed(self, host: str, now: float | None = None) -> float:
        """Estimated bytes per second from ``host``.

        Failures halve the estimate each; with age the estimate (penalty
        included) drifts back to ``default_speed``, so old news is forgotten.
        An unknown host gets ``default_speed``.
        """
        entry = self._hosts.get(host)
        if entry is None:
            return self.default_speed
        if now is None:
            now = time.time()
        speed, failures, stamp = entry
        base = speed if speed > 0 else self.default_speed
        base *= _FAILURE_FACTOR ** failures
        k = self._decay(now - stamp)
        return k * base + (1.0 - k) * self.default_speed

    def failures(self, host: str) -> int:
        """Consecutive failures recorded for ``host`` since its last success."""
        entry = self._hosts.get(host)
        return 0 if entry is None else entry[1]

    def known(self, host: str) -> bool:
        """Whether anything was ever recorded for ``host``."""
        return host in self._hosts

    # -- persistence ---------------------------------------------------------

    def load(self) -> None:
        """Replace the statistics with the file's; anything unusable is skipped.

        A missing, unreadable or non-regular file gives empty statistics;
        malformed lines are dropped and the valid ones kept.
        """
        self._hosts = self._read() if self.path is not None else {}

    def _read(self) -> dict[str, tuple[float, int, float]]:
        """Parse the statistics file; empty on any problem reading it."""
        assert self.path is not None
        try:
            # Only a regular file: a FIFO would block, a device never end.
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                return {}
            with open(self.path, "rb") as f:
                data = f.read(_MAX_FILE_BYTES)
        except (OSError, ValueError):
            return {}
        return _parse(data)

    def save(self) -> None:
        """Write the statistics atomically: a temporary file, then ``os.replace``.

        Entries that another process saved meanwhile are merged in (the newer
        reading of a host wins).  Any failure, such as an unwritable
        directory, leaves the old file as it was and is ignored.
        """
        if self.path is None:
            return
        for host, entry in self._read().items():
            mine = self._hosts.get(host)
            if mine is None or entry[2] > mine[2]:
                self._hosts[host] = entry
        lines = []
        for host in sorted(self._hosts):
            if not _writable_host(host):
                continue
            speed, failures, stamp = self._hosts[host]
            lines.append(f"{host} {round(speed)} {failures} {math.floor(stamp)}\n")
        _atomic_write(self.path, "".join(lines))


def _writable_host(host: object) -> bool:
    """Whether ``host`` survives a round trip through one line of the file."""
    return isinstance(host, str) and bool(host) and host == host.strip() and host.isprintable()


def _parse(data: bytes) -> dict[str, tuple[float, int, float]]:
    """Parse file contents, keeping the valid lines (the newest line of a host wins)."""
    hosts: dict[str, tuple[float, int, float]] = {}
    text = data.decode("utf-8", "replace")
    for line in text.splitlines():
        fields = line.rsplit(None, 3)
        if len(fields) != 4:
            continue
        host = fields[0].strip()
        if not host or not host.isprintable() or "\ufffd" in host:
            continue  # binary garbage, not a host
        try:
            speed = float(fields[1])
            failures_f = float(fields[2])
            stamp = float(fields[3])
        except ValueError:
            continue
        if not (math.isfinite(speed) and math.isfinite(failures_f) and math.isfinite(stamp)):
            continue
        if speed < 0 or failures_f < 0 or failures_f != int(failures_f):
            continue
        failures = min(int(failures_f), _MAX_FAILURES)
        old = hosts.get(host)
        if old is None or stamp >= old[2]:
            hosts[host] = (speed, failures, stamp)
    return hosts


def _atomic_write(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` all at once; silently give up on any OS error."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o644
    import tempfile  # only when saving: shutil, bz2, lzma... cost ~6 ms at start-up

    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp", dir=directory)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace",
                       newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
