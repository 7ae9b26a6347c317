"""``URLGrabError`` and the password-scrubbing every message goes through."""

from __future__ import annotations

import urllib.parse
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
        super().__init__(errno, strerror)
        self.url = redact(url) if url else url
        self.code = code
        self.exception = exception
        for k, v in extra.items():
            setattr(self, k, v)

    def __reduce__(self):  # keep the data when pickled (e.g. across processes)
        return (_rebuild, (type(self), self.errno, self.strerror, dict(self.__dict__)))


def _rebuild(cls, errno, strerror, state):
    err = cls.__new__(cls)
    IOError.__init__(err, errno, strerror)
    err.__dict__.update(state)
    return err


def redact(url: Any) -> Any:
    """``url`` with any password replaced by ``***``; non-strings pass through."""
    if not isinstance(url, str) or "@" not in url:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
