"""Gateway modes under the real reconciler and API, on in-memory devices (they count every batch
written): an observed gateway is read and planned, never written; one in maintenance is not
contacted at all; switching back to enforce writes at the next pass. A gateway whose management
changes gets a new driver."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.drivers.memory import FABRIC, MemoryDevice, set_state
from silonet.reconcile import Reconciler
from silonet.service import Manager
from tests.conftest import ADMIN, eventually


@pytest.fixture
def fabric(manager: Manager) -> Iterator[tuple[TestClient, dict[str, MemoryDevice], Reconciler]]:
    """gw-a (observe from the start) and gw-b on memory devices, groups g1, g2, network cust-42."""
    FABRIC.forget()
    rec = Reconciler(manager.runtime, period=2.0, poll=0.2)
    with TestClient(create_app(manager, rec), headers=ADMIN) as client:
        for i, name in enumerate(("gw-a", "gw-b"), start=1):
            body = {"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
                    "management": {"driver": "memory"}}
            if name == "gw-a":
                body["mode"] = "observe"
            r = client.post("/v1/gateways", json=body)
            assert r.status_code == 201 and r.json()["mode"] == body.get("mode", "enforce"), r.text
            assert client.post("/v1/interface-groups", json={
                "name": f"g{i}", "members": [{"gateway": name, "port": "p1"}]}).status_code == 201
        assert client.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000}).status_code == 201
        yield client, {n: FABRIC.device(f"memory:{n}") for n in ("gw-a", "gw-b")}, rec
    FABRIC.forget()


def status(client: TestClient, gateway: str) -> dict:
    r = client.get(f"/v1/gateways/{gateway}/status")
    assert r.status_code == 200, r.text
    return r.json()


def attach(client: TestClient, group: str, vlan: int, wait: float = 20) -> dict:
    r = client.post(f"/v1/networks/cust-42/attachments?wait={wait}", json={"interface_group": group, "vlan": vlan})
    assert r.status_code == 201, r.text
    return r.json()


def test_an_observed_gateway_is_read_and_planned_never_written_then_enforce_writes(fabric) -> None:  # type: ignore[no-untyped-def]
    client, devices, _rec = fabric
    a = devices["gw-a"]
    started = time.monotonic()
    out = attach(client, "g1", 100, wait=30)
    assert out["status"] == "held", out  # the wait ends at once: nothing will change there
    assert time.monotonic() - started < 10
    assert "observe mode" in out["reason"]
    eventually(lambda: (status(client, "gw-a").get("pending_operations") or 0) > 0, what="gw-a planned")
    st = status(client, "gw-a")
    assert st["mode"] == "observe" and st["state"] == "held" and st["reachable"] is True
    assert st["last_error"] is None and st["actual"] == {"logical_switches": [], "bindings": [], "remote_macs": []}
    assert st["pending_operations"] == st["drift"] == len(st["repair"]) == 3  # the switch, its flood list, the binding
    assert a.writes == 0 and a.owned.bindings == {}
    plan = next(g for g in client.get("/v1/plan").json()["gateways"] if g["gateway"] == "gw-a")
    assert plan["mode"] == "observe" and len(plan["operations"]) == 3 and plan["actual_known"]
    # Its peer is written, and the attachment of the peer's group is degraded by the held gateway.
    peer = attach(client, "g2", 200)
    assert peer["status"] == "degraded" and "gw-a" in peer["reason"], peer
    assert devices["gw-b"].owned.bindings == {("p1", 200): 5000}
    eventually(lambda: {"op": "SetFloodList", "description": "set flood list of VNI 5000 to 198.18.0.2", "vni": 5000,
                        "flood": ["198.18.0.2"]} in status(client, "gw-a")["repair"], what="the peer in its flood list")
    assert status(client, "gw-a")["pending_operations"] == 3 and a.writes == 0

    r = client.patch("/v1/gateways/gw-a", json={"mode": "enforce"})
    assert r.status_code == 200 and r.json()["mode"] == "enforce", r.text
    eventually(lambda: a.owned.bindings == {("p1", 100): 5000}, what="gw-a written")
    assert a.owned.logical_switches[5000].flood == {"198.18.0.2"}
    eventually(lambda: status(client, "gw-a")["state"] == "realized", what="gw-a realized")
    st = status(client, "gw-a")
    assert st["pending_operations"] == 0 and st["drift"] == 0 and st["repair"] == []
    listed = client.get("/v1/networks/cust-42/attachments").json()
    assert {(x["interface_group"], x["status"]) for x in listed} == {("g1", "realized"), ("g2", "realized")}


def test_switching_an_enforced_gateway_to_observe_stops_its_writes(fabric) -> None:  # type: ignore[no-untyped-def]
    client, devices, _rec = fabric
    b = devices["gw-b"]
    assert attach(client, "g2", 200)["status"] in ("realized", "degraded")
    writes = b.writes
    assert client.patch("/v1/gateways/gw-b", json={"mode": "observe"}).json()["mode"] == "observe"
    set_state(b, owned=type(b.owned)())  # wiped behind silonet's back: an enforce pass would repair it
    eventually(lambda: status(client, "gw-b")["pending_operations"] == 3, what="the repair counted")
    assert b.writes == writes and b.owned.bindings == {}  # and not made
    assert attach(client, "g2", 201)["status"] == "held"
    eventually(lambda: status(client, "gw-b")["pending_operations"] == 4, what="the new binding counted")
    assert b.writes == writes


def test_maintenance_reads_nothing_holds_and_alarms_nothing(fabric) -> None:  # type: ignore[no-untyped-def]
    client, devices, rec = fabric
    b = devices["gw-b"]
    assert attach(client, "g2", 200)["status"] in ("realized", "degraded")
    assert client.patch("/v1/gateways/gw-b", json={"mode": "maintenance"}).status_code == 200
    eventually(lambda: status(client, "gw-b")["reachable"] is None, what="gw-b recorded as not contacted")
    # the supervisor retires the old worker, then starts the new one: between the two there is none
    eventually(lambda: (w := rec.workers.get("gw-b")) is not None and w.gateway.mode == "maintenance",
               what="a worker without a driver")
    assert not rec.workers["gw-b"]._driver_started
    set_state(b, unreachable="powered off for the swap")  # a read now would fail: none is made
    writes, listeners = b.writes, list(b.listeners)
    assert listeners == []  # no driver holds the device
    out = attach(client, "g2", 201)
    assert out["status"] == "held" and "maintenance mode" in out["reason"]
    st = status(client, "gw-b")
    assert st["state"] == "held" and st["mode"] == "maintenance" and st["last_error"] is None
    assert st["pending_operations"] is None and st["binding_errors"] == {}
    assert b.writes == writes
    set_state(b, unreachable=None)
    assert client.patch("/v1/gateways/gw-b", json={"mode": "enforce"}).status_code == 200
    eventually(lambda: b.owned.bindings == {("p1", 200): 5000, ("p1", 201): 5000}, what="gw-b written again")
    eventually(lambda: status(client, "gw-b")["state"] == "realized", what="gw-b realized")


def test_a_changed_management_gets_a_new_driver(fabric) -> None:  # type: ignore[no-untyped-def]
    client, devices, rec = fabric
    assert attach(client, "g2", 200)["status"] in ("realized", "degraded")
    eventually(lambda: "gw-b" in rec.workers, what="gw-b driven")
    old = rec.workers["gw-b"]
    r = client.patch("/v1/gateways/gw-b", json={"management": {"address": "memory:gw-b-replacement"}})
    assert r.status_code == 200 and r.json()["management"]["address"] == "memory:gw-b-replacement", r.text
    fresh = FABRIC.device("memory:gw-b-replacement")
    eventually(lambda: fresh.owned.bindings == {("p1", 200): 5000}, what="the new device written")
    worker = rec.workers["gw-b"]
    assert worker is not old and worker.gateway.management.address == "memory:gw-b-replacement"
    assert old.driver.device is devices["gw-b"] and worker.driver.device is fresh
    assert old.driver._changed not in devices["gw-b"].listeners  # the old driver was closed


def test_observe_and_enforce_switch_in_place_without_a_new_driver(fabric) -> None:  # type: ignore[no-untyped-def]
    client, _devices, rec = fabric
    eventually(lambda: "gw-a" in rec.workers, what="gw-a driven")
    worker = rec.workers["gw-a"]
    assert client.patch("/v1/gateways/gw-a", json={"mode": "enforce"}).status_code == 200
    eventually(lambda: rec.workers["gw-a"].gateway.mode == "enforce", what="the worker told")
    assert rec.workers["gw-a"] is worker and worker.mode == "enforce"


def test_a_worker_not_yet_replaced_writes_nothing_once_its_gateway_is_observed(fabric) -> None:  # type: ignore[no-untyped-def]
    """The mode the newest write committed is what a worker asks before each pass and right before
    each write: a worker woken before the supervisor hands it the new gateway writes nothing."""
    from silonet.plan.ops import Bind
    from silonet.reconcile.worker import ModeHeld

    client, devices, rec = fabric
    b = devices["gw-b"]
    assert attach(client, "g2", 200)["status"] in ("realized", "degraded")
    worker = rec.workers["gw-b"]
    assert worker.gateway.mode == "enforce"
    rec._know_modes({"gw-b": "observe"}, 10**9)  # as if a write had just switched it
    writes = b.writes
    set_state(b, owned=type(b.owned)())  # wakes the worker: it reads and counts, and writes nothing
    eventually(lambda: status(client, "gw-b")["pending_operations"] == 3, what="counted, not repaired")
    assert b.writes == writes and rec.workers["gw-b"] is worker
    with pytest.raises(ModeHeld, match="in observe mode: not writing"):
        client.portal.call(worker._apply, [Bind("p1", 200, 5000)], 1)
    assert b.writes == writes


def test_a_held_gateway_is_forgotten_at_once_not_cleaned(fabric) -> None:  # type: ignore[no-untyped-def]
    """Deleting an observed gateway writes nothing there, not even to clean it: it is forgotten at
    once (an enforced one goes decommissioning while its worker cleans the device)."""
    client, _devices, _rec = fabric
    for i, name in ((3, "gw-c"), (4, "gw-d")):
        r = client.post("/v1/gateways", json={"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
                                              "management": {"driver": "memory"}, "mode": "observe"})
        assert r.status_code == 201, r.text
    c, d = FABRIC.device("memory:gw-c"), FABRIC.device("memory:gw-d")
    set_state(c, owned=type(c.owned)(bindings={("p1", 9): 5000}))  # someone's row silonet would call its own
    set_state(d, owned=type(d.owned)(bindings={("p1", 9): 5000}))
    for name in ("gw-c", "gw-d"):
        eventually(lambda n=name: status(client, n)["actual"] is not None, what=f"{name} read")
    assert client.patch("/v1/gateways/gw-d", json={"mode": "enforce"}).status_code == 200
    eventually(lambda: d.owned.bindings == {}, what="gw-d cleaned of what nothing wants")
    r = client.delete("/v1/gateways/gw-c")
    assert r.status_code == 200 and "it is in observe mode" in r.json()["message"], r.text
    assert r.json()["left"]["bindings"] and c.owned.bindings == {("p1", 9): 5000} and c.writes == 0
    assert client.get("/v1/gateways/gw-c").status_code == 404
    audit = client.get("/v1/audit?limit=1").json()[0]
    assert (audit["action"], audit["object"]) == ("forget", "gateway/gw-c")
    assert client.delete("/v1/gateways/gw-d").status_code in (202, 204)  # enforced: cleaned first


def test_a_mode_another_process_committed_holds_the_gateway_before_the_supervisor_hears_of_it(
        manager: Manager, db) -> None:  # type: ignore[no-untyped-def]
    """Another replica (or the CLI on the same store) switches the gateway to observe; an API read
    here reloads the shared intent cache at once, long before the supervisor's next look (30 s
    here): a pass that compiles that intent must not write, though the device drifted."""
    from silonet.config import Settings
    from silonet.runtime import Runtime
    from tests.conftest import ADMIN_TOKEN

    FABRIC.forget()
    rec = Reconciler(manager.runtime, period=0.2, poll=30.0)
    with TestClient(create_app(manager, rec), headers=ADMIN) as client:
        assert client.post("/v1/gateways", json={"name": "gw-b", "vtep_ip": "198.18.0.2", "ports": [{"name": "p1"}],
                                                 "management": {"driver": "memory"}}).status_code == 201
        assert client.post("/v1/interface-groups", json={
            "name": "g2", "members": [{"gateway": "gw-b", "port": "p1"}]}).status_code == 201
        assert client.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000}).status_code == 201
        r = client.post("/v1/networks/cust-42/attachments?wait=10", json={"interface_group": "g2", "vlan": 200})
        assert r.json()["status"] == "realized", r.text
        device = FABRIC.device("memory:gw-b")
        other = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10010),
                                              admin_token=ADMIN_TOKEN))
        other.set_gateway_mode("gw-b", "observe")
        assert client.get("/v1/gateways/gw-b").json()["mode"] == "observe"  # this process's cache reloads
        writes = device.writes
        set_state(device, owned=type(device.owned)())  # drift an enforce pass would repair
        deadline = time.monotonic() + 10
        while client.get("/v1/gateways/gw-b/status").json()["pending_operations"] in (None, 0):
            assert time.monotonic() < deadline, "no observe pass recorded what it held back"
            time.sleep(0.1)
        assert device.writes == writes, "written while the committed intent says observe"
    FABRIC.forget()
