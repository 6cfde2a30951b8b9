"""Engine, sessions and migrations for one database URL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, inspect, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from silonet.store.tables import Meta

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
audit_log = logging.getLogger("silonet.service.audit")  # one line per committed write (who, what: no values)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _no_fsync(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out meanwhile cancelled it
        future.set_result(None)


class Database:
    """One database: SQLite file (default) or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._status_sessions: sessionmaker | None = None
        # called after each write with the generation, the gateways whose desired state it changed
        # and the VNIs it changed them at (None: unknown)
        self.on_commit: list[Callable[[int, frozenset[str], frozenset[int] | None], None]] = []
        from silonet.store.cache import IntentCache

        self.intent = IntentCache()
        self._status = threading.Condition()
        self._status_seq = 0
        self._realized: dict[str, int] = {}  # gateway -> newest realized generation this process recorded
        self._failed_seq: dict[str, int] = {}  # gateway -> status seq at which this process last recorded an error
        # waiters on an event loop (API ``?wait=``): woken through their loop, so none holds a thread
        self._status_futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        # this process's reconcilers: a gateway's actual state as their worker last read it, or None
        self.actual_sources: list[Callable[[str], dict | None]] = []

    def status_session(self) -> Session:
        """A session for realization records only. They are observations the reconciler makes
        again after any restart, so their commits need not wait for the disk: on SQLite a
        second engine with ``synchronous=NORMAL`` (WAL: no fsync per commit, still atomic),
        on PostgreSQL ``synchronous_commit=off`` per transaction. Intent stays fully durable."""
        if self._status_sessions is None:
            if self.url.startswith("sqlite"):
                engine = create_engine(self.url, connect_args={"timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "connect", _no_fsync)
            else:
                engine = self.engine
            self._status_sessions = sessionmaker(engine, expire_on_commit=False)
        session = self._status_sessions()
        if not self.url.startswith("sqlite"):
            session.begin()
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        return session

    def status_changed(self, realized: dict[str, int] | None = None, failed: Iterable[str] = ()) -> None:
        """A realization record changed (the reconciler calls this after its commit), with the
        generations it recorded as realized and the gateways it recorded an error for: a waiter
        in this process need not query the database to learn either."""
        with self._status:
            for gateway, generation in (realized or {}).items():
                if generation > self._realized.get(gateway, -1):
                    self._realized[gateway] = generation
            self._failed_seq.update(dict.fromkeys(failed, self._status_seq + 1))
            self._status_seq += 1
            self._status.notify_all()
            for loop, future in self._status_futures:
                with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone
                    loop.call_soon_threadsafe(_settle, future)

    def failed_since(self, gateways: list[str], seq: int) -> bool:
        """Whether this process recorded an error for one of them after ``seq``."""
        failed = self._failed_seq
        return any(failed.get(g, -1) > seq for g in gateways)

    def realized_here(self, gateways: list[str], generation: int) -> bool:
        """Whether this process committed, for every gateway, a realization of ``generation``
        or newer (realized generations only grow, so the database says the same or more)."""
        realized = self._realized
        return all(realized.get(g, -1) >= generation for g in gateways)

    def actual_here(self, gateway: str) -> dict | None:
        """What the gateway holds as a reconciler of this process last read it (None: not driven
        here). Fresher than the recorded ``actual``, which is written at most every second."""
        for source in self.actual_sources:
            actual = source(gateway)
            if actual is not None:
                return actual
        return None

    def healthy_here(self, gateways: list[str]) -> bool:
        """Whether this process recorded realizations of every gateway and never an error for
        any: then its database records say nothing this process does not know."""
        realized, failed = self._realized, self._failed_seq
        return all(g in realized and g not in failed for g in gateways)

    def status_seq(self) -> int:
        return self._status_seq

    def wait_status(self, seq: int, timeout: float) -> bool:
        """Until a realization changed after ``seq`` was read (True), or ``timeout`` s (False).
        Writers in other processes do not signal here: callers re-check on a short timeout too."""
        with self._status:
            return self._status.wait_for(lambda: self._status_seq != seq, timeout)

    async def wait_status_async(self, seq: int, timeout: float) -> bool:
        """``wait_status`` on the event loop: the waiter holds no thread (a thread per waiter let
        a few dozen ``?wait=`` requests exhaust the pool that every sync route and token check
        share); ``status_changed`` wakes it from any thread through its loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._status:
            if self._status_seq != seq:
                return True
            self._status_futures.add(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._status:
                self._status_futures.discard(entry)
        return self._status_seq != seq

    def alembic_config(self) -> Config:
        from alembic.config import Config  # on use: a CLI talking to a server never migrates
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self) -> None:
        """Migrate to the newest schema (idempotent). A database already there is only read:
        migrating takes the database's write lock, which every local CLI command would
        otherwise contend for with a running server."""
        from alembic import command
        from alembic.script import ScriptDirectory

        cfg = self.alembic_config()
        head = ScriptDirectory.from_config(cfg).get_current_head()
        try:
            with self.engine.connect() as conn:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
        except Exception:  # no table yet (a new database)
            current = None
        if current != head:
            command.upgrade(cfg, "head")

    def is_current(self) -> bool:
        return inspect(self.engine).has_table("meta")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[tuple[Session, int]]:
        """One write transaction. Bumping the generation first takes the write lock on
        SQLite and a row lock on PostgreSQL, so writers are serialized and invariant
        checks made inside see a state nobody else is changing.

        The bump is one ``UPDATE ... RETURNING``, not a read then a write: Python's sqlite3
        runs a SELECT outside the transaction (BEGIN comes with the first write), so a
        writer that read the generation first and then waited for the lock carried on with
        a stale generation and a stale view (two engines attached one VLAN twice: found by
        tests/service/test_concurrency.py)."""
        with self.sessions() as session:
            with session.begin():
                generation = session.execute(
                    update(Meta).where(Meta.id == 1).values(generation=Meta.generation + 1).returning(Meta.generation)
                ).scalar_one()
                yield session, generation
            bumped = frozenset(session.info.pop("bumped", ()))
            vnis = frozenset(session.info.pop("vnis", ()))
            changed = None if session.info.pop("vnis_unknown", False) else vnis
            for line in session.info.pop("audited", ()):
                audit_log.info("generation %d: %s; %d gateway(s) to reconcile", generation, line, len(bumped))
            for listener in self.on_commit:
                listener(generation, bumped, changed)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._status_sessions is not None:
            self._status_sessions.kw["bind"].dispose()
