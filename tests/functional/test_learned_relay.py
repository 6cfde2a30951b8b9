"""The learned-MAC relay under the real reconciler and API, on in-memory devices: a MAC a gateway
learns while silonet writes to it is seen first by the write's read-back, and the change's own
wake-up then finds the device as that read left it. The peers must still get the MAC (a CI run
lost it: the vSphere host's MAC never reached gw-kvm)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from silonet.drivers.memory import FABRIC, MemoryDevice, MemoryDriver
from silonet.plan.ops import Operation
from tests.conftest import eventually

MAC = "02:00:00:00:00:0a"


@pytest.fixture
def fabric(memory_pair: TestClient) -> tuple[TestClient, dict[str, MemoryDevice]]:
    """``memory_pair``, and network cust-42 (VNI 5000)."""
    r = memory_pair.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000})
    assert r.status_code == 201, r.text
    return memory_pair, {n: FABRIC.device(f"memory:{n}") for n in ("gw-a", "gw-b")}


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
