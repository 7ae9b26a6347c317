"""Run one download in either mode: ``from modes import MODES, grab``.

"blocking" is the plain call; "batch" queues it with ``async_=True`` between
``parallel_begin()`` and ``parallel_end()``.  With the default ``failfunc`` a
final failure is raised in both modes (from ``parallel_end()`` in a batch).
"""

from __future__ import annotations

import os
from typing import Any

import urlgrabber

MODES = ("blocking", "batch")


def grab(mode: str, grabber: Any, url: str, dest: Any = None, **kw: Any) -> Any:
    """``grabber.urlgrab(url, dest, **kw)`` in ``mode``; returns what the call returned.

    In batch mode that is the value ``urlgrab(..., async_=True)`` returned at
    queue time (the filename); ``parallel_end()`` raises a final failure.
    ``grabber`` may be a ``URLGrabber`` or the ``urlgrabber`` module.
    """
    if mode == "blocking":
        return grabber.urlgrab(url, dest, **kw)
    if mode != "batch":
        raise ValueError(f"unknown mode {mode!r}")
    urlgrabber.parallel_begin()
    try:
        result = grabber.urlgrab(url, dest, async_=True, **kw)
    except BaseException:
        urlgrabber.parallel_end()  # never leave a half-filled queue behind
        raise
    urlgrabber.parallel_end()
    return result


def listing(path: Any) -> list[str]:
    """Every name in a directory, hidden ones included (temporary files show up)."""
    return sorted(os.listdir(path))


def read(path: Any) -> bytes:
    with open(path, "rb") as fo:
        return fo.read()
