"""The declared seams between a Request and what it talks to.

A ``Source`` says where a request's bytes come from (one URL, or a
MirrorGroup choosing among mirrors); a ``Sink`` says where they go (a file
committed atomically, memory, a stream).  The engine and the request use
only these methods, so a new source (segments over mirrors) or sink plugs in
without the engine probing for attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable, Mapping, Protocol

if TYPE_CHECKING:
    from ._outcome import AttemptResult
    from ._request import Binding, Request
    from ._transfer import Transfer
    from .errors import URLGrabError


class BatchMember(Protocol):
    """Something that keeps state over one batch (a MirrorGroup's health, its timedhosts)."""

    def batch_started(self) -> None: ...
    def batch_ended(self) -> None: ...


class Source(Protocol):
    """Where a request's attempts go."""

    #: the scheduler's FIFO lane for the request (a host key, a MirrorGroup)
    lane: Hashable
    #: shared batch state to start and end with the batch, if any
    group: BatchMember | None

    def bind(self, req: Request, active: Mapping[Any, Any]) -> Binding | None:
        """The URL and options of the next attempt, or None while none may start
        (``active``: running transfers per key)."""

    def attempt_ended(self, req: Request, binding: Binding, result: AttemptResult,
                      transfer: Transfer | None, active: Mapping[Any, Any]) -> None:
        """An attempt ended (health, speeds); ``transfer`` is None when it never ran."""

    def failover(self, req: Request, result: AttemptResult) -> URLGrabError | float | None:
        """No retry left on this URL: None to try another one, seconds to pause before
        trying again (the last mirror), else the final error."""

    def hedge_binding(self, req: Request, transfer: Transfer, rate: float, remaining: int,
                      active: Mapping[Any, Any]) -> Binding | None:
        """Somewhere to race a slow transfer's remaining bytes, or None."""

    def next_wakeup(self) -> float | None:
        """When a request that cannot start now may start (a resting mirror), or None."""

    def max_segments(self, req: Request) -> int | None:
        """How many connections one large download of ``req`` may use at once
        (1: never split; None: as many as ``segment_binding`` offers)."""

    def segment_binding(self, req: Request, active: Mapping[Any, Any], avoid: Any) -> Binding | None:
        """A free connection for one more byte range of a split download, on a key
        not in ``avoid`` (``active``: running transfers per key), or None."""

    def refuses_ranges(self, binding: Binding) -> None:
        """The server behind ``binding`` answered a range request with something else."""


class Sink(Protocol):
    """Where a request's bytes go (every kind of request)."""

    #: the body may not grow past this many bytes (urlread's ``limit``), or None
    limit: int | None
    #: the file being written, if any
    path: str | None

    def open(self) -> int:
        """Open (or reopen) for writing; how many bytes it already holds."""

    def size(self) -> int:
        """Bytes written so far."""

    def write(self, data: bytes) -> None: ...

    def restart(self, offset: int = 0) -> None:
        """Drop everything after ``offset``."""

    def commit(self, mtime: float | None = None, keep_old: bool = False) -> Any:
        """Publish the complete body; the request's result (a path, bytes, None).
        ``keep_old``: keep what it replaces until ``accept()`` or ``reject()``."""

    def accept(self) -> None:
        """checkfunc accepted the published body."""

    def reject(self) -> None:
        """checkfunc rejected it: put back what it replaced."""

    def discard(self) -> None:
        """Give up: remove what was written, leave the destination as it was."""


class FileTarget(Sink, Protocol):
    """A sink on a file (urlgrab): libcurl may write into it directly, and a hedge
    may write at fixed offsets while the first attempt goes on.

    A direct attempt's writer (a pooled handle's DirectWriter) writes to ``fd``
    and keeps what went wrong in ``write_error``, for ``write_failure``.
    """

    fd: int | None
    write_error: OSError | None

    def write_failure(self) -> URLGrabError | None:
        """The local error a direct write hit, if any."""

    def write_at(self, data: bytes, offset: int) -> None:
        """Write at a fixed offset without moving the sequential writer."""

    def position(self) -> int:
        """Where the sequential writer stands (a hedge races from here)."""

    def seek_end(self) -> None: ...


__all__ = ["BatchMember", "FileTarget", "Sink", "Source"]
