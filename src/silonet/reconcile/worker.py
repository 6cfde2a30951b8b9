"""A gateway's worker: one asyncio task per gateway this replica drives, woken by intent changes,
device changes, reconnects and a period. Each pass reads the device, diffs against the desired
state, applies the smallest batch in one device transaction, reads back and records what it
reached (docs/architecture.md, "A reconcile pass").

Passes are level-triggered: a pass never needs to know *why* it runs, so a missed wake-up
costs at most one period, and a restart simply converges again. A worker knows its reconciler
only through its ``Crew``: the intent source, the recorder, the lease check, the learned-MAC
relay, the forgetting of a decommissioned gateway, and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from silonet.drivers import ActualState, ApplyResult, Driver, registry
from silonet.drivers.base import Fence
from silonet.errors import DeviceError, Fenced
from silonet.logs import REQUEST_ID
from silonet.model import Gateway
from silonet.plan import GatewayState, actual_json, diff
from silonet.plan.ops import Operation
from silonet.plan.ownership import binding_errors, enforcement
from silonet.plan.standing import Standing, scope
from silonet.plan.state import Changes
from silonet.reconcile.decommission import holds_nothing
from silonet.reconcile.intent import Intent, IntentSource
from silonet.reconcile.metrics import ReconcileMetrics
from silonet.reconcile.recorder import Recorder
from silonet.reconcile.tasks import cancel, wait_event
from silonet.reconcile.transitions import Transitions
from silonet.store.repo import ActualSnapshot, Observation

log = logging.getLogger("silonet.reconcile")
apply_log = logging.getLogger("silonet.reconcile.apply")  # one line per device write: who, what, when
MAX_ATTEMPTS = 5
BACKOFF_MAX_S = 30.0
REFRESH_CONTACT_S = 60.0
# Idle gateways' contact refreshes fall on this grid of the process's monotonic clock, so those due
# within one step go to the recorder together: one transaction for many gateways (at 1,000 gateways,
# 17 refreshes a second each in a transaction of its own were a quarter of the manager's idle CPU).
# A refresh comes between REFRESH_CONTACT_S and REFRESH_CONTACT_S + REFRESH_GRID_S after the last.
REFRESH_GRID_S = 5.0
# A gateway whose driver tells of every device change (OVSDB's monitor) is compared whole this
# often, in case of a change nobody told of; between, an idle one only has its contact refreshed.
# A whole pass each REFRESH_CONTACT_S was most of the manager's idle CPU at 1,000 gateways.
WHOLE_EVERY_S = 600.0
CONNECT_GRACE_S = 10.0  # a gateway still making its first connection is pending, not failed (unless
# its driver says retrying will not mend it: ``Health.hard``)
# What a gateway holds is recorded at most this often: serializing and storing it is O(device),
# and an attach changes it on every gateway of the group. The pass's outcome (realized
# generation, errors, faults) is recorded at once; this replica's API reads the fresh actual
# state from the workers (``Reconciler.actual_here``), other replicas' within this time. A large
# state waits longer: encoding it takes at most ACTUAL_COST_SHARE of the time (100,000 remote MACs
# took 0.25 s to encode and as long to store, each second, and attaches there took 8x as long).
ACTUAL_EVERY_S = 1.0
ACTUAL_COST_SHARE = 0.02


def refresh_at(last_write: float) -> float:
    """When an idle gateway's contact refresh is due (``time.monotonic()``): the first point of the
    REFRESH_GRID_S grid at least REFRESH_CONTACT_S after its last write."""
    due, grid = last_write + REFRESH_CONTACT_S, REFRESH_GRID_S
    return math.ceil(due / grid) * grid if grid > 0 else due


async def _no_adoption(_name: str, _device: int) -> int | None:
    return None


@dataclass(frozen=True)
class Crew:
    """What a worker is given by its reconciler (one for all its workers)."""

    intent: IntentSource  # what the gateway should hold
    recorder: Recorder  # its observations, batched with the other workers'
    holds: Callable[[str], bool]  # the lease check: may this replica write the gateway now
    learn: Callable[[str, dict[int, frozenset[str]]], None]  # the MACs it learned, for its peers
    forget: Callable[[str], bool]  # a decommissioned gateway whose device holds nothing (in a thread)
    metrics: ReconcileMetrics
    period: float  # seconds between passes when nothing wakes it
    replica: str  # this replica's name, in the apply log
    transitions: Transitions = field(default_factory=Transitions)  # each gateway's state changes, logged once
    # the gateway's mode as the newest committed intent says (None: unknown, the worker's own gateway's)
    mode: Callable[[str], str | None] = field(default=lambda _name: None)
    # the epoch of this replica's lease on the gateway, which goes to the device with each write (None:
    # no epoch, the write is fenced by the lease's clock alone: ``holds``)
    epoch: Callable[[str], int | None] = field(default=lambda _name: None)
    # the device holds a higher epoch while the lease is still this replica's: the epoch to write under
    # now, or None (``Holding.adopt``)
    adopt: Callable[[str, int], Awaitable[int | None]] = field(default=_no_adoption)


class LeaseLapsed(DeviceError):
    """This replica may not write the gateway now (its lease lapsed or moved): no device fault."""


class ModeHeld(LeaseLapsed):
    """The gateway was switched to observe or maintenance mode: silonet writes nothing there now."""


def actual_dict(actual: ActualState) -> dict:
    """What the device holds, as recorded and shown (``actual``)."""
    return actual_json.encode(actual.owned, actual.local_macs)


def _port_faults(bindings: Iterable[tuple[str, int]], faults: dict[str, list[str]]) -> dict[tuple[str, int], str]:
    """Bindings written to a port that reports a fault: the device holds them but does not carry
    them (hardware_vtep ``invalid_vlan_map``: the mapping "could not be instantiated"). They
    are failures of their attachments, not of the gateway: its other ports go on."""
    if not any(kind.startswith("port ") for kind in faults):
        return {}
    return {(port, vlan): f"port '{port}' reports {', '.join(faults[f'port {port}'])}: the gateway does not "
                          "carry its VLAN bindings until the fault clears"
            for port, vlan in bindings if f"port {port}" in faults}


class Worker:
    """Reconciles one gateway through its driver."""

    def __init__(self, gateway: Gateway, crew: Crew) -> None:
        self.crew = crew
        self.gateway = gateway
        self.name = gateway.name
        self.driver: Driver = registry(gateway.management.driver)(gateway, self._device_changed)
        self.event = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task | None = None
        self.passes = 0
        self._stopping = False
        self.started = time.monotonic()
        # the first connection's grace runs from here, or from the first pass after its turn to
        # connect came (None: queued, ``Health.queued``)
        self._grace_from: float | None = self.started
        self._ever_connected = False
        self._driver_started = False  # maintenance: a worker never contacts its gateway
        self._last: tuple | None = None
        self._last_write = 0.0
        self.desired_seen = -1  # the gateway's desired generation the worker was last woken for
        self._settled_at: float | None = None  # when the last pass found everything in place
        self._settled_obs: Observation | None = None  # what it recorded (a contact refresh records it again)
        self._dirty = True  # woken for the desired state, not only by the device
        self.cause: str | None = None  # request id(s) of the write(s) the next pass realizes
        self.standing: Standing | None = None  # as the last settled pass left it (plan/standing.py)
        self.settled = {"whole": 0, "part": 0}  # settled passes by what they compared
        self._whole_at = 0.0  # when a pass last compared everything
        self.actual: ActualState | None = None  # as the last settled pass read it
        self._actual_sent: ActualState | None = None  # as last recorded ...
        self._actual_at = -ACTUAL_EVERY_S  # ... at this monotonic time
        self._actual_gap = ACTUAL_EVERY_S  # until the next may go: longer for a state slow to encode
        self._flush: asyncio.Task | None = None  # records ``actual`` once ACTUAL_EVERY_S has passed

    async def start(self) -> None:
        if self.mode != "maintenance":  # the newest mode known, not only the supervisor's last load
            await self.driver.start()
            self._driver_started = True
        self.task = asyncio.create_task(self._run(), name=f"reconcile {self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self.task is not None:
            await cancel(self.task, f"worker of gateway {self.name}")
        if self._flush is not None:
            await cancel(self._flush, f"actual-state recorder of gateway {self.name}")
        try:  # what it holds now, not up to ACTUAL_EVERY_S ago (when the lease is still ours)
            await asyncio.wait_for(self._record_actual(), 5)
        except Exception:
            log.exception("gateway %s: recording its actual state on stop failed", self.name)
        if self._driver_started:
            await self.driver.close()

    @property
    def mode(self) -> str:
        """enforce, observe or maintenance: observe or maintenance when either the newest change this
        process heard of or the intent the last pass compiled says so (another process's write reaches
        the cache before the supervisor hears of it), else the worker's gateway's."""
        heard = self.crew.mode(self.name) or self.gateway.mode
        compiled = self.crew.intent.modes.get(self.name, "enforce")
        return heard if heard != "enforce" else compiled

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
            woken = await wait_event(self.event, backoff or self._idle_for())
            self.event.clear()
            if self._quiet(woken):
                if self._settled_obs is not None and self.driver.health().connected:
                    await self._record(self._settled_obs)  # written once each REFRESH_CONTACT_S
                continue
            try:
                await self.reconcile()
                backoff = 0.0
            except LeaseLapsed:
                backoff = 0.5  # not the device's fault: try again as soon as a lease round renews it
            except Fenced as err:
                backoff = await self._fenced(err, backoff)
            except DeviceError as err:
                backoff = min(max(backoff * 2, 0.5), BACKOFF_MAX_S)
                health = self.driver.health()
                if not self._ever_connected and not health.hard:
                    if health.queued:  # its turn to connect has not come: the grace starts then
                        self._grace_from, backoff = None, 0.0  # the driver tells when it connects
                        continue
                    if self._grace_from is None:  # the first pass since its turn came
                        self._grace_from = time.monotonic()
                    if time.monotonic() - self._grace_from < CONNECT_GRACE_S:
                        backoff = 0.5  # still connecting for the first time: wait for it, say nothing yet
                        continue
                await self._record(Observation(reachable=health.connected, realized_generation=None,
                                               error=err.fields.get("reason", str(err))))
            except Exception as err:
                log.exception("gateway %s: reconcile pass failed", self.name)
                backoff = min(max(backoff * 2, 0.5), BACKOFF_MAX_S)
                await self._record(Observation(reachable=self.driver.health().connected, realized_generation=None,
                                               error=f"internal error: {err}"))

    async def _fenced(self, err: Fenced, backoff: float) -> float:
        """The device refused the write: it took one under a higher lease epoch. Either a successor
        wrote there (this replica stalled past its lease: like ``LeaseLapsed``, it stops, and the
        next lease round hands the gateway over), or the database still gives this replica the
        lease and the device's epoch predates the lease's history (the gateway deleted and added
        again, a restored database): the lease then moves past it and the pass runs again soon.
        Returns the backoff: it grows while refusals repeat (no retry storm)."""
        crew, device, epoch = self.crew, err.fields["device"], err.fields["epoch"]
        apply_log.warning("gateway %s: the device refused the write of replica %s: it holds lease epoch %d, "
                          "newer than this replica's %d", self.name, crew.replica, device, epoch)
        if (moved := await crew.adopt(self.name, device)) is not None:
            apply_log.warning("gateway %s: replica %s still holds the lease: its epoch moves past the device's "
                              "(%d -> %d)", self.name, crew.replica, epoch, moved)
            return min(max(backoff * 2, 0.1), BACKOFF_MAX_S)
        await self._record(Observation(reachable=self.driver.health().connected, realized_generation=None,
                                       error=err.fields["reason"]))  # recorded only while the lease is ours
        return min(max(backoff * 2, 0.5), BACKOFF_MAX_S)

    def _idle_for(self) -> float:
        """How long to sleep when nothing wakes the worker: the period, but a gateway that settled
        and whose driver tells of every device change (``_quiet``) has nothing to do until its
        contact refresh or its whole pass is due (1,000 of them woke 100 times a second for nothing)."""
        period = self.crew.period
        settled = self._settled()
        if settled is None:
            return period
        due = min(settled + WHOLE_EVERY_S, refresh_at(self._last_write)) - time.monotonic()
        return max(due, min(period, 1.0))

    def _settled(self) -> float | None:
        """When the last pass settled, if nothing was asked of the worker since and its driver tells
        of every device change (else None: only a pass can tell)."""
        return None if self._dirty or not self.driver.notifies else self._settled_at

    def _quiet(self, woken: bool) -> bool:
        """Nothing to do: the desired state did not change, the last pass settled less than
        WHOLE_EVERY_S ago, and the driver, which tells of every device change, shows the very
        state that pass read (the echo of silonet's own write wakes the worker too). Reading
        again would only cost CPU: 1,000 idle gateways must not keep a core busy."""
        settled = self._settled()
        if settled is None:
            return False
        if time.monotonic() - settled >= WHOLE_EVERY_S:
            return False
        return not woken or self.driver.unchanged()

    async def reconcile(self) -> None:
        """One pass, timed, its log lines under the request id of the write(s) that woke it (the id
        stays in the worker task's context until the next pass, so its error lines carry it too)."""
        REQUEST_ID.set(self.cause)
        self.cause = None
        started, ok = time.perf_counter(), False
        self.crew.recorder.passing(self.name, True)  # an intent change's rechecks wait for its record
        try:
            await self._pass()
            ok = True
        finally:
            self.crew.recorder.passing(self.name, False)
            self.crew.metrics.pass_done(self.name, started, ok)

    async def _pass(self) -> None:
        """Read, diff, apply, read back, record: where something changed since the last settled
        pass when the intent and the driver can tell what (``Standing``), else everything (and
        at least every WHOLE_EVERY_S, so a change nobody told of is still found)."""
        crew = self.crew
        self._settled_at = self._settled_obs = None
        self._dirty = False
        if (mode := self.mode) != "enforce" or not self._driver_started:
            await self._held(mode)
            return
        self._ever_connected |= self.driver.health().connected
        standing, self.standing = self.standing, None  # kept only by a pass that settles
        if standing is not None and time.monotonic() - self._whole_at >= WHOLE_EVERY_S:
            standing = None
        for _attempt in range(MAX_ATTEMPTS):
            actual = await self.driver.read()
            crew.learn(self.name, actual.local_macs)
            since = None if standing is None else standing.intent
            desired, generation, vnis, loads = await crew.intent.desired(self.name, since)
            if (mode := self.mode) != "enforce":  # the intent just compiled holds it: plan, never write
                await self._held(mode)
                return
            device = None if standing is None else self.driver.changes_since(standing.version)
            if (standing is None or vnis is None or device is None or device.facts
                    or actual.facts is not standing.facts or actual.facts.flood_per_vtep
                    or actual.facts.refuse is not None):  # a refusal may span VNIs: whole
                if vnis is not None:  # a part is not enough here: the whole desired state
                    desired, generation, vnis, loads = await crew.intent.desired(self.name, None)
                settled = await self._whole(desired, generation, actual)
            else:
                settled = await self._part(standing, desired, vnis, device, generation, actual)
            if settled is None:  # the device changed under the write: read and plan again, whole
                standing = None
                continue
            standing, actual = settled
            # A write's read-back may be the first read of a MAC the device learned meanwhile: its
            # own wake-up then finds the device as that read left it (``_quiet``), so relay it here.
            crew.learn(self.name, actual.local_macs)
            self.passes += 1
            kind = "part" if standing.intent is not None else "whole"  # a whole pass builds a fresh one
            self.settled[kind] += 1
            crew.metrics.settled(kind)
            failures = standing.failures | _port_faults(standing.bindings, actual.faults)
            obs = Observation(reachable=True, realized_generation=generation, error=None,
                              faults=actual.faults, binding_errors=binding_errors(failures),
                              foreign=actual.foreign(), drift=0, pending_operations=0)
            await self._record(obs, actual)
            standing.intent = Intent(generation, loads)
            self.standing = standing
            self._settled_at, self._settled_obs = time.monotonic(), obs
            if holds_nothing(actual.owned) and crew.holds(self.name) and await crew.intent.leaving(self.name):
                await asyncio.to_thread(crew.forget, self.name)
            return
        raise DeviceError(gateway=self.name, reason=f"the device kept changing during {MAX_ATTEMPTS} attempts")

    async def _held(self, mode: str) -> None:
        """A pass that writes nothing. observe: read, compile, restrict and diff as an enforce pass
        would, and record what it would apply (``pending_operations``) with what the device holds;
        maintenance: no contact at all, nothing known, no error, no alarm. Into or out of
        maintenance the supervisor replaces the worker (``Reconciler._sync_workers``): the new one
        has a driver, or none in maintenance; until then this one only stops reading."""
        self.standing = None  # the next enforce pass compares everything
        if mode == "maintenance" or not self._driver_started:
            if mode == "maintenance":
                await self._record(Observation(reachable=None, realized_generation=None, error=None, held=True))
            return
        self._ever_connected |= self.driver.health().connected
        actual = await self.driver.read()
        self.crew.learn(self.name, actual.local_macs)
        desired, _generation, _vnis, _loads = await self.crew.intent.desired(self.name, None)
        effective, failures, ops = enforcement(desired, actual.owned, actual.facts)
        held = [key for key in effective.bindings if key in actual.owned.bindings]
        failures = failures | _port_faults(held, actual.faults)
        self.passes += 1
        obs = Observation(reachable=True, realized_generation=None, error=None, faults=actual.faults,
                          binding_errors=binding_errors(failures), foreign=actual.foreign(), drift=len(ops),
                          pending_operations=len(ops), held=True)
        await self._record(obs, actual)
        self._settled_at, self._settled_obs = time.monotonic(), obs

    async def _whole(self, desired: GatewayState, generation: int,
                     actual: ActualState) -> tuple[Standing, ActualState] | None:
        """The full pass: every VNI and binding compared."""
        effective, failures, ops = enforcement(desired, actual.owned, actual.facts)
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
        margin outlasts one write), and under its epoch, which the device checks in the write's
        own transaction: a replica that stalls after this check is refused by the device once a
        successor wrote (``Fenced``). Logged with the replica and the wall-clock interval, so
        writes of different replicas to one gateway can be shown never to overlap."""
        crew = self.crew
        if (mode := self.mode) != "enforce":  # switched while this pass planned: it writes nothing now
            raise ModeHeld(gateway=self.name, reason=f"in {mode} mode: not writing")
        if not crew.holds(self.name):
            apply_log.warning("gateway %s: not writing: replica %s no longer holds its lease", self.name,
                              crew.replica)
            raise LeaseLapsed(gateway=self.name, reason=f"replica {crew.replica} no longer holds the gateway")
        epoch = crew.epoch(self.name)
        start, refused = time.time(), False
        try:
            result = await self.driver.apply(ops, None if epoch is None else Fence(epoch, crew.replica))
        except Fenced:
            refused = True  # nothing written: ``_fenced`` says so
            raise
        finally:
            if not refused:
                apply_log.info("gateway %s: applied %d operation(s) for generation %d (replica %s, %.6f-%.6f)",
                               self.name, len(ops), generation, crew.replica, start, time.time())
        if not result.retry:
            crew.metrics.applied(ops)
        return result

    async def _record(self, obs: Observation, actual: ActualState | None = None) -> None:
        """Write only what changed (and refresh last contact now and then): idle costs nothing.
        ``actual`` goes with the observation when ACTUAL_EVERY_S passed since it last went,
        else a little later on its own (the newest by then)."""
        self.crew.metrics.observed(self.name, obs)
        self.crew.transitions.observe(self.name, obs)
        now = time.monotonic()
        with_actual = False
        if actual is not None:
            self.actual = actual
            if not self._actual_recorded(actual):
                if now - self._actual_at >= self._actual_gap:
                    obs, with_actual = replace(obs, actual=self._encoded(actual)), True
                elif self._flush is None or self._flush.done():
                    self._flush = asyncio.create_task(self._flush_actual(), name=f"actual {self.name}")
        key = (obs.reachable, obs.realized_generation, obs.error, obs.faults, obs.binding_errors, obs.foreign,
               obs.drift, obs.pending_operations)
        if not with_actual and key == self._last and now - self._last_write < REFRESH_CONTACT_S:
            return
        if await self.crew.recorder.submit(self.name, obs):  # one not recorded must not pass for written
            self._last, self._last_write = key, now
            if with_actual:
                self._actual_sent, self._actual_at = actual, now

    def _encoded(self, actual: ActualState) -> dict:
        """``actual_dict(actual)``; the time it took sets the gap until the next (``ACTUAL_COST_SHARE``)."""
        t0 = time.perf_counter()
        out = actual_dict(actual)
        self._actual_gap = max(ACTUAL_EVERY_S, (time.perf_counter() - t0) / ACTUAL_COST_SHARE)
        return out

    def _actual_recorded(self, actual: ActualState) -> bool:
        sent = self._actual_sent
        return sent is not None and (sent is actual or (sent.owned == actual.owned
                                                         and sent.local_macs == actual.local_macs))

    async def _flush_actual(self) -> None:
        await asyncio.sleep(max(self._actual_at + self._actual_gap - time.monotonic(), 0.0))
        await self._record_actual()

    async def _record_actual(self) -> None:
        """The newest actual state, unless already recorded."""
        actual = self.actual
        if actual is None or self._actual_recorded(actual):
            return
        if await self.crew.recorder.submit(self.name, ActualSnapshot(self._encoded(actual))):
            self._actual_sent, self._actual_at = actual, time.monotonic()
