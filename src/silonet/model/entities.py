"""Domain entities: immutable values named in the domain's own words.

Constructors validate their fields, so an entity that exists is well formed; rules that
need other entities (disjoint ports, capacity...) live in ``Inventory``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from silonet.errors import InvalidInput
from silonet.model import rules


class SiloKind(StrEnum):
    VSPHERE = "vsphere"
    KVM = "kvm"
    BAREMETAL = "baremetal"
    PAAS = "paas"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Silo:
    name: str
    kind: SiloKind = SiloKind.OTHER
    description: str = ""

    def __post_init__(self) -> None:
        rules.name(self.name)
        try:
            object.__setattr__(self, "kind", SiloKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in SiloKind)
            raise InvalidInput(field="kind", rule=f"{self.kind!r} is not one of {kinds}") from None
        rules.text(self.description, "description")


@dataclass(frozen=True, slots=True)
class Management:
    """How silonet reaches a gateway. ``credentials`` is a reference, never a secret; ``host_key``
    (ssh) the device's pinned public key line or ``SHA256:`` fingerprint (``drivers/ssh/hostkey.py``)."""

    driver: str
    address: str
    dialect: str | None = None
    credentials: str | None = None
    trust_on_first_use: bool = False
    host_key: str | None = None

    def __post_init__(self) -> None:
        rules.driver(self.driver)
        if not isinstance(self.address, str) or not self.address.strip():
            raise InvalidInput(field="management.address", rule="must not be empty")
        rules.text(self.address, "management.address", 256)
        if self.driver == "ssh":
            rules.ssh_address(self.address)
        if self.dialect is not None:
            rules.name(self.dialect, "management.dialect")
        if self.credentials is not None:
            rules.credentials(self.credentials)
        if self.host_key is not None:
            rules.host_key(self.host_key)
        if self.driver == "ssh" and not self.dialect:
            raise InvalidInput(field="management.dialect",
                               rule="the ssh driver needs a dialect (see `silonet dialects`)")


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    switchback: bool = False

    def __post_init__(self) -> None:
        rules.name(self.name, "ports.name")


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    vtep_ip: str
    management: Management
    capacity: int = 4096
    ports: tuple[Port, ...] = ()
    silo: str | None = None
    mode: str = "enforce"  # rules.MODES: observe and maintenance hold its attachments (plan/status.py)
    # A redundant pair (MLAG, vPC): two gateways of one silo sharing ``vtep_ip``, the anycast VTEP
    # (model/pairs.py); None: a gateway of its own.
    pair: str | None = None

    def __post_init__(self) -> None:
        rules.name(self.name)
        rules.mode(self.mode)
        if self.pair is not None:
            rules.name(self.pair, "pair")
        object.__setattr__(self, "vtep_ip", rules.ipv4(self.vtep_ip))
        rules.capacity(self.capacity)
        if self.silo is not None:
            rules.name(self.silo, "silo")
        seen: set[str] = set()
        for port in self.ports:
            if port.name in seen:
                raise InvalidInput(field="ports", rule=f"port '{port.name}' is listed twice on gateway '{self.name}'")
            seen.add(port.name)

    def port(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)


@dataclass(frozen=True, slots=True, order=True)
class PortRef:
    """A port of a gateway, as interface groups name it."""

    gateway: str
    port: str

    def __str__(self) -> str:
        return f"{self.gateway}:{self.port}"


@dataclass(frozen=True, slots=True)
class InterfaceGroup:
    """Ports across gateways that share one VLAN domain (one 4k VLAN space)."""

    name: str
    members: tuple[PortRef, ...] = ()
    switchback: tuple[PortRef, ...] = ()
    silo: str | None = None
    # Derived once here: the inventory's checks and the compiler ask for these per attachment.
    _gateways: frozenset[str] = field(init=False, repr=False, compare=False)
    _bound: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules.name(self.name)
        if self.silo is not None:
            rules.name(self.silo, "silo")
        if not self.members and not self.switchback:
            raise InvalidInput(field="members", rule="an interface group needs at least one port")
        seen: set[PortRef] = set()
        for fld, refs in (("members", self.members), ("switchback", self.switchback)):
            for ref in refs:
                rules.name(ref.gateway, f"{fld}.gateway")
                rules.name(ref.port, f"{fld}.port")
                if ref in seen:
                    raise InvalidInput(field=fld, rule=f"port {ref} is listed twice in interface group '{self.name}'")
                seen.add(ref)
        sb_gateways = [ref.gateway for ref in self.switchback]
        for gw in sb_gateways:
            if sb_gateways.count(gw) > 1:
                raise InvalidInput(
                    field="switchback",
                    rule=f"at most one switch-back port per gateway; gateway '{gw}' has "
                    f"{sb_gateways.count(gw)} in this group",
                )
        bound: dict[str, list[str]] = {}
        for ref in self.members:
            bound.setdefault(ref.gateway, []).append(ref.port)
        by_gw = {gw: tuple(sorted(ports)) for gw, ports in bound.items()}
        by_gw.update((ref.gateway, (ref.port,)) for ref in self.switchback)
        object.__setattr__(self, "_bound", by_gw)
        object.__setattr__(self, "_gateways", frozenset(by_gw))

    @property
    def ports(self) -> tuple[PortRef, ...]:
        return self.members + self.switchback

    @property
    def gateways(self) -> frozenset[str]:
        return self._gateways

    def switchback_on(self, gateway: str) -> PortRef | None:
        return next((r for r in self.switchback if r.gateway == gateway), None)

    def bound_ports(self, gateway: str) -> tuple[str, ...]:
        """Ports that carry the group's VLAN->VNI entries on ``gateway``.

        With a switch-back port there, only it does; otherwise every member port there.
        """
        return self._bound.get(gateway, ())

    def entries_per_vlan(self, gateway: str) -> int:
        return len(self.bound_ports(gateway))


@dataclass(frozen=True, slots=True)
class VirtualNetwork:
    name: str
    tenant: str
    vni: int

    def __post_init__(self) -> None:
        rules.name(self.name)
        rules.name(self.tenant, "tenant")
        rules.vni(self.vni)


@dataclass(frozen=True, slots=True)
class Attachment:
    """(interface group, VLAN) -> virtual network."""

    group: str
    vlan: int
    network: str
    generation: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        rules.name(self.group, "interface_group")
        rules.vlan(self.vlan)
        rules.name(self.network, "network")

    @property
    def key(self) -> tuple[str, int]:
        return (self.group, self.vlan)
