"""Gateway leases: several ``silonet serve`` replicas share one database, and each gateway is
driven by exactly one of them at a time.

A lease is a row (gateway, owner, expires_at). Every time is the DATABASE's clock (``now()``
on PostgreSQL, ``'now'`` on SQLite), never a replica's: clock skew between replicas cannot
make two owners. A replica renews all its leases in one statement per round and takes free or
expired ones with one upsert whose conflict branch only fires when the old lease expired
(or is its own), so two replicas racing for a gateway get one owner.

A replica must also stop writing before the database lets another take over: the caller
fences by its own monotonic clock, ``valid_until`` = (time before the round) + TTL - margin,
which ends before the database's expiry.

A clock cannot fence a replica that stalls between its check and its write (SIGSTOP, a long
pause, a slow device): so each lease has an ``epoch``, one more every time a replica TAKES it
(inserted, or taken once expired: another's, a dead one's, or its own that lapsed) and unchanged
while it is renewed. It goes to the device with every write (``drivers.base.Fence``), and the
device refuses a write under a lower epoch than one it already took. It must never go back for
a gateway: a lease given back (``release``) or freed from a dead replica is expired, never
deleted, so its row keeps the epoch. What no row can keep (a gateway deleted and added again on
the same device, a database restored from a backup) the owner learns from the device's refusal
and passes (``adopt``).
"""

from __future__ import annotations

import math
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import DateTime, case, delete, func, literal, or_, select, type_coerce, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from silonet.store.tables import GatewayLeaseRow, GatewayRow, ReplicaRow

LEASE_TTL_S = 6.0
LEASE_BUSY_S = 1.0  # at most this long a round waits for a lock before it is tried again


def busy(err: BaseException) -> bool:
    """Whether a round failed only for a lock it waited for too long (SQLite's write lock held by
    another writer, PostgreSQL's ``lock_timeout``): nothing is wrong, try again soon."""
    if not isinstance(err, OperationalError):
        return False
    return "database is locked" in str(err.orig) or getattr(err.orig, "sqlstate", None) == "55P03"


def _pid_namespace() -> str:
    """Two containers on one host may share its name, not their pid namespace."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def replica_id() -> str:
    """host-pidns-pid-random: unique across hosts and restarts, and says which process it is."""
    return f"{socket.gethostname()}-{_pid_namespace()}-{os.getpid()}-{secrets.token_hex(3)}"


def dead_here(owner: str) -> bool:
    """Whether ``owner`` is a replica of THIS host whose process is gone: its leases can be taken
    at once (a crashed ``silonet serve`` restarted by systemd need not wait out the TTL). Only a
    process on this host can be known dead; any other owner waits for its lease to expire."""
    parts = owner.rsplit("-", 3)
    if (len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] != _pid_namespace()
            or not parts[2].isdigit()):
        return False
    pid = int(parts[2])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def live_replicas(session: Session) -> list[str]:
    """``silonet serve`` replicas whose heartbeat is current (and, on this host, whose process
    lives): while there is one, a gateway deleted from intent is cleaned by a reconciler."""
    ids = session.execute(select(ReplicaRow.id).where(
        ReplicaRow.expires_at > db_time(session.get_bind().dialect.name))).scalars()
    return [i for i in ids if not dead_here(i)]


def db_time(dialect: str, seconds: float = 0.0) -> ColumnElement[datetime]:
    """The database's clock, ``seconds`` ahead. SQLite: the text SQLAlchemy stores datetimes
    as ('YYYY-MM-DD HH:MM:SS.ffffff'), so stored and computed times compare as text."""
    if dialect == "sqlite":
        expr = func.strftime("%Y-%m-%d %H:%M:%f", "now", f"{seconds:+.3f} seconds").concat("000")
    else:
        expr = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds) if seconds else func.now()
    return type_coerce(expr, DateTime(timezone=True))


def owner_now(dialect: str) -> ColumnElement[str | None]:
    """A gateway's current owner (None when its lease expired), for outer joins."""
    L = GatewayLeaseRow
    return case((L.expires_at > db_time(dialect), L.owner), else_=None)


@dataclass(frozen=True)
class Round:
    """What one lease round left this replica with."""

    held: frozenset[str]  # gateway names it owns now
    valid_until: float  # monotonic: apply only before this
    replicas: int  # live replicas, this one included
    excess: frozenset[str]  # held beyond its share: give back (after stopping their workers)
    next_expiry_s: float | None  # until another replica's lease expires (database clock), if any
    epochs: Mapping[str, int] = field(default_factory=dict)  # gateway held -> its lease epoch


class Leases:
    """The lease rounds of one replica (synchronous: callers run them in a thread)."""

    def __init__(self, db, owner: str | None = None, ttl: float = LEASE_TTL_S,  # type: ignore[no-untyped-def]
                 margin: float | None = None, replicas_at_least: int = 1) -> None:
        self.db = db
        self.owner = owner or replica_id()
        self.ttl = ttl
        # the replicas known to be coming (``serve --workers N``'s siblings): the first to start does
        # not take every gateway only to give most back a round later (1,000 connections opened,
        # then closed)
        self.replicas_at_least = replicas_at_least
        self.margin = ttl / 6 if margin is None else margin  # > an apply's duration: it ends before expiry
        # a round waits this long for a lock, then fails and is tried again (reconcile/holding.py): a
        # renewal every TTL/3 may be late by TTL - margin - TTL/3 (3 s of 6) before the leases lapse
        self.busy_s = min(ttl / 6, LEASE_BUSY_S)
        self._held: dict[str, int] = {}  # gateway -> epoch, as the last round left them (``round``) ...
        self._known = False  # ... when it ended well
        self._lock = threading.Lock()  # ``adopt`` runs in another thread than the rounds
        self.dialect = db.engine.dialect.name

    def _session(self, rounds: bool = False) -> Session:
        """Lease writes on SQLite skip the fsync: they are renewed every few seconds anyway. On
        PostgreSQL they stay durable: a lost renewal after a database crash could let another replica
        in while this one still trusts its fence. A round waits for a lock at most ``busy_s``
        (``Database.lease_session``); giving back and adopting wait as any writer does."""
        if rounds:
            return self.db.lease_session(self.busy_s)
        if self.dialect == "sqlite":
            return self.db.status_session()
        return self.db.sessions()

    def _turn(self) -> AbstractContextManager:
        """On SQLite, this process's recorder lets the round go first (``Database.turns``)."""
        return self.db.turns.first() if self.dialect == "sqlite" else nullcontext()

    def _insert(self):  # type: ignore[no-untyped-def]
        from sqlalchemy.dialects import postgresql, sqlite  # here: the CLI's reads never take a lease

        return (sqlite if self.dialect == "sqlite" else postgresql).insert

    def round(self, limit: bool = True) -> Round:
        """Heartbeat, renew what this replica holds (one statement), take free or expired
        leases up to its share: ceil(gateways / live replicas).

        SQLite has one write lock, shared with the recorder and every intent write: what needs no
        lock is read before the first write (on SQLite a read takes none) or after the commit (the
        epochs, only when they may have moved: no other replica can take a running lease), so the
        lock is held for the few writes alone; the recorder of this process lets the round go first
        (``Database.turns``), and the wait for the lock ends after ``busy_s`` (``busy``: the caller
        tries again soon)."""
        L, me = GatewayLeaseRow, self.owner
        lt = L.__table__  # Core, no RETURNING: with 1,000 leases the ORM's bookkeeping was most of the cost
        started = time.monotonic()  # before the database reads its clock: the fence ends first
        now, later = db_time(self.dialect), db_time(self.dialect, self.ttl)
        ins = self._insert()
        with self._lock:  # until this round ends well, what the last one left is not known to hold
            known, self._known = self._known, False
        with self._turn(), self._session(rounds=True) as s:
            others = s.execute(select(ReplicaRow.id, ReplicaRow.expires_at > now).where(ReplicaRow.id != me)).all()
            dead = [o for o, _live in others if dead_here(o)]
            known = known and not dead
            replicas = 1 + sum(1 for o, live in others if live and o not in dead)
            gateways = s.execute(select(func.count()).select_from(GatewayRow)).scalar_one()
            share = math.ceil(gateways / max(replicas, self.replicas_at_least, 1)) if limit else gateways
            # the writes: the write lock from here to the commit
            beat = ins(ReplicaRow).values(id=me, expires_at=later)
            s.execute(beat.on_conflict_do_update(index_elements=[ReplicaRow.id],
                                                 set_={"expires_at": beat.excluded.expires_at}))
            s.execute(delete(ReplicaRow).where(or_(ReplicaRow.expires_at <= now, ReplicaRow.id.in_(dead))))
            if dead:  # crashed on this host: free its gateways now, not after the TTL (expired: epochs kept)
                s.execute(update(lt).where(lt.c.owner.in_(dead)).values(expires_at=now))
            # only leases still running: one that lapsed is taken again below, under a new epoch
            renewed = s.execute(update(lt).where(lt.c.owner == me, lt.c.expires_at > now)
                                .values(expires_at=later)).rowcount
            if share > renewed:
                free = list(s.execute(select(GatewayRow.id).outerjoin(L, L.gateway_id == GatewayRow.id)
                                      .where(or_(L.gateway_id.is_(None), L.expires_at <= now))).scalars())
                random.shuffle(free)  # replicas starting together contend for different gateways
                if take := free[:share - renewed]:
                    grab = ins(L).from_select(
                        ["gateway_id", "owner", "expires_at", "epoch"],
                        select(GatewayRow.id, literal(me), later, literal(1)).where(GatewayRow.id.in_(take))
                        .order_by(GatewayRow.id))  # rows locked in one order by everyone: no deadlock
                    grab = grab.on_conflict_do_update(  # only an expired lease: taken, one epoch on
                        index_elements=[L.gateway_id],
                        set_={"owner": grab.excluded.owner, "expires_at": grab.excluded.expires_at,
                              "epoch": L.epoch + 1},
                        where=L.expires_at <= now)
                    s.execute(grab)
                    known = False
            s.commit()
        with self.db.read() as s:  # the recorder's turn again
            with self._lock:
                # what this replica holds now: its running leases are its own until they expire. Renewed
                # as many as the last round left it, and took none: the same (a lease is gained only by
                # taking it), under the same epochs (``adopt`` notes its own); else read (1,000 rows)
                if not known or renewed != len(self._held):
                    self._held = dict(s.execute(select(GatewayRow.name, L.epoch).join(L, L.gateway_id == GatewayRow.id)
                                                .where(L.owner == me, L.expires_at > now)).all())
                epochs = dict(self._held)
                self._known = True
            nearest, clock = s.execute(select(func.min(L.expires_at), now)
                                       .where(L.owner != me, L.expires_at > now)).one()
        ordered = sorted(epochs)
        excess = frozenset(random.sample(ordered, len(ordered) - share)) if len(ordered) > share else frozenset()
        wait = None if nearest is None else (nearest - clock).total_seconds()
        return Round(frozenset(ordered), started + self.ttl - self.margin, replicas, excess, wait, epochs)

    def adopt(self, gateway: str, device: int) -> int | None:
        """The device refused a write under a lower epoch than its own while the database still gives
        this replica the lease: that epoch is from before this lease's history (the gateway was
        deleted and added again, the database restored from a backup), since a successor could
        only have written after taking this very lease. Move past it (``device`` + 1) in one
        statement that holds only while the lease is this replica's and running. Returns the
        epoch to write under, or None when the lease is no longer this replica's."""
        lt, me = GatewayLeaseRow.__table__, self.owner
        now = db_time(self.dialect)
        mine = (lt.c.gateway_id == select(GatewayRow.id).where(GatewayRow.name == gateway).scalar_subquery(),
                lt.c.owner == me, lt.c.expires_at > now)
        with self._session() as s:
            s.execute(update(lt).where(*mine, lt.c.epoch <= device).values(epoch=device + 1))
            epoch = s.execute(select(lt.c.epoch).where(*mine)).scalar_one_or_none()
            s.commit()
        with self._lock:
            if epoch is not None and gateway in self._held:
                self._held[gateway] = epoch
        return epoch

    def release(self, gateways: Iterable[str] | None = None) -> None:
        """Give leases back (all of them, and the heartbeat, when ``gateways`` is None): call
        only after the gateways' workers stopped. Expired at once, not deleted: the epoch stays."""
        L = GatewayLeaseRow
        with self._session() as s:
            q = update(L.__table__).where(L.owner == self.owner, L.expires_at > db_time(self.dialect)).values(
                expires_at=db_time(self.dialect))
            if gateways is not None:
                names = sorted(gateways)
                if not names:
                    return
                q = q.where(L.gateway_id.in_(select(GatewayRow.id).where(GatewayRow.name.in_(names))))
            else:
                s.execute(delete(ReplicaRow).where(ReplicaRow.id == self.owner))
            s.execute(q)
            s.commit()

    def owners(self) -> dict[str, str]:
        """Gateway -> owner, unexpired leases only."""
        L = GatewayLeaseRow
        with self.db.read() as s:
            return dict(s.execute(select(GatewayRow.name, L.owner).join(L, L.gateway_id == GatewayRow.id)
                                  .where(L.expires_at > db_time(self.dialect))).all())
