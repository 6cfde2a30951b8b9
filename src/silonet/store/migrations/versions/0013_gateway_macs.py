"""gateway_macs: the MACs each gateway learned, in a table of their own. Replicas read every other
replica's gateways' learned MACs after each lease round; taken out of ``gateway_actual.actual``
with a JSON path, each read parsed every gateway's whole actual state (160 MB of JSON at 1,000
gateways of 100 VNIs: 19 % of a core per process while idle), and a column of that table would
still sit behind ``actual``'s overflow pages in SQLite

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_macs",
        sa.Column("gateway_id", sa.Integer(), sa.ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("local_macs", sa.JSON(), nullable=False),
    )
    # a gateway that learned nothing has no row (``Repository.learned_macs`` lists none for it)
    part, text = ("actual -> 'local_macs'", "(actual -> 'local_macs')::text") \
        if op.get_bind().dialect.name == "postgresql" else ("json_extract(actual, '$.local_macs')",) * 2
    op.execute(f"INSERT INTO gateway_macs (gateway_id, local_macs) SELECT gateway_id, {part} FROM gateway_actual "
               f"WHERE {part} IS NOT NULL AND {text} <> '{{}}'")


def downgrade() -> None:
    op.drop_table("gateway_macs")  # ``gateway_actual.actual`` holds them too
