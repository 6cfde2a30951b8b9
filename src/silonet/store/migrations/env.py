"""Alembic environment: the engine comes from ``Database.alembic_config``."""

from alembic import context

from silonet.store.tables import Base

config = context.config
engine = config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
