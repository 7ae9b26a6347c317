"""One download's life, as explicit states, and one attempt at it on a curl handle.

A ``Request`` goes QUEUED -> RUNNING -> (RETRY | FAILOVER -> RUNNING ...) ->
DONE | FAILED.  It owns its sink (temporary file, memory, or stream), its
resume offset, its progress meter and the classic callbacks.  Where the bytes
come from is its ``source``: one URL, or a MirrorGroup (mirror.py).
A ``Transfer`` is one attempt: the curl callbacks and what they saw.
"""

from __future__ import annotations

import email.utils
import enum
import http.client
import os
import sys
import time
from typing import Any

import pycurl

from . import _curl
from .errors import URLGrabError, redact


class State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRY = "retrying"
    FAILOVER = "failing over"
    DONE = "done"
    FAILED = "failed"


FINISHED = (State.DONE, State.FAILED)
# libcurl refuses response headers larger than this by itself, so a larger
# ``max_header_size`` needs no header callback to be enforced.
_CURL_HEADER_LIMIT = 300 * 1024


class CallbackObject:
    """What callbacks receive: named fields, falling back to the request's options."""

    def __init__(self, opts: Any = None, **fields: Any) -> None:
        self.__dict__["_opts"] = opts
        self.__dict__.update(fields)

    def __getattr__(self, name: str) -> Any:
        opts = self.__dict__.get("_opts")
        if opts is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(opts, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value


def _log(msg: str, *args: Any) -> None:
    """One of classic's debug lines, when a logger is set (``grabber.set_logger``)."""
    debug = getattr(sys.modules.get("urlgrabber.grabber"), "DEBUG", None)
    if debug:
        debug.info(msg, *args)


def run_callback(cb: Any, obj: Any) -> Any:
    """Call a classic callback: a callable, or ``(callable, args, kwargs)``."""
    if cb is None:
        return None
    if isinstance(cb, tuple):
        fn = cb[0]
        args = cb[1] if len(cb) > 1 else ()
        kwargs = cb[2] if len(cb) > 2 else {}
        return fn(obj, *args, **kwargs)
    return cb(obj)


class Binding:
    """Where one attempt goes: the full URL, its scheduling key, the options to use."""

    __slots__ = ("url", "key", "opts", "mirror", "error")

    def __init__(self, url: str, key: Any, opts: Any, mirror: Any = None,
                 error: URLGrabError | None = None) -> None:
        self.url = url
        self.key = key
        self.opts = opts
        self.mirror = mirror
        self.error = error  # set: skip this attempt, it is known to fail


class UrlSource:
    """A request for one URL: scheduled under ``key`` with at most ``limit`` running."""

    def __init__(self, url: str, key: Any, limit: int, opts: Any) -> None:
        self.url = url
        self.lane = key
        self.limit = limit
        self._binding = Binding(url, key, opts)

    def bind(self, req: Request, active: dict) -> Binding | None:
        if active.get(self.lane, 0) >= self.limit:
            return None
        return self._binding

    def attempt_ended(self, req: Request, binding: Binding, err: URLGrabError | None,
                      transfer: Transfer | None) -> None:
        return None

    def failover(self, req: Request, err: URLGrabError) -> URLGrabError | None:
        """No other URL to try: the error stands."""
        return err


class Request:
    """One download: options, destination, state, attempts and result."""

    # Defaults most requests never change live on the class, not in every instance.
    tries = 0                         # attempts on the current URL/mirror
    attempts = 0                      # attempts in all
    offset = 0                        # bytes the next attempt resumes after
    check_time: float | None = None   # reget='check_timestamp': the partial file's mtime
    exception: URLGrabError | None = None
    result: Any = None
    transfer: Transfer | None = None
    hedge: Transfer | None = None     # a second attempt racing a slow one (mirrors)
    hedged = False
    no_cache = False                  # retry_no_cache asked for a fresh copy
    binding: Binding | None = None
    meter: Any = None
    meter_started = False
    started_at: float | None = None
    seconds = 0.0
    nbytes = 0
    batch_meter: Any = None           # MultiFileMeter of the batch, if any
    body_started = False              # a stream has its first bytes (or ended)
    blocking = False                  # a blocking call (interrupt_callback applies)
    last_transfer: Transfer | None = None

    def __init__(self, opts: Any, kind: str, source: Any, sink: Any, *,
                 filename: str | None = None, url: str = "") -> None:
        self.opts = opts
        self.kind = kind                  # "grab" | "read" | "open"
        self.source = source
        self.sink = sink
        self.filename = filename
        self.url = url                    # the URL (or relative path) asked for
        self.state = State.QUEUED
        self.byte_range = _python_range(opts.range) if opts.range is not None else None
        self.errors: list[tuple[str, str]] = []

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    # -- starting an attempt -------------------------------------------------

    def prepare(self) -> int:
        """Open the sink before the first attempt (reget starts from what is there); its size."""
        have = have_now = self.sink.open()
        if self.opts.reget and self.kind == "grab" and have:
            self.offset = have
            if self.opts.reget == "check_timestamp":
                self.check_time = os.stat(self.sink.path).st_mtime
        elif have:
            self.sink.restart(0)
            have_now = 0
        return have_now

    def start_attempt(self, handle: _curl.Handle, binding: Binding, engine: Any) -> Transfer:
        if self.started_at is None:
            self.started_at = time.monotonic()
            have = self.prepare()
        else:
            have = self.sink.open()
        self.state = State.RUNNING
        if self.no_cache and not binding.opts.no_cache:
            binding = Binding(binding.url, binding.key, binding.opts.derive(no_cache=True), binding.mirror)
        self.binding = binding
        self.tries += 1
        self.attempts += 1
        _log("attempt %i/%s: %s", self.tries, binding.opts.retry, redact(binding.url))
        offset = self.offset
        if have != offset:
            self.sink.restart(offset)
        transfer = Transfer(self, handle, binding, offset, engine)
        _curl.configure(handle, binding.opts, binding.url, offset=offset,
                        byte_range=self.byte_range, filetime=self.check_time is not None)
        curl = handle.curl
        if self._lean(offset, binding.opts):
            # Nothing to watch byte by byte: libcurl writes straight into the
            # file and the status is read once at the end.
            curl.setopt(pycurl.WRITEFUNCTION, self.sink.raw_write())
            if handle.header_cb:
                curl.unsetopt(pycurl.HEADERFUNCTION)
                handle.header_cb = False
        else:
            transfer.watch()
            handle.header_cb = True
            curl.setopt(pycurl.WRITEFUNCTION, transfer.on_write)
            curl.setopt(pycurl.HEADERFUNCTION, transfer.on_header)
        self.transfer = transfer
        return transfer

    def fail_attempt(self, binding: Binding, err: URLGrabError) -> State:
        """An attempt that cannot run (a mirror dead for this batch, an unwritable
        destination): count it as failed at once, without retries on this URL."""
        if self.started_at is None:
            self.started_at = time.monotonic()
        self.binding = binding
        self.attempts += 1
        err._final = True
        return self._attempt_failed(err, None)

    def start_hedge(self, handle: _curl.Handle, binding: Binding, engine: Any) -> Transfer:
        """Race the running transfer: fetch the bytes it has not written yet from ``binding``.

        The hedge writes at its own file offsets; whichever attempt completes
        first leaves the file whole, and the other is cancelled.
        """
        cut = self.sink.position()
        transfer = Transfer(self, handle, binding, 0, engine)
        transfer.watch()
        transfer.byte_range = (cut, None)
        transfer.write_at = cut
        transfer.progress = False
        _curl.configure(handle, binding.opts, binding.url, byte_range=transfer.byte_range)
        handle.header_cb = True
        curl = handle.curl
        curl.setopt(pycurl.WRITEFUNCTION, transfer.on_write)
        curl.setopt(pycurl.HEADERFUNCTION, transfer.on_header)
        self.hedge = transfer
        self.hedged = True
        return transfer

    def hedge_won(self, hedge: Transfer) -> None:
        """The hedge completed first: it becomes the attempt that finishes the request."""
        self.hedge = None
        self.transfer = hedge
        self.binding = hedge.binding
        self.sink.seek_end()

    def _lean(self, offset: int, opts: Any) -> bool:
        """True when an attempt needs no Python code per header or chunk."""
        return (self.kind == "grab" and not offset and self.byte_range is None
                and self.meter is None and self.batch_meter is None
                and (not opts.max_header_size or opts.max_header_size >= _CURL_HEADER_LIMIT))

    # -- ending an attempt ---------------------------------------------------

    def attempt_ended(self, transfer: Transfer, err: URLGrabError | None) -> State:
        """Decide what a finished attempt (``transfer.outcome()``: ``err``) means; the new state."""
        self.transfer = None
        self.last_transfer = transfer
        self.nbytes = transfer.received if transfer.lean else self.sink.size()
        if transfer.stale_resume:
            return self._fetch_whole()
        if err is None:
            err = self._deliver(transfer)
        self.source.attempt_ended(self, transfer.binding, err, transfer)
        if err is None:
            return self._succeed()
        return self._attempt_failed(err, transfer)

    def _fetch_whole(self) -> State:
        """reget='check_timestamp' found the remote file newer: fetch it whole (no try used)."""
        self.offset = 0
        self.check_time = None
        self.tries -= 1
        self.state = State.RETRY
        return self.state

    def _deliver(self, transfer: Transfer) -> URLGrabError | None:
        """Publish the complete body, then let ``checkfunc`` judge it where the caller looks.

        A file is in place (mtime set) when checkfunc runs, with ``obj.filename``
        the destination; an existing destination waits in a hidden backup
        until checkfunc accepts (dropped) or rejects or raises (put back).
        Once checkfunc returns, the destination path is not touched again.
        """
        cb = None if self.kind == "open" else self.opts.checkfunc
        sink = self.sink
        try:
            self.result = sink.commit(transfer.filetime, keep_old=cb is not None)
        except URLGrabError as e:
            return e
        if cb is None:
            return None
        url = redact(self.binding.url)
        if self.kind == "grab":
            obj = CallbackObject(self.opts, filename=self.result, url=url)
        else:  # classic urlread's object has data and url, and no filename at all
            obj = CallbackObject(self.opts, data=self.result, url=url)
        try:
            run_callback(cb, obj)
        except URLGrabError as e:
            sink.reject()
            if not e.url:
                e.url = url
            return e
        except BaseException:
            sink.reject()
            raise
        sink.accept()
        return None

    def _succeed(self) -> State:
        _log("success")
        self.seconds = time.monotonic() - (self.started_at or time.monotonic())
        self.state = State.DONE
        self._end_meter()
        return self.state

    def _attempt_failed(self, err: URLGrabError, transfer: Transfer | None, callback: bool = True) -> State:
        """Classic retry rules, then failover (mirrors), then final failure."""
        url = self.binding.url if self.binding else self.url
        self.errors.append((redact(url), str(err)))
        _log("exception: %s", err)
        if callback:
            err = self._failure_callback(err)
        if transfer is not None:
            self._keep_or_drop_bytes(err, transfer)
        opts = self.binding.opts if self.binding else self.opts
        errno = getattr(err, "errno", None)
        if opts.retry is None or self.tries >= opts.retry or getattr(err, "_final", False):
            _log("retries exceeded, re-raising")
        elif errno not in opts.retrycodes and not getattr(err, "_retry", False):
            _log("retrycode (%i) not in list %s, re-raising", errno, opts.retrycodes)
        else:
            if errno is not None and errno < 0 and opts.retry_no_cache:
                self.no_cache = True  # the next attempt must not get a cached copy
            self.state = State.RETRY
            return self.state
        final = self.source.failover(self, err)
        if final is None:
            self.tries = 0
            self.state = State.FAILOVER
            return self.state
        return self.fail(final)

    def interrupted(self, exc: BaseException, transfer: Transfer | None) -> State:
        """KeyboardInterrupt with ``interrupt_callback`` set (classic semantics).

        The callback returning normally aborts this attempt and retries apply
        (whatever ``retrycodes`` says); with none left the KeyboardInterrupt
        is raised again.  A URLGrabError from it fails the attempt (a
        MirrorGroup fails over); any other exception propagates.
        """
        obj = CallbackObject(self.opts, exception=exc, url=redact(self.url), filename=self.filename,
                             tries=self.tries, retry=self.opts.retry)
        try:
            run_callback(self.opts.interrupt_callback, obj)
        except URLGrabError as e:
            e._final = True
            return self._attempt_failed(e, transfer, callback=False)
        opts = self.binding.opts if self.binding else self.opts
        if opts.retry is None or self.tries >= opts.retry:
            _log("retries exceeded, re-raising")
            raise exc  # classic: no retry left, the KeyboardInterrupt itself goes on
        err = URLGrabError(15, f"user abort: {redact(self.url)}", url=self.url, exception=exc)
        err._retry = True
        return self._attempt_failed(err, transfer, callback=False)

    def _failure_callback(self, err: URLGrabError) -> URLGrabError:
        """``failure_callback`` after each failed attempt; a URLGrabError it raises ends the retries."""
        cb = self.opts.failure_callback
        if cb is None:
            return err
        _log("calling callback: %s", cb)
        obj = CallbackObject(self.opts, exception=err, url=err.url or redact(self.url),
                             filename=self.filename, tries=self.tries, retry=self.opts.retry,
                             retry_no_cache=self.opts.retry_no_cache)
        try:
            run_callback(cb, obj)
        except URLGrabError as e:
            e._final = True
            return e
        return err

    def _keep_or_drop_bytes(self, err: URLGrabError, transfer: Transfer) -> None:
        """Resume after bytes a broken network left behind; otherwise start again from zero."""
        if (transfer.network_cut and self.byte_range is None and self.kind != "open"
                and not self.opts.data) or self.kind == "open":
            self.offset = self.sink.size()
        elif self.opts.reget and self.kind == "grab":
            if getattr(err, "errno", 0) < 0 or err.errno == 9:
                # a rejected or unresumable file: a retry fetches it whole
                # (the next attempt truncates it to the offset)
                self.offset = 0
                self.check_time = None
            else:
                self.offset = self.sink.size()
        else:
            self.offset = 0

    def fail(self, err: URLGrabError) -> State:
        """Final failure: clean up (the engine then runs ``failfunc``, see run_failfunc)."""
        self.exception = err
        if self.kind != "open":
            self.sink.discard()
        self.seconds = time.monotonic() - (self.started_at or time.monotonic())
        self.state = State.FAILED
        self._end_meter(str(err))
        return self.state

    def run_failfunc(self) -> Any:
        """Call ``failfunc`` once with the final exception (the default raises it)."""
        obj = CallbackObject(self.opts, exception=self.exception, url=self.exception.url or redact(self.url),
                             filename=self.filename, tries=self.attempts)
        self.result = run_callback(self.opts.failfunc, obj)
        return self.result

    def abort(self) -> None:
        """Stop for good without running callbacks (interrupt, batch stopped)."""
        if self.finished:
            return
        self.sink.discard()
        self.state = State.FAILED
        if self.exception is None:
            self.exception = URLGrabError(15, f"user abort: {redact(self.url)}", url=self.url)
        self._end_meter("aborted")

    # -- progress ------------------------------------------------------------

    def start_meter(self, size: int | None) -> None:
        self.meter_started = True
        meter = self.meter
        if meter is None and self.batch_meter is not None:
            meter = self.meter = self.batch_meter.newMeter()
        if meter is None:
            return
        url = self.binding.url if self.binding else self.url
        name = self.filename or url
        basename = os.path.basename(name.rstrip("/")) or name
        meter.start(filename=name, url=redact(url), basename=basename, size=size,
                    text=self.opts.text)

    def _end_meter(self, failure: str | None = None) -> None:
        if self.meter is None and self.batch_meter is None:
            return
        if not self.meter_started:
            if failure is not None and self.batch_meter is None:
                return  # a single file that never started: nothing to close
            self.start_meter(self.opts.size)
        meter = self.meter
        if failure is not None and hasattr(meter, "failure"):
            meter.failure(failure)
        else:
            meter.end(self.nbytes)
        if self.batch_meter is not None:
            self.batch_meter.removeMeter(meter)


class Transfer:
    """One attempt on one curl handle: status, headers and bytes as they arrive."""

    # What most attempts never change lives here, not in every instance.
    status = 0
    reason = ""
    headers: list[bytes] | tuple = ()
    header_bytes = 0
    content_length: int | None = None
    received = 0
    skip = 0
    remaining: int | None = None
    error: URLGrabError | None = None
    filetime: float | None = None
    network_cut = False
    paused = False
    begun = False
    lean = True
    last_got = 0
    write_at: int | None = None  # a hedge writes at fixed offsets
    lean_retry_after: float | None = None
    max_size: int | None = None
    max_header: int | None = None
    limit: int | None = None
    progress = False              # report bytes to the request's meter
    stream = False
    stale_resume = False          # check_timestamp: the remote file is newer than the partial one

    def __init__(self, req: Request, handle: _curl.Handle, binding: Binding, offset: int,
                 engine: Any) -> None:
        self.req = req
        self.handle = handle
        self.curl = handle.curl
        self.binding = binding
        self.offset = offset
        self.engine = engine
        self.sink = req.sink
        self.started = self.last_progress = time.monotonic()
        self.timeout = binding.opts.timeout
        self.byte_range = req.byte_range

    def watch(self) -> None:
        """Set up the per-header and per-chunk checks (every attempt that is not lean)."""
        req = self.req
        opts = self.binding.opts
        self.lean = False
        self.max_size = int(opts.size) if opts.size else None
        self.max_header = opts.max_header_size
        self.limit = getattr(req.sink, "limit", None)
        self.progress = req.meter is not None or req.batch_meter is not None
        self.stream = req.kind == "open"

    # -- curl callbacks (hot path: keep lean, never let an exception escape) --

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
                self.error = URLGrabError(
                    14, f"Header size exceeded {self.max_header} bytes: {redact(self.binding.url)}",
                    url=self.binding.url)
                return -1
            return None
        except BaseException as e:
            self.engine.stash(e)
            return -1

    def on_write(self, data: bytes) -> Any:
        try:
            if self.status >= 300:
                return None  # an error body: discard, keep the connection
            if not self.begun:
                self._begin()
                if self.stale_resume:
                    return 0
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
                self.error = URLGrabError(
                    14, f"Downloaded more than max size ({self.max_size}) for {redact(self.binding.url)}",
                    url=self.binding.url, code=63)
                return 0
            if self.limit is not None and total > self.limit:
                self.error = URLGrabError(8, f"Exceeded limit ({self.limit}): {redact(self.binding.url)}",
                                          url=self.binding.url)
                self.error._final = True
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
        except OSError as e:
            self.error = URLGrabError(16, f"Local file write error: {e.strerror or e}",
                                      url=self.binding.url, exception=e)
            return 0
        except BaseException as e:
            self.engine.stash(e)
            return 0

    def _begin(self) -> None:
        """First body bytes: check how the server answered a resume or range, start progress."""
        self.begun = True
        req = self.req
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

    # -- after the attempt ---------------------------------------------------

    def outcome(self, errnum: int, errmsg: str) -> URLGrabError | None:
        """The attempt's error, or None when the body arrived whole."""
        url = self.binding.url
        if self.error is not None:
            return self.error
        if self.lean:
            if errnum == 23:
                failure = self.sink.write_failure()
                if failure is not None:
                    return failure
            self.received = self.curl.getinfo(pycurl.SIZE_DOWNLOAD_T)
            if url[:4] == "http":
                self.status = self.curl.getinfo(pycurl.RESPONSE_CODE)
                self.reason = http.client.responses.get(self.status, "")
                if self.status >= 400:  # read now: the handle is reused right after
                    value = self.curl.getinfo(pycurl.RETRY_AFTER)
                    self.lean_retry_after = float(value) if value and value > 0 else None
            self.begun = True
        if errnum == 0 and not self.begun and self.status < 300:
            self._begin()  # an empty body
        if self.status >= 400 or (self.status >= 300 and errnum == 0):
            if self.status == 416 and self.offset and self._complete_416():
                return None
            return _curl.error_from_http(self.status, self.reason, self._failed_url())
        if errnum:
            if errnum == 33 and self.offset and self._complete_416():
                return None
            self.network_cut = errnum in _curl.NETWORK_CUT and self.received > 0
            return _curl.error_from_curl(errnum, errmsg, self._failed_url())
        try:
            ft = self.curl.getinfo(pycurl.INFO_FILETIME)
            if ft and ft > 0:
                self.filetime = float(ft)
        except pycurl.error:
            pass
        if self.offset and not self.status and self.req.check_time is not None and not self._not_newer():
            self.stale_resume = True  # FTP, file://: the resumed file turned out older than the source
        return None

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

    def retry_after(self) -> float | None:
        """Seconds from a ``Retry-After`` header, if any."""
        if self.lean:
            return self.lean_retry_after
        for line in self.headers:
            if line[:12].lower() == b"retry-after:":
                value = line[12:].strip()
                if value.isdigit():
                    return float(value)
                try:
                    when = email.utils.parsedate_to_datetime(value.decode("latin-1"))
                    return max(0.0, when.timestamp() - time.time())
                except (TypeError, ValueError):
                    return None
        return None


def _python_range(rng: Any) -> tuple[int, int | None] | None:
    """``(start, end)`` python-style (end exclusive, None = to the end), validated."""
    if rng is None:
        return None
    try:
        start, end = rng
        start = int(start or 0)
        end = None if end is None else int(end)
    except (TypeError, ValueError):
        raise URLGrabError(1, f"Invalid range: {rng!r}") from None
    if start < 0 or (end is not None and end <= start):
        raise URLGrabError(9, f"Invalid range: {rng!r}")
    if start == 0 and end is None:
        return None
    return (start, end)

