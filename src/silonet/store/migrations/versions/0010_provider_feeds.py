"""the provider's systems: the event stream (events, meta.event_seq, attachment_status,
gateway_status.condition), webhooks
and their deliveries, tenant contracts (tenants, tenant_groups)

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meta") as batch:
        batch.add_column(sa.Column("event_seq", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("gateway_status") as batch:
        batch.add_column(sa.Column("condition", sa.String(16), nullable=True))
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("vni_first", sa.Integer(), nullable=True),
        sa.Column("vni_last", sa.Integer(), nullable=True),
        sa.Column("max_networks", sa.Integer(), nullable=True),
        sa.Column("max_attachments", sa.Integer(), nullable=True),
    )
    op.create_table(
        "tenant_groups",
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("interface_groups.id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_index("ix_tenant_groups_group_id", "tenant_groups", ["group_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_table(
        "attachment_status",
        sa.Column("attachment_id", sa.Integer(), sa.ForeignKey("attachments.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
    )
    op.create_table(
        "deliveries",
        # INTEGER on SQLite: only an INTEGER PRIMARY KEY numbers itself there
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_deliveries_webhook_id", "deliveries", ["webhook_id"])
    op.create_index("ix_deliveries_state_next_at", "deliveries", ["state", "next_at"])


def downgrade() -> None:
    for table in ("deliveries", "webhooks", "attachment_status", "events", "tenant_groups", "tenants"):
        op.drop_table(table)
    with op.batch_alter_table("gateway_status") as batch:
        batch.drop_column("condition")
    with op.batch_alter_table("meta") as batch:
        batch.drop_column("event_seq")
