"""The learned-MAC relay under the real reconciler and API, on in-memory devices: a MAC a gateway
learns while silonet writes to it is seen first by the write's read-back, and the change's own
wake-up then finds the device as that read left it. The peers must still get the MAC (a CI run
lost it: the vSphere host's MAC never reached gw-kvm)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.drivers.memory import FABRIC, MemoryDevice, MemoryDriver
from silonet.plan.ops import Operation
from silonet.reconcile import Reconciler
from silonet.service import Manager
from tests.conftest import ADMIN, eventually

MAC = "02:00:00:00:00:0a"


@pytest.fixture
def fabric(manager: Manager) -> Iterator[tuple[TestClient, dict[str, MemoryDevice]]]:
    """gw-a and gw-b on memory devices, groups g1 and g2, network cust-42 (VNI 5000)."""
    FABRIC.forget()
    rec = Reconciler(manager.runtime, period=2.0, poll=0.2)
    with TestClient(create_app(manager, rec), headers=ADMIN) as client:
        for i, name in enumerate(("gw-a", "gw-b"), start=1):
            r = client.post("/v1/gateways", json={"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
                                                  "management": {"driver": "memory"}})
            assert r.status_code == 201, r.text
            assert client.post("/v1/interface-groups", json={
                "name": f"g{i}", "members": [{"gateway": name, "port": "p1"}]}).status_code == 201
        assert client.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000}).status_code == 201
        yield client, {n: FABRIC.device(f"memory:{n}") for n in ("gw-a", "gw-b")}
    FABRIC.forget()


def attach(client: TestClient, group: str, vlan: int) -> None:
    r = client.post("/v1/networks/cust-42/attachments?wait=20", json={"interface_group": group, "vlan": vlan})
    assert r.status_code == 201 and r.json()["status"] == "realized", r.text


def test_a_mac_learned_during_a_write_reaches_the_peers(fabric, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    client, devices = fabric
    attach(client, "g2", 200)
    a = devices["gw-a"]
    plain = MemoryDriver.apply

    async def learning(self: MemoryDriver, ops: list[Operation], fence=None):  # type: ignore[no-untyped-def]
        out = await plain(self, ops, fence)
        if self.device is a and ops:  # the host behind gw-a speaks as its binding comes up
            a.local_macs = {5000: frozenset({MAC})}
            a.changed()  # its wake-up comes before the read-back: that read is the one that sees it
        return out

    monkeypatch.setattr(MemoryDriver, "apply", learning)
    attach(client, "g1", 100)
    eventually(lambda: devices["gw-b"].owned.remote_macs.get((5000, MAC)) == "198.18.0.1",
               what="gw-a's learned MAC at gw-b")
    plan = client.get("/v1/plan").json()["gateways"]
    assert all(not g["operations"] for g in plan), plan
