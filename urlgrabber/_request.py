"""One download's life, as explicit states.

A ``Request`` goes QUEUED -> RUNNING -> (RETRY | FAILOVER -> RUNNING ...) ->
DONE | FAILED.  It owns its sink (temporary file, memory, or stream), its
resume offset, its progress meter and the classic callbacks.  Where the bytes
come from is its ``source``: one URL, or a MirrorGroup (mirror.py); both
follow ``_interfaces.Source``.  One attempt is a ``Transfer`` (_transfer.py);
how it ended is an ``AttemptResult`` (_outcome.py), judged by ``Retry``
(_policy.py) and then by the source's failover.
"""

from __future__ import annotations

import os
import time

from . import _lazy
from . import grabber as _classic  # (partly imported here: its DEBUG is read at call time)
from ._named import Named
from ._outcome import AttemptResult, Cause, from_error
from ._policy import Retry, Timeout
from .errors import URLGrabError, redact

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from . import _curl, _segments
    from ._interfaces import Sink, Source
    from ._transfer import Transfer
else:  # the transport (libcurl), loaded with the first attempt, not with the API
    _curl = _lazy.Module("urlgrabber._curl", globals(), "_curl")
    _segments = _lazy.Module("urlgrabber._segments", globals(), "_segments")
    _transfer = _lazy.Module("urlgrabber._transfer", globals(), "_transfer")


# grabber's namespace, where DEBUG is read at each call: grabber has a module
# __getattr__ (for grabber.pycurl), which keeps the interpreter (3.11) from
# specialising reads of its attributes, and DEBUG is read once per attempt
_classic_vars = vars(_classic)


class State(Named):
    QUEUED = "queued"
    RUNNING = "running"
    RETRY = "retrying"
    FAILOVER = "failing over"
    SEGMENT_WAITING = "a segment waits for a connection"  # (segmented downloads: queue it again)
    DONE = "done"
    FAILED = "failed"


# Each state under its own name too, for the per-file paths: a global is read faster
# than a class attribute.
QUEUED = State.QUEUED
RUNNING = State.RUNNING
RETRY = State.RETRY
FAILOVER = State.FAILOVER
SEGMENT_WAITING = State.SEGMENT_WAITING
DONE = State.DONE
FAILED = State.FAILED
FINISHED = (DONE, FAILED)
_OK = AttemptResult(None)
# an attempt that broke off after some bytes: the next one resumes after them
_RESUMABLE = (Cause.NETWORK_CUT, Cause.RESET, Cause.STALL)


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
    """One of classic's debug lines, when a logger is set (``grabber.set_logger`` or
    ``grabber.DEBUG = logger``, read at each call); URLs among ``args`` are redacted
    then (not before: this runs for every attempt).  The lines of every attempt check
    grabber's ``DEBUG`` first: without a logger they build no arguments and make no call."""
    debug = _classic_vars["DEBUG"]
    if debug:
        debug.info(msg, *(redact(a) if isinstance(a, str) else a for a in args))


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


def _do_raise(obj: Any) -> Any:
    """The default ``failfunc``: raise the final exception (``parallel_end(raise_errors=False)``
    keeps it in the batch result instead)."""
    raise obj.exception


class UrlSource(Binding):
    """A request for one URL: scheduled under ``key`` with at most ``limit`` running.

    Every attempt goes to the same place, so the source is itself the Binding its
    attempts get (one object less per queued request than a Binding of its own).
    """

    __slots__ = ("lane", "limit", "group")

    def __init__(self, url: str, key: Any, limit: int, opts: Any) -> None:
        self.url = url  # (Binding's fields set here: one call less per request)
        self.key = key
        self.opts = opts
        self.mirror = None
        self.error = None
        self.lane = key
        self.limit = limit
        self.group = None  # (a slot: a class attribute read through an instance is not specialised on 3.11)

    def bind(self, req: Request, active: Mapping[Any, Any]) -> Binding | None:
        if active.get(self.lane, 0) >= self.limit:
            return None
        if req.segments is not None and self.lane in req.avoid_keys():
            return None  # it refused this file's ranges: the request starts over once they end
        return self

    def max_segments(self, req: Request) -> int | None:
        """One connection unless ``segments`` asks for more (to the same host)."""
        return req.opts.segments or 1

    def segment_binding(self, req: Request, active: Mapping[Any, Any], avoid: Any) -> Binding | None:
        if self.lane in avoid or active.get(self.lane, 0) >= self.limit:
            return None
        return self

    def refuses_ranges(self, binding: Binding) -> None:
        return None

    def attempt_ended(self, req: Request, binding: Binding, result: AttemptResult,
                      transfer: Transfer | None, active: Mapping[Any, Any]) -> None:
        return None

    def failover(self, req: Request, result: AttemptResult) -> URLGrabError | None:
        """No other URL to try: the error stands."""
        return result.error

    def hedge_binding(self, req: Request, transfer: Transfer, rate: float, remaining: int,
                      active: Mapping[Any, Any]) -> Binding | None:
        return None  # one URL: nowhere else to race

    def next_wakeup(self) -> float | None:
        return None


class Request:
    """One download: options, destination, state, attempts and result."""

    __slots__ = (
        "opts", "kind", "source", "sink", "filename", "url", "state", "byte_range", "errors",
        "tries", "attempts", "offset", "check_time", "exception", "result", "transfer", "hedge",
        "hedged", "no_cache", "binding", "meter", "meter_started", "started_at", "seconds", "nbytes",
        "batch_meter", "body_started", "blocking", "last_status", "last_headers", "last_result", "pause",
        "keep_failure", "segments",
    )

    def __init__(self, opts: Any, kind: str, source: Source, sink: Sink,
                 filename: str | None = None, url: str = "") -> None:
        self.opts = opts
        self.kind = kind                  # "grab" | "read" | "open"
        self.source = source
        self.sink = sink
        self.filename = filename
        self.url = url                    # the URL (or relative path) asked for
        self.state = QUEUED
        self.byte_range = _python_range(opts.range) if opts.range is not None else None
        self.errors: list[tuple[str, str]] | tuple = ()  # (url, message) per failed attempt
        self.tries = 0                    # attempts on the current URL/mirror
        self.attempts = 0                 # attempts in all
        self.offset = 0                   # bytes the next attempt resumes after
        self.check_time: float | None = None  # reget='check_timestamp': the partial file's mtime
        self.exception: URLGrabError | None = None
        self.result: Any = None
        self.transfer: Transfer | None = None
        self.hedge: Transfer | None = None  # a second attempt racing a slow one (mirrors)
        self.hedged = False
        self.no_cache = False             # retry_no_cache asked for a fresh copy
        self.binding: Binding | None = None
        self.meter: Any = opts.progress_obj
        self.meter_started = False
        self.started_at: float | None = None
        self.seconds = 0.0
        self.nbytes = 0
        self.batch_meter: Any = None      # MultiFileMeter of the batch, if any
        self.body_started = False         # a stream has its first bytes (or ended)
        self.blocking = False             # a blocking call (interrupt_callback applies)
        # the last ended attempt's response, kept for the caller (not the attempt
        # itself: it points back here, and the cycle would wait for the collector)
        self.last_status = 0
        self.last_headers: list[bytes] | tuple = ()
        self.last_result: AttemptResult | None = None
        self.pause: float | None = None
        self.keep_failure = False         # parallel_end(raise_errors=False): skip the raising default failfunc
        self.segments: _segments.SegmentedFile | None = None  # a large file fetched in ranges

    def queued(self, blocking: bool) -> None:
        """Handed to the engine (again): ``blocking`` calls honour ``interrupt_callback``."""
        self.state = QUEUED
        self.blocking = blocking

    @staticmethod
    def all_queued(reqs: list[Request]) -> None:
        """``queued(False)`` for each of a batch's requests (one call for the batch)."""
        for req in reqs:
            req.state = QUEUED
            req.blocking = False

    def use_batch_meter(self, meter: Any) -> None:
        """A batch's MultiFileMeter replaces the per-file meter: it makes one per file."""
        self.batch_meter = meter
        self.meter = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def wants_start(self) -> bool:
        """False for a queue entry with nothing left to start: the request ended, its one
        attempt runs, or (split in segments) no segment is waiting."""
        if self.state in FINISHED:
            return False
        segs = self.segments
        if segs is not None and segs.split:
            return segs.has_waiting()
        return self.transfer is None

    def avoid_keys(self) -> Any:
        """Keys a split download's next attempt must not go to (they refused its ranges)."""
        segs = self.segments
        return segs.avoid if segs is not None and segs.split else ()

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
        segs = self.segments
        if segs is not None and segs.split:
            return segs.start_queued(handle, binding, engine)
        if segs is None and self.kind == "grab":
            self.segments = _segments.plan(self, engine)
        if self.started_at is None:
            self.started_at = time.monotonic()
            have = self.prepare()
        else:
            have = self.sink.open()
        self.state = RUNNING
        if self.no_cache and not binding.opts.no_cache:
            binding = Binding(binding.url, binding.key, binding.opts.derive(no_cache=True), binding.mirror)
        self.binding = binding
        self.tries += 1
        self.attempts += 1
        if _classic_vars["DEBUG"]:
            _log("attempt %i/%s: %s", self.tries, binding.opts.retry, binding.url)
        offset = self.offset
        if have != offset:
            self.sink.restart(offset)
        opts = binding.opts
        _curl.configure(handle, opts, binding.url, offset=offset,
                        byte_range=self.byte_range, filetime=self.check_time is not None)
        transfer = _transfer.Transfer(self, handle, binding, offset, engine)  # (configure may renew the handle)
        if (self.kind == "grab" and not offset and self.byte_range is None
                and self.meter is None and self.batch_meter is None
                and (not opts.size or _curl.MAX_SIZE_STOPS_TRANSFERS)):
            # no body to watch chunk by chunk (no resume, range, meter, or size that
            # libcurl would not enforce): libcurl writes straight into the file, and
            # the status is read once at the end
            write = None
            if self.segments is not None:  # (its size is read once the first bytes came)
                write = self.segments.probe_writer(transfer, handle.writer.write)
            _curl.wire_direct(handle, self.sink, transfer.direct_headers(), write)
        else:
            transfer.observe()
        self.transfer = transfer
        return transfer

    def skip_attempt(self, binding: Binding, err: URLGrabError) -> State:
        """An attempt that cannot run (a mirror dead for this batch, an unwritable
        destination, a value libcurl refuses): failed at once, no retry on this URL."""
        if self.started_at is None:
            self.started_at = time.monotonic()
        self.binding = binding
        self.attempts += 1
        return self._after_failure(from_error(err, final=True), None)

    def start_hedge(self, handle: _curl.Handle, binding: Binding, engine: Any) -> Transfer:
        """Race the running transfer: fetch the bytes it has not written yet from ``binding``.

        The hedge writes at its own file offsets; whichever attempt completes
        first leaves the file whole, and the other is cancelled.
        """
        cut = self.sink.position()
        _curl.configure(handle, binding.opts, binding.url, byte_range=(cut, None))
        transfer = _transfer.Transfer(self, handle, binding, 0, engine)  # (configure may renew the handle)
        transfer.byte_range = (cut, None)
        transfer.observe()
        transfer.write_at = cut
        transfer.progress = False
        self.hedge = transfer
        self.hedged = True
        return transfer

    def hedge_won(self, hedge: Transfer) -> None:
        """The hedge completed first: it becomes the attempt that finishes the request."""
        self.hedge = None
        self.transfer = hedge
        self.binding = hedge.binding
        self.sink.seek_end()

    # -- ending an attempt ---------------------------------------------------

    def attempt_ended(self, transfer: Transfer, result: AttemptResult, active: Mapping[Any, Any]) -> State:
        """Decide what a finished attempt (``transfer.outcome()``) means; the new state.
        ``active``: running transfers per key, for the source's bookkeeping."""
        if transfer.segment is not None:
            segs = self.segments
            if segs is None or transfer.segment not in segs.parts:
                # a segment's attempt that ended with another: the file was delivered
                # (or started over) meanwhile, so there is nothing for the engine to do
                return RUNNING
            return segs.ended(transfer, result, active)
        self.transfer = None
        self.last_status = transfer.status  # (keep_response(transfer) inline: once per attempt)
        self.last_headers = transfer.headers
        self.nbytes = transfer.received if transfer.direct else self.sink.size()
        if transfer.stale_resume:
            return self._fetch_whole()
        if result.ok:
            result = self._deliver(transfer)
        self.source.attempt_ended(self, transfer.binding, result, transfer, active)
        if result.ok:
            return self._succeed()
        return self._after_failure(result, transfer)

    def keep_response(self, transfer: Transfer) -> None:
        """Remember an ended attempt's status and headers (urlopen's ``info()``)."""
        self.last_status = transfer.status
        self.last_headers = transfer.headers

    def transfer_released(self, transfer: Transfer) -> None:
        """The engine took ``transfer`` off the loop."""
        if self.transfer is transfer:
            self.transfer = None
        elif self.hedge is transfer:
            self.hedge = None
        seg = transfer.segment
        if seg is not None and seg.transfer is transfer:
            seg.transfer = None

    def _fetch_whole(self) -> State:
        """reget='check_timestamp' found the remote file newer: fetch it whole (no try used)."""
        self.offset = 0
        self.check_time = None
        self.tries -= 1
        self.state = RETRY
        return self.state

    def _deliver(self, transfer: Transfer) -> AttemptResult:
        """Publish the complete body, then let ``checkfunc`` judge it where the caller looks.

        A file is in place (mtime set) when checkfunc runs, with ``obj.filename``
        the destination; an existing destination waits in a hidden backup
        until checkfunc accepts (dropped) or rejects or raises (put back).
        Once checkfunc returns, the destination path is not touched again.
        """
        cb = None if self.kind == "open" else self.opts.checkfunc
        sink = self.sink
        try:
            self.result = sink.commit(transfer.filetime, cb is not None)  # (mtime, keep_old)
        except URLGrabError as e:
            return from_error(e)
        if cb is None:
            return _OK
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
            return from_error(e)
        except BaseException:
            sink.reject()
            raise
        sink.accept()
        return _OK

    def _succeed(self) -> State:
        if _classic_vars["DEBUG"]:
            _log("success")
        self.seconds = time.monotonic() - (self.started_at or time.monotonic())
        self.state = DONE
        self.segments = None  # (nothing left to split; it points back here)
        if self.meter is not None or self.batch_meter is not None:
            self._end_meter()
        return self.state

    def _after_failure(self, result: AttemptResult, transfer: Transfer | None,
                       callback: bool = True) -> State:
        """A failed attempt: classic retry rules (``Retry``), then the source's
        failover (mirrors), then the final failure."""
        url = self.binding.url if self.binding else self.url
        self.errors = [*self.errors, (redact(url), str(result.error))]
        _log("exception: %s", result.error)
        if callback:
            result = self._failure_callback(result)
        if transfer is not None:
            self._keep_or_drop_bytes(result, transfer)
        self.last_result = result
        retry = Retry(self.binding.opts if self.binding else self.opts)
        if retry.allows(result, self.tries, _log):
            if retry.wants_fresh_copy(result):
                self.no_cache = True  # the next attempt must not get a cached copy
            self.state = RETRY
            return self.state
        final = self.source.failover(self, result)
        if final is None or isinstance(final, float):
            self.pause = final  # seconds before the source's next URL is tried, if any
            self.tries = 0
            self.state = FAILOVER
            return self.state
        return self.give_up(final)

    def retry_delay(self) -> float | None:
        """Seconds to wait before the next attempt: a retry backs off (Retry-After
        wins), a failover to the same last mirror pauses as its source says."""
        if self.state is FAILOVER:
            return self.pause
        if self.last_result is None:
            return None
        return Retry.delay(self.last_result, Timeout.of(self.opts.timeout), self.tries)

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
            return self._after_failure(from_error(e, final=True), transfer, callback=False)
        result = AttemptResult(URLGrabError(15, f"user abort: {redact(self.url)}", url=self.url, exception=exc),
                               Cause.INTERRUPTED)
        if not Retry(self.binding.opts if self.binding else self.opts).allows(result, self.tries, _log):
            raise exc  # classic: no retry left, the KeyboardInterrupt itself goes on
        return self._after_failure(result, transfer, callback=False)

    def _failure_callback(self, result: AttemptResult) -> AttemptResult:
        """``failure_callback`` after each failed attempt; a URLGrabError it raises ends the retries."""
        cb = self.opts.failure_callback
        if cb is None:
            return result
        _log("calling callback: %s", cb)
        err = result.error
        obj = CallbackObject(self.opts, exception=err, url=err.url or redact(self.url),
                             filename=self.filename, tries=self.tries, retry=self.opts.retry,
                             retry_no_cache=self.opts.retry_no_cache)
        try:
            run_callback(cb, obj)
        except URLGrabError as e:
            return from_error(e, final=True)
        return result

    def _keep_or_drop_bytes(self, result: AttemptResult, transfer: Transfer) -> None:
        """Resume after bytes a broken network left behind; otherwise start again from zero."""
        cut = result.cause in _RESUMABLE and transfer.received > 0
        if (cut and self.byte_range is None and self.kind != "open"
                and not self.opts.data) or self.kind == "open":
            self.offset = self.sink.size()
        elif self.opts.reget and self.kind == "grab":
            if result.cause in (Cause.REJECTED, Cause.RANGE):
                # a rejected or unresumable file: a retry fetches it whole
                # (the next attempt truncates it to the offset)
                self.offset = 0
                self.check_time = None
            else:
                self.offset = self.sink.size()
        else:
            self.offset = 0

    def give_up(self, err: URLGrabError) -> State:
        """Final failure: clean up (the engine then runs ``failfunc``, see run_failfunc)."""
        self.exception = err
        if self.segments is not None:
            self.segments.stop()
            self.segments = None
        if self.kind != "open":
            self.sink.discard()
        self.seconds = time.monotonic() - (self.started_at or time.monotonic())
        self.state = FAILED
        self._end_meter(str(err))
        return self.state

    def run_failfunc(self) -> Any:
        """Call ``failfunc`` once with the final exception (the default raises it,
        unless ``keep_failure``: the failure then stays in the batch result)."""
        if self.keep_failure and self.opts.failfunc is _do_raise:
            return None
        obj = CallbackObject(self.opts, exception=self.exception, url=self.exception.url or redact(self.url),
                             filename=self.filename, tries=self.attempts)
        self.result = run_callback(self.opts.failfunc, obj)
        return self.result

    def abort(self) -> None:
        """Stop for good without running callbacks (interrupt, batch stopped)."""
        if self.finished:
            return
        self.sink.discard()
        self.state = FAILED
        self.segments = None  # (the engine stopped its attempts: _detach)
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

