"""The reconciler: one worker per gateway this replica drives, started and stopped as gateways
come and go in the intent and as leases move, and woken when a write changed their desired state
(docs/architecture.md, "A reconcile pass").

It wires its parts, each a module of its own: the lease loop (``holding``), the intent source
with its change notes and compiler memo (``intent``), the learned-MAC relay (``macs``), batched
recording (``recorder``) and the pass (``worker``). Here: supervision, and the two hand-offs
with the rest of the process (``silonet.runtime``): it hears of intent writes on the runtime's
``IntentBus`` and shows what its workers last read on its ``RealizationBoard``.

Several replicas may share one database: a replica runs workers only for the gateways it
holds a lease on (store/leases.py), and a worker applies only while that lease is valid by
the replica's own clock, so two replicas never write one gateway at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from silonet.logs import add_id
from silonet.model import Gateway
from silonet.reconcile.announce import Scope, Watched, watched
from silonet.reconcile.decommission import forget
from silonet.reconcile.holding import Holding
from silonet.reconcile.intent import IntentSource
from silonet.reconcile.macs import MacRelay
from silonet.reconcile.metrics import ReconcileMetrics
from silonet.reconcile.recorder import Recorder
from silonet.reconcile.tasks import cancel, wait_event
from silonet.reconcile.worker import Crew, Worker, actual_dict
from silonet.signals import IntentChanged
from silonet.store.leases import LEASE_TTL_S, Leases, Round
from silonet.store.repo import Observation, Repository

if TYPE_CHECKING:
    from silonet.runtime import Runtime

log = logging.getLogger("silonet.reconcile")
SUPERVISE_AFTER_S = 0.2  # after a write whose gateways' workers are already woken
MADE_KEPT = 4096  # generations whose VNIs are remembered (``Reconciler._named``)


class Reconciler:
    """Keeps every gateway at the desired state of the newest committed intent."""

    def __init__(self, runtime: Runtime, period: float = 10.0, poll: float = 1.0, replica: str | None = None,
                 lease_ttl: float = LEASE_TTL_S, siblings: int = 1) -> None:
        """``runtime``: this process's wiring, shared with its Manager (``silonet.runtime``); ``siblings``:
        the reconciling processes started together with this one (``serve --workers N``), itself included."""
        self.runtime = runtime
        self.db = db = runtime.db
        self.period = period
        self.poll = poll
        self.leases = Leases(db, replica, lease_ttl, replicas_at_least=siblings)
        self.holding = Holding(self.leases, self._leases_moved)
        self.replica = self.leases.owner
        self.gateways: dict[str, Gateway] = {}  # the intent's, as last loaded
        self.leaving: frozenset[str] = frozenset()  # of those, the decommissioning ones
        self.desired_at: dict[str, int] = {}  # gateway -> generation its desired state last changed at
        self.workers: dict[str, Worker] = {}
        self._unstartable: dict[str, Gateway] = {}  # tried again when the intent changes, not every lease round
        self.generation: int | None = None  # of the intent the workers were last told about
        self.cache = runtime.intent
        self.macs = MacRelay(db, self._macs_moved)
        self.intent = IntentSource(db, runtime.intent, self.macs)
        self.recorder = Recorder(db, runtime.board, self.holding.holds, self._watched, runtime.feed)
        self.metrics = ReconcileMetrics(self)
        self._modes: dict[str, tuple[int, str]] = {}  # gateway -> (generation, its mode then): ``mode_of``
        self._modes_lock = threading.Lock()
        self.crew = Crew(intent=self.intent, recorder=self.recorder, holds=self.holding.holds,
                         learn=self.macs.learn, metrics=self.metrics, period=period, replica=self.replica,
                         forget=partial(forget, db, runtime.intent, runtime.board, actor=f"reconciler {self.replica}"),
                         mode=self.mode_of, epoch=self.holding.epoch, adopt=self.holding.adopt)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._holder: asyncio.Task | None = None
        self._sync: asyncio.Lock | None = None  # workers start and stop from the supervisor and the lease loop
        self._causes: dict[str, str] = {}  # request ids of writes to gateways whose workers are not started yet
        # what the last ``_sync_workers`` that ended went by: (gateways, desired_at, held)
        self._synced: tuple[dict[str, Gateway], dict[str, int], frozenset[str]] | None = None
        # generations this process's writes told of (``notify``) since the supervisor last looked: the
        # gateways each bumped. When they are all of what the database moved, nothing needs reading.
        self._told: dict[int, frozenset[str]] = {}
        # the newest MADE_KEPT generations this process's writes told of -> the VNIs each named (None:
        # anything): a recording's span of generations looks only at those networks (``_named``)
        self._made: dict[int, frozenset[int] | None] = {}

    @property
    def held(self) -> frozenset[str]:
        """The gateways this replica holds leases on."""
        return self.holding.held

    def holds(self, gateway: str) -> bool:
        return self.holding.holds(gateway)

    # ------------------------------------------------------------------ control
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self._sync = asyncio.Lock()
        self.runtime.changes.subscribe(self.notify)
        self.runtime.board.show_actual(self.actual_here)
        delay = await self.holding.round()
        log.info("replica %s: %d gateway lease(s), TTL %.0f s", self.replica, len(self.held), self.leases.ttl)
        # renewing before the workers start: starting a thousand takes longer than the lease lasts
        self._holder = asyncio.create_task(self.holding.run(delay), name="reconcile-leases")
        await self._refresh()
        self._task = asyncio.create_task(self._supervise(), name="reconcile-supervisor")

    async def stop(self) -> None:
        self.runtime.changes.unsubscribe(self.notify)
        self.runtime.board.hide_actual(self.actual_here)
        for task, what in ((self._task, "reconcile supervisor"), (self._holder, "lease loop")):
            if task is not None:
                await cancel(task, what)
        self.holding.drop()
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()
        await self.recorder.drain()
        await self.holding.release()

    def actual_here(self, gateway: str) -> dict | None:
        """What the gateway holds as this replica's worker last read it, when it drives the
        gateway (callable from any thread): fresher than the database's by up to ACTUAL_EVERY_S."""
        worker = self.workers.get(gateway)
        actual = None if worker is None or not self.holds(gateway) else worker.actual
        return None if actual is None else actual_dict(actual)

    # ------------------------------------------------------- what moves workers
    def notify(self, change: IntentChanged) -> None:
        """Intent changed (the runtime's ``IntentBus``, in the writer's thread right after its
        commit). The gateways the writer marked are woken as soon as it let go of the intent cache;
        the supervisor then looks for anything else (new gateways, other writers).

        What changed (the VNIs) is noted here, in the writer's thread, under the intent cache's
        lock: a pass that compiles at a generation finds every change up to it noted."""
        self._told[change.generation] = change.gateways
        self._made[change.generation] = change.vnis
        if len(self._made) > MADE_KEPT:
            self._made.pop(next(iter(self._made)), None)
        if change.gateways:
            self.intent.note(change.gateways, change.generation, change.vnis)
            inv = self.cache.inventory  # as committed: the bus tells after the commit, under the cache's lock
            if inv is not None:
                self._know_modes({n: inv.gateways[n].mode for n in change.gateways if n in inv.gateways},
                                 change.generation)
        if self._loop is not None and self._kick is not None:
            self.cache.after_release(partial(self._loop.call_soon_threadsafe, self._woken, change))

    def _woken(self, change: IntentChanged) -> None:
        """On the loop, once the writer let go of the intent cache (``notify``): the passes compile
        at once, none finding it held."""
        assert self._kick is not None
        if change.gateways:
            self._wake_bumped(change.generation, change.gateways, change.cause)
            self._recheck(change.gateways, change.vnis)
        else:
            self._kick.set()

    def _recheck(self, gateways: frozenset[str], vnis: frozenset[int] | None = None) -> None:
        """Announce what an intent change moved there, even where no pass will record (a gateway down)."""
        task = asyncio.ensure_future(self.recorder.recheck(gateways, vnis))
        task.add_done_callback(_quietly)

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

    def _watched(self, scope: Scope) -> list[Watched]:
        """The attachments whose status a batch's records may move (announce.py: ``scope``): read from
        the intent this process holds (loaded first if a failed write dropped it), under its lock,
        before the recording's transaction."""
        with self.cache.lock:
            inv = self.cache.inventory
            if inv is None:
                with self.db.read() as s, s.begin():
                    inv, _generation = self.cache.current(s)
            return watched(inv, scope, self._named)

    def _named(self, since: int, upto: int) -> frozenset[int] | None:
        """The VNIs the writes of generations since+1..upto named, when this process was told of each
        and each named its VNIs (``announce.Named``); else None."""
        if upto - since > len(self._made):
            return None
        out: set[int] = set()
        for generation in range(since + 1, upto + 1):
            vnis = self._made.get(generation)
            if vnis is None:
                return None
            out |= vnis
        return frozenset(out)

    def mode_of(self, gateway: str) -> str | None:
        """The gateway's mode in the newest committed intent this replica heard of (any thread): a
        worker asks it before each pass and right before each write, so a gateway switched to observe
        or maintenance is not written even by a worker woken before the supervisor replaced it."""
        known = self._modes.get(gateway)
        return None if known is None else known[1]

    def _know_modes(self, modes: dict[str, str], generation: int) -> None:
        """Modes as of ``generation`` (from a write's note or a load): never older over newer."""
        with self._modes_lock:
            for name, mode in modes.items():
                if self._modes.get(name, (-1, ""))[0] <= generation:
                    self._modes[name] = (generation, mode)

    def _macs_moved(self, source: str | None, vnis: frozenset[int] | None) -> None:
        """The MACs ``source`` learned on ``vnis`` changed (None, None: a gateway left): the workers
        carrying those VNIs compile their remote MACs there at their next pass, and are woken for it
        when a MAC moved (a gateway that left wakes nobody: its peers' next pass takes it)."""
        inv = self.cache.inventory
        if vnis is None or inv is None:
            peers = [name for name in self.workers if name != source]
        else:
            carriers: set[str] = set()
            for vni in vnis:
                network = inv.network_of_vni(vni)
                if network is not None:
                    carriers |= inv.carriers_of(network)
            peers = [name for name in carriers if name != source and name in self.workers]
        self.intent.note(peers, -1, vnis)
        if source is not None:
            for name in peers:
                self.workers[name].wake()

    async def _leases_moved(self, r: Round, lapsed: bool) -> None:
        """After a lease round: workers for what this replica holds now."""
        assert self._sync is not None
        if lapsed:  # writes were refused meanwhile: the workers try again now, not after their backoff
            for name in self.held & self.workers.keys():
                self.workers[name].wake()
        async with self._sync:
            if r.excess:  # beyond this replica's share: stop writing first, then let others have them
                log.info("replica %s: giving back %d of %d gateway(s) for %d live replicas", self.replica,
                         len(r.excess), len(r.held), r.replicas)
                await asyncio.gather(*(self._retire(n).stop() for n in r.excess if n in self.workers),
                                     return_exceptions=True)
                await self.holding.give_back(r.excess)
            await self._sync_workers()
        if self.gateways.keys() - self.held:
            await self.macs.from_peers(self.gateways.keys(), self.held)

    # ---------------------------------------------------------------- supervision
    async def _supervise(self) -> None:
        assert self._kick is not None
        while True:
            await wait_event(self._kick, self.poll)
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
        self.gateways, self.desired_at, generation = await asyncio.to_thread(
            lambda: self._told_all(generation) or self._load())  # a thread: a writer may hold the cache
        self._know_modes({name: gw.mode for name, gw in self.gateways.items()}, generation)
        self._unstartable.clear()
        if self.gateways.keys() - known.keys() - self.held:
            self.holding.claim()
        async with self._sync:
            await self._sync_workers()
        self.generation = generation

    def _retire(self, name: str) -> Worker:
        """Out of the workers, its change notes dropped; the caller stops it."""
        self.intent.unwatch(name)
        self.crew.transitions.forget(name)  # deleted, or its lease moved: a later worker logs afresh
        return self.workers.pop(name)

    async def _sync_workers(self) -> None:
        """Workers for exactly the gateways of the intent this replica holds leases on. Runs at each
        change of the generation, over every gateway: a gateway the intent did not touch is the very
        object its worker holds (the cache changes the intent in place), and is passed at once
        (comparing 1,000 gateways field by field was ~2 ms of each attach at 1,000 gateways).
        Only this changes the workers, so after one that ended, the same gateways, desired
        generations and leases ask nothing (a lease round that renewed what it held, every 2 s)."""
        gateways, desired, held = self.gateways, self.desired_at, self.held
        last = self._synced
        if last is not None and last[0] is gateways and last[1] is desired and last[2] == held and not self._causes:
            return
        for name in list(self.workers):
            worker, gw = self.workers[name], gateways.get(name)
            if worker.gateway is gw and name in held:
                continue
            if gw is not None and name in held and _mode_switch(worker.gateway, gw):
                worker.gateway = gw  # enforce <-> observe: the same driver, woken below
                worker.desired_seen = -1
            elif gw is None or name not in held or worker.gateway != gw:
                await self._retire(name).stop()  # a new driver for new management (and in or out of maintenance)
        for name, gw in gateways.items():
            if name not in self.workers and name in held and self._unstartable.get(name) != gw:
                try:
                    worker = Worker(gw, self.crew)
                    await worker.start()
                except Exception as err:  # one bad gateway must not stall the others
                    log.exception("gateway %s: cannot start its driver", name)
                    self._unstartable[name] = gw
                    reason = getattr(err, "fields", {}).get("rule") or str(err)
                    obs = Observation(reachable=False, realized_generation=None,
                                      error=f"cannot start the driver: {reason}")
                    self.metrics.observed(name, obs)
                    await asyncio.to_thread(self.recorder.record, name, obs)
                    continue
                self.workers[name] = worker
                self.intent.watch(name)
        for name, w in self.workers.items():
            if desired.get(name, 0) > w.desired_seen or w.desired_seen < 0:
                w.desired_seen = desired.get(name, 0)
                w.cause = add_id(w.cause, self._causes.get(name))
                w.wake()
        self._causes.clear()
        self._synced = (gateways, desired, held)

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
        for told in [g for g in list(self._told) if g <= generation]:
            self._told.pop(told, None)
        return gateways, desired, generation

    def _told_all(self, generation: int) -> tuple[dict[str, Gateway], dict[str, int], int] | None:
        """``_load`` without the database, when every write since the last look, up to ``generation``
        or to where the intent cache stands if further, was this process's own (told on its bus: their
        gateways' workers are woken already); else None. A write per second must not cost a read of
        every gateway's record per second."""
        if self.generation is None:
            return None
        for late in [g for g in list(self._told) if g <= self.generation]:  # told after a load had read them
            self._told.pop(late, None)
        with self.cache.lock:
            inv, at = self.cache.inventory, self.cache.generation
            span = range(self.generation + 1, at + 1)
            if inv is None or at < generation or any(g not in self._told for g in span):
                return None
            gateways = dict(inv.gateways)
            self.leaving = frozenset(inv.decommissioning)
        desired = dict(self.desired_at)
        for g in span:
            desired.update(dict.fromkeys(self._told.pop(g), g))
        return gateways, desired, at


def _mode_switch(old: Gateway, new: Gateway) -> bool:
    """Only the mode changed, between enforce and observe: the worker keeps its driver (connected,
    read) and takes the new mode; into or out of maintenance it starts or drops the connection,
    so a new worker is made."""
    return (old.mode != new.mode and "maintenance" not in (old.mode, new.mode)
            and replace(old, mode=new.mode) == new)


def _quietly(task: asyncio.Future) -> None:
    """An announcement that failed (a busy database) is retried by the next recording: say so, go on."""
    if not task.cancelled() and (err := task.exception()) is not None:
        log.warning("announcing an intent change failed: %s", err)
