"""Batched recording: what the workers observed goes to the realization records together with
whatever other workers record meanwhile (ten gateways finishing one change at once cost one
database commit, not ten), then onto the realization board, which wakes this process's waiters.
The same transaction announces what changed on the event stream (reconcile/announce.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import text

from silonet.reconcile import announce
from silonet.reconcile.tasks import wait_event
from silonet.signals import EventFeed, RealizationBoard
from silonet.store.db import Database
from silonet.store.repo import ActualSnapshot, Observation, Repository


@dataclass(frozen=True)
class Recheck:
    """Nothing to record: an intent change moved this gateway, so its condition and the statuses of
    the attachments of the networks of ``vnis`` (None: of every network it carries) are announced
    again (an attach to a gateway that stays down is recorded by nobody)."""

    vnis: frozenset[int] | None = None


Record = Observation | ActualSnapshot | Recheck
# Before a batch (``_gather``): rechecks alone wait this long for a pass's observation; once one came,
# the passes of the other gateways the rechecks name (held here) get this much longer to join it.
RECHECK_WAIT_S = 0.05
GATHER_S = 0.02
Watch = Callable[[announce.Scope], list[announce.Watched]]  # the attachments a batch's records may move


class Recorder:
    """Writes observations of the gateways this replica holds (``holds``: the lease check)."""

    def __init__(self, db: Database, board: RealizationBoard, holds: Callable[[str], bool],
                 watch: Watch | None = None, feed: EventFeed | None = None) -> None:
        self.db = db
        self.board = board
        self.holds = holds
        self.watch = watch  # None: announce nothing (tests of the recording alone)
        self.feed = feed
        self._pending: list[tuple[str, Record, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        # per gateway, what of its last observation a status depends on: a batch that moves none of
        # it (a refresh, new faults) announces nothing and costs no status computation
        self._said: dict[str, tuple] = {}
        # gateways whose announcement failed with its batch (what an intent change named is lost
        # then): the next batch that holds them compares everything there
        self._owed: set[str] = set()
        self._submitted = asyncio.Event()  # something was submitted (``_gather`` looks again)

    def record(self, gateway: str, obs: Observation) -> None:
        """One observation, now (in a thread: it waits for the database)."""
        self._record_many([(gateway, obs)])

    async def submit(self, gateway: str, obs: Record) -> bool:
        """Record with the others' (on the event loop). False when not recorded: the lease
        lapsed, so another replica's observations count now."""
        if not isinstance(obs, Recheck) and not self.holds(gateway):
            return False
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((gateway, obs, fut))
        self._submitted.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="reconcile-recorder")
        await fut
        return True

    async def recheck(self, gateways: Iterable[str], vnis: frozenset[int] | None = None) -> None:
        """Announce what an intent change at ``vnis`` (None: anything) moved at ``gateways`` (whoever
        holds them)."""
        if self.watch is not None:
            await asyncio.gather(*(self.submit(g, Recheck(vnis)) for g in sorted(gateways)))

    async def drain(self, grace: float = 10.0) -> None:
        """Until what was submitted is written (or ``grace`` s passed): on stop."""
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=grace)

    async def _write_pending(self) -> None:
        while self._pending:
            await self._gather()
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

    async def _gather(self) -> None:
        """Until the batch is worth writing. An intent change's rechecks wait for the passes it woke:
        one transaction then records them all and announces what moved, and the passes' recording
        (what ``?wait=`` waits for) queues neither behind a transaction of the rechecks' own nor
        behind one of the first pass to finish (ten passes of one attach end milliseconds apart).
        Observations without rechecks go at once; a gateway no pass here records (down, held
        elsewhere) costs the others at most RECHECK_WAIT_S, or GATHER_S after the first pass."""
        loop = asyncio.get_running_loop()
        deadline, gathering = loop.time() + RECHECK_WAIT_S, False
        while True:
            rechecked = {g for g, o, _f in self._pending if isinstance(o, Recheck)}
            observed = {g for g, o, _f in self._pending if isinstance(o, Observation)}
            if not rechecked or (observed and not {g for g in rechecked - observed if self.holds(g)}):
                return
            if observed and not gathering:
                deadline, gathering = min(deadline, loop.time() + GATHER_S), True
            left = deadline - loop.time()
            if left <= 0:
                return
            self._submitted.clear()
            await wait_event(self._submitted, left)

    def _record_many(self, batch: list[tuple[str, Record]]) -> None:
        passes = [(g, o) for g, o in batch if isinstance(o, Observation)]
        moved = {g for g, o in passes if self._said.get(g) != _status_of(o)}
        moved |= {g for g, o in batch if isinstance(o, Recheck)}
        moved |= self._owed & {g for g, _o in batch}
        scope = self._scope(batch, moved) if self.watch is not None else {}
        try:
            try:
                published = self._write(batch, scope)
            except announce.Widen as wide:  # another writer moved those records meanwhile
                published = self._write(batch, {**scope, **dict.fromkeys(wide.gateways)})
        except BaseException:
            self._owed |= scope.keys()
            raise
        self._owed -= scope.keys()
        for g, o in passes:
            self._said[g] = _status_of(o)
        if published and self.feed is not None:
            self.feed.published()
        self.board.recorded({g: o.realized_generation for g, o in passes if o.realized_generation is not None},
                            [g for g, o in passes if o.error or o.held])

    def _scope(self, batch: list[tuple[str, Record]], moved: set[str]) -> dict[str, announce.Moved | None]:
        """What each moved gateway may move (``announce.Moved``; None: everything there): an intent
        change, its VNIs'; a pass that moved nothing but the realized generation since the last one
        recorded here, the attachments made in between (checked against the stored records in the
        recording's transaction); anything else, or a gateway owed an announcement, everything."""
        out: dict[str, announce.Moved | None] = {}
        for g, o in batch:
            if g not in moved or isinstance(o, ActualSnapshot):
                continue
            if isinstance(o, Recheck):
                part = None if o.vnis is None else announce.Moved(vnis=o.vnis)
            else:
                part = _between(self._said.get(g), o)
            out[g] = announce.merge(out[g], part) if g in out else part
        return {g: None if g in self._owed else m for g, m in out.items()}

    def _write(self, batch: list[tuple[str, Record]], scope: announce.Scope) -> list[int]:
        """One transaction: record the batch, announce what it moved in ``scope``; the events' ids."""
        watch = self.watch(scope) if self.watch is not None and scope else []
        published: list[int] = []
        with self.db.status_session() as s:
            repo = Repository(s)
            if scope:
                announce.lock(s)  # first: intent writes take it first too
            checked = sorted({g for g, o in batch if isinstance(o, Observation) and scope.get(g) is not None})
            before = repo.realizations(checked, observed=False) if checked else {}  # autobegins
            if records := [(g, o) for g, o in batch if not isinstance(o, Recheck)]:
                repo.record_many(records)
            if scope:
                published = announce.announce(s, scope, watch, before)
                if published and s.get_bind().dialect.name == "postgresql":
                    s.execute(text("SET LOCAL synchronous_commit TO ON"))  # events and deliveries are durable
            s.commit()
        return published


def _between(said: tuple | None, obs: Observation) -> announce.Moved | None:
    """The attachments a pass may move after the one last recorded (``said``): those made between
    the two realized generations when nothing else a status reads differs, else every one (None)."""
    now = _status_of(obs)
    if said is None or obs.realized_generation is None or said[1] is None or said[:1] + said[2:] != now[:1] + now[2:]:
        return None
    since, upto = sorted((said[1], obs.realized_generation))
    return announce.Moved(since=since, upto=upto)


def _status_of(obs: Observation) -> tuple:
    """What of an observation an attachment's or a gateway's status depends on."""
    return (obs.reachable, obs.realized_generation, obs.error, obs.held,
            tuple(sorted((obs.binding_errors or {}).items())))
