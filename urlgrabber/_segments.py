"""Segmented downloads: one large file fetched as byte ranges over several connections.

A download that may be split (a file over HTTP(S), no ``range``, no
``reget``, no ``throttle``, and a source that allows it: a MirrorGroup batch,
or ``segments`` > 1) gets a ``SegmentedFile`` when its attempt starts
(``plan``).  That attempt runs as usual; when its headers give the size
(``sized``) and the body is at least twice ``min_segment``, the rest of the
file becomes one ``Segment`` held by that attempt (phase SPLIT) and the
engine is told.  Whenever connections are idle (nothing queued), the engine
asks ``helpers()``: the largest running segment is cut at its tail into
equal parts, and each new part is fetched by a ranged attempt on a free
connection the source offers (another mirror, or the same host).  A
connection that finishes steals the back half of the largest segment left.

Every attempt writes at its own offsets into the one temporary file
(``write_at``); one that reaches its segment's end stops its transfer and
counts as a success.  A ranged reply must be a 206 whose Content-Range is
exactly the range asked for; anything else writes nothing, and the range
goes back to the whole-file attempt before it (still running) or to a place
that honours ranges, else the file is fetched again in one piece.  A failed
segment keeps the bytes it has; the request's own rules (retry,
failure_callback, failover, mirror health) judge the failure, and the
request is queued again to fetch what is missing.  When every byte is in,
the file is delivered once: sink commit, then checkfunc.
"""

from __future__ import annotations

import os

from . import _curl
from ._libcurl import callback, pycurl
from ._named import Named
from ._outcome import AttemptResult, Cause
from ._transfer import Transfer
from .errors import URLGrabError, redact

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Callable

    from ._request import Binding, Request, State

_SMALLEST = 16 * 1024  # min_segment is never taken below this


class Phase(Named):
    PROBING = "probing"  # the first attempt runs; the size is not known yet
    SPLIT = "split"      # the file is in segments, fetched in parallel
    OFF = "off"          # fetched in one piece after all (ranges did not work)


class Segment:
    """Bytes [start, end) of the file; ``pos``: the next byte to write; ``transfer``:
    the attempt fetching it, if any."""

    __slots__ = ("start", "end", "pos", "transfer")

    def __init__(self, start: int, end: int, transfer: Transfer | None = None) -> None:
        self.start = start
        self.end = end
        self.pos = start
        self.transfer = transfer

    @property
    def left(self) -> int:
        return self.end - self.pos

    @property
    def waiting(self) -> bool:
        """Bytes missing and nobody fetching them."""
        return self.transfer is None and self.pos < self.end

    def __repr__(self) -> str:
        return f"<Segment {self.start}-{self.end} at {self.pos}{' running' if self.transfer else ''}>"


def plan(req: Request, engine: Any) -> SegmentedFile | None:
    """A SegmentedFile when ``req`` may be split once its size is known, else None."""
    cap = req.source.max_segments(req)
    if cap is not None and cap < 2:
        return None  # (a single URL, by default: asked first, it is the common answer)
    opts = req.opts
    if opts.reget or opts.data is not None or req.byte_range is not None or _curl.throttle_rate(opts):
        return None
    min_size = max(_SMALLEST, int(opts.min_segment or 0))
    if opts.size and opts.size < 2 * min_size:
        return None  # the caller's ``size`` (a cap) says it is too small to split (``sized`` would say so)
    return SegmentedFile(req, engine, cap, min_size)


def _content_range(headers: Any) -> tuple[int, int, int] | None:
    """``(first, last, total)`` of a ``Content-Range: bytes a-b/n`` header, else None."""
    for line in headers:
        if line[:14].lower() == b"content-range:":
            value = line[14:].strip()
            if value[:6].lower() != b"bytes ":
                return None
            span, _, total = value[6:].partition(b"/")
            first, _, last = span.partition(b"-")
            try:
                return int(first), int(last), int(total)
            except ValueError:
                return None
    return None


class SegmentedFile:
    """One request's file as segments: who fetches which bytes, and when it is whole."""

    def __init__(self, req: Request, engine: Any, cap: int | None, min_size: int) -> None:
        self.req = req
        self.engine = engine
        self.cap = cap              # most attempts at once (None: as many as the source offers)
        self.min_size = min_size
        self.phase = Phase.PROBING
        self.total = 0
        self.parts: list[Segment] = []
        self.have = 0               # bytes in the file (for the progress meter)
        self.avoid: set = set()     # keys whose ranged replies were wrong
        self.filetime: float | None = None

    @property
    def split(self) -> bool:
        return self.phase is Phase.SPLIT

    def transfers(self) -> list[Transfer]:
        return [s.transfer for s in self.parts if s.transfer is not None]

    def has_waiting(self) -> bool:
        return any(s.waiting for s in self.parts)

    # -- the first attempt ---------------------------------------------------

    def probe_writer(self, transfer: Transfer, raw: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """A direct attempt's writer: ``raw`` until the file is split, then at offsets.

        libcurl's answers cannot be read inside its callbacks, so the first bytes
        only tell the engine, which reads the size once the callbacks returned
        (``sized_direct``); a small file never costs a header callback.
        """
        told = False

        @callback
        def write(data: bytes) -> Any:
            nonlocal told
            seg = transfer.segment
            if seg is None:
                if not told:
                    told = True
                    self.engine.probe_started(transfer)
                return raw(data)
            try:
                return self.write(transfer, seg, data)
            except BaseException as e:
                return transfer.write_failed(e)
        return write

    def sized_direct(self, transfer: Transfer) -> None:
        """A direct first attempt (still running) has its first bytes: its size from libcurl."""
        if self.phase is not Phase.PROBING or transfer.segment is not None:
            return
        curl = transfer.curl
        transfer.status = curl.getinfo(pycurl.RESPONSE_CODE)
        length = int(curl.getinfo(_curl.INFO_CONTENT_LENGTH))
        transfer.content_length = length if length >= 0 else None
        self.sized(transfer, self.req.sink.position())

    def sized(self, transfer: Transfer, written: int = 0) -> None:
        """The first attempt's headers are in (and ``written`` bytes of its body, in
        order): split the file if it is large enough."""
        req = self.req
        if self.phase is not Phase.PROBING:
            return
        length = transfer.content_length
        start = transfer.offset
        size = req.opts.size
        if (transfer.status not in (200, 206) or length is None or length < 2 * self.min_size
                or req.hedge is not None or (size and start + length > size)):
            req.segments = None  # an ordinary download; a later attempt may try again
            return
        self.total = start + length
        seg = Segment(start, self.total, transfer)
        seg.pos = self.have = start + written
        self.parts = [seg]
        transfer.segment = seg
        self.phase = Phase.SPLIT
        req.hedged = True  # its segments race instead
        self.engine.watch_segments(req)

    # -- more attempts -----------------------------------------------------------

    def helpers(self, active: Mapping[Any, Any], free: int | None) -> list[tuple[Binding, Callable[..., Transfer]]]:
        """Attempts to start on idle connections: ``(binding, start)`` pairs, for the engine's
        ``_launch``.  Waiting segments first; then the largest running segment is cut
        into equal parts, one per free connection (each at least ``min_size``)."""
        if self.phase is not Phase.SPLIT:
            return []
        room = free if free is not None else 1 << 30
        if self.cap is not None:
            room = min(room, self.cap - len(self.transfers()))
        source = self.req.source
        active = dict(active)
        out: list[tuple[Binding, Callable[..., Transfer]]] = []
        bindings = []
        while room > 0:
            binding = source.segment_binding(self.req, active, self.avoid)
            if binding is None:
                break
            active[binding.key] = active.get(binding.key, 0) + 1
            bindings.append(binding)
            room -= 1
        waiting = [s for s in self.parts if s.waiting]
        while bindings and waiting:
            out.append((bindings.pop(0), self._starter(waiting.pop(0), None)))
        running = [s for s in self.parts if s.transfer is not None]
        if bindings and running:
            target = max(running, key=lambda s: s.left)
            left = target.left
            parts = min(len(bindings), left // self.min_size - 1)
            # from the back: each start takes [cut, target.end) and leaves target the rest
            for j in range(parts):
                cut = target.pos + left * (parts - j) // (parts + 1)
                out.append((bindings[j], self._starter(target, cut)))
        return out

    def _starter(self, seg: Segment, cut: int | None) -> Callable[..., Transfer]:
        def start(handle: _curl.Handle, binding: Binding, engine: Any) -> Transfer:
            return self._start(seg, cut, handle, binding, engine)
        return start

    def start_queued(self, handle: _curl.Handle, binding: Binding, engine: Any) -> Transfer:
        """The request's turn in the queue: fetch the first waiting segment."""
        from ._request import State

        req = self.req
        req.state = State.RUNNING
        req.binding = binding
        req.tries += 1
        req.attempts += 1
        seg = next(s for s in self.parts if s.waiting)  # the engine asked wants_start() first
        return self._start(seg, None, handle, binding, engine)

    def _start(self, seg: Segment, cut: int | None, handle: _curl.Handle, binding: Binding,
               engine: Any) -> Transfer:
        """A ranged attempt for ``seg`` (from ``cut`` on, taken from its tail, when given)."""
        start = seg.pos if cut is None else cut
        end = seg.end
        _curl.configure(handle, binding.opts, binding.url, byte_range=(start, end))
        transfer = Transfer(self.req, handle, binding, 0, engine)  # (configure may renew the handle)
        transfer.byte_range = (start, end)
        transfer.observe()
        transfer.progress = False  # the meter is told here, for the whole file
        if cut is not None:
            new = Segment(cut, end)
            self.parts.insert(self.parts.index(seg) + 1, new)
            seg.end = cut
            seg = new
        seg.transfer = transfer
        transfer.segment = seg
        return transfer

    # -- bytes ---------------------------------------------------------------

    def verify(self, transfer: Transfer) -> None:
        """A ranged attempt's first bytes: a 206 with exactly the range asked for, or
        it fails (errno 9) before writing anything and its key is avoided."""
        self.req.body_started = True
        start, end = transfer.byte_range
        if transfer.status == 206 and _content_range(transfer.headers) == (start, end - 1, self.total):
            return
        binding = transfer.binding
        self.avoid.add(binding.key)
        self.req.source.refuses_ranges(binding)
        what = "ignored the range" if transfer.status == 200 else "answered another range"
        transfer.failure = AttemptResult(URLGrabError(
            9, f"Server {what} (asked bytes {start}-{end - 1}/{self.total}, got HTTP {transfer.status}): "
               f"{redact(binding.url)}", url=redact(binding.url)), Cause.RANGE)

    def write(self, transfer: Transfer, seg: Segment, data: bytes) -> int | None:
        """Write a chunk at its place; stop the transfer (0) past its segment's end."""
        if transfer.failure is not None:
            return 0
        room = seg.end - seg.pos
        if room <= 0:
            transfer.complete = True
            return 0
        n = len(data)
        if n > room:
            data = memoryview(data)[:room]
        self.req.sink.write_at(data, seg.pos)
        k = len(data)
        seg.pos += k
        transfer.received += k
        self.have += k
        meter = self.req.meter
        if meter is not None:
            meter.update(self.have)
        if seg.pos >= seg.end:
            transfer.complete = True
            if n > room:
                return 0  # the rest belongs to the next segment
        return None

    # -- attempts ending ---------------------------------------------------------

    def ended(self, transfer: Transfer, result: AttemptResult, active: Mapping[Any, Any]) -> State:
        """One segment's attempt ended; the request's new state."""
        req = self.req
        seg = transfer.segment
        if seg.transfer is transfer:
            seg.transfer = None
        req.keep_response(transfer)
        if transfer.filetime and self.filetime is None:
            self.filetime = transfer.filetime
        if result.ok and seg.pos < seg.end and not transfer.complete:
            url = redact(transfer.binding.url)
            result = AttemptResult(URLGrabError(
                14, f"Range reply ended {seg.end - seg.pos} bytes short: {url}", url=url), Cause.NETWORK_CUT)
        req.source.attempt_ended(req, transfer.binding, result, transfer, active)
        if result.cause is Cause.RANGE:  # not a 206 for the range asked (or a 416): not there again
            self.avoid.add(transfer.binding.key)
            self._give_back()
        if result.ok or result.cause is Cause.RANGE:
            return self._settle(transfer)
        req.binding = transfer.binding
        state = req._after_failure(result, None)  # retry, failure_callback, failover, give up
        if not req.finished and not self.transfers() and not self._placeable():
            self._start_over()  # nowhere left that serves ranges: the retry fetches it whole
        return state

    def _give_back(self) -> None:
        """Ranges a server would not serve: back to a whole-file attempt just before
        them, which is still running (its reply goes on to the end of the file)."""
        parts = self.parts
        i = 0
        while i < len(parts) - 1:
            seg, after = parts[i], parts[i + 1]
            whole = seg.transfer is not None and seg.transfer.byte_range is None
            if whole and after.waiting and after.pos == after.start == seg.end:
                seg.end = after.end
                del parts[i + 1]
            else:
                i += 1

    def _settle(self, transfer: Transfer) -> State:
        """After a success (or a refused range): deliver, wait, queue, or start over whole."""
        from ._request import State

        if all(s.pos >= s.end for s in self.parts) and not self.transfers():
            return self._deliver(transfer)
        if not self.has_waiting():
            return State.RUNNING
        if self._placeable():
            return State.SEGMENT_WAITING  # queued: a connection fetches the waiting segment
        if self.transfers():
            return State.RUNNING  # nowhere honours ranges: start over once these end
        self._start_over()
        return State.SEGMENT_WAITING

    def _placeable(self) -> bool:
        """Somewhere (busy or not) that serves this file's ranges."""
        return self.req.source.segment_binding(self.req, {}, self.avoid) is not None

    def _start_over(self) -> None:
        """Ranges do not work out: the next attempt fetches the file in one piece."""
        self.phase = Phase.OFF
        self.parts = []
        self.req.offset = 0
        self.req.sink.restart(0)

    def _deliver(self, transfer: Transfer) -> State:
        """Every byte is in: publish the file once (commit, then checkfunc)."""
        req = self.req
        sink = req.sink
        req.segments = None
        req.nbytes = self.total
        req.binding = transfer.binding
        transfer.filetime = self.filetime
        size = os.fstat(sink.fd).st_size
        if size != self.total:  # never expected: say so rather than deliver it
            url = redact(transfer.binding.url)
            result = AttemptResult(URLGrabError(
                14, f"Segmented download has {size} bytes, expected {self.total}: {url}", url=url),
                Cause.OTHER)
        else:
            result = req._deliver(transfer)
        if result.ok:
            return req._succeed()
        return req._after_failure(result, transfer)

    def stop(self) -> None:
        """The request ended: stop every attempt still running."""
        for transfer in self.transfers():
            self.engine.release(transfer)


__all__ = ["Phase", "Segment", "SegmentedFile", "plan"]
