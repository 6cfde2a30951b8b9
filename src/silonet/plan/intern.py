"""Equal flood lists held once, whoever made them: the compiler's desired ones and the driver's
read ones (``drivers/ovsdb/compact``). At 1,000 gateways each carrying 100 VNIs flooding to 99
peers, a gateway's flood lists are 100 frozensets of ~4 KiB; desired (kept by the reconciler's
``Standing``) and read (kept by the replica's interpretation) were two copies of each."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

# Process-wide: one thread or several (each operation a single dict operation under the GIL; two
# threads racing on one key at worst share less). Held weakly: a set lives while someone holds it.
_SETS: weakref.WeakValueDictionary[int, frozenset] = weakref.WeakValueDictionary()


def shared_set(items: Iterable[Any]) -> frozenset:
    """``frozenset(items)``, the one already held when an equal one is (by hash; a collision of two
    different sets merely shares nothing). Built through a set: a frozenset copied from a set is
    sized for its contents (4 KiB for 99 IPs), one grown element by element twice that."""
    out = frozenset(set(items))
    key = hash(out)
    held = _SETS.get(key)
    if held is not None and held == out:
        return held
    if held is None:
        _SETS[key] = out
    return out
