"""The configuration one gateway should hold (desired) or holds (actual)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class LogicalSwitch(NamedTuple):
    """A VNI on a gateway with its flood list (tunnel IPs of the other gateways).

    A tuple, so hashing and comparing one is the interpreter's C code: ``diff`` compares
    desired and actual with set operations on dict items, never a Python call per switch."""

    vni: int
    network: str
    flood: AbstractSet[str] = frozenset()  # silonet's own: a shared CompactSet (plan/intern.py)


_new_tuple = tuple.__new__


def new_logical_switch(vni: int, network: str, flood: AbstractSet[str]) -> LogicalSwitch:
    """``LogicalSwitch(vni, network, flood)`` without the generated ``__new__``'s keyword
    handling: the compiler makes millions at fleet scale."""
    return _new_tuple(LogicalSwitch, (vni, network, flood))


_NONE: Mapping[str, str] = {}


class MacTable(Mapping[tuple[int, str], str]):
    """Remote MACs ``{(VNI, MAC): tunnel IP}`` held as one part per VNI (``{MAC: IP}``), each
    part never changed once handed in: a device reader makes a new table per read by copying
    the VNIs, not the MACs; a scoped pass reads the VNIs it looks at (``on``); two reads compare
    part by part, and a part they share is equal at once. With 100,000 remote MACs a read and a
    scoped pass copied and scanned all of them (11 ms a pass, twice), whatever one attach touched.
    Whole-table views (``items``, ``keys``, iteration) are a flat dict made on first use."""

    __slots__ = ("_flat", "_len", "_parts")

    def __init__(self, parts: Mapping[int, Mapping[str, str]]) -> None:
        self._parts = parts  # handed over: neither the caller nor this table changes it again
        self._flat: dict[tuple[int, str], str] | None = None
        self._len: int | None = None

    def on(self, vni: int) -> Mapping[str, str]:
        """``{MAC: IP}`` of one VNI (empty when it has none)."""
        return self._parts.get(vni, _NONE)

    def _all(self) -> dict[tuple[int, str], str]:
        if self._flat is None:
            self._flat = {(vni, mac): ip for vni, part in self._parts.items() for mac, ip in part.items()}
        return self._flat

    def __getitem__(self, key: tuple[int, str]) -> str:
        try:
            return self._parts[key[0]][key[1]]
        except (KeyError, TypeError, IndexError):
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        try:
            return key[1] in self._parts.get(key[0], _NONE)  # type: ignore[index]
        except (TypeError, IndexError):
            return False

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self._all())

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(len(part) for part in self._parts.values())
        return self._len

    def keys(self) -> KeysView[tuple[int, str]]:
        return self._all().keys()

    def items(self) -> ItemsView[tuple[int, str], str]:
        return self._all().items()

    def values(self) -> ValuesView[str]:
        return self._all().values()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MacTable):
            mine, theirs = self._parts, other._parts
            if len(self) != len(other):
                return False
            vnis = {v for v, part in mine.items() if part}
            if vnis != {v for v, part in theirs.items() if part}:
                return False
            return all(mine[v] is theirs[v] or mine[v] == theirs[v] for v in vnis)
        if isinstance(other, Mapping):
            return self._all() == (other if isinstance(other, dict) else dict(other.items()))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a mapping: unhashable, as a dict is

    def __repr__(self) -> str:
        return f"MacTable({self._all()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return MacTable, ({vni: dict(part) for vni, part in self._parts.items()},)


def scoped_macs(macs: Mapping[tuple[int, str], str], vnis: AbstractSet[int]) -> dict[tuple[int, str], str]:
    """The remote MACs of ``vnis``: from a ``MacTable`` at the cost of those VNIs' MACs, from a
    plain mapping by a scan of all of them."""
    if isinstance(macs, MacTable):
        return {(vni, mac): ip for vni in vnis for mac, ip in macs.on(vni).items()}
    return {k: ip for k, ip in macs.items() if k[0] in vnis}


@dataclass(frozen=True, slots=True)
class GatewayState:
    """Logical switches by VNI, bindings {(port, VLAN) -> VNI} and remote MACs
    {(VNI, MAC) -> tunnel IP of the gateway that learned it}."""

    logical_switches: dict[int, LogicalSwitch] = field(default_factory=dict)
    bindings: dict[tuple[str, int], int] = field(default_factory=dict)
    remote_macs: Mapping[tuple[int, str], str] = field(default_factory=dict)  # a device's read: a MacTable

    @property
    def entries(self) -> int:
        """VLAN->VNI mapping entries this state uses on the device."""
        return len(self.bindings)

    def to_dict(self) -> dict:
        return {
            "logical_switches": [
                {"vni": ls.vni, "network": ls.network, "flood": sorted(ls.flood)}
                for ls in sorted(self.logical_switches.values(), key=lambda s: s.vni)
            ],
            "bindings": [
                {"port": port, "vlan": vlan, "vni": vni}
                for (port, vlan), vni in sorted(self.bindings.items())
            ],
            "remote_macs": [
                {"vni": vni, "mac": mac, "vtep_ip": ip} for (vni, mac), ip in sorted(self.remote_macs.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> GatewayState:
        """Inverse of ``to_dict`` (the store keeps the last actual state as JSON)."""
        return cls(
            logical_switches={
                ls["vni"]: LogicalSwitch(ls["vni"], ls["network"], frozenset(ls["flood"]))
                for ls in data.get("logical_switches", [])
            },
            bindings={(b["port"], b["vlan"]): b["vni"] for b in data.get("bindings", [])},
            remote_macs={(m["vni"], m["mac"]): m["vtep_ip"] for m in data.get("remote_macs", [])},
        )


@dataclass(frozen=True, slots=True)
class Changes:
    """Where two states of one gateway may differ: VNIs whose switch, flood list or remote
    MACs may differ, (port, VLAN) keys whose binding may differ, and whether anything else
    (the device's facts) did. A reconcile pass that knows them looks only there."""

    vnis: frozenset[int] = frozenset()
    bindings: frozenset[tuple[str, int]] = frozenset()
    facts: bool = False
