"""The classic urlgrabber API: ``URLGrabber``, its options, and the module functions.

Every download, blocking or queued, becomes a ``Request`` (built and run by
``_calls``) on the thread's ``Engine`` (one CurlMulti loop): a blocking call is
simply a batch of one, so retries, checksums, resumes and progress behave the
same in both modes.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from typing import Any

from ._batch import BatchResult, parallel, parallel_begin, parallel_end, parallel_wait
from ._calls import dispatch, local_path, make_request, open_stream, run_blocking
from ._request import CallbackObject, run_callback
from ._stream import StreamFile
from ._version import __version__
from .errors import URLGrabError, redact, scrub

__all__ = [
    "URLGrabError", "URLGrabber", "URLGrabberOptions", "URLParser", "CallbackObject",
    "urlgrab", "urlread", "urlopen", "default_grabber",
    "parallel_begin", "parallel_end", "parallel_wait", "parallel", "BatchResult",
    "PyCurlFileObject", "reset_curl_obj", "set_logger", "retrygrab", "exception2msg",
    "set_throttle", "set_bandwidth", "set_progress_obj", "set_user_agent",
    "range_tuple_normalize", "range_tuple_to_header",
]


def _do_raise(obj: Any) -> Any:
    """The default ``failfunc``: raise the final exception."""
    raise obj.exception


class URLParser:
    """Turns what the caller gave into a full URL: ``prefix``, local paths, quoting.

    It keeps the type it is given, as classic callers expect: bytes in gives
    bytes out (the URL and its parts), str in gives str out.  Subclasses may
    override ``add_prefix``, ``process_http``, ``quote`` and ``guess_should_quote``.
    """

    _HEX = frozenset("0123456789ABCDEFabcdef")

    def parse(self, url: str | bytes, opts: Any) -> tuple[Any, tuple]:
        """Return ``(url, parts)``: prefix joined, a local path made ``file://``, quoted per ``quote``."""
        if not isinstance(url, (str, bytes)) or not url:
            raise URLGrabError(1, f"Bad URL: {redact(url)!r}", url=str(url))
        quote = opts.quote
        if opts.prefix:
            url = self.add_prefix(url, opts.prefix)
        try:
            parts = urllib.parse.urlparse(url)
            if parts.netloc:
                parts.port  # noqa: B018 - validates the port and an IPv6 literal
        except ValueError as e:
            text = _text(url)
            raise URLGrabError(1, f"Malformed URL: {redact(text)}: {scrub(str(e), text)}", url=text) from None
        scheme = _text(parts[0])
        if not scheme or (len(scheme) == 1 and scheme.isalpha()):
            # no scheme: a local path
            path = _text(url)
            path = path if os.path.isabs(path) else os.path.abspath(path)
            local = "file://" + urllib.request.pathname2url(path)
            url = local.encode("utf-8") if isinstance(url, bytes) else local
            parts = urllib.parse.urlparse(url)
            quote = 0  # pathname2url has quoted it already
        elif scheme in ("http", "https"):
            parts = self.process_http(parts, url)
        if quote is None:
            quote = self.guess_should_quote(parts)
        if quote:
            parts = self.quote(parts)
        return urllib.parse.urlunparse(parts), parts

    def add_prefix(self, url: str | bytes, prefix: str | bytes) -> str | bytes:
        """``prefix`` and ``url`` joined by one '/' (the prefix takes the URL's type)."""
        if isinstance(url, bytes) != isinstance(prefix, bytes):
            prefix = prefix.encode("utf-8") if isinstance(url, bytes) else _text(prefix)
        slash = b"/" if isinstance(url, bytes) else "/"
        if prefix.endswith(slash) or url.startswith(slash):
            return prefix + url
        return prefix + slash + url

    def process_http(self, parts: tuple, url: str | bytes) -> tuple:
        """A hook for subclasses (classic); the parts unchanged."""
        return parts

    def quote(self, parts: tuple) -> tuple:
        """Quote the path only (classic keeps '/' and '$')."""
        scheme, host, path, params, query, frag = parts
        quoted = urllib.parse.quote(path, safe="/$")
        if isinstance(path, bytes):
            quoted = quoted.encode("ascii")
        return (scheme, host, quoted, params, query, frag)

    def guess_should_quote(self, parts: tuple) -> int:
        """1 when the path looks unquoted (a space, or a '%' not starting %XX), else 0."""
        path = _text(parts[2])
        if " " in path:
            return 1
        i = path.find("%")
        if i < 0:
            return 1
        while i >= 0:
            code = path[i + 1:i + 3]
            if len(code) < 2 or code[0] not in self._HEX or code[1] not in self._HEX:
                return 1
            i = path.find("%", i + 1)
        return 0


def _text(value: str | bytes) -> str:
    """A URL or part as text (UTF-8, undecodable bytes kept as escapes)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


# A remote URL whose path has nothing to quote: URLParser would return it unchanged.
_PLAIN_URL = re.compile(r"(?:https?|ftps?)://[A-Za-z0-9.:@-]+(?:/[A-Za-z0-9_.~/-]*)?(?:\?[^\s#]*)?\Z")

_DEFAULTS: dict[str, Any] = {
    # transfer behaviour
    "retry": None, "retrycodes": [-1, 2, 4, 5, 6, 7], "retry_no_cache": False,
    "checkfunc": None, "failfunc": _do_raise, "failure_callback": None, "interrupt_callback": None,
    "reget": None, "range": None, "size": None, "max_header_size": 2097152,
    "timeout": 300, "minrate": None, "throttle": 1.0, "bandwidth": 0,
    "copy_local": 0, "keepalive": 1, "close_connection": 0, "no_cache": False,
    # request content
    "user_agent": f"urlgrabber/{__version__}", "http_headers": None, "data": None,
    "username": None, "password": None, "prefix": None, "quote": None, "urlparser": None,
    # network
    "proxies": None, "ip_resolve": None, "ftp_disable_epsv": False,
    "ssl_verify_peer": True, "ssl_verify_host": True, "ssl_ca_cert": None,
    "ssl_cert": None, "ssl_key": None, "ssl_key_pass": None,
    "ssl_cert_type": "PEM", "ssl_key_type": "PEM",
    # progress
    "progress_obj": None, "multi_progress_obj": None, "text": None,
    # batches and mirrors
    "async_": None, "max_connections": None, "timedhosts": None,
    "half_life": 30 * 24 * 60 * 60, "default_speed": 1e6,
    # accepted for compatibility; they do nothing here (libcurl does the work)
    "libproxy": False, "ssl_context": None, "opener": None, "cache_openers": True,
    "ftp_headers": None, "curl_obj": None, "proxy": None,
    # classic: a per-call debug level ("level[,file]", as URLGRABBER_DEBUG)
    "logspec": None,
}
_ALIASES = {"async": "async_"}
_REGET_MODES = (None, "simple", "check_timestamp")


class URLGrabberOptions:
    """Options for a grabber or one call; ``derive(**kw)`` makes a copy with overrides.

    Unknown names are an error (``URLGrabError`` errno 1), not silently ignored.
    """

    def __init__(self, delegate: URLGrabberOptions | None = None, **kwargs: Any) -> None:
        d = dict(_DEFAULTS) if delegate is None else dict(delegate.__dict__)
        if delegate is None:
            d["urlparser"] = URLParser()
        d["delegate"] = delegate
        object.__setattr__(self, "__dict__", d)
        _apply(d, kwargs)

    def derive(self, **kwargs: Any) -> URLGrabberOptions:
        """A copy of these options with ``kwargs`` applied on top (a flat copy: lookups stay fast)."""
        new = object.__new__(URLGrabberOptions)
        d = dict(self.__dict__)
        d["delegate"] = self
        object.__setattr__(new, "__dict__", d)
        if kwargs:
            _apply(d, kwargs)
        return new

    def _set_attributes(self, **kwargs: Any) -> None:
        _apply(self.__dict__, kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        self._set_attributes(**{name: value})

    def __repr__(self) -> str:
        return f"<URLGrabberOptions {sorted(k for k in self.__dict__ if k != 'delegate')}>"

    def set_loglevel(self, logspec: Any) -> None:
        """Classic: set ``logspec`` and (re)configure the debug logger from it."""
        self.logspec = logspec
        _init_default_logger(logspec)

    def find_proxy(self, url: str, scheme: str | bytes) -> None:
        """Classic: set ``self.proxy`` to the ``proxies`` entry for ``scheme`` ('_none_' gives '').

        Informational only: transfers take their proxy from ``proxies`` (``_curl``); libproxy is not asked.
        """
        self.proxy = None
        if isinstance(scheme, bytes):
            scheme = scheme.decode("utf-8")
        if scheme not in ("ftp", "http", "https") or not self.proxies:
            return
        proxy = self.proxies.get(scheme)
        if proxy is None and scheme != "ftp":  # http and https stand in for each other
            proxy = self.proxies.get("https" if scheme == "http" else "http")
        self.proxy = "" if proxy == "_none_" else proxy


def _apply(d: dict, kwargs: dict) -> None:
    """Set option values in an options dict, refusing names nobody knows."""
    for name, value in kwargs.items():
        name = _ALIASES.get(name, name)
        if name not in _DEFAULTS:
            raise URLGrabError(1, f"Unknown option: {name!r}")
        d[name] = value
    if "reget" in kwargs and kwargs["reget"] not in _REGET_MODES:
        raise URLGrabError(11, f"Illegal reget mode: {kwargs['reget']!r}")


class URLGrabber:
    """Grabs URLs with a set of default options; per-call keywords override them."""

    def __init__(self, **kwargs: Any) -> None:
        self.opts = URLGrabberOptions(**kwargs)

    def _parse(self, url: str | bytes, opts: Any, kwargs: dict) -> tuple[Any, str, tuple | None]:
        """Options for this call, and the full URL; ``parts`` is None on the fast path."""
        opts = (opts or self.opts).derive(**kwargs)
        if opts.logspec is not None:
            opts.set_loglevel(opts.logspec)
        parser = opts.urlparser
        if (type(parser) is URLParser and opts.prefix is None and opts.quote is None
                and type(url) is str and _PLAIN_URL.match(url)):
            # an ordinary remote URL that quoting would leave as it is
            return opts, url, None
        url, parts = (parser or URLParser()).parse(url, opts)
        if isinstance(url, bytes):
            url, parts = _text(url), tuple(_text(p) for p in parts)
        return opts, url, parts

    def urlgrab(self, url: str | bytes, filename: Any = None, opts: Any = None, **kwargs: Any) -> str:
        """Download ``url`` to ``filename`` (default: the URL's basename); return the filename.

        With ``async_`` set the download is queued and runs at ``parallel_end()``.
        ``opts`` (classic) replaces this grabber's options as the base for ``kwargs``.
        """
        opts, url, parts = self._parse(url, opts, kwargs)
        if filename is None:
            path = parts[2] if parts is not None else urllib.parse.urlsplit(url).path
            filename = os.path.basename(urllib.parse.unquote(path)) or "index.html"
        filename = os.fsdecode(filename)  # a path object or bytes, as classic accepted
        path = local_path(url, parts)
        if path is not None and not opts.copy_local and opts.range is None:
            if opts.checkfunc is not None:
                run_callback(opts.checkfunc, CallbackObject(opts, filename=path, url=url))
            return path
        return dispatch(make_request(opts, "grab", url, filename))

    def urlread(self, url: str | bytes, limit: int | None = None, opts: Any = None, **kwargs: Any) -> bytes:
        """Return the body of ``url``; more than ``limit`` bytes raises errno 8."""
        opts, url, parts = self._parse(url, opts, kwargs)
        local_path(url, parts)
        req = make_request(opts.derive(async_=None), "read", url, limit=limit)
        return run_blocking(req)

    def urlopen(self, url: str | bytes, opts: Any = None, **kwargs: Any) -> StreamFile:
        """Open ``url`` for reading as it streams in; returns a file-like object."""
        opts, url, parts = self._parse(url, opts, kwargs)
        local_path(url, parts)
        req = make_request(opts.derive(async_=None), "open", url)
        return open_stream(req)

    def _make_callback(self, callback_obj: Any) -> Any:
        """Classic helper: ``(fn, (), {})`` for a callable; a ``(fn, args, kwargs)`` tuple as it is."""
        if callable(callback_obj):
            return callback_obj, (), {}
        return callback_obj


default_grabber = URLGrabber()


def urlgrab(url: str, filename: str | None = None, **kwargs: Any) -> str:
    """Download ``url`` with the default grabber; see ``URLGrabber.urlgrab``."""
    return default_grabber.urlgrab(url, filename, **kwargs)


def urlread(url: str, limit: int | None = None, **kwargs: Any) -> bytes:
    """Read ``url`` into memory with the default grabber; see ``URLGrabber.urlread``."""
    return default_grabber.urlread(url, limit, **kwargs)


def urlopen(url: str, **kwargs: Any) -> StreamFile:
    """Open ``url`` as a stream with the default grabber; see ``URLGrabber.urlopen``."""
    return default_grabber.urlopen(url, **kwargs)


# ---------------------------------------------------------------------------
# classic module-level API
#
# The other names classic programs (yum, anaconda, osc, uyuni, livecd-tools)
# call on this module: logging, reset_curl_obj, the deprecated setters and
# retrygrab, small helpers, and the PyCurlFileObject that classic's tests use.

#: Classic's debug logger (a ``logging.Logger``) or None; see ``set_logger``.
DEBUG: Any = None
_debug_handler: Any = None  # the handler _init_default_logger added last


def set_logger(logger: Any) -> None:
    """Use ``logger`` (a ``logging.Logger``, or None) as ``DEBUG``, here and in ``urlgrabber.mirror``."""
    global DEBUG
    import sys

    DEBUG = logger
    mirror = sys.modules.get("urlgrabber.mirror")
    if mirror is not None:
        mirror.DEBUG = logger


def _init_default_logger(logspec: Any = None) -> None:
    """Classic: ``DEBUG`` from ``level[,filename]`` (default: $URLGRABBER_DEBUG), else None.

    level: a logging level name or an int (< 1: off); filename: '-' stdout, empty or missing stderr.
    """
    global _debug_handler
    logger = None
    try:
        if logspec is None:
            logspec = os.environ["URLGRABBER_DEBUG"]
        spec = list(logspec) if isinstance(logspec, (list, tuple)) else str(logspec).split(",")
        import logging
        import sys

        level = logging.getLevelName(spec[0])
        if not isinstance(level, int):
            level = int(spec[0])
        if level < 1:
            raise ValueError("logging off")
        filename = spec[1] if len(spec) > 1 else ""
        if filename == "":
            handler: Any = logging.StreamHandler(sys.stderr)
        elif filename == "-":
            handler = logging.StreamHandler(sys.stdout)
        else:
            handler = logging.FileHandler(filename)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger = logging.getLogger("urlgrabber")
        logger.propagate = False
        if _debug_handler is not None:  # called again: replace, do not duplicate every line
            logger.removeHandler(_debug_handler)
        logger.addHandler(handler)
        _debug_handler = handler
        logger.setLevel(level)
    except (KeyError, IndexError, ValueError, OSError):
        logger = None
    set_logger(logger)


if "URLGRABBER_DEBUG" in os.environ:  # only then is logging imported
    _init_default_logger()
    if DEBUG:
        DEBUG.debug("urlgrabber version  = %s", __version__)


def reset_curl_obj() -> None:
    """Drop pooled curl handles and kept-alive connections, so the next request connects afresh.

    Classic had one global handle; here it is the calling thread's engine (its connections).
    """
    from ._engine import _reset_thread_engine

    _reset_thread_engine()


def set_throttle(new_throttle: float) -> None:
    """Deprecated (classic): set ``throttle`` on ``default_grabber``."""
    default_grabber.opts.throttle = new_throttle


def set_bandwidth(new_bandwidth: float) -> None:
    """Deprecated (classic): set ``bandwidth`` on ``default_grabber``."""
    default_grabber.opts.bandwidth = new_bandwidth


def set_progress_obj(new_progress_obj: Any) -> None:
    """Deprecated (classic): set ``progress_obj`` on ``default_grabber``."""
    default_grabber.opts.progress_obj = new_progress_obj


def set_user_agent(new_user_agent: str) -> None:
    """Deprecated (classic): set ``user_agent`` on ``default_grabber``."""
    default_grabber.opts.user_agent = new_user_agent


def retrygrab(url: str, filename: str | None = None, copy_local: int = 0, close_connection: int = 0,
              progress_obj: Any = None, throttle: float | None = None, bandwidth: float | None = None,
              numtries: int = 3, retrycodes: Any = (-1, 2, 4, 5, 6, 7), checkfunc: Any = None) -> str:
    """Deprecated (classic): ``urlgrab`` with ``retry=numtries``; None throttle/bandwidth mean no cap."""
    return urlgrab(url, filename, copy_local=copy_local, close_connection=close_connection,
                   progress_obj=progress_obj, throttle=throttle, bandwidth=bandwidth,
                   retry=numtries, retrycodes=list(retrycodes), checkfunc=checkfunc)


def exception2msg(e: Any) -> str:
    """``str(e)`` for messages, never raising; bytes (or a lone bytes argument) decoded as UTF-8."""
    try:
        if isinstance(e, (bytes, bytearray)):
            return bytes(e).decode("utf-8", "replace")
        args = getattr(e, "args", None)
        if isinstance(args, tuple) and len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
            return bytes(args[0]).decode("utf-8", "replace")
        return str(e)
    except Exception:
        try:
            return repr(e)
        except Exception:
            return f"<{type(e).__name__}>"


def range_tuple_normalize(range_tup: Any) -> tuple[int, int | str] | None:
    """Classic: ``(first, last)``, last '' meaning the end; None for no range or the whole file.

    An end before the start is URLGrabError errno 9 (classic: byterange.RangeError; no byterange here).
    """
    if range_tup is None:
        return None
    first = range_tup[0]
    first = 0 if first in (None, "") else int(first)
    try:
        last = range_tup[1]
    except IndexError:
        last = ""
    if last is None:
        last = ""
    elif last != "":
        last = int(last)
    if first == 0 and last == "":
        return None
    if last != "" and last < first:
        raise URLGrabError(9, f"Invalid byte range: {first}-{last}")
    return first, last


def range_tuple_to_header(range_tup: Any) -> str | None:
    """Classic: the Range header value for ``(first, end_exclusive)``, e.g. 'bytes=5-9'; None if no range."""
    normal = range_tuple_normalize(range_tup)
    if normal is None:
        return None
    first, last = normal
    if last:  # classic leaves an end of 0 as it is
        last -= 1
    return f"bytes={first}-{last}"


class PyCurlFileObject:
    """Classic's file object for one (already parsed) URL, over this library's engine.

    ``filename`` a path: the body is first downloaded there (as urlgrab, atomically) and read
    back from it.  Otherwise (None, or a file object, which classic ignores too) reads stream
    as ``urlopen``'s.  One attempt, no checkfunc and errors raised: retries are URLGrabber's job.
    """

    def __init__(self, url: str | bytes, filename: Any, opts: URLGrabberOptions) -> None:
        if isinstance(url, bytes):
            url = url.decode("utf-8")
        self.url = url
        self.filename = filename
        self.opts = opts
        self.scheme = urllib.parse.urlsplit(url)[0]
        self.fo: Any = None
        self._transfer: Any = None
        local_path(url, urllib.parse.urlparse(url))  # errno 2/3 for a missing local file, as urlopen
        opts = opts.derive(async_=None, retry=None, checkfunc=None, failfunc=_do_raise)
        if isinstance(filename, (str, os.PathLike)) and os.fspath(filename):
            self.filename = os.fspath(filename)
            req = make_request(opts, "grab", url, self.filename)
            run_blocking(req)
            self._transfer = req.last_transfer
            self.fo = open(self.filename, "rb")  # noqa: SIM115 - closed by close()
        else:
            self.fo = open_stream(make_request(opts, "open", url))

    def __getattr__(self, name: str) -> Any:
        fo = self.__dict__.get("fo")
        if fo is not None and hasattr(fo, name):
            return getattr(fo, name)
        raise AttributeError(name)

    @property
    def hdr(self) -> Any:
        """The response headers (an ``email.message.Message``; empty for a plain download to a file)."""
        if isinstance(self.fo, StreamFile):
            return self.fo.headers
        import email.parser

        raw = b"".join(self._transfer.headers) if self._transfer is not None else b""
        return email.parser.BytesParser().parsebytes(raw, headersonly=True)

    @property
    def http_code(self) -> int:
        if isinstance(self.fo, StreamFile):
            return self.fo.http_code
        return self._transfer.status if self._transfer is not None else 0

    def info(self) -> Any:
        return self.hdr

    def geturl(self) -> str:
        return self.fo.geturl() if isinstance(self.fo, StreamFile) else self.url

    def read(self, amt: int | None = None) -> bytes:
        """``amt`` bytes (fewer only at the end), or all the rest when ``amt`` is None."""
        if amt is None or amt < 0:
            return self.fo.read()
        parts = []
        while amt > 0:
            chunk = self.fo.read(amt)
            if not chunk:
                break
            parts.append(chunk)
            amt -= len(chunk)
        return b"".join(parts)

    def readline(self, limit: int = -1) -> bytes:
        return self.fo.readline(limit)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self.fo.readlines(hint)

    def __iter__(self) -> Any:
        return iter(self.fo)

    def close(self) -> None:
        if self.fo is not None:
            self.fo.close()

    def __enter__(self) -> PyCurlFileObject:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
