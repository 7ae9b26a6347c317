"""Policies, one object each (urllib3's ``Timeout`` and ``Retry`` are the models).

``Timeout``: what classic ``timeout=`` (and ``minrate``) mean to each layer.
``Retry``: whether a failed attempt is tried again on the same URL, and when.
"""

from __future__ import annotations

from ._outcome import AttemptResult, Cause

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

_DEFAULT_RETRY_AFTER_CAP = 30.0  # a Retry-After is honoured up to this without a timeout
BACKOFF_BASE = 0.1  # seconds before the first retry on the same URL; doubles per try...
BACKOFF_MAX = 2.0   # ... up to this (times a jitter of 0.5-1, so retries spread out)


class Timeout:
    """The meanings of classic ``timeout`` (seconds; None or 0: none).

    ``connect``: libcurl's connect timeout; ``stall``: the engine ends a
    transfer with no progress for this long; ``low_speed``: the window over
    which ``minrate`` is averaged; ``retry_after_cap``: the longest server-asked
    pause honoured before a retry.
    """

    __slots__ = ("connect", "stall", "low_speed", "retry_after_cap")

    def __init__(self, timeout: float | None) -> None:
        self.connect = timeout or None
        self.stall = timeout or None
        self.low_speed = max(1, round(timeout or 30))
        self.retry_after_cap = timeout or _DEFAULT_RETRY_AFTER_CAP

    of: Callable[[float | None], Timeout]  # Timeout.of(timeout): the shared instance (below)


class _Timeouts(dict):
    """``Timeout.of(timeout)``: the (shared, read-only) Timeout for a ``timeout`` value.
    A hit is one dict lookup in C, with no Python frame (and no functools at start-up)."""

    def __missing__(self, timeout: float | None) -> Timeout:
        if len(self) >= 64:  # a caller with ever-new values: start over, never grow
            self.clear()
        value = self[timeout] = Timeout(timeout)
        return value


Timeout.of = staticmethod(_Timeouts().__getitem__)  # type: ignore[attr-defined]


class Retry:
    """Classic retry rules for one request's options.

    ``retry`` attempts on one URL (None: one), for errors whose errno is in
    ``retrycodes``; an interrupted attempt whose ``interrupt_callback`` returned
    is retried whatever its errno (classic); a ``final`` result never is.
    """

    __slots__ = ("total", "codes", "no_cache_after_reject")

    def __init__(self, opts: Any) -> None:
        self.total = opts.retry
        self.codes = opts.retrycodes
        self.no_cache_after_reject = opts.retry_no_cache

    def allows(self, result: AttemptResult, tries: int, log: Any = None) -> bool:
        """Whether attempt number ``tries + 1`` on the same URL may follow ``result``."""
        if self.total is None or tries >= self.total or result.final:
            if log:
                log("retries exceeded, re-raising")
            return False
        if result.cause is Cause.INTERRUPTED:
            return True
        errno = getattr(result.error, "errno", None)
        if errno not in self.codes:
            if log:
                log("retrycode (%i) not in list %s, re-raising", errno, self.codes)
            return False
        return True

    def wants_fresh_copy(self, result: AttemptResult) -> bool:
        """A retry after checkfunc rejected the body must bypass caches (``retry_no_cache``)."""
        return self.no_cache_after_reject and result.cause is Cause.REJECTED

    @staticmethod
    def delay(result: AttemptResult, timeout: Timeout, tries: int = 1) -> float:
        """Seconds to wait before attempt ``tries + 1``: the server's Retry-After
        (capped), else an exponential backoff with jitter, capped at BACKOFF_MAX."""
        if result.retry_after:
            return min(result.retry_after, timeout.retry_after_cap)
        if result.cause is Cause.INTERRUPTED:
            return 0.0  # the user is waiting: classic retries at once
        import random  # (not at start-up: ~1.5 ms where nothing else imported it)

        backoff = min(BACKOFF_BASE * 2 ** max(0, tries - 1), BACKOFF_MAX)
        return backoff * random.uniform(0.5, 1.0)
