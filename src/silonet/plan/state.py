"""The configuration one gateway should hold (desired) or holds (actual)."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import NamedTuple


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


@dataclass(frozen=True, slots=True)
class GatewayState:
    """Logical switches by VNI, bindings {(port, VLAN) -> VNI} and remote MACs
    {(VNI, MAC) -> tunnel IP of the gateway that learned it}."""

    logical_switches: dict[int, LogicalSwitch] = field(default_factory=dict)
    bindings: dict[tuple[str, int], int] = field(default_factory=dict)
    remote_macs: dict[tuple[int, str], str] = field(default_factory=dict)

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
