"""gateway observations: reachability, last actual state, faults, binding errors, foreign state

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = [
    sa.Column("reachable", sa.Boolean(), nullable=True),
    sa.Column("actual", sa.JSON(), nullable=True),
    sa.Column("faults", sa.JSON(), nullable=True),
    sa.Column("binding_errors", sa.JSON(), nullable=True),
    sa.Column("foreign", sa.JSON(), nullable=True),
    sa.Column("drift", sa.Integer(), nullable=True),
]


def upgrade() -> None:
    with op.batch_alter_table("gateway_status") as batch:
        for col in COLUMNS:
            batch.add_column(col)


def downgrade() -> None:
    with op.batch_alter_table("gateway_status") as batch:
        for col in reversed(COLUMNS):
            batch.drop_column(col.name)
