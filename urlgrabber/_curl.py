"""The one place where urlgrabber options become libcurl settings.

``configure()`` turns an options object into a configured ``pycurl.Curl``;
``error_from_curl()`` turns a curl or HTTP failure into a ``URLGrabError``.
The blocking calls and the batch engine both go through here, so a setting
cannot behave differently in the two modes.
"""

from __future__ import annotations

import operator
import re
import urllib.parse
from typing import Any

import pycurl

from .errors import URLGrabError, redact, scrub

# Protocols a request may use, and the smaller set a redirect may lead to:
# a remote server must never be able to make us read a local file.
_PROTOCOLS = (pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS | pycurl.PROTO_FTP
              | pycurl.PROTO_FTPS | pycurl.PROTO_FILE)
_REDIR_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS | pycurl.PROTO_FTP | pycurl.PROTO_FTPS
_MAX_REDIRS = 5
_BUFFER_SIZE = 128 * 1024

_IPRESOLVE = {
    None: pycurl.IPRESOLVE_WHATEVER,
    "whatever": pycurl.IPRESOLVE_WHATEVER,
    "ipv4": pycurl.IPRESOLVE_V4,
    "4": pycurl.IPRESOLVE_V4,
    "ipv6": pycurl.IPRESOLVE_V6,
    "6": pycurl.IPRESOLVE_V6,
}

# curl error numbers that mean "the network broke off mid-transfer": the
# bytes already written are good and a later attempt may resume after them.
NETWORK_CUT = frozenset({18, 52, 55, 56, 28})
# Errors that say the far end is not serving us at all (mirror health).
UNREACHABLE = frozenset({6, 7, 28, 35, 52, 56})


# Every option configure() reads.  A pooled handle whose last request had
# the same values (and scheme) keeps its settings; only the URL and the
# byte range change.  That saves a reset and ~20 setopt calls per file.
_PLAN_OPTIONS = (
    "user_agent", "http_headers", "no_cache", "timeout", "minrate", "throttle", "bandwidth",
    "keepalive", "close_connection", "ip_resolve", "proxies", "username", "password", "data",
    "size", "ftp_disable_epsv", "ssl_verify_peer", "ssl_verify_host", "ssl_ca_cert", "ssl_cert",
    "ssl_cert_type", "ssl_key", "ssl_key_type", "ssl_key_pass",
)
_plan_values = operator.itemgetter(*_PLAN_OPTIONS)


class Handle:
    """A pooled ``pycurl.Curl`` and what we last configured on it.

    (Kept beside the Curl object: attributes set on a pycurl object are slow
    to read back.)
    """

    __slots__ = ("curl", "plan", "partial", "header_cb")

    def __init__(self) -> None:
        self.curl = pycurl.Curl()
        self.plan: Any = None        # the option values configure() last applied
        self.partial = False         # a Range is set
        self.header_cb = False       # a header callback is set


def configure(handle: Handle, opts: Any, url: str, *, offset: int = 0,
              byte_range: tuple[int, int | None] | None = None,
              filetime: bool = False) -> None:
    """Set up ``handle`` to fetch ``url`` with every option of ``opts``.

    ``offset`` resumes after that many bytes (reget, or resuming a broken
    transfer); ``byte_range`` is an HTTP byte range ``(start, end_exclusive)``;
    ``filetime`` asks for the remote file's time (reget='check_timestamp').
    The caller sets the write and header callbacks.
    """
    scheme = url[:url.find(":")].lower()
    d = opts.__dict__
    # lists and dicts may be changed in place between calls: compare their contents
    plan = (scheme, filetime, _plan_values(d),
            _snapshot(d["http_headers"]), _snapshot(d["proxies"]), _snapshot(d["data"]))
    curl = handle.curl
    if handle.plan != plan:
        curl.reset()
        _configure_static(curl.setopt, opts, scheme, filetime)
        handle.plan = plan
        handle.partial = handle.header_cb = False
    setopt = curl.setopt
    setopt(pycurl.URL, url)
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


def _snapshot(value: Any) -> Any:
    return repr(value) if isinstance(value, (list, dict, bytearray)) else None


def _configure_static(setopt, opts: Any, scheme: str, filetime: bool) -> None:
    """The settings that depend on the options only, not on the URL's path or range."""
    setopt(pycurl.NOSIGNAL, 1)
    setopt(pycurl.PROTOCOLS, _PROTOCOLS)
    setopt(pycurl.REDIR_PROTOCOLS, _REDIR_PROTOCOLS)
    setopt(pycurl.FOLLOWLOCATION, 1)
    setopt(pycurl.MAXREDIRS, _MAX_REDIRS)
    setopt(pycurl.BUFFERSIZE, _BUFFER_SIZE)
    if opts.user_agent:
        setopt(pycurl.USERAGENT, opts.user_agent)

    headers = [f"{k}: {v}" for k, v in (opts.http_headers or ())]
    if opts.no_cache:
        # classic's exact bytes, plus the HTTP/1.1 form that caches heed today
        headers += ["Pragma:no-cache", "Cache-Control: no-cache"]
    if headers:
        setopt(pycurl.HTTPHEADER, headers)

    # `timeout` bounds the connect; a transfer with no progress for that long
    # is ended by the engine's stall check.  `minrate` is libcurl's low-speed
    # limit, averaged over `timeout` seconds.
    timeout = opts.timeout
    if timeout:
        setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
    if opts.minrate:
        setopt(pycurl.LOW_SPEED_TIME, max(1, round(timeout or 30)))
        setopt(pycurl.LOW_SPEED_LIMIT, max(1, int(opts.minrate)))
    rate = throttle_rate(opts)
    if rate:
        setopt(pycurl.MAX_RECV_SPEED_LARGE, rate)
    if not opts.keepalive or opts.close_connection:
        setopt(pycurl.FORBID_REUSE, 1)
    ipr = opts.ip_resolve
    if ipr:
        setopt(pycurl.IPRESOLVE, _IPRESOLVE.get(str(ipr).lower(), pycurl.IPRESOLVE_WHATEVER))

    if filetime or scheme in ("http", "https"):
        setopt(pycurl.OPT_FILETIME, 1)
    if scheme == "https":
        # wait to learn (ALPN) whether a connection multiplexes (HTTP/2) before
        # opening more; over plain http it would only hold back a second
        # connection until the first response arrived
        setopt(pycurl.PIPEWAIT, 1)
    if scheme in ("https", "ftps") or opts.proxies:
        _configure_tls(setopt, opts)
    if scheme in ("ftp", "ftps") and opts.ftp_disable_epsv:
        setopt(pycurl.FTP_USE_EPSV, 0)
    _configure_proxy(setopt, opts, scheme)
    if opts.username is not None:
        setopt(pycurl.USERNAME, str(opts.username))
        setopt(pycurl.PASSWORD, str(opts.password or ""))
    if opts.data is not None:
        data = opts.data
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, dict):
            data = urllib.parse.urlencode(data).encode("ascii")
        setopt(pycurl.POSTFIELDSIZE_LARGE, len(data))
        setopt(pycurl.POST, 1)
        setopt(pycurl.POSTFIELDS, bytes(data))
    if opts.size:
        setopt(pycurl.MAXFILESIZE_LARGE, int(opts.size))


def _configure_tls(setopt, opts: Any) -> None:
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


def _configure_proxy(setopt, opts: Any, scheme: str) -> None:
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


_CURL_ERRNO = {
    1: 14,   # unsupported protocol (e.g. a redirect to file://)
    3: 1,    # malformed URL
    23: 16,  # failure writing output: a local write error (disk full, file too large)
    28: 12,  # timeout (connect, or no progress within `timeout`)
    33: 9,   # range error
    36: 9,   # bad download resume
    42: 15,  # aborted by callback
    63: 14,  # maximum file size exceeded
}
_MESSAGES = {
    28: "Timeout",
    63: "Maximum file size exceeded",
}


def error_from_curl(errnum: int, message: str, url: str) -> URLGrabError:
    """A ``URLGrabError`` for a libcurl failure; ``code`` is the curl error number."""
    safe = redact(url)
    text = _MESSAGES.get(errnum, message or f"curl error {errnum}")
    text = scrub(text, url)
    err = URLGrabError(_CURL_ERRNO.get(errnum, 14), f"curl#{errnum} - {text}: {safe}",
                       url=safe, code=errnum)
    err.exception = pycurl.error(errnum, text)
    return err


def error_from_http(status: int, reason: str, url: str) -> URLGrabError:
    """A ``URLGrabError`` for an HTTP error status; ``code`` is the status."""
    safe = redact(url)
    errno = 9 if status == 416 else 14
    return URLGrabError(errno, f"HTTP Error {status} - {reason or 'error'}: {safe}",
                        url=safe, code=status)


_STATUS_LINE = re.compile(rb"^HTTP/\S+\s+(\d{3})\s*(.*?)\s*$")


def parse_status_line(line: bytes) -> tuple[int, str] | None:
    """``(status, reason)`` when ``line`` is an HTTP status line, else None."""
    if not line.startswith(b"HTTP/"):
        return None
    m = _STATUS_LINE.match(line)
    if not m:
        return None
    return int(m.group(1)), m.group(2).decode("latin-1")
