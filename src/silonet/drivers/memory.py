"""The ``memory`` driver: a gateway that lives in this process.

It holds what ``plan.apply_ops`` says a device holds after each batch (the model every driver
honours), so it realizes at once. It is for tests of the layers above drivers and for trying
silonet without switches (`management: {driver: memory}`); it is never a stand-in for a real
peer in an end-to-end test. State is kept per process in a ``MemoryFabric`` (one device per
management address, ``memory:<gateway>`` by default), which tests use to play the device's
part: foreign rows, locally learned MACs, faults, a failing write, an unreachable device.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from silonet.drivers.base import ActualState, ApplyResult, Driver, Fence, Health
from silonet.errors import DeviceError
from silonet.model import Gateway
from silonet.plan import apply_ops
from silonet.plan.ops import Bind, Operation
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState


@dataclass
class MemoryDevice:
    """One in-process gateway: silonet's state, everyone else's, and the switches tests flip."""

    owned: GatewayState = field(default_factory=GatewayState)
    foreign_bindings: dict[tuple[str, int], str] = field(default_factory=dict)  # (port, VLAN) -> their switch
    foreign_vnis: dict[int, str] = field(default_factory=dict)  # VNI -> their switch
    local_macs: dict[int, frozenset[str]] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    ports: frozenset[str] | None = None  # None: the gateway's own ports exist, and only those
    unreachable: str | None = None  # why it cannot be reached (None: it can)
    refuse_writes: str | None = None  # a device's refusal of every batch (None: it takes them)
    writes: int = 0  # batches applied: what a test reads to prove nothing was written
    epoch: int | None = None  # the highest lease epoch a write was made under (None: no fenced write yet)
    listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def changed(self) -> None:
        """Tell the drivers holding this device (a test changed it behind silonet's back)."""
        for notify in list(self.listeners):
            notify()


class MemoryFabric:
    """The process's in-memory devices, by management address."""

    def __init__(self) -> None:
        self._devices: dict[str, MemoryDevice] = {}
        self._lock = threading.Lock()

    def device(self, address: str) -> MemoryDevice:
        with self._lock:
            return self._devices.setdefault(address, MemoryDevice())

    def forget(self, address: str | None = None) -> None:
        """Drop one device (or all): the next driver finds an empty one."""
        with self._lock:
            if address is None:
                self._devices.clear()
            else:
                self._devices.pop(address, None)


RECONCILE_CHILD = "silonet-reconcile-"  # the process name of ``silonet serve --workers N``'s children
FABRIC = MemoryFabric()  # the process's devices: what "keeps state per process" means


class MemoryDriver(Driver):
    name = "memory"
    notifies = True  # a change made through the device's ``changed`` wakes the worker
    fences = True  # the epoch is checked and kept with the batch, as on OVSDB

    def __init__(self, gateway: Gateway, on_change: Callable[[], None], fabric: MemoryFabric = FABRIC) -> None:
        super().__init__(gateway, on_change)
        if multiprocessing.current_process().name.startswith(RECONCILE_CHILD):
            raise DeviceError(gateway=gateway.name, reason=(
                "the memory driver keeps its devices in one process, and this is a reconcile worker process "
                "(silonet serve --workers N): serve it with --workers 1"))
        self.device = fabric.device(gateway.management.address)
        self._ports = frozenset(p.name for p in gateway.ports)
        self._unchanged = False

    def _changed(self) -> None:
        self._unchanged = False
        self.on_change()

    async def start(self) -> None:
        self.device.listeners.append(self._changed)
        self.on_change()

    def health(self) -> Health:
        why = self.device.unreachable
        return Health(connected=why is None, detail=why or "")

    def _reachable(self) -> None:
        if self.device.unreachable is not None:
            raise DeviceError(gateway=self.gateway.name, reason=self.device.unreachable)

    async def read(self) -> ActualState:
        self._reachable()
        d = self.device
        facts = DeviceFacts(ports=d.ports if d.ports is not None else self._ports,
                            foreign_bindings=dict(d.foreign_bindings), foreign_vnis=dict(d.foreign_vnis),
                            foreign_names=frozenset(d.foreign_vnis.values()) | frozenset(d.foreign_bindings.values()))
        self._unchanged = True
        return ActualState(d.owned, facts, dict(d.local_macs), {k: list(v) for k, v in d.faults.items()})

    async def apply(self, ops: list[Operation], fence: Fence | None = None) -> ApplyResult:
        if not ops:
            return ApplyResult(0)
        self._reachable()
        d = self.device
        if fence is not None:  # as one OVSDB transaction: check, then keep the epoch with the batch
            fence.check(self.gateway.name, d.epoch)
        if d.refuse_writes is not None:
            raise DeviceError(gateway=self.gateway.name, reason=f"device refused: {d.refuse_writes}")
        for op in ops:  # like an OVSDB insert mutation: never replace a binding someone else made
            if isinstance(op, Bind) and (op.port, op.vlan) in d.foreign_bindings:
                raise DeviceError(gateway=self.gateway.name,
                                  reason=f"port {op.port} VLAN {op.vlan} is bound to "
                                         f"{d.foreign_bindings[(op.port, op.vlan)]!r}, which silonet does not own")
        try:
            d.owned = apply_ops(d.owned, ops)
        except ValueError as err:  # an order the model refuses: a device would refuse it too
            raise DeviceError(gateway=self.gateway.name, reason=f"device refused: {err}") from None
        d.writes += 1
        if fence is not None:
            d.epoch = fence.epoch
        self._unchanged = False  # it holds more than the last read said: read again
        return ApplyResult(len(ops))

    def unchanged(self) -> bool:
        return self._unchanged and self.device.unreachable is None

    async def close(self) -> None:
        if self._changed in self.device.listeners:
            self.device.listeners.remove(self._changed)


def set_state(device: MemoryDevice, **changes: object) -> None:
    """Change a device as its operator would (a test's out-of-band edit), and tell silonet."""
    for name, value in changes.items():
        setattr(device, name, value)
    device.changed()


DRIVER = MemoryDriver
