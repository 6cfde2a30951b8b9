"""``OvsdbDriver``: the driver contract (``drivers/base``) over one ``Link`` (a hub holds it).

Reads interpret the replica (``replica``) incrementally; a batch of operations is one IDL
transaction (``handlers``), sent by the link and read back in the turn its answer arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import ovs.db.idl

from silonet import limits
from silonet.drivers import ovsjson
from silonet.drivers.base import ActualState, ApplyResult, Driver, Fence, Health
from silonet.drivers.ovsdb.connection import Commit, Link, Txn
from silonet.drivers.ovsdb.handlers import Write, device_epoch, fence
from silonet.drivers.ovsdb.held import Transaction
from silonet.drivers.ovsdb.library import fast_json, quiet_vlog, use_poll
from silonet.drivers.ovsdb.replica import READ, MemoIdl, port_rows
from silonet.drivers.untrusted import echo, ipv4, shown
from silonet.drivers.vtep_schema import Interpretation
from silonet.errors import DeviceError
from silonet.plan.ops import Operation
from silonet.plan.state import Changes

LARGE_WRITE = 50  # operations: a write this big waits for a slot (an attach's few never do)
# Operations per transaction. A job holds the link's IDL while it builds a transaction, and the
# hub answers none of the device's echoes meanwhile: a write of 100,000 remote MACs took 12 s to
# build and send, the device dropped the connection after its 5 s inactivity probe, and the pass
# retried the same write forever. A larger write goes as several transactions in phase order,
# each one committed and read back (in the hub's turn) before the next is built.
TXN_OPS = 10_000
LARGE_WRITES_AT_ONCE = 16
# An OVSDB server's refusals that another writer's row, committed between the replica the write
# was built on and the write, can cause (RFC 7047 5.2.1's errors; a switch's MAC learning does)
RACED = ("referential integrity violation", "constraint violation")
log = logging.getLogger("silonet.ovsdb")
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def large_write_slot() -> asyncio.Semaphore:
    """At most LARGE_WRITES_AT_ONCE large writes in flight per event loop. A thousand gateways'
    first writes at once made the devices' answers (hundreds of rows each) queue in the hubs
    ahead of the devices' echoes, which then came after their 5 s inactivity probe: the devices
    dropped the connections, and each dropped gateway resynced whole. The work is the same with
    fewer at once; the interpreter was the bottleneck either way."""
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(LARGE_WRITES_AT_ONCE)
    return slot


@contextlib.asynccontextmanager
async def large_write() -> AsyncIterator[None]:
    """A large write's slot (``large_write_slot``), and the interpreter's bulk switch interval while
    it is in flight (``limits.bulk``)."""
    async with large_write_slot():
        with limits.bulk():
            yield


class OvsdbDriver(Driver):
    """hardware_vtep over OVSDB (ovs-vtep, and switches that export the schema)."""

    name = "ovsdb"
    notifies = True  # the IDL's monitor pushes every change
    fences = True  # the lease epoch is checked and kept in the Physical_Switch's other_config (handlers.fence)

    def __init__(self, gateway: Any, on_change: Callable[[], None]) -> None:
        super().__init__(gateway, on_change)
        quiet_vlog()
        use_poll()  # descriptors above 1,023 (a manager of hundreds of gateways)
        fast_json()
        ovsjson.enable()  # idempotent: the OVS library's C JSON parser, loaded when a driver first needs it
        self._link = Link(gateway.management.address, on_change)
        self._config_error: str | None = None
        self._cached: tuple[int, ActualState] | None = None  # (IDL change_seqno, what it meant)
        self._reading: tuple[int, Interpretation] | None = None  # (IDL epoch, the rows as they stand)

    async def start(self) -> None:
        if self.gateway.management.address.startswith("ssl:"):
            try:
                self._link.use_ssl(self.gateway)
            except DeviceError as err:
                self._config_error = err.fields["reason"]
                return
        self._link.start()

    def health(self) -> Health:
        t = self._link
        if self._config_error:
            return Health(connected=False, detail=self._config_error, hard=True)
        up = t.connected
        return Health(connected=up, detail="" if up else t.why_down(), hard=not up and t.hard,
                      queued=not up and t.queued())

    async def _call(self, fn: Callable[[ovs.db.idl.Idl], Any]) -> Any:
        if not self._link.connected:
            raise DeviceError(gateway=self.gateway.name, reason=self.health().detail or "not connected")
        try:
            return await asyncio.wrap_future(self._link.submit(fn))
        except ConnectionError as err:
            raise DeviceError(gateway=self.gateway.name, reason=str(err)) from None

    def unchanged(self) -> bool:
        """The replica did not move since the last read, and nothing the device sent waits unread
        (a calm hub reads it within ``hub.QUIET_S``: a pass must not plan on, or call realized, a
        device whose change or disconnection is still in the socket)."""
        link, cached = self._link, self._cached
        idl = link.idl
        return (link.connected and idl is not None and cached is not None and cached[0] == idl.change_seqno
                and not link.unread())

    async def read(self) -> ActualState:
        cached = self._cached
        if cached is not None and self.unchanged():
            return cached[1]  # the replica did not move since: no job for the link
        return await self._call(self._read)

    async def apply(self, ops: list[Operation], fence: Fence | None = None) -> ApplyResult:
        """``ops`` in transactions of at most ``TXN_OPS``; a part the device makes the pass plan
        again for (``retry``) ends the write: what went before stands, the next pass sees it."""
        applied = 0
        for start in range(0, len(ops), TXN_OPS):
            part = ops[start:start + TXN_OPS]
            async with large_write() if len(part) >= LARGE_WRITE else contextlib.nullcontext():
                result = await self._call(lambda idl, part=part: self._apply(idl, part, fence))  # type: ignore[misc]
            applied += result.applied
            if result.retry:
                return ApplyResult(applied, retry=True)
        return ApplyResult(applied)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(self._link.stop()), 5)

    def changes_since(self, version: tuple[int, int] | None) -> Changes | None:
        reading = self._reading
        return None if reading is None else reading[1].changes_since(version)

    # ------------------------------------------------------------ jobs: the link holds the IDL for them
    def _switch(self, idl: ovs.db.idl.Idl) -> Any:
        switches = list(idl.tables["Physical_Switch"].rows.values())
        named = [ps for ps in switches if ps.name == self.gateway.name]
        if named:
            return named[0]
        if len(switches) == 1 and self.gateway.pair is not None:
            # Both members of a pair tunnel from the anycast address: only the name tells them apart.
            raise DeviceError(gateway=self.gateway.name, reason=(
                f"the device at {self.gateway.management.address} is Physical_Switch {shown(switches[0].name)}, "
                f"and a member of pair '{self.gateway.pair}' is recognised by name (both members tunnel from "
                f"{self.gateway.vtep_ip}): check management.address, or name the Physical_Switch after the gateway"))
        if len(switches) == 1:
            ps = switches[0]
            if not self.vtep_known or self.gateway.vtep_ip in ps.tunnel_ips:
                return ps
            # Another gateway's device (a wrong address, two gateways on one device): two
            # managers of one device would undo each other forever. Refuse.
            raise DeviceError(gateway=self.gateway.name, reason=(
                f"the device at {self.gateway.management.address} is Physical_Switch {shown(ps.name)} with tunnel IPs "
                f"{echo(', '.join(sorted(ps.tunnel_ips))) or 'none'}, not this gateway ({self.gateway.vtep_ip}): "
                "check management.address, or name the Physical_Switch after the gateway"))
        names = echo(", ".join(sorted(ps.name for ps in switches))) or "none"
        raise DeviceError(gateway=self.gateway.name,
                          reason=f"cannot tell which Physical_Switch is this gateway (found: {names})")

    def _read(self, idl: MemoIdl) -> ActualState:
        """The replica as silonet sees it; unchanged replica (same ``change_seqno``), same answer."""
        if self._cached is not None and self._cached[0] == idl.change_seqno:
            return self._cached[1]
        ps, reading = self._reading_now(idl)
        tunnel = [ip for ip in map(ipv4, ps.tunnel_ips) if ip is not None]  # what the switch says it tunnels from
        state = ActualState(*reading.state(list(ps.switch_fault_status)), version=(reading.serial, reading.version),
                            vtep_ip=tunnel[0] if len(tunnel) == 1 else None)
        self._cached = (idl.change_seqno, state)
        return state

    def _reading_now(self, idl: MemoIdl) -> tuple[Any, Interpretation]:
        """This gateway's Physical_Switch, and the interpretation brought up to the replica by the
        rows that changed since (after a reconnect, by all of them)."""
        if self._reading is None or self._reading[0] != idl.epoch:
            self._reading = (idl.epoch, Interpretation())
        reading = self._reading[1]
        for table, read in READ.items():
            idl.view(table, read)
            for key, old, new in idl.drain(table):
                reading.row(table, key, old, new)
        ps = self._switch(idl)
        ports = {p.name: idl.meaning(p, port_rows) for p in ps.ports}
        for name in reading.ports.keys() - ports.keys():
            reading.port(name, None)
        for name, rows in ports.items():
            reading.port(name, rows)
        return ps, reading

    def _apply(self, idl: MemoIdl, ops: list[Operation], lease: Fence | None = None) -> Commit | ApplyResult:
        """One transaction for the batch, sent; the link finishes it (``_answered``) when the
        device answers, and the read-back happens in that turn (the next read() finds it cached)."""
        txn = Transaction(idl)
        seen = idl.change_seqno
        try:
            ps, reading = self._reading_now(idl)
            if lease is not None:
                fence(ps, lease, self.gateway.name)
            write = Write(idl, txn, reading, {p.name: p for p in ps.ports}, self._link.rng)
            write.run(ops)
            txn.on_success = write.landed  # its locators and sets, as the device's answer is read
            self._link.send(txn, len(ops))
        except BaseException:
            if idl.txn is txn:  # else the IDL keeps it open, and its next run() fails an assertion for good
                txn.abort()
            raise
        return Commit(txn, lambda status: self._answered(idl, txn, status, write, len(ops), lease, seen))

    def _answered(self, idl: MemoIdl, txn: Transaction, status: str, write: Write, size: int,
                  lease: Fence | None, seen: int) -> ApplyResult:
        """TRY_AGAIN, or a free VLAN another writer took first: plan again. Under a lease, the
        transaction carried its epoch (``handlers.fence``); a TRY_AGAIN after which the device
        shows a higher epoch is the device's refusal (``Fenced``), not a change to plan around.
        An integrity refusal after the replica moved (``seen``: the IDL's change count when the
        write was built; the server sends the update before its reply) was a race: a row that ovs-vtep
        added meanwhile references a switch the write deleted. Plan again; unmoved, it stands."""
        txn.on_success = None  # a reply that never came (a lost connection) leaves it: the write holds the txn
        if status in (Txn.SUCCESS, Txn.UNCHANGED):
            with contextlib.suppress(ConnectionError):  # another writer's rows to fetch first: read later
                self._read(idl)
            return ApplyResult(0, retry=True) if write.outrun() else ApplyResult(size)
        if status == Txn.TRY_AGAIN:
            if lease is not None:  # the reply came after the update that made the wait fail
                lease.check(self.gateway.name, device_epoch(self._switch(idl)))
            return ApplyResult(0, retry=True)
        error = txn.get_error() or ""
        if status == Txn.ERROR and idl.change_seqno != seen and any(r in error for r in RACED):
            log.info("gateway %s: %s after the replica moved: planning again", self.gateway.name, echo(error))
            return ApplyResult(0, retry=True)
        raise DeviceError(gateway=self.gateway.name, reason=f"transaction {status}: {echo(error)}")
