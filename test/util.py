"""Small helpers for tests: ``from util import wait_until, gen_bytes``."""

from __future__ import annotations

import time

from server import gen_bytes

__all__ = ["gen_bytes", "wait_until"]


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Poll ``predicate()`` until it returns a truthy value and return that
    value; raise AssertionError if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"wait_until: condition {predicate!r} not met within {timeout}s")
        time.sleep(interval)
