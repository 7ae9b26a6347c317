"""What the ``urlgrabber`` command (``cli``) and its demo (``demo``) share.

One batch run that leaves nothing queued when it is interrupted, the failfunc
that keeps failures in the batch results, and the sha256 checkfunc.
"""

from __future__ import annotations

from typing import Any, Callable

import urlgrabber

from ._batch import parallel_abort
from .errors import URLGrabError


def run_batch(queue: Callable[[], None], max_connections: int) -> list:
    """``parallel_begin()``, ``queue()`` (which queues the downloads), ``parallel_end()``: its results.

    Whatever goes wrong on the way (Ctrl-C included) drops the queued requests before it propagates.
    """
    urlgrabber.parallel_begin(max_connections=max_connections)
    try:
        queue()
        return urlgrabber.parallel_end()
    except BaseException:
        parallel_abort()
        raise


def ignore_failure(obj: Any) -> None:
    """failfunc: keep the failure in the batch results instead of raising."""
    return None


def sha256_of(path: str) -> str:
    """The sha256 hex digest of a file, read 1 MiB at a time."""
    import hashlib  # only with --sha256: OpenSSL's ~5 ms at start-up otherwise

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_checkfunc(expected: str) -> Callable[[Any], None]:
    """A checkfunc that rejects the downloaded file unless its sha256 is ``expected``.

    It raises URLGrabError errno -1, so the library retries and finally drops the file.
    """
    def check(obj: Any) -> None:
        try:
            actual = sha256_of(obj.filename)
        except OSError as e:
            raise URLGrabError(-1, f"cannot read the download to check it: {e}")
        if actual != expected:
            raise URLGrabError(-1, f"sha256 mismatch: expected {expected}, got {actual}")
    return check
