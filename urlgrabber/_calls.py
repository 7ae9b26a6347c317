"""How a classic call becomes a Request: its batch key and limit, its sink, and how it is run.

``URLGrabber`` and ``MirrorGroup`` both build their requests here (``make_request``)
and hand them on: ``dispatch`` queues one for ``parallel_end()`` when ``async_``
is set, else runs it now; ``run_blocking`` and ``open_stream`` run one on the
calling thread's engine.  This module does not import ``grabber`` (which
imports it): what it needs from a call arrives as arguments.
"""

from __future__ import annotations

import os

from . import _lazy
from ._batch import queue_request
from ._lazy import urlparse as _urlparse
from ._request import Request, State, UrlSource
from ._sinks import FileSink, MemorySink, StreamSink
from ._stream import StreamFile
from .errors import URLGrabError, redact, scrub

# the event loop and libcurl, loaded on the first call
_engine = _lazy.Module("urlgrabber._engine", globals(), "_engine")
TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


def _short_text(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def dest_path(filename: Any) -> str:
    """A destination as a str: a str, bytes or ``os.PathLike`` (bytes decoded as the
    OS does, so undecodable names survive); errno 1 for anything else, an empty
    name or a NUL."""
    if type(filename) is str and filename and "\0" not in filename:
        return filename  # the usual case, already a valid name
    try:
        path = os.fsdecode(filename)
    except TypeError:
        raise URLGrabError(1, f"Bad filename: not a path: <{type(filename).__name__}>") from None
    if not path or "\0" in path:
        raise URLGrabError(1, f"Bad filename: {_short_text(repr(path), 60)}")
    return path


def _check_limit(limit: Any) -> None:
    """urlread's ``limit``: None or a byte count."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise URLGrabError(1, f"Bad value for limit: {_short_text(repr(limit), 60)}")


def _host_key(url: str) -> str:
    """``scheme://host:port`` of a URL: the default per-host batch key."""
    try:
        parts = _urlparse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as e:
        raise URLGrabError(1, f"Malformed URL: {_short_text(redact(url))}: {_short_text(scrub(str(e), url))}",
                           url=url) from None
    if port is None:
        port = {"http": 80, "https": 443, "ftp": 21, "ftps": 990}.get(parts.scheme, 0)
    return f"{parts.scheme}://{host}:{port}"


def per_key_limit(opts: Any) -> int:
    """How many of a key's requests may run at once: ``async_=(key, limit)``, else
    the ``max_connections`` option, else 2."""
    value = opts.async_
    if isinstance(value, (tuple, list)) and len(value) == 2:
        n = value[1] or 1
    else:
        n = opts.max_connections or 2
    if type(n) is not int:  # (int() and max() cost more than the rest: once per queued file)
        n = int(n)
    return n if n > 1 else 1


def async_key(opts: Any, url: str) -> tuple[Any, int]:
    """The ``(key, limit)`` a queued request is scheduled under."""
    value = opts.async_
    if type(value) is tuple and len(value) == 2 and type(value[1]) is int and value[1] > 0:
        return value  # async_=(key, limit), as batches queue: per_key_limit's answer too
    key = value[0] if isinstance(value, (tuple, list)) and len(value) == 2 else _host_key(url)
    return key, per_key_limit(opts)


def local_path(url: str, parts: tuple | None) -> str | None:
    """The local path of a ``file://`` URL, checked: errno 2 if missing, 3 if not a file."""
    if parts is None or parts[0] != "file":
        return None
    path = os.fsdecode(_urlparse.unquote_to_bytes(parts[2]))  # the bytes the OS names it by
    host = parts[1]
    if host and host != "localhost":
        path = os.path.normpath("//" + host + path)
    if not os.path.exists(path):
        raise URLGrabError(2, f"Local file does not exist: {path}", url=url)
    if not os.path.isfile(path):
        raise URLGrabError(3, f"Not a normal file: {path}", url=url)
    return path


def make_request(opts: Any, kind: str, url: str, filename: str | None = None,
                 limit: int | None = None, source: Any = None) -> Request:
    """Build a Request for one URL (or a MirrorGroup ``source``) with the right sink."""
    if kind == "grab":
        filename = dest_path(filename)
        sink = FileSink(filename, url, bool(opts.reget))  # (positional: keywords to a class cost a dict)
    elif kind == "read":
        _check_limit(limit)
        sink = MemorySink(limit)
    else:
        sink = StreamSink()
    if source is None:
        key, conns = async_key(opts, url) if opts.async_ else (_host_key(url), 1 << 30)
        source = UrlSource(url, key, conns, opts)
    return Request(opts, kind, source, sink, filename, url)


def _submit_now(req: Request) -> Any:
    """Hand a request that the caller waits for to this thread's engine; the engine."""
    eng = _engine.engine()
    eng.submit(req, blocking=True)
    return eng


def run_blocking(req: Request) -> Any:
    """Run one request now on this thread's engine and return its result."""
    _submit_now(req).run([req])
    return req.result


def dispatch(req: Request) -> Any:
    """Queue the request when ``async_`` is set, else run it now."""
    if req.opts.async_:
        queue_request(req)
        return req.filename
    return run_blocking(req)


def open_stream(req: Request) -> StreamFile:
    """Start a streaming request and return once its first bytes (or its end) arrived."""
    eng = _submit_now(req)
    eng.run([req], until=lambda: req.body_started)
    if req.state is State.FAILED and not req.sink.buffered:
        req.run_failfunc()
        raise req.exception
    return StreamFile(req, eng)
