"""Shared fixtures: a fresh migrated SQLite database per test, the API client, a seeded
inventory (examples/topology.yaml) and a snapshot of every row for 'nothing written' checks."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import text

from silonet.config import Settings
from silonet.lab import Lab
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service.topology import parse_topology
from silonet.store.db import Database
from silonet.store.tables import Base

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "topology.yaml"
# Test labs keep their state here, one folder per prefix, so a run that was killed halfway
# is taken down (by its pid files and namespace names) by the next run, not left in its way.
TEST_LABS = Path(tempfile.gettempdir()) / "silonet-test-labs"
ADMIN_TOKEN = "snt_test-admin-token-not-a-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def eventually(check: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Wait for ``check`` (a reconciler's pass, a device's change), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _own_cli_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's config file of whoever runs the tests (`silonet login`) stays out of them."""
    monkeypatch.setenv("SILONET_CONFIG", str(tmp_path_factory.getbasetemp() / "cli-config.json"))


@pytest.fixture(scope="session", autouse=True)
def _own_secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Credentials references point only into SILONET_SECRETS_DIR (labs put their client key
    there): the tests' own folder, not the data directory of whoever runs them."""
    path = tmp_path_factory.getbasetemp() / "secrets"
    path.mkdir(mode=0o700, exist_ok=True)
    with mock.patch.dict(os.environ, {"SILONET_SECRETS_DIR": str(path)}):
        yield path

pytest_plugins = ["tests.pg"]  # database_url (SQLite or PostgreSQL) and the PostgreSQL server


def fresh_lab(prefix: str, index: int) -> Lab:
    """A test lab whose leftovers from an earlier, interrupted run are removed first."""
    lab = Lab(prefix, index, TEST_LABS)
    if lab.exists():
        lab.down()
    return lab



@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database: SQLite, or each engine in turn where tests/pg.py says so."""
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def manager(db: Database) -> Manager:
    return Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10010), admin_token=ADMIN_TOKEN))


@pytest.fixture
def client(manager: Manager):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from silonet.api.app import create_app

    with TestClient(create_app(manager), headers=ADMIN) as c:
        yield c


@pytest.fixture
def seeded(manager: Manager) -> Manager:
    """The example topology: four silos, four gateways, two networks."""
    manager.apply(parse_topology(EXAMPLE.read_text(), str(EXAMPLE)))
    return manager


Snapshot = Callable[[], dict[str, list[tuple]]]


@pytest.fixture
def snapshot(db: Database) -> Snapshot:
    """Every row of every table (audit and generation included): equal before and after a
    rejected request proves it wrote nothing."""

    def take() -> dict[str, list[tuple]]:
        with db.engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t.name} ORDER BY 1"))]
                for t in Base.metadata.sorted_tables
            }

    return take
