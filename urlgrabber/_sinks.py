"""Where a transfer's bytes go: a file (atomically committed), memory, or a stream."""

from __future__ import annotations

import collections
import itertools
import os

from .errors import URLGrabError, redact

_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_temp_names = itertools.count()
_pid = os.getpid()


def _new_pid() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pid)


def _create_temp(dest: str) -> tuple[int, str]:
    """Create a new hidden ``.<name>.<pid>.<n>.part`` beside ``dest`` (mode per umask)."""
    cut = dest.rfind("/") + 1
    prefix = f"{dest[:cut]}.{dest[cut:]}.{_pid}."
    while True:
        path = f"{prefix}{next(_temp_names)}.part"
        try:
            return os.open(path, _TEMP_FLAGS, 0o666), path
        except FileExistsError:
            continue


class FileSink:
    """Writes a download beside ``dest`` and renames it over ``dest`` on commit.

    With ``inplace`` (``reget``) it appends to ``dest`` itself, on purpose:
    resuming the existing file is what reget asks for.  It works on a raw
    descriptor: no file object, no buffering, one system call per operation.
    """

    kind = "file"
    write_error: OSError | None = None  # what a direct (lean) write hit, if anything

    def __init__(self, dest: str, url: str, inplace: bool = False) -> None:
        self.dest = dest
        self.url = url
        self.inplace = inplace
        self.path: str | None = None
        self.fd: int | None = None

    def open(self) -> int:
        """Open (or reopen) the target; return how many bytes it already holds."""
        if self.fd is not None:
            return os.lseek(self.fd, 0, os.SEEK_END)
        try:
            if self.path is None and not self.inplace:
                self.fd, self.path = _create_temp(self.dest)
                return 0
            if self.path is None:
                self.path = self.dest
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            return os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as e:
            raise self._write_error(e) from None

    def size(self) -> int:
        """Bytes written so far by the sequential writer."""
        return os.lseek(self.fd, 0, os.SEEK_CUR) if self.fd is not None else 0

    position = size

    def write(self, data: bytes) -> None:
        fd = self.fd
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def raw_write(self):
        """A writer for libcurl to call directly; an OSError becomes a short write."""
        fd, write = self.fd, os.write

        def write_chunk(data: bytes) -> int:
            try:
                return write(fd, data)
            except OSError as e:
                self.write_error = e
                return 0
        return write_chunk

    def write_at(self, data: bytes, offset: int) -> None:
        """Write at a fixed offset without moving the sequential position (hedges)."""
        os.pwrite(self.fd, data, offset)

    def seek_end(self) -> None:
        os.lseek(self.fd, 0, os.SEEK_END)

    def restart(self, offset: int = 0) -> None:
        """Throw away everything after ``offset`` (a resume the server did not honour)."""
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)

    def finish(self) -> str:
        """Close; return the path holding the complete body (for checkfunc)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)
        return self.path

    def commit(self, mtime: float | None = None) -> str:
        """Move the verified body to ``dest``; return ``dest``."""
        try:
            if mtime is not None and mtime > 0:
                if self.fd is not None:
                    os.utime(self.fd, (mtime, mtime))  # no path lookup in a big directory
                else:
                    os.utime(self.path, (mtime, mtime))
            self.finish()
            if not self.inplace:
                os.replace(self.path, self.dest)
        except OSError as e:
            self.discard()
            raise self._write_error(e) from None
        self.path = None
        return self.dest

    def discard(self) -> None:
        """Remove the temporary file; ``dest`` is left as it was."""
        try:
            self.finish()
        except OSError:
            pass
        if self.path and not self.inplace:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        self.path = None

    def write_failure(self) -> URLGrabError | None:
        """errno 16 for a direct write that failed (disk full, ...), if one did."""
        e = self.write_error
        if e is None:
            return None
        self.write_error = None
        return self._write_error(e)

    def _write_error(self, e: OSError) -> URLGrabError:
        return URLGrabError(16, f"Local file write error on {self.dest}: {e.strerror or e}",
                            url=redact(self.url), exception=e)


class MemorySink:
    """Collects a body in memory, for ``urlread``; ``limit`` caps its size."""

    kind = "memory"
    path = None

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.nbytes = 0

    def open(self) -> int:
        return self.nbytes

    def size(self) -> int:
        return self.nbytes

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        self.nbytes += len(data)

    def restart(self, offset: int = 0) -> None:
        data = b"".join(self.chunks)[:offset]
        self.chunks = [data] if data else []
        self.nbytes = len(data)

    def finish(self) -> None:
        return None

    def value(self) -> bytes:
        return b"".join(self.chunks)

    def commit(self, mtime: float | None = None) -> bytes:
        return self.value()

    def discard(self) -> None:
        self.chunks = []
        self.nbytes = 0


class StreamSink:
    """A bounded buffer between a running transfer and ``urlopen``'s reader.

    When it holds ``high_water`` bytes the transfer is paused, so reading a
    huge body never holds more than about that much in memory.
    """

    kind = "stream"
    path = None

    def __init__(self, high_water: int = 1 << 20) -> None:
        self.high_water = high_water
        self.buffer: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.nbytes = 0

    def open(self) -> int:
        return self.nbytes

    def size(self) -> int:
        return self.nbytes

    def full(self) -> bool:
        return self.buffered >= self.high_water

    def write(self, data: bytes) -> None:
        self.buffer.append(data)
        self.buffered += len(data)
        self.nbytes += len(data)

    def restart(self, offset: int = 0) -> None:
        delivered = self.nbytes - self.buffered
        if offset < delivered:
            # bytes already handed to the reader cannot be taken back
            raise URLGrabError(14, "the server did not honour a resume of an open stream")
        kept = b"".join(self.buffer)[:offset - delivered]
        self.buffer.clear()
        if kept:
            self.buffer.append(kept)
        self.buffered = len(kept)
        self.nbytes = offset

    def take(self, n: int) -> bytes:
        """Up to ``n`` buffered bytes (all of them when ``n`` < 0)."""
        if n < 0 or n >= self.buffered:
            data = b"".join(self.buffer)
            self.buffer.clear()
        else:
            parts = []
            got = 0
            while got < n:
                chunk = self.buffer.popleft()
                need = n - got
                if len(chunk) > need:
                    self.buffer.appendleft(chunk[need:])
                    chunk = chunk[:need]
                parts.append(chunk)
                got += len(chunk)
            data = b"".join(parts)
        self.buffered -= len(data)
        return data

    def find(self, sep: bytes) -> int:
        """Offset just past the first ``sep`` in the buffer, or -1."""
        if not self.buffer:
            return -1
        if len(self.buffer) > 1:
            joined = b"".join(self.buffer)
            self.buffer.clear()
            self.buffer.append(joined)
        i = self.buffer[0].find(sep)
        return -1 if i < 0 else i + len(sep)

    def finish(self) -> None:
        return None

    def commit(self, mtime: float | None = None) -> None:
        return None

    def discard(self) -> None:
        self.buffer.clear()
        self.buffered = 0
