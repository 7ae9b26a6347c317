"""``BatchResult``: how one queued request ended.

It behaves as the dataclass it was (the same ``__init__``, ``repr``, ``==``, and
``dataclasses.fields``, ``asdict``, ``replace`` and ``is_dataclass`` work on it),
but is written out by hand: ``@dataclasses.dataclass`` imports ``inspect`` and
compiles its methods, ~53 M instructions (~20 ms) at the end of every process's
first batch where pycurl does not import ``dataclasses`` itself (Debian's 7.45).
Only a caller who asks ``dataclasses`` about it pays for that, once.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

_FIELDS = ("url", "filename", "exception", "size", "seconds", "mirror", "attempts")


class _DataclassFields:
    """``BatchResult.__dataclass_fields__``, built on first read from a real dataclass
    with the same fields: what ``dataclasses`` reads to treat a class as one of its own."""

    def __get__(self, obj: Any, cls: type) -> dict:
        import dataclasses

        shadow = dataclasses.make_dataclass("BatchResult", [
            ("url", "str"), ("filename", "str | None"), ("exception", "BaseException | None"),
            ("size", "int"), ("seconds", "float"),
            ("mirror", "str | None", dataclasses.field(default=None)),
            ("attempts", "int", dataclasses.field(default=0))])
        fields = shadow.__dataclass_fields__
        cls.__dataclass_fields__ = fields  # the next read finds the dict itself
        cls.__dataclass_params__ = shadow.__dataclass_params__
        return fields


class BatchResult:
    """How one queued request ended: ``ok`` when ``exception`` is None; ``mirror`` is
    the base URL of the mirror that served the file (None for a plain URL);
    ``attempts`` counts retries and failovers too."""

    url: str
    filename: str | None
    exception: BaseException | None
    size: int
    seconds: float
    mirror: str | None
    attempts: int

    __match_args__ = _FIELDS
    __dataclass_fields__ = _DataclassFields()
    __hash__ = None  # type: ignore[assignment]  # (mutable and compared by value, as a dataclass)

    def __init__(self, url: str, filename: str | None, exception: BaseException | None, size: int,
                 seconds: float, mirror: str | None = None, attempts: int = 0) -> None:
        self.url = url
        self.filename = filename
        self.exception = exception
        self.size = size
        self.seconds = seconds
        self.mirror = mirror
        self.attempts = attempts

    @property
    def ok(self) -> bool:
        return self.exception is None

    def _values(self) -> tuple:
        return (self.url, self.filename, self.exception, self.size, self.seconds, self.mirror, self.attempts)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(_FIELDS, self._values()))
        return f"{type(self).__qualname__}({fields})"
