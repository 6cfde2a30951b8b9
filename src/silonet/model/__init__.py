"""Pure domain model: entities, rules and invariants. No I/O here."""

from silonet.model.entities import (
    Attachment,
    Gateway,
    InterfaceGroup,
    Management,
    Port,
    PortRef,
    Silo,
    SiloKind,
    VirtualNetwork,
)
from silonet.model.inventory import Inventory

__all__ = [
    "Attachment",
    "Gateway",
    "InterfaceGroup",
    "Inventory",
    "Management",
    "Port",
    "PortRef",
    "Silo",
    "SiloKind",
    "VirtualNetwork",
]
