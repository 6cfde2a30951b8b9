"""Engine, sessions and migrations for one database URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from silonet import jsontext
from silonet.store.prepared import NEXT_GENERATION

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# A replica that stops between two statements of a transaction (SIGSTOP, a stall, a lost link)
# keeps its row locks: every writer touching those rows (a bump of those gateways' desired
# generation) would wait for it forever. PostgreSQL ends such a transaction after this long;
# silonet's own transactions never sit idle for more than a fraction of it.
IDLE_IN_TRANSACTION_MS = 15_000


def newest_revision() -> str:
    """The head of the migrations: revisions are named by their file's number (``0007_day2.py`` is
    revision ``0007``, down from ``0006``; tests/store/test_migrations.py holds alembic to it)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


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


def _busy_ms(ms: int):  # type: ignore[no-untyped-def]
    """A connect hook setting SQLite's busy timeout (after ``_sqlite_pragmas``' 30 s)."""
    def hook(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(ms)}")
        cur.close()
    return hook


class Turns:
    """Who goes next at SQLite's one write lock, among this process's threads. SQLite's busy handler is
    no queue: a waiting writer polls, sleeping up to 100 ms between tries, while a thread that writes
    one short transaction after another takes the lock again at once and starves it. A lease round
    (store/leases.py) waits ``first``; the recorder lets such a waiter go before each of its
    transactions (``let_first``). Only on SQLite: on PostgreSQL they share no lock."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting = 0

    @contextmanager
    def first(self) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
        try:
            yield
        finally:
            with self._changed:
                self._waiting -= 1
                self._changed.notify_all()

    def let_first(self, timeout: float) -> bool:
        """Until no writer waits ``first`` (at most ``timeout`` s: a round that hangs blocks nobody);
        whether none does."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._waiting, timeout)


def _engine(url: str, **kwargs: Any) -> Engine:
    """An engine whose JSON columns are written and read by ``jsontext`` (orjson): a gateway's recorded
    actual state is ~160 KB at 100 VNIs, and the standard library's encoder was the recorder's
    largest cost in a 1,000-gateway converge."""
    return create_engine(url, json_serializer=jsontext.dumps, json_deserializer=jsontext.loads, **kwargs)


class Database:
    """One database: SQLite file (default) or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = _engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = _engine(url, pool_pre_ping=True, connect_args={
                "options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"})
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._status_sessions: sessionmaker | None = None
        self._lease_sessions: dict[int, sessionmaker] = {}  # busy timeout (ms) -> SQLite lease sessions
        self.turns = Turns()  # lease rounds before the recorder's next transaction (SQLite)

    def status_session(self) -> Session:
        """A session for realization records only. They are observations the reconciler makes
        again after any restart, so their commits need not wait for the disk: on SQLite a
        second engine with ``synchronous=NORMAL`` (WAL: no fsync per commit, still atomic),
        on PostgreSQL ``synchronous_commit=off`` per transaction. Intent stays fully durable."""
        if self._status_sessions is None:
            if self.url.startswith("sqlite"):
                engine = _engine(self.url, connect_args={"timeout": 30})
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

    def lease_session(self, busy_s: float) -> Session:
        """A session for lease rounds, whose wait for a lock ends after ``busy_s``: a round that cannot
        write in time fails at once and is tried again soon (reconcile/holding.py) instead of sitting
        in SQLite's busy handler for 30 s while its leases lapse. SQLite: an engine of its own with that
        busy timeout and, like the records', no fsync per commit (leases are renewed every few seconds
        anyway). PostgreSQL: durable (a lost renewal after a crash could let another replica in while
        this one trusts its fence), ``lock_timeout`` per transaction."""
        ms = max(1, round(busy_s * 1000))
        if not self.url.startswith("sqlite"):
            session = self.sessions()
            session.begin()
            session.execute(text(f"SET LOCAL lock_timeout = {ms}"))
            return session
        if ms not in self._lease_sessions:
            engine = _engine(self.url, connect_args={"timeout": busy_s})
            for hook in (_sqlite_pragmas, _no_fsync, _busy_ms(ms)):
                event.listen(engine, "connect", hook)
            self._lease_sessions[ms] = sessionmaker(engine, expire_on_commit=False)
        return self._lease_sessions[ms]()

    def alembic_config(self) -> Config:
        from alembic.config import Config  # on use: a CLI talking to a server never migrates
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self) -> None:
        """Migrate to the newest schema (idempotent). A database already there is only read:
        migrating takes the database's write lock, which every local CLI command would
        otherwise contend for with a running server. Nor is alembic imported then (a tenth of
        a CLI command's start): the newest revision is the newest file's (``newest_revision``)."""
        try:
            with self.engine.connect() as conn:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
        except Exception:  # no table yet (a new database)
            current = None
        if current != newest_revision():
            from alembic import command

            command.upgrade(self.alembic_config(), "head")

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
        with self.sessions() as session, session.begin():
            generation = session.connection().execute(NEXT_GENERATION).scalar_one()  # Core: every write runs it
            yield session, generation

    def dispose(self) -> None:
        self.engine.dispose()
        for made in (self._status_sessions, *self._lease_sessions.values()):
            if made is not None:
                made.kw["bind"].dispose()
