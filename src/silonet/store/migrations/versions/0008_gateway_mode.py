"""gateway modes and pinned host keys: gateways.mode (enforce, observe, maintenance),
gateways.host_key (ssh: the device's public key line or SHA256: fingerprint),
gateway_status.pending_operations (what an enforce pass would apply now)

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="enforce"))
        batch.add_column(sa.Column("host_key", sa.Text(), nullable=True))
    with op.batch_alter_table("gateway_status") as batch:
        batch.add_column(sa.Column("pending_operations", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateway_status") as batch:
        batch.drop_column("pending_operations")
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("host_key")
        batch.drop_column("mode")
