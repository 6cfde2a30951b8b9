"""The pure rules of tenants' contracts (model/tenancy.py) and the global pool's skipping of the
tenants' pools (``Inventory.allocate_vni``): unit tests and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from silonet.errors import Conflict, Forbidden, InvalidInput
from silonet.model import Attachment, Inventory, VirtualNetwork, tenancy
from silonet.model.tenancy import Contract, Pools, Use, VniPool
from tests.support.inventory import fleet


def test_quota_takes_integers_from_zero() -> None:
    assert tenancy.quota(0) == 0 and tenancy.quota(tenancy.QUOTA_MAX) == tenancy.QUOTA_MAX
    for bad in (-1, tenancy.QUOTA_MAX + 1, True, 1.5, "3", None):
        with pytest.raises(InvalidInput, match=r"must be an integer 0\.\.2147483647 \(null: no limit\)") as err:
            tenancy.quota(bad, "max_networks")
        assert err.value.field == "max_networks"


@pytest.mark.parametrize(("first", "last", "field", "rule"), [
    (200, 100, "vni_pool", "first (200) must not exceed last (100)"),
    (0, 100, "vni_pool.first", "VNI must be an integer 1..16777215"),
    (1, 16_777_216, "vni_pool.last", "VNI must be an integer 1..16777215"),
    (True, 5, "vni_pool.first", "VNI must be"),
])
def test_a_pool_lies_in_the_vni_range_first_to_last(first: object, last: object, field: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as err:
        tenancy.pool(first, last)
    assert err.value.field == field and rule in err.value.message


def test_a_pool_of_one_vni_and_the_whole_range() -> None:
    assert tenancy.pool(7, 7).range == range(7, 8)
    whole = tenancy.pool(1, 16_777_215)
    assert 1 in whole and 16_777_215 in whole and 0 not in whole and "5" not in whole and str(whole) == "1-16777215"


bounds = st.tuples(st.integers(1, 60), st.integers(0, 20)).map(lambda t: VniPool(t[0], t[0] + t[1]))


@given(bounds, bounds)
def test_pools_overlap_exactly_when_they_share_a_vni(a: VniPool, b: VniPool) -> None:
    assert a.overlaps(b) == b.overlaps(a) == bool(set(a.range) & set(b.range))


def test_overlapping_names_another_tenant_never_itself() -> None:
    acme, globex = Contract("acme", pool=VniPool(100, 199)), Contract("globex", pool=VniPool(300, 399))
    nopool = Contract("initech")
    others = [acme, globex, nopool]
    assert tenancy.overlapping(VniPool(150, 350), "new", others) == acme  # the lowest pool first
    assert tenancy.overlapping(VniPool(350, 360), "new", others) == globex
    assert tenancy.overlapping(VniPool(200, 299), "new", others) is None  # between them
    assert tenancy.overlapping(VniPool(100, 250), "acme", others) is None  # its own old pool is no conflict


def test_a_network_past_the_quota_and_a_vni_outside_the_pool_are_both_named() -> None:
    c = Contract("acme", pool=VniPool(100, 199), max_networks=2)
    assert tenancy.refuse_network(c, Use(1, 0), None) is None
    assert tenancy.refuse_network(c, Use(1, 0), 150) is None
    err = tenancy.refuse_network(c, Use(2, 0), 5)
    assert isinstance(err, Forbidden)
    assert [p.field for p in err.problems] == ["max_networks", "vni"]
    assert "at most 2 network(s) (its max_networks) and holds 2" in err.problems[0].message
    assert "VNI 5 is outside the VNI pool 100-199 of tenant 'acme'" in err.problems[1].message
    assert tenancy.refuse_network(Contract("z", max_networks=0), Use(), None).field == "max_networks"


def test_without_a_pool_of_its_own_a_tenant_may_not_take_another_tenants_vni() -> None:
    c = Contract("globex")
    assert tenancy.refuse_network(c, Use(), 150, [VniPool(300, 399)]) is None
    err = tenancy.refuse_network(c, Use(), 350, [VniPool(300, 399)])
    assert err is not None and err.field == "vni" and "reserved" in err.message
    assert "acme" not in err.message  # whose pool it is stays unsaid


def test_attach_only_granted_groups_within_the_quota() -> None:
    c = Contract("acme", groups=frozenset({"vsa", "kvb"}), max_attachments=3)
    assert tenancy.refuse_attach(c, Use(1, 2), "vsa") is None
    err = tenancy.refuse_attach(c, Use(1, 3), "bmc")
    assert err is not None and [p.field for p in err.problems] == ["interface_group", "max_attachments"]
    assert err.message == "tenant 'acme' is not granted interface group 'bmc' (its interface_groups: kvb, vsa)"
    nothing = tenancy.refuse_attach(Contract("acme"), Use(), "vsa")
    assert nothing is not None and "(its interface_groups: none)" in nothing.message


def test_use_counts_the_tenants_networks_and_their_attachments() -> None:
    inv = fleet(2, groups=2)  # ig-0000, ig-0001
    inv.put_network(VirtualNetwork("n-a", "acme", 5000))
    inv.put_network(VirtualNetwork("n-b", "acme", 5001))
    inv.put_network(VirtualNetwork("n-x", "globex", 5002))
    inv.attach(Attachment("ig-0000", 100, "n-a", 1))
    inv.attach(Attachment("ig-0001", 100, "n-a", 1))
    inv.attach(Attachment("ig-0000", 101, "n-x", 1))
    assert tenancy.use_of(inv, "acme") == Use(2, 2)
    assert tenancy.use_of(inv, "globex") == Use(1, 1)
    assert tenancy.use_of(inv, "nobody") == Use(0, 0)


def test_the_global_pool_skips_every_tenants_pool() -> None:
    inv = Inventory()
    inv.put_network(VirtualNetwork("a", "t", 10))
    assert inv.allocate_vni(range(10, 30), skip=[range(11, 15), range(16, 18)]) == 15
    with pytest.raises(Conflict, match="the VNI pool 10-29 is exhausted outside the tenants' VNI pools"):
        inv.allocate_vni(range(10, 30), skip=[range(11, 40)])
    with pytest.raises(Conflict, match=r"the VNI pool 10-10 is exhausted$"):
        inv.allocate_vni(range(10, 11))


@given(st.sets(st.integers(1, 80), max_size=40), st.lists(bounds, max_size=5), st.integers(1, 40), st.integers(0, 50))
def test_allocate_is_the_lowest_vni_free_and_outside_the_skipped_ranges(
        held: set[int], skipped: list[VniPool], start: int, size: int) -> None:
    inv = Inventory()
    for vni in held:
        inv.put_network(VirtualNetwork(f"n{vni}", "t", vni))
    pool = range(start, start + size)
    holes = [p.range for p in skipped]
    free = [v for v in pool if v not in held and not any(v in h for h in holes)]
    if free:
        assert inv.allocate_vni(pool, skip=holes) == free[0]
    else:
        with pytest.raises(Conflict, match="is exhausted"):
            inv.allocate_vni(pool, skip=holes)


def test_pools_allocate_from_the_tenants_own_pool_else_outside_all() -> None:
    inv = Inventory()
    pools = Pools({"acme": VniPool(100, 102), "globex": VniPool(10, 12)})
    assert pools.allocate(inv, "acme", range(10, 200)) == 100
    assert pools.allocate(inv, "initech", range(10, 200)) == 13  # 10-12 is globex's
    assert pools.allocate(inv, "globex", range(10, 200)) == 10
    inv.put_network(VirtualNetwork("x", "acme", 100))
    assert pools.allocate(inv, "acme", range(10, 200)) == 101
    assert pools.reserved("acme") == [VniPool(10, 12)]
