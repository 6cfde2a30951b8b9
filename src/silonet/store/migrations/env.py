"""Alembic environment: the engine comes from ``Database.alembic_config``."""

from alembic import context
from sqlalchemy import text

from silonet.store.tables import Base

MIGRATION_LOCK = int.from_bytes(b"silonet")  # a PostgreSQL advisory lock key of our own

config = context.config
engine = config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration rebuilds a table: it copies it, then drops the old one, and with foreign
        # keys on that drop deletes every row referencing it (ON DELETE CASCADE) or fails. SQLite's
        # own recipe: foreign keys off outside the transaction, checked before commit, on again after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            # Processes started together migrate one at a time (the lock holds until this transaction
            # ends): the next reads the version after the first committed and finds nothing to do.
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            elif sqlite:
                # the write lock now, not at the first write (Python's sqlite3 would run the DDL outside any
                # transaction)
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
            context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                raise RuntimeError(f"the migration would leave rows breaking foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
