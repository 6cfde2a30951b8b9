"""The reconciler drives real ovsdb-servers through the API: realize, repair, respect
foreign state, resync after a restart, and spread learned MACs. vtep-ctl checks the devices."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from silonet.devices.vtepdb import VtepDb
from silonet.service import Manager
from tests.functional.conftest import managed_gateways

pytestmark = pytest.mark.ovs


@pytest.fixture
def fabric(tmp_path: Path, manager: Manager) -> Iterator[tuple[TestClient, dict[str, VtepDb]]]:
    ports = {"gw-a": [{"name": "p1"}, {"name": "p2"}, {"name": "p48", "switchback": True}],
             "gw-b": [{"name": "p1"}, {"name": "p2"}, {"name": "p48", "switchback": True}],
             "gw-c": [{"name": "p1"}, {"name": "p2"}, {"name": "p48", "switchback": True}]}
    groups = {"ga": {"members": [{"gateway": "gw-a", "port": "p1"}, {"gateway": "gw-a", "port": "p2"}],
                     "switchback": [{"gateway": "gw-a", "port": "p48"}]},
              "gb": {"members": [{"gateway": "gw-b", "port": "p1"}]},
              "gc": {"members": [{"gateway": "gw-c", "port": "p1"}]}}
    with managed_gateways(tmp_path, manager, ports, groups) as fab:
        yield fab


def attach(client: TestClient, group: str, vlan: int, wait: float = 10) -> dict:
    r = client.post(f"/v1/networks/cust-42/attachments?wait={wait}", json={"interface_group": group, "vlan": vlan})
    assert r.status_code == 201, r.text
    return r.json()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_attach_is_realized_on_every_gateway(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    assert attach(client, "ga", 100)["status"] == "realized"
    out = attach(client, "gb", 2100)
    assert out["status"] == "realized" and {g["gateway"] for g in out["gateways"]} == {"gw-a", "gw-b"}
    # Switch-back group: the binding is on p48 only.
    assert dbs["gw-a"].ctl("list-bindings", "gw-a", "p48").split() == ["0100", "cust-42"]
    assert dbs["gw-a"].ctl("list-bindings", "gw-a", "p1").strip() == ""
    assert dbs["gw-b"].ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42"]
    assert "unknown-dst -> vxlan_over_ipv4/198.18.0.2" in dbs["gw-a"].ctl("list-remote-macs", "cust-42")
    assert "unknown-dst -> vxlan_over_ipv4/198.18.0.1" in dbs["gw-b"].ctl("list-remote-macs", "cust-42")
    assert dbs["gw-c"].ctl("list-ls").strip() == ""  # not involved
    st = client.get("/v1/gateways/gw-a/status").json()
    assert st["state"] == "realized" and st["reachable"] is True and st["repair"] == []


def test_detach_removes_the_rows(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    attach(client, "ga", 100)
    attach(client, "gb", 2100)
    assert client.delete("/v1/networks/cust-42/attachments/gb/2100?wait=10").status_code == 204
    eventually(lambda: dbs["gw-b"].ctl("list-ls").strip() == "")
    assert "198.18.0.2" not in dbs["gw-a"].ctl("list-remote-macs", "cust-42")


def test_out_of_band_delete_is_repaired(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    attach(client, "ga", 100)
    attach(client, "gb", 2100)
    dbs["gw-b"].ctl("unbind-ls", "gw-b", "p1", "2100")
    eventually(lambda: dbs["gw-b"].ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42"])


def test_foreign_binding_is_left_alone_and_fails_the_attachment(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    dbs["gw-c"].ctl("add-ls", "theirs", "--", "bind-ls", "gw-c", "p1", "300", "theirs")
    out = attach(client, "gc", 300)
    assert out["status"] == "failed" and "foreign logical switch 'theirs'" in out["reason"]
    assert dbs["gw-c"].ctl("list-bindings", "gw-c", "p1").split() == ["0300", "theirs"]
    st = client.get("/v1/gateways/gw-c/status").json()
    assert st["binding_errors"] == {"p1/300": "port 'p1' VLAN 300 is bound to foreign logical switch 'theirs'"}
    assert {"kind": "binding", "port": "p1", "vlan": 300, "logical_switch": "theirs"} in st["foreign"]


def test_restarted_gateway_is_resynced_without_duplicates(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    attach(client, "ga", 100)
    attach(client, "gb", 2100)
    db = dbs["gw-b"]
    db.stop()
    eventually(lambda: client.get("/v1/gateways/gw-b/status").json()["reachable"] is False)
    # It comes back empty (a replaced switch): silonet writes everything again.
    db.start(fresh=True)
    eventually(lambda: db.ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42"], timeout=20)
    assert db.ctl("list-ls").split() == ["cust-42"]
    assert len(db.ctl("--columns=_uuid", "list", "Mcast_Macs_Remote").split()) == 3  # one row: "_uuid : <id>"


def test_learned_macs_become_remote_macs_at_the_peers(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    attach(client, "ga", 100)
    attach(client, "gb", 2100)
    attach(client, "gc", 300)
    dbs["gw-a"].ctl("add-ucast-local", "cust-42", "02:00:00:00:0a:01", "198.18.0.1")
    for peer in ("gw-b", "gw-c"):
        eventually(lambda p=peer: "02:00:00:00:0a:01 -> vxlan_over_ipv4/198.18.0.1" in dbs[p].ctl(
            "list-remote-macs", "cust-42"))
    assert "02:00:00:00:0a:01" not in dbs["gw-a"].ctl("list-remote-macs", "cust-42")
    dbs["gw-a"].ctl("del-ucast-local", "cust-42", "02:00:00:00:0a:01")
    eventually(lambda: "02:00:00:00:0a:01" not in dbs["gw-b"].ctl("list-remote-macs", "cust-42"))


def test_device_faults_show_in_status(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    attach(client, "gb", 2100)
    dbs["gw-b"].ctl("set", "Physical_Port", "p1", "port_fault_status=invalid_vlan_map")
    dbs["gw-b"].ctl("set", "Physical_Switch", "gw-b", "switch_fault_status=unspecified_fault")
    eventually(lambda: client.get("/v1/gateways/gw-b/status").json()["faults"] == {
        "switch": ["unspecified_fault"], "port p1": ["invalid_vlan_map"]})
    assert client.get("/v1/gateways/gw-a/status").json()["faults"] == {}  # the others are unaffected


def test_idle_gateways_are_not_read_again_but_drift_still_is_repaired(fabric) -> None:  # type: ignore[no-untyped-def]
    """A settled ovsdb gateway costs nothing per period (its IDL pushes every change), and
    the echo of silonet's own write does not cause a second pass; a foreign change does."""
    client, dbs = fabric
    assert attach(client, "gb", 2100)["status"] == "realized"
    rec = client.app.state.reconciler  # type: ignore[attr-defined]
    worker = rec.workers["gw-b"]
    time.sleep(0.5)
    passes = worker.passes
    time.sleep(2 * rec.period + 0.5)  # two periodic wake-ups
    assert worker.passes == passes
    dbs["gw-b"].ctl("unbind-ls", "gw-b", "p1", "2100")  # drift
    eventually(lambda: dbs["gw-b"].ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42"])
    eventually(lambda: worker.passes > passes)  # the pass counts after its read-back, a moment after the write


def test_an_idle_gateway_has_its_contact_refreshed_and_is_compared_whole_only_rarely(
        fabric, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Between whole passes (``WHOLE_EVERY_S``) an idle ovsdb gateway is not read, compiled or
    compared; its last contact still moves each REFRESH_CONTACT_S. Then the whole pass comes."""
    from silonet.reconcile import worker as worker_module

    monkeypatch.setattr(worker_module, "REFRESH_CONTACT_S", 1.0)
    monkeypatch.setattr(worker_module, "REFRESH_GRID_S", 0.5)
    monkeypatch.setattr(worker_module, "WHOLE_EVERY_S", 3600.0)
    client, _dbs = fabric
    assert attach(client, "gb", 2100)["status"] == "realized"
    worker = client.app.state.reconciler.workers["gw-b"]  # type: ignore[attr-defined]
    time.sleep(0.5)
    passes, whole = worker.passes, worker.settled["whole"]
    first = client.get("/v1/gateways/gw-b/status").json()["last_contact"]
    eventually(lambda: client.get("/v1/gateways/gw-b/status").json()["last_contact"] != first)
    again = client.get("/v1/gateways/gw-b/status").json()
    assert again["state"] == "realized" and again["reachable"] is True, again
    assert worker.passes == passes, "a contact refresh is no pass"
    monkeypatch.setattr(worker_module, "WHOLE_EVERY_S", 1.0)
    eventually(lambda: worker.settled["whole"] > whole)  # at the next periodic wake-up


def test_passes_after_a_change_compare_only_the_change(fabric) -> None:  # type: ignore[no-untyped-def]
    """Once a gateway settled, an attach (the intent names its VNI) and an out-of-band change
    (the driver names what moved) are handled by passes that compare only that part; they
    still realize and repair exactly (vtep-ctl checks), and a detach of the last binding
    removes the switch."""
    client, dbs = fabric
    workers = client.app.state.reconciler.workers
    eventually(lambda: "gw-b" in workers)  # started once the lease round that took it was acted on
    worker = workers["gw-b"]
    for i in range(4):
        r = client.post("/v1/networks", json={"name": f"n{i}", "tenant": "acme", "vni": 6000 + i})
        assert r.status_code == 201, r.text
    r = client.post("/v1/networks/n0/attachments?wait=10", json={"interface_group": "gb", "vlan": 400})
    assert r.json()["status"] == "realized"
    before = dict(worker.settled)
    for i in range(1, 4):
        r = client.post(f"/v1/networks/n{i}/attachments?wait=10", json={"interface_group": "gb", "vlan": 400 + i})
        assert r.json()["status"] == "realized", r.text
    assert worker.settled["part"] - before["part"] >= 3 and worker.settled["whole"] == before["whole"]
    bindings = dbs["gw-b"].ctl("list-bindings", "gw-b", "p1").split()
    assert bindings == ["0400", "n0", "0401", "n1", "0402", "n2", "0403", "n3"]
    # out of band: a binding removed and another rebound to a switch of ours: both repaired
    n0 = dbs["gw-b"].ctl("get", "Logical_Switch", "n0", "_uuid").strip()
    dbs["gw-b"].ctl("unbind-ls", "gw-b", "p1", "401", "--", "set", "Physical_Port", "p1", f"vlan_bindings:402={n0}")
    eventually(lambda: dbs["gw-b"].ctl("list-bindings", "gw-b", "p1").split() == bindings)
    assert worker.settled["whole"] == before["whole"]
    assert client.delete("/v1/networks/n3/attachments/gb/403?wait=10").status_code == 204
    assert dbs["gw-b"].ctl("list-bindings", "gw-b", "p1").split() == bindings[:6]
    assert "n3" not in dbs["gw-b"].ctl("list-ls").split()
    assert client.get("/v1/gateways/gw-b/status").json()["repair"] == []


def test_a_device_that_comes_back_empty_and_slow_is_written_again(fabric) -> None:  # type: ignore[no-untyped-def]
    """The device restarts with an empty database and answers nothing for a while (stopped),
    while a change for it is pending: the IDL reconnects, the rows it held from before must not
    pass for the device's (the library empties its tables without telling), a failed write must
    not leave its transaction open, and once the device answers everything is written again."""
    import os
    import signal

    client, dbs = fabric
    attach(client, "gb", 2100)
    db = dbs["gw-b"]
    db.stop()
    db.start(fresh=True)
    pid = db.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # accepts the connection (backlog), answers nothing
    try:
        r = client.post("/v1/networks", json={"name": "later", "tenant": "acme", "vni": 5001})
        assert r.status_code == 201
        client.post("/v1/networks/later/attachments", json={"interface_group": "gb", "vlan": 2101})
        time.sleep(3)  # the IDL reconnects meanwhile, and the worker tries its pass
    finally:
        os.kill(pid, signal.SIGCONT)
    eventually(lambda: db.ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42", "2101", "later"],
               timeout=20)
    eventually(lambda: client.get("/v1/gateways/gw-b/status").json()["state"] == "realized")
    assert sorted(db.ctl("list-ls").split()) == ["cust-42", "later"]
