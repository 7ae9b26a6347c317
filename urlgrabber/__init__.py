"""urlgrabber: grab files over HTTP(S), FTP and file://, one at a time or by the thousand.

Blocking calls (``urlgrab``, ``urlread``, ``urlopen``) and queued batches
(``parallel_begin()`` ... ``urlgrab(..., async_=...)`` ... ``parallel_end()``)
run on the same engine: one ``pycurl.CurlMulti`` event loop per thread.
"""

from ._version import __version__
from .errors import URLGrabError
from .grabber import (
    BatchResult,
    URLGrabber,
    URLParser,
    default_grabber,
    parallel,
    parallel_begin,
    parallel_end,
    parallel_wait,
    urlgrab,
    urlopen,
    urlread,
)

__all__ = [
    "__version__",
    "URLGrabError",
    "URLGrabber",
    "URLParser",
    "BatchResult",
    "default_grabber",
    "urlgrab",
    "urlread",
    "urlopen",
    "parallel_begin",
    "parallel_end",
    "parallel_wait",
    "parallel",
]

