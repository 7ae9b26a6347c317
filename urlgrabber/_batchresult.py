"""``BatchResult``, in a module of its own that ``import urlgrabber`` does not load:
it is a dataclass, and ``dataclasses`` imports ``inspect`` (~10 ms at start-up,
where pycurl does not import them already).  ``_batch``, ``grabber`` and the
package hand the class out on first use (PEP 562 module ``__getattr__``), and a
batch's end loads it to make its results."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class BatchResult:
    """How one queued request ended."""

    url: str
    filename: str | None
    exception: BaseException | None
    size: int
    seconds: float
    mirror: str | None = None   # the mirror base URL that served the file (None: a plain URL)
    attempts: int = 0           # attempts made, retries and failovers included

    @property
    def ok(self) -> bool:
        return self.exception is None
