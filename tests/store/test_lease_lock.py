"""A lease round and the database's write lock (store/leases.py, store/db.py, reconcile/holding.py), on
each engine: the round holds the lock for its writes alone (the renewals one statement, no read in
between), goes first among this process's writers (``Database.turns``), and a round that cannot get
the lock in time fails as busy at once instead of waiting while its leases lapse, and is tried again
soon."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from silonet.reconcile.holding import RETRY_BUSY_S, Holding
from silonet.store.db import Database, Turns
from silonet.store.leases import Leases, busy
from tests.store.test_leases import GATEWAYS, add_gateways

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, bool]]]:
    """Each statement's verb as run (and whether a lease round of this process was waiting its turn
    then), "COMMIT" at each commit."""
    seen: list[tuple[str, bool]] = []

    def before(_conn, _cursor, stmt, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append((stmt.lstrip().split(None, 1)[0].upper(), not db.turns.let_first(0)))

    def commit(_conn) -> None:  # type: ignore[no-untyped-def]
        seen.append(("COMMIT", False))

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "commit", commit)


def write_section(seen: list[tuple[str, bool]]) -> tuple[list[str], list[str]]:
    """The statements from the first write to the commit (while SQLite's write lock is held), and those
    after it."""
    verbs = [v for v, _turn in seen]
    first = next(i for i, v in enumerate(verbs) if v in WRITES)
    end = verbs.index("COMMIT", first)
    return verbs[first:end], verbs[end + 1:]


@contextmanager
def lock_held(db: Database) -> Iterator[None]:
    """Another connection holds what a round must write: SQLite's write lock (a recorder's long
    transaction), on PostgreSQL the lease rows."""
    if db.url.startswith("sqlite"):
        conn = sqlite3.connect(db.url.split("///", 1)[1], timeout=0, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM gateway_leases FOR UPDATE"))
            try:
                yield
            finally:
                conn.rollback()


def test_a_steady_round_holds_the_lock_for_three_writes_alone(db: Database) -> None:
    """The heartbeat, the expired replicas, every renewal in one UPDATE: no read while the lock is held
    (what the round reads it reads before the first write or after the commit), after it only the
    nearest expiry (renewed all it held and took none: the epochs are the last round's, a thousand rows
    not read again), and on SQLite the round waits first among this process's writers until it
    committed."""
    add_gateways(db)
    a = Leases(db, "a", ttl=30)
    assert a.round().held == frozenset(GATEWAYS)  # takes them: a read of the free ones, then the grab
    with statements(db) as seen:
        r = a.round()
    assert r.held == frozenset(GATEWAYS) and r.epochs == dict.fromkeys(GATEWAYS, 1)
    assert write_section(seen) == (["INSERT", "DELETE", "UPDATE"], ["SELECT"])
    commit = [verb for verb, _turn in seen].index("COMMIT")
    assert {turn for _verb, turn in seen[:commit]} == {db.url.startswith("sqlite")}
    assert not any(turn for _verb, turn in seen[commit:]) and db.turns.let_first(0)  # lets go at the commit


def test_a_round_that_cannot_get_the_lock_fails_as_busy_and_the_next_one_renews(db: Database) -> None:
    add_gateways(db)
    a = Leases(db, "a", ttl=3)  # waits busy_s = 0.5 s for a lock
    assert a.round().held == frozenset(GATEWAYS)
    with lock_held(db), pytest.raises(OperationalError) as failed:
        a.round()
    assert busy(failed.value) and not busy(RuntimeError("database is locked"))
    assert a.round().held == frozenset(GATEWAYS)

    async def moved(_r, _lapsed) -> None:  # type: ignore[no-untyped-def]
        return None

    holding = Holding(a, moved)  # the loop tries a busy round again at once, anything else after a second
    assert holding._failed(failed.value, 0) == RETRY_BUSY_S < a.ttl / 3
    assert holding._failed(RuntimeError("no database"), 0) == 1.0


def test_a_waiting_round_goes_first() -> None:
    turns = Turns()
    assert turns.let_first(0)
    got: list[bool] = []
    with turns.first():
        assert not turns.let_first(0)
        waiter = threading.Thread(target=lambda: got.append(turns.let_first(30)))
        waiter.start()
    waiter.join(30)
    assert got == [True]
