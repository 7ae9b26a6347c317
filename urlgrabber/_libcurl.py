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
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)


def _c_module() -> object | None:
    """pycurl's C module loaded on its own, or None when pycurl is not a plain
    package on disk with that C module (then the normal import decides)."""
    from importlib.machinery import ExtensionFileLoader, SourceFileLoader, SourcelessFileLoader

    spec = sub = None
    for finder in sys.meta_path:  # (as the import system looks: the first finder that knows it)
        find = getattr(finder, "find_spec", None)
        spec = find("pycurl", None) if find is not None else None
        if spec is not None:
            break
    if (spec is None or not spec.submodule_search_locations
            or not isinstance(spec.loader, (SourceFileLoader, SourcelessFileLoader))):
        return None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        sub = find("pycurl._pycurl", spec.submodule_search_locations) if find is not None else None
        if sub is not None:
            break
    if sub is None or not isinstance(sub.loader, ExtensionFileLoader):
        return None
    module = sub.loader.create_module(sub)
    module.__spec__, module.__loader__ = sub, sub.loader  # (what the import system sets)
    sys.modules["pycurl._pycurl"] = module
    try:
        sub.loader.exec_module(module)
    except BaseException:
        del sys.modules["pycurl._pycurl"]
        raise
    for name in ("Curl", "CurlMulti", "error", "version_info"):
        if not hasattr(module, name):
            return None  # not the C module we know: the package's own import decides
    return module


def _load() -> object:
    """pycurl as urlgrabber uses it (see the module's docstring)."""
    if "pycurl" in sys.modules:  # (also None there, a blocked import: the import says so)
        import pycurl as module

        return module
    module = sys.modules.get("pycurl._pycurl")
    if module is not None:
        return module
    try:
        module = _c_module()
    except Exception:
        module = None  # (whatever went wrong, the normal import says it properly)
    if module is None:
        import pycurl as module
    return module


if TYPE_CHECKING:
    import pycurl
else:
    pycurl = _load()
