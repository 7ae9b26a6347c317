"""Modules and regular expressions loaded on first use.

``urllib.parse`` (with ``ipaddress``) and ``re`` cost ~10 ms of a fresh
interpreter's start-up where pycurl does not load them itself (Debian's
python3-pycurl), and many programs import urlgrabber without downloading.
The engine (and with it pycurl, 20-60 ms) loads with the first transfer.
After the first use each name is a plain attribute: no cost per call.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


class Module:
    """Module ``name``, imported when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        __import__(self._name)
        value = getattr(sys.modules[self._name], attr)
        setattr(self, attr, value)  # the next read finds it here
        return value


class Pattern:
    """``re.compile(pattern, flags)``, compiled when one of its methods is first read."""

    def __init__(self, pattern: str | bytes, flags: int = 0) -> None:
        self._args = (pattern, flags)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        import re

        value = getattr(re.compile(*self._args), attr)
        setattr(self, attr, value)  # the next read finds it here
        return value


urlparse = Module("urllib.parse")  # (one for every module that splits or quotes URLs)
engine = Module("urlgrabber._engine")  # (one for the modules that hand requests to the engine)
