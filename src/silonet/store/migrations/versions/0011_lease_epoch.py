"""gateway_leases.epoch: the lease epoch a replica carries to the device with each write, one more
every time a replica takes the gateway's lease (store/leases.py), so a device refuses a replica
whose lease lapsed while it stalled once its successor wrote there

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_leases") as batch:
        batch.add_column(sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("gateway_leases") as batch:
        batch.drop_column("epoch")
