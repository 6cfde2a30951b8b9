"""The in-memory driver under the real reconciler and API: gateways that live in this process
realize at once, and a test plays the device's part (out-of-band edits, refusals, power cuts)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.drivers.memory import FABRIC, MemoryDevice, set_state
from silonet.plan import GatewayState
from silonet.reconcile import Reconciler
from silonet.service import Manager
from tests.conftest import ADMIN


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


@pytest.fixture
def fabric(manager: Manager) -> Iterator[tuple[TestClient, dict[str, MemoryDevice]]]:
    FABRIC.forget()
    with TestClient(create_app(manager, Reconciler(manager.runtime, period=2.0, poll=0.2)), headers=ADMIN) as client:
        for i, name in enumerate(("gw-a", "gw-b"), start=1):
            r = client.post("/v1/gateways", json={"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
                                                  "management": {"driver": "memory"}})
            assert r.status_code == 201, r.text
            assert r.json()["management"]["address"] == f"memory:{name}"
            group = {"name": f"g{i}", "members": [{"gateway": name, "port": "p1"}]}
            assert client.post("/v1/interface-groups", json=group).status_code == 201
        assert client.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000}).status_code == 201
        yield client, {n: FABRIC.device(f"memory:{n}") for n in ("gw-a", "gw-b")}
    FABRIC.forget()


def test_a_server_with_memory_gateways_realizes_and_plans_nothing_after(fabric) -> None:  # type: ignore[no-untyped-def]
    client, devices = fabric
    for group in ("g1", "g2"):
        r = client.post("/v1/networks/cust-42/attachments?wait=20", json={"interface_group": group, "vlan": 100})
        assert r.status_code == 201 and r.json()["status"] == "realized", r.text
    assert all(not gw["operations"] for gw in client.get("/v1/plan").json()["gateways"])
    a = devices["gw-a"].owned
    assert a.bindings == {("p1", 100): 5000} and a.logical_switches[5000].flood == {"198.18.0.2"}


def test_an_out_of_band_edit_is_repaired(fabric) -> None:  # type: ignore[no-untyped-def]
    client, devices = fabric
    client.post("/v1/networks/cust-42/attachments?wait=20", json={"interface_group": "g1", "vlan": 100})
    before = devices["gw-a"].writes
    set_state(devices["gw-a"], owned=GatewayState())  # someone wiped the switch
    eventually(lambda: devices["gw-a"].owned.bindings == {("p1", 100): 5000})
    assert devices["gw-a"].writes > before


def test_a_refusing_then_unreachable_device_fails_and_recovers(fabric) -> None:  # type: ignore[no-untyped-def]
    client, devices = fabric
    devices["gw-a"].refuse_writes = "% Invalid command at '^' marker."
    r = client.post("/v1/networks/cust-42/attachments?wait=20", json={"interface_group": "g1", "vlan": 100})
    assert r.json()["status"] == "failed" and "Invalid command" in r.json()["reason"]
    set_state(devices["gw-a"], refuse_writes=None, unreachable="cable pulled")
    eventually(lambda: "cable pulled" in (client.get("/v1/gateways/gw-a/status").json()["last_error"] or ""))
    set_state(devices["gw-a"], unreachable=None)
    eventually(lambda: client.get("/v1/gateways/gw-a/status").json()["state"] == "realized")
    assert devices["gw-a"].owned.bindings == {("p1", 100): 5000}


def test_the_address_is_required_for_every_other_driver(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/gateways", json={"name": "gw-x", "vtep_ip": "198.18.0.9", "management": {"driver": "ovsdb"}})
    assert r.status_code == 422 and r.json()["field"] == "management.address"
    assert "ovsdb driver needs an address" in r.json()["message"]
