"""The one place where urlgrabber options become libcurl settings, and the owner of handles.

``configure()`` turns an options object into a configured ``pycurl.Curl``:
each option has one setter in ``_SETTERS``, and the options a pooled handle
was last configured with are derived from that table, so a handle whose
next request has the same options keeps its settings.  ``wire_direct()`` and
``wire_observed()`` set the write and header callbacks.  The blocking calls
and the batch engine both go through here, so a setting cannot behave
differently in the two modes.
"""

from __future__ import annotations

import operator

from . import _lazy, _optcount
from ._lazy import urlparse as _urlparse
from ._libcurl import pycurl
from ._policy import Timeout
from ._sinks import DirectWriter

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

    from ._interfaces import FileTarget

# Protocols a request may use, and the smaller set a redirect may lead to:
# a remote server must never be able to make us read a local file.
_PROTOCOLS = (pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS | pycurl.PROTO_FTP
              | pycurl.PROTO_FTPS | pycurl.PROTO_FILE)
_REDIR_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS | pycurl.PROTO_FTP | pycurl.PROTO_FTPS
# ... and where a TLS request may be redirected: never down to clear text
_SECURE_REDIR_PROTOCOLS = pycurl.PROTO_HTTPS | pycurl.PROTO_FTPS
_MAX_REDIRS = 5
_LIBCURL = pycurl.version_info()[2]  # libcurl's version, 0xXXYYZZ: what it does differs below
# Once a multiplexed (HTTP/2) connection carries its most streams, libcurl 8
# (8.16 and newer checked) opens one new connection and lets the next transfers
# wait for it (PIPEWAIT); 7.88 opens a new connection for each of them.
WAITS_FOR_NEW_MULTIPLEXED_CONNECTION = _LIBCURL >= 0x080000
# MAXFILESIZE_LARGE stops a transfer whose size was not announced (chunked) only since
# libcurl 8.4: before, a transfer with a ``size`` is watched in Python, chunk by chunk
MAX_SIZE_STOPS_TRANSFERS = _LIBCURL >= 0x080400
# Sizes libcurl reports.  pycurl before 7.45.3 (Debian 12's 7.45.2) names only
# the double-valued infos: the same figures, as floats (read them through int()).
INFO_SIZE_DOWNLOAD = getattr(pycurl, "SIZE_DOWNLOAD_T", pycurl.SIZE_DOWNLOAD)
# CURLINFO_RETRY_AFTER (libcurl 7.66), missing from pycurl 7.45 and older (what pip
# installs on Python 3.9; Debian 12's python3-pycurl): None there, and a direct
# attempt keeps its header lines to read Retry-After from (Transfer.direct_headers)
RETRY_AFTER_INFO = getattr(pycurl, "RETRY_AFTER", None)
# libcurl refuses more than 300 KB of response headers by itself since 8.3 (before,
# an endless stream of headers was taken in, and kept from 7.84 on: CVE-2023-38039);
# a smaller max_header_size, or any with an older libcurl, is counted in Python
HEADER_LIMIT = 300 * 1024 if _LIBCURL >= 0x080300 else 0
INFO_CONTENT_LENGTH = getattr(pycurl, "CONTENT_LENGTH_DOWNLOAD_T", pycurl.CONTENT_LENGTH_DOWNLOAD)
_BUFFER_SIZE = 128 * 1024
_THROTTLED_BUFFER_MAX = 16 * 1024  # libcurl's default
_MIN_BUFFER_SIZE = 1024  # libcurl's minimum

_IPRESOLVE = {
    None: pycurl.IPRESOLVE_WHATEVER,
    "whatever": pycurl.IPRESOLVE_WHATEVER,
    "ipv4": pycurl.IPRESOLVE_V4,
    "4": pycurl.IPRESOLVE_V4,
    "ipv6": pycurl.IPRESOLVE_V6,
    "6": pycurl.IPRESOLVE_V6,
}


class Handle:
    """A pooled ``pycurl.Curl`` and what we last configured on it (only _curl writes it).

    (Kept beside the Curl object: attributes set on a pycurl object are slow
    to read back.)
    """

    __slots__ = ("curl", "setopt", "getinfo", "plan", "plan_key", "partial", "header_cb", "max_size",
                 "writer", "wired")

    def __init__(self) -> None:
        self._use(pycurl.Curl())
        self.plan: Any = None        # the option values configure() last applied
        self.plan_key: Any = None    # ... and the options object they came from (see configure)
        self.partial = False         # a Range is set
        self.header_cb = False       # a header callback is set
        self.max_size = 0            # MAXFILESIZE_LARGE (0: none)
        self.writer = DirectWriter()  # its direct attempts' writer, pointed at each one's sink
        self.wired = False           # WRITEFUNCTION is ``writer.write``

    def _use(self, curl: pycurl.Curl) -> None:
        # its methods, fetched once: pycurl's attribute look-up costs more than the call
        self.curl, self.setopt, self.getinfo = curl, curl.setopt, curl.getinfo

    def forget(self) -> None:
        """The next configure() starts from a reset (the last one may be half done)."""
        self.plan = self.plan_key = None

    def renew(self) -> pycurl.Curl:
        """A new curl handle in place of this one (which libcurl will not reconfigure)."""
        self.curl.close()
        self._use(pycurl.Curl())
        self.plan = self.plan_key = None
        self.blank()
        return self.curl

    def blank(self) -> None:
        """Its curl holds libcurl's defaults (reset or new): no Range, header callback,
        size cap or writer of ours on it, and the writer points at no file."""
        self.partial = self.header_cb = self.wired = False
        self.writer.sink = None
        self.max_size = 0


# -- one setter per option ----------------------------------------------------
# Each takes (setopt, opts, scheme, filetime) and sets what its options mean.

def _set_user_agent(setopt, opts, scheme, filetime) -> None:
    if opts.user_agent:
        setopt(pycurl.USERAGENT, opts.user_agent)


def _set_headers(setopt, opts, scheme, filetime) -> None:
    if opts.http_headers:
        # checked again as they are now: a list changed in place since it was set
        # (it is read at each call) must not carry a line break in after all
        from .grabber import _apply

        _apply({}, {"http_headers": opts.http_headers})
    headers = []
    for k, v in opts.http_headers or ():
        if type(v) is str and "\n" in v:
            # classic's empty-header idiom (checked: grabber._EMPTY_HEADER_IDIOM): the
            # header sent empty ("name;" is libcurl's form), then the line after the break
            headers += [f"{k};", v[v.index("\n") + 1:]]
        else:
            headers.append(f"{k}: {v}")
    if opts.no_cache:
        # classic's exact bytes, plus the HTTP/1.1 form that caches heed today
        headers += ["Pragma:no-cache", "Cache-Control: no-cache"]
    if headers:
        setopt(pycurl.HTTPHEADER, headers)


def _set_timeouts(setopt, opts, scheme, filetime) -> None:
    # `timeout` bounds the connect; a transfer with no progress for that long
    # is ended by the engine's stall check.  `minrate` is libcurl's low-speed
    # limit, averaged over `timeout` seconds.
    timeout = Timeout.of(opts.timeout)
    if timeout.connect:
        setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout.connect * 1000)))
    if opts.minrate:
        setopt(pycurl.LOW_SPEED_TIME, timeout.low_speed)
        setopt(pycurl.LOW_SPEED_LIMIT, max(1, int(opts.minrate)))


def _set_throttle(setopt, opts, scheme, filetime) -> None:
    rate = throttle_rate(opts)
    if rate:
        setopt(pycurl.MAX_RECV_SPEED_LARGE, rate)
        # libcurl 7.88 checks the rate only after up to 100 reads of a buffer
        # each: with 128 KB buffers a fast link gets 30 times the rate.  A
        # hundredth of the rate lets at most a second's worth through at once.
        _set_buffer_size(setopt, min(_THROTTLED_BUFFER_MAX, max(_MIN_BUFFER_SIZE, rate // 100)))


class _BufferRefused(Exception):
    """libcurl 7.88 refuses a buffer size (error 43) while a handle keeps its last
    transfer's buffer: after some errors, or a stream that ended on an HTTP/2
    connection that carries others.  Such a handle is replaced (``Handle.renew``)."""


def _set_buffer_size(setopt, size: int) -> None:
    try:
        setopt(pycurl.BUFFERSIZE, size)
    except pycurl.error as e:
        raise _BufferRefused() from e


def _set_keepalive(setopt, opts, scheme, filetime) -> None:
    if not opts.keepalive or opts.close_connection:
        setopt(pycurl.FORBID_REUSE, 1)


def _set_ip_resolve(setopt, opts, scheme, filetime) -> None:
    ipr = opts.ip_resolve
    if ipr:
        setopt(pycurl.IPRESOLVE, _IPRESOLVE.get(str(ipr).lower(), pycurl.IPRESOLVE_WHATEVER))


def _set_tls(setopt, opts, scheme, filetime) -> None:
    """Certificate checks and client certificates, also for clear-text URLs: a
    redirect from http may lead to https, and a proxy may be reached over TLS."""
    if scheme == "file":
        return
    setopt(pycurl.SSL_VERIFYPEER, 1 if opts.ssl_verify_peer else 0)
    setopt(pycurl.SSL_VERIFYHOST, 2 if opts.ssl_verify_host else 0)
    if opts.ssl_ca_cert:
        setopt(pycurl.CAINFO, opts.ssl_ca_cert)
    if opts.ssl_cert:
        setopt(pycurl.SSLCERT, opts.ssl_cert)
        if opts.ssl_cert_type:
            setopt(pycurl.SSLCERTTYPE, opts.ssl_cert_type)
    if opts.ssl_key:
        setopt(pycurl.SSLKEY, opts.ssl_key)
        if opts.ssl_key_type:
            setopt(pycurl.SSLKEYTYPE, opts.ssl_key_type)
    if opts.ssl_key_pass:
        setopt(pycurl.KEYPASSWD, opts.ssl_key_pass)


def _set_ftp(setopt, opts, scheme, filetime) -> None:
    if scheme in ("ftp", "ftps") and opts.ftp_disable_epsv:
        setopt(pycurl.FTP_USE_EPSV, 0)


def _set_proxy(setopt, opts, scheme, filetime) -> None:
    """Proxies by scheme; ``'_none_'`` turns proxying off, even from the environment."""
    proxies = opts.proxies
    if proxies is None:
        return  # libcurl honours http_proxy / https_proxy / no_proxy itself
    proxy = proxies.get(scheme) or proxies.get("all")
    if proxy is None or proxy == "_none_":
        setopt(pycurl.PROXY, "")
        setopt(pycurl.NOPROXY, "*")
    else:
        setopt(pycurl.PROXY, proxy)


def _set_credentials(setopt, opts, scheme, filetime) -> None:
    if opts.username is not None:
        setopt(pycurl.USERNAME, str(opts.username))
        setopt(pycurl.PASSWORD, str(opts.password or ""))


def _set_post(setopt, opts, scheme, filetime) -> None:
    data = opts.data
    if data is None:
        return
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif isinstance(data, dict):
        data = _urlparse.urlencode(data).encode("ascii")
    setopt(pycurl.POSTFIELDSIZE_LARGE, len(data))
    setopt(pycurl.POST, 1)
    setopt(pycurl.POSTFIELDS, bytes(data))


def _set_redirects(setopt, opts, scheme, filetime) -> None:
    """Where redirects may lead: never to file://, and from https (ftps) never down to
    clear text unless ``allow_insecure_redirect`` (a refused one is curl error 1, errno 14)."""
    if scheme in ("https", "ftps") and not opts.allow_insecure_redirect:
        setopt(pycurl.REDIR_PROTOCOLS, _SECURE_REDIR_PROTOCOLS)
    else:
        setopt(pycurl.REDIR_PROTOCOLS, _REDIR_PROTOCOLS)


# option names -> the setter that turns them into curl settings
_SETTERS: tuple[tuple[tuple[str, ...], Callable[..., None]], ...] = (
    (("user_agent",), _set_user_agent),
    (("http_headers", "no_cache"), _set_headers),
    (("timeout", "minrate"), _set_timeouts),
    (("throttle", "bandwidth"), _set_throttle),
    (("keepalive", "close_connection"), _set_keepalive),
    (("ip_resolve",), _set_ip_resolve),
    (("ssl_verify_peer", "ssl_verify_host", "ssl_ca_cert", "ssl_cert", "ssl_cert_type",
      "ssl_key", "ssl_key_type", "ssl_key_pass", "proxies"), _set_tls),
    (("ftp_disable_epsv",), _set_ftp),
    (("proxies",), _set_proxy),
    (("username", "password"), _set_credentials),
    (("data",), _set_post),
    (("allow_insecure_redirect",), _set_redirects),
)
# Every option configure() reads, derived from the table so it cannot drift.
# A pooled handle whose last request had the same values (and scheme) keeps
# its settings; only the URL and the byte range change.  That saves a reset
# and ~20 setopt calls per file.
_PLAN_OPTIONS = tuple(dict.fromkeys(name for names, _ in _SETTERS for name in names))
_plan_values = operator.attrgetter(*_PLAN_OPTIONS)
# the values of http_headers, proxies and data (which may be changed in place between
# calls, so their contents are compared) when none is set
_UNSET = (None, None, None)


def configure(handle: Handle, opts: Any, url: str, *, offset: int = 0,
              byte_range: tuple[int, int | None] | None = None,
              filetime: bool = False) -> None:
    """Set up ``handle`` to fetch ``url`` with every option of ``opts``.

    ``offset`` resumes after that many bytes (reget, or resuming a broken
    transfer); ``byte_range`` is an HTTP byte range ``(start, end_exclusive)``;
    ``filetime`` asks for the remote file's time (reget='check_timestamp').
    Then ``wire_direct`` or ``wire_observed`` sets the callbacks.
    """
    scheme, colon, _ = url.partition(":")  # (as url[:url.find(":")], cheaper than find)
    scheme = (scheme if colon else url[:-1]).lower()
    # the same options object as last time, unchanged (a batch's calls share one):
    # the settings stand without reading every option again
    headers, proxies, data = opts.http_headers, opts.proxies, opts.data
    if headers is None and proxies is None and data is None:
        mutable = _UNSET
    else:  # (their contents are compared: they may change in place)
        mutable = (_snapshot(headers), _snapshot(proxies), _snapshot(data))
    key = (opts, _optcount.count, scheme, filetime, mutable)
    if handle.plan_key != key:
        plan = (scheme, filetime, _plan_values(opts), mutable)
        if handle.plan != plan:
            curl = handle.curl
            curl.reset()
            try:
                _configure_static(curl.setopt, opts, scheme, filetime)
            except _BufferRefused:
                curl = handle.renew()
                _configure_static(curl.setopt, opts, scheme, filetime)
            handle.plan = plan
            handle.blank()
        handle.plan_key = key
    setopt = handle.setopt
    setopt(pycurl.URL, url)
    # per request, as the URL: yum gives every package's size, and the other
    # settings stand for calls that differ only in it
    size = opts.size
    size = int(size) if size else 0
    if size != handle.max_size:
        setopt(pycurl.MAXFILESIZE_LARGE, size)
        handle.max_size = size
    if byte_range is not None:
        start, end = byte_range
        setopt(pycurl.RANGE, f"{start}-{'' if end is None else end - 1}")
        handle.partial = True
    elif offset:
        # a Range rather than RESUME_FROM: libcurl then hands us a 200 (Range
        # ignored) instead of failing, and the request starts over from zero
        setopt(pycurl.RANGE, f"{offset}-")
        handle.partial = True
    elif handle.partial:
        setopt(pycurl.RANGE, None)
        handle.partial = False


def wire_direct(handle: Handle, sink: FileTarget, header: Callable[[bytes], Any] | None = None,
                write: Callable[[bytes], Any] | None = None) -> None:
    """libcurl writes the body straight into ``sink``'s file through the handle's
    DirectWriter (set once, then only pointed at each attempt's sink), or through
    ``write``, a wrapper of that writer (a split download's probe); ``header`` gets
    each header line where the attempt needs them at all (Transfer.direct_headers
    says when)."""
    handle.writer.sink = sink
    if write is None:
        if not handle.wired:
            handle.setopt(pycurl.WRITEFUNCTION, handle.writer.write)
            handle.wired = True
    else:
        handle.setopt(pycurl.WRITEFUNCTION, write)
        handle.wired = False
    if header is not None:
        handle.setopt(pycurl.HEADERFUNCTION, header)
        handle.header_cb = True
    elif handle.header_cb:
        handle.curl.unsetopt(pycurl.HEADERFUNCTION)
        handle.header_cb = False


def wire_observed(handle: Handle, on_write: Callable[[bytes], Any],
                  on_header: Callable[[bytes], Any]) -> None:
    """Each chunk and header line goes through Python."""
    handle.setopt(pycurl.WRITEFUNCTION, on_write)
    handle.setopt(pycurl.HEADERFUNCTION, on_header)
    handle.wired = False
    handle.header_cb = True


def _snapshot(value: Any) -> Any:
    return repr(value) if isinstance(value, (list, dict, bytearray)) else None


def _configure_static(setopt, opts: Any, scheme: str, filetime: bool) -> None:
    """The settings that depend on the options only, not on the URL's path or range."""
    setopt(pycurl.NOSIGNAL, 1)
    setopt(pycurl.PROTOCOLS, _PROTOCOLS)
    setopt(pycurl.FOLLOWLOCATION, 1)
    setopt(pycurl.MAXREDIRS, _MAX_REDIRS)
    _set_buffer_size(setopt, _BUFFER_SIZE)
    if filetime or scheme in ("http", "https"):
        setopt(pycurl.OPT_FILETIME, 1)
    if scheme == "https":
        # wait to learn (ALPN) whether a connection multiplexes (HTTP/2) before
        # opening more; over plain http it would only hold back a second
        # connection until the first response arrived
        setopt(pycurl.PIPEWAIT, 1)
    for _names, setter in _SETTERS:
        setter(setopt, opts, scheme, filetime)


def throttle_rate(opts: Any) -> int:
    """Bytes per second to cap a transfer at, from ``throttle``/``bandwidth`` (0: no cap)."""
    throttle = opts.throttle
    if not throttle:
        return 0
    if throttle <= 1.0:
        if not opts.bandwidth:
            return 0
        return max(1, int(throttle * opts.bandwidth))
    return int(throttle)


_STATUS_LINE = _lazy.Pattern(rb"^HTTP/\S+\s+(\d{3})\s*(.*?)\s*$")


def parse_status_line(line: bytes) -> tuple[int, str] | None:
    """``(status, reason)`` when ``line`` is an HTTP status line, else None."""
    m = _STATUS_LINE.match(line)
    if not m:
        return None
    return int(m.group(1)), m.group(2).decode("latin-1")
