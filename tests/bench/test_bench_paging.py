"""bench.paging on small numbers: the synthetic fleet is one the model accepts, listing it
says what the manager says, and the walk reports what was asked (no timing asserts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from silonet.bench.paging import fill, measure_paging
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service.listing import list_attachments_page
from silonet.store.db import Database
from silonet.store.repo import Repository
from silonet.store.tables import AttachmentRow, GatewayRow, GroupPortRow, NetworkRow, PortRow


@pytest.mark.parametrize("layout", ["spread", "clustered"])
def test_measure_paging_small(tmp_path: Path, layout: str) -> None:
    url = f"sqlite:///{tmp_path / 'paging.db'}"
    result = measure_paging(url, attachments=150, gateways=45, page=20, pages=12, layout=layout)  # type: ignore[arg-type]
    assert (result.pages, result.attachments, result.page, result.gateways) == (12, 150, 20, 45)
    assert 0 < result.p50_ms <= result.p99_ms
    db = Database(url)
    try:
        with db.read() as s:
            repo = Repository(s)
            assert repo.count(GatewayRow) == 45 and repo.count(PortRow) == 45 * 48
            assert repo.count(GroupPortRow) == 45 * 48 and repo.count(AttachmentRow) == 150
            assert repo.count(NetworkRow) == 38  # 4 groups each (the last one: 2)
        with pytest.raises(ValueError, match="empty database"):
            fill(db, 10, 10)
    finally:
        db.dispose()


def test_synthetic_fleet_is_one_the_model_accepts(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fleet.db'}")
    db.upgrade()
    try:
        fill(db, attachments=92, gateways=80)  # 8 groups: networks on groups 1-4 or 5-8
        m = Manager(Runtime(db))
        inv = m.inventory()
        assert len(inv.groups) == 8 and len(inv.networks) == 23
        for gw in inv.gateways:
            assert inv.usage(gw) <= inv.gateways[gw].capacity
        group = inv.groups["grp-0001"]
        assert group.bound_ports("gw-00001") == ("p48",) and len(group.members) == 10 * 47
        with db.read() as s:
            items = list_attachments_page(s, 1000, None).items
        assert len(items) == 92
        assert {a.status for a in items} == {"realized", "pending", "failed"}
        for a in items:
            assert a == m.get_attachment(a.network, a.interface_group, a.vlan)
            assert len({g.gateway for g in a.gateways}) == len(a.gateways) == 40  # 4 groups of 10
    finally:
        db.dispose()
