"""A mapping whose values start as cheap placeholders and are built on first lookup."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar, TypeVar, cast

K = TypeVar("K")
V = TypeVar("V")


class LazyMapping(MutableMapping[K, V]):
    """A dict of built values (instances of ``built``) and placeholders, in insertion order.

    ``m[key]`` (and so ``get``, ``values()``, ``items()``) turns a placeholder into a value with
    :meth:`build`, in place. ``in``, ``len`` and iterating the keys build nothing.
    """

    __slots__ = ("_slots",)
    #: The type of built values; anything else stored is a placeholder.
    built: ClassVar[type]

    def __init__(self) -> None:
        self._slots: dict[K, Any] = {}

    def build(self, key: K, placeholder: Any) -> V:
        """The value for ``key`` from its placeholder."""
        raise NotImplementedError

    def is_built(self, key: K) -> bool:
        """Whether ``key`` holds a built value (False for a placeholder or a missing key)."""
        return isinstance(self._slots.get(key), self.built)

    def __getitem__(self, key: K) -> V:
        found = self._slots[key]
        if isinstance(found, self.built):
            return cast(V, found)
        made = self._slots[key] = self.build(key, found)
        return made

    def __setitem__(self, key: K, value: V) -> None:
        self._slots[key] = value

    def __delitem__(self, key: K) -> None:
        del self._slots[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots
