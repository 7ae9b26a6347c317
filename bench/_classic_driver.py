#!/usr/bin/env python3
"""Driver for classic urlgrabber 4.1.0 (PyPI), run with the venv's python.

Its parallel mode forks ``urlgrabber-ext-down`` helpers: the caller sets
URLGRABBER_EXT_DOWN to a copy whose interpreter line is the venv's python.
This file must not see the repository's urlgrabber: sys.path[0] is bench/.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(HERE)]

import urlgrabber  # noqa: E402
import urlgrabber.grabber as grabber  # noqa: E402
from urlgrabber.grabber import URLGrabber, URLGrabError  # noqa: E402
from urlgrabber.mirror import MirrorGroup  # noqa: E402

from _driver_common import Adapter, main  # noqa: E402

from importlib.metadata import version as _dist_version  # noqa: E402

VERSION = _dist_version("urlgrabber")   # 4.1's own __version__ is broken
assert VERSION == "4.1.0" and not urlgrabber.__file__.startswith(os.path.dirname(HERE) + os.sep), urlgrabber.__file__


_spawned = [0]
_orig_init = grabber._ExternalDownloader.__init__


def _counting_init(self, *a, **k):
    _spawned[0] += 1
    _orig_init(self, *a, **k)


grabber._ExternalDownloader.__init__ = _counting_init


class Classic(Adapter):
    name = "urlgrabber %s (%s)" % (VERSION, os.path.dirname(urlgrabber.__file__))
    URLGrabber = URLGrabber
    MirrorGroup = MirrorGroup
    URLGrabError = URLGrabError

    def begin(self, conns):
        # 4.1 has no parallel_begin: async_ requests queue until
        # parallel_wait(); the global cap is the default grabber's option.
        grabber.default_grabber.opts.max_connections = conns

    def end(self):
        grabber.parallel_wait()
        return None

    def mirror_base(self, base):
        # 4.1 on Python 3: _TH.estimate() splits the mirror's netloc on b'@',
        # so a str mirror URL raises TypeError in MirrorGroup(); give bytes.
        return base.encode()

    def extra(self):
        return {"helpers_spawned": _spawned[0]}


if __name__ == "__main__":
    main(Classic())
