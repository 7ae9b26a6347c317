"""The main job on a real example: one batch of files from several mirrors, verified.

Three local HTTP mirrors are started in this process (stdlib
``ThreadingHTTPServer`` in daemon threads), each serving the same folder of
generated files with 20 ms of latency per request; one of them answers 503 to
about 20% of requests, and a fourth mirror is a port where nothing listens.
Every file is then fetched with a ``MirrorGroup`` in one batch (one CurlMulti
loop, 4 connections per mirror, 12 in all, sha256 checked by a ``checkfunc``),
and a serial ``urlgrab`` loop over the first 50 files shows what the batch
buys.  Run it with ``urlgrabber --demo`` or ``python -m urlgrabber.demo``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import random
import socket
import sys
import tempfile
import threading
import time
from typing import Any

from ._cliutil import StatusDisplay, format_bytes, ignore_failure, run_batch, sha256_checkfunc, sha256_of
from .grabber import URLGrabber, URLGrabError
from .mirror import MirrorGroup

DELAY = 0.020            # seconds every request takes on the mirrors
FLAKY_RATE = 0.2         # share of requests the flaky mirror answers with 503
MIN_SIZE = 4 * 1024
MAX_SIZE = 64 * 1024
PER_MIRROR = 4           # connections per mirror in the batch
GLOBAL = 12              # connections over the whole batch
SERIAL_FILES = 50        # files in the serial comparison


class _Stats:
    """Requests one mirror saw (and how many it refused with 503), thread-safe."""

    def __init__(self, flaky: bool) -> None:
        self.flaky = flaky
        self.lock = threading.Lock()
        self.requests = 0
        self.refused = 0
        self.rng = random.Random()

    def arrived(self) -> bool:
        """Count a request; True when the mirror should answer 503 to it."""
        with self.lock:
            self.requests += 1
            refuse = self.flaky and self.rng.random() < FLAKY_RATE
            if refuse:
                self.refused += 1
            return refuse

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return self.requests, self.refused


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder with keep-alive, a fixed delay, and 503s on a flaky mirror."""

    protocol_version = "HTTP/1.1"
    timeout = 5  # an idle keep-alive connection ends after this many seconds
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_GET(self) -> None:
        refuse = self.server.stats.arrived()  # type: ignore[attr-defined]
        time.sleep(DELAY)
        if refuse:
            self.send_error(503, "Busy (demo: flaky mirror)")
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    """A mirror: never blocks on close and keeps client disconnects out of stderr."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _start_mirror(root: str, flaky: bool) -> tuple[_Server, _Stats]:
    """Start one mirror of ``root`` on 127.0.0.1 in a daemon thread."""
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=root))
    stats = _Stats(flaky)
    server.stats = stats  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"demo-mirror-{server.server_address[1]}", daemon=True)
    thread.start()
    return server, stats


def _dead_port() -> int:
    """A local port where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_files(root: str, count: int, rng: random.Random) -> dict[str, tuple[int, str]]:
    """Write ``count`` files of random bytes under ``root/pub``; ``{relpath: (size, sha256)}``."""
    folder = os.path.join(root, "pub")
    os.makedirs(folder, exist_ok=True)
    files = {}
    for i in range(count):
        name = f"file-{i:04d}.bin"
        data = os.urandom(rng.randint(MIN_SIZE, MAX_SIZE))
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        files[name] = (len(data), hashlib.sha256(data).hexdigest())
    return files


def _rate(files: int, seconds: float) -> float:
    return files / seconds if seconds > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every file arrived and verified, else 1."""
    parser = argparse.ArgumentParser(prog="urlgrabber --demo",
                                     description="Batch-download generated files from local mirrors.")
    parser.add_argument("--files", type=int, default=200, metavar="N",
                        help="how many files the mirrors serve (default: 200)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress meter")
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be at least 1")

    with tempfile.TemporaryDirectory(prefix="urlgrabber-demo-") as tmp:
        root = os.path.join(tmp, "mirror")
        files = make_files(root, args.files, random.Random())
        total_bytes = sum(size for size, _ in files.values())
        started = [_start_mirror(root, flaky=False), _start_mirror(root, flaky=False),
                   _start_mirror(root, flaky=True)]
        try:
            return _run(args, tmp, files, total_bytes, started)
        finally:
            for server, _ in started:
                server.shutdown()
                server.server_close()


def _run(args: argparse.Namespace, tmp: str, files: dict[str, tuple[int, str]], total_bytes: int,
         started: list[tuple[_Server, _Stats]]) -> int:
    """The batch, the serial comparison and the report."""
    bases = [f"http://127.0.0.1:{server.server_address[1]}/pub/" for server, _ in started]
    dead = f"http://127.0.0.1:{_dead_port()}/pub/"
    print(f"urlgrabber demo: {len(files)} files ({format_bytes(total_bytes)}) on 3 local mirrors "
          f"({DELAY * 1000:.0f} ms per request; the third answers 503 to ~{FLAKY_RATE:.0%} of requests) "
          f"and 1 dead mirror", flush=True)

    # -- the batch: every file, one MirrorGroup, one CurlMulti loop --------------
    out = os.path.join(tmp, "batch")
    os.makedirs(out)
    meter = None if args.quiet else StatusDisplay(sys.stderr)
    grabber = URLGrabber(retry=3, timeout=10, max_connections=PER_MIRROR, multi_progress_obj=meter)
    failed_attempts: dict[str, int] = {}

    def count_failure(obj: Any) -> None:
        failed_attempts[obj.mirror] = failed_attempts.get(obj.mirror, 0) + 1

    mirrors = [{"mirror": base, "kwargs": {"max_connections": PER_MIRROR}} for base in [dead, *bases]]
    group = MirrorGroup(grabber, mirrors, failure_callback=count_failure)
    names = sorted(files)

    def queue() -> None:
        for name in names:
            group.urlgrab(name, os.path.join(out, name), async_=True, failfunc=ignore_failure,
                          checkfunc=sha256_checkfunc(files[name][1]))

    t0 = time.monotonic()
    results = run_batch(queue, GLOBAL)
    batch_seconds = time.monotonic() - t0
    counts = [stats.snapshot() for _, stats in started]

    failures = [(name, r.exception) for name, r in zip(names, results) if not r.ok]
    bad = {name for name, _ in failures}
    for name in names:  # check what landed on disk, not only what the checkfunc saw
        path = os.path.join(out, name)
        if name not in bad and (not os.path.exists(path) or sha256_of(path) != files[name][1]):
            failures.append((name, "missing or corrupt on disk"))
    ok = len(names) - len(failures)
    got_bytes = sum(r.size for r in results if r.ok)

    # -- the same job done serially: one blocking urlgrab after another ---------
    serial_names = names[:SERIAL_FILES]
    serial_out = os.path.join(tmp, "serial")
    os.makedirs(serial_out)
    serial = URLGrabber(retry=3, timeout=10)
    t0 = time.monotonic()
    serial_ok = 0
    for name in serial_names:
        try:
            serial.urlgrab(bases[0] + name, os.path.join(serial_out, name),
                           checkfunc=sha256_checkfunc(files[name][1]))
            serial_ok += 1
        except URLGrabError as e:
            print(f"serial: {name}: {e.strerror}", file=sys.stderr)
    serial_seconds = time.monotonic() - t0

    # -- report ---------------------------------------------------------------
    batch_rate = _rate(ok, batch_seconds)
    serial_rate = _rate(serial_ok, serial_seconds)
    print(f"batch:  {ok}/{len(names)} files, {got_bytes:,} bytes in {batch_seconds:.2f} s: "
          f"{batch_rate:.1f} files/s ({GLOBAL} connections, {PER_MIRROR} per mirror)")
    print("requests per mirror in the batch:")
    labels = ["", "", f", {counts[2][1]} answered 503 (flaky)"]
    for base, (requests, _), label in zip(bases, counts, labels):
        print(f"  {base}  {requests} requests{label}")
    print(f"  {dead}  dead: {failed_attempts.get(dead, 0)} connection attempts refused")
    print(f"serial: {serial_ok}/{len(serial_names)} files in {serial_seconds:.2f} s: {serial_rate:.1f} files/s "
          f"(one blocking urlgrab after another, one mirror)")
    if serial_rate > 0:
        print(f"speed-up of the batch: {batch_rate / serial_rate:.1f}x (files/s vs files/s)")
    if failures:
        for name, exc in failures:
            message = exc.strerror if isinstance(exc, URLGrabError) else str(exc)
            print(f"FAILED {name}: {message}")
        print(f"{len(failures)} of {len(names)} files failed")
        return 1
    print(f"all {len(names)} files verified")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("urlgrabber demo: interrupted", file=sys.stderr)
        sys.exit(130)
