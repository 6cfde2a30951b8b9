"""Batched recording: what the workers observed goes to the realization records together with
whatever other workers record meanwhile (ten gateways finishing one change at once cost one
database commit, not ten), then onto the realization board, which wakes this process's waiters.
What changed is then announced on the event stream (reconcile/announce.py).

Every transaction here is short, because SQLite has one write lock and the lease rounds share it
(store/leases.py: a round that waited seconds let the leases lapse under their own replica): the
records go in transactions of at most RECORD_CHUNK gateways; the statuses an announcement
compares are judged before any transaction (about a second of CPU for 20,000 attachments of a
hundred gateways each: reconcile/rule.py), and each transaction of at most ANNOUNCE_CHUNK
attachments only checks that the records are still the ones judged and writes the differences;
and a lease round of this process waiting for the lock goes before the next of them
(``Database.turns``). A small recording (an attach's passes: JUDGE_INSIDE) stays one transaction,
judged inside: the fewest round trips.

Large announcements are not repeated back to back: after one that took d seconds, what a batch
moves everywhere at a gateway (its first record, a reconnect: a scope of None) is held for
HOLD_FACTOR x d (at most HOLD_MAX_S) and announced with everything held meanwhile (``_deferred``);
what names VNIs or a span of generations (an attach, an intent change) is announced at once, and a
large such announcement takes what is held along. A converge records a few gateways every tenth
of a second, and each batch's announcement judged every attachment of every network those
gateways carry (most of the fabric's): 10-13 % of the converge's CPU at 200 gateways, judging
statuses that could not change until every carrier was realized. Records, the realization board
and ``?wait`` are never held; the event stream learns of a burst's outcome at most HOLD_MAX_S late.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
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
# ... and where a pass is under way at a rechecked gateway (``passing``): the rechecks wait for its
# observation up to RECHECK_PASS_MAX_S, and once the first came, the other passes under way get
# GATHER_SHARE of the time waited so far (at least GATHER_S, at most GATHER_MAX_S). A 4,094-network
# apply's rechecks were judged alone 50 ms after the intent write, while the passes took seconds: a
# third judgement of every attachment, beside the passes' CPU.
RECHECK_PASS_MAX_S = 10.0
GATHER_SHARE = 0.1
GATHER_MAX_S = 0.5
RECORD_CHUNK = 50  # gateways recorded per transaction
ANNOUNCE_CHUNK = 500  # attachments compared (and announced) per transaction
JUDGE_TRIES = 2  # statuses judged outside the transaction this often before once inside (records kept moving)
JUDGE_INSIDE = 2000  # attachments x their carriers the rule judges inside one small recording (~10 ms)
HOLD_FACTOR = 19.0  # large announcements take at most a twentieth of the recorder's time while batches keep coming
HOLD_MAX_S = 10.0  # ... and none waits longer than this after the batch that moved it
TURN_WAIT_S = 2.0  # at most this long a transaction here waits for a lease round to go first (store/db.Turns)
Watch = Callable[[announce.Scope], list[announce.Watched]]  # the attachments a batch's records may move
log = logging.getLogger(__name__)


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
        # what batches recorded while a large announcement was held back (HOLD_FACTOR): announced
        # together at ``_next_large`` (time.monotonic()), or with the next large batch after it
        self._deferred: dict[str, announce.Moved | None] = {}
        self._next_large = 0.0
        self._draining = False
        # ``record`` runs beside the writer's thread: one recording (and the held scope) at a time
        self._lock = threading.Lock()
        self._submitted = asyncio.Event()  # something was submitted (``_gather`` looks again)
        self._passing: set[str] = set()  # gateways with a pass under way here (``passing``)

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

    def passing(self, gateway: str, under_way: bool) -> None:
        """A pass of ``gateway`` started (True) or ended (on the event loop): rechecks there wait
        for its observation (``_gather``)."""
        if under_way:
            self._passing.add(gateway)
        else:
            self._passing.discard(gateway)
            self._submitted.set()  # one that ended without an observation: look again

    async def recheck(self, gateways: Iterable[str], vnis: frozenset[int] | None = None) -> None:
        """Announce what an intent change at ``vnis`` (None: anything) moved at ``gateways`` (whoever
        holds them)."""
        if self.watch is not None:
            await asyncio.gather(*(self.submit(g, Recheck(vnis)) for g in sorted(gateways)))

    async def drain(self, grace: float = 10.0) -> None:
        """Until what was submitted is written (or ``grace`` s passed): on stop."""
        self._draining = True  # what is held back goes now
        self._submitted.set()
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=grace)

    async def _write_pending(self) -> None:
        while self._pending or self._deferred:
            if self._deferred and self._held_for() <= 0:  # due: before any batch (small ones never take it)
                try:
                    await asyncio.to_thread(self._announce_deferred)
                except Exception:  # kept in ``_deferred``: tried again after the hold
                    log.exception("recorder: announcing what the last batches moved failed")
                    if self._draining:  # stopping: no second try
                        self._deferred.clear()
                continue
            if not self._pending:  # only a held announcement: when due, unless a batch comes first
                self._submitted.clear()
                await wait_event(self._submitted, self._held_for())
                continue
            await self._gather()
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._record_many, [(g, o) for g, o, _ in batch], True)
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
        elsewhere) costs the others at most RECHECK_WAIT_S, or GATHER_S after the first pass; one
        whose pass is under way, at most RECHECK_PASS_MAX_S, or GATHER_MAX_S after the first."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        first: float | None = None  # when the first pass's observation was here
        while not self._draining:
            rechecked = {g for g, o, _f in self._pending if isinstance(o, Recheck)}
            observed = {g for g, o, _f in self._pending if isinstance(o, Observation)}
            waiting = {g for g in rechecked - observed if self.holds(g)}
            if not rechecked or (observed and not waiting):
                return
            now = loop.time()
            under_way = not waiting.isdisjoint(self._passing)
            deadline = start + (RECHECK_PASS_MAX_S if under_way else RECHECK_WAIT_S)
            if observed:
                first = now if first is None else first
                more = max(GATHER_S, min(GATHER_MAX_S, GATHER_SHARE * (first - start))) if under_way else GATHER_S
                deadline = min(deadline, first + more)
            left = deadline - now
            if left <= 0:
                return
            self._submitted.clear()
            await wait_event(self._submitted, left)

    def _record_many(self, batch: list[tuple[str, Record]], defer: bool = False) -> None:
        """Record ``batch`` and announce what it moved (``defer``: what it moves everywhere at a
        gateway may be held, HOLD_FACTOR)."""
        with self._lock:
            self._record_locked(batch, defer)

    def _record_locked(self, batch: list[tuple[str, Record]], defer: bool) -> None:
        passes = [(g, o) for g, o in batch if isinstance(o, Observation)]
        moved = {g for g, o in passes if self._said.get(g) != _status_of(o)}
        moved |= {g for g, o in batch if isinstance(o, Recheck)}
        moved |= self._owed & {g for g, _o in batch}
        scope = self._scope(batch, moved) if self.watch is not None else {}
        try:
            whole = {g for g, part in scope.items() if part is None}
            if defer and whole and self._held_for() > 0:
                # everything at these gateways may have moved (a converge, a reconnect), and a large
                # announcement was made just now: recorded now, announced with the others later;
                # the rest of the batch (an intent change's VNIs, a span) is announced now
                self._hold(dict.fromkeys(whole))
                self._owed -= whole
                scope = {g: part for g, part in scope.items() if part is not None}
            published = self._record_and_announce(batch, scope)
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

    def _record_and_announce(self, batch: list[tuple[str, Record]], scope: dict[str, announce.Moved | None]
                             ) -> list[int]:
        """Record ``batch`` and announce what ``scope`` says it moved (widened in place where another
        writer was there first); the events' ids. A large announcement takes what was held back along."""
        watch: list[announce.Watched] | None = self.watch(scope) if self.watch is not None and scope else []
        if _small(batch, watch):
            try:
                return self._write(batch, scope, watch)
            except announce.Widen as err:  # another writer moved those records: compare everything there
                scope.update(dict.fromkeys(err.gateways))
                watch = None
        if wide := self._store(batch, scope):  # the same, found in the records' own transactions
            scope.update(dict.fromkeys(wide))
            watch = None
        if not scope or self.watch is None:
            return []
        taken = set(self._deferred)
        if taken:
            scope.update(self._take_deferred(scope))
            watch = None
        try:
            return self._timed_announce(scope, self.watch(scope) if watch is None else watch)
        except BaseException:
            self._hold(dict.fromkeys(taken))  # held again: the timer tries them (``scope``'s are owed)
            raise

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

    def _write(self, batch: list[tuple[str, Record]], scope: announce.Scope, watch: list[announce.Watched]
               ) -> list[int]:
        """A small recording (``_small``): one transaction records the batch and announces what it moved
        in ``scope``, judged inside (raises ``announce.Widen``: nothing is written)."""
        self.db.turns.let_first(TURN_WAIT_S)
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

    def _store(self, batch: list[tuple[str, Record]], scope: announce.Scope) -> set[str]:
        """The records, at most RECORD_CHUNK gateways per transaction; the gateways whose record moved
        beyond what ``scope`` says (``announce.covers``: another writer was there since this one's last
        record), from the records as stored before and after, read in the transaction that wrote it."""
        records = [(g, o) for g, o in batch if not isinstance(o, Recheck)]
        wide: set[str] = set()
        for part in chunks(records, RECORD_CHUNK):
            checked = sorted({g for g, o in part if isinstance(o, Observation) and scope.get(g) is not None})
            self.db.turns.let_first(TURN_WAIT_S)
            with self.db.status_session() as s:
                repo = Repository(s)
                if scope:
                    announce.lock(s)  # first: intent writes take it first too
                before = repo.realizations(checked, observed=False) if checked else {}  # autobegins
                repo.record_many(part)
                after = repo.realizations(checked, observed=False) if checked else {}
                s.commit()
            wide.update(g for g, old in before.items() if not announce.covers(scope[g], old, after.get(g)))
        return wide

    def _hold(self, scope: announce.Scope) -> None:
        for g, moved in scope.items():
            self._deferred[g] = announce.merge(self._deferred[g], moved) if g in self._deferred else moved

    def _take_deferred(self, scope: announce.Scope) -> dict[str, announce.Moved | None]:
        """``scope`` and what was held back, merged; nothing is held back after."""
        out, self._deferred = self._deferred, {}
        for g, moved in scope.items():
            out[g] = announce.merge(out[g], moved) if g in out else moved
        return out

    def _held_for(self) -> float:
        """Seconds a large announcement waits now (none while draining)."""
        return 0.0 if self._draining else self._next_large - time.monotonic()

    def _announce_deferred(self) -> None:
        """What the batches held back moved (in a thread); on failure it stays held, everything there."""
        with self._lock:
            self._announce_held()

    def _announce_held(self) -> None:
        scope = self._take_deferred({})
        if not scope or self.watch is None:
            return
        try:
            published = self._timed_announce(scope, self.watch(scope))
        except BaseException:
            self._hold(dict.fromkeys(scope))
            self._next_large = time.monotonic() + HOLD_MAX_S
            raise
        if published and self.feed is not None:
            self.feed.published()

    def _timed_announce(self, scope: announce.Scope, watch: list[announce.Watched]) -> list[int]:
        """``_announce``, and the hold before the next large one: HOLD_FACTOR times what it took."""
        t0 = time.monotonic()
        try:
            return self._announce(scope, watch)
        finally:
            end = time.monotonic()
            self._next_large = end + min(HOLD_MAX_S, HOLD_FACTOR * (end - t0))

    def _announce(self, scope: announce.Scope, watch: list[announce.Watched]) -> list[int]:
        """Announce what ``scope`` and ``watch`` say may have moved; the events' ids. The statuses are
        judged on the records read before any transaction, then announced in transactions of at most
        ANNOUNCE_CHUNK attachments (the gateways' conditions with the first)."""
        judged = self._judge(announce.names(scope, watch), watch) if watch else None
        published: list[int] = []
        for i, part in enumerate(parts(watch, ANNOUNCE_CHUNK)):
            published += self._announce_part(scope if i == 0 else {}, part, judged)
        return published

    def _judge(self, names: set[str], watch: list[announce.Watched]) -> announce.Judged:
        with self.db.read() as s:
            real = Repository(s).realizations(names, observed=False)
        return announce.judge(real, watch)  # no transaction open: the CPU holds no lock

    def _announce_part(self, scope: announce.Scope, watch: list[announce.Watched],
                       judged: announce.Judged | None) -> list[int]:
        """One transaction: it reads the records again and announces the differences when they are
        still the ones judged; when another writer moved one meanwhile, it ends without writing and
        they are judged again (the last try judges inside it)."""
        names = announce.names(scope, watch)
        keys = {(w.network, w.group, w.vlan) for w in watch}
        for attempt in range(JUDGE_TRIES + 1):
            mine = None
            if attempt == 0 and judged is not None:
                mine = announce.Judged({g: r for g, r in judged.real.items() if g in names},
                                       {k: v for k, v in judged.verdicts.items() if k in keys})
            elif attempt < JUDGE_TRIES and watch:
                mine = self._judge(names, watch)
            self.db.turns.let_first(TURN_WAIT_S)
            with self.db.status_session() as s:
                announce.lock(s)
                try:
                    published = announce.announce(s, scope, watch, judged=mine)
                except announce.Stale:
                    continue
                if published and s.get_bind().dialect.name == "postgresql":
                    s.execute(text("SET LOCAL synchronous_commit TO ON"))  # events and deliveries are durable
                s.commit()
            return published
        raise AssertionError("unreachable: the last try judges inside its transaction")


def parts(watch: list[announce.Watched], size: int) -> list[list[announce.Watched]]:
    """``watch`` in parts of about ``size`` attachments, each network's in one part (one at least)."""
    by: dict[str, list[announce.Watched]] = {}
    for w in watch:
        by.setdefault(w.network, []).append(w)
    out: list[list[announce.Watched]] = [[]]
    for network in sorted(by):
        if out[-1] and len(out[-1]) + len(by[network]) > size:
            out.append([])
        out[-1] += by[network]
    return out


def _small(batch: list[tuple[str, Record]], watch: list[announce.Watched]) -> bool:
    """Whether one transaction records and announces the batch (an attach's passes: the fewest round
    trips), the rule judged inside: few gateways, and few attachments times their carriers."""
    return (len({g for g, o in batch if not isinstance(o, Recheck)}) <= RECORD_CHUNK
            and sum(len(w.gateways) for w in watch) <= JUDGE_INSIDE)


def chunks(records: list[tuple[str, Record]], size: int) -> list[list[tuple[str, Record]]]:
    """``records`` in parts of at most ``size`` gateways (each gateway's records in one part, in order)."""
    by: dict[str, list[tuple[str, Record]]] = {}
    for g, o in records:
        by.setdefault(g, []).append((g, o))
    names = sorted(by)
    return [[r for g in names[i:i + size] for r in by[g]] for i in range(0, len(names), size)]


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
