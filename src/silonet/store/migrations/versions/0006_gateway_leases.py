"""gateway_leases and replicas: several `silonet serve` replicas share the gateways, each
gateway driven by one replica at a time

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_leases",
        sa.Column("gateway_id", sa.Integer(), sa.ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_gateway_leases_owner", "gateway_leases", ["owner"], unique=False)
    op.create_table(
        "replicas",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    op.drop_index("ix_gateway_leases_owner", table_name="gateway_leases")
    op.drop_table("gateway_leases")
