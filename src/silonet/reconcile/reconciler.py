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

from silonet.drivers import Driver, registry
from silonet.errors import DeviceError
from silonet.model import Gateway
from silonet.plan import GatewayState, compile_gateway, diff
from silonet.plan.ownership import restrict
from silonet.store.db import Database
from silonet.store.repo import Observation, Repository

log = logging.getLogger("silonet.reconcile")
MAX_ATTEMPTS = 5
BACKOFF_MAX_S = 30.0
REFRESH_CONTACT_S = 60.0
SUPERVISE_AFTER_S = 0.2  # after a write whose gateways' workers are already woken
CONNECT_GRACE_S = 10.0  # a gateway still making its first connection is pending, not failed


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Until the event is set (True) or the time is up (False). ``asyncio.timeout``, not
    ``wait_for``: on Python 3.11 ``wait_for`` can swallow a cancellation that races with
    its inner wait."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def _cancel(task: asyncio.Task, what: str, grace: float = 10.0) -> None:
    """Cancel and wait, but never forever: shutting down must not hang on one task."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.error("%s did not stop within %.0f s; leaving it", what, grace)


class Reconciler:
    """Keeps every gateway at the desired state of the newest committed intent."""

    def __init__(self, db: Database, period: float = 10.0, poll: float = 1.0) -> None:
        self.db = db
        self.period = period
        self.poll = poll
        self.workers: dict[str, Worker] = {}
        self.generation: int | None = None  # of the intent the workers were last told about
        self.cache = db.intent
        self.learned: dict[str, dict[int, frozenset[str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._pending: list[tuple[str, Observation, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

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
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=10)

    def notify(self, generation: int | None = None, bumped: frozenset[str] = frozenset()) -> None:
        """Intent changed (callable from any thread). The gateways the writer marked are woken
        at once; the supervisor then looks for anything else (new gateways, other writers)."""
        if self._loop is not None and self._kick is not None:
            if bumped and generation is not None:
                self._loop.call_soon_threadsafe(self._wake_bumped, generation, bumped)
            else:
                self._loop.call_soon_threadsafe(self._kick.set)

    def _wake_bumped(self, generation: int, bumped: frozenset[str]) -> None:
        assert self._loop is not None and self._kick is not None
        known = True
        for name in bumped:
            worker = self.workers.get(name)
            if worker is None:
                known = False
            elif worker.desired_seen < generation:
                worker.desired_seen = generation
                worker.wake()
        # Every marked gateway has its worker awake: the supervisor's look for anything else
        # (a changed gateway, another writer) waits until they are done, not to compete with them.
        if known:
            self._loop.call_later(SUPERVISE_AFTER_S, self._kick.set)
        else:
            self._kick.set()

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
        """When the intent's generation moved (another replica or the CLI may write too, so
        it is polled as well as notified): start and stop workers as gateways come and go,
        and wake the workers whose desired state changed (the writers mark them)."""
        generation = await asyncio.to_thread(self._generation)
        if generation == self.generation:
            return
        gateways, desired, generation = await asyncio.to_thread(self._load)
        for name in list(self.workers):
            if name not in gateways or self.workers[name].gateway != gateways[name]:
                await self.workers.pop(name).stop()
        for name, gw in gateways.items():
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
        for name, w in self.workers.items():
            if desired.get(name, 0) > w.desired_seen or w.desired_seen < 0:
                w.desired_seen = desired.get(name, 0)
                w.wake()
        self.generation = generation

    def _generation(self) -> int:
        with self.db.read() as s:
            return Repository(s).generation()

    def _load(self) -> tuple[dict[str, Gateway], dict[str, int], int]:
        """The gateways and the generation each one's desired state last changed at."""
        with self.db.read() as s, s.begin():
            with self.cache.lock:  # held briefly: workers compile under it
                inv, generation = self.cache.current(s)
                gateways = dict(inv.gateways)
            desired = {name: r.desired_generation for name, r in
                       Repository(s).realizations(observed=False).items()}
            return gateways, desired, generation

    def desired_now(self, gateway: str) -> tuple[GatewayState, int] | None:
        """``desired`` right here when nobody holds the cache (no thread hop), else None."""
        if self.cache.inventory is None or not self.cache.lock.acquire(blocking=False):
            return None
        try:
            return self.desired(gateway)
        finally:
            self.cache.lock.release()

    def desired(self, gateway: str) -> tuple[GatewayState, int]:
        """The gateway's desired state and the generation it is at (runs in a thread).

        The cache as it stands, without asking the database: writers in this process move it
        on commit, and the supervisor reloads it when another process wrote."""
        with self.cache.lock:
            if self.cache.inventory is not None:
                inv, generation = self.cache.inventory, self.cache.generation
            else:
                with self.db.read() as s:
                    inv, generation = self.cache.current(s)
            if gateway not in inv.gateways:
                raise DeviceError(gateway=gateway, reason="the gateway was removed")
            return compile_gateway(inv, gateway, None, self.learned), generation

    # ------------------------------------------------------------- for workers
    def learn(self, gateway: str, macs: dict[int, frozenset[str]]) -> None:
        """MACs a gateway learned: when they change, its peers need new remote MACs."""
        if self.learned.get(gateway) != macs:
            self.learned[gateway] = macs
            for name, w in self.workers.items():
                if name != gateway:
                    w.wake()

    def record(self, gateway: str, obs: Observation) -> None:
        self._record_many([(gateway, obs)])

    async def submit(self, gateway: str, obs: Observation) -> None:
        """Record an observation together with whatever other workers record meanwhile: ten
        gateways finishing one change at once cost one database commit, not ten."""
        assert self._loop is not None
        fut = self._loop.create_future()
        self._pending.append((gateway, obs, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="reconcile-recorder")
        await fut

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._record_many, [(g, o) for g, o, _ in batch])
            except Exception as err:  # every waiter hears of it
                for _g, _o, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            for _g, _o, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _record_many(self, batch: list[tuple[str, Observation]]) -> None:
        with self.db.status_session() as s:
            Repository(s).record_many(batch)  # autobegins (or continues PostgreSQL's SET LOCAL)
            s.commit()
        self.db.status_changed()


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
        self.desired_seen = -1  # the gateway's desired generation the worker was last woken for
        self._settled_at: float | None = None  # when the last pass found everything in place
        self._dirty = True  # woken for the desired state, not only by the device

    async def start(self) -> None:
        await self.driver.start()
        self.task = asyncio.create_task(self._run(), name=f"reconcile {self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self.task is not None:
            await _cancel(self.task, f"worker of gateway {self.name}")
        await self.driver.close()

    def wake(self) -> None:
        """The desired state may have changed (intent, or MACs learned elsewhere)."""
        self._dirty = True
        self.event.set()

    def _device_changed(self) -> None:
        """From the driver's thread: the device or the connection changed."""
        self.loop.call_soon_threadsafe(self.event.set)

    async def _run(self) -> None:
        backoff = 0.0
        while not self._stopping:
            woken = await _wait(self.event, backoff or self.rec.period)
            self.event.clear()
            if self._quiet(woken):
                continue
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

    def _quiet(self, woken: bool) -> bool:
        """Nothing to do: the desired state did not change, the last pass settled recently, and
        the driver, which tells of every device change, shows the very state that pass read
        (the echo of silonet's own write wakes the worker too). Reading again would only cost
        CPU: 1,000 idle gateways must not keep a core busy. A pass still runs every
        REFRESH_CONTACT_S."""
        settled = self._settled_at
        if self._dirty or not self.driver.notifies or settled is None:
            return False
        if time.monotonic() - settled >= REFRESH_CONTACT_S:
            return False
        return not woken or self.driver.unchanged()

    async def reconcile(self) -> None:
        """One pass: read, diff, apply, read back, record."""
        self._settled_at = None
        self._dirty = False
        self._ever_connected |= self.driver.health().connected
        for _attempt in range(MAX_ATTEMPTS):
            desired, generation = self.rec.desired_now(self.name) or await asyncio.to_thread(
                self.rec.desired, self.name)
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
                log.info("gateway %s: applied %d operation(s) for generation %d", self.name, len(ops), generation)
            local = {str(v): sorted(m) for v, m in actual.local_macs.items()}
            await self._record(Observation(
                reachable=True, realized_generation=generation, error=None,
                actual={**actual.owned.to_dict(), "local_macs": local},
                faults=actual.faults, binding_errors={f"{p}/{v}": why for (p, v), why in sorted(failures.items())},
                foreign=actual.foreign(), drift=0))
            self._settled_at = time.monotonic()
            return
        raise DeviceError(gateway=self.name, reason=f"the device kept changing during {MAX_ATTEMPTS} attempts")

    async def _record(self, obs: Observation) -> None:
        """Write only what changed (and refresh last contact now and then): idle costs nothing."""
        key = (obs.reachable, obs.realized_generation, obs.error, obs.actual, obs.faults, obs.binding_errors,
               obs.foreign)
        now = time.monotonic()
        if key == self._last and now - self._last_write < REFRESH_CONTACT_S:
            return
        await self.rec.submit(self.name, obs)
        self._last, self._last_write = key, now
