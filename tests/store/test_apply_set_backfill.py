"""Migration 0007: rows an older version wrote belong to apply set ``default`` when `silonet
apply` wrote them last (their newest audit entry is an ``apply.*`` one), to no set otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from silonet.store.db import Database

ROWS = {
    "silos": [(1, "s-applied", "kvm", ""), (2, "s-direct", "kvm", "")],
    "gateways": [(1, "gw-applied", 1, "198.18.0.21", "ovsdb", "tcp:127.0.0.1:1", 4096),
                 (2, "gw-direct", 2, "198.18.0.22", "ovsdb", "tcp:127.0.0.1:2", 4096)],
    "interface_groups": [(1, "grp", 1)],
    "networks": [(1, "n-applied", "acme", 5000), (2, "n-direct", "acme", 5001), (3, "n-adopted", "acme", 5002),
                 (4, "n-remade", "acme", 5003), (5, "n-silent", "acme", 5004)],
    "attachments": [(1, 1, 100, 1, 1), (2, 1, 200, 2, 1), (3, 1, 300, 1, 1)],
}
COLUMNS = {
    "silos": "id, name, kind, description",
    "gateways": "id, name, silo_id, vtep_ip, driver, address, capacity",
    "interface_groups": "id, name, silo_id",
    "networks": "id, name, tenant, vni",
    "attachments": "id, group_id, vlan, network_id, generation",
}
# (action, object) as the older version's apply (apply.*) and direct routes wrote them, oldest first
AUDIT = [
    ("apply.create", "silo/s-applied"), ("create", "silo/s-direct"),
    ("apply.create", "gateway/gw-applied"), ("create", "gateway/gw-direct"),
    ("apply.create", "interface-group/grp"),
    ("apply.create", "network/n-applied"), ("create", "network/n-direct"),
    ("create", "network/n-adopted"), ("apply.update", "network/n-adopted"),  # changed by a file later
    ("apply.create", "network/n-remade"), ("delete", "network/n-remade"), ("create", "network/n-remade"),
    ("apply.attach", "attachment/n-applied/grp/100"),
    ("attach", "network/n-direct/attachments/grp/200"),
    ("apply.attach", "attachment/n-direct/grp/300"), ("detach", "network/n-direct/attachments/grp/300"),
    ("attach", "network/n-applied/attachments/grp/300"),  # VLAN 300 moved to n-applied by hand
]
EXPECTED = {
    "silos": {"s-applied": "default", "s-direct": None},
    "gateways": {"gw-applied": "default", "gw-direct": None},
    "interface_groups": {"grp": "default"},
    "networks": {"n-applied": "default", "n-direct": None, "n-adopted": "default", "n-remade": None,
                 "n-silent": None},
}


def test_rows_applied_before_sets_belong_to_default(database_url: str) -> None:
    database = Database(database_url)
    cfg = database.alembic_config()
    command.upgrade(cfg, "0006")
    with database.engine.begin() as conn:
        for table, rows in ROWS.items():
            marks = ", ".join(f":c{i}" for i in range(len(rows[0])))
            conn.execute(text(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})"),
                         [{f"c{i}": v for i, v in enumerate(row)} for row in rows])
        conn.execute(text("INSERT INTO audit (time, actor, action, object) VALUES (:t, 'admin', :a, :o)"),
                     [{"t": datetime.now(UTC), "a": a, "o": o} for a, o in AUDIT])
    database.upgrade()
    with database.engine.connect() as conn:
        for table, want in EXPECTED.items():
            got = dict(conn.execute(text(f"SELECT name, apply_set FROM {table}")).all())
            assert got == want, table
        atts = dict(conn.execute(text("SELECT vlan, apply_set FROM attachments")).all())
        assert atts == {100: "default", 200: None, 300: None}
    database.dispose()
