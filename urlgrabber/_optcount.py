"""How often an options object has changed in place.

A pooled curl handle keeps its settings, and a batch's calls share one options
copy, only while no options object has changed since they were worked out:
both compare this count (it lives apart from ``_curl`` so that the API can
count changes without loading libcurl).
"""

from __future__ import annotations

count = 0


def options_changed() -> None:
    """Called on every in-place change of an options object."""
    global count
    count += 1


def options_version() -> int:
    """Changes so far: equal numbers mean no options object changed in between."""
    return count
