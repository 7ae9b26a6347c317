"""The batch queue: ``parallel_begin()``, queued requests, ``parallel_end()``."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from ._engine import SigtermGuard, engine
from ._request import Request, State
from .errors import redact

_DEFAULT_LIMIT = 5


class _DataclassFields:
    """``BatchResult.__dataclass_fields__``, built on first use, so that
    ``dataclasses.fields``/``asdict``/``replace``/``is_dataclass`` work without
    ``import dataclasses`` (and the ``inspect`` it pulls in, ~15 ms) at start-up."""

    def __get__(self, obj: Any, owner: type) -> dict[str, Any]:
        import dataclasses

        shadow = type(owner.__name__, (), {"__annotations__": dict(owner.__annotations__)})
        fields = dataclasses.dataclass(shadow).__dataclass_fields__
        owner.__dataclass_fields__ = fields  # type: ignore[attr-defined]
        return fields


class BatchResult:
    """How one queued request ended.

    Written out rather than ``@dataclasses.dataclass``, with the same ``__init__``,
    ``__repr__``, ``__eq__``, ``__match_args__`` and (lazily) dataclass fields.
    """

    url: str
    filename: str | None
    exception: BaseException | None
    size: int
    seconds: float

    __match_args__ = ("url", "filename", "exception", "size", "seconds")
    __dataclass_fields__ = _DataclassFields()

    def __init__(self, url: str, filename: str | None, exception: BaseException | None,
                 size: int, seconds: float) -> None:
        self.url = url
        self.filename = filename
        self.exception = exception
        self.size = size
        self.seconds = seconds

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}(url={self.url!r}, filename={self.filename!r}, "
                f"exception={self.exception!r}, size={self.size!r}, seconds={self.seconds!r})")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return ((self.url, self.filename, self.exception, self.size, self.seconds)
                == (other.url, other.filename, other.exception, other.size, other.seconds))  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # as a dataclass with eq and not frozen

    @property
    def ok(self) -> bool:
        return self.exception is None


class _Batch(threading.local):
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


def parallel_end() -> list[BatchResult]:
    """Run every request the calling thread queued to completion; one result per
    request, in queue order.

    With the default ``failfunc`` a final failure stops the batch cleanly
    (running transfers aborted, temporary files removed) and raises it.
    """
    return _run_queue(None)


def _run_queue(meter: Any) -> list[BatchResult]:
    """parallel_end(), with ``meter`` (parallel_wait's) as the batch's multi-file meter."""
    batch = _batch
    reqs, batch.queue = batch.queue, []
    limit, batch.limit = batch.limit, None
    if not reqs:
        return []
    with SigtermGuard():  # SIGTERM acts like Ctrl-C (clean up), then ends the process
        return _run(reqs, limit, meter)


def _run(reqs: list[Request], limit: int | None, meter: Any) -> list[BatchResult]:
    """Run a batch's requests on this thread's engine; one result per request."""
    if limit is None:
        # classic: the batch's cap is the default grabber's, whoever queued the requests
        limit = _classic_default("max_connections") or reqs[0].opts.max_connections or _DEFAULT_LIMIT
    eng = engine()
    if meter is None:
        meter = reqs[0].opts.multi_progress_obj
    if meter is not None:
        total = sum(int(r.opts.size or 0) for r in reqs) or None
        meter.start(len(reqs), total)
        for r in reqs:
            r.use_batch_meter(meter)
    groups = {id(r.source.group): r.source.group for r in reqs if r.source.group is not None}
    for group in groups.values():
        group.batch_started()
    try:
        for r in reqs:
            eng.submit(r)
        eng.run(reqs, limit=limit)
    finally:
        for group in groups.values():
            group.batch_ended()
        if meter is not None:
            meter.end()
    return [_result(r) for r in reqs]


def _classic_default(name: str) -> Any:
    """An option of ``grabber.default_grabber`` (yum sets batch globals there at start-up)."""
    from .grabber import default_grabber

    return getattr(default_grabber.opts, name)


def _result(req: Request) -> BatchResult:
    ok = req.state is State.DONE
    return BatchResult(url=redact(req.url), filename=req.filename if ok else None,
                       exception=None if ok else req.exception,
                       size=req.nbytes, seconds=req.seconds)


def parallel_wait(meter: Any = None) -> list[BatchResult]:
    """Classic name for ``parallel_end()``; ``meter`` overrides the batch's multi-file meter."""
    return _run_queue(meter)


def parallel_abort() -> None:
    """Drop the calling thread's queued requests without running them."""
    _batch.queue = []
    _batch.limit = None


@contextlib.contextmanager
def parallel(max_connections: int | None = None) -> Iterator[list[BatchResult]]:
    """``with parallel() as results: ...`` queues the block's async requests and runs
    them on exit; ``results`` then holds one BatchResult per request."""
    results: list[BatchResult] = []
    parallel_begin(max_connections)
    try:
        yield results
    except BaseException:
        parallel_abort()
        raise
    results.extend(parallel_end())
