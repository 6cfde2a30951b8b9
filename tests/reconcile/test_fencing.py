"""The worker under the lease fence, on memory gateways (the device's part played by the test):
a write goes with the lease's epoch; a device that took a write under a higher epoch refuses it,
and the worker stops writing (a log line, the gateway's status says why), or,
while the database still gives this replica the lease, moves its epoch past the device's."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from silonet.api.app import create_app
from silonet.drivers.memory import FABRIC, MemoryDevice
from silonet.reconcile import Reconciler
from silonet.service import Manager
from silonet.store.tables import GatewayLeaseRow, GatewayRow
from tests.conftest import ADMIN


def eventually(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.05)


def lease(manager: Manager, gateway: str) -> tuple[str, int]:
    """(owner, epoch) of the gateway's lease row."""
    with manager.db.read() as s:
        return tuple(s.execute(select(GatewayLeaseRow.owner, GatewayLeaseRow.epoch).join(
            GatewayRow, GatewayRow.id == GatewayLeaseRow.gateway_id).where(GatewayRow.name == gateway)).one())


@pytest.fixture
def served(manager: Manager) -> Iterator[tuple[TestClient, Reconciler, MemoryDevice]]:
    """One replica (``a``, a 30 s lease: its clock holds through the test) driving gw-a, in
    group g1, and network cust-42."""
    FABRIC.forget()
    rec = Reconciler(manager.runtime, period=2.0, poll=0.2, replica="a", lease_ttl=30.0)
    with TestClient(create_app(manager, rec), headers=ADMIN) as client:
        r = client.post("/v1/gateways", json={"name": "gw-a", "vtep_ip": "198.18.0.1", "ports": [{"name": "p1"}],
                                              "management": {"driver": "memory"}})
        assert r.status_code == 201, r.text
        assert client.post("/v1/interface-groups", json={
            "name": "g1", "members": [{"gateway": "gw-a", "port": "p1"}]}).status_code == 201
        assert client.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000}).status_code == 201
        yield client, rec, FABRIC.device("memory:gw-a")
    FABRIC.forget()


def attach(client: TestClient, vlan: int) -> dict:
    r = client.post("/v1/networks/cust-42/attachments?wait=20", json={"interface_group": "g1", "vlan": vlan})
    assert r.status_code == 201, r.text
    return r.json()


def test_writes_carry_the_leases_epoch_to_the_device(served, manager: Manager) -> None:  # type: ignore[no-untyped-def]
    client, rec, device = served
    assert attach(client, 100)["status"] == "realized"
    assert lease(manager, "gw-a") == ("a", 1) and rec.holding.epoch("gw-a") == 1
    assert device.epoch == 1


def test_a_replica_whose_lease_moved_on_is_refused_by_the_device_and_says_why(
        served, manager: Manager, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """Replica b took the lease (epoch 2) and wrote, while a's clock still says it holds the gateway
    (a stalled replica's view, before its next lease round): a's next write is refused by the
    device, nothing of it lands, a logs the refusal and records it as the gateway's error."""
    client, _rec, device = served
    assert attach(client, 100)["status"] == "realized"
    with manager.db.sessions() as s:  # b's takeover, as the database and the device saw it
        s.execute(update(GatewayLeaseRow).values(owner="b", epoch=2))
        s.commit()
    device.epoch = 2
    writes, owned = device.writes, device.owned
    caplog.set_level(logging.WARNING, "silonet.reconcile.apply")
    attached = attach(client, 101)
    assert attached["status"] == "failed" and "lease epoch 2" in attached["reason"], attached
    assert device.writes == writes and device.owned == owned  # the late write did not land
    assert device.epoch == 2 and lease(manager, "gw-a") == ("b", 2)  # a cannot move past b's epoch
    status = client.get("/v1/gateways/gw-a/status").json()
    assert "newer than this replica's 1" in status["last_error"], status
    assert any("refused the write of replica a" in r.getMessage() for r in caplog.records)


def test_an_epoch_from_before_the_leases_history_is_moved_past(served, manager: Manager) -> None:  # type: ignore[no-untyped-def]
    """The device holds epoch 7 from a gateway of the same name deleted earlier (or a database
    restored from a backup) while this replica holds the lease at epoch 1: it is refused once,
    moves its lease to epoch 8, and the change is realized."""
    client, rec, device = served
    device.epoch = 7
    assert attach(client, 100)["status"] == "realized"
    assert device.epoch == 8 and lease(manager, "gw-a") == ("a", 8) and rec.holding.epoch("gw-a") == 8
    assert device.owned.bindings == {("p1", 100): 5000}
