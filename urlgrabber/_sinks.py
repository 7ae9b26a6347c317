"""Where a transfer's bytes go: a file (atomically committed), memory, or a stream."""

from __future__ import annotations

import errno
import itertools
import os
import stat

from ._libcurl import callback
from .errors import URLGrabError, redact

try:  # (the C type itself: `import collections` costs 3-4 ms of start-up where nothing
    from _collections import deque  # else has imported it, as with Debian's pycurl unloaded)
except ImportError:  # not CPython
    from collections import deque

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_temp_names = itertools.count()
_pid = os.getpid()
_write = os.write
# (pid, descriptor) of the /proc/self/fd that unnamed files are linked through
# (_link_unnamed), read and replaced as one value: the pid says whose it is.  Kept
# open, the link names the file relative to it and the path walk skips resolving
# "self" for each file (~1 us of a ~19 us create, write, link and close on tmpfs).
# It is the directory of the process that opened it, so a forked child opens its
# own (_new_pid, and the pid check in _link_unnamed).  Like the engine's poller and
# libcurl's sockets, it must not be closed behind the library's back.
_fd_dir: tuple[int, int] | None = None


def _new_pid() -> None:
    """In a forked child: its own pid, and no descriptor of its parent's /proc/<pid>/fd."""
    global _pid, _fd_dir
    _pid = os.getpid()
    kept, _fd_dir = _fd_dir, None
    if kept is not None:
        try:
            os.close(kept[1])
        except OSError:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pid)


# A name longer than this (in bytes) is hashed in hidden sibling names, which
# add up to ~40 bytes and must stay within the usual 255-byte limit.
_LONG_NAME = 200


def _hidden(dest: str, tag: str) -> str:
    """The hidden sibling ``.<name><tag>`` of ``dest``; a very long name is hashed."""
    cut = dest.rfind("/") + 1
    name = dest[cut:]
    if len(name) > _LONG_NAME // 4 and len(os.fsencode(name)) > _LONG_NAME:
        import hashlib  # rare: not worth its import time for every process

        name = hashlib.sha1(os.fsencode(name)).hexdigest()[:24]
    return f"{dest[:cut]}.{name}{tag}"


def _claim_temp_name(dest: str, claim: Callable[[str], Any]) -> tuple[Any, str]:
    """``(claim(path), path)`` for the first new hidden ``.<name>.<pid>.<n>.part`` beside
    ``dest`` that ``claim`` can take (FileExistsError: taken already, try the next)."""
    prefix = _hidden(dest, f".{_pid}.")
    while True:
        path = f"{prefix}{next(_temp_names)}.part"
        try:
            return claim(path), path
        except FileExistsError:
            continue


def _create_temp(dest: str) -> tuple[int, str]:
    """Create a new hidden temporary file beside ``dest`` (mode per umask)."""
    return _claim_temp_name(dest, lambda path: os.open(path, _TEMP_FLAGS, 0o666))


# Linux: the body goes to an unnamed file in the destination's directory
# (O_TMPFILE), linked at ``dest`` when complete.  One system call publishes a
# new destination, with no name to look up first and none to rename, and an
# interrupted download leaves nothing at all behind.  Where it is missing (other
# systems, file systems without it, no /proc) a hidden named file is used.
_UNNAMED = getattr(os, "O_TMPFILE", 0)
_UNNAMED_FLAGS = _UNNAMED | os.O_RDWR | os.O_CLOEXEC
_REFUSED = frozenset((errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP))
# ... and a link through /proc that this system refuses although the unnamed file
# could be made (a sandbox, a security module): the bytes are copied to a named file
_LINK_REFUSED = frozenset((errno.ENOENT, errno.EXDEV, errno.EPERM, errno.EACCES, errno.EINVAL,
                           errno.ENOTDIR, errno.EOPNOTSUPP))
_unnamed_ok: bool | None = None if _UNNAMED and os.link in os.supports_dir_fd else False
_refusing_dirs: set[str] = set()  # directories whose file system has no O_TMPFILE
# opening the kept /proc/self/fd failed for want of descriptors or memory: that
# download's error, not a system without /proc
_OUT_OF_DESCRIPTORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOMEM))


def _directory(dest: str) -> str:
    head, sep, _ = dest.rpartition("/")  # (cheaper than rfind, which parses its arguments)
    return head or "/" if sep else "."


def _create_unnamed(dest: str) -> int | None:
    """An unnamed file in ``dest``'s directory (mode per umask); None where there is none."""
    global _unnamed_ok
    if _unnamed_ok is None:  # (the first time: the name is given through /proc at the end)
        try:
            _open_fd_dir()
            _unnamed_ok = True
        except OSError as e:
            if e.errno in _OUT_OF_DESCRIPTORS:
                raise  # (this download's write error; the next one asks again)
            _unnamed_ok = False  # no /proc here
    if not _unnamed_ok:
        return None
    head, sep, _ = dest.rpartition("/")  # (_directory(dest) inline: once per download)
    directory = head or "/" if sep else "."
    if directory in _refusing_dirs:
        return None
    try:
        return os.open(directory, _UNNAMED_FLAGS, 0o666)
    except OSError as e:
        if e.errno not in _REFUSED:
            raise
        if len(_refusing_dirs) < 256:
            _refusing_dirs.add(directory)
        return None


def _open_fd_dir() -> tuple[int, int]:
    """This process's /proc/self/fd, opened now unless another thread just did so:
    ``(pid, descriptor)`` (OSError where there is none)."""
    global _fd_dir
    pid = os.getpid()
    fd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    kept = _fd_dir
    if kept is not None and kept[0] == pid:  # (threads at their first downloads at once)
        os.close(fd)
        return kept
    # (one inherited through a fork that ran no fork handlers is left open, not
    # closed: another thread may be linking through it at this moment)
    kept = _fd_dir = (pid, fd)
    return kept


# fd -> its name in /proc/self/fd: descriptor numbers are reused, so each is formatted once
_fd_names: dict[int, str] = {}


def _link_unnamed(fd: int, path: str) -> None:
    """Give the unnamed file ``fd`` the name ``path``; FileExistsError if it is taken."""
    kept = _fd_dir
    if kept is None or kept[0] != os.getpid():
        # (None: a fork handler dropped it.)  Another pid: a child forked by C code that
        # ran no fork handlers, whose kept directory is its parent's, where the
        # descriptor ``fd`` may be another file
        kept = _open_fd_dir()
    src = _fd_names.get(fd)
    if src is None:
        src = _fd_names[fd] = str(fd)
    os.link(src, path, src_dir_fd=kept[1], follow_symlinks=True)


def _copy_to_named(fd: int, dest: str) -> tuple[int, str]:
    """A hidden named copy of the unnamed file ``fd`` (which this system would not
    link: the bytes are kept, and later downloads use named files from the start)."""
    global _unnamed_ok
    _unnamed_ok = False
    new, path = _create_temp(dest)
    try:
        size = os.fstat(fd).st_size
        done = 0
        while done < size:
            n = os.sendfile(new, fd, done, size - done)
            if n <= 0:
                raise OSError(errno.EIO, "short copy of the temporary file")
            done += n
    except BaseException:
        os.close(new)
        _unlink(path)
        raise
    return new, path


def _name_unnamed(fd: int, dest: str) -> str:
    """A new hidden temporary name beside ``dest`` for the unnamed file ``fd``."""
    return _claim_temp_name(dest, lambda path: _link_unnamed(fd, path))[1]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _keep_mode(new: int | str, dest: str) -> bool:
    """Give the new file (a descriptor, or a path) the permission bits of the ``dest``
    it will replace; whether ``dest`` exists.

    A new destination keeps its umask-based mode; a symlink at ``dest`` lends its
    target's bits (the rename replaces the link itself).  Only the rwx bits are
    carried over (never setuid, setgid or sticky); a file system that cannot
    change modes keeps the new file's.
    """
    if not os.access(dest, os.F_OK):
        return False  # a new destination (the usual case): one system call, no exception
    try:
        mode = os.stat(dest).st_mode
    except OSError:
        return True
    if stat.S_ISREG(mode):
        try:
            os.chmod(new, mode & 0o777)
        except OSError:
            pass
    return True


def backup_path(dest: str) -> str:
    """Where an existing destination waits while ``checkfunc`` judges its replacement."""
    return _hidden(dest, ".urlgrabber-old")


class FileSink:
    """Writes a download beside ``dest`` and publishes it at ``dest`` on commit.

    The file is unnamed (O_TMPFILE, linked at ``dest`` when complete) where the
    system allows, else a hidden named file renamed over ``dest``; with an
    existing ``dest`` the unnamed one gets a hidden name first.  With
    ``inplace`` (``reget``) it appends to ``dest`` itself, on purpose: resuming
    the existing file is what reget asks for.  It works on a raw descriptor: no
    file object, no buffering, one system call per operation.
    """

    limit = None                        # a file may grow as large as the server sends
    write_error: OSError | None = None  # what a direct (lean) write hit, if anything
    _backup: str | None = None          # the old dest while checkfunc runs
    _ino: int | None = None             # the published file, while checkfunc runs

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
                self.fd = _create_unnamed(self.dest)
                if self.fd is None:
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

    def write_at(self, data: bytes, offset: int) -> None:
        """Write at a fixed offset without moving the sequential position (hedges, segments)."""
        fd = self.fd
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            view = view[n:]
            offset += n

    def seek_end(self) -> None:
        os.lseek(self.fd, 0, os.SEEK_END)

    def restart(self, offset: int = 0) -> None:
        """Throw away everything after ``offset`` (a resume the server did not honour)."""
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)

    def finish(self, mtime: float | None = None) -> str | None:
        """Set the server's mtime (through the descriptor: no path lookup) and close;
        return the path holding the body."""
        fd = self.fd
        if fd is not None:
            self.fd = None
            try:
                if mtime is not None and mtime > 0:
                    os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
        return self.path

    def commit(self, mtime: float | None = None, keep_old: bool = False) -> str:
        """Publish the complete body at ``dest``; return ``dest``.

        With ``keep_old`` (a ``checkfunc`` will judge the new file) an existing
        ``dest`` is kept as a hidden hard link until ``accept()`` or ``reject()``.
        """
        try:
            unnamed = self.path is None and not self.inplace and self.fd is not None
            if unnamed and self._publish_unnamed(mtime, keep_old):
                return self.dest
            # (an unnamed file has a hidden name now if dest exists: it replaces dest as below)
            exists = False if self.inplace else _keep_mode(self.path if self.fd is None else self.fd, self.dest)
            self.finish(mtime)
            if not self.inplace:
                if keep_old:
                    self._ino = os.stat(self.path).st_ino
                    self._backup = self._keep_old() if exists else None
                elif exists:
                    # a backup left by a crash during a checkfunc (a crash leaves
                    # dest in place too: with no dest there is none to look for)
                    _unlink(backup_path(self.dest))
                os.replace(self.path, self.dest)
        except OSError as e:
            self.accept()  # dest was not replaced: its backup is not needed
            self.discard()
            raise self._write_error(e) from None
        self.path = None
        return self.dest

    def _publish_unnamed(self, mtime: float | None, keep_old: bool) -> bool:
        """Link the unnamed file at ``dest`` if there is no ``dest`` (one system call:
        the link fails on an existing name); else give it a hidden name, False."""
        fd = self.fd
        if mtime is not None and mtime > 0:
            os.utime(fd, (mtime, mtime))
        try:
            _link_unnamed(fd, self.dest)
        except FileExistsError:
            self.path = _name_unnamed(fd, self.dest)
            return False
        except OSError as e:
            # no naming through /proc here after all (a sandbox): a named copy instead
            if e.errno not in _LINK_REFUSED or not os.path.isdir(_directory(self.dest)):
                raise
            self.fd, self.path = _copy_to_named(fd, self.dest)
            os.close(fd)
            return False
        if keep_old:
            self._ino = os.fstat(fd).st_ino  # (reject() removes dest only while it is this file)
        self.fd = None
        os.close(fd)
        return True

    def _keep_old(self) -> str | None:
        """Hard-link an existing ``dest`` to its backup name (a stale backup from a
        crash during an earlier checkfunc is replaced); None when there is no ``dest``."""
        backup = backup_path(self.dest)
        for _ in range(2):
            try:
                os.link(self.dest, backup, follow_symlinks=False)
                return backup
            except FileNotFoundError:
                return None
            except FileExistsError:
                os.unlink(backup)  # stale, from a crash during an earlier checkfunc
            except OSError:
                # no hard links here (or dest is a directory): a copy keeps the bytes
                if not os.path.isfile(self.dest):
                    return None
                import shutil

                shutil.copy2(self.dest, backup)
                return backup
        return None

    def accept(self) -> None:
        """checkfunc accepted the published file: drop the backup of the old one."""
        backup, self._backup = self._backup, None
        self._ino = None
        if backup is not None:
            _unlink(backup)

    def reject(self) -> None:
        """checkfunc rejected (or raised): put the old ``dest`` back, or remove the new one."""
        backup, self._backup = self._backup, None
        ino, self._ino = self._ino, None
        try:
            if backup is not None:
                os.replace(backup, self.dest)
            elif ino is not None and os.stat(self.dest, follow_symlinks=False).st_ino == ino:
                os.unlink(self.dest)  # still our file (checkfunc may have moved it away)
        except OSError:
            pass

    def discard(self) -> None:
        """Remove the temporary file; ``dest`` is left as it was."""
        try:
            self.finish()
        except OSError:
            pass
        if self.path and not self.inplace:
            _unlink(self.path)
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


class DirectWriter:
    """What libcurl calls with each chunk of a direct attempt: ``write`` puts it in
    the file of ``sink`` (a FileSink), and no other Python code of ours runs per chunk.

    A pooled curl handle keeps one as its WRITEFUNCTION across attempts, and each
    attempt only points it at its own sink: a setopt and a bound method saved per file.
    """

    __slots__ = ("sink",)

    def __init__(self, sink: FileSink | None = None) -> None:
        self.sink = sink

    @callback
    def write(self, data: bytes) -> int:
        """Write ``data``; the byte count written (libcurl: short means failed).

        A short write is continued until every byte is written or an OSError
        says why not (a full disk, RLIMIT_FSIZE: the kernel writes what fits
        first and fails only on the next call); the error is kept in the sink's
        ``write_error`` and libcurl is told of the short write.
        """
        sink = self.sink
        try:
            fd = sink.fd
            n = _write(fd, data)
            size = len(data)
            if n == size:
                return n
            view = memoryview(data)
            while n < size:
                done = _write(fd, view[n:])
                if done <= 0:
                    break  # no progress and no error: libcurl reports a short write
                n += done
            return n
        except (OSError, TypeError, AttributeError) as e:  # (TypeError: the sink was closed)
            if sink is not None:  # (None: a writer never pointed at a sink; libcurl fails the write)
                sink.write_error = e if isinstance(e, OSError) else OSError(errno.EBADF, "file closed")
            return 0


class _InMemory:
    """What the memory and stream sinks share: no file, so nothing to publish or put back."""

    path = None
    limit: int | None = None
    nbytes = 0

    def open(self) -> int:
        return self.nbytes

    def size(self) -> int:
        return self.nbytes

    def finish(self, mtime: float | None = None) -> None:
        return None

    def accept(self) -> None:
        return None

    def reject(self) -> None:
        return None


class MemorySink(_InMemory):
    """Collects a body in memory, for ``urlread``; ``limit`` caps its size."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.nbytes = 0

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        self.nbytes += len(data)

    def restart(self, offset: int = 0) -> None:
        data = b"".join(self.chunks)[:offset]
        self.chunks = [data] if data else []
        self.nbytes = len(data)

    def value(self) -> bytes:
        return b"".join(self.chunks)

    def commit(self, mtime: float | None = None, keep_old: bool = False) -> bytes:
        return self.value()

    def discard(self) -> None:
        self.chunks = []
        self.nbytes = 0


class StreamSink(_InMemory):
    """A bounded buffer between a running transfer and ``urlopen``'s reader.

    When it holds ``high_water`` bytes the transfer is paused, so reading a
    huge body never holds more than about that much in memory.
    """

    def __init__(self, high_water: int = 1 << 20) -> None:
        self.high_water = high_water
        self.buffer: deque[bytes] = deque()
        self.buffered = 0
        self.nbytes = 0

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

    def commit(self, mtime: float | None = None, keep_old: bool = False) -> None:
        return None

    def discard(self) -> None:
        self.buffer.clear()
        self.buffered = 0
