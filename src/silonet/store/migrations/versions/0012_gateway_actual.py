"""gateway_actual: a gateway's actual state in a table of its own, out of gateway_status, whose
small columns change at every pass (SQLite rewrote the whole row, megabytes of it, each time)

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_actual",
        sa.Column("gateway_id", sa.Integer(), sa.ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("actual", sa.JSON(), nullable=False),
    )
    op.execute("INSERT INTO gateway_actual (gateway_id, actual) "
               "SELECT gateway_id, actual FROM gateway_status WHERE actual IS NOT NULL")
    with op.batch_alter_table("gateway_status") as batch:
        batch.drop_column("actual")


def downgrade() -> None:
    with op.batch_alter_table("gateway_status") as batch:
        batch.add_column(sa.Column("actual", sa.JSON(), nullable=True))
    op.execute("UPDATE gateway_status SET actual = (SELECT a.actual FROM gateway_actual a "
               "WHERE a.gateway_id = gateway_status.gateway_id)")
    op.drop_table("gateway_actual")
