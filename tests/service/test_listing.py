"""Paged listing of attachments (service.listing): every attachment exactly once in a stable
order while the store changes between pages, filters, cursors, and the status of every item
equal to what Manager.get_attachment says."""

from __future__ import annotations

import base64
import json

import pytest

from silonet.errors import InvalidInput, NotFound
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service.listing import decode_cursor, encode_cursor, list_attachments_page
from silonet.store.repo import Observation, Repository


def page(m: Manager, limit: int = 100, cursor: str | None = None, **filters: str) -> S.AttachmentPageOut:
    with m.db.read() as s:
        return list_attachments_page(s, limit, cursor, **filters)


def walk(m: Manager, limit: int, between=None, **filters: str) -> list[S.AttachmentOut]:  # type: ignore[no-untyped-def]
    """Every page from the first, calling ``between(page_number)`` after each one."""
    items: list[S.AttachmentOut] = []
    cursor, n = None, 0
    while True:
        p = page(m, limit, cursor, **filters)
        assert len(p.items) <= limit and p.limit == limit
        items += p.items
        if p.next_cursor is None:
            return items
        cursor, n = p.next_cursor, n + 1
        if between:
            between(n)


def key(a: S.AttachmentOut) -> tuple[str, str, int]:
    return (a.network, a.interface_group, a.vlan)


def everything(m: Manager) -> set[tuple[str, str, int]]:
    return {key(a) for n in m.list_networks() for a in n.attachments}


def test_first_page_of_the_example(seeded: Manager) -> None:
    p = page(seeded)
    assert p.next_cursor is None and p.limit == 100
    assert [key(a) for a in p.items] == [("cust-42", "vsa", 100), ("cust-42", "kvb", 2100), ("cust-42", "bmc", 300),
                                         ("cust-43", "kvb", 2200), ("cust-43", "pad", 0)]
    assert p.items[0].vni == 5000 and p.items[0].status == "pending"
    assert [g.gateway for g in p.items[0].gateways] == ["gw-a", "gw-b", "gw-c"]


def test_every_attachment_once_in_a_stable_order_while_attachments_come_and_go(seeded: Manager) -> None:
    added: list[tuple[str, str, int]] = []
    detached: list[tuple[str, str, int]] = []

    def change(n: int) -> None:
        for i in range(3):  # more than a page arrives after every page
            vlan = 3000 + 10 * n + i
            seeded.attach("cust-43", S.AttachmentIn(interface_group="kvb", vlan=vlan))
            added.append(("cust-43", "kvb", vlan))
        if n == 1:  # one not listed yet goes away: it is never listed
            seeded.detach("cust-43", "pad", 0)
            detached.append(("cust-43", "pad", 0))
        if n == 3:  # one listed already goes away: nothing else moves
            seeded.detach("cust-42", "vsa", 100)

    first = walk(seeded, 2, between=lambda n: change(n) if n <= 6 else None)
    keys = [key(a) for a in first]
    assert len(keys) == len(set(keys)), "an attachment was listed twice"
    assert set(keys) == (everything(seeded) | {("cust-42", "vsa", 100)}) - set(detached)
    assert set(added) <= set(keys)
    assert keys.index(("cust-43", "kvb", 2200)) < keys.index(added[0])  # creation order
    # The order is stable: walking again (any page size) lists the same sequence, less what went.
    again = [key(a) for a in walk(seeded, 3)]
    assert again == [k for k in keys if k != ("cust-42", "vsa", 100)]
    assert [key(a) for a in page(seeded, 1000).items] == again


def test_filters(seeded: Manager) -> None:
    for vlan in (7, 8, 9):
        seeded.attach("cust-43", S.AttachmentIn(interface_group="kvb", vlan=vlan))
    net = walk(seeded, 2, network="cust-43")
    assert [key(a) for a in net] == [("cust-43", "kvb", 2200), ("cust-43", "pad", 0), ("cust-43", "kvb", 7),
                                     ("cust-43", "kvb", 8), ("cust-43", "kvb", 9)]
    grp = walk(seeded, 1, interface_group="kvb")
    assert [key(a) for a in grp] == [("cust-42", "kvb", 2100), ("cust-43", "kvb", 2200), ("cust-43", "kvb", 7),
                                     ("cust-43", "kvb", 8), ("cust-43", "kvb", 9)]
    both = walk(seeded, 2, network="cust-42", interface_group="kvb")
    assert [key(a) for a in both] == [("cust-42", "kvb", 2100)]
    assert page(seeded, network="cust-42", interface_group="pad").items == []
    # a filtered item says what the unfiltered listing says about it
    assert {key(a): a for a in walk(seeded, 1000)}[("cust-43", "kvb", 8)] == net[3]
    with pytest.raises(NotFound) as err:
        page(seeded, network="nope")
    assert err.value.field == "network"
    with pytest.raises(NotFound) as err:
        page(seeded, interface_group="nope")
    assert err.value.field == "interface_group"


def test_empty_store(manager: Manager) -> None:
    assert page(manager) == S.AttachmentPageOut(items=[], next_cursor=None, limit=100)


def test_last_full_page_has_no_next_cursor(seeded: Manager) -> None:
    p = page(seeded, 5)
    assert len(p.items) == 5 and p.next_cursor is None
    p = page(seeded, 4)
    assert len(p.items) == 4 and p.next_cursor is not None
    assert [key(a) for a in page(seeded, 4, p.next_cursor).items] == [("cust-43", "pad", 0)]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "zzz", "!!!", "a" * 300, _b64(b"not json"), _b64(b"\xff\xfe"), _b64(b"[1]"), _b64(b'{"after": -1}'),
    _b64(b'{"after": "3"}'), _b64(b'{"after": true}'), _b64(b'{"after": 1.5}'), _b64(b'{"after": 1, "x": 2}'),
    _b64(b"{}"), _b64(b"null"), _b64(b'{"after": 99999999999999999999999}'),
])
def test_malformed_cursor(seeded: Manager, cursor: str) -> None:
    with pytest.raises(InvalidInput) as err:
        page(seeded, 2, cursor)
    assert err.value.field == "cursor"


def test_cursor_round_trip_and_opaque_shape() -> None:
    for last in (0, 1, 99, 2**40):
        c = encode_cursor(last)
        assert decode_cursor(c) == last and "=" not in c
    assert json.loads(base64.urlsafe_b64decode(encode_cursor(7) + "==")) == {"after": 7}
    assert decode_cursor(None) == 0 and decode_cursor("") == 0


@pytest.mark.parametrize("limit", [0, -1, 1001, True])
def test_limit_is_checked(seeded: Manager, limit: int) -> None:
    with pytest.raises(InvalidInput) as err:
        page(seeded, limit)
    assert err.value.field == "limit"


def _assert_status_as_manager_says(m: Manager) -> list[S.AttachmentOut]:
    for limit in (1, 2, 1000):
        items = walk(m, limit)
        assert len(items) == len(everything(m))
        for a in items:
            assert a == m.get_attachment(a.network, a.interface_group, a.vlan), a
    return items


def test_status_equals_get_attachment(seeded: Manager) -> None:
    m = seeded
    assert {a.status for a in _assert_status_as_manager_says(m)} == {"pending"}

    with m.db.write() as (s, gen):  # everyone realized
        repo = Repository(s)
        for gw in ("gw-a", "gw-b", "gw-c", "gw-d"):
            repo.record_realized(gw, gen, None)
    assert {a.status for a in _assert_status_as_manager_says(m)} == {"realized"}

    m.attach("cust-42", S.AttachmentIn(interface_group="bmc", vlan=301))  # newer than what gw-a..c realized
    with m.db.write() as (s, gen):
        repo = Repository(s)
        repo.record_realized("gw-c", 0, "invalid_vlan_map")  # behind, with an error
        repo.record("gw-a", Observation(reachable=True, realized_generation=gen, error=None, binding_errors={
            "p48/100": "VLAN 100 is used by another VNI",   # vsa's switch-back: counts
            "p1/100": "ignored: vsa binds on p48 here",        # a member behind the switch-back: does not
        }))
        repo.record("gw-b", Observation(reachable=True, realized_generation=gen, error=None, binding_errors={
            "p1/2200": "no such VLAN on the port",           # kvb/2200 (cust-43) fails on gw-b
            "p1/999": "not attached at all",
        }))
    items = _assert_status_as_manager_says(m)
    by = {key(a): a for a in items}
    assert by[("cust-42", "vsa", 100)].status == "failed"
    assert "VLAN 100 is used" in (by[("cust-42", "vsa", 100)].reason or "")
    assert by[("cust-43", "kvb", 2200)].status == "failed" and "gw-b" in (by[("cust-43", "kvb", 2200)].reason or "")
    assert by[("cust-43", "pad", 0)].status == "realized"
    assert by[("cust-42", "bmc", 301)].status == "failed" and "invalid_vlan_map" in (
        by[("cust-42", "bmc", 301)].reason or "")


def test_a_group_without_a_switch_back_binds_on_every_member(manager: Manager) -> None:
    m = manager
    m.create_gateway(S.GatewayIn.model_validate({
        "name": "gw-x", "vtep_ip": "198.18.0.40", "management": {"driver": "ovsdb", "address": "tcp:127.0.0.1:1"},
        "ports": [{"name": "p1"}, {"name": "p2"}, {"name": "p3", "switchback": True}]}))
    m.create_gateway(S.GatewayIn.model_validate({
        "name": "gw-y", "vtep_ip": "198.18.0.41", "management": {"driver": "ovsdb", "address": "tcp:127.0.0.1:2"},
        "ports": [{"name": "p1"}, {"name": "p2"}]}))
    m.create_group(S.GroupIn.model_validate({  # switch-back on gw-x only; members on both
        "name": "g1", "members": [{"gateway": "gw-x", "port": "p1"}, {"gateway": "gw-x", "port": "p2"},
                                  {"gateway": "gw-y", "port": "p1"}, {"gateway": "gw-y", "port": "p2"}],
        "switchback": [{"gateway": "gw-x", "port": "p3"}]}))
    m.create_network(S.NetworkIn(name="n1", tenant="t", vni=100))
    for vlan in (5, 6, 7):
        m.attach("n1", S.AttachmentIn(interface_group="g1", vlan=vlan))
    with m.db.write() as (s, gen):
        repo = Repository(s)
        repo.record("gw-x", Observation(reachable=True, realized_generation=gen, error=None,
                                        binding_errors={"p2/5": "member behind the switch-back: ignored"}))
        repo.record("gw-y", Observation(reachable=True, realized_generation=gen, error=None,
                                        binding_errors={"p2/6": "second member fails", "p1/7": "first fails"}))
    by = {a.vlan: a for a in _assert_status_as_manager_says(m)}
    assert by[5].status == "realized"
    assert by[6].status == "failed" and "second member fails" in (by[6].reason or "")
    assert by[7].status == "failed" and "first fails" in (by[7].reason or "")
