"""pycurl, without its asyncio helper.

pycurl 7.46 and later is a package whose ``__init__`` also imports
``pycurl.async_multi`` (``AsyncCurlMulti``), and with it dataclasses, inspect,
typing and ast: about 40 ms of a fresh interpreter's start-up and exit, for a
class urlgrabber never uses. Everything else is in its C module
``pycurl._pycurl``, so that is what urlgrabber loads when pycurl is installed
that way. A program's own ``import pycurl`` still gets the whole package, with
the same classes (the C module is then already loaded). Any other layout (the
single C module of older and distribution pycurl, a zip, an importer of its
own) is imported the normal way, as is a pycurl the program imported first.

It loads on first use (``_libcurl.pycurl``: the first transfer), not when urlgrabber
is imported, unless pycurl is already loaded or blocked, or the import system cannot
find it: then at once, so that a missing pycurl fails the import as before.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


# The code of every function pycurl calls (declared with @callback).  An exception
# that leaves one of them reaches pycurl, which prints it and drops it: the engine's
# signal handlers look here, so that Ctrl-C or SIGTERM arriving there is not lost.
CALLBACKS: set = set()


def callback(fn: Any) -> Any:
    """Declare ``fn`` as one that pycurl calls (``CALLBACKS``); returns it unchanged."""
    CALLBACKS.add(fn.__code__)
    return fn


def _c_module() -> object | None:
    """pycurl's C module loaded on its own, or None when pycurl is not a plain
    package on disk with that C module (then the normal import decides)."""
    spec = _find_spec("pycurl", None)
    if spec is None or not spec.submodule_search_locations:
        return None  # (one C module, as 7.45 and Debian's: nothing more to import here)
    # the import system's own modules (whose lock we take, and its loader classes), as
    # CPython has them loaded from the start: `import importlib` would also load the
    # importlib package and warnings (~0.7 ms at the first transfer)
    try:
        import _frozen_importlib as _bootstrap
        from _frozen_importlib_external import ExtensionFileLoader, SourceFileLoader, SourcelessFileLoader
    except ImportError:  # (not CPython)
        from importlib import _bootstrap
        from importlib.machinery import ExtensionFileLoader, SourceFileLoader, SourcelessFileLoader

    if not isinstance(spec.loader, (SourceFileLoader, SourcelessFileLoader)):
        return None
    sub = _find_spec("pycurl._pycurl", spec.submodule_search_locations)
    if sub is None or not isinstance(sub.loader, ExtensionFileLoader):
        return None
    # Under the lock that any import of pycurl._pycurl takes: a thread importing pycurl
    # meanwhile waits and then finds it loaded (its init run twice would make a second
    # pycurl.error class, which the other side's except clauses would not catch).
    with _bootstrap._ModuleLockManager(sub.name):
        if sub.name in sys.modules:
            return sys.modules[sub.name]  # (None, a blocked import: the caller declines)
        module = sub.loader.create_module(sub)
        module.__spec__, module.__loader__, module.__package__ = sub, sub.loader, sub.parent
        sys.modules[sub.name] = module
        try:
            sub.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(sub.name, None)
            raise
    for name in ("Curl", "CurlMulti", "error", "version_info"):
        if not hasattr(module, name):
            return None  # not the C module we know: the package's own import decides
    return module


def _find_spec(name: str, path: object) -> object | None:
    """The spec the import system would use for ``name``: the first meta path finder's
    that knows it (None also when a finder without find_spec comes first)."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            return None  # (an old-style finder: only the import system consults it right)
        spec = find(name, path)
        if spec is not None:
            return spec
    return None


def _load() -> object:
    """pycurl as urlgrabber uses it (see the module's docstring)."""
    if "pycurl" not in sys.modules:  # (a pycurl the program imported first is used as it is)
        module = sys.modules.get("pycurl._pycurl")
        if module is not None:
            return module
        if "pycurl._pycurl" not in sys.modules:  # (None there, a blocked import: it stays so)
            try:
                module = _c_module()
            except Exception:
                module = None  # (whatever went wrong, the normal import says it properly)
            if module is not None:
                return module
    import pycurl  # (also where sys.modules blocks it: the import says so)

    return pycurl


def _deferrable() -> bool:
    """Whether loading can wait for the first transfer: pycurl is neither loaded nor
    blocked, and the import system finds it, so that a missing pycurl still fails
    ``import urlgrabber`` as classic's own ``import pycurl`` did."""
    if "pycurl" in sys.modules or "pycurl._pycurl" in sys.modules:
        return False
    try:
        return _find_spec("pycurl", None) is not None
    except Exception:
        return False  # (the import, now, says what is wrong)


def __getattr__(name: str) -> object:
    """``pycurl``, loaded on first use: importing urlgrabber costs no libcurl (about
    20-60 ms) in a program that never downloads, such as most of yum's commands."""
    if name != "pycurl":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = globals()["pycurl"] = _load()
    return module


if TYPE_CHECKING:
    import pycurl
elif not _deferrable():
    pycurl = _load()  # (already there, or the import says why not)
