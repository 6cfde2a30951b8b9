"""Gateway modes through the use cases: the topology file sets a gateway's mode (a changed mode
is an update of that gateway, audited like any other), ``set_gateway_mode`` checks the mode, and
statuses, the listing, the plan and the waits all read a held gateway as held."""

from __future__ import annotations

import pytest

from silonet.errors import InvalidInput, NotFound
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service.topology import parse_topology
from tests.conftest import EXAMPLE, Snapshot


def example(**modes: str) -> S.Topology:
    topo = parse_topology(EXAMPLE.read_text(), str(EXAMPLE))
    for gw in topo.gateways:
        gw.mode = modes.get(gw.name.replace("-", "_"), gw.mode)
    return topo


def test_the_file_sets_the_mode_and_a_changed_mode_is_an_update(seeded: Manager) -> None:
    assert {g.name: g.mode for g in seeded.list_gateways()} == dict.fromkeys(("gw-a", "gw-b", "gw-c", "gw-d"),
                                                                              "enforce")
    dry = seeded.apply(example(gw_b="observe"), dry_run=True)
    assert [(c.action, c.kind, c.name, c.fields) for c in dry.changes] == [
        ("update", "gateway", "gw-b", {"mode": ("enforce", "observe")})]
    out = seeded.apply(example(gw_b="observe"))
    assert [(c.action, c.name) for c in out.changes] == [("update", "gw-b")]
    assert "gw-b" in out.gateways  # its desired generation moved: its worker is told
    assert seeded.get_gateway("gw-b").mode == "observe"
    entry = seeded.audit(1)[0]
    assert (entry.action, entry.object, entry.before["mode"], entry.after["mode"]) == (
        "apply.update", "gateway/gw-b", "enforce", "observe")
    assert seeded.apply(example(gw_b="observe")).changes == []  # applied again: nothing to do
    # the file is the truth: a file that leaves the mode out says enforce
    assert [(c.name, c.fields) for c in seeded.apply(example()).changes] == [("gw-b", {"mode": ("observe", "enforce")})]


def test_set_gateway_mode(seeded: Manager, snapshot: Snapshot) -> None:
    out = seeded.set_gateway_mode("gw-c", "maintenance", actor="tenant-less operator")
    assert out.mode == "maintenance" and seeded.audit(1)[0].actor == "tenant-less operator"
    rows = snapshot()
    with pytest.raises(InvalidInput) as err:
        seeded.set_gateway_mode("gw-c", "off")
    assert err.value.field == "mode" and "enforce, observe, maintenance" in err.value.message
    with pytest.raises(NotFound):
        seeded.set_gateway_mode("gw-z", "observe")
    assert snapshot() == rows


def test_every_reader_of_statuses_sees_held_gateways(seeded: Manager) -> None:
    seeded.set_gateway_mode("gw-a", "observe")
    seeded.set_gateway_mode("gw-d", "maintenance")
    states = {r.gateway: (r.state, r.mode) for r in seeded.statuses()}
    assert states["gw-a"] == ("held", "observe") and states["gw-d"] == ("held", "maintenance")
    assert states["gw-b"] == ("pending", "enforce")
    net = {(a.interface_group, a.vlan): a for a in seeded.get_network("cust-42").attachments}
    assert net[("vsa", 100)].status == "held"  # its own gateway is observed
    assert net[("kvb", 2100)].status == "pending"  # its own pending first; a held peer only degrades
    assert {g.gateway: g.status for g in net[("kvb", 2100)].gateways}["gw-a"] == "held"
    page = {(a.interface_group, a.vlan): a.status for a in seeded.attachments_page(100, None).items}
    assert page == {(a.interface_group, a.vlan): a.status
                    for n in seeded.list_networks() for a in n.attachments}  # the listing says the same
    assert page[("pad", 0)] == "held"
    assert seeded.wait(["gw-a"], 10**6, 0.0) == "held" and seeded.wait(["gw-a", "gw-b"], 10**6, 0.0) == "held"
    plan = {g.gateway: g for g in seeded.plan().gateways}
    assert plan["gw-a"].mode == "observe" and plan["gw-a"].operations and plan["gw-b"].mode == "enforce"
