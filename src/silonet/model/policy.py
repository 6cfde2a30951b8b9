"""What the device layer tells the model about gateways, without the model knowing vendors:
the ``DevicePolicy`` protocol, the policy of no device layer (``AnyDevice``) and what a dialect's
limits see of an attachment about to be carried (``Proposed``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from silonet.model.entities import Gateway


@dataclass(frozen=True)
class Proposed:
    """An attachment about to be carried by one gateway, as a dialect's limits see it."""

    gateway: str
    network: str
    vni: int
    vlan: int
    group: str
    held: Callable[[], Iterator[tuple[str, int, int]]]  # (group, VLAN, VNI) the gateway carries already


class DevicePolicy(Protocol):
    """What the device layer says about a gateway, without the model knowing vendors."""

    def check(self, gateway: Gateway) -> None:
        """Raise InvalidInput when the gateway's management cannot work (unknown dialect...)."""

    def switch_scoped(self, gateway: Gateway) -> str | None:
        """The dialect's name when it maps VLAN->VNI per switch (not per port), else None."""

    def default_capacity(self, driver: str, dialect: str | None) -> int:
        """Capacity of a gateway whose request leaves it out."""

    def refuse(self, gateway: Gateway, proposed: Proposed) -> tuple[str, str] | None:
        """(dialect, rule) when the gateway's platform cannot hold ``proposed``, else None."""


class AnyDevice:
    """The policy when no device layer is consulted: every gateway maps per port."""

    def check(self, gateway: Gateway) -> None:
        return None

    def switch_scoped(self, gateway: Gateway) -> str | None:
        return None

    def default_capacity(self, driver: str, dialect: str | None) -> int:
        return 4096

    def refuse(self, gateway: Gateway, proposed: Proposed) -> tuple[str, str] | None:
        return None
