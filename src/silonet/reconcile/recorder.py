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
from silonet.signals import EventFeed, RealizationBoard
from silonet.store.db import Database
from silonet.store.repo import ActualSnapshot, Observation, Repository


@dataclass(frozen=True)
class Recheck:
    """Nothing to record: an intent change moved this gateway, so its condition and its attachments'
    statuses are announced again (an attach to a gateway that stays down is recorded by nobody)."""


Record = Observation | ActualSnapshot | Recheck
Watch = Callable[[Iterable[str]], list[announce.Watched]]  # the attachments gateways' records move


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
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="reconcile-recorder")
        await fut
        return True

    async def recheck(self, gateways: Iterable[str]) -> None:
        """Announce what an intent change moved at ``gateways`` (whoever holds them)."""
        if self.watch is not None:
            await asyncio.gather(*(self.submit(g, Recheck()) for g in sorted(gateways)))

    async def drain(self, grace: float = 10.0) -> None:
        """Until what was submitted is written (or ``grace`` s passed): on stop."""
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=grace)

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

    def _record_many(self, batch: list[tuple[str, Record]]) -> None:
        passes = [(g, o) for g, o in batch if isinstance(o, Observation)]
        moved = {g for g, o in passes if self._said.get(g) != _status_of(o)}
        moved |= {g for g, o in batch if isinstance(o, Recheck)}
        announcing = self.watch is not None and bool(moved)
        watch = self.watch(sorted(moved)) if announcing and self.watch is not None else []
        published: list[int] = []
        with self.db.status_session() as s:
            repo = Repository(s)
            if announcing:
                announce.lock(s)  # first: intent writes take it first too
            repo.record_many([(g, o) for g, o in batch if not isinstance(o, Recheck)])  # autobegins
            if announcing:
                published = announce.announce(s, moved, watch)
                if published and s.get_bind().dialect.name == "postgresql":
                    s.execute(text("SET LOCAL synchronous_commit TO ON"))  # events and deliveries are durable
            s.commit()
        for g, o in passes:
            self._said[g] = _status_of(o)
        if published and self.feed is not None:
            self.feed.published()
        self.board.recorded({g: o.realized_generation for g, o in passes if o.realized_generation is not None},
                            [g for g, o in passes if o.error or o.held])


def _status_of(obs: Observation) -> tuple:
    """What of an observation an attachment's or a gateway's status depends on."""
    return (obs.reachable, obs.realized_generation, obs.error, obs.held,
            tuple(sorted((obs.binding_errors or {}).items())))
