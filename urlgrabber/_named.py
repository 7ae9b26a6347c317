"""Named constants: what the engine uses of ``enum`` (members compared by identity,
with a name, a value and a readable repr), without its import (~8 M instructions,
a fifth of ``import urlgrabber``'s own start-up cost)."""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


class Named:
    """Base of a set of constants: each public class attribute of a subclass (not a
    function or other descriptor) becomes a member, an instance of that subclass
    with its ``name`` and ``value``.

    ``class Colour(Named): RED = "red"`` makes ``Colour.RED`` a ``Colour`` whose
    ``name`` is ``"RED"`` and ``value`` ``"red"``.  Members compare by identity,
    and stay themselves through ``copy`` and ``pickle``, as Enum members do.
    """

    __slots__ = ("name", "value")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and not hasattr(value, "__get__"):
                member = object.__new__(cls)
                member.name, member.value = name, value
                setattr(cls, name, member)

    def __new__(cls, *args: Any) -> Named:
        raise TypeError(f"{cls.__name__}'s members are fixed: {cls.__name__}.NAME")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __reduce__(self) -> tuple:
        return getattr, (type(self), self.name)
