"""PostgreSQL for the tests (a pytest plugin loaded by tests/conftest.py).

One private server for the whole run, started only when a test asks for it, and a fresh
database per test. ``database_url`` is "sqlite" by default; tests under tests/store, tests
that ask for ``database_url`` themselves and tests marked ``both_engines`` run once on
each engine (the ``db`` fixture follows ``database_url``, so they get both for free).
"""

from __future__ import annotations

import inspect
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from silonet.devices import postgres

# SILONET_TEST_ENGINE=postgres runs every other test that uses ``db`` on PostgreSQL too
DEFAULT_ENGINE = os.environ.get("SILONET_TEST_ENGINE", "sqlite")
BOTH_ENGINES_DIRS = ("tests/store/",)
_names = itertools.count(1)


def _on_both(metafunc: pytest.Metafunc) -> bool:
    if metafunc.definition.get_closest_marker("both_engines"):
        return True
    path = Path(str(metafunc.definition.path)).as_posix()
    if any(f"/{d}" in path for d in BOTH_ENGINES_DIRS):
        return True
    return "database_url" in inspect.signature(metafunc.function).parameters


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames and _on_both(metafunc):
        metafunc.parametrize(
            "database_url",
            [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)],
            indirect=True,
        )


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[postgres.Postgres]:
    """One PostgreSQL server for the run; skips (saying why) where none can run."""
    why = postgres.available()
    if why:
        pytest.skip(f"PostgreSQL: {why}")
    postgres.reap_orphans()  # servers of runs that were killed before their teardown
    server = postgres.Postgres(tmp_path_factory.mktemp("postgres")).start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, pg_server: postgres.Postgres) -> Iterator[str]:
    """A fresh, empty database on the run's server, dropped afterwards."""
    name = f"t{next(_names)}_{re.sub(r'[^a-z0-9]+', '_', request.node.name.lower())}"[:63]
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: SQLite (or $SILONET_TEST_ENGINE) unless the test runs on both."""
    engine = getattr(request, "param", DEFAULT_ENGINE)
    if engine == "postgres":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'silonet.db'}"
