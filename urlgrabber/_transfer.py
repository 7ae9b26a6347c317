"""One attempt on one curl handle: the curl callbacks and what they saw.

An attempt either lets libcurl write straight into the file (``direct``: no
Python code per chunk, the status read once at the end) or is ``observe()``d:
each header and chunk passes through ``on_header``/``on_write``, for
progress, resumes, ranges, size limits and streams.  ``outcome()`` says how
it ended, as an ``AttemptResult`` (see _outcome.py).
"""

from __future__ import annotations

import time

from . import _curl, _outcome
from ._libcurl import callback, pycurl
from ._outcome import SUCCESS, AttemptResult, Cause
from ._policy import Timeout
from .errors import URLGrabError, redact

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

# what outcome() reads of every attempt, as plain globals (a module attribute costs a look-up more)
_SIZE_DOWNLOAD, _RESPONSE_CODE, _FILETIME = _curl.INFO_SIZE_DOWNLOAD, pycurl.RESPONSE_CODE, pycurl.INFO_FILETIME
_timeout_of = Timeout.of  # (a class attribute read through the class is not specialised on 3.11)


def _reason(status: int) -> str:
    """The standard reason phrase of an HTTP error status (http.client is imported only now)."""
    import http.client

    return http.client.responses.get(status, "")


class Transfer:
    """One attempt on one curl handle: status, headers and bytes as they arrive."""

    __slots__ = (
        "req", "handle", "curl", "binding", "offset", "engine", "sink", "started", "last_progress",
        "stall_window", "byte_range", "status", "reason", "headers", "header_bytes", "content_length",
        "received", "skip", "remaining", "failure", "filetime", "paused", "begun", "direct", "last_got",
        "write_at", "direct_retry_after", "max_size", "max_header", "limit", "progress", "stream",
        "stale_resume", "reconnected", "segment", "complete", "header_lines",
    )

    def __init__(self, req: Any, handle: _curl.Handle, binding: Any, offset: int,
                 engine: Any) -> None:
        self.req = req
        self.handle = handle
        self.curl = handle.curl
        self.binding = binding
        self.offset = offset                # bytes the file held before this attempt
        self.engine = engine
        self.sink = req.sink
        self.started = self.last_progress = time.monotonic()
        self.stall_window = _timeout_of(binding.opts.timeout).stall
        self.byte_range = req.byte_range
        self.status = 0
        self.reason = ""
        self.headers: list[bytes] | tuple = ()
        self.content_length: int | None = None
        self.received = 0
        self.failure: AttemptResult | None = None  # what a callback found wrong
        self.filetime: float | None = None
        self.paused = False
        self.begun = False
        self.direct = True                  # libcurl writes into the file; nothing watched per chunk
        self.last_got = 0
        self.direct_retry_after: float | None = None
        self.stale_resume = False           # check_timestamp: the remote file is newer
        self.reconnected = False            # already tried again on a new connection
        self.segment: Any = None            # the byte range it fetches of a split download (_segments)
        self.complete = False               # it stopped its transfer itself: its segment is whole

    def observe(self) -> None:
        """Check each header and chunk in Python (every attempt that cannot write directly).

        What only the callbacks read is set here, not for every attempt.
        """
        req = self.req
        opts = self.binding.opts
        self.direct = False
        self.header_bytes = 0
        self.skip = 0                       # bytes to drop before a range (server sent 200)
        self.remaining: int | None = None   # bytes left in a range
        self.write_at: int | None = None    # a hedge writes at fixed offsets
        self.max_size = int(opts.size) if opts.size else None
        self.max_header = opts.max_header_size
        self.limit = req.sink.limit
        self.progress = req.meter is not None or req.batch_meter is not None
        self.stream = req.kind == "open"
        _curl.wire_observed(self.handle, self.on_write, self.on_header)

    # -- curl callbacks (hot path: keep lean, never let an exception escape) --

    @callback
    def on_header(self, line: bytes) -> Any:
        try:
            if line[:5] == b"HTTP/":
                parsed = _curl.parse_status_line(line.rstrip())
                if parsed:
                    self.status, self.reason = parsed
                    self.headers = []
                    self.content_length = None
            else:
                if type(self.headers) is tuple:
                    self.headers = []
                self.headers.append(line)
                if line[:15].lower() == b"content-length:":
                    try:
                        self.content_length = int(line[15:].strip())
                    except ValueError:
                        pass
            self.header_bytes += len(line)
            if self.max_header and self.header_bytes > self.max_header:
                self.failure = self._headers_too_big()
                return -1
            return None
        except BaseException as e:
            self.engine.stash(e)
            return -1

    def _headers_too_big(self) -> AttemptResult:
        return AttemptResult(URLGrabError(
            14, f"Header size exceeded {self.max_header} bytes: {redact(self.binding.url)}",
            url=self.binding.url), Cause.TOO_BIG)

    def direct_headers(self) -> Callable[[bytes], Any] | None:
        """What libcurl calls with each header line of a direct attempt, if anything.

        Nothing where libcurl reads Retry-After and enforces ``max_header_size``
        itself.  Else the lines are kept in ``header_lines``: through the list's own
        append (C code, no Python frame per line) when only Retry-After needs them,
        through ``on_direct_header`` when their size must be counted here (a limit
        below libcurl's own, or a libcurl before 8.3, which has none).
        """
        limit = self.binding.opts.max_header_size
        if limit and not 0 < _curl.HEADER_LIMIT <= limit:
            self.header_lines = []
            self.header_bytes = 0
            self.max_header = limit
            return self.on_direct_header
        if _curl.RETRY_AFTER_INFO is None:
            lines = self.header_lines = []
            return lines.append
        self.header_lines = ()
        return None

    @callback
    def on_direct_header(self, line: bytes) -> Any:
        try:
            self.header_bytes += len(line)
            if self.header_bytes > self.max_header:
                self.failure = self._headers_too_big()
                return -1
            self.header_lines.append(line)
            return None
        except BaseException as e:
            self.engine.stash(e)
            return -1

    @callback
    def on_write(self, data: bytes) -> Any:
        try:
            if self.status >= 300:
                return None  # an error body: discard, keep the connection
            if not self.begun:
                self._begin()
                if self.stale_resume:
                    return 0
            if self.segment is not None:
                return self.req.segments.write(self, self.segment, data)
            if self.skip:
                if len(data) <= self.skip:
                    self.skip -= len(data)
                    return None
                data = data[self.skip:]
                self.skip = 0
            if self.remaining is not None:
                if self.remaining <= 0:
                    return None
                if len(data) > self.remaining:
                    data = data[:self.remaining]
                self.remaining -= len(data)
            if self.stream and self.sink.full():
                self.paused = True
                return pycurl.WRITEFUNC_PAUSE
            n = len(data)
            write_at = self.write_at
            total = (self.offset if write_at is None else write_at) + self.received + n
            if self.max_size is not None and total > self.max_size:
                self.failure = AttemptResult(URLGrabError(
                    14, f"Downloaded more than max size ({self.max_size}) for {redact(self.binding.url)}",
                    url=self.binding.url, code=63), Cause.TOO_BIG)
                return 0
            if self.limit is not None and total > self.limit:
                self.failure = AttemptResult(URLGrabError(
                    8, f"Exceeded limit ({self.limit}): {redact(self.binding.url)}", url=self.binding.url),
                    Cause.TOO_BIG, final=True)
                return 0
            if write_at is None:
                self.sink.write(data)
            else:
                self.sink.write_at(data, write_at + self.received)
            self.received += n
            if self.progress:
                meter = self.req.meter  # a batch's per-file meter is made when the body starts
                if meter is not None:
                    meter.update(total)
            return None
        except BaseException as e:
            return self.write_failed(e)

    def write_failed(self, exc: BaseException) -> int:
        """A write callback raised: a local write error fails the attempt (errno 16),
        anything else is re-raised by the loop; 0 stops the transfer."""
        if isinstance(exc, OSError):
            self.failure = AttemptResult(URLGrabError(16, f"Local file write error: {exc.strerror or exc}",
                                                      url=self.binding.url, exception=exc), Cause.LOCAL)
        else:
            self.engine.stash(exc)
        return 0

    def _begin(self) -> None:
        """First body bytes: check how the server answered a resume or range, start progress."""
        self.begun = True
        req = self.req
        if self.segment is not None:  # a ranged attempt of a split download
            req.segments.verify(self)
            return
        if self.offset and self.status == 200:
            # the server ignored our Range: start again from zero
            self.sink.restart(0)
            self.offset = 0
        elif self.offset and req.check_time is not None and self.status and not self._not_newer():
            self.stale_resume = True  # (other protocols are judged once the transfer ended)
            return
        elif self.byte_range is not None and self.status == 200:
            start, end = self.byte_range
            self.skip = start
            self.remaining = None if end is None else end - start
        req.body_started = True
        if not req.meter_started:
            size = req.opts.size or None
            if self.content_length is not None:
                if self.status == 206 or (self.offset and not self.status):
                    size = self.offset + self.content_length
                elif req.byte_range is None:
                    size = self.content_length
            req.start_meter(size)
        if req.segments is not None:
            req.segments.sized(self)

    # -- after the attempt ---------------------------------------------------

    def reconnect(self, errnum: int) -> bool:
        """Ready this attempt to go again on a new connection, when its reply was garbage
        from the first byte on a reused one (curl 8 "Invalid status line", or curl 1
        "Received HTTP/0.9"): bytes the previous response on that connection left
        behind, such as a body longer than its Content-Length that arrived after
        libcurl had put the connection back in its pool.  Once per attempt, never
        for a POST (the server did get it); False when this is not that case.
        """
        if self.reconnected or self.received or self.binding.opts.data is not None:
            return False
        curl = self.curl
        try:
            if curl.getinfo(pycurl.NUM_CONNECTS) or curl.getinfo(_curl.INFO_SIZE_DOWNLOAD):
                return False  # a new connection, or a body: not leftovers
            if errnum == 1 and curl.getinfo(pycurl.RESPONSE_CODE):
                return False  # a reply was understood (a refused redirect, say)
            curl.setopt(pycurl.FRESH_CONNECT, 1)
        except pycurl.error:
            return False
        self.handle.forget()  # the next configure() resets the handle, FRESH_CONNECT with it
        if self.direct and self.header_lines:
            self.header_lines.clear()  # (from the connection given up)
            self.header_bytes = 0
        self.reconnected = True
        self.status = 0
        self.reason = ""
        self.headers = ()
        self.header_bytes = 0
        self.content_length = None
        return True

    def outcome(self, errnum: int, errmsg: str) -> AttemptResult:
        """How the attempt ended (libcurl's ``errnum``, HTTP status, our own checks)."""
        url = self.binding.url
        if self.failure is not None:
            return self.failure
        if self.complete:
            errnum = 0  # it stopped its own transfer (error 23) once its segment was whole
        if self.direct:
            if errnum == 23:
                failure = self.sink.write_failure()
                if failure is not None:
                    return AttemptResult(failure, Cause.LOCAL)
            getinfo = self.handle.getinfo
            got = getinfo(_SIZE_DOWNLOAD)
            self.received = got if type(got) is int else int(got)  # (a float: SIZE_DOWNLOAD of an old pycurl)
            if url[:4] == "http":
                self.status = status = getinfo(_RESPONSE_CODE)
                if status >= 300:
                    self.reason = _reason(status)
                    if status >= 400:  # read now: the handle is reused
                        self.direct_retry_after = self._direct_retry_after()
            self.begun = True
        if errnum == 0 and not self.begun and self.status < 300:
            self._begin()  # an empty body
        if self.status >= 400 or (self.status >= 300 and errnum == 0):
            if self.status == 416 and self.offset and self._complete_416():
                return SUCCESS
            return _outcome.from_http(self.status, self.reason, self._failed_url(), self._retry_after())
        if errnum:
            if errnum == 33 and self.offset and self._complete_416():
                return SUCCESS
            return _outcome.from_curl(errnum, errmsg, self._failed_url(), self.received)
        try:
            ft = self.handle.getinfo(_FILETIME)
            if ft and ft > 0:
                self.filetime = float(ft)
        except pycurl.error:
            pass
        if self.offset and not self.status and self.req.check_time is not None and not self._not_newer():
            self.stale_resume = True  # FTP, file://: the resumed file turned out older than the source
        return SUCCESS

    def _failed_url(self) -> str:
        """The URL that failed: where redirects led (classic callers read ``err.url``)."""
        try:
            if self.curl.getinfo(pycurl.REDIRECT_COUNT):
                return self.curl.getinfo(pycurl.EFFECTIVE_URL)
        except pycurl.error:
            pass
        return self.binding.url

    def _complete_416(self) -> bool:
        """A reget whose file is already whole: the 416 says ``bytes */N`` with N == offset."""
        for line in self.headers:
            if line[:14].lower() == b"content-range:":
                total = line.split(b"/")[-1].strip()
                if total.isdigit() and int(total) == self.offset:
                    if self.req.check_time is not None and not self._not_newer():
                        self.stale_resume = True
                        return False
                    self.begun = True
                    self.req.body_started = True
                    return True
        return False

    def _not_newer(self) -> bool:
        """check_timestamp: the remote file's time is known and not after the local one's.

        HTTP reads the reply's Last-Modified (libcurl's time cannot be read from
        inside a callback); FTP and file:// ask libcurl once the transfer ended.
        """
        remote = None
        if self.status:
            for line in self.headers:
                if line[:14].lower() == b"last-modified:":
                    import email.utils  # only now: ~12 ms at start-up otherwise

                    try:
                        remote = email.utils.parsedate_to_datetime(line[14:].strip().decode("latin-1")).timestamp()
                    except (TypeError, ValueError):
                        pass
        else:
            try:
                remote = self.curl.getinfo(pycurl.INFO_FILETIME)
            except pycurl.error:
                pass
        return remote is not None and 0 < remote <= self.req.check_time

    def _direct_retry_after(self) -> float | None:
        """A direct attempt's Retry-After: libcurl's (CURLINFO_RETRY_AFTER), or, with a
        pycurl that cannot read it, from the last response's kept header lines."""
        info = _curl.RETRY_AFTER_INFO
        if info is not None:
            value = self.curl.getinfo(info)
            return float(value) if value and value > 0 else None
        lines = self.header_lines
        last = 0
        for i, line in enumerate(lines):
            if line[:5] == b"HTTP/":
                last = i + 1
        return _parse_retry_after(lines[last:])

    def _retry_after(self) -> float | None:
        """Seconds from a ``Retry-After`` header, if any."""
        if self.direct:
            return self.direct_retry_after
        return _parse_retry_after(self.headers)


def _parse_retry_after(lines: Any) -> float | None:
    """Seconds from a ``Retry-After`` header among ``lines`` (delay or HTTP-date), if any."""
    for line in lines:
        if line[:12].lower() == b"retry-after:":
            value = line[12:].strip()
            if value.isdigit():
                return float(value)
            import email.utils  # only for an HTTP-date: ~12 ms at start-up otherwise

            try:
                when = email.utils.parsedate_to_datetime(value.decode("latin-1"))
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None
