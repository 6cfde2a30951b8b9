"""Flood lists held once and held small, whoever made them: the compiler's desired ones and the
driver's read ones (``drivers/ovsdb/compact``).

A VNI's flood list differs on each of its gateways (every one leaves itself out): the scale
bench's 1,000 gateways, 100 VNIs each flooding to 99 peers over 200 distinct sets of carriers,
hold ~20,000 different ones, a fabric whose VNIs all span different gateways up to 100,000. As
frozensets of 99 IPs they took 4.3 KiB each (86 MiB in the bench); as a ``CompactSet`` (a sorted
tuple and a hash) 0.9 KiB. Desired (kept by the reconciler's
``Standing``) and read (kept by the replica's interpretation) are the same objects.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Set
from typing import Any


class CompactSet(Set):
    """An immutable set of strings as a sorted tuple: equal to, and hashing as, the frozenset of
    the same members (so a state read from a device that builds frozensets compares and diffs the
    same); set operations with it return frozensets. Membership is a bisection."""

    __slots__ = ("__weakref__", "_hash", "_items")
    _items: tuple[str, ...]
    _hash: int

    def __init__(self, items: Iterable[str] = ()) -> None:
        members = set(items)
        self._items = tuple(sorted(members))
        self._hash = hash(frozenset(members))

    @classmethod
    def _of(cls, members: set[str], key: int) -> CompactSet:
        out = cls.__new__(cls)
        out._items, out._hash = tuple(sorted(members)), key
        return out

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> frozenset:  # what Set's operators build
        return frozenset(it)

    def __contains__(self, x: object) -> bool:
        items = self._items
        try:
            i = bisect_left(items, x)  # type: ignore[arg-type]
        except TypeError:  # not a string: no member
            return False
        return i < len(items) and items[i] == x

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, CompactSet):
            return self._hash == other._hash and self._items == other._items
        if isinstance(other, (set, frozenset)):
            return len(other) == len(self._items) and other.issuperset(self._items)
        if isinstance(other, Set):
            return len(other) == len(self._items) and all(x in other for x in self._items)
        return NotImplemented

    def __repr__(self) -> str:
        return f"CompactSet({list(self._items)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return CompactSet, (self._items,)


# Process-wide: one thread or several (each operation a single dict operation under the GIL; two
# threads racing on one key at worst share less). Held weakly: a set lives while someone holds it.
_SETS: weakref.WeakValueDictionary[int, CompactSet] = weakref.WeakValueDictionary()


def shared_set(items: Iterable[str]) -> CompactSet:
    """``CompactSet(items)``, the one already held when an equal one is (by hash; a collision of
    two different sets merely shares nothing)."""
    members = set(items)
    key = hash(frozenset(members))
    held = _SETS.get(key)
    if held is not None and held == members:
        return held
    out = CompactSet._of(members, key)
    if held is None:
        _SETS[key] = out
    return out
