"""One asyncio worker per gateway, woken by intent changes, device changes, reconnects
and a period. Each pass reads the device, diffs against the desired state, applies the
smallest batch in one device transaction, reads back and records what it reached.

Passes are level-triggered: a pass never needs to know *why* it runs, so a missed wake-up
costs at most one period, and a restart simply converges again.

Several replicas may share one database: a replica runs workers only for the gateways it
holds a lease on (store/leases.py), and a worker applies only while that lease is valid by
the replica's own clock, so two replicas never write one gateway at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from silonet.drivers import ActualState, ApplyResult, Driver, registry
from silonet.errors import DeviceError
from silonet.logs import REQUEST_ID, add_id
from silonet.model import Gateway, Inventory
from silonet.plan import Compiler, GatewayState, diff
from silonet.plan.ops import Operation
from silonet.plan.ownership import restrict
from silonet.plan.standing import Standing, scope
from silonet.plan.state import Changes
from silonet.reconcile.decommission import forget, holds_nothing, leaving
from silonet.reconcile.metrics import ReconcileMetrics
from silonet.store.db import Database
from silonet.store.leases import LEASE_TTL_S, Leases, Round
from silonet.store.repo import ActualSnapshot, Observation, Repository

log = logging.getLogger("silonet.reconcile")
apply_log = logging.getLogger("silonet.reconcile.apply")  # one line per device write: who, what, when
MAX_ATTEMPTS = 5
MAX_NOTED = 1000  # changes noted for one gateway before its next pass
BACKOFF_MAX_S = 30.0
REFRESH_CONTACT_S = 60.0
SUPERVISE_AFTER_S = 0.2  # after a write whose gateways' workers are already woken
CONNECT_GRACE_S = 10.0  # a gateway still making its first connection is pending, not failed
# What a gateway holds is recorded at most this often: serializing and storing it is O(device),
# and an attach changes it on every gateway of the group. The pass's outcome (realized
# generation, errors, faults) is recorded at once; this replica's API reads the fresh actual
# state from the workers (``actual_here``), other replicas' within this time.
ACTUAL_EVERY_S = 1.0


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


class _Busy(Exception):
    """The intent cache is held by a writer: compile in a thread instead of blocking the loop."""


@dataclass(frozen=True)
class Intent:
    """The intent a settled pass realized: its generation and the cache load it came from."""

    generation: int
    loads: int


class LeaseLapsed(DeviceError):
    """This replica may not write the gateway now (its lease lapsed or moved): no device fault."""


def _actual_dict(actual: ActualState) -> dict:
    return {**actual.owned.to_dict(), "local_macs": {str(v): sorted(m) for v, m in actual.local_macs.items()}}


def _port_faults(bindings: Iterable[tuple[str, int]], faults: dict[str, list[str]]) -> dict[tuple[str, int], str]:
    """Bindings written to a port that reports a fault: the device holds them but does not carry
    them (hardware_vtep ``invalid_vlan_map``: the mapping "could not be instantiated"). They
    are failures of their attachments, not of the gateway: its other ports go on."""
    if not any(kind.startswith("port ") for kind in faults):
        return {}
    return {(port, vlan): f"port '{port}' reports {', '.join(faults[f'port {port}'])}: the gateway does not "
                          "carry its VLAN bindings until the fault clears"
            for port, vlan in bindings if f"port {port}" in faults}


async def _cancel(task: asyncio.Task, what: str, grace: float = 10.0) -> None:
    """Cancel and wait, but never forever: shutting down must not hang on one task."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.error("%s did not stop within %.0f s; leaving it", what, grace)


class Reconciler:
    """Keeps every gateway at the desired state of the newest committed intent."""

    def __init__(self, db: Database, period: float = 10.0, poll: float = 1.0, replica: str | None = None,
                 lease_ttl: float = LEASE_TTL_S) -> None:
        self.db = db
        self.period = period
        self.poll = poll
        self.leases = Leases(db, replica, lease_ttl)
        self.replica = self.leases.owner
        self.held: frozenset[str] = frozenset()  # gateways this replica holds leases on ...
        self.valid_until = 0.0  # ... until this monotonic time (the fence)
        self.gateways: dict[str, Gateway] = {}  # the intent's, as last loaded
        self.leaving: frozenset[str] = frozenset()  # of those, the decommissioning ones
        self.desired_at: dict[str, int] = {}  # gateway -> generation its desired state last changed at
        self.workers: dict[str, Worker] = {}
        self._unstartable: dict[str, Gateway] = {}  # tried again when the intent changes, not every lease round
        self.generation: int | None = None  # of the intent the workers were last told about
        self.cache = db.intent
        self.learned: dict[str, dict[int, frozenset[str]]] = {}
        self._learned_seq = 0  # moves whenever ``learned`` does
        self._changes: dict[str, list[tuple[int, frozenset[int] | None]]] = {}  # see _note
        self._changes_lock = threading.Lock()
        # shared by the workers while the intent stands: (inventory, its state, compiler)
        self._compiler: tuple[Inventory, tuple[int, int, int], Compiler] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._pending: list[tuple[str, Observation, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self._holder: asyncio.Task | None = None
        self._sync: asyncio.Lock | None = None  # workers start and stop from the supervisor and the lease loop
        self._claim: asyncio.Event | None = None  # new gateways: take their leases now, not at the next round
        self._round: asyncio.Future | None = None  # a lease round's thread, which a cancellation does not stop
        self._causes: dict[str, str] = {}  # request ids of writes to gateways whose workers are not started yet
        self.metrics = ReconcileMetrics(self)
        db.actual_sources.append(self.actual_here)

    # ------------------------------------------------------------------ control
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self._sync = asyncio.Lock()
        self._claim = asyncio.Event()
        self.db.on_commit.append(self.notify)
        delay = await self._lease_round()
        log.info("replica %s: %d gateway lease(s), TTL %.0f s", self.replica, len(self.held), self.leases.ttl)
        await self._refresh()
        self._task = asyncio.create_task(self._supervise(), name="reconcile-supervisor")
        self._holder = asyncio.create_task(self._hold(delay), name="reconcile-leases")

    async def stop(self) -> None:
        if self.notify in self.db.on_commit:
            self.db.on_commit.remove(self.notify)
        if self.actual_here in self.db.actual_sources:
            self.db.actual_sources.remove(self.actual_here)
        for task, what in ((self._task, "reconcile supervisor"), (self._holder, "lease loop")):
            if task is not None:
                await _cancel(task, what)
        self.held = frozenset()
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=10)
        if self._round is not None:  # else it could take leases again after they were given back
            await asyncio.wait({self._round}, timeout=10)
        try:  # the workers stopped: others may take over at once instead of after the TTL
            await asyncio.to_thread(self.leases.release)
        except Exception:
            log.exception("releasing the leases failed; they expire in %.0f s", self.leases.ttl)

    def actual_here(self, gateway: str) -> dict | None:
        """What the gateway holds as this replica's worker last read it, when it drives the
        gateway (callable from any thread): fresher than the database's by up to ACTUAL_EVERY_S."""
        worker = self.workers.get(gateway)
        actual = None if worker is None or not self.holds(gateway) else worker.actual
        return None if actual is None else _actual_dict(actual)

    def holds(self, gateway: str) -> bool:
        """Whether this replica may write the gateway now: it holds the lease, and the lease is
        still valid by the local clock (renewal time + TTL - margin, before the database's expiry)."""
        return gateway in self.held and time.monotonic() < self.valid_until

    async def _hold(self, delay: float) -> None:
        """Renew and take leases every TTL/3, sooner when another replica's lease is about to expire."""
        assert self._claim is not None
        while True:
            await _wait(self._claim, delay)
            self._claim.clear()
            delay = await self._lease_round()

    async def _lease_round(self) -> float:
        """One round; returns the seconds until the next."""
        assert self._sync is not None
        every = self.leases.ttl / 3
        try:
            self._round = asyncio.ensure_future(asyncio.to_thread(self.leases.round))
            r: Round = await asyncio.shield(self._round)
        except Exception:
            log.exception("renewing the gateway leases failed")
            return min(every, 1.0)
        lapsed = time.monotonic() >= self.valid_until
        self.held, self.valid_until = r.held - r.excess, r.valid_until
        if lapsed:  # writes were refused meanwhile: the workers try again now, not after their backoff
            for name in self.held & self.workers.keys():
                self.workers[name].wake()
        async with self._sync:
            if r.excess:  # beyond this replica's share: stop writing first, then let others have them
                log.info("replica %s: giving back %d of %d gateway(s) for %d live replicas", self.replica,
                         len(r.excess), len(r.held), r.replicas)
                await asyncio.gather(*(self.workers.pop(n).stop() for n in r.excess if n in self.workers),
                                     return_exceptions=True)
                try:
                    await asyncio.to_thread(self.leases.release, r.excess)
                except Exception:
                    log.exception("giving back %d lease(s) failed; they expire", len(r.excess))
            await self._sync_workers()
        if self.gateways.keys() - self.held:
            await self._learn_from_peers()
        if r.next_expiry_s is not None:
            every = min(every, r.next_expiry_s + 0.05)
        return max(every, 0.05)

    async def _learn_from_peers(self) -> None:
        """MACs learned on gateways other replicas drive reach this replica through the
        database (their owners record them): its gateways need them as remote MACs."""
        try:
            macs = await asyncio.to_thread(self._learned_macs)
        except Exception:
            log.exception("reading the MACs other replicas' gateways learned failed")
            return
        for name in list(self.learned):
            if name not in self.gateways:
                del self.learned[name]
                self._learned_seq += 1
                self._note(list(self.workers), -1, None)
        for name, learned in macs.items():
            if name not in self.held and name in self.gateways:
                self.learn(name, learned)

    def _learned_macs(self) -> dict[str, dict[int, frozenset[str]]]:
        with self.db.read() as s:
            return Repository(s).learned_macs()

    def notify(self, generation: int | None = None, bumped: frozenset[str] = frozenset(),
               vnis: frozenset[int] | None = None) -> None:
        """Intent changed (callable from any thread). The gateways the writer marked are woken
        at once; the supervisor then looks for anything else (new gateways, other writers).

        What changed (the VNIs) is noted here, in the writer's thread, under the intent cache's
        lock: a pass that compiles at a generation finds every change up to it noted."""
        if bumped and generation is not None:
            self._note(bumped, generation, vnis)
        if self._loop is not None and self._kick is not None:
            if bumped and generation is not None:  # in the writer's thread: its request id is the cause
                self._loop.call_soon_threadsafe(self._wake_bumped, generation, bumped, REQUEST_ID.get())
            else:
                self._loop.call_soon_threadsafe(self._kick.set)

    def _wake_bumped(self, generation: int, bumped: frozenset[str], cause: str | None = None) -> None:
        assert self._loop is not None and self._kick is not None
        known = True
        for name in bumped:
            worker = self.workers.get(name)
            if worker is None:
                known = False
                if cause:
                    self._causes[name] = add_id(self._causes.get(name), cause) or cause
            elif worker.desired_seen < generation:
                worker.desired_seen = generation
                worker.cause = add_id(worker.cause, cause)
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
        assert self._sync is not None
        generation = await asyncio.to_thread(self._generation)
        if generation == self.generation:
            return
        known = self.gateways
        self.gateways, self.desired_at, generation = await asyncio.to_thread(self._load)
        self._unstartable.clear()
        if self._claim is not None and self.gateways.keys() - known.keys() - self.held:
            self._claim.set()
        async with self._sync:
            await self._sync_workers()
        self.generation = generation

    async def _sync_workers(self) -> None:
        """Workers for exactly the gateways of the intent this replica holds leases on."""
        gateways, desired = self.gateways, self.desired_at
        for name in list(self.workers):
            if name not in gateways or name not in self.held or self.workers[name].gateway != gateways[name]:
                await self.workers.pop(name).stop()
                with self._changes_lock:
                    self._changes.pop(name, None)
        for name, gw in gateways.items():
            if name not in self.workers and name in self.held and self._unstartable.get(name) != gw:
                try:
                    worker = Worker(self, gw)
                    await worker.start()
                except Exception as err:  # one bad gateway must not stall the others
                    log.exception("gateway %s: cannot start its driver", name)
                    self._unstartable[name] = gw
                    reason = getattr(err, "fields", {}).get("rule") or str(err)
                    await asyncio.to_thread(self.record, name, Observation(
                        reachable=False, realized_generation=None, error=f"cannot start the driver: {reason}"))
                    continue
                self.workers[name] = worker
        for name, w in self.workers.items():
            if desired.get(name, 0) > w.desired_seen or w.desired_seen < 0:
                w.desired_seen = desired.get(name, 0)
                w.cause = add_id(w.cause, self._causes.get(name))
                w.wake()
        self._causes.clear()

    def _generation(self) -> int:
        with self.db.read() as s:
            return Repository(s).generation()

    def _load(self) -> tuple[dict[str, Gateway], dict[str, int], int]:
        """The gateways and the generation each one's desired state last changed at."""
        with self.db.read() as s, s.begin():
            with self.cache.lock:  # held briefly: workers compile under it
                inv, generation = self.cache.current(s)
                gateways = dict(inv.gateways)
                self.leaving = frozenset(inv.decommissioning)
            desired = {name: r.desired_generation for name, r in
                       Repository(s).realizations(observed=False).items()}
            return gateways, desired, generation

    def _note(self, gateways: Iterable[str], generation: int, vnis: frozenset[int] | None) -> None:
        """What changed for these gateways at ``generation`` (None: anything), for their next pass.
        Only gateways with a worker: a new worker's first pass compiles everything anyway."""
        with self._changes_lock:
            for name in gateways:
                if name in self.workers:
                    noted = self._changes.setdefault(name, [])
                    noted.append((generation, vnis))
                    if len(noted) > MAX_NOTED:  # a worker this far behind compiles everything
                        noted[:] = [(max(g for g, _ in noted), None)]

    def _changed(self, gateway: str, generation: int) -> frozenset[int] | None:
        """The VNIs noted for ``gateway`` up to ``generation`` (taken), None when unknown."""
        with self._changes_lock:
            noted = self._changes.get(gateway)
            if not noted:
                return frozenset()
            taken = [v for g, v in noted if g <= generation]
            noted[:] = [(g, v) for g, v in noted if g > generation]
        if any(v is None for v in taken):
            return None
        return frozenset().union(*taken)

    def intent_now(self, gateway: str, since: Intent | None) -> tuple[GatewayState, int, frozenset[int] | None, int]:
        """``intent`` right here when nobody holds the cache (no thread hop), else in a thread."""
        if self.cache.inventory is not None and self.cache.lock.acquire(blocking=False):
            try:
                return self.intent(gateway, since)
            finally:
                self.cache.lock.release()
        raise _Busy

    def intent(self, gateway: str, since: Intent | None) -> tuple[GatewayState, int, frozenset[int] | None, int]:
        """What the gateway should hold, at the generation the cache is at: (state, generation,
        VNIs, cache loads). With VNIs, the state is only what those VNIs mean, and nothing else
        changed since ``since`` (the generation and cache load of the last settled pass); with
        None, it is the whole desired state.

        The cache as it stands, without asking the database: writers in this process move it
        on commit, and the supervisor reloads it when another process wrote (a reload cannot
        say what changed: the whole state then)."""
        with self.cache.lock:
            if self.cache.inventory is not None:
                inv, generation = self.cache.inventory, self.cache.generation
            else:
                with self.db.read() as s:
                    inv, generation = self.cache.current(s)
            if gateway not in inv.gateways:
                raise DeviceError(gateway=gateway, reason="the gateway was removed")
            # One compiler per intent state: the gateways one change woke share its group work
            # (the memo holds the inventory itself: compared by identity, its id is not reused).
            key = (inv.changes, generation, self._learned_seq)
            memo = self._compiler
            if memo is None or memo[0] is not inv or memo[1] != key:
                memo = self._compiler = (inv, key, Compiler(inv, None, self.learned))
            vnis = self._changed(gateway, generation)
            loads = self.cache.loads
            if since is None or vnis is None or since.loads != loads or since.generation > generation:
                return memo[2].gateway(gateway), generation, None, loads
            return memo[2].gateway_part(gateway, vnis), generation, vnis, loads

    # ------------------------------------------------------------- for workers
    def learn(self, gateway: str, macs: dict[int, frozenset[str]]) -> None:
        """MACs a gateway learned: when they change, its peers need new remote MACs."""
        if self.learned.get(gateway) != macs:
            self.learned[gateway] = macs
            self._learned_seq += 1
            peers = [name for name in self.workers if name != gateway]
            self._note(peers, -1, None)  # their remote MACs: compiled whole at their next pass
            for name in peers:
                self.workers[name].wake()

    def record(self, gateway: str, obs: Observation) -> None:
        self.metrics.observed(gateway, obs)
        self._record_many([(gateway, obs)])

    async def submit(self, gateway: str, obs: Observation | ActualSnapshot) -> bool:
        """Record an observation together with whatever other workers record meanwhile: ten
        gateways finishing one change at once cost one database commit, not ten. False when
        not recorded (the lease lapsed: another replica's observations count now)."""
        assert self._loop is not None
        if not self.holds(gateway):
            return False
        fut = self._loop.create_future()
        self._pending.append((gateway, obs, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="reconcile-recorder")
        await fut
        return True

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

    def _record_many(self, batch: list[tuple[str, Observation | ActualSnapshot]]) -> None:
        with self.db.status_session() as s:
            Repository(s).record_many(batch)  # autobegins (or continues PostgreSQL's SET LOCAL)
            s.commit()
        passes = [(g, o) for g, o in batch if isinstance(o, Observation)]
        self.db.status_changed({g: o.realized_generation for g, o in passes if o.realized_generation is not None},
                               [g for g, o in passes if o.error])


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
        self.cause: str | None = None  # request id(s) of the write(s) the next pass realizes
        self.standing: Standing | None = None  # as the last settled pass left it (plan/standing.py)
        self.settled = {"whole": 0, "part": 0}  # settled passes by what they compared
        self._whole_at = 0.0  # when a pass last compared everything
        self.actual: ActualState | None = None  # as the last settled pass read it
        self._actual_sent: ActualState | None = None  # as last recorded ...
        self._actual_at = -ACTUAL_EVERY_S  # ... at this monotonic time
        self._flush: asyncio.Task | None = None  # records ``actual`` once ACTUAL_EVERY_S has passed

    async def start(self) -> None:
        await self.driver.start()
        self.task = asyncio.create_task(self._run(), name=f"reconcile {self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self.task is not None:
            await _cancel(self.task, f"worker of gateway {self.name}")
        if self._flush is not None:
            await _cancel(self._flush, f"actual-state recorder of gateway {self.name}")
        try:  # what it holds now, not up to ACTUAL_EVERY_S ago (when the lease is still ours)
            await asyncio.wait_for(self._record_actual(), 5)
        except Exception:
            log.exception("gateway %s: recording its actual state on stop failed", self.name)
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
            except LeaseLapsed:
                backoff = 0.5  # not the device's fault: try again as soon as a lease round renews it
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
        """One pass, timed, its log lines under the request id of the write(s) that woke it (the id
        stays in the worker task's context until the next pass, so its error lines carry it too)."""
        REQUEST_ID.set(self.cause)
        self.cause = None
        started, ok = time.perf_counter(), False
        try:
            await self._pass()
            ok = True
        finally:
            self.rec.metrics.pass_done(self.name, started, ok)

    async def _pass(self) -> None:
        """Read, diff, apply, read back, record: where something changed since the last settled
        pass when the intent and the driver can tell what (``Standing``), else everything (and
        at least every REFRESH_CONTACT_S, so a change nobody told of is still found)."""
        self._settled_at = None
        self._dirty = False
        self._ever_connected |= self.driver.health().connected
        standing, self.standing = self.standing, None  # kept only by a pass that settles
        if standing is not None and time.monotonic() - self._whole_at >= REFRESH_CONTACT_S:
            standing = None
        for _attempt in range(MAX_ATTEMPTS):
            actual = await self.driver.read()
            self.rec.learn(self.name, actual.local_macs)
            desired, generation, vnis, loads = await self._intent(None if standing is None else standing.intent)
            device = None if standing is None else self.driver.changes_since(standing.version)
            if (standing is None or vnis is None or device is None or device.facts
                    or actual.facts is not standing.facts or actual.facts.flood_per_vtep):
                if vnis is not None:  # a part is not enough here: the whole desired state
                    desired, generation, vnis, loads = await self._intent(None)
                settled = await self._whole(desired, generation, actual)
            else:
                settled = await self._part(standing, desired, vnis, device, generation, actual)
            if settled is None:  # the device changed under the write: read and plan again, whole
                standing = None
                continue
            standing, actual = settled
            self.passes += 1
            kind = "part" if standing.intent is not None else "whole"  # a whole pass builds a fresh one
            self.settled[kind] += 1
            self.rec.metrics.settled(kind)
            failures = standing.failures | _port_faults(standing.bindings, actual.faults)
            await self._record(Observation(
                reachable=True, realized_generation=generation, error=None,
                faults=actual.faults, binding_errors={f"{p}/{v}": why for (p, v), why in sorted(failures.items())},
                foreign=actual.foreign(), drift=0), actual)
            standing.intent = Intent(generation, loads)
            self.standing = standing
            self._settled_at = time.monotonic()
            if holds_nothing(actual.owned) and self.rec.holds(self.name) and await self._leaving():
                await asyncio.to_thread(forget, self.rec.db, self.name, f"reconciler {self.rec.replica}")
            return
        raise DeviceError(gateway=self.name, reason=f"the device kept changing during {MAX_ATTEMPTS} attempts")

    async def _leaving(self) -> bool:
        """Whether the gateway is decommissioning (the cache as it stands when nobody holds it)."""
        inv = self.rec.cache.inventory
        if inv is not None:
            return self.name in inv.decommissioning  # a hint: ``forget`` checks again in its transaction
        return await asyncio.to_thread(leaving, self.rec.db, self.name)

    async def _intent(self, since: Intent | None) -> tuple[GatewayState, int, frozenset[int] | None, int]:
        try:
            return self.rec.intent_now(self.name, since)
        except _Busy:
            return await asyncio.to_thread(self.rec.intent, self.name, since)

    async def _whole(self, desired: GatewayState, generation: int,
                     actual: ActualState) -> tuple[Standing, ActualState] | None:
        """The full pass: every VNI and binding compared."""
        effective, failures = restrict(desired, actual.facts)
        ops = diff(effective, actual.owned)
        facts, version = actual.facts, actual.version
        if ops:
            if (await self._apply(ops, generation)).retry:
                return None
            actual = await self.driver.read()
        self._read_back(diff(effective, actual.owned))
        self._whole_at = time.monotonic()
        kept = Standing.build(desired, effective, failures, facts, generation, actual.version)
        if actual.version is None or version is None or actual.facts is not facts:
            kept.version = None  # the next pass cannot know what changed since: whole again
        return kept, actual

    async def _part(self, standing: Standing, part: GatewayState, vnis: frozenset[int], device: Changes,
                    generation: int, actual: ActualState) -> tuple[Standing, ActualState] | None:
        """The pass after a change the intent and the driver could name: only the VNIs the intent
        changed and what the device changed since the last settled pass are compared (the rest
        matched then, and neither side changed it)."""
        keys = standing.patch(vnis, part) | standing.keys_for(device.vnis) | device.bindings
        where = set(vnis) | device.vnis
        ops = diff(standing.scope(where, keys), scope(actual.owned, where, keys))
        if ops:
            before = actual.version
            if (await self._apply(ops, generation)).retry:
                return None
            actual = await self.driver.read()
            during = self.driver.changes_since(before)
            if during is None or during.facts:  # look at everything, and keep nothing for next time
                left = diff(standing.effective(), actual.owned)
                standing.version = None
            else:
                where |= during.vnis
                keys |= during.bindings | standing.keys_for(during.vnis)
                left = diff(standing.scope(where, keys), scope(actual.owned, where, keys))
                standing.version = actual.version
            self._read_back(left)
        else:
            standing.version = actual.version
        standing.generation = generation
        return standing, actual

    def _read_back(self, left: list[Operation]) -> None:
        """What the device still lacks after the write: nothing, or the pass fails."""
        if left:
            raise DeviceError(gateway=self.name, reason=f"read-back differs: {left[0].describe()} "
                                                        f"(and {len(left) - 1} more)")

    async def _apply(self, ops: list[Operation], generation: int) -> ApplyResult:
        """Write, but only under a valid lease (checked right before the write; the lease's
        margin outlasts one write). Logged with the replica and the wall-clock interval, so
        writes of different replicas to one gateway can be shown never to overlap."""
        if not self.rec.holds(self.name):
            apply_log.warning("gateway %s: not writing: replica %s no longer holds its lease", self.name,
                              self.rec.replica)
            raise LeaseLapsed(gateway=self.name, reason=f"replica {self.rec.replica} no longer holds the gateway")
        start = time.time()
        try:
            result = await self.driver.apply(ops)
        finally:
            apply_log.info("gateway %s: applied %d operation(s) for generation %d (replica %s, %.6f-%.6f)",
                           self.name, len(ops), generation, self.rec.replica, start, time.time())
        if not result.retry:
            self.rec.metrics.applied(ops)
        return result

    async def _record(self, obs: Observation, actual: ActualState | None = None) -> None:
        """Write only what changed (and refresh last contact now and then): idle costs nothing.
        ``actual`` goes with the observation when ACTUAL_EVERY_S passed since it last went,
        else a little later on its own (the newest by then)."""
        self.rec.metrics.observed(self.name, obs)
        now = time.monotonic()
        with_actual = False
        if actual is not None:
            self.actual = actual
            if not self._actual_recorded(actual):
                if now - self._actual_at >= ACTUAL_EVERY_S:
                    obs, with_actual = replace(obs, actual=_actual_dict(actual)), True
                elif self._flush is None or self._flush.done():
                    self._flush = asyncio.create_task(self._flush_actual(), name=f"actual {self.name}")
        key = (obs.reachable, obs.realized_generation, obs.error, obs.faults, obs.binding_errors, obs.foreign)
        if not with_actual and key == self._last and now - self._last_write < REFRESH_CONTACT_S:
            return
        if await self.rec.submit(self.name, obs):  # one not recorded must not pass for written
            self._last, self._last_write = key, now
            if with_actual:
                self._actual_sent, self._actual_at = actual, now

    def _actual_recorded(self, actual: ActualState) -> bool:
        sent = self._actual_sent
        return sent is not None and (sent is actual or (sent.owned == actual.owned
                                                         and sent.local_macs == actual.local_macs))

    async def _flush_actual(self) -> None:
        await asyncio.sleep(max(self._actual_at + ACTUAL_EVERY_S - time.monotonic(), 0.0))
        await self._record_actual()

    async def _record_actual(self) -> None:
        """The newest actual state, unless already recorded."""
        actual = self.actual
        if actual is None or self._actual_recorded(actual):
            return
        if await self.rec.submit(self.name, ActualSnapshot(_actual_dict(actual))):
            self._actual_sent, self._actual_at = actual, time.monotonic()
