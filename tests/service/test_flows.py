"""Use cases end to end through the API: what a client sees when things go right."""

from __future__ import annotations

from silonet.service import Manager
from silonet.service.topology import parse_topology
from tests.conftest import EXAMPLE


def test_contract_example_bodies(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/silos", json={"name": "vsphere-a", "kind": "vsphere", "description": "..."})
    assert r.status_code == 201
    r = client.post("/v1/gateways", json={
        "name": "gw-a", "silo": "vsphere-a", "vtep_ip": "198.18.0.1",
        "management": {"driver": "ovsdb", "address": "tcp:198.18.1.1:6640"}, "capacity": 4096,
        "ports": [{"name": "p1"}, {"name": "p48", "switchback": True}]})
    assert r.status_code == 201 and r.json()["ports"][1] == {"name": "p48", "switchback": True}
    r = client.post("/v1/interface-groups", json={
        "name": "vsa", "silo": "vsphere-a", "members": [{"gateway": "gw-a", "port": "p1"}],
        "switchback": [{"gateway": "gw-a", "port": "p48"}]})
    assert r.status_code == 201
    r = client.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000})
    assert r.status_code == 201 and r.json() == {"name": "cust-42", "tenant": "acme", "vni": 5000, "attachments": [],
                                             "violations": []}
    r = client.post("/v1/networks/cust-42/attachments", json={"interface_group": "vsa", "vlan": 100})
    assert r.status_code == 201 and r.json()["status"] == "pending" and r.json()["vni"] == 5000
    net = client.get("/v1/networks/cust-42").json()
    assert [(a["interface_group"], a["vlan"], a["status"]) for a in net["attachments"]] == [("vsa", 100, "pending")]
    for coll, name in (("silos", "vsphere-a"), ("gateways", "gw-a"), ("interface-groups", "vsa")):
        assert client.get(f"/v1/{coll}/{name}").json()["name"] == name
        assert [x["name"] for x in client.get(f"/v1/{coll}").json()] == [name]
    plan = client.get("/v1/plan").json()
    ops = [op["op"] for op in plan["gateways"][0]["operations"]]
    assert ops == ["EnsureLogicalSwitch", "SetFloodList", "Bind"]
    assert plan["gateways"][0]["operations"][2]["port"] == "p48"  # switch-back port, not p1
    audit = client.get("/v1/audit").json()
    assert {"time", "actor", "action", "object", "before", "after"} <= set(audit[0])
    assert audit[0]["actor"] == "admin" and audit[0]["object"] == "network/cust-42/attachments/vsa/100"
    assert client.get("/docs").status_code == 200 and "/v1/plan" in client.get("/openapi.json").json()["paths"]


def test_wait_returns_pending_without_a_reconciler(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/networks/cust-43/attachments?wait=0.3", json={"interface_group": "bmc", "vlan": 7})
    assert r.status_code == 201 and r.json()["status"] == "pending"


def test_realized_and_failed_follow_the_realization_record(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    from silonet.store.repo import Repository

    with seeded.db.write() as (s, gen):
        repo = Repository(s)
        for gw in ("gw-a", "gw-b", "gw-c"):
            repo.record_realized(gw, gen, None)
    states = {a["interface_group"]: a["status"] for a in client.get("/v1/networks/cust-42").json()["attachments"]}
    assert states == {"vsa": "realized", "kvb": "realized", "bmc": "realized"}
    with seeded.db.write() as (s, _gen):
        Repository(s).record_realized("gw-c", 0, "invalid_vlan_map")
    r = client.post("/v1/networks/cust-42/attachments", json={"interface_group": "bmc", "vlan": 301})
    assert r.json()["status"] == "failed" and "invalid_vlan_map" in r.json()["reason"]
    status = client.get("/v1/gateways/gw-c/status").json()
    assert status["state"] == "failed" and status["last_error"] == "invalid_vlan_map"
    assert {"port": "p1", "vlan": 301, "vni": 5000} in status["desired"]["bindings"]


def test_detach_and_cascade_delete_bump_the_affected_gateways(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    gen = {s["gateway"]: s["desired_generation"] for s in client.get("/v1/status").json()}
    assert client.delete("/v1/networks/cust-42/attachments/bmc/300").status_code == 204
    after = {s["gateway"]: s["desired_generation"] for s in client.get("/v1/status").json()}
    # gw-c lost the binding, gw-a and gw-b lost gw-c from their flood list; gw-d is untouched.
    assert {g for g in gen if after[g] != gen[g]} == {"gw-a", "gw-b", "gw-c"}
    assert client.delete("/v1/networks/cust-42?cascade=true").status_code == 204
    assert client.get("/v1/networks/cust-42").status_code == 404


def test_apply_is_idempotent_and_prunes(seeded: Manager) -> None:
    topo = parse_topology(EXAMPLE.read_text())
    assert seeded.apply(topo).changes == []
    smaller = topo.model_copy(deep=True)
    smaller.networks = [n for n in smaller.networks if n.name == "cust-42"]
    smaller.networks[0].attachments = smaller.networks[0].attachments[:1]
    assert seeded.apply(smaller).changes == []  # without --prune nothing is removed
    dry = seeded.apply(smaller, prune=True, dry_run=True)
    assert dry.dry_run and {(c.action, c.name) for c in dry.changes} >= {("delete", "cust-43")}
    assert "cust-43" in seeded.inventory().networks  # dry run wrote nothing
    done = seeded.apply(smaller, prune=True)
    assert {(c.action, c.name) for c in done.changes} == {
        ("detach", "cust-42/kvb/2100"), ("detach", "cust-42/bmc/300"), ("detach", "cust-43/kvb/2200"),
        ("detach", "cust-43/pad/0"), ("delete", "cust-43")}
    assert seeded.apply(smaller, prune=True).changes == []


def test_apply_moves_a_port_between_groups_in_one_go(seeded: Manager) -> None:
    topo = parse_topology(EXAMPLE.read_text())
    text = EXAMPLE.read_text().replace(
        "  - {name: kvb, silo: kvm-b, members: [{gateway: gw-b, port: p1}]}",
        "  - {name: kvb, silo: kvm-b, members: [{gateway: gw-b, port: p2}]}\n"
        "  - {name: kvx, silo: kvm-b, members: [{gateway: gw-b, port: p1}]}").replace(
        "    ports: [{name: p1}]\n  - name: gw-c", "    ports: [{name: p1}, {name: p2}]\n  - name: gw-c", 1)
    moved = parse_topology(text)
    assert moved != topo
    seeded.apply(moved)
    inv = seeded.inventory()
    assert [str(r) for r in inv.groups["kvx"].members] == ["gw-b:p1"]
    assert [str(r) for r in inv.groups["kvb"].members] == ["gw-b:p2"]
