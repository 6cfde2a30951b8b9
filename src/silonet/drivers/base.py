"""The driver interface every gateway implementation honours.

A driver reads the device's actual state, applies an ordered batch of operations in one
device transaction (or one CLI session), and reports health and faults. It never decides
what should be there: the compiler did, and ``plan.apply_ops`` is the model of what each
operation means.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from silonet.errors import DeviceError, Fenced, InvalidInput
from silonet.model import Gateway, rules
from silonet.plan.ops import Operation
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import Changes, GatewayState


@dataclass(frozen=True)
class Platform:
    """What a device says it is (its version command, read once per session). Syntax that changed
    between releases is chosen by ``version``; ``text`` is the version as the device printed it."""

    model: str = ""
    version: tuple[int, ...] = ()
    text: str = ""

    def at_least(self, *version: int) -> bool:
        return self.version >= version

    def to_dict(self) -> dict[str, str]:
        return {"model": self.model, "version": self.text}


@dataclass(frozen=True)
class ActualState:
    """What a read found: silonet's own state, the facts about everyone else's, what the
    gateway learned locally and the faults it reports."""

    owned: GatewayState
    facts: DeviceFacts = field(default_factory=DeviceFacts)
    local_macs: dict[int, frozenset[str]] = field(default_factory=dict)  # VNI -> MACs learned here
    faults: dict[str, list[str]] = field(default_factory=dict)  # "switch" or "port <name>" -> faults
    version: tuple[int, int] | None = None  # for ``Driver.changes_since`` (None: the driver cannot tell)
    platform: Platform | None = None  # what the device said it is (None: the driver did not ask)
    vtep_ip: str | None = None  # the tunnel source address the device uses (None: the driver cannot tell)

    def foreign(self) -> list[dict]:
        f = self.facts
        return (
            [{"kind": "binding", "port": p, "vlan": v, "logical_switch": ls}
             for (p, v), ls in sorted(f.foreign_bindings.items())]
            + [{"kind": "logical_switch", "vni": vni, "name": name} for vni, name in sorted(f.foreign_vnis.items())]
        )


EPOCH_KEY = "silonet:lease-epoch"  # where a device with a key-value column keeps the writer's epoch
_EPOCH_DIGITS = 18  # below 2**63: what the store's integer column holds


@dataclass(frozen=True)
class Fence:
    """The lease a write is made under (store/leases.py): the gateway's lease epoch this replica
    took, and who it is. A device that already took a write under a HIGHER epoch refuses this
    one (``Fenced``): a successor wrote there, so this replica's lease lapsed while it stalled."""

    epoch: int
    owner: str

    def check(self, gateway: str, device: int | None) -> None:
        """Raise ``Fenced`` when the device's epoch (None: it holds none) is above this one."""
        if device is not None and device > self.epoch:
            raise Fenced(gateway=gateway, epoch=self.epoch, device=device)


def read_epoch(value: object) -> int | None:
    """A device's epoch as read (untrusted): a decimal of at most 18 digits as silonet writes it (no
    sign, no leading zero), else None: no epoch silonet wrote."""
    if (isinstance(value, str) and 0 < len(value) <= _EPOCH_DIGITS and value.isascii() and value.isdigit()
            and (value == "0" or not value.startswith("0"))):
        return int(value)
    return None


@dataclass(frozen=True)
class ApplyResult:
    """``retry``: the device changed under us (OVSDB TRY_AGAIN): read again and re-plan."""

    applied: int
    retry: bool = False


@dataclass(frozen=True)
class Health:
    """``hard``: the last connection attempt failed in a way retrying will not fix (host key
    unknown or wrong, authentication refused, connection refused, a bad setting): the worker
    shows it at once instead of waiting out the first connection's grace. ``queued``: below."""

    connected: bool
    detail: str = ""
    hard: bool = False
    # not connected only because connections are paced (it waits its turn) and nothing failed: the
    # first connection's grace starts when its turn comes (a thousand gateways starting together
    # were a thousand "unreachable" warnings)
    queued: bool = False


class Driver(ABC):
    """One instance per gateway; lives as long as the reconciler's worker for it."""

    name: ClassVar[str]
    notifies: ClassVar[bool] = False  # True: ``on_change`` fires on every device change, so no polling
    # True: the device checks and keeps the lease epoch in the write's own transaction (``apply``'s
    # fence); False: only the replica's clock fences its writes (a platform with no such check; an
    # SSH driver says per dialect)
    fences: bool = False

    def __init__(self, gateway: Gateway, on_change: Callable[[], None]) -> None:
        self.gateway = gateway
        self.on_change = on_change
        # False: the gateway's VTEP address is not known (a gateway probed inline): the device's own is
        # reported, not compared with it, and not used to tell which device this is
        self.vtep_known = True

    @abstractmethod
    async def start(self) -> None:
        """Begin connecting; returns at once. The driver reconnects by itself and calls
        ``on_change`` whenever the device state (or the connection) changed."""

    @abstractmethod
    def health(self) -> Health: ...

    @abstractmethod
    async def read(self) -> ActualState:
        """The device's current state (raises DeviceError when unreachable)."""

    @abstractmethod
    async def apply(self, ops: list[Operation], fence: Fence | None = None) -> ApplyResult:
        """Apply ``ops`` in order, all or nothing where the device allows. With a ``fence``, the
        device itself refuses the batch (``Fenced``) when it took a write under a higher lease
        epoch, and keeps this epoch with the batch where it can (``fences``)."""

    @abstractmethod
    async def close(self) -> None: ...

    def unchanged(self) -> bool:
        """True when the device holds exactly what the last ``read`` returned (only drivers
        that notify can know; the others say False and are read again)."""
        return False

    def changes_since(self, version: tuple[int, int] | None) -> Changes | None:
        """Where the device may differ now from the read of ``version`` (callable from the
        worker's thread); None when the driver cannot tell, and then a pass looks at everything."""
        return None


async def wait_connected(driver: Driver, timeout: float = 10.0) -> None:
    """Until the driver's connection is up; DeviceError with its last word after ``timeout`` s
    (for tools and tests that drive a driver directly: the reconciler waits by itself)."""
    deadline = time.monotonic() + timeout
    while not (health := driver.health()).connected:
        if health.hard:  # retrying will not fix it (a refused address, a host key that does not match)
            raise DeviceError(gateway=driver.gateway.name, reason=f"cannot connect: {health.detail}")
        if time.monotonic() >= deadline:
            raise DeviceError(gateway=driver.gateway.name, reason=f"not connected after {timeout:g} s: {health.detail}")
        await asyncio.sleep(0.02)


_MODULES = {"ssh": "silonet.drivers.ssh.driver"}  # where a driver's module is not silonet.drivers.<name>


def registry(name: str) -> type[Driver]:
    """The driver class for ``management.driver`` (modules load on first use). The names are
    ``model.rules.DRIVERS``, the one list of them."""
    if name not in rules.DRIVERS:
        raise InvalidInput(field="management.driver", rule=f"no driver named {name!r}")
    return importlib.import_module(_MODULES.get(name, f"silonet.drivers.{name}")).DRIVER
