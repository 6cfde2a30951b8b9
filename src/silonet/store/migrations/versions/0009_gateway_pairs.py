"""redundant gateway pairs: gateways.pair, and gateways.vtep_ip no longer unique (the two members
of a pair share their anycast VTEP; model/pairs.py holds who may share one)

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# 0001 left the constraint unnamed: PostgreSQL names it <table>_<column>_key; SQLite's batch mode
# finds it by reflection under the name this convention gives.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _vtep_unique() -> str:
    return "gateways_vtep_ip_key" if op.get_bind().dialect.name == "postgresql" else "uq_gateways_vtep_ip"


def upgrade() -> None:
    with op.batch_alter_table("gateways", naming_convention=SQLITE_NAMES) as batch:
        batch.drop_constraint(_vtep_unique(), type_="unique")
        batch.add_column(sa.Column("pair", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateways", naming_convention=SQLITE_NAMES) as batch:
        batch.drop_column("pair")
        batch.create_unique_constraint(_vtep_unique(), ["vtep_ip"])
