"""Where PostgreSQL and SQLite differ, silonet behaves the same (these run on both engines),
and the private PostgreSQL server says why when it cannot start."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from silonet.devices import postgres
from tests.conftest import Snapshot


@pytest.mark.parametrize("path,body", [
    ("/v1/silos", {"name": "s1", "kind": "kvm", "description": "a\x00b"}),
    ("/v1/gateways", {"name": "g1", "silo": "s1", "vtep_ip": "198.18.0.1",
                      "management": {"driver": "ovsdb", "address": "tcp:198.18.1.1:6640\x00"}}),
])
def test_nul_in_text_is_refused_before_the_database(client: Any, snapshot: Snapshot, path: str, body: dict) -> None:
    """PostgreSQL text cannot hold U+0000: a 422 naming the field, not a 500 from the driver."""
    assert client.post("/v1/silos", json={"name": "s1", "kind": "kvm"}).status_code == 201
    before = snapshot()
    r = client.post(path, json=body)
    assert r.status_code == 422 and "NUL" in r.json()["message"], r.text
    assert r.json()["field"] in ("description", "management.address")
    assert snapshot() == before


@pytest.mark.postgres
def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    if why := postgres.available():
        pytest.skip(f"PostgreSQL: {why}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = postgres.Postgres(tmp_path / "pg", port=taken.getsockname()[1])
        with pytest.raises(postgres.PostgresError, match="Address already in use"):
            server.start()
        server.stop()


def test_a_stalled_transaction_on_postgresql_gives_its_locks_back(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica stopped inside a transaction (found by tests/e2e/test_replicas.py: a SIGSTOPped
    replica's open status write held the gateway rows a detach had to bump, and the detach hung)
    loses it after IDLE_IN_TRANSACTION_MS; another writer then goes on."""
    import threading
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from silonet.store import db as dbmod

    monkeypatch.setattr(dbmod, "IDLE_IN_TRANSACTION_MS", 300)
    stalled, writer = dbmod.Database(pg_url), dbmod.Database(pg_url)
    stalled.upgrade()
    try:
        with stalled.engine.connect() as conn:
            conn.execute(text("UPDATE meta SET generation = generation WHERE id = 1"))  # holds the row lock
            time.sleep(1.0)
            done: list[int] = []

            def write() -> None:
                with writer.write() as (_session, generation):
                    done.append(generation)

            thread = threading.Thread(target=write, daemon=True)  # waits for good without the timeout
            thread.start()
            thread.join(20)
            assert done, "the writer still waits for the stalled transaction's lock"
            with pytest.raises(DBAPIError, match="idle-in-transaction"):
                conn.execute(text("SELECT 1"))
    finally:
        stalled.dispose()
        writer.dispose()
