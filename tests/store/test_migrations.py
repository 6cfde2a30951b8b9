"""The Alembic history builds exactly the tables the code declares."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from silonet.config import Settings
from silonet.store.db import Database, newest_revision
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


def test_upgrade_from_empty_to_head(database_url: str) -> None:
    """On each engine: from no table at all to the newest schema, every declared table there."""
    database = Database(database_url)
    assert inspect(database.engine).get_table_names() == []
    database.upgrade()
    tables = set(inspect(database.engine).get_table_names())
    assert tables == {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
    with database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    with database.write() as (_session, generation):
        assert generation == 1
    database.dispose()


def test_every_revision_up_then_all_down_and_up_again(database_url: str) -> None:
    """On each engine: each step of the history applies in turn, the downgrades undo it all and
    leave nothing behind, and the way up again ends at the declared tables."""
    from alembic import command
    from alembic.script import ScriptDirectory

    database = Database(database_url)
    cfg = database.alembic_config()
    revisions = [r.revision for r in reversed(list(ScriptDirectory.from_config(cfg).walk_revisions()))]
    for revision in revisions:
        command.upgrade(cfg, revision)
    command.downgrade(cfg, "base")
    assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    with database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    database.dispose()


def test_the_newest_revision_is_the_newest_files() -> None:
    """``Database.upgrade`` skips alembic when the database is at ``newest_revision()``: that must
    be alembic's own head, and every revision must be named by its file's number."""
    from alembic.script import ScriptDirectory

    cfg = Database("sqlite://").alembic_config()
    scripts = ScriptDirectory.from_config(cfg)
    assert scripts.get_current_head() == newest_revision()
    for rev in scripts.walk_revisions():
        assert Path(rev.path).name.split("_", 1)[0] == rev.revision, rev.path


def test_a_rebuilt_table_keeps_the_rows_that_reference_it(database_url: str) -> None:
    """0009 rebuilds ``gateways`` (SQLite's batch mode copies it and drops the old one): with foreign
    keys on during the migration, that drop would cascade to ports, group ports and status rows.
    Down to 0008 and up again, on each engine, with the example topology stored: every row stays."""
    from alembic import command
    from sqlalchemy import func

    from silonet.runtime import Runtime
    from silonet.service import Manager
    from silonet.service.topology import parse_topology
    from silonet.store.tables import AttachmentRow, GatewayRow, GatewayStatusRow, GroupPortRow, PortRow
    from tests.conftest import EXAMPLE

    database = Database(database_url)
    database.upgrade()
    Manager(Runtime(database), Settings(database_url=database.url)).apply(
        parse_topology(EXAMPLE.read_text(), str(EXAMPLE)))

    def counts() -> dict[str, int]:
        with database.read() as s:
            return {t.__tablename__: s.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (GatewayRow, PortRow, GroupPortRow, GatewayStatusRow, AttachmentRow)}

    before = counts()
    assert all(before.values()), before
    cfg = database.alembic_config()
    command.downgrade(cfg, "0008")
    command.upgrade(cfg, "head")
    assert counts() == before
    with database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again for the store
    database.dispose()


def test_the_actual_state_moves_to_its_own_table_and_back(database_url: str) -> None:
    """0012 moves each gateway's recorded actual state out of ``gateway_status`` (whose every
    update rewrote it) into ``gateway_actual``, and its downgrade moves it back: nothing is lost."""
    from alembic import command
    from sqlalchemy import text

    from silonet.runtime import Runtime
    from silonet.service import Manager
    from silonet.service.topology import parse_topology
    from silonet.store.repo import ActualSnapshot, Repository
    from tests.conftest import EXAMPLE

    database = Database(database_url)
    database.upgrade()
    Manager(Runtime(database), Settings(database_url=database.url)).apply(
        parse_topology(EXAMPLE.read_text(), str(EXAMPLE)))
    held = {"logical_switches": [], "bindings": [{"port": "p1", "vlan": 100, "vni": 5000}], "remote_macs": [],
            "local_macs": {"5000": ["02:00:00:00:00:01"]}}
    with database.read() as s:
        names = sorted(s.execute(text("SELECT name FROM gateways")).scalars())
    with database.write() as (s, _generation):
        Repository(s).record(names[0], ActualSnapshot(held))

    def recorded() -> dict:
        with database.read() as s:
            return {n: r.actual for n, r in Repository(s).realizations(observed=True).items()}

    assert recorded() == {n: held if n == names[0] else None for n in names}
    cfg = database.alembic_config()
    command.downgrade(cfg, "0011")
    with database.engine.connect() as conn:
        rows = conn.execute(text("SELECT actual FROM gateway_status WHERE actual IS NOT NULL")).scalars().all()
    assert [json.loads(r) if isinstance(r, str) else r for r in rows] == [held]
    command.upgrade(cfg, "head")
    assert recorded() == {n: held if n == names[0] else None for n in names}
    database.dispose()


def test_learned_macs_have_a_table_of_their_own(database_url: str) -> None:
    """0013 copies each recorded state's learned MACs into ``gateway_macs`` (peers read them after
    every lease round, and a JSON path into ``gateway_actual.actual`` parsed the whole state each
    time); a record writes both from then on."""
    from alembic import command
    from sqlalchemy import text

    from silonet.runtime import Runtime
    from silonet.service import Manager
    from silonet.service.topology import parse_topology
    from silonet.store.repo import ActualSnapshot, Repository
    from tests.conftest import EXAMPLE

    database = Database(database_url)
    database.upgrade()
    Manager(Runtime(database), Settings(database_url=database.url)).apply(
        parse_topology(EXAMPLE.read_text(), str(EXAMPLE)))
    with database.read() as s:
        names = sorted(s.execute(text("SELECT name FROM gateways")).scalars())

    def state(*macs: str) -> dict:
        return {"logical_switches": [], "bindings": [], "remote_macs": [],
                "local_macs": {"5000": list(macs), "5001": []}}

    def learned() -> dict:
        with database.read() as s:
            return Repository(s).learned_macs()

    with database.write() as (s, _generation):
        Repository(s).record(names[0], ActualSnapshot(state("02:00:00:00:00:01")))
    # listed only where some were learned
    assert learned() == {names[0]: {5000: frozenset({"02:00:00:00:00:01"}), 5001: frozenset()}}
    with database.engine.connect() as conn:
        column = conn.execute(text("SELECT local_macs FROM gateway_macs")).scalar_one()
    assert (json.loads(column) if isinstance(column, str) else column) == {"5000": ["02:00:00:00:00:01"], "5001": []}

    with database.write() as (s, _generation):  # the same gateway learned nothing, another one some
        Repository(s).record_many([(names[0], ActualSnapshot(state())),
                                   (names[1], ActualSnapshot(state("02:00:00:00:00:03")))])
    assert learned() == {names[1]: {5000: frozenset({"02:00:00:00:00:03"}), 5001: frozenset()}}

    cfg = database.alembic_config()
    command.downgrade(cfg, "0012")
    with database.engine.begin() as conn:  # states the code of 0012 recorded: no table to fill
        conn.execute(text("UPDATE gateway_actual SET actual = :a WHERE gateway_id = (SELECT id FROM gateways "
                          "WHERE name = :n)"), {"a": json.dumps(state("02:00:00:00:00:02")), "n": names[0]})
    command.upgrade(cfg, "head")
    assert learned() == {names[0]: {5000: frozenset({"02:00:00:00:00:02"}), 5001: frozenset()},
                         names[1]: {5000: frozenset({"02:00:00:00:00:03"}), 5001: frozenset()}}
    database.dispose()
