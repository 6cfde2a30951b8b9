"""Alembic environment: the engine comes from ``Database.alembic_config``."""

from alembic import context
from sqlalchemy import text

from silonet.store.tables import Base

MIGRATION_LOCK = int.from_bytes(b"silonet")  # a PostgreSQL advisory lock key of our own

config = context.config
engine = config.attributes["engine"]
with engine.begin() as connection:
    # Processes started together migrate one at a time (the lock holds until this transaction
    # ends): the next reads the version after the first committed and finds nothing to do.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":
        # the write lock now, not at the first write (Python's sqlite3 would run the DDL outside any transaction)
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
