"""The classic urlgrabber API: ``URLGrabber``, its options, and the module functions.

Every download, blocking or queued, becomes a ``Request`` (built and run by
``_calls``) on the thread's ``Engine`` (one CurlMulti loop): a blocking call is
simply a batch of one, so retries, checksums, resumes and progress behave the
same in both modes.
"""

from __future__ import annotations

import math
import os
import types

from . import _lazy, _libcurl
from ._batch import parallel, parallel_begin, parallel_end, parallel_wait
from ._batchresult import BatchResult
from ._calls import dest_path, dispatch, local_path, make_request, open_stream, run_blocking
from ._lazy import urlparse as _urlparse
from ._optcount import options_changed, options_version
from ._request import CallbackObject, _do_raise, run_callback
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


def __getattr__(name: str) -> Any:
    """``grabber.pycurl``, as classic's module had it (yum-rhn-plugin imports it from
    here): loaded with the first transfer, or now when a caller asks for it."""
    if name == "pycurl":
        return _libcurl.pycurl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Callable


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
            raise URLGrabError(1, f"Bad URL: {_short(url)}")
        if len(url) > _MAX_URL_LENGTH:
            raise _too_long(url)
        try:
            return self._parse(url, opts)
        except UnicodeError:  # a lone surrogate: no UTF-8 for it
            raise URLGrabError(1, f"Malformed URL: {_short(_text(url), _URL_SHOWN)}: not valid text") from None

    def _parse(self, url: str | bytes, opts: Any) -> tuple[Any, tuple]:
        quote = opts.quote
        if opts.prefix:
            url = self.add_prefix(url, opts.prefix)
        if isinstance(url, bytes) and not url.isascii():
            # urllib.parse takes ASCII bytes only: encode as browsers do, each byte
            # as itself (%E9 stays one byte, UTF-8 or not); the URL stays bytes
            text = _text(url)
            url = (_ascii_url(text) if "://" in text else _local_url(text)).encode("ascii")
        try:
            parts = _urlparse.urlparse(url)
            if parts.netloc:
                parts.port  # noqa: B018 - validates the port and an IPv6 literal
        except ValueError as e:
            text = _text(url)
            raise URLGrabError(1, f"Malformed URL: {_short(text, _URL_SHOWN)}: {_cap(scrub(str(e), text))}",
                               url=text) from None
        scheme = _text(parts[0])
        if not scheme or (len(scheme) == 1 and scheme.isalpha()):
            # no scheme: a local path
            local = _local_url(_text(url))
            url = local.encode("ascii") if isinstance(url, bytes) else local
            parts = _urlparse.urlparse(url)
            quote = 0  # _local_url has quoted it already
        elif scheme in ("http", "https"):
            parts = self.process_http(parts, url)
        if quote is None:
            quote = self.guess_should_quote(parts)
        if quote:
            parts = self.quote(parts)
        url = _urlparse.urlunparse(parts)
        if not url.isascii():  # only str: urllib.parse refuses non-ASCII bytes
            url = _ascii_url(url)
            parts = _urlparse.urlparse(url)
        if len(url) > _MAX_URL_LENGTH:
            raise _too_long(url)
        return url, parts

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
        if isinstance(path, bytes):
            quoted = _urlparse.quote(path, safe="/$").encode("ascii")
        else:  # an undecodable byte (a surrogate escape) as itself
            quoted = _urlparse.quote(path, safe="/$", errors="surrogateescape")
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


# -- non-ASCII URLs, as browsers send them ------------------------------------

_NON_ASCII = _lazy.Pattern(r"[^\x00-\x7f]+")
_AUTHORITY = _lazy.Pattern(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
_ASCII_HOST = _lazy.Pattern(r"[A-Za-z0-9_.-]+\Z")
_URL_SHOWN = 120  # characters of a bad URL a message shows


def _cap(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _too_long(url: str | bytes) -> URLGrabError:
    return URLGrabError(1, f"URL too long: {len(url)} characters (at most {_MAX_URL_LENGTH}): "
                           f"{_short(_text(url[:_URL_SHOWN]), _URL_SHOWN)}")


def _local_url(path: str) -> str:
    """A local path as a ``file://`` URL, its bytes (as the OS names them) quoted."""
    path = path if os.path.isabs(path) else os.path.abspath(path)
    return "file://" + _urlparse.quote(os.fsencode(path))


def _percent_encode(text: str) -> str:
    """Each non-ASCII character as %XX of its UTF-8 bytes (an undecodable byte, kept
    as a surrogate escape, as itself); ASCII, '%' included, is left as it is."""
    return _NON_ASCII.sub(lambda m: _urlparse.quote(m.group().encode("utf-8", "surrogateescape"), safe=""),
                          text)


def _idna_host(host: str) -> str:
    """``host`` in ASCII, as browsers send it: a non-ASCII name IDNA-encoded
    ('bücher.example' -> 'xn--bcher-kva.example'); not valid IDNA is errno 1."""
    if host.isascii():
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()  # lower-case, as browsers send it
    except UnicodeError:
        ascii_host = ""
    if not _ASCII_HOST.match(ascii_host):
        raise URLGrabError(1, f"Bad host name (not valid IDNA): {_short(host, _URL_SHOWN)}")
    return ascii_host


def _ascii_url(url: str) -> str:
    """``url`` as browsers send it: the host IDNA-encoded, every other non-ASCII
    character percent-encoded as UTF-8 (``http://bücher.example/ä?q=ü`` ->
    ``http://xn--bcher-kva.example/%C3%A4?q=%C3%BC``).  Called only for a URL
    with non-ASCII characters: plain ones are not looked at."""
    try:
        m = _AUTHORITY.match(url)
        if m is None:
            return _percent_encode(url)
        start, end = m.span(1)
        userinfo, at, hostport = m.group(1).rpartition("@")
        host, sep, port = (hostport, "", "") if hostport.startswith("[") else hostport.partition(":")
        if not port.isascii() or (host.startswith("[") and not host.isascii()):
            raise URLGrabError(1, f"Malformed URL: {_short(url, _URL_SHOWN)}: a non-ASCII port or IPv6 address")
        return (url[:start] + _percent_encode(userinfo) + at + _idna_host(host) + sep + port
                + _percent_encode(url[end:]))
    except UnicodeError:
        raise URLGrabError(1, f"Malformed URL: {_short(url, _URL_SHOWN)}: not valid text") from None


# A remote URL with nothing to quote or encode (printable ASCII), a valid port (if
# any) and no empty query: URLParser accepts it and returns it unchanged
# (test_fuzz checks that on generated ones, and that _plain_url accepts exactly
# what the regular expression written there does).  Checked with str methods, not
# a regular expression: a process that only queues plain URLs then never imports
# re (and enum with it, ~10 ms at start-up).
_PLAIN_SCHEMES = frozenset(("http", "https", "ftp", "ftps"))


def _char_class(chars: bytes) -> bytes:
    """A bytes.translate() table: ``chars`` -> ``a``, any other byte -> ``!``; a translated
    string ``.isalpha()`` then says whether it holds only ``chars`` (two passes in C)."""
    return bytes(0x61 if i in chars else 0x21 for i in range(256))


_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HOST_CLASS = _char_class(_ALNUM + b".-")
_USERINFO_CLASS = _char_class(_ALNUM + b".-:@")
_PATH_CLASS = _char_class(_ALNUM + b"_.~/-")
_QUERY_CLASS = _char_class(bytes(c for c in range(0x21, 0x7f) if c != 0x23))  # printable, no space or #
_plain_netlocs: dict[str, bool] = {}  # netloc -> plain (a batch's URLs share a few)
_plain_prefix = "\0"  # "scheme://authority/" of the last plain URL with a path (none yet)


def _plain_netloc(netloc: str) -> bool:
    """``[userinfo@]host[:port]``: host and userinfo of plain characters, a port 0-65535."""
    user, _, hostport = netloc.rpartition("@")
    host, colon, port = hostport.partition(":")
    if not host.encode().translate(_HOST_CLASS).isalpha():  # (also: not empty)
        return False
    if user and not user.encode().translate(_USERINFO_CLASS).isalpha():
        return False
    if colon:
        return port.isdigit() and (len(port) <= 4 or (len(port) == 5 and port[0] != "0" and int(port) <= 65535))
    return True


# Longer URLs are refused (errno 1), and never echoed whole.
_MAX_URL_LENGTH = 64 * 1024


# ---------------------------------------------------------------------------
# Option values.  Each option has a validator in the table below: it runs when
# a value is set (URLGrabberOptions(...), derive(...), ``opts.name = value``,
# per-call keywords), never when a value is only inherited, and returns the
# value to store (the caller's own object, or a normalised one).  A bad value
# is URLGrabError errno 1 "Bad value for option <name>: <short repr>".

_REPR_LIMIT = 60
_SECRET_OPTIONS = frozenset({"password", "ssl_key_pass"})  # never shown in a message
_CONTROL = _lazy.Pattern(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters, tab excepted
_TOKEN_CHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]"  # what an HTTP header name is made of (RFC 9110)
_TOKEN = _lazy.Pattern(_TOKEN_CHARS + r"+\Z")
# libcurl drops a header whose value is empty, so classic callers (yum-rhn-plugin,
# spacewalk's) send one as "\nX-libcurl-Empty-Header-Workaround: *": an empty value,
# a line break, then one more well-formed header line (libcurl sent both lines)
_EMPTY_HEADER_IDIOM = _lazy.Pattern(r"[ \t]*\r?\n" + _TOKEN_CHARS + r"+:[\t\x20-\x7e]*\Z")
_URL_SECRET = _lazy.Pattern(r"(://[^/?#@\s'\"]*?:)[^@\s'\"]*@")  # user:password@ in any text
_MAX_SECONDS = 10 ** 9        # about 31 years: anything above is a mistake
_MAX_OFF_T = 2 ** 63 - 1      # libcurl's curl_off_t (sizes, byte rates)
_MAX_LONG_RATE = 2 ** 31 - 1  # libcurl's LOW_SPEED_LIMIT is a C long
_IP_RESOLVE = ("whatever", "ipv4", "4", "ipv6", "6")  # what _curl understands (_IPRESOLVE)
_REGET_MODES = (None, "simple", "check_timestamp")


class _Bad(Exception):
    """A validator's refusal; ``detail`` (safe to show) replaces the value's repr."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


def _short(value: Any, limit: int = _REPR_LIMIT) -> str:
    """``repr(value)`` for a message: any URL password hidden, at most ``limit`` characters."""
    try:
        if isinstance(value, str):
            value = redact(value)
        text = _URL_SECRET.sub(r"\1***@", repr(value))
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _bad_value(name: str, value: Any, detail: str | None) -> str:
    if detail is None:
        detail = f"<{type(value).__name__}, hidden>" if name in _SECRET_OPTIONS else _short(value)
    return f"Bad value for option {name}: {detail}"


def _to_number(text: str) -> int | float:
    """A number written as a string ("30", "2.5")."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except (ValueError, OverflowError):
        raise _Bad() from None


def _number(*, integer: bool, maximum: float | None = None, strings: bool = False) -> Callable[[Any], Any]:
    """A validator: None, or a number from 0 to ``maximum`` (an int when ``integer``);
    with ``strings`` a number written as a string is accepted too (classic's int()/float())."""

    def check(value: Any) -> Any:
        if value is None:
            return None
        if strings and isinstance(value, str):
            value = _to_number(value)
        if not isinstance(value, int):
            import numbers  # rare (a float, a Decimal...): ~1 ms at start-up otherwise

            if isinstance(value, numbers.Integral):
                value = int(value)
            elif isinstance(value, numbers.Real):
                value = float(value)
                if not math.isfinite(value) or (integer and not value.is_integer()):
                    raise _Bad()
                if integer:
                    value = int(value)
            else:
                raise _Bad()
        if value < 0 or (maximum is not None and value > maximum):
            raise _Bad()
        return value

    return check


def _boolish(value: Any) -> Any:
    """None, a bool or an int (classic's 0/1)."""
    if value is None or isinstance(value, int):
        return value
    raise _Bad()


def _callback(value: Any) -> Any:
    """None, a callable, or ``(callable, args, kwargs)`` (args and kwargs optional)."""
    if value is None or callable(value):
        return value
    if isinstance(value, tuple) and 1 <= len(value) <= 3 and callable(value[0]):
        if len(value) > 1 and not isinstance(value[1], (tuple, list)):
            raise _Bad(f"{_short(value)}: args is not a tuple")
        if len(value) > 2 and not (isinstance(value[2], dict) and all(isinstance(k, str) for k in value[2])):
            raise _Bad(f"{_short(value)}: kwargs is not a dict")
        return value
    raise _Bad()


def _retrycodes(value: Any) -> Any:
    """A collection of int errnos (another iterable is kept as a list)."""
    if isinstance(value, (str, bytes, bytearray, dict)) or value is None:
        raise _Bad()
    codes = value if isinstance(value, (list, tuple, set, frozenset, range)) else list(value)
    for code in codes:
        if not isinstance(code, int):
            raise _Bad(f"{_short(code)} is not an errno (int)")
    return codes


def _range_end(value: Any) -> int:
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad()
    if isinstance(value, (int, float, str)):
        return int(value)  # as classic's range_tuple_normalize: 5.0 and "5" are 5
    raise _Bad()


def _byte_range(value: Any) -> Any:
    """None, or ``(start, end)`` python-style (end exclusive; None or '' for the end).

    Stored as ``(int, int | None)``; an empty or inverted range is errno 9, as classic."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise _Bad()
    start, end = value
    try:
        start = 0 if start is None or (isinstance(start, str) and not start) else _range_end(start)
        end = None if end is None or (isinstance(end, str) and not end) else _range_end(end)
    except ValueError:
        raise _Bad() from None
    if start < 0 or (end is not None and end <= start):
        raise URLGrabError(9, f"Invalid range: {_short(value)}")
    return (start, end)


def _reget(value: Any) -> Any:
    if value in _REGET_MODES:
        return value
    raise URLGrabError(11, f"Illegal reget mode: {_short(value)}")  # classic's errno


def _text_problem(value: str) -> str | None:
    """Why ``value`` cannot go into a request header or a libcurl string as it is; None if it can."""
    if _CONTROL.search(value):
        return "a CR, LF, NUL or other control character"
    if not value.isascii():
        return "a non-ASCII character"
    return None


def _ascii_str(secret: bool) -> Any:
    """A check for None or an ASCII str without CR/LF or other control characters (which
    would inject request headers); a ``secret`` value is never shown in the message."""
    def check(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _Bad()
        problem = _text_problem(value)
        if problem:
            raise _Bad(f"{'<str, hidden>' if secret else _short(value)} contains {problem}")
        return value
    return check


_user_agent = _ascii_str(secret=False)
_credential = _ascii_str(secret=True)  # username, password


def _http_headers(value: Any) -> Any:
    """None, or a list or tuple of (name, value) pairs: a header name and printable ASCII.

    The caller's sequence is kept as it is (a list changed in place is sent as it is then)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise _Bad()
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _Bad(f"{_short(pair)} is not a (name, value) pair")
        name, text = pair
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise _Bad(f"{_short(name)} is not a header name")
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            continue
        if not isinstance(text, str):
            raise _Bad(f"the value of {name} is not a str")
        problem = _text_problem(text)
        if problem and not _EMPTY_HEADER_IDIOM.match(text):  # (the value is not shown: a credential?)
            raise _Bad(f"the value of {name} contains {problem}")
    return value


def _data(value: Any) -> Any:
    """None, or a POST body: bytes, bytearray, str (sent as UTF-8) or a dict (form-encoded)."""
    if value is None or isinstance(value, (bytes, bytearray)):
        return value
    try:
        if isinstance(value, str):
            value.encode("utf-8")
            return value
        if isinstance(value, dict):
            _urlparse.urlencode(value)
            return value
    except UnicodeError:  # a lone surrogate
        raise _Bad(f"<{type(value).__name__}> that is not valid text") from None
    raise _Bad()


def _url_text(value: Any) -> Any:
    """None, a str or bytes (``prefix``)."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    raise _Bad()


def _urlparser(value: Any) -> Any:
    if value is None or callable(getattr(value, "parse", None)):
        return value
    raise _Bad(f"{_short(value)} has no parse() method")


def _proxies(value: Any) -> Any:
    """None, or a dict scheme -> proxy URL (or None); kept as it is (changes in place count)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad(f"<{type(value).__name__}>, not a dict")
    for scheme, proxy in value.items():
        if not isinstance(scheme, str):
            raise _Bad(f"key {_short(scheme)} is not a str")
        if proxy is None:
            continue
        if not isinstance(proxy, str) or _text_problem(proxy) or " " in proxy:
            raise _Bad(f"{scheme}: {_short(proxy)}")
    return value


def _ip_resolve(value: Any) -> Any:
    """None, or 'ipv4', 'ipv6', 'whatever' (any case), '4', '6', 4, 6."""
    if value is None or value == "":
        return value
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).lower() in _IP_RESOLVE:
        return value
    raise _Bad()


def _file_path(value: Any) -> Any:
    """None, or a path (str, bytes, os.PathLike): a str when ASCII, else bytes (libcurl takes those)."""
    if value is None:
        return None
    try:
        value = os.fspath(value)
    except TypeError:
        raise _Bad() from None
    if isinstance(value, str) and not value.isascii():
        try:
            value = os.fsencode(value)
        except UnicodeError:
            raise _Bad() from None
    if ("\0" if isinstance(value, str) else b"\0") in value:
        raise _Bad(f"{_short(value)} contains a NUL")
    return value


def _key_password(value: Any) -> Any:
    """None, or a str or bytes without NUL (a non-ASCII str is passed on as UTF-8)."""
    if value is None:
        return None
    if isinstance(value, str):
        if "\0" in value:
            raise _Bad("<str, hidden> contains a NUL")
        return value if value.isascii() else value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes) and b"\0" not in value:
        return value
    raise _Bad()


def _type_name(value: Any) -> Any:
    """None or a short ASCII word ('PEM', 'DER', ...)."""
    if value is None or (isinstance(value, str) and not _text_problem(value) and " " not in value):
        return value
    raise _Bad()


def _meter(value: Any) -> Any:
    """None, or a progress meter: an object with start(), update() and end()."""
    if value is None:
        return None
    if isinstance(value, type):
        raise _Bad(f"{_short(value)} is a class, not a meter")
    for method in ("start", "update", "end"):
        if not callable(getattr(value, method, None)):
            raise _Bad(f"{_short(value)} has no {method}() method")
    return value


def _async(value: Any) -> Any:
    """None, a bool (or int), or ``(key, limit)``: a hashable key and an int limit (or None)."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        key, limit = value
        try:
            hash(key)
        except TypeError:
            raise _Bad(f"{_short(value)}: the key is not hashable") from None
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise _Bad(f"{_short(value)}: the limit is not a count")
        return value
    raise _Bad()


_count = _number(integer=True)
_MAX_STREAMS = 1000  # far above what servers allow per connection (100-256)
_stream_count = _number(integer=True, maximum=_MAX_STREAMS, strings=True)


def _max_streams(value: Any) -> int:
    """A count from 1 to _MAX_STREAMS (1: one transfer per connection, as HTTP/1.1)."""
    value = _stream_count(value)
    if value is None or value < 1:
        raise _Bad()
    return value

_seconds = _number(integer=False, maximum=_MAX_SECONDS, strings=True)
_byte_count = _number(integer=True, maximum=_MAX_OFF_T)

# (name, default, validator (None: any value), what it means)
_OPTIONS: tuple[tuple[str, Any, Callable[[Any], Any] | None, str], ...] = (
    # transfer behaviour
    ("retry", None, _number(integer=True, strings=True), "attempts per URL (None: one)"),
    ("retrycodes", [-1, 2, 4, 5, 6, 7], _retrycodes, "errnos that are retried"),
    ("retry_no_cache", False, _boolish, "a retry after a checkfunc failure (errno < 0) sends no_cache"),
    ("checkfunc", None, _callback, "fn or (fn, args, kwargs) judging the download (obj.filename, obj.url)"),
    ("failfunc", _do_raise, _callback, "called once on final failure; its return value is urlgrab's"),
    ("failure_callback", None, _callback, "called after each failed attempt"),
    ("interrupt_callback", None, _callback, "Ctrl-C in a blocking call: returning retries the attempt"),
    ("reget", None, _reget, "None, 'simple' or 'check_timestamp': resume an existing file (errno 11 else)"),
    ("range", None, _byte_range, "(start, end) python-style slice of the file (inverted: errno 9)"),
    ("size", None, _number(integer=True, maximum=_MAX_OFF_T, strings=True),
     "expected size in bytes: a body growing past it is aborted"),
    ("max_header_size", 2097152, _byte_count, "response headers larger than this fail"),
    ("timeout", 300, _seconds, "connect timeout and no-progress window, seconds (None, 0: none)"),
    ("minrate", None, _number(integer=False, maximum=_MAX_LONG_RATE),
     "slower than this (bytes/s over `timeout`) is errno 12"),
    ("throttle", 1.0, _number(integer=False, maximum=_MAX_OFF_T),
     "> 1: bytes/s; <= 1: fraction of bandwidth (0, None: no cap)"),
    ("bandwidth", 0, _number(integer=False, maximum=_MAX_OFF_T), "bytes/s that a fractional throttle applies to"),
    ("copy_local", 0, _boolish, "copy file:// URLs instead of returning the path"),
    ("keepalive", 1, _boolish, "reuse connections (0: a new connection each time)"),
    ("close_connection", 0, _boolish, "like keepalive=0"),
    ("no_cache", False, _boolish, "send Pragma: no-cache and Cache-Control: no-cache"),
    # request content
    ("user_agent", f"urlgrabber/{__version__}", _user_agent, "User-Agent (printable ASCII)"),
    ("http_headers", None, _http_headers, "((name, value), ...) extra request headers"),
    ("data", None, _data, "POST body (bytes, str or dict)"),
    ("username", None, _credential, "user name (also user:pass@ in the URL)"),
    ("password", None, _credential, "password (never shown in messages)"),
    ("prefix", None, _url_text, "joined in front of relative URLs"),
    ("quote", None, _boolish, "1 quote the path, 0 don't, None guess"),
    ("urlparser", None, _urlparser, "a URLParser (anything with parse(url, opts))"),
    # network
    ("proxies", None, _proxies, "{'http': url, 'https': url, ...}; '_none_' disables"),
    ("ip_resolve", None, _ip_resolve, "'ipv4', 'ipv6' or None"),
    ("ftp_disable_epsv", False, _boolish, "use PASV instead of EPSV"),
    ("ssl_verify_peer", True, _boolish, "verify the server's certificate"),
    ("ssl_verify_host", True, _boolish, "verify that the certificate names the host"),
    ("ssl_ca_cert", None, _file_path, "CA bundle file"),
    ("ssl_cert", None, _file_path, "client certificate file"),
    ("ssl_key", None, _file_path, "client key file"),
    ("ssl_key_pass", None, _key_password, "client key passphrase (never shown in messages)"),
    ("ssl_cert_type", "PEM", _type_name, "client certificate format ('PEM', 'DER', 'P12')"),
    ("ssl_key_type", "PEM", _type_name, "client key format ('PEM', 'DER', 'ENG')"),
    ("allow_insecure_redirect", False, _boolish, "follow a redirect from https (ftps) down to http (ftp)"),
    # progress
    ("progress_obj", None, _meter, "a BaseMeter: start/update/end per file"),
    ("multi_progress_obj", None, None, "a MultiFileMeter for a batch"),
    ("text", None, None, "the name a progress meter shows"),
    # batches and mirrors
    ("async_", None, _async, "queue the request: True, or (key, limit)"),
    ("max_connections", None, _count, "per-key limit of a queued request (connections); the batch's global default"),
    ("max_streams", 32, _max_streams,
     "HTTP/2: transfers per connection on a server that multiplexes (1: one, as HTTP/1.1)"),
    ("segments", None, _count,
     "connections one large download may use at once, each fetching a byte range: None splits a "
     "MirrorGroup batch download over idle mirrors and keeps a single URL on one connection; "
     "0 or 1 never splits; N > 1 caps it (a single URL: N connections to its host)"),
    ("min_segment", 2 * 1024 * 1024, _byte_count,
     "smallest byte range a split download gives a connection (at least 16 KiB); "
     "a body under twice this is never split"),
    ("timedhosts", None, None, "file of per-mirror speed/failure statistics (MirrorGroup)"),
    ("half_life", 30 * 24 * 60 * 60, None, "ageing of those statistics, seconds"),
    ("default_speed", 1e6, None, "prior mirror speed of those statistics, bytes/s"),
    # accepted for compatibility; they do nothing here (libcurl does the work)
    ("libproxy", False, None, "inert"),
    ("ssl_context", None, None, "inert"),
    ("opener", None, None, "inert"),
    ("cache_openers", True, None, "inert"),
    ("ftp_headers", None, None, "inert"),
    ("curl_obj", None, None, "inert"),
    ("proxy", None, None, "informational: set by find_proxy()"),
    # classic: a per-call debug level ("level[,file]", as URLGRABBER_DEBUG)
    ("logspec", None, None, "a per-call debug level, 'level[,file]'"),
)
_DEFAULTS: dict[str, Any] = {name: default for name, default, _check, _doc in _OPTIONS}
_CHECKS: dict[str, Callable[[Any], Any] | None] = {name: check for name, _default, check, _doc in _OPTIONS}
_ALIASES = {"async": "async_"}
_MISSING = object()  # (a keyword a call did not give)


# per-call keyword values a call's options copy may be shared for: constants
# (compared by value) and functions (compared by identity)
_PLAIN_TYPES = frozenset((str, int, float, bool, bytes, type(None), types.FunctionType,
                          types.BuiltinFunctionType, types.MethodType))


class _LastCall:
    """A call whose options copy the next calls may share: the grabber's options it was
    derived from, options_version() then, its keywords, their value types (and the item
    types of its one tuple value, if any), and the copy.  (URLGrabber._parse checks a new
    call against it inline: that runs once per queued file.)"""

    __slots__ = ("base", "version", "kwargs", "kinds", "tuple_name", "item_kinds", "opts")

    @classmethod
    def record(cls, base: Any, kwargs: dict, opts: Any) -> _LastCall | None:
        """``kwargs`` when every value is a constant or a function, or (one of them) a
        tuple of those, as ``async_=(key, limit)``; None when any is not (a list, a dict,
        a caller's object, a second tuple), or when an option is given under both its
        names (``async`` and ``async_``: the later one wins).  A call whose keywords compare
        equal with values of the same types passes the same values: plain values of one
        type that are equal are the same (a function equals only itself).  (The order of
        the names does not matter: each is checked on its own, and no alias pair is taken.)"""
        last = cls()
        last.tuple_name = last.item_kinds = None
        for name, value in kwargs.items():
            kind = type(value)
            if kind is tuple:
                if last.tuple_name is not None:
                    return None
                last.tuple_name, last.item_kinds = name, tuple(map(type, value))
                if not _PLAIN_TYPES.issuperset(last.item_kinds):
                    return None
            elif kind not in _PLAIN_TYPES:
                return None
        for alias, name in _ALIASES.items():
            if alias in kwargs and name in kwargs:
                return None
        last.base, last.version, last.kwargs, last.opts = base, options_version(), kwargs, opts
        last.kinds = tuple((name, type(value)) for name, value in kwargs.items())
        return last

    def same_types(self, kwargs: dict) -> bool:
        """Whether ``kwargs`` has the same names with values (and tuple items) of the same
        types, checked before the values are compared: 1 == 1.0 == True, a bad value must
        not pass as a good one, and a caller's object is never asked to compare itself."""
        if len(kwargs) != len(self.kinds):
            return False
        for name, kind in self.kinds:
            if type(kwargs.get(name, _MISSING)) is not kind:
                return False
        if self.tuple_name is not None:
            for item, kind in zip(kwargs[self.tuple_name], self.item_kinds):
                if type(item) is not kind:
                    return False
        return True


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
        new = self._overlay(None)
        if kwargs:
            _apply(new.__dict__, kwargs)
        return new

    def _overlay(self, checked: dict | None) -> URLGrabberOptions:
        """``derive`` with values checked already: another options object's own, by
        their canonical names (a MirrorGroup call's, put over each mirror's options)."""
        new = object.__new__(URLGrabberOptions)
        d = dict(self.__dict__)
        d["delegate"] = self
        if checked:
            d.update(checked)
        object.__setattr__(new, "__dict__", d)
        return new

    def _set_attributes(self, **kwargs: Any) -> None:
        _apply(self.__dict__, kwargs)
        options_changed()  # (what was worked out from options before this is stale now)

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
    """Validate option values and set them in an options dict, all or none.

    An unknown name or a bad value is URLGrabError errno 1 (a bad reget mode
    11, an empty or inverted range 9, as classic).  Only the values given are
    checked: inherited ones were checked when they were set.
    """
    values = {}
    for name, value in kwargs.items():
        name = _ALIASES.get(name, name)
        try:
            check = _CHECKS[name]
        except KeyError:
            raise URLGrabError(1, f"Unknown option: {_short(name)}") from None
        if check is not None:
            try:
                value = check(value)
            except _Bad as bad:
                raise URLGrabError(1, _bad_value(name, value, bad.detail)) from None
            except URLGrabError:
                raise
            except Exception as e:  # a value whose own methods fail (==, iteration, ...)
                raise URLGrabError(1, _bad_value(name, value, None), exception=e) from None
        values[name] = value
    d.update(values)


def _plain_url(url: Any) -> bool:
    """Whether ``url`` is a remote URL that URLParser would return as it is."""
    global _plain_prefix
    if type(url) is not str or len(url) > _MAX_URL_LENGTH or not url.isascii():
        return False
    prefix = _plain_prefix
    if url.startswith(prefix):  # the last plain URL's scheme and authority: only its path is new
        path, query_mark, query = url[len(prefix):].partition("?")
    else:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in _PLAIN_SCHEMES:
            return False
        netloc, slash, path = rest.partition("/")  # (the authority holds neither / nor ?)
        if "?" in netloc:  # a query straight after the authority, no path
            netloc, query_mark, query = rest.partition("?")
            path = slash = ""
        else:
            path, query_mark, query = path.partition("?")
        plain = _plain_netlocs.get(netloc)
        if plain is None:
            plain = _plain_netloc(netloc)
            if len(_plain_netlocs) >= 256:  # (ever-new hosts: start over, never grow)
                _plain_netlocs.clear()
            _plain_netlocs[netloc] = plain
        if not plain:
            return False
        if slash:
            _plain_prefix = f"{scheme}://{netloc}/"
    if path and not path.encode().translate(_PATH_CLASS).isalpha():
        return False
    return not query_mark or query.encode().translate(_QUERY_CLASS).isalpha()  # (an empty query is not)


def _plain_call(opts: Any, url: Any) -> bool:
    """Whether ``url`` is used as it is: the default parser, no prefix or quoting,
    and a remote URL with nothing to quote or encode."""
    return (type(opts.urlparser) is URLParser and opts.prefix is None and opts.quote is None
            and _plain_url(url))


class URLGrabber:
    """Grabs URLs with a set of default options; per-call keywords override them."""

    _last_call: _LastCall | None = None  # (whose options copy the next calls may share)

    def __init__(self, **kwargs: Any) -> None:
        self.opts = URLGrabberOptions(**kwargs)

    def _parse(self, url: str | bytes, opts: Any, kwargs: dict) -> tuple[Any, str, tuple | None]:
        """Options for this call, and the full URL; ``parts`` is None on the fast path.

        Calls on the fast path with the same plain keywords (a batch queueing
        thousands of ``async_=(key, limit)`` calls) share one options copy until
        any options change; nothing writes to a call's copy afterwards.
        """
        base = opts or self.opts
        last = self._last_call
        # the last call's plain keywords (the same names, order and types, and equal
        # values) and options unchanged since (any change moves options_version()): its
        # options copy passed _plain_call, so only the URL is left to check
        if (last is not None and last.base is base and last.version == options_version()
                and last.same_types(kwargs) and kwargs == last.kwargs and _plain_url(url)):
            return last.opts, url, None
        opts = base.derive(**kwargs)
        if opts.logspec is not None:
            opts.set_loglevel(opts.logspec)
        parser = opts.urlparser
        if _plain_call(opts, url):
            # an ordinary remote URL that quoting would leave as it is
            cached = _LastCall.record(base, kwargs, opts) if opts.logspec is None else None
            if cached is not None:
                self._last_call = cached
            return opts, url, None
        url, parts = (parser or URLParser()).parse(url, opts)
        if isinstance(url, bytes):
            url, parts = _text(url), tuple(_text(p) for p in parts)
        elif not isinstance(url, str):
            raise URLGrabError(1, f"Bad URL from the urlparser: {_short(url)}")
        if len(url) > _MAX_URL_LENGTH or not url.isascii():  # from a parser of the caller's own
            if len(url) <= _MAX_URL_LENGTH:
                url = _ascii_url(url)
                parts = _urlparse.urlparse(url)
            if len(url) > _MAX_URL_LENGTH:
                raise _too_long(url)
        return opts, url, parts

    def urlgrab(self, url: str | bytes, filename: Any = None, opts: Any = None, **kwargs: Any) -> str:
        """Download ``url`` to ``filename`` (default: the URL's basename); return the filename.

        With ``async_`` set the download is queued and runs at ``parallel_end()``.
        ``opts`` (classic) replaces this grabber's options as the base for ``kwargs``.
        """
        opts, url, parts = self._parse(url, opts, kwargs)
        if filename is None:
            path = parts[2] if parts is not None else _urlparse.urlsplit(url).path
            filename = os.path.basename(_urlparse.unquote(path)) or "index.html"
        if parts is not None:  # (None: a remote URL on the fast path, no local path)
            filename = dest_path(filename)  # (make_request checks it on the fast path)
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


def _options_reference() -> str:
    """Every option, its default and what it means (from ``_OPTIONS``), for help()."""
    width = max(len(name) for name, *_ in _OPTIONS)
    lines = [f"    {name:<{width}}  {doc} [default: {_default_text(default)}]"
             for name, default, _check, doc in _OPTIONS]
    head = "Options (keywords of URLGrabber() and of each call; unknown names are errno 1):"
    return "\n\n" + head + "\n\n" + "\n".join(lines) + "\n"


def _default_text(value: Any) -> str:
    return getattr(value, "__name__", None) or repr(value)


URLGrabber.__doc__ = (URLGrabber.__doc__ or "") + _options_reference()


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
        self.scheme = _urlparse.urlsplit(url)[0]
        self.fo: Any = None
        self._response: tuple[int, Any] = (0, ())  # a download's status and headers
        local_path(url, _urlparse.urlparse(url))  # errno 2/3 for a missing local file, as urlopen
        opts = opts.derive(async_=None, retry=None, checkfunc=None, failfunc=_do_raise)
        if isinstance(filename, (str, os.PathLike)) and os.fspath(filename):
            self.filename = os.fspath(filename)
            req = make_request(opts, "grab", url, self.filename)
            run_blocking(req)
            self._response = (req.last_status, req.last_headers)
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

        raw = b"".join(self._response[1])
        return email.parser.BytesParser().parsebytes(raw, headersonly=True)

    @property
    def http_code(self) -> int:
        if isinstance(self.fo, StreamFile):
            return self.fo.http_code
        return self._response[0]

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
