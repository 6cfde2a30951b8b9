"""Deleting a gateway cleans its device first: the gateway goes ``decommissioning``, its worker
removes every row silonet owns there (never a foreign one), then it is forgotten and audited.
Real ovsdb-servers; vtep-ctl (tests/e2e/vtep_audit.py) reads what each device is left with."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from silonet.devices.vtepdb import VtepDb, free_port
from silonet.service import Manager
from tests.conftest import eventually
from tests.e2e.vtep_audit import Wanted, problems, read_tables
from tests.functional.conftest import managed_gateways

pytestmark = pytest.mark.ovs
ROOT = Path(__file__).resolve().parents[2]
THEIRS = Wanted({"theirs": None}, {("p2", 300): "theirs"})  # what a device keeps that silonet never made


@pytest.fixture
def fabric(tmp_path: Path, manager: Manager) -> Iterator[tuple[TestClient, dict[str, VtepDb]]]:
    """gw-a, gw-b, gw-c with ports p1, p2; groups ga (gw-a p1) and gb (gw-b p1); gw-c in no group."""
    ports = {gw: [{"name": "p1"}, {"name": "p2"}] for gw in ("gw-a", "gw-b", "gw-c")}
    groups = {"ga": {"members": [{"gateway": "gw-a", "port": "p1"}]},
              "gb": {"members": [{"gateway": "gw-b", "port": "p1"}]}}
    with managed_gateways(tmp_path, manager, ports, groups) as fab:
        yield fab


def attach(client: TestClient, group: str, vlan: int) -> None:
    r = client.post("/v1/networks/cust-42/attachments?wait=20", json={"interface_group": group, "vlan": vlan})
    assert r.status_code == 201 and r.json()["status"] == "realized", r.text


def status(client: TestClient, gateway: str) -> dict:
    r = client.get(f"/v1/gateways/{gateway}/status")
    assert r.status_code == 200, r.text
    return r.json()


def recorded(client: TestClient, gateway: str) -> dict:
    """The gateway's actual state as the database holds it (what a process without its worker knows)."""
    from silonet.store.repo import Repository

    with client.app.state.manager.db.read() as s:  # type: ignore[attr-defined]
        return Repository(s).realizations([gateway])[gateway].actual or {"remote_macs": []}


def audit(client: TestClient, gateway: str) -> list[dict]:
    return [e for e in client.get("/v1/audit?limit=1000").json() if e["object"] == f"gateway/{gateway}"]


def realize_then_take_down(client: TestClient, dbs: dict[str, VtepDb]) -> VtepDb:
    """gw-b realized (a binding, a switch flooding to gw-a, a remote MAC gw-a learned) beside a
    foreign switch; then its device goes down and gw-b leaves every group: the rows stay there."""
    attach(client, "ga", 100)
    attach(client, "gb", 2100)
    b = dbs["gw-b"]
    b.ctl("add-ls", "theirs", "--", "bind-ls", "gw-b", "p2", "300", "theirs")
    dbs["gw-a"].ctl("add-ucast-local", "cust-42", "02:00:00:00:0a:01", "198.18.0.1")
    eventually(lambda: "02:00:00:00:0a:01 -> vxlan_over_ipv4/198.18.0.1" in b.ctl("list-remote-macs", "cust-42"))
    eventually(lambda: status(client, "gw-b")["foreign"] != [], what="the foreign switch seen")
    eventually(lambda: recorded(client, "gw-b")["remote_macs"] != [], what="its state recorded")  # <= 1 s behind
    b.stop()
    eventually(lambda: status(client, "gw-b")["reachable"] is False, what="gw-b unreachable")
    assert client.delete("/v1/networks/cust-42/attachments/gb/2100").status_code == 204
    assert client.delete("/v1/interface-groups/gb").status_code == 204
    return b


def test_delete_cleans_the_device_then_forgets_the_gateway(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    b = realize_then_take_down(client, dbs)
    r = client.delete("/v1/gateways/gw-b")
    assert r.status_code == 202, r.text
    assert r.json()["gateway"] == "gw-b" and r.json()["state"] == "decommissioning"
    # visible everywhere the state is shown
    assert status(client, "gw-b")["state"] == "decommissioning"
    assert {s["gateway"]: s["state"] for s in client.get("/v1/status").json()}["gw-b"] == "decommissioning"
    eventually(lambda: 'silonet_gateway_decommissioning{gateway="gw-b"} 1.0' in client.get("/metrics").text,
               what="the metric")
    assert 'silonet_gateway_decommissioning{gateway="gw-a"} 0.0' in client.get("/metrics").text
    # its name and tunnel IP stay taken; it takes no group; a second delete answers the state again
    taken = {"vtep_ip": "198.18.0.2", "management": {"driver": "ovsdb", "address": "tcp:127.0.0.1:1"}}
    r = client.post("/v1/gateways", json={"name": "gw-b", **taken})
    assert r.status_code == 409 and "gw-b" in r.text
    r = client.post("/v1/gateways", json={"name": "gw-z", **taken})
    assert r.status_code == 409 and "198.18.0.2" in r.text and "gw-b" in r.text
    r = client.post("/v1/interface-groups", json={"name": "gz", "members": [{"gateway": "gw-b", "port": "p1"}]})
    assert r.status_code == 409 and "decommissioned" in r.json()["message"], r.text
    r = client.post("/v1/apply", json={"gateways": [{"name": "gw-b", **taken}]})
    assert r.status_code == 409 and "decommissioned" in r.json()["message"], r.text
    again = client.delete("/v1/gateways/gw-b")
    assert again.status_code == 202 and again.json()["state"] == "decommissioning"
    # gw-a no longer floods to it (it carries nothing)
    eventually(lambda: "198.18.0.2" not in dbs["gw-a"].ctl("list-remote-macs", "cust-42"), what="gw-a's flood list")

    b.start(fresh=False)  # back, with every row it had
    r = client.delete("/v1/gateways/gw-b?wait=30")
    assert r.status_code == 204, r.text
    assert client.get("/v1/gateways/gw-b").status_code == 404
    assert problems(read_tables(b), THEIRS) == []  # nothing of silonet's, the foreign switch and binding kept
    actions = [e["action"] for e in reversed(audit(client, "gw-b"))]
    assert actions[-2:] == ["decommission", "decommissioned"], actions
    eventually(lambda: 'gateway="gw-b"' not in client.get("/metrics").text, what="its series gone")


def test_unreachable_gateway_stays_decommissioning_until_forced(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    b = realize_then_take_down(client, dbs)
    assert client.delete("/v1/gateways/gw-b").status_code == 202
    r = client.delete("/v1/gateways/gw-b?wait=1")  # the wait ends: the state, not an error
    assert r.status_code == 202 and r.json()["state"] == "decommissioning" and r.json()["reachable"] is False
    eventually(lambda: status(client, "gw-b")["last_error"] is not None, what="a failed pass")
    assert status(client, "gw-b")["state"] == "decommissioning"

    r = client.delete("/v1/gateways/gw-b?force=true")
    assert r.status_code == 200, r.text
    left = r.json()["left"]
    assert [ls["network"] for ls in left["logical_switches"]] == ["cust-42"]
    assert left["bindings"] == [{"port": "p1", "vlan": 2100, "vni": 5000}]
    assert [m["mac"] for m in left["remote_macs"]] == ["02:00:00:00:0a:01"]
    assert "force" in r.json()["message"] and "cust-42 (VNI 5000)" in r.json()["message"]
    assert client.get("/v1/gateways/gw-b").status_code == 404
    forgot = audit(client, "gw-b")[0]
    assert forgot["action"] == "forget" and forgot["before"]["left"] == left
    b.start(fresh=False)  # what the audit says was left is what the device holds
    assert b.ctl("list-ls").split() == ["cust-42", "theirs"]
    assert b.ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42"]


def test_a_gateway_never_reached_is_forgotten_at_once(fabric) -> None:  # type: ignore[no-untyped-def]
    client, _dbs = fabric
    r = client.post("/v1/gateways", json={"name": "gw-x", "vtep_ip": "198.18.0.9",
                                          "management": {"driver": "ovsdb", "address": f"tcp:127.0.0.1:{free_port()}"}})
    assert r.status_code == 201, r.text
    assert client.delete("/v1/gateways/gw-x").status_code == 204
    assert client.get("/v1/gateways/gw-x").status_code == 404
    assert [e["action"] for e in audit(client, "gw-x")] == ["delete", "create"]
    # one it reached is cleaned first, even when it holds nothing: ?wait= waits for that
    eventually(lambda: status(client, "gw-c")["reachable"] is True, what="gw-c reached")
    assert client.delete("/v1/gateways/gw-c?wait=20").status_code == 204
    assert [e["action"] for e in audit(client, "gw-c")][:2] == ["decommissioned", "decommission"]


def test_a_port_leaving_a_group_and_a_deleted_group_leave_nothing(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    a = dbs["gw-a"]
    body = {"interface_groups": [{"name": "ga", "members": [{"gateway": "gw-a", "port": "p1"},
                                                             {"gateway": "gw-a", "port": "p2"}]}]}
    assert client.post("/v1/apply?wait=20", json=body).status_code == 200
    attach(client, "ga", 100)
    attach(client, "gb", 2100)
    assert a.ctl("list-bindings", "gw-a", "p2").split() == ["0100", "cust-42"]
    body["interface_groups"][0]["members"].pop()  # p2 leaves the group
    r = client.post("/v1/apply?wait=20", json=body)
    assert r.status_code == 200 and r.json()["status"] == "realized", r.text
    eventually(lambda: a.ctl("list-bindings", "gw-a", "p2").strip() == "", what="p2's binding removed")
    assert a.ctl("list-bindings", "gw-a", "p1").split() == ["0100", "cust-42"]
    assert client.delete("/v1/networks/cust-42/attachments/ga/100").status_code == 204
    assert client.delete("/v1/interface-groups/ga").status_code == 204
    eventually(lambda: problems(read_tables(a), Wanted()) == [], what="gw-a emptied")


def topology(dbs: dict[str, VtepDb], keep: tuple[str, ...]) -> dict:
    """Silo core (gw-a), silo edge (gw-b, gw-c); one group per gateway; cust-42 on all three."""
    gateways = [{"name": n, "silo": "core" if n == "gw-a" else "edge", "vtep_ip": db.tunnel_ip,
                 "management": {"driver": "ovsdb", "address": db.remote}, "ports": [{"name": "p1"}, {"name": "p2"}]}
                for n, db in dbs.items() if n in keep]
    groups = [{"name": f"g{n[-1]}", "members": [{"gateway": n, "port": "p1"}]} for n in dbs if n in keep]
    atts = [{"interface_group": g["name"], "vlan": 100 + i} for i, g in enumerate(groups)]
    return {"silos": [{"name": s} for s in ("core", "edge") if any(g["silo"] == s for g in gateways)],
            "gateways": gateways, "interface_groups": groups,
            "networks": [{"name": "cust-42", "tenant": "acme", "vni": 5000, "attachments": atts}]}


def test_prune_of_a_file_without_the_gateways_empties_their_devices(tmp_path: Path, manager: Manager) -> None:
    from silonet.api.app import create_app
    from silonet.reconcile import Reconciler
    from tests.conftest import ADMIN

    dbs = {n: VtepDb(tmp_path / n, name=n, tunnel_ip=f"198.18.0.{i + 1}").start()
           for i, n in enumerate(("gw-a", "gw-b", "gw-c"))}
    try:
        rec = Reconciler(manager.runtime, period=2.0, poll=0.2)
        with TestClient(create_app(manager, rec), headers=ADMIN) as client:
            r = client.post("/v1/apply?wait=20", json=topology(dbs, ("gw-a", "gw-b", "gw-c")))
            assert r.status_code == 200 and r.json()["status"] == "realized", r.text
            dbs["gw-c"].ctl("add-ls", "theirs", "--", "bind-ls", "gw-c", "p2", "300", "theirs")
            smaller = topology(dbs, ("gw-a",))
            r = client.post("/v1/apply?prune=true&force=true", json=smaller)
            assert r.status_code == 200, r.text
            eventually(lambda: [g["name"] for g in client.get("/v1/gateways").json()] == ["gw-a"],
                       what="gw-b and gw-c forgotten")
            assert problems(read_tables(dbs["gw-b"]), Wanted()) == []
            assert problems(read_tables(dbs["gw-c"]), THEIRS) == []
            notes = " ".join(r.json()["notes"])
            assert "gateway 'gw-b' is decommissioning" in notes and "gateway 'gw-c' is decommissioning" in notes
            assert "silo 'edge' stays until its decommissioning gateway(s) 'gw-b', 'gw-c' are gone" in notes
            assert r.json()["gateways"] == ["gw-a"]
            assert dbs["gw-a"].ctl("list-bindings", "gw-a", "p1").split() == ["0100", "cust-42"]
            eventually(lambda: dbs["gw-a"].ctl("list-remote-macs", "cust-42").count("vxlan_over_ipv4") == 0,
                       what="gw-a's flood list emptied")
            r = client.post("/v1/apply?prune=true&force=true", json=smaller)  # its gateways gone: the silo goes
            assert r.status_code == 200 and r.json()["notes"] == [], r.text
            assert [(c["action"], c["kind"], c["name"]) for c in r.json()["changes"]] == [("delete", "silo", "edge")]
    finally:
        for db in dbs.values():
            db.stop()


def test_a_local_store_forgets_at_once_and_says_what_may_be_left(tmp_path: Path, manager: Manager) -> None:
    ports = {"gw-a": [{"name": "p1"}], "gw-b": [{"name": "p1"}, {"name": "p2"}]}
    groups = {"ga": {"members": [{"gateway": "gw-a", "port": "p1"}]},
              "gb": {"members": [{"gateway": "gw-b", "port": "p1"}]}}
    with managed_gateways(tmp_path, manager, ports, groups) as (client, dbs):
        b = realize_then_take_down(client, dbs)
    # the server is gone: the CLI works on the store alone
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILONET_")}
    env.update(SILONET_DATABASE_URL=manager.db.url, SILONET_DATA_DIR=str(tmp_path / "cli"),
               SILONET_CONFIG=str(tmp_path / "cli-config.json"))
    p = subprocess.run([sys.executable, "-m", "silonet.cli.main", "gateway", "delete", "gw-b"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    said = " ".join(p.stdout.split())
    assert "no reconciler runs on this database" in said, said
    assert "cust-42 (VNI 5000)" in said and "p1 VLAN 2100" in said and "02:00:00:00:0a:01" in said, said
    assert "gw-b" not in [g.name for g in manager.list_gateways()]
    forgot = next(e for e in manager.audit() if e.object == "gateway/gw-b")
    assert forgot.action == "forget"
    assert forgot.before["left"]["bindings"] == [{"port": "p1", "vlan": 2100, "vni": 5000}]
    b.start(fresh=False)
    try:
        assert b.ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42"]  # left, as it said
    finally:
        b.stop()
