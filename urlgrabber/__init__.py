"""urlgrabber: grab files over HTTP(S), FTP and file://, one at a time or by the thousand.

Blocking calls (``urlgrab``, ``urlread``, ``urlopen``) and queued batches
(``parallel_begin()`` ... ``urlgrab(..., async_=...)`` ... ``parallel_end()``)
run on the same engine: one ``pycurl.CurlMulti`` event loop per thread.
"""

from ._version import __version__
from .errors import URLGrabError
from .grabber import (
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


TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from ._batchresult import BatchResult
else:
    from ._batch import lazy_batch_result

    __getattr__ = lazy_batch_result(__name__)
    del lazy_batch_result
