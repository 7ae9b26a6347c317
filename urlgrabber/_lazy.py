"""Modules and regular expressions loaded on first use.

``urllib.parse`` (with ``ipaddress``) and ``re`` cost ~10 ms of a fresh
interpreter's start-up where pycurl does not load them itself (Debian's
python3-pycurl), and many programs import urlgrabber without downloading.
The engine (and with it pycurl, 20-60 ms) loads with the first transfer.
After the first use each name is a plain attribute of the stand-in, or (a
stand-in given its importer's namespace) the name there is the module itself.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


class Module:
    """Module ``name``, imported when one of its attributes is first read.

    With ``home`` (a module's ``globals()``) and ``alias``, the first read also
    puts the module itself under ``alias`` there: reads through a stand-in
    (a class with ``__getattr__``) cannot be specialised by the interpreter,
    and a module's can, which matters for names read once per download.
    """

    def __init__(self, name: str, home: dict | None = None, alias: str = "") -> None:
        self._name = name
        self._home = home
        self._alias = alias

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        __import__(self._name)
        module = sys.modules[self._name]
        value = getattr(module, attr)
        setattr(self, attr, value)  # the next read finds it here
        if self._home is not None and self._home.get(self._alias) is self:
            self._home[self._alias] = module
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
