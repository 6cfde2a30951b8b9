"""day-2 operations: gateways.decommissioning (a deleted gateway is cleaned before it is
forgotten), apply_set on every object apply manages (prune removes only its own set's)

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SET_TABLES = ("silos", "gateways", "interface_groups", "networks", "attachments")
# the audit log's object prefix of each table (attachments: network/group/vlan, see _audit_key)
AUDIT_KIND = {"silos": "silo", "gateways": "gateway", "interface_groups": "interface-group", "networks": "network"}
CHUNK = 500  # ids per UPDATE (SQLite limits the number of bound values)


def upgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("decommissioning", sa.Boolean(), nullable=False, server_default=sa.false()))
    for table in SET_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("apply_set", sa.String(64), nullable=True))
    _backfill(op.get_bind())


def _audit_key(obj: str) -> str:
    """One key per object whoever wrote it: apply audits an attachment as
    ``attachment/<network>/<group>/<vlan>``, a direct attach as ``network/<network>/attachments/<group>/<vlan>``."""
    parts = obj.split("/")
    if len(parts) == 5 and parts[0] == "network" and parts[2] == "attachments":
        return "/".join(("attachment", parts[1], parts[3], parts[4]))
    return obj


def _backfill(conn: sa.engine.Connection) -> None:
    """Rows written before apply sets belong to ``default`` when ``silonet apply`` wrote them last:
    their newest audit entry is an apply's (``apply.create``, ``apply.update``, ``apply.attach``).
    An object whose newest entry is a direct create or attach, or that has none, stays in no set,
    so no prune deletes it (names never hold '/', so the audit's object strings are unambiguous)."""
    newest: dict[str, str] = {}
    for action, obj in conn.execute(sa.text("SELECT action, object FROM audit ORDER BY id")):
        newest[_audit_key(obj)] = action

    def applied(key: str) -> bool:
        return newest.get(key, "").startswith("apply.")

    for table, kind in AUDIT_KIND.items():
        ids = [i for i, name in conn.execute(sa.text(f"SELECT id, name FROM {table}")) if applied(f"{kind}/{name}")]
        _stamp(conn, table, ids)
    atts = conn.execute(sa.text(
        "SELECT a.id, n.name, g.name, a.vlan FROM attachments a JOIN networks n ON n.id = a.network_id "
        "JOIN interface_groups g ON g.id = a.group_id"))
    _stamp(conn, "attachments", [i for i, net, grp, vlan in atts if applied(f"attachment/{net}/{grp}/{vlan}")])


def _stamp(conn: sa.engine.Connection, table: str, ids: list[int]) -> None:
    t = sa.table(table, sa.column("id"), sa.column("apply_set"))
    for start in range(0, len(ids), CHUNK):
        conn.execute(sa.update(t).where(t.c.id.in_(ids[start:start + CHUNK])).values(apply_set="default"))


def downgrade() -> None:
    for table in SET_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("apply_set")
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("decommissioning")
