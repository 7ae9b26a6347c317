"""``urlopen``'s file object: reads pump the engine, a full buffer pauses the transfer."""

from __future__ import annotations

from ._request import Request, State
from .errors import redact

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Iterator


class StreamFile:
    """A read-only, streaming file object over one transfer.

    Memory stays bounded by the sink's high-water mark: when the reader falls
    behind, the transfer is paused rather than buffered.
    """

    def __init__(self, req: Request, engine: Any) -> None:
        self._req = req
        self._engine = engine
        self._sink = req.sink
        self.closed = False
        transfer = req.transfer
        self.url = redact(req.binding.url if req.binding else req.url)  # never the password
        self.http_code = transfer.status if transfer else req.last_status
        self._raw_headers = b"".join(transfer.headers if transfer else req.last_headers)

    def __getattr__(self, name: str) -> Any:
        """``headers``: the response headers (an ``email.message.Message``), parsed on
        first read, then a plain attribute: ``email.parser`` costs ~20 ms to import and
        most readers never look (a cached property, without functools' start-up cost)."""
        if name != "headers":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        import email.parser

        self.headers = email.parser.BytesParser().parsebytes(self._raw_headers, headersonly=True)
        return self.headers

    # -- classic accessors ---------------------------------------------------

    def geturl(self) -> str:
        return self.url

    def info(self) -> Any:
        return self.headers

    # -- reading -------------------------------------------------------------

    def _fill(self, want: int) -> None:
        """Run the transfer until ``want`` bytes are buffered or it has ended."""
        sink, req = self._sink, self._req
        want = max(1, min(want, sink.high_water))
        if sink.buffered >= want or req.finished:
            return
        transfer = req.transfer
        if transfer is not None and transfer.paused:
            self._engine.resume(transfer)
        self._engine.run([req], until=lambda: sink.buffered >= want)

    def _after_take(self) -> None:
        transfer = self._req.transfer
        if transfer is not None and transfer.paused and not self._sink.full():
            self._engine.resume(transfer)

    def _check_failed(self) -> None:
        req = self._req
        if req.state is State.FAILED and not self._sink.buffered:
            req.run_failfunc()  # the default raises the error
            raise req.exception

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when ``size`` is negative); b'' at the end."""
        self._check_open()
        if size is None or size < 0:
            parts = []
            while True:
                self._fill(self._sink.high_water)
                chunk = self._sink.take(-1)
                self._after_take()
                if not chunk:
                    self._check_failed()
                    if self._req.finished:
                        return b"".join(parts)
                parts.append(chunk)
        if size == 0:
            return b""
        self._fill(size)
        data = self._sink.take(size)
        self._after_take()
        if not data:
            self._check_failed()
        return data

    def readline(self, size: int = -1) -> bytes:
        """One line including its newline (or up to ``size`` bytes)."""
        self._check_open()
        sink = self._sink
        while True:
            end = sink.find(b"\n")
            if end >= 0:
                n = end if size is None or size < 0 else min(end, size)
                break
            if size is not None and 0 <= size <= sink.buffered:
                n = size
                break
            if self._req.finished or sink.buffered >= sink.high_water:
                if self._req.finished:
                    self._check_failed()
                    n = sink.buffered
                    break
                # a very long line: let the buffer grow past the mark
                sink.high_water *= 2
            self._fill(sink.buffered + 1)
        data = sink.take(n)
        self._after_take()
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        """Stop the transfer if still running; further reads raise ValueError."""
        if self.closed:
            return
        self.closed = True
        if not self._req.finished:
            self._engine.abort([self._req])
        self._sink.discard()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def readable(self) -> bool:
        return True

    def __enter__(self) -> StreamFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
