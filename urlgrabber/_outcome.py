"""How an attempt ended: one table from curl codes and HTTP statuses to a ``Cause``.

``Transfer.outcome`` turns what libcurl reported into an ``AttemptResult``;
retry, failover, mirror health and the caller's errno all read its cause,
never the raw numbers (httpx's ``map_httpcore_exceptions`` is the model).
"""

from __future__ import annotations

from . import _libcurl
from ._named import Named
from .errors import URLGrabError, redact, scrub

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


class Cause(Named):
    """Why an attempt failed, in the terms the policies need."""

    NETWORK_CUT = "network cut"      # the body broke off (short, or a send failed): resume it
    RESET = "reset"                  # the server dropped the connection: resume, and go easier on it
    STALL = "stall"                  # no progress for `timeout` (or no connection in time)
    UNREACHABLE = "unreachable"      # refused, unresolvable, reset before any byte
    TLS = "tls"                      # handshake or certificate failure
    BUSY = "busy"                    # 503/429: the server asks us to come back later
    SERVER_ERROR = "server error"    # another 5xx, or a protocol error
    MISSING = "missing"              # another 4xx: the file, not the server
    RANGE = "range"                  # 416, or a resume the server cannot honour
    TOO_BIG = "too big"              # more than `size` or urlread's `limit`
    LOCAL = "local"                  # our side: disk full, unwritable destination
    REJECTED = "rejected"            # checkfunc refused the body
    INTERRUPTED = "interrupted"      # Ctrl-C with an interrupt_callback that returned
    BAD_REQUEST = "bad request"      # a value libcurl or we refused (errno 1)
    OTHER = "other"


class Health(Named):
    """What a failure says about the mirror that served it."""

    NONE = 0         # not the mirror's doing (a missing file, our disk, checkfunc)
    FAILED = 1       # a failure: counts toward skipping the mirror
    OVERLOADED = 2   # ... and it should get fewer connections
    RESTING = 3      # ... and it should rest a while before the next attempt


HEALTH = {
    Cause.NETWORK_CUT: Health.FAILED,
    Cause.RESET: Health.OVERLOADED,
    Cause.STALL: Health.RESTING,
    Cause.UNREACHABLE: Health.OVERLOADED,
    Cause.TLS: Health.FAILED,
    Cause.BUSY: Health.RESTING,
    Cause.SERVER_ERROR: Health.FAILED,
    Cause.MISSING: Health.NONE,
    Cause.RANGE: Health.NONE,
    Cause.TOO_BIG: Health.FAILED,
    Cause.LOCAL: Health.NONE,
    Cause.REJECTED: Health.NONE,
    Cause.INTERRUPTED: Health.NONE,
    Cause.BAD_REQUEST: Health.NONE,
    Cause.OTHER: Health.FAILED,
}

# curl error number -> (cause, errno, message to use instead of libcurl's)
_CURL: dict[int, tuple[Cause, int, str | None]] = {
    1: (Cause.BAD_REQUEST, 14, None),          # unsupported protocol (a redirect to file://)
    3: (Cause.BAD_REQUEST, 1, None),           # malformed URL
    5: (Cause.UNREACHABLE, 14, None),          # proxy not resolved
    6: (Cause.UNREACHABLE, 14, None),          # host not resolved
    7: (Cause.UNREACHABLE, 14, None),          # refused
    18: (Cause.NETWORK_CUT, 14, None),         # partial file
    23: (Cause.LOCAL, 16, None),               # failure writing output: disk full, file too large
    28: (Cause.STALL, 12, "Timeout"),          # connect timeout, or no progress within `timeout`
    33: (Cause.RANGE, 9, None),                # range error
    35: (Cause.UNREACHABLE, 14, None),         # TLS handshake failed: nobody serving TLS there
    36: (Cause.RANGE, 9, None),                # bad download resume
    42: (Cause.INTERRUPTED, 15, None),         # aborted by callback
    47: (Cause.SERVER_ERROR, 14, None),        # too many redirects
    51: (Cause.TLS, 14, None),                 # peer certificate (older libcurl)
    52: (Cause.RESET, 14, None),               # got nothing
    55: (Cause.NETWORK_CUT, 14, None),         # send error
    56: (Cause.RESET, 14, None),               # receive error (connection reset)
    58: (Cause.TLS, 14, None),                 # local certificate
    60: (Cause.TLS, 14, None),                 # peer certificate cannot be verified
    63: (Cause.TOO_BIG, 14, "Maximum file size exceeded"),
    67: (Cause.MISSING, 14, None),             # login denied
    78: (Cause.MISSING, 14, None),             # remote file not found (FTP, file://)
}
_CURL_DEFAULT = (Cause.SERVER_ERROR, 14, None)
# a connection that broke before any byte arrived said nothing about the body
_NO_BYTES = {Cause.NETWORK_CUT: Cause.UNREACHABLE, Cause.RESET: Cause.UNREACHABLE}

# errno of a URLGrabError that did not come from curl or HTTP -> its cause
_ERRNO = {1: Cause.BAD_REQUEST, 2: Cause.MISSING, 3: Cause.MISSING, 8: Cause.TOO_BIG,
          9: Cause.RANGE, 12: Cause.STALL, 15: Cause.INTERRUPTED, 16: Cause.LOCAL}


class AttemptResult:
    """How one attempt ended: ``error`` (None: it succeeded), its ``cause``, whether
    it is ``final`` (no retry on this URL), and the server's ``retry_after`` seconds."""

    __slots__ = ("error", "cause", "final", "retry_after", "ok")

    def __init__(self, error: URLGrabError | None, cause: Cause | None = None, *,
                 final: bool = False, retry_after: float | None = None) -> None:
        self.error = error
        self.cause = cause
        self.final = final
        self.retry_after = retry_after
        self.ok = error is None  # (a field, not a property: read a few times per attempt)

    @property
    def health(self) -> Health:
        return Health.NONE if self.cause is None else HEALTH[self.cause]

    def __repr__(self) -> str:
        return f"<AttemptResult {self.cause} final={self.final} {self.error!r}>"


SUCCESS = AttemptResult(None)


def from_curl(errnum: int, message: str, url: str, received: int = 0) -> AttemptResult:
    """A libcurl failure; the error's ``code`` is the curl error number."""
    cause, errno, text = _CURL.get(errnum, _CURL_DEFAULT)
    if not received:
        cause = _NO_BYTES.get(cause, cause)
    safe = redact(url)
    text = scrub(text or message or f"curl error {errnum}", url)
    err = URLGrabError(errno, f"curl#{errnum} - {text}: {safe}", url=safe, code=errnum)
    err.exception = _libcurl.pycurl.error(errnum, text)
    return AttemptResult(err, cause)


def from_http(status: int, reason: str, url: str, retry_after: float | None = None) -> AttemptResult:
    """An HTTP error status; the error's ``code`` is the status."""
    if status == 416:
        cause, errno = Cause.RANGE, 9
    elif status in (429, 503):
        cause, errno = Cause.BUSY, 14
    elif status >= 500:
        cause, errno = Cause.SERVER_ERROR, 14
    else:
        cause, errno = Cause.MISSING, 14
    safe = redact(url)
    err = URLGrabError(errno, f"HTTP Error {status} - {reason or 'error'}: {safe}", url=safe, code=status)
    return AttemptResult(err, cause, retry_after=retry_after)


def from_error(err: URLGrabError, *, final: bool = False) -> AttemptResult:
    """An error raised by our own checks or the caller's callbacks."""
    errno = getattr(err, "errno", None)
    if isinstance(errno, int) and errno < 0:
        cause = Cause.REJECTED
    else:
        cause = _ERRNO.get(errno, Cause.OTHER)
    return AttemptResult(err, cause, final=final)


def cause_of(err: Any) -> Cause:
    """The cause of a URLGrabError from any source (a grabber's own method, say)."""
    code = getattr(err, "code", None)
    if isinstance(code, int) and 100 <= code < 600:
        return from_http(code, "", getattr(err, "url", "") or "").cause
    if isinstance(code, int) and code > 0 and code in _CURL:
        return _CURL[code][0]
    return from_error(err).cause
