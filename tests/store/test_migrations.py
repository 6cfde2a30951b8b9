"""The Alembic history builds exactly the tables the code declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from silonet.store.db import Database
from silonet.store.tables import Base, Meta


def test_migrations_match_the_declared_tables(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_seeds_the_generation(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    database.upgrade()
    database.upgrade()
    assert set(inspect(database.engine).get_table_names()) >= {t.name for t in Base.metadata.sorted_tables}
    with database.read() as s:
        assert s.execute(select(Meta.generation)).scalar_one() == 0
    database.dispose()
