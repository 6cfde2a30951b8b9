"""indexes for paged attachment listings: a group's attachments by id, the groups of a
network, a group's ports (covering)

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_attachments_group_id_id", "attachments", ["group_id", "id"]),
    ("ix_attachments_network_id_group_id", "attachments", ["network_id", "group_id"]),
    ("ix_group_ports_group_id_port_id", "group_ports", ["group_id", "port_id"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
