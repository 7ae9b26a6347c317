"""``URLGrabError`` and the password-scrubbing every message goes through."""

from __future__ import annotations

from ._lazy import urlparse as _urlparse

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


class URLGrabError(IOError):
    """A download failed.  ``errno`` says how, as in classic urlgrabber.

    ==== =====================================================
    1    bad input: malformed URL, unknown option, bad value
    2    local file does not exist (file:// URL)
    3    local path is not a regular file
    8    urlread body larger than ``limit``
    9    requested range not satisfiable
    11   bad ``reget`` mode
    12   timeout (connect, or no progress within ``timeout``)
    14   HTTP error or transfer error (404, 500, refused, ...)
    15   user abort
    16   local write error
    256  no more mirrors to try
    < 0  raised by a ``checkfunc`` (-1 asks for a retry)
    ==== =====================================================

    Besides ``errno`` and ``strerror`` it carries ``url`` (password removed),
    ``code`` (the HTTP status, else the curl error number) and ``exception``
    (the underlying error, if any).  A MirrorGroup's errno 256 also has
    ``errors``: ``(url, message)`` per failed attempt.
    """

    def __init__(self, errno: int, strerror: str = "", *, url: str | None = None,
                 code: int | None = None, exception: BaseException | None = None,
                 **extra: Any) -> None:
        if isinstance(strerror, str) and len(strerror) > _MAX_MESSAGE:
            strerror = _elide(strerror)  # a 10 KB URL in a log line helps nobody; err.url keeps it
        super().__init__(errno, strerror)
        self.url = redact(url) if url else url
        self.code = code
        self.exception = exception
        for k, v in extra.items():
            setattr(self, k, v)

    def __reduce__(self):  # keep the data when pickled (e.g. across processes)
        return (_rebuild, (type(self), self.errno, self.strerror, dict(self.__dict__)))


_MAX_MESSAGE = 2000


def _elide(text: str) -> str:
    """``text`` cut to about ``_MAX_MESSAGE`` characters, its middle replaced by a count."""
    head, tail = text[:1500], text[-400:]
    return f"{head}...[{len(text) - len(head) - len(tail)} characters]...{tail}"


def _rebuild(cls, errno, strerror, state):
    err = cls.__new__(cls)
    IOError.__init__(err, errno, strerror)
    err.__dict__.update(state)
    return err


def redact(url: Any) -> Any:
    """``url`` with any password replaced by ``***``; non-strings pass through.

    A URL the parser rejects, or whose password holds an unencoded '/', '?'
    or '#' (so that the parser sees no password), is redacted by the text
    between ``://`` and its last '@': when that holds a ':' not followed by
    a port number, everything after the ':' is hidden.
    """
    if type(url) is str and "@" not in url:
        return url  # no user info (nearly every URL, once per file of a batch): nothing to hide
    return _split_secret(url)[0]


def scrub(text: str, url: Any) -> str:
    """``text`` (a message from libcurl or the standard library about ``url``)
    without the password of ``url``, nor the piece of it before a delimiter."""
    secret = _split_secret(url)[1]
    if not secret or not isinstance(text, str):
        return text
    text = text.replace(secret, "***")
    for sep in "/?#":
        piece = secret.split(sep, 1)[0]
        if piece != secret and len(piece) > 1:
            text = text.replace(piece, "***")
    return text


def _split_secret(url: Any) -> tuple[Any, str | None]:
    """``(url redacted, the hidden password)``; the password is None when there is none."""
    if not isinstance(url, str) or "@" not in url:
        return url, None
    try:
        parts = _urlparse.urlsplit(url)
        password = parts.password
    except ValueError:
        return _redact_text(url)
    if password is None:
        return _redact_text(url)
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return _urlparse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}")), password


def _redact_text(url: str) -> tuple[str, str | None]:
    """The fallback of ``redact`` for what urlsplit cannot take apart."""
    start = url.find("://")
    end = url.rfind("@")
    if start < 0 or end < start:
        return url, None
    userinfo = url[start + 3:end]
    user, colon, secret = userinfo.partition(":")
    if not colon or not secret:
        return url, None
    port = secret
    for sep in "/?#":
        port = port.split(sep, 1)[0]
    if port.isdigit() and port != secret:
        return url, None  # "host:port/...@...": a port, and an '@' later in the path
    return f"{url[:start + 3]}{user}:***{url[end:]}", secret
