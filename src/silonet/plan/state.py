"""The configuration one gateway should hold (desired) or holds (actual)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LogicalSwitch:
    """A VNI on a gateway with its flood list (tunnel IPs of the other gateways)."""

    vni: int
    network: str
    flood: frozenset[str] = frozenset()


def _bulk_maker() -> Callable[[int, str, frozenset[str]], LogicalSwitch]:
    """``LogicalSwitch(vni, network, flood)`` for the compiler, which makes millions at fleet
    scale: the frozen dataclass's ``__init__`` assigns each field through ``object.__setattr__``
    by name, which costs about twice as much as setting the slots directly. The same object
    either way; should the class ever validate in ``__post_init__``, the plain constructor is used."""
    if hasattr(LogicalSwitch, "__post_init__"):
        return LogicalSwitch
    new = object.__new__
    set_vni, set_network, set_flood = (LogicalSwitch.__dict__[f].__set__ for f in ("vni", "network", "flood"))

    def make(vni: int, network: str, flood: frozenset[str]) -> LogicalSwitch:
        ls = new(LogicalSwitch)
        set_vni(ls, vni)
        set_network(ls, network)
        set_flood(ls, flood)
        return ls

    return make


new_logical_switch = _bulk_maker()


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
