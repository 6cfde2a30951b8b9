"""One asyncio worker per gateway, woken by intent changes, device changes, reconnects
and a period. Each pass reads the device, diffs against the desired state, applies the
smallest batch in one device transaction, reads back and records what it reached.

Passes are level-triggered: a pass never needs to know *why* it runs, so a missed wake-up
costs at most one period, and a restart simply converges again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from silonet.drivers import Driver, registry
from silonet.errors import DeviceError
from silonet.model import Gateway, Inventory
from silonet.plan import compile_gateway, diff
from silonet.plan.compiler import vni_carriers
from silonet.plan.ownership import restrict
from silonet.store.db import Database
from silonet.store.repo import Observation, Repository

log = logging.getLogger("silonet.reconcile")
MAX_ATTEMPTS = 5
BACKOFF_MAX_S = 30.0
REFRESH_CONTACT_S = 60.0
CONNECT_GRACE_S = 10.0  # a gateway still making its first connection is pending, not failed


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until the event is set or the time is up. ``asyncio.timeout``, not ``wait_for``: on
    Python 3.11 ``wait_for`` can swallow a cancellation that races with its inner wait."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


async def _cancel(task: asyncio.Task, what: str, grace: float = 10.0) -> None:
    """Cancel and wait, but never forever: shutting down must not hang on one task."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.error("%s did not stop within %.0f s; leaving it", what, grace)


@dataclass
class Snapshot:
    """The intent at one generation, compiled lazily per gateway."""

    generation: int
    inventory: Inventory
    carriers: dict[int, set[str]]


class Reconciler:
    """Keeps every gateway at the desired state of the newest committed intent."""

    def __init__(self, db: Database, period: float = 10.0, poll: float = 1.0) -> None:
        self.db = db
        self.period = period
        self.poll = poll
        self.workers: dict[str, Worker] = {}
        self.snapshot: Snapshot | None = None
        self.learned: dict[str, dict[int, frozenset[str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ control
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self.db.on_commit.append(self.notify)
        await self._refresh()
        self._task = asyncio.create_task(self._supervise(), name="reconcile-supervisor")

    async def stop(self) -> None:
        if self.notify in self.db.on_commit:
            self.db.on_commit.remove(self.notify)
        if self._task is not None:
            await _cancel(self._task, "reconcile supervisor")
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()

    def notify(self, _generation: int | None = None) -> None:
        """Intent changed (callable from any thread)."""
        if self._loop is not None and self._kick is not None:
            self._loop.call_soon_threadsafe(self._kick.set)

    async def _supervise(self) -> None:
        assert self._kick is not None
        while True:
            await _wait(self._kick, self.poll)
            self._kick.clear()
            try:
                await self._refresh()
            except Exception:
                log.exception("reading the intent failed")

    async def _refresh(self) -> None:
        """Load the intent when its generation moved (another replica or the CLI may write
        too, so the generation is polled as well as notified) and wake the workers."""
        generation = await asyncio.to_thread(self._generation)
        if self.snapshot is not None and generation == self.snapshot.generation:
            return
        inv, generation = await asyncio.to_thread(self._load)
        self.snapshot = Snapshot(generation, inv, vni_carriers(inv))
        for name in list(self.workers):
            if name not in inv.gateways or self.workers[name].gateway != inv.gateways[name]:
                await self.workers.pop(name).stop()
        for name, gw in inv.gateways.items():
            if name not in self.workers:
                try:
                    worker = Worker(self, gw)
                    await worker.start()
                except Exception as err:  # one bad gateway must not stall the others
                    log.exception("gateway %s: cannot start its driver", name)
                    reason = getattr(err, "fields", {}).get("rule") or str(err)
                    await asyncio.to_thread(self.record, name, Observation(
                        reachable=False, realized_generation=None, error=f"cannot start the driver: {reason}"))
                    continue
                self.workers[name] = worker
        for w in self.workers.values():
            w.wake()

    def _generation(self) -> int:
        with self.db.read() as s:
            return Repository(s).generation()

    def _load(self) -> tuple[Inventory, int]:
        with self.db.read() as s, s.begin():
            repo = Repository(s)
            return repo.load_inventory(), repo.generation()

    # ------------------------------------------------------------- for workers
    def learn(self, gateway: str, macs: dict[int, frozenset[str]]) -> None:
        """MACs a gateway learned: when they change, its peers need new remote MACs."""
        if self.learned.get(gateway) != macs:
            self.learned[gateway] = macs
            for name, w in self.workers.items():
                if name != gateway:
                    w.wake()

    def record(self, gateway: str, obs: Observation) -> None:
        with self.db.sessions() as s, s.begin():
            Repository(s).record(gateway, obs)


class Worker:
    """Reconciles one gateway through its driver."""

    def __init__(self, rec: Reconciler, gateway: Gateway) -> None:
        self.rec = rec
        self.gateway = gateway
        self.name = gateway.name
        self.driver: Driver = registry(gateway.management.driver)(gateway, self._device_changed)
        self.event = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task | None = None
        self.passes = 0
        self._stopping = False
        self.started = time.monotonic()
        self._ever_connected = False
        self._last: tuple | None = None
        self._last_write = 0.0

    async def start(self) -> None:
        await self.driver.start()
        self.task = asyncio.create_task(self._run(), name=f"reconcile {self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self.task is not None:
            await _cancel(self.task, f"worker of gateway {self.name}")
        await self.driver.close()

    def wake(self) -> None:
        self.event.set()

    def _device_changed(self) -> None:
        """From the driver's thread: the device or the connection changed."""
        self.loop.call_soon_threadsafe(self.event.set)

    async def _run(self) -> None:
        backoff = 0.0
        while not self._stopping:
            await _wait(self.event, backoff or self.rec.period)
            self.event.clear()
            try:
                await self.reconcile()
                backoff = 0.0
            except DeviceError as err:
                backoff = min(max(backoff * 2, 0.5), BACKOFF_MAX_S)
                if not self._ever_connected and time.monotonic() - self.started < CONNECT_GRACE_S:
                    backoff = 0.5  # still connecting for the first time: wait for it, say nothing yet
                    continue
                await self._record(Observation(reachable=self.driver.health().connected, realized_generation=None,
                                               error=err.fields.get("reason", str(err))))
            except Exception as err:
                log.exception("gateway %s: reconcile pass failed", self.name)
                backoff = min(max(backoff * 2, 0.5), BACKOFF_MAX_S)
                await self._record(Observation(reachable=self.driver.health().connected, realized_generation=None,
                                               error=f"internal error: {err}"))

    async def reconcile(self) -> None:
        """One pass: read, diff, apply, read back, record."""
        self._ever_connected |= self.driver.health().connected
        for _attempt in range(MAX_ATTEMPTS):
            snap = self.rec.snapshot
            assert snap is not None
            desired = compile_gateway(snap.inventory, self.name, snap.carriers, self.rec.learned)
            actual = await self.driver.read()
            self.rec.learn(self.name, actual.local_macs)
            effective, failures = restrict(desired, actual.facts)
            ops = diff(effective, actual.owned)
            if ops:
                if (await self.driver.apply(ops)).retry:
                    continue
                actual = await self.driver.read()
            left = diff(effective, actual.owned)
            self.passes += 1
            if left:
                raise DeviceError(gateway=self.name, reason=f"read-back differs: {left[0].describe()} "
                                                            f"(and {len(left) - 1} more)")
            if ops:
                log.info("gateway %s: applied %d operation(s) for generation %d", self.name, len(ops),
                         snap.generation)
            local = {str(v): sorted(m) for v, m in actual.local_macs.items()}
            await self._record(Observation(
                reachable=True, realized_generation=snap.generation, error=None,
                actual={**actual.owned.to_dict(), "local_macs": local},
                faults=actual.faults, binding_errors={f"{p}/{v}": why for (p, v), why in sorted(failures.items())},
                foreign=actual.foreign(), drift=0))
            return
        raise DeviceError(gateway=self.name, reason=f"the device kept changing during {MAX_ATTEMPTS} attempts")

    async def _record(self, obs: Observation) -> None:
        """Write only what changed (and refresh last contact now and then): idle costs nothing."""
        key = (obs.reachable, obs.realized_generation, obs.error, obs.actual, obs.faults, obs.binding_errors,
               obs.foreign)
        now = time.monotonic()
        if key == self._last and now - self._last_write < REFRESH_CONTACT_S:
            return
        await asyncio.to_thread(self.rec.record, self.name, obs)
        self._last, self._last_write = key, now
