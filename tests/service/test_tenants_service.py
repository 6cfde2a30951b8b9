"""Tenants' contracts at the service layer, on SQLite and PostgreSQL: records are read in the
writing transaction (a quota cannot be raced past, another replica sees a change at once), a token
without a tenant has no record, and refusals write nothing."""

from __future__ import annotations

import threading

import pytest

from silonet.config import Settings
from silonet.errors import Forbidden, NotFound
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service import tenants as T
from silonet.service.auth import Principal
from silonet.service.topology import parse_topology
from tests.conftest import EXAMPLE, Snapshot

pytestmark = pytest.mark.both_engines


@pytest.fixture
def mgr(seeded: Manager) -> Manager:
    return seeded


def contract(name: str, **fields: object) -> T.TenantIn:
    return S.validate(T.TenantIn, {"name": name, **fields})


def net(name: str, tenant: str, vni: int | None = None) -> S.NetworkIn:
    return S.NetworkIn(name=name, tenant=tenant, vni=vni)


def test_a_token_without_a_tenant_has_no_record(mgr: Manager) -> None:
    scope = Principal("tenant", None).scope
    assert scope is not None and "\x00" in scope  # what a tenant token without a tenant is scoped to
    T.create(mgr, contract("acme", max_networks=0), "admin")
    assert T.list_(mgr, scope) == []
    with pytest.raises(NotFound):
        T.get(mgr, "acme", scope)
    with mgr.db.read() as s:  # never asked: PostgreSQL refuses NUL in a query's text
        assert T.contracts(s, scope) == {}


def test_the_last_quota_slot_goes_to_one_writer_only(mgr: Manager) -> None:
    T.create(mgr, contract("acme", max_networks=2), "admin")  # acme holds cust-42: one slot left
    results: list[object] = []
    start = threading.Barrier(4)

    def create(i: int) -> None:
        start.wait()
        try:
            results.append(mgr.create_network(net(f"race{i}", "acme"), actor="tenant:acme", tenant="acme"))
        except Forbidden as err:
            results.append(err)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    made = [r for r in results if isinstance(r, S.NetworkOut)]
    assert len(made) == 1 and len(results) == 4, results
    assert all(isinstance(r, Forbidden) and r.field == "max_networks" for r in results if r not in made)
    assert T.get(mgr, "acme").use.networks == 2


def test_another_replica_is_held_to_a_record_at_once(mgr: Manager) -> None:
    other = Manager(Runtime(mgr.db), Settings(database_url=mgr.db.url, vni_pool=range(10000, 10010)))
    other.list_networks()  # its cache is warm: records are not in it, they are read in each write
    T.create(mgr, contract("acme", interface_groups=["vsa"]), "admin")
    with pytest.raises(Forbidden, match="not granted interface group 'kvb'"):
        other.attach("cust-42", S.AttachmentIn(interface_group="kvb", vlan=7), tenant="acme")
    T.patch(other, "acme", {"interface_groups": ["vsa", "kvb"]}, "admin")
    assert mgr.attach("cust-42", S.AttachmentIn(interface_group="kvb", vlan=7), tenant="acme").vlan == 7


def test_a_refused_write_leaves_the_cache_and_the_rows_as_they_were(mgr: Manager, snapshot: Snapshot) -> None:
    T.create(mgr, contract("acme", vni_pool={"first": 20000, "last": 20009}, max_attachments=3), "admin")
    before, loads = snapshot(), mgr.cache.loads
    with pytest.raises(Forbidden):
        mgr.create_network(net("n1", "acme", 5), tenant="acme")
    with pytest.raises(Forbidden):
        mgr.attach("cust-42", S.AttachmentIn(interface_group="vsa", vlan=7), tenant="acme")
    with pytest.raises(NotFound):
        T.patch(mgr, "acme", {"interface_groups": ["nope"]}, "admin")
    assert snapshot() == before
    mgr.list_networks()
    assert mgr.cache.loads == loads  # the inventory held was not dropped: nothing in it had changed


def test_apply_allocates_from_the_tenants_pool(manager: Manager) -> None:
    T.create(manager, contract("globex", vni_pool={"first": 600, "last": 609}), "admin")
    manager.apply(parse_topology(EXAMPLE.read_text(), str(EXAMPLE)))
    vnis = {n.name: n.vni for n in manager.list_networks()}
    assert vnis == {"cust-42": 5000, "cust-43": 600}  # globex's network given no VNI in the file
