"""Issue 19, end to end: a lab OVSDB gateway put in observe mode by the topology file is read and
planned but never written: vtep-ctl (an independent reader) finds none of silonet's rows there
while its status counts the operations an enforce pass would apply; switched to enforce, it is
written at the next pass and the hosts behind it reach their peers.

A lab of its own (prefix ``sm``, index 19: never the demo's, the e2e ``se``/5 or another test's):
gw-a and gw-b over OVSDB, a host behind each.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.config import Settings
from silonet.lab import GatewaySpec, Group, Host, Lab, LabTopology, Silo, Tor
from silonet.reconcile import Reconciler
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.store.db import Database
from tests.conftest import ADMIN, ADMIN_TOKEN, fresh_lab
from tests.e2e.conftest import _missing, eventually, lab_inventory

pytestmark = [pytest.mark.root, pytest.mark.ovs, pytest.mark.slow]

TOPO = LabTopology("modes", (GatewaySpec("gw-a", "sa"), GatewaySpec("gw-b", "sb")), (
    Silo("sa", "kvm", (Group("ga", (Tor("gw-a", "p1", (Host("ha1", 100, "203.0.113.21"),)),)),)),
    Silo("sb", "baremetal", (Group("gb", (Tor("gw-b", "p1", (Host("hb1", 0, "203.0.113.22"),)),)),)),
))
VNI = 7019


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, TestClient]]:
    """The lab, and a server whose inventory is the lab's with gw-a in observe mode (the file says so)."""
    if why := _missing():
        pytest.skip(why)
    base = tmp_path_factory.mktemp("modes")
    lab = fresh_lab("sm", 19)
    try:
        lab.up(TOPO, driver="ovsdb")
        db = Database(f"sqlite:///{base / 'silonet.db'}")
        db.upgrade()
        manager = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10100),
                                                admin_token=ADMIN_TOKEN))
        topology = lab_inventory(lab)
        for gw in topology.gateways:
            if gw.name == "gw-a":
                gw.mode = "observe"
        manager.apply(topology)
        rec = Reconciler(manager.runtime, period=2.0, poll=0.5)
        with TestClient(create_app(manager, rec), headers=ADMIN) as client:
            yield lab, client
        db.dispose()
    finally:
        lab.down()


def untouched(lab: Lab) -> bool:
    """gw-a holds none of what silonet would write there, as vtep-ctl reads it."""
    return (lab.vtep_ctl("gw-a", "list-ls").strip() == "" and lab.vtep_ctl("gw-a", "list-bindings", "gw-a", "p1")
            .strip() == "" and lab.vtep_ctl("gw-a", "--columns=_uuid", "list", "Mcast_Macs_Remote").strip() == "")


def status(client: TestClient, gateway: str) -> dict:
    r = client.get(f"/v1/gateways/{gateway}/status")
    assert r.status_code == 200, r.text
    return r.json()


def test_an_observed_gateway_stays_untouched_until_it_is_switched_to_enforce(
        observed: tuple[Lab, TestClient]) -> None:
    lab, client = observed
    assert client.get("/v1/gateways/gw-a").json()["mode"] == "observe"
    assert client.post("/v1/networks", json={"name": "obs1", "tenant": "e2e", "vni": VNI}).status_code == 201
    a = client.post("/v1/networks/obs1/attachments?wait=30", json={"interface_group": "ga", "vlan": 100}).json()
    assert a["status"] == "held" and "gw-a" in a["reason"] and "observe mode" in a["reason"], a
    b = client.post("/v1/networks/obs1/attachments?wait=30", json={"interface_group": "gb", "vlan": 0}).json()
    assert b["status"] == "degraded" and "gw-a" in b["reason"], b  # gw-b is written; its peer is held
    assert "obs1" in lab.vtep_ctl("gw-b", "list-ls")

    vtep_b = client.get("/v1/gateways/gw-b").json()["vtep_ip"]
    # every operation counted once gw-b's tunnel address is in gw-a's plan (the flood list)
    eventually(lambda: (status(client, "gw-a")["pending_operations"] or 0) >= 3, timeout=30,
               what="gw-a's operations counted")
    st = status(client, "gw-a")
    assert st["state"] == "held" and st["reachable"] is True and st["last_error"] is None, st
    assert st["actual"] == {"logical_switches": [], "bindings": [], "remote_macs": []}
    assert untouched(lab), "an observed gateway was written"
    kinds = [op["op"] for op in st["repair"]]
    assert kinds == ["EnsureLogicalSwitch", "SetFloodList", "Bind"] and st["pending_operations"] == 3, st["repair"]
    assert vtep_b in st["repair"][1]["flood"]
    plan = next(g for g in client.get("/v1/plan?gateway=gw-a").json()["gateways"])
    assert plan["mode"] == "observe" and [op["op"] for op in plan["operations"]] == kinds
    assert untouched(lab), "an observed gateway was written"

    r = client.patch("/v1/gateways/gw-a", json={"mode": "enforce"})
    assert r.status_code == 200 and r.json()["mode"] == "enforce", r.text
    eventually(lambda: lab.vtep_ctl("gw-a", "list-bindings", "gw-a", "p1").split() == ["0100", "obs1"],
               timeout=30, what="gw-a written")
    assert f"unknown-dst -> vxlan_over_ipv4/{vtep_b}" in lab.vtep_ctl("gw-a", "list-remote-macs", "obs1")
    eventually(lambda: status(client, "gw-a")["state"] == "realized", timeout=30, what="gw-a realized")
    assert status(client, "gw-a")["pending_operations"] == 0
    assert client.get("/v1/networks/obs1/attachments").json()[0]["status"] == "realized"
    audit = [e for e in client.get("/v1/audit").json() if e["object"] == "gateway/gw-a"]
    assert audit[0]["action"] == "gateway.mode" and audit[0]["after"]["mode"] == "enforce"
    hosts = {h["name"]: h for s in lab.status()["silos"] for h in s["hosts"]}
    assert any(lab.ping("ha1", hosts["hb1"]["ip"], count=1, timeout=1) for _ in range(20)), "no traffic through gw-a"
    assert client.delete("/v1/networks/obs1?cascade=true&wait=30").status_code == 204
