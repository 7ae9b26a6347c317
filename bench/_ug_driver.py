#!/usr/bin/env python3
"""Driver for this repository's urlgrabber (see _driver_common.py)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))   # the repository: our urlgrabber

from _driver_common import Adapter, main  # noqa: E402

import urlgrabber  # noqa: E402
from urlgrabber.grabber import URLGrabber, URLGrabError  # noqa: E402


class UG(Adapter):
    name = "urlgrabber %s (%s)" % (urlgrabber.__version__, os.path.dirname(urlgrabber.__file__))
    URLGrabber = URLGrabber
    URLGrabError = URLGrabError

    @property
    def MirrorGroup(self):
        from urlgrabber.mirror import MirrorGroup
        return MirrorGroup

    def begin(self, conns):
        urlgrabber.parallel_begin(max_connections=conns)

    def end(self):
        return urlgrabber.parallel_end()

    def count_failed(self, results):
        if not results:
            return 0
        n = 0
        for r in results:
            if isinstance(r, BaseException) or getattr(r, "exception", None) is not None:
                n += 1
        return n


if __name__ == "__main__":
    main(UG())
