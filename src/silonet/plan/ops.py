"""Device operations, in the order a driver must apply them."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class EnsureLogicalSwitch:
    """Create the VNI's logical switch, or update its network name."""

    vni: int
    network: str
    phase: ClassVar[int] = 0

    def describe(self) -> str:
        return f"ensure logical switch VNI {self.vni} ({self.network})"


@dataclass(frozen=True, slots=True)
class SetFloodList:
    """Replace the VNI's unknown-dst flood list (head-end replication peers)."""

    vni: int
    flood: AbstractSet[str]
    phase: ClassVar[int] = 1

    def describe(self) -> str:
        peers = ", ".join(sorted(self.flood)) or "none"
        return f"set flood list of VNI {self.vni} to {peers}"


@dataclass(frozen=True, slots=True)
class SetRemoteMac:
    """A MAC learned behind another gateway: unicast it there instead of flooding."""

    vni: int
    mac: str
    vtep_ip: str
    phase: ClassVar[int] = 1

    def describe(self) -> str:
        return f"remote MAC {self.mac} on VNI {self.vni} via {self.vtep_ip}"


@dataclass(frozen=True, slots=True)
class Bind:
    """Map (port, VLAN) to a VNI; replaces any earlier binding of that (port, VLAN)."""

    port: str
    vlan: int
    vni: int
    phase: ClassVar[int] = 2

    def describe(self) -> str:
        return f"bind {self.port} VLAN {self.vlan} -> VNI {self.vni}"


@dataclass(frozen=True, slots=True)
class Unbind:
    port: str
    vlan: int
    phase: ClassVar[int] = 3

    def describe(self) -> str:
        return f"unbind {self.port} VLAN {self.vlan}"


@dataclass(frozen=True, slots=True)
class RemoveRemoteMac:
    vni: int
    mac: str
    phase: ClassVar[int] = 3

    def describe(self) -> str:
        return f"forget remote MAC {self.mac} on VNI {self.vni}"


@dataclass(frozen=True, slots=True)
class RemoveLogicalSwitch:
    """Remove the VNI's logical switch and its flood list (after every unbind)."""

    vni: int
    phase: ClassVar[int] = 4

    def describe(self) -> str:
        return f"remove logical switch VNI {self.vni}"


Operation = EnsureLogicalSwitch | SetFloodList | SetRemoteMac | Bind | Unbind | RemoveRemoteMac | RemoveLogicalSwitch


def op_to_dict(op: Operation) -> dict:
    kind = type(op).__name__
    body: dict = {"op": kind, "description": op.describe()}
    for name in op.__slots__:  # type: ignore[union-attr]
        value = getattr(op, name)
        body[name] = sorted(value) if isinstance(value, AbstractSet) else value
    return body
