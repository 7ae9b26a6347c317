"""The batch queue: ``parallel_begin()``, queued requests, ``parallel_end()``."""

from __future__ import annotations

import _thread  # (not threading: ~6 M instructions at start-up, for a thread-local)
import gc

from . import _lazy
from ._batchresult import BatchResult
from ._request import DONE, Request
from .errors import redact

_DEFAULT_LIMIT = 5
# A batch of this many requests runs with the objects alive at its start frozen (_spare_collector).
_FREEZE_MIN = 1000
_CAN_FREEZE = hasattr(gc, "freeze")

# the event loop and libcurl, loaded on the first batch
_engine = _lazy.Module("urlgrabber._engine", globals(), "_engine")
TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


class _Batch(_thread._local):
    """The calling thread's batch: a batch belongs to the thread that queues and runs
    it, as the engine that runs it does (two threads' batches never mix)."""

    def __init__(self) -> None:
        self.queue: list[Request] = []
        self.limit: int | None = None


_batch = _Batch()


def parallel_begin(max_connections: int | None = None) -> None:
    """Start queueing: requests with ``async_`` set wait for ``parallel_end()``.

    ``max_connections`` caps simultaneous transfers over the whole batch
    (default: ``default_grabber.opts.max_connections`` as in classic, else
    the first request's ``max_connections`` option, else 5).
    """
    _batch.limit = max_connections


def queue_request(req: Request) -> None:
    """Queue ``req`` in the calling thread's batch (``parallel_begin`` or not)."""
    _batch.queue.append(req)


def parallel_end(raise_errors: bool = True) -> list[BatchResult]:
    """Run every request the calling thread queued to completion; one result per
    request, in queue order.

    With the default ``failfunc`` a final failure stops the batch cleanly
    (running transfers aborted, temporary files removed) and raises it.
    ``raise_errors=False`` runs the batch to its end instead: the default
    ``failfunc`` is skipped and each failure stays in its result's
    ``exception`` (a caller's own failfunc still runs).
    """
    return _run_queue(None, raise_errors)


def _run_queue(meter: Any, raise_errors: bool = True) -> list[BatchResult]:
    """parallel_end(), with ``meter`` (parallel_wait's) as the batch's multi-file meter."""
    batch = _batch
    reqs, batch.queue = batch.queue, []
    limit, batch.limit = batch.limit, None
    if not reqs:
        return []
    if not raise_errors:
        for r in reqs:
            r.keep_failure = True
    with _engine.SignalGuard():  # SIGTERM acts like Ctrl-C (clean up), then ends the process
        return _run(reqs, limit, meter)


def _run(reqs: list[Request], limit: int | None, meter: Any) -> list[BatchResult]:
    """Run a batch's requests on this thread's engine; one result per request."""
    if limit is None:
        # classic: the batch's cap is the default grabber's, whoever queued the requests
        limit = _classic_default("max_connections") or reqs[0].opts.max_connections or _DEFAULT_LIMIT
    eng = _engine.engine()
    if meter is None:
        meter = reqs[0].opts.multi_progress_obj
    if meter is not None:
        total = sum(int(r.opts.size or 0) for r in reqs) or None
        meter.start(len(reqs), total)
        for r in reqs:
            r.use_batch_meter(meter)
    else:
        _own_meters(reqs)
    groups = {}
    for r in reqs:  # (a loop, not a comprehension: 3.11 specialises the reads in a loop's body only)
        group = r.source.group
        if group is not None:
            groups[id(group)] = group
    for group in groups.values():
        group.batch_started()
    frozen = _spare_collector(len(reqs))
    try:
        eng.submit_all(_largest_first(reqs) if groups else reqs)
        eng.run(reqs, limit=limit)
    finally:
        if frozen:
            gc.unfreeze()
        for group in groups.values():
            group.batch_ended()
        if meter is not None:
            meter.end()
    return [_result(r) for r in reqs]


def _spare_collector(n: int) -> bool:
    """For a batch of ``n`` requests: freeze the objects alive now (``gc.freeze()``); True
    if done, and the caller unfreezes them when the batch ends.

    The queued requests live until the batch ends, yet every full collection
    meanwhile would walk all of them: ~60 ms for 20 000 queued files, about 2 %
    of the batch's CPU.  Frozen, they (and the rest of the heap) are left out
    until the batch ends; objects made during the batch are collected as
    usual.  Not with the collector off, or when the process froze objects of
    its own (a pre-fork server): unfreezing would undo that.  (CPython 3.7+: other
    interpreters may have no gc.freeze.)
    """
    if n < _FREEZE_MIN or not _CAN_FREEZE or not gc.isenabled() or gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def _largest_first(reqs: list[Request]) -> list[Request]:
    """The order to queue a batch in: MirrorGroup requests whose ``size`` is given
    (yum passes each package's) largest first, the rest as queued.

    Big files started first spread over all mirrors while there is time for a
    slow one to finish them; the small ones left at the end fill the gaps and
    leave no long tail (the largest-processing-time-first rule).
    """
    def key(r: Request) -> int:
        return -int(r.opts.size or 0) if r.source.group is not None else 0

    return sorted(reqs, key=key)  # (stable: equal sizes, and all other requests, keep their order)


def _own_meters(reqs: list[Request]) -> None:
    """A ``progress_obj`` (a BaseMeter) shared by several queued requests would show one
    file's name with another's bytes: each request after the first gets its own copy.

    Other objects (a caller's duck-typed meter, an aggregator) stay shared, as given.
    """
    meters = []
    for r in reqs:  # (a loop, not a comprehension: see _run)
        meter = r.meter
        if meter is not None:
            meters.append(meter)
    if len({id(m) for m in meters}) == len(meters):
        return  # (no meter is shared: copy and progress stay unloaded, as in most batches)
    import copy

    from .progress import BaseMeter, RateEstimator

    seen: set[int] = set()
    for r in reqs:
        meter = r.meter
        if meter is None:
            continue
        if id(meter) in seen and isinstance(meter, BaseMeter):
            try:
                clone = copy.copy(meter)
            except Exception:  # an object that cannot be copied stays shared
                continue
            clone.re = RateEstimator()
            r.meter = clone
        seen.add(id(meter))


def _classic_default(name: str) -> Any:
    """An option of ``grabber.default_grabber`` (yum sets batch globals there at start-up)."""
    from .grabber import default_grabber

    return getattr(default_grabber.opts, name)


def _result(req: Request) -> BatchResult:
    if req.state is DONE:
        mirror = req.binding.mirror  # (a request is DONE after an attempt: it has a binding)
        # (positional: half the cost of keywords, once per file of every batch)
        return BatchResult(redact(req.url), req.filename, None, req.nbytes, req.seconds,
                           None if mirror is None else _served_by(mirror), req.attempts)
    return BatchResult(redact(req.url), None, req.exception, req.nbytes, req.seconds, None, req.attempts)


def _served_by(mirror: Any) -> str:
    """The base URL of ``mirror``, the mirror whose attempt completed a request (redacted)."""
    base = mirror.entry["mirror"]
    if isinstance(base, bytes):
        base = base.decode("utf-8", "replace")
    return redact(base)


def parallel_wait(meter: Any = None) -> list[BatchResult]:
    """Classic name for ``parallel_end()``; ``meter`` overrides the batch's multi-file meter."""
    return _run_queue(meter)


def parallel_abort() -> None:
    """Drop the calling thread's queued requests without running them."""
    _batch.queue = []
    _batch.limit = None


def parallel(max_connections: int | None = None) -> _Parallel:
    """``with parallel() as results: ...`` queues the block's async requests and runs
    them on exit; ``results`` then holds one BatchResult per request."""
    return _Parallel(max_connections)


class _Parallel:
    """``parallel()``'s context manager (a class: contextlib costs ~1 ms at start-up)."""

    __slots__ = ("max_connections", "results")

    def __init__(self, max_connections: int | None) -> None:
        self.max_connections = max_connections
        self.results: list[BatchResult] = []

    def __enter__(self) -> list[BatchResult]:
        parallel_begin(self.max_connections)
        return self.results

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is not None:  # the block failed: its queued requests are dropped
            parallel_abort()
            return
        self.results.extend(parallel_end())
